"""Test helpers: finite-difference gradients and pytree comparison.

``numeric_grad`` and ``assert_tree_allclose`` use NumPy only, so they are an
independent reference for codax. ``check_grad`` glues codax to them.
"""

import copy

import numpy as np


# --------------------------------------------------------------------------
# Minimal pytrees: dict / list / tuple containers, everything else is a leaf.
# --------------------------------------------------------------------------

def is_container(x):
    return isinstance(x, (dict, list, tuple))


def tree_leaves(tree):
    """Leaves in a deterministic order (dict keys in insertion order)."""
    if isinstance(tree, dict):
        out = []
        for k in tree:
            out.extend(tree_leaves(tree[k]))
        return out
    if isinstance(tree, (list, tuple)):
        out = []
        for v in tree:
            out.extend(tree_leaves(v))
        return out
    return [tree]


def tree_unflatten(template, leaves):
    """Rebuild ``template``'s structure from ``leaves`` (same order as tree_leaves)."""
    it = iter(leaves)

    def build(t):
        if isinstance(t, dict):
            return {k: build(t[k]) for k in t}
        if isinstance(t, list):
            return [build(v) for v in t]
        if isinstance(t, tuple):
            return tuple(build(v) for v in t)
        return next(it)

    out = build(template)
    rest = list(it)
    assert not rest, "too many leaves for template"
    return out


def tree_copy(tree):
    return copy.deepcopy(tree)


# --------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------

def _as_float(value):
    v = np.asarray(value)
    if v.shape != ():
        raise TypeError("function must return a scalar, got shape %s" % (v.shape,))
    return float(v)


def _numeric_grad_one(f, args, argnum, eps):
    args = list(args)
    target = args[argnum]
    leaves = tree_leaves(target)
    grads = []
    for li, leaf in enumerate(leaves):
        is_py_scalar = isinstance(leaf, (float, int)) and not isinstance(leaf, bool)
        base = np.array(leaf, dtype=np.float64)
        g = np.zeros_like(base)
        flat_g = g.reshape(-1)
        for j in range(base.size):
            vals = []
            for sign in (1.0, -1.0):
                pert = base.copy()
                pert.reshape(-1)[j] += sign * eps
                new_leaf = float(pert) if is_py_scalar else pert
                new_leaves = list(leaves)
                new_leaves[li] = new_leaf
                new_args = list(args)
                new_args[argnum] = tree_unflatten(target, new_leaves)
                vals.append(_as_float(f(*new_args)))
            flat_g[j] = (vals[0] - vals[1]) / (2.0 * eps)
        grads.append(float(g) if is_py_scalar else g)
    return tree_unflatten(target, grads)


def numeric_jacobian(f, x, eps=1e-6):
    """Central differences of f (scalar or array valued) per element of the
    array x: shaped f(x).shape + x.shape."""
    x = np.asarray(x, float)
    cols = []
    for e in np.eye(x.size):
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + eps * e)) - np.asarray(f(x - eps * e))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


def numeric_grad(f, args, argnum=0, eps=1e-6):
    """Central finite-difference gradient of scalar ``f(*args)``.

    ``argnum`` may be an int or a tuple of ints (then a tuple is returned).
    Each argument may be an array, a Python float or a pytree of those; the
    result has the same structure as the argument. Python-float leaves give
    Python floats, array leaves give float64 arrays of the same shape.
    """
    args = tuple(args)
    if isinstance(argnum, (tuple, list)):
        return tuple(_numeric_grad_one(f, args, a, eps) for a in argnum)
    return _numeric_grad_one(f, args, argnum, eps)


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def _compare(a, b, rtol, atol, path):
    if isinstance(b, dict) or isinstance(a, dict):
        assert isinstance(a, dict) and isinstance(b, dict), (
            "%s: structure mismatch %s vs %s" % (path, type(a).__name__, type(b).__name__))
        assert set(a) == set(b), "%s: dict keys differ: %s vs %s" % (path, sorted(map(str, a)), sorted(map(str, b)))
        for k in b:
            _compare(a[k], b[k], rtol, atol, "%s[%r]" % (path, k))
        return
    if isinstance(b, (list, tuple)) or isinstance(a, (list, tuple)):
        assert type(a) is type(b), (
            "%s: structure mismatch %s vs %s" % (path, type(a).__name__, type(b).__name__))
        assert len(a) == len(b), "%s: length %d vs %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            _compare(x, y, rtol, atol, "%s[%d]" % (path, i))
        return
    assert a is not None, "%s: got None, expected %r" % (path, b)
    xa = np.asarray(a)
    xb = np.asarray(b)
    assert xa.shape == xb.shape, "%s: shape %s vs %s" % (path, xa.shape, xb.shape)
    np.testing.assert_allclose(
        xa.astype(np.float64) if xa.dtype != object else xa,
        xb.astype(np.float64) if xb.dtype != object else xb,
        rtol=rtol, atol=atol, err_msg="at %s" % path)


def assert_tree_allclose(a, b, rtol=1e-5, atol=1e-7):
    """Assert pytrees ``a`` and ``b`` have the same structure and close leaves.

    Containers (dict/list/tuple) must match in type, length and keys. A
    Python float and a 0-d array are both scalar leaves and compare equal
    if their values are close.
    """
    _compare(a, b, rtol, atol, "tree")


def assert_tree_equal(a, b):
    """Exact equality of two pytrees (structure, dtype-insensitive values)."""
    _compare(a, b, 0.0, 0.0, "tree")


def tree_exactly_equal(a, b):
    """Bool version used to check that inputs were not modified (dtype too)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b)
                and all(tree_exactly_equal(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(tree_exactly_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b))
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------
# codax glue
# --------------------------------------------------------------------------

def check_grad(f, *args, argnums=0, rtol=1e-5, atol=1e-7, eps=1e-6):
    """codax.grad(f, argnums)(*args) must match finite differences; returns it."""
    import codax  # imported lazily: the helpers above do not depend on codax

    got = codax.grad(f, argnums=argnums)(*args)
    want = numeric_grad(f, args, argnums, eps=eps)
    assert_tree_allclose(got, want, rtol=rtol, atol=atol)
    return got


def load_example(filename):
    """The module examples/<filename>, imported from its file (the examples
    folder is not a package), under the name <stem>_example."""
    import importlib.util
    import sys
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / 'examples' / filename
    spec = importlib.util.spec_from_file_location(f'{path.stem}_example', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
