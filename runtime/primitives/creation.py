"""Array creation: constant outputs, except `full`'s fill value."""
from ..table import batching, linear, nondifferentiable

for _name in ('zeros', 'ones', 'empty'):
    nondifferentiable(_name, 'shape, dtype=None, order="C"')
for _name in ('zeros_like', 'ones_like', 'empty_like'):
    nondifferentiable(_name, 'a, dtype=None, order="K", subok=True, shape=None')
nondifferentiable('eye', 'N, M=None, k=0, dtype=None, order="C"')
nondifferentiable('identity', 'n, dtype=None')
nondifferentiable('arange', 'start, stop=None, step=None, dtype=None')
nondifferentiable('linspace', 'start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0')
nondifferentiable('shape', 'a')
nondifferentiable('ndim', 'a')
nondifferentiable('size', 'a, axis=None')
linear('full', 'shape, fill_value, dtype=None, order="C"',
       {'fill_value': 'rt.sum_to(rt.materialize(g, ans), rt.shape(fill_value))'},
       family='creation')
linear('full_like', 'a, fill_value, dtype=None, order="K", subok=True, shape=None',
       {'fill_value': 'rt.sum_to(rt.materialize(g, ans), rt.shape(fill_value))'},
       family='creation')

batching(creation=('zeros', 'ones', 'empty', 'eye', 'identity', 'arange', 'linspace'),
         same=('zeros_like', 'ones_like', 'empty_like'), full=('full', 'full_like'),
         shape_of=('shape', 'ndim', 'size'))
