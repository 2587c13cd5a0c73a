#!/usr/bin/env bash
# The GPU check, one command: correctness of the Triton kernels on CUDA (against the
# plain-torch reference and PyG's GATConv / GATv2Conv), then one layer timed against PyG at
# E = 1M, 4M, 20M, 62M, each case in its own process (benchmarks/gpu.py says what exactly).
# Writes $OUT/gpu_check.log and $OUT/gpu_check.json (OUT defaults to ./gpu-results). Needs only
# this working tree, torch, PyG and Triton (no torch_scatter / torch_sparse, no native build).
# Under 8 minutes on an H200 (a time budget skips the last timing cases if needed). Without a
# CUDA device it prints one line and exits 0.
#
#   scripts/gpu_check.sh                  # PYTHON=... to choose the interpreter
#   scripts/gpu_check.sh --budget 300     # extra arguments go to `benchmarks/gpu.py all`
#   scripts/gpu_check.sh --smoke          # on the CPU through Triton's interpreter, toy sizes
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$PWD/gpu-results}"
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# One compilation cache for the child processes (each case runs in its own), off the home.
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-${TMPDIR:-/tmp}/gat_pyg_triton_cache}"
exec "$PYTHON" "$ROOT/benchmarks/gpu.py" all --out "$OUT" "$@"
