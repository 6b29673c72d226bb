"""codax.numpy.at(x)[idx].set/add/multiply/divide/power/min/max/apply/get:
JAX's functional updates, with JAX's mode= for indices out of bounds, in
plain Python and inside grad, jvp, second derivatives and vmap.

The records' rules are checked one by one in test_primitive_rules.py and
test_jvp_rules.py; here whole functions are checked against finite
differences, with repeated indices, slices, masks and 2-D arrays.
"""
import os

import numpy as np
import pytest

import codax
import codax.numpy as cnp
import runtime
from codax.numpy import at
from helpers import assert_tree_allclose, numeric_grad

THIS_FILE = os.path.basename(__file__)
IDX = np.array([0, 2, 2, 4])          # 2 repeats: add/multiply/min/max accumulate there
RTOL, ATOL = 1e-5, 1e-7
E = 1e-5


# ---- plain Python ----

def test_plain_updates_match_numpy_and_leave_x_alone():
    x = np.array([0.5, -1.0, 2.0, 0.25, 3.0])
    v = np.array([1.0, 4.0, -2.0, 0.5])
    before = x.copy()
    for method, ufunc in (('add', np.add), ('multiply', np.multiply), ('min', np.minimum),
                          ('max', np.maximum)):
        want = x.copy()
        ufunc.at(want, IDX, v)
        got = getattr(cnp.at(x)[IDX], method)(v)
        np.testing.assert_array_equal(got, want, err_msg=method)
    np.testing.assert_array_equal(cnp.at(x)[1:3].set(7.0), [0.5, 7.0, 7.0, 0.25, 3.0])
    np.testing.assert_array_equal(cnp.at(x)[x > 1].add(1.0), [0.5, -1.0, 3.0, 0.25, 4.0])
    np.testing.assert_array_equal(x, before)


def test_repeated_indices_accumulate_for_add():
    x = np.zeros(3)
    np.testing.assert_array_equal(at(x)[[0, 0, 0, 2]].add(1.5), [4.5, 0.0, 1.5])
    np.testing.assert_array_equal(at(x)[np.array([1, 1])].add(np.array([2.0, 3.0])), [0, 5, 0])
    np.testing.assert_array_equal(x, np.zeros(3))


def test_dtype_is_kept_and_get_copies():
    x = np.arange(4)
    y = at(x)[1].add(2.7)                       # cast to x's dtype, as JAX does
    assert y.dtype == x.dtype and list(y) == [0, 3, 2, 3]
    part = at(x)[1:3].get()
    part[0] = 100
    assert list(x) == [0, 1, 2, 3]
    assert at([1.0, 2.0])[0].set(5.0).tolist() == [5.0, 2.0]      # array-likes work
    m = np.ones((2, 3))
    np.testing.assert_array_equal(at(m)[:, 1].multiply(np.array([2.0, 3.0])),
                                  [[1, 2, 1], [1, 3, 1]])


def test_codax_numpy_is_numpy_otherwise():
    assert cnp.sin is np.sin and cnp.linalg is np.linalg and cnp.float32 is np.float32
    assert codax.numpy is cnp


# ---- differentiated: functions of (x, v) ----

def f_set(x, v):
    y = cnp.at(x)[IDX].set(v)                   # a repeated index: one write wins
    return np.sum(np.sin(y) * y)


def f_add(x, v):
    y = cnp.at(x)[IDX].add(v)
    return np.sum(np.tanh(y) ** 2 + y * x)


def f_multiply(x, v):
    y = cnp.at(x)[IDX].multiply(v)
    return np.sum(np.sin(y) + y ** 2)


def f_min(x, v):
    y = cnp.at(x)[IDX].min(v * 0.5)
    return np.sum(y ** 3 + y)


def f_max(x, v):
    y = codax.numpy.at(x)[1:4].max(v[:3])
    return np.sum(np.exp(y) * y)


def f_get(x, v):
    y = at(x)[IDX].get()
    return np.sum(y * v) + np.sum(at(x)[1:3].get() ** 2)


def f_2d(x, v):
    m = np.reshape(x[:4], (2, 2))
    m = at(m)[:, 0].add(v[:2])                  # a column
    m = at(m)[np.array([1, 1]), np.array([0, 1])].multiply(v[2:])
    return np.sum(np.sin(m) * m)


def f_chain(x, v):
    y = at(x)[IDX].add(v)
    y = at(y)[y > 0.5].set(0.5)                 # a mask
    y = at(y)[0].max(v[1])
    return np.sum(y * y * x)


def f_inplace(x, v):
    y = x * 1.0                                 # the in-place style still works
    y[1:3] = v[:2]
    y[0] += v[3]
    return np.sum(np.sin(y) * y)


def f_inplace_repeats(x, v):
    y = x * 1.0
    y[np.array([3, 1, -2, 1])] = v              # 1 written twice, 3 too (as -2): the last stays
    return np.sum(np.sin(y) * y)


def f_repeats_2d(x, v):
    m = np.reshape(x[:4], (2, 2)) * 1.0
    m[np.array([1, 1]), np.array([0, 0])] = v[:2]
    m = at(m)[:, np.array([1, -1])].set(v[2:])  # v broadcast over the rows, column 1 twice
    return np.sum(np.sin(m) * m) + np.sum(m * x[4])


FUNCTIONS = [f_set, f_add, f_multiply, f_min, f_max, f_get, f_2d, f_chain, f_inplace,
             f_inplace_repeats, f_repeats_2d]


def _args():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.0, 1.0, 5)
    v = rng.uniform(-1.0, 1.0, 4)
    return x, v


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_grad_matches_finite_differences(f):
    x, v = _args()
    before = (x.copy(), v.copy())
    got = codax.grad(f, argnums=(0, 1))(x, v)
    assert_tree_allclose(got, numeric_grad(f, (x, v), (0, 1)), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(v, before[1])


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_jvp_matches_finite_differences(f):
    x, v = _args()
    dx, dv = np.random.default_rng(4).standard_normal(5), np.linspace(-1.0, 1.0, 4)
    out, tangent = codax.jvp(f, (x, v), (dx, dv))
    want = (f(x + E * dx, v + E * dv) - f(x - E * dx, v - E * dv)) / (2 * E)
    assert np.isclose(out, f(x, v)) and np.isclose(tangent, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('argnum', [0, 1])
def test_hessian_matches_differences_of_grad(f, argnum):
    args = _args()
    hess = codax.hessian(f, argnums=argnum)(*args)
    grad = codax.grad(f, argnums=argnum)
    n = args[argnum].size
    want = np.empty((n, n))
    for j in range(n):
        step = np.eye(n)[j] * E
        plus, minus = list(args), list(args)
        plus[argnum], minus[argnum] = args[argnum] + step, args[argnum] - step
        want[:, j] = (grad(*plus) - grad(*minus)) / (2 * E)
    np.testing.assert_allclose(hess, want, rtol=1e-4, atol=1e-6)


def hvp(x, v, w):
    return np.sum(codax.grad(f_multiply, argnums=1)(x, v) * w)


def test_reverse_over_reverse_through_multiply():
    """grad(grad): the rule of .multiply() differentiated again (zero updates too)."""
    x, v = _args()
    w = np.array([0.3, -0.5, 0.2, 0.7])
    g = codax.grad(f_multiply, argnums=1)
    for point in (v, np.array([0.0, 0.4, 0.0, -0.8])):       # two zeros at element 2
        got = codax.grad(hvp, argnums=1)(x, point, w)
        want = (g(x, point + E * w) - g(x, point - E * w)) / (2 * E)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_generated_code_calls_the_update_primitives():
    x, v = _args()
    source = codax.grad(f_chain, argnums=(0, 1)).source(x, v)
    for call in ('rt.at_add(x, ', 'rt.at_set(y, ', 'rt.at_max(y, '):
        assert call in source


# ---- repeated writes: of writes to one element, the last one stays ----
#
# `y[idx] = v` and at(x)[idx].set(v) keep, of writes repeated at one element,
# the last in the C order of y[idx] (NumPy itself writes in the memory order of
# the index and promises none); the overwritten ones get no derivative. .add()
# accumulates every repeat, as np.add.at, so each gets its element's cotangent.

def _written_in_order(y, idx, v):
    """y[idx] = v as one scalar write after another, in the C order of y[idx]:
    the reference for which write stays (independent of codax's vectorized one)."""
    out = y.copy()
    coords = [np.indices(y.shape)[axis][idx] for axis in range(y.ndim)]
    values = np.broadcast_to(v, coords[0].shape)
    for m in np.ndindex(coords[0].shape):
        out[tuple(c[m] for c in coords)] = values[m]
    return out


# (x's shape, index): repeats, negative indices naming an element again, index
# arrays broadcast together or mixed with slices; masks and slices never repeat
INDEXES = [
    ((6,), np.array([1, 4, 1, 1, -2])),                            # -2 is 4
    ((6,), [0, 5, -1]),
    ((6,), np.array([[2, 3], [3, 2]])),
    ((3, 4), (np.array([0, 2, 0]), slice(None))),
    ((3, 4), (slice(1, 3), np.array([1, -3, 1]))),
    ((3, 4), (np.array([[1], [-2]]), np.array([0, 3, 0]))),
    ((3, 4), (Ellipsis, np.array([2, 2]))),
    ((2, 3, 4), (np.array([1, 1]), slice(None), np.array([3, -1]))),   # selection axes moved first
    ((6,), np.array([True, False, True, True, False, False])),
    ((3, 4), (slice(None, None, -1), 2)),
]
INDEX_IDS = [f'{len(shape)}d-{k}' for k, (shape, _) in enumerate(INDEXES)]


def _point(shape, idx, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, shape)
    return x, rng.uniform(-1.0, 1.0, x[idx].shape)


@pytest.mark.parametrize('shape, idx', INDEXES, ids=INDEX_IDS)
def test_the_last_of_repeated_writes_stays(shape, idx):
    x, v = _point(shape, idx)
    before = x.copy()
    for value in (v, v[..., -1:], 0.5):                         # broadcast values too
        want = _written_in_order(x, idx, value)
        np.testing.assert_array_equal(runtime.setitem(x, idx, value), want)
        np.testing.assert_array_equal(at(x)[idx].set(value), want)
        numpy_own = x.copy()
        numpy_own[idx] = value                                  # C-ordered index: NumPy agrees
        np.testing.assert_array_equal(numpy_own, want)
    np.testing.assert_array_equal(x, before)


def test_an_index_in_fortran_order_still_writes_in_c_order():
    # index and values both in Fortran order: NumPy's own write keeps 2.0 at 1
    x, v = np.zeros(3), np.asfortranarray(np.arange(1.0, 5.0).reshape(2, 2))
    idx = np.asfortranarray(np.array([[0, 1], [1, 0]]))
    want = _written_in_order(x, idx, v)
    np.testing.assert_array_equal(want, [4.0, 3.0, 0.0])
    np.testing.assert_array_equal(runtime.setitem(x, idx, v), want)
    np.testing.assert_array_equal(at(x)[idx].set(v), want)


def upd_setitem(x, v, idx):
    y = x * 1.0
    y[idx] = v
    return np.sum(np.sin(y) * y)


def upd_set(x, v, idx):
    y = at(x)[idx].set(v)
    return np.sum(np.sin(y) * y)


def upd_add(x, v, idx):
    y = at(x)[idx].add(v)
    return np.sum(np.sin(y) * y)


def upd_multiply(x, v, idx):
    y = at(x)[idx].multiply(v)
    return np.sum(np.sin(y) * y)


def upd_min(x, v, idx):
    y = at(x)[idx].min(v)
    return np.sum(np.sin(y) * y)


def upd_max(x, v, idx):
    y = at(x)[idx].max(v)
    return np.sum(np.sin(y) * y)


UPDATES = [upd_setitem, upd_set, upd_add, upd_multiply, upd_min, upd_max]


@pytest.mark.parametrize('f', UPDATES, ids=lambda f: f.__name__)
@pytest.mark.parametrize('shape, idx', INDEXES, ids=INDEX_IDS)
def test_repeated_writes_grad_and_jvp_match_finite_differences(f, shape, idx):
    x, v = _point(shape, idx)
    got = codax.grad(f, argnums=(0, 1))(x, v, idx)
    want = numeric_grad(lambda a, b: f(a, b, idx), (x, v), (0, 1))
    assert_tree_allclose(got, want, rtol=RTOL, atol=ATOL)
    dx, dv = _point(shape, idx, seed=6)
    _, tangent = codax.jvp(f, (x, v, idx), (dx, dv, None))
    step = (f(x + E * dx, v + E * dv, idx) - f(x - E * dx, v - E * dv, idx)) / (2 * E)
    assert np.isclose(tangent, step, rtol=RTOL, atol=ATOL)


def upd_setitem_linear(x, v, idx, w):
    y = x * 1.0
    y[idx] = v
    return np.sum(w * y)


def upd_set_linear(x, v, idx, w):
    return np.sum(w * at(x)[idx].set(v))


def upd_add_linear(x, v, idx, w):
    return np.sum(w * at(x)[idx].add(v))


def test_repeated_writes_cotangents_by_hand():
    """d/dv of sum(w * y) for y = x with y[idx] = v: w at the written element
    for the write that stayed, 0 for an overwritten one; .add gives every one."""
    x, w = np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0])
    idx = np.array([1, 3, 1, -1, 2])                             # 1 twice, 3 twice
    v = np.zeros(5)
    want = np.array([0.0, 0.0, 2.0, 4.0, 3.0])
    for f in (upd_setitem_linear, upd_set_linear):
        np.testing.assert_array_equal(codax.grad(f, argnums=1)(x, v, idx, w), want)
    np.testing.assert_array_equal(codax.grad(upd_add_linear, argnums=1)(x, v, idx, w),
                                  [2.0, 4.0, 2.0, 4.0, 3.0])


def hvp_setitem(x, v, w):
    return np.sum(codax.grad(f_inplace_repeats, argnums=1)(x, v) * w)


def test_reverse_over_reverse_through_repeated_writes():
    x, v = _args()
    w = np.array([0.3, -0.5, 0.2, 0.7])
    g = codax.grad(f_inplace_repeats, argnums=1)
    got = codax.grad(hvp_setitem, argnums=1)(x, v, w)
    want = (g(x, v + E * w) - g(x, v - E * w)) / (2 * E)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert got[0] == 0.0 and got[1] == 0.0                      # v[0], v[1] are overwritten


# ---- vmap of repeated writes: every example its own index ----

def write_rows(x, v, idx):
    y = x * 1.0
    y[idx] = v
    return y


def write_columns(x, v, idx):
    y = x * 1.0
    y[:, idx] = v
    return np.sum(np.sin(y) * y)


def write_rows_loss(x, v, idx):
    y = x * 1.0
    y[idx, :] = v
    return np.sum(np.sin(y) * y)


def _batched_indices():
    # examples repeat different elements, one through a negative index
    return np.array([[1, 1, 3], [0, 2, -4], [3, 2, 3]])


@pytest.mark.parametrize('in_axes', [(0, 0, 0), (None, 0, 0), (None, None, 0), (0, 0, None)])
def test_vmap_of_repeated_writes_matches_a_loop(in_axes):
    rng = np.random.default_rng(7)
    batched = (rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (3, 3)), _batched_indices())
    args = [a if axis is not None else a[0] for a, axis in zip(batched, in_axes)]
    got = codax.vmap(write_rows, in_axes=in_axes)(*args)
    for k in range(3):
        x, v, idx = (a[k] if axis is not None else a for a, axis in zip(args, in_axes))
        np.testing.assert_array_equal(got[k], _written_in_order(x, idx, v))


@pytest.mark.parametrize('f, vshape', [(write_columns, (4, 3)), (write_rows_loss, (3, 4))],
                         ids=['columns', 'rows'])
def test_vmap_of_grad_of_repeated_writes_beside_a_slice(f, vshape):
    rng = np.random.default_rng(10)
    x, vs, idxs = rng.uniform(-1, 1, (4, 4)), rng.uniform(-1, 1, (3,) + vshape), _batched_indices()
    got = codax.vmap(codax.grad(f, argnums=(0, 1)), in_axes=(None, 0, 0))(x, vs, idxs)
    for k in range(3):
        want = numeric_grad(lambda a, b: f(a, b, idxs[k]), (x, vs[k]), (0, 1))
        assert_tree_allclose((got[0][k], got[1][k]), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('f', UPDATES, ids=lambda f: f.__name__)
def test_vmap_of_grad_through_repeated_writes(f):
    x, idxs = np.linspace(0.1, 0.9, 4), _batched_indices()
    vs = np.random.default_rng(8).uniform(-1, 1, (3, 3))
    vg = codax.vmap(codax.grad(f, argnums=(0, 1)), in_axes=(None, 0, 0))
    if f is upd_setitem:                        # the at(x) updates still run per example
        source = vg.source(x, vs, idxs)
        assert 'rt.batch_loop' not in source and 'rt.written_part(' in source
    got = vg(x, vs, idxs)
    for k in range(3):
        want = numeric_grad(lambda a, b: f(a, b, idxs[k]), (x, vs[k]), (0, 1))
        assert_tree_allclose((got[0][k], got[1][k]), want, rtol=RTOL, atol=ATOL)


def test_jvp_of_vmap_through_repeated_writes():
    x, idxs = np.linspace(0.1, 0.9, 4), _batched_indices()
    vs, dvs = np.random.default_rng(9).uniform(-1, 1, (2, 3, 3))

    def total(v):
        return np.sum(codax.vmap(upd_setitem, in_axes=(None, 0, 0))(x, v, idxs))

    _, tangent = codax.jvp(total, (vs,), (dvs,))
    step = (total(vs + E * dvs) - total(vs - E * dvs)) / (2 * E)
    assert np.isclose(tangent, step, rtol=RTOL, atol=ATOL)


@pytest.mark.gpu
def test_repeated_writes_on_cupy_match_numpy():
    cupy = pytest.importorskip('cupy')
    try:
        cupy.zeros(1)
    except Exception:
        pytest.skip('no usable CUDA GPU')
    for shape, idx in INDEXES:
        x, v = _point(shape, idx)
        gidx = tuple(cupy.asarray(p) if isinstance(p, (np.ndarray, list)) else p
                     for p in (idx if isinstance(idx, tuple) else (idx,)))
        gidx = gidx if isinstance(idx, tuple) else gidx[0]
        want = _written_in_order(x, idx, v)
        np.testing.assert_array_equal(runtime.setitem(cupy.asarray(x), gidx, cupy.asarray(v)).get(),
                                      want)
        np.testing.assert_array_equal(at(cupy.asarray(x))[gidx].set(cupy.asarray(v)).get(), want)
        g = np.random.default_rng(1).standard_normal(shape)
        np.testing.assert_array_equal(runtime.written_part(cupy.asarray(g), gidx).get(),
                                      runtime.written_part(g, idx))
    shape, idx = INDEXES[0]
    x, v = _point(shape, idx)
    for f in (upd_setitem, upd_set):
        got = codax.grad(f, argnums=(0, 1))(cupy.asarray(x), cupy.asarray(v), cupy.asarray(idx))
        want = codax.grad(f, argnums=(0, 1))(x, v, idx)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.get(), b, rtol=1e-12)


# ---- refused uses point at the user's line ----

def at_without_method(x):
    return np.sum(at(x)[1])


def at_unknown_method(x):
    return np.sum(at(x)[1].subtract(2.0))


def at_two_updates(x):
    return np.sum(cnp.at(x)[1].add(2.0, 3.0))


def at_stored(x):
    helper = at(x)
    return np.sum(helper[1].set(0.0))


@pytest.mark.parametrize('f, message', [
    (at_without_method, r'codax supports codax.numpy.at only as at\(x\)\[idx\]\.set\(v\)'),
    (at_unknown_method, r'has no method \.subtract\(\)'),
    (at_two_updates, r'\.add\(\) of codax.numpy.at\(x\)\[idx\] takes one argument'),
    (at_stored, 'all in one expression'),
])
def test_unsupported_use_is_a_source_error(f, message):
    with pytest.raises(codax.SourceError, match=message) as info:
        codax.grad(f)(np.ones(3))
    line = f.__code__.co_firstlineno + 1
    assert f'{THIS_FILE}:{line}' in str(info.value) and '^' in str(info.value)


# ---- JAX's .divide, .power, .apply and mode=, in plain Python ----

X5 = np.array([0.5, -1.0, 2.0, 0.25, 3.0])
V4 = np.array([1.5, 4.0, -2.0, 0.5])


def test_divide_power_and_apply_match_numpys_ufunc_at():
    for method, ufunc in (('divide', np.divide), ('power', np.power)):
        want = X5.copy()
        ufunc.at(want, IDX, V4)                  # element 2 twice: applied twice
        np.testing.assert_allclose(getattr(at(X5)[IDX], method)(V4), want, rtol=1e-15)
    want = X5.copy()
    np.sin.at(want, IDX)
    np.testing.assert_array_equal(at(X5)[IDX].apply(np.sin), want)
    # a Python function: applied once per index, element-wise
    want = X5.copy()
    for i in IDX:
        want[i] = want[i] * 2.0 + 1.0
    np.testing.assert_array_equal(at(X5)[IDX].apply(lambda z: z * 2.0 + 1.0), want)
    m = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(at(m)[:, np.array([2, 0, 2])].apply(np.sqrt),
                                  [[0.0, 1.0, np.sqrt(np.sqrt(2.0))],
                                   [np.sqrt(3.0), 4.0, np.sqrt(np.sqrt(5.0))]])
    np.testing.assert_array_equal(X5, [0.5, -1.0, 2.0, 0.25, 3.0])       # x left alone


def test_divide_power_apply_keep_the_dtype():
    n = np.arange(5)
    y = at(n)[1:3].power(2.5)                   # the exponent cast to int, as JAX does
    assert y.dtype == n.dtype and y.tolist() == [0, 1, 4, 3, 4]
    y = at(n)[IDX].apply(lambda z: z * 1.5)
    assert y.dtype == n.dtype and y.tolist() == [0, 1, 4, 3, 6]    # 2 -> 3 -> 4 (4.5 cast)
    with pytest.raises(TypeError, match='divide.*floating-point x'):
        at(n)[1].divide(2)
    with pytest.raises(TypeError, match='takes a function'):
        at(X5)[1].apply(2.0)


def _loop_update(x, idx, v, op, mode):
    """x updated one index at a time, the reference for mode= on a vector:
    negative indices count from the end, then 'clip' clamps an index outside
    and 'drop' skips it."""
    out = x.copy()
    for i, u in zip(idx, np.broadcast_to(v, np.shape(idx))):
        i = i + len(x) if i < 0 else i
        if mode == 'clip':
            i = min(max(i, 0), len(x) - 1)
        elif not 0 <= i < len(x):
            continue
        out[i] = op(out[i], u)
    return out


OUTSIDE = np.array([0, 7, -1, 2, -9, 2])       # 7 and -9 are outside 5 elements
OPS = {'set': lambda a, b: b, 'add': np.add, 'multiply': np.multiply, 'divide': np.divide,
       'power': np.power, 'min': np.minimum, 'max': np.maximum}


@pytest.mark.parametrize('mode', ['clip', 'drop', 'fill'])
@pytest.mark.parametrize('method', sorted(OPS))
def test_mode_for_indices_out_of_bounds_matches_a_loop(method, mode):
    x, v = np.abs(X5) + 0.5, np.linspace(0.5, 2.0, 6)
    want = _loop_update(x, OUTSIDE, v, OPS[method], 'drop' if mode == 'fill' else mode)
    got = getattr(at(x)[OUTSIDE], method)(v, mode=mode, indices_are_sorted=False,
                                           unique_indices=False)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    want = _loop_update(x, OUTSIDE, None, lambda a, _: np.exp(a), mode)
    np.testing.assert_allclose(at(x)[OUTSIDE].apply(np.exp, mode=mode), want, rtol=1e-15)


def test_get_with_mode_fills_or_clips():
    x = X5
    np.testing.assert_array_equal(at(x)[OUTSIDE].get(mode='fill', fill_value=-7.0),
                                  [0.5, -7.0, 3.0, 2.0, -7.0, 2.0])
    np.testing.assert_array_equal(at(x)[OUTSIDE].get(mode='clip'), x[[0, 4, 4, 2, 0, 2]])
    assert np.isnan(at(x)[OUTSIDE].get(mode='drop')[[1, 4]]).all()       # JAX's default fill
    n = np.arange(5)
    assert at(n)[9].get(mode='fill') == np.iinfo(n.dtype).min
    assert at(n.astype(np.uint8))[9].get(mode='fill') == 255
    assert at(n)[2].get(mode='fill', fill_value=-1) == 2
    m = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(at(m)[np.array([0, 3]), 1:3].get(mode='fill', fill_value=-1.0),
                                  [[1.0, 2.0], [-1.0, -1.0]])
    np.testing.assert_array_equal(at(m)[..., 9].get(mode='fill', fill_value=0.0), np.zeros(3))
    np.testing.assert_array_equal(at(m)[-5, None, np.array([1, 5])].get(mode='clip'),
                                  m[0, None, [1, 3]])


def test_mode_on_a_matrix_matches_numpy_on_the_indices_kept():
    m = np.arange(12.0).reshape(3, 4)
    rows, v = np.array([2, 5, 0, -4, 2]), np.arange(20.0).reshape(5, 4)
    kept = (rows >= -3) & (rows < 3)
    want = m.copy()
    np.add.at(want, rows[kept], v[kept])
    np.testing.assert_array_equal(at(m)[rows].add(v, mode='drop'), want)
    want = m.copy()
    np.add.at(want, (slice(None), np.clip(np.array([1, 6]), 0, 3)), 1.0)
    np.testing.assert_array_equal(at(m)[:, np.array([1, 6])].add(1.0, mode='clip'), want)
    want = m.copy()
    want[1, 3] = -1.0                                          # row 4 and column 9 dropped
    np.testing.assert_array_equal(
        at(m)[np.array([1, 4, 1]), np.array([3, 0, 9])].set(-1.0, mode='drop'), want)


def test_by_default_an_index_out_of_bounds_is_numpys_index_error():
    """codax follows NumPy here; JAX would clamp .get() and drop updates."""
    for mode in (None, 'promise_in_bounds'):
        with pytest.raises(IndexError):
            at(X5)[np.array([1, 5])].get(mode=mode)
        with pytest.raises(IndexError):
            at(X5)[5].set(0.0, mode=mode)
    with pytest.raises(ValueError, match="mode must be one of.*'clip'.*got 'Drop'"):
        at(X5)[1].set(0.0, mode='Drop')


# ---- inside transformed functions ----

BOUNDS = np.array([0, 7, 2, 2, -9])              # 7 and -9 are outside 5 elements


def m_divide(x, v):
    y = at(x)[IDX].divide(v)
    return np.sum(np.sin(y) * y)


def m_power(x, v):
    y = at(x * x + 0.5)[IDX].power(v)             # a positive base
    return np.sum(np.sin(y) * y)


def m_apply_ufunc(x, v):
    y = at(x * v[0])[IDX].apply(np.sin)
    return np.sum(y * x)


def m_apply_closure(x, v):
    y = at(x)[IDX].apply(lambda z: z * v[1] + np.cos(z))
    return np.sum(y ** 2)


def m_add_drop(x, v):
    y = at(x)[BOUNDS[:4]].add(v, mode='drop')
    return np.sum(np.sin(y) * y)


def m_set_clip(x, v):
    y = at(x)[BOUNDS[1:]].set(v, mode='clip', unique_indices=False)
    return np.sum(np.sin(y) * y)


def m_multiply_fill(x, v):
    y = at(x)[BOUNDS[:4]].multiply(v, mode='fill', indices_are_sorted=False)
    return np.sum(np.cos(y) + y)


def m_divide_clip(x, v):
    y = at(x)[BOUNDS[1:]].divide(v + 2.0, mode='clip')
    return np.sum(np.sin(y) * y)


def m_power_drop(x, v):
    y = at(x * x + 0.5)[BOUNDS[:4]].power(v, mode='drop')
    return np.sum(np.sin(y) * y)


def m_max_drop(x, v):
    y = at(x)[BOUNDS[:4]].max(v, mode='drop')
    return np.sum(y ** 3)


def m_apply_drop(x, v):
    y = at(x)[BOUNDS[:4]].apply(np.exp, mode='drop')
    return np.sum(y * v[0])


def m_get_fill(x, v):
    return np.sum(at(x)[BOUNDS[:4]].get(mode='fill', fill_value=1.5) * v)


def m_get_clip(x, v):
    return np.sum(np.sin(at(x)[BOUNDS[1:]].get(mode='clip')) * v)


# the records called directly, as the compiled at(...) spelling calls them
def d_divide_drop(x, v):
    y = runtime.at_divide(x, BOUNDS[:4], v, mode='drop')
    return np.sum(np.sin(y) * y)


def d_power_clip(x, v):
    y = runtime.at_power(x * x + 0.5, BOUNDS[1:], v, mode='clip')
    return np.sum(np.sin(y) * y)


def d_apply_closure(x, v):
    y = runtime.at_apply(x, IDX, lambda z: z * v[1] + np.cos(z))
    return np.sum(y ** 2)


def d_apply_drop(x, v):
    y = runtime.at_apply(x, BOUNDS[:4], np.tanh, 'drop')      # (by position: see at_apply)
    return np.sum(y * v[0])


def d_get_fill(x, v):
    return np.sum(runtime.at_get(x, BOUNDS[:4], 'fill', 1.5) * v)


COMPILED = [m_divide, m_power, m_apply_ufunc, m_apply_closure, m_add_drop, m_set_clip,
            m_multiply_fill, m_divide_clip, m_power_drop, m_max_drop, m_apply_drop, m_get_fill,
            m_get_clip]
DIRECT = [d_divide_drop, d_power_clip, d_apply_closure, d_apply_drop, d_get_fill]
JAX_METHODS = [pytest.param(f, id=f.__name__) for f in COMPILED + DIRECT]


@pytest.mark.parametrize('f', JAX_METHODS)
def test_jax_methods_grad_and_jvp_match_finite_differences(f):
    x, v = _args()
    got = codax.grad(f, argnums=(0, 1))(x, v)
    assert_tree_allclose(got, numeric_grad(f, (x, v), (0, 1)), rtol=RTOL, atol=ATOL)
    dx, dv = np.random.default_rng(4).standard_normal(5), np.linspace(-1.0, 1.0, 4)
    out, tangent = codax.jvp(f, (x, v), (dx, dv))
    want = (f(x + E * dx, v + E * dv) - f(x - E * dx, v - E * dv)) / (2 * E)
    assert np.isclose(out, f(x, v)) and np.isclose(tangent, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('f', JAX_METHODS)
def test_jax_methods_second_derivative(f):
    x, v = _args()
    hess = codax.hessian(f)(x, v)
    grad = codax.grad(f)
    want = np.stack([(grad(x + E * e, v) - grad(x - E * e, v)) / (2 * E) for e in np.eye(5)], 1)
    np.testing.assert_allclose(hess, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('f', JAX_METHODS)
def test_jax_methods_under_vmap_match_a_loop(f):
    xs = np.random.default_rng(11).uniform(-1.0, 1.0, (3, 5))
    x, v = _args()
    vs = np.random.default_rng(12).uniform(0.5, 1.5, (3, 4))
    np.testing.assert_allclose(codax.vmap(f, in_axes=(0, None))(xs, v), [f(e, v) for e in xs],
                               rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(f, in_axes=(None, 0))(x, vs), [f(x, e) for e in vs],
                               rtol=1e-12)
    per_example = codax.vmap(codax.grad(f, argnums=(0, 1)), in_axes=(0, None))(xs, v)
    for k, example in enumerate(xs):
        want = codax.grad(f, argnums=(0, 1))(example, v)
        assert_tree_allclose((per_example[0][k], per_example[1][k]), want, rtol=1e-10,
                             atol=1e-12)


@pytest.mark.parametrize('f', JAX_METHODS)
def test_jax_methods_under_jit(f):
    x, v = _args()
    assert np.isclose(codax.jit(f)(x, v), f(x, v), rtol=1e-12)
    assert_tree_allclose(codax.jit(codax.grad(f, argnums=(0, 1)))(x, v),
                         codax.grad(f, argnums=(0, 1))(x, v), rtol=1e-12, atol=1e-14)
