"""API behaviour of codax (JAX semantics) and its error reporting.

Error tests find the expected line of the offending statement by searching
this file for a marker comment (``#@name``), never by hard-coded numbers.
"""

import os
import re

import numpy as np
import pytest

import codax
from helpers import assert_tree_allclose, check_grad, numeric_grad

THIS_FILE = os.path.basename(__file__)


def marker_line(name):
    """1-based line number of the single line carrying the marker ``#@name``."""
    tag = "#@" + name
    with open(__file__) as fh:
        lines = fh.read().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(tag)]
    assert len(hits) == 1, "marker %s found %d times" % (tag, len(hits))
    return hits[0]


def marker_code(name):
    """Source text of the marked line, without the marker comment."""
    with open(__file__) as fh:
        line = fh.read().splitlines()[marker_line(name) - 1]
    return line.split("#@")[0].strip()


def assert_points_at(message, name):
    """The error message names this file and the marked line, with a caret."""
    line = marker_line(name)
    where = "%s:%d" % (THIS_FILE, line)
    assert where in message, "expected %r in error message:\n%s" % (where, message)
    assert re.search(r"^\s*\^+\s*$", message, re.M), "no caret line in:\n%s" % message
    assert marker_code(name) in message, (
        "offending source %r not shown in:\n%s" % (marker_code(name), message))


@pytest.fixture
def x3():
    return np.random.default_rng(0).uniform(-1.0, 1.0, size=3)


@pytest.fixture
def y3():
    return np.random.default_rng(1).uniform(-1.0, 1.0, size=3)


# ==========================================================================
# Non-scalar output / non-float inputs
# ==========================================================================

def vector_valued(x):
    return np.sin(x) * 2.0


def matrix_valued(x):
    return np.outer(x, x)


def scalar_sum(x):
    return np.sum(x * 2.0)


@pytest.mark.parametrize("fn", [vector_valued, matrix_valued])
def test_grad_of_non_scalar_output_raises_type_error(fn, x3):
    with pytest.raises(TypeError):
        codax.grad(fn)(x3)
    with pytest.raises(TypeError):
        codax.value_and_grad(fn)(x3)


@pytest.mark.parametrize("arg", [np.arange(3), np.array([1, 2, 3], dtype=np.int32), 3],
                         ids=["int64_array", "int32_array", "python_int"])
def test_grad_wrt_integer_input_raises_type_error(arg):
    with pytest.raises(TypeError):
        codax.grad(scalar_sum)(arg)


def dict_loss(p):
    return np.sum(p["w"] * 2.0) + np.sum(p["n"])


def test_grad_wrt_integer_leaf_in_pytree_raises_type_error(x3):
    with pytest.raises(TypeError):
        codax.grad(dict_loss)({"w": x3, "n": np.arange(3)})


def int_indexed(x, idx):
    return np.sum(x[idx] ** 2)


def test_integer_argument_not_differentiated_is_fine(x3):
    idx = np.array([0, 2, 2])
    got = codax.grad(int_indexed)(x3, idx)
    want = np.array([2.0 * x3[0], 0.0, 4.0 * x3[2]])
    assert_tree_allclose(got, want)


# ==========================================================================
# argnums / has_aux / value_and_grad / vjp
# ==========================================================================

def three_args(x, y, z):
    return np.sum(x * y ** 2) + np.sum(np.sin(z) * x)


def test_argnums_tuple_returns_tuple(x3, y3):
    z = np.array([0.3, -0.2, 0.9])
    got = codax.grad(three_args, argnums=(0, 2))(x3, y3, z)
    assert isinstance(got, tuple) and len(got) == 2
    want = (y3 ** 2 + np.sin(z), np.cos(z) * x3)
    assert_tree_allclose(got, want)

    single = codax.grad(three_args, argnums=(1,))(x3, y3, z)
    assert isinstance(single, tuple) and len(single) == 1
    assert_tree_allclose(single, (2.0 * x3 * y3,))

    plain = codax.grad(three_args, argnums=1)(x3, y3, z)
    assert isinstance(plain, np.ndarray)
    assert_tree_allclose(plain, 2.0 * x3 * y3)


def two_args(x, y):
    return np.sum(x * y ** 2)


@pytest.mark.parametrize('transform', [codax.grad, codax.value_and_grad, codax.jacfwd,
                                       codax.jacrev, codax.hessian])
@pytest.mark.parametrize('argnums', [2, -3, (0, 2)])
def test_argnums_out_of_range_is_an_error_not_another_argument(transform, argnums, x3, y3):
    # argnums=2 of a two-argument call once wrapped around to argument 0
    with pytest.raises(TypeError, match=r'argnums=-?\d but the function was called with 2'):
        transform(two_args, argnums=argnums)(x3, y3)


def test_negative_argnums_count_from_the_end(x3, y3):
    want = 2.0 * x3 * y3
    assert_tree_allclose(codax.grad(two_args, argnums=-1)(x3, y3), want)
    assert_tree_allclose(codax.jacrev(codax.grad(two_args), argnums=-1)(x3, y3),
                         np.diag(2.0 * y3))
    assert_tree_allclose(codax.jacfwd(codax.grad(two_args, argnums=-1), argnums=-1)(x3, y3),
                         np.diag(2.0 * x3))


@pytest.mark.parametrize('call', [
    lambda x: codax.grad(two_args)(x, x, x), lambda x: codax.value_and_grad(two_args)(x, x, x),
    lambda x: codax.jvp(two_args, (x, x, x), (x, x, x)),
    lambda x: codax.grad(two_args).source(x, x, x)])
def test_too_many_arguments_is_a_type_error_naming_the_function(call, x3):
    with pytest.raises(TypeError, match=r'two_args\(\): too many positional arguments'):
        call(x3)


@pytest.mark.parametrize('primals, tangents', [
    (np.ones(3), np.ones(3)), ((np.ones(3),), np.ones(3)), (np.ones(3), (np.ones(3),))])
def test_jvp_primals_must_be_a_tuple(primals, tangents):
    with pytest.raises(TypeError, match='tuples or lists'):
        codax.jvp(np.sin, primals, tangents)


def test_value_and_grad_argnums_tuple(x3, y3):
    z = np.array([0.3, -0.2, 0.9])
    value, grads = codax.value_and_grad(three_args, argnums=(0, 1, 2))(x3, y3, z)
    np.testing.assert_allclose(value, three_args(x3, y3, z), rtol=1e-12)
    assert_tree_allclose(grads, numeric_grad(three_args, (x3, y3, z), (0, 1, 2)))
    checked = check_grad(three_args, x3, y3, z, argnums=(0, 1, 2))
    assert_tree_allclose(checked, grads, rtol=1e-5, atol=1e-7)


def loss_with_aux(x):
    y = np.tanh(x)
    loss = np.sum(y ** 2)
    return loss, {"y": y, "mean": np.mean(x)}


def test_has_aux_grad(x3):
    g, aux = codax.grad(loss_with_aux, has_aux=True)(x3)
    y = np.tanh(x3)
    assert_tree_allclose(g, 2.0 * y * (1.0 - y ** 2))
    assert_tree_allclose(aux, {"y": y, "mean": np.mean(x3)}, rtol=1e-12, atol=1e-14)


def test_has_aux_value_and_grad(x3):
    (value, aux), g = codax.value_and_grad(loss_with_aux, has_aux=True)(x3)
    y = np.tanh(x3)
    np.testing.assert_allclose(value, np.sum(y ** 2), rtol=1e-12)
    assert_tree_allclose(g, 2.0 * y * (1.0 - y ** 2))
    assert_tree_allclose(aux, {"y": y, "mean": np.mean(x3)}, rtol=1e-12, atol=1e-14)


def test_has_aux_vjp(x3):
    out, vjp_fun, aux = codax.vjp(loss_with_aux, x3, has_aux=True)
    y = np.tanh(x3)
    np.testing.assert_allclose(out, np.sum(y ** 2), rtol=1e-12)
    assert_tree_allclose(aux, {"y": y, "mean": np.mean(x3)}, rtol=1e-12, atol=1e-14)
    (ct,) = vjp_fun(2.0)
    assert_tree_allclose(ct, 4.0 * y * (1.0 - y ** 2))


def two_arg_vector(x, y):
    return np.sin(x) * y


def test_vjp_vector_output(x3, y3):
    out, vjp_fun = codax.vjp(two_arg_vector, x3, y3)
    assert_tree_allclose(out, np.sin(x3) * y3, rtol=1e-12)
    ct = np.array([1.0, -2.0, 0.5])
    cts = vjp_fun(ct)
    assert isinstance(cts, tuple) and len(cts) == 2
    assert_tree_allclose(cts, (ct * np.cos(x3) * y3, ct * np.sin(x3)))


def matvec(A, x):
    return A @ x


def test_vjp_matrix_cotangent_shapes():
    A = np.random.default_rng(3).uniform(-1.0, 1.0, size=(2, 3))
    x = np.array([0.5, -1.0, 2.0])
    out, vjp_fun = codax.vjp(matvec, A, x)
    assert_tree_allclose(out, A @ x, rtol=1e-12)
    ct = np.array([1.5, -0.5])
    gA, gx = vjp_fun(ct)
    assert_tree_allclose(gA, np.outer(ct, x))
    assert_tree_allclose(gx, A.T @ ct)


def python_float_arg(s, x):
    return s ** 3 * np.sum(x)


def test_grad_wrt_python_float(x3):
    g = codax.grad(python_float_arg)(1.5, x3)
    assert np.shape(g) == ()
    np.testing.assert_allclose(float(g), 3.0 * 1.5 ** 2 * np.sum(x3), rtol=1e-8)


# ==========================================================================
# Pytrees
# ==========================================================================

def dict_fn(p):
    return np.sum(p["a"] ** 2) + np.sum(np.sin(p["b"])) * p["c"]


def list_fn(xs):
    return np.sum(xs[0] * xs[1]) + np.sum(np.exp(xs[2]))


def nested_tuple_fn(t):
    x, (y, s) = t
    return np.sum(x ** 2 * s) + np.sum(np.cos(y))


def test_pytree_dict(x3, y3):
    p = {"a": x3, "b": y3, "c": 0.5}
    g = codax.grad(dict_fn)(p)
    assert isinstance(g, dict) and set(g) == {"a", "b", "c"}
    want = {"a": 2.0 * x3, "b": 0.5 * np.cos(y3), "c": np.sum(np.sin(y3))}
    assert_tree_allclose(g, want)
    assert np.shape(g["c"]) == ()


def test_pytree_list(x3, y3):
    xs = [x3, y3, np.array([[0.1, 0.2], [0.3, 0.4]])]
    g = codax.grad(list_fn)(xs)
    assert isinstance(g, list) and len(g) == 3
    assert_tree_allclose(g, [y3, x3, np.exp(xs[2])])


def test_pytree_nested_tuple(x3, y3):
    t = (x3, (y3, 1.5))
    g = codax.grad(nested_tuple_fn)(t)
    assert isinstance(g, tuple) and isinstance(g[1], tuple)
    assert_tree_allclose(g, (3.0 * x3, (-np.sin(y3), np.sum(x3 ** 2))))


def test_pytree_in_vjp_and_value_and_grad(x3, y3):
    p = {"a": x3, "b": y3, "c": 0.5}
    want = {"a": 2.0 * x3, "b": 0.5 * np.cos(y3), "c": np.sum(np.sin(y3))}
    value, g = codax.value_and_grad(dict_fn)(p)
    np.testing.assert_allclose(value, dict_fn(p), rtol=1e-12)
    assert_tree_allclose(g, want)
    out, vjp_fun = codax.vjp(dict_fn, p)
    (ct,) = vjp_fun(1.0)
    assert_tree_allclose(ct, want)


# ==========================================================================
# Lambdas, closures, source()
# ==========================================================================

def test_inline_lambda(x3):
    g = codax.grad(lambda x: np.sum(np.sin(x)))(x3)
    assert_tree_allclose(g, np.cos(x3))


def test_lambda_with_argnums(x3, y3):
    g = codax.grad(lambda a, b: np.sum(a * b ** 3), argnums=1)(x3, y3)
    assert_tree_allclose(g, 3.0 * x3 * y3 ** 2)


def make_f(data):
    def f(x):
        return np.sum(data * np.sin(x))
    return f


def make_power(p):
    def f(x):
        return np.sum(x ** p)
    return f


def test_closure_recreated_in_loop(x3):
    rng = np.random.default_rng(7)
    for i in range(3):
        data_i = rng.uniform(-2.0, 2.0, size=3)
        f = make_f(data_i)
        g = codax.grad(f)(x3)
        assert_tree_allclose(g, data_i * np.cos(x3))


def test_closure_over_python_scalar_recreated_in_loop():
    x = np.array([0.5, 1.5, 2.0])
    for p in (2.0, 3.0, 4.0):
        g = codax.grad(make_power(p))(x)
        assert_tree_allclose(g, p * x ** (p - 1.0))


def source_target(x):
    return np.sum(np.exp(x) * x)


def test_source_is_python(x3):
    src = codax.grad(source_target).source(x3)
    assert isinstance(src, str) and src.strip()
    compile(src, "<codax generated>", "exec")
    assert codax.source(codax.grad(source_target), x3) == src
    # the transform still computes the right thing after asking for source
    assert_tree_allclose(codax.grad(source_target)(x3), np.exp(x3) * (x3 + 1.0))


# ==========================================================================
# Unsupported syntax -> codax.SourceError pointing at the user's line
# ==========================================================================

def uses_try(x):
    y = np.sin(x)
    try:  #@try
        y = y * 2.0
    except ValueError:
        y = y * 3.0
    return np.sum(y)


def uses_with(x):
    y = np.cos(x)
    with np.errstate(all="ignore"):  #@with
        y = np.log(y)
    return np.sum(y)


_COUNTER = 0


def uses_global(x):
    global _COUNTER  #@global
    _COUNTER += 1
    return np.sum(x ** 2)


def uses_yield(x):
    total = 0.0
    for v in x:
        total = total + v
        yield total  #@yield


def uses_class(x):
    y = x * 2.0

    class Box:  #@class
        scale = 2.0

    return np.sum(y * Box.scale)


def uses_eval(x):
    y = eval("x * 2.0")  #@eval
    return np.sum(y)


@pytest.mark.parametrize("fn,marker", [
    (uses_try, "try"),
    (uses_with, "with"),
    (uses_global, "global"),
    (uses_yield, "yield"),
    (uses_class, "class"),
    (uses_eval, "eval"),
], ids=["try", "with", "global", "yield", "class", "eval"])
def test_unsupported_syntax_raises_source_error(fn, marker, x3):
    assert issubclass(codax.SourceError, Exception)
    with pytest.raises(codax.SourceError) as excinfo:
        codax.grad(fn)(np.abs(x3) + 0.1)
    assert_points_at(str(excinfo.value), marker)


def non_ascii_before_the_error(x):
    label = "σ²"; y = np.fft.hfft(x)  #@non_ascii
    return np.sum(y) + len(label)


def test_caret_counts_characters_not_bytes(x3):
    with pytest.raises(codax.SourceError) as excinfo:
        codax.grad(non_ascii_before_the_error)(x3)
    message = str(excinfo.value)
    with open(__file__) as fh:
        code = fh.read().splitlines()[marker_line("non_ascii") - 1]
    column = code.index("np.fft.hfft")
    assert f"{THIS_FILE}:{marker_line('non_ascii')}:{column + 1}:" in message, message
    shown, caret = message.split("\n")[1:3]
    assert caret.index("^") == shown.index("np.fft.hfft"), message


def test_source_error_also_from_vjp_and_source(x3):
    with pytest.raises(codax.SourceError) as excinfo:
        codax.vjp(uses_try, x3)
    assert_points_at(str(excinfo.value), "try")
    with pytest.raises(codax.SourceError) as excinfo:
        codax.source(uses_global, x3)
    assert_points_at(str(excinfo.value), "global")


def test_no_source_builtin(x3):
    with pytest.raises((TypeError, codax.SourceError)) as excinfo:
        codax.grad(sorted)(x3)
    assert "source" in str(excinfo.value).lower()


def test_grad_of_a_numpy_primitive_itself():
    # as jax.grad(jnp.sin): a primitive is transformed like a one-line function
    assert np.isclose(codax.grad(np.sin)(0.5), np.cos(0.5))
    assert np.isclose(codax.grad(codax.grad(np.tanh))(0.3),
                      -2 * np.tanh(0.3) * (1 - np.tanh(0.3) ** 2))
    x = np.array([0.5, 2.0])
    np.testing.assert_allclose(codax.grad(np.sum)(x), np.ones(2))


def test_int_output_is_an_error(x3):
    with pytest.raises(TypeError, match="floating-point"):
        codax.grad(int_output)(x3)


def int_output(x):
    return 3


def test_no_source_exec_defined(x3):
    namespace = {"np": np}
    exec("def exec_fn(x):\n    return np.sum(x ** 2)\n", namespace)
    with pytest.raises((TypeError, codax.SourceError)) as excinfo:
        codax.grad(namespace["exec_fn"])(x3)
    assert "source" in str(excinfo.value).lower()


# ==========================================================================
# NumPy function without a derivative rule
# ==========================================================================

def uses_hfft(x):
    y = x * 2.0
    return np.sum(np.fft.hfft(y))  #@hfft


def uses_sort_complex(x):
    y = np.sin(x)
    z = np.real(np.sort_complex(y * 4.0))  #@sort_complex
    return np.sum(z ** 2)


@pytest.mark.parametrize("fn,marker,fname", [
    (uses_hfft, "hfft", "hfft"),
    (uses_sort_complex, "sort_complex", "sort_complex"),
], ids=["hfft", "sort_complex"])
def test_numpy_function_without_rule(fn, marker, fname, x3):
    with pytest.raises((TypeError, codax.SourceError)) as excinfo:
        codax.grad(fn)(x3)
    message = str(excinfo.value)
    assert fname in message, "function name %r not in message:\n%s" % (fname, message)
    where = "%s:%d" % (THIS_FILE, marker_line(marker))
    assert where in message, "expected %r in error message:\n%s" % (where, message)


# ---- writes through views: NumPy writes in place, codax by value, so refuse ----

def writes_through_view(x):
    y = x.copy()
    v = y[:2]
    v *= 3.0  #@view_write
    return np.sum(y * x)


def writes_into_aliased_base(x):
    y = x.copy()
    v = y.reshape(2, 2)
    y[0] = 5.0  #@base_write
    return np.sum(v)


def writes_through_copy(x):
    y = x.copy()
    v = y[:2].copy()
    v *= 3.0
    y[0] = 1.0
    return np.sum(y * x) + np.sum(v)


@pytest.mark.parametrize("fn,marker", [(writes_through_view, "view_write"),
                                       (writes_into_aliased_base, "base_write")])
def test_write_through_shared_memory_is_refused(fn, marker):
    x = np.arange(1.0, 5.0)
    with pytest.raises(codax.SourceError) as excinfo:
        codax.grad(fn)(x)
    message = str(excinfo.value)
    assert "%s:%d" % (THIS_FILE, marker_line(marker)) in message
    assert "share memory" in message and ".copy()" in message


def test_write_to_a_copy_is_allowed():
    x = np.array([0.5, -1.0, 2.0, 1.5])
    got = codax.grad(writes_through_copy)(x)
    # d/dx [sum(y*x) + sum(3*x[:2])] with y = x except y[0] = 1
    want = 2 * x + np.array([3.0, 3.0, 0.0, 0.0])
    want[0] = 1.0 + 3.0
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---- a global naming a primitive is baked into generated code; rebinding it
# must respecialize, also for a helper reached through a call ----

activation = np.tanh


def uses_activation(x):
    return np.sum(activation(x))


def calls_activation_helper(x):
    return uses_activation(x) * 2.0


def test_rebinding_a_global_primitive_respecializes():
    global activation
    x = np.array([0.3, -0.7])
    direct, through_call = codax.grad(uses_activation), codax.grad(calls_activation_helper)
    try:
        np.testing.assert_allclose(direct(x), 1 - np.tanh(x) ** 2)
        np.testing.assert_allclose(through_call(x), 2 * (1 - np.tanh(x) ** 2))
        activation = np.sin
        np.testing.assert_allclose(direct(x), np.cos(x))
        np.testing.assert_allclose(through_call(x), 2 * np.cos(x))
    finally:
        activation = np.tanh


# ---- custom rules given something that is not a rule, and rules not given ----

def _two_args(x, y):
    return x * y


def test_bad_custom_rules_name_the_function_and_its_line():
    where = rf'_two_args \(.*test_api_errors\.py:{_two_args.__code__.co_firstlineno}\)'
    with pytest.raises(TypeError, match=where + r': defvjp expects callable fwd and bwd rules, '
                                                r'got bwd=3'):
        codax.custom_vjp(_two_args).defvjp(lambda x, y: (x * y, None), 3)
    with pytest.raises(TypeError, match=where + ': defjvp expects a callable rule'):
        codax.custom_jvp(_two_args).defjvp('rule')
    undefined = codax.custom_vjp(_two_args)
    with pytest.raises(TypeError, match=where + r': custom_vjp needs defvjp\(fwd, bwd\)'):
        codax.grad(lambda x: undefined(x, 2.0))(1.0)
    with pytest.raises(TypeError, match='expects a callable'):
        codax.custom_jvp(3.0)
