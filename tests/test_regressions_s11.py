"""Regressions found in session 11, each against an independent reference."""
import numpy as np

import codax
from helpers import numeric_grad


def _log_abs_det(x):
    a = x[:4].reshape(2, 2) + 3 * np.eye(2)
    return np.linalg.slogdet(a)[1]


def test_per_example_gradient_of_a_number_picked_from_a_tuple_result():
    # grad seeds 1.0 (shared) onto slogdet's per-example log|det|: materialized
    # to the batch's shape, not left a float that the rule then indexes
    xs = np.random.RandomState(0).randn(3, 6)
    want = [numeric_grad(_log_abs_det, (x,)) for x in xs]
    np.testing.assert_allclose(codax.vmap(codax.grad(_log_abs_det))(xs), want,
                               rtol=1e-6, atol=1e-8)
