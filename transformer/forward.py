"""Stage 5: forward-mode differentiation of normal form.

Each statement `y = f(x, ...)` is followed by the statement computing `dy`,
the tangent of y, from the record's JVP rule; control flow is unchanged, so
loops, branches and early exits need nothing special. A tangent, like an
adjoint, may be anything broadcastable to its primal, and 0.0 is the zero of
anything. Calls to user functions become `rt.jvp_call`, which transforms the
callee in turn.
"""
from . import nodes as n
from .analysis import active_names, numeric_names, useful_names
from .errors import error_at
from .ir import as_defined_call, as_node_attribute, as_node_construction, describe, no_rule
from .templates import instantiate


class Result:
    def __init__(self, body, ret, tangent, tangent_params):
        self.body = body          # statements, without the final return
        self.ret = ret            # the returned atom
        self.tangent = tangent    # its tangent: a Name or the constant 0.0
        self.tangent_params = tangent_params   # tangent names of the active parameters


def differentiate(fdef, active_params, numeric_params, unit, fresh):
    return Forward(fdef, active_params, numeric_params, unit, fresh).run()


class Forward:
    def __init__(self, fdef, active_params, numeric_params, unit, fresh):
        self.active_params = list(active_params)
        self.fdef = fdef
        self.unit = unit
        self.fresh = fresh
        self.active = active_names(fdef, active_params)
        self.diff = useful_names(fdef, self.active)
        self.numeric = numeric_names(fdef, numeric_params)
        self.tangent_of = {}
        self.own_tape = _own_tape(unit, fdef)

    def tan(self, name):
        if name not in self.tangent_of:
            wanted = 'd' + name
            self.tangent_of[name] = wanted if wanted not in self.fresh.taken \
                else self.fresh(wanted + '_')
            self.fresh.taken.add(self.tangent_of[name])
        return self.tangent_of[name]

    def tangent(self, node):
        """The tangent of an atom: its tangent variable, or the zero 0.0."""
        if isinstance(node, n.Name) and node.id in self.diff:
            return n.name(self.tan(node.id))
        return n.const(0.0)

    def dense(self, node):
        """A tangent shaped like its primal, for rules that need the full array.
        The tangent of a tape made here is a list already, pushed on and
        popped from as the tape is: read as it is, the tape stays local to
        this code (batch.py keeps each value on it in its own form)."""
        if isinstance(node, n.Name) and node.id == self.own_tape and node.id in self.diff:
            return self.tangent(node)
        return n.call('rt.dense', [self.tangent(node), node])

    def run(self):
        body, ret = self.fdef.body[:-1], self.fdef.body[-1].value
        tangent_params = [self.tan(p) for p in self.active_params]
        # a parameter given no tangent may still become active by reassignment
        # (c = c * 0.9 + x): its tangent starts as the zero
        start = [n.assign(self.tan(a.id), n.const(0.0)) for a in self.fdef.args.args
                 if a.id in self.diff and a.id not in self.active_params]
        return Result(start + self.block(body), ret, self.tangent(ret), tangent_params)

    def block(self, stmts):
        out = []
        for stmt in stmts:
            produced = self.statement(stmt)
            for new in produced:
                if getattr(new, 'user_line', None) is None:
                    new.user_line = getattr(stmt, 'user_line', None)
            out.extend(produced)
        return out

    def statement(self, stmt):
        if isinstance(stmt, n.Assign):
            return self.assignment(stmt)
        if isinstance(stmt, n.If):
            return [n.if_(stmt.test, self.block(stmt.body), self.block(stmt.orelse))]
        if isinstance(stmt, n.For):
            return [n.for_(stmt.target, stmt.iter, self.block(stmt.body))]
        if isinstance(stmt, n.While):
            return [n.while_(stmt.test, self.block(stmt.body))]
        return [stmt]

    def assignment(self, stmt):
        name = stmt.targets[0].id
        if name not in self.diff:
            return [stmt]
        op = as_node_attribute(as_defined_call(describe(stmt.value), stmt.value), stmt.value,
                               self.numeric)
        op = as_node_construction(op, stmt.value, self.diff, self.numeric)
        inputs_active = op.diff_names() & self.active
        if op.kind == 'native' and inputs_active:
            raise error_at(_origin(stmt), no_rule(op), self.unit)
        if op.kind == 'call' and inputs_active:
            return [self.call(stmt, name, op)]
        return [stmt, n.assign(self.tan(name), self.rule(stmt, name, op))]

    def rule(self, stmt, name, op):
        """The tangent expression of one statement."""
        if op.kind == 'copy':
            return self.tangent(op.inputs[0])
        if op.kind == 'container':
            elts = [self.tangent(node) for _, node in op.inputs]
            rhs = stmt.value
            if isinstance(rhs, n.Dict):
                return n.Dict(keys=[n.deepcopy(k) for k in rhs.keys], values=elts)
            return type(rhs)(elts=elts, ctx=n.Load())
        if op.kind != 'prim' or not op.prim.differentiable:
            return n.const(0.0)
        params = [(p, node) for p, node in op.diff_inputs() if self._carries(node)]
        if not params:
            return n.const(0.0)
        if op.prim.jvp == 'linear':
            return self.linear(stmt.value, op)
        terms = []
        for param, node in params:
            template = op.prim.jvp.get(param)
            if template is None:
                raise error_at(_origin(stmt), f'{op.label} has no forward-mode (JVP) rule for '
                               f'its argument {param!r}', self.unit)
            if isinstance(node, n.Tuple) and op.prim.family != 'tree':
                t = n.tuple_([self.dense(e) for e in node.elts])
            elif isinstance(node, n.Tuple):        # a node's children: their own tangents
                t = n.tuple_([self.tangent(e) for e in node.elts])
            elif op.prim.family in ('elementwise', 'tree'):
                t = self.tangent(node)         # a scalar zero broadcasts; a tree's is its own
            else:
                t = self.dense(node)
            term = instantiate(template, dict(op.inputs, t=t, ans=n.name(name)))
            if not (isinstance(term, n.Constant) and term.value == 0):
                terms.append(term)                 # a term that folded to zero is dropped
        if not terms:
            return n.const(0.0)
        total = terms[0]
        for term in terms[1:]:
            total = n.binop(total, n.Add(), term) if name in self.numeric \
                else n.call('rt.add', [total, term])
        return total

    def _carries(self, node):
        elts = node.elts if isinstance(node, n.Tuple) else [node]
        return any(isinstance(e, n.Name) and e.id in self.diff for e in elts)

    def linear(self, rhs, op):
        """A linear primitive's tangent: the same operation on dense tangents."""
        swap = {id(node): self.dense(node) for p, node in op.diff_inputs()
                if node is not None and not isinstance(node, n.Tuple)}
        return _copy_replacing(rhs, swap)

    def call(self, stmt, name, op):
        """`y = f(a, b)` -> `y, dy = rt.jvp_call(f, (a, b), (da, db))`; where f
        is a closure with tangents of its own (runtime/closures.py),
        `rt.jvp_call(rt.call_closure, (a, b, f), (da, db, df))`."""
        call = stmt.value
        # `**d` (the dict a **kwargs parameter takes) goes last by position,
        # as the callee's generated code takes it (normalize.by_position)
        keywords = [k for k in call.keywords if k.arg is not None]
        func = call.func
        params = list(call.args) + [k.value for k in call.keywords if k.arg is None]
        if n.names_in(op.callee) & self.active:
            if not isinstance(func, n.Name) or call.keywords:
                raise error_at(_origin(stmt), f'codax cannot differentiate this call: the '
                               f'function {op.label!r} itself depends on the differentiated '
                               'inputs', self.unit)
            func, params = n.dotted('rt.call_closure'), params + [func]
        args = [n.tuple_(params), n.tuple_([self.tangent(a) for a in params])]
        if keywords:
            args.append(n.Dict(keys=[n.const(k.arg) for k in keywords],
                               values=[k.value for k in keywords]))
            args.append(n.Dict(keys=[n.const(k.arg) for k in keywords],
                               values=[self.tangent(k.value) for k in keywords]))
        target = n.tuple_([n.name(name, store=True), n.name(self.tan(name), store=True)],
                          store=True)
        return n.Assign(targets=[target], value=n.call('rt.jvp_call', [func] + args),
                        type_comment=None)


def _own_tape(unit, fdef):
    """The name of reverse mode's tape in fdef (pipeline.TAPES) where fdef
    makes it (`tape = []`) and changes it only by pushes and pops, so that its
    tangent is always a list of the same length: else None."""
    from .pipeline import LOCAL_TAPES, TAPES
    key = (getattr(unit, 'filename', None), fdef.name)
    tape = TAPES.get(key) or LOCAL_TAPES.get(key)
    if tape is None:
        return None
    values = {}
    for stmt in n.walk(fdef):
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name):
            values.setdefault(stmt.targets[0].id, []).append(stmt.value)

    def of_tape(value):              # a push on the tape, or a slice of it
        if isinstance(value, n.Subscript):
            return isinstance(value.value, n.Name) and value.value.id == tape
        return isinstance(value, n.Call) and isinstance(value.func, n.Attribute) \
            and value.func.attr == 'append' and len(value.args) == 2 \
            and isinstance(value.args[0], n.Name) and value.args[0].id == tape
    made = False
    for value in values.get(tape, []):
        if isinstance(value, n.List) and not value.elts:
            made = True
        elif not (isinstance(value, n.Name) and values.get(value.id)
                  and all(of_tape(v) for v in values[value.id])):
            return None
    return tape if made else None


def _copy_replacing(tree, swap):
    """A deep copy of `tree` with the nodes whose id is in `swap` replaced."""
    if id(tree) in swap:
        return swap[id(tree)]
    if isinstance(tree, list):
        return [_copy_replacing(x, swap) for x in tree]
    if not isinstance(tree, n.AST):
        return tree
    new = type(tree)()
    for field, value in n.iter_fields(tree):
        setattr(new, field, _copy_replacing(value, swap))
    for attr_name in ('lineno', 'col_offset', 'codax'):
        if hasattr(tree, attr_name):
            setattr(new, attr_name, getattr(tree, attr_name))
    return new


def _origin(stmt):
    return stmt.value if getattr(stmt.value, 'lineno', None) else stmt
