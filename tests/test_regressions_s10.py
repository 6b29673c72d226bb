"""Regressions: np.ndim/np.shape/np.size of lists under vmap, a Python bool
saved on a tape and branched on again under vmap, and Python numbers passed
back to user code by vmap's dynamic path. References: NumPy itself and a
per-example Python loop."""
import numpy as np

import codax
from helpers import assert_tree_allclose

XS = np.random.default_rng(7).normal(size=(3, 4))


# ---- np.ndim / np.shape / np.size of a list or tuple under vmap ----

def _shape_facts(x, lst):
    return (x * np.ndim(lst) + np.size(lst) + np.shape(lst)[0] + np.size(lst, 0)
            + np.ndim(3.0) + np.size(2) + len(np.shape(1.0)))


def test_ndim_shape_size_of_an_unbatched_list():
    lst = [[1.0, 2.0, 3.0]]
    got = codax.vmap(_shape_facts, in_axes=(0, None))(XS[:, 0], lst)
    assert_tree_allclose(got, np.array([_shape_facts(v, lst) for v in XS[:, 0]]))
    grads = codax.vmap(codax.grad(_shape_facts), in_axes=(0, None))(XS[:, 0], lst)
    assert_tree_allclose(grads, np.full(3, float(np.ndim(lst))))


def test_ndim_shape_size_of_a_batched_list_and_tuple():
    def f(lst):
        pair = (lst[0], lst[1])
        return (lst[0] * np.ndim(lst) + np.size(lst) + np.shape(lst)[-1]
                + np.size(lst, 1) + np.ndim(pair) * np.size(pair))
    lst = [XS, 2 * XS]
    want = np.stack([f([XS[i], 2 * XS[i]]) for i in range(len(XS))])
    assert_tree_allclose(codax.vmap(f)(lst), want)
    assert_tree_allclose(codax.jit(codax.vmap(f))(lst), want)


# ---- an `if` on a Python bool inside a loop, saved on the tape ----

FUNCS = [np.sin, 2.0]


def _callables_or_numbers(x):
    out = 0.0
    for f in FUNCS:
        if callable(f):
            out = out + f(x)
        else:
            out = out + f
    return np.sum(out * x)


def test_branch_on_a_python_bool_in_a_loop_under_vmap_of_derivatives():
    per_example = lambda T: np.stack([T(_callables_or_numbers)(x) for x in XS])  # noqa: E731
    assert_tree_allclose(codax.vmap(codax.grad(_callables_or_numbers))(XS),
                         per_example(codax.grad))
    # d/dx (sin x + 2) x = sin x + 2 + x cos x: the reference for the loop itself
    assert_tree_allclose(per_example(codax.grad), np.sin(XS) + 2 + XS * np.cos(XS))
    hess = codax.vmap(codax.jacfwd(codax.grad(_callables_or_numbers)))(XS)
    assert_tree_allclose(hess, np.stack([np.diag(2 * np.cos(x) - x * np.sin(x)) for x in XS]))


# ---- Python numbers stay Python numbers on vmap's dynamic path ----

@codax.custom_vjp
def _scaled(x, k):
    return x * k


def _scaled_fwd(x, k):
    return x * k, (k, True)


def _scaled_bwd(res, g):
    k, flag = res
    # a user's type tests: under vmap they must see the int and bool it saved
    ok = isinstance(k, int) and flag is True
    return (g * k if ok else g * 0.0, None)


_scaled.defvjp(_scaled_fwd, _scaled_bwd)


def test_saved_python_int_and_bool_reach_a_custom_vjp_as_python_numbers():
    def f(x):
        return np.sum(np.sin(_scaled(x, 3)))
    got = codax.vmap(codax.grad(f))(XS)
    assert_tree_allclose(got, np.stack([3 * np.cos(3 * x) for x in XS]))


# ---- vmap of a second derivative: a loop count and a branch test on the tape ----

def _if_without_else(x):
    out = 0.0
    for k in range(2):
        if k > 0:
            out = out + np.sin(x)
    return np.sum(out)


def _if_else_on_the_index(x):
    out = 0.0
    for k in range(3):
        if k % 2 == 0:
            out = out + np.sin(x) * out
        else:
            out = out + x * x
    return np.sum(out)


def _hessian_per_example(f, xs):
    return np.stack([codax.hessian(f)(x) for x in xs])


def test_vmap_of_hessian_branching_on_an_unbatched_test_in_a_loop():
    # jvp and vmap of grad's code keep its tape (pipeline.LOCAL_TAPES): the
    # branch test popped back is the same for every example, so the `if` stays
    # Python (before, it was batched and the tape's length would differ)
    for f in (_if_without_else, _if_else_on_the_index):
        want = _hessian_per_example(f, XS[:, :2])
        assert_tree_allclose(codax.vmap(codax.hessian(f))(XS[:, :2]), want)
        assert_tree_allclose(codax.vmap(codax.jacfwd(codax.grad(f)))(XS[:, :2]), want)
    twice = codax.vmap(codax.vmap(codax.hessian(_if_without_else)))(np.stack([XS[:, :2]] * 2))
    assert_tree_allclose(twice, np.stack([_hessian_per_example(_if_without_else, XS[:, :2])] * 2))


# ---- hessian through a float exponent passed to a helper ----

_POW_W = np.array([0.5, -1.0, 2.0])


def _pow_helper(x, w, p):
    return np.sum(w * x ** p)


def _through_pow_helper(x):
    return _pow_helper(x, _POW_W, 3.0)


def test_hessian_through_an_exponent_passed_as_an_argument():
    # the exponent's tangent is zero (vmap's basis holds it as zeros): its
    # term, log(x) * x ** p, is nan at x < 0 and must not reach the result
    x = np.array([0.7, -1.3, 2.1])
    want = np.diag(6 * _POW_W * x)
    assert_tree_allclose(codax.hessian(_through_pow_helper)(x), want, rtol=1e-12)
    assert_tree_allclose(codax.jacfwd(codax.jacrev(_through_pow_helper))(x), want, rtol=1e-12)
    assert_tree_allclose(codax.vmap(codax.hessian(_through_pow_helper))(np.stack([x, -x])),
                         np.stack([want, -want]), rtol=1e-12)
    eps = 1e-5
    fd = np.stack([(codax.grad(_through_pow_helper)(x + eps * e)
                    - codax.grad(_through_pow_helper)(x - eps * e)) / (2 * eps)
                   for e in np.eye(3)], axis=1)
    assert_tree_allclose(fd, want, rtol=1e-6, atol=1e-8)
    # the derivative in the exponent at a negative base stays nan, as in JAX
    assert np.isnan(codax.grad(lambda p: _pow_helper(x, _POW_W, p))(3.0))
    assert np.isnan(codax.jacfwd(lambda p: x ** p)(3.0)[1])


# ---- reverse over reverse through a helper given a constant exponent ----

_LT_W = np.array([1.0, 2.0, 0.5, 1.5])


def _lt_helper(x, w, p):
    return np.sum(w * x ** p)


def _lt_through_helper(x):
    return _lt_helper(x, _LT_W, 3.0)


def test_reverse_over_reverse_through_a_constant_exponent_at_negative_bases():
    # the helper's pullback computes the exponent's adjoint (nan: log of a
    # negative base), which the caller drops; the second reverse sweep sends
    # it a zero cotangent, and 0 * nan must not reach the Hessian
    x = np.array([1.0, -2.0, 0.5, -0.7])
    eps = 1e-5
    grad = codax.grad(_lt_through_helper)
    fd = np.stack([(grad(x + eps * e) - grad(x - eps * e)) / (2 * eps) for e in np.eye(4)],
                  axis=1)
    assert_tree_allclose(fd, np.diag(6 * _LT_W * x), rtol=1e-6, atol=1e-8)
    for h in (codax.jacrev(grad), codax.hessian(_lt_through_helper),
              codax.jacfwd(grad), codax.jacrev(codax.jacrev(_lt_through_helper))):
        assert_tree_allclose(h(x), fd, rtol=1e-6, atol=1e-8)
    # grad(grad) of a scalar program built on it
    def g(x):
        return np.sum(grad(x) * _LT_W)
    assert_tree_allclose(codax.grad(g)(x), fd @ _LT_W, rtol=1e-6, atol=1e-8)
    # third order: finite differences of the Hessian's diagonal
    third = codax.jacrev(codax.jacrev(grad))(x)
    hd = codax.hessian(_lt_through_helper)
    fd3 = np.stack([(hd(x + eps * e) - hd(x - eps * e)) / (2 * eps) for e in np.eye(4)], axis=-1)
    assert_tree_allclose(third, fd3, rtol=1e-5, atol=1e-6)
    # the exponent's own derivative at a negative base stays nan, as in JAX
    assert np.isnan(codax.grad(lambda p: _lt_helper(x, _LT_W, p))(3.0))


# ---- numpy.fft's n-dimensional transforms under vmap ----

_FFT_XS = (np.random.default_rng(11).normal(size=(3, 4, 5, 6))
           + 1j * np.random.default_rng(12).normal(size=(3, 4, 5, 6)))
_FFT_CALLS = {
    'fft2': lambda x: np.fft.fft2(x),
    'ifft2': lambda x: np.fft.ifft2(x, norm='ortho'),
    'fftn': lambda x: np.fft.fftn(x),
    'ifftn': lambda x: np.fft.ifftn(x),
    'fft2_axes': lambda x: np.fft.fft2(x, axes=(0, 2)),
    'ifft2_negative_axes': lambda x: np.fft.ifft2(x, axes=(-3, -1)),
    'fftn_one_axis': lambda x: np.fft.fftn(x, axes=(1,)),
    'ifftn_s': lambda x: np.fft.ifftn(x, s=(3, 4), axes=(0, 1)),
    'fft2_s_axes': lambda x: np.fft.fft2(x, s=(7, 2), axes=(-1, 0), norm='ortho'),
}


def test_nd_transforms_under_vmap_match_a_loop_without_a_per_example_loop():
    for name, f in _FFT_CALLS.items():
        batched = codax.vmap(f)
        np.testing.assert_allclose(batched(_FFT_XS), np.stack([f(x) for x in _FFT_XS]),
                                   rtol=1e-12, atol=1e-12)
        assert 'batch_loop' not in batched.source(_FFT_XS), name
    # axes past the example's own: NumPy's error, per example (not the batch axis)
    try:
        codax.vmap(lambda x: np.fft.fft2(x, axes=(-4, -1)))(_FFT_XS)
    except Exception:
        pass
    else:
        raise AssertionError('fft2 over an axis the example lacks ran')


def test_nd_transform_gradients_under_vmap_match_a_loop():
    xs = _FFT_XS.real
    w = np.random.default_rng(13).normal(size=xs.shape[1:])

    def power(x):
        return np.sum(np.abs(np.fft.fft2(x)) ** 2 * w)

    def inverse(x):
        return np.sum(np.real(np.fft.ifftn(x * x)) * w)
    for f in (power, inverse):
        got = codax.vmap(codax.grad(f))(xs)
        assert_tree_allclose(got, np.stack([codax.grad(f)(x) for x in xs]))
        assert 'batch_loop' not in codax.vmap(codax.grad(f)).source(xs)
