//! Real-stack tests of the CNI front end driven the way the kubelet drives it: containerd's CRI
//! API (RunPodSandbox / StopPodSandbox / RemovePodSandbox) makes containerd run `kuryr-cni`
//! (chained with Debian's `portmap` and `bandwidth`), which forwards to the real `kuryr-server`,
//! against the real Neutron (ML2/OVN) and Open vSwitch.
//!
//! Needs the local stack with its containerd (`KURYR_TEST_CRI_SOCKET`, `KURYR_TEST_CNI_BIN_DIR`,
//! `KURYR_TEST_CNI_CONF_DIR` from `stack/env.sh`); skips without it, fails in CI.

#[path = "common/cri.rs"]
mod cri;
mod e2e;

use std::path::PathBuf;
use std::process::Command;

use e2e::*;
use k8s_cri::v1::{
    PodSandboxStatusRequest, PortMapping, Protocol, RemovePodSandboxRequest, RunPodSandboxRequest,
    StatusRequest, StopPodSandboxRequest,
};
use serde_json::{json, Value};

/// The pod annotation containerd turns into the bandwidth plugin's ingress rate.
const INGRESS_BANDWIDTH: &str = "kubernetes.io/ingress-bandwidth";
const HOST_PORT: i32 = 18080;

#[test]
fn kuryr_cni_through_containerd_cri() {
    let Some(env) = StackEnv::from_env() else {
        return;
    };
    let Some(cri) = CriEnv::from_env() else {
        return;
    };
    let bin = kuryr_cni_binary();
    let mut stack = Stack::start(env);
    let mut pods = Cri::new(cri, &stack, bin);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scenarios(&mut stack, &mut pods);
    }));
    pods.cleanup();
    stack.cleanup();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

struct CriEnv {
    socket: String,
    bin_dir: PathBuf,
    conf_dir: PathBuf,
}

impl CriEnv {
    fn from_env() -> Option<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(socket), Some(bin), Some(conf)) = (
            get("KURYR_TEST_CRI_SOCKET"),
            get("KURYR_TEST_CNI_BIN_DIR"),
            get("KURYR_TEST_CNI_CONF_DIR"),
        ) else {
            skip_or_fail("KURYR_TEST_CRI_SOCKET is not set (no containerd with CRI)");
            return None;
        };
        Some(CriEnv {
            socket,
            bin_dir: bin.into(),
            conf_dir: conf.into(),
        })
    }
}

/// A pod sandbox containerd runs.
struct Pod {
    id: String,
    name: String,
    ip: String,
    netns: String,
}

/// containerd's CRI, the CNI configuration this run installed, and the pods it made.
struct Cri {
    env: CriEnv,
    rt: tokio::runtime::Runtime,
    client: cri::CriClient,
    conflist: PathBuf,
    network_name: String,
    pods: Vec<String>,
    run: String,
}

impl Cri {
    fn new(env: CriEnv, s: &Stack, bin: PathBuf) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(cri::connect(env.socket.clone()));
        // The plugin binary of this build, where containerd looks for it.
        let installed = env.bin_dir.join("kuryr-cni");
        let _ = std::fs::remove_file(&installed);
        std::fs::copy(&bin, &installed).unwrap();
        Cri {
            conflist: env
                .conf_dir
                .join(format!("10-{}.conflist", s.unique("kuryr"))),
            network_name: s.unique("k8s-pods"),
            env,
            rt,
            client,
            pods: Vec::new(),
            run: s.unique("pod"),
        }
    }

    /// The node's CNI configuration: kuryr-cni on `net`, then portmap and bandwidth.
    fn install_conflist(&self, s: &Stack, net_id: &str) {
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": self.network_name,
            "plugins": [
                {"type": "kuryr-cni", "neutron_network": net_id,
                 "daemon_socket": s.cni_socket().display().to_string(),
                 "capabilities": {"io.kubernetes.cri.pod-annotations": true}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "bandwidth", "capabilities": {"bandwidth": true}},
            ],
        });
        std::fs::write(&self.conflist, serde_json::to_vec_pretty(&conf).unwrap()).unwrap();
        // containerd watches the directory; NetworkReady says it loaded a configuration.
        let ready = wait_until(30, || self.network_ready());
        assert!(ready, "containerd did not load {}", self.conflist.display());
    }

    fn network_ready(&self) -> bool {
        let mut c = self.client.clone();
        let st = self
            .rt
            .block_on(c.status(StatusRequest { verbose: false }))
            .unwrap()
            .into_inner();
        st.status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.r#type == "NetworkReady" && c.status)
        })
    }

    fn run_pod(
        &mut self,
        tag: &str,
        annotations: &[(&str, &str)],
        ports: bool,
    ) -> Result<Pod, String> {
        let name = format!("{}-{tag}", self.run);
        let ports = if ports {
            vec![PortMapping {
                protocol: Protocol::Tcp as i32,
                container_port: 80,
                host_port: HOST_PORT,
                host_ip: String::new(),
            }]
        } else {
            Vec::new()
        };
        let config = cri::sandbox_config(&name, "kuryr-test", annotations, ports);
        let mut c = self.client.clone();
        let id = self
            .rt
            .block_on(c.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }))
            .map_err(|e| e.message().to_string())?
            .into_inner()
            .pod_sandbox_id;
        self.pods.push(id.clone());
        let status = self
            .rt
            .block_on(c.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: true,
            }))
            .map_err(|e| e.message().to_string())?
            .into_inner();
        let ip = status
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        let info: Value =
            serde_json::from_str(status.info.get("info").map_or("{}", String::as_str))
                .unwrap_or(Value::Null);
        let netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .and_then(|l| l.iter().find(|n| n["type"] == "network"))
            .and_then(|n| n["path"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(!netns.is_empty(), "no network namespace in {info}");
        Ok(Pod {
            id,
            name,
            ip,
            netns,
        })
    }

    fn remove_pod(&mut self, id: &str) {
        let mut c = self.client.clone();
        self.rt
            .block_on(c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            }))
            .unwrap_or_else(|e| panic!("StopPodSandbox {id}: {}", e.message()));
        self.rt
            .block_on(c.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            }))
            .unwrap_or_else(|e| panic!("RemovePodSandbox {id}: {}", e.message()));
        self.pods.retain(|p| p != id);
    }

    fn cleanup(&mut self) {
        let mut c = self.client.clone();
        for id in std::mem::take(&mut self.pods) {
            let _ = self.rt.block_on(c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            }));
            let _ = self
                .rt
                .block_on(c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id }));
        }
        let _ = std::fs::remove_file(&self.conflist);
        let _ = &self.env;
    }
}

fn pings(from: &Pod, to: &str, tries: u32) -> bool {
    let net = format!("--net={}", from.netns);
    pings_within(&["nsenter", &net], to, tries)
}

fn host_has(cmd: &[&str], needle: &str) -> bool {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(needle))
        .unwrap_or(false)
}

fn pod_network(s: &mut Stack, tag: &str, cidr: &str) -> (String, String) {
    let name = s.unique(tag);
    let net = s
        .neutron
        .create("networks", json!({"network": {"name": name}}));
    let id = net["id"].as_str().unwrap().to_string();
    s.track_neutron("networks", &id);
    let sub = s.neutron.create(
        "subnets",
        json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": cidr,
                          "gateway_ip": cidr.replace(".0/24", ".1")}}),
    );
    (id, sub["id"].as_str().unwrap().to_string())
}

/// The port of a pod (found by the pod-name tag), once its tags are written.
fn port_of(s: &Stack, pod: &Pod) -> Value {
    let tag = format!("kuryr.k8s.pod:{}", pod.name);
    let mut found = Vec::new();
    wait_until(10, || {
        found = s.neutron.list("ports", &[("tags", &tag)]);
        found.len() == 1
    });
    assert_eq!(found.len(), 1, "ports tagged {tag}: {found:?}");
    found.remove(0)
}

fn scenarios(s: &mut Stack, cri: &mut Cri) {
    s.set_pools(true);
    let (net_a, sub_a) = pod_network(s, "cri-a", "10.94.1.0/24");
    let (net_b, sub_b) = pod_network(s, "cri-b", "10.94.2.0/24");
    cri.install_conflist(s, &net_a);

    eprintln!("--- two pods through the CRI, chained with portmap and bandwidth");
    let p1 = cri
        .run_pod("one", &[(INGRESS_BANDWIDTH, "10M")], true)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n--- kuryr log ---\n{}", s.log_tail()));
    let p2 = cri.run_pod("two", &[], false).unwrap();
    assert!(
        p1.ip.starts_with("10.94.1.") && p2.ip.starts_with("10.94.1."),
        "{} {}",
        p1.ip,
        p2.ip
    );
    let port1 = port_of(s, &p1);
    let tags = tags_of(&port1);
    for t in [
        "kuryr.k8s.namespace:kuryr-test".to_string(),
        format!("kuryr.k8s.pod_uid:uid-{}", p1.name),
        format!("kuryr.cni.container:{}", p1.id),
        format!("kuryr.cni.network:{}", cri.network_name),
    ] {
        assert!(tags.contains(&t), "{t} missing on {port1}");
    }
    assert_eq!(port1["status"], "ACTIVE");
    assert!(
        pings(&p1, &p2.ip, 20),
        "pod one cannot reach pod two\n{}",
        s.log_tail()
    );
    assert!(pings(&p2, &p1.ip, 10), "pod two cannot reach pod one");
    // The chain got a correct prevResult: portmap's DNAT for the host port, bandwidth's qdisc
    // on the host end Kuryr listed.
    let tap = tap_name(port1["id"].as_str().unwrap());
    assert!(
        host_has(
            &["iptables", "-t", "nat", "-S"],
            &format!("--dport {HOST_PORT}")
        ),
        "portmap rule for {HOST_PORT} missing"
    );
    assert!(
        host_has(&["tc", "qdisc", "show", "dev", &tap], "tbf"),
        "bandwidth qdisc on {tap} missing"
    );

    eprintln!("--- a pod on another network (annotation): isolated until a router joins them");
    let p3 = cri
        .run_pod(
            "three",
            &[("kuryr.openstack.org/neutron-network", &net_b)],
            false,
        )
        .unwrap();
    assert!(p3.ip.starts_with("10.94.2."), "{}", p3.ip);
    assert!(
        !pings(&p1, &p3.ip, 3),
        "pods on two networks must be isolated"
    );
    let rid = s.router_joining("cri-router", &[&sub_a, &sub_b]);
    assert!(pings(&p1, &p3.ip, 30), "router joined, still no route");
    s.router_leaving(&rid, &[&sub_a, &sub_b]);

    eprintln!("--- stop and remove: DEL leaves nothing");
    let ports: Vec<String> = [&p1, &p2, &p3]
        .iter()
        .map(|p| port_of(s, p)["id"].as_str().unwrap().to_string())
        .collect();
    for p in [&p1, &p2, &p3] {
        cri.remove_pod(&p.id);
    }
    assert!(
        !host_has(
            &["iptables", "-t", "nat", "-S"],
            &format!("--dport {HOST_PORT}")
        ),
        "portmap rule left"
    );
    assert_released(s, &ports, "after RemovePodSandbox");

    eprintln!("--- daemon killed: pods keep their network; DEL after the restart");
    let p4 = cri.run_pod("four", &[], false).unwrap();
    let p5 = cri.run_pod("five", &[], false).unwrap();
    let ports: Vec<String> = [&p4, &p5]
        .iter()
        .map(|p| port_of(s, p)["id"].as_str().unwrap().to_string())
        .collect();
    s.kill_daemon();
    assert!(
        pings(&p4, &p5.ip, 10),
        "pods lost their network with the daemon"
    );
    s.start_daemon();
    assert!(
        pings(&p5, &p4.ip, 10),
        "pods lost their network after the restart"
    );
    cri.remove_pod(&p4.id);
    cri.remove_pod(&p5.id);
    assert_released(s, &ports, "after the restart");

    // Pools off: the daemon deletes its free pooled ports, so nothing at all is left.
    s.set_pools(false);
    for net in [&net_a, &net_b] {
        let left: Vec<Value> = s
            .neutron
            .list("ports", &[("network_id", net)])
            .into_iter()
            .filter(|p| {
                !p["device_owner"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("network:")
            })
            .collect();
        assert!(left.is_empty(), "ports left on {net}: {left:?}");
    }
    for id in ports {
        assert!(!s.host_has_link(&tap_name(&id)), "tap of {id} left");
        assert!(!s.ovs_has_port(&tap_name(&id)), "ovs port of {id} left");
    }
}

/// Each port is deleted, or free in this host's pool with no pod's tags (the tidy may lag one
/// period).
fn assert_released(s: &Stack, ports: &[String], when: &str) {
    let released = |id: &str| match s.neutron.get("ports", id) {
        None => !s.host_has_link(&tap_name(id)) && !s.ovs_has_port(&tap_name(id)),
        Some(p) => !tags_of(&p)
            .iter()
            .any(|t| t.starts_with("kuryr.k8s.") || t.starts_with("kuryr.cni.")),
    };
    let ok = wait_until(30, || ports.iter().all(|id| released(id)));
    assert!(ok, "{when}: ports still held: {ports:?}\n{}", s.log_tail());
}
