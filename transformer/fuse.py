"""The fusion pass: chains of element-wise operations become one kernel.

It runs on normalized, optimized code and rewrites each basic block (a run of
statements without control flow; loops and ifs stay Python, and their bodies
are blocks of their own). Walking a block in order it keeps one open
element-wise *group*:

- an element-wise primitive with a C expression (`runtime` records'
  `c_expr`), on at least one array of known dtype, joins the group;
- a reduction (sum, mean, max, min, prod, var, std with constant axis,
  keepdims and ddof) of a value the group computes joins it (not a max or
  min of a value that code which does not fuse reads: _read_unfused), and so
  does one over trailing axes of a value from before the group (softmax's
  row max);
- a copy `a = b` of a value the group computes (normalize leaves one where a
  temporary is assigned to a named variable) joins it as a new name for that
  value: the group's later statements read `b` for `a`, and the copy runs
  after the group's kernels, if code after the group reads `a`;
- before the walk, a reduction without keepdims whose result, and the
  element-wise work on it (`np.log(s)`), only ever get their reduced axes put
  back (`m[:, None]`, `m[..., None]`, `np.expand_dims`, a `reshape` adding
  unit axes) becomes keepdims=True and each such statement a copy
  (_row_chains), so that the block is the keepdims spelling and fuses as it
  does;
- any other statement is hoisted above the group when it neither reads what
  the group writes nor writes what the group reads or writes; otherwise the
  group is closed first.

Closing a group splits it into connected parts (statements that share a value
the group writes). A part in which reductions over the same trailing axes
feed element-wise work on the same rows (softmax, logsumexp, layer norm)
becomes one row-wise kernel: each row runs the reductions and the work they
feed while it is in cache. Otherwise each reduction of a group value becomes
a reduction kernel of its own that recomputes the value's element-wise slice,
so the reduced array is never written to memory (XLA does the same:
recomputing is cheaper than traffic); a reduction of a value from before the
group stays the NumPy call it was; and the element-wise statements become one
kernel a part, whose outputs are the values that code after the group reads
(at the function's top level exactly; inside a loop or branch, any read
outside the group counts, and in a loop what the next trip reads). Kernels read
only the values their inputs had when the group opened (and the results of
the calls before them), which is why the row-wise kernels' and reductions'
calls come first. A group of one operation stays a NumPy call. What the
kernels leave unread (an axis tuple only a fused reduction read) is removed
at the end.

Each kernel is a backend-neutral `kernels.Kernel`; `kernels.cuda` or
`kernels.c` prints the definition that goes at the top of the generated
source, with a NumPy `fallback` function (the group's own statements) for
layouts a compiled CPU kernel does not serve.
"""
import keyword
import re
import types

import numpy

from . import nodes as n
from .dtypes import Type, infer, join, operation, type_of_value
from .kernels import Kernel, Reduction, RowReduction, Step, Value, c_literal, c_type
from .kernels import c as c_backend, cuda as cuda_backend
from .optimize import propagate_copies, remove_dead_code

REDUCTIONS = {'sum': 'sum', 'mean': 'mean', 'max': 'max', 'amax': 'max', 'min': 'min',
              'amin': 'min', 'prod': 'prod', 'var': 'var', 'std': 'std'}
_C_RESERVED = set(keyword.kwlist) | {
    'i', 'n', 'int', 'float', 'double', 'char', 'short', 'long', 'signed', 'unsigned', 'bool',
    'void', 'auto', 'const', 'static', 'struct', 'union', 'switch', 'case', 'default', 'goto',
    'do', 'register', 'sizeof', 'typedef', 'volatile', 'extern', 'enum', 'true', 'false',
    'half', 'size_t', 'inline', 'restrict'}
_C_RESERVED |= c_backend.RESERVED | cuda_backend.RESERVED
_DERIVED = re.compile(r'_(data|step|fill|b)$|^repeat_')     # the C back end's per-operand names
# Casting an operand would change these operations' meaning.
_UNCAST = {'condition'}


def fuse(fdef, arg_types, prefix, callee_type=None, unit=None):
    """Rewrite `fdef` in place; return the kernels in order of appearance,
    and the Type of the returned value (or None).

    Calls to the user's own functions become calls of their jitted versions
    (`rt.kernels.jitted(f)(...)`), fused in turn, as JAX's jit traces through
    them; `callee_type(f, types)` gives such a call's result type, generating
    the callee's code for those types."""
    if unit is not None:
        _resolve_globals(fdef, unit)
    env = {a.id: t for a, t in zip(fdef.args.args, arg_types) if t is not None}
    fuser = _Fuser(fdef, prefix, callee_type)
    if fuser.keep_dims(fdef.body, env):   # at the top level, `_t0 = m` copies then go
        propagate_copies(fdef)
        fuser = _Fuser(fdef, prefix, callee_type)
    fdef.body, env = fuser.block(fdef.body, env, in_loop=False)
    remove_dead_code(fdef)              # what only the fused statements read
    ret = fdef.body[-1]
    returned = _type(ret.value, env) if isinstance(ret, n.Return) else None
    return fuser.kernels, returned


def _resolve_globals(fdef, unit):
    """Global numbers become constants (`np.pi`, a module's `SCALE`: guarded,
    so rebinding one makes new code), other globals (`np.float32`) carry their
    value for type inference; closure variables are read at run time."""
    local = {a.id for a in fdef.args.args} | {x.id for x in n.walk(fdef)
                                              if isinstance(x, n.Name) and
                                              isinstance(x.ctx, n.Store)}

    def value_of(node):
        if isinstance(node, n.Name):
            if node.id in local or node.id in unit.closure or node.id == 'rt':
                raise LookupError
            if node.id == 'xp':              # dtypes and constants are NumPy's on either backend
                return numpy
            found, value = unit.lookup(node.id)
            if not found:
                raise LookupError
            return value
        if isinstance(node, n.Attribute) and getattr(node, 'codax_static', False):
            return getattr(value_of(node.value), node.attr)
        raise LookupError

    class Inline(n.NodeTransformer):
        def visit_Name(self, node):
            return self.static(node)

        def visit_Attribute(self, node):
            return self.static(node) if getattr(node, 'codax_static', False) else \
                self.generic_visit(node)

        def visit_Call(self, node):        # callees stay as they are
            node.args = [self.visit(a) for a in node.args]
            node.keywords = [self.visit(k) for k in node.keywords]
            return node

        def static(self, node):
            if not isinstance(node.ctx, n.Load):
                return node
            try:
                value = value_of(node)
            except (LookupError, AttributeError):
                return node
            if type(value) in (int, float, bool):
                if isinstance(node, n.Name):
                    unit.guards[node.id] = value
                return n.const(value)
            node.codax_static, node.codax_value = True, value
            return node
    for stmt in _statements(fdef.body):
        if isinstance(stmt, n.Assign):
            stmt.value = Inline().visit(stmt.value)


def _read_counts(fdef):
    counts = {}
    for stmt in _statements(fdef.body):
        for name in _reads(stmt):
            counts[name] = counts.get(name, 0) + 1
    return counts


def _store_counts(fdef):
    """How many times each name is bound in the function."""
    counts = {}
    for node in n.walk(fdef):
        if isinstance(node, n.Name) and isinstance(node.ctx, n.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
    return counts


def _constant_tuples(fdef):
    """Names assigned once, to a tuple of constants."""
    counts, tuples = _store_counts(fdef), {}
    for stmt in _statements(fdef.body):
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name) \
                and isinstance(stmt.value, n.Tuple) \
                and all(isinstance(e, n.Constant) for e in stmt.value.elts):
            tuples[stmt.targets[0].id] = stmt.value
    return {k: v for k, v in tuples.items() if counts.get(k) == 1}


def _live_out(body):
    """For each statement of the function's top level (by id), the names that
    the statements after it read (a compound statement: whatever it reads
    anywhere inside, and its bindings may not happen)."""
    live, out = set(), {}
    for stmt in reversed(body):
        out[id(stmt)] = set(live)
        if not isinstance(stmt, (n.If, n.For, n.While)):
            live -= _stores(stmt)
        live |= n.names_in(stmt)
    return out


def _read_unfused(body):
    """The names that statements which never fuse read (a call, a return).
    A max or min of such a value that the group computes is not recomputed
    by a kernel: the value that code reads comes from memory, and the
    gradient's `rt.extremum_vjp` finds the maximum by `x == max`, which a
    recomputation need not satisfy bit for bit (NumPy's tanh, which small
    calls run, and the C library's differ in the last bit)."""
    names = set()
    for stmt in _statements(body):
        found = operation(stmt.value) if isinstance(stmt, n.Assign) else None
        fuses = isinstance(stmt, n.Assign) and isinstance(stmt.value, n.Name) or \
            found is not None and (getattr(found[0], 'c_expr', None) is not None
                                   or found[0].name in REDUCTIONS)
        if not fuses:
            names |= _reads(stmt)
    return names


def _statements(body):
    """Every statement, with compound statements' own tests (not their bodies)."""
    for stmt in body:
        yield stmt
        for field in ('body', 'orelse'):
            if isinstance(stmt, (n.If, n.For, n.While)):
                yield from _statements(getattr(stmt, field))


def _reads(stmt):
    if isinstance(stmt, (n.If, n.While)):
        return n.names_in(stmt.test)
    if isinstance(stmt, n.For):
        return n.names_in(stmt.iter)
    return n.names_in(stmt)


def _stores(stmt):
    return n.stored_names(stmt)


class _Fuser:
    def __init__(self, fdef, prefix, callee_type):
        body = fdef.body
        self.callee_type = callee_type
        self.tuples = _constant_tuples(fdef)
        self.stores = _store_counts(fdef)
        self.reads = _read_counts(fdef)
        self.prefix = prefix
        self.kernels = []
        self.position = {id(stmt): k for k, stmt in enumerate(_statements(body))}
        self.live_out = _live_out(body)
        self.compared = _read_unfused(body)

    # ---- blocks ----

    def block(self, body, env, in_loop):
        self.keep_dims(body, env)
        out, group = [], _Group(in_loop)
        for stmt in body:
            if isinstance(stmt, (n.If, n.For, n.While)):
                out += self.close(group)
                group = _Group(in_loop)
                env = self.compound(stmt, env)
                out.append(stmt)
                continue
            if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name):
                name = stmt.targets[0].id
                if isinstance(stmt.value, n.Name) and group.alias.get(stmt.value.id) == name:
                    self.reads[stmt.value.id] -= 1  # `m = _t0` after `_t0 = m`: m is unchanged
                    continue
                if name in group.alias.values():    # a copy of the group needs the old value
                    out += self.close(group)
                    group = _Group(in_loop)
                result = _infer(stmt.value, env) or self.user_call(stmt, env)
                if self.copy(stmt, result, group):
                    env = {**env, name: result}
                    continue
                if self.elementwise(stmt, env, result):
                    self.rename(stmt, group)
                    group.add(stmt, env, result)
                    env = {**env, name: result}
                    continue
                if self.reduction(stmt, env, result, group):
                    env = {**env, name: result}
                    continue
                env = {k: t for k, t in env.items() if k != name}
                if result is not None:
                    env[name] = result
            else:
                env = {k: t for k, t in env.items() if k not in _stores(stmt)}
            if not group.nodes:
                out.append(stmt)
            elif group.allows_before(stmt):
                group.hoisted.append(stmt)
            else:
                out += self.close(group)
                group = _Group(in_loop)
                out.append(stmt)
        out += self.close(group)
        return out, env

    def compound(self, stmt, env):
        """Fuse inside an if or loop; the types after it hold on every path."""
        if isinstance(stmt, n.If):
            stmt.body, after_body = self.block(stmt.body, dict(env), False)
            stmt.orelse, after_else = self.block(stmt.orelse, dict(env), False)
            return join(after_body, after_else)
        entry = env
        if isinstance(stmt, n.For):
            entry = {**env, stmt.target.id: Type(numpy.dtype(numpy.int64), None)}
        stable = join(entry, _flow(stmt.body, dict(entry)))   # what a second trip sees
        stmt.body, after = self.block(stmt.body, dict(stable), True)
        return join(env, join(stable, after))

    def user_call(self, stmt, env):
        """Jit a call to a user function (also one held in a variable, such as
        lax.fori_loop's body); its result type, if known."""
        call = stmt.value
        info = getattr(call, 'codax', None)
        fn = getattr(info, 'obj', None)
        if self.callee_type is None or not isinstance(call, n.Call) or info is None \
                or info.kind not in ('user', 'dynamic'):
            return None
        # (the hook leaves alone what jit does not apply to: see codax/jit.py)
        call.func = n.Call(func=n.dotted('rt.kernels.jitted'), args=[call.func], keywords=[])
        if call.keywords or not isinstance(fn, types.FunctionType):
            return None
        arg_types = [_type(a, env) for a in call.args]
        return self.callee_type(fn, arg_types) if None not in arg_types else None

    # ---- what joins a group ----

    def copy(self, stmt, result, group):
        """A copy `a = b` of a value the group computes joins it as a new name
        for that value (_Group.add_copy) instead of closing it."""
        if result is None or not isinstance(stmt.value, n.Name):
            return False
        source = group.alias.get(stmt.value.id, stmt.value.id)
        if source not in group.stored or source == stmt.targets[0].id:
            return False
        self.rename(stmt, group)
        group.add_copy(stmt, source)
        return True

    def rename(self, stmt, group):
        """Reads of a copy's target in `stmt`, which joins the group, become
        reads of the value the copy names, since the copy itself runs only
        after the group. (A statement that does not join reads the target
        after the group, and so keeps the copy.)"""
        renamed = [node for node in n.walk(stmt.value) if isinstance(node, n.Name)
                   and isinstance(node.ctx, n.Load) and node.id in group.alias]

        def change():
            for node in renamed:
                node.id = group.alias[node.id]
        if renamed:
            self.edit(stmt, change)

    def keep_dims(self, body, env):
        """Rewrite `body` (a block, with the types `env` on entry) into the
        keepdims=True spelling where its reductions' axes are put back by
        hand (_row_chains): the reductions get keepdims=True and each
        `name = m[:, None]` (or `m[..., None]`, `np.expand_dims`, a `reshape`
        adding unit axes) becomes the copy `name = m`, so that the block fuses
        as that spelling does (one row-wise kernel for a log-softmax).
        Whether it rewrote anything."""
        chains = _row_chains(body, env, self.reads, self.stores, self.tuples)
        for chain in chains:
            for stmt in chain.reductions:
                _set_keepdims(stmt.value)
            for stmt, source in chain.put_backs:
                self.edit(stmt, lambda stmt=stmt, source=source:
                          setattr(stmt, 'value', n.name(source)))
        return bool(chains)

    def edit(self, stmt, change):
        """Apply `change()` to `stmt`, keeping the read counts (liveness) true."""
        for name in _reads(stmt):
            self.reads[name] -= 1
        change()
        for name in _reads(stmt):
            self.reads[name] = self.reads.get(name, 0) + 1

    def elementwise(self, stmt, env, result):
        found = operation(stmt.value)
        if found is None or not isinstance(result, Type) or not result.is_array \
                or not c_type(result.dtype):
            return False
        prim, inputs = found
        if _c_expression(prim, inputs) is None:
            return False
        operands = _operands(prim, inputs)
        types = [_type(node, env) for node in operands.values()]
        return all(isinstance(t, Type) and c_type(t.dtype) for t in types) \
            and any(t.is_array for t in types)

    def reduction(self, stmt, env, result, group):
        """A reduction joins the group, to be emitted when it closes (see the
        module docstring): one of a value the group computes, or one over
        trailing axes (a row-wise kernel's) of an array from before it."""
        found = operation(stmt.value)
        if found is None or not isinstance(result, Type) or found[0].name not in REDUCTIONS:
            return False
        prim, inputs = found
        a = inputs.get('a')
        value = group.alias.get(a.id, a.id) if isinstance(a, n.Name) else None
        if value is None or value in group.reduced:
            return False
        t = env.get(value)
        if not isinstance(t, Type) or not t.is_array or not c_type(t.dtype):
            return False
        spec = _reduction_spec(inputs, t.ndim, self.tuples)
        target = stmt.targets[0].id
        if spec is None or target in group.read or target in group.stored \
                or not c_type(result.dtype):
            return False
        inner = value in group.stored
        if inner and REDUCTIONS[prim.name] in ('max', 'min') and value in self.compared:
            return False
        reduce = _Reduce(stmt, REDUCTIONS[prim.name], value, spec, t.ndim, result,
                         group.slice(value) if inner else None)
        if not inner and reduce.trailing is None:
            return False
        self.rename(stmt, group)
        group.add_reduction(reduce, env)
        return True

    # ---- closing a group ----

    def close(self, group):
        """The code of a closed group: the statements hoisted above it, then
        its kernels' calls and what stays NumPy; in the block's own order
        where it made no kernel (moving statements would gain nothing)."""
        if not group.nodes:
            return []
        made = len(self.kernels)
        out = self.group_code(group)
        if len(self.kernels) == made:
            return sorted(group.hoisted + out, key=lambda stmt: self.position[id(stmt)])
        return group.hoisted + out

    def group_code(self, group):
        """The group's kernel calls, the statements of it that stay NumPy,
        and its live copies."""
        copies = self.live_copies(group)
        live = self.live(group)
        rows = self.row_parts(group, live)
        in_rows = {id(stmt) for part, _ in rows for stmt in part}
        rest = [stmt for stmt in group.nodes if id(stmt) not in in_rows]
        # What the other kernels read, also through the slices the reduction
        # kernels recompute (which may run through a row part's statements).
        read_by_rest = set().union(*[_reads(stmt) for stmt in rest],
                                   *[_free_reads(reduce.statements or [])
                                     for reduce in group.reductions
                                     if id(reduce.stmt) not in in_rows])
        out = []
        for part, trailing in rows:             # they read only values from before the group
            stored = _stored(part)
            outputs = [name for name in group.order
                       if name in stored and (name in live or name in read_by_rest)]
            for name in outputs:                # read by the rest's kernels
                group.types[('in', name)] = group.types[('out', name)]
            kernel, fallback = self.build_rows(part, outputs, group, trailing)
            out.append(self.emit(kernel, fallback, outputs, part[-1],
                                 [s for s in part if id(s) in group.reduce_of]))
        for reduce in group.reductions:
            if id(reduce.stmt) not in in_rows:
                out.append(self.reduction_kernel(reduce, group) if reduce.statements is not None
                           else reduce.stmt)      # the NumPy call, as written
        rest = [stmt for stmt in group.statements if id(stmt) not in in_rows]
        written = _stored(rest)
        last = {stmt.targets[0].id: stmt for stmt in group.nodes}
        live = [name for name in live if name in written     # its last value, not a row part's
                and id(last[name]) not in in_rows]
        for part in _components(_slice(rest, live), written):
            outputs = [name for name in live if name in part.stored]
            if len(part.statements) < 2:
                out += part.statements
                continue
            kernel, fallback = self.build(part.statements, outputs, group.types)
            self.kernels.append((kernel, fallback))
            out.append(self.call(kernel, outputs, part.statements[-1]))
        for stmt in copies:
            _place_copy(out, stmt)
        return out

    def live(self, group, names=None):
        """The names among `names` that code after the group reads (or, in a
        loop, the next trip); by default the group's values, less those whose
        last binding is a copy (the copy gives them). At the function's top
        level that is exact (_live_out); elsewhere any read outside the group,
        also one before it, counts."""
        if names is None:
            names = [name for name in group.order if name not in group.alias]
        last = max(group.nodes + group.copies, key=lambda stmt: self.position[id(stmt)])
        after = self.live_out.get(id(last))
        if after is not None:                  # and the copies after the kernels read
            return [name for name in names
                    if name in after or any(stmt.value.id == name for stmt in group.copies)]
        read_inside = {}
        for stmt in group.nodes:
            for name in _reads(stmt):
                read_inside[name] = read_inside.get(name, 0) + 1
        return [name for name in names
                if self.reads.get(name, 0) > read_inside.get(name, 0)
                or group.in_loop and name in group.read_first]

    def live_copies(self, group):
        """The group's copies that give live targets their last values, in
        order; the others are dropped, so that the values they copy need not
        be kernel outputs."""
        current = group.current_copies()
        live = set(self.live(group, [stmt.targets[0].id for stmt in current]))
        kept = {id(stmt) for stmt in current if stmt.targets[0].id in live}
        for stmt in group.copies:
            if id(stmt) not in kept:
                for name in _reads(stmt):
                    self.reads[name] -= 1
        group.copies = [stmt for stmt in group.copies if id(stmt) in kept]
        return group.copies

    def row_parts(self, group, live):
        """The parts of the group that become row-wise kernels (the statements
        each needs, in order), with the trailing axes their rows span. Within
        each connected part, the work on row values that no element-wise work
        needs (adding up losses) is left out, as is anything that does not
        fit (_row_kinds); what remains splits into connected cores, and one in
        which a row value (a reduction's result) feeds element-wise work is a
        row-wise kernel."""
        found, alone = [], []
        for part in _components(group.nodes, group.stored):
            needed = _slice(part.statements, [name for name in live if name in part.stored])
            if len(needed) == 1 and id(needed[0]) in group.reduce_of:
                alone.append(group.reduce_of[id(needed[0])])
                continue
            kinds = _row_kinds(needed, group)
            if kinds is None:
                continue
            for sub in _cores(needed, kinds, group):
                fed = any(kinds[id(s)] == 'element' and
                          any(kinds.get(name) == 'row' for name in _reads(s)) for s in sub)
                trailing = _row_axes(sub, group) if fed else None
                if trailing is not None and _fresh_outputs(sub, group):
                    found.append((sub, trailing))
        return [(_with_alone(needed, trailing, alone, group), trailing)
                for needed, trailing in found]

    def reduction_kernel(self, reduce, group):
        """The call of a reduction kernel of a group value, which recomputes
        the value's element-wise slice."""
        stmt = reduce.stmt
        axis, keepdims, ddof = reduce.spec
        kernel, fallback = self.build(reduce.statements, [reduce.value], group.types,
                                      reduction=Reduction(reduce.op, reduce.value,
                                                          reduce.result.dtype, axis, keepdims,
                                                          reduce.ndim, ddof),
                                      reduce_stmt=stmt)
        return self.emit(kernel, fallback, [reduce.target], stmt, [stmt])

    def emit(self, kernel, fallback, targets, where, reductions):
        """The call of a new kernel (at `where`'s line), which replaces the
        reduction statements `reductions`: the read counts follow, for the
        liveness of later groups' values."""
        self.kernels.append((kernel, fallback))
        call = self.call(kernel, targets, where)
        for stmt in reductions:
            for name in _reads(stmt):
                self.reads[name] -= 1
        for name in n.names_in(call.value):
            self.reads[name] = self.reads.get(name, 0) + 1
        return call

    def call(self, kernel, targets, where):
        args = [n.name(v.source) for v in kernel.inputs]
        func = n.name(f'_{kernel.name}')
        target = n.name(targets[0], store=True) if len(targets) == 1 else \
            n.tuple_([n.name(t, store=True) for t in targets], store=True)
        return n.copy_location(n.assign(target, n.Call(func=func, args=args, keywords=[])),
                               where)

    # ---- kernels ----

    def build(self, statements, outputs, types, reduction=None, reduce_stmt=None):
        """The Kernel computing `outputs` from `statements` (in SSA, with C
        names), and the NumPy fallback function doing the same."""
        name = f'{self.prefix}_k{len(self.kernels)}'
        steps = _Steps(types)
        for stmt in statements:
            steps.statement(stmt)
        comment = _comment(statements)
        if reduction is not None:
            reduction = Reduction(reduction.op, steps.current[reduction.value], reduction.dtype,
                                  reduction.axis, reduction.keepdims, reduction.ndim,
                                  reduction.ddof)
            out_value = Value(steps.names.fresh(reduce_stmt.targets[0].id + '_out'),
                              reduce_stmt.targets[0].id, reduction.dtype)
            kernel = Kernel(name, tuple(steps.inputs), (out_value,), tuple(steps.steps),
                            reduction=reduction, comment=comment)
            body = statements + [reduce_stmt]
            returns = [reduce_stmt.targets[0].id]
        else:
            outs, results = steps.outputs(outputs)
            arrays = {i for i, v in enumerate(steps.inputs) if not v.scalar}
            partial = tuple((k, tuple(sorted(steps.cone[source])))
                            for k, source in enumerate(outputs) if steps.cone[source] != arrays)
            kernel = Kernel(name, tuple(steps.inputs), outs, tuple(steps.steps), results,
                            comment=comment, partial=partial)
            body, returns = statements, list(outputs)
        return kernel, _fallback(name, kernel, body, returns, self.tuples)

    def build_rows(self, nodes, outputs, group, trailing):
        """The row-wise Kernel computing `outputs` from `nodes` (statements
        and reductions, in order), and its NumPy fallback (the nodes)."""
        name = f'{self.prefix}_k{len(self.kernels)}'
        steps = _Steps(group.types)
        for stmt in nodes:
            reduce = group.reduce_of.get(id(stmt))
            if reduce is None:
                steps.statement(stmt)
            else:
                steps.reduction(reduce)
        outs, results = steps.outputs(outputs)
        kernel = Kernel(name, tuple(steps.inputs), outs, tuple(steps.steps), results,
                        comment=_comment(nodes), trailing=trailing)
        return kernel, _fallback(name, kernel, nodes, outputs, self.tuples)


class _Steps:
    """A kernel's inputs and steps, built statement by statement: the
    statements' names become unique C names, a name read before the kernel
    writes it becomes an input, and `cone` records the array inputs each
    value depends on."""

    def __init__(self, types):
        self.types = types
        self.names = _CNames()
        self.inputs, self.steps = [], []
        self.current, self.typed, self.cone = {}, {}, {}

    def operand(self, name):
        if name not in self.current:
            t = self.types[('in', name)]
            self.current[name], self.typed[name] = self.names.fresh(name), t
            self.cone[name] = {len(self.inputs)} if t.is_array else set()
            self.inputs.append(Value(self.current[name], name, t.dtype, not t.is_array))
        return self.current[name]

    def statement(self, stmt):
        prim, nodes = operation(stmt.value)
        operands = [node.id for node in _operands(prim, nodes).values()
                    if isinstance(node, n.Name)]
        reads = tuple(dict.fromkeys(self.operand(name) for name in operands))
        result = self.types[id(stmt)]
        expr = _c_step(prim, nodes, result, lambda node: (self.current[node.id],
                                                           self.typed[node.id]))
        step = Step(self.define(stmt.targets[0].id, result, operands), result.dtype, expr, reads)
        self.steps.append(step)

    def reduction(self, reduce):
        value = self.operand(reduce.value)
        _, keepdims, ddof = reduce.spec
        local = self.define(reduce.target, reduce.result, [reduce.value])
        self.steps.append(RowReduction(local, reduce.op, value, reduce.result.dtype, keepdims,
                                       reduce.ndim, ddof))

    def define(self, target, result, operands):
        """A fresh C name for `target`, computed from `operands`."""
        self.cone[target] = set().union(*[self.cone[x] for x in operands])
        self.current[target], self.typed[target] = self.names.fresh(target), result
        return self.current[target]

    def outputs(self, sources):
        """Output Values for the Python names `sources`, and the (output, local) pairs."""
        outs, results = [], []
        for source in sources:
            out_name = self.names.fresh(source + '_out')
            outs.append(Value(out_name, source, self.types[('out', source)].dtype))
            results.append((out_name, self.current[source]))
        return tuple(outs), tuple(results)


def _comment(statements):
    lines = sorted({getattr(s, 'user_line', 0) or 0 for s in statements})
    lines = [line for line in lines if line]
    return ('line ' if len(lines) == 1 else 'lines ') + ', '.join(map(str, lines)) \
        if lines else ''


def _fallback(name, kernel, body, returns, tuples):
    """`_<name>_numpy`: the statements themselves, as a NumPy function of the
    kernel's inputs returning `returns`; an axis named by a tuple of constants
    (`tuples`) is spelt out, since the name is not among the inputs."""
    class Inline(n.NodeTransformer):
        def visit_Name(self, node):
            known = tuples.get(node.id)
            return n.deepcopy(known) if known is not None and isinstance(node.ctx, n.Load) \
                else node
    ret = n.name(returns[0]) if len(returns) == 1 else n.tuple_([n.name(r) for r in returns])
    return n.function(f'_{name}_numpy', [v.source for v in kernel.inputs],
                      [Inline().visit(n.deepcopy(s)) for s in body] + [n.return_(ret)])


class _Reduce:
    """A reduction in the open group, emitted when the group closes."""

    def __init__(self, stmt, op, value, spec, ndim, result, statements):
        self.stmt, self.op, self.value, self.spec = stmt, op, value, spec
        self.ndim, self.result = ndim, result
        self.target = stmt.targets[0].id
        # The group's statements computing `value` when the reduction came, or
        # None for a value from before the group.
        self.statements = statements
        self.trailing = _trailing(spec[0], ndim)


def _place_copy(out, copy):
    """Insert a group's copy `a = b` into `out` (the group's code) right
    after the last statement that computes `b` or touches `a` (a kernel that
    reads a's old value), so the code keeps the user's order where it can."""
    target, source = copy.targets[0].id, copy.value.id
    after = [k for k, stmt in enumerate(out)
             if source in _stores(stmt) or target in _reads(stmt) | _stores(stmt)]
    out.insert(max(after, default=-1) + 1, copy)


def _trailing(axis, ndim):
    """How many trailing axes `axis` (None: all) is, or None if it is not
    a run of trailing axes."""
    if axis is None:
        return ndim or None
    return len(axis) if tuple(axis) == tuple(range(ndim - len(axis), ndim)) else None


def _with_alone(part, trailing, alone, group):
    """A row part, with the lone reductions of an array it reads from before
    the group (`alone`, over the same axes) added: they come out of its pass
    over that array instead of another one."""
    stored = _stored(part)
    inputs = {name for stmt in part for name in _reads(stmt)} - stored
    joined = [r.stmt for r in alone if r.value in inputs and r.trailing == trailing
              and r.value not in stored and not (_reads(r.stmt) & stored)]
    for stmt in joined:
        alone.remove(group.reduce_of[id(stmt)])
    order = {id(stmt): k for k, stmt in enumerate(group.nodes)}
    return sorted(part + joined, key=lambda stmt: order[id(stmt)])


def _row_kinds(statements, group):
    """What each value among `statements` is in a row-wise kernel, by id of
    its statement and by name: 'element' (per element), 'row' (one a row: a
    reduction with keepdims or over every axis, or work on such values), or
    'out' (a reduction without keepdims over fewer than all axes: its shape
    does not broadcast against the rows, so it can only be an output). None
    where a statement reads an 'out' value or a reduction reduces anything
    but element values."""
    kinds = {}

    def kind(name):
        return kinds.get(name) or ('element' if group.types[('in', name)].is_array
                                   else 'scalar')
    for stmt in statements:
        reduce = group.reduce_of.get(id(stmt))
        if reduce is not None:
            if kind(reduce.value) != 'element' or reduce.trailing is None:
                return None
            found = 'row' if reduce.spec[1] or reduce.trailing == reduce.ndim else 'out'
        else:
            prim, nodes = operation(stmt.value)
            read = {kind(node.id) for node in _operands(prim, nodes).values()
                    if isinstance(node, n.Name)}
            if 'out' in read:
                return None
            found = 'element' if 'element' in read else 'row'
        kinds[id(stmt)] = kinds[stmt.targets[0].id] = found
    return kinds


def _cores(statements, kinds, group):
    """`statements` split into the parts that may each be one row-wise
    kernel. Work on row values that no element-wise work reads (the sum of
    two losses) does not tie parts together: it joins the one part whose
    values it reads, or, reading several, stays out (it runs as well after
    them); the rest splits into connected parts."""
    feeding = set()
    for stmt in reversed(statements):
        if id(stmt) not in group.reduce_of and (kinds[id(stmt)] == 'element'
                                                 or stmt.targets[0].id in feeding):
            feeding |= {name for name in _reads(stmt) if kinds.get(name) == 'row'}
    glue = [stmt for stmt in statements if id(stmt) not in group.reduce_of
            and kinds[id(stmt)] == 'row' and stmt.targets[0].id not in feeding]
    core = [stmt for stmt in statements if stmt not in glue]
    parts = [part.statements for part in _components(core, _stored(core))]
    home = {name: k for k, part in enumerate(parts) for name in _stored(part)}
    for stmt in glue:
        homes = {home[name] for name in _reads(stmt) if name in home}
        if len(homes) == 1:
            k = homes.pop()
            parts[k].append(stmt)
            home[stmt.targets[0].id] = k
    order = {id(stmt): k for k, stmt in enumerate(statements)}
    return [sorted(part, key=lambda stmt: order[id(stmt)]) for part in parts]


def _row_axes(statements, group):
    """The trailing axes that every reduction among `statements` reduces, if
    they are the same, else None."""
    axes = {group.reduce_of[id(s)].trailing for s in statements if id(s) in group.reduce_of}
    return axes.pop() if len(axes) == 1 and None not in axes else None


def _fresh_outputs(statements, group):
    """Whether no value the part writes was also read from before the group
    (a rebinding), so that the rest of the group can read the part's outputs
    as kernel inputs of their own type."""
    return not _stored(statements) & group.read_first


def _free_reads(statements):
    """The names `statements` read before they bind them: their inputs."""
    bound, free = set(), set()
    for stmt in statements:
        free |= _reads(stmt) - bound
        bound |= _stores(stmt)
    return free


def _stored(statements):
    return set().union(*[_stores(s) for s in statements]) if statements else set()


def _slice(statements, names):
    """The statements (in order) that compute the last values of `names`."""
    need, kept = set(names), []
    for stmt in reversed(statements):
        target = stmt.targets[0].id
        if target in need:
            need.discard(target)
            need |= _reads(stmt)
            kept.append(stmt)
    return kept[::-1]


class _Group:
    """The open element-wise group of a block."""

    def __init__(self, in_loop):
        self.in_loop = in_loop
        self.statements = []         # element-wise
        self.reductions = []         # _Reduce, emitted when the group closes
        self.nodes = []              # both, in order
        self.reduce_of = {}          # id(statement) -> its _Reduce
        self.reduced = set()         # the reductions' targets
        self.stored, self.read, self.read_first = set(), set(), set()
        self.order = []              # stored names, first-stored first
        self.types = {}              # id(stmt) and ('in'|'out', name) -> Type
        self.alias = {}              # a copy's target -> the group value it names
        self.hoisted = []            # other statements, run before the group
        self.copies = []             # the copies, run after the group's kernels

    def add(self, stmt, env, result):
        self._take(stmt, env, result)
        self.statements.append(stmt)

    def add_reduction(self, reduce, env):
        self._take(reduce.stmt, env, reduce.result)
        self.reductions.append(reduce)
        self.reduce_of[id(reduce.stmt)] = reduce
        self.reduced.add(reduce.target)
        # What element-wise kernels read when the reduction runs before them.
        self.types[('in', reduce.target)] = reduce.result

    def add_copy(self, stmt, source):
        """`stmt` (`a = source`) names a value of the group: later statements
        of the group read `source` for `a` (_Fuser.rename), and the copy runs
        after the group, where code after it reads `a`."""
        self.alias[stmt.targets[0].id] = source
        self.copies.append(stmt)
        self.read.add(source)

    def current_copies(self):
        """The copies that give their targets' last values: a later binding of
        a copy's target (by a statement or another copy) makes the copy dead,
        since every read of the target in between read the copied value."""
        last = {stmt.targets[0].id: stmt for stmt in self.copies}
        return [stmt for target, stmt in last.items() if target in self.alias]

    def _take(self, stmt, env, result):
        target = stmt.targets[0].id
        self.alias.pop(target, None)     # a copy's target bound anew: the copy is dead
        for name in _reads(stmt):
            if name not in self.stored:
                self.read_first.add(name)
                self.types.setdefault(('in', name), env.get(name))
        self.read |= _reads(stmt)
        self.stored.add(target)
        if target not in self.order:
            self.order.append(target)
        self.types[id(stmt)] = result
        self.types[('out', target)] = result
        self.nodes.append(stmt)

    def allows_before(self, stmt):
        """Whether `stmt` may run before the whole open group instead of after it."""
        if isinstance(stmt, (n.Return, n.Raise)):
            return False
        reads, stores = _reads(stmt), _stores(stmt)
        written = self.stored | set(self.alias)
        return not (reads & written) and not (stores & (self.read | written))

    def slice(self, *names):
        """The element-wise statements (in order) that compute the last values of `names`."""
        return _slice(self.statements, names)


class _Part:
    def __init__(self):
        self.statements, self.stored = [], set()


def _components(statements, written):
    """The statements split into independent kernels: two statements belong
    together when they touch a name the group writes (so each kernel's
    inputs are values from before the group, whatever order the calls run
    in). Chains of different shapes that only share inputs (an optimizer
    step over a matrix and a bias) become separate kernels instead of one
    whose broadcast shape fits neither."""
    parent = list(range(len(statements)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    owner = {}
    for i, stmt in enumerate(statements):
        for name in (_reads(stmt) | _stores(stmt)) & written:
            if name in owner:
                parent[root(i)] = root(owner[name])
            owner[name] = i
    parts = {}
    for i, stmt in enumerate(statements):
        part = parts.setdefault(root(i), _Part())
        part.statements.append(stmt)
        part.stored |= _stores(stmt)
    return list(parts.values())


class _CNames:
    """C identifiers for Python names: unique within a kernel, readable."""

    def __init__(self):
        self.used = set()

    def fresh(self, name):
        base = re.sub(r'\W', '_', name)
        if base.startswith('_'):
            base = 'v' + base
        if base in _C_RESERVED or _DERIVED.search(base):
            base += '_v'             # a name the back ends' own code uses
        candidate, k = base, 1
        while candidate in self.used:
            k += 1
            candidate = f'{base}_{k}'
        self.used.add(candidate)
        return candidate


def _reduction_spec(inputs, ndim, tuples):
    """(axis, keepdims, ddof) of a reduction kernels can do, else None; axis
    is None for all axes, else sorted non-negative ints. `tuples`: names
    bound once to a tuple of constants (normalize names an `axis=(0, 1)`)."""
    for param, default in (('dtype', None), ('out', None), ('initial', None), ('where', True)):
        node = inputs.get(param)
        if node is not None and not (isinstance(node, n.Constant) and node.value is default):
            return None
    axis, keep, ddof = inputs.get('axis'), inputs.get('keepdims'), inputs.get('ddof')
    if isinstance(axis, n.Name) and axis.id in tuples:
        axis = tuples[axis.id]
    if not (keep is None or isinstance(keep, n.Constant) and isinstance(keep.value, bool)):
        return None
    if not (ddof is None or isinstance(ddof, n.Constant) and type(ddof.value) in (int, float)):
        return None
    keepdims = bool(keep is not None and keep.value)
    ddof = 0 if ddof is None else ddof.value
    if axis is None or isinstance(axis, n.Constant) and axis.value is None:
        return None, keepdims, ddof
    elts = axis.elts if isinstance(axis, n.Tuple) else [axis]
    if not all(isinstance(e, n.Constant) and type(e.value) is int and -ndim <= e.value < ndim
               for e in elts):
        return None
    axes = tuple(sorted({e.value % ndim for e in elts}))
    if len(axes) != len(elts):
        return None
    return (None if len(axes) == ndim else axes), keepdims, ddof


class _RowChain:
    """Reductions without keepdims over the same axes of values of the same
    rank (`key`: that rank and the reduced axes), the element-wise work on
    their results (row values), and the statements that put the reduced axes
    back, for _row_chains."""

    def __init__(self, key):
        self.key = key
        self.reductions, self.put_backs, self.bindings = [], [], []
        self.ok = True

    def merge(self, other, live):
        """Take in `other` (left empty, so that it changes nothing)."""
        if other is self:
            return
        self.reductions += other.reductions
        self.put_backs += other.put_backs
        self.bindings += other.bindings
        self.ok = self.ok and other.ok
        other.reductions, other.put_backs, other.bindings = [], [], []
        for name, (chain, binding) in live.items():
            if chain is other:
                live[name] = (self, binding)


class _Binding:
    """One binding of a row value: how many statements read it, and whether
    a later statement of the block binds its name anew."""

    def __init__(self, name):
        self.name, self.reads, self.ended = name, 0, False


def _row_chains(body, env, reads, stores, tuples):
    """The _RowChains of a block (types `env` on entry) that can become the
    keepdims=True spelling: every read of every row value is element-wise
    work of the chain (with numbers or 0-d values as the other operands:
    anything else would broadcast differently against unit axes) or puts
    back exactly the reduced axes; and no row value is read anywhere else
    (`reads`, `stores`: the function's counts), nor is it bound again
    except by a later statement of the block, after which the old value is
    dead."""
    live, chains = {}, []                # a row value's name -> (chain, binding)
    for stmt in body:
        read = n.names_in(stmt) & live.keys()
        if not isinstance(stmt, n.Assign) or not isinstance(stmt.targets[0], n.Name):
            for name in read | (_stores(stmt) & live.keys()):    # any use, inside too
                live.pop(name)[0].ok = False
            env = _flow_step(stmt, env)
            continue
        target = stmt.targets[0].id
        for name in read:
            live[name][1].reads += 1
        chain = _row_step(stmt, read, live, env, tuples) if read else \
            _row_reduction(stmt, env, tuples)
        if read and chain is None:
            for name in read:
                live[name][0].ok = False
        if target in live:
            live.pop(target)[1].ended = True
        if chain is not None and chain not in chains:
            chains.append(chain)
        if chain is not None and not _puts_back(stmt, chain):
            binding = _Binding(target)
            chain.bindings.append(binding)
            live[target] = (chain, binding)
        env = _flow_step(stmt, env)
    return [chain for chain in chains if chain.ok and chain.put_backs and all(
        b.ended or stores.get(b.name) == 1 and reads.get(b.name) == b.reads
        for b in chain.bindings)]


def _row_reduction(stmt, env, tuples):
    """A new _RowChain if `stmt` is a reduction without keepdims that could
    keep them, else None."""
    found = operation(stmt.value)
    if found is None or found[0].name not in REDUCTIONS:
        return None
    a = found[1].get('a')
    t = env.get(a.id) if isinstance(a, n.Name) else None
    if not isinstance(t, Type) or not t.ndim:
        return None
    spec = _reduction_spec(found[1], t.ndim, tuples)
    if spec is None or spec[1] or _keepdims_by_position(stmt.value):
        return None
    chain = _RowChain((t.ndim, frozenset(range(t.ndim)) if spec[0] is None else
                       frozenset(spec[0])))
    chain.reductions.append(stmt)
    return chain


def _row_step(stmt, read, live, env, tuples):
    """The chain that `stmt`, which reads the row values `read`, continues:
    one that puts the reduced axes back (recorded in the chain), or
    element-wise work (a copy too) of row values of one key (merged into
    one chain) and numbers; else None."""
    if isinstance(stmt.value, n.Name):
        return live[stmt.value.id][0]
    found = operation(stmt.value)
    if found is None:
        return None
    prim, inputs = found
    if prim.name in ('getitem', 'expand_dims', 'reshape'):
        a = inputs.get('a')
        chain = live[a.id][0] if isinstance(a, n.Name) and a.id in live else None
        if chain is None or read != {a.id} or stmt.targets[0].id == a.id:
            return None
        ndim, axes = chain.key
        if _new_axes(stmt.value, prim, inputs, ndim - len(axes), tuples) != axes:
            return None
        chain.put_backs.append((stmt, a.id))
        return chain
    if _c_expression(prim, inputs) is None:
        return None
    operands = _operands(prim, inputs).values()
    rows = [live[x.id][0] for x in operands if isinstance(x, n.Name) and x.id in live]
    others = [_type(x, env) for x in operands if not (isinstance(x, n.Name) and x.id in live)]
    if {x.id for x in operands if isinstance(x, n.Name)} & read != read \
            or len({chain.key for chain in rows}) != 1 \
            or not all(isinstance(t, Type) and not t.ndim for t in others):
        return None
    for chain in rows[1:]:
        rows[0].merge(chain, live)
    return rows[0]


def _puts_back(stmt, chain):
    return any(s is stmt for s, _ in chain.put_backs)


def _new_axes(rhs, prim, inputs, ndim, tuples):
    """The positions (in its result) of the unit axes that `rhs`, an index,
    np.expand_dims or a reshape of an array of rank `ndim`, inserts, if that
    is all it does; else None."""
    if prim.name == 'getitem':
        return _index_new_axes(rhs.slice, ndim) if isinstance(rhs, n.Subscript) else None
    if prim.name == 'expand_dims':
        axes = _int_tuple(inputs.get('axis'), tuples)
        rank = ndim + len(axes or ())
        if axes is None or not all(-rank <= a < rank for a in axes):
            return None
        found = {a % rank for a in axes}
        return found if len(found) == len(axes) else None
    shape = _int_tuple(inputs.get('shape'), tuples)
    # Which axis is which is only certain for a vector (its one axis is the
    # -1) or a 0-d value.
    if shape is None or [s for s in shape if s != 1] != [-1] * ndim:
        return None
    return {k for k, s in enumerate(shape) if s == 1}


def _index_new_axes(index, ndim):
    """Where an index made of `:`, one `...` and None (np.newaxis) puts its
    new axes, for an array of rank `ndim`; None for any other index."""
    items = index.elts if isinstance(index, n.Tuple) else [index]
    kinds = [_index_kind(item) for item in items]
    taken = kinds.count(':')
    if None in kinds or kinds.count('...') > 1 or taken > ndim:
        return None
    found, position = set(), 0
    for kind in kinds:
        if kind == 'new':
            found.add(position)
        position += ndim - taken if kind == '...' else 1
    return found


def _index_kind(item):
    """':' (a whole axis), '...', 'new' (a unit axis), or None (anything else)."""
    if isinstance(item, n.Slice) and item.lower is item.upper is item.step is None:
        return ':'
    if isinstance(item, n.Constant) and item.value is Ellipsis:
        return '...'
    if isinstance(item, n.Constant) and item.value is None or \
            getattr(item, 'codax_static', False) and getattr(item, 'codax_value', 0) is None:
        return 'new'                  # None, or np.newaxis (_resolve_globals)
    return None


def _int_tuple(node, tuples):
    """The ints of a constant int or tuple of ints (also one named in
    `tuples`), else None."""
    if isinstance(node, n.Name):
        node = tuples.get(node.id)
    elts = node.elts if isinstance(node, n.Tuple) else [node]
    values = [e.value for e in elts if isinstance(e, n.Constant) and type(e.value) is int]
    return tuple(values) if node is not None and len(values) == len(elts) else None


def _keepdims_by_position(call):
    """Whether a reduction call passes keepdims by position (which
    _set_keepdims leaves alone)."""
    if any(k.arg == 'keepdims' for k in call.keywords):
        return False
    return list(operation(call)[0].signature.parameters).index('keepdims') < len(call.args)


def _set_keepdims(call):
    """Make a reduction call keepdims=True, by keyword."""
    given = [k for k in call.keywords if k.arg == 'keepdims']
    if given:
        given[0].value = n.const(True)
    else:
        call.keywords.append(n.keyword(arg='keepdims', value=n.const(True)))


# ---- C expressions ----

def _operands(prim, inputs):
    """The array/number operands of an element-wise call, by parameter."""
    if prim.name == 'where':
        return {p: inputs[p] for p in ('condition', 'x', 'y')}
    params = [p for p in prim.params if p in ('x', 'x1', 'x2')]
    return {p: inputs[p] for p in params}


def _type(node, env):
    if isinstance(node, n.Name):
        return env.get(node.id)
    if isinstance(node, n.Constant) and type(node.value) in (bool, int, float):
        return type_of_value(node.value)
    return None


def _c_expression(prim, inputs, operand=None):
    """The record's C expression with operands substituted (or None if the
    call cannot be fused: extra arguments, or no C expression)."""
    template = getattr(prim, 'c_expr', None)
    if template is None:
        return None
    for param, node in inputs.items():
        if param in ('x', 'x1', 'x2', 'condition', 'y'):
            if node is None:
                return None
            continue
        default = prim.signature.parameters[param].default
        if not (node is None or isinstance(node, n.Constant) and node.value is default):
            return None
    if prim.name == 'power':
        special = _power(inputs['x2'])
        if special is not None:
            template = special
    if operand is None:
        return template
    values = {p: operand(node) for p, node in _operands(prim, inputs).items()}
    return re.sub(r'\b(x1|x2|x|y|condition)\b', lambda m: values[m.group(1)], template)


def _power(exponent):
    """x ** 2 as a product: exact, and much faster than pow."""
    if isinstance(exponent, n.Constant) and type(exponent.value) in (int, float):
        return {2: '(x1 * x1)', 3: '(x1 * x1 * x1)', 1: 'x1', 0.5: 'sqrt(x1)',
                -1: '(1 / x1)'}.get(exponent.value)
    return None


def _c_step(prim, nodes, result, named):
    """The C expression of one step. Every operand gets the type the operation
    computes in: the result's (NumPy computes `int / int` in float64) or, for
    comparisons and tests, the operands' common type. `named(node)` gives a
    Name operand's C name and Type."""
    operands = _operands(prim, nodes)
    types = {p: named(x)[1] if isinstance(x, n.Name) else type_of_value(x.value)
             for p, x in operands.items()}
    compute = result.dtype
    if compute == numpy.bool_ and prim.name != 'where':
        compute = numpy.result_type(*[t.stand_in() for t in types.values()])
    text = {}
    for param, node in operands.items():
        own = types[param].dtype
        if isinstance(node, n.Constant):
            text[node] = c_literal(node.value, own if param in _UNCAST else compute)
        else:
            cname = named(node)[0]
            cast = param not in _UNCAST and own != compute
            text[node] = f'({c_type(compute)}){cname}' if cast else cname
    return _c_expression(prim, nodes, lambda node: text[node])


def _flow(body, env):
    """The types after `body` (no rewriting): for loops' second trips."""
    for stmt in body:
        env = _flow_step(stmt, env)
    return env


def _flow_step(stmt, env):
    """The types after `stmt`, from those before it."""
    if isinstance(stmt, n.If):
        return join(_flow(stmt.body, dict(env)), _flow(stmt.orelse, dict(env)))
    if isinstance(stmt, (n.For, n.While)):
        return join(env, _flow(stmt.body, dict(env)))
    if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name):
        result = _infer(stmt.value, env)
        env = {k: t for k, t in env.items() if k != stmt.targets[0].id}
        if result is not None:
            env[stmt.targets[0].id] = result
        return env
    return {k: t for k, t in env.items() if k not in _stores(stmt)}


def _infer(rhs, env):
    """The Type of `rhs` (dtypes.infer), also of an index made of `:`, `...`
    and None (`m[:, None]`), which inference leaves unknown."""
    found = infer(rhs, env)
    if found is not None or not isinstance(rhs, n.Subscript) \
            or not isinstance(rhs.value, n.Name):
        return found
    t = env.get(rhs.value.id)
    if not isinstance(t, Type) or not t.is_array:
        return None
    new = _index_new_axes(rhs.slice, t.ndim)
    return None if new is None else Type(t.dtype, t.ndim + len(new))
