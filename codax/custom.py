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
import linecache

import runtime

from .api import transform_closure

_counter = itertools.count()


def _generate(text, name, namespace):
    """Functions defined by `text`, with readable source (registered in
    linecache), so that every transformation can go through them again."""
    filename = f'<codax {name} #{next(_counter)}>'
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = dict(namespace, rt=runtime)
    exec(compile(text, filename, 'exec'), namespace)
    return namespace


class _Wrapper:
    kind = None

    def __init__(self, fun):
        self.fun = fun
        functools.update_wrapper(self, fun, updated=())
        del self.__wrapped__              # inspect must not read fun's source for it

    @property
    def __codax_custom__(self):
        return self.kind

    def __call__(self, *args, **kwargs):
        return self.fun(*args, **kwargs)

    def _params(self):
        return list(inspect.signature(self.fun).parameters)

    def sweeps(self):
        """(forward, backward): generated functions with the convention of
        codax's own vjp code: forward(*args) -> (out, tape) and
        backward(tape, cotangent) -> one adjoint per argument."""
        if getattr(self, '_sweeps', None) is None:
            self._sweeps = self._make_sweeps(', '.join(self._params()),
                                             self.__name__.strip('<>'))
        return self._sweeps


class custom_jvp(_Wrapper):
    """A function whose forward-mode derivative is given by a rule."""
    kind = 'jvp'

    def __init__(self, fun):
        super().__init__(fun)
        self.jvp_rule = None

    def defjvp(self, rule):
        """rule(primals, tangents) -> (primal_out, tangent_out), linear in tangents."""
        self.jvp_rule = rule
        self._sweeps = self._jvp = None
        return rule

    def _check(self):
        if self.jvp_rule is None:
            raise TypeError(f'{self.__name__}: custom_jvp needs defjvp(rule) before use')

    def jvp_function(self):
        """Generated jvp(*args, *tangents) -> (out, tangent_out) calling the rule."""
        self._check()
        if getattr(self, '_jvp', None) is None:
            params = self._params()
            args, tans = ', '.join(params), ', '.join('d' + p for p in params)
            text = (f'def jvp_{self.__name__}({args}, {tans}):\n'
                    f'    return rule(({args},), ({tans},))\n')
            self._jvp = _generate(text, f'custom_jvp({self.__name__})',
                                  {'rule': self.jvp_rule})[f'jvp_{self.__name__}']
        return self._jvp

    def _make_sweeps(self, args, name):
        """Reverse mode uses the rule through its transpose: the rule is linear
        in its tangents, so the vjp of its tangent output with respect to the
        tangents alone, the primals held fixed (JAX's linearization), is the
        transpose. Only the tangents are differentiated there, so a rule may
        use the function's own output (`ans = f(x); return ans, ans * t`)
        without differentiating itself without end; code that differentiates
        the backward sweep again goes through the generated sweeps, and so
        through the rule's primal part too."""
        self._check()
        params = self._params()
        tans = ', '.join('d' + p for p in params)
        zeros = ''.join(f'    d{p} = rt.dense(0.0, {p})\n' for p in params)
        picks = ', '.join(f'rt.item(adjoints, {i})' for i in range(len(params)))
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
    """A function whose reverse-mode derivative is given by forward and backward rules."""
    kind = 'vjp'

    def __init__(self, fun):
        super().__init__(fun)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        """fwd(*args) -> (out, residuals); bwd(residuals, cotangent) -> one adjoint per arg."""
        self.fwd, self.bwd = fwd, bwd
        self._sweeps = None

    def _make_sweeps(self, args, name):
        if self.fwd is None:
            raise TypeError(f'{self.__name__}: custom_vjp needs defvjp(fwd, bwd) before use')
        text = (f'def fwd_{name}({args}):\n'
                f'    return user_fwd({args})\n\n\n'
                f'def bwd_{name}(residuals, cotangent):\n'
                f'    return user_bwd(residuals, cotangent)\n')
        space = _generate(text, f'custom_vjp({name})', {'user_fwd': self.fwd, 'user_bwd': self.bwd})
        return space[f'fwd_{name}'], space[f'bwd_{name}']


class _Checkpoint(_Wrapper):
    kind = 'checkpoint'

    def _make_sweeps(self, args, name):
        """Keep only the arguments; the backward sweep reruns the forward one."""
        text = (f'def fwd_{name}({args}):\n'
                f'    return fun({args}), ({args},)\n\n\n'
                f'def bwd_{name}(tape, cotangent):\n'
                f'    ({args},) = tape\n'
                f'    out, pb = rt.vjp_call(fun, {args})\n'
                f'    return rt.pullback(pb, cotangent)\n')
        space = _generate(text, f'checkpoint({name})', {'fun': self.fun})
        return space[f'fwd_{name}'], space[f'bwd_{name}']


def checkpoint(fun):
    """`fun`, whose intermediates reverse mode recomputes instead of storing.
    Of a lambda or nested def made in transformed code (a closure), it is the
    closure of its lifted function checkpointed, holding the same captured
    values: derivatives flow into those as into any closure's."""
    return transform_closure(fun, lambda lifted, k: _Checkpoint(lifted),
                             lambda: _Checkpoint(fun))


remat = checkpoint
