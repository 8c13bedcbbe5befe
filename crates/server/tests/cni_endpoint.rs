//! The daemon's CNI endpoint over a fake Neutron and host: what `kuryr-cni` prints for each
//! call (results in each version, chained `prevResult`, error codes), and the HTTP hop itself
//! through the plugin binary's own client on a unix socket.

use std::collections::BTreeMap;
use std::sync::Arc;

use kuryr_binding::FakeHostBinding;
use kuryr_cni::command::Invocation;
use kuryr_cni::forward;
use kuryr_driver::{DriverConfig, KuryrDriver};
use kuryr_libnetwork::cni::{answer, cni_router};
use kuryr_openstack::neutron::{
    ErrorContext, FakeNeutron, NeutronApi, NeutronError, NewNetwork, NewSubnet,
};
use serde_json::{json, Value};

/// The endpoint checks that the namespace file exists; the fake binding takes any path.
const NS: &str = "/proc/self/ns/net";

async fn setup() -> (Arc<FakeNeutron>, Arc<FakeHostBinding>, Arc<KuryrDriver>) {
    let neutron = Arc::new(FakeNeutron::new());
    neutron.activate_on_bind(true);
    let binding = Arc::new(FakeHostBinding::new());
    binding.add_netns(NS);
    let mut cfg = DriverConfig::new("host-1");
    cfg.pool = None;
    let driver = Arc::new(KuryrDriver::new(neutron.clone(), binding.clone(), cfg));
    let net = neutron
        .create_network(&NewNetwork {
            name: Some("pods".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    neutron
        .create_subnet(&NewSubnet {
            network_id: net.id,
            ip_version: 4,
            cidr: Some("10.70.0.0/24".parse().unwrap()),
            gateway_ip: Some(Some("10.70.0.1".parse().unwrap())),
            ..Default::default()
        })
        .await
        .unwrap();
    (neutron, binding, driver)
}

fn call(command: &str, conf: Value) -> Invocation {
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_NETNS", NS),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    Invocation {
        env,
        stdin: conf.to_string(),
    }
}

fn conf(version: &str) -> Value {
    json!({"cniVersion": version, "name": "k", "type": "kuryr-cni", "neutron_network": "pods"})
}

fn out(r: &forward::DaemonReply) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or(Value::Null)
}

#[tokio::test]
async fn add_answers_in_the_callers_version_after_the_previous_result() {
    let (_n, _b, driver) = setup().await;
    let mut c = conf("0.4.0");
    c["prevResult"] = json!({"cniVersion": "0.4.0", "interfaces": [{"name": "lo"}],
                             "ips": [{"version": "4", "address": "127.0.0.1/8", "interface": 0}]});
    let r = answer(&driver, &call("ADD", c)).await;
    assert_eq!(r.exit_code, 0, "{}", r.stdout);
    let v = out(&r);
    assert_eq!(v["cniVersion"], "0.4.0");
    assert_eq!(
        v["ips"][0]["address"], "127.0.0.1/8",
        "the previous result first"
    );
    assert_eq!(
        v["ips"][1]["interface"], 1,
        "our interface comes after the previous one"
    );
    assert_eq!(
        v["ips"][1]["version"], "4",
        "0.4.0 results carry the ip version"
    );
    assert_eq!(v["interfaces"][1]["name"], "eth0");
    assert_eq!(v["interfaces"][1]["sandbox"], NS);
    assert!(v["interfaces"][1].get("mtu").is_none(), "mtu is 1.1.0's");
    assert!(v["ips"][1]["address"]
        .as_str()
        .unwrap()
        .starts_with("10.70.0."));
    assert_eq!(v["routes"][0]["dst"], "0.0.0.0/0");

    // DEL prints nothing and succeeds, twice.
    for _ in 0..2 {
        let r = answer(&driver, &call("DEL", conf("0.4.0"))).await;
        assert_eq!((r.exit_code, r.stdout.as_str()), (0, ""));
    }
}

#[tokio::test]
async fn driver_failures_have_the_cni_codes() {
    let (neutron, _b, driver) = setup().await;
    let mut unknown = conf("1.0.0");
    unknown["neutron_network"] = json!("nope");
    let r = answer(&driver, &call("ADD", unknown)).await;
    assert_eq!((r.exit_code, out(&r)["code"].as_u64()), (1, Some(7)));
    assert_eq!(out(&r)["cniVersion"], "1.0.0");

    let r = answer(&driver, &call("CHECK", conf("1.0.0"))).await;
    assert_eq!(
        out(&r)["code"],
        3,
        "CHECK of an attachment that does not exist"
    );

    let r = answer(&driver, &call("ADD", conf("1.1.0"))).await;
    assert_eq!(r.exit_code, 0, "{}", r.stdout);
    // The network's MTU (the fake gives networks 1442, as ML2/OVN with Geneve does).
    assert_eq!(out(&r)["interfaces"][0]["mtu"], 1442);
    let r = answer(&driver, &call("ADD", conf("1.1.0"))).await;
    assert_eq!(
        out(&r)["code"],
        100,
        "the interface exists already: {}",
        r.stdout
    );

    // Neutron down: try again later; STATUS: not available.
    neutron.fail_always(
        "list_networks",
        NeutronError::Timeout(ErrorContext::new(
            "GET",
            "/v2.0/networks",
            "injected timeout",
        )),
    );
    let mut other = call("ADD", conf("1.1.0"));
    other.env.insert("CNI_CONTAINERID".into(), "c2".into());
    other.env.insert("CNI_IFNAME".into(), "eth1".into());
    let mut c = conf("1.1.0");
    c["neutron_network"] = json!("pods-by-name-uncached");
    other.stdin = c.to_string();
    let r = answer(&driver, &other).await;
    assert_eq!(out(&r)["code"], 11, "{}", r.stdout);
    let mut status = call("STATUS", conf("1.1.0"));
    status.env.remove("CNI_NETNS");
    let r = answer(&driver, &status).await;
    assert_eq!(out(&r)["code"], 50, "{}", r.stdout);
}

#[tokio::test]
async fn the_plugin_binarys_client_reaches_the_endpoint() {
    let (_n, _b, driver) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cni.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        axum::serve(listener, cni_router(driver)).await.unwrap();
    });
    let inv = call("ADD", conf("1.0.0"));
    let reply = tokio::task::spawn_blocking(move || {
        forward::call(&path, &inv, std::time::Duration::from_secs(10))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reply.exit_code, 0, "{}", reply.stdout);
    assert_eq!(out(&reply)["interfaces"][0]["name"], "eth0");
}
