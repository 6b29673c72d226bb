"""Forward mode and higher derivatives over the corpus of plain NumPy functions.

For every entry of tests/corpus.CORPUS, checked against central finite
differences (NumPy only, tests/helpers.py):

* codax.jvp along a random tangent with the structure of the differentiated
  argument(s) (the other arguments get the tangent 0.0, which codax treats as
  "not differentiated"), against differences of the function along that
  direction; and along each differentiated argument alone;
* codax.jacfwd and codax.jacrev (argnums as in the corpus): the corpus
  functions are scalar-valued, so the Jacobian is the gradient, compared with
  helpers.numeric_grad;
* codax.hessian for the entries with one array argument of at most 6
  elements, against differences of codax.grad;
* Hessian-vector products, forward over reverse
  `codax.jvp(codax.grad(f), primals, (v, 0.0, ...))[1]` (every entry) and
  reverse over reverse `codax.grad(g)` with g(x) = <grad(f)(x), v> (entries
  whose differentiated arguments are arrays or floats; g is a closure made by
  the module-level factory `make_vdot_grad`), against differences of
  codax.grad along v.

Higher derivatives are checked for every entry, those calling user functions
included; the entries whose rules are first order only (einsum, solve,
cholesky) must refuse with that precise error, never another or a wrong value.
"""

import ast
import functools
import inspect
import textwrap
import types
import zlib

import numpy as np
import pytest

import codax
from corpus import CORPUS
from helpers import assert_tree_allclose, numeric_grad, tree_leaves, tree_unflatten

RTOL = 1e-5
ATOL = 1e-7
EPS1 = 1e-6          # step for differences of the function
EPS2 = 1e-5          # step for differences of codax.grad

_BY_NAME = {name: (fn, factory, argnums) for name, fn, factory, argnums in CORPUS}
IDS = [entry[0] for entry in CORPUS]

def _as_tuple(argnums):
    return argnums if isinstance(argnums, tuple) else (argnums,)


# --------------------------------------------------------------------------
# Which entries call another user function
# --------------------------------------------------------------------------

def _calls_user_function(fn):
    """True if fn's body calls a plain Python function of the corpus (a helper
    or fn itself), found by name in its closure or globals."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = cells.get(node.func.id, fn.__globals__.get(node.func.id))
            if isinstance(target, types.FunctionType) and target.__module__ == fn.__module__:
                return True
    return False


CALLS_USER_FUNCTION = {name for name, fn, _, _ in CORPUS if _calls_user_function(fn)}


def test_user_function_callers_are_found():
    """The detection above finds the corpus' helper, recursion and kwargs entries."""
    assert {'hl_softplus_sigmoid', 'hl_helper_chain', 'hl_in_loop', 'rec_horner',
            'rec_power_sum', 'ml_logistic_regression', 'eg_kwargs_defaults'} <= CALLS_USER_FUNCTION
    assert not CALLS_USER_FUNCTION & {'ew_trig', 'closure_weighted_sq', 'ml_mlp', 'cf_while'}


# --------------------------------------------------------------------------
# Trees, directions, differences
# --------------------------------------------------------------------------

def _is_float_leaf(leaf):
    return isinstance(leaf, float) or (
        isinstance(leaf, np.ndarray) and np.issubdtype(leaf.dtype, np.floating))


def random_tangent(tree, rng):
    """A random tangent with the structure of `tree` (float leaves only)."""
    leaves = []
    for leaf in tree_leaves(tree):
        assert _is_float_leaf(leaf), f'differentiated leaf of type {type(leaf)} in the corpus'
        if isinstance(leaf, float):
            leaves.append(float(rng.standard_normal()))
        else:
            leaves.append(rng.standard_normal(leaf.shape))
    return tree_unflatten(tree, leaves)


def tree_axpy(alpha, x, y):
    """y + alpha * x leafwise (Python floats stay Python floats)."""
    out = []
    for a, b in zip(tree_leaves(x), tree_leaves(y)):
        out.append(float(b + alpha * a) if isinstance(b, float) else b + alpha * a)
    return tree_unflatten(y, out)


def tree_diff(fp, fm, h):
    """(fp - fm) / (2 h) leafwise."""
    return tree_unflatten(fp, [(np.asarray(p, dtype=np.float64) - np.asarray(m, dtype=np.float64))
                               / (2.0 * h) for p, m in zip(tree_leaves(fp), tree_leaves(fm))])


def shifted(args, nums, directions, step):
    new = list(args)
    for i, v in zip(nums, directions):
        new[i] = tree_axpy(step, v, args[i])
    return tuple(new)


def setup(name, active=None):
    """args, the differentiated argument numbers, one random direction per
    differentiated argument, and the full tangent tuple (0.0 elsewhere)."""
    fn, factory, argnums = _BY_NAME[name]
    args = factory()
    nums = _as_tuple(argnums) if active is None else active
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    directions = [random_tangent(args[i], rng) for i in nums]
    tangents = [0.0] * len(args)
    for i, v in zip(nums, directions):
        tangents[i] = v
    return fn, args, nums, directions, tuple(tangents)


def directional_fd(fn, args, nums, directions, h=EPS1):
    fp = fn(*shifted(args, nums, directions, h))
    fm = fn(*shifted(args, nums, directions, -h))
    return tree_diff(fp, fm, h)


@functools.lru_cache(maxsize=None)
def _reference_grad(name):
    fn, factory, argnums = _BY_NAME[name]
    return numeric_grad(fn, factory(), argnums)


def close_scalar(got, want, what, rtol=RTOL, atol=ATOL):
    assert got is not None, f'{what}: got None'
    assert np.shape(got) == (), f'{what}: shape {np.shape(got)}, expected a scalar'
    np.testing.assert_allclose(float(got), float(want), rtol=rtol, atol=atol, err_msg=what)


# --------------------------------------------------------------------------
# (a) jvp
# --------------------------------------------------------------------------

@pytest.mark.parametrize('name', IDS)
def test_jvp_matches_directional_differences(name):
    fn, args, nums, directions, tangents = setup(name)
    out, tangent_out = codax.jvp(fn, args, tangents)
    close_scalar(out, fn(*args), f'{name}: primal output', rtol=1e-12, atol=1e-12)
    close_scalar(tangent_out, directional_fd(fn, args, nums, directions),
                 f'{name}: jvp vs differences along the tangent')
    assert np.asarray(tangent_out).dtype == np.float64


@pytest.mark.parametrize('name', [n for n in IDS if len(_as_tuple(_BY_NAME[n][2])) > 1])
def test_jvp_one_argument_at_a_time(name):
    """Only one argument differentiated, the others get the tangent 0.0."""
    for i in _as_tuple(_BY_NAME[name][2]):
        fn, args, nums, directions, tangents = setup(name, active=(i,))
        _, tangent_out = codax.jvp(fn, args, tangents)
        close_scalar(tangent_out, directional_fd(fn, args, nums, directions),
                     f'{name}: jvp along argument {i} only')


@pytest.mark.parametrize('name', IDS)
def test_linearize_matches_jvp_differences(name):
    fn, args, nums, directions, tangents = setup(name)
    out, jvp_fun = codax.linearize(fn, *args)
    close_scalar(out, fn(*args), f'{name}: linearize output', rtol=1e-12, atol=1e-12)
    close_scalar(jvp_fun(*tangents), directional_fd(fn, args, nums, directions),
                 f'{name}: linearize jvp_fun vs differences')


# --------------------------------------------------------------------------
# (b) jacfwd / jacrev
# --------------------------------------------------------------------------

@pytest.mark.parametrize('name', IDS)
def test_jacfwd_equals_numeric_gradient(name):
    fn, factory, argnums = _BY_NAME[name]
    got = codax.jacfwd(fn, argnums=argnums)(*factory())
    assert_tree_allclose(got, _reference_grad(name), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('name', IDS)
def test_jacrev_equals_numeric_gradient(name):
    fn, factory, argnums = _BY_NAME[name]
    got = codax.jacrev(fn, argnums=argnums)(*factory())
    assert_tree_allclose(got, _reference_grad(name), rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# (c) hessian
# --------------------------------------------------------------------------

def _small_single_array(name):
    args = _BY_NAME[name][1]()
    return (len(args) == 1 and isinstance(args[0], np.ndarray)
            and np.issubdtype(args[0].dtype, np.floating) and args[0].size <= 6)


HESSIAN_IDS = [n for n in IDS if _small_single_array(n)]


def hessian_by_differences(fn, x):
    g = codax.grad(fn)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = EPS2
        e = e.reshape(x.shape)
        cols.append(((np.asarray(g(x + e)) - np.asarray(g(x - e))) / (2 * EPS2)).reshape(-1))
    return np.stack(cols, axis=1).reshape(x.shape + x.shape)


@pytest.mark.parametrize('name', HESSIAN_IDS)
def test_hessian_matches_differences_of_grad(name):
    fn, factory, _ = _BY_NAME[name]
    (x,) = factory()
    got = codax.hessian(fn)(x)
    want = hessian_by_differences(fn, x)
    assert np.shape(got) == x.shape + x.shape, f'{name}: hessian shape {np.shape(got)}'
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-6, err_msg=f'{name}: hessian')


def test_hessian_subset_is_not_empty():
    assert len(HESSIAN_IDS) >= 40, HESSIAN_IDS


# --------------------------------------------------------------------------
# (d) Hessian-vector products
# --------------------------------------------------------------------------

def hvp_by_differences(fn, args, argnums, nums, directions):
    g = codax.grad(fn, argnums=argnums)
    return tree_diff(g(*shifted(args, nums, directions, EPS2)),
                     g(*shifted(args, nums, directions, -EPS2)), EPS2)


@pytest.mark.parametrize('name', IDS)
def test_hvp_forward_over_reverse(name):
    fn, args, nums, directions, tangents = setup(name)
    argnums = _BY_NAME[name][2]
    grad_value, hv = codax.jvp(codax.grad(fn, argnums=argnums), args, tangents)
    assert_tree_allclose(grad_value, codax.grad(fn, argnums=argnums)(*args), rtol=1e-12, atol=1e-12)
    assert_tree_allclose(hv, hvp_by_differences(fn, args, argnums, nums, directions),
                         rtol=RTOL, atol=1e-6)


def make_vdot_grad(f, argnums, directions, nargs):
    """g(*args) = sum_i <grad_i f(*args), v_i>, for differentiation by codax
    (a closure made here, so its source can be read). An int `argnums` gives
    g = <grad f, v> with `directions` the single v; a tuple loops over the
    tuple of gradients."""
    if isinstance(argnums, int):
        (v,) = directions
        if nargs == 1:
            def g(a):
                return np.sum(codax.grad(f, argnums=argnums)(a) * v)
        elif nargs == 2:
            def g(a, b):
                return np.sum(codax.grad(f, argnums=argnums)(a, b) * v)
        else:
            assert nargs == 3
            def g(a, b, c):  # noqa: E306
                return np.sum(codax.grad(f, argnums=argnums)(a, b, c) * v)
        return g
    if nargs == 2:
        def g(a, b):
            gs = codax.grad(f, argnums=argnums)(a, b)
            total = 0.0
            for gi, vi in zip(gs, directions):
                total = total + np.sum(gi * vi)
            return total
    else:
        assert nargs == 3
        def g(a, b, c):  # noqa: E306
            gs = codax.grad(f, argnums=argnums)(a, b, c)
            total = 0.0
            for gi, vi in zip(gs, directions):
                total = total + np.sum(gi * vi)
            return total
    return g


def _flat_differentiated_args(name):
    fn, factory, argnums = _BY_NAME[name]
    args = factory()
    return all(_is_float_leaf(args[i]) for i in _as_tuple(argnums))


RR_IDS = [n for n in IDS if _flat_differentiated_args(n)]


@pytest.mark.parametrize('name', RR_IDS)
def test_hvp_reverse_over_reverse(name):
    fn, args, nums, directions, tangents = setup(name)
    argnums = _BY_NAME[name][2]
    g = make_vdot_grad(fn, argnums, directions, len(args))
    close_scalar(g(*args), sum(float(np.sum(np.asarray(gi) * vi)) for gi, vi in
                               zip(_as_tuple(codax.grad(fn, argnums=nums)(*args)), directions)),
                 f'{name}: <grad f, v>', rtol=1e-12, atol=1e-12)
    hv = codax.grad(g, argnums=argnums)(*args)
    assert_tree_allclose(hv, hvp_by_differences(fn, args, argnums, nums, directions),
                         rtol=RTOL, atol=1e-6)


def test_reverse_over_reverse_subset_is_not_empty():
    assert len(RR_IDS) >= 100, len(RR_IDS)
