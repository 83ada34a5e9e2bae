#!/usr/bin/env bash
# gpu_check.sh — the GPU work of one device session in one command: build, the whole test suite
# on the GPU, the GPU benchmarks beside PyTorch's (../shared/bench/torch_ref.py, copied into
# .bench/), and a short run of each program on the GPU. Logs go to $OUT (or ./gpu-logs).
# Usage: scripts/gpu_check.sh [tests|bench|programs|all] ...   (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
what=${*:-all}
has() { [[ " $what " == *" $1 "* || " $what " == *" all "* ]]; }
step() { echo "== $(date +%T) $*"; }

step "device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
step "build"; make -j"$(nproc)" all build/cuda/test_all build/cuda/test_mpi build/cuda/bench_train_gpu > "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
if has tests; then
  step "tests"; ./build/cuda/test_all > "$OUT/tests.log" 2>&1; echo "test_all exit $?"
  grep -E "^\[  FAILED|^tests:" "$OUT/tests.log" | head -40
fi
if has bench; then
  step "bench (ours)"; ./build/cuda/bench_train_gpu 20 2>&1 | tee "$OUT/bench_ours.txt"
  if [ -f .bench/torch_ref.py ]; then
    step "bench (torch_ref, TF32 rows)"
    (cd .bench && PYTHONUNBUFFERED=1 python3 torch_ref.py --only tf32 --steps 20 --out "$OUT/torch_ref.json") 2>&1 | tee "$OUT/bench_torch.txt"
  fi
fi
if has programs; then
  step "train (GPU, default corpus)"; ./train --steps 100 --out-dir runs/gpu-tiny 2>&1 | tail -6 | tee "$OUT/train.txt"
  step "train MoE (GPU)"; ./train --steps 100 --moe-experts 8 --out-dir runs/gpu-tiny-moe 2>&1 | tail -4 | tee -a "$OUT/train.txt"
  if [ -d .devdata ]; then
    step "eval (GPU)"; ./eval --ckpt runs/gpu-tiny-moe/checkpoint.bin --task hellaswag --limit 200 --data-dir .devdata 2>&1 | tail -5 | tee "$OUT/eval.txt"
    step "eval (CPU, same checkpoint)"; ./eval --device cpu --ckpt runs/gpu-tiny-moe/checkpoint.bin --task hellaswag --limit 200 --data-dir .devdata 2>&1 | tail -5 | tee -a "$OUT/eval.txt"
    step "finetune (GPU)"; ./finetune --ckpt runs/gpu-tiny/checkpoint.bin --task sst2 --train-file .devdata/sst2/train.tsv.xz --dev-file .devdata/sst2/dev.tsv --epochs 1 --limit-train 2000 --out-dir runs/gpu-ft 2>&1 | tail -5 | tee "$OUT/finetune.txt"
  fi
fi
step "done"
