import os
import sys

# Make the repository root (codax, transformer, runtime) and this folder
# (helpers, corpus) importable however pytest is started.
_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (os.path.dirname(_HERE), _HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)
