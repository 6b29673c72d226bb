"""Specialization: argument signatures and the bounded, thread-safe cache.

A signature is the pytree structure of the arguments with each leaf's kind:
an array's dtype and backend, or a Python scalar's type. Shapes are not part
of it, because the generated source does not depend on them: one generation
serves every shape (see docs/how-it-works.md).
"""
import contextlib
import gc
import threading
import types
from collections import OrderedDict, defaultdict

import numpy

from runtime.closures import Closure
from runtime.tree import node_children

_ndarray = numpy.ndarray
_SCALARS = (float, int, bool, complex)


def leaf_kind(x):
    t = type(x)
    if t is _ndarray:
        return x.dtype
    if t in _SCALARS or x is None:
        return t
    if isinstance(x, numpy.generic):
        return ('scalar', x.dtype)
    if t.__module__.startswith('cupy') and hasattr(x, 'dtype'):
        return ('cupy', x.dtype)
    if t in (tuple, list):
        return (t, tuple(leaf_kind(v) for v in x))
    if t is dict or t is OrderedDict or t is defaultdict:     # (pytree nodes, in order)
        return (t, tuple((k, leaf_kind(v)) for k, v in x.items()))
    if isinstance(x, tuple) and (hasattr(x, '_fields') or isinstance(x, Closure)):
        return (t, tuple(leaf_kind(v) for v in x))
    if isinstance(x, (types.FunctionType, types.ModuleType, type)):
        return ('object', id(x))
    children = node_children(x)
    if children is not None:           # a registered node: its children's kinds, in order
        return (t, tuple(leaf_kind(v) for v in children))
    return ('value', t)


def signature(args):
    if len(args) == 1:                 # the common case, kept fast
        a = args[0]
        return a.dtype if type(a) is _ndarray else (leaf_kind(a),)
    return tuple(map(leaf_kind, args))


def closure_key(fn):
    """What a function's free variables are bound to, as far as code
    generation cares: the identity of modules and functions (they are resolved
    at compile time), the type of anything else (read at run time)."""
    cells = fn.__closure__
    if not cells:
        return ()
    key = []
    for cell in cells:
        try:
            value = cell.cell_contents
        except ValueError:
            key.append(None)
            continue
        if isinstance(value, (types.ModuleType, types.FunctionType, type)) or callable(value):
            key.append(id(value))
        else:
            key.append(type(value))
    return tuple(key)


def closure_values(fn):
    return [c.cell_contents for c in fn.__closure__ or ()]


class Cache:
    """Least-recently-generated eviction; lookups are lock-free dict reads."""

    def __init__(self, capacity=1024):
        self.capacity = capacity
        self._entries = OrderedDict()
        self.lock = threading.RLock()
        self._depth, self._collecting = 0, False

    @contextlib.contextmanager
    def compiling(self):
        """The lock, held while code is generated, with Python's cyclic
        garbage collector paused (and resumed as the user had it). Compiling
        makes and drops hundreds of thousands of tree nodes, which reference
        counting frees (they hold no cycles), and the collector's full passes
        over every live object, trees in codax's caches included, took a
        third of compile time. Nested compiles (a call's callee) share one pause."""
        with self.lock:
            if self._depth == 0:
                self._collecting = gc.isenabled()
                gc.disable()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._collecting:
                    gc.enable()

    def get(self, key):
        return self._entries.get(key)

    def put(self, key, value):
        with self.lock:
            self._entries[key] = value
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self):
        with self.lock:
            self._entries.clear()

    def __len__(self):
        return len(self._entries)


CACHE = Cache()
