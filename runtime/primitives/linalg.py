"""Linear algebra: products, contractions and numpy.linalg."""
import numpy

from .. import rules
from ..table import batching, nondifferentiable, primitive


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
# vdot(a, b) is the plain product of conj(a) and b; conj transposes to conj
_product('vdot', 'a, b', {'a': 'xp.conj(rt.vdot_vjp(g, xp.conj(a), b, 0))',
                          'b': 'rt.vdot_vjp(g, xp.conj(a), b, 1)'},
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
# einsum is multilinear: operand i's adjoint is one einsum of the cotangent and
# the other operands (rt.einsum_vjp_spec, folded at compile time for literal
# subscripts), spread over letters found in operand i alone; its tangent is the
# sum of the contractions with one tangent in place (`t`: the tuple of them).
# Written with einsum itself, every order follows. A diagonal ('ii') takes
# one more operand, a boolean mask that puts the adjoint back on it. The
# templates are spelled out per number of operands (up to _EINSUM_N; the
# template folds the others away); more operands, the interleaved form, or an
# ellipsis that spans no axes use the first-order rt.einsum_vjp.
_EINSUM_N = 6


def _einsum_adjoint(n, i):
    spec, spread, masked = (f'rt.einsum_vjp_{part}(subscripts, {n}, {i})'
                            for part in ('spec', 'spread', 'masked'))
    others = ''.join(f', operands[{j}]' for j in range(n) if j != i)
    mask = f', xp.asarray(rt.einsum_vjp_mask(subscripts, {n}, {i}, rt.shape(operands[{i}])))'
    full = (f'(xp.einsum({spec}, rt.materialize(g, ans){others}{mask}) if {masked} else '
            f'xp.einsum({spec}, rt.materialize(g, ans){others}))')
    spread_out = f'({full} if {spread} is None else xp.expand_dims({full}, {spread}) ' \
                 f'+ xp.zeros_like(operands[{i}]))'
    return (f'(rt.cast_like(rt.sum_to({spread_out}, rt.shape(operands[{i}])), operands[{i}]) '
            f'if {spec} is not None else rt.item(rt.einsum_vjp(g, subscripts, operands, ans), {i}))')


def _einsum_tangent(n):
    terms = [f'xp.einsum(subscripts, {", ".join("rt.dense(t[%d], operands[%d])" % (j, j) if j == i else "operands[%d]" % j for j in range(n))}, optimize=optimize)'
             for i in range(n)]
    total = terms[0]
    for term in terms[1:]:
        total = f'rt.add({total}, {term})'
    return total


def _by_count(rule, fallback):
    """`rule(n)` for the call's number of operands n (folded at compile time)."""
    out = fallback
    for n in range(_EINSUM_N, 0, -1):
        out = f'({rule(n)} if len(operands) == {n} else {out})'
    return out


_product('einsum', 'subscripts, *operands, out=None, optimize=False',
         {'operands': _by_count(lambda n: '(%s,)' % ', '.join(_einsum_adjoint(n, i) for i in range(n)),
                                'rt.einsum_vjp(g, subscripts, operands, ans)')},
         nondiff=('subscripts', 'out', 'optimize'),
         jvp={'operands': _by_count(_einsum_tangent,
                                    'rt.einsum_jvp(t, subscripts, operands, optimize)')})
for _fn in (rules.einsum_vjp_spec, rules.einsum_vjp_spread,   # subscripts held in a variable
            rules.einsum_vjp_masked):
    nondifferentiable(f'rt_{_fn.__name__}', 'subscripts, n, i', targets=(_fn,),
                      impl=f'rt.{_fn.__name__}', batch='unbatched_result')
# (the shape of one example: the same mask for all)
nondifferentiable('rt_einsum_vjp_mask', 'subscripts, n, i, shape', targets=(rules.einsum_vjp_mask,),
                  impl='rt.einsum_vjp_mask', batch='creation')
_product('trace', 'a, offset=0, axis1=0, axis2=1, dtype=None, out=None',
         {'a': 'rt.trace_vjp(g, a, ans, offset, axis1, axis2)'},
         nondiff=('offset', 'axis1', 'axis2', 'dtype', 'out'), jvp='linear', methods=('trace',))
# x = solve(a, b): dx = solve(a, db - da x). b is a vector (and so is x) exactly
# when x has fewer dimensions than a; da x is then a batched matrix-vector product.
# The adjoints, b_bar = solve(a^T, g) and a_bar = -b_bar x^T, are primitives too,
# so every order follows.
_VEC = 'rt.ndim(ans) < rt.ndim(a)'
_G_SOLVE = 'rt.materialize(g, ans)'
_B_BAR = (f'(xp.linalg.solve(xp.swapaxes(a, -1, -2), {_G_SOLVE}[..., None])[..., 0] if {_VEC} '
          f'else xp.linalg.solve(xp.swapaxes(a, -1, -2), {_G_SOLVE}))')
_A_BAR = (f'(-({_B_BAR}[..., :, None] * ans[..., None, :]) if {_VEC} '
          f'else -xp.matmul({_B_BAR}, xp.swapaxes(ans, -1, -2)))')
_product('solve', 'a, b', {'a': f'rt.cast_like(rt.sum_to({_A_BAR}, rt.shape(a)), a)',
                           'b': f'rt.cast_like(rt.sum_to({_B_BAR}, rt.shape(b)), b)'},
         targets=(numpy.linalg.solve,), impl='xp.linalg.solve',
         jvp={'a': f'-xp.linalg.solve(a, xp.matmul(t, xp.expand_dims(ans, -1)))[..., 0] '
                   f'if {_VEC} else -xp.linalg.solve(a, xp.matmul(t, ans))',
              'b': 'xp.linalg.solve(a, t)'})
# Rules written with primitives (matmul, swapaxes, solve, inv, indexing) have
# derivatives of every order.
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
# (the mask 1 - I/2 on the lower triangle, built in L's dtype). The adjoint is
# L^-T sym(P) L^-1 with P = phi(L^T g), and L^-T X L^-1 = (L^-T (L^-T X)^T)^T:
# primitives only, so every order follows.
_PHI = '(1 - 0.5 * xp.triu(xp.tril(xp.ones_like(ans))))'
_M = ('xp.linalg.solve(ans, xp.swapaxes(xp.linalg.solve(ans, (t + xp.swapaxes(t, -1, -2)) / 2), '
      '-1, -2))')
_L_T = 'xp.swapaxes(ans, -1, -2)'
_P = f'xp.tril(xp.matmul({_L_T}, rt.materialize(g, ans)))'
_SYM_P = f'({_P} * {_PHI} + xp.swapaxes({_P} * {_PHI}, -1, -2)) / 2'
_product('cholesky', 'a',
         {'a': f'rt.cast_like(xp.swapaxes(xp.linalg.solve({_L_T}, xp.swapaxes(xp.linalg.solve('
               f'{_L_T}, {_SYM_P}), -1, -2)), -1, -2), a)'},
         targets=(numpy.linalg.cholesky,), impl='xp.linalg.cholesky',
         jvp={'a': f'xp.matmul(ans, xp.tril({_M}) * {_PHI})'})
# kron is bilinear: each operand's adjoint contracts the cotangent, split into
# (a axis, b axis) pairs (rt.kron_layout), with the other operand.
_KRON = 'rt.kron_layout(a, b)'
_KRON_G = f'xp.reshape(rt.materialize(g, ans), {_KRON}[0])'
_product('kron', 'a, b',
         {'a': f'xp.reshape(xp.tensordot({_KRON_G}, xp.reshape(b, {_KRON}[2]), '
               f'({_KRON}[4], {_KRON}[5])), rt.shape(a))',
          'b': f'xp.reshape(xp.tensordot(xp.reshape(a, {_KRON}[1]), {_KRON_G}, '
               f'({_KRON}[5], {_KRON}[3])), rt.shape(b))'},
         jvp={'a': 'xp.kron(t, b)', 'b': 'xp.kron(a, t)'})
# cross: <g, a x b> = <a, b x g> = <b, g x a>, vectors of 3 (rt.cross_axes).
_CROSS = 'rt.cross_axes(a, b, axisa, axisb, axisc, axis, {0})'
_CROSS_AXES = ', '.join(f'{_CROSS}[{k}]' for k in range(3))
_product('cross', 'a, b, axisa=-1, axisb=-1, axisc=-1, axis=None',
         {'a': f'rt.sum_to(xp.cross(b, rt.materialize(g, ans), {_CROSS_AXES.format(0)}), '
               'rt.shape(a))',
          'b': f'rt.sum_to(xp.cross(rt.materialize(g, ans), a, {_CROSS_AXES.format(1)}), '
               'rt.shape(b))'},
         nondiff=('axisa', 'axisb', 'axisc', 'axis'),
         jvp={'a': 'xp.cross(t, b, axisa, axisb, axisc, axis)',
              'b': 'xp.cross(a, t, axisa, axisb, axisc, axis)'})


# ---- more of numpy.linalg. Real matrices; where a rule does not apply (a
# complex or non-square case, an option), rt.linalg_rule_applies says so. ----
def _swapped(x):
    return f'xp.swapaxes({x}, -1, -2)'


def _block(x, y):
    """[[x, y], [0, x]]: its power's upper right block is the Frechet derivative
    of the power at x in the direction y."""
    return (f'xp.concatenate([xp.concatenate([{x}, {y}], axis=-1), '
            f'xp.concatenate([xp.zeros_like({x}), {x}], axis=-1)], axis=-2)')


_N = 'rt.shape(a)[-1]'
_UPPER_RIGHT = f'[..., :{_N}, {_N}:]'
# matrix_power(a, n): its derivative in the direction t is the upper right
# block of the power of [[a, t], [0, a]]; the adjoint, that at a^T applied to
# g (for any integer n, the inverse powers too). Written with primitives, so
# every order holds.
_product('matrix_power', 'a, n',
         {'a': f'xp.linalg.matrix_power({_block(_swapped("a"), "rt.materialize(g, ans)")}, n)'
               f'{_UPPER_RIGHT}'},
         targets=(numpy.linalg.matrix_power,), impl='xp.linalg.matrix_power', nondiff=('n',),
         jvp={'a': f'xp.linalg.matrix_power({_block("a", "t")}, n){_UPPER_RIGHT}'})

# eigh (JAX's rule), for the symmetric matrix NumPy reads from one triangle of
# a: s = t * m + (t * m)^T with m = rt.eigh_triangle(a, UPLO). With w, v = ans
# and F_ij = 1 / (w_j - w_i) (0 for equal eigenvalues), dw = diag(v^T s v) and
# dv = v (F * (v^T s v)); the adjoint goes back through the same weights:
# m * (R + R^T), R = v (diag(gw) + F * (v^T gv)) v^T.
_W, _V = 'ans[0]', 'ans[1]'


def _inverse_gaps(w):
    """F_ij = 1 / (w_j - w_i), 0 where the two are equal (the diagonal too)."""
    gap = f'({w}[..., None, :] - {w}[..., :, None])'
    return f'xp.where({gap} == 0, 0.0, 1.0 / xp.where({gap} == 0, 1.0, {gap}))'


_F = _inverse_gaps(_W)
_MASK = 'rt.eigh_triangle(a, UPLO)'
_X = f'xp.matmul({_swapped(_V)}, rt.materialize(rt.item(g, 1), {_V}))'
_GW2 = f'2 * rt.materialize(rt.item(g, 0), {_W})[..., None, :]'
_M = f'xp.matmul(xp.matmul({_swapped(_V)}, t * {_MASK} + {_swapped(f"t * {_MASK}")}), {_V})'
primitive('eigh', 'a, UPLO="L"',
          {'a': f'{_MASK} * xp.matmul(xp.matmul({_V}, {_F} * ({_X} - {_swapped(_X)})) + '
                f'{_V} * {_GW2}, {_swapped(_V)})'},
          jvp={'a': f'(xp.diagonal({_M}, 0, -2, -1), xp.matmul({_V}, {_F} * {_M}))'},
          nondiff=('UPLO',), targets=(numpy.linalg.eigh,), impl='xp.linalg.eigh',
          family='decomposition', batch='loop')

# eig of a general square matrix (JAX's rule, eqn 4.60 of arXiv:1701.00392, and
# lax.linalg.eig's eigenvectors with enable_eigvec_derivs): with w, v = ans,
# P = v^-1 t v and F as eigh's: dw = diag(P); u = v (F * P), and dv = u + v c,
# c_j = -Re(v_j^H u_j) - i Im(u_kj) / Re(v_kj) (k: v_j's largest component,
# which LAPACK makes real, as it makes |v_j| = 1): the normalization NumPy's
# LAPACK fixes, differentiated. The adjoint is the transpose of that map under
# Re(sum(x y)): with cv = sum(v * gv) over rows, gu = gv - conj(v) Re(cv) -
# i M Im(cv) / Re(v_k), gP = diag(gw) + F * (v^T gu), ga = v^-T gP v^T.
# Where every eigenvalue is real NumPy's v is real, and so are the tangents
# (no imaginary part to fix). eigvals: dw alone, v from a second eig. Written
# with primitives (eig among them), so every order follows, for distinct
# eigenvalues.
_EW, _EV = 'ans[0]', 'ans[1]'
_EF = _inverse_gaps(_EW)
_PIVOT = f'(xp.argmax(xp.abs({_EV}), axis=-2)[..., None, :] == xp.arange(rt.shape(a)[-1])[:, None])'
_PIVOT_RE = f'xp.real(xp.sum({_PIVOT} * {_EV}, axis=-2))'
_COMPLEX = f'xp.iscomplexobj({_EV})'
_EP = f'xp.matmul(xp.linalg.solve({_EV}, t), {_EV})'
_EU = f'xp.matmul({_EV}, {_EF} * {_EP})'
_EC = (f'(-xp.real(xp.sum(xp.conj({_EV}) * {_EU}, axis=-2)) - '
       f'(1j * xp.imag(xp.sum({_PIVOT} * {_EU}, axis=-2)) / {_PIVOT_RE} if {_COMPLEX} else 0.0))')
_GEW, _GEV = (f'rt.materialize(rt.item(g, {k}), ans[{k}])' for k in range(2))
_CV = f'xp.sum({_EV} * {_GEV}, axis=-2)'
_GEU = (f'({_GEV} - xp.conj({_EV}) * xp.real({_CV})[..., None, :] - '
        f'(1j * {_PIVOT} * (xp.imag({_CV}) / {_PIVOT_RE})[..., None, :] if {_COMPLEX} else 0.0))')
_GEP = (f'{_GEW}[..., None, :] * xp.eye(rt.shape(a)[-1]) + '
        f'{_EF} * xp.matmul({_swapped(_EV)}, {_GEU})')
primitive('eig', 'a',
          {'a': f'rt.cast_like(xp.linalg.solve({_swapped(_EV)}, xp.matmul({_GEP}, '
                f'{_swapped(_EV)})), a)'},
          jvp={'a': f'(xp.diagonal({_EP}, 0, -2, -1), {_EU} + {_EV} * {_EC}[..., None, :])'},
          targets=(numpy.linalg.eig,), impl='xp.linalg.eig', family='decomposition',
          batch='loop')
_VALS_V = 'xp.linalg.eig(a)[1]'
primitive('eigvals', 'a',
          {'a': f'rt.cast_like(xp.linalg.solve({_swapped(_VALS_V)}, '
                f'rt.materialize(g, ans)[..., :, None] * {_swapped(_VALS_V)}), a)'},
          jvp={'a': f'xp.sum(xp.linalg.solve({_VALS_V}, t) * {_swapped(_VALS_V)}, axis=-1)'},
          targets=(numpy.linalg.eigvals,), impl='xp.linalg.eigvals', family='linalg',
          batch='loop')

# svd, reduced (JAX's rule): with u, s, vh = ans, v = vh^T, F_ij = 1 / (s_j^2 -
# s_i^2) (0 where equal) and P = u^T t v: ds = diag(P),
# du = u (F * (P S + S P^T)) + (1 - u u^T) t v / s,
# dv = v (F * (S P + P^T S)) + (1 - v v^T) t^T u / s;
# the adjoint is the transpose of that map. s alone (compute_uv=False): ds as above.
_U, _SV, _VH = 'ans[0]', 'ans[1]', 'ans[2]'
_SROW, _SCOL = f'{_SV}[..., None, :]', f'{_SV}[..., :, None]'
_SGAP = f'({_SROW} ** 2 - {_SCOL} ** 2)'
_SVD_OK = 'rt.linalg_rule_applies("svd", a, full_matrices, hermitian)'
_FS = f'(xp.where({_SGAP} == 0, 0.0, 1.0 / xp.where({_SGAP} == 0, 1.0, {_SGAP})) * {_SVD_OK})'
_SINV = f'xp.where({_SV} == 0, 0.0, 1.0 / xp.where({_SV} == 0, 1.0, {_SV}))'
_GU, _GS, _GVH = (f'rt.materialize(rt.item(g, {k}), ans[{k}])' for k in range(3))
_XU = f'xp.matmul({_swapped(_U)}, {_GU})'
_XV = f'xp.matmul({_VH}, {_swapped(_GVH)})'
_CORE = (f'({_FS} * ({_XU} - {_swapped(_XU)}) * {_SROW} + '
         f'{_SCOL} * {_FS} * ({_XV} - {_swapped(_XV)}))')
_SVD_VJP = (f'xp.matmul({_U}, xp.matmul({_CORE}, {_VH}) + {_SINV}[..., :, None] * '
            f'({_GVH} - xp.matmul({_swapped(_XV)}, {_VH}))) + xp.matmul({_U} * {_GS}[..., None, :] '
            f'+ ({_GU} - xp.matmul({_U}, {_XU})) * {_SINV}[..., None, :], {_VH})')
_ONLY_S = 'xp.linalg.svd(a, False)'
_S_VJP = (f'xp.matmul({_ONLY_S}[0] * rt.materialize(g, ans)[..., None, :], {_ONLY_S}[2]) * '
          'rt.linalg_rule_applies("svd", a, False, hermitian)')
_P = f'xp.matmul(xp.matmul({_swapped(_U)}, t), {_swapped(_VH)})'
_DU = (f'xp.matmul({_U}, {_FS} * ({_P} * {_SROW} + {_SCOL} * {_swapped(_P)}) - {_P} * '
       f'{_SINV}[..., None, :]) + xp.matmul(t, {_swapped(_VH)}) * {_SINV}[..., None, :]')
_DV = (f'xp.matmul({_swapped(_VH)}, {_FS} * ({_SCOL} * {_P} + {_swapped(_P)} * {_SROW}) - '
       f'{_swapped(_P)} * {_SINV}[..., None, :]) + xp.matmul({_swapped("t")}, {_U}) * '
       f'{_SINV}[..., None, :]')
_S_JVP = (f'xp.diagonal(xp.matmul(xp.matmul({_swapped(f"{_ONLY_S}[0]")}, t), '
          f'{_swapped(f"{_ONLY_S}[2]")}), 0, -2, -1) * '
          'rt.linalg_rule_applies("svd", a, False, hermitian)')
primitive('svd', 'a, full_matrices=True, compute_uv=True, hermitian=False',
          {'a': f'({_SVD_VJP}) if compute_uv else {_S_VJP}'},
          jvp={'a': f'({_DU}, xp.diagonal({_P}, 0, -2, -1), {_swapped(f"({_DV})")}) '
                    f'if compute_uv else {_S_JVP}'},
          nondiff=('full_matrices', 'compute_uv', 'hermitian'), targets=(numpy.linalg.svd,),
          impl='xp.linalg.svd', family='decomposition', batch='loop')

# qr of a tall (or square) a, reduced (JAX's rule): X = t R^-1, C = Q^T X,
# O = tril(C, -1) - tril(C, -1)^T: dQ = Q (O - C) + X, dR = (C - O) R; the
# adjoint, with M = Q^T gQ - gR R^T: (Q (tril(M - M^T, -1) - M) + gQ) R^-T.
# mode='r' (R alone) takes Q from a second qr.
_Q = '(xp.linalg.qr(a)[0] if mode == "r" else ans[0])'
_RQ = '(ans if mode == "r" else ans[1])'
_RINV = f'(rt.linalg_rule_applies("qr", a, False, False, mode) * xp.linalg.inv({_RQ}))'
_GQ = 'rt.materialize(rt.item(g, 0), ans[0])'
_GR = '(rt.materialize(g, ans) if mode == "r" else rt.materialize(rt.item(g, 1), ans[1]))'
_MQ = (f'((0.0 if mode == "r" else xp.matmul({_swapped(_Q)}, {_GQ})) - '
       f'xp.matmul({_GR}, {_swapped(_RQ)}))')
_XQ = f'xp.matmul(t, {_RINV})'
_CQ = f'xp.matmul({_swapped(_Q)}, {_XQ})'
_OQ = f'(xp.tril({_CQ}, -1) - {_swapped(f"xp.tril({_CQ}, -1)")})'
_DR = f'xp.matmul({_CQ} - {_OQ}, {_RQ})'
primitive('qr', 'a, mode="reduced"',
          {'a': f'xp.matmul(xp.matmul({_Q}, xp.tril({_MQ} - {_swapped(_MQ)}, -1) - {_MQ}) + '
                f'(0.0 if mode == "r" else {_GQ}), {_swapped(_RINV)})'},
          jvp={'a': f'{_DR} if mode == "r" else (xp.matmul({_Q}, {_OQ} - {_CQ}) + {_XQ}, {_DR})'},
          nondiff=('mode',), targets=(numpy.linalg.qr,), impl='xp.linalg.qr',
          family='decomposition', batch='loop')


def _pinv_vjp(g, p, a):
    """The adjoint of a for p = pinv(a) (of constant rank): g pulled back."""
    return (f'(xp.matmul(xp.matmul({_swapped(g)} - xp.matmul(xp.matmul({a}, {p}), {_swapped(g)}), '
            f'{p}), {_swapped(p)}) + xp.matmul(xp.matmul({_swapped(p)}, {p}), {_swapped(g)} - '
            f'xp.matmul(xp.matmul({_swapped(g)}, {p}), {a})) - '
            f'xp.matmul(xp.matmul({_swapped(p)}, {g}), {_swapped(p)}))')


def _pinv_jvp(t, p, a):
    """The tangent of p = pinv(a) (of constant rank) along t."""
    return (f'(xp.matmul(xp.matmul({p}, {_swapped(p)}), {_swapped(t)} - '
            f'xp.matmul(xp.matmul({_swapped(t)}, {a}), {p})) + xp.matmul(xp.matmul('
            f'{_swapped(t)} - xp.matmul(xp.matmul({p}, {a}), {_swapped(t)}), {_swapped(p)}), '
            f'{p}) - xp.matmul(xp.matmul({p}, {t}), {p}))')


# pinv (Golub and Pereyra), where the rank stays as it is:
# dp = -p t p + p p^T t^T (1 - a p) + (1 - p a) t^T p^T p.
_PINV_OK = 'rt.linalg_rule_applies("pinv", a, False, hermitian)'
primitive('pinv', 'a, rcond=None, hermitian=False, *, rtol=None',
          {'a': f'{_pinv_vjp("rt.materialize(g, ans)", "ans", "a")} * {_PINV_OK}'},
          jvp={'a': f'{_pinv_jvp("t", "ans", "a")} * {_PINV_OK}'},
          nondiff=('rcond', 'hermitian', 'rtol'), targets=(numpy.linalg.pinv,),
          impl='xp.linalg.pinv', family='linalg', batch='leading')

# lstsq (a 2-D a): x = pinv(a) b (through pinv's rule, for a of constant rank);
# the residuals sum((b - a x)^2) (given for a tall a of full rank) move by
# 2 r (db - da x), a^T r being 0; the singular values as svd's.
_PA = 'xp.linalg.pinv(a)'
_X2 = 'xp.reshape(ans[0], (rt.shape(a)[1], -1))'
_B2 = 'xp.reshape(b, (rt.shape(a)[0], -1))'
_R2 = f'({_B2} - xp.matmul(a, {_X2}))'
_GX2 = 'xp.reshape(rt.materialize(rt.item(g, 0), ans[0]), (rt.shape(a)[1], -1))'
_GRES = 'xp.reshape(rt.materialize(rt.item(g, 1), ans[1]), (1, -1))'
_HAS_RES = 'if rt.size(ans[1]) else'
_LSTSQ_OK = 'rt.linalg_rule_applies("lstsq", a)'
_T2 = 'xp.reshape(t, (rt.shape(a)[0], -1))'
primitive('lstsq', 'a, b, rcond=None',
          {'a': f'({_pinv_vjp(f"xp.matmul({_GX2}, {_swapped(_B2)})", _PA, "a")} + '
                f'(-2 * xp.matmul({_R2} * {_GRES}, {_swapped(_X2)}) {_HAS_RES} 0.0) + '
                f'xp.matmul({_ONLY_S}[0] * rt.materialize(rt.item(g, 3), ans[3]), {_ONLY_S}[2])) * '
                f'{_LSTSQ_OK}',
           'b': f'xp.reshape(xp.matmul({_swapped(_PA)}, {_GX2}) + '
                f'(2 * {_R2} * {_GRES} {_HAS_RES} 0.0), rt.shape(b))'},
          jvp={'a': f'(xp.reshape(xp.matmul({_pinv_jvp("t", _PA, "a")}, {_B2}), '
                    'rt.shape(ans[0])) * ' + _LSTSQ_OK + ', '
                    f'-2 * xp.sum({_R2} * xp.matmul(t, {_X2}), axis=0) {_HAS_RES} 0.0, 0.0, '
                    f'xp.diagonal(xp.matmul(xp.matmul({_swapped(f"{_ONLY_S}[0]")}, t), '
                    f'{_swapped(f"{_ONLY_S}[2]")}), 0, -2, -1))',
               'b': f'(xp.reshape(xp.matmul({_PA}, {_T2}), rt.shape(ans[0])), '
                    f'2 * xp.sum({_R2} * {_T2}, axis=0) {_HAS_RES} 0.0, 0.0, 0.0)'},
          nondiff=('rcond',), targets=(numpy.linalg.lstsq,), impl='xp.linalg.lstsq',
          family='decomposition', batch='loop')

# multi_dot: the chain of products as one einsum (rt.multi_dot_subscripts),
# whose rules it shares; first order only, as einsum's. Of the 'shape' family,
# as concatenate: its list of arrays of different shapes stays a list (normalize
# makes a list given to a 'linalg' record one array).
_CHAIN = 'rt.multi_dot_subscripts(arrays)'
primitive('multi_dot', 'arrays, *, out=None',
          {'arrays': f'rt.einsum_vjp(g, {_CHAIN}, arrays, ans)'},
          jvp={'arrays': f'rt.einsum_jvp(t, {_CHAIN}, arrays)'}, nondiff=('out',),
          targets=(numpy.linalg.multi_dot,), impl='xp.linalg.multi_dot', family='shape')

batching(matmul=('matmul', 'dot'), vdot=('vdot', 'inner', 'outer'), einsum=('einsum',),
         axes=('trace',), solve=('solve',),
         leading=('inv', 'det', 'slogdet', 'cholesky', 'matrix_power'),
         tensordot=('tensordot',), loop=('kron', 'cross', 'multi_dot'))
