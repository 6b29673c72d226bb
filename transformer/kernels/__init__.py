"""Fused kernels: the backend-neutral record the fusion pass (transformer/fuse.py)
builds for each fusion group, and the C spelling of types and constants that
both back ends share. `cuda.py` turns a Kernel into CuPy kernel source, `c.py`
into a C function for the CPU; the runtime compiles either (runtime/kernels/).

A Kernel reads its inputs (arrays, broadcast together, or Python numbers passed
by value), runs `steps` per element, in order, each a single-assignment C
local, and either writes `results` element-wise or reduces one local. A
row-wise kernel (`trailing` > 0) does both on each row (the trailing axes):
its steps mix per-element Steps with RowReductions, whose per-row results
feed later steps, and `row_plan` schedules them into passes over the row.
"""
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy

C_TYPES = {
    'bool': 'bool', 'int8': 'signed char', 'uint8': 'unsigned char', 'int16': 'short',
    'uint16': 'unsigned short', 'int32': 'int', 'uint32': 'unsigned int',
    'int64': 'long long', 'uint64': 'unsigned long long', 'float32': 'float',
    'float64': 'double',
}


def c_type(dtype):
    """The C type of a NumPy dtype (None where kernels do not handle it)."""
    return C_TYPES.get(numpy.dtype(dtype).name)


def c_literal(value, dtype):
    """A Python number as a C constant of `dtype`: 2.0 -> '2.0' (double) or '2.0f'."""
    dtype = numpy.dtype(dtype)
    if dtype.kind == 'b':
        return 'true' if value else 'false'
    if dtype.kind in 'iu':
        return f'{int(value)}' if dtype.itemsize < 8 else f'{int(value)}LL'
    suffix = 'f' if dtype == numpy.float32 else ''
    value = float(value)
    if not numpy.isfinite(value):         # no literal: a constant expression
        top = '0.0' if value != value else '1.0' if value > 0 else '-1.0'
        return f'({top}{suffix} / 0.0{suffix})'
    text = repr(value)
    if 'e' not in text and '.' not in text:
        text += '.0'
    return text + suffix


@dataclass(frozen=True)
class Value:
    """A kernel parameter: `name` in C, `source` the Python name it binds."""
    name: str
    source: str
    dtype: numpy.dtype
    scalar: bool = False        # a Python number, passed by value


@dataclass(frozen=True)
class Step:
    """`<c_type(dtype)> name = expr;` (operands already cast to what expr needs)."""
    name: str
    dtype: numpy.dtype
    expr: str
    reads: tuple = ()           # the kernel's names in expr (row-wise kernels schedule by them)


@dataclass(frozen=True)
class Reduction:
    """The kernel's one result reduces the local `value` (an array of rank
    `ndim`) with `op` over `axis` (None: every axis; else sorted non-negative
    ints), keeping reduced axes as length 1 if `keepdims`."""
    op: str                     # 'sum', 'mean', 'max', 'min', 'prod', 'var' or 'std'
    value: str
    dtype: numpy.dtype          # the result's dtype
    axis: Optional[tuple]
    keepdims: bool
    ndim: int
    ddof: float = 0             # var and std divide by (count - ddof)


@dataclass(frozen=True)
class RowReduction:
    """In a row-wise kernel: the per-row local `name` is `op` of the element
    local `value` (of rank `ndim`) over the row."""
    name: str
    op: str                     # as Reduction's
    value: str
    dtype: numpy.dtype          # the result's dtype
    keepdims: bool
    ndim: int
    ddof: float = 0


@dataclass(frozen=True)
class Kernel:
    name: str                   # a C identifier, deterministic per source
    inputs: tuple               # of Value
    outputs: tuple              # of Value: what the call returns, in order
    steps: tuple                # of Step
    results: tuple = ()         # element-wise: (output name, local name) pairs
    reduction: Optional[Reduction] = None
    comment: str = field(default='', compare=False)   # the user's lines it fuses
    # Outputs computed from only some of the array inputs, as (output index,
    # input indices): their shape is the broadcast of those inputs, which a
    # kernel (broadcasting all inputs together) matches only when it equals
    # the full broadcast shape. The call checks, else runs the fallback.
    partial: tuple = ()
    # Row-wise kernels: how many trailing axes make a row (their RowReductions
    # reduce them); 0 for the other kinds.
    trailing: int = 0

    @property
    def kind(self):
        if self.trailing:
            return 'rowwise'
        return 'elementwise' if self.reduction is None else 'reduction'


# ---------------------------------------------------------------- row-wise kernels
TWO_PASS = ('var', 'std')       # a mean first, then the deviations from it


def accumulator(op, dtype):
    """The dtype a reduction accumulates in: float64 for floating sums, means,
    products and (always) variances; otherwise the result's own."""
    dtype = numpy.dtype(dtype)
    if op in TWO_PASS or op in ('sum', 'mean', 'prod') and dtype.kind == 'f':
        return numpy.dtype(numpy.float64)
    return dtype


@dataclass(frozen=True)
class Pass:
    """One sweep over a row: the element `steps` it needs (in order), the
    `reductions` it accumulates, as (RowReduction, phase) pairs (phase
    'value', or 'deviation' for a var/std's second sweep), the element
    outputs it `writes` ((output, local) pairs), and the per-row `after`
    steps that become computable once its reductions are finished."""
    number: int
    inputs: tuple               # the array inputs its steps read (Values)
    steps: tuple
    reductions: tuple
    writes: tuple
    after: tuple
    # Where the row is short enough to keep values (a back end's choice): the
    # steps the previous pass computed whose values this one `loads` instead
    # of computing again, its own steps and inputs then (`kept`,
    # `kept_inputs`), and the steps whose values it `stores` for the next.
    loads: tuple = ()
    kept: tuple = ()
    kept_inputs: tuple = ()
    stores: tuple = ()


@dataclass(frozen=True)
class RowPlan:
    passes: tuple               # of Pass
    before: tuple               # per-row steps of scalars alone (computed first)
    row_writes: tuple           # (output, local) pairs written once a row
    kinds: dict                 # name -> 'element', 'row' or 'scalar'


def row_plan(kernel):
    """Schedule a row-wise kernel: every reduction accumulates in the first
    sweep after everything it reads is known (a var/std also in the one
    after), steps of row values alone run once a row between sweeps, and each
    element output is written in the first sweep that can compute it. A sweep
    recomputes the element steps it needs (the row is read again, from
    cache), except that values the previous sweep computed with a math call
    (softmax's exp) may be kept for it (see Pass, _keep)."""
    kinds, level, by_name = {}, {}, {}
    for v in kernel.inputs:
        kinds[v.name], level[v.name] = ('scalar' if v.scalar else 'element'), 0
    for item in kernel.steps:
        by_name[item.name] = item
        if isinstance(item, RowReduction):
            if kinds.get(item.value) != 'element':
                raise ValueError(f'kernel {kernel.name}: {item.name} reduces {item.value!r}, '
                                 'which is not an element value')
            kinds[item.name] = 'row'
            level[item.name] = level[item.value] + (2 if item.op in TWO_PASS else 1)
            continue
        read = [kinds[name] for name in item.reads]
        kinds[item.name] = 'element' if 'element' in read else 'row'
        level[item.name] = max([level[name] for name in item.reads], default=0)
    outputs = dict(kernel.results)
    count = max([level[r.name] for r in kernel.steps if isinstance(r, RowReduction)]
                + [level[local] + 1 for local in outputs.values() if kinds[local] == 'element'])
    passes = []
    for number in range(1, count + 1):
        accumulating = []
        for r in kernel.steps:
            if isinstance(r, RowReduction):
                first = level[r.value] + 1
                if number == first:
                    accumulating.append((r, 'value'))
                elif number == first + 1 and r.op in TWO_PASS:
                    accumulating.append((r, 'deviation'))
        writes = tuple((out, local) for out, local in kernel.results
                       if kinds[local] == 'element' and level[local] + 1 == number)
        needed = _element_slice(kernel, by_name, kinds,
                                [r.value for r, _ in accumulating] + [l for _, l in writes])
        after = tuple(s for s in kernel.steps if isinstance(s, Step)
                      and kinds[s.name] == 'row' and level[s.name] == number)
        reads = {name for s in needed for name in s.reads} | \
            {r.value for r, _ in accumulating} | {local for _, local in writes}
        inputs = tuple(v for v in kernel.inputs if not v.scalar and v.name in reads)
        passes.append(Pass(number, inputs, needed, tuple(accumulating), writes, after))
    passes = _keep(kernel, by_name, kinds, passes)
    before = tuple(s for s in kernel.steps if isinstance(s, Step)
                   and kinds[s.name] == 'row' and level[s.name] == 0)
    row_writes = tuple((out, local) for out, local in kernel.results if kinds[local] != 'element')
    return RowPlan(tuple(passes), before, row_writes, kinds)


def _element_slice(kernel, by_name, kinds, names, known=frozenset()):
    """The element steps that compute `names`, in order, given the values `known`."""
    need = {name for name in names if kinds.get(name) == 'element'} - known
    kept = []
    for item in reversed(kernel.steps):
        if isinstance(item, Step) and item.name in need:
            need |= {name for name in item.reads if kinds[name] == 'element'} - known
            kept.append(item)
    return tuple(kept[::-1])


def _calls(expr):
    """Whether a C expression calls a function (exp, tanh: worth keeping)."""
    return re.search(r'\b[A-Za-z_]\w*\s*\(', expr) is not None


def _keep(kernel, by_name, kinds, passes):
    """The passes, each told what to keep from the one before: the values it
    needs, among the steps both compute, where computing them again would
    call a math function; only the ones it reads directly are kept."""
    loads = [()]
    for before, now in zip(passes, passes[1:]):
        shared = {s.name for s in before.steps} & {s.name for s in now.steps}
        if not any(_calls(by_name[name].expr) for name in shared):
            loads.append(())
            continue
        own = [s for s in now.steps if s.name not in shared]
        loads.append(tuple(s for s in now.steps if s.name in shared and (
            s.name in _ends(now) or any(s.name in t.reads for t in own))))
    stores = loads[1:] + [()]
    kept = []
    for p, load, store in zip(passes, loads, stores):
        ends = _ends(p) + [s.name for s in store]
        steps = _element_slice(kernel, by_name, kinds, ends, {s.name for s in load})
        reads = {name for s in steps for name in s.reads} | set(ends)
        kept.append(dataclasses.replace(p, loads=load, stores=store, kept=steps, kept_inputs=tuple(
            v for v in p.inputs if v.name in reads)))
    return tuple(kept)


def _ends(p):
    """What a pass computes its element steps for: the values it reduces and writes."""
    return [r.value for r, _ in p.reductions] + [local for _, local in p.writes]


def row_finish(reduction, acc, count, deviation=None, square=None):
    """C for a row reduction's result from its accumulators: `acc` (the sum,
    or max, ...), and for var/std the sum of the squared deviations from the
    mean, less the square of their sum over the count (the corrected two-pass
    formula: that term is the mean's rounding) where `deviation` is given."""
    t = c_type(reduction.dtype)
    n = f'(double){count}'
    if reduction.op == 'mean':
        return f'({t})({acc} / {n})'
    if reduction.op in TWO_PASS:             # NumPy divides by max(n - ddof, 0)
        ddof = c_literal(reduction.ddof, numpy.float64)
        if deviation is not None:
            square = f'({square} - {deviation} * {deviation} / {n})'
        var = f'{square} / ' + (f'fmax({n} - {ddof}, 0.0)' if reduction.ddof else n)
        return f'({t})' + (f'sqrt({var})' if reduction.op == 'std' else f'({var})')
    return f'({t}){acc}' if accumulator(reduction.op, reduction.dtype) != \
        numpy.dtype(reduction.dtype) else acc


def shape_program(kernel):
    """The kernel's shape arithmetic, for the run-time check that its outputs
    have the shapes NumPy would give them (runtime.kernels.row_shapes):
    entries after the inputs' are ('e', operand positions) for an element or
    row step, ('r', position, keepdims, ndim) for a reduction; then the
    outputs' positions and whether each is written per element."""
    position = {v.name: k for k, v in enumerate(kernel.inputs)}
    program = []
    for item in kernel.steps:
        if isinstance(item, RowReduction):
            program.append(('r', position[item.value], item.keepdims, item.ndim))
        else:
            program.append(('e', tuple(position[name] for name in item.reads)))
        position[item.name] = len(kernel.inputs) + len(program) - 1
    kinds = row_plan(kernel).kinds
    outputs = tuple((position[local], kinds[local] == 'element') for _, local in kernel.results)
    return tuple(program), outputs


def definition(kernel, fallback, backend):
    """Generated source defining `_<kernel.name>`: the NumPy fallback
    function (the fused statements themselves), then the kernel built from
    the back end's text ('numpy': C for the CPU; 'cupy': CUDA)."""
    from .. import nodes as n
    from . import c, cuda
    header = f'# fused kernel {kernel.name}' + (f' ({kernel.comment})' if kernel.comment else '')
    fallback_text = n.to_source(fallback).rstrip()
    if backend == 'cupy':
        built = cuda.expression(kernel, fallback.name)
    else:
        built = c.expression(kernel, fallback.name)
    if kernel.partial:
        built = f'rt.kernels.checked({built}, {fallback.name}, {kernel.partial!r})'
    return f'{header}\n{fallback_text}\n\n_{kernel.name} = {built}\n'
