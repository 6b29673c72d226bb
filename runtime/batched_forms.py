"""Calls of functions that bring their own batched form (codax.random's samplers).

A function `fn` with a batched form carries it as `fn.__codax_batched__`: the
same arguments, with the first one (a key) carrying any number of leading
batch axes, returning what `fn` returns for each example with those axes in
front. Because every level of batching is just one more leading axis, the
batched form serves vmap of vmapped code as it is.

The form may also state the rank of its result, `form.rank(*args, **kwargs)`,
asked at compile time (`batched_form_rank`) with each argument described as
the compiler knows it: the batch pass then knows the rank of the draws, so the
code that uses them stays vectorized.

Derivatives. The draws do not depend on differentiated values, but a
sampler's float parameters (uniform's maxval, gamma's a) may. The batched
form's derivative with respect to them is that of the call it makes, with
the whole batch of keys at once: `form.differentiable(args, kwargs)` gives
that call as (function, its arguments, the name of the form's parameter each
one is bound to), `function` being something codax differentiates (NumPy it
reads, a custom rule). A form without it is that call itself, bound to its
own signature. rt.vjp_call and rt.jvp_call (codax's transformations,
through their hooks) differentiate it.

Second derivatives (hessian, grad of grad under vmap over keys) come the
same way, from the hooks' nested calls of that one call (reverse over
forward, forward over forward): the rules of batched_form_vjp and
batched_form_jvp are these two again and batched_form_hvp /
batched_form_jvp2, which have no rules of their own (no third derivatives
of draws inside vmap).
"""
import inspect

import numpy

from .backend import is_array
from .adjoint import ZERO, is_zero, item, jvp_call, materialize, pullback, vjp_call

__all__ = ['batched_form', 'batched_form_vjp', 'batched_form_jvp', 'batched_form_hvp',
           'batched_form_jvp2', 'Abstract', 'batched_form_rank']


def batched_form(fn, args, kwargs):
    """`fn.__codax_batched__(*args, **kwargs)`: vmap's rule for a call of `fn`
    whose first argument (a key) has leading batch axes and whose other
    arguments are shared by all examples. The batched form returns what `fn`
    returns for each example, with those axes in front."""
    return fn.__codax_batched__(*args, **kwargs)


def _differentiable(fn, args, kwargs):
    """(function, arguments, parameter names): the call fn's batched form
    makes for (args, kwargs), as its derivatives see it."""
    form = fn.__codax_batched__
    call = getattr(form, 'differentiable', None)
    if call is not None:
        return call(args, kwargs)
    bound = inspect.signature(getattr(form, 'fun', form)).bind(*args, **kwargs)  # (custom_jvp)
    bound.apply_defaults()
    return form, list(bound.arguments.values()), list(bound.arguments)


def batched_form_vjp(cot, fn, args, kwargs):
    """(adjoint of args, adjoint of kwargs) for ans = batched_form(fn, args,
    kwargs) and its cotangent `cot`: the pullback of the batched call."""
    if is_zero(cot):
        return ZERO, ZERO
    function, values, names = _differentiable(fn, args, kwargs)
    out, pb = vjp_call(function, *values)
    return _by_argument(pullback(pb, materialize(cot, out)), values, names, args, kwargs)


def _by_argument(adjoints, values, names, args, kwargs):
    """Adjoints of the call's values, one per name, as (adjoint of args,
    adjoint of kwargs)."""
    if is_zero(adjoints):
        return ZERO, ZERO
    by_name = {name: _of_dtype(item(adjoints, i), value)
               for i, (name, value) in enumerate(zip(names, values))}
    return (tuple(by_name[name] for name in names[:len(args)]),
            {key: by_name[key] for key in kwargs})


def _of_dtype(adjoint, x):
    """An array adjoint in the float dtype of its array primal x (float32
    parameters of float64 draws: float32 adjoints, as every rule keeps them)."""
    dtype = getattr(x, 'dtype', None)
    if is_array(adjoint) and dtype is not None and dtype.kind == 'f' \
            and adjoint.dtype != dtype:
        return adjoint.astype(dtype)
    return adjoint


def _tangents(names, values, args, kwargs, targs, tkwargs):
    """The tangent of each of the call's values, by name, from tangents of
    args and kwargs (each may be the zero 0.0); the zero for values that are
    not differentiated (keys, shapes); None where all are zero."""
    given = {name: item(targs, i) for i, name in enumerate(names[:len(args)])}
    given.update((key, item(tkwargs, key)) for key in kwargs)
    tangents = tuple(given.get(name, ZERO) if _inexact(value) else ZERO
                     for name, value in zip(names, values))
    return None if all(is_zero(t) for t in tangents) else tangents


def _inexact(value):
    """Whether a value has float or complex leaves (a key, a shape, a dtype:
    no tangent)."""
    if isinstance(value, (tuple, list, dict)):
        return any(_inexact(v) for v in (value.values() if isinstance(value, dict) else value))
    dtype = getattr(value, 'dtype', None)
    return isinstance(value, (float, complex)) or \
        (isinstance(dtype, numpy.dtype) and dtype.kind in 'fc')


def batched_form_jvp(fn, args, kwargs, targs, tkwargs):
    """The tangent of ans = batched_form(fn, args, kwargs) for tangents
    `targs` of args and `tkwargs` of kwargs (each may be the zero 0.0)."""
    function, values, names = _differentiable(fn, args, kwargs)
    tangents = _tangents(names, values, args, kwargs, targs, tkwargs)
    if tangents is None:
        return ZERO
    return jvp_call(function, tuple(values), tangents)[1]


def batched_form_hvp(hargs, hkwargs, cot, fn, args, kwargs):
    """(adjoint of args, adjoint of kwargs) of <cot, J h>, J the Jacobian of
    batched_form(fn, args, kwargs) and h = (hargs, hkwargs) a tangent of its
    arguments. It is both the VJP of batched_form_jvp with tangent h and the
    JVP of batched_form_vjp of cot in direction h (second derivatives are
    symmetric): the batched call's tangent sweep, differentiated in reverse."""
    function, values, names = _differentiable(fn, args, kwargs)
    tangents = _tangents(names, values, args, kwargs, hargs, hkwargs)
    if is_zero(cot) or tangents is None:
        return ZERO, ZERO
    (_, tangent), pb = vjp_call(jvp_call, function, tuple(values), tangents)
    adjoints = pullback(pb, (ZERO, materialize(cot, tangent)))
    return _by_argument(item(adjoints, 1), values, names, args, kwargs)


def batched_form_jvp2(fn, args, kwargs, targs, tkwargs, dargs, dkwargs):
    """The tangent of batched_form_jvp(fn, args, kwargs, targs, tkwargs) when
    args and kwargs move by (dargs, dkwargs): the batched call's tangent
    sweep, differentiated forward."""
    function, values, names = _differentiable(fn, args, kwargs)
    tangents = _tangents(names, values, args, kwargs, targs, tkwargs)
    moves = _tangents(names, values, args, kwargs, dargs, dkwargs)
    if tangents is None or moves is None:
        return ZERO
    _, (_, second) = jvp_call(jvp_call, (function, tuple(values), tangents),
                              (ZERO, moves, ZERO))
    return second


class Abstract:
    """An argument known at compile time only by its number of dimensions
    (`ndim`; None when not even that is known): 0 for a number, 1 for a vector."""
    __slots__ = ('ndim',)

    def __init__(self, ndim=None):
        self.ndim = ndim

    def __eq__(self, other):
        return isinstance(other, Abstract) and other.ndim == self.ndim

    __hash__ = None

    def __repr__(self):
        return f'Abstract(ndim={self.ndim})'


def batched_form_rank(fn, args, kwargs):
    """The rank of `fn.__codax_batched__(*args, **kwargs)`, by the form's own
    `rank`, for arguments described as the compiler knows them: None (the
    constant None), tuples and dicts of descriptions, or Abstract. None where
    the form states no rank or the description does not tell it."""
    rank = getattr(getattr(fn, '__codax_batched__', None), 'rank', None)
    if rank is None:
        return None
    try:
        out = rank(*args, **kwargs)
    except Exception:                # a call the form would refuse: it says why at run time
        return None
    return out if isinstance(out, int) and out >= 0 else None
