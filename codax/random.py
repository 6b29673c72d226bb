"""JAX's explicit-key pseudo-random numbers, on NumPy (or CuPy) arrays.

As in ``jax.random``, there is no hidden state: a *key* is a ``uint32`` array
of shape ``(2,)`` (JAX's raw ``PRNGKey`` layout), every sampler is a pure
function of its key, and fresh randomness comes from ``split`` and
``fold_in``::

    key = codax.random.key(0)
    key, sub = codax.random.split(key)
    w = codax.random.normal(sub, (3, 2))

The generator is Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC 2011; the Random123 rotation constants and
key-schedule parity 0x1BD11BDA), vectorized over ``uint32`` arrays. The array
module is chosen from the key with ``runtime.array_module``, so a key that is
a CuPy array gives CuPy results.

Reproducibility against JAX. The algorithms follow JAX's threefry
implementation with ``jax_threefry_partitionable=True`` (JAX's default since
0.5): ``key``/``PRNGKey``, ``split``, ``fold_in``, ``bits``, ``uniform``,
``bernoulli``, ``randint``, ``permutation``, ``choice`` and ``categorical``
give the same bits/values as ``jax.random`` (floats: with ``jax_enable_x64``
for float64; ``uniform``'s ``x * (maxval - minval) + minval`` is rounded once,
as XLA's fused multiply-add does; ``categorical`` and ``choice`` with ``p`` go
through ``log``, so
they agree unless two candidates tie within an ulp). Differences:

- ``key(seed)`` splits a (Python) integer seed into ``[seed >> 32, seed &
  0xffffffff]`` as JAX does with x64 enabled; without x64 JAX first converts
  the seed to int32, so negative seeds or seeds >= 2**31 differ there.
- ``normal`` and ``truncated_normal`` use JAX's inverse-CDF algorithm
  (``sqrt(2) * erfinv(u)``), but ``erfinv``/``erf`` come from
  ``scipy.special`` (or, without SciPy, a Newton-refined approximation), not
  XLA's polynomials: equal to JAX within a few ulps, not bit for bit.
- ``gamma``, ``beta`` and ``dirichlet`` use a vectorized Marsaglia-Tsang
  rejection sampler of our own (JAX runs a per-element while loop with its own
  key splitting), so their draws differ from JAX's, but have the right
  distribution and are reproducible given the key. So do everything drawn
  through it: ``loggamma``, ``chisquare``, ``t``, ``generalized_normal``,
  ``ball``.
- ``exponential``, ``laplace``, ``logistic``, ``cauchy`` and ``maxwell`` are
  JAX's formulas on the same uniforms/normals (NumPy's ``log1p``, ``tan``,
  ``sqrt`` rather than XLA's: equal within a few ulps); ``rademacher`` is
  ``bernoulli``'s bits, so JAX's exactly. ``multivariate_normal`` and
  ``orthogonal`` are JAX's algorithms (``mean + F @ normal``; QR of a normal
  matrix with the signs of R's diagonal moved into Q) on LAPACK's
  factorizations; ``eigh`` clips rounding-negative eigenvalues to 0 (JAX
  gives NaN there). ``poisson`` uses inversion below ``lam = 10`` (JAX:
  Knuth's multiplication) and the same PTRS rejection from 10 on, vectorized
  in rounds, so its draws differ from JAX's.
- Default dtypes are NumPy's (float64 / int64), as JAX's with x64 enabled.
  Keys are raw arrays only (no typed ``jax.random.key`` arrays, no
  ``impl=``), and ``split(key, num)`` returns shape ``(num, 2)``; so
  ``key_data`` and ``wrap_key_data`` return their (checked) argument itself.
- Bad parameters raise (``gamma``'s ``a <= 0``, ``poisson``'s ``lam < 0``,
  a ``cov`` that is not positive definite for ``'cholesky'``) where JAX
  returns NaN or -1.

Derivatives. Keys are integer arrays, so a function ``f(x, k)`` that uses
``normal(k, ...)`` has the noise as a constant. Float parameters of a
distribution are differentiated as in JAX, the key held fixed: each sampler
with such parameters is a ``custom_jvp`` function (``uniform``:
``minval + (maxval - minval) * u``; ``truncated_normal``: its inverse CDF;
``multivariate_normal``: ``mean + cholesky(cov) @ z``; the gamma draws: the
implicit reparameterization gradient ``-(dF/da) / f``), and ``gamma``,
``loggamma``, ``beta``, ``dirichlet``, ``chisquare``, ``t``,
``generalized_normal`` and ``ball`` are written in the NumPy codax reads, so
their derivatives are the chain rule over the gamma draws. Integer and boolean
draws pass their parameters through ``stop_gradient`` (zero gradients, as
JAX's). Differences: no second derivatives of gamma draws (JAX has none
either); ``multivariate_normal`` differentiates ``method='cholesky'`` only;
``permutation``/``choice`` of a differentiated array is an error (index it
with drawn indices instead, which codax differentiates).

Under ``codax.vmap`` keys batch as in JAX: with a batch of keys (shape
``(B, 2)``, e.g. from ``split(key, B)``), ``vmap(f)(keys)`` draws, for each
key, exactly the bits ``f(key)`` draws. Every public function carries a
*batched form*, ``fn.__codax_batched__``: the same arguments, with a key of
shape ``(B, 2)`` (``key``: an integer array of seeds), returning the draws of
every key stacked on a new leading axis. vmap calls it for a call whose only
batched argument is the key (other batched arguments: one call per example).
Each function is written once for keys of shape ``(*batch, 2)`` (Threefry is
element-wise, so the key words broadcast over the counter grid), so a batched
form takes a grid of keys ``(B1, B2, 2)`` as well (vmap of vmap), and the public
functions are wrappers codax can read, so ``vmap(random.normal, in_axes=(0,
None))(keys, (3,))`` works too. Each batched form states the rank of its draws
(``form.rank``, see runtime/batched_forms.py) for the batch pass, and the
call of its implementation it makes (``form.differentiable``), which
derivatives of vmapped code differentiate for all keys at once: a float
parameter differentiated inside a vmap over keys has the derivative it has
without vmap (first order).
"""
import inspect
import math

import numpy as np

from runtime import Abstract, array_module, stop_gradient
from transformer.errors import SourceError

from .custom import custom_jvp

__all__ = ['key', 'PRNGKey', 'split', 'fold_in', 'key_data', 'wrap_key_data', 'bits',
           'uniform', 'normal', 'truncated_normal', 'bernoulli', 'categorical', 'gumbel',
           'randint', 'permutation', 'choice', 'gamma', 'beta', 'dirichlet', 'exponential',
           'laplace', 'logistic', 'cauchy', 'rademacher', 'poisson', 'chisquare', 't',
           'loggamma', 'generalized_normal', 'multivariate_normal', 'orthogonal', 'ball',
           'maxwell', 'threefry_2x32']

_MASK32 = 0xFFFFFFFF
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


# ----------------------------------------------------------------------------
# Threefry-2x32
# ----------------------------------------------------------------------------

def _rotl(xp, v, r):
    return (v << xp.uint32(r)) | (v >> xp.uint32(32 - r))


def threefry2x32_p(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds, on uint32 arrays: the key words k0, k1 and the
    counter words x0, x1 broadcast together. Returns the pair of output words
    (y0, y1), of the broadcast shape."""
    xp = array_module(k0, k1, x0, x1)
    k0 = xp.asarray(k0, dtype=xp.uint32)
    k1 = xp.asarray(k1, dtype=xp.uint32)
    x0 = xp.asarray(x0, dtype=xp.uint32)
    x1 = xp.asarray(x1, dtype=xp.uint32)
    shape = np.broadcast_shapes(k0.shape, k1.shape, x0.shape, x1.shape)
    # work on 1-d arrays so that uint32 arithmetic wraps without scalar warnings
    x0 = xp.broadcast_to(x0, shape).reshape(-1).copy()
    x1 = xp.broadcast_to(x1, shape).reshape(-1).copy()
    k0, k1 = (k.reshape(-1) if k.ndim == 0 else xp.broadcast_to(k, shape).reshape(-1)
              for k in (k0, k1))
    ks = (k0, k1, k0 ^ k1 ^ xp.uint32(_PARITY))
    x0 += ks[0]
    x1 += ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 += x1
            x1 = _rotl(xp, x1, r)
            x1 ^= x0
        x0 += ks[(i + 1) % 3]
        x1 += ks[(i + 2) % 3] + xp.uint32(i + 1)
    return x0.reshape(shape), x1.reshape(shape)


def threefry_2x32(keypair, count):
    """JAX's ``threefry_2x32(keypair, count)``: hash a uint32 array of counts
    (split into two halves, padded to even length) with the key."""
    xp = array_module(keypair, count)
    keypair = xp.asarray(keypair, dtype=xp.uint32)
    count = xp.asarray(count, dtype=xp.uint32)
    flat = count.reshape(-1)
    odd = flat.shape[0] % 2
    if odd:
        flat = xp.concatenate([flat, xp.zeros(1, dtype=xp.uint32)])
    half = flat.shape[0] // 2
    y0, y1 = threefry2x32_p(keypair[0], keypair[1], flat[:half], flat[half:])
    out = xp.concatenate([y0, y1])
    if odd:
        out = out[:-1]
    return out.reshape(count.shape)


def _as_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def _iota_2x32(xp, shape):
    """A uint64 iota over shape, as (high words, low words) uint32 arrays."""
    n = math.prod(shape)
    idx = xp.arange(n, dtype=xp.uint64).reshape(shape)
    hi = (idx >> xp.uint64(32)).astype(xp.uint32)
    lo = (idx & xp.uint64(_MASK32)).astype(xp.uint32)
    return hi, lo


# ----------------------------------------------------------------------------
# keys: one key has shape (2,); the implementations below take keys of shape
# (*batch, 2) and return batch + the shape of one draw
# ----------------------------------------------------------------------------

def _key(key):
    """`key`, checked: a uint32 array of shape (2,)."""
    xp = array_module(key)
    key = xp.asarray(key)
    if key.shape != (2,) or key.dtype != np.uint32:
        raise TypeError(f'codax.random expects a raw key: a uint32 array of shape (2,), '
                        f'got {key.dtype} {key.shape} (make one with codax.random.key(seed))')
    return key


def _keys(keys):
    """`keys`, checked: a batch of keys (vmap's batched forms), uint32 of shape (B, 2)."""
    xp = array_module(keys)
    keys = xp.asarray(keys)
    if keys.ndim < 2 or keys.shape[-1] != 2 or keys.dtype != np.uint32:
        raise TypeError(f'codax.random batched over keys expects raw keys: a uint32 array '
                        f'of shape (B, 2), got {keys.dtype} {keys.shape} (make them with '
                        f'codax.random.split(key, B))')
    return keys


def _key_data(keys):
    """`keys`, checked: raw keys of any batch shape, uint32 of shape (..., 2)."""
    xp = array_module(keys)
    keys = xp.asarray(keys)
    if keys.ndim < 1 or keys.shape[-1] != 2 or keys.dtype != np.uint32:
        raise TypeError(f'codax.random keys are raw uint32 arrays of shape (..., 2), got '
                        f'{keys.dtype} {keys.shape}')
    return keys


def _wrap_key_data(data, impl):
    if impl not in (None, 'threefry2x32'):
        raise ValueError(f"codax.random has one generator, impl='threefry2x32', got {impl!r}")
    return _key_data(data)


def _words(key, ndim):
    """The key words (k0, k1), to broadcast against a counter grid of rank
    ndim: scalars for one key, shape batch + (1,) * ndim for a batch."""
    if key.ndim == 1:
        return key[0], key[1]
    lead = key.shape[:-1] + (1,) * ndim
    return key[..., 0].reshape(lead), key[..., 1].reshape(lead)


def _pair(keys):
    """The two keys of split(key, 2), for one key or a batch."""
    return keys[..., 0, :], keys[..., 1, :]


def _seed_key(seed):
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        if getattr(seed, 'shape', None) == () and np.issubdtype(np.asarray(seed).dtype,
                                                                np.integer):
            seed = int(seed)
        else:
            raise TypeError(f'key seed must be an integer scalar, got {seed!r}')
    seed = int(seed)
    return np.array([(seed >> 32) & _MASK32, seed & _MASK32], dtype=np.uint32)


def _seed_keys(seeds):
    """key's batched form: one key per seed of an integer array."""
    xp = array_module(seeds)
    seeds = xp.asarray(seeds)
    if seeds.dtype.kind not in 'iu':
        raise TypeError(f'key seeds must be integers, got {seeds.dtype}')
    seeds = seeds.astype(np.int64 if seeds.dtype.kind == 'i' else np.uint64)
    return xp.stack([(seeds >> 32) & _MASK32, seeds & _MASK32], axis=-1).astype(np.uint32)


def _split(key, num):
    xp = array_module(key)
    shape = _as_shape(num)
    hi, lo = _iota_2x32(xp, shape)
    b0, b1 = threefry2x32_p(*_words(key, len(shape)), hi, lo)
    return xp.stack([b0, b1], axis=-1)


def _fold_in(key, data):
    xp = array_module(key)
    data = int(data) & _MASK32
    y0, y1 = threefry2x32_p(*_words(key, 1), xp.zeros(1, dtype=xp.uint32),
                            xp.full(1, data, dtype=xp.uint32))
    return xp.concatenate([y0, y1], axis=-1)


def _random_bits(key, bit_width, shape):
    xp = array_module(key)
    hi, lo = _iota_2x32(xp, shape)
    b0, b1 = threefry2x32_p(*_words(key, len(shape)), hi, lo)
    if bit_width == 64:
        return (b0.astype(xp.uint64) << xp.uint64(32)) | b1.astype(xp.uint64)
    out = b0 ^ b1
    if bit_width == 32:
        return out
    return out.astype(_UINT[bit_width])


def _bits(key, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != 'u':
        raise TypeError(f'bits needs an unsigned integer dtype, got {dtype}')
    return _random_bits(key, dtype.itemsize * 8, _as_shape(shape))


# ----------------------------------------------------------------------------
# continuous distributions
# ----------------------------------------------------------------------------

def _dtype(dtype):
    """A dtype argument as a NumPy dtype (None stays None): what derivative
    code carries, rather than a scalar type such as np.float64."""
    return None if dtype is None else np.dtype(dtype)


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != 'f':
        raise TypeError(f'expected a floating-point dtype, got {dtype}')
    return dtype


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split_float(xp, a):
    c = 134217729.0 * a  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def _fma(xp, a, b, c):
    """a * b + c rounded once, as XLA's fused multiply-add computes it (so that
    uniform with minval/maxval matches JAX bit for bit). Narrow floats go
    through float64; float64 uses error-free transformations (Dekker, Knuth)."""
    dtype = a.dtype
    if dtype != np.float64:
        wide = a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)
        return wide.astype(dtype)
    with np.errstate(over='ignore', invalid='ignore'):
        p = a * b
        ah, al = _split_float(xp, a)
        bh, bl = _split_float(xp, xp.broadcast_to(b, p.shape))
        e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
        s, t = _two_sum(p, xp.broadcast_to(c, p.shape))
        out = s + (t + e)
    return xp.where(xp.isfinite(out), out, p + c)


def _unit_uniform(key, shape, dtype):
    """Uniform floats in [0, 1): the top mantissa bits of random bits, as a
    float in [1, 2), minus 1 (JAX's construction), of batch + shape."""
    dtype = _float_dtype(dtype)
    info = np.finfo(dtype)
    nbits, nmant = info.bits, info.nmant
    udtype = _UINT[nbits]
    b = _random_bits(key, nbits, _as_shape(shape))
    fbits = (b >> udtype(nbits - nmant)) | np.array(1.0, dtype).view(udtype)
    return fbits.view(dtype) - dtype.type(1.0)


@custom_jvp
def _uniform(key, shape, dtype, minval, maxval):
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    shape = _as_shape(shape)
    floats = _unit_uniform(key, shape, dtype)
    minval = xp.asarray(minval, dtype=dtype)
    maxval = xp.asarray(maxval, dtype=dtype)
    out = xp.reshape(_fma(xp, floats, maxval - minval, minval), key.shape[:-1] + shape)
    return xp.maximum(minval, out).astype(dtype, copy=False)


@_uniform.defjvp
def _uniform_jvp(primals, tangents):
    """minval + (maxval - minval) * w, w the unit draws of the key (constants);
    minval where the draws are raised to it (maxval < minval)."""
    key, shape, dtype, minval, maxval = primals
    dminval, dmaxval = tangents[3], tangents[4]
    out = _uniform(key, shape, dtype, minval, maxval)
    w = stop_gradient(_unit_uniform(key, shape, dtype))
    tangent = np.where(np.greater(out, minval), dminval + (dmaxval - dminval) * w, dminval)
    return out, tangent.astype(out.dtype)


def _special(xp, name):
    """erf / erfinv from scipy.special (cupyx.scipy.special on CuPy), or None."""
    try:
        if xp is np:
            import scipy.special as special
        else:
            import cupyx.scipy.special as special
        return getattr(special, name)
    except ImportError:
        return None


def _special_or_math(xp, name, math_fn, x):
    """scipy.special's `name` (cupyx's on CuPy) of x; without SciPy, the
    `math` module's `math_fn` element by element (slow, but as exact)."""
    fn = _special(xp, name)
    if fn is not None:
        return fn(x)
    x = xp.asarray(x)
    values = np.vectorize(math_fn, otypes=[np.float64])(np.asarray(
        x.get() if hasattr(x, 'get') else x, dtype=np.float64))
    return xp.asarray(values).astype(x.dtype if x.dtype.kind == 'f' else np.float64)


def _erf(xp, x):
    return _special_or_math(xp, 'erf', math.erf, x)


def _erfinv(xp, u):
    fn = _special(xp, 'erfinv')
    if fn is not None:
        return fn(u)
    # Winitzki's approximation, then Newton steps on erf(y) = u
    dtype = u.dtype
    u64 = u.astype(np.float64)
    a = 0.147
    ln = xp.log1p(-u64 * u64)
    t = 2 / (math.pi * a) + ln / 2
    y = xp.sign(u64) * xp.sqrt(xp.sqrt(t * t - ln / a) - t)
    for _ in range(4):
        err = _erf(xp, y) - u64
        y = y - err / (2 / math.sqrt(math.pi) * xp.exp(-y * y))
    y = xp.where(xp.abs(u64) == 1, xp.sign(u64) * np.inf, y)
    return y.astype(dtype)


def _normal(key, shape, dtype):
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    lo = np.nextafter(np.array(-1., dtype), np.array(0., dtype))
    u = _uniform(key, shape, dtype, lo, 1.)
    return (dtype.type(np.sqrt(2)) * _erfinv(xp, u)).astype(dtype, copy=False)


def _shape_of(x):
    """The shape of an array or a number (or nested list) of them."""
    shape = getattr(x, 'shape', None)
    return tuple(shape) if shape is not None else np.shape(x)


def _broadcast_or(shape, *params):
    """`shape`, or for None the parameters' shapes broadcast together."""
    return np.broadcast_shapes(*map(_shape_of, params)) if shape is None else shape


@custom_jvp
def _truncated_normal(key, lower, upper, shape, dtype):
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    lower = xp.asarray(lower, dtype=dtype)
    upper = xp.asarray(upper, dtype=dtype)
    shape = _broadcast_or(shape, lower, upper)
    sqrt2 = dtype.type(np.sqrt(2))
    a = _erf(xp, lower / sqrt2).astype(dtype)
    b = _erf(xp, upper / sqrt2).astype(dtype)
    u = _uniform(key, shape, dtype, a, b)
    out = sqrt2 * _erfinv(xp, u)
    lo, hi = _open_interval(lower, upper)
    return xp.clip(out, lo, hi).astype(dtype, copy=False)


def _open_interval(lower, upper):
    """The ends of (lower, upper) that truncated_normal clips its draws to."""
    xp = array_module(lower, upper)
    return (xp.nextafter(lower, xp.asarray(np.inf, dtype=lower.dtype)),
            xp.nextafter(upper, xp.asarray(-np.inf, dtype=upper.dtype)))


def _inside(out, lower, upper):
    """Where a truncated normal draw was not clipped to an end of its interval."""
    xp = array_module(out)
    lo, hi = _open_interval(xp.asarray(lower, dtype=out.dtype), xp.asarray(upper, dtype=out.dtype))
    return ((out > lo) & (out < hi)).astype(out.dtype)


@_truncated_normal.defjvp
def _truncated_normal_jvp(primals, tangents):
    """out = sqrt(2) erfinv(u) with u = erf(lower / sqrt(2)) * (1 - w) +
    erf(upper / sqrt(2)) * w, w the unit draws: d out = exp(out**2 / 2) *
    ((1 - w) exp(-lower**2 / 2) d lower + w exp(-upper**2 / 2) d upper), and
    zero where the draw was clipped to the interval (JAX's clip bounds carry
    no derivative either)."""
    key, lower, upper, shape, dtype = primals
    dlower, dupper = tangents[1], tangents[2]
    out = _truncated_normal(key, lower, upper, shape, dtype)
    w = stop_gradient(_unit_uniform(key, _broadcast_or(shape, lower, upper), dtype))
    half = 0.5 * out * out
    slope_lower = (1. - w) * np.exp(half - 0.5 * np.square(lower))
    slope_upper = w * np.exp(half - 0.5 * np.square(upper))
    inside = stop_gradient(_inside(out, lower, upper))
    return out, ((slope_lower * dlower + slope_upper * dupper) * inside).astype(out.dtype)


def _gumbel(key, shape, dtype):
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    u = _uniform(key, shape, dtype, np.finfo(dtype).tiny, 1.)
    return -xp.log(-xp.log(u))


# exponential, laplace, logistic and cauchy are JAX's transforms of one uniform
# per element (the same uniforms for the same key, shape and dtype)

def _exponential(key, shape, dtype):
    xp = array_module(key)
    u = _uniform(key, shape, dtype, 0., 1.)
    return -xp.log1p(-u)                      # 1 - u in (0, 1]: no log(0)


def _laplace(key, shape, dtype):
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    u = _uniform(key, shape, dtype, -1. + np.finfo(dtype).epsneg, 1.)
    return xp.sign(u) * xp.log1p(-xp.abs(u))


def _logistic(key, shape, dtype):
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    u = _uniform(key, shape, dtype, np.finfo(dtype).tiny, 1.)
    return xp.log(u) - xp.log1p(-u)


def _cauchy(key, shape, dtype):
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    u = _uniform(key, shape, dtype, np.finfo(dtype).eps, 1.)
    return xp.tan(dtype.type(np.pi) * (u - dtype.type(0.5)))


def _rejection_rounds(key, shape, propose, name):
    """Rejection sampling, vectorized: round i calls propose(k1, k2), with the
    two keys split from fold_in(key, i), for a proposal and its acceptance
    for every element, and fills in the elements not yet accepted. (For a
    batch of keys the rounds go on until every key's draws are accepted:
    further rounds leave accepted elements as they are, so each key gets its
    own draws.) Returns float64 draws of batch + shape."""
    xp = array_module(key)
    out = xp.zeros(key.shape[:-1] + shape, dtype=np.float64)
    pending = xp.ones(key.shape[:-1] + shape, dtype=bool)
    for i in range(1000):
        value, accept = propose(*_pair(_split(_fold_in(key, i), 2)))
        out = xp.where(pending & accept, value, out)
        pending = pending & ~accept
        if not bool(pending.any()):
            return out
    raise RuntimeError(f'{name}: rejection sampling did not finish')


def _gamma_one(key, alpha, shape):
    """Marsaglia-Tsang for alpha >= 1: the proposal d * v from a normal x,
    accepted by a uniform u."""
    xp = array_module(key)
    d = alpha - 1. / 3.
    c = 1. / xp.sqrt(9. * d)

    def propose(kn, ku):
        x = _normal(kn, shape, np.float64)
        u = _uniform(ku, shape, np.float64, 0., 1.)
        v = (1. + c * x) ** 3
        positive = v > 0
        logv = xp.log(xp.where(positive, v, 1.))
        return d * v, positive & (xp.log(u) < 0.5 * x * x + d - d * v + d * logv)
    return _rejection_rounds(key, shape, propose, 'gamma')


def _batch_shape(name, shape, *param_shapes):
    """The draws' batch shape: `shape`, checked to take the parameters' batch
    shapes by broadcasting (JAX's rule), or those broadcast for None."""
    try:
        batch = np.broadcast_shapes(*param_shapes)
        if shape is None:
            return batch
        shape = _as_shape(shape)
        if np.broadcast_shapes(shape, batch) == shape:
            return shape
    except ValueError:
        pass
    raise ValueError(f'{name}: parameters of (batch) shapes {list(param_shapes)} do not '
                     f'broadcast to shape {shape}')


def _positive(xp, x, message):
    """x as float64, checked to be > 0 everywhere (NaN is not)."""
    x = xp.asarray(x, dtype=np.float64)
    if not bool((x > 0).all()):
        raise ValueError(message)
    return x


@custom_jvp
def _gamma_draws(key, a, shape, log_space, name, param):
    """Gamma(a, 1) draws in float64, of shape (a's if None); with log_space,
    their logs, exact also for tiny a, where the draws underflow to 0. `name`
    and `param` name the sampler and its parameter in errors."""
    xp = array_module(key)
    a = _positive(xp, a, f'{name} needs {param} > 0')
    shape = _batch_shape(name, shape, a.shape)
    a = xp.broadcast_to(a, shape)
    small = a < 1
    kg, kb = _pair(_split(key, 2))
    g = _gamma_one(kg, xp.where(small, a + 1., a), shape)
    u = _uniform(kb, shape, np.float64, np.finfo(np.float64).tiny, 1.)
    if log_space:
        return xp.log(g) + xp.where(small, xp.log(u) / a, 0.)
    return xp.where(small, g * u ** (1. / a), g)


@_gamma_draws.defjvp
def _gamma_draws_jvp(primals, tangents):
    """The implicit reparameterization gradient (Figurnov et al., "Implicit
    reparameterization gradients", NeurIPS 2018), as JAX's: a draw x moves
    with a so that its CDF F(x; a) stays put, dx/da = -(dF/da) / f(x; a),
    whatever algorithm drew it."""
    key, a, shape, log_space, name, param = primals
    out = _gamma_draws(key, a, shape, log_space, name, param)
    return out, _gamma_slope(out, a, log_space) * tangents[1]


# ---- dx/da for Gamma(a) draws x: dF/da of the regularized incomplete gamma
# function P(a, x) = F(x; a), over the density f(x; a) = x**(a-1) e**-x / G(a).

_DIGAMMA_SHIFT = 10      # psi's recurrence lifts its argument to >= 10 ...
# ... where the asymptotic series' terms B_2k / (2k x**2k), k = 1..7, leave
# an error below 1e-16 (Abramowitz & Stegun 6.3.18)
_DIGAMMA_TERMS = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)


def _digamma(xp, x):
    """psi(x) = d log G(x) / dx for x > 0, in float64, on any array module."""
    shift = xp.zeros_like(x)
    for _ in range(_DIGAMMA_SHIFT):              # psi(x) = psi(x + 1) - 1 / x
        small = x < _DIGAMMA_SHIFT
        shift = shift - xp.where(small, 1. / xp.where(small, x, 1.), 0.)
        x = xp.where(small, x + 1., x)
    r = 1. / (x * x)
    tail = xp.zeros_like(x)
    for coefficient in reversed(_DIGAMMA_TERMS):
        tail = (tail + coefficient) * r
    return shift + xp.log(x) - 0.5 / x - tail


_EPS = np.finfo(np.float64).eps
_MAX_STEPS = 100000          # each method below converges in O(sqrt(a)) steps
_WILSON_HILFERTY_FROM = 1e7  # its relative error there: below 1e-10 (a**-1.5)


def _steps(name, converged):
    """The steps 1, 2, ... of an elementwise iteration, until every element has
    converged at some step (`converged()`: where it has at this one)."""
    done = False
    for step in range(1, _MAX_STEPS):
        yield step
        done = done | converged()
        if bool(done.all()):
            return
    raise RuntimeError(f'{name} did not converge')


def _series_slope(xp, a, x, logx):
    """d log x / da where x < a + 1, by P's power series differentiated term
    by term: P = x**a e**-x / G(a + 1) * S, S = sum_n t_n, t_n = t_(n-1) x /
    (a + n), so dP/da = P (log x - psi(a + 1)) + x**a e**-x / G(a + 1) dS/da,
    dS/da = -sum_n t_n h_n with h_n = sum_(k<=n) 1 / (a + k); over f(x; a),
    the powers and G cancel to x / a."""
    term, total, dtotal, h = xp.ones_like(x), xp.ones_like(x), xp.zeros_like(x), xp.zeros_like(x)
    for n in _steps('gamma series', lambda: term <= _EPS * total):
        h = h + 1. / (a + n)
        term = term * x / (a + n)
        total = total + term
        dtotal = dtotal - term * h
    return -(total * (logx - _digamma(xp, a + 1.)) + dtotal) / a


def _continued_fraction_slope(xp, a, x, logx):
    """d log x / da where x >= a + 1, from the complement Q = 1 - P =
    x**a e**-x / G(a) / g with the continued fraction g = b_1 + c_2 / (b_2 +
    c_3 / (b_3 + ...)), b_n = x + 2n - 1 - a, c_n = -(n - 1)(n - 1 - a),
    evaluated by Lentz's method carrying each quantity's derivative in a.
    dx/da = dQ/da / f = x (q (log x - psi(a)) + dq/da), q = 1 / g."""
    tiny = 1e-300
    b, db = x + 1. - a, -xp.ones_like(x)
    g, dg = b, db
    c, dc = g, dg                    # Lentz's C_n = b_n + c_n / C_(n-1) ...
    d, dd = xp.zeros_like(x), xp.zeros_like(x)      # ... and D_n = 1 / (b_n + c_n D_(n-1))
    state = {}

    def converged():
        return (xp.abs(state['delta'] - 1.) <= _EPS) \
            & (xp.abs(state['g_ddelta']) <= _EPS * xp.abs(dg))
    for n in _steps('gamma continued fraction', converged):
        cn, dcn = -(n * (n - a)), n * xp.ones_like(x)       # c_(n+1), its derivative
        b = b + 2.
        den = b + cn * d
        den = xp.where(den == 0, tiny, den)
        d, dd = 1. / den, -(db + dcn * d + cn * dd) / (den * den)
        c_new = b + cn / c
        dc = db + dcn / c - cn * dc / (c * c)
        c = xp.where(c_new == 0, tiny, c_new)
        delta, ddelta = c * d, dc * d + c * dd
        state['delta'], state['g_ddelta'] = delta, g * ddelta
        g, dg = g * delta, dg * delta + g * ddelta
    return (logx - _digamma(xp, a)) / g - dg / (g * g)


def _wilson_hilferty_slope(xp, a, x):
    """d log x / da for large a, where F(x; a) = Phi(z) with z = 3 sqrt(a)
    ((x / a)**(1/3) - 1 + 1 / (9 a)) to O(a**-1.5) (Wilson and Hilferty
    1931): dx/da = -(dz/da) / (dz/dx)."""
    c = xp.cbrt(x / a)
    root = xp.sqrt(a)
    dz_dx = root * c / x
    dz_da = -root * c / a - 1. / (3. * a * root) + 1.5 * (c - 1. + 1. / (9. * a)) / root
    return -dz_da / dz_dx / x


@custom_jvp
def _gamma_slope(out, a, log_space):
    """d out / da for Gamma(a) draws `out` (their logs with log_space), in
    float64: the series for x < a + 1, the continued fraction beyond (each as
    Numerical Recipes chooses them for P and Q), Wilson-Hilferty for huge a."""
    xp = array_module(out)
    logx = out if log_space else xp.log(out)
    a = xp.broadcast_to(xp.asarray(a, dtype=np.float64), out.shape)
    x = xp.exp(logx)
    slope = xp.zeros_like(x)
    huge = a >= _WILSON_HILFERTY_FROM
    series = (x < a + 1.) & ~huge
    fraction = ~series & ~huge
    for where, method in ((series, _series_slope), (fraction, _continued_fraction_slope)):
        if bool(where.any()):
            slope[where] = method(xp, a[where], x[where], logx[where])
    if bool(huge.any()):
        slope[huge] = _wilson_hilferty_slope(xp, a[huge], x[huge])
    if log_space:
        return slope
    return xp.where(x > 0, x * slope, 0.)          # x underflowed to 0: it stays there


@_gamma_slope.defjvp
def _gamma_slope_jvp(primals, tangents):
    raise SourceError('codax.random: a draw from gamma (or from beta, dirichlet, chisquare, '
                      't, loggamma, generalized_normal or ball, which use it) has a first '
                      'derivative with respect to its parameters, but no second one (as in '
                      'JAX): differentiate it once')


def _gamma(key, a, shape, dtype):
    return _gamma_draws(key, a, shape, False, 'gamma', 'a').astype(_float_dtype(dtype))


def _loggamma(key, a, shape, dtype):
    return _gamma_draws(key, a, shape, True, 'loggamma', 'a').astype(_float_dtype(dtype))


# beta, dirichlet, chisquare, t and generalized_normal are written in the
# NumPy codax reads, so that their derivatives are those of the gamma draws
# they are made of (shapes and checks: of values without derivatives)

def _beta(key, a, b, shape, dtype):
    shape = _broadcast_or(_as_shape(shape), stop_gradient(a), stop_gradient(b))
    ka, kb = _pair(_split(key, 2))
    x = _gamma_draws(ka, a, shape, False, 'beta', 'a')
    y = _gamma_draws(kb, b, shape, False, 'beta', 'b')
    return (x / (x + y)).astype(_float_dtype(dtype))


def _dirichlet_shape(alpha, shape):
    """The draws' shape: shape + alpha.shape[-1:] (for None, alpha's)."""
    alpha_shape = _shape_of(alpha)
    if len(alpha_shape) < 1:
        raise ValueError('dirichlet needs alpha with at least one dimension')
    lead = alpha_shape[:-1] if shape is None else _as_shape(shape)
    return lead + alpha_shape[-1:]


def _dirichlet(key, alpha, shape, dtype):
    g = _gamma_draws(key, alpha, _dirichlet_shape(stop_gradient(alpha), shape), False,
                     'dirichlet', 'alpha')
    return (g / g.sum(axis=-1, keepdims=True)).astype(_float_dtype(dtype))


def _chisquare(key, df, shape, dtype):
    half = np.multiply(df, 0.5)
    return (2. * _gamma_draws(key, half, shape, False, 'chisquare', 'df')).astype(
        _float_dtype(dtype))


def _t(key, df, shape, dtype):
    """Student's t as JAX draws it: a normal over sqrt(Gamma(df/2) / (df/2))."""
    dtype = _float_dtype(dtype)
    _check_positive(stop_gradient(df), 't needs df > 0')
    shape = _batch_shape('t', shape, _shape_of(stop_gradient(df)))
    kn, kg = _pair(_split(key, 2))
    half = np.multiply(df, 0.5)
    x = _normal(kn, shape, np.float64)
    return (x * np.sqrt(half / _gamma_draws(kg, half, shape, False, 't', 'df'))).astype(
        dtype)


def _check_positive(x, message):
    _positive(array_module(x), x, message)


def _generalized_normal(key, p, shape, dtype):
    """Density proportional to exp(-|x|**p): a random sign times Gamma(1/p)**(1/p)."""
    dtype = _float_dtype(dtype)
    _check_positive(stop_gradient(p), 'generalized_normal needs p > 0')
    kg, ks = _pair(_split(key, 2))
    inverse = np.divide(1., p, dtype=np.float64)
    g = _gamma_draws(kg, inverse, _as_shape(shape), False, 'generalized_normal', 'p')
    return (_rademacher(ks, shape, np.float64) * g ** inverse).astype(dtype)


# ----------------------------------------------------------------------------
# vectors and matrices
# ----------------------------------------------------------------------------

_COV_FACTORS = ('cholesky', 'eigh', 'svd')


def _cov_factor(xp, cov, method):
    """A matrix F with F @ F.T == cov, by JAX's three methods."""
    if method == 'cholesky':
        try:
            return xp.linalg.cholesky(cov)
        except np.linalg.LinAlgError as error:
            raise ValueError(f'multivariate_normal: cov is not positive definite ({error}); '
                             f"for a singular covariance use method='eigh' or 'svd'") from None
    if method == 'eigh':
        w, v = xp.linalg.eigh(cov)
        return v * xp.sqrt(xp.maximum(w, 0))[..., None, :]   # rounding: w >= -tiny for PSD cov
    u, s, _ = xp.linalg.svd(cov)
    return u * xp.sqrt(s)[..., None, :]


@custom_jvp
def _multivariate_normal(key, mean, cov, shape, dtype, method):
    xp = array_module(key)
    mean, cov = xp.asarray(mean), xp.asarray(cov)
    dtype = _float_dtype(np.result_type(mean.dtype, cov.dtype, 1.0) if dtype is None else dtype)
    if method not in _COV_FACTORS:
        raise ValueError(f"multivariate_normal: method must be one of 'cholesky', 'eigh', "
                         f"'svd', got {method!r}")
    if mean.ndim < 1:
        raise ValueError('multivariate_normal needs mean of shape (..., n), got a scalar')
    n = mean.shape[-1]
    if cov.ndim < 2 or cov.shape[-2:] != (n, n):
        raise ValueError(f'multivariate_normal needs cov of shape (..., {n}, {n}) for mean of '
                         f'shape {mean.shape}, got {cov.shape}')
    shape = _batch_shape('multivariate_normal', shape, mean.shape[:-1], cov.shape[:-2])
    work = np.promote_types(dtype, np.float32)           # linalg has no float16
    factor = _cov_factor(xp, cov.astype(work), method)
    z = _normal(key, shape + (n,), dtype).astype(work)
    # factor @ z as products summed along the last axis: the same sums for one
    # key and for a batch of keys (a matrix product may block them differently)
    out = mean.astype(work) + xp.sum(factor * z[..., None, :], axis=-1)
    return out.astype(dtype)


def _mvn_normals(key, mean, cov, shape, dtype):
    """The standard normal vectors z of multivariate_normal(key, mean, cov, ...)."""
    mean_shape, cov_shape = _shape_of(mean), _shape_of(cov)
    dtype = _float_dtype(np.result_type(mean, cov, 1.0) if dtype is None else dtype)
    shape = _batch_shape('multivariate_normal', shape, mean_shape[:-1], cov_shape[:-2])
    return _normal(key, shape + mean_shape[-1:], dtype)


@_multivariate_normal.defjvp
def _multivariate_normal_jvp(primals, tangents):
    """mean + L z with L = cholesky(cov): d mean + dL z, with dL = L Phi(L^-1
    sym(dcov) L^-T), Phi the lower triangle with half the diagonal (the
    tangent codax's cholesky primitive uses, written out so that reverse mode
    transposes it)."""
    key, mean, cov, shape, dtype, method = primals
    dmean, dcov = tangents[1], tangents[2]
    if method != 'cholesky':
        raise SourceError(f"codax differentiates multivariate_normal with method='cholesky' "
                          f"only, not {method!r} (codax has no derivative of eigh or svd); for "
                          f"derivatives with respect to the mean, add it to draws of mean zero")
    out = _multivariate_normal(key, mean, cov, shape, dtype, method)
    z = stop_gradient(_mvn_normals(key, mean, cov, shape, dtype))
    factor = np.linalg.cholesky(cov)
    sym = 0.5 * (dcov + np.swapaxes(dcov, -1, -2))
    inner = np.linalg.solve(factor, np.swapaxes(np.linalg.solve(factor, sym), -1, -2))
    dfactor = np.matmul(factor, np.tril(inner) - 0.5 * inner * np.eye(inner.shape[-1]))
    tangent = dmean + (dfactor * z[..., None, :]).sum(axis=-1)
    return out, tangent.astype(out.dtype)


def _size(value, what):
    """A dimension argument, checked: a non-negative integer."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 0:
        raise TypeError(f'{what} must be a non-negative integer, got {value!r}')
    return int(value)


def _orthogonal(key, n, shape, dtype, m):
    """Haar-random orthogonal matrices (Mezzadri 2007): Q of the QR
    decomposition of a normal matrix, its columns' signs flipped to make R's
    diagonal positive (without that, Q is not uniform over the group)."""
    xp = array_module(key)
    dtype = _float_dtype(dtype)
    n = _size(n, 'orthogonal: n')
    m = n if m is None else _size(m, 'orthogonal: m')
    z = _normal(key, _as_shape(shape) + (max(n, m), min(n, m)), dtype)
    q, r = xp.linalg.qr(z.astype(np.promote_types(dtype, np.float32)))
    sign = xp.where(xp.diagonal(r, axis1=-2, axis2=-1) < 0, -1., 1.).astype(q.dtype)
    q = q * sign[..., None, :]
    return (q if n >= m else xp.swapaxes(q, -1, -2)).astype(dtype)


def _ball(key, d, p, shape, dtype):
    """Uniform draws from the unit p-norm ball in d dimensions (Barthe, Guédon,
    Mendelson and Naor 2005): generalized normals over the p-norm of them
    together with one exponential."""
    dtype = _float_dtype(dtype)
    d = _size(d, 'ball: d')
    _check_ball_p(stop_gradient(p))
    p = float(p)
    shape = _as_shape(shape)
    kg, ke = _pair(_split(key, 2))
    g = _generalized_normal(kg, p, shape + (d,), np.float64)
    e = _exponential(ke, shape, np.float64)
    radius = ((np.abs(g) ** p).sum(axis=-1) + e) ** (1. / p)
    return (g / radius[..., None]).astype(dtype)


def _check_ball_p(p):
    if np.ndim(p) != 0:
        raise TypeError(f'ball: p must be a number, got {p!r}')
    if not float(p) > 0:
        raise ValueError('ball needs p > 0')


def _maxwell(key, shape, dtype):
    """The length of a 3-d standard normal vector."""
    xp = array_module(key)
    x = _normal(key, _as_shape(shape) + (3,), dtype)
    return xp.sqrt(xp.sum(x * x, axis=-1))


# ----------------------------------------------------------------------------
# discrete distributions
# ----------------------------------------------------------------------------

def _bernoulli(key, p, shape):
    xp = array_module(key)
    p = xp.asarray(p)
    if p.dtype.kind != 'f':
        p = p.astype(np.float64)
    shape = p.shape if shape is None else _as_shape(shape)
    return _uniform(key, shape, p.dtype, 0., 1.) < p


def _rademacher(key, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind not in 'if':
        raise TypeError(f'rademacher needs a signed integer or float dtype, got {dtype}')
    heads = _bernoulli(key, 0.5, _as_shape(shape))
    return (2 * heads.astype(dtype) - 1).astype(dtype)


_POISSON_INVERSION_BELOW = 10.      # lam below: inversion; from there on: PTRS


def _poisson_inversion(key, lam, shape):
    """Poisson(lam) by inversion: one uniform u per element, and the count is
    the first k whose CDF exceeds u, found by adding the pmf's terms in steps
    over all elements at once (about lam + 10 steps). Each element uses its
    own u only, so a batch of keys draws what each key draws."""
    xp = array_module(key)
    u = _uniform(key, shape, np.float64, 0., 1.)
    term = xp.broadcast_to(xp.exp(-lam), u.shape)
    cdf = term
    count = xp.zeros(u.shape, dtype=np.int64)
    pending = u >= cdf
    step = 0
    while bool(pending.any()):
        step += 1
        term = term * lam / step
        cdf = cdf + term
        count += pending
        # a term that underflowed ends the search (rounding can keep the CDF a hair below u)
        pending &= (u >= cdf) & (term > 0)
    return count


def _poisson_rejection(key, lam, shape):
    """Poisson(lam), lam >= 10, by Hoermann's transformed rejection with
    squeeze (PTRS: "The transformed rejection method for generating Poisson
    random variables", 1993), in vectorized rounds (_rejection_rounds)."""
    xp = array_module(key)
    b = 0.931 + 2.53 * xp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    log_alpha = xp.log(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.)
    log_lam = xp.log(lam)

    def propose(ku, kv):
        u = _uniform(ku, shape, np.float64, -0.5, 0.5)
        v = _uniform(kv, shape, np.float64, 0., 1.)
        us = 0.5 - xp.abs(u)
        with np.errstate(divide='ignore', invalid='ignore', over='ignore'):  # us = 0, v = 0
            k = xp.floor((2. * a / us + b) * u + lam + 0.43)
            count = xp.where(k >= 0, k, 0.)
            log_pmf = -lam + count * log_lam - _special_or_math(xp, 'gammaln', math.lgamma,
                                                                count + 1.)
            hat = xp.log(v) + log_alpha - xp.log(a / (us * us) + b)
            squeeze = (us >= 0.07) & (v <= vr)
            possible = (k >= 0) & ((us >= 0.013) | (v <= us))
            return k, squeeze | (possible & (hat <= log_pmf))
    return _rejection_rounds(key, shape, propose, 'poisson')


def _poisson(key, lam, shape, dtype):
    xp = array_module(key)
    dtype = np.dtype(dtype)
    if dtype.kind not in 'iu':
        raise TypeError(f'poisson needs an integer dtype, got {dtype}')
    lam = xp.asarray(lam, dtype=np.float64)
    shape = _batch_shape('poisson', shape, lam.shape)
    lam = xp.broadcast_to(lam, shape)
    if not bool(((lam >= 0) & xp.isfinite(lam)).all()):
        raise ValueError('poisson needs a finite lam >= 0')
    small = lam < _POISSON_INVERSION_BELOW
    k_small, k_large = _pair(_split(key, 2))
    # each method gets parameters it handles everywhere; where() picks its elements
    out = _poisson_inversion(k_small, xp.where(small, lam, 0.), shape)
    if not bool(small.all()):
        large = _poisson_rejection(k_large, xp.where(small, _POISSON_INVERSION_BELOW, lam),
                                   shape)
        out = xp.where(small, out, large)
    return out.astype(dtype)


def _categorical(key, logits, axis, shape):
    xp = array_module(key)
    logits = xp.asarray(logits)
    if logits.dtype.kind != 'f':
        logits = logits.astype(np.float64)
    if axis >= 0:
        axis -= logits.ndim
    batch_shape = tuple(d for i, d in enumerate(logits.shape) if i != axis % logits.ndim)
    shape = batch_shape if shape is None else _as_shape(shape)
    if shape[len(shape) - len(batch_shape):] != batch_shape:
        raise ValueError(f'categorical: shape {shape} must end with the batch shape '
                         f'{batch_shape} of logits')
    prefix = shape[:len(shape) - len(batch_shape)]
    logits_shape = list(shape[len(shape) - len(batch_shape):])
    logits_shape.insert(axis % logits.ndim, logits.shape[axis])
    g = _gumbel(key, (*prefix, *logits_shape), logits.dtype)
    expanded = logits.reshape((1,) * len(prefix) + logits.shape)
    return xp.argmax(g + expanded, axis=axis)        # axis < 0: past any batch axes


def _randint(key, shape, minval, maxval, dtype):
    xp = array_module(key)
    dtype = np.dtype(dtype)
    if dtype.kind not in 'iu':
        raise TypeError(f'randint needs an integer dtype, got {dtype}')
    shape = _as_shape(shape)
    full = key.shape[:-1] + shape
    info = np.iinfo(dtype)
    nbits = info.bits
    udtype = _UINT[nbits]
    minval = xp.asarray(minval)
    maxval = xp.asarray(maxval)
    if minval.dtype.kind not in 'iu':
        minval = minval.astype(np.int64)
    if maxval.dtype.kind not in 'iu':
        maxval = maxval.astype(np.int64)
    out_of_range = maxval > info.max
    minval = xp.clip(minval, max(info.min, -2 ** 63), info.max).astype(dtype)
    maxval = xp.clip(maxval, max(info.min, -2 ** 63), info.max).astype(dtype)
    k1, k2 = _pair(_split(key, 2))
    higher = _random_bits(k1, nbits, shape)
    lower = _random_bits(k2, nbits, shape)
    with np.errstate(over='ignore'):
        span = (maxval - minval).astype(udtype)
        span = xp.where(maxval <= minval, udtype(1), span)
        span = xp.where(out_of_range & (maxval > minval), span + udtype(1), span)
        span = xp.broadcast_to(span, full)
        # a zero span (the whole range of a 64-bit type) leaves the bits as they are
        safe = xp.where(span == 0, udtype(1), span)

        def rem(v):
            return xp.where(span == 0, v, v % safe)

        multiplier = rem(xp.full(full, 2 ** (nbits // 2), dtype=udtype))
        multiplier = rem(multiplier * multiplier)
        offset = rem(rem(higher) * multiplier + rem(lower))
        return (minval + offset.astype(dtype)).astype(dtype)


def _shuffle(key, x, axis):
    """JAX's shuffle of x (one example) along axis: stable sorts by fresh
    random 32-bit keys, enough rounds to make collisions negligible."""
    xp = array_module(key, x)
    rounds = int(np.ceil(3 * np.log(max(1, x.size)) / np.log(np.iinfo(np.uint32).max)))
    lead = key.shape[:-1]
    shape = x.shape
    if lead:
        x = xp.broadcast_to(x, lead + shape).copy()
        axis += len(lead)
    for _ in range(rounds):
        key, sub = _pair(_split(key, 2))
        sort_keys = _random_bits(sub, 32, shape)
        order = xp.argsort(sort_keys, axis=axis, kind='stable')
        x = xp.take_along_axis(x, order, axis=axis)
    return x


def _take(xp, x, ind, axis, nb):
    """xp.take(x, ind, axis) for indices with nb leading batch axes: those axes first."""
    out = xp.take(x, ind, axis=axis)
    if nb and axis:
        out = xp.moveaxis(out, tuple(range(axis, axis + nb)), tuple(range(nb)))
    return out


@custom_jvp
def _permutation(key, x, axis, independent):
    xp = array_module(key)
    if isinstance(x, (int, np.integer)) or np.ndim(x) == 0:
        return _shuffle(key, xp.arange(int(x)), 0)
    x = xp.asarray(x)
    axis = axis % x.ndim
    if independent or x.ndim == 1:
        return _shuffle(key, x, axis)
    ind = _shuffle(key, xp.arange(x.shape[axis]), 0)
    return _take(xp, x, ind, axis, key.ndim - 1)


@custom_jvp
def _choice(key, a, shape, replace, p, axis):
    xp = array_module(key)
    lead, nb = key.shape[:-1], key.ndim - 1
    shape = _as_shape(shape)
    arr = xp.asarray(a)
    if arr.ndim == 0:
        n_inputs = int(a)
    else:
        axis = axis % arr.ndim
        n_inputs = arr.shape[axis]
    n_draws = math.prod(shape)
    if n_draws == 0:
        return xp.zeros(lead + shape, dtype=arr.dtype)
    if n_inputs <= 0:
        raise ValueError('a must be greater than 0 unless no samples are taken')
    if not replace and n_draws > n_inputs:
        raise ValueError(f'Cannot take a larger sample (size {n_draws}) than population '
                         f'(size {n_inputs}) when replace=False')
    if p is None:
        if replace:
            ind = _randint(key, shape, 0, n_inputs, np.int64)
            result = ind if arr.ndim == 0 else _take(xp, arr, ind, axis, nb)
        else:
            slices = (slice(None),) * (nb + axis) + (slice(n_draws),)
            result = _permutation(key, n_inputs if arr.ndim == 0 else arr, axis,
                                  False)[slices]
    else:
        p = xp.asarray(p)
        if p.dtype.kind != 'f':
            p = p.astype(np.float64)
        if p.shape != (n_inputs,):
            raise ValueError(f'p must be None or a 1-d vector of size {n_inputs}, '
                             f'got shape {p.shape}')
        if replace:
            cum = xp.cumsum(p)
            r = cum[-1] * (1 - _uniform(key, shape, cum.dtype, 0., 1.))
            ind = xp.searchsorted(cum, r).astype(np.int64)
        else:
            with np.errstate(divide='ignore'):
                g = _gumbel(key, (n_inputs,), p.dtype) + xp.log(p)
            ind = xp.argsort(-g, axis=-1, kind='stable')[..., :n_draws].astype(np.int64)
        result = ind if arr.ndim == 0 else _take(xp, arr, ind, axis, nb)
    return result.reshape(lead + (shape if arr.ndim == 0 else
                                  arr.shape[:axis] + shape + arr.shape[axis + 1:]))


# Permuting or choosing the elements of a differentiated array has no rule
# here: codax differentiates indexing, so index it with drawn indices instead.

@_permutation.defjvp
def _permutation_jvp(primals, tangents):
    raise SourceError('codax does not differentiate random.permutation(key, x) with respect to '
                      'x; index x with a permutation of its indices instead: '
                      'x[random.permutation(key, len(x))]')


@_choice.defjvp
def _choice_jvp(primals, tangents):
    raise SourceError('codax does not differentiate random.choice(key, a, ...) with respect to '
                      'a; index a with drawn indices instead: a[random.choice(key, len(a), ...)] '
                      '(the probabilities p carry no derivative)')


# ----------------------------------------------------------------------------
# the public functions: one key of shape (2,). Each is a call codax can read
# (so vmap(random.normal) works), and carries its batched form (below).
# ----------------------------------------------------------------------------

def key(seed):
    """A key from an integer seed: ``[seed >> 32, seed & 0xffffffff]`` as uint32,
    so ``[0, seed]`` for ``0 <= seed < 2**32`` (``jax.random.PRNGKey``'s layout)."""
    return _seed_key(seed)


PRNGKey = key


def split(key, num=2):
    """``num`` new keys (shape ``(num, 2)``; ``num`` may be a shape tuple) from
    ``key``, by Threefry over a counter (JAX's partitionable split)."""
    return _split(_key(key), num)


def fold_in(key, data):
    """A new key that depends on ``key`` and the integer ``data`` (taken mod 2**32)."""
    return _fold_in(_key(key), data)


def key_data(keys):
    """The raw uint32 words of ``keys`` (shape ``(..., 2)``). Keys here are those
    raw arrays already (JAX's typed key arrays do not exist here), so this
    returns ``keys`` itself, checked: no copy."""
    return _key_data(keys)


def wrap_key_data(key_bits_array, impl=None):
    """Keys from raw uint32 words of shape ``(..., 2)``: as keys here are those
    raw arrays, this returns ``key_bits_array`` itself, checked: no copy.
    ``impl`` may be None or ``'threefry2x32'``, the only generator here (JAX's
    ``impl`` is keyword-only; codax reads no keyword-only parameters)."""
    return _wrap_key_data(key_bits_array, impl)


def bits(key, shape=(), dtype=np.uint64):
    """Uniform random bits: an unsigned integer array of ``shape`` and ``dtype``
    (uint64 by default, as JAX's with 64-bit types on, like codax's float64)."""
    return _bits(_key(key), shape, dtype)


def uniform(key, shape=(), dtype=np.float64, minval=0., maxval=1.):
    """Uniform floats in ``[minval, maxval)``: the top mantissa bits of random
    bits, as a float in [1, 2), minus 1 (JAX's construction: 52 bits for
    float64, 23 for float32, 10 for float16)."""
    return _uniform(_key(key), shape, _dtype(dtype), minval, maxval)


def normal(key, shape=(), dtype=np.float64):
    """Standard normal draws: ``sqrt(2) * erfinv(u)``, u uniform on (-1, 1)."""
    return _normal(_key(key), shape, dtype)


def truncated_normal(key, lower, upper, shape=None, dtype=np.float64):
    """Standard normal draws truncated to ``(lower, upper)`` (inverse CDF)."""
    return _truncated_normal(_key(key), lower, upper, shape, _dtype(dtype))


def gumbel(key, shape=(), dtype=np.float64):
    """Standard Gumbel draws, ``-log(-log(u))`` (JAX's default mode)."""
    return _gumbel(_key(key), shape, dtype)


def gamma(key, a, shape=None, dtype=np.float64):
    """Gamma(a, 1) draws (Marsaglia-Tsang; for a < 1, Gamma(a + 1) * U**(1/a))."""
    return _gamma(_key(key), a, shape, dtype)


def beta(key, a, b, shape=None, dtype=np.float64):
    """Beta(a, b) draws, as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b)."""
    return _beta(_key(key), a, b, shape, dtype)


def dirichlet(key, alpha, shape=None, dtype=np.float64):
    """Dirichlet(alpha) draws, shape ``shape + alpha.shape[-1:]``: normalized gammas."""
    return _dirichlet(_key(key), alpha, shape, dtype)


def bernoulli(key, p=0.5, shape=None):
    """Boolean draws, True with probability ``p``: ``uniform(key, shape) < p``."""
    return _bernoulli(_key(key), stop_gradient(p), shape)


def categorical(key, logits, axis=-1, shape=None):
    """Draws from the categorical distribution with unnormalized log-probabilities
    ``logits`` along ``axis``, by the Gumbel-max trick (JAX's ``replace=True``)."""
    return _categorical(_key(key), stop_gradient(logits), axis, shape)


def randint(key, shape, minval, maxval, dtype=np.int64):
    """Integers in ``[minval, maxval)``, from 2 x nbits random bits per value
    reduced mod the span (JAX's algorithm, with its small bias for large
    spans that are not powers of 2)."""
    return _randint(_key(key), shape, stop_gradient(minval), stop_gradient(maxval), dtype)


def permutation(key, x, axis=0, independent=False):
    """A random permutation of ``range(x)`` (an int ``x``) or of ``x`` along ``axis``."""
    return _permutation(_key(key), x, axis, independent)


def choice(key, a, shape=(), replace=True, p=None, axis=0):
    """Draws from ``a`` (an array, or ``range(a)`` for an int), with or without
    replacement, uniformly or with probabilities ``p``."""
    return _choice(_key(key), a, shape, replace, stop_gradient(p), axis)


def exponential(key, shape=(), dtype=np.float64):
    """Standard exponential draws, ``-log1p(-u)`` (JAX's construction)."""
    return _exponential(_key(key), shape, dtype)


def laplace(key, shape=(), dtype=np.float64):
    """Standard Laplace draws (density ``exp(-|x|) / 2``), ``sign(u) * log1p(-|u|)``
    with u uniform on (-1, 1) (JAX's construction)."""
    return _laplace(_key(key), shape, dtype)


def logistic(key, shape=(), dtype=np.float64):
    """Standard logistic draws, ``log(u) - log1p(-u)`` (JAX's construction)."""
    return _logistic(_key(key), shape, dtype)


def cauchy(key, shape=(), dtype=np.float64):
    """Standard Cauchy draws, ``tan(pi * (u - 1/2))`` (JAX's construction)."""
    return _cauchy(_key(key), shape, dtype)


def rademacher(key, shape=(), dtype=np.int64):
    """-1 or 1 with probability 1/2 each: ``2 * bernoulli(key, 0.5, shape) - 1``."""
    return _rademacher(_key(key), shape, dtype)


def poisson(key, lam, shape=None, dtype=np.int64):
    """Poisson(lam) counts: inversion for lam < 10, Hoermann's transformed
    rejection (PTRS) from 10 on, both vectorized."""
    return _poisson(_key(key), stop_gradient(lam), shape, dtype)


def chisquare(key, df, shape=None, dtype=np.float64):
    """Chi-squared draws with ``df`` degrees of freedom, ``2 * Gamma(df / 2)``."""
    return _chisquare(_key(key), df, shape, dtype)


def t(key, df, shape=None, dtype=np.float64):
    """Student's t draws with ``df`` degrees of freedom,
    ``normal * sqrt((df / 2) / Gamma(df / 2))``."""
    return _t(_key(key), df, shape, dtype)


def loggamma(key, a, shape=None, dtype=np.float64):
    """``log`` of Gamma(a, 1) draws, computed in log space, so finite also for
    tiny ``a``, where ``gamma`` underflows to 0."""
    return _loggamma(_key(key), a, shape, dtype)


def generalized_normal(key, p, shape=(), dtype=np.float64):
    """Draws with density proportional to ``exp(-|x|**p)``: a random sign times
    ``Gamma(1/p)**(1/p)``."""
    return _generalized_normal(_key(key), p, shape, dtype)


def multivariate_normal(key, mean, cov, shape=None, dtype=None, method='cholesky'):
    """Normal vectors with ``mean`` (shape ``(..., n)``) and covariance ``cov``
    (``(..., n, n)``): ``mean + F @ z`` with ``F @ F.T == cov`` from ``method``
    ('cholesky', or 'eigh' / 'svd' for a singular ``cov``). Shape ``shape +
    (n,)``, ``shape`` the parameters' batch shapes broadcast for None; dtype:
    ``mean``'s and ``cov``'s, as floats, for None."""
    return _multivariate_normal(_key(key), mean, cov, shape, _dtype(dtype), method)


def orthogonal(key, n, shape=(), dtype=np.float64, m=None):
    """Haar-random orthogonal ``n x n`` matrices (``n x m``, ``m`` given:
    orthonormal rows or columns, whichever are fewer), shape ``shape + (n, m)``."""
    return _orthogonal(_key(key), n, shape, dtype, m)


def ball(key, d, p=2, shape=(), dtype=np.float64):
    """Uniform draws from the unit ``p``-norm ball in ``d`` dimensions, shape
    ``shape + (d,)``."""
    return _ball(_key(key), d, p, shape, dtype)


def maxwell(key, shape=(), dtype=np.float64):
    """One-sided Maxwell draws (density proportional to ``x**2 exp(-x**2 / 2)``):
    the length of a 3-d standard normal vector."""
    return _maxwell(_key(key), shape, dtype)


# ----------------------------------------------------------------------------
# batched forms (vmap over keys)
# ----------------------------------------------------------------------------

def _batched_form(public, impl):
    """`public`'s batched form: the same arguments, with keys of shape (B, 2)
    (or more leading axes: (B1, B2, 2) under vmap of vmap); `impl` takes them
    in the order of `public`'s signature."""
    signature = inspect.signature(public)

    def differentiable(args, kwargs):
        """The call of `impl` the form makes, for its derivatives
        (runtime/batched_forms.py): (impl, its arguments, their names)."""
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        keys, *rest = bound.arguments.values()
        return impl, [_keys(keys), *rest], list(bound.arguments)

    def batched(keys, *args, **kwargs):
        function, values, _ = differentiable((keys,) + args, kwargs)
        return function(*values)
    batched.__name__ = batched.__qualname__ = f'{public.__name__}_batched'
    batched.__doc__ = f'{public.__name__} for a batch of keys (shape (B, 2)): the draws of ' \
                      'each key, stacked on a new leading axis.'
    batched.differentiable = differentiable
    return batched


# ----------------------------------------------------------------------------
# the rank of the draws, stated for the batch pass (runtime/batched_forms.py):
# asked at compile time with each argument as the compiler knows it (a
# literal, None, a tuple, or runtime.Abstract with only its ndim), so that the
# code that uses a batch of draws stays vectorized. None: cannot be told.
# ----------------------------------------------------------------------------

def _ndim(x):
    """The number of dimensions of an argument (as np.asarray would read it)."""
    if isinstance(x, Abstract):
        return x.ndim
    if x is None or isinstance(x, dict):
        return None
    if isinstance(x, (tuple, list)):
        inner = {_ndim(e) for e in x} or {0}
        return 1 + inner.pop() if len(inner) == 1 and None not in inner else None
    return np.ndim(x)


def _length(shape):
    """The number of dimensions a shape argument asks for (an int: one)."""
    if isinstance(shape, (tuple, list)):
        return len(shape)
    return 1 if _ndim(shape) == 0 else None


def _add(*parts):
    return None if any(p is None for p in parts) else sum(parts)


def _fits(rank, *params):
    """`rank`, where each parameter broadcasts to it (as JAX requires); else None."""
    ranks = [_ndim(p) for p in params]
    return rank if rank is not None and all(r is not None and r <= rank for r in ranks) \
        else None


def _shaped(shape, *params):
    """The rank of a draw of `shape` whose parameters broadcast to it; for
    shape=None, the rank the parameters broadcast to."""
    if shape is not None:
        return _fits(_length(shape), *params)
    ranks = [_ndim(p) for p in params]
    return None if None in ranks else max(ranks)


def _dirichlet_rank(alpha, shape):
    if shape is None:
        return _ndim(alpha)                              # alpha.shape[:-1] + (k,)
    return _fits(_add(_length(shape), 1), alpha)         # shape + (k,)


def _multivariate_normal_rank(mean, cov, shape):
    m, c = _ndim(mean), _ndim(cov)
    if m is None or c is None:
        return None
    if shape is None:
        return max(m - 1, c - 2) + 1                     # batch shapes broadcast + (n,)
    k = _length(shape)
    return None if k is None or m - 1 > k or c - 2 > k else k + 1


def _categorical_rank(logits, shape):
    return _add(_ndim(logits), -1) if shape is None else _length(shape)


def _permutation_rank(x):
    n = _ndim(x)
    return None if n is None else max(n, 1)              # an int: range(x)


def _choice_rank(a, shape):
    n, k = _ndim(a), _length(shape)
    if n in (0, 1):
        return k
    sizes = shape if isinstance(shape, (tuple, list)) else (shape,)
    if n is None or k is None or not all(type(d) is int and d > 0 for d in sizes):
        return None                 # no draws give zeros(shape), JAX's rank, not a's
    return n - 1 + k


# One key's draws, from the arguments bound to the public signature.
_DRAW_RANKS = {
    'split': lambda a: _add(_length(a['num']), 1),
    'fold_in': lambda a: 1,
    'bits': lambda a: _length(a['shape']),
    'uniform': lambda a: _shaped(a['shape'], a['minval'], a['maxval']),
    'normal': lambda a: _length(a['shape']),
    'gumbel': lambda a: _length(a['shape']),
    'truncated_normal': lambda a: _shaped(a['shape'], a['lower'], a['upper']),
    'gamma': lambda a: _shaped(a['shape'], a['a']),
    'beta': lambda a: _shaped(a['shape'], a['a'], a['b']),
    'dirichlet': lambda a: _dirichlet_rank(a['alpha'], a['shape']),
    'bernoulli': lambda a: _shaped(a['shape'], a['p']),
    'categorical': lambda a: _categorical_rank(a['logits'], a['shape']),
    'randint': lambda a: _shaped(a['shape'], a['minval'], a['maxval']),
    'permutation': lambda a: _permutation_rank(a['x']),
    'choice': lambda a: _choice_rank(a['a'], a['shape']),
    'key_data': lambda a: 1,
    'wrap_key_data': lambda a: 1,
    'exponential': lambda a: _length(a['shape']),
    'laplace': lambda a: _length(a['shape']),
    'logistic': lambda a: _length(a['shape']),
    'cauchy': lambda a: _length(a['shape']),
    'rademacher': lambda a: _length(a['shape']),
    'maxwell': lambda a: _length(a['shape']),
    'poisson': lambda a: _shaped(a['shape'], a['lam']),
    'chisquare': lambda a: _shaped(a['shape'], a['df']),
    't': lambda a: _shaped(a['shape'], a['df']),
    'loggamma': lambda a: _shaped(a['shape'], a['a']),
    'generalized_normal': lambda a: _fits(_length(a['shape']), a['p']),
    'multivariate_normal': lambda a: _multivariate_normal_rank(a['mean'], a['cov'],
                                                               a['shape']),
    'orthogonal': lambda a: _add(_length(a['shape']), 2),
    'ball': lambda a: _add(_length(a['shape']), 1),
}


def _rank_rule(fn, draw_rank, lead=lambda first: _add(_ndim(first), -1)):
    """`form.rank` for a batched form that takes `fn`'s arguments: the axes
    its first argument has beyond one key (`lead`), then one key's draws."""
    signature = inspect.signature(getattr(fn, 'fun', fn))   # a custom_jvp: its function

    def rank(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        first = next(iter(bound.arguments.values()))
        return _add(lead(first), draw_rank(bound.arguments))
    return rank


# The implementations take batches as they are (vmap of a public function
# batches its body: `_normal(_key(key), shape, dtype)`).
_key.__codax_batched__ = _keys
_keys.rank = _rank_rule(_keys, lambda a: 1)
_seed_key.__codax_batched__ = key.__codax_batched__ = _seed_keys
_seed_keys.rank = _rank_rule(_seed_keys, lambda a: 1, lead=_ndim)    # seeds: no key axis
for _public, _impl in ((split, _split), (fold_in, _fold_in), (bits, _bits),
                       (uniform, _uniform), (normal, _normal),
                       (truncated_normal, _truncated_normal), (gumbel, _gumbel),
                       (gamma, _gamma), (beta, _beta), (dirichlet, _dirichlet),
                       (bernoulli, _bernoulli), (categorical, _categorical),
                       (randint, _randint), (permutation, _permutation), (choice, _choice),
                       (key_data, _key_data), (wrap_key_data, _wrap_key_data),
                       (exponential, _exponential), (laplace, _laplace), (logistic, _logistic),
                       (cauchy, _cauchy), (rademacher, _rademacher), (poisson, _poisson),
                       (chisquare, _chisquare), (t, _t), (loggamma, _loggamma),
                       (generalized_normal, _generalized_normal),
                       (multivariate_normal, _multivariate_normal),
                       (orthogonal, _orthogonal), (ball, _ball), (maxwell, _maxwell)):
    _impl.__codax_batched__ = _impl
    _public.__codax_batched__ = _batched_form(_public, _impl)
    _draws = _DRAW_RANKS[_public.__name__]
    _impl.rank = _rank_rule(_impl, _draws)
    _public.__codax_batched__.rank = _rank_rule(_public, _draws)
# The helpers that derivative rules and the samplers codax reads call with a
# key, or elementwise on draws, are batched forms of themselves too.
for _impl, _draws in ((_unit_uniform, lambda a: _length(a['shape'])),
                      (_gamma_draws, lambda a: _shaped(a['shape'], a['a'])),
                      (_mvn_normals, lambda a: _multivariate_normal_rank(a['mean'], a['cov'],
                                                                         a['shape']))):
    _impl.__codax_batched__ = _impl
    _impl.rank = _rank_rule(_impl, _draws)
for _impl in (_gamma_slope, _inside):
    _impl.__codax_batched__ = _impl
    _impl.rank = _rank_rule(_impl, lambda a: 0, lead=_ndim)     # the draws' rank
del _public, _impl, _draws
