#!/usr/bin/env bash
# CUDA checks of the trainer's options: TET and TRT losses through the CLI, and the training
# throughput with torch.compile (bf16) beside the eager step. Usage: OUT=/folder bash benchmarks/cuda_compile.sh
set -uo pipefail
OUT=${OUT:-/tmp/autost-cuda}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 - <<'PY' > /tmp/digits-arch.json
import autost
print(autost.ArchConfig(in_channels=1, image_size=8, num_classes=10, timesteps=2, stem="sps",
    stem_pooling="0011", embed_dim=64, depth=1, num_heads=(2,), mlp_ratios=(2,),
    attention=("ssa",)).to_json())
PY
for loss in tet trt; do
  timeout 120 python3 -m autost train /tmp/digits-arch.json --dataset digits --epochs 5 --lr 5e-3 \
    --device cuda --amp bf16 --loss $loss --quiet --out /tmp/digits-$loss 2>&1 | tee "$OUT/train_$loss.txt"
done
timeout 380 python3 benchmarks/train.py --device cuda --batch 64 --batches 20 --repeats 2 \
  --amp bf16 --compile --json "$OUT/train_cuda_compile.json" 2>&1 | tee "$OUT/train_cuda_compile.txt"
