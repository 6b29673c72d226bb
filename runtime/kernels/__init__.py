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


def row_shapes(program, outputs, trailing, shapes):
    """Where a row-wise kernel serves inputs of these `shapes` (one a kernel
    input; () for a number): (rows, cols, the outputs' shapes), else None.
    The kernel computes each reduction over the last `trailing` axes of the
    inputs' broadcast shape, and writes element outputs of that shape and row
    outputs of one value a row; NumPy's shapes (run through `program`, see
    transformer.kernels.shape_program) must agree: a reduction's operand must
    span the whole row, and every output must have the shape written."""
    import math
    import numpy
    try:
        full = numpy.broadcast_shapes(*shapes)
        if len(full) < trailing:
            return None
        lead, row = full[:len(full) - trailing], full[len(full) - trailing:]
        values = list(shapes)
        for entry in program:
            if entry[0] == 'e':
                values.append(numpy.broadcast_shapes(*[values[k] for k in entry[1]]))
                continue
            _, k, keepdims, ndim = entry
            shape = values[k]
            if len(shape) != ndim or shape[len(shape) - trailing:] != row:
                return None
            kept = shape[:len(shape) - trailing]
            values.append(kept + (1,) * trailing if keepdims else kept)
    except ValueError:              # NumPy itself will say where, or succeed piecewise
        return None
    shaped = []
    for k, per_element in outputs:
        if values[k] != full if per_element else values[k] not in (lead + (1,) * trailing, lead):
            return None
        shaped.append(values[k])
    return math.prod(lead), math.prod(row), tuple(shaped)


_jit_hook = None


def install_jit_hook(hook):
    global _jit_hook
    _jit_hook = hook


def jitted(fn):
    """`fn` jitted: a user function called from jitted code (codax installs
    the hook, so the runtime never imports codax)."""
    return _jit_hook(fn)
