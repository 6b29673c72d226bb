"""jit: per-signature generated code with element-wise chains fused into
kernels (transformer/fuse.py), CUDA on CuPy arrays and C on NumPy arrays."""
import functools
import inspect
import itertools
import os
import sys
import types

import numpy

import runtime
from runtime.tree import tree_leaves
from transformer.dtypes import Tree, type_of_value
from transformer.ir import packs_keywords
from transformer.pipeline import compile_jit

from transformer.errors import SourceError

from .api import (Specialization, _describe, _user_function, bound_function, compiled_view,
                  keep_signature, packed_arguments, resolve, shifted_argnums,
                  transform_closure, transformation_of)
from . import calls
from .cache import CACHE, closure_key, signature

_labels = itertools.count()
LOG_VARIABLE = 'CODAX_LOG_COMPILES'


class ShapeDtypeStruct:
    """A shape and dtype standing for an array, as in JAX: `f.source(...)` and
    `f.kernels(...)` accept it to generate code without the data (or a GPU)."""

    def __init__(self, shape, dtype):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = numpy.dtype(dtype)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(numpy.prod(self.shape))

    def __repr__(self):
        return f'ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})'

    def __eq__(self, other):
        return isinstance(other, ShapeDtypeStruct) and (self.shape, self.dtype) == \
            (other.shape, other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))


def _stand_in(value):
    """A placeholder as a NumPy array of its shape and dtype (a view of one
    element: no memory for its size)."""
    if isinstance(value, ShapeDtypeStruct):
        return numpy.broadcast_to(numpy.zeros((), value.dtype), value.shape)
    return value


def _indices(argnums, where):
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums or ())
    if not all(isinstance(i, int) for i in argnums):
        raise TypeError(f'jit: {where} must be an int or a sequence of ints, got {argnums!r}')
    return argnums


class Jitted:
    """What jit(f) builds: f specialized per signature, with fused kernels."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), donate_argnums=()):
        if not callable(fun):
            raise TypeError(f'jit expects a callable, got {fun!r}')
        self.fun = bound_function(fun) or fun
        functools.update_wrapper(self, fun, updated=())
        self.static_argnums = _indices(static_argnums, 'static_argnums')
        names = (static_argnames,) if isinstance(static_argnames, str) else static_argnames
        self.static_argnames = tuple(names or ())
        # Donation lets JAX reuse an argument's buffer for an output. codax never
        # writes into arguments, so donated buffers are simply left alone.
        self.donate_argnums = _indices(donate_argnums, 'donate_argnums')
        self._static_any = bool(self.static_argnums or self.static_argnames)
        self._signature = None
        self._static = None
        self._fast = {}
        self._history = []           # keys specialized so far, for the log's "why"
        self.internal = False        # a callee of jitted code (see _jit_hook)

    # ---- arguments ----

    def _params(self):
        if self._signature is None:
            try:
                self._signature = inspect.signature(self.fun)
            except (TypeError, ValueError):
                self._signature = False
        return self._signature

    def _static_positions(self, nargs):
        if self._static is None:
            positions = {i % nargs if nargs else i for i in self.static_argnums}
            sig = self._params()
            if sig and self.static_argnames:
                params = list(sig.parameters)
                for name in self.static_argnames:
                    if name not in params:
                        raise ValueError(f'jit: static_argnames names {name!r}, which is not a '
                                         f'parameter of {self.__name__}{sig}')
                    positions.add(params.index(name))
            self._static = tuple(sorted(positions))
        return self._static

    def _positional(self, args, kwargs):
        """Every parameter by position, defaults filled in (their types are
        part of the signature, like the arguments')."""
        code = getattr(self.fun, '__code__', None)
        if packs_keywords(_user_function(self.fun)):    # the keywords: one more argument
            return packed_arguments(self.fun, args, kwargs)
        if not kwargs and (code is None or len(args) >= code.co_argcount):
            return tuple(args)
        defaults = getattr(self.fun, '__defaults__', None) or ()
        missing = code.co_argcount - len(args)
        if not kwargs and missing <= len(defaults):        # the quick way: no binding
            return tuple(args) + defaults[len(defaults) - missing:]
        sig = self._params()
        if not sig:
            raise TypeError(f'jit: {self.__name__} takes no keyword arguments')
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.args)

    def _statics(self, args):
        out = []
        for i in self._static_positions(len(args)):
            if i >= len(args):
                continue
            try:
                hash(args[i])
            except TypeError:
                raise ValueError(
                    f'jit: static argument {i} of {self.__name__} must be hashable (it keys the '
                    f'cache), got an unhashable {type(args[i]).__name__}: {args[i]!r}. Pass a '
                    'tuple instead of a list, or make the argument non-static') from None
            out.append((i, args[i]))
        return tuple(out)

    # ---- calls ----

    def __call__(self, *args, **kwargs):
        args = self._positional(args, kwargs)
        key = (signature(args), _ranks(args), self._statics(args) if self._static_any else ())
        hit = self._fast.get(key)
        if hit is None or not hit[1].current():
            try:
                entry, fn = self._specialize(args, _backend(args), key)
                hit = (entry.build(fn)[0], entry)
            except SourceError:
                if not self.internal:
                    raise
                hit = (self.fun, _TextOnly)     # a callee codax cannot read runs as it is
            if len(self._fast) > 64:
                self._fast.clear()
            self._fast[key] = hit
        return hit[0](*args)

    def function_for(self, args):
        """For a transformation of this one (grad(jit(f))): the unfused code,
        since derivatives and batching read plain operations."""
        return resolve(self.fun, args)

    def source(self, *args, backend=None, **kwargs):
        """The source generated for these arguments (arrays, or
        ShapeDtypeStruct placeholders), for `backend` 'numpy' or 'cupy'
        (default: the arguments' own)."""
        args = tuple(map(_stand_in, self._positional(args, kwargs)))
        return self._specialize(args, backend or _backend(args))[0].generated.source

    def kernels(self, *args, backend=None, **kwargs):
        """The fused kernels (transformer.kernels.Kernel records), in order."""
        args = tuple(map(_stand_in, self._positional(args, kwargs)))
        return list(self._specialize(args, backend or _backend(args))[0].generated.kernels)

    # ---- generation ----

    def _specialize(self, args, backend, fast_key=None):
        fn = resolve(self.fun, args)
        if not isinstance(fn, types.FunctionType):
            raise TypeError(f'jit can only transform Python functions, got {fn!r}')
        statics = self._statics(args)
        ranks = _ranks(args)
        key = ('jit', backend, id(fn.__code__), id(fn.__globals__), closure_key(fn),
               signature(args), ranks, statics)
        entry = CACHE.get(key)
        if entry is not None and entry.code is fn.__code__ and entry.current():
            return entry, fn
        with CACHE.compiling():
            label = f'jit({fn.__name__}) {_describe(args)} #{next(_labels)}'
            if os.environ.get(LOG_VARIABLE):
                self._log(label, (backend, signature(args), ranks, statics, _describe(args)))
            arg_types = [type_of_value(a) for a in args]
            generated = compile_jit(compiled_view(fn, args), arg_types, backend, label,
                                    functools.partial(_callee_type, backend=backend))
            xp = _module(backend)
            entry = Specialization(fn, generated, xp) if xp is not None else \
                _TextOnly(fn, generated)
            CACHE.put(key, entry)
            return entry, fn

    def _log(self, label, key):
        why = 'first call' if not self._history else _difference(self._history[-1], key)
        self._history = (self._history + [key])[-8:]
        print(f'codax: specializing {label} [{key[0]}]: {why}', file=sys.stderr)

    def as_function(self):
        call = self.__call__

        def jitted(*args, **kwargs):
            return call(*args, **kwargs)
        functools.update_wrapper(jitted, self.fun, updated=())
        del jitted.__wrapped__
        keep_signature(jitted, _user_function(self.fun))
        jitted.source = self.source
        jitted.kernels = self.kernels
        jitted.__codax_transformed__ = self
        return jitted


class _TextOnly:
    """Generated code for a back end this machine cannot run (CuPy without
    CuPy installed): its source can be read, not called."""

    def __init__(self, fn, generated):
        self.code = fn.__code__
        self.generated = generated

    @staticmethod
    def current():
        return True

    def build(self, fn):
        raise RuntimeError('codax: this code was generated for CuPy, which is not installed')


def _difference(old, new):
    """Why a signature was specialized again: the first thing that differs."""
    backend, sig, ranks, statics, described = new
    if old[0] != backend:
        return f'backend changed from {old[0]} to {backend}'
    if old[3] != statics:
        return f'static arguments changed from {dict(old[3])} to {dict(statics)}'
    if old[2] != ranks:
        return f'argument ranks changed from ({old[4]}) to ({described})'
    if old[1] != sig:
        return f'argument types changed from ({old[4]}) to ({described})'
    return 'a global or closure variable it reads was rebound'


_jitted = {}
_in_progress = set()


def _jit_hook(fn):
    """The jitted version of a user function that jitted code calls (or
    `fn` itself where jit does not apply). Every call of the caller asks, so
    the answer, either way, is one dictionary lookup after the first. A
    closure made in jitted code calls its function jitted."""
    if isinstance(fn, runtime.Closure):
        return runtime.closure(_jit_hook(fn.function), *fn)
    hit = _jitted.get(id(fn))
    if hit is None or hit[0] is not fn:
        if len(_jitted) > 4096:
            _jitted.clear()
        target = fn
        if _jittable(fn):
            target = Jitted(fn)
            target.internal = True
        hit = _jitted[id(fn)] = (fn, target)
    return hit[1]


_OWN = ('codax', 'runtime', 'transformer')


def _jittable(fn):
    """A plain Python function of the user's (or codax.lax, written in the
    subset codax transforms); not codax's own machinery, not a lambda."""
    if not isinstance(fn, types.FunctionType) or fn.__name__ == '<lambda>' \
            or getattr(fn, '__codax_transformed__', None) or getattr(fn, '__codax_custom__', None):
        return False
    module = getattr(fn, '__module__', None) or ''
    return module == 'codax.lax' or module.split('.')[0] not in _OWN


def _callee_type(fn, arg_types, backend):
    """The result type of `fn` jitted for arguments of `arg_types`, by
    generating its code (which its call will then find in the cache)."""
    key = (id(fn), tuple(arg_types), backend)
    if key in _in_progress or not _jittable(fn):            # recursion: its type is not known yet
        return None
    _in_progress.add(key)
    try:
        args = tuple(_value_of_type(t) for t in arg_types)
        return _jit_hook(fn)._specialize(args, backend)[0].generated.returned
    except Exception:                  # noqa: BLE001 (the call reports it at run time)
        return None
    finally:
        _in_progress.discard(key)


def _value_of_type(t):
    if isinstance(t, Tree):
        items = [(k, _value_of_type(v)) for k, v in t.items]
        return dict(items) if t.kind is dict else t.kind(v for _, v in items)
    if t.is_array:
        return numpy.broadcast_to(numpy.zeros((), t.dtype), (1,) * t.ndim)
    return t.stand_in()


runtime.kernels.install_jit_hook(_jit_hook)


_ndarray = numpy.ndarray


def _ranks(tree):
    """The rank of every array in a pytree of arguments (fast for flat ones)."""
    out = []
    for x in tree:
        if type(x) is _ndarray:
            out.append(x.ndim)
        elif isinstance(x, (tuple, list)):
            out.append(_ranks(x))
        elif isinstance(x, dict):
            out.append(_ranks(list(x.values())))     # (the signature keeps their order too)
        else:
            out.append(getattr(x, 'ndim', -1))
    return tuple(out)


def _backend(args):
    leaves = tree_leaves(list(args))
    return 'cupy' if any(runtime.backend_name(x) == 'cupy' for x in leaves) else 'numpy'


def _module(backend):
    if backend == 'numpy':
        return numpy
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def jit(fun=None, *, static_argnums=(), static_argnames=(), donate_argnums=()):
    """`fun` compiled per argument signature: element-wise chains fused into
    generated kernels (CUDA on CuPy arrays, C on NumPy arrays), everything else
    as plain NumPy/CuPy calls. Composes with grad, vmap and the rest, as in JAX.
    Also usable as a decorator, with or without arguments."""
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames, donate_argnums=donate_argnums)
    if transformation_of(fun) is not None and isinstance(transformation_of(fun), Jitted) \
            and not (static_argnums or static_argnames):
        return fun                      # jit(jit(f)) is jit(f)
    return transform_closure(
        fun, lambda lifted, k: jit(lifted, static_argnums=shifted_argnums(static_argnums, k),
                                   static_argnames=static_argnames,
                                   donate_argnums=shifted_argnums(donate_argnums, k)),
        lambda: Jitted(fun, static_argnums, static_argnames, donate_argnums).as_function())
