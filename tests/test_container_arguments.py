"""Lists, tuples and dicts passed in as arguments follow Python's semantics
inside transformed code, where only the call's signature tells their kind:
`a + b` of list or tuple parameters joins them (not NumPy's sum), `for k in
params` over a dict parameter walks its keys, which carry no derivative, and
`xs.pop(0)` on a list parameter does not touch the caller's list. Dicts keep
their insertion order wherever codax splits them into examples and rebuilds
them, as the untransformed function sees them.

References: central differences over each leaf (tests/helpers.py, which walks
dicts in insertion order) and the untransformed function in a loop.
"""
import numpy as np

import codax
from codax import tree_util
from helpers import assert_tree_allclose, numeric_grad

A = [np.array(1.5), np.array(2.0)]
B = [np.array(0.3), np.array(-0.5)]
AS = [np.array([1.5, 1.0, -0.2]), np.array([2.0, 0.5, 0.7])]
BS = [np.array([0.3, 0.2, 1.1]), np.array([-0.5, 0.1, 0.4])]


def example(trees, i):
    return [type(t)(leaf[i] for leaf in t) for t in trees]


def joined(a, b):
    c = a + b
    return c[0] * c[-1] + c[1] ** 2 + np.sin(c[2])


def joined_in_place(a, b):
    acc = a + []                                 # (`+=` on `a` itself would extend it)
    acc += b
    acc = acc + [a[0] * 2]
    total = 0.0
    for i, v in enumerate(acc):
        total = total + (i + 1) * v ** 2
    return total


def tuple_grown(a, b):
    a += b                                       # a tuple: `a` is rebound, not changed
    a = a + (a[0] * 2,)
    return a[0] * a[-1] + a[1] * a[2] ** 2


def _join(p, q):
    return p + q


def joined_in_a_call(a, b):
    c = _join(a, b)
    return c[0] * c[2] + c[1] * c[3] ** 2


def check_joined(fn, a, b):
    want = numeric_grad(fn, (a, b), (0, 1))
    assert_tree_allclose(codax.grad(fn, argnums=(0, 1))(a, b), want, rtol=1e-6, atol=1e-8)
    assert_tree_allclose(codax.jacfwd(fn, argnums=(0, 1))(a, b), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.jit(fn)(a, b), fn(a, b), rtol=1e-12)


def test_lists_passed_in_are_joined_by_plus():
    for fn in (joined, joined_in_place, joined_in_a_call):
        check_joined(fn, A, B)


def test_tuples_passed_in_are_joined_by_plus():
    for fn in (joined, tuple_grown, joined_in_a_call):
        check_joined(fn, tuple(A), tuple(B))


def test_lists_passed_in_are_joined_per_example():
    for fn in (joined, joined_in_place, joined_in_a_call):
        got = codax.vmap(fn)(AS, BS)
        np.testing.assert_allclose(got, [fn(*example((AS, BS), i)) for i in range(3)],
                                   rtol=1e-12)
        grads = codax.vmap(codax.grad(fn))(AS, BS)
        want = [numeric_grad(fn, example((AS, BS), i)) for i in range(3)]
        assert_tree_allclose(grads, [np.array([w[k] for w in want]) for k in range(2)],
                             rtol=1e-6, atol=1e-8)


def tuple_plus_array(t, x):
    return np.sum(t + x) * x[0]                  # a tuple and an array: NumPy's sum


def test_a_tuple_passed_in_plus_an_array_is_a_sum():
    t, x = (0.5, 0.25), np.array([1.0, 2.0])
    np.testing.assert_allclose(codax.grad(tuple_plus_array, argnums=1)(t, x),
                               numeric_grad(tuple_plus_array, (t, x), 1), rtol=1e-6)


def weighted_by_key(params):
    total = 0.0
    for k in params:                             # int keys, used as numbers
        total = total + k * np.sum(params[k] ** 3)
    return total


def last_first(params):
    total, w = 0.0, 1.0
    for k in reversed(params):                   # the dict's own order, reversed
        total = total + w * np.sum(params[k])
        w = w * 2
    return total


P = {2: np.array([1.0, -2.0]), 1: np.array(0.5)}
Q = {'w': np.array([1.0, 2.0]), 'b': np.array(3.0)}


def test_walking_a_dict_passed_in_gives_its_keys_no_derivative():
    for fn, p in ((weighted_by_key, P), (last_first, P), (last_first, Q)):
        want = numeric_grad(fn, (p,))
        for transform in (codax.grad, codax.jacfwd, codax.jacrev):
            assert_tree_allclose(transform(fn)(p), want, rtol=1e-6, atol=1e-8)
        batch = {k: np.stack([v, 2 * v - 1]) for k, v in p.items()}
        got = codax.vmap(codax.grad(fn))(batch)
        for i in range(2):
            want = numeric_grad(fn, ({k: v[i] for k, v in batch.items()},))
            assert_tree_allclose({k: v[i] for k, v in got.items()}, want, rtol=1e-6, atol=1e-8)


def list_walked(xs):
    total = 0.0
    for v in xs:
        total = total + v * v
    return total


def test_walking_a_list_passed_in_still_differentiates_its_items():
    xs = [np.array(1.0), np.array(-2.0)]
    want = numeric_grad(list_walked, (xs,))
    assert_tree_allclose(codax.grad(list_walked)(xs), want, rtol=1e-6)
    assert_tree_allclose(codax.jacfwd(list_walked)(xs), want, rtol=1e-6)


def first_popped(xs):
    first = xs.pop(0)
    return first * xs[0] + xs[-1] ** 2


def test_pop_of_a_list_passed_in_leaves_the_callers_list_alone():
    xs = [np.array(0.5), np.array(2.0), np.array(-1.5)]
    before = list(xs)
    got = codax.grad(first_popped)(xs)
    assert len(xs) == 3 and all(a is b for a, b in zip(xs, before))
    assert_tree_allclose(got, numeric_grad(lambda v: first_popped(list(v)), (xs,)), rtol=1e-6)


def items_in_insertion_order(x):
    d = {'z': x[0] * 2, 'a': x[1] ** 2, 'm': x[2]}
    out, w = [], 1.0
    for k, v in d.items():
        out.append(v * w)
        w = w + 1.0
    return np.stack(out)


def test_jacobians_over_a_dict_in_insertion_order():
    x = np.array([0.3, -0.7, 1.2])
    want = np.stack([numeric_grad(lambda x: items_in_insertion_order(x)[i], (x,))
                     for i in range(3)])
    np.testing.assert_allclose(codax.jacrev(items_in_insertion_order)(x), want, rtol=1e-6)
    np.testing.assert_allclose(codax.jacfwd(items_in_insertion_order)(x), want, rtol=1e-6)


def test_a_rebuilt_dict_keeps_its_order_and_its_structure_ignores_it():
    """As in JAX, a dict's structure is its sorted keys: the same for any
    insertion order. Rebuilding from leaves keeps the dict's own order (what
    codax's per-example loops do), so iteration over it does not change."""
    d = {'z': 1.0, 'a': 2.0, 'm': 3.0}
    leaves, treedef = tree_util.tree_flatten(d)
    assert leaves == [2.0, 3.0, 1.0]
    assert treedef == tree_util.tree_structure({'a': 0, 'm': 0, 'z': 0})
    rebuilt = tree_util.tree_unflatten(treedef, leaves)
    assert list(rebuilt) == ['z', 'a', 'm'] and rebuilt == d


def test_keys_that_do_not_sort_together_are_a_structure():
    d = {1: 1.0, 'a': 2.0, 0: 3.0}
    leaves, treedef = tree_util.tree_flatten(d)
    assert leaves == [3.0, 1.0, 2.0]             # ints, then strs: by type, then value
    assert tree_util.tree_unflatten(treedef, leaves) == d
    assert treedef == tree_util.tree_structure({'a': 0, 0: 0, 1: 0})


def nested_weighted_by_key(params):
    total = 0.0
    for k in params['layer']:                    # a dict inside a dict passed in
        total = total + k * np.sum(params['layer'][k] ** 2) * params['scale']
    return total


def test_walking_a_dict_inside_a_dict_passed_in():
    p = {'layer': {3: np.array([1.0, -2.0]), 1: np.array(0.5)}, 'scale': np.array(1.5)}
    want = numeric_grad(nested_weighted_by_key, (p,))
    for transform in (codax.grad, codax.jacfwd, codax.jacrev):
        assert_tree_allclose(transform(nested_weighted_by_key)(p), want, rtol=1e-6, atol=1e-8)


# ---- dicts built inside: keys gained on one path only, and a helper's dict walked ----

def gains_a_key(x, flag):
    d = {'a': x}
    if flag:
        d['b'] = 2 * x
    s = np.sum(d['a'])
    for k in d:
        s = s + np.sum(d[k] ** 2)
    return s


def gains_keys_in_a_loop(x):
    d = {}
    s = 0.0
    for i in range(3):
        d['k%d' % i] = x * (i + 1)
        s = s + np.sum(d['k0'] * np.sin(d['k%d' % i]))    # d has i + 1 keys here
    return s


def test_adjoints_of_a_dict_that_gained_keys_add_by_key():
    """The adjoints of a dict before and after it gained a key are added key
    by key, a key missing from one of them standing for zero."""
    x = np.array([0.3, -0.2, 0.5])
    for flag in (True, False):
        want = numeric_grad(gains_a_key, (x, flag))
        np.testing.assert_allclose(codax.grad(gains_a_key)(x, flag), want, rtol=1e-6, atol=1e-8)
    want = numeric_grad(gains_keys_in_a_loop, (x,))
    np.testing.assert_allclose(codax.grad(gains_keys_in_a_loop)(x), want, rtol=1e-6, atol=1e-8)
    got = codax.vmap(codax.grad(gains_keys_in_a_loop))(np.stack([x, 2 * x]))
    np.testing.assert_allclose(got[1], codax.grad(gains_keys_in_a_loop)(2 * x), rtol=1e-12)


def numbered_parts(x):
    return {0: np.sin(x), 1: x * x, 2: np.sum(x) * x}


def walks_a_helpers_dict(x):
    d = numbered_parts(x)
    s = 0.0
    for k in d:                                  # its keys: numbers, but no derivative
        s = s + d[k] * (k + 1)
    return np.sum(s ** 2)


def walks_a_helpers_items(x):
    s = 0.0
    for k, v in numbered_parts(x).items():
        s = s + np.sum(v) * x[k]
    return s


def test_walking_a_dict_a_helper_returns_differentiates_its_values_only():
    """A helper's result is told apart at run time: a dict walks its keys,
    which carry no derivative (in the reverse sweep too)."""
    x = np.array([0.3, -0.2, 0.5])
    for f in (walks_a_helpers_dict, walks_a_helpers_items):
        want = numeric_grad(f, (x,))
        for transform in (codax.grad, codax.jacfwd):
            np.testing.assert_allclose(transform(f)(x), want, rtol=1e-6, atol=1e-8)
    batch = np.stack([x, -x])
    got = codax.vmap(codax.grad(walks_a_helpers_dict))(batch)
    np.testing.assert_allclose(got, [codax.grad(walks_a_helpers_dict)(v) for v in batch],
                               rtol=1e-12)


# ---- dict keys carry no derivative, and are the same for every example ----

def scaled_by_numeric_key(x):
    s = 0.0
    for k, v in {1.5: x, -2.0: x * x}.items():
        s = s + k * v                    # a numeric key in arithmetic: a constant
    return np.sum(s ** 2)


def _labelled(x):
    return {'a': x, 'b': np.sin(x)}


def chosen_by_key(x):
    s = 0.0
    for k, v in _labelled(x).items():
        if k == 'a':
            s = s + v
        else:
            s = s + v ** 2
    return np.sum(s * x)


def test_numeric_dict_keys_have_zero_tangents():
    x, t = AS[0], BS[0]
    fd = numeric_grad(scaled_by_numeric_key, (x,))
    out, tangent = codax.jvp(scaled_by_numeric_key, (x,), (t,))
    np.testing.assert_allclose(out, scaled_by_numeric_key(x))
    np.testing.assert_allclose(tangent, fd @ t, rtol=1e-6)
    np.testing.assert_allclose(codax.jacfwd(scaled_by_numeric_key)(x), fd, rtol=1e-6)
    np.testing.assert_allclose(codax.grad(scaled_by_numeric_key)(x), fd, rtol=1e-6)
    xs = np.stack(AS)
    np.testing.assert_allclose(codax.vmap(codax.jacfwd(scaled_by_numeric_key))(xs),
                               [numeric_grad(scaled_by_numeric_key, (e,)) for e in xs], rtol=1e-6)


def test_vmap_grad_walks_string_keys_unbatched():
    xs = np.stack(AS)
    want = [numeric_grad(chosen_by_key, (e,)) for e in xs]
    np.testing.assert_allclose(codax.vmap(codax.grad(chosen_by_key))(xs), want, rtol=1e-6)
    np.testing.assert_allclose(codax.vmap(chosen_by_key)(xs), [chosen_by_key(e) for e in xs])


# ---- dict literals with keys computed at run time ----

def computed_keys(x):
    i = 2
    d = {'a': x, 'n%d' % i: x * 3, f'm{i}': np.sin(x), 'z': x ** 2}
    assert list(d) == ['a', 'n2', 'm2', 'z']      # Python's order, kept
    return np.sum(d['a'] * d['n2'] + d['m2'] * d['z'])


def test_dict_literal_with_computed_keys():
    x = AS[0]
    fd = numeric_grad(computed_keys, (x,))
    np.testing.assert_allclose(codax.grad(computed_keys)(x), fd, rtol=1e-6)
    np.testing.assert_allclose(codax.jit(computed_keys)(x), computed_keys(x))
    np.testing.assert_allclose(codax.jvp(computed_keys, (x,), (BS[0],))[1], fd @ BS[0],
                               rtol=1e-6)
    xs = np.stack(AS)
    np.testing.assert_allclose(codax.vmap(codax.grad(computed_keys))(xs),
                               [numeric_grad(computed_keys, (e,)) for e in xs], rtol=1e-6)
