"""A quick end-to-end check, run by .ci/run under the newest Python as well:
parsing, normalizing and both modes of differentiation on one small model."""
import numpy as np

import codax


def model(params, x):
    h = np.tanh(x @ params["W"] + params["b"])
    total = 0.0
    for i in range(h.shape[0]):
        if np.sum(h[i]) > 0:
            total += np.sum(h[i] ** 2)
        else:
            total -= np.mean(h[i])
    return total


def test_grad_jvp_and_hessian_agree_with_finite_differences():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    x = rng.normal(size=(4, 3))
    g = codax.grad(model)(params, x)
    eps = 1e-6
    for key in params:
        for idx in np.ndindex(params[key].shape):
            up = {k: v.copy() for k, v in params.items()}
            down = {k: v.copy() for k, v in params.items()}
            up[key][idx] += eps
            down[key][idx] -= eps
            fd = (model(up, x) - model(down, x)) / (2 * eps)
            assert np.isclose(g[key][idx], fd, rtol=1e-5, atol=1e-8)
    v = {k: rng.normal(size=p.shape) for k, p in params.items()}
    _, tangent = codax.jvp(model, (params, x), (v, 0.0))
    assert np.isclose(tangent, sum(np.sum(g[k] * v[k]) for k in params), rtol=1e-10)

    def scalar(t):
        return np.sin(t) * t ** 3
    assert np.isclose(codax.hessian(scalar)(0.7),
                      -np.sin(0.7) * 0.7 ** 3 + 6 * np.cos(0.7) * 0.7 ** 2 + 6 * np.sin(0.7) * 0.7)
    assert "def grad_model" in codax.grad(model).source(params, x)
