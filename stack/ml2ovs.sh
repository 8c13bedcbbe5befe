# Sourced by stack.sh: a second Neutron backend (`stack.sh up --ml2-ovs`).
#
# ML2/OVS beside the stack's ML2/OVN, so that Kuryr's generic binding layer is proven behind a
# real Neutron agent and not only behind OVN:
#   - RabbitMQ (Debian's) for the agent's RPC, with its own node name, data, logs and epmd port,
#     listening on loopback only;
#   - a second Neutron: its own database (neutron_ovs in the stack's MariaDB), its API under uwsgi
#     on :$OVS_NEUTRON_PORT and its RPC server (neutron-rpc-server), mechanism driver openvswitch;
#   - neutron-openvswitch-agent on the stack's Open vSwitch (userspace datapath, as everything
#     here: there is no OVS kernel module), managing its own integration bridge $OVS_AGENT_BRIDGE
#     and tunnel bridge, never OVN's br-int; firewall driver iptables_hybrid, the one that needs
#     the OVS hybrid plug (qbr/qvb/qvo), with br_netfilter making the bridge's iptables rules apply.
# The Linux bridge mechanism driver and its agent were removed from Neutron (29.x has neither),
# so the Linux bridge plug cannot be proven behind a real agent.

OVS_NEUTRON_PORT=9698
OVS_AGENT_BRIDGE=br-ml2ovs
OVS_AGENT_TUN_BRIDGE=br-ml2tun
RABBIT_PORT=5673
RABBIT_DIST_PORT=25673
RABBIT_EPMD_PORT=4370
RABBIT_NODE=kuryr-stack@localhost
RABBIT_HOME=/usr/lib/rabbitmq/lib
# Start order; `down` stops them in reverse, before the rest of the stack.
OVS_PIECES=(epmd rabbitmq neutron-api-ovs neutron-rpc-ovs neutron-ovs-agent)

rabbit_sbin() { # the versioned sbin directory of Debian's rabbitmq-server
  local d
  for d in "$RABBIT_HOME"/rabbitmq_server-*/sbin; do [[ -x $d/rabbitmq-server ]] && { echo "$d"; return; }; done
  die "rabbitmq-server is not installed"
}

# Runs a RabbitMQ command with the stack's node, cookie (HOME) and loopback-only listeners.
with_rabbit_env() {
  HOME=$DATA/rabbitmq \
  RABBITMQ_NODENAME=$RABBIT_NODE \
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT=$RABBIT_PORT \
  RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT \
  ERL_EPMD_ADDRESS=127.0.0.1 \
  ERL_EPMD_PORT=$RABBIT_EPMD_PORT \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
  RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
  RABBITMQ_MNESIA_BASE=$DATA/rabbitmq/mnesia \
  RABBITMQ_LOG_BASE=$LOGS/rabbitmq \
  RABBITMQ_PID_FILE=$RUN/rabbitmq.pid \
  RABBITMQ_ENABLED_PLUGINS_FILE=$ETC/rabbitmq/enabled_plugins \
  RABBITMQ_CONFIG_FILE=$ETC/rabbitmq/rabbitmq \
    "$@"
}

start_rabbitmq() {
  mkdir -p "$DATA/rabbitmq" "$ETC/rabbitmq" "$LOGS/rabbitmq"
  echo '[].' >"$ETC/rabbitmq/enabled_plugins"
  : >"$ETC/rabbitmq/rabbitmq.conf"
  local sbin; sbin=$(rabbit_sbin)
  # Our own epmd on its own port: the system's (if any) is never touched, and `down` stops ours.
  if ! pid_alive "$RUN/epmd.pid"; then
    epmd -address 127.0.0.1 -port "$RABBIT_EPMD_PORT" >>"$LOGS/rabbitmq/epmd.log" 2>&1 &
    echo $! >"$RUN/epmd.pid"
  fi
  if ! pid_alive "$RUN/rabbitmq.pid"; then
    if (exec 3<>"/dev/tcp/127.0.0.1/$RABBIT_PORT") 2>/dev/null; then
      die "something not started by us answers on 127.0.0.1:$RABBIT_PORT"
    fi
    rm -f "$RUN/rabbitmq.pid"
    with_rabbit_env "$sbin/rabbitmq-server" >>"$LOGS/rabbitmq/stdout.log" 2>&1 &
  fi
  with_rabbit_env timeout 90 "$sbin/rabbitmqctl" -q wait --timeout 60 "$RUN/rabbitmq.pid" \
    >>"$LOGS/rabbitmq/wait.log" 2>&1 || die "RabbitMQ did not start (see $LOGS/rabbitmq)"
}

write_ml2ovs_config() {
  local d=$ETC/neutron-ovs
  mkdir -p "$d/plugins/ml2" "$DATA/neutron-ovs/lock"
  cp "$NEUTRON_VENV/etc/neutron/api-paste.ini" "$d/api-paste.ini"
  cat >"$d/neutron.conf" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = router,trunk
auth_strategy = noauth
dns_domain = kuryr.test.
transport_url = rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/
allow_overlapping_ips = true
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
host = $CHASSIS
api_paste_config = $d/api-paste.ini
state_path = $DATA/neutron-ovs
debug = false
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1

[database]
connection = mysql+pymysql://neutron:neutron@localhost/neutron_ovs?unix_socket=$MYSQL_SOCK&charset=utf8mb4

[oslo_concurrency]
lock_path = $DATA/neutron-ovs/lock

[agent]
root_helper =
EOF
  cat >"$d/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security,tag_ports_during_bulk_creation,dns

[ml2_type_vxlan]
vni_ranges = 1:1000

[securitygroup]
enable_security_group = true
EOF
  # root_helper: the agent runs as root already; its commands need no sudo, and privsep's
  # helper is started the same way.
  cat >"$d/openvswitch_agent.ini" <<EOF
[DEFAULT]
host = $CHASSIS
transport_url = rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/
state_path = $DATA/neutron-ovs
debug = false

[agent]
tunnel_types = vxlan
root_helper = env PATH=$NEUTRON_VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin
root_helper_daemon =

[ovs]
integration_bridge = $OVS_AGENT_BRIDGE
tunnel_bridge = $OVS_AGENT_TUN_BRIDGE
local_ip = 127.0.0.1
datapath_type = netdev
ovsdb_connection = unix:$OVS_RUN/db.sock
of_listen_address = 127.0.0.1
of_listen_port = 6653

[securitygroup]
firewall_driver = iptables_hybrid
enable_security_group = true

[oslo_concurrency]
lock_path = $DATA/neutron-ovs/lock
EOF
}

start_ml2ovs_neutron() {
  mariadb --socket="$MYSQL_SOCK" -e "CREATE DATABASE IF NOT EXISTS neutron_ovs;
    GRANT ALL PRIVILEGES ON neutron_ovs.* TO 'neutron'@'localhost';"
  write_ml2ovs_config
  local d=$ETC/neutron-ovs
  if [[ ! -f $DATA/neutron-ovs/.db-synced ]]; then
    "$NEUTRON_VENV/bin/neutron-db-manage" --config-file "$d/neutron.conf" \
      --config-file "$d/plugins/ml2/ml2_conf.ini" upgrade heads \
      >"$LOGS/neutron-ovs-db-manage.log" 2>&1 || die "neutron-db-manage (ML2/OVS) failed (see $LOGS/neutron-ovs-db-manage.log)"
    touch "$DATA/neutron-ovs/.db-synced"
  fi
  if ! pid_alive "$RUN/neutron-api-ovs.pid"; then
    if neutron_answers "$OVS_NEUTRON_PORT"; then die "something not started by us answers on 127.0.0.1:$OVS_NEUTRON_PORT"; fi
    OS_NEUTRON_CONFIG_DIR="$d" OS_NEUTRON_CONFIG_FILES="neutron.conf;plugins/ml2/ml2_conf.ini" \
      "$NEUTRON_VENV/bin/uwsgi" --http-socket "127.0.0.1:$OVS_NEUTRON_PORT" \
        --module neutron.wsgi.api:application --master --processes 1 --enable-threads \
        --lazy-apps --die-on-term --add-header 'Connection: close' \
        --pidfile "$RUN/neutron-api-ovs.pid" --virtualenv "$NEUTRON_VENV" \
        --daemonize "$LOGS/neutron-api-ovs.log"
  fi
  if ! pid_alive "$RUN/neutron-rpc-ovs.pid"; then
    "$NEUTRON_VENV/bin/neutron-rpc-server" --config-file "$d/neutron.conf" \
      --config-file "$d/plugins/ml2/ml2_conf.ini" --log-file "$LOGS/neutron-rpc-ovs.log" \
      >/dev/null 2>&1 &
    echo $! >"$RUN/neutron-rpc-ovs.pid"
  fi
  wait_for 90 "Neutron (ML2/OVS) API on :$OVS_NEUTRON_PORT" neutron_answers "$OVS_NEUTRON_PORT"
  wait_for 60 "Neutron (ML2/OVS) networks API" curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$OVS_NEUTRON_PORT/v2.0/networks"
}

ovs_agent_alive() { # the agent reports itself alive to the server
  curl -fsS -m 5 "http://127.0.0.1:$OVS_NEUTRON_PORT/v2.0/agents?agent_type=Open+vSwitch+agent&host=$CHASSIS" |
    jq -e '.agents[0].alive == true' >/dev/null
}

start_ml2ovs_agent() {
  # The iptables_hybrid firewall filters on each port's Linux bridge: its rules only see bridged
  # packets with br_netfilter (the agent asks for it too, and only warns without it).
  modprobe br_netfilter 2>/dev/null || true
  if ! pid_alive "$RUN/neutron-ovs-agent.pid"; then
    PATH=$NEUTRON_VENV/bin:$PATH "$NEUTRON_VENV/bin/neutron-openvswitch-agent" \
      --config-file "$ETC/neutron-ovs/neutron.conf" \
      --config-file "$ETC/neutron-ovs/openvswitch_agent.ini" \
      --log-file "$LOGS/neutron-ovs-agent.log" >/dev/null 2>&1 &
    echo $! >"$RUN/neutron-ovs-agent.pid"
  fi
  wait_for 90 "the Open vSwitch agent (alive in Neutron ML2/OVS)" ovs_agent_alive
  wait_for 30 "$OVS_AGENT_BRIDGE (created by the Open vSwitch agent)" ovs-vsctl --timeout=2 br-exists "$OVS_AGENT_BRIDGE"
}

cmd_up_ml2ovs() {
  stage "rabbitmq" start_rabbitmq
  stage "neutron (ML2/OVS)" start_ml2ovs_neutron
  stage "openvswitch agent" start_ml2ovs_agent
}

# The agent leaves its iptables chains (neutron-openvswi-*) behind when it stops; they would
# filter nothing once its bridges are gone, but the host's tables are not ours to clutter. Each
# table is restored without Neutron's chains and the rules that jump to them, the rest as it was.
ml2ovs_iptables_cleanup() {
  local save restore table dump
  for save in iptables-save ip6tables-save; do
    restore=${save/-save/-restore}
    command -v "$save" >/dev/null || continue
    for table in filter raw mangle nat; do
      dump=$("$save" -t "$table" 2>/dev/null) || continue
      grep -q -- 'neutron-' <<<"$dump" || continue
      grep -v -e '^:neutron-' -e '^-A neutron-' -e '-j neutron-' <<<"$dump" | "$restore" -T "$table" \
        || log "warning: could not remove Neutron's chains from $save -t $table"
    done
  done
}

cmd_down_ml2ovs() {
  local was_up=0
  pid_alive "$RUN/neutron-ovs-agent.pid" && was_up=1
  stop_pieces "${OVS_PIECES[@]}"
  if ((was_up)); then ml2ovs_iptables_cleanup; fi
}

cmd_env_ml2ovs() {
  if neutron_answers "$OVS_NEUTRON_PORT" >/dev/null 2>&1; then
    echo "export KURYR_TEST_ML2OVS_NEUTRON_URL=http://127.0.0.1:$OVS_NEUTRON_PORT"
    echo "export KURYR_TEST_ML2OVS_BRIDGE=$OVS_AGENT_BRIDGE"
  fi
}
