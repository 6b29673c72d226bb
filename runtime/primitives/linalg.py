"""Linear algebra: products, contractions and numpy.linalg."""
import numpy

from ..table import batching, primitive


def _product(name, signature, rules, targets=None, impl=None, nondiff=(), methods=(), jvp=None):
    return primitive(name, signature, rules, family='linalg', targets=targets, impl=impl,
                     nondiff=nondiff, methods=methods, jvp=jvp)


# Products are bilinear: each operand's tangent term is the product with the
# tangent in that operand's place.
_product('matmul', 'x1, x2, /, out=None', {'x1': 'rt.matmul_vjp(g, x1, x2, ans, 0)',
                                             'x2': 'rt.matmul_vjp(g, x1, x2, ans, 1)'},
         nondiff=('out',), jvp={'x1': 'xp.matmul(t, x2)', 'x2': 'xp.matmul(x1, t)'})
_product('dot', 'a, b, out=None', {'a': 'rt.dot_vjp(g, a, b, ans, 0)',
                                   'b': 'rt.dot_vjp(g, a, b, ans, 1)'}, nondiff=('out',),
         methods=('dot',), jvp={'a': 'xp.dot(t, b)', 'b': 'xp.dot(a, t)'})
_product('vdot', 'a, b', {'a': 'rt.vdot_vjp(g, a, b, 0)', 'b': 'rt.vdot_vjp(g, a, b, 1)'},
         jvp={'a': 'xp.vdot(t, b)', 'b': 'xp.vdot(a, t)'})
_product('outer', 'a, b, out=None', {'a': 'rt.outer_vjp(g, a, b, ans, 0)',
                                     'b': 'rt.outer_vjp(g, a, b, ans, 1)'}, nondiff=('out',),
         jvp={'a': 'xp.outer(t, b)', 'b': 'xp.outer(a, t)'})
_product('inner', 'a, b', {'a': 'rt.inner_vjp(g, a, b, ans, 0)',
                           'b': 'rt.inner_vjp(g, a, b, ans, 1)'},
         jvp={'a': 'xp.inner(t, b)', 'b': 'xp.inner(a, t)'})
_product('tensordot', 'a, b, axes=2', {'a': 'rt.tensordot_vjp(g, a, b, ans, axes, 0)',
                                       'b': 'rt.tensordot_vjp(g, a, b, ans, axes, 1)'},
         nondiff=('axes',),
         jvp={'a': 'xp.tensordot(t, b, axes)', 'b': 'xp.tensordot(a, t, axes)'})
# `t` is the tuple of the operands' tangents.
_product('einsum', 'subscripts, *operands, out=None, optimize=False',
         {'operands': 'rt.einsum_vjp(g, subscripts, operands, ans)'},
         nondiff=('subscripts', 'out', 'optimize'),
         jvp={'operands': 'rt.einsum_jvp(t, subscripts, operands, optimize)'})
_product('trace', 'a, offset=0, axis1=0, axis2=1, dtype=None, out=None',
         {'a': 'rt.trace_vjp(g, a, ans, offset, axis1, axis2)'},
         nondiff=('offset', 'axis1', 'axis2', 'dtype', 'out'), jvp='linear')
# x = solve(a, b): dx = solve(a, db - da x). b is a vector (and so is x) exactly
# when x has fewer dimensions than a; da x is then a batched matrix-vector product.
_product('solve', 'a, b', {'a': 'rt.solve_vjp(g, a, b, ans, 0)',
                           'b': 'rt.solve_vjp(g, a, b, ans, 1)'},
         targets=(numpy.linalg.solve,), impl='xp.linalg.solve',
         jvp={'a': '-xp.linalg.solve(a, xp.matmul(t, xp.expand_dims(ans, -1)))[..., 0] '
                   'if rt.ndim(ans) < rt.ndim(a) else -xp.linalg.solve(a, xp.matmul(t, ans))',
              'b': 'xp.linalg.solve(a, t)'})
# Rules written with primitives (matmul, swapaxes, inv, indexing) have second
# derivatives; the rt.*_vjp helpers of solve, cholesky and einsum are first order.
_T_INV = 'xp.swapaxes(ans, -1, -2)'
_product('inv', 'a', {'a': f'-xp.matmul(xp.matmul({_T_INV}, rt.materialize(g, ans)), {_T_INV})'},
         targets=(numpy.linalg.inv,),
         impl='xp.linalg.inv', jvp={'a': '-xp.matmul(xp.matmul(ans, t), ans)'})
# d det(a) = det(a) tr(a^-1 da); d log|det(a)| = tr(a^-1 da), the sign is constant.
_TR_SOLVE = 'xp.trace(xp.linalg.solve(a, t), axis1=-2, axis2=-1)'
_INV_T = 'xp.swapaxes(xp.linalg.inv(a), -1, -2)'
_product('det', 'a', {'a': f'(rt.materialize(g, ans) * ans)[..., None, None] * {_INV_T}'},
         targets=(numpy.linalg.det,),
         impl='xp.linalg.det', jvp={'a': f'ans * {_TR_SOLVE}'})
_product('slogdet', 'a',
         {'a': f'rt.materialize(rt.item(g, 1), ans[1])[..., None, None] * {_INV_T}'},
         targets=(numpy.linalg.slogdet,),
         impl='xp.linalg.slogdet', jvp={'a': f'(xp.zeros_like(ans[0]), {_TR_SOLVE})'})
# L = cholesky(a) reads a as symmetric (the VJP is symmetric too), so the tangent
# is symmetrized: dL = L phi(L^-1 sym(t) L^-T), phi = lower triangle, diagonal halved
# (the mask 1 - I/2 on the lower triangle, built in L's dtype).
_M = ('xp.linalg.solve(ans, xp.swapaxes(xp.linalg.solve(ans, (t + xp.swapaxes(t, -1, -2)) / 2), '
      '-1, -2))')
_product('cholesky', 'a', {'a': 'rt.cholesky_vjp(g, ans)'}, targets=(numpy.linalg.cholesky,),
         impl='xp.linalg.cholesky',
         jvp={'a': f'xp.matmul(ans, xp.tril({_M}) * '
                   '(1 - 0.5 * xp.triu(xp.tril(xp.ones_like(ans)))))'})

batching(matmul=('matmul', 'dot'), vdot=('vdot', 'inner', 'outer'), einsum=('einsum',),
         axes=('trace',), solve=('solve',), leading=('inv', 'det', 'slogdet', 'cholesky'),
         tensordot=('tensordot',))
