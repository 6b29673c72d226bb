"""codax.lax: structured control flow against plain Python, and codax's
derivatives through it against central differences."""
import collections

import numpy as np
import pytest

import codax
from codax import lax


def numeric_grad(f, x, eps=1e-6):
    out = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        out.flat[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return out


X = np.array([0.3, -0.7, 1.1])


# ---- module-level bodies and user functions (codax reads their source)

def body_fori(i, v):
    return v * np.cos(v) + 0.1 * i


def use_fori(x):
    return np.sum(lax.fori_loop(0, 4, body_fori, x))


def fori_reference(x):
    v = x
    for i in range(4):
        v = v * np.cos(v) + 0.1 * i
    return np.sum(v)


def while_cond(state):
    return state[1] < 5


def while_body(state):
    v, k = state
    return (np.tanh(v * 1.5) + 0.2, k + 1)


def use_while(x):
    v, k = lax.while_loop(while_cond, while_body, (x, 0))
    return np.sum(v ** 2)


def while_reference(x):
    v = x
    for _ in range(5):
        v = np.tanh(v * 1.5) + 0.2
    return np.sum(v ** 2)


def branch_true(x):
    return np.sum(np.sin(x) * x)


def branch_false(x):
    return np.sum(x ** 3)


def use_cond(x):
    return lax.cond(np.sum(x) > 0, branch_true, branch_false, x)


def cond_reference(x):
    return np.sum(np.sin(x) * x) if np.sum(x) > 0 else np.sum(x ** 3)


def pair_true(op):
    x, s = op
    return np.sum(x * s)


def pair_false(op):
    x, s = op
    return np.sum(x) - s


def use_cond_tuple(x):
    return lax.cond(x[0] > 0, pair_true, pair_false, (x, 2.0)) ** 2


def b0(x):
    return np.sum(np.exp(x))


def b1(x):
    return np.sum(x ** 2)


def b2(x):
    return np.prod(x)


def use_switch(x):
    return lax.switch(1, [b0, b1, b2], x) + lax.switch(7, [b0, b1, b2], x)


def use_select(x):
    return np.sum(lax.select(x > 0, x ** 2, np.sin(x)))


def scan_step(c, x):
    c = np.tanh(c * 0.9 + x)
    return c, c ** 2


def use_scan(x):
    c, ys = lax.scan(scan_step, 0.5, x)
    return c + np.sum(ys * np.arange(1.0, 4.0))


def scan_reference(x):
    c, ys = 0.5, []
    for v in x:
        c = np.tanh(c * 0.9 + v)
        ys.append(c ** 2)
    return c + np.sum(np.array(ys) * np.arange(1.0, 4.0))


def scan_pair_step(carry, xs):
    a, w = xs
    carry = carry * w + a
    return carry, (carry, np.sin(carry))


def use_scan_pair(x):
    c, ys = lax.scan(scan_pair_step, x[0], (x, x[::-1]))
    first, second = ys
    return c + np.sum(first) + np.sum(second ** 2)


def scan_none_step(c, x):
    return c * 1.1 + 0.5, None


def use_scan_length(x):
    c, ys = lax.scan(scan_none_step, x, None, 3)
    return np.sum(c ** 2)


def square_sin(x):
    return np.sin(x) ** 2


def use_map(x):
    return np.sum(lax.map(square_sin, x.reshape(3, 1) * x) * x)


# ---- forward values against plain Python

def test_values():
    assert np.isclose(use_fori(X), fori_reference(X))
    assert lax.fori_loop(2, 5, body_fori, 1.0) == body_fori(4, body_fori(3, body_fori(2, 1.0)))
    assert np.isclose(use_while(X), while_reference(X))
    assert lax.while_loop(while_cond, while_body, (X, 0))[1] == 5
    assert np.isclose(use_cond(X), cond_reference(X))
    assert np.isclose(use_cond(-X - 1), cond_reference(-X - 1))
    assert lax.cond(False, pair_true, pair_false, (X, 2.0)) == np.sum(X) - 2.0
    assert lax.switch(-3, [b0, b1, b2], X) == b0(X) and lax.switch(2, [b0, b1, b2], X) == b2(X)
    np.testing.assert_array_equal(lax.select(X > 0, X, -X), np.abs(X))
    assert np.isclose(use_scan(X), scan_reference(X))
    c, ys = lax.scan(scan_step, 0.5, X)
    assert ys.shape == (3,) and c == ys[-1] ** 0.5
    c, (first, second) = lax.scan(scan_pair_step, 1.0, (X, X))
    assert isinstance(ys, np.ndarray) and first.shape == (3,) and np.allclose(np.sin(first), second)
    c, ys = lax.scan(scan_none_step, X, None, 3)
    assert ys is None and np.allclose(c, ((X * 1.1 + 0.5) * 1.1 + 0.5) * 1.1 + 0.5)
    m = lax.map(square_sin, np.arange(6.0).reshape(3, 2))
    np.testing.assert_allclose(m, np.sin(np.arange(6.0).reshape(3, 2)) ** 2)
    d = lax.scan(scan_dict_step, 0.0, {'a': X, 'b': 2 * X})
    np.testing.assert_allclose(d[1]['s'], np.cumsum(3 * X))


def scan_dict_step(c, xs):
    c = c + xs['a'] + xs['b']
    return c, {'s': c}


# ---- derivatives against central differences

GRAD_CASES = [use_fori, use_while, use_cond, use_cond_tuple, use_switch, use_select, use_scan,
              use_scan_pair, use_scan_length, use_map]


@pytest.mark.parametrize('f', GRAD_CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize('x', [X, -X - 0.5], ids=['x', 'neg'])
def test_grad_matches_finite_differences(f, x):
    np.testing.assert_allclose(codax.grad(f)(x), numeric_grad(f, x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('f', GRAD_CASES, ids=lambda f: f.__name__)
def test_jvp_matches_grad(f):
    v = np.array([0.2, -1.0, 0.5])
    value, tangent = codax.jvp(f, (X,), (v,))
    assert np.isclose(value, f(X))
    assert np.isclose(tangent, np.dot(codax.grad(f)(X), v), rtol=1e-7)


# ---- JAX's signatures: scan's reverse and unroll, fori_loop's unroll, map's
# batch_size, and cond/switch with any number of operands. Each case has a
# plain Python twin, the reference for values, finite differences and vmap.

def reverse_step(c, x):
    c = np.tanh(c * 0.9 + x)
    return c, c * x


def use_scan_reverse(x):
    c, ys = lax.scan(reverse_step, 0.5, x, reverse=True, unroll=2)
    return c + np.sum(ys * np.arange(1.0, 4.0))


def scan_reverse_reference(x):
    c, ys = 0.5, np.zeros(3)
    for i in (2, 1, 0):                     # from the end; ys in the order of x
        c = np.tanh(c * 0.9 + x[i])
        ys[i] = c * x[i]
    return c + np.sum(ys * np.arange(1.0, 4.0))


def counting_step(c, x):                    # x is None: scan over nothing
    c = c * 1.1 + 0.5
    return c, np.sum(c)


def use_scan_length_keyword(x):
    c, ys = lax.scan(counting_step, x, length=3, unroll=True)
    return np.sum(c ** 2) + np.sum(ys * np.arange(1.0, 4.0))


def scan_length_reference(x):
    c, total = x, 0.0
    for k in range(3):
        c = c * 1.1 + 0.5
        total = total + (k + 1) * np.sum(c)
    return np.sum(c ** 2) + total


def use_fori_unroll(x):
    return np.sum(lax.fori_loop(0, 4, body_fori, x, unroll=2))


def use_map_batch_size(x):
    return np.sum(lax.map(square_sin, x.reshape(3, 1) * x, batch_size=2) * x)


def map_reference(x):
    return np.sum(np.sin(x.reshape(3, 1) * x) ** 2 * x)


def two_true(a, b):
    return np.sum(np.sin(a) * b)


def two_false(a, b):
    return np.sum(a * a) - b


def use_cond_two(x):
    return lax.cond(np.sum(x) > 0, two_true, two_false, x, x[0] * x[1])


def cond_two_reference(x):
    b = x[0] * x[1]
    return np.sum(np.sin(x) * b) if np.sum(x) > 0 else np.sum(x * x) - b


def use_cond_zero(x):                       # zero operands: the branches capture x
    return lax.cond(x[1] > 0, lambda: np.sum(x ** 3), lambda: np.sum(np.cos(x) * x))


def cond_zero_reference(x):
    return np.sum(x ** 3) if x[1] > 0 else np.sum(np.cos(x) * x)


def switch_second(a, b):
    return np.sum(np.exp(a) * b)


def use_switch_two(x):
    branches = [two_true, switch_second, two_false]
    return lax.switch(1, branches, x, np.cos(x)) + lax.switch(-2, branches, x, x[2])


def switch_two_reference(x):
    return np.sum(np.exp(x) * np.cos(x)) + np.sum(np.sin(x) * x[2])


def use_switch_zero(x):
    return lax.switch(5, [lambda: np.sum(x), lambda: np.prod(np.sin(x))])


def switch_zero_reference(x):
    return np.prod(np.sin(x))


# ---- scan and map over pytrees (as in JAX), and switch with an index that
# differs between vmap's examples

Pair = collections.namedtuple('Pair', 'a b')


def nested_step(c, x):                      # x: {'a': (row, row), 'b': row}
    c = c * 0.5 + x['a'][0] * x['a'][1] + x['b']
    return c, (c, {'sq': x['b'] ** 2}, None)


def use_scan_nested(x):
    xs = {'a': (x, x[::-1] * 2.0), 'b': np.sin(x)}
    c, (cs, squares, nothing) = lax.scan(nested_step, 0.1, xs)
    return c + np.sum(cs * np.arange(1.0, 4.0)) + np.sum(squares['sq'])


def scan_nested_reference(x):
    c, total = 0.1, 0.0
    for i in range(3):
        c = c * 0.5 + x[i] * x[2 - i] * 2.0 + np.sin(x[i])
        total = total + (i + 1) * c + np.sin(x[i]) ** 2
    return c + total


def use_scan_namedtuple(x):                 # a namedtuple in, one out per step
    c, ys = lax.scan(lambda c, p: (c * p.b + p.a, Pair(c, p.a * c)), 0.5, Pair(x, np.cos(x)))
    return c + np.sum(ys[0]) + np.sum(ys[1] ** 2)


def scan_namedtuple_reference(x):
    c, total = 0.5, 0.0
    for i in range(3):
        total = total + c + (x[i] * c) ** 2
        c = c * np.cos(x[i]) + x[i]
    return c + total


def use_map_nested(x):
    out = lax.map(lambda p: {'s': np.sum(p.a * p.b), 't': (p.a[0], np.sin(p.b))},
                  Pair(x.reshape(3, 1) * x, x.reshape(3, 1) + x))
    return np.sum(out['s'] ** 2) + np.sum(out['t'][0]) + np.sum(out['t'][1] * x)


def map_nested_reference(x):
    total = 0.0
    for i in range(3):
        a, b = x[i] * x, x[i] + x
        total = total + np.sum(a * b) ** 2 + a[0] + np.sum(np.sin(b) * x)
    return total


def use_switch_by_sign(x):                  # under vmap, an index per example
    index = np.sum(x > 0.25) * 2 - 1        # -1 .. 5, clamped into 0 .. 2
    # (each branch captures x: vmap calls a function taken from a list by a
    # loop's index only where the list's closures capture alike)
    return lax.switch(index, [lambda v: np.sum(np.exp(v * x[2])), lambda v: np.sum(v ** 2 * x[0]),
                              lambda v: np.prod(v + x[1])], x)


def switch_by_sign_reference(x):
    index = min(max(int(np.sum(x > 0.25)) * 2 - 1, 0), 2)
    return [np.sum(np.exp(x * x[2])), np.sum(x ** 2 * x[0]), np.prod(x + x[1])][index]


SIGNATURE_CASES = [(use_scan_reverse, scan_reverse_reference),
                   (use_scan_length_keyword, scan_length_reference),
                   (use_fori_unroll, fori_reference),
                   (use_map_batch_size, map_reference),
                   (use_cond_two, cond_two_reference),
                   (use_cond_zero, cond_zero_reference),
                   (use_switch_two, switch_two_reference),
                   (use_switch_zero, switch_zero_reference),
                   (use_scan_nested, scan_nested_reference),
                   (use_scan_namedtuple, scan_namedtuple_reference),
                   (use_map_nested, map_nested_reference),
                   (use_switch_by_sign, switch_by_sign_reference)]
SIGNATURE_IDS = [f.__name__ for f, _ in SIGNATURE_CASES]
# rows taking either branch of use_cond_two and use_cond_zero, and each of
# use_switch_by_sign's (indices 3, -1, 1, 1: clamped to 2, 0, 1, 1)
XS = np.stack([X, -X - 0.5, 0.5 * X, np.array([-1.0, 0.2, 0.4])])


@pytest.mark.parametrize('f, reference', SIGNATURE_CASES, ids=SIGNATURE_IDS)
def test_signatures_values_and_derivatives(f, reference):
    for x in XS:
        assert np.isclose(f(x), reference(x))
        np.testing.assert_allclose(codax.grad(f)(x), numeric_grad(reference, x),
                                   rtol=1e-5, atol=1e-7)
        v = np.array([0.2, -1.0, 0.5])
        value, tangent = codax.jvp(f, (x,), (v,))
        assert np.isclose(value, reference(x))
        assert np.isclose(tangent, np.dot(numeric_grad(reference, x), v), rtol=1e-5)


@pytest.mark.parametrize('f, reference', SIGNATURE_CASES, ids=SIGNATURE_IDS)
def test_signatures_hessian(f, reference):
    for x in XS[:2]:
        expected = np.stack([numeric_grad(lambda y: codax.grad(f)(y)[i], x) for i in range(3)])
        np.testing.assert_allclose(codax.hessian(f)(x), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('f, reference', SIGNATURE_CASES, ids=SIGNATURE_IDS)
def test_signatures_vmap_and_jit(f, reference):
    loop = [reference(x) for x in XS]
    np.testing.assert_allclose(codax.vmap(f)(XS), loop, rtol=1e-12)
    np.testing.assert_allclose(codax.jit(codax.vmap(f))(XS), loop, rtol=1e-12)
    for x in XS:
        np.testing.assert_allclose(codax.jit(f)(x), reference(x), rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(XS),
                               [numeric_grad(reference, x) for x in XS], rtol=1e-5, atol=1e-7)


def zero_operands_true():
    return 1.0


def zero_operands_false():
    return -1.0


def test_signatures_in_plain_python():
    assert lax.cond(True, zero_operands_true, zero_operands_false) == 1.0
    assert lax.cond(0, zero_operands_true, zero_operands_false) == -1.0
    assert lax.cond(False, two_true, two_false, X, 2.0) == np.sum(X * X) - 2.0
    assert lax.switch(9, [zero_operands_true, zero_operands_false]) == -1.0
    assert lax.switch(0, [two_true, two_false], X, X) == np.sum(np.sin(X) * X)
    c, ys = lax.scan(reverse_step, 0.5, X, None, True)
    c_ref, ys_ref = lax.scan(reverse_step, 0.5, X[::-1])
    assert c == c_ref and np.array_equal(ys, ys_ref[::-1])
    assert lax.fori_loop(0, 4, body_fori, 1.0, unroll=True) == lax.fori_loop(0, 4, body_fori, 1.0)
    np.testing.assert_array_equal(lax.map(square_sin, X, batch_size=2), np.sin(X) ** 2)


def too_few_arguments(x):
    return lax.cond(x[0] > 0, np.sum)


def test_bad_arguments():
    with pytest.raises(ValueError, match='xs=None needs length'):
        lax.scan(scan_none_step, X)
    with pytest.raises(ValueError, match='length=5, but xs has leading size 3'):
        lax.scan(scan_step, 0.5, X, length=5)
    with pytest.raises(ValueError, match='at least one branch'):
        lax.switch(0, [], X)
    with pytest.raises(ValueError, match='at least one branch'):
        codax.grad(lambda x: lax.switch(0, [], x))(X)
    with pytest.raises(TypeError, match='false_fun'):
        too_few_arguments(X)
    with pytest.raises(codax.SourceError, match="missing a required argument: 'false_fun'"):
        codax.grad(too_few_arguments)(X)


# (jacrev of grad is slow to compile: one scan over pytrees, and switch)
@pytest.mark.parametrize('f', [use_scan_nested, use_switch_by_sign], ids=lambda f: f.__name__)
def test_jacrev_of_grad(f):
    x = XS[0]
    expected = np.stack([numeric_grad(lambda y: codax.grad(f)(y)[i], x) for i in range(3)])
    np.testing.assert_allclose(codax.jacrev(codax.grad(f))(x), expected, rtol=1e-5, atol=1e-7)


def test_scan_and_map_keep_pytree_structures():
    xs = {'a': (X, 2 * X), 'b': np.cos(X)}
    c, ys = lax.scan(nested_step, 0.1, xs)
    cs, squares, nothing = ys
    assert nothing is None and set(squares) == {'sq'}       # None stays None, as in JAX
    c_ref, cs_ref = 0.1, []
    for i in range(3):
        c_ref = c_ref * 0.5 + X[i] * 2 * X[i] + np.cos(X[i])
        cs_ref.append(c_ref)
    assert np.isclose(c, c_ref)
    np.testing.assert_allclose(cs, cs_ref)
    np.testing.assert_allclose(squares['sq'], np.cos(X) ** 2)
    # each step gets the namedtuple's rows as that namedtuple; outputs stack alike
    c, ys = lax.scan(lambda c, p: (c + p.a * p.b, Pair(p.a, c)), 0.0, Pair(X, np.sin(X)))
    assert type(ys) is Pair and np.isclose(c, np.sum(X * np.sin(X)))
    np.testing.assert_allclose(ys.b, np.cumsum(np.r_[0.0, X * np.sin(X)])[:3])
    M = np.arange(6.0).reshape(2, 3)
    out = lax.map(lambda r: {'s': np.sum(r), 't': (r[0], r * 2)}, M)
    np.testing.assert_allclose(out['s'], M.sum(axis=1))
    np.testing.assert_allclose(out['t'][0], M[:, 0])
    np.testing.assert_allclose(out['t'][1], 2 * M)
    np.testing.assert_allclose(lax.map(lambda p: p.a * p.b, Pair(X, X ** 2)), X ** 3)


def test_switch_vmap_over_the_index():
    """Every branch runs and each example takes its own (JAX's select), with
    the index clamped into range per example."""
    branches = [np.sin, lambda v: v ** 2, lambda v: -v]
    indices = np.array([0, 1, 2, 1, -4, 9])
    rows = np.stack([X, -X, 2 * X, X + 1, X, -X])
    expected = [branches[min(max(i, 0), 2)](r) for i, r in zip(indices, rows)]
    out = codax.vmap(lambda i, x: lax.switch(i, branches, x))(indices, rows)
    np.testing.assert_allclose(out, expected)
    shared = codax.vmap(lambda i, x: lax.switch(i, branches, x), in_axes=(0, None))(indices, X)
    np.testing.assert_allclose(shared, [branches[min(max(i, 0), 2)](X) for i in indices])

    def total(x, i):
        return np.sum(lax.switch(i, branches, x) * x)
    grads = codax.vmap(codax.grad(total))(rows, indices)
    np.testing.assert_allclose(
        grads, [numeric_grad(lambda y: total(y, i), r) for i, r in zip(indices, rows)],
        rtol=1e-6, atol=1e-8)


def while_with_lambdas(x):
    return lax.while_loop(lambda v: np.sum(v) < 10.0, lambda v: v * 2.0, x)


def test_jacfwd_through_a_loop_of_lambdas():
    x = np.array([0.3, 0.7, 1.2])                    # doubled three times
    np.testing.assert_allclose(codax.jacfwd(while_with_lambdas)(x), 8.0 * np.eye(3))


def scan_two_lengths(x):
    return lax.scan(lambda c, v: (c + v[0] * v[1], c), 0.0, (x, np.arange(4.0)))[0]


def test_scan_leading_sizes_must_agree():
    for call in (scan_two_lengths, codax.grad(scan_two_lengths)):
        with pytest.raises(ValueError, match=r'different leading axis sizes: \[3, 4\]'):
            call(X)
    with pytest.raises(ValueError, match=r'different leading axis sizes: \[4, 3\]'):
        lax.scan(scan_pair_step, 0.0, (np.ones(4), X))
    with pytest.raises(ValueError, match='length=4, but xs has leading size 3'):
        lax.scan(scan_dict_step, 0.0, {'a': X, 'b': X}, length=4)
    with pytest.raises(ValueError, match='no leading axis'):
        lax.scan(scan_pair_step, 0.0, (X, 2.0))
    with pytest.raises(ValueError, match=r'different leading axis sizes: \[3, 4\]'):
        codax.vmap(scan_two_lengths)(np.ones((2, 3)))   # per example: 3 rows, and 4
