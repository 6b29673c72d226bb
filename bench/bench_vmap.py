#!/usr/bin/env python
"""Benchmark per-example gradients: codax.vmap(codax.grad(f)) against a loop, JAX and NumPy.

    python bench/bench_vmap.py [--quick] [--check] [--json PATH]

The loss `f(params, x, y)` is written for one example; its per-example
gradients over a batch of 256 rows (float64) come from
`codax.vmap(codax.grad(f), in_axes=(None, 0, 0))`, from a Python loop of
`codax.grad(f)` over the rows (stacked), from
`jax.jit(jax.vmap(jax.grad(f), in_axes=(None, 0, 0)))` on the CPU, and from a
hand-written vectorized NumPy gradient, the floor. Cases: logistic regression
and a 30-64-1 tanh MLP, both with a binary cross-entropy loss, on the first 256
rows of the standardized breast cancer data shipped in codax.datasets; the MLP
a second time with its loss split into helper functions (`bce(mlp_logit(...))`). Every
implementation is checked against the hand-written one (itself checked against
finite differences at a tiny size) before timing, all in this one process.
See bench/README.md.
"""
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grad import (ERRORS, checked, codax, fmt_time, jax, numeric_grad, parse_args,  # noqa: E402
                        print_report, rebind, time_per_call, tree_allclose, write_json)

if jax is not None:
    import jax.numpy as jnp

BATCH = 256


# ------------------------------------------------ losses, for ONE example
def logreg_loss(params, x, y):
    z = x @ params["w"] + params["b"]
    return np.logaddexp(0.0, z) - y * z


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    z = h @ params["w2"] + params["b2"]
    return np.logaddexp(0.0, z) - y * z


# The same MLP loss split into helper functions, as people write it (examples/dp_sgd.py).
def mlp_logit(params, x):
    h = np.tanh(x @ params["W1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def bce(z, y):
    return np.logaddexp(0.0, z) - y * z


def mlp_helpers_loss(params, x, y):
    return bce(mlp_logit(params, x), y)


# ------------------------------- hand-written per-example gradients (the floor)
def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def logreg_per_example(params, X, y):
    r = sigmoid(X @ params["w"] + params["b"]) - y          # dloss/dz, one per example
    return {"w": r[:, None] * X, "b": r}


def mlp_per_example(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    r = sigmoid(h @ params["w2"] + params["b2"]) - y
    da = (r[:, None] * params["w2"]) * (1.0 - h * h)          # dloss/d(pre-activation)
    return {"W1": np.einsum("bi,bj->bij", X, da), "b1": da, "w2": r[:, None] * h, "b2": r}


# ----------------------------------------------------------------------- cases
Case = namedtuple("Case", "name f params X y manual")


def make_cases(tiny=False):
    rng = np.random.default_rng(0)
    if tiny:
        B, D, H = 3, 4, 5
        X, y = rng.standard_normal((B, D)), rng.integers(0, 2, B).astype(np.float64)
    else:
        from codax.datasets import load_breast_cancer
        data = load_breast_cancer()
        B, D, H = BATCH, data.X.shape[1], 64
        X = ((data.X - data.X.mean(axis=0)) / data.X.std(axis=0))[:B]
        y = data.y[:B]
    logreg = {"w": 0.3 * rng.standard_normal(D), "b": np.array(0.1)}
    mlp = {"W1": rng.standard_normal((D, H)) / np.sqrt(D), "b1": 0.1 * rng.standard_normal(H),
           "w2": rng.standard_normal(H) / np.sqrt(H), "b2": np.array(0.1)}
    return [Case(f"logreg d={D} B={B}", logreg_loss, logreg, X, y, logreg_per_example),
            Case(f"mlp {D}-{H}-1 B={B}", mlp_loss, mlp, X, y, mlp_per_example),
            Case(f"mlp {D}-{H}-1 helpers", mlp_helpers_loss, mlp, X, y, mlp_per_example)]


def make_impls(case):
    """name -> factory returning a zero-arg callable computing the per-example gradients."""
    params, X, y = case.params, case.X, case.y
    impls = {"numpy": lambda: lambda: case.manual(params, X, y)}
    if codax is not None:
        def codax_vmap():
            g = codax.vmap(codax.grad(case.f), in_axes=(None, 0, 0))
            return lambda: g(params, X, y)

        def codax_loop():
            g = codax.grad(case.f)

            def loop():
                rows = [g(params, X[i], y[i]) for i in range(len(X))]
                return {k: np.stack([r[k] for r in rows]) for k in params}
            return loop
        impls.update({"codax vmap(grad)": codax_vmap, "codax loop of grad": codax_loop})
    if jax is not None:
        def jax_vmap():
            g = jax.jit(jax.vmap(jax.grad(rebind(case.f, jnp)), in_axes=(None, 0, 0)))
            jargs = jax.tree_util.tree_map(jnp.asarray, (params, X, y))
            return lambda: jax.block_until_ready(g(*jargs))
        impls["jax.jit(vmap(grad))"] = jax_vmap
    return impls


# ---------------------------------------------------------------------- checks
def check_manual_gradients():
    ok = True
    for case in make_cases(tiny=True):
        got = case.manual(case.params, case.X, case.y)
        good = all(tree_allclose({k: v[i] for k, v in got.items()},
                                 numeric_grad(case.f, (case.params, case.X[i], case.y[i]), 0))
                   for i in range(len(case.X)))
        ok &= good
        print(f"  hand-written {case.name:<22} vs finite differences: {'ok' if good else 'MISMATCH'}")
        if not good:
            print(f"\n!!!!! HAND-WRITTEN GRADIENT WRONG for {case.name} !!!!!\n", file=sys.stderr)
    return ok


def checked_impls(case):
    reference = case.manual(case.params, case.X, case.y)
    return checked(case.name, make_impls(case), lambda got: tree_allclose(got, reference),
                   "hand-written", width=(20, 22))


def bench_case(case, target, repeats):
    rows = {name: {"seconds": time_per_call(fn, target, repeats), "correct": correct}
            for name, fn, correct in checked_impls(case)}
    vmap = rows.get("codax vmap(grad)")
    for r in rows.values():
        r["vs_numpy"] = r["seconds"] / rows["numpy"]["seconds"]
        r["vs_codax_vmap"] = r["seconds"] / vmap["seconds"] if vmap else None
    return rows


def target_lines(results):
    checks = []
    for case, rows in results.items():
        speedup = rows.get("codax loop of grad", {}).get("vs_codax_vmap")
        checks.append((f"codax vmap(grad) >= 30x faster than a loop of codax.grad ({case})", speedup,
                       speedup is not None and speedup >= 30))
    return checks


def fmt_ratio(r):
    return "" if r is None else f"{r:.2f}x" if r >= 0.1 else f"{r:.4f}x"


def print_table(results):
    print(f"\nper-example gradients, batch {BATCH}, float64; /numpy and /codax vmap: this row's time "
          f"over theirs\n"
          f"{'case':<20} {'impl':<20} {'time/call':>11} {'per example':>12} {'/numpy':>9} "
          f"{'/codax vmap':>11}")
    for case_name, rows in results.items():
        for impl, r in rows.items():
            flag = "" if r["correct"] else "  WRONG GRADIENT"
            print(f"{case_name:<20} {impl:<20} {fmt_time(r['seconds']):>11} "
                  f"{fmt_time(r['seconds'] / BATCH):>12} {fmt_ratio(r['vs_numpy']):>9} "
                  f"{fmt_ratio(r['vs_codax_vmap']):>11}{flag}")


def main():
    args = parse_args(__doc__)

    print(f"numpy {np.__version__}  codax {'ok' if codax else 'MISSING'}  "
          f"jax {jax.__version__ if jax else 'missing'}")
    print("gradient checks:")
    manual_ok = check_manual_gradients()
    for case in make_cases(tiny=True):
        list(checked_impls(case))
    if args.check:
        for case in make_cases():
            list(checked_impls(case))
        return 0 if manual_ok and not ERRORS else 1

    results = {case.name: bench_case(case, args.target, args.repeats) for case in make_cases()}
    targets = target_lines(results)
    print_report(targets)
    print_table(results)

    if args.json:
        write_json(args.json, args.quick, targets, batch=BATCH, results=results)
    return 0 if manual_ok and not ERRORS else 1


if __name__ == "__main__":
    sys.exit(main())
