"""The normal form: codax's IR, which every pass after `normalize` reads and writes.

Grammar (gast nodes that may appear in a normalized FunctionDef body):

    stmt  := Assign([Name], rhs)                  one operation per statement
           | Expr(Call)                           a call kept for its effect (print)
           | If(Name, [stmt], [stmt])
           | For(Name, Call(range, [atom]), [stmt])    the only `for`: over a range
           | While(Name, [stmt])                  the test Name is recomputed at the
                                                  end of the body
           | Raise(...) | Pass
           | Return(atom)                         exactly once, last in the body
    rhs   := atom
           | Call(func, [atom], [keyword(atom)])  classified: see CallInfo below
           | BinOp(atom, op, atom) | UnaryOp(op, atom) | Compare(atom, [op], [atom])
           | Subscript(atom, index)                index: atom, Slice of atoms, Tuple
           | Attribute(atom, 'shape'|'ndim'|...)   inactive attribute reads
           | Tuple([atom]) | List([atom]) | Dict([atom], [atom])
           | JoinedStr(...)                        inactive, opaque
    atom  := Name | Constant | a dotted reference to a global (np.pi, np.float32)
           | a constant expression of such references (-np.inf, float('inf')),
             marked with the value it has while compiling (normalize.StaticValues)

There is no break, continue, early return, augmented assignment, ternary,
boolean operator, comprehension, method call or tuple-unpacking target after
normalize. Calls carry a `CallInfo` in the attribute `codax`.
`describe(rhs)` is the one place that says what an rhs computes, for every pass.
"""
import inspect
import os

from runtime import TABLE
from runtime.primitives.nodes import unkept_message
from runtime.tree import builds_node, construction_layout

from . import nodes as n

OPERATORS = {
    n.Add: 'add', n.Sub: 'subtract', n.Mult: 'multiply', n.Div: 'true_divide',
    n.Pow: 'power', n.MatMult: 'matmul', n.Mod: 'remainder', n.FloorDiv: 'floor_divide',
}
UNARY_OPERATORS = {n.USub: 'negative', n.UAdd: 'positive'}
INACTIVE_ATTRIBUTES = {'shape', 'ndim', 'size', 'dtype', 'itemsize', 'nbytes', 'strides'}


class CallInfo:
    """What a call in normal form refers to.

    kind: 'prim' (a primitive record), 'user' (a Python function with source,
    differentiated in turn), 'dynamic' (a callable held in a local variable,
    dispatched at run time), 'native' (anything else: no derivative known).
    """

    def __init__(self, kind, prim=None, obj=None, label=''):
        self.kind = kind
        self.prim = prim
        self.obj = obj
        self.label = label

    def __deepcopy__(self, memo):
        return self          # shared, immutable: copies of a tree point at one record


class Op:
    """The operation an rhs performs.

    kind: 'copy', 'prim', 'call' (user/dynamic function), 'native',
    'container' (tuple/list/dict literal), 'inactive'.
    inputs: {param: node} for 'prim'; (adjoint position, node) pairs for
    'call' and 'container'; a list of nodes otherwise.
    """

    def __init__(self, kind, prim=None, inputs=None, label=''):
        self.callee = None          # for 'call': the function expression
        self.kind = kind
        self.prim = prim
        self.inputs = inputs if inputs is not None else {}
        self.label = label

    def diff_inputs(self):
        """(param, node) pairs through which a gradient can flow."""
        if self.kind == 'prim':
            return [(p, self.inputs[p]) for p in self.prim.diff_params() if p in self.inputs]
        if self.kind in ('copy', 'native'):
            return list(enumerate(self.inputs))
        if self.kind in ('call', 'container'):
            return list(self.inputs)
        return []

    def diff_names(self):
        out = n.names_in(self.callee) if self.callee is not None else set()
        for _, node in self.diff_inputs():
            out |= n.names_in(node) if node is not None else set()
        return out


def packs_keywords(fn):
    """Whether fn's generated code takes the dict of its keyword arguments as
    one more positional argument, after the others (normalize; calls pass it
    as `**d`): fn has **kwargs or keyword-only parameters (parse reads
    those from the dict). Not codax's own wrappers of transformed functions
    (`transformed(*args, **kwargs)`), which take their user's form."""
    code = getattr(fn, '__code__', None)
    if code is None:
        return False
    if codax_own(fn):
        return code.co_flags & (inspect.CO_VARKEYWORDS | inspect.CO_VARARGS) \
            == inspect.CO_VARKEYWORDS
    return bool(code.co_flags & inspect.CO_VARKEYWORDS or code.co_kwonlyargcount)


_OWN_DIRECTORIES = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), package) + os.sep for package in ('codax', 'runtime', 'transformer'))


def codax_own(fn):
    """A function of codax's own (its packages', generated code, the wrappers
    transformations return): its *args and keyword-only parameters are not
    compiled as a user's are (packs_keywords, parse.flat_view)."""
    code = fn.__code__
    return code.co_filename.startswith('<codax ') or code.co_filename.startswith(
        _OWN_DIRECTORIES) or getattr(fn, '__codax_transformed__', None) is not None


def describe(rhs):
    if isinstance(rhs, (n.Name, n.Constant)):
        return Op('copy', inputs=[rhs])
    if isinstance(rhs, n.BinOp):
        prim = TABLE[OPERATORS[type(rhs.op)]] if type(rhs.op) in OPERATORS else None
        if prim is None:
            return Op('inactive')
        return Op('prim', prim, {'x1': rhs.left, 'x2': rhs.right})
    if isinstance(rhs, n.UnaryOp):
        if type(rhs.op) in UNARY_OPERATORS:
            return Op('prim', TABLE[UNARY_OPERATORS[type(rhs.op)]], {'x': rhs.operand})
        return Op('inactive')
    if isinstance(rhs, n.Subscript):
        return Op('prim', TABLE['getitem'], {'a': rhs.value, 'idx': index_expr(rhs.slice)})
    if isinstance(rhs, n.Call):
        return _describe_call(rhs)
    if isinstance(rhs, (n.Tuple, n.List)):
        return Op('container', inputs=list(enumerate(rhs.elts)))
    if isinstance(rhs, n.Dict):
        if not all(isinstance(k, n.Constant) for k in rhs.keys):   # (normalize makes them so)
            return Op('native', inputs=list(rhs.values), label='a dict with computed keys')
        return Op('container', inputs=[(k.value, v) for k, v in zip(rhs.keys, rhs.values)])
    if isinstance(rhs, n.Attribute):
        if getattr(rhs, 'codax_static', False) or rhs.attr in INACTIVE_ATTRIBUTES:
            return Op('inactive')
        return Op('native', inputs=[rhs.value], label=f'the attribute .{rhs.attr}')
    return Op('inactive')


def as_defined_call(op, rhs):
    """A primitive whose derivatives go through its Python definition
    (record.defined: rt.batch_loop) as the derivative passes see it: a call."""
    if op.kind != 'prim' or not op.prim.defined:
        return op
    params = list(op.prim.signature.parameters)     # keywords: adjoints by position too
    pairs = list(enumerate(rhs.args)) + [(params.index(k.arg), k.value) for k in rhs.keywords]
    call = Op('call', inputs=pairs, label=op.label)
    call.callee = rhs.func
    return call


def as_node_attribute(op, rhs, numeric):
    """An attribute read `b.x` as the derivative passes see it: the record
    node_attribute, which finds at run time which child of the pytree node b
    the attribute holds (runtime/primitives/nodes.py). Not where b is known
    to be an array, a number or a plain object (`numeric`): that read keeps
    its compile-time error."""
    if op.kind != 'native' or not isinstance(rhs, n.Attribute) \
            or not isinstance(rhs.value, n.Name) or rhs.value.id in numeric:
        return op
    return Op('prim', TABLE['node_attribute'], {'node': rhs.value, 'name': n.const(rhs.attr)},
              label=op.label)


def as_node_construction(op, rhs, diff, numeric):
    """A call `Box(x, y)` building a pytree node (of a registered type, or a
    namedtuple) from arguments that carry derivatives (names in `diff`), as
    the derivative passes see it: the record node_construction, whose rules
    split the node's derivative into its arguments' in the order of the
    constructor's arguments (runtime/primitives/nodes.py). Which child each
    argument is, is found now, by building a node around placeholders. Where
    that tells nothing, or an argument carrying a derivative known to be a
    number or array is no child, the call stays 'native' with a `refusal`
    saying why (no_rule below); one whose kind is known only at run time is
    checked then (`unkept`)."""
    kind = getattr(getattr(rhs, 'codax', None), 'obj', None)
    if op.kind != 'native' or not isinstance(rhs, n.Call) or not builds_node(kind):
        return op
    args = list(rhs.args) + [k.value for k in rhs.keywords]
    carried = [k for k, a in enumerate(args) if isinstance(a, n.Name) and a.id in diff]
    if not carried:
        return op
    what = f'codax cannot differentiate this construction of a {kind.__name__}'
    try:
        where = construction_layout(kind, len(args), tuple(k.arg for k in rhs.keywords))[0]
    except ValueError as exc:
        op.refusal = f'{what}: {exc}'
        return op
    unkept = [k for k in carried if where[k] is None]
    numbers = [k for k in unkept if args[k].id in numeric]
    if numbers:
        op.refusal = f'{what}: ' + unkept_message(_argument_name(rhs, numbers[0]))
        return op
    inputs = {'kind': rhs.func, 'where': n.const(where),
              'unkept': n.tuple_([args[k] for k in unkept]),
              'args': n.tuple_(args)}
    return Op('prim', TABLE['node_construction'], inputs, label=op.label)


def _argument_name(call, k):
    """Argument k of a call as the user wrote it: by position, or by keyword."""
    if k < len(call.args):
        return f'its argument {k + 1}'
    return f'its argument {call.keywords[k - len(call.args)].arg}='


def no_rule(op):
    """Why a 'native' op that a derivative must flow through is refused."""
    return getattr(op, 'refusal', None) or (
        f'{op.label} has no derivative rule, and codax cannot differentiate through it (no '
        'Python source it can read)')


def _describe_call(call):
    info = getattr(call, 'codax', None) or CallInfo('native', label='this call')
    if info.kind == 'prim':
        return Op('prim', info.prim, bound_arguments(call, info.prim), label=info.label)
    if info.kind in ('user', 'dynamic'):
        pairs = _call_adjoints(call, info)
        if pairs is None:
            return Op('native', inputs=list(call.args) + [k.value for k in call.keywords],
                      label=info.label)
        if info.kind == 'dynamic' and isinstance(call.func, n.Name):
            # a closure's adjoint comes after the arguments' (runtime/closures.py)
            pairs.append((len(call.args) + len(call.keywords), call.func))
        op = Op('call', inputs=pairs, label=info.label)
        op.callee = call.func
        return op
    receiver = [call.func.value] if isinstance(call.func, n.Attribute) \
        and not getattr(call.func, 'codax_static', False) else []
    return Op('native', inputs=receiver + list(call.args) + [k.value for k in call.keywords],
              label=info.label)


def _call_adjoints(call, info):
    """(position, node) of each argument of a user function's call: where its
    pullback returns that argument's adjoint, one per parameter in order.
    normalize passes keywords by position, but for `**d`, the dict of what a
    **kwargs parameter takes, which follows the named parameters (the
    pullback's last adjoint is d's). None where a keyword is not found."""
    pairs = list(enumerate(call.args))
    if not call.keywords:
        return pairs
    callee = getattr(info.obj, 'fun', info.obj)
    try:
        params = list(inspect.signature(callee).parameters)
    except (TypeError, ValueError):
        params = []
    for k in call.keywords:
        if k.arg is None:
            pairs.append((len(call.args), k.value))
        elif k.arg in params:
            pairs.append((params.index(k.arg), k.value))
        else:
            return None
    return pairs


def bound_arguments(call, prim):
    """{param: node} for a primitive call; a *varargs param maps to a Tuple node."""
    bound = prim.bind(call.args, {k.arg: k.value for k in call.keywords})
    out = {}
    for param, value in bound.items():
        kind = prim.signature.parameters[param].kind
        out[param] = n.tuple_(value) if kind == kind.VAR_POSITIONAL else value
    for param, spec in prim.signature.parameters.items():
        if param not in out and spec.default is not spec.empty:
            out[param] = n.const(spec.default) if _is_literal(spec.default) else None
    return out


def _is_literal(value):
    return value is None or isinstance(value, (bool, int, float, str, tuple))


def index_expr(index):
    """A subscript's index as an ordinary expression (slices as slice(...))."""
    if isinstance(index, n.Slice):
        parts = [p if p is not None else n.const(None)
                 for p in (index.lower, index.upper, index.step)]
        return n.call(n.name('slice'), parts)
    if isinstance(index, n.Tuple):
        return n.tuple_([index_expr(e) for e in index.elts])
    return index
