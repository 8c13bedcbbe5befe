//! Real-stack test of the nested macvlan mode (Kuryr inside a VM): a network namespace plays the
//! VM. Its `eth0` is a real, bound Neutron port plugged into br-int; inside it run a second Docker
//! daemon and `kuryr-server` with `default_port_driver = nested`, as they would in a VM. Containers
//! get a macvlan child of the VM's `eth0` and reach a peer port through OVN only because Kuryr
//! adds their address to the VM port's `allowed_address_pairs` (a control macvlan that is not
//! listed is dropped by OVN's port security).
//!
//! Needs the local stack (`stack/stack.sh up`, then `source stack/env.sh`); without it, prints
//! `skipped: ...` and passes (fails in CI). Runs in the `real-docker` nextest group (one at a time).

mod e2e;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{docker_cmd, skip_or_fail, tags_of, NeutronProbe};
use serde_json::{json, Value};

const PLUGIN: &str = "kuryr-nested";
const CIDR: &str = "10.93.0.0/24";
const GATEWAY: &str = "10.93.0.1";
const VM_IP: &str = "10.93.0.10";
const PEER_IP: &str = "10.93.0.20";
const UNLISTED_IP: &str = "10.93.0.99";

fn sh(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(format!(
            "{}: {}{}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

fn must(argv: &[&str]) -> String {
    sh(argv).unwrap_or_else(|e| panic!("{e}"))
}

/// Neutron listens on the host's loopback, which a VM reaches over its own network. Here a
/// listener on the VM namespace's loopback forwards each connection to the host's `port`.
fn forward_into_netns(netns: &str, port: u16) {
    use std::net::{TcpListener, TcpStream};
    let host = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let vm = std::fs::File::open(format!("/run/netns/{netns}")).unwrap();
    let flags = nix::sched::CloneFlags::CLONE_NEWNET;
    // Namespaces are per thread: bind in the VM's, then come back so that connects go out in
    // the host's. The listener stays in the namespace it was made in.
    let listener = std::thread::spawn(move || {
        nix::sched::setns(&vm, flags).expect("enter the vm namespace");
        let l = TcpListener::bind(("127.0.0.1", port));
        nix::sched::setns(&host, flags).expect("back to the host namespace");
        l
    })
    .join()
    .unwrap()
    .expect("listen in the vm namespace");
    std::thread::spawn(move || {
        for inbound in listener.incoming().flatten() {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (mut a, mut b) = (inbound.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut b);
                let _ = b.shutdown(std::net::Shutdown::Write);
            });
            let (mut a, mut b) = (upstream, inbound);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut b);
                let _ = b.shutdown(std::net::Shutdown::Write);
            });
        }
    });
}

/// Takes a host link out of br-int and deletes it; "not there" is fine.
fn unplug(link: &str) {
    let _ = sh(&[
        "ovs-vsctl",
        "--timeout=10",
        "--if-exists",
        "del-port",
        "br-int",
        link,
    ]);
    let _ = sh(&["ip", "link", "del", link]);
}

fn wait_until(what: &str, secs: u64, ok: impl FnMut() -> bool) {
    assert!(e2e::wait_until(secs, ok), "{what}: not within {secs}s");
}

/// Everything this test creates, removed by `cleanup` whatever happened.
struct NestedVm {
    neutron: NeutronProbe,
    chassis: String,
    image: String,
    id: String,
    dir: PathBuf,
    net_id: String,
    subnet_id: String,
    vm_port: Value,
    peer_port: Value,
    netns: Vec<String>,
    host_links: Vec<String>,
    dockerd: Option<Child>,
    kuryr: Option<Child>,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl NestedVm {
    fn vm_ns(&self) -> String {
        format!("kvm-{}", self.id)
    }
    fn peer_ns(&self) -> String {
        format!("kpeer-{}", self.id)
    }
    fn docker_sock(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }
    fn exec_root(&self) -> String {
        format!("/run/kn-{}", self.id)
    }

    /// Docker inside the "VM".
    fn docker(&self, args: &[&str]) -> Result<String, String> {
        let sock = self.docker_sock();
        let mut all = vec!["-H", sock.as_str()];
        all.extend_from_slice(args);
        docker_cmd(&all)
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        self.docker(args).unwrap_or_else(|e| {
            panic!(
                "{e}\n--- kuryr (nested) log ---\n{}",
                self.tail("kuryr.log")
            )
        })
    }

    fn tail(&self, file: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A Neutron port bound to this host, plugged into br-int by a veth whose other end is
    /// `eth0` of `netns` (as Nova + os-vif would plug a VM's tap).
    fn plug(&mut self, port: &Value, netns: &str, ip: &str) {
        let pid = port["id"].as_str().unwrap();
        let mac = port["mac_address"].as_str().unwrap();
        let host = format!("kn{}", &pid[..11]);
        let peer = format!("kx{}", &pid[..11]);
        must(&["ip", "netns", "add", netns]);
        self.netns.push(netns.to_string());
        must(&[
            "ip", "link", "add", &host, "type", "veth", "peer", "name", &peer,
        ]);
        self.host_links.push(host.clone());
        must(&["ip", "link", "set", &peer, "address", mac, "netns", netns]);
        must(&["ip", "-n", netns, "link", "set", &peer, "name", "eth0"]);
        must(&[
            "ip",
            "-n",
            netns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]);
        must(&["ip", "-n", netns, "link", "set", "eth0", "up"]);
        must(&["ip", "-n", netns, "link", "set", "lo", "up"]);
        must(&["ip", "link", "set", &host, "up"]);
        must(&[
            "ovs-vsctl",
            "--timeout=10",
            "--",
            "--may-exist",
            "add-port",
            "br-int",
            &host,
            "--",
            "set",
            "Interface",
            &host,
            &format!("external_ids:iface-id={pid}"),
            &format!("external_ids:attached-mac={mac}"),
            "external_ids:iface-status=active",
        ]);
    }

    fn port(&self, name: &str, ip: &str) -> Value {
        self.neutron.create(
            "ports",
            json!({"port": {
                "name": format!("kt{}-{name}", self.id),
                "network_id": self.net_id,
                "fixed_ips": [{"subnet_id": self.subnet_id, "ip_address": ip}],
                "binding:host_id": self.chassis,
            }}),
        )
    }

    fn setup(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let net = self.neutron.create(
            "networks",
            json!({"network": {"name": format!("kt{}-vmnet", self.id)}}),
        );
        self.net_id = net["id"].as_str().unwrap().to_string();
        let sub = self.neutron.create(
            "subnets",
            json!({"subnet": {"network_id": self.net_id, "ip_version": 4, "cidr": CIDR,
                   "gateway_ip": GATEWAY, "name": format!("kt{}-vmsub", self.id)}}),
        );
        self.subnet_id = sub["id"].as_str().unwrap().to_string();
        self.vm_port = self.port("vm", VM_IP);
        self.peer_port = self.port("peer", PEER_IP);
        let (vm, peer) = (self.vm_port.clone(), self.peer_port.clone());
        let (vm_ns, peer_ns) = (self.vm_ns(), self.peer_ns());
        self.plug(&vm, &vm_ns, VM_IP);
        self.plug(&peer, &peer_ns, PEER_IP);
        for p in [&vm, &peer] {
            let id = p["id"].as_str().unwrap().to_string();
            wait_until(&format!("port {id} ACTIVE"), 60, || {
                self.neutron
                    .get("ports", &id)
                    .is_some_and(|p| p["status"] == "ACTIVE")
            });
        }
        assert_eq!(
            self.neutron
                .get("ports", vm["id"].as_str().unwrap())
                .unwrap()["port_security_enabled"],
            true,
            "the vm port must enforce port security for this test to mean anything"
        );
    }

    fn start_kuryr(&mut self) {
        let url = std::env::var("KURYR_TEST_NEUTRON_URL").unwrap();
        let port: u16 = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(9696);
        forward_into_netns(&self.vm_ns(), port);
        let conf = format!(
            "[DEFAULT]\ndebug = true\nkuryr_uri = unix:///run/docker/plugins/{PLUGIN}.sock\n\
             capability_scope = local\ndefault_port_driver = kuryr_libnetwork.port_driver.drivers.nested\n\
             state_path = {state}\n\n\
             [neutron]\nauth_type = none\nendpoint = {url}\n\n[binding]\nlink_iface = eth0\n\n\
             [cni_daemon]\nenabled = true\nsocket_path = {cni}\n",
            url = std::env::var("KURYR_TEST_NEUTRON_URL").unwrap(),
            cni = self.dir.join("cni.sock").display(),
            state = self.dir.join("state").display()
        );
        std::fs::write(self.dir.join("kuryr.conf"), conf).unwrap();
        // `ip netns exec` also gives the process the VM's /sys (Kuryr reads link_iface's MAC there).
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.vm_ns()])
            .arg(env!("CARGO_BIN_EXE_kuryr-server"))
            .arg("--config-file")
            .arg(self.dir.join("kuryr.conf"))
            .env("RUST_LOG", "debug");
        let sock = format!("/run/docker/plugins/{PLUGIN}.sock");
        self.kuryr = Some(self.spawn_until_ready(cmd, "kuryr.log", 30, || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        }));
    }

    /// Starts a daemon with its output in `log`, and waits until `ready` (or it dies).
    fn spawn_until_ready(
        &self,
        mut cmd: Command,
        log: &str,
        secs: u64,
        ready: impl Fn() -> bool,
    ) -> Child {
        let file = std::fs::File::create(self.dir.join(log)).unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let start = Instant::now();
        while !ready() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("{cmd:?} exited with {st}:\n{}", self.tail(log));
            }
            if start.elapsed() > Duration::from_secs(secs) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} not ready in {secs}s:\n{}", self.tail(log));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    }

    fn start_dockerd(&mut self) {
        let data = self.dir.join("docker");
        // nsenter, not `ip netns exec`: Docker needs the host's cgroup mounts under /sys, which
        // `ip netns exec` hides behind a fresh sysfs.
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.vm_ns()))
            .arg("dockerd")
            .arg("--data-root")
            .arg(&data)
            .args(["--exec-root", &self.exec_root()])
            .arg("--pidfile")
            .arg(self.dir.join("dockerd.pid"))
            .args(["-H", &self.docker_sock()])
            .args([
                "--storage-driver=vfs",
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
            ]);
        self.dockerd = Some(
            self.spawn_until_ready(cmd, "dockerd.log", 60, || self.docker(&["version"]).is_ok()),
        );
        let tar = self.dir.join("image.tar");
        let tar = tar.to_str().unwrap();
        docker_cmd(&["save", "-o", tar, &self.image]).unwrap();
        self.docker_ok(&["load", "-i", tar]);
    }

    fn ping(&self, netns: &str, ip: &str) -> bool {
        sh(&[
            "ip", "netns", "exec", netns, "ping", "-c", "2", "-i", "0.3", "-W", "3", ip,
        ])
        .is_ok()
    }

    fn vm_pairs(&self) -> Vec<Value> {
        self.neutron
            .get("ports", self.vm_port["id"].as_str().unwrap())
            .unwrap()["allowed_address_pairs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Kuryr's ports a container holds (the endpoint's tags are on them); free pooled ports are
    /// not counted.
    fn container_ports(&self) -> Vec<Value> {
        self.neutron
            .list(
                "ports",
                &[
                    ("network_id", &self.net_id),
                    ("device_owner", "compute:kuryr"),
                ],
            )
            .into_iter()
            .filter(|p| {
                tags_of(p)
                    .iter()
                    .any(|t| t.starts_with("kuryr.net.uuid.lh:"))
            })
            .collect()
    }

    fn stop(child: &mut Option<Child>, secs: u64) {
        if let Some(mut c) = child.take() {
            // `ip netns exec` execs the program, so the pid is the daemon's own.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(secs) {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Removes everything; never panics.
    fn cleanup(&mut self) {
        for c in std::mem::take(&mut self.containers) {
            let _ = self.docker(&["rm", "-f", &c]);
        }
        for n in std::mem::take(&mut self.networks) {
            let _ = self.docker(&["network", "rm", &n]);
        }
        Self::stop(&mut self.dockerd, 30);
        Self::stop(&mut self.kuryr, 10);
        for l in std::mem::take(&mut self.host_links) {
            unplug(&l);
        }
        for ns in std::mem::take(&mut self.netns) {
            let _ = sh(&["ip", "netns", "del", &ns]);
        }
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if !self.net_id.is_empty() {
                for p in self.neutron.list("ports", &[("network_id", &self.net_id)]) {
                    if !p["device_owner"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("network:")
                    {
                        self.neutron.delete("ports", p["id"].as_str().unwrap());
                    }
                }
                self.neutron.delete("networks", &self.net_id);
            }
            for p in self
                .neutron
                .list("subnetpools", &[("name", &format!("kuryrPool-{CIDR}"))])
            {
                self.neutron
                    .delete("subnetpools", p["id"].as_str().unwrap());
            }
        }));
        let _ = std::fs::remove_dir_all(self.exec_root());
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A pod in the VM through the CNI front end of the VM's daemon: `kuryr-cni` ADD puts a
    /// macvlan child of the VM's interface into the pod's namespace, with an address pair on the
    /// VM's port; the pod reaches the peer through OVN's port security; DEL takes it all back.
    fn cni_pod_in_the_vm(&mut self) {
        let bin = e2e::kuryr_cni_binary();
        let pod = format!("kpod-{}", self.id);
        must(&["ip", "netns", "add", &pod]);
        self.netns.push(pod.clone());
        let conf = json!({
            "cniVersion": "1.0.0", "name": format!("vm-pods-{}", self.id), "type": "kuryr-cni",
            "neutron_network": self.net_id,
            "daemon_socket": self.dir.join("cni.sock").display().to_string(),
        });
        let call = |command: &str| {
            let (container, netns) = (format!("pod{}", self.id), format!("/run/netns/{pod}"));
            let env = [
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", container.as_str()),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", netns.as_str()),
            ];
            let (ok, text, _) = e2e::run_cni(&bin, &env, &conf.to_string());
            assert!(
                ok,
                "kuryr-cni {command}: {text}\n--- kuryr log ---\n{}",
                self.tail("kuryr.log")
            );
            serde_json::from_str::<Value>(text.trim()).unwrap_or(Value::Null)
        };
        let result = call("ADD");
        let ip = e2e::cni_result_ip(&result);
        let mac = result["interfaces"][0]["mac"].as_str().unwrap().to_string();
        assert!(mac.starts_with("00:00:5e:00:0"), "a vrrp-range mac: {mac}");
        let pairs = self.vm_pairs();
        assert!(
            pairs
                .iter()
                .any(|p| p["ip_address"] == ip.as_str() && p["mac_address"] == mac.as_str()),
            "vm port pairs {pairs:?} lack the pod's {ip} {mac}"
        );
        let inside = must(&["ip", "-n", &pod, "-d", "-o", "link", "show", "eth0"]);
        assert!(
            inside.contains("macvlan"),
            "the pod's eth0 is a macvlan: {inside}"
        );
        wait_until("the pod reaches the peer", 30, || self.ping(&pod, PEER_IP));
        assert!(
            self.ping(&self.peer_ns(), &ip),
            "the peer cannot reach the pod {ip}"
        );

        call("DEL");
        call("DEL");
        let pairs = self.vm_pairs();
        assert!(
            !pairs.iter().any(|p| p["ip_address"] == ip.as_str()),
            "the pod's address pair removed: {pairs:?}"
        );
        let links = must(&["ip", "-n", &pod, "-o", "link", "show"]);
        assert!(!links.contains("eth0"), "eth0 left in the pod:\n{links}");
        let links = must(&["ip", "-n", &self.vm_ns(), "-o", "link", "show"]);
        assert!(
            !links.contains("kuryr:"),
            "a link of the pod left in the vm:\n{links}"
        );
    }

    fn scenario(&mut self) {
        self.setup();
        let (vm_ns, peer_ns) = (self.vm_ns(), self.peer_ns());
        assert!(
            self.ping(&vm_ns, PEER_IP),
            "the vm itself reaches the peer through OVN"
        );

        // Control: a macvlan child of the vm's eth0 with an address Neutron does not know is
        // dropped by port security, so the container's success below is the address pair's doing.
        let spy_ns = format!("kspy-{}", self.id);
        must(&["ip", "netns", "add", &spy_ns]);
        self.netns.push(spy_ns.clone());
        must(&[
            "ip", "-n", &vm_ns, "link", "add", "spy", "link", "eth0", "type", "macvlan", "mode",
            "bridge",
        ]);
        must(&["ip", "-n", &vm_ns, "link", "set", "spy", "netns", &spy_ns]);
        must(&[
            "ip",
            "-n",
            &spy_ns,
            "addr",
            "add",
            &format!("{UNLISTED_IP}/24"),
            "dev",
            "spy",
        ]);
        must(&["ip", "-n", &spy_ns, "link", "set", "spy", "up"]);
        assert!(
            !self.ping(&spy_ns, PEER_IP),
            "an address that is not in allowed_address_pairs must not get through"
        );
        let _ = sh(&["ip", "netns", "del", &spy_ns]);
        self.netns.retain(|n| n != &spy_ns);

        self.start_kuryr();
        self.start_dockerd();

        // No neutron.net.* option: the docker network is the vm's own network, adopted.
        let name = format!("kt{}-nn", self.id);
        self.networks.push(name.clone());
        self.docker_ok(&[
            "network",
            "create",
            "-d",
            PLUGIN,
            "--ipam-driver",
            PLUGIN,
            "--subnet",
            CIDR,
            "--gateway",
            GATEWAY,
            &name,
        ]);
        let docker_net = self
            .docker_ok(&["network", "inspect", "-f", "{{.Id}}", &name])
            .trim()
            .to_string();
        let tags = tags_of(&self.neutron.get("networks", &self.net_id).unwrap());
        assert!(
            tags.contains(&format!("kuryr.net.existing:{}", &docker_net[..12])),
            "the vm network is adopted: {tags:?}"
        );
        assert_eq!(
            self.neutron
                .list("subnets", &[("network_id", &self.net_id)])
                .len(),
            1,
            "the vm subnet is used, not a new one"
        );

        // ML2/OVN refuses a pair with a MAC of the user's outside VRRP's ranges: a clear error,
        // and nothing left behind.
        let refused = format!("kt{}-c0", self.id);
        self.containers.push(refused.clone());
        let err = self
            .docker(&[
                "run",
                "-d",
                "--name",
                &refused,
                "--network",
                &name,
                "--mac-address",
                "02:00:00:00:71:01",
                &self.image,
                "sleep",
                "600",
            ])
            .expect_err("ml2/ovn refuses a non-vrrp mac in allowed_address_pairs");
        assert!(
            err.contains("default_port_driver = vlan") && err.contains("--mac-address"),
            "the error says what to do instead: {err}"
        );
        let _ = self.docker(&["rm", "-f", &refused]);
        self.containers.retain(|x| x != &refused);
        assert!(
            self.container_ports().is_empty(),
            "no port left after the refusal"
        );
        assert!(self.vm_pairs().is_empty(), "no pair left after the refusal");
        let links = must(&["ip", "-n", &vm_ns, "-o", "link", "show"]);
        assert!(!links.contains("t_c"), "no macvlan left:\n{links}");

        // A plain `docker run`: Docker asks for no MAC, Kuryr chooses one of VRRP's range, which
        // ML2/OVN accepts; the whole path works through OVN.
        let c = format!("kt{}-c1", self.id);
        self.containers.push(c.clone());
        self.docker_ok(&[
            "run",
            "-d",
            "--name",
            &c,
            "--network",
            &name,
            &self.image,
            "sleep",
            "600",
        ]);
        let vrrp_mac = self
            .docker_ok(&["exec", &c, "cat", "/sys/class/net/eth0/address"])
            .trim()
            .to_string();
        assert!(
            vrrp_mac.starts_with("00:00:5e:00:01:"),
            "kuryr chose a vrrp mac: {vrrp_mac}"
        );
        let ip = self
            .docker_ok(&[
                "inspect",
                "-f",
                &format!("{{{{(index .NetworkSettings.Networks \"{name}\").IPAddress}}}}"),
                &c,
            ])
            .trim()
            .to_string();
        // The endpoint's tags reach a pooled port right after Docker has its answer.
        wait_until("the container's port is tagged", 10, || {
            self.container_ports().len() == 1
        });
        let ports = self.container_ports();
        assert_eq!(
            ports.len(),
            1,
            "{ports:?}\nall ports: {:?}",
            self.neutron.list("ports", &[("network_id", &self.net_id)])
        );
        let port = &ports[0];
        assert_eq!(port["fixed_ips"][0]["ip_address"], ip.as_str());
        assert_eq!(
            port["binding:host_id"], "",
            "container ports are not bound in a vm"
        );
        assert_ne!(
            port["mac_address"],
            vrrp_mac.as_str(),
            "the container's mac is the pair's, not the port's (ovn would see it twice)"
        );
        let port_mac = vrrp_mac.clone();
        let pairs = self.vm_pairs();
        assert!(
            pairs
                .iter()
                .any(|p| p["ip_address"] == ip.as_str() && p["mac_address"] == port_mac.as_str()),
            "vm port pairs {pairs:?} lack {ip} {port_mac}"
        );
        let mac_in = self.docker_ok(&["exec", &c, "cat", "/sys/class/net/eth0/address"]);
        assert_eq!(
            mac_in.trim(),
            port_mac,
            "the macvlan carries the port's MAC"
        );

        // The first ARP from the container binds its (OVN "virtual") port to the vm port;
        // allow the datapath a moment for that.
        wait_until("the container reaches the peer", 30, || {
            self.docker(&["exec", &c, "ping", "-c", "1", "-W", "1", PEER_IP])
                .is_ok()
        });
        // Through OVN both ways: container -> peer, peer -> container.
        self.docker(&[
            "exec", &c, "ping", "-c", "3", "-i", "0.3", "-W", "5", PEER_IP,
        ])
        .unwrap_or_else(|e| panic!("container cannot reach the peer port: {e}"));
        assert!(
            self.ping(&peer_ns, &ip),
            "the peer port cannot reach the container {ip}"
        );

        self.docker_ok(&["rm", "-f", &c]);
        self.containers.retain(|x| x != &c);
        wait_until(
            "the container's port is released (deleted, or back in the pool)",
            30,
            || self.container_ports().is_empty(),
        );
        let pairs = self.vm_pairs();
        assert!(
            !pairs.iter().any(|p| p["ip_address"] == ip.as_str()),
            "address pair removed: {pairs:?}"
        );
        let links = must(&["ip", "-n", &vm_ns, "-o", "link", "show"]);
        assert!(
            !links.contains("t_c") && !links.contains("kuryr:"),
            "no macvlan left in the vm:\n{links}"
        );

        self.cni_pod_in_the_vm();

        self.docker_ok(&["network", "rm", &name]);
        self.networks.retain(|n| n != &name);
        let n = self
            .neutron
            .get("networks", &self.net_id)
            .expect("the vm network is kept");
        assert!(
            !tags_of(&n).iter().any(|t| t.starts_with("kuryr.")),
            "untagged: {n}"
        );
        assert!(
            self.neutron.get("subnets", &self.subnet_id).is_some(),
            "the vm subnet is kept"
        );
        assert!(
            self.neutron
                .list("subnetpools", &[("name", &format!("kuryrPool-{CIDR}"))])
                .is_empty(),
            "kuryr's pool for the subnet is released"
        );
    }
}

/// What an earlier run that was killed (no clean-up) left: its daemons, their mounts, the
/// namespaces, host links and Neutron resources. Runs are serialised, so none is live.
fn sweep_earlier_runs(neutron: &NeutronProbe) {
    let pids = sh(&["pgrep", "-f", "/tmp/kuryr-nested-"]).unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = sh(&["kill", pid]);
    }
    let start = Instant::now();
    while sh(&["pgrep", "-f", "/tmp/kuryr-nested-"]).is_ok() {
        if start.elapsed() > Duration::from_secs(15) {
            let _ = sh(&["pkill", "-9", "-f", "/tmp/kuryr-nested-"]);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with("/tmp/kuryr-nested-") || m.starts_with("/run/kn-"))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for m in points {
        let _ = sh(&["umount", "-l", m]);
    }
    for ns in must(&["ip", "netns", "list"]).lines() {
        let ns = ns.split_whitespace().next().unwrap_or("");
        if ["kvm-", "kpeer-", "kspy-"]
            .iter()
            .any(|p| ns.starts_with(p))
        {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
    for l in must(&["ovs-vsctl", "--timeout=10", "list-ports", "br-int"]).lines() {
        if l.starts_with("kn") {
            unplug(l);
        }
    }
    for n in neutron.list("networks", &[]) {
        let name = n["name"].as_str().unwrap_or("");
        if name.starts_with("kt") && name.ends_with("-vmnet") {
            let id = n["id"].as_str().unwrap();
            for p in neutron.list("ports", &[("network_id", id)]) {
                if !p["device_owner"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("network:")
                {
                    neutron.delete("ports", p["id"].as_str().unwrap());
                }
            }
            neutron.delete("networks", id);
        }
    }
    for p in neutron.list("subnetpools", &[("name", &format!("kuryrPool-{CIDR}"))]) {
        neutron.delete("subnetpools", p["id"].as_str().unwrap());
    }
    for dir in ["/tmp", "/run"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("kuryr-nested-") || name.starts_with("kn-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

#[test]
fn nested_macvlan_mode_with_a_namespace_as_the_vm() {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(_), Some(url)) = (get("KURYR_TEST_DOCKER"), get("KURYR_TEST_NEUTRON_URL")) else {
        skip_or_fail("the local stack is not up (KURYR_TEST_DOCKER, KURYR_TEST_NEUTRON_URL)");
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!(
        "{:06x}",
        (nanos as u64 ^ std::process::id() as u64) & 0xff_ffff
    );
    sweep_earlier_runs(&NeutronProbe::new(&url));
    let mut vm = NestedVm {
        neutron: NeutronProbe::new(&url),
        chassis: get("KURYR_TEST_CHASSIS").unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default()
        }),
        image: get("KURYR_TEST_IMAGE").unwrap_or_else(|| "kuryr-busybox".into()),
        dir: std::env::temp_dir().join(format!("kuryr-nested-{id}")),
        id,
        net_id: String::new(),
        subnet_id: String::new(),
        vm_port: Value::Null,
        peer_port: Value::Null,
        netns: Vec::new(),
        host_links: Vec::new(),
        dockerd: None,
        kuryr: None,
        containers: Vec::new(),
        networks: Vec::new(),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vm.scenario()));
    vm.cleanup();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
