"""The CPU back end (transformer/kernels/c.py, runtime/kernels/cpu.py) on
hand-built Kernel records: each is compiled with the system C compiler and run
on random inputs against NumPy, contiguous and in every broadcast and stride
pattern (bias, column, outer, 3-d, transposed, sliced, negative strides, 0-d,
empty), never leaving those calls to the fallback (`_refuse`, and the
runtime's counters say so); what the C loop does not serve goes to the
fallback; the disk cache, the memo and a missing compiler behave, and so do
compilers running in the background: several at once, a compile error at
the first call, two threads making it, a fork or an exit meanwhile.

`check_kernels(pairs)` is the check for any list of (Kernel, NumPy function)
pairs, e.g. every kernel the test corpus generates. Measured errors against
NumPy (this machine, glibc 2.36 libmvec, 10^6 elements): float64 below 3e-16
of the largest magnitude (2.5e-11 element by element, where terms cancel),
float32 below 2e-7; the tolerances (RTOL) leave room for other libms.
"""
import collections
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import runtime
from runtime.kernels import cpu
from transformer.kernels import Kernel, Reduction, RowReduction, Step, Value, c

pytestmark = pytest.mark.skipif(cpu._compiler() is None, reason='no C compiler (cc, gcc, clang)')

F8, F4, I4, I8, B1 = (np.dtype(t) for t in ('float64', 'float32', 'int32', 'int64', 'bool'))
RTOL = {F8: 1e-12, F4: 2e-6}
BIG = (c.PARALLEL // 400 + 1, 400)             # enough elements for threads


# ------------------------------------------------------------------ helpers
def arr(name, dtype=F8):
    return Value(name, name, dtype)


def num(name, dtype=F8):
    return Value(name, name, dtype, scalar=True)


def elementwise(name, inputs, steps, results):
    """A Kernel whose outputs are named after the locals they return."""
    steps = tuple(Step(*step) for step in steps)
    types = {step.name: step.dtype for step in steps}
    outputs = tuple(arr(f'{local}_out', types[local]) for local in results)
    return Kernel(name, tuple(inputs), outputs, steps,
                  tuple((f'{local}_out', local) for local in results))


def build(kernel, fallback):
    """What generated code does: evaluate the kernel's expression."""
    return eval(c.expression(kernel, 'fallback'), {'rt': runtime, 'fallback': fallback})


def _refuse(*args):
    raise AssertionError('the compiled kernel declined a call it should serve')


def random_inputs(kernel, shape, rng):
    """One random argument per input: normal floats, small nonzero integers
    (so no C division by zero), Python numbers for scalars."""
    args = []
    for value in kernel.inputs:
        dtype = np.dtype(value.dtype)
        if dtype.kind == 'f':
            data = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == 'b':
            data = rng.random(shape) < 0.5
        else:
            data = rng.integers(1, 6, shape).astype(dtype)
        args.append(data.flat[0].item() if value.scalar else data)
    return args


def assert_close(got, want, dtype):
    """Relative to the largest magnitude: sums of terms cancel near zero."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape,
                                                                 got.dtype, want.dtype)
    if dtype.kind != 'f':
        np.testing.assert_array_equal(got, want)
        return
    finite = np.isfinite(want)
    scale = np.max(np.abs(want[finite]), initial=1.0)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               equal_nan=True)


def check_kernels(pairs, shape=(37, 1000), seed=0):
    """Compile each Kernel of `pairs` ((Kernel, NumPy function of the same
    inputs) pairs, such as a generated module's `_<name>` kernels and their
    `_<name>_numpy` fallbacks) for the CPU and compare it with the function on
    random inputs of `shape` (its last axes, for a reduction of lower rank),
    contiguous and then broadcast and strided (see _other_layouts); raises
    AssertionError naming the kernels that disagree, do not compile or leave
    a call to the fallback. Returns the names of the kernels C cannot run
    (c.unsupported)."""
    rng = np.random.default_rng(seed)
    failures, skipped, built = [], [], []
    small, cpu.SMALL_CALLS = cpu.SMALL_CALLS, False      # every call the C loop serves in C
    try:
        for kernel, reference in pairs:
            if c.unsupported(kernel):
                skipped.append(kernel.name)
            else:
                built.append((kernel, reference, build(kernel, _refuse)))
        failures = _compare(built, shape, rng)
    finally:
        cpu.SMALL_CALLS = small
    assert not failures, '\n'.join(failures)
    return skipped


def _compare(built, shape, rng):
    """check_kernels' comparisons: the failures, as lines."""
    failures = []
    for kernel, reference, f in built:     # built first, all: their compilers ran at once
        ndim = len(shape) if kernel.reduction is None else kernel.reduction.ndim
        if kernel.trailing:          # the rank its reductions were generated for
            ndim = max(r.ndim for r in kernel.steps if isinstance(r, RowReduction))
        args = random_inputs(kernel, ((3,) * ndim + shape)[len(shape):], rng)
        calls = [args]
        if not kernel.partial:       # else an output may have a smaller shape than C's
            calls.append(_other_layouts(kernel, args))
        try:
            for call in calls:
                got = f(*call)
                with np.errstate(all='ignore'):          # NaN from log(-1), as in C
                    want = reference(*call)
                got, want = (got, want) if len(kernel.outputs) > 1 else ((got,), (want,))
                for g, w, out in zip(got, want, kernel.outputs):
                    assert_close(g, w, np.dtype(out.dtype))
        except AssertionError as error:
            failures.append(f'{kernel.name}: {error}')
    return failures


def _other_layouts(kernel, args):
    """The array arguments as views the C loop gathers: where there are two
    or more, the first is cut to its last axis (a bias, broadcast; not for a
    row-wise kernel, whose reductions might then reduce fewer rows); the others
    in turn reversed on every axis (negative strides) and in Fortran order."""
    arrays = [k for k, v in enumerate(kernel.inputs) if not v.scalar and np.ndim(args[k]) > 0]
    args = list(args)
    for turn, k in enumerate(arrays):
        a = args[k]
        if turn == 0 and len(arrays) > 1 and not kernel.trailing:   # rows keep their shapes
            args[k] = a[(0,) * (a.ndim - 1)]
        elif turn % 2 == (len(arrays) > 1):
            args[k] = np.flip(a)
        else:
            args[k] = np.asfortranarray(a)
    return args


@pytest.fixture(scope='module', autouse=True)
def cache_dir(tmp_path_factory):
    """A fresh disk cache for this module (so the tests compile, once each),
    and every call the C loop serves run as C, however small."""
    path = str(tmp_path_factory.mktemp('codax-cache'))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('CODAX_CACHE_DIR', path)
        patch.setattr(cpu, 'SMALL_CALLS', False)
        yield path


# ------------------------------------------------------------------ kernels
TANH_GRAD = elementwise('tanh_grad', [arr('g'), arr('x')], [
    ('t', F8, 'tanh(x)'), ('t2', F8, 't * t'), ('u', F8, '1.0 - t2'),
    ('v', F8, '2.0 * t'), ('w', F8, 'v * u'), ('bx', F8, 'g * w')], ['bx'])


def tanh_grad(g, x):
    t = np.tanh(x)
    return g * (2.0 * t * (1.0 - t * t))


POLY = elementwise('poly', [arr('x')], [
    ('a', F8, '3.0 * (x * x * x)'), ('b', F8, '2.0 * (x * x)'), ('s', F8, 'sin(x)'),
    ('e', F8, 'exp(-x)'), ('p', F8, 'a + b - 5.0 * x + 1.5 * s * e')], ['p'])


def poly(x):
    return 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1.5 * np.sin(x) * np.exp(-x)


FLOAT32 = elementwise('float32_chain', [arr('x', F4)], [
    ('t', F4, 'tanh(x * 2.0f + 0.5f)'), ('y', F4, 't * t - exp(-x) * 0.25f')], ['y'])


def float32_chain(x):
    t = np.tanh(x * np.float32(2) + np.float32(0.5))
    return t * t - np.exp(-x) * np.float32(0.25)


INTS = elementwise('ints', [arr('k', I4), arr('p', I8)], [
    ('q', F8, '(double)k / (double)p'), ('r', F8, 'sqrt(q)'), ('s', I8, '(long long)k * p + 3LL')],
    ['r', 's'])


def ints(k, p):
    return np.sqrt(k / p), k * p + 3


SCALARS = elementwise('scalars', [arr('x'), num('a'), num('k', I8)], [
    ('y', F8, 'a * x + (double)k')], ['y'])


def scalars(x, a, k):
    return a * x + k


MULTI = elementwise('multi', [arr('x'), arr('y')], [
    ('s', F8, 'x + y'), ('p', F8, 'x * y'), ('gt', B1, 'x > y')], ['s', 'p', 'gt'])


def multi(x, y):
    return x + y, x * y, x > y


PAIRS = [(TANH_GRAD, tanh_grad), (POLY, poly), (FLOAT32, float32_chain), (INTS, ints),
         (SCALARS, scalars), (MULTI, multi)]


def reduction(op, axis, dtype=F8, keepdims=False, ndim=2):
    """`op` of tanh(x) * y over `axis` of a value of rank `ndim`."""
    name = f'{op}_{"all" if axis is None else "last"}_{dtype.name}'
    result = F8 if op in ('mean', 'var', 'std') and dtype.kind != 'f' else dtype
    first = 'tanh(x)' if dtype.kind == 'f' else 'x'
    return Kernel(name, (arr('x', dtype), arr('y', dtype)), (arr('r_out', result),),
                  (Step('t', dtype, first), Step('v', dtype, 't * y')),
                  reduction=Reduction(op, 'v', result, axis, keepdims, ndim))


def numpy_reduction(op, axis, keepdims):
    return lambda x, y: getattr(np, op)((np.tanh(x) if x.dtype.kind == 'f' else x) * y,
                                        axis=axis, keepdims=keepdims)


# -------------------------------------------------------------------- tests
def test_every_kernel_agrees_with_numpy():
    reductions = [(reduction(op, axis), numpy_reduction(op, axis, False))
                  for op, axis in (('sum', (1,)), ('max', None))]
    assert check_kernels(PAIRS + reductions) == []
    assert check_kernels(PAIRS, shape=(7,)) == []        # below one block


def test_size_one_arrays_broadcast_in_c():
    f = build(TANH_GRAD, _refuse)
    x = np.random.default_rng(1).standard_normal(BIG)
    for g in (np.array(1.5), np.full((1, 1), 1.5), np.float64(1.5), 1.5):
        assert_close(f(g, x), tanh_grad(g, x), F8)
    assert_close(f(x[:1, :1], np.array([[0.3]])), tanh_grad(x[:1, :1], 0.3), F8)


def test_special_values_as_in_numpy():
    names = ['tanh', 'exp', 'log', 'sqrt', 'sin', 'log1p', 'pow']
    kernel = elementwise('special', [arr('x')], [
        (f'y_{name}', F8, f'{name}(x, 3.5)' if name == 'pow' else f'{name}(x)') for name in names],
        [f'y_{name}' for name in names])
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e300, -1e300, 710.0, -750.0, 5e-324]
    x = np.resize(np.array(special), 3000)              # in vector lanes and the tail
    with np.errstate(all='ignore'):
        got = build(kernel, _refuse)(x)
        want = [np.power(x, 3.5) if name == 'pow' else getattr(np, name)(x) for name in names]
    for name, g, w in zip(names, got, want):
        np.testing.assert_allclose(g, w, rtol=1e-15, atol=0, equal_nan=True, err_msg=name)


def test_zero_d_results_are_scalars_as_in_numpy():
    out = build(TANH_GRAD, _refuse)(np.array(2.0), np.array(0.5))
    assert type(out) is np.float64 and out == tanh_grad(2.0, 0.5)


def test_scalar_inputs_by_value():
    f = build(SCALARS, _refuse)
    x = np.linspace(-1, 1, 50)
    for a, k in ((2.5, 3), (np.float64(2.5), np.int64(3)), (2, True)):
        assert_close(f(x, a, k), scalars(x, a, k), F8)
    # A float for an integer, or an integer int64 cannot hold: NumPy decides.
    calls = []
    f = build(SCALARS, lambda *args: calls.append(args) or 0)
    f(x, 1.0, 2.5)
    f(x, 1.0, 2 ** 70)
    assert len(calls) == 2


@pytest.mark.parametrize('op', ['sum', 'mean', 'max', 'min', 'prod', 'var', 'std'])
@pytest.mark.parametrize('axis', [None, (1,)])
def test_reductions(op, axis):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(BIG)
    y = rng.standard_normal(BIG)
    if op == 'prod':                # tanh(x) = 1, y near 1: the product neither
        x, y = 20 + x, 1 + 0.001 * y    # overflows nor underflows
    for keepdims in (False, True):
        f = build(reduction(op, axis, keepdims=keepdims), _refuse)
        want = numpy_reduction(op, axis, keepdims)
        for shape in (BIG, (3, 5), (1, 1), (1, 2000)):
            a, b = x[:shape[0], :shape[1]].copy(), y[:shape[0], :shape[1]].copy()
            got = f(a, b)
            assert type(got) is type(want(a, b))                 # float64 scalar or array
            assert_close(got, want(a, b), F8)


@pytest.mark.parametrize('op', ['max', 'min'])
def test_max_and_min_propagate_nan(op):
    x = np.random.default_rng(3).standard_normal((64, 3000))
    x[5, 7] = np.nan
    for axis in (None, (1,)):
        got = build(reduction(op, axis), _refuse)(x, np.ones_like(x))
        assert_close(got, numpy_reduction(op, axis, False)(x, np.ones_like(x)), F8)


def test_float32_sums_accumulate_in_double():
    x = np.random.default_rng(4).standard_normal(10 ** 6).astype(F4).reshape(1000, 1000)
    y = np.ones_like(x)
    exact = np.sum(np.tanh(x.astype(F8)))
    got = build(reduction('sum', None, F4), _refuse)(x, y)
    assert got.dtype == F4 and abs(got - exact) <= 1e-6 * np.sum(np.abs(np.tanh(x)))


def test_integer_reductions():
    x = np.arange(-50, 50, dtype=I8).reshape(4, 25)
    for op in ('sum', 'max', 'min', 'mean', 'var'):
        got = build(reduction(op, (1,), I8), _refuse)(x, np.full_like(x, 3))
        assert_close(got, getattr(np, op)(x * 3, axis=-1), got.dtype)
    u = np.arange(200, 250, dtype=np.uint8).reshape(2, 25)
    for op in ('max', 'min'):                    # identities 0 and UINT8_MAX
        got = build(reduction(op, None, u.dtype), _refuse)(u, np.ones_like(u))
        assert got == getattr(np, op)(u)


def test_dtypes_without_c_type():
    half = Kernel('half', (arr('x', np.dtype('float16')),), (arr('y_out', F8),),
                  (Step('y', F8, '(double)x'),), (('y_out', 'y'),))
    assert 'float16' in c.unsupported(half)


# ------------------------------------------- broadcasting and strides in C
def _layouts(ra, rb, m=40, k=30):
    """(name, a, b): pairs of arrays that broadcast together, in every
    pattern and layout the C loop serves; `ra(*shape)` and `rb(*shape)` make
    fresh arrays for a and b, which are views of them."""
    yield from [
        ('bias (k,)', ra(m, k), rb(k)),
        ('column (m, 1)', ra(m, k), rb(m, 1)),
        ('outer (1, k) x (m, 1)', ra(1, k), rb(m, 1)),
        ('row (1, k)', ra(1, k), rb(m, k)),
        ('3-d (a, b, c) with (b, 1)', ra(3, m, k), rb(m, 1)),
        ('3-d (a, 1, c) with (b, c)', ra(3, 1, k), rb(m, k)),
        ('3-d (1, b, 1) with (a, 1, c)', ra(1, m, 1), rb(3, 1, k)),
        ('3-d broadcast both ways, strided', ra(3, 2 * m, 1)[:, ::2], rb(2 * m, k)[::-2]),
        ('transposed', ra(k, m).T, rb(m, k)),
        ('both transposed, 3-d', ra(k, m, 3).transpose(2, 1, 0), rb(3, k, m).transpose(0, 2, 1)),
        ('Fortran order', np.asfortranarray(ra(m, k)), rb(m, k)),
        ('sliced with steps', ra(2 * m, 3 * k)[::2, 1::3], rb(3 * m, 2 * k)[1::3, ::2]),
        ('sliced contiguous rows', ra(m, 2 * k)[:, :k], rb(m, k)),
        ('negative strides', ra(m, k)[::-1, ::-1], rb(k)[::-1]),
        ('negative column stride, (m, 1)', ra(m, k)[:, ::-2], rb(m, 2)[::-1, :1]),
        ('a size-1 array adds axes', ra(1, 1, 1), rb(m, k)),
        ('long rows (k > BLOCK)', ra(5, 2500)[:, ::-1], rb(2500)),
        ('rows of BLOCK / 2 .. BLOCK', ra(7, 600), rb(7, 1)),
        ('big, bias', ra(*BIG), rb(BIG[1])),
        ('big, transposed', ra(BIG[1], BIG[0]).T, rb(BIG[0], 1)),
        ('0-d and strided', ra(), rb(m, k)[::3, ::-1]),
        ('0-d', ra(), rb()),
        ('empty (0, k) with (k,)', ra(0, k), rb(k)),
        ('empty (m, 0) with (m, 1)', ra(m, 0), rb(m, 1)),
        ('empty strided', ra(m, k)[:, 5:5], rb(1, 1)),
    ]


def test_every_broadcast_and_stride_runs_in_c():
    """Element-wise kernels (float64, ints, several outputs) on every layout:
    as NumPy, never the fallback, and the inputs unchanged."""
    rng = np.random.default_rng(7)
    before = sum(cpu.FALLBACKS.values())
    tested = 0
    for kernel, reference in ((TANH_GRAD, tanh_grad), (MULTI, multi), (INTS, ints)):
        makers = [lambda *shape, t=np.dtype(v.dtype): (rng.standard_normal(shape) if t.kind == 'f'
                                                        else rng.integers(1, 6, shape)).astype(t)
                  for v in kernel.inputs]
        f = build(kernel, _refuse)
        for name, a, b in _layouts(*makers):
            copies = [np.copy(a), np.copy(b)]
            got, want = f(a, b), reference(a, b)
            got, want = (got, want) if len(kernel.outputs) > 1 else ((got,), (want,))
            for g, w, out in zip(got, want, kernel.outputs):
                assert type(g) is type(w), name
                assert_close(g, w, np.dtype(out.dtype))
            np.testing.assert_array_equal(a, copies[0])
            np.testing.assert_array_equal(b, copies[1])
            tested += 1
        assert f.fallbacks == 0
    assert tested == 3 * 25 and sum(cpu.FALLBACKS.values()) == before


@pytest.mark.parametrize('op', ['sum', 'mean', 'max', 'min', 'prod', 'var', 'std'])
def test_reductions_of_broadcasts_and_strides_run_in_c(op):
    """The reduction's value broadcast from operands in every layout, over the
    last axis, all axes, and the last two of a 3-d value; as NumPy."""
    rng = np.random.default_rng(8)
    normal = lambda *shape: rng.standard_normal(shape)            # noqa: E731
    for name, a, b in _layouts(normal, normal):
        if op == 'prod':              # factors near 1: no overflow or underflow
            a, b = 20 + np.asarray(a), 1 + 0.001 * np.asarray(b)
        ndim = np.broadcast(a, b).ndim
        shape = np.broadcast(a, b).shape
        for axis in {None, (ndim - 1,) if ndim else None, (1, 2) if ndim == 3 else None}:
            if np.prod(shape[len(shape) - (ndim if axis is None else len(axis)):]) == 0:
                continue              # an empty reduction: NumPy's error or warning
            for keepdims in (False, True):
                f = build(reduction(op, axis, keepdims=keepdims, ndim=ndim), _refuse)
                got, want = f(a, b), numpy_reduction(op, axis, keepdims)(a, b)
                assert type(got) is type(want), name
                assert_close(got, want, F8)


def _random_view(rng, shape):
    """Random data of `shape` as a view: axes permuted, sliced with steps of
    1, 2, 3, -1 or -2 out of a larger array."""
    order = rng.permutation(len(shape))
    inner = [shape[k] for k in np.argsort(order)]          # transposed back to `shape`
    steps = [int(rng.choice([1, 2, 3, -1, -2])) for _ in inner]
    base = rng.standard_normal([n * abs(step) + int(rng.integers(0, 3))
                                for n, step in zip(inner, steps)])
    view = base[tuple(slice(None, None, step) for step in steps)]
    return view[tuple(slice(0, n) for n in inner)].transpose(order)


def test_random_broadcasts_and_strides_as_numpy():
    """Random ranks 0-4, lengths (1 and 0 among them), broadcasts and views;
    element-wise and reductions over trailing axes, never the fallback."""
    rng = np.random.default_rng(11)
    f = build(TANH_GRAD, _refuse)
    for _ in range(300):
        ndim = int(rng.integers(0, 5))
        shape = [int(rng.choice([0, 1, 2, 3, 7, 40, 600, 1100])) for _ in range(ndim)]
        while math.prod(shape) > 30000:
            shape[int(np.argmax(shape))] //= 8
        a, b = (_random_view(rng, tuple(n if rng.random() < 0.6 else 1
                                        for n in shape[ndim - int(rng.integers(0, ndim + 1)):]))
                for _ in range(2))
        copies = a.copy(), b.copy()
        assert_close(f(a, b), tanh_grad(a, b), F8)
        np.testing.assert_array_equal(a, copies[0])
        np.testing.assert_array_equal(b, copies[1])
        shape = np.broadcast(a, b).shape                  # the value's, for a reduction
        ndim = len(shape)
        reduced = int(rng.integers(1, ndim + 1)) if ndim else 0
        if reduced and math.prod(shape[ndim - reduced:]):
            axis = tuple(range(ndim - reduced, ndim))
            op, keepdims = str(rng.choice(['sum', 'max', 'mean'])), bool(rng.random() < 0.5)
            r = build(reduction(op, axis, keepdims=keepdims, ndim=ndim), _refuse)
            assert_close(r(a, b), numpy_reduction(op, axis, keepdims)(a, b), F8)


def _softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=-1, keepdims=True)


def _dense(x, W, b):
    return np.tanh(x @ W + b)


def _layer_norm(x, g, b):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return g * (x - mu) / np.sqrt(var + 1e-5) + b


def test_jitted_broadcast_chains_run_in_c():
    """Softmax ((m, k) with (m, 1)), a dense layer's bias ((k,)) and layer
    norm, jitted, on contiguous and transposed inputs: every fused kernel
    runs as C (no call counted in cpu.FALLBACKS), as NumPy computes them."""
    import codax
    rng = np.random.default_rng(10)
    x, W = rng.standard_normal((64, 100)), rng.standard_normal((100, 50))
    cases = [(_softmax, (x,)), (_softmax, (x.T,)), (_softmax, (x[::-2, ::3],)),
             (_dense, (x, W, rng.standard_normal(50))),
             (_layer_norm, (x, rng.standard_normal(100), rng.standard_normal(100))),
             (_layer_norm, (x.T[::-1], rng.standard_normal(64)[::-1], rng.standard_normal(64)))]
    for fn, args in cases:
        jitted = codax.jit(fn)
        before = sum(cpu.FALLBACKS.values())
        np.testing.assert_allclose(jitted(*args), fn(*args), rtol=1e-12, atol=1e-12)
        assert jitted.__codax_transformed__._specialize(args, 'numpy')[0].generated.kernels
        assert sum(cpu.FALLBACKS.values()) == before, fn.__name__


def test_a_big_strided_row_reduction_shares_the_row_between_threads():
    x = np.random.default_rng(9).standard_normal(4 * c.PARALLEL)
    for op in ('sum', 'max'):
        f = build(reduction(op, None, ndim=1), _refuse)
        assert_close(f(x[::-2], x[:2 * c.PARALLEL]),
                     numpy_reduction(op, None, False)(x[::-2], x[:2 * c.PARALLEL]), F8)


def test_operands_merge_axes_and_read_in_place():
    """The runtime's plan: contiguous arrays read directly (step 1), size-1
    ones filled (0), others gathered (-1) over the result's axes, with axes
    of length 1 dropped and runs contiguous for every gathered array merged;
    memoized by shapes and strides."""
    x, b = np.ones((4, 5, 6)), np.ones(6)

    def plan(*arrays):
        found = cpu._plan(arrays)
        if not found:
            return found
        shape, size, steps, geometry = found
        return shape, steps, geometry and geometry[0].tolist()   # {ndim, shape, strides}
    assert plan(x, b) == ((4, 5, 6), [1, -1], [2, 20, 6, 0, 0, 0, 1])
    assert plan(np.ones((3, 1)), x[:, :1]) == ((4, 3, 6), [-1, -1],
                                               [3, 4, 3, 6, 0, 1, 0, 30, 0, 1])
    wide = np.ones((4, 5, 12))[:, :, ::2]                        # strides 60, 12, 2
    assert plan(wide, b[::-1]) == ((4, 5, 6), [-1, -1], [2, 20, 6, 12, 2, 0, -1])
    assert plan(np.ones((1, 1, 1)), b) == ((1, 1, 6), [0, 1], None)
    assert plan(x, x[:, :2]) is False                            # NumPy raises
    f = build(TANH_GRAD, _refuse)
    f(x, b)
    f(x + 1, b - 1)
    assert list(f.plans) == [(((4, 5, 6), (240, 48, 8)), ((6,), (8,)))]
    assert cpu.MAX_NDIM <= c.MAX_NDIM


def test_what_the_c_loop_does_not_serve_runs_the_fallback(monkeypatch):
    calls = []

    def fallback(g, x):
        calls.append(1)
        return tanh_grad(g, x)
    f = build(TANH_GRAD, fallback)
    x = np.random.default_rng(5).standard_normal((40, 30))
    misaligned = np.ndarray((40, 30), F8, np.zeros(40 * 30 * 8 + 1, np.uint8).data, offset=1)
    misaligned[...] = x
    cases = [(x.astype(F4), x),              # another dtype
             ([[1.5]], x),                   # not an array
             (misaligned, x),                # not aligned
             (misaligned[::2], x[::2])]
    for g, a in cases:
        assert_close(f(g, a), tanh_grad(np.asarray(g), a), F8)
    with pytest.raises(ValueError, match='broadcast'):    # NumPy's own error
        f(x, x[:, :7])
    before = cpu.FALLBACKS['tanh_grad']
    monkeypatch.setattr(cpu, 'MAX_NDIM', 1)                   # more axes than gathers take
    assert_close(f(x[:, :1], x), tanh_grad(x[:, :1], x), F8)
    assert_close(f(x[:, 0], x[:, 0]), tanh_grad(x[:, 0], x[:, 0]), F8)       # 1 axis: C
    assert len(calls) == len(cases) + 2 and f.fallbacks == len(calls)
    assert cpu.FALLBACKS['tanh_grad'] == before + 1


def test_reductions_the_c_loop_does_not_do():
    lead = Kernel('lead', (arr('x'),), (arr('r_out'),), (Step('t', F8, 'tanh(x)'),),
                  reduction=Reduction('sum', 't', F8, (0,), False, 2))
    assert 'trailing' in c.unsupported(lead)
    assert c.expression(lead, 'fallback') == 'fallback'
    calls = []
    f = build(reduction('sum', (1,)), lambda *a: calls.append(1) or 0.0)
    f(np.ones((2, 3, 4)), np.ones((2, 3, 4)))                   # rank 3, not 2
    f(np.ones((4, 0)), np.ones((4, 0)))                         # empty rows: NumPy's answer
    assert len(calls) == 2 and f.fallbacks == 2
    assert f(np.ones((0, 4)), np.ones(4)).shape == (0,)         # no rows: C
    assert len(calls) == 2


def test_inputs_are_not_modified():
    rng = np.random.default_rng(6)
    for kernel, reference in PAIRS:
        args = random_inputs(kernel, (3000,), rng)
        before = [np.copy(a) for a in args]
        build(kernel, _refuse)(*args)
        for a, b in zip(args, before):
            np.testing.assert_array_equal(a, b)


def test_name_clashes_fall_back():
    for names in (['x', 'x_b'], ['x', 'rows']):
        clash = elementwise('clash', [arr(name) for name in names],
                            [('y', F8, ' + '.join(names))], ['y'])
        assert c.unsupported(clash) and c.expression(clash, 'fallback') == 'fallback'


def test_expression_is_deterministic_and_readable():
    text = c.expression(TANH_GRAD, '_tanh_grad_numpy')
    assert text == c.expression(TANH_GRAD, '_tanh_grad_numpy')
    assert text.startswith("rt.kernels.cpu.kernel(r'''\n/* codax fused kernel tanh_grad")
    assert text.endswith("inputs=('float64[]', 'float64[]'), outputs=('float64',), "
                         "fallback=_tanh_grad_numpy)")
    source = c.function_source(TANH_GRAD)
    assert 'double tanh(double);' in source and '#pragma omp simd' in source
    for source in (source, c.function_source(reduction('max', (1,)))):
        assert max(map(len, source.splitlines())) <= 100
    assert 'tanh' in c.unsupported(elementwise('clash', [arr('x')], [('tanh', F8, 'tanh(x)')],
                                               ['tanh']))


def test_memo_and_disk_cache(monkeypatch, cache_dir):
    build(POLY, _refuse)                                        # compiled before, or now
    monkeypatch.setattr(cpu, '_compile', lambda *a: pytest.fail('compiled again'))
    first = build(POLY, _refuse).function
    assert build(POLY, _refuse).function is first               # the memo
    monkeypatch.setattr(cpu, '_FUNCTIONS', {})
    assert build(POLY, _refuse).function is not None            # the disk cache
    # Another process finds it on disk too.
    script = ('import runtime, sys; from runtime.kernels import cpu; from tests.test_kernels_cpu '
              'import POLY, build, _refuse\n'
              'cpu._compile = lambda *a: sys.exit("compiled again")\n'
              'build(POLY, _refuse)')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, '-c', script], cwd=root, capture_output=True,
                         text=True, env={**os.environ, 'CODAX_CACHE_DIR': cache_dir})
    assert run.returncode == 0, run.stderr


def test_without_a_compiler_the_fallback_runs_with_one_warning(monkeypatch):
    monkeypatch.setenv('CC', '/nonexistent/cc')
    monkeypatch.setattr(cpu, '_FUNCTIONS', {})
    monkeypatch.setattr(cpu, '_WARNED', set())
    with pytest.warns(RuntimeWarning, match='no C compiler'):
        assert build(TANH_GRAD, tanh_grad) is tanh_grad
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert build(POLY, poly) is poly


def test_a_compile_error_warns_at_the_first_call_and_falls_back(monkeypatch):
    """The compiler runs in the background: construction says nothing, the
    first call warns (pointing at the caller) and runs the fallback, as do
    later calls, and a later construction returns the fallback itself."""
    broken = elementwise('broken', [arr('x')], [('y', F8, 'x +* 2')], ['y'])
    monkeypatch.setattr(cpu, '_WARNED', set())
    monkeypatch.setattr(cpu, '_FUNCTIONS', {})
    x = np.arange(3.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        f = build(broken, poly)
    assert isinstance(f, cpu._Compiling)
    with pytest.warns(RuntimeWarning, match='does not compile') as record:
        np.testing.assert_array_equal(f(x), poly(x))
    assert len(record) == 1 and record[0].filename == __file__
    assert 'error' in str(record[0].message)                   # the compiler's complaint
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        np.testing.assert_array_equal(f(x), poly(x))
        assert build(broken, poly) is poly
    assert f.fallbacks == 0 and f.function is None


def _fresh_cache(monkeypatch, tmp_path):
    """An empty disk cache and memo: every kernel built compiles."""
    monkeypatch.setenv('CODAX_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(cpu, '_FUNCTIONS', {})


def _cached(folder):
    """The libraries in `folder`, after asserting no temporary file is left."""
    names = os.listdir(folder)
    assert not [name for name in names if name.startswith('.building-')], names
    return sorted(name for name in names if name.endswith('.so'))


def test_the_disk_cache_keeps_the_libraries_used_last(monkeypatch, tmp_path):
    """CODAX_CACHE_KEEP=3: each new library trims the cache to the three used
    last (by modification time; loading one from disk touches it)."""
    _fresh_cache(monkeypatch, tmp_path)
    monkeypatch.setenv('CODAX_CACHE_KEEP', '3')
    kernels = [elementwise(f'keep{k}', [arr('x')], [('y', F8, f'x + {k}.0')], ['y'])
               for k in range(5)]
    x = np.ones(3)
    for k, kernel in enumerate(kernels[:3]):
        assert build(kernel, _refuse)(x)[0] == 1 + k
    now = time.time()
    for k, name in enumerate(_cached(tmp_path)):             # keep0, keep1, keep2: oldest first
        os.utime(tmp_path / name, (now - 100 + k, now - 100 + k))
    monkeypatch.setattr(cpu, '_FUNCTIONS', {})
    build(kernels[0], _refuse)                               # from disk: used now
    for kernel in kernels[3:]:
        build(kernel, _refuse)(x)
    assert [name.split('-')[0] for name in _cached(tmp_path)] == ['keep0', 'keep3', 'keep4']
    monkeypatch.setenv('CODAX_CACHE_KEEP', '0')                # never trims
    build(elementwise('keep5', [arr('x')], [('y', F8, 'x + 5.0')], ['y']), _refuse)(x)
    assert len(_cached(tmp_path)) == 4


def test_kernels_compile_at_once_and_each_first_call_waits_for_its_own(monkeypatch, tmp_path):
    """Construction starts the compilers and returns: JOBS run at once, the
    rest queue; a first call waits for its own library (the last kernel's
    jumps the queue), then the kernel is its plain class, as NumPy."""
    _fresh_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(cpu, 'JOBS', 2)
    for name, empty in [('_QUEUE', collections.deque()), ('_RUNNING', []), ('_STARTED', set())]:
        monkeypatch.setattr(cpu, name, empty)             # whatever other tests left
    started = time.perf_counter()
    built = [(build(kernel, _refuse), reference) for kernel, reference in PAIRS]
    took = time.perf_counter() - started
    assert all(isinstance(f, cpu._Compiling) for f, _ in built)
    assert len(cpu._RUNNING) == 2 and len(cpu._QUEUE) == len(PAIRS) - 2, took
    rng = np.random.default_rng(11)
    for (f, reference), (kernel, _) in reversed(list(zip(built, PAIRS))):
        args = random_inputs(kernel, (5, 7), rng)
        got, want = f(*args), reference(*args)
        got, want = (got, want) if len(kernel.outputs) > 1 else ((got,), (want,))
        for g, w, out in zip(got, want, kernel.outputs):
            assert_close(g, w, np.dtype(out.dtype))
        assert type(f) in (cpu.Elementwise, cpu.Reduction) and f.fallbacks == 0
    assert not cpu._RUNNING and not cpu._QUEUE and not cpu._STARTED
    assert len(_cached(tmp_path)) == len(PAIRS)


def test_two_threads_first_call_one_kernel(monkeypatch, tmp_path):
    _fresh_cache(monkeypatch, tmp_path)
    compiles = []
    start = cpu._compile
    monkeypatch.setattr(cpu, '_compile', lambda *a: compiles.append(a) or start(*a))
    f = build(TANH_GRAD, _refuse)
    g, x = np.random.default_rng(12).standard_normal((2, 300, 7))
    barrier, results = threading.Barrier(2), [None, None]

    def first(k):
        barrier.wait()
        results[k] = f(g, x)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        threads = [threading.Thread(target=first, args=(k,)) for k in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    for result in results:
        assert_close(result, tanh_grad(g, x), F8)
    assert len(compiles) == 1 and type(f) is cpu.Elementwise and f.fallbacks == 0
    assert build(TANH_GRAD, _refuse).function is f.function
    assert len(_cached(tmp_path)) == 1


def test_a_fork_while_compiling(monkeypatch, tmp_path):
    """The child builds again what its parent was compiling (or finds it on
    disk), never touching the parent's compiler or temporary file."""
    _fresh_cache(monkeypatch, tmp_path)
    f = build(POLY, _refuse)
    x = np.linspace(-2, 2, 50)
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if np.allclose(f(x), poly(x), rtol=1e-12, atol=1e-12) else 1)
        finally:
            os._exit(2)
    np.testing.assert_allclose(f(x), poly(x), rtol=1e-12, atol=1e-12)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            assert len(_cached(tmp_path)) == 1
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    pytest.fail('the forked child hung')


def test_compilers_running_at_exit_finish_into_the_cache(tmp_path):
    script = 'from tests.test_kernels_cpu import POLY, build, _refuse\nbuild(POLY, _refuse)'
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, '-c', script], cwd=root, capture_output=True,
                         text=True, env={**os.environ, 'CODAX_CACHE_DIR': str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert [name.split('-')[0] for name in _cached(tmp_path)] == ['poly']


def test_short_chains_run_numpy_on_few_elements(monkeypatch):
    """A kernel of at most SMALL_STEPS steps runs its NumPy function on calls
    of fewer than SMALL_CALL elements (not counted as a fallback), C from
    there on; longer chains, reductions and row-wise kernels always run C."""
    monkeypatch.setattr(cpu, 'SMALL_CALLS', True)
    calls = []
    short = elementwise('short_chain', [arr('x'), arr('y')], [
        ('p', F8, 'x * y'), ('q', F8, 'p + 1.0')], ['q'])
    assert f'numpy_below={c.SMALL_CALL}' in c.expression(short, 'fallback')
    assert 'numpy_below' not in c.expression(POLY, 'fallback')
    f = build(short, lambda x, y: calls.append(x.size) or x * y + 1.0)
    for n in (1, c.SMALL_CALL - 1, c.SMALL_CALL, 3 * c.SMALL_CALL):
        x = np.linspace(-1, 1, n)
        assert_close(f(x, x), x * x + 1.0, F8)       # C contracts to an FMA
    assert calls == [1, c.SMALL_CALL - 1] and f.fallbacks == 0
    g = build(POLY, _refuse)
    assert_close(g(np.ones(3)), poly(np.ones(3)), F8)


# ------------------------------------------------------------ row-wise kernels
def rows(name, inputs, items, results, trailing=1):
    """A row-wise Kernel: `items` are ('step', local, dtype, expr, reads) and
    ('reduce', local, op, value, dtype, keepdims, ndim[, ddof]) tuples;
    `results` the locals to output."""
    steps, types = [], {}
    for item in items:
        if item[0] == 'step':
            steps.append(Step(item[1], item[2], item[3], tuple(item[4])))
        else:
            steps.append(RowReduction(item[1], item[2], item[3], item[4], *item[5:]))
        types[item[1]] = np.dtype(item[2] if item[0] == 'step' else item[4])
    outputs = tuple(arr(f'{local}_out', types[local]) for local in results)
    return Kernel(name, tuple(inputs), outputs, tuple(steps),
                  tuple((f'{local}_out', local) for local in results), trailing=trailing)


def softmax_rows(dtype=F8, name='softmax_rows'):
    return rows(name, [arr('x', dtype)], [
        ('reduce', 'mx', 'max', 'x', dtype, True, 2),
        ('step', 'd', dtype, '(x - mx)', ['x', 'mx']),
        ('step', 'e', dtype, 'exp(d)', ['d']),
        ('reduce', 's', 'sum', 'e', dtype, True, 2),
        ('step', 'r', dtype, '(e / s)', ['e', 's']),
        ('step', 'lse', dtype, '(mx + log(s))', ['mx', 's'])], ['r', 'lse'])


def softmax_numpy(x):
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    s = np.sum(e, axis=-1, keepdims=True)
    return e / s, m + np.log(s)


# Layer norm with its statistics out: the mean, the variance (ddof 1, without
# keepdims) and the result, from x and per-column g and b.
LAYER_NORM_ROWS = rows('layer_norm_rows', [arr('x'), arr('g'), arr('b')], [
    ('reduce', 'mu', 'mean', 'x', F8, True, 2),
    ('reduce', 'v', 'var', 'x', F8, True, 2, 1),
    ('step', 'y', F8, '((x - mu) / sqrt(v + 1e-05) * g + b)', ['x', 'mu', 'v', 'g', 'b']),
    ('reduce', 'sd', 'std', 'x', F8, False, 2)], ['y', 'mu', 'sd'])


def layer_norm_numpy(x, g, b):
    mu = np.mean(x, axis=-1, keepdims=True)
    v = np.var(x, axis=-1, keepdims=True, ddof=1)
    return (x - mu) / np.sqrt(v + 1e-05) * g + b, mu, np.std(x, axis=-1)


# A number, integers, min and prod: per row the count of elements above t,
# the smallest k, and the product of 1 + x / 100, each element shifted by it.
COUNTS_ROWS = rows('counts_rows', [arr('x'), arr('k', I4), num('t')], [
    ('step', 'above', I8, '(long long)(x > t)', ['x', 't']),
    ('reduce', 'count', 'sum', 'above', I8, True, 2),
    ('reduce', 'lo', 'min', 'k', I4, True, 2),
    ('step', 'f', F8, '(1.0 + x / 100.0)', ['x']),
    ('reduce', 'p', 'prod', 'f', F8, True, 2),
    ('step', 'z', F8, '(x * p - (double)lo + (double)count)', ['x', 'p', 'lo', 'count'])],
    ['z', 'count'])


def counts_numpy(x, k, t):
    n = np.sum((x > t).astype(np.int64), axis=-1, keepdims=True)
    p = np.prod(1.0 + x / 100.0, axis=-1, keepdims=True)
    return x * p - np.min(k, axis=-1, keepdims=True) + n, n


ROW_PAIRS = [(softmax_rows(), softmax_numpy), (softmax_rows(F4, 'softmax_rows_f32'), softmax_numpy),
             (LAYER_NORM_ROWS, layer_norm_numpy), (COUNTS_ROWS, counts_numpy)]


@pytest.mark.filterwarnings('ignore:Degrees of freedom:RuntimeWarning')   # ddof 1 of 1
@pytest.mark.parametrize('shape', [(37, 1000), (7, 1), (1, 1), (5, 3), (3, 2500), (2, 1025)])
def test_row_kernels_agree_with_numpy(shape):
    """Contiguous, then reversed and in Fortran order (check_kernels)."""
    assert check_kernels(ROW_PAIRS, shape=shape) == []


def test_row_kernels_on_threads_and_one_long_row():
    """Many rows share the threads; one row longer than PARALLEL has its
    blocks shared, pass by pass (the wide path), with the same results."""
    rng = np.random.default_rng(20)
    for shape in (BIG, (1, 3 * c.PARALLEL + 7), (2, 2 * c.PARALLEL)):
        x = rng.standard_normal(shape)
        g, b = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
        for kernel, reference, args in ((softmax_rows(), softmax_numpy, (x,)),
                                        (LAYER_NORM_ROWS, layer_norm_numpy, (x, g, b))):
            for got, want in zip(build(kernel, _refuse)(*args), reference(*args)):
                assert_close(got, want, F8)
        sd = build(LAYER_NORM_ROWS, _refuse)(x + 1e4, g, b)[2]       # far from zero
        np.testing.assert_allclose(sd, np.std(x, axis=-1), rtol=1e-9)


@pytest.mark.filterwarnings('ignore::RuntimeWarning')     # var, ddof 1, of one column
def test_row_kernels_read_every_layout_in_c():
    """x transposed, sliced, reversed or a column; g and b broadcast rows,
    reversed or of size 1: each runs in C (no fallback), as NumPy."""
    rng = np.random.default_rng(21)
    f = build(LAYER_NORM_ROWS, _refuse)
    base = rng.standard_normal((90, 130))
    for x in (base.T, base[::3, ::-2], np.asfortranarray(base), base[:, :1]):
        k = x.shape[-1]
        for g, b in ((rng.standard_normal(k), rng.standard_normal((1, k))),
                     (rng.standard_normal(2 * k)[::-2], np.array(0.5)), (np.ones(1), 1.0)):
            for got, want in zip(f(x, g, b), layer_norm_numpy(x, g, b)):
                assert_close(got, want, F8)
    assert f.fallbacks == 0


def test_row_kernels_give_numpys_shapes_or_fall_back():
    """A row output is (rows, 1) with keepdims, (rows,) without, a scalar for
    one row of a vector; where NumPy's shapes are not the kernel's (a
    reduction over fewer columns than the rows have, an output of another
    shape, other ranks, empty rows) the fallback runs."""
    calls = []

    def fallback(*args):
        calls.append(args)
        return layer_norm_numpy(*args)
    f = build(LAYER_NORM_ROWS, fallback)
    x = np.random.default_rng(22).standard_normal((4, 6))
    y, mu, sd = f(x, np.ones(6), np.zeros(6))
    assert y.shape == (4, 6) and mu.shape == (4, 1) and sd.shape == (4,)
    vector = build(rows('vector_rows', [arr('x')], [('reduce', 's', 'sum', 'x', F8, False, 1),
                                                    ('step', 'y', F8, '(x / s)', ['x', 's'])],
                        ['y', 's']), _refuse)
    y, s = vector(np.arange(1.0, 5.0))
    assert type(s) is np.float64 and s == 10 and y.shape == (4,)
    for args in ((x[:, :1], np.ones(6), np.zeros(6)),     # reduces 1 column, rows of 6
                 (x, np.ones((3, 1, 6)), np.zeros(6)),    # y of rank 3, mu of rank 2
                 (x[None], np.ones(6), np.zeros(6)),      # x of rank 3
                 (x[:, :0], np.ones(0), np.zeros(0))):    # empty rows: NumPy's warnings
        with np.errstate(all='ignore'), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for got, want in zip(f(*args), layer_norm_numpy(*args)):
                np.testing.assert_array_equal(np.shape(got), np.shape(want))
    assert len(calls) == 4 and f.fallbacks == 4


def test_row_max_propagates_nan_and_variance_is_exact_far_from_zero():
    x = np.random.default_rng(23).standard_normal((5, 3000))
    x[2, 1234] = np.nan
    got = build(softmax_rows(), _refuse)(x)[1]
    assert np.isnan(got[2, 0]) and not np.isnan(got[[0, 1, 3, 4]]).any()
    far = 1e9 + np.random.default_rng(24).standard_normal((3, 5000))
    _, _, sd = build(LAYER_NORM_ROWS, _refuse)(far, np.ones(5000), np.zeros(5000))
    np.testing.assert_allclose(sd, np.std(far - 1e9, axis=-1), rtol=1e-6)


def test_a_variance_over_trailing_axes_is_a_row_kernel_in_c():
    """A var/std reduction kernel runs as the row-wise kernel of its one
    reduction: over the last axes of a 3-d value, and over all of it."""
    rng = np.random.default_rng(25)
    x, y = rng.standard_normal((6, 7, 300)), rng.standard_normal((7, 300))
    for op in ('var', 'std'):
        for axis in ((1, 2), None, (2,)):
            kernel = Kernel(f'{op}_3d', (arr('x'), arr('y')), (arr('r_out'),),
                            (Step('t', F8, 'tanh(x) * y', ('x', 'y')),),
                            reduction=Reduction(op, 't', F8, axis, True, 3, 1))
            assert 'rt.kernels.cpu.kernel' in c.expression(kernel, 'fallback')
            got = build(kernel, _refuse)(x, y)
            want = getattr(np, op)(np.tanh(x) * y, axis=axis, keepdims=True, ddof=1)
            assert_close(got, want, F8)


def test_row_kernel_text_is_deterministic_and_readable():
    text = c.expression(LAYER_NORM_ROWS, '_layer_norm_numpy')
    assert text == c.expression(rows('layer_norm_rows', *_items(LAYER_NORM_ROWS)),
                                '_layer_norm_numpy')
    assert "rows={'trailing': 1, 'program': " in text
    source = c.function_source(LAYER_NORM_ROWS)
    assert max(map(len, source.splitlines())) <= 100
    for name in ('layer_norm_rows_pass1', 'layer_norm_rows_pass2', 'layer_norm_rows_row',
                 'layer_norm_rows_wide', 'layer_norm_rows_strided'):
        assert name in source
    assert 'sqrt(' in source and '_q1 - _d1 * _d1' in source      # corrected two-pass


def _items(kernel):
    """`rows` arguments that rebuild `kernel` (fresh objects, the same record)."""
    items = []
    for s in kernel.steps:
        if isinstance(s, Step):
            items.append(('step', s.name, s.dtype, s.expr, list(s.reads)))
        else:
            items.append(('reduce', s.name, s.op, s.value, s.dtype, s.keepdims, s.ndim, s.ddof))
    return [list(kernel.inputs), items, [local for _, local in kernel.results]]


# ---------------------------------------------------- first-call latency
def mlp_loss(W1, b1, W2, b2, x, y):
    """A tanh MLP's squared error with weight decay, parameters apart."""
    h = np.tanh(x @ W1 + b1)
    z = h @ W2 + b2
    d = z - y
    return np.mean(d * d) + 1e-4 * (np.sum(W1 * W1) + np.sum(W2 * W2))


def mlp_args(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((30, 64)), rng.standard_normal(64),
            rng.standard_normal((64, 1)), rng.standard_normal(1),
            rng.standard_normal((256, 30)), rng.standard_normal((256, 1)))


def test_mlp_value_and_grad_from_an_empty_cache(monkeypatch, tmp_path):
    import codax
    _fresh_cache(monkeypatch, tmp_path)
    args = mlp_args()
    step = codax.jit(codax.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3)))
    before = sum(cpu.FALLBACKS.values())
    value, grads = step(*args)
    want_value, want_grads = codax.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))(*args)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert sum(cpu.FALLBACKS.values()) == before
    assert len(_cached(tmp_path)) >= 5                          # 7 kernels today


_FIRST_CALL = """
import os, shutil, sys, tempfile, time
os.environ['CODAX_CACHE_DIR'] = cache = tempfile.mkdtemp(prefix='codax-first-call-')
import codax
from tests.test_kernels_cpu import mlp_args, mlp_loss
args = mlp_args()
step = codax.jit(codax.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3)))
started = time.perf_counter()
step(*args)
print(time.perf_counter() - started)
shutil.rmtree(cache)
"""


def first_call_seconds(runs=3):
    """The median first-call latency of jit(value_and_grad(mlp_loss)), each
    run in a fresh process with an empty disk cache (compiles included)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    times = [float(subprocess.run([sys.executable, '-c', _FIRST_CALL], cwd=root, check=True,
                                  capture_output=True, text=True).stdout.split()[-1])
             for _ in range(runs)]
    return sorted(times)[len(times) // 2], times


def test_a_forked_child_runs_kernels_on_one_thread():
    """GNU OpenMP hangs in a child forked after a parallel region."""
    f = build(TANH_GRAD, _refuse)
    x = np.ones(2 * c.PARALLEL)
    f(1.0, x)                                                   # threads start here
    pid = os.fork()
    if pid == 0:
        os._exit(0 if f(1.0, x)[0] == tanh_grad(1.0, 1.0) else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    pytest.fail('the forked child hung')


def test_no_compiler_found_on_an_empty_path(monkeypatch):
    monkeypatch.delenv('CC', raising=False)
    monkeypatch.setenv('PATH', '')
    assert cpu._compiler() is None
    assert shutil.which('cc') is None


if __name__ == '__main__':        # python tests/test_kernels_cpu.py [runs]: the latency
    median, times = first_call_seconds(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    print(f'jit(value_and_grad(mlp_loss)) first call, empty cache: {median:.3f} s median '
          f'of {", ".join(f"{t:.3f}" for t in times)}')
