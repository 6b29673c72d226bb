"""Linear algebra: products, contractions and numpy.linalg."""
import numpy

from ..table import primitive


def _product(name, signature, rules, targets=None, impl=None, nondiff=(), methods=()):
    return primitive(name, signature, rules, family='linalg', targets=targets, impl=impl,
                     nondiff=nondiff, methods=methods)


_product('matmul', 'x1, x2, /, out=None', {'x1': 'rt.matmul_vjp(g, x1, x2, ans, 0)',
                                             'x2': 'rt.matmul_vjp(g, x1, x2, ans, 1)'},
         nondiff=('out',))
_product('dot', 'a, b, out=None', {'a': 'rt.dot_vjp(g, a, b, ans, 0)',
                                   'b': 'rt.dot_vjp(g, a, b, ans, 1)'}, nondiff=('out',),
         methods=('dot',))
_product('vdot', 'a, b', {'a': 'rt.vdot_vjp(g, a, b, 0)', 'b': 'rt.vdot_vjp(g, a, b, 1)'})
_product('outer', 'a, b, out=None', {'a': 'rt.outer_vjp(g, a, b, ans, 0)',
                                     'b': 'rt.outer_vjp(g, a, b, ans, 1)'}, nondiff=('out',))
_product('inner', 'a, b', {'a': 'rt.inner_vjp(g, a, b, ans, 0)',
                           'b': 'rt.inner_vjp(g, a, b, ans, 1)'})
_product('tensordot', 'a, b, axes=2', {'a': 'rt.tensordot_vjp(g, a, b, ans, axes, 0)',
                                       'b': 'rt.tensordot_vjp(g, a, b, ans, axes, 1)'},
         nondiff=('axes',))
_product('einsum', 'subscripts, *operands, out=None, optimize=False',
         {'operands': 'rt.einsum_vjp(g, subscripts, operands, ans)'},
         nondiff=('subscripts', 'out', 'optimize'))
_product('trace', 'a, offset=0, axis1=0, axis2=1, dtype=None, out=None',
         {'a': 'rt.trace_vjp(g, a, ans, offset, axis1, axis2)'},
         nondiff=('offset', 'axis1', 'axis2', 'dtype', 'out'))
_product('solve', 'a, b', {'a': 'rt.solve_vjp(g, a, b, ans, 0)',
                           'b': 'rt.solve_vjp(g, a, b, ans, 1)'},
         targets=(numpy.linalg.solve,), impl='xp.linalg.solve')
_product('inv', 'a', {'a': 'rt.inv_vjp(g, ans)'}, targets=(numpy.linalg.inv,),
         impl='xp.linalg.inv')
_product('det', 'a', {'a': 'rt.det_vjp(g, a, ans)'}, targets=(numpy.linalg.det,),
         impl='xp.linalg.det')
_product('slogdet', 'a', {'a': 'rt.slogdet_vjp(g, a)'}, targets=(numpy.linalg.slogdet,),
         impl='xp.linalg.slogdet')
_product('cholesky', 'a', {'a': 'rt.cholesky_vjp(g, ans)'}, targets=(numpy.linalg.cholesky,),
         impl='xp.linalg.cholesky')
