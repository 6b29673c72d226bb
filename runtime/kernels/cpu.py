"""Run time of the CPU back end: generated code calls `rt.kernels.cpu.kernel(
source, name, inputs=..., outputs=..., fallback=...)` with C text from
transformer/kernels/c.py and gets a callable that runs it on NumPy arrays.

The source is compiled once by the system C compiler (`CC`, else `cc`, `gcc`,
`clang` on PATH) into a shared library cached on disk under `CODAX_CACHE_DIR`
(default ~/.cache/codax), named by a hash of the source, the flags, the
compiler's version and the CPU; it is written to a temporary file and renamed,
so concurrent processes never load a half-written library. In memory the
loaded function is memoized by source, so regenerated code never recompiles.

Arrays broadcast together in any layout (transposed, sliced, negative
strides) run in C; the choices, and why (n=10: per-call cost; one thread):
- The fast check first, as cheap as before: arrays of the exact dtype,
  C-contiguous and aligned, of one shape or of size 1. Such a call costs about
  3 us more than the loop itself (bench/bench_jit_cpu.py, n=10) and calls
  `<name>`, without the geometry argument (None costs ctypes 75 ns).
- Any other call is planned (_plan): its broadcast shape, each array read
  directly, filled (size 1) or gathered by its element strides, with axes of
  length 1 dropped and axes contiguous for every gathered array merged, so
  the C walks few axes; it calls `<name>_strided`. Planning takes about 7 us,
  so plans are memoized per kernel by shapes and strides (64 at most): a
  broadcast call then costs about 2.5 us more than a contiguous one
  ((2, 5) + (5,): 6.0 us against 3.5 us).
- What remains runs the NumPy `fallback`: another dtype, an unaligned array,
  shapes that do not broadcast (NumPy raises its error), more than MAX_NDIM
  axes left after merging, a reduction over empty axes (NumPy's error for
  max and min, its warning for mean); every call when no compiler works
  (with one warning). FALLBACKS counts such calls by kernel, and each
  callable's `fallbacks` its own, only on that path (tests read them).
- Outputs are fresh C-order arrays; inputs are only read.

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
import collections
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

_CONTIGUOUS, _ALIGNED = 0x1, 0x100         # NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_ALIGNED
_CONTIGUOUS_ALIGNED = _CONTIGUOUS | _ALIGNED
MAX_NDIM = 32                              # axes a gathered array may have: c.MAX_NDIM
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
    functions = _function(source, name)
    if functions is None:
        return fallback
    if reduce is None:
        return Elementwise(name, functions, inputs, outputs, fallback)
    return Reduction(name, functions, inputs, outputs, fallback, **reduce)


# Calls each kernel (by name) passed to its NumPy fallback, counted only there.
FALLBACKS = collections.Counter()


class Elementwise:
    """Calls the C function on arrays broadcast together (any strides) and
    numbers; `fallbacks` counts the calls it left to NumPy."""

    def __init__(self, name, functions, inputs, outputs, fallback):
        self.name = name
        # `name` and `name_strided`, which also takes the geometry (see _strided)
        self.function, self.strided = functions
        self.fallback = fallback
        self.fallbacks = 0
        self.plans = {}                    # (shapes, strides) -> _plan's answer
        # An array's dtype, or the converter of a number passed by value.
        self.inputs = [numpy.dtype(spec[:-2]) if spec.endswith('[]') else _number(spec)
                       for spec in inputs]
        self.outputs = [numpy.dtype(dtype) for dtype in outputs]

    def __call__(self, *args):
        operands = _operands(self.inputs, args, self.plans)
        if operands is None:
            return self._fall_back(args)
        shape, size, geom, cargs, _keep = operands
        outs = [numpy.empty(shape, dtype) for dtype in self.outputs]
        outputs = [_pointer(id(out) + _DATA_OFFSET) for out in outs]
        if geom is None:
            self.function(ctypes.c_longlong(size), _THREADS[0], *cargs, *outputs)
        else:
            self.strided(ctypes.c_longlong(size), _THREADS[0], geom, *cargs, *outputs)
        if not shape:                      # NumPy gives scalars for 0-d results
            outs = [out[()] for out in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _fall_back(self, args):
        self.fallbacks += 1
        FALLBACKS[self.name] += 1
        return self.fallback(*args)


class Reduction(Elementwise):
    """Reduces all axes or a run of trailing axes (`rows` results of `cols`)."""

    def __init__(self, name, functions, inputs, outputs, fallback, ndim, axis, keepdims):
        super().__init__(name, functions, inputs, outputs, fallback)
        self.ndim = ndim
        self.reduced = None if axis is None else len(axis)
        self.keepdims = keepdims

    def __call__(self, *args):
        operands = _operands(self.inputs, args, self.plans)
        if operands is None:
            return self._fall_back(args)
        shape, size, geom, cargs, _keep = operands
        if self.reduced is not None and len(shape) != self.ndim:
            return self._fall_back(args)
        reduced = len(shape) if self.reduced is None else self.reduced
        kept = shape[:len(shape) - reduced]
        rows = math.prod(kept)
        if size:
            cols = size // rows
        elif math.prod(shape[len(kept):]):  # no rows: an empty result
            cols = 1
        else:                              # NumPy's error (max, min), warning (mean)
            return self._fall_back(args)
        out_shape = kept + (1,) * reduced if self.keepdims else kept
        out = numpy.empty(out_shape, self.outputs[0])
        if geom is None:
            self.function(ctypes.c_longlong(rows), ctypes.c_longlong(cols), _THREADS[0],
                          *cargs, _pointer(id(out) + _DATA_OFFSET))
        else:
            self.strided(ctypes.c_longlong(rows), ctypes.c_longlong(cols), _THREADS[0], geom,
                         *cargs, _pointer(id(out) + _DATA_OFFSET))
        return out if out_shape else out[()]


def _operands(inputs, args, plans=None):
    """(shape, size, geometry, C arguments, arrays to keep alive) for the
    inputs, or None where the C loop cannot serve them. `inputs[k]` is an
    array input's dtype, or the converter of a number passed by value (see
    _number). The fast case: arrays C-contiguous and aligned, of one shape or
    of size 1 (steps 1 and 0), no geometry (NULL); anything else broadcast is
    left to _strided, which memoizes its plans in `plans` (a dict)."""
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
        if a.dtype is not kind and a.dtype != kind:
            return None
        if a.flags.num & _CONTIGUOUS_ALIGNED != _CONTIGUOUS_ALIGNED:
            return _strided(inputs, args, {} if plans is None else plans)
        if a.size == 1:
            ones = max(ones, a.ndim)
            cargs += (_pointer(id(a) + _DATA_OFFSET), 0)
            continue
        if shape is None:
            shape, size = a.shape, a.size
        elif a.shape != shape:
            return _strided(inputs, args, {} if plans is None else plans)
        cargs += (_pointer(id(a) + _DATA_OFFSET), 1)
    if shape is None:
        shape = (1,) * ones
    elif ones > len(shape):                # a size-1 array of higher rank adds axes
        return _strided(inputs, args, {} if plans is None else plans)
    return shape, size, None, cargs, keep


def _strided(inputs, args, plans):
    """_operands for arrays of any shapes that broadcast together and any
    (aligned) strides, negative ones too, by the plan for their shapes and
    strides (see _plan), memoized in `plans`."""
    arrays, where, cargs, keep = [], [], [], []
    for kind, a in zip(inputs, args):
        if not isinstance(kind, _dtype):
            cargs.append(kind(a))          # _operands converted it once already
            continue
        if type(a) is not _ndarray:
            a = numpy.asarray(a)
            keep.append(a)
        if a.dtype is not kind and a.dtype != kind or not a.flags.num & _ALIGNED:
            return None
        arrays.append(a)
        where.append(len(cargs) + 1)
        cargs += (_pointer(id(a) + _DATA_OFFSET), 1)
    key = tuple([(a.shape, a.strides) for a in arrays])
    plan = plans.get(key)
    if plan is None:
        if len(plans) >= 64:
            plans.clear()
        plan = plans[key] = _plan(arrays)
    if not plan:
        return None
    shape, size, steps, geometry = plan
    for at, step in zip(where, steps):
        cargs[at] = step
    keep.append(plan)
    return shape, size, geometry and geometry[1], cargs, keep


def _plan(arrays):
    """How the C loop reads `arrays` (broadcast together): (shape, size, the
    step of each, geometry), or False where it cannot. Each array is read
    directly (step 1: C-contiguous with every element of the result),
    through a filled block (step 0: size 1) or gathered (step -1) by its
    strides in elements over the result's shape, which the geometry holds
    ({ndim, shape, then each array's strides}; an int64 array and the
    pointer to pass, or None where no array is gathered), its axes of length
    1 dropped and runs that are contiguous for every gathered array merged
    (at most MAX_NDIM remain)."""
    try:
        shape = numpy.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:                     # NumPy raises its own error
        return False
    size = math.prod(shape)
    ndim = len(shape)
    steps, strides = [], []                # elements, by axis, of each gathered array
    for a in arrays:
        if size == 0 or a.size == size and a.flags.num & _CONTIGUOUS:
            steps.append(1)                # (no element is read of an empty result)
            strides.append(None)
        elif a.size == 1:
            steps.append(0)
            strides.append(None)
        else:
            itemsize, column = a.itemsize, [0] * (ndim - a.ndim)
            for length, stride in zip(a.shape, a.strides):
                if length == 1:
                    column.append(0)
                elif stride % itemsize:
                    return False
                else:
                    column.append(stride // itemsize)
            steps.append(-1)
            strides.append(column)
    gathered = [column for column in strides if column is not None]
    if not gathered:                       # e.g. size-1 arrays of higher rank add axes
        return shape, size, steps, None
    lengths, merged = [], []               # the axes left, and their strides by array
    for axis, length in enumerate(shape):
        if length == 1:
            continue
        column = [steps[axis] for steps in gathered]
        if lengths and all(outer == inner * length for outer, inner in zip(merged[-1], column)):
            lengths[-1] *= length          # one run with the axis before it
            merged[-1] = column
        else:
            lengths.append(length)
            merged.append(column)
    if len(lengths) > MAX_NDIM:
        return False
    geometry = [len(lengths)] + lengths
    columns = iter(zip(*merged))
    for column in strides:
        geometry += [0] * len(lengths) if column is None else next(columns)
    geometry = numpy.array(geometry, numpy.int64)
    return shape, size, steps, (geometry, _pointer(id(geometry) + _DATA_OFFSET))


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
    """The ctypes functions `name` and `name_strided` of `source`, compiled at
    most once a process (None where no compiler works)."""
    key = (source, name)
    with _LOCK:
        if key not in _FUNCTIONS:
            path = _library(source, name)
            _FUNCTIONS[key] = path and _load(path, name)
        return _FUNCTIONS[key]


def _load(path, name):
    try:
        with _passive_openmp():
            library = ctypes.CDLL(path)
        functions = getattr(library, name), getattr(library, name + '_strided')
    except (OSError, AttributeError) as error:
        _warn_once(path, f'codax: cannot load the C kernel {name} ({error}); '
                   'it runs as plain NumPy')
        return None
    for function in functions:
        function.restype = None           # and no argtypes: see _DATA_OFFSET
    return functions


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
