"""Differentially private training (DP-SGD) with per-example gradients from codax.vmap.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016)
limits how much any single training example can move the model. Each step it

  1. computes the gradient of the loss for every example in the batch separately,
  2. clips each example's gradient to L2 norm at most C,
  3. sums the clipped gradients and adds Gaussian noise of standard deviation sigma * C,
  4. divides by the batch size and takes an ordinary gradient step.

Step 1 is the one plain autodiff does not give you: `grad` of a batch loss
returns only the sum. Here the loss is written for ONE example, and
`codax.vmap(codax.grad(loss), in_axes=(None, 0, 0))` maps its gradient over the
rows of a batch (`None`: the parameters are shared, not mapped), returning
each parameter's gradient with a leading batch axis.

The data is the Breast Cancer Wisconsin (Diagnostic) set shipped with codax
(569 tumours, 30 features, malignant or benign; UCI, CC BY 4.0). We train a
logistic regression and a small tanh MLP. Turning sigma into a privacy
guarantee (epsilon, delta) needs a privacy accountant, which is beyond this
example; the printout gives the numbers one would feed it.

Run: python examples/dp_sgd.py
"""
import numpy as np

import codax
from codax.datasets import load_breast_cancer


# ---- models, written for ONE example: x has shape (30,), y is 0.0 or 1.0 ----
# (They also work unchanged on a whole matrix X of examples, one logit per row.)

def logistic_logit(params, x):
    return x @ params["w"] + params["b"]


def mlp_logit(params, x):
    h = np.tanh(x @ params["W1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def bce(z, y):
    """Binary cross-entropy of label y given the logit z: -log sigmoid(z) if y = 1,
    -log(1 - sigmoid(z)) if y = 0, written stably as log(1 + e^z) - y z."""
    return np.logaddexp(0.0, z) - y * z


def logistic_loss(params, x, y):
    return bce(logistic_logit(params, x), y)


def mlp_loss(params, x, y):
    return bce(mlp_logit(params, x), y)


# ---- DP-SGD ----

def clip_and_sum(per_example, clip_norm):
    """Scale each example's gradient to L2 norm <= clip_norm, then sum over the batch.

    `per_example` maps each parameter name to an array whose first axis is the
    example; an example's norm is taken over all its parameters together."""
    squares = sum(np.sum(g.reshape(len(g), -1) ** 2, axis=1) for g in per_example.values())
    norms = np.sqrt(squares)                                   # one norm per example
    scale = np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))
    summed = {k: np.tensordot(scale, g, axes=1) for k, g in per_example.items()}
    return summed, norms


def dp_sgd_step(loss, params, xb, yb, key, lr, clip_norm, noise_multiplier):
    """One DP-SGD update from the batch (xb, yb); also returns each example's gradient norm."""
    # 1. per-example gradients: {"w": (batch, 30), "b": (batch,), ...}
    per_example = codax.vmap(codax.grad(loss), in_axes=(None, 0, 0))(params, xb, yb)
    # 2. clip each example to norm <= C, and sum over the batch
    summed, norms = clip_and_sum(per_example, clip_norm)
    # 3. add Gaussian noise N(0, (sigma C)^2) to every coordinate, with a fresh key per parameter
    keys = codax.random.split(key, len(params))
    new = {}
    for k, sub in zip(sorted(params), keys):
        noise = noise_multiplier * clip_norm * codax.random.normal(sub, params[k].shape)
        # 4. average over the batch and step
        new[k] = params[k] - lr * (summed[k] + noise) / len(xb)
    return new, norms


def check_per_example_gradients(loss, params, xb, yb):
    """vmap(grad) must equal a Python loop of grad, one example at a time."""
    batched = codax.vmap(codax.grad(loss), in_axes=(None, 0, 0))(params, xb, yb)
    for i in range(len(xb)):
        one = codax.grad(loss)(params, xb[i], yb[i])
        for k in params:
            np.testing.assert_allclose(batched[k][i], one[k], rtol=1e-10, atol=1e-12)


# ---- data, evaluation, training ----

def standardized_split(key, test_fraction=0.25):
    data = load_breast_cancer()
    order = np.asarray(codax.random.permutation(key, len(data.y)))
    n_test = int(round(test_fraction * len(order)))
    test, train = order[:n_test], order[n_test:]
    mean, std = data.X[train].mean(axis=0), data.X[train].std(axis=0)   # training statistics only
    X = (data.X - mean) / std
    return X[train], data.y[train], X[test], data.y[test]


def evaluate(logit, loss, params, X, y):
    mean_loss = np.mean(loss(params, X, y))
    accuracy = np.mean((logit(params, X) > 0) == (y == 1))
    return mean_loss, accuracy


def init_logistic(key, d):
    return {"w": np.zeros(d), "b": np.zeros(())}


def init_mlp(key, d, hidden=16):
    k1, k2 = codax.random.split(key)
    return {"W1": codax.random.normal(k1, (d, hidden)) / np.sqrt(d), "b1": np.zeros(hidden),
            "w2": codax.random.normal(k2, (hidden,)) / np.sqrt(hidden), "b2": np.zeros(())}


def train(name, logit, loss, params, data, key, epochs=10, batch=64, lr=1.0,
          clip_norm=1.0, noise_multiplier=1.0, verbose=True):
    Xtr, ytr, Xte, yte = data
    before = evaluate(logit, loss, params, Xte, yte)
    steps = 0
    for epoch in range(epochs):
        key, perm_key = codax.random.split(key)
        order = np.asarray(codax.random.permutation(perm_key, len(ytr)))
        for start in range(0, len(order) - batch + 1, batch):    # drop the last partial batch
            rows = order[start:start + batch]
            key, step_key = codax.random.split(key)
            params, norms = dp_sgd_step(loss, params, Xtr[rows], ytr[rows], step_key,
                                        lr, clip_norm, noise_multiplier)
            steps += 1
        if verbose and (epoch == 0 or (epoch + 1) % 5 == 0):
            print(f"  epoch {epoch + 1:2d}: test loss {evaluate(logit, loss, params, Xte, yte)[0]:.3f}; "
                  f"last batch: median gradient norm {np.median(norms):.3f}, "
                  f"{np.mean(norms > clip_norm):.0%} of examples clipped")
    after = evaluate(logit, loss, params, Xte, yte)
    if verbose:
        print(f"  {name}: test loss {before[0]:.3f} -> {after[0]:.3f}, "
              f"test accuracy {before[1]:.1%} -> {after[1]:.1%}\n"
              f"  ({steps} steps of batch {batch} from {len(ytr)}, sampling rate {batch / len(ytr):.3f}, "
              f"clip norm C = {clip_norm}, noise multiplier sigma = {noise_multiplier})")
    return params, before, after


def main(epochs=10, verbose=True):
    key = codax.random.key(0)
    data_key, key = codax.random.split(key)
    data = standardized_split(data_key)
    d = data[0].shape[1]
    if verbose:
        print(f"breast cancer data: {len(data[1])} training and {len(data[3])} test examples, {d} features")
    results = {}
    for name, logit, loss, init in [("logistic regression", logistic_logit, logistic_loss, init_logistic),
                                    ("MLP 30-16-1 (tanh)", mlp_logit, mlp_loss, init_mlp)]:
        init_key, train_key, key = codax.random.split(key, 3)
        params = init(init_key, d)
        check_per_example_gradients(loss, params, data[0][:8], data[1][:8])
        if verbose:
            print(f"{name}: vmap(grad) agrees with a loop of grad on 8 examples")
        results[name] = train(name, logit, loss, params, data, train_key, epochs=epochs, verbose=verbose)
    return results


if __name__ == "__main__":
    main()
