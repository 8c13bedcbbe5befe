#!/usr/bin/env bash
# Assembles the minimal root file system that both the Docker managed plugin
# (packaging/plugin/build-plugin.sh) and the container image (packaging/image/build-image.sh) are
# made of: kuryr-server, ovs-vsctl (the veth driver plugs ports into br-int with it), every shared
# library `ldd` lists for the two, the CA bundle (reqwest loads the system's roots at start-up and
# Keystone/Neutron may be served over TLS), a minimal /etc/passwd and /etc/group, and the mount
# points the runtime needs. No shell, no package manager.
#
#   build-rootfs.sh <kuryr-server binary> <rootfs directory (created; must not exist or be empty)>
#
# The CNI plugin `kuryr-cni` goes in too when it is found beside the server binary (or at
# KURYR_CNI_BIN): a Kubernetes DaemonSet's init container installs it on the node from there.
#
# KURYR_STRIP=0 keeps the binary's symbols (they are stripped from the copy by default: a debug
# build is ~170 MB with them). KURYR_OVS_VSCTL overrides where ovs-vsctl is taken from.
set -euo pipefail

die() { printf 'build-rootfs: error: %s\n' "$*" >&2; exit 1; }

(( $# == 2 )) || die "usage: $0 <kuryr-server binary> <rootfs directory>"
BIN=$1
ROOT=$2
OVS_VSCTL=${KURYR_OVS_VSCTL:-$(command -v ovs-vsctl || true)}
CA_BUNDLE=${KURYR_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

[[ -f $BIN && -x $BIN ]] || die "$BIN is not an executable file"
[[ -n $OVS_VSCTL && -x $OVS_VSCTL ]] || die "ovs-vsctl not found (install openvswitch-common or set KURYR_OVS_VSCTL)"
[[ -f $CA_BUNDLE ]] || die "$CA_BUNDLE not found (install ca-certificates or set KURYR_CA_BUNDLE)"
if [[ -e $ROOT ]] && [[ -n $(ls -A "$ROOT") ]]; then die "$ROOT exists and is not empty"; fi

mkdir -p "$ROOT"/{usr/bin,etc/kuryr,etc/ssl/certs,run/docker/plugins,var/run/openvswitch,tmp,root,proc,sys,dev}
chmod 1777 "$ROOT/tmp"
chmod 0700 "$ROOT/root"

install -m 0755 "$BIN" "$ROOT/usr/bin/kuryr-server"
if [[ ${KURYR_STRIP:-1} != 0 ]]; then
  command -v strip >/dev/null || die "strip not found (install binutils, or set KURYR_STRIP=0)"
  strip --strip-unneeded "$ROOT/usr/bin/kuryr-server"
fi
install -m 0755 "$OVS_VSCTL" "$ROOT/usr/bin/ovs-vsctl"

# Every library the two programs load, at the path the dynamic loader will look for it (the
# loader itself included: it is the `/lib64/ld-linux-*.so.2` line without `=>`).
copy_libs() {
  local prog=$1 line lib
  local out
  out=$(ldd "$prog" 2>&1) || die "ldd $prog failed: $out"
  while read -r line; do
    case $line in
      *'=> not found'*) die "$prog needs a library that is not installed: $line" ;;
      *'=> /'*) lib=${line#*=> }; lib=${lib%% (*} ;;
      /*) lib=${line%% (*} ;;
      *) continue ;; # linux-vdso.so.1, statically linked
    esac
    if [[ ! -e $ROOT$lib ]]; then
      mkdir -p "$ROOT$(dirname "$lib")"
      cp -L "$lib" "$ROOT$lib"
    fi
  done <<<"$out"
}
copy_libs "$BIN"
copy_libs "$OVS_VSCTL"
CNI_BIN=${KURYR_CNI_BIN:-$(dirname "$BIN")/kuryr-cni}
if [[ -f $CNI_BIN && -x $CNI_BIN ]]; then
  install -m 0755 "$CNI_BIN" "$ROOT/usr/bin/kuryr-cni"
  if [[ ${KURYR_STRIP:-1} != 0 ]]; then strip --strip-unneeded "$ROOT/usr/bin/kuryr-cni"; fi
  copy_libs "$CNI_BIN"
fi

cp -L "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
cat >"$ROOT/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$ROOT/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
# glibc resolves host names with files, then DNS (both built into libc.so.6 since 2.34).
printf 'hosts: files dns\n' >"$ROOT/etc/nsswitch.conf"
# Docker bind-mounts its own over these (host network); they must exist as files to be mounted on.
: >"$ROOT/etc/hosts"
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/hostname"

# The rootfs must run on its own: both programs start in it with nothing from the host.
if [[ $(id -u) == 0 ]] && command -v chroot >/dev/null; then
  chroot "$ROOT" /usr/bin/kuryr-server version >/dev/null \
    || die "kuryr-server does not run inside $ROOT"
  chroot "$ROOT" /usr/bin/ovs-vsctl --version >/dev/null \
    || die "ovs-vsctl does not run inside $ROOT"
fi
