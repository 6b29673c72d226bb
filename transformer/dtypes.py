"""Dtype and rank of every name in a normalized function, for the fusion pass.

A Type is (dtype, ndim): an array of that dtype and rank, or (dtype, None) for
a Python number (`float`, `int`, `bool`), which NumPy 2 treats as weak in
mixed arithmetic; a Tree holds the types of a tuple's, list's or dict's items. Types come from the arguments of the call being
specialized and flow forward. NumPy itself is the dtype rule: a primitive's
result type is that of its implementation run on tiny stand-in arrays of the
operands' types, so promotion is NumPy's by construction. Where anything is
unknown the answer is None, and the fusion pass leaves that code alone.
"""
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy

import runtime

from . import nodes as n
from .ir import describe

_PYTHON = {bool: numpy.dtype(bool), int: numpy.dtype(numpy.int64),
           float: numpy.dtype(numpy.float64)}


@dataclass(frozen=True)
class Type:
    dtype: numpy.dtype
    ndim: Optional[int]          # None: a Python number

    @property
    def is_array(self):
        return self.ndim is not None

    def stand_in(self):
        """A value of this type: ones, so logs and divisions stay quiet."""
        if self.ndim is None:
            return {'b': True, 'i': 1, 'f': 1.0}[self.dtype.kind]
        return numpy.ones((1,) * self.ndim, self.dtype)


@dataclass(frozen=True)
class Tree:
    """A tuple, list or dict (a pytree node) with the Type of each item (None
    where unknown), so `params['W']` has a type."""
    kind: type
    items: tuple                 # (key, Type | Tree | None) pairs

    def stand_in(self):
        values = [(k, _UNKNOWN if t is None else t.stand_in()) for k, t in self.items]
        if self.kind is dict:
            return dict(values)
        return self.kind(v for _, v in values)


_UNKNOWN = object()              # a stand-in no NumPy operation accepts


@dataclass(frozen=True)
class Literal:
    """A tuple of constants, such as an `axis=(0, 1)` that normalize named:
    its stand-in is itself."""
    value: tuple
    is_array = False

    def stand_in(self):
        return self.value


def _tree(container, item_type):
    keys = container.keys() if type(container) is dict else range(len(container))
    return Tree(type(container), tuple((k, item_type(container[k])) for k in keys))


def type_of_value(value):
    if type(value) in _PYTHON:
        return Type(_PYTHON[type(value)], None)
    if type(value) in (tuple, list, dict):
        return _tree(value, type_of_value)
    dtype, shape = getattr(value, 'dtype', None), getattr(value, 'shape', None)
    if isinstance(dtype, numpy.dtype) and shape is not None:
        return Type(dtype, len(shape))
    return None


def type_of_result(result):
    if isinstance(result, numpy.generic):
        return Type(result.dtype, 0)
    if type(result) in (tuple, list, dict):
        return _tree(result, type_of_result)
    if type(result) in _PYTHON:
        return Type(_PYTHON[type(result)], None)
    if isinstance(result, numpy.ndarray):
        return Type(result.dtype, result.ndim)
    return None


COMPARISONS = {n.Lt: 'less', n.LtE: 'less_equal', n.Gt: 'greater', n.GtE: 'greater_equal',
               n.Eq: 'equal', n.NotEq: 'not_equal'}


def operation(rhs):
    """(record, {param: node}) for an rhs that applies one primitive, else None.
    Comparisons count as their ufuncs."""
    if isinstance(rhs, n.Compare) and len(rhs.ops) == 1 and type(rhs.ops[0]) in COMPARISONS:
        return runtime.TABLE[COMPARISONS[type(rhs.ops[0])]], \
            {'x1': rhs.left, 'x2': rhs.comparators[0]}
    op = describe(rhs)
    if op.kind != 'prim':
        return None
    return op.prim, op.inputs


def _argument(node, env):
    """The stand-in value of an argument node, or raise LookupError."""
    if node is None:
        raise LookupError
    if isinstance(node, n.Constant):
        return node.value
    if getattr(node, 'codax_static', False) and hasattr(node, 'codax_value'):
        return node.codax_value              # np.float32, a module's constant
    if isinstance(node, n.Name):
        t = env.get(node.id)
        if t is None:
            raise LookupError
        return t.stand_in()
    if isinstance(node, n.Tuple) and all(isinstance(e, n.Constant) for e in node.elts):
        return tuple(e.value for e in node.elts)
    raise LookupError


def _implementation(prim):
    return eval(prim.impl, {'xp': numpy, 'rt': runtime})   # noqa: S307 (a record's own text)


def infer(rhs, env):
    """The Type of `rhs` given the Types of names in `env`, or None."""
    if isinstance(rhs, n.Name):
        return env.get(rhs.id)
    if isinstance(rhs, n.Constant):
        return type_of_value(rhs.value)
    if isinstance(rhs, n.Tuple) and all(isinstance(e, n.Constant) for e in rhs.elts):
        return Literal(tuple(e.value for e in rhs.elts))
    if isinstance(rhs, (n.Tuple, n.List)):
        return Tree(tuple if isinstance(rhs, n.Tuple) else list,
                    tuple((k, infer(e, env)) for k, e in enumerate(rhs.elts)))
    if isinstance(rhs, n.Dict) and all(isinstance(k, n.Constant) for k in rhs.keys):
        return Tree(dict, tuple((k.value, infer(v, env)) for k, v in zip(rhs.keys, rhs.values)))
    found = operation(rhs)
    if found is None:
        return None
    prim, inputs = found
    spec = prim.signature.parameters
    try:
        args, kwargs = [], {}
        for param, spec_param in spec.items():     # in signature order
            node = inputs.get(param)
            if node is None or isinstance(node, n.Constant) and node.value is spec_param.default:
                continue
            value = _argument(node, env)
            if spec_param.kind == spec_param.KEYWORD_ONLY or kwargs \
                    or len(args) < list(spec).index(param):
                kwargs[param] = value        # after a skipped parameter: by name
            else:
                args.append(value)
        with warnings.catch_warnings(), numpy.errstate(all='ignore'):
            warnings.simplefilter('ignore')
            result = _implementation(prim)(*args, **kwargs)
    except Exception:                    # noqa: BLE001 (any failure: unknown type)
        return None
    if isinstance(rhs, (n.BinOp, n.UnaryOp, n.Compare)) \
            and all(type(v) in _PYTHON for v in args + list(kwargs.values())):
        return type_of_value(_python_result(rhs, args))   # Python's arithmetic: a number
    return type_of_result(result)


def _python_result(rhs, args):
    """Python's own operators on numbers give a Python number."""
    import operator
    ops = {n.Add: operator.add, n.Sub: operator.sub, n.Mult: operator.mul,
           n.Div: operator.truediv, n.Pow: operator.pow, n.Mod: operator.mod,
           n.FloorDiv: operator.floordiv, n.USub: operator.neg, n.UAdd: operator.pos,
           n.Lt: operator.lt, n.LtE: operator.le, n.Gt: operator.gt, n.GtE: operator.ge,
           n.Eq: operator.eq, n.NotEq: operator.ne}
    op = rhs.ops[0] if isinstance(rhs, n.Compare) else rhs.op
    return ops[type(op)](*args)


def join(a, b):
    """Types of a name reached along two paths."""
    return {k: t for k, t in a.items() if b.get(k) == t}
