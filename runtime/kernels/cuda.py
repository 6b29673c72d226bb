"""Run time of the CUDA back end: the CuPy kernels that generated code builds
with `rt.kernels.cuda.elementwise(...)`, `reduction(...)` or
`full_reduction(...)` (the text comes from transformer/kernels/cuda.py).

CuPy is imported at the first call. Each kernel is built once per distinct
source and arguments (the functions are memoized on all of them), so generated
code may evaluate the same call on every run. Construction compiles nothing:
CuPy compiles at the first launch and caches the binary on disk, keyed by the
source, which is byte-identical across processes.
"""
import functools
import math

import numpy

BLOCK = 256             # threads a block, both passes of a full reduction
BLOCKS_PER_SM = 8       # 2048 resident threads a multiprocessor: pass 1 is one full wave
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
def full_reduction(name, in_params, out_params, *, op, keepdims, code, scalars=()):
    """The two-pass reduction over every axis in `code`: call it with the inputs."""
    return FullReduction(name, in_params, out_params, op, keepdims, code, scalars)


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

    def __call__(self, *args):
        cupy = _cupy()
        shape = numpy.broadcast_shapes(*(arg.shape for arg, (_, scalar)
                                         in zip(args, self.inputs) if not scalar))
        size = math.prod(shape)
        _check_nonempty(self.op, size)
        params = []
        for arg, (dtype, scalar) in zip(args, self.inputs):
            params += [dtype.type(arg)] if scalar else _flat(cupy, arg, dtype, shape)
        blocks = max(1, min(-(-size // BLOCK), BLOCKS_PER_SM * _multiprocessors()))
        partials = cupy.empty(blocks, self.dtype)
        out = cupy.empty((1,) * len(shape) if self.keepdims else (), self.dtype)
        self.pass1((blocks,), (BLOCK,), (*params, partials, numpy.int64(size)))
        self.pass2((1,), (BLOCK,), (partials, numpy.int64(blocks), out, numpy.int64(size)))
        return out


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
