//! A call answered with a timeout keeps running; the daemon waits for it before exiting, so a
//! set-up is never cut off halfway (its own process: the count of running calls is global).

mod common;

use std::time::{Duration, Instant};

use common::memory_driver::Fault;
use common::{app, call};
use http::StatusCode;
use kuryr_libnetwork::http::in_flight;
use kuryr_libnetwork::Limits;
use kuryr_plugin_api::keys::paths;

#[tokio::test]
async fn shutdown_waits_for_calls_past_their_deadline() {
    let hang = Duration::from_millis(700);
    let deadline = Duration::from_millis(100);
    let (app, driver) = app(Limits {
        request_timeout: deadline,
        ..Limits::default()
    });
    driver.inject("NetworkDriver.DeleteNetwork", Fault::Hang(hang));
    let started = Instant::now();
    let (status, _, reply) = call(
        &app,
        paths::NET_DELETE_NETWORK,
        serde_json::json!({"NetworkID": common::docker_id(7)}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{reply}");
    assert!(started.elapsed() < hang, "answered at the deadline");
    assert_eq!(in_flight::running(), 1, "the call goes on");

    // A short wait gives up, and says how many still run.
    assert_eq!(in_flight::drain(Duration::from_millis(50)).await, 1);
    // The daemon's wait sees it through.
    assert_eq!(in_flight::drain(Duration::from_secs(10)).await, 0);
    assert!(started.elapsed() >= hang, "{:?}", started.elapsed());
}
