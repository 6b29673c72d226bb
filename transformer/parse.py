"""Stage 1 of the pipeline: read a function's source and resolve its free names.

`parse_function(fn)` returns a `Unit`: the gast FunctionDef with every node's
line and column set to the user's file, plus the environment (globals, closure
cells, builtins) that free names are resolved against.
"""
import ast
import builtins
import inspect
import linecache
import re
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
    if fn.__name__ == '<lambda>':
        tree = _lambda_tree(fn, lines, first)
    else:
        text = ''.join(lines)
        dedented = textwrap.dedent(text)
        tree = _def_tree(fn, dedented, filename, first)
        _shift_locations(tree, first - 1, _indent_of(text) - _indent_of(dedented))
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


# ---- lambdas -----------------------------------------------------------------
#
# A lambda's source is the logical line it starts on, which may hold other
# lambdas (with the same parameters, even identical ones) and may not parse on
# its own (`cases = {'a': lambda x: x,` ...). Every `lambda` on the lambda's
# first line is parsed from there on, and the one whose code is `fn`'s is kept.

def _lambda_tree(fn, lines, first):
    code = fn.__code__
    row = code.co_firstlineno - first        # the line the lambda starts on
    line = lines[row] if 0 <= row < len(lines) else ''
    rest = ''.join(lines[row + 1:])
    candidates = []
    for match in re.finditer(r'\blambda\b', line):   # in strings and comments too: _pick
        lam = _leading_lambda(line[match.start():] + rest)   # drops those
        if lam is not None and _param_names(lam) == _code_params(code):
            start = len(line[:match.start()].encode('utf-8'))   # ast columns count bytes
            _shift_locations(lam, code.co_firstlineno - 1, start, on_line=1)
            candidates.append(lam)
    lam = _pick(fn, candidates)
    body = [n.copy_location(n.return_(lam.body), lam.body)]
    tree = n.FunctionDef(name='lambda', args=lam.args, body=body,
                         decorator_list=[], returns=None, type_comment=None,
                         type_params=[])
    return n.copy_location(tree, lam)


def _leading_lambda(text):
    """The lambda expression `text` starts with, or None: parse the longest
    prefix that is an expression (jumping back to where each parse failed,
    which is at or after the lambda's end)."""
    end = len(text)
    while end > 0:
        try:
            ast.parse(text[:end], mode='eval')
        except SyntaxError as exc:
            failed_at = _index_of(text, exc.lineno, exc.offset)
            end = failed_at if failed_at is not None and 0 < failed_at < end else end - 1
            continue
        module = n.parse(text[:end])          # `lambda: 1, 2` is a tuple: find the lambda
        return next((node for node in n.walk(module) if isinstance(node, n.Lambda)
                     and node.lineno == 1 and node.col_offset == 0), None)
    return None


def _index_of(text, lineno, offset):
    """Index in `text` of a SyntaxError's 1-based (line, column), or None."""
    if not lineno or not offset:
        return None
    lines = text.splitlines(True)
    return sum(len(line) for line in lines[:lineno - 1]) + offset - 1


def _param_names(lam):
    a = lam.args
    names = [p.id for p in a.posonlyargs + a.args + a.kwonlyargs]
    return names + [p.id for p in (a.vararg, a.kwarg) if p is not None]


def _code_params(code):
    count = code.co_argcount + code.co_kwonlyargcount
    for star in (inspect.CO_VARARGS, inspect.CO_VARKEYWORDS):
        count += bool(code.co_flags & star)
    return list(code.co_varnames[:count])


def _pick(fn, candidates):
    """The candidate that is `fn`: the one its code's positions point at
    (Python 3.11+), else the ones that compile to its code (alike ones are the
    same function), else a lone candidate (the file may have changed since)."""
    for agrees in (_same_positions, _same_code):
        chosen = [lam for lam in candidates if agrees(fn, lam)]
        if chosen:
            return chosen[0]
    if len(candidates) == 1:
        return candidates[0]
    why = ('the lambda could not be told apart from others on its line' if candidates
           else 'its lambda expression was not found on its line')
    raise _no_source(fn, why + '; give it a name with def')


def _same_positions(fn, lam):
    """Whether an instruction of `fn`'s code spans exactly the lambda's body
    (the return of its value); an enclosing or nested lambda's code has none."""
    code = fn.__code__
    if not hasattr(code, 'co_positions'):
        return False
    body = lam.body
    return (body.lineno, body.end_lineno, body.col_offset, body.end_col_offset) \
        in set(code.co_positions())


def _same_code(fn, lam):
    """Whether `lam` compiles to `fn`'s code. It is compiled inside a function
    that binds `fn`'s free names, so that they are closure cells as they are
    for `fn` (compiled alone, they would be globals)."""
    code = fn.__code__
    cells = [n.assign(name, n.const(None)) for name in code.co_freevars]
    outer = n.function('outer', [], cells + [n.return_(n.deepcopy(lam))])
    try:
        module = compile(n.to_ast(n.Module(body=_imports(fn) + [outer], type_ignores=[])),
                         '<lambda>', 'exec')
    except SyntaxError:            # text in a comment that parses but does not compile
        return False
    outer_code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    compiled = next(c for c in outer_code.co_consts if isinstance(c, types.CodeType))
    return _code_key(compiled, 'outer.<locals>.<lambda>') == _code_key(code, fn.__qualname__)


def _imports(fn):
    """`import _ as m` for each module `fn` uses: since 3.11, `m.f(x)` compiles
    differently when `m` is imported at the top of the file."""
    def names(code):
        yield from code.co_names
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                yield from names(c)
    modules = sorted({name for name in names(fn.__code__)
                      if isinstance(fn.__globals__.get(name), types.ModuleType)})
    return n.parse(''.join(f'import _ as {name}\n' for name in modules)).body


def _code_key(code, qualname):
    """What a code object computes, without where it stands in its file or
    the name of what it is defined in (before 3.11 a constant names the
    functions made inside it: `qualname.<locals>...`)."""
    def const_key(c):
        if isinstance(c, types.CodeType):
            return _code_key(c, qualname)
        if isinstance(c, str) and c.startswith(qualname + '.'):
            return str, c[len(qualname):]
        return type(c), repr(c)
    return (code.co_code, tuple(map(const_key, code.co_consts)), code.co_names,
            code.co_varnames, code.co_freevars, code.co_cellvars)


def _shift_locations(tree, line_offset, col_offset, on_line=None):
    """Move every position down `line_offset` lines and right `col_offset`
    columns: on every line, or only on line `on_line` (before the move)."""
    for node in n.walk(tree):
        if getattr(node, 'lineno', None) is None:
            continue
        if getattr(node, 'col_offset', None) is not None and on_line in (None, node.lineno):
            node.col_offset += col_offset
        end_lineno = getattr(node, 'end_lineno', None)
        if getattr(node, 'end_col_offset', None) is not None and on_line in (None, end_lineno):
            node.end_col_offset += col_offset
        node.lineno += line_offset
        if end_lineno is not None:
            node.end_lineno += line_offset
