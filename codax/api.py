"""grad, value_and_grad, vjp: thin wrappers that specialize, cache and call."""
import functools
import inspect
import itertools
import types

import numpy

import runtime
from runtime.backend import array_module
from runtime.sources import define
from runtime.tree import tree_leaves
from transformer.ir import packs_keywords
from transformer.parse import flat_view
from transformer.pipeline import compile_forward, compile_reverse

from .cache import CACHE, closure_key, closure_values, signature

_labels = itertools.count()
_ndarray = numpy.ndarray


class Specialization:
    """Generated code for one (function, transformation, signature)."""
    __slots__ = ('code', 'generated', 'xp', 'factory', 'functions', 'guards', 'namespace')

    def __init__(self, fn, generated, xp):
        self.code = fn.__code__
        self.guards = generated.guards
        self.namespace = fn.__globals__
        self.generated = generated
        self.xp = xp
        self.factory = types.FunctionType(generated.factory_code, fn.__globals__)
        # Without free variables the functions are built once; a closure's
        # are rebuilt per call around its current cell values (cheap).
        self.functions = None if generated.free_names else self.factory(xp, runtime)

    def current(self):
        """Whether every global the code was specialized for is still bound to it."""
        namespace = self.namespace
        return all(namespace.get(name) is obj for name, obj in self.guards)

    def build(self, fn):
        if self.functions is not None:
            return self.functions
        cells = dict(zip(fn.__code__.co_freevars, closure_values(fn)))
        return self.factory(self.xp, runtime, *[cells[name] for name in self.generated.free_names])


def _dtype_of(x):
    """x's NumPy dtype, or None (also for a dtype class such as np.float64 itself)."""
    dtype = getattr(x, 'dtype', None)
    return dtype if isinstance(dtype, numpy.dtype) else None


def _describe(args):
    def one(a):                      # dtype and rank: shapes are not part of the signature
        dt = getattr(a, 'dtype', None)
        if isinstance(dt, numpy.dtype):
            return f'{dt.kind}{dt.itemsize * 8}[{",".join(":" * len(getattr(a, "shape", ())))}]'
        return type(a).__name__
    return ', '.join(one(a) for a in args)


def _user_function(fn):
    """The user's function behind transformations and custom-rule wrappers."""
    fn = bound_function(fn) or fn
    for _ in range(64):        # (codax's own stand-ins may stand for themselves)
        inner = getattr(transformation_of(fn), 'fun', fn)
        if inner is fn:
            break
        fn = inner
    return getattr(fn, 'fun', fn) if getattr(fn, '__codax_custom__', None) else fn


def resolve(fn, args):
    """The plain Python function to transform: the generated code behind a
    transformed function (composition), or a wrapper of a primitive."""
    if getattr(fn, '__codax_jacobian__', False):
        raise TypeError('codax cannot transform this jacfwd/jacrev result again: with pytree '
                        'arguments or outputs, or argnums tuples, Jacobians are built by a '
                        'Python loop. Differentiate with respect to a single array argument '
                        '(argnums an int), or use hessian / jacfwd(grad(f))')
    fn = bound_function(fn) or fn
    while transformation_of(fn) is not None:
        fn = transformation_of(fn).function_for(args)
    return readable_function(fn)


def build(fn, mode, argnums, has_aux, args):
    """The generated functions of `fn` for this transformation and signature."""
    return specialize(fn, mode, argnums, has_aux, args).build(resolve(fn, args))


def specialize(fn, mode, argnums, has_aux, args, holomorphic=False):
    fn = resolve(fn, args)
    if not isinstance(fn, types.FunctionType):
        return _not_a_function(fn)
    key = (mode, argnums, has_aux, holomorphic, id(fn.__code__), id(fn.__globals__),
           closure_key(fn), signature(args))
    entry = CACHE.get(key)
    if entry is not None and entry.code is fn.__code__ and entry.current():
        return entry
    with CACHE.compiling():
        entry = CACHE.get(key)
        if entry is not None and entry.code is fn.__code__ and entry.current():
            return entry
        numeric = [i for i, a in enumerate(args) if not isinstance(a, (list, tuple, dict))
                   and runtime.tree._node_of(a)[1] is None]       # not a registered node
        label = f'{mode}({fn.__name__}) {_describe(args)} #{next(_labels)}'
        view = compiled_view(fn, args)
        if mode == 'jvp':
            generated = compile_forward(view, list(argnums), numeric, has_aux, label)
        else:
            generated = compile_reverse(view, mode, argnums, numeric, has_aux, label,
                                        holomorphic=holomorphic,
                                        complex_inputs=_has_complex(args))
        entry = Specialization(fn, generated, array_module(*tree_leaves(list(args))))
        CACHE.put(key, entry)
        return entry


_primitive_functions = {}


def primitive_function(obj, count=None):
    """A Python function with readable source that calls `obj`, a primitive or
    a custom rule, so that grad(np.sin) or grad(custom_f) work as in JAX.
    Its parameters are obj's required positional ones, or with `count` (a
    call passing that many arguments by position) the first `count`.
    None for anything else."""
    prim = runtime.TABLE.lookup(obj)
    custom = getattr(obj, '__codax_custom__', None)
    if prim is None and custom is None:
        return None
    key = (id(obj), count)
    if key not in _primitive_functions:
        signature = prim.signature if prim is not None else inspect.signature(obj.fun)
        positional = [p for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = sum(p.default is p.empty for p in positional)
        params = ', '.join(p.name for p in positional[:max(required, count or 0)])
        name = getattr(obj, '__name__', None) or prim.name
        name = name if name.isidentifier() else 'function'        # a lambda's '<lambda>'
        text = f'def {name}({params}):\n    return primitive({params})\n'
        filename = f'<codax primitive {name}>'
        namespace = define(text, filename, {'primitive': obj})
        _primitive_functions[key] = (obj, namespace[name])
    return _primitive_functions[key][1]


def readable_function(obj, count=None):
    """`obj` as a plain Python function codax can read: a primitive's or a
    custom rule's wrapper (primitive_function), a bound callable's
    (bound_function), else `obj` itself."""
    return primitive_function(obj, count) or bound_function(obj) or obj


def _unbound(obj):
    """(function, leading arguments, keyword arguments) behind a bound
    method, a classmethod, a staticmethod object, a callable object or a
    functools.partial (nested ones flattened, as Python would call them);
    None for anything else."""
    leading, keywords, found = (), {}, False
    while True:
        if isinstance(obj, functools.partial):
            leading, keywords = obj.args + leading, {**obj.keywords, **keywords}
            obj = obj.func
        elif isinstance(obj, types.MethodType):
            leading, obj = (obj.__self__,) + leading, obj.__func__
        elif isinstance(obj, staticmethod):
            obj = obj.__func__
        elif _callable_object(obj):
            leading, obj = (obj,) + leading, type(obj).__call__
        else:
            return (obj, leading, keywords) if found else None
        found = True


def _callable_object(obj):
    """An instance of a user's class with a Python __call__ (not codax's own
    callables: custom rules, closures of transformed code, transformations)."""
    return not isinstance(obj, (types.FunctionType, type, runtime.Closure)) \
        and isinstance(getattr(type(obj), '__call__', None), types.FunctionType) \
        and getattr(obj, '__codax_custom__', None) is None \
        and transformation_of(obj) is None and runtime.TABLE.lookup(obj) is None


_bound_functions = {}


def bound_function(obj):
    """For a bound method, callable object or functools.partial: a generated
    Python function with its visible signature that calls the function
    behind it with the bound values, so that every transformation treats
    `obj.method`, `obj` and `partial(f, a, k=b)` as it treats the equivalent
    plain function. The bound values and defaults are globals of its own
    (read at run time); a keyword bound by partial is a parameter with that
    default, so a call may still override it. One function per binding (the
    same objects bound give the same function, and so reuse its generated
    code). None for anything else."""
    if isinstance(obj, numpy.vectorize):      # (its __call__ takes *args: see definitions)
        return runtime.definitions.vectorized(obj)
    unbound = _unbound(obj)
    if unbound is None:
        return None
    function, leading, keywords = unbound
    values = (function,) + leading + tuple(keywords.values())
    key = (id(function), tuple(map(id, leading)), tuple((k, id(v)) for k, v in keywords.items()))
    hit = _bound_functions.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], values)):
        return hit[1]
    try:
        visible = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    if len(_bound_functions) > 4096:
        _bound_functions.clear()
    wrapper = _bound_wrapper(function, leading, list(visible.parameters.values()), obj)
    _bound_functions[key] = (values, wrapper)
    return wrapper


def _bound_wrapper(function, leading, params, obj):
    """`def name(params): return function(*leading, params...)` with the
    bound values and defaults in its own namespace; keyword-only parameters
    (a partial's keywords) become positional ones passed on by keyword."""
    unsupported = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                   or p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if unsupported:
        code = getattr(function, '__code__', None)
        where = f' ({code.co_filename}:{code.co_firstlineno})' if code else ''
        raise TypeError(f'codax transforms functions with positional parameters; '
                        f'{getattr(function, "__qualname__", function)}{where}, called as '
                        f'{obj!r}, has *args, **kwargs or keyword-only parameters without '
                        f'defaults ({", ".join(unsupported)})')
    name = getattr(function, '__name__', 'function')
    name = name if name.isidentifier() else 'function'
    taken = {p.name for p in params} | {name}

    def fresh(base):
        while base in taken:
            base += '_'
        taken.add(base)
        return base
    namespace = {fresh('function'): function}
    bound = [fresh(f'bound{i}') for i in range(len(leading))]
    namespace.update(zip(bound, leading))
    header = []
    for p in params:
        if p.default is p.empty:
            header.append(p.name)
        else:
            default = fresh(f'default_{p.name}')
            namespace[default] = p.default
            header.append(f'{p.name}={default}')
    call = ', '.join(bound + [f'{p.name}={p.name}' if p.kind == p.KEYWORD_ONLY else p.name
                              for p in params])
    text = (f'def {name}({", ".join(header)}):\n'
            f'    return {next(iter(namespace))}({call})\n')
    filename = f'<codax {name} bound to {len(leading)} values #{next(_labels)}>'
    return define(text, filename, namespace)[name]


def _not_a_function(fn):
    if getattr(fn, '__codax_jacobian__', False):
        raise TypeError('codax cannot transform the result of jacfwd/jacrev again yet; for '
                        'second derivatives use hessian, jacfwd(grad(f)) or grad(grad(f))')
    from transformer.parse import parse_function
    parse_function(fn)               # raises the explanatory error
    raise TypeError(f'codax can only transform Python functions, got {fn!r}')


def _normalize_argnums(argnums):
    if isinstance(argnums, int):
        return (argnums,), True
    return tuple(argnums), False


def _check_argnums(args, argnums, fname):
    for i in argnums:
        if i >= len(args) or i < -len(args):
            raise TypeError(f'differentiating with respect to argnums={i} requires at least '
                            f'{i + 1 if i >= 0 else -i} positional arguments to be passed by '
                            f'the caller, but got only {len(args)} positional arguments. '
                            f'({fname}: argnums={i} but the function was called with '
                            f'{len(args)} positional arguments)')


def _has_complex(value):
    return any(_kind_of(leaf) == 'c' for leaf in tree_leaves(value))


def _kind_of(leaf):
    dtype = _dtype_of(leaf)
    return dtype.kind if dtype is not None else numpy.asarray(leaf).dtype.kind \
        if isinstance(leaf, (bool, int, float, complex)) else None


def _leaf_dtype(leaf):
    return _dtype_of(leaf) or numpy.asarray(leaf).dtype


def _check_holomorphic(args, argnums, fname):
    """As JAX: holomorphic=True differentiates complex inputs only."""
    for i in argnums:
        for leaf in tree_leaves(args[i]):
            if _kind_of(leaf) not in (None, 'c'):
                raise TypeError(f'{fname} with holomorphic=True requires inputs with complex '
                                f'dtype, but got {_leaf_dtype(leaf)}. (Argument {i} requires '
                                f'complex inputs: pass e.g. x.astype(complex).)')


def _check_inexact(args, argnums, fname, kinds='fc'):
    """As JAX: the differentiated inputs are floating-point (`kinds` 'fc':
    real or complex, as grad and jacrev take them; 'f': real, as jacfwd)."""
    for i in argnums:
        for leaf in tree_leaves(args[i]):
            kind = _kind_of(leaf)
            if kind is None or kind in kinds:
                continue
            dtype = _leaf_dtype(leaf)
            if kinds == 'f':
                raise TypeError(
                    f'{fname} requires real-valued inputs (input dtype that is a sub-dtype of '
                    f'np.floating), but got {dtype}. For holomorphic differentiation, pass '
                    'holomorphic=True. For differentiation of non-holomorphic functions '
                    'involving complex inputs or integer inputs, use codax.jvp directly. '
                    f'(Argument {i}.)')
            raise TypeError(
                f'{fname} requires real- or complex-valued inputs (input dtype that is a '
                f'sub-dtype of np.inexact), but got {dtype}. If you want to use Boolean- or '
                f'integer-valued inputs, use vjp or set allow_int to True. (Argument {i} '
                'needs a floating-point dtype: pass e.g. x.astype(float), or leave it out '
                'of argnums.)')


# JAX's dtype of the derivative with respect to an integer or bool (allow_int,
# vjp of integer primals): zeros that carry only a shape.
float0 = numpy.dtype([('float0', numpy.void, 0)])


def float0_zeros(x):
    """The derivative with respect to integer input x: float0 zeros of its shape."""
    from runtime.tree import tree_map
    return tree_map(lambda leaf: numpy.zeros(numpy.shape(leaf), dtype=float0), x)


def _is_float0(leaf):
    return _dtype_of(leaf) == float0


def _bound(signature, fn, args, kwargs):
    """signature.bind(*args, **kwargs), its TypeError naming the function."""
    try:
        return signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f'{getattr(fn, "__name__", "the function")}(): {exc}') from None


def packed_arguments(fn, args, kwargs):
    """A call's arguments as fn's generated code takes them: every positional
    one (the items of *args too), defaults filled in, and where the user's
    function has **kwargs or keyword-only parameters, the dict of its keyword
    arguments as one more (BoundArguments.kwargs: parse reads keyword-only
    parameters from it). Arguments already in that form are returned as they
    are (_already_packed); too many is the TypeError naming the function."""
    user = _user_function(fn)
    code = getattr(user, '__code__', None)
    packs = packs_keywords(user)
    args = tuple(args)
    if code is None or not kwargs and _already_packed(code, args, packs):
        return args
    bound = _bound(inspect.signature(user), user, args, kwargs)
    bound.apply_defaults()
    return tuple(bound.args) + ((bound.kwargs,) if packs else ())


def _already_packed(code, args, packs):
    """Whether positional `args` are in packed_arguments' form: one more than
    the named parameters where the dict is there; with *args, at least the
    named ones (and then a dict, where there is one)."""
    if not code.co_flags & inspect.CO_VARARGS:
        return len(args) == code.co_argcount + packs
    return len(args) >= code.co_argcount + packs and (not packs or isinstance(args[-1], dict))


def call_packed(fn, args):
    """fn(*args) for arguments in packed_arguments' form: the trailing dict
    of keywords goes back in as keywords."""
    user = _user_function(fn)
    code = getattr(user, '__code__', None)
    if packs_keywords(user) and _already_packed(code, tuple(args), True):
        return fn(*args[:-1], **args[-1])
    return fn(*args)


def compiled_view(fn, args):
    """The function the pipeline compiles for `fn` called with `args` (in
    packed form): for one with *args, the view saying how many it passes."""
    return flat_view(fn, len(args) - bool(packs_keywords(fn)))


class Transformed:
    """What grad(f) or value_and_grad(f) builds: the transformation of one
    function, with its per-signature cache. Users get `as_function()`."""

    def __init__(self, fun, mode, argnums, has_aux, holomorphic=False, allow_int=False):
        if not callable(fun):
            raise TypeError(f'{mode} expects a callable, got {fun!r}')
        self.allow_int = allow_int
        self._without_ints = {}
        self.fun = readable_function(fun)
        fun = self.fun
        self.mode = mode
        self.argnums, self._single = _normalize_argnums(argnums)
        self.has_aux = has_aux
        self.holomorphic = holomorphic
        functools.update_wrapper(self, fun, updated=())
        self._params = None
        code = getattr(fun, '__code__', None)
        self._nargs = code.co_argcount if code is not None else 0
        if packs_keywords(_user_function(fun)):
            self._nargs = -1          # always bound: the keywords are one more argument, a dict
        # signature -> generated function, for functions without free variables
        # (a closure's code is shared through the global cache instead).
        self._fast = {} if getattr(fun, '__closure__', None) is None else None

    def _positional(self, args, kwargs):
        if self._params is None:        # (the user's: a jit wrapper's is (*args, **kwargs))
            self._params = inspect.signature(_user_function(self.fun) if self._nargs == -1
                                             else self.fun)
        bound = _bound(self._params, self.fun, args, kwargs)
        bound.apply_defaults()
        if self._nargs == -1:         # as generated code takes **kwargs (normalize)
            return bound.args + (bound.kwargs,)
        return bound.args

    def _specialize(self, args):
        named = args[:-1] if self._nargs == -1 else args    # argnums never name **kwargs' dict
        _check_argnums(named, self.argnums, self.mode)
        argnums = tuple(i % len(named) for i in self.argnums)
        _check_inexact(args, argnums, self.mode)
        if self.holomorphic:
            _check_holomorphic(args, argnums, self.mode)
        return specialize(self.fun, self.mode, argnums[0] if self._single else argnums,
                          self.has_aux, args, self.holomorphic)

    def function_for(self, args):
        """The generated Python function for these arguments."""
        return self.specialization_for(args)[0]

    def specialization_for(self, args):
        entry = self._specialize(args)
        (function,) = entry.build(resolve(self.fun, args))
        return function, (entry if entry.guards else None)

    def as_function(self):
        """A plain function (cheaper to call than an object) with .source()."""
        fast, nargs = self._fast, self._nargs
        positional, function_for = self._positional, self.function_for
        specialization_for = self.specialization_for
        allow_int, with_ints = self.allow_int, self._with_ints

        def transformed(*args, **kwargs):
            if allow_int:
                done = with_ints(args, kwargs)
                if done is not None:
                    return done[0]
            if kwargs or len(args) != nargs:       # binds defaults; too many is a TypeError
                args = positional(args, kwargs)
            if fast is not None:
                key = args[0].dtype if len(args) == 1 and type(args[0]) is _ndarray \
                    else signature(args)
                hit = fast.get(key)
                if hit is None or hit[1] is not None and not hit[1].current():
                    hit = specialization_for(args)
                    if len(fast) > 64:
                        fast.clear()
                    fast[key] = hit
                function = hit[0]
            else:
                function = function_for(args)
            return function(*args)
        functools.update_wrapper(transformed, self.fun, updated=())
        del transformed.__wrapped__          # inspect must not mistake it for the user's code
        keep_signature(transformed, self.fun)
        transformed.source = self.source
        transformed.__codax_transformed__ = self
        return transformed

    def _with_ints(self, args, kwargs):
        """With allow_int=True, a call whose differentiated arguments include
        integer (or bool) ones: as JAX, their derivatives are float0 zeros,
        the others' those of the same transformation without them. A
        1-tuple (the result), or None where no argument is an integer."""
        packed = self._positional(args, kwargs)
        named = packed[:-1] if self._nargs == -1 else packed
        _check_argnums(named, self.argnums, self.mode)
        nums = [i % len(named) for i in self.argnums]
        ints = {i for i in nums if tree_leaves(packed[i]) and not _has_inexact(packed[i])}
        if not ints:
            return None
        rest = tuple(i for i in nums if i not in ints)
        if rest:
            inner = self._without_ints.get(rest)
            if inner is None:
                inner = self._without_ints[rest] = Transformed(
                    self.fun, self.mode, rest, self.has_aux, self.holomorphic).as_function()
            result = inner(*args, **kwargs)
            value, grads = result if self.mode == 'value_and_grad' else (None, result)
            if self.has_aux and self.mode == 'grad':
                grads, value = grads
            grads = iter(grads)
        else:
            value = call_packed(self.fun, packed)
            if self.has_aux and self.mode == 'grad':
                value = value[1]
        out = tuple(float0_zeros(packed[i]) if i in ints else next(grads) for i in nums)
        out = out[0] if self._single else out
        if self.mode == 'value_and_grad':
            return (value, out),
        return ((out, value) if self.has_aux else out),

    def source(self, *args, **kwargs):
        """The Python source generated for this argument signature."""
        if kwargs or len(args) != self._nargs:
            args = self._positional(args, kwargs)
        return self._specialize(args).generated.source

def keep_signature(wrapper, fun):
    """Give `wrapper` fun's signature (as __wrapped__ would, which inspect must
    not follow to the user's source): so help() shows it, and a call of the
    transformed function with keywords inside transformed code finds where
    each keyword goes (transformer/ir.py)."""
    try:
        wrapper.__signature__ = inspect.signature(fun)
    except (TypeError, ValueError):
        pass


def transform_closure(fun, transform, otherwise):
    """`otherwise()`, or for a closure made in transformed code (a lambda or
    nested def that codax lifted, runtime/closures.py) the closure of the
    same transformation of its lifted function, `transform(lifted, k)`, whose
    k leading parameters take the captured values. So grad(outer) where outer
    calls vmap(lambda r: ...) differentiates through the captured values as
    through any closure's."""
    if not isinstance(fun, runtime.Closure):
        return otherwise()
    return runtime.closure(transform(fun.function, len(fun)), *fun)


def shifted_argnums(argnums, k):
    """argnums of a function's arguments as positions of its lifted function,
    which takes k captured values first (negative ones count from the end)."""
    if isinstance(argnums, int):
        return argnums + k if argnums >= 0 else argnums
    return tuple(shifted_argnums(i, k) for i in argnums)


def transformation_of(fn):
    """The Transformed behind a function returned by grad/value_and_grad, or
    None (also for a method whose function is one: it is bound_function's)."""
    if isinstance(fn, types.MethodType):
        return None
    return getattr(fn, '__codax_transformed__', None)


def grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """The gradient of scalar-valued `fun` with respect to argument(s) `argnums`.

    As in JAX, a real function of complex z gets df/dx - i df/dy (the conjugate
    of the steepest-ascent direction), and holomorphic=True takes f'(z) of a
    complex-valued holomorphic `fun`. With allow_int=True an integer argument
    in argnums gets float0 zeros (codax.float0) as its gradient."""
    return transform_closure(
        fun, lambda lifted, k: grad(lifted, shifted_argnums(argnums, k), has_aux, holomorphic,
                                    allow_int),
        lambda: Transformed(fun, 'grad', argnums, has_aux, holomorphic,
                            allow_int).as_function())


def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """Like grad, but the function returns (value, gradient)."""
    return transform_closure(
        fun, lambda lifted, k: value_and_grad(lifted, shifted_argnums(argnums, k), has_aux,
                                              holomorphic, allow_int),
        lambda: Transformed(fun, 'value_and_grad', argnums, has_aux, holomorphic,
                            allow_int).as_function())


def _has_inexact(value):
    return any(_kind_of(leaf) in ('f', 'c') for leaf in tree_leaves(value))


def _vjp_entry(fun, primals, has_aux, count=None):
    """The forward and backward sweeps, active in the first `count` primals'
    inexact ones (those a defaulted parameter takes are not differentiated)."""
    active = tuple(i for i, a in enumerate(primals[:count]) if _has_inexact(a))
    return build(fun, 'vjp', active, has_aux, primals)


def _check_cotangent(cotangent, out):
    """As JAX: the cotangent must have the output's structure and shapes."""
    from runtime.tree import tree_flatten
    got, got_tree = tree_flatten(cotangent)
    want, want_tree = tree_flatten(out)
    if got_tree != want_tree:
        raise ValueError(f'vjp: the cotangent has structure {got_tree}, the output {want_tree}')
    for c, o in zip(got, want):
        c_dtype, o_dtype = _dtype_of(c), _dtype_of(o)
        if numpy.shape(c) != numpy.shape(o) or c_dtype is not None and o_dtype is not None \
                and c_dtype != o_dtype and o_dtype.kind in 'fc':
            def typed(x):
                return f'{_leaf_dtype(x)}[{",".join(map(str, numpy.shape(x)))}]'
            raise ValueError(f'unexpected JAX type (e.g. shape/dtype) for argument to VJP '
                             f'function: got {typed(c)}, but expected {typed(o)} because the '
                             'corresponding output of the differentiated function had JAX '
                             f'type {typed(o)} (vjp: cotangent shape {numpy.shape(c)} does not '
                             f'match the output shape {numpy.shape(o)}, or its dtype '
                             f'{_leaf_dtype(c)} the output\'s {_leaf_dtype(o)})')


def vjp(fun, *primals, has_aux=False):
    """(fun(*primals), vjp_fun): vjp_fun(cotangent) returns one adjoint per primal.

    vjp_fun can itself be transformed (vmap(vjp_fun) over a batch of
    cotangents, jit, grad): it stands for generated Python (_Pullback)."""
    fun = bound_function(fun) or fun
    count = len(primals)            # vjp_fun returns their adjoints, not the defaults'
    primals = packed_arguments(fun, primals, {})
    fwd, bwd = _vjp_entry(fun, primals, has_aux, count)
    out, tape = fwd(*primals)
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError('with has_aux=True the function must return a pair (output, aux)')
        out, aux = out
    pullback = _Pullback(out, _pullback_factory(count, has_aux)(bwd, tape, *primals[:count]))

    integer = [i for i, p in enumerate(primals[:count]) if not _has_inexact(p)]

    def vjp_fun(cotangent):
        _check_cotangent(cotangent, out)
        adjoints = pullback.fun(cotangent)
        if integer:          # as JAX: float0 zeros for integer and bool primals
            adjoints = tuple(float0_zeros(primals[i]) if i in integer else a
                             for i, a in enumerate(adjoints))
        return adjoints
    vjp_fun.__codax_transformed__ = pullback
    if has_aux:
        return out, vjp_fun, aux
    return out, vjp_fun


class _Pullback:
    """Like a transformed function, vjp's vjp_fun stands for a plain Python
    function (`fun`): the backward sweep applied to the forward sweep's tape
    and the cotangent, which every transformation reads as any code. The
    cotangent each example passes is checked against the output."""

    def __init__(self, out, fun):
        self.out, self.fun = out, fun

    def function_for(self, args):
        if len(args) != 1:
            raise TypeError(f'the function returned by vjp takes one cotangent, got {len(args)} '
                            'arguments')
        _check_cotangent(args[0], self.out)
        return self.fun


_pullback_factories = {}


def _pullback_factory(count, has_aux):
    """make(backward, tape, *primals) -> pullback(cotangent): one code object
    per (count, has_aux), whose closure holds one vjp call's values, so that
    transformations of every vjp_fun of one signature share generated code."""
    key = (count, has_aux)
    if key not in _pullback_factories:
        primals = [f'primal{i}' for i in range(count)]
        seed = '(cotangent, 0.0)' if has_aux else 'cotangent'
        # only the primals' adjoints: not those of parameters left at their defaults
        adjoints = ''.join(f'rt.finalize(rt.item(adjoints, {i}), {p}), '
                           for i, p in enumerate(primals))
        text = (f'def make(backward, tape, {"".join(p + ", " for p in primals)}):\n'
                f'    def pullback(cotangent):\n'
                f'        adjoints = backward(tape, {seed})\n'
                f'        return rt.finalize_distinct(({adjoints}))\n'
                f'    return pullback\n')
        filename = f'<codax vjp pullback of {count} primals{" with aux" * has_aux}>'
        _pullback_factories[key] = define(text, filename, {'rt': runtime})['make']
    return _pullback_factories[key]




def source(f, *args, **kwargs):
    """The generated source of transformed function `f` for these arguments.

    For a plain Python function, its normal form: the code every
    transformation starts from."""
    if transformation_of(f) is not None:
        return f.source(*args, **kwargs)
    from transformer import nodes
    from transformer.pipeline import front_end
    if args or kwargs:         # (for a function with *args: this many of them)
        f = compiled_view(f, packed_arguments(f, args, kwargs))
    return nodes.render_comments(nodes.to_source(front_end(f)[1]))


# ---------------------------------------------------------------- forward mode

def _tangent_for(primal, tangent):
    """A user's tangent as an array of the primal's float dtype (JAX checks this)."""
    dtype = _dtype_of(primal)
    if dtype is None:
        return tangent if runtime.is_array(tangent) or isinstance(tangent, (dict, list, tuple)) \
            else float(tangent)
    given = _dtype_of(tangent)
    if given is not None and given != dtype:       # (a Python number takes the primal's)
        raise TypeError('primal and tangent arguments to jax.jvp do not match; dtypes must be '
                        'equal, or in case of int/bool primal dtype the tangent dtype must be '
                        f'float0.Got primal dtype {dtype} and so expected tangent dtype {dtype}, '
                        f'but got tangent dtype {given} instead. (codax.jvp)')
    xp = array_module(primal)
    tangent = xp.asarray(tangent, dtype=dtype)
    if tangent.shape != primal.shape:
        raise ValueError(f'jvp called with different primal and tangent shapes;Got primal shape '
                         f'{primal.shape} and tangent shape as {tangent.shape} (codax.jvp: '
                         f'tangent shape {tangent.shape} does not match primal shape '
                         f'{primal.shape})')
    return tangent


def _zero_tangent(tangent):
    """Whether an integer primal's tangent is zero (float0, as JAX passes
    it, or zeros of any dtype)."""
    return runtime.is_zero(tangent) or all(
        _is_float0(leaf) or not numpy.any(numpy.asarray(leaf) != 0)
        for leaf in tree_leaves(tangent))


def _check_structures(primals, tangents):
    from runtime.tree import tree_structure
    want, got = tree_structure(primals), tree_structure(tangents)
    if want != got:
        raise TypeError('primal and tangent arguments to jax.jvp must have the same tree '
                        f'structure; primals have tree structure {want} whereas tangents '
                        f'have tree structure {got}. (codax.jvp: {len(primals)} primals but '
                        f'{len(tangents)} tangents)')


def _jvp_entry(fun, primals, has_aux, active=None):
    if active is None:
        active = tuple(i for i, p in enumerate(primals) if _has_inexact(p))
    (function,) = build(fun, 'jvp', active, has_aux, primals)
    return function, active


def jvp(fun, primals, tangents, has_aux=False):
    """(fun(*primals), the derivative of fun at primals along tangents).

    With has_aux=True fun returns (output, aux) and jvp returns
    (output, output tangent, aux)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError('primal and tangent arguments to jax.jvp must be tuples or lists; '
                        f'found {type(primals).__name__} and {type(tangents).__name__}. '
                        '(codax.jvp: write jvp(f, (x,), (v,)))')
    primals = tuple(primals)
    # (None for an argument's tangent: its zero, whatever the argument's structure)
    tangents = tuple(runtime.ZERO if t is None else t for t in tangents)
    fun = bound_function(fun) or fun
    from runtime.tree import tree_structure
    if len(primals) != len(tangents) or any(
            not runtime.is_zero(t) and tree_structure(p) != tree_structure(t)
            for p, t in zip(primals, tangents)):
        _check_structures(primals, tangents)
    # defaults (and a **kwargs function's dict) filled in, with zero tangents
    full = packed_arguments(fun, primals, {})
    tangents += (runtime.ZERO,) * (len(full) - len(primals))
    primals = full
    for p, t in zip(primals, tangents):
        if not _has_inexact(p) and not _zero_tangent(t):
            raise TypeError('jvp: a tangent for an integer or boolean primal must be zero '
                            '(float0, as JAX: there is no derivative with respect to integers)')
        if _has_inexact(p) and any(_is_float0(leaf) for leaf in tree_leaves(t)):
            raise TypeError('primal and tangent arguments to jax.jvp do not match: a float0 '
                            'tangent is for an int/bool primal only (codax.jvp)')
    active = tuple(i for i, (p, t) in enumerate(zip(primals, tangents))
                   if _has_inexact(p) and not runtime.is_zero(t))
    function, active = _jvp_entry(fun, primals, has_aux, active)
    from runtime.tree import tree_map
    dense = [tree_map(_tangent_for, primals[i], tangents[i]) for i in active]
    out, tangent = function(*primals, *dense)
    if has_aux:
        return out[0], tangent, out[1]
    return out, tangent


def linearize(fun, *primals):
    """(fun(*primals), jvp_fun): jvp_fun(*tangents) is the derivative along tangents."""
    out = fun(*primals)

    def jvp_fun(*tangents):
        return jvp(fun, primals, tangents)[1]
    return out, jvp_fun
