"""custom_jvp, custom_vjp, stop_gradient and checkpoint, against references."""
import functools
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


# ---- what a custom_vjp bwd rule may return (JAX's rules) ----

def _product_fwd(x, y):
    return x * y, (x, y)


def _make_product(bwd):
    """x * y with the given bwd rule (residuals (x, y))."""
    product = codax.custom_vjp(lambda x, y: x * y)
    product.defvjp(_product_fwd, bwd)
    return product


def _bwd_bare_array(residuals, g):
    return residuals[1] * g                    # not a tuple


def _bwd_bare_none(residuals, g):
    return None


def _bwd_too_short(residuals, g):
    return (residuals[1] * g,)


def _bwd_too_long(residuals, g):
    return residuals[1] * g, residuals[0] * g, g


@pytest.mark.parametrize('bwd, got', [
    (_bwd_bare_array, 'got ndarray'), (_bwd_bare_none, 'got NoneType'),
    (_bwd_too_short, 'got tuple of length 1'), (_bwd_too_long, 'got tuple of length 3')])
def test_a_bwd_rule_must_return_one_cotangent_per_argument(bwd, got):
    product = _make_product(bwd)
    line = bwd.__code__.co_firstlineno
    with pytest.raises(TypeError, match=rf'bwd rule _bwd_\w+ \(.*test_custom_rules\.py:{line}\)'
                                        rf'.*one cotangent per argument.*\(2: x, y\).*{got}'):
        codax.grad(lambda x, y: np.sum(product(x, y)))(np.ones(2), np.ones(2))


def _bwd_none_for_x(residuals, g):
    return None, residuals[0] * g


def _bwd_as_list(residuals, g):
    return [residuals[1] * g, residuals[0] * g]


def test_a_none_cotangent_is_zero_and_a_list_is_accepted():
    x, y = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    gx, gy = codax.grad(lambda x, y: np.sum(_make_product(_bwd_none_for_x)(x, y)),
                        argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, np.zeros(2))     # the rule's None: zero, shaped like x
    np.testing.assert_allclose(gy, x)
    listed = _make_product(_bwd_as_list)

    def loss(x, y):
        return np.sum(np.sin(listed(x, y)))
    for argnum in (0, 1):
        np.testing.assert_allclose(codax.grad(loss, argnums=argnum)(x, y),
                                   numeric_grad(loss, (x, y), argnum), rtol=1e-6)


none_rule_product = _make_product(_bwd_none_for_x)


def uses_none_rule(y):
    return np.sum(none_rule_product(y, y) ** 2)


def test_second_derivative_through_a_bwd_rule_returning_none():
    # the rule gives y's own factor only: d/dy = 2 p * y with p = y*y, so 6 y^2 on the diagonal
    y = np.array([0.7, -1.3])
    np.testing.assert_allclose(codax.grad(uses_none_rule)(y), 2 * y ** 3, rtol=1e-12)
    grad_of = codax.grad(uses_none_rule)
    want = np.stack([numeric_grad(lambda v: grad_of(v)[i], (y,)) for i in range(2)])
    np.testing.assert_allclose(codax.hessian(uses_none_rule)(y), want, rtol=1e-6)


def test_a_fwd_rule_must_return_a_pair():
    def fwd(x):
        return x
    square = codax.custom_vjp(lambda x: x * x)
    square.defvjp(fwd, lambda residuals, g: (g,))
    with pytest.raises(TypeError, match=rf'fwd rule .*fwd \(.*test_custom_rules\.py:'
                                        rf'{fwd.__code__.co_firstlineno}\).*a pair'):
        codax.grad(square)(1.5)


# ---- nondiff_argnums (JAX's convention: those arguments come first in the rule) ----

@functools.partial(codax.custom_vjp, nondiff_argnums=(1,))
def powered(x, n, y):
    return x ** n * y


def _powered_fwd(x, n, y):
    return powered(x, n, y), (x, y)


def _powered_bwd(n, residuals, g):
    x, y = residuals
    return n * x ** (n - 1) * y * g, x ** n * g


powered.defvjp(_powered_fwd, _powered_bwd)


def uses_powered(x, y):
    return np.sum(np.sin(powered(x, 3, y)))


def test_custom_vjp_nondiff_argnums_pass_those_arguments_to_bwd_first():
    x, y = np.array([0.4, -0.9, 1.2]), np.array([1.5, 0.5, -2.0])
    for argnum in (0, 1):
        np.testing.assert_allclose(codax.grad(uses_powered, argnums=argnum)(x, y),
                                   numeric_grad(uses_powered, (x, y), argnum), rtol=1e-6)
    batch = np.stack([x, 2 * x])
    np.testing.assert_allclose(codax.vmap(codax.grad(uses_powered), in_axes=(0, None))(batch, y),
                               np.stack([numeric_grad(uses_powered, (b, y)) for b in batch]),
                               rtol=1e-6)


@functools.partial(codax.custom_vjp, nondiff_argnums=(0,))
def apply_clipped(fn, x):
    return fn(x)


def _apply_fwd(fn, x):
    return fn(x), x


def _apply_bwd(fn, x, g):
    return (np.clip(g * np.cos(x), -0.5, 0.5),)     # a function argument, used by the rule


apply_clipped.defvjp(_apply_fwd, _apply_bwd)


def test_custom_vjp_with_a_function_as_nondiff_argument():
    x = np.array([0.1, 1.4, 2.0])
    got = codax.grad(lambda x: np.sum(apply_clipped(np.sin, x)))(x)
    np.testing.assert_allclose(got, np.clip(np.cos(x), -0.5, 0.5))


@functools.partial(codax.custom_jvp, nondiff_argnums=(0,))
def scaled_log1pexp(scale, x):
    return scale * np.log1p(np.exp(x))


@scaled_log1pexp.defjvp
def _scaled_log1pexp_jvp(scale, primals, tangents):
    x, = primals
    t, = tangents
    return scaled_log1pexp(scale, x), scale * t / (1.0 + np.exp(-x))


def uses_scaled(x):
    return np.sum(scaled_log1pexp(3.0, x) ** 2)


def test_custom_jvp_nondiff_argnums_pass_those_arguments_to_the_rule_first():
    x = np.array([-0.6, 0.2, 1.5])
    np.testing.assert_allclose(codax.grad(uses_scaled)(x), numeric_grad(uses_scaled, (x,)),
                               rtol=1e-6)
    v = np.array([1.0, -0.5, 2.0])
    np.testing.assert_allclose(codax.jvp(uses_scaled, (x,), (v,))[1],
                               numeric_grad(uses_scaled, (x,)) @ v, rtol=1e-6)
    grad_of = codax.grad(uses_scaled)
    want = np.stack([numeric_grad(lambda u: grad_of(u)[i], (x,)) for i in range(3)])
    np.testing.assert_allclose(codax.hessian(uses_scaled)(x), want, rtol=1e-6)
    np.testing.assert_allclose(codax.jacfwd(lambda x: scaled_log1pexp(3.0, x))(x),
                               np.diag(3.0 / (1.0 + np.exp(-x))), rtol=1e-12)


def test_bad_nondiff_argnums_name_the_function():
    def two(x, y):
        return x * y
    line = two.__code__.co_firstlineno
    for make in (codax.custom_vjp, codax.custom_jvp):
        with pytest.raises(TypeError, match=rf'nondiff_argnums=\(2,\) for .*two '
                                            rf'\(.*test_custom_rules\.py:{line}\)'):
            make(two, nondiff_argnums=(2,))


# ---- defjvps: one rule per argument ----

@codax.custom_jvp
def x_sin_y(x, y):
    return x * np.sin(y)


x_sin_y.defjvps(lambda tx, ans, x, y: tx * np.sin(y),
                lambda ty, ans, x, y: x * np.cos(y) * ty)


@codax.custom_jvp
def x_sin_y_frozen(x, y):
    return x * np.sin(y)


x_sin_y_frozen.defjvps(lambda tx, ans, x, y: tx * np.sin(y), None)    # y: no contribution


def uses_x_sin_y(x, y):
    return np.sum(np.tanh(x_sin_y(x, y)))


def test_defjvps_sums_the_rules_of_each_argument():
    x, y = np.array([0.3, -1.1]), np.array([0.8, 2.0])
    for argnum in (0, 1):
        np.testing.assert_allclose(codax.grad(uses_x_sin_y, argnums=argnum)(x, y),
                                   numeric_grad(uses_x_sin_y, (x, y), argnum), rtol=1e-6)
    tx, ty = np.array([1.0, 0.5]), np.array([-2.0, 1.0])
    _, tangent = codax.jvp(x_sin_y, (x, y), (tx, ty))
    np.testing.assert_allclose(tangent, tx * np.sin(y) + x * np.cos(y) * ty, rtol=1e-12)
    _, tangent = codax.jvp(x_sin_y_frozen, (x, y), (tx, ty))
    np.testing.assert_allclose(tangent, tx * np.sin(y), rtol=1e-12)
    gx, gy = codax.grad(lambda x, y: np.sum(x_sin_y_frozen(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, np.sin(y))
    np.testing.assert_array_equal(gy, np.zeros(2))


def test_defjvps_needs_one_rule_per_argument_and_no_nondiff_argnums():
    with pytest.raises(TypeError, match='defjvps got 1 rules for 2 arguments'):
        codax.custom_jvp(lambda x, y: x * y).defjvps(None)
    with pytest.raises(TypeError, match="can't use defjvps with nondiff_argnums"):
        codax.custom_jvp(lambda n, x: x, nondiff_argnums=(0,)).defjvps(None)


# ---- checkpoint(fun, static_argnums=...) ----

def activation_step(x, kind, scale):
    if kind == 'tanh':
        return np.tanh(x) * scale
    return np.sin(x) * scale


checkpointed_step = codax.checkpoint(activation_step, static_argnums=(1,))


def uses_checkpointed_step(x, scale, kind):
    h = x
    for _ in range(3):
        h = checkpointed_step(h, kind, scale)
    return np.sum(h)


def test_checkpoint_with_static_argnums():
    x = np.array([0.2, -0.7, 1.1])
    for kind in ('tanh', 'sin'):
        for argnum in (0, 1):
            np.testing.assert_allclose(
                codax.grad(uses_checkpointed_step, argnums=argnum)(x, 0.9, kind),
                numeric_grad(lambda x, s: uses_checkpointed_step(x, s, kind), (x, 0.9), argnum),
                rtol=1e-6)
    assert codax.remat is codax.checkpoint


def test_checkpoint_rejects_bad_static_argnums_and_policies():
    line = activation_step.__code__.co_firstlineno
    with pytest.raises(TypeError, match=rf'static_argnums=\(3,\) for activation_step '
                                        rf'\(.*test_custom_rules\.py:{line}\)'):
        codax.checkpoint(activation_step, static_argnums=(3,))
    with pytest.raises(TypeError, match='policy'):
        codax.checkpoint(activation_step, policy=lambda *a: True)
