"""Variational inference for Bayesian logistic regression: random keys, vmap and grad together.

The model: a tumour is malignant or benign (y = 0 or 1) with probability
sigmoid(x @ w + b), and the weights have a Gaussian prior N(0, 1). Instead of
one best w we want the posterior p(w | data). Variational inference fits an
approximation q(w) = N(mu, diag(sigma^2)) by maximizing the evidence lower bound

    ELBO(mu, sigma) = E_q[ log p(data | w) + log p(w) ] + entropy(q).

The expectation is a Monte Carlo average over S draws, made differentiable in
(mu, sigma) by the reparameterization trick: w = mu + sigma * eps with
eps ~ N(0, I) drawn from a key. `elbo_term` below is written for ONE draw (one
key); `codax.vmap` maps it over S keys from `codax.random.split`, drawing for
each key exactly what a Python loop would, and `codax.grad` differentiates the
average (the draws eps are constants to it). Adam then climbs the ELBO.

Data: the Breast Cancer Wisconsin (Diagnostic) set shipped with codax (569
tumours, 30 features; UCI, CC BY 4.0).

Run: python examples/variational_inference.py
"""
import numpy as np

import codax
from codax import random
from codax.datasets import load_breast_cancer

PRIOR_VAR = 1.0


def standardized_split(key, test_fraction=0.25):
    """Shuffled train/test split, features standardized with the training statistics."""
    data = load_breast_cancer()
    order = random.permutation(key, len(data.y))
    n_test = int(round(test_fraction * len(order)))
    test, train = order[:n_test], order[n_test:]
    X = (data.X - data.X[train].mean(axis=0)) / data.X[train].std(axis=0)
    return X[train], data.y[train], X[test], data.y[test]


def log_joint(theta, X, y):
    """log p(y | X, w, b) + log p(w, b) for one weight vector theta = (w, b)."""
    z = X @ theta[:-1] + theta[-1]
    log_lik = np.sum(y * z - np.logaddexp(0.0, z))
    return log_lik - 0.5 * np.sum(theta ** 2) / PRIOR_VAR


def elbo_term(params, key, X, y):
    """log p(data, theta) at ONE draw theta ~ q, by the reparameterization trick."""
    eps = random.normal(key, params["mu"].shape)
    theta = params["mu"] + np.exp(params["log_sigma"]) * eps
    return log_joint(theta, X, y)


def elbo(params, keys, X, y):
    """Monte Carlo ELBO: the average over one draw per key, plus q's entropy (up to a constant)."""
    terms = codax.vmap(elbo_term, in_axes=(None, 0, None, None))(params, keys, X, y)
    return np.mean(terms) + np.sum(params["log_sigma"])


def fit(X, y, key, steps=300, samples=16, lr=0.05):
    """Adam ascent on the ELBO, with fresh keys for every step."""
    d = X.shape[1] + 1
    params = {"mu": np.zeros(d), "log_sigma": np.full(d, -1.0)}
    m = {k: np.zeros(d) for k in params}
    v = {k: np.zeros(d) for k in params}
    grad_elbo = codax.grad(elbo)
    for t in range(1, steps + 1):
        key, step_key = random.split(key)
        g = grad_elbo(params, random.split(step_key, samples), X, y)
        for k in params:
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
            step = lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
            params[k] = params[k] + step               # ascent: maximize the ELBO
    return params


def predict(params, X, key, samples=256):
    """The posterior predictive probability of y = 1, averaged over draws from q."""
    eps = codax.vmap(random.normal, in_axes=(0, None))(random.split(key, samples),
                                                       params["mu"].shape)
    thetas = params["mu"] + np.exp(params["log_sigma"]) * eps     # (samples, d)
    p = 1.0 / (1.0 + np.exp(-(X @ thetas[:, :-1].T + thetas[:, -1])))
    return p.mean(axis=1)


def main(steps=300, verbose=True):
    data_key, fit_key, eval_key = random.split(random.key(0), 3)
    Xtr, ytr, Xte, yte = standardized_split(data_key)
    params = fit(Xtr, ytr, fit_key, steps=steps)
    init = {"mu": np.zeros_like(params["mu"]), "log_sigma": np.full_like(params["mu"], -1.0)}
    eval_keys = random.split(eval_key, 1024)
    before, after = elbo(init, eval_keys, Xtr, ytr), elbo(params, eval_keys, Xtr, ytr)
    mean_acc = np.mean(((Xte @ params["mu"][:-1] + params["mu"][-1]) > 0) == (yte == 1))
    pred_acc = np.mean((predict(params, Xte, eval_key) > 0.5) == (yte == 1))
    sigma = np.exp(params["log_sigma"])
    if verbose:
        print(f"{len(ytr)} training and {len(yte)} test tumours, {Xtr.shape[1]} features; "
              f"{steps} Adam steps of 16 draws each")
        print(f"ELBO (1024 draws, up to a constant): {before:.1f} -> {after:.1f}")
        print(f"test accuracy: posterior mean {mean_acc:.1%}, posterior predictive {pred_acc:.1%}")
        print(f"posterior std of the weights: {sigma[:-1].min():.3f} to {sigma[:-1].max():.3f}")
    return params, before, after, mean_acc, pred_acc


if __name__ == "__main__":
    main()
