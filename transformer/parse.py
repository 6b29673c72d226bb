"""Stage 1 of the pipeline: read a function's source and resolve its free names.

`parse_function(fn)` returns a `Unit`: the gast FunctionDef with every node's
line and column set to the user's file, plus the environment (globals, closure
cells, builtins) that free names are resolved against.
"""
import builtins
import inspect
import linecache
import textwrap
import types

from . import nodes as n
from .closures import LIFTED
from .errors import SourceError


class Unit:
    """One user function being compiled: its tree and where names come from."""

    def __init__(self, fn, tree, filename, closure):
        self.fn = fn
        self.tree = tree
        self.filename = filename
        self.closure = closure            # free name -> cell value
        self.globals = fn.__globals__
        self.guards = {}                  # global name -> object baked into the code
        self.lifted = []                  # its closures, lifted out (transformer/closures.py)

    @property
    def name(self):
        return self.fn.__name__ if self.fn.__name__ != '<lambda>' else 'lambda'

    def lookup(self, identifier):
        """(found, value) for a free name, as Python would resolve it at call time.

        A global that is not a module or a Python function is remembered as a
        guard: code generated from its current value is stale once it is rebound."""
        if identifier in self.closure:
            return True, self.closure[identifier]
        if identifier in self.globals:
            value = self.globals[identifier]
            if not isinstance(value, (types.ModuleType, types.FunctionType)) and callable(value):
                self.guards[identifier] = value
            return True, value
        if hasattr(builtins, identifier):
            return True, getattr(builtins, identifier)
        return False, None


def _no_source(fn, why):
    label = getattr(fn, '__qualname__', None) or repr(fn)
    return TypeError(
        f'codax cannot read the source of {label!s}: {why}. codax transforms '
        'Python source, so define the function with `def` in a .py file (or a '
        'notebook cell) rather than in an interactive prompt, `exec`, or C.')


def closure_values(fn):
    cells = fn.__closure__ or ()
    out = {}
    for fname, cell in zip(fn.__code__.co_freevars, cells):
        try:
            out[fname] = cell.cell_contents
        except ValueError:           # cell not yet filled (recursive inner def)
            pass
    return out


def parse_function(fn):
    if not isinstance(fn, types.FunctionType):
        raise _no_source(fn, 'it is not a Python function')
    lifted = LIFTED.get(fn.__code__)
    if lifted is not None:               # a closure codax lifted: the user's own tree
        tree, filename = lifted
        return Unit(fn, n.deepcopy(tree), filename, closure_values(fn))
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise SourceError('codax does not support async functions', fn.__code__.co_filename,
                          fn.__code__.co_firstlineno)
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise _no_source(fn, str(exc)) from None
    filename = fn.__code__.co_filename
    linecache.getlines(filename)          # keep the file's lines for messages
    text = ''.join(lines)
    dedented = textwrap.dedent(text)
    indent = _indent_of(text) - _indent_of(dedented)
    if fn.__name__ == '<lambda>':
        tree = _lambda_tree(fn, dedented, filename, first)
    else:
        tree = _def_tree(fn, dedented, filename, first)
    _shift_locations(tree, first - 1, indent)
    tree.decorator_list = []
    return Unit(fn, tree, filename, closure_values(fn))


def _indent_of(text):
    for line in text.splitlines():
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0


def _def_tree(fn, source, filename, first):
    try:
        module = n.parse(source)
    except SyntaxError as exc:
        raise SourceError(f'cannot parse the source of {fn.__name__}: {exc.msg}',
                          filename, first + (exc.lineno or 1) - 1) from None
    for node in module.body:
        if isinstance(node, n.FunctionDef) and node.name == fn.__name__:
            return node
    for node in n.walk(module):
        if isinstance(node, n.FunctionDef) and node.name == fn.__name__:
            return node
    raise _no_source(fn, 'its definition was not found in its source file')


def _lambda_tree(fn, source, filename, first):
    """A lambda's source is the line(s) around it; find the lambda itself."""
    module = None
    text = source.strip()
    while text and module is None:          # trim trailing `)`/`,` of the call
        try:
            module = n.parse(text)
        except SyntaxError:
            text = text[:-1]
    candidates = [node for node in n.walk(module or n.parse('pass'))
                  if isinstance(node, n.Lambda)]
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
    candidates = [c for c in candidates if [a.id for a in c.args.args] == params]
    if len(candidates) != 1:
        raise _no_source(fn, 'the lambda could not be told apart from others on its line; '
                         'give it a name with def')
    lam = candidates[0]
    body = [n.copy_location(n.return_(lam.body), lam.body)]
    tree = n.FunctionDef(name='lambda', args=lam.args, body=body,
                         decorator_list=[], returns=None, type_comment=None,
                         type_params=[])
    return n.copy_location(tree, lam)


def _shift_locations(tree, line_offset, col_offset):
    for node in n.walk(tree):
        if hasattr(node, 'lineno') and node.lineno is not None:
            node.lineno += line_offset
            if getattr(node, 'end_lineno', None) is not None:
                node.end_lineno += line_offset
            if getattr(node, 'col_offset', None) is not None:
                node.col_offset += col_offset
