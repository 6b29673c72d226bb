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
        text = linecache.getline(self.filename, self.lineno).rstrip('\n')
        # the AST's column counts UTF-8 bytes; the caret goes under characters
        col = None if self.col is None else \
            len(text.encode('utf-8')[:self.col].decode('utf-8', errors='ignore'))
        if col is not None:
            where += f':{col + 1}'
        lines = [f'{where}: {self.message}']
        if text:
            lines.append('    ' + text)
            if col is not None:
                lines.append('    ' + ' ' * col + '^')
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
