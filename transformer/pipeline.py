"""The pipeline, spelled out in order: parse, fence, normalize, analyse and
transform, optimize, emit. `CODAX_DUMP=1` (or `verbose=True`) prints the
source after every stage, like a compiler's -print-after-all.
"""
import builtins
import copy
import linecache
import os
import sys
import types

from . import nodes as n
from . import batch as batch_pass, fence, forward, normalize as normalize_pass, parse, reverse
from . import closures, fuse as fuse_pass, kernels
from .errors import SourceError, error_at
from .optimize import optimize

RESERVED = ('xp', 'rt')
FULL_REDUCTIONS = {'sum', 'mean', 'prod', 'max', 'min', 'amax', 'amin', 'var', 'std',
                   'norm', 'vdot', 'det', 'trace'}


class Generated:
    """Source text and the factory that builds its functions for given free values."""

    def __init__(self, source, factory_code, free_names, entry_names, guards=()):
        self.guards = tuple(guards)       # (global name, object) the code was built for
        self.source = source
        self.factory_code = factory_code  # code of factory(xp, rt, *free values) -> functions
        self.free_names = free_names      # the user's closure variables, in order
        self.entry_names = entry_names


def _dump(verbose, stage, tree_or_text):
    if verbose or os.environ.get('CODAX_DUMP'):
        text = tree_or_text if isinstance(tree_or_text, str) else n.to_source(tree_or_text)
        print(f'--- codax: after {stage} ---\n{n.render_comments(text)}', file=sys.stderr)


# (codax's own function, numeric) -> its front end: nested transformations
# batch and differentiate rt.pullback, rt.jvp_call, ... again and again, and
# normalizing them anew each time was a quarter of a third derivative's
# compile time. Only codax's own functions (see _own): their source and
# globals do not change, while a user may rebind a global.
_FRONT_ENDS = {}
_OWN_PACKAGES = ('runtime', 'codax')


def front_end(fn, verbose=False, numeric=None):
    """Stages 1-3: the function in normal form, with its Unit and name supply.
    `numeric`: the indices of the parameters that are arrays or numbers, where
    the call's signature tells (the others are lists, tuples, dicts or nodes,
    whose `+` joins them: normalize). Later stages may change all three, so
    a remembered front end is handed out as a copy."""
    key = (fn, None if numeric is None else tuple(numeric)) if _own(fn) and not verbose \
        else None
    if key is None:
        return _front_end(fn, verbose, numeric)
    if key not in _FRONT_ENDS:
        if len(_FRONT_ENDS) > 4096:     # (generated functions come and go)
            _FRONT_ENDS.clear()
        try:
            _FRONT_ENDS[key] = _front_end(fn, verbose, numeric)
        except SourceError as exc:      # (asked again and again by callers that fall back)
            _FRONT_ENDS[key] = exc
    found = _FRONT_ENDS[key]
    if isinstance(found, SourceError):
        raise found.with_traceback(None)
    return _copied(*found)


def _own(fn):
    """Module-level functions of codax's packages, and functions codax
    generated (their globals are xp and rt; their free values fixed when made)."""
    if not isinstance(fn, types.FunctionType):
        return False
    if fn.__code__.co_filename.startswith('<codax '):
        return True
    module = getattr(fn, '__module__', None) or ''
    return '<locals>' not in fn.__qualname__ and module.split('.')[0] in _OWN_PACKAGES


def _copied(unit, fdef, fresh):
    unit = copy.copy(unit)
    unit.tree, unit.guards = n.deepcopy(unit.tree), dict(unit.guards)
    unit.lifted = n.deepcopy(unit.lifted)
    fresh = copy.copy(fresh)
    fresh.taken, fresh.counters = set(fresh.taken), dict(fresh.counters)
    return unit, n.deepcopy(fdef), fresh


def _front_end(fn, verbose, numeric):
    unit = parse.parse_function(fn)
    fence.check(unit)
    stored = n.stored_names(unit.tree) | {a.id for a in unit.tree.args.args}
    for bad in RESERVED:
        if bad in stored:
            raise error_at(unit.tree, f'codax reserves the name {bad!r} for generated code; '
                           'rename this variable', unit)
    _dump(verbose, 'parse', unit.tree)
    fdef, fresh = normalize_pass.normalize(unit, numeric=numeric)
    _dump(verbose, 'normalize', fdef)
    return unit, fdef, fresh


def compile_reverse(fn, mode, argnums, numeric, has_aux, label, verbose=False,
                    holomorphic=False, complex_inputs=False):
    """Reverse-mode derivative of `fn`.

    mode: 'grad', 'value_and_grad' (one function) or 'vjp' (a forward function
    returning (output, tape) and a backward function (tape, cotangent) ->
    adjoints of every parameter). `argnums`: the differentiated parameters,
    an int for one gradient or a sequence for a tuple of them (even of one), as
    in JAX; `numeric`: indices of parameters that are arrays or numbers.
    `holomorphic`: grad of a complex output (JAX's flag); `complex_inputs`: an
    argument is complex, so even a full reduction's output is checked for
    being real.
    """
    active = [argnums] if isinstance(argnums, int) else list(argnums)
    unit, fdef, fresh = front_end(fn, verbose, numeric)
    params = [a.id for a in fdef.args.args]
    result = reverse.differentiate(fdef, [params[i] for i in active],
                                   [params[i] for i in numeric], unit, fresh)
    _dump(verbose, 'reverse_ad (primal)', n.function('primal', params, result.primal))
    _dump(verbose, 'reverse_ad (adjoint)', n.function('adjoint', [], result.adjoint))
    if mode == 'vjp':
        functions = _vjp_functions(unit, fdef, result, params, fresh)
    else:
        functions = [_grad_function(unit, fdef, result, params, active, mode, has_aux, fresh,
                                    tuple_grads=not isinstance(argnums, int),
                                    holomorphic=holomorphic, complex_inputs=complex_inputs)]
    for f in functions:
        optimize(f)
    generated = emit(unit, functions, label, verbose)
    if result.stack in result.needed:     # the batch pass reads the tape's pops (batch.py)
        if len(TAPES) > 4096:
            TAPES.clear()
            LOCAL_TAPES.clear()
        for f in functions:
            TAPES[(f'<codax {label}>', f.name)] = result.stack
    return generated


# (generated file, function name) -> the name of the list that is its tape:
# values pushed from a name are popped back into that name.
TAPES = {}


def _inherit_tape(unit, fdef, generated, label, function):
    """The jvp or batching of code with a tape keeps its pushes and pops (a
    value pushed from a name is popped back into it): its output has that tape
    too, so vmap(hessian(f)) batches it as vmap(grad(f)) does (batch.py)."""
    key = (getattr(unit, 'filename', None), fdef.name)
    tape = TAPES.get(key) or LOCAL_TAPES.get(key)
    if tape is not None:
        LOCAL_TAPES[(f'<codax {label}>', function.name)] = tape
    return generated


# The same for the jvp or batching of such code, where the batch pass reads its
# tape's pushes and pops only if the tape stays in the function (batch.py).
LOCAL_TAPES = {}


def compile_forward(fn, active, numeric, has_aux, label, verbose=False):
    """Forward-mode derivative of `fn`: jvp_f(*params, *tangents of the active
    params) -> (output, output tangent)."""
    unit, fdef, fresh = front_end(fn, verbose, numeric)
    params = [a.id for a in fdef.args.args]
    result = forward.differentiate(fdef, [params[i] for i in active],
                                   [params[i] for i in numeric], unit, fresh)
    ret, tangent = result.ret, result.tangent
    if has_aux:           # the tangent of the output, not of the aux data
        tangent = n.call('rt.item', [tangent, n.const(0)])
        primal = n.subscript(ret, n.const(0))
    else:
        primal = ret
    out = n.tuple_([ret, n.call('rt.finalize', [tangent, primal])])
    body = result.body + [n.return_(out)]
    function = n.function(f'jvp_{unit.name}', params + result.tangent_params, body)
    function = n.copy_location(function, fdef)
    function.args.defaults = []
    _dump(verbose, 'forward_ad', function)
    optimize(function)
    return _inherit_tape(unit, fdef, emit(unit, [function], label, verbose), label, function)


def compile_batch(fn, param_axes, out_axes, infos_of, label, callee_info=None, verbose=False):
    """Batched `fn`: vmap_f(*params) with each param batched along its axes
    (a JAX in_axes prefix per parameter) and the output along `out_axes`.
    `infos_of(fdef params)` gives the compile-time Info of each parameter once
    its batch axis is first."""
    unit, fdef, fresh = front_end(fn, verbose)
    params = [a.id for a in fdef.args.args]
    result = batch_pass.batch(fdef, infos_of(params), unit, fresh, callee_info)
    start = []
    for p, axes in zip(params, param_axes):
        if _front(axes) != axes:             # the batch axis goes first
            start.append(n.assign(p, n.call('rt.moveaxes', [n.name(p), _literal(axes),
                                                            n.const(True)])))
    batched = [(p, axes) for p, axes in zip(params, param_axes) if _any_batched(axes)]
    if batched:
        p, axes = batched[0]
        start.append(n.assign(result.size_name, n.call('rt.batch_size', [n.name(p), _literal(
            _front(axes))])))
    ret, info = result.ret, result.info
    end = []
    known = info.elts is None and info.item is None and info.rank is not None  # an array
    if known and isinstance(out_axes, int):
        if not info.batched:
            end.append(n.assign('_out', n.call('rt.broadcast_batch', [ret, n.name(
                result.size_name)])))
            ret = n.name('_out')
        if out_axes != 0:
            end.append(n.assign('_out', n.call('xp.moveaxis', [ret, n.const(0),
                                                               n.const(out_axes)])))
            ret = n.name('_out')
    elif info.elts is None and info.item is None and out_axes is None:
        if info.batched:
            raise error_at(fdef.body[-1], 'vmap: out_axes is None, but the output differs '
                           'between examples', unit)
    elif info.elts is not None and info.axes() == out_axes:
        pass                       # every leaf already where out_axes asks
    else:                          # (also an output whose kind is seen only at run time)
        end.append(n.assign('_out', n.call('rt.batch_outputs', [ret, _literal(info.axes()),
                                                                _literal(out_axes),
                                                                n.name(result.size_name)])))
        ret = n.name('_out')
    body = result.body + end + [n.return_(ret)]
    if not any(result.size_name in n.names_in(stmt) for stmt in body):
        start = [s for s in start if s.targets[0].id != result.size_name]
    body = start + body
    function = n.copy_location(n.function(f'vmap_{unit.name}', params, body), fdef)
    function = _with_defaults(function, fdef, unit)
    _dump(verbose, 'batch', function)
    optimize(function)
    generated = _inherit_tape(unit, fdef, emit(unit, [function], label, verbose), label,
                              function)
    generated.branches = result.branches
    return generated, result.info


def compile_jit(fn, arg_types, backend, label, callee_type=None, verbose=False):
    """`fn` with its element-wise chains fused into kernels for `backend`
    ('numpy': C compiled for the CPU; 'cupy': CUDA). `arg_types`: the
    dtypes.Type of each parameter (None where not an array or number);
    `callee_type(f, types)`: the result type of a user function f that `fn`
    calls, jitted for those argument types."""
    unit, fdef, fresh = front_end(fn, verbose)
    _with_defaults(fdef, fdef, unit)
    optimize(fdef)
    fused, returned = fuse_pass.fuse(fdef, arg_types, unit.name, callee_type, unit)
    fdef.name = f'jit_{unit.name}'
    _dump(verbose, 'fuse', fdef)
    prelude = [kernels.definition(kernel, fallback, backend) for kernel, fallback in fused]
    generated = emit(unit, [fdef], label, verbose, prelude)
    generated.kernels = [kernel for kernel, _ in fused]
    generated.fallbacks = {kernel.name: n.to_source(fallback) for kernel, fallback in fused}
    generated.returned = returned
    return generated


def _literal(value):
    if isinstance(value, (tuple, list)):
        return n.tuple_([_literal(v) for v in value])
    if isinstance(value, dict):
        return n.Dict(keys=[n.const(k) for k in value], values=[_literal(v) for v in value.values()])
    return n.const(value)


def _any_batched(axes):
    if isinstance(axes, (tuple, list)):
        return any(_any_batched(a) for a in axes)
    if isinstance(axes, dict):
        return any(_any_batched(a) for a in axes.values())
    return axes is not None


def _front(axes):
    """The same axes prefix once every batch axis has been moved to 0."""
    if isinstance(axes, (tuple, list)):
        return tuple(_front(a) for a in axes)
    if isinstance(axes, dict):
        return {k: _front(a) for k, a in axes.items()}
    return None if axes is None else 0


def _seed(fdef, result, has_aux, holomorphic, complex_inputs):
    ret = result.ret
    seed = n.call('rt.seed_aux' if has_aux else 'rt.seed',
                  [ret] + ([n.const(True)] if holomorphic else []))
    if not (isinstance(ret, n.Name) and ret.id in result.adjoint_of
            and result.adjoint_of[ret.id] in result.initialized):
        return [n.expr_stmt(seed)]
    if not has_aux and not complex_inputs and _is_full_reduction(fdef, ret.id):
        seed = n.const(1.0)          # a full reduction of real values is a real scalar
    return [n.assign(result.adjoint_of[ret.id], seed)]


def _is_full_reduction(fdef, name):
    from .analysis import assignments
    from .ir import describe
    defs = [s for s, _ in assignments(fdef.body) if s.targets[0].id == name]
    if len(defs) != 1:
        return False
    op = describe(defs[0].value)
    if op.kind != 'prim' or op.prim.name not in FULL_REDUCTIONS:
        return False
    axis, keep = op.inputs.get('axis'), op.inputs.get('keepdims')
    none = lambda node: node is None or (isinstance(node, n.Constant) and node.value is None)  # noqa
    falsy = lambda node: node is None or (isinstance(node, n.Constant) and not node.value)  # noqa
    return none(axis) and falsy(keep)


def _adjoint_or_zero(result, name):
    adjoint = result.adjoint_of.get(name)
    if adjoint is None or adjoint not in result.initialized:
        return n.const(0.0)
    return n.name(adjoint)


def _grad_function(unit, fdef, result, params, active, mode, has_aux, fresh, tuple_grads,
                   holomorphic, complex_inputs):
    grads = [n.call('rt.finalize', [_adjoint_or_zero(result, params[i]), n.name(params[i])])
             for i in active]
    grads_value = n.tuple_(grads) if tuple_grads else grads[0]
    if len(grads) > 1:
        grads_value = n.call('rt.finalize_distinct', [grads_value])
    keep = []                 # the adjoint sweep restores variables: copy the output first
    ret = result.ret
    if isinstance(ret, n.Name) and (mode == 'value_and_grad' or has_aux):
        keep = [n.assign(fresh('_value'), ret)]
        ret = n.name(keep[0].targets[0].id)
    if mode == 'grad':
        out = n.tuple_([grads_value, n.subscript(ret, n.const(1))]) if has_aux else grads_value
    else:
        out = n.tuple_([ret, grads_value])
    body = (result.primal + keep + _seed(fdef, result, has_aux, holomorphic, complex_inputs) + result.adjoint
            + [n.return_(out)])
    name = f'{mode}_{unit.name}'
    return _with_defaults(n.copy_location(n.function(name, params, body), fdef), fdef, unit)


def _vjp_functions(unit, fdef, result, params, fresh):
    tape_names = sorted(result.needed)
    maybe_unbound = _conditionally_assigned(result.primal) & set(tape_names) - set(params)
    start = [n.assign(v, n.const(None)) for v in sorted(maybe_unbound)]
    tape = n.tuple_([n.name(v) for v in tape_names])
    fwd_body = start + result.primal + [n.return_(n.tuple_([result.ret, tape]))]
    fwd = _with_defaults(n.function(f'vjp_fwd_{unit.name}', params, fwd_body), fdef, unit)
    ret = result.ret
    seed_name = result.adjoint_of.get(ret.id) if isinstance(ret, n.Name) else None
    seed_param = seed_name or fresh('_ct')
    tape_param = fresh('_tape')
    unpack = []
    if tape_names:
        unpack.append(n.Assign(targets=[n.tuple_([n.name(v, store=True) for v in tape_names],
                                                 store=True)],
                               value=n.name(tape_param), type_comment=None))
    if result.stack in tape_names:           # the pullback may be called again
        unpack.append(n.assign(result.stack, n.call('rt.copy', [n.name(result.stack)])))
    outs = n.tuple_([_adjoint_or_zero(result, p) for p in params])
    bwd_body = unpack + result.adjoint + [n.return_(outs)]
    bwd = n.function(f'vjp_bwd_{unit.name}', [tape_param, seed_param], bwd_body)
    return [n.copy_location(fwd, fdef), n.copy_location(bwd, fdef)]


def _with_defaults(function, fdef, unit):
    """The user's parameter defaults, evaluated (like theirs) in their module,
    for calls that leave them out. One naming what generated code cannot see
    (a local of the function that made a closure, evaluated when it ran and
    held by no cell) is left out, with those before it: codax's entry points
    pass such parameters, with the user function's default values."""
    defaults = fdef.args.defaults
    visible = set(unit.globals) | set(unit.fn.__code__.co_freevars) | set(dir(builtins))
    first = 0
    for i, default in enumerate(defaults):
        if not n.names_in(default) <= visible:
            first = i + 1
    function.args.defaults = [n.deepcopy(d) for d in defaults[first:]]
    return function


def _conditionally_assigned(stmts):
    out = set()
    for stmt in stmts:
        if isinstance(stmt, (n.If, n.For, n.While)):
            out |= n.stored_names(stmt)
    return out


# ---- emit ----

def _with_comments(stmts, unit, last=None):
    """Insert a comment naming the user's line before each group of statements."""
    out = []
    for stmt in stmts:
        line = getattr(stmt, 'user_line', None)
        group = (line, getattr(stmt, 'codax_adjoint', False))
        if line is not None and group != last:
            text = linecache.getline(unit.filename, line).strip()
            tag = f'adjoint of line {line}' if group[1] else f'line {line}'
            out.append(n.comment(f'{tag}: {text}' if text else tag))
            last = group
        for field in ('body', 'orelse'):
            if isinstance(stmt, (n.If, n.For, n.While)) and getattr(stmt, field):
                setattr(stmt, field, _with_comments(getattr(stmt, field), unit, last))
        out.append(stmt)
    return out


def emit(unit, functions, label, verbose=False, prelude=()):
    """Stage 7: source text, registered in linecache, executed into a factory.
    `prelude`: source run once before the functions are defined (kernels)."""
    texts = list(prelude)
    for f in functions:
        f.body = _with_comments(f.body, unit)
        texts.append(n.render_comments(n.to_source(f)).rstrip() + '\n')
    for lifted in unit.lifted:           # closures, as the user wrote them (closures.py)
        texts.append(f'# {lifted.name}: a closure in {unit.name} '
                     f'({os.path.basename(unit.filename)}:{lifted.lineno}), lifted\n'
                     + n.to_source(lifted).rstrip() + '\n')
    header = (f'# codax: {label}, generated from {unit.name} '
              f'({os.path.basename(unit.filename)}:{unit.tree.lineno})\n')
    source = header + '\n\n'.join(texts)
    _dump(verbose, 'emit', source)
    free = [name for name in unit.fn.__code__.co_freevars if name not in RESERVED]
    factory_text = _factory_text(source, free, [f.name for f in functions])
    filename = f'<codax {label}>'
    linecache.cache[filename] = (len(factory_text), None, factory_text.splitlines(True), filename)
    try:
        module = compile(factory_text, filename, 'exec')
    except SyntaxError as exc:           # a codax bug, but show where
        raise SourceError(f'internal error: generated code does not compile: {exc}',
                          filename, exc.lineno) from exc
    factory_code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    _register_lifted(unit, factory_code)
    return Generated(source, factory_code, free, [f.name for f in functions],
                     sorted(unit.guards.items()))


def _register_lifted(unit, factory_code):
    """Let parse read each lifted closure back as the user's tree and file."""
    trees = {f.name: f for f in unit.lifted}
    for code in factory_code.co_consts:
        if isinstance(code, types.CodeType) and code.co_name in trees:
            closures.LIFTED[code] = (trees[code.co_name], unit.filename)


def _factory_text(source, free, entry_names):
    params = ', '.join(['xp', 'rt'] + free)
    body = ''.join('    ' + line if line.strip() else line
                   for line in source.splitlines(True))
    returns = ''.join(name + ', ' for name in entry_names)
    return f'def _codax_factory({params}):\n{body}\n    return ({returns})\n'
