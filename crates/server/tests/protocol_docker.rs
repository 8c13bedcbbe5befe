//! The protocol layer against the real Docker daemon, with the in-memory driver behind it:
//! network create (with our IPAM), run, connect/disconnect, rm, network rm. Asserts what the
//! container sees and the exact calls Docker made, in order.
//!
//! Needs `KURYR_TEST_DOCKER` (and root, for the veth pairs); without it, prints `skipped: ...`
//! and passes (fails in CI); `KURYR_TEST_IMAGE` names an image
//! with busybox (default `kuryr-busybox`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::memory_driver::{extra_route_for, MemoryDriver};
use kuryr_libnetwork::transport::{bind_unix, serve_unix, UnixListenerConfig};
use kuryr_libnetwork::{router, Limits};
use kuryr_plugin_api::DockerId;

/// Plugin name: never the real `kuryr`. Docker caches a plugin's address per name for its whole
/// lifetime, so the socket path must stay the same across runs.
const PLUGIN: &str = "kuryr-memtest";
const SOCKET: &str = "/run/docker/plugins/kuryr-memtest.sock";
const DOCKER: &str = "/usr/bin/docker";

async fn docker(args: &[&str]) -> Result<String, String> {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(DOCKER).args(args).output(),
    )
    .await
    .map_err(|_| format!("docker {} timed out", args.join(" ")))?
    .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Removes what the test created even when an assertion fails half-way.
struct Cleanup {
    container: String,
    networks: Vec<String>,
    driver: Arc<MemoryDriver>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let _ = std::process::Command::new(DOCKER)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        // The server still runs on the runtime's worker threads while this blocks.
        run(&["rm", "-f", &self.container]);
        for n in &self.networks {
            run(&["network", "rm", n]);
        }
        for link in self.driver.host_links() {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &link])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_drives_the_plugin_end_to_end() {
    if std::env::var_os("KURYR_TEST_DOCKER").is_none() {
        common::skip::skip_or_fail("KURYR_TEST_DOCKER is not set (no docker daemon)");
        return;
    }
    if !Path::new(DOCKER).exists() {
        common::skip::skip_or_fail(&format!("{DOCKER} not found"));
        return;
    }
    let image = std::env::var("KURYR_TEST_IMAGE").unwrap_or_else(|_| "kuryr-busybox".into());

    let bound = bind_unix(&UnixListenerConfig::new(SOCKET)).expect("bind plugin socket");
    let driver = Arc::new(MemoryDriver::with_links("km"));
    let app = router(driver.clone(), driver.clone(), Limits::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_unix(bound.listener, app, async {
        let _ = stop_rx.await;
    }));

    let tag = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000
    );
    let net1 = format!("kmt1-{tag}");
    let net2 = format!("kmt2-{tag}");
    let ctr = format!("kmtc-{tag}");
    let cleanup = Cleanup {
        container: ctr.clone(),
        networks: vec![net1.clone(), net2.clone()],
        driver: driver.clone(),
    };

    for (net, subnet, gw) in [
        (&net1, "10.201.0.0/24", "10.201.0.1"),
        (&net2, "10.202.0.0/24", "10.202.0.1"),
    ] {
        docker(&[
            "network",
            "create",
            "-d",
            PLUGIN,
            "--ipam-driver",
            PLUGIN,
            "--subnet",
            subnet,
            "--gateway",
            gw,
            net,
        ])
        .await
        .unwrap();
    }
    let net1_id = docker(&["network", "inspect", "-f", "{{.Id}}", &net1])
        .await
        .unwrap()
        .trim()
        .to_owned();
    let created = driver.calls();
    assert!(
        created
            .iter()
            .any(|c| c.method == "NetworkDriver.CreateNetwork" && c.id == net1_id),
        "CreateNetwork for {net1_id} not seen: {created:?}"
    );

    docker(&[
        "run",
        "-d",
        "--network",
        &net1,
        "--name",
        &ctr,
        &image,
        "sleep",
        "300",
    ])
    .await
    .unwrap();

    // The container got the address, the gateway, our static route and our MAC.
    let addr = docker(&["exec", &ctr, "ip", "addr", "show", "eth0"])
        .await
        .unwrap();
    assert!(addr.contains("inet 10.201.0.2/24"), "{addr}");
    let ep1 = driver
        .calls()
        .into_iter()
        .find(|c| c.method == "NetworkDriver.CreateEndpoint")
        .unwrap()
        .id;
    let mac = MemoryDriver::mac_for(&ep1.parse::<DockerId>().unwrap()).to_string();
    assert!(addr.contains(&mac), "mac {mac} not applied: {addr}");
    let routes = docker(&["exec", &ctr, "ip", "route"]).await.unwrap();
    assert!(
        routes.contains("default via 10.201.0.1 dev eth0"),
        "{routes}"
    );
    assert!(
        routes.contains(&format!(
            "{} via 10.201.0.1 dev eth0",
            extra_route_for("10.201.0.1".parse().unwrap())
        )),
        "{routes}"
    );
    // DisableGatewayService kept Docker from adding a docker_gwbridge interface.
    let links = docker(&["exec", &ctr, "ip", "-o", "link"]).await.unwrap();
    assert!(!links.contains("eth1"), "{links}");

    docker(&["network", "connect", &net2, &ctr]).await.unwrap();
    let addr2 = docker(&["exec", &ctr, "ip", "addr", "show", "eth1"])
        .await
        .unwrap();
    assert!(addr2.contains("inet 10.202.0.2/24"), "{addr2}");
    let routes = docker(&["exec", &ctr, "ip", "route"]).await.unwrap();
    assert!(
        routes.contains("198.18.202.0/24 via 10.202.0.1 dev eth1"),
        "{routes}"
    );
    docker(&["network", "disconnect", &net2, &ctr])
        .await
        .unwrap();
    let links = docker(&["exec", &ctr, "ip", "-o", "link"]).await.unwrap();
    assert!(
        !links.contains("eth1"),
        "eth1 still there after disconnect: {links}"
    );

    docker(&["rm", "-f", &ctr]).await.unwrap();
    docker(&["network", "rm", &net1, &net2]).await.unwrap();

    // Every host link the driver made is gone again.
    assert!(driver.host_links().is_empty(), "{:?}", driver.host_links());
    let host = tokio::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .await
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout);
    assert!(!host.contains(&format!("kmh{}", &ep1[..9])), "{host}");

    // The calls, in order. Activation/capabilities happen once per dockerd lifetime and
    // EndpointOperInfo is called a version-dependent number of times, so they are left out.
    let seq: Vec<&str> = driver
        .calls()
        .iter()
        .map(|c| c.method)
        .filter(|m| {
            !matches!(
                *m,
                "NetworkDriver.EndpointOperInfo"
                    | "NetworkDriver.GetCapabilities"
                    | "IpamDriver.GetCapabilities"
                    | "IpamDriver.GetDefaultAddressSpaces"
            )
        })
        .collect();
    println!("calls: {seq:#?}");
    let expected = [
        // network create ×2
        "IpamDriver.RequestPool",
        "IpamDriver.RequestAddress(gateway)",
        "NetworkDriver.CreateNetwork",
        "IpamDriver.RequestPool",
        "IpamDriver.RequestAddress(gateway)",
        "NetworkDriver.CreateNetwork",
        // docker run
        "IpamDriver.RequestAddress",
        "NetworkDriver.CreateEndpoint",
        "NetworkDriver.Join",
        "NetworkDriver.ProgramExternalConnectivity",
        // network connect
        "IpamDriver.RequestAddress",
        "NetworkDriver.CreateEndpoint",
        "NetworkDriver.Join",
        // network disconnect
        "NetworkDriver.Leave",
        "NetworkDriver.DeleteEndpoint",
        "IpamDriver.ReleaseAddress",
        // rm -f
        "NetworkDriver.RevokeExternalConnectivity",
        "NetworkDriver.Leave",
        "NetworkDriver.DeleteEndpoint",
        "IpamDriver.ReleaseAddress",
        // network rm ×2
        "IpamDriver.ReleaseAddress",
        "IpamDriver.ReleasePool",
        "NetworkDriver.DeleteNetwork",
        "IpamDriver.ReleaseAddress",
        "IpamDriver.ReleasePool",
        "NetworkDriver.DeleteNetwork",
    ];
    assert_eq!(seq, expected);

    drop(cleanup);
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    drop(bound.guard);
    assert!(
        !Path::new(SOCKET).exists(),
        "socket must be removed at shutdown"
    );
}
