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
from .ir import codax_own
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
    filename = fn.__code__.co_filename
    linecache.getlines(filename)          # keep the file's lines for messages
    if fn.__name__ == '<lambda>':
        tree = _lambda_tree(fn)
    else:
        try:
            lines, first = inspect.getsourcelines(fn)
        except (OSError, TypeError) as exc:
            raise _no_source(fn, str(exc)) from None
        text = ''.join(lines)
        dedented = textwrap.dedent(text)
        tree = _def_tree(fn, dedented, filename, first)
        _shift_locations(tree, first - 1, _indent_of(text) - _indent_of(dedented))
    tree.decorator_list = []
    _flat_signature(tree, getattr(fn, '__codax_arity__', None))
    return Unit(fn, tree, filename, closure_values(fn))


# ---- *args and keyword-only parameters ---------------------------------------
#
# Generated code takes every argument by position. A **kwargs parameter is
# one more, the dict of what it holds (normalize); keyword-only parameters are
# read from that same dict, which then holds every keyword, as Python's
# BoundArguments.kwargs does (so a call site passes them all as one `**d`).
# *args are as many positional parameters as the call passes: codax compiles
# per signature, and the signature counts them. So a function with *args is
# compiled through a view of it (flat_view) that says how many.

_VIEWS = {}


def flat_view(fn, count):
    """fn, or for a function with *args a copy of it whose compiled form
    takes `count` positional arguments (its named ones, then the items of
    *args): what parse_function reads its signature as. One per (fn, count)."""
    code = getattr(fn, '__code__', None)
    if code is None or not code.co_flags & inspect.CO_VARARGS or not isinstance(
            fn, types.FunctionType) or count < code.co_argcount or codax_own(fn):
        return fn
    key = (id(fn), count)
    hit = _VIEWS.get(key)
    if hit is None or hit[0] is not fn:
        view = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__,
                                  fn.__closure__)
        view.__kwdefaults__, view.__qualname__ = fn.__kwdefaults__, fn.__qualname__
        view.__module__ = fn.__module__
        view.__codax_arity__ = count
        if len(_VIEWS) > 1024:
            _VIEWS.clear()
        hit = _VIEWS[key] = (fn, view)
    return hit[1]


def _flat_signature(tree, arity):
    """Rewrite `def f(a, /, b, *xs, c, **kw)` as the all-positional function
    generated code takes: `def f(a, b, xs0, xs1, keywords)` that begins with
    `xs = (xs0, xs1)` and `c = keywords['c']` (and `kw`, the other keywords).
    Without an arity (a function compiled not for a call) *args stay, for
    the fence to refuse."""
    a = tree.args
    a.args, a.posonlyargs = list(a.posonlyargs) + list(a.args), []
    if a.vararg is None and not a.kwonlyargs or a.vararg is not None and arity is None:
        return
    taken = {node.id for node in n.walk(tree) if isinstance(node, n.Name)}

    def fresh(base):
        k = 0
        while f'{base}{k if k else ""}' in taken:
            k += 1
        taken.add(f'{base}{k if k else ""}')
        return f'{base}{k if k else ""}'

    def param(name):
        return n.copy_location(n.Name(id=name, ctx=n.Param(), annotation=None,
                                      type_comment=None), tree)
    prelude = []
    if a.vararg is not None:
        items = [fresh(f'{a.vararg.id}_') for _ in range(arity - len(a.args))]
        if items:
            a.defaults = []          # (no positional parameter without a default after one)
        a.args += [param(x) for x in items]
        prelude.append(n.assign(a.vararg.id, n.tuple_([n.name(x) for x in items])))
        a.vararg = None
    if a.kwonlyargs:
        names = [k.id for k in a.kwonlyargs]
        own = a.kwarg.id if a.kwarg is not None else None
        keywords = fresh('keywords')
        prelude += [n.assign(k, n.subscript(n.name(keywords), n.const(k))) for k in names]
        if own is not None:          # **kw holds the keywords that name no parameter
            key = fresh('key')
            prelude.append(n.assign(own, n.DictComp(
                key=n.name(key), value=n.subscript(n.name(keywords), n.name(key)),
                generators=[n.comprehension(
                    target=n.name(key, store=True), iter=n.name(keywords), is_async=0,
                    ifs=[n.Compare(left=n.name(key), ops=[n.NotIn()],
                                   comparators=[n.tuple_([n.const(k) for k in names])])])])))
        a.kwarg, a.kwonlyargs, a.kw_defaults = param(keywords), [], []
    for stmt in prelude:
        for node in n.walk(stmt):
            n.copy_location(node, tree)
    tree.body[:0] = prelude


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
    # (the code's own name: a decorator's functools.wraps renames the wrapper)
    name = getattr(getattr(fn, '__code__', None), 'co_name', fn.__name__)
    for node in module.body:
        if isinstance(node, n.FunctionDef) and node.name == name:
            return node
    for node in n.walk(module):
        if isinstance(node, n.FunctionDef) and node.name == name:
            return node
    raise _no_source(fn, 'its definition was not found in its source file')


# ---- lambdas -----------------------------------------------------------------
#
# A lambda's own text is not a statement: it may sit in a dict literal, span
# lines inside brackets or after a backslash, or share its line with other
# lambdas (with the same parameters, even identical ones). So the whole source
# file is parsed, every lambda starting on `fn`'s first line is a candidate, and
# the one whose code is `fn`'s is kept. A lambda that cannot be told apart is an
# error naming its file and line, never a guess.

class LambdaSourceError(SourceError, TypeError):
    """The source of a lambda cannot be recovered unambiguously."""


def _lambda_tree(fn):
    code = fn.__code__
    lam = _pick(fn, [lam for lam in _lambdas_on_line(fn) if _param_names(lam) == _code_params(code)])
    lam = n.deepcopy(lam)                       # the parsed file is shared (cached)
    body = [n.copy_location(n.return_(lam.body), lam.body)]
    tree = n.FunctionDef(name='lambda', args=lam.args, body=body,
                         decorator_list=[], returns=None, type_comment=None,
                         type_params=[])
    return n.copy_location(tree, lam)


def _lambdas_on_line(fn):
    """gast trees of the lambdas that start on `fn`'s first line of its file."""
    code = fn.__code__
    try:
        lines, _ = inspect.findsource(fn)
    except (OSError, TypeError) as exc:
        raise _no_source(fn, str(exc)) from None
    by_line = _lambdas_by_line(code.co_filename, ''.join(lines))
    if by_line is None:
        raise _lambda_error(fn, 'its source file no longer parses (was it edited since '
                                'it was imported?)')
    return by_line.get(code.co_firstlineno, [])


_PARSED = {}       # filename -> (text, {line: [gast Lambda]} or None) for the last text read


def _lambdas_by_line(filename, text):
    hit = _PARSED.get(filename)
    if hit is None or hit[0] != text:
        try:
            module = n.parse(text)
        except (SyntaxError, ValueError):
            module = None
        by_line = None if module is None else {}
        for node in n.walk(module) if module is not None else ():
            if isinstance(node, n.Lambda):
                by_line.setdefault(node.lineno, []).append(node)
        if len(_PARSED) > 64:
            _PARSED.clear()
        hit = _PARSED[filename] = (text, by_line)
    return hit[1]


def _lambda_error(fn, why):
    return LambdaSourceError(f'codax cannot read the source of this lambda: {why}; '
                             'give it a name with def', fn.__code__.co_filename,
                             fn.__code__.co_firstlineno)


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
    same function)."""
    for agrees in (_same_positions, _same_code):
        chosen = [lam for lam in candidates if agrees(fn, lam)]
        if chosen:
            return chosen[0]
    why = ('the lambda could not be told apart from others on its line, or its file '
           'changed since it was imported' if candidates
           else 'its lambda expression was not found on its line')
    raise _lambda_error(fn, why)


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
