"""Reads and writes by index (arrays and Python containers), and list building."""
from .. import adjoint, rules
from ..table import batching, linear, nondifferentiable

# `a[idx]` in the user's code; emitted with subscript syntax, not a call.
linear('getitem', 'a, idx', {'a': 'rt.getitem_vjp(g, a, idx)'}, targets=(rules.getitem,),
       impl='rt.getitem',
       family='indexing')
# `a[idx] = v`, made functional by normalize: a = rt.setitem(a, idx, v).
linear('setitem', 'a, idx, v', {'a': 'rt.setitem_vjp_x(g, ans, idx)',
                                'v': 'rt.setitem_vjp_v(g, ans, idx, v)'},
       targets=(adjoint.setitem,), impl='rt.setitem', family='indexing')
# `xs.append(v)`, made functional by normalize: xs = rt.append(xs, v).
linear('append', 'xs, v', {'xs': 'rt.append_vjp_list(g, xs)', 'v': 'rt.append_vjp_value(g)'},
       targets=(adjoint.append,), impl='rt.append', family='indexing')
linear('take', 'a, indices, axis=None, out=None, mode="raise"',
       {'a': 'rt.take_vjp(g, a, ans, indices, axis, mode)'}, methods=('take',), family='indexing')
linear('take_along_axis', 'arr, indices, axis=-1',
       {'arr': 'rt.take_along_axis_vjp(g, arr, ans, indices, axis)'}, family='indexing',
       batch='loop')
# What a `for` loop walks (normalize: `for x in xs` -> `_seq = rt.iterate(xs)`).
linear('iterate', 'obj', {'obj': 'g'}, targets=(adjoint.iterate,), impl='rt.iterate',
       family='indexing')

# Where a condition holds, as indices (integers: no derivative). How many
# there are depends on the values: batched, they run per example.
nondifferentiable('nonzero', 'a', methods=('nonzero',), batch='loop')
nondifferentiable('flatnonzero', 'a', batch='loop')
nondifferentiable('argwhere', 'a', batch='loop')

batching(getitem=('getitem',), setitem=('setitem',), append=('append',), axes=('take',),
         iterate=('iterate',), where=('where',))
