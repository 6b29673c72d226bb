"""Pytree nodes (registered types, namedtuples) in transformed code, beyond
reading a node's attribute under grad (tests/test_tree_util_transforms.py):

* namedtuples under vmap: field reads, indexing, unpacking, and namedtuples
  returned (out_axes), against a Python loop; under grad, vmap(grad) and jit;
* the gradient of a node whose child is never read holds zeros of that
  child's shape and dtype, nested containers included (rt.finalize looks
  inside nodes, as JAX's zeros_like does), and so does the transpose of that;
* nodes built inside differentiated code (`Dense(2.0 * layer.w, layer.b)`):
  grad, jvp, hessian, jacrev(grad), vmap, vmap(grad) and jit(grad), against
  the same function written without nodes (its twin) by finite differences;
  constructors taking the children in another order, by keyword
  (register_dataclass), and namedtuples; constructors that compute, and
  arguments kept as auxiliary data, are refused;
* vmap(grad) of code that reads or builds nodes is vectorized: its source
  has no rt.batch_loop, and it matches a loop over examples.
Every function is module-level: codax reads its source.
"""
import collections
import dataclasses

import numpy as np
import pytest

import codax
from codax import tree_util as tu
from helpers import assert_tree_allclose, numeric_grad

RTOL, ATOL = 1e-6, 1e-8
_rng = np.random.default_rng(7)
A, B = _rng.uniform(-1, 1, (4, 3)), _rng.uniform(-1, 1, (4, 3))


def _loop(f, *batches):
    """f per example (along axis 0 of every argument), the results stacked."""
    outs = [f(*[x[i] for x in batches]) for i in range(len(batches[0]))]
    return tu.tree_map(lambda *xs: np.stack(xs), *outs)


# ---- namedtuples under vmap ----

Pair = collections.namedtuple('Pair', 'a b')


def pair_fields(p):
    return p.a * 2.0 + np.sin(p.b)


def pair_index(p):
    return p[0] * 2.0 + np.sin(p[1])


def pair_unpack(p):
    a, b = p
    return a * 2.0 + np.sin(b)


def pair_plain(a, b):
    return a * 2.0 + np.sin(b)


@pytest.mark.parametrize('f', [pair_fields, pair_index, pair_unpack])
def test_vmap_of_namedtuple_reads(f):
    np.testing.assert_allclose(codax.vmap(f)(Pair(A, B)), _loop(pair_plain, A, B), rtol=1e-12)
    got = codax.vmap(f, in_axes=(Pair(0, None),))(Pair(A, B[0]))
    np.testing.assert_allclose(got, [pair_plain(a, B[0]) for a in A], rtol=1e-12)
    got = codax.vmap(f, in_axes=(Pair(None, 1),))(Pair(A[0], B.T))
    np.testing.assert_allclose(got, [pair_plain(A[0], b) for b in B], rtol=1e-12)
    np.testing.assert_allclose(codax.jit(f)(Pair(A, B)), pair_plain(A, B), rtol=1e-12)


def pair_out(x, y):
    return Pair(np.sin(x) * y, x + y)


def built_pair_out(x, y):          # a namedtuple built, then read, then returned
    p = Pair(x * 2.0, np.cos(y))
    return Pair(p.b, p[0] * p.a)


@pytest.mark.parametrize('f', [pair_out, built_pair_out])
@pytest.mark.parametrize('out_axes', [0, 1, Pair(1, 0)], ids=['0', '1', 'Pair(1, 0)'])
def test_vmap_of_a_function_returning_a_namedtuple(f, out_axes):
    got = codax.vmap(f, out_axes=out_axes)(A, B)
    assert type(got) is Pair
    axes = out_axes if isinstance(out_axes, Pair) else Pair(out_axes, out_axes)
    want = _loop(f, A, B)
    for field in Pair._fields:
        np.testing.assert_allclose(np.moveaxis(getattr(got, field), getattr(axes, field), 0),
                                   getattr(want, field), rtol=1e-12)


def pair_energy(p):
    return np.sum(np.sin(p.a) * p.b) + np.sum(p.a ** 2)


def pair_energy_plain(a, b):
    return np.sum(np.sin(a) * b) + np.sum(a ** 2)


def test_grad_vmap_of_grad_and_jit_of_grad_of_namedtuple_reads():
    want = numeric_grad(pair_energy_plain, (A[0], B[0]), argnum=(0, 1))
    for got in (codax.grad(pair_energy)(Pair(A[0], B[0])),
                codax.jit(codax.grad(pair_energy))(Pair(A[0], B[0]))):
        assert type(got) is Pair
        assert_tree_allclose(tuple(got), want, rtol=RTOL, atol=ATOL)
    got = codax.vmap(codax.grad(pair_energy))(Pair(A, B))
    assert type(got) is Pair
    for i in range(len(A)):
        want = numeric_grad(pair_energy_plain, (A[i], B[i]), argnum=(0, 1))
        assert_tree_allclose((got.a[i], got.b[i]), want, rtol=RTOL, atol=ATOL)


# ---- the gradient of a child never read: zeros of its shape and dtype ----

class Box:
    """A user's node type: two children, .x and .y."""

    def __init__(self, x, y):
        self.x, self.y = x, y


tu.register_pytree_node(Box, lambda box: ((box.x, box.y), None), lambda aux, c: Box(*c))


def x_only(box):
    return np.sum(np.sin(box.x))


def x_summed(box):                 # the adjoint of box.x: the number 1.0, standing for ones
    return np.sum(box.x)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_the_gradient_of_an_unread_child_is_zeros_like_it(dtype):
    box = Box(A[0].astype(dtype), B[:2, :2].astype(dtype))
    for f, want_x in ((x_only, np.cos(box.x)), (x_summed, np.ones(3, dtype))):
        got = codax.grad(f)(box)
        assert type(got) is Box
        assert got.x.dtype == dtype and got.y.dtype == dtype
        np.testing.assert_allclose(got.x, want_x, rtol=1e-6)
        np.testing.assert_array_equal(got.y, np.zeros((2, 2), dtype))
    got = codax.vmap(codax.grad(x_only), in_axes=(Box(0, None),))(Box(A, B[0]))
    np.testing.assert_allclose(got.x, np.cos(A), rtol=1e-12)
    np.testing.assert_array_equal(got.y, np.zeros((4, 3)))


class Model:
    """A node whose children are containers: a list, a dict, a namedtuple,
    a tuple, a number."""

    def __init__(self, layers, head, pair, extra, scale):
        self.layers, self.head, self.pair, self.extra, self.scale = \
            layers, head, pair, extra, scale


tu.register_pytree_node(Model, lambda m: ((m.layers, m.head, m.pair, m.extra, m.scale), None),
                        lambda aux, c: Model(*c))


def model_loss(m):                 # reads one leaf of each container, not `extra` nor `scale`
    return np.sum(m.layers[0] ** 2) + np.sum(m.head['w'] * m.pair.a)


def _model(i=0):
    return Model([A[i], B[i][:2]], {'w': A[i + 1], 'b': B[i + 1]}, Pair(B[i + 2], A[i + 2][:1]),
                 (A[i + 3], np.float32(2.0)), 0.5)


def test_the_gradient_of_unread_children_nested_in_a_node():
    m = _model()
    got = codax.grad(model_loss)(m)
    assert type(got) is Model and type(got.pair) is Pair and type(got.extra) is tuple
    np.testing.assert_allclose(got.layers[0], 2 * m.layers[0], rtol=1e-12)
    np.testing.assert_allclose(got.head['w'], m.pair.a, rtol=1e-12)
    np.testing.assert_allclose(got.pair.a, m.head['w'], rtol=1e-12)
    unread = [(got.layers[1], m.layers[1]), (got.head['b'], m.head['b']),
              (got.pair.b, m.pair.b), (got.extra[0], m.extra[0]), (got.extra[1], m.extra[1])]
    for g, x in unread:
        assert np.shape(g) == np.shape(x) and g.dtype == x.dtype
        assert not np.any(g)
    assert got.scale == 0.0 and type(got.scale) is float


def read_twice(box):               # box.x's adjoint is box.y[0], a number standing for an array
    return np.sum(box.x) * box.y[0]


def of_the_gradient(box):          # its gradient: ((y0, y0, y0), (sum(x), 0, 0))
    g = codax.grad(read_twice)(box)
    return np.sum(g.x) + np.sum(g.y ** 2)


def of_the_gradient_plain(x, y):
    return 3 * y[0] + np.sum(x) ** 2


def test_grad_of_a_function_of_a_node_gradient():
    """Differentiates rt.finalize of a node (its transpose), child by child."""
    got = codax.grad(of_the_gradient)(Box(A[0], B[0]))
    want = numeric_grad(of_the_gradient_plain, (A[0], B[0]), argnum=(0, 1))
    assert_tree_allclose((got.x, got.y), want, rtol=RTOL, atol=ATOL)


# ---- nodes built inside differentiated code ----

class Dense:
    """A layer: weights and bias, registered as a node."""

    def __init__(self, w, b):
        self.w, self.b = w, b


tu.register_pytree_node(Dense, lambda layer: ((layer.w, layer.b), None),
                        lambda aux, c: Dense(*c))


def apply(layer, x):
    return np.tanh(x @ layer.w + layer.b)


def doubled(layer, x):             # the example: a node passed to a function
    bigger = Dense(2.0 * layer.w, layer.b)
    return np.sum(apply(bigger, x) ** 2)


def doubled_plain(w, b, x):
    return np.sum(np.tanh(x @ (2.0 * w) + b) ** 2)


def moved(layer, x):               # its attributes read here; x in both children
    m = Dense(layer.w * np.cos(x[0]), layer.b + x[:2])
    return np.sum(np.sin(x @ m.w + m.b) * m.b)


def moved_plain(w, b, x):
    mw, mb = w * np.cos(x[0]), b + x[:2]
    return np.sum(np.sin(x @ mw + mb) * mb)


@tu.register_pytree_node_class
class Swapped:
    """Its constructor takes the bias first; it flattens to (w, b)."""

    def __init__(self, b, w):
        self.w, self.b = w, b

    def tree_flatten(self):
        return (self.w, self.b), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[1], children[0])


def swapped(layer, x):
    s = Swapped(layer.b * 3.0, np.sin(layer.w))
    return np.sum(np.tanh(x @ s.w + s.b) ** 2)


def swapped_plain(w, b, x):
    return np.sum(np.tanh(x @ np.sin(w) + 3.0 * b) ** 2)


@dataclasses.dataclass
class Keyed:
    """Registered with register_dataclass: `act` is a meta field."""
    w: np.ndarray
    b: np.ndarray
    act: str = dataclasses.field(default='tanh', metadata=dict(static=True))


tu.register_dataclass(Keyed)


def keyed(layer, x):               # built by keyword, its meta field passed on
    k = Keyed(b=layer.b * x[1], w=layer.w * 2.0, act=layer.act)
    h = x @ k.w + k.b
    if k.act == 'tanh':
        h = np.tanh(h)
    return np.sum(h ** 2)


def keyed_plain(w, b, x):
    return np.sum(np.tanh(x @ (w * 2.0) + b * x[1]) ** 2)


def paired(layer, x):              # a namedtuple built, read by field and by index
    p = Pair(layer.w * x[0], np.exp(layer.b))
    return np.sum(np.tanh(x @ p.a + p[1]) ** 2)


def paired_plain(w, b, x):
    return np.sum(np.tanh(x @ (w * x[0]) + np.exp(b)) ** 2)


W, BIAS, X = _rng.uniform(-1, 1, (3, 2)), _rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, 3)
BUILT = {'Dense, passed on': (doubled, doubled_plain, Dense),
         'Dense, read': (moved, moved_plain, Dense),
         'constructor in another order': (swapped, swapped_plain, Dense),
         'register_dataclass, by keyword': (keyed, keyed_plain, Keyed),
         'namedtuple': (paired, paired_plain, Dense)}
built = pytest.mark.parametrize('name', list(BUILT))


def _grads(kind, grads):
    """(w, b, x) of the gradients (layer, x)."""
    layer, x = grads
    assert type(layer) is kind
    return layer.w, layer.b, x


@built
def test_the_functions_building_nodes_agree_with_their_twins(name):
    f, plain, kind = BUILT[name]
    assert np.isclose(f(kind(W, BIAS), X), plain(W, BIAS, X), rtol=1e-12)


@built
def test_grad_and_jit_of_grad_of_a_node_built_in_the_function(name):
    f, plain, kind = BUILT[name]
    want = numeric_grad(plain, (W, BIAS, X), argnum=(0, 1, 2))
    for transform in (codax.grad, lambda g, **kw: codax.jit(codax.grad(g, **kw))):
        got = transform(f, argnums=(0, 1))(kind(W, BIAS), X)
        assert_tree_allclose(_grads(kind, got), want, rtol=RTOL, atol=ATOL)


@built
def test_jvp_of_a_node_built_in_the_function(name):
    f, plain, kind = BUILT[name]
    tw, tb, tx = _rng.uniform(-1, 1, W.shape), _rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, 3)
    value, tangent = codax.jvp(f, (kind(W, BIAS), X), (kind(tw, tb), tx))
    eps = 1e-6
    want = (plain(W + eps * tw, BIAS + eps * tb, X + eps * tx)
            - plain(W - eps * tw, BIAS - eps * tb, X - eps * tx)) / (2 * eps)
    assert np.isclose(value, plain(W, BIAS, X), rtol=1e-12)
    assert np.isclose(tangent, want, rtol=1e-6, atol=1e-9)


def _differences_of_grad(plain, argnum, eps=1e-5):
    """The Hessian block of `plain` for argument `argnum` (w or x): central
    differences of codax's gradient of the twin, which has no nodes."""
    grad = codax.grad(plain, argnums=argnum)
    args = [W, BIAS, X]
    rows = []
    for i in range(args[argnum].size):
        d = np.zeros(args[argnum].size)
        d[i] = eps
        shift = d.reshape(args[argnum].shape)
        up, down = list(args), list(args)
        up[argnum], down[argnum] = args[argnum] + shift, args[argnum] - shift
        rows.append(np.ravel(grad(*up) - grad(*down)) / (2 * eps))
    return np.array(rows)


@built
def test_second_derivatives_of_a_node_built_in_the_function(name):
    f, plain, kind = BUILT[name]
    want = _differences_of_grad(plain, 2)
    seconds = [codax.jacrev(codax.grad(f, argnums=1), argnums=1),
               codax.hessian(f, argnums=1)]
    h = codax.hessian(f)(kind(W, BIAS), X)             # through the node's own children
    np.testing.assert_allclose(h.w.w.reshape(W.size, W.size),
                               _differences_of_grad(plain, 0), rtol=1e-5, atol=1e-7)
    for second in seconds:
        np.testing.assert_allclose(second(kind(W, BIAS), X), want, rtol=1e-5, atol=1e-7)


def squared_gradient(f, layer, x):
    return np.sum(codax.grad(f, argnums=1)(layer, x) ** 2)


@built
def test_grad_of_grad_of_a_node_built_in_the_function(name):
    f, plain, kind = BUILT[name]
    got = codax.grad(squared_gradient, argnums=(1, 2))(f, kind(W, BIAS), X)
    want = numeric_grad(lambda w, b, x: np.sum(codax.grad(plain, argnums=2)(w, b, x) ** 2),
                        (W, BIAS, X), argnum=(0, 1, 2))
    assert_tree_allclose(_grads(kind, got), want, rtol=1e-5, atol=1e-7)


WS, BS = _rng.uniform(-1, 1, (4, 3, 2)), _rng.uniform(-1, 1, (4, 2))
XS = _rng.uniform(-1, 1, (4, 3))


@built
def test_vmap_of_a_node_built_in_the_function(name):
    f, plain, kind = BUILT[name]
    got = codax.vmap(f, in_axes=(kind(0, None), 0))(kind(WS, BIAS), XS)
    np.testing.assert_allclose(got, [plain(w, BIAS, x) for w, x in zip(WS, XS)], rtol=1e-12)


@built
@pytest.mark.parametrize('in_axes', [0, (None, 0)], ids=['all mapped', 'layer shared'])
def test_vmap_of_grad_of_a_node_built_in_the_function(name, in_axes):
    """Vectorized (no per-example loop), and equal to a loop of codax.grad."""
    f, plain, kind = BUILT[name]
    layer = kind(WS, BS) if in_axes == 0 else kind(W, BIAS)
    mapped = codax.vmap(codax.grad(f, argnums=(0, 1)), in_axes=in_axes)
    assert 'rt.batch_loop' not in mapped.source(layer, XS)
    got = mapped(layer, XS)
    for i in range(len(XS)):
        one = kind(WS[i], BS[i]) if in_axes == 0 else layer
        want = _grads(kind, codax.grad(f, argnums=(0, 1))(one, XS[i]))
        assert_tree_allclose(_grads(kind, (tu.tree_map(lambda v: v[i], got[0]), got[1][i])),
                             want, rtol=1e-12, atol=1e-14)
        assert_tree_allclose(want, numeric_grad(plain, (one.w, one.b, XS[i]), argnum=(0, 1, 2)),
                             rtol=RTOL, atol=ATOL)


class State:
    """A simulation's state: position and velocity."""

    def __init__(self, x, v):
        self.x, self.v = x, v


tu.register_pytree_node(State, lambda s: ((s.x, s.v), None), lambda aux, c: State(*c))


def rollout(state, k):             # a node rebuilt on every step of a loop
    for _ in range(3):
        state = State(state.x + 0.1 * np.sin(state.v), state.v * k)
    return np.sum(state.x ** 2)


def rollout_plain(x, v, k):
    for _ in range(3):
        x, v = x + 0.1 * np.sin(v), v * k
    return np.sum(x ** 2)


def test_a_node_rebuilt_in_a_loop():
    x, v, k = A[0], B[0], 0.7
    got = codax.grad(rollout, argnums=(0, 1))(State(x, v), k)
    want = numeric_grad(rollout_plain, (x, v, k), argnum=(0, 1, 2))
    assert_tree_allclose((got[0].x, got[0].v, got[1]), want, rtol=RTOL, atol=ATOL)
    grad_k = codax.grad(rollout_plain, argnums=2)
    want = (grad_k(x, v, k + 1e-5) - grad_k(x, v, k - 1e-5)) / 2e-5
    assert np.isclose(codax.hessian(rollout, argnums=1)(State(x, v), k), want, rtol=1e-5)
    hess = codax.hessian(rollout)(State(x, v), k)
    grad_x = codax.grad(rollout_plain)
    for i in range(3):
        d = np.eye(3)[i] * 1e-5
        np.testing.assert_allclose(hess.x.x[:, i], (grad_x(x + d, v, k) - grad_x(x - d, v, k))
                                   / 2e-5, rtol=1e-5, atol=1e-7)
    mapped = codax.vmap(codax.grad(rollout), in_axes=(0, None))
    assert 'rt.batch_loop' not in mapped.source(State(A, B), k)
    got = mapped(State(A, B), k)
    for i in range(len(A)):
        want = numeric_grad(rollout_plain, (A[i], B[i], k), argnum=(0, 1))
        assert_tree_allclose((got.x[i], got.v[i]), want, rtol=RTOL, atol=ATOL)


# ---- constructions refused ----

class Stores:
    """Its constructor makes its child an array (np.asarray) instead of keeping it."""

    def __init__(self, w):
        self.w = np.asarray(w)


tu.register_pytree_node(Stores, lambda s: ((s.w,), None), lambda aux, c: Stores(*c))


class Inspects:
    """Its constructor reads its argument's shape."""

    def __init__(self, w):
        self.w, self.n = w, w.shape[0]


tu.register_pytree_node(Inspects, lambda s: ((s.w,), s.n), lambda n, c: Inspects(*c))


@dataclasses.dataclass
class Scaled:
    """`scale` is auxiliary data: no derivative flows through it (as in JAX)."""
    value: np.ndarray
    scale: float


tu.register_pytree_node(Scaled, lambda s: ((s.value,), s.scale),
                        lambda scale, c: Scaled(c[0], scale))


def stores(w):
    return np.sum(Stores(w * 2.0).w)


def inspects(w):
    return np.sum(Inspects(w * 2.0).w)


def scaled_by_a_number(v, s):
    z = Scaled(v, 2.0 * s)
    return z.scale * np.sum(z.value ** 2)


def scaled_by_an_item(v, p):
    z = Scaled(v, p['s'])
    return z.scale * np.sum(z.value ** 2)


def scaled_by_a_constant(v):
    z = Scaled(v * 2.0, 1.5)
    return z.scale * np.sum(z.value ** 2)


def _both_modes(f, args):
    """grad and jvp of f with respect to every argument."""
    argnums = tuple(range(len(args)))
    return [lambda: codax.grad(f, argnums=argnums)(*args), lambda: codax.jvp(f, args, args)]


@pytest.mark.parametrize('f, args, message', [
    (stores, (W,), r'construction of a Stores: its child 1 \(in flattening order\) is made '
                   r'from the arguments in the constructor'),
    (inspects, (W,), r'construction of a Inspects: its constructor failed when given '
                     r'placeholders for its arguments \(AttributeError'),
    (scaled_by_a_number, (BIAS, 1.5), r'construction of a Scaled: its argument 2 carries a '
                                      r'derivative but is none of its children')],
    ids=['computes a child', 'inspects an argument', 'auxiliary data'])
def test_constructions_refused_at_the_line(f, args, message):
    for run in _both_modes(f, args):
        with pytest.raises(codax.SourceError, match=r'test_nodes_transforms.py:\d+:\d+: codax '
                           r'cannot differentiate this ' + message):
            run()


def test_auxiliary_data_of_a_kind_seen_at_run_time_is_refused_then():
    for run in _both_modes(scaled_by_an_item, (BIAS, {'s': 1.5})):
        with pytest.raises(TypeError, match=r'construction of a Scaled: an argument \(a float\) '
                           r'carries a derivative but is none of its children'):
            run()
    got = codax.grad(scaled_by_an_item)(BIAS, {'s': 1.5})      # p not differentiated
    np.testing.assert_allclose(got, 3.0 * BIAS, rtol=1e-12)
    np.testing.assert_allclose(codax.grad(scaled_by_a_constant)(BIAS), 12.0 * BIAS, rtol=1e-12)


# ---- vmap(grad) of node reads is vectorized ----

def box_reads(box):
    return np.sum(np.sin(box.x) * box.y) + np.sum(box.x ** 2)


def box_reads_plain(x, y):
    return np.sum(np.sin(x) * y) + np.sum(x ** 2)


@pytest.mark.parametrize('f, plain, kind', [(box_reads, box_reads_plain, Box),
                                            (pair_energy, pair_energy_plain, Pair)],
                         ids=['registered', 'namedtuple'])
@pytest.mark.parametrize('in_axes', [0, 'first child'])
def test_vmap_of_grad_of_attribute_reads_is_vectorized(f, plain, kind, in_axes):
    axes = (kind(0, None),) if in_axes == 'first child' else 0
    node = kind(A, B[0]) if in_axes == 'first child' else kind(A, B)
    mapped = codax.vmap(codax.grad(f), in_axes=axes)
    source = mapped.source(node)
    assert 'rt.attribute_cotangent' in source and 'rt.batch_loop' not in source
    got = mapped(node)
    assert type(got) is kind
    for i in range(len(A)):
        y = B[0] if in_axes == 'first child' else B[i]
        want = codax.grad(f)(kind(A[i], y))
        assert_tree_allclose(tuple(tu.tree_leaves(tu.tree_map(lambda v: v[i], got))),
                             tuple(tu.tree_leaves(want)), rtol=1e-12, atol=1e-14)
        assert_tree_allclose(tuple(tu.tree_leaves(want)),
                             numeric_grad(plain, (A[i], y), argnum=(0, 1)), rtol=RTOL, atol=ATOL)


def box_reads_forward(box, t):     # forward mode inside: rt.attribute_tangent, batched
    return codax.jvp(box_reads, (box,), (t,))[1]


def test_vmap_of_jvp_of_attribute_reads_is_vectorized(monkeypatch, capsys):
    """The batched forward-mode code is compiled at the call (rt.vmapped), so
    its source is read from CODAX_DUMP's print (a batch of 5: compiled anew)."""
    xs, ys = _rng.uniform(-1, 1, (5, 3)), _rng.uniform(-1, 1, (5, 3))
    monkeypatch.setenv('CODAX_DUMP', '1')
    got = codax.vmap(box_reads_forward)(Box(xs, ys), Box(ys, xs))
    dumped = capsys.readouterr().err
    batched = dumped[dumped.index('def vmap_jvp_box_reads'):]
    assert 'rt.attribute_tangent' in batched and 'rt.batch_loop' not in batched
    eps = 1e-6
    want = [(box_reads_plain(a + eps * b, b + eps * a) - box_reads_plain(a - eps * b, b - eps * a))
            / (2 * eps) for a, b in zip(xs, ys)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
