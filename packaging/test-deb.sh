#!/usr/bin/env bash
# Builds the Debian package from a kuryr-server binary, installs it, checks what it installed,
# purges it and checks that nothing is left. As root, on a Debian machine; needs no network
# (the package's dependencies are glibc and libgcc, recommends are not installed).
#
#   packaging/test-deb.sh [BINARY]      (default ${CARGO_TARGET_DIR:-target}/release/kuryr-server)
#
# Never starts the service. Refuses to run where kuryr is already installed or /etc/kuryr
# exists (the purge would remove a real configuration). lintian runs if installed (not fatal).
set -euo pipefail

PKG=kuryr-libnetwork-rs
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UNITS=(/lib/systemd/system/kuryr-libnetwork.service /lib/systemd/system/kuryr-libnetwork.socket)

log() { printf '[test-deb %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
now_ms() { date +%s%3N; }
T0=$(now_ms)

(($# <= 1)) || { echo "usage: $0 [BINARY]" >&2; exit 2; }
BIN=${1:-${CARGO_TARGET_DIR:-$REPO/target}/release/kuryr-server}
[[ $(id -u) == 0 ]] || fail "run as root (installs and purges $PKG)"
for tool in apt-get dpkg-query dpkg-deb; do command -v "$tool" >/dev/null || fail "no $tool: not a Debian system"; done

# dpkg's state of a package: present covers half-installed and config-files too.
status() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true; }
present() { local s; s=$(status "$1"); [[ -n $s && $s != not-installed ]]; }
installed() { [[ $(status "$1") == installed ]]; }

# --- preconditions: a machine this test may install on and purge from
for p in "$PKG" kuryr-libnetwork; do
  if present "$p"; then fail "package $p is on this machine ($(status "$p")): not touching it"; fi
done
[[ ! -e /usr/bin/kuryr-server ]] || fail "/usr/bin/kuryr-server exists (not from this test): not overwriting it"
[[ ! -e /usr/lib/cni/kuryr-cni ]] || fail "/usr/lib/cni/kuryr-cni exists (not from this test): not overwriting it"
[[ ! -e /etc/kuryr ]] || fail "/etc/kuryr exists: the package would adopt kuryr.conf and the purge remove it"

WORK=$(mktemp -d)
INSTALLED=0
cleanup() {
  local rc=$?
  if ((INSTALLED)); then
    log "cleaning up: purging $PKG"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 "$PKG" >&2 || rc=1
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# --- build
log "building the package from $BIN"
DEB=$("$REPO/packaging/build-deb.sh" -o "$WORK" "$BIN") || fail "build-deb.sh failed"
[[ -f $DEB ]] || fail "build-deb.sh printed '$DEB', which is not a file"
VERSION=$(dpkg-deb -f "$DEB" Version)

# --- lintian: advice, not a gate
if command -v lintian >/dev/null; then
  log "lintian (warnings are printed, not fatal)"
  lintian --info --display-info "$DEB" >&2 || log "lintian reported problems (above); not fatal"
else
  log "lintian not installed, skipped"
fi

# --- install from the local file
log "installing $DEB"
INSTALLED=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=300 "$DEB" >&2 || fail "apt-get install $DEB failed"
installed "$PKG" || fail "$PKG not installed after apt-get install"

# --- what it installed
log "checking the installed files"
out=$(/usr/bin/kuryr-server version) || fail "/usr/bin/kuryr-server version failed"
[[ $out == "kuryr-server $VERSION" ]] || fail "kuryr-server version says '$out', expected 'kuryr-server $VERSION'"

if [[ -x $(dirname "$BIN")/kuryr-cni ]]; then
  out=$(CNI_COMMAND=VERSION /usr/lib/cni/kuryr-cni </dev/null) || fail "/usr/lib/cni/kuryr-cni does not run"
  grep -q '"1.1.0"' <<<"$out" || fail "/usr/lib/cni/kuryr-cni answers VERSION wrongly: $out"
fi

MAN=/usr/share/man/man1/kuryr-server.1.gz
[[ -s $MAN ]] || fail "no man page at $MAN"
gzip -t "$MAN" || fail "$MAN is not valid gzip"
zcat "$MAN" | grep -q '^\.TH kuryr-server 1 ' || fail "$MAN has no .TH kuryr-server 1 header"
if command -v man >/dev/null; then
  found=$(man -w kuryr-server 2>/dev/null) || fail "man -w kuryr-server finds no page"
  [[ $found == "$MAN" ]] || fail "man -w kuryr-server gives $found, expected $MAN"
fi

for f in /usr/share/bash-completion/completions/kuryr-server \
  /usr/share/zsh/vendor-completions/_kuryr-server \
  /usr/share/fish/vendor_completions.d/kuryr-server.fish; do
  [[ -s $f ]] || fail "no completion file $f"
  grep -q check-config "$f" || fail "$f does not offer check-config"
done
bash -n /usr/share/bash-completion/completions/kuryr-server || fail "bash completion has syntax errors"

CONF=/etc/kuryr/kuryr.conf
[[ -f $CONF ]] || fail "no $CONF"
[[ $(stat -c %a "$CONF") == 640 ]] || fail "$CONF mode is $(stat -c %a "$CONF"), expected 640 (credentials)"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q "^ $CONF " || fail "$CONF is not a conffile of $PKG"
# The shipped file parses, without unknown options; only the Neutron access is left to set.
check=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/bin/kuryr-server --config-file "$CONF" check-config 2>&1) &&
  fail "check-config passed on the unconfigured $CONF:"$'\n'"$check"
grep -q "^\[ ok \] config files: $CONF\$" <<<"$check" || fail "check-config does not load $CONF cleanly:"$'\n'"$check"
grep -q "no Neutron credentials" <<<"$check" || fail "check-config on $CONF: expected only missing credentials:"$'\n'"$check"
[[ -f /usr/share/doc/$PKG/copyright ]] || fail "no /usr/share/doc/$PKG/copyright"

for unit in "${UNITS[@]}"; do [[ -f $unit ]] || fail "no $unit"; done
# Nothing may be started by the installation: no process runs the packaged binary.
for exe in /proc/[0-9]*/exe; do
  if [[ $(readlink "$exe" 2>/dev/null) == /usr/bin/kuryr-server ]]; then
    fail "the installation started kuryr-server (${exe%/exe})"
  fi
done

# --- the units, as systemd reads them (no running systemd needed)
if [[ -x /usr/bin/systemd-analyze ]]; then
  log "systemd-analyze verify ${UNITS[*]}"
  # --man=yes (the default) also checks that Documentation=man:kuryr-server(1) exists.
  if ! verify=$(SYSTEMD_LOG_COLOR=0 /usr/bin/systemd-analyze verify "${UNITS[@]}" 2>&1); then
    printf '%s\n' "$verify" >&2
    fail "systemd-analyze verify failed"
  fi
  if [[ -n $verify ]]; then
    # Any complaint about our units fails; others (the host's units) are printed only.
    printf '%s\n' "$verify" >&2
    if grep -E 'kuryr-libnetwork\.(service|socket)' <<<"$verify" >/dev/null; then
      fail "systemd-analyze verify complains about the kuryr units"
    fi
  fi
else
  log "no /usr/bin/systemd-analyze: unit verification skipped"
fi

# --- purge, and nothing left
mapfile -t FILES < <(dpkg-query -L "$PKG" | while read -r f; do
  # Files and links, not directories (nor /lib, a link to one on merged-/usr systems).
  if [[ ! -d $f ]] && [[ -e $f || -L $f ]]; then echo "$f"; fi
done)
((${#FILES[@]} > 0)) || fail "dpkg lists no files for $PKG"
log "purging $PKG (${#FILES[@]} files)"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 "$PKG" >&2 ||
  fail "apt-get purge $PKG failed"
INSTALLED=0
! present "$PKG" || fail "$PKG not fully purged (dpkg status: $(status "$PKG"))"
left=()
for f in "${FILES[@]}" /etc/kuryr "/usr/share/doc/$PKG"; do
  if [[ -e $f || -L $f ]]; then left+=("$f"); fi
done
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"

log "ok: $PKG $VERSION built, installed, checked and purged in $(( ($(now_ms) - T0) / 1000 )) s"
