#!/usr/bin/env bash
# The upstream kuryr-libnetwork 18.0.0 fullstack tests, unchanged (the Python package's own
# kuryr_libnetwork/tests/fullstack, as pip installs them), against our kuryr-server on the
# local stack. They drive Docker through its API at tcp://0.0.0.0:2375 and Neutron through
# Keystone (OS_* variables), so for the run this script:
#   - builds their pinned venv (requirements-fullstack.txt),
#   - serves Docker's API on 127.0.0.1:2375 (a forwarder to Docker's unix socket; the tests'
#     0.0.0.0 reaches it) and tags the stack's image as kuryr/busybox,
#   - runs our daemon as plugin `kuryr` configured as the Python original behaves: no port
#     pools (the tests count a network's ports), and `ip_range_as_subnet = True` (the tests
#     expect the Neutron subnet and its pool on `IPRange`, the original's way; our default
#     follows Docker's IPAM, where the subnet is `Subnet`),
# then removes all of it and checks that no Kuryr network or port is left in Neutron.
#
#   tests/upstream/fullstack.sh [KURYR_SERVER_BINARY]   (root; `stack.sh up --keystone` first)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$REPO/target}/debug/kuryr-server}
CACHE_DIR=${KURYR_CACHE_DIR:-$HOME/.cache/kuryr-rs}
VENV=$CACHE_DIR/upstream-fullstack-venv
REQ=$HERE/requirements-fullstack.txt
SOCK=/run/docker/plugins/kuryr.sock
DOCKER_TCP=127.0.0.1:2375
IMAGE_TAG=kuryr/busybox

log() { printf '[fullstack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root"
[[ -x $BIN ]] || die "no kuryr-server binary at $BIN"
# shellcheck source=../../stack/env.sh
source "$REPO/stack/env.sh"
[[ -n ${KURYR_TEST_KEYSTONE_URL:-} ]] || die "the stack has no Keystone: stack.sh up --keystone"
[[ -n ${KURYR_TEST_DOCKER:-} ]] || die "the stack's Docker is not running"
[[ ! -S $SOCK ]] || ! curl -fsS -m 2 --unix-socket "$SOCK" -X POST http://kuryr/Plugin.Activate >/dev/null 2>&1 \
  || die "another daemon already serves $SOCK"

WORK=$(mktemp -d /tmp/kuryr-fullstack.XXXXXX)
daemon_pid="" forward_pid="" tagged=0
docker ps -aq --no-trunc | sort >"$WORK/containers-before"
cleanup() {
  # The tests stop their containers but leave them (upstream: "we should find out how the
  # container can be removed"): those the run made go.
  docker ps -aq --no-trunc | sort | comm -13 "$WORK/containers-before" - | xargs -r docker rm -f >/dev/null 2>&1 || true
  [[ -z $forward_pid ]] || kill "$forward_pid" 2>/dev/null || true
  if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  ((tagged == 0)) || docker rmi "$IMAGE_TAG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The venv: exactly the pinned packages, rebuilt when the file changes.
stamp=$(sha256sum "$REQ" | cut -c1-16)
if [[ ! -f $VENV/.kuryr-stamp || $(cat "$VENV/.kuryr-stamp") != "$stamp" ]]; then
  log "creating virtualenv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >"$WORK/pip.log" 2>&1 \
    || { tail -n 30 "$WORK/pip.log" >&2; die "pip install failed"; }
  echo "$stamp" >"$VENV/.kuryr-stamp"
fi
SITE=$("$VENV/bin/python" -c 'import kuryr_libnetwork, os; print(os.path.dirname(os.path.dirname(kuryr_libnetwork.__file__)))')
[[ -d $SITE/kuryr_libnetwork/tests/fullstack ]] || die "the package carries no fullstack tests"

# Docker's API on loopback TCP, for the tests' client only.
"$VENV/bin/python" - "$DOCKER_TCP" <<'EOF' &
import socket, sys, threading
host, port = sys.argv[1].rsplit(":", 1)
srv = socket.create_server((host, int(port)))
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
while True:
    c, _ = srv.accept()
    u = socket.socket(socket.AF_UNIX)
    u.connect("/var/run/docker.sock")
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
EOF
forward_pid=$!

docker tag "$KURYR_TEST_IMAGE" "$IMAGE_TAG" && tagged=1

cat >"$WORK/kuryr.conf" <<EOF
[DEFAULT]
host = $KURYR_TEST_CHASSIS
capability_scope = local
state_path = $WORK/state
ip_range_as_subnet = True

[neutron]
auth_type = none
endpoint = $KURYR_TEST_NEUTRON_URL
vif_plugging_is_fatal = True
vif_plugging_timeout = 30

[vif_pool]
enabled = false
EOF
"$BIN" --config-file "$WORK/kuryr.conf" >"$WORK/kuryr.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
  curl -fsS -m 2 --unix-socket "$SOCK" -X POST http://kuryr/Plugin.Activate >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS -m 2 "http://$DOCKER_TCP/_ping" >/dev/null || die "docker's API is not on $DOCKER_TCP"

# Kuryr's resources in Neutron (ports it owns, networks and subnetpools it names).
kuryr_footprint() {
  local n=$KURYR_TEST_NEUTRON_URL/v2.0
  curl -fsS "$n/ports?device_owner=compute:kuryr" | jq -r '.ports[].id'
  curl -fsS "$n/networks" | jq -r '.networks[] | select(.name | startswith("kuryr-net")) | .id'
  curl -fsS "$n/subnetpools" | jq -r '.subnetpools[] | select(.name | startswith("kuryrPool")) | .id'
}
kuryr_footprint | sort >"$WORK/before"

log "running the upstream fullstack tests"
rc=0
(
  cd "$SITE"
  export OS_AUTH_URL=$KURYR_TEST_KEYSTONE_URL OS_USERNAME=$KURYR_TEST_KEYSTONE_USERNAME \
    OS_PASSWORD=$KURYR_TEST_KEYSTONE_PASSWORD OS_PROJECT_NAME=$KURYR_TEST_KEYSTONE_PROJECT \
    OS_USER_DOMAIN_NAME=$KURYR_TEST_KEYSTONE_USER_DOMAIN \
    OS_PROJECT_DOMAIN_NAME=$KURYR_TEST_KEYSTONE_PROJECT_DOMAIN
  "$VENV/bin/python" -m unittest discover -v -s kuryr_libnetwork/tests/fullstack -t .
) 2>&1 | tee "$WORK/tests.log" || rc=$?
grep -qE '^OK' "$WORK/tests.log" || rc=1
if ((rc)); then
  log "kuryr log (tail):"; tail -n 40 "$WORK/kuryr.log" >&2
fi

# Nothing of Kuryr's is left.
kuryr_footprint | sort >"$WORK/after"
if ! diff -q "$WORK/before" "$WORK/after" >/dev/null; then
  log "left in Neutron by the run: $(comm -13 "$WORK/before" "$WORK/after" | tr '\n' ' ')"; rc=1
fi
((rc == 0)) && log "upstream fullstack tests: all passed, nothing left"
exit $rc
