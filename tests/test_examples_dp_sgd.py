"""examples/dp_sgd.py: DP-SGD with per-example gradients from codax.vmap(codax.grad(...)),
on the breast cancer data shipped in codax.datasets."""

import numpy as np
import pytest

import codax
from codax.datasets import load_breast_cancer
from helpers import load_example


@pytest.fixture(scope="module")
def dp_sgd():
    return load_example('dp_sgd.py')


def test_breast_cancer_loader():
    data = load_breast_cancer()
    assert data.X.shape == (569, 30) and data.X.dtype == np.float64
    assert data.y.shape == (569,) and data.y.dtype == np.float64
    assert set(np.unique(data.y)) == {0.0, 1.0} and data.y.sum() == 357      # 357 benign, 212 malignant
    assert len(data.feature_names) == 30 and data.feature_names[0] == "mean radius"
    assert data.target_names == ("malignant", "benign")
    np.testing.assert_allclose(data.X[0, :4], [17.99, 10.38, 122.8, 1001.0])
    assert load_breast_cancer().X is not data.X                                # fresh arrays


def test_dp_sgd_example_trains(dp_sgd):
    # main() also asserts that vmap(grad) equals a loop of grad for both models.
    results = dp_sgd.main(verbose=False)
    assert len(results) == 2
    for name, (_, (loss0, acc0), (loss1, acc1)) in results.items():
        assert loss1 < 0.5 * loss0, name
        assert acc1 > 0.9 and acc1 > acc0 + 0.3, name


@pytest.mark.parametrize("model", ["logistic", "mlp"])
def test_per_example_gradients_sum_to_batch_gradient(dp_sgd, model):
    """Without clipping, the per-example gradients add up to the gradient of the summed loss."""
    Xtr, ytr, _, _ = dp_sgd.standardized_split(codax.random.key(1))
    xb, yb = Xtr[:32], ytr[:32]
    key = codax.random.key(2)
    if model == "logistic":
        loss, params = dp_sgd.logistic_loss, {"w": codax.random.normal(key, (30,)), "b": np.zeros(())}
    else:
        loss, params = dp_sgd.mlp_loss, dp_sgd.init_mlp(key, 30)
    dp_sgd.check_per_example_gradients(loss, params, xb, yb)
    per_example = codax.vmap(codax.grad(loss), in_axes=(None, 0, 0))(params, xb, yb)
    summed, norms = dp_sgd.clip_and_sum(per_example, clip_norm=np.inf)
    total = codax.grad(summed_loss)(params, loss, xb, yb)
    for k in params:
        assert per_example[k].shape == (32,) + np.shape(params[k])
        np.testing.assert_allclose(summed[k], total[k], rtol=1e-10, atol=1e-12)
    assert norms.shape == (32,)


def summed_loss(params, loss, xb, yb):
    return np.sum(loss(params, xb, yb))


def test_clipping_bounds_each_example(dp_sgd):
    g = {"w": np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]]), "b": np.array([0.0, 0.0, 1.0])}
    summed, norms = dp_sgd.clip_and_sum(g, clip_norm=1.0)
    np.testing.assert_allclose(norms, [5.0, 0.5, 1.0])
    # the first example is scaled down to norm 1, the others pass unchanged
    np.testing.assert_allclose(summed["w"], [0.6 + 0.3, 0.8 + 0.4])
    np.testing.assert_allclose(summed["b"], 1.0)


def test_noiseless_unclipped_step_is_plain_sgd(dp_sgd):
    Xtr, ytr, _, _ = dp_sgd.standardized_split(codax.random.key(1))
    xb, yb = Xtr[:16], ytr[:16]
    params = dp_sgd.init_mlp(codax.random.key(3), 30)
    new, _ = dp_sgd.dp_sgd_step(dp_sgd.mlp_loss, params, xb, yb, codax.random.key(4),
                                lr=0.1, clip_norm=1e9, noise_multiplier=0.0)
    g = codax.grad(summed_loss)(params, dp_sgd.mlp_loss, xb, yb)
    for k in params:
        np.testing.assert_allclose(new[k], params[k] - 0.1 * g[k] / 16, rtol=1e-10, atol=1e-12)
