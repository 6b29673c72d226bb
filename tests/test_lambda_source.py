"""codax finds a lambda's own source however it is written: in a dict literal,
a `for` header, a comprehension, a conditional, next to lambdas with the same
parameters on one line, or spread over lines inside a call.

Each test checks that the *right* lambda was transformed: lambdas with
different bodies on one line must give different results, each matching
finite differences (grad) or a Python loop (vmap).
"""

import importlib.util
import linecache
import os
import re
import sys

import numpy as np
import pytest

import codax
from helpers import assert_tree_allclose, numeric_grad
from transformer import nodes, parse

THIS_FILE = os.path.basename(__file__)


def marker_line(name):
    """1-based line number of the single line carrying the marker ``#@name``."""
    with open(__file__) as fh:
        lines = fh.read().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith("#@" + name)]
    assert len(hits) == 1, hits
    return hits[0]


def fd_grad(f, x):
    return numeric_grad(f, (x,))


X = np.array([0.3, -0.7, 1.1])


# ==========================================================================
# The spellings that used to fail
# ==========================================================================

def test_lambdas_in_a_dict_literal_spanning_lines():
    x = X
    cases = {
        'sin': lambda: codax.grad(lambda x: np.sum(np.sin(x) ** 3))(x),
        'cos': lambda: codax.grad(lambda x: np.sum(np.cos(x) ** 3))(x),
        'hessian': lambda: codax.jacrev(codax.jacrev(lambda x: np.sum(np.sin(x) ** 3)))(x),
    }
    assert_tree_allclose(cases['sin'](), fd_grad(lambda v: np.sum(np.sin(v) ** 3), x))
    assert_tree_allclose(cases['cos'](), fd_grad(lambda v: np.sum(np.cos(v) ** 3), x))
    # d2/dx2 sin(x)^3 = 6 sin cos^2 - 3 sin^3, on the diagonal
    s, c = np.sin(x), np.cos(x)
    assert_tree_allclose(cases['hessian'](), np.diag(6 * s * c ** 2 - 3 * s ** 3))


def test_lambdas_in_a_for_header():
    g = lambda z: np.sum(z ** 3)  # noqa: E731
    z = np.array([1.5, -0.5, 2.0])
    results = []
    for T in (codax.grad, lambda g: codax.grad(lambda z: codax.grad(g)(z)[0])):
        results.append(T(g)(z))
    assert_tree_allclose(results[0], fd_grad(g, z))
    # the gradient of d/dz0 sum(z^3) = 3 z0^2 is (6 z0, 0, 0)
    assert_tree_allclose(results[1], fd_grad(lambda v: 3 * v[0] ** 2, z))


def test_lambda_in_a_list_comprehension():
    ys = [codax.grad(lambda x: x ** k)(2.0) for k in range(1, 4)]
    for k, y in zip(range(1, 4), ys):
        assert np.isclose(y, fd_grad(lambda x: x ** k, 2.0), rtol=1e-6)


@pytest.mark.parametrize("flag", [True, False])
def test_two_lambdas_in_a_conditional_expression(flag):
    f = codax.vmap(lambda x: x + np.sin(x)) if flag else codax.vmap(lambda x: x - np.cos(x))
    want = np.array([v + np.sin(v) if flag else v - np.cos(v) for v in X])
    assert_tree_allclose(f(X), want)


def test_a_tuple_of_lambdas_with_the_same_parameters():
    pairs = (lambda x: x * 2.0 + x ** 3, lambda x: x * 3.0 - x ** 2)
    for f in pairs:
        assert np.isclose(codax.grad(f)(1.5), fd_grad(f, 1.5), rtol=1e-6)
    assert not np.isclose(codax.grad(pairs[0])(1.5), codax.grad(pairs[1])(1.5))


def test_bodies_differing_in_a_constant_only():
    fs = [lambda x: np.sum(x * 2.0), lambda x: np.sum(x * 5.0)]
    assert_tree_allclose(codax.grad(fs[0])(X), 2.0 * np.ones(3))
    assert_tree_allclose(codax.grad(fs[1])(X), 5.0 * np.ones(3))


def test_identical_lambdas_on_one_line():
    twins = (lambda x: np.sin(x) * x, lambda x: np.sin(x) * x)
    for f in twins:
        assert np.isclose(codax.grad(f)(0.8), fd_grad(f, 0.8), rtol=1e-6)


def test_nested_lambdas_with_the_same_parameter():
    outer = lambda x: codax.grad(lambda x: np.sin(x) * x)(x) + x  # noqa: E731
    assert np.isclose(outer(0.7), fd_grad(lambda x: np.sin(x) * x, 0.7) + 0.7, rtol=1e-6)
    assert np.isclose(_recovered(outer)(0.7), outer(0.7))


def test_lambda_text_in_a_comment_or_string_is_not_taken():
    s = "lambda x: x * 7"; g = codax.grad(lambda x: x * 3.0)(1.0)  # lambda x: x * 5  # noqa
    assert s and g == 3.0


def test_non_ascii_text_before_the_lambda():
    d = {'é': codax.grad(lambda x: x * 2.0)(1.0), 'ü': codax.grad(lambda x: x * 5.0)(1.0)}
    assert d == {'é': 2.0, 'ü': 5.0}


def test_parameters_beyond_the_positional_ones_tell_lambdas_apart():
    fs = (lambda x, *rest: x * 2.0, lambda x, *more: x * 4.0)
    assert [parse._param_names(_lambda_node(f)) for f in fs] == [['x', 'rest'], ['x', 'more']]
    assert [_recovered(f)(1.0) for f in fs] == [2.0, 4.0]


def _recovered(fn):
    """`fn` rebuilt from the source codax read for it (kept in linecache, so
    that codax can read the lambdas inside it in turn)."""
    unit = parse.parse_function(fn)
    unit.tree.name = 'recovered'
    text = nodes.to_source(unit.tree)
    filename = '<recovered %s>' % id(fn)
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = dict(fn.__globals__, **unit.closure)
    exec(compile(text, filename, 'exec'), namespace)
    return namespace['recovered']


def _lambda_node(fn):
    tree = parse.parse_function(fn).tree
    return nodes.Lambda(args=tree.args, body=tree.body[0].value)


# ==========================================================================
# Lambdas spread over lines
# ==========================================================================

def test_lambda_body_spanning_lines_inside_a_call():
    g = codax.grad(lambda x: np.sum(np.sin(x)
                                    * np.cos(x)))(X)
    assert_tree_allclose(g, fd_grad(lambda v: np.sum(np.sin(v) * np.cos(v)), X))


def test_lambda_starting_on_a_continuation_line():
    batched = codax.vmap(
        lambda v: v * 2.0 + np.sin(v),
        in_axes=0)(X)
    assert_tree_allclose(batched, np.array([v * 2.0 + np.sin(v) for v in X]))


def test_lambdas_on_consecutive_lines_of_one_tuple():
    fs = (lambda x: x ** 2,
          lambda x: (x ** 3
                     + x), lambda x: x ** 4)
    for f in fs:
        assert np.isclose(codax.grad(f)(1.3), fd_grad(f, 1.3), rtol=1e-6)
    assert len({round(codax.grad(f)(1.3), 6) for f in fs}) == 3


def test_lambda_after_a_backslash_continuation():
    f = lambda x: np.sum(x ** 2) + \
        np.sum(np.exp(x))  # noqa: E731
    assert_tree_allclose(codax.grad(f)(X), fd_grad(f, X))


# ==========================================================================
# Both ways of choosing: code positions (3.11+) and compiled code (any)
# ==========================================================================

k = 3.0
TRICKY = {
    'tuple': (lambda x: x * 2.0, lambda x: x * 3.0),
    'conditional': (lambda x: x + 1.0) if k > 0 else (lambda x: x - 1.0),
    'nested': [lambda x: codax.grad(lambda x: x ** 3)(x) + x],
    'globals vs locals': [(lambda k: lambda x: x * k)(2.0), lambda x: x * k],
}


@pytest.mark.parametrize("selector", ["positions", "compiled code"])
@pytest.mark.parametrize("name", list(TRICKY))
def test_the_chosen_source_computes_what_the_lambda_computes(name, selector, monkeypatch):
    if selector == "positions" and sys.version_info < (3, 11):
        pytest.skip("code positions (co_positions) need Python 3.11")
    if selector == "compiled code":
        monkeypatch.setattr(parse, "_same_positions", lambda fn, lam: False)
    lambdas = TRICKY[name]
    lambdas = lambdas if isinstance(lambdas, (list, tuple)) else [lambdas]
    for fn in lambdas:
        assert _recovered(fn)(1.5) == fn(1.5)


def test_a_lambda_compiles_to_its_own_code_with_its_free_names_as_cells():
    scale = 2.0
    fs = (lambda x: x * scale, lambda x: x * scale + 0.0, lambda x: x * k)
    for fn in fs:
        agrees = [parse._same_code(fn, _lambda_node(other)) for other in fs]
        assert agrees == [other is fn for other in fs]


# ==========================================================================
# Errors still point at the user's line
# ==========================================================================

def test_error_inside_a_lambda_points_at_its_line():
    with pytest.raises(codax.SourceError) as excinfo:
        pair = (lambda x: x, lambda x: np.sum(np.fft.ihfft(x)))  #@norule
        codax.grad(pair[1])(X)
    message = str(excinfo.value)
    assert "%s:%d:" % (THIS_FILE, marker_line("norule")) in message
    code_row, caret = message.splitlines()[-2:]
    assert code_row.index("np.fft.ihfft") == caret.index("^")


def test_error_on_the_second_line_of_a_lambda():
    with pytest.raises(codax.SourceError) as excinfo:
        codax.grad(lambda x: np.sum(x) + np.sum(
            np.fft.ihfft(x)))(X)  #@norule2
    message = str(excinfo.value)
    assert "%s:%d:" % (THIS_FILE, marker_line("norule2")) in message
    code_row, caret = message.splitlines()[-2:]
    assert code_row.index("np.fft.ihfft") == caret.index("^")


def _imported_then_edited(tmp_path, name, before, after):
    """A module imported from `before`, whose file then reads `after`."""
    path = tmp_path / f"{name}.py"
    path.write_text(before)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path.write_text(after)
    linecache.checkcache(str(path))
    return module


def test_out_of_date_source_with_lambdas_alike_is_a_clear_error(tmp_path):
    module = _imported_then_edited(tmp_path, "stale_lambdas",
                                   "pair = (lambda x: x * 2.0, lambda x: x * 3.0)\n",
                                   "pair = (lambda x: x * 40.0, lambda x: x * 50.0)\n")
    with pytest.raises(TypeError, match=re.escape("could not be told apart")):
        codax.grad(module.pair[0])(1.0)


# ==========================================================================
# Multi-line lambdas under grad, jit and vmap (the whole file is parsed)
# ==========================================================================

MULTILINE = {
    'backslash': (lambda a: np.sum(a) +\
        np.sum(a ** 2), 1),  # noqa: E502
    'newline in brackets': ((lambda a:
                             np.sum(a * 3.0)), 1),
    'two on a line, the second spanning lines': (lambda a: np.sum(a), lambda a: np.sum(
        np.sin(a)) * 2.0),
}
MULTILINE_FNS = [MULTILINE['backslash'][0], MULTILINE['newline in brackets'][0],
                 *MULTILINE['two on a line, the second spanning lines']]


@pytest.mark.parametrize("i", range(len(MULTILINE_FNS)))
def test_multiline_lambdas_compute_what_they_compute_in_python(i):
    fn = MULTILINE_FNS[i]
    assert np.isclose(codax.jit(fn)(X), fn(X))
    assert_tree_allclose(codax.grad(fn)(X), fd_grad(fn, X))
    xs = np.stack([X, 2 * X])
    assert_tree_allclose(codax.vmap(fn)(xs), np.array([fn(x) for x in xs]))


def test_lambda_continued_inside_call_arguments():
    out = codax.vmap(lambda v: v
                     + np.cos(v), in_axes=0)(X)
    assert_tree_allclose(out, X + np.cos(X))


def test_out_of_date_source_with_a_lone_lambda_is_a_clear_error(tmp_path):
    # the one lambda on the line now is not the function that runs: never use it
    module = _imported_then_edited(tmp_path, "stale_lone_lambda", "f = lambda x: x * 2.0\n",
                                   "f = lambda x: x * 40.0\n")
    with pytest.raises(codax.SourceError, match=r"stale_lone_lambda\.py:1"):
        codax.grad(module.f)(1.0)
