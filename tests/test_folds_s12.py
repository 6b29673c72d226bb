"""What codax knows while compiling (session 12).

A branch for another NumPy version (`if hasattr(np, 'trapezoid')`, a version
test) is decided at compile time, and a module attribute NumPy lacks is an
AttributeError only where its line runs, as in Python. np.linalg.norm's `ord`
spelled np.inf, -np.inf, numpy.inf, float('inf'), -1 or 'fro' picks its
derivative rule while compiling. Values are checked against NumPy, derivatives
against central differences, vmap against a Python loop.
"""
import math
import sys
import types

import numpy
import numpy as np
import pytest

import codax
from helpers import numeric_jacobian

X = np.array([0.3, -0.7, 1.1, 0.45])
CONFIG = types.ModuleType('config')       # a user's module: its data is read at run time
CONFIG.SCALED = True


def _code(source):
    """Generated source without its comments (which quote the user's lines)."""
    return '\n'.join(line for line in source.splitlines() if not line.strip().startswith('#'))


def _check_derivatives(f, x):
    """grad against differences of f, hessian against differences of grad,
    vmap(grad) against a loop, jit against f."""
    np.testing.assert_allclose(codax.grad(f)(x), numeric_jacobian(f, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(codax.hessian(f)(x), numeric_jacobian(codax.grad(f), x, 1e-5),
                               rtol=1e-4, atol=1e-5)
    xs = np.stack([x, 1.5 * x])
    np.testing.assert_allclose(codax.vmap(codax.grad(f))(xs),
                               np.stack([codax.grad(f)(v) for v in xs]), rtol=1e-12)
    np.testing.assert_allclose(codax.jit(f)(x), f(x), rtol=1e-12)


# ---- branches for another NumPy, decided while compiling --------------------

def _trapezoid_either(x):
    if hasattr(np, 'trapezoid'):
        return np.trapezoid(x ** 2)
    return np.trapz(x ** 2)


def _getattr_default(x):
    if getattr(np, 'not_a_numpy_function', None) is None:
        y = np.sum(np.sin(x) * x)
    else:
        y = np.not_a_numpy_function(x)
    return y


def _major_version(x):
    if int(np.__version__.split('.')[0]) >= 1 and sys.version_info >= (3, 0):
        return np.sum(np.exp(x) * x)
    return np.not_a_numpy_function(x)


def _numpy_version_object(x):
    if np.lib.NumpyVersion(np.__version__) < '1.0.0' or not hasattr(np, 'sin'):
        return np.not_a_numpy_function(x)
    return np.sum(np.cos(x) * x ** 2)


def _conditional_expression(x):
    y = np.tanh(x) if hasattr(np, 'tanh') else np.not_a_numpy_function(x)
    return np.sum(y * x)


@pytest.mark.parametrize('f', [_trapezoid_either, _getattr_default, _major_version,
                               _numpy_version_object, _conditional_expression])
def test_a_branch_for_another_numpy_is_decided_while_compiling(f):
    _check_derivatives(f, X)
    source = _code(codax.grad(f).source(X))
    assert 'AttributeError' not in source and 'hasattr' not in source, source


# ---- a missing attribute raises only where its line runs ---------------------

def _missing_in_branch_not_taken(x):
    s = np.sum(x ** 2)
    if s > 1e6:
        return np.not_a_numpy_function(x)
    return np.sum(np.sin(x)) * s


def _missing_reached(x):
    y = np.sin(x)
    if np.sum(y) > -1e6:
        z = np.not_a_numpy_function(y)  #@reached
    else:
        z = y
    return np.sum(z)


def _missing_at_top_level(x):
    return np.sum(np.not_a_numpy_function(x))  #@top


def test_missing_attribute_in_a_branch_not_taken():
    _check_derivatives(_missing_in_branch_not_taken, X)


def _line_of(marker):
    with open(__file__) as source:
        return next(k for k, line in enumerate(source, 1) if line.rstrip().endswith('#@' + marker))


@pytest.mark.parametrize('f, marker', [(_missing_reached, 'reached'),
                                       (_missing_at_top_level, 'top')])
@pytest.mark.parametrize('transform', [codax.grad, codax.jacfwd, codax.jit,
                                       lambda f: codax.vmap(codax.grad(f))],
                         ids=['grad', 'jacfwd', 'jit', 'vmap-grad'])
def test_missing_attribute_reached_raises_attribute_error_at_its_line(f, marker, transform):
    x = np.stack([X, X]) if transform not in (codax.grad, codax.jacfwd, codax.jit) else X
    with pytest.raises(AttributeError) as info:
        transform(f)(x)
    assert f'{__file__}:{_line_of(marker)}:' in str(info.value)
    assert 'not_a_numpy_function' in str(info.value)


def _user_module_flag(x):
    if CONFIG.SCALED:
        return np.sum(x ** 2) * 3.0
    return np.sum(x ** 2)


def test_a_user_modules_data_is_read_when_the_line_runs():
    grad = codax.grad(_user_module_flag)
    try:
        np.testing.assert_allclose(grad(X), 6.0 * X)
        CONFIG.SCALED = False
        np.testing.assert_allclose(grad(X), 2.0 * X)
    finally:
        CONFIG.SCALED = True


# ---- constants that rule templates read: np.linalg.norm's ord ----------------

NORMS = {
    'np.inf': lambda x: np.linalg.norm(x, ord=np.inf),
    '-np.inf': lambda x: np.linalg.norm(x, ord=-np.inf),
    'numpy.inf': lambda x: np.linalg.norm(x, ord=numpy.inf),
    "float('inf')": lambda x: np.linalg.norm(x, ord=float('inf')),
    "-float('inf')": lambda x: np.linalg.norm(x, ord=-float('inf')),
    '-math.inf': lambda x: np.linalg.norm(x, ord=-math.inf),
    '-1': lambda x: np.linalg.norm(x, ord=-1),
    '-2': lambda x: np.linalg.norm(x, ord=-2),
    '-1.5': lambda x: np.linalg.norm(x, ord=-1.5),
    "'fro'": lambda x: np.linalg.norm(x, ord='fro'),
    "'nuc'": lambda x: np.linalg.norm(x, ord='nuc'),
    '-np.inf, axis=(1, 0)': lambda x: np.linalg.norm(x, ord=-np.inf, axis=(1, 0)),
}
VECTOR_ONLY = ('-1.5',)
MATRIX_ONLY = ("'fro'", "'nuc'", '-np.inf, axis=(1, 0)')
M = np.array([[0.9, -0.3, 0.5], [0.2, 1.4, -0.6], [-0.8, 0.1, 0.95]])   # no ties
NORM_CASES = [pytest.param(k, x, id=f'{k}-{name}') for k in NORMS
              for name, x in (('vector', X), ('matrix', M))
              if not (k in VECTOR_ONLY and x.ndim == 2 or k in MATRIX_ONLY and x.ndim == 1)]


@pytest.mark.parametrize('spelling, x', NORM_CASES)
def test_norm_order_spelled_as_a_constant(spelling, x):
    f = NORMS[spelling]
    np.testing.assert_allclose(codax.jit(f)(x), eval(f'np.linalg.norm(x, ord={spelling})'),
                               rtol=1e-12)
    _check_derivatives(f, x)
    if 'axis' not in spelling:    # (a tuple is a name in normal form, read at run time)
        # the rule is picked while compiling: no run-time choice among norm's rules
        assert 'norm_rule' not in _code(codax.grad(f).source(x))
