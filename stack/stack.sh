#!/usr/bin/env bash
# The local stack: a real single-node OpenStack networking stack (MariaDB, Open vSwitch with the
# userspace datapath, OVN, Neutron with ML2/OVN under uwsgi, optionally Keystone) plus Docker, on a
# Debian 12 machine, as root. Every process it starts has a pid file under $KURYR_STACK_DIR/run;
# `down` stops exactly those. Pieces that are already running and were not started by us are used
# as they are and never touched.
#
#   stack.sh up [--keystone] [--kuryr] [--hosts 2] [--ml2-ovs]
#                                        install what is missing, start, wait until each piece
#                                        answers; --hosts 2 adds a second chassis (host2.sh);
#                                        --ml2-ovs a second Neutron on ML2/OVS with its agent
#                                        and RabbitMQ (ml2ovs.sh)
#   stack.sh down [--wipe]               stop what we started (--wipe also deletes all data)
#   stack.sh status                      what runs, with pids
#   stack.sh env                         print the coordinates for tests (see env.sh)
#   stack.sh restart mariadb|ovn-controller   stop and start one piece (reliability tests)
#   stack.sh restart-docker [--live-restore]  restart the stack's dockerd (live-restore on or off)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
STACK_DIR=${KURYR_STACK_DIR:-/var/lib/kuryr-stack}
CACHE_DIR=${KURYR_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kuryr-rs}
RUN=$STACK_DIR/run
LOGS=$STACK_DIR/logs
DATA=$STACK_DIR/data
ETC=$STACK_DIR/etc
NEUTRON_VENV=$CACHE_DIR/neutron-venv
KEYSTONE_VENV=$CACHE_DIR/keystone-venv
OVS_RUN=/var/run/openvswitch
OVN_RUN=/var/run/ovn
CHASSIS=${KURYR_STACK_CHASSIS:-$(hostname)}
NEUTRON_PORT=9696
NEUTRON_KS_PORT=9697
KEYSTONE_PORT=5000
KEYSTONE_ADMIN_PASSWORD=${KURYR_STACK_ADMIN_PASSWORD:-kuryr-stack-admin}
IMAGE=kuryr-busybox
DOCKER=/usr/bin/docker
APT_PACKAGES=(docker.io openvswitch-switch ovn-central ovn-host mariadb-server busybox-static
  iproute2 iputils-ping jq curl python3-venv procps
  containerd containernetworking-plugins iptables protobuf-compiler podman
  rabbitmq-server ipset conntrack)
# containerd with its CRI plugin, for the CNI tests: its own socket, data and state, never the
# system's or Docker's. protobuf-compiler builds the tests' CRI client.
# podman (its CNI backend) is the second CNI runtime the tests drive. socat forwards Neutron's API
# into the second host's namespace (host2.sh). rabbitmq-server, ipset and conntrack serve the
# ML2/OVS backend's agent (ml2ovs.sh).
CRI_SOCK=$RUN/containerd-cri.sock
CNI_BIN_DIR=$DATA/cni/bin
CNI_CONF_DIR=$ETC/cni/net.d
PAUSE_IMAGE=kuryr-pause
HOSTS=1

log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { date +%s%3N; }

# Runs "$@" and reports how long the stage took.
stage() {
  local name=$1; shift
  local t0; t0=$(now_ms)
  "$@"
  log "$name ready in $(( $(now_ms) - t0 )) ms"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || die "$what did not answer within ${secs}s (logs: $LOGS)"
    sleep 0.2
  done
}

# True when the pid file names a live process that is the piece it is named after. A stale pid file
# (the machine restarted, the process was killed) may name a pid that now belongs to anything else,
# and we must never signal a process we did not start.
pid_alive() {
  local pidf=$1 pid
  [[ -f $pidf ]] || return 1
  pid=$(cat "$pidf" 2>/dev/null) || return 1
  pid_is_piece "$pid" "$(basename "$pidf" .pid)"
}

# pid_is_piece PID NAME: PID is alive and runs the program of piece NAME.
pid_is_piece() {
  local pid=$1 name=${2#host2-} cmd pat
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $name in
    neutron-fwd*) pat='socat' ;;
    mariadb) pat='mariadbd|mysqld' ;;
    ovsdb-server | ovnnb_db | ovnsb_db) pat='ovsdb-server' ;;
    neutron-api* | keystone) pat='uwsgi' ;;
    neutron-rpc-ovs) pat='neutron-rpc-server' ;;
    neutron-ovs-agent) pat='neutron-openvswitch-agent' ;;
    rabbitmq) pat='beam' ;;
    *) pat=$name ;;
  esac
  [[ $cmd =~ $pat ]]
}

# Unmounts everything mounted below DIR, deepest first. dockerd bind-mounts its data root onto
# itself and leaves that mount behind when it is killed, which would make `rm -rf` fail with EBUSY.
unmount_below() {
  local dir=$1 mp
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2- |
    while read -r mp; do
      log "unmounting $mp"
      umount "$mp" 2>/dev/null || umount -l "$mp"
    done
}

# ----------------------------------------------------------------------------------------------
# install

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's policy-rc.d may forbid service starts; that is what we want: we start them ourselves.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOGS/apt.log" 2>&1 \
      || { tail -n 30 "$LOGS/apt.log" >&2; die "apt-get install failed"; }
  fi
}

# make_venv DIR REQUIREMENTS: a virtualenv whose packages are exactly the pinned file's.
make_venv() {
  local dir=$1 req=$2 stamp
  stamp=$(sha256sum "$req" | cut -c1-16)
  [[ -f $dir/.kuryr-stamp && $(cat "$dir/.kuryr-stamp") == "$stamp" ]] && return 0
  log "creating virtualenv $dir from $(basename "$req")"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >"$LOGS/pip-$(basename "$dir").log" 2>&1 \
    || { tail -n 30 "$LOGS/pip-$(basename "$dir").log" >&2; die "pip install into $dir failed"; }
  echo "$stamp" >"$dir/.kuryr-stamp"
}

install_all() {
  mkdir -p "$RUN" "$LOGS" "$DATA" "$ETC"
  stage "debian packages" install_packages
  stage "neutron venv" make_venv "$NEUTRON_VENV" "$HERE/requirements-neutron.txt"
  if [[ ${WITH_KEYSTONE:-0} == 1 ]]; then
    stage "keystone venv" make_venv "$KEYSTONE_VENV" "$HERE/requirements-keystone.txt"
  fi
}

# ----------------------------------------------------------------------------------------------
# MariaDB: our own data dir and unix socket, no TCP port, so it never collides with a system one.

MYSQL_SOCK=$RUN/mysqld.sock

start_mariadb() {
  local pidf=$RUN/mariadb.pid
  if pid_alive "$pidf"; then return 0; fi
  if [[ ! -d $DATA/mysql/mysql ]]; then
    mkdir -p "$DATA/mysql"
    mariadb-install-db --user=root --datadir="$DATA/mysql" --auth-root-authentication-method=socket \
      >"$LOGS/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $LOGS/mariadb-install.log)"
  fi
  mariadbd --user=root --datadir="$DATA/mysql" --socket="$MYSQL_SOCK" --skip-networking \
    --pid-file="$pidf" --log-error="$LOGS/mariadb.log" --innodb-buffer-pool-size=64M \
    --max-connections=200 >/dev/null 2>&1 &
  wait_for 30 "MariaDB" mariadb-admin --socket="$MYSQL_SOCK" ping
  mariadb --socket="$MYSQL_SOCK" -e "CREATE DATABASE IF NOT EXISTS neutron;
    CREATE USER IF NOT EXISTS 'neutron'@'localhost' IDENTIFIED BY 'neutron';
    GRANT ALL PRIVILEGES ON neutron.* TO 'neutron'@'localhost';"
}

# ----------------------------------------------------------------------------------------------
# Open vSwitch (userspace datapath: there is no kernel module here)

ovs_answers() { ovs-vsctl --timeout=2 show; }

start_ovs() {
  mkdir -p "$OVS_RUN" "$DATA/ovs"
  if ! pid_alive "$RUN/ovsdb-server.pid"; then
    if [[ -S $OVS_RUN/db.sock ]] && ovs_answers >/dev/null 2>&1; then
      log "using an Open vSwitch database that was already running (not ours)"
    else
      [[ -f $DATA/ovs/conf.db ]] || ovsdb-tool create "$DATA/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema
      ovsdb-server "$DATA/ovs/conf.db" --remote="punix:$OVS_RUN/db.sock" \
        --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
        --pidfile="$RUN/ovsdb-server.pid" --detach --log-file="$LOGS/ovsdb-server.log" 2>/dev/null
    fi
  fi
  wait_for 20 "ovsdb-server" ovs-vsctl --timeout=2 --no-wait show
  ovs-vsctl --no-wait init
  if ! pid_alive "$RUN/ovs-vswitchd.pid" && ! pgrep -x ovs-vswitchd >/dev/null; then
    ovs-vswitchd "unix:$OVS_RUN/db.sock" --pidfile="$RUN/ovs-vswitchd.pid" --detach \
      --log-file="$LOGS/ovs-vswitchd.log" 2>/dev/null
  fi
  ovs-vsctl --timeout=10 set Open_vSwitch . \
    external_ids:system-id="$CHASSIS" external_ids:hostname="$CHASSIS" \
    external_ids:ovn-remote="unix:$OVN_RUN/ovnsb_db.sock" external_ids:ovn-encap-type=geneve \
    external_ids:ovn-encap-ip=127.0.0.1 external_ids:ovn-bridge-datapath-type=netdev
}

# ----------------------------------------------------------------------------------------------
# OVN

start_ovn_db() { # name schema
  local name=$1 schema=$2
  if pid_alive "$RUN/$name.pid"; then return 0; fi
  if [[ -S $OVN_RUN/$name.sock ]] && ovsdb-client --timeout=2 list-dbs "unix:$OVN_RUN/$name.sock" >/dev/null 2>&1; then
    log "using an $name that was already running (not ours)"; return 0
  fi
  [[ -f $DATA/ovn/$name.db ]] || ovsdb-tool create "$DATA/ovn/$name.db" "$schema"
  ovsdb-server "$DATA/ovn/$name.db" --remote="punix:$OVN_RUN/$name.sock" \
    --pidfile="$RUN/$name.pid" --detach --log-file="$LOGS/$name.log" \
    --unixctl="$RUN/$name.ctl" 2>/dev/null
}

start_ovn() {
  mkdir -p "$OVN_RUN" "$DATA/ovn"
  start_ovn_db ovnnb_db /usr/share/ovn/ovn-nb.ovsschema
  start_ovn_db ovnsb_db /usr/share/ovn/ovn-sb.ovsschema
  wait_for 20 "OVN NB database" ovsdb-client --timeout=2 list-dbs "unix:$OVN_RUN/ovnnb_db.sock"
  wait_for 20 "OVN SB database" ovsdb-client --timeout=2 list-dbs "unix:$OVN_RUN/ovnsb_db.sock"
  if ! pid_alive "$RUN/ovn-northd.pid" && ! pgrep -x ovn-northd >/dev/null; then
    ovn-northd --ovnnb-db="unix:$OVN_RUN/ovnnb_db.sock" --ovnsb-db="unix:$OVN_RUN/ovnsb_db.sock" \
      --pidfile="$RUN/ovn-northd.pid" --detach --log-file="$LOGS/ovn-northd.log" \
      --unixctl="$RUN/ovn-northd.ctl" 2>/dev/null
  fi
  if ! pid_alive "$RUN/ovn-controller.pid" && ! pgrep -x ovn-controller >/dev/null; then
    start_ovn_controller
  fi
  wait_ovn_controller
}

start_ovn_controller() {
  ovn-controller "unix:$OVS_RUN/db.sock" --pidfile="$RUN/ovn-controller.pid" --detach \
    --log-file="$LOGS/ovn-controller.log" 2>/dev/null
}

wait_ovn_controller() {
  # ovn-controller creates br-int once it has registered the chassis.
  wait_for 30 "br-int (created by ovn-controller)" ovs-vsctl --timeout=2 br-exists br-int
  wait_for 30 "OVN chassis $CHASSIS" sh -c "ovn-sbctl --db=unix:$OVN_RUN/ovnsb_db.sock --timeout=2 --bare --columns=name find Chassis name=$CHASSIS | grep -q ."
}

# ----------------------------------------------------------------------------------------------
# Neutron (API under uwsgi; 29.x has no neutron-server script)

write_neutron_conf() { # file auth_strategy
  local f=$1 auth=$2
  cat >"$f" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = ovn-router,trunk,segments,qos
auth_strategy = $auth
# Ports' dns_name (the dns extension driver below) needs a domain.
dns_domain = kuryr.test.
transport_url = fake:/
allow_overlapping_ips = true
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
host = $CHASSIS
api_paste_config = $ETC/neutron/api-paste.ini
state_path = $DATA/neutron
debug = false
api_workers = 1

[database]
connection = mysql+pymysql://neutron:neutron@localhost/neutron?unix_socket=$MYSQL_SOCK&charset=utf8mb4

[oslo_concurrency]
lock_path = $DATA/neutron/lock

[agent]
root_helper =

[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$KEYSTONE_PORT/v3
auth_url = http://127.0.0.1:$KEYSTONE_PORT/v3
auth_type = password
username = admin
password = $KEYSTONE_ADMIN_PASSWORD
project_name = admin
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
memcached_servers =
EOF
}

write_neutron_config() {
  mkdir -p "$ETC/neutron/plugins/ml2" "$DATA/neutron/lock"
  cp "$NEUTRON_VENV/etc/neutron/api-paste.ini" "$ETC/neutron/api-paste.ini"
  write_neutron_conf "$ETC/neutron/neutron.conf" noauth
  write_neutron_conf "$ETC/neutron/neutron-keystone.conf" keystone
  cat >"$ETC/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = local,flat,vlan,geneve,vxlan
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security,tag_ports_during_bulk_creation,qos,dns
overlay_ip_version = 4

[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38

[ml2_type_flat]
flat_networks = physnet1

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:200

[securitygroup]
enable_security_group = true

[ovn]
ovn_nb_connection = unix:$OVN_RUN/ovnnb_db.sock
ovn_sb_connection = unix:$OVN_RUN/ovnsb_db.sock
ovn_metadata_enabled = true
EOF
}

neutron_answers() { # port
  curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null
}

# start_neutron_api NAME PORT CONF_FILE
start_neutron_api() {
  local name=$1 port=$2 conf=$3
  if pid_alive "$RUN/$name.pid"; then return 0; fi
  if neutron_answers "$port"; then die "something not started by us answers on 127.0.0.1:$port"; fi
  OS_NEUTRON_CONFIG_DIR="$ETC/neutron" \
  OS_NEUTRON_CONFIG_FILES="$conf;plugins/ml2/ml2_conf.ini" \
    "$NEUTRON_VENV/bin/uwsgi" --http-socket "127.0.0.1:$port" --module neutron.wsgi.api:application \
      --master --processes 1 --enable-threads --lazy-apps --die-on-term \
      --add-header 'Connection: close' --pidfile "$RUN/$name.pid" \
      --virtualenv "$NEUTRON_VENV" --daemonize "$LOGS/$name.log"
  wait_for 90 "Neutron API on :$port" neutron_answers "$port"
}

start_neutron() {
  write_neutron_config
  if [[ ! -f $DATA/neutron/.db-synced ]]; then
    "$NEUTRON_VENV/bin/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" \
      --config-file "$ETC/neutron/plugins/ml2/ml2_conf.ini" upgrade heads \
      >"$LOGS/neutron-db-manage.log" 2>&1 || die "neutron-db-manage failed (see $LOGS/neutron-db-manage.log)"
    touch "$DATA/neutron/.db-synced"
  fi
  start_neutron_api neutron-api "$NEUTRON_PORT" neutron.conf
  # The first request after start lets ML2/OVN finish its own start-up (hash ring, OVN sync).
  wait_for 60 "Neutron networks API" curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$NEUTRON_PORT/v2.0/networks"
}

# ----------------------------------------------------------------------------------------------
# Keystone (optional) and a second Neutron API that authenticates with it

keystone_token() {
  curl -fsS -m 10 -D - -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"},\"password\":\"$KEYSTONE_ADMIN_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}}}" \
    "http://127.0.0.1:$KEYSTONE_PORT/v3/auth/tokens" | awk 'tolower($1)=="x-subject-token:" {print $2}' | tr -d '\r'
}

start_keystone() {
  mkdir -p "$ETC/keystone" "$DATA/keystone/fernet-keys" "$DATA/keystone/credential-keys"
  cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOGS/keystone-app.log
[database]
connection = sqlite:///$DATA/keystone/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $DATA/keystone/fernet-keys
[credential]
key_repository = $DATA/keystone/credential-keys
EOF
  local ks="$KEYSTONE_VENV/bin/keystone-manage --config-file $ETC/keystone/keystone.conf"
  if [[ ! -f $DATA/keystone/.bootstrapped ]]; then
    $ks db_sync >"$LOGS/keystone-manage.log" 2>&1 || die "keystone db_sync failed"
    $ks fernet_setup --keystone-user root --keystone-group root >>"$LOGS/keystone-manage.log" 2>&1
    $ks credential_setup --keystone-user root --keystone-group root >>"$LOGS/keystone-manage.log" 2>&1
    $ks bootstrap --bootstrap-password "$KEYSTONE_ADMIN_PASSWORD" \
      --bootstrap-admin-url "http://127.0.0.1:$KEYSTONE_PORT/v3" \
      --bootstrap-public-url "http://127.0.0.1:$KEYSTONE_PORT/v3" \
      --bootstrap-internal-url "http://127.0.0.1:$KEYSTONE_PORT/v3" \
      --bootstrap-region-id RegionOne >>"$LOGS/keystone-manage.log" 2>&1 || die "keystone bootstrap failed"
    touch "$DATA/keystone/.bootstrapped"
  fi
  if ! pid_alive "$RUN/keystone.pid"; then
    if curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$KEYSTONE_PORT/v3" 2>/dev/null; then
      die "something not started by us answers on 127.0.0.1:$KEYSTONE_PORT"
    fi
    OS_KEYSTONE_CONFIG_FILES="$ETC/keystone/keystone.conf" \
      "$KEYSTONE_VENV/bin/uwsgi" --http-socket "127.0.0.1:$KEYSTONE_PORT" \
        --module keystone.wsgi.api:application --master --processes 1 --enable-threads \
        --lazy-apps --die-on-term --add-header 'Connection: close' --pidfile "$RUN/keystone.pid" \
        --virtualenv "$KEYSTONE_VENV" --daemonize "$LOGS/keystone.log"
  fi
  wait_for 60 "Keystone" curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$KEYSTONE_PORT/v3"
  register_network_service
  start_neutron_api neutron-api-keystone "$NEUTRON_KS_PORT" neutron-keystone.conf
}

# The catalog's `network` service points at the Keystone-authenticated Neutron API.
register_network_service() {
  local token svc url=http://127.0.0.1:$KEYSTONE_PORT/v3
  token=$(keystone_token)
  [[ -n $token ]] || die "could not get a Keystone token"
  local h=(-fsS -m 10 -H "X-Auth-Token: $token" -H 'Content-Type: application/json')
  svc=$(curl "${h[@]}" "$url/services?type=network" | jq -r '.services[0].id // empty')
  if [[ -z $svc ]]; then
    svc=$(curl "${h[@]}" -d '{"service":{"type":"network","name":"neutron"}}' "$url/services" | jq -r .service.id)
  fi
  local iface
  for iface in public internal admin; do
    if [[ -z $(curl "${h[@]}" "$url/endpoints?service_id=$svc&interface=$iface" | jq -r '.endpoints[0].id // empty') ]]; then
      curl "${h[@]}" -o /dev/null -d "{\"endpoint\":{\"service_id\":\"$svc\",\"interface\":\"$iface\",\"region_id\":\"RegionOne\",\"url\":\"http://127.0.0.1:$NEUTRON_KS_PORT\"}}" "$url/endpoints"
    fi
  done
}

# ----------------------------------------------------------------------------------------------
# Docker

docker_answers() { "$DOCKER" version --format '{{.Server.Version}}'; }

start_docker() {
  if ! pid_alive "$RUN/dockerd.pid"; then
    if docker_answers >/dev/null 2>&1; then
      log "using a Docker daemon that was already running (not ours)"
    else
      mkdir -p "$DATA/docker" "$ETC/docker"
      # Ours, not /etc/docker/daemon.json: `restart-docker --live-restore` rewrites it.
      [[ -f $ETC/docker/daemon.json ]] || echo '{}' >"$ETC/docker/daemon.json"
      # vfs: no overlay support assumed; the data root is ours so `down --wipe` removes it.
      dockerd --storage-driver=vfs --data-root "$DATA/docker" --pidfile "$RUN/dockerd.pid" \
        --config-file "$ETC/docker/daemon.json" >>"$LOGS/dockerd.log" 2>&1 &
    fi
  fi
  wait_for 60 "Docker daemon" docker_answers
  if ! "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
    local root; root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
      [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    tar -C "$root" -c . | "$DOCKER" import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$IMAGE" >/dev/null
    rm -rf "$root"
  fi
}

# ----------------------------------------------------------------------------------------------
# containerd + CRI (what the kubelet talks to), calling CNI plugins from $CNI_BIN_DIR

cri_answers() { ctr -a "$CRI_SOCK" version; }

write_containerd_cri_conf() {
  mkdir -p "$ETC/containerd-cri" "$CNI_BIN_DIR" "$CNI_CONF_DIR"
  cat >"$ETC/containerd-cri/config.toml" <<EOF
version = 2
root = "$DATA/containerd-cri"
state = "$RUN/containerd-cri"
[grpc]
  address = "$CRI_SOCK"
[ttrpc]
  address = "$CRI_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/$PAUSE_IMAGE:latest"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    # vfs-like: no overlay support assumed (as for Docker).
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_CONF_DIR"
EOF
}

start_containerd_cri() {
  write_containerd_cri_conf
  # The chained plugins the tests put after kuryr-cni, and the bridge plugin the benchmark
  # compares with (Debian's containernetworking-plugins).
  local p
  for p in portmap bandwidth loopback bridge host-local; do ln -sf "/usr/lib/cni/$p" "$CNI_BIN_DIR/$p"; done
  if ! pid_alive "$RUN/containerd-cri.pid"; then
    containerd --config "$ETC/containerd-cri/config.toml" >>"$LOGS/containerd-cri.log" 2>&1 &
    echo $! >"$RUN/containerd-cri.pid"
  fi
  wait_for 30 "containerd (cri)" cri_answers
  # The pod sandbox image: busybox sleeping, imported from Docker (no registry is reachable).
  if ! ctr -a "$CRI_SOCK" -n k8s.io images ls -q | grep -qx "docker.io/library/$PAUSE_IMAGE:latest"; then
    if ! "$DOCKER" image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
      local c; c=$("$DOCKER" create "$IMAGE" true)
      "$DOCKER" export "$c" | "$DOCKER" import -c 'CMD ["/bin/sleep","2147483647"]' - "$PAUSE_IMAGE" >/dev/null
      "$DOCKER" rm "$c" >/dev/null
    fi
    "$DOCKER" save "$PAUSE_IMAGE" | ctr -a "$CRI_SOCK" -n k8s.io images import --snapshotter native - >/dev/null
  fi
}

# Pod shims outlive containerd; `down` stops those of our containerd too.
stop_cri_shims() {
  pkill -f -- "containerd-shim-runc-v2 .*-address $CRI_SOCK" 2>/dev/null || true
}

# ----------------------------------------------------------------------------------------------
# Kuryr (ours), registered with Docker as plugin `kuryr`

KURYR_SOCK=/run/docker/plugins/kuryr.sock

# write_kuryr_conf FILE HOST LOG [KURYR_URI]: a host's kuryr.conf (default socket without URI).
write_kuryr_conf() {
  local file=$1 host=$2 logf=$3 uri=${4:-}
  mkdir -p "$(dirname "$file")"
  cat >"$file" <<EOF
[DEFAULT]
host = $host
${uri:+kuryr_uri = $uri}
capability_scope = local
process_external_connectivity = True
log_file = $logf
state_path = $DATA/kuryr-state-$host

[neutron]
auth_type = none
endpoint = http://127.0.0.1:$NEUTRON_PORT
default_subnetpool_v4 = kuryr
default_subnetpool_v6 = kuryr6
vif_plugging_timeout = 30
vif_plugging_is_fatal = True
EOF
}

# The deployer creates the default pools that networks without --subnet draw from.
ensure_default_subnetpools() {
  local n=http://127.0.0.1:$NEUTRON_PORT/v2.0
  if [[ -z $(curl -fsS -m 10 "$n/subnetpools?name=kuryr" | jq -r '.subnetpools[0].id // empty') ]]; then
    curl -fsS -m 20 -o /dev/null -H 'Content-Type: application/json' \
      -d '{"subnetpool":{"name":"kuryr","prefixes":["10.90.0.0/16"],"default_prefixlen":24}}' "$n/subnetpools"
  fi
  if [[ -z $(curl -fsS -m 10 "$n/subnetpools?name=kuryr6" | jq -r '.subnetpools[0].id // empty') ]]; then
    curl -fsS -m 20 -o /dev/null -H 'Content-Type: application/json' \
      -d '{"subnetpool":{"name":"kuryr6","prefixes":["fd90::/48"],"default_prefixlen":64}}' "$n/subnetpools"
  fi
}

start_kuryr() {
  local bin=$REPO/target/release/kuryr-server
  log "building kuryr-server (release)"
  (cd "$REPO" && cargo build --release --locked -q -p kuryr-libnetwork) || die "cargo build failed"
  write_kuryr_conf "$ETC/kuryr/kuryr.conf" "$CHASSIS" "$LOGS/kuryr.log"
  ensure_default_subnetpools
  if pid_alive "$RUN/kuryr.pid"; then
    log "restarting kuryr-server with the fresh build"
    kill "$(cat "$RUN/kuryr.pid")"; wait_gone "$RUN/kuryr.pid" 20
  fi
  "$bin" --config-file "$ETC/kuryr/kuryr.conf" >>"$LOGS/kuryr.log" 2>&1 &
  echo $! >"$RUN/kuryr.pid"
  wait_for 20 "kuryr-server" curl -fsS -m 2 --unix-socket "$KURYR_SOCK" -X POST http://kuryr/Plugin.Activate
}

# ----------------------------------------------------------------------------------------------
# verbs

# The order of start; `down` stops in reverse.
PIECES=(mariadb ovsdb-server ovs-vswitchd ovnnb_db ovnsb_db ovn-northd ovn-controller neutron-api
  keystone neutron-api-keystone dockerd containerd-cri kuryr)

cmd_up() {
  local t0; t0=$(now_ms)
  install_all
  stage "mariadb" start_mariadb
  stage "openvswitch" start_ovs
  stage "ovn" start_ovn
  stage "neutron" start_neutron
  if [[ ${WITH_KEYSTONE:-0} == 1 ]]; then stage "keystone" start_keystone; fi
  if [[ ${WITH_ML2OVS:-0} == 1 ]]; then cmd_up_ml2ovs; fi
  stage "docker" start_docker
  stage "containerd (cri)" start_containerd_cri
  if [[ ${WITH_KURYR:-0} == 1 ]]; then stage "kuryr" start_kuryr; fi
  if ((HOSTS == 2)); then cmd_up_host2; fi
  log "stack up in $(( $(now_ms) - t0 )) ms; logs in $LOGS"
}

wait_gone() { # pidfile seconds
  local pidf=$1 secs=$2 pid; pid=$(cat "$pidf" 2>/dev/null) || return 0
  # Callers check identity (pid_alive) before they signal; from then on only existence counts,
  # because a dying process has an empty cmdline but still holds its ports and files.
  local deadline=$(( $(date +%s) + secs ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(date +%s) >= deadline )); then kill -9 "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$pidf"
}

# stop_pieces NAME...: stops each piece we started, last one first.
stop_pieces() {
  local i name pidf pieces=("$@")
  for (( i=${#pieces[@]}-1; i>=0; i-- )); do
    name=${pieces[$i]}; pidf=$RUN/$name.pid
    if pid_alive "$pidf"; then
      log "stopping $name (pid $(cat "$pidf"))"
      kill "$(cat "$pidf")" 2>/dev/null || true
      # The Open vSwitch agent ignores SIGTERM for a long while (eventlet); it keeps no state
      # that a kill loses.
      if [[ $name == neutron-ovs-agent ]]; then wait_gone "$pidf" 5; else wait_gone "$pidf" 30; fi
    else
      rm -f "$pidf"
    fi
  done
}

cmd_down() {
  cmd_down_host2
  cmd_down_ml2ovs
  stop_cri_shims
  stop_pieces "${PIECES[@]}"
  if [[ ${WIPE:-0} == 1 ]]; then
    log "wiping $DATA and $ETC"
    unmount_below "$DATA"
    rm -rf "$DATA" "$ETC"
  fi
}

cmd_status() {
  local name pidf state rc=0
  for name in "${PIECES[@]}" "${OVS_PIECES[@]}" "${H2_PIECES[@]}"; do
    pidf=$RUN/$name.pid
    if pid_alive "$pidf"; then state="running (pid $(cat "$pidf"))"; else state="stopped"; fi
    printf '%-22s %s\n' "$name" "$state"
  done
  neutron_answers "$NEUTRON_PORT" >/dev/null 2>&1 && echo "neutron API: answers on :$NEUTRON_PORT" || { echo "neutron API: down"; rc=1; }
  docker_answers >/dev/null 2>&1 && echo "docker: answers" || { echo "docker: down"; rc=1; }
  echo "logs: $LOGS"
  return $rc
}

cmd_env() {
  echo "export KURYR_TEST_NEUTRON_URL=http://127.0.0.1:$NEUTRON_PORT"
  echo "export KURYR_TEST_CHASSIS=$CHASSIS"
  echo "export KURYR_TEST_OVSDB=unix:$OVS_RUN/db.sock"
  echo "export KURYR_TEST_IMAGE=$IMAGE"
  echo "export KURYR_STACK_DIR=$STACK_DIR"
  if cri_answers >/dev/null 2>&1; then
    echo "export KURYR_TEST_CRI_SOCKET=$CRI_SOCK"
    echo "export KURYR_TEST_CNI_BIN_DIR=$CNI_BIN_DIR"
    echo "export KURYR_TEST_CNI_CONF_DIR=$CNI_CONF_DIR"
  fi
  if docker_answers >/dev/null 2>&1; then echo "export KURYR_TEST_DOCKER=1"; fi
  cmd_env_host2
  cmd_env_ml2ovs
  if pid_alive "$RUN/keystone.pid" || curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$KEYSTONE_PORT/v3" 2>/dev/null; then
    echo "export KURYR_TEST_KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3"
    echo "export KURYR_TEST_KEYSTONE_USERNAME=admin"
    echo "export KURYR_TEST_KEYSTONE_PASSWORD=$KEYSTONE_ADMIN_PASSWORD"
    echo "export KURYR_TEST_KEYSTONE_PROJECT=admin"
    echo "export KURYR_TEST_KEYSTONE_USER_DOMAIN=Default"
    echo "export KURYR_TEST_KEYSTONE_PROJECT_DOMAIN=Default"
  fi
}

# Restarts the stack's Docker daemon (clears Docker 20.10's stale network endpoints, which
# nothing else does). Without --live-restore the containers it ran stop; with it they keep
# running, and so does the next daemon.
cmd_restart_docker() {
  pid_alive "$RUN/dockerd.pid" || die "the stack's Docker daemon is not running"
  local conf='{}'
  if [[ ${LIVE_RESTORE:-0} == 1 ]]; then conf='{"live-restore": true}'; fi
  mkdir -p "$ETC/docker"; echo "$conf" >"$ETC/docker/daemon.json"
  # live-restore is read again on SIGHUP: the daemon stops the way the next one is set up.
  kill -HUP "$(cat "$RUN/dockerd.pid")"
  sleep 1
  kill "$(cat "$RUN/dockerd.pid")"; wait_gone "$RUN/dockerd.pid" 60
  start_docker
}

# Restarts one piece the stack started, for the reliability tests: `mariadb` (Neutron's
# database) or `ovn-controller`. Containers keep running; what they lose is what is measured.
cmd_restart() { # piece
  local piece=$1
  case $piece in
    mariadb|ovn-controller) ;;
    *) die "restart: mariadb or ovn-controller, not '$piece'" ;;
  esac
  pid_alive "$RUN/$piece.pid" || die "the stack's $piece is not running (not started by this stack?)"
  kill "$(cat "$RUN/$piece.pid")"; wait_gone "$RUN/$piece.pid" 60
  local t0; t0=$(now_ms)
  case $piece in
    mariadb) start_mariadb ;;
    # Not start_ovn: the old process may linger as a zombie that `pgrep` still sees.
    ovn-controller) start_ovn_controller; wait_ovn_controller ;;
  esac
  log "$piece restarted in $(( $(now_ms) - t0 )) ms"
}

# shellcheck source=stack/host2.sh
source "$HERE/host2.sh"
# shellcheck source=stack/ml2ovs.sh
source "$HERE/ml2ovs.sh"

main() {
  [[ $(id -u) == 0 ]] || die "run as root"
  local verb=${1:-}; shift || true
  local piece=
  if [[ $verb == restart ]]; then piece=${1:-}; shift || true; fi
  local args=() a
  # `--hosts 2` as well as `--hosts=2`.
  while (($#)); do
    a=$1; shift
    if [[ $a == --hosts && $# -gt 0 ]]; then a=--hosts=$1; shift; fi
    args+=("$a")
  done
  for arg in "${args[@]}"; do
    case $arg in
      --keystone) WITH_KEYSTONE=1 ;;
      --kuryr) WITH_KURYR=1 ;;
      --ml2-ovs) WITH_ML2OVS=1 ;;
      --wipe) WIPE=1 ;;
      --live-restore) LIVE_RESTORE=1 ;;
      --hosts=1 | --hosts=2) HOSTS=${arg#--hosts=} ;;
      --hosts=*) die "--hosts: 1 or 2" ;;
      *) die "unknown option $arg" ;;
    esac
  done
  case $verb in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    restart-docker) cmd_restart_docker ;;
    restart) cmd_restart "$piece" ;;
    *) echo "usage: $0 up [--keystone] [--kuryr] [--hosts 2] [--ml2-ovs] | down [--wipe] | status | env | restart-docker [--live-restore] | restart mariadb|ovn-controller" >&2; exit 2 ;;
  esac
}

main "$@"
