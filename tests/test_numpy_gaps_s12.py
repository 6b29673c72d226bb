"""NumPy functions written in C or behind NumPy's array-function dispatcher,
which codax now defines in NumPy (runtime/definitions.py, session 12).

Each function's values and dtype are checked against NumPy itself (through
codax.vjp, which runs the transformed code), its Jacobian by forward and
reverse mode against central differences, vmap against a Python loop over
examples, and the smooth ones' Hessians against differences of the gradient.
"""
import numpy as np
import pytest

import codax
from helpers import numeric_jacobian

_rng = np.random.default_rng(12)
x6 = np.array([0.3, -0.8, 1.1, 0.5, -0.4, 0.9])
nan6 = np.array([0.3, np.nan, 1.1, 0.5, -0.4, 0.9])
grid = np.linspace(0.0, 1.0, 6)


def fftshift(x):
    return np.fft.fftshift(x.reshape(2, 3)) * np.arange(1.0, 7.0).reshape(2, 3)


def ifftshift(x):
    return np.fft.ifftshift(x[:5] * np.arange(1.0, 6.0), axes=0)


def ediff1d(x):
    return np.ediff1d(x.reshape(2, 3) ** 2, to_end=x[:2], to_begin=-1.0)


def block(x):
    corner = x[:4].reshape(2, 2)
    return np.block([[corner, x[4:, None] * corner[:, :1]], [x[None, 1:3], x[5]]])


def nanmedian(x):
    return np.nanmedian(np.where(np.isnan(nan6), np.nan, x).reshape(2, 3), axis=1)


def nanpercentile(x):
    return np.nanpercentile(np.where(np.isnan(nan6), np.nan, x), [20.0, 75.0])


def nanquantile(x):
    return np.nanquantile(np.where(np.isnan(nan6), np.nan, x).reshape(3, 2), 0.3, axis=0,
                          keepdims=True)


def polyder(x):
    return np.polyder(x ** 2, 2)


def polyint(x):
    return np.polyint(x[:4], 2, k=[x[4], 0.5])


def polymul(x):
    return np.polymul(x[:2], np.sin(x[2:]))


def polyadd(x):
    return np.polyadd(x[:2], x[2:] ** 2)


def polysub(x):
    return np.polysub(x[:4] ** 2, x[4:])


def polyfit(x):
    return np.polyfit(grid + 0.1 * x, np.cos(x), 2, w=1.0 + x ** 2)


def cond(x):
    a = x[:4].reshape(2, 2) + 2.0 * np.eye(2)
    return np.stack([np.linalg.cond(a), np.linalg.cond(a, 1)])


def i0(x):
    return np.i0(np.concatenate([x, 12.0 * x]))


def unwrap(x):
    return np.unwrap(4.0 * x)


def bincount(x):
    return np.bincount(np.array([0, 2, 2, 4, 0, 3]), weights=x ** 2, minlength=6)


def choose(x):
    return np.choose(np.array([[0, 2, 1], [1, 0, 2]]), [x[:3], x[3:] ** 2, 0.5])


def diagflat(x):
    return np.diagflat(x[:4].reshape(2, 2), 1)


def fix(x):
    return np.fix(3.0 * x) * x


def resize(x):
    return np.resize(x[:4] ** 2, (3, 3))


def apply_along_axis(x):
    return np.apply_along_axis(lambda row: np.cumsum(np.sin(row)) * row[0], 0, x.reshape(3, 2))


def cumulative_sum(x):
    return np.cumulative_sum(x.reshape(2, 3), axis=1, include_initial=True)


def cumulative_prod(x):
    return np.cumulative_prod(x, include_initial=True)


def matvec(x):
    return np.matvec(x[:4].reshape(2, 2), x[4:])


def vecmat(x):
    return np.vecmat(x[4:], x[:4].reshape(2, 2))


def vectorize(x):
    return np.vectorize(lambda t, s: np.sin(t) * s if t > 0 else t * s ** 2)(x, x[::-1])


SMOOTH = [fftshift, ifftshift, ediff1d, block, nanmedian, nanpercentile, nanquantile, polyder,
          polyint, polymul, polyadd, polysub, polyfit, cond, i0, bincount, choose, diagflat,
          resize, apply_along_axis, cumulative_sum, cumulative_prod, vectorize]
FUNCTIONS = SMOOTH + [unwrap, fix] + [f for f in (matvec, vecmat)
                                      if hasattr(np, f.__name__)]


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_values_and_jacobians(f):
    value, pullback = codax.vjp(f, x6)
    want = f(x6)
    assert value.dtype == want.dtype and value.shape == want.shape
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-14)
    jac = numeric_jacobian(f, x6)
    np.testing.assert_allclose(codax.jacfwd(f)(x6), jac, rtol=1e-6, atol=1e-7)
    cotangent = _rng.standard_normal(want.shape)
    np.testing.assert_allclose(pullback(cotangent)[0],
                               np.tensordot(cotangent, jac, want.ndim), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_vmap_against_a_loop(f):
    xs = np.stack([x6, 1.1 * x6 + 0.05])
    want = np.stack([f(v) for v in xs])
    got = codax.vmap(f)(xs)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize('f', [ediff1d, nanmedian, polyint, polymul, i0, choose, resize,
                               cumulative_prod, vectorize, unwrap, fix, matvec],
                         ids=lambda f: f.__name__)
def test_float32_values_and_dtypes(f):
    if not hasattr(np, f.__name__) and f in (matvec,):
        pytest.skip('np.matvec is NumPy 2.2+')
    x = x6.astype(np.float32)
    got = codax.vjp(f, x)[0]
    want = f(x)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _scalar(f):
    return lambda x: np.sum(np.sin(f(x)))


@pytest.mark.parametrize('f', [nanquantile, polyfit, apply_along_axis],
                         ids=lambda f: f.__name__)
def test_hessians(f):
    g = _scalar(f)
    want = numeric_jacobian(codax.grad(g), x6, 1e-5)
    np.testing.assert_allclose(codax.hessian(g)(x6), want, rtol=1e-5, atol=1e-6)


def test_vmap_of_hessian():
    # (np.convolve's adjoint joins a list made in a loop: batched before with
    # pieces of unknown rank, transformer/batch_rules/adjoints.py join_vjp)
    g = _scalar(polymul)
    xs = np.stack([x6, x6[::-1] + 0.1])
    np.testing.assert_allclose(codax.vmap(codax.hessian(g))(xs),
                               np.stack([codax.hessian(g)(v) for v in xs]), rtol=1e-9, atol=1e-9)


# ---- histogram: counts and edges are constants; weights carry the derivative ----

def histogram_loss(x):
    counts, edges = np.histogram(x, bins=4)
    sums, _ = np.histogram(x, bins=edges, weights=x ** 2)
    dense, _ = np.histogram(x, bins=3, range=(-1.0, 1.0), density=True)
    # (the edges move with x: constants to codax, so only as bins here)
    return np.sum(counts * x[:4]) + np.sum(sums * np.arange(4)) + np.sum(dense * x[:3])


def histograms(x):
    return (np.histogram(x), np.histogram(x, 3, (-1.0, 1.0), True),
            np.histogram(x, np.array([-1.0, 0.0, 0.4, 2.0]), weights=x ** 2))


def test_histogram_values_and_gradient():
    got = codax.vjp(histograms, x6)[0]
    want = histograms(x6)
    for g, w in zip(got, want):
        for part, expected in zip(g, w):
            assert part.dtype == expected.dtype
            np.testing.assert_allclose(part, expected, rtol=1e-12)
    np.testing.assert_allclose(codax.grad(histogram_loss)(x6),
                               numeric_jacobian(histogram_loss, x6), rtol=1e-6, atol=1e-7)
    xs = np.stack([x6, 2.0 * x6])
    np.testing.assert_allclose(codax.vmap(codax.grad(histogram_loss))(xs),
                               [codax.grad(histogram_loss)(v) for v in xs], rtol=1e-12)


# ---- bincount under vmap: JAX's length= ----

def bincount_of(x, idx):
    return np.bincount(idx, weights=x, length=5)


def test_bincount_with_batched_indices():
    idx = np.array([[0, 1, 1, 4, 2, 0], [3, 3, 3, 0, 1, 2]])
    xs = np.stack([x6, -x6])
    want = np.stack([np.bincount(i, weights=v, minlength=5) for i, v in zip(idx, xs)])
    np.testing.assert_allclose(codax.vmap(bincount_of)(xs, idx), want)
    jac = codax.vmap(codax.jacrev(bincount_of))(xs, idx)
    np.testing.assert_allclose(jac, [np.eye(5)[:, i] for i in idx])


# ---- np.vectorize: a decorated function, refusals ----

@np.vectorize
def ramp(t, slope=0.5):
    if t > 0:
        return t ** 2
    return slope * t


def ramp_loss(x):
    return np.sum(ramp(x, 2.0) * x)


x3 = x6[:3]


def varargs_loss(x):
    return np.sum(np.vectorize(lambda *a: a[0])(x))


def test_vectorize_decorated_function():
    want = numeric_jacobian(ramp_loss, x3)
    np.testing.assert_allclose(codax.grad(ramp_loss)(x3), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(codax.hessian(ramp_loss)(x3),
                               np.diag(np.where(x3 > 0, 6.0 * x3, 4.0)), atol=1e-12)
    with pytest.raises(codax.SourceError, match='varargs_loss|test_numpy_gaps_s12.py'):
        codax.grad(varargs_loss)(x6)


def test_refusals_name_the_option():
    with pytest.raises(ValueError, match='full= or cov='):
        codax.grad(lambda x: np.sum(np.polyfit(grid, x, 1, cov=True)[0]))(x6)
    with pytest.raises(ValueError, match="estimator 'auto'"):
        codax.grad(lambda x: np.sum(np.histogram(x, bins='auto')[0] * x[0]))(x6)
    with pytest.raises(ValueError, match='invalid entry'):
        codax.grad(lambda x: np.sum(np.choose(np.array([0, 2]), [x[:2], x[2:4]])))(x6)
