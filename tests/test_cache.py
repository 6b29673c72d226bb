"""Specialization and caching: generated once per signature, keyed by code,
bounded, and safe to use from several threads."""
import threading

import numpy as np
import pytest

import codax
from codax import api, cache


@pytest.fixture
def generations(monkeypatch):
    """Count how often the reverse-mode compiler runs."""
    count = [0]
    original = api.compile_reverse

    def counting(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)
    monkeypatch.setattr(api, 'compile_reverse', counting)
    return count


def cubic(x):
    return np.sum(x ** 3 - x)


def make_scaled(scale):
    def scaled(x):
        return np.sum(np.sin(x) * scale)
    return scaled


def test_one_generation_per_signature(generations):
    g = codax.grad(cubic)
    x = np.array([0.5, -1.0])
    g(x)
    first = generations[0]
    g(x)
    g(np.array([1.0, 2.0, 3.0]))            # another shape: same code serves it
    codax.grad(cubic)(x)                     # a new grad object: the global cache
    assert generations[0] == first
    g(x.astype(np.float32))                  # a new dtype is a new signature
    assert generations[0] == first + 1


def test_closures_recreated_in_a_loop_share_generated_code(generations):
    x = np.array([0.2, 0.4])
    before = generations[0]
    for scale in (1.0, 2.0, 3.0, 4.0):
        np.testing.assert_allclose(codax.grad(make_scaled(scale))(x), scale * np.cos(x))
    assert generations[0] - before <= 1      # at most the first one generates


def test_the_cache_is_bounded():
    small = cache.Cache(capacity=3)
    for k in range(10):
        small.put(k, k)
    assert len(small) == 3 and small.get(9) == 9 and small.get(0) is None


def test_threads_share_the_cache_safely():
    x = np.linspace(-1.0, 1.0, 7)
    results, errors = [], []

    def work(scale):
        try:
            for _ in range(20):
                results.append((scale, codax.grad(make_scaled(scale))(x)))
        except Exception as exc:                 # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(float(s),)) for s in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 160
    for scale, grad in results:
        np.testing.assert_allclose(grad, scale * np.cos(x))


class Scaled:
    """A registered node: its children's kinds are part of the signature, as
    a dict's are (JAX retraces per tree structure and leaf dtype too)."""

    def __init__(self, w, scale):
        self.w, self.scale = w, scale


codax.tree_util.register_pytree_node(Scaled, lambda p: ((p.w, p.scale), None),
                                     lambda aux, children: Scaled(*children))


def scaled_dot(p, x):
    return np.sum(p.w * x) * p.scale


def test_registered_nodes_are_keyed_by_their_children(generations):
    g = codax.grad(scaled_dot)
    x = np.array([1.0, 2.0, 3.0])
    g(Scaled(np.ones(3), 2.0), x)
    before = generations[0]
    g(Scaled(np.ones(3), 5.0), x)                           # same kinds: reused
    assert generations[0] == before
    r = g(Scaled(np.ones(3, dtype=np.float32), np.float32(2.0)), x)
    assert generations[0] == before + 1                     # new child kinds: new code
    assert r.w.dtype == np.float32 and isinstance(r.scale, np.float32)
    np.testing.assert_allclose(r.w, 2.0 * x)
    np.testing.assert_allclose(r.scale, np.sum(x))
