"""vmap(grad) through user helpers whose derivative is chosen at run time (a
dynamic rt.vjp_call: here a helper looked up in a dict when the code runs,
which the batch pass cannot tell at compile time), checked against a Python
loop of grad over the examples and against finite differences.

The helpers' tapes hold values a branch not taken left as None (the list of
np.concatenate's operands) ahead of numbers (an axis, a keepdims flag, a
branch test): each tape leaf must keep its own batch axis, not the next
one's, or numbers come back as arrays and arrays get the batch axis twice."""
import numpy as np
import pytest

import codax
from tests.helpers import numeric_grad


def gram(m, y=None, fweights=None):
    X = m
    if y is not None:
        X = np.concatenate([X, y], axis=0)
    if fweights is None:
        c = X * X
    else:
        c = 0.0
    return c


def reduce_rows(x, axis, keep, extra=None):
    if extra is not None:
        x = np.concatenate([x, extra], axis=0)
    return np.sum(x * x, axis=axis, keepdims=keep)


def peak(x, axis, extra=None):
    if extra is not None:
        x = np.concatenate([x, extra], axis=0)
    return np.expand_dims(np.max(x * x, axis=axis), axis)


def rows_of(x, n, extra=None):
    k = 1                               # rebound below: not a constant for the batch pass
    if extra is None:
        k = n
    return np.reshape(x * x, (k, -1))


WEIGHTS = np.arange(12.0).reshape(2, 6)
HELPERS = {'gram': gram, 'reduce_rows': reduce_rows, 'peak': peak, 'rows_of': rows_of}

CASES = {
    'gram': lambda a: np.sum(HELPERS['gram'](a) ** 2),
    'sum keepdims': lambda a: np.sum(HELPERS['reduce_rows'](a, 1, True) ** 2),
    'sum axis 0': lambda a: np.sum(HELPERS['reduce_rows'](a, 0, False) ** 3),
    'max': lambda a: np.sum(HELPERS['peak'](a, 1) ** 2),
    'reshape': lambda a: np.sum(HELPERS['rows_of'](a, 2) ** 2 * WEIGHTS),
}
XS = np.random.RandomState(3).rand(3, 3, 4) + 0.5


@pytest.mark.parametrize('name', CASES)
def test_vmap_of_grad_through_a_dynamic_vjp_call(name):
    f = CASES[name]
    batched = codax.vmap(codax.grad(f))
    assert 'rt.vmapped(rt.vjp_call' in batched.source(XS)       # the dynamic path
    got = batched(XS)
    np.testing.assert_allclose(got, np.stack([codax.grad(f)(x) for x in XS]),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], numeric_grad(f, (XS[1],)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.vmap(f)(XS), [f(x) for x in XS], rtol=1e-12)


def test_vmap_of_grad_with_none_defaults_chosen_at_compile_time():
    # the helper called by name: its None defaults are known to the batch
    # pass, so its derivative is chosen at compile time (rt.sweeps_for)
    def f(a):
        return np.sum(gram(a) ** 2) + np.sum(reduce_rows(a, 1, True) ** 2)
    batched = codax.vmap(codax.grad(f))
    source = batched.source(XS)
    assert 'rt.sweeps_for(gram' in source and 'rt.vmapped(rt.vjp_call' not in source
    got = batched(XS)
    np.testing.assert_allclose(got, np.stack([codax.grad(f)(x) for x in XS]),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], numeric_grad(f, (XS[2],)), rtol=1e-6, atol=1e-8)
