#!/usr/bin/env python
"""Benchmark codax.jit on the CPU: whole functions against plain NumPy, unjitted codax and jax.jit.

    MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456 \\
        python bench/bench_jit.py [--quick] [--check] [--json PATH]

Whole user functions, not kernels (bench/bench_jit_cpu.py times the kernels
alone), at 10^6 elements, float64 and where telling float32, in one process:

(a) the gradient of `sum(tanh(x)**2)`: `codax.jit(codax.grad(f))`,
    `codax.grad(f)` (plain NumPy code, unfused), a hand-written NumPy gradient
    and `jax.jit(jax.grad(f))`;
(b) a polynomial chain `3*x**3 + 2*x**2 - 5*x + 1.5*np.sin(x)*np.exp(-x)`:
    `codax.jit(f)`, `f` itself (NumPy) and `jax.jit(f)`; also NumPy with
    `x*x*x` for `x**3` (NumPy's `pow` is slow for negative bases; codax and
    JAX turn small integer powers into products);
(c) `sum(x*y)`, row softmax and layer norm of 1000x1000 (trailing-axis
    reductions), and an MLP training step `jit(value_and_grad(loss))` of a
    784-256-10 tanh MLP (softmax cross-entropy, params as four arrays, batch
    256) against `codax.value_and_grad` unjitted, a hand-written NumPy step and
    JAX;
(d) latency: the first call of a never-seen function (transform plus C
    compile, with an empty temporary CODAX_CACHE_DIR; and, in a fresh Python
    process, with that disk cache warm), against jax.jit's first call (trace
    plus XLA compile); and the cached call at 10 elements (the cost per call).

JAX runs with x64 enabled, on arrays put on its CPU device once
(`block_until_ready` after each call); codax takes and returns NumPy arrays.
Every implementation is checked against the NumPy one (the hand-written
gradients against finite differences at a tiny size) before timing. Times
are medians over repeats in which the implementations of a case take turns,
so that drift on a shared machine hits them alike. The table gives
numpy/jit (how many times faster codax.jit is than NumPy) and jit/jax
(codax.jit's time over JAX's: below 1 means codax is faster). Targets
(issue 5): (a) and (b) at float64 at least 3x faster than NumPy and within
1.5x of JAX.

The allocator: a 10^6-element float64 array (8 MB) is above glibc's mmap
threshold, so by default every temporary and every result is a fresh mapping
whose pages fault in on first touch, and freed memory is trimmed back to the
system: NumPy's times double and swing between runs (codax.jit, holding no
temporaries, hardly moves), which flatters codax. Pin both
thresholds for steadier numbers (the script warns when they are not set):
MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456.
BLAS threads: the MLP step's products run in OpenBLAS (NumPy and codax alike;
JAX has its own). On a busy 2-core machine OpenBLAS's two threads wait on
each other (`x.T @ dz` of the MLP: 20 ms against 3 ms on one thread), so add
OPENBLAS_NUM_THREADS=1 there; the header says which setting ran.
See bench/README.md and docs/performance.md.
"""
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grad import (ERRORS, checked, codax, fmt_time, jax, numeric_grad, parse_args,  # noqa: E402
                        print_report, rebind, record_error, tree_allclose, write_json)

if jax is not None:
    import jax.numpy as jnp

REPO = Path(__file__).resolve().parents[1]
PINNED = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
N = 10 ** 6


# ------------------------------------------------------------- the functions
def tanh_sq(x):
    return np.sum(np.tanh(x) ** 2)


def tanh_sq_grad(x):                    # hand-written
    t = np.tanh(x)
    return 2.0 * t * (1.0 - t * t)


def poly(x):
    return 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1.5 * np.sin(x) * np.exp(-x)


def poly_products(x):                   # x**3 as products: NumPy's pow is slow for x < 0
    return 3 * (x * x * x) + 2 * (x * x) - 5 * x + 1.5 * np.sin(x) * np.exp(-x)


def sum_xy(x, y):
    return np.sum(x * y)


def sum_xy_vdot(x, y):                  # what a NumPy user would write for speed
    return np.vdot(x, y)


def softmax(x):
    m = np.max(x, axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=1, keepdims=True)


def layer_norm(x):
    mu = np.mean(x, axis=1, keepdims=True)
    v = np.mean((x - mu) ** 2, axis=1, keepdims=True)
    return (x - mu) / np.sqrt(v + 1e-5)


def mlp_loss(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (logits - lse), axis=1))


def mlp_value_and_grad(W1, b1, W2, b2, x, y):
    """Hand-written; assumes each row of the one-hot `y` sums to 1."""
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = np.sum(e, axis=1, keepdims=True)
    loss = -np.mean(np.sum(y * (logits - m - np.log(s)), axis=1))
    d_logits = (e / s - y) / x.shape[0]
    dz = (d_logits @ W2.T) * (1.0 - h * h)
    return loss, (x.T @ dz, dz.sum(0), h.T @ d_logits, d_logits.sum(0))


# --------------------------------------------------------------------- cases
# impls: name -> factory returning a zero-argument callable. The first is the
# reference every other is checked against, and the "numpy" of the ratios.
Case = namedtuple("Case", "name group impls")
JIT = "codax.jit"


def jax_impl(make, args):
    def factory():
        f = make()
        jargs = jax.tree_util.tree_map(jnp.asarray, args)
        return lambda: jax.block_until_ready(f(*jargs))
    return factory


def codax_impl(make, args):
    def factory():
        f = make()
        return lambda: f(*args)
    return factory


def numpy_impl(f, args):
    return lambda: lambda: f(*args)


def grad_case(x):
    impls = {"numpy": numpy_impl(tanh_sq_grad, (x,))}
    if codax is not None:
        impls["codax.grad"] = codax_impl(lambda: codax.grad(tanh_sq), (x,))
        impls[JIT] = codax_impl(lambda: codax.jit(codax.grad(tanh_sq)), (x,))
    if jax is not None:
        impls["jax.jit"] = jax_impl(lambda: jax.jit(jax.grad(rebind(tanh_sq, jnp))), (x,))
    return impls


def plain_case(f, args, extra=None):
    """f as NumPy, codax.jit(f), jax.jit(f)."""
    impls = {"numpy": numpy_impl(f, args)}
    impls.update(extra or {})
    if codax is not None:
        impls[JIT] = codax_impl(lambda: codax.jit(f), args)
    if jax is not None:
        impls["jax.jit"] = jax_impl(lambda: jax.jit(rebind(f, jnp)), args)
    return impls


def mlp_args(rng, batch=256, sizes=(784, 256, 10)):
    D, H, C = sizes
    return (rng.standard_normal((D, H)) / np.sqrt(D), 0.1 * rng.standard_normal(H),
            rng.standard_normal((H, C)) / np.sqrt(H), 0.1 * rng.standard_normal(C),
            rng.standard_normal((batch, D)), np.eye(C)[rng.integers(0, C, batch)])


def mlp_case(args):
    argnums = (0, 1, 2, 3)
    impls = {"numpy": numpy_impl(mlp_value_and_grad, args)}
    if codax is not None:
        impls["codax.value_and_grad"] = codax_impl(
            lambda: codax.value_and_grad(mlp_loss, argnums=argnums), args)
        impls[JIT] = codax_impl(
            lambda: codax.jit(codax.value_and_grad(mlp_loss, argnums=argnums)), args)
    if jax is not None:
        impls["jax.jit"] = jax_impl(
            lambda: jax.jit(jax.value_and_grad(rebind(mlp_loss, jnp), argnums=argnums)), args)
    return impls


def make_cases(tiny=False):
    rng = np.random.default_rng(0)
    n, side, mlp = (50, 7, dict(batch=4, sizes=(5, 6, 3))) if tiny else (N, 1000, {})
    x64 = rng.standard_normal(n)
    x32 = x64.astype(np.float32)
    small = rng.standard_normal(10)
    a, b = rng.standard_normal((side, side)), rng.standard_normal((side, side))
    big = "10^6" if n == N else str(n)
    return [
        Case(f"(a) grad sum(tanh(x)**2) f64 n={big}", "a", grad_case(x64)),
        Case(f"(a) grad sum(tanh(x)**2) f32 n={big}", "a32", grad_case(x32)),
        Case(f"(b) polynomial chain f64 n={big}", "b", plain_case(
            poly, (x64,), {"numpy x*x*x": numpy_impl(poly_products, (x64,))})),
        Case(f"(b) polynomial chain f32 n={big}", "b32", plain_case(
            poly, (x32,), {"numpy x*x*x": numpy_impl(poly_products, (x32,))})),
        Case(f"(c) sum(x*y) {side}x{side}", "c", plain_case(
            sum_xy, (a, b), {"numpy vdot": numpy_impl(sum_xy_vdot, (a, b))})),
        Case(f"(c) softmax rows {side}x{side}", "c", plain_case(softmax, (a,))),
        Case(f"(c) layer norm {side}x{side}", "c", plain_case(layer_norm, (a,))),
        Case("(c) MLP step 784-256-10 B=256" if not tiny else "(c) MLP step tiny", "c",
             mlp_case(mlp_args(rng, **mlp))),
        Case("(d) grad sum(tanh(x)**2) n=10", "d", grad_case(small)),
        Case("(d) polynomial chain n=10", "d", plain_case(poly, (small,))),
    ]


# -------------------------------------------------------------------- checks
def close(got, want, single):
    """tree_allclose; for a float32 case also the dtype, to float32's tolerance."""
    if single:
        got = np.asarray(got)
        return got.dtype == np.float32 and got.shape == np.shape(want) and \
            np.allclose(got, want, rtol=1e-4, atol=1e-4)
    return tree_allclose(got, want)


def check_hand_written():
    """The hand-written gradients against central finite differences."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(6)
    checks = [("grad sum(tanh(x)**2)", tanh_sq_grad(x), numeric_grad(tanh_sq, (x,), 0))]
    args = mlp_args(rng, batch=4, sizes=(5, 6, 3))
    value, grads = mlp_value_and_grad(*args)
    checks.append(("MLP value_and_grad", (value, grads),
                   (mlp_loss(*args), numeric_grad(mlp_loss, args, (0, 1, 2, 3)))))
    ok = True
    for name, got, want in checks:
        good = tree_allclose(got, want)
        ok &= good
        print(f"  hand-written {name:<28} vs finite differences: {'ok' if good else 'MISMATCH'}")
        if not good:
            print(f"\n!!!!! HAND-WRITTEN {name} WRONG !!!!!\n", file=sys.stderr)
    return ok


def checked_impls(case):
    """(name, callable, agrees) for every implementation, checked against the first."""
    impls = dict(case.impls)
    reference_name = next(iter(impls))
    try:
        reference = impls.pop(reference_name)()
        want = reference()
    except Exception:
        record_error(f"{case.name} / {reference_name}")
        return []
    single = "f32" in case.name
    found = [(reference_name, reference, True)]
    found += checked(case.name, impls, lambda got: close(got, want, single), reference_name,
                     width=(22, 38))
    return found


# -------------------------------------------------------------------- timing
def interleaved(functions, target, repeats):
    """Median seconds a call of each function: an inner loop sized to about
    `target` seconds each, the functions taking turns over `repeats` rounds."""
    loops = {}
    for name, fn in functions.items():
        fn(), fn()
        n, start = 1, time.perf_counter()
        fn()
        took = time.perf_counter() - start
        while took < target / 10 and n < 10 ** 6:
            n *= 10
            start = time.perf_counter()
            for _ in range(n):
                fn()
            took = time.perf_counter() - start
        loops[name] = max(1, round(n * target / took))
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            count = loops[name]
            start = time.perf_counter()
            for _ in range(count):
                fn()
            samples[name].append((time.perf_counter() - start) / count)
    return {name: statistics.median(s) for name, s in samples.items()}


def bench_case(case, target, repeats):
    found = checked_impls(case)
    times = interleaved({name: fn for name, fn, _ in found}, target, repeats)
    return {name: {"seconds": times[name], "correct": correct} for name, _, correct in found}


# ---------------------------------------------------------- first-call latency
FRESH_SRC = '''\
import numpy as np


def tanh_sq_{tag}(x):
    return np.sum(np.tanh(x) ** 2)


def poly_{tag}(x):
    return 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1.5 * np.sin(x) * np.exp(-x)


def mlp_loss_{tag}(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (logits - lse), axis=1))
'''

# Which function of FRESH_SRC each first-call case uses, and how to build it.
FIRST = {
    "grad sum(tanh(x)**2)": ("tanh_sq", lambda T, f: T.jit(T.grad(f))),
    "polynomial chain": ("poly", lambda T, f: T.jit(f)),
    "MLP step": ("mlp_loss", lambda T, f: T.jit(T.value_and_grad(f, argnums=(0, 1, 2, 3)))),
}

# The same first call in a fresh interpreter whose CODAX_CACHE_DIR already
# holds the kernels: transform plus loading the cached libraries.
WARM_SCRIPT = '''
import importlib.util, json, sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
import numpy as np
import codax
from bench_jit import FIRST, first_call_args
spec = importlib.util.spec_from_file_location({module!r}, {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = {{}}
for case, (stem, build) in FIRST.items():
    f = getattr(module, stem + "_" + {tag!r})
    args = first_call_args(case)
    start = time.perf_counter()
    build(codax, f)(*args)
    out[case] = time.perf_counter() - start
print(json.dumps(out))
'''


def first_call_args(case):
    rng = np.random.default_rng(4)
    if case == "MLP step":
        return mlp_args(rng, batch=8)
    return (rng.standard_normal(1000),)


def load_fresh(folder, tag):
    path = Path(folder) / f"fresh_{tag}.py"
    path.write_text(FRESH_SRC.format(tag=tag))
    spec = importlib.util.spec_from_file_location(f"fresh_{tag}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module, path


def first_calls(repeats):
    """Median seconds of the first call: codax with an empty disk cache (in
    this process), codax with a warm one (a fresh process), jax.jit."""
    found = {case: {"codax cold": [], "codax warm disk": [], "jax.jit": []} for case in FIRST}
    saved = os.environ.get("CODAX_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="codax-bench-jit-") as scratch:
        for i in range(repeats):
            tag = f"{os.getpid()}_{i}"
            module, path = load_fresh(scratch, tag)
            cache = Path(scratch) / f"cache_{i}"
            cache.mkdir()
            os.environ["CODAX_CACHE_DIR"] = str(cache)
            try:
                for case, (stem, build) in FIRST.items():
                    f, args = getattr(module, f"{stem}_{tag}"), first_call_args(case)
                    start = time.perf_counter()
                    build(codax, f)(*args)
                    found[case]["codax cold"].append(time.perf_counter() - start)
                    if jax is not None:
                        g = rebind(f, jnp)
                        jargs = jax.tree_util.tree_map(jnp.asarray, args)
                        start = time.perf_counter()
                        jax.block_until_ready(build(jax, g)(*jargs))
                        found[case]["jax.jit"].append(time.perf_counter() - start)
            finally:
                if saved is None:
                    del os.environ["CODAX_CACHE_DIR"]
                else:
                    os.environ["CODAX_CACHE_DIR"] = saved
            script = WARM_SCRIPT.format(repo=str(REPO), bench=str(REPO / "bench"),
                                        module=f"fresh_{tag}", path=str(path), tag=tag)
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                 env={**os.environ, "CODAX_CACHE_DIR": str(cache),
                                      "JAX_PLATFORMS": "cpu"})
            if run.returncode != 0:
                ERRORS.append(("first call, warm disk cache", run.stderr[-2000:]))
                print(f"\n!!!!! warm-cache first call FAILED !!!!!\n{run.stderr[-2000:]}",
                      file=sys.stderr)
            else:
                for case, seconds in json.loads(run.stdout.strip().splitlines()[-1]).items():
                    found[case]["codax warm disk"].append(seconds)
    return {case: {k: statistics.median(v) for k, v in row.items() if v}
            for case, row in found.items()}


# --------------------------------------------------------------------- report
def ratio(rows, top, bottom):
    a, b = rows.get(top, {}).get("seconds"), rows.get(bottom, {}).get("seconds")
    return None if a is None or b is None else a / b


def fmt_ratio(r):
    return "" if r is None else f"{r:.2f}x"


def print_table(results, first):
    print("\ncodax.jit on the CPU; numpy/jit: NumPy's time over codax.jit's (>1: jit faster); "
          "jit/jax: codax.jit's over jax.jit's (<1: codax faster)")
    head = f"{'case':<40} {'numpy':>10} {'codax':>10} {'codax.jit':>10} {'jax.jit':>10} " \
           f"{'numpy/jit':>10} {'jit/jax':>8}  others"
    print(head)
    for case, rows in results.items():
        names = list(rows)
        unjitted = next((k for k in names if k.startswith("codax.") and k != JIT), None)
        others = [k for k in names[1:] if k not in (JIT, "jax.jit", unjitted)]
        cell = lambda k: fmt_time(rows[k]["seconds"]) if k in rows else ""  # noqa: E731
        wrong = [k for k in names if not rows[k]["correct"]]
        print(f"{case:<40} {cell(names[0]):>10} {cell(unjitted):>10} {cell(JIT):>10} "
              f"{cell('jax.jit'):>10} {fmt_ratio(ratio(rows, names[0], JIT)):>10} "
              f"{fmt_ratio(ratio(rows, JIT, 'jax.jit')):>8}  "
              + ", ".join(f"{k} {cell(k).strip()}" for k in others)
              + (f"  WRONG: {', '.join(wrong)}" if wrong else ""))
    if first:
        print(f"\nfirst call of a fresh function (median): {'case':<22} {'codax, empty cache':>18} "
              f"{'codax, warm disk':>17} {'jax.jit':>10}")
        for case, row in first.items():
            cells = [fmt_time(row[k]) if k in row else "" for k in
                     ("codax cold", "codax warm disk", "jax.jit")]
            print(f"{'':<41}{case:<22} {cells[0]:>18} {cells[1]:>17} {cells[2]:>10}")


def target_lines(results):
    checks = []
    for case, rows in results.items():
        if not case.startswith(("(a)", "(b)")) or "f64" not in case:
            continue
        speedup, vs_jax = ratio(rows, "numpy", JIT), ratio(rows, JIT, "jax.jit")
        checks.append((f"{case}: codax.jit >= 3x faster than NumPy", speedup,
                       speedup is not None and speedup >= 3))
        checks.append((f"{case}: codax.jit within 1.5x of jax.jit", vs_jax,
                       None if vs_jax is None else vs_jax <= 1.5))
    return checks


def main():
    args = parse_args(__doc__, check_help="only run the correctness checks")
    repeats = 3 if args.quick else 7
    pinned = all(os.environ.get(k) for k in PINNED)
    print(f"numpy {np.__version__}  codax {'ok' if codax else 'MISSING'}  "
          f"jax {jax.__version__ if jax else 'missing'}  cores {os.cpu_count()}  "
          f"malloc thresholds {'pinned' if pinned else 'NOT pinned (see the docstring)'}  "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print("checks:")
    manual_ok = check_hand_written()
    for case in make_cases(tiny=True):
        checked_impls(case)
    cases = make_cases()
    if args.check:
        for case in cases:
            checked_impls(case)
        return 0 if manual_ok and not ERRORS else 1

    results = {}
    for case in cases:
        target = args.target / 4 if case.group == "d" else args.target
        results[case.name] = bench_case(case, target, repeats)
    first = None
    if codax is not None:
        try:
            first = first_calls(3)
        except Exception:
            record_error("first call")
    print_table(results, first)
    targets = target_lines(results)
    print_report(targets)
    if args.json:
        write_json(args.json, args.quick, targets, pinned_malloc=pinned, results=results,
                   first_call_seconds=first)
    return 0 if manual_ok and not ERRORS else 1


if __name__ == "__main__":
    sys.exit(main())
