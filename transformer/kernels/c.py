"""C source for a fused kernel on the CPU, and the generated-code expression
that compiles and calls it (runtime/kernels/cpu.py does both at run time).
Row-wise kernels, and variances (two passes over each row), are written by
c_rows.py with the readers and conventions below.

The shape of the code, and why (10^6 float64, the gradient of sum(tanh(x)**2)
unless said, this 2-core AVX-512 machine; bench/bench_jit_cpu.py measures the
whole again; compiler flags are in runtime/kernels/cpu.py):
- glibc's vector math (libmvec: tanh, exp, sin, log, pow, ... in AVX-512):
  math.h declares its SIMD variants only under -ffast-math, which would also
  drop NaN/inf semantics, so the kernel declares the ones it uses with
  `#pragma omp declare simd`. One thread: scalar libm 23 ms, vector 1.9 ms.
  Within 4 ulp; measured 3e-16 of the largest value against NumPy.
- `#pragma omp simd` on the inner loops: they vectorize without an alias
  proof, and reductions without -ffast-math's reassociation.
- Blocks of BLOCK elements; each array operand has a step, 1, or 0 for a
  size-1 array, which is read through a block filled with its value, so every
  inner loop is contiguous: 0.99 ms like a flat loop, where `x[i * step]`
  took 1.95 ms.
- Any other operand (broadcast, transposed, sliced, negative strides: step
  -1) is read through a block gathered by its strides in elements (0 on
  broadcast axes) over the output's shape, which the runtime passes with its
  axes merged (`geom`); the index is divided out at a block's start, then
  walks. One thread, x (1000, 1000): tanh(x + b), b (1000,): 1.89 ms (b
  full-size 1.92, NumPy 3.03); exp(x - m), m (1000, 1): 0.84 ms (m full-size
  0.96, NumPy 1.96); x.T + y: 1.57 ms (both contiguous 0.65, NumPy 2.28);
  softmax's two kernels after NumPy's max: 2.30 ms (NumPy 3.96). Reductions
  read their operands the same way, within each row's blocks.
- Where the last (merged) axis has BLOCK / 2 elements or more, blocks stay
  within its rows, so that a gathered run contiguous along it is read in
  place, not copied: x + b 0.68 ms against 0.78 with blocks across rows,
  tanh(x + b) 1.88 against 1.97.
- Two entry points: `<name>` without the geometry, for calls whose operands
  are all contiguous or of size 1 (passing ctypes None costs 75 ns a call),
  and `<name>_strided`. Those calls run as fast as before the gathers existed
  (one thread, before/after: tanh gradient 1.87/1.88 ms, sum(tanh(x)**2)
  1.79/1.80 ms, n=10 2.81/2.79 us).
- OpenMP threads above PARALLEL elements: 1.9 -> 1.0-1.3 ms on 2 cores. They
  sleep between kernels (runtime/kernels/cpu.py says why) and take 50-100 us
  to wake on this VM, so below 2^17 elements one thread is faster (40000
  elements of x * y + 1: 19 us on one thread, 111 us on two).
  schedule(guided): the calling thread starts on half the blocks while the
  other wakes; a static split waits for the slower one (1.42 vs 1.26 ms).
- Reductions accumulate float32 sums, means and products in double, rounded
  once: more accurate than NumPy's pairwise float32 and as fast (the loop is
  bound by memory and math). max and min propagate NaN, as NumPy's do.
- <tgmath.h>: steps apply C99 names (tanh) to their own types; for a float
  that is tanhf: 1.0 ms, against 4.5 ms through double (float32 tanh and exp,
  one thread; NumPy 3.3 ms).
"""
import re

import numpy

from . import TWO_PASS, c_type

BLOCK = 1024          # elements a block: the blocks of every operand stay in L1
# An element-wise kernel of at most SMALL_STEPS steps runs NumPy on calls of
# fewer than SMALL_CALL elements (runtime/kernels/cpu.py, SMALL_CALLS): its
# fallback's few NumPy calls (about 0.5 us each) cost less than the C call's
# 3-6 us there (docs/performance.md, "Small calls", has the measurements).
SMALL_STEPS, SMALL_CALL = 4, 2048
PARALLEL = 131072     # fewer elements run on the calling thread (see docstring)
MAX_NDIM = 32         # axes a gathered operand may have (after merging; the runtime checks)

# The functions glibc's libmvec vectorizes (x86_64, glibc >= 2.35): name -> arity.
_VECTOR_MATH = dict.fromkeys(
    'acos acosh asin asinh atan atanh cbrt cos cosh erf erfc exp exp10 exp2 expm1 '
    'log log10 log1p log2 sin sinh tan tanh'.split(), 1)
_VECTOR_MATH.update(atan2=2, hypot=2, pow=2)

# Reduction op -> (how two partial results combine, the identity's kind).
_COMBINE = {
    'sum': ('a + b', 'zero'), 'mean': ('a + b', 'zero'), 'prod': ('a * b', 'one'),
    'max': ('b > a || b != b ? b : a', 'lowest'),      # NaN wins, as in NumPy
    'min': ('b < a || b != b ? b : a', 'highest'),
    'var': ('a + b', 'zero'), 'std': ('a + b', 'zero'),  # sums (c_rows.py)
}


def unsupported(kernel):
    """Why this kernel cannot run as C (a sentence), or None if it can."""
    reduction = kernel.reduction
    dtypes = [v.dtype for v in kernel.inputs + kernel.outputs + kernel.steps]
    for dtype in dtypes + ([reduction.dtype] if reduction else []):
        if c_type(dtype) is None:
            return f'dtype {numpy.dtype(dtype)} has no C type'
    if reduction is not None:
        if reduction.op not in _COMBINE:
            return f'the reduction {reduction.op} has no C loop'
        if _trailing_axes(reduction) is None:
            return f'axis={reduction.axis} is not a run of trailing axes'
    clashes = _name_clashes(_rows(kernel) or kernel)
    if clashes:
        return f'its C names {clashes} collide with the names the C code derives'
    return None


def _rows(kernel):
    """The row-wise form of a kernel that runs as one (see c_rows), else None:
    row-wise kernels, and variances (two passes over each row)."""
    from . import c_rows
    if kernel.trailing:
        return kernel
    if kernel.reduction is not None and kernel.reduction.op in TWO_PASS:
        return c_rows.as_rows(kernel)
    return None


def expression(kernel, fallback):
    """Python source that builds the kernel's callable at run time (where
    `rt` is the runtime package); `fallback` names a NumPy function with the
    same arguments and results, for calls the C loop cannot serve."""
    if unsupported(kernel) is not None:
        return fallback
    if _rows(kernel) is not None:
        from . import c_rows
        return c_rows.expression(_rows(kernel), fallback)
    source = function_source(kernel)
    assert "'''" not in source
    inputs = tuple(_spec(value) for value in kernel.inputs)
    outputs = tuple(numpy.dtype(value.dtype).name for value in kernel.outputs)
    options = ''
    if kernel.reduction is not None:
        r = kernel.reduction
        options = f'reduce={{"ndim": {r.ndim}, "axis": {r.axis!r}, "keepdims": {r.keepdims}}}, '
    elif len(kernel.steps) <= SMALL_STEPS:
        options = f'numpy_below={SMALL_CALL}, '
    return (f"rt.kernels.cpu.kernel(r'''\n{source}''', {kernel.name!r}, "
            f'inputs={inputs!r}, outputs={outputs!r}, {options}fallback={fallback})')


def _spec(value):
    """'float64[]' for an array operand, 'float64' for a number passed by value."""
    name = numpy.dtype(value.dtype).name
    return name if value.scalar else name + '[]'


def _trailing_axes(reduction):
    """How many trailing axes the reduction reduces (None: not trailing)."""
    if reduction.axis is None:
        return reduction.ndim
    axis = tuple(reduction.axis)
    if axis == tuple(range(reduction.ndim - len(axis), reduction.ndim)):
        return len(axis)
    return None


def function_source(kernel):
    """The kernel as C: `void <name>(...)`, which the runtime calls."""
    if _rows(kernel) is not None:
        from . import c_rows
        return c_rows.function_source(_rows(kernel))
    parts = [_header(kernel), _vector_math(kernel),
             '#include <tgmath.h>    /* type-generic: tanh of a float is tanhf */\n',
             _readers(kernel)]
    if kernel.reduction is None:
        parts += [_block_function(kernel), _elementwise_driver(kernel)]
    else:
        parts += [_combiner(kernel), _block_function(kernel), _row_function(kernel),
                  _reduction_driver(kernel)]
    return '\n'.join(part for part in parts if part)


# ---------------------------------------------------------------- the pieces
def _header(kernel):
    comment = kernel.comment.replace('*/', '* /').strip()
    lines = [f'/* codax fused kernel {kernel.name}' + (f': {comment}' if comment else '') + ' */']
    types = {numpy.dtype(v.dtype) for v in kernel.inputs + kernel.outputs + kernel.steps}
    lines += ['#include <math.h>', '#include <stdint.h>']
    if numpy.dtype(bool) in types:
        lines.append('#include <stdbool.h>')
    lines += ['', f'#define BLOCK {BLOCK}    /* elements a block: all blocks stay in L1 */',
              f'#define PARALLEL {PARALLEL}    /* fewer elements run on one thread */',
              f'#define MAX_NDIM {MAX_NDIM}    /* axes of a gathered operand */', '']
    return '\n'.join(lines)


def _vector_math(kernel):
    """Declarations that let the vectorizer call libmvec's SIMD variants."""
    used = []
    for step in kernel.steps:
        for name in re.findall(r'\b([a-z0-9]+)\s*\(', getattr(step, 'expr', '')):
            if name not in used and name in _VECTOR_MATH:
                used.append(name)
    types = {numpy.dtype(v.dtype) for v in kernel.inputs + kernel.steps}
    if numpy.dtype(numpy.float32) in types:      # tgmath calls tanhf for a float
        used += [name + 'f' for name in used]
    if not used:
        return ''
    lines = ['/* glibc\'s vector math (libmvec): math.h declares its SIMD variants',
             '   only under -ffast-math, which would also drop NaN and inf semantics. */',
             '#if defined(__x86_64__) && \\',
             '    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))']
    for name in used:
        ctype = 'double' if name in _VECTOR_MATH else 'float'
        lines += ['#pragma omp declare simd notinbranch',
                  f'{ctype} {name}({", ".join([ctype] * _vector_arity(name))});']
    return '\n'.join(lines + ['#endif', ''])


def _vector_arity(name):
    """The arity of a libmvec function (tanh, or tanhf for float), else None."""
    return _VECTOR_MATH.get(name) or (name.endswith('f') and _VECTOR_MATH.get(name[:-1])) or None


def _readers(kernel):
    """One `repeat_<dtype>` and one `gather_<dtype>` per array operand type:
    a size-1 operand (step 0) is read through a block filled with its one
    value, a broadcast or strided one (step -1) through a block gathered from
    it (or in place, where the block is one contiguous run of it)."""
    dtypes = sorted({numpy.dtype(v.dtype).name for v in kernel.inputs if not v.scalar})
    functions = []
    for dtype in dtypes:
        t = c_type(dtype)
        functions.append('\n'.join([
            f'static const {t} *repeat_{dtype}({t} *fill, const {t} *data, int step)',
            '{',
            '    if (step)',
            '        return data;',
            '    for (int j = 0; j < BLOCK; j++)',
            '        fill[j] = data[0];',
            '    return fill;',
            '}',
            '',
            '/* Elements start .. start + m - 1 (C order over the output\'s shape) of',
            '   operand k: geom = {ndim, shape[ndim], then each operand\'s strides in',
            '   elements, 0 on broadcast axes}. One division an axis at the block\'s',
            '   start, then the index walks: runs along the last axis, carries above. */',
            _signature(f'static const {t}', f'*gather_{dtype}', f'{t} *restrict buffer', [
                f'const {t} *data', 'long long start, int m, const long long *geom, int k']),
            '{',
            '    const int nd = (int)geom[0];',
            '    const long long *shape = geom + 1, *stride = geom + 1 + (long long)nd * (k + 1);',
            '    long long index[MAX_NDIM], offset = 0;',
            '    for (int d = nd - 1; d >= 0; d--) {',
            '        index[d] = start % shape[d];',
            '        start /= shape[d];',
            '        offset += index[d] * stride[d];',
            '    }',
            '    const long long last = shape[nd - 1], step = stride[nd - 1];',
            '    if (step == 1 && last - index[nd - 1] >= m)    /* one run: read in place */',
            '        return data + offset;',
            '    for (int j = 0;;) {',
            '        const long long left = last - index[nd - 1];',
            '        const int run = left < m - j ? (int)left : m - j;',
            f'        const {t} *p = data + offset;',
            f'        {t} *restrict b = buffer + j;',
            '        if (step == 1)',
            '            for (int i = 0; i < run; i++)',
            '                b[i] = p[i];',
            '        else if (step == 0)',
            '            for (int i = 0; i < run; i++)',
            '                b[i] = p[0];',
            '        else',
            '            for (int i = 0; i < run; i++)',
            '                b[i] = p[i * step];',
            '        j += run;',
            '        if (j == m)',
            '            return buffer;',
            '        offset -= index[nd - 1] * step;    /* the next run: carry (nd > 1 here) */',
            '        index[nd - 1] = 0;',
            '        for (int d = nd - 2; d >= 0; d--) {',
            '            offset += stride[d];',
            '            if (++index[d] < shape[d])',
            '                break;',
            '            offset -= index[d] * stride[d];',
            '            index[d] = 0;',
            '        }',
            '    }',
            '}', '']))
    return '\n'.join(functions)


def _parameters(kernel, outputs=True):
    """The operands as C parameters, and as the arguments that pass them on."""
    params, args = ['const long long *geom'], ['geom']
    for v in kernel.inputs:
        t = c_type(v.dtype)
        if v.scalar:
            params.append(f'{t} {v.name}')
            args.append(v.name)
        else:
            params.append(f'const {t} *{v.name}_data, int {v.name}_step')
            args.append(f'{v.name}_data, {v.name}_step')
    for v in kernel.outputs if outputs else ():
        params.append(f'{c_type(v.dtype)} *{v.name}_data')
        args.append(f'{v.name}_data')
    return params, args


def _signature(returns, name, first, params):
    """A C function head, one parameter group a line."""
    head = f'{returns} {name}('
    pad = ' ' * len(head)
    return head + f',\n{pad}'.join([first] + params) + ')'


def _accumulator_type(reduction):
    """double for float32 sums, means and products (see docstring)."""
    if reduction.op in ('sum', 'mean', 'prod') and numpy.dtype(reduction.dtype) == numpy.float32:
        return 'double'
    return c_type(reduction.dtype)


def _identity(reduction, acc=None):
    """The reduction's start value, in its accumulator's C type `acc`."""
    kind = _COMBINE[reduction.op][1]
    dtype = numpy.dtype(reduction.dtype)
    acc = acc or _accumulator_type(reduction)
    if kind in ('zero', 'one'):
        return f'({acc}){int(kind == "one")}'
    if dtype.kind == 'f':
        return '-INFINITY' if kind == 'lowest' else 'INFINITY'
    if dtype.kind == 'b':
        return 'false' if kind == 'lowest' else 'true'
    if dtype.kind == 'u' and kind == 'lowest':
        return '0'
    return f'{dtype.name.upper()}_{"MIN" if kind == "lowest" else "MAX"}'


def _combiner(kernel):
    """`<name>_combine(a, b)` and the OpenMP reduction of the same name."""
    r = kernel.reduction
    acc = _accumulator_type(r)
    combine = f'{kernel.name}_combine'
    return '\n'.join([
        f'static inline {acc} {combine}({acc} a, {acc} b)',
        '{',
        f'    return {_COMBINE[r.op][0]};',
        '}',
        f'#pragma omp declare reduction({combine} : {acc} : \\',
        f'    omp_out = {combine}(omp_out, omp_in)) initializer(omp_priv = {_identity(r)})', ''])


def _block_function(kernel):
    """The block at `start` (up to `stop`): writes the outputs, or returns the
    block's partial reduction."""
    r = kernel.reduction
    params, _ = _parameters(kernel, outputs=r is None)
    returns = 'void' if r is None else _accumulator_type(r)
    lines = [_signature(f'static inline {returns}', f'{kernel.name}_block',
                        'long long start, long long stop', params), '{',
             '    const int m = stop - start < BLOCK ? stop - start : BLOCK;']
    arrays = [v for v in kernel.inputs if not v.scalar]
    for k, v in enumerate(arrays):
        t, dtype = c_type(v.dtype), numpy.dtype(v.dtype).name
        lines += [f'    {t} {v.name}_gather[BLOCK];',
                  f'    const {t} *restrict {v.name}_b = {v.name}_step >= 0 ? '
                  f'{v.name}_data + start * {v.name}_step',
                  f'        : gather_{dtype}({v.name}_gather, {v.name}_data, start, m, geom, {k});']
    for v in kernel.outputs if r is None else ():
        lines.append(f'    {c_type(v.dtype)} *restrict {v.name}_b = {v.name}_data + start;')
    if r is None:
        lines.append('    #pragma omp simd')
    else:
        lines += [f'    {returns} acc = {_identity(r)};',
                  f'    #pragma omp simd reduction({kernel.name}_combine:acc)']
    lines.append('    for (int j = 0; j < m; j++) {')
    for v in kernel.inputs:
        if not v.scalar:
            lines.append(f'        const {c_type(v.dtype)} {v.name} = {v.name}_b[j];')
    for step in kernel.steps:
        lines.append(f'        const {c_type(step.dtype)} {step.name} = {step.expr};')
    if r is None:
        lines += [f'        {out}_b[j] = {local};' for out, local in kernel.results]
    else:
        lines.append(f'        acc = {kernel.name}_combine(acc, {r.value});')
    lines.append('    }')
    if r is not None:
        lines.append('    return acc;')
    return '\n'.join(lines + ['}', ''])


def _fill_buffers(kernel):
    """Driver lines that point each size-1 array operand at a filled block."""
    lines = []
    for v in kernel.inputs:
        if not v.scalar:
            t = c_type(v.dtype)
            name = numpy.dtype(v.dtype).name
            repeat = f'repeat_{name}({v.name}_fill, {v.name}_data, {v.name}_step)'
            lines += [f'    {t} {v.name}_fill[BLOCK];', f'    {v.name}_data = {repeat};']
    return lines


def _block_call(kernel, stop, indent, before='', after=';'):
    """`<before><name>_block(start, stop, operands...)<after>`, wrapped."""
    _, args = _parameters(kernel, outputs=kernel.reduction is None)
    return _call(f'{indent}{before}{kernel.name}_block', ['start', stop] + args, ')' + after)


def _call(head, args, end):
    """`head(args)end`, wrapped after commas to keep lines under 100 columns."""
    lines, line = [], head + '('
    pad = ' ' * len(line)
    for k, arg in enumerate(args):
        piece = arg + (', ' if k + 1 < len(args) else end)
        if len(line) + len(piece) > 99 and line != pad and not line.endswith('('):
            lines.append(line.rstrip())
            line = pad
        line += piece
    return '\n'.join(lines + [line])


def _elementwise_driver(kernel):
    params, _ = _parameters(kernel)
    loop = ['        for (long long k_block = 0; k_block < n_blocks; k_block++) {',
            '            const long long row = k_block / run_blocks;',
            '            const long long start = row * run + (k_block - row * run_blocks) * BLOCK;',
            _block_call(kernel, 'row * run + run', '            '), '        }']
    lines = ['/* n elements, C order; threads: 0 keeps the work on the calling thread */',
             _signature('void', f'{kernel.name}_strided', 'long long n, int threads', params),
             '{']
    lines += _fill_buffers(kernel)
    lines += ['    /* Blocks stay within rows of the last axis (after merging) where it is long,',
              '       so that a gathered operand contiguous along it is read in place. */',
              '    const long long run = geom && geom[geom[0]] >= BLOCK / 2 ? geom[geom[0]] : n;',
              '    const long long run_blocks = (run + BLOCK - 1) / BLOCK;',
              '    const long long n_blocks = n ? n / run * run_blocks : 0;',
              '    if (threads && n > PARALLEL) {',
              '        #pragma omp parallel for schedule(guided)']
    lines += loop + ['    } else {    /* no thread team: even unused, one costs 0.4 us */'] + loop
    lines += ['    }', '}', '']
    return '\n'.join(lines) + _entry(kernel, 'long long n, int threads', ['n', 'threads'])


def _entry(kernel, head, args):
    """`<name>`: `<name>_strided` without the geometry (NULL), for calls whose
    arrays are all read directly or filled: passing None costs ctypes 75 ns."""
    params, pass_on = _parameters(kernel)
    return '\n'.join([
        '', '/* The same where no operand is gathered (steps 1 and 0 only) */',
        _signature('void', kernel.name, head, params[1:]), '{',
        _call(f'    {kernel.name}_strided', args + ['0'] + pass_on[1:], ');'), '}', ''])


def _row_function(kernel):
    """`<name>_row`: the result of one row, its blocks reduced in order."""
    r = kernel.reduction
    params, _ = _parameters(kernel, outputs=False)
    acc = _accumulator_type(r)
    return '\n'.join([
        _signature(f'static {acc}', f'{kernel.name}_row', 'long long row, long long cols', params),
        '{',
        '    const long long stop = (row + 1) * cols;',
        f'    {acc} acc = {_identity(r)};',
        '    for (long long start = row * cols; start < stop; start += BLOCK)',
        _block_call(kernel, 'stop', '        ', f'acc = {kernel.name}_combine(acc, ', ');'),
        f'    return {_finish(r)};',
        '}', ''])


def _finish(reduction):
    return 'acc / cols' if reduction.op == 'mean' else 'acc'


def _reduction_driver(kernel):
    r = kernel.reduction
    params, _ = _parameters(kernel)
    _, row_args = _parameters(kernel, outputs=False)
    acc = _accumulator_type(r)
    combine = f'{kernel.name}_combine'
    out = f'{kernel.outputs[0].name}_data'
    row = _call(f'            {out}[row] = {kernel.name}_row', ['row', 'cols'] + row_args, ');')
    lines = [f'/* {r.op} over each of `rows` runs of `cols` elements, C order */',
             _signature('void', f'{kernel.name}_strided',
                        'long long rows, long long cols, int threads', params), '{']
    lines += _fill_buffers(kernel)
    lines += [
        '    if (threads && rows == 1 && cols > PARALLEL) {    /* the threads share the row */',
        f'        {acc} acc = {_identity(r)};',
        f'        #pragma omp parallel for schedule(guided) reduction({combine}:acc)',
        '        for (long long start = 0; start < cols; start += BLOCK)',
        _block_call(kernel, 'cols', '            ', f'acc = {combine}(acc, ', ');'),
        f'        {out}[0] = {_finish(r)};',
    ] + _row_loops('    }', row)
    return '\n'.join(lines) + _entry(kernel, 'long long rows, long long cols, int threads',
                                      ['rows', 'cols', 'threads'])


def _row_loops(closing, row):
    """After the branch for one wide row (ended by `closing`): the rows shared
    by the threads, or walked by the calling thread, each doing `row`; then the
    function's end."""
    return [closing + ' else if (threads && rows * cols > PARALLEL) {    /* they share the rows */',
            '        #pragma omp parallel for schedule(guided)',
            '        for (long long row = 0; row < rows; row++)',
            row,
            '    } else {    /* no thread team: even unused, one costs 0.4 us */',
            '        for (long long row = 0; row < rows; row++)',
            row,
            '    }',
            '}', '']


# Identifiers the generated C uses besides the kernel's own names (and their
# derived `<name>_data`, `_step`, `_fill`, `_gather`, `_b`).
RESERVED = {'n', 'threads', 'start', 'stop', 'm', 'j', 'acc', 'rows', 'cols', 'row', 'geom',
            'run', 'run_blocks', 'n_blocks', 'k_block', 'BLOCK', 'PARALLEL', 'MAX_NDIM',
            'I', 'complex', 'imaginary',                                  # these three: tgmath.h
            'fabs', 'fmax', 'fmin', 'floor', 'ceil', 'trunc', 'rint', 'round', 'signbit',
            'fmod', 'copysign', 'isnan', 'isinf', 'isfinite', 'sqrt', 'INFINITY', 'NAN',
            *_VECTOR_MATH}


def _name_clashes(kernel):
    """The kernel's names that the generated C would also declare."""
    own = [v.name for v in kernel.inputs + kernel.outputs + kernel.steps]
    derived = {f'{name}_{suffix}' for name in own
               for suffix in ('data', 'step', 'fill', 'gather', 'b')}
    functions = {f'{kernel.name}_{suffix}' for suffix in ('block', 'row', 'combine', 'strided')}
    if kernel.trailing:
        from . import c_rows
        functions |= c_rows.functions(kernel)
    functions |= {f'{reader}_{numpy.dtype(v.dtype).name}' for v in kernel.inputs
                  for reader in ('repeat', 'gather')}
    taken = RESERVED | derived | functions
    return sorted(set(own) & taken | {name for name in own if own.count(name) > 1})
