"""The CUDA back end (transformer/kernels/cuda.py, runtime/kernels/cuda.py) on
hand-built Kernel records: every translation unit compiles with nvcc for sm_80
and sm_90, every expression builds its CuPy kernel without a GPU, and, with
one (`pytest -m gpu`), every kernel agrees with NumPy."""
import copy
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import runtime
from transformer.kernels import Kernel, Reduction, RowReduction, Step, Value
from transformer.kernels import cuda

# `import cupy` creates its kernel cache folder: keep it out of the home directory.
os.environ.setdefault('CUPY_CACHE_DIR', os.path.join(tempfile.gettempdir(), 'codax-cupy-cache'))

F8, F4, I4, I8 = (np.dtype(t) for t in ('float64', 'float32', 'int32', 'int64'))
B1, U1 = np.dtype('bool'), np.dtype('uint8')


def arr(name, dtype):
    return Value(name, name, dtype)


def num(name, dtype):
    return Value(name, name, dtype, scalar=True)


def reduce_kernel(name, inputs, steps, op, value, dtype, axis, keepdims, ndim):
    return Kernel(name, inputs, (arr('out', dtype),), steps,
                  reduction=Reduction(op, value, dtype, axis, keepdims, ndim))


# Each case: the kernel, NumPy's answer from the inputs, and the inputs (a shape
# and dtype for an array, a number for a Python scalar).
CASES = {
    'chain': (
        Kernel('chain', (arr('x', F8), arr('y', F8)), (arr('out', F8),),
               (Step('t1', F8, 'tanh(x)'), Step('t2', F8, 't1 * y'), Step('t3', F8, 't2 - 1.5')),
               results=(('out', 't3'),), comment='f.py:3  z = np.tanh(x) * y - 1.5'),
        lambda x, y: np.tanh(x) * y - 1.5,
        dict(x=((64, 33), F8), y=((33,), F8))),
    'multi_output': (
        Kernel('multi_output', (arr('x', F8), arr('y', F8)),
               (arr('s', F8), arr('p', F8), arr('gt', B1)),
               (Step('t1', F8, 'x + y'), Step('t2', F8, 'x * y'), Step('t3', B1, 'x > y')),
               results=(('s', 't1'), ('p', 't2'), ('gt', 't3'))),
        lambda x, y: (x + y, x * y, x > y),
        dict(x=((1000,), F8), y=((1000,), F8))),
    'float32_literals': (
        Kernel('float32_literals', (arr('x', F4),), (arr('out', F4),),
               (Step('t1', F4, 'x * 2.0f'), Step('t2', F4, 't1 + 0.5f'),
                Step('t3', F4, 'tanh(t2)')),
               results=(('out', 't3'),)),
        lambda x: np.tanh(x * np.float32(2) + np.float32(0.5)),
        dict(x=((4097,), F4))),
    'int_to_double': (
        Kernel('int_to_double', (arr('k', I4), arr('m', I8)), (arr('out', F8),),
               (Step('t1', F8, '(double)k'), Step('t2', F8, '(double)m'),
                Step('t3', F8, 't1 * 0.5 + t2')),
               results=(('out', 't3'),)),
        lambda k, m: k * 0.5 + m,
        dict(k=((300,), I4), m=((300,), I8))),
    'scalar_inputs': (
        Kernel('scalar_inputs', (arr('x', F8), num('s', F8), num('c', I8)), (arr('out', F8),),
               (Step('t1', F8, 'x * s'), Step('t2', F8, 't1 + (double)c')),
               results=(('out', 't2'),)),
        lambda x, s, c: x * s + c,
        dict(x=((7, 5), F8), s=0.25, c=3)),
    # Reductions over every axis: the two-pass RawModule.
    'sum_xy': (
        reduce_kernel('sum_xy', (arr('x', F4), arr('y', F4)), (Step('t1', F4, 'x * y'),),
                      'sum', 't1', F4, None, False, 1),
        lambda x, y: np.sum(x * y),
        dict(x=((100003,), F4), y=((100003,), F4))),
    'mean_keepdims': (
        reduce_kernel('mean_keepdims', (arr('x', F8),), (Step('t1', F8, 'x * x'),),
                      'mean', 't1', F8, (0, 1), True, 2),
        lambda x: np.mean(x * x, keepdims=True),
        dict(x=((300, 70), F8))),
    'max_full': (
        reduce_kernel('max_full', (arr('x', F4), num('s', F8)),
                      (Step('t1', F4, 'tanh(x) * (float)s'),), 'max', 't1', F4, None, False, 2),
        lambda x, s: np.max(np.tanh(x) * np.float32(s)),
        dict(x=((513, 9), F4), s=-2.0)),
    'min_int': (
        reduce_kernel('min_int', (arr('k', I4),), (), 'min', 'k', I4, None, False, 1),
        lambda k: np.min(k),
        dict(k=((5000,), I4))),
    'prod_full': (
        reduce_kernel('prod_full', (arr('x', F8),), (Step('t1', F8, '1.0 + 0.001 * x'),),
                      'prod', 't1', F8, None, False, 1),
        lambda x: np.prod(1.0 + 0.001 * x),
        dict(x=((2000,), F8))),
    'any_full': (
        reduce_kernel('any_full', (arr('x', F8),), (Step('t1', B1, 'x > 2.5'),),
                      'max', 't1', B1, None, False, 1),
        lambda x: np.max(x > 2.5),
        dict(x=((3000,), F8))),
    'count_full': (
        reduce_kernel('count_full', (arr('x', F8),), (Step('t1', I8, '(long long)(x > 0.0)'),),
                      'sum', 't1', I8, None, False, 1),
        lambda x: np.sum(x > 0),
        dict(x=((3001,), F8))),
    'min_uint8': (
        reduce_kernel('min_uint8', (arr('u', U1),), (), 'min', 'u', U1, None, False, 1),
        lambda u: np.min(u),
        dict(u=((999,), U1))),
    # Reductions over some axes: cupy.ReductionKernel.
    'row_sum': (
        reduce_kernel('row_sum', (arr('x', F4), arr('y', F4)), (Step('t1', F4, 'x * y'),),
                      'sum', 't1', F4, (1,), False, 2),
        lambda x, y: np.sum(x * y, axis=1),
        dict(x=((64, 1000), F4), y=((1000,), F4))),
    'col_mean_scalar': (
        reduce_kernel('col_mean_scalar', (arr('x', F8), num('s', F8)),
                      (Step('t1', F8, 'x - s'),), 'mean', 't1', F8, (0,), True, 2),
        lambda x, s: np.mean(x - s, axis=0, keepdims=True),
        dict(x=((500, 40), F8), s=0.5)),
    'row_max': (
        reduce_kernel('row_max', (arr('x', F8),), (Step('t1', F8, 'exp(x)'),),
                      'max', 't1', F8, (1,), False, 2),
        lambda x: np.max(np.exp(x), axis=1),
        dict(x=((33, 257), F8))),
    'row_max_ab': (     # a and b are also the names of ReductionKernel's macro parameters
        reduce_kernel('row_max_ab', (arr('a', F8), arr('b', F8)), (Step('t1', F8, 'a * b'),),
                      'max', 't1', F8, (1,), False, 2),
        lambda a, b: np.max(a * b, axis=1),
        dict(a=((12, 34), F8), b=((12, 34), F8))),
    'min_axes': (
        reduce_kernel('min_axes', (arr('x', F4),), (), 'min', 'x', F4, (0, 2), False, 3),
        lambda x: np.min(x, axis=(0, 2)),
        dict(x=((6, 7, 8), F4))),
    'row_prod': (
        reduce_kernel('row_prod', (arr('x', F8),), (Step('t1', F8, '1.0 + 0.01 * x'),),
                      'prod', 't1', F8, (1,), False, 2),
        lambda x: np.prod(1.0 + 0.01 * x, axis=1),
        dict(x=((20, 300), F8))),
    'max_uint8_axis': (
        reduce_kernel('max_uint8_axis', (arr('u', U1),), (), 'max', 'u', U1, (1,), True, 2),
        lambda u: np.max(u, axis=1, keepdims=True),
        dict(u=((10, 100), U1))),
    # Variances: two passes, the mean and then the squared deviations.
    'var_full': (
        Kernel('var_full', (arr('x', F4),), (arr('out', F4),), (Step('t1', F4, 'x * 2.0f'),),
               reduction=Reduction('var', 't1', F4, None, False, 2)),
        lambda x: np.var(x * np.float32(2)),
        dict(x=((300, 701), F4))),
    'std_axis_ddof': (
        Kernel('std_axis_ddof', (arr('x', F8), num('s', F8)), (arr('out', F8),),
               (Step('t1', F8, 'x + s'),),
               reduction=Reduction('std', 't1', F8, (0,), True, 2, 1)),
        lambda x, s: np.std(x + s, axis=0, keepdims=True, ddof=1),
        dict(x=((500, 40), F8), s=1e4)),
    # Row-wise kernels: a warp or a block a row.
    'softmax_rows': (
        Kernel('softmax_rows', (arr('x', F8),), (arr('out', F8), arr('lse', F8)), (
            RowReduction('m', 'max', 'x', F8, True, 2),
            Step('d', F8, 'x - m', ('x', 'm')), Step('e', F8, 'exp(d)', ('d',)),
            RowReduction('s', 'sum', 'e', F8, True, 2),
            Step('r', F8, 'e / s', ('e', 's')), Step('l', F8, 'm + log(s)', ('m', 's'))),
            (('out', 'r'), ('lse', 'l')), trailing=1),
        lambda x: (np.exp(x - x.max(-1, keepdims=True))
                   / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True),
                   x.max(-1, keepdims=True)
                   + np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))),
        dict(x=((100, 33), F8))),
    'layer_norm_rows': (
        Kernel('layer_norm_rows', (arr('x', F4), arr('g', F4), arr('b', F4), num('eps', F8)),
               (arr('out', F4), arr('sd', F4)), (
            RowReduction('mu', 'mean', 'x', F4, True, 2),
            RowReduction('v', 'var', 'x', F4, True, 2),
            Step('r', F4, 'rsqrt(v + (float)eps)', ('v', 'eps')),
            Step('y', F4, '(x - mu) * r * g + b', ('x', 'mu', 'r', 'g', 'b')),
            RowReduction('sdev', 'std', 'x', F4, False, 2, 1)),
            (('out', 'y'), ('sd', 'sdev')), trailing=1),
        lambda x, g, b, eps: ((x - x.mean(-1, keepdims=True))
                              / np.sqrt(x.var(-1, keepdims=True) + np.float32(eps)) * g + b,
                              x.std(-1, ddof=1)),
        dict(x=((64, 3000), F4), g=((3000,), F4), b=((3000,), F4), eps=1e-5)),
    'int_rows_2d': (     # two trailing axes, integers, a min and a count
        Kernel('int_rows_2d', (arr('k', I4),), (arr('out', I8), arr('lo', I4)), (
            Step('pos', I8, '(long long)(k > 50)', ('k',)),
            RowReduction('count', 'sum', 'pos', I8, True, 3),
            RowReduction('low', 'min', 'k', I4, False, 3),
            Step('z', I8, '(long long)k * count', ('k', 'count'))),
            (('out', 'z'), ('lo', 'low')), trailing=2),
        lambda k: (k * np.sum((k > 50).astype(np.int64), axis=(1, 2), keepdims=True),
                   np.min(k, axis=(1, 2))),
        dict(k=((5, 6, 7), I4))),
}
KERNELS = [kernel for kernel, _, _ in CASES.values()]


def test_kinds_cover_every_path():
    kinds = {name: cuda.expression(kernel).split('(')[0] for name, (kernel, _, _) in CASES.items()}
    assert kinds['chain'] == 'rt.kernels.cuda.elementwise'
    assert kinds['sum_xy'] == kinds['mean_keepdims'] == 'rt.kernels.cuda.full_reduction'
    assert kinds['row_sum'] == 'rt.kernels.cuda.reduction'
    assert kinds['var_full'] == 'rt.kernels.cuda.full_reduction'
    assert kinds['std_axis_ddof'] == 'rt.kernels.cuda.var_reduction'
    assert kinds['softmax_rows'] == kinds['int_rows_2d'] == 'rt.kernels.cuda.rowwise'


# ---------------------------------------------------------------- (a) nvcc

def test_translation_units_compile_for_sm80_and_sm90():
    if cuda.find_nvcc() is None:
        pytest.skip('nvcc not found (PATH, /usr/local/cuda/bin): the CUDA compile check '
                    'needs the CUDA toolkit')
    cuda.check_compiles(KERNELS)


def test_check_compiles_names_the_broken_kernel():
    if cuda.find_nvcc() is None:
        pytest.skip('nvcc not found: the CUDA compile check needs the CUDA toolkit')
    broken = Kernel('broken', (arr('x', F8),), (arr('out', F8),),
                    (Step('t1', F8, 'no_such_function(x)'),), results=(('out', 't1'),))
    with pytest.raises(cuda.CompileError,
                       match=r'(?s)001_broken\.cu \(sm_90\).*no_such_function'):
        cuda.check_compiles([CASES['chain'][0], broken], archs=('sm_90',))


# ---------------------------------------------------------------- (b) text and construction

CHAIN_EXPRESSION = """\
rt.kernels.cuda.elementwise(
    'chain', 'float64 x, float64 y', 'float64 out',
    operation=r'''
// f.py:3  z = np.tanh(x) * y - 1.5
double t1 = tanh(x);
double t2 = t1 * y;
double t3 = t2 - 1.5;
out = t3;
''')"""


def test_elementwise_expression_text_is_pinned():
    assert cuda.expression(CASES['chain'][0]) == CHAIN_EXPRESSION


def test_reduction_expression_names_op_axis_and_types():
    text = cuda.expression(CASES['row_max'][0])
    assert text.startswith("rt.kernels.cuda.reduction(\n"
                           "    'row_max', 'float64 x', 'float64 out',\n"
                           "    op='max', axis=(1,), keepdims=False,\n")
    assert "reduce_expr='(a > b || isnan(a)) ? a : b'" in text
    assert "identity='-__longlong_as_double(0x7ff0000000000000LL)', reduce_type='double'" in text


def test_a_and_b_name_values_outside_reduction_outputs():
    assert "map_expr='_codax_map(a, b)'" in cuda.expression(CASES['row_max_ab'][0])


def test_comments_cannot_swallow_code():
    kernel = CASES['chain'][0]
    kernel = Kernel(kernel.name, kernel.inputs, kernel.outputs, kernel.steps, kernel.results,
                    comment='f.py:3  z = x \\')
    assert '// f.py:3  z = x\ndouble t1' in cuda.expression(kernel)


@pytest.mark.parametrize('name', CASES)
def test_text_is_deterministic(name):
    kernel = CASES[name][0]
    again = copy.deepcopy(kernel)
    assert cuda.expression(kernel) == cuda.expression(again)
    assert cuda.translation_unit(kernel) == cuda.translation_unit(again)


@pytest.fixture(scope='module')
def cupy_module():
    return pytest.importorskip('cupy', reason='CuPy is not installed')


def build(kernel, fallback=None):
    """What generated code does: evaluate the kernel's expression (a row-wise
    kernel's `fallback`, NumPy's functions on CuPy arrays, runs the calls it
    leaves: a few very long rows)."""
    return eval(cuda.expression(kernel, 'fallback'), {'rt': runtime, 'fallback': fallback})


@pytest.mark.parametrize('name', CASES)
def test_expression_builds_a_cupy_kernel_without_a_gpu(cupy_module, name):
    kernel = CASES[name][0]
    built = build(kernel)
    assert build(kernel) is built       # memoized: generated code may rebuild it each call
    if kernel.trailing:
        assert isinstance(built, runtime.kernels.cuda.RowKernel)
        assert isinstance(built.kernel, cupy_module.RawKernel)
        assert built.kernel.name == kernel.name and built.trailing == kernel.trailing
    elif kernel.reduction is None:
        assert isinstance(built, cupy_module.ElementwiseKernel)
        assert (built.nin, built.nout) == (len(kernel.inputs), len(kernel.outputs))
    elif isinstance(built, runtime.kernels.cuda.FullReduction):
        assert isinstance(built.pass1, cupy_module.RawKernel)
        assert built.pass2.name == f'{kernel.name}_finish'
    elif isinstance(built, runtime.kernels.cuda.AxisVariance):
        assert isinstance(built.mean, cupy_module.ReductionKernel)
        assert isinstance(built.deviation, cupy_module.ReductionKernel)
    else:
        assert isinstance(built.kernel, cupy_module.ReductionKernel)
        assert built.axis == kernel.reduction.axis


def test_importing_the_runtime_leaves_cupy_alone():
    code = ('import sys, runtime; runtime.kernels.cuda; '
            "assert 'cupy' not in sys.modules, 'runtime imported cupy'")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, '-c', code], cwd=root, check=True)


def copy_out(inputs, local, steps=()):
    """An element-wise kernel writing `local` to its one output."""
    return Kernel('bad', inputs, (arr('out', F8),), steps, (('out', local),))


@pytest.mark.parametrize('kernel, message', [
    (copy_out((arr('i', F8),), 'i'), "'i'"),
    (copy_out((arr('_x', F8),), '_x'), "'_x'"),
    (copy_out((arr('int', F8),), 'int'), "'int'"),
    (copy_out((arr('x', np.float16),), 'x'), 'float16'),
    (copy_out((arr('exp', F8),), 't', (Step('t', F8, 'exp(exp)'),)), 'exp'),
    (copy_out((arr('x', F8), arr('x', F8)), 'x'), 'twice'),
    (copy_out((num('s', F8),), 's'), 'array'),
    (Kernel('bad', (arr('x', F8),), (arr('out', F8),), ()), 'each output'),
    (reduce_kernel('bad', (arr('x', F8),), (), 'median', 'x', F8, None, False, 1), 'median'),
    (Kernel('bad', (arr('x', F8),), (arr('out', F8),),
            (RowReduction('m', 'median', 'x', F8, True, 2),), (('out', 'm'),), trailing=1),
     'median'),
    (Kernel('bad', (arr('x', F8),), (arr('out', F8),),
            (RowReduction('m', 'max', 'x', F8, True, 2),
             RowReduction('s', 'sum', 'm', F8, True, 2)),
            (('out', 's'),), trailing=1), 'not an element value'),
    (reduce_kernel('bad', (arr('x', F8),), (), 'sum', 'y', F8, None, False, 1), 'y'),
    (reduce_kernel('bad', (arr('isnan', F8),), (), 'max', 'isnan', F8, None, False, 1), 'isnan'),
    (Kernel('bad', (arr('x', F8),), (arr('a', F8),), (),
            reduction=Reduction('sum', 'x', F8, (0,), False, 2)), "'a'"),
])
def test_bad_records_fail_loudly(kernel, message):
    with pytest.raises(ValueError, match=message):
        cuda.expression(kernel)


# ---------------------------------------------------------------- (c) on a GPU

@pytest.fixture(scope='module')
def cp():
    cupy = pytest.importorskip('cupy', reason='CuPy is not installed')
    if not cupy.cuda.is_available():
        pytest.skip('needs a CUDA GPU (cupy.cuda.is_available() is False)')
    return cupy


def make_inputs(specs, seed=0):
    rng = np.random.default_rng(seed)
    values = []
    for spec in specs.values():
        if not isinstance(spec, tuple):
            values.append(spec)
        elif spec[1].kind == 'f':
            values.append(rng.standard_normal(spec[0]).astype(spec[1]))
        else:
            values.append(rng.integers(0, 100, spec[0]).astype(spec[1]))
    return values


def to_device(cp, values):
    return [cp.asarray(v) if isinstance(v, np.ndarray) else v for v in values]


def assert_matches(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g = g.get()
        assert g.shape == np.shape(w) and g.dtype == np.asarray(w).dtype
        rtol = 1e-4 if g.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)


@pytest.mark.gpu
@pytest.mark.parametrize('name', CASES)
def test_kernel_matches_numpy(cp, name):
    kernel, reference, specs = CASES[name]
    values = make_inputs(specs)
    assert_matches(build(kernel)(*to_device(cp, values)), reference(*values))


def test_rowwise_text_is_one_raw_kernel_with_64_bit_rows():
    text = cuda.expression(CASES['softmax_rows'][0], '_softmax_numpy')
    assert text.startswith("rt.kernels.cuda.rowwise(\n    'softmax_rows', 'float64 x', "
                           "'float64 out, float64 lse',\n    trailing=1, program=")
    assert 'fallback=_softmax_numpy' in text
    code = cuda.translation_unit(CASES['softmax_rows'][0])
    assert code.count('__global__') == 1 and code.count('// pass ') == 3
    assert 'long long _row' in code and '_row * _rs_x + _j * _cs_x' in code
    assert '_codax_row_max_float64' in code and '_codax_row_sum_float64' in code
    var = cuda.translation_unit(CASES['layer_norm_rows'][0])
    assert 'double _q1 = 0.0;' in var and 'const double _mean1 = _a1 / (double)_cols;' in var


def test_the_rowwise_runtime_merges_axes_or_copies():
    merged = runtime.kernels.cuda._merged_stride
    assert merged((4, 5), (5, 1)) == 1 and merged((4, 5), (0, 0)) == 0
    assert merged((4, 1, 5), (5, 99, 1)) == 1 and merged((), ()) == 0
    assert merged((4, 5), (1, 4)) is None                 # transposed: a copy
    assert merged((3, 4), (8, 2)) == 2                    # every other column


# ---------------------------------------------------------------- (c) on a GPU (continued below)

@pytest.mark.gpu
@pytest.mark.parametrize('size', [0, 1, 31, 1024, 1 << 20, 3 * (1 << 20) + 7])
def test_full_reduction_sizes(cp, size):
    kernel, reference, _ = CASES['sum_xy']
    x, y = make_inputs(dict(x=((size,), F4), y=((size,), F4)))
    assert_matches(build(kernel)(cp.asarray(x), cp.asarray(y)), reference(x, y))


@pytest.mark.gpu
def test_full_reduction_is_reproducible(cp):
    x, y = to_device(cp, make_inputs(dict(x=((1 << 22,), F4), y=((1 << 22,), F4))))
    sums = [build(CASES['sum_xy'][0])(x, y).get() for _ in range(3)]
    assert sums[0].tobytes() == sums[1].tobytes() == sums[2].tobytes()


@pytest.mark.gpu
def test_full_reduction_broadcasts_and_follows_strides(cp):
    """RawKernels ignore strides: a transposed view, a row to broadcast and a
    one-element array must all read as NumPy reads them."""
    kernel = reduce_kernel('sum_bcast', (arr('x', F8), arr('y', F8), arr('z', F8)),
                           (Step('t1', F8, 'x * y + z'),), 'sum', 't1', F8, None, False, 2)
    x, y, z = make_inputs(dict(x=((40, 30), F8), y=((40,), F8), z=((), F8)))
    got = build(kernel)(cp.asarray(x).T, cp.asarray(y), cp.asarray(z))
    assert_matches(got, np.sum(x.T * y + z))


@pytest.mark.gpu
def test_max_of_nothing_raises_as_numpy_does(cp):
    for name, shape in (('max_full', (0, 3)), ('row_max', (4, 0))):
        kernel = CASES[name][0]
        args = [cp.zeros(shape, kernel.inputs[0].dtype)] + [1.0] * (len(kernel.inputs) - 1)
        with pytest.raises(ValueError, match='zero-size array'):
            build(kernel)(*args)


@pytest.mark.gpu
def test_nan_propagates_through_max_and_min(cp):
    x = np.arange(5000, dtype=np.float32)
    x[4321] = np.nan
    assert np.isnan(build(CASES['max_full'][0])(cp.asarray(x), 1.0).get())
    rows = np.ones((3, 257))
    rows[1, 200] = np.nan
    got = build(CASES['row_max'][0])(cp.asarray(rows)).get()
    assert np.isnan(got[1]) and not np.isnan(got[0]) and not np.isnan(got[2])


@pytest.mark.gpu
def test_full_reduction_past_2_to_the_31(cp):
    """64-bit indices: a sum over 2^31 + 5 one-byte elements."""
    kernel = reduce_kernel('count_big', (arr('b', B1),), (Step('t1', I8, '(long long)b'),),
                           'sum', 't1', I8, None, False, 1)
    b = cp.ones((1 << 31) + 5, dtype=bool)
    assert int(build(kernel)(b).get()) == (1 << 31) + 5


@pytest.mark.gpu
@pytest.mark.parametrize('shape', [(1, 1), (7, 1), (5, 3), (1000, 33), (3, 1024), (3, 1025),
                                   (2, 70000), (300, 5000)])
def test_rowwise_kernels_on_every_row_length(cp, shape):
    """Rows of one element, odd lengths, the warp/block boundary (1024) and
    long rows, as NumPy; and a few very long rows (the NumPy fallback)."""
    kernel, reference, _ = CASES['softmax_rows']
    x, = make_inputs(dict(x=(shape, F8)))
    assert_matches(build(kernel, reference)(cp.asarray(x)), reference(x))
    kernel, reference, _ = CASES['layer_norm_rows']
    x, g, b = make_inputs(dict(x=(shape, F4), g=(shape[-1:], F4), b=(shape[-1:], F4)))
    with np.errstate(all='ignore'):
        want = reference(x, g, b, 1e-5)
    got = build(kernel, reference)(cp.asarray(x), cp.asarray(g), cp.asarray(b), 1e-5)
    for g_, w in zip(got, want):
        np.testing.assert_allclose(g_.get(), w, rtol=1e-4, atol=1e-4, equal_nan=True)


@pytest.mark.gpu
def test_rowwise_kernels_follow_strides_and_broadcasts(cp):
    kernel, reference, _ = CASES['layer_norm_rows']
    x, g, b = make_inputs(dict(x=((80, 600), F4), g=((600,), F4), b=((1, 600), F4)))
    for view in (lambda a: a, lambda a: a[::-1, ::2], lambda a: a[:, ::-1],
                 lambda a: cp.asfortranarray(a) if isinstance(a, cp.ndarray) else a):
        xs = view(x)
        got = build(kernel, _no_fallback)(view(cp.asarray(x)), cp.asarray(g)[:xs.shape[1]],
                                          cp.asarray(b)[:, :xs.shape[1]], 1e-5)
        want = reference(xs, g[:xs.shape[1]], b[:, :xs.shape[1]], 1e-5)
        for g_, w in zip(got, want):
            np.testing.assert_allclose(g_.get(), w, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_rowwise_and_variance_are_reproducible_and_stable(cp):
    x = cp.asarray(1e4 + make_inputs(dict(x=((64, 5000), F8)))[0])
    kernel = CASES['softmax_rows'][0]
    runs = [build(kernel)(x - 1e4)[1].get() for _ in range(3)]
    assert runs[0].tobytes() == runs[1].tobytes() == runs[2].tobytes()
    sd = build(CASES['layer_norm_rows'][0])(x.astype(F4), cp.ones(5000, F4), cp.zeros(5000, F4),
                                             1e-5)[1].get()
    np.testing.assert_allclose(sd, np.std(x.get().astype(F4).astype(F8), axis=-1, ddof=1),
                               rtol=1e-5)
    full = build(CASES['var_full'][0])(x.astype(F4)).get()
    np.testing.assert_allclose(full, 4 * np.var(x.get().astype(F4).astype(F8)), rtol=1e-5)


@pytest.mark.gpu
def test_rowwise_rows_past_2_to_the_31_elements(cp):
    """64-bit offsets: row sums over 200 rows of 2^24 + 1 one-byte elements
    (enough rows for the kernel, not the fallback, on any GPU up to 200
    multiprocessors)."""
    kernel = Kernel('count_rows', (arr('b', B1),), (arr('out', I8),), (
        Step('one', I8, '(long long)b', ('b',)), RowReduction('n', 'sum', 'one', I8, False, 2)),
        (('out', 'n'),), trailing=1)
    b = cp.ones((200, (1 << 24) + 1), dtype=bool)
    b[-1, -1] = False
    assert build(kernel, _no_fallback)(b).get().tolist() == [(1 << 24) + 1] * 199 + [1 << 24]


def _no_fallback(*args):
    raise AssertionError('the row-wise kernel left the call to its fallback')
