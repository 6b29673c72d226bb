"""Repeated sequences and in-place updates, given codax's value semantics.

`seq * n` must add the copies' adjoints; NumPy's in-place methods, out= and
np.copyto are rewritten to assignments; dict.update and list.reverse/clear
likewise; what cannot be rewritten, and writes through another name for the
same memory, are refused naming this file and the marked line (``#@name``).
"""
import os

import numpy as np
import pytest

import codax
from helpers import numeric_grad

THIS_FILE = os.path.basename(__file__)
X = np.array([0.3, -0.7, 1.2, 1.9])
XS = np.stack([X, 2 * X - 0.1])


def marker_line(name):
    with open(__file__) as fh:
        lines = fh.read().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith('#@' + name)]
    assert len(hits) == 1, name
    return hits[0]


# ---- repetition: seq * n ----

def repeat_item(x):
    xs = [x[0]] * 3
    return sum(xs) * x[1]


def repeat_tuple(x):
    ts = (x,) * 2
    return np.sum(ts[0] * ts[1])


def repeat_left(x):
    ys = 2 * [x[0], x[1] ** 2]
    return ys[0] * ys[3] + ys[2]


def repeat_name(x):
    xs = [x[0], x[1]]
    ys = xs * 3
    return sum(ys) * x[1]


def repeat_runtime_count(x):
    xs = [x[0] * x[1]]
    ys = xs * len(x)                       # the count known only at run time: a loop
    return sum(ys) * ys[-1]


def repeat_long(x):
    return sum([x[2]] * 100) * x[0]


def preallocated(x):
    out = [None] * 2
    out[0] = x[0] * 3
    out[1] = x[1] * x[2]
    return out[0] + out[1]


REPEATS = [repeat_item, repeat_tuple, repeat_left, repeat_name, repeat_runtime_count,
           repeat_long, preallocated]


@pytest.mark.parametrize('f', REPEATS)
def test_repetition_derivatives(f):
    want = numeric_grad(f, (X,))
    np.testing.assert_allclose(codax.grad(f)(X), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.jacfwd(f)(X), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.vmap(f)(XS), [f(r) for r in XS], rtol=1e-12)


def test_repetition_second_order():
    f = repeat_name
    hess = codax.hessian(f)(X)
    fd = np.array([numeric_grad(lambda v: numeric_grad(f, (v,), eps=1e-4)[i], (X,), eps=1e-4)
                   for i in range(4)])
    np.testing.assert_allclose(hess, fd, atol=1e-4)


# ---- NumPy in place: rewritten ----

def fill(x):
    y = x * 2
    y.fill(x[0])
    return np.sum(y * x)


def sort_rows(x):
    y = np.reshape(x * 1.0, (2, 2))
    y.sort(axis=0)
    return np.sum(y * np.arange(4.0).reshape(2, 2))


def copyto(x):
    y = np.zeros((2, 4))
    np.copyto(y, x ** 2)                   # broadcast into y
    return np.sum(y * x)


def ufunc_out(x):
    y = np.empty(4)
    np.multiply(x, x, out=y)
    return np.sum(y * x)


def ufunc_out_self(x):
    y = x * 1.0
    np.sin(y, out=y)
    return np.sum(y)


def method_out(x):
    y = np.zeros(4)
    x.clip(-0.5, 0.5, out=y)
    return np.sum(y * x)


def reduction_out(x):
    y = np.zeros(())
    np.sum(x * x, out=y)
    return y * x[0]


# ---- containers in place: rewritten ----

def dict_update(x):
    d = {'a': x[0]}
    d.update({'b': x[1]}, c=x[2] * 2)
    return d['a'] * d['b'] + d['c']


def dict_clear(x):
    d = {'a': x[0]}
    d.clear()
    d['b'] = x[1]
    return d['b'] * 3 + len(d)


def list_reverse(x):
    xs = [x[0], x[1] * 2, x[2]]
    xs.reverse()
    return xs[0] * 3 + xs[1] * xs[2]


def list_clear(x):
    xs = [x[0]]
    xs.clear()
    xs.append(x[1])
    return xs[0] * 3 + len(xs)


REWRITTEN = [fill, sort_rows, copyto, ufunc_out, ufunc_out_self, method_out, reduction_out,
             dict_update, dict_clear, list_reverse, list_clear]


@pytest.mark.parametrize('f', REWRITTEN)
def test_in_place_updates_are_rewritten(f):
    want = numeric_grad(f, (X,))
    np.testing.assert_allclose(codax.grad(f)(X), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.jacfwd(f)(X), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(codax.vmap(f)(XS), [f(r) for r in XS], rtol=1e-12)
    x = X.copy()
    codax.grad(f)(x)
    np.testing.assert_array_equal(x, X)                 # the argument is left alone


def test_out_keeps_the_dtype_of_out():
    def f(x):
        y = np.zeros(4, dtype=np.float32)
        np.multiply(x, x, out=y)
        return y
    got = codax.jit(f)(X)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, f(X))


# ---- refused, naming the line ----

def np_put(x):
    y = x.copy()
    np.put(y, [0, 2], [1.0, 2.0])  #@put
    return np.sum(y * x)


def np_putmask(x):
    y = x.copy()
    np.putmask(y, y < 0, 0.0)  #@putmask
    return np.sum(y * x)


def out_in_expression(x):
    y = np.empty(4)
    z = np.sin(x, out=y) * 2  #@out_expr
    return np.sum(z)


def list_sort(x):
    xs = [x[2], x[0]]
    xs.sort()  #@list_sort
    return xs[0] * 3 + xs[1]


def list_remove(x):
    xs = [x[0], 5.0, x[1]]
    xs.remove(5.0)  #@remove
    return xs[0] * 3 + xs[1]


def dict_update_name(x):
    d, e = {'a': x[0]}, {'b': x[1]}
    d.update(e)  #@update_name
    return d['a'] * d['b']


def append_to_chosen(x):
    pos, neg = [], []
    for v in x:
        (pos if v > 0 else neg).append(v)  #@chosen
    return sum(pos) * 2 + sum(neg) * 3


def list_slice_write(x):
    xs = [x[0], x[1], x[2]]
    xs[1:] = [x[2], x[2] * 2]  #@slice_write
    return sum(xs)


def alias_augmented(x):
    y = x * 1.0
    z = y
    z += 1.0  #@alias_aug
    return np.sum(y * x)


def loop_item_augmented(x):
    ws = [x * 1.0, x * 2.0]
    for w in ws:
        w *= 2  #@loop_aug
    return np.sum(ws[0] + ws[1])


def alias_then_fill(x):
    y = x * 1.0
    z = y
    y.fill(0.0)  #@alias_fill
    return np.sum(z * x)


def alias_then_append(x):
    xs = [x[0]]
    ys = xs
    xs.append(x[1])  #@alias_append
    return sum(ys)


REFUSED = [(np_put, 'put', 'y[idx] = v'), (np_putmask, 'putmask', 'np.where'),
           (out_in_expression, 'out_expr', 'out='), (list_sort, 'list_sort', 'np.sort'),
           (list_remove, 'remove', '.remove()'), (dict_update_name, 'update_name', 'update'),
           (append_to_chosen, 'chosen', 'if statement'),
           (list_slice_write, 'slice_write', 'slice of a list'),
           (alias_augmented, 'alias_aug', 'share memory'),
           (loop_item_augmented, 'loop_aug', 'share memory'),
           (alias_then_fill, 'alias_fill', 'share memory'),
           (alias_then_append, 'alias_append', 'share memory')]


@pytest.mark.parametrize('f,marker,says', REFUSED, ids=[r[1] for r in REFUSED])
def test_unsupported_in_place_updates_are_refused(f, marker, says):
    for transform in (codax.grad, codax.vmap):
        with pytest.raises(codax.SourceError) as info:
            transform(f)(XS if transform is codax.vmap else X)
        message = str(info.value)
        assert f'{THIS_FILE}:{marker_line(marker)}:' in message, message
        assert says in message, message


def test_integer_indexed_item_is_a_copy():
    def f(x):                       # s = y[0] is a number: `s += v` rebinds s only
        y = x * 1.0
        s = y[0]
        s += 2.0
        return s * np.sum(y)
    np.testing.assert_allclose(codax.grad(f)(X), numeric_grad(f, (X,)), rtol=1e-6)
