"""codax.tree_util called inside transformed functions (issue 6).

Each function below uses one of tree_leaves, tree_flatten / tree_unflatten,
tree_structure or tree_map, and has a twin computing the same thing without
tree_util. Under grad, value_and_grad, jvp, jacfwd, jacrev, hessian and
jacrev(grad) they are checked against central differences of the twin (first
order) or of codax's gradient (second order), under vmap against a Python
loop, under jit against the plain call. vmap maps over registered node
types' children, and tree_map's is_leaf works under every transformation.
Every function is module-level: codax reads its source.
"""
import collections
import dataclasses

import numpy as np
import pytest

import codax
import runtime
from codax import tree_util as tu
from helpers import assert_tree_allclose, numeric_grad

RTOL, ATOL = 1e-6, 1e-8

_rng = np.random.default_rng(6)
P = {'w': _rng.uniform(-1, 1, 3), 'b': [_rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, 2)]}
G = {'w': _rng.uniform(-1, 1, 3), 'b': [_rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, 2)]}
T = {'w': _rng.uniform(-1, 1, 3), 'b': [_rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, 2)]}


# ---- mapped functions ----

def sin_times(x):
    return np.sin(x) * x


def sgd_update(p, g):
    return p - 0.1 * g


# ---- each function and its twin without tree_util (flattening order: 'b' before 'w') ----

def leaves_loop(p):
    s = 0.0
    for leaf in tu.tree_leaves(p):
        s = s + np.sum(np.sin(leaf) * leaf)
    return s


def leaves_loop_plain(p):
    return sum(np.sum(np.sin(x) * x) for x in (p['b'][0], p['b'][1], p['w']))


def leaves_generator(p):                       # the example
    return sum(np.sum(leaf ** 2) for leaf in tu.tree_leaves(p))


def leaves_generator_plain(p):
    return np.sum(p['b'][0] ** 2) + np.sum(p['b'][1] ** 2) + np.sum(p['w'] ** 2)


def flatten_unflatten(p):
    leaves, treedef = tu.tree_flatten(p)
    scaled = []
    k = 1.0
    for leaf in leaves:
        scaled.append(np.tanh(leaf) * k)
        k = k + 1.0
    q = tu.tree_unflatten(treedef, scaled)
    return np.sum(q['w'] ** 2) + np.sum(q['b'][0] * q['b'][1])


def flatten_unflatten_plain(p):
    return np.sum((3.0 * np.tanh(p['w'])) ** 2) \
        + np.sum(np.tanh(p['b'][0]) * 2.0 * np.tanh(p['b'][1]))


def structure(p):
    treedef = tu.tree_structure(p)
    q = tu.tree_unflatten(treedef, [leaf ** 3 for leaf in tu.tree_leaves(p)])
    return np.sum(np.cos(q['w'])) * np.sum(q['b'][1])


def structure_plain(p):
    return np.sum(np.cos(p['w'] ** 3)) * np.sum(p['b'][1] ** 3)


def unused_subtree(p):                         # q's cotangent: 0.0 for all of q['b']
    leaves, treedef = tu.tree_flatten(p)
    q = tu.tree_unflatten(treedef, [np.exp(leaf) for leaf in leaves])
    return np.sum(q['w'] ** 2)


def unused_subtree_plain(p):
    return np.sum(np.exp(p['w']) ** 2)


def map_one(p):
    q = tu.tree_map(sin_times, p)
    return np.sum(q['w'] * q['b'][0][0]) + np.sum(q['b'][1] ** 2)


def map_one_plain(p):
    return np.sum(sin_times(p['w']) * sin_times(p['b'][0])[0]) + np.sum(sin_times(p['b'][1]) ** 2)


def map_numpy(p):                              # a NumPy function mapped
    q = tu.tree_map(np.tanh, p)
    return np.sum(q['w']) * np.sum(q['b'][1] ** 2)


def map_numpy_plain(p):
    return np.sum(np.tanh(p['w'])) * np.sum(np.tanh(p['b'][1]) ** 2)


def map_several(p, g):                         # an SGD step, then a loss
    new = tu.tree_map(sgd_update, p, g)
    return sum(np.sum(np.sin(leaf) ** 2) for leaf in tu.tree_leaves(new))


def map_several_plain(p, g):
    pairs = ((p['w'], g['w']), (p['b'][0], g['b'][0]), (p['b'][1], g['b'][1]))
    return sum(np.sum(np.sin(x - 0.1 * y) ** 2) for x, y in pairs)


CASES = {
    'tree_leaves loop': (leaves_loop, leaves_loop_plain, (P,)),
    'tree_leaves generator': (leaves_generator, leaves_generator_plain, (P,)),
    'tree_flatten/unflatten': (flatten_unflatten, flatten_unflatten_plain, (P,)),
    'tree_structure': (structure, structure_plain, (P,)),
    'tree_unflatten, a subtree unused': (unused_subtree, unused_subtree_plain, (P,)),
    'tree_map': (map_one, map_one_plain, (P,)),
    'tree_map of np.tanh': (map_numpy, map_numpy_plain, (P,)),
    'tree_map of two trees': (map_several, map_several_plain, (P, G)),
}
case = pytest.mark.parametrize('name', list(CASES))


def _flat(tree):
    return np.concatenate([np.ravel(leaf) for leaf in tu.tree_leaves(tree)])


def _directional(f, args, tangents, eps=1e-6):
    """d/de f(args + e tangents) by central differences."""
    def at(e):
        return f(*[tu.tree_map(lambda x, t: x + e * t, a, t) for a, t in zip(args, tangents)])
    return (at(eps) - at(-eps)) / (2 * eps)


def _hessian_by_differences(f, p, eps=1e-5):
    """Rows of the Hessian: central differences of codax's (FD-checked) gradient."""
    grad = codax.grad(f)
    leaves, treedef = tu.tree_flatten(p)
    x = _flat(p)
    sizes = [leaf.size for leaf in leaves]
    rows = []
    for i in range(x.size):
        d = np.zeros_like(x)
        d[i] = eps
        trees = [tu.tree_unflatten(treedef, [v.reshape(leaf.shape) for v, leaf in zip(
            np.split(x + s * d, np.cumsum(sizes)[:-1]), leaves)]) for s in (1, -1)]
        rows.append((_flat(grad(trees[0])) - _flat(grad(trees[1]))) / (2 * eps))
    return np.array(rows)


def _hessian_matrix(h, p):
    """A nested Hessian (p's structure, each entry p's structure) as a matrix."""
    leaves = tu.tree_leaves(p)
    blocks = tu.tree_leaves(h)
    n = len(leaves)
    return np.block([[blocks[i * n + j].reshape(leaves[i].size, leaves[j].size)
                      for j in range(n)] for i in range(n)])


# ---- first order ----

@case
def test_the_functions_agree_with_their_twins(name):
    f, plain, args = CASES[name]
    assert np.isclose(f(*args), plain(*args), rtol=1e-12)


@case
def test_grad(name):
    f, plain, args = CASES[name]
    got = codax.grad(f)(*args)
    assert_tree_allclose(got, numeric_grad(plain, args), rtol=RTOL, atol=ATOL)


def test_grad_with_respect_to_every_tree_of_tree_map():
    got = codax.grad(map_several, argnums=(0, 1))(P, G)
    assert_tree_allclose(got, numeric_grad(map_several_plain, (P, G), (0, 1)),
                         rtol=RTOL, atol=ATOL)


@case
def test_value_and_grad(name):
    f, plain, args = CASES[name]
    value, grads = codax.value_and_grad(f)(*args)
    assert np.isclose(value, plain(*args), rtol=1e-12)
    assert_tree_allclose(grads, numeric_grad(plain, args), rtol=RTOL, atol=ATOL)


@case
def test_jvp(name):
    f, plain, args = CASES[name]
    tangents = (T, G)[:len(args)]
    value, tangent = codax.jvp(f, args, tangents)
    assert np.isclose(value, plain(*args), rtol=1e-12)
    assert np.isclose(tangent, _directional(plain, args, tangents), rtol=RTOL, atol=ATOL)


@case
@pytest.mark.parametrize('jacobian', [codax.jacfwd, codax.jacrev], ids=['jacfwd', 'jacrev'])
def test_jacobian_of_a_scalar(name, jacobian):
    f, plain, args = CASES[name]
    assert_tree_allclose(jacobian(f)(*args), numeric_grad(plain, args), rtol=RTOL, atol=ATOL)


def mapped_vector(p):
    q = tu.tree_map(sin_times, p)
    leaves, treedef = tu.tree_flatten(q)
    return leaves[2] * np.sum(leaves[0]) + leaves[1][0]


def mapped_vector_plain(p):
    return sin_times(p['w']) * np.sum(sin_times(p['b'][0])) + sin_times(p['b'][1])[0]


@pytest.mark.parametrize('jacobian', [codax.jacfwd, codax.jacrev], ids=['jacfwd', 'jacrev'])
def test_jacobian_of_a_vector(jacobian):
    got = jacobian(mapped_vector)(P)
    for k in range(3):                    # row k: the gradient of output k
        row = tu.tree_map(lambda block: block[k], got)
        want = numeric_grad(lambda p: mapped_vector_plain(p)[k], (P,))
        assert_tree_allclose(row, want, rtol=RTOL, atol=ATOL)


def cos_tree(p):                               # a tree out: tree_unflatten's result
    leaves, treedef = tu.tree_flatten(p)
    return tu.tree_unflatten(treedef, [np.cos(leaf) for leaf in leaves])


@pytest.mark.parametrize('jacobian', [codax.jacfwd, codax.jacrev], ids=['jacfwd', 'jacrev'])
def test_jacobian_of_a_tree_output(jacobian):
    got = jacobian(cos_tree)(P)
    want = tu.tree_map(lambda x: tu.tree_map(lambda y: np.zeros(x.shape + y.shape), P), P)
    want['w']['w'] = np.diag(-np.sin(P['w']))
    for i in range(2):
        want['b'][i]['b'][i] = np.diag(-np.sin(P['b'][i]))
    assert_tree_allclose(got, want, rtol=1e-12, atol=1e-15)
    out, pullback = codax.vjp(cos_tree, P)
    assert_tree_allclose(pullback(T)[0], tu.tree_map(lambda x, t: -np.sin(x) * t, P, T),
                         rtol=1e-12)


# ---- second order ----

def sgd_loss(p):
    return map_several(p, G)


def _of_p(name):
    """The case's function of P alone (tree_map of two trees: of the first)."""
    return CASES[name][0] if len(CASES[name][2]) == 1 else sgd_loss


@case
def test_hessian(name):                        # forward over reverse
    f = _of_p(name)
    got = codax.hessian(f)(P)
    assert tu.tree_structure(got) == tu.tree_structure(tu.tree_map(lambda x: P, P))
    np.testing.assert_allclose(_hessian_matrix(got, P), _hessian_by_differences(f, P),
                               rtol=1e-5, atol=1e-7)


@case
def test_jacrev_of_grad(name):                 # reverse over reverse
    f = _of_p(name)
    got = codax.jacrev(codax.grad(f))(P)
    np.testing.assert_allclose(_hessian_matrix(got, P), _hessian_by_differences(f, P),
                               rtol=1e-5, atol=1e-7)


def along(t, f):
    """f at P + t T: f(P) moved along a direction, as a function of a number."""
    return f({'w': P['w'] + t * T['w'], 'b': [P['b'][0] + t * T['b'][0],
                                               P['b'][1] + t * T['b'][1]]})


@case
def test_grad_of_grad(name):
    f = _of_p(name)
    second = codax.grad(codax.grad(along))(0.3, f)
    first = codax.grad(along)
    want = (first(0.3 + 1e-5, f) - first(0.3 - 1e-5, f)) / 2e-5
    assert np.isclose(second, want, rtol=1e-6, atol=1e-8)


# ---- vmap ----

W_BATCH = _rng.uniform(-1, 1, (4, 3))
IN_AXES = ({'w': 0, 'b': None},)


def _example(i):
    return {'w': W_BATCH[i], 'b': P['b']}


@case
def test_vmap_with_in_axes_over_a_dict(name):
    f, plain, args = CASES[name]
    batch = {'w': W_BATCH, 'b': P['b']}
    got = codax.vmap(f, in_axes=IN_AXES + (None,) * (len(args) - 1))(batch, *args[1:])
    want = [plain(_example(i), *args[1:]) for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@case
def test_vmap_of_grad(name):                   # per-example gradients
    f, plain, args = CASES[name]
    batch = {'w': W_BATCH, 'b': P['b']}
    got = codax.vmap(codax.grad(f), in_axes=IN_AXES + (None,) * (len(args) - 1))(
        batch, *args[1:])
    for i in range(4):
        want = numeric_grad(plain, (_example(i),) + args[1:])
        assert_tree_allclose({'w': got['w'][i], 'b': [got['b'][0][i], got['b'][1][i]]}, want,
                             rtol=RTOL, atol=ATOL)


def sgd_step(p, g):
    return tu.tree_map(sgd_update, p, g)


GB = _rng.uniform(-1, 1, (4, 2))


def _batched_g(i=None):
    """G with its first 'b' leaf batched (i None), or example i of that."""
    return {'w': G['w'], 'b': [GB if i is None else GB[i], G['b'][1]]}


@pytest.mark.parametrize('fn, in_axes, example', [
    (sgd_step, ({'w': 0, 'b': None}, None), lambda i: (_example(i), G)),
    (sgd_step, ({'w': 0, 'b': None}, {'w': None, 'b': [0, None]}),
     lambda i: (_example(i), _batched_g(i))),
    (cos_tree, IN_AXES, lambda i: (_example(i),))],
    ids=['tree_map', 'tree_map, both batched', 'tree_unflatten'])
def test_vmap_of_a_function_returning_a_tree(fn, in_axes, example):
    args = ({'w': W_BATCH, 'b': P['b']}, G if in_axes[-1] is None else _batched_g())
    got = codax.vmap(fn, in_axes=in_axes)(*args[:len(in_axes)])
    for i in range(4):
        assert_tree_allclose(tu.tree_map(lambda leaf: leaf[i], got), fn(*example(i)),
                             rtol=1e-12)


def test_vmap_of_tree_leaves_over_a_tree_batched_everywhere():
    batch = {'w': W_BATCH, 'b': [_rng.uniform(-1, 1, (4, 2)), _rng.uniform(-1, 1, (4, 2))]}
    got = codax.vmap(leaves_loop)(batch)
    want = [leaves_loop_plain(tu.tree_map(lambda leaf: leaf[i], batch)) for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---- jit ----

@case
def test_jit(name):
    f, plain, args = CASES[name]
    assert np.isclose(codax.jit(f)(*args), plain(*args), rtol=1e-12)


@case
def test_jit_of_grad(name):
    f, plain, args = CASES[name]
    assert_tree_allclose(codax.jit(codax.grad(f))(*args), numeric_grad(plain, args),
                         rtol=RTOL, atol=ATOL)


def mse(p, x, y):
    return np.mean((x @ p['W'] + p['b'] - y) ** 2)


def train_step(p, x, y):
    grads = codax.grad(mse)(p, x, y)
    return tu.tree_map(sgd_update, p, grads)


def test_jit_of_a_training_step():
    x, y = _rng.uniform(-1, 1, (5, 3)), _rng.uniform(-1, 1, (5, 2))
    p = {'W': _rng.uniform(-1, 1, (3, 2)), 'b': np.zeros(2)}
    got = codax.jit(train_step)(p, x, y)
    grads = numeric_grad(mse, (p, x, y))
    want = {k: p[k] - 0.1 * grads[k] for k in p}
    assert_tree_allclose(got, want, rtol=1e-6, atol=1e-9)


# ---- namedtuples and registered node types ----

Pair = collections.namedtuple('Pair', ['a', 'b'])


class Box:
    """A user's node type, registered as a pytree."""

    def __init__(self, x, y):
        self.x, self.y = x, y


tu.register_pytree_node(Box, lambda box: ((box.x, box.y), None), lambda aux, c: Box(*c))


def node_map(t):
    q = tu.tree_map(sin_times, t)
    leaves, treedef = tu.tree_flatten(q)
    return np.sum(leaves[0] * np.sum(leaves[1]))


def node_map_two(t):
    new = tu.tree_map(sgd_update, t, tu.tree_map(np.tanh, t))   # t read twice
    return sum(np.sum(np.cos(leaf)) for leaf in tu.tree_leaves(new))


def _pair_twin(f):
    """f evaluated on the leaves (a, b) of a namedtuple, as numeric_grad passes them."""
    return lambda ab: f(Pair(*ab))


PA, PB = _rng.uniform(-1, 1, 3), _rng.uniform(-1, 1, 3)


@pytest.mark.parametrize('f', [leaves_loop, node_map, node_map_two])
def test_namedtuple(f):
    pair = Pair(PA, PB)
    want = numeric_grad(_pair_twin(f), ((PA, PB),))
    got = codax.grad(f)(pair)
    assert type(got) is Pair
    assert_tree_allclose(tuple(got), want, rtol=RTOL, atol=ATOL)
    value, tangent = codax.jvp(f, (pair,), (Pair(PB, PA),))
    assert np.isclose(tangent, np.sum(_flat(want) * np.concatenate([PB, PA])), rtol=1e-6)
    hess = codax.hessian(f)(pair)
    np.testing.assert_allclose(_hessian_matrix(hess, pair), _hessian_by_differences(f, pair),
                               rtol=1e-5, atol=1e-7)
    batch = Pair(W_BATCH, PB)
    got = codax.vmap(f, in_axes=(Pair(0, None),))(batch)
    np.testing.assert_allclose(got, [f(Pair(W_BATCH[i], PB)) for i in range(4)], rtol=1e-12)
    assert np.isclose(codax.jit(f)(pair), f(pair), rtol=1e-12)


@pytest.mark.parametrize('f', [leaves_loop, node_map])
def test_registered_node_type(f):
    box = Box(PA, PB)
    want = numeric_grad(lambda ab: f(Box(*ab)), ((PA, PB),))
    got = codax.grad(f)(box)
    assert type(got) is Box
    assert_tree_allclose((got.x, got.y), want, rtol=RTOL, atol=ATOL)
    value, tangent = codax.jvp(f, (box,), (Box(PB, PA),))
    assert np.isclose(tangent, np.sum(_flat(want) * np.concatenate([PB, PA])), rtol=1e-6)
    hess = codax.hessian(f)(box)
    np.testing.assert_allclose(_hessian_matrix(hess, box), _hessian_by_differences(f, box),
                               rtol=1e-5, atol=1e-7)
    assert np.isclose(codax.jit(f)(box), f(box), rtol=1e-12)


def test_registered_node_type_read_twice():
    """Its adjoint gets two contributions, added child by child (rt.add)."""
    got = codax.grad(node_map_two)(Box(PA, PB))
    want = numeric_grad(lambda x, y: node_map_two(Box(x, y)), (PA, PB), argnum=(0, 1))
    assert isinstance(got, Box)
    assert_tree_allclose((got.x, got.y), want, rtol=1e-6, atol=1e-8)


# ---- vmap over registered node types: their children are mapped (JAX's rule) ----

def box_attributes(box):                       # reads the children as attributes
    return np.sum(np.sin(box.x) * box.y) + np.sum(box.x ** 2)


Y_BATCH = _rng.uniform(-1, 1, (4, 3))
NODE_AXES = {   # in_axes, the batched Box, example i of it
    '0': (0, Box(W_BATCH, Y_BATCH), lambda i: Box(W_BATCH[i], Y_BATCH[i])),
    'Box(0, None)': ((Box(0, None),), Box(W_BATCH, PB), lambda i: Box(W_BATCH[i], PB)),
    'Box(None, 1)': ((Box(None, 1),), Box(PA, Y_BATCH.T), lambda i: Box(PA, Y_BATCH[i]))}


@pytest.mark.parametrize('axes', list(NODE_AXES))
@pytest.mark.parametrize('f', [leaves_loop, node_map, node_map_two, box_attributes])
def test_vmap_over_a_registered_node_type(f, axes):
    in_axes, batch, example = NODE_AXES[axes]
    got = codax.vmap(f, in_axes=in_axes)(batch)
    np.testing.assert_allclose(got, [f(example(i)) for i in range(4)], rtol=1e-12)


def box_times(box, x):
    return np.sum(box.x * x) + np.sum(box.y)


def test_vmap_with_a_registered_node_not_mapped():
    got = codax.vmap(box_times, in_axes=(None, 0))(Box(PA, PB), W_BATCH)
    np.testing.assert_allclose(got, [box_times(Box(PA, PB), w) for w in W_BATCH], rtol=1e-12)


@dataclasses.dataclass
class Layer:
    """A dataclass registered as a node; `act` is auxiliary data, not a child."""
    w: np.ndarray
    b: dict
    act: str = 'tanh'


tu.register_pytree_node(Layer, lambda layer: ((layer.w, layer.b), layer.act),
                        lambda act, children: Layer(*children, act))


def layer_loss(params, x):
    layer = params['layer']
    h = x @ layer.w + layer.b['shift']
    if layer.act == 'tanh':
        h = np.tanh(h)
    return np.sum(h * layer.b['scale']) + params['c']


def rebuilt_layer_loss(params, x):          # a Layer built, its `act` passed on
    layer = params['layer']
    doubled = Layer(2.0 * layer.w, layer.b, layer.act)
    return layer_loss({'layer': doubled, 'c': params['c']}, x)


@pytest.mark.parametrize('f', [layer_loss, rebuilt_layer_loss])
def test_vmap_over_a_node_nested_in_a_dict(f):
    ws, shifts = _rng.uniform(-1, 1, (4, 3, 2)), _rng.uniform(-1, 1, (4, 2))
    scale, xs = _rng.uniform(-1, 1, 2), _rng.uniform(-1, 1, (4, 3))
    params = {'layer': Layer(ws, {'shift': shifts, 'scale': scale}), 'c': 0.5}
    in_axes = ({'layer': Layer(0, {'shift': 0, 'scale': None}), 'c': None}, 0)
    got = codax.vmap(f, in_axes=in_axes)(params, xs)
    want = [f({'layer': Layer(ws[i], {'shift': shifts[i], 'scale': scale}), 'c': 0.5}, xs[i])
            for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def box_update(box, x):                        # a node out, built in the function
    return Box(box.x - 0.1 * x, np.cos(box.y))


def box_cos(box):                              # a node out, built by tree_map
    return tu.tree_map(np.cos, box)


@pytest.mark.parametrize('f, args, in_axes, out_axes, example', [
    (box_update, (Box(W_BATCH, PB), Y_BATCH), (Box(0, None), 0), 0,
     lambda i: (Box(W_BATCH[i], PB), Y_BATCH[i])),
    (box_update, (Box(W_BATCH, PB), Y_BATCH), (Box(0, None), 0), Box(1, None),
     lambda i: (Box(W_BATCH[i], PB), Y_BATCH[i])),
    (box_cos, (Box(W_BATCH, PB),), (Box(0, None),), 0, lambda i: (Box(W_BATCH[i], PB),))],
    ids=['Box(...)', 'Box(...), out_axes Box(1, None)', 'tree_map'])
def test_vmap_of_a_function_returning_a_node(f, args, in_axes, out_axes, example):
    got = codax.vmap(f, in_axes=in_axes, out_axes=out_axes)(*args)
    assert type(got) is Box
    out_axes = out_axes if isinstance(out_axes, Box) else Box(out_axes, out_axes)
    for i in range(4):
        want = f(*example(i))
        np.testing.assert_allclose(np.moveaxis(got.x, out_axes.x, 0)[i], want.x, rtol=1e-12)
        np.testing.assert_allclose(got.y if out_axes.y is None
                                   else np.moveaxis(got.y, out_axes.y, 0)[i], want.y, rtol=1e-12)


@pytest.mark.parametrize('f', [leaves_loop, node_map, node_map_two, box_attributes])
def test_vmap_of_grad_over_a_registered_node_type(f):      # per-example gradients
    got = codax.vmap(codax.grad(f), in_axes=(Box(0, None),))(Box(W_BATCH, PB))
    assert type(got) is Box
    for i in range(4):
        want = numeric_grad(lambda x, y: f(Box(x, y)), (W_BATCH[i], PB), argnum=(0, 1))
        assert_tree_allclose((got.x[i], got.y[i]), want, rtol=RTOL, atol=ATOL)


mapped_leaves_loop = codax.vmap(leaves_loop)
mapped_node_map = codax.vmap(node_map)
mapped_leaves_loop_partly = codax.vmap(leaves_loop, in_axes=(Box(0, None),))


def summed_leaves_loop(box):
    return np.sum(mapped_leaves_loop(box))


def summed_node_map(box):
    return np.sum(mapped_node_map(box))


def summed_leaves_loop_partly(box):
    return np.sum(mapped_leaves_loop_partly(box))


@pytest.mark.parametrize('f, box', [(summed_leaves_loop, Box(W_BATCH, Y_BATCH)),
                                    (summed_node_map, Box(W_BATCH, Y_BATCH)),
                                    (summed_leaves_loop_partly, Box(W_BATCH, PB))],
                         ids=['tree_leaves', 'tree_map', 'tree_leaves, in_axes Box(0, None)'])
def test_grad_of_vmap_over_a_registered_node_type(f, box):
    got = codax.grad(f)(box)
    assert type(got) is Box
    want = numeric_grad(lambda x, y: f(Box(x, y)), (box.x, box.y), argnum=(0, 1))
    assert_tree_allclose((got.x, got.y), want, rtol=RTOL, atol=ATOL)


class Polar:
    """A node whose attribute .x is computed from its children."""

    def __init__(self, r, theta):
        self.r, self.theta = r, theta

    @property
    def x(self):
        return self.r * np.cos(self.theta)


tu.register_pytree_node(Polar, lambda p: ((p.r, p.theta), None), lambda aux, c: Polar(*c))


def polar_x(p):
    return np.sum(p.x)


def test_vmap_refuses_an_attribute_computed_from_the_children():
    with pytest.raises(codax.SourceError, match=r'test_tree_util_transforms.py:\d+.*'
                       r'attribute \.x of a Polar: it is computed from'):
        codax.vmap(polar_x)(Polar(W_BATCH, W_BATCH))


def test_vmap_in_axes_not_matching_a_node():
    with pytest.raises(ValueError, match=r'in_axes \(0, 0, 0\) for argument 0 \(p\) does not '
                       r'match its structure Box'):
        codax.vmap(leaves_loop, in_axes=((0, 0, 0),))(Box(W_BATCH, W_BATCH))


# ---- derivatives of attribute reads: through the child the attribute holds ----

def box_twin(f):
    """f of a Box of its two children, as numeric_grad passes them."""
    return lambda x, y: f(Box(x, y))


def box_loop(box):                             # attributes read in a loop
    s = 0.0
    for i in range(3):
        s = s + np.sum(np.sin(box.x * (i + 1)) * box.y)
    return s


def test_every_derivative_of_attribute_reads():
    box, tangent = Box(PA, PB), Box(PB, PA)
    want = numeric_grad(box_twin(box_attributes), (PA, PB), argnum=(0, 1))
    value, grad = codax.value_and_grad(box_attributes)(box)
    assert np.isclose(value, box_attributes(box), rtol=1e-12)
    for got in (codax.grad(box_attributes)(box), grad, codax.vjp(box_attributes, box)[1](1.0)[0],
                codax.jacfwd(box_attributes)(box), codax.jacrev(box_attributes)(box),
                codax.jit(codax.grad(box_attributes))(box)):
        assert type(got) is Box
        assert_tree_allclose((got.x, got.y), want, rtol=RTOL, atol=ATOL)
    value, got = codax.jvp(box_attributes, (box,), (tangent,))
    assert np.isclose(got, _directional(box_attributes, (box,), (tangent,)), rtol=1e-6)
    hess = codax.hessian(box_attributes)(box)
    np.testing.assert_allclose(_hessian_matrix(hess, box),
                               _hessian_by_differences(box_attributes, box), rtol=1e-5, atol=1e-7)
    assert np.isclose(codax.jit(box_attributes)(box), box_attributes(box), rtol=1e-12)


@pytest.mark.parametrize('box', [Box(PA, PB), Box(PA, PA)], ids=['', 'one array twice'])
def test_grad_of_attribute_reads_in_a_loop(box):
    got = codax.grad(box_loop)(box)
    want = numeric_grad(box_twin(box_loop), (box.x, box.y.copy()), argnum=(0, 1))
    assert_tree_allclose((got.x, got.y), want, rtol=RTOL, atol=ATOL)


def grad_attributes(box):                      # reads the attributes of a gradient
    g = codax.grad(box_attributes)(box)
    return np.sum(g.x * g.y)


def test_grad_of_grad_of_attribute_reads():
    got = codax.grad(grad_attributes)(Box(PA, PB))
    want = numeric_grad(box_twin(grad_attributes), (PA, PB), argnum=(0, 1))
    assert_tree_allclose((got.x, got.y), want, rtol=1e-5, atol=1e-7)


def pair_attributes(pair):
    return np.sum(pair.a * np.cos(pair.b))


def test_grad_of_namedtuple_attribute_reads():
    got = codax.grad(pair_attributes)(Pair(PA, PB))
    assert type(got) is Pair
    want = numeric_grad(lambda a, b: pair_attributes(Pair(a, b)), (PA, PB), argnum=(0, 1))
    assert_tree_allclose(tuple(got), want, rtol=RTOL, atol=ATOL)


_arng = np.random.default_rng(66)
LAYER_W, LAYER_SHIFT, LAYER_SCALE = (_arng.uniform(-1, 1, s) for s in ((3, 2), 2, 2))
LAYER_X = _arng.uniform(-1, 1, 3)


def layer_params(w, shift, scale, c):
    return {'layer': Layer(w, {'shift': shift, 'scale': scale}), 'c': c}


def test_grad_and_vmap_of_grad_of_a_node_in_a_dict():
    """layer_loss reads layer.act, auxiliary data: a constant, kept in the gradient."""
    params = layer_params(LAYER_W, LAYER_SHIFT, LAYER_SCALE, 0.5)
    got = codax.grad(layer_loss)(params, LAYER_X)
    assert type(got['layer']) is Layer and got['layer'].act == 'tanh'
    want = numeric_grad(lambda *p: layer_loss(layer_params(*p), LAYER_X),
                        (LAYER_W, LAYER_SHIFT, LAYER_SCALE, 0.5), argnum=(0, 1, 2, 3))
    assert_tree_allclose((got['layer'].w, got['layer'].b['shift'], got['layer'].b['scale'],
                          got['c']), want, rtol=RTOL, atol=ATOL)
    tangents = (layer_params(0.5 * LAYER_W, LAYER_SCALE, LAYER_SHIFT, 1.0), -LAYER_X)
    _, got = codax.jvp(layer_loss, (params, LAYER_X), tangents)
    assert np.isclose(got, _directional(layer_loss, (params, LAYER_X), tangents), rtol=1e-6)
    ws, xs = _arng.uniform(-1, 1, (4, 3, 2)), _arng.uniform(-1, 1, (4, 3))
    in_axes = ({'layer': Layer(0, {'shift': None, 'scale': None}), 'c': None}, 0)
    batch = codax.vmap(codax.grad(layer_loss), in_axes=in_axes)(
        layer_params(ws, LAYER_SHIFT, LAYER_SCALE, 0.5), xs)
    for i in range(4):
        want = numeric_grad(lambda *p: layer_loss(layer_params(*p), xs[i]),
                            (ws[i], LAYER_SHIFT, LAYER_SCALE, 0.5), argnum=(0, 1, 2, 3))
        assert_tree_allclose((batch['layer'].w[i], batch['layer'].b['shift'][i],
                              batch['layer'].b['scale'][i], batch['c'][i]), want,
                             rtol=RTOL, atol=ATOL)


@dataclasses.dataclass
class Scaled:
    """A node whose .scale is auxiliary data (a constant to derivatives, as in JAX)."""
    value: np.ndarray
    scale: float


tu.register_pytree_node(Scaled, lambda s: ((s.value,), s.scale),
                        lambda scale, children: Scaled(children[0], scale))


def scaled_energy(s):
    return s.scale * np.sum(s.value ** 2)


def test_an_attribute_holding_auxiliary_data_is_a_constant():
    got = codax.grad(scaled_energy)(Scaled(PA, 1.5))
    assert type(got) is Scaled and got.scale == 1.5
    want = numeric_grad(lambda v: scaled_energy(Scaled(v, 1.5)), (PA,))
    np.testing.assert_allclose(got.value, want, rtol=RTOL, atol=ATOL)
    _, tangent = codax.jvp(scaled_energy, (Scaled(PA, 1.5),), (Scaled(PB, 1.5),))
    assert np.isclose(tangent, np.sum(want * PB), rtol=1e-6)


class Plain:
    """Not registered as a pytree node."""

    def __init__(self, x):
        self.x = x


def plain_x(obj):
    return np.sum(obj.x ** 2)


def plain_x_in_dict(d):
    return np.sum(d['obj'].x ** 2)


def test_attribute_reads_that_cannot_be_differentiated():
    with pytest.raises(codax.SourceError, match=r'test_tree_util_transforms.py:\d+: the '
                       r'attribute \.x has no derivative rule'):
        codax.grad(plain_x)(Plain(PA))
    with pytest.raises(TypeError, match=r'attribute \.x of a Plain: it differentiates attribute '
                       r'reads only of pytree nodes \(types registered with '
                       r'codax\.tree_util\.register_pytree_node'):
        codax.grad(plain_x_in_dict)({'obj': Plain(PA)})
    for transform in (codax.grad, lambda f: lambda p: codax.jvp(f, (p,), (p,))):
        with pytest.raises(TypeError, match=r'attribute \.x of a Polar: it is computed from the '
                           r"node's children, not one of them"):
            transform(polar_x)(Polar(PA, PB))


# ---- is_leaf ----

def is_list(x):
    return isinstance(x, list)


def total(x):
    return np.sum(np.asarray(x) ** 2)


def map_is_leaf(p):
    q = tu.tree_map(total, p, is_leaf=is_list)
    return q['w'] + q['b']


def leaves_is_leaf(p):
    s = 0.0
    for leaf in tu.tree_leaves(p, is_leaf=is_list):
        s = s + total(leaf)
    return s


def test_is_leaf_of_tree_leaves():
    assert_tree_allclose(codax.grad(leaves_is_leaf)(P), tu.tree_map(lambda x: 2 * x, P))


def map_is_leaf_plain(p):
    return np.sum(p['w'] ** 2) + np.sum(p['b'][0] ** 2) + np.sum(p['b'][1] ** 2)


def dot(x, y):
    return np.sum(np.asarray(x) * np.asarray(y))


def map_is_leaf_two(p, g):      # g['b'], a tuple, goes to dot whole where p['b'] is a leaf
    q = tu.tree_map(dot, p, g, is_leaf=is_list)
    return q['w'] * q['b']


def map_is_leaf_two_plain(p, g):
    return np.sum(p['w'] * g['w']) * (np.sum(p['b'][0] * g['b'][0])
                                      + np.sum(p['b'][1] * g['b'][1]))


def _with_tuple(tree):
    return {'w': tree['w'], 'b': tuple(tree['b'])}


IS_LEAF_CASES = {'one tree': (map_is_leaf, map_is_leaf_plain, (P,), (T,)),
                 'two trees': (map_is_leaf_two, map_is_leaf_two_plain, (P, _with_tuple(G)),
                               (T, _with_tuple(T)))}
is_leaf_case = pytest.mark.parametrize('name', list(IS_LEAF_CASES))


def test_tree_map_with_is_leaf_hands_the_further_trees_subtrees_whole():
    got = tu.tree_map(lambda x, y: (x, y), P, _with_tuple(G), is_leaf=is_list)
    assert got['b'] == (P['b'], tuple(G['b']))


@is_leaf_case
def test_tree_map_with_is_leaf_under_grad_and_jvp(name):
    f, plain, args, tangents = IS_LEAF_CASES[name]
    assert np.isclose(f(*args), plain(*args), rtol=1e-12)
    argnums = tuple(range(len(args)))
    assert_tree_allclose(codax.grad(f, argnums=argnums)(*args),
                         numeric_grad(plain, args, argnums), rtol=RTOL, atol=ATOL)
    value, tangent = codax.jvp(f, args, tangents)
    assert np.isclose(value, plain(*args), rtol=1e-12)
    assert np.isclose(tangent, _directional(plain, args, tangents), rtol=RTOL, atol=ATOL)


def test_tree_map_with_is_leaf_under_hessian():
    got = codax.hessian(map_is_leaf)(P)
    np.testing.assert_allclose(_hessian_matrix(got, P), _hessian_by_differences(map_is_leaf, P),
                               rtol=1e-5, atol=1e-7)


@is_leaf_case
def test_tree_map_with_is_leaf_under_jit(name):
    f, plain, args, _ = IS_LEAF_CASES[name]
    assert np.isclose(codax.jit(f)(*args), plain(*args), rtol=1e-12)
    assert_tree_allclose(codax.jit(codax.grad(f))(*args), numeric_grad(plain, args),
                         rtol=RTOL, atol=ATOL)


@is_leaf_case
@pytest.mark.parametrize('everywhere', [True, False], ids=['batched', "only 'w' batched"])
def test_tree_map_with_is_leaf_under_vmap(name, everywhere):
    f, plain, args, _ = IS_LEAF_CASES[name]
    bs = [_rng.uniform(-1, 1, (4, 2)) for _ in range(2)] if everywhere else P['b']
    batch = {'w': W_BATCH, 'b': bs}
    in_axes = ({'w': 0, 'b': 0 if everywhere else None},) + (None,) * (len(args) - 1)
    got = codax.vmap(f, in_axes=in_axes)(batch, *args[1:])
    want = [plain({'w': W_BATCH[i], 'b': [b[i] for b in bs] if everywhere else bs}, *args[1:])
            for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_tree_map_with_is_leaf_under_vmap_of_grad():
    got = codax.vmap(codax.grad(map_is_leaf), in_axes=IN_AXES)({'w': W_BATCH, 'b': P['b']})
    for i in range(4):
        want = numeric_grad(map_is_leaf_plain, (_example(i),))
        assert_tree_allclose({'w': got['w'][i], 'b': [got['b'][0][i], got['b'][1][i]]}, want,
                             rtol=RTOL, atol=ATOL)


def map_keyword_f(p):
    return tu.tree_map(f=total, tree=p)


def test_tree_map_keywords_other_than_is_leaf_are_refused_at_the_line():
    with pytest.raises(codax.SourceError, match=r'test_tree_util_transforms.py:\d+.*takes only '
                       r'is_leaf by keyword \(got f, tree\)'):
        codax.grad(map_keyword_f)(P)


# ---- the rules' helpers on derivatives with a zero subtree ----

def test_derivative_leaves_expands_a_zero_subtree():
    treedef = tu.tree_structure(P)
    cot = {'w': np.ones(3), 'b': 0.0}
    assert [np.shape(x) if not isinstance(x, float) else x
            for x in runtime.derivative_leaves(cot, treedef)] == [0.0, 0.0, (3,)]
    assert runtime.derivative_leaves(0.0, treedef) == 0.0
    assert runtime.derivative_tree(0.0, treedef) == 0.0
