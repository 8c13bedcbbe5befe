#!/usr/bin/env bash
# Builds the Docker managed plugin (the successor of the Python original's kuryr/libnetwork2):
# a rootfs made by ../build-rootfs.sh plus config.json (next to this script), registered with the
# local Docker daemon by `docker plugin create` (disabled). No registry and no image build needed.
#
#   build-plugin.sh <kuryr-server binary> [plugin name, default kuryr/libnetwork2:latest]
#
# Then: docker plugin set <name> config.source=/etc/kuryr   (the directory holding kuryr.conf)
#       docker plugin enable <name>
#       docker network create -d <name> --ipam-driver <name> --subnet 10.10.0.0/24 mynet
#
# KURYR_PLUGIN_DIR=<dir>: assemble the plugin directory there and keep it (e.g. to copy it to other
# hosts for `docker plugin create`); by default a temporary directory is used and removed.
# DOCKER: the docker client (default: /usr/bin/docker if present, else docker on PATH).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { printf 'build-plugin: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'build-plugin: %s\n' "$*" >&2; }

(( $# >= 1 && $# <= 2 )) || die "usage: $0 <kuryr-server binary> [plugin name, default kuryr/libnetwork2:latest]"
BIN=$1
NAME=${2:-kuryr/libnetwork2:latest}
if [[ -z ${DOCKER:-} ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

if [[ -n ${KURYR_PLUGIN_DIR:-} ]]; then
  DIR=$KURYR_PLUGIN_DIR
  mkdir -p "$DIR"
  [[ -z $(ls -A "$DIR") ]] || die "KURYR_PLUGIN_DIR $DIR is not empty"
else
  DIR=$(mktemp -d /tmp/kuryr-plugin.XXXXXX)
  trap 'rm -rf "$DIR"' EXIT
fi

"$HERE/../build-rootfs.sh" "$BIN" "$DIR/rootfs"
cp "$HERE/config.json" "$DIR/config.json"
log "plugin directory $DIR: $(du -sh "$DIR" | cut -f1)"
"$DOCKER" plugin create "$NAME" "$DIR" >/dev/null || die "docker plugin create $NAME failed"
log "created plugin $NAME (disabled): set its config source and enable it"
