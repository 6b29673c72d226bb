"""Run time of the CPU back end: generated code calls `rt.kernels.cpu.kernel(
source, name, inputs=..., outputs=..., fallback=...)` with C text from
transformer/kernels/c.py and gets a callable that runs it on NumPy arrays.

The source is compiled once by the system C compiler (`CC`, else `cc`, `gcc`,
`clang` on PATH) into a shared library cached on disk under `CODAX_CACHE_DIR`
(default ~/.cache/codax), named by a hash of the source, the flags, the
compiler's version and the CPU; it is written to a temporary file and renamed,
so concurrent processes never load a half-written library. In memory the
loaded function is memoized by source, so regenerated code never recompiles.

A call checks the arguments cheaply (dtypes, C-contiguous and aligned, the
same shape or size 1) and otherwise runs the NumPy `fallback`, which also runs
every call when no compiler works (with one warning). A call costs about 3 us
more than the loop itself (bench/bench_jit_cpu.py, n=10).

Compiler flags, and why (tanh gradient, 10^6 float64, one thread):
- -march=native: AVX-512 here; the disk cache key includes the CPU's flags.
- -mprefer-vector-width=512: GCC's default for this CPU is 256-bit vectors,
  and libmvec's 256-bit tanh: 3.2 ms, against 1.9 ms.
- -O3: as fast as -O2 and as quick to build (150 ms a kernel, mostly the
  compiler starting); kept for loops that -O2 would not vectorize.
- -fno-math-errno: no math call need set errno (sqrt becomes an instruction);
  NaN and infinities behave as without it, unlike -ffast-math.
- FMA contraction (GCC's default): -ffp-contract=off costs 3% and would only
  move results by an ulp towards NumPy's.
- -fopenmp: threads and `omp simd` (see transformer/kernels/c.py); -lmvec:
  glibc's vector math. A build that fails with these is retried with -O2.
"""
import contextlib
import ctypes
import hashlib
import math
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings

import numpy

FLAGS = ['-O3', '-march=native', '-fno-math-errno', '-fopenmp', '-shared', '-fPIC']
PORTABLE_FLAGS = ['-O2', '-shared', '-fPIC']     # when the fast flags do not build
_X86 = platform.machine() in ('x86_64', 'AMD64')
if _X86:
    FLAGS.append('-mprefer-vector-width=512')
LIBRARIES = ['-lm']
if _X86 and platform.libc_ver()[0] == 'glibc':
    LIBRARIES.insert(0, '-lmvec')          # glibc's vector math (tanh, exp, ...)

_CONTIGUOUS_ALIGNED = 0x1 | 0x100          # NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED
_ndarray = numpy.ndarray
_NUMBERS = (int, float, bool, numpy.generic)
_LOCK = threading.Lock()
_FUNCTIONS = {}                            # (source, name) -> ctypes function, or None
_WARNED = set()
_THREADS = [1]                             # 0 in a forked child: see _after_fork


def kernel(source, name, inputs, outputs, fallback, reduce=None):
    """The callable for C function `name` in `source`. `inputs`: one spec per
    argument, 'float64[]' for an array, 'float64' for a number passed by
    value; `outputs`: their dtypes; `reduce`: for a reduction, a dict with the
    value's `ndim`, the `axis` reduced (None: all) and `keepdims`."""
    function = _function(source, name)
    if function is None:
        return fallback
    if reduce is None:
        return Elementwise(function, inputs, outputs, fallback)
    return Reduction(function, inputs, outputs, fallback, **reduce)


class Elementwise:
    """Calls the C function on arrays of one shape, size-1 arrays and numbers."""

    def __init__(self, function, inputs, outputs, fallback):
        self.function = function
        self.fallback = fallback
        # An array's dtype, or the converter of a number passed by value.
        self.inputs = [numpy.dtype(spec[:-2]) if spec.endswith('[]') else _number(spec)
                       for spec in inputs]
        self.outputs = [numpy.dtype(dtype) for dtype in outputs]

    def __call__(self, *args):
        operands = _operands(self.inputs, args)
        if operands is None:
            return self.fallback(*args)
        shape, size, cargs, _keep = operands
        outs = [numpy.empty(shape, dtype) for dtype in self.outputs]
        self.function(ctypes.c_longlong(size), _THREADS[0], *cargs,
                      *[_pointer(id(out) + _DATA_OFFSET) for out in outs])
        if not shape:                      # NumPy gives scalars for 0-d results
            outs = [out[()] for out in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)


class Reduction(Elementwise):
    """Reduces all axes or a run of trailing axes (`rows` results of `cols`)."""

    def __init__(self, function, inputs, outputs, fallback, ndim, axis, keepdims):
        super().__init__(function, inputs, outputs, fallback)
        self.ndim = ndim
        self.reduced = None if axis is None else len(axis)
        self.keepdims = keepdims

    def __call__(self, *args):
        operands = _operands(self.inputs, args)
        if operands is None:
            return self.fallback(*args)
        shape, size, cargs, _keep = operands
        if size == 0 or self.reduced is not None and len(shape) != self.ndim:
            return self.fallback(*args)    # NumPy's errors and empty results
        reduced = len(shape) if self.reduced is None else self.reduced
        kept = shape[:len(shape) - reduced]
        rows = math.prod(kept)
        out_shape = kept + (1,) * reduced if self.keepdims else kept
        out = numpy.empty(out_shape, self.outputs[0])
        self.function(ctypes.c_longlong(rows), ctypes.c_longlong(size // rows), _THREADS[0],
                      *cargs, _pointer(id(out) + _DATA_OFFSET))
        return out if out_shape else out[()]


def _operands(inputs, args):
    """(shape, size, C arguments, arrays to keep alive) for the inputs, or None
    where the C loop cannot serve them. `inputs[k]` is an array input's dtype,
    or the converter of a number passed by value (see _number). Arrays must be C-contiguous,
    aligned and of the exact dtype, of one shape or of size 1 (step 0)."""
    shape, size, ones, cargs, keep = None, 1, 0, [], []
    for kind, a in zip(inputs, args):
        if not isinstance(kind, _dtype):
            try:
                cargs.append(kind(a))
            except (TypeError, ValueError):    # not a number of this kind
                return None
            continue
        if type(a) is not _ndarray:
            if not isinstance(a, _NUMBERS):
                return None
            a = numpy.asarray(a)
            keep.append(a)
        if a.dtype is not kind and a.dtype != kind \
                or a.flags.num & _CONTIGUOUS_ALIGNED != _CONTIGUOUS_ALIGNED:
            return None
        if a.size == 1:
            ones = max(ones, a.ndim)
            cargs += (_pointer(id(a) + _DATA_OFFSET), 0)
            continue
        if shape is None:
            shape, size = a.shape, a.size
        elif a.shape != shape:
            return None
        cargs += (_pointer(id(a) + _DATA_OFFSET), 1)
    if shape is None:
        shape = (1,) * ones
    elif ones > len(shape):                # a size-1 array of higher rank adds axes
        return None
    return shape, size, cargs, keep


def _number(spec):
    """The ctypes type of a number passed by value ('float64' -> c_double), or
    for integers a converter that refuses what the type cannot hold (ctypes
    would wrap it silently)."""
    ctype = numpy.ctypeslib.as_ctypes_type(numpy.dtype(spec))
    if numpy.dtype(spec).kind not in 'iu':
        return ctype

    def exact(value):
        number = ctype(value)
        if number.value != value:
            raise ValueError(f'{value} does not fit {spec}')
        return number
    return exact


# ------------------------------------------------------------ data pointers
# The C function is called without ctypes argtypes, which would convert each
# argument (1.7 us for 7 of them): every argument is already a ctypes object
# (sizes, numbers, pointers) or a small int (steps, threads: C int). A pointer
# is read from the ndarray object itself: its data pointer sits right after
# the object header, as in NumPy's PyArrayObject, whose layout NumPy keeps for
# compiled extensions (the PyArray_DATA macro reads it). `_pointer(id(a) +
# _DATA_OFFSET)` is a c_void_p holding it (0.2 us; `a.ctypes.data`: 1.7 us).
_pointer = ctypes.c_void_p.from_address
_dtype = numpy.dtype


def _data_offset():
    """The offset of the data pointer in an ndarray object, checked."""
    probe = numpy.arange(3.0)
    offset = object.__basicsize__
    if _pointer(id(probe) + offset).value != probe.__array_interface__['data'][0]:
        raise ImportError('codax: NumPy arrays are not laid out as expected')
    return offset


_DATA_OFFSET = _data_offset()


# ------------------------------------------------------------------ threads
@contextlib.contextmanager
def _passive_openmp():
    """GNU OpenMP reads OMP_WAIT_POLICY once, when a kernel first loads it.
    Unset, its threads spin for about a millisecond after each parallel
    region: where another process keeps a core busy, that spin costs the
    thread its turn, and the next kernel waits for it (tanh gradient: 7.5 ms
    with 2 threads against 1.96 ms with one). PASSIVE threads sleep at once:
    1.96 ms there. Set only while loading, unless the user set it."""
    if 'OMP_WAIT_POLICY' in os.environ:
        yield
        return
    os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'
    try:
        yield
    finally:
        del os.environ['OMP_WAIT_POLICY']


def _after_fork():
    """GNU OpenMP hangs in a forked child that starts a parallel region after
    its parent has: the child runs kernels on one thread."""
    _THREADS[0] = 0


os.register_at_fork(after_in_child=_after_fork)


# ---------------------------------------------------------------- compiling
def _function(source, name):
    """The ctypes function `name` of `source`, compiled at most once a process
    (None where no compiler works)."""
    key = (source, name)
    with _LOCK:
        if key not in _FUNCTIONS:
            path = _library(source, name)
            _FUNCTIONS[key] = path and _load(path, name)
        return _FUNCTIONS[key]


def _load(path, name):
    try:
        with _passive_openmp():
            function = getattr(ctypes.CDLL(path), name)
    except (OSError, AttributeError) as error:
        _warn_once(path, f'codax: cannot load the C kernel {name} ({error}); '
                   'it runs as plain NumPy')
        return None
    function.restype = None               # and no argtypes: see _DATA_OFFSET
    return function


def _library(source, name):
    """The path of the compiled library: from the disk cache, else built."""
    compiler = _compiler()
    if compiler is None:
        _warn_once('compiler', 'codax: no C compiler found (set CC, or install gcc or '
                   'clang): jit runs fused kernels as plain NumPy, without the speed-up')
        return None
    ladder = [FLAGS + LIBRARIES, PORTABLE_FLAGS + ['-lm']]
    paths = [_cached_path(source, name, compiler, flags) for flags in ladder]
    for path in paths:
        if os.path.exists(path):
            return path
    errors = []
    for flags, path in zip(ladder, paths):
        error = _compile(source, compiler, flags, path)
        if error is None:
            if errors:
                fast = ' '.join(FLAGS + LIBRARIES)
                _warn_once('portable', f'codax: C kernels build only without the flags {fast}, '
                           f'so they run slower:\n{errors[0][-2000:]}')
            return path
        errors.append(error)
    _warn_once(source, f'codax: the C kernel {name} does not compile, so it runs as plain '
               f'NumPy; please report this.\n{errors[0][-2000:]}')
    return None


def _compile(source, compiler, flags, path):
    """Build `path` (None), or the compiler's complaint. Writes a temporary
    file in the same folder and renames it: atomic for concurrent processes."""
    compile_flags = [f for f in flags if not f.startswith('-l')]
    libraries = [f for f in flags if f.startswith('-l')]
    fd, temporary = tempfile.mkstemp(prefix='.building-', suffix='.so', dir=os.path.dirname(path))
    os.close(fd)
    try:
        run = subprocess.run(compiler + compile_flags + ['-x', 'c', '-', '-o', temporary]
                             + libraries, input=source, capture_output=True, text=True)
        if run.returncode != 0:
            return run.stderr or f'exit status {run.returncode}'
        os.replace(temporary, path)
        return None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _cached_path(source, name, compiler, flags):
    key = '\0'.join([source, ' '.join(compiler + flags), _version(tuple(compiler)), _cpu()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return os.path.join(_cache_dir(), f'{name}-{digest}.so')


def _compiler():
    """The C compiler's command (a list), or None."""
    if os.environ.get('CC'):
        command = shlex.split(os.environ['CC'])
        return command if shutil.which(command[0]) else None
    for candidate in ('cc', 'gcc', 'clang'):
        if shutil.which(candidate):
            return [candidate]
    return None


_VERSIONS = {}


def _version(compiler):
    if compiler not in _VERSIONS:
        run = subprocess.run(list(compiler) + ['--version'], capture_output=True, text=True)
        _VERSIONS[compiler] = run.stdout + shutil.which(compiler[0])
    return _VERSIONS[compiler]


_CPU = []


def _cpu():
    """What -march=native depends on: the CPU's model and feature flags."""
    if not _CPU:
        found = platform.processor()
        try:
            with open('/proc/cpuinfo') as f:
                found = ''.join(line for line in f.read().split('\n\n')[0].splitlines(True)
                                if line.startswith(('model name', 'flags')))
        except OSError:
            pass
        _CPU.append(platform.machine() + found)
    return _CPU[0]


_SCRATCH = []


def _cache_dir():
    """CODAX_CACHE_DIR, else ~/.cache/codax; a temporary folder if that fails."""
    path = os.environ.get('CODAX_CACHE_DIR') or os.path.join(
        os.path.expanduser('~'), '.cache', 'codax')
    try:
        os.makedirs(path, exist_ok=True)
        return path
    except OSError:
        if not _SCRATCH:
            _SCRATCH.append(tempfile.mkdtemp(prefix='codax-'))
        return _SCRATCH[0]


def _warn_once(key, message):
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)
