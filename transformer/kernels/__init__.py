"""Fused kernels: the backend-neutral record the fusion pass (transformer/fuse.py)
builds for each fusion group, and the C spelling of types and constants that
both back ends share. `cuda.py` turns a Kernel into CuPy kernel source, `c.py`
into a C function for the CPU; the runtime compiles either (runtime/kernels/).

A Kernel reads its inputs (arrays, broadcast together, or Python numbers passed
by value), runs `steps` per element, in order, each a single-assignment C
local, and either writes `results` element-wise or reduces one local.
"""
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


@dataclass(frozen=True)
class Reduction:
    """The kernel's one result reduces the local `value` (an array of rank
    `ndim`) with `op` over `axis` (None: every axis; else sorted non-negative
    ints), keeping reduced axes as length 1 if `keepdims`."""
    op: str                     # 'sum', 'mean', 'max', 'min' or 'prod'
    value: str
    dtype: numpy.dtype          # the result's dtype (the accumulator's too)
    axis: Optional[tuple]
    keepdims: bool
    ndim: int


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

    @property
    def kind(self):
        return 'elementwise' if self.reduction is None else 'reduction'


def definition(kernel, fallback, backend):
    """Generated source defining `_<kernel.name>`: the NumPy fallback
    function (the fused statements themselves), then the kernel built from
    the back end's text ('numpy': C for the CPU; 'cupy': CUDA)."""
    from .. import nodes as n
    from . import c, cuda
    header = f'# fused kernel {kernel.name}' + (f' ({kernel.comment})' if kernel.comment else '')
    fallback_text = n.to_source(fallback).rstrip()
    if backend == 'cupy':
        built = cuda.expression(kernel)
    else:
        built = c.expression(kernel, fallback.name)
    if kernel.partial:
        built = f'rt.kernels.checked({built}, {fallback.name}, {kernel.partial!r})'
    return f'{header}\n{fallback_text}\n\n_{kernel.name} = {built}\n'
