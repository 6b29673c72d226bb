"""Per-example derivatives through codax.lax.switch with an index that differs
between examples, and vmap of Jacobians (hessian, jacfwd, jacrev, of grad or
not) of a recursive module-level function: against a Python loop of the
unbatched transformation over the examples, and against finite differences."""
import inspect

import numpy as np
import pytest

import codax
import runtime as rt
from codax import lax
from tests.helpers import numeric_jacobian


def _loop(transformed, args, axes):
    """The transformation called per example: the reference."""
    size = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    return np.stack([transformed(*[np.take(a, i, axis=ax) if ax is not None else a
                                   for a, ax in zip(args, axes)]) for i in range(size)])


def _check(transform, f, args, axes, **options):
    got = codax.vmap(transform(f, **options), in_axes=axes)(*args)
    np.testing.assert_allclose(got, _loop(transform(f, **options), args, axes),
                               rtol=1e-10, atol=1e-12)
    return got


# ---- 1. lax.switch with a batched index ----

def sine_branch(x):
    return np.sin(x) * x


def square_branch(x):
    return np.cos(x) + x ** 2


def exp_branch(x):
    return np.exp(0.5 * x)


BRANCHES = [sine_branch, square_branch, exp_branch]


def by_signs(x):
    index = (x[0] > 0).astype(int) + (x[1] > 0)
    return np.sum(lax.switch(index, BRANCHES, x) * x)


def by_index(x, i):
    return np.sum(np.tanh(lax.switch(i, BRANCHES, x)))


def by_index_reference(x, i):
    return np.sum(np.tanh(BRANCHES[min(max(int(i), 0), 2)](x)))


XS = np.array([[-0.5, -0.3, 0.2], [0.4, -0.7, 0.1], [0.6, 0.9, -0.2]])   # branches 0, 1, 2
INDICES = np.array([-1, 1, 5])                      # clamped to 0, 1, 2, as in JAX


def test_switch_plain_calls_clamp_and_grad():
    for x, i in zip(XS, INDICES):
        assert by_index(x, i) == by_index_reference(x, i)
        np.testing.assert_allclose(codax.grad(by_index)(x, i),
                                   numeric_jacobian(lambda v: by_index_reference(v, i), x),
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(codax.jacfwd(by_index)(x, i), codax.grad(by_index)(x, i),
                                   rtol=1e-12)
    np.testing.assert_allclose(codax.jacrev(lambda v: lax.switch(7, BRANCHES, v))(XS[0]),
                               numeric_jacobian(exp_branch, XS[0]), rtol=1e-6, atol=1e-8)


def test_switch_vmap_and_vmap_grad_per_example_index():
    np.testing.assert_allclose(codax.vmap(by_signs)(XS), [by_signs(x) for x in XS])
    _check(codax.grad, by_signs, (XS,), (0,))
    _check(codax.grad, by_index, (XS, INDICES), (0, 0))


def test_switch_vmap_hessian_per_example_index():
    assert sorted(int((x[0] > 0)) + int(x[1] > 0) for x in XS) == [0, 1, 2]    # every branch
    got = _check(codax.hessian, by_signs, (XS,), (0,))
    numeric = numeric_jacobian(lambda v: codax.grad(by_signs)(v), XS[1], eps=1e-6)
    np.testing.assert_allclose(got[1], numeric, rtol=1e-5, atol=1e-6)
    got = _check(codax.hessian, by_index, (XS, INDICES), (0, 0))
    reference = numeric_jacobian(lambda v: numeric_jacobian(lambda u: by_index_reference(u, 5), v,
                                                        eps=1e-4), XS[2], eps=1e-4)
    np.testing.assert_allclose(got[2], reference, rtol=1e-4, atol=1e-5)


def test_switch_vmap_jacobians_of_grad_and_of_vector_outputs():
    _check(lambda f: codax.jacfwd(codax.grad(f)), by_index, (XS, INDICES), (0, 0))

    def vector(x, i):
        return lax.switch(i, BRANCHES, x) * x[0]
    _check(codax.jacrev, vector, (XS, INDICES), (0, 0))
    _check(codax.jacfwd, vector, (XS, INDICES), (0, 0))


def test_switch_source_reads_as_plain_ifs():
    lax.switch(0, BRANCHES, XS[0])
    outer = inspect.getsource(lax.switch.with_1_operand)
    assert 'chain = _chain(len(branches), 1)' in outer
    chain = inspect.getsource(lax._chain(3, 1))
    assert chain.splitlines()[0] == 'def switch_3_branches_1_operand(i, branches, operand0):'
    for line in ('take_0 = i <= 0', 'take_1 = i == 1', 'if take_0:', 'elif take_1:', 'else:',
                 'fun = branches[2]', 'out = fun(operand0)'):
        assert line in chain
    assert 'if' not in inspect.getsource(lax._chain(1, 0))      # one branch: just the call
    with pytest.raises(ValueError, match='at least one branch'):
        lax._chain(0, 1)


def test_select_takes_the_zero_for_a_container_inside_a_list():
    # (the adjoint of a list of closures: each branch of switch reads one)
    cond = np.array([True, False])
    x = [0.0, (np.ones(2),)]
    y = [(np.full(2, 2.0),), 0.0]
    got = rt.select(cond, x, y, 0)
    np.testing.assert_array_equal(got[0][0], [0.0, 2.0])
    np.testing.assert_array_equal(got[1][0], [1.0, 0.0])
    assert rt.select(cond, [0.0], [0.0], 0) == [0.0]           # the zero stays the zero
    adjoint = rt.select_vjp([(np.ones(2),), (np.ones(2),)], cond, x, y, 0, 0)
    assert adjoint[0] == 0.0                                   # the zero's adjoint: the zero
    np.testing.assert_array_equal(adjoint[1][0], [1.0, 0.0])


# ---- 2. vmap of Jacobians of a recursive function ----

def power_sum(x, k):
    if k == 0:
        return np.sum(x)
    return np.sum(np.sin(x)) + power_sum(x * 0.9, k - 1)


def power_sum_reference(x, k):
    return np.sum(x * 0.9 ** k) + sum(np.sum(np.sin(x * 0.9 ** j)) for j in range(k))


def scaled(w, x, k):
    if k == 0:
        return np.sum(w * x)
    return np.sum(np.tanh(w * x)) + scaled(w, x * w, k - 1)


def vector_power(x, k):
    if k == 0:
        return x
    return np.sin(x) + vector_power(x * 0.9, k - 1)


W = np.array([0.3, -1.2, 0.8])


def test_recursive_vmap_hessian_against_finite_differences():
    got = _check(codax.hessian, power_sum, (XS, 2), (0, None))
    numeric = numeric_jacobian(lambda v: numeric_jacobian(lambda u: power_sum_reference(u, 2), v,
                                                      eps=1e-4), XS[1], eps=1e-4)
    np.testing.assert_allclose(got[1], numeric, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.diagonal(got, axis1=1, axis2=2),
                               -(np.sin(XS) + 0.81 * np.sin(0.9 * XS)), rtol=1e-12)


def test_recursive_vmap_jacobians_of_grad_and_of_vectors():
    _check(lambda f: codax.jacfwd(codax.grad(f)), power_sum, (XS, 2), (0, None))
    _check(codax.jacrev, vector_power, (XS, 2), (0, None))
    _check(codax.jacfwd, vector_power, (XS, 2), (0, None))


def test_recursive_vmap_hessian_axes_and_unbatched_argument():
    got = codax.vmap(codax.hessian(power_sum), in_axes=(1, None), out_axes=1)(XS.T, 2)
    np.testing.assert_allclose(got, np.stack([codax.hessian(power_sum)(x, 2) for x in XS], 1),
                               rtol=1e-10, atol=1e-12)
    # w, differentiated, shared by the examples
    _check(codax.hessian, scaled, (W, XS, 2), (None, 0, None))


def test_recursive_vmap_with_a_batched_depth_loops_over_examples():
    # vmap(power_sum) itself is refused here (the recursion depends on a
    # batched k): the Jacobians fall back to a loop over the examples
    depths = np.array([0, 1, 3])
    for transform in (codax.hessian, codax.jacrev):
        batched = codax.vmap(transform(power_sum))
        got = batched(XS, depths)
        np.testing.assert_allclose(got, [transform(power_sum)(x, int(k))
                                         for x, k in zip(XS, depths)], rtol=1e-12)
    assert batched.source(XS, depths).startswith('# a Python loop over the examples')


def test_recursive_vmap_hessian_source_names_the_summed_form():
    batched = codax.vmap(codax.hessian(power_sum), in_axes=(0, None))
    batched(XS, 2)
    text = batched.source(XS, 2)
    assert 'def perturbed(perturbation, a0, a1):' in text and 'def vmap_power_sum' in text


def halved(x):
    s = np.sum(x ** 2)
    while s > 1.0:                  # a trip count per example: the tape too
        s = s / 2
        x = x * 0.5
    return np.sum(np.sin(x) * x)


def test_per_example_trip_counts_vmap_hessian_and_grad_of_vmap_grad():
    rows = np.array([[0.5, 0.3], [2.0, 1.0], [4.0, -3.0]])      # 0, 3 and 5 halvings
    _check(codax.hessian, halved, (rows,), (0,))

    def total(x):                   # through vmap(grad)'s summed form, as source
        return np.sum(codax.vmap(codax.grad(halved))(x) ** 2)
    np.testing.assert_allclose(codax.grad(total)(rows), numeric_jacobian(total, rows),
                               rtol=1e-6, atol=1e-8)
