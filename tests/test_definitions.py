"""NumPy functions that codax defines in NumPy (runtime/definitions.py): each
gives NumPy's value, and its grad, jvp and vmap agree with finite
differences and a Python loop over examples."""
import numpy as np
import pytest

import codax
from tests.helpers import numeric_grad

R = np.random.RandomState(7)
X = R.rand(3, 4) + 0.5                 # positive, no ties
V = R.rand(5) * 3.0 + 0.1
NAN = np.where(np.eye(3, 4) > 0, np.nan, X)
PSD = R.rand(3, 3)
PSD = PSD @ PSD.T + np.eye(3)
GRID = np.array([0.0, 0.5, 1.5, 2.0, 3.0])

# name -> (a scalar function of one array, the array)
CASES = {
    'sinc': (lambda a: np.sum(np.sinc(a) ** 2), X - 1.0),
    'ldexp': (lambda a: np.sum(np.ldexp(a, 3) * a), X),
    'heaviside': (lambda a: np.sum(np.heaviside(a - 1.0, 0.5) * a), X),
    'rollaxis': (lambda a: np.sum(np.rollaxis(a[None], 2, 1) * np.arange(12.0).reshape(1, 4, 3)),
                 X),
    'atleast_3d': (lambda a: np.sum(np.atleast_3d(a) ** 2 * np.arange(4.0)[None, :, None]), X),
    'matrix_transpose': (lambda a: np.sum(np.matrix_transpose(a) @ a), X),
    'array_split': (lambda a: np.sum(np.array_split(a, 3, axis=1)[0] ** 3), X),
    'hsplit': (lambda a: np.sum(np.hsplit(a, 2)[1] ** 3), X),
    'vsplit': (lambda a: np.sum(np.vsplit(a, [1])[1] ** 3), X),
    'compress': (lambda a: np.sum(np.compress([True, False, True], a, axis=0) ** 2), X),
    'extract': (lambda a: np.sum(np.extract(a > 1.0, a) ** 2), X),
    'nanmax': (lambda a: np.sum(np.nanmax(a, axis=1) ** 2), NAN),
    'nanmin': (lambda a: np.sum(np.nanmin(a, axis=0) ** 2), NAN),
    'nanprod': (lambda a: np.nanprod(a, axis=1).sum(), NAN),
    'nancumsum': (lambda a: np.sum(np.nancumsum(a, axis=1) ** 2), NAN),
    'nancumprod': (lambda a: np.sum(np.nancumprod(a)), NAN),
    'nanvar': (lambda a: np.sum(np.nanvar(a, axis=1, ddof=1)), NAN),
    'nanstd': (lambda a: np.nanstd(a), NAN),
    'trapezoid': (lambda a: np.sum(np.trapezoid(a ** 2, axis=0)), X),
    'trapezoid_x': (lambda a: np.trapezoid(a[0] ** 2, x=np.array([0.0, 0.5, 2.0, 2.5])), X),
    'polyval': (lambda a: np.sum(np.polyval(a[0], a[1])), X),
    'gradient': (lambda a: np.sum(np.gradient(a, 0.5, axis=1) ** 2), X),
    'gradient_all': (lambda a: np.sum(np.gradient(a)[0] * np.gradient(a)[1]), X),
    'gradient_order2': (lambda a: np.sum(np.gradient(a, axis=1, edge_order=2) ** 2), X),
    'interp': (lambda a: np.sum(np.interp(np.array([-1.0, 0.2, 1.5, 2.9, 4.0]), GRID, a) ** 2),
               V),
    'interp_x': (lambda a: np.sum(np.interp(a, GRID, GRID ** 2, left=-1.0, right=9.5)), V),
    'cov': (lambda a: np.sum(np.cov(a) ** 2), X),
    'cov_rowvar': (lambda a: np.sum(np.cov(a, rowvar=False, ddof=0) ** 2), X),
    'cov_weights': (lambda a: np.sum(np.cov(a, fweights=[1, 2, 1, 3], aweights=a[0])), X),
    'corrcoef': (lambda a: np.sum(np.corrcoef(a) ** 3), X),
    'quantile': (lambda a: np.sum(np.quantile(a, [0.2, 0.7], axis=1) ** 2), X),
    'quantile_keep': (lambda a: np.sum(np.quantile(a, 0.4, axis=0, keepdims=True)), X),
    'percentile': (lambda a: np.percentile(a, 35.0), X),
    'percentile_mid': (lambda a: np.percentile(a, 35.0, method='midpoint'), X),
    'eigvalsh': (lambda a: np.sum(np.linalg.eigvalsh(a + a.T) ** 2), PSD),
    'vecdot': (lambda a: np.sum(np.vecdot(a, a[::-1]) ** 2), X),
    'r_': (lambda a: np.sum(np.r_[a[0], a[1, 1], a[2]] ** 2 * np.arange(9.0)), X),
    'c_': (lambda a: np.sum(np.c_[a[0], a[1]] ** 2 * np.arange(2.0)), X),
    'add.outer': (lambda a: np.sum(np.add.outer(a[0], a[1, :2]) ** 2), X),
    'multiply.outer': (lambda a: np.sum(np.multiply.outer(a, a[0]) ** 2), X),
    'subtract.outer': (lambda a: np.sum(np.subtract.outer(V[:2], a) ** 3), X),
    'add.reduce': (lambda a: np.sum(np.add.reduce(a ** 2) * np.arange(4.0)), X),
    'multiply.reduce': (lambda a: np.sum(np.multiply.reduce(a, axis=1)), X),
    'maximum.reduce': (lambda a: np.sum(np.maximum.reduce(a, axis=None) ** 2), X),
    'add.accumulate': (lambda a: np.sum(np.add.accumulate(a, 1) ** 2), X),
    'multiply.accumulate': (lambda a: np.sum(np.multiply.accumulate(a)), X),
    'meshgrid': (lambda a: np.sum(np.meshgrid(a[0], a[1, :3] ** 2)[0] *
                                  np.meshgrid(a[0], a[1, :3] ** 2)[1] ** 2 * X[:, :4]), X),
    'meshgrid_ij': (lambda a: np.sum(np.meshgrid(a[0, :2], a[1], indexing='ij')[1] ** 3 *
                                     X[:2]), X),
    'broadcast_arrays': (lambda a: np.sum(np.broadcast_arrays(a, a[:1, :1] * 2.0)[1] ** 3 * X), X),
    'insert': (lambda a: np.sum(np.insert(a, 1, a[:, 0] * 3.0, axis=1) ** 2 * GRID[:, None]
                                [:3]), X),
    'insert_list': (lambda a: np.sum(np.insert(a, [1, 5, 5, -1], a[0]) ** 2 * np.arange(16.0)),
                    X),
    'delete': (lambda a: np.sum(np.delete(a, [0, 2], axis=1) ** 2 * X[:, :2]), X),
    'convolve': (lambda a: np.sum(np.convolve(a, a[:3] ** 2) ** 2 * np.arange(7.0)), V),
    'correlate': (lambda a: np.sum(np.correlate(a, GRID[:3], 'full') ** 2 * np.arange(7.0)), V),
    'correlate_valid': (lambda a: np.sum(np.correlate(a[:3], a ** 2) ** 2), V),
    'piecewise': (lambda a: np.sum(np.piecewise(a, [a < 1.5, a >= 1.5],
                                                [lambda x: x ** 2, lambda x: np.sin(x)]) * V), V),
    'piecewise_otherwise': (lambda a: np.sum(np.piecewise(a, [a < 1.0, a > 2.0],
                                                          [lambda x: x ** 3, 2.0, lambda x: -x])
                                             * V), V),
    'partition': (lambda a: np.sum(np.partition(a, 2)[:3] ** 2 * GRID[:3]), V),
    'partition_axis': (lambda a: np.sum(np.partition(a, [1, 2], axis=0)[1] ** 2 * V[:4]), X),
}


@pytest.mark.parametrize('name', CASES)
def test_grad_matches_finite_differences(name):
    f, x = CASES[name]
    np.testing.assert_allclose(codax.grad(f)(x), numeric_grad(f, (x,)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', CASES)
def test_jvp_matches_finite_differences(name):
    f, x = CASES[name]
    t = np.cos(np.arange(x.size)).reshape(x.shape)
    value, slope = codax.jvp(f, (x,), (t,))
    eps = 1e-6
    np.testing.assert_allclose(value, f(x))
    np.testing.assert_allclose(slope, (f(x + eps * t) - f(x - eps * t)) / (2 * eps),
                               rtol=1e-5, atol=1e-6)


VMAP_CASES = [k for k in CASES if k != 'extract']                   # (extract: sizes differ)


@pytest.mark.parametrize('name', VMAP_CASES)
def test_vmap_of_grad_matches_a_loop(name):
    f, x = CASES[name]
    xs = np.stack([x, x * 1.1, x[::-1] if x.ndim == 1 else x * 0.9])
    np.testing.assert_allclose(codax.vmap(f)(xs), [f(e) for e in xs], rtol=1e-12)
    expected = np.stack([codax.grad(f)(e) for e in xs])
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(xs), expected, rtol=1e-9, atol=1e-12)


VALUES = [
    lambda: np.sinc(np.array([0.0, 0.5, -1.5], dtype=np.float32)),
    lambda: np.ldexp(np.float32(1.5), np.array([1, -2])),
    lambda: np.heaviside(np.array([-1.0, 0.0, np.nan, 2.0]), 0.5),
    lambda: np.rollaxis(np.ones((2, 3, 4, 5)), 3, 1),
    lambda: np.rollaxis(np.ones((2, 3, 4, 5)), 1, 4),
    lambda: np.rollaxis(np.ones((2, 3, 4, 5)), -1),
    lambda: np.atleast_3d(np.float64(2.0)),
    lambda: np.array_split(np.arange(10.0), 4),
    lambda: np.nanmax(np.array([[np.nan, np.nan], [1.0, np.nan]]), axis=1),
    lambda: np.nanvar(NAN, axis=0, keepdims=True),
    lambda: np.nanstd(NAN, ddof=1),
    lambda: np.gradient(X, 0.25),
    lambda: np.gradient(X, axis=0, edge_order=2),
    lambda: np.interp(np.array([-1.0, 0.0, 0.7, 1.5, 3.0, 4.0]), GRID, GRID ** 3),
    lambda: np.cov(X[0], X[1]),
    lambda: np.cov(X.astype(np.float32), aweights=X[0], ddof=2),
    lambda: np.corrcoef(X, rowvar=False),
    lambda: np.quantile(X, np.array([[0.1, 0.5], [0.9, 1.0]]), axis=0),
    lambda: np.quantile(X, 0.3, keepdims=True),
    lambda: np.quantile(X, 0.5, axis=-1, method='nearest'),
    lambda: np.quantile(X, 0.45, method='lower'),
    lambda: np.quantile(X, 0.45, method='higher'),
    lambda: np.percentile(V, [10, 50, 95]),
    lambda: np.polyval(np.array([1.0, -2.0, 3.0]), V),
    lambda: np.r_[X[0], 2.0, X[1]],
    lambda: np.c_[X, X[:, 0], 1.0 + X],
    lambda: np.meshgrid(V, X[0], X[1, :2]),
    lambda: np.meshgrid(V, X[0].astype(np.float32), indexing='ij', sparse=True),
    lambda: np.broadcast_arrays(X[:, :1], V[:4], 2.0),
    lambda: np.insert(X, [0, 2], [[9.0, 8.0]], 1),
    lambda: np.insert(X, [-1, 0, 0], 1.5),
    lambda: np.insert(X.astype(int), 2, 2.7, 1),
    lambda: np.insert(X, [1], [[1.0, 2.0, 3.0]], 1),
    lambda: np.insert(X.astype(np.float32), [3, 1], 2.0, axis=-1),
    lambda: np.insert(X, [], 1.0),
    lambda: np.delete(X, [True, False, True, False], 1),
    lambda: np.delete(X, -1, 0),
    lambda: np.delete(X, slice(2, 9, 3)),
    lambda: np.insert(X, slice(0, 3), 7.0, axis=0),
    lambda: np.partition(X, 5, axis=None),
    lambda: np.convolve(V, X[0] + 1j * X[1], 'same'),
    lambda: np.convolve(np.arange(3), np.arange(5)),
    lambda: np.correlate(X[0], V, 'full'),
    lambda: np.correlate(V + 1j * V[::-1], X[0] - 2j, 'same'),
    lambda: np.piecewise(np.arange(5), [np.arange(5) > 2], [lambda x: x * 2.5, -1.0]),
    lambda: np.piecewise(V.astype(np.float32), V > 1.0, [lambda x: x * 2.0]),
    lambda: np.partition(V, 1),
    lambda: np.unique(np.round(X, 1), return_index=True, return_inverse=True,
                      return_counts=True),
    lambda: np.unique(np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 5.0]]), axis=0,
                      return_inverse=True),
]


@pytest.mark.parametrize('case', range(len(VALUES)))
def test_values_and_dtypes_are_numpys(case):
    """The definition runs in place of NumPy's under codax.jit's Python path:
    compare what transformed code returns with NumPy's own result."""
    make = VALUES[case]
    expected = make()
    got = codax.jit(make)()
    for g, e in zip(got, expected) if isinstance(expected, (list, tuple)) else [(got, expected)]:
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-12)
        assert np.asarray(g).dtype == np.asarray(e).dtype


def test_second_derivatives_go_through_definitions():
    f = lambda a: np.sum(np.sinc(a) ** 2) + np.nanvar(a) + np.sum(np.gradient(a) ** 3)
    x = V - 1.0
    grad = codax.grad(f)
    eps = 1e-6
    columns = [(grad(x + eps * e) - grad(x - eps * e)) / (2 * eps) for e in np.eye(x.size)]
    np.testing.assert_allclose(codax.hessian(f)(x), np.array(columns).T, rtol=1e-5, atol=1e-6)


def test_r_with_a_slice_is_refused_naming_the_line():
    def f(a):
        return np.sum(np.r_[0:3, a])
    with pytest.raises(codax.SourceError, match=r'test_definitions.py:\d+.*np.r_\[...\]'):
        codax.grad(f)(np.ones(2))


def test_a_ufunc_method_without_a_meaning_is_refused_naming_the_line():
    def f(a):
        return np.sum(np.arctan2.accumulate(a))
    with pytest.raises(codax.SourceError, match=r'test_definitions.py:\d+.*arctan2.accumulate'):
        codax.grad(f)(np.ones(2))


def test_gradient_with_a_spacing_per_axis_is_refused():
    with pytest.raises(TypeError, match='one uniform spacing'):
        codax.grad(lambda a: np.sum(np.gradient(a, 0.5, 2.0)[0]))(X)
