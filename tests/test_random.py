"""codax.random: Threefry known answers, agreement with jax.random, statistics,
shapes and dtypes, and draws as constants under codax's derivatives."""
import math
import subprocess
import sys

import numpy as np
import pytest

import codax
from codax import random as cr

# Random123 kat_vectors, threefry2x32 with 20 rounds: (key, counter, output)
KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6b200159, 0x99ba4efe)),
    ((0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff), (0x1cb996fc, 0xbb002be7)),
    ((0x13198a2e, 0x03707344), (0x243f6a88, 0x85a308d3), (0xc4923a9c, 0x483df7a0)),
]


@pytest.mark.parametrize('key,ctr,expected', KAT)
def test_threefry_known_answers(key, ctr, expected):
    y0, y1 = cr.threefry2x32_p(np.uint32(key[0]), np.uint32(key[1]),
                               np.uint32(ctr[0]), np.uint32(ctr[1]))
    assert (int(y0), int(y1)) == expected
    out = cr.threefry_2x32(np.array(key, np.uint32), np.array(ctr, np.uint32))
    assert out.dtype == np.uint32 and tuple(int(v) for v in out) == expected


def test_threefry_vectorized_matches_scalar():
    x0 = np.arange(10, dtype=np.uint32) * np.uint32(7919)
    x1 = np.arange(10, dtype=np.uint32)[::-1].copy()
    y0, y1 = cr.threefry2x32_p(np.uint32(3), np.uint32(5), x0, x1)
    for i in range(10):
        s0, s1 = cr.threefry2x32_p(np.uint32(3), np.uint32(5), x0[i], x1[i])
        assert (s0, s1) == (y0[i], y1[i])


# ---------------------------------------------------------------- against JAX

@pytest.fixture(scope='module')
def jr():
    jax = pytest.importorskip('jax')
    old = jax.config.jax_enable_x64
    jax.config.update('jax_enable_x64', True)
    if not jax.config.jax_threefry_partitionable:
        pytest.skip('codax.random follows jax_threefry_partitionable=True')
    import jax.random
    yield jax.random
    jax.config.update('jax_enable_x64', old)


def _eq(a, b):
    b = np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def test_threefry_matches_jax_internal(jr):
    from jax._src.random.threefry2x32 import threefry_2x32
    for key, ctr, _ in KAT:
        assert _eq(cr.threefry_2x32(np.array(key, np.uint32), np.array(ctr, np.uint32)),
                   threefry_2x32(np.array(key, np.uint32), np.array(ctr, np.uint32)))
    count = np.arange(7, dtype=np.uint32)   # odd length: padded as in JAX
    assert _eq(cr.threefry_2x32(np.array([1, 2], np.uint32), count),
               threefry_2x32(np.array([1, 2], np.uint32), count))


@pytest.mark.parametrize('seed', [0, 1, 42, 2 ** 31 + 5, 2 ** 32 - 1, 2 ** 40 + 7, -1, -2 ** 40])
def test_key_matches_jax(jr, seed):
    assert _eq(cr.key(seed), jr.PRNGKey(seed))
    assert _eq(cr.PRNGKey(seed), jr.PRNGKey(seed))


def test_key_layout():
    assert cr.key(7).tolist() == [0, 7] and cr.key(7).dtype == np.uint32
    assert cr.key(2 ** 32 + 3).tolist() == [1, 3]


def test_split_fold_in_bits_match_jax(jr):
    for seed in (0, 42, 12345):
        k, jk = cr.key(seed), jr.PRNGKey(seed)
        assert _eq(cr.split(k), jr.split(jk))
        assert _eq(cr.split(k, 5), jr.split(jk, 5))
        assert _eq(cr.split(k, (2, 3)), jr.split(jk, (2, 3)))
        for data in (0, 1, 7, 2 ** 32 - 1):
            assert _eq(cr.fold_in(k, data), jr.fold_in(jk, data))
        for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
            assert _eq(cr.bits(k, (3, 5), dtype), jr.bits(jk, (3, 5), dtype))
        assert _eq(np.asarray(cr.bits(k, (4,))), jr.bits(jk, (4,)))    # both uint64 with x64


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
def test_uniform_matches_jax(jr, dtype):
    k, jk = cr.key(3), jr.PRNGKey(3)
    assert _eq(cr.uniform(k, (1000,), dtype), jr.uniform(jk, (1000,), dtype))
    assert _eq(cr.uniform(k, (10, 20), dtype, -2., 3.), jr.uniform(jk, (10, 20), dtype, -2., 3.))
    assert _eq(cr.uniform(k, (), dtype), jr.uniform(jk, (), dtype))


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_normal_close_to_jax(jr, dtype):
    k, jk = cr.key(5), jr.PRNGKey(5)
    tol = 2e-5 if dtype == np.float32 else 1e-12   # erfinv is steep in the tails
    np.testing.assert_allclose(cr.normal(k, (2000,), dtype), jr.normal(jk, (2000,), dtype),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(cr.truncated_normal(k, -1., 2., (2000,), dtype),
                               jr.truncated_normal(jk, -1., 2., (2000,), dtype),
                               rtol=tol, atol=tol)


def test_discrete_match_jax(jr):
    k, jk = cr.key(11), jr.PRNGKey(11)
    assert _eq(cr.bernoulli(k, 0.3, (50,)), jr.bernoulli(jk, 0.3, (50,)))
    p = np.linspace(0, 1, 20)
    assert _eq(cr.bernoulli(k, p), jr.bernoulli(jk, p))
    logits = np.random.default_rng(0).normal(size=(4, 6))
    assert np.array_equal(cr.categorical(k, logits), jr.categorical(jk, logits))
    assert np.array_equal(cr.categorical(k, logits, axis=0, shape=(3, 6)),
                          jr.categorical(jk, logits, axis=0, shape=(3, 6)))
    for lo, hi, dtype in [(0, 10, np.int64), (-5, 1000, np.int32), (0, 256, np.uint8),
                          (3, 3, np.int64), (-2 ** 63, 2 ** 63 - 1, np.int64)]:
        assert _eq(cr.randint(k, (200,), lo, hi, dtype), jr.randint(jk, (200,), lo, hi, dtype))
    x = np.arange(12.).reshape(4, 3)
    assert _eq(cr.permutation(k, 10), jr.permutation(jk, 10))
    assert _eq(cr.permutation(k, 3000), jr.permutation(jk, 3000))   # two sort rounds
    assert _eq(cr.permutation(k, x), jr.permutation(jk, x))
    assert _eq(cr.permutation(k, x, 1, True), jr.permutation(jk, x, 1, True))
    q = np.array([.1, .2, .3, .4])
    assert _eq(cr.choice(k, 10, (5,)), jr.choice(jk, 10, (5,)))
    assert _eq(cr.choice(k, x, (2,), replace=False), jr.choice(jk, x, (2,), replace=False))
    assert np.array_equal(cr.choice(k, 4, (20,), p=q), jr.choice(jk, 4, (20,), p=q))
    assert np.array_equal(cr.choice(k, 4, (3,), replace=False, p=q),
                          jr.choice(jk, 4, (3,), replace=False, p=q))


# ---------------------------------------------------------------- reproducibility

def test_same_key_same_numbers():
    k = cr.key(123)
    for fn in (lambda: cr.normal(k, (5,)), lambda: cr.uniform(k, (5,)),
               lambda: cr.gamma(k, 2.0, (5,)), lambda: cr.randint(k, (5,), 0, 9)):
        assert np.array_equal(fn(), fn())


def test_same_numbers_across_processes():
    code = ('import numpy as np; from codax import random as r; '
            'print(repr(r.normal(r.fold_in(r.key(9), 4), (4,)).tolist()))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert eval(out) == cr.normal(cr.fold_in(cr.key(9), 4), (4,)).tolist()


def test_split_and_fold_in_independent():
    k = cr.key(0)
    subs = cr.split(k, 4)
    assert subs.shape == (4, 2) and subs.dtype == np.uint32
    # as in JAX's partitionable threefry, fold_in(k, i) is split(k, n)[i]
    for i in range(4):
        assert np.array_equal(cr.fold_in(k, i), subs[i])
    keys = [tuple(s) for s in subs] + [tuple(k)] + [tuple(cr.fold_in(k, 100 + i)) for i in range(4)]
    keys += [tuple(s) for s in cr.split(subs[0], 4)]
    assert len(set(keys)) == len(keys)
    draws = np.stack([cr.uniform(s, (4000,)) for s in subs] + [cr.uniform(k, (4000,))])
    corr = np.corrcoef(draws)
    assert np.all(np.abs(corr[np.triu_indices(5, 1)]) < 0.06)
    a, b = cr.split(k)
    assert not np.array_equal(cr.normal(a, (10,)), cr.normal(b, (10,)))


# ---------------------------------------------------------------- statistics

def test_kolmogorov_smirnov():
    stats = pytest.importorskip('scipy.stats')
    k = cr.key(2024)
    n = 20000
    assert stats.kstest(cr.uniform(k, (n,)), 'uniform').pvalue > 1e-3
    assert stats.kstest(cr.uniform(k, (n,), np.float32, -2., 3.), stats.uniform(-2, 5).cdf
                        ).pvalue > 1e-3
    assert stats.kstest(cr.normal(k, (n,)), 'norm').pvalue > 1e-3
    assert stats.kstest(cr.normal(k, (n,), np.float32), 'norm').pvalue > 1e-3
    assert stats.kstest(cr.truncated_normal(k, -0.5, 1.5, (n,)),
                        stats.truncnorm(-0.5, 1.5).cdf).pvalue > 1e-3
    for a in (0.3, 1.0, 4.5):
        assert stats.kstest(cr.gamma(k, a, (n,)), stats.gamma(a).cdf).pvalue > 1e-3
    assert stats.kstest(cr.beta(k, 2., 5., (n,)), stats.beta(2., 5.).cdf).pvalue > 1e-3


def test_moments():
    k = cr.key(1)
    n = 200000
    x = cr.normal(k, (n,))
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
    u = cr.uniform(k, (n,), minval=2., maxval=4.)
    assert u.min() >= 2. and u.max() < 4. and abs(u.mean() - 3) < 0.01
    g = cr.gamma(k, np.array([0.5, 3.0]), (n, 2))
    np.testing.assert_allclose(g.mean(axis=0), [0.5, 3.0], rtol=0.02)
    np.testing.assert_allclose(g.var(axis=0), [0.5, 3.0], rtol=0.05)
    assert abs(cr.bernoulli(k, 0.3, (n,)).mean() - 0.3) < 0.005
    r = cr.randint(k, (n,), -3, 7)
    assert r.min() == -3 and r.max() == 6
    np.testing.assert_allclose(np.bincount(r + 3) / n, 0.1, atol=0.005)
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    c = cr.categorical(k, logits, shape=(n,))
    np.testing.assert_allclose(np.bincount(c) / n, [0.2, 0.5, 0.3], atol=0.005)
    d = cr.dirichlet(k, np.array([1., 2., 3.]), (n,))
    np.testing.assert_allclose(d.sum(-1), 1.0)
    np.testing.assert_allclose(d.mean(0), [1 / 6, 2 / 6, 3 / 6], atol=0.005)
    t = cr.truncated_normal(k, -1., 2., (n,))
    assert t.min() > -1 and t.max() < 2
    ch = cr.choice(k, 4, (n,), p=np.array([.1, .2, .3, .4]))
    np.testing.assert_allclose(np.bincount(ch) / n, [.1, .2, .3, .4], atol=0.005)


def test_permutation_and_choice_without_replacement():
    k = cr.key(8)
    assert sorted(cr.permutation(k, 50).tolist()) == list(range(50))
    x = np.arange(20.).reshape(5, 4)
    px = cr.permutation(k, x)
    assert sorted(px[:, 0].tolist()) == x[:, 0].tolist() and np.all(px[:, 1] == px[:, 0] + 1)
    c = cr.choice(k, 10, (10,), replace=False)
    assert sorted(c.tolist()) == list(range(10))


# ---------------------------------------------------------------- shapes and dtypes

@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
def test_float_shapes_dtypes(dtype):
    k = cr.key(0)
    for fn in (cr.uniform, cr.normal):
        assert fn(k, (2, 3), dtype).shape == (2, 3) and fn(k, (2, 3), dtype).dtype == dtype
        assert fn(k, (), dtype).shape == ()
    t = cr.truncated_normal(k, -1., 1., (4,), dtype)
    assert t.shape == (4,) and t.dtype == dtype
    assert cr.truncated_normal(k, np.zeros(3), 1.).shape == (3,)


def test_shapes_dtypes():
    k = cr.key(0)
    assert cr.uniform(k).dtype == np.float64 and cr.normal(k).shape == ()
    assert cr.bits(k, (2, 2)).dtype == np.uint64
    assert cr.bits(k, (5,), np.uint64).dtype == np.uint64
    assert cr.bernoulli(k).dtype == bool and cr.bernoulli(k).shape == ()
    assert cr.bernoulli(k, np.full((2, 3), 0.5)).shape == (2, 3)
    assert cr.randint(k, (3, 4), 0, 5).dtype == np.int64
    assert cr.randint(k, (3,), 0, 5, np.int32).dtype == np.int32
    assert cr.categorical(k, np.zeros((5, 3))).shape == (5,)
    assert cr.categorical(k, np.zeros((5, 3)), shape=(2, 5)).shape == (2, 5)
    assert cr.choice(k, np.arange(10.), (2, 3)).shape == (2, 3)
    assert cr.gamma(k, np.ones((2, 3))).shape == (2, 3)
    assert cr.gamma(k, 2., (4,), np.float32).dtype == np.float32
    assert cr.beta(k, 2., 3., (4,)).shape == (4,)
    assert cr.dirichlet(k, np.ones(3), (5,)).shape == (5, 3)
    assert cr.dirichlet(k, np.ones((2, 3))).shape == (2, 3)
    with pytest.raises(TypeError):
        cr.uniform(np.zeros(2), (3,))
    with pytest.raises(TypeError):
        cr.key(1.5)


# ---------------------------------------------------------------- under codax

def noisy(x, k):
    return np.sum(x * cr.normal(k, (3,)))


def noisy_dropout(x, k):
    keep = cr.bernoulli(k, 0.5, (3,))
    return np.sum(np.where(keep, x, 0.0) ** 2) + np.sum(x * cr.uniform(cr.fold_in(k, 1), (3,)))


def test_draws_are_constants_to_grad():
    k = cr.key(0)
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(codax.grad(noisy)(x, k), cr.normal(k, (3,)))
    keep = cr.bernoulli(k, 0.5, (3,))
    expected = np.where(keep, 2 * x, 0.0) + cr.uniform(cr.fold_in(k, 1), (3,))
    np.testing.assert_allclose(codax.grad(noisy_dropout)(x, k), expected)
    v = np.array([1.0, 0.0, 2.0])
    _, t = codax.jvp(noisy, (x, k), (v, 0.0))
    np.testing.assert_allclose(t, np.dot(v, cr.normal(k, (3,))))


# ---------------------------------------------------------------- more samplers
# exponential, laplace, logistic, cauchy, rademacher, poisson, chisquare, t,
# loggamma, generalized_normal, multivariate_normal, orthogonal, ball, maxwell,
# key_data and wrap_key_data

N = 20000
COV = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
MEAN = np.array([1.0, -2.0, 0.5])
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _ks_distance(draws, cdf):
    """The Kolmogorov-Smirnov statistic of draws against an exact CDF."""
    x = np.sort(np.asarray(draws, dtype=np.float64).ravel())
    n = x.size
    f = cdf(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


def _ks_limit(n):
    return 1.95 / np.sqrt(n)            # the Kolmogorov distribution's 0.1% critical value


def _gammainc(a, x):
    """The regularized lower incomplete gamma function P(a, x), by its power
    series x**a e**-x / Gamma(a) * sum x**n / (a (a+1) ... (a+n))."""
    x = np.asarray(x, dtype=np.float64)
    term = np.full_like(x, 1.0 / a)
    total = term.copy()
    for n in range(1, 400):
        term = term * x / (a + n)
        total += term
    with np.errstate(divide='ignore'):
        return np.where(x > 0, np.exp(a * np.log(x) - x - math.lgamma(a)) * total, 0.0)


def _normal_cdf(x, mean=0.0, var=1.0):
    return 0.5 * (1 + _erf((x - mean) / np.sqrt(2 * var)))


def _laplace_cdf(x):
    return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0)), 1 - 0.5 * np.exp(-np.maximum(x, 0)))


def _t_cdf(df):
    """Student's t CDF for 1, 2 and 3 degrees of freedom (closed forms)."""
    return {1: lambda x: 0.5 + np.arctan(x) / np.pi,
            2: lambda x: 0.5 + x / (2 * np.sqrt(2 + x * x)),
            3: lambda x: 0.5 + (x / (np.sqrt(3) * (1 + x * x / 3)) + np.arctan(x / np.sqrt(3)))
            / np.pi}[df]


def _projection(k, method):
    """w . x for multivariate normal x: normal with mean w . MEAN, variance w' COV w."""
    w = np.array([0.3, -1.0, 2.0])
    return cr.multivariate_normal(k, MEAN, COV, (N,), method=method) @ w, \
        lambda x: _normal_cdf(x, w @ MEAN, w @ COV @ w)


# (name, draws from a key, exact CDF)
KS_CASES = [
    ('exponential', lambda k: cr.exponential(k, (N,)), lambda x: -np.expm1(-x)),
    ('exponential-f32', lambda k: cr.exponential(k, (N,), np.float32), lambda x: -np.expm1(-x)),
    ('laplace', lambda k: cr.laplace(k, (N,)), _laplace_cdf),
    ('logistic', lambda k: cr.logistic(k, (N,)), lambda x: 1 / (1 + np.exp(-x))),
    ('cauchy', lambda k: cr.cauchy(k, (N,)), _t_cdf(1)),
    ('maxwell', lambda k: cr.maxwell(k, (N,)),
     lambda x: _erf(x / np.sqrt(2)) - np.sqrt(2 / np.pi) * x * np.exp(-x * x / 2)),
    ('chisquare-1', lambda k: cr.chisquare(k, 1.0, (N,)), lambda x: _gammainc(0.5, x / 2)),
    ('chisquare-5', lambda k: cr.chisquare(k, 5.0, (N,)), lambda x: _gammainc(2.5, x / 2)),
    ('t-1', lambda k: cr.t(k, 1.0, (N,)), _t_cdf(1)),
    ('t-2', lambda k: cr.t(k, 2.0, (N,)), _t_cdf(2)),
    ('t-3', lambda k: cr.t(k, np.full(N, 3.0)), _t_cdf(3)),
    ('loggamma-0.05', lambda k: cr.loggamma(k, 0.05, (N,)),     # gamma underflows here
     lambda x: _gammainc(0.05, np.exp(x))),
    ('loggamma-3', lambda k: cr.loggamma(k, 3.0, (N,)), lambda x: _gammainc(3.0, np.exp(x))),
    ('generalized_normal-2', lambda k: cr.generalized_normal(k, 2.0, (N,)),
     lambda x: _normal_cdf(x, 0.0, 0.5)),                          # exp(-x**2): N(0, 1/2)
    ('generalized_normal-1', lambda k: cr.generalized_normal(k, 1.0, (N,)), _laplace_cdf),
    ('ball-radius', lambda k: np.linalg.norm(cr.ball(k, 3, 2, (N,)), axis=-1),
     lambda r: r ** 3),                                            # P(|x| <= r) = r**d
    ('ball-1-radius', lambda k: np.abs(cr.ball(k, 2, 1, (N,))).sum(-1), lambda r: r ** 2),
    ('orthogonal-corner', lambda k: cr.orthogonal(k, 3, (N,))[:, 0, 0],   # Archimedes:
     lambda x: (x + 1) / 2),                                                # uniform on [-1, 1]
    ('orthogonal-inner', lambda k: cr.orthogonal(k, 3, (N,))[:, 1, 2], lambda x: (x + 1) / 2),
]


@pytest.mark.parametrize('name,draw,cdf', KS_CASES, ids=[c[0] for c in KS_CASES])
def test_kolmogorov_smirnov_against_exact_cdfs(name, draw, cdf):
    draws = draw(cr.key(31))
    assert _ks_distance(draws, cdf) < _ks_limit(draws.size)


@pytest.mark.parametrize('method', ['cholesky', 'eigh', 'svd'])
def test_multivariate_normal_distribution(method):
    k = cr.key(32)
    projected, cdf = _projection(k, method)
    assert _ks_distance(projected, cdf) < _ks_limit(N)
    n = 100000
    x = cr.multivariate_normal(k, MEAN, COV, (n,), method=method)
    assert np.all(np.abs(x.mean(0) - MEAN) < 4 * np.sqrt(np.diag(COV) / n))
    # the sample covariance's standard error: sqrt((s_ii s_jj + s_ij**2) / n)
    sd = np.sqrt((np.outer(np.diag(COV), np.diag(COV)) + COV ** 2) / n)
    assert np.all(np.abs(np.cov(x.T) - COV) < 4.5 * sd)


@pytest.mark.parametrize('lam', [0.5, 4.0, 9.99, 10.0, 37.5, 1000.0])
def test_poisson_distribution(lam):
    """The empirical CDF against the exact one at every count (a KS check,
    conservative for a discrete law), and the mean and variance."""
    n = 100000
    x = cr.poisson(cr.key(33), lam, (n,))
    top = int(x.max()) + 1
    counts = np.arange(top)
    pmf = np.exp(-lam + counts * math.log(lam) - np.array([math.lgamma(c + 1) for c in counts]))
    empirical = np.cumsum(np.bincount(x, minlength=top)) / n
    assert np.max(np.abs(empirical - np.cumsum(pmf))) < _ks_limit(n)
    assert abs(x.mean() - lam) < 4 * math.sqrt(lam / n)
    assert abs(x.var() / lam - 1) < 0.03
    assert np.array_equal(cr.poisson(cr.key(33), 0.0, (5,)), np.zeros(5))


def test_poisson_without_scipy(monkeypatch):
    """Without SciPy, log-factorials come from math.lgamma: the same counts."""
    pytest.importorskip('scipy.special')
    k, lam = cr.key(48), np.array([[12.0], [300.0], [5000.0]])
    with_scipy = cr.poisson(k, lam, (3, 400))
    monkeypatch.setattr(cr, '_special', lambda xp, name: None)
    assert np.array_equal(cr.poisson(k, lam, (3, 400)), with_scipy)


def _digamma(a, h=1e-4):
    return (math.lgamma(a + h) - math.lgamma(a - h)) / (2 * h)


def _trigamma(a, h=1e-4):
    return (math.lgamma(a + h) - 2 * math.lgamma(a) + math.lgamma(a - h)) / h ** 2


def test_moments_of_more_samplers():
    k = cr.key(34)
    n = 100000

    def close(x, mean, var, tol=0.02):
        assert abs(x.mean() - mean) < tol * max(1, math.sqrt(var)), (x.mean(), mean)
        assert abs(x.var() / var - 1) < 2.5 * tol, (x.var(), var)
    close(cr.exponential(k, (n,)), 1.0, 1.0)
    close(cr.laplace(k, (n,)), 0.0, 2.0)
    close(cr.logistic(k, (n,)), 0.0, np.pi ** 2 / 3)
    close(cr.chisquare(k, 3.0, (n,)), 3.0, 6.0)
    close(cr.t(k, 8.0, (n,)), 0.0, 8.0 / 6.0)
    close(cr.maxwell(k, (n,)), 2 * math.sqrt(2 / math.pi), 3 - 8 / math.pi)
    for a in (0.5, 3.0):
        close(cr.loggamma(k, a, (n,)), _digamma(a), _trigamma(a))
    r = cr.rademacher(k, (n,))
    assert set(np.unique(r).tolist()) == {-1, 1} and abs(r.mean()) < 0.01
    c = cr.cauchy(k, (n,))
    assert abs(np.median(c)) < 0.02 and abs(np.mean(np.abs(c) < 1) - 0.5) < 0.01


def test_orthogonal_matrices():
    k = cr.key(35)
    q = cr.orthogonal(k, 4, (500,))
    np.testing.assert_allclose(q @ q.swapaxes(-1, -2), np.broadcast_to(np.eye(4), q.shape),
                               atol=1e-12)
    det = np.linalg.det(q)
    np.testing.assert_allclose(np.abs(det), 1.0)
    assert abs(np.mean(det > 0) - 0.5) < 0.08                 # both components of O(n)
    wide, tall = cr.orthogonal(k, 2, (50,), m=5), cr.orthogonal(k, 5, (50,), m=2)
    assert wide.shape == (50, 2, 5) and tall.shape == (50, 5, 2)
    np.testing.assert_allclose(wide @ wide.swapaxes(-1, -2), np.broadcast_to(np.eye(2),
                                                                             (50, 2, 2)),
                               atol=1e-12)
    np.testing.assert_allclose(tall.swapaxes(-1, -2) @ tall, np.broadcast_to(np.eye(2),
                                                                             (50, 2, 2)),
                               atol=1e-12)


def test_multivariate_normal_singular_and_batched():
    k = cr.key(36)
    v = np.array([1.0, 2.0, -1.0])
    for method in ('eigh', 'svd'):                      # rank 1: x - mean along v
        x = cr.multivariate_normal(k, MEAN, np.outer(v, v), (1000,), method=method)
        assert np.all(np.isfinite(x))
        np.testing.assert_allclose(np.cross(x - MEAN, v), 0.0, atol=1e-6)   # rounding: ~1e-8
        assert abs(np.var((x - MEAN) @ v / (v @ v)) - 1) < 0.15
    with pytest.raises(ValueError, match='not positive definite'):
        cr.multivariate_normal(k, MEAN, np.outer(v, v) - np.eye(3))
    means = np.stack([MEAN, -MEAN])
    x = cr.multivariate_normal(k, means, COV)
    assert x.shape == (2, 3)
    z = cr.normal(k, (2, 3))                            # mean + L z, L from numpy
    np.testing.assert_allclose(x, means + z @ np.linalg.cholesky(COV).T, rtol=1e-12)
    assert cr.multivariate_normal(k, means, COV, (4, 2)).shape == (4, 2, 3)
    covs = np.stack([COV, 2 * COV])
    assert cr.multivariate_normal(k, MEAN, covs, (5, 2)).shape == (5, 2, 3)


def test_ball_and_maxwell():
    k = cr.key(37)
    b = cr.ball(k, 3, 2, (1000,))
    assert b.shape == (1000, 3) and np.all(np.linalg.norm(b, axis=-1) <= 1)
    assert np.all(np.abs(b.mean(0)) < 0.06)
    assert np.all(np.abs(cr.ball(k, 4, 1.5, (500,))) ** 1.5 @ np.ones(4) <= 1)
    m = cr.maxwell(k, (4,))                              # the length of 3 normals
    np.testing.assert_allclose(m, np.linalg.norm(cr.normal(k, (4, 3)), axis=-1), rtol=1e-15)


SAMPLERS = {                                             # one draw of each new sampler
    'exponential': lambda k: cr.exponential(k, (5,)),
    'laplace': lambda k: cr.laplace(k, (5,)),
    'logistic': lambda k: cr.logistic(k, (5,)),
    'cauchy': lambda k: cr.cauchy(k, (5,)),
    'rademacher': lambda k: cr.rademacher(k, (5,)),
    'poisson': lambda k: cr.poisson(k, np.array([0.5, 3.0, 9.0, 11.0, 80.0])),
    'chisquare': lambda k: cr.chisquare(k, 2.5, (5,)),
    't': lambda k: cr.t(k, 3.0, (5,)),
    'loggamma': lambda k: cr.loggamma(k, 0.7, (5,)),
    'generalized_normal': lambda k: cr.generalized_normal(k, 1.5, (5,)),
    'multivariate_normal': lambda k: cr.multivariate_normal(k, np.zeros(5), np.eye(5)),
    'orthogonal': lambda k: cr.orthogonal(k, 5)[0],
    'ball': lambda k: cr.ball(k, 5),
    'maxwell': lambda k: cr.maxwell(k, (5,)),
}


@pytest.mark.parametrize('name', SAMPLERS)
def test_more_samplers_reproducible(name):
    draw = SAMPLERS[name]
    k = cr.key(38)
    a, b = cr.split(k)
    assert np.array_equal(draw(k), draw(cr.key(38)))
    assert not np.array_equal(draw(a), draw(b))


def test_more_samplers_same_numbers_across_processes():
    code = ('from codax import random as r; import numpy as np; k = r.key(5); '
            'print(repr([r.poisson(k, np.array([2.0, 50.0])).tolist(), r.t(k, 3.0, (2,)).tolist(), '
            'r.orthogonal(k, 2).tolist()]))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    k = cr.key(5)
    assert eval(out) == [cr.poisson(k, np.array([2.0, 50.0])).tolist(),
                         cr.t(k, 3.0, (2,)).tolist(), cr.orthogonal(k, 2).tolist()]


@pytest.mark.parametrize('name', ['exponential', 'laplace', 'logistic', 'cauchy', 'rademacher'])
def test_elementwise_samplers_consistent_across_shapes(name):
    """One uniform per element at its flat index, as uniform itself: a draw of
    shape (2, 3) is one of shape (6,) reshaped, and a shorter draw a prefix."""
    fn = getattr(cr, name)
    k = cr.key(39)
    assert np.array_equal(fn(k, (2, 3)), fn(k, (6,)).reshape(2, 3))
    assert np.array_equal(fn(k, (4,)), fn(k, (6,))[:4])
    assert np.array_equal(cr.uniform(k, (2, 3)), cr.uniform(k, (6,)).reshape(2, 3))


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
def test_more_samplers_keep_the_float_dtype(dtype):
    k = cr.key(40)
    draws = [cr.exponential(k, (3,), dtype), cr.laplace(k, (3,), dtype),
             cr.logistic(k, (3,), dtype), cr.cauchy(k, (3,), dtype),
             cr.chisquare(k, 2.0, (3,), dtype), cr.t(k, 2.0, (3,), dtype),
             cr.loggamma(k, 2.0, (3,), dtype), cr.generalized_normal(k, 2.0, (3,), dtype),
             cr.multivariate_normal(k, np.zeros(3), np.eye(3), dtype=dtype),
             cr.orthogonal(k, 3, (), dtype), cr.ball(k, 3, 2, (), dtype),
             cr.maxwell(k, (3,), dtype), cr.rademacher(k, (3,), dtype)]
    for x in draws:
        assert x.dtype == dtype and np.all(np.isfinite(x))
    mean32 = np.zeros(2, np.float32)
    assert cr.multivariate_normal(k, mean32, np.eye(2, dtype=np.float32)).dtype == np.float32
    assert cr.multivariate_normal(k, np.zeros(2, int), np.eye(2, dtype=int)).dtype == np.float64


@pytest.mark.parametrize('dtype', [np.int8, np.int32, np.int64])
def test_integer_samplers_keep_the_dtype(dtype):
    k = cr.key(41)
    assert cr.rademacher(k, (4,), dtype).dtype == dtype
    assert cr.poisson(k, 20.0, (4,), dtype).dtype == dtype
    assert cr.poisson(k, 3.0, (4,), np.uint16).dtype == np.uint16


def test_more_samplers_shapes():
    k = cr.key(42)
    for fn in (cr.exponential, cr.laplace, cr.logistic, cr.cauchy, cr.maxwell):
        assert fn(k).shape == () and fn(k).dtype == np.float64
        assert fn(k, (2, 3)).shape == (2, 3) and fn(k, 4).shape == (4,)
    assert cr.rademacher(k).shape == () and cr.rademacher(k).dtype == np.int64
    assert cr.poisson(k, 2.0).shape == () and cr.poisson(k, 2.0).dtype == np.int64
    for fn in (cr.poisson, cr.chisquare, cr.t, cr.loggamma):
        assert fn(k, np.full((2, 3), 2.0)).shape == (2, 3)
        assert fn(k, 2.0, (4,)).shape == (4,)
        assert fn(k, np.array([1.0, 2.0, 3.0]), (2, 3)).shape == (2, 3)
    assert cr.generalized_normal(k, 1.0, (2, 2)).shape == (2, 2)
    assert cr.multivariate_normal(k, np.zeros(3), np.eye(3)).shape == (3,)
    assert cr.orthogonal(k, 3).shape == (3, 3) and cr.orthogonal(k, 3, (2,)).shape == (2, 3, 3)
    assert cr.ball(k, 4).shape == (4,) and cr.ball(k, 2, 2, (5,)).shape == (5, 2)


def test_more_samplers_refuse_bad_input():
    k = cr.key(43)
    for bad in (-1.0, np.nan, np.inf, np.array([1.0, -2.0])):
        with pytest.raises(ValueError, match='poisson needs a finite lam >= 0'):
            cr.poisson(k, bad)
    with pytest.raises(TypeError, match='integer dtype'):
        cr.poisson(k, 1.0, (3,), np.float64)
    for fn in (cr.poisson, cr.chisquare, cr.t, cr.loggamma, cr.gamma):
        with pytest.raises(ValueError, match='do not broadcast to shape \\(2,\\)'):
            fn(k, np.ones(3), (2,))
    for fn, message in ((cr.chisquare, 'chisquare needs df > 0'), (cr.t, 't needs df > 0'),
                        (cr.loggamma, 'loggamma needs a > 0'),
                        (cr.generalized_normal, 'generalized_normal needs p > 0')):
        for bad in (0.0, -1.0, np.nan):
            with pytest.raises(ValueError, match=message):
                fn(k, bad, (3,))
    with pytest.raises(TypeError, match='floating-point dtype'):
        cr.exponential(k, (3,), np.int32)
    with pytest.raises(TypeError, match='signed integer or float dtype'):
        cr.rademacher(k, (3,), np.uint32)
    with pytest.raises(TypeError, match='signed integer or float dtype'):
        cr.rademacher(k, (3,), bool)
    with pytest.raises(ValueError, match='method must be one of'):
        cr.multivariate_normal(k, np.zeros(2), np.eye(2), method='qr')
    with pytest.raises(ValueError, match='mean of shape'):
        cr.multivariate_normal(k, 0.0, np.eye(2))
    with pytest.raises(ValueError, match='cov of shape \\(..., 2, 2\\)'):
        cr.multivariate_normal(k, np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match='do not broadcast to shape'):
        cr.multivariate_normal(k, np.zeros((3, 2)), np.eye(2), (4,))
    with pytest.raises(ValueError, match='do not broadcast to shape'):
        cr.multivariate_normal(k, np.zeros((3, 2)), np.ones((4, 2, 2)))
    for bad in (-1, 2.5, True, np.zeros(2)):
        with pytest.raises(TypeError, match='n must be a non-negative integer'):
            cr.orthogonal(k, bad)
        with pytest.raises(TypeError, match='d must be a non-negative integer'):
            cr.ball(k, bad)
    with pytest.raises(TypeError, match='m must be'):
        cr.orthogonal(k, 2, m=-2)
    with pytest.raises(ValueError, match='ball needs p > 0'):
        cr.ball(k, 2, 0.0)
    with pytest.raises(TypeError, match='p must be a number'):
        cr.ball(k, 2, np.ones(2))
    with pytest.raises(TypeError, match='shape \\(2,\\)'):
        cr.exponential(cr.split(k, 3), (2,))         # one key, as the other samplers


def test_key_data_and_wrap_key_data():
    """Keys are their raw uint32 words here: both return their argument itself."""
    k = cr.key(44)
    keys = cr.split(k, (2, 3))
    assert cr.key_data(k) is k and cr.key_data(keys) is keys
    assert cr.wrap_key_data(keys) is keys
    assert cr.wrap_key_data(np.array([0, 44], np.uint32), impl='threefry2x32').tolist() == [0, 44]
    assert np.array_equal(cr.normal(cr.wrap_key_data(cr.key_data(k)), (3,)), cr.normal(k, (3,)))
    with pytest.raises(TypeError, match='uint32 arrays of shape \\(..., 2\\)'):
        cr.key_data(np.zeros(2))
    with pytest.raises(TypeError, match='uint32 arrays of shape \\(..., 2\\)'):
        cr.wrap_key_data(np.zeros((3, 4), np.uint32))
    with pytest.raises(ValueError, match="impl='threefry2x32'"):
        cr.wrap_key_data(keys, impl='rbg')


def test_more_samplers_close_to_jax(jr):
    k, jk = cr.key(45), jr.PRNGKey(45)
    cases = [(name, np.float64, 1e-12) for name in
             ('exponential', 'laplace', 'logistic', 'cauchy', 'maxwell')]
    for name, dtype, tol in cases + [('exponential', np.float32, 1e-5)]:   # (each ~1 s in JAX)
        got, want = getattr(cr, name)(k, (500,), dtype), getattr(jr, name)(jk, (500,), dtype)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)
    assert _eq(cr.rademacher(k, (100,)), jr.rademacher(jk, (100,)))
    for method in ('cholesky', 'eigh'):
        np.testing.assert_allclose(cr.multivariate_normal(k, MEAN, COV, (50,), method=method),
                                   jr.multivariate_normal(jk, MEAN, COV, (50,), method=method),
                                   rtol=1e-12, atol=1e-12)
    for n, m in ((4, None), (2, 5)):
        np.testing.assert_allclose(cr.orthogonal(k, n, (3,), m=m),
                                   jr.orthogonal(jk, n, (3,), m=m), atol=1e-12)
    np.testing.assert_array_equal(cr.key_data(cr.split(k, 3)), jr.key_data(jr.split(jk, 3)))


def noisy_more(x, k):
    return np.sum(x * (cr.exponential(k, (5,)) + cr.t(k, 3.0, (5,)) + cr.poisson(k, 4.0, (5,))
                       + cr.multivariate_normal(k, np.zeros(5), np.eye(5) * 2.0)
                       + cr.orthogonal(k, 5)[0] + cr.rademacher(k, (5,))))


def test_more_draws_are_constants_to_grad():
    k = cr.key(46)
    x = np.linspace(-1.0, 1.0, 5)
    draws = (cr.exponential(k, (5,)) + cr.t(k, 3.0, (5,)) + cr.poisson(k, 4.0, (5,))
             + cr.multivariate_normal(k, np.zeros(5), np.eye(5) * 2.0)
             + cr.orthogonal(k, 5)[0] + cr.rademacher(k, (5,)))
    np.testing.assert_allclose(codax.grad(noisy_more)(x, k), draws, rtol=1e-15)
    _, tangent = codax.jvp(noisy_more, (x, k), (np.ones(5), 0.0))
    np.testing.assert_allclose(tangent, np.sum(draws), rtol=1e-12)


@pytest.mark.gpu
def test_more_samplers_on_cupy_match_numpy():
    cupy = pytest.importorskip('cupy')
    try:
        cupy.zeros(1)
    except Exception:
        pytest.skip('no usable CUDA GPU')
    k, gk = cr.key(47), cupy.asarray(cr.key(47))
    for name, draw in SAMPLERS.items():
        got = draw(gk)
        assert isinstance(got, cupy.ndarray), name
        np.testing.assert_allclose(got.get(), draw(k), rtol=1e-10, atol=1e-10, err_msg=name)
