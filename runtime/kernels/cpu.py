"""Run time of the CPU back end: generated code calls `rt.kernels.cpu.kernel(
source, name, inputs=..., outputs=..., fallback=...)` with C text from
transformer/kernels/c.py and gets a callable that runs it on NumPy arrays.

The source is compiled once by the system C compiler (`CC`, else `cc`, `gcc`,
`clang` on PATH) into a shared library cached on disk under `CODAX_CACHE_DIR`
(default ~/.cache/codax), named by a hash of the source, the flags, the
compiler's version and the CPU; it is written to a temporary file and renamed,
so concurrent processes never load a half-written library. The cache keeps
the `CODAX_CACHE_KEEP` (default 1000) libraries used last (see _trim). In memory the
loaded function is memoized by source, so regenerated code never recompiles.
Construction does not wait for the compiler: it starts in the background
(JOBS at once, the rest queued: see _Build) and each kernel's first call
waits for its own library, so a specialization's kernels compile together;
a compile error is warned of at that call, which runs the NumPy fallback.
First call of jit(value_and_grad) of a 7-kernel MLP, empty cache, 2 cores
(python tests/test_kernels_cpu.py: a median of 3 runs; 5 such medians):
1.11-1.32 s compiling one kernel after another, 0.60-0.78 s now.

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
- A row-wise kernel (Rowwise) runs each row of its inputs' broadcast shape;
  once per combination of input shapes it checks that NumPy would give the
  outputs the shapes it writes (runtime.kernels.row_shapes), else the call
  runs the fallback.
- A short element-wise chain runs NumPy on calls of few elements, where
  NumPy's few calls are faster than the checks above (SMALL_CALLS).

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
import atexit
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

from . import row_shapes

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


# Whether short element-wise chains run NumPy on calls of few elements (their
# `numpy_below`, from transformer/kernels/c.py): there NumPy's few calls cost
# less than one C call's checks. False makes every call C serves run C.
SMALL_CALLS = True


def kernel(source, name, inputs, outputs, fallback, reduce=None, rows=None, numpy_below=0):
    """The callable for C function `name` in `source`. `inputs`: one spec per
    argument, 'float64[]' for an array, 'float64' for a number passed by
    value; `outputs`: their dtypes; `reduce`: for a reduction, a dict with the
    value's `ndim`, the `axis` reduced (None: all) and `keepdims`; `rows`: for
    a row-wise kernel, a dict with the `trailing` axes of a row, and the shape
    `program` and `written` outputs of transformer.kernels.shape_program;
    `numpy_below`: an element-wise kernel's calls of fewer elements run the
    fallback (see SMALL_CALLS). Returns at once: where the library is neither
    in memory nor on disk, the compiler starts (see _Build) and the
    callable's first call waits for it."""
    functions = _function(source, name)
    if functions is None:
        return fallback
    kind = Elementwise if reduce is None and rows is None else Reduction if rows is None \
        else Rowwise
    options = reduce or rows or ({'numpy_below': numpy_below} if numpy_below else {})
    if not isinstance(functions, _Build):
        return kind(name, functions, inputs, outputs, fallback, **options)
    pending = kind(name, (None, None), inputs, outputs, fallback, **options)
    del pending.function, pending.strided
    pending.build, pending.kind = functions, kind
    pending.__class__ = _COMPILING[kind]
    return pending


# Calls each kernel (by name) passed to its NumPy fallback, counted only there.
FALLBACKS = collections.Counter()


class Elementwise:
    """Calls the C function on arrays broadcast together (any strides) and
    numbers; `fallbacks` counts the calls it left to NumPy."""

    def __init__(self, name, functions, inputs, outputs, fallback, numpy_below=0):
        self.name = name
        self.numpy_below = numpy_below     # calls of fewer elements run NumPy (SMALL_CALLS)
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
        if self.numpy_below and SMALL_CALLS and _few(args, self.numpy_below):
            return self.fallback(*args)    # not counted: NumPy is faster here
        operands = _operands(self.inputs, args, self.plans)
        if operands is None:
            return self._fall_back(args)
        shape, size, geom, cargs, _keep = operands
        if size < self.numpy_below and SMALL_CALLS:
            return self.fallback(*args)
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


class Rowwise(Elementwise):
    """Runs each row (the last `trailing` axes of the inputs' broadcast shape)
    through the kernel's passes, where the outputs' shapes are NumPy's
    (runtime.kernels.row_shapes, remembered per input shapes)."""

    def __init__(self, name, functions, inputs, outputs, fallback, trailing, program, written):
        super().__init__(name, functions, inputs, outputs, fallback)
        self.trailing, self.program, self.written = trailing, program, written
        self.shaped = {}                   # input shapes -> row_shapes' answer
        self.arrays = [isinstance(kind, _dtype) for kind in self.inputs]

    def __call__(self, *args):
        shapes = tuple([a.shape if type(a) is _ndarray else numpy.shape(a) if array else ()
                        for a, array in zip(args, self.arrays)])
        found = self.shaped.get(shapes, False)
        if found is False:
            if len(self.shaped) >= 64:
                self.shaped.clear()
            found = self.shaped[shapes] = row_shapes(self.program, self.written,
                                                     self.trailing, shapes)
        if found is None or not found[1]:  # cols == 0: NumPy's error or warning
            return self._fall_back(args)
        operands = _operands(self.inputs, args, self.plans)
        if operands is None:
            return self._fall_back(args)
        _shape, _size, geom, cargs, _keep = operands
        rows, cols, shapes = found
        outs = [numpy.empty(shape, dtype) for shape, dtype in zip(shapes, self.outputs)]
        outputs = [_pointer(id(out) + _DATA_OFFSET) for out in outs]
        if geom is None:
            self.function(ctypes.c_longlong(rows), ctypes.c_longlong(cols), _THREADS[0],
                          *cargs, *outputs)
        else:
            self.strided(ctypes.c_longlong(rows), ctypes.c_longlong(cols), _THREADS[0], geom,
                         *cargs, *outputs)
        outs = [out if out.ndim else out[()] for out in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)


class _Compiling:
    """A kernel whose library is still being compiled (its `build`): the
    first call waits for it, then turns the kernel into its plain class
    (`kind`), so later calls cost nothing more; where the compile failed
    (warned at that call, as `kernel` warns of a missing compiler), every
    call runs the NumPy fallback. Two threads may make the first call: the
    second waits for the same build."""

    def __call__(self, *args):
        return self._ready()(*args)

    @property
    def function(self):
        return getattr(self._ready(), 'function', None)

    @property
    def strided(self):
        return getattr(self._ready(), 'strided', None)

    def _ready(self):
        functions = self.build.result()
        if functions is None:
            return self.fallback
        vars(self).update(function=functions[0], strided=functions[1])
        self.__class__ = self.kind             # after its functions: see __call__
        return self


_COMPILING = {kind: type(f'Compiling{kind.__name__}', (_Compiling, kind), {})
              for kind in (Elementwise, Reduction, Rowwise)}


def _few(args, below):
    """Whether the arrays among `args` broadcast to fewer than `below`
    elements, found before the operands are checked (that costs more than
    NumPy's work on a few elements): the size of their one shape (arrays of
    one element aside), else the product of their sizes, a bound."""
    shape, size, product = None, 1, 1
    for a in args:
        if type(a) is _ndarray and a.size != 1:
            if shape is None:
                shape, size = a.shape, a.size
            elif a.shape != shape:
                shape = ()                 # several shapes: only the bound holds
            product *= a.size
    return (size if shape != () else product) < below


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
    its parent has: the child runs kernels on one thread. Compilers the
    parent started are its own (it waits for them and renames their files):
    the child queues those builds again, which find the library on disk if
    the parent has installed it by then, and takes fresh locks (a parent's
    thread may have held one)."""
    global _LOCK
    _THREADS[0] = 0
    _LOCK = threading.Lock()
    _ORPHANS.extend(_STARTED)              # never waited for here, nor removed
    _STARTED.clear()
    _RUNNING.clear()
    _QUEUE.clear()
    for build in list(_BUILDS):
        build.compile = build.found = None
        build.lock = threading.Lock()
        _QUEUE.append(build)


os.register_at_fork(after_in_child=_after_fork)


# ---------------------------------------------------------------- compiling
def _function(source, name):
    """The ctypes functions `name` and `name_strided` of `source`, compiled at
    most once a process: loaded now from the memo or the disk cache, else the
    _Build now compiling them (None where no compiler works)."""
    key = (source, name)
    with _LOCK:
        if key not in _FUNCTIONS:
            found = _library(source, name)
            _FUNCTIONS[key] = _load(found, name) if isinstance(found, str) else found
        return _FUNCTIONS[key]


def _load(path, name):
    """Under _LOCK (it sets OMP_WAIT_POLICY a moment): the functions, or None."""
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
    """Under _LOCK: the path of the library in the disk cache, else a _Build
    of it (started, or queued), or None where no compiler is found."""
    compiler = _compiler()
    if compiler is None:
        _warn_once('compiler', 'codax: no C compiler found (set CC, or install gcc or '
                   'clang): jit runs fused kernels as plain NumPy, without the speed-up')
        return None
    ladder = [FLAGS + LIBRARIES, PORTABLE_FLAGS + ['-lm']]
    paths = [_cached_path(source, name, compiler, flags) for flags in ladder]
    for path in paths:
        if os.path.exists(path):
            _touch(path)
            return path
    build = _Build(source, name, compiler, ladder, paths)
    _QUEUE.append(build)
    _pump()
    return build


# Compilers run in the background, at most JOBS at once, the other builds
# queued in the order of construction, the order generated code calls its
# kernels in. Two a core: a compile is one process at a time (the driver,
# cc1, as, ld) with gaps between, and takes about 40 MB. MLP value_and_grad,
# 7 kernels, first call on 2 cores (medians of 5): 1.20 s one after another,
# 0.72 s 2 at once, 0.62 s 4, 0.68 s 8.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
JOBS = 2 * (_CORES or 1)
_QUEUE = collections.deque()               # _Builds not started yet
_RUNNING = []                              # _Builds whose compiler runs (at most JOBS)
_STARTED = set()                           # _Compiles not finished (renamed or removed)
_BUILDS = {}                               # _Builds without their result yet (in order)
_ORPHANS = []                              # a forked child's: its parent's compilers


class _Build:
    """The library of one kernel while it is compiled: its compiler starts
    when a slot is free (_pump), or when `result()` needs it; `result()`
    waits for it, installs it (see _Compile), builds again with the portable
    flags if it failed, warns as construction did before, loads it and
    memoizes the functions (None where it failed) for this and later
    constructions."""

    def __init__(self, source, name, compiler, ladder, paths):
        self.source, self.name, self.compiler = source, name, compiler
        self.ladder, self.paths = ladder, paths
        self.compile = None                # _Compile of ladder[0], once started
        self.found = None                  # the cached path, where another built it
        self.lock = threading.Lock()       # held by the thread that waits
        self.done, self.functions = False, None
        _BUILDS[self] = None

    def start(self):
        """Under _LOCK: start the compiler, unless the library appeared on
        disk meanwhile (another process)."""
        self.found = next((path for path in self.paths if os.path.exists(path)), None)
        if self.found is not None:
            _touch(self.found)
        else:
            self.compile = _compile(self.source, self.compiler, self.ladder[0], self.paths[0])
            _RUNNING.append(self)

    def result(self):
        """The ctypes functions, or None where the compile failed (warned)."""
        with self.lock:
            if not self.done:
                self.functions, self.done = self._finish(), True
                _BUILDS.pop(self, None)
        return self.functions

    def _finish(self):
        with _LOCK:
            if self.compile is None and self.found is None:     # queued: needed now
                if self in _QUEUE:
                    _QUEUE.remove(self)
                self.start()
            compile = self.compile
        if compile is not None:
            while not compile.wait(0.01):  # meanwhile, queued builds start as slots free
                with _LOCK:
                    _pump()
            with _LOCK:
                _pump()                    # installs this one too
        path = self.found or self._install(compile)
        with _LOCK:
            functions = path and _load(path, self.name)
            if _FUNCTIONS.get((self.source, self.name)) is self:
                _FUNCTIONS[(self.source, self.name)] = functions
        return functions

    def _install(self, compile):
        errors = []
        for k, (flags, path) in enumerate(zip(self.ladder, self.paths)):
            error = (compile if k == 0 else _compile(self.source, self.compiler, flags, path)
                     ).finish()
            if error is None:
                if errors:
                    fast = ' '.join(FLAGS + LIBRARIES)
                    _warn_once('portable', f'codax: C kernels build only without the flags '
                               f'{fast}, so they run slower:\n{errors[0][-2000:]}', 7)
                return path
            errors.append(error)
        _warn_once(self.source, f'codax: the C kernel {self.name} does not compile, so it runs '
                   f'as plain NumPy; please report this.\n{errors[0][-2000:]}', 7)
        return None


def _pump():
    """Under _LOCK: install the libraries of compilers that have exited (so
    no process or file is held for a kernel not called yet), and start
    queued builds while fewer than JOBS compilers run."""
    for build in list(_RUNNING):
        process = build.compile.process
        if process is None or process.poll() is not None:
            _RUNNING.remove(build)
            build.compile.finish()
    while _QUEUE and len(_RUNNING) < JOBS:
        _QUEUE.popleft().start()


class _Compile:
    """The compiler building `path`, started now (not waited for) into a
    temporary file in the same folder; `finish()` waits for it and renames
    the file into place (atomic for concurrent processes): None, or the
    compiler's complaint."""

    def __init__(self, source, compiler, flags, path):
        compile_flags = [f for f in flags if not f.startswith('-l')]
        libraries = [f for f in flags if f.startswith('-l')]
        self.path, self.lock, self.error, self.process = path, threading.Lock(), None, None
        self.finished = False
        fd, self.temporary = tempfile.mkstemp(prefix='.building-', suffix='.so',
                                              dir=os.path.dirname(path))
        os.close(fd)
        self.stderr = tempfile.TemporaryFile()
        with tempfile.TemporaryFile() as stdin:         # files, not pipes: nothing to drain
            stdin.write(source.encode())
            stdin.seek(0)
            try:
                self.process = subprocess.Popen(
                    compiler + compile_flags + ['-x', 'c', '-', '-o', self.temporary]
                    + libraries, stdin=stdin, stdout=subprocess.DEVNULL, stderr=self.stderr)
            except OSError as error:
                self.error = str(error)
        _STARTED.add(self)

    def wait(self, timeout):
        """Whether the compiler has exited, waiting at most `timeout` s."""
        try:
            self.process and self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def finish(self):
        with self.lock:
            if not self.finished:
                self.finished = True
                _STARTED.discard(self)
                try:
                    if self.process is not None:
                        code = self.process.wait()
                        self.stderr.seek(0)
                        complaint = self.stderr.read().decode(errors='replace')
                        if code != 0:
                            self.error = complaint or f'exit status {code}'
                        else:
                            os.replace(self.temporary, self.path)
                            _trim(os.path.dirname(self.path))
                finally:
                    self.stderr.close()
                    if os.path.exists(self.temporary):
                        os.remove(self.temporary)
            return self.error


def _compile(source, compiler, flags, path):
    """Start building `path` from `source` with `flags`: a _Compile."""
    return _Compile(source, compiler, flags, path)


@atexit.register
def _finish_started():
    """Compilers still running at exit finish into the cache: no temporary
    file is left behind."""
    for compile in list(_STARTED):
        compile.finish()


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


# The disk cache keeps the CODAX_CACHE_KEEP (default KEEP) libraries used
# last, by modification time: a library found there is touched when a process
# loads it, and each new one trims the rest, oldest first (0: never). A process
# that finds a library just before another deletes it loads nothing for that
# kernel (warned) and runs its NumPy fallback; a library deleted after loading
# stays mapped. 1000 libraries take about 17 MB.
KEEP = 1000


def _touch(path):
    """Mark a cached library as used now."""
    try:
        os.utime(path)
    except OSError:                        # deleted meanwhile, or a read-only cache
        pass


def _trim(folder):
    """Delete all but the CODAX_CACHE_KEEP most recently used libraries of `folder`."""
    try:
        keep = int(os.environ.get('CODAX_CACHE_KEEP', KEEP))
    except ValueError:
        keep = KEEP
    if keep <= 0:
        return
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith('.so') and not entry.name.startswith('.'):
                    try:
                        found.append((entry.stat().st_mtime, entry.path))
                    except OSError:        # another process trimmed it
                        pass
    except OSError:
        return
    for _, path in sorted(found, reverse=True)[keep:]:
        try:
            os.remove(path)
        except OSError:
            pass


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


def _warn_once(key, message, stacklevel=4):
    """`stacklevel` 4: the caller of `kernel`; 7: of a kernel's first call."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
