"""Per-example Hessians through codax.lax's loops: vmap(hessian(f)) against a
Python loop of codax.hessian (whose values tests/test_lax.py checks against
finite differences)."""
import numpy as np
import pytest

import codax
from codax import lax


def reverse_scan_loss(x):
    # (reverse=True and pytree ys: the forward scan's path, and more)
    def body(c, xi):
        return c * np.cos(xi), (c * xi, np.sin(xi))
    c, (a, b) = lax.scan(body, x[0], x[1:], reverse=True)
    return c + np.sum(a * b)


def map_loss(x):
    return np.sum(lax.map(lambda v: v ** 3 + np.sin(v), x))


@pytest.mark.parametrize('f', [reverse_scan_loss, map_loss])
def test_vmap_hessian_matches_a_loop(f):
    xs = np.random.RandomState(0).randn(3, 4) * 0.5
    got = codax.vmap(codax.hessian(f))(xs)
    want = np.stack([codax.hessian(f)(x) for x in xs])
    assert got.shape == (3, 4, 4)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
