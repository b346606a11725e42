#!/usr/bin/env bash
# The GPU path, exercised (issue 14): `make gpu-check` on a machine with a CUDA device, < 10 minutes.
#   1. pytest -m gpu                       every CUDA test (EASE, MF, SASRec, the runner's GPU per worker)
#   2. the smoke course with --device cuda  every notebook, one worker, into a fresh run folder
#   3. bench/gpu_epochs.py                 seconds per epoch of each torch model on CUDA vs the CPU
# The output goes to the terminal and to bench/results/gpu-check-<time>.txt (commit that file).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
stamp=$(date -u +%Y%m%d-%H%M%S)
out=bench/results/gpu-check-$stamp.txt
mkdir -p bench/results
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu-check: torch sees no CUDA device (install a CUDA build: make setup TORCH_SPEC=torch)" >&2
    exit 2
fi
dataset=${DATASET:-}
if [ -z "$dataset" ]; then
    # ml-100k where a copy is cached (the mirror beside the checkout, or $SEMINAR_DATA_DIR); else the offline dataset
    if [ -d "${SEMINAR_DATA_DIR:-../shared/data}/ml-100k" ]; then
        export SEMINAR_DATA_DIR=${SEMINAR_DATA_DIR:-$(cd ../shared/data && pwd)}; dataset=ml-100k
    else
        dataset=synthetic
    fi
fi
{
    status=0
    echo "== gpu-check $stamp, $(git rev-parse --short HEAD 2>/dev/null)"
    nvidia-smi -L 2>/dev/null || true
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
    echo "== 1. pytest -m gpu"
    TQDM_DISABLE=1 timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu -o addopts="" tests || status=1
    echo "== 2. the smoke course on CUDA"
    run_dir=$(mktemp -d)/run
    TQDM_DISABLE=1 timeout 300 "$PY" -m seminar_lib.course run --device cuda --dataset "$dataset" \
        --output "$run_dir" || status=1
    echo "== 3. seconds per epoch, CUDA vs CPU"
    TQDM_DISABLE=1 timeout 150 "$PY" bench/gpu_epochs.py --epochs 2 || status=1
    echo "== gpu-check: $([ $status = 0 ] && echo passed || echo FAILED)"
    exit $status
} 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
echo "written: $out"
exit "$status"
