"""codax.jit: fusion structure, results against the unjitted function over the
corpus, composition with the other transformations, and the API (static
arguments, caching, placeholders, the compile log)."""
import copy
import re

import numpy as np
import pytest

import codax
from corpus import CORPUS
from helpers import assert_tree_allclose, tree_exactly_equal

_BY_NAME = {name: (fn, factory, argnums) for name, fn, factory, argnums in CORPUS}
IDS = [entry[0] for entry in CORPUS]


# ---- functions with a known fusion structure ----

def tanh_sq(x):
    return np.sum(np.tanh(x) ** 2)


def polynomial(x):
    return 3 * x ** 3 + 2 * x ** 2 - 5 * x + 1.5 * np.sin(x) * np.exp(-x)


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def layer_norm(x, gamma, beta):
    mu = np.mean(x, axis=-1, keepdims=True)
    d = x - mu
    var = np.mean(d * d, axis=-1, keepdims=True)
    return gamma * d / np.sqrt(var + 1e-5) + beta


def dot(x, y):
    return np.sum(x * y)


def adam(p, g, m, v, lr, b1=0.9, b2=0.999):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p = p - lr * m / (np.sqrt(v) + 1e-8)
    return p, m, v


def mixed_shapes(x, s):
    a = s * 2.0              # s is (1,): a must stay (1,) although b broadcasts
    b = a + x
    return a, np.tanh(b)


def int_inputs(i, x):
    return i / 2 + x * (i > 1)


def in_loop(x, n):
    acc = x
    for _ in range(n):
        acc = np.sin(acc) * 0.5 + x
    return acc


def mlp_loss(W1, b1, W2, x, y):
    h = np.tanh(x @ W1 + b1)
    out = h @ W2
    return np.mean((out - y) ** 2)


def copies(x, y):
    a = x * 2
    b = a                    # a copy of a value of the group ...
    a = b + y                # ... whose source is then rebound: the copy needs the old one
    c = np.exp(b) * a
    return c, b


def copy_chain(x, t):
    h = x * t
    h = h - 1.0              # each rebinding leaves a copy `h = _tN` in normal form
    h = np.tanh(h)
    g = h
    return g * h + 1.0, h


def copy_in_loop(x, n):
    acc = x
    for _ in range(n):
        t = np.sin(acc) * 0.5
        acc = t              # the next trip reads acc: the copy stays
        acc = acc + x
    return acc


def _rng(seed=0):
    return np.random.default_rng(seed)


def _kinds(kernels):
    return [k.kind for k in kernels]


def test_grad_of_sum_tanh_squared_is_one_kernel():
    x = _rng().normal(size=1000)
    kernels = codax.jit(codax.grad(tanh_sq)).kernels(x)
    assert _kinds(kernels) == ['elementwise']
    assert len(kernels[0].steps) >= 4            # tanh, square, times 2, 1 - t*t ...


def test_polynomial_is_one_kernel():
    assert _kinds(codax.jit(polynomial).kernels(np.ones(8))) == ['elementwise']


def test_softmax_is_one_rowwise_kernel():
    (kernel,) = codax.jit(softmax).kernels(np.ones((4, 8)))
    assert kernel.kind == 'rowwise' and kernel.trailing == 1


def test_dot_is_one_reduction_kernel():
    (kernel,) = codax.jit(dot).kernels(np.ones(8), np.ones(8))
    assert kernel.kind == 'reduction' and kernel.reduction.op == 'sum'
    assert kernel.reduction.axis is None


def test_adam_update_is_one_kernel_with_three_outputs():
    x = np.ones(8)
    (kernel,) = codax.jit(adam).kernels(x, x, x, x, 0.1)
    assert [v.source for v in kernel.outputs] == ['m', 'v', '_t11'] or len(kernel.outputs) == 3
    assert {v.source for v in kernel.inputs if v.scalar} >= {'lr', 'b1', 'b2'}


def test_matmul_stays_a_library_call():
    W1, b1, W2 = np.ones((3, 4)), np.ones(4), np.ones(4)
    source = codax.jit(codax.grad(mlp_loss)).source(W1, b1, W2, np.ones((5, 3)), np.ones(5))
    assert 'xp.matmul' in source or '@' in source


def test_float32_kernels_keep_float32():
    x = np.ones(8, np.float32)
    (kernel,) = codax.jit(polynomial).kernels(x)
    assert all(s.dtype == np.float32 for s in kernel.steps)
    assert 'f' in kernel.steps[1].expr              # 3.0f: a float32 literal


# ---- results ----

CASES = [
    (tanh_sq, lambda r: (r.normal(size=1000),)),
    (polynomial, lambda r: (r.normal(size=(30, 40)),)),
    (polynomial, lambda r: (r.normal(size=777).astype(np.float32),)),
    (softmax, lambda r: (r.normal(size=(16, 33)),)),
    (layer_norm, lambda r: (r.normal(size=(16, 33)), r.normal(size=33), r.normal(size=33))),
    (dot, lambda r: (r.normal(size=1001), r.normal(size=1001))),
    (adam, lambda r: (r.normal(size=50), r.normal(size=50), r.normal(size=50),
                      r.uniform(size=50), 0.01)),
    (mixed_shapes, lambda r: (r.normal(size=(6, 5)), r.normal(size=1))),
    (int_inputs, lambda r: (r.integers(0, 4, size=20), r.normal(size=20))),
    (in_loop, lambda r: (r.normal(size=64), 3)),
    (mlp_loss, lambda r: (r.normal(size=(3, 8)), r.normal(size=8), r.normal(size=8),
                          r.normal(size=(10, 3)), r.normal(size=10))),
    (copies, lambda r: (r.normal(size=(4, 6)), r.normal(size=6))),
    (copy_chain, lambda r: (r.normal(size=(5, 7)), 0.5)),
    (copy_in_loop, lambda r: (r.normal(size=40), 3)),
]


def _tol(args):
    single = any(getattr(a, 'dtype', None) == np.float32 for a in args)
    return dict(rtol=1e-5, atol=1e-5) if single else dict(rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('fn, make', CASES, ids=[f.__name__ + str(i) for i, (f, _) in
                                                 enumerate(CASES)])
def test_jit_matches_numpy(fn, make):
    args = make(_rng(1))
    before = copy.deepcopy(args)
    got = codax.jit(fn)(*args)
    assert tree_exactly_equal(args, before), 'jit modified its inputs'
    want = fn(*args)
    assert_tree_allclose(got, want, **_tol(args))
    for g, w in zip(np.atleast_1d(got) if not isinstance(got, tuple) else got,
                    np.atleast_1d(want) if not isinstance(want, tuple) else want):
        assert np.shape(g) == np.shape(w) and np.asarray(g).dtype == np.asarray(w).dtype


@pytest.mark.parametrize('name', IDS)
def test_corpus_jit(name):
    fn, factory, _ = _BY_NAME[name]
    got = codax.jit(fn)(*factory())
    assert_tree_allclose(got, fn(*factory()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('name', IDS)
def test_corpus_jit_of_grad(name):
    fn, factory, argnums = _BY_NAME[name]
    want = codax.grad(fn, argnums)(*factory())
    assert_tree_allclose(codax.jit(codax.grad(fn, argnums))(*factory()), want,
                         rtol=1e-10, atol=1e-12)


# ---- composition ----

def test_grad_of_jit():
    x = _rng(2).normal(size=50)
    assert_tree_allclose(codax.grad(codax.jit(tanh_sq))(x), 2 * np.tanh(x) / np.cosh(x) ** 2,
                         rtol=1e-12)


def test_jit_of_vmap_and_vmap_of_jit():
    A = _rng(3).normal(size=(7, 40))
    want = np.stack([softmax(a) for a in A])
    assert_tree_allclose(codax.jit(codax.vmap(softmax))(A), want, rtol=1e-12)
    assert_tree_allclose(codax.vmap(codax.jit(softmax))(A), want, rtol=1e-12)


def test_jit_of_vmap_of_grad():
    X = _rng(4).normal(size=(5, 30))
    got = codax.jit(codax.vmap(codax.grad(tanh_sq)))(X)
    assert_tree_allclose(got, 2 * np.tanh(X) / np.cosh(X) ** 2, rtol=1e-12)


def test_jit_of_jacrev_and_hessian():
    x = _rng(5).normal(size=6)
    jac = codax.jit(codax.jacrev(polynomial))(x)
    assert_tree_allclose(jac, codax.jacrev(polynomial)(x), rtol=1e-12)
    assert jac.shape == (6, 6)
    hess = codax.jit(codax.hessian(tanh_sq))(x)
    assert_tree_allclose(hess, codax.hessian(tanh_sq)(x), rtol=1e-12)


def test_jit_of_jit_and_decorator_forms():
    x = _rng(6).normal(size=9)

    @codax.jit
    def f(x):
        return np.exp(x) * 2 + 1

    g = codax.jit(static_argnums=1)(in_loop)
    assert_tree_allclose(codax.jit(f)(x), np.exp(x) * 2 + 1, rtol=1e-14)
    assert_tree_allclose(g(x, 2), in_loop(x, 2), rtol=1e-14)


# ---- API ----

def scaled(x, k, mode='add'):
    if mode == 'add':
        return x + k
    return x * k


def test_static_arguments_specialize_per_value():
    f = codax.jit(scaled, static_argnums=(1,), static_argnames='mode')
    x = np.arange(4.0)
    assert_tree_allclose(f(x, 2, mode='add'), x + 2)
    assert_tree_allclose(f(x, 3, mode='mul'), x * 3)
    assert_tree_allclose(f(x, 3, 'add'), x + 3)


def test_unhashable_static_argument_is_a_clear_error():
    f = codax.jit(scaled, static_argnums=1)
    with pytest.raises(ValueError, match='static argument 1 of scaled must be hashable'):
        f(np.ones(2), [1, 2])


def test_unknown_static_argname_is_a_clear_error():
    f = codax.jit(scaled, static_argnames='nope')
    with pytest.raises(ValueError, match="static_argnames names 'nope'"):
        f(np.ones(2), 1)


def test_donated_arguments_are_accepted_and_left_alone():
    x = np.ones(5)
    f = codax.jit(polynomial, donate_argnums=0)
    assert_tree_allclose(f(x), polynomial(np.ones(5)))
    assert np.array_equal(x, np.ones(5))


def test_second_call_reuses_the_specialization(capsys, monkeypatch):
    monkeypatch.setenv('CODAX_LOG_COMPILES', '1')
    f = codax.jit(lambda_free_poly)
    x = np.ones(5)
    f(x)
    f(x * 2)
    f(np.ones(3, np.float32))
    f(np.ones((2, 3), np.float32))
    f(np.ones((2, 3), np.float32))
    log = capsys.readouterr().err.splitlines()
    assert len(log) == 3, log
    assert 'first call' in log[0]
    assert 'types changed' in log[1]
    assert 'ranks changed' in log[2]


def lambda_free_poly(x):
    return x * x + 1.0


def test_source_with_placeholders_and_cupy_backend():
    spec = codax.ShapeDtypeStruct((1 << 26,), np.float32)
    text = codax.jit(codax.grad(tanh_sq)).source(spec, backend='cupy')
    assert 'ElementwiseKernel' in text or 'elementwise' in text
    assert 'float32' in text
    assert text == codax.jit(codax.grad(tanh_sq)).source(spec, backend='cupy')   # deterministic
    cpu = codax.jit(codax.grad(tanh_sq)).source(codax.ShapeDtypeStruct((3,), 'float64'))
    assert 'double' in cpu


def test_shape_dtype_struct():
    s = codax.ShapeDtypeStruct([2, 3], 'float32')
    assert s.shape == (2, 3) and s.dtype == np.float32 and s.ndim == 2 and s.size == 6
    assert s == codax.ShapeDtypeStruct((2, 3), np.float32)


def dict_mlp_loss(params, x, y):
    h = np.tanh(x @ params['W'] + params['b'])
    return np.mean((h - y) ** 2)


def test_dict_parameters_keep_their_types_and_fuse():
    r = _rng(7)
    params = {'W': r.normal(size=(3, 4)), 'b': r.normal(size=4)}
    x, y = r.normal(size=(6, 3)), r.normal(size=(6, 4))
    grad = codax.grad(dict_mlp_loss)
    kernels = codax.jit(grad).kernels(params, x, y)
    assert any('tanh' in s.expr for k in kernels for s in k.steps)
    got, want = codax.jit(grad)(params, x, y), grad(params, x, y)
    assert_tree_allclose(got, want, rtol=1e-12)


def affine_tanh(W, b, x):
    return np.tanh(x @ W + b)


def calls_a_helper(W, b, x):
    h = affine_tanh(W, b, x)
    return np.sum(h * h + 1.0)


def test_user_functions_called_inside_are_jitted_and_typed():
    r = _rng(8)
    W, b, x = r.normal(size=(3, 4)), r.normal(size=4), r.normal(size=(5, 3))
    jitted = codax.jit(calls_a_helper)
    assert 'rt.kernels.jitted(affine_tanh)' in jitted.source(W, b, x)
    # the helper's result type is known, so the sum after it fuses
    assert _kinds(jitted.kernels(W, b, x)) == ['reduction']
    assert_tree_allclose(jitted(W, b, x), calls_a_helper(W, b, x), rtol=1e-12)
    assert_tree_allclose(codax.jit(codax.grad(calls_a_helper))(W, b, x),
                         codax.grad(calls_a_helper)(W, b, x), rtol=1e-12)


# ---- the toolbox under jit ----

def _body(i, x):
    return x * 0.9 + np.sin(x)


def lax_loop(x):
    return np.sum(codax.lax.fori_loop(0, 5, _body, x))


def _step(carry, x):
    carry = carry * 0.5 + x
    return carry, carry ** 2


def lax_scan(xs):
    carry, ys = codax.lax.scan(_step, 0.0, xs)
    return carry + np.sum(ys)


def _pos(x):
    return np.sum(x * x)


def _neg(x):
    return np.sum(np.sin(x))


def lax_cond(x, p):
    return codax.lax.cond(p > 0, _pos, _neg, x)


def noisy(w, k):
    return np.sum((w - codax.random.normal(k, (3,))) ** 2)


def functional_update(x, v):
    return np.sum(codax.numpy.at(x)[1:3].add(v * 2.0) ** 2)


TOOLBOX = [(lax_loop, lambda: (np.linspace(0.1, 1, 5),)),
           (lax_scan, lambda: (np.linspace(0.1, 1, 5),)),
           (lax_cond, lambda: (np.linspace(0.1, 1, 5), 1.0)),
           (lax_cond, lambda: (np.linspace(0.1, 1, 5), -1.0)),
           (noisy, lambda: (np.linspace(0.1, 1, 3), codax.random.PRNGKey(0))),
           (functional_update, lambda: (np.linspace(0.1, 1, 5), np.ones(2)))]


@pytest.mark.parametrize('fn, make', TOOLBOX, ids=[f'{f.__name__}{i}' for i, (f, _) in
                                                   enumerate(TOOLBOX)])
def test_toolbox_under_jit_and_grad(fn, make):
    args = make()
    assert_tree_allclose(codax.jit(fn)(*args), fn(*args), rtol=1e-12)
    want = codax.grad(fn)(*args)
    assert_tree_allclose(codax.jit(codax.grad(fn))(*args), want, rtol=1e-12)
    assert_tree_allclose(codax.grad(codax.jit(fn))(*args), want, rtol=1e-12)


def _logged_body(i, x):
    return x * 0.5 + np.cos(x)


def logged_loop(x):
    return codax.lax.fori_loop(0, 3, _logged_body, x)


def test_lax_bodies_are_jitted(capsys, monkeypatch):
    monkeypatch.setenv('CODAX_LOG_COMPILES', '1')
    codax.jit(logged_loop)(np.ones(7, np.float32))
    log = capsys.readouterr().err
    assert 'jit(fori_loop)' in log and 'jit(_logged_body)' in log


def test_random_samplers_jit_with_static_shapes():
    key = codax.random.PRNGKey(3)
    normal = codax.jit(codax.random.normal, static_argnums=1)
    assert np.array_equal(normal(key, (4,)), codax.random.normal(key, (4,)))
    uniform = codax.jit(codax.random.uniform, static_argnames='shape')
    assert np.array_equal(uniform(key, shape=(2, 3)), codax.random.uniform(key, shape=(2, 3)))


def test_vmap_of_jit_over_keys():
    keys = codax.random.split(codax.random.PRNGKey(1), 4)
    w = np.linspace(0.1, 1, 3)
    got = codax.vmap(codax.jit(noisy), in_axes=(None, 0))(w, keys)
    assert_tree_allclose(got, np.array([noisy(w, k) for k in keys]), rtol=1e-12)


def test_device_put_then_jit_on_numpy():
    x = codax.device_put(np.linspace(0, 1, 6))
    assert_tree_allclose(codax.jit(polynomial)(x), polynomial(np.linspace(0, 1, 6)), rtol=1e-12)


# ---- what fuses: constants, globals, dtypes ----

SCALE = 3.0


def uses_globals(x):
    return np.sin(np.pi * x) * SCALE + np.minimum(x, np.inf) + np.where(x > 0, x, -np.inf)


def casts_then_chains(x):
    return np.sin(x.astype(np.float32)) * 2 + 1


def negated_number(x, s):
    t = -s
    return np.tanh(x) * t + 1


def tuple_axis(x, y):
    return np.sum(x * y, axis=(0, 1))


@pytest.mark.parametrize('fn, args', [
    (uses_globals, (np.linspace(-1, 1, 12),)),
    (casts_then_chains, (np.linspace(-1, 1, 12),)),
    (negated_number, (np.linspace(-1, 1, 12).astype(np.float32), 0.5)),
    (tuple_axis, (np.ones((3, 4)), np.arange(12.0).reshape(3, 4))),
])
def test_constants_globals_and_casts_fuse_with_numpys_dtypes(fn, args):
    jitted = codax.jit(fn)
    assert len(jitted.kernels(*args)) == 1
    got, want = jitted(*args), fn(*args)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert_tree_allclose(got, want, rtol=1e-6)


def test_rebinding_a_global_number_makes_new_code():
    global SCALE
    x = np.linspace(-1, 1, 5)
    jitted = codax.jit(uses_globals)
    first = jitted(x)
    SCALE = 5.0
    try:
        assert_tree_allclose(jitted(x), uses_globals(x), rtol=1e-12)
        assert not np.allclose(jitted(x), first)
    finally:
        SCALE = 3.0


# ---- var/std and row-wise kernels (issue 5) ----

import runtime  # noqa: E402  (this section's own imports)


def var_chain(x):
    return np.var(np.tanh(x) * 2 + x)


def var_axis(x):
    return np.var(x * 0.5 + 1, axis=-1, keepdims=True, ddof=1)


def std_axes(x):
    return np.std(np.exp(x * 1e-6) * x, axis=(0, 1))


def std_lead(x):
    return np.std(np.sqrt(x * x + 1), axis=0, ddof=1)


def logsumexp(x):
    m = np.max(x, axis=-1, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def layer_norm_var(x, g, b):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def softmax_vector(x):                 # axis None of a vector: its one row
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def softmax_and_lse(x, t):             # two outputs, a number, a row output
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp((x - m) / t)
    s = np.sum(e, axis=-1, keepdims=True)
    return e / s, m + t * np.log(s)


def centred_rows(x):                   # a row max without keepdims: an output only
    return x - np.mean(x, axis=-1, keepdims=True), np.max(x, axis=-1)


def log_softmax(x):                    # rebinds x: normalize leaves the copy `x = _t1`
    x = x - np.max(x, axis=-1, keepdims=True)
    return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


def softmax_ellipsis(x):               # keepdims=False, the axis put back by an index
    e = np.exp(x - np.max(x, axis=-1)[..., None])
    return e / np.sum(e, axis=-1)[..., np.newaxis]


def softmax_expand_dims(x):
    e = np.exp(x - np.expand_dims(np.max(x, axis=-1), -1))
    return e / np.expand_dims(np.sum(e, axis=-1), axis=-1)


def softmax_index(x):                  # of a matrix only: axis 1 put back by [:, None]
    e = np.exp(x - np.max(x, axis=1)[:, None])
    return e / np.sum(e, axis=1)[:, None]


def softmax_reshape(x):                # of a matrix only
    e = np.exp(x - np.max(x, axis=1).reshape(-1, 1))
    return e / np.sum(e, axis=1).reshape((-1, 1))


def log_softmax_index(x):              # work on row values between the reduction and [:, None]
    m = np.max(x, axis=1)
    s = np.sum(np.exp(x - m[:, None]), axis=1)
    return x - m[:, None] - np.log(s)[:, None]


def log_softmax_keepdims(x):           # the same, spelt with keepdims=True
    m = np.max(x, axis=1, keepdims=True)
    s = np.sum(np.exp(x - m), axis=1, keepdims=True)
    return x - m - np.log(s)


def layer_norm_put_back(x, g, b):      # 1 / sqrt(var + eps) on row values, then put back
    mu = np.mean(x, axis=-1)
    d = x - mu[..., None]
    r = 1.0 / np.sqrt(np.mean(d * d, axis=-1) + 1e-5)
    return g * d * np.expand_dims(r, -1) + b


def layer_norm_put_back_keepdims(x, g, b):
    mu = np.mean(x, axis=-1, keepdims=True)
    d = x - mu
    r = 1.0 / np.sqrt(np.mean(d * d, axis=-1, keepdims=True) + 1e-5)
    return g * d * r + b


def lse_put_back(x):                   # two row values combined; lse rebound by its put-back
    m = np.max(x, axis=1)
    lse = m + np.log(np.sum(np.exp(x - m.reshape(-1, 1)), axis=1))
    lse = lse.reshape(-1, 1)
    return x - lse


def lse_put_back_keepdims(x):
    m = np.max(x, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))
    return x - lse


ROW_FUNCTIONS = [softmax, logsumexp, layer_norm, layer_norm_var, softmax_vector,
                 softmax_and_lse, centred_rows, log_softmax, softmax_ellipsis,
                 softmax_expand_dims]
MATRIX_ROW_FUNCTIONS = [softmax_index, softmax_reshape]
ROW_SHAPES = [(7, 1), (1, 1), (5, 3), (9, 33), (3, 1025), (2, 5000), (300, 1001), (2, 3, 17)]


def _row_args(fn, shape, dtype, rng):
    x = (rng.normal(size=shape) * 3).astype(dtype)
    if fn in (layer_norm, layer_norm_var):
        return x, rng.normal(size=shape[-1]).astype(dtype), rng.normal(size=shape[-1]).astype(dtype)
    if fn is softmax_and_lse:
        return x, 0.7
    return (x.ravel(),) if fn is softmax_vector else (x,)


def _c_runs(jitted, args):
    """The jitted result, asserting that every kernel ran as C (no fallback)."""
    before = sum(runtime.kernels.cpu.FALLBACKS.values())
    got = jitted(*args)
    assert sum(runtime.kernels.cpu.FALLBACKS.values()) == before, \
        dict(runtime.kernels.cpu.FALLBACKS)
    return got


# (a) var and std are reduction kernels of the chains that feed them.

@pytest.mark.parametrize('fn', [var_chain, var_axis, std_axes, std_lead])
def test_var_and_std_of_a_chain_are_one_reduction_kernel(fn):
    (kernel,) = codax.jit(fn).kernels(np.ones((3, 4, 5)))
    assert kernel.kind == 'reduction' and kernel.reduction.op in ('var', 'std')
    assert len(kernel.steps) >= 2                 # the chain, computed on the fly


def _reference(fn, args):
    """fn in float64 on the same data (float32 inputs promoted)."""
    return fn(*[a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args])


@pytest.mark.filterwarnings('ignore:Degrees of freedom:RuntimeWarning',
                            'ignore:invalid value:RuntimeWarning')
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('fn', [var_chain, var_axis, std_axes, std_lead])
@pytest.mark.parametrize('shape', [(3, 4, 5), (2, 1, 7), (5, 300, 301), (1, 1, 1)])
def test_var_and_std_match_numpy(fn, dtype, shape):
    x = _rng(10).normal(size=shape).astype(dtype)
    jitted = codax.jit(fn)
    got = _c_runs(jitted, (x,)) if fn is not std_lead else jitted(x)   # axis 0: NumPy
    want = fn(x)
    assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == np.asarray(want).dtype
    with np.errstate(all='ignore'):
        exact = _reference(fn, (x,))
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got, exact, **tol)


@pytest.mark.parametrize('mean, dtype', [(1e4, np.float32), (1e4, np.float64),
                                          (1e8, np.float64)])
def test_var_is_stable_for_a_large_mean(mean, dtype):
    """E[x^2] - E[x]^2 would lose every digit here (1e8 + N(0, 1): x^2 is
    1e16, where a double's ulp is 2); two passes keep them."""
    x = (mean + _rng(11).normal(size=(4, 250000))).astype(dtype)
    exact = np.var(x.astype(np.float64), axis=-1, keepdims=True, ddof=1) * 0.25
    for shape in ((4, 250000), (1, 10 ** 6)):              # rows, and one row on threads
        data = x.reshape(shape)
        want = np.var(data.astype(np.float64), axis=-1, keepdims=True, ddof=1) * 0.25
        got = _c_runs(codax.jit(var_axis), (data,))
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-9)
    assert exact.shape == (4, 1)


@pytest.mark.filterwarnings('ignore:Degrees of freedom:RuntimeWarning')
def test_var_ddof_past_the_count_is_numpys_inf_or_nan():
    x = np.arange(6.0).reshape(3, 2)
    with np.errstate(all='ignore'):
        got = codax.jit(var_axis)(x[:, :1])                 # one element, ddof 1: 0 / 0
        want = var_axis(x[:, :1])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


# (b) row-wise kernels.

@pytest.mark.parametrize('fn', [softmax, logsumexp, layer_norm, layer_norm_var, softmax_vector,
                                softmax_and_lse])
def test_row_functions_are_one_rowwise_kernel(fn):
    args = _row_args(fn, (4, 8), np.float64, _rng(12))
    (kernel,) = codax.jit(fn).kernels(*args)
    assert kernel.kind == 'rowwise' and kernel.trailing == 1
    assert kernel.reduction is None


def test_softmax_source_is_one_call():
    source = codax.jit(softmax).source(np.ones((4, 8)))
    body = source[source.index('def jit_softmax'):]
    assert body.count('_softmax_k') == 1 and 'xp.max' not in body
    assert 'softmax_k0_pass3' in source                    # max, sum of exp, quotient


def test_a_row_output_without_keepdims_comes_out_of_the_row_kernel():
    x = _rng(13).normal(size=(6, 9))
    (kernel,) = codax.jit(centred_rows).kernels(x)
    assert kernel.kind == 'rowwise' and len(kernel.outputs) == 2
    got = _c_runs(codax.jit(centred_rows), (x,))
    assert_tree_allclose(got, centred_rows(x), rtol=1e-13, atol=1e-13)
    assert got[1].shape == (6,)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', ROW_SHAPES)
@pytest.mark.parametrize('fn', ROW_FUNCTIONS)
def test_row_kernels_match_numpy(fn, shape, dtype):
    _check_rows(fn, shape, dtype)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', [shape for shape in ROW_SHAPES if len(shape) == 2])
@pytest.mark.parametrize('fn', MATRIX_ROW_FUNCTIONS)
def test_matrix_row_kernels_match_numpy(fn, shape, dtype):
    _check_rows(fn, shape, dtype)


def _check_rows(fn, shape, dtype):
    """fn jitted, every kernel run as C, against NumPy in float64."""
    args = _row_args(fn, shape, dtype, _rng(14))
    got = _c_runs(codax.jit(fn), args)
    want = fn(*args)
    exact = _reference(fn, args)
    for g, w, e in zip(*(v if isinstance(v, tuple) else (v,) for v in (got, want, exact))):
        assert np.shape(g) == np.shape(w) and np.asarray(g).dtype == np.asarray(w).dtype
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(g, e, **tol)


@pytest.mark.parametrize('fn', [softmax, layer_norm_var, logsumexp])
def test_row_kernels_read_any_layout(fn):
    """Transposed, sliced and reversed inputs, and parameters of either
    shape, run in C against NumPy."""
    rng = _rng(15)
    base = rng.normal(size=(64, 90))
    for x in (base.T, base[::2, ::3], base[::-1, ::-1], np.asfortranarray(base)):
        args = _row_args(fn, x.shape, np.float64, rng)
        args = (x,) + args[1:]
        if fn is layer_norm_var:
            args = (x, args[1][::-1], np.ones((1, x.shape[1])))
        got = _c_runs(codax.jit(fn), args)
        assert_tree_allclose(got, fn(*args), rtol=1e-12, atol=1e-13)


def test_row_kernels_leave_other_shapes_to_numpy():
    """Where NumPy's shapes are not one row a reduction (a parameter longer
    than the rows' own axis broadcast against them), the kernel's NumPy
    fallback runs, with NumPy's answer or error."""
    x = _rng(16).normal(size=(4, 1))
    g = np.ones(6)
    got = codax.jit(layer_norm_var)(x, g, g)               # rows of 1, outputs of 6
    assert_tree_allclose(got, layer_norm_var(x, g, g), rtol=1e-12)
    with pytest.raises(ValueError):
        codax.jit(layer_norm_var)(np.ones((4, 5)), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match='zero-size'):
        codax.jit(softmax)(np.ones((3, 0)))


def lse_loss(x):
    m = np.max(x, axis=-1, keepdims=True)
    return np.sum(m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))


def test_jit_of_grad_of_logsumexp_fuses_rows():
    """The forward pass is one row-wise kernel with every value the backward
    pass reads among its outputs."""
    x = _rng(17).normal(size=(8, 21))
    got = _c_runs(codax.jit(codax.grad(lse_loss)), (x,))
    assert_tree_allclose(got, codax.grad(lse_loss)(x), rtol=1e-12)
    kernels = codax.jit(codax.grad(lse_loss)).kernels(x)
    assert _kinds(kernels)[0] == 'rowwise' and len(kernels[0].outputs) >= 3


def rebound_rows(x, y):                # v bound twice: a row kernel gives the last one
    t = y - np.max(y, axis=-1, keepdims=True)
    v = x / (1.0 + np.sum(t * t, axis=-1, keepdims=True))
    v = t / (1.0 + np.sum(t * t, axis=-1, keepdims=True))
    return v


def max_of_chain(x):                   # its gradient compares tanh(x) * 0.5 with the max
    return np.sum(np.max(np.tanh(x) * 0.5, axis=1))


ROW_CASES = [                      # tests/test_jit_kernels.py compiles and runs their kernels
    (var_chain, lambda r: (r.normal(size=(6, 40)),)),
    (var_axis, lambda r: (r.normal(size=(6, 40)).astype(np.float32),)),
    (std_axes, lambda r: (r.normal(size=(2, 3, 40)),)),
    (std_lead, lambda r: (r.normal(size=(6, 40)),)),
    (logsumexp, lambda r: (r.normal(size=(6, 40)),)),
    (layer_norm_var, lambda r: (r.normal(size=(6, 40)).astype(np.float32),
                                r.normal(size=40).astype(np.float32),
                                r.normal(size=40).astype(np.float32))),
    (softmax_vector, lambda r: (r.normal(size=50),)),
    (softmax_and_lse, lambda r: (r.normal(size=(6, 40)), 0.5)),
    (centred_rows, lambda r: (r.normal(size=(6, 40)),)),
    (lse_loss, lambda r: (r.normal(size=(6, 40)),)),
    (log_softmax, lambda r: (r.normal(size=(6, 40)),)),
    (softmax_ellipsis, lambda r: (r.normal(size=(2, 3, 40)).astype(np.float32),)),
    (softmax_expand_dims, lambda r: (r.normal(size=(6, 40)),)),
    (softmax_index, lambda r: (r.normal(size=(6, 40)),)),
    (softmax_reshape, lambda r: (r.normal(size=(6, 40)).astype(np.float32),)),
    (rebound_rows, lambda r: (r.normal(size=(6, 40)), r.normal(size=(6, 40)))),
    (max_of_chain, lambda r: (r.normal(size=(6, 40)),)),
    (log_softmax_index, lambda r: (r.normal(size=(6, 40)).astype(np.float32),)),
    (layer_norm_put_back, lambda r: _put_back_args(layer_norm_put_back, r)),
    (lse_put_back, lambda r: (r.normal(size=(6, 40)),)),
]


# ---- copies, reductions broadcast back by hand, dead statements ----

def _jit_body(source):
    return source[source.index('def jit_'):]


def _step_kinds(kernel):
    """A kernel's structure without its names: each step's kind, and a
    row reduction's operation and keepdims."""
    return [(type(s).__name__, getattr(s, 'op', None), getattr(s, 'keepdims', None))
            for s in kernel.steps]


def test_a_copy_does_not_end_the_group():
    """ml_softmax_xent rebinds `logits` (`logits = _t1` in normal form): one
    row-wise kernel, alone and in its gradient, where the copy used to split
    it in two; the copy, which nothing after the kernel reads, is gone."""
    fn, factory, argnums = _BY_NAME['ml_softmax_xent']
    args = factory()
    assert _kinds(codax.jit(fn).kernels(*args)) == ['rowwise']
    assert _kinds(codax.jit(codax.grad(fn, argnums)).kernels(*args)) == ['rowwise']
    body = _jit_body(codax.jit(fn).source(*args))
    assert body.count('_ml_softmax_xent_k') == 1 and 'logits = _t' not in body
    (kernel,) = codax.jit(log_softmax).kernels(np.ones((4, 8)))
    assert kernel.kind == 'rowwise' and [v.source for v in kernel.inputs] == ['x']


def test_softmax_xent_runs_in_c_as_numpy():
    fn, _, argnums = _BY_NAME['ml_softmax_xent']
    r = _rng(20)
    args = (r.normal(size=(30, 10)), r.normal(size=(64, 30)), r.integers(0, 10, 64))
    for f in (fn, codax.grad(fn, argnums)):
        assert_tree_allclose(_c_runs(codax.jit(f), args), f(*args), rtol=1e-12, atol=1e-13)


def test_copies_keep_what_later_code_reads():
    """A copy whose target code after the group reads runs after the
    kernel (copy_chain returns h); one whose source the group then rebinds
    closes the group first (copies); one the next trip of a loop reads
    stays in the loop body (copy_in_loop)."""
    body = _jit_body(codax.jit(copy_chain).source(np.ones(3), 0.5))
    assert body.count('_copy_chain_k') == 1 and 'h = _t' in body
    assert _kinds(codax.jit(copy_chain).kernels(np.ones(3), 0.5)) == ['elementwise']
    body = _jit_body(codax.jit(copies).source(np.ones(3), np.ones(3)))
    assert body.index('b = a') < body.index('_copies_k0(b, y)')
    body = _jit_body(codax.jit(copy_in_loop).source(np.ones(3), 2))
    assert body.count('_copy_in_loop_k') == 1 and 'acc = _t' in body


@pytest.mark.parametrize('fn', [softmax_index, softmax_ellipsis, softmax_expand_dims,
                                softmax_reshape])
def test_a_reduction_broadcast_back_fuses_as_keepdims_does(fn):
    """`np.max(x, axis=1)[:, None]` and the like put back the reduced axis:
    the same row-wise kernel as the keepdims=True softmax, on either back
    end, and no indexing, expand_dims or reshape left in the code."""
    x = np.ones((4, 8))
    for backend in ('numpy', 'cupy'):
        (kernel,) = codax.jit(fn).kernels(x, backend=backend)
        (want,) = codax.jit(softmax).kernels(x, backend=backend)
        assert kernel.kind == 'rowwise' and kernel.trailing == 1
        assert _step_kinds(kernel) == _step_kinds(want)
    code = [line for line in _jit_body(codax.jit(fn).source(x)).splitlines()
            if not line.strip().startswith('#')]              # not the user's lines
    assert sum(f'_{fn.__name__}_k' in line for line in code) == 1
    assert not any(op in line for line in code
                   for op in ('None]', 'xp.expand_dims', 'xp.reshape', 'xp.max'))


def partly_broadcast(x):               # the row max is also an output: not a keepdims spelling
    m = np.max(x, axis=1)
    return x - m[:, None], m


def test_a_reduction_read_elsewhere_keeps_its_shape():
    x = _rng(21).normal(size=(5, 7))
    got = codax.jit(partly_broadcast)(x)
    assert_tree_allclose(got, partly_broadcast(x), rtol=1e-13)
    assert got[1].shape == (5,)
    assert 'keepdims' not in codax.jit(partly_broadcast).source(x)


def log_softmax_steps(x, n):           # in a loop body, a block of its own
    for _ in range(n):
        m = np.max(x, axis=1)
        x = x - m[:, None] - np.log(np.sum(np.exp(x - m[:, None]), axis=1))[:, None]
    return x


def log_softmax_steps_keepdims(x, n):
    for _ in range(n):
        m = np.max(x, axis=1, keepdims=True)
        x = x - m - np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))
    return x


PUT_BACK_PAIRS = [(log_softmax_index, log_softmax_keepdims),
                  (layer_norm_put_back, layer_norm_put_back_keepdims),
                  (lse_put_back, lse_put_back_keepdims),
                  (log_softmax_steps, log_softmax_steps_keepdims)]


def _put_back_args(fn, rng, dtype=np.float64):
    x = rng.normal(size=(6, 40)).astype(dtype)
    if fn in (layer_norm_put_back, layer_norm_put_back_keepdims):
        return x, rng.normal(size=40).astype(dtype), rng.normal(size=40).astype(dtype)
    return (x, 3) if fn in (log_softmax_steps, log_softmax_steps_keepdims) else (x,)


def kernel_text(fn, args, backend):
    """What jit generates for `fn` above its function (the kernels and their
    fallbacks), with its name, line numbers and temporaries' numbers made
    neutral (and white space: the C wraps and aligns on the name), so that two
    spellings of one program compare equal."""
    source = codax.jit(fn).source(*args, backend=backend)
    text = source[source.index('\n'):source.index('def jit_')].replace(fn.__name__, 'f')
    text = re.sub(r'\blines? \d+(, \d+)*', 'lines', re.sub(r'\s+', ' ', text))
    names = {}
    return re.sub(r'_t\d+', lambda m: names.setdefault(m.group(), f'_t#{len(names)}'), text)


@pytest.mark.parametrize('fn, twin', PUT_BACK_PAIRS)
def test_work_on_row_values_then_put_back_fuses_as_keepdims_does(fn, twin):
    """Element-wise work between a reduction and the index that puts its
    axes back (`np.log(s)[:, None]`) no longer ends the group: the kernels
    and their source are the keepdims=True spelling's, on either back end,
    and the results NumPy's."""
    args = _put_back_args(fn, _rng(22))
    for backend in ('numpy', 'cupy'):
        kernels = codax.jit(fn).kernels(*args, backend=backend)
        assert _kinds(kernels) == _kinds(codax.jit(twin).kernels(*args, backend=backend))
        assert _kinds(kernels) == (['rowwise'] if fn is not log_softmax_steps
                                   else ['reduction', 'elementwise'])  # x is rebound
        assert kernel_text(fn, args, backend) == kernel_text(twin, args, backend)
    for dtype in (np.float32, np.float64):
        args = _put_back_args(fn, _rng(23), dtype)
        got, want = _c_runs(codax.jit(fn), args), fn(*args)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


def row_value_also_returned(x):        # log(s) is also an output: it keeps its shape
    ls = np.log(np.sum(np.exp(x), axis=1))
    return x - ls[:, None], ls


def row_value_plus_a_column(x, b):     # b is (n,): log(s) + b is (n,), never (n, n)
    s = np.sum(np.exp(x), axis=1)
    return x - (np.log(s) + b)[:, None]


def row_values_of_other_axes(x):       # (n,) from axis 1 plus (n,) from axis 0
    return x - (np.max(x, axis=1) + np.min(x, axis=0))[:, None]


def row_value_of_the_last_trip(x, n):  # y reads the m of the trip before
    m = np.sum(x, axis=1) * 0.0
    for _ in range(n):
        y = x - m[:, None]
        m = np.max(y, axis=1)
        x = y * 0.5 + (m * 2.0)[:, None]
    return x


def test_row_values_that_cannot_keep_dims_keep_their_shape():
    """Where a row value is read as it is, combined with an array that
    would broadcast against unit axes differently, or read by a loop's next
    trip before it is bound, nothing is put back."""
    x, b = _rng(24).normal(size=(5, 5)), _rng(25).normal(size=5)
    for fn, args in ((row_value_also_returned, (x,)), (row_value_plus_a_column, (x, b)),
                     (row_values_of_other_axes, (x,)), (row_value_of_the_last_trip, (x, 3))):
        got = codax.jit(fn)(*args)
        assert_tree_allclose(got, fn(*args), rtol=1e-13)
        assert 'None]' in _jit_body(codax.jit(fn).source(*args))
    assert codax.jit(row_value_also_returned)(x)[1].shape == (5,)


def _unread(source):
    """The names the jitted function assigns (`name = ...`) and never reads."""
    import ast
    tree = ast.parse(source)
    fdef = next(node for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name.startswith('jit_'))
    assigned = {node.targets[0].id for node in ast.walk(fdef)
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    read = {node.id for node in ast.walk(fdef)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return assigned - read


def rows_tuple_axis(x):                # normalize names the axis: `_t0 = (1,)`
    return x - np.mean(x, axis=(1,), keepdims=True)


def lse_tuple_axis(x):
    return np.log(np.sum(np.exp(x), axis=(1,)))


@pytest.mark.parametrize('fn', [tuple_axis, rows_tuple_axis, lse_tuple_axis, softmax_reshape,
                                log_softmax, 'ml_softmax_xent'])
def test_fusion_leaves_no_dead_statements(fn):
    """An axis tuple that only a fused reduction read, and a copy that only
    fused statements read, do not stay behind."""
    if fn == 'ml_softmax_xent':
        fn, factory, _ = _BY_NAME[fn]
        args = factory()
    else:
        args = (np.arange(12.0).reshape(3, 4),) * (2 if fn is tuple_axis else 1)
    jitted = codax.jit(fn)
    assert jitted.kernels(*args)
    assert _unread(jitted.source(*args)) == set()
    assert_tree_allclose(jitted(*args), fn(*args), rtol=1e-12)


def _unread_outputs(source):
    """The kernel outputs of the jitted function's top level that no later
    statement reads before they are bound again."""
    import ast
    fdef = next(node for node in ast.parse(source).body
                if isinstance(node, ast.FunctionDef) and node.name.startswith('jit_'))
    live, unread = set(), []
    for stmt in reversed(fdef.body):
        value = getattr(stmt, 'value', None)
        if isinstance(value, ast.Call) and getattr(value.func, 'id', '').startswith('_'):
            unread += [node.id for node in ast.walk(stmt.targets[0])
                       if isinstance(node, ast.Name) and node.id not in live]
        if not isinstance(stmt, (ast.If, ast.For, ast.While)):
            live -= {node.id for node in ast.walk(stmt)
                     if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        live |= {node.id for node in ast.walk(stmt)
                 if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return unread


@pytest.mark.parametrize('name', ['ew_roots', 'red_norm', 'la_inv_det', 'al_onp_basic',
                                  'ml_softmax_xent'])
def test_kernels_write_only_what_later_code_reads(name):
    """At the top level a group's outputs are what the code after it reads:
    no adjoint written by a kernel and overwritten before any read (these
    gradients had one each)."""
    fn, factory, argnums = _BY_NAME[name]
    jitted = codax.jit(codax.grad(fn, argnums))
    assert jitted.kernels(*factory())
    assert _unread_outputs(jitted.source(*factory())) == []
    assert_tree_allclose(jitted(*factory()), codax.grad(fn, argnums)(*factory()), rtol=1e-10,
                         atol=1e-12)


def test_a_name_bound_twice_around_a_row_kernel():
    """Longer groups (copies no longer end them) hold more rebindings: the
    row kernel computes the last `v`, the reduction kernel that the first
    one needed reads the row maximum from it, and nothing overwrites `v`
    with its first value."""
    r = _rng(22)
    x, y = r.normal(size=(5, 9)), r.normal(size=(5, 9))
    assert_tree_allclose(_c_runs(codax.jit(rebound_rows), (x, y)), rebound_rows(x, y),
                         rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize('shape', [(4, 6), (40, 60)])
def test_a_max_of_a_chain_the_gradient_reads_is_not_recomputed(shape):
    """A kernel's recomputed tanh(x) * 0.5 need not be bit-identical to the
    array the gradient compares it with (NumPy's tanh runs small calls), and
    `x == max` found no maximum: the gradient was NaN at 4 x 6."""
    x = _rng(23).normal(size=shape)
    grad = codax.grad(max_of_chain)
    got = codax.jit(grad)(x)
    assert not np.isnan(got).any()
    assert_tree_allclose(got, grad(x), rtol=1e-12, atol=1e-13)
    assert 'xp.max(' in _jit_body(codax.jit(grad).source(x))


def test_the_new_spellings_generate_the_same_text_in_every_process():
    """Copies and keepdims spellings change nothing that depends on hashing:
    byte-identical source under two hash seeds (CuPy's disk cache hits)."""
    import os
    import subprocess
    import sys
    script = ('import numpy as np, codax, test_jit as t\n'
              'for f in (t.softmax_index, t.softmax_reshape, t.log_softmax):\n'
              '    print(codax.jit(f).source(np.ones((4, 8)), backend="cupy"))\n')
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join([here, os.path.dirname(here), os.environ.get('PYTHONPATH', '')])
    texts = [subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            check=True, env=dict(os.environ, PYTHONPATH=path,
                                                 PYTHONHASHSEED=seed)).stdout
             for seed in ('1', '2')]
    assert texts[0] == texts[1] and 'softmax_index_k0' in texts[0]
