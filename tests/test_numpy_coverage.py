"""NumPy functions with records of their own (runtime/primitives/searching.py,
fft.py), the .trace() method, and np.unique's JAX options: values against
NumPy, derivatives against finite differences, vmap against a loop."""
import numpy as np
import pytest

import codax
from tests.helpers import numeric_grad

R = np.random.RandomState(11)
V = R.rand(6)
X = R.rand(3, 4)
C = np.cos(np.arange(40.0))
W = np.arange(1.0, 41.0)
EPS = 1e-6


def _unique_padded(a, size, fill_value=None):
    """NumPy's unique values cut or padded to `size` as JAX pads them."""
    u = np.unique(a)
    pad = np.full(max(size - len(u), 0), u[0] if fill_value is None else fill_value)
    return np.concatenate([u, pad])[:size]


# name -> (a scalar function, its NumPy reference (None: itself), the argument)
CASES = {
    'searchsorted': (lambda a: np.sum(np.searchsorted(np.sort(a), a[:3] + 0.01) * a[:3]), None,
                     V),
    'matrix_rank': (lambda a: np.linalg.matrix_rank(np.outer(a, a)) * np.sum(a ** 2), None, V),
    'trace_method': (lambda a: np.outer(a, a ** 2).trace(1) * 2.0, None, V),
    'unique_size': (lambda a: np.sum(np.unique(np.round(a, 1), size=6) * W[:6] * a[0]),
                    lambda a: np.sum(_unique_padded(np.round(a, 1), 6) * W[:6] * a[0]), V),
    'unique_fill': (lambda a: np.sum(np.unique(a[:3] * C[:3], size=5, fill_value=-1.0) ** 2 *
                                     a[:5]),
                    lambda a: np.sum(_unique_padded(a[:3] * C[:3], 5, -1.0) ** 2 * a[:5]), V),
    'unique_cut': (lambda a: np.sum(np.unique(a, size=3) ** 3),
                   lambda a: np.sum(np.sort(a)[:3] ** 3), V),
    'rfft_power': (lambda a: np.sum(np.abs(np.fft.rfft(a)) ** 2 * W[:4]), None, V),
    'fft': (lambda a: np.sum(np.abs(np.fft.fft(a * C[:6])) ** 3), None, V),
    'fft_n': (lambda a: (np.sum(np.real(np.fft.fft(a, 8) * C[:8])) +
                         np.sum(np.imag(np.fft.fft(a ** 2, 4, norm='ortho')) ** 2)), None, V),
    'ifft': (lambda a: np.sum(np.abs(np.fft.ifft(np.fft.fft(a) * (1 + 1j * C[:6]),
                                                 norm='forward')) ** 2), None, V),
    'rfft_n': (lambda a: (np.sum(np.abs(np.fft.rfft(a, 9, norm='ortho')) * W[:5]) +
                          np.sum(np.abs(np.fft.rfft(a, 4)) ** 2)), None, V),
    'irfft': (lambda a: np.sum(np.fft.irfft(np.fft.rfft(a) * (C[:4] + 1j * C[4:8])) ** 2 * W[:6]),
              None, V),
    'irfft_n': (lambda a: np.sum(np.fft.irfft(np.fft.rfft(a) * (C[:4] + 1j), 7, norm='ortho') ** 2
                                 * W[:7]), None, V),
    'irfft_forward': (lambda a: np.sum(np.fft.irfft(np.fft.rfft(a) * C[:4], 4, norm='forward') *
                                       W[:4]), None, V),
    'fft2': (lambda a: np.sum(np.abs(np.fft.fft2(a * C[:12].reshape(3, 4))) ** 2 *
                              W[:12].reshape(3, 4)), None, X),
    'fftn_s': (lambda a: np.sum(np.abs(np.fft.fftn(a, s=(5, 3), axes=(0, 1))) ** 3), None, X),
    'ifftn_axes': (lambda a: np.sum(np.real(np.fft.ifftn(a * C[:12].reshape(3, 4), axes=(0,)) *
                                            C[:12].reshape(3, 4))), None, X),
    'fft_axis0': (lambda a: np.sum(np.abs(np.fft.fft(a, axis=0)) ** 2 * W[:12].reshape(3, 4)),
                  None, X),
    'ifft2_s': (lambda a: np.sum(np.abs(np.fft.ifft2(a, s=(2, 5))) ** 3), None, X),
    'rfft_axis0': (lambda a: np.sum(np.abs(np.fft.rfft(a, axis=0)) ** 3), None, X),
    'irfft_axis1': (lambda a: np.sum(np.fft.irfft(np.fft.rfft(a) * 1j, axis=1) ** 2 *
                                     C[:12].reshape(3, 4)), None, X),
}


@pytest.mark.parametrize('name', CASES)
def test_value_grad_jvp_and_vmap(name):
    f, reference, x = CASES[name]
    reference = reference or f
    np.testing.assert_allclose(codax.jit(f)(x), reference(x), rtol=1e-12)
    np.testing.assert_allclose(codax.grad(f)(x), numeric_grad(reference, (x,)), rtol=1e-5,
                               atol=1e-6)
    t = np.cos(np.arange(x.size)).reshape(x.shape)
    value, slope = codax.jvp(f, (x,), (t,))
    np.testing.assert_allclose(value, reference(x), rtol=1e-12)
    np.testing.assert_allclose(slope, (reference(x + EPS * t) - reference(x - EPS * t)) / (2 * EPS),
                               rtol=1e-5, atol=1e-6)
    xs = np.stack([x, x * 1.7, x[::-1]])
    np.testing.assert_allclose(codax.vmap(f)(xs), [reference(e) for e in xs], rtol=1e-10)
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(xs),
                               np.stack([codax.grad(f)(e) for e in xs]), rtol=1e-9, atol=1e-12)


def test_integer_results_carry_no_derivative():
    def f(a):
        return np.searchsorted(np.sort(a), 0.5) + np.linalg.matrix_rank(np.outer(a, a))
    out = codax.jit(f)(V)
    assert out == f(V) and np.asarray(out).dtype.kind == 'i'
    assert not np.any(codax.grad(lambda a: f(a) * 1.0)(V))


def test_unique_integer_results_and_vmap_with_size():
    def f(a):
        return np.unique(np.round(a, 1), return_index=True, return_inverse=True,
                         return_counts=True, size=5)
    xs = np.stack([V, V[::-1], np.zeros(6)])
    got = codax.vmap(f)(xs)
    for k, e in enumerate(xs):
        values, index, inverse, counts = np.unique(np.round(e, 1), True, True, True)
        n = min(len(values), 5)
        np.testing.assert_array_equal(got[0][k][:n], values[:n])
        np.testing.assert_array_equal(got[1][k][:n], index[:n])
        np.testing.assert_array_equal(got[2][k], inverse)
        np.testing.assert_array_equal(got[3][k][:n], counts[:n])
        assert np.all(got[3][k][n:] == 0) and np.all(got[1][k][n:] == index[0])


def test_unique_without_size_under_vmap_is_refused():
    with pytest.raises(ValueError, match='np.unique of a batched array needs size='):
        codax.vmap(lambda a: np.sum(np.unique(a)))(np.stack([V, V]))


def _real_gradient(f, z):
    """df/dx - i df/dy (JAX's convention for a real f of complex z)."""
    out = np.zeros_like(z)
    for k in range(z.size):
        step = np.zeros_like(z)
        step[k] = EPS
        out[k] = ((f(z + step) - f(z - step)) - 1j * (f(z + 1j * step) - f(z - 1j * step))) \
            / (2 * EPS)
    return out


@pytest.mark.parametrize('f', [
    lambda z: np.sum(np.abs(np.fft.fft(z)) ** 2 * W[:5]),
    lambda z: np.sum(np.real(np.fft.ifft(z, 7, norm='ortho') * (1 + 2j) * W[:7])),
    lambda z: np.sum(np.fft.irfft(z, 6) ** 2 * W[:6]),
    lambda z: np.sum(np.abs(np.fft.fftn(np.outer(z, z[:3]))) ** 3),
])
def test_fft_of_complex_input_follows_jax_convention(f):
    z = V[:5] + 1j * C[:5]
    np.testing.assert_allclose(codax.grad(f)(z), _real_gradient(f, z), rtol=1e-6, atol=1e-7)


def test_second_derivative_through_rfft_and_irfft():
    def f(a):
        return np.sum(np.fft.irfft(np.fft.rfft(a * a) * (1 + 1j)) ** 3)
    grad = codax.grad(f)
    columns = [(grad(V + EPS * e) - grad(V - EPS * e)) / (2 * EPS) for e in np.eye(V.size)]
    np.testing.assert_allclose(codax.hessian(f)(V), np.array(columns).T, rtol=1e-5, atol=1e-6)
