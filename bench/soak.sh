#!/usr/bin/env bash
# Soak (outside CI): LIFECYCLES container lifecycles (default 1,000) over 5 Kuryr networks,
# CONCURRENCY at a time (default 10): `docker run -d` on one network, `network connect` to a
# second and `disconnect` again (every other lifecycle), `docker rm -f`. Reports failures, what is
# left afterwards in Neutron, on the host and in Open vSwitch (must be nothing), the daemon's RSS
# and open file descriptors (start, peak, end) and Neutron requests per lifecycle for each tenth of
# the run (must stay flat).
#
#   bench/soak.sh [--lifecycles N] [--concurrency C] [--out FILE] [--pid PID]
# (as root; brings the stack up with its Kuryr, or, with --pid, uses the Kuryr already serving
# `kuryr` with that pid: e.g. one run under a heap profiler)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$REPO/stack/stack.sh
TOTAL=1000
CONC=10
OUT=
KPID=
while (($#)); do
  case $1 in
    --pid) KPID=$2; shift 2 ;;
    --lifecycles) TOTAL=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--lifecycles N] [--concurrency C] [--out FILE] [--pid PID]" >&2; exit 2 ;;
  esac
done
log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -z $KPID ]]; then "$STACK" up --kuryr >&2; fi
eval "$("$STACK" env)"
STACK_DIR=${KURYR_STACK_DIR:-/var/lib/kuryr-stack}
NLOG=$STACK_DIR/logs/neutron-api.log
KPID=${KPID:-$(cat "$STACK_DIR/run/kuryr.pid")}
N=http://127.0.0.1:9696/v2.0
PFX=ksoak$$
WORK=$(mktemp -d)
NETS=()

cleanup() {
  local c n
  for c in $(docker ps -aq -f "name=$PFX-"); do docker rm -f "$c" >/dev/null 2>&1 || true; done
  for n in "${NETS[@]}"; do docker network rm "$n" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$KPID/status"; }
# Of the RSS, the anonymous part (heap, stacks): what the daemon holds. The rest is file-backed,
# mostly the binary's code, paged in as more of it runs, shared and reclaimable.
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$KPID/status"; }
fds() { find "/proc/$KPID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

for i in 0 1 2 3 4; do
  NETS+=("$PFX-n$i")
  docker network create -d kuryr --ipam-driver kuryr --subnet "10.94.$i.0/24" "$PFX-n$i" >/dev/null
done
net_ids=()
for n in "${NETS[@]}"; do
  did=$(docker network inspect -f '{{.Id}}' "$n")
  net_ids+=("$(curl -fsS "$N/networks?tags=kuryr.net.uuid.lh:${did:0:32}" | jq -r '.networks[0].id')")
done

# One lifecycle; prints "ok" or "fail <step>".
lifecycle() {
  local k=$1 name=$PFX-c$1 a=$(( $1 % 5 )) b=$(( ($1 + 2) % 5 ))
  docker run -d --name "$name" --network "${NETS[$a]}" "$KURYR_TEST_IMAGE" sleep 600 >/dev/null 2>>"$WORK/errors" || { echo "fail run"; docker rm -f "$name" >/dev/null 2>&1; return; }
  if (( k % 2 == 0 )); then
    docker network connect "${NETS[$b]}" "$name" 2>>"$WORK/errors" || { echo "fail connect"; docker rm -f "$name" >/dev/null 2>&1; return; }
    docker network disconnect "${NETS[$b]}" "$name" 2>>"$WORK/errors" || { echo "fail disconnect"; docker rm -f "$name" >/dev/null 2>&1; return; }
  fi
  docker rm -f "$name" >/dev/null 2>>"$WORK/errors" || { echo "fail rm"; return; }
  echo ok
}

rss0=$(rss_kb); anon0=$(anon_kb); fd0=$(fds); rss_peak=$rss0; anon_peak=$anon0; fd_peak=$fd0
log "$TOTAL lifecycles, $CONC at a time, over ${#NETS[@]} networks (RSS ${rss0} kB, anonymous $anon0 kB, $fd0 fds)"
t0=$(date +%s)
TENTH=$(( TOTAL / 10 > 0 ? TOTAL / 10 : 1 ))
: >"$WORK/windows"
for ((start = 0; start < TOTAL; start += TENTH)); do
  first=$(wc -l <"$NLOG")
  end=$(( start + TENTH < TOTAL ? start + TENTH : TOTAL ))
  seq "$start" $((end - 1)) | xargs -P "$CONC" -I{} bash -c "$(declare -f lifecycle); PFX=$PFX; NETS=(${NETS[*]}); WORK=$WORK; KURYR_TEST_IMAGE=$KURYR_TEST_IMAGE; lifecycle {}" >>"$WORK/outcomes"
  last=$(wc -l <"$NLOG")
  r=$(rss_kb); a=$(anon_kb); f=$(fds)
  (( r > rss_peak )) && rss_peak=$r
  (( a > anon_peak )) && anon_peak=$a
  (( f > fd_peak )) && fd_peak=$f
  printf '%d %d %d %d %d\n' "$end" "$((last - first))" "$r" "$f" "$a" >>"$WORK/windows"
  log "$end done: $(( (last - first) * 100 / (end - start) / 100 )).$(( (last - first) * 100 / (end - start) % 100 )) Neutron requests per lifecycle, RSS $r kB (anonymous $a kB), $f fds"
done
secs=$(( $(date +%s) - t0 ))
sleep 25 # the pools' next check tidies what came back
rss1=$(rss_kb); anon1=$(anon_kb); fd1=$(fds)
fails=$(grep -c '^fail' "$WORK/outcomes" || true)
oks=$(grep -c '^ok' "$WORK/outcomes" || true)

# Leaks: the containers' ports are gone (the pools' own ports stay until the networks go).
# Docker 20.10 sometimes still counts an endpoint on a network none of its containers is on
# ("has active endpoints"; its own bookkeeping: every CreateEndpoint Kuryr got was followed by a
# DeleteEndpoint). Asked again for half a minute, then reported.
refused=()
for n in "${NETS[@]}"; do
  for try in 1 2 3 4 5 6 7; do
    docker network rm "$n" >/dev/null 2>>"$WORK/rm-errors" && break
    if ((try == 7)); then refused+=("$n"); else sleep 5; fi
  done
done
NETS=("${refused[@]}")
sleep 2
left_nets=0; left_ports=0
for id in "${net_ids[@]}"; do
  curl -fsS -o /dev/null "$N/networks/$id" 2>/dev/null && left_nets=$((left_nets + 1))
  left_ports=$((left_ports + $(curl -fsS "$N/ports?network_id=$id" | jq '.ports | length')))
done
left_pools=$(curl -fsS "$N/subnetpools" | jq '[.subnetpools[] | select(.name | startswith("kuryrPool-10.94."))] | length')
left_ovs=$(ovs-vsctl --bare --columns=name find Interface external_ids:owner=kuryr | grep -c . || true)
left_taps=$(ip -o link show | grep -c ': tap' || true)
sleep 35 # one heap trim (every 30 s) after the networks went
rss2=$(rss_kb); anon2=$(anon_kb); fd2=$(fds)

{
  echo "# bench/soak.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
  echo "lifecycles: $TOTAL ($oks ok, $fails failed), $CONC at a time, over 5 networks, in $secs s"
  echo "daemon RSS kB: start $rss0, peak $rss_peak, end $rss1; open fds: start $fd0, peak $fd_peak, end $fd1"
  echo "daemon anonymous RSS kB (heap, stacks): start $anon0, peak $anon_peak, end $anon1; each tenth:" \
    "$(awk '{printf "%s%d", (NR > 1 ? " " : ""), $5}' "$WORK/windows")"
  echo "idle, the networks removed: RSS $rss2 kB, anonymous $anon2 kB, $fd2 fds"
  echo "Neutron requests per lifecycle, each tenth of the run:" \
    "$(awk -v t="$TENTH" '{printf "%s%.1f", (NR > 1 ? " " : ""), $2 / t}' "$WORK/windows")"
  if ((${#refused[@]})); then
    echo "docker network rm refused by Docker for ${#refused[@]} network(s): $(sort -u "$WORK/rm-errors" | head -1)"
  fi
  echo "left after network rm: $left_nets networks, $left_ports ports, $left_pools subnetpools, $left_ovs OVS ports owned by kuryr, $left_taps tap links"
  if ((fails)); then echo "first errors:"; head -5 "$WORK/errors"; fi
} | tee "${OUT:-/dev/stderr}"
(( fails == 0 && left_nets == 0 && left_ports == 0 && left_pools == 0 && left_ovs == 0 && left_taps == 0 ))
