//! Neutron failures (409, 500, timeout) and host failures at every step: the call fails with a
//! clear message, what it created is unwound, and after Docker's own rollback nothing is left.

mod common;

use common::*;
use kuryr_openstack::neutron::{ErrorContext, NeutronError};

fn failures() -> Vec<(&'static str, NeutronError)> {
    vec![
        (
            "409",
            NeutronError::from_status(
                409,
                ErrorContext::new("X", "/v2.0/x", "injected conflict").with_kind("Conflict"),
            ),
        ),
        (
            "500",
            NeutronError::from_status(
                500,
                ErrorContext::new("X", "/v2.0/x", "injected server error"),
            ),
        ),
        (
            "timeout",
            NeutronError::Timeout(ErrorContext::new("X", "/v2.0/x", "injected timeout")),
        ),
    ]
}

/// Every Neutron operation `docker network create` uses, by its position.
const NETWORK_CREATE_OPS: &[(&str, usize)] = &[
    ("list_subnetpools", 1),
    ("create_subnetpool", 1),
    ("list_networks", 1),
    ("create_network", 1),
    ("replace_tags", 1),
    ("create_subnet", 1),
];

#[tokio::test]
async fn network_create_failures_leave_nothing() {
    for (op, nth) in NETWORK_CREATE_OPS {
        for (what, e) in failures() {
            let t = setup();
            t.neutron.fail_nth(op, *nth, e);
            let net = id("net-fault");
            let r = t
                .network_create(&net, "10.20.0.0/24", "10.20.0.1", &[])
                .await;
            let err = r.expect_err(&format!("{op} {what} must fail the create"));
            assert!(!err.to_string().is_empty());
            assert!(
                t.neutron.is_empty(),
                "{op} {what}: leftovers {:?} {:?} {:?}",
                t.neutron.networks(),
                t.neutron.subnets(),
                t.neutron.subnetpools()
            );
            // And the same create works once Neutron is well again.
            t.neutron.clear_faults();
            let pools = t
                .network_create(&net, "10.20.0.0/24", "10.20.0.1", &[])
                .await
                .unwrap();
            t.network_rm(&net, &[pools]).await;
            assert!(t.neutron.is_empty(), "{op} {what}: retry leaked");
        }
    }
}

/// Every Neutron operation `docker run` uses, by its position.
const RUN_OPS: &[(&str, usize)] = &[
    ("list_ports", 1),
    ("create_port", 1),
    ("update_port", 1),
    ("replace_tags", 1),
    ("get_port", 1),
    ("list_subnets", 1),
];

#[tokio::test]
async fn container_start_failures_leave_nothing() {
    for (op, nth) in RUN_OPS {
        for (what, e) in failures() {
            let t = setup();
            let net = id("net-run-fault");
            let pools = t
                .network_create(&net, "10.21.0.0/24", "10.21.0.1", &[])
                .await
                .unwrap();
            // Start from a cold cache, as a restarted daemon would.
            let t = t.restart();
            let n = t.network_of(&net);
            t.neutron.fail_nth(op, *nth, e);
            let ep = id("ep-run-fault");
            // A MAC Docker did not generate, so the MAC look-up is on the path too.
            match t.run(&net, &ep, &pools.0, "", "fa:16:3e:00:00:01").await {
                Err(err) => {
                    assert!(!err.to_string().is_empty());
                    assert!(
                        t.ports_on(&n.id).is_empty(),
                        "{op} {what}: port leaked {:?}",
                        t.ports_on(&n.id)
                    );
                    assert!(
                        t.binding.bound_ports().is_empty(),
                        "{op} {what}: host interface leaked"
                    );
                }
                Ok(addr) => {
                    // Only the status read (EndpointOperInfo swallows it; the port was ACTIVE
                    // at once) and the port's naming, done after the start, may fail without
                    // failing the start.
                    assert!(
                        ["get_port", "update_port"].contains(op),
                        "{op} {what} did not fail the start"
                    );
                    t.neutron.clear_faults();
                    t.rm(&net, &ep, &pools.0, &addr).await;
                }
            }
            t.neutron.clear_faults();
            t.network_rm(&net, &[pools]).await;
            assert!(t.neutron.is_empty(), "{op} {what}: leftovers");
        }
    }
}

#[tokio::test]
async fn host_plug_failure_unwinds_the_port() {
    let t = setup();
    let net = id("net-plug");
    let pools = t
        .network_create(&net, "10.22.0.0/24", "10.22.0.1", &[])
        .await
        .unwrap();
    t.binding.fail_next_bind("no such bridge br-int");
    let err = t
        .run(&net, &id("ep-plug"), &pools.0, "", &mac(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no such bridge br-int"), "{err}");
    assert!(t.ports_on(&t.network_of(&net).id).is_empty());
    t.network_rm(&net, &[pools]).await;
    assert!(t.neutron.is_empty());
}

#[tokio::test]
async fn port_not_active_in_time_is_fatal_when_configured() {
    let t = setup();
    t.neutron.activate_on_bind(false);
    let net = id("net-inactive");
    let pools = t
        .network_create(&net, "10.23.0.0/24", "10.23.0.1", &[])
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let err = t
        .run(&net, &id("ep-inactive"), &pools.0, "", &mac(3))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("did not become active"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // Polling is cheap: a handful of requests in 2 s, not one per 100 ms.
    assert!(
        t.neutron.count("get_port") <= 8,
        "{}",
        t.neutron.count("get_port")
    );
    assert!(t.binding.bound_ports().is_empty(), "unplugged on failure");
    assert!(t.ports_on(&t.network_of(&net).id).is_empty());

    // Not fatal: the container starts anyway.
    let mut cfg = config();
    cfg.vif_plugging_is_fatal = false;
    cfg.vif_plugging_timeout = std::time::Duration::from_millis(300);
    let t2 = setup_with(cfg);
    t2.neutron.activate_on_bind(false);
    let pools = t2
        .network_create(&net, "10.23.0.0/24", "10.23.0.1", &[])
        .await
        .unwrap();
    t2.run(&net, &id("ep-inactive"), &pools.0, "", &mac(3))
        .await
        .unwrap();
}

#[tokio::test]
async fn teardown_collects_errors_and_stays_retryable() {
    let t = setup();
    let net = id("net-td");
    let pools = t
        .network_create(&net, "10.24.0.0/24", "10.24.0.1", &[])
        .await
        .unwrap();
    let ep = id("ep-td");
    let addr = t.run(&net, &ep, &pools.0, "", &mac(4)).await.unwrap();
    t.binding.fail_next_unbind("ovs-vsctl timed out");
    let err = t.driver.delete_endpoint(&net, &ep).await.unwrap_err();
    assert!(err.to_string().contains("ovs-vsctl timed out"), "{err}");
    // Docker goes on with ReleaseAddress; the endpoint can still be cleaned on a retry.
    t.rm(&net, &ep, &pools.0, &addr).await;
    t.network_rm(&net, &[pools]).await;
    assert!(t.neutron.is_empty());
}
