"""codax.random: Threefry known answers, agreement with jax.random, statistics,
shapes and dtypes, and draws as constants under codax's derivatives."""
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
        assert _eq(np.asarray(cr.bits(k)), jr.bits(jk, (), np.uint32))  # JAX: uint64 default with x64


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
    assert cr.bits(k, (2, 2)).dtype == np.uint32
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
