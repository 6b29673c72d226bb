"""jit on random programs: reductions without keepdims, element-wise work on
their results (row values), and the reduced axes put back in each spelling
that fusion recognizes. Each program runs jitted against NumPy, and, where it
returns no row value, fuses into the same kernels, with the same source, as
the program spelt with keepdims=True (its twin)."""
import importlib.util

import numpy as np
import pytest

import codax
from test_jit import kernel_text
from transformer.kernels import cuda

SEEDS = range(40)
# How each spelling puts back the axis that a reduction over axis 1 or 0 of
# a matrix took away.
PUT_BACK = {1: ['{}[:, None]', '{}[..., None]', '{}[:, np.newaxis]', 'np.expand_dims({}, -1)',
                'np.expand_dims({}, axis=1)', '{}.reshape(-1, 1)', 'np.reshape({}, (-1, 1))'],
            0: ['{}[None, :]', '{}[None]', '{}[np.newaxis, ...]', 'np.expand_dims({}, 0)',
                '{}.reshape(1, -1)']}
REDUCE = ['sum', 'mean', 'max', 'min', 'var', 'std']
# Work on row values: (expression, whether the result is positive).
ROW_UNARY = [('np.log(np.abs({}) + 1.0)', False), ('np.sqrt({0} * {0} + 1.0)', True),
             ('np.tanh({})', False), ('({} * 0.5 - 1.0)', False), ('(np.abs({}) + 1.0)', True),
             ('(1.0 / ({0} * {0} + 1.0))', True)]
ROW_BINARY = ['({} + {})', 'np.maximum({}, {})', '({} * {})']
ELEMENT_UNARY = ['np.tanh({})', 'np.sin({})', '({} * 0.5 + 0.25)', 'np.maximum({}, 0.0)']
ELEMENT_BINARY = ['({} + {})', '({} * {})', '({} - {})']


class _Program:
    """The lines of a random program and of its keepdims=True twin."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.lines, self.twin = [], []
        self.elements = ['x']              # names of values of x's shape
        self.rows = []                     # (expression, axis, positive)
        self.names = 0
        self.spellings = set()             # of PUT_BACK's, and 'work' for work put back
        for _ in range(self.rng.integers(3, 9)):
            self.step()
        if not self.rows:
            self.reduction()
        last = self.with_row(self.pick(self.elements))    # at least one put back
        self.row_output = self.rng.random() < 0.2 and self.rows[0][0].isidentifier()
        returned = f'{last}, {self.rows[0][0]}' if self.row_output else last
        self.lines.append(f'return {returned}')
        self.twin.append(f'return {returned}')

    def pick(self, items):
        return items[self.rng.integers(len(items))]

    def assign(self, expr, twin=None, name=None):
        if name is None:
            self.names += 1
            name = f'v{self.names}'
        self.lines.append(f'{name} = {expr}')
        self.twin.append(f'{name} = {twin or expr}')
        return name

    def step(self):
        kind = self.rng.random()
        if kind < 0.3 or not self.rows:
            self.reduction()
        elif kind < 0.55:
            self.row_work()
        else:
            self.element_work()

    def reduction(self):
        value, axis, op = self.pick(self.elements), int(self.rng.random() < 0.25), \
            self.pick(REDUCE)
        call = f'np.{op}({value}, axis={axis}'
        name = self.assign(call + ')', call + ', keepdims=True)')
        self.rows.append((name, axis, False))

    def row_work(self):
        """A new row value: named, or an expression put back where it is used
        (`np.log(s)[:, None]`)."""
        text, axis, positive = self.pick(self.rows)
        others = [r for r in self.rows if r[1] == axis]
        if self.rng.random() < 0.3:
            expr, positive = self.pick(ROW_BINARY).format(text, self.pick(others)[0]), False
        else:
            template, positive = self.pick(ROW_UNARY)
            expr = template.format(text)
        if self.rng.random() < 0.5:
            expr = self.assign(expr)
        self.rows.append((expr, axis, positive))

    def element_work(self):
        value, kind = self.pick(self.elements), self.rng.random()
        if kind < 0.25:
            expr = twin = self.pick(ELEMENT_UNARY).format(value)
        elif kind < 0.4:
            expr = twin = self.pick(ELEMENT_BINARY).format(value, self.pick(self.elements))
        else:
            expr, twin = self.with_row(value, assign=False)
        rebind = self.rng.random() < 0.2 and value != 'x'
        self.elements.append(self.assign(expr, twin, name=value if rebind else None))

    def with_row(self, value, assign=True):
        """`value` combined with a row value put back: the program's and the
        twin's expressions, or the name of a new value holding it."""
        text, axis, positive = self.pick(self.rows)
        spelling = self.pick(PUT_BACK[axis])
        self.spellings |= {spelling} | ({'work'} if not text.startswith('v') else set())
        back = spelling.format(text)
        ops = ['({} - {})', '({} * {})'] + ['({} / {})'] * positive
        op = self.pick(ops)
        expr, twin = op.format(value, back), op.format(value, text)
        return self.assign(expr, twin) if assign else (expr, twin)


def _text(lines):
    return 'def f(x):\n' + ''.join(f'    {line}\n' for line in lines)


def _module(folder, name, lines):
    """The function `f` of `lines`, written to a file (codax reads source)."""
    path = folder / f'{name}.py'
    path.write_text('import numpy as np\n\n\n' + _text(lines))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


@pytest.fixture(scope='module')
def programs(tmp_path_factory):
    """{seed: (program, f, twin)}"""
    folder = tmp_path_factory.mktemp('programs')
    out = {}
    for seed in SEEDS:
        program = _Program(seed)
        out[seed] = (program, _module(folder, f'program{seed}', program.lines),
                     _module(folder, f'twin{seed}', program.twin))
    return out


@pytest.mark.filterwarnings('ignore::RuntimeWarning')
@pytest.mark.parametrize('seed', SEEDS)
def test_random_program_matches_numpy_and_its_keepdims_twin(programs, seed):
    program, f, twin = programs[seed]
    rng = np.random.default_rng(seed)
    for shape, dtype in (((7, 33), np.float64), ((7, 33), np.float32), ((4, 1), np.float64)):
        x = rng.normal(size=shape).astype(dtype)
        got, want = codax.jit(f)(x), f(x)
        got, want = (got, want) if program.row_output else ((got,), (want,))
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype, _text(program.lines)
            tol = 1e-4 if dtype == np.float32 else 1e-11
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol * max(1.0, np.max(np.abs(w))),
                                       err_msg=_text(program.lines))
    if program.row_output:                 # the twin would return the row with its axis
        return
    x = np.ones((7, 33))
    for backend in ('numpy', 'cupy'):
        kinds = [k.kind for k in codax.jit(f).kernels(x, backend=backend)]
        assert kinds == [k.kind for k in codax.jit(twin).kernels(x, backend=backend)], \
            _text(program.lines)
        assert kernel_text(f, (x,), backend) == kernel_text(twin, (x,), backend), \
            _text(program.lines)


def test_random_programs_cover_the_put_back_shapes(programs):
    """The generator makes what the test is for: work on row values put
    back, every spelling, and row-wise kernels."""
    used = set().union(*[program.spellings for program, _, _ in programs.values()])
    assert used == {'work'} | set(PUT_BACK[0]) | set(PUT_BACK[1])
    x = np.ones((7, 33))
    kinds = {k.kind for _, f, _ in programs.values() for k in codax.jit(f).kernels(x)}
    assert kinds == {'rowwise', 'reduction', 'elementwise'}


def test_random_programs_cuda_kernels_compile(programs):
    if cuda.find_nvcc() is None:
        pytest.skip('nvcc not found (PATH, /usr/local/cuda/bin): CUDA compile checks skipped')
    x = np.ones((7, 33), np.float32)
    cuda.check_compiles([k for _, f, _ in programs.values()
                         for k in codax.jit(f).kernels(x, backend='cupy')])
