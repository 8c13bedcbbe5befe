#!/usr/bin/env bash
# How Kuryr's cost on Neutron grows with hosts: container starts on one host, then on two hosts at
# once (the stack's second host, `stack.sh up --hosts 2`), on one Neutron network shared by both.
# For each phase: start latency per host (mean, p50, p90), and what Neutron saw while the
# containers started, then while they were removed (each with 5 s after, for the pools' refills
# and returns): requests per container, by method, the time Neutron took to answer them, and the
# CPU seconds Neutron's API process used. docs/scaling.md
# turns these figures into what a 100-host deployment needs.
#
#   bench/scale-hosts.sh [--containers N] [--out FILE]     (as root; brings the stack up itself)
set -euo pipefail
[[ -n ${SCALE_TRACE:-} ]] && set -x
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$REPO/stack/stack.sh
N=20
OUT=
while (($#)); do
  case $1 in
    --containers) N=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--containers N] [--out FILE]" >&2; exit 2 ;;
  esac
done

log() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
"$STACK" up --kuryr --hosts 2 >&2
eval "$("$STACK" env)"
D1=(docker)
D2=(docker -H "$KURYR_TEST_HOST2_DOCKER")
STACK_DIR=${KURYR_STACK_DIR:-/var/lib/kuryr-stack}
NLOG=$STACK_DIR/logs/neutron-api.log
NPID=$(cat "$STACK_DIR/run/neutron-api.pid")
IMAGE=$KURYR_TEST_IMAGE
NET=kscale-$$
WORK=$(mktemp -d)
RESULTS=$WORK/results.txt

cleanup() {
  local c
  for c in $("${D1[@]}" ps -aq -f "name=$NET-") ; do "${D1[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
  for c in $("${D2[@]}" ps -aq -f "name=$NET-") ; do "${D2[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
  "${D2[@]}" network rm "$NET" >/dev/null 2>&1 || true
  "${D1[@]}" network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# CPU seconds (user + system) of Neutron's API: the uwsgi master and its workers.
neutron_cpu() {
  local pids p total=0 f
  pids="$NPID $(pgrep -P "$NPID" | tr '\n' ' ')"
  for p in $pids; do
    f=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
    total=$((total + f))
  done
  echo "$total $(getconf CLK_TCK)" | awk '{printf "%.2f", $1 / $2}'
}

# start_many HOST(1|2) COUNT TAG: starts COUNT containers one after the other, one ms figure each.
start_many() {
  local host=$1 count=$2 tag=$3 i t0 t1
  local -a d
  if [[ $host == 1 ]]; then d=("${D1[@]}"); else d=("${D2[@]}"); fi
  for ((i = 0; i < count; i++)); do
    t0=$(date +%s%N)
    "${d[@]}" run -d --name "$NET-$tag-h$host-$i" --network "$NET" "$IMAGE" sleep 3600 >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  done >"$WORK/$tag-h$host.ms"
}

stats() { # file -> mean p50 p90
  sort -n "$1" | awk '{a[NR]=$1; s+=$1} END {
    if (NR == 0) { print "0 0 0"; exit }
    m = int((NR + 1) / 2); q = int(NR * 0.9 + 0.5); if (q < 1) q = 1; if (q > NR) q = NR
    printf "%d %d %d\n", s/NR, a[m], a[q] }'
}

# neutron_summary TAG FIRST_LINE CPU0 COUNT VERB: what Neutron saw since FIRST_LINE of its log and
# the CPU it used since CPU0, per container (COUNT of them).
neutron_summary() {
  local tag=$1 first=$2 cpu0=$3 count=$4 verb=$5 last cpu1
  last=$(wc -l <"$NLOG")
  cpu1=$(neutron_cpu)
  sed -n "$((first + 1)),${last}p" "$NLOG" | grep -o '\] [A-Z]* /v2.0/[a-z_-]*[^ ]* => generated [0-9]* bytes in [0-9]* msecs' |
    awk -v n="$count" -v cpu="$(echo "$cpu0 $cpu1" | awk '{print $2 - $1}')" -v tag="$tag" -v verb="$verb" '
      { split($3, p, "?"); sub("/v2.0/", "", p[1]); sub("/.*", "", p[1]); k = $2 " " p[1];
        c[k]++; total++; ms += $(NF-1) }
      END {
        printf "%-8s Neutron: %d requests for %d %s = %.2f per %s; %.0f ms of answers per %s; %.2f CPU-s of Neutron API per %s\n", tag, total, n, verb "s", total/n, verb, ms/n, verb, cpu/n, verb
        for (k in c) printf "%-8s   %-28s %.2f per %s\n", tag, k, c[k]/n, verb
      }'
}

# phase TAG HOSTS...: the hosts start N containers each, at once; then all are removed at once.
phase() {
  local tag=$1; shift
  local first cpu0 h
  first=$(wc -l <"$NLOG")
  cpu0=$(neutron_cpu)
  for h in "$@"; do start_many "$h" "$N" "$tag" & done
  wait
  sleep 5 # the pools' refills
  {
    for h in "$@"; do
      read -r mean p50 p90 < <(stats "$WORK/$tag-h$h.ms")
      printf '%-8s host %s: %3d starts, start latency mean %4d ms, p50 %4d ms, p90 %4d ms\n' \
        "$tag" "$h" "$N" "$mean" "$p50" "$p90"
    done
    neutron_summary "$tag" "$first" "$cpu0" $((N * $#)) start
    first=$(wc -l <"$NLOG")
    cpu0=$(neutron_cpu)
    remove_all
    neutron_summary "$tag" "$first" "$cpu0" $((N * $#)) removal
  } | tee -a "$RESULTS" >&2
}

remove_all() {
  local c
  for c in $("${D1[@]}" ps -aq -f "name=$NET-"); do "${D1[@]}" rm -f "$c" >/dev/null & done
  for c in $("${D2[@]}" ps -aq -f "name=$NET-"); do "${D2[@]}" rm -f "$c" >/dev/null & done
  wait
  sleep 5 # the pools' returns
}

log "network $NET on host 1, adopted by host 2"
"${D1[@]}" network create -d kuryr --ipam-driver kuryr --subnet 10.93.0.0/22 "$NET" >/dev/null
did=$("${D1[@]}" network inspect -f '{{.Id}}' "$NET")
nid=$(curl -fsS "$KURYR_TEST_NEUTRON_URL/v2.0/networks?tags=kuryr.net.uuid.lh:${did:0:32}" | jq -r '.networks[0].id')
"${D2[@]}" network create -d kuryr --ipam-driver kuryr --subnet 10.93.0.0/22 -o "neutron.net.uuid=$nid" "$NET" >/dev/null
log "warm-up: the pools fill on both hosts"
N_SAVED=$N; N=3
phase warmup 1 2
N=$N_SAVED
: >"$RESULTS"
log "$N starts and removals on host 1 alone"
phase 1-host 1
log "$N starts and removals on each of the two hosts at once"
phase 2-hosts 1 2
{
  echo "# bench/scale-hosts.sh, $(date -u +%Y-%m-%dT%H:%MZ), $N containers per host, $(nproc) cores"
  cat "$RESULTS"
} >"${OUT:-/dev/stdout}"
