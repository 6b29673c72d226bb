"""Derivatives of codax.random's draws with respect to the float parameters
of their distributions, as JAX gives them: reparameterization (uniform,
truncated_normal, multivariate_normal: the same key's draws are smooth in the
parameters, so central differences of the sampler are the reference), the
implicit gradient of gamma draws (against SciPy's inverse CDF) and of what is
built from them (the chain rule over the same gamma draws), and zero for
integer and boolean draws. Under grad, jvp, jacfwd, jacrev, hessian,
vmap(grad) (against a loop) and jit(grad)."""
import numpy as np
import pytest

import codax
from codax import random as cr
from codax.random import _digamma, _gamma_slope
from helpers import numeric_grad
from transformer.errors import SourceError

KEY = cr.key(11)
KEYS = cr.split(cr.key(12), 4)


# ---- uniform: minval + (maxval - minval) * u ----

def uniform_loss(w, k):
    return np.sum(cr.uniform(k, (5,), np.float64, w, 2.0 * w + 1.0) ** 2)


def uniform_loss_keywords(w, k):
    return np.sum(cr.uniform(k, (5,), minval=w, maxval=w + 1.0) * np.arange(5.0))


def uniform_vector_loss(lo, k):
    return np.sum(np.sin(cr.uniform(k, (3, 2), np.float64, lo, 4.0)))


def test_uniform_gradient_is_that_of_the_draws_of_the_same_key():
    for w in (0.7, -2.0):
        want = numeric_grad(uniform_loss, (w, KEY))
        assert np.isclose(codax.grad(uniform_loss)(w, KEY), want, rtol=1e-7)
        assert np.isclose(codax.jvp(uniform_loss, (w, KEY), (1.0, np.zeros(2)))[1], want,
                          rtol=1e-7)
    # the example of the issue: keywords, d/dw sum((w + u) * i) = sum(i)
    assert codax.grad(uniform_loss_keywords)(0.5, KEY) == pytest.approx(10.0)
    lo = np.array([0.5, -1.0])
    want = numeric_grad(uniform_vector_loss, (lo, KEY))
    np.testing.assert_allclose(codax.grad(uniform_vector_loss)(lo, KEY), want, rtol=1e-7)
    np.testing.assert_allclose(codax.jacfwd(uniform_vector_loss)(lo, KEY), want, rtol=1e-7)
    np.testing.assert_allclose(codax.jacrev(uniform_vector_loss)(lo, KEY), want, rtol=1e-7)


def test_uniform_second_derivative():
    # d2/dw2 sum(U**2), U = w + (w + 1) u: sum(2 (1 + u)**2)
    u = cr.uniform(KEY, (5,))
    assert np.isclose(codax.hessian(uniform_loss)(0.3, KEY), np.sum(2 * (1 + u) ** 2),
                      rtol=1e-10)
    assert np.isclose(codax.grad(codax.grad(uniform_loss))(0.3, KEY), np.sum(2 * (1 + u) ** 2),
                      rtol=1e-10)


def test_uniform_gradient_under_vmap_and_jit():
    loop = np.array([codax.grad(uniform_loss)(0.7, k) for k in KEYS])
    batched = codax.vmap(codax.grad(uniform_loss), in_axes=(None, 0))(0.7, KEYS)
    np.testing.assert_allclose(batched, loop, rtol=1e-12)
    ws = np.array([0.1, 0.7, -3.0])
    np.testing.assert_allclose(codax.vmap(codax.grad(uniform_loss), in_axes=(0, None))(ws, KEY),
                               [codax.grad(uniform_loss)(w, KEY) for w in ws], rtol=1e-12)
    assert np.isclose(codax.jit(codax.grad(uniform_loss))(0.7, KEY),
                      codax.grad(uniform_loss)(0.7, KEY), rtol=1e-12)


def uniform_float32(w, k):
    return np.sum(cr.uniform(k, (4,), np.float32, w, np.float32(3.0)))


def test_uniform_tangent_keeps_the_draws_dtype():
    w = np.float32(0.5)
    out, tangent = codax.jvp(lambda_free_uniform, (w,), (np.ones((), np.float32),))
    assert tangent.dtype == np.float32
    u = cr.uniform(KEY, (4,), np.float32)
    np.testing.assert_allclose(tangent, 1 - u, rtol=1e-6)


def lambda_free_uniform(w):
    return cr.uniform(KEY, (4,), np.float32, w, np.float32(3.0))


# ---- truncated normal: the inverse CDF differentiated ----

def truncated_loss(lower, upper, k):
    return np.sum(cr.truncated_normal(k, lower, upper, (6,)) ** 3)


def test_truncated_normal_gradient_matches_differences_of_the_sampler():
    for lower, upper in ((-1.0, 2.0), (0.5, 0.9), (-3.0, -1.5)):
        for argnum in (0, 1):
            want = numeric_grad(truncated_loss, (lower, upper, KEY), argnum, eps=1e-7)
            got = codax.grad(truncated_loss, argnums=argnum)(lower, upper, KEY)
            assert np.isclose(got, want, rtol=1e-6), (lower, upper, argnum)


def truncated_sum(w, k):
    return truncated_loss(-w, w ** 2, k)


def test_truncated_normal_second_derivative_and_transformations():
    w = 1.3
    h = 1e-5
    want = (codax.grad(truncated_sum)(w + h, KEY) - codax.grad(truncated_sum)(w - h, KEY)) / (2 * h)
    assert np.isclose(codax.hessian(truncated_sum)(w, KEY), want, rtol=1e-6)
    first = codax.grad(truncated_sum)(w, KEY)
    assert np.isclose(codax.jacfwd(truncated_sum)(w, KEY), first, rtol=1e-12)
    assert np.isclose(codax.jit(codax.grad(truncated_sum))(w, KEY), first, rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(codax.grad(truncated_sum), in_axes=(None, 0))(w, KEYS),
                               [codax.grad(truncated_sum)(w, k) for k in KEYS], rtol=1e-12)


def clipped_draw(lower, k):
    return cr.truncated_normal(k, lower, lower + 1e-300)


def test_truncated_normal_draws_clipped_to_the_interval_have_zero_gradient():
    # an interval narrower than an ulp: every draw is clipped to its end (as JAX)
    assert codax.grad(clipped_draw)(40.0, KEY) == 0.0


# ---- gamma: the implicit reparameterization gradient ----

def gamma_draws(a, k):
    return cr.gamma(k, a, (6,))


def test_gamma_slope_is_minus_dF_da_over_the_density():
    special = pytest.importorskip('scipy.special')
    for a in (0.01, 0.3, 1.0, 2.5, 40.0, 3e4):
        x = special.gammaincinv(a, np.array([1e-6, 0.05, 0.5, 0.9, 0.999]))
        x = x[x > 1e-250]                     # (a = 0.01: the lowest quantiles underflow)
        h = 1e-6 * a
        dF = (special.gammainc(a + h, x) - special.gammainc(a - h, x)) / (2 * h)
        log_density = (a - 1) * np.log(x) - x - special.gammaln(a)
        want = -dF / np.exp(log_density)
        np.testing.assert_allclose(_gamma_slope(x, a, False), want, rtol=2e-5, atol=0)
        # in log space: d log x / da, also where x underflows to 0
        np.testing.assert_allclose(_gamma_slope(np.log(x), a, True), want / x, rtol=2e-5)


def test_gamma_slope_for_huge_a_agrees_with_the_exact_series(monkeypatch):
    """From a = 1e7 on, Wilson and Hilferty's approximation stands in for the
    series and continued fraction, which take O(sqrt(a)) steps; at a = 1e8
    both agree to 1e-10 (SciPy's inverse CDF is no finer there)."""
    special = pytest.importorskip('scipy.special')
    x = special.gammaincinv(1e8, np.array([1e-6, 0.3, 0.999]))
    approximated = _gamma_slope(x, 1e8, False)
    monkeypatch.setattr(codax.random, '_WILSON_HILFERTY_FROM', np.inf)
    np.testing.assert_allclose(approximated, _gamma_slope(x, 1e8, False), rtol=1e-10)


def test_digamma_matches_scipy():
    special = pytest.importorskip('scipy.special')
    x = np.array([1e-4, 0.3, 1.0, 2.5, 9.99, 10.0, 57.0, 1e6])
    np.testing.assert_allclose(_digamma(np, x), special.digamma(x), rtol=1e-14)


def inverse_cdf_slope(a, x):
    """dx/da at fixed CDF value, by differences of SciPy's inverse CDF."""
    special = pytest.importorskip('scipy.special')
    q = special.gammainc(a, x)
    h = 1e-6 * a
    return (special.gammaincinv(a + h, q) - special.gammaincinv(a - h, q)) / (2 * h)


def test_gamma_gradient_is_the_inverse_cdf_derivative():
    for a in (0.2, 1.7, 30.0):
        x = gamma_draws(a, KEY)
        want = inverse_cdf_slope(a, x)
        np.testing.assert_allclose(codax.jacfwd(gamma_draws)(a, KEY), want, rtol=1e-5)
        np.testing.assert_allclose(codax.jacrev(gamma_draws)(a, KEY), want, rtol=1e-5)
        loss = codax.grad(lambda_free_gamma_sum)(a)
        assert np.isclose(loss, np.sum(want), rtol=1e-5)


def lambda_free_gamma_sum(a):
    return np.sum(cr.gamma(KEY, a, (6,)))


def gamma_mean(a, keys):
    return np.mean(codax.vmap(gamma_sum, in_axes=(None, 0))(a, keys))


def gamma_sum(a, k):
    return np.sum(cr.gamma(k, a, (50,)))


def test_gamma_gradients_average_to_the_derivative_of_the_mean():
    # E[x] = a for Gamma(a): the mean gradient over many draws is about 1
    keys = cr.split(cr.key(5), 40)
    grads = codax.vmap(codax.grad(gamma_sum), in_axes=(None, 0))(0.8, keys)
    np.testing.assert_allclose(grads, [codax.grad(gamma_sum)(0.8, k) for k in keys[:3]] +
                               list(grads[3:]), rtol=1e-12)
    assert np.mean(grads) / 50 == pytest.approx(1.0, abs=0.05)


def loggamma_mean(a, k):
    return np.mean(cr.loggamma(k, a, (4000,)))


def test_loggamma_gradient_in_log_space_for_tiny_a():
    special = pytest.importorskip('scipy.special')
    # d/da E[log x] = trigamma(a); draws of a = 0.01 underflow gamma, not loggamma
    for a in (0.01, 2.0):
        assert codax.grad(loggamma_mean)(a, KEY) == pytest.approx(
            special.polygamma(1, a), rel=0.08)
    logs = cr.loggamma(KEY, 0.01, (4,))
    x = np.exp(logs.astype(np.float64))
    want = inverse_cdf_slope(0.01, x[x > 1e-300]) / x[x > 1e-300]
    got = codax.jacfwd(lambda_free_loggamma)(0.01)
    np.testing.assert_allclose(got[x > 1e-300], want, rtol=1e-4)
    assert np.all(np.isfinite(got))


def lambda_free_loggamma(a):
    return cr.loggamma(KEY, a, (4,))


# ---- built from gamma draws: the chain rule over the same draws ----

def beta_draws(a, b, k):
    return cr.beta(k, a, b, (5,))


def test_beta_gradient_by_the_chain_rule():
    a, b = 1.5, 0.7
    ka, kb = cr.split(KEY)
    x, y = cr.gamma(ka, a, (5,)), cr.gamma(kb, b, (5,))
    np.testing.assert_allclose(codax.jacfwd(beta_draws)(a, b, KEY),
                               y / (x + y) ** 2 * inverse_cdf_slope(a, x), rtol=1e-5)
    np.testing.assert_allclose(codax.jacrev(beta_draws, argnums=1)(a, b, KEY),
                               -x / (x + y) ** 2 * inverse_cdf_slope(b, y), rtol=1e-5)


def chisquare_draws(df, k):
    return cr.chisquare(k, df, (5,))


def t_draws(df, k):
    return cr.t(k, df, (5,))


def generalized_normal_draws(p, k):
    return cr.generalized_normal(k, p, (5,))


def test_chisquare_t_and_generalized_normal_gradients_by_the_chain_rule():
    df = 3.0
    g = cr.gamma(KEY, df / 2, (5,))                 # chisquare = 2 Gamma(df / 2)
    np.testing.assert_allclose(codax.jacfwd(chisquare_draws)(df, KEY),
                               inverse_cdf_slope(df / 2, g), rtol=1e-5)
    kn, kg = cr.split(KEY)                          # t = z sqrt((df / 2) / Gamma(df / 2))
    z, g = cr.normal(kn, (5,)), cr.gamma(kg, df / 2, (5,))
    out = z * np.sqrt(df / 2 / g)
    want = out * 0.5 * (1 / (df / 2) - inverse_cdf_slope(df / 2, g) / g) * 0.5
    np.testing.assert_allclose(codax.jacrev(t_draws)(df, KEY), want, rtol=1e-5)
    p = 1.5                                         # sign * Gamma(1/p)**(1/p)
    kg, ks = cr.split(KEY)
    g = cr.gamma(kg, 1 / p, (5,))
    out = cr.generalized_normal(KEY, p, (5,))
    want = out * (-np.log(g) / p ** 2 - inverse_cdf_slope(1 / p, g) / (g * p ** 3))
    np.testing.assert_allclose(codax.jacfwd(generalized_normal_draws)(p, KEY), want, rtol=1e-5)


def dirichlet_first(w, k):
    return np.mean(cr.dirichlet(k, np.array([1.0, 2.0]) * w, (20000,))[:, 0])


def test_dirichlet_gradients_average_to_the_derivative_of_the_mean():
    # E[x_0] = alpha_0 / sum(alpha) does not change with a common scale w
    assert codax.grad(dirichlet_first)(1.5, KEY) == pytest.approx(0.0, abs=3e-3)


def test_second_derivatives_of_gamma_draws_are_refused_clearly():
    with pytest.raises(SourceError, match='no second one'):
        codax.hessian(gamma_sum)(1.5, KEY)


# ---- multivariate normal: mean + cholesky(cov) z ----

def mvn_loss(mean, cov, k):
    return np.sum(cr.multivariate_normal(k, mean, cov, (3,)) ** 2 * np.array([1.0, 2.0]))


def mvn_eigh(mean, k):
    return np.sum(cr.multivariate_normal(k, mean, np.eye(2), None, None, 'eigh'))


def test_multivariate_normal_gradients():
    mean, cov = np.array([0.5, -1.0]), np.array([[2.0, 0.6], [0.6, 1.0]])
    for argnum in (0, 1):
        want = numeric_grad(mvn_loss, (mean, cov, KEY), argnum)
        if argnum == 1:              # the draws read cov as symmetric: its symmetric part
            want = (want + want.T) / 2
        got = codax.grad(mvn_loss, argnums=argnum)(mean, cov, KEY)
        np.testing.assert_allclose((got + got.T) / 2 if argnum else got, want, rtol=1e-6)
    np.testing.assert_allclose(codax.jacfwd(mvn_loss)(mean, cov, KEY),
                               codax.grad(mvn_loss)(mean, cov, KEY), rtol=1e-12)
    with pytest.raises(SourceError, match="method='cholesky' only"):
        codax.grad(mvn_eigh)(mean, KEY)


# ---- integer and boolean draws: no derivative flows (as in JAX) ----

def discrete_loss(w, k):
    return (np.sum(cr.bernoulli(k, w / 4.0, (6,)) * w)
            + np.sum(cr.categorical(k, np.array([0.0, 1.0]) * w, shape=(6,)) * w)
            + np.sum(cr.poisson(k, w, (6,)) * w)
            + np.sum(cr.randint(k, (6,), w, 10) * w)
            + np.sum(cr.choice(k, 3, (6,), True, np.array([0.2, 0.3, 0.5]) * w)))


def test_integer_and_boolean_draws_are_constants():
    w = 1.5
    want = (np.sum(cr.bernoulli(KEY, w / 4.0, (6,))) + np.sum(cr.categorical(
        KEY, np.array([0.0, 1.0]) * w, shape=(6,))) + np.sum(cr.poisson(KEY, w, (6,)))
        + np.sum(cr.randint(KEY, (6,), w, 10)))
    assert codax.grad(discrete_loss)(w, KEY) == want
    assert codax.jvp(discrete_loss, (w, KEY), (1.0, np.zeros(2)))[1] == want


def permuted(x, k):
    return np.sum(cr.permutation(k, x) * np.arange(3.0))


def test_permuting_a_differentiated_array_says_how_to_do_it():
    with pytest.raises(SourceError, match=r'x\[random.permutation\(key, len\(x\)\)\]'):
        codax.grad(permuted)(np.ones(3), KEY)


# ---- the mechanism: a custom_jvp rule that calls its own function ----

@codax.custom_jvp
def exp_with_rule(x):
    return np.exp(x)


@exp_with_rule.defjvp
def _exp_with_rule_jvp(primals, tangents):
    ans = exp_with_rule(primals[0])
    return ans, ans * tangents[0]


def exp_sum(x):
    return np.sum(exp_with_rule(x) * np.array([1.0, 3.0]))


def test_custom_jvp_rule_using_the_output_under_reverse_mode():
    """Reverse mode transposes the rule in its tangents only, so a rule that
    calls its own function does not differentiate itself without end."""
    x = np.array([0.3, -0.5])
    np.testing.assert_allclose(codax.grad(exp_sum)(x), np.exp(x) * [1, 3], rtol=1e-12)
    np.testing.assert_allclose(codax.hessian(exp_sum)(x), np.diag(np.exp(x) * [1, 3]),
                               rtol=1e-12)
