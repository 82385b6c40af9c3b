#!/usr/bin/env bash
# The prepared GPU check: on a bare GPU machine, install innx offline, then run the kernel tests
# compiled, the CUDA-graph tests, a small pipeline on CUDA (its t checked against the CPU's) and
# the kernels benchmark; one markdown summary (OUT/summary.md, also printed); exit 1 on any
# failure. See benchmarks/README.md.
#
#   bash benchmarks/gpu.sh [OUT]            # on a machine with an NVIDIA GPU (under 8 minutes)
#   DRY_RUN=1 bash benchmarks/gpu.sh [OUT]  # on a CPU: CUDA steps skipped, tiny sizes
#
# A bare GPU machine has torch, triton, typer, rich, h5py, safetensors, timm and matplotlib but no
# package index: wheels it lacks are put in benchmarks/wheels/ beforehand (ignored by git), where
# the network is, with
#   python -m pip wheel --no-deps -w benchmarks/wheels pytest pluggy iniconfig packaging \
#       filelock setuptools wheel FrEIA scipy
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-gpu-check}
python=${PYTHON:-$(command -v python || command -v python3)}

shopt -s nullglob
wheels=(benchmarks/wheels/*.whl)
if (( ${#wheels[@]} )); then
    "$python" -m pip install --quiet --no-deps --no-index "${wheels[@]}"
fi
"$python" -m pip install --quiet --no-deps --no-build-isolation --no-index \
    -e . -e plugins/innx-torchvision -e plugins/innx-timm
"$python" -c "import innx, pytest, filelock" || {
    echo "error: innx or the test tools did not install; put their wheels in benchmarks/wheels" >&2
    exit 1
}
# DEADLINE: seconds after which no further step starts (a short GPU loan still ends with a table)
exec "$python" benchmarks/gpu.py -o "$out" ${DRY_RUN:+--dry-run} ${DEADLINE:+--deadline "$DEADLINE"}
