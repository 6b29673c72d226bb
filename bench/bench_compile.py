#!/usr/bin/env python
"""Benchmark compile time: the first call of nested transformations.

    python bench/bench_compile.py [--quick] [--json PATH]

codax generates source for every function a nested derivative needs (a
third derivative of a loop with a helper call compiles ~150 of them), so
the first call is dominated by compiling. Each case runs in a fresh
process (nothing cached) and reports the CPU time of its first call:

- codax as shipped;
- codax with Python's cyclic garbage collector left running while it
  compiles (an ablation of Cache.compiling, which pauses it);
- `jax.jit` of the same transformation in JAX, whose first call traces and
  compiles with XLA (when JAX is installed; float64).

Every codax result is checked against JAX's (or, without JAX, against the
ablation run) before it is reported. See bench/README.md.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each case: the function (NumPy source, run under codax and, with jnp for np,
# under JAX), the transformation, and the argument.
CASES = {
    'hessian of a loop': (
        'def f(x):\n'
        '    s = 0.0\n'
        '    for i in range(4):\n'
        '        s = s + np.sum(np.sin(x * (i + 1)) ** 2)\n'
        '    return s\n',
        'hessian', 'np.linspace(0.1, 0.9, 5)'),
    'third derivative through a helper': (
        'def power(x, n):\n'
        '    return x ** n\n'
        'def f(x):\n'
        '    s = 0.0\n'
        '    for i in range(3):\n'
        '        s = s + power(x, i + 1)\n'
        '    return np.sum(np.sin(s))\n',
        'jacfwd(jacfwd(jacrev', 'np.array([0.3, -0.7, 1.1])'),
    'per-example gradients of an MLP': (
        'def f(params, x):\n'
        '    W1, W2 = params\n'
        '    h = np.tanh(x @ W1)\n'
        '    return np.sum(np.tanh(h @ W2) ** 2)\n',
        'vmap(grad', '((np.ones((8, 16)) * 0.1, np.ones((16, 4)) * 0.1), np.ones((32, 8)))'),
}

_RUNNER = r'''
import sys, time, json, gc
sys.path.insert(0, {root!r})
mode = {mode!r}
if mode == 'jax':
    import jax
    jax.config.update('jax_enable_x64', True)
    import jax.numpy as np
    T = jax
else:
    import numpy as np
    import codax as T
    if mode == 'collector running':
        from codax.cache import Cache
        Cache.compiling = lambda self: self.lock      # the lock alone: gc runs
{source}
args = {args}
kind = {kind!r}
if kind == 'vmap(grad':
    g = T.vmap(T.grad(f), in_axes=(None, 0))
elif kind == 'jacfwd(jacfwd(jacrev':
    g = T.jacfwd(T.jacfwd(T.jacrev(f)))
else:
    g = T.hessian(f)
if mode == 'jax':
    g = jax.jit(g)
if not isinstance(args, tuple) or kind != 'vmap(grad':
    args = (args,)
t = time.process_time()
out = g(*args)
out = jax.tree_util.tree_map(lambda a: a.block_until_ready(), out) if mode == 'jax' else out
elapsed = time.process_time() - t
import numpy
leaves = out if isinstance(out, tuple) else (out,)
print(json.dumps({{'seconds': elapsed,
                   'values': [numpy.asarray(a).ravel().tolist() for a in leaves]}}))
'''


def run(case, mode):
    source, kind, args = CASES[case]
    code = _RUNNER.format(root=str(ROOT), mode=mode, source=source, args=args, kind=kind)
    with tempfile.TemporaryDirectory() as folder:      # (codax reads the source file)
        script = Path(folder) / 'case.py'
        script.write_text(code)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONHASHSEED='0'))
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr else 'failed'
    return json.loads(done.stdout.strip().splitlines()[-1]), None


def _close(a, b):
    import numpy
    return all(numpy.allclose(x, y, rtol=1e-6, atol=1e-9) for x, y in zip(a, b))


def main():
    quick = '--quick' in sys.argv
    repeats = 1 if quick else 3
    modes = ['codax', 'collector running', 'jax']
    results, failed = {}, False
    for case in CASES:
        results[case] = {}
        for mode in modes:
            times, values, error = [], None, None
            for _ in range(repeats):
                out, error = run(case, mode)
                if out is None:
                    break
                times.append(out['seconds'])
                values = out['values']
            results[case][mode] = {'seconds': sorted(times)[len(times) // 2] if times else None,
                                   'values': values, 'error': error}
        reference = results[case]['jax']['values'] or results[case]['collector running']['values']
        ours = results[case]['codax']['values']
        if ours is None or reference is None or not _close(ours, reference):
            print(f'!! {case}: codax result missing or differs from the reference')
            failed = True
    print(f'{"case":36s} {"codax":>9s} {"gc running":>11s} {"jax.jit":>9s}   ratios')
    for case, row in results.items():
        cells = [row[m]['seconds'] for m in modes]
        text = ' '.join(f'{c:9.2f}s' if c is not None else f'{"n/a":>10s}' for c in cells)
        base = cells[0]
        ratios = ', '.join(f'{m} {c / base:.2f}x' for m, c in zip(modes[1:], cells[1:])
                           if c is not None and base)
        print(f'{case:36s} {text}   ({ratios} of codax)')
        for m in modes:
            if row[m]['error']:
                print(f'   {m}: {row[m]["error"]}')
    if '--json' in sys.argv:
        path = sys.argv[sys.argv.index('--json') + 1]
        Path(path).write_text(json.dumps({c: {m: r[m]['seconds'] for m in modes}
                                          for c, r in results.items()}, indent=2))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
