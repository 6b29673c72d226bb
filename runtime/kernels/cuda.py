"""Run time of the CUDA back end: the CuPy kernels that generated code builds
with `rt.kernels.cuda.elementwise(...)`, `reduction(...)`, `var_reduction(...)`,
`full_reduction(...)` or `rowwise(...)` (the text comes from
transformer/kernels/cuda.py).

CuPy is imported at the first call. Each kernel is built once per distinct
source and arguments (the functions are memoized on all of them), so generated
code may evaluate the same call on every run. Construction compiles nothing:
CuPy compiles at the first launch and caches the binary on disk, keyed by the
source, which is byte-identical across processes.
"""
import functools
import math

import numpy

from . import row_shapes

BLOCK = 256             # threads a block, both passes of a full reduction
BLOCKS_PER_SM = 8       # 2048 resident threads a multiprocessor: pass 1 is one full wave
WARP_COLS = 1024        # rows up to this long get a warp each (transformer's WARP_COLS)
# Fewer rows than multiprocessors, each longer than this: a block a row would
# leave most of the GPU idle, so the call runs the NumPy code on CuPy instead.
LONG_ROW = 1 << 16
_NO_IDENTITY = {'max': 'maximum', 'min': 'minimum'}     # NumPy's names, for its error


def _cupy():
    import cupy         # only once a GPU kernel is asked for
    return cupy


def _parse(params):
    """'float32 x, float64 s' -> [('x', dtype('float32')), ('s', dtype('float64'))]."""
    pairs = (param.split() for param in params.split(','))
    return [(name, numpy.dtype(dtype)) for dtype, name in pairs]


@functools.cache
def elementwise(name, in_params, out_params, operation):
    """A cupy.ElementwiseKernel: call it with the inputs in order; it returns the
    output, or a tuple of the outputs."""
    return _cupy().ElementwiseKernel(in_params, out_params, operation, name)


@functools.cache
def reduction(name, in_params, out_params, *, op, axis, keepdims, map_expr, reduce_expr,
              post_map_expr, identity, reduce_type, preamble):
    """A cupy.ReductionKernel bound to its axis and keepdims: call it with the inputs."""
    kernel = _cupy().ReductionKernel(in_params, out_params, map_expr, reduce_expr,
                                     post_map_expr, identity, name,
                                     reduce_type=reduce_type, preamble=preamble)
    return AxisReduction(kernel, op, axis, keepdims)


@functools.cache
def var_reduction(name, in_params, out_params, *, op, axis, keepdims, mean_map_expr,
                  mean_post_map_expr, map_expr, post_map_expr, preamble):
    """A var or std over `axis`: a ReductionKernel for the mean (axes kept),
    then one for the squared deviations from it."""
    cupy = _cupy()
    mean = cupy.ReductionKernel(in_params, 'float64 codax_mean', mean_map_expr, 'a + b',
                                mean_post_map_expr, '0.0', f'{name}_mean',
                                reduce_type='double', preamble=preamble)
    deviation = cupy.ReductionKernel(f'{in_params}, float64 codax_center', out_params, map_expr,
                                     'a + b', post_map_expr, '0.0', name, reduce_type='double',
                                     preamble=preamble)
    return AxisVariance(mean, deviation, axis, keepdims)


@functools.cache
def full_reduction(name, in_params, out_params, *, op, keepdims, code, scalars=()):
    """The two-pass reduction over every axis in `code`: call it with the inputs."""
    kind = FullVariance if op in ('var', 'std') else FullReduction
    return kind(name, in_params, out_params, op, keepdims, code, scalars)


@functools.cache
def rowwise(name, in_params, out_params, *, trailing, program, written, fallback, code,
            scalars=()):
    """The row-wise kernel in `code`: call it with the inputs (its RawKernel
    is shared by every fallback's)."""
    return RowKernel(_raw_kernel(code, name), in_params, out_params, trailing, program,
                     written, fallback, scalars)


@functools.cache
def _raw_kernel(code, name):
    return _cupy().RawKernel(code, name)


def _check_nonempty(op, reduced):
    if reduced == 0 and op in _NO_IDENTITY:
        raise ValueError(f'zero-size array to reduction operation {_NO_IDENTITY[op]} '
                         'which has no identity')


class AxisReduction:
    """A ReductionKernel over `axis`. Max and min refuse an empty reduction, as
    NumPy does, where the kernel would return its identity (-inf, +inf)."""

    def __init__(self, kernel, op, axis, keepdims):
        self.kernel, self.op, self.axis, self.keepdims = kernel, op, axis, keepdims

    def __call__(self, *args):
        if self.op in _NO_IDENTITY:
            shape = numpy.broadcast_shapes(*(numpy.shape(arg) for arg in args))
            _check_nonempty(self.op, math.prod(shape[axis] for axis in self.axis))
        return self.kernel(*args, axis=self.axis, keepdims=self.keepdims)


class FullReduction:
    """Pass 1 leaves one partial per block, pass 2 reduces the partials into a
    0-d array (or ones with keepdims). RawKernels ignore strides and dtypes, so
    arrays go in contiguous and broadcast (one element: by a step of 0), their
    dtypes checked, and Python numbers as the exact NumPy type declared."""

    def __init__(self, name, in_params, out_params, op, keepdims, code, scalars):
        cupy = _cupy()
        self.pass1 = cupy.RawKernel(code, name)
        self.pass2 = cupy.RawKernel(code, f'{name}_finish')
        self.inputs = [(dtype, name in scalars) for name, dtype in _parse(in_params)]
        self.dtype = _parse(out_params)[0][1]
        self.op, self.keepdims = op, keepdims

    def _params(self, cupy, args):
        """The broadcast shape, its size, and pass 1's arguments for the inputs."""
        shape = numpy.broadcast_shapes(*(arg.shape for arg, (_, scalar)
                                         in zip(args, self.inputs) if not scalar))
        size = math.prod(shape)
        _check_nonempty(self.op, size)
        params = []
        for arg, (dtype, scalar) in zip(args, self.inputs):
            params += [dtype.type(arg)] if scalar else _flat(cupy, arg, dtype, shape)
        return shape, size, params

    @staticmethod
    def _blocks(size):
        return max(1, min(-(-size // BLOCK), BLOCKS_PER_SM * _multiprocessors()))

    def __call__(self, *args):
        cupy = _cupy()
        shape, size, params = self._params(cupy, args)
        blocks = self._blocks(size)
        partials = cupy.empty(blocks, self.dtype)
        out = cupy.empty((1,) * len(shape) if self.keepdims else (), self.dtype)
        self.pass1((blocks,), (BLOCK,), (*params, partials, numpy.int64(size)))
        self.pass2((1,), (BLOCK,), (partials, numpy.int64(blocks), out, numpy.int64(size)))
        return out


class AxisVariance:
    """var or std over `axis`: the mean, kept as a broadcast input of the
    squared deviations' kernel."""

    def __init__(self, mean, deviation, axis, keepdims):
        self.mean, self.deviation, self.axis, self.keepdims = mean, deviation, axis, keepdims

    def __call__(self, *args):
        center = self.mean(*args, axis=self.axis, keepdims=True)
        return self.deviation(*args, center, axis=self.axis, keepdims=self.keepdims)


class FullVariance(FullReduction):
    """var or std over every axis: pass 1 and `<name>_mean` give the mean,
    pass 1 again (summing squared deviations from it) and `<name>_finish`
    the result."""

    def __init__(self, name, in_params, out_params, op, keepdims, code, scalars):
        super().__init__(name, in_params, out_params, op, keepdims, code, scalars)
        self.mean = _cupy().RawKernel(code, f'{name}_mean')

    def __call__(self, *args):
        cupy = _cupy()
        shape, size, params = self._params(cupy, args)
        blocks = self._blocks(size)
        partials = cupy.empty(blocks, numpy.float64)
        center = cupy.empty(1, numpy.float64)
        out = cupy.empty((1,) * len(shape) if self.keepdims else (), self.dtype)
        for deviations, finish, into in ((0, self.mean, center), (1, self.pass2, out)):
            self.pass1((blocks,), (BLOCK,), (*params, partials, numpy.int64(size), center,
                                             numpy.int32(deviations)))
            finish((1,), (BLOCK,), (partials, numpy.int64(blocks), into, numpy.int64(size)))
        return out


class RowKernel:
    """A row-wise RawKernel: each row (the last `trailing` axes of the
    inputs' broadcast shape) goes to a warp (up to WARP_COLS elements) or a
    block. Each array is read at `row * row_stride + column * column_stride`
    in elements (_row_operand). Calls whose outputs would not have NumPy's
    shapes (runtime.kernels.row_shapes), empty rows (NumPy's error or
    warning) and a few very long rows run the NumPy `fallback` on CuPy."""

    def __init__(self, kernel, in_params, out_params, trailing, program, written, fallback,
                 scalars):
        self.kernel, self.fallback = kernel, fallback
        self.inputs = [(dtype, name in scalars) for name, dtype in _parse(in_params)]
        self.dtypes = [dtype for _, dtype in _parse(out_params)]
        self.trailing, self.program, self.written = trailing, program, written
        self.shaped = {}

    def __call__(self, *args):
        cupy = _cupy()
        shapes = tuple(() if scalar else arg.shape for arg, (_, scalar) in zip(args, self.inputs))
        if shapes not in self.shaped:
            self.shaped[shapes] = row_shapes(self.program, self.written, self.trailing, shapes)
        found = self.shaped[shapes]
        if found is None or not found[1] or \
                found[0] < _multiprocessors() and found[1] > LONG_ROW:
            return self.fallback(*args)
        rows, cols, out_shapes = found
        full = numpy.broadcast_shapes(*shapes)
        params = []
        for arg, (dtype, scalar) in zip(args, self.inputs):
            if scalar:                                     # a number, by value
                params.append(dtype.type(arg))
                continue
            if arg.dtype != dtype:
                raise TypeError(f'kernel input of dtype {arg.dtype}, declared {dtype}')
            params += _row_operand(cupy, arg, full, self.trailing)
        outs = [cupy.empty(shape, dtype) for shape, dtype in zip(out_shapes, self.dtypes)]
        warp = cols <= WARP_COLS
        per_block = BLOCK // 32 if warp else 1
        blocks = max(1, min(-(-rows // per_block), BLOCKS_PER_SM * _multiprocessors()))
        self.kernel((blocks,), (BLOCK,), (*params, *outs, numpy.int64(rows), numpy.int64(cols),
                                          numpy.int32(warp)))
        return outs[0] if len(outs) == 1 else tuple(outs)


def _row_operand(cupy, array, full, trailing):
    """(data, row stride, column stride) of an input as a row-wise kernel
    reads it: broadcast to the full shape (a view), its leading axes merged
    into rows and its trailing axes into columns; where they do not merge,
    a contiguous copy."""
    view = cupy.broadcast_to(array, full) if array.shape != full else array
    strides = [stride // view.itemsize for stride in view.strides]
    split = len(full) - trailing
    rs = _merged_stride(full[:split], strides[:split])
    cs = _merged_stride(full[split:], strides[split:])
    if rs is None or cs is None:
        view = cupy.ascontiguousarray(view)
        rs, cs = math.prod(full[split:]), 1
    return [view, numpy.int64(rs), numpy.int64(cs)]


def _merged_stride(shape, strides):
    """The one stride that walks these axes in C order, or None."""
    axes = [(length, stride) for length, stride in zip(shape, strides) if length != 1]
    for (_, outer), (length, inner) in zip(axes, axes[1:]):
        if outer != inner * length:
            return None
    return axes[-1][1] if axes else 0


def _flat(cupy, array, dtype, shape):
    """An array input as pass 1 reads it: (data, step)."""
    if array.dtype != dtype:
        raise TypeError(f'kernel input of dtype {array.dtype}, declared {dtype}')
    if array.size == 1:                 # broadcast in the kernel, not in memory
        return [array, numpy.int64(0)]
    if array.shape != shape:
        array = cupy.broadcast_to(array, shape)
    return [cupy.ascontiguousarray(array), numpy.int64(1)]


def _multiprocessors():
    cupy = _cupy()
    return _device_multiprocessors(cupy.cuda.runtime.getDevice())


@functools.cache
def _device_multiprocessors(device):
    return _cupy().cuda.Device(device).attributes['MultiProcessorCount']
