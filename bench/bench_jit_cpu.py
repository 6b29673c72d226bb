#!/usr/bin/env python
"""Kernel-level benchmark of the CPU back end: fused C kernels (built from
hand-written Kernel records, as transformer/fuse.py builds them) against plain
NumPy and `jax.jit` (x64), float64, in one process.

    python bench/bench_jit_cpu.py [--quick] [--n N]

For steadier numbers run with
MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456 (NumPy's
10^6-element temporaries are otherwise mapped and faulted in on every call).
Each case is checked against NumPy first; times are medians over repeats, the
implementations interleaved so that drift hits them alike. Targets (issue 5):
the kernel at least 3x faster than NumPy and within 1.5x of JAX.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import runtime  # noqa: E402
from transformer.kernels import Kernel, Reduction, Step, Value, c  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    jax.config.update('jax_enable_x64', True)
except ImportError:
    jax = None

F8 = np.dtype('float64')


def kernel(name, steps, result, reduction=None):
    """A Kernel of one float64 array `x`, as the fusion pass would build it."""
    steps = tuple(Step(local, F8, expr) for local, expr in steps)
    out = Value(f'{result}_out', result, F8)
    if reduction is not None:
        return Kernel(name, (Value('x', 'x', F8),), (out,), steps,
                      reduction=Reduction(reduction, result, F8, None, False, 1))
    return Kernel(name, (Value('x', 'x', F8),), (out,), steps, ((out.name, result),))


def build(record, fallback):
    """Evaluate the kernel's expression as generated code does; the time it took."""
    start = time.perf_counter()
    built = eval(c.expression(record, 'fallback'), {'rt': runtime, 'fallback': fallback})
    assert built is not fallback, 'no compiled kernel (see the warning above)'
    return built, time.perf_counter() - start


# ------------------------------------------------------------------- cases
def tanh_grad(x):                          # d/dx sum(tanh(x)**2), as NumPy
    t = np.tanh(x)
    return 2.0 * t * (1.0 - t * t)


def poly(x):
    return 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1.5 * np.sin(x) * np.exp(-x)


def poly_products(x):                      # x**3 as products: NumPy's pow is slow for x < 0
    return 3 * (x * x * x) + 2 * (x * x) - 5 * x + 1.5 * np.sin(x) * np.exp(-x)


def tanh_sq_sum(x):
    return np.sum(np.tanh(x) ** 2)


CASES = [
    ('grad sum(tanh(x)**2)', tanh_grad,
     kernel('tanh_grad', [('t', 'tanh(x)'), ('u', '1.0 - t * t'), ('g', '2.0 * t * u')], 'g'),
     lambda: jax.grad(lambda x: jnp.sum(jnp.tanh(x) ** 2))),
    ('polynomial chain', poly,
     kernel('poly', [('a', '3.0 * (x * x * x)'), ('b', '2.0 * (x * x)'),
                     ('e', '1.5 * sin(x) * exp(-x)'), ('p', 'a + b - 5.0 * x + e')], 'p'),
     lambda: lambda x: 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1.5 * jnp.sin(x) * jnp.exp(-x)),
    ('sum(tanh(x)**2)', tanh_sq_sum,
     kernel('tanh_sq_sum', [('t', 'tanh(x)'), ('s', 't * t')], 's', reduction='sum'),
     lambda: lambda x: jnp.sum(jnp.tanh(x) ** 2)),
]


# ------------------------------------------------------------------ timing
def timings(functions, x, repeats, budget):
    """Median seconds a call of each function, interleaved over `repeats`."""
    loops = {}
    for name, f in functions.items():
        f(x)
        start = time.perf_counter()
        f(x)
        loops[name] = max(1, int(budget / max(time.perf_counter() - start, 1e-7)))
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                f(x)
            samples[name].append((time.perf_counter() - start) / loops[name])
    return {name: statistics.median(s) for name, s in samples.items()}


def implementations(numpy_function, record, jax_function, x):
    built, seconds = build(record, numpy_function)
    np.testing.assert_allclose(built(x), numpy_function(x), rtol=1e-12, atol=1e-12)
    found = {'numpy': numpy_function, 'kernel': built}
    if numpy_function is poly:
        found['numpy x*x*x'] = poly_products
    if jax is not None:
        jitted = jax.jit(jax_function())
        xj = jnp.asarray(x)
        np.testing.assert_allclose(np.asarray(jitted(xj)), numpy_function(x),
                                   rtol=1e-12, atol=1e-12)
        found['jax'] = lambda _: jitted(xj).block_until_ready()
        found['jax numpy in/out'] = lambda x: np.asarray(jitted(x))
    return found, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='shorter loops, 3 repeats')
    parser.add_argument('--n', type=int, default=10 ** 6, help='elements (default 10^6)')
    args = parser.parse_args()
    repeats, budget = (3, 0.05) if args.quick else (9, 0.2)
    rng = np.random.default_rng(0)
    rows = []
    for title, numpy_function, record, jax_function in CASES:
        for n in (args.n, 10):
            x = rng.standard_normal(n)
            found, seconds = implementations(numpy_function, record, jax_function, x)
            times = timings(found, x, repeats, budget / (100 if n == 10 else 1))
            rows.append((title, n, times, seconds))
    print(f'\nCPU kernels, float64, median of {repeats} (ratio: NumPy time / kernel time; '
          f'jax/kernel: JAX time / kernel time, >1 means the kernel is faster)')
    print(f'{"case":24s} {"n":>8s} {"numpy":>10s} {"kernel":>10s} {"jax":>10s} '
          f'{"numpy/kernel":>13s} {"jax/kernel":>11s}  others')
    for title, n, times, seconds in rows:
        unit, scale = ('ms', 1e3) if n > 1000 else ('us', 1e6)
        jax_time = times.get('jax', float('nan'))
        others = ', '.join(f'{k} {v * scale:.2f}{unit}' for k, v in times.items()
                           if k not in ('numpy', 'kernel', 'jax'))
        print(f'{title:24s} {n:8d} {times["numpy"] * scale:8.3f}{unit} '
              f'{times["kernel"] * scale:8.3f}{unit} {jax_time * scale:8.3f}{unit} '
              f'{times["numpy"] / times["kernel"]:12.2f}x {jax_time / times["kernel"]:10.2f}x  '
              f'{others}')
    print('\nbuild (compile, or load from the disk cache) of each kernel: ' + ', '.join(
        f'{title} {seconds * 1e3:.0f} ms' for title, n, _, seconds in rows if n != 10))


if __name__ == '__main__':
    main()
