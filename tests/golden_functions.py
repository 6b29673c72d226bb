"""Five representative functions whose generated gradient source is pinned
by tests/test_golden.py (the stored files are tests/golden/<name>.py).

Editing a function here changes its golden file: regenerate with
``CODAX_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py``.
"""

import numpy as np


# ---- 1. straight-line loss with dict params ------------------------------

def mlp_loss(params, x, y):
    return np.mean((np.tanh(x @ params["W"] + params["b"]) - y) ** 2)


# ---- 2. if / else on data --------------------------------------------------

def branch_on_data(x, w):
    s = np.sum(x * w)
    if s > 0.0:
        out = np.sum(np.sin(x) * w)
    else:
        out = np.sum(x ** 2) - s
    return out


# ---- 3. for loop with an accumulator --------------------------------------

def loop_accumulate(x):
    acc = 0.0
    for i in range(4):
        acc = acc + np.sum(np.cos(x * (i + 1)))
    return acc


# ---- 4. while loop with break ----------------------------------------------

def while_break(x):
    y = x
    k = 0
    while k < 10:
        y = np.tanh(y) * 1.5
        if np.sum(y) > 2.0:
            break
        k = k + 1
    return np.sum(y ** 2)


# ---- 5. a call to a user helper -------------------------------------------

def softplus(z):
    return np.log1p(np.exp(z))


def calls_helper(x, w):
    h = softplus(x * w)
    return np.sum(h * x)


def _rng():
    return np.random.default_rng(1234)


def _mlp_args():
    r = _rng()
    params = {"W": r.normal(size=(3, 2)), "b": r.normal(size=2)}
    return (params, r.normal(size=(4, 3)), r.normal(size=(4, 2)))


def _two(n=3):
    r = _rng()
    return (r.normal(size=n), r.normal(size=n))


# name -> (function, factory of example arguments)
GOLDEN = {
    "mlp_loss": (mlp_loss, _mlp_args),
    "branch_on_data": (branch_on_data, _two),
    "loop_accumulate": (loop_accumulate, lambda: (_rng().normal(size=3),)),
    "while_break": (while_break, lambda: (_rng().uniform(0.1, 0.5, size=3),)),
    "calls_helper": (calls_helper, _two),
}
