//! Real-stack tests of the CNI front end: the real `kuryr-cni` binary, run as a container
//! runtime runs it (`CNI_*` variables, configuration on stdin), forwarding to the real
//! `kuryr-server` on its `[cni_daemon]` socket, against the real Neutron (ML2/OVN) and Open
//! vSwitch. Pods are network namespaces this test makes (`ip netns add`), as a runtime does;
//! traffic stays inside them.
//!
//! Needs the local stack like `driver_e2e` (skips without it, fails in CI); runs in the
//! `real-docker` group because it also uses the Docker plugin socket.

mod e2e;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use e2e::*;
use serde_json::{json, Value};

#[test]
fn kuryr_cni_against_real_neutron() {
    let Some(env) = StackEnv::from_env() else {
        return;
    };
    let bin = kuryr_cni_binary();
    let mut stack = Stack::start(env);
    let mut pods = Pods::new(&stack, bin);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_scenarios(&mut stack, &mut pods);
    }));
    pods.cleanup(&stack);
    stack.cleanup();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn run_scenarios(s: &mut Stack, pods: &mut Pods) {
    let a = pods.network(s, "a", "10.93.1.0/24");
    let b = pods.network(s, "b", "10.93.2.0/24");
    for pools in [false, true] {
        s.set_pools(pools);
        let label = if pools { "pools on" } else { "pools off" };
        eprintln!("--- {label}: two pods ping, check, del");
        scenario_two_pods(s, pods, &a);
        pods.assert_nothing_left(s, &a, label);
    }
    eprintln!("--- errors by direct invocation");
    scenario_errors(s, pods, &a);
    eprintln!("--- security groups from the configuration");
    scenario_security_groups(s, pods, &a);
    eprintln!("--- a configured project: its network by name, ports made in it, never pooled");
    scenario_project(s, pods);
    eprintln!("--- isolation, then a router joins the networks");
    scenario_router(s, pods, &a, &b);
    eprintln!("--- a docker container and a pod on one neutron network");
    scenario_docker_and_pod(s, pods, &a);
    eprintln!("--- podman (CNI backend) and a pod on one neutron network");
    scenario_podman(s, pods, &a);
    eprintln!("--- daemon restart: pods keep their network, del and gc after it");
    scenario_restart(s, pods, &a);
    eprintln!("--- the plugin killed mid-ADD (the runtime's deadline), then its DEL");
    scenario_plugin_killed(s, pods, &a);
    eprintln!("--- MariaDB, then ovn-controller restarted while pods run and start");
    scenario_service_restarts(s, pods, &a);
    // Pools off: the restarted daemon deletes its free pooled ports, taps and OVS ports too.
    s.set_pools(false);
    for net in [&a, &b] {
        pods.assert_nothing_left(s, net, "end");
        let pooled: Vec<Value> = pods
            .cni_ports(s, net)
            .into_iter()
            .chain(s.neutron.list(
                "ports",
                &[("network_id", &net.net_id), ("name", "kuryr-pool-port")],
            ))
            .collect();
        assert!(
            pooled.is_empty(),
            "pool ports left with pools off: {pooled:?}"
        );
    }
}

/// A Neutron network made for the test, and its CNI network configuration.
struct PodNet {
    name: String,
    net_id: String,
    subnet_id: String,
    cidr: String,
    /// The configuration's `project`, when the network is another project's.
    project: Option<String>,
}

impl PodNet {
    fn conf(&self, version: &str, socket: &std::path::Path) -> Value {
        let mut conf = json!({
            "cniVersion": version,
            "name": self.name,
            "type": "kuryr-cni",
            "neutron_network": self.net_id,
            "daemon_socket": socket.display().to_string(),
        });
        if let Some(p) = &self.project {
            // By name: it must be found in that project.
            conf["project"] = json!(p);
            conf["neutron_network"] = json!(self.name);
        }
        conf
    }
}

/// The pods (network namespaces) of the run and how to call the plugin.
struct Pods {
    bin: PathBuf,
    socket: PathBuf,
    run: String,
    namespaces: Vec<String>,
    /// (container id, network conf) of every ADD, for the final DELs.
    added: Vec<(String, Value)>,
    /// Every port an ADD got.
    seen_ports: Vec<String>,
}

/// An answer of the plugin: exit status and stdout as JSON (`Null` when empty).
struct Answer {
    ok: bool,
    out: Value,
    raw: String,
}

impl Answer {
    fn code(&self) -> u64 {
        self.out["code"].as_u64().unwrap_or(0)
    }
}

impl Pods {
    fn new(s: &Stack, bin: PathBuf) -> Self {
        Pods {
            bin,
            socket: s.cni_socket(),
            run: s.unique("p"),
            namespaces: Vec::new(),
            added: Vec::new(),
            seen_ports: Vec::new(),
        }
    }

    fn network(&mut self, s: &mut Stack, tag: &str, cidr: &str) -> PodNet {
        let name = s.unique(&format!("pods-{tag}"));
        Self::network_named(s, &name, cidr, None)
    }

    /// A network of `project` (Neutron's admin makes it there), or of Kuryr's own.
    fn network_named(s: &mut Stack, name: &str, cidr: &str, project: Option<&str>) -> PodNet {
        let mut body = json!({"network": {"name": name}});
        if let Some(p) = project {
            body["network"]["project_id"] = json!(p);
        }
        let net = s.neutron.create("networks", body);
        let net_id = net["id"].as_str().unwrap().to_string();
        s.track_neutron("networks", &net_id);
        let gw = cidr.replace(".0/24", ".1");
        let mut body = json!({"subnet": {"name": format!("{name}-sub"), "network_id": net_id, "ip_version": 4,
                   "cidr": cidr, "gateway_ip": gw, "dns_nameservers": ["10.93.0.53"]}});
        if let Some(p) = project {
            body["subnet"]["project_id"] = json!(p);
        }
        let sub = s.neutron.create("subnets", body);
        PodNet {
            name: name.to_string(),
            net_id,
            subnet_id: sub["id"].as_str().unwrap().to_string(),
            cidr: cidr.to_string(),
            project: project.map(str::to_string),
        }
    }

    /// A new pod sandbox: a network namespace, as the runtime makes it.
    fn sandbox(&mut self, tag: &str) -> String {
        let name = format!("{}-{tag}", self.run);
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        self.namespaces.push(name.clone());
        name
    }

    fn drop_sandbox(&mut self, ns: &str) {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
        self.namespaces.retain(|n| n != ns);
    }

    fn call(&self, command: &str, container: &str, netns: Option<&str>, conf: &Value) -> Answer {
        self.call_raw(command, container, netns, "eth0", &conf.to_string())
    }

    fn call_raw(
        &self,
        command: &str,
        container: &str,
        netns: Option<&str>,
        ifname: &str,
        stdin: &str,
    ) -> Answer {
        let (ok, raw, err) = cni_output(self.spawn(command, container, netns, ifname, stdin));
        Answer {
            ok,
            out: serde_json::from_str(raw.trim()).unwrap_or(Value::Null),
            raw: format!("{raw}{err}"),
        }
    }

    /// The plugin running for one call (as the runtime starts it), not waited for.
    fn spawn(
        &self,
        command: &str,
        container: &str,
        netns: Option<&str>,
        ifname: &str,
        stdin: &str,
    ) -> std::process::Child {
        let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={container}");
        let mut env = vec![
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", container),
            ("CNI_IFNAME", ifname),
            ("CNI_PATH", "/opt/cni/bin"),
            ("CNI_ARGS", args.as_str()),
        ];
        if let Some(ns) = netns {
            env.push(("CNI_NETNS", ns));
        }
        spawn_cni(&self.bin, &env, stdin)
    }

    /// ADD that must succeed; returns the pod's address (no prefix).
    fn add(&mut self, s: &Stack, container: &str, ns: &str, net: &PodNet) -> String {
        let conf = net.conf("1.1.0", &self.socket);
        let a = self.call("ADD", container, Some(&netns_path(ns)), &conf);
        assert!(
            a.ok,
            "ADD {container}: {}\n--- kuryr log ---\n{}",
            a.raw,
            s.log_tail()
        );
        self.added.push((container.to_string(), conf));
        let tag = format!("kuryr.cni.container:{container}");
        // A pooled port's tags are written right after the answer.
        let mut mine = Vec::new();
        wait_until(10, || {
            mine = s.neutron.list("ports", &[("tags", &tag)]);
            mine.len() == 1
        });
        assert_eq!(mine.len(), 1, "ports tagged {tag}: {mine:?}");
        self.seen_ports
            .push(mine[0]["id"].as_str().unwrap().to_string());
        cni_result_ip(&a.out)
    }

    fn del(&mut self, s: &Stack, container: &str, ns: Option<&str>, net: &PodNet) {
        let a = self.call(
            "DEL",
            container,
            ns.map(netns_path).as_deref(),
            &net.conf("1.1.0", &self.socket),
        );
        assert!(
            a.ok,
            "DEL {container}: {}\n--- kuryr log ---\n{}",
            a.raw,
            s.log_tail()
        );
        self.added.retain(|(c, _)| c != container);
    }

    /// Ports on the network that carry this CNI network's tag (any host).
    fn cni_ports(&self, s: &Stack, net: &PodNet) -> Vec<Value> {
        s.neutron.list(
            "ports",
            &[
                ("network_id", &net.net_id),
                ("tags", &format!("kuryr.cni.network:{}", net.name)),
            ],
        )
    }

    /// No attachment's port (claimed or still tagged), tap or OVS port is left on the network.
    /// Free ports of this host's pool may stay (a port given back keeps its last tags until
    /// the pool's next tidy, so this waits up to 30 s for that).
    fn assert_nothing_left(&self, s: &Stack, net: &PodNet, when: &str) {
        let mut problem = None;
        wait_until(30, || {
            problem = self.leftover(s, net);
            problem.is_none()
        });
        if let Some(p) = problem {
            panic!("{when}: {p}\n--- kuryr log ---\n{}", s.log_tail());
        }
    }

    fn leftover(&self, s: &Stack, net: &PodNet) -> Option<String> {
        for p in s.neutron.list("ports", &[("network_id", &net.net_id)]) {
            let owner = p["device_owner"].as_str().unwrap_or("");
            if !is_free_pool_port(&p) && !owner.starts_with("network:") {
                return Some(format!("port left on the pod network: {p}"));
            }
        }
        // Every port an attachment held: gone with its tap and OVS port, or free in the pool.
        for id in &self.seen_ports {
            if s.neutron.get("ports", id).is_none() {
                if s.host_has_link(&tap_name(id)) {
                    return Some(format!("tap of {id} left"));
                }
                if s.ovs_has_port(&tap_name(id)) {
                    return Some(format!("ovs port of {id} left"));
                }
            }
        }
        None
    }

    fn cleanup(&mut self, s: &Stack) {
        for (c, conf) in std::mem::take(&mut self.added) {
            let _ = self.call("DEL", &c, None, &conf);
        }
        for ns in std::mem::take(&mut self.namespaces) {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let _ = s;
    }
}

/// A free port of this host's pool: no attachment's tags (the pool's tidy may lag by one
/// period; such a port is not a leak, the network's deletion drains it).
fn is_free_pool_port(p: &Value) -> bool {
    let tags = tags_of(p);
    tags.iter().any(|t| t.starts_with("kuryr.pool:"))
        && !tags.iter().any(|t| t.starts_with("kuryr.net.uuid.lh:"))
        || p["name"].as_str() == Some("kuryr-pool-port")
}

fn netns_path(ns: &str) -> String {
    format!("/run/netns/{ns}")
}

/// Runs a command inside a pod's namespace.
fn in_pod(ns: &str, cmd: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(format!(
            "{cmd:?} in {ns}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether `from` reaches `ip` (a few tries: OVN installs flows right after ACTIVE).
fn pings(from: &str, ip: &str, tries: u32) -> bool {
    pings_within(&["ip", "netns", "exec", from], ip, tries)
}

fn scenario_two_pods(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    let (n1, n2) = (pods.sandbox("one"), pods.sandbox("two"));
    let c1 = format!("{}one", pods.run);
    let c2 = format!("{}two", pods.run);
    let ip1 = pods.add(s, &c1, &n1, net);
    let ip2 = pods.add(s, &c2, &n2, net);
    assert_ne!(ip1, ip2);

    // The interface, its address, MAC and routes inside the pod.
    let shown = in_pod(&n1, &["ip", "-j", "addr", "show", "eth0"]).unwrap();
    let link: Value = serde_json::from_str::<Value>(&shown).unwrap()[0].clone();
    assert!(
        link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["local"] == ip1.as_str()),
        "{link}"
    );
    let ports = pods.cni_ports(s, net);
    let p1 = ports
        .iter()
        .find(|p| tags_of(p).contains(&format!("kuryr.cni.container:{c1}")))
        .unwrap_or_else(|| panic!("no port tagged for {c1}: {ports:?}"));
    assert_eq!(link["address"], p1["mac_address"], "the port's MAC");
    assert_eq!(p1["status"], "ACTIVE");
    assert_eq!(p1["binding:host_id"], s.env.chassis.as_str());
    assert!(tags_of(p1).contains(&format!("kuryr.k8s.pod:{c1}")));
    let routes = in_pod(&n1, &["ip", "route"]).unwrap();
    let gw = net.cidr.replace(".0/24", ".1");
    assert!(
        routes.contains(&format!("default via {gw} dev eth0")),
        "{routes}"
    );

    // Pod to pod through OVN, both ways.
    assert!(
        pings(&n1, &ip2, 20),
        "{c1} cannot reach {c2}\n{}",
        s.log_tail()
    );
    assert!(pings(&n2, &ip1, 10), "{c2} cannot reach {c1}");

    // CHECK passes; it fails once the pod's address is gone.
    let conf = net.conf("1.1.0", &pods.socket);
    let a = pods.call("CHECK", &c1, Some(&netns_path(&n1)), &conf);
    assert!(a.ok, "CHECK: {}", a.raw);
    in_pod(&n1, &["ip", "addr", "flush", "dev", "eth0"]).unwrap();
    let a = pods.call("CHECK", &c1, Some(&netns_path(&n1)), &conf);
    assert!(!a.ok && a.code() == 101, "CHECK after flush: {}", a.raw);
    assert!(
        a.out["msg"].as_str().unwrap().contains("is missing"),
        "{}",
        a.raw
    );

    // DEL (twice), with the namespace still there and with it gone.
    pods.del(s, &c1, Some(&n1), net);
    pods.del(s, &c1, Some(&n1), net);
    assert!(
        in_pod(&n1, &["ip", "link", "show", "eth0"]).is_err(),
        "eth0 left in the pod"
    );
    pods.drop_sandbox(&n2);
    pods.del(s, &c2, Some(&n2), net);
    pods.del(s, &c2, None, net);
    pods.drop_sandbox(&n1);
    // A released port goes back to the pool in the background (its tags and name reset).
    let mut held: Vec<Value> = Vec::new();
    wait_until(30, || {
        held = pods
            .cni_ports(s, net)
            .into_iter()
            .filter(|p| !is_free_pool_port(p))
            .collect();
        held.is_empty()
    });
    assert!(held.is_empty(), "ports left after DEL: {held:?}");
}

fn scenario_errors(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    let ns = pods.sandbox("err");
    let path = netns_path(&ns);
    let c = format!("{}err", pods.run);
    let conf = net.conf("1.0.0", &pods.socket);
    let before = s
        .neutron
        .list("ports", &[("network_id", &net.net_id)])
        .len();

    let a = pods.call_raw("ADD", &c, Some(&path), "eth0", "{not json");
    assert_eq!((a.ok, a.code()), (false, 6), "bad json: {}", a.raw);
    let mut bad = conf.clone();
    bad["neutron_network"] = json!(format!("{}-nope", net.name));
    let a = pods.call("ADD", &c, Some(&path), &bad);
    assert_eq!((a.ok, a.code()), (false, 7), "unknown network: {}", a.raw);
    assert!(
        a.out["msg"].as_str().unwrap().contains("does not exist"),
        "{}",
        a.raw
    );
    let a = pods.call("ADD", &c, Some("/run/netns/kuryr-no-such-ns"), &conf);
    assert_eq!((a.ok, a.code()), (false, 4), "missing netns: {}", a.raw);
    let mut old = conf.clone();
    old["cniVersion"] = json!("0.2.0");
    let a = pods.call("ADD", &c, Some(&path), &old);
    assert_eq!(
        (a.ok, a.code()),
        (false, 1),
        "unsupported version: {}",
        a.raw
    );
    let a = pods.call("BOGUS", &c, Some(&path), &conf);
    assert_eq!((a.ok, a.code()), (false, 4), "bad command: {}", a.raw);
    let a = pods.call_raw("ADD", &c, Some(&path), "a/b", &conf.to_string());
    assert_eq!((a.ok, a.code()), (false, 4), "bad ifname: {}", a.raw);
    let a = pods.call("VERSION", &c, None, &json!({"cniVersion": "1.0.0"}));
    assert!(a.ok, "{}", a.raw);
    assert!(a.out["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("1.1.0")));
    // STATUS: ready; not ready for a network that does not exist.
    let a = pods.call("STATUS", "", None, &net.conf("1.1.0", &pods.socket));
    assert!(a.ok, "STATUS: {}", a.raw);
    let mut gone = net.conf("1.1.0", &pods.socket);
    gone["neutron_network"] = json!("no-such-network-kuryr");
    let a = pods.call("STATUS", "", None, &gone);
    assert_eq!((a.ok, a.code()), (false, 50), "STATUS: {}", a.raw);
    // The daemon is not there: try again later.
    let mut nowhere = conf.clone();
    nowhere["daemon_socket"] = json!("/run/kuryr/nowhere.sock");
    let a = pods.call("ADD", &c, Some(&path), &nowhere);
    assert_eq!((a.ok, a.code()), (false, 11), "no daemon: {}", a.raw);

    // ADD twice without DEL: the second is refused, the first is untouched.
    let ip = pods.add(s, &c, &ns, net);
    let a = pods.call("ADD", &c, Some(&path), &conf);
    assert!(
        !a.ok && a.out["msg"].as_str().unwrap().contains("already exists"),
        "{}",
        a.raw
    );
    assert!(in_pod(&ns, &["ip", "addr", "show", "eth0"])
        .unwrap()
        .contains(&ip));
    pods.del(s, &c, Some(&ns), net);
    pods.drop_sandbox(&ns);
    let after: Vec<Value> = s
        .neutron
        .list("ports", &[("network_id", &net.net_id)])
        .into_iter()
        .filter(|p| !is_free_pool_port(p))
        .collect();
    assert!(after.len() <= before, "error paths left ports: {after:?}");
}

fn scenario_security_groups(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    // Two groups of the test's: "closed" has Neutron's default rules only (egress), "icmp" also
    // lets ICMP in. A pod in the default group pings a pod in each.
    let group = |s: &mut Stack, tag: &str, icmp: bool| {
        let name = s.unique(tag);
        let sg = s
            .neutron
            .create("security-groups", json!({"security_group": {"name": name}}));
        let id = sg["id"].as_str().unwrap().to_string();
        s.track_neutron("security-groups", &id);
        if icmp {
            s.neutron.create(
                "security-group-rules",
                json!({"security_group_rule": {"security_group_id": id, "direction": "ingress",
                                               "protocol": "icmp", "ethertype": "IPv4"}}),
            );
        }
        (name, id)
    };
    let (closed, closed_id) = group(s, "pod-closed", false);
    let (icmp, icmp_id) = group(s, "pod-icmp", true);
    let from = pods.sandbox("sg0");
    pods.add(s, &format!("{}sg0", pods.run), &from, net);
    let mut held = Vec::new();
    for (tag, name, id, reachable) in [
        ("sg1", &closed, &closed_id, false),
        ("sg2", &icmp, &icmp_id, true),
    ] {
        let ns = pods.sandbox(tag);
        let c = format!("{}{tag}", pods.run);
        let mut conf = net.conf("1.1.0", &pods.socket);
        // By name for one, by id for the other.
        conf["security_groups"] = json!([if reachable { id } else { name }]);
        let a = pods.call("ADD", &c, Some(&netns_path(&ns)), &conf);
        assert!(
            a.ok,
            "ADD with security_groups: {}\n{}",
            a.raw,
            s.log_tail()
        );
        pods.added.push((c.clone(), conf));
        let ip = cni_result_ip(&a.out);
        let tag_c = format!("kuryr.cni.container:{c}");
        let port = s.neutron.list("ports", &[("tags", &tag_c)]).remove(0);
        assert_eq!(port["security_groups"], json!([id]), "{port}");
        let pid = port["id"].as_str().unwrap().to_string();
        pods.seen_ports.push(pid.clone());
        assert_eq!(
            pings(&from, &ip, if reachable { 20 } else { 3 }),
            reachable,
            "{name}: reachable should be {reachable}"
        );
        held.push((c, ns, pid, id.clone()));
    }
    // A group that does not exist: refused with the configuration code, nothing made.
    let mut bad = net.conf("1.1.0", &pods.socket);
    bad["security_groups"] = json!(["kuryr-no-such-group"]);
    let a = pods.call_raw(
        "ADD",
        &format!("{}sgx", pods.run),
        Some(&netns_path(&from)),
        "eth1",
        &bad.to_string(),
    );
    assert_eq!((a.ok, a.code()), (false, 7), "unknown group: {}", a.raw);
    let c0 = format!("{}sg0", pods.run);
    pods.del(s, &c0, Some(&from), net);
    pods.drop_sandbox(&from);
    for (c, ns, pid, id) in held {
        pods.del(s, &c, Some(&ns), net);
        pods.drop_sandbox(&ns);
        // Released ports lose the group (reset before the pool hands them out again).
        let reset = wait_until(30, || {
            s.neutron
                .get("ports", &pid)
                .is_none_or(|p| p["security_groups"] != json!([id]))
        });
        assert!(reset, "port {pid} kept the pod's security group after DEL");
    }
}

fn scenario_project(s: &mut Stack, pods: &mut Pods) {
    // Pools on: the project's ports must bypass them.
    s.set_pools(true);
    let project = format!("{:032x}", std::process::id() as u128 * 7919 + 0xc0ffee);
    // One name, two networks: Kuryr's project's (a decoy) and the project's.
    let name = s.unique("pods-proj");
    let decoy = Pods::network_named(s, &name, "10.93.4.0/24", None);
    let net = Pods::network_named(s, &name, "10.93.3.0/24", Some(&project));
    let (na, nb) = (pods.sandbox("pa"), pods.sandbox("pb"));
    let ca = format!("{}pa", pods.run);
    let cb = format!("{}pb", pods.run);
    let ip_a = pods.add(s, &ca, &na, &net);
    let ip_b = pods.add(s, &cb, &nb, &net);
    for (c, ip) in [(&ca, &ip_a), (&cb, &ip_b)] {
        assert!(
            ip.starts_with("10.93.3."),
            "{c} got {ip}, not the project's network"
        );
        let tag = format!("kuryr.cni.container:{c}");
        let port = s.neutron.list("ports", &[("tags", &tag)]).remove(0);
        assert_eq!(port["project_id"], json!(project), "{port}");
        assert_eq!(port["network_id"], json!(net.net_id), "{port}");
        let tags = port["tags"].as_array().unwrap();
        assert!(tags.contains(&json!("kuryr.port.project")), "{port}");
    }
    assert!(
        pings(&na, &ip_b, 20),
        "pods of the project's network do not reach each other"
    );
    // Another project sees no network of that name.
    let mut elsewhere = net.conf("1.1.0", &pods.socket);
    elsewhere["project"] = json!(format!("{:032x}", 0xdead_u128));
    let a = pods.call_raw(
        "ADD",
        &format!("{}px", pods.run),
        Some(&netns_path(&na)),
        "eth1",
        &elsewhere.to_string(),
    );
    assert_eq!(
        (a.ok, a.code()),
        (false, 7),
        "unknown in that project: {}",
        a.raw
    );
    let held: Vec<String> = [&ca, &cb]
        .iter()
        .map(|c| {
            let tag = format!("kuryr.cni.container:{c}");
            s.neutron.list("ports", &[("tags", &tag)]).remove(0)["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    pods.del(s, &ca, Some(&na), &net);
    pods.del(s, &cb, Some(&nb), &net);
    pods.drop_sandbox(&na);
    pods.drop_sandbox(&nb);
    // Deleted, not pooled: nothing of the project's is left, on Neutron or the host.
    for id in &held {
        let gone = wait_until(30, || s.neutron.get("ports", id).is_none());
        assert!(gone, "the project's port {id} was not deleted at DEL");
    }
    pods.assert_nothing_left(s, &net, "project");
    pods.assert_nothing_left(s, &decoy, "project decoy");
    let left = s.neutron.list("ports", &[("network_id", &decoy.net_id)]);
    assert!(
        left.iter().all(|p| !p["device_owner"]
            .as_str()
            .unwrap_or("")
            .starts_with("compute:")),
        "the decoy network got a port: {left:?}"
    );
}

fn scenario_router(s: &mut Stack, pods: &mut Pods, a: &PodNet, b: &PodNet) {
    let (na, nb) = (pods.sandbox("ra"), pods.sandbox("rb"));
    let (ca, cb) = (format!("{}ra", pods.run), format!("{}rb", pods.run));
    let ipa = pods.add(s, &ca, &na, a);
    let ipb = pods.add(s, &cb, &nb, b);
    assert!(
        !pings(&na, &ipb, 3),
        "networks without a router must be isolated"
    );
    let rid = s.router_joining("pods-router", &[&a.subnet_id, &b.subnet_id]);
    assert!(
        pings(&na, &ipb, 30),
        "router joined: {ca} cannot reach {cb}"
    );
    assert!(pings(&nb, &ipa, 10));
    s.router_leaving(&rid, &[&a.subnet_id, &b.subnet_id]);
    pods.del(s, &ca, Some(&na), a);
    pods.del(s, &cb, Some(&nb), b);
    pods.drop_sandbox(&na);
    pods.drop_sandbox(&nb);
}

/// A Kuryr Docker network on the pods' Neutron network (adopted, with its subnet).
fn docker_network_on(s: &mut Stack, tag: &str, net: &PodNet) -> String {
    s.network_create(
        tag,
        &[
            "-o",
            &format!("neutron.net.uuid={}", net.net_id),
            "--subnet",
            &net.cidr,
            "--gateway",
            &net.cidr.replace(".0/24", ".1"),
        ],
    )
}

fn scenario_docker_and_pod(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    let docker_net = docker_network_on(s, "with-pods", net);
    let c = s.run(&docker_net, &[]);
    let cip = s.container_ip(&c, &docker_net);
    let ns = pods.sandbox("dk");
    let pc = format!("{}dk", pods.run);
    let pip = pods.add(s, &pc, &ns, net);
    assert!(
        pings(&ns, &cip, 20),
        "pod cannot reach docker container {cip}"
    );
    s.exec_ok(&c, &["ping", "-c", "1", "-W", "2", &pip]);
    pods.del(s, &pc, Some(&ns), net);
    pods.drop_sandbox(&ns);
    s.rm(&c);
    s.network_rm(&docker_net);
    // The Neutron network was adopted, not Kuryr's: it stays.
    assert!(s.neutron.get("networks", &net.net_id).is_some());
}

/// Podman 4 with its CNI backend, isolated from the host's podman: its own storage (vfs), run
/// directory, containers.conf (plugin and configuration directories of this run).
struct Podman {
    dir: PathBuf,
    /// The test image as podman named it when loading it.
    image: String,
}

impl Podman {
    fn new(s: &Stack, pods: &Pods) -> Self {
        let dir = std::env::temp_dir().join(format!("{}-podman", pods.run));
        for d in ["root", "runroot", "net.d", "bin"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy(&pods.bin, dir.join("bin/kuryr-cni")).unwrap();
        let conf = format!(
            "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{bin}\", \"/usr/lib/cni\"]\n\
             network_config_dir = \"{net}\"\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
            bin = dir.join("bin").display(),
            net = dir.join("net.d").display()
        );
        std::fs::write(dir.join("containers.conf"), conf).unwrap();
        let mut p = Podman {
            dir,
            image: String::new(),
        };
        // The test image, from Docker (no registry is reachable).
        let save = Command::new(DOCKER)
            .args(["save", &s.env.image])
            .output()
            .unwrap();
        assert!(save.status.success(), "docker save {}", s.env.image);
        let mut load = p.command(&["load", "-q"]);
        load.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = load.spawn().expect("run podman");
        child.stdin.take().unwrap().write_all(&save.stdout).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "podman load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "Loaded image: localhost/kuryr-busybox:latest"
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        p.image = said
            .lines()
            .find_map(|l| l.split_once(": ").map(|(_, i)| i.trim().to_string()))
            .unwrap_or_else(|| panic!("podman load said {said:?}"));
        p
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "vfs", "--network-backend", "cni"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self.command(args).output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "podman {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn cleanup(&self) {
        let _ = self.run(&["rm", "-a", "-f"]);
        let _ = self.run(&["system", "reset", "-f"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scenario_podman(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    if Command::new("podman").arg("--version").output().is_err() {
        skip_or_fail("podman is not installed");
        return;
    }
    let podman = Podman::new(s, pods);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        podman_on_kuryr(s, pods, net, &podman);
    }));
    podman.cleanup();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn podman_on_kuryr(s: &mut Stack, pods: &mut Pods, net: &PodNet, podman: &Podman) {
    // A podman network is its CNI configuration file, named after it.
    let name = format!("{}-podman", net.name);
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{"type": "kuryr-cni", "neutron_network": net.net_id,
                     "daemon_socket": pods.socket.display().to_string()}],
    });
    std::fs::write(
        podman.dir.join("net.d").join(format!("{name}.conflist")),
        conf.to_string(),
    )
    .unwrap();
    let image = podman.image.clone();
    let c = format!("{}-pm", pods.run);
    podman
        .run(&[
            "run",
            "-d",
            "--name",
            &c,
            "--network",
            &name,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &image,
            "sleep",
            "600",
        ])
        .unwrap_or_else(|e| panic!("{e}\n--- kuryr log ---\n{}", s.log_tail()));
    let format = format!("{{{{(index .NetworkSettings.Networks \"{name}\").IPAddress}}}}");
    let cip = podman.run(&["inspect", "-f", &format, &c]).unwrap();
    assert!(
        cip.starts_with(&net.cidr.replace(".0/24", ".")),
        "podman container address {cip}"
    );
    let tagged = s
        .neutron
        .list("ports", &[("tags", &format!("kuryr.cni.network:{name}"))]);
    assert_eq!(tagged.len(), 1, "the podman container's port: {tagged:?}");
    let ns = pods.sandbox("pm");
    let pc = format!("{}pm", pods.run);
    let pip = pods.add(s, &pc, &ns, net);
    assert!(
        pings(&ns, &cip, 20),
        "pod cannot reach the podman container {cip}"
    );
    podman
        .run(&["exec", &c, "ping", "-c", "1", "-W", "2", &pip])
        .unwrap_or_else(|e| panic!("podman container cannot reach the pod: {e}"));
    podman.run(&["rm", "-f", &c]).unwrap();
    let port = tagged[0]["id"].as_str().unwrap().to_string();
    let released = wait_until(30, || match s.neutron.get("ports", &port) {
        None => true,
        Some(p) => !tags_of(&p).iter().any(|t| t.starts_with("kuryr.cni.")),
    });
    assert!(released, "podman rm left port {port} held");
    pods.del(s, &pc, Some(&ns), net);
    pods.drop_sandbox(&ns);
}

fn scenario_restart(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    let (n1, n2, n3) = (pods.sandbox("k1"), pods.sandbox("k2"), pods.sandbox("k3"));
    let (c1, c2, c3) = (
        format!("{}k1", pods.run),
        format!("{}k2", pods.run),
        format!("{}k3", pods.run),
    );
    let ip1 = pods.add(s, &c1, &n1, net);
    let ip2 = pods.add(s, &c2, &n2, net);
    pods.add(s, &c3, &n3, net);
    s.kill_daemon();
    // Running pods keep their network while the daemon is down.
    assert!(
        pings(&n1, &ip2, 10),
        "pods lost their network with the daemon"
    );
    // A pod vanishes while the daemon is down: no DEL ever comes for it.
    pods.drop_sandbox(&n3);
    s.start_daemon();
    assert!(
        pings(&n2, &ip1, 10),
        "pods lost their network after the restart"
    );
    // GC with the runtime's list: c3 is not on it.
    let mut conf = net.conf("1.1.0", &pods.socket);
    conf["cni.dev/valid-attachments"] = json!([
        {"containerID": c1, "ifname": "eth0"},
        {"containerID": c2, "ifname": "eth0"},
    ]);
    let a = pods.call("GC", "", None, &conf);
    assert!(a.ok, "GC: {}\n{}", a.raw, s.log_tail());
    let tagged = |c: &str| {
        pods.cni_ports(s, net)
            .into_iter()
            .filter(|p| tags_of(p).contains(&format!("kuryr.cni.container:{c}")))
            .count()
    };
    // Deleted, or back in the pool and tidied.
    assert!(
        wait_until(30, || tagged(&c3) == 0),
        "GC left the vanished pod's port"
    );
    assert_eq!(tagged(&c1), 1, "GC must keep a valid attachment");
    pods.added.retain(|(c, _)| c != &c3);
    // DEL after the restart cleans up.
    pods.del(s, &c1, Some(&n1), net);
    pods.del(s, &c2, Some(&n2), net);
    pods.drop_sandbox(&n1);
    pods.drop_sandbox(&n2);
    assert!(s.daemon_running());
}

/// The runtime gives up on an ADD (its deadline) and kills the plugin: the daemon's ADD runs to
/// its end (never cut half-way), and the DEL the runtime sends next leaves nothing.
fn scenario_plugin_killed(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    // Pools off: the ADD makes its port and waits for it to be ACTIVE, a second or more.
    s.set_pools(false);
    let ns = pods.sandbox("kill");
    let c = format!("{}kill", pods.run);
    let conf = net.conf("1.1.0", &pods.socket);
    let netns = netns_path(&ns);
    let mut child = pods.spawn("ADD", &c, Some(&netns), "eth0", &conf.to_string());
    // Killed once the daemon is half-way: the port exists, the pod has no interface yet.
    let mine = format!("kuryr.cni.container:{c}");
    let started = wait_until(20, || {
        s.neutron
            .list("ports", &[("network_id", &net.net_id)])
            .iter()
            .any(|p| p["name"] == "kuryr-unbound-port" || tags_of(p).contains(&mine))
    });
    assert!(started, "the daemon never made the port\n{}", s.log_tail());
    assert!(
        in_pod(&ns, &["ip", "link", "show", "eth0"]).is_err(),
        "the ADD finished before the kill: the test proves nothing"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "kuryr-cni was not killed: {status:?}");
    // The daemon's ADD still finishes: the interface appears in the pod, with its address.
    let finished = wait_until(60, || {
        in_pod(&ns, &["ip", "-4", "addr", "show", "eth0"])
            .is_ok_and(|out| out.contains(&net.cidr.replace(".0/24", ".")))
    });
    assert!(
        finished,
        "the ADD was cut half-way when its plugin died\n{}",
        s.log_tail()
    );
    // The runtime's DEL for the ADD it gave up on: nothing is left.
    pods.seen_ports.extend(
        s.neutron
            .list("ports", &[("tags", &format!("kuryr.cni.container:{c}"))])
            .iter()
            .filter_map(|p| p["id"].as_str().map(str::to_string)),
    );
    pods.del(s, &c, Some(&ns), net);
    assert!(
        in_pod(&ns, &["ip", "link", "show", "eth0"]).is_err(),
        "eth0 left in the pod"
    );
    pods.drop_sandbox(&ns);
    pods.assert_nothing_left(s, net, "plugin killed mid-ADD");
}

/// Restarts one piece of the stack through its script (which started it).
fn restart_stack_piece(piece: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stack/stack.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["restart", piece])
        .output()
        .expect("run stack.sh");
    assert!(
        out.status.success(),
        "stack.sh restart {piece}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Neutron's database, then OVN's agent on this host, restarted while pods and a Docker
/// container run: the running ones keep (or get back) their traffic, a pod and a container
/// started after each restart get their ports and reach the others, and nothing is left after
/// the DELs and `docker rm`.
fn scenario_service_restarts(s: &mut Stack, pods: &mut Pods, net: &PodNet) {
    // Pools off: every new pod and container needs Neutron (and OVN) on its path.
    s.set_pools(false);
    let docker_net = docker_network_on(s, "restarts", net);
    let (n1, n2) = (pods.sandbox("r1"), pods.sandbox("r2"));
    let (c1, c2) = (format!("{}r1", pods.run), format!("{}r2", pods.run));
    pods.add(s, &c1, &n1, net);
    let ip2 = pods.add(s, &c2, &n2, net);
    let d1 = s.run(&docker_net, &[]);
    let dip1 = s.container_ip(&d1, &docker_net);
    assert!(pings(&n1, &ip2, 20), "pods do not reach each other");
    assert!(pings(&n1, &dip1, 20), "a pod does not reach the container");
    let mut started = Vec::new();
    let mut containers = vec![d1];
    for piece in ["mariadb", "ovn-controller"] {
        restart_stack_piece(piece);
        // ovn-controller recomputes its flows after a restart: traffic comes back within
        // seconds (the datapath itself never went away).
        assert!(
            pings(&n1, &ip2, 30),
            "running pods lost their traffic after the {piece} restart"
        );
        let tag = format!("n{}", started.len());
        let ns = pods.sandbox(&tag);
        let c = format!("{}{tag}", pods.run);
        let ip = pods.add(s, &c, &ns, net);
        assert!(
            pings(&ns, &ip2, 30),
            "a pod started after the {piece} restart does not reach the others"
        );
        assert!(pings(&n1, &ip, 30), "nor is it reached");
        assert!(
            pings(&n1, &dip1, 30),
            "the running container lost its traffic after the {piece} restart"
        );
        let d = s.run(&docker_net, &[]);
        s.exec_ok(&d, &["ping", "-c", "1", "-W", "2", &ip2]);
        started.push((c, ns));
        containers.push(d);
    }
    for d in containers {
        s.rm(&d);
    }
    for (c, ns) in started.into_iter().chain([(c1, n1), (c2, n2)]) {
        pods.del(s, &c, Some(&ns), net);
        pods.drop_sandbox(&ns);
    }
    s.network_rm(&docker_net);
    pods.assert_nothing_left(s, net, "after the restarts");
}
