"""Second and higher derivatives of np.einsum, np.linalg.solve and
np.linalg.cholesky: their adjoints are written with primitives (einsum
itself, solve, matmul), so hessian, jacfwd(jacrev), jacrev(jacrev) and
vmap(hessian) hold. Each is checked against central differences of
codax.grad."""
import numpy as np
import pytest

import codax

_rng = np.random.default_rng(7)
_A = _rng.normal(size=(3, 3)) + 3 * np.eye(3)
_B = _rng.normal(size=(3, 2))
_V = _rng.normal(size=3)


def _fd_hessian(f, x, eps=1e-5):
    grad = codax.grad(f)
    cols = [(grad(x + eps * e) - grad(x - eps * e)) / (2 * eps) for e in np.eye(x.size)]
    return np.stack(cols, axis=-1)


def ein_matmul(x):
    m = x.reshape(3, 3)
    return np.sum(np.sin(np.einsum('ij,jk->ik', m, m)))


def ein_dot(x):
    return np.einsum('i,i->', x, np.sin(x)) ** 2


def ein_sum_rows(x):
    return np.sum(np.einsum('ij->j', x.reshape(3, 3)) ** 3)


def ein_batched(x):
    m = x.reshape(2, 3, 3)
    return np.sum(np.einsum('bij,bjk->bik', m, np.cos(m)) ** 2)


def ein_implicit_ellipsis(x):
    m = x.reshape(2, 3, 3)
    return np.sum(np.einsum('...ij,...jk', m, np.cos(m[:1])) ** 2)


def ein_scalar(x):
    m = x.reshape(3, 3)
    return np.einsum('ij,jk->', m, m) ** 2


def solve_matrix_in_a(x):
    return np.sum(np.linalg.solve(_A + 0.3 * x.reshape(3, 3), _B) ** 2)


def solve_vector_in_a(x):
    return np.sum(np.linalg.solve(_A + 0.3 * x.reshape(3, 3), _V) ** 2)


def solve_vector_in_b(x):
    return np.sum(np.linalg.solve(_A, x) ** 2 * x)


def solve_matrix_in_b(x):
    return np.sum(np.linalg.solve(_A, x.reshape(3, 2)) ** 3)


def solve_both(x):
    return np.sum(np.linalg.solve(_A + 0.3 * np.outer(x, x), x) ** 2)


def chol(x):
    m = x.reshape(3, 3)
    s = m @ m.T + 3 * np.eye(3)
    return np.sum(np.linalg.cholesky(s) ** 2) + np.sum(np.linalg.cholesky(s)[:, 0] ** 3)


PROGRAMS = [(ein_matmul, 9), (ein_dot, 4), (ein_sum_rows, 9), (ein_batched, 18),
            (ein_implicit_ellipsis, 18), (ein_scalar, 9), (solve_matrix_in_a, 9),
            (solve_vector_in_a, 9), (solve_vector_in_b, 3), (solve_matrix_in_b, 6),
            (solve_both, 3), (chol, 9)]
IDS = [f.__name__ for f, _ in PROGRAMS]


def _point(size):
    return np.random.default_rng(size).uniform(-0.5, 0.5, size)


@pytest.mark.parametrize('f, size', PROGRAMS, ids=IDS)
def test_hessian_matches_differences_of_grad(f, size):
    x = _point(size)
    np.testing.assert_allclose(codax.hessian(f)(x), _fd_hessian(f, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('f, size', PROGRAMS, ids=IDS)
def test_forward_and_reverse_mixes_agree(f, size):
    x = _point(size)
    expected = _fd_hessian(f, x)
    for h in (codax.jacfwd(codax.jacrev(f)), codax.jacrev(codax.jacrev(f)),
              codax.jacfwd(codax.jacfwd(f))):
        np.testing.assert_allclose(h(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('f, size', [p for p in PROGRAMS if p[0] in (ein_matmul, ein_dot,
                                                                     solve_vector_in_a, chol)],
                         ids=['ein_matmul', 'ein_dot', 'solve_vector_in_a', 'chol'])
def test_vmap_hessian_matches_a_loop(f, size):
    xs = np.stack([_point(size) + 0.1 * k for k in range(3)])
    got = codax.vmap(codax.hessian(f))(xs)
    np.testing.assert_allclose(got, np.stack([_fd_hessian(f, x) for x in xs]),
                               rtol=1e-6, atol=1e-6)


def test_third_derivative_of_einsum():
    def f(x):
        return np.einsum('i,i,i->', x, x, x) ** 2
    x = _point(3)
    third = codax.jacfwd(codax.hessian(f))(x)
    h = codax.hessian(f)
    fd = np.stack([(h(x + 1e-5 * e) - h(x - 1e-5 * e)) / 2e-5 for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(third, fd, rtol=1e-6, atol=1e-6)


def test_einsum_gradient_keeps_float32():
    def f(x):
        return np.einsum('ij,j->', x, np.ones(3))
    x = _point(6).reshape(2, 3).astype(np.float32)
    g = codax.grad(f)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.ones((2, 3)))


def test_einsum_diagonal_gradient_stays_first_order():
    def f(x):
        return np.einsum('ii->', x.reshape(3, 3)) * np.sum(x)
    x = _point(9)
    np.testing.assert_allclose(codax.grad(f)(x),
                               np.eye(3).ravel() * np.sum(x) + np.trace(x.reshape(3, 3)))
