"""jacfwd, jacrev and hessian.

For one array argument, a Jacobian is generated Python: the jvp of the
function vmapped over the basis of the input (jacfwd), or its pullback vmapped
over the basis of the output (jacrev), as JAX builds them; so it can be
differentiated again like any code. Pytree arguments and outputs, tuple
argnums and has_aux go through a Python loop that cannot be transformed again.
"""
import functools
import inspect
import linecache

import numpy

import runtime
from runtime.backend import array_module

from runtime.sources import define
from runtime.tree import (derivative_leaves, flat_keys, tree_leaves, tree_structure,
                          tree_unflatten)

from transformer.errors import SourceError

from transformer.ir import packs_keywords

from .api import (_bound, _check_argnums, _check_holomorphic, _check_inexact, _kind_of,
                  _leaf_dtype, _dtype_of, _labels, _user_function,
                  bound_function, call_packed, grad, jvp, packed_arguments, primitive_function,
                  resolve, shifted_argnums, transform_closure, vjp)
from .cache import signature

def _argnums_tuple(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _basis(leaves):
    """Yield (leaf index, flat index, one-hot tangents for every leaf)."""
    for k, leaf in enumerate(leaves):
        xp = array_module(leaf)
        size = int(numpy.prod(numpy.shape(leaf)))
        for j in range(size):
            tangents = [xp.zeros(numpy.shape(l), dtype=_inexact_dtype(l)) for l in leaves]
            tangents[k].reshape(-1)[j] = 1.0
            yield k, j, tangents


def _inexact_dtype(x):
    dtype = _dtype_of(x)
    return dtype if dtype is not None and dtype.kind in 'fc' else numpy.float64


def _assemble(columns, out_tree, in_leaves, in_tree, transpose):
    """Jacobian blocks shaped out_leaf.shape + in_leaf.shape, nested as JAX does:
    the output pytree holding, per output leaf, the input pytree."""
    from runtime.tree import tree_unflatten
    out_leaves = columns['out']
    blocks = []
    for o, out_leaf in enumerate(out_leaves):
        per_input = []
        for k, in_leaf in enumerate(in_leaves):
            mat = numpy.asarray(columns[(o, k)])
            if transpose:        # rows indexed by output element
                mat = mat.reshape(numpy.shape(out_leaf) + numpy.shape(in_leaf))
            else:                # columns indexed by input element
                mat = numpy.moveaxis(mat.reshape((numpy.size(in_leaf),) + numpy.shape(out_leaf)),
                                     0, -1).reshape(numpy.shape(out_leaf) + numpy.shape(in_leaf))
            per_input.append(array_module(out_leaf).asarray(mat))
        blocks.append(tree_unflatten(in_tree, per_input))
    return tree_unflatten(out_tree, blocks)


def _check_inputs(args, nums, forward, holomorphic):
    """JAX's rules: holomorphic=True takes complex inputs; else jacfwd real
    ones, jacrev real or complex ones."""
    name = 'jacfwd' if forward else 'jacrev'
    if holomorphic:
        _check_holomorphic(args, nums, name)
    else:
        _check_inexact(args, nums, name, 'f' if forward else 'fc')


def _check_outputs(leaves, holomorphic):
    """JAX's rule for jacrev's outputs: real, or with holomorphic=True complex."""
    for leaf in leaves:
        kind = _kind_of(leaf)
        if holomorphic and kind not in (None, 'c'):
            raise TypeError('jacrev with holomorphic=True requires outputs with complex dtype, '
                            f'but got {_leaf_dtype(leaf)}.')
        if not holomorphic and kind == 'c':
            raise TypeError('jacrev requires real-valued outputs (output dtype that is a '
                            f'sub-dtype of np.floating), but got {_leaf_dtype(leaf)}. For '
                            'holomorphic differentiation, pass holomorphic=True. For '
                            'differentiation of non-holomorphic functions involving complex '
                            'outputs, use codax.vjp directly.')


def _jacobian(fun, argnums, has_aux, forward, holomorphic=False):
    from runtime.tree import tree_flatten, tree_unflatten
    nums_given = _argnums_tuple(argnums)
    single = isinstance(argnums, int)

    def jacobian(*args, **kwargs):
        _check_argnums(args, nums_given, 'jacfwd' if forward else 'jacrev')
        # argnums count the positional arguments (JAX); what is passed by
        # keyword is passed on, not differentiated
        nums = tuple(i % len(args) for i in nums_given)
        args = packed_arguments(fun, args, kwargs)
        wrt = tuple(args[i] for i in nums)
        in_leaves, in_tree = tree_flatten(wrt if not single else wrt[0])
        _check_inputs(args, nums, forward, holomorphic)

        if forward:
            out = aux = None
            columns = {}
            for k, j, tangents in _basis(in_leaves):
                tan_tree = tree_unflatten(in_tree, tangents)
                full = [runtime.ZERO] * len(args)
                for i, t in zip(nums, (tan_tree,) if single else tan_tree):
                    full[i] = t
                result = jvp(fun, args, full, has_aux=has_aux)
                out, tangent = result[0], result[1]
                aux = result[2] if has_aux else None
                # (leaves taken along the primal's structure, dict entries by
                # key: a derivative's dict type need not be the primal's)
                for o, t in enumerate(derivative_leaves(tangent, tree_flatten(out)[1])):
                    columns.setdefault((o, k), []).append(numpy.asarray(t))
            if out is None:                      # no input elements at all
                out = call_packed(fun, args)
                out, aux = out if has_aux else (out, None)
            out_leaves, out_tree = tree_flatten(out)
            for o in range(len(out_leaves)):
                for k in range(len(in_leaves)):
                    columns.setdefault((o, k), numpy.zeros((0,) + numpy.shape(out_leaves[o])))
        else:
            res = vjp(fun, *args, has_aux=has_aux)
            out, pullback = res[0], res[1]
            aux = res[2] if has_aux else None
            out_leaves, out_tree = tree_flatten(out)
            _check_outputs(out_leaves, holomorphic)
            columns = {}
            for o, out_leaf in enumerate(out_leaves):
                size = int(numpy.prod(numpy.shape(out_leaf)))
                for j in range(size):
                    cts = [numpy.zeros(numpy.shape(l), dtype=_inexact_dtype(l)) for l in out_leaves]
                    cts[o].reshape(-1)[j] = 1.0
                    grads = pullback(tree_unflatten(out_tree, cts))
                    grads = grads[nums[0]] if single else tuple(grads[i] for i in nums)
                    for k, g in enumerate(derivative_leaves(grads, in_tree)):
                        columns.setdefault((o, k), []).append(numpy.asarray(g))
                for k, in_leaf in enumerate(in_leaves):
                    columns.setdefault((o, k), numpy.zeros((0,) + numpy.shape(in_leaf)))
        columns['out'] = out_leaves
        jac = _assemble(columns, out_tree, in_leaves, in_tree, transpose=not forward)
        return (jac, aux) if has_aux else jac
    functools.update_wrapper(jacobian, fun, updated=())
    del jacobian.__wrapped__
    # transformed again, it stands for generated code (called, the loop above)
    jacobian.__codax_transformed__ = _PytreeJacobian(fun, argnums, has_aux, forward, holomorphic)
    return jacobian


class _PytreeJacobian:
    """jacfwd / jacrev with pytree arguments or outputs, tuple argnums or
    has_aux, transformed again (vmap, jacfwd, grad of it): function_for(args)
    is generated Python that JAX's construction spells out leaf by leaf.
    Every differentiated leaf becomes a parameter of `leaf_function` (f with
    its arguments rebuilt from them, returning the list of its output's
    leaves); jacfwd vmaps its jvp over the basis of one input leaf at a
    time, jacrev its pullback over the basis of one output leaf at a time,
    and rt.jacobian_from_columns / _rows shape each block, as the generated
    Jacobian of one array does. The code depends on the numbers of leaves and
    the output's structure only (shapes are read when it runs)."""

    def __init__(self, fun, argnums, has_aux, forward, holomorphic):
        self.fun, self.argnums, self.has_aux = fun, argnums, has_aux
        self.forward, self.holomorphic = forward, holomorphic
        self._outputs = {}          # arguments' signature and ranks -> output_form
        self._generated = {}        # the code's shape (see function_for) -> its function

    def function_for(self, args):
        args = tuple(args)
        packs = packs_keywords(_user_function(self.fun))
        named = args[:-1] if packs else args       # (argnums never name **kwargs' dict)
        nums_given = _argnums_tuple(self.argnums)
        _check_argnums(named, nums_given, 'jacfwd' if self.forward else 'jacrev')
        nums = tuple(i % len(named) for i in nums_given)
        _check_inputs(args, nums, self.forward, self.holomorphic)
        single = isinstance(self.argnums, int)
        wrt = args[nums[0]] if single else tuple(args[i] for i in nums)
        wrt_def, (out_def, out_tree) = tree_structure(wrt), self.output_form(args)[0]
        if not wrt_def.num_leaves or not out_def.num_leaves:
            raise SourceError('codax cannot transform a Jacobian with no differentiated '
                              'leaves (an empty argument or output) again')
        key = (len(args), nums, single, packs, wrt_def, out_def)
        function = self._generated.get(key)
        if function is None:
            function = self._generated[key] = _pytree_jacobian_function(
                self, len(args), nums, single, packs, (wrt_def, wrt), (out_def, out_tree))
        return function

    def output_form(self, args):
        """((the structure of f's output, a tree of its form), whether it is
        one array or number),
        from one call per signature and ranks of the arguments; for jacrev
        after JAX's check of the outputs' dtypes."""
        key = (signature(args), tuple(numpy.ndim(leaf) for leaf in tree_leaves(list(args))))
        form = self._outputs.get(key)
        if form is None:
            out = call_packed(self.fun, args)
            out = out[0] if self.has_aux else out
            if not self.forward:
                _check_outputs(tree_leaves(out), self.holomorphic)
            structure = tree_structure(out)
            # (the output's form, its leaves numbered: no arrays kept)
            skeleton = tree_unflatten(structure, list(range(structure.num_leaves)))
            form = self._outputs[key] = ((structure, skeleton), runtime.is_array_leaf(out))
        return form


def _pytree_jacobian_function(jacobian, count, nums, single, packs, wrt_form, out_form):
    """The generated function of a _PytreeJacobian for `count` (packed)
    arguments, the differentiated ones `nums` (`single`: argnums an int),
    their structure and the output's (each (treedef, a tree of that form)).
    Plain dicts, lists and tuples are built and read by literals and
    indexing, which batch as they are; other nodes through tree_unflatten
    and tree_leaves (batched one example at a time, so a vmap of a
    derivative of this code takes a slower path)."""
    params = [f'a{i}' for i in range(count)]
    (wrt_def, wrt_tree), (out_def, out_tree) = wrt_form, out_form
    inputs, outputs = wrt_def.num_leaves, out_def.num_leaves
    leaves = [f'l{k}' for k in range(inputs)]
    wrt = params[nums[0]] if single else '(' + ''.join(params[i] + ', ' for i in nums) + ')'
    forward = jacobian.forward
    name = getattr(_user_function(jacobian.fun), '__name__', 'f')
    name = name if name.isidentifier() else 'function'
    kind = 'jacfwd' if forward else 'jacrev'
    all_in = ', '.join(leaves + params)
    reads = _leaf_reads(wrt_tree, 'wrt')
    head = [f'def {kind}_{name}({", ".join(params)}):', f'    wrt = {wrt}']
    head += [f'    {l} = {r}' for l, r in zip(leaves, reads)] if reads is not None else \
        ['    leaves = tree_leaves(wrt)', *(f'    {l} = leaves[{k}]' for k, l in enumerate(leaves))]
    body, rows = [], []
    if forward:             # one input leaf's basis at a time: columns of every output leaf
        axes = '(' + 'None, ' * (inputs + count) + '0)'
        for k, l in enumerate(leaves):
            body += [f'    push = rt.tangent_function(leaf_function, ({all_in},), {k})',
                     f'    outs, columns = rt.vmapped(push, {axes})({all_in}, rt.basis({l}))']
            body += [f'    j{o}_{k} = rt.jacobian_from_columns(rt.item(columns, {o}), '
                     f'outs[{o}], {l})' for o in range(outputs)]
    else:                   # one output leaf's basis at a time: rows for every input leaf
        axes = '(' + 'None, ' * (inputs + 2) + '0)'
        body.append(f'    outs, pb = rt.vjp_call(leaf_function, {all_in})')
        for o in range(outputs):
            body.append(f'    rows = rt.vmapped(row_{o}, {axes})(pb, outs, {", ".join(leaves)}, '
                        f'rt.basis(outs[{o}]))')
            body += [f'    j{o}_{k} = rt.jacobian_from_rows(rows[{k}], outs[{o}], {l})'
                     for k, l in enumerate(leaves)]
            rows.append(_row_source(o, outputs, leaves))
    per_output = [_built(wrt_tree, [f'j{o}_{k}' for k in range(inputs)], 'wrt_structure')
                  for o in range(outputs)]
    result = _built(out_tree, per_output, 'out_structure')
    if jacobian.has_aux:
        body.append(f'    aux = {_call_source(params, packs)}[1]')
        result = f'({result}, aux)'
    body.append(f'    return {result}')
    called = [f'b{i}' if i in nums else p for i, p in enumerate(params)]
    rebuilt = [f'    wrt = {_built(wrt_tree, leaves, "wrt_structure")}']
    rebuilt += [f'    b{nums[0]} = wrt'] if single else \
        [f'    b{i} = wrt[{j}]' for j, i in enumerate(nums)]
    output = _call_source(called, packs) + ('[0]' if jacobian.has_aux else '')
    reads = _leaf_reads(out_tree, 'out')
    leaf_function = [f'def leaf_function({all_in}):   # f of the leaves, its output\'s leaves',
                     *rebuilt, f'    out = {output}',
                     f'    return [{", ".join(reads)}]' if reads is not None else
                     '    return tree_leaves(out)']
    text = '\n'.join(head + body) + '\n\n\n' + '\n'.join(leaf_function) + '\n' + \
        ''.join('\n\n' + r for r in rows)
    filename = f'<codax {kind}({name}) of pytrees #{next(_labels)}>'
    namespace = define(text, filename, {
        'rt': runtime, 'numpy': numpy, 'f': jacobian.fun, 'out_structure': out_def,
        'wrt_structure': wrt_def, 'tree_leaves': tree_leaves, 'tree_unflatten': tree_unflatten})
    function = namespace[f'{kind}_{name}']
    function.source = text
    return function


_LEAF = tree_structure(0.0)
_PLAIN = (dict, list, tuple)


def _plain_tree(tree):
    """Whether `tree` is made of plain dicts (with str or int keys), lists
    and tuples only, around its leaves (and Nones, which hold none)."""
    if tree is None or tree_structure(tree) == _LEAF:
        return True
    if type(tree) not in _PLAIN:
        return False
    if type(tree) is dict:
        return all(type(k) in (str, int) and _plain_tree(v) for k, v in tree.items())
    return all(_plain_tree(v) for v in tree)


def _leaf_reads(tree, prefix):
    """Source reading each leaf of `tree` (in tree_leaves' order) out of the
    value named `prefix` by indexing, or None where it is not a plain tree."""
    if not _plain_tree(tree):
        return None

    def reads(t, at):
        if t is None:
            return []
        if type(t) is dict:
            return [r for k in flat_keys(t) for r in reads(t[k], f'{at}[{k!r}]')]
        if type(t) in (list, tuple):
            return [r for i, v in enumerate(t) for r in reads(v, f'{at}[{i}]')]
        return [at]
    return reads(tree, prefix)


def _built(tree, names, structure):
    """Source building a tree of `tree`'s form from the leaf expressions
    `names`: a literal for a plain tree, else tree_unflatten(structure, ...)."""
    if not _plain_tree(tree):
        return f'tree_unflatten({structure}, [{", ".join(names)}])'
    given = dict(zip(_leaf_reads(tree, ''), names))

    def build(t, at):
        if t is None:
            return 'None'
        if type(t) is dict:         # (in the tree's own key order)
            return '{' + ', '.join(f'{k!r}: {build(v, f"{at}[{k!r}]")}'
                                   for k, v in t.items()) + '}'
        if type(t) is list:
            return '[' + ', '.join(build(v, f'{at}[{i}]') for i, v in enumerate(t)) + ']'
        if type(t) is tuple:
            return '(' + ''.join(build(v, f'{at}[{i}]') + ', ' for i, v in enumerate(t)) + ')'
        return given[at]
    return build(tree, '')


def _call_source(params, packs):
    """`f(a0, a1, **a2)`: the call of f with packed arguments."""
    passed = params[:-1] + [f'**{params[-1]}'] if packs else params
    return f'f({", ".join(passed)})'


def _row_source(o, outputs, leaves):
    """`row_<o>`: the adjoints of the differentiated leaves for one cotangent
    of output leaf o (the other output leaves' cotangents zero)."""
    cotangents = ', '.join('cotangent' if i == o else f'numpy.zeros_like(outs[{i}])'
                           for i in range(outputs))
    adjoints = ''.join(f'rt.finalize(rt.item(g, {k}), {l}), ' for k, l in enumerate(leaves))
    return (f'def row_{o}(pb, outs, {", ".join(leaves)}, cotangent):\n'
            f'    g = rt.pullback(pb, [{cotangents}])\n'
            f'    return ({adjoints})\n')


def jacfwd(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian of `fun` by forward mode: one jvp per input element.

    Complex inputs get the complex derivative (the Jacobian of a holomorphic
    `fun`) with or without holomorphic=True, which JAX requires for them."""
    return transform_closure(
        fun, lambda lifted, k: jacfwd(lifted, shifted_argnums(argnums, k), has_aux, holomorphic),
        lambda: _jacobian_function(fun, argnums, has_aux, True, holomorphic))


def jacrev(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian of `fun` by reverse mode: one pullback per output element.

    Complex outputs get the complex derivative of a holomorphic `fun` (as
    jacfwd; `holomorphic` is accepted as in JAX)."""
    return transform_closure(
        fun, lambda lifted, k: jacrev(lifted, shifted_argnums(argnums, k), has_aux, holomorphic),
        lambda: _jacobian_function(fun, argnums, has_aux, False, holomorphic))


def _jacobian_function(fun, argnums, has_aux, forward, holomorphic=False):
    """Generated source where it can be transformed again, else a loop."""
    fun = bound_function(fun) or fun
    if isinstance(argnums, int) and not has_aux:
        return _generated_jacobian(fun, argnums, forward, holomorphic)
    return _jacobian(fun, argnums, has_aux, forward, holomorphic)


class _CheckedJacobian:
    """Like a transformed function, a generated Jacobian stands for its
    generated Python (function_for), after JAX's checks of the dtypes of
    the argument it differentiates (_check_inputs), which its source,
    transformed again, cannot make."""

    def __init__(self, fun, generated, argnum, forward, holomorphic, pytrees):
        self.fun, self.generated = fun, generated
        self.argnum, self.forward, self.holomorphic = argnum, forward, holomorphic
        self.pytrees = pytrees          # the _PytreeJacobian for pytree arguments or outputs

    def checked(self, args):
        if len(args) > self.argnum:
            _check_inputs(args, (self.argnum,), self.forward, self.holomorphic)
        return self.generated

    def function_for(self, args):
        """For a transformation of it: where the argument or the output is a
        pytree, the pytrees' generated code (the template would only call it
        through its fallback, `general`, after work of its own)."""
        if len(args) > self.argnum and (not runtime.is_array_leaf(args[self.argnum])
                                        or self._pytree_output(args)):
            return self.pytrees.function_for(args)
        return self.checked(args)

    def _pytree_output(self, args):
        try:
            return not self.pytrees.output_form(args)[1]
        except Exception:
            # the plain call that tells the output's form failed: f uses what
            # only codax's code runs (bincount's length=), and the
            # template's path serves an array output
            return False

    def as_function(self):
        generated, function_for, argnum = self.generated, self.checked, self.argnum
        fun, forward, holomorphic = self.fun, self.forward, self.holomorphic
        params = inspect.signature(generated)

        def jacobian(*args, **kwargs):
            if kwargs or len(args) <= argnum:
                args, kwargs = tuple(_bound(params, generated, args, kwargs).args), {}
            function = function_for(args)
            if not forward and (holomorphic or _kind_of(args[argnum]) == 'c'):
                # JAX's check of the outputs' dtype (complex ones need holomorphic=True)
                _check_outputs(tree_leaves(call_packed(fun, args)), holomorphic)
            return function(*args)
        # (inspect.getsource shows the generated code it stands for)
        functools.update_wrapper(jacobian, generated, updated=())
        jacobian.__codax_transformed__ = self
        return jacobian


_JACOBIAN_SOURCE = {
    True: """\
def {name}({params}):
    if not rt.is_array_leaf({x}):          # a pytree argument: the general path
        return general({params})
    push = rt.tangent_function(f, ({params},), {argnum})
    outs, columns = rt.vmapped(push, {in_axes})({params}, rt.basis({x}))
    if not rt.is_array_leaf(outs):          # a pytree output: the general path
        return general({params})
    return rt.jacobian_from_columns(columns, outs, {x})
""",
    False: """\
def {name}({params}):
    if not rt.is_array_leaf({x}):          # a pytree argument: the general path
        return general({params})
    out, pb = rt.vjp_call(f, {params})
    if not rt.is_array_leaf(out):
        return general({params})
    rows = rt.vmapped(jacobian_row, (None, None, 0))(pb, {x}, rt.basis(out))
    return rt.jacobian_from_rows(rows, out, {x})


def jacobian_row(pb, x, cotangent):      # the adjoint of x for one output cotangent
    return rt.finalize(rt.item(rt.pullback(pb, cotangent), {argnum}), x)
""",
}


def _generated_jacobian(fun, argnum, forward, holomorphic=False):
    """jacfwd/jacrev of an array argument as generated Python (a vmapped jvp or
    pullback), so the Jacobian can itself be differentiated again:
    jacfwd(jacrev(f)), jacrev(jacfwd(f)), grad of a Jacobian's entry, ..."""
    user = _user_function(fun)
    user = primitive_function(user) or user      # np.tanh: its wrapper's parameters
    signature = inspect.signature(user)
    params = list(signature.parameters)
    if not -len(params) <= argnum < len(params) or not _positional_only(user):
        return _jacobian(fun, argnum, False, forward, holomorphic)   # checks argnum in the call
    argnum %= len(params)
    defaults = {f'_default_{p}': v.default for p, v in signature.parameters.items()
                if v.default is not v.empty}
    kind = 'jacfwd' if forward else 'jacrev'
    name = f'{kind}_{getattr(user, "__name__", "f").strip("<>")}'
    in_axes = '(' + 'None, ' * len(params) + '0)'
    header = ', '.join(f'{p}=_default_{p}' if f'_default_{p}' in defaults else p for p in params)
    text = _JACOBIAN_SOURCE[forward].format(name=name, params=', '.join(params),
                                            x=params[argnum], argnum=argnum, in_axes=in_axes)
    filename = f'<codax {kind}({name}) #{next(_labels)}>'
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    text = text.replace(f'def {name}({", ".join(params)}):', f'def {name}({header}):', 1)
    general = _jacobian(fun, argnum, False, forward, holomorphic)
    namespace = {'rt': runtime, 'f': fun, 'general': general, **defaults}
    exec(compile(text, filename, 'exec'), namespace)
    jacobian = namespace[name]
    jacobian.__doc__ = f'The Jacobian of {name[len(kind) + 1:]} with respect to argument {argnum}.'
    return _CheckedJacobian(fun, jacobian, argnum, forward, holomorphic,
                            general.__codax_transformed__).as_function()


def _positional_only(fn):
    """Whether fn's parameters are all positional ones (the generated
    Jacobian's template calls it so): no *args, keyword-only or **kwargs."""
    return all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in inspect.signature(fn).parameters.values())


def hessian(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Hessian of `fun`: JAX's jacfwd(jacrev(fun)), of shape
    out.shape + x.shape + x.shape. For a scalar output that is forward mode
    over the generated gradient, jacfwd(grad(fun)); for any other output
    jacfwd(jacrev(fun)). Which one, each signature of arguments tells once
    (_Hessian). With has_aux=True, `fun` returns (output, aux) and so does the
    Hessian."""
    if isinstance(fun, runtime.Closure):          # made in transformed code: scalar outputs
        return jacfwd(grad(fun, argnums, has_aux=has_aux, holomorphic=holomorphic), argnums,
                      has_aux=has_aux, holomorphic=holomorphic)
    return _Hessian(bound_function(fun) or fun, argnums, has_aux, holomorphic).as_function()


class _Hessian:
    """Like a transformed function, hessian(f) stands for the plain function
    that function_for(args) returns: the Jacobian of the gradient where f's
    output is a scalar for these arguments, else the Jacobian of the Jacobian.
    Which, a call of f tells, once per signature and ranks of the arguments."""

    def __init__(self, fun, argnums, has_aux, holomorphic):
        self.fun = fun                 # the function behind it, for its signature
        self.options = argnums, has_aux, holomorphic
        self._scalar = jacfwd(grad(fun, argnums, has_aux=has_aux, holomorphic=holomorphic),
                              argnums, has_aux=has_aux, holomorphic=holomorphic)
        self._general = None
        self._choices = {}
        self._contractions = {}        # (argument count, argnums) -> its scalar Hessian

    def _positional(self, args, kwargs):
        return packed_arguments(self.fun, args, kwargs) if kwargs else tuple(args)

    def chosen(self, args):
        """The Hessian function for these (positional) arguments."""
        key = (signature(args), tuple(numpy.ndim(leaf) for leaf in tree_leaves(list(args))))
        choice = self._choices.get(key)
        if choice is None:
            out = call_packed(self.fun, args)
            if self.options[1]:
                out = out[0]
            argnums = self.options[0]
            choice = self._choices[key] = 'scalar' if _is_scalar(out) else 'generated' if (
                isinstance(argnums, int) and not self.options[1] and -len(args) <= argnums
                < len(args) and runtime.is_array_leaf(args[argnums])
                and _positional_only(_user_function(self.fun))
                and runtime.is_array_leaf(out)) else 'contracted'
        if choice == 'scalar':
            return self._scalar
        if choice == 'contracted':
            return self._contracted
        return self._nested()

    def _nested(self):
        """JAX's jacfwd(jacrev(f))."""
        if self._general is None:
            argnums, has_aux, holomorphic = self.options
            self._general = jacfwd(jacrev(self.fun, argnums, has_aux, holomorphic), argnums,
                                   has_aux, holomorphic)
        return self._general

    def _contracted(self, *args, **kwargs):
        """The Hessian of a pytree (or with has_aux, tuple argnums or pytree
        arguments, non-scalar) output: for each output element, the Hessian
        of the output contracted with its unit cotangent, a scalar function
        (_contraction) whose Hessian is generated code, jacfwd(grad(.)).
        Nested as JAX's jacfwd(jacrev(f)): the output's structure outside,
        then the arguments', then the arguments' again."""
        from runtime.tree import tree_flatten, tree_unflatten
        argnums, has_aux, holomorphic = self.options
        _check_argnums(args, _argnums_tuple(argnums), 'hessian')
        args = packed_arguments(self.fun, args, kwargs)
        nums = argnums % len(args) if isinstance(argnums, int) else \
            tuple(i % len(args) for i in argnums)
        out = call_packed(self.fun, args)
        out, aux = out if has_aux else (out, None)
        out_leaves, out_tree = tree_flatten(out)
        key = (len(args), nums)
        scalar = self._contractions.get(key)
        if scalar is None:
            contraction = _contraction(self.fun, len(args), has_aux)
            scalar = jacfwd(grad(contraction, nums, has_aux, holomorphic), nums, has_aux,
                            holomorphic)
            self._contractions[key] = scalar
        blocks, tree = [], None
        for o, leaf in enumerate(out_leaves):
            rows = []
            for j in range(max(numpy.size(leaf), 1)):
                cts = [numpy.zeros(numpy.shape(l), dtype=_inexact_dtype(l)) for l in out_leaves]
                if numpy.size(leaf):
                    cts[o].reshape(-1)[j] = 1.0
                h = scalar(*args, tree_unflatten(out_tree, cts))
                h_leaves, tree = tree_flatten(h[0] if has_aux else h)
                rows.append(h_leaves)
            xp = array_module(leaf)
            rows = rows[:numpy.size(leaf)]        # (none for an empty leaf: its shape only)
            blocks.append(tree_unflatten(tree, [
                xp.reshape(xp.stack([xp.asarray(r[m]) for r in rows]) if rows else xp.zeros(
                    (0,) + numpy.shape(h_leaves[m])), numpy.shape(leaf) + numpy.shape(h_leaves[m]))
                for m in range(len(h_leaves))]))
        hessian = tree_unflatten(out_tree, blocks)
        return (hessian, aux) if has_aux else hessian

    def function_for(self, args):
        """For a transformation of it: the generated code of the choice, where
        that is the contracted loop, of jacfwd(jacrev(f)) (of pytrees)."""
        chosen = self.chosen(args)
        return resolve(self._nested() if chosen == self._contracted else chosen, args)

    def as_function(self):
        positional, chosen = self._positional, self.chosen

        def hessian(*args, **kwargs):
            # (called as the user called it: argnums count the positional arguments)
            return chosen(positional(args, kwargs))(*args, **kwargs)
        functools.update_wrapper(hessian, self.fun, updated=())
        hessian.__dict__.pop('__wrapped__', None)     # inspect must not take it for the user's code
        hessian.__codax_transformed__ = self
        return hessian


def _is_scalar(out):
    """A number or a 0-d array (not a container of them)."""
    return not isinstance(out, (list, tuple, dict)) and runtime.tree._node_of(out)[1] is None \
        and numpy.ndim(out) == 0


def _contraction(fun, count, has_aux):
    """`contracted(a0, .., cotangent)`: the sum of fun's output leaves times
    the cotangent's (a scalar), as Python source codax differentiates. With
    has_aux it returns (that sum, fun's aux). A **kwargs function's packed
    dict (the last argument) goes in as keywords."""
    params = [f'a{i}' for i in range(count)]
    passed = params[:-1] + [f'**{params[-1]}'] if packs_keywords(_user_function(fun)) \
        else params
    name = getattr(_user_function(fun), '__name__', 'f')
    name = f'contracted_{name}' if name.isidentifier() else 'contracted'
    text = (f'def {name}({", ".join(params + ["cotangent"])}):\n'
            f'    {"out, aux" if has_aux else "out"} = f({", ".join(passed)})\n'
            f'    leaves = tree_leaves(out)\n'
            f'    cts = tree_leaves(cotangent)\n'
            f'    total = 0.0\n'
            f'    for i in range(len(leaves)):\n'
            f'        total = total + numpy.sum(leaves[i] * cts[i])\n'
            f'    return {"total, aux" if has_aux else "total"}\n')
    filename = f'<codax hessian({name}) #{next(_labels)}>'
    return define(text, filename, {'f': fun, 'numpy': numpy, 'tree_leaves': tree_leaves})[name]
