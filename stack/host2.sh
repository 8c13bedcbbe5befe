# Sourced by stack.sh: the stack's second host (`stack.sh up --hosts 2`).
#
# A second chassis on the same OVN, as close to a second machine as one machine allows:
#   - its own network namespace ($H2_NS) with its own Open vSwitch (ovsdb-server + ovs-vswitchd,
#     userspace datapath) and its own ovn-controller, registered as chassis $H2_CHASSIS in the
#     stack's OVN southbound database;
#   - an underlay between the two chassis: a veth pair whose ends are ports of a bridge `br-ul` on
#     each host's Open vSwitch, with the tunnel endpoint addresses on those bridges (the userspace
#     datapath routes and ARPs for its Geneve tunnels itself, through such a bridge);
#   - a management link (a plain veth pair, no OVS) for what hosts say to each other outside
#     Neutron's networks: Docker swarm's control plane;
#   - its own Docker daemon (own data root, exec root and socket, and its own mount namespace so
#     that its plugin directory /run/docker/plugins is its own: `kuryr` there is host 2's Kuryr);
#   - Neutron's API reached from the namespace's loopback through a forwarder (two socat processes
#     joined by a unix socket): a real second machine would reach it over its management network.
# Every process has a pid file $RUN/host2-*.pid, so `down` stops it like any other piece.

H2_NS=kuryr-host2
H2_RUN=$RUN/host2
H2_OVS_RUN=$H2_RUN/ovs
H2_DATA=$DATA/host2
H2_CHASSIS=${KURYR_STACK_CHASSIS2:-$CHASSIS-2}
H2_DOCKER_SOCK=$H2_RUN/docker.sock
H2_PLUGINS=$H2_RUN/plugins
# Underlay (Geneve between the chassis) and management addresses: host 1 is .1, host 2 is .2.
UL_NET=172.31.255
MGMT_NET=172.31.254
UL_LINK1=kuryr-ul1
UL_LINK2=kuryr-ul2
MGMT_LINK1=kuryr-mg1
MGMT_LINK2=kuryr-mg2
UL_BRIDGE=br-ul
# Host 2's pieces, in start order (down stops them in reverse, before host 1's).
H2_PIECES=(host2-ovsdb-server host2-ovs-vswitchd host2-ovn-controller host2-neutron-fwd
  host2-neutron-fwd-ns host2-dockerd host2-kuryr)

h2_vsctl() { ovs-vsctl --db="unix:$H2_OVS_RUN/db.sock" --timeout=10 "$@"; }
in_h2() { ip netns exec "$H2_NS" "$@"; }

# The namespace and the two links between the hosts; idempotent.
h2_links() {
  [[ -e /run/netns/$H2_NS ]] || ip netns add "$H2_NS"
  in_h2 ip link set lo up
  local pair
  for pair in "$UL_LINK1:$UL_LINK2" "$MGMT_LINK1:$MGMT_LINK2"; do
    local a=${pair%%:*} b=${pair##*:}
    if ! ip link show "$a" >/dev/null 2>&1; then
      in_h2 ip link del "$b" 2>/dev/null || true
      ip link add "$a" type veth peer name "$b" netns "$H2_NS"
    fi
    ip link set "$a" up
    in_h2 ip link set "$b" up
  done
  ip addr replace "$MGMT_NET.1/30" dev "$MGMT_LINK1"
  in_h2 ip addr replace "$MGMT_NET.2/30" dev "$MGMT_LINK2"
}

# br-ul on one host's OVS with its veth end as uplink and the tunnel address on the bridge.
# vsctl: the host's ovs-vsctl; run: how to run a command in the host's namespace.
h2_underlay_bridge() { # vsctl_fn run_prefix link addr
  local vsctl=$1 run=$2 link=$3 addr=$4
  $vsctl --may-exist add-br "$UL_BRIDGE" -- set Bridge "$UL_BRIDGE" datapath_type=netdev \
    -- --may-exist add-port "$UL_BRIDGE" "$link"
  # The bridge's internal port is a tap that ovs-vswitchd makes in its own namespace.
  wait_for 20 "$UL_BRIDGE internal port" $run ip link show "$UL_BRIDGE"
  $run ip link set "$UL_BRIDGE" up
  $run ip addr replace "$addr/24" dev "$UL_BRIDGE"
}

h1_vsctl() { ovs-vsctl --timeout=10 "$@"; }

start_h2_ovs() {
  mkdir -p "$H2_OVS_RUN" "$H2_DATA/ovs"
  if ! pid_alive "$RUN/host2-ovsdb-server.pid"; then
    [[ -f $H2_DATA/ovs/conf.db ]] || ovsdb-tool create "$H2_DATA/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$H2_DATA/ovs/conf.db" --remote="punix:$H2_OVS_RUN/db.sock" \
      --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
      --pidfile="$RUN/host2-ovsdb-server.pid" --unixctl="$H2_OVS_RUN/ovsdb-server.ctl" --detach \
      --log-file="$LOGS/host2-ovsdb-server.log" 2>/dev/null
  fi
  wait_for 20 "host 2 ovsdb-server" h2_vsctl --no-wait show
  h2_vsctl --no-wait init
  if ! pid_alive "$RUN/host2-ovs-vswitchd.pid"; then
    OVS_RUNDIR=$H2_OVS_RUN in_h2 ovs-vswitchd "unix:$H2_OVS_RUN/db.sock" \
      --pidfile="$RUN/host2-ovs-vswitchd.pid" --unixctl="$H2_OVS_RUN/ovs-vswitchd.ctl" --detach \
      --log-file="$LOGS/host2-ovs-vswitchd.log" 2>/dev/null
  fi
  h2_vsctl set Open_vSwitch . \
    external_ids:system-id="$H2_CHASSIS" external_ids:hostname="$H2_CHASSIS" \
    external_ids:ovn-remote="unix:$OVN_RUN/ovnsb_db.sock" external_ids:ovn-encap-type=geneve \
    external_ids:ovn-encap-ip="$UL_NET.2" external_ids:ovn-bridge-datapath-type=netdev
}

start_h2_ovn_controller() {
  if ! pid_alive "$RUN/host2-ovn-controller.pid"; then
    # OVS_RUNDIR too: ovn-controller reaches br-int's OpenFlow socket there (else it would
    # program host 1's br-int).
    OVS_RUNDIR=$H2_OVS_RUN OVN_RUNDIR=$H2_RUN in_h2 ovn-controller "unix:$H2_OVS_RUN/db.sock" \
      --pidfile="$RUN/host2-ovn-controller.pid" --detach \
      --log-file="$LOGS/host2-ovn-controller.log" 2>/dev/null
  fi
  wait_for 30 "host 2 br-int (created by its ovn-controller)" h2_vsctl br-exists br-int
  wait_for 30 "OVN chassis $H2_CHASSIS" sh -c "ovn-sbctl --db=unix:$OVN_RUN/ovnsb_db.sock --timeout=2 --bare --columns=name find Chassis name=$H2_CHASSIS | grep -q ."
}

# Neutron's API on the namespace's 127.0.0.1:$NEUTRON_PORT, as host 1 has it.
start_h2_neutron_forwarder() {
  local sock=$H2_RUN/neutron.sock
  if ! pid_alive "$RUN/host2-neutron-fwd.pid"; then
    rm -f "$sock"
    socat "UNIX-LISTEN:$sock,fork,mode=600" "TCP:127.0.0.1:$NEUTRON_PORT" >/dev/null 2>>"$LOGS/host2-neutron-fwd.log" &
    echo $! >"$RUN/host2-neutron-fwd.pid"
  fi
  if ! pid_alive "$RUN/host2-neutron-fwd-ns.pid"; then
    # `ip netns exec` execs its program: $! is socat's pid (a function here would be a subshell).
    ip netns exec "$H2_NS" socat "TCP-LISTEN:$NEUTRON_PORT,bind=127.0.0.1,fork,reuseaddr" \
      "UNIX-CONNECT:$sock" >/dev/null 2>>"$LOGS/host2-neutron-fwd.log" &
    echo $! >"$RUN/host2-neutron-fwd-ns.pid"
  fi
  wait_for 20 "Neutron API from host 2" in_h2 curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$NEUTRON_PORT/"
}

h2_docker() { "$DOCKER" -H "unix://$H2_DOCKER_SOCK" "$@"; }

start_h2_docker() {
  mkdir -p "$H2_DATA/docker" "$H2_RUN/docker-exec" "$H2_PLUGINS" "$H2_RUN/empty" /run/docker/plugins
  if ! pid_alive "$RUN/host2-dockerd.pid"; then
    # nsenter, not `ip netns exec`: dockerd needs the host's cgroup mounts under /sys. Its own
    # mount namespace gives it its own plugin directories (host 2's Kuryr socket, no spec files
    # of host 1); everything else it sees is the machine's.
    nsenter --net="/run/netns/$H2_NS" unshare --mount --propagation private sh -c "
      mount --bind '$H2_PLUGINS' /run/docker/plugins
      if [ -d /etc/docker/plugins ]; then mount --bind '$H2_RUN/empty' /etc/docker/plugins; fi
      exec dockerd --data-root '$H2_DATA/docker' --exec-root '$H2_RUN/docker-exec' \
        --pidfile '$RUN/host2-dockerd.pid' -H 'unix://$H2_DOCKER_SOCK' --storage-driver=vfs \
        --bridge=none --iptables=false --ip-forward=false --ip-masq=false --userland-proxy=false" \
      >>"$LOGS/host2-dockerd.log" 2>&1 &
  fi
  wait_for 60 "host 2 Docker daemon" h2_docker version
  if ! h2_docker image inspect "$IMAGE" >/dev/null 2>&1; then
    "$DOCKER" save "$IMAGE" | h2_docker load >/dev/null
  fi
}

start_h2_kuryr() {
  local bin=$REPO/target/release/kuryr-server
  write_kuryr_conf "$ETC/host2/kuryr.conf" "$H2_CHASSIS" "$LOGS/host2-kuryr.log" \
    "unix://$H2_PLUGINS/kuryr.sock"
  if pid_alive "$RUN/host2-kuryr.pid"; then
    kill "$(cat "$RUN/host2-kuryr.pid")"; wait_gone "$RUN/host2-kuryr.pid" 20
  fi
  # OVS_RUNDIR: host 2's ovs-vsctl talks to host 2's database.
  OVS_RUNDIR=$H2_OVS_RUN ip netns exec "$H2_NS" "$bin" --config-file "$ETC/host2/kuryr.conf" >>"$LOGS/host2-kuryr.log" 2>&1 &
  echo $! >"$RUN/host2-kuryr.pid"
  wait_for 20 "host 2 kuryr-server" curl -fsS -m 2 --unix-socket "$H2_PLUGINS/kuryr.sock" -X POST http://kuryr/Plugin.Activate
}

cmd_up_host2() {
  command -v socat >/dev/null || die "socat is missing (install_packages installs it)"
  stage "host 2: links" h2_links
  stage "host 2: openvswitch" start_h2_ovs
  # The underlay: host 1's tunnel endpoint moves from loopback to its br-ul.
  stage "host 2: underlay" h2_underlay_bridge h2_vsctl in_h2 "$UL_LINK2" "$UL_NET.2"
  h2_underlay_bridge h1_vsctl "" "$UL_LINK1" "$UL_NET.1"
  ovs-vsctl --timeout=10 set Open_vSwitch . external_ids:ovn-encap-ip="$UL_NET.1"
  stage "host 2: ovn-controller" start_h2_ovn_controller
  stage "host 2: neutron forwarder" start_h2_neutron_forwarder
  stage "host 2: docker" start_h2_docker
  if [[ ${WITH_KURYR:-0} == 1 ]]; then stage "host 2: kuryr" start_h2_kuryr; fi
  wait_for 30 "Geneve tunnel between the chassis" h2_tunnel_up
}

# Each chassis has a tunnel port towards the other (ovn-controller made them from the SB's encaps).
h2_tunnel_up() {
  ovs-vsctl --timeout=2 --bare --columns=name find Interface type=geneve options:remote_ip="$UL_NET.2" | grep -q . &&
    h2_vsctl --bare --columns=name find Interface type=geneve options:remote_ip="$UL_NET.1" | grep -q .
}

# Stops host 2's pieces and removes its namespace, links, bridge and chassis. Safe to run when
# host 2 was never started.
cmd_down_host2() {
  stop_pieces "${H2_PIECES[@]}"
  # dockerd's containers' shims outlive it: they run in the namespace and would keep it busy.
  pkill -f -- "$H2_RUN/docker-exec" 2>/dev/null || true
  if [[ -e /run/netns/$H2_NS ]]; then
    log "removing host 2's namespace $H2_NS"
    ip netns del "$H2_NS"
  fi
  ip link del "$UL_LINK1" 2>/dev/null || true
  ip link del "$MGMT_LINK1" 2>/dev/null || true
  if [[ -S $OVS_RUN/db.sock ]]; then
    ovs-vsctl --timeout=5 --if-exists del-br "$UL_BRIDGE" 2>/dev/null || true
  fi
  if [[ -S $OVN_RUN/ovnsb_db.sock ]]; then
    ovn-sbctl --db="unix:$OVN_RUN/ovnsb_db.sock" --timeout=5 --if-exists chassis-del "$H2_CHASSIS" 2>/dev/null || true
  fi
  unmount_below "$H2_RUN"
  rm -rf "$H2_RUN"
}

cmd_env_host2() {
  [[ -S $H2_DOCKER_SOCK ]] && h2_docker version >/dev/null 2>&1 || return 0
  echo "export KURYR_TEST_HOST2_NETNS=$H2_NS"
  echo "export KURYR_TEST_HOST2_CHASSIS=$H2_CHASSIS"
  echo "export KURYR_TEST_HOST2_DOCKER=unix://$H2_DOCKER_SOCK"
  echo "export KURYR_TEST_HOST2_OVS_RUNDIR=$H2_OVS_RUN"
  echo "export KURYR_TEST_HOST2_PLUGIN_DIR=$H2_PLUGINS"
  echo "export KURYR_TEST_HOST2_MGMT_ADDR=$MGMT_NET.2"
  echo "export KURYR_TEST_HOST1_MGMT_ADDR=$MGMT_NET.1"
}
