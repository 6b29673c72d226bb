"""examples/jit_mlp.py: a tanh MLP trained with codax.jit(codax.value_and_grad(loss))
and a jitted Adam update, on the breast cancer data shipped in codax.datasets
(CuPy on a GPU when there is one, NumPy otherwise)."""

import numpy as np
import pytest

import codax
from helpers import load_example


@pytest.fixture(scope="module")
def jit_mlp():
    return load_example('jit_mlp.py')


@pytest.fixture(scope="module")
def setup(jit_mlp):
    key = codax.random.key(0)
    data_key, init_key = codax.random.split(key)
    data = jit_mlp.standardized_split(data_key)
    return data, jit_mlp.init_params(init_key, data[0].shape[1])


def test_example_trains_and_jit_agrees_with_no_jit(jit_mlp):
    result = jit_mlp.main(steps=150, timing_steps=0, verbose=False)
    assert result["accuracy"] > 0.9
    assert result["losses"][-1] < 0.25 * result["losses"][0]
    assert result["agree"]
    np.testing.assert_allclose(result["losses"][:20], result["plain_losses"], rtol=1e-7)


def test_step_and_update_fuse(jit_mlp, setup):
    data, params = setup
    step = codax.jit(codax.value_and_grad(jit_mlp.loss))
    update = codax.jit(jit_mlp.adam)
    kernels = step.kernels(params, data[0], data[1])
    assert [k.kind for k in kernels].count("reduction") == 1       # the mean of the loss
    assert len(kernels) >= 3
    zeros = tuple(np.zeros_like(p) for p in params)
    (adam,) = update.kernels(params, params, zeros, zeros, 1, 0.01)
    assert adam.kind == "elementwise" and len(adam.outputs) == 3     # p, m, v in one pass
    assert all(s.dtype == np.float64 for s in adam.steps)


def test_one_jitted_step_matches_the_plain_step(jit_mlp, setup):
    data, params = setup
    value, grads = codax.jit(codax.value_and_grad(jit_mlp.loss))(params, data[0], data[1])
    want_value, want_grads = codax.value_and_grad(jit_mlp.loss)(params, data[0], data[1])
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    assert isinstance(grads, tuple) and len(grads) == 4
    for g, w, p in zip(grads, want_grads, params):
        assert g.shape == p.shape and g.dtype == p.dtype
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-14)
    zeros = tuple(np.zeros_like(p) for p in params)
    got = codax.jit(jit_mlp.adam)(params, grads, zeros, zeros, 1, 0.01)
    want = jit_mlp.adam(params, grads, zeros, zeros, 1, 0.01)
    for got_part, want_part in zip(got, want):
        for g, w in zip(got_part, want_part):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-14)


def test_timing_reports_both(jit_mlp, setup):
    data, params = setup
    step = codax.jit(codax.value_and_grad(jit_mlp.loss))
    seconds = jit_mlp.seconds_per_step(step, codax.jit(jit_mlp.adam), params, data, 2)
    assert 0 < seconds < 1


def test_kernels_are_declared_with_the_dtypes_they_get(jit_mlp, setup):
    """A kernel declared float64 for a float32 array would run as NumPy on the CPU
    and be refused by CuPy: every operand here is float64, as the data."""
    data, params = setup
    step = codax.jit(codax.value_and_grad(jit_mlp.loss))
    for kernel in step.kernels(params, data[0], data[1]):
        assert all(v.dtype == np.float64 for v in kernel.inputs + kernel.outputs), kernel


def test_gpu_kernels_compile_with_nvcc(jit_mlp, setup):
    """The CUDA kernels the example runs on a GPU, compiled without one."""
    from transformer.kernels import cuda
    if cuda.find_nvcc() is None:
        pytest.skip("nvcc not found (PATH, /usr/local/cuda/bin): CUDA compile check skipped")
    data, params = setup
    zeros = tuple(np.zeros_like(p) for p in params)
    kernels = codax.jit(codax.value_and_grad(jit_mlp.loss)).kernels(
        params, data[0], data[1], backend="cupy")
    kernels += codax.jit(jit_mlp.adam).kernels(params, params, zeros, zeros, 1, 0.01,
                                               backend="cupy")
    kernels += codax.jit(jit_mlp.logits).kernels(params, data[0], backend="cupy")
    cuda.check_compiles(kernels)
