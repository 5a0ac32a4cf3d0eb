#!/usr/bin/env bash
# Every row of issue 27's goal table in one run on a GPU machine: the CPU rows on
# 2 pinned cores (taskset -c 2,3, 2 torch threads), the GPU rows on the GPU.
# Each benchmark prints its ratio next to its goal; logs go to LOGDIR.
#
# Usage (repository root, torch + skorch + scikit-learn + pandas + torch-pruning installed):
#   bash benchmarks/speed_goals.sh [LOGDIR]
set -uo pipefail
LOG=${1:-benchmarks/logs/speed_goals}
mkdir -p "$LOG"
export PYTHONPATH=.
PIN=(taskset -c 2,3 env OMP_NUM_THREADS=2 MKL_NUM_THREADS=2)
status=0
run() {
    local name=$1
    shift
    echo "### $name: $*"
    "$@" 2>&1 | tee "$LOG/$name.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
}
python -c "import torch; print('torch', torch.__version__, '| GPU:', torch.cuda.get_device_name() if torch.cuda.is_available() else None)" | tee "$LOG/machine.log"
nproc | sed 's/^/CPU cores: /' | tee -a "$LOG/machine.log"
# rows 1-4: CPU fit against hand-written loops and MLPClassifier; batch-1 predict_proba against the forward
run cpu_training "${PIN[@]}" python -u benchmarks/training_speed.py --n-samples 30000 --epochs 3 --repeats 3
# rows 5-7: GPU eager and default (CUDA-graph) fits against a hand-written eager loop; the large fit
run gpu_fit python -u benchmarks/gpu_fit.py --large --large-rows 1000000 --epochs 1 --repeats 2 --n-images 20000
# row 8: 50% channels + fine-tune against Torch-Pruning, on both
run vs_torch_pruning_cpu "${PIN[@]}" python -u benchmarks/vs_torch_pruning.py --device cpu --repeats 2
run vs_torch_pruning_gpu python -u benchmarks/vs_torch_pruning.py --device cuda --repeats 2
# rows 9-10: PrunedNetCV(cv=5) against one fit of the same net, on both
run batched_cv_cpu "${PIN[@]}" python -u benchmarks/batched_cv.py --device cpu
run batched_cv_gpu python -u benchmarks/batched_cv.py --device cuda
# the same with 5x the rows: per-step work outweighs the per-level pruning and scoring of each fold
run batched_cv_gpu_30k python -u benchmarks/batched_cv.py --device cuda --n-samples 30000
exit $status
