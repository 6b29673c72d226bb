"""Custom derivative rules and rematerialization, as in JAX.

    @codax.custom_jvp                      @codax.custom_vjp
    def f(x): ...                          def g(x): ...
    @f.defjvp                              def g_fwd(x): return g(x), residuals
    def f_jvp(primals, tangents):          def g_bwd(residuals, ct): return (adjoint_x,)
        return f(x), tangent_out           g.defvjp(g_fwd, g_bwd)

    step = codax.checkpoint(step)          # recompute step's intermediates in reverse

Called directly they run the wrapped function. Inside a transformed function
the transformer treats them as calls to user functions, and the call hooks
(codax/calls.py) apply their rules: a custom_jvp rule is used by forward mode
as is and by reverse mode through its transpose; a custom_vjp rule by reverse
mode; a checkpointed function keeps only its arguments for the reverse sweep.
"""
import functools
import inspect
import itertools

import numpy

import runtime
from runtime.sources import define

from .api import bound_function, shifted_argnums, transform_closure

_counter = itertools.count()


def _generate(text, name, namespace):
    """Functions defined by `text`, with readable source (registered in
    linecache), so that every transformation can go through them again."""
    filename = f'<codax {name} #{next(_counter)}>'
    return define(text, filename, dict(namespace, rt=runtime))


def _where(fn):
    """'name (file:line)' of a user's function, for error messages."""
    code = getattr(fn, '__code__', None)
    name = getattr(fn, '__qualname__', None) or getattr(fn, '__name__', None) or repr(fn)
    return f'{name} ({code.co_filename}:{code.co_firstlineno})' if code is not None else name


def _argnums(argnums, fun, option):
    """`argnums` (an int or a sequence of ints) as sorted non-negative
    positions of fun's positional parameters; a TypeError naming fun if not."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    params = [p for p in inspect.signature(fun).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for i in nums:
        if isinstance(i, bool) or not isinstance(i, int) or not -len(params) <= i < len(params):
            raise TypeError(f'{option}={argnums!r} for {_where(fun)}, which has '
                            f'{len(params)} positional parameters: each must be an int '
                            f'in range')
    return tuple(sorted({i % len(params) for i in nums}))


class _Wrapper:
    kind = None

    def __init__(self, fun, nondiff_argnums=(), option='nondiff_argnums'):
        if not callable(fun):
            raise TypeError(f'codax.{type(self).__name__.strip("_").lower()} expects a '
                            f'callable, got {fun!r}')
        self.fun = fun
        functools.update_wrapper(self, fun, updated=())
        del self.__wrapped__              # inspect must not read fun's source for it
        self.__signature__ = inspect.signature(fun)     # (partial(custom_f, ...) reads it)
        self.nondiff_argnums = _argnums(nondiff_argnums, fun, option)

    @property
    def __codax_custom__(self):
        return self.kind

    def __call__(self, *args, **kwargs):
        return self.fun(*args, **kwargs)

    def _params(self):
        return list(inspect.signature(self.fun).parameters)

    def _split(self):
        """(nondifferentiable parameters, differentiable ones), by name."""
        params = self._params()
        fixed = [params[i] for i in self.nondiff_argnums]
        return fixed, [p for p in params if p not in fixed]

    def sweeps(self):
        """(forward, backward): generated functions with the convention of
        codax's own vjp code: forward(*args) -> (out, tape) and
        backward(tape, cotangent) -> one adjoint per argument (the zero 0.0
        for a nondifferentiable one)."""
        if getattr(self, '_sweeps', None) is None:
            self._sweeps = self._make_sweeps(', '.join(self._params()), self._name)
        return self._sweeps

    @property
    def _name(self):
        """The function's name as part of a generated one's ('lambda' for '<lambda>')."""
        return self.__name__.strip('<>')


class custom_jvp(_Wrapper):
    """A function whose forward-mode derivative is given by a rule. As in JAX,
    with nondiff_argnums those arguments are passed to the rule first, and
    its primals and tangents hold the others only."""
    kind = 'jvp'

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.jvp_rule = self.user_rule = None

    def defjvp(self, rule):
        """rule(*nondiff_args, primals, tangents) -> (primal_out, tangent_out),
        linear in tangents."""
        if not callable(rule):
            raise TypeError(f'{_where(self.fun)}: defjvp expects a callable rule, got {rule!r}')
        self.user_rule = rule
        self.jvp_rule = rule if not self.nondiff_argnums else self._adapted(rule)
        self._sweeps = self._jvp = None
        return rule

    def defjvps(self, *jvps):
        """One rule per argument, jvp_i(tangent_i, primal_out, *primals) -> its
        part of the output tangent (None: the argument contributes nothing)."""
        if self.nondiff_argnums:
            raise TypeError(f"{_where(self.fun)}: can't use defjvps with nondiff_argnums "
                            '(as in JAX); use defjvp')
        params = self._params()
        if len(jvps) != len(params):
            raise TypeError(f'{_where(self.fun)}: defjvps got {len(jvps)} rules for '
                            f'{len(params)} arguments ({", ".join(params)}); pass one per '
                            'argument, None for an argument without one')
        args, tans = ', '.join(params), ', '.join('d' + p for p in params)
        terms = [f'jvp{i}(d{p}, ans, {args})' for i, (p, j) in enumerate(zip(params, jvps)) if j]
        total = ''.join(f'    tangent = rt.add(tangent, {t})\n' for t in terms[1:])
        first = terms[0] if terms else 'rt.dense(0.0, ans)'
        text = (f'def jvps_{self._name}(primals, tangents):\n'
                f'    ({args},) = primals\n'
                f'    ({tans},) = tangents\n'
                f'    ans = fun({args})\n'
                f'    tangent = {first}\n{total}'
                f'    return ans, tangent\n')
        names = {f'jvp{i}': j for i, j in enumerate(jvps) if j}
        self.defjvp(_generate(text, f'custom_jvp({self.__name__}).defjvps',
                              dict(names, fun=self))[f'jvps_{self._name}'])

    def _adapted(self, rule):
        """rule(primals, tangents) of every argument, calling the user's rule
        with JAX's convention for nondiff_argnums."""
        fixed, diff = self._split()
        params = self._params()
        one = ''.join(f'{p}, ' for p in diff)
        text = (f'def rule_{self._name}(primals, tangents):\n'
                f'    ({", ".join(params)},) = primals\n'
                f'    ({", ".join("d" + p for p in params)},) = tangents\n'
                f'    return user_rule({"".join(p + ", " for p in fixed)}({one}), '
                f'({"".join(f"d{p}, " for p in diff)}))\n')
        return _generate(text, f'custom_jvp({self.__name__}) rule',
                         {'user_rule': rule})[f'rule_{self._name}']

    def _check(self):
        if self.jvp_rule is None:
            raise TypeError(f'{_where(self.fun)}: custom_jvp needs defjvp(rule) before use')

    def jvp_function(self):
        """Generated jvp(*args, *tangents) -> (out, tangent_out) calling the rule."""
        self._check()
        if getattr(self, '_jvp', None) is None:
            params = self._params()
            args, tans = ', '.join(params), ', '.join('d' + p for p in params)
            text = (f'def jvp_{self._name}({args}, {tans}):\n'
                    f'    return rule(({args},), ({tans},))\n')
            self._jvp = _generate(text, f'custom_jvp({self.__name__})',
                                  {'rule': self.jvp_rule})[f'jvp_{self._name}']
        return self._jvp

    def _make_sweeps(self, args, name):
        """Reverse mode uses the rule through its transpose: the rule is linear
        in its tangents, so the vjp of its tangent output with respect to the
        tangents alone, the primals held fixed (JAX's linearization), is the
        transpose. Only the tangents are differentiated there, so a rule may
        use the function's own output (`ans = f(x); return ans, ans * t`)
        without differentiating itself without end; code that differentiates
        the backward sweep again goes through the generated sweeps, and so
        through the rule's primal part too. A nondifferentiable argument's
        tangent is the zero 0.0, and so is its adjoint."""
        self._check()
        params = self._params()
        fixed = self._split()[0]
        tans = ', '.join('d' + p for p in params)
        zeros = ''.join(f'    d{p} = rt.dense(0.0, {p})\n' if p not in fixed else
                        f'    d{p} = 0.0\n' for p in params)
        picks = ', '.join('0.0' if p in fixed else f'rt.item(adjoints, {i})'
                          for i, p in enumerate(params))
        text = (f'def fwd_{name}({args}):\n'
                f'{zeros}'
                f'    out, tangent = rule(({args},), ({tans},))\n'
                f'    return out, ({args},)\n\n\n'
                f'def bwd_{name}(tape, cotangent):\n'
                f'    ({args},) = tape\n'
                f'{zeros}'
                f'    forward, backward = rt.sweeps_for(rule, (1,), (), ({args},), ({tans},))\n'
                f'    out, state = forward(({args},), ({tans},))\n'
                f'    adjoints = rt.item(backward(state, (0.0, cotangent)), 1)\n'
                f'    return ({picks},)\n')
        space = _generate(text, f'custom_jvp({name})', {'rule': self.jvp_rule})
        return space[f'fwd_{name}'], space[f'bwd_{name}']


class custom_vjp(_Wrapper):
    """A function whose reverse-mode derivative is given by forward and
    backward rules. As in JAX, fwd takes every argument, and with
    nondiff_argnums bwd takes those arguments first and returns cotangents
    for the others only."""
    kind = 'vjp'

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        """fwd(*args) -> (out, residuals); bwd(*nondiff_args, residuals,
        cotangent) -> a tuple with one cotangent per differentiable argument
        (None for a zero one)."""
        for rule, which in ((fwd, 'fwd'), (bwd, 'bwd')):
            if not callable(rule):
                raise TypeError(f'{_where(self.fun)}: defvjp expects callable fwd and bwd '
                                f'rules, got {which}={rule!r}')
        self.fwd, self.bwd = fwd, bwd
        self._sweeps = None

    def _make_sweeps(self, args, name):
        """The user's fwd, its output checked to be a pair; the user's bwd, its
        output checked to be a tuple (or list) of one cotangent per
        differentiable argument, None meaning zero (JAX's rules). The checks
        are generated Python too, so the sweeps can be differentiated again."""
        if self.fwd is None:
            raise TypeError(f'{_where(self.fun)}: custom_vjp needs defvjp(fwd, bwd) before use')
        fixed, diff = self._split()
        count = len(diff)
        fwd_message = (f'the custom_vjp fwd rule {_where(self.fwd)} of {self.__name__} must '
                       'return a pair (output, residuals): a tuple or list of length two')
        bwd_message = (f'the custom_vjp bwd rule {_where(self.bwd)} of {self.__name__} must '
                       f'return a tuple (or list) with one cotangent per '
                       f'{"differentiable " if fixed else ""}argument of {self.__name__} '
                       f'({count}: {", ".join(diff)}), None for a zero one; got {{}}')
        keep = ''.join(f'{p}, ' for p in fixed)
        shape_message = ('Custom VJP bwd rule must produce an output with the same '
                         'shape/dtypes as the args tuple of the primal function: the bwd rule '
                         f'{_where(self.bwd)} of {self.__name__} gives argument {{}} a '
                         'cotangent of {}, but the argument has {}')
        # each cotangent is checked against the layout of its argument, which
        # the forward sweep keeps (JAX's check, not NumPy's broadcast error)
        unpack = ''.join(f'    a{k} = adjoints[{k}]\n    if a{k} is None:\n        a{k} = 0.0\n'
                         f'    elif cotangent_differs(a{k}, layouts[{k}]):\n'
                         f'        raise ValueError(shape_message.format({p!r}, '
                         f'described(a{k}), described_layout(layouts[{k}])))\n'
                         for k, p in enumerate(diff))
        picks = iter(f'a{k}' for k in range(count))
        adjoints = ', '.join('0.0' if p in fixed else next(picks) for p in self._params())
        layouts = ''.join(f'layout({p}), ' for p in diff)
        text = (f'def fwd_{name}({args}):\n'
                f'    pair = user_fwd({args})\n'
                f'    if not isinstance(pair, (tuple, list)) or len(pair) != 2:\n'
                f'        raise TypeError(fwd_message)\n'
                f'    out, residuals = pair\n'
                f'    return out, ({keep}residuals, ({layouts}), out)\n\n\n'
                f'def bwd_{name}(tape, cotangent):\n'
                f'    ({keep}residuals, layouts, out) = tape\n'
                f'    cotangent = rt.finalize(cotangent, out)     # (as JAX: the output\'s shape)\n'
                f'    adjoints = user_bwd({keep}residuals, cotangent)\n'
                f'    if not isinstance(adjoints, (tuple, list)):\n'
                f'        raise TypeError(bwd_message.format(type(adjoints).__name__))\n'
                f'    if len(adjoints) != {count}:\n'
                f'        raise TypeError(bwd_message.format('
                f'f"{{type(adjoints).__name__}} of length {{len(adjoints)}}"))\n'
                f'{unpack}'
                f'    return ({adjoints},)\n')
        space = _generate(text, f'custom_vjp({name})', {
            'user_fwd': self.fwd, 'user_bwd': self.bwd, 'layout': layout,
            'cotangent_differs': cotangent_differs, 'described': described,
            'described_layout': described_layout, 'fwd_message': fwd_message,
            'bwd_message': bwd_message, 'shape_message': shape_message})
        return space[f'fwd_{name}'], space[f'bwd_{name}']


# The check of a custom_vjp rule's cotangents. These functions are Python that
# codax reads when the sweeps are transformed again: shapes and types are
# per example under vmap, and nothing here carries a derivative.

def layout(x):
    """What a cotangent for argument x must look like: x's shape where x is
    an array or a number; None for a pytree (its cotangent is not checked)."""
    if isinstance(x, (bool, int, float, complex)) or hasattr(x, 'shape') \
            and not isinstance(x, (tuple, list, dict)):
        return numpy.shape(x)
    return None


def cotangent_differs(cotangent, shape):
    """Whether a cotangent does not fit an argument of layout `shape`."""
    if shape is None:
        return False
    if isinstance(cotangent, (tuple, list, dict)):
        return True
    return numpy.shape(cotangent) != shape


def described(cotangent):
    if isinstance(cotangent, (tuple, list, dict)):
        return f'a {type(cotangent).__name__} (a pytree)'
    return f'shape {numpy.shape(cotangent)}'


def described_layout(shape):
    return f'shape {shape}'


class _Checkpoint(_Wrapper):
    kind = 'checkpoint'

    def __init__(self, fun, static_argnums=()):
        super().__init__(fun, static_argnums, 'static_argnums')

    def _make_sweeps(self, args, name):
        """Keep only the arguments; the backward sweep reruns the forward one.
        Static arguments get no adjoint."""
        fixed = self._split()[0]
        picks = ', '.join('0.0' if p in fixed else f'rt.item(adjoints, {i})'
                          for i, p in enumerate(self._params()))
        text = (f'def fwd_{name}({args}):\n'
                f'    return fun({args}), ({args},)\n\n\n'
                f'def bwd_{name}(tape, cotangent):\n'
                f'    ({args},) = tape\n'
                f'    out, pb = rt.vjp_call(fun, {args})\n'
                + ('    return rt.pullback(pb, cotangent)\n' if not fixed else
                   f'    adjoints = rt.pullback(pb, cotangent)\n'
                   f'    return ({picks},)\n'))
        space = _generate(text, f'checkpoint({name})', {'fun': self.fun})
        return space[f'fwd_{name}'], space[f'bwd_{name}']


def checkpoint(fun, *, prevent_cse=True, policy=None, static_argnums=()):
    """`fun`, whose intermediates reverse mode recomputes instead of storing.
    `static_argnums` (JAX's option) name arguments that are not
    differentiated (Python values: flags, sizes, functions). codax never
    merges the recomputation with the forward pass, so `prevent_cse` changes
    nothing; `policy` (what to save) is not supported.
    Of a lambda or nested def made in transformed code (a closure), it is the
    closure of its lifted function checkpointed, holding the same captured
    values: derivatives flow into those as into any closure's."""
    if policy is not None:
        raise TypeError(f'codax.checkpoint does not support policy= (got {policy!r}): it '
                        'saves only the arguments of the checkpointed function')
    return transform_closure(
        fun, lambda lifted, k: _Checkpoint(lifted, shifted_argnums(static_argnums, k)),
        lambda: _Checkpoint(bound_function(fun) or fun, static_argnums))


remat = checkpoint
