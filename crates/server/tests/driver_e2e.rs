//! Real-stack tests of the Kuryr driver: the real `kuryr-server` binary on
//! `/run/docker/plugins/kuryr.sock`, driven through Docker 20.10 (`/usr/bin/docker`), with the
//! Neutron state checked through Neutron's API after each step.
//!
//! Needs the local stack (`stack/stack.sh up`, then `source stack/env.sh`): KURYR_TEST_DOCKER,
//! KURYR_TEST_NEUTRON_URL, KURYR_TEST_CHASSIS, KURYR_TEST_IMAGE. Without them it prints
//! `skipped: ...` and passes (fails in CI, where the stack is always up). The plugin socket name
//! is fixed, so everything runs in ONE test, in sequence (run it in its own nextest test group:
//! `driver-real-stack`, max-threads 1).

mod e2e;

use e2e::*;

#[test]
fn kuryr_against_real_docker_and_neutron() {
    let Some(env) = StackEnv::from_env() else {
        return;
    };
    let mut stack = Stack::start(env);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_scenarios(&mut stack);
    }));
    stack.cleanup();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

type Scenario = (&'static str, fn(&mut Stack));

fn run_scenarios(s: &mut Stack) {
    let scenarios: &[Scenario] = &[
        (
            "network with subnet and gateway, containers, ping, rm",
            scenario_basic,
        ),
        (
            "network without subnet or gateway (default pool)",
            scenario_default_pool,
        ),
        (
            "ip-range with the gateway outside it, and an aux address",
            scenario_ip_range,
        ),
        ("docker's own ipam driver", scenario_docker_ipam),
        ("dual stack", scenario_dual_stack),
        ("connect / disconnect", scenario_connect_disconnect),
        (
            "docker's own options: --label, --network-alias, --link-local-ip, two subnets",
            scenario_docker_options,
        ),
        ("exposed ports", scenario_expose),
        (
            "--internal (no gateway), -p (warned), --ipam-opt neutron.net.shared",
            scenario_warned_options,
        ),
        (
            "port security groups and port security, per network and per endpoint",
            scenario_port_settings,
        ),
        (
            "existing network, subnet and port",
            scenario_existing_network_and_port,
        ),
        ("existing subnetpool", scenario_existing_pool),
        (
            "enable_dhcp = false and subnetpool_name_prefix",
            scenario_dhcp_and_pool_prefix,
        ),
        (
            "a network the Python daemon made in its no-tag mode",
            scenario_python_no_tag_network,
        ),
        ("daemon restart between run and rm", scenario_restart),
        (
            "dockerd restarted with live-restore on, then off",
            scenario_docker_restart,
        ),
        (
            "kill -9 after every plugin call of a lifecycle",
            scenario_kill_after_every_call,
        ),
        ("20 containers in parallel", scenario_parallel),
        (
            "isolation between networks, router joins them",
            scenario_router,
        ),
    ];
    let pool_scenarios: &[Scenario] = &[
        (
            "port pool: refill, warm start without neutron, --ip, --mac-address, kill -9, drain",
            scenario_pool,
        ),
        (
            "port pool: a subnet exhausted with pooled ports",
            scenario_pool_full_subnet,
        ),
        ("port pool without pre_plug", scenario_pool_without_pre_plug),
        (
            "daemon killed between RequestAddress's port and its answer",
            scenario_orphan_reservation,
        ),
    ];
    // The on-demand path first (pools off), then the defaults (pools on).
    s.set_pools(false);
    for (name, f) in scenarios {
        run_scenario(s, name, *f);
    }
    s.set_pools(true);
    for (name, f) in pool_scenarios {
        run_scenario(s, name, *f);
    }
}

fn run_scenario(s: &mut Stack, name: &str, f: fn(&mut Stack)) {
    // `KURYR_TEST_ONLY=<part of a name>` runs only the matching scenarios (development).
    let only = std::env::var("KURYR_TEST_ONLY").unwrap_or_default();
    if !name.contains(only.as_str()) {
        return;
    }
    eprintln!("=== scenario: {name}");
    let t = std::time::Instant::now();
    f(s);
    s.assert_no_kuryr_leftovers(name);
    eprintln!("=== ok ({:.1}s): {name}", t.elapsed().as_secs_f64());
}

/// Neutron requests made on Docker's path so far (all plugin calls).
fn requests_in_calls(s: &Stack) -> f64 {
    s.scrape_metrics()
        .lines()
        .filter(|l| l.starts_with("kuryr_neutron_requests_in_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Free pooled ports: no endpoint holds them, ACTIVE, plugged on this host.
/// A host link's interface index (a link made anew gets a new one).
fn ifindex(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn free_pool_ports(s: &Stack, nid: &str) -> Vec<serde_json::Value> {
    s.pool_ports(nid)
        .into_iter()
        .filter(|p| {
            p["status"] == "ACTIVE"
                && p["device_id"] == ""
                && !tags_of(p)
                    .iter()
                    .any(|t| t.starts_with("kuryr.net.uuid.lh:"))
        })
        .collect()
}

fn scenario_pool(s: &mut Stack) {
    let net = s.network_create(
        "pool",
        &["--subnet", "10.91.20.0/24", "--gateway", "10.91.20.1"],
    );
    let nid = s.neutron_net_id(&net);
    // The first container finds the pool empty; a batch is made after it, bound here, plugged
    // and ACTIVE before any container asks.
    let c0 = s.run(&net, &[]);
    assert!(
        wait_until(60, || s
            .metric("kuryr_port_pool_ports", &[r#"state="free""#])
            >= 10.0),
        "pool refilled: {:?}",
        s.pool_ports(&nid)
    );
    assert!(free_pool_ports(s, &nid).len() >= 10);
    for p in free_pool_ports(s, &nid) {
        let id = p["id"].as_str().unwrap();
        assert_eq!(p["name"], "kuryr-pool-port");
        assert_eq!(p["binding:host_id"], s.env.chassis.as_str());
        assert!(s.host_has_link(&tap_name(id)), "pre-plugged tap of {id}");
        assert!(
            s.ovs_has_port(&tap_name(id)),
            "pre-plugged ovs port of {id}"
        );
    }

    // A warm start: no Neutron request on Docker's path, and the container reaches the first.
    let before = requests_in_calls(s);
    let c1 = s.run(&net, &[]);
    assert_eq!(
        requests_in_calls(s) - before,
        0.0,
        "neutron requests while docker waited"
    );
    let ip0 = s.container_ip(&c0, &net);
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip0]);
    // Its port is the endpoint's in Neutron soon after.
    let ip1 = s.container_ip(&c1, &net);
    assert!(wait_until(10, || s.pool_ports(&nid).iter().any(|p| {
        p["fixed_ips"][0]["ip_address"] == ip1.as_str() && p["device_id"] != ""
    })));

    // --ip of a pooled address gets that very port.
    let pooled = free_pool_ports(s, &nid)[0].clone();
    let pooled_ip = pooled["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string();
    let c2 = s.run(&net, &["--ip", &pooled_ip]);
    assert_eq!(s.container_ip(&c2, &net), pooled_ip);
    assert!(wait_until(10, || s
        .neutron
        .get("ports", pooled["id"].as_str().unwrap())
        .is_some_and(|p| p["device_id"] != "")));
    s.exec_ok(&c2, &["ping", "-c", "1", "-W", "3", &ip0]);

    // --mac-address: the container has it, so does its (no longer pooled) Neutron port.
    let mac = "02:00:00:91:20:03";
    let c3 = s.run(&net, &["--mac-address", mac]);
    let got = s.exec_ok(&c3, &["cat", "/sys/class/net/eth0/address"]);
    assert_eq!(got.trim(), mac);
    let with_mac = s
        .neutron
        .list("ports", &[("network_id", &nid), ("mac_address", mac)]);
    assert_eq!(with_mac.len(), 1, "{with_mac:?}");
    assert_eq!(with_mac[0]["status"], "ACTIVE");
    s.exec_ok(&c3, &["ping", "-c", "1", "-W", "3", &ip0]);

    // A container that leaves promiscuous mode on its interface (CAP_NET_ADMIN lets it).
    let c5 = s.run(&net, &["--cap-add", "NET_ADMIN"]);
    s.exec_ok(&c5, &["ip", "link", "set", "eth0", "promisc", "on"]);
    let ip5 = s.container_ip(&c5, &net);
    let port_at = |s: &Stack, ip: &str| -> String {
        s.pool_ports(&nid)
            .into_iter()
            .find(|p| p["fixed_ips"][0]["ip_address"] == ip)
            .and_then(|p| p["id"].as_str().map(str::to_string))
            .expect("a pooled port holds the container's address")
    };
    let (tap1, tap5) = (tap_name(&port_at(s, &ip1)), tap_name(&port_at(s, &ip5)));
    let (index1, index5) = (ifindex(&tap1), ifindex(&tap5));

    // Removed containers' ports go back to the pool, the user's MAC's port goes.
    for c in [&c0, &c1, &c2, &c3, &c5] {
        s.rm(c);
    }
    assert!(
        wait_until(60, || s
            .metric("kuryr_port_pool_ports", &[r#"state="pending""#])
            == 0.0
            && free_pool_ports(s, &nid).len() == s.pool_ports(&nid).len()),
        "every pooled port free again: {:?}",
        s.pool_ports(&nid)
    );
    assert!(s
        .neutron
        .list("ports", &[("network_id", &nid), ("mac_address", mac)])
        .is_empty());
    // A clean interface came back and kept its plug (the same tap); the one with promiscuous
    // mode left on was plugged afresh (a new tap, nothing of the container on it).
    assert_eq!(ifindex(&tap1), index1, "{tap1} kept");
    assert!(
        ifindex(&tap5).is_some() && ifindex(&tap5) != index5,
        "{tap5} made anew"
    );

    // kill -9 with a full pool, then a restart: the same ports, re-adopted, nothing new.
    let ids = |s: &Stack| {
        let mut v: Vec<String> = s
            .pool_ports(&nid)
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let before = ids(s);
    s.kill_daemon();
    s.start_daemon();
    assert!(
        wait_until(30, || s
            .metric("kuryr_port_pool_ports", &[r#"state="free""#])
            == before.len() as f64),
        "pool re-adopted:\n{}",
        s.log_tail()
    );
    assert_eq!(ids(s), before, "no pooled port made or lost by the restart");
    let c4 = s.run(&net, &[]);
    let ip4 = s.container_ip(&c4, &net);
    assert!(s
        .pool_ports(&nid)
        .iter()
        .any(|p| p["fixed_ips"][0]["ip_address"] == ip4.as_str()));
    s.rm(&c4);

    // network rm drains the pool: no port, tap or OVS port left (checked after the scenario).
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());
}

/// `[vif_pool] pre_plug = false`: pooled ports are made and bound ahead of time but plugged only
/// when a container takes one.
fn scenario_pool_without_pre_plug(s: &mut Stack) {
    s.set_pre_plug(false);
    let net = s.network_create("nopre", &["--subnet", "10.91.24.0/24"]);
    let nid = s.neutron_net_id(&net);
    let c0 = s.run(&net, &[]);
    assert!(
        wait_until(60, || s.pool_ports(&nid).len() >= 10),
        "pool refilled: {:?}",
        s.pool_ports(&nid)
    );
    let ip0 = s.container_ip(&c0, &net);
    let unplugged: Vec<serde_json::Value> = s
        .pool_ports(&nid)
        .into_iter()
        .filter(|p| p["fixed_ips"][0]["ip_address"] != ip0.as_str())
        .collect();
    assert!(unplugged.len() >= 10, "{unplugged:?}");
    for p in &unplugged {
        let id = p["id"].as_str().unwrap();
        assert_eq!(p["binding:host_id"], s.env.chassis.as_str(), "{p}");
        assert!(!s.host_has_link(&tap_name(id)), "{id} was plugged");
        assert!(!s.ovs_has_port(&tap_name(id)), "{id} is on br-int");
    }
    // The next container takes one of them, plugged now, and reaches the first.
    let c1 = s.run(&net, &[]);
    let ip1 = s.container_ip(&c1, &net);
    assert!(
        unplugged
            .iter()
            .any(|p| p["fixed_ips"][0]["ip_address"] == ip1.as_str()),
        "{ip1} came from the pool"
    );
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip0]);
    s.rm(&c0);
    s.rm(&c1);
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());
    s.set_pre_plug(true);
}

fn scenario_pool_full_subnet(s: &mut Stack) {
    let net = s.network_create(
        "poolfull",
        &["--subnet", "10.91.21.0/28", "--gateway", "10.91.21.1"],
    );
    let nid = s.neutron_net_id(&net);
    // 13 addresses after the gateway, minus Neutron's own ports (OVN's metadata port).
    let neutron_own = s.neutron.list("ports", &[("network_id", &nid)]).len();
    let room = 13 - neutron_own;
    let first = s.run(&net, &[]);
    // Let the pool take what it can; every address is then held by a container or the pool.
    assert!(wait_until(60, || s
        .metric("kuryr_port_pool_ports", &[r#"state="pending""#])
        == 0.0
        && !free_pool_ports(s, &nid).is_empty()));
    let mut running = vec![first];
    for _ in 1..room {
        running.push(s.run(&net, &[]));
    }
    let mut ips: Vec<String> = running.iter().map(|c| s.container_ip(c, &net)).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), room, "every address used once");
    // One more: a clear error, and nothing left half-made.
    let name = s.unique("poolfull-extra");
    let image = s.env.image.clone();
    let err = docker_cmd(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &net,
        &image,
        "sleep",
        "60",
    ])
    .expect_err("the subnet is full");
    s.track_container(&name);
    assert!(
        err.contains("IP address") || err.contains("No more"),
        "{err}"
    );
    for c in &running {
        s.rm(c);
    }
    s.rm(&name);
    s.network_rm(&net);
}

fn scenario_basic(s: &mut Stack) {
    let net = s.network_create(
        "basic",
        &["--subnet", "10.91.1.0/24", "--gateway", "10.91.1.1"],
    );
    let docker_id = s.docker_network_id(&net);
    let n = s.neutron_network_of(&docker_id);
    assert_eq!(n["name"], format!("kuryr-net-{}", &docker_id[..8]));
    let subnets = s
        .neutron
        .list("subnets", &[("network_id", n["id"].as_str().unwrap())]);
    assert_eq!(subnets.len(), 1, "{subnets:?}");
    assert_eq!(subnets[0]["name"], "kuryr-subnet-10.91.1.0/24");
    assert_eq!(subnets[0]["gateway_ip"], "10.91.1.1");
    let pools = s
        .neutron
        .list("subnetpools", &[("name", "kuryrPool-10.91.1.0/24")]);
    assert_eq!(pools.len(), 1);
    assert_eq!(subnets[0]["subnetpool_id"], pools[0]["id"]);

    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    // Kuryr names its ports right after answering CreateEndpoint, off the container's path.
    let start = std::time::Instant::now();
    while s
        .kuryr_ports(n["id"].as_str().unwrap())
        .iter()
        .any(|p| p["device_id"] == "")
        && start.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ports = s.kuryr_ports(n["id"].as_str().unwrap());
    assert_eq!(ports.len(), 2, "{ports:?}");
    for p in &ports {
        assert_eq!(p["device_owner"], "compute:kuryr");
        assert_eq!(p["binding:host_id"], s.env.chassis.as_str());
        assert_eq!(p["status"], "ACTIVE", "port {}", p["id"]);
        let ep = p["device_id"].as_str().unwrap();
        assert_eq!(p["name"], format!("{ep}-port"));
        let tags = tags_of(p);
        assert!(
            tags.contains(&format!("kuryr.net.uuid.lh:{}", &ep[..32])),
            "{tags:?}"
        );
        assert!(
            tags.contains(&format!("kuryr.net.uuid.uh:{}", &ep[32..])),
            "{tags:?}"
        );
        assert!(s.host_has_link(&tap_name(p["id"].as_str().unwrap())));
    }
    let ip2 = s.container_ip(&c2, &net);
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip2]);
    // The metrics endpoint saw both starts, the Neutron requests they made and the endpoints.
    let m = s.scrape_metrics();
    let created = metric_value(
        &m,
        "kuryr_plugin_call_duration_seconds_count",
        &[r#"call="NetworkDriver.CreateEndpoint""#, r#"outcome="ok""#],
    );
    assert!(created >= Some(2.0), "{m}");
    let port_posts = metric_value(
        &m,
        "kuryr_neutron_request_duration_seconds_count",
        &[r#"method="POST""#, r#"resource="ports""#],
    );
    assert!(port_posts >= Some(2.0), "{m}");
    assert!(metric_value(&m, "kuryr_endpoints", &[]) >= Some(2.0), "{m}");
    // The container's MTU is the Neutron network's.
    let mtu = n["mtu"].as_u64().unwrap();
    let out = s.exec_ok(&c1, &["cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(out.trim(), mtu.to_string());

    let port_ids: Vec<String> = ports
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    s.rm(&c1);
    s.rm(&c2);
    assert!(s.kuryr_ports(n["id"].as_str().unwrap()).is_empty());
    for id in &port_ids {
        assert!(!s.host_has_link(&tap_name(id)), "tap of {id} left");
        assert!(!s.ovs_has_port(&tap_name(id)), "ovs port of {id} left");
    }
    s.network_rm(&net);
    assert!(s
        .neutron
        .get("networks", n["id"].as_str().unwrap())
        .is_none());
    assert!(s
        .neutron
        .list("subnetpools", &[("name", "kuryrPool-10.91.1.0/24")])
        .is_empty());
}

fn scenario_docker_ipam(s: &mut Stack) {
    // Docker's IPAM chooses the addresses; no ReleaseAddress reaches Kuryr, yet nothing is left.
    // Neutron's metadata port takes the subnet's first free address: keep Docker's IPAM off it.
    let net = s.network_create_with_ipam(
        "dipam",
        "default",
        &["--subnet", "10.91.9.0/24", "--ip-range", "10.91.9.128/25"],
    );
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let nid = n["id"].as_str().unwrap().to_string();
    // Neutron picks addresses for its own ports at random: the subnet keeps them at its top,
    // away from the addresses Docker's IPAM hands out lowest first.
    let subnets = s.neutron.list("subnets", &[("network_id", &nid)]);
    assert_eq!(
        subnets[0]["allocation_pools"],
        serde_json::json!([{"start": "10.91.9.251", "end": "10.91.9.254"}]),
        "{subnets:?}"
    );
    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    let ports = s.kuryr_ports(&nid);
    assert_eq!(ports.len(), 2, "{ports:?}");
    let ip2 = s.container_ip(&c2, &net);
    assert!(ip2.starts_with("10.91.9."), "docker's address: {ip2}");
    assert!(
        ports
            .iter()
            .any(|p| p["fixed_ips"][0]["ip_address"] == ip2.as_str()),
        "the port holds docker's address: {ports:?}"
    );
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip2]);
    s.rm(&c1);
    s.rm(&c2);
    assert!(
        s.kuryr_ports(&nid).is_empty(),
        "ports deleted with their endpoints"
    );
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());
}

fn scenario_default_pool(s: &mut Stack) {
    let net = s.network_create("dflt", &[]);
    let docker_id = s.docker_network_id(&net);
    let n = s.neutron_network_of(&docker_id);
    let subnets = s
        .neutron
        .list("subnets", &[("network_id", n["id"].as_str().unwrap())]);
    assert_eq!(subnets.len(), 1);
    let pool = s.default_pool_v4.clone();
    assert_eq!(
        subnets[0]["subnetpool_id"],
        pool.as_str(),
        "subnet comes from the default pool"
    );
    let cidr = subnets[0]["cidr"].as_str().unwrap().to_string();
    assert!(
        cidr.starts_with("10.90.") && cidr.ends_with("/24"),
        "a /24 of the pool, got {cidr}"
    );
    assert!(subnets[0]["gateway_ip"].is_string());
    // Docker sees the same subnet.
    let docker_subnet = s.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        &net,
    ]);
    assert_eq!(docker_subnet.trim(), cidr);
    // A second network gets a different range.
    let net2 = s.network_create("dflt2", &[]);
    let n2 = s.neutron_network_of(&s.docker_network_id(&net2));
    let subnets2 = s
        .neutron
        .list("subnets", &[("network_id", n2["id"].as_str().unwrap())]);
    assert_ne!(subnets2[0]["cidr"], subnets[0]["cidr"]);
    let c = s.run(&net, &[]);
    assert_eq!(s.kuryr_ports(n["id"].as_str().unwrap()).len(), 1);
    s.rm(&c);
    s.network_rm(&net);
    s.network_rm(&net2);
    assert!(s
        .neutron
        .get("networks", n["id"].as_str().unwrap())
        .is_none());
    assert!(
        s.neutron.get("subnetpools", &pool).is_some(),
        "the default pool is never deleted"
    );
}

fn scenario_ip_range(s: &mut Stack) {
    // Docker's IPAM semantics: the subnet is --subnet, containers' addresses come from
    // --ip-range, the gateway may be outside the range, and --aux-address is kept out of
    // Neutron's hands from the start (its metadata port picks its address at random).
    let net = s.network_create(
        "range",
        &[
            "--subnet",
            "10.91.3.0/24",
            "--ip-range",
            "10.91.3.128/25",
            "--gateway",
            "10.91.3.1",
            "--aux-address",
            "reserved=10.91.3.130",
        ],
    );
    let pools = s
        .neutron
        .list("subnetpools", &[("name", "kuryrPool-10.91.3.0/24")]);
    assert_eq!(pools.len(), 1, "the pool is the subnet's");
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let nid = n["id"].as_str().unwrap().to_string();
    let subnets = s.neutron.list("subnets", &[("network_id", &nid)]);
    assert_eq!(subnets[0]["cidr"], "10.91.3.0/24");
    assert_eq!(subnets[0]["gateway_ip"], "10.91.3.1");
    // Neutron lists the pools in no particular order.
    let mut ranges: Vec<_> = subnets[0]["allocation_pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ip = |k: &str| {
                p[k].as_str()
                    .unwrap()
                    .parse::<std::net::Ipv4Addr>()
                    .unwrap()
            };
            (ip("start"), ip("end"))
        })
        .collect();
    ranges.sort();
    let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap();
    assert_eq!(
        ranges,
        [
            (ip("10.91.3.128"), ip("10.91.3.129")),
            (ip("10.91.3.131"), ip("10.91.3.254"))
        ],
        "{subnets:?}"
    );
    let c = s.run(&net, &[]);
    let ip: std::net::Ipv4Addr = s.container_ip(&c, &net).parse().unwrap();
    assert!(
        ip.octets()[3] >= 128 && ip.octets()[3] != 130,
        "{ip} in the range"
    );
    let mask = s.exec_ok(&c, &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        mask.contains(&format!("{ip}/24")),
        "the subnet's netmask: {mask}"
    );
    s.rm(&c);
    s.network_rm(&net);
    assert!(s
        .neutron
        .list("subnetpools", &[("name", "kuryrPool-10.91.3.0/24")])
        .is_empty());
}

fn scenario_dual_stack(s: &mut Stack) {
    let net = s.network_create(
        "dual",
        &[
            "--ipv6",
            "--subnet",
            "10.91.4.0/24",
            "--gateway",
            "10.91.4.1",
            "--subnet",
            "fd91:4::/64",
            "--gateway",
            "fd91:4::1",
        ],
    );
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let nid = n["id"].as_str().unwrap().to_string();
    let subnets = s.neutron.list("subnets", &[("network_id", &nid)]);
    let mut names: Vec<String> = subnets
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["kuryr-subnet-10.91.4.0/24", "kuryr-subnet-fd91:4::/64"]
    );
    let c = s.run(&net, &[]);
    let ports = s.kuryr_ports(&nid);
    assert_eq!(ports.len(), 1, "one port for both families: {ports:?}");
    assert_eq!(ports[0]["fixed_ips"].as_array().unwrap().len(), 2);
    assert_eq!(ports[0]["status"], "ACTIVE");
    let out = s.exec_ok(&c, &["ip", "-6", "addr", "show", "eth0"]);
    assert!(out.contains("fd91:4::"), "{out}");
    // `--ip6`: that address, reached over IPv6.
    let c6 = s.run(&net, &["--ip6", "fd91:4::20"]);
    let out = s.exec_ok(&c6, &["ip", "-6", "addr", "show", "eth0"]);
    assert!(out.contains("fd91:4::20/64"), "{out}");
    s.exec_ok(&c, &["ping", "-6", "-c", "1", "-W", "3", "fd91:4::20"]);
    s.rm(&c6);
    s.rm(&c);
    assert!(s.kuryr_ports(&nid).is_empty());
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());

    // No subnets given: one from each default pool (`kuryr`, `kuryr6`); and a shared network.
    let dflt = s.network_create("dual-dflt", &["--ipv6", "-o", "neutron.net.shared=true"]);
    let dn = s.neutron_network_of(&s.docker_network_id(&dflt));
    assert_eq!(dn["shared"], true, "{dn}");
    let mut pools: Vec<String> = s
        .neutron
        .list("subnets", &[("network_id", dn["id"].as_str().unwrap())])
        .iter()
        .map(|x| x["subnetpool_id"].as_str().unwrap_or("").to_string())
        .collect();
    pools.sort();
    let mut want = vec![s.default_pool_v4.clone(), s.default_pool_v6.clone()];
    want.sort();
    assert_eq!(pools, want);
    let d = s.run(&dflt, &[]);
    let out = s.exec_ok(&d, &["ip", "-6", "addr", "show", "eth0"]);
    assert!(
        out.contains("fd90:"),
        "an address of kuryr6 (fd90::/48): {out}"
    );
    s.rm(&d);
    s.network_rm(&dflt);
}

fn scenario_connect_disconnect(s: &mut Stack) {
    let a = s.network_create(
        "cda",
        &["--subnet", "10.91.7.0/24", "--gateway", "10.91.7.1"],
    );
    let b = s.network_create("cdb", &["--subnet", "10.91.8.0/24"]);
    let nb = s.neutron_network_of(&s.docker_network_id(&b));
    let nbid = nb["id"].as_str().unwrap().to_string();
    let c = s.run(&a, &[]);
    assert!(s.kuryr_ports(&nbid).is_empty());
    s.docker(&["network", "connect", &b, &c]);
    let ports = s.kuryr_ports(&nbid);
    assert_eq!(ports.len(), 1);
    let pid = ports[0]["id"].as_str().unwrap().to_string();
    let out = s.exec_ok(&c, &["ip", "addr", "show", "eth1"]);
    assert!(out.contains("10.91.8."), "{out}");
    s.docker(&["network", "disconnect", &b, &c]);
    assert!(s.kuryr_ports(&nbid).is_empty());
    assert!(!s.host_has_link(&tap_name(&pid)));
    s.rm(&c);
    s.network_rm(&a);
    s.network_rm(&b);
}

/// Docker's options that Docker keeps to itself on a Kuryr network, and two IPv4 subnets on one:
/// `--label` is Docker's (never sent to the driver); `--network-alias` is answered by Docker's
/// embedded DNS; `--link-local-ip` is added by Docker to the container's interface; two
/// `--subnet`s make two Neutron subnets on the network, containers get addresses from the first.
fn scenario_docker_options(s: &mut Stack) {
    let net = s.network_create(
        "opts",
        &[
            "--subnet",
            "10.91.13.0/24",
            "--subnet",
            "10.91.14.0/24",
            "--label",
            "team=blue",
        ],
    );
    let label = s.docker(&[
        "network",
        "inspect",
        "-f",
        "{{index .Labels \"team\"}}",
        &net,
    ]);
    assert_eq!(label.trim(), "blue");
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let nid = n["id"].as_str().unwrap().to_string();
    let cidrs: std::collections::BTreeSet<String> = s
        .neutron
        .list("subnets", &[("network_id", &nid)])
        .iter()
        .map(|x| x["cidr"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cidrs,
        ["10.91.13.0/24", "10.91.14.0/24"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let a = s.run(
        &net,
        &["--network-alias", "web", "--link-local-ip", "169.254.7.7"],
    );
    let b = s.run(&net, &[]);
    let ip_a = s.container_ip(&a, &net);
    // Docker's CLI hands the subnets over in no fixed order (it merges them through a map), and
    // Docker takes a container's address from the first: either subnet, and the port's.
    assert!(
        ip_a.starts_with("10.91.13.") || ip_a.starts_with("10.91.14."),
        "{ip_a}"
    );
    let port_a: Vec<serde_json::Value> = s
        .kuryr_ports(&nid)
        .into_iter()
        .filter(|p| p["fixed_ips"][0]["ip_address"] == ip_a.as_str())
        .collect();
    assert_eq!(port_a.len(), 1, "{ip_a}: {port_a:?}");
    let addrs = s.exec_ok(&a, &["ip", "addr", "show", "eth0"]);
    assert!(addrs.contains("169.254.7.7"), "{addrs}");
    let looked_up = s.exec_ok(&b, &["nslookup", "web"]);
    assert!(looked_up.contains(&ip_a), "{looked_up}");
    assert!(
        pings_within(&["docker", "exec", &b], "web", 10),
        "the alias reaches its container through OVN"
    );
    s.rm(&a);
    s.rm(&b);
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());
}

/// `-o neutron.port.security_groups` (a group without ingress rules) blocks traffic into the
/// network's containers; `--driver-opt neutron.port.port_security=false` on `network connect`
/// lets it through for one endpoint; `-o neutron.port.port_security=false` for a network.
fn scenario_port_settings(s: &mut Stack) {
    let deny_name = s.unique("deny");
    let deny = s.neutron.create(
        "security-groups",
        serde_json::json!({"security_group": {"name": deny_name, "description": "no ingress"}}),
    );
    let deny_id = deny["id"].as_str().unwrap().to_string();
    s.track_neutron("security-groups", &deny_id);
    let net = s.network_create(
        "psg",
        &[
            "--subnet",
            "10.91.12.0/24",
            "-o",
            &format!("neutron.port.security_groups={deny_name}"),
        ],
    );
    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let nid = n["id"].as_str().unwrap().to_string();
    for p in s.kuryr_ports(&nid) {
        assert_eq!(
            p["security_groups"],
            serde_json::json!([deny_id.clone()]),
            "{p}"
        );
    }
    let ip2 = s.container_ip(&c2, &net);
    assert!(
        !pings_within(&["docker", "exec", &c1], &ip2, 2),
        "the group without ingress rules lets no ping into {c2}"
    );
    // One endpoint without port security, by its own option.
    let c3 = s.run_on_bridge("psg-c3");
    s.docker(&[
        "network",
        "connect",
        "--driver-opt",
        "neutron.port.port_security=false",
        &net,
        &c3,
    ]);
    let ip3 = s.container_ip(&c3, &net);
    s.exec_ok(&c1, &["ping", "-c", "1", "-W", "2", &ip3]);
    let p3: Vec<serde_json::Value> = s
        .kuryr_ports(&nid)
        .into_iter()
        .filter(|p| p["fixed_ips"][0]["ip_address"] == ip3.as_str())
        .collect();
    assert_eq!(p3.len(), 1);
    assert_eq!(p3[0]["port_security_enabled"], false, "{}", p3[0]);
    assert_eq!(p3[0]["security_groups"], serde_json::json!([]));
    s.rm(&c3);
    s.rm(&c2);
    s.rm(&c1);
    s.network_rm(&net);

    // No port security for a whole network: traffic flows, -p/--expose asks for nothing. And
    // Docker's own MTU option, below Neutron's: the containers' interfaces get it.
    let open = s.network_create(
        "nops",
        &[
            "--subnet",
            "10.91.13.0/24",
            "-o",
            "neutron.port.port_security=false",
            "-o",
            "com.docker.network.driver.mtu=1400",
        ],
    );
    let d1 = s.run(&open, &[]);
    assert_eq!(
        s.exec_ok(&d1, &["cat", "/sys/class/net/eth0/mtu"]).trim(),
        "1400"
    );
    let d2 = s.run(&open, &["--expose", "80"]);
    let ip = s.container_ip(&d2, &open);
    s.exec_ok(&d1, &["ping", "-c", "1", "-W", "2", &ip]);
    let on = s.neutron_network_of(&s.docker_network_id(&open));
    for p in s.kuryr_ports(on["id"].as_str().unwrap()) {
        assert_eq!(p["port_security_enabled"], false, "{p}");
    }
    s.rm(&d2);
    s.rm(&d1);
    s.network_rm(&open);

    // Refused, leaving nothing: an MTU above Neutron's, an unknown neutron.* key.
    let plugin = plugin_name();
    for (opt, says) in [
        (
            "com.docker.network.driver.mtu=9000",
            "larger than neutron network",
        ),
        ("neutron.net.uid=x", "unknown network option"),
    ] {
        let name = s.unique("refused");
        let err = docker_cmd(&network_create_args(
            &plugin,
            "10.91.14.0/24",
            &["-o", opt],
            &name,
        ))
        .expect_err(opt);
        assert!(err.contains(says), "{opt}: {err}");
    }

    // A QoS policy as the network's default (by name); a DNS name for one endpoint.
    let qname = s.unique("gold");
    let q = s.neutron.create(
        "qos/policies",
        serde_json::json!({"policy": {"name": qname}}),
    );
    let qid = q["id"].as_str().unwrap().to_string();
    s.track_neutron("qos/policies", &qid);
    let qnet = s.network_create(
        "qos",
        &[
            "--subnet",
            "10.91.15.0/24",
            "-o",
            &format!("neutron.port.qos_policy={qname}"),
        ],
    );
    let q1 = s.run(&qnet, &[]);
    let q2 = s.run_on_bridge("qos-c2");
    s.docker(&[
        "network",
        "connect",
        "--driver-opt",
        "neutron.port.dns_name=web-1",
        &qnet,
        &q2,
    ]);
    let qn = s.neutron_network_of(&s.docker_network_id(&qnet));
    let ports = s.kuryr_ports(qn["id"].as_str().unwrap());
    assert_eq!(ports.len(), 2);
    for p in &ports {
        assert_eq!(p["qos_policy_id"], qid.as_str(), "{p}");
    }
    let named: Vec<&serde_json::Value> =
        ports.iter().filter(|p| p["dns_name"] == "web-1").collect();
    assert_eq!(named.len(), 1, "{ports:?}");
    assert_eq!(
        named[0]["dns_assignment"][0]["hostname"], "web-1",
        "{}",
        named[0]
    );
    s.rm(&q2);
    s.rm(&q1);
    s.network_rm(&qnet);
}

/// `--internal` (no gateway), `-p` (warned: nothing is published) and a shared subnetpool by
/// `--ipam-opt`.
fn scenario_warned_options(s: &mut Stack) {
    let net = s.network_create(
        "intl",
        &[
            "--internal",
            "--subnet",
            "10.91.16.0/24",
            "--ipam-opt",
            "neutron.net.shared=true",
        ],
    );
    assert!(s.log_has("--internal: no default route through this network"));
    let pools = s
        .neutron
        .list("subnetpools", &[("name", "kuryrPool-10.91.16.0/24")]);
    assert_eq!(pools.len(), 1, "{pools:?}");
    assert_eq!(pools[0]["shared"], true, "{}", pools[0]);
    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    // Join answers no gateway: no default route through an internal network, as with Docker's
    // bridge driver; the containers still reach each other.
    let routes = s.exec_ok(&c1, &["ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let ip2 = s.container_ip(&c2, &net);
    s.exec_ok(&c1, &["ping", "-c", "1", "-W", "3", &ip2]);
    // -p on a network with external connectivity (Docker programs none on an internal one):
    // warned, and nothing listens on the host port (no docker-proxy, no forwarding).
    let pnet = s.network_create("publ", &["--subnet", "10.91.17.0/24"]);
    let published = s.run(&pnet, &["-p", "18089:80"]);
    assert!(s.log_has("-p/--publish: no host port is forwarded"));
    let listening = std::process::Command::new("ss")
        .args(["-Hltn", "sport = :18089"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listening.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&listening.stdout)
    );
    s.rm(&published);
    s.network_rm(&pnet);
    s.rm(&c1);
    s.rm(&c2);
    s.network_rm(&net);
    assert!(s
        .neutron
        .list("subnetpools", &[("name", "kuryrPool-10.91.16.0/24")])
        .is_empty());
}

fn scenario_expose(s: &mut Stack) {
    let net = s.network_create(
        "exp",
        &["--subnet", "10.91.9.0/24", "--gateway", "10.91.9.1"],
    );
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let c = s.run(
        &net,
        &["--expose", "80", "--expose", "81", "--expose", "53/udp"],
    );
    let ports = s.kuryr_ports(n["id"].as_str().unwrap());
    let pid = ports[0]["id"].as_str().unwrap().to_string();
    let sgs = s.neutron.list(
        "security-groups",
        &[("name", &format!("{pid}-exposed_ports"))],
    );
    assert_eq!(sgs.len(), 1);
    let sg_id = sgs[0]["id"].as_str().unwrap().to_string();
    let rules = s
        .neutron
        .list("security-group-rules", &[("security_group_id", &sg_id)]);
    let ingress: Vec<_> = rules
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .collect();
    let has = |eth: &str, proto: &str, lo: u64, hi: u64| {
        ingress.iter().any(|r| {
            r["ethertype"] == eth
                && r["protocol"] == proto
                && r["port_range_min"] == lo
                && r["port_range_max"] == hi
        })
    };
    assert!(has("IPv4", "tcp", 80, 81), "{ingress:?}");
    assert!(has("IPv6", "tcp", 80, 81), "{ingress:?}");
    assert!(has("IPv4", "udp", 53, 53), "{ingress:?}");
    let port = s.neutron.get("ports", &pid).unwrap();
    assert!(port["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == sg_id.as_str()));
    s.rm(&c);
    assert!(s.neutron.get("security-groups", &sg_id).is_none());
    s.network_rm(&net);
}

fn scenario_existing_network_and_port(s: &mut Stack) {
    let name = s.unique("exnet");
    let nid = s
        .neutron
        .create("networks", serde_json::json!({"network": {"name": name}}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.track_neutron("networks", &nid);
    let sub = s.neutron.create(
        "subnets",
        serde_json::json!({"subnet": {"name": format!("{name}-sub"), "network_id": nid, "ip_version": 4, "cidr": "10.91.5.0/24", "gateway_ip": "10.91.5.1"}}),
    );
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let user_port = s.neutron.create(
        "ports",
        serde_json::json!({"port": {"name": format!("{name}-port"), "network_id": nid, "fixed_ips": [{"subnet_id": sub_id, "ip_address": "10.91.5.20"}]}}),
    );
    let upid = user_port["id"].as_str().unwrap().to_string();
    s.track_neutron("ports", &upid);

    let net = s.network_create(
        "exist",
        &[
            "-o",
            &format!("neutron.net.name={name}"),
            "--subnet",
            "10.91.5.0/24",
            "--gateway",
            "10.91.5.1",
        ],
    );
    let docker_id = s.docker_network_id(&net);
    let n = s.neutron.get("networks", &nid).unwrap();
    let tags = tags_of(&n);
    assert!(
        tags.contains(&format!("kuryr.net.existing:{}", &docker_id[..12])),
        "{tags:?}"
    );
    assert!(
        tags.contains(&format!("kuryr.net.uuid.lh:{}", &docker_id[..32])),
        "{tags:?}"
    );
    // The user's subnet is used, not a new one.
    assert_eq!(s.neutron.list("subnets", &[("network_id", &nid)]).len(), 1);

    // A port another host serves is never taken over: `--ip` of its address is refused and the
    // port stays as it was.
    let foreign = s.neutron.create(
        "ports",
        serde_json::json!({"port": {"name": format!("{name}-elsewhere"), "network_id": nid, "binding:host_id": "elsewhere-host", "fixed_ips": [{"subnet_id": sub_id, "ip_address": "10.91.5.21"}]}}),
    );
    let fid = foreign["id"].as_str().unwrap().to_string();
    s.track_neutron("ports", &fid);
    let refused = e2e::docker_cmd(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--ip",
        "10.91.5.21",
        &s.env.image.clone(),
        "true",
    ])
    .expect_err("an address of another host's port");
    assert!(refused.contains("elsewhere-host"), "{refused}");
    let f = s.neutron.get("ports", &fid).unwrap();
    assert_eq!(f["binding:host_id"], "elsewhere-host");
    assert!(tags_of(&f).is_empty(), "{f}");
    s.neutron.delete("ports", &fid);

    // A container with the user port's address adopts that port.
    let c = s.run(&net, &["--ip", "10.91.5.20"]);
    let p = s.neutron.get("ports", &upid).unwrap();
    assert!(
        tags_of(&p).contains(&"kuryr.port.existing".to_string()),
        "{p}"
    );
    assert_eq!(p["binding:host_id"], s.env.chassis.as_str());
    assert_eq!(p["status"], "ACTIVE");
    // And an ordinary container gets a port of its own.
    let c2 = s.run(&net, &[]);
    assert_eq!(s.kuryr_ports(&nid).len(), 2);
    s.rm(&c);
    s.rm(&c2);
    let p = s.neutron.get("ports", &upid).expect("adopted port is kept");
    assert!(tags_of(&p).is_empty(), "untagged: {p}");
    assert_eq!(p["binding:host_id"], "");
    assert_eq!(p["device_owner"], "");
    assert_eq!(s.kuryr_ports(&nid).len(), 0);
    s.network_rm(&net);
    let n = s
        .neutron
        .get("networks", &nid)
        .expect("adopted network is kept");
    assert!(tags_of(&n).is_empty(), "untagged: {n}");
    assert!(
        s.neutron.get("subnets", &sub_id).is_some(),
        "user subnet is kept"
    );

    // The same by ids: `neutron.net.uuid` and `neutron.subnet.uuid` (in -o and --ipam-opt, as
    // the original's documentation gives them), with the user's IPv6 subnet by
    // `neutron.subnet.v6.uuid`.
    let sub6 = s.neutron.create(
        "subnets",
        serde_json::json!({"subnet": {"name": format!("{name}-sub6"), "network_id": nid, "ip_version": 6, "cidr": "fd91:5::/64", "gateway_ip": "fd91:5::1"}}),
    );
    let sub6_id = sub6["id"].as_str().unwrap().to_string();
    let by_id = s.network_create(
        "exist-id",
        &[
            "--ipv6",
            "-o",
            &format!("neutron.net.uuid={nid}"),
            "-o",
            &format!("neutron.subnet.uuid={sub_id}"),
            "--ipam-opt",
            &format!("neutron.subnet.uuid={sub_id}"),
            "-o",
            &format!("neutron.subnet.v6.uuid={sub6_id}"),
            "--ipam-opt",
            &format!("neutron.subnet.v6.uuid={sub6_id}"),
            "--subnet",
            "10.91.5.0/24",
            "--gateway",
            "10.91.5.1",
            "--subnet",
            "fd91:5::/64",
            "--gateway",
            "fd91:5::1",
        ],
    );
    // The user's two subnets are used, none is made.
    assert_eq!(s.neutron.list("subnets", &[("network_id", &nid)]).len(), 2);
    let c = s.run(&by_id, &[]);
    let ports = s.kuryr_ports(&nid);
    assert_eq!(ports.len(), 1);
    let on: Vec<&str> = ports[0]["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["subnet_id"].as_str().unwrap())
        .collect();
    assert!(
        on.contains(&sub_id.as_str()) && on.contains(&sub6_id.as_str()),
        "{on:?}"
    );
    // An adopted port keeps its owner's security settings: an endpoint's own are refused.
    let x = s.run_on_bridge("exist-x");
    let refused = docker_cmd(&[
        "network",
        "connect",
        "--ip",
        "10.91.5.20",
        "--driver-opt",
        "neutron.port.port_security=false",
        &by_id,
        &x,
    ])
    .expect_err("settings on an adopted port");
    assert!(refused.contains("is an existing port"), "{refused}");
    let p = s.neutron.get("ports", &upid).unwrap();
    assert!(tags_of(&p).is_empty(), "left as it was: {p}");
    assert_eq!(p["port_security_enabled"], true);
    s.rm(&x);
    s.rm(&c);
    s.network_rm(&by_id);
    let n = s.neutron.get("networks", &nid).expect("kept");
    assert!(tags_of(&n).is_empty(), "untagged: {n}");
    assert!(s.neutron.get("subnets", &sub_id).is_some());
    assert!(s.neutron.get("subnets", &sub6_id).is_some());
}

/// What the Python kuryr-libnetwork left in its no-tag mode (Neutron had no tag extension): a
/// network named by the full Docker network id, without tags. After the swap the first container
/// finds it by name; it is adopted with Kuryr's tags, and `docker network rm` keeps it.
fn scenario_python_no_tag_network(s: &mut Stack) {
    let net = s.network_create("notag", &["--subnet", "10.91.18.0/24"]);
    let docker_id = s.docker_network_id(&net);
    let nid = s.neutron_net_id(&net);
    s.neutron.put_action(
        &format!("networks/{nid}/tags"),
        serde_json::json!({"tags": []}),
    );
    s.neutron.put_action(
        &format!("networks/{nid}"),
        serde_json::json!({"network": {"name": docker_id}}),
    );
    // From here the network is the test's to delete.
    s.track_neutron("networks", &nid);
    s.restart_daemon();
    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    let ip2 = s.container_ip(&c2, &net);
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip2]);
    let n = s.neutron.get("networks", &nid).unwrap();
    let tags = tags_of(&n);
    assert!(
        tags.contains(&format!("kuryr.net.existing:{}", &docker_id[..12])),
        "{tags:?}"
    );
    assert!(s.log_has("the Python kuryr's no-tag mode"));
    s.rm(&c1);
    s.rm(&c2);
    s.network_rm(&net);
    let kept = s
        .neutron
        .get("networks", &nid)
        .expect("the network is kept");
    assert!(
        !tags_of(&kept).iter().any(|t| t.starts_with("kuryr.")),
        "{kept}"
    );
    s.neutron.delete("networks", &nid);
}

/// `[neutron] enable_dhcp = false` and `[DEFAULT] subnetpool_name_prefix`: the subnets Kuryr
/// makes have no DHCP and its pools carry the prefix; containers work as ever.
fn scenario_dhcp_and_pool_prefix(s: &mut Stack) {
    s.set_extra_config("subnetpool_name_prefix = kprefix", "enable_dhcp = false");
    let net = s.network_create("dhcp", &["--subnet", "10.91.19.0/24"]);
    let nid = s.neutron_net_id(&net);
    let subnets = s.neutron.list("subnets", &[("network_id", &nid)]);
    assert_eq!(subnets.len(), 1, "{subnets:?}");
    assert_eq!(subnets[0]["enable_dhcp"], false, "{}", subnets[0]);
    let pools = s
        .neutron
        .list("subnetpools", &[("name", "kprefix-10.91.19.0/24")]);
    assert_eq!(pools.len(), 1, "{pools:?}");
    assert_eq!(subnets[0]["subnetpool_id"], pools[0]["id"]);
    let c1 = s.run(&net, &[]);
    let c2 = s.run(&net, &[]);
    let ip2 = s.container_ip(&c2, &net);
    s.exec_ok(&c1, &["ping", "-c", "2", "-W", "3", &ip2]);
    s.rm(&c1);
    s.rm(&c2);
    s.network_rm(&net);
    assert!(s
        .neutron
        .list("subnetpools", &[("name", "kprefix-10.91.19.0/24")])
        .is_empty());
    s.set_extra_config("", "");
}

fn scenario_existing_pool(s: &mut Stack) {
    let name = s.unique("expool");
    let pool = s.neutron.create(
        "subnetpools",
        serde_json::json!({"subnetpool": {"name": name, "prefixes": ["10.91.6.0/24"], "default_prefixlen": 24}}),
    );
    let pool_id = pool["id"].as_str().unwrap().to_string();
    s.track_neutron("subnetpools", &pool_id);
    let net = s.network_create(
        "expool",
        &[
            "--ipam-opt",
            &format!("neutron.pool.name={name}"),
            "-o",
            &format!("neutron.pool.name={name}"),
            "--subnet",
            "10.91.6.0/24",
            "--gateway",
            "10.91.6.1",
        ],
    );
    let p = s.neutron.get("subnetpools", &pool_id).unwrap();
    assert!(
        tags_of(&p).contains(&"kuryr.subnetpool.existing".to_string()),
        "{p}"
    );
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let subnets = s
        .neutron
        .list("subnets", &[("network_id", n["id"].as_str().unwrap())]);
    assert_eq!(subnets[0]["subnetpool_id"], pool_id.as_str());
    let c = s.run(&net, &[]);
    s.rm(&c);
    s.network_rm(&net);
    let p = s
        .neutron
        .get("subnetpools", &pool_id)
        .expect("adopted pool is kept");
    assert!(tags_of(&p).is_empty(), "{p}");

    // By ids, with the IPv6 side from an existing pool too (`neutron.pool.v6.uuid`).
    let pool6 = s.neutron.create(
        "subnetpools",
        serde_json::json!({"subnetpool": {"name": s.unique("expool6"), "prefixes": ["fd91:6::/64"], "default_prefixlen": 64}}),
    );
    let pool6_id = pool6["id"].as_str().unwrap().to_string();
    s.track_neutron("subnetpools", &pool6_id);
    let mut args = vec!["--ipv6".to_string()];
    for flag in ["--ipam-opt", "-o"] {
        args.extend([flag.to_string(), format!("neutron.pool.uuid={pool_id}")]);
        args.extend([flag.to_string(), format!("neutron.pool.v6.uuid={pool6_id}")]);
    }
    args.extend(["--subnet", "10.91.6.0/24", "--subnet", "fd91:6::/64"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let net = s.network_create("expool-id", &args);
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let mut from: Vec<String> = s
        .neutron
        .list("subnets", &[("network_id", n["id"].as_str().unwrap())])
        .iter()
        .map(|x| x["subnetpool_id"].as_str().unwrap_or("").to_string())
        .collect();
    from.sort();
    let mut want = vec![pool_id.clone(), pool6_id.clone()];
    want.sort();
    assert_eq!(from, want);
    let c = s.run(&net, &[]);
    let out = s.exec_ok(&c, &["ip", "-6", "addr", "show", "eth0"]);
    assert!(out.contains("fd91:6::"), "{out}");
    s.rm(&c);
    s.network_rm(&net);
    for id in [&pool_id, &pool6_id] {
        let p = s
            .neutron
            .get("subnetpools", id)
            .expect("adopted pool is kept");
        assert!(tags_of(&p).is_empty(), "{p}");
    }
}

fn scenario_restart(s: &mut Stack) {
    let net = s.network_create(
        "rst",
        &["--subnet", "10.91.10.0/24", "--gateway", "10.91.10.1"],
    );
    let n = s.neutron_network_of(&s.docker_network_id(&net));
    let nid = n["id"].as_str().unwrap().to_string();
    let c = s.run(&net, &[]);
    let pid = s.kuryr_ports(&nid)[0]["id"].as_str().unwrap().to_string();
    s.kill_daemon();
    s.start_daemon();
    s.rm(&c);
    assert!(s.kuryr_ports(&nid).is_empty());
    assert!(!s.host_has_link(&tap_name(&pid)));
    assert!(!s.ovs_has_port(&tap_name(&pid)));
    // A host interface left by a killed daemon whose port is gone is removed at start-up.
    let c = s.run(&net, &[]);
    let pid = s.kuryr_ports(&nid)[0]["id"].as_str().unwrap().to_string();
    s.kill_daemon();
    s.neutron.delete("ports", &pid);
    s.start_daemon();
    assert!(
        !s.host_has_link(&tap_name(&pid)),
        "reconcile removes the stale tap"
    );
    s.rm(&c);
    s.network_rm(&net);
}

/// Restarts the stack's dockerd through its script (`--live-restore` or not).
fn restart_docker(live_restore: bool) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stack/stack.sh");
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script).arg("restart-docker");
    if live_restore {
        cmd.arg("--live-restore");
    }
    let out = cmd.output().expect("run stack.sh");
    assert!(
        out.status.success(),
        "stack.sh restart-docker: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Docker daemon restarted under running containers. With live-restore they keep running
/// and keep their network: Docker's view (addresses) and Neutron's (the same ports, ACTIVE)
/// agree afterwards, and connect/rm still work. Without it Docker stops them on its way down,
/// which releases their ports; `docker start` gives them their network back.
fn scenario_docker_restart(s: &mut Stack) {
    let net = s.network_create(
        "dkr",
        &["--subnet", "10.91.14.0/24", "--gateway", "10.91.14.1"],
    );
    let nid = s.neutron_network_of(&s.docker_network_id(&net))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (a, b) = (s.run(&net, &[]), s.run(&net, &[]));
    let (ip_a, ip_b) = (s.container_ip(&a, &net), s.container_ip(&b, &net));
    let ports_before = port_ids(s, &nid);
    assert_eq!(ports_before.len(), 2, "one port per container");
    s.exec_ok(&a, &["ping", "-c", "1", "-W", "2", &ip_b]);

    restart_docker(true);
    assert_eq!(
        (s.container_ip(&a, &net), s.container_ip(&b, &net)),
        (ip_a.clone(), ip_b.clone()),
        "live-restore: Docker's addresses changed"
    );
    assert_eq!(
        port_ids(s, &nid),
        ports_before,
        "live-restore: the ports changed"
    );
    for p in s.kuryr_ports(&nid) {
        assert_eq!(p["status"], "ACTIVE", "live-restore: {p}");
    }
    assert!(
        pings_within(&["docker", "exec", &a], &ip_b, 10),
        "live-restore: the containers lost their network"
    );
    // Docker still drives the network: a new container reaches the restored ones.
    let c = s.run(&net, &[]);
    s.exec_ok(&c, &["ping", "-c", "1", "-W", "2", &ip_a]);
    s.rm(&c);

    // live-restore off: dockerd stops the containers on its way down (Leave, DeleteEndpoint,
    // ReleaseAddress), so their ports go.
    restart_docker(false);
    let released = wait_until(30, || s.kuryr_ports(&nid).is_empty());
    assert!(
        released,
        "stopped containers kept their ports: {:?}",
        s.kuryr_ports(&nid)
    );
    for id in &ports_before {
        assert!(!s.host_has_link(&tap_name(id)), "tap of {id} left");
        assert!(!s.ovs_has_port(&tap_name(id)), "OVS port of {id} left");
    }
    s.docker(&["start", &a]);
    s.docker(&["start", &b]);
    let ip_b = s.container_ip(&b, &net);
    assert!(
        pings_within(&["docker", "exec", &a], &ip_b, 10),
        "restarted containers do not reach each other"
    );
    s.rm(&a);
    s.rm(&b);
    s.network_rm(&net);
}

/// The plugin calls of a network's and a container's lifecycle (`docker network create`,
/// `run`, `rm`, `network rm`), in Docker's order, after which a crash leaves nothing. Docker
/// retries a call whose answer was lost with an empty body (its plugin client reuses the
/// drained request buffer), so the retry fails: after RequestPool and CreateNetwork the network
/// create fails, and the daemon undoes what it recorded in its state directory (the network
/// when Docker releases its pool, the pool after a grace period).
const LIFECYCLE_CALLS: [&str; 12] = {
    use kuryr_plugin_api::keys::paths::*;
    [
        IPAM_REQUEST_POOL,
        NET_CREATE_NETWORK,
        IPAM_REQUEST_ADDRESS,
        NET_CREATE_ENDPOINT,
        NET_JOIN,
        NET_PROGRAM_EXTERNAL_CONNECTIVITY,
        NET_REVOKE_EXTERNAL_CONNECTIVITY,
        NET_LEAVE,
        NET_DELETE_ENDPOINT,
        IPAM_RELEASE_ADDRESS,
        NET_DELETE_NETWORK,
        IPAM_RELEASE_POOL,
    ]
};

/// The daemon killed (abort, as `kill -9`) after each plugin call's work, before Docker has the
/// answer: after a restart Docker's commands finish or fail, the same commands clean up, and
/// nothing is left in Neutron or on the host.
fn scenario_kill_after_every_call(s: &mut Stack) {
    let mut failures = Vec::new();
    for (i, call) in LIFECYCLE_CALLS.iter().enumerate() {
        let base = s.footprint();
        s.restart_crashing_at(&format!(
            "{}{call}",
            kuryr_driver::crash_point::AFTER_CALL_PREFIX
        ));
        let net = s.unique(&format!("kill{i}"));
        let container = s.unique(&format!("killc{i}"));
        let cidr = format!("10.91.{}.0/24", 60 + i);
        let worker = {
            let (net, container, image) = (net.clone(), container.clone(), s.env.image.clone());
            let plugin = plugin_name();
            std::thread::spawn(move || {
                let gw = cidr.replace(".0/24", ".1");
                let created = docker_cmd(&network_create_args(
                    &plugin,
                    &cidr,
                    &["--gateway", &gw],
                    &net,
                ));
                if created.is_ok() {
                    let _ = docker_cmd(&run_args(&container, &net, &image));
                    let _ = docker_cmd(&["rm", "-f", &container]);
                    let _ = docker_cmd(&["network", "rm", &net]);
                }
            })
        };
        assert!(
            s.daemon_exited_within(90),
            "{call}: the crash point was never reached\n{}",
            s.log_tail()
        );
        s.start_daemon();
        worker.join().expect("lifecycle thread");
        // Docker's next commands work, and finish what the crash interrupted.
        let _ = docker_cmd(&["rm", "-f", &container]);
        if docker_cmd(&["network", "inspect", &net]).is_ok() {
            s.docker(&["network", "rm", &net]);
        }
        let mut now = std::collections::BTreeSet::new();
        let clean = wait_until(60, || {
            now = s.footprint();
            now == base
        });
        if clean {
            eprintln!("    killed after {call}: nothing left");
        } else {
            let left = format!(
                "killed after {call}: left behind {:?} (gone: {:?})",
                now.difference(&base).collect::<Vec<_>>(),
                base.difference(&now).collect::<Vec<_>>(),
            );
            eprintln!("    {left}\n{}", s.log_tail());
            failures.push(left);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn port_ids(s: &Stack, nid: &str) -> Vec<String> {
    let mut ids: Vec<String> = s
        .kuryr_ports(nid)
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn scenario_parallel(s: &mut Stack) {
    let net = s.network_create(
        "par",
        &["--subnet", "10.91.11.0/24", "--gateway", "10.91.11.1"],
    );
    let nid = s.neutron_net_id(&net);
    let names: Vec<String> = (0..20).map(|i| s.unique(&format!("par{i}"))).collect();
    let image = s.env.image.clone();
    let handles: Vec<_> = names
        .iter()
        .map(|name| {
            let (net, name, image) = (net.clone(), name.clone(), image.clone());
            std::thread::spawn(move || {
                docker_cmd(&[
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "--network",
                    &net,
                    &image,
                    "sleep",
                    "600",
                ])
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for name in &names {
        s.track_container(name);
    }
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    let ports = s.kuryr_ports(&nid);
    assert_eq!(ports.len(), 20);
    let mut ips: Vec<String> = names.iter().map(|c| s.container_ip(c, &net)).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "distinct addresses");
    let handles: Vec<_> = names
        .iter()
        .map(|name| {
            let name = name.clone();
            std::thread::spawn(move || docker_cmd(&["rm", "-f", &name]))
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().is_ok());
    }
    assert!(s.kuryr_ports(&nid).is_empty());
    s.network_rm(&net);
}

fn scenario_router(s: &mut Stack) {
    let a = s.network_create(
        "rta",
        &["--subnet", "10.91.12.0/24", "--gateway", "10.91.12.1"],
    );
    let b = s.network_create(
        "rtb",
        &["--subnet", "10.91.13.0/24", "--gateway", "10.91.13.1"],
    );
    let ca = s.run(&a, &[]);
    let cb = s.run(&b, &[]);
    let ip_b = s.container_ip(&cb, &b);
    assert!(
        s.exec(&ca, &["ping", "-c", "1", "-W", "2", &ip_b]).is_err(),
        "isolated without a router"
    );
    let na = s.neutron_network_of(&s.docker_network_id(&a));
    let nb = s.neutron_network_of(&s.docker_network_id(&b));
    let router = s.neutron.create(
        "routers",
        serde_json::json!({"router": {"name": s.unique("rt")}}),
    );
    let rid = router["id"].as_str().unwrap().to_string();
    s.track_neutron("routers", &rid);
    let mut joined = Vec::new();
    for n in [&na, &nb] {
        let sub = &s
            .neutron
            .list("subnets", &[("network_id", n["id"].as_str().unwrap())])[0];
        let sid = sub["id"].as_str().unwrap().to_string();
        s.neutron.put_action(
            &format!("routers/{rid}/add_router_interface"),
            serde_json::json!({"subnet_id": sid}),
        );
        joined.push(sid);
    }
    let mut ok = false;
    for _ in 0..20 {
        if s.exec(&ca, &["ping", "-c", "1", "-W", "1", &ip_b]).is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for sid in &joined {
        s.neutron.put_action(
            &format!("routers/{rid}/remove_router_interface"),
            serde_json::json!({"subnet_id": sid}),
        );
    }
    s.neutron.delete("routers", &rid);
    assert!(ok, "a router joins the networks");
    s.rm(&ca);
    s.rm(&cb);
    s.network_rm(&a);
    s.network_rm(&b);
}

/// The daemon dies (aborts, as under `kill -9`) right after RequestAddress made the port and
/// before Docker has the answer: Docker never releases that address. The restarted daemon's
/// sweep deletes the port; Docker's next commands work and nothing is left.
fn scenario_orphan_reservation(s: &mut Stack) {
    let net = s.network_create(
        "orphan",
        &["--subnet", "10.91.40.0/24", "--gateway", "10.91.40.1"],
    );
    let nid = s.neutron_net_id(&net);
    s.restart_crashing_at(kuryr_driver::crash_point::RESERVE_PORT_MADE);
    let (n, image) = (net.clone(), s.env.image.clone());
    let run = std::thread::spawn(move || {
        e2e::docker_cmd(&["run", "--rm", "--network", &n, &image, "true"])
    });
    assert!(
        s.daemon_exited_within(60),
        "the daemon reached its crash point"
    );
    let unbound = |s: &Stack| -> Vec<String> {
        s.neutron
            .list(
                "ports",
                &[("network_id", &nid), ("name", "kuryr-unbound-port")],
            )
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    let orphans = unbound(s);
    assert_eq!(orphans.len(), 1, "the port made before the crash");
    // Docker may retry the call against the new daemon; either way it gets an answer.
    s.start_daemon();
    let _ = run.join().expect("docker run thread");
    assert!(
        wait_until(30, || s.neutron.get("ports", &orphans[0]).is_none()),
        "the orphaned reservation is deleted:\n{}",
        s.log_tail()
    );
    let c = s.run(&net, &[]);
    s.rm(&c);
    s.network_rm(&net);
    assert!(s.neutron.get("networks", &nid).is_none());
}
