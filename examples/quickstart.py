"""Train a small regression model with codax.grad, then show generated code.

Run: python examples/quickstart.py
"""
import numpy as np

import codax


def predict(params, x):
    h = np.tanh(x @ params["W1"] + params["b1"])
    return h @ params["W2"] + params["b2"]


def loss(params, x, y):
    err = predict(params, x) - y
    return np.mean(err ** 2)


def main():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(128, 1))
    y = np.sin(2 * x) + 0.05 * rng.normal(size=x.shape)
    params = {
        "W1": rng.normal(size=(1, 32)) * 0.5, "b1": np.zeros(32),
        "W2": rng.normal(size=(32, 1)) * 0.2, "b2": np.zeros(1),
    }
    step = codax.value_and_grad(loss)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    for epoch in range(300):
        value, grads = step(params, x, y)
        for k in params:                      # SGD with momentum
            velocity[k] = 0.9 * velocity[k] - 0.05 * grads[k]
            params[k] = params[k] + velocity[k]
        if epoch % 50 == 0:
            print(f"epoch {epoch:3d}  loss {value:.5f}")
    print(f"final      loss {loss(params, x, y):.5f}")
    print("\nThe Python codax generated for grad(loss):\n")
    print(codax.grad(loss).source(params, x, y))


if __name__ == "__main__":
    main()
