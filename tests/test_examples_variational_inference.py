"""examples/variational_inference.py: a Gaussian variational posterior for Bayesian logistic
regression, with the Monte Carlo ELBO drawn by codax.vmap over random keys and
differentiated by codax.grad."""

import numpy as np
import pytest

import codax
from codax import random
from helpers import load_example


@pytest.fixture(scope="module")
def vi():
    return load_example('variational_inference.py')


@pytest.fixture(scope="module")
def problem(vi):
    Xtr, ytr, _, _ = vi.standardized_split(random.key(1))
    d = Xtr.shape[1] + 1
    k1, k2, k3 = random.split(random.key(2), 3)
    params = {"mu": 0.3 * random.normal(k1, (d,)), "log_sigma": -1.0 + 0.2 * random.normal(k2, (d,))}
    return params, random.split(k3, 8), Xtr[:64], ytr[:64]


def test_elbo_is_the_average_over_keys(vi, problem):
    params, keys, X, y = problem
    loop = np.mean([vi.elbo_term(params, k, X, y) for k in keys]) + np.sum(params["log_sigma"])
    np.testing.assert_allclose(vi.elbo(params, keys, X, y), loop, rtol=1e-12)


def test_elbo_gradient_matches_a_loop_of_grad(vi, problem):
    params, keys, X, y = problem
    got = codax.grad(vi.elbo)(params, keys, X, y)
    per_key = [codax.grad(vi.elbo_term)(params, k, X, y) for k in keys]
    for name in params:
        want = np.mean([g[name] for g in per_key], axis=0)
        if name == "log_sigma":
            want = want + 1.0                           # the entropy's sum(log_sigma)
        np.testing.assert_allclose(got[name], want, rtol=1e-10, atol=1e-10)


def test_fit_raises_the_elbo_and_classifies(vi):
    _, before, after, mean_acc, pred_acc = vi.main(steps=150, verbose=False)
    assert after > before + 300
    assert mean_acc > 0.93 and pred_acc > 0.93
