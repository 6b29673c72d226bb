"""codax.vmap's interface, with JAX's semantics: in_axes and out_axes (ints,
None, pytree prefixes, negative axes), keyword arguments, the errors for
mismatched sizes and axes, `.source()`, and the cache."""
import importlib

import numpy as np
import pytest

import codax
from helpers import assert_tree_allclose
from transformer.errors import SourceError

vmap_module = importlib.import_module('codax.vmap')   # `codax.vmap` is the function

rng = np.random.default_rng(0)
X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))


def f(x, y):
    return np.sin(x) * y + x ** 2


def affine(W, x, b):
    return W @ x + b


def scaled(x, scale=2.0, shift=0.0):
    return x * scale + shift


def tree_fn(params, x):
    return np.tanh(x @ params['w'] + params['b']), params['w'].sum()


def pair(x, y):
    return x * y, x + 1.0, np.sum(y)


def unbatched_out(x, c):
    return c * 2.0


def list_index(x, k):
    values = [x, x * 2.0, x * 3.0]
    return values[k]


# --------------------------------------------------------------------------
# in_axes
# --------------------------------------------------------------------------

def test_in_axes_int_none_tuple_and_negative():
    want = f(X, Y)
    np.testing.assert_allclose(codax.vmap(f)(X, Y), want)
    np.testing.assert_allclose(codax.vmap(f, in_axes=(0, 0))(X, Y), want)
    np.testing.assert_allclose(codax.vmap(f, in_axes=[0, 0])(X, Y), want)
    np.testing.assert_allclose(codax.vmap(f, in_axes=1)(X.T, Y.T), want)
    np.testing.assert_allclose(codax.vmap(f, in_axes=-1)(X.T, Y.T), want)
    np.testing.assert_allclose(codax.vmap(f, in_axes=(0, -1))(X, Y.T), want)
    np.testing.assert_allclose(codax.vmap(f, in_axes=(0, None))(X, Y[0]), f(X, Y[0]))
    np.testing.assert_allclose(codax.vmap(f, in_axes=(None, 1))(X[0], Y.T), f(X[0], Y))


def test_in_axes_pytree_prefix():
    params = {'w': rng.normal(size=(4, 3, 2)), 'b': rng.normal(size=2)}
    x = rng.normal(size=(4, 3))
    got = codax.vmap(tree_fn, in_axes=({'w': 0, 'b': None}, 0))(params, x)
    want = [tree_fn({'w': params['w'][i], 'b': params['b']}, x[i]) for i in range(4)]
    assert_tree_allclose(got, (np.stack([w[0] for w in want]), np.stack([w[1] for w in want])))
    # a prefix: one axis for the whole dict; and the batch axis of a leaf elsewhere
    both = {'w': params['w'], 'b': np.stack([params['b']] * 4)}
    got = codax.vmap(tree_fn, in_axes=(0, 0))(both, x)
    np.testing.assert_allclose(got[0], np.stack([w[0] for w in want]))
    moved = {'w': np.moveaxis(params['w'], 0, 2), 'b': params['b']}
    got = codax.vmap(tree_fn, in_axes=({'w': 2, 'b': None}, 1))(moved, x.T)
    np.testing.assert_allclose(got[0], np.stack([w[0] for w in want]))
    # tuples and lists of arguments
    got = codax.vmap(lambda xy: f(xy[0], xy[1]), in_axes=((0, None),))((X, Y[0]))
    np.testing.assert_allclose(got, f(X, Y[0]))
    got = codax.vmap(lambda xy: f(xy[0], xy[1]))([X, Y])
    np.testing.assert_allclose(got, f(X, Y))


def test_keyword_arguments_are_batched_along_axis_0():
    scales = np.arange(4.0)
    np.testing.assert_allclose(codax.vmap(scaled)(X, scale=scales), X * scales[:, None])
    np.testing.assert_allclose(codax.vmap(scaled, in_axes=(1,))(X.T, shift=scales),
                               X * 2.0 + scales[:, None])
    np.testing.assert_allclose(codax.vmap(scaled, in_axes=(None,))(X[0], scale=scales),
                               X[0] * scales[:, None])
    np.testing.assert_allclose(codax.vmap(scaled)(X), X * 2.0)        # defaults: unbatched


def test_unbatched_leaves_that_are_not_numbers():
    out = codax.vmap(list_index, in_axes=(0, None))(X, 2)
    np.testing.assert_allclose(out, X * 3.0)


# --------------------------------------------------------------------------
# out_axes
# --------------------------------------------------------------------------

def test_out_axes_int_negative_and_none():
    want = f(X, Y)
    np.testing.assert_allclose(codax.vmap(f, out_axes=1)(X, Y), want.T)
    np.testing.assert_allclose(codax.vmap(f, out_axes=-1)(X, Y), want.T)
    np.testing.assert_allclose(codax.vmap(f, in_axes=1, out_axes=1)(X.T, Y.T), want.T)
    c = np.array([1.0, 2.0])
    np.testing.assert_allclose(codax.vmap(unbatched_out, in_axes=(0, None), out_axes=None)(X, c),
                               c * 2.0)
    np.testing.assert_allclose(codax.vmap(unbatched_out, in_axes=(0, None))(X, c),
                               np.stack([c * 2.0] * 4))


def test_out_axes_pytree_prefix():
    a, b, s = codax.vmap(pair, out_axes=(1, 0, None), in_axes=(0, None))(X, Y[0])
    np.testing.assert_allclose(a, (X * Y[0]).T)
    np.testing.assert_allclose(b, X + 1.0)
    np.testing.assert_allclose(s, np.sum(Y[0]))
    a, b, s = codax.vmap(pair, out_axes=-1)(X, Y)
    np.testing.assert_allclose(a, (X * Y).T)
    np.testing.assert_allclose(s, np.sum(Y, axis=1))


def _mapped(fun, x, in_axis, out_axis):
    """vmap's meaning spelled as a loop over the examples, for one argument."""
    return np.moveaxis(np.stack([fun(e) for e in np.moveaxis(x, in_axis, 0)]), 0, out_axis)


@pytest.mark.parametrize('outer', [(1, 2), (-1, -1), (2, 0)])
@pytest.mark.parametrize('inner', [(1, 0), (-1, 1), (0, -1)])
def test_nested_vmap_along_other_axes_is_vectorized(outer, inner):
    """The inner level's axis moves (rt.moveaxes) happen after the outer batch
    axis, in one call: no loop over the outer examples."""
    x = rng.normal(size=(3, 4, 5))
    nested = codax.vmap(codax.vmap(f, in_axes=(inner[0], None), out_axes=inner[1]),
                        in_axes=(outer[0], None), out_axes=outer[1])
    y = np.float64(0.5)
    want = _mapped(lambda e: _mapped(lambda v: f(v, y), e, *inner), x, *outer)
    np.testing.assert_allclose(nested(x, y), want, rtol=1e-12)
    assert 'batch_loop' not in nested.source(x, y)
    total = lambda x: np.sum(nested(x, y) ** 2)                        # noqa: E731
    np.testing.assert_allclose(codax.grad(total)(x), 2 * want_grad(x, y), rtol=1e-10)


def want_grad(x, y):
    """d/dx of sum(f(x, y)**2) / 2, element-wise: f(x, y) * f'(x)."""
    return f(x, y) * (np.cos(x) * y + 2 * x)


# --------------------------------------------------------------------------
# axis_size
# --------------------------------------------------------------------------

def test_axis_size_with_no_batched_argument_repeats_each_example():
    x, c = rng.normal(size=3), 0.5
    want = np.stack([f(x, c)] * 4)                    # every example is the same call
    np.testing.assert_allclose(codax.vmap(f, in_axes=None, axis_size=4)(x, c), want)
    np.testing.assert_allclose(codax.vmap(f, in_axes=None, out_axes=1, axis_size=4)(x, c),
                               want.T)
    a, b, s = codax.vmap(pair, in_axes=None, out_axes=(-1, 0, None), axis_size=2)(x, x)
    np.testing.assert_allclose(a, np.stack([x * x] * 2, axis=-1))
    np.testing.assert_allclose(b, np.stack([x + 1.0] * 2))
    np.testing.assert_allclose(s, np.sum(x))
    assert codax.vmap(f, in_axes=None, axis_size=0)(x, c).shape == (0, 3)


def test_axis_size_must_agree_with_the_batched_arguments():
    np.testing.assert_allclose(codax.vmap(f, in_axes=(0, None), axis_size=4)(X, Y[0]),
                               f(X, Y[0]))
    batched = codax.vmap(f, axis_size=4)
    batched(X, Y)
    with pytest.raises(ValueError, match=r'axis_size=4.*argument 0 \(x\): 3'):
        batched(X[:3], Y[:3])                          # checked on the fast path too
    with pytest.raises(ValueError, match=r'axis_size=3.*argument 1 \(y\): 4'):
        codax.vmap(f, in_axes=(None, 0), axis_size=3)(X[0], Y)
    for bad in (-1, 2.0, True, '3'):
        with pytest.raises(TypeError, match='axis_size must be None or a non-negative int'):
            codax.vmap(f, axis_size=bad)


def test_axis_size_composes_with_grad_jit_jvp_and_vmap():
    x = rng.normal(size=3)
    repeated = codax.vmap(np.sin, in_axes=None, axis_size=4)
    total = lambda x: np.sum(repeated(x) ** 2)                        # noqa: E731
    # sum over 4 copies of sin(x)**2: d/dx = 4 * 2 sin(x) cos(x)
    np.testing.assert_allclose(codax.grad(total)(x), 8 * np.sin(x) * np.cos(x), rtol=1e-12)
    inside = lambda x: np.sum(codax.vmap(np.sin, in_axes=None, axis_size=4)(x) ** 2)  # noqa: E731
    np.testing.assert_allclose(codax.grad(inside)(x), 8 * np.sin(x) * np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(codax.jit(repeated)(x), np.stack([np.sin(x)] * 4))
    np.testing.assert_allclose(codax.jit(lambda x: repeated(x) * 2.0)(x),
                               np.stack([2 * np.sin(x)] * 4))
    value, tangent = codax.jvp(repeated, (x,), (np.ones(3),))
    np.testing.assert_allclose(tangent, np.stack([np.cos(x)] * 4))
    np.testing.assert_allclose(codax.jacrev(repeated)(x),
                               np.stack([np.diag(np.cos(x))] * 4))
    # the inner level repeats each outer example
    xs = rng.normal(size=(2, 3))
    np.testing.assert_allclose(codax.vmap(repeated)(xs),
                               np.stack([np.stack([np.sin(e)] * 4) for e in xs]))
    # vmap of a gradient, every example the same
    per = codax.vmap(codax.grad(lambda x: np.sum(np.sin(x))), in_axes=None, axis_size=2)(x)
    np.testing.assert_allclose(per, np.stack([np.cos(x)] * 2))


def test_axis_size_source_and_cache():
    x = rng.normal(size=3)
    source = codax.vmap(f, in_axes=None, axis_size=4).source(x, 0.5)
    assert 'def repeat_f(a0, a1):' in source and 'rt.batch_outputs(out, None, 0, 4)' in source
    # one generated function per (function, count, out_axes, axis_size)
    first = codax.vmap(f, in_axes=None, axis_size=4)
    assert vmap_module.Batched(f, None, 0, 4)._repeating(2) is \
        first.__codax_transformed__._repeating(2)
    assert vmap_module.Batched(f, None, 0, 5)._repeating(2) is not \
        first.__codax_transformed__._repeating(2)
    assert codax.vmap(f, in_axes=None, axis_size=5)(x, 0.5).shape == (5, 3)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_inconsistent_sizes_name_the_arguments():
    with pytest.raises(ValueError, match=r'inconsistent sizes.*argument 0 \(x\): 4.*'
                                         r'argument 1 \(y\): 3'):
        codax.vmap(f)(X, Y[:3])
    with pytest.raises(ValueError, match=r'argument 0 \(x\): 4.*argument 1 \(y\): 3'):
        codax.vmap(f, in_axes=(0, 1))(X, Y)


def test_axis_out_of_range_names_the_argument():
    with pytest.raises(ValueError, match=r'argument 1 \(y\) along axis 2.*rank 2'):
        codax.vmap(f, in_axes=(0, 2))(X, Y)
    with pytest.raises(ValueError, match=r'argument 0 \(x\) along axis -3'):
        codax.vmap(f, in_axes=-3)(X, Y)
    with pytest.raises(ValueError, match=r'argument 1 \(y\) along axis 0.*rank 0'):
        codax.vmap(f)(X, 2.0)


def test_in_axes_errors():
    with pytest.raises(ValueError, match='in_axes has 3 entries.*2 positional'):
        codax.vmap(f, in_axes=(0, 0, 0))(X, Y)
    with pytest.raises(ValueError, match='at least one argument with a batch axis.*axis_size'):
        codax.vmap(f, in_axes=None)(X, Y)
    with pytest.raises(TypeError, match='in_axes must be an int, None, or a tuple'):
        codax.vmap(f, in_axes={'x': 0})
    with pytest.raises(TypeError, match='callable'):
        codax.vmap(3)
    with pytest.raises(ValueError, match=r'argument 0 \(params\).*prefix'):
        codax.vmap(tree_fn, in_axes=({'w': 0}, 0))({'w': X, 'b': X}, X)
    with pytest.raises(TypeError, match='ints or None'):
        codax.vmap(f, in_axes=(0, 'a'))(X, Y)


def test_out_axes_none_for_a_batched_output():
    with pytest.raises(SourceError, match='out_axes is None'):
        codax.vmap(f, out_axes=None)(X, Y)


def test_unsupported_code_is_a_source_error_at_the_users_line():
    with pytest.raises(SourceError) as info:
        codax.vmap(list_index)(X, np.array([0, 1, 2, 1]))
    message = str(info.value)
    assert 'test_vmap_api.py' in message and 'values[k]' in message
    assert 'codax vmap' in message


# --------------------------------------------------------------------------
# .source(): the batched code
# --------------------------------------------------------------------------

def test_source_shows_the_batched_code_and_unbatched_arguments_stay_unbatched():
    W, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    batched = codax.vmap(affine, in_axes=(None, 0, None))
    np.testing.assert_allclose(batched(W, X, b), X @ W.T + b)
    source = batched.source(W, X, b)
    assert source.startswith('# codax: vmap(affine)')
    assert 'def vmap_affine(W, x, b):' in source
    assert 'broadcast_batch' not in source and 'batch_loop' not in source
    assert '# line' in source                       # the user's lines, as comments
    source = codax.vmap(f, in_axes=(0, None)).source(X, Y[0])
    assert 'broadcast_batch' not in source
    assert codax.source(codax.vmap(f), X, Y) == codax.vmap(f).source(X, Y)


# --------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------

@pytest.fixture
def compiles(monkeypatch):
    """The number of batched functions generated while the test runs."""
    count = []
    real = vmap_module.compile_batch

    def counting(*args, **kwargs):
        count.append(args[0])
        return real(*args, **kwargs)
    monkeypatch.setattr(vmap_module, 'compile_batch', counting)
    return count


def g(x, y):
    return np.cos(x) * y


def test_a_second_call_does_not_regenerate(compiles):
    batched = codax.vmap(g)
    first = batched(X, Y)
    assert len(compiles) == 1
    np.testing.assert_allclose(batched(X, Y), first)
    batched(X[:2], Y[:2])                              # a new batch size: the same code
    batched(X * 2.0, Y)
    codax.vmap(g)(X, Y)                                # a new vmap of the same function
    assert len(compiles) == 1
    batched(X[None], Y[None])                          # a new rank: new code
    assert len(compiles) == 2
    codax.vmap(g, in_axes=(0, None))(X, Y[0])          # new axes: new code
    assert len(compiles) == 3
    with pytest.raises(ValueError, match='inconsistent sizes'):
        batched(X, Y[:2])                              # checked on the fast path too


def test_a_second_call_of_vmap_of_grad_does_not_regenerate(compiles):
    per_example = codax.vmap(codax.grad(lambda w, x: np.sum(np.sin(x @ w))), in_axes=(None, 0))
    w, xs = rng.normal(size=3), rng.normal(size=(5, 2, 3))
    per_example(w, xs)
    count = len(compiles)
    per_example(w * 2.0, xs[:3])
    assert len(compiles) == count


# ---- vmap over the pullback that codax.vjp returns (as JAX supports) ----

def two_outputs(x, W):
    return {'h': np.tanh(W @ x), 's': np.sum(x ** 2) * W[0, 0]}


def test_vmap_of_a_vjp_pullback_is_a_loop_of_its_calls():
    x, W = rng.normal(size=3), rng.normal(size=(4, 3))
    out, pullback = codax.vjp(affine, W, x, np.ones(4))
    cotangents = rng.normal(size=(5, 4))
    batched = codax.vmap(pullback)(cotangents)
    loop = [pullback(c) for c in cotangents]
    for k in range(3):
        np.testing.assert_allclose(batched[k], np.stack([grads[k] for grads in loop]),
                                   rtol=1e-12)
    np.testing.assert_allclose(batched[1], cotangents @ W, rtol=1e-12)      # W^T c per row
    # a Jacobian by rows: the pullback vmapped over the identity
    _, pullback = codax.vjp(f, X[0], Y[0])
    rows = codax.vmap(pullback)(np.eye(3))
    np.testing.assert_allclose(rows[0], np.diag(np.cos(X[0]) * Y[0] + 2 * X[0]), rtol=1e-12)


def test_vmap_of_a_pullback_with_pytree_outputs_aux_and_other_axes():
    x, W = rng.normal(size=3), rng.normal(size=(2, 3))
    out, pullback, aux = codax.vjp(lambda x, W: (two_outputs(x, W), 7.0), x, W, has_aux=True)
    assert aux == 7.0
    cts = {'h': rng.normal(size=(2, 4)), 's': rng.normal(size=4)}    # batch along axis 1 / 0
    batched = codax.vmap(pullback, in_axes=({'h': 1, 's': 0},))(cts)
    loop = [pullback({'h': cts['h'][:, i], 's': cts['s'][i]}) for i in range(4)]
    for k in range(2):
        assert_tree_allclose(batched[k], np.stack([grads[k] for grads in loop]), rtol=1e-12)


def test_a_pullback_under_jit_and_a_wrong_cotangent_in_vmap():
    _, pullback = codax.vjp(f, X[0], Y[0])
    c = rng.normal(size=3)
    assert_tree_allclose(codax.jit(pullback)(c), pullback(c), rtol=1e-12)
    with pytest.raises(ValueError, match=r'cotangent shape \(2,\) does not match the output '
                                         r'shape \(3,\)'):
        codax.vmap(pullback)(np.ones((4, 2)))
