"""Devices, as in JAX: where arrays live.

codax's arrays are NumPy arrays, which live on the CPU, and CuPy arrays, which
live on a CUDA GPU, so putting data on a device means converting between the
two libraries:

- `devices(backend=None)`: `CpuDevice(id=0)`, then `CudaDevice(id=k)` for each
  GPU that CuPy sees (JAX lists only the default backend's devices; codax
  lists both, CPU first). `backend='cpu'` or `'gpu'` keeps one platform.
- `device_put(x, device=None)`: x (a pytree) with every array on `device`: a
  device object, or an int, the number of a GPU. The default is the first
  GPU if there is one, else the CPU, as in JAX.
- `device_get(x)`: x with every CuPy array brought back as a NumPy array.

Neither modifies x. An array already where it is asked to be is returned as
is, not copied (as JAX does with its arrays); containers are always rebuilt.
Leaves that are not arrays (Python numbers, strings, ...) are returned
unchanged: a Python scalar works as it is with NumPy and CuPy arrays alike, and
codax specializes code on "Python float", so turning it into a 0-d array (as
JAX does) would only change the generated code. NumPy scalars (`np.float32(1)`)
become 0-d CuPy arrays on a GPU.

CuPy is optional: it is imported only when a GPU is asked about.
"""
import functools

import numpy

from runtime import tree
from runtime.backend import _is_cupy, cupy_module


class Device:
    """A place where arrays live; equal when platform and id are."""
    platform = None
    __slots__ = ('id',)

    def __init__(self, id=0):
        self.id = id

    def __repr__(self):
        return f'{type(self).__name__}(id={self.id})'

    def __eq__(self, other):
        return type(other) is type(self) and other.id == self.id

    def __hash__(self):
        return hash((self.platform, self.id))


class CpuDevice(Device):
    """The host, where NumPy arrays live."""
    platform = 'cpu'
    __slots__ = ()


class CudaDevice(Device):
    """A CUDA GPU, numbered as CuPy numbers it; CuPy arrays live there."""
    platform = 'gpu'
    __slots__ = ()


@functools.lru_cache(maxsize=None)
def _gpu_count():
    """How many CUDA GPUs CuPy sees: 0 without CuPy, a driver or a GPU."""
    try:
        import cupy
        if not cupy.cuda.is_available():
            return 0
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:    # CuPy absent, or failing to reach CUDA (its errors vary): no GPU
        return 0


def devices(backend=None):
    """The devices codax can put arrays on: the CPU, then each CUDA GPU."""
    found = [CpuDevice(0)] + [CudaDevice(k) for k in range(_gpu_count())]
    if backend is None:
        return found
    platform = {'cpu': 'cpu', 'gpu': 'gpu', 'cuda': 'gpu'}.get(backend)
    if platform is None:
        raise ValueError(f"unknown backend {backend!r}: codax has 'cpu' and 'gpu' (CUDA)")
    found = [d for d in found if d.platform == platform]
    if not found:
        raise RuntimeError('no CUDA GPU: ' + _why_no_gpu())
    return found


def _why_no_gpu():
    try:
        import cupy  # noqa: F401
    except ImportError:
        return 'CuPy is not installed (the [gpu] extra installs it)'
    return 'CuPy sees no GPU'


def _target(device):
    if device is None:
        return CudaDevice(0) if _gpu_count() else CpuDevice(0)
    if isinstance(device, int) and not isinstance(device, bool):
        device = CudaDevice(device)
    if not isinstance(device, Device):
        raise TypeError(f'device_put takes a device from codax.devices() or the number of a '
                        f'GPU, not {device!r}')
    known = devices()
    if device not in known:
        where = _why_no_gpu() if len(known) == 1 else f'the devices are {known}'
        raise ValueError(f'{device!r} does not exist: {where}')
    return device


def device_put(x, device=None):
    """x (a pytree) with its arrays on `device` (default: the first GPU if
    any, else the CPU); `device` is a device object or a GPU's number."""
    target = _target(device)
    return tree.tree_map(lambda leaf: _put(leaf, target), x)


def _put(leaf, target):
    if target.platform == 'cpu':
        return leaf.get() if _is_cupy(leaf) else leaf
    if not (_is_cupy(leaf) or isinstance(leaf, (numpy.ndarray, numpy.generic))):
        return leaf
    cupy = cupy_module()
    with cupy.cuda.Device(target.id):
        if _is_cupy(leaf):
            # copy() allocates on the current device, even from another GPU
            return leaf if leaf.device.id == target.id else leaf.copy()
        return cupy.asarray(leaf)


def device_get(x):
    """x (a pytree) with every CuPy array brought back as a NumPy array."""
    return tree.tree_map(lambda leaf: leaf.get() if _is_cupy(leaf) else leaf, x)
