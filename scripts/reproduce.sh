#!/usr/bin/env bash
# The quick reproduction on a fresh clone, set-up included: GAT and GCN on Cora and CiteSeer,
# seeds 0-9, the paper's settings; the table gives each mean test accuracy beside the paper's,
# with its standard error and the runs that stopped early, so the gap can be judged at a glance
# (a few minutes of training). Results go to results/ in the repository root; a rerun skips what
# is installed and the runs that finished.
#
#   scripts/reproduce.sh                   # extra arguments go to `gat-pyg reproduce`
#   GAT_PYG_TORCH_INDEX=https://download.pytorch.org/whl/cu128 scripts/reproduce.sh   # a CUDA torch
#
# The Planetoid files come from $GAT_PYG_PLANETOID_MIRROR or ../shared/data/planetoid beside the
# repository, else they are downloaded. See scripts/setup.sh for the environment variables.
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_venv
ensure_torch
ensure_build_tools
ensure_package ''
find_mirror || true
step "set-up done in $(elapsed "$SETUP_START")"

cd "$ROOT"
start=$SECONDS
status=0
gat-pyg reproduce --datasets cora citeseer --models gat gcn --runs 10 --out results/ "$@" \
  || status=$?
step "reproduction done in $(elapsed "$start") (exit status $status); everything in $(elapsed)"
exit "$status"
