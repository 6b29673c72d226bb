"""Shape and structure ops: all linear, their VJPs move the cotangent back."""
import numpy

from .. import rules
from ..table import batching, linear

_G = 'rt.materialize(g, ans)'

linear('reshape', 'a, shape=None, order="C", newshape=None',
       {'a': f'xp.reshape({_G}, rt.shape(a), order=order)'}, methods=('reshape',))
# (ravel's order='K' reads memory order, which for the C-ordered arrays codax
# makes is C: reshape itself takes only C, F and A)
linear('ravel', 'a, order="C"',
       {'a': f'xp.reshape({_G}, rt.shape(a), order="C" if order == "K" else order)'},
       methods=('ravel', 'flatten'))
linear('squeeze', 'a, axis=None', {'a': f'xp.reshape({_G}, rt.shape(a))'}, methods=('squeeze',))
linear('expand_dims', 'a, axis', {'a': f'xp.reshape({_G}, rt.shape(a))'})
linear('atleast_1d', 'a', {'a': f'xp.reshape({_G}, rt.shape(a))'})
linear('atleast_2d', 'a', {'a': f'xp.reshape({_G}, rt.shape(a))'})
linear('transpose', 'a, axes=None', {'a': f'xp.transpose({_G}, rt.inverse_axes(axes, a))'},
       methods=('transpose',))
linear('swapaxes', 'a, axis1, axis2', {'a': f'xp.swapaxes({_G}, axis1, axis2)'},
       methods=('swapaxes',))
linear('moveaxis', 'a, source, destination', {'a': f'xp.moveaxis({_G}, destination, source)'})
linear('broadcast_to', 'array, shape, subok=False',
       {'array': f'rt.sum_to({_G}, rt.shape(array))'})
linear('flip', 'm, axis=None', {'m': f'xp.flip({_G}, axis)'})
linear('fliplr', 'm', {'m': f'xp.fliplr({_G})'})
linear('flipud', 'm', {'m': f'xp.flipud({_G})'})
linear('roll', 'a, shift, axis=None', {'a': f'xp.roll({_G}, rt.negate(shift), axis)'})
linear('tile', 'A, reps', {'A': 'rt.tile_vjp(g, A, ans, reps)'})
linear('repeat', 'a, repeats, axis=None', {'a': 'rt.repeat_vjp(g, a, ans, repeats, axis)'},
       methods=('repeat',))
# pad is linear in array, but its statistic modes ('maximum', 'median', ...)
# pick their elements by the primal's values, so the tangent is not the pad of
# the tangent: rt.pad_jvp pads it with the weights the primal picks.
linear('pad', 'array, pad_width, mode="constant", constant_values=0, *, stat_length=None',
       {'array': 'rt.pad_vjp(g, array, ans, pad_width, mode, stat_length)',
        'constant_values': 'rt.pad_values_vjp(g, array, ans, pad_width, mode, constant_values)'},
       jvp={'array': 'rt.pad_jvp(t, array, pad_width, mode, stat_length)',
            'constant_values': 'rt.pad_values_jvp(t, array, pad_width, mode)'})
# The tangent helpers, linear in `tan`: their transposes are the VJP helpers.
linear('rt_pad_jvp', 'tan, array, pad_width, mode="constant", stat_length=None',
       {'tan': 'rt.pad_vjp(g, array, ans, pad_width, mode, stat_length)'},
       targets=(rules.pad_jvp,), impl='rt.pad_jvp', family='adjoint', batch='loop')
linear('rt_pad_values_jvp', 'tan, array, pad_width, mode="constant"',
       {'tan': 'rt.pad_values_vjp(g, array, ans, pad_width, mode, tan)'},
       targets=(rules.pad_values_jvp,), impl='rt.pad_values_jvp', family='adjoint', batch='loop')
linear('concatenate', 'arrays, axis=0, out=None, dtype=None, casting="same_kind"',
       {'arrays': 'rt.concatenate_vjp(g, arrays, ans, axis)'},
       targets=(numpy.concatenate, numpy.concat) if hasattr(numpy, 'concat') else None)
linear('stack', 'arrays, axis=0, out=None, dtype=None, casting="same_kind"',
       {'arrays': f'rt.unstack({_G}, arrays, axis)'})
linear('hstack', 'tup, dtype=None, casting="same_kind"', {'tup': 'rt.hstack_vjp(g, tup, ans)'})
linear('vstack', 'tup, dtype=None, casting="same_kind"', {'tup': 'rt.vstack_vjp(g, tup, ans)'})
linear('split', 'ary, indices_or_sections, axis=0', {'ary': 'rt.split_vjp(g, ary, ans, axis)'})
linear('copy', 'a, order="K"', {'a': 'g'}, methods=('copy',), impl='rt.copy',
       targets=(numpy.copy, rules.copy))
# x.mT (normalize writes the attribute as this call)
_MT = tuple(f for f in (getattr(numpy, 'matrix_transpose', None),
                        getattr(numpy.linalg, 'matrix_transpose', None)) if f is not None)
linear('matrix_transpose', 'x', {'x': f'rt.matrix_transpose({_G})'}, impl='rt.matrix_transpose',
       targets=_MT + (rules.matrix_transpose,))
# A cast to integers or bools has no derivative (rt.inexact_only).
linear('array', 'object, dtype=None, copy=True, order="K", ndmin=0',
       {'object': 'rt.cast_like(rt.array_vjp(rt.inexact_only(g, ans), object, ans), object)'},
       jvp={'object': 'rt.inexact_only(xp.array(rt.dense(t, object), dtype, copy=copy, '
                      'order=order, ndmin=ndmin), ans)'})
linear('asarray', 'a, dtype=None, order=None',
       {'a': 'rt.cast_like(rt.array_vjp(rt.inexact_only(g, ans), a, ans), a)'},
       jvp={'a': 'rt.inexact_only(xp.asarray(rt.dense(t, a), dtype, order), ans)'})
# (what NumPy's own Python source calls on its arguments: as asarray, for
# the ndarrays codax passes)
linear('asanyarray', 'a, dtype=None, order=None',
       {'a': 'rt.cast_like(rt.array_vjp(rt.inexact_only(g, ans), a, ans), a)'},
       jvp={'a': 'rt.inexact_only(xp.asanyarray(rt.dense(t, a), dtype, order), ans)'})
linear('astype', 'x, dtype, copy=True', {'x': 'rt.cast_like(rt.inexact_only(g, ans), x)'},
       jvp={'x': 'rt.inexact_only(xp.asarray(t, dtype), ans)'}, methods=('astype',),
       impl='rt.astype', targets=())
linear('diagonal', 'a, offset=0, axis1=0, axis2=1',
       {'a': 'rt.diagonal_vjp(g, a, ans, offset, axis1, axis2)'}, methods=('diagonal',))
linear('diag', 'v, k=0', {'v': 'rt.diag_vjp(g, v, ans, k)'})
linear('tril', 'm, k=0', {'m': f'xp.tril({_G}, k)'})
linear('triu', 'm, k=0', {'m': f'xp.triu({_G}, k)'})
linear('real', 'val', {'val': 'g'})
linear('imag', 'val', {'val': 'rt.imag_vjp(g, val)'})
# More structure ops. Batched per example: no rule of transformer/batch_rules
# reads their axis parameters (defaults included) yet.
linear('rot90', 'm, k=1, axes=(0, 1)', {'m': f'xp.rot90({_G}, -k, axes)'}, batch='loop')
linear('column_stack', 'tup', {'tup': 'rt.joined_vjp(g, tup, ans, "column_stack")'},
       batch='loop')
linear('dstack', 'tup', {'tup': 'rt.joined_vjp(g, tup, ans, "dstack")'}, batch='loop')
# np.append (the record `append` is a list's .append): a concatenation, of the
# flattened arrays with axis=None; the cotangent is split where arr ends.
_APPEND = ('rt.cast_like(xp.reshape(xp.split(rt.materialize(g, ans), [rt.count(arr, axis)], '
           '0 if axis is None else axis)[{0}], rt.shape({1})), {1})')
linear('append_array', 'arr, values, axis=None',
       {'arr': _APPEND.format(0, 'arr'), 'values': _APPEND.format(1, 'values')},
       targets=(numpy.append,), impl='xp.append', batch='loop')
# diff: linear in a and in the values joined on each side of it.
_DIFF = 'rt.diff_vjp(g, a, ans, n, axis, prepend, append, {})'
linear('diff', 'a, n=1, axis=-1, prepend=None, append=None',
       {'a': _DIFF.format(0), 'prepend': _DIFF.format(1), 'append': _DIFF.format(2)},
       batch='loop')
# sort: the cotangent goes back through the sorting permutation (ties in the
# order a stable sort gives them). No x.sort(): it sorts in place.
_ORDER = 'xp.argsort(a, axis, "stable")'
linear('sort', 'a, axis=-1, kind=None, order=None, *, stable=None',
       {'a': f'rt.take_along_axis_vjp(g, a, ans, {_ORDER}, axis)'},
       jvp={'a': f'xp.take_along_axis(t, {_ORDER}, axis)'}, batch='loop')

batching(reshape=('reshape', 'ravel'),
         axes=('squeeze', 'expand_dims', 'transpose', 'swapaxes', 'moveaxis', 'flip', 'roll',
               'repeat', 'diagonal'), split=('split',),
         atleast=('atleast_1d', 'atleast_2d'), broadcast_to=('broadcast_to',),
         flip_lr_ud=('fliplr', 'flipud'), join=('concatenate', 'stack', 'hstack', 'vstack'),
         same=('copy', 'astype', 'real', 'imag', 'matrix_transpose'),
         array=('array', 'asarray', 'asanyarray'),
         leading=('tril', 'triu'), diag=('diag',), tile=('tile',), pad=('pad',))
