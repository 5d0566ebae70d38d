#!/usr/bin/env bash
# The CUDA figures of benchmarks/results/*.md, in one go on a machine with a GPU:
#   OUT=/some/folder bash benchmarks/cuda.sh
# Runs from the repository root without installing (PYTHONPATH), so that a bare GPU machine
# with PyTorch, NumPy, tqdm and scikit-learn is enough.
set -uo pipefail
OUT=${OUT:-/tmp/autost-cuda}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
# 1. the LIF fast op against the reference loop and the memory floor, fp32 and bf16
timeout 100 python3 benchmarks/lif.py --device cuda --json "$OUT/lif_cuda.json" 2>&1 | tee "$OUT/lif_cuda.txt"
timeout 70 python3 benchmarks/lif.py --device cuda --dtype bfloat16 --json "$OUT/lif_cuda_bf16.json" 2>&1 | tee "$OUT/lif_cuda_bf16.txt"
# 2. the trainer end to end on CUDA: digits, AMP auto (bf16), weights-only checkpoint
timeout 120 python3 - <<'PY' 2>&1 | tee "$OUT/train_digits_cuda.txt"
import json, shutil, autost
arch = autost.ArchConfig(in_channels=1, image_size=8, num_classes=10, timesteps=2, stem="sps",
    stem_pooling="0011", embed_dim=64, depth=1, num_heads=(2,), mlp_ratios=(2,), attention=("ssa",))
shutil.rmtree("/tmp/digits-cuda", ignore_errors=True)
import torch
done = autost.train(arch, "digits", out="/tmp/digits-cuda", epochs=30, lr=5e-3, progress=False)
status = json.load(open("/tmp/digits-cuda/train.json"))
state = torch.load("/tmp/digits-cuda/checkpoint.pt", weights_only=True)
assert state["epoch"] == 30 and state["model"]["head.weight"].device.type == "cpu"
print("device", status["device"], "amp", status["amp"], "epochs", status["epochs_done"],
      "val_acc", round(done.final["val_acc"], 4), "images/s", round(done.final["train_images_per_s"]))
PY
# 3. training throughput of spikformer-4-384-cifar10 at T=4, AMP modes alternated
timeout 280 python3 benchmarks/train.py --device cuda --batch 64 --batches 20 --repeats 2 \
  --amp off,bf16,fp16 --json "$OUT/train_cuda.json" 2>&1 | tee "$OUT/train_cuda.txt"
