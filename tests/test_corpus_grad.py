"""codax.grad / value_and_grad / vjp over the corpus of plain NumPy functions,
checked against central finite differences (tests/helpers.py, NumPy only)."""

import copy
import functools

import numpy as np
import pytest

import codax
from corpus import CORPUS
from helpers import (assert_tree_allclose, assert_tree_equal, numeric_grad,
                     tree_exactly_equal, tree_leaves, tree_unflatten)

RTOL = 1e-5
ATOL = 1e-7

_BY_NAME = {name: (fn, factory, argnums) for name, fn, factory, argnums in CORPUS}
IDS = [entry[0] for entry in CORPUS]


def _as_tuple(argnums):
    return argnums if isinstance(argnums, tuple) else (argnums,)


def _is_float_tree(tree):
    leaves = tree_leaves(tree)
    return bool(leaves) and all(
        isinstance(l, float) or (isinstance(l, np.ndarray) and np.issubdtype(l.dtype, np.floating))
        for l in leaves)


def _scaled(tree, factor):
    """Same structure, float leaves multiplied by ``factor`` (ints untouched)."""
    leaves = []
    for l in tree_leaves(tree):
        if isinstance(l, float):
            leaves.append(l * factor)
        elif isinstance(l, np.ndarray) and np.issubdtype(l.dtype, np.floating):
            leaves.append(l * factor)
        else:
            leaves.append(l)
    return tree_unflatten(tree, leaves)


@functools.lru_cache(maxsize=None)
def _reference(name, argnum, scale=1.0):
    """Finite-difference gradient of corpus entry ``name`` w.r.t. one argument."""
    fn, factory, _ = _BY_NAME[name]
    args = _scaled(factory(), scale)
    return numeric_grad(fn, args, argnum)


def _expected(name, argnums, scale=1.0):
    if isinstance(argnums, tuple):
        return tuple(_reference(name, a, scale) for a in argnums)
    return _reference(name, argnums, scale)


def _assert_float64_leaves(tree):
    for leaf in tree_leaves(tree):
        assert np.asarray(leaf).dtype == np.float64, (
            "gradient leaf has dtype %s, expected float64" % np.asarray(leaf).dtype)


@pytest.mark.parametrize("name", IDS)
def test_grad_matches_finite_differences(name):
    fn, factory, argnums = _BY_NAME[name]
    args = factory()
    got = codax.grad(fn, argnums=argnums)(*args)
    assert_tree_allclose(got, _expected(name, argnums), rtol=RTOL, atol=ATOL)
    _assert_float64_leaves(got)


@pytest.mark.parametrize("name", IDS)
def test_value_and_grad(name):
    fn, factory, argnums = _BY_NAME[name]
    args = factory()
    value, got = codax.value_and_grad(fn, argnums=argnums)(*args)
    want_value = fn(*factory())
    assert np.shape(value) == ()
    np.testing.assert_allclose(float(value), float(want_value), rtol=1e-10, atol=1e-12)
    assert_tree_allclose(got, _expected(name, argnums), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", IDS)
def test_vjp(name):
    fn, factory, argnums = _BY_NAME[name]
    args = factory()
    out, vjp_fun = codax.vjp(fn, *args)
    np.testing.assert_allclose(float(out), float(fn(*factory())), rtol=1e-10, atol=1e-12)
    cts = vjp_fun(1.0)
    assert isinstance(cts, tuple), "vjp_fun must return a tuple, got %r" % type(cts)
    assert len(cts) == len(args)
    # Every float-valued primal gets a cotangent equal to the gradient.
    for i, arg in enumerate(args):
        if _is_float_tree(arg):
            assert_tree_allclose(cts[i], _reference(name, i), rtol=RTOL, atol=ATOL)
    # The differentiated ones at least, whatever their type.
    for i in _as_tuple(argnums):
        assert_tree_allclose(cts[i], _reference(name, i), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", IDS)
def test_inputs_not_modified(name):
    fn, factory, argnums = _BY_NAME[name]
    args = factory()
    before = copy.deepcopy(args)
    codax.grad(fn, argnums=argnums)(*args)
    assert tree_exactly_equal(args, before), "codax.grad modified its inputs"
    codax.value_and_grad(fn, argnums=argnums)(*args)
    assert tree_exactly_equal(args, before), "codax.value_and_grad modified its inputs"
    _, vjp_fun = codax.vjp(fn, *args)
    vjp_fun(1.0)
    assert tree_exactly_equal(args, before), "codax.vjp modified its inputs"
    # and the untransformed function still gives the original value
    np.testing.assert_allclose(fn(*args), fn(*before), rtol=0, atol=0)


@pytest.mark.parametrize("name", IDS)
def test_repeated_calls(name):
    fn, factory, argnums = _BY_NAME[name]
    g = codax.grad(fn, argnums=argnums)
    first = g(*factory())
    second = g(*factory())
    assert_tree_equal(first, second)
    # a fresh transform of the same function (cache path)
    third = codax.grad(fn, argnums=argnums)(*factory())
    assert_tree_equal(first, third)
    assert_tree_allclose(third, _expected(name, argnums), rtol=RTOL, atol=ATOL)
    # new input values through the cached transform must not give stale results
    moved = g(*_scaled(factory(), 1.01))
    assert_tree_allclose(moved, _expected(name, argnums, 1.01), rtol=RTOL, atol=ATOL)
