"""Every record's JVP rule, checked on its own (no compiler).

A JVP rule (runtime/table.py) is a dict {param: template}, `t` naming that
parameter's tangent and the output tangent being the sum of the terms, or
'linear': the impl called with tangents in place of every differentiable
parameter. For each differentiable record and each example call in
test_primitive_rules.CASES, with dense random tangents (float64) for the
float-valued differentiable parameters:

* JVP == central finite differences of the impl along those tangents (this is
  what catches a 'linear' rule on a function that is not jointly linear);
* transpose: <u, jvp(v)> == sum over params of <vjp(u), v>, the VJP templates
  evaluated as test_primitive_rules does, for a random cotangent u;
* linearity: jvp(a v1 + b v2) == a jvp(v1) + b jvp(v2);
* a dict rule takes the zero 0.0 as an entry of a list/tuple tangent;
* the rule leaves its inputs alone, gives float tangents broadcastable to the
  output (leaf by leaf for tuple/list outputs), and keeps float32 in float32.

A differentiable record without a JVP rule fails, and so does a dict rule
that misses a differentiable parameter.
"""
import ast
import re

import numpy as np
import pytest

import runtime
from runtime import TABLE
from test_primitive_rules import (CASES, NO_DERIVATIVE, STATIC_PARAMS, _NS, _describe, _filled, _has_float,
                                  _perturb, _random_like,
                                  _impl, _inner, _is_container, _is_float_leaf, _items, _pair,
                                  _rebuild, _same, _snapshot, _to32)

EPS = 1e-6
RTOL_FD = 1e-6        # central differences in float64
ATOL_FD = 1e-8
RTOL = 1e-9           # identities that hold exactly (up to rounding)
ATOL = 1e-11

# (record, parameter) pairs whose tangent may leave float32 (with the reason).
DTYPE_EXEMPT = {
    ('array', 'object'): 'np.array of Python floats and float32 arrays is itself float64',
}



# --------------------------------------------------------------------------
# Tangents
# --------------------------------------------------------------------------

# A random tree like x: floats at float leaves, None elsewhere (shared helper).
_direction = _random_like


def _dense(d, x):
    """The tangent value for direction d of primal x: d at float leaves, zeros
    for integer leaves (an inactive value's tangent), anything else unchanged."""
    if _is_container(x):
        return _rebuild(x, [_dense(d[k] if d is not None else None, v) for k, v in _items(x)])
    if d is not None:
        return d
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return type(x)(0)
    if isinstance(x, np.ndarray) and x.dtype.kind in 'iu':
        return np.zeros_like(x)
    return x


def _combine(a, d1, b, d2):
    if d1 is None:
        return None
    if _is_container(d1):
        return _rebuild(d1, [_combine(a, v, b, d2[k]) for k, v in _items(d1)])
    return a * d1 + b * d2


# --------------------------------------------------------------------------
# Evaluating a rule
# --------------------------------------------------------------------------

def _call_with(record, args, kwargs, values):
    """The impl on the case's args and kwargs with some parameters replaced."""
    args, kwargs = list(args), dict(kwargs)
    names = list(record.signature.parameters.items())
    for param, value in values.items():
        if param in kwargs:
            kwargs[param] = value
            continue
        for i, (name, spec) in enumerate(names):
            if name == param:
                if spec.kind == spec.VAR_POSITIONAL:
                    args[i:] = list(value)
                elif i < len(args):
                    args[i] = value
                break
    return _impl(record)(*args, **kwargs)


def _active(record, params):
    """Differentiable parameters with a float value (those given a tangent)."""
    return [p for p in record.diff_params()
            if p in params and (record.name, p) not in STATIC_PARAMS and _has_float(params[p])]


def _add(a, b):
    if _is_container(a):
        return _rebuild(a, [_add(v, b[k]) for k, v in _items(a)])
    return a + b


def _jvp(record, args, kwargs, ans, tangents, where):
    """The output tangent for {param: tangent} (active parameters only)."""
    if record.jvp == 'linear':
        present = record.bind(args, kwargs)
        values = {}
        for p in record.diff_params():
            if p in tangents:
                values[p] = tangents[p]
            elif p in present:
                values[p] = _dense(None, present[p])
        return _call_with(record, args, kwargs, values)
    params = _filled(record, args, kwargs)
    total = None
    for p, tp in tangents.items():
        ns = dict(_NS, t=tp, ans=ans, **params)
        try:
            term = eval(record.jvp[p], ns)
        except Exception as exc:  # pragma: no cover - reported
            raise AssertionError(f'{where}: JVP template of {p!r} {record.jvp[p]!r} '
                                 f'raised {exc!r}') from exc
        total = term if total is None else _add(total, term)
    return total


def _leaves(jvp, ans, where, path=''):
    """(tangent leaf, output leaf) pairs, checking structure, shape and dtype."""
    if _is_container(ans):
        if type(jvp) is float and jvp == 0.0:
            return []
        assert _is_container(jvp) and len(jvp) == len(ans), (
            f'{where}{path}: tangent {type(jvp).__name__} for a {type(ans).__name__} '
            f'of length {len(ans)}')
        return sum((_leaves(jvp[k], v, where, f'{path}[{k!r}]') for k, v in _items(ans)), [])
    if not _is_float_leaf(ans):
        return []
    ja = np.asarray(jvp)
    kinds = 'fc' if np.asarray(ans).dtype.kind == 'c' else 'f'       # (numpy.fft's records)
    assert ja.dtype.kind in kinds, f'{where}{path}: tangent of dtype {ja.dtype}'
    try:
        full = np.broadcast_to(ja, np.shape(ans))
    except ValueError:
        raise AssertionError(f'{where}{path}: tangent of shape {ja.shape} does not broadcast '
                             f'to the output shape {np.shape(ans)}')
    assert ja.ndim <= np.ndim(ans), f'{where}{path}: tangent of shape {ja.shape} ' \
        f'for an output of shape {np.shape(ans)}'
    return [(full, ans, path)]


def _close(a, b, rtol, atol):
    a, b = np.asarray(a, dtype=np.complex128), np.asarray(b, dtype=np.complex128)
    return bool(np.all(np.abs(a - b) <= rtol * (np.abs(a) + np.abs(b)) + atol))


def _assert_close_trees(x, y, ans, rtol, atol, where, what):
    for (a, _, path), (b, _, _) in zip(_leaves(x, ans, where), _leaves(y, ans, where)):
        assert _close(a, b, rtol, atol), (
            f'{where}{path}: {what}\n  got      {np.ravel(a)[:6]}\n  expected {np.ravel(b)[:6]}')


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

def _check_case(record, args, kwargs):
    ans = _call_with(record, args, kwargs, {})
    params = _filled(record, args, kwargs)
    active = _active(record, params)
    if not active:
        return False
    where = f'{record.name} {_describe(args, kwargs)}'
    sym = record.name == 'cholesky'
    dirs = {p: _direction(params[p], sym) for p in active}
    tans = {p: _dense(dirs[p], params[p]) for p in active}

    before = _snapshot((params, tans))
    jvp = _jvp(record, args, kwargs, ans, tans, where)
    assert _same(before, (params, tans)), f'{where}: the JVP modified its inputs'
    _leaves(jvp, ans, where)

    # (a) finite differences of the impl along the tangents, all parameters at once.
    fp = _call_with(record, args, kwargs, {p: _perturb(params[p], dirs[p], EPS) for p in active})
    fm = _call_with(record, args, kwargs, {p: _perturb(params[p], dirs[p], -EPS) for p in active})
    fd = _fd(fp, fm, ans)
    _assert_close_trees(jvp, fd, ans, RTOL_FD, ATOL_FD, where,
                        'JVP differs from central finite differences')

    # (b) transpose: <u, J v> == sum_p <vjp_p(u), v_p>.
    u = _direction(ans)
    rhs = _inner(u, jvp)
    lhs = 0.0
    for p in active:
        r = eval(record.vjp[p], dict(_NS, g=u, ans=ans, **params))
        lhs += _pair(r, dirs[p], params[p], f'{where}: VJP of {p!r}')
    assert abs(lhs - rhs) <= 1e-8 * (abs(lhs) + abs(rhs)) + 1e-10, (
        f'{where}: <vjp(u), v> = {lhs!r} but <u, jvp(v)> = {rhs!r}')

    # (d) a container's tangent may hold the zero 0.0 for an inactive entry.
    if isinstance(record.jvp, dict):
        for p in active:
            if isinstance(params[p], (list, tuple)) and len(params[p]) >= 2:
                zd = dict(dirs, **{p: _rebuild(dirs[p], [None] + list(dirs[p])[1:])})
                zt = dict(tans, **{p: _rebuild(tans[p], [0.0] + list(tans[p])[1:])})
                jz = _jvp(record, args, kwargs, ans, zt, where)
                fp = _call_with(record, args, kwargs,
                                {q: _perturb(params[q], zd[q], EPS) for q in active})
                fm = _call_with(record, args, kwargs,
                                {q: _perturb(params[q], zd[q], -EPS) for q in active})
                _assert_close_trees(jz, _fd(fp, fm, ans), ans, RTOL_FD, ATOL_FD, where,
                                    f'JVP with a zero entry 0.0 in the tangent of {p!r}')

    # (c) linearity in the tangents.
    dirs2 = {p: _direction(params[p], sym) for p in active}
    a, b = 0.7, -1.3
    mixed = {p: _dense(_combine(a, dirs[p], b, dirs2[p]), params[p]) for p in active}
    j2 = _jvp(record, args, kwargs, ans, {p: _dense(dirs2[p], params[p]) for p in active}, where)
    jm = _jvp(record, args, kwargs, ans, mixed, where)
    expect = _lincomb(a, jvp, b, j2, ans)
    _assert_close_trees(jm, expect, ans, RTOL, ATOL, where,
                        'JVP is not linear in the tangents')
    return True


def _fd(fp, fm, ans):
    if _is_container(ans):
        return _rebuild(ans, [_fd(fp[k], fm[k], v) for k, v in _items(ans)])
    if not _is_float_leaf(ans):
        return ans
    wide = _wide(ans)
    return (np.asarray(fp, dtype=wide) - np.asarray(fm, dtype=wide)) / (2 * EPS)


def _wide(ans):
    """float64, or complex128 for a complex output (numpy.fft's records)."""
    return np.complex128 if np.iscomplexobj(ans) else np.float64


def _lincomb(a, x, b, y, ans):
    if _is_container(ans):
        zero = lambda v: type(v) is float and v == 0.0  # noqa: E731
        return _rebuild(ans, [_lincomb(a, 0.0 if zero(x) else x[k], b, 0.0 if zero(y) else y[k],
                                       v) for k, v in _items(ans)])
    if not _is_float_leaf(ans):
        return ans
    return a * np.asarray(x, dtype=_wide(ans)) + b * np.asarray(y, dtype=_wide(ans))


DIFFERENTIABLE = sorted(rec.name for rec in TABLE if rec.differentiable and rec.diff_params()
                        and rec.name not in NO_DERIVATIVE)


@pytest.mark.parametrize('name', DIFFERENTIABLE)
def test_jvp_rule(name):
    record = TABLE[name]
    assert record.jvp, f'{name}: no JVP rule (pass jvp= to its constructor)'
    exercised = False
    for args, kwargs in CASES[name]:
        exercised |= _check_case(record, args, kwargs)
    assert exercised, f'{name}: no case gives a differentiable parameter a float value'


@pytest.mark.parametrize('name', DIFFERENTIABLE)
def test_jvp_covers_every_differentiable_parameter(name):
    record = TABLE[name]
    assert record.jvp, f'{name}: no JVP rule (pass jvp= to its constructor)'
    if record.jvp == 'linear':
        return
    wanted = {p for p in record.diff_params() if (name, p) not in STATIC_PARAMS}
    missing = sorted(wanted - set(record.jvp))
    extra = sorted(set(record.jvp) - set(record.diff_params()))
    assert not missing, f'{name}: no JVP term for differentiable parameters {missing}'
    assert not extra, f'{name}: JVP terms for non-differentiable parameters {extra}'


@pytest.mark.parametrize('name', DIFFERENTIABLE)
def test_float32_tangents_stay_float32(name):
    record = TABLE[name]
    problems = []
    for args, kwargs in CASES[name]:
        args, kwargs = _to32(args), _to32(kwargs)
        ans = _call_with(record, args, kwargs, {})
        params = _filled(record, args, kwargs)
        active = [p for p in _active(record, params) if (name, p) not in DTYPE_EXEMPT]
        if not active:
            continue
        tans = {p: _dense(_direction(params[p], dtype=np.float32), params[p]) for p in active}
        jvp = _jvp(record, args, kwargs, ans, tans, name)
        problems += _dtype_problems(jvp, ans, _describe(args, kwargs))
    assert not problems, f'{name}: float32 inputs, tangent of another dtype: {problems}'


def _dtype_problems(jvp, ans, path):
    if type(jvp) is float and jvp == 0.0:
        return []
    if _is_container(ans):
        return sum((_dtype_problems(jvp[k], v, f'{path}[{k!r}]') for k, v in _items(ans)), [])
    if isinstance(ans, (np.ndarray, np.generic)) and ans.dtype == np.float32:
        dt = getattr(jvp, 'dtype', None)
        if dt is not None and dt != np.float32:
            return [f'{path}: {dt}']
    return []


def test_jvp_templates_only_use_defined_runtime_functions():
    missing = []
    for record in TABLE:
        if not isinstance(record.jvp, dict):
            continue
        for p, template in record.jvp.items():
            compile(template, f'<{record.name}.jvp.{p}>', 'eval')
            for fn in re.findall(r'\brt\.(\w+)', template):
                if not callable(getattr(runtime, fn, None)):
                    missing.append(f'{record.name}.{p}: rt.{fn}')
    assert not missing, missing


# Functions JVP templates may call although no record describes them: forward
# mode through code that calls them is first order only (a clear error beyond).
FIRST_ORDER_ONLY = {
    'rt.norm_vjp': "norm's orders other than None/'fro' (as its VJP)",
    'rt.einsum_jvp': 'einsum (its VJP rt.einsum_vjp has no record either)',
    'rt.at_others_pairs': "at(x)[idx].multiply(v)'s second derivative in v (as its VJP)",
}


def test_jvp_templates_call_recorded_functions():
    """Templates made of primitives keep forward mode working on generated code."""
    unknown = []
    for record in TABLE:
        if not isinstance(record.jvp, dict):
            continue
        for p, template in record.jvp.items():
            for node in ast.walk(ast.parse(template, mode='eval')):
                if isinstance(node, ast.Call):
                    src = ast.unparse(node.func)
                    obj = eval(src, dict(_NS))
                    if TABLE.lookup(obj) is None and src not in FIRST_ORDER_ONLY:
                        unknown.append(f'{record.name}.{p}: {src}')
    assert not unknown, f'JVP templates calling functions without a record: {unknown}'


def test_no_parameter_is_named_t():
    clash = [r.name for r in TABLE if isinstance(r.jvp, dict) and r.jvp and 't' in r.params]
    assert not clash, f'parameters named like the tangent `t` of JVP templates: {clash}'


def test_jvp_values_are_linear_or_dicts():
    bad = [r.name for r in TABLE if not (r.jvp == 'linear' or isinstance(r.jvp, dict))]
    assert not bad, bad
