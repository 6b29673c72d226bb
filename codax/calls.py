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

import numpy

import runtime
from runtime import ZERO, Closure, item, pullback
from transformer.errors import SourceError
from transformer.ir import packs_keywords

from . import api
from runtime.backend import array_module
from runtime.sources import define
from transformer.pipeline import compile_reverse

from .cache import CACHE, closure_key, signature


def _bind(fn, args, kwargs):
    """All arguments by position, defaults filled in (a custom rule's: those
    of the function it wraps); what a **kwargs parameter takes as one more,
    a dict, as the generated code of such a function takes it (normalize)."""
    target = getattr(fn, 'fun', fn)
    count = getattr(getattr(target, '__code__', None), 'co_argcount', 0)
    packs = packs_keywords(target)
    if packs_keywords(api._user_function(fn)):      # (also a transformation of one)
        return api.packed_arguments(fn, args, kwargs)
    if kwargs or len(args) < count + bool(packs):
        bound = inspect.signature(target).bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.args) + ((bound.kwargs,) if packs else ())
    return tuple(args)


def _bind_defaults(fn, args):
    """_bind for a callable whose tangent function rt.jvp_call makes: a
    closure's defaults are its lifted function's (after the captured
    values), a partial's or bound method's its wrapper's (api.bound_function)."""
    if isinstance(fn, Closure):
        return _bind(fn.function, tuple(fn) + tuple(args), {})[len(fn):]
    return _bind(api.bound_function(fn) or fn, args, {})


def _bind_called(fn, args, kwargs):
    """_bind for the function that rt.vjp_call calls; where that is rt.vjp_call
    again (a third derivative), the defaults of the function it calls in turn
    are filled in too, as the sweeps of that inner call take them."""
    if fn is runtime.vjp_call and args and not kwargs:
        return (args[0],) + _bind_called(args[0], tuple(args[1:]), {})
    return _bind(fn, args, kwargs)


_SPECIAL = (runtime.jvp_call,)


def _plain(fn, args):
    if any(fn is special for special in _SPECIAL):
        raise SourceError('codax differentiates forward-mode code that calls user functions '
                          'up to second order (here a third derivative through jvp_call); '
                          'use reverse mode (grad) for the outer derivatives')
    fn = api.bound_function(fn) or fn
    while api.transformation_of(fn) is not None:
        fn = api.transformation_of(fn).function_for(args)
    fn = api.readable_function(fn, len(args))
    if not isinstance(fn, types.FunctionType):
        raise TypeError(f'codax cannot differentiate through a call to {fn!r}: it is not a '
                        'plain Python function')
    return fn


def _rule_helper_error(fn, exc):
    """A derivative rule's helper (runtime code without a record of its own)
    cannot be differentiated again: say so, rather than what failed inside it."""
    module = getattr(fn, '__module__', None) or ''
    if module.split('.')[0] != 'runtime' or module == 'runtime.definitions':
        return exc
    return SourceError(f'this derivative needs a higher derivative of codax\'s rule helper '
                       f'rt.{fn.__name__}, which is first-order only')


def _vjp_functions(fn, args):
    """The generated forward and backward sweeps of fn for these arguments."""
    fn, args = _defined(fn, args, {})
    if _custom(fn):
        return fn.sweeps()
    original = fn
    fn = _plain(fn, args)
    active = tuple(i for i, a in enumerate(args) if api._has_inexact(a))
    try:
        entry = api.specialize(fn, 'vjp', active, False, args)
    except SourceError as exc:
        raise _rule_helper_error(fn, exc) from None
    sweeps = entry.build(fn)
    if fn is original:
        _remember('vjp', fn, args, None, sweeps, entry)
    return sweeps


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
                        'forward mode (jvp, jacfwd) cannot use it. Give it a custom_jvp rule '
                        'instead')
    return jvp_hook(fn.fun, primals, tangents, {}, {})               # checkpoint


# ---- reverse mode ----

def _as_jvp_call(fn, args, kwargs):
    """codax.jvp(f, primals, tangents) called inside transformed code is rt.jvp_call."""
    if fn is api.jvp:
        if kwargs.get('has_aux'):
            raise TypeError('codax.jvp with has_aux inside a transformed function is not supported')
        return runtime.jvp_call, tuple(args)
    return fn, args


def vjp_hook(fn, args, kwargs):
    if not kwargs and type(fn) is types.FunctionType and len(args) == fn.__code__.co_argcount:
        sweeps = _remembered('vjp', fn, args, None)
        if sweeps is not None:
            out, tape = sweeps[0](*args)
            return out, (sweeps[1], tape)
    return _vjp_hook(fn, args, kwargs)


def _vjp_hook(fn, args, kwargs):
    fn, args = _as_jvp_call(fn, args, kwargs)
    if isinstance(fn, Closure) or fn is runtime.call_closure:
        fn, args = _defined(fn, args, kwargs)
    if fn is runtime.vjp_call or fn is runtime.pullback:     # reverse over reverse
        fn, args = _defined(fn, args, kwargs)
        kwargs = {}
    if fn is runtime.jvp_call:                # reverse over forward: a tangent sweep
        return _vjp_of_tangent_sweep(*args)
    args = _bind(fn, args, kwargs)
    if _custom(fn):
        return _custom_vjp(fn, args)
    fwd, bwd = _vjp_functions(fn, args)
    out, tape = fwd(*args)
    return out, (bwd, tape)


# rt.vjp_call and rt.pullback, when derivative code that calls them is itself
# differentiated, are replaced by their definitions: generated Python using
# only things codax differentiates, so every order goes through them alike.
_DEFINITIONS = {}


def _definition(kind, count=0, active=(), given=None, shift=0):
    key = (kind, count, active, given, shift)
    if key not in _DEFINITIONS:
        if kind == 'jvp_call':                # for vmap of forward-mode code with calls
            # the name (and so the file name codax reads it back from) tells
            # every definition apart: given arguments, defaults, active ones
            name = f'jvp_call_{count}_' + '_'.join(map(str, active)) + \
                (f'_given{given}' if given != count else '') + ('_inner' if shift else '')
            # defaults omitted by the call: fn's own, or (shift 1, fn being
            # rt.vjp_call) those of the function that rt.vjp_call calls
            default = 'rt.default_argument(fn, {})' if not shift else \
                'rt.default_argument(primals[0], {})'
            unpack = ''.join(f'    p{i} = primals[{i}]\n' if i < given else
                             f'    p{i} = {default.format(i - shift)}\n' for i in range(count))
            unpack += ''.join(f'    t{i} = rt.dense(tangents[{i}], p{i})\n' for i in active)
            call = ', '.join([f'p{i}' for i in range(count)] + [f't{i}' for i in active])
            # with defaults filled in, the tangent function is made for all of
            # them (a primitive's wrapper takes as many as it is made for)
            every = 'primals' if given == count else \
                '(' + ''.join(f'p{i}, ' for i in range(count)) + ')'
            text = (f'def {name}(fn, primals, tangents):\n{unpack}'
                    f'    forward = rt.tangent_function(fn, {every}, {active!r})\n'
                    f'    return forward({call})\n')
        elif kind == 'closure_call':       # a closure's call, the closure passed last
            name = f'closure_call_{count}_{given}'
            args = [f'a{i}' for i in range(given)]
            captured = [f'c{k}' for k in range(count)]
            text = (f'def {name}({", ".join(args + ["fn"])}):\n'
                    '    function = rt.closure_function(fn)\n'
                    + ''.join(f'    {c} = rt.captured(fn, {k})\n' for k, c in enumerate(captured))
                    + f'    return function({", ".join(captured + args)})\n')
        elif kind == 'vjp_call':
            # a closure's sweeps are those of its call, the closure passed last
            args = [f'a{i}' for i in range(count)]
            name = f'vjp_call_{count}' + ('_closure' if given == 'closure' else '')
            called = ', '.join(args + (['fn'] if given == 'closure' else []))
            text = (f'def {name}({", ".join(["fn"] + args)}):\n'
                    f'    forward, backward = rt.sweeps({", ".join(["fn"] + args)})\n'
                    f'    out, tape = forward({called})\n'
                    f'    return out, (backward, tape)\n')
        elif kind == 'batch_loop':
            name = f'batch_loop_{count}'
            picks = ''.join(f'    a{k} = args[{k}]\n    x{k} = rt.arg_axes(axes, {k})\n'
                            for k in range(count))
            examples = ''.join(f'        e{k} = rt.example(a{k}, x{k}, i)\n' for k in range(count))
            call = ', '.join(f'e{k}' for k in range(count))
            text = (f'def {name}(fn, axes, args, kwargs, size):\n{picks}'
                    '    outs = []\n'
                    '    for i in range(size):\n'
                    f'{examples}'
                    f'        outs.append(fn({call}))\n'
                    '    return rt.stack_examples(outs)\n')
        else:
            text = ('def pullback(pb, cotangent):\n'
                    '    if rt.is_zero(cotangent):        # a structural zero: no sweep\n'
                    '        return 0.0\n'
                    '    backward = rt.pullback_function(pb)\n'
                    '    return backward(rt.pullback_state(pb), cotangent)\n')
            name = 'pullback'
        filename = f'<codax definition of rt.{name}>'
        _DEFINITIONS[key] = define(text, filename, {'rt': runtime})[name]
    return _DEFINITIONS[key]


def _defined(fn, args, kwargs):
    """(function, args) with rt.vjp_call / rt.pullback replaced by their definitions."""
    if fn is api.vjp or fn is api.linearize:
        raise TypeError(f'codax.{fn.__name__} returns a function, so it cannot be used inside '
                        'a transformed function; use codax.grad, codax.jvp or jacfwd/jacrev')
    if isinstance(fn, Closure):              # runtime/closures.py: the closure comes last
        if kwargs:
            raise TypeError('codax: pass arguments of a closure made in transformed code '
                            'by position')
        return _definition('closure_call', len(fn.captured), given=len(args)), \
            tuple(args) + (fn,)
    if fn is runtime.call_closure:
        return _defined(args[-1], tuple(args[:-1]), kwargs)
    if fn is runtime.vjp_call:
        inner = _bind_called(args[0], args[1:], kwargs)
        given = 'closure' if isinstance(args[0], Closure) else None
        return _definition('vjp_call', len(inner), given=given), (args[0],) + inner
    if fn is runtime.pullback:
        return _definition('pullback'), tuple(args)
    if fn is runtime.batch_loop:         # a per-example loop of vmapped code, differentiated
        bound = _bind(fn, args, kwargs)
        if bound[3]:
            raise SourceError('codax cannot differentiate a per-example loop (rt.batch_loop) '
                              'of a call with keyword arguments')
        return _definition('batch_loop', len(bound[2])), bound
    if fn is runtime.jvp_call:
        given = len(args[1])
        if args[0] is runtime.vjp_call and given:     # its definition binds fn's defaults
            primals, shift = (args[1][0],) + _bind(args[1][0], tuple(args[1][1:]), {}), 1
        else:
            primals, shift = _bind_defaults(args[0], tuple(args[1])), 0
        active = tuple(i for i, p in enumerate(primals[:given]) if api._has_inexact(p))
        return _definition('jvp_call', len(primals), active, given, shift), tuple(args)
    return fn, args


def sweeps_hook(fn, args):
    return _vjp_functions(fn, _bind(fn, args, {}))


def static_user_function(fn):
    """Whether vmap(grad) may differentiate calls of `fn` at compile time (a
    plain Python function with positional parameters, no custom rule, not a
    transformation or a primitive): see static_sweeps."""
    if type(fn) is not types.FunctionType or _custom(fn) or api.transformation_of(fn) \
            or runtime.TABLE.lookup(fn) is not None \
            or (fn.__module__ not in ('codax.lax', 'runtime.definitions')  # (NumPy codax
                # goes through: lax's plain loops, NumPy functions defined in NumPy)
                and (fn.__module__ or '').split('.')[0] in ('runtime', 'codax', 'transformer')):
        return False
    code = fn.__code__
    return not (code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
                or code.co_kwonlyargcount)


def static_sweeps(fn, active, numeric, args=()):
    """(forward, backward) of fn with respect to the parameters `active`
    (`numeric`: those that are not containers). The generated code depends on
    nothing else of the arguments (compile_reverse), so batched code chooses
    these at compile time, from what it knows of the arguments there, and calls
    the same ones at run time (rt.sweeps_for); `args` tell the array module."""
    xp = array_module(*runtime.tree.tree_leaves(list(args))) if args else numpy
    key = ('vjp for', tuple(active), tuple(numeric), id(fn.__code__), id(fn.__globals__),
           closure_key(fn), xp.__name__)
    entry = CACHE.get(key)
    if entry is None or entry.code is not fn.__code__ or not entry.current():
        with CACHE.compiling():
            label = f'vjp({fn.__name__}) wrt {",".join(map(str, active))} #{next(api._labels)}'
            generated = compile_reverse(fn, 'vjp', tuple(active), list(numeric), False, label)
            entry = api.Specialization(fn, generated, xp)
            CACHE.put(key, entry)
    return entry.build(fn)


def _sweeps_for_hook(fn, active, numeric, args):
    if isinstance(fn, Closure):             # its call's, the closure passed last (_defined)
        fn = closure_caller(len(fn), len(args) - 1)
    return static_sweeps(fn, active, numeric, args)


def closure_caller(captured, given):
    """The plain function whose derivatives are a closure's call's: it takes
    the `given` arguments, then the closure (of `captured` values)."""
    return _definition('closure_call', captured, given=given)


def _tangent_function(inner, primals, tangents, also=()):
    """The generated forward-mode function of `inner`, the tangents it takes
    (those that are not the zero, or whose own tangents in `also` are not) and
    the primals it takes: as given, then any defaults the call left out."""
    inner, primals = _defined(inner, primals, {})
    primals = _bind(inner, primals, {})
    tangents = tuple(tangents) + (ZERO,) * (len(primals) - len(tangents))
    others = also or (ZERO,) * len(primals)
    if _custom(inner) == 'jvp':             # the rule's generated jvp takes every tangent
        everything = tuple(range(len(primals)))
        return inner.jvp_function(), everything, tuple(
            runtime.dense(t, p) for p, t in zip(primals, tangents)), primals
    if _custom(inner) == 'checkpoint':
        inner = inner.fun
    inner = _plain(inner, primals)
    active = tuple(i for i, (p, t, o) in enumerate(zip(primals, tangents, others))
                   if api._has_inexact(p) and not (runtime.is_zero(t) and runtime.is_zero(o)))
    function, _ = api._jvp_entry(inner, primals, False, active)
    dense = tuple(runtime.dense(tangents[i], primals[i]) for i in active)
    return function, active, dense, primals


def _vjp_of_tangent_sweep(inner, primals, tangents, kwargs=None, kwtangents=None):
    """vjp of (primals, tangents) -> jvp_call(inner, primals, tangents)."""
    if kwargs or kwtangents:
        raise SourceError('codax cannot differentiate forward-mode code that passes keyword '
                          'arguments to a user function')
    function, active, dense, primals = _tangent_function(inner, tuple(primals), tuple(tangents))
    value, pb = vjp_hook(function, primals + dense, {})
    return value, (_tangent_sweep_pullback, (pb, len(primals), active))


def _tangent_sweep_pullback(state, cotangent):
    pb, count, active = state
    adjoints = pullback(pb, cotangent)
    of_tangents = [ZERO] * count
    for k, i in enumerate(active):
        of_tangents[i] = adjoints[count + k]
    return ZERO, tuple(adjoints[:count]), tuple(of_tangents)


# ---- forward mode ----

# Generated code calls the same functions with the same signatures over and
# over (a loop, a Jacobian's columns): remember what each call resolved to.
_RESOLVED = {}


def _remembered(kind, fn, args, pattern):
    key = (kind, id(fn), signature(args), pattern)
    hit = _RESOLVED.get(key)
    if hit is not None and hit[0] is fn and (hit[2] is None or hit[2].current()):
        return hit[1]
    return None


def _remember(kind, fn, args, pattern, value, entry):
    """Keep `value`; `entry`'s guards (globals baked into its code) are checked
    on every later use, so rebinding them still respecializes."""
    if len(_RESOLVED) > 4096:
        _RESOLVED.clear()
    _RESOLVED[(kind, id(fn), signature(args), pattern)] = (fn, value,
                                                           entry if entry.guards else None)
    return value


def jvp_hook(fn, primals, tangents, kwargs, kwtangents):
    if not kwargs and type(fn) is types.FunctionType and len(primals) == fn.__code__.co_argcount:
        pattern = tuple(runtime.is_zero(t) for t in tangents)
        function = _remembered('jvp', fn, primals, pattern)
        if function is not None:
            return function(*primals, *[t for t, zero in zip(tangents, pattern) if not zero])
    return _jvp_hook(fn, primals, tangents, kwargs, kwtangents)


def _jvp_hook(fn, primals, tangents, kwargs, kwtangents):
    if fn is api.jvp:
        fn, primals = _as_jvp_call(fn, primals, kwargs)
    if isinstance(fn, Closure) or fn is runtime.call_closure:
        count = len(primals)
        fn, primals = _defined(fn, primals, kwargs)
        tangents = tuple(tangents) + (ZERO,) * (len(primals) - count)
    if fn is runtime.vjp_call or fn is runtime.pullback or fn is runtime.batch_loop:
        # forward over reverse (or over a per-example loop): through the definition
        if fn is runtime.pullback and runtime.is_zero(primals[1]) and runtime.is_zero(tangents[1]):
            return ZERO, ZERO                 # a structurally zero cotangent
        count = len(primals)
        fn, primals = _defined(fn, primals, kwargs)
        tangents = tuple(tangents) + (ZERO,) * (len(primals) - count)
        kwargs = kwtangents = {}
    if fn is runtime.jvp_call:                # forward over forward: a tangent sweep
        inner, inner_primals, inner_tangents = primals[:3]
        count = len(inner_primals)
        d_primals = tuple(item(tangents[1], i) for i in range(count))
        d_tangents = tuple(item(tangents[2], i) for i in range(count))
        function, active, dense, full = _tangent_function(inner, tuple(inner_primals),
                                                          tuple(inner_tangents), d_tangents)
        d_primals += (ZERO,) * (len(full) - count)          # (defaults the call left out)
        return jvp_hook(function, full + dense,
                        d_primals + tuple(item(d_tangents, i) for i in active), {}, {})
    if kwargs or len(primals) < getattr(getattr(fn, '__code__', None), 'co_argcount', 0):
        names = list(inspect.signature(getattr(fn, 'fun', fn)).parameters)
        given = dict(zip(names, tangents), **kwtangents)
        primals = _bind(fn, primals, kwargs)
        tangents = tuple(given.get(name, ZERO) for name in names[:len(primals)])
    if _custom(fn):
        return _custom_jvp(fn, tuple(primals), tuple(tangents))
    original = fn
    fn = _plain(fn, primals)
    if len(primals) < fn.__code__.co_argcount:
        # (a vmapped or jitted function called without its defaults: the
        # generated code it stands for takes them all)
        count, primals = len(primals), _bind(fn, primals, {})
        tangents = tuple(tangents) + (ZERO,) * (len(primals) - count)
    active = tuple(i for i, (p, t) in enumerate(zip(primals, tangents))
                   if not runtime.is_zero(t) and api._has_inexact(p))
    try:
        entry = api.specialize(fn, 'jvp', active, False, primals)
    except SourceError as exc:
        raise _rule_helper_error(fn, exc) from None
    (function,) = entry.build(fn)
    pattern = tuple(runtime.is_zero(t) for t in tangents)
    if fn is original and not kwargs and active == tuple(i for i, z in enumerate(pattern) if not z):
        _remember('jvp', fn, primals, pattern, function, entry)
    return function(*primals, *[tangents[i] for i in active])


def tangent_hook(fn, primals, argnums):
    """The generated jvp function of `fn` with tangents for `argnums` (an int
    or a tuple): what jacfwd vmaps over a basis."""
    active = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if isinstance(fn, Closure):
        # callers pass (*primals, *tangents): the closure of its lifted
        # function's tangent function keeps that convention (tangents of the
        # captured values go by rt.call_closure instead)
        k = len(fn)
        return runtime.closure(tangent_hook(fn.function, tuple(fn) + tuple(primals),
                                            tuple(i + k for i in active)), *fn)
    fn, primals = _defined(fn, tuple(primals), {})
    kind = _custom(fn)
    if kind == 'jvp':                       # the rule, which takes every tangent
        return _custom_tangent_function(fn, len(primals), active)
    if kind == 'vjp':
        return _custom_jvp(fn, primals, primals)            # raises the TypeError
    if kind == 'checkpoint':
        fn = fn.fun
    fn = _plain(fn, primals)
    try:
        function, _ = api._jvp_entry(fn, primals, False, active)
    except SourceError as exc:
        raise _rule_helper_error(fn, exc) from None
    return function


_CUSTOM_TANGENTS = {}


def _custom_tangent_function(fn, count, active):
    """jvp(*primals, *tangents of `active`) of a custom_jvp function: its
    rule's generated jvp, the other tangents zero (generated Python, so that
    vmap batches it like any code)."""
    rule = fn.jvp_function()
    if active == tuple(range(count)):
        return rule
    key = (id(fn), count, active)
    hit = _CUSTOM_TANGENTS.get(key)
    if hit is None or hit[0] is not rule:
        name = f'tangent_{fn._name}_' + '_'.join(map(str, active))
        params = [f'p{i}' for i in range(count)] + [f't{i}' for i in active]
        tangents = [f't{i}' if i in active else f'rt.dense(0.0, p{i})' for i in range(count)]
        text = (f'def {name}({", ".join(params)}):\n'
                f'    return rule({", ".join([f"p{i}" for i in range(count)] + tangents)})\n')
        filename = f'<codax tangent function of {fn.__name__} for {active}>'
        namespace = define(text, filename, {'rt': runtime, 'rule': rule})
        if len(_CUSTOM_TANGENTS) > 1024:
            _CUSTOM_TANGENTS.clear()
        hit = _CUSTOM_TANGENTS[key] = (rule, namespace[name])
    return hit[1]


runtime.install_vjp_hook(vjp_hook)
runtime.install_tangent_hook(tangent_hook)
runtime.install_sweeps_hook(sweeps_hook)
runtime.install_sweeps_for_hook(_sweeps_for_hook)
runtime.install_jvp_hook(jvp_hook)
