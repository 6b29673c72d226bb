"""C source for row-wise kernels on the CPU (see transformer/kernels/c.py for
the element-wise and reduction kernels, whose readers and conventions these
share).

A row is `cols` consecutive elements (C order) of the inputs' broadcast
shape: its last `kernel.trailing` axes. Each row runs the kernel's passes
(kernels.row_plan) one after the other while it is in cache: a pass is a
loop over the row's blocks that recomputes the element steps it needs,
accumulates its reductions and writes the element outputs it can; between
passes the row's reductions are finished and the steps on row values run
once. Rows go to OpenMP threads when there are many elements, and a single
long row (a reduction over every axis) has its blocks shared instead, pass
by pass.

Measured (softmax over the rows of 1000 x 1000 float64, CPU time of one
thread, this 2-core AVX-512 machine): 1.75 ms, against 1.96 ms when pass 3
computes exp again instead of loading what pass 2 kept (KEEP), and 4.0 ms for
NumPy's five calls; docs/performance.md has the wall times against JAX.

Variances are two passes (the mean, then the deviations from it) with the
corrected two-pass formula (sum d^2 - (sum d)^2 / n) / (n - ddof), in double:
exact for data with a large mean, where E[x^2] - E[x]^2 cancels.
"""
import re

import numpy

from . import (Kernel, RowReduction, Step, TWO_PASS, accumulator, c_literal, c_type,
               row_finish, row_plan, shape_program)
from . import c

KEEP = 4096           # elements of a row whose kept values stay on the stack (32 KB of double)

# How the per-block accumulators of a reduction combine: an OpenMP operator,
# or None for a declared reduction with NaN semantics (c._COMBINE).
_OPERATOR = {'sum': '+', 'mean': '+', 'prod': '*', 'var': '+', 'std': '+',
             'max': None, 'min': None}


def function_source(kernel):
    """The kernel as C: `void <name>(rows, cols, threads, ...)`, which the runtime calls."""
    plan = row_plan(kernel)
    parts = [c._header(kernel), c._vector_math(kernel),
             '#include <tgmath.h>    /* type-generic: tanh of a float is tanhf */\n',
             c._readers(kernel), _combiners(kernel)]
    if _keeps(plan):
        parts.append(f'#define KEEP {KEEP}    /* a row this long keeps values between passes */\n')
    parts += [_pass_function(kernel, plan, p) for p in plan.passes]
    if _keeps(plan):
        parts += [_pass_function(kernel, plan, p, kept=True) for p in plan.passes
                  if p.loads or p.stores]
    parts += [_row_function(kernel, plan, wide=False), _row_function(kernel, plan, wide=True),
              _driver(kernel)]
    return '\n'.join(part for part in parts if part)


def as_rows(kernel):
    """A reduction kernel (var or std, over trailing axes) as the row-wise
    kernel with one reduction that computes it."""
    r = kernel.reduction
    trailing = r.ndim if r.axis is None else len(r.axis)
    out = kernel.outputs[0]
    local = f'{out.name}_r'
    steps, known = [], {v.name for v in kernel.inputs}
    for step in kernel.steps:            # every step is per element: say what it reads
        reads = step.reads or tuple(dict.fromkeys(
            name for name in re.findall(r'[A-Za-z_]\w*', step.expr) if name in known))
        steps.append(Step(step.name, step.dtype, step.expr, reads))
        known.add(step.name)
    return Kernel(kernel.name, kernel.inputs, kernel.outputs, tuple(steps) + (
        RowReduction(local, r.op, r.value, r.dtype, r.keepdims, r.ndim, r.ddof),),
        results=((out.name, local),), comment=kernel.comment, trailing=trailing)


def expression(kernel, fallback):
    """`rt.kernels.cpu.kernel(...)` of a row-wise kernel (see c.expression)."""
    source = function_source(kernel)
    assert "'''" not in source
    inputs = tuple(c._spec(value) for value in kernel.inputs)
    outputs = tuple(numpy.dtype(value.dtype).name for value in kernel.outputs)
    program, shaped = shape_program(kernel)
    rows = {'trailing': kernel.trailing, 'program': program, 'written': shaped}
    return (f"rt.kernels.cpu.kernel(r'''\n{source}''', {kernel.name!r}, "
            f'inputs={inputs!r}, outputs={outputs!r}, rows={rows!r}, fallback={fallback})')


def functions(kernel):
    """The C functions the kernel defines besides the readers (for name checks)."""
    count = len(row_plan(kernel).passes)
    return {f'{kernel.name}_{suffix}' for suffix in ('row', 'wide', 'strided')} | \
        {f'{kernel.name}_pass{k}{kept}' for k in range(1, count + 1) for kept in ('', '_kept')} | \
        {_combiner_name(kernel, r.op, accumulator(r.op, r.dtype)) for r in _reductions(kernel)}


# ---------------------------------------------------------------- the pieces
def _reductions(kernel):
    return [item for item in kernel.steps if isinstance(item, RowReduction)]


def _combiner_name(kernel, op, acc):
    return f'{kernel.name}_{op}_{numpy.dtype(acc).name}'


def _combiners(kernel):
    """A combine function and an OpenMP reduction for each max or min the
    kernel has (sums and products use OpenMP's own + and *)."""
    lines, done = [], set()
    for r in _reductions(kernel):
        acc = accumulator(r.op, r.dtype)
        name = _combiner_name(kernel, r.op, acc)
        if _OPERATOR[r.op] is not None or name in done:
            continue
        done.add(name)
        t = c_type(acc)
        lines += [f'static inline {t} {name}({t} a, {t} b)', '{',
                  f'    return {c._COMBINE[r.op][0]};', '}',
                  f'#pragma omp declare reduction({name} : {t} : \\',
                  f'    omp_out = {name}(omp_out, omp_in)) initializer(omp_priv = {_identity(r)})',
                  '']
    return '\n'.join(lines)


def _identity(r):
    acc = accumulator(r.op, r.dtype)
    if r.op in TWO_PASS:
        return c_literal(0, acc)
    return c._identity(r, c_type(acc))


def _index(kernel, r):
    return _reductions(kernel).index(r)


def _accumulators(kernel, reduction, phase):
    """The C names of a reduction's accumulators in a phase: its value's
    reduction, or (var, std) the sums of the deviations and their squares."""
    k = _index(kernel, reduction)
    return [f'_a{k}'] if phase == 'value' else [f'_d{k}', f'_q{k}']


def _row_reads(plan, p):
    """The row values a pass reads (as parameters), in order."""
    names = []
    for step in p.steps:
        for name in step.reads:
            if plan.kinds[name] == 'row' and name not in names:
                names.append(name)
    return names


def _pass_parameters(kernel, plan, p):
    """A pass function's own parameters (after the start, stop and operands)."""
    params = []
    for name in _row_reads(plan, p):
        params.append(f'const {c_type(_dtype_of(kernel, name))} {name}')
    for r, phase in p.reductions:
        if phase == 'deviation':
            params.append(f'const double _mean{_index(kernel, r)}')
        t = c_type(accumulator(r.op, r.dtype))
        params += [f'{t} *_p{acc[1:]}' for acc in _accumulators(kernel, r, phase)]
    params += [f'{c_type(_output(kernel, out).dtype)} *{out}_data' for out, _ in p.writes]
    return params


def _pass_arguments(kernel, plan, p):
    args = list(_row_reads(plan, p))
    for r, phase in p.reductions:
        if phase == 'deviation':
            args.append(f'_mean{_index(kernel, r)}')
        args += [f'&{acc}' for acc in _accumulators(kernel, r, phase)]
    return args + [f'{out}_data' for out, _ in p.writes]


def _dtype_of(kernel, name):
    return numpy.dtype(next(v.dtype for v in kernel.inputs + kernel.steps if v.name == name))


def _output(kernel, name):
    return next(v for v in kernel.outputs if v.name == name)


def _pass_function(kernel, plan, p, kept=False):
    """`<name>_pass<k>`: one block of a row: its element steps, its
    reductions into the caller's accumulators, its element outputs; and
    `<name>_pass<k>_kept`, which loads what the pass before kept for it and
    keeps what the next one loads (in the caller's row buffers `_k_<value>`)."""
    params, _ = c._parameters(kernel, outputs=False)
    inputs, steps = (p.kept_inputs, p.kept) if kept else (p.inputs, p.steps)
    loads, stores = _kept_values(p) if kept else ((), ())
    params = params + _pass_parameters(kernel, plan, p) + \
        [f'const {c_type(s.dtype)} *restrict _k_{s.name}' for s in loads] + \
        [f'{c_type(s.dtype)} *restrict _k_{s.name}' for s in stores]
    name = f'{kernel.name}_pass{p.number}' + ('_kept' if kept else '')
    lines = [c._signature('static inline void', name, 'long long start, long long stop', params),
             '{', '    const int m = stop - start < BLOCK ? stop - start : BLOCK;']
    arrays = [v for v in kernel.inputs if not v.scalar]
    for v in inputs:
        t, dtype = c_type(v.dtype), numpy.dtype(v.dtype).name
        lines += [f'    {t} {v.name}_gather[BLOCK];',
                  f'    const {t} *restrict {v.name}_b = {v.name}_step >= 0 ? '
                  f'{v.name}_data + start * {v.name}_step',
                  f'        : gather_{dtype}({v.name}_gather, {v.name}_data, start, m, geom, '
                  f'{arrays.index(v)});']
    for out, _ in p.writes:
        lines.append(f'    {c_type(_output(kernel, out).dtype)} *restrict {out}_b = '
                     f'{out}_data + start;')
    declared, clauses = _declare_accumulators(kernel, p)
    lines += declared + [_pragma('simd', clauses)]
    lines.append('    for (int j = 0; j < m; j++) {')
    for v in inputs:
        lines.append(f'        const {c_type(v.dtype)} {v.name} = {v.name}_b[j];')
    for step in loads:
        lines.append(f'        const {c_type(step.dtype)} {step.name} = _k_{step.name}[j];')
    for step in steps:
        lines.append(f'        const {c_type(step.dtype)} {step.name} = {step.expr};')
    lines += [f'        _k_{step.name}[j] = {step.name};' for step in stores]
    for r, phase in p.reductions:
        lines += [f'        {line}' for line in _accumulate(kernel, r, phase)]
    lines += [f'        {out}_b[j] = {local};' for out, local in p.writes]
    lines.append('    }')
    for r, phase in p.reductions:
        for acc in _accumulators(kernel, r, phase):
            lines.append(f'    {_combine(kernel, r, phase, f"*_p{acc[1:]}", acc)};')
    return '\n'.join(lines + ['}', ''])


def _kept_values(p):
    """The steps a pass loads and those it stores (one loaded needs no store)."""
    loaded = {s.name for s in p.loads}
    return p.loads, tuple(s for s in p.stores if s.name not in loaded)


def _keeps(plan):
    """Whether any pass loads what the one before kept (then rows of up to
    KEEP elements run the _kept passes)."""
    return any(p.loads for p in plan.passes)


def _declare_accumulators(kernel, p):
    """A pass's accumulators, declared at their identities, and the OpenMP
    reduction clauses that combine them."""
    lines, clauses = [], {}
    for r, phase in p.reductions:
        acc_dtype = accumulator(r.op, r.dtype)
        for acc in _accumulators(kernel, r, phase):
            lines.append(f'    {c_type(acc_dtype)} {acc} = '
                         f'{_identity(r) if phase == "value" else "0.0"};')
            op = (_OPERATOR[r.op] or _combiner_name(kernel, r.op, acc_dtype)) \
                if phase == 'value' else '+'
            clauses.setdefault(op, []).append(acc)
    return lines, [f'reduction({op}:{", ".join(accs)})' for op, accs in clauses.items()]


def _pragma(head, clauses):
    """`#pragma omp <head> <clauses>`, a clause a line where one line is too long."""
    line = ' '.join([f'    #pragma omp {head}'] + clauses)
    return line if len(line) < 100 else ' \\\n        '.join([f'    #pragma omp {head}'] + clauses)


def _accumulate(kernel, r, phase):
    """The element loop's lines adding element `r.value` to the accumulators."""
    k = _index(kernel, r)
    t = c_type(accumulator(r.op, r.dtype))
    if phase == 'deviation':
        return [f'const double _e{k} = (double){r.value} - _mean{k};',
                f'_d{k} += _e{k};', f'_q{k} += _e{k} * _e{k};']
    value = r.value if _dtype_of(kernel, r.value) == accumulator(r.op, r.dtype) \
        else f'({t}){r.value}'
    return [f'{_combine(kernel, r, phase, f"_a{k}", value)};']


def _combine(kernel, r, phase, into, value):
    """`into = into <op> value`, as C."""
    op = _OPERATOR[r.op] if phase == 'value' else '+'
    if op is None:
        combiner = _combiner_name(kernel, r.op, accumulator(r.op, r.dtype))
        return f'{into} = {combiner}({into}, {value})'
    return f'{into} {op}= {value}'


def _row_function(kernel, plan, wide):
    """`<name>_row`: every pass over one row, then its row outputs; or
    `<name>_wide`: the same over a single row whose blocks the threads share.
    A row of up to KEEP elements keeps values between passes (plan._keep) in
    buffers on the stack."""
    params, args = c._parameters(kernel)
    head = 'long long cols' if wide else 'long long row, long long cols'
    name = f'{kernel.name}_{"wide" if wide else "row"}'
    lines = [c._signature('static void', name, head, params), '{']
    lines += ['    const long long _first = 0, stop = cols;' if wide else
              '    const long long _first = row * cols, stop = _first + cols;']
    lines += [f'    const {c_type(s.dtype)} {s.name} = {s.expr};' for s in plan.before]
    operands = args[:1 + sum(1 for _ in kernel.inputs)]
    if wide or not _keeps(plan):
        lines += _row_body(kernel, plan, operands, wide, False)
    else:
        buffers = {s.name: s for p in plan.passes for s in p.stores}.values()
        lines += ['    if (cols <= KEEP) {']
        lines += [f'        {c_type(s.dtype)} _k_{s.name}[KEEP];' for s in buffers]
        lines += _indent(_row_body(kernel, plan, operands, wide, True))
        lines += ['    } else {']
        lines += _indent(_row_body(kernel, plan, operands, wide, False))
        lines += ['    }']
    return '\n'.join(lines + ['}', ''])


def _indent(lines):
    return ['\n'.join('    ' + line for line in text.split('\n')) for text in lines]


def _row_body(kernel, plan, operands, wide, kept):
    lines = []
    for p in plan.passes:
        lines += _sweep(kernel, plan, p, operands, wide, kept)
    row = '0' if wide else 'row'
    return lines + [f'    {out}_data[{row}] = {local};' for out, local in plan.row_writes]


def _sweep(kernel, plan, p, operands, wide, kept):
    """One pass over the row's blocks, then what it finishes."""
    declared, clauses = _declare_accumulators(kernel, p)
    lines = [f'    /* pass {p.number} */'] + declared
    if wide:
        lines.append(_pragma('parallel for schedule(guided)', clauses))
    lines.append('    for (long long start = _first; start < stop; start += BLOCK)')
    kept = kept and (p.loads or p.stores)
    buffers = [f'_k_{s.name} + (start - _first)' for group in _kept_values(p) for s in group]
    lines.append(c._call(f'        {kernel.name}_pass{p.number}' + ('_kept' if kept else ''),
                         ['start', 'stop'] + operands + _pass_arguments(kernel, plan, p)
                         + (buffers if kept else []), ');'))
    for r, phase in p.reductions:
        k = _index(kernel, r)
        if r.op in TWO_PASS and phase == 'value':
            lines.append(f'    const double _mean{k} = _a{k} / (double)cols;')
        elif r.op not in TWO_PASS or phase == 'deviation':
            finish = row_finish(r, f'_a{k}', 'cols', f'_d{k}', f'_q{k}')
            lines.append(f'    const {c_type(r.dtype)} {r.name} = {finish};')
    lines += [f'    const {c_type(s.dtype)} {s.name} = {s.expr};' for s in p.after]
    return lines


def _driver(kernel):
    params, args = c._parameters(kernel)
    row = c._call(f'            {kernel.name}_row', ['row', 'cols'] + args, ');')
    lines = ['/* `rows` rows of `cols` elements (C order); threads: 0 keeps the work on the',
             '   calling thread */',
             c._signature('void', f'{kernel.name}_strided',
                          'long long rows, long long cols, int threads', params), '{']
    lines += c._fill_buffers(kernel)
    lines += [
        '    if (threads && rows == 1 && cols > PARALLEL)    /* the threads share the row */',
        c._call(f'        {kernel.name}_wide', ['cols'] + args, ');'),
    ] + c._row_loops('   ', row)
    return '\n'.join(lines) + c._entry(kernel, 'long long rows, long long cols, int threads',
                                       ['rows', 'cols', 'threads'])

