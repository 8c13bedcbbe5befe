#!/usr/bin/env bash
# The project's two commands (run as root on Debian 12):
#   ./dev.sh up      build Kuryr, bring the local stack up (Docker, Neutron/OVN, OVS, MariaDB) with
#                    kuryr-server running and registered with Docker as plugin `kuryr`
#                    (`./dev.sh up --hosts 2`: and a second host, see stack/host2.sh)
#   ./dev.sh test    everything CI runs: install and start the stack, lint, unit and integration
#                    tests against the real stack, smoke test; stops what it started
# and helpers: ./dev.sh down [--wipe] | status | bench | fuzz | soak
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STACK=$REPO/stack/stack.sh
cd "$REPO"

log() { printf '[dev %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now_ms() { date +%s%3N; }
declare -a TIMINGS=()
stage() {
  local name=$1; shift
  local t0 rc=0; t0=$(now_ms)
  log "== $name"
  "$@" || rc=$?
  TIMINGS+=("$(printf '%-34s %8d ms  %s' "$name" "$(( $(now_ms) - t0 ))" "$([[ $rc == 0 ]] && echo ok || echo "FAILED ($rc)")")")
  return $rc
}
print_timings() {
  printf '\nstage timings:\n' >&2
  printf '  %s\n' "${TIMINGS[@]}" >&2
}

ensure_rust_tools() {
  command -v cargo >/dev/null || { log "error: cargo not found (the machine's Rust toolchain)"; return 1; }
  rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
}

stack_processes_gone() {
  local run=${KURYR_STACK_DIR:-/var/lib/kuryr-stack}/run f left=0
  for f in "$run"/*.pid; do
    [[ -e $f ]] || continue
    if kill -0 "$(cat "$f")" 2>/dev/null; then log "still running: $f"; left=1; fi
  done
  # Every piece we start names the stack's directory on its command line (data, config or logs).
  local dir=${KURYR_STACK_DIR:-/var/lib/kuryr-stack}
  if pgrep -af -- "$dir/(run|data|etc)/" >&2; then
    log "processes of the stack still running (above)"; left=1
  fi
  # The second host's namespace and links go with it.
  if ip netns list | grep -qw kuryr-host2 || ip link show kuryr-ul1 >/dev/null 2>&1; then
    log "the second host's namespace or links are still there"; left=1
  fi
  return $left
}

# up twice is harmless, down stops everything we started, and up after down works.
stack_lifecycle_check() {
  local t0; t0=$(now_ms)
  "$STACK" up "$@"
  local second=$(( $(now_ms) - t0 ))
  log "second 'up' took $second ms (no-op expected)"
  "$STACK" down
  stack_processes_gone || { log "FAIL: 'down' left stack processes running"; return 1; }
  "$STACK" up "$@"
  "$STACK" status
}

run_rust_tests() {
  # shellcheck source=stack/env.sh
  source "$REPO/stack/env.sh"
  if command -v cargo-nextest >/dev/null || cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --all-features --no-fail-fast
  else
    cargo test --workspace --locked --all-features --no-fail-fast
  fi
}

debug_binary() { echo "${CARGO_TARGET_DIR:-$REPO/target}/debug/kuryr-server"; }

# A new user's first run: docs/deployment.md's managed plugin quick start, as written, with this
# stack's coordinates in the variables it tells the user to set. Its own last block removes what
# it made; on a failure half-way the same clean-up runs here.
docs_quick_start() {
  # shellcheck source=stack/env.sh
  source "$REPO/stack/env.sh"
  local etc rc=0 net=kq-demo-$$ plugin=kuryr/quickstart:latest
  etc=$(mktemp -d)
  PLUGIN=$plugin KURYR_ETC=$etc NEUTRON_URL=$KURYR_TEST_NEUTRON_URL HOST_ID=$KURYR_TEST_CHASSIS \
    NET=$net SUBNET=10.234.0.0/24 IMAGE=$KURYR_TEST_IMAGE BIN=$(debug_binary) \
    "$REPO/packaging/run-doc-section.sh" "$REPO/docs/deployment.md" "Quick start: managed plugin" \
    || rc=$?
  if ((rc)); then
    docker rm -f "$net-a" >/dev/null 2>&1 || true
    docker network rm "$net" >/dev/null 2>&1 || true
    docker plugin disable -f "$plugin" >/dev/null 2>&1 || true
    docker plugin rm -f "$plugin" >/dev/null 2>&1 || true
  fi
  rm -rf "$etc"
  return $rc
}

cmd_test() {
  local started_stack=0
  trap 'print_timings' EXIT
  if ! "$STACK" status >/dev/null 2>&1; then started_stack=1; fi
  if [[ ${CI:-} == true ]]; then
    # CI: a clean slate, whatever earlier runs left in the stack's data directory.
    stage "stack: wipe old data" "$STACK" down --wipe
    started_stack=1
  fi
  stage "rust toolchain" ensure_rust_tools
  stage "stack: install + up" "$STACK" up --keystone --hosts 2 --ml2-ovs
  if ((started_stack)); then
    trap '"$STACK" down || true; print_timings' EXIT
  fi
  stage "stack: up again, down, up" stack_lifecycle_check --keystone --hosts 2 --ml2-ovs
  stage "cargo fmt --check" cargo fmt --all -- --check
  stage "cargo clippy" cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
  stage "smoke test (stack only)" "$REPO/stack/smoke-test.sh"
  stage "rust tests (unit + real stack)" run_rust_tests
  stage "upstream kuryr-libnetwork fullstack tests (real stack)" \
    "$REPO/tests/upstream/fullstack.sh" "$(debug_binary)"
  stage "debian package: build, install, verify, purge" \
    "$REPO/packaging/test-deb.sh" "$(debug_binary)"
  stage "managed plugin + image (real stack)" \
    "$REPO/packaging/test-plugin-and-image.sh" "$(debug_binary)"
  stage "docs: managed plugin quick start" docs_quick_start
  if ((started_stack)); then
    stage "stack: down" "$STACK" down
    stage "stack: no process left" stack_processes_gone
    trap 'print_timings' EXIT
  fi
  log "all stages passed"
}

# Hostile input at length, outside CI: every plugin route (arbitrary bytes, JSON, request-shaped
# JSON), the CNI call (environment and stdin) and kuryr.conf, each under KURYR_FUZZ_CASES cases
# (default 1,000,000) of proptest, in release builds. No stack needed.
cmd_fuzz() {
  local cases=${KURYR_FUZZ_CASES:-1000000} t0 target rc=0
  local targets=("kuryr-libnetwork protocol_proptest" "kuryr-cni parse_props" "kuryr-config parse_props")
  log "fuzz: $cases cases per test"
  for target in "${targets[@]}"; do
    read -r pkg test <<<"$target"
    t0=$(now_ms)
    if KURYR_FUZZ_CASES=$cases cargo test --release --locked -q -p "$pkg" --test "$test" -- \
      --test-threads=2 --skip the_path_list_and_the_router_agree >&2; then
      log "fuzz: $pkg/$test: $cases cases per test, 0 failures, $(( ($(now_ms) - t0) / 1000 )) s"
    else
      log "fuzz: $pkg/$test FAILED"; rc=1
    fi
  done
  return $rc
}

main() {
  local verb=${1:-}; shift || true
  case $verb in
    up) "$STACK" up --kuryr "$@" ;;
    down) "$STACK" down "$@" ;;
    status) "$STACK" status ;;
    test) cmd_test ;;
    bench) exec "$REPO/bench/run.sh" "$@" ;;
    fuzz) cmd_fuzz ;;
    soak) exec "$REPO/bench/soak.sh" "$@" ;;
    *) echo "usage: $0 up | test | down [--wipe] | status | bench | fuzz | soak" >&2; exit 2 ;;
  esac
}
main "$@"
