//! Real-stack test of Kuryr on a second Neutron backend: ML2/OVS with the real
//! `neutron-openvswitch-agent` (RPC over RabbitMQ), firewall driver `iptables_hybrid`, on the
//! stack's Open vSwitch (userspace datapath). Neutron answers every binding with
//! `vif_type: ovs`, `ovs_hybrid_plug: true` and the agent's own integration bridge, so this proves
//! the generic binding layer behind a backend other than OVN: Kuryr plugs each container through
//! a per-port Linux bridge (qbr/qvb/qvo), the agent sees the port, wires it and sets it ACTIVE,
//! containers reach each other, the agent's iptables rules on the Linux bridge filter their
//! traffic as the port's security groups say, and every link, OVS port and Neutron resource is
//! gone afterwards, with and without port pools, and after a kill -9 of Kuryr.
//!
//! Needs the local stack with the ML2/OVS backend (`stack.sh up --ml2-ovs`, as `./dev.sh test`
//! runs it): KURYR_TEST_ML2OVS_NEUTRON_URL and KURYR_TEST_ML2OVS_BRIDGE besides the usual ones.

mod e2e;

use std::collections::BTreeSet;
use std::process::Command;

use e2e::*;
use serde_json::{json, Value};

#[test]
fn kuryr_behind_the_openvswitch_agent() {
    let Some(mut env) = StackEnv::from_env() else {
        return;
    };
    let Some(url) = stack_var("KURYR_TEST_ML2OVS_NEUTRON_URL") else {
        skip_or_fail("KURYR_TEST_ML2OVS_NEUTRON_URL is not set (no ML2/OVS Neutron)");
        return;
    };
    let bridge = stack_var("KURYR_TEST_ML2OVS_BRIDGE").unwrap_or_else(|| "br-ml2ovs".into());
    env.neutron_url = url;
    let mut stack = Stack::start(env);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let agents = stack
            .neutron
            .list("agents", &[("agent_type", "Open vSwitch agent")]);
        assert!(
            agents
                .iter()
                .any(|a| a["alive"] == true && a["host"] == stack.env.chassis.as_str()),
            "no live Open vSwitch agent on {}: {agents:?}",
            stack.env.chassis
        );
        for (name, f) in [
            (
                "hybrid plug, agent-made ACTIVE, ping, security groups enforced",
                scenario_hybrid as fn(&mut Stack, &str),
            ),
            ("kill -9 of Kuryr between run and rm", scenario_kill),
        ] {
            run(&mut stack, &bridge, name, f);
        }
        stack.set_pools(true);
        run(
            &mut stack,
            &bridge,
            "port pool of pre-plugged hybrid ports",
            scenario_pool,
        );
    }));
    stack.cleanup();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn run(s: &mut Stack, bridge: &str, name: &str, f: fn(&mut Stack, &str)) {
    let only = std::env::var("KURYR_TEST_ONLY").unwrap_or_default();
    if !name.contains(only.as_str()) {
        return;
    }
    eprintln!("=== scenario: {name}");
    let before = host_side(bridge);
    f(s, bridge);
    s.assert_no_kuryr_leftovers(name);
    let after = host_side(bridge);
    let left: Vec<&String> = after.difference(&before).collect();
    assert!(left.is_empty(), "{name}: left on the host: {left:?}");
    eprintln!("=== ok: {name}");
}

/// The hybrid plug's links and the agent bridge's ports: what a scenario may make on the host.
fn host_side(bridge: &str) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            ["qbr", "qvb", "qvo", "tap", "t_c"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .map(|n| format!("link:{n}"))
        .collect();
    all.extend(ovs_ports(bridge).into_iter().map(|p| format!("ovs:{p}")));
    all
}

fn ovs_ports(bridge: &str) -> Vec<String> {
    let out = Command::new("ovs-vsctl")
        .args(["list-ports", bridge])
        .output()
        .expect("ovs-vsctl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn vsctl(args: &[&str]) -> String {
    let out = Command::new("ovs-vsctl")
        .args(args)
        .output()
        .expect("ovs-vsctl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn master_of(link: &str) -> Option<String> {
    std::fs::read_link(format!("/sys/class/net/{link}/master"))
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
}

/// The port of a container's address on a Neutron network.
fn port_of(s: &Stack, nid: &str, ip: &str) -> Value {
    let ports: Vec<Value> = s
        .kuryr_ports(nid)
        .into_iter()
        .filter(|p| p["fixed_ips"][0]["ip_address"] == ip)
        .collect();
    assert_eq!(ports.len(), 1, "one port with {ip}: {ports:?}");
    ports[0].clone()
}

/// What ML2/OVS bound and what Kuryr plugged for one port: the hybrid plug, wired by the agent.
fn assert_hybrid_plug(s: &Stack, bridge: &str, port: &Value) {
    let id = port["id"].as_str().unwrap();
    assert_eq!(port["binding:vif_type"], "ovs", "{port}");
    let details = &port["binding:vif_details"];
    assert_eq!(details["ovs_hybrid_plug"], true, "{port}");
    assert_eq!(details["bridge_name"], bridge, "{port}");
    assert_eq!(port["binding:host_id"], s.env.chassis.as_str());
    // ACTIVE comes from the agent: it saw the OVS port, asked the server over RPC, wired it.
    assert!(
        wait_until(30, || s
            .neutron
            .get("ports", id)
            .is_some_and(|p| p["status"] == "ACTIVE")),
        "port {id} never became ACTIVE: {:?}",
        s.neutron.get("ports", id)
    );
    let short = &id[..11];
    let (qbr, qvb, qvo, tap) = (
        format!("qbr{short}"),
        format!("qvb{short}"),
        format!("qvo{short}"),
        tap_name(id),
    );
    assert_eq!(
        master_of(&tap).as_deref(),
        Some(qbr.as_str()),
        "{tap} in {qbr}"
    );
    assert_eq!(
        master_of(&qvb).as_deref(),
        Some(qbr.as_str()),
        "{qvb} in {qbr}"
    );
    assert!(ovs_ports(bridge).contains(&qvo), "{qvo} on {bridge}");
    let iface_id = vsctl(&["get", "Interface", &qvo, "external_ids:iface-id"]);
    assert_eq!(iface_id.trim_matches('"'), id);
    // The agent put the port in the network's local VLAN (a dead port has tag 4095).
    let tag = vsctl(&["get", "Port", &qvo, "tag"]);
    assert!(
        tag.parse::<u32>().is_ok_and(|t| t > 0 && t < 4095),
        "{qvo} tag {tag}"
    );
}

fn scenario_hybrid(s: &mut Stack, bridge: &str) {
    let net = s.network_create("ovs", &["--subnet", "10.91.31.0/24"]);
    let nid = s.neutron_net_id(&net);
    let n = s.neutron.get("networks", &nid).unwrap();
    assert_eq!(n["provider:network_type"], "vxlan", "{n}");
    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    let (ip1, ip2) = (s.container_ip(&c1, &net), s.container_ip(&c2, &net));
    for ip in [&ip1, &ip2] {
        let p = port_of(s, &nid, ip);
        assert_hybrid_plug(s, bridge, &p);
    }
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip2]);

    // A container in a group without ingress rules: the agent's iptables rules on its qbr drop
    // c1's pings; a rule added in Neutron lets them through (the agent updates the firewall).
    let deny_name = s.unique("deny");
    let deny = s.neutron.create(
        "security-groups",
        json!({"security_group": {"name": deny_name, "description": "no ingress"}}),
    );
    let deny_id = deny["id"].as_str().unwrap().to_string();
    s.track_neutron("security-groups", &deny_id);
    let c3 = s.run_on_bridge("ovs-c3");
    s.docker(&[
        "network",
        "connect",
        "--driver-opt",
        &format!("neutron.port.security_groups={deny_id}"),
        &net,
        &c3,
    ]);
    let ip3 = s.container_ip(&c3, &net);
    let p3 = port_of(s, &nid, &ip3);
    assert_eq!(p3["security_groups"], json!([deny_id.clone()]));
    assert_hybrid_plug(s, bridge, &p3);
    assert!(
        !pings_within(&["docker", "exec", &c1], &ip3, 2),
        "the group without ingress rules lets no ping into {c3}"
    );
    s.neutron.create(
        "security-group-rules",
        json!({"security_group_rule": {"security_group_id": deny_id, "direction": "ingress",
            "ethertype": "IPv4", "protocol": "icmp"}}),
    );
    assert!(
        pings_within(&["docker", "exec", &c1], &ip3, 20),
        "an ICMP rule lets c1's ping into {c3}"
    );

    s.rm(&c3);
    s.rm(&c2);
    s.rm(&c1);
    assert!(s.kuryr_ports(&nid).is_empty());
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());
}

fn scenario_kill(s: &mut Stack, bridge: &str) {
    let net = s.network_create("ovsk", &["--subnet", "10.91.32.0/24"]);
    let nid = s.neutron_net_id(&net);
    let c1 = s.run(&net, &[]);
    let ip1 = s.container_ip(&c1, &net);
    let p1 = port_of(s, &nid, &ip1);
    assert_hybrid_plug(s, bridge, &p1);
    s.kill_daemon();
    s.start_daemon();
    // The restarted daemon keeps the running container's plug, and serves the next one.
    let c2 = s.run(&net, &[]);
    let ip2 = s.container_ip(&c2, &net);
    assert_hybrid_plug(s, bridge, &port_of(s, &nid, &ip2));
    s.exec_ok(&c2, &["ping", "-c", "2", "-W", "3", &ip1]);
    s.rm(&c1);
    s.rm(&c2);
    s.network_rm(&net);
}

fn scenario_pool(s: &mut Stack, bridge: &str) {
    let net = s.network_create("ovsp", &["--subnet", "10.91.33.0/24"]);
    let nid = s.neutron_net_id(&net);
    // The first container finds the pool empty; the batch made after it is pre-plugged, and the
    // agent wires those ports and sets them ACTIVE before any container asks.
    let c0 = s.run(&net, &[]);
    assert!(
        wait_until(60, || {
            let pool = s.pool_ports(&nid);
            pool.len() >= 10 && pool.iter().all(|p| p["status"] == "ACTIVE")
        }),
        "pre-plugged pool ports never became ACTIVE: {:?}",
        s.pool_ports(&nid)
    );
    for p in s.pool_ports(&nid) {
        assert_hybrid_plug(s, bridge, &p);
    }
    // A warm start takes a pooled, already wired port.
    let c1 = s.run(&net, &[]);
    let (ip0, ip1) = (s.container_ip(&c0, &net), s.container_ip(&c1, &net));
    assert!(s
        .pool_ports(&nid)
        .iter()
        .any(|p| p["fixed_ips"][0]["ip_address"] == ip1.as_str()));
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip0]);
    s.rm(&c0);
    s.rm(&c1);
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());
}
