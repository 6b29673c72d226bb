"""The helpers that batched code calls, as primitives: so that vmapped code
can be differentiated (grad(vmap(f))) and batched again (vmap(vmap(f)))."""
from .. import batched_forms, batching
from ..table import TABLE, linear, nondifferentiable, primitive


def _helper(fn, signature, vjp, **kw):
    return linear(f'rt_{fn.__name__}', signature, vjp, targets=(fn,),
                  impl=f'rt.{fn.__name__}', family='batching', batch='loop', **kw)


# Linear in their first argument: each VJP is the transpose (`ans` is the output).
_helper(batching.broadcast_batch, 'x, size',
        {'x': 'rt.sum_to(rt.materialize(g, ans), rt.shape(x))'})
_helper(batching.sum_to_batched, 'cot, target, like=None',
        {'cot': 'rt.unsum_batched(rt.materialize(g, ans), cot)'})
_helper(batching.unsum_batched, 'cot, like',
        {'cot': 'rt.sum_to_batched(rt.materialize(g, ans), rt.example_shape(cot))'})
_helper(batching.lift_batched, 'x, rank, size=None, operands=()', {'x': 'rt.reshape_like(rt.dense(g, ans), x)'})
_helper(batching.lift_leaves, 'x, rank, axes', {'x': 'rt.reshape_like(rt.dense(g, ans), x)'})
_helper(batching.reshape_like, 'h, like', {'h': 'rt.reshape_like(rt.dense(g, ans), h)'})
_helper(batching.batched_diag, 'v, k=0', {'v': 'xp.diagonal(rt.materialize(g, ans), k, 1, 2)'})
_helper(batching.dense_batched, 't, x, t_batched, x_batched, size',
        {'t': 'rt.dense_batched_vjp(rt.dense(g, ans), t, x, t_batched, x_batched, size)'})
_helper(batching.dense_batched_vjp, 'cot, t, x, t_batched, x_batched, size',
        {'cot': 'rt.dense_batched(g, x, t_batched, x_batched, size)'})
_helper(batching.moveaxes, 'tree, axes, to_front, offset=0',
        {'tree': 'rt.moveaxes(rt.dense(g, ans), axes, not to_front, offset)'})
# x where condition else y: jointly linear in x and y.
_helper(batching.select, 'condition, x, y, axes',
        {'x': 'rt.select_vjp(rt.dense(g, ans), condition, x, y, axes, 0)',
         'y': 'rt.select_vjp(rt.dense(g, ans), condition, x, y, axes, 1)'})
# The transposes below take a full cotangent (the rules above pass rt.dense),
# so each one's own transpose is the forward helper, with no sum.
_helper(batching.select_vjp, 'cot, condition, x, y, axes, which',
        {'cot': 'rt.select(condition, rt.dense(g, x), rt.dense(0.0, y), axes) if which == 0 '
                'else rt.select(condition, rt.dense(0.0, x), rt.dense(g, y), axes)'})
_helper(batching.finalize_batched, 'cot, x, spec, size',
        {'cot': 'rt.finalize_batched_transpose(rt.dense(g, ans), cot, x, spec, size)'})
_helper(batching.finalize_batched_transpose, 'h, cot, x, spec, size',
        {'h': 'rt.finalize_batched(rt.dense(g, cot), x, spec, size)'})
_helper(batching.batch_outputs, 'tree, axes, out_axes, size',
        {'tree': 'rt.batch_outputs_transpose(rt.dense(g, ans), tree, axes, out_axes, size)'})
_helper(batching.batch_outputs_transpose, 'cot, tree, axes, out_axes, size',
        {'cot': 'rt.batch_outputs(rt.dense(g, tree), axes, out_axes, size)'})

# The per-example loop runs any function, so it has no rules: derivatives go
# through its definition (codax/calls.py), a Python loop over examples made of
# the records below.
primitive('rt_batch_loop', 'fn, axes, args, kwargs, size', {}, targets=(batching.batch_loop,),
          impl='rt.batch_loop', family='batching', batch='loop').defined = True
_helper(batching.example, 'x, axes, i', {'x': 'rt.example_vjp(g, x, axes, i)'})
_helper(batching.example_vjp, 'cot, x, axes, i',
        {'cot': 'rt.example(rt.materialize(g, ans) if rt.is_array(ans) else g, axes, i)'})
_helper(batching.stack_examples, 'outs', {'outs': 'rt.stack_examples_vjp(g, outs)'})
_helper(batching.stack_examples_vjp, 'cot, outs',
        {'cot': '0.0 if rt.is_zero(g) else rt.stack_examples(g)'})
nondifferentiable('rt_arg_axes', 'axes, k', targets=(batching.arg_axes,), impl='rt.arg_axes',
                  batch='loop')
for _fn, _sig in ((batching.batch_size, 'tree, axes'), (batching.any_true, 'condition'),
                  (batching.loop_bound, 'n, largest'), (batching.quiet, ''),
                  (batching.loud, 'state'), (batching.batch_index, 'idx, x=None'),
                  (batching.shift_axis, 'axis, x=None'), (batching.example_shape, 'x'),
                  (batching.example_len, 'x'),
                  (batching.example_rank, 'operands, axes'),
                  (batching.attribute, 'x, name'),
                  (batching.first_example, 'tree, axes'),
                  (batching.keywords_by_position, 'fn, count, names')):
    nondifferentiable(f'rt_{_fn.__name__}', _sig, targets=(_fn,), impl=f'rt.{_fn.__name__}',
                      batch='loop')
# A function batched for a call from batched code: for a closure, a closure of
# the batched function holding the same captured values, so derivatives with
# respect to those pass through unchanged (grad(vmap(f)) where f calls a lambda).
primitive('rt_vmapped', 'fn, axes, out_axes=0, captured_axes=None', {'fn': 'g'},
          nondiff=('axes', 'out_axes', 'captured_axes'), jvp={'fn': 't'},
          targets=(batching.vmapped,), impl='rt.vmapped', family='batching', batch='loop')
# (an index for a container or an array: the same for every example of vmapped code)
TABLE['rt_batch_index'].batch = 'kind_only'
TABLE['rt_moveaxes'].batch = 'moveaxes'

# A call with a batched form of its own (codax.random's samplers with a batch
# of keys; batched again, the keys gain a leading axis). Its draws do not
# depend on differentiated values, but its other arguments (uniform's minval,
# gamma's a, ...) may: their derivatives are those of the call the batched
# form makes, for all keys at once (runtime/batched_forms.py).
primitive('rt_batched_form', 'fn, args, kwargs',
          {'args': 'rt.item(rt.batched_form_vjp(g, fn, args, kwargs), 0)',
           'kwargs': 'rt.item(rt.batched_form_vjp(g, fn, args, kwargs), 1)'},
          jvp={'args': 'rt.batched_form_jvp(fn, args, kwargs, t, 0.0)',
               'kwargs': 'rt.batched_form_jvp(fn, args, kwargs, 0.0, t)'},
          nondiff=('fn',), targets=(batched_forms.batched_form,),
          impl='rt.batched_form', family='batching', batch='batched_form')
# Its derivatives, as primitives so that code calling them can be batched
# again (vmap of grad of vmapped draws: one call per example). Their own
# derivatives: the VJP is linear in cot (its transpose is the JVP and back),
# the JVP in its tangents; in args and kwargs both are second derivatives of
# the batched call, batched_form_hvp (reverse: the same for both, second
# derivatives being symmetric) and batched_form_jvp2 (forward).
primitive('rt_batched_form_vjp', 'cot, fn, args, kwargs',
          {'cot': 'rt.cast_like(rt.batched_form_jvp(fn, args, kwargs, rt.item(g, 0), '
                  'rt.item(g, 1)), cot)',
           'args': 'rt.item(rt.batched_form_hvp(rt.item(g, 0), rt.item(g, 1), cot, fn, args, '
                   'kwargs), 0)',
           'kwargs': 'rt.item(rt.batched_form_hvp(rt.item(g, 0), rt.item(g, 1), cot, fn, '
                     'args, kwargs), 1)'},
          jvp={'cot': 'rt.batched_form_vjp(t, fn, args, kwargs)',
               'args': 'rt.batched_form_hvp(t, 0.0, cot, fn, args, kwargs)',
               'kwargs': 'rt.batched_form_hvp(0.0, t, cot, fn, args, kwargs)'},
          nondiff=('fn',), targets=(batched_forms.batched_form_vjp,),
          impl='rt.batched_form_vjp', family='batching', batch='loop')
primitive('rt_batched_form_jvp', 'fn, args, kwargs, targs, tkwargs',
          {'args': 'rt.item(rt.batched_form_hvp(targs, tkwargs, g, fn, args, kwargs), 0)',
           'kwargs': 'rt.item(rt.batched_form_hvp(targs, tkwargs, g, fn, args, kwargs), 1)',
           'targs': 'rt.item(rt.batched_form_vjp(g, fn, args, kwargs), 0)',
           'tkwargs': 'rt.item(rt.batched_form_vjp(g, fn, args, kwargs), 1)'},
          jvp={'args': 'rt.batched_form_jvp2(fn, args, kwargs, targs, tkwargs, t, 0.0)',
               'kwargs': 'rt.batched_form_jvp2(fn, args, kwargs, targs, tkwargs, 0.0, t)',
               'targs': 'rt.batched_form_jvp(fn, args, kwargs, t, 0.0)',
               'tkwargs': 'rt.batched_form_jvp(fn, args, kwargs, 0.0, t)'},
          nondiff=('fn',), targets=(batched_forms.batched_form_jvp,),
          impl='rt.batched_form_jvp', family='batching', batch='loop')
# The second derivatives: no rules (no third derivatives of draws inside vmap).
primitive('rt_batched_form_hvp', 'hargs, hkwargs, cot, fn, args, kwargs', {},
          nondiff=('fn',), targets=(batched_forms.batched_form_hvp,),
          impl='rt.batched_form_hvp', family='batching', batch='loop')
primitive('rt_batched_form_jvp2', 'fn, args, kwargs, targs, tkwargs, dargs, dkwargs', {},
          nondiff=('fn',), targets=(batched_forms.batched_form_jvp2,),
          impl='rt.batched_form_jvp2', family='batching', batch='loop')
