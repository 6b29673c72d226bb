#!/usr/bin/env bash
# On a lent GPU machine, in one call: the GPU tests (pytest -m gpu), then the
# GPU benchmarks, whose table comes last.
#
#   bash bench/gpu.sh [bench_gpu.py options, e.g. --quick --json $OUT/gpu.json]
#
# The machine has CuPy, JAX and pytest but not gast or astor, and no registry:
# bring them as wheels in .whl/ (ignored by git) and name .whl in the device
# tool's `carry`. Fetch them once, here, with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       -d .whl gast==0.7.0 astor==0.8.1
set -uo pipefail
cd "$(dirname "$0")/.."

if compgen -G '.whl/*.whl' > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/codax-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/codax-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-/tmp/codax-cupy-cache}
export XLA_PYTHON_CLIENT_PREALLOCATE=false      # JAX shares the GPU with CuPy

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "== GPU tests =="
python3 -m pytest -q -p no:cacheprovider -m gpu tests
status=$?
echo "== GPU benchmarks =="
python3 bench/bench_gpu.py "$@" || status=1
exit $status
