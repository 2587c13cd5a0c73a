#!/usr/bin/env bash
# The test suite on a fresh clone, set-up included: the environment of scripts/reproduce.sh
# plus what the tests need (torch_scatter and torch_sparse, built from source; the notebook,
# test and gpu (triton) extras; a Jupyter kernel of this environment), then the README's test
# command, `GAT_PYG_EXPECT_NATIVE=1 GAT_PYG_EXPECT_TRITON=1 python -m pytest -q`. A rerun skips what is installed. CI (.ci/run)
# runs the set-up alone, then that command.
#
#   scripts/test.sh                        # extra arguments go to pytest, e.g. -x tests/train
#   scripts/test.sh --setup-only           # the environment, no tests
#
# The tests need the Planetoid mirror (Cora and CiteSeer): $GAT_PYG_PLANETOID_MIRROR or
# ../shared/data/planetoid beside the repository. See scripts/setup.sh for the variables.
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_venv
ensure_torch
ensure_build_tools
ensure_extensions
ensure_triton
ensure_package 'scatter,sparse,notebooks,test,gpu'
python -c "import torch_geometric.typing as t
assert t.WITH_TORCH_SCATTER and t.WITH_TORCH_SPARSE, 'torch_scatter / torch_sparse not usable'"
# The package was just built with a compiler, so its native kernels must have loaded: the tests
# of the kernels then fail instead of skipping (GAT_PYG_EXPECT_NATIVE=0 to test without them).
export GAT_PYG_EXPECT_NATIVE="${GAT_PYG_EXPECT_NATIVE:-1}"
# Likewise triton (the gpu extra, just installed): its kernels' tests, in Triton's interpreter,
# fail instead of skipping without it.
export GAT_PYG_EXPECT_TRITON="${GAT_PYG_EXPECT_TRITON:-1}"
if [ "$GAT_PYG_EXPECT_NATIVE" = 1 ]; then
  python -c "from gat_pyg import kernels
assert kernels.available(), f'gat_pyg native kernels not built: {kernels.load_error()}'"
fi
# The notebook tests start a kernel named python3: this environment's own (they prefer it to
# any user-wide one of that name).
if [ ! -f "$VENV/share/jupyter/kernels/python3/kernel.json" ]; then
  step "registering this environment's Jupyter kernel (python3) in $VENV"
  python -m ipykernel install --sys-prefix --name python3 >/dev/null
fi
find_mirror || step "the tests that read Cora and CiteSeer will fail: they need the mirror"
step "set-up done in $(elapsed "$SETUP_START")"
if [ "${1:-}" = --setup-only ]; then
  exit 0
fi

cd "$ROOT"
start=$SECONDS
status=0
python -m pytest -q "$@" || status=$?
step "tests done in $(elapsed "$start") (exit status $status); everything in $(elapsed)"
exit "$status"
