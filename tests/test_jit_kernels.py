"""Every kernel the test corpus generates, checked without a GPU: the CUDA
text compiles with nvcc for sm_80 and sm_90, and the C for the CPU agrees with
the NumPy statements it fuses on random inputs. With a GPU (`pytest -m gpu`),
the corpus runs jitted on CuPy arrays against NumPy."""
import functools

import numpy as np
import pytest

import codax
import runtime
from corpus import CORPUS
from helpers import assert_tree_allclose
from test_jit import CASES, ROW_CASES
from test_kernels_cpu import check_kernels
from transformer.kernels import c, cuda


def _programs():
    """(name, function, arguments) for every corpus entry and jit test case,
    each as itself and as its gradient."""
    for name, fn, factory, argnums in CORPUS:
        yield name, fn, factory()
        yield f'grad({name})', codax.grad(fn, argnums), factory()
    for k, (fn, make) in enumerate(CASES + ROW_CASES):
        args = make(np.random.default_rng(k))
        name = f'{fn.__name__}{k}'
        yield name, fn, args
        out = fn(*args)
        if not isinstance(out, tuple) and np.ndim(out) == 0:
            yield f'grad({name})', codax.grad(fn), args


@functools.lru_cache(maxsize=None)
def generated(backend):
    """{kernel name: (Kernel, fallback source)} over the whole corpus."""
    out = {}
    for name, fn, args in _programs():
        jitted = codax.jit(fn)
        entry = jitted.__codax_transformed__._specialize(args, backend)[0]
        for kernel in entry.generated.kernels:
            out[f'{name}:{kernel.name}'] = (kernel, entry.generated.fallbacks[kernel.name])
    return out


def test_the_corpus_makes_every_kind_of_kernel():
    kernels = [k for k, _ in generated('cupy').values()]
    assert len(kernels) > 100
    assert {k.kind for k in kernels} == {'elementwise', 'reduction', 'rowwise'}
    assert any(k.reduction is not None and k.reduction.axis is None for k in kernels)
    assert any(k.reduction is not None and k.reduction.axis is not None for k in kernels)
    assert any(k.reduction is not None and k.reduction.op in ('var', 'std') for k in kernels)


def test_corpus_cuda_kernels_compile_for_sm80_and_sm90():
    if cuda.find_nvcc() is None:
        pytest.skip('nvcc not found (PATH, /usr/local/cuda/bin): CUDA compile checks skipped')
    cuda.check_compiles([k for k, _ in generated('cupy').values()])


def _reference(fallback_source):
    namespace = {'xp': np, 'rt': runtime}
    exec(fallback_source, namespace)
    return next(v for k, v in namespace.items() if k.endswith('_numpy'))


def test_corpus_c_kernels_match_numpy():
    pairs = [(k, _reference(text)) for k, text in generated('numpy').values()]
    skipped = check_kernels(pairs)
    # C runs reductions over trailing axes only; the rest stay NumPy.
    reasons = {c.unsupported(k) for k, _ in pairs if k.name in skipped}
    assert all('trailing axes' in why for why in reasons), reasons
    assert len(skipped) < len(pairs) / 10


# ---- on a GPU ----

@pytest.fixture(scope='module')
def cp():
    cupy = pytest.importorskip('cupy')
    if not cupy.cuda.is_available():
        pytest.skip('needs a CUDA GPU (cupy.cuda.is_available() is False)')
    return cupy


def _to_gpu(cp, tree):
    if isinstance(tree, np.ndarray):
        return cp.asarray(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_to_gpu(cp, t) for t in tree)
    if isinstance(tree, dict):
        return {k: _to_gpu(cp, v) for k, v in tree.items()}
    return tree


def _to_host(cp, tree):
    if isinstance(tree, cp.ndarray):
        return cp.asnumpy(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_to_host(cp, t) for t in tree)
    if isinstance(tree, dict):
        return {k: _to_host(cp, v) for k, v in tree.items()}
    return tree


@pytest.mark.gpu
@pytest.mark.parametrize('program', [name for name, _, _ in _programs()])
def test_corpus_on_cupy_matches_numpy(cp, program):
    fn, args = next((f, a) for name, f, a in _programs() if name == program)
    want = fn(*args)
    got = _to_host(cp, codax.jit(fn)(*_to_gpu(cp, args)))
    assert_tree_allclose(got, want, rtol=1e-9, atol=1e-11)
