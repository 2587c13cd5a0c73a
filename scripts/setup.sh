# Shared set-up of scripts/reproduce.sh and scripts/test.sh (sourced, not run).
#
# Each step is skipped when what it makes is already there, so a second run starts at once:
#   1. the virtual environment, $GAT_PYG_VENV (default: .venv in the repository root);
#   2. torch: kept if the environment has one (your build), else $GAT_PYG_TORCH from
#      $GAT_PYG_TORCH_INDEX (default: torch==2.13.0, the CPU wheel from PyTorch's CPU index);
#   3. (test.sh) torch_scatter and torch_sparse, which have no wheels on PyPI and build from
#      source against that torch (~8 and ~15 min on 2 cores; $MAX_JOBS compile jobs, default 2);
#   4. the package, editable, with the extras asked for; a stamp in the environment records
#      the extras and a digest of the build files, and the step reruns when either changes.
# Requires python3 (>= 3.10) with the venv module, and a C++ compiler for step 3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GAT_PYG_VENV:-$ROOT/.venv}"
TORCH_SPEC="${GAT_PYG_TORCH:-torch==2.13.0}"
TORCH_INDEX="${GAT_PYG_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
STAMP="$VENV/.gat_pyg-installed"
SETUP_START=$SECONDS

step() { printf '==> %s\n' "$*" >&2; }

elapsed() {
  local s=$(( SECONDS - ${1:-0} ))
  printf '%d min %02d s' $(( s / 60 )) $(( s % 60 ))
}

ensure_venv() {
  if [ -x "$VENV/bin/python" ]; then
    step "virtual environment $VENV: present"
  else
    step "creating the virtual environment $VENV"
    python3 -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
}

ensure_torch() {
  if python -c 'import torch' 2>/dev/null; then
    step "torch $(python -c 'import torch; print(torch.__version__)'): present, kept"
    return
  fi
  step "installing $TORCH_SPEC${TORCH_INDEX:+ (also looking in $TORCH_INDEX)}"
  # The pinned CPU wheel before anything else, so that nothing below pulls another build.
  # Both versions satisfy ==2.13.0 and pip takes the higher one, PyTorch's 2.13.0+cpu.
  # shellcheck disable=SC2086
  python -m pip install --quiet $TORCH_SPEC ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}
}

ensure_build_tools() {
  # --no-build-isolation builds against the torch above (an isolated build would fetch its
  # own), so the build requirements must be in the environment.
  if ! python -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)' \
      2>/dev/null || ! python -c 'import wheel' 2>/dev/null; then
    step "installing the build tools (setuptools >= 77, wheel)"
    python -m pip install --quiet 'setuptools>=77' wheel
  fi
}

ensure_triton() {
  # The gpu extra asks for triton>=3.6; the tests run its kernels in Triton's interpreter with
  # the release the GPU machines carry ($GAT_PYG_TRITON_SPEC, default triton==3.6.0), installed
  # first so that the extra is satisfied by it.
  local spec="${GAT_PYG_TRITON_SPEC:-triton==3.6.0}"
  if python -c "import importlib.metadata as m, sys; sys.exit(m.version('triton') != '${spec#triton==}')" \
      2>/dev/null; then
    step "$spec: present"
    return
  fi
  step "installing $spec"
  python -m pip install --quiet "$spec"
}

ensure_extensions() {
  if python -c 'import torch_scatter, torch_sparse' 2>/dev/null; then
    step "torch_scatter and torch_sparse: present"
    return
  fi
  local start=$SECONDS
  step "building torch_scatter and torch_sparse against torch (MAX_JOBS=${MAX_JOBS:-2}; ~25 min on 2 cores)"
  MAX_JOBS="${MAX_JOBS:-2}" python -m pip install --quiet --no-build-isolation torch-scatter torch-sparse
  step "built in $(elapsed "$start")"
}

build_digest() {
  # What an editable install depends on: the project metadata and any native sources.
  (cd "$ROOT" && { cat pyproject.toml; [ -f setup.py ] && cat setup.py;
     find gat_pyg -name '*.cpp' -o -name '*.h' -o -name '*.cu' | LC_ALL=C sort | xargs -r cat; }) \
    | python -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

ensure_package() {
  # $1: the extras wanted, comma-separated ('' for none).
  local wanted="$1" digest have_digest="" have_extras="" missing="" extra
  digest="$(build_digest)"
  [ -f "$STAMP" ] && read -r have_digest have_extras < "$STAMP" || true
  for extra in ${wanted//,/ }; do
    case ",$have_extras," in *",$extra,"*) ;; *) missing="$missing $extra" ;; esac
  done
  if [ "$digest" = "$have_digest" ] && [ -z "$missing" ] \
      && python -c 'import gat_pyg' 2>/dev/null; then
    step "gat_pyg${have_extras:+[$have_extras]}: installed from $ROOT, up to date"
    return
  fi
  # Install the union of the extras, so that the stamp only ever grows.
  local all
  all="$(printf '%s\n' ${have_extras//,/ } ${wanted//,/ } | awk 'NF && !seen[$0]++' | paste -sd, -)"
  step "installing gat_pyg${all:+[$all]} (editable) from $ROOT"
  python -m pip install --quiet --no-build-isolation -e "$ROOT${all:+[$all]}"
  printf '%s %s\n' "$digest" "$all" > "$STAMP"
}

find_mirror() {
  # The Planetoid mirror: $GAT_PYG_PLANETOID_MIRROR, else ../shared/data/planetoid beside the
  # repository if it is there; exported as an absolute path.
  local mirror="${GAT_PYG_PLANETOID_MIRROR:-$ROOT/../shared/data/planetoid}"
  if [ -f "$mirror/ind.cora.x" ]; then
    GAT_PYG_PLANETOID_MIRROR="$(cd "$mirror" && pwd)"
    export GAT_PYG_PLANETOID_MIRROR
    step "Planetoid files: the mirror $GAT_PYG_PLANETOID_MIRROR"
    return 0
  fi
  if [ -n "${GAT_PYG_PLANETOID_MIRROR:-}" ]; then
    step "GAT_PYG_PLANETOID_MIRROR=$GAT_PYG_PLANETOID_MIRROR has no ind.cora.x"
    return 1
  fi
  step "Planetoid files: no mirror at $ROOT/../shared/data/planetoid, so they are downloaded"
  return 1
}
