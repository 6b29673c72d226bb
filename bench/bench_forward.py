#!/usr/bin/env python
"""Benchmark codax forward mode: Hessian-vector products and jacfwd vs jacrev.

    python bench/bench_forward.py [--quick] [--check] [--json PATH]

(a) Hessian-vector products of an MLP loss on a flat parameter vector:
forward-over-reverse `jvp(grad(f), (w,), (v,))` and reverse-over-reverse
`grad(lambda w: sum(grad(f)(w) * v))`, as ratios to `codax.grad(f)(w)`, and
against `jax.jit` of the same in JAX (float64). (b) Jacobians of
`tanh(A @ x)` by `jacfwd` and `jacrev` for a tall (n << m) and a wide (m << n)
`A`. Every result is checked first (against finite differences of the gradient
and an analytic Jacobian, and across implementations); then each is timed in
this one process. See bench/README.md.
"""
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grad import (ERRORS, checked, codax, fmt_time, jax, parse_args, print_report,  # noqa: E402
                        rebind, record_error, time_per_call, write_json)

if jax is not None:
    import jax.numpy as jnp


# ------------------------------------------------------ (a) MLP loss and HVPs
# The data live in module globals so that the loss is a function of the flat
# parameter vector alone, as for jax.grad(f); `use_mlp_data` rebinds them per case.
X_DATA = Y_DATA = V_DATA = None
HIDDEN = 0


def mlp_flat_loss(w):
    """tanh MLP with softmax cross-entropy and L2, on a flat parameter vector w."""
    D, H, C = X_DATA.shape[1], HIDDEN, Y_DATA.shape[1]
    W1 = w[:D * H].reshape(D, H)
    b1 = w[D * H:D * H + H]
    W2 = w[D * H + H:D * H + H + H * C].reshape(H, C)
    b2 = w[D * H + H + H * C:]
    h = np.tanh(X_DATA @ W1 + b1)
    logits = h @ W2 + b2
    lse = np.log(np.sum(np.exp(logits), axis=1))    # logits are O(1): no max shift needed
    return np.mean(lse - np.sum(Y_DATA * logits, axis=1)) + 1e-3 * np.sum(w * w)


def grad_dot_v(w):
    """<grad f(w), v>: its gradient is the Hessian-vector product H v (reverse over reverse)."""
    return np.sum(codax.grad(mlp_flat_loss)(w) * V_DATA)


MlpCase = namedtuple("MlpCase", "name w X Y v hidden")


def make_mlp_cases(tiny=False):
    rng = np.random.default_rng(0)
    shapes = [(3, 4, 2, 5)] if tiny else [(64, 16, 48, 4), (64, 64, 128, 10)]
    cases = []
    for B, D, H, C in shapes:
        n = D * H + H + H * C + C
        w = np.concatenate([rng.standard_normal(D * H) / np.sqrt(D), 0.1 * rng.standard_normal(H),
                            rng.standard_normal(H * C) / np.sqrt(H), 0.1 * rng.standard_normal(C)])
        X = rng.standard_normal((B, D))
        Y = np.eye(C)[rng.integers(0, C, B)]
        cases.append(MlpCase(f"mlp {D}-{H}-{C} B={B} ({n} params)", w, X, Y,
                             rng.standard_normal(n), H))
    return cases


def use_mlp_data(case):
    global X_DATA, Y_DATA, V_DATA, HIDDEN
    X_DATA, Y_DATA, V_DATA, HIDDEN = case.X, case.Y, case.v, case.hidden


def jax_mlp_loss():
    """The same loss under jax.numpy, its data captured now (use_mlp_data first)."""
    return rebind(mlp_flat_loss, jnp)


def fd_hvp(grad_fn, w, v, eps=1e-5):
    """Central finite difference of the gradient along v."""
    return (grad_fn(w + eps * v) - grad_fn(w - eps * v)) / (2 * eps)


def hvp_impls(case):
    """name -> factory returning a zero-arg callable; '* grad' rows are gradients."""
    impls = {}
    w, v = case.w, case.v
    if codax is not None:
        def codax_grad():
            g = codax.grad(mlp_flat_loss)
            return lambda: g(w)

        def codax_fwd_rev():
            g = codax.grad(mlp_flat_loss)
            return lambda: codax.jvp(g, (w,), (v,))[1]

        def codax_rev_rev():
            g = codax.grad(grad_dot_v)
            return lambda: g(w)
        impls.update({"codax grad": codax_grad, "codax fwd-over-rev": codax_fwd_rev,
                      "codax rev-over-rev": codax_rev_rev})
    if jax is not None:
        jw, jv = jnp.asarray(w), jnp.asarray(v)

        def jax_grad():
            g = jax.jit(jax.grad(jax_mlp_loss()))
            return lambda: jax.block_until_ready(g(jw))

        def jax_fwd_rev():
            f = jax_mlp_loss()
            h = jax.jit(lambda w, v: jax.jvp(jax.grad(f), (w,), (v,))[1])
            return lambda: jax.block_until_ready(h(jw, jv))

        def jax_rev_rev():
            f = jax_mlp_loss()
            h = jax.jit(jax.grad(lambda w, v: jnp.sum(jax.grad(f)(w) * v)))
            return lambda: jax.block_until_ready(h(jw, jv))
        impls.update({"jax.jit grad": jax_grad, "jax.jit fwd-over-rev": jax_fwd_rev,
                      "jax.jit rev-over-rev": jax_rev_rev})
    return impls


def hvp_close(a, b, rtol=1e-6):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def checked_hvp_impls(case):
    """Yield (name, callable, correct) for each implementation that runs, after checking
    gradients against each other and HVPs against finite differences and each other."""
    use_mlp_data(case)
    fns, values = {}, {}
    for name, factory in hvp_impls(case).items():
        try:
            fn = factory()
            values[name] = np.asarray(fn())
            fns[name] = fn
        except Exception:
            record_error(f"{case.name} / {name}")
    ref_grad = values.get("codax grad", values.get("jax.jit grad"))
    grad_fn = (codax.grad(mlp_flat_loss) if "codax grad" in values
               else (lambda w: np.asarray(jax.grad(jax_mlp_loss())(w))))
    fd = fd_hvp(grad_fn, case.w, case.v) if ref_grad is not None else None
    ref_hvp = next((values[k] for k in ("jax.jit fwd-over-rev", "codax fwd-over-rev",
                                        "codax rev-over-rev") if k in values), None)
    for name, fn in fns.items():
        if name.endswith("grad"):
            correct = hvp_close(values[name], ref_grad, 1e-9)
            what = "vs other grad"
        else:
            correct = hvp_close(values[name], fd, 1e-5) and hvp_close(values[name], ref_hvp, 1e-8)
            what = "vs finite differences and other HVPs"
        print(f"  {name:<22} {case.name:<32} {what}: {'ok' if correct else 'MISMATCH'}")
        if not correct:
            ERRORS.append((f"{case.name} / {name}", f"result does not match ({what})"))
            print(f"\n!!!!! {name} WRONG for {case.name} !!!!!\n", file=sys.stderr)
        yield name, fn, correct


def bench_hvp_case(case, target, repeats):
    rows = {name: {"seconds": time_per_call(fn, target, repeats), "correct": correct}
            for name, fn, correct in checked_hvp_impls(case)}
    for name, r in rows.items():
        own = rows.get(("codax" if name.startswith("codax") else "jax.jit") + " grad")
        base = rows.get("codax grad")
        r["vs_own_grad"] = r["seconds"] / own["seconds"] if own else None
        r["vs_codax_grad"] = r["seconds"] / base["seconds"] if base else None
    return rows


# -------------------------------------------------- (b) jacfwd versus jacrev
A_MAT = None


def smooth_map(x):
    """R^n -> R^m, x -> tanh(A x) with A shaped (m, n)."""
    return np.tanh(A_MAT @ x)


JacCase = namedtuple("JacCase", "name A x")


def make_jac_cases(tiny=False):
    rng = np.random.default_rng(1)
    shapes = [("tall", 6, 2), ("wide", 2, 6)] if tiny else [("tall", 400, 4), ("wide", 4, 400)]
    return [JacCase(f"{kind} m={m} n={n}", rng.standard_normal((m, n)) / np.sqrt(n),
                    rng.standard_normal(n)) for kind, m, n in shapes]


def jac_impls(case):
    impls = {}
    x = case.x
    if codax is not None:
        for name, transform in (("codax jacfwd", codax.jacfwd), ("codax jacrev", codax.jacrev)):
            def factory(transform=transform):
                j = transform(smooth_map)
                return lambda: j(x)
            impls[name] = factory
    if jax is not None:
        jx = jnp.asarray(x)
        for name, transform in (("jax.jit jacfwd", jax.jacfwd), ("jax.jit jacrev", jax.jacrev)):
            def factory(transform=transform):
                j = jax.jit(transform(rebind(smooth_map, jnp)))
                return lambda: jax.block_until_ready(j(jx))
            impls[name] = factory
    return impls


def checked_jac_impls(case):
    global A_MAT
    A_MAT = case.A
    reference = (1.0 - np.tanh(case.A @ case.x) ** 2)[:, None] * case.A
    return checked(case.name, jac_impls(case), lambda got: hvp_close(got, reference, 1e-9),
                   "analytic Jacobian", width=(22, 32))


def bench_jac_case(case, target, repeats):
    return {name: {"seconds": time_per_call(fn, target, repeats), "correct": correct}
            for name, fn, correct in checked_jac_impls(case)}


# ------------------------------------------------------------------- report
def target_lines(hvp_results, jac_results):
    checks = []
    for case, rows in hvp_results.items():
        for impl in ("codax fwd-over-rev", "codax rev-over-rev"):
            r = rows.get(impl, {}).get("vs_own_grad")
            checks.append((f"HVP {impl} <= 4x codax.grad ({case})", r, r is not None and r <= 4))
    for case, rows in jac_results.items():
        fwd, rev = (rows.get(f"codax {k}", {}).get("seconds") for k in ("jacfwd", "jacrev"))
        ratio = None if fwd is None or rev is None else fwd / rev
        if case.startswith("tall"):
            checks.append((f"jacfwd cheaper than jacrev, n << m ({case}), jacfwd/jacrev", ratio,
                           ratio is not None and ratio < 1))
        else:
            checks.append((f"jacrev cheaper than jacfwd, m << n ({case}), jacfwd/jacrev", ratio,
                           ratio is not None and ratio > 1))
    return checks


def fmt_ratio(r):
    return f"{r:8.2f}x" if r is not None else f"{'':9}"


def main():
    args = parse_args(__doc__, check_help="only run the correctness checks")
    target, repeats = args.target, args.repeats

    print(f"numpy {np.__version__}  codax {'ok' if codax else 'MISSING'}  "
          f"jax {jax.__version__ if jax else 'missing'}")
    print("checks (tiny sizes):")
    for case in make_mlp_cases(tiny=True):
        list(checked_hvp_impls(case))
    for case in make_jac_cases(tiny=True):
        list(checked_jac_impls(case))
    targets = []
    if args.check:
        print("checks (benchmark sizes):")
        for case in make_mlp_cases():
            list(checked_hvp_impls(case))
        for case in make_jac_cases():
            list(checked_jac_impls(case))
    else:
        print("checks (benchmark sizes) and timing:")
        hvp_results = {case.name: bench_hvp_case(case, target, repeats) for case in make_mlp_cases()}
        jac_results = {case.name: bench_jac_case(case, target, repeats) for case in make_jac_cases()}

        print(f"\n(a) Hessian-vector products\n{'case':<33} {'impl':<22} {'time/call':>11} "
              f"{'/own grad':>9} {'/codax.grad':>11}")
        for case_name, rows in hvp_results.items():
            for impl, r in rows.items():
                flag = "" if r["correct"] else "  WRONG"
                print(f"{case_name:<33} {impl:<22} {fmt_time(r['seconds']):>11} "
                      f"{fmt_ratio(r['vs_own_grad'])} {fmt_ratio(r['vs_codax_grad']):>11}{flag}")
        print(f"\n(b) Jacobians of tanh(A @ x), A: m x n\n{'case':<33} {'impl':<22} {'time/call':>11}")
        for case_name, rows in jac_results.items():
            for impl, r in rows.items():
                flag = "" if r["correct"] else "  WRONG"
                print(f"{case_name:<33} {impl:<22} {fmt_time(r['seconds']):>11}{flag}")

        targets = target_lines(hvp_results, jac_results)
    print_report(targets)

    if args.json and not args.check:
        write_json(args.json, args.quick, targets, hvp=hvp_results, jacobian=jac_results)
    return 1 if ERRORS else 0


if __name__ == "__main__":
    sys.exit(main())
