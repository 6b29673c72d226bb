"""Python source that codax writes while a program runs (wrappers, stand-ins,
definitions): registered with linecache under its own name before it runs,
so tracebacks show its lines and codax can read it back to transform it."""
import linecache


def define(text, filename, namespace):
    """Run the module `text`, named `filename`, in `namespace`; return it."""
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    exec(compile(text, filename, 'exec'), namespace)
    return namespace
