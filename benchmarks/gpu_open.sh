#!/usr/bin/env bash
# The GPU figures the open issues still need, in one run of about 12 minutes on one GPU (the
# H200 a session may be lent): from the repository root,
#   OUT=/some/folder MNIST=/path/to/mnist bash benchmarks/gpu_open.sh
# MNIST is the folder of the t10k IDX files (default ../shared/data/mnist). Afterwards, on the
# development machine: copy $OUT/ranking/ranking_accuracy_*.csv into benchmarks/results/ and
# run `python benchmarks/ranking.py --no-train` (issue 16's report); the LIF and memory figures
# go into benchmarks/results/lif.md and memory.md (issue 17). Every step is resumable or short,
# and a step that runs out of time leaves what it finished.
set -uo pipefail
OUT=${OUT:-/tmp/autost-gpu}
MNIST=${MNIST:-../shared/data/mnist}
mkdir -p "$OUT/ranking"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"

# 1. Issue 16: the MNIST trainings of both budget-band pools, 2 seeds each (160 trainings,
#    12 side by side), into a copy of the tables (the pools are read from their JSON files).
cp benchmarks/results/ranking_pool*.json benchmarks/results/ranking_accuracy*.csv "$OUT/ranking/"
timeout 480 python3 benchmarks/ranking.py --pools params-200k,flops-10m --band-datasets mnist \
  --device cuda --jobs 12 --train-only --mnist-root "$MNIST" --out "$OUT/ranking" \
  > "$OUT/ranking.txt" 2>&1
echo "ranking: $(grep -c 'val acc' "$OUT/ranking.txt") trainings this run" | tee -a "$OUT/gpu.txt"

# 2. Issue 17: the fused Triton LIF op (and the compiled one) against the memory floor, fwd+bwd,
#    at T = 4, 8 and 16, [T, 64, 384, 64] float32.
for T in 4 8 16; do
  timeout 60 python3 benchmarks/lif.py --device cuda --shape "$T,64,384,64" --backend triton \
    --backend compiled --repeats 15 --json "$OUT/lif_T$T.json" 2>&1 | tee "$OUT/lif_T$T.txt"
done

# 3. Issue 17: peak memory (torch.cuda.max_memory_allocated) and images/s of one
#    spikformer-4-384-cifar10 training step at T=4, batch 32: default, --low-memory, and
#    --low-memory with --checkpoint-blocks (LIF backend auto: triton on CUDA).
timeout 150 python3 benchmarks/memory.py --device cuda --lif-backend auto --rounds 2 --steps 5 \
  --out "$OUT/memory_cuda.md" 2>&1 | tee "$OUT/memory_cuda.txt"
