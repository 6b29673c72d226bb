"""Fused kernels at run time, one module per back end (`rt.kernels.cuda`: CuPy;
`rt.kernels.cpu`: C compiled for the CPU).

A back end is imported on first use (PEP 562), so importing the runtime never
pulls in a back end's compiler or array library."""
import importlib


def __getattr__(name):
    if name.startswith('_'):
        raise AttributeError(name)
    try:
        return importlib.import_module(f'{__name__}.{name}')
    except ModuleNotFoundError as error:
        if error.name != f'{__name__}.{name}':     # the back end's own import failed
            raise
        raise AttributeError(f'module {__name__!r} has no back end {name!r}') from None


def checked(kernel, fallback, partial):
    """`kernel`, calling `fallback` instead when an output computed from only
    some array inputs (`partial`: (output, input positions) pairs) would come
    out broadcast to a larger shape than those inputs give it. The answer
    depends on the shapes alone, so it is remembered per shapes."""
    import numpy
    decided = {}

    def fits(shapes):
        try:
            full = numpy.broadcast_shapes(*shapes)
        except ValueError:          # NumPy itself will say where, or succeed piecewise
            return False
        return all(numpy.broadcast_shapes(*[shapes[i] for i in positions]) == full
                   for _, positions in partial)

    def call(*args):
        shapes = tuple(numpy.shape(a) for a in args)
        ok = decided.get(shapes)
        if ok is None:
            if len(decided) > 256:
                decided.clear()
            ok = decided[shapes] = fits(shapes)
        return kernel(*args) if ok else fallback(*args)
    return call


_jit_hook = None


def install_jit_hook(hook):
    global _jit_hook
    _jit_hook = hook


def jitted(fn):
    """`fn` jitted: a user function called from jitted code (codax installs
    the hook, so the runtime never imports codax)."""
    return _jit_hook(fn)
