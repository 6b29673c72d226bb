"""codax.numpy.at(x)[idx].set/add/multiply/min/max/get: JAX's functional
updates, in plain Python and inside grad, jvp and second derivatives.

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
    return np.sum(at(x)[1].divide(2.0))


def at_keyword(x):
    return np.sum(cnp.at(x)[1].add(2.0, mode='drop'))


def at_stored(x):
    helper = at(x)
    return np.sum(helper[1].set(0.0))


@pytest.mark.parametrize('f, message', [
    (at_without_method, r'codax supports codax.numpy.at only as at\(x\)\[idx\]\.set\(v\)'),
    (at_unknown_method, r'has no method \.divide\(\)'),
    (at_keyword, r'\.add\(\) of codax.numpy.at\(x\)\[idx\] takes one argument'),
    (at_stored, 'all in one expression'),
])
def test_unsupported_use_is_a_source_error(f, message):
    with pytest.raises(codax.SourceError, match=message) as info:
        codax.grad(f)(np.ones(3))
    line = f.__code__.co_firstlineno + 1
    assert f'{THIS_FILE}:{line}' in str(info.value) and '^' in str(info.value)
