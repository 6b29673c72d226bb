"""The public API against JAX's conventions (argnums, has_aux, holomorphic,
allow_int, pytree outputs, JAX's error texts), checked against finite
differences, per-example loops and NumPy."""
import numpy as np
import pytest

import codax
from codax import float0

X = np.array([0.3, -1.2, 0.7])
Y = np.array([1.5, 0.4, -0.2])
Z = np.array([0.5 + 0.3j, -0.2 + 1.1j])


def close(got, want, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def numeric_jacobian(f, x, eps=1e-6):
    """Central differences: shape f(x).shape + x.shape."""
    columns = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = eps
        e = e.reshape(x.shape)
        columns.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.moveaxis(np.array(columns), 0, -1).reshape(np.shape(f(x)) + x.shape)


def numeric_hessian(f, x, eps=1e-4):
    """The numeric Jacobian of the numeric Jacobian: f(x).shape + x.shape * 2."""
    return numeric_jacobian(lambda a: numeric_jacobian(f, a), x, eps=eps)


# ---- functions the tests transform ----

def vector_of_two(x, y):
    return np.sin(x) * y ** 2


def vector_with_aux(x, y):
    return np.sin(x) * np.sum(y ** 2), {'x': x}


def dict_output(x):
    return {'a': np.sin(x), 'b': (x ** 2, np.sum(x ** 3))}


def power_of_int(x, n):
    return np.sum(x ** 2) * n


def holomorphic_vector(z):
    return z ** 3 * np.exp(z)


def cube(x):
    return x ** 3


def scale_sum(x, scale=1.0):
    return np.sum(x) * scale


def batched_with_keywords(xs, s):
    return np.sum(codax.vmap(scale_sum)(xs, scale=s))


def called_through_a_variable(xs, s):
    h = scale_sum
    return np.sum(h(xs, scale=s))


WEIGHTS = np.array([1.0, 2.0, 3.0])


def weighted(x, w=WEIGHTS, q=1.0):
    return x * w * q


def weighted_q3(x):
    return weighted(x, q=3.0)


# ---- hessian: vector outputs with tuple argnums, has_aux, pytree outputs ----

def test_hessian_of_vector_output_with_tuple_argnums():
    hx = codax.hessian(vector_of_two, argnums=(0, 1))(X, Y)
    both = np.concatenate([X, Y])

    def flat(v):
        return vector_of_two(v[:3], v[3:])
    want = numeric_hessian(flat, both)                # (3, 6, 6)
    assert len(hx) == 2 and all(len(row) == 2 for row in hx)
    for i in range(2):
        for k in range(2):
            assert hx[i][k].shape == (3, 3, 3)
            close(hx[i][k], want[:, 3 * i:3 * i + 3, 3 * k:3 * k + 3], rtol=1e-5, atol=1e-6)


def test_hessian_of_vector_output_with_aux():
    h, aux = codax.hessian(vector_with_aux, has_aux=True)(X, Y)
    close(aux['x'], X)
    close(h, numeric_hessian(lambda a: vector_with_aux(a, Y)[0], X), rtol=1e-5, atol=1e-6)
    h, aux = codax.hessian(vector_with_aux, argnums=(0, 1), has_aux=True)(X, Y)
    (hxx, hxy), _ = h
    close(aux['x'], X)
    both = np.concatenate([X, Y])
    want = numeric_hessian(lambda v: vector_with_aux(v[:3], v[3:])[0], both)
    close(hxx, want[:, :3, :3], rtol=1e-5, atol=1e-6)
    close(hxy, want[:, :3, 3:], rtol=1e-5, atol=1e-6)


def test_hessian_of_dict_output_nests_output_outside():
    h = codax.hessian(dict_output)(X)
    assert set(h) == {'a', 'b'} and isinstance(h['b'], tuple)
    close(h['a'], numeric_hessian(lambda a: np.sin(a), X), rtol=1e-5, atol=1e-6)
    close(h['b'][0], numeric_hessian(lambda a: a ** 2, X), rtol=1e-5, atol=1e-6)
    close(h['b'][1], np.diag(6 * X), rtol=1e-5, atol=1e-6)


# ---- allow_int, integer inputs, holomorphic ----

def test_allow_int_gives_float0_zeros():
    gx, gn = codax.grad(power_of_int, argnums=(0, 1), allow_int=True)(X, 3)
    close(gx, 6 * X)
    assert gn.dtype == float0 and gn.shape == ()
    value, gn = codax.value_and_grad(power_of_int, argnums=1, allow_int=True)(X, np.arange(2))
    close(value, np.sum(X ** 2) * np.arange(2))
    assert gn.dtype == float0 and gn.shape == (2,)


def test_integer_inputs_are_refused_as_jax_does():
    with pytest.raises(TypeError, match=r'grad requires real- or complex-valued inputs \(input '
                                        r'dtype that is a sub-dtype of np.inexact\), but got int'):
        codax.grad(cube)(3)
    with pytest.raises(TypeError, match='jacfwd requires real-valued inputs'):
        codax.jacfwd(cube)(np.arange(3))
    with pytest.raises(TypeError, match='jacrev requires real- or complex-valued inputs'):
        codax.jacrev(cube)(np.arange(3))


def test_jax_error_texts_for_grad():
    with pytest.raises(TypeError, match=r'Gradient only defined for scalar-output functions\. '
                                        r'Output had shape: \(3,\)'):
        codax.grad(cube)(X)
    with pytest.raises(TypeError, match=r'differentiating with respect to argnums=2 requires at '
                                        r'least 3 positional arguments'):
        codax.grad(power_of_int, argnums=2)(X, 3)
    with pytest.raises(TypeError, match='grad with holomorphic=True requires inputs with '
                                        'complex dtype, but got float64'):
        codax.grad(lambda z: np.sum(z ** 2), holomorphic=True)(X)


def test_complex_jacobians_need_holomorphic():
    with pytest.raises(TypeError, match='jacfwd requires real-valued inputs'):
        codax.jacfwd(holomorphic_vector)(Z)
    with pytest.raises(TypeError, match='jacrev requires real-valued outputs'):
        codax.jacrev(holomorphic_vector)(Z)
    want = np.diag((3 * Z ** 2 + Z ** 3) * np.exp(Z))          # f'(z) on the diagonal
    close(codax.jacfwd(holomorphic_vector, holomorphic=True)(Z), want)
    close(codax.jacrev(holomorphic_vector, holomorphic=True)(Z), want)
    # a real function of complex inputs: jacrev takes it, as grad does
    close(codax.jacrev(lambda z: np.abs(z) ** 2)(Z), np.diag(2 * np.conj(Z)))   # as grad's


# ---- jvp / vjp / linearize ----

def test_jvp_checks_tangent_dtypes_and_takes_float0():
    with pytest.raises(TypeError, match='primal and tangent arguments to jax.jvp do not match'):
        codax.jvp(vector_of_two, (X, Y), (X.astype(np.float32), Y))
    with pytest.raises(ValueError, match='jvp called with different primal and tangent shapes'):
        codax.jvp(vector_of_two, (X, Y), (np.ones(4), Y))
    with pytest.raises(TypeError, match='must have the same tree structure'):
        codax.jvp(vector_of_two, (X, Y), (X,))
    out, tangent = codax.jvp(power_of_int, (X, 3), (Y, np.zeros((), dtype=float0)))
    close(out, power_of_int(X, 3))
    close(tangent, np.sum(2 * X * Y) * 3)


def test_vjp_cotangent_dtype_and_integer_primals():
    out, pullback = codax.vjp(vector_of_two, X, Y)
    with pytest.raises(ValueError, match=r'unexpected JAX type .* got float32\[3\], but expected '
                                         r'float64\[3\]'):
        pullback(np.ones(3, np.float32))
    out, pullback = codax.vjp(power_of_int, X, 3)
    gx, gn = pullback(2.0)
    close(gx, 2 * 2 * X * 3)
    assert gn.dtype == float0 and gn.shape == ()


def test_linearize_applied_repeatedly():
    out, f_jvp = codax.linearize(vector_of_two, X, Y)
    close(out, vector_of_two(X, Y))
    J = numeric_jacobian(lambda v: vector_of_two(v[:3], v[3:]), np.concatenate([X, Y]))
    for tx, ty in [(Y, X), (X, Y), (2 * X, -Y)]:
        close(f_jvp(tx, ty), J @ np.concatenate([tx, ty]), rtol=1e-6, atol=1e-7)


# ---- keywords to functions held in variables, non-literal defaults ----

def test_vmap_called_with_keywords_inside_grad():
    A = np.arange(12.).reshape(3, 4) / 5
    s = np.array([1.0, 2.0, 3.0])
    close(codax.grad(batched_with_keywords)(A, s), np.ones_like(A) * s[:, None])
    close(codax.grad(batched_with_keywords, argnums=1)(A, s), A.sum(axis=1))
    per_example = codax.vmap(codax.grad(batched_with_keywords, argnums=1))(A[None], s[None])
    close(per_example[0], A.sum(axis=1))


def test_keywords_to_a_function_in_a_variable():
    A = np.arange(12.).reshape(3, 4) / 5
    close(codax.grad(called_through_a_variable)(A, 2.0), 2 * np.ones_like(A))
    close(codax.vmap(called_through_a_variable)(A, np.array([1.0, 2.0, 3.0])),
          [called_through_a_variable(a, s) for a, s in zip(A, [1.0, 2.0, 3.0])])


def test_skipped_array_default_under_vmap_and_jacobians():
    B = np.arange(12.).reshape(4, 3) / 5
    close(codax.vmap(weighted_q3)(B), [weighted_q3(b) for b in B])
    close(codax.jacfwd(weighted_q3)(X), np.diag(3 * WEIGHTS))
    close(codax.jacrev(weighted_q3)(X), np.diag(3 * WEIGHTS))


# ---- vmap: JAX's error texts ----

def test_vmap_error_texts():
    A, B = np.ones((3, 4)), np.ones((4, 2))
    with pytest.raises(ValueError, match='vmap got inconsistent sizes for array axes to be mapped'):
        codax.vmap(vector_of_two)(A, B)
    with pytest.raises(ValueError, match=r'vmap in_axes must be an int, None, or a tuple of '
                                         r'entries .* len\(in_axes\)=3, len\(args\)=2'):
        codax.vmap(vector_of_two, in_axes=(0, 0, 0))(A, A)
    with pytest.raises(ValueError, match='vmap was requested to map its argument along axis 2, '
                                         'which implies that its rank should be at least 3, but '
                                         r'is only 2 \(its shape is \(3, 4\)\)'):
        codax.vmap(vector_of_two, in_axes=2)(A, A)
    with pytest.raises(ValueError, match='vmap must have at least one non-None value in in_axes'):
        codax.vmap(vector_of_two, in_axes=None)(A, A)
    with pytest.raises(TypeError, match='vmap in_axes must be an int, None, or a tuple'):
        codax.vmap(vector_of_two, in_axes={'a': 0})(A, A)
