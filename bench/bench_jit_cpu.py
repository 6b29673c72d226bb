#!/usr/bin/env python
"""Kernel-level benchmark of the CPU back end: fused C kernels (built from
hand-written Kernel records, as transformer/fuse.py builds them) against plain
NumPy and `jax.jit` (x64), float64, in one process.

    python bench/bench_jit_cpu.py [--quick] [--n N] [--only TEXT ...] [--repeats R]

For steadier numbers run with
MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456 (NumPy's
10^6-element temporaries are otherwise mapped and faulted in on every call).
Each case is checked against NumPy first, and the kernel must not leave a call
to its NumPy fallback; times are medians over repeats, the implementations
interleaved so that drift hits them alike. The last cases work on the rows of
an (m, k) matrix: a bias (k,) added to it, which the kernel reads through
gathered blocks; softmax and layer norm, each the one row-wise kernel that
jit makes of them (the row's reductions and the element-wise work they feed,
pass after pass over the row while it is in cache); and, for comparison, the
softmax jit made before row-wise kernels: NumPy's row max, then a reduction
kernel for the sum of exp and an element-wise kernel for the quotient. Then
two spellings jit used to split or leave alone, each with the kernel that
codax.jit makes of it now (taken from jit itself, not built by hand): the
log-softmax rows of a softmax cross-entropy, which rebind the logits (a copy
in normal form, which used to end the group: two row-wise kernels, timed as
"before"), and a softmax that puts the reduced axis back with `[:, None]`
instead of keepdims=True (which used to fuse nothing: NumPy is "before").
Targets (issue 5): the kernel at least 3x faster than NumPy and within 1.5x
of JAX.
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

import codax  # noqa: E402
import runtime  # noqa: E402
from runtime.kernels import cpu  # noqa: E402
from transformer.kernels import Kernel, Reduction, RowReduction, Step, Value, c  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    jax.config.update('jax_enable_x64', True)
except ImportError:
    jax = None

F8 = np.dtype('float64')


def kernel(name, steps, result, reduction=None, inputs=('x',)):
    """A float64 Kernel of the array `inputs`, as the fusion pass would build
    it; `reduction`: (op, axis, keepdims, ndim) of the local `result`."""
    steps = tuple(Step(local, F8, expr) for local, expr in steps)
    out = Value(f'{result}_out', result, F8)
    values = tuple(Value(name, name, F8) for name in inputs)
    if reduction is not None:
        op, axis, keepdims, ndim = reduction
        return Kernel(name, values, (out,), steps,
                      reduction=Reduction(op, result, F8, axis, keepdims, ndim))
    return Kernel(name, values, (out,), steps, ((out.name, result),))


# The kernels themselves, at every size: short chains would otherwise run
# NumPy on few elements (SMALL_CALLS; bench_jit.py times that rule at work).
cpu.SMALL_CALLS = False


def build(record, fallback):
    """Evaluate the kernel's expression as generated code does; the time it took."""
    start = time.perf_counter()
    built = eval(c.expression(record, 'fallback'), {'rt': runtime, 'fallback': fallback})
    assert built is not fallback, 'no compiled kernel (see the warning above)'
    return built, time.perf_counter() - start


# ------------------------------------------------------------------- cases
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_jit import poly, poly_products  # noqa: E402  (the cases bench_jit.py times whole)
from bench_jit import tanh_sq as tanh_sq_sum, tanh_sq_grad as tanh_grad  # noqa: E402


def bias_tanh(x, b):                       # a dense layer's bias and activation
    return np.tanh(x + b)


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def vector(n, rng):
    return (rng.standard_normal(n),)


def matrix(n):
    """(rows, cols) of n elements: 1000 columns, or 2 rows when n is small."""
    cols = 1000 if n >= 2000 else max(1, n // 2)
    return n // cols, cols


def one_kernel(record):
    """The compiled kernel of `record`, with the NumPy function as its fallback."""
    def make(numpy_function):
        return build(record, numpy_function)
    return make


def layer_norm(x, g, b):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def rows(name, items, result, inputs=('x',)):
    """A float64 row-wise Kernel over the last axis of a matrix, as the
    fusion pass builds it: `items` are (local, expr, reads) steps and (local,
    op, value) reductions (with keepdims), `result` the local written."""
    steps = tuple(Step(local, F8, expr, what) if isinstance(what, tuple)
                  else RowReduction(local, expr, what, F8, True, 2)
                  for local, expr, what in items)
    out = Value(f'{result}_out', result, F8)
    return Kernel(name, tuple(Value(v, v, F8) for v in inputs), (out,), steps,
                  ((out.name, result),), trailing=1)


SOFTMAX_ROWS = rows('softmax_rows', [
    ('mx', 'max', 'x'), ('d', '(x - mx)', ('x', 'mx')), ('e', 'exp(d)', ('d',)),
    ('s', 'sum', 'e'), ('r', '(e / s)', ('e', 's'))], 'r')
LAYER_NORM_ROWS = rows('layer_norm_rows', [
    ('mu', 'mean', 'x'), ('v', 'var', 'x'),
    ('y', '((x - mu) / sqrt(v + 1e-05) * g + b)', ('x', 'mu', 'v', 'g', 'b'))], 'y',
    inputs=('x', 'g', 'b'))


def log_softmax(x):                        # ml_softmax_xent's rows; `x = ...` is a copy
    x = x - np.max(x, axis=-1, keepdims=True)
    return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


def softmax_index(x):                      # keepdims=False, the axis put back by [:, None]
    e = np.exp(x - np.max(x, axis=1)[:, None])
    return e / np.sum(e, axis=1)[:, None]


def log_softmax_index(x):                  # the log of the reduced sum put back by [:, None]
    m = np.max(x, axis=1)
    s = np.sum(np.exp(x - m[:, None]), axis=1)
    return x - m[:, None] - np.log(s)[:, None]


def layer_norm_index(x, g, b):             # mean and variance put back by [..., None]
    mu = np.mean(x, axis=-1)[..., None]
    var = np.var(x, axis=-1)[..., None]
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def jitted(function, *shapes):
    """The one kernel codax.jit makes of `function` for float64 arguments of
    these shapes' ranks (a matrix by default), with the NumPy function as its
    fallback."""
    def make(numpy_function):
        specs = [codax.ShapeDtypeStruct(s, F8) for s in shapes or [(2, 3)]]
        (record,) = codax.jit(function).kernels(*specs)
        return build(record, numpy_function)
    return make


def log_softmax_kernels(_):
    """What jit made of log_softmax while a copy ended a group: a row-wise
    kernel for the shifted logits, written to memory, then another for the
    log-sum-exp and the difference, which reads them back."""
    shift, t0 = build(rows('log_softmax_k0', [('mx', 'max', 'x'), ('d', '(x - mx)', ('x', 'mx'))],
                           'd'), lambda x: x - np.max(x, axis=-1, keepdims=True))
    rest, t1 = build(rows('log_softmax_k1', [
        ('e', 'exp(d)', ('d',)), ('s', 'sum', 'e'), ('l', 'log(s)', ('s',)),
        ('r', '(d - l)', ('d', 'l'))], 'r', inputs=('d',)),
        lambda d: d - np.log(np.sum(np.exp(d), axis=-1, keepdims=True)))

    def run(x):
        return rest(shift(x))
    run.fallbacks = lambda: shift.fallbacks + rest.fallbacks
    return run, t0 + t1


def softmax_kernels(_):
    """What jit made of softmax before row-wise kernels: NumPy's max (a
    reduction of an input fused nothing), then sum(exp(x - mx)) over rows,
    then exp(x - mx) / s; both read the (rows, 1) operands through their
    gathered blocks."""
    def numpy_sum(x, mx):
        return np.sum(np.exp(x - mx), axis=-1, keepdims=True)
    total, t0 = build(kernel('softmax_k0', [('v', 'x - mx'), ('e', 'exp(v)')], 'e',
                             reduction=('sum', (1,), True, 2), inputs=('x', 'mx')), numpy_sum)
    ratio, t1 = build(kernel('softmax_k1', [('v', 'x - mx'), ('e', 'exp(v)'), ('r', 'e / s')],
                             'r', inputs=('x', 'mx', 's')), lambda x, mx, s: np.exp(x - mx) / s)

    def run(x):
        mx = np.max(x, axis=-1, keepdims=True)
        return ratio(x, mx, total(x, mx))
    run.fallbacks = lambda: total.fallbacks + ratio.fallbacks
    return run, t0 + t1


CASES = [
    ('grad sum(tanh(x)**2)', tanh_grad, vector,
     one_kernel(kernel('tanh_grad', [('t', 'tanh(x)'), ('u', '1.0 - t * t'),
                                     ('g', '2.0 * t * u')], 'g')),
     lambda: jax.grad(lambda x: jnp.sum(jnp.tanh(x) ** 2))),
    ('polynomial chain', poly, vector,
     one_kernel(kernel('poly', [('a', '3.0 * (x * x * x)'), ('b', '2.0 * (x * x)'),
                                ('e', '1.5 * sin(x) * exp(-x)'), ('p', 'a + b - 5.0 * x + e')],
                       'p')),
     lambda: lambda x: 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1.5 * jnp.sin(x) * jnp.exp(-x)),
    ('sum(tanh(x)**2)', tanh_sq_sum, vector,
     one_kernel(kernel('tanh_sq_sum', [('t', 'tanh(x)'), ('s', 't * t')], 's',
                       reduction=('sum', None, False, 1))),
     lambda: lambda x: jnp.sum(jnp.tanh(x) ** 2)),
    ('bias+tanh (m,k)+(k,)', bias_tanh,
     lambda n, rng: (rng.standard_normal(matrix(n)), rng.standard_normal(matrix(n)[1])),
     one_kernel(kernel('bias_tanh', [('y', 'tanh(x + b)')], 'y', inputs=('x', 'b'))),
     lambda: lambda x, b: jnp.tanh(x + b)),
    ('softmax rows (m,k)', softmax, lambda n, rng: (rng.standard_normal(matrix(n)),),
     one_kernel(SOFTMAX_ROWS), lambda: jax_softmax),
    ('layer norm rows (m,k)', layer_norm,
     lambda n, rng: (rng.standard_normal(matrix(n)), rng.standard_normal(matrix(n)[1]),
                     rng.standard_normal(matrix(n)[1])),
     one_kernel(LAYER_NORM_ROWS),
     lambda: lambda x, g, b: (x - jnp.mean(x, axis=-1, keepdims=True))
     / jnp.sqrt(jnp.var(x, axis=-1, keepdims=True) + 1e-5) * g + b),
    ('softmax, 3 calls (before)', softmax, lambda n, rng: (rng.standard_normal(matrix(n)),),
     softmax_kernels, lambda: jax_softmax),
    ('log-softmax rows (xent)', log_softmax, lambda n, rng: (rng.standard_normal(matrix(n)),),
     jitted(log_softmax), lambda: jax_log_softmax),
    ('log-softmax, 2 (before)', log_softmax, lambda n, rng: (rng.standard_normal(matrix(n)),),
     log_softmax_kernels, lambda: jax_log_softmax),
    ('softmax [:, None] rows', softmax_index, lambda n, rng: (rng.standard_normal(matrix(n)),),
     jitted(softmax_index), lambda: jax_softmax),
    ('log-softmax log(s)[:, None]', log_softmax_index,
     lambda n, rng: (rng.standard_normal(matrix(n)),), jitted(log_softmax_index),
     lambda: jax_log_softmax),
    ('layer norm [..., None] rows', layer_norm_index,
     lambda n, rng: (rng.standard_normal(matrix(n)), rng.standard_normal(matrix(n)[1]),
                     rng.standard_normal(matrix(n)[1])),
     jitted(layer_norm_index, (2, 3), (3,), (3,)), lambda: jax_layer_norm),
]


def jax_softmax(x):
    e = jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def jax_layer_norm(x, g, b):
    return (x - jnp.mean(x, axis=-1, keepdims=True)) \
        / jnp.sqrt(jnp.var(x, axis=-1, keepdims=True) + 1e-5) * g + b


def jax_log_softmax(x):
    x = x - jnp.max(x, axis=-1, keepdims=True)
    return x - jnp.log(jnp.sum(jnp.exp(x), axis=-1, keepdims=True))


# ------------------------------------------------------------------ timing
def timings(functions, args, repeats, budget):
    """Median seconds a call of each function, interleaved over `repeats`."""
    loops = {}
    for name, f in functions.items():
        f(*args)
        start = time.perf_counter()
        f(*args)
        loops[name] = max(1, int(budget / max(time.perf_counter() - start, 1e-7)))
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                f(*args)
            samples[name].append((time.perf_counter() - start) / loops[name])
    return {name: statistics.median(s) for name, s in samples.items()}


def _fallbacks(built):
    return built.fallbacks() if callable(built.fallbacks) else built.fallbacks


def implementations(numpy_function, make_kernel, jax_function, args):
    built, seconds = make_kernel(numpy_function)
    np.testing.assert_allclose(built(*args), numpy_function(*args), rtol=1e-12, atol=1e-12)
    assert _fallbacks(built) == 0, 'the kernel left the call to NumPy'
    found = {'numpy': numpy_function, 'kernel': built}
    if numpy_function is poly:
        found['numpy x*x*x'] = poly_products
    if jax is not None:
        jitted = jax.jit(jax_function())
        on_device = [jnp.asarray(a) for a in args]
        np.testing.assert_allclose(np.asarray(jitted(*on_device)), numpy_function(*args),
                                   rtol=1e-12, atol=1e-12)
        found['jax'] = lambda *_: jitted(*on_device).block_until_ready()
        found['jax numpy in/out'] = lambda *a: np.asarray(jitted(*a))
    return found, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='shorter loops, 3 repeats')
    parser.add_argument('--n', type=int, default=10 ** 6, help='elements (default 10^6)')
    parser.add_argument('--only', nargs='+', metavar='TEXT',
                        help='only the cases whose title contains one of these')
    parser.add_argument('--repeats', type=int, help='rounds to take the median of')
    args = parser.parse_args()
    repeats, budget = (3, 0.05) if args.quick else (9, 0.2)
    repeats = args.repeats or repeats
    rng = np.random.default_rng(0)
    rows = []
    for title, numpy_function, make_args, make_kernel, jax_function in CASES:
        if args.only and not any(text in title for text in args.only):
            continue
        for n in (args.n, 10):
            inputs = make_args(n, rng)
            found, seconds = implementations(numpy_function, make_kernel, jax_function, inputs)
            times = timings(found, inputs, repeats, budget / (100 if n == 10 else 1))
            assert _fallbacks(found['kernel']) == 0, 'the kernel left a call to NumPy'
            rows.append((title, n, times, seconds))
    print(f'\nCPU kernels, float64, median of {repeats} (ratio: NumPy time / kernel time; '
          f'jax/kernel: JAX time / kernel time, >1 means the kernel is faster)')
    print(f'{"case":26s} {"n":>8s} {"numpy":>10s} {"kernel":>10s} {"jax":>10s} '
          f'{"numpy/kernel":>13s} {"jax/kernel":>11s}  others')
    for title, n, times, seconds in rows:
        unit, scale = ('ms', 1e3) if n > 1000 else ('us', 1e6)
        jax_time = times.get('jax', float('nan'))
        others = ', '.join(f'{k} {v * scale:.2f}{unit}' for k, v in times.items()
                           if k not in ('numpy', 'kernel', 'jax'))
        print(f'{title:26s} {n:8d} {times["numpy"] * scale:8.3f}{unit} '
              f'{times["kernel"] * scale:8.3f}{unit} {jax_time * scale:8.3f}{unit} '
              f'{times["numpy"] / times["kernel"]:12.2f}x {jax_time / times["kernel"]:10.2f}x  '
              f'{others}')
    print('\nbuild (compile, or load from the disk cache) of each kernel: ' + ', '.join(
        f'{title} {seconds * 1e3:.0f} ms' for title, n, _, seconds in rows if n != 10))


if __name__ == '__main__':
    main()
