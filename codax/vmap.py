"""vmap: batched versions of functions, generated as source (transformer/batch.py)."""
import functools
import inspect
import itertools

import numpy

import runtime
from runtime.backend import array_module
from runtime.tree import tree_flatten, tree_leaves, tree_unflatten
from transformer.batch import info_of_value
from transformer.pipeline import compile_batch

from .api import _describe, _user_function, primitive_function, resolve
from .cache import CACHE, closure_key, signature

_labels = itertools.count()


def _hashable(axes):
    if isinstance(axes, (list, tuple)):
        return (type(axes).__name__,) + tuple(_hashable(a) for a in axes)
    if isinstance(axes, dict):
        return ('dict',) + tuple((k, _hashable(v)) for k, v in sorted(axes.items()))
    return axes


def _leaf_axes(axes, tree, where):
    """Each leaf of `tree` with its axis, from the prefix `axes` (JAX's rule)."""
    if axes is None or isinstance(axes, int):
        return [(leaf, axes) for leaf in tree_leaves(tree)]
    if isinstance(axes, dict) and isinstance(tree, dict) and set(axes) == set(tree):
        return [pair for k in sorted(tree) for pair in _leaf_axes(axes[k], tree[k], where)]
    if isinstance(axes, (tuple, list)) and isinstance(tree, (tuple, list)) \
            and len(axes) == len(tree):
        return [pair for a, t in zip(axes, tree) for pair in _leaf_axes(a, t, where)]
    raise ValueError(f'vmap: in_axes {axes!r} for {where} does not match its structure '
                     f'{type(tree).__name__} (in_axes must be a prefix of the arguments)')


def _normalized(axes, tree):
    """Axes with negative values made positive, for each leaf's own rank."""
    if axes is None:
        return None
    if isinstance(axes, int):
        if not runtime.is_array(tree) and not isinstance(tree, (list, tuple, dict)):
            return axes
        if isinstance(tree, (list, tuple, dict)):
            leaves, treedef = tree_flatten(tree)
            return _unflatten_like(tree, [_normalized(axes, leaf) for leaf in leaves])
        return axes % tree.ndim if tree.ndim else axes
    if isinstance(axes, dict):
        return {k: _normalized(axes[k], tree[k]) for k in axes}
    return tuple(_normalized(a, t) for a, t in zip(axes, tree))


def _unflatten_like(tree, leaves):
    """A prefix-shaped copy of `tree`'s structure holding `leaves`."""
    def build(t, it):
        if isinstance(t, dict):
            return {k: build(t[k], it) for k in sorted(t)}
        if isinstance(t, (list, tuple)):
            return tuple(build(v, it) for v in t)
        return next(it)
    return build(tree, iter(leaves))


class Batched:
    """What vmap(f) builds: the batching of one function, with its cache."""

    def __init__(self, fun, in_axes, out_axes):
        if not callable(fun):
            raise TypeError(f'vmap expects a callable, got {fun!r}')
        if isinstance(in_axes, list):
            in_axes = tuple(in_axes)
        if not (in_axes is None or isinstance(in_axes, (int, tuple, dict))):
            raise TypeError(f'vmap: in_axes must be an int, None or a tuple, got {in_axes!r}')
        self.fun = primitive_function(fun) or fun
        self.in_axes = in_axes
        self.out_axes = out_axes
        functools.update_wrapper(self, self.fun, updated=())
        self._signature = None

    def _arguments(self, args, kwargs):
        """Positional arguments and their axes; keyword arguments batch along 0.
        Leaves that are not numbers or arrays (functions, None) are never batched."""
        args, axes = self._given_axes(args, kwargs)
        params = _parameter_names(self.fun, len(args))
        return args, tuple(_numeric_axes(a, arg, f'argument {i} ({params[i]})')
                           for i, (a, arg) in enumerate(zip(axes, args)))

    def _given_axes(self, args, kwargs):
        in_axes = self.in_axes
        if isinstance(in_axes, tuple):
            if len(in_axes) != len(args):
                raise ValueError(f'vmap: in_axes has {len(in_axes)} entries but the function '
                                 f'was called with {len(args)} positional arguments')
            axes = list(in_axes)
        else:
            axes = [in_axes] * len(args)
        if kwargs:
            user = _user_function(self.fun)
            if self._signature is None:
                self._signature = inspect.signature(user)
            bound = self._signature.bind(*args, **kwargs)
            bound.apply_defaults()
            names = list(bound.arguments)
            axes += [0 if names[i] in kwargs else None for i in range(len(args), len(names))]
            args = tuple(bound.args)
        return tuple(args), tuple(axes)

    def _check(self, args, axes):
        """The batch size, after checking every axis and size (JAX's errors)."""
        sizes = []
        params = _parameter_names(self.fun, len(args))
        for i, (arg, axis) in enumerate(zip(args, axes)):
            where = f'argument {i} ({params[i]})' if params[i] else f'argument {i}'
            for leaf, a in _leaf_axes(axis, arg, where):
                if a is None:
                    continue
                if not isinstance(a, int):
                    raise TypeError(f'vmap: in_axes entries must be ints or None, got {a!r}')
                nd = numpy.ndim(leaf)
                if not -nd <= a < nd:
                    raise ValueError(f'vmap was asked to map {where} along axis {a}, but it '
                                     f'has rank {nd} (shape {numpy.shape(leaf)})')
                sizes.append((numpy.shape(leaf)[a], where))
        if not sizes:
            raise ValueError('vmap needs at least one argument with a batch axis (in_axes '
                             'is None for every argument)')
        if len({s for s, _ in sizes}) > 1:
            detail = ', '.join(f'{w}: {s}' for s, w in sizes)
            raise ValueError(f'vmap got inconsistent sizes for the mapped axis: {detail}')
        return sizes[0][0]

    def function_for(self, args, axes=None):
        if axes is None:
            args, axes = self._arguments(args, {})
        (function,) = self._specialize(args, axes).build(self._target(args, axes))
        return function

    def _target(self, args, axes):
        """The plain function to batch: the user's, or the generated code of a
        transformation, or the definition of rt.vjp_call / rt.pullback."""
        examples = _examples(args, axes)
        fn = self.fun
        if fn is runtime.vjp_call or fn is runtime.pullback:     # vmap of grad code with calls
            from .calls import _defined
            fn, _ = _defined(fn, args[:1] + examples[1:], {})
        return resolve(fn, examples)

    def _specialize(self, args, axes):
        axes = tuple(_normalized(a, arg) for a, arg in zip(axes, args))
        fn = self._target(args, axes)
        ranks = tuple(numpy.ndim(leaf) for leaf in tree_leaves(list(args)))
        key = ('vmap', _hashable(axes), _hashable(self.out_axes), id(fn.__code__),
               id(fn.__globals__), closure_key(fn), signature(args), ranks)
        entry = CACHE.get(key)
        if entry is not None and entry.code is fn.__code__ and entry.current():
            return entry
        with CACHE.lock:
            label = f'vmap({fn.__name__}) {_describe(args)} #{next(_labels)}'
            infos = [info_of_value(arg, _front(a)) for arg, a in zip(args, axes)]
            for info, arg, a in zip(infos, args, axes):
                _fix_ranks(info, arg, a)
            generated, _ = compile_batch(fn, axes, self.out_axes, lambda params: infos, label,
                                         callee_info)
            from .api import Specialization
            entry = Specialization(fn, generated, array_module(*tree_leaves(list(args))))
            CACHE.put(key, entry)
            return entry

    def __call__(self, *args, **kwargs):
        args, axes = self._arguments(args, kwargs)
        self._check(args, axes)
        return self.function_for(args, axes)(*args)

    def source(self, *args, **kwargs):
        args, axes = self._arguments(args, kwargs)
        self._check(args, axes)
        return self._specialize(args, axes).generated.source

    def as_function(self):
        call = self.__call__

        def batched(*args, **kwargs):
            return call(*args, **kwargs)
        functools.update_wrapper(batched, self.fun, updated=())
        del batched.__wrapped__
        batched.source = self.source
        batched.__codax_transformed__ = self
        return batched


def _numeric_axes(axes, tree, where):
    """The axes prefix expanded over containers, None for non-numeric leaves."""
    if isinstance(tree, dict) and not (axes is None or isinstance(axes, int)):
        if not isinstance(axes, dict) or set(axes) != set(tree):
            _leaf_axes(axes, tree, where)                    # raises the explanation
        return {k: _numeric_axes(axes[k], tree[k], where) for k in tree}
    if isinstance(tree, dict):
        return {k: _numeric_axes(axes, v, where) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        if not (axes is None or isinstance(axes, int)):
            if not isinstance(axes, (list, tuple)) or len(axes) != len(tree):
                _leaf_axes(axes, tree, where)
            return tuple(_numeric_axes(a, t, where) for a, t in zip(axes, tree))
        return tuple(_numeric_axes(axes, t, where) for t in tree)
    if axes is not None and not (runtime.is_array(tree) or isinstance(
            tree, (bool, int, float, complex, numpy.generic))):
        return None
    return axes


def _parameter_names(fun, count):
    try:
        params = list(inspect.signature(_user_function(fun)).parameters)
    except (TypeError, ValueError):
        params = []
    return (params + [None] * count)[:count]


def _front(axes):
    if isinstance(axes, tuple):
        return tuple(_front(a) for a in axes)
    if isinstance(axes, dict):
        return {k: _front(v) for k, v in axes.items()}
    return None if axes is None else 0


def _fix_ranks(info, arg, axes):
    """info_of_value reads ranks from the leaves as given; nothing to fix for
    moved axes (a move keeps the rank)."""
    return info


def _examples(args, axes):
    """One example of each argument (index 0 of its batch axis): what the
    transformation being batched is specialized for."""
    out = []
    for arg, axis in zip(args, axes):
        pairs = _leaf_axes(axis, arg, '')
        leaves, treedef = tree_flatten(arg)
        picked = []
        for leaf, (_, a) in zip(leaves, pairs):
            if a is None:
                picked.append(leaf)
            else:
                xp = array_module(leaf)
                moved = xp.moveaxis(xp.asarray(leaf), a, 0)
                picked.append(moved[0] if moved.shape[0] else xp.zeros(moved.shape[1:],
                                                                         moved.dtype))
        out.append(tree_unflatten(treedef, picked))
    return tuple(out)


_compiling = set()


def callee_info(fn, infos):
    """At compile time: what the batched output of a user function called with
    arguments described by `infos` looks like (None if it cannot be told yet)."""
    import types
    if not isinstance(fn, types.FunctionType) or getattr(fn, '__codax_transformed__', None):
        return None
    key = (fn.__code__, tuple(map(repr, infos)))
    if key in _compiling:                       # recursion: known after the fact
        return None
    _compiling.add(key)
    try:
        axes = [i.axes() for i in infos]
        _, info = compile_batch(fn, axes, 0, lambda params: infos, f'vmap({fn.__name__}) probe',
                                callee_info)
    except Exception:
        return None
    finally:
        _compiling.discard(key)
    from transformer.batch_rules import _mark_batched
    return _mark_batched(info)


def vmap(fun, in_axes=0, out_axes=0):
    """Vectorizing map: fun mapped over axis `in_axes` of its arguments, with
    the batch axis of the results at `out_axes` (JAX's semantics)."""
    return Batched(fun, in_axes, out_axes).as_function()


_vmapped = {}


def _vmap_hook(fn, axes):
    key = (id(fn), _hashable(axes))
    hit = _vmapped.get(key)
    if hit is None or hit[0] is not fn:
        hit = _vmapped[key] = (fn, vmap(fn, in_axes=axes))
    return hit[1]


runtime.install_vmap_hook(_vmap_hook)
