"""The CUDA back end: a Kernel record as CuPy kernel source.

`expression(kernel)` is the text of the Python expression that generated code
evaluates to get the kernel (through runtime/kernels/cuda.py, as `rt`);
`translation_unit(kernel)` is a stand-alone .cu file with the same per-element
code and types, which `check_compiles` hands to nvcc: CI has no GPU, so that is
how every generated kernel gets compiled there.

Which CuPy kernel:
- element-wise: `cupy.ElementwiseKernel` (CuPy broadcasts, follows strides and
  picks 32- or 64-bit indices itself);
- a reduction over some axes: `cupy.ReductionKernel`, the steps in a
  `__device__` map function of its preamble;
- a reduction over every axis: a `cupy.RawModule` of two kernels, because
  ReductionKernel runs a full reduction of several inputs on a single block
  (one multiprocessor). Pass 1 runs a grid-stride loop over the flat index
  (always `long long`: arrays may pass 2^31 elements, and the index arithmetic
  is free next to the memory traffic) with four loads in flight per thread, and
  leaves one partial per block; pass 2 reduces the partials in one block. The
  order of operations depends only on the size and the device, so results are
  reproducible. Sums accumulate in the result's dtype, float32 in float32 as
  NumPy, CuPy and XLA do: each thread adds a few hundred elements, then a tree.
- var and std: two passes, the mean and then the squared deviations from it,
  each recomputing the steps (the RawModule's pass 1 twice, or two
  ReductionKernels), accumulated in double.
- row-wise (`trailing` > 0): a `cupy.RawKernel` that gives each row (the
  trailing axes) to one block of threads, or to one warp where rows are short
  (up to WARP_COLS elements; eight rows a block); the row's reductions are
  warp shuffles, then shared memory across the block's warps, and every
  thread gets the result, so each pass over the row recomputes its steps
  and the next pass reads the row again (from L1/L2). Indices are `long
  long`; each array is read at `row * row_stride + column * column_stride`
  (runtime/kernels/cuda.py merges its axes, or copies it where they do not
  merge); sums accumulate in double; the order of operations depends only on
  the shape, so results are reproducible.

This module only writes text; it never imports CuPy.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import tempfile

import numpy

from . import (TWO_PASS, Kernel, Reduction, RowReduction, Step, Value, accumulator, c_literal,
               c_type, row_finish, row_plan, shape_program)

OPS = ('sum', 'mean', 'max', 'min', 'prod', 'var', 'std')
WARP_COLS = 1024        # rows of at most this many elements get a warp, not a block

# Words a kernel's own names must not take: C++ and CUDA words, the parameter
# names CuPy reserves (i, n) and the names its generated code declares without
# a leading underscore.
RESERVED = frozenset('''
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char
    char16_t char32_t class compl const const_cast constexpr continue decltype
    default delete do double dynamic_cast else enum explicit export extern false
    float for friend goto if inline int long mutable namespace new noexcept not
    not_eq nullptr operator or or_eq private protected public register
    reinterpret_cast restrict return short signed sizeof static static_assert
    static_cast struct switch template this thread_local throw true try typedef
    typeid typename union unsigned using virtual void volatile wchar_t while xor
    xor_eq threadIdx blockIdx blockDim gridDim warpSize
    i n CArray CIndexer IndexT REDUCE POST_MAP codax_mean codax_center
'''.split())

_IDENTIFIER = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')
_CALLED = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*)\s*\(')


# ---------------------------------------------------------------- checks

def _check(kernel):
    """Fail loudly on a record that would give CuPy or nvcc wrong code."""
    if not _IDENTIFIER.match(kernel.name):
        raise ValueError(f'kernel name {kernel.name!r} is not a C identifier')
    values = kernel.inputs + kernel.outputs + kernel.steps
    for value in values:
        _check_name(kernel, value.name)
        _ctype(kernel, value.dtype)
    names = [value.name for value in values]
    if len(set(names)) != len(names):
        raise ValueError(f'kernel {kernel.name}: a name is declared twice in {names}')
    if not any(not value.scalar for value in kernel.inputs):
        raise ValueError(f'kernel {kernel.name}: no array input gives the shape')
    if kernel.reduction is None:
        _check_results(kernel)
    else:
        _check_reduction(kernel)
    if kernel.trailing:
        for item in kernel.steps:
            if isinstance(item, RowReduction) and item.op not in OPS:
                raise ValueError(f'kernel {kernel.name}: unknown reduction {item.op!r}')
        row_plan(kernel)                # each reduction of an element value
    _check_calls(kernel, set(names))


def _check_calls(kernel, names):
    """A value named like a function that the kernel calls (exp, isnan) hides it."""
    code = [step.expr for step in kernel.steps if isinstance(step, Step)]
    if kernel.reduction is not None:
        code.append(_combine(kernel.reduction.op, kernel.reduction.dtype, 'a', 'b'))
    if kernel.reduction is not None and kernel.reduction.op in TWO_PASS or any(
            isinstance(step, RowReduction) and step.op in TWO_PASS for step in kernel.steps):
        code.append('sqrt(fmax(1.0, 0.0))')
    hidden = names & set(_CALLED.findall(';'.join(code)))
    if hidden:
        raise ValueError(f'kernel {kernel.name}: {sorted(hidden)} name both a value and '
                         'a function the kernel calls')


def _check_name(kernel, name):
    if not _IDENTIFIER.match(name) or name.startswith('_') or name in RESERVED:
        raise ValueError(f'kernel {kernel.name}: {name!r} cannot name a CUDA kernel value '
                         '(CuPy reserves i, n and names starting with _; C words are taken)')


def _ctype(kernel, dtype):
    ctype = c_type(dtype)
    if ctype is None:
        raise ValueError(f'kernel {kernel.name}: no CUDA kernel for dtype {numpy.dtype(dtype)}')
    return ctype


def _check_results(kernel):
    written = [out for out, _ in kernel.results]
    if sorted(written) != sorted(value.name for value in kernel.outputs):
        raise ValueError(f'kernel {kernel.name}: results {kernel.results} must write '
                         'each output once')


def _check_reduction(kernel):
    reduction = kernel.reduction
    if reduction.op not in OPS:
        raise ValueError(f'kernel {kernel.name}: unknown reduction {reduction.op!r}')
    if len(kernel.outputs) != 1 or kernel.results:
        raise ValueError(f'kernel {kernel.name}: a reduction has one output and no results')
    if kernel.outputs[0].name in ('a', 'b'):    # ReductionKernel's POST_MAP(a) macro
        raise ValueError(f'kernel {kernel.name}: a reduction cannot name its output '
                         f'{kernel.outputs[0].name!r}')
    if reduction.value not in {value.name for value in kernel.inputs + kernel.steps}:
        raise ValueError(f'kernel {kernel.name}: reduces {reduction.value!r}, never defined')
    _ctype(kernel, reduction.dtype)


# ---------------------------------------------------------------- pieces of C

def _dtype_name(dtype):
    return numpy.dtype(dtype).name


def _params(values):
    """CuPy's parameter list, dtypes explicit: 'float64 x, float32 y'."""
    return ', '.join(f'{_dtype_name(v.dtype)} {v.name}' for v in values)


def _comment(kernel):
    """The user's lines as C comments (a final backslash would swallow the next line)."""
    return [f'// {line}'.rstrip(' \\') for line in kernel.comment.splitlines()]


def _step_lines(kernel):
    return [f'{c_type(step.dtype)} {step.name} = {step.expr};' for step in kernel.steps]


def _operation(kernel):
    """The element-wise body: the steps, then each output from its local."""
    results = [f'{out} = {local};' for out, local in kernel.results]
    return _comment(kernel) + _step_lines(kernel) + results


def _full(reduction):
    """Whether the reduction takes every axis (then it goes to the RawModule)."""
    return reduction.axis is None or tuple(reduction.axis) == tuple(range(reduction.ndim))


def _combine(op, dtype, a, b):
    """C for one reduction step of a and b; max and min propagate NaN as NumPy's do."""
    if op in ('sum', 'mean'):
        return f'{a} + {b}'
    if op == 'prod':
        return f'{a} * {b}'
    test = f'{a} > {b}' if op == 'max' else f'{a} < {b}'
    if numpy.dtype(dtype).kind == 'f':
        test = f'{test} || isnan({a})'
    return f'({test}) ? {a} : {b}'


def _identity(op, dtype):
    """The reduction's start value as a C expression of `dtype`."""
    dtype = numpy.dtype(dtype)
    if op in ('sum', 'mean'):
        return c_literal(0, dtype)
    if op == 'prod':
        return c_literal(1, dtype)
    lowest = op == 'max'
    if dtype.kind == 'f':                # +-infinity without a header
        bits = ('__int_as_float(0x7f800000)' if dtype.itemsize == 4
                else '__longlong_as_double(0x7ff0000000000000LL)')
        return f'-{bits}' if lowest else bits
    if dtype.kind == 'b':
        return c_literal(not lowest, dtype)
    return _integer_limit(dtype, lowest)


def _integer_limit(dtype, lowest):
    info = numpy.iinfo(dtype)
    if dtype.kind == 'u':               # unsigned: 0, or all bits set
        return '0' if lowest else f'({c_type(dtype)})-1'
    if lowest:                          # -2^63 has no literal of its own
        return f'({c_literal(info.min + 1, dtype)} - 1)'
    return c_literal(info.max, dtype)


def _post(op, acc, count):
    """The finished result from the accumulator (mean divides by the count)."""
    return f'{acc} / ({count})' if op == 'mean' else acc


def _map_function(kernel):
    """`_codax_map`: the steps of a reduction, from element values to the value reduced."""
    reduction = kernel.reduction
    args = ', '.join(f'{c_type(v.dtype)} {v.name}' for v in kernel.inputs)
    return ([f'__device__ {c_type(reduction.dtype)} _codax_map({args}) {{']
            + [f'    {line}' for line in _step_lines(kernel)]
            + [f'    return {reduction.value};', '}'])


def _map_call(kernel, element):
    """`_codax_map(x, s)`, each array input spelt by element(name)."""
    return '_codax_map({})'.format(', '.join(
        v.name if v.scalar else element(v.name) for v in kernel.inputs))


def _lines(lines):
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- ReductionKernel

def _reduction_args(kernel):
    """ReductionKernel's arguments after the parameter lists, in its order."""
    reduction = kernel.reduction
    out = kernel.outputs[0].name
    post = _post(reduction.op, 'a', '_in_ind.size() / _out_ind.size()')
    return dict(map_expr=_map_call(kernel, lambda name: name),
                reduce_expr=_combine(reduction.op, reduction.dtype, 'a', 'b'),
                post_map_expr=f'{out} = {post}',
                identity=_identity(reduction.op, reduction.dtype),
                reduce_type=c_type(reduction.dtype))


def _preamble(kernel):
    lines = _comment(kernel) + _map_function(kernel)
    if kernel.reduction.op in TWO_PASS:
        lines += ['// The squared deviation of a value from its mean.',
                  '__device__ double _codax_dev(double v, double c) {',
                  '    return (v - c) * (v - c);', '}']
    return lines


_COUNT = '_in_ind.size() / _out_ind.size()'     # what ReductionKernel reduces an output over


def _var_args(kernel):
    """The two ReductionKernels of a var or std over some axes: the mean
    (keeping the axes), then the squared deviations from it, in double."""
    reduction = kernel.reduction
    out = kernel.outputs[0].name
    value = _map_call(kernel, lambda name: name)
    finish = row_finish(reduction, 'a', f'({_COUNT})', None, 'a')
    return dict(mean_map_expr=f'(double){value}',
                mean_post_map_expr=f'codax_mean = a / ({_COUNT})',
                map_expr=f'_codax_dev({value}, codax_center)',
                post_map_expr=f'{out} = {finish}')


# ---------------------------------------------------------------- RawModule

def _raw_params(kernel, acc, center):
    """Pass 1's parameters, a line per input: scalars by value, arrays contiguous
    with a step (0: one element, broadcast), then the partials and the size
    (and for a variance, the mean and whether to sum deviations from it)."""
    params = [f'const {c_type(v.dtype)} {v.name}' if v.scalar else
              f'const {c_type(v.dtype)} *__restrict__ {v.name}, const long long _step_{v.name}'
              for v in kernel.inputs]
    params.append(f'{c_type(acc.dtype)} *__restrict__ _partials, const long long _n')
    if center:
        params.append('const double *__restrict__ _center, const int _deviations')
    return ',\n'.join(f'        {line}' for line in params)


def _raw_code(kernel):
    """Both passes of a full reduction, after their helpers; for a variance,
    pass 1 twice, with a pass 2 for the mean and one for the result."""
    reduction = kernel.reduction
    if reduction.op not in TWO_PASS:
        return _lines(_comment(kernel) + [
            f'// {reduction.op} of {reduction.value} over every axis, in two passes: '
            f'{kernel.name}, then {kernel.name}_finish.',
        ] + _map_function(kernel) + _reduce_functions(reduction) + _pass1(kernel, reduction)
            + _pass2(kernel, reduction))
    acc = Reduction('sum', reduction.value, numpy.dtype(numpy.float64), None, False,
                    reduction.ndim)
    out = kernel.outputs[0].name
    finish = row_finish(reduction, '_acc', '_n', None, '_acc')
    return _lines(_comment(kernel) + [
        f'// {reduction.op} of {reduction.value} over every axis: {kernel.name} then '
        f'{kernel.name}_mean give the mean,',
        f'// {kernel.name} again (_deviations = 1) then {kernel.name}_finish the squared '
        'deviations from it.',
    ] + _map_function(kernel) + _reduce_functions(acc) + [
        '',
        '// What pass 1 adds up: the values, or their squared deviations from the mean.',
        '__device__ double _codax_term(double v, const double *_center, int _deviations) {',
        '    return _deviations ? (v - _center[0]) * (v - _center[0]) : v;',
        '}',
    ] + _pass1(kernel, acc, center=True)
        + _pass2(kernel, acc, 'mean', 'double', '_center', '_acc / _n')
        + _pass2(kernel, acc, 'finish', c_type(reduction.dtype), out, finish))


def _reduce_functions(reduction):
    """`_codax_reduce` of two values, and `_codax_block_reduce` of a block's."""
    t = c_type(reduction.dtype)
    shuffle = f'a = _codax_reduce(a, ({t})__shfl_down_sync(0xffffffffu, a, _o));'
    return [
        '',
        f'__device__ {t} _codax_reduce({t} a, {t} b) {{',
        f'    return {_combine(reduction.op, reduction.dtype, "a", "b")};',
        '}',
        '',
        "// The block's reduction of `a` (whole warps), valid in thread 0.",
        f'__device__ {t} _codax_block_reduce({t} a) {{',
        f'    __shared__ {t} _warps[32];',
        '    const int _lane = threadIdx.x % 32, _warp = threadIdx.x / 32;',
        '    for (int _o = 16; _o > 0; _o /= 2)',
        f'        {shuffle}',
        '    if (_lane == 0) _warps[_warp] = a;',
        '    __syncthreads();',
        '    if (_warp == 0) {',
        f'        a = _lane < blockDim.x / 32 ? _warps[_lane] : '
        f'{_identity(reduction.op, reduction.dtype)};',
        '        for (int _o = 16; _o > 0; _o /= 2)',
        f'            {shuffle}',
        '    }',
        '    return a;',
        '}',
    ]


def _pass1(kernel, acc, center=False):
    """Pass 1, accumulating as `acc` (a Reduction) does."""
    t = c_type(acc.dtype)
    at = _map_call(kernel, lambda name: f'{name}[_k * _step_{name}]')
    if center:
        at = f'_codax_term({at}, _center, _deviations)'
    return [
        '',
        '// Pass 1: a grid-stride loop over the _n elements; block b leaves its partial',
        '// result in _partials[b].',
        f'extern "C" __global__ void {kernel.name}(\n{_raw_params(kernel, acc, center)}) {{',
        f'    auto _at = [&](long long _k) {{ return {at}; }};',
        '    const long long _stride = (long long)blockDim.x * gridDim.x;',
        '    long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
        f'    {t} _acc = {_identity(acc.op, acc.dtype)};',
        '    for (; _i + 3 * _stride < _n; _i += 4 * _stride) {  // four loads in flight',
        f'        {t} _a0 = _at(_i), _a1 = _at(_i + _stride);',
        f'        {t} _a2 = _at(_i + 2 * _stride), _a3 = _at(_i + 3 * _stride);',
        '        _acc = _codax_reduce(_acc, _codax_reduce(_codax_reduce(_a0, _a1), '
        '_codax_reduce(_a2, _a3)));',
        '    }',
        '    for (; _i < _n; _i += _stride)',
        '        _acc = _codax_reduce(_acc, _at(_i));',
        '    _acc = _codax_block_reduce(_acc);',
        '    if (threadIdx.x == 0) _partials[blockIdx.x] = _acc;',
        '}',
    ]


def _pass2(kernel, acc, suffix='finish', out_type=None, out=None, post=None):
    """`<name>_<suffix>`: one block reduces the partials and writes `post` to `out`."""
    t = c_type(acc.dtype)
    out = out or kernel.outputs[0].name
    out_type = out_type or c_type(kernel.reduction.dtype)
    post = post or _post(acc.op, '_acc', '_n')
    return [
        '',
        '// Pass 2: one block reduces the partials in a fixed order and writes the result.',
        f'extern "C" __global__ void {kernel.name}_{suffix}(',
        f'        const {t} *__restrict__ _partials, const long long _count,',
        f'        {out_type} *__restrict__ {out}, const long long _n) {{',
        f'    {t} _acc = {_identity(acc.op, acc.dtype)};',
        '    for (long long _i = threadIdx.x; _i < _count; _i += blockDim.x)',
        '        _acc = _codax_reduce(_acc, _partials[_i]);',
        '    _acc = _codax_block_reduce(_acc);',
        f'    if (threadIdx.x == 0) {out}[0] = {post};',
        '}',
    ]


# ---------------------------------------------------------------- row-wise RawKernel

def _rows_code(kernel):
    """A row-wise kernel: each thread group (a warp or the block) loops over
    its rows and runs the passes of row_plan over each (see the docstring)."""
    plan = row_plan(kernel)
    axes = 'the last axis' if kernel.trailing == 1 else f'the last {kernel.trailing} axes'
    lines = _comment(kernel) + [
        f'// {kernel.name}: a row is {axes}; a block a row, or a warp for short rows.',
        f'// {len(plan.passes)} passes over each row; after each, every thread has the '
        'row\'s reductions.']
    lines += _row_reducers(kernel)
    lines += ['', f'extern "C" __global__ void {kernel.name}(',
              ',\n'.join(f'        {p}' for p in _row_params(kernel)) + ') {',
              '    // _warp: 32 threads a row (eight rows a block), else the whole block',
              '    const int _lane = _warp ? threadIdx.x % 32 : threadIdx.x;',
              '    const int _width = _warp ? 32 : blockDim.x;',
              '    const long long _per = _warp ? blockDim.x / 32 : 1;     // rows a block',
              '    for (long long _row = (long long)blockIdx.x * _per + (_warp ? threadIdx.x / 32 '
              ': 0);',
              '         _row < _rows; _row += (long long)gridDim.x * _per) {']
    lines += [f'        {line}' for line in _row_body(kernel, plan)]
    return _lines(lines + ['    }', '}'])


def _row_params(kernel):
    params = []
    for v in kernel.inputs:
        t = c_type(v.dtype)
        params.append(f'const {t} {v.name}' if v.scalar else
                      f'const {t} *__restrict__ _in_{v.name}, const long long _rs_{v.name}, '
                      f'const long long _cs_{v.name}')
    params += [f'{c_type(v.dtype)} *__restrict__ _out_{v.name}' for v in kernel.outputs]
    return params + ['const long long _rows, const long long _cols, const int _warp']


def _row_reductions(kernel):
    return [item for item in kernel.steps if isinstance(item, RowReduction)]


def _row_reducers(kernel):
    """`_codax_<op>_<type>(a, b)` and `_codax_row_<op>_<type>(a, _warp)` (the
    reduction of `a` over the row's threads, in every thread) for each kind
    of accumulator the kernel has."""
    lines, done = [], set()
    for r in _row_reductions(kernel):
        op, dtype = _row_op(r), accumulator(r.op, r.dtype)
        name = f'{op}_{numpy.dtype(dtype).name}'
        if name in done:
            continue
        done.add(name)
        t = c_type(dtype)
        shuffle = f'a = _codax_{name}(a, ({t})__shfl_xor_sync(0xffffffffu, a, _o));'
        lines += [
            '', f'__device__ __forceinline__ {t} _codax_{name}({t} a, {t} b) {{',
            f'    return {_combine(op, dtype, "a", "b")};', '}',
            f'__device__ {t} _codax_row_{name}({t} a, const int _warp) {{',
            '    for (int _o = 16; _o > 0; _o /= 2)',
            f'        {shuffle}',
            '    if (!_warp) {                  // then across the block\'s warps',
            f'        __shared__ {t} _partial[32];',
            '        if (threadIdx.x % 32 == 0) _partial[threadIdx.x / 32] = a;',
            '        __syncthreads();',
            '        a = threadIdx.x % 32 < blockDim.x / 32 ? _partial[threadIdx.x % 32]',
            f'            : {_identity(op, dtype)};',
            '        for (int _o = 16; _o > 0; _o /= 2)',
            f'            {shuffle}',
            '        __syncthreads();          // _partial is free for the next reduction',
            '    }',
            f'    return ({t})__shfl_sync(0xffffffffu, a, 0);    // one value for all',
            '}']
    return lines


def _row_op(reduction):
    """How a row reduction accumulates: a mean, var or std adds up."""
    return 'sum' if reduction.op in ('mean',) + TWO_PASS else reduction.op


def _row_body(kernel, plan):
    """One row: the passes, then the row outputs."""
    lines = [f'{c_type(s.dtype)} {s.name} = {s.expr};' for s in plan.before]
    reductions = _row_reductions(kernel)
    for p in plan.passes:
        lines.append(f'// pass {p.number}')
        accumulate = []
        for r, phase in p.reductions:
            k = reductions.index(r)
            acc = accumulator(r.op, r.dtype)
            t = c_type(acc)
            if phase == 'value':
                lines.append(f'{t} _a{k} = {_identity(_row_op(r), acc)};')
                value = r.value if _value_dtype(kernel, r.value) == acc else f'({t}){r.value}'
                accumulate.append(f'_a{k} = {_combine(_row_op(r), acc, f"_a{k}", value)};')
            else:
                deviation = f'((double){r.value} - _mean{k})'
                lines.append(f'double _q{k} = 0.0;')
                accumulate.append(f'_q{k} += {deviation} * {deviation};')
        lines.append('for (long long _j = _lane; _j < _cols; _j += _width) {')
        lines += [f'    const {c_type(v.dtype)} {v.name} = _in_{v.name}[_row * _rs_{v.name} + '
                  f'_j * _cs_{v.name}];' for v in p.inputs]
        lines += [f'    const {c_type(s.dtype)} {s.name} = {s.expr};' for s in p.steps]
        lines += [f'    {line}' for line in accumulate]
        lines += [f'    _out_{out}[_row * _cols + _j] = {local};' for out, local in p.writes]
        lines.append('}')
        for r, phase in p.reductions:
            k = reductions.index(r)
            acc = accumulator(r.op, r.dtype)
            if phase == 'value':
                lines.append(f'_a{k} = _codax_row_{_row_op(r)}_{acc.name}(_a{k}, _warp);')
                if r.op in TWO_PASS:
                    lines.append(f'const double _mean{k} = _a{k} / (double)_cols;')
                    continue
            else:
                lines.append(f'_q{k} = _codax_row_sum_float64(_q{k}, _warp);')
            lines.append(f'const {c_type(r.dtype)} {r.name} = '
                         f'{row_finish(r, f"_a{k}", "_cols", None, f"_q{k}")};')
        lines += [f'const {c_type(s.dtype)} {s.name} = {s.expr};' for s in p.after]
    lines += [f'if (_lane == 0) _out_{out}[_row] = {local};' for out, local in plan.row_writes]
    return lines


def _value_dtype(kernel, name):
    return numpy.dtype(next(v.dtype for v in kernel.inputs + kernel.steps if v.name == name))


# ---------------------------------------------------------------- expression

def _raw_string(text):
    if "'''" in text or text.endswith('\\'):
        raise ValueError(f"CUDA source cannot be a raw '''string''':\n{text}")
    return f"r'''\n{text}'''"


def _args(*args, **keywords):
    return ', '.join([repr(arg) for arg in args]
                     + [f'{key}={value!r}' for key, value in keywords.items()])


def _call(function, lines, source_keyword, source):
    """`rt.kernels.cuda.<function>(...)`: a line per group of arguments, the C last."""
    body = ''.join(f'    {line},\n' for line in lines)
    return f'rt.kernels.cuda.{function}(\n{body}    {source_keyword}={_raw_string(source)})'


def expression(kernel, fallback=None):
    """Python text that builds this kernel at run time, with `rt` the runtime
    package; `fallback` names the NumPy function a row-wise kernel leaves the
    calls to that it does not serve."""
    _check(kernel)
    head = _args(kernel.name, _params(kernel.inputs), _params(kernel.outputs))
    reduction = kernel.reduction
    if kernel.trailing:
        program, written = shape_program(kernel)
        scalars = tuple(v.name for v in kernel.inputs if v.scalar)
        options = [_args(trailing=kernel.trailing, program=program),
                   _args(written=written, **(dict(scalars=scalars) if scalars else {}))
                   + f', fallback={fallback}']
        return _call('rowwise', [head] + options, 'code', _rows_code(kernel))
    if reduction is None:
        return _call('elementwise', [head], 'operation', _lines(_operation(kernel)))
    if _full(reduction):
        scalars = tuple(v.name for v in kernel.inputs if v.scalar)
        options = _args(op=reduction.op, keepdims=reduction.keepdims,
                        **(dict(scalars=scalars) if scalars else {}))
        return _call('full_reduction', [head, options], 'code', _raw_code(kernel))
    if reduction.op in TWO_PASS:
        args = _var_args(kernel)
        lines = [head,
                 _args(op=reduction.op, axis=tuple(reduction.axis), keepdims=reduction.keepdims),
                 _args(mean_map_expr=args['mean_map_expr']),
                 _args(mean_post_map_expr=args['mean_post_map_expr']),
                 _args(map_expr=args['map_expr']), _args(post_map_expr=args['post_map_expr'])]
        return _call('var_reduction', lines, 'preamble', _lines(_preamble(kernel)))
    args = _reduction_args(kernel)
    lines = [head,
             _args(op=reduction.op, axis=tuple(reduction.axis), keepdims=reduction.keepdims),
             _args(map_expr=args['map_expr'], reduce_expr=args['reduce_expr']),
             _args(post_map_expr=args['post_map_expr']),
             _args(identity=args['identity'], reduce_type=args['reduce_type'])]
    return _call('reduction', lines, 'preamble', _lines(_preamble(kernel)))


# ---------------------------------------------------------------- translation unit

def _array_refs(values, const, index):
    """CuPy's references to the current element: `const double &x = _raw_x[i];`."""
    prefix = 'const ' if const else ''
    return [f'{prefix}{c_type(v.dtype)} &{v.name} = _raw_{v.name}[{index}];'
            for v in values if not v.scalar]


def _standin_params(kernel):
    params = [f'const {c_type(v.dtype)} {v.name}' if v.scalar else
              f'const {c_type(v.dtype)} *_raw_{v.name}' for v in kernel.inputs]
    return params + [f'{c_type(v.dtype)} *_raw_{v.name}' for v in kernel.outputs]


def _elementwise_unit(kernel):
    params = ', '.join(_standin_params(kernel) + ['const long long _size'])
    body = (_array_refs(kernel.inputs, True, 'i') + _array_refs(kernel.outputs, False, 'i')
            + _operation(kernel))
    return _lines([
        f'// Stand-in for the cupy.ElementwiseKernel {kernel.name}: its parameter types',
        '// and per-element body, in a plain grid-stride loop (for compile checks).',
        f'extern "C" __global__ void {kernel.name}({params}) {{',
        '    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < _size;',
        '         i += (long long)blockDim.x * gridDim.x) {',
    ] + [f'        {line}' for line in body] + ['    }', '}'])


_INDEXER = ['struct _codax_indexer {',
            '    long long size_;',
            '    __device__ long long size() const { return size_; }',
            '};']


def _reduction_unit(kernel):
    if kernel.reduction.op not in TWO_PASS:
        return _lines(_preamble(kernel) + _INDEXER
                      + _reduction_standin(kernel, kernel.name, _reduction_args(kernel)))
    args = _var_args(kernel)
    center = Value('codax_center', 'codax_center', numpy.dtype(numpy.float64))
    mean = dict(map_expr=args['mean_map_expr'], reduce_expr='a + b',
                post_map_expr=args['mean_post_map_expr'], identity='0.0', reduce_type='double')
    deviation = dict(args, reduce_expr='a + b', identity='0.0', reduce_type='double')
    mean_kernel = Kernel(kernel.name, kernel.inputs, (Value('codax_mean', 'codax_mean',
                                                            numpy.dtype(numpy.float64)),), ())
    return _lines(_preamble(kernel) + _INDEXER
                  + _reduction_standin(mean_kernel, f'{kernel.name}_mean', mean)
                  + ['#undef REDUCE', '#undef POST_MAP']
                  + _reduction_standin(Kernel(kernel.name, kernel.inputs + (center,),
                                              kernel.outputs, ()), kernel.name, deviation))


def _reduction_standin(kernel, name, args):
    """A stand-in for one cupy.ReductionKernel: its macros, types and
    expressions, one thread per output (the preamble and _INDEXER come before)."""
    params = ', '.join(_standin_params(kernel) + ['_codax_indexer _in_ind',
                                                  '_codax_indexer _out_ind'])
    return [
        '',
        f'// Stand-in for the cupy.ReductionKernel {name}: its preamble, macros,',
        '// types and expressions, one thread per output (for compile checks).',
        f'#define REDUCE(a, b) ({args["reduce_expr"]})',
        f'#define POST_MAP(a) ({args["post_map_expr"]})',
        f'typedef {args["reduce_type"]} _type_reduce_{name};',
        f'extern "C" __global__ void {name}({params}) {{',
        '    const long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
        '    if (_i >= _out_ind.size()) return;',
        '    const long long _m = _in_ind.size() / _out_ind.size();',
        f'    _type_reduce_{name} _s = _type_reduce_{name}({args["identity"]});',
        '    for (long long _j = _i * _m; _j < (_i + 1) * _m; ++_j) {',
    ] + [f'        {line}' for line in _array_refs(kernel.inputs, True, '_j')] + [
        f'        _type_reduce_{name} _a = static_cast<_type_reduce_{name}>({args["map_expr"]});',
        '        _s = REDUCE(_s, _a);',
        '    }',
    ] + [f'    {line}' for line in _array_refs(kernel.outputs, False, '_i')] + [
        '    POST_MAP(_s);',
        '}',
    ]


def translation_unit(kernel):
    """A complete .cu file: the RawModule's own code, or a stand-in `__global__`
    function with the same per-element code and types as CuPy's kernel."""
    _check(kernel)
    if kernel.trailing:
        return _rows_code(kernel)
    if kernel.reduction is None:
        return _elementwise_unit(kernel)
    if _full(kernel.reduction):
        return _raw_code(kernel)
    return _reduction_unit(kernel)


# ---------------------------------------------------------------- compile checks

def find_nvcc():
    """nvcc's path, or None."""
    path = shutil.which('nvcc')
    if path is None and os.access('/usr/local/cuda/bin/nvcc', os.X_OK):
        path = '/usr/local/cuda/bin/nvcc'
    return path


class CompileError(AssertionError):
    pass


def check_compiles(kernels, archs=('sm_80', 'sm_90'), nvcc=None, jobs=None):
    """Compile every kernel's translation unit to PTX for each arch; raise
    CompileError naming each kernel that fails, with nvcc's message and the
    numbered source. nvcc's start-up and headers cost more than a kernel, so
    the units go in batches, one namespace each, a batch per arch and core."""
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise FileNotFoundError('nvcc not found (PATH, /usr/local/cuda/bin)')
    units = [translation_unit(kernel) for kernel in kernels]
    jobs = jobs or os.cpu_count() or 1
    chunks = _chunks(len(units), max(1, jobs // len(archs)))
    tasks = [(arch, chunk) for arch in archs for chunk in chunks]
    with tempfile.TemporaryDirectory(prefix='codax-nvcc-') as folder:
        def compile_batch(task):
            arch, chunk = task
            path = os.path.join(folder, f'{arch}_{chunk.start}.cu')
            return _nvcc(nvcc, arch, path, _batch(units, chunk))
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            runs = list(pool.map(compile_batch, tasks))
        failed = [task for task, run in zip(tasks, runs) if run.returncode]
        if failed:
            raise CompileError(_failures(nvcc, failed, kernels, units, folder))


def _chunks(count, parts):
    size = -(-count // parts) or 1
    return [range(start, min(count, start + size)) for start in range(0, count, size)]


def _batch(units, chunk):
    """Translation units side by side: C++ names in a namespace each, macros undone."""
    return ''.join(f'namespace _codax_unit{k} {{\n'
                   + units[k].replace('extern "C" __global__', '__global__')
                   + '#undef REDUCE\n#undef POST_MAP\n}\n' for k in chunk)


def _nvcc(nvcc, arch, path, text):
    with open(path, 'w') as f:
        f.write(text)
    command = [nvcc, '-std=c++17', '-ptx', f'-arch={arch}', path, '-o', path[:-3] + '.ptx']
    return subprocess.run(command, capture_output=True, text=True)


def _numbered(text):
    return ''.join(f'{n:4} | {line}\n' for n, line in enumerate(text.splitlines(), 1))


def _failures(nvcc, failed, kernels, units, folder):
    """Each unit of a failed batch compiled alone, to name the culprits."""
    report = []
    for arch, chunk in failed:
        for k in chunk:
            name = f'{k:03d}_{kernels[k].name}.cu'
            run = _nvcc(nvcc, arch, os.path.join(folder, f'{arch}_{name}'), units[k])
            if run.returncode:
                report.append(f'{name} ({arch}):\n{run.stderr}\n{_numbered(units[k])}')
    return '\n'.join(report) or f'nvcc failed on batches {failed}, though each unit compiles alone'
