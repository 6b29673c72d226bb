"""Common subexpressions shared in generated code (transformer/cse.py): the
source shows each value computed once, and the values are unchanged
(finite differences, NumPy itself)."""
import re

import numpy as np
import pytest

import codax
from helpers import numeric_grad
from transformer import cse
from transformer import nodes as n

X = np.array([0.3, -1.2, 0.8])


def _sin_times_cos(x):
    return np.sum(np.sin(x) * np.cos(x))


def test_the_adjoint_reads_the_primals_values():
    text = codax.grad(_sin_times_cos).source(X)
    assert text.count('xp.cos(x)') == 1 and text.count('xp.sin(x)') == 1, text
    np.testing.assert_allclose(codax.grad(_sin_times_cos)(X),
                               numeric_grad(_sin_times_cos, (X,)), rtol=1e-7)


def _cholesky_loss(a):
    s = a @ a.T + 3 * np.eye(3)
    return np.sum(np.linalg.cholesky(s) * np.cos(a))


def test_a_value_a_rule_spells_twice_is_computed_once():
    a = np.random.RandomState(0).randn(3, 3)
    text = codax.grad(_cholesky_loss).source(a)
    # L^T is read three times, P = tril(L^T g) twice: each is computed once
    assert text.count('xp.tril(xp.matmul(') == 1, text
    assert len(re.findall(r'xp\.swapaxes\(_t\d+, -1, -2\)', text)) == 1, text
    np.testing.assert_allclose(codax.grad(_cholesky_loss)(a),
                               numeric_grad(_cholesky_loss, (a,)), rtol=1e-6, atol=1e-8)


def _shared(source):
    fdef = n.parse(source).body[0]
    return n.to_source(cse.share_subexpressions(fdef))


def test_names_assigned_again_are_not_reused():
    out = _shared('def f(a, b):\n'
                  '    t = xp.cos(a)\n'
                  '    a = b\n'
                  '    return 2 * xp.cos(a)\n')
    assert out.count('xp.cos(a)') == 2


def test_code_that_writes_in_place_is_left_alone():
    source = ('def f(a):\n'
              '    t = xp.cos(a)\n'
              '    a[0] = 1.0\n'
              '    return 2 * xp.cos(a)\n')
    assert _shared(source).count('xp.cos(a)') == 2


def test_whole_right_hand_sides_and_lazy_branches_are_not_shared():
    out = _shared('def f(a, c):\n'
                  '    t = xp.cos(a)\n'
                  '    u = xp.cos(a)\n'
                  '    return 1 + (xp.exp(a) if c else xp.exp(a))\n')
    assert out.count('xp.cos(a)') == 2 and out.count('xp.exp(a)') == 2


def test_random_draws_and_runtime_effects_are_not_shared():
    out = _shared('def f(a):\n'
                  '    return xp.random.normal(a) + xp.random.normal(a) + '
                  'rt.seed(a) * rt.seed(a)\n')
    assert out.count('xp.random.normal(a)') == 2 and out.count('rt.seed(a)') == 2


@pytest.mark.parametrize('fn', [_sin_times_cos, _cholesky_loss], ids=lambda f: f.__name__)
def test_second_derivatives_through_shared_code(fn):
    rng = np.random.RandomState(1)
    x = rng.randn(3, 3) if fn is _cholesky_loss else X
    v, eps = rng.randn(*x.shape), 1e-5
    grad = codax.grad(fn)
    want = (grad(x + eps * v) - grad(x - eps * v)) / (2 * eps)
    hessian = codax.hessian(fn)(x).reshape(x.size, x.size)
    np.testing.assert_allclose((hessian @ v.ravel()).reshape(x.shape), want, rtol=1e-5, atol=1e-6)


def test_module_names_count_as_fixed():
    out = _shared('def f(a):\n'
                  '    t = xp.asarray(a, dtype=xp.float64)\n'
                  '    return 2 * xp.asarray(a, dtype=xp.float64)\n')
    assert out.count('xp.asarray(') == 1 and 'return 2 * t' in out
