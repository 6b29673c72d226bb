"""NumPy functions a probe of scientists' code found missing (session 11):
dtype queries inside NumPy's own source, np.vander, np.linalg.eig and
eigvals, np.linalg.norm and np.einsum to every order, modf/divmod/frexp.
Every derivative is checked against central differences (of the function,
or of codax.grad for second derivatives), vmap against a Python loop, jit
against NumPy."""
import numpy as np
import pytest

import codax
from helpers import numeric_jacobian

_rng = np.random.default_rng(11)


_fd = numeric_jacobian


def _fd_hessian(f, x):
    return _fd(codax.grad(f), x, 1e-5)


def _check_all_orders(f, x, rtol=1e-6, atol=1e-7, vmap=True):
    """grad against differences of f; hessian (forward over reverse) and
    jacrev(grad) against differences of grad; vmap(hessian) against a loop;
    jit against f."""
    np.testing.assert_allclose(codax.grad(f)(x), _fd(f, x), rtol=1e-5, atol=1e-6)
    h = _fd_hessian(f, x)
    np.testing.assert_allclose(codax.hessian(f)(x), h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(codax.jacrev(codax.grad(f))(x), h, rtol=1e-4, atol=1e-5)
    if vmap:
        xs = np.stack([x, 1.1 * x, x + 0.05])
        np.testing.assert_allclose(codax.vmap(codax.hessian(f))(xs),
                                   np.stack([codax.hessian(f)(v) for v in xs]), rtol=rtol,
                                   atol=atol)
    np.testing.assert_allclose(codax.jit(f)(x), f(x), rtol=1e-12)


# ---- dtype queries: constants to every transformation ----

def cov_sum(x):
    return np.sum(np.cov(x.reshape(2, 3)) ** 2)


def corr_sum(x):
    return np.sum(np.corrcoef(x.reshape(2, 3)) * np.arange(4).reshape(2, 2))


def heaviside_weighted(x):
    return np.sum(x ** 3 * np.heaviside(x, 0.5))


def dtype_queries(x):
    kind = np.result_type(x, np.float32)
    tiny = np.finfo(np.promote_types(x.dtype, np.float16)).eps
    big = np.iinfo(np.int8).max
    exact = np.can_cast(x, np.float64) and np.issubdtype(kind, np.floating)
    y = x.astype(kind) * (1.0 + tiny) / big
    return np.sum(np.sin(y) * x) if exact and not np.iscomplexobj(x) else 0.0


@pytest.mark.parametrize('f', [cov_sum, corr_sum, heaviside_weighted, dtype_queries])
def test_dtype_queries_are_constants(f):
    x = np.array([0.3, -0.8, 1.1, 0.5, -0.4, 0.9])
    _check_all_orders(f, x, vmap=f is not corr_sum)       # (corrcoef is cov's code again)


def scalar_kind(x):
    return np.sum(x) * (np.min_scalar_type(x[0]) == np.float16)


def test_min_scalar_type_of_a_batched_value_is_refused():
    """min_scalar_type reads a scalar's value: examples may differ."""
    np.testing.assert_allclose(codax.grad(scalar_kind)(np.ones(3)), np.ones(3))
    with pytest.raises(Exception, match='min_scalar_type'):
        codax.vmap(scalar_kind)(np.ones((2, 3)))


# ---- vander ----

def vander_fit(x):
    return np.sum(np.vander(x[:3], 4) @ x[3:]) + np.sum(np.vander(x[:3], increasing=True) ** 2)


def test_vander_every_order():
    _check_all_orders(vander_fit, np.array([0.0, 0.7, -1.2, 0.4, 0.3, -0.5, 1.5]))


# ---- eig and eigvals: JAX's rules, eigenvectors normalized as LAPACK's ----

_PAIR = np.array([[0.5, -1.2, 0.0], [1.2, 0.5, 0.0], [0.0, 0.0, 2.0]])     # 0.5 +- 1.2i, 2


def _similar(block):
    s = _rng.normal(size=block.shape) + 3 * np.eye(len(block))
    return s @ block @ np.linalg.inv(s)


@pytest.mark.parametrize('a', [_similar(np.diag([1.0, -0.5, 2.2])), _similar(_PAIR)],
                         ids=['real', 'complex-pair'])
def test_eig_jvp_and_vjp_against_differences(a):
    t = _rng.normal(size=a.shape)

    def both(m):
        w, v = np.linalg.eig(m)
        return w, v
    (w, v), (dw, dv) = codax.jvp(both, (a,), (t,))
    eps = 1e-6
    plus, minus = both(a + eps * t), both(a - eps * t)
    np.testing.assert_allclose(dw, (plus[0] - minus[0]) / (2 * eps), atol=1e-7)
    np.testing.assert_allclose(dv, (plus[1] - minus[1]) / (2 * eps), atol=1e-7)
    assert dw.dtype == w.dtype and dv.dtype == v.dtype      # real where NumPy's are real
    gw = _rng.normal(size=w.shape) + (1j * _rng.normal(size=w.shape) if w.dtype.kind == 'c' else 0)
    gv = _rng.normal(size=v.shape) + (1j * _rng.normal(size=v.shape) if v.dtype.kind == 'c' else 0)
    _, pullback = codax.vjp(both, a)
    (ga,) = pullback((gw, gv))
    assert ga.dtype == a.dtype
    # JAX's pairing of a complex cotangent with a tangent: Re(sum(g t))
    np.testing.assert_allclose(np.sum(ga * t), np.real(np.sum(gw * dw) + np.sum(gv * dv)),
                               rtol=1e-9)


def eigvals_energy(x):
    w = np.linalg.eigvals(x.reshape(3, 3) + _PAIR)
    return np.sum(np.real(w) ** 2 - np.imag(w) ** 3)


def eigvec_weight(x):
    w, v = np.linalg.eig(x.reshape(3, 3) + np.diag([0.0, 2.0, 4.0]))
    return np.sum(np.abs(v) ** 2 * np.real(w)) + np.sum(np.real(v[0]))


@pytest.mark.parametrize('f', [eigvals_energy, eigvec_weight])
def test_eig_every_order(f):
    _check_all_orders(f, 0.3 * _rng.normal(size=9), rtol=1e-5, atol=1e-6)


# ---- np.linalg.norm of every order ----

V5 = np.array([0.3, -0.8, 1.1, 0.5, -0.45])
M23 = np.array([0.3, -0.8, 1.1, 0.5, -0.4, 0.9])
NORMS = [
    (V5, lambda x: np.sin(np.linalg.norm(x, 1) ** 2)),
    (V5, lambda x: np.sin(np.linalg.norm(x, np.inf) ** 2)),
    (V5, lambda x: np.sin(np.linalg.norm(x, -np.inf) ** 2)),
    (V5, lambda x: np.sin(np.linalg.norm(x, 3))),
    (V5, lambda x: np.sin(np.linalg.norm(x, 0.5))),
    (V5, lambda x: np.linalg.norm(x, 0) * np.sum(x ** 2)),
    (M23, lambda x: np.sin(np.linalg.norm(x.reshape(2, 3), 'fro'))),
    (M23, lambda x: np.sin(np.linalg.norm(x.reshape(2, 3), 'nuc'))),
    (M23, lambda x: np.sin(np.linalg.norm(x.reshape(2, 3), 2))),
    (M23, lambda x: np.sin(np.linalg.norm(x.reshape(2, 3), -2))),
    (M23, lambda x: np.sin(np.linalg.norm(x.reshape(2, 3), 1) ** 2)),
    (M23, lambda x: np.sin(np.linalg.norm(x.reshape(2, 3), -np.inf) ** 2)),
    (M23, lambda x: np.sum(np.sin(np.linalg.norm(x.reshape(2, 3), 3, axis=1)) ** 2)),
    (M23, lambda x: np.sum(np.sin(np.linalg.norm(x.reshape(1, 2, 3), np.inf, (2, 1), True)))),
]


@pytest.mark.parametrize('k', range(len(NORMS)))
def test_norm_every_order(k):
    x0, f = NORMS[k]
    # (vmap(hessian) for one vector and one matrix order: the rules are shared)
    _check_all_orders(f, x0.copy(), vmap=k in (0, 7))


@pytest.mark.parametrize('ord_', [None, 1, np.inf, 3])
def test_norm_of_complex_follows_jax(ord_):
    """grad of a real function of complex z is df/dx - i df/dy (JAX's convention)."""
    z = np.array([0.3 + 0.4j, -1.0 + 0.2j, 0.5 - 0.7j])

    def f(v):
        return np.linalg.norm(v, ord_)
    dx = _fd(lambda re: f(re + 1j * z.imag), z.real)
    dy = _fd(lambda im: f(z.real + 1j * im), z.imag)
    np.testing.assert_allclose(codax.grad(f)(z), dx - 1j * dy, atol=1e-7)


def norm_literal(x):
    return np.linalg.norm(x, 1)


def test_norm_rule_folds_for_a_literal_order():
    """The generated adjoint names the rule of ord=1 only (and the matrix
    norm that a 2-D x would take), no other order's."""
    source = codax.grad(norm_literal).source(V5)
    assert 'rt.abs_slope(x)' in source and 'svd' not in source and 'norm_rule' not in source


# ---- einsum: diagonals and one-sided ellipses, every order ----

def ein_trace(x):
    return np.einsum('ii->', x.reshape(3, 3)) ** 3


def ein_diagonal(x):
    return np.sum(np.einsum('ii->i', x.reshape(3, 3) @ x.reshape(3, 3)) ** 2)


def ein_batched_diagonal(x):
    return np.sum(np.sin(np.einsum('...ii->...i', x.reshape(2, 2, 2))))


def ein_diagonal_times(x):
    m = x[:4].reshape(2, 2)
    return np.sum(np.einsum('ii,ij->j', m, np.cos(m)) ** 2)


def ein_one_sided_ellipsis(x):
    return np.sum(np.einsum('i,...i->...', x[:2], x.reshape(3, 2)) ** 2)


def ein_sum_last(x):
    return np.sum(np.einsum('...i->...', x.reshape(2, 3)) ** 3)


@pytest.mark.parametrize('f', [ein_trace, ein_diagonal, ein_batched_diagonal, ein_diagonal_times,
                               ein_one_sided_ellipsis, ein_sum_last])
def test_einsum_every_order(f):
    x = np.linspace(-0.8, 1.1, 9)[:8] if f is ein_batched_diagonal else \
        np.linspace(-0.8, 1.1, 9) if f in (ein_trace, ein_diagonal) else np.linspace(-0.8, 1.1, 6)
    _check_all_orders(f, x)
    assert 'rt.einsum_vjp(' not in codax.grad(f).source(x)     # the first-order helper


# ---- element-wise functions of two results; NumPy's asanyarray ----

def two_results(x):
    frac, whole = np.modf(2 * x)
    q, r = np.divmod(x, 0.7)
    m, e = np.frexp(x)
    return np.sum(frac ** 2 + whole * x + r ** 2 * q + m ** 2 * e) + np.sum(np.asanyarray(x) ** 3)


def test_modf_divmod_frexp():
    x = np.array([0.3, -1.3, 2.2, 0.9, -0.45])
    _check_all_orders(two_results, x)
    np.testing.assert_allclose(codax.grad(lambda v: np.sum(v * np.digitize(v, [-1.0, 0.0, 1.0])))(x),
                               np.digitize(x, [-1.0, 0.0, 1.0]))
