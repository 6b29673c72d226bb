"""custom_jvp, custom_vjp, stop_gradient and checkpoint, against references."""
import tracemalloc

import numpy as np
import pytest

import codax
from helpers import numeric_grad


# ---- custom_jvp: a rule used by forward mode, and by reverse mode transposed ----

@codax.custom_jvp
def straight_through_round(x):
    return np.round(x)


@straight_through_round.defjvp
def _round_jvp(primals, tangents):
    x, = primals
    t, = tangents
    return straight_through_round(x), t          # pretend d round(x)/dx = 1


@codax.custom_jvp
def softplus(x):
    return np.log1p(np.exp(x))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    x, = primals
    t, = tangents
    return softplus(x), t / (1.0 + np.exp(-x))


def uses_round(x):
    return np.sum(straight_through_round(x * 3.0) * x)


def uses_softplus(x, w):
    return np.sum(softplus(x * w) ** 2)


def test_custom_jvp_rule_drives_grad_and_jvp():
    x = np.array([0.26, -1.4, 2.05])
    # d/dx sum(round(3x) * x) with round' := 1 is round(3x) + 3x
    want = np.round(3 * x) + 3 * x
    np.testing.assert_allclose(codax.grad(uses_round)(x), want, rtol=1e-12)
    v = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(codax.jvp(uses_round, (x,), (v,))[1], want @ v, rtol=1e-12)


def test_custom_jvp_with_a_true_rule_matches_finite_differences():
    x, w = np.array([0.3, -1.2, 2.0]), 0.7
    np.testing.assert_allclose(codax.grad(uses_softplus)(x, w),
                               numeric_grad(uses_softplus, (x, w), 0), rtol=1e-6)
    np.testing.assert_allclose(codax.grad(uses_softplus, argnums=1)(x, w),
                               numeric_grad(uses_softplus, (x, w), 1), rtol=1e-6)
    assert np.isclose(codax.grad(softplus)(0.4), 1 / (1 + np.exp(-0.4)))


def softplus_sum(x):
    return np.sum(softplus(x))


def test_hessian_differentiates_the_custom_jvp_rule_again():
    x = np.array([-1.0, 0.0, 2.5])
    want = np.stack([numeric_grad(lambda v: codax.grad(softplus_sum)(v)[i], (x,))
                     for i in range(3)])
    np.testing.assert_allclose(codax.hessian(softplus_sum)(x), want, rtol=1e-6, atol=1e-9)


def test_custom_jvp_called_directly_runs_the_function():
    assert straight_through_round(2.6) == 3.0


# ---- custom_vjp: forward and backward rules for reverse mode ----

@codax.custom_vjp
def clip_gradient(x):
    return x


def _clip_fwd(x):
    return x, None


def _clip_bwd(residuals, cotangent):
    return (np.clip(cotangent, -1.0, 1.0),)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


@codax.custom_vjp
def scaled_square(x, scale):
    return scale * x * x


def _square_fwd(x, scale):
    return scale * x * x, (x, scale)


def _square_bwd(residuals, cotangent):
    x, scale = residuals
    return 2.0 * scale * x * cotangent, np.sum(x * x * cotangent)


scaled_square.defvjp(_square_fwd, _square_bwd)


def uses_clip(x):
    return np.sum(clip_gradient(x) * 5.0)


def uses_square(x, s):
    return np.sum(np.sin(scaled_square(x, s)))


def test_custom_vjp_rule_drives_grad():
    x = np.array([0.5, -2.0, 3.0])
    np.testing.assert_allclose(codax.grad(uses_clip)(x), np.ones(3))   # 5 clipped to 1


def test_custom_vjp_with_a_true_rule_matches_finite_differences():
    x, s = np.array([0.3, -0.8, 1.1]), 1.7
    for argnum in (0, 1):
        np.testing.assert_allclose(codax.grad(uses_square, argnums=argnum)(x, s),
                                   numeric_grad(uses_square, (x, s), argnum), rtol=1e-6)


def test_custom_vjp_in_forward_mode_is_an_error():
    with pytest.raises(TypeError, match='custom_vjp'):
        codax.jvp(uses_clip, (np.ones(2),), (np.ones(2),))


def softplus_twice(x):
    return softplus(x) * 2.0


def square_sin(x):
    return np.sin(scaled_square(x, 1.5))


def checkpointed_chain(x):
    return np.sum(light_step(np.array([x, 2.0 * x]), 0.7) ** 2)


def test_second_derivatives_go_through_custom_rules_and_checkpoints():
    # custom_jvp: d2/dx2 2 softplus(x) = 2 s (1 - s), the rule differentiated again
    s = 1 / (1 + np.exp(-0.3))
    assert np.isclose(codax.grad(codax.grad(softplus_twice))(0.3), 2 * s * (1 - s), rtol=1e-12)
    assert np.isclose(codax.hessian(softplus_twice)(0.3), 2 * s * (1 - s), rtol=1e-12)
    assert np.isclose(codax.jvp(codax.grad(softplus_twice), (0.3,), (1.0,))[1],
                      2 * s * (1 - s), rtol=1e-12)
    # custom_vjp and checkpoint: reverse over reverse through the user's fwd/bwd
    for fn, x in ((square_sin, 0.8), (checkpointed_chain, 0.4)):
        step = 1e-5
        fd = (codax.grad(fn)(x + step) - codax.grad(fn)(x - step)) / (2 * step)
        assert np.isclose(codax.grad(codax.grad(fn))(x), fd, rtol=1e-6)


# ---- stop_gradient ----

def uses_stop(x):
    return np.sum(x * codax.stop_gradient(x) ** 2)


def test_stop_gradient_blocks_reverse_and_forward_mode():
    x = np.array([1.0, 2.0, -0.5])
    np.testing.assert_allclose(codax.grad(uses_stop)(x), x ** 2)      # not 3 x^2
    v = np.array([1.0, 1.0, 2.0])
    np.testing.assert_allclose(codax.jvp(uses_stop, (x,), (v,))[1], np.sum(x ** 2 * v))


# ---- checkpoint: recompute instead of storing ----

def heavy_step(h, w):
    a = np.sin(h * w)
    b = np.cos(a + h)
    c = np.tanh(b * a)
    d = np.exp(-c * c)
    return h + 0.01 * d * a


light_step = codax.checkpoint(heavy_step)


def unroll_plain(w, h0):
    h = h0
    for _ in range(200):
        h = heavy_step(h, w)
    return np.sum(h)


def unroll_checkpointed(w, h0):
    h = h0
    for _ in range(200):
        h = light_step(h, w)
    return np.sum(h)


def _peak_bytes(fn, *args):
    fn(*args)                                  # generate code outside the measurement
    tracemalloc.start()
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_checkpoint_gives_the_same_gradient_with_much_less_memory():
    h0 = np.linspace(-0.5, 1.5, 20_000)
    plain, plain_peak = _peak_bytes(codax.grad(unroll_plain), 0.8, h0)
    ckpt, ckpt_peak = _peak_bytes(codax.grad(unroll_checkpointed), 0.8, h0)
    assert np.isclose(plain, ckpt, rtol=1e-12)
    step = 1e-6
    fd = (unroll_plain(0.8 + step, h0) - unroll_plain(0.8 - step, h0)) / (2 * step)
    assert np.isclose(ckpt, fd, rtol=1e-5)
    # per step the plain tape keeps the step's ~8 intermediates, the checkpointed
    # one only its argument: a 200-step loop must need well under half the memory
    assert ckpt_peak < 0.4 * plain_peak, (ckpt_peak, plain_peak)


# ---- rules of functions with defaults, called with them omitted or by keyword ----

@codax.custom_jvp
def scaled_sin(x, scale=2.0):
    return np.sin(x) * scale


@scaled_sin.defjvp
def scaled_sin_jvp(primals, tangents):
    x, scale = primals
    t, t_scale = tangents
    return scaled_sin(x, scale), np.cos(x) * scale * t + np.sin(x) * t_scale


@codax.custom_vjp
def scaled_square(x, scale=3.0):
    return x ** 2 * scale


def scaled_square_fwd(x, scale=3.0):
    return scaled_square(x, scale), (x, scale)


def scaled_square_bwd(res, g):
    x, scale = res
    return 2 * x * scale * g, np.sum(x ** 2 * g)


scaled_square.defvjp(scaled_square_fwd, scaled_square_bwd)


@pytest.mark.parametrize('f, slope', [
    (lambda x: np.sum(scaled_sin(x)), lambda x: 2 * np.cos(x)),
    (lambda x: np.sum(scaled_sin(x, scale=3.0)), lambda x: 3 * np.cos(x)),
    (lambda x: np.sum(scaled_square(x)), lambda x: 6 * x),
    (lambda x: np.sum(scaled_square(x, scale=0.5)), lambda x: x),
], ids=['jvp rule, default', 'jvp rule, keyword', 'vjp rule, default', 'vjp rule, keyword'])
def test_rules_of_calls_with_omitted_defaults_and_keywords(f, slope):
    x = np.array([0.3, -0.5, 1.1])
    np.testing.assert_allclose(codax.grad(f)(x), slope(x), rtol=1e-12)
    batch = np.stack([x, 2 * x])
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(batch), slope(batch), rtol=1e-12)


def test_forward_mode_of_a_jvp_rule_with_omitted_defaults():
    x = np.array([0.3, -0.5, 1.1])
    _, tangent = codax.jvp(lambda x: scaled_sin(x), (x,), (np.ones(3),))
    np.testing.assert_allclose(tangent, 2 * np.cos(x), rtol=1e-12)
    hessian = codax.hessian(lambda x: np.sum(scaled_sin(x, scale=3.0)))(x)
    np.testing.assert_allclose(hessian, np.diag(-3 * np.sin(x)), rtol=1e-12, atol=1e-15)
