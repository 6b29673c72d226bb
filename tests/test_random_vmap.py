"""codax.random under vmap: a batch of keys draws, bit for bit, what a loop
over the keys draws, through the batched forms (`fn.__codax_batched__`),
through vmap of user code that calls the samplers, and through vmap of the
samplers themselves; under vmap(vmap), jit(vmap) and vmap(jit) too; draws
stay constants to grad, and their float parameters are differentiated as
without vmap. The batched forms state the rank of their draws, and
the code vmap generates around them has no per-example loop."""
import importlib.util
import inspect
import sys

import numpy as np
import pytest

import codax
from codax import random
from runtime import Abstract, batched_form_rank
from transformer.errors import SourceError

KEYS = random.split(random.key(7), 5)
BIG = np.iinfo(np.int64)

# (function, positional arguments after the key, keyword arguments)
CASES = [
    ('key', (), {}),
    ('split', (), {}), ('split', (3,), {}), ('split', ((2, 3),), {}),
    ('fold_in', (0,), {}), ('fold_in', (2 ** 32 + 5,), {}),
    ('bits', (), {}), ('bits', ((4, 3),), {}), ('bits', ((5,), np.uint8), {}),
    ('bits', ((3,),), {'dtype': np.uint64}), ('bits', ((2, 2), np.uint16), {}),
    ('uniform', (), {}), ('uniform', ((7,),), {}),
    ('uniform', ((3, 2), np.float32, -2.0, 5.0), {}), ('uniform', ((4,), np.float16), {}),
    ('uniform', ((2, 3),), {'minval': np.array([-1.0, 0.0, 1.0]), 'maxval': 4.0}),
    ('normal', (), {}), ('normal', ((11,),), {}), ('normal', ((2, 3), np.float32), {}),
    ('normal', ((3,),), {'dtype': np.float16}),
    ('truncated_normal', (-1.0, 2.0, (6,)), {}), ('truncated_normal', (np.array([-2.0, 0.0]), 1.5), {}),
    ('truncated_normal', (-0.5, 0.5, (2, 2), np.float32), {}),
    ('gumbel', (), {}), ('gumbel', ((5,),), {}), ('gumbel', ((2, 2), np.float32), {}),
    ('gamma', (np.array([0.3, 1.0, 5.0]),), {}), ('gamma', (2.0, (4,), np.float32), {}),
    ('gamma', (0.1, (2, 3)), {}),
    ('beta', (2.0, 3.0, (4,)), {}), ('beta', (np.array([0.5, 2.0]), 1.0), {}),
    ('dirichlet', (np.ones(3), (5,)), {}), ('dirichlet', (np.array([[0.5, 1.0], [2.0, 3.0]]),), {}),
    ('bernoulli', (), {}), ('bernoulli', (0.3, (10,)), {}), ('bernoulli', (np.full((2, 3), 0.6),), {}),
    ('categorical', (np.log(np.arange(1.0, 5.0)),), {'shape': (6,)}),
    ('categorical', (np.zeros((5, 3)),), {}), ('categorical', (np.zeros((5, 3)), 0), {}),
    ('categorical', (np.arange(6.0).reshape(2, 3),), {'shape': (4, 2)}),
    ('randint', ((8,), 0, 10), {}), ('randint', ((3, 2), -5, np.array([3, 7]), np.int32), {}),
    ('randint', ((4,), BIG.min, BIG.max), {}), ('randint', ((6,), 0, 256, np.uint8), {}),
    ('permutation', (10,), {}), ('permutation', (np.arange(12.0).reshape(3, 4), 1), {}),
    ('permutation', (np.arange(12.0).reshape(3, 4),), {'independent': True, 'axis': 1}),
    ('permutation', (np.arange(5.0),), {}), ('permutation', (1,), {}),
    ('choice', (10, (3,)), {}), ('choice', (np.arange(12.0).reshape(3, 4), (2,), False, None, 1), {}),
    ('choice', (np.arange(12.0).reshape(3, 4), (2, 2)), {}),
    ('choice', (5, (4,), True, np.array([0.1, 0.2, 0.3, 0.2, 0.2])), {}),
    ('choice', (5, (3,), False, np.array([0.1, 0.2, 0.3, 0.2, 0.2])), {}),
    ('choice', (np.arange(10.0), (2, 2)), {'replace': False}), ('choice', (4, (0,)), {}),
    ('key_data', (), {}), ('wrap_key_data', (), {}),
    ('wrap_key_data', (), {'impl': 'threefry2x32'}),
    ('exponential', (), {}), ('exponential', ((4, 3), np.float32), {}),
    ('laplace', ((5,),), {}), ('logistic', ((2, 3),), {}), ('cauchy', ((4,), np.float16), {}),
    ('rademacher', ((6,),), {}), ('rademacher', ((2, 2), np.int8), {}),
    ('poisson', (np.array([0.0, 0.7, 4.0, 9.99, 10.0, 250.0]),), {}),
    ('poisson', (3.0, (5,), np.int32), {}), ('poisson', (40.0, (2, 3)), {}),
    ('chisquare', (np.array([0.5, 3.0]),), {}), ('chisquare', (2.0, (4,), np.float32), {}),
    ('t', (np.array([1.0, 4.0, 30.0]),), {}), ('t', (2.5, (2, 2)), {}),
    ('loggamma', (np.array([0.01, 1.0, 6.0]),), {}), ('loggamma', (0.5, (3,), np.float32), {}),
    ('generalized_normal', (1.5, (4,)), {}),
    ('multivariate_normal', (np.array([1.0, -1.0]), np.array([[2.0, 0.5], [0.5, 1.0]])), {}),
    ('multivariate_normal', (np.zeros(3), np.eye(3), (4,), np.float32), {}),
    ('multivariate_normal', (np.zeros((2, 2)), np.ones((2, 2)), None, None, 'eigh'), {}),
    ('multivariate_normal', (np.ones(2), np.eye(2)), {'shape': (3,), 'method': 'svd'}),
    ('orthogonal', (3,), {}), ('orthogonal', (2, (4,)), {}),
    ('orthogonal', (2, (), np.float32, 4), {}),
    ('ball', (3,), {}), ('ball', (2, 1.0, (5,)), {}), ('maxwell', ((4,),), {}),
]
IDS = [f'{i}-{name}' for i, (name, _, _) in enumerate(CASES)]


def _first(name, keys):
    """What the batch maps over: keys, or seeds for random.key."""
    return np.arange(-2, 3) * (2 ** 33 + 1) if name == 'key' else keys


def _loop(name, keys, args, kwargs):
    fn = getattr(random, name)
    return np.stack([fn(k, *args, **kwargs) for k in _first(name, keys)])


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape,
                                                                 want.dtype, want.shape)
    view = (lambda x: x.view(np.uint8)) if want.dtype.kind == 'f' else (lambda x: x)
    assert np.array_equal(view(np.ascontiguousarray(got)), view(np.ascontiguousarray(want)))


@pytest.mark.parametrize('name,args,kwargs', CASES, ids=IDS)
def test_batched_form_equals_the_loop(name, args, kwargs):
    fn = getattr(random, name)
    _same(fn.__codax_batched__(_first(name, KEYS), *args, **kwargs),
          _loop(name, KEYS, args, kwargs))


@pytest.mark.parametrize('name,args,kwargs', CASES, ids=IDS)
def test_vmap_of_the_sampler_equals_the_loop(name, args, kwargs):
    """vmap(random.normal, in_axes=(0, None, ...)): vmap batches the public
    function's body, itself a call with a batched form."""
    fn = getattr(random, name)
    # vmap batches keyword arguments along 0: pass them by position instead
    bound = inspect.signature(fn).bind(KEYS, *args, **kwargs)
    bound.apply_defaults()
    positional = bound.args[1:]
    batched = codax.vmap(fn, in_axes=(0,) + (None,) * len(positional))
    _same(batched(_first(name, KEYS), *positional), _loop(name, KEYS, args, kwargs))


def _literal(value):
    if isinstance(value, type) and issubclass(value, np.generic):
        return f'np.{value.__name__}'
    if isinstance(value, tuple):
        return '(' + ''.join(_literal(v) + ', ' for v in value) + ')'
    return repr(value)


def _user_module(tmp_path_factory):
    """One function per case, calling the sampler as user code does: arrays
    as (unbatched) parameters, everything else written out."""
    lines = ['import numpy as np', 'from codax import random', '']
    for i, (name, args, kwargs) in enumerate(CASES):
        params, texts = ['k'], ['k']
        for j, value in list(enumerate(args)) + list(kwargs.items()):
            if isinstance(value, np.ndarray):
                params.append(f'a{j}')
                text = f'a{j}'
            else:
                text = _literal(value)
            texts.append(text if isinstance(j, int) else f'{j}={text}')
        call = f'random.{name}({", ".join(texts)})'
        lines += [f'def f{i}({", ".join(params)}):', f'    return {call}', '', '',
                  f'def g{i}({", ".join(params)}):',      # the draws computed with
                  f'    return np.transpose({call} + 0)', '', '']
    path = tmp_path_factory.mktemp('random_vmap') / 'random_vmap_calls.py'
    path.write_text('\n'.join(lines))
    spec = importlib.util.spec_from_file_location('random_vmap_calls', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def calls(tmp_path_factory):
    return _user_module(tmp_path_factory)


@pytest.mark.parametrize('i', range(len(CASES)), ids=IDS)
def test_vmap_of_user_code_equals_the_loop(calls, i):
    name, args, kwargs = CASES[i]
    arrays = [v for v in list(args) + list(kwargs.values()) if isinstance(v, np.ndarray)]
    fn = getattr(calls, f'f{i}')
    batched = codax.vmap(fn, in_axes=(0,) + (None,) * len(arrays))
    first = _first(name, KEYS)
    _same(batched(first, *arrays), np.stack([fn(k, *arrays) for k in first]))
    source = batched.source(first, *arrays)
    assert f'rt.batched_form(random.{name}' in source and 'batch_loop' not in source, source


# ---------------------------------------------------------------- compositions

GRID = random.split(random.key(11), (3, 4))            # keys for vmap(vmap): 3 x 4 of them
SEED_GRID = (np.arange(12).reshape(3, 4) - 5) * (2 ** 33 + 1)
COMPOSITIONS = ('vmap(vmap)', 'vmap(vmap) along 1', 'jit(vmap)', 'vmap(jit)')

# Cases whose draws' rank the outer level of vmap(vmap) cannot tell, with the reason.
OUTER_RANK_UNKNOWN = {
    50: 'choice from a 2-d array: no draws would give zeros(shape) (as in JAX), so the '
        'rank needs the literal sizes, which the outer level sees only as numbers',
    51: 'the same',
}


def _grid(name):
    return SEED_GRID if name == 'key' else GRID


def _arrays(i):
    _, args, kwargs = CASES[i]
    return [v for v in list(args) + list(kwargs.values()) if isinstance(v, np.ndarray)]


def _composed(how, fn, n_arrays):
    """(fn under the composition `how`, its arrays shared; whether it maps a grid of keys)."""
    axes = (0,) + (None,) * n_arrays
    inner = codax.vmap(fn, in_axes=axes)
    if how == 'vmap(vmap)':
        return codax.vmap(inner, in_axes=axes), True
    if how == 'vmap(vmap) along 1':       # out_axes 1 puts the grid back in order
        return codax.vmap(inner, in_axes=(1,) + axes[1:], out_axes=1), True
    if how == 'jit(vmap)':
        return codax.jit(inner), False
    return codax.vmap(codax.jit(fn), in_axes=axes), False


def _run_composed(calls, i, how, prefix):
    """The composed function of case i, its arguments, and the loop's result."""
    name = CASES[i][0]
    arrays = _arrays(i)
    fn = getattr(calls, f'{prefix}{i}')
    batched, grid = _composed(how, fn, len(arrays))
    if grid:
        first = _grid(name)
        want = np.stack([np.stack([fn(k, *arrays) for k in row]) for row in first])
    else:
        first = _first(name, KEYS)
        want = np.stack([fn(k, *arrays) for k in first])
    return batched, (first, *arrays), want


@pytest.mark.parametrize('how', COMPOSITIONS)
@pytest.mark.parametrize('i', range(len(CASES)), ids=IDS)
def test_compositions_equal_the_loop(calls, i, how):
    """Every sampler called in user code (alone, and computed with), under
    vmap(vmap) (the outer level along axis 0, or along axis 1), jit(vmap) and
    vmap(jit): the same bits as a Python loop over the keys."""
    for prefix in ('f', 'g'):
        batched, args, want = _run_composed(calls, i, how, prefix)
        _same(batched(*args), want)


@pytest.mark.parametrize('how', ('vmap',) + COMPOSITIONS)
@pytest.mark.parametrize('i', range(len(CASES)), ids=IDS)
def test_compositions_stay_vectorized(calls, i, how):
    """...and the code generated for them has no per-example loop
    (rt.batch_loop) and knows the rank of the draws: nothing lines ranks up
    at run time (rt.example_rank) in `np.transpose(draws + 0)`."""
    if how == 'vmap':
        fn = getattr(calls, f'g{i}')
        batched = codax.vmap(fn, in_axes=(0,) + (None,) * len(_arrays(i)))
        args = (_first(CASES[i][0], KEYS), *_arrays(i))
    else:
        batched, args, _ = _run_composed(calls, i, how, 'g')
    source = batched.source(*args)
    assert 'rt.batch_loop' not in source, source
    if not (how.startswith('vmap(vmap)') and i in OUTER_RANK_UNKNOWN):
        assert 'rt.example_rank' not in source, source


def test_batched_forms_take_keys_with_more_leading_axes():
    """A batched form takes keys of shape (B1, B2, 2) (vmap(vmap)'s outer
    level passes them so) and draws what a loop over both axes draws."""
    for name, args, kwargs in CASES:
        fn = getattr(random, name)
        grid = _grid(name)
        want = np.stack([np.stack([fn(k, *args, **kwargs) for k in row]) for row in grid])
        _same(fn.__codax_batched__(grid, *args, **kwargs), want)


def _described(value, literal):
    """An argument as the compiler would describe it: literals as they are
    (or, not `literal`, as the numbers they are), arrays by their ndim."""
    if isinstance(value, np.ndarray):
        return Abstract(value.ndim)
    if isinstance(value, tuple):
        return tuple(_described(v, literal) for v in value)
    if literal or value is None:
        return value
    return Abstract(0) if isinstance(value, (int, float)) else Abstract()


@pytest.mark.parametrize('literal', [True, False], ids=['literals', 'numbers'])
def test_batched_forms_state_the_rank_of_their_draws(literal):
    """form.rank, from the arguments as the compiler knows them, is the rank
    of the draws for one key, a batch of keys and a grid of keys (None only
    where it cannot be told: OUTER_RANK_UNKNOWN)."""
    for i, (name, args, kwargs) in enumerate(CASES):
        fn = getattr(random, name)
        described = [_described(v, literal) for v in args]
        named = {k: _described(v, literal) for k, v in kwargs.items()}
        form = fn.__codax_batched__
        for first, draws in ((_first(name, KEYS)[0], fn), (_first(name, KEYS), form),
                             (_grid(name), form)):
            rank = batched_form_rank(fn, [Abstract(np.ndim(first))] + described, named)
            if rank is None and not literal and i in OUTER_RANK_UNKNOWN:
                continue
            assert rank == np.ndim(draws(first, *args, **kwargs)), (i, name, np.ndim(first))


def test_a_rank_the_arguments_do_not_tell_is_none():
    shape = Abstract(1)                                # an array of unknown length
    assert batched_form_rank(random.normal, [Abstract(1), shape], {}) is None
    assert batched_form_rank(random.gamma, [Abstract(1), Abstract()], {}) is None
    assert batched_form_rank(random.uniform, [Abstract(1), (3,)], {'minval': Abstract(2)}) \
        is None                                        # a minval that does not fit the shape
    assert batched_form_rank(random.normal, [Abstract(1)], {'bad': 1}) is None
    assert batched_form_rank(np.sin, [1.0], {}) is None                 # no batched form


# ---------------------------------------------------------------- in user code

def noisy_features(k, x):
    """Draws and arithmetic on them: a dropout mask, noise, a shuffle."""
    ks = random.split(k, 3)
    noise = random.normal(ks[0], (3,))
    keep = random.bernoulli(ks[1], 0.7, (3,))
    y = np.where(keep, x * noise, 0.0) / 0.7
    order = random.permutation(ks[2], 3)
    return y[order] + np.sum(noise ** 2) * random.uniform(random.fold_in(k, 1))


def test_draws_with_arithmetic_in_a_vmapped_function():
    x = np.array([0.5, -1.0, 2.0])
    keys = random.split(random.key(3), 8)
    got = codax.vmap(noisy_features, in_axes=(0, None))(keys, x)
    _same(got, np.stack([noisy_features(k, x) for k in keys]))
    xs = np.arange(24.0).reshape(8, 3)                 # keys and data both batched
    _same(codax.vmap(noisy_features)(keys, xs),
          np.stack([noisy_features(k, v) for k, v in zip(keys, xs)]))


def two_keys(k):
    k1, k2 = random.split(k)                           # unpacking a batch of split keys
    return random.normal(k1, (2,)) + random.uniform(k2, (2,))


def test_unpacked_split_keys():
    keys = random.split(random.key(10), 5)
    _same(codax.vmap(two_keys)(keys), np.stack([two_keys(k) for k in keys]))


def shifted_uniform(k, lo):
    return random.uniform(k, (4,), minval=lo, maxval=lo + 1.0)


def folded(k, i):
    return random.normal(random.fold_in(k, i), (2,))


def test_other_batched_arguments_run_per_example():
    keys = random.split(random.key(4), 6)
    lo = np.linspace(-1.0, 1.0, 6)
    batched = codax.vmap(shifted_uniform)
    _same(batched(keys, lo), np.stack([shifted_uniform(k, v) for k, v in zip(keys, lo)]))
    assert 'rt.batch_loop(random.uniform' in batched.source(keys, lo)     # by position
    one = random.key(5)                                # an unbatched key, batched minval
    _same(codax.vmap(shifted_uniform, in_axes=(None, 0))(one, lo),
          np.stack([shifted_uniform(one, v) for v in lo]))
    steps = np.arange(6)                               # fold_in(k, i) for a batch of i
    _same(codax.vmap(folded, in_axes=(None, 0))(one, steps),
          np.stack([folded(one, i) for i in steps]))


def draw(k):
    return random.normal(k, (3,)) * 2.0 + 1.0


def test_nested_vmap_and_other_key_axes():
    keys = random.split(random.key(6), (2, 4))
    _same(codax.vmap(codax.vmap(draw))(keys),
          np.stack([np.stack([draw(k) for k in row]) for row in keys]))
    _same(codax.vmap(draw, in_axes=1, out_axes=1)(keys[0].T),
          np.stack([draw(k) for k in keys[0]], axis=1))
    _same(codax.vmap(random.normal, in_axes=(1, None))(keys[0].T, (2,)),
          np.stack([random.normal(k, (2,)) for k in keys[0]]))


def test_nested_vmap_along_other_axes():
    """Keys with their two words first, (2, 3, 4): both levels map along axis 1."""
    words_first = np.moveaxis(GRID, -1, 0)
    batched = codax.vmap(codax.vmap(draw, in_axes=1), in_axes=1)
    _same(batched(words_first), np.stack([np.stack([draw(k) for k in row]) for row in GRID]))
    inner_first = codax.vmap(codax.vmap(draw), in_axes=1, out_axes=0)   # the 4 keys outer
    _same(inner_first(GRID), np.stack([np.stack([draw(k) for k in col]) for col in
                                       GRID.swapaxes(0, 1)]))


def test_nested_vmap_is_vectorized_at_every_level():
    """(An inner level along an axis other than 0 moves it first, rt.moveaxes,
    which the outer level runs per example for any function, random or not.)"""
    deep = random.split(random.key(1), (2, 3, 4))
    for batched, keys in ((codax.vmap(codax.vmap(draw)), GRID),
                          (codax.vmap(codax.vmap(draw), in_axes=1), GRID),
                          (codax.vmap(codax.vmap(codax.vmap(draw))), deep)):
        source = batched.source(keys)
        assert 'rt.batch_loop' not in source and 'rt.example_rank' not in source, source
    want = np.stack([draw(k) for k in deep.reshape(-1, 2)]).reshape(2, 3, 4, 3)
    _same(codax.vmap(codax.vmap(codax.vmap(draw)))(deep), want)


def test_many_keys_gamma_rounds():
    """gamma's rejection rounds run until every key is done; the draws of the
    keys that finish early do not change."""
    keys = random.split(random.key(8), 64)
    for a in (0.05, 1.0, 7.5):
        _same(random.gamma.__codax_batched__(keys, a, (7,)),
              np.stack([random.gamma(k, a, (7,)) for k in keys]))


def test_batched_forms_check_their_keys():
    with pytest.raises(TypeError, match='shape \\(B, 2\\)'):
        random.normal.__codax_batched__(random.key(0), (3,))
    with pytest.raises(TypeError, match='shape \\(2,\\)'):
        random.normal(KEYS, (3,))                      # one key only, as in JAX
    with pytest.raises(TypeError):
        random.key.__codax_batched__(np.array([0.5, 1.0]))


# ---------------------------------------------------------------- derivatives

def loss(w, k):
    eps = random.normal(k, (3,))
    return np.sum((w - eps) ** 2)


def mean_loss(w, keys):
    return np.mean(codax.vmap(loss, in_axes=(None, 0))(w, keys))


def test_grad_through_vmap_over_keys():
    keys = random.split(random.key(9), 16)
    w = np.array([0.5, -0.5, 2.0])
    eps = np.stack([random.normal(k, (3,)) for k in keys])
    np.testing.assert_allclose(codax.grad(mean_loss)(w, keys), 2 * (w - eps.mean(axis=0)),
                               rtol=1e-12)
    per_example = codax.vmap(codax.grad(loss), in_axes=(None, 0))(w, keys)
    np.testing.assert_allclose(per_example, 2 * (w - eps), rtol=1e-12)


def projected(k, W):
    """Draws used by a matrix product and a reduction: their rank matters."""
    e = random.normal(k, (3,))
    return np.tanh(W @ e) + np.sum(e ** 2)


def tanh_loss(w, k):
    e = random.normal(k, w.shape)
    return np.sum(np.tanh(w * e) @ w)


def mean_tanh_loss(w, keys):
    return np.mean(codax.vmap(tanh_loss, in_axes=(None, 0))(w, keys))


W = np.arange(6.0).reshape(2, 3) / 6.0


def test_draws_in_products_and_gradients_equal_the_loop():
    keys = random.split(random.key(12), 6)
    w = np.array([0.5, -1.0, 2.0])
    _same(codax.vmap(projected, in_axes=(0, None))(keys, W),
          np.stack([projected(k, W) for k in keys]))
    np.testing.assert_allclose(codax.vmap(codax.grad(tanh_loss), in_axes=(None, 0))(w, keys),
                               np.stack([codax.grad(tanh_loss)(w, k) for k in keys]),
                               rtol=1e-12)


def test_draws_in_products_and_gradients_stay_vectorized():
    """With the rank of the draws known, a product with them is one product,
    vmap(grad) of code that draws has no per-example loop, and grad of vmapped
    code that multiplies draws works (a loop there cannot be differentiated)."""
    keys = random.split(random.key(12), 6)
    w = np.array([0.5, -1.0, 2.0])
    sources = [codax.vmap(projected, in_axes=(0, None)).source(keys, W),
               codax.vmap(codax.grad(tanh_loss), in_axes=(None, 0)).source(w, keys),
               codax.jit(codax.vmap(projected, in_axes=(0, None))).source(keys, W)]
    for source in sources:
        assert 'rt.batch_loop' not in source and 'rt.example_rank' not in source, source
    want = np.mean([codax.grad(tanh_loss)(w, k) for k in keys], axis=0)
    np.testing.assert_allclose(codax.grad(mean_tanh_loss)(w, keys), want, rtol=1e-12)
    np.testing.assert_allclose(codax.jit(codax.grad(mean_tanh_loss))(w, keys), want, rtol=1e-12)


def shared_noise(x, k):
    M = random.normal(k, (3, 3))                       # one key for every example
    return np.tanh(x @ M)


def test_draws_of_a_shared_key_in_vmapped_code():
    xs = np.arange(15.0).reshape(5, 3) / 15.0
    one = random.key(2)
    batched = codax.vmap(shared_noise, in_axes=(0, None))
    _same(batched(xs, one), np.stack([shared_noise(x, one) for x in xs]))


def test_draws_of_a_shared_key_stay_vectorized():
    xs = np.arange(15.0).reshape(5, 3) / 15.0
    source = codax.vmap(shared_noise, in_axes=(0, None)).source(xs, random.key(2))
    assert 'rt.batch_loop' not in source and 'rt.example_rank' not in source, source


def test_draws_shaped_like_batched_data_stay_vectorized():
    keys = random.split(random.key(3), 8)
    xs = np.arange(24.0).reshape(8, 3)
    source = codax.vmap(noisy_features).source(keys, xs)
    assert 'rt.batch_loop' not in source and 'rt.example_rank' not in source, source


def uniform_loss(lo, k):
    return np.sum(random.uniform(k, (3,), minval=lo))


def mean_uniform_loss(lo, keys):
    return np.mean(codax.vmap(uniform_loss, in_axes=(None, 0))(lo, keys))


def uniform_interval_loss(bounds, keys):
    lo, hi = bounds[0], bounds[1]
    draws = codax.vmap(lambda k: random.uniform(k, (3,), minval=lo, maxval=hi))(keys)
    return np.sum(draws ** 2)


def truncated_loss(bounds, keys):
    draws = codax.vmap(random.truncated_normal, in_axes=(0, None, None, None))(
        keys, bounds[0], bounds[1], (2,))
    return np.sum(np.sin(draws))


def gamma_loss(a, keys):
    return np.sum(np.sin(codax.vmap(lambda k: random.gamma(k, a, (2,)))(keys)))


def _per_key(loss):
    """The loss as a loop over the keys, each drawn without vmap."""
    return lambda p, keys: sum(loss(p, k[None]) for k in keys)


def _central(f, x, keys, eps=1e-6):
    return np.array([(f(x + eps * e, keys) - f(x - eps * e, keys)) / (2 * eps)
                     for e in np.eye(len(x))])


def test_float_parameters_of_draws_are_differentiated_under_vmap():
    """The derivative of a draw with respect to its distribution's parameters,
    for a batch of keys at once (the batched form's own call differentiated):
    the same key's draws are smooth in uniform's and truncated_normal's
    bounds, so central differences of the loop over the keys are the
    reference; grad through vmap agrees with grad of that loop, and jvp and
    jacrev with grad."""
    for loss, x in ((uniform_interval_loss, np.array([-0.5, 2.0])),
                    (truncated_loss, np.array([-1.0, 0.5]))):
        loop = _per_key(loss)
        assert np.isclose(loss(x, KEYS), loop(x, KEYS), rtol=1e-12)
        want = _central(loop, x, KEYS)
        got = codax.grad(loss)(x, KEYS)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        np.testing.assert_allclose(got, codax.grad(loop)(x, KEYS), rtol=1e-12)
        direction = np.array([0.3, -1.1])
        assert np.isclose(codax.jvp(loss, (x, KEYS), (direction, np.zeros(KEYS.shape)))[1],
                          want @ direction, rtol=1e-6)
        np.testing.assert_allclose(codax.jacrev(loss)(x, KEYS), got, rtol=1e-12)
    # minval alone, one scalar, through a closure (the draws of the issue)
    want = _central(lambda lo, keys: mean_uniform_loss(lo[0], keys), np.array([-1.0]), KEYS)
    assert np.isclose(codax.grad(mean_uniform_loss)(-1.0, KEYS), want[0], rtol=1e-6)


def test_gamma_parameter_is_differentiated_under_vmap_as_per_key():
    """gamma's implicit gradient (no finite differences of a rejection
    sampler: tests/test_random_grad.py checks it against SciPy), for a batch
    of keys, equals that of the loop over the keys."""
    loop = _per_key(gamma_loss)
    for a in (0.4, 1.7):
        assert np.isclose(codax.grad(gamma_loss)(a, KEYS), codax.grad(loop)(a, KEYS),
                          rtol=1e-10)
        assert np.isclose(codax.jvp(gamma_loss, (a, KEYS), (1.0, np.zeros(KEYS.shape)))[1],
                          codax.grad(loop)(a, KEYS), rtol=1e-10)


def uniform_interval_draws(bounds, k):
    return random.uniform(k, (3,), minval=bounds[0], maxval=bounds[1])


def normal_scale_draws(p, k):
    return random.normal(k, (3,)) * p[1] + p[0]


def _squares_under_vmap(draws):
    """The loss: the sum of squares of the draws of a batch of keys, drawn
    under vmap (one batched call)."""
    return lambda x, keys: np.sum(codax.vmap(lambda k: draws(x, k))(keys) ** 2)


def _hessian_by_grad(loss, x, keys, eps=1e-5):
    """Central differences of codax.grad with the keys fixed."""
    return np.array([(codax.grad(loss)(x + eps * e, keys) - codax.grad(loss)(x - eps * e, keys))
                     / (2 * eps) for e in np.eye(len(x))])


def test_second_derivatives_of_draws_under_vmap():
    """hessian, jacfwd(grad) and grad of grad through the draws of a batch of
    keys (the batched call's tangent sweep differentiated again) equal the sum
    over the keys of codax.hessian without vmap, and central differences of
    grad."""
    keys = KEYS[:3]
    for draws, x, hessian in ((uniform_interval_draws, np.array([-0.5, 2.0]), codax.hessian),
                              (normal_scale_draws, np.array([0.3, 1.5]),
                               lambda f: codax.jacfwd(codax.grad(f)))):
        loss = _squares_under_vmap(draws)
        one = codax.hessian(lambda x, k: np.sum(draws(x, k) ** 2))
        want = sum(one(x, k) for k in keys)
        np.testing.assert_allclose(want, _hessian_by_grad(loss, x, keys), rtol=1e-6)
        np.testing.assert_allclose(hessian(loss)(x, keys), want, rtol=1e-10)
        row = codax.grad(lambda x, keys: codax.grad(loss)(x, keys)[1])(x, keys)
        np.testing.assert_allclose(row, want[1], rtol=1e-10)


def test_second_derivative_of_gamma_parameter_under_vmap_is_refused_as_per_key():
    """gamma's implicit gradient has no derivative of its own (as in JAX):
    for a batch of keys, the same clear error as for the per-key loop."""
    keys = KEYS[:2]
    for loss in (gamma_loss, _per_key(gamma_loss)):
        with pytest.raises(SourceError, match='a draw from gamma .* no second one'):
            codax.grad(codax.grad(loss))(1.7, keys)


def test_many_keys_poisson_rounds():
    """poisson's inversion steps and rejection rounds run until every key is
    done; the draws of the keys that finish early do not change."""
    keys = random.split(random.key(13), 64)
    lam = np.array([0.0, 0.3, 9.5, 10.0, 12.0, 500.0])
    _same(random.poisson.__codax_batched__(keys, lam, (3, 6)),
          np.stack([random.poisson(k, lam, (3, 6)) for k in keys]))


def correlated_loss(w, k):
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 2.0]])
    e = random.multivariate_normal(k, np.zeros(3), cov) + random.laplace(k, (3,))
    return np.sum((w - e) ** 2)


def test_new_draws_are_constants_to_grad_under_vmap():
    keys = random.split(random.key(14), 8)
    w = np.array([0.5, -0.5, 2.0])
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 2.0]])
    eps = np.stack([random.multivariate_normal(k, np.zeros(3), cov) + random.laplace(k, (3,))
                    for k in keys])
    batched = codax.vmap(codax.grad(correlated_loss), in_axes=(None, 0))
    np.testing.assert_allclose(batched(w, keys), 2 * (w - eps), rtol=1e-12)
    assert 'rt.batch_loop' not in batched.source(w, keys)
