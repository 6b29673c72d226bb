"""vmap fixes from the session-12 probe: the bitwise operators batch element
by element; vmap(grad) through einsum's full reductions (expand_dims with a
tuple of axes); per-example loops over calls with no rule that give
iterators (map, filter, zip) or objects no batched array holds."""
import numpy as np
import pytest

import codax

X = np.array([[0.3, -0.7, 1.2, 1.9], [0.5, 0.1, -0.4, 2.0], [1.5, -1.1, 0.2, 0.9]])
INTS = np.array([[3, 5, 6, 7], [1, 2, 12, 9]])


def looped(f, xs):
    return np.stack([np.asarray(f(x)) for x in xs])


def finite_difference_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        g[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return g


# ---- bitwise operators ----

def and_mask(x):
    return np.sum(np.where((x > 0) & (x < 1.4), x, 0.0) ** 2)


def or_mask(x):
    m1 = x > 0
    m2 = x < -0.5
    return np.sum(np.where(m1 | m2, x, 0.0) ** 2)


def xor_mask(x):
    return np.sum(np.where((x > 0) ^ (x > 1), x, 0.0) ** 2)


def inverted_mask(x):
    m = x > 0
    return np.sum(np.where(~m, x, 0.0) ** 2)


def inverted_index(x):
    m = x > 10.0                       # no entry: every example keeps all four
    return np.sum(x[~m] ** 2)


def unbatched_int_and(x):
    return np.sum(x * ((np.arange(4) & 1) == 1))


def int_ops(a):
    return (a << 1) + (a >> 1) + (a & 3) + (a | 8) + (a ^ 5) + ~a


def int_ops_with_scalar_batch(a):
    return (a[0] & a) + (a[1] << 2)


@pytest.mark.parametrize('f', [and_mask, or_mask, xor_mask, inverted_mask, inverted_index,
                               unbatched_int_and])
def test_bitwise_masks_vmap_match_loop(f):
    np.testing.assert_allclose(codax.vmap(f)(X), looped(f, X), rtol=1e-12)


@pytest.mark.parametrize('f', [and_mask, or_mask, xor_mask, inverted_mask])
def test_bitwise_masks_vmap_grad_match_finite_differences(f):
    expected = np.stack([finite_difference_grad(f, x) for x in X])
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(X), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('f', [int_ops, int_ops_with_scalar_batch])
def test_bitwise_integer_operators_vmap_match_loop(f):
    got = codax.vmap(f)(INTS)
    expected = looped(f, INTS)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype


# ---- einsum's full reductions under vmap(grad) ----

def full_2d(x):
    return np.einsum('ij->', x.reshape(2, 2) ** 2)


def full_3d(x):
    return np.einsum('ijk->', np.sin(x).reshape(1, 2, 2) ** 3)


def full_1d(x):
    return np.einsum('i->', x ** 3)


def full_two_operands(x):
    m = x.reshape(2, 2)
    return np.einsum('ij,ij->', m, np.cos(m))


def expand_then_broadcast(x):
    return np.sum((np.expand_dims(x[0], (0, 1)) + np.ones((2, 3))) ** 2)


@pytest.mark.parametrize('f', [full_2d, full_3d, full_1d, full_two_operands,
                               expand_then_broadcast])
def test_full_reductions_vmap_grad_match_finite_differences(f):
    expected = np.stack([finite_difference_grad(f, x) for x in X])
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(X), expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.vmap(f)(X), looped(f, X), rtol=1e-12)


# ---- per-example loops: iterators and objects ----

def over_map(x):
    return sum(map(lambda v: v ** 2, x))


def over_filter(x):
    return sum(filter(lambda v: v > -2.0, x))


def over_dict_zip(x):
    d = dict(zip(['p', 'q'], [x[0], x[1] ** 2]))
    return d['p'] * d['q']


def for_over_map(x):
    s = 0.0
    for v in map(np.sin, x):
        s = s + v
    return s


def next_of_map(x):
    it = map(lambda v: v * 2, x)
    first = next(it)
    return first + next(it)


@pytest.mark.parametrize('f', [over_map, over_filter, over_dict_zip, for_over_map, next_of_map])
def test_iterators_vmap_match_loop(f):
    np.testing.assert_allclose(codax.vmap(f)(X), looped(f, X), rtol=1e-12)


def filter_of_different_lengths(x):
    return sum(filter(lambda v: v > 0, x))          # each example's own count


def list_of_different_lengths(x):
    return np.sum(np.array(list(filter(lambda v: v > 0, x))))


def for_of_different_lengths(x):
    s = 0.0
    for v in filter(lambda v: v > 0, x):
        s = s + v
    return s


XS = X.copy()
XS[1, 0] = -1.0                                      # 3, 2 and 3 positive entries


def test_iterators_of_different_lengths_per_example():
    np.testing.assert_allclose(codax.vmap(filter_of_different_lengths)(XS),
                               looped(filter_of_different_lengths, XS), rtol=1e-12)


@pytest.mark.parametrize('f', [list_of_different_lengths, for_of_different_lengths])
def test_iterators_of_different_lengths_batched_raise_at_the_users_line(f):
    line = f.__code__.co_firstlineno + (1 if f is list_of_different_lengths else 2)
    with pytest.raises(ValueError, match=rf'test_vmap_probe_fixes_s12\.py:{line}: .*different'):
        codax.vmap(f)(XS)


class Lin:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def apply(self, v):
        return np.tanh(self.W @ v + self.b)


def builds_object(x):
    m = Lin(np.eye(4) * x[0], x)
    return np.sum(m.apply(x))


def test_object_differing_between_examples_raises_at_the_users_line():
    line = builds_object.__code__.co_firstlineno + 1
    with pytest.raises(ValueError, match=rf'test_vmap_probe_fixes_s12\.py:{line}: .*Lin'):
        codax.vmap(builds_object)(X)
