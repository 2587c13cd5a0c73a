#!/usr/bin/env bash
# The GPU check, one command (issue 21): the package's layers on the Triton kernels checked on
# CUDA (against the reference, PyG's layers and the csr kernels; determinism), then timed
# against PyG's GATConv / GATv2Conv and the package's pure-torch CSR kernels: one layer at
# E = 1M..62M (float32, bf16), the paper's epoch on Cora- and CiteSeer-shaped synthetic graphs,
# a products-sized full-batch model; each case in its own process (benchmarks/gpu.py says what
# exactly). Writes $OUT/gpu_check.log and $OUT/gpu_check.json (OUT defaults to ./gpu-results)
# and ends with the summary against the targets. Needs only this working tree, torch, PyG and
# Triton (no torch_scatter / torch_sparse, no native build, no data files). A time budget
# (default 420 s) skips the lowest-priority cases, so it ends within 8 minutes on an H200.
# Without a CUDA device it prints one line and exits 0.
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
