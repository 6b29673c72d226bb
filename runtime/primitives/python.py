"""Python builtins on numbers and lists, treated as primitives."""
import math

from .. import adjoint, closures, rules
from ..table import batching, linear, nondifferentiable, primitive

primitive('py_sum', 'iterable, /, start=0', {'iterable': 'rt.broadcast_list(g, iterable, ans)',
                                             'start': 'rt.unbroadcast(g, start, ans)'},
          targets=(sum,), impl='sum', family='python', jvp='linear')
# `t` is the tuple of the arguments' tangents: the chosen one is passed on.
primitive('py_max', '*args', {'args': 'rt.py_extremum_vjp(g, args, ans)'},
          targets=(max,), impl='max', family='python',
          jvp={'args': 'rt.py_extremum_jvp(t, args, ans)'})
primitive('py_min', '*args', {'args': 'rt.py_extremum_vjp(g, args, ans)'},
          targets=(min,), impl='min', family='python',
          jvp={'args': 'rt.py_extremum_jvp(t, args, ans)'})
linear('py_float', 'x=0.0', {'x': 'g'}, targets=(float,), impl='float', family='python')
nondifferentiable('py_len', 'obj', targets=(len,), impl='len')
nondifferentiable('py_int', 'x=0', targets=(int,), impl='int')
nondifferentiable('py_bool', 'x=False', targets=(bool,), impl='bool')
nondifferentiable('py_isinstance', 'obj, classinfo', targets=(isinstance,), impl='isinstance',
                  batch='isinstance')
linear('py_item', 'a', {'a': 'g'}, targets=(rules.to_scalar,), impl='rt.to_scalar',
       methods=('item',), family='python')
primitive('math_log', 'x, base=None',
          {'x': 'g / x if base is None else g / (x * xp.log(base))',
           'base': '-g * ans / (base * xp.log(base))'},
          jvp={'x': 't / x if base is None else t / (x * xp.log(base))',
               'base': '-t * ans / (base * xp.log(base))'},
          targets=(math.log, rules.log_base), impl='rt.log_base', family='python')
nondifferentiable('stop_gradient', 'x', targets=(adjoint.stop_gradient,), impl='rt.stop_gradient')
linear('finalize_distinct', 'grads', {'grads': 'g'}, targets=(adjoint.finalize_distinct,),
       impl='rt.finalize_distinct', family='python')
# Integer bookkeeping (loop bounds, slice bounds): never differentiable, even
# when derivative code being transformed again reads them off its save stack.
nondifferentiable('py_range', 'start, stop=None, step=None', targets=(range,), impl='range')
nondifferentiable('py_slice', 'start, stop=None, step=None', targets=(slice,), impl='slice')
# Text (dict keys made as 'k' + str(i)), even of an index popped off a save stack.
nondifferentiable('py_str', "object=''", targets=(str,), impl='str')
# The Jacobians that codax.jacfwd / jacrev generate, column by column.
nondifferentiable('is_array_leaf', 'x', targets=(rules.is_array_leaf,), impl='rt.is_array_leaf')
nondifferentiable('unit_tangent', 'x, j', targets=(rules.unit_tangent,), impl='rt.unit_tangent')
nondifferentiable('basis', 'x, lead=0', targets=(rules.basis,), impl='rt.basis')
nondifferentiable('default_argument', 'fn, i', targets=(rules.default_argument,),
                  impl='rt.default_argument')
nondifferentiable('tangent_function', 'fn, primals, argnums', targets=(adjoint.tangent_function,),
                  impl='rt.tangent_function')
# `lead`: leading batch axes (a Jacobian inside vmapped code); see runtime/rules.py.
linear('jacobian_from_columns', 'cols, outs, x, lead=0',
       {'cols': 'rt.columns_vjp(g, cols, outs, x, ans, lead)'},
       targets=(rules.jacobian_from_columns,), impl='rt.jacobian_from_columns', family='python')
linear('jacobian_from_rows', 'rows, out, x, lead=0',
       {'rows': 'rt.rows_vjp(g, rows, out, x, ans, lead)'},
       targets=(rules.jacobian_from_rows,), impl='rt.jacobian_from_rows', family='python')
linear('columns_vjp', 'h, cols, outs, x, y, lead=0',
       {'h': 'rt.sum_to(rt.jacobian_from_columns(g, outs, x, lead), rt.shape(h))'},
       targets=(rules.columns_vjp,), impl='rt.columns_vjp', family='python')
linear('rows_vjp', 'h, rows, out, x, y, lead=0',
       {'h': 'rt.sum_to(rt.jacobian_from_rows(g, out, x, lead), rt.shape(h))'},
       targets=(rules.rows_vjp,), impl='rt.rows_vjp', family='python')
linear('dense', 't, x', {'t': 'rt.dense_vjp(g, t, x)'}, targets=(adjoint.dense,), impl='rt.dense',
       family='python')
# What the definitions of rt.vjp_call and rt.pullback (codax/calls.py) use.
nondifferentiable('sweeps', 'fn, *args', targets=(adjoint.sweeps,), impl='rt.sweeps')
nondifferentiable('sweeps_for', 'fn, active, numeric, *args', targets=(adjoint.sweeps_for,),
                  impl='rt.sweeps_for', batch='sweeps')
nondifferentiable('pullback_function', 'pb', targets=(adjoint.pullback_function,),
                  impl='rt.pullback_function')
linear('pullback_state', 'pb', {'pb': '(0.0, g)'}, targets=(adjoint.pullback_state,),
       impl='rt.pullback_state', family='python')
# Dict views, so that `for k, v in params.items()` is differentiated.
# A key's tangent is the zero: a numeric key (`s + k * v`) is no input.
linear('dict_items', 'd', {'d': 'rt.dict_items_vjp(g, d)'}, targets=(rules.dict_items,),
       impl='rt.dict_items', methods=('items',), family='python',
       jvp={'d': 'rt.dict_items_tangent(t)'})
linear('dict_items_tangent', 't', {'t': 'rt.dict_items_vjp(g, t)'},
       targets=(rules.dict_items_tangent,), impl='rt.dict_items_tangent', family='python')
linear('dict_values', 'd', {'d': 'rt.dict_values_vjp(g, d)'}, targets=(rules.dict_values,),
       impl='rt.dict_values', methods=('values',), family='python')
nondifferentiable('dict_keys', 'd', targets=(rules.dict_keys,), methods=('keys',),
                  impl='rt.dict_keys')
# `a + b` where normalize saw a list or tuple (t + (v,), xs.extend(ys)): joined sequences.
linear('concat', 'a, b',
       {'a': 'rt.concat_vjp(g, a, b, ans, 0)', 'b': 'rt.concat_vjp(g, a, b, ans, 1)'},
       targets=(rules.concat,), impl='rt.concat', family='python', batch='concat')
linear('rt_concat_vjp', 'cot, a, b, y, which',
       {'cot': 'rt.concat_vjp_transpose(g, cot, a, b, y, which)'}, targets=(rules.concat_vjp,),
       impl='rt.concat_vjp', family='adjoint', batch='concat_vjp')
linear('py_tuple', 'iterable=()', {'iterable': 'rt.sequence_vjp(g, iterable)'}, targets=(tuple,),
       impl='tuple', family='python')
linear('py_list', 'iterable=()', {'iterable': 'rt.sequence_vjp(g, iterable)'}, targets=(list,),
       impl='list', family='python')
# tuple()'s and list()'s adjoint and its transpose: each the other's adjoint.
linear('rt_sequence_vjp', 'cot, x', {'cot': 'rt.sequence_vjp_transpose(g, x)'},
       targets=(rules.sequence_vjp,), impl='rt.sequence_vjp', family='adjoint', batch='loop')
linear('rt_sequence_vjp_transpose', 'cot, x', {'cot': 'rt.sequence_vjp(g, x)'},
       targets=(rules.sequence_vjp_transpose,), impl='rt.sequence_vjp_transpose',
       family='adjoint', batch='loop')

batching(py_sum=('py_sum',), py_extremum=('py_max', 'py_min'), py_len=('py_len',),
         scalar_cast=('py_float', 'py_int', 'py_bool', 'py_item'),
         same=('stop_gradient', 'finalize_distinct'), unbatched_result=('is_array_leaf',),
         unbatched_only=('py_range', 'py_slice', 'py_str'),
         pullback_function=('pullback_function', 'default_argument'),
         pullback_state=('pullback_state',), sweeps=('sweeps', 'tangent_function'),
         container_view=('dict_items', 'dict_items_tangent', 'dict_values', 'dict_keys',
                         'py_tuple', 'py_list'),
         materialize=('dense',),
         elementwise=('math_log',),
         jacobian=('basis', 'jacobian_from_columns', 'jacobian_from_rows', 'columns_vjp',
                   'rows_vjp'),
         loop=('unit_tangent',))
# Closures made inside transformed code (runtime/closures.py): a closure's
# tangent and adjoint are the tuple of its captured values' ones.
primitive('closure', 'function, *captured', {'captured': 'g'}, nondiff=('function',),
          jvp={'captured': 't'}, targets=(closures.closure,), impl='rt.closure',
          family='python', batch='closure')
primitive('captured', 'c, k', {'c': 'rt.captured_cotangent(g, c, k)'}, nondiff=('k',),
          jvp={'c': 'rt.item(t, k)'}, targets=(closures.captured,), impl='rt.captured',
          family='python', batch='captured')
linear('captured_cotangent', 'ct, c, k', {'ct': 'rt.item(g, k)'},
       targets=(closures.captured_cotangent,), impl='rt.captured_cotangent', family='python',
       batch='captured_cotangent')
# grad(c), vmap(c), jit(c), ... of a closure c: the same captured values.
primitive('transformation', 'fun, transform, args, kwargs', {'fun': 'g'},
          nondiff=('transform', 'args', 'kwargs'), jvp={'fun': 't'},
          targets=(closures.transformation,), impl='rt.transformation', family='python',
          batch='transformation')
nondifferentiable('closure_function', 'c', targets=(closures.closure_function,),
                  impl='rt.closure_function', batch='closure_function')
