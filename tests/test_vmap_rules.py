"""Every record's batching rule, checked through codax.vmap against a loop.

For every record of the primitive table:

* its `batch` field names a rule in transformer.batch_rules.RULES;
* for each example call in test_primitive_rules.CASES, a small function that
  makes the call as users write it (`np.sin(a0)`, `a0.astype(...)`, `a0[1:3, a1]`,
  runtime helpers as `rt.<name>(...)`) is vmapped and compared with a Python
  loop over the examples, np.stack-ed: the float, integer and boolean array
  arguments (and float numbers) are batched in several ways, all of them and
  one at a time along axis 0, all along -1, and along 1 with out_axes=1;
* where the record names a rule other than 'loop', the code generated with
  every argument batched along 0 does not fall back to the per-example loop
  rt.batch_loop (LOOPS lists the cases that legitimately do, with the reason;
  keys (record, k) index the record's CASES).

Adjoint helpers may return any form broadcastable to the full adjoint (0.0
for zero), so their outputs are compared after broadcasting. Outputs that are
containers are checked with out_axes=0 only (test_out_axes_of_a_container_output).
codax reads source, so the functions are written to a module in a temporary
folder and imported. vmap(grad(f)) and grad(vmap(f)) of whole functions are
checked against loops of grad(f) below the table-driven part, and must be
vectorized.
"""
import atexit
import copy
import importlib.util
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import pytest

import codax
import runtime
from runtime import TABLE
from runtime.tree import tree_flatten
from transformer.batch_rules import RULES
from test_primitive_rules import CASES

SIZE = 3            # examples per batch
RTOL, ATOL = 1e-9, 1e-12

# Records with no direct vmap check: each with the reason.
NOT_DIRECT = {
    'rt_quiet': 'no arguments', 'rt_loud': 'no array arguments',
    'rt_vmapped': 'takes a function; exercised by the user-function tests below',
    'transformation': 'returns a function; exercised by tests/test_nested_transforms.py',
    'sweeps': 'takes a function; exercised by vmap(grad(f)) of code with calls',
    'sweeps_for': 'takes a function; exercised by vmap(grad(f)) of code with calls',
    'pullback_function': 'takes a pullback (a function); exercised by vmap(vjp)',
    'tangent_function': 'returns a function (the generated jvp, the same for every example); '
                        'exercised by jacfwd of vmapped code (tests/test_forward_api.py)',
    'rt_batch_loop': 'takes a function: it is what the rules fall back to',
    'py_range': 'a range object: bookkeeping of unbatched loops (test_vmap_of_grad: f_loop)',
    'py_slice': 'a slice object: checked through the indexing records',
}
# Dtype queries and norm's and einsum's rule helpers: they return a dtype, a type,
# finfo, a str or axes, no array to batch; vmap of code calling them:
# tests/test_numpy_gaps_s11.py
NOT_DIRECT.update({name: 'returns no array (a dtype, type, finfo or name)' for name in (
    'result_type', 'promote_types', 'common_type', 'finfo', 'iinfo', 'dtype', 'mintypecode',
    'min_scalar_type', 'rt_norm_rule', 'rt_norm_matrix_axes', 'rt_einsum_vjp_spec')})

# Their values are whatever memory held: only shapes are compared.
UNINITIALIZED = {'empty', 'empty_like'}

# Records (or (record, case index) pairs) whose batched code may fall back to
# rt.batch_loop even with its arguments batched along 0, with the reason.
# Everything else must be vectorized.
LOOPS = {
    'arange': 'bounds that differ between examples give examples of different lengths',
    'linspace': 'batched bounds: rare enough to run per example',
    ('array', 2): 'nested lists of batched numbers',
    ('getitem', 3): 'a boolean mask that differs between examples (JAX refuses it)',
    ('hstack', 2): 'examples of different ranks', ('vstack', 1): 'examples of different ranks',
    ('rt_hstack_vjp', 2): 'pieces of different ranks', ('rt_vstack_vjp', 1): 'the same',
    ('concatenate', 3): 'axis=None (flattened pieces)', ('rt_concatenate_vjp', 2): 'the same',
    ('rt_cumsum_vjp', 1): 'axis=None (the flattened cumulative sum)',
    ('py_list', 1): 'list(array): one element per row, their number known at run time',
    ('py_tuple', 1): 'the same',
    ('repeat', 4): 'repeat counts that differ between examples',
    ('squeeze', 0): 'axis=None: which axes have length 1 is known at run time',
    ('ravel', 4): "order='K' reads each example's memory layout",
    ('rt_dot_vjp', 2): 'np.dot of rank 3 operands', ('rt_dot_vjp', 3): 'the same',
    ('rt_outer_vjp', 2): 'np.outer of arrays that are not vectors',
    ('take', 1): 'indices that differ between examples',
    ('setitem', 7): 'a batched index tuple passed as one value: its parts are seen only at '
                    'run time',
    ('setitem', 8): 'the same',
    ('rt_getitem_vjp', 7): 'a boolean mask that differs between examples',
    ('norm', 27): 'keepdims=True of a rank-3 example (np.linalg.norm takes at most 2 axes)',
    ('pad', 7): 'constant values that differ between examples', ('pad', 8): 'per-axis values',
    ('pad', 9): 'per-axis constant values',
    ('rt_dot_vjp', 4): 'np.dot with a number', ('vstack', 3): 'np.vstack of numbers',
    ('rt_array_vjp', 1): 'the adjoint of np.array of nested lists',
    ('rt_vstack_vjp', 2): 'the same',
    ('nansum', 4): 'a where= mask that differs between examples', ('nanmean', 4): 'the same',
    ('pinv', 4): 'rcond that differs between examples',
    'rt_unique_parts': "np.unique's positions, found per example (their number depends on "
                       'the values; size= makes it one length)',
    ('rt_batched_form', 2): "a sampler's parameters that differ between examples, as a "
                            'batched minval: one call per example (docs/toolbox.md)',
    ('rt_batched_form', 3): 'the same',
}


# --------------------------------------------------------------------------
# Writing the call of each record as user code
# --------------------------------------------------------------------------

def _spelled(obj):
    """Source text naming `obj` from the generated module, or None."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return repr(obj)
    if isinstance(obj, float):
        return repr(obj) if np.isfinite(obj) else ('np.inf' if obj > 0 else '-np.inf')
    if obj is Ellipsis:
        return '...'
    if isinstance(obj, slice):
        return f'slice({obj.start!r}, {obj.stop!r}, {obj.step!r})'
    if isinstance(obj, (tuple, list)):
        parts = [_spelled(v) for v in obj]
        if None in parts:
            return None
        inner = ', '.join(parts) + (',' if isinstance(obj, tuple) and len(obj) == 1 else '')
        return f'({inner})' if isinstance(obj, tuple) else f'[{inner}]'
    if isinstance(obj, dict) and all(isinstance(v, (str, int)) for v in obj.values()):
        return repr(obj)
    for prefix, module in (('np.', np), ('np.linalg.', np.linalg), ('np.fft.', np.fft),
                           ('math.', math),
                           ('rt.', runtime)):
        name = getattr(obj, '__name__', None)
        if name and getattr(module, name, None) is obj:
            return prefix + name
    if getattr(__builtins__, '__name__', None) is None and isinstance(__builtins__, dict):
        builtins = __builtins__
    else:
        builtins = vars(__builtins__)
    name = getattr(obj, '__name__', None)
    if name and builtins.get(name) is obj:
        return name
    return None


def _is_value(x):
    """An argument passed as a parameter (arrays, numbers, containers of them)."""
    if isinstance(x, (list, tuple, dict)):
        leaves = tree_flatten(x)[0]
        return bool(leaves) and any(isinstance(v, (np.ndarray, np.generic, float))
                                    for v in leaves)
    return isinstance(x, (np.ndarray, np.generic, float))


def _batchable(x):
    """Values that get a batch axis: float, int and bool arrays (of any rank),
    float numbers, and containers of those."""
    if isinstance(x, (list, tuple, dict)):
        leaves = tree_flatten(x)[0]
        return bool(leaves) and all(_batchable(v) for v in leaves)
    if isinstance(x, float) or isinstance(x, np.generic) and x.dtype.kind == 'f':
        return True
    return isinstance(x, np.ndarray) and (x.dtype.kind == 'f' or x.ndim > 0)


# Parameters written as literals even when their value is a number: a norm's
# order is not something that differs between examples.
LITERAL_PARAMS = {'ord'}


def _call_text(record, args, kwargs):
    """(parameter names, statements) of a function making the call, or None.
    A trailing parameter `z` is batched where no argument can be."""
    params, texts = [], []
    names = record.params
    for k, v in list(enumerate(args)) + list(kwargs.items()):
        name = f'a{k}' if isinstance(k, int) else f'k_{k}'
        literal = (names[k] if isinstance(k, int) and k < len(names) else k) in LITERAL_PARAMS
        text = None if _is_value(v) and not literal else _spelled(v)
        if text is None:
            params.append(name)
            text = name
        texts.append(text if isinstance(k, int) else f'{k}={text}')
    head, rest = (texts[0], texts[1:]) if texts else (None, [])
    name = record.name
    if name == 'getitem':
        return params, [f'return {head}[{_index_text(args[1], texts[1])}]']
    if name == 'setitem':
        return params, [f'{head}[{_index_text(args[1], texts[1])}] = {texts[2]}', f'return {head}']
    if name == 'append':
        # (an update of a variable: codax refuses one of a literal, `[].append(v)`)
        return params, [f'xs = {head}', f'xs.append({texts[1]})', 'return xs']
    if name == 'iterate':
        return params, ['out = []', f'for v in {head}:', '    out.append(v)', 'return out']
    if name == 'py_item':
        return params, [f'return {head}.item()']
    if name in ('astype',):
        return params, [f'return {head}.{name}({", ".join(rest)})']
    for target in record.targets:
        fn = _spelled(target)
        if fn is not None:
            return params, [f'return {fn}({", ".join(texts)})']
    if record.methods:
        return params, [f'return {head}.{record.methods[0]}({", ".join(rest)})']
    return None


def _index_text(idx, text):
    """An index as subscript syntax (a0[1:3, None, a1]) where it is a literal tuple."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for k, p in enumerate(parts):
        if isinstance(p, slice):
            out.append(':'.join('' if v is None else repr(v) for v in (p.start, p.stop, p.step))
                       .rstrip(':') or ':')
        elif p is Ellipsis:
            out.append('...')
        elif _is_value(p) or _spelled(p) is None:
            return text
        else:
            out.append(_spelled(p))
    return ', '.join(out) if out else text


def _function_name(name, k):
    return f'f_{name}_{k}'


def _write_module():
    """One module with a function per (record, case); {(name, k): (function, params)}."""
    lines = ['import math', 'import numpy as np', 'import runtime as rt', '']
    index = {}
    for record in TABLE:
        if record.name in NOT_DIRECT:
            continue
        for k, (args, kwargs) in enumerate(CASES.get(record.name, [])):
            made = _call_text(record, args, kwargs)
            if made is None:
                continue
            params, body = made
            params = params + ['z']
            fname = _function_name(record.name, k)
            lines.append(f'def {fname}({", ".join(params)}):')
            lines += ['    ' + line for line in body] + ['', '']
            index[(record.name, k)] = (fname, params)
    folder = tempfile.mkdtemp(prefix='codax_vmap_rules_')
    atexit.register(shutil.rmtree, folder, True)     # (codax reads it while tests run)
    path = os.path.join(folder, 'vmap_rule_functions.py')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    spec = importlib.util.spec_from_file_location('vmap_rule_functions', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules['vmap_rule_functions'] = module
    spec.loader.exec_module(module)
    return {key: (getattr(module, fname), params) for key, (fname, params) in index.items()}


FUNCTIONS = _write_module()


# --------------------------------------------------------------------------
# Batches and the loop they are compared with
# --------------------------------------------------------------------------

def _example(x, k):
    """Example k of a batch made from x: floats scaled (signs, ties and
    domains kept), integer and boolean arrays permuted (their values kept)."""
    if isinstance(x, (list, tuple, dict)):
        items = x.items() if isinstance(x, dict) else enumerate(x)
        parts = {key: _example(v, k) for key, v in items}
        return parts if isinstance(x, dict) else type(x)(parts[i] for i in range(len(x)))
    if x is None:
        return None
    if isinstance(x, float) or np.asarray(x).dtype.kind == 'f':
        return np.asarray(x * (1.0, 0.96, 1.04, 0.98)[k % 4])
    flat = np.asarray(x).ravel()
    order = [np.arange(flat.size), np.arange(flat.size)[::-1],
             np.roll(np.arange(flat.size), 1)][k % 3]
    return flat[order].reshape(np.shape(x))


def _batch(x, axis):
    """SIZE examples of x stacked along `axis` (containers leaf by leaf)."""
    examples = [_example(x, k) for k in range(SIZE)]
    return _stack_trees(examples, axis)


def _stack_trees(trees, axis):
    first = trees[0]
    if isinstance(first, dict):
        return {key: _stack_trees([t[key] for t in trees], axis) for key in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_stack_trees([t[i] for t in trees], axis) for i in range(len(first)))
    if first is None:
        return None
    return np.stack([np.asarray(t) for t in trees], axis=axis)


def _take(x, k, axis):
    if isinstance(x, dict):
        return {key: _take(v, k, axis) for key, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_take(v, k, axis) for v in x)
    return np.take(x, k, axis=axis)


def _variants(values):
    """(label, in_axes per value, out_axes) for the batchable values."""
    where = [i for i, v in enumerate(values) if _batchable(v)]
    if not where:
        values[-1] = np.linspace(0.0, 1.0, 2)          # z: the batch is of unused values
        return [('nothing batched but z', {len(values) - 1: 0}, 0)]
    rank_ok = all(min(np.ndim(leaf) for leaf in tree_flatten(values[i])[0]) >= 1 for i in where)
    out = [('all along 0', {i: 0 for i in where}, 0)]
    if len(where) > 1:
        out += [('first along 0', {where[0]: 0}, 0), ('last along 0', {where[-1]: 0}, 0)]
    out.append(('all along -1, out -1', {i: -1 for i in where}, -1))
    if rank_ok:
        out.append(('all along 1, out 1', {i: 1 for i in where}, 1))
    return out


def _values(args, kwargs, params):
    """The arguments passed as parameters, in the order of `params` (the last, z,
    a vector batched only where nothing else can be)."""
    everything = dict(enumerate(args), **{f'k_{k}': v for k, v in kwargs.items()}, z=None)
    return [everything[int(p[1:])] if p.startswith('a') else everything[p] for p in params]


def _loop(fn, values, in_axes, out_axes):
    outs = []
    for k in range(SIZE):
        example = [_take(v, k, in_axes[i]) if i in in_axes else copy.deepcopy(v)
                   for i, v in enumerate(values)]
        outs.append(fn(*example))
    return outs


def _numeric(leaf):
    return isinstance(leaf, (np.ndarray, np.generic, float, int, bool, complex))


def _compare(got, outs, out_axes, where, adjoint=False):
    """The vmapped output against the stacked loop. Adjoints (`adjoint`) may be
    any form broadcastable to the full one, and 0.0 stands for zeros."""
    leaves, treedef = tree_flatten(outs[0])
    got_leaves, got_def = tree_flatten(got)
    assert got_def == treedef, f'{where}: output structure {got_def}, the loop gives {treedef}'
    per_leaf = [tree_flatten(o)[0] for o in outs]
    for i, (leaf, g) in enumerate(zip(leaves, got_leaves)):
        if not _numeric(leaf):
            assert g is leaf or g == leaf, f'{where}: leaf {i} is {g!r}, expected {leaf!r}'
            continue
        want = np.stack([np.asarray(o[i]) for o in per_leaf], axis=out_axes)
        g = np.asarray(g)
        if adjoint and g.shape != want.shape:
            g, want = _broadcast_examples(g, want, out_axes, where)
        assert g.shape == want.shape, f'{where}: leaf {i} of shape {g.shape}, loop {want.shape}'
        if want.dtype.kind in 'fc':
            ok = np.allclose(g, want, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:
            ok = np.array_equal(g, want)
        assert ok, f'{where}: leaf {i} differs from the loop:\n{g}\nloop:\n{want}'


def _broadcast_examples(got, want, out_axes, where):
    """Both with the batch axis first, each example broadcast to the larger form."""
    if got.ndim == 0:
        return np.broadcast_to(got, want.shape), want
    got, want = np.moveaxis(got, out_axes, 0), np.moveaxis(want, out_axes, 0)
    rank = max(got.ndim, want.ndim)
    got, want = (x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in (got, want))
    return np.broadcast_arrays(got, want)


def _one_array(out):
    return isinstance(out, (np.ndarray, np.generic, float, int, bool))


def _stackable(outs):
    try:
        for leaves in zip(*[tree_flatten(o)[0] for o in outs]):
            if _numeric(leaves[0]):
                np.stack([np.asarray(v) for v in leaves])
        return len({tree_flatten(o)[1] for o in outs}) == 1
    except ValueError:
        return False


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

NAMES = sorted(rec.name for rec in TABLE)


@pytest.mark.parametrize('name', NAMES)
def test_record_names_a_batching_rule(name):
    record = TABLE[name]
    assert record.batch is not None, f'{name}: no batching rule (set `batch` in its family file)'
    assert record.batch in RULES, f'{name}: batching rule {record.batch!r} is not in RULES'


@pytest.mark.filterwarnings('ignore:invalid value:RuntimeWarning')    # scaled examples: 0/0
@pytest.mark.parametrize('name', [n for n in NAMES if n not in NOT_DIRECT])
def test_vmap_matches_loop(name):
    checked, failures = 0, []
    for k, (args, kwargs) in enumerate(CASES.get(name, [])):
        if (name, k) not in FUNCTIONS:
            continue
        fn, params = FUNCTIONS[(name, k)]
        values = _values(args, kwargs, params)
        for label, axes, out_axes in _variants(values):
            where = f'{name} case {k} ({label})'
            in_axes = tuple(axes.get(i) for i in range(len(values)))
            batched = [_batch(v, axes[i]) if i in axes else v for i, v in enumerate(values)]
            try:
                outs = _loop(fn, batched, axes, out_axes)
            except Exception:
                continue                      # not a valid call for these examples
            if not _stackable(outs):
                continue                      # examples of different shapes
            if out_axes == 1 and any(np.ndim(leaf) == 0 for o in outs
                                     for leaf in tree_flatten(o)[0] if _numeric(leaf)):
                out_axes = 0                  # an example's output has no axis 1
            if out_axes != 0 and not _one_array(outs[0]):
                continue                      # see test_out_axes_of_a_container_output
            vf = codax.vmap(fn, in_axes=in_axes, out_axes=out_axes)
            try:
                got = vf(*copy.deepcopy(batched))
                if isinstance(got, np.ndarray) and not _one_array(outs[0]):
                    continue                  # see test_out_axes_of_a_container_output
                if name in UNINITIALIZED:
                    got, outs = np.zeros(np.shape(got)), [np.zeros(np.shape(o)) for o in outs]
                _compare(got, outs, out_axes, where, TABLE[name].family in ('adjoint', 'batching'))
            except Exception as exc:
                failures.append(f'{where}: {type(exc).__name__}: {str(exc)[:300]}')
                continue
            if label == 'all along 0' and TABLE[name].batch != 'loop' and name not in LOOPS \
                    and (name, k) not in LOOPS:
                source = vf.source(*batched)
                if 'rt.batch_loop' in source:
                    failures.append(f'{where}: falls back to the per-example loop:\n{source}')
            checked += 1
    assert not failures, '\n'.join(failures)
    assert CASES.get(name), f'{name}: no case in test_primitive_rules.CASES'
    assert checked, f'{name}: no case could be checked (add one, or list it in NOT_DIRECT)'


@pytest.mark.parametrize('out_axes', [0, 1])
def test_out_axes_of_a_container_output(out_axes):
    x = _R(3, 4)
    want = [np.stack(parts, axis=out_axes) for parts in zip(*[f_split(v) for v in x])]
    got = codax.vmap(f_split, out_axes=out_axes)(x) if out_axes else \
        codax.vmap(f_split_unbatched, in_axes=(0, None))(x, _R(4))
    if not out_axes:
        want = [np.stack([p] * 3) for p in f_split(_R(4))]
    _assert_trees_close(list(got), want, 'vmap(split)')


@pytest.mark.parametrize('out_axes', [0, 1])
def test_out_axes_of_an_output_of_unknown_kind(out_axes):
    # A recursive callee's batched output is known only at run time (here a
    # list): rt.batch_outputs places it, never xp.moveaxis.
    x = _R(3, 4)
    want = [np.stack([f_recursive_list(v)[0] for v in x], axis=out_axes)]
    got = codax.vmap(f_recursive_list, out_axes=out_axes)(x)
    assert isinstance(got, list)
    _assert_trees_close(got, want, 'vmap(recursive list)')


def _halves(x, n):
    if n == 0:
        return [x]
    return _halves(x, n - 1)


def f_recursive_list(x):
    return _halves(x, 1)


def f_split(x):
    return np.split(x, 2)


def f_split_unbatched(x, y):
    return np.split(y, 2)


def test_not_direct_and_loops_name_records():
    stale = sorted(set(NOT_DIRECT) - set(NAMES)) + sorted(
        k for k in LOOPS if (k if isinstance(k, str) else k[0]) not in NAMES)
    assert not stale, stale


# --------------------------------------------------------------------------
# vmap(grad(f)) against a loop of grad(f); grad(vmap(f)) against a sum
# --------------------------------------------------------------------------

def _layer(W, h):
    return np.tanh(W @ h)


def f_chain(w, x):
    return np.sum(np.tanh(w * x + 1.0) ** 2 / (1.0 + np.exp(-x)) + np.sqrt(w * w + x * x))


def f_reductions(w, x):                      # x: (2, 3) per example
    z = x * w
    m = np.max(z, axis=1, keepdims=True)
    s = np.sum(np.exp(z - m), axis=-1)
    return np.sum(np.log(s) + m[:, 0]) + np.mean(z.min(axis=0) * w) + z.std() + np.prod(z[0])


def f_matmul(w, x):                          # w: (3, 3), x: (3,)
    a = w @ x
    b = x @ w
    c = np.outer(a, b) @ w
    return np.sum(np.sin(a) * b) + np.sum(c @ x) + x @ (w @ x) + np.dot(w, b).sum()


def f_matmul3(w, x):                         # w: (2, 3, 3), x: (3, 4)
    return np.sum(np.tanh(w @ x) ** 2) + np.sum(np.swapaxes(w, 1, 2) @ w)


def f_index(w, x):                           # w: (3,), x: (5,)
    y = x.copy()
    y[1:3] = w[:2] * 2.0
    y[-1] = w[2] * x[0]
    return np.sum(y[::2] ** 2) + x[0] * w[-1] + np.sum(x[np.array([0, 2, 2])] * w)


def f_ties(w, x):                            # x holds ties per example
    return np.max(np.abs(x) * w) + np.sum(np.maximum(x, w)) + np.min(x * x) + np.amax(x, axis=0)


def f_select(w, x):
    return np.sum(np.where(x > 0, x * w, np.sin(x))) + np.sum(np.clip(x * w, -0.5, 0.5))


def f_join(w, x):                            # w, x: (3,)
    c = np.concatenate([x, w * 2.0])
    s = np.stack([x, w, x * w])
    return np.sum(c ** 2) + np.sum(s @ w) + np.sum(np.hstack([x, w]) * np.vstack([w, x])[0, 0])


def f_shapes(w, x):                          # w: (2,), x: (6,)
    m = np.reshape(x, (2, 3))
    t = np.transpose(m) @ w
    return np.sum(t ** 2) + np.sum(m.T.ravel() * x) + np.sum(np.expand_dims(w, 0) @ m)


def f_einsum(w, x):                          # w: (3, 3), x: (3,)
    return np.sum(np.einsum('ij,j->i', w, x) ** 2) + np.einsum('i,i', x, x)


def f_norm(w, x):                            # w: (3, 3), x: (3,)
    return np.linalg.norm(x * w[0]) + np.sum(np.linalg.norm(w @ np.diag(x), axis=0))


def f_calls(w, x):                           # w: (3, 3), x: (3,)
    h = _layer(w, x)
    return np.sum(_layer(w, h) ** 2)


def f_branch(w, x):
    if np.sum(x) > 0:
        y = x * w
    else:
        y = x ** 2 + w
    return np.sum(y ** 2)


def f_loop(w, x):                            # w: (3, 3), x: (3,)
    h = x
    for _ in range(3):
        h = np.tanh(w @ h) + h
    return np.sum(h)


def f_params(p, x):                          # p: {'W': (2, 3), 'b': (2,)}, x: (3,)
    z = p['W'] @ x + p['b']
    return np.logaddexp(0.0, z).sum() - 0.5 * z[0]


def _R(*shape):
    return np.random.default_rng(sum(shape) + len(shape)).uniform(-1.0, 1.0, size=shape)


# function, w, x example, whether vmap(grad) is fully vectorized
GRAD_CASES = [
    (f_chain, _R(3), _R(3), True),
    (f_reductions, _R(3), _R(2, 3), True),
    (f_matmul, _R(3, 3), _R(3), True),
    (f_matmul3, _R(2, 3, 3), _R(3, 4), True),
    (f_index, _R(3), _R(5), True),
    (f_ties, np.array([1.0, 0.5, 1.0]), np.array([1.0, -1.0, 0.5]), True),
    (f_select, _R(4), _R(4), True),
    (f_join, _R(3), _R(3), True),
    (f_shapes, _R(2), _R(6), True),
    (f_einsum, _R(3, 3), _R(3), True),
    (f_norm, _R(3, 3), _R(3), True),
    (f_calls, _R(3, 3), _R(3), True),
    (f_branch, _R(3), _R(3), True),
    (f_loop, _R(3, 3), _R(3), True),
    (f_params, {'W': _R(2, 3), 'b': _R(2)}, _R(3), True),
]


GRAD_IDS = [c[0].__name__ for c in GRAD_CASES]


def _grad_batch(x):
    """SIZE examples like x, some with ties kept (scaled copies), stacked."""
    return _batch(x, 0)


def _assert_trees_close(got, want, where):
    got_leaves, got_def = tree_flatten(got)
    want_leaves, want_def = tree_flatten(want)
    assert got_def == want_def, f'{where}: structure {got_def}, expected {want_def}'
    for g, w in zip(got_leaves, want_leaves):
        assert np.shape(g) == np.shape(w), f'{where}: shape {np.shape(g)}, expected {np.shape(w)}'
        assert np.allclose(g, w, rtol=1e-9, atol=1e-12), f'{where}:\n{g}\nexpected\n{w}'


@pytest.mark.parametrize('fn, w, x, vectorized', GRAD_CASES, ids=GRAD_IDS)
@pytest.mark.parametrize('in_axes', [(None, 0), (0, 0), (0, None)], ids=['x', 'both', 'w'])
def test_vmap_of_grad_matches_loop(fn, w, x, vectorized, in_axes):
    args = [_grad_batch(v) if a == 0 else v for v, a in zip((w, x), in_axes)]
    grad = codax.grad(fn)
    want = _stack_trees([grad(*[_take(v, k, 0) if a == 0 else v for v, a in zip(args, in_axes)])
                         for k in range(SIZE)], 0)
    batched = codax.vmap(grad, in_axes=in_axes)
    _assert_trees_close(batched(*args), want, f'vmap(grad({fn.__name__}))')
    if vectorized:
        source = batched.source(*args)
        assert 'rt.batch_loop' not in source, source


@pytest.mark.parametrize('fn, w, x, vectorized', GRAD_CASES, ids=GRAD_IDS)
def test_grad_of_vmap_matches_sum(fn, w, x, vectorized):
    xs = _grad_batch(x)
    total = _batch_total(fn)
    want = tree_flatten(codax.grad(fn)(w, xs[0]))[0]
    for k in range(1, SIZE):
        want = [a + b for a, b in zip(want, tree_flatten(codax.grad(fn)(w, xs[k]))[0])]
    got = tree_flatten(codax.grad(total)(w, xs))[0]
    for g, v in zip(got, want):
        assert np.allclose(g, v, rtol=1e-9, atol=1e-12), f'grad(vmap({fn.__name__})):\n{g}\n{v}'


def _batch_total(fn):
    def total(w, xs):
        return np.sum(codax.vmap(fn, in_axes=(None, 0))(w, xs))
    return total


def test_grad_through_the_per_example_loop():
    """rt.batch_loop has no rules of its own: reverse mode goes through its
    definition (a loop of rt.example / rt.stack_examples, codax/calls.py)."""
    def total(x):
        return np.sum(codax.vmap(f_looped)(x))
    x = _R(3, 1, 2)
    assert 'rt.batch_loop' in codax.vmap(f_looped).source(x)
    np.testing.assert_allclose(codax.grad(total)(x), 2 * x, rtol=1e-12)


def f_looped(x):                             # a (1, n) example: squeeze's axes at run time
    return np.sum(np.squeeze(x) ** 2)


def f_looped_with_keywords(x, w):            # minval by keyword: looped per example
    return np.sum(codax.random.uniform(codax.random.key(3), (4,), minval=w, maxval=w + x))


def test_grad_through_a_per_example_loop_of_a_call_with_keywords():
    """The loop calls the sampler with every argument by position (the
    keywords at their places, the skipped default read off the function), so
    derivatives reach them."""
    def total(x, w):
        return np.sum(codax.vmap(f_looped_with_keywords)(x, w))
    x, w = np.array([1.0, 2.0, 0.5]), np.array([0.3, -0.2, 0.1])
    assert 'rt.batch_loop(codax.random.uniform' in codax.vmap(f_looped_with_keywords).source(x, w)
    u = codax.random.uniform(codax.random.key(3), (4,))      # value = w + x * u
    gx, gw = codax.grad(total, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(gx, np.full(3, u.sum()), rtol=1e-12)
    np.testing.assert_allclose(gw, np.full(3, 4.0), rtol=1e-12)
    np.testing.assert_allclose(codax.vmap(f_looped_with_keywords)(x, w),
                               [f_looped_with_keywords(a, b) for a, b in zip(x, w)], rtol=1e-12)


def test_third_forward_derivative_through_loops_with_keywords():
    def f(x):
        return np.sum(np.max(np.stack([np.sin(x) * x, x ** 3]), axis=0))
    x = np.array([0.3, 1.2, 0.5])        # sin(x) x wins at 0.3 and 0.5, x^3 at 1.2
    d3 = np.where(x ** 3 > np.sin(x) * x, 6.0, -3 * np.sin(x) - x * np.cos(x))
    got = codax.jacfwd(codax.jacfwd(codax.jacfwd(f)))(x)
    want = np.zeros((3, 3, 3))
    want[np.arange(3), np.arange(3), np.arange(3)] = d3
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
