"""Train a small MLP with codax.jit: fused CUDA kernels on a GPU, C kernels on the CPU.

The same NumPy code runs on CuPy arrays when CuPy sees a CUDA GPU, and on NumPy
arrays otherwise: `codax.device_put` moves the data and the parameters to the
first GPU if there is one, and `codax.jit` specializes each function for the
arrays it gets (CuPy `ElementwiseKernel`s and friends for CuPy arrays, C
compiled at run time for NumPy arrays; see docs/fusion.md).

The model is a 30-32-1 tanh MLP for the Breast Cancer Wisconsin (Diagnostic)
data shipped with codax (569 tumours, 30 features, malignant or benign; UCI,
CC BY 4.0), trained full-batch with Adam on a binary cross-entropy loss:

    step = codax.jit(codax.value_and_grad(loss))    # loss and gradient, fused
    update = codax.jit(adam)                        # the optimizer, fused too

The script prints the loss, the test accuracy, the back end, how many fused
kernels each step runs, and the time per training step with and without jit.
Print the generated code with `print(step.source(params, X, y))`.

On the CPU this network is too small for fusion to pay: its arrays have a few
thousand elements, NumPy needs a microsecond or two per operation on them, and
each jitted call adds tens of microseconds of dispatch and argument checks, so
jit is slower here. Fusion pays on the CPU for arrays of about 10^5 elements
and more, and on a GPU, where every operation NumPy code runs is a kernel
launch of its own and fusing cuts their number.

Run: python examples/jit_mlp.py
"""
import time

import numpy as np

import codax
from codax.datasets import load_breast_cancer

# Everything is float64, the data set's own dtype. (In float32, jit's dtype
# inference currently takes `-b` of a Python float `b` for a float64 array, so
# the gradient's last kernels are declared float64 for float32 arrays: the C
# kernel then leaves every call to NumPy, and CuPy would refuse the call.)
#
# The parameters are a tuple of four arrays, (W1, b1, w2, b2), unpacked by
# position. jit infers the dtype of every intermediate value from the
# arguments' to decide what fuses, and it sees through tuple unpacking and
# through `params["W1"]` with a constant key, but not through a loop over a
# dict's keys (`{k: p[k] - lr * g[k] for k in p}`: `p[k]` has no known dtype),
# so with dict parameters the optimizer below would not fuse at all.


def loss(params, x, y):
    """Mean binary cross-entropy of the labels y (0 or 1) given the MLP's logits."""
    W1, b1, w2, b2 = params
    h = np.tanh(x @ W1 + b1)
    z = h @ w2 + b2
    # -log sigmoid(z) if y = 1, -log(1 - sigmoid(z)) if y = 0, written stably
    return np.mean(np.logaddexp(0.0, z) - y * z)


def logits(params, x):
    W1, b1, w2, b2 = params
    return np.tanh(x @ W1 + b1) @ w2 + b2


def adam(params, grads, m, v, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam step (Kingma and Ba, 2015) on every parameter; t counts steps from 1.
    Each iteration of the loop is one fused kernel with three outputs."""
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t            # bias corrections: Python floats
    new_params, new_m, new_v = [], [], []
    for p, g, mp, vp in zip(params, grads, m, v):
        mp = b1 * mp + (1 - b1) * g
        vp = b2 * vp + (1 - b2) * g * g
        p = p - lr * (mp / c1) / (np.sqrt(vp / c2) + eps)
        new_params.append(p)
        new_m.append(mp)
        new_v.append(vp)
    return tuple(new_params), tuple(new_m), tuple(new_v)


# ---- data and parameters ----

def standardized_split(key, test_fraction=0.25, dtype=np.float64):
    """Training and test sets, standardized with the training set's statistics."""
    data = load_breast_cancer()
    order = np.asarray(codax.random.permutation(key, len(data.y)))
    n_test = int(round(test_fraction * len(order)))
    test, train = order[:n_test], order[n_test:]
    mean, std = data.X[train].mean(axis=0), data.X[train].std(axis=0)
    X = ((data.X - mean) / std).astype(dtype)
    y = data.y.astype(dtype)
    return X[train], y[train], X[test], y[test]


def init_params(key, d, hidden=32, dtype=np.float64):
    k1, k2 = codax.random.split(key)
    W1 = np.asarray(codax.random.normal(k1, (d, hidden))) / np.sqrt(d)
    w2 = np.asarray(codax.random.normal(k2, (hidden,))) / np.sqrt(hidden)
    return tuple(a.astype(dtype) for a in (W1, np.zeros(hidden), w2, np.zeros(())))


def accuracy(params, X, y):
    predictions = logits(params, X) > 0
    return float(np.mean(predictions == (y == 1)))


def count_fused(step, update, params, data):
    """(kernels, operations they fuse) of the gradient step and of the update."""
    counts = []
    zeros = tuple(np.zeros_like(p) for p in params)
    for kernels in (step.kernels(params, data[0], data[1]),
                    update.kernels(params, params, zeros, zeros, 1, 0.01)):
        counts += [len(kernels), sum(len(k.steps) + (k.reduction is not None) for k in kernels)]
    return tuple(counts)


def describe_backend(device):
    if device.platform == 'gpu':
        return f'CuPy on {device} (fused CUDA kernels)'
    return 'NumPy on the CPU (fused kernels compiled as C; no CUDA GPU found)'


# ---- training ----

def train(step, update, params, data, steps, lr=0.01):
    """`steps` full-batch Adam steps; returns the parameters and each step's loss
    (the loss before the step's update), as Python floats."""
    Xtr, ytr = data[0], data[1]
    m = tuple(np.zeros_like(p) for p in params)
    v = tuple(np.zeros_like(p) for p in params)
    losses = []
    for t in range(1, steps + 1):
        value, grads = step(params, Xtr, ytr)
        params, m, v = update(params, grads, m, v, t, lr)
        losses.append(value)
    return params, [float(value) for value in losses]     # float() waits for a GPU


def seconds_per_step(step, update, params, data, steps):
    """Wall time of one training step (gradient and update), after a warm-up
    that specializes and compiles everything."""
    train(step, update, params, data, 3)
    start = time.perf_counter()
    train(step, update, params, data, steps)               # ends by syncing the GPU
    return (time.perf_counter() - start) / steps


def main(steps=300, timing_steps=100, verbose=True):
    device = codax.devices()[-1]           # the first GPU if CuPy sees one, else the CPU
    key = codax.random.key(0)
    data_key, init_key = codax.random.split(key)
    data = codax.device_put(standardized_split(data_key), device)
    params = codax.device_put(init_params(init_key, data[0].shape[1]), device)

    step = codax.jit(codax.value_and_grad(loss))
    update = codax.jit(adam)
    plain_step, plain_update = codax.value_and_grad(loss), adam

    fused = count_fused(step, update, params, data)
    start = time.perf_counter()
    trained, losses = train(step, update, params, data, steps)
    elapsed = time.perf_counter() - start
    test_accuracy = accuracy(trained, data[2], data[3])
    if verbose:
        print(f'backend: {describe_backend(device)}')
        print(f'data: {len(data[1])} training and {len(data[3])} test examples, '
              f'{data[0].shape[1]} features, {data[0].dtype}')
        print(f'{steps} full-batch Adam steps in {elapsed:.2f} s (the first call of each '
              'function generates and compiles its code)')
        print('fused: {} kernels doing {} operations in the step, {} kernel doing {} in the '
              'update (one call per parameter)'.format(*fused))
        for t in sorted({1, 10, 100, steps}):
            if t > steps:
                continue
            print(f'  step {t:4d}: training loss {losses[t - 1]:.4f}')
        print(f'test accuracy: {test_accuracy:.1%}')

    # The same steps without jit give the same losses, up to rounding (fused
    # kernels contract a * b + c into one instruction, and sum in another order).
    compared = min(20, steps)
    _, plain_losses = train(plain_step, plain_update, params, data, compared)
    agree = np.allclose(losses[:compared], plain_losses, rtol=1e-7, atol=1e-12)

    times = {}
    if timing_steps:
        times['jit'] = seconds_per_step(step, update, params, data, timing_steps)
        times['no jit'] = seconds_per_step(plain_step, plain_update, params, data, timing_steps)
    if verbose:
        print(f'jit and no-jit losses agree over {compared} steps: {agree}')
        if times:
            jit_us, plain_us = times['jit'] * 1e6, times['no jit'] * 1e6
            print(f'time per step: jit {jit_us:.0f} us, no jit {plain_us:.0f} us '
                  f'(speed-up {plain_us / jit_us:.2f}x)')
    return dict(backend=device.platform, losses=losses, plain_losses=plain_losses,
                accuracy=test_accuracy, agree=agree, times=times, fused=fused)


if __name__ == '__main__':
    main()
