"""Closures made inside transformed code.

codax lifts a lambda or nested `def` out of the function it is written in
(transformer/closures.py): the lifted function takes the variables it captured
as leading parameters, and the expression that made the closure becomes
`rt.closure(lifted, *captured)`. The captured values are then ordinary data
that derivatives and batching flow through: a closure is a tuple of its
captured values (its function is static, held by its type), and its tangent
or adjoint is the tuple of theirs.

Transformations see a call `c(*args)` of a closure as the call
`closure_call(*args, c)` of a plain function (codax/calls.py defines it):
so the adjoint a pullback returns for the closure comes last, after those
of the arguments.
"""
import itertools

from .sources import define


class Closure(tuple):
    """A closure: the tuple of its captured values, callable. Each lifted
    function has its own subclass (`closure_type`) holding it, so code that
    rebuilds a tuple as `type(t)(items)` (tree maps, moving batch axes,
    per-example slices) rebuilds a working closure."""
    __slots__ = ()
    function = None

    def __call__(self, *args, **kwargs):
        return self.function(*self, *args, **kwargs)

    @property
    def captured(self):
        return tuple(self)

    def __repr__(self):
        return f'<codax closure {self.function.__name__} capturing {len(self)} values>'


def closure_type(function):
    """The Closure subclass of one lifted function (made once, kept on it)."""
    kind = function.__dict__.get('__codax_closure__')
    if kind is None:
        kind = type(f'Closure_{function.__name__}', (Closure,),
                    {'__slots__': (), 'function': staticmethod(function)})
        function.__codax_closure__ = kind
    return kind


def closure(function, *captured):
    """The closure a lambda or nested def made: `function` with `captured` bound."""
    return closure_type(function)(captured)


def closure_function(c):
    """The lifted function of a closure (static: never differentiated)."""
    return c.function


def captured(c, k):
    """The k-th value a closure captured."""
    return c[k]


def call_closure(*args):
    """`args[-1](*args[:-1])`: forward-mode code calls a closure whose
    captured values have tangents this way, the closure as the last argument."""
    return args[-1](*args[:-1])


def transformation(fun, transform, args, kwargs):
    """transform(fun, *args, **kwargs): codax.grad, vmap, jit, ... applied in
    transformed code. Of a closure it is a closure holding the same captured
    values (codax/api.py, transform_closure), so derivatives and batching
    pass through it as through the identity."""
    return transform(fun, *args, **kwargs)


def captured_cotangent(ct, c, k):
    """The adjoint of closure `c` when only its k-th captured value has
    adjoint `ct`: a tuple with zeros elsewhere. Always a tuple, even of the
    zero adjoint, so that its structure is the one the batch pass assumes
    (transformer/batch_rules/calls.py) and its tangent's."""
    return tuple(ct if i == k else 0.0 for i in range(len(c)))


_keyword_callers = {}
_caller_labels = itertools.count()


def with_keywords(fun, count, names):
    """`fun` as a function of positional arguments only: its first `count`
    are passed on by position, the rest as the keywords `names`. normalize
    writes a call `h(x, scale=s)` of a function held in a variable as
    `with_keywords(h, 1, ('scale',))(x, s)` (through `transformation`), so
    the call's keywords are seen where h is known: in this function's source,
    which calls h by name. Of a closure it is a closure of the same captured
    values, as every transformation of one is."""
    if isinstance(fun, Closure):
        return closure(with_keywords(fun.function, count + len(fun), names), *fun)
    key = (id(fun), count, names)
    hit = _keyword_callers.get(key)
    if hit is None or hit[0] is not fun:
        if len(_keyword_callers) > 4096:
            _keyword_callers.clear()
        hit = _keyword_callers[key] = (fun, _keyword_caller(fun, count, names))
    return hit[1]


def _keyword_caller(fun, count, names):
    """`def h_with_keywords(a0, .., scale): return fun(a0, .., scale=scale)`,
    with readable source (runtime/sources.py) that transformations read."""
    positional = [f'a{i}' for i in range(count)]
    while set(positional) & set(names):                 # a keyword named a0
        positional = ['_' + p for p in positional]
    callee = 'fun'
    while callee in names or callee in positional:
        callee += '_'
    name = getattr(fun, '__name__', 'function')
    name = f'{name}_with_keywords' if name.isidentifier() else 'function_with_keywords'
    text = (f'def {name}({", ".join(positional + list(names))}):\n'
            f'    return {callee}({", ".join(positional + [f"{k}={k}" for k in names])})\n')
    filename = f'<codax {name} #{next(_caller_labels)}>'
    return define(text, filename, {callee: fun})[name]

