"""Second derivatives through loops, batched (session 11).

jvp of grad's code keeps grad's tape local to the function (its tangent is a
list pushed and popped alongside it, not `rt.dense(d_stack, _stack)`), so vmap
gives each saved value its own form: a branch test or a loop index saved
unbatched is popped back unbatched and the `if` on it stays Python.
References: a central finite-difference Jacobian of the gradient (checked
itself against finite differences of f), and a per-example loop."""
import numpy as np
import pytest

import codax
from helpers import assert_tree_allclose, numeric_grad

XS = np.array([[0.3, -0.7, 1.1], [0.5, 0.2, -0.4]])


def _branch_on_the_index(x):
    s = 0.0
    for i in range(4):
        if i % 2 == 0:
            s = s + np.sin(x[i % 3]) * x[0]
        else:
            s = s * x[1]
    return s


def _while_on_a_count(x):
    s = x[0]
    i = 0
    while i < 3:
        s = s * np.cos(x[i]) + x[2]
        i += 1
    return s


def _loop_with_break(x):
    s = x[0]
    for i in range(5):
        if i == 3:
            break
        s = s * np.cos(x[i % 3]) + x[1]
    return s


def _loop_with_continue(x):
    s = 0.0
    for i in range(4):
        if i % 2 == 1:
            continue
        s = s + np.sin(x[i % 3]) * s + x[2]
    return s


FUNCTIONS = [_branch_on_the_index, _while_on_a_count, _loop_with_break, _loop_with_continue]


def _hessian_by_differences(f, x, eps=1e-5):
    """The Jacobian of codax's gradient by central differences, that gradient
    first checked against finite differences of f."""
    grad = codax.grad(f)
    assert_tree_allclose(grad(x), numeric_grad(f, (x,)), rtol=1e-6, atol=1e-8)
    cols = [(grad(x + eps * e) - grad(x - eps * e)) / (2 * eps) for e in np.eye(len(x))]
    return np.stack(cols, axis=1)


@pytest.mark.parametrize('f', FUNCTIONS, ids=lambda f: f.__name__)
def test_vmap_of_hessian_through_a_loop(f):
    want = np.stack([_hessian_by_differences(f, x) for x in XS])
    assert_tree_allclose(codax.vmap(codax.hessian(f))(XS), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('f', [_branch_on_the_index, _loop_with_break],
                         ids=lambda f: f.__name__)
def test_vmap_of_jacfwd_of_grad_through_a_loop(f):
    want = np.stack([codax.hessian(f)(x) for x in XS])          # a per-example loop
    assert_tree_allclose(want[0], _hessian_by_differences(f, XS[0]), rtol=1e-6, atol=1e-7)
    assert_tree_allclose(codax.vmap(codax.jacfwd(codax.grad(f)))(XS), want)
