"""codax.vmap against a Python loop over the examples, np.stack-ed.

* the function corpus (tests/corpus.py), vmapped with two choices of in_axes,
  and vmap(grad(f)) against a loop of grad(f);
* Python control flow on batched values: `if` as a select over both
  branches, `while` until every example is done, loops over ranges with
  batched bounds, early return / break / continue, `raise`;
* composition: vmap(vmap(f)), per-example gradients, grad of a vmapped
  function, Jacobians of and within vmap, vmap of jvp, user functions and
  recursion.

The API itself (in_axes, out_axes, errors, caching) is tests/test_vmap_api.py.
"""
import warnings

import numpy as np
import pytest

import codax
from corpus import CORPUS, cf_if_nested_scalar
from helpers import assert_tree_allclose, tree_leaves, tree_unflatten
from transformer.errors import SourceError

RTOL, ATOL = 1e-9, 1e-12
FACTORS = (0.93, 1.07)       # more examples: the first one scaled


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def stack(trees):
    """The examples' pytrees as one pytree of stacked leaves."""
    columns = zip(*[tree_leaves(t) for t in trees])
    return tree_unflatten(trees[0], [np.stack([np.asarray(c) for c in col]) for col in columns])


def example(tree, axis, i):
    """Example i of `tree` batched along `axis` (None: the same for every example)."""
    if axis is None:
        return tree
    return tree_unflatten(tree, [np.take(leaf, i, axis=axis) for leaf in tree_leaves(tree)])


def loop(f, args, in_axes, size):
    """What vmap(f, in_axes)(*args) means: f per example, np.stack-ed."""
    return stack([f(*[example(a, ax, i) for a, ax in zip(args, in_axes)]) for i in range(size)])


def check(f, *args, in_axes=0, out_axes=0):
    """vmap(f) agrees with the loop, and warns about nothing."""
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    size = next(np.shape(tree_leaves(a)[0])[ax] for a, ax in zip(args, axes) if ax is not None)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        got = codax.vmap(f, in_axes=in_axes, out_axes=out_axes)(*args)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')       # the plain function may warn; vmap must not
        want = loop(f, args, axes, size)
    if out_axes != 0:
        want = tree_unflatten(want, [np.moveaxis(w, 0, out_axes) for w in tree_leaves(want)])
    assert_tree_allclose(got, want, rtol=RTOL, atol=ATOL)
    return got


def _is_float(leaf):
    return isinstance(leaf, float) or (isinstance(leaf, np.ndarray) and leaf.dtype.kind == 'f')


def _is_float_tree(tree):
    leaves = tree_leaves(tree)
    return bool(leaves) and all(_is_float(leaf) for leaf in leaves)


def _scaled(tree, factor):
    return tree_unflatten(tree, [leaf * factor if _is_float(leaf) else leaf
                                 for leaf in tree_leaves(tree)])


def _shapes(args):
    return [np.shape(leaf) for leaf in tree_leaves(args)]


# --------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------

_BY_NAME = {name: (fn, factory, argnums) for name, fn, factory, argnums in CORPUS}


def _examples(name):
    """Examples of one corpus entry: the inputs of every entry of the same
    function with the same shapes (cf_if_data_first/_elif/_else take different
    branches), and the first one scaled."""
    fn, factory, _ = _BY_NAME[name]
    first = factory()
    same = [other() for key, (g, other, _) in _BY_NAME.items()
            if g is fn and key != name and _shapes(other()) == _shapes(first)]
    return [first] + same + [_scaled(first, s) for s in FACTORS]


def _batch(name, choice):
    """(batched arguments, in_axes) for one corpus entry. 'all': every float
    argument batched; 'first': the first one only; 'data': the arguments
    not differentiated (per-example gradients of shared parameters)."""
    _, _, argnums = _BY_NAME[name]
    examples = _examples(name)
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    axes = []
    for i, arg in enumerate(examples[0]):
        batched = _is_float_tree(arg) and (choice == 'all' or choice == 'first' and i == 0
                                           or choice == 'data' and i not in nums)
        axes.append(0 if batched else None)
    args = tuple(stack([e[i] for e in examples]) if ax == 0 else examples[0][i]
                 for i, ax in enumerate(axes))
    return args, tuple(axes), len(examples)


def _cases(choices):
    out = []
    for name, _, factory, argnums in CORPUS:
        args = factory()
        floats = [i for i, a in enumerate(args) if _is_float_tree(a)]
        nums = argnums if isinstance(argnums, tuple) else (argnums,)
        for choice in choices:
            if choice == 'first' and floats == [0]:
                continue                          # the same as 'all'
            if choice == 'data' and not set(floats) - set(nums):
                continue
            out.append(pytest.param(name, choice, id=f'{name}-{choice}'))
    return out


# Corpus entries that vmap cannot batch yet: (name, choice) -> (the exception
# it raises, why). Strict: such an entry must fail with that exception (any
# other error fails the test), and one that works fails the test until it is
# taken off the list, so the list is the gaps that remain. None remain today.
XFAIL = {}
XFAIL_GRAD = {}

# vmap(grad(f)) batches grad's code; where that code cannot be batched it
# takes the gradient of the summed vmap(f) (codax/vmap.py). The entries that
# take that way, each with the reason; every other entry must batch grad's
# code (strict, both ways).
_TAPE_PER_EXAMPLE = ('a loop whose trip count differs between examples pushes a different '
                     'number of values on the tape per example')
SUMMED = {
    ('cf_while_data', 'all'): _TAPE_PER_EXAMPLE,
    ('cf_break_continue', 'all'): _TAPE_PER_EXAMPLE,
    ('cf_while_break', 'all'): _TAPE_PER_EXAMPLE,
    ('cf_early_return_in_loop_a', 'all'): _TAPE_PER_EXAMPLE,
    ('cf_early_return_in_loop_b', 'all'): _TAPE_PER_EXAMPLE,
    ('cf_nested_loops', 'all'): 'an `if` on a batched condition inside the loops makes the '
                                'tape batched as a whole, so the inner loop\'s bound popped '
                                'from it is batched, and range() of it is refused',
    ('rec_horner', 'all'): 'a recursive helper: its batched derivative\'s facts would be '
                           'infinitely nested (transformer/errors.py RecursiveBatching)',
    ('rec_power_sum', 'all'): 'a recursive function, as rec_horner',
}


def _compare_or_xfail(expected, compute, want):
    """compute() agrees with want, or, for an entry listed with (exception, why),
    raises that exception (then the test xfails with the reason)."""
    if expected is None:
        assert_tree_allclose(compute(), want, rtol=RTOL, atol=ATOL)
        return
    exception, reason = expected
    try:
        got = compute()
        assert_tree_allclose(got, want, rtol=RTOL, atol=ATOL)
    except exception:
        pytest.xfail(reason)
    pytest.fail(f'listed as failing ({reason}), but it works: take it off the list')


@pytest.mark.parametrize('name, choice', _cases(('all', 'first')))
def test_corpus_vmap_matches_loop(name, choice):
    fn = _BY_NAME[name][0]
    args, axes, size = _batch(name, choice)

    def batched():
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            return codax.vmap(fn, in_axes=axes)(*args)
    _compare_or_xfail(XFAIL.get((name, choice)), batched, loop(fn, args, axes, size))


@pytest.mark.parametrize('name, choice', _cases(('all', 'data')))
def test_corpus_vmap_of_grad_matches_loop(name, choice):
    fn, _, argnums = _BY_NAME[name]
    args, axes, size = _batch(name, choice)
    g = codax.grad(fn, argnums=argnums)
    vg = codax.vmap(g, in_axes=axes)
    _compare_or_xfail(XFAIL_GRAD.get((name, choice)), lambda: vg(*args),
                      loop(g, args, axes, size))
    summed = any(vg.__codax_transformed__._summed_for.values())
    assert summed == ((name, choice) in SUMMED), (
        f'expected grad\'s code batched, but it took the summed vmap(f): '
        f'{_batch_error(vg, args)}' if summed else
        f'listed in SUMMED ({SUMMED[(name, choice)]}), but grad\'s code is batched: take it off')


def _batch_error(vg, args):
    """Why grad's code could not be batched (the SourceError)."""
    transformed = vg.__codax_transformed__
    try:
        transformed._specialize(*transformed._arguments(args, {}))
    except SourceError as exc:
        return str(exc)
    return '(no error now)'


# --------------------------------------------------------------------------
# Control flow on batched values
# --------------------------------------------------------------------------

def sqrt_or_log(x):
    if x > 0:
        y = np.sqrt(x)
    else:
        y = np.log(-x)
    return y * 2.0


def if_elif_else(x):
    s = np.sum(x)
    if s > 1.0:
        y = x ** 2
    elif s < -1.0:
        y = np.sin(x)
        z = 3.0 * y             # assigned in one branch only, read in none after  # noqa: F841
    else:
        y = np.exp(x)
    return y


def ternary(x):
    return x ** 2 if x > 0.5 else 1.0 - x


def condition_reassigned(x, flag):
    if flag:
        flag = x > 1.0            # the branches rewrite the condition itself
        x = x + 1.0
    else:
        x = x - 1.0
    return np.where(flag, x, -x)


def test_if_runs_both_branches_and_selects():
    check(sqrt_or_log, np.array([4.0, -np.e, 0.25, -1.0]))


def test_the_branch_not_taken_neither_warns_nor_poisons():
    state = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        out = codax.vmap(sqrt_or_log)(np.array([4.0, -1.0, 0.0]))
    assert np.all(np.isfinite(out[:2])) and out[0] == 4.0 and out[1] == 0.0
    assert np.isneginf(out[2])                # log(0) in the branch taken: as in Python
    assert np.geterr() == state               # NumPy's error state is restored


def test_if_elif_else_and_nested_ifs():
    x = np.array([[0.5, 0.7, 0.2], [-1.5, 0.2, -0.3], [-0.5, 0.2, 0.1]])
    check(if_elif_else, x)
    check(cf_if_nested_scalar, x, np.array([1.5, 0.5, 2.0]))
    check(cf_if_nested_scalar, x, 0.7, in_axes=(0, None))
    check(cf_if_nested_scalar, x[0], np.array([1.5, 0.5, -2.0]), in_axes=(None, 0))
    check(ternary, np.array([0.1, 0.9, 0.5]))
    check(condition_reassigned, np.array([0.5, 2.0, 3.0, -1.0]),
          np.array([True, True, False, False]))


def test_batched_if_copies_only_the_names_that_outlive_it():
    source = codax.vmap(if_elif_else).source(np.ones((3, 2)))
    assert source.count('xp.where') == 2           # y twice (if and elif); z is dead
    assert '_before' not in source and '_z_' not in source
    assert 'rt.quiet()' in source and source.count('rt.quiet()') == 1


def halve_until_small(x):
    k = 0
    while x > 1.0:
        x = x / 2.0
        k = k + 1
    return x, k


def newton_sqrt(a):
    x = a
    while np.abs(x * x - a) > 1e-10:
        x = 0.5 * (x + a / x)
    return x


def log_until_negative(x):
    while x > 0.0:
        x = np.log(x)        # a finished example's value keeps being fed to log
    return x


def while_in_branch(x, go):
    if go:
        while x != 0.0:      # an example that skips the branch (x = 2.5) must not spin here
            x = x - 1.0
    else:
        x = -x
    return x


def test_while_runs_until_every_example_is_done():
    x = np.array([0.5, 3.0, 17.0, 1.5, 1.0])
    out, k = check(halve_until_small, x)
    assert k.tolist() == [0, 2, 5, 1, 0]
    check(newton_sqrt, np.array([2.0, 9.0, 0.25, 1e4]))
    check(log_until_negative, np.array([0.5, 3.0, 20.0, 1e10]))
    check(while_in_branch, np.array([3.0, 2.5, 1.0]), np.array([True, False, True]))


def scaled_sum(x, n):
    s = 0.0
    for i in range(n):
        s = s + x * (i + 1)
    return s


def sum_between(x, lo, hi):
    s = 0.0
    for i in range(lo, hi):
        s = s + x[i]
    return s


def countdown(n):
    total = 0
    while n > 0:
        total = total + n
        n = n - 1
    return total


def scale_if_large(x, s):
    if s > 1.0:
        x = x * s
    return x


def test_unbatched_conditions_and_ranges_stay_python():
    x = np.arange(12.0).reshape(4, 3)
    check(scaled_sum, x, 3, in_axes=(0, None))
    source = codax.vmap(scaled_sum, in_axes=(0, None)).source(x, 3)
    assert 'for i in range(n):' in source and 'xp.where' not in source
    check(scale_if_large, x, 1.5, in_axes=(0, None))
    source = codax.vmap(scale_if_large, in_axes=(0, None)).source(x, 1.5)
    assert 'if _t0:' in source and 'xp.where' not in source and 'rt.quiet' not in source
    check(countdown, np.array([0, 3, 5]))


def test_range_with_batched_bounds():
    x = np.arange(12.0).reshape(4, 3)
    got = codax.vmap(scaled_sum)(x, np.array([0, 2, 5, 1]))
    want = [scaled_sum(row, n) * np.ones(3) for row, n in zip(x, [0, 2, 5, 1])]
    np.testing.assert_allclose(got, want)
    y = np.arange(24.0).reshape(4, 6)
    check(sum_between, y, np.array([0, 2, 5, 1]), np.array([3, 6, 5, 2]))
    check(sum_between, y, 1, np.array([3, 6, 5, 2]), in_axes=(0, None, 0))
    check(sum_between, y[0], np.array([0, 2, 5, 1]), 6, in_axes=(None, 0, None))


def first_above(x, t):
    for i in range(x.shape[0]):
        if x[i] > t:
            return x[i] * 10.0
    return -1.0


def skip_and_stop(x):
    total = 0.0
    for v in x:
        if v < 0.0:
            continue
        total = total + v ** 2
        if total > 2.0:
            break
    return total


def early_return(x):
    s = np.sum(x)
    if s > 0.0:
        return s ** 2
    if s < -5.0:
        return -s
    return np.sum(np.sin(x))


def test_early_return_break_continue_in_batched_conditions():
    rng = np.random.default_rng(0)
    x = rng.random((6, 4))
    check(first_above, x, 0.7, in_axes=(0, None))
    check(first_above, x, rng.random(6))
    check(skip_and_stop, rng.normal(size=(8, 6)))
    check(early_return, np.array([[0.5, 0.3, -0.2], [-3.0, -2.5, 0.2], [-1.0, -0.5, 0.2]]))


def checked_sqrt(x):
    if x < 0.0:
        raise ValueError('negative input')
    return np.sqrt(x)


def raise_in_loop(x):
    while x > 1.0:
        x = x - 3.0
        if x < -1.5:
            raise ValueError('overshot')
    return x


def mismatched_in_branch(x, M):
    if x[0] > 0.0:
        x = M @ x
    return x


def test_raise_in_a_batched_branch_raises_if_any_example_takes_it():
    check(checked_sqrt, np.array([1.0, 4.0, 0.0]))
    state = np.geterr()
    with pytest.raises(ValueError, match='negative input'):
        codax.vmap(checked_sqrt)(np.array([1.0, -4.0, 9.0]))
    assert np.geterr() == state               # the error state is restored on the way out
    with pytest.raises(ValueError):           # an error in the generated code itself
        codax.vmap(mismatched_in_branch, in_axes=(0, None))(np.ones((2, 3)), np.ones((2, 5)))
    assert np.geterr() == state
    check(raise_in_loop, np.array([0.5, 3.5, 1.5]))
    with pytest.raises(ValueError, match='overshot'):
        codax.vmap(raise_in_loop)(np.array([0.5, 1.2]))


def grow_if_positive(x):
    out = []
    if x[0] > 0.0:
        out.append(x[0])
    return len(out)


def factorial(n):
    if n <= 1:
        return 1
    return n * factorial(n - 1)


def test_what_cannot_differ_between_examples_is_a_clear_error():
    with pytest.raises(SourceError, match="list 'out' grows or shrinks under a condition"):
        codax.vmap(grow_if_positive)(np.array([[1.0, 2.0], [-1.0, 2.0]]))
    with pytest.raises(SourceError, match='recursive call depends on a condition') as info:
        codax.vmap(factorial)(np.array([1, 3, 5]))
    assert 'test_vmap.py' in str(info.value) and 'factorial(n - 1)' in str(info.value)


# --------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------

def f(x, y):
    return np.sin(x) * y + x ** 2


def loss(w, x, t):
    return np.mean((np.tanh(x @ w) - t) ** 2)


def cube_sum(x):
    return np.sum(x ** 3)


def affine(A, x):
    return np.tanh(A @ x)


def with_aux(w, x):
    r = x @ w
    return np.sum(r ** 2), r


def power_sum(x, n):
    if n == 0:
        return 0.0 * x
    return x ** n + power_sum(x, n - 1)


def calls_helper(x, W):
    return np.sum(affine(W, x) ** 2) + power_sum(x[0], 3)


def directional(x, v):
    return codax.jvp(cube_sum, (x,), (v,))[1]


rng = np.random.default_rng(1)
X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
W = rng.normal(size=(3,))
XS, TS = rng.normal(size=(5, 6, 3)), rng.normal(size=(5, 6))


def test_vmap_of_vmap():
    got = check(codax.vmap(f), X[None], Y[None])
    assert got.shape == (1, 4, 3)
    inner = codax.vmap(f, in_axes=(0, None))            # all pairs: x from X[0], y from Y
    got = codax.vmap(inner, in_axes=(None, 0))(X[0], Y)
    want = np.stack([np.stack([f(x, y) for x in X[0]]) for y in Y])
    np.testing.assert_allclose(got, want)
    check(codax.vmap(f, in_axes=(0, None)), X, Y[0], in_axes=(1, None))


def test_vmap_with_unbatched_argument():
    check(f, X, Y[0], in_axes=(0, None))
    check(affine, rng.normal(size=(2, 3)), X, in_axes=(None, 0))


def test_per_example_gradients():
    grad = codax.grad(loss)
    got = check(grad, W, XS, TS, in_axes=(None, 0, 0))
    assert got.shape == (5, 3)
    check(codax.grad(loss, argnums=(0, 1)), W, XS, TS, in_axes=(None, 0, 0))
    check(codax.grad(loss, argnums=1), W, XS, TS, in_axes=(None, 0, 0))
    check(codax.grad(loss), np.stack([W] * 5), XS, TS)
    check(codax.grad(loss), np.stack([W] * 5, axis=1), XS, TS, in_axes=(1, 0, 0), out_axes=1)
    check(codax.value_and_grad(loss), W, XS, TS, in_axes=(None, 0, 0))
    check(codax.grad(with_aux, has_aux=True), W, XS, in_axes=(None, 0))
    check(codax.value_and_grad(with_aux, has_aux=True), W, XS, in_axes=(None, 0))
    check(codax.grad(sqrt_or_log), np.array([4.0, -2.0, 0.25]))
    check(codax.grad(halve_until_small, has_aux=True), np.array([0.5, 3.0, 17.0]))


def test_grad_of_a_vmapped_function():
    def total(w):
        return codax.vmap(loss, in_axes=(None, 0, 0))(w, XS, TS).sum()
    got = codax.grad(total)(W)
    want = sum(codax.grad(loss)(W, x, t) for x, t in zip(XS, TS))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    got = codax.grad(lambda x: codax.vmap(ternary)(x).sum())(np.array([0.25, 2.0]))
    np.testing.assert_allclose(got, [-1.0, 4.0])      # through the select of both branches


def test_jacobians_of_and_within_vmap():
    x = rng.normal(size=3)
    np.testing.assert_allclose(codax.jacfwd(codax.vmap(np.sin))(x), np.diag(np.cos(x)))
    np.testing.assert_allclose(codax.jacrev(codax.vmap(np.sin))(x), np.diag(np.cos(x)))
    jac = codax.jacrev(codax.vmap(cube_sum))(X)                     # (4,) from (4, 3)
    assert jac.shape == (4, 4, 3)
    for i in range(4):
        np.testing.assert_allclose(jac[i, i], 3 * X[i] ** 2)
        np.testing.assert_allclose(np.delete(jac[i], i, axis=0), 0.0)
    check(codax.jacfwd(cube_sum), X)
    check(codax.jacrev(cube_sum), X)
    check(codax.jacfwd(affine, argnums=1), rng.normal(size=(2, 3)), X, in_axes=(None, 0))
    check(codax.hessian(cube_sum), X)


def test_vmap_of_jacrev_of_a_matrix_function():
    check(codax.jacrev(affine, argnums=1), rng.normal(size=(2, 3)), X, in_axes=(None, 0))


def test_vmap_of_jvp():
    check(directional, X, Y)
    check(directional, X, Y[0], in_axes=(0, None))


def test_vmap_of_functions_calling_user_functions():
    check(calls_helper, X, rng.normal(size=(2, 3)), in_axes=(0, None))
    check(power_sum, X, 3, in_axes=(0, None))     # recursion on the unbatched n
    check(codax.grad(calls_helper), X, rng.normal(size=(2, 3)), in_axes=(0, None))


# --------------------------------------------------------------------------
# vmap(grad) of code that calls user functions: each call's derivative is
# chosen at compile time (batch_rules.static_vjp_call), so what it returns
# has known facts and the code around it stays vectorized.
# --------------------------------------------------------------------------

def logit(params, x):
    h = np.tanh(x @ params['W'] + params['b'])
    return h @ params['v']


def bce(z, y):
    return np.logaddexp(0.0, z) - y * z


def helpers_loss(params, x, y):
    return bce(logit(params, x), y)


def cell(p, h, x):
    return np.tanh(h @ p['Wh'] + x @ p['Wx'])


def rnn_loss(p, xs, y):
    h = np.zeros(p['Wh'].shape[0])
    for t in range(xs.shape[0]):
        h = cell(p, h, xs[t])
    return np.sum((h - y) ** 2)


def pair(x, w):
    return x * w, np.sum(x ** 2)


def pair_loss(w, x):
    a, b = pair(x, w)
    return np.sum(a) + b


def pick(x, k):
    return np.sum(x[k] * x)


def pick_loss(x):
    return pick(x, np.argmax(x)) + pick(x, 0)


def _grad_loop(g, args, axes):
    size = next(np.shape(tree_leaves(a)[0])[0] for a, ax in zip(args, axes) if ax == 0)
    return stack([g(*[example(a, ax, i) for a, ax in zip(args, axes)]) for i in range(size)])


@pytest.mark.parametrize('case', ['helpers', 'rnn shared', 'rnn batched', 'pair', 'pick'])
def test_vmap_of_grad_through_user_functions(case):
    params = {'W': rng.normal(size=(3, 4)), 'b': rng.normal(size=4), 'v': rng.normal(size=4)}
    p = {'Wh': 0.5 * rng.normal(size=(3, 3)), 'Wx': 0.5 * rng.normal(size=(2, 3))}
    f, args, axes = {
        'helpers': (helpers_loss, (params, X, rng.normal(size=4)), (None, 0, 0)),
        'rnn shared': (rnn_loss, (p, rng.normal(size=(4, 5, 2)), X), (None, 0, 0)),
        'rnn batched': (rnn_loss, (stack([p] * 4), rng.normal(size=(4, 5, 2)), X), (0, 0, 0)),
        'pair': (pair_loss, (W, X), (None, 0)),
        'pick': (pick_loss, (X,), (0,)),
    }[case]
    g = codax.grad(f)
    vg = codax.vmap(g, in_axes=axes)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        got = vg(*args)
    assert_tree_allclose(got, _grad_loop(g, args, axes), rtol=RTOL, atol=ATOL)
    source = vg.source(*args)
    assert 'rt.sweeps_for(' in source                    # chosen at compile time
    assert 'rt.vmapped(rt.vjp_call' not in source and 'rt.batch_loop' not in source
    assert not any(vg.__codax_transformed__._summed_for.values())


def test_vmap_of_grad_of_a_helper_loss_is_vectorized():
    params = {'W': rng.normal(size=(3, 4)), 'b': rng.normal(size=4), 'v': rng.normal(size=4)}
    source = codax.vmap(codax.grad(helpers_loss), in_axes=(None, 0, 0)).source(
        params, X, rng.normal(size=4))
    # the values that come back from the calls have known ranks: no run-time lifting
    assert 'rt.lift_batched' not in source and 'rt.example_rank' not in source


def mask_sum(x):
    return np.sum(x[x > 0.0] ** 2)


def test_a_boolean_mask_that_differs_between_examples():
    same = np.array([[1.0, -2.0, 3.0], [2.0, -1.0, 0.5]])       # as many True per example
    check(mask_sum, same)
    with pytest.raises(ValueError, match='results of different shapes'):
        codax.vmap(mask_sum)(np.array([[1.0, -2.0, 3.0], [2.0, 1.0, 0.5]]))


# Lists and accumulators around loops, with and without grad.

def pre_append(x):
    xs = [np.zeros(3)]                  # unbatched items, then batched ones in the loop
    xs.append(np.ones(3))
    for i in range(3):
        xs.append(x * i)
    return np.sum(np.stack(xs) ** 2)


def growing_accumulator(x, M):
    acc = 0.0                           # a number, then a matrix (unbatched)
    for i in range(3):
        acc = acc + M * i
    return np.sum(acc @ x)


def list_of_parts(x):
    parts = []
    for i in range(3):
        parts.append(x[i] * x)
    total = 0.0
    for p in parts:                     # len() of a batched list: its length, not a shape
        total = total + np.sum(p ** 2)
    return total + np.sum(sum(parts))   # sum() of a batched list: its items added


@pytest.mark.parametrize('fn, args, in_axes', [
    (pre_append, (X,), 0),
    (growing_accumulator, (X, rng.normal(size=(3, 3))), (0, None)),
    (growing_accumulator, (X, rng.normal(size=(4, 3, 3))), (0, 0)),
    (list_of_parts, (X,), 0),
], ids=['pre_append', 'accumulator', 'accumulator batched', 'list_of_parts'])
def test_lists_and_accumulators_in_loops(fn, args, in_axes):
    check(fn, *args, in_axes=in_axes)
    check(codax.grad(fn), *args, in_axes=in_axes)


def _check_one_row(r):
    if np.shape(r) != (3,):
        raise ValueError(f'expected one row, got shape {np.shape(r)}')


def _checked_double(x):
    _check_one_row(x)                 # a call whose result is dropped
    print(np.sum(x))
    return x * 2


def test_a_call_statement_sees_one_example(capsys):
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(codax.vmap(_checked_double)(x), x * 2)
    assert capsys.readouterr().out.split() == ['3.0', '12.0']
