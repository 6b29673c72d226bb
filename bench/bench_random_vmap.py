#!/usr/bin/env python
"""Benchmark codax.random under vmap: a batch of keys against a Python loop over the keys.

    python bench/bench_random_vmap.py [B]

Each case is a function of one key (and shared arrays), mapped over B keys
(default 1000) with codax.vmap, or over a grid of B keys with vmap(vmap),
against a Python loop over the keys; both in this one process, the results
checked to be equal (bit for bit, or to 1e-12 for gradients) before timing.
Times are the best of 7 repeats. See docs/performance.md.
"""
import sys
import timeit

import numpy as np

import codax
from codax import random

W = np.arange(30.0).reshape(10, 3) / 30.0


def draw(k):                                    # draws and element-wise arithmetic
    return random.normal(k, (3,)) * 2.0 + 1.0


def projected(k, W):                            # draws in a matrix product and a sum
    e = random.normal(k, (3,))
    return np.tanh(W @ e) + np.sum(e ** 2)


def tanh_loss(w, k):                            # draws in a loss: vmap(grad) per key
    e = random.normal(k, w.shape)
    return np.sum(np.tanh(w * e) @ w)


def mean_tanh_loss(w, keys):                    # grad of a vmapped Monte Carlo mean
    return np.mean(codax.vmap(tanh_loss, in_axes=(None, 0))(w, keys))


def cases(size):
    keys = random.split(random.key(0), size)
    grid = random.split(random.key(1), (size // 40, 40))
    w = np.linspace(-1.0, 1.0, 3)
    g = codax.grad(tanh_loss)
    return [
        ('vmap(draw)', lambda: codax.vmap(draw)(keys),
         lambda: np.stack([draw(k) for k in keys])),
        ('vmap(projected)', lambda: codax.vmap(projected, in_axes=(0, None))(keys, W),
         lambda: np.stack([projected(k, W) for k in keys])),
        ('vmap(grad(tanh_loss))', lambda: codax.vmap(g, in_axes=(None, 0))(w, keys),
         lambda: np.stack([g(w, k) for k in keys])),
        ('vmap(vmap(draw)), grid of keys', lambda: codax.vmap(codax.vmap(draw))(grid),
         lambda: np.stack([np.stack([draw(k) for k in row]) for row in grid])),
        ('grad(mean of vmap(tanh_loss))', lambda: codax.grad(mean_tanh_loss)(w, keys),
         lambda: np.mean([g(w, k) for k in keys], axis=0)),
    ]


def best(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=7)) / number


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(f'{size} keys, NumPy {np.__version__}')
    print(f'{"case":34s} {"vmap":>10s} {"loop":>10s} {"loop / vmap":>12s}')
    for name, batched, loop in cases(size):
        try:
            np.testing.assert_allclose(batched(), loop(), rtol=1e-12, atol=0)
        except Exception as exc:                # (before issue 6: grad of a per-example loop)
            print(f'{name:34s} {type(exc).__name__}: {str(exc).splitlines()[0][:60]}')
            continue
        tv, tl = best(batched, 20), best(loop, 2)
        print(f'{name:34s} {tv * 1e3:8.2f} ms {tl * 1e3:8.1f} ms {tl / tv:11.0f}x')


if __name__ == '__main__':
    main()
