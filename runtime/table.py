"""The primitive table: one record per NumPy function codax understands.

A record holds every rule side by side. Rules are tiny Python expression
templates over the names `g` (the output's cotangent, broadcastable to the
output), `ans` (the output), the parameter names of the signature, `xp` (the
array module) and `rt` (this runtime). The transformer substitutes the
caller's arguments for the parameter names and pastes the result into the
generated source, so a rule reads exactly like the code it produces.

JVP rules are either a dict {param: template}, where `t` names that
parameter's tangent and the output's tangent is the sum of the terms, or the
word 'linear': the primitive is linear in its differentiable parameters
jointly, so its tangent is the same call with tangents in their place.
Element-wise records derive theirs from the VJP (an element-wise derivative
is diagonal: `g * cos(x)` pulls back and `t * cos(x)` pushes forward).
"""
import inspect
import math

import numpy


class Primitive:
    __slots__ = ('name', 'impl', 'signature', 'vjp', 'jvp', 'nondiff', 'differentiable',
                 'targets', 'methods', 'family', 'c_expr', 'batch', 'defined')

    def __init__(self, name, signature, vjp=None, impl=None, nondiff=(),
                 differentiable=True, targets=None, methods=(), family='other',
                 c_expr=None, jvp=None, batch=None):
        self.name = name
        self.impl = impl or f'xp.{name}'
        self.signature = _signature(signature)
        self.vjp = dict(vjp or {})
        self.jvp = jvp if jvp == 'linear' else dict(jvp or {})
        self.nondiff = frozenset(nondiff)
        self.differentiable = differentiable
        self.targets = tuple(targets if targets is not None else _default_targets(name))
        self.methods = tuple(methods)
        self.family = family
        self.c_expr = c_expr
        self.batch = batch        # the name of its batching rule (transformer/batch_rules/)
        # Derivatives go through a generated Python definition of the call
        # (codax/calls.py) instead of rules: for calls that run any function.
        self.defined = False
        unknown = (set(self.vjp) | set(self.jvp if isinstance(self.jvp, dict) else ())) \
            - set(self.signature.parameters)
        if unknown:
            raise ValueError(f'{name}: rules for unknown parameters {unknown}')

    @property
    def params(self):
        return list(self.signature.parameters)

    def diff_params(self):
        """Parameters whose adjoint a VJP rule computes."""
        if not self.differentiable:
            return []
        return [p for p in self.params if p not in self.nondiff]

    def bind(self, args, kwargs):
        """Map call arguments to parameter names (defaults are not filled in)."""
        bound = self.signature.bind(*args, **kwargs)
        return dict(bound.arguments)

    def __repr__(self):
        return f'<primitive {self.name}>'


def _signature(spec):
    if isinstance(spec, inspect.Signature):
        return spec
    namespace = {}
    exec(f'def _f({spec}): pass', {'None': None}, namespace)
    return inspect.signature(namespace['_f'])


def _default_targets(name, math_name=None):
    """numpy.<name>, and math.<math_name> for the scalar twin if there is one."""
    found = [getattr(numpy, name, None), getattr(math, math_name or name, None)]
    return tuple(obj for obj in found if obj is not None)


class Table:
    def __init__(self):
        self.by_name = {}
        self._by_id = {}
        self.methods = {}

    def add(self, prim):
        if prim.name in self.by_name:
            raise ValueError(f'primitive {prim.name} defined twice')
        self.by_name[prim.name] = prim
        for target in prim.targets:
            self._by_id.setdefault(id(target), (target, prim))
        for method in prim.methods:
            self.methods[method] = prim
        return prim

    def lookup(self, obj):
        hit = self._by_id.get(id(obj))
        return hit[1] if hit is not None and hit[0] is obj else None

    def __iter__(self):
        return iter(self.by_name.values())

    def __getitem__(self, name):
        return self.by_name[name]

    def __contains__(self, name):
        return name in self.by_name


TABLE = Table()


def primitive(name, signature, vjp=None, **kw):
    return TABLE.add(Primitive(name, signature, vjp, **kw))


# ---- family constructors: each fills the parts a family shares ----

def unary(name, dx, c_expr=None, targets=None, methods=(), math_name=None, **kw):
    """Element-wise f(x): `dx` is the adjoint of x in terms of g, x, ans."""
    if targets is None:
        targets = _default_targets(name, math_name)
    kw.setdefault('jvp', {'x': _tangent_of(dx)})
    kw.setdefault('batch', 'elementwise')
    return primitive(name, 'x, /, out=None, where=True, dtype=None', {'x': dx},
                     nondiff=('out', 'where', 'dtype'), family='elementwise',
                     c_expr=c_expr, targets=targets, methods=methods, **kw)


def binary(name, dx1, dx2, c_expr=None, targets=None, math_name=None, **kw):
    """Element-wise f(x1, x2) with broadcasting: the rules give the adjoints
    before broadcasting is undone, which the constructor adds."""
    vjp = {}
    if dx1 is not None:
        vjp['x1'] = f'rt.unbroadcast({dx1}, x1, ans)'
    if dx2 is not None:
        vjp['x2'] = f'rt.unbroadcast({dx2}, x2, ans)'
    if targets is None:
        targets = _default_targets(name, math_name)
    kw.setdefault('jvp', {p: _tangent_of(d) for p, d in (('x1', dx1), ('x2', dx2)) if d is not None})
    kw.setdefault('batch', 'elementwise')
    return primitive(name, 'x1, x2, /, out=None, where=True, dtype=None', vjp,
                     nondiff=('out', 'where', 'dtype'), family='elementwise',
                     c_expr=c_expr, targets=targets, **kw)


def reduction(name, dx, methods=(), signature='a, axis=None, dtype=None, out=None, keepdims=False',
              **kw):
    """Reduction over `axis` with `keepdims`; `dx` may use rt.sum_vjp et al.
    `jvp` is 'linear' or the tangent template of the reduced array (in `t`)."""
    params = [p.strip().split('=')[0] for p in signature.split(',')]
    nondiff = [p for p in params if p not in ('a', 'x')]
    jvp = kw.pop('jvp', None)
    kw.setdefault('batch', 'reduce')
    if isinstance(jvp, str) and jvp != 'linear':
        jvp = {params[0]: jvp}
    return primitive(name, signature, {params[0]: dx}, nondiff=nondiff,
                     family='reduction', methods=methods, jvp=jvp, **kw)


def _tangent_of(vjp_template):
    """An element-wise VJP `g * f'(x)` read as a JVP: the tangent `t` for `g`."""
    import re
    return re.sub(r'\bg\b', 't', vjp_template)


def nondifferentiable(name, signature, targets=None, methods=(), impl=None, batch=None,
                      c_expr=None):
    """Outputs carry no gradient (integer-valued or piecewise constant)."""
    return primitive(name, signature, {}, differentiable=False, targets=targets,
                     methods=methods, family='nondifferentiable', impl=impl, batch=batch,
                     c_expr=c_expr)


def linear(name, signature, vjp, **kw):
    """Shape and structure ops: linear in their array inputs."""
    params = list(_signature(signature).parameters)
    nondiff = [p for p in params if p not in vjp]
    kw.setdefault('jvp', 'linear')
    return primitive(name, signature, vjp, nondiff=nondiff, family=kw.pop('family', 'shape'), **kw)


def batching(**rules):
    """Name the batching rule of records already defined: rule=(names, ...)."""
    for rule_name, names in rules.items():
        for name in names:
            TABLE[name].batch = rule_name
