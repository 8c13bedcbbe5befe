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
