"""Golden tests: the generated gradient source of five representative
functions (tests/golden_functions.py) is pinned byte for byte in
tests/golden/<name>.py.

A change in the transformer that alters the generated code makes these fail
with a unified diff. If the change is intended, regenerate the files with

    CODAX_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py

and review the diff of tests/golden/ before committing.

The header line of generated source carries a specialization counter (`#3`)
that depends on how many functions were compiled before in the process; it is
replaced by `#N` on both sides before comparing.
"""
import difflib
import os
import re
import subprocess
import sys

import pytest

import codax
from golden_functions import GOLDEN

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN_DIR = os.path.join(HERE, 'golden')
REGENERATE = os.environ.get('CODAX_REGENERATE_GOLDEN', '') not in ('', '0')
REGEN_HINT = ('If this change to the generated code is intended, regenerate the golden '
              'files with\n    CODAX_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py\n'
              'and review `git diff tests/golden/`.')

_COUNTER = re.compile(r'#\d+')


def normalize(source):
    """Replace the order-dependent counter on the header line by `#N`."""
    head, sep, rest = source.partition('\n')
    return _COUNTER.sub('#N', head) + sep + rest


def generated(name):
    fn, make_args = GOLDEN[name]
    return normalize(codax.grad(fn).source(*make_args()))


def golden_path(name):
    return os.path.join(GOLDEN_DIR, name + '.py')


def _read(path):
    with open(path, 'r', encoding='utf-8', newline='') as fh:
        return fh.read()


def _diff(want, got, name):
    return ''.join(difflib.unified_diff(
        want.splitlines(True), got.splitlines(True),
        fromfile=f'tests/golden/{name}.py (stored)', tofile=f'{name} (generated now)'))


def test_normalize_header_only():
    src = '# codax: grad(f) float #17, generated from f (m.py:2)\ndef grad_f(x):\n    # #5\n'
    assert normalize(src) == ('# codax: grad(f) float #N, generated from f (m.py:2)\n'
                              'def grad_f(x):\n    # #5\n')
    assert normalize(normalize(src)) == normalize(src)


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_golden_source(name):
    got = generated(name)
    path = golden_path(name)
    if REGENERATE:
        os.makedirs(GOLDEN_DIR, exist_ok=True)
        with open(path, 'w', encoding='utf-8', newline='') as fh:
            fh.write(got)
        return
    if not os.path.exists(path):
        pytest.fail(f'no golden file {path} for {name!r}.\n{REGEN_HINT}', pytrace=False)
    want = normalize(_read(path))
    if got != want:
        pytest.fail(f'generated source of grad({name}) differs from tests/golden/{name}.py:\n'
                    f'{_diff(want, got, name)}\n{REGEN_HINT}', pytrace=False)


def test_every_golden_file_has_a_function():
    """A stale file left behind after renaming a function is an error."""
    stored = {f[:-3] for f in os.listdir(GOLDEN_DIR) if f.endswith('.py')}
    assert stored <= set(GOLDEN), f'golden files without a function: {sorted(stored - set(GOLDEN))}'


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_golden_source_is_valid_python(name):
    compile(_read(golden_path(name)), golden_path(name), 'exec')


@pytest.mark.parametrize('name', sorted(GOLDEN))
def test_generated_code_gives_the_gradient(name):
    """The pinned code is also correct (so a regeneration cannot pin a wrong answer)."""
    from helpers import check_grad
    fn, make_args = GOLDEN[name]
    check_grad(fn, *make_args())


def test_generation_is_deterministic_across_processes():
    """A fresh interpreter (new hash seed, new ids, cold caches) generates the
    same text as this process, twice in a row."""
    name = 'branch_on_data'
    in_process = generated(name)
    assert generated(name) == in_process          # cached: same text again
    script = ('import sys, codax, golden_functions as G\n'
              f'fn, make_args = G.GOLDEN[{name!r}]\n'
              'sys.stdout.write(codax.grad(fn).source(*make_args()))\n')
    outs = []
    for seed in ('0', '12345'):
        env = dict(os.environ, PYTHONHASHSEED=seed,
                   PYTHONPATH=os.pathsep.join([ROOT, HERE, os.environ.get('PYTHONPATH', '')]))
        proc = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(normalize(proc.stdout))
    assert outs[0] == outs[1], _diff(outs[0], outs[1], name)
    assert outs[0] == in_process, _diff(in_process, outs[0], name)
