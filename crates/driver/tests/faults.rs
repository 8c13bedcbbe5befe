//! Neutron failures (409, 500, timeout) and host failures at every step: the call fails with a
//! clear message, what it created is unwound, and after Docker's own rollback nothing is left.

mod common;

use common::*;
use kuryr_driver::{DriverError, ErrorClass};
use kuryr_openstack::neutron::{ErrorContext, NeutronApi, NeutronError};

/// One injected Neutron failure and what Docker must see of it.
struct Failure {
    what: &'static str,
    error: NeutronError,
    /// Neutron's message, which the driver's error ends with.
    message: &'static str,
    /// The class Docker gets: 409 is a conflict; a 5xx or a timeout means "try again later".
    class: ErrorClass,
    /// The HTTP status kept in the error's source (`None` for a timeout).
    status: Option<u16>,
}

fn failures() -> Vec<Failure> {
    vec![
        Failure {
            what: "409",
            error: NeutronError::from_status(
                409,
                ErrorContext::new("X", "/v2.0/x", "injected conflict").with_kind("Conflict"),
            ),
            message: "injected conflict",
            class: ErrorClass::Conflict,
            status: Some(409),
        },
        Failure {
            what: "500",
            error: NeutronError::from_status(
                500,
                ErrorContext::new("X", "/v2.0/x", "injected server error"),
            ),
            message: "injected server error",
            class: ErrorClass::Unavailable,
            status: Some(500),
        },
        Failure {
            what: "timeout",
            error: NeutronError::Timeout(ErrorContext::new("X", "/v2.0/x", "injected timeout")),
            message: "injected timeout",
            class: ErrorClass::Unavailable,
            status: None,
        },
    ]
}

/// The error Docker gets for an injected Neutron failure: `<the Neutron call>: <Neutron's
/// message>` (nothing else: no rollback failure, no HTTP method or path), of the failure's class,
/// with Neutron's error kept as the source.
fn assert_reports(err: &DriverError, f: &Failure, call: &str, label: &str) {
    let text = err.to_string();
    assert!(
        text.starts_with(call),
        "{label}: {text:?} does not name the call {call:?}"
    );
    assert!(
        text.ends_with(&format!(": {}", f.message)),
        "{label}: {text:?} does not end with Neutron's message {:?}",
        f.message
    );
    assert!(!text.contains("rollback failed"), "{label}: {text}");
    assert!(!text.contains("/v2.0/"), "{label}: {text}");
    assert_eq!(err.class(), f.class, "{label}: {text}");
    let source = err
        .neutron_source()
        .unwrap_or_else(|| panic!("{label}: Neutron's error is kept: {err:?}"));
    assert_eq!(source, &f.error, "{label}");
    assert_eq!(source.status(), f.status, "{label}");
    assert_eq!(err.is_conflict(), f.status == Some(409), "{label}");
    assert!(!err.is_not_found(), "{label}");
}

/// Every Neutron operation `docker network create` uses, by its position, and how the error
/// names the call (the network is `net-fault`, the pool `10.20.0.0/24`).
const NETWORK_CREATE_OPS: &[(&str, usize, &str)] = &[
    (
        "list_subnetpools",
        1,
        "list subnetpools named kuryrPool-10.20.0.0/24",
    ),
    (
        "create_subnetpool",
        1,
        "create subnetpool kuryrPool-10.20.0.0/24",
    ),
    // No look-up of the network: RequestPool just made its pool, so it cannot exist yet.
    ("create_network", 1, "create network kuryr-net-6e65742d"),
    // The network's tags, set right after its create (Neutron refuses them in the body): on
    // failure the network is deleted at once, never left untagged where no one would find it.
    ("replace_tags", 1, "create network kuryr-net-6e65742d"),
    ("create_subnet", 1, "create subnet 10.20.0.0/24 on network "),
];

#[tokio::test]
async fn network_create_failures_leave_nothing() {
    for (op, nth, call) in NETWORK_CREATE_OPS {
        for f in failures() {
            let what = f.what;
            let t = setup();
            t.neutron.fail_nth(op, *nth, f.error.clone());
            let net = id("net-fault");
            let r = t
                .network_create(&net, "10.20.0.0/24", "10.20.0.1", &[])
                .await;
            let err = r.expect_err(&format!("{op} {what} must fail the create"));
            assert_reports(&err, &f, call, &format!("{op} {what}"));
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

/// Adopting a network adds Kuryr's tags to the owner's (all at once with `tag-creation`, one by
/// one without, or when the extensions cannot be read); when that fails half-way the network is
/// left with exactly the owner's tags.
#[tokio::test]
async fn a_failed_adoption_leaves_the_owners_tags_alone() {
    let cases: &[(&str, bool, &str, usize)] = &[
        ("with tag-creation", true, "add_tags", 1),
        ("without tag-creation", false, "add_tag", 2),
    ];
    for (label, tag_creation, op, nth) in cases {
        for f in failures() {
            let what = f.what;
            let t = setup();
            if !tag_creation {
                t.neutron
                    .set_extensions(&["binding", "subnet_allocation", "standard-attr-tag"]);
            }
            let owner = vec!["owner-tag".to_string()];
            let user_net = t
                .neutron
                .create_network(&kuryr_openstack::neutron::NewNetwork {
                    name: Some("user-net".into()),
                    tags: Some(owner.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
            t.neutron.fail_nth(op, *nth, f.error.clone());
            let net = id("net-fault");
            let err = t
                .network_create(
                    &net,
                    "10.20.0.0/24",
                    "10.20.0.1",
                    &[(kuryr_driver::constants::OPT_NET_NAME, "user-net")],
                )
                .await
                .expect_err(&format!("{label}: {op} {what} must fail the create"));
            assert_reports(
                &err,
                &f,
                &format!("tag network {}", user_net.id),
                &format!("{label}: {op} {what}"),
            );
            let n = &t.neutron.networks()[0];
            assert_eq!(n.tags, owner, "{label} {what}");
            assert!(t.neutron.subnetpools().is_empty(), "{label} {what}");
        }
    }
    // The extensions cannot be read: the adoption goes on, one tag at a time.
    let t = setup();
    t.neutron
        .fail_nth("list_extensions", 1, failures()[1].error.clone());
    t.neutron
        .create_network(&kuryr_openstack::neutron::NewNetwork {
            name: Some("user-net".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let net = id("net-noext");
    let pools = t
        .network_create(
            &net,
            "10.20.0.0/24",
            "10.20.0.1",
            &[(kuryr_driver::constants::OPT_NET_NAME, "user-net")],
        )
        .await
        .unwrap();
    assert_eq!(t.network_of(&net).tags.len(), 3);
    assert_eq!(t.neutron.count("add_tag"), 3);
    t.network_rm(&net, &[pools]).await;
    assert!(t.neutron.networks()[0].tags.is_empty());
}

/// Every Neutron operation `docker run` uses, by its position, and how the error names the
/// call (`None`: the operation may fail without failing the start).
const RUN_OPS: &[(&str, usize, Option<&str>)] = &[
    ("list_ports", 1, Some("list ports")),
    ("create_port", 1, Some("create port on network ")),
    ("update_port", 1, None),
    ("replace_tags", 1, Some("set tags of port ")),
    ("get_port", 1, None),
    ("list_subnets", 1, Some("list subnets")),
];

#[tokio::test]
async fn container_start_failures_leave_nothing() {
    for (op, nth, call) in RUN_OPS {
        for f in failures() {
            let what = f.what;
            let t = setup();
            let net = id("net-run-fault");
            let pools = t
                .network_create(&net, "10.21.0.0/24", "10.21.0.1", &[])
                .await
                .unwrap();
            // Start from a cold cache, as a restarted daemon would.
            let t = t.restart();
            let n = t.network_of(&net);
            t.neutron.fail_nth(op, *nth, f.error.clone());
            let ep = id("ep-run-fault");
            // A MAC Docker did not generate, so the MAC look-up is on the path too.
            match t.run(&net, &ep, &pools.0, "", "fa:16:3e:00:00:01").await {
                Err(err) => {
                    let call =
                        call.unwrap_or_else(|| panic!("{op} {what} failed the start: {err}"));
                    assert_reports(&err, &f, call, &format!("{op} {what}"));
                    if *op == "create_port" {
                        assert!(
                            err.to_string()
                                .starts_with(&format!("create port on network {}:", n.id)),
                            "{err}"
                        );
                    }
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
                    assert!(call.is_none(), "{op} {what} did not fail the start");
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
    // A fault of this host, named by the step and the port: not Neutron's, not retryable.
    let text = err.to_string();
    assert!(text.starts_with("plug port "), "{text}");
    assert!(text.ends_with(": no such bridge br-int"), "{text}");
    assert!(!text.contains("rollback failed"), "{text}");
    assert!(matches!(err, DriverError::Binding { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Internal);
    assert!(err.neutron_source().is_none());
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
    // Names the port, the wait and the status seen; Docker may try again later.
    let text = err.to_string();
    assert!(text.starts_with("neutron port "), "{text}");
    assert!(text.contains("did not become active within 2s"), "{text}");
    assert!(text.contains("(status DOWN)"), "{text}");
    assert!(matches!(err, DriverError::Timeout(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unavailable);
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
    let err = t
        .driver
        .delete_endpoint(&ep_req(&net, &ep))
        .await
        .unwrap_err();
    // Names the endpoint and the failed step; a host fault, so Docker keeps the endpoint.
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("delete endpoint {ep}: unplug port ")),
        "{text}"
    );
    assert!(text.ends_with(": ovs-vsctl timed out"), "{text}");
    match &err {
        DriverError::Teardown { errors, .. } => {
            assert_eq!(errors.len(), 1, "{err:?}");
            assert!(matches!(errors[0], DriverError::Binding { .. }), "{err:?}");
        }
        other => panic!("a teardown error: {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Internal);
    // Docker goes on with ReleaseAddress; the endpoint can still be cleaned on a retry.
    t.rm(&net, &ep, &pools.0, &addr).await;
    t.network_rm(&net, &[pools]).await;
    assert!(t.neutron.is_empty());
}

/// Neutron failing (503) when Docker removes a container and then its network: Docker forgets
/// both whatever the driver answers, so the driver keeps the tear-downs and finishes them once
/// Neutron answers again. An address handed out again meanwhile is left to its new holder.
#[tokio::test]
async fn teardowns_neutron_failed_are_finished_when_it_answers() {
    let t = setup();
    let net = id("net-later");
    let pools = t
        .network_create(&net, "10.25.0.0/24", "10.25.0.1", &[])
        .await
        .unwrap();
    let (ep, ep2) = (id("ep-later"), id("ep-later2"));
    let addr = t.run(&net, &ep, &pools.0, "", &mac(5)).await.unwrap();
    let down = || NeutronError::from_status(503, ErrorContext::new("X", "/v2.0/x", "down"));
    for op in [
        "delete_port",
        "get_port",
        "list_ports",
        "delete_network",
        "list_networks",
    ] {
        t.neutron.fail_always(op, down());
    }
    // `docker rm`: Leave and DeleteEndpoint need only the host; ReleaseAddress fails.
    t.driver.leave(&ep_req(&net, &ep));
    let _ = t.driver.delete_endpoint(&ep_req(&net, &ep)).await;
    let err = t
        .driver
        .release_address(&release_addr_req(&pools.0, &addr))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert_eq!(t.driver.deferred_teardowns(), 1);
    // Still down: kept for the next round.
    assert_eq!(t.driver.run_deferred_teardowns().await, 1);
    t.neutron.clear_faults();
    assert_eq!(t.driver.run_deferred_teardowns().await, 0);
    assert_eq!(t.driver.deferred_teardowns(), 0);
    let containers = || {
        t.neutron
            .ports()
            .into_iter()
            .filter(|p| p.device_owner == "compute:kuryr")
            .count()
    };
    assert_eq!(containers(), 0, "the container's port is gone");

    // The same address released again later while a new container holds it: left alone.
    let addr2 = t.run(&net, &ep2, &pools.0, "", &mac(6)).await.unwrap();
    t.neutron.fail_always("delete_port", down());
    t.neutron.fail_always("list_ports", down());
    let _ = t
        .driver
        .release_address(&release_addr_req(&pools.0, &addr2))
        .await;
    t.neutron.clear_faults();
    // The release came while ep2 still held it (a stale one): the retry must not take it.
    assert_eq!(t.driver.run_deferred_teardowns().await, 0);
    assert_eq!(containers(), 1, "ep2 keeps its port");
    t.rm(&net, &ep2, &pools.0, &addr2).await;

    // `docker network rm` with Neutron down: DeleteNetwork fails, and is finished later.
    t.neutron.fail_always("list_networks", down());
    t.neutron.fail_always("delete_network", down());
    let _ = t.driver.release_pool(&release_pool_req(&pools.0)).await;
    let err = t
        .driver
        .delete_network(&net_id_req(&net))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert!(t.driver.deferred_teardowns() >= 1);
    t.neutron.clear_faults();
    assert_eq!(t.driver.run_deferred_teardowns().await, 0);
    assert!(t.neutron.is_empty(), "nothing left once Neutron answers");
}

/// A create Neutron did whose answer was lost (the connection reset after the request went
/// out): the driver finds the network, subnet or subnetpool by its unique name, gives it the
/// tags the lost step would have added, and goes on; `docker network create` succeeds, and
/// `docker network rm` leaves nothing.
#[tokio::test]
async fn creates_whose_answer_was_lost_are_found_and_used() {
    for (i, op) in ["create_subnetpool", "create_network", "create_subnet"]
        .into_iter()
        .enumerate()
    {
        let t = setup();
        let net = id(&format!("net-lost{i}"));
        t.neutron.lose_next_answer(op);
        let pools = t
            .network_create(&net, "10.26.0.0/24", "10.26.0.1", &[])
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(t.neutron.networks().len(), 1, "{op}: one network");
        assert_eq!(t.neutron.subnetpools().len(), 1, "{op}: one subnetpool");
        // Found by Docker's id, as every later call finds it.
        let n = t.network_of(&net);
        assert_eq!(n.subnets.len(), 1, "{op}");
        t.network_rm(&net, &[pools]).await;
        assert!(t.neutron.is_empty(), "{op}: nothing left");
    }
}

/// Tear-downs Neutron failed are kept in the state directory: a daemon restarted while Neutron
/// is still down finishes them once it answers.
#[tokio::test]
async fn teardowns_neutron_failed_outlive_a_restart() {
    let dir = std::env::temp_dir().join(format!("kuryr-deferred-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    cfg.state_path = Some(dir.clone());
    let t = setup_with(cfg.clone());
    let net = id("net-restart");
    let pools = t
        .network_create(&net, "10.26.0.0/24", "10.26.0.1", &[])
        .await
        .unwrap();
    let down = || NeutronError::from_status(503, ErrorContext::new("X", "/v2.0/x", "down"));
    t.neutron.fail_always("list_networks", down());
    t.neutron.fail_always("delete_network", down());
    let _ = t.driver.release_pool(&release_pool_req(&pools.0)).await;
    let err = t
        .driver
        .delete_network(&net_id_req(&net))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert!(t.driver.deferred_teardowns() >= 1);
    // Killed; the next daemon starts while Neutron is still down.
    let t2 = setup_over(&t, cfg.clone());
    drop(t);
    assert!(
        t2.driver.deferred_teardowns() >= 1,
        "the next daemon knows them"
    );
    assert!(t2.driver.run_deferred_teardowns().await >= 1);
    t2.neutron.clear_faults();
    assert_eq!(t2.driver.run_deferred_teardowns().await, 0);
    assert!(t2.neutron.is_empty(), "nothing left once Neutron answers");
    // Done: a third daemon has nothing to run.
    let t3 = setup_over(&t2, cfg);
    assert_eq!(t3.driver.deferred_teardowns(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
