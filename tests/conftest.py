import os
import sys

# Make the repository root (codax, transformer, runtime) and this folder
# (helpers, corpus) importable however pytest is started.
_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (os.path.dirname(_HERE), _HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def pytest_sessionfinish(session, exitstatus):
    # pytest's unraisable-exception plugin runs five full garbage collections
    # as it closes; by the end of the suite codax's caches hold millions of
    # tree nodes, and those passes took seconds. Nothing is left to collect
    # that matters then, so the surviving objects are frozen out of them.
    import gc
    gc.freeze()
