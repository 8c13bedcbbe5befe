#!/usr/bin/env bash
# The side-by-side benchmark (`./dev.sh bench`): Docker's bridge driver, the Python
# kuryr-libnetwork 18.0.0 and ours (with and without port pools), on the local stack, one driver
# at a time. Writes docs/benchmarks/results.md, results.json and latency.png. See
# docs/benchmarks/README.md.
#
#   bench/run.sh [--quick] [--reps N] [--burst-reps N] [--bursts 1,10,50] [--rounds N]
#                [--drivers bridge,python,ours,ours-nopool,ours-noprep]
#                [--scale N] [--scale-drivers bridge,ours,ours-nopool] [--scale-parallel N]
#                [--settle S] [--wait-active] [--out DIR]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
STACK=$REPO/stack/stack.sh
STACK_DIR=${KURYR_STACK_DIR:-/var/lib/kuryr-stack}
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/kuryr-rs
PYTHON_VENV=$CACHE_DIR/kuryr-python-venv
BENCH_VENV=$CACHE_DIR/bench-venv
WORK=$STACK_DIR/bench
DEV_KURYR_PID=$STACK_DIR/run/kuryr.pid

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# make_venv DIR REQUIREMENTS: a virtualenv whose packages are exactly the pinned file's; rebuilt
# only when the pinned file changes (same stamp scheme as stack.sh).
make_venv() {
  local dir=$1 req=$2 stamp
  stamp=$(sha256sum "$req" | cut -c1-16)
  [[ -f $dir/.kuryr-stamp && $(cat "$dir/.kuryr-stamp") == "$stamp" ]] && return 0
  # A venv made by hand with exactly the pinned packages is adopted rather than rebuilt.
  if [[ -x $dir/bin/pip ]] && diff -q <("$dir/bin/pip" freeze --all 2>/dev/null | grep -vE '^(pip|setuptools|wheel)==' | sort) \
      <(grep -vE '^\s*(#|$)' "$req" | sort) >/dev/null; then
    echo "$stamp" >"$dir/.kuryr-stamp"
    return 0
  fi
  log "creating virtualenv $dir from $(basename "$req")"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >"$WORK/pip-$(basename "$dir").log" 2>&1 \
    || { tail -n 30 "$WORK/pip-$(basename "$dir").log" >&2; die "pip install into $dir failed"; }
  echo "$stamp" >"$dir/.kuryr-stamp"
}

# Whether any variant of ours (ours, ours-nopool, ours-noprep) runs: then it needs the build.
wants_ours() {
  local prev="" a drivers="ours" # without --drivers, ours always runs
  for a in "$@"; do
    [[ $prev == --drivers ]] && drivers=$a
    [[ $a == --drivers=* ]] && drivers=${a#--drivers=}
    prev=$a
  done
  [[ ,$drivers, == *,ours[,-]* ]]
}

main() {
  [[ $(id -u) == 0 ]] || die "run as root"
  mkdir -p "$WORK"
  log "stack up"
  "$STACK" up
  make_venv "$PYTHON_VENV" "$HERE/requirements-kuryr-python.txt"
  make_venv "$BENCH_VENV" "$HERE/requirements-bench.txt"
  if wants_ours "$@"; then
    log "building kuryr-server (release)"
    (cd "$REPO" && cargo build --release --locked -q -p kuryr-libnetwork -p kuryr-cni) || die "cargo build failed"
  fi
  # The pod workload: the CRI client, and kuryr-cni where the stack's containerd runs plugins.
  log "building the pod workload's CRI client (release)"
  (cd "$REPO" && cargo build --release --locked -q -p kuryr-libnetwork --example cri_pods) || die "cargo build failed"
  if wants_ours "$@"; then
    local cni_bin; cni_bin=$(source "$REPO/stack/env.sh" && echo "${KURYR_TEST_CNI_BIN_DIR:-}")
    [[ -n $cni_bin ]] || die "the stack's containerd is not up (no KURYR_TEST_CNI_BIN_DIR)"
    install -m 0755 "$REPO/target/release/kuryr-cni" "$cni_bin/kuryr-cni"
  fi

  # A kuryr-server from `./dev.sh up` owns the `kuryr` socket: stop it for a run that needs the
  # socket (any variant of ours), restart it after. A bridge/python-only run leaves it alone.
  if wants_ours "$@" && [[ -f $DEV_KURYR_PID ]] && kill -0 "$(cat "$DEV_KURYR_PID")" 2>/dev/null &&
    grep -q kuryr "/proc/$(cat "$DEV_KURYR_PID")/cmdline" 2>/dev/null; then
    log "stopping the kuryr-server started by ./dev.sh up (pid $(cat "$DEV_KURYR_PID")); restarted afterwards"
    kill "$(cat "$DEV_KURYR_PID")"
    local i
    for i in $(seq 100); do kill -0 "$(cat "$DEV_KURYR_PID")" 2>/dev/null || break; sleep 0.2; done
    rm -f "$DEV_KURYR_PID"
    # Also on failure or Ctrl-C.
    trap restart_dev_kuryr EXIT
  fi
  # shellcheck source=../stack/env.sh
  (source "$REPO/stack/env.sh" && "$BENCH_VENV/bin/python" "$HERE/bench.py" --python-venv "$PYTHON_VENV" "$@")
}

restart_dev_kuryr() {
  log "restarting kuryr-server (./dev.sh up)"
  "$STACK" up --kuryr || log "error: could not restart kuryr-server; run ./dev.sh up"
}

main "$@"
