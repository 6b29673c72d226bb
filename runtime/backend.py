"""Which array module (NumPy or CuPy) a value belongs to, without importing CuPy."""
import numpy

_cupy = None


def _is_cupy(value):
    return type(value).__module__.split('.')[0] == 'cupy'


def cupy_module():
    global _cupy
    if _cupy is None:
        import cupy  # imported only once a CuPy array has been seen
        _cupy = cupy
    return _cupy


def array_module(*values):
    """numpy, or cupy if any value is a CuPy array."""
    for value in values:
        if _is_cupy(value):
            return cupy_module()
    return numpy


def backend_name(value):
    return 'cupy' if _is_cupy(value) else 'numpy'


def is_array(value):
    return isinstance(value, numpy.ndarray) or _is_cupy(value)
