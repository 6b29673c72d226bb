"""Array creation: constant outputs, except `full`'s fill value."""
from ..table import batching, linear, nondifferentiable

for _name in ('zeros', 'ones', 'empty'):
    nondifferentiable(_name, 'shape, dtype=None, order="C"')
for _name in ('zeros_like', 'ones_like', 'empty_like'):
    nondifferentiable(_name, 'a, dtype=None, order="K", subok=True, shape=None')
nondifferentiable('eye', 'N, M=None, k=0, dtype=None, order="C"')
nondifferentiable('identity', 'n, dtype=None')
nondifferentiable('arange', 'start, stop=None, step=None, dtype=None')
nondifferentiable('shape', 'a')
nondifferentiable('ndim', 'a')
nondifferentiable('size', 'a, axis=None')
# (dtype tests: also what absolute's second-order rules branch on)
nondifferentiable('iscomplexobj', 'x', batch='unbatched_result')
linear('full', 'shape, fill_value, dtype=None, order="C"',
       {'fill_value': 'rt.sum_to(rt.materialize(g, ans), rt.shape(fill_value))'},
       family='creation')
linear('full_like', 'a, fill_value, dtype=None, order="K", subok=True, shape=None',
       {'fill_value': 'rt.sum_to(rt.materialize(g, ans), rt.shape(fill_value))'},
       family='creation')
# Linear in start and stop jointly (sample i is start + (stop - start) * i / div),
# so its tangent is linspace of the tangents. Not of the 'creation' family: with
# retstep its result is a tuple, which names of the numeric families
# (transformer/analysis.py) never hold. Batched per example: its rank (array
# bounds add theirs) and kind (retstep) are not the 'creation' rule's rank 1.
_LINSPACE = 'rt.linspace_vjp(g, start, stop, ans, num, endpoint, retstep, axis, {})'
linear('linspace', 'start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0',
       {'start': _LINSPACE.format(0), 'stop': _LINSPACE.format(1)}, family='other',
       batch='loop')

batching(creation=('zeros', 'ones', 'empty', 'eye', 'identity', 'arange'),
         same=('zeros_like', 'ones_like', 'empty_like'), full=('full', 'full_like'),
         shape_of=('shape', 'ndim', 'size'))
