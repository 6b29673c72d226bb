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

This module only writes text; it never imports CuPy.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import tempfile

import numpy

from . import c_literal, c_type

OPS = ('sum', 'mean', 'max', 'min', 'prod')

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
    i n CArray CIndexer IndexT REDUCE POST_MAP
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
    _check_calls(kernel, set(names))


def _check_calls(kernel, names):
    """A value named like a function that the kernel calls (exp, isnan) hides it."""
    code = [step.expr for step in kernel.steps]
    if kernel.reduction is not None:
        code.append(_combine(kernel.reduction.op, kernel.reduction.dtype, 'a', 'b'))
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
    return _comment(kernel) + _map_function(kernel)


# ---------------------------------------------------------------- RawModule

def _raw_params(kernel):
    """Pass 1's parameters, a line per input: scalars by value, arrays contiguous
    with a step (0: one element, broadcast), then the partials and the size."""
    params = [f'const {c_type(v.dtype)} {v.name}' if v.scalar else
              f'const {c_type(v.dtype)} *__restrict__ {v.name}, const long long _step_{v.name}'
              for v in kernel.inputs]
    params.append(f'{c_type(kernel.reduction.dtype)} *__restrict__ _partials, '
                  'const long long _n')
    return ',\n'.join(f'        {line}' for line in params)


def _raw_code(kernel):
    """Both passes of a full reduction, after their helpers."""
    reduction = kernel.reduction
    return _lines(_comment(kernel) + [
        f'// {reduction.op} of {reduction.value} over every axis, in two passes: '
        f'{kernel.name}, then {kernel.name}_finish.',
    ] + _map_function(kernel) + _reduce_functions(reduction) + _pass1(kernel) + _pass2(kernel))


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


def _pass1(kernel):
    reduction = kernel.reduction
    t = c_type(reduction.dtype)
    at = _map_call(kernel, lambda name: f'{name}[_k * _step_{name}]')
    return [
        '',
        '// Pass 1: a grid-stride loop over the _n elements; block b leaves its partial',
        '// result in _partials[b].',
        f'extern "C" __global__ void {kernel.name}(\n{_raw_params(kernel)}) {{',
        f'    auto _at = [&](long long _k) {{ return {at}; }};',
        '    const long long _stride = (long long)blockDim.x * gridDim.x;',
        '    long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
        f'    {t} _acc = {_identity(reduction.op, reduction.dtype)};',
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


def _pass2(kernel):
    reduction = kernel.reduction
    t = c_type(reduction.dtype)
    out = kernel.outputs[0].name
    return [
        '',
        '// Pass 2: one block reduces the partials in a fixed order and writes the result.',
        f'extern "C" __global__ void {kernel.name}_finish(',
        f'        const {t} *__restrict__ _partials, const long long _count,',
        f'        {t} *__restrict__ {out}, const long long _n) {{',
        f'    {t} _acc = {_identity(reduction.op, reduction.dtype)};',
        '    for (long long _i = threadIdx.x; _i < _count; _i += blockDim.x)',
        '        _acc = _codax_reduce(_acc, _partials[_i]);',
        '    _acc = _codax_block_reduce(_acc);',
        f'    if (threadIdx.x == 0) {out}[0] = {_post(reduction.op, "_acc", "_n")};',
        '}',
    ]


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


def expression(kernel):
    """Python text that builds this kernel at run time, with `rt` the runtime package."""
    _check(kernel)
    head = _args(kernel.name, _params(kernel.inputs), _params(kernel.outputs))
    reduction = kernel.reduction
    if reduction is None:
        return _call('elementwise', [head], 'operation', _lines(_operation(kernel)))
    if _full(reduction):
        scalars = tuple(v.name for v in kernel.inputs if v.scalar)
        options = _args(op=reduction.op, keepdims=reduction.keepdims,
                        **(dict(scalars=scalars) if scalars else {}))
        return _call('full_reduction', [head, options], 'code', _raw_code(kernel))
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


def _reduction_unit(kernel):
    args = _reduction_args(kernel)
    params = ', '.join(_standin_params(kernel) + ['_codax_indexer _in_ind',
                                                  '_codax_indexer _out_ind'])
    return _lines(_preamble(kernel) + [
        '',
        f'// Stand-in for the cupy.ReductionKernel {kernel.name}: its preamble, macros,',
        '// types and expressions, one thread per output (for compile checks).',
        'struct _codax_indexer {',
        '    long long size_;',
        '    __device__ long long size() const { return size_; }',
        '};',
        f'#define REDUCE(a, b) ({args["reduce_expr"]})',
        f'#define POST_MAP(a) ({args["post_map_expr"]})',
        f'typedef {args["reduce_type"]} _type_reduce;',
        f'extern "C" __global__ void {kernel.name}({params}) {{',
        '    const long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x;',
        '    if (_i >= _out_ind.size()) return;',
        '    const long long _m = _in_ind.size() / _out_ind.size();',
        f'    _type_reduce _s = _type_reduce({args["identity"]});',
        '    for (long long _j = _i * _m; _j < (_i + 1) * _m; ++_j) {',
    ] + [f'        {line}' for line in _array_refs(kernel.inputs, True, '_j')] + [
        f'        _type_reduce _a = static_cast<_type_reduce>({args["map_expr"]});',
        '        _s = REDUCE(_s, _a);',
        '    }',
    ] + [f'    {line}' for line in _array_refs(kernel.outputs, False, '_i')] + [
        '    POST_MAP(_s);',
        '}',
    ])


def translation_unit(kernel):
    """A complete .cu file: the RawModule's own code, or a stand-in `__global__`
    function with the same per-element code and types as CuPy's kernel."""
    _check(kernel)
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
