"""What generated code calls when it calls a user function.

`rt.vjp_call(f, *args)` (reverse mode) and `rt.jvp_call(f, primals, tangents)`
(forward mode) transform `f` for the arguments' signature and run it. A
pullback is data, (backward function, tape), applied by `rt.pullback`, so code
that calls user functions can be differentiated again: when such derivative
code is itself transformed, these hooks see calls to `rt.vjp_call` and
`rt.pullback` and differentiate the generated functions behind them.
"""
import inspect
import types

import runtime
from runtime import ZERO, item, pullback
from transformer.errors import SourceError

from . import api


def _bind(fn, args, kwargs):
    """All arguments by position, defaults filled in."""
    if kwargs or len(args) < getattr(getattr(fn, '__code__', None), 'co_argcount', 0):
        target = getattr(fn, 'fun', fn)
        bound = inspect.signature(target).bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.args)
    return tuple(args)


_SPECIAL = (runtime.vjp_call, runtime.pullback, runtime.jvp_call)


def _plain(fn, args):
    if any(fn is special for special in _SPECIAL):
        raise SourceError('codax differentiates through calls to user functions up to second '
                          'order; a third derivative through such a call is not supported yet '
                          '(inline the helper to go further)')
    while api.transformation_of(fn) is not None:
        fn = api.transformation_of(fn).function_for(args)
    fn = api.primitive_function(fn) or fn
    if not isinstance(fn, types.FunctionType):
        raise TypeError(f'codax cannot differentiate through a call to {fn!r}: it is not a '
                        'plain Python function')
    return fn


def _rule_helper_error(fn, exc):
    """A derivative rule's helper (runtime code without a record of its own)
    cannot be differentiated again: say so, rather than what failed inside it."""
    if fn.__module__.split('.')[0] != 'runtime':
        return exc
    return SourceError(f'codax has no higher derivative for the rule helper rt.{fn.__name__} '
                       f'(it is first-order only)')


def _vjp_functions(fn, args):
    """The generated forward and backward sweeps of fn for these arguments."""
    if _custom(fn):
        return fn.sweeps()
    fn = _plain(fn, args)
    try:
        return api._vjp_entry(fn, args, False)
    except SourceError as exc:
        raise _rule_helper_error(fn, exc) from None


# ---- custom rules and checkpointing ----

def _custom(fn):
    return getattr(fn, '__codax_custom__', None)


def _custom_vjp(fn, args):
    forward, backward = fn.sweeps()
    out, tape = forward(*args)
    return out, (backward, tape)


def _custom_jvp(fn, primals, tangents):
    kind = _custom(fn)
    if kind == 'jvp':
        dense = tuple(runtime.dense(t, p) for p, t in zip(primals, tangents))
        return fn.jvp_function()(*primals, *dense)
    if kind == 'vjp':
        raise TypeError(f'{fn.__name__} has a custom_vjp rule, which defines reverse mode only; '
                        'forward mode (jvp, jacfwd, hessian) cannot use it. Give it a '
                        'custom_jvp rule instead')
    return jvp_hook(fn.fun, primals, tangents, {}, {})               # checkpoint


# ---- reverse mode ----

def vjp_hook(fn, args, kwargs):
    if fn is runtime.vjp_call:                # reverse over reverse: a forward sweep
        return _vjp_of_forward_sweep(args[0], _bind(args[0], args[1:], kwargs))
    if fn is runtime.pullback:                # reverse over reverse: a backward sweep
        return _vjp_of_pullback(*args)
    if fn is runtime.jvp_call:                # reverse over forward: a tangent sweep
        return _vjp_of_tangent_sweep(*args)
    args = _bind(fn, args, kwargs)
    if _custom(fn):
        return _custom_vjp(fn, args)
    fwd, bwd = _vjp_functions(fn, args)
    out, tape = fwd(*args)
    return out, (bwd, tape)


def _vjp_of_forward_sweep(inner, args):
    """vjp of args -> (out, (bwd, tape)): the vjp of the generated forward sweep."""
    fwd, bwd = _vjp_functions(inner, args)
    (out, tape), pb = vjp_hook(fwd, args, {})
    return (out, (bwd, tape)), (_forward_sweep_pullback, pb)


def _forward_sweep_pullback(pb, cotangent):
    adjoints = pullback(pb, (item(cotangent, 0), item(item(cotangent, 1), 1)))
    return (ZERO,) + tuple(adjoints)          # nothing flows to the function argument


def _vjp_of_pullback(pb, cotangent):
    """vjp of (pb, ct) -> bwd(tape, ct): the vjp of the generated backward sweep.

    The symbolic zero cotangent is a constant of the code (a structurally zero
    adjoint): what flows back to it is dropped, so nothing is differentiated."""
    if runtime.is_zero(cotangent):
        return ZERO, (_zero_adjoints, None)
    bwd, state = pb
    value, inner = vjp_hook(bwd, (state, cotangent), {})
    return value, (_pullback_pullback, inner)


def _zero_adjoints(state, cotangent):
    return 0.0, 0.0


def _pullback_pullback(inner, c):
    adjoint_state, adjoint_cotangent = pullback(inner, c)
    return (ZERO, adjoint_state), adjoint_cotangent


def _tangent_function(inner, primals, tangents, also=()):
    """The generated forward-mode function of `inner` and the tangents it takes:
    those that are not the zero (or whose own tangents in `also` are not)."""
    others = also or (ZERO,) * len(primals)
    if _custom(inner) == 'jvp':             # the rule's generated jvp takes every tangent
        everything = tuple(range(len(primals)))
        return inner.jvp_function(), everything, tuple(
            runtime.dense(t, p) for p, t in zip(primals, tangents))
    if _custom(inner) == 'checkpoint':
        inner = inner.fun
    inner = _plain(inner, primals)
    active = tuple(i for i, (p, t, o) in enumerate(zip(primals, tangents, others))
                   if api._has_inexact(p) and not (runtime.is_zero(t) and runtime.is_zero(o)))
    function, _ = api._jvp_entry(inner, primals, False, active)
    dense = tuple(runtime.dense(tangents[i], primals[i]) for i in active)
    return function, active, dense


def _vjp_of_tangent_sweep(inner, primals, tangents, kwargs=None, kwtangents=None):
    """vjp of (primals, tangents) -> jvp_call(inner, primals, tangents)."""
    if kwargs or kwtangents:
        raise SourceError('codax cannot differentiate forward-mode code that passes keyword '
                          'arguments to a user function')
    function, active, dense = _tangent_function(inner, tuple(primals), tuple(tangents))
    value, pb = vjp_hook(function, tuple(primals) + dense, {})
    return value, (_tangent_sweep_pullback, (pb, len(primals), active))


def _tangent_sweep_pullback(state, cotangent):
    pb, count, active = state
    adjoints = pullback(pb, cotangent)
    of_tangents = [ZERO] * count
    for k, i in enumerate(active):
        of_tangents[i] = adjoints[count + k]
    return ZERO, tuple(adjoints[:count]), tuple(of_tangents)


# ---- forward mode ----

def jvp_hook(fn, primals, tangents, kwargs, kwtangents):
    if fn is runtime.vjp_call:                # forward over reverse: a forward sweep
        inner, args, dargs = primals[0], primals[1:], tangents[1:]
        fwd, bwd = _vjp_functions(inner, args)
        (out, tape), d = jvp_hook(fwd, args, dargs, {}, {})
        return (out, (bwd, tape)), (item(d, 0), (ZERO, item(d, 1)))
    if fn is runtime.pullback:                # forward over reverse: a backward sweep
        if runtime.is_zero(primals[1]) and runtime.is_zero(tangents[1]):
            return ZERO, ZERO                 # a structurally zero cotangent
        (bwd, state), cotangent = primals
        return jvp_hook(bwd, (state, cotangent), (item(tangents[0], 1), tangents[1]), {}, {})
    if fn is runtime.jvp_call:                # forward over forward: a tangent sweep
        inner, inner_primals, inner_tangents = primals[:3]
        count = len(inner_primals)
        d_primals = tuple(item(tangents[1], i) for i in range(count))
        d_tangents = tuple(item(tangents[2], i) for i in range(count))
        function, active, dense = _tangent_function(inner, tuple(inner_primals),
                                                    tuple(inner_tangents), d_tangents)
        return jvp_hook(function, tuple(inner_primals) + dense,
                        d_primals + tuple(item(d_tangents, i) for i in active), {}, {})
    if kwargs or len(primals) < getattr(getattr(fn, '__code__', None), 'co_argcount', 0):
        names = list(inspect.signature(getattr(fn, 'fun', fn)).parameters)
        given = dict(zip(names, tangents), **kwtangents)
        primals = _bind(fn, primals, kwargs)
        tangents = tuple(given.get(name, ZERO) for name in names[:len(primals)])
    if _custom(fn):
        return _custom_jvp(fn, tuple(primals), tuple(tangents))
    fn = _plain(fn, primals)
    active = tuple(i for i, (p, t) in enumerate(zip(primals, tangents))
                   if not runtime.is_zero(t) and api._has_inexact(p))
    try:
        function, _ = api._jvp_entry(fn, primals, False, active)
    except SourceError as exc:
        raise _rule_helper_error(fn, exc) from None
    return function(*primals, *[tangents[i] for i in active])


runtime.install_vjp_hook(vjp_hook)
runtime.install_jvp_hook(jvp_hook)
