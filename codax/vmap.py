"""vmap: batched versions of functions, generated as source (transformer/batch.py)."""
import copy
import functools
import inspect
import itertools
import types

import numpy

import runtime
from runtime.backend import array_module
from runtime.sources import define
from runtime.tree import (flat_keys, node_children, same_dict, tree_flatten, tree_leaves,
                          tree_unflatten)
from transformer.batch import info_of_value
from transformer.errors import RecursiveBatching, SourceError
from transformer.ir import packs_keywords
from transformer.pipeline import _own, compile_batch

from .api import (Specialization, _describe, _user_function, compiled_view, grad, jvp,
                  keep_signature,
                  packed_arguments, readable_function, resolve, transform_closure, transformation_of)
from .cache import CACHE, closure_key, signature
from .jacobians import (_CheckedJacobian, _Hessian, _PytreeJacobian, _inexact_dtype, jacfwd,
                        jacrev)

_labels = itertools.count()
_SPECIAL = (runtime.vjp_call, runtime.pullback, runtime.jvp_call)   # derivative code's calls
# What batched derivative code raises where the examples cannot share it (a
# tape, or a branch's values, that differ in form between examples): vmap
# of a derivative then takes its fallback (the summed gradient or Jacobian).
_REFUSED = (SourceError, runtime.batching.BranchStructures)


def _hashable(axes):
    if isinstance(axes, (list, tuple)):
        return (type(axes).__name__,) + tuple(_hashable(a) for a in axes)
    if isinstance(axes, dict):
        return ('dict',) + tuple((k, _hashable(axes[k])) for k in flat_keys(axes))
    return axes


def _plain_axes(axes):
    """An axes prefix with each node of a registered type in it (JAX's
    in_axes=Box(0, None) for a Box argument) as the tuple of its children's
    axes: the form codax's prefixes give a node, as they give a tuple."""
    children = node_children(axes)
    if children is not None:
        return tuple(_plain_axes(c) for c in children)
    if isinstance(axes, dict):
        return {k: _plain_axes(v) for k, v in axes.items()}
    if isinstance(axes, (tuple, list)):
        parts = [_plain_axes(a) for a in axes]
        return axes if all(p is a for p, a in zip(parts, axes)) else tuple(parts)
    return axes


def _as_sequence(tree):
    """A node of a registered type as the tuple of its children (how axes
    prefixes see it); anything else as it is."""
    children = node_children(tree)
    return tree if children is None else tuple(children)


def _leaf_axes(axes, tree, where):
    """Each leaf of `tree` with its axis, from the prefix `axes` (JAX's rule)."""
    if axes is None or isinstance(axes, int):
        return [(leaf, axes) for leaf in tree_leaves(tree)]
    if not isinstance(axes, (dict, tuple, list)):
        raise TypeError(f'vmap: in_axes entries must be ints or None, got {axes!r} for {where}')
    parts = _as_sequence(tree)
    if isinstance(axes, dict) and isinstance(parts, dict) and set(axes) == set(parts):
        return [pair for k in flat_keys(parts)
                for pair in _leaf_axes(axes[k], parts[k], where)]
    if isinstance(axes, (tuple, list)) and isinstance(parts, (tuple, list)) \
            and len(axes) == len(parts):
        return [pair for a, t in zip(axes, parts) for pair in _leaf_axes(a, t, where)]
    raise ValueError(f'vmap: in_axes {axes!r} for {where} does not match its structure '
                     f'{type(tree).__name__} (in_axes must be a prefix of the arguments)')


def _normalized(axes, tree):
    """Axes with negative values made positive, for each leaf's own rank."""
    if axes is None:
        return None
    tree = _as_sequence(tree)
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
        t = _as_sequence(t)
        if isinstance(t, dict):
            return {k: build(t[k], it) for k in flat_keys(t)}
        if isinstance(t, (list, tuple)):
            return tuple(build(v, it) for v in t)
        return next(it)
    return build(tree, iter(leaves))


class Batched:
    """What vmap(f) builds: the batching of one function, with its cache."""

    def __init__(self, fun, in_axes, out_axes, axis_size=None):
        if not callable(fun):
            raise TypeError(f'vmap expects a callable, got {fun!r}')
        if isinstance(in_axes, list):
            in_axes = tuple(in_axes)
        if not (in_axes is None or isinstance(in_axes, (int, tuple))):
            raise TypeError('vmap in_axes must be an int, None, or a tuple of entries '
                            'corresponding to the positional arguments passed to the function, '
                            f'but got {in_axes!r}. (codax vmap: in_axes is an int, None, or a '
                            'tuple with one entry per positional argument)')
        # A custom_jvp / custom_vjp / checkpoint function: vmap batches the
        # function itself (its rules are for derivatives, and the wrapper
        # around a rule would call itself batched without end)
        self._custom = getattr(fun, '__codax_custom__', None)
        if self._custom:
            fun = fun.fun
        self.fun = readable_function(fun)
        self.in_axes = _plain_axes(in_axes)
        self.axis_size = _checked_size(axis_size)
        # rt.vmapped in generated code: derivative code's zero 0.0 may stand in
        # for a batched value (zeros for every example), so it is unbatched
        self.internal = False
        self.out_axes = _plain_axes(out_axes)
        functools.update_wrapper(self, self.fun, updated=())
        self._params = None
        # generated code takes a **kwargs function's dict as one more argument,
        # and parameters left at their defaults are passed (with their values)
        user = _user_function(self.fun)
        self._packs = packs_keywords(user)
        runtime_call = any(f is s for f in (self.fun, user) for s in (*_SPECIAL, jvp))
        self._named = 0 if runtime_call else getattr(
            getattr(user, '__code__', None), 'co_argcount', 0)
        inner = transformation_of(self.fun)
        self._gradient = inner if getattr(inner, 'mode', None) in ('grad', 'value_and_grad') \
            else None
        self._summed_cache = {}
        self._summed_for = {}      # arguments' key -> whether _per_example serves them
        # vmap(hessian(f)), vmap(jacfwd(g)), vmap(jacrev(g)): where their code
        # cannot be batched, per-example Jacobians of the summed vmap(g)
        self._jacobian = inner if _is_jacobian(inner) else None
        self._fallbacks = {}       # arguments' key -> how _jacobian_fallback serves them
        # a definition's explanation of the examples' results differing in shape
        # (np.bincount: length=), for its vmap inside the user's batched code
        self._hint = getattr(self.fun, 'vmap_hint', None)
        # (signature, ranks) -> (function, each leaf's axis, specialization): a
        # repeated call costs a lookup and a check of the batch sizes. Only for
        # plain functions without free variables (but modules: generated code's
        # xp and rt), whose code cannot go stale otherwise than through the
        # guards the specialization checks.
        # (rt.pullback stands for one definition, whatever its arguments)
        plain = inner is None and (self.fun not in _SPECIAL or self.fun is runtime.pullback)
        self._fast = {} if plain and _only_modules(getattr(self.fun, '__closure__', None)) \
            else None

    # ---- arguments and their axes ----

    def _arguments(self, args, kwargs, repeated=True, filled=False):
        """Positional arguments and their axes; keyword arguments batch along 0.
        Leaves that are not numbers or arrays (functions, None) are never batched."""
        args, axes = self._given_axes(args, kwargs, filled)
        if self.fun is runtime.vjp_call and args and not kwargs:
            # its definition (codax/calls.py) takes every parameter of the
            # called function: the defaults the call left out are filled in
            from .calls import _bind
            inner = _bind(args[0], args[1:], {})
            args, axes = (args[0],) + inner, axes + (None,) * (len(inner) - len(args) + 1)
        axes = tuple(_numeric_axes(a, arg, self._where(i))
                     for i, (a, arg) in enumerate(zip(axes, args)))
        if self.internal:
            pairs = [_shared_unbatched(a, arg, repeated) for a, arg in zip(axes, args)]
            args, axes = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        return args, axes

    def _where(self, i):
        """'argument 1 (y)': how errors name an argument."""
        if self._params is None:
            try:
                self._params = list(inspect.signature(_user_function(self.fun)).parameters)
            except (TypeError, ValueError):
                self._params = []
        if self._packs and i == len(self._params) - 1:
            return f'the keyword arguments (**{self._params[i]})'
        return f'argument {i} ({self._params[i]})' if i < len(self._params) \
            else f'argument {i}'

    def _given_axes(self, args, kwargs, filled=False):
        """`filled`: another transformation passes these arguments, with the
        parameters the call left out at their defaults (unbatched)."""
        in_axes = self.in_axes
        if isinstance(in_axes, tuple):
            if filled and len(in_axes) < len(args) <= self._named + self._packs:
                in_axes += (None,) * (len(args) - len(in_axes))
            if len(in_axes) != len(args):
                raise ValueError('vmap in_axes must be an int, None, or a tuple of entries '
                                 'corresponding to the positional arguments passed to the '
                                 f'function, but got len(in_axes)={len(in_axes)}, '
                                 f'len(args)={len(args)} (in_axes has {len(in_axes)} entries but '
                                 f'the function was called with {len(args)} positional '
                                 'arguments)')
            axes = list(in_axes)
        else:
            axes = [in_axes] * len(args)
        given = len(args)
        if kwargs or self._packs or given < self._named:
            args = packed_arguments(self.fun, args, kwargs)
        if len(args) > given:
            # as JAX: what is passed by keyword is mapped along axis 0 (in_axes
            # is for positional arguments), a default is not mapped
            user = _user_function(self.fun)
            names = user.__code__.co_varnames[:user.__code__.co_argcount]
            axes += [None if i < len(names) and names[i] not in kwargs else
                     _keyword_axes(args[i], kwargs) if self._packs and i == len(args) - 1
                     else 0 for i in range(given, len(args))]
        return tuple(args), tuple(axes)

    def _check(self, args, axes):
        """The batch size, after checking every axis and size (JAX's errors)."""
        sizes = []
        for i, (arg, axis) in enumerate(zip(args, axes)):
            for leaf, a in _leaf_axes(axis, arg, self._where(i)):
                if a is None:
                    continue
                nd = numpy.ndim(leaf)
                if not -nd <= a < nd:
                    raise ValueError(
                        f'vmap was requested to map its argument along axis {a}, which implies '
                        f'that its rank should be at least {a + 1 if a >= 0 else -a}, but is '
                        f'only {nd} (its shape is {numpy.shape(leaf)}): {self._where(i)} '
                        f'along axis {a} has rank {nd}')
                sizes.append((numpy.shape(leaf)[a], self._where(i)))
        detail = ', '.join(f'{w}: {s}' for s, w in sizes)
        if self.axis_size is not None:
            if any(s != self.axis_size for s, _ in sizes):
                raise ValueError(f'vmap got axis_size={self.axis_size}, but the mapped axes '
                                 f'of the arguments have other sizes: {detail}')
            return self.axis_size
        if not sizes:
            raise ValueError('vmap must have at least one non-None value in in_axes or '
                             'axis_size must be specified (codax vmap needs at least one '
                             'argument with a batch axis (in_axes is None for every '
                             'argument), or axis_size)')
        if len({s for s, _ in sizes}) > 1:
            raise ValueError('vmap got inconsistent sizes for array axes to be mapped:\n'
                             + ''.join(f'  * one axis had size {s}: {w}\n'
                                       for s, w in dict.fromkeys(sizes))
                             + f'(inconsistent sizes for the mapped axis: {detail})')
        return sizes[0][0]

    # ---- calls ----

    def _hinted_call(self, *args, **kwargs):
        """__call__, with the definition's hint where the examples' results
        differ in shape (as_function calls this where there is one)."""
        try:
            return self.__call__(*args, **kwargs)
        except ValueError as exc:
            if not str(exc).startswith(_DIFFERENT_SHAPES):
                raise
            raise ValueError(_at_callers_line(f'codax vmap: {self._hint}')) from None

    def __call__(self, *args, **kwargs):
        fast = self._fast
        given, original = None, args
        if fast is not None and not kwargs and not self._packs and len(args) >= self._named:
            if self.internal:       # which leaves the examples share shows only in the values
                given = self._arguments(args, kwargs)
                args = given[0]
            leaves = tree_leaves(args)
            key = (signature(args), tuple(map(numpy.ndim, leaves)),
                   given and _hashable(given[1]))
            hit = fast.get(key)
            if hit is not None and hit[2].current() and self._sizes_agree(
                    {numpy.shape(x)[a] for x, a in zip(leaves, hit[1]) if a is not None}) \
                    and (not hit[3] or _ranks_current(self.fun, hit[3])):
                return hit[0](*args)
        args, axes = given or self._arguments(args, kwargs)
        if self.internal and all(a is None for arg, axis in zip(args, axes)
                                 for _, a in _leaf_axes(axis, arg, '')):
            return self._shared_call(original, args)
        size = self._check(args, axes)
        if not _any_batched(args, axes):            # only axis_size tells the batch
            return self._repeating(len(args))(*args)
        if self._gradient is not None and self._summing(args, axes, size):
            return self._per_example(args, axes, size)
        if self._jacobian is not None:
            return self._batched_jacobian(args, axes, size)
        entry, fn = self._specialize(args, axes)
        function = _restoring(entry.build(fn)[0], entry)
        if fast is not None and not kwargs and not self._packs and len(original) >= self._named:
            if len(fast) > 64:
                fast.clear()
            fast[key] = (function, [a for arg, axis in zip(args, axes)
                                    for _, a in _leaf_axes(axis, arg, '')], entry,
                         _global_ranks(fn))
        if self._gradient is not None:
            return self._batched_gradient(function, args, axes, size)
        return function(*args)

    def _sizes_agree(self, sizes):
        """Whether the batch sizes of a call's leaves let a cached function serve it."""
        return len(sizes) == 1 and (self.axis_size is None or sizes == {self.axis_size})

    def _repeating(self, count):
        """vmap with no argument batched (axis_size alone gives the batch size):
        every example is the same call, so the batched function calls `fun`
        once and repeats its outputs along the batch, as out_axes places them.
        It is generated Python that calls `fun`, so transformations of this
        vmap go through the call (grad(vmap(f, in_axes=None, axis_size=n)))."""
        key = (id(self.fun), count, _hashable(self.out_axes), self.axis_size)
        hit = _repeaters.get(key)
        if hit is None or hit[0] is not self.fun:
            if len(_repeaters) > 4096:
                _repeaters.clear()
            hit = _repeaters[key] = (self.fun, _repeating_function(
                self.fun, count, self.out_axes, self.axis_size))
        return hit[1]

    def _batched_gradient(self, function, args, axes, size):
        """vmap(grad(f)) by grad's batched code. A call inside it is batched
        only when it runs (a codax.lax loop's backward sweep); where that finds
        the tape differing between examples (a branch or trip count taken per
        example), these arguments get the summed gradient instead (_summing)."""
        try:
            return function(*args)
        except _REFUSED:
            self._summed_for[self._summing_key(args, axes)] = True
            return self._per_example(args, axes, size)

    def _batched_jacobian(self, args, axes, size):
        """vmap of a Jacobian (hessian, jacfwd, jacrev) by its batched code;
        where batching that is refused, at compile time or when a call inside
        it is batched as it runs (a recursive function), _jacobian_fallback."""
        key = self._summing_key(args, axes)
        if key in self._fallbacks:
            return self._jacobian_fallback(args, axes, size)
        try:
            entry, fn = self._specialize(args, axes)
            return _restoring(entry.build(fn)[0], entry)(*args)
        except _REFUSED:
            return self._jacobian_fallback(args, axes, size)

    def _jacobian_fallback(self, args, axes, size):
        """Per-example Jacobians without batching the Jacobian's code: the
        Jacobian of the summed vmap(g) (_summed_jacobian), or where that
        cannot be built either, a Python loop over the examples."""
        key = self._summing_key(args, axes)
        route = self._fallbacks.get(key)
        if route is None:
            try:
                out = self._summed_jacobian(args, axes, size)
                self._fallbacks[key] = 'summed'
                return out
            except SourceError:
                self._fallbacks[key] = route = 'loop'
        if route == 'summed':
            return self._summed_jacobian(args, axes, size)
        return self._example_loop(args, axes, size)

    def _summed_jacobian(self, args, axes, size):
        """The Jacobian of g (jacfwd(g) or jacrev(g), hessian's choice for
        one example) of every example at once, from transformations of
        vmap(g) alone (whose own fallbacks serve a recursive g: vmap(grad(f))
        by the gradient of the summed vmap(f)). The examples are independent,
        so with x the differentiated argument and batch axes first:

        - forward: J_b = d vmap(g)(x + e)[b] / de at e = 0, for one e of an
          example's shape added to every example (as many jvps as jacfwd of
          one example makes);
        - reverse: J_b = d sum_b' g(x_b') / d x_b, the b-th block of the
          Jacobian of the sum over the batch (as many pullbacks as jacrev of
          one example makes)."""
        (summed, _, _), moved, forward, k = self._summed_parts(args, axes, size)
        x = moved[k]
        if forward:
            example = numpy.shape(x)[1:] if _front(axes[k]) == 0 else numpy.shape(x)
            out = summed(array_module(x).zeros(example, _inexact_dtype(x)), *moved)
        else:                           # each leaf out + (batch,) + example: batch first
            leaves, treedef = tree_flatten(summed(*moved))
            out = tree_unflatten(treedef, [
                array_module(leaf).moveaxis(leaf, numpy.ndim(leaf) - numpy.ndim(x), 0)
                for leaf in leaves])
        return runtime.batch_outputs(out, 0, self.out_axes, size)

    def _summed_parts(self, args, axes, size):
        """((the Jacobian of the summand, the summand, vmap(g)), the arguments
        with batch axes first, forward, argnum) for _summed_jacobian."""
        jacobian = _chosen_jacobian(self._jacobian, _examples(args, axes))
        if jacobian is None or not runtime.is_array_leaf(args[jacobian.argnum]):
            raise SourceError('codax vmap: no summed form for this Jacobian (pytree '
                              'arguments, or hessian of a pytree output)')
        k, forward = jacobian.argnum, jacobian.forward
        # (reverse mode differentiates x batched throughout, an unbatched one repeated)
        moved = [_batched_throughout(a, ax, size) if i == k and not forward
                 else runtime.moveaxes(a, ax, True) for i, (a, ax) in enumerate(zip(args, axes))]
        front = tuple(0 if i == k and not forward else _front(a) for i, a in enumerate(axes))
        key = ('jacobian', k, forward) + self._summing_key(args, axes)
        parts = self._summed_cache.get(key)
        if parts is None:
            batched = vmap(jacobian.fun, in_axes=front)
            if not forward and not runtime.is_array_leaf(batched(*moved)):
                # (the sum over the batch is of an array: a tuple of outputs would
                # be summed into one)
                raise SourceError('codax vmap: no summed form for jacrev of a pytree output')
            summand = _jacobian_summand(batched, len(args), k, forward)
            parts = self._summed_cache[key] = (
                jacfwd(summand, 0) if forward else jacrev(summand, k), summand, batched)
        return parts, moved, forward, k

    def _example_loop(self, args, axes, size):
        """The last resort: the transformation called once per example in a
        Python loop, the results stacked. Correct, but slow: nothing is
        vectorized, and each example is a separate call of the Jacobian."""
        front = tuple(_front(a) for a in axes)
        moved = tuple(runtime.moveaxes(a, ax, True) for a, ax in zip(args, axes))
        out = runtime.batch_loop(self.fun, (front, {}), moved, {}, size)
        return runtime.batch_outputs(out, 0, self.out_axes, size)

    def _shared_call(self, original, args):
        """A call from batched code whose arguments every example shares (a
        value repeated along the batch, passed once): one call, its outputs
        repeated along the batch of the repeated arguments."""
        sizes = [leaf.shape[0] for leaf in tree_leaves(original) if _repeated(leaf)]
        out = self.fun(*args)
        if sizes:
            return runtime.batch_outputs(out, None, self.out_axes, sizes[0])
        if any(numpy.ndim(leaf) for leaf in tree_leaves(out)):
            self._check(args, (None,) * len(args))        # raises the explanation
        return out        # numbers (and Nones): what they stand for, every example shares

    def source(self, *args, **kwargs):
        """The Python source generated for these arguments."""
        args, axes = self._arguments(args, kwargs)
        size = self._check(args, axes)
        if not _any_batched(args, axes):
            return self._repeating(len(args)).source
        if self._gradient is not None and self._summing(args, axes, size):
            summed, args, _ = self._summed(args, axes, size)
            return summed.source(*args) + '\n\n' + summed.batched.source(*args)
        route = self._jacobian is not None and self._fallbacks.get(self._summing_key(args, axes))
        if route == 'summed':
            (_, summand, batched), moved, _, _ = self._summed_parts(args, axes, size)
            return ('# per-example Jacobians: the Jacobian of this function, whose code '
                    'codax batches (the Jacobian\'s own batched code was refused)\n'
                    + inspect.getsource(summand) + '\n\n' + batched.source(*moved))
        if route == 'loop':
            return ('# a Python loop over the examples calls this for each (batching '
                    'was refused)\n' + inspect.getsource(resolve(self.fun, _examples(args, axes))))
        return self._specialize(args, axes)[0].generated.source

    def function_for(self, args, axes=None):
        """The generated function, for a transformation of this one (grad(vmap(f))).
        For vmap(grad(f)) that is grad's code batched, whatever __call__ chooses."""
        if self._custom:
            raise SourceError(f'codax cannot differentiate vmap of {self.fun.__name__}, which has a '
                              f'custom {self._custom} rule: the batched function would not use '
                              'it. Apply vmap to the derivative instead (vmap(grad(f)))')
        if axes is None:        # (called with these very arguments: none passed once)
            args, axes = self._arguments(args, {}, repeated=False, filled=True)
        if self.internal and self.axis_size is None and not _any_batched(args, axes):
            # every batched slot holds a number (a structural zero): one call
            # that every example shares, as __call__ makes it (_shared_call)
            return self._target(args, tuple(_normalized(a, arg) for a, arg in zip(axes, args)))
        if self.axis_size is not None:
            self._check(args, axes)
            if not _any_batched(args, axes):
                return self._repeating(len(args))
        if self._gradient is not None and _any_batched(args, axes):
            size = self._check(args, axes)
            if self._summing(args, axes, size):
                return self._per_example_function(args, axes, size)
        entry, fn = self._specialize(args, axes)
        (function,) = entry.build(fn)
        return function

    # ---- generation ----

    def _target(self, args, axes):
        """The plain function to batch: the user's, or the generated code of a
        transformation, or the definition of rt.vjp_call / rt.pullback /
        rt.jvp_call (derivative code that calls user functions)."""
        fn = runtime.jvp_call if self.fun is jvp else self.fun     # codax.jvp in user code
        if transformation_of(fn) is None and fn not in _SPECIAL:
            return resolve(fn, args)
        examples = _examples(args, axes)
        if fn in _SPECIAL:
            from .calls import _defined
            fn, _ = _defined(fn, args[:1] + examples[1:], {})
        return resolve(fn, examples)

    def _specialize(self, args, axes):
        """(the specialization for these arguments, the function it batches)."""
        axes = tuple(_normalized(a, arg) for a, arg in zip(axes, args))
        fn = self._target(args, axes)
        if not isinstance(fn, types.FunctionType):
            raise TypeError(f'vmap can only transform Python functions, got {fn!r}')
        ranks = tuple(numpy.ndim(leaf) for leaf in tree_leaves(args))
        key = ('vmap', _hashable(axes), _hashable(self.out_axes), id(fn.__code__),
               id(fn.__globals__), closure_key(fn), _closure_ranks(fn), signature(args), ranks)
        entry = CACHE.get(key)
        if entry is not None and entry.code is fn.__code__ and entry.current():
            return entry, fn
        with CACHE.compiling():
            label = f'vmap({fn.__name__}) {_describe(args)} #{next(_labels)}'
            infos = [info_of_value(arg, _front(a)) for arg, a in zip(args, axes)]
            generated, _ = compile_batch(compiled_view(fn, args), axes, self.out_axes, lambda params: infos, label,
                                         callee_info)
            entry = Specialization(fn, generated, array_module(*tree_leaves(args)))
            CACHE.put(key, entry)
            return entry, fn

    # ---- vmap(grad(f)): per-example gradients ----

    def _summing(self, args, axes, size):
        """Whether vmap(grad(f)) takes the gradient of the summed vmap(f)
        instead of batching grad's generated code.

        Batching grad's code is the first choice: every operation of the
        gradient gets the batch axis, and parameters shared by all examples
        stay shared (W @ x stays one product). Its tape cannot grow by a
        different number of entries per example, though (a loop whose trip
        count differs between examples); then, since the examples are
        independent, the gradient of the sum over the batch of vmap(f), taken
        with the differentiated arguments repeated along the batch, holds each
        example's own gradient."""
        key = self._summing_key(args, axes)
        choice = self._summed_for.get(key)
        if choice is None:
            try:
                self._specialize(args, axes)
                choice = False
            except SourceError:
                choice = True
            self._summed_for[key] = choice
        return choice

    @staticmethod
    def _summing_key(args, axes):
        return signature(args), _hashable(axes), tuple(map(numpy.ndim, tree_leaves(args)))

    def _per_example(self, args, axes, size):
        """Per-example gradients from the gradient of the summed vmap(f). The
        differentiated arguments are batched throughout (an unbatched one is
        repeated), and every batch axis is moved to the front first."""
        summed, args, _ = self._summed(args, axes, size)
        grads, value = summed(*args)
        mode, has_aux = self._gradient.mode, self._gradient.has_aux
        if mode == 'value_and_grad':
            out = (value, grads)
        else:
            out = (grads, value) if has_aux else grads
        return runtime.batch_outputs(out, 0, self.out_axes, size)

    def _per_example_function(self, args, axes, size):
        """_per_example as Python source that codax transforms again, for a
        transformation of this vmap(grad(f)) where grad's code cannot be
        batched (jacfwd of it: vmap(hessian(f)) of a recursive f)."""
        key = self._summing_key(args, axes) + (size,)
        function = self._summed_cache.get(key)
        if function is None:
            summed = self._summed(args, axes, size)[0]
            nums = {i % len(args) for i in self._gradient.argnums}
            params = [f'a{i}' for i in range(len(args))]
            # (batch axes first; a differentiated argument batched throughout)
            moved = [f'rt.moveaxes({p}, {axes[i]!r}, True)' for i, p in enumerate(params)]
            moved = [f'rt.batch_outputs({m}, {_front(axes[i])!r}, 0, {size})' if i in nums
                     else m for i, m in enumerate(moved)]
            mode, has_aux = self._gradient.mode, self._gradient.has_aux
            out = '(out[1], out[0])' if mode == 'value_and_grad' else 'out' if has_aux \
                else 'out[0]'
            name = f'per_example_{mode}'
            text = (f'def {name}({", ".join(params)}):\n'
                    f'    out = summed({", ".join(moved)})\n'
                    f'    return rt.batch_outputs({out}, 0, {self.out_axes!r}, {size})\n')
            filename = f'<codax vmap({mode}) by the summed gradient #{next(_labels)}>'
            function = define(text, filename, {'summed': summed, 'rt': runtime})[name]
            self._summed_cache[key] = function
        return function

    def _summed(self, args, axes, size):
        """grad of `per_example_grad(*args) = sum(vmap(f)(*args), axis=0)` for
        these axes, and the arguments moved and repeated to match."""
        t = self._gradient
        nums = {i % len(args) for i in t.argnums}
        moved, front = [], []
        for i, (arg, axis) in enumerate(zip(args, axes)):
            if i in nums:
                moved.append(_batched_throughout(arg, axis, size))
                front.append(0)
            else:
                moved.append(runtime.moveaxes(arg, axis, True))
                front.append(_front(axis))
        key = (len(args), _hashable(tuple(front)))
        summed = self._summed_cache.get(key)
        if summed is None:
            batched = vmap(t.fun, in_axes=tuple(front))
            function = _summing_function(batched, len(args), t.mode, t.has_aux)
            argnums = t.argnums[0] if t._single else t.argnums
            summed = self._summed_cache[key] = grad(function, argnums, has_aux=True)
            summed.batched = batched
        return summed, tuple(moved), tuple(front)

    def as_function(self):
        call = self.__call__ if self._hint is None else self._hinted_call

        def batched(*args, **kwargs):
            return call(*args, **kwargs)
        functools.update_wrapper(batched, self.fun, updated=())
        del batched.__wrapped__
        keep_signature(batched, self.fun)
        batched.source = self.source
        batched.__codax_transformed__ = self
        return batched


_DIFFERENT_SHAPES = 'vmap: the examples give results of different shapes'   # (rt.batch_loop's)


def _at_callers_line(message):
    """`message` at the user's line that called the definition being batched
    (runtime.batching.users_line), with that line's source shown."""
    where = runtime.batching.users_line()
    return str(SourceError(message, *where)) if where else message


def _keyword_axes(keywords, passed):
    """The axes of the dict of keyword arguments: what the call passed along
    axis 0, as JAX maps keyword arguments; a keyword-only parameter's
    default not mapped."""
    if not isinstance(keywords, dict):
        return 0
    return {k: 0 if k in passed else None for k in keywords}


def _checked_size(axis_size):
    """axis_size as given to vmap: None, or a count."""
    if axis_size is None:
        return None
    if isinstance(axis_size, bool) or not isinstance(axis_size, (int, numpy.integer)) \
            or axis_size < 0:
        raise TypeError(f'vmap: axis_size must be None or a non-negative int, got {axis_size!r}')
    return int(axis_size)


def _any_batched(args, axes):
    return any(a is not None for arg, axis in zip(args, axes)
               for _, a in _leaf_axes(axis, arg, ''))


_repeaters = {}


def _repeating_function(fun, count, out_axes, size):
    """`repeat_<name>(a0, ...)`: fun's outputs for these arguments, repeated
    `size` times along out_axes, as Python source that codax can transform."""
    params = ', '.join(f'a{i}' for i in range(count))
    name = f'repeat_{getattr(fun, "__name__", "f")}'
    if not name.isidentifier():                         # a lambda: '<lambda>'
        name = 'repeat_function'
    text = (f'def {name}({params}):\n'
            f'    out = fun({params})\n'
            f'    return rt.batch_outputs(out, None, {out_axes!r}, {size})\n')
    filename = f'<codax vmap({name[7:]}) with axis_size {size} #{next(_labels)}>'
    function = define(text, filename, {'fun': fun, 'rt': runtime})[name]
    function.source = text
    return function


def _only_modules(cells):
    try:
        return all(isinstance(c.cell_contents, types.ModuleType) for c in cells or ())
    except ValueError:                  # a cell not filled yet
        return False


def _restoring(function, entry):
    """`function`, which silences NumPy's warnings while code runs for
    examples that do not take it (rt.quiet ... rt.loud): if it raises in
    between, NumPy's error state is put back all the same."""
    if 'rt.quiet()' not in entry.generated.source:
        return function

    def restoring(*args):
        state = numpy.geterr()
        try:
            return function(*args)
        except BaseException:
            numpy.seterr(**state)
            raise
    return restoring


def _summing_function(batched, count, mode, has_aux):
    """`per_example_grad(a0, ...)`: the sum over the batch of `batched`'s
    output, with the per-example outputs as aux data (value_and_grad's values
    or grad's aux), as Python source that codax differentiates."""
    params = ', '.join(f'a{i}' for i in range(count))
    value = 'out[0]' if has_aux else 'out'
    aux = 'out' if mode == 'value_and_grad' else 'out[1]' if has_aux else 'None'
    name = f'per_example_{mode}'
    text = (f'def {name}({params}):\n'
            f'    out = batched({params})\n'
            f'    return numpy.sum({value}, axis=0), {aux}\n')
    filename = f'<codax vmap({mode}) #{next(_labels)}>'
    return define(text, filename, {'batched': batched, 'numpy': numpy})[name]


def _is_jacobian(inner):
    """Whether `inner` (what transformation_of gives) is a Jacobian of generated
    code: jacfwd / jacrev of an argument (a _CheckedJacobian), of pytrees
    (_PytreeJacobian), or hessian."""
    return isinstance(inner, (_CheckedJacobian, _PytreeJacobian, _Hessian))


def _chosen_jacobian(inner, examples):
    """The _CheckedJacobian that `inner` stands for, given one example's
    arguments (hessian's choice: jacfwd(grad(f)) for a scalar f, ...), or None
    (pytrees: _PytreeJacobian's code, no summed form)."""
    if isinstance(inner, _Hessian):
        inner = transformation_of(inner.chosen(examples))
    return inner if isinstance(inner, _CheckedJacobian) else None


def _jacobian_summand(batched, count, argnum, forward):
    """The function whose Jacobian holds every example's (_summed_jacobian),
    as Python source that codax differentiates: vmap(g) with a perturbation
    of one example's shape added to argument `argnum` of every example
    (forward), or vmap(g) summed over the batch (reverse)."""
    params = [f'a{i}' for i in range(count)]
    if forward:
        passed = [f'{p} + perturbation' if i == argnum else p for i, p in enumerate(params)]
        name, header = 'perturbed', ['perturbation'] + params
        result = 'out'
    else:
        passed, name, header = params, 'summed', params
        result = 'numpy.sum(out, axis=0)'
    text = (f'def {name}({", ".join(header)}):\n'
            f'    out = batched({", ".join(passed)})\n'
            f'    return {result}\n')
    filename = f'<codax vmap of a Jacobian, {name} #{next(_labels)}>'
    return define(text, filename, {'batched': batched, 'numpy': numpy})[name]


def _batched_throughout(tree, axes, size):
    """`tree` with every leaf's batch axis first, an unbatched leaf repeated."""
    leaves, treedef = tree_flatten(tree)
    out = []
    for leaf, (_, axis) in zip(leaves, _leaf_axes(axes, tree, '')):
        xp = array_module(leaf)
        leaf = xp.asarray(leaf)
        out.append(xp.broadcast_to(leaf, (size,) + leaf.shape) if axis is None
                   else xp.moveaxis(leaf, axis, 0))
    return tree_unflatten(treedef, out)


def _numeric_axes(axes, tree, where):
    """The axes prefix expanded over containers (a registered node's as the
    tuple of its children's), None for non-numeric leaves."""
    if node_children(tree) is not None:
        _leaf_axes(axes, tree, where)            # a mismatch is explained naming the node
        return _numeric_axes(axes, _as_sequence(tree), where)
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


def _shared_unbatched(axes, tree, repeated=True):
    """(tree, axes) for a call from batched code, with every leaf that the
    examples share passed once, unbatched. A 0-d leaf cannot carry the batch
    axis: it is the same for every example (the zero 0.0 standing for zeros,
    or a number in a value whose form the batch pass could not see, marked
    batched whole). A leaf repeated along the batch (a broadcast view, stride
    0) is one value too: so a count saved on a tape, broadcast with the tape,
    is a count again where the backward sweep loops over it."""
    if isinstance(tree, dict):
        pairs = {k: _shared_unbatched(axes[k] if isinstance(axes, dict) else axes, v, repeated)
                 for k, v in tree.items()}
        return same_dict(tree, {k: p[0] for k, p in pairs.items()}), \
            {k: p[1] for k, p in pairs.items()}
    if isinstance(tree, (list, tuple)):
        pairs = [_shared_unbatched(a, t, repeated) for a, t in
                 zip(axes if isinstance(axes, tuple) else [axes] * len(tree), tree)]
        return runtime.adjoint._rebuild(tree, [p[0] for p in pairs]), tuple(p[1] for p in pairs)
    scalar = isinstance(tree, (int, float, complex, numpy.generic)) or runtime.is_array(tree)
    if scalar and numpy.ndim(tree) == 0:
        return tree, None
    if repeated and axes == 0 and _repeated(tree):
        # one example's value; a number as the Python int or bool it was
        # (a user's `isinstance(k, int)` or `flag is True` must hold as unbatched)
        return (tree[0].item() if tree.ndim == 1 else tree[0]), None
    return tree, axes


def _repeated(leaf):
    """Whether `leaf` is an integer or bool repeated along its first axis (a
    broadcast view): a count or a flag saved on a tape. (A repeated float is
    mostly derivative code's zero 0.0, which one NumPy number of it would no
    longer stand for.)"""
    return runtime.is_array(leaf) and leaf.ndim and leaf.shape[0] and leaf.strides[0] == 0 \
        and leaf.dtype.kind in 'iub'


def _closure_ranks(fn):
    """The rank of each array a closure holds, and of each global array the
    code reads: batched code relies on them."""
    ranks = []
    for cell in fn.__closure__ or ():
        try:
            ranks.append(getattr(cell.cell_contents, 'ndim', None))
        except ValueError:                # a cell not filled yet
            ranks.append(None)
    return tuple(ranks) + _global_ranks(fn)


def _global_ranks(fn):
    """(name, rank) of each global array that fn's code reads."""
    space, out = fn.__globals__, []
    for name in _global_names(fn.__code__):
        ndim = getattr(space.get(name), 'ndim', None)
        if isinstance(ndim, int):
            out.append((name, ndim))
    return tuple(out)


def _global_names(code):
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return names


def _ranks_current(fn, ranks):
    space = fn.__globals__
    return all(getattr(space.get(name), 'ndim', None) == ndim for name, ndim in ranks)


def _front(axes):
    if isinstance(axes, tuple):
        return tuple(_front(a) for a in axes)
    if isinstance(axes, dict):
        return {k: _front(v) for k, v in axes.items()}
    return None if axes is None else 0


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


def callee_info(fn, infos, natural=False):
    """At compile time: what the batched output of a user function called with
    arguments described by `infos` looks like (None if it cannot be told yet):
    with out_axes 0 (every leaf batched), or with `natural` as the batched code
    leaves it (the out_axes a caller then asks for: rt.vmapped's third argument)."""
    import types
    if not isinstance(fn, types.FunctionType) or getattr(fn, '__codax_transformed__', None):
        return None
    key = (fn.__code__, tuple(map(repr, infos)))
    if key in _compiling and natural:
        raise RecursiveBatching(f'codax vmap: {fn.__name__} calls itself inside code whose '
                                'derivative is batched')
    if key in _compiling or len(_compiling) > 16:      # recursion: known after the fact
        return None
    # codax's own functions (generated code, rt.pullback's definition) are
    # probed again and again by nested derivatives (two thirds of a third
    # derivative's batch compiles): their answer is remembered, as their
    # source and globals do not change (pipeline._own)
    remembered = (fn, key[1], natural) if _own(fn) else None
    if remembered in _PROBES:
        found = _PROBES[remembered]
        if isinstance(found, RecursiveBatching):
            raise found.with_traceback(None)
        return copy.deepcopy(found)
    try:
        info = _probe(fn, infos, key, natural)
    except RecursiveBatching as exc:
        _remember(remembered, exc)
        raise
    _remember(remembered, info)
    return copy.deepcopy(info)


_PROBES = {}


def _remember(key, answer):
    if key is not None:
        if len(_PROBES) > 4096:
            _PROBES.clear()
        _PROBES[key] = answer


def _probe(fn, infos, key, natural):
    """callee_info's answer, by compiling fn's batched code now."""
    _compiling.add(key)
    try:
        axes = [i.axes() for i in infos]
        _, info = compile_batch(compiled_view(fn, infos), axes, 0, lambda params: infos,
                                f'vmap({fn.__name__}) probe',
                                callee_info)
    except RecursiveBatching:
        if natural:
            raise
        return None
    except Exception:
        return None
    finally:
        _compiling.discard(key)
    if natural:
        return info
    from transformer.batch_rules import _mark_batched
    return _mark_batched(info)


def _install_hooks():
    from transformer.batch import HOOKS
    from .calls import closure_caller, static_sweeps, static_user_function
    HOOKS['sweeps'] = static_sweeps
    HOOKS['static_function'] = static_user_function
    HOOKS['closure_call'] = closure_caller


_install_hooks()


def vmap(fun, in_axes=0, out_axes=0, axis_size=None):
    """Vectorizing map: fun mapped over axis `in_axes` of its arguments, with
    the batch axis of the results at `out_axes` (JAX's semantics). `axis_size`
    gives the batch size where no argument is batched; elsewhere it must agree
    with the arguments' mapped axes."""
    return transform_closure(
        fun, lambda lifted, k: vmap(lifted, _captured_unbatched(in_axes, lifted, k), out_axes,
                                    axis_size),
        lambda: Batched(fun, in_axes, out_axes, axis_size).as_function())


def _captured_unbatched(in_axes, lifted, k):
    """in_axes for a closure's lifted function: its k captured values first,
    unbatched (an outer vmap batches them through the closure itself)."""
    if isinstance(in_axes, (tuple, list)):
        return (None,) * k + tuple(in_axes)
    return (None,) * k + (in_axes,) * (lifted.__code__.co_argcount - k)


_vmapped = {}


def _vmap_hook(fn, axes, out_axes=0):
    key = (id(fn), _hashable(axes), _hashable(out_axes))
    hit = _vmapped.get(key)
    if hit is None or hit[0] is not fn:
        if len(_vmapped) > 4096:
            _vmapped.clear()
        hit = _vmapped[key] = (fn, vmap(fn, in_axes=axes, out_axes=out_axes))
        hit[1].__codax_transformed__.internal = True
    return hit[1]


runtime.install_vmap_hook(_vmap_hook)
