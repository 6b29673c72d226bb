"""The helpers that batched code calls, as primitives: so that vmapped code
can be differentiated (grad(vmap(f))) and batched again (vmap(vmap(f)))."""
from .. import batching
from ..table import linear, nondifferentiable, primitive


def _helper(fn, signature, vjp, **kw):
    return linear(f'rt_{fn.__name__}', signature, vjp, targets=(fn,),
                  impl=f'rt.{fn.__name__}', family='batching', **kw)


_helper(batching.broadcast_batch, 'x, size',
        {'x': 'rt.sum_to(rt.materialize(g, ans), rt.shape(x))'}, batch='loop')
_helper(batching.sum_to_example, 'cot, x', {'cot': 'rt.unsum_batched(g, cot)'}, batch='loop')
_helper(batching.sum_to_like, 'cot, x', {'cot': 'rt.unsum_batched(g, cot)'}, batch='loop')
_helper(batching.unsum_batched, 'cot, like', {'cot': 'rt.sum_to_like(rt.materialize(g, ans), cot)'},
        batch='loop')
_helper(batching.moveaxes, 'tree, axes, to_front',
        {'tree': 'rt.moveaxes(g, axes, not to_front)'}, batch='loop')
# The per-example loop and the pytree select have no derivative rules: batched
# code that uses them cannot be differentiated (codax says so, naming them).
primitive('rt_batch_loop', 'fn, axes, args, kwargs', {}, targets=(batching.batch_loop,),
          impl='rt.batch_loop', family='batching', batch='loop')
primitive('rt_select', 'condition, x, y, axes', {}, nondiff=('condition', 'axes'),
          targets=(batching.select,), impl='rt.select', family='batching', batch='loop')
primitive('rt_finalize_batched', 'cot, x, spec, size', {}, nondiff=('x', 'spec', 'size'),
          targets=(batching.finalize_batched,), impl='rt.finalize_batched',
          family='batching', batch='loop')
for _fn, _sig in ((batching.batch_size, 'tree, axes'), (batching.any_true, 'condition'),
                  (batching.loop_bound, 'n, largest'), (batching.quiet, ''),
                  (batching.loud, 'state'), (batching.batch_index, 'idx'),
                  (batching.shift_axis, 'axis'), (batching.example_shape, 'x'),
                  (batching.vmapped, 'fn, axes'), (batching.attribute, 'x, name')):
    nondifferentiable(f'rt_{_fn.__name__}', _sig, targets=(_fn,), impl=f'rt.{_fn.__name__}',
                      batch='loop')
primitive('rt_batch_outputs', 'tree, axes, out_axes, size', {}, nondiff=('axes', 'out_axes', 'size'),
          targets=(batching.batch_outputs,), impl='rt.batch_outputs', family='batching',
          batch='loop')
for _fn, _sig in ((batching.elementwise_batched, 'fn, axes, *operands'),
                  (batching.getitem_batched, 'x, idx')):
    primitive(f'rt_{_fn.__name__}', _sig, {}, nondiff=('fn', 'axes', 'idx'), targets=(_fn,),
              impl=f'rt.{_fn.__name__}', family='batching', batch='loop')
