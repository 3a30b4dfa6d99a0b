#!/usr/bin/env bash
# Prepared for a lent GPU machine (under 5 minutes): ViT-L-14 random init, 1,000 names x 21
# templates, 6,000 photos. Target: under 60 s in total on one H200.
# On the device machine, from the repo root (torch and open_clip installed or carried):
#   bash benchmarks/gpu_audit.sh
set -euo pipefail
export PYTHONPATH="${PYTHONPATH:-}:$(pwd)/src" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 benchmarks/bench_gpu_audit.py --model ViT-L-14 --names 1000 --photos 6000 \
  --per-person 30 --device cuda
