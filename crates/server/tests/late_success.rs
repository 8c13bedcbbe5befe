//! Calls past their deadline: a set-up call's late success is undone (its own process: the
//! count of running calls is global).

mod common;

use std::time::Duration;

use common::memory_driver::Fault;
use common::{app, call};
use http::StatusCode;
use kuryr_libnetwork::http::in_flight;
use kuryr_libnetwork::Limits;
use kuryr_plugin_api::keys::paths;

/// A set-up call that succeeds only after Docker was answered with the deadline's error is
/// undone (Docker took it as failed); one that fails needs nothing; a tear-down is never undone.
#[tokio::test]
async fn a_late_success_is_undone_and_a_tear_down_never() {
    let hang = Duration::from_millis(400);
    let (app, driver) = app(Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    });
    driver.inject("NetworkDriver.CreateNetwork", Fault::Hang(hang));
    driver.inject("NetworkDriver.DeleteNetwork", Fault::Hang(hang));
    let net = common::docker_id(8);
    let (status, _, reply) = call(
        &app,
        paths::NET_CREATE_NETWORK,
        serde_json::json!({"NetworkID": net, "IPv4Data": [{"Pool": "10.9.0.0/24", "AddressSpace": "x"}]})
            .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{reply}");
    assert!(reply.to_string().contains("undone when it ends"), "{reply}");
    let (status, _, _) = call(
        &app,
        paths::NET_DELETE_NETWORK,
        serde_json::json!({"NetworkID": common::docker_id(9)}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(in_flight::drain(Duration::from_secs(10)).await, 0);
    let undone: Vec<String> = driver
        .calls()
        .into_iter()
        .filter(|c| c.method == "undo_abandoned")
        .map(|c| c.id)
        .collect();
    assert_eq!(undone, vec![net.to_string()], "{:?}", driver.methods());
}

/// The driver is told of the CreateNetwork and RequestPool successes Docker is given (so it can
/// forget them as possibly unanswered), never of one Docker was told failed; a RequestPool that
/// succeeds too late is undone.
#[tokio::test]
async fn the_driver_is_told_which_set_up_answers_docker_had() {
    let (app, driver) = app(Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    });
    let net = common::docker_id(10);
    let (status, _, reply) = call(
        &app,
        paths::NET_CREATE_NETWORK,
        serde_json::json!({"NetworkID": net, "IPv4Data": [{"Pool": "10.9.1.0/24", "AddressSpace": "x"}]})
            .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let pool_req = serde_json::json!({"AddressSpace": "x", "Pool": "10.9.2.0/24", "V6": false});
    let (status, _, reply) = call(&app, paths::IPAM_REQUEST_POOL, pool_req.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let pool_id = reply["PoolID"].as_str().unwrap().to_string();
    driver.inject(
        "NetworkDriver.CreateNetwork",
        Fault::Hang(Duration::from_millis(300)),
    );
    driver.inject(
        "IpamDriver.RequestPool",
        Fault::Hang(Duration::from_millis(300)),
    );
    let late = common::docker_id(11);
    let (status, _, _) = call(
        &app,
        paths::NET_CREATE_NETWORK,
        serde_json::json!({"NetworkID": late, "IPv4Data": [{"Pool": "10.9.3.0/24", "AddressSpace": "x"}]})
            .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let late_pool = serde_json::json!({"AddressSpace": "x", "Pool": "10.9.4.0/24", "V6": false});
    let (status, _, _) = call(&app, paths::IPAM_REQUEST_POOL, late_pool.to_string()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(in_flight::drain(Duration::from_secs(10)).await, 0);
    let told: Vec<(&str, String)> = driver
        .notified()
        .into_iter()
        .map(|c| (c.method, c.id))
        .collect();
    assert_eq!(
        told,
        vec![
            ("create_network_answered", net.to_string()),
            ("request_pool_answered", pool_id),
        ]
    );
    let undone: Vec<String> = driver
        .calls()
        .into_iter()
        .filter(|c| c.method == "undo_abandoned")
        .map(|c| c.id)
        .collect();
    assert_eq!(
        undone,
        vec![late.to_string(), "RequestPool".to_string()],
        "{:?}",
        driver.methods()
    );
}
