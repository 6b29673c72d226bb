"""Stage 5: batching (vmap) of normal form.

Every batched value keeps its batch axis first. What is known at compile time
about each name is an `Info`: whether it is batched, the rank of one example
(its per-example ndim) where that can be inferred, and for containers the
facts about each element. Each statement is rewritten by its primitive's
batching rule (transformer/batch_rules.py, chosen by the record's `batch`
field); a statement whose inputs are all unbatched is left alone.

Control flow: a condition on unbatched values stays Python. An `if` on a
batched condition runs both branches and selects per example; a `while` on a
batched condition runs until every example is done, finished examples
masked by the same select; a `for` over a range with batched bounds runs to
the largest bound, masked likewise.
"""
from . import nodes as n
from .errors import error_at
from .ir import describe

MAX_PASSES = 8


class Info:
    """Compile-time facts about a value in batched code."""
    __slots__ = ('batched', 'rank', 'elts', 'item')

    def __init__(self, batched=False, rank=None, elts=None, item=None):
        self.batched = batched
        self.rank = rank          # ndim of one example, None when not known
        self.elts = elts          # tuple of Info (list/tuple), dict of Info, or None
        self.item = item          # for a list of unknown length: every element's Info

    def __eq__(self, other):
        return (isinstance(other, Info) and self.batched == other.batched
                and self.rank == other.rank and self.elts == other.elts
                and self.item == other.item)

    def __repr__(self):
        return f'Info({self.batched}, {self.rank}, {self.elts}, {self.item})'

    def axes(self):
        """This value as a JAX-style axes prefix: 0, None, or one per element."""
        if isinstance(self.elts, tuple):
            return tuple(e.axes() for e in self.elts)
        if isinstance(self.elts, dict):
            return {k: e.axes() for k, e in self.elts.items()}
        return 0 if self.batched else None


UNKNOWN = Info(False, None)
NONE = Info(False, None)          # the constant None (a value not set yet)
SCALAR = Info(False, 0)


def container(elts):
    if isinstance(elts, dict):
        return Info(any(e.batched for e in elts.values()), None, dict(elts))
    return Info(any(e.batched for e in elts), None, tuple(elts))


def join(a, b):
    """What is known of a value that is a or b (after a loop or a branch)."""
    if a is None or a is NONE:
        return b
    if b is None or b is NONE:
        return a
    elts = None
    if isinstance(a.elts, tuple) and isinstance(b.elts, tuple) and len(a.elts) == len(b.elts):
        elts = tuple(join(x, y) for x, y in zip(a.elts, b.elts))
    elif isinstance(a.elts, dict) and isinstance(b.elts, dict) and a.elts.keys() == b.elts.keys():
        elts = {k: join(a.elts[k], b.elts[k]) for k in a.elts}
    item = None
    if elts is None and (a.item is not None or b.item is not None):
        for part in _elts(a.elts) + _elts(b.elts) + [a.item, b.item]:
            item = join(item, part)
    batched = a.batched or b.batched or any(e.batched for e in _elts(elts))
    return Info(batched, a.rank if a.rank == b.rank else None, elts, item)


def _elts(elts):
    if elts is None:
        return []
    return list(elts.values()) if isinstance(elts, dict) else list(elts)


def info_of_value(value, axis):
    """Info of an actual argument batched along `axis` (a prefix: 0/None/containers)."""
    if isinstance(value, (tuple, list)) and not hasattr(value, 'shape'):
        axes = axis if isinstance(axis, (tuple, list)) else [axis] * len(value)
        return container(tuple(info_of_value(v, a) for v, a in zip(value, axes)))
    if isinstance(value, dict):
        axes = axis if isinstance(axis, dict) else {k: axis for k in value}
        return container({k: info_of_value(v, axes[k]) for k, v in value.items()})
    ndim = getattr(value, 'ndim', None)
    if ndim is None:
        ndim = 0 if isinstance(value, (bool, int, float, complex)) else None
    if axis is None:
        return Info(False, ndim)
    return Info(True, None if ndim is None else ndim - 1)


class Result:
    def __init__(self, body, ret, info, uses_size):
        self.body = body
        self.ret = ret
        self.info = info
        self.uses_size = uses_size


def batch(fdef, param_infos, unit, fresh, callee_info=None):
    """Batch the normalized function `fdef` whose parameters have `param_infos`."""
    return Batch(fdef, param_infos, unit, fresh, callee_info).run()


class Batch:
    def __init__(self, fdef, param_infos, unit, fresh, callee_info):
        self.fdef = fdef
        self.unit = unit
        self.fresh = fresh
        self.env = dict(zip([a.id for a in fdef.args.args], param_infos))
        self.defined = set(self.env)    # names assigned on every path so far
        self.constants = _constants(fdef)   # names bound once to an int or tuple literal
        self.out = None                 # the statement list being written
        self.uses_size = False
        self.masks = []                 # batched conditions guarding the current code
        self.callee_info = callee_info  # (fn, infos) -> Info of a batched user call

    # ---- what rules use ----

    def info(self, node):
        if node is None:
            return UNKNOWN
        if isinstance(node, n.Name):
            return self.env.get(node.id, UNKNOWN)
        if isinstance(node, n.Constant):
            v = node.value
            if v is None:
                return NONE
            return SCALAR if isinstance(v, (bool, int, float, complex)) else UNKNOWN
        if isinstance(node, (n.Tuple, n.List)):
            return container(tuple(self.info(e) for e in node.elts))
        return UNKNOWN

    def size(self):
        """The batch size, `_B`, defined at the top of the generated function."""
        self.uses_size = True
        return n.name('_B')

    def tmp(self, expr, info, prefix='_v'):
        """Emit `_vN = expr` and return the new name."""
        name = self.fresh(prefix)
        self.emit(n.assign(name, expr), name, info)
        return n.name(name)

    def emit(self, stmt, target=None, info=None):
        stmt.user_line = getattr(self.current, 'user_line', None)
        self.out.append(stmt)
        if target is not None:
            self.env[target] = info
            self.defined.add(target)

    def lift(self, node, info, rank):
        """A batched operand given axes after the batch axis to reach `rank`,
        so that it broadcasts against unbatched operands as per example."""
        missing = rank - info.rank
        if not info.batched or missing <= 0:
            return node
        index = n.tuple_([n.Slice(lower=None, upper=None, step=None)]
                         + [n.const(None)] * missing)
        return self.tmp(n.Subscript(value=n.deepcopy(node), slice=index, ctx=n.Load()),
                        Info(True, rank))

    def broadcast(self, node, info):
        """An unbatched value repeated along a new batch axis (a view)."""
        if info.batched:
            return node
        return self.tmp(n.call('rt.broadcast_batch', [node, self.size()]),
                        Info(True, info.rank))

    def fail(self, message):
        raise error_at(_origin(self.current), message, self.unit)

    # ---- the walk ----

    def run(self):
        body, ret = self.fdef.body[:-1], self.fdef.body[-1].value
        out = self.block(body)
        return Result(out, ret, self.info(ret), self.uses_size)

    def block(self, stmts):
        saved, self.out = self.out, []
        for stmt in stmts:
            self.current = stmt
            self.statement(stmt)
        out, self.out = self.out, saved
        return out

    def statement(self, stmt):
        if isinstance(stmt, n.Assign):
            return self.assignment(stmt)
        if isinstance(stmt, n.If):
            return self.if_(stmt)
        if isinstance(stmt, n.For):
            return self.for_(stmt)
        if isinstance(stmt, n.While):
            return self.while_(stmt)
        if isinstance(stmt, n.Raise) and self.masks:
            return self.guarded_raise(stmt)
        self.out.append(stmt)

    def assignment(self, stmt):
        from .batch_rules import rewrite
        name = stmt.targets[0].id
        rhs, info = rewrite(self, _substitute(stmt.value, self.constants))
        if rhs is stmt.value:
            self.out.append(stmt)
        else:
            new = n.assign(name, rhs)
            new.user_line = getattr(stmt, 'user_line', None)
            self.out.append(new)
        self.env[name] = info
        self.defined.add(name)

    # ---- control flow ----

    def if_(self, stmt):
        test = self.info(stmt.test)
        if not test.batched:
            before, defined = dict(self.env), set(self.defined)
            body = self.block(stmt.body)
            after_body, self.env = self.env, before
            body_defined, self.defined = self.defined, set(defined)
            orelse = self.block(stmt.orelse)
            self.env = _join_envs(after_body, self.env)
            self.defined &= body_defined
            self.out.append(n.if_(stmt.test, body, orelse))
            return
        self.select_branches(stmt.test, stmt.body, stmt.orelse)

    def select_branches(self, cond, body, orelse):
        """Both branches run; each name they assign is selected per example."""
        assigned = sorted(_assigned(body) | _assigned(orelse))
        defined = [x for x in assigned if x in self.defined]
        defined_before = set(self.defined)
        if cond.id in assigned:            # the branches reassign it: keep this one
            cond = self.tmp(n.name(cond.id), self.info(cond), '_cond')
        saved = {x: self.tmp(n.name(x), self.env[x], f'_{x}_before' if not
                             x.startswith('_') else f'{x}_before') for x in defined}
        quiet = self.tmp(n.call('rt.quiet', []), UNKNOWN, '_err')
        before = dict(self.env)
        self.masks.append(cond)
        self.out.extend(self.block(body))
        then_env, then_names = dict(self.env), {}
        in_body = _assigned(body)
        for x in sorted(in_body):
            then_names[x] = self.tmp(n.name(x), self.env[x], f'{x}_then' if x.startswith('_')
                                     else f'_{x}_then')
        for x in sorted(in_body & set(defined)):
            self.emit(n.assign(x, n.name(saved[x].id)), x, before[x])
        self.env = dict(before, **{v.id: then_env[x] for x, v in then_names.items()})
        self.masks[-1] = ('not', cond)
        self.out.extend(self.block(orelse))
        self.masks.pop()
        else_env = self.env
        self.out.append(n.expr_stmt(n.call('rt.loud', [quiet])))
        in_else = _assigned(orelse)
        for x in assigned:
            then_value = then_names.get(x) or saved.get(x)
            then_info = then_env.get(x) if x in then_names else before.get(x)
            if x in in_else or x in saved:
                else_value, else_info = n.name(x), else_env.get(x, before.get(x))
            else:
                else_value, else_info = None, None
            if then_value is None or else_value is None:
                value, info = (then_value, then_info) if else_value is None \
                    else (else_value, else_info)
                if value is not None and value.id != x:
                    self.emit(n.assign(x, n.name(value.id)), x, info)
                else:
                    self.env[x] = info
                continue
            self.select(x, cond, then_value, then_info, else_value, else_info)
        self.defined = defined_before | (in_body & in_else)

    def select(self, target, cond, a, a_info, b, b_info):
        from .batch_rules import select_expr
        expr, info = select_expr(self, cond, a, a_info, b, b_info)
        self.emit(n.assign(target, expr), target, info)

    def guarded_raise(self, stmt):
        """A `raise` in a branch some examples take: raised if any example takes it."""
        mask = self.mask_name()
        hit = self.tmp(n.call('rt.any_true', [mask]), UNKNOWN, '_hit')
        self.out.append(n.if_(hit, [stmt], []))

    def mask_name(self):
        node = None
        for m in self.masks:
            part = m if not isinstance(m, tuple) else self.tmp(
                n.call('xp.logical_not', [m[1]]), self.info(m[1]), '_mask')
            node = part if node is None else self.tmp(
                n.call('xp.logical_and', [node, part]), Info(True, None), '_mask')
        return node

    def loop_env(self, body, wrap=None):
        """Reach the fixpoint of what is known around a loop body (dry runs),
        then promote loop-carried values that become batched (or grow a rank)
        inside the loop, so that every iteration sees one representation."""
        entry = dict(self.env)
        user_names = _assigned(body)
        for _ in range(MAX_PASSES):
            start = dict(self.env)
            saved = self.out, self.uses_size, list(self.masks), set(self.defined)
            self.block(n.deepcopy(wrap(body) if wrap else body))
            self.out, self.uses_size, self.masks, self.defined = saved
            keys = set(start) | (user_names & set(self.env))     # not the pass's own temps
            self.env = {k: _carry(start.get(k), self.env.get(k)) for k in keys}
            if self.env == start:
                break
        else:
            self.env = {k: Info(v.batched, None, None) for k, v in self.env.items()}
        fixed = self.env
        self.env = entry
        for name in sorted(entry):
            before, after = entry[name], fixed.get(name)
            if before is NONE and after is not NONE and after.batched and after.rank is not None:
                before = SCALAR       # not set yet: a zero placeholder of the loop's form
                self.emit(n.assign(name, n.const(0.0)), name, before)
            if after is None or before == after or after.rank is None or before.rank is None \
                    or before.elts is not None or before.item is not None:
                continue
            value = n.name(name)
            if after.batched and not before.batched:
                value = self.broadcast(value, before)
            value = self.lift(value, Info(after.batched, before.rank), after.rank)
            if value.id != name:
                self.emit(n.assign(name, n.name(value.id)), name, after)
        self.env = fixed

    def for_(self, stmt):
        bounds = stmt.iter.args
        if not any(self.info(b).batched for b in bounds):
            self.env[stmt.target.id] = SCALAR
            self.loop_env(stmt.body)
            defined = set(self.defined)
            self.out.append(n.for_(stmt.target, stmt.iter, self.block(stmt.body)))
            self.defined = defined
            return
        self.masked_range(stmt)

    def masked_range(self, stmt):
        """`for i in range(n)` with n batched: run to the largest n, masked."""
        args = list(stmt.iter.args)
        if len(args) == 3 and not (isinstance(args[2], n.Constant) and args[2].value > 0):
            self.fail('codax vmap: a range with batched bounds needs a constant positive step')
        start, stop = (args[0], args[1]) if len(args) > 1 else (n.const(0), args[0])
        lo = self.tmp(n.call('rt.loop_bound', [start, n.const(False)]), SCALAR, '_lo') \
            if self.info(start).batched else start
        hi = self.tmp(n.call('rt.loop_bound', [stop, n.const(True)]), SCALAR, '_hi') \
            if self.info(stop).batched else stop
        i = stmt.target
        self.env[i.id] = SCALAR
        mask_stmts = [n.assign('_in', n.Compare(left=n.name(i.id), ops=[n.Lt()],
                                                comparators=[stop]))]
        if self.info(start).batched:
            mask_stmts = [n.assign('_from', n.Compare(left=n.name(i.id), ops=[n.GtE()],
                                                      comparators=[start]))] + mask_stmts \
                + [n.assign('_in', n.call('xp.logical_and', [n.name('_from'), n.name('_in')]))]
        mask = self.fresh('_in')
        mask_stmts = _rename(mask_stmts, {'_in': mask, '_from': self.fresh('_from')})
        body = mask_stmts + [n.if_(n.name(mask), stmt.body, [])]
        self.loop_env(body)
        iter_ = n.call(n.name('range'), [lo, hi] + args[2:])
        defined = set(self.defined)
        self.out.append(n.for_(i, iter_, self.block(body)))
        self.defined = defined

    def while_(self, stmt):
        masked = lambda body: [n.if_(stmt.test, body, [])] \
            if self.info(stmt.test).batched else body              # noqa: E731
        self.loop_env(stmt.body, masked)
        defined = set(self.defined)
        if not self.info(stmt.test).batched:
            self.out.append(n.while_(stmt.test, self.block(stmt.body)))
            self.defined = defined
            return
        go = self.fresh('_go')
        self.emit(n.assign(go, n.call('rt.any_true', [stmt.test])), go, SCALAR)
        body = self.block([n.if_(stmt.test, stmt.body, [])])
        body.append(n.assign(go, n.call('rt.any_true', [stmt.test])))
        self.out.append(n.while_(n.name(go), body))
        self.defined = defined


def _carry(a, b):
    """join, except that a value entering a loop unbatched or of a lower rank
    is promoted to the batched, higher-rank form it takes in the loop."""
    if a is not None and b is not None and a.rank is not None and b.rank is not None \
            and a.elts is None and b.elts is None and a.item is None and b.item is None \
            and a.rank <= b.rank and (b.batched or not a.batched):
        return Info(a.batched or b.batched, b.rank)
    return join(a, b)


def _constants(fdef):
    """Names assigned exactly once, from an int/tuple literal (axis numbers that
    normalize gave a name: `_t3 = -1`), with their values."""
    counts, values = {}, {}
    for node in n.walk(fdef):
        if isinstance(node, n.Name) and isinstance(node.ctx, n.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
    for stmt in n.walk(fdef):
        if isinstance(stmt, n.Assign) and isinstance(stmt.targets[0], n.Name):
            value = _literal_value(stmt.value, values)
            if value is not None:
                values[stmt.targets[0].id] = value
    return {k: v for k, v in values.items() if counts.get(k) == 1}


def _literal_value(node, known):
    if isinstance(node, n.Constant) and type(node.value) in (int, tuple):
        return node.value
    if isinstance(node, n.Name):
        return known.get(node.id)
    if isinstance(node, n.UnaryOp) and isinstance(node.op, n.USub):
        inner = _literal_value(node.operand, known)
        return -inner if type(inner) is int else None
    if isinstance(node, n.Tuple):
        parts = [_literal_value(e, known) for e in node.elts]
        return tuple(parts) if all(type(p) is int for p in parts) else None
    return None


def _substitute(rhs, constants):
    """rhs with the names of known int/tuple constants replaced by their values."""
    if not constants:
        return rhs
    swap = {id(node): n.const(constants[node.id]) for node in n.walk(rhs)
            if isinstance(node, n.Name) and isinstance(node.ctx, n.Load) and node.id in constants}
    if not swap:
        return rhs
    from .forward import _copy_replacing
    return _copy_replacing(rhs, swap)


def _assigned(stmts):
    out = set()
    for stmt in stmts:
        out |= n.stored_names(stmt)
    return out


def _join_envs(a, b):
    return {k: join(a.get(k), b.get(k)) for k in set(a) | set(b)}


def _rename(stmts, mapping):
    for stmt in stmts:
        for node in n.walk(stmt):
            if isinstance(node, n.Name) and node.id in mapping:
                node.id = mapping[node.id]
    return stmts


def _origin(stmt):
    value = getattr(stmt, 'value', None)
    return value if getattr(value, 'lineno', None) else stmt
