#!/usr/bin/env python
"""Benchmark codax.grad against hand-written NumPy gradients, autograd and jax.jit(jax.grad).

    python bench/bench_grad.py [--quick] [--check] [--json PATH]

Every gradient is first checked against the hand-written one (which is itself
checked against finite differences at a tiny size); then each implementation is
timed in this one process and reported as a ratio to the hand-written NumPy
gradient. See bench/README.md.
"""
import argparse
import importlib
import importlib.util
import json
import os
import platform
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
os.environ.setdefault("JAX_PLATFORMS", "cpu")

ERRORS = []  # (what, traceback tail)


def record_error(what):
    lines = [ln for ln in traceback.format_exc().strip().splitlines() if ln.strip(" ^~")]
    tail = "\n".join(lines[-16:])
    ERRORS.append((what, tail))
    print(f"\n!!!!! {what} FAILED !!!!!\n{tail}\n", file=sys.stderr)


def optional_import(name):
    try:
        return importlib.import_module(name)
    except Exception:
        if name == "codax":
            record_error("import codax")
        return None


codax = optional_import("codax")
if codax is not None and not hasattr(codax, "grad"):
    ERRORS.append(("import codax", f"codax ({codax.__path__}) has no attribute 'grad'"))
    print("\n!!!!! codax.grad is missing !!!!!\n", file=sys.stderr)
    codax = None
autograd = optional_import("autograd")
anp = optional_import("autograd.numpy")
jax = optional_import("jax")
if jax is not None:
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp


# ----------------------------------------------------------------- functions
def tanh_sq(x):
    return np.sum(np.tanh(x) ** 2)


def tanh_sq_grad(x):
    t = np.tanh(x)
    return 2.0 * t * (1.0 - t * t)


def sin_cos_gauss(x):
    return np.sum(np.sin(x) * np.cos(x) + np.exp(-x * x))


def sin_cos_gauss_grad(x):
    s, c = np.sin(x), np.cos(x)
    return c * c - s * s - 2.0 * x * np.exp(-x * x)


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    m = np.max(logits, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (logits - lse), axis=1))


def mlp_grad(params, x, y):
    """Hand-written; assumes each row of the one-hot `y` sums to 1."""
    W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    e = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    d_logits = (e / np.sum(e, axis=1, keepdims=True) - y) / x.shape[0]
    dz = (d_logits @ W2.T) * (1.0 - h * h)
    return {"W1": x.T @ dz, "b1": dz.sum(0), "W2": h.T @ d_logits, "b2": d_logits.sum(0)}


def rnn_loss(Wh, Wx, b, xs):
    h = np.zeros(Wh.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(Wh @ h + Wx @ xs[t] + b)
    return np.sum(h ** 2)


def rnn_grad(Wh, Wx, b, xs):
    """Hand-written backprop through time."""
    hs = [np.zeros(Wh.shape[0])]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(Wh @ hs[-1] + Wx @ xs[t] + b))
    dWh, dWx, db = np.zeros_like(Wh), np.zeros_like(Wx), np.zeros_like(b)
    dh = 2.0 * hs[-1]
    for t in reversed(range(xs.shape[0])):
        dz = dh * (1.0 - hs[t + 1] ** 2)
        dWh += np.outer(dz, hs[t])
        dWx += np.outer(dz, xs[t])
        db += dz
        dh = Wh.T @ dz
    return dWh, dWx, db


# Case 5: a fresh ~30-line function, written to its own .py file per repeat so
# that inspect.getsource works and no cache (keyed on name/source/code) can hit.
FIRST_CALL_SRC = '''\
import numpy as np


def {name}(x):
    """Fresh function for first-call latency ({name})."""
    y = np.tanh(x)
    acc = 0.0
    for i in range(4):
        if i % 2 == 0:
            y = np.sin(y) * 1.5 + 0.1 * x
        else:
            y = np.exp(-0.5 * y ** 2)
        acc = acc + np.sum(y * y) / (i + 1)
    s = np.sum(np.maximum(y, 0.2))
    if s > 1.0:
        acc = acc + np.log(s)
    else:
        acc = acc - s
    m = np.mean(y)
    v = np.mean((y - m) ** 2)
    z = np.where(x > 0, x * y, -x)
    for k in range(3):
        z = z * 0.9 + np.cos(z) * 0.1
    n = np.sqrt(np.sum(z ** 2) + 1e-3)
    w = np.clip(z / n, -0.5, 0.5)
    t = np.dot(w, y) + np.abs(m)
    if t < 0:
        t = -t
    return acc + np.log(v + 1.0) + t
'''


def load_fresh_function(tmpdir, tag):
    name = f"first_call_{tag}"
    path = Path(tmpdir) / f"{name}.py"
    path.write_text(FIRST_CALL_SRC.format(name=name))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return getattr(mod, name)


# --------------------------------------------------------------------- cases
Case = namedtuple("Case", "name f args argnums manual")


def make_cases(tiny=False):
    rng = np.random.default_rng(0)
    n_big, big = (50, "50") if tiny else (10**6, "10^6")
    B, D, Hd, C = (4, 5, 6, 3) if tiny else (128, 784, 256, 10)
    H, I, T = (4, 3, 5) if tiny else (64, 32, 50)
    params = {"W1": rng.standard_normal((D, Hd)) / np.sqrt(D), "b1": 0.1 * rng.standard_normal(Hd),
              "W2": rng.standard_normal((Hd, C)) / np.sqrt(Hd), "b2": 0.1 * rng.standard_normal(C)}
    x = rng.standard_normal((B, D))
    y = np.eye(C)[rng.integers(0, C, B)]
    rnn = (0.9 * rng.standard_normal((H, H)) / np.sqrt(H), rng.standard_normal((H, I)) / np.sqrt(I),
           0.1 * rng.standard_normal(H), rng.standard_normal((T, I)))
    return [
        Case("tanh_sq n=10", tanh_sq, (rng.standard_normal(10),), 0, tanh_sq_grad),
        Case(f"tanh_sq n={big}", tanh_sq, (rng.standard_normal(n_big),), 0, tanh_sq_grad),
        Case(f"sin_cos_gauss n={big}", sin_cos_gauss, (rng.standard_normal(n_big),), 0,
             sin_cos_gauss_grad),
        Case(f"mlp {B}x{D}-{Hd}-{C}", mlp_loss, (params, x, y), 0, mlp_grad),
        Case(f"rnn T={T} H={H}", rnn_loss, rnn, (0, 1, 2), rnn_grad),
    ]


def rebind(f, np_module):
    """The same function with `np` bound to autograd.numpy / jax.numpy, as are the
    other functions of its module that it may call."""
    def copy(fn, namespace):
        return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    namespace = {**f.__globals__, "np": np_module}
    for name, value in list(namespace.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == f.__module__:
            namespace[name] = copy(value, namespace)
    return copy(f, namespace)


def make_impls(case):
    """name -> factory returning a zero-arg callable that computes the gradient."""
    impls = {"numpy": lambda: lambda: case.manual(*case.args)}
    if codax is not None:
        def codax_impl():
            g = codax.grad(case.f, argnums=case.argnums)
            return lambda: g(*case.args)
        impls["codax"] = codax_impl
    if autograd is not None:
        def autograd_impl():
            g = autograd.grad(rebind(case.f, anp), case.argnums)
            return lambda: g(*case.args)
        impls["autograd"] = autograd_impl
    if jax is not None:
        def jax_impl():
            g = jax.jit(jax.grad(rebind(case.f, jnp), argnums=case.argnums))
            jargs = jax.tree_util.tree_map(jnp.asarray, case.args)
            return lambda: jax.block_until_ready(g(*jargs))
        impls["jax.jit(grad)"] = jax_impl
    return impls


# ------------------------------------------------------------------- helpers
def tree_allclose(a, b):
    if isinstance(b, dict):
        return isinstance(a, dict) and a.keys() == b.keys() and all(tree_allclose(a[k], b[k]) for k in b)
    if isinstance(b, (tuple, list)):
        return (isinstance(a, (tuple, list)) and len(a) == len(b)
                and all(tree_allclose(u, v) for u, v in zip(a, b)))
    a = np.asarray(a)
    return a.shape == np.shape(b) and np.allclose(a, b)


def numeric_grad(f, args, argnums, eps=1e-6):
    """Central finite differences, perturbing the (small) argument arrays in place."""
    def fd(a):
        if isinstance(a, dict):
            return {k: fd(v) for k, v in a.items()}
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            fp = f(*args)
            a[i] = old - eps
            fm = f(*args)
            a[i] = old
            g[i] = (fp - fm) / (2 * eps)
        return g
    if isinstance(argnums, int):
        return fd(args[argnums])
    return tuple(fd(args[i]) for i in argnums)


def time_per_call(fn, target, repeats):
    """timeit-style: warm up, size an inner loop to ~target seconds, median of repeats."""
    def loop(n):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - t0

    fn(), fn()
    n, t = 1, loop(1)
    while t < target / 10:
        n *= 10
        t = loop(n)
    n = max(1, round(n * target / t))
    return statistics.median(loop(n) / n for _ in range(repeats))


def print_report(targets):
    """The target lines, then every failure recorded during the run."""
    print("\ntargets:")
    for desc, value, passed in targets:
        status = "SKIP" if passed is None else ("PASS" if passed else "FAIL")
        shown = "n/a" if value is None else f"{value:.2f}"
        print(f"  [{status}] {desc}  ({shown})")
    if ERRORS:
        print(f"\n{len(ERRORS)} FAILURE(S):")
        for what, tail in ERRORS:
            print(f"--- {what}\n{tail}")


def parse_args(doc, check_help="only run the gradient checks"):
    """The benchmarks' shared command line; adds args.target and args.repeats for time_per_call."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter timing loops, fewer repeats")
    ap.add_argument("--check", action="store_true", help=check_help)
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = ap.parse_args()
    args.target, args.repeats = (0.05, 3) if args.quick else (0.2, 5)
    return args


def write_json(path, quick, targets, **sections):
    """meta, then the benchmark's own sections, then the targets and every recorded failure."""
    Path(path).write_text(json.dumps({
        "meta": {"quick": quick, "python": platform.python_version(), "numpy": np.__version__,
                 "jax": jax.__version__ if jax else None, "machine": platform.machine()},
        **sections,
        "targets": [{"check": d, "value": v, "passed": p} for d, v, p in targets],
        "errors": [{"what": w, "traceback": t} for w, t in ERRORS]}, indent=2))


def fmt_time(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:7.2f} {unit}"
    return f"{s / 1e-9:7.0f} ns"


# -------------------------------------------------------------------- checks
def check_manual_gradients():
    ok = True
    for case in make_cases(tiny=True):
        good = tree_allclose(case.manual(*case.args), numeric_grad(case.f, case.args, case.argnums))
        ok &= good
        print(f"  hand-written {case.name:<22} vs finite differences: {'ok' if good else 'MISMATCH'}")
        if not good:
            print(f"\n!!!!! HAND-WRITTEN GRADIENT WRONG for {case.name} !!!!!\n", file=sys.stderr)
    return ok


def check_first_call_function(tmpdir):
    if codax is None:
        return False
    x = np.random.default_rng(1).standard_normal(8)
    f = load_fresh_function(tmpdir, "check")
    try:
        good = tree_allclose(codax.grad(f)(x), numeric_grad(f, (x,), 0))
    except Exception:
        record_error("first-call function / codax")
        return False
    print(f"  codax first-call function vs finite differences: {'ok' if good else 'MISMATCH'}")
    if not good:
        print("\n!!!!! codax GRADIENT WRONG for first-call function !!!!!\n", file=sys.stderr)
    return good


# ---------------------------------------------------------------- benchmarks
def checked(case_name, impls, agrees, reference_name, width=(14, 22)):
    """Yield (impl name, callable, agrees with the reference) for each impl that
    runs; failures and disagreements are reported loudly and kept in ERRORS."""
    for name, factory in impls.items():
        try:
            fn = factory()
            correct = agrees(fn())
        except Exception:
            record_error(f"{case_name} / {name}")
            continue
        print(f"  {name:<{width[0]}} {case_name:<{width[1]}} vs {reference_name}: "
              f"{'ok' if correct else 'MISMATCH'}")
        if not correct:
            ERRORS.append((f"{case_name} / {name}", f"result does not match {reference_name}"))
            print(f"\n!!!!! {name} WRONG for {case_name} !!!!!\n", file=sys.stderr)
        yield name, fn, correct


def checked_impls(case):
    """Each gradient implementation, checked against the hand-written one."""
    reference = case.manual(*case.args)
    return checked(case.name, make_impls(case), lambda got: tree_allclose(got, reference),
                   "hand-written")


def bench_case(case, target, repeats):
    rows = {name: {"seconds": time_per_call(fn, target, repeats), "correct": correct}
            for name, fn, correct in checked_impls(case)}
    for r in rows.values():
        r["ratio"] = r["seconds"] / rows["numpy"]["seconds"]
    return rows


def first_call_ms(tmpdir, x, repeats=5):
    """Median latency of codax.grad(f)(x) for a never-seen-before function f."""
    times = []
    try:
        for i in range(repeats):
            f = load_fresh_function(tmpdir, f"{os.getpid()}_{i}")
            t0 = time.perf_counter()
            codax.grad(f)(x)
            times.append(time.perf_counter() - t0)
    except Exception:
        record_error("first call / codax")
        return None
    return 1e3 * statistics.median(times)


def target_lines(results, first_ms):
    def ratio(case, impl):
        return results.get(case, {}).get(impl, {}).get("ratio")

    names = list(results)
    r_small, t_jax = ratio(names[0], "codax"), ratio(names[0], "jax.jit(grad)")
    checks = [(f"per-call overhead ({names[0]}): codax <= 1.3x numpy", r_small, r_small is not None and r_small <= 1.3),
              (f"per-call overhead ({names[0]}): codax < jax.jit(grad)", t_jax,
               None if t_jax is None else r_small is not None and r_small < t_jax)]
    for name in names[1:]:
        r = ratio(name, "codax")
        kind = "loop" if name.startswith("rnn") else "large input"
        checks.append((f"{kind} ({name}): codax <= 1.2x numpy", r, r is not None and r <= 1.2))
    checks.append(("first call < 100 ms", first_ms, first_ms is not None and first_ms < 100))
    return checks


def main():
    args = parse_args(__doc__)
    target, repeats = args.target, args.repeats

    print(f"numpy {np.__version__}  codax {'ok' if codax else 'MISSING'}  "
          f"autograd {'ok' if autograd else 'missing'}  jax {jax.__version__ if jax else 'missing'}")
    print("gradient checks:")
    tmp = tempfile.TemporaryDirectory()
    manual_ok = check_manual_gradients()
    check_first_call_function(tmp.name)
    if args.check:
        for case in make_cases():
            list(checked_impls(case))
        return 0 if manual_ok and not ERRORS else 1

    results = {case.name: bench_case(case, target, repeats) for case in make_cases()}
    x = np.random.default_rng(2).standard_normal(100)
    first = first_call_ms(tmp.name, x) if codax else None

    print(f"\n{'case':<24} {'impl':<14} {'time/call':>11} {'vs numpy':>9}")
    for case_name, rows in results.items():
        for impl, r in rows.items():
            flag = "" if r["correct"] else "  WRONG GRADIENT"
            print(f"{case_name:<24} {impl:<14} {fmt_time(r['seconds']):>11} {r['ratio']:>8.2f}x{flag}")
    print(f"{'first call (median of 5)':<24} {'codax':<14} {'FAILED' if first is None else f'{first:7.2f} ms':>11}")

    targets = target_lines(results, first)
    print_report(targets)

    if args.json:
        write_json(args.json, args.quick, targets, results=results, first_call_ms=first)
    return 0 if manual_ok and not ERRORS else 1


if __name__ == "__main__":
    sys.exit(main())
