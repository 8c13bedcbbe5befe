//! The metrics endpoint end to end: plugin calls through the router (in-memory driver) and
//! Neutron requests through `HttpNeutron` (against a small fake Neutron on loopback) are
//! recorded, then `GET /metrics` is scraped over real TCP on its own listener.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use common::memory_driver::{Fault, MemoryDriver};
use common::{call, docker_id};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use kuryr_libnetwork::metrics::{build_info_prefix, sample, serve_metrics, Metrics, CONTENT_TYPE};
use kuryr_libnetwork::{router_with_metrics, Limits};
use kuryr_openstack::auth::KeystoneOptions;
use kuryr_openstack::neutron::RequestObserver;
use kuryr_plugin_api::keys::paths;
use kuryr_plugin_api::PluginError;
use serde_json::json;
use tokio::sync::oneshot;

/// One request over a new TCP connection; the status, content type and body.
async fn request(addr: SocketAddr, method: Method, path: &str) -> (StatusCode, String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn calls(text: &str, call: &str, outcome: &str) -> Option<f64> {
    sample(
        text,
        &format!(
            "kuryr_plugin_call_duration_seconds_count{{call=\"{call}\",outcome=\"{outcome}\"}}"
        ),
    )
}

fn errors(text: &str, call: &str, kind: &str) -> Option<f64> {
    sample(
        text,
        &format!("kuryr_plugin_errors_total{{call=\"{call}\",kind=\"{kind}\"}}"),
    )
}

/// A Neutron with only `GET /v2.0/extensions` (and 404 for everything else), on loopback.
async fn fake_neutron() -> String {
    let app = axum::Router::new().route(
        "/v2.0/extensions",
        get(|| async {
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                json!({"extensions": [{"alias": "standard-attr-tag", "name": "Tags"}]}).to_string(),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn plugin_calls_and_neutron_requests_are_scraped_over_tcp() {
    let metrics = Arc::new(Metrics::new());
    let driver = Arc::new(MemoryDriver::without_links());
    let held = driver.clone();
    metrics.track_held(move || held.held());
    let app = router_with_metrics(
        driver.clone(),
        driver.clone(),
        Limits::default(),
        metrics.clone(),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(listener, metrics.clone(), async move {
        let _ = stopped.await;
    }));

    // Nothing recorded yet: the families have no samples, the gauges are 0.
    let (status, content_type, text) = request(addr, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, CONTENT_TYPE);
    assert!(
        !text.contains("kuryr_plugin_call_duration_seconds_count"),
        "{text}"
    );
    assert_eq!(sample(&text, "kuryr_networks "), Some(0.0), "{text}");

    // `docker network create` and a container start, one Join failing.
    let (net, ep) = (docker_id(0x51), docker_id(0x52));
    let (s, _, pool) = call(
        &app,
        paths::IPAM_REQUEST_POOL,
        json!({"AddressSpace": "l", "Pool": "10.77.0.0/24", "SubPool": "", "Options": {}, "V6": false}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{pool}");
    let (s, _, reply) = call(
        &app,
        paths::NET_CREATE_NETWORK,
        json!({"NetworkID": net, "Options": {},
            "IPv4Data": [{"AddressSpace": "l", "Gateway": "10.77.0.1/24", "Pool": "10.77.0.0/24"}],
            "IPv6Data": []})
        .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{reply}");
    for _ in 0..2 {
        let (s, _, reply) = call(&app, paths::NET_GET_CAPABILITIES, "").await;
        assert_eq!(s, StatusCode::OK, "{reply}");
    }
    let (s, _, reply) = call(
        &app,
        paths::NET_CREATE_ENDPOINT,
        json!({"NetworkID": net, "EndpointID": ep,
            "Interface": {"Address": "10.77.0.2/24", "AddressIPv6": "", "MacAddress": ""},
            "Options": {}})
        .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{reply}");
    driver.inject(
        "NetworkDriver.Join",
        Fault::Fail(PluginError::unavailable("neutron is down")),
    );
    let join = json!({"NetworkID": net, "EndpointID": ep,
        "SandboxKey": "/var/run/docker/netns/x", "Options": {}})
    .to_string();
    let (s, _, _) = call(&app, paths::NET_JOIN, join).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    // Refused before the driver: counted as an error, not as a driver call.
    let (s, _, _) = call(&app, paths::NET_CREATE_ENDPOINT, "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = call(
        &app,
        paths::NET_DELETE_NETWORK,
        json!({"NetworkID": "not-an-id"}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);

    // Neutron requests through the real client, observed by the same metrics.
    let neutron_url = fake_neutron().await;
    let neutron = kuryr_openstack::client_with_observer(
        &KeystoneOptions {
            auth_type: Some("none".into()),
            endpoint: Some(neutron_url),
            ..Default::default()
        },
        Some(metrics.clone() as Arc<dyn RequestObserver>),
    )
    .unwrap();
    use kuryr_openstack::NeutronApi;
    let exts = neutron.list_extensions().await.unwrap();
    assert_eq!(exts[0].alias, "standard-attr-tag");
    neutron.list_extensions().await.unwrap();
    let e = neutron
        .get_port("3f0c0b6e-6f3a-4b8e-9a43-0c4d5e6f7a8b")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");

    let (status, content_type, text) = request(addr, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, CONTENT_TYPE);
    assert_eq!(
        calls(&text, "IpamDriver.RequestPool", "ok"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        calls(&text, "NetworkDriver.CreateNetwork", "ok"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        calls(&text, "NetworkDriver.GetCapabilities", "ok"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        calls(&text, "NetworkDriver.CreateEndpoint", "ok"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        calls(&text, "NetworkDriver.CreateEndpoint", "malformed"),
        None,
        "{text}"
    );
    assert_eq!(
        calls(&text, "NetworkDriver.Join", "unavailable"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(calls(&text, "NetworkDriver.Join", "ok"), None, "{text}");
    assert_eq!(
        errors(&text, "NetworkDriver.Join", "unavailable"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        errors(&text, "NetworkDriver.CreateEndpoint", "malformed"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        errors(&text, "NetworkDriver.CreateNetwork", "ok"),
        None,
        "{text}"
    );
    assert_eq!(
        errors(&text, "NetworkDriver.DeleteNetwork", "bad_request"),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains(r#"call="NetworkDriver.DeleteNetwork",outcome"#),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"kuryr_neutron_request_duration_seconds_count{method="GET",resource="extensions",status="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"kuryr_neutron_request_duration_seconds_count{method="GET",resource="ports",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("3f0c0b6e"), "no ids in labels: {text}");
    assert_eq!(sample(&text, "kuryr_networks "), Some(1.0), "{text}");
    assert_eq!(sample(&text, "kuryr_endpoints "), Some(1.0), "{text}");
    assert_eq!(sample(&text, &build_info_prefix()), Some(1.0), "{text}");

    // Only GET /metrics is served.
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/metrics/x"),
        (Method::POST, "/metrics"),
        (Method::POST, paths::NET_GET_CAPABILITIES),
    ] {
        let (status, _, _) = request(addr, method.clone(), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }

    // It stops with the daemon's shutdown signal, and the port is closed.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the metrics server stops")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A kuryr.conf for the daemon: the plugin API on a socket in `dir`, Neutron at a closed
/// loopback port (so the daemon stays in its start-up wait and never touches the host), and
/// the metrics endpoint at `metrics`.
fn daemon_conf(dir: &std::path::Path, metrics: SocketAddr) -> std::path::PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let neutron = closed.local_addr().unwrap();
    drop(closed);
    let conf = dir.join("kuryr.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nkuryr_uri = unix://{}/kuryr.sock\n\
             [neutron]\nauth_type = none\nendpoint = http://{neutron}\n\
             [metrics]\nlisten_address = {metrics}\n",
            dir.display()
        ),
    )
    .unwrap();
    conf
}

fn daemon(conf: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kuryr-server"));
    cmd.arg("--config-file")
        .arg(conf)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // Only the file counts: no `OS_<SECTION>__<OPTION>` override (a Neutron endpoint, say).
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OS_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[tokio::test]
async fn the_daemon_refuses_to_start_when_the_metrics_address_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let conf = daemon_conf(dir.path(), addr);
    let out = tokio::time::timeout(Duration::from_secs(20), daemon(&conf).output())
        .await
        .expect("the daemon exits at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen for metrics on {addr} ([metrics] listen_address)"
        )),
        "{stderr}"
    );
    drop(taken);
}

#[tokio::test]
async fn the_daemon_serves_metrics_while_it_waits_for_neutron() {
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let conf = daemon_conf(dir.path(), addr);
    let mut child = daemon(&conf).spawn().unwrap();
    // The first Neutron attempt fails at once (connection refused): wait until it is counted.
    let transport = r#"kuryr_neutron_request_duration_seconds_count{method="GET",resource="extensions",status="transport"}"#;
    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("kuryr-server exited with {status}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let (status, content_type, body) = request(addr, Method::GET, "/metrics").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(content_type, CONTENT_TYPE);
            text = body;
            if sample(&text, transport).is_some_and(|n| n >= 1.0) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().await.unwrap();
    assert!(sample(&text, transport).is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(sample(&text, "kuryr_networks "), Some(0.0), "{text}");
    assert_eq!(sample(&text, &build_info_prefix()), Some(1.0), "{text}");
}
