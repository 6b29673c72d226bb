"""Python containers built inside transformed functions: dicts filled in loops
(keys that are loop variables, ints or made with str()), iteration over dict
keys and items (in insertion order, with keys that do not sort together),
list.extend / list.insert / list.pop, dict.get, reversed(), lists and tuples
joined with `+`, NumPy functions of Python lists, and `y = x[0]; y += ...` on
a scalar.

Each function is checked as NumPy runs it (jit), under grad against central
differences, jvp, vmap against a Python loop, vmap(grad) against a loop of
differences, and hessian / jacfwd(grad) / jacrev(grad) against differences of
grad.
"""
import numpy as np
import pytest

import codax
from helpers import numeric_grad

X = np.array([0.3, -0.7, 1.2, 0.5])
XS = np.stack([X, 0.5 * X + 0.2, -X + 0.1])


def dict_loop_int_keys(x):
    d = {}
    for i in range(3):
        d[i] = x[i] * 10.0
    return d[0] * d[1] + d[2] ** 2


def dict_loop_str_keys(x):
    d = {}
    for i, name in enumerate(['b', 'a']):
        d[name] = x[i] ** (i + 2)
    return d['a'] * d['b'] + x[3]


def dict_keys_made_with_str(x):
    d = {}
    for i in range(3):
        d['k' + str(i)] = x[i] * 2
    return np.sum(np.stack([d['k0'], d['k1'], d['k2']]) ** 2)


def dict_int_key_variable(x):
    d = {}
    i = 0
    d[i] = x[0]
    d[1] = x[1] * x[2]
    return d[0] + d[1]


def dict_partly_batched_then_loop(x):
    d = {5: 2.0}                         # a value the same for every example
    for k in range(2):
        d[k] = np.sin(x[k])
    return d[5] * d[0] + d[1]


def dict_iterate_keys(x):
    d = {'z': x[0], 'a': x[1] * 2}
    return np.sum(np.stack([d[k] * 3 for k in d]) ** 2)


def dict_iterate_items(x):
    d = {'a': x[0], 'b': x[1] * 2}
    return np.sum(np.stack([v * k for k, v in zip([1.0, 2.0], d.values())]) ** 2) \
        + sum(v * v for _, v in d.items())


def list_extend(x):
    xs = [x[0]]
    xs.extend([x[1], x[2]])
    xs.extend((x[3] * 2,))
    return xs[0] * xs[1] + xs[-1] * xs[2]


def list_insert(x):
    xs = [x[0], x[1]]
    xs.insert(0, x[3] * 2)
    xs.insert(-1, x[2] ** 2)
    xs.insert(10, x[0] * x[1])
    return xs[0] * xs[1] + xs[2] * xs[3] + xs[-1]


def tuple_joined_in_loop(x):
    t = ()
    for i in range(3):
        t = t + (x[i] ** 2,)
    return np.sum(np.stack(t) ** 2)


def list_joined(x):
    xs = [x[0]]
    xs = xs + [x[1] * x[2]]
    xs += [np.sin(x[3])]
    return xs[0] * xs[1] + xs[2]


def mean_of_a_list(x):
    return np.mean([x[0] ** 2, x[1]])


def sum_of_a_tuple(x):
    return np.sum((x[0], x[1] ** 2))


def exp_of_a_list(x):
    return np.sum(np.exp([x[0], x[1] * x[2]]))


def max_of_a_list(x):
    return np.max([x[0] * x[2], x[1], 0.0])


def mean_of_an_appended_list(x):
    xs = []
    for i in range(3):
        xs.append(x[i] ** 2)
    return np.mean(xs) + np.linalg.norm([x[0], x[3]])


def scalar_augmented(x):
    y = x[0]
    y += x[1]
    y *= x[2]
    return y * x[3]


def reversed_list(x):
    out, w = 0.0, 1.0
    for v in reversed([x[0], x[1] * 2, x[2]]):
        out = out + w * v ** 2
        w = w * 3
    return out


def reversed_array_and_range(x):
    out = 0.0
    for i, v in zip(reversed(range(4)), reversed(x)):
        out = out * 2 + (i + 1) * np.sin(v)
    return out


def dict_get_with_defaults(x):
    d = {'a': x[0] * 2}
    missing = d.get('none') is None
    return d.get('a', 0.0) * d.get('b', x[1] ** 2) + missing * x[2]


def dict_get_accumulates(x):
    d = {}
    for i in range(4):
        key = 'even' if i % 2 == 0 else 'odd'
        d[key] = d.get(key, 0.0) + x[i] ** 2
    return d['even'] * d['odd']


def list_pop_in_a_while(x):
    xs = [x[0], x[1] * 2, x[2] ** 2]
    total = 0.0
    while len(xs) > 0:
        total = total * 2 + xs.pop()
    return total


def list_pop_at_indices(x):
    xs = [x[0], x[1], x[2] * 3, np.sin(x[3]), x[0] * x[1]]
    out = 0.0
    for i in range(2):
        v = xs.pop(i)                      # an index known only at run time
        out = out + (i + 1) * v ** 2
    xs.pop(0)                              # a statement, its value dropped
    return out + xs.pop(-1) * xs[0] + len(xs)


def dict_items_in_insertion_order(x):
    d = {}
    d['z'] = x[0] * 2                      # not the sorted order of the keys
    d['a'] = np.sin(x[1])
    d['m'] = x[2] * x[3]
    total, w = 0.0, 1.0
    for k, v in d.items():
        total = total + w * v
        w = w * 3
    return total


def dict_with_int_and_str_keys(x):
    d = {0: x[0] * 2, 'a': np.sin(x[1])}   # keys that do not sort together
    d[1] = x[2] ** 2
    total, w = 0.0, 1.0
    for k, v in d.items():
        total = total + w * v
        w = w * 3
    return total + d[0] * d['a']


FUNCTIONS = [dict_loop_int_keys, dict_loop_str_keys, dict_keys_made_with_str,
             dict_int_key_variable, dict_partly_batched_then_loop, dict_iterate_keys,
             dict_iterate_items, list_extend, list_insert, tuple_joined_in_loop, list_joined,
             mean_of_a_list, sum_of_a_tuple, exp_of_a_list, max_of_a_list,
             mean_of_an_appended_list, scalar_augmented, reversed_list, reversed_array_and_range,
             dict_get_with_defaults, dict_get_accumulates, list_pop_in_a_while,
             list_pop_at_indices, dict_items_in_insertion_order, dict_with_int_and_str_keys]
ids = [f.__name__ for f in FUNCTIONS]


@pytest.mark.parametrize('fn', FUNCTIONS, ids=ids)
def test_value_and_jit(fn):
    np.testing.assert_allclose(codax.jit(fn)(X), fn(X), rtol=1e-12)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=ids)
def test_grad_matches_finite_differences(fn):
    np.testing.assert_allclose(codax.grad(fn)(X), numeric_grad(fn, (X,)), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=ids)
def test_jvp_matches_finite_differences(fn):
    v = np.array([0.2, -1.0, 0.5, 0.7])
    value, tangent = codax.jvp(fn, (X,), (v,))
    np.testing.assert_allclose(value, fn(X), rtol=1e-12)
    np.testing.assert_allclose(tangent, numeric_grad(fn, (X,)) @ v, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=ids)
def test_vmap_matches_a_loop(fn):
    got = codax.vmap(fn)(XS)
    assert np.shape(got) == (len(XS),)
    np.testing.assert_allclose(got, [fn(x) for x in XS], rtol=1e-12)


@pytest.mark.parametrize('fn', FUNCTIONS, ids=ids)
def test_per_example_gradients_match_finite_differences(fn):
    want = [numeric_grad(fn, (x,)) for x in XS]
    np.testing.assert_allclose(codax.vmap(codax.grad(fn))(XS), want, rtol=1e-6, atol=1e-8)


def _hessian_reference(fn):
    return np.stack([numeric_grad(lambda x: codax.grad(fn)(x)[i], (X,)) for i in range(len(X))])


@pytest.mark.parametrize('fn', FUNCTIONS, ids=ids)
def test_hessian_matches_finite_differences_of_grad(fn):
    want = _hessian_reference(fn)
    np.testing.assert_allclose(codax.hessian(fn)(X), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(codax.jacfwd(codax.grad(fn))(X), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(codax.jacrev(codax.grad(fn))(X), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('fn', [dict_loop_int_keys, dict_loop_str_keys, dict_iterate_keys,
                                tuple_joined_in_loop, list_extend, exp_of_a_list],
                         ids=lambda f: f.__name__)
def test_vmap_is_vectorized(fn):
    """Containers hold batched values as they are: no per-example loop."""
    assert 'rt.batch_loop' not in codax.vmap(fn).source(XS)


def test_dict_filled_in_a_loop_gives_one_value_per_example():
    """Regression: each example's value, not the whole batch's, per example."""
    got = codax.vmap(dict_loop_int_keys)(XS)
    np.testing.assert_allclose(got, [dict_loop_int_keys(x) for x in XS], rtol=1e-12)
    grads = codax.vmap(codax.grad(dict_loop_str_keys))(XS)
    assert grads.shape == XS.shape


def extend_with_an_array(x):
    xs = [x[0]]
    xs.extend(x[1:3] * 2)                # list(array): its elements
    return xs[0] * xs[2] + xs[1]


def test_extend_with_an_array_and_grad():
    np.testing.assert_allclose(codax.grad(extend_with_an_array)(X),
                               numeric_grad(extend_with_an_array, (X,)), rtol=1e-6, atol=1e-8)


def tuple_plus_array(x):
    return np.sum(x[:2] + (1.0, 2.0)) * x[2]      # an array and a tuple: NumPy's sum


def test_tuple_added_to_an_array_is_a_sum():
    np.testing.assert_allclose(codax.grad(tuple_plus_array)(X),
                               numeric_grad(tuple_plus_array, (X,)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.vmap(tuple_plus_array)(XS),
                               [tuple_plus_array(x) for x in XS], rtol=1e-12)


def slice_written_in_place(x):
    head = x[:2]
    head *= 2.0
    return np.sum(x * head)


def test_augmented_write_through_a_slice_view_is_still_refused():
    with pytest.raises(codax.SourceError, match='share memory'):
        codax.grad(slice_written_in_place)(X)
