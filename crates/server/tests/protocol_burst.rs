//! The server over a real unix socket: 1,000 concurrent plugin requests, each on its own
//! connection as Docker's parallel calls are, all answered without error; then a graceful
//! shutdown that removes the socket.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::call_unix;
use common::memory_driver::MemoryDriver;
use http::StatusCode;
use kuryr_libnetwork::transport::{bind_unix, serve_unix, UnixListenerConfig};
use kuryr_libnetwork::{router, Limits};
use kuryr_plugin_api::keys::paths;
use serde_json::json;

const BURST: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_concurrent_requests_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plugins").join("kuryr-burst.sock");
    let bound = bind_unix(&UnixListenerConfig::new(&socket)).unwrap();
    let driver = Arc::new(MemoryDriver::without_links());
    let app = router(driver.clone(), driver.clone(), Limits::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_unix(bound.listener, app, async {
        let _ = stop_rx.await;
    }));

    let (status, pool) = call_unix(
        &socket,
        paths::IPAM_REQUEST_POOL,
        json!({"AddressSpace": "", "Pool": "10.77.0.0/16", "Options": {}, "V6": false}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK, "{pool}");
    let pool_id = pool["PoolID"].as_str().unwrap().to_owned();

    // A mix of calls; the RequestAddress ones must all get distinct addresses.
    let mut tasks = Vec::with_capacity(BURST);
    for i in 0..BURST {
        let socket = socket.clone();
        let pool_id = pool_id.clone();
        tasks.push(tokio::spawn(async move {
            let (path, body) = match i % 4 {
                0 => (paths::NET_GET_CAPABILITIES, String::new()),
                1 => (
                    paths::NET_ENDPOINT_OPER_INFO,
                    json!({"NetworkID": common::docker_id(i as u64), "EndpointID": common::docker_id(i as u64 + 1)}).to_string(),
                ),
                _ => (
                    paths::IPAM_REQUEST_ADDRESS,
                    json!({"PoolID": pool_id, "Address": "", "Options": {}}).to_string(),
                ),
            };
            (path, call_unix(&socket, path, body).await)
        }));
    }
    let mut addresses = HashSet::new();
    let mut failures = Vec::new();
    for t in tasks {
        let (path, result) = t.await.unwrap();
        match result {
            Ok((StatusCode::OK, reply)) => {
                if path == paths::IPAM_REQUEST_ADDRESS {
                    addresses.insert(reply["Address"].as_str().unwrap().to_owned());
                }
            }
            Ok((status, reply)) => failures.push(format!("{path}: {status} {reply}")),
            Err(e) => failures.push(format!("{path}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(addresses.len(), BURST / 2, "addresses must be distinct");
    assert_eq!(driver.calls().len(), 1 + BURST);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        socket.exists(),
        "the guard, not serve_unix, owns the socket file"
    );
    drop(bound.guard);
    assert!(!socket.exists(), "socket must be removed at shutdown");
}
