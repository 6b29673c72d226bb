"""codax.devices, device_put and device_get.

The CPU paths run everywhere. The GPU paths carry the `gpu` marker and skip
without CuPy or a CUDA GPU.
"""
import numpy as np
import pytest

import codax
from codax.devices import CpuDevice, CudaDevice, _gpu_count


def _cupy_with_gpu():
    cupy = pytest.importorskip('cupy')
    if _gpu_count() == 0:
        pytest.skip('CuPy sees no CUDA GPU')
    return cupy


def loss(params, x):
    return np.sum(np.tanh(x @ params['W'] + params['b']) ** 2)


def _params():
    rng = np.random.default_rng(0)
    return {'W': rng.normal(size=(3, 2)), 'b': np.zeros(2)}, rng.normal(size=(4, 3))


# ---- everywhere ----

def test_devices_list_the_cpu_first():
    found = codax.devices()
    assert found[0] == CpuDevice(0) and repr(found[0]) == 'CpuDevice(id=0)'
    assert found[0].platform == 'cpu' and found[0].id == 0
    assert found[1:] == [CudaDevice(k) for k in range(_gpu_count())]
    assert codax.devices('cpu') == [CpuDevice(0)]
    assert repr(CudaDevice(1)) == 'CudaDevice(id=1)' and CudaDevice(1) != CpuDevice(1)
    assert len({CpuDevice(0), CpuDevice(0), CudaDevice(0)}) == 2
    with pytest.raises(ValueError, match='unknown backend'):
        codax.devices('tpu')


def test_put_on_the_cpu_keeps_numpy_and_the_tree():
    params, x = _params()
    tree = {'p': params, 'x': x, 'scale': 0.5, 'steps': 3, 'none': None, 'pair': (x, 'tag')}
    cpu = codax.devices('cpu')[0]
    out = codax.device_put(tree, cpu)
    assert out is not tree and out['p'] is not params            # containers are rebuilt
    assert out['x'] is x and out['p']['W'] is params['W']          # arrays already there: no copy
    assert out['scale'] == 0.5 and type(out['scale']) is float and out['steps'] == 3
    assert out['none'] is None and out['pair'] == (x, 'tag')
    assert codax.device_get(out)['x'] is x


def test_put_leaves_its_input_alone():
    params, x = _params()
    before = {k: v.copy() for k, v in params.items()}
    codax.device_put(params)
    codax.device_get(params)
    assert set(params) == {'W', 'b'}
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_default_device_is_the_first_gpu_else_the_cpu():
    x = np.arange(3.0)
    out = codax.device_put(x)
    if _gpu_count() == 0:
        assert out is x
    else:
        assert type(out).__module__.startswith('cupy') and out.device.id == 0


def test_device_put_output_works_through_grad():
    params, x = _params()
    cpu = codax.devices()[0]
    p, xs = codax.device_put((params, x), cpu)
    got = codax.grad(loss)(p, xs)
    want = codax.grad(loss)(params, x)
    for k in want:
        np.testing.assert_allclose(codax.device_get(got)[k], want[k])


def test_bad_devices_are_refused():
    x = np.ones(2)
    with pytest.raises(TypeError, match='device_put takes a device'):
        codax.device_put(x, 'cpu')
    with pytest.raises(ValueError, match='does not exist'):
        codax.device_put(x, CpuDevice(1))
    with pytest.raises(ValueError, match=r'CudaDevice\(id=64\) does not exist'):
        codax.device_put(x, 64)


def test_asking_for_gpus_without_any_says_why():
    if _gpu_count():
        pytest.skip('this machine has a GPU')
    with pytest.raises(RuntimeError, match='no CUDA GPU'):
        codax.devices('gpu')
    with pytest.raises(ValueError, match='CuPy (is not installed|sees no GPU)'):
        codax.device_put(np.ones(2), 0)


# ---- with a GPU ----

@pytest.mark.gpu
def test_put_on_a_gpu_and_back():
    cupy = _cupy_with_gpu()
    params, x = _params()
    gpu = codax.devices('gpu')[0]
    tree = {'p': params, 'x': x, 'scale': 0.5, 'one': np.float32(1.0)}
    on_gpu = codax.device_put(tree, gpu)
    assert isinstance(on_gpu['x'], cupy.ndarray) and on_gpu['x'].device.id == gpu.id
    assert isinstance(on_gpu['one'], cupy.ndarray) and on_gpu['one'].shape == ()
    assert on_gpu['scale'] == 0.5 and type(on_gpu['scale']) is float
    assert codax.device_put(on_gpu['x'], gpu) is on_gpu['x']       # already there
    assert codax.device_put(on_gpu, 0)['x'] is on_gpu['x']         # an int is a GPU's number
    back = codax.device_get(on_gpu)
    assert type(back['x']) is np.ndarray
    np.testing.assert_array_equal(back['p']['W'], params['W'])
    cpu = codax.device_put(on_gpu, codax.devices('cpu')[0])
    assert type(cpu['p']['b']) is np.ndarray


@pytest.mark.gpu
def test_grad_of_gpu_arrays():
    cupy = _cupy_with_gpu()
    params, x = _params()
    p, xs = codax.device_put((params, x), codax.devices('gpu')[0])
    got = codax.grad(loss)(p, xs)
    assert isinstance(got['W'], cupy.ndarray)
    want = codax.grad(loss)(params, x)
    for k in want:
        np.testing.assert_allclose(codax.device_get(got)[k], want[k], rtol=1e-10)


@pytest.mark.gpu
def test_updates_on_a_gpu():
    cupy = _cupy_with_gpu()
    import codax.numpy as cnp
    x = codax.device_put(np.arange(5.0), 0)
    idx = cupy.asarray([0, 2, 2])
    for method, ufunc in (('add', np.add), ('multiply', np.multiply), ('min', np.minimum),
                          ('max', np.maximum)):
        want = np.arange(5.0)
        ufunc.at(want, [0, 2, 2], [1.5, -2.0, 3.0])
        got = getattr(cnp.at(x)[idx], method)(cupy.asarray([1.5, -2.0, 3.0]))
        np.testing.assert_array_equal(codax.device_get(got), want, err_msg=method)
    np.testing.assert_array_equal(codax.device_get(x), np.arange(5.0))
