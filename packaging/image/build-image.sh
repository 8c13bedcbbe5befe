#!/usr/bin/env bash
# Builds the kuryr-server container image for Kolla-style deployments without a registry or a
# Dockerfile build: the rootfs made by ../build-rootfs.sh (kuryr-server, ovs-vsctl, their
# libraries; no shell) packed as a tarball and loaded with `docker import`.
#
#   build-image.sh <kuryr-server binary> [tag, default kuryr-libnetwork:latest]
#
# The image runs `kuryr-server --config-file /etc/kuryr/kuryr.conf serve`; a command given to
# `docker run` replaces `serve` (e.g. `check-config`, `version`). Logs go to stderr, whatever
# kuryr.conf says about log_file/log_dir. Run it with the host's network, NET_ADMIN, the plugin
# directory and Open vSwitch's run directory (see docs/deployment.md, "Container image").
#
# KURYR_IMAGE_TAR=<file>: also keep the tarball there (to `docker import` it on other hosts).
# DOCKER: the docker client (default: /usr/bin/docker if present, else docker on PATH).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'build-image: %s\n' "$*" >&2; }

(( $# >= 1 && $# <= 2 )) || die "usage: $0 <kuryr-server binary> [tag, default kuryr-libnetwork:latest]"
BIN=$1
TAG=${2:-kuryr-libnetwork:latest}
if [[ -z ${DOCKER:-} ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

WORK=$(mktemp -d /tmp/kuryr-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$HERE/../build-rootfs.sh" "$BIN" "$WORK/rootfs"
# Owned by root whoever builds it, with stable ordering, so equal inputs give equal layers.
tar --numeric-owner --owner=0 --group=0 --sort=name -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
if [[ -n ${KURYR_IMAGE_TAR:-} ]]; then cp "$WORK/rootfs.tar" "$KURYR_IMAGE_TAR"; fi

version=$("$BIN" version 2>/dev/null | awk '{print $2}') || version=unknown
"$DOCKER" import \
  --message "kuryr-server ${version}" \
  --change 'ENV PATH=/usr/bin:/usr/sbin:/bin:/sbin' \
  --change 'ENV OS_DEFAULT__LOG_FILE=' \
  --change 'ENV OS_DEFAULT__LOG_DIR=' \
  --change 'ENTRYPOINT ["/usr/bin/kuryr-server", "--config-file", "/etc/kuryr/kuryr.conf"]' \
  --change 'CMD ["serve"]' \
  --change "LABEL org.opencontainers.image.title=kuryr-libnetwork org.opencontainers.image.version=${version}" \
  "$WORK/rootfs.tar" "$TAG" >/dev/null || die "docker import failed"
log "built image $TAG ($("$DOCKER" image inspect -f '{{.Size}}' "$TAG") bytes)"
