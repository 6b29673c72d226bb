"""vmap, jacfwd, jacrev and grad of Jacobians with pytree arguments or
outputs (tuple argnums, dict parameters, tuple / dict outputs, has_aux), as
JAX supports them: the pytree of per-example Jacobians (vmap), the pytree of
second derivatives (jacfwd(jacrev(f))). References: per-example loops of
codax.jacrev / codax.jacfwd called directly (a Python loop of jvps or
pullbacks), themselves checked against central finite differences.
Also np.bincount under vmap without length=."""
import numpy as np
import pytest

import codax

rng = np.random.default_rng(12)
B = 3
XS = rng.normal(size=(B, 4))
PS = {'w': rng.normal(size=(B, 2, 4)), 'b': rng.normal(size=(B, 2))}
JACOBIANS = [codax.jacrev, codax.jacfwd]


def pair(x):
    return np.sin(x) * 2.0, np.sum(x ** 2)


def layer(p, x):
    return {'y': np.tanh(p['w'] @ x + p['b']), 'z': np.sum(p['w'] * p['w']) * x[0]}


def product(a, b):
    return np.sin(a) * b


def with_aux(x):
    return (np.sin(x), x ** 2), np.cos(x)


def example(tree, i):
    return {k: v[i] for k, v in tree.items()} if isinstance(tree, dict) else tree[i]


def stacked(results):
    """Per-example results (pytrees) stacked leaf by leaf, as vmap stacks them."""
    first = results[0]
    if isinstance(first, dict):
        return {k: stacked([r[k] for r in results]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(stacked([r[i] for r in results]) for i in range(len(first)))
    return np.stack([np.asarray(r) for r in results])


def assert_trees_close(got, want):
    assert type(got) is type(want) or not isinstance(want, (dict, tuple, list))
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            assert_trees_close(got[k], want[k])
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_trees_close(g, w)
    else:
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def per_example(fn, args, axes):
    return stacked([fn(*[example(a, i) if ax == 0 else a for a, ax in zip(args, axes)])
                    for i in range(B)])


def central_difference(f, x, eps=1e-6):
    """d f(x)[leaf] / dx of every leaf of f's output (a tuple), by central differences."""
    columns = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = eps
        hi, lo = f(x + e.reshape(x.shape)), f(x - e.reshape(x.shape))
        columns.append([(np.asarray(h) - np.asarray(l)) / (2 * eps) for h, l in zip(hi, lo)])
    return tuple(np.moveaxis(np.stack([c[o] for c in columns]), 0, -1).reshape(
        np.shape(columns[0][o]) + x.shape) for o in range(len(columns[0])))


def test_the_loop_reference_agrees_with_finite_differences():
    for jacobian in JACOBIANS:
        got = jacobian(pair)(XS[0])
        assert_trees_close(got, central_difference(pair, XS[0]))


@pytest.mark.parametrize('jacobian', JACOBIANS, ids=lambda j: j.__name__)
def test_vmap_of_a_jacobian_of_a_tuple_output(jacobian):
    batched = codax.vmap(jacobian(pair))
    assert_trees_close(batched(XS), per_example(jacobian(pair), (XS,), (0,)))
    # batched code, not a loop over the examples
    assert batched.__codax_transformed__._fallbacks == {}
    assert 'batch_loop' not in batched.source(XS)


@pytest.mark.parametrize('jacobian', JACOBIANS, ids=lambda j: j.__name__)
def test_vmap_of_a_jacobian_for_dict_parameters(jacobian):
    shared = example(PS, 0)
    for args, axes in (((PS, XS), (0, 0)), ((shared, XS), (None, 0))):
        batched = codax.vmap(jacobian(layer), in_axes=axes)
        assert_trees_close(batched(*args), per_example(jacobian(layer), args, axes))
        assert batched.__codax_transformed__._fallbacks == {}


@pytest.mark.parametrize('jacobian', JACOBIANS, ids=lambda j: j.__name__)
def test_vmap_of_a_jacobian_with_tuple_argnums(jacobian):
    fn = jacobian(layer, argnums=(0, 1))
    assert_trees_close(codax.vmap(fn)(PS, XS), per_example(fn, (PS, XS), (0, 0)))
    fn = jacobian(product, argnums=(0, 1))
    ys = rng.normal(size=(B, 4))
    assert_trees_close(codax.vmap(fn, in_axes=(0, None))(XS, ys[0]),
                       per_example(fn, (XS, ys[0]), (0, None)))


@pytest.mark.parametrize('jacobian', JACOBIANS, ids=lambda j: j.__name__)
def test_vmap_of_a_jacobian_with_aux_and_other_axes(jacobian):
    fn = jacobian(with_aux, has_aux=True)
    assert_trees_close(codax.vmap(fn)(XS), per_example(fn, (XS,), (0,)))
    # batch axis 1 in, 1 out: every leaf of every block has it at 1
    got = codax.vmap(jacobian(pair), in_axes=1, out_axes=1)(XS.T)
    want = per_example(jacobian(pair), (XS,), (0,))
    assert_trees_close(got, tuple(np.moveaxis(w, 0, 1) for w in want))


@pytest.mark.parametrize('outer', JACOBIANS, ids=lambda j: j.__name__)
@pytest.mark.parametrize('inner', JACOBIANS, ids=lambda j: j.__name__)
def test_a_jacobian_of_a_pytree_jacobian(outer, inner):
    # second derivatives: central differences of the (loop) first Jacobian
    got = outer(inner(pair))(XS[0])
    want = central_difference(inner(pair), XS[0])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('jacobian', JACOBIANS, ids=lambda j: j.__name__)
def test_grad_through_a_pytree_jacobian(jacobian):
    def loss(p, x):
        return np.sum(jacobian(layer)(p, x)['y']['w'] ** 2)
    p, x = example(PS, 0), XS[0]
    got = codax.grad(loss)(p, x)
    eps = 1e-6
    for key in p:
        for j in range(p[key].size):
            up = {k: v.copy() for k, v in p.items()}
            down = {k: v.copy() for k, v in p.items()}
            up[key].reshape(-1)[j] += eps
            down[key].reshape(-1)[j] -= eps
            fd = (loss(up, x) - loss(down, x)) / (2 * eps)
            np.testing.assert_allclose(got[key].reshape(-1)[j], fd, rtol=1e-5, atol=1e-6)


def test_vmap_of_the_hessian_of_pytrees():
    # jacfwd(jacrev(f)) with tuple argnums and a tuple output, batched; the
    # reference: hessian called per example (its own loop over the outputs)
    def f(a, b):
        return np.sum(np.sin(a) * b ** 2), a * b
    hessian = codax.hessian(f, argnums=(0, 1))
    ys = rng.normal(size=(B, 4))
    batched = codax.vmap(hessian)
    assert_trees_close(batched(XS, ys), per_example(hessian, (XS, ys), (0, 0)))
    assert batched.__codax_transformed__._fallbacks == {}


def counts(x, w):
    return np.bincount(x, weights=w)


def test_bincount_under_vmap_needs_length():
    x = np.array([[0, 1, 1, 3], [2, 2, 0, 1]])
    w = rng.normal(size=(2, 4))
    with pytest.raises(ValueError) as info:
        codax.vmap(counts)(x, w)
    message = str(info.value)
    assert 'length=' in message and 'vmap' in message
    assert 'test_vmap_pytree_jacobians_s12.py' in message
    assert 'np.bincount(x, weights=w)' in message           # the user's line
    got = codax.vmap(lambda x, w: np.bincount(x, weights=w, length=5))(x, w)
    np.testing.assert_allclose(got, [np.bincount(a, weights=b, minlength=5)
                                     for a, b in zip(x, w)])
