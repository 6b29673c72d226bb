#!/usr/bin/env python
"""GPU benchmarks of codax.jit against unfused CuPy, cupy.fuse and JAX jit.

    python bench/bench_gpu.py [--quick] [--check] [--json PATH] [--log2-size N]

Needs a CUDA GPU with CuPy (JAX optional); bench/gpu.sh runs the GPU tests
first, then this. float32 throughout: element-wise cases on 2^26 elements,
row-wise ones on 8192x4096, with enough input sets rotated that no call finds
its data in L2, each timed with CUDA events after a warm-up (median of
repeats). Cases: device-to-device copy (the roof), an 8-op element-wise chain,
sum(x*y), row softmax and layer norm (one row-wise RawKernel each under
codax.jit: a block of threads a row), and one MLP gradient jit(grad(loss)). Every
result is first checked against unfused CuPy. The table, printed last, gives
each time, its effective bandwidth (inputs read once, outputs written once),
that as a percentage of the copy's, and codax's speed-up over each
implementation; then the targets of issue 5. JAX's float32 matrix products
run at 'highest' precision, as CuPy's (no TF32).
"""
import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
import types
from collections import namedtuple
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')    # leave memory to CuPy

ERRORS = []         # (what, traceback tail)
CODAX = 'codax.jit'


def record_error(what, tail=None):
    tail = tail or '\n'.join(traceback.format_exc().strip().splitlines()[-12:])
    ERRORS.append((what, tail))
    print(f'\n!!!!! {what} FAILED !!!!!\n{tail}\n', file=sys.stderr)


# ------------------------------------------------- the functions, plain NumPy
def chain8(x, y):
    """Eight element-wise operations, two inputs, one output."""
    t = x * y + 0.5
    t = np.tanh(t) * x
    t = t - np.exp(-y)
    return t * 0.25


def sum_xy(x, y):
    return np.sum(x * y)


def softmax(x):
    m = np.max(x, axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=1, keepdims=True)


def layer_norm(x, gamma, beta):
    mu = np.mean(x, axis=1, keepdims=True)
    d = x - mu
    var = np.mean(d * d, axis=1, keepdims=True)
    return d / np.sqrt(var + 1e-5) * gamma + beta


def mlp_loss(params, x, y):
    h = np.tanh(x @ params['W1'] + params['b1'])
    logits = h @ params['W2'] + params['b2']
    m = np.max(logits, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (logits - lse), axis=1))


def rebind(f, module):
    """f with `np` bound to `module` (cupy, jax.numpy)."""
    return types.FunctionType(f.__code__, {**f.__globals__, 'np': module}, f.__name__,
                              f.__defaults__, f.__closure__)


# ------------------------------------------------------------------ the cases
# Inputs: a function making one set of CuPy arrays (several sets get rotated);
# nbytes: the compulsory bytes of a call (None: not bandwidth-bound); impls:
# name -> (function, whether it takes JAX arrays), the reference first.
Case = namedtuple('Case', 'name make_inputs nbytes impls')


def element_cases(cp, codax, jax, n, rows, cols):
    def normal(*shape):
        return cp.random.standard_normal(shape, dtype=cp.float32)

    def uniform(*shape):        # a sum of positive terms: float32 rounding stays relative
        return cp.random.random(shape, dtype=cp.float32)

    f4 = 4
    return [
        Case(f'chain8 2^{int(math.log2(n))}', lambda: (normal(n), normal(n)), 3 * n * f4,
             standard_impls(cp, codax, jax, chain8, fuse=True)),
        Case(f'sum(x*y) 2^{int(math.log2(n))}', lambda: (uniform(n), uniform(n)), 2 * n * f4,
             standard_impls(cp, codax, jax, sum_xy, fuse=True)),
        Case(f'softmax {rows}x{cols}', lambda: (normal(rows, cols),), 2 * rows * cols * f4,
             standard_impls(cp, codax, jax, softmax, fuse=False)),
        Case(f'layer norm {rows}x{cols}', lambda: (normal(rows, cols), normal(cols), normal(cols)),
             (2 * rows * cols + 2 * cols) * f4,
             standard_impls(cp, codax, jax, layer_norm, fuse=False)),
    ]


def standard_impls(cp, codax, jax, f, fuse):
    impls = {'cupy': (rebind(f, cp), False)}
    if codax is not None:
        impls[CODAX] = (codax.jit(f), False)
    if fuse:
        impls['cupy.fuse'] = (cp.fuse(rebind(f, cp)), False)
    if jax is not None:
        impls['jax.jit'] = (jax.jit(rebind(f, jax.numpy)), True)
    return impls


def mlp_case(cp, codax, jax, batch, d, h, c):
    def inputs():
        rng = cp.random
        params = {'W1': rng.standard_normal((d, h), dtype=cp.float32) / np.float32(math.sqrt(d)),
                  'b1': cp.zeros(h, cp.float32),
                  'W2': rng.standard_normal((h, c), dtype=cp.float32) / np.float32(math.sqrt(h)),
                  'b2': cp.zeros(c, cp.float32)}
        y = cp.eye(c, dtype=cp.float32)[rng.randint(0, c, batch)]
        return params, rng.standard_normal((batch, d), dtype=cp.float32), y

    impls = {}
    if codax is not None:
        impls['cupy'] = (codax.grad(mlp_loss), False)      # codax's unfused CuPy code
        impls[CODAX] = (codax.jit(codax.grad(mlp_loss)), False)
    if jax is not None:
        impls['jax.jit'] = (jax.jit(jax.grad(rebind(mlp_loss, jax.numpy))), True)
    return Case(f'MLP grad {batch}x{d}-{h}-{c}', inputs, None, impls)


# ---------------------------------------------------------- running and timing
def to_jax(jax, value):
    """The same data as a JAX array (zero-copy through DLPack where it works)."""
    if isinstance(value, dict):
        return {k: to_jax(jax, v) for k, v in value.items()}
    try:
        return jax.dlpack.from_dlpack(value)
    except Exception:
        return jax.device_put(value.get())


def to_cupy(cp, value):
    if isinstance(value, dict):
        return {k: to_cupy(cp, v) for k, v in value.items()}
    try:
        return cp.asarray(value)
    except Exception:
        return cp.asarray(np.asarray(value))


def agrees(cp, got, want):
    if isinstance(want, dict):
        return all(agrees(cp, got[k], want[k]) for k in want)
    got = to_cupy(cp, got)
    return got.shape == want.shape and bool(cp.allclose(got, want, rtol=2e-3, atol=1e-4))


def device_seconds(cp, call, arg_sets, finish, target, repeats):
    """Seconds a call: CUDA events around a loop cycling through arg_sets,
    sized to ~target seconds, after a warm-up call on every set."""
    for args in arg_sets:
        finish(call(*args))
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    finish(call(*arg_sets[0]))
    cp.cuda.Device().synchronize()
    iters = max(len(arg_sets), round(target / max(time.perf_counter() - t0, 1e-6)))
    start, end = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(repeats):
        cp.cuda.Device().synchronize()
        start.record()
        for k in range(iters):
            out = call(*arg_sets[k % len(arg_sets)])
        finish(out)                     # JAX runs on its own stream
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3 / iters)
    return statistics.median(times)


def rotation(cp, case, budget_bytes):
    """Enough input sets that the data cycled through is twice L2 (at least two)."""
    first = case.make_inputs()
    size = sum(a.nbytes for a in cp_leaves(first))
    count = max(2, math.ceil(budget_bytes / max(size, 1)))
    return [first] + [case.make_inputs() for _ in range(count - 1)]


def cp_leaves(args):
    for a in args:
        yield from (a.values() if isinstance(a, dict) else (a,))


def run_case(cp, jax, case, budget_bytes, target, repeats, check_only):
    """{impl: seconds or None (check only)}, every impl checked against 'cupy' first."""
    sets = rotation(cp, case, budget_bytes) if not check_only else [case.make_inputs()]
    jax_sets = [tuple(to_jax(jax, a) for a in args) for args in sets] if jax else None
    reference = None
    rows = {}
    for name, (fn, wants_jax) in case.impls.items():
        arg_sets = jax_sets if wants_jax else sets
        finish = jax.block_until_ready if wants_jax else (lambda out: out)
        try:
            got = finish(fn(*arg_sets[0]))
            reference = got if reference is None else reference
            if not agrees(cp, got, to_cupy(cp, reference)):
                record_error(f'{case.name} / {name}', 'result differs from the reference '
                             f'({next(iter(case.impls))})')
                continue
            rows[name] = None if check_only else device_seconds(
                cp, fn, arg_sets, finish, target, repeats)
        except Exception:
            record_error(f'{case.name} / {name}')
    print(f'  {case.name}: ' + ', '.join(rows))
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def copy_seconds(cp, n, budget_bytes, target, repeats):
    """Device-to-device memcpy of n float32, rotated through pairs of buffers."""
    pairs = [(cp.empty(n, cp.float32), cp.empty(n, cp.float32))
             for _ in range(max(2, math.ceil(budget_bytes / (8 * n))))]

    def copy(dst, src):
        dst.data.copy_from_device_async(src.data, src.nbytes)
        return dst
    seconds = device_seconds(cp, copy, pairs, lambda out: out, target, repeats)
    del pairs
    cp.get_default_memory_pool().free_all_blocks()
    return seconds


# ----------------------------------------------------------- latency (codax)
FRESH = '''
import numpy as np


def fresh_{tag}(x, y):
    t = x * y + 0.5
    t = np.tanh(t) * x
    t = t - np.exp(-y)
    return t * 0.25
'''


def fresh_function(folder, tag):
    """A never-seen function (new code object and kernel name: nothing cached)."""
    path = Path(folder) / f'fresh_{tag}.py'
    path.write_text(FRESH.format(tag=tag))
    namespace = {}
    exec(compile(path.read_text(), str(path), 'exec'), namespace)
    return namespace[f'fresh_{tag}']


def latencies(cp, codax, jax, repeats):
    """First call of codax.jit (generation plus kernel compile, ms, median of
    `repeats` fresh functions) and per-call latency at 1024 elements (µs)."""
    x, y = cp.random.standard_normal(1024, dtype=cp.float32), cp.random.standard_normal(
        1024, dtype=cp.float32)
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        firsts = []
        for i in range(repeats):
            f = codax.jit(fresh_function(folder, f'{os.getpid()}_{i}'))
            t0 = time.perf_counter()
            f(x, y)
            cp.cuda.Device().synchronize()
            firsts.append(time.perf_counter() - t0)
        out['first call codax.jit (ms)'] = 1e3 * statistics.median(firsts)
    def sync(out):
        cp.cuda.Device().synchronize()
    calls = {CODAX: (codax.jit(chain8), (x, y), sync),
             'cupy': (rebind(chain8, cp), (x, y), sync),
             'cupy.fuse': (cp.fuse(rebind(chain8, cp)), (x, y), sync)}
    if jax is not None:
        calls['jax.jit'] = (jax.jit(rebind(chain8, jax.numpy)),
                            (to_jax(jax, x), to_jax(jax, y)), jax.block_until_ready)
    for name, (fn, args, finish) in calls.items():
        out[f'cached call {name}, 1024 elements (µs)'] = 1e6 * wall_seconds(fn, args, finish)
    return out


def wall_seconds(fn, args, finish, calls=2000):
    """Seconds a call by the wall clock, the device finished at the end."""
    for _ in range(10):
        finish(fn(*args))
    t0 = time.perf_counter()
    for _ in range(calls):
        out = fn(*args)
    finish(out)
    return (time.perf_counter() - t0) / calls


# ------------------------------------------------------------------- reporting
def table(results, copy):
    """Rows of (case, impl, seconds, GB/s, % of copy, codax speed-up)."""
    rows = [('copy D2D', 'cupy memcpy', copy['seconds'], copy['gbps'], 100.0, None)]
    for case, (nbytes, times) in results.items():
        base = times.get(CODAX)
        for impl, seconds in times.items():
            gbps = nbytes / seconds / 1e9 if nbytes else None
            rows.append((case, impl, seconds, gbps, gbps and 100 * gbps / copy['gbps'],
                         base and seconds / base))
    return rows


def print_table(rows):
    print(f"\n{'case':<26} {'impl':<12} {'time':>10} {'GB/s':>8} {'% copy':>7} "
          f"{'codax speed-up':>15}")
    for case, impl, seconds, gbps, pct, speedup in rows:
        print(f'{case:<26} {impl:<12} {1e3 * seconds:>7.3f} ms '
              f"{'-' if gbps is None else f'{gbps:.0f}':>8} "
              f"{'-' if pct is None else f'{pct:.0f}%':>7} "
              f"{'-' if speedup is None else f'{speedup:.2f}x':>15}")


def targets(results, copy):
    """Issue 5's targets: (description, value, passed or None)."""
    out = []
    for case, (nbytes, times) in results.items():
        mine = times.get(CODAX)
        if nbytes:
            floor = 85 if case.startswith('chain8') else 80
            pct = mine and 100 * nbytes / mine / 1e9 / copy['gbps']
            out.append((f'{case}: codax.jit >= {floor}% of copy bandwidth', pct,
                        None if pct is None else pct >= floor))
        for rival in ('jax.jit', 'cupy.fuse'):
            if rival in times:
                ratio = mine and times[rival] / mine
                out.append((f'{case}: codax.jit at least as fast as {rival} (speed-up)', ratio,
                            None if ratio is None else ratio >= 1.0))
    return out


def print_targets(lines):
    print('\ntargets:')
    for what, value, passed in lines:
        status = 'SKIP' if passed is None else ('PASS' if passed else 'MISS')
        print(f"  [{status}] {what}  ({'n/a' if value is None else f'{value:.2f}'})")
    if ERRORS:
        print(f'\n{len(ERRORS)} FAILURE(S): ' + '; '.join(what for what, _ in ERRORS))


# ------------------------------------------------------------------------ main
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='shorter timing loops, fewer repeats')
    ap.add_argument('--check', action='store_true',
                    help='only check every implementation against unfused CuPy, small sizes')
    ap.add_argument('--json', metavar='PATH', help='write the results as JSON')
    ap.add_argument('--log2-size', type=int, default=26, metavar='N',
                    help='elements of the element-wise cases: 2^N (default 26)')
    return ap.parse_args()


def optional(name, required):
    try:
        return __import__(name)
    except Exception:
        if required:
            record_error(f'import {name}')
        return None


def main():
    args = parse_args()
    import cupy as cp
    if not cp.cuda.is_available():
        print('bench_gpu: no CUDA GPU here (cupy.cuda.is_available() is False)', file=sys.stderr)
        return 1
    codax, jax = optional('codax', True), optional('jax', False)
    if jax is not None:
        import jax.dlpack  # noqa: F401
        jax.config.update('jax_default_matmul_precision', 'highest')
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    print(f"{props['name'].decode()}  cupy {cp.__version__}  "
          f"jax {jax.__version__ if jax else 'missing'}  codax {'ok' if codax else 'MISSING'}")
    n, (rows, cols) = (1 << 16, (256, 512)) if args.check else (1 << args.log2_size, (8192, 4096))
    target, repeats = (0.05, 3) if args.quick else (0.2, 7)
    budget = 2 * cp.cuda.Device().attributes['L2CacheSize']
    cases = element_cases(cp, codax, jax, n, rows, cols) + [
        mlp_case(cp, codax, jax, *((64, 32, 64, 10) if args.check else (4096, 1024, 4096, 10)))]

    print('checks against unfused CuPy' + ('' if args.check else ', then timing') + ':')
    results = {case.name: (case.nbytes, run_case(cp, jax, case, budget, target, repeats,
                                                 args.check)) for case in cases}
    if args.check:
        return 1 if ERRORS else 0
    seconds = copy_seconds(cp, n, budget, target, repeats)
    copy = {'seconds': seconds, 'gbps': 8 * n / seconds / 1e9}
    latency = latencies(cp, codax, jax, 3) if codax else {}
    for what, value in latency.items():
        print(f'  {what}: {value:.1f}')
    rows_out = table(results, copy)
    lines = targets(results, copy)
    if args.json:
        Path(args.json).write_text(json.dumps({
            'device': props['name'].decode(), 'copy_gbps': copy['gbps'], 'latency': latency,
            'rows': [dict(zip(('case', 'impl', 'seconds', 'gbps', 'pct_copy', 'codax_speedup'),
                              row)) for row in rows_out],
            'targets': [{'check': w, 'value': v, 'passed': p} for w, v, p in lines],
            'errors': [{'what': w, 'traceback': t} for w, t in ERRORS]}, indent=2))
    print_table(rows_out)
    print_targets(lines)
    return 1 if ERRORS else 0


if __name__ == '__main__':
    sys.exit(main())
