#!/usr/bin/env bash
# Smoke test of the local stack, with no Kuryr involved: a Neutron network, subnet and two ports
# bound to this host, a veth per port plugged into br-int the way OVN expects, both ports ACTIVE,
# a ping between the two network namespaces through OVN/OVS, a container run by Docker; then
# everything is torn down and we check that nothing is left.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=stack/env.sh
source "$HERE/env.sh"
N=$KURYR_TEST_NEUTRON_URL/v2.0
RUN_ID=smoke-$$-$RANDOM
CIDR=10.199.$(( RANDOM % 200 + 1 )).0/24
PREFIX=${CIDR%.0/24}
declare -a PORTS=() NETNS=() LINKS=()
NET=""
FAILED=0

log() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
fail() { log "FAIL: $*"; FAILED=1; }
api() { # METHOD PATH [JSON]
  local m=$1 p=$2; shift 2
  curl -fsS -m 60 -X "$m" -H 'Content-Type: application/json' ${1:+-d "$1"} "$N$p"
}

cleanup() {
  local i
  for i in "${!PORTS[@]}"; do
    ovs-vsctl --timeout=10 --if-exists del-port br-int "${LINKS[$i]}" || true
    ip link del "${LINKS[$i]}" 2>/dev/null || true
    ip netns del "${NETNS[$i]}" 2>/dev/null || true
    curl -fsS -m 60 -X DELETE -o /dev/null "$N/ports/${PORTS[$i]}" 2>/dev/null || true
  done
  if [[ -n $NET ]]; then curl -fsS -m 60 -X DELETE -o /dev/null "$N/networks/$NET" 2>/dev/null || true; fi
}
trap cleanup EXIT

t0=$(date +%s%3N)
NET=$(api POST /networks "{\"network\":{\"name\":\"$RUN_ID\"}}" | jq -r .network.id)
MTU=$(api GET "/networks/$NET" | jq -r .network.mtu)
SUBNET=$(api POST /subnets "{\"subnet\":{\"name\":\"$RUN_ID\",\"network_id\":\"$NET\",\"ip_version\":4,\"cidr\":\"$CIDR\",\"gateway_ip\":\"$PREFIX.1\"}}" | jq -r .subnet.id)
log "network $NET (mtu $MTU), subnet $SUBNET $CIDR"

for i in 0 1; do
  ip_addr=$PREFIX.$(( 10 + i ))
  port_json=$(api POST /ports "{\"port\":{\"name\":\"$RUN_ID-$i\",\"network_id\":\"$NET\",\"device_owner\":\"compute:smoke\",\"device_id\":\"$RUN_ID-$i\",\"binding:host_id\":\"$KURYR_TEST_CHASSIS\",\"fixed_ips\":[{\"subnet_id\":\"$SUBNET\",\"ip_address\":\"$ip_addr\"}]}}")
  port=$(jq -r .port.id <<<"$port_json"); mac=$(jq -r .port.mac_address <<<"$port_json")
  vif=$(jq -r '.port["binding:vif_type"]' <<<"$port_json")
  [[ $vif == ovs ]] || fail "port $port has binding:vif_type=$vif, expected ovs"
  PORTS+=("$port"); NETNS+=("$RUN_ID-$i"); LINKS+=("sm${port:0:11}")
  ip netns add "$RUN_ID-$i"
  ip link add "sm${port:0:11}" mtu "$MTU" type veth peer name "sc${port:0:11}" mtu "$MTU"
  ip link set "sc${port:0:11}" address "$mac" netns "$RUN_ID-$i"
  ip -n "$RUN_ID-$i" link set "sc${port:0:11}" name eth0
  ip -n "$RUN_ID-$i" addr add "$ip_addr/24" dev eth0
  ip -n "$RUN_ID-$i" link set eth0 up
  ip -n "$RUN_ID-$i" link set lo up
  ip link set "sm${port:0:11}" up
  ovs-vsctl --timeout=10 -- --may-exist add-port br-int "sm${port:0:11}" -- set Interface "sm${port:0:11}" \
    external_ids:iface-id="$port" external_ids:attached-mac="$mac" external_ids:iface-status=active \
    external_ids:vm-uuid="$RUN_ID-$i" external_ids:owner=kuryr-smoke
  log "port $port ($ip_addr, $mac) plugged as sm${port:0:11}"
done

for port in "${PORTS[@]}"; do
  deadline=$(( $(date +%s) + 60 ))
  until [[ $(api GET "/ports/$port" | jq -r .port.status) == ACTIVE ]]; do
    (( $(date +%s) < deadline )) || { fail "port $port did not become ACTIVE"; break; }
    sleep 0.2
  done
done
log "both ports ACTIVE"

if ip netns exec "${NETNS[0]}" ping -c 3 -i 0.2 -W 5 "$PREFIX.11" >/dev/null; then
  log "ping ${NETNS[0]} -> $PREFIX.11 through OVN: ok"
else
  fail "ping between the two namespaces failed"
fi

out=$(/usr/bin/docker run --rm "$KURYR_TEST_IMAGE" echo smoke-ok) || true
[[ $out == smoke-ok ]] && log "docker run: ok" || fail "docker run printed '$out'"

cleanup
trap - EXIT
left_ports=$(api GET "/ports?network_id=$NET" | jq '.ports | length')
left_net=$(curl -s -o /dev/null -w '%{http_code}' "$N/networks/$NET")
[[ $left_ports == 0 ]] || fail "$left_ports ports left on $NET"
[[ $left_net == 404 ]] || fail "network $NET still exists (HTTP $left_net)"
for l in "${LINKS[@]}"; do
  ip link show "$l" >/dev/null 2>&1 && fail "link $l left behind"
  [[ -z $(ovs-vsctl --timeout=10 --bare --columns=name find Interface name="$l") ]] || fail "OVS port $l left behind"
done
for ns in "${NETNS[@]}"; do ip netns list | grep -qw "$ns" && fail "netns $ns left behind"; done

if ((FAILED)); then echo "smoke: 0 passed, 1 failed"; exit 1; fi
log "smoke test passed in $(( $(date +%s%3N) - t0 )) ms"
