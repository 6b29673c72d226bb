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


class custom_jvp(_Wrapper):
    """A function whose forward-mode derivative is given by a rule."""
    kind = 'jvp'

    def __init__(self, fun):
        super().__init__(fun)
        self.jvp_rule = None

    def defjvp(self, rule):
        """rule(primals, tangents) -> (primal_out, tangent_out), linear in tangents."""
        self.jvp_rule = rule
        return rule


class custom_vjp(_Wrapper):
    """A function whose reverse-mode derivative is given by forward and backward rules."""
    kind = 'vjp'

    def __init__(self, fun):
        super().__init__(fun)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        """fwd(*args) -> (out, residuals); bwd(residuals, cotangent) -> one adjoint per arg."""
        self.fwd, self.bwd = fwd, bwd


class _Checkpoint(_Wrapper):
    kind = 'checkpoint'


def checkpoint(fun):
    """`fun`, whose intermediates reverse mode recomputes instead of storing."""
    return _Checkpoint(fun)


remat = checkpoint
