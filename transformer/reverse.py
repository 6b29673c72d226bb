"""Stage 5: reverse-mode differentiation of normal form (Tangent-style).

The result is two statement lists over the same variables:
  primal   the function's statements, plus saves: before a statement
           overwrites a value that the adjoint sweep will need, the old value
           is pushed on `_stack`; a `while` pushes its trip count; a call to a
           user function also returns its pullback;
  adjoint  in reverse order, each statement's VJP rule accumulating into
           adjoints (`bx` for `x`), followed by a pop restoring what the
           statement overwrote. An `if` replays the branch taken (its test
           variable is restored like any other), a `for` runs its range
           reversed, a `while` runs its recorded trip count.
Invariant: the adjoint of a statement runs in the state right after it, and
leaves the state as it was right before it.
"""
import collections

from runtime import TABLE  # noqa: F401  (rules live in the table)

from . import nodes as n
from .analysis import active_names, numeric_names, overwritten_names, useful_names
from .errors import error_at
from .ir import as_defined_call, as_node_attribute, as_node_construction, describe, no_rule
from .templates import instantiate

_RESTORE = 'codax-restore:'


class Result:
    def __init__(self, primal, adjoint, ret, adjoint_of, initialized, needed, stack):
        self.primal = primal            # statements, without the final return
        self.adjoint = adjoint          # statements, after the seed is set
        self.ret = ret                  # the returned atom
        self.adjoint_of = adjoint_of    # name -> adjoint name (for diff names)
        self.initialized = initialized  # adjoint names assigned at the end
        self.needed = needed            # primal names the adjoint sweep reads
        self.stack = stack              # the name of the list that saves values


def differentiate(fdef, active_params, numeric_params, unit, fresh):
    return Reverse(fdef, active_params, numeric_params, unit, fresh).run()


def _located(stmts, origin, adjoint=False):
    line = getattr(origin, 'user_line', None)
    for stmt in stmts:
        if getattr(stmt, 'user_line', None) is None:
            stmt.user_line = line
            stmt.codax_adjoint = adjoint
    return stmts


def _call_adjoint(op, node, results, k):
    """The adjoint a call's pullback `results` hold for input k. The function
    of a dynamic call has one only where it is a closure (rt.callee_adjoint
    tells at run time)."""
    which = 'rt.callee_adjoint' if node is op.callee else 'rt.item'
    return n.call(which, [n.name(results), n.const(k)])


def _restore(name):
    return n.expr_stmt(n.const(_RESTORE + name))


def _broadcast_free(op, param):
    """An element-wise op whose other operands are Python constants: the output
    has this operand's shape, so undoing broadcasting is the identity."""
    if op.prim.family != 'elementwise':
        return False
    template = op.prim.vjp[param]
    others = [node for p, node in op.inputs.items()
              if p != param and p in op.prim.diff_params()]
    return template.startswith('rt.unbroadcast(') and all(
        isinstance(node, n.Constant) and isinstance(node.value, (int, float)) for node in others)


def _load_counts(tree):
    return collections.Counter(x.id for x in n.walk(tree)
                               if isinstance(x, n.Name) and isinstance(x.ctx, n.Load))


def _iteration_locals(loop):
    """Names assigned once, at the top level of the loop body, and read only
    later in that same body: each iteration's value dies within the iteration."""
    body = loop.body
    defined = {}
    for i, stmt in enumerate(body):
        if isinstance(stmt, n.Assign):
            defined.setdefault(stmt.targets[0].id, []).append(i)
    nested = {x.id for stmt in body if not isinstance(stmt, n.Assign)
              for x in n.walk(stmt) if isinstance(x, n.Name) and isinstance(x.ctx, n.Store)}
    local = set()
    for name, positions in defined.items():
        if len(positions) != 1 or name in nested:
            continue
        first = positions[0]
        reads_before = any(name in n.names_in(stmt) for stmt in body[:first + 1])
        if not reads_before:
            local.add(name)
    return local


def _origin(stmt):
    """The node to point at in the user's code: the call if it kept its place."""
    return stmt.value if getattr(stmt.value, 'lineno', None) else stmt


def _needed(adjoint):
    """Names the adjoint sweep reads. The test of an `if` or `for` counts only
    if its body does real work or restores a needed name; otherwise the
    compound statement is dropped with its restores."""
    needed = set()
    while True:
        found = _reads(adjoint, needed)
        if found <= needed:
            return needed
        needed |= found


def _reads(stmts, needed):
    found = set()
    for stmt in stmts:
        if _restored_name(stmt) is not None:
            continue
        if isinstance(stmt, (n.If, n.For)):
            branches = stmt.body + getattr(stmt, 'orelse', [])
            if _works(branches, needed):
                found |= _reads(branches, needed)
                found |= n.names_in(stmt.test if isinstance(stmt, n.If) else stmt.iter)
        else:
            found |= n.names_in(stmt)
    return found


def _works(stmts, needed):
    """Whether `stmts` do anything once unneeded restores are dropped."""
    for stmt in stmts:
        restored = _restored_name(stmt)
        if restored is not None:
            if restored in needed:
                return True
        elif not isinstance(stmt, (n.If, n.For)) or _works(stmt.body + getattr(stmt, 'orelse', []),
                                                           needed):
            return True
    return False


def _restored_name(stmt):
    if isinstance(stmt, n.Expr) and isinstance(stmt.value, n.Constant) \
            and isinstance(stmt.value.value, str) and stmt.value.value.startswith(_RESTORE):
        return stmt.value.value[len(_RESTORE):]
    return None


class Reverse:
    def __init__(self, fdef, active_params, numeric_params, unit, fresh):
        self.fdef = fdef
        self.unit = unit
        self.fresh = fresh
        self.params = [a.id for a in fdef.args.args]
        self.active = active_names(fdef, active_params)
        self.diff = useful_names(fdef, self.active)
        self.overwritten = overwritten_names(fdef)
        self.numeric = numeric_names(fdef, numeric_params)
        self.adjoint_of = {}
        self.initialized = set()
        self.pullbacks = {}      # id(call statement) -> pullback name
        self.call_targets = {}   # id(call statement) -> the name it assigns
        self.loads = _load_counts(fdef)
        self.zero = set()            # adjoints known to hold exactly 0.0 here
        self.iteration_local = set()  # loop names whose adjoint lives in one iteration
        self.stack = '_stack' if '_stack' not in fresh.taken else fresh('_stack')
        fresh.taken.add(self.stack)
        self.counters = {}       # id(while statement) -> trip-count name

    def adj(self, name):
        if name not in self.adjoint_of:
            wanted = 'b' + name
            self.adjoint_of[name] = wanted if wanted not in self.fresh.taken else self.fresh(wanted + '_')
            self.fresh.taken.add(self.adjoint_of[name])
        return self.adjoint_of[name]

    def run(self):
        body, ret = self.fdef.body[:-1], self.fdef.body[-1].value
        if isinstance(ret, n.Name) and ret.id in self.diff:
            self.initialized.add(self.adj(ret.id))
        adjoint = self.block(body)
        primal_names = set(self.params) | {s.targets[0].id for s in n.walk(self.fdef)
                                           if isinstance(s, n.Assign)}
        primal_names |= {loop.target.id for loop in n.walk(self.fdef) if isinstance(loop, n.For)}
        primal_names |= set(self.pullbacks.values())
        needed = _needed(adjoint) & primal_names
        overwritten = self.overwritten | {pullback for stmt_id, pullback in self.pullbacks.items()
                                          if self.call_targets[stmt_id] in self.overwritten}
        saved = needed & overwritten
        adjoint = self.place_restores(adjoint, saved)
        primal = self.primal_block(body, saved)
        start = [n.assign(v, n.const(None)) for v in sorted(saved - set(self.params))]
        if saved or self.counters:
            start.append(n.assign(self.stack, n.list_([])))
        primal = _located(start, body[0] if body else self.fdef) + primal
        return Result(primal, adjoint, ret, dict(self.adjoint_of), set(self.initialized),
                      needed | ({self.stack} if saved or self.counters else set()),
                      self.stack)

    # ---- adjoint sweep ----
    def block(self, stmts):
        out = []
        for stmt in reversed(stmts):
            out.extend(_located(self.statement(stmt), stmt, adjoint=True))
        return out

    def statement(self, stmt):
        if isinstance(stmt, n.Assign):
            return self.assignment(stmt)
        if isinstance(stmt, n.If):
            pre = self.pre_initialize(stmt)
            body, orelse = self.branch(stmt.body), self.branch(stmt.orelse)
            if not body and not orelse:
                return pre
            return pre + [n.if_(n.deepcopy(stmt.test), body, orelse)]
        if isinstance(stmt, n.For):
            pre = self.pre_initialize(stmt)
            body = self.branch(stmt.body)
            backwards = n.call(n.name('reversed'), [n.deepcopy(stmt.iter)])
            loop = n.for_(stmt.target.id, backwards, body)
            return pre + ([loop] if body else []) + [_restore(stmt.target.id)]
        if isinstance(stmt, n.While):
            counter = self.counters[id(stmt)] = self.fresh('_n')
            pre = self.pre_initialize(stmt)
            body = self.branch(stmt.body)
            pop = n.assign(counter, n.call(n.attr(n.name(self.stack), 'pop')))
            loop = n.for_(self.fresh('_it'), n.call(n.name('range'), [n.name(counter)]), body)
            return pre + [pop] + ([loop] if body else [])
        return []

    def branch(self, stmts):
        """The adjoint of a nested block. What is known to be zero on entry may
        not be on a later iteration, and is not after it."""
        self.zero.clear()
        out = self.block(stmts)
        self.zero.clear()
        return out

    def pre_initialize(self, compound):
        """Zero the adjoints a loop or branch accumulates into, if not yet set.

        A loop's iteration-local names are left out: their adjoints start
        afresh in every iteration of the adjoint loop."""
        local = set()
        if isinstance(compound, (n.For, n.While)):
            inside = _load_counts(compound)
            local = {x for x in _iteration_locals(compound) if inside[x] == self.loads[x]}
        self.iteration_local |= local
        self.initialized -= {self.adj(x) for x in local & self.diff}   # fresh per iteration
        out = []
        for stmt in n.walk(compound):
            if not isinstance(stmt, n.Assign) or stmt.targets[0].id not in self.diff:
                continue
            for name in sorted(describe(stmt.value).diff_names() & self.diff - local):
                adjoint = self.adj(name)
                if adjoint not in self.initialized:
                    self.initialized.add(adjoint)
                    out.append(n.assign(adjoint, n.const(0.0)))
        return out

    def assignment(self, stmt):
        name = stmt.targets[0].id
        op = as_node_attribute(as_defined_call(describe(stmt.value), stmt.value), stmt.value,
                               self.numeric)
        op = as_node_construction(op, stmt.value, self.diff, self.numeric)
        if name in self.diff and op.kind == 'native' and op.diff_names() & self.active:
            raise error_at(_origin(stmt), no_rule(op), self.unit)
        if name in self.diff and op.kind == 'call' and n.names_in(op.callee) & self.active \
                and not isinstance(op.callee, n.Name):
            raise error_at(_origin(stmt), f'codax cannot differentiate this call: the function '
                           f'{op.label!r} itself depends on the differentiated inputs', self.unit)
        out = []
        restores = [name]
        if name in self.diff and self.adj(name) in self.initialized:
            g = n.name(self.adj(name))
            if op.kind == 'copy':
                out += self.accumulate(stmt.value, g)
            elif op.kind == 'prim':
                out += self.prim_adjoint(stmt, op, name, g)
            elif op.kind == 'container':
                for key, node in op.inputs:
                    out += self.accumulate(node, n.call('rt.item', [g, n.const(key)]))
            elif op.kind == 'call':
                pullback = self.pullbacks[id(stmt)] = self.fresh('_pb')
                self.call_targets[id(stmt)] = name
                restores.append(pullback)
                results = self.fresh('_b')
                out.append(n.assign(results, n.call('rt.pullback', [n.name(pullback), g])))
                for k, node in op.inputs:
                    out += self.accumulate(node, _call_adjoint(op, node, results, k))
            if name in self.overwritten and name not in self.iteration_local:
                out.append(n.assign(self.adj(name), n.const(0.0)))
                self.zero.add(self.adj(name))
        return out + [_restore(r) for r in reversed(restores)]    # pops mirror the pushes

    def prim_adjoint(self, stmt, op, name, g):
        out = []
        for param, node in op.diff_inputs():
            elts = node.elts if isinstance(node, n.Tuple) else [node]
            if not any(isinstance(e, n.Name) and e.id in self.diff for e in elts):
                continue
            template = op.prim.vjp.get(param)
            if template is None:
                raise error_at(_origin(stmt), f'{op.label} has no derivative rule for its '
                               f'argument {param!r}', self.unit)
            substitutions = dict(op.inputs, g=g, ans=n.name(name))
            expr = instantiate(template, substitutions)
            if _broadcast_free(op, param):
                expr = expr.args[0]          # rt.unbroadcast(E, x, ans) is E here
            if isinstance(node, n.Tuple):          # *varargs: one adjoint per element
                results = self.fresh('_b')
                out.append(n.assign(results, expr))
                for k, elt in enumerate(node.elts):
                    out += self.accumulate(elt, n.call('rt.item', [n.name(results), n.const(k)]))
            else:
                out += self.accumulate(node, expr)
        return out

    def accumulate(self, node, contribution):
        if not (isinstance(node, n.Name) and node.id in self.diff):
            return []
        adjoint = self.adj(node.id)
        if adjoint not in self.initialized or adjoint in self.zero:
            self.initialized.add(adjoint)
            self.zero.discard(adjoint)
            return [n.assign(adjoint, contribution)]
        if node.id in self.numeric:
            return [n.assign(adjoint, n.binop(n.name(adjoint), n.Add(), contribution))]
        return [n.assign(adjoint, n.call('rt.add', [n.name(adjoint), contribution]))]

    def place_restores(self, stmts, saved):
        out = []
        for stmt in stmts:
            restored = _restored_name(stmt)
            if restored is not None:
                if restored in saved:
                    pop = n.assign(restored, n.call(n.attr(n.name(self.stack), 'pop')))
                    pop.user_line, pop.codax_adjoint = getattr(stmt, 'user_line', None), True
                    out.append(pop)
                continue
            for field in ('body', 'orelse'):
                if isinstance(stmt, (n.If, n.For, n.While)):
                    setattr(stmt, field, self.place_restores(getattr(stmt, field), saved))
            if isinstance(stmt, (n.For, n.If)) and not stmt.body:
                if isinstance(stmt, n.For) or not stmt.orelse:
                    continue
                stmt.body = [n.Pass()]
            out.append(stmt)
        return out

    # ---- primal sweep ----
    def primal_block(self, stmts, saved):
        out = []
        for stmt in stmts:
            out.extend(_located(self.primal_statement(stmt, saved), stmt))
        return out

    def primal_statement(self, stmt, saved):
        def push(name):
            return n.expr_stmt(n.call(n.attr(n.name(self.stack), 'append'), [n.name(name)]))
        if isinstance(stmt, n.Assign):
            name = stmt.targets[0].id
            pullback = self.pullbacks.get(id(stmt))
            written = [name] + ([pullback] if pullback else [])
            pushes = [push(w) for w in written if w in saved]
            if pullback:
                call = stmt.value
                vjp_call = n.call('rt.vjp_call', [call.func] + list(call.args))
                vjp_call.keywords = list(call.keywords)
                target = n.tuple_([n.name(name, store=True), n.name(pullback, store=True)],
                                  store=True)
                stmt = n.Assign(targets=[target], value=vjp_call, type_comment=None)
            return pushes + [stmt]
        if isinstance(stmt, n.If):
            return [n.if_(stmt.test, self.primal_block(stmt.body, saved),
                          self.primal_block(stmt.orelse, saved))]
        if isinstance(stmt, n.For):
            pre = [push(stmt.target.id)] if stmt.target.id in saved else []
            return pre + [n.for_(stmt.target, stmt.iter, self.primal_block(stmt.body, saved))]
        if isinstance(stmt, n.While):
            counter = self.counters[id(stmt)]
            count = n.assign(counter, n.binop(n.name(counter), n.Add(), n.const(1)))
            body = self.primal_block(stmt.body, saved) + _located([count], stmt)
            return [n.assign(counter, n.const(0)), n.while_(stmt.test, body), push(counter)]
        return [stmt]
