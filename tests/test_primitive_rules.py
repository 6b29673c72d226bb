"""Every record of the primitive table, checked on its own (no compiler).

For each record and each example call in CASES below:

* the impl (`record.impl`, evaluated with `xp`=numpy, `rt`=runtime) runs;
* every VJP template is evaluated as the generated code would evaluate it,
  with `g`, `ans`, the bound parameters (defaults filled), `xp` and `rt`;
* the result must be the adjoint: <vjp, v> == <g, J v> for random directions v,
  J v by central finite differences of the impl in float64;
* cotangents in every form the convention allows are tried: a full random
  array, a Python scalar and a partly broadcast array (both standing for their
  broadcast), the zero 0.0, and for tuple/list outputs a 0.0 entry;
* templates must not modify their inputs, and must keep float32 in float32.

A record without a case fails (so a new record needs a new case), and so
does a differentiable parameter without a VJP template (unless listed in
STATIC_PARAMS with a reason). Non-differentiable records get a smoke call.
"""
import collections
import copy
import re

import numpy as np
import pytest

import runtime
from runtime import TABLE

EPS = 1e-6
RTOL = 1e-6
ATOL = 1e-8
DIRECTIONS = 2

# (record, parameter) pairs that are differentiable in the table's sense but
# legitimately have no VJP template. Each needs a reason.
STATIC_PARAMS = {}

# Differentiable records that have no derivative rules at all, on purpose
# (each with the reason). Code that needs one fails with a SourceError naming
# the helper (tests/test_vmap_rules.py checks that).
NO_DERIVATIVE = {
    'rt_batch_loop': 'runs any function once per example: forward mode goes through its '
                     'Python definition (codax/calls.py) instead of rules; reverse mode '
                     'is not supported yet',
    'rt_batched_form_hvp': "rt_batched_form's second derivative (reverse): no third "
                           'derivatives of draws inside vmap',
    'rt_batched_form_jvp2': "rt_batched_form's second derivative (forward): no third "
                            'derivatives of draws inside vmap',
    'at_apply': 'at(x)[idx].apply(func) runs any function: derivatives go through its '
                'Python definition (codax/numpy.py) instead of rules',
}

# (record, parameter) pairs whose adjoint may leave float32 (with the reason).
DTYPE_EXEMPT = {
    ('array', 'object'): 'np.array of Python floats and float32 arrays is itself float64',
}

_rng = np.random.default_rng(20240607)


# --------------------------------------------------------------------------
# Input factories (all float64, in the domain of the function).
# --------------------------------------------------------------------------

def U(*s, lo=-1.0, hi=1.0):
    return np.asarray(_rng.uniform(lo, hi, size=s))


def P(*s):
    """Positive, away from zero."""
    return U(*s, lo=0.5, hi=2.0)


def NZ(*s):
    """Either sign, away from zero."""
    return np.asarray(P(*s) * _rng.choice([-1.0, 1.0], size=s))


def B(*s):
    """A boolean mask."""
    return np.asarray(_rng.uniform(size=s) > 0.5)


def WELL(n, batch=()):
    """Well-conditioned square matrices."""
    return U(*batch, n, n) + 3.0 * np.eye(n)


def SPD(n, batch=()):
    a = U(*batch, n, n)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def C(*args, **kwargs):
    return (args, kwargs)


def _dom(lo, hi):
    return lambda *s: U(*s, lo=lo, hi=hi)


CASES = {}


def cases(name, *items):
    assert name not in CASES, name
    CASES[name] = list(items)


# ---- element-wise ----
UNARY = {
    'sin': U, 'cos': U, 'tan': U, 'arcsin': _dom(-.9, .9), 'arccos': _dom(-.9, .9),
    'arctan': _dom(-2, 2), 'sinh': U, 'cosh': U, 'tanh': U, 'arcsinh': _dom(-2, 2),
    'arccosh': _dom(1.5, 3), 'arctanh': _dom(-.9, .9), 'exp': U, 'exp2': U, 'expm1': U,
    'log': P, 'log2': P, 'log10': P, 'log1p': _dom(-.5, 1), 'sqrt': P, 'cbrt': NZ,
    'square': U, 'reciprocal': NZ, 'absolute': NZ, 'negative': U, 'positive': U,
    'deg2rad': U, 'rad2deg': U, 'conjugate': U,
}
for _name, _d in UNARY.items():
    cases(_name, C(_d()), C(_d(4)), C(_d(2, 3)), C(float(_d())))

BINARY = {
    'add': (U, U), 'subtract': (U, U), 'multiply': (U, U), 'true_divide': (U, NZ),
    'power': (P, U), 'arctan2': (NZ, NZ), 'hypot': (NZ, NZ), 'maximum': (U, U),
    'minimum': (U, U), 'logaddexp': (U, U), 'logaddexp2': (U, U), 'remainder': (P, P),
    'fmod': (NZ, P), 'fmax': (U, U), 'fmin': (U, U),
}
for _name, (_d1, _d2) in BINARY.items():
    cases(_name, C(_d1(), _d2()), C(_d1(4), _d2(4)), C(_d1(2, 3), _d2(3)),
          C(_d1(2, 1), _d2(1, 3)), C(_d1(), _d2(2, 3)), C(_d1(2, 3), float(_d2())),
          C(float(_d1()), _d2(3)))

cases('where', C(B(2, 3), U(2, 3), U(2, 3)), C(B(3), U(2, 3), 0.5),
      C(B(2, 1), U(1, 3), U(2, 3)), C(np.True_, U(3), U(3)), C(B(3), 0.25, U(3)))
cases('clip', C(U(2, 3), -0.5, 0.5), C(U(2, 3), U(3) * 0.3 - 0.5, 0.4),
      C(U(4), None, 0.2), C(U(4), min=-0.3), C(U(2, 3), min=U(2, 1) * 0.2 - 0.3, max=0.3),
      C(U(3), U(3) - 0.2, U(3) + 0.2), C(U(2, 3), -0.2, U(2, 1) * 0.3 + 0.1))

# ---- reductions ----
_RED = [C(U(5)), C(U(2, 3)), C(U(2, 3), axis=0), C(U(2, 3), axis=-1, keepdims=True),
        C(U(2, 3, 4), axis=(0, 2)), C(U(2, 3, 4), keepdims=True), C(U(2, 3, 4), 1)]
for _name in ('sum', 'mean', 'max', 'min', 'amax', 'amin'):
    cases(_name, *copy.deepcopy(_RED))
# zeros: one in a row (its derivative is the others' product), two (all zero)
_PROD_ZEROS = np.array([[0.0, 1.5, -0.7], [0.0, 0.0, 2.0], [0.6, -1.2, 1.1]])
cases('prod', C(NZ(5)), C(NZ(2, 3), axis=0), C(_PROD_ZEROS, axis=1), C(_PROD_ZEROS.copy()),
      C(np.array([0.3, 0.0, 2.0])), C(NZ(2, 3, 4), axis=(0, 2), keepdims=True),
      C(NZ(2, 3), keepdims=True))
for _name in ('var', 'std'):
    cases(_name, *copy.deepcopy(_RED), C(U(6), ddof=1), C(U(2, 4), axis=1, ddof=1))
cases('cumsum', C(U(5)), C(U(2, 3)), C(U(2, 3), axis=1), C(U(2, 3), 0), C(U(2, 3, 4), axis=-2))
cases('norm', C(NZ(5)), C(NZ(5), 2), C(NZ(5), 1), C(NZ(5), np.inf), C(NZ(5), -np.inf),
      C(NZ(5), 3), C(NZ(5), 0.5), C(NZ(5), 0), C(NZ(5), keepdims=True),
      C(NZ(2, 3)), C(NZ(2, 3), 'fro'), C(NZ(3, 3), 1), C(NZ(3, 3), -1), C(NZ(3, 3), np.inf),
      C(NZ(3, 3), -np.inf), C(NZ(3, 4), 2), C(NZ(3, 4), -2), C(NZ(3, 4), 'nuc'),
      C(NZ(2, 3), axis=1), C(NZ(2, 3), 1, axis=0, keepdims=True), C(NZ(2, 3), np.inf, axis=-1),
      C(NZ(2, 3, 4), axis=(1, 2)), C(NZ(2, 3, 4), 1, axis=(2, 0)),
      C(NZ(2, 3, 4), np.inf, axis=(0, 1), keepdims=True), C(NZ(2, 3, 4), 2, axis=(1, 2)),
      C(NZ(2, 3, 4), 'nuc', axis=(2, 1)), C(NZ(2, 3, 4), 3, axis=(0,)),
      C(NZ(2, 3, 4), keepdims=True))

# ---- linear algebra ----
cases('matmul', C(U(3), U(3)), C(U(2, 3), U(3)), C(U(3), U(3, 4)), C(U(2, 3), U(3, 4)),
      C(U(5, 2, 3), U(3, 4)), C(U(5, 2, 3), U(1, 3, 4)), C(U(2, 3), U(5, 3, 4)),
      C(U(3), U(2, 3, 4)))
cases('dot', C(U(), U(2, 3)), C(U(3), 1.5), C(U(3), U(3)), C(U(2, 3), U(3)), C(U(2, 3), U(3, 4)),
      C(U(2, 2, 3), U(3, 4)), C(U(2, 3), U(4, 3, 5)), C(U(2, 2, 3), U(2, 3, 4)),
      C(U(3), U(2, 3, 4)))
cases('vdot', C(U(3), U(3)), C(U(2, 3), U(3, 2)), C(U(4), U(2, 2)))
cases('outer', C(U(3), U(4)), C(U(2, 2), U(3)), C(U(), U(3)))
cases('inner', C(U(3), U(3)), C(U(2, 3), U(4, 3)), C(U(), U(2, 3)), C(U(2, 2, 3), U(3)),
      C(U(3), 0.5))
cases('tensordot', C(U(2, 3, 4), U(3, 4, 5)), C(U(2, 3), U(3, 4), 1), C(U(2), U(3), 0),
      C(U(2, 3, 4), U(4, 2), ([2, 0], [0, 1])), C(U(3, 2), U(4, 3), ((0,), (1,))),
      C(U(3, 2), U(4, 3), (0, 1)))
cases('einsum', C('ij,jk->ik', U(2, 3), U(3, 4)), C('ij,jk', U(2, 3), U(3, 4)),
      C('ii->', U(3, 3)), C('ii->i', U(3, 3)), C('ij->', U(2, 3)), C('i,i', U(3), U(3)),
      C('...ij,...jk->...ik', U(5, 2, 3), U(3, 4)),
      C('...ij,...jk', U(1, 2, 3), U(4, 3, 2)), C('bij,bjk->bik', U(2, 2, 3), U(2, 3, 2)),
      C('i,j->ij', U(2), U(3)), C('ij->ji', U(2, 3)), C('iij->j', U(2, 2, 3)),
      C('ij,ij->ij', U(3, 1), U(1, 4)), C(',i->i', U(), U(3)), C('ij,j', U(2, 3), U(3)),
      C('ij,jk,kl->il', U(2, 3), U(3, 4), U(4, 2)), C('i,i,i->', U(3), U(3), U(3)),
      C('ij->i', U(2, 3)), C('ji,k->ik', U(3, 2), U(4)),
      C('Ba,ab', U(2, 3), U(3, 4)), C('i...->...', U(3, 2, 2)), C('ij,ik->jk', U(3, 2), U(3, 4)))
cases('trace', C(U(3, 3)), C(U(3, 4), 1), C(U(4, 3), -1), C(U(2, 3, 3), 0, 1, 2),
      C(U(3, 4, 5), 0, 0, 2), C(U(3, 3), offset=-2))
cases('solve', C(WELL(3), U(3)), C(WELL(3), U(3, 2)), C(WELL(3, (4,)), U(4, 3, 2)),
      C(WELL(3, (4,)), U(3)), C(WELL(3), U(5, 3, 2)))
cases('inv', C(WELL(3)), C(WELL(3, (2,))), C(WELL(1)))
cases('det', C(WELL(3)), C(WELL(3, (2,))), C(-WELL(2)))
cases('slogdet', C(WELL(3)), C(WELL(3, (2,))), C(-WELL(3)))
cases('cholesky', C(SPD(3)), C(SPD(3, (2,))), C(SPD(1)))

# ---- shape and structure ----
cases('reshape', C(U(2, 3), (3, 2)), C(U(6), (2, -1)), C(U(2, 3), -1), C(U(1), ()),
      C(U(2, 3), (3, 2), 'F'), C(U(2, 3, 2), (4, 3), order='F'))
cases('ravel', C(U(2, 3)), C(U(2, 3, 2)), C(U()), C(U(2, 3), 'F'), C(U(3, 2), order='K'))
cases('squeeze', C(U(1, 3, 1)), C(U(1, 3, 1), 0), C(U(2, 1), axis=-1))
cases('expand_dims', C(U(3), 0), C(U(2, 3), -1), C(U(2, 3), (0, 2)))
cases('atleast_1d', C(U()), C(U(3)), C(U(2, 3)))
cases('atleast_2d', C(U()), C(U(3)), C(U(2, 3)))
cases('transpose', C(U(2, 3)), C(U(2, 3, 4), (1, 0, 2)), C(U(2, 3, 4), (-1, 0, 1)),
      C(U(2, 3, 4)))
cases('swapaxes', C(U(2, 3), 0, 1), C(U(2, 3, 4), -1, 0))
cases('moveaxis', C(U(2, 3, 4), 0, -1), C(U(2, 3, 4), (0, 1), (2, 0)))
cases('broadcast_to', C(U(3), (2, 3)), C(U(2, 1), (2, 3)), C(U(), (2, 2)), C(U(2, 3), (2, 3)),
      C(U(1, 3), (4, 2, 3)))
cases('flip', C(U(4)), C(U(2, 3), 0), C(U(2, 3, 4), (0, 2)))
cases('fliplr', C(U(2, 3)))
cases('flipud', C(U(2, 3)), C(U(3)))
cases('roll', C(U(5), 2), C(U(2, 3), 1), C(U(2, 3), -1, 1), C(U(2, 3), (1, 2), (0, 1)))
cases('tile', C(U(2, 3), 2), C(U(3), (2, 2)), C(U(2, 3), (2, 1)), C(U(2, 1, 3), (2, 2)),
      C(U(), 3))
cases('repeat', C(U(3), 2), C(U(2, 3), 2, 1), C(U(2, 3), [1, 0, 2], axis=1), C(U(2, 3), 3),
      C(U(4), np.array([2, 1, 0, 3]), 0))
cases('pad', C(U(3), 1), C(U(2, 3), ((1, 0), (2, 1))), C(U(2, 3), (1, 2)),
      C(U(2, 3), 2, 'edge'), C(U(4), (2, 3), 'reflect'), C(U(2, 3), 1, 'symmetric'),
      C(U(3, 2), ((1, 2), (3, 0)), 'wrap'), C(U(2, 3), 1, constant_values=0.5),
      C(U(2, 3), ((1, 2), (2, 1)), 'constant', constant_values=U(2, 2)),
      C(U(2, 3), 1, constant_values=U(2)))
cases('concatenate', C([U(2, 3), U(1, 3)]), C([U(2, 3), U(2, 1)], 1), C((U(2), U(3)), 0),
      C([U(2, 2), U(3)], axis=None))
cases('stack', C([U(3), U(3)]), C([U(2, 3), U(2, 3), U(2, 3)], -1), C((U(2), U(2)), 1))
cases('hstack', C([U(2), U(3)]), C([U(2, 3), U(2, 1)]), C([U(), U(2)]), C((U(2, 2, 1), U(2, 1, 1))))
cases('vstack', C([U(3), U(3)]), C([U(2, 3), U(3)]), C([U(1, 2), U(2, 2)]), C([U(), U()]))
cases('split', C(U(6), 3), C(U(5, 2), [1, 3]), C(U(2, 6), 2, 1), C(U(4, 3), [2], axis=0))
cases('copy', C(U(3)), C(U(2, 3)))
cases('finalize_distinct', C((U(3), U(2))), C((U(2, 2),)))
cases('array', C(U(3)), C([U(2), U(2)]), C([[0.5, 1.0], [2.0, 3.0]]), C([0.5, U()]))
cases('asarray', C(U(3)), C([0.5, 1.5]), C(U(3) * 4, int))
cases('astype', C(U(3), np.float64), C(U(2, 2), 'float64'), C(U(3) * 4, np.int64), C(U(3), bool))
cases('diagonal', C(U(3, 3)), C(U(3, 4), 1), C(U(4, 3), -2), C(U(2, 3, 3), 0, 1, 2),
      C(U(3, 2, 4), 1, 2, 0))
cases('diag', C(U(3)), C(U(3), 1), C(U(2), -2), C(U(3, 3)), C(U(3, 4), 1), C(U(4, 3), -1))
cases('tril', C(U(3, 3)), C(U(3, 4), 1), C(U(2, 3, 3), -1))
cases('triu', C(U(3, 3)), C(U(3, 4), -1), C(U(2, 3, 3), 1))
cases('real', C(U(3)), C(U(2, 2)))
cases('imag', C(U(3)), C(U(2, 2)))

# ---- indexing and containers ----
cases('getitem', C(U(4, 3), (slice(1, 3), 0)), C(U(5), np.array([0, 2, 2, 4])),
      C(U(3, 4), (np.array([0, 2]), slice(None))), C(U(3, 4), B(3, 4)), C(U(3), 1),
      C([U(3), U(2)], 1), C([U(3), U(2), U(1)], slice(0, 2)), C((U(2), 0.5), 1),
      C({'a': U(3), 'b': U(2)}, 'b'), C(U(3, 4), (Ellipsis, None, 1)))
cases('setitem', C(U(4, 3), (slice(1, 3),), U(3)), C(U(5), np.array([0, 3]), U(2)),
      C([U(3), U(2)], 1, U(2)), C(U(4), 2, 0.5), C({'a': U(2), 'b': U(3)}, 'a', U(2)),
      # repeated writes to one element (-4 is 1 too): the last one stays
      C(U(5), np.array([1, 3, -4, 3, 1]), U(5)), C(U(5), [2, 2], 0.5),
      C(U(3, 4), (np.array([0, 2, 0]), slice(None)), U(3, 4)),
      C(U(3, 4), (np.array([[1], [1]]), np.array([0, 3, 0])), U(2, 3)))
cases('append', C([U(3), U(2)], U(4)), C([], U(2)), C([0.5], 1.5))
cases('take', C(U(5), [0, 2, 2]), C(U(3, 4), np.array([[0, 1], [3, 3]]), axis=1),
      C(U(5), [-1, 7], mode='wrap'), C(U(5), [0, 9], mode='clip'), C(U(2, 3), 4),
      C(U(2, 3), [1, 1], 0))
cases('iterate', C(U(3, 2)), C([U(2), U(3)]), C((U(2), 1.5)))

# ---- functional updates, codax.numpy.at(x)[idx].<op>(v) ----
_ZV = np.array([0.0, 0.5, 0.0, 2.0, -1.5])          # zero updates, for multiply
_UPDATES = [C(U(5), np.array([0, 2, 2, 4]), U(4)), C(U(4, 3), slice(1, 3), U(3)),
            C(U(5), [1, 1, 3], 0.5), C(U(3, 4), (np.array([0, 0, 2]), slice(None)), U(3, 4)),
            C(U(5), np.array([True, False, True, True, False]), U(3)), C(U(4), 2, 0.25)]
for _name in ('at_set', 'at_add', 'at_min', 'at_max'):
    cases(_name, *copy.deepcopy(_UPDATES))
cases('at_multiply', *copy.deepcopy(_UPDATES), C(U(4), np.array([1, 1, 1, 2, 2]), _ZV.copy()),
      C(U(4), np.array([1, 1, 2, 2, 3]), _ZV.copy()))
cases('rt_at_share', C(U(5), np.array([0, 2, 2]), U(3), U(5), 'set', 1),
      C(U(5), np.array([0, 2, 2]), U(3), U(5), 'max', 0), C(U(4, 3), 1, U(3), U(4, 3), 'min', 1),
      C(U(5), np.array([0, 7, 2, 2]), U(4), U(5), 'set', 0, 'drop'),
      C(U(5), np.array([0, 7, 2, -9]), U(4), U(5), 'max', 1, 'clip'))
cases('rt_at_others', C(U(5), np.array([0, 2, 2, 4]), NZ(4)), C(U(3, 2), slice(None), U(2)),
      C(U(4), np.array([1, 1, 1, 2, 2]), _ZV.copy()), C(U(4), np.array([1, 1, 2, 2, 3]), _ZV.copy()),
      C(U(4), np.array([0, 1, 1, 1, 3]), _ZV.copy()), C(U(5), [3, 3, 3], 0.5),
      C(U(5), np.array([0, 7, 2, 2, -9]), NZ(5), mode='drop'),
      C(U(5), np.array([0, 7, 4, 2]), NZ(4), mode='clip'))
# JAX's mode= for indices out of bounds: dropped, clipped ('fill' drops updates too)
_MODED = [C(U(5), np.array([0, 7, 2, 2, -9]), U(5), mode='drop'),
          C(U(5), np.array([0, 7, -1, 4]), U(4), mode='clip'),
          C(U(3, 4), (np.array([[1], [5]]), np.array([0, 3, 0])), U(2, 3), mode='fill'),
          C(U(4, 3), (slice(None), 4), U(4), mode='drop'),
          C(U(4, 3), (Ellipsis, np.array([-5, 1])), U(4, 2), mode='clip'),
          C(U(5), np.array([1, 3]), U(2), mode='promise_in_bounds')]
for _name in ('at_set', 'at_add', 'at_multiply', 'at_min', 'at_max'):
    CASES[_name] += copy.deepcopy(_MODED)
cases('at_divide', *copy.deepcopy(_UPDATES[:4]), C(U(5), np.array([0, 2, 2, 4]), NZ(4)),
      C(U(4), 2, -0.25), C(U(5), np.array([0, 7, 2, 2, -9]), NZ(5), mode='drop'),
      C(U(4, 3), (slice(None), np.array([5, 0])), NZ(4, 2), mode='clip'))
cases('at_power', C(P(5), np.array([0, 2, 2, 4]), U(4)), C(P(4, 3), slice(1, 3), U(3)),
      C(P(5), [1, 1, 3], 0.5), C(P(5), np.array([True, False, True, True, False]), U(3)),
      C(P(4), 2, 2.0), C(P(5), np.array([0, 7, 2, 2, -9]), U(5), mode='drop'),
      C(P(4, 3), (np.array([0, 5]), slice(None)), U(2, 3), mode='clip'))
# (fill values are not NaN here: differences of NaN are no check)
cases('at_get', C(U(5), np.array([0, 2, 2])), C(U(5), np.array([0, 7, -1, -9]), 'clip'),
      C(U(5), np.array([0, 7, 2, 2, -9]), 'fill', 2.5),
      C(U(3, 4), (np.array([0, 5]), slice(1, 3)), 'drop', 0.0),
      C(U(4, 3), (Ellipsis, 6), mode='fill', fill_value=-1.0), C(U(4), 9, 'clip'))
cases('at_apply', C(U(5), np.array([0, 2, 2]), np.sin),
      C(U(3, 4), (slice(None), np.array([0, 9, 0])), np.exp, 'drop'),
      C(U(5), [4, -8], np.tanh, mode='clip'))
cases('rt_at_levels', C(U(5), np.array([0, 2, 2, 4, 2])), C(U(3, 4), slice(1, 3)),
      C(U(3, 4), (np.array([0, 5, 0]), slice(None)), 'drop'))

# ---- creation ----
cases('full', C((2, 3), 1.5), C((2, 3), U(3)), C((2, 3), U(2, 1)), C(3, U()))
cases('full_like', C(U(2, 3), 0.7), C(U(2, 3), U(3)), C(np.zeros((2, 2)), U(2, 1)))

# ---- Python builtins ----
cases('py_sum', C([U(3), U(2, 3), 0.5]), C([1.5, 2.0, 0.25]), C([U(2), U(2)], 1.0),
      C((U(3), U(3)), U(3)))
cases('py_max', C(0.3, 1.2, -0.5), C([0.3, 1.2, -0.5]), C(U(5)), C(np.float64(0.2), np.float64(0.9)),
      C((0.1, 0.4)), C(U(), 0.3))
cases('py_min', C(0.3, 1.2, -0.5), C([0.3, 1.2, -0.5]), C(U(5)), C(np.float64(0.2), np.float64(0.9)))
cases('py_float', C(np.asarray(0.3)), C(np.float64(1.5)), C(0.7))
cases('py_item', C(np.asarray(0.3)), C(np.array([1.5])), C(np.float64(0.7)))
cases('math_log', C(1.7), C(2.5, 3.0), C(np.float64(0.6), 10.0))


# ---- the runtime's adjoint helpers (second order) ----
def _tie_matrix():
    return np.array([[1.0, 2.0, 2.0], [0.0, 1.0, 1.0]])


_X23 = U(2, 3)
_A23, _A34 = U(2, 3), U(3, 4)
_A3, _A523, _A435 = U(3), U(5, 2, 3), U(4, 3, 5)
_CL = U(2, 3)
_E5 = U(5)
cases('rt_unbroadcast', C(U(2, 3), U(3), U(2, 3)), C(0.7, U(3), U(2, 3)),
      C(U(2, 3), U(2, 3), U(2, 3)), C(U(3), U(2, 1), U(2, 3)), C(U(2, 3), 0.5, U(2, 3)))
cases('rt_materialize', C(U(3), U(2, 3)), C(0.5, U(2, 2)), C(U(2, 3), U(2, 3)), C(U(1), U(3)))
cases('rt_sum_to', C(U(2, 3), (3,)), C(U(2, 3), (2, 1)), C(U(4, 2, 3), (1, 3)), C(U(3), (3,)),
      C(U(2, 3), ()), C(U(1, 3), (3,)))
cases('rt_sum_vjp', C(U(3), U(2, 3), 0), C(U(3), U(2, 3, 4), (0, 2)), C(0.5, U(2, 3), 1),
      C(U(1, 3), U(2, 3), 0, True), C(U(), U(2, 3)), C(U(1), U(3, 2), 0), C(U(3), U(3)))
cases('rt_keep_dims', C(U(3), U(2, 3), 0, False), C(U(2), U(2, 3, 4), (1, 2), False),
      C(U(1, 3), U(2, 3), 0, True), C(np.float64(0.4), U(3), 0, False), C(U(), U(2, 3), None, False))
cases('rt_extremum_vjp', C(U(2), _tie_matrix(), _tie_matrix().max(1), 1),
      C(0.5, _X23, _X23.max()), C(U(1, 3), _X23, _X23.min(0, keepdims=True), 0, True),
      C(U(3), _tie_matrix(), _tie_matrix().max(0), 0), C(0.3, _tie_matrix(), 2.0))
cases('rt_cumsum_vjp', C(U(2, 3), U(2, 3), U(2, 3), 1), C(U(6), U(2, 3), U(6), None),
      C(0.5, U(4), U(4), 0), C(U(1, 3), U(2, 3), U(2, 3), 0))
cases('rt_item', C([U(2), U(3)], 1), C(U(3, 2), 1), C((U(2), 0.5), 0),
      C({'a': U(2), 'b': U(1)}, 'a'))
cases('rt_getitem_vjp', C(U(2), U(4, 2), 1), C(0.5, U(4), np.array([0, 0, 2])),
      C(U(2, 3), U(4, 3), slice(1, 3)), C(U(2), [U(3), U(2)], 1),
      C([U(3), U(2)], [U(1), U(3), U(2)], slice(1, 3)), C(U(3), {'a': U(2), 'b': U(3)}, 'b'),
      C(U(3), U(4, 3), np.array([1, 1])), C(U(), U(3, 3), B(3, 3)))
cases('rt_item_transpose', C(U(2), [U(3), U(2)], 1), C(U(3), {'a': U(2), 'b': U(3)}, 'b'),
      C(U(3), (U(1), U(3)), -1))
# (past a tuple's end: a plain function's pullback results, the zero)
cases('rt_callee_adjoint', C((U(2), U(3)), 1), C((U(2), (U(3), U(1))), 1), C((U(2),), 1))
cases('rt_callee_adjoint_transpose', C(U(3), (U(2), U(3)), 1), C(0.5, (U(2),), 1))
cases('rt_add', C(U(2, 3), U(3)), C([U(2), U(3)], [U(2), U(1)]), C(0.0, U(3)),
      C({'a': U(2)}, {'a': U(2)}), C(0.5, 1.5), C((U(2), 0.5), (U(2), 0.25)))
cases('rt_finalize_transpose', C(U(2, 3), U(3), U(2, 3)), C(U(), 0.5, U(2, 2)),
      C([U(2), 0.3], [U(2), 1.0], [U(2), 0.25]))
cases('rt_finalize', C(U(3), U(2, 3)), C(0.5, U(2, 2)), C([U(2), 0.3], [U(2), 1.0]),
      C(0.4, 1.0), C({'w': U(2)}, {'w': U(2)}), C(U(2, 2), U(2, 2)), C(U(2), (U(2), None)))
cases('rt_broadcast_list', C(U(2, 3), [U(3), U(2, 3), U(2, 1)], U(2, 3)),
      C(0.5, [U(2), U(2)], U(2)))
cases('rt_unstack', C(U(3, 2, 4), [U(2, 4)] * 3, 0), C(U(2, 4, 3), [U(2, 4)] * 3, -1),
      C(U(3, 2), [U(1), U(2), U(1)], 0))
cases('rt_concatenate_vjp', C(U(5, 2), [U(2, 2), U(3, 2)], U(5, 2), 0),
      C(0.5, [U(2, 2), U(2, 3)], U(2, 5), 1), C(U(7), [U(3), U(2, 2)], U(7), None),
      C(U(1, 2), [U(2, 2), U(3, 2)], U(5, 2)))
cases('rt_cast_like', C(U(3), U(3)), C(U(2, 3), np.arange(6).reshape(2, 3)), C(0.5, U(2)))
cases('rt_tile_vjp', C(U(4, 6), _A23, np.tile(_A23, (2, 2)), (2, 2)),
      C(0.5, _A3, np.tile(_A3, 2), 2), C(U(2, 1, 3), _A3, np.tile(_A3, (2, 1, 1)), (2, 1, 1)))
cases('rt_repeat_vjp', C(U(12), _A23, np.repeat(_A23, 2), 2),
      C(U(2, 4), _A23, np.repeat(_A23, [2, 0, 2], 1), [2, 0, 2], 1),
      C(0.5, _A3, np.repeat(_A3, 3, 0), 3, 0))
cases('rt_pad_vjp', C(U(4, 5), _A23, np.pad(_A23, 1), 1),
      C(U(7), _A3, np.pad(_A3, (2, 2), 'reflect'), (2, 2), 'reflect'),
      C(0.5, _A23, np.pad(_A23, 1, 'edge'), 1, 'edge'),
      C(U(4, 5), _A23, np.pad(_A23, 1, 'wrap'), 1, 'wrap'))
cases('rt_diagonal_vjp', C(U(3), U(3, 3), U(3)), C(U(2, 2), U(2, 3, 3), U(2, 2), 1, 1, 2),
      C(0.5, U(3, 4), U(3), 1))
cases('rt_trace_vjp', C(U(), U(3, 3), U()), C(U(2), U(2, 3, 3), U(2), 0, 1, 2),
      C(0.5, U(3, 4), U(), -1))
cases('rt_diag_vjp', C(U(3), U(3, 3), U(3)), C(U(3, 3), U(3), U(3, 3)),
      C(U(4, 4), U(3), U(4, 4), 1), C(0.5, U(3, 4), U(2), -1))
cases('rt_take_vjp', C(U(3), U(5), U(3), np.array([0, 2, 2])),
      C(U(3, 2), U(3, 4), U(3, 2), [3, 3], 1), C(0.5, U(5), U(2), [-1, 7], None, 'wrap'))
cases('rt_where_vjp', C(U(2, 3), B(2, 3), U(3), U(2, 3), 0), C(0.5, B(3), U(2, 3), U(2, 3), 1),
      C(U(1, 3), B(2, 1), U(2, 3), U(2, 3), 0), C(U(2, 3), B(3), 0.5, U(2, 3), 1))
cases('rt_clip_vjp', C(U(2, 3), _CL, -0.5, 0.5, None, None, np.clip(_CL, -.5, .5), 0),
      C(U(2, 3), _CL, U(3) * .3 - .5, 0.4, None, None, np.clip(_CL, U(3) * .3 - .5, .4), 1),
      C(0.3, _CL, None, None, None, U(3) * .2 + .2, np.clip(_CL, None, .3), 2),
      C(U(2, 3), _CL, None, None, U(2, 1) * .2 - .3, 0.3, np.clip(_CL, -.2, .3), 1))
cases('rt_clip_jvp', C(U(2, 3), _CL, -0.5, 0.5, None, None, np.clip(_CL, -.5, .5), 0),
      C(U(3), _CL, U(3) * .3 - .5, 0.4, None, None, np.clip(_CL, U(3) * .3 - .5, .4), 1),
      C(0.3, _CL, None, None, None, 0.3, np.clip(_CL, None, .3), 2),
      C(U(2, 1), _CL, None, None, U(2, 1) * .2 - .3, 0.3, np.clip(_CL, U(2, 1) * .2 - .3, .3), 1))
cases('rt_py_extremum_jvp', C((0.5, 0.2, -0.1), (0.3, 1.2, -0.5), 1.2),
      C((U(5),), (_E5,), _E5.max()), C(([0.3, 0.1, -0.2],), ([0.3, 1.2, -0.5],), 1.2),
      C(((0.1, 0.4),), ((0.1, 0.4),), 0.4))
cases('rt_matmul_vjp', C(U(2, 4), _A23, _A34, _A23 @ _A34, 0), C(U(2, 4), _A23, _A34, _A23 @ _A34, 1),
      C(U(4), _A3, _A34, _A3 @ _A34, 0), C(0.5, _A523, _A34, _A523 @ _A34, 1),
      C(U(2), _A23, _A3, _A23 @ _A3, 0), C(U(5, 2, 4), _A523, _A34, _A523 @ _A34, 0))
cases('rt_dot_vjp', C(U(2, 4), _A23, _A34, _A23 @ _A34, 0), C(U(2, 4), _A23, _A34, _A23 @ _A34, 1),
      C(U(2, 4, 5), _A23, _A435, np.dot(_A23, _A435), 0),
      C(U(2, 4, 5), _A23, _A435, np.dot(_A23, _A435), 1),
      C(U(3), U(), _A3, 0.5 * _A3, 0))

_P23 = U(2, 3)
_PW = ((1, 2), (2, 1))
cases('rt_pad_values_vjp', C(U(5, 6), _P23, np.pad(_P23, _PW), _PW, 'constant', U(2, 2)),
      C(0.5, _P23, np.pad(_P23, 1), 1, 'constant', 0.3),
      C(U(4, 5), _P23, np.pad(_P23, 1), 1, 'constant', U(2)))
cases('rt_setitem_vjp_x', C(U(4, 3), U(4, 3), (slice(1, 3),)), C(0.5, U(5), np.array([0, 3])),
      C([U(3), U(2)], [U(3), U(2)], 1), C({'a': U(2), 'b': U(3)}, {'a': U(2), 'b': U(3)}, 'a'))
cases('rt_setitem_vjp_v', C(U(4, 3), U(4, 3), (slice(1, 3),), U(3)),
      C(U(5), U(5), np.array([0, 3, 3]), U(3)), C(0.5, U(4), 2, 0.5),
      C([U(3), U(2)], [U(3), U(2)], 1, U(2)), C(U(3, 4), U(3, 4), (np.array([0, 2, 0]), 1), U(3)))
cases('rt_written_part', C(U(5), np.array([1, 3, -4, 3, 1])), C(U(4, 3), (slice(1, 3),)),
      C(U(3, 4), (slice(None), np.array([[1], [1]]))), C(U(3, 4), (np.array([2, 0, 2]), 1)))
cases('rt_append_vjp_list', C([U(3), U(2), U(4)], [U(3), U(2)]), C([0.5], []))
cases('rt_append_vjp_value', C([U(3), U(2)]), C([0.5, 1.5]))
cases('rt_array_vjp', C(U(2, 2), [U(2), U(2)], np.zeros((2, 2))),
      C(0.5, [[0.5, 1.0], [2.0, 3.0]], np.zeros((2, 2))), C(U(3), U(3), U(3)),
      C(U(2, 3), [U(3), U(3)], np.zeros((2, 3))), C(U(1, 3), [U(3), U(3)], np.zeros((2, 3))))
cases('rt_hstack_vjp', C(U(5), [U(2), U(3)], U(5)), C(0.5, [U(2, 3), U(2, 1)], U(2, 4)),
      C(U(3), [U(), U(2)], U(3)))
cases('rt_vstack_vjp', C(U(2, 3), [U(3), U(3)], U(2, 3)), C(U(3, 3), [U(2, 3), U(3)], U(3, 3)),
      C(0.5, [U(), U()], U(2, 1)))
_S6 = U(6)
cases('rt_split_vjp', C([U(2), U(2), U(2)], _S6, np.split(_S6, 3)),
      C([0.5, U(2), 0.25], _S6, np.split(_S6, 3)),
      C([U(2, 1), U(2, 2)], _P23, np.split(_P23, [1], 1), 1))
cases('rt_py_extremum_vjp', C(0.5, (0.3, 1.2, -0.5), 1.2), C(U(), ([0.3, 1.2, -0.5],), 1.2),
      C(0.7, (_E5,), _E5.max()), C(0.2, ((0.1, 0.4),), 0.4))
_O3, _O4 = U(3), U(4)
cases('rt_outer_vjp', C(U(3, 4), _O3, _O4, np.outer(_O3, _O4), 0),
      C(U(3, 4), _O3, _O4, np.outer(_O3, _O4), 1), C(0.5, _P23, _O4, np.outer(_P23, _O4), 0))
_I243 = U(2, 4, 3)
cases('rt_inner_vjp', C(U(2, 4), _P23, _I243[0], np.inner(_P23, _I243[0]), 0),
      C(U(2, 4), _P23, _I243[0], np.inner(_P23, _I243[0]), 1),
      C(U(2, 4), _I243, _O3, np.inner(_I243, _O3), 1), C(U(3), _O3, U(), _O3 * 0.5, 0))
cases('rt_vdot_vjp', C(U(), _O3, U(3), 0), C(0.5, _P23, U(3, 2), 1))
_T234, _T345 = U(2, 3, 4), U(3, 4, 5)
cases('rt_tensordot_vjp', C(U(2, 5), _T234, _T345, np.tensordot(_T234, _T345), 2, 0),
      C(U(2, 5), _T234, _T345, np.tensordot(_T234, _T345), 2, 1),
      C(0.5, _P23, _O3, np.tensordot(_P23, _O3, (1, 0)), (1, 0), 0))

# ---- non-differentiable records: smoke calls ----
for _name in ('sign', 'floor', 'ceil', 'trunc', 'rint', 'isnan', 'isinf', 'isfinite',
              'logical_not', 'signbit'):
    cases(_name, C(U(3) * 3), C(U(2, 2)))
for _name in ('floor_divide', 'less', 'less_equal', 'greater', 'greater_equal', 'equal',
              'not_equal', 'logical_and', 'logical_or', 'logical_xor', 'isclose'):
    cases(_name, C(U(3) * 3, P(3)), C(U(2, 3), U(3)))
cases('round', C(U(3) * 3), C(U(3), 1))
for _name in ('argmax', 'argmin'):
    cases(_name, C(U(2, 3)), C(U(2, 3), 1))
for _name in ('all', 'any'):
    cases(_name, C(B(3)), C(B(2, 3), axis=0))
cases('count_nonzero', C(B(2, 3)), C(U(2, 3) > 0, axis=1))
cases('argsort', C(U(4)), C(U(2, 3), 0))
for _name in ('zeros', 'ones', 'empty'):
    cases(_name, C((2, 3)), C(3, dtype=np.float32))
for _name in ('zeros_like', 'ones_like', 'empty_like'):
    cases(_name, C(U(2, 3)), C(U(2), dtype=np.int64))
cases('eye', C(3), C(2, 3, 1))
cases('identity', C(3))
cases('arange', C(5), C(1.0, 2.0, 0.25))
cases('linspace', C(0.0, 1.0, 5), C(0.0, 1.0))
cases('shape', C(U(2, 3)))
cases('ndim', C(U(2, 3)))
cases('size', C(U(2, 3)), C(U(2, 3), 1))
cases('py_len', C([1, 2]), C(U(3)))
cases('py_isinstance', C(U(3), np.ndarray), C((U(2),), (tuple, list)))


def _lifted(a, b, y):
    """A closure's lifted function: captured a, b, then its own parameter."""
    return a * y + b


cases('closure', C(_lifted, U(3), U(2)), C(_lifted, U(2, 2), 0.5))
cases('captured', C(runtime.closure(_lifted, U(3), U(2)), 1), C(runtime.closure(_lifted, 0.5), 0))
cases('captured_cotangent', C(U(3), runtime.closure(_lifted, U(3), U(2)), 0),
      C(U(2), runtime.closure(_lifted, U(3), U(2)), 1))
cases('closure_function', C(runtime.closure(_lifted, U(3))))
cases('py_range', C(3), C(1, 7, 2))
cases('is_array_leaf', C(U(3)), C({'a': U(2)}))
cases('dict_items', C({'a': U(2), 'b': U(3)}), C({'w': U(2, 2)}))
cases('dict_values', C({'a': U(2), 'b': U(3)}), C({'w': 0.5}))
cases('dict_keys', C({'a': U(2), 'b': U(3)}))
cases('py_tuple', C([U(2), U(3)]), C(U(3, 2)), C((U(2), 0.5)))
cases('py_list', C((U(2), U(3))), C(U(2, 2)), C([U(3)]))
cases('concat', C([U(2), 0.5], [U(3)]), C((U(2),), (U(3), U(2, 2))), C([], [U(2)]),
      C(U(3), U(2, 3)))
cases('rt_concat_vjp', C([U(2), U(3)], [U(2)], [U(3)], [U(2), U(3)], 0),
      C([U(2), 0.0, U(2, 2)], (U(2),), (U(3), U(2, 2)), (U(2), U(3), U(2, 2)), 1),
      C([0.0, U(2)], [U(3), 0.5], [], [U(3), 0.5], 0), C(U(2, 3), U(3), U(2, 3), U(2, 3), 0))
cases('pullback_state', C((len, U(3))), C((len, (U(2), 0.5))))
cases('pullback_function', C((len, U(3))))


def _square(x):
    return x * x


# rt.sweeps asks codax (through its hook) for the generated sweeps of a function
import codax  # noqa: E402,F401  (installs the hook)
cases('sweeps', C(_square, U(3)))
cases('sweeps_for', C(_square, (0,), (0,), U(3)))
cases('transformation', C(runtime.closure(_lifted, U(3), U(3)), codax.vmap, (), {}),
      C(runtime.closure(_lifted, 0.5, U(2)), codax.grad, (), {'argnums': 0}))
cases('dense', C(U(2, 3), U(2, 3)), C(U(3), U(2, 3)), C([U(2), 0.5], [U(2), U(3)]))
cases('unit_tangent', C(U(2, 3), 4), C(0.5, 0))
# Jacobians (codax/jacobians.py): the stacked columns or rows are what vmap
# gave, anything that broadcasts to (n,) + the example's shape; `lead` counts
# leading batch axes (a Jacobian in vmapped code).
cases('basis', C(U(2, 3)), C(U(3)), C(0.5), C(U(4, 2), 1))
cases('jacobian_from_columns', C(U(3, 2), U(3, 2), U(3)), C(U(2), U(3, 2), U(3)),
      C(U(2, 2, 2), U(2, 2, 2), U(2)), C(U(2), U(2), U(2)), C(U(3, 1), U(3, 2), U(3)),
      C(U(4, 3, 2), U(4, 3, 2), U(4, 3), 1), C(U(3, 2), U(4, 3, 2), U(4, 3), 1))
cases('jacobian_from_rows', C(U(2, 3), U(2), U(3)), C(U(3), U(2), U(3)),
      C(U(4, 2, 2), U(2, 2), U(2, 2)), C(U(2, 1), U(2), U(3)),
      C(U(4, 2, 3), U(4, 2), U(4, 3), 1))
cases('columns_vjp', C(U(2, 3), U(3, 2), U(3, 2), U(3), U(2, 3)),
      C(U(2, 3), U(2), U(3, 2), U(3), U(2, 3)), C(U(3), U(3, 1), U(3, 2), U(3), U(2, 3)),
      C(U(4, 2, 3), U(4, 3, 2), U(4, 3, 2), U(4, 3), U(4, 2, 3), 1))
cases('rows_vjp', C(U(2, 3), U(2, 3), U(2), U(3), U(2, 3)), C(U(2, 3), U(3), U(2), U(3), U(2, 3)),
      C(U(2, 1), U(2, 1), U(2), U(3), U(2, 3)),
      C(U(4, 2, 3), U(4, 2, 3), U(4, 2), U(4, 3), U(4, 2, 3), 1))


def _scaled(x, scale=2.0):
    return scale * x


cases('default_argument', C(_scaled, 1), C(_square, 0))
cases('tangent_function', C(_square, (U(3),), 0), C(_scaled, (U(2), 0.5), (0, 1)))
cases('py_slice', C(2), C(None, 3, None))
cases('py_str', C(3), C('k'))
cases('stop_gradient', C(U(3)), C(0.5))
cases('py_int', C(2.5))
cases('py_bool', C(1.0))
cases('rt_seed', C(1.5), C(np.float64(2.0)))
cases('rt_shape', C(U(2)), C(0.5))
cases('rt_ndim', C(U(2, 3)))
cases('rt_size', C(U(2, 3)))
cases('count', C(U(2, 3)), C(U(2, 3), 1), C(U(2, 3, 4), (0, 2)))
cases('rt_safe_log', C(P(3)), C(0.5), C(np.float64(1.5)), C(P(2, 2)))
cases('rt_is_zero', C(0.0), C(U(2)))
cases('rt_inverse_axes', C((1, 2, 0), U(2, 3, 4)), C(None, U(2)), C((-1, 0), U(2, 3)))
cases('rt_negate', C((1, -2)), C(3))
cases('rt_inexact_only', C(U(3), U(3)), C(U(3), np.arange(3)), C(0.5, np.int64(2)))
cases('rt_abs_slope', C(NZ(3)), C(-0.5), C(np.float32(2.0)), C(NZ(2, 2)),
      C(U(3) + 1j * NZ(3)), C(0.5 - 1.5j))   # (complex64 finite differences are too coarse)
cases('iscomplexobj', C(U(3)), C(U(2) + 1j * U(2)), C(0.5))
cases('rt_imag_vjp', C(U(3), U(3)), C(0.5, 1.5))

# ---- the helpers of batched (vmap) code: batch axis first ----
cases('rt_broadcast_batch', C(U(3), 4), C(U(2, 3), 2), C(0.5, 3))
cases('rt_sum_to_batched', C(U(4, 2, 3), (3,)), C(U(4, 2, 3), (2, 1)), C(U(4, 3), (3,)),
      C(U(4, 2), ()), C(U(4, 2, 3), (1, 3)))
cases('rt_unsum_batched', C(U(4, 3), U(4, 2, 3)), C(U(4, 1), U(4, 2, 3)), C(U(4), U(4, 3)))
cases('rt_batched_diag', C(U(4, 3)), C(U(4, 2), 1), C(U(4, 2), -2))
cases('rt_dense_batched', C(U(4, 3), U(4, 3), True, True, 4), C(U(4), U(4, 3), True, True, 4),
      C(U(3), U(4, 3), False, True, 4), C(U(4, 1), U(3), True, False, 4),
      C([U(4, 2), 0.0], [U(4, 2), U(4)], True, True, 4), C(U(4), 0.5, True, True, 4))
cases('rt_dense_batched_vjp', C(U(4, 3), U(4, 1), U(3), True, False, 4),
      C(U(4, 3), U(3), U(4, 3), False, True, 4), C(U(4, 3), U(4), U(4, 3), True, True, 4),
      C([U(4, 2), U(4)], [U(4, 2), U(4)], [U(4, 2), U(4)], True, True, 4))
cases('rt_lift_batched', C(U(4, 3), 3), C(U(4), 2), C(U(4, 2), 1),
      C((U(4, 3), U(4)), (2, 1)), C({'a': U(4), 'b': 0.0}, {'a': 1, 'b': (1, 1)}))
cases('rt_lift_leaves', C(U(4, 3), 2, 0), C(U(3), 2, None), C((U(4, 3), U(2)), (2, 1), (0, None)),
      C([(U(4, 2), U(4)), 0.0], ((1, 1), 2), ((0, 0), None)))
cases('rt_reshape_like', C(U(4, 1, 3), U(4, 3)), C((U(2, 1), 0.5), (U(2), 1.0)),
      C({'a': U(3, 1, 1)}, {'a': U(3)}))
cases('rt_moveaxes', C(U(3, 4, 2), 1, True), C(U(4, 3), 1, False),
      C((U(2, 4), U(3), 0.5), (1, None, None), True), C({'a': U(4, 2)}, {'a': 1}, False),
      C(U(3, 4, 2), 1, True, 1), C(U(3, 4, 2), -1, False, 1))
_SC = B(4)
cases('rt_select', C(_SC, U(4, 3), U(3), (0, None)), C(_SC, U(4), U(4, 2), (0, 0)),
      C(_SC, (U(4, 3), U(4)), (U(2, 3), 0.5), ((0, 0), (None, None))),
      C(B(4, 2), {'a': U(4, 2, 3)}, {'a': U(4, 2, 1)}, ({'a': 0}, {'a': 0})))
cases('rt_select_vjp', C(U(4, 3), _SC, U(4, 3), U(3), (0, None), 0),
      C(U(4, 3), _SC, U(4, 3), U(3), (0, None), 1),
      C((U(4, 2, 3), U(4)), _SC, (U(4, 3), U(4)), (U(2, 3), 0.5), ((0, 0), (None, None)), 0),
      C(U(4, 2), _SC, U(4), U(4, 2), (0, 0), 1))
_FB = U(4, 3)
cases('rt_finalize_batched', C(U(4, 3), U(4, 3), (True, True, 1, 1), 4),
      C(U(4), U(4, 3), (True, True, 0, 1), 4), C(U(3), U(3), (False, False, 1, 1), 4),
      C(0.5, U(2), (False, False, 0, 1), 3), C(U(4, 2), U(2), (True, False, 1, 1), 4),
      C({'w': U(4, 3), 'b': U(2)}, {'w': U(3), 'b': U(2)},
        {'w': (True, False, 1, 1), 'b': (False, False, 1, 1)}, 4),
      C((U(4, 1), U(2)), (U(4, 3), U(2)), ((True, True, 1, 1), (False, False, 1, 1)), 4))
cases('rt_finalize_batched_transpose', C(U(4, 3), U(4, 3), U(4, 3), (True, True, 1, 1), 4),
      C(U(4, 3), U(4), U(4, 3), (True, True, 0, 1), 4),
      C(U(4, 3), U(3), U(3), (False, False, 1, 1), 4),
      C(U(3, 2), 0.5, U(2), (False, False, 0, 1), 3),
      C(U(4, 2), U(4, 1), U(2), (True, False, 1, 1), 4),
      C({'w': U(4, 3), 'b': U(4, 2)}, {'w': U(4, 3), 'b': U(2)}, {'w': U(3), 'b': U(2)},
        {'w': (True, False, 1, 1), 'b': (False, False, 1, 1)}, 4),
      C((U(4, 3), U(4, 2)), (U(4, 1), U(2)), (U(4, 3), U(2)),
        ((True, True, 1, 1), (False, False, 1, 1)), 4))
cases('rt_batch_outputs', C(U(4, 3), 0, 1, 4), C(U(3), None, 0, 4),
      C((U(4, 3), U(2), 0.5), (0, None, None), (1, -1, 0), 4),
      C({'a': U(4), 'b': U(2)}, {'a': 0, 'b': None}, {'a': 0, 'b': None}, 4))
cases('rt_batch_outputs_transpose', C(U(3, 4), U(4, 3), 0, 1, 4), C(U(4, 3), U(3), None, 0, 4),
      C((U(3, 4), U(2, 4), U(4)), (U(4, 3), U(2), 0.5), (0, None, None), (1, -1, 0), 4),
      C({'a': U(4), 'b': U(2)}, {'a': U(4), 'b': U(2)}, {'a': 0, 'b': None}, {'a': 0, 'b': None},
        4))
cases('rt_batch_loop', C(np.sin, ((0,), {}), (U(4, 3),), {}, 4),
      C(np.add, ((0, None), {}), (U(4, 3), U(3)), {}, 4))
# the pieces of rt.batch_loop's definition (codax/calls.py)
cases('rt_arg_axes', C(((0, None), {}), 1), C(0, 2), C(((0, (None, 0)), {}), 1))
cases('rt_example', C(U(4, 3), 0, 2), C((U(4, 3), U(3)), (0, None), 1), C(U(3), None, 0))
cases('rt_example_vjp', C(U(3), U(4, 3), 0, 2), C((U(3), U(3)), (U(4, 3), U(3)), (0, None), 1))
cases('rt_stack_examples', C([U(3), U(3)]), C([(U(2), U(3)), (U(2), U(3))]))
cases('rt_stack_examples_vjp', C(U(2, 3), [U(3), U(3)]),
      C((U(2, 2), U(2, 3)), [(U(2), U(3)), (U(2), U(3))]))
cases('rt_keywords_by_position', C(np.sum, 1, ('axis',)), C(np.clip, 1, ('max', 'min')))
cases('rt_batch_size', C(U(4, 3), 0), C((U(2), U(5, 2)), (None, 0)))
cases('rt_any_true', C(B(4)), C(np.zeros(3, bool)))
cases('rt_loop_bound', C(np.array([3, 5, 1]), True), C(np.array([3, 5, 1]), False))
cases('rt_quiet', C())
cases('rt_loud', C(np.geterr()))
cases('rt_batch_index', C(1), C((slice(0, 2), None)), C('a', {'a': U(4)}), C(0, [U(4)]))
cases('rt_shift_axis', C(0), C(-1), C((0, -2)))
cases('rt_example_shape', C(U(4, 3)), C(U(4)))
cases('rt_example_len', C(U(4, 3)), C([U(4), U(4, 2)]))
cases('rt_example_rank', C((U(4, 3), U(2, 3)), (0, None)), C((U(4), 0.5), (0, None)))
cases('rt_vmapped', C(_square, 0), C(_square, (None,)),       # a closure: its captured values pass
      C(runtime.closure(_lifted, U(3), U(3)), (0,), 0, (None, 0)),
      C(runtime.closure(_lifted, U(2, 2), 0.5), (0,)))
cases('rt_first_example', C(U(4, 3), 0), C((U(4), 0.5, U(2)), (0, None, None)), C(U(0, 3), 0),
      C({'a': U(3, 2)}, {'a': 0}))
cases('rt_attribute', C(U(2, 3), 'T'), C(U(3), 'shape'))


def _draw(key, n):
    return np.full(n, key.sum() / 2.0 ** 32)


def _draws(keys, n):                    # _draw's batched form, as codax.random has them:
    draws = np.stack([_draw(k, n) for k in keys.reshape(-1, 2)])   # keys of any leading axes
    return draws.reshape(keys.shape[:-1] + draws.shape[1:])


_draw.__codax_batched__ = _draws
_KEYS = np.arange(8, dtype=np.uint32).reshape(4, 2) * np.uint32(123456789)
from codax import random as _random  # noqa: E402  (samplers whose parameters are differentiated)
cases('rt_batched_form', C(_draw, (_KEYS, 3), {}), C(_draw, (_KEYS,), {'n': (2, 2)}),
      C(_random.uniform, (_KEYS, (3,)), {'minval': U(3), 'maxval': 2.5}),
      C(_random.truncated_normal, (_KEYS, -1.0 + U(2, 1) / 4, 0.5 + U(2) / 4), {}))
cases('rt_batched_form_vjp', C(U(4, 3), _random.uniform, (_KEYS, (3,)), {'maxval': 2.5}))
cases('rt_batched_form_jvp', C(_random.uniform, (_KEYS, (3,)), {'maxval': 2.5}, (0.0, 0.0),
                               {'maxval': 1.0}))

# ---- pytrees: codax.tree_util inside transformed code ----


def _params_tree():
    return {'w': U(2, 3), 'b': [U(3), (U(2), float(U()))]}


_STRUCTURE = runtime.tree_structure(_params_tree())
cases('tree_leaves', C(_params_tree()), C([U(3), (U(2),)]), C(U(4)))
cases('tree_flatten', C(_params_tree()), C((U(3), {'x': U(2), 'a': U(1)})))
cases('tree_unflatten', C(_STRUCTURE, [U(3), U(2), float(U()), U(2, 3)]))
cases('treedef_leaves', C(_STRUCTURE, _params_tree()))
# cut where is_leaf cut: the list under 'b' is one subtree
_PREFIX = runtime.tree_structure(_params_tree(), is_leaf=lambda x: isinstance(x, list))
cases('treedef_subtrees', C(_STRUCTURE, _params_tree()), C(_PREFIX, _params_tree()))
cases('tree_structure', C(_params_tree()))
cases('rt_derivative_leaves', C(_params_tree(), _STRUCTURE))
cases('rt_derivative_tree', C([U(3), U(2), float(U()), U(2, 3)], _STRUCTURE))


class Node(tuple):
    """A registered pytree node whose attributes .w and .b hold its two
    children; a tuple, so that the tree helpers below see through it."""
    w = property(lambda self: self[0])
    b = property(lambda self: self[1])


runtime.tree.register_pytree_node(Node, lambda node: (list(node), None), lambda _, c: Node(c))
# attribute reads of pytree nodes (runtime/primitives/nodes.py)
cases('node_attribute', C(Node((U(2, 3), U(3))), 'w'), C(Node((U(3), {'a': U(2), 'c': U()})), 'b'))
cases('rt_attribute_cotangent', C(U(3), Node((U(2), U(3))), 'b'))
cases('rt_attribute_tangent', C(Node((U(2), U(3))), Node((U(2), U(3))), 'w'))


class Flipped(tuple):
    """A registered node built as Flipped(w, b) that keeps its children as (b, w)
    (rebuilt from one iterable, as a tuple is)."""

    def __new__(cls, *args):
        return tuple.__new__(cls, args[0] if len(args) == 1 else (args[1], args[0]))


runtime.tree.register_pytree_node(Flipped, lambda node: (list(node), None),
                                  lambda _, c: Flipped(c))
Pair = collections.namedtuple('Pair', 'w b')
# construction of pytree nodes: where[k] is the child that argument k is
cases('node_construction', C(Pair, (0, 1), (), U(2, 3), U(3)),
      C(Flipped, (1, 0), (), U(3), {'a': U(2), 'c': U()}))
cases('rt_built_tangent', C(Node((U(2, 3), U(3))), (0, 1), (U(2, 3), U(3))),
      C(Node((U(3), U(2))), (1, 0, None), (U(2), U(3), 'aux')))
cases('rt_built_cotangents', C(Node((U(2, 3), U(3))), Node((U(2, 3), U(3))), (0, 1)),
      C(Node((U(3), U(2))), Node((U(3), U(2))), (1, 0, None)))


# ---- more NumPy functions with rules (linspace's bounds, scans, sorting, ...) ----
CASES['linspace'] += [C(U(), U(), 4), C(U(3), U(3), 5, axis=1), C(U(2, 1), U(3), 4, False),
                      C(0.5, U(3), 3, retstep=True), C(U(2), 2.0, 5, endpoint=False, retstep=True),
                      C(U(3), U(2, 3), 4, axis=-1), C(U(), U(), 1)]
_LS = (U(2, 1), U(3))
cases('rt_linspace_vjp', C(U(4, 2, 3), *_LS, np.linspace(*_LS, 4), 4, True, False, 0, 0),
      C(0.5, *_LS, np.linspace(*_LS, 4), 4, True, False, 0, 1),
      C((U(2, 3, 5), U(2, 3)), *_LS, np.linspace(*_LS, 5, False, True, axis=-1), 5, False, True,
        -1, 1),
      C((0.3, U(2, 3)), *_LS, np.linspace(*_LS, 3, retstep=True), 3, True, True, 0, 0))
# statistics: zeros for cumprod (one in a slice, two, at the ends); ties for ptp
_CUMPROD_ZEROS = np.array([[0.5, 0.0, 1.5, -0.7], [0.0, 2.0, 0.0, 1.2], [1.1, -0.4, 0.9, 0.0]])
cases('cumprod', C(NZ(5)), C(NZ(2, 3), axis=0), C(_CUMPROD_ZEROS, 1), C(_CUMPROD_ZEROS.copy()),
      C(_CUMPROD_ZEROS.T.copy(), axis=0), C(NZ(2, 3, 2), -1))
cases('ptp', C(U(5)), C(U(2, 3), axis=0), C(U(2, 3, 4), (0, 2), keepdims=True),
      C(_tie_matrix(), 1), C(U(2, 3), axis=-1, keepdims=True))
cases('median', C(U(5)), C(U(4)), C(U(3, 4), axis=0), C(U(3, 4), 1, keepdims=True),
      C(U(2, 3, 4), axis=(0, 2)), C(U(2, 3)))
# (no NaN here: the checks compare inputs before and after; see tests/test_more_rules.py)
for _name in ('nansum', 'nanmean'):
    cases(_name, C(U(5)), C(U(2, 3), axis=0), C(U(2, 3), 0, keepdims=True),
          C(U(2, 3, 2), axis=(0, 2)), C(U(2, 3), axis=1, where=B(2, 3) | np.eye(2, 3, dtype=bool)))
cases('average', C(U(5)), C(U(2, 3), axis=0), C(U(2, 3), weights=P(2, 3)),
      C(U(2, 3), 1, P(3)), C(U(2, 3, 4), (2, 0), P(4, 2)), C(U(2, 3), 0, P(2, 3), True),
      C(U(2, 3), weights=P(2, 3), returned=True), C(U(2, 3), 1, P(3), keepdims=True),
      C(U(3, 2), 0, None, True, keepdims=True))
_AW = U(2, 3, 4)
cases('rt_average_weights', C(_AW, P(2, 3, 4)), C(_AW, P(4), -1), C(_AW, P(4, 2), (2, 0)))
cases('rt_average_weights_vjp', C(U(2, 3, 4), _AW, P(2, 3, 4)), C(U(3, 1), _AW, P(4), -1),
      C(0.5, _AW, P(4, 2), (2, 0)), C(U(1, 1, 4), _AW, P(4), 2))
cases('rt_median_weights', C(U(5)), C(U(2, 3), 1), C(U(2, 3, 4), (0, 2)))
cases('rt_cumprod_zeros', C(_CUMPROD_ZEROS), C(_CUMPROD_ZEROS.T.copy(), 0), C(U(3, 2), 1))

# structure ops
_ARG = np.argsort(_AW, axis=1)
cases('sort', C(U(5)), C(U(3, 4)), C(U(3, 4), 0), C(U(2, 3, 4), axis=None),
      C(U(2, 3, 4), axis=-2, kind='stable'))
cases('take_along_axis', C(U(5), np.array([4, 0, 0, 2])), C(_AW, _ARG, 1),
      C(U(3, 4), np.array([[0, 3, 3]]), axis=1), C(U(6), np.array([5, -1, 2]), None),
      C(U(3, 4), np.array([[2], [0], [-1]]), -1))
cases('rt_take_along_axis_vjp', C(U(2, 3, 4), _AW, _AW, _ARG, 1),
      C(0.5, U(5), U(4), np.array([4, 0, 0, 2])), C(U(3), U(6), U(3), np.array([5, -1, 5]), None),
      C(U(1, 3), U(3, 4), U(3, 3), np.array([[0, 3, 3]]), 1))
cases('diff', C(U(5)), C(U(5), 2), C(U(3, 4), axis=0), C(U(3, 4), 3, -1),
      C(U(4), prepend=0.5), C(U(3, 4), 1, 0, prepend=U(1, 4), append=U(2, 4)),
      C(U(2, 4), 2, append=U(2, 1)), C(U(2, 3), n=0), C(U(2, 3), 1, 1, U(2, 1), 0.25))
_D34, _DP, _DA = U(3, 4), U(1, 4), U(2, 4)
_DY = np.diff(_D34, 1, 0, _DP, _DA)
cases('rt_diff_vjp', C(U(4), U(5), U(4)), C(U(2, 4), _D34, U(2, 4), 1, 0),
      C(U(5, 1), _D34, _DY, 1, 0, _DP, _DA, 1), C(0.5, _D34, _DY, 1, 0, _DP, _DA, 2),
      C(U(3), U(4), U(3), 2, -1, 0.5, None, 1), C(U(5, 4), _D34, _DY, 1, 0, _DP, _DA, 0))
cases('rot90', C(U(2, 3)), C(U(2, 3), 2), C(U(2, 3, 4), -1, (2, 0)), C(U(3, 4), 3, axes=(1, 0)))
cases('column_stack', C([U(3), U(3)]), C([U(3, 2), U(3), U(3, 1)]), C((U(), U())))
cases('dstack', C([U(3), U(3)]), C([U(2, 3), U(2, 3, 2)]), C((U(), U())), C([U(1, 2, 2), U(1, 2)]))
cases('rt_joined_vjp', C(U(3, 4), [U(3), U(3, 2), U(3)], U(3, 4), 'column_stack'),
      C(0.5, [U(2, 3), U(2, 3, 2)], U(2, 3, 3), 'dstack'),
      C(U(1, 3), [U(2, 1), U(2, 2)], U(2, 3), 'column_stack'))
cases('append_array', C(U(3), U(2)), C(U(2, 3), 0.5), C(U(2, 3), U(1, 3), 0),
      C(U(2, 3), U(2, 2), axis=1), C(0.25, U(2, 2)))

# products
cases('kron', C(U(2, 3), U(3, 2)), C(U(3), U(2)), C(U(2, 2), U(3)), C(U(3), U(2, 2, 2)),
      C(U(), U(3)), C(U(2, 1, 3), U(2, 3)))
cases('cross', C(U(3), U(3)), C(U(4, 3), U(3)), C(U(3, 4), U(4, 3), axisa=0),
      C(U(3, 2), U(2, 3), 0, 1, 0), C(U(2, 3, 1), U(3, 5), axisa=1, axisb=0, axisc=1),
      C(U(3, 2), U(3, 2), axis=0), C(U(2, 1, 3), U(4, 3)))
cases('rt_kron_layout', C(U(2, 3), U(3)), C(U(), U(2, 2)))
cases('rt_cross_axes', C(U(3), U(4, 3)), C(U(3, 2), U(2, 3), 0, 1, 0, None, 1))

# element-wise
cases('copysign', C(NZ(3), U(3)), C(NZ(2, 3), U(3)), C(NZ(2, 1), NZ(1, 3)), C(NZ(2, 3), -0.0),
      C(float(NZ()), U(3)), C(NZ(4), np.array([0.0, -0.0, np.inf, -np.inf])))
_NONFINITE = np.array([[0.5, -1.2, np.inf], [-np.inf, -0.3, 2.0]])
# (nan given each time: the checks perturb only the arguments a case passes;
# infinities replaced by finite values, or differences drown in 1.8e308)
cases('nan_to_num', C(U(3), nan=0.0), C(U(2, 2), True, 0.5, 2.0),
      C(_NONFINITE.copy(), True, -0.25, 2.0, -3.0),
      C(_NONFINITE.copy(), nan=0.0, posinf=1.5, neginf=U()))
cases('angle', C(U(3)), C(NZ(2, 3), True), C(float(NZ())), C(NZ(2, 2), deg=False))

# numpy.linalg (eigh reads one triangle: a not symmetric is read as NumPy reads it)
cases('matrix_power', C(WELL(3), 3), C(WELL(2, (2,)), 2), C(WELL(3), 0), C(WELL(3), 1),
      C(WELL(3), -2), C(WELL(2, (2, 2)), -1))
cases('eigh', C(SPD(3)), C(WELL(3), 'U'), C(U(4, 4)), C(SPD(3, (2,))), C(U(2, 3, 3), UPLO='L'))
cases('svd', C(WELL(3)), C(U(4, 3), False), C(U(2, 4), full_matrices=False),
      C(U(2, 4, 3), False), C(U(3, 4), compute_uv=False), C(U(2, 2, 3), True, False))
cases('qr', C(WELL(3)), C(U(4, 3)), C(U(2, 4, 2)), C(U(4, 3), 'r'), C(WELL(3), mode='complete'))
cases('pinv', C(U(3, 2)), C(U(2, 4)), C(WELL(3)), C(U(2, 3, 2)), C(U(3, 2), 1e-10))
cases('lstsq', C(U(4, 3), U(4)), C(U(5, 2), U(5, 3)), C(WELL(3), U(3), None), C(U(2, 4), U(2)),
      C(U(3, 4), U(3, 2), rcond=None))
cases('multi_dot', C([U(2, 3), U(3, 4), U(4, 2)]), C([U(3), U(3, 4), U(4)]),
      C([U(3), U(3, 2), U(2, 4), U(4, 2)]), C([U(2, 3), U(3)]))
cases('rt_multi_dot_subscripts', C([U(2, 3), U(3, 4)]), C([U(3), U(3, 2), U(2)]))
cases('rt_eigh_triangle', C(U(3, 3)), C(U(2, 3, 3), 'U'))
cases('rt_linalg_rule_applies', C('eigh', U(3, 3)), C('svd', U(3, 2), False, False),
      C('qr', U(4, 3), False, False, 'r'))

# np.pad's statistic modes (distinct random values: no ties between maxima)
_S34 = U(3, 4)
CASES['pad'] += [C(U(3, 4), ((1, 2), (2, 1)), 'maximum'), C(U(3, 4), 2, 'minimum'),
                 C(U(3, 5), ((2, 1), (1, 2)), 'median'), C(U(4), (1, 2), 'median'),
                 C(U(3, 4), 1, 'mean', stat_length=2),
                 C(U(3, 4), ((1, 2), (2, 1)), 'maximum', stat_length=((1, 2), (3, 1)))]
CASES['rt_pad_vjp'] += [C(U(6, 7), _S34, np.pad(_S34, ((1, 2), (2, 1)), 'maximum'),
                          ((1, 2), (2, 1)), 'maximum'),
                        C(U(5, 6), _S34, np.pad(_S34, 1, 'median', stat_length=2), 1, 'median', 2)]
# where= and initial= of the reductions (every slice keeps an element)
_KEEP3 = np.array([True, False, True])
_KEEP23 = np.array([[True, False, True], [False, True, True]])
CASES['sum'] += [C(U(2, 3), axis=1, where=_KEEP3), C(U(2, 3), initial=0.5),
                 C(U(2, 3), 0, None, None, True, 1.5, _KEEP23)]
CASES['mean'] += [C(U(2, 3), axis=1, where=_KEEP3), C(U(2, 3), where=_KEEP23),
                  C(U(2, 3), 0, keepdims=True, where=_KEEP23)]
CASES['prod'] += [C(NZ(2, 3), axis=1, initial=2.0, where=_KEEP3), C(NZ(2, 3), initial=-1.5),
                  C(_PROD_ZEROS[:2].copy(), axis=1, where=_KEEP23), C(NZ(2, 3), where=_KEEP23)]
for _name in ('max', 'min'):
    CASES[_name] += [C(U(2, 3), axis=1, initial=(-1) ** (_name == 'max') * 5.0, where=_KEEP3),
                     C(U(2, 3), initial=(-1) ** (_name == 'min') * 2.0),
                     C(U(2, 3), axis=0, keepdims=True, initial=0.0),
                     C(U(2, 3), 1, None, False, (-1) ** (_name == 'max') * 3.0, _KEEP23)]
_SEL_C = [U(2, 3) > 0.3, U(3) < -0.2]
cases('select', C(_SEL_C, [U(2, 3), U(3)]), C(_SEL_C, [U(2, 3), U(2, 3)], U(2, 3)),
      C([U(4) > 0], [U(4)], 0.5), C(_SEL_C, [U(1, 3), 0.7], default=U(2, 1)))
_SEL_Y = np.select(_SEL_C, [U(2, 3), U(3)])
cases('rt_select_choices_vjp', C(U(2, 3), _SEL_C, [U(2, 3), U(3)], _SEL_Y),
      C(0.5, _SEL_C, [U(1, 3), U(2, 3)], _SEL_Y))
cases('rt_select_default_vjp', C(U(2, 3), _SEL_C, U(2, 3), _SEL_Y), C(U(2, 3), _SEL_C, U(3), _SEL_Y),
      C(0.5, _SEL_C, 0.2, _SEL_Y))
cases('matrix_transpose', C(U(2, 3)), C(U(2, 3, 4)), C(U(1, 1)))
cases('rt_pad_jvp', C(U(3, 4), _S34, ((1, 2), (2, 1)), 'maximum'),
      C(U(3, 4), _S34, 1, 'median', 3), C(U(3, 4), _S34, 1), C(U(3, 4), _S34, 2, 'reflect'))
_NAN23 = np.array([[np.nan, 0.5, -1.0], [2.0, np.nan, np.nan]])
cases('rt_fextremum_weight', C(_NAN23, U(2, 3), 'fmax', 0), C(U(3), _NAN23, 'fmin', 1),
      C(0.5, _NAN23, 'fmax', 1))
cases('rt_pad_values_jvp', C(U(), _S34, 1), C(U(2, 2), _S34, ((1, 2), (2, 1)), 'constant'),
      C(U(2), _S34, 2))
for _name in ('nonzero', 'flatnonzero', 'argwhere'):       # indices where a holds
    cases(_name, C(U(4) > 0), C(U(2, 3) > 0), C(U(3)))
# getitem_vjp's transpose: (h, cot, x, idx, y), y shaped like x, cot like x[idx]
cases('rt_getitem_vjp_transpose', C(U(3, 4), U(4), U(3, 4), 1, U(3, 4)),
      C(U(3, 4), U(2, 4), U(3, 4), slice(0, 2), U(3, 4)),
      C(U(5), U(3), U(5), np.array([0, 2, 2]), U(5)), C(U(), U(2), U(4), np.array([1, 3]), U(4)),
      C([U(2), U(3)], U(3), [U(2), U(3)], 1, [U(2), U(3)]))
_EXT = U(2, 3)
cases('rt_extremum_vjp_transpose', C(U(2, 3), U(2), _EXT, _EXT.max(1), 1, False, U(2, 3)),
      C(U(2, 3), U(), _EXT, _EXT.min(), None, False, U(2, 3)),
      C(U(3), U(2, 1), _EXT, _EXT.max(1, keepdims=True), 1, True, U(2, 3)))
cases('rt_unstack_transpose', C([U(3), U(3)], U(2, 3), [U(3), U(3)]),
      C([U(2), U(1)], U(2, 2), [U(2), U(2)], 1), C([0.0, U(3)], U(2, 3), [U(3), U(3)]))
# rt.add's adjoint of an operand, and its transpose (h shaped like that adjoint)
cases('rt_add_transpose', C(U(2, 3), U(3), U(2, 3)), C(U(3), U(3), U(3)),
      C([U(2), U(2, 3)], [U(2), U(1, 3)], [U(2), U(2, 3)]))
cases('rt_add_transpose_transpose', C(U(3), U(2, 3), U(3), U(2, 3)), C(U(3), U(3), U(3), U(3)),
      C([U(2), U(1, 3)], [U(2), U(2, 3)], [U(2), U(1, 3)], [U(2), U(2, 3)]))
# searching and sets (integer results); numpy.fft (complex: the checks pair
# an adjoint r with a direction d as Re(sum(r d)), JAX's transposition)
cases('argpartition', C(U(6), 2), C(U(3, 4), [1, 2], axis=0), C(U(2, 5), 3, None))
cases('searchsorted', C(np.sort(U(5)), U(3)), C(np.sort(U(5)), 0.1, 'right'),
      C(U(5), U(2, 2), sorter=np.argsort(U(5))))
cases('matrix_rank', C(U(3, 3)), C(np.outer(U(3), U(3))), C(U(2, 3, 3), hermitian=False))
# (with size=: vmap refuses it without; tests/test_numpy_coverage.py)
cases('rt_unique_parts', C(np.array([3.0, 1.0, 3.0, 2.0]), size=4), C(U(3, 2), 0, size=3),
      C(np.array([1.0, 1.0, 2.0]), None, True, 5), C(np.array([2.0, 1.0, 2.0]), size=1))
cases('rt_resized', C(U(3, 4), U(5, 2), (0, 1)), C(U(4), U(6)), C(U(2, 3), U(2, 2), (-1,)),
      C(U(3) + 1j * U(3), U(2)))
cases('rt_real_like', C(U(3) + 1j * U(3), np.float64), C(U(2, 3), np.complex128),
      C(U(4) + 1j * U(4), np.dtype(np.complex128)))
cases('rt_fft_axes', C(None, None), C((3, 4), None), C(None, (0,)), C((2,), (1,)))
cases('rt_irfft_mask', C(6, -1, 1), C(5, 0, 2), C(4, 1, 3))
cases('rt_resizes', C(None), C(4), C((2, 5)))
_Z = U(2, 3) + 1j * U(2, 3)
for _name in ('fft', 'ifft'):
    cases(_name, C(U(5)), C(U(4) + 1j * U(4)), C(U(3, 4), 6, 0), C(U(4), 3, norm='ortho'),
          C(_Z, None, -1, 'forward'))
for _name in ('fft2', 'ifft2', 'fftn', 'ifftn'):
    cases(_name, C(U(3, 4)), C(_Z, (2, 5), (0, 1)), C(U(2, 3, 4), None, (0, 2), 'ortho'),
          C(U(3, 2), (4, 4), (1, 0), norm='forward'))
cases('rfft', C(U(6)), C(U(5)), C(U(3, 4), 7, 0), C(U(4), 3, norm='ortho'),
      C(U(2, 5), None, -1, 'forward'))
cases('irfft', C(U(4) + 1j * U(4)), C(U(3) + 1j * U(3), 5), C(_Z, 4, 0, 'ortho'),
      C(_Z.T.copy(), None, 0, norm='forward'), C(U(4), 9))
cases('dict_items_tangent', C({'a': U(2), 'b': U(3)}), C({'w': U(2, 2)}))
cases('rt_einsum_vjp_spec', C('ij,jk->ik', 2, 0), C('ij->j', 1, 0), C('ii->', 1, 0))
cases('rt_einsum_vjp_spread', C('ij,jk->ik', 2, 1), C('ij->j', 1, 0), C('...i,i', 2, 0))
cases('rt_log_times', C(NZ(3), P(3)), C(NZ(2, 3), P(3)), C(NZ(2, 3), 1.5), C(0.7, P(2)),
      C(NZ(3), P(2, 1)))
# second derivatives of draws under vmap: truncated_normal's draws are not
# linear in its bounds
_TN = (_KEYS, -1.0 + U(2, 1) / 4, 0.5 + U(2) / 4)
CASES['rt_batched_form_vjp'] += [C(U(4, 2, 2), _random.truncated_normal, _TN, {})]
CASES['rt_batched_form_jvp'] += [C(_random.truncated_normal, _TN, {}, (0.0, U(2, 1), U(2)), {})]
cases('rt_batched_form_hvp', C((0.0, U(2, 1), U(2)), {}, U(4, 2, 2), _random.truncated_normal,
                               _TN, {}))
cases('rt_batched_form_jvp2', C(_random.truncated_normal, _TN, {}, (0.0, U(2, 1), U(2)), {},
                                (0.0, U(2, 1), U(2)), {}))
# session 11: dtype queries (constants to derivatives), vander, eig, eigvals,
# np.linalg.norm's rule names; complex norms (JAX's conjugate direction)
cases('result_type', C(U(3), np.float32), C(np.float32, 1.0), C(U(2).astype(np.float32), U(2)))
cases('promote_types', C(np.float32, np.float64), C('i4', 'f2'))
cases('can_cast', C(U(3), np.float32), C(np.float64, np.int32, 'same_kind'))
cases('common_type', C(U(3), U(2)), C(U(2).astype(np.float32)))
cases('finfo', C(np.float32), C(np.dtype(np.float64)))
cases('iinfo', C(np.int16), C(np.dtype(np.uint8)))
cases('dtype', C('float32'), C(np.float64))
cases('issubdtype', C(np.float64, np.floating), C(np.dtype('i4'), np.inexact))
if hasattr(np, 'isdtype'):
    cases('isdtype', C(np.dtype(np.float64), 'real floating'), C(np.dtype(np.int8), 'integral'))
cases('isrealobj', C(U(3)), C(U(2) + 1j * U(2)))
cases('mintypecode', C('df'), C(['f', 'F'], 'GDFgdf', 'd'))
cases('min_scalar_type', C(3.0), C(U(3)))
cases('vander', C(U(4)), C(U(3), 5), C(U(3), 2, True), C(np.array([0.0, 0.5, -1.2]), None, True),
      C(np.array([0.0, 0.7]), 4), C(U(3), 1), C(U(3), 0), C(U(3) + 1j * U(3), 3))


def _with_spectrum(block, batch=()):
    """s block s^-1 for a well-conditioned s: eigenvalues chosen well apart
    (differences of nearly equal ones drown in rounding)."""
    s = WELL(len(block), batch)
    return np.linalg.solve(np.swapaxes(s, -1, -2), np.swapaxes(s @ block, -1, -2)).swapaxes(-1, -2)


_REAL3 = np.diag([1.0, -0.5, 2.2])
_PAIR4 = np.array([[0.5, -1.2, 0, 0], [1.2, 0.5, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, -1.0]])
for _name in ('eig', 'eigvals'):
    cases(_name, C(_with_spectrum(_REAL3)), C(_with_spectrum(_PAIR4)),
          C(_with_spectrum(_REAL3, (2,))), C(_with_spectrum(_PAIR4) + 0.3j * U(4, 4)),
          C(_with_spectrum(_PAIR4[:3, :3].copy())))
cases('rt_norm_matrix', C(None, None), C(1, None), C(2, (0, 1)), C('fro', 1))
cases('rt_norm_matrix_axes', C(None), C((2, 0)), C([-1, 0], np.inf), C(None, -1))
cases('rt_norm_singular_weights', C(P(3), 'nuc'), C(P(2, 3), 2), C(P(4), -2))
cases('rt_norm_rule', C(1, None, True), C(np.inf, 1, False), C(3, None, False),
      C('nuc', (0, 1), True), C(-2, None, False))
cases('rt_einsum_vjp_masked', C('ii->', 1, 0), C('ij,jk->ik', 2, 1), C('ii,ij->j', 2, 1))
cases('rt_einsum_vjp_mask', C('ii->', 1, 0, (3, 3)), C('...ii->...i', 1, 0, (2, 3, 3)),
      C('iijj,k', 2, 0, (2, 2, 3, 3)), C('ij,kkk', 2, 1, (2, 2, 2)))
CASES['rt_einsum_vjp_spec'] += [C('...ii->...i', 1, 0), C('i,...i->...', 2, 0), C('...i->...', 1, 0)]
CASES['rt_einsum_vjp_spread'] += [C('...i->...', 1, 0), C('iij->i', 1, 0)]
CASES['einsum'] += [C('ii->', WELL(3)), C('ii->i', U(3, 3)), C('...ii->...i', U(2, 3, 3)),
                    C('iij,j->i', U(2, 2, 3), U(3)), C('i,...i->...', U(3), U(2, 3)),
                    C('...i->...', U(2, 3)), C('iii', U(2, 2, 2))]
cases('asanyarray', C(U(3)), C(U(2, 3), np.float64), C([U(), U()]))
cases('digitize', C(U(5), [-0.5, 0.0, 0.5]), C(U(2, 3), np.array([-0.2, 0.4]), True))
cases('modf', C(U(4) * 3), C(U(2, 3) * 5 - 1))
cases('divmod', C(U(4) * 3, P(4)), C(U(2, 3) * 3, 0.7), C(P(3) * 4, NZ(2, 1)))
cases('frexp', C(NZ(4) * 5), C(np.array([0.3, 3.0, -0.1])), C(NZ(2, 3) * 100))
_ZN = U(2, 3) + 1j * U(2, 3)
CASES['norm'] += [C(_ZN), C(_ZN[0].copy(), 1), C(_ZN[0].copy(), np.inf), C(_ZN[0].copy(), 3),
                  C(_ZN.copy(), 'nuc'), C(_ZN.copy(), 2), C(_ZN.copy(), -np.inf),
                  C(NZ(2, 3, 4), -1, axis=(-1, 0)), C(NZ(2, 3, 4), 'nuc', (0, 2), True)]
# session 11 (helper-67): tuple()/list()'s adjoint as records; np.maximum,
# np.minimum and np.logaddexp .accumulate (no ties in the records' own cases:
# a running max is not differentiable there) and their tangent/adjoint maps
# (ties allowed: linear in cot, with a and y only choosing the weights)
cases('rt_sequence_vjp', C([U(2), U(3)], [U(2), U(3)]), C((U(), U()), (U(), U())),
      C([U(3), U(3)], U(2, 3)))
cases('rt_sequence_vjp_transpose', C([U(2), U(3)], [U(2), U(3)]), C(U(2, 3), U(2, 3)),
      C((U(), U()), (U(), U())))
_RUN = np.array([0.3, -0.2, 0.9, 0.1, 1.4, 1.2])
_RUN_TIES = np.array([1.0, 3.0, 3.0, 2.0, 3.0, 5.0])
for _name in ('cummax', 'cummin', 'logcumsumexp'):
    cases(_name, C(_RUN.copy()), C(U(2, 5), axis=1), C(U(3, 2), 0), C(U(2, 3, 4), axis=-2))
for _which, _acc in (('max', np.maximum.accumulate), ('min', np.minimum.accumulate)):
    for _map in ('tangent', 'adjoint'):
        CASES.setdefault(f'rt_running_extremum_{_map}', []).extend([
            C(U(6), _RUN, _acc(_RUN), 0, _which), C(U(6), _RUN_TIES, _acc(_RUN_TIES), 0, _which),
            C(U(3, 2), _RUN_TIES.reshape(3, 2), _acc(_RUN_TIES.reshape(3, 2)), 0, _which)])
_LA = U(2, 4)
for _map in ('tangent', 'adjoint'):
    cases(f'rt_logcumsumexp_{_map}', C(U(6), _RUN, np.logaddexp.accumulate(_RUN), 0),
          C(U(2, 4), _LA, np.logaddexp.accumulate(_LA, 1), 1),
          C(U(6), _RUN, np.logaddexp.accumulate(_RUN), -1),
          C(U(2, 4), _LA, np.logaddexp.accumulate(_LA, 0), 0))
# np.spacing, np.nextafter: steps, derivative 0 (smoke calls)
cases('spacing', C(U(3) * 3), C(U(2, 2)))
cases('nextafter', C(U(3) * 3, P(3)), C(U(2, 3), U(3)))


# --------------------------------------------------------------------------
# Tree helpers (dict / list / tuple containers; float leaves differentiable).
# --------------------------------------------------------------------------

def _is_container(x):
    return isinstance(x, (dict, list, tuple))


def _is_float_leaf(x):
    """A float or complex value (complex ones for numpy.fft's records)."""
    if isinstance(x, bool):
        return False
    if isinstance(x, float):
        return True
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind in 'fc'


def _items(x):
    return list(x.items()) if isinstance(x, dict) else list(enumerate(x))


def _rebuild(x, values):
    if isinstance(x, dict):
        return dict(zip(x.keys(), values))
    if isinstance(x, tuple):
        # (a namedtuple, and a closure, stay what they are: runtime/closures.py)
        return type(x)(*values) if hasattr(x, '_fields') else type(x)(values)
    return list(values)


def _has_float(x):
    if _is_container(x):
        return any(_has_float(v) for _, v in _items(x))
    return _is_float_leaf(x)


def _random_like(x, sym=False, dtype=np.float64):
    """A random tree shaped like x: floats for float leaves, None elsewhere."""
    if _is_container(x):
        return _rebuild(x, [_random_like(v, sym, dtype) for _, v in _items(x)])
    if not _is_float_leaf(x):
        return None
    if isinstance(x, float):
        return float(_rng.standard_normal())
    d = np.asarray(_rng.standard_normal(np.shape(x)), dtype=dtype)
    if x.dtype.kind == 'c':
        d = d + 1j * np.asarray(_rng.standard_normal(np.shape(x)), dtype=dtype)
    if sym:
        d = 0.5 * (d + np.swapaxes(d, -1, -2))
    return d


def _perturb(x, d, t):
    if d is None:
        return x
    if _is_container(x):
        return _rebuild(x, [_perturb(v, d[k], t) for k, v in _items(x)])
    if isinstance(x, float):
        return x + t * d
    return np.asarray(x + t * d, dtype=np.result_type(x, np.float64))


def _inner(g, y):
    """<g, y> over the float leaves, g broadcast against y."""
    if g is None or (isinstance(g, float) and g == 0.0 and _is_container(y)):
        return 0.0
    if _is_container(y):
        return sum(_inner(g[k], v) for k, v in _items(y))
    if not _is_float_leaf(y):
        return 0.0
    return float(np.real(np.sum(np.asarray(g, dtype=np.complex128) *
                                np.asarray(y, dtype=np.complex128))))


def _is_zero(r):
    return type(r) is float and r == 0.0


def _pair(r, d, x, path):
    """<adjoint r, direction d> for a parameter with value x, checking that r
    has the parameter's structure and is broadcastable to each leaf."""
    if d is None or _is_zero(r):
        return 0.0
    if _is_container(x):
        if isinstance(x, dict):
            assert isinstance(r, dict), f'{path}: adjoint {type(r).__name__} for a dict'
            assert set(r) == set(x), f'{path}: adjoint keys {set(r)} != {set(x)}'
        else:
            assert isinstance(r, (list, tuple)), f'{path}: adjoint {type(r).__name__} for a sequence'
            assert len(r) == len(x), f'{path}: adjoint of length {len(r)} for {len(x)} elements'
        return sum(_pair(r[k], d[k], v, f'{path}[{k!r}]') for k, v in _items(x))
    ra = np.asarray(r)
    assert ra.dtype.kind in 'fc', f'{path}: adjoint of dtype {ra.dtype}'
    xs = np.shape(x)
    assert ra.ndim <= len(xs), f'{path}: adjoint of shape {ra.shape} for a value of shape {xs}'
    try:
        full = np.broadcast_to(ra, xs)
    except ValueError:
        raise AssertionError(f'{path}: adjoint of shape {ra.shape} does not broadcast to {xs}')
    return float(np.real(np.sum(full.astype(np.complex128) * d)))


def _snapshot(x):
    return copy.deepcopy(x)


def _same(a, b):
    if _is_container(a):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(v, b[k]) for k, v in _items(a)))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and bool(a == b or (a != a and b != b))


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

_NS = {'xp': np, 'rt': runtime}


def _impl(record):
    return eval(record.impl, dict(_NS))


def _call(record, args, kwargs, param=None, value=None):
    """The impl on the case's own args and kwargs, `param` replaced by `value`."""
    args, kwargs = list(args), dict(kwargs)
    if param is not None:
        if param in kwargs:
            kwargs[param] = value
        else:
            for i, (name, spec) in enumerate(record.signature.parameters.items()):
                if name == param:
                    if spec.kind == spec.VAR_POSITIONAL:
                        args[i:] = list(value)
                    else:
                        args[i] = value
                    break
    return _impl(record)(*args, **kwargs)


def _filled(record, args, kwargs):
    bound = record.signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _cotangents(ans):
    """(label, g) pairs: every form the convention allows for this output."""
    out = [('full', _random_like(ans)), ('zero', 0.0)]
    if _is_container(ans):
        if len(ans) >= 2:
            g = _random_like(ans)
            g = _rebuild(ans, [0.0] + [g[k] for k, _ in _items(ans)[1:]]) \
                if not isinstance(ans, dict) else g
            out.append(('zero-entry', g))
        return out
    if _is_float_leaf(ans) and np.ndim(ans) > 0:
        out.append(('scalar', 0.7))
        shp = np.shape(ans)
        if shp[0] > 1:
            out.append(('partial', np.asarray(_rng.standard_normal((1,) + shp[1:]))))
        if len(shp) >= 2:
            out.append(('trailing', np.asarray(_rng.standard_normal(shp[-1:]))))
    return out


def _check_template(record, p, template, args, kwargs, ans, label, g):
    params = _filled(record, args, kwargs)
    before = _snapshot((params, g))
    ns = dict(_NS, g=g, ans=ans, **params)
    where = f'{record.name}: VJP of {p!r} [{label} g] for args {_describe(args, kwargs)}'
    try:
        r = eval(template, ns)
    except Exception as exc:  # pragma: no cover - reported
        raise AssertionError(f'{where}: template {template!r} raised {exc!r}') from exc
    assert _same(before, (params, g)), f'{where}: the template modified its inputs'
    x = params[p]
    sym = record.name == 'cholesky'
    for _ in range(DIRECTIONS if label != 'zero' else 1):
        d = _random_like(x, sym=sym)
        lhs = _pair(r, d, x, where)
        if label == 'zero':
            assert lhs == 0.0, f'{where}: zero cotangent gave a nonzero adjoint'
            continue
        fp = _inner(g, _call(record, args, kwargs, p, _perturb(x, d, EPS)))
        fm = _inner(g, _call(record, args, kwargs, p, _perturb(x, d, -EPS)))
        rhs = (fp - fm) / (2 * EPS)
        assert abs(lhs - rhs) <= RTOL * (abs(lhs) + abs(rhs)) + ATOL, (
            f'{where}: <vjp, v> = {lhs!r} but finite differences give {rhs!r}')


def _describe(args, kwargs):
    def one(v):
        if isinstance(v, np.ndarray):
            return f'array{v.shape}'
        if _is_container(v):
            inner = ', '.join(one(x) for _, x in _items(v))
            return ('[%s]' if isinstance(v, list) else '(%s)' if isinstance(v, tuple)
                    else '{%s}') % inner
        return repr(v)
    parts = [one(a) for a in args] + [f'{k}={one(v)}' for k, v in kwargs.items()]
    return '(' + ', '.join(parts) + ')'


NAMES = sorted(rec.name for rec in TABLE)


@pytest.mark.parametrize('name', NAMES)
def test_rules(name):
    record = TABLE[name]
    assert CASES.get(name), f'{name}: no test case in tests/test_primitive_rules.py CASES'
    if not record.differentiable or name in NO_DERIVATIVE:
        for args, kwargs in CASES[name]:
            _call(record, args, kwargs)
        assert name not in NO_DERIVATIVE or not record.vjp, f'{name}: has rules now'
        return
    missing = [p for p in record.diff_params()
               if p not in record.vjp and (name, p) not in STATIC_PARAMS]
    assert not missing, f'{name}: no VJP template for differentiable parameters {missing}'
    exercised = set()
    for args, kwargs in CASES[name]:
        ans = _call(record, args, kwargs)
        params = _filled(record, args, kwargs)
        for p, template in record.vjp.items():
            if not _has_float(params[p]):
                continue
            exercised.add(p)
            for label, g in _cotangents(ans):
                _check_template(record, p, template, args, kwargs, ans, label, g)
    assert exercised, f'{name}: no case exercises any VJP rule'


def _to32(x):
    if _is_container(x):
        return _rebuild(x, [_to32(v) for _, v in _items(x)])
    if isinstance(x, (np.ndarray, np.float64)) and x.dtype == np.float64:
        return x.astype(np.float32)
    return x


def _dtype_problems(r, x, path):
    if _is_zero(r) or r is None:
        return []
    if _is_container(x):
        return sum((_dtype_problems(r[k], v, f'{path}[{k!r}]') for k, v in _items(x)), [])
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and isinstance(r, (np.ndarray, np.generic)):
        if r.dtype != np.float32:
            return [f'{path}: {r.dtype}']
    return []


DIFFERENTIABLE = sorted(rec.name for rec in TABLE if rec.differentiable)


@pytest.mark.parametrize('name', DIFFERENTIABLE)
def test_float32_adjoints_stay_float32(name):
    record = TABLE[name]
    problems = []
    for args, kwargs in CASES.get(name, []):
        args, kwargs = _to32(args), _to32(kwargs)
        ans = _call(record, args, kwargs)
        params = _filled(record, args, kwargs)
        g = _to32(_random_like(ans, dtype=np.float32))
        for p, template in record.vjp.items():
            if (name, p) in DTYPE_EXEMPT or not _has_float(params[p]):
                continue
            for gv in (g, 0.7) if not _is_container(ans) else (g,):
                r = eval(template, dict(_NS, g=gv, ans=ans, **params))
                problems += _dtype_problems(r, params[p], f'{p} {_describe(args, kwargs)}')
    assert not problems, f'{name}: float32 input, adjoint of another dtype: {problems}'


def test_every_case_names_a_record():
    stale = sorted(set(CASES) - set(NAMES))
    assert not stale, f'cases for primitives not in the table: {stale}'


def test_templates_only_use_defined_runtime_functions():
    missing = []
    for record in TABLE:
        for p, template in record.vjp.items():
            compile(template, f'<{record.name}.{p}>', 'eval')
            for fn in re.findall(r'\brt\.(\w+)', template):
                if not callable(getattr(runtime, fn, None)):
                    missing.append(f'{record.name}.{p}: rt.{fn}')
        if record.impl.startswith('rt.') and not callable(getattr(runtime, record.impl[3:], None)):
            missing.append(f'{record.name}: impl {record.impl}')
    assert not missing, missing


def test_template_names_do_not_shadow_parameters():
    clash = [f'{r.name}.{p}' for r in TABLE if r.differentiable
             for p in r.params if p in ('g', 'ans', 'xp', 'rt')]
    assert not clash, f'parameters named like template variables: {clash}'
