"""numpy.fft: the discrete Fourier transforms, linear maps with JAX's rules.

The DFT matrix is symmetric, so the transpose of fft is fft itself (with the
same norm) and of ifft, ifft: JAX's convention transposes without
conjugating. n= and s= first cut or pad the input with zeros, whose transpose
cuts or pads the cotangent back (rt.resized). A real input's adjoint is the
real part (the transpose of making it complex). rfft is fft of the real
input keeping the first n // 2 + 1 outputs: its transpose pads the cotangent
with zeros to n and transforms it. irfft's transpose is JAX's: the
cotangent's rfft with the inverse scaling, each output counted twice but the
first (and, for even n, the last), conjugated. All written with
primitives, so every order of derivative holds. The one-axis transforms
batch as a scan does (their axis shifted past the batch axis); the others
shift literal axes likewise (transformer/batch_rules/arrays.py fft_axes) and
run per example where the axes are known only at run time.
"""
import numpy

from ..backend import array_module
from ..table import linear, nondifferentiable

_G = 'rt.materialize(g, ans)'


def resized(x, like, axes=None):
    """x cut or padded with zeros at the end of each of `axes` (None: all) to
    the length `like` has there."""
    xp = array_module(x)
    axes = range(x.ndim) if axes is None else axes
    for axis in axes:
        have, want = x.shape[axis], like.shape[axis]
        if want < have:
            x = xp.take(x, xp.arange(want), axis=axis)
        elif want > have:
            widths = [(0, 0)] * x.ndim
            widths[axis] = (0, want - have)
            x = xp.pad(x, widths)
    return x


def fft_axes(s, axes):
    """The axes an n-dimensional transform runs over (None: all of them)."""
    if axes is not None:
        return axes
    return None if s is None else tuple(range(-len(s), 0))


def real_like(x, dtype):
    """x, or its real part where `dtype` (the input's) is real."""
    return x.real if numpy.dtype(dtype).kind != 'c' else x


def resizes(size):
    """Whether n= or s= was given (a call, not `size is None`: generated code
    with a literal there would read `(2, 5) is None`, which Python warns of)."""
    return size is not None


def irfft_mask(n, axis, ndim):
    """How often irfft of length n counts each of its n // 2 + 1 inputs (the
    first once, the last once if n is even, the others twice), shaped to
    multiply them along `axis` of an array of `ndim` axes. float32, which
    keeps every dtype it multiplies."""
    mask = numpy.full(n // 2 + 1, 2.0, numpy.float32)
    mask[0] = 1.0
    if n % 2 == 0:
        mask[-1] = 1.0
    shape = [1] * ndim
    shape[axis] = n // 2 + 1
    return mask.reshape(shape)


# Rule templates fold these at compile time where their arguments are literals.
fft_axes.codax_static = resizes.codax_static = True

linear('rt_resized', 'x, like, axes=None', {'x': f'rt.resized({_G}, x, axes)'},
       targets=(resized,), impl='rt.resized', family='linalg', batch='loop')
linear('rt_real_like', 'x, dtype', {'x': 'g'}, targets=(real_like,), impl='rt.real_like',
       family='linalg', batch='same')
nondifferentiable('rt_fft_axes', 's, axes', targets=(fft_axes,), impl='rt.fft_axes',
                  batch='loop')
nondifferentiable('rt_resizes', 'size', targets=(resizes,), impl='rt.resizes', batch='loop')
nondifferentiable('rt_irfft_mask', 'n, axis, ndim', targets=(irfft_mask,),
                  impl='rt.irfft_mask', batch='loop')


def _back(transformed, size, axes):
    """The transform of the cotangent, cut or padded back to a's shape where
    n= or s= (`size`) resized a."""
    return f'(rt.resized({transformed}, a, {axes}) if rt.resizes({size}) else {transformed})'


def _transform(name, signature, vjp, batch='loop'):
    return linear(name, signature, {'a': vjp}, targets=(getattr(numpy.fft, name),),
                  impl=f'xp.fft.{name}', family='linalg', batch=batch)


_SIG_1D = 'a, n=None, axis=-1, norm=None, out=None'
for _name in ('fft', 'ifft'):
    _transform(_name, _SIG_1D, 'rt.real_like(' + _back(f'xp.fft.{_name}({_G}, None, axis, norm)',
                                                       'n', '(axis,)') + ', a.dtype)',
               batch='scan')
_AXES = 'rt.fft_axes(s, axes)'
for _name, _sig in (('fft2', 'a, s=None, axes=(-2, -1), norm=None, out=None'),
                    ('ifft2', 'a, s=None, axes=(-2, -1), norm=None, out=None'),
                    ('fftn', 'a, s=None, axes=None, norm=None, out=None'),
                    ('ifftn', 'a, s=None, axes=None, norm=None, out=None')):
    _inverse = _name.startswith('i')
    _transform(_name, _sig, 'rt.real_like(' + _back(
        f'xp.fft.{"ifftn" if _inverse else "fftn"}({_G}, None, {_AXES}, norm)', 's', _AXES)
        + ', a.dtype)', batch='fft_axes')

_LENGTH = '(rt.shape(a)[axis] if n is None else n)'
_transform('rfft', _SIG_1D,
           'xp.real(' + _back(f'xp.fft.fft({_G}, {_LENGTH}, axis, norm)', 'n', '(axis,)') + ')',
           batch='scan')
# irfft: n outputs from n // 2 + 1 inputs (n = 2 (m - 1) by default, m inputs)
_OUT = '(2 * (rt.shape(a)[axis] - 1) if n is None else n)'
_DUAL = '("forward" if norm is None or norm == "backward" else "backward" if norm == "forward" ' \
        'else norm)'
_transform('irfft', _SIG_1D,
           'rt.real_like(xp.conj(' + _back(f'xp.fft.rfft({_G}, None, axis, {_DUAL}) * '
                                           f'rt.irfft_mask({_OUT}, axis, rt.ndim(a))', 'n',
                                           '(axis,)') + '), a.dtype)', batch='scan')
