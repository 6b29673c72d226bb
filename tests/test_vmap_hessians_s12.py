"""Per-example second derivatives (vmap(hessian(f)), vmap(jacfwd(grad(f))))
of loops that accumulate from a zero, of codax.lax.while_loop over a closure,
and of codax.lax.cond on a predicate that differs between examples: against a
Python loop of codax.hessian over the examples, and against finite
differences of codax.grad."""
import numpy as np
import pytest

import codax
import runtime as rt
from codax import lax
from tests.helpers import numeric_jacobian

RNG = np.random.RandomState(12)
C = RNG.uniform(0.5, 1.5, size=(3, 2, 2))      # (c of rank 2: its Hessian's basis of 4 is
X = RNG.normal(size=(3, 4, 2, 2))              # no size of c's axes)


def _examples(batched, i, axes):
    return tuple(a[i] if ax == 0 else a for a, ax in zip(batched, axes))


def _check(f, args, axes, argnums=0, fd_example=None, rtol=1e-10):
    """vmap(hessian(f)) against a loop of hessian, and example `fd_example`
    against central differences of grad."""
    got = codax.vmap(codax.hessian(f, argnums), in_axes=axes)(*args)
    want = np.stack([codax.hessian(f, argnums)(*_examples(args, i, axes)) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12)
    if fd_example is not None:
        example = list(_examples(args, fd_example, axes))

        def gradient(v):
            return codax.grad(f, argnums)(*example[:argnums], v, *example[argnums + 1:])
        numeric = numeric_jacobian(gradient, example[argnums], eps=1e-6)
        np.testing.assert_allclose(got[fd_example], numeric, rtol=1e-5, atol=1e-6)
    return got


# ---- 1. a value accumulated in a loop from a zero ----
# (its tangent enters the loop as the number 0.0 of no batch axis and unknown
# rank: 0.0 * c must still be batched, rt.lift_batched with the batch size)

def horner_zeros_like(c, x):
    y = np.zeros_like(c)
    for k in range(x.shape[0]):
        y = y * c + x[k] ** 2
    return np.sum(y)


def horner_number(c, x):
    y = 0.0
    for k in range(x.shape[0]):
        y = y * c + x[k] ** 2
    return np.sum(np.sin(y))


def horner_times_zero(c, x):
    y = c * 0
    for k in range(x.shape[0]):
        y = y * c + x[k] * c
    return np.sum(y ** 2)


def horner_while(c, x):
    y = np.zeros_like(c)
    k = 0
    while k < x.shape[0]:
        y = y * c + x[k] ** 2
        k += 1
    return np.sum(y * c)


def horner_if(c, x):
    y = np.zeros_like(c)
    for k in range(x.shape[0]):
        if k > 0:
            y = y * c + x[k] ** 2
        else:
            y = y + np.cos(x[k] * c)
    return np.sum(y)


ACCUMULATORS = [horner_zeros_like, horner_number, horner_times_zero, horner_while, horner_if]


@pytest.mark.parametrize('f', ACCUMULATORS)
def test_accumulator_from_zero_batched_c(f):
    _check(f, (C, X[0]), (0, None))


@pytest.mark.parametrize('f', [horner_zeros_like, horner_number])
def test_accumulator_from_zero_batched_x_and_both(f):
    _check(f, (C[0], X), (None, 0), fd_example=2)      # (the batch size 3 against c's 2)
    _check(f, (C, X), (0, 0), argnums=1)


def test_accumulator_from_zero_finite_differences():
    _check(horner_times_zero, (C, X), (0, 0), fd_example=1)


def test_accumulator_jacfwd_of_grad_and_float32():
    got = codax.vmap(codax.jacfwd(codax.grad(horner_number)), in_axes=(0, None))(C, X[0])
    want = np.stack([codax.hessian(horner_number)(c, X[0]) for c in C])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    c32, x32 = C.astype(np.float32), X[0].astype(np.float32)
    got = codax.vmap(codax.hessian(horner_zeros_like), in_axes=(0, None))(c32, x32)
    want = np.stack([codax.hessian(horner_zeros_like)(c, x32) for c in c32])
    assert got.dtype == want.dtype == np.float32     # the zero's dtype does not widen it
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_lift_batched_gives_a_number_the_batch_axis():
    c = np.ones((2, 5), np.float32)
    zero = rt.lift_batched(0.0, 2, 3, (0.0, c))
    assert zero.shape == (3, 1, 1) and not zero.any()
    assert (zero * c).dtype == np.float32           # as 0.0 * c
    mask = np.ones((2, 5), bool)                    # 0.0 + mask is float64, not the mask's
    assert (rt.lift_batched(0.0, 2, 3, (0.0, mask)) + mask).dtype == np.float64
    np.testing.assert_array_equal(rt.lift_batched(np.float64(2.0), 1, 3), np.full((3, 1), 2.0))
    assert rt.lift_batched(0.0, 0, 3) == 0.0            # a number against numbers stays one
    assert rt.lift_batched(0.0, 2) == 0.0               # (no batch size: as before)


# ---- 2. lax.while_loop, its body a closure over a parameter ----

def newton_root(a, x0):
    def body(val):                      # five Newton steps for sqrt(a)
        k, x = val
        return k + 1, 0.5 * (x + a / x)

    def more(val):
        return val[0] < 5
    return np.sum(lax.while_loop(more, body, (0, x0))[1] ** 3)


def below_three(v):
    return v[0] < 3


def counted_global_test(p, x):
    def body(v):
        return v[0] + 1, np.sin(p * v[1]) * x
    return np.sum(lax.while_loop(below_three, body, (0, x))[1])


X0 = RNG.uniform(0.8, 1.2, size=(3, 2, 2))


# (each compiles many batched sweeps: a few seconds apiece, so one case each)

def test_while_loop_newton_closures():
    _check(newton_root, (C, X0), (0, 0), fd_example=1)


def test_while_loop_global_test_function():
    _check(counted_global_test, (C, X0[0]), (0, None))


# ---- 3. lax.cond on a predicate that differs between examples ----

def cond_two_operands(x, w):
    y = lax.cond(x[0] > w[0], lambda a, b: a * b, lambda a, b: a / b, x, w)
    return np.sum(np.tanh(y))


XC = np.array([[0.7, -0.4], [-0.9, 0.3], [0.5, 0.8]])
WC = np.array([[0.2, 1.3], [0.6, -1.1], [0.9, 0.4]])


def test_cond_batched_predicate():
    # (one case: each compiles many batched sweeps, several seconds apiece)
    assert len({bool(x[0] > w[0]) for x, w in zip(XC, WC)}) == 2     # both branches taken
    _check(cond_two_operands, (XC, WC), (0, 0), fd_example=1)


def test_select_takes_the_zero_for_a_container():
    got = rt.select(np.array([True, False]), (np.ones(2), np.full((2, 3), 2.0)), 0.0, (0, None))
    np.testing.assert_array_equal(got[0], [1.0, 0.0])
    np.testing.assert_array_equal(got[1], [[2.0] * 3, [0.0] * 3])


def test_an_accumulator_from_zero_keeps_numpy_dtypes_under_vmap():
    # y = 0.0 summed with bool or int8 rows is float64 in NumPy; with float32
    # rows, float32 (a Python number does not widen an array)
    def accumulate(c, x):
        y = 0.0
        for k in range(x.shape[0]):
            y = y * c + x[k]
        return y
    for dtype in (bool, np.int8, np.float32):
        c, x = np.ones((3, 5), dtype), np.ones((3, 4, 5), dtype)
        out = codax.vmap(accumulate)(c, x)
        loop = np.stack([accumulate(ci, xi) for ci, xi in zip(c, x)])
        assert out.dtype == loop.dtype, dtype
        np.testing.assert_array_equal(out, loop)
