"""Errors that point at the user's code: file, line, column and a caret."""
import linecache


class SourceError(Exception):
    """The user's function uses something codax cannot transform.

    The message names the user's file and line and shows the line with a caret
    under the offending column, like a compiler diagnostic."""

    def __init__(self, message, filename=None, lineno=None, col=None):
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.col = col
        super().__init__(self._render())

    def _render(self):
        if self.filename is None or self.lineno is None:
            return self.message
        where = f'{self.filename}:{self.lineno}'
        if self.col is not None:
            where += f':{self.col + 1}'
        text = linecache.getline(self.filename, self.lineno).rstrip('\n')
        lines = [f'{where}: {self.message}']
        if text:
            lines.append('    ' + text)
            if self.col is not None:
                lines.append('    ' + ' ' * self.col + '^')
        return '\n'.join(lines)


class RecursiveBatching(SourceError):
    """vmap of derivative code meets a user function that calls itself, whose
    batched derivative's facts would be infinitely nested: vmap(grad(f))
    takes the gradient of the summed vmap(f) instead (codax/vmap.py)."""


def error_at(node, message, unit=None):
    """A SourceError located at `node` of the function described by `unit`."""
    filename = getattr(unit, 'filename', None)
    lineno = getattr(node, 'lineno', None) or getattr(node, 'user_line', None)
    col = getattr(node, 'col_offset', None) if getattr(node, 'lineno', None) else None
    return SourceError(message, filename, lineno, col)


def loop_hint(op, rhs):
    """What a missing derivative rule of rt.batch_loop (vmap's per-example
    loop) means, appended to the message: '' for other primitives."""
    if getattr(op.prim, 'name', None) != 'rt_batch_loop':
        return ''
    fn = rhs.args[0] if getattr(rhs, 'args', None) else None
    name = f'{fn.value.id}.{fn.attr}' if hasattr(fn, 'attr') and hasattr(fn.value, 'id') \
        else getattr(fn, 'id', '?')
    import runtime.batching
    if name.startswith('rt.') and name[3:] in runtime.batching.__all__:
        return (f': this is vmap of vmapped code (a Jacobian of a Jacobian, vmap(vmap(f))), '
                f'where the batching helper {name} runs once per example. codax differentiates '
                'such code again in forward mode only, so third derivatives through two nested '
                'Jacobians with a jacrev, such as jacrev(jacrev(jacrev(f))), are refused; use '
                'jacfwd(jacfwd(jacfwd(f))), take the outer derivatives with grad, or a Jacobian '
                'of grad(grad(f))')
    return f' (the per-example loop of {name}): vmapped code that falls back to it cannot be ' \
        'differentiated'
