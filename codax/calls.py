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
    if _custom(fn):
        raise SourceError(f'codax applies custom rules (here {fn.__name__!r}) for first '
                          'derivatives; a higher derivative through a custom rule is not '
                          'supported yet')
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


def _vjp_functions(fn, args):
    try:
        return api._vjp_entry(fn, args, False)
    except SourceError as exc:
        if fn.__module__.split('.')[0] != 'runtime':
            raise
        raise SourceError(f'codax has no higher derivative for the rule helper rt.{fn.__name__} '
                          f'(it is first-order only): {exc.message}') from None


# ---- custom rules and checkpointing ----

def _custom(fn):
    return getattr(fn, '__codax_custom__', None)


def _custom_vjp(fn, args):
    kind = _custom(fn)
    if kind == 'vjp':
        if fn.fwd is None:
            raise TypeError(f'{fn.__name__}: custom_vjp needs defvjp(fwd, bwd) before use')
        out, residuals = fn.fwd(*args)
        return out, (_custom_vjp_pullback, (fn.bwd, residuals))
    if kind == 'jvp':
        if fn.jvp_rule is None:
            raise TypeError(f'{fn.__name__}: custom_jvp needs defjvp(rule) before use')
        return fn.fun(*args), (_custom_jvp_pullback, (fn.jvp_rule, args))
    return fn(*args), (_checkpoint_pullback, (fn.fun, args))        # checkpoint


def _custom_vjp_pullback(state, cotangent):
    bwd, residuals = state
    return tuple(bwd(residuals, cotangent))


def _custom_jvp_pullback(state, cotangent):
    """The transpose of the rule's tangent map: the rule is linear in its
    tangents, so its vjp with respect to them (at zero) is the transpose."""
    rule, args = state
    zeros = tuple(runtime.dense(ZERO, a) for a in args)
    fwd, bwd = api.specialize(rule, 'vjp', (1,), False, (args, zeros)).build(rule)
    _, tape = fwd(args, zeros)                       # only the tangents are differentiated
    adjoints = bwd(tape, (ZERO, cotangent))[1]
    return tuple(item(adjoints, i) for i in range(len(args)))


def _checkpoint_pullback(state, cotangent):
    fun, args = state                     # recompute the forward sweep now
    _, pb = vjp_hook(fun, args, {})
    return pullback(pb, cotangent)


def _custom_jvp(fn, primals, tangents):
    kind = _custom(fn)
    if kind == 'jvp':
        dense = tuple(runtime.dense(t, p) for p, t in zip(primals, tangents))
        out, tangent = fn.jvp_rule(primals, dense)
        return out, tangent
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
    args = _bind(fn, args, kwargs)
    if _custom(fn):
        return _custom_vjp(fn, args)
    fn = _plain(fn, args)
    fwd, bwd = _vjp_functions(fn, args)
    out, tape = fwd(*args)
    return out, (bwd, tape)


def _vjp_of_forward_sweep(inner, args):
    """vjp of args -> (out, (bwd, tape)): the vjp of the generated forward sweep."""
    fwd, bwd = _vjp_functions(_plain(inner, args), args)
    (out, tape), pb = vjp_hook(fwd, args, {})
    return (out, (bwd, tape)), (_forward_sweep_pullback, pb)


def _forward_sweep_pullback(pb, cotangent):
    adjoints = pullback(pb, (item(cotangent, 0), item(item(cotangent, 1), 1)))
    return (ZERO,) + tuple(adjoints)          # nothing flows to the function argument


def _vjp_of_pullback(pb, cotangent):
    """vjp of (pb, ct) -> bwd(tape, ct): the vjp of the generated backward sweep."""
    bwd, state = pb
    value, inner = vjp_hook(bwd, (state, cotangent), {})
    return value, (_pullback_pullback, inner)


def _pullback_pullback(inner, c):
    adjoint_state, adjoint_cotangent = pullback(inner, c)
    return (ZERO, adjoint_state), adjoint_cotangent


# ---- forward mode ----

def jvp_hook(fn, primals, tangents, kwargs, kwtangents):
    if fn is runtime.vjp_call:                # forward over reverse: a forward sweep
        inner, args, dargs = primals[0], primals[1:], tangents[1:]
        fwd, bwd = _vjp_functions(_plain(inner, args), args)
        (out, tape), d = jvp_hook(fwd, args, dargs, {}, {})
        return (out, (bwd, tape)), (item(d, 0), (ZERO, item(d, 1)))
    if fn is runtime.pullback:                # forward over reverse: a backward sweep
        (bwd, state), cotangent = primals
        return jvp_hook(bwd, (state, cotangent), (item(tangents[0], 1), tangents[1]), {}, {})
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
    function, _ = api._jvp_entry(fn, primals, False, active)
    return function(*primals, *[tangents[i] for i in active])


runtime.install_vjp_hook(vjp_hook)
runtime.install_jvp_hook(jvp_hook)
