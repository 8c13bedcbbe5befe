//! Two hosts on one Neutron (`stack.sh up --hosts 2`): host 1 is this machine's stack, host 2 a
//! network namespace with its own Open vSwitch, ovn-controller (a second chassis), Docker daemon
//! and Kuryr, joined to host 1 by a Geneve tunnel over a veth underlay. Containers on the two
//! hosts share Neutron networks (made on one host, adopted on the other), reach each other
//! through the tunnel, stay isolated until a router joins their subnets, and a `docker network rm`
//! on one host never takes what the other still uses.

mod e2e;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{docker_cmd, plugin_name, skip_or_fail, Stack, StackEnv};
use serde_json::Value;

/// Host 2's coordinates (from `stack/env.sh` when the stack runs two hosts).
struct Host2Env {
    netns: String,
    chassis: String,
    docker: String,
    ovs_rundir: String,
    plugin_dir: String,
}

impl Host2Env {
    fn from_env() -> Option<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(netns), Some(chassis), Some(docker), Some(ovs_rundir), Some(plugin_dir)) = (
            get("KURYR_TEST_HOST2_NETNS"),
            get("KURYR_TEST_HOST2_CHASSIS"),
            get("KURYR_TEST_HOST2_DOCKER"),
            get("KURYR_TEST_HOST2_OVS_RUNDIR"),
            get("KURYR_TEST_HOST2_PLUGIN_DIR"),
        ) else {
            skip_or_fail("no second host (start the stack with `stack.sh up --hosts 2`)");
            return None;
        };
        Some(Host2Env {
            netns,
            chassis,
            docker,
            ovs_rundir,
            plugin_dir,
        })
    }

    /// Links Kuryr made in host 2's namespace.
    fn links(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-n", &self.netns, "-o", "link", "show"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with("tap"))
            .collect()
    }

    /// Interfaces Kuryr owns on host 2's Open vSwitch.
    fn ovs_ports(&self) -> Vec<String> {
        let out = Command::new("ovs-vsctl")
            .arg(format!("--db=unix:{}/db.sock", self.ovs_rundir))
            .args([
                "--bare",
                "--columns=name",
                "find",
                "Interface",
                "external_ids:owner=kuryr",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    }
}

/// Host 2's Kuryr (in host 2's namespace, talking to host 2's OVS) and its Docker CLI.
struct Host2 {
    env: Host2Env,
    dir: PathBuf,
    daemon: Option<Child>,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Host2 {
    fn socket(&self) -> String {
        format!("{}/{}.sock", self.env.plugin_dir, plugin_name())
    }

    fn start(env: Host2Env, host1: &Stack, pools: bool) -> Self {
        let dir = host1.dir.join("host2");
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = Host2 {
            env,
            dir,
            daemon: None,
            containers: Vec::new(),
            networks: Vec::new(),
        };
        assert!(
            std::os::unix::net::UnixStream::connect(h.socket()).is_err(),
            "another daemon already serves {} on host 2",
            h.socket()
        );
        let conf = format!(
            "[DEFAULT]\ndebug = true\nhost = {chassis}\nkuryr_uri = unix://{sock}\n\
             capability_scope = local\nprocess_external_connectivity = true\norphan_sweep_interval = 2\n\
             state_path = {state}\n\n\
             [neutron]\nauth_type = none\nendpoint = {url}\ndefault_subnetpool_v4 = kuryr\n\
             default_subnetpool_v6 = kuryr6\nvif_plugging_is_fatal = true\nvif_plugging_timeout = 30\n\n\
             [binding]\nveth_dst_prefix = eth\n\n[vif_pool]\nenabled = {pools}\n",
            chassis = h.env.chassis,
            sock = h.socket(),
            state = h.dir.join("state").display(),
            // Host 2 reaches Neutron on its own loopback (the stack forwards it there).
            url = host1.env.neutron_url,
        );
        std::fs::write(h.dir.join("kuryr.conf"), conf).unwrap();
        h.start_daemon();
        h
    }

    fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("kuryr.log"))
            .unwrap();
        // `ip netns exec` execs the program (the pid is the daemon's) and gives it host 2's /sys.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.env.netns])
            .arg(env!("CARGO_BIN_EXE_kuryr-server"))
            .arg("--config-file")
            .arg(self.dir.join("kuryr.conf"))
            .env("RUST_LOG", "debug")
            // Host 2's ovs-vsctl talks to host 2's database.
            .env("OVS_RUNDIR", &self.env.ovs_rundir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start host 2's kuryr-server");
        self.daemon = Some(child);
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "host 2's kuryr-server exited with {st}:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "host 2's kuryr-server did not listen:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_daemon(&mut self) {
        e2e::stop_child(self.daemon.take());
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("kuryr.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn docker_try(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-H", self.env.docker.as_str()];
        all.extend_from_slice(args);
        docker_cmd(&all)
    }

    fn docker(&self, args: &[&str]) -> String {
        self.docker_try(args).unwrap_or_else(|e| {
            panic!("host 2: {e}\n--- host 2 kuryr log ---\n{}", self.log_tail())
        })
    }

    fn network_create(&mut self, name: &str, args: &[&str]) {
        let p = plugin_name();
        let mut all = vec!["network", "create", "-d", &p, "--ipam-driver", &p];
        all.extend_from_slice(args);
        all.push(name);
        self.networks.push(name.to_string());
        self.docker(&all);
    }

    fn network_rm(&mut self, name: &str) {
        self.docker(&["network", "rm", name]);
        self.networks.retain(|n| n != name);
    }

    fn run(&mut self, name: &str, net: &str, image: &str) {
        self.containers.push(name.to_string());
        self.docker(&e2e::run_args(name, net, image));
    }

    fn rm(&mut self, name: &str) {
        self.docker(&["rm", "-f", name]);
        self.containers.retain(|c| c != name);
    }

    fn ip(&self, c: &str, net: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
        self.docker(&["inspect", "-f", &f, c]).trim().to_string()
    }

    fn exec(&self, c: &str, cmd: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", c];
        args.extend_from_slice(cmd);
        self.docker_try(&args)
    }

    fn cleanup(&mut self) {
        for c in std::mem::take(&mut self.containers) {
            let _ = self.docker_try(&["rm", "-f", &c]);
        }
        for n in std::mem::take(&mut self.networks) {
            let _ = self.docker_try(&["network", "rm", &n]);
        }
        self.stop_daemon();
    }
}

fn pings(exec: impl Fn(&[&str]) -> Result<String, String>, ip: &str, size: usize) -> bool {
    let size = size.to_string();
    (0..5).any(|_| {
        exec(&["ping", "-c", "2", "-i", "0.3", "-W", "2", "-s", &size, ip]).is_ok() || {
            std::thread::sleep(Duration::from_millis(500));
            false
        }
    })
}

fn never_pings(exec: impl Fn(&[&str]) -> Result<String, String>, ip: &str) -> bool {
    exec(&["ping", "-c", "3", "-i", "0.3", "-W", "1", ip]).is_err()
}

/// Packets host 1's Geneve tunnel towards host 2 has carried (both ways).
fn tunnel_packets(remote_chassis_ip: &str) -> u64 {
    let out = Command::new("ovs-vsctl")
        .args([
            "--bare",
            "--columns=statistics",
            "find",
            "Interface",
            "type=geneve",
            &format!("options:remote_ip={remote_chassis_ip}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split([' ', '{', '}', ','])
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "rx_packets" || *k == "tx_packets")
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// Host 2's tunnel endpoint, as its chassis announces it in OVN.
fn encap_ip_of(chassis: &str) -> String {
    let out = Command::new("ovn-sbctl")
        .args([
            "--db=unix:/var/run/ovn/ovnsb_db.sock",
            "--bare",
            "--columns=encaps",
            "find",
            "Chassis",
            &format!("name={chassis}"),
        ])
        .output()
        .unwrap();
    let encap = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = Command::new("ovn-sbctl")
        .args([
            "--db=unix:/var/run/ovn/ovnsb_db.sock",
            "--bare",
            "--columns=ip",
            "list",
            "Encap",
            &encap,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_matches('"')
        .to_string()
}

fn port_of(stack: &Stack, net_id: &str, ip: &str) -> Value {
    let ports = stack.kuryr_ports(net_id);
    ports
        .into_iter()
        .find(|p| p["fixed_ips"][0]["ip_address"].as_str() == Some(ip))
        .unwrap_or_else(|| panic!("no kuryr port with {ip} on {net_id}"))
}

fn eth0_mtu(exec: impl Fn(&[&str]) -> Result<String, String>) -> u64 {
    exec(&["cat", "/sys/class/net/eth0/mtu"])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn two_hosts_share_networks_through_the_tunnel_and_never_take_what_the_other_uses() {
    let Some(env) = StackEnv::from_env() else {
        return;
    };
    let Some(env2) = Host2Env::from_env() else {
        return;
    };
    let mut s = Stack::start(env);
    // Pools on both hosts: each host's pool and reconciliation must keep to its own ports.
    s.set_pools(true);
    let mut h2 = Host2::start(env2, &s, true);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&mut s, &mut h2)));
    h2.cleanup();
    s.cleanup();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

fn scenario(s: &mut Stack, h2: &mut Host2) {
    let image = s.env.image.clone();
    let chassis2 = h2.env.chassis.clone();
    // -- one network, made on host 1 and adopted by id on host 2
    let net1 = s.network_create("mh1", &["--subnet", "10.91.61.0/24"]);
    let n1 = s.neutron_net_id(&net1);
    h2.network_create(
        &net1,
        &[
            "--subnet",
            "10.91.61.0/24",
            "-o",
            &format!("neutron.net.uuid={n1}"),
        ],
    );
    let a1 = s.run(&net1, &[]);
    let b1 = s.unique("b1");
    h2.run(&b1, &net1, &image);
    let (ip_a1, ip_b1) = (s.container_ip(&a1, &net1), h2.ip(&b1, &net1));
    for (ip, host) in [(&ip_a1, &s.env.chassis), (&ip_b1, &chassis2)] {
        let p = port_of(s, &n1, ip);
        assert_eq!(p["binding:host_id"].as_str(), Some(host.as_str()), "{p}");
        assert_eq!(p["status"], "ACTIVE", "{p}");
    }
    // The tunnel's overhead comes off Neutron's MTU, and the containers have that MTU.
    let mtu = s.neutron.get("networks", &n1).unwrap()["mtu"]
        .as_u64()
        .unwrap();
    assert!(
        mtu < 1500,
        "a Geneve network's MTU leaves room for the tunnel: {mtu}"
    );
    assert_eq!(eth0_mtu(|c| s.exec(&a1, c)), mtu);
    assert_eq!(eth0_mtu(|c| h2.exec(&b1, c)), mtu);
    let encap2 = encap_ip_of(&chassis2);
    let before = tunnel_packets(&encap2);
    // Full-size packets (MTU - IP and ICMP headers) both ways.
    let full = mtu as usize - 28;
    assert!(
        pings(|c| s.exec(&a1, c), &ip_b1, full),
        "host 1 -> host 2 ({ip_b1})"
    );
    assert!(
        pings(|c| h2.exec(&b1, c), &ip_a1, full),
        "host 2 -> host 1 ({ip_a1})"
    );
    // OVS refreshes interface statistics every few seconds.
    let crossed = e2e::wait_until(15, || tunnel_packets(&encap2) >= before + 4);
    assert!(
        crossed,
        "the pings crossed the Geneve tunnel ({before} -> {} packets)",
        tunnel_packets(&encap2)
    );

    // -- a second network, adopted on host 2 by name: isolated from the first until a router
    let net2 = s.network_create("mh2", &["--subnet", "10.91.62.0/24"]);
    let n2 = s.neutron_net_id(&net2);
    let n2_name = s.neutron.get("networks", &n2).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    h2.network_create(
        &net2,
        &[
            "--subnet",
            "10.91.62.0/24",
            "-o",
            &format!("neutron.net.name={n2_name}"),
        ],
    );
    let a2 = s.run(&net2, &[]);
    let ip_a2 = s.container_ip(&a2, &net2);
    assert!(
        never_pings(|c| h2.exec(&b1, c), &ip_a2),
        "networks are isolated across hosts"
    );
    let sub = |n: &str| {
        s.neutron.get("networks", n).unwrap()["subnets"][0]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (sub1, sub2) = (sub(&n1), sub(&n2));
    let router = s.router_joining("mh-router", &[&sub1, &sub2]);
    assert!(
        pings(|c| h2.exec(&b1, c), &ip_a2, 56),
        "a router joins them across hosts"
    );
    s.router_leaving(&router, &[&sub1, &sub2]);

    // -- each host's pool and reconciliation keep to that host's ports: host 2's daemon
    // restarts, host 1's ports are untouched and still carry traffic.
    let host1_ports: Vec<String> = s
        .pool_ports(&n1)
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!host1_ports.is_empty(), "host 1 pools ports on the network");
    h2.stop_daemon();
    h2.start_daemon();
    std::thread::sleep(Duration::from_secs(5)); // two orphan sweeps
    for id in &host1_ports {
        let p = s.neutron.get("ports", id).expect("host 1's port kept");
        assert_eq!(p["binding:host_id"].as_str(), Some(s.env.chassis.as_str()));
    }
    assert!(
        pings(|c| s.exec(&a1, c), &ip_b1, 56),
        "after host 2's restart"
    );

    // -- `docker network rm` on the host that made the network: host 2 still uses it.
    s.rm(&a1);
    s.network_rm(&net1);
    let left = s.neutron.get("networks", &n1).expect("kept for host 2");
    let tags = e2e::tags_of(&left);
    assert!(tags.contains(&"kuryr.net.made".to_string()), "{tags:?}");
    let b2 = s.unique("b2");
    h2.run(&b2, &net1, &image);
    let ip_b2 = h2.ip(&b2, &net1);
    assert!(pings(|c| h2.exec(&b1, c), &ip_b2, 56), "host 2 goes on");
    h2.rm(&b1);
    h2.rm(&b2);
    h2.network_rm(&net1);
    assert!(
        s.neutron.get("networks", &n1).is_none(),
        "the last user deleted the network Kuryr made"
    );

    // -- and the other way round: host 2 (which adopted) leaves first.
    h2.network_rm(&net2);
    let left = s.neutron.get("networks", &n2).expect("kept for host 1");
    assert!(!e2e::tags_of(&left).contains(&"kuryr.net.made".to_string()));
    let b3 = s.run(&net2, &[]);
    let ip_b3 = s.container_ip(&b3, &net2);
    assert!(pings(|c| s.exec(&a2, c), &ip_b3, 56), "host 1 goes on");
    s.rm(&a2);
    s.rm(&b3);
    s.network_rm(&net2);
    assert!(s.neutron.get("networks", &n2).is_none());

    // -- nothing left on either host.
    s.assert_no_kuryr_leftovers("two hosts");
    for net in [&n1, &n2] {
        let ports = s.neutron.list("ports", &[("network_id", net)]);
        assert!(ports.is_empty(), "ports left on {net}: {ports:?}");
    }
    let wait = e2e::wait_until(20, || {
        h2.env.links().is_empty() && h2.env.ovs_ports().is_empty()
    });
    assert!(
        wait,
        "host 2 left links {:?} or OVS ports {:?}",
        h2.env.links(),
        h2.env.ovs_ports()
    );
}

/// The two Docker daemons as a swarm, Kuryr as the managed plugin on both (Docker 20.10 refuses
/// legacy plugins for swarm-scope networks: "legacy plugin ... of type NetworkDriver is not
/// supported in swarm mode"), `capability_scope = global`.
struct Swarm {
    env2: Host2Env,
    dir: PathBuf,
    plugin: String,
    services: Vec<String>,
    /// Standalone containers on an attachable swarm network (host 2: true).
    standalone: Vec<(bool, String)>,
    networks: Vec<String>,
    /// Hosts (host 2: true) whose docker_gwbridge the swarm made.
    gwbridge_made: Vec<bool>,
}

impl Swarm {
    fn docker(&self, host2: bool, args: &[&str]) -> Result<String, String> {
        let mut all = Vec::new();
        if host2 {
            all.extend(["-H", self.env2.docker.as_str()]);
        }
        all.extend_from_slice(args);
        docker_cmd(&all)
    }

    fn must(&self, host2: bool, args: &[&str]) -> String {
        self.docker(host2, args)
            .unwrap_or_else(|e| panic!("host {}: {e}", if host2 { 2 } else { 1 }))
    }

    /// Builds the managed plugin once and installs it on both daemons, each with its own
    /// kuryr.conf (its chassis) and, on host 2, host 2's Open vSwitch.
    fn install_plugin(&self, neutron_url: &str, chassis1: &str) {
        let pdir = self.dir.join("plugin");
        let built = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../packaging/plugin/build-plugin.sh"
        ))
        .arg(env!("CARGO_BIN_EXE_kuryr-server"))
        .arg(&self.plugin)
        .env("KURYR_PLUGIN_DIR", &pdir)
        .output()
        .unwrap();
        assert!(
            built.status.success(),
            "build-plugin: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        self.must(
            true,
            &["plugin", "create", &self.plugin, pdir.to_str().unwrap()],
        );
        for (host2, chassis) in [(false, chassis1), (true, self.env2.chassis.as_str())] {
            let conf = self.dir.join(format!("conf-{chassis}"));
            std::fs::create_dir_all(&conf).unwrap();
            std::fs::write(
                conf.join("kuryr.conf"),
                format!(
                    "[DEFAULT]\ndebug = true\nhost = {chassis}\ncapability_scope = global\n\n\
                     [neutron]\nauth_type = none\nendpoint = {neutron_url}\n\
                     default_subnetpool_v4 = kuryr\ndefault_subnetpool_v6 = kuryr6\n\n\
                     [binding]\nveth_dst_prefix = eth\n\n[vif_pool]\nenabled = false\n"
                ),
            )
            .unwrap();
            let source = format!("config.source={}", conf.display());
            let ovs = format!("openvswitch.source={}", self.env2.ovs_rundir);
            let mut set = vec!["plugin", "set", &self.plugin, &source];
            if host2 {
                set.push(&ovs);
            }
            self.must(host2, &set);
            self.must(
                host2,
                &["plugin", "enable", "--timeout", "60", &self.plugin],
            );
        }
    }

    fn form(&mut self, addr1: &str, addr2: &str) {
        for host2 in [false, true] {
            let state = self.must(host2, &["info", "-f", "{{.Swarm.LocalNodeState}}"]);
            assert_eq!(
                state.trim(),
                "inactive",
                "a daemon of the stack is in a swarm already"
            );
        }
        self.must(
            false,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                addr1,
                "--listen-addr",
                &format!("{addr1}:2377"),
            ],
        );
        let token = self.must(false, &["swarm", "join-token", "-q", "worker"]);
        self.must(
            true,
            &[
                "swarm",
                "join",
                "--token",
                token.trim(),
                "--advertise-addr",
                addr2,
                "--listen-addr",
                &format!("{addr2}:2377"),
                &format!("{addr1}:2377"),
            ],
        );
    }

    /// The container of a service's task on one host, once it runs.
    fn task_on(&self, host2: bool, service: &str) -> String {
        let filter = format!("label=com.docker.swarm.service.name={service}");
        let mut id = String::new();
        let ok = e2e::wait_until(60, || {
            id = self
                .docker(host2, &["ps", "-q", "-f", &filter])
                .unwrap_or_default()
                .trim()
                .to_string();
            !id.is_empty()
        });
        assert!(ok, "no task of {service} runs on host {}", 1 + host2 as u8);
        id
    }

    fn cleanup(&mut self) {
        for (host2, c) in std::mem::take(&mut self.standalone) {
            let _ = self.docker(host2, &["rm", "-f", &c]);
        }
        for s in std::mem::take(&mut self.services) {
            let _ = self.docker(false, &["service", "rm", &s]);
        }
        if !self.networks.is_empty() {
            std::thread::sleep(Duration::from_secs(5)); // the tasks stop first
        }
        for n in std::mem::take(&mut self.networks) {
            let _ = self.docker(false, &["network", "rm", &n]);
        }
        let _ = self.docker(true, &["swarm", "leave", "--force"]);
        let _ = self.docker(false, &["swarm", "leave", "--force"]);
        // Swarm mode made the hosts' docker_gwbridge networks; they outlive the swarm.
        // Its ingress sandbox lets go of it a moment after the daemon left the swarm, and a
        // daemon still leaving may make it again: gone means still gone a second after a rm.
        for host2 in self.gwbridge_made.clone() {
            e2e::wait_until(90, || {
                let _ = self.docker(host2, &["network", "rm", "docker_gwbridge"]);
                std::thread::sleep(Duration::from_secs(1));
                self.docker(host2, &["network", "inspect", "docker_gwbridge"])
                    .is_err()
            });
        }
        for host2 in [true, false] {
            let _ = self.docker(host2, &["plugin", "disable", "-f", &self.plugin]);
            let _ = self.docker(host2, &["plugin", "rm", "-f", &self.plugin]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_swarm_service_on_a_kuryr_network_spans_both_hosts() {
    let Some(env) = StackEnv::from_env() else {
        return;
    };
    let Some(env2) = Host2Env::from_env() else {
        return;
    };
    let get = |k: &str| std::env::var(k).unwrap_or_default();
    let (addr1, addr2) = (
        get("KURYR_TEST_HOST1_MGMT_ADDR"),
        get("KURYR_TEST_HOST2_MGMT_ADDR"),
    );
    assert!(
        !addr1.is_empty() && !addr2.is_empty(),
        "the stack's env names the hosts' addresses"
    );
    let neutron = e2e::NeutronProbe::new(&env.neutron_url);
    let run = format!("{}", std::process::id());
    let mut sw = Swarm {
        env2,
        dir: std::env::temp_dir().join(format!("kuryr-swarm-{run}")),
        plugin: format!("kuryrtest/swarm:{run}"),
        services: Vec::new(),
        networks: Vec::new(),
        gwbridge_made: Vec::new(),
        standalone: Vec::new(),
    };
    std::fs::create_dir_all(&sw.dir).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sw.install_plugin(&env.neutron_url, &env.chassis);
        // Docker 20.10 without a swarm (and without the key-value store it no longer has) has
        // no place for a global-scope network: the limit docs/usage.md states.
        let outside = sw.docker(
            false,
            &["network", "create", "-d", &sw.plugin.clone(), "kswnoswarm"],
        );
        let _ = sw.docker(false, &["network", "rm", "kswnoswarm"]);
        let e = outside.expect_err("a global-scope network outside a swarm");
        assert!(e.contains("swarm manager"), "{e}");
        sw.form(&addr1, &addr2);
        // Kuryr's IPAM, then Docker's: both work in a swarm.
        for (i, ipam) in [sw.plugin.clone(), "default".to_string()]
            .iter()
            .enumerate()
        {
            swarm_service(&mut sw, &neutron, &env, ipam, i);
        }
    }));
    sw.cleanup();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

fn swarm_service(
    sw: &mut Swarm,
    neutron: &e2e::NeutronProbe,
    env: &StackEnv,
    ipam: &str,
    i: usize,
) {
    let (net, svc) = (format!("kswnet{i}"), format!("kswsvc{i}"));
    let subnet = format!("10.91.7{i}.0/24");
    sw.networks.push(net.clone());
    let plugin = sw.plugin.clone();
    sw.must(
        false,
        &[
            "network",
            "create",
            "-d",
            &plugin,
            "--ipam-driver",
            ipam,
            "--scope",
            "swarm",
            "--attachable",
            "--subnet",
            &subnet,
            &net,
        ],
    );
    let swarm_id = sw
        .must(false, &["network", "inspect", "-f", "{{.Id}}", &net])
        .trim()
        .to_string();
    sw.services.push(svc.clone());
    sw.must(
        false,
        &[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            &svc,
            "--mode",
            "global",
            "--network",
            &net,
            &env.image,
            "sleep",
            "600",
        ],
    );
    let (c1, c2) = (sw.task_on(false, &svc), sw.task_on(true, &svc));
    let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
    let ip1 = sw
        .must(false, &["inspect", "-f", &f, &c1])
        .trim()
        .to_string();
    let ip2 = sw
        .must(true, &["inspect", "-f", &f, &c2])
        .trim()
        .to_string();
    // One Neutron network for the swarm network, made by the manager, the replicas' ports on
    // it, each bound to its own host.
    let tag = format!("kuryr.net.uuid.lh:{swarm_id}");
    let nets = neutron.list("networks", &[("tags", &tag)]);
    assert_eq!(nets.len(), 1, "{ipam}: {nets:?}");
    assert!(e2e::tags_of(&nets[0]).contains(&"kuryr.net.swarm".to_string()));
    let nid = nets[0]["id"].as_str().unwrap().to_string();
    let hosts: Vec<(String, String)> = neutron
        .list(
            "ports",
            &[("network_id", &nid), ("device_owner", "compute:kuryr")],
        )
        .iter()
        .map(|p| {
            (
                p["fixed_ips"][0]["ip_address"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                p["binding:host_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        hosts.contains(&(ip1.clone(), env.chassis.clone())),
        "{ipam}: {hosts:?}"
    );
    assert!(
        hosts.contains(&(ip2.clone(), sw.env2.chassis.clone())),
        "{ipam}: {hosts:?}"
    );
    assert!(
        pings(
            |c| sw.docker(false, &[&["exec", c1.as_str()][..], c].concat()),
            &ip2,
            56
        ),
        "{ipam}: replica on host 1 -> replica on host 2 ({ip2})"
    );
    assert!(
        pings(
            |c| sw.docker(true, &[&["exec", c2.as_str()][..], c].concat()),
            &ip1,
            56
        ),
        "{ipam}: replica on host 2 -> replica on host 1 ({ip1})"
    );
    // --attachable: a standalone container on the worker joins the swarm network, gets its port
    // from host 2's Kuryr and reaches the replica on host 1.
    let sa = format!("kswsa{i}");
    sw.standalone.push((true, sa.clone()));
    sw.must(
        true,
        &[
            "run",
            "-d",
            "--name",
            &sa,
            "--network",
            &net,
            &env.image,
            "sleep",
            "600",
        ],
    );
    let ip_sa = sw
        .must(true, &["inspect", "-f", &f, &sa])
        .trim()
        .to_string();
    let bound: Vec<String> = neutron
        .list(
            "ports",
            &[("network_id", &nid), ("device_owner", "compute:kuryr")],
        )
        .iter()
        .filter(|p| p["fixed_ips"][0]["ip_address"] == ip_sa.as_str())
        .map(|p| p["binding:host_id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        bound,
        std::slice::from_ref(&sw.env2.chassis),
        "{ipam}: {ip_sa}'s port"
    );
    assert!(
        pings(
            |c| sw.docker(true, &[&["exec", sa.as_str()][..], c].concat()),
            &ip1,
            56
        ),
        "{ipam}: standalone container on host 2 -> replica on host 1 ({ip1})"
    );
    sw.must(true, &["rm", "-f", &sa]);
    sw.standalone.retain(|(_, c)| c != &sa);
    // Removed: the manager frees the network (or the last node leaving does), nothing left.
    sw.must(false, &["service", "rm", &svc]);
    sw.services.retain(|s| s != &svc);
    let tasks_gone = e2e::wait_until(60, || {
        [false, true].iter().all(|h2| {
            sw.docker(
                *h2,
                &[
                    "ps",
                    "-aq",
                    "-f",
                    &format!("label=com.docker.swarm.service.name={svc}"),
                ],
            )
            .map(|o| o.trim().is_empty())
            .unwrap_or(false)
        })
    });
    assert!(tasks_gone, "{ipam}: the service's tasks are gone");
    sw.must(false, &["network", "rm", &net]);
    sw.networks.retain(|n| n != &net);
    let gone = e2e::wait_until(60, || neutron.get("networks", &nid).is_none());
    assert!(
        gone,
        "{ipam}: neutron network {nid} left: {:?}",
        neutron.get("networks", &nid)
    );
    let pools: Vec<Value> = neutron
        .list("subnetpools", &[])
        .into_iter()
        .filter(|p| p["prefixes"].to_string().contains(&format!("10.91.7{i}.")))
        .collect();
    assert!(pools.is_empty(), "{ipam}: subnetpools left: {pools:?}");
    assert!(
        e2e::wait_until(20, || sw.env2.links().is_empty()
            && sw.env2.ovs_ports().is_empty()),
        "{ipam}: host 2 left links or OVS ports"
    );
}
