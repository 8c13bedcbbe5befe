//! Reservations no endpoint ever took (the daemon died between RequestAddress and
//! CreateEndpoint, so Docker released nothing): a restarted daemon's sweep deletes them after
//! seeing them twice, never one this daemon holds, and `docker network rm` deletes those on the
//! network it removes.

mod common;

use common::*;
use kuryr_driver::constants::*;
use kuryr_driver::*;

fn without_pools() -> kuryr_config::DriverConfig {
    let mut cfg = config();
    cfg.pool = None;
    cfg
}

/// One sweep of `t`'s daemon: the ports it deleted.
async fn sweep(t: &T, watch: &mut OrphanWatch) -> Vec<String> {
    t.driver.ports().sweep_orphans(watch).await.unwrap()
}

/// A network and one address reserved on it (the port made, CreateEndpoint not yet called).
/// Returns the Neutron network id, the port id and the address Docker got.
async fn reserved(t: &T, net: &str, cidr: &str) -> (String, String, String) {
    let (pool_id, _, _) = t.network_create(net, cidr, "", &[]).await.unwrap();
    let addr = t.any_address(&pool_id).await;
    let n = t.network_of(net);
    let ports: Vec<_> = t
        .ports_on(&n.id)
        .into_iter()
        .filter(|p| p.name == UNBOUND_PORT_NAME)
        .collect();
    assert_eq!(ports.len(), 1);
    (n.id, ports[0].id.clone(), addr)
}

#[tokio::test]
async fn a_restarted_daemon_deletes_a_reservation_seen_in_two_sweeps() {
    let t = setup_with(without_pools());
    let (_, port, _) = reserved(&t, &id("orphan-sweep"), "10.40.0.0/24").await;
    // The daemon that made it still holds it: never an orphan.
    let mut watch = OrphanWatch::default();
    for _ in 0..3 {
        assert!(sweep(&t, &mut watch).await.is_empty());
    }
    // Killed and restarted: the first sweep only remembers, the second deletes.
    let t2 = setup_over(&t, without_pools());
    let mut watch = OrphanWatch::default();
    assert!(sweep(&t2, &mut watch).await.is_empty());
    assert!(t2.neutron.ports().iter().any(|p| p.id == port));
    let deleted = sweep(&t2, &mut watch).await;
    assert_eq!(deleted, vec![port.clone()]);
    assert!(!t2.neutron.ports().iter().any(|p| p.id == port));
}

#[tokio::test]
async fn a_reservation_taken_between_two_sweeps_is_kept() {
    let t = setup_with(without_pools());
    let net = id("orphan-taken");
    let (_, port, addr) = reserved(&t, &net, "10.41.0.0/24").await;
    // Restarted; the first sweep sees the reservation; Docker's retried CreateEndpoint then
    // takes it; the second sweep keeps it.
    let t2 = setup_over(&t, without_pools());
    let mut watch = OrphanWatch::default();
    sweep(&t2, &mut watch).await;
    let ep = id("orphan-taken-ep");
    t2.driver
        .create_endpoint(&create_ep_req(&net, &ep, &addr, "", ""))
        .await
        .unwrap();
    assert!(sweep(&t2, &mut watch).await.is_empty());
    // Also from a third daemon that never held it: it carries its endpoint's tags now.
    let t3 = setup_over(&t, without_pools());
    let mut watch = OrphanWatch::default();
    for _ in 0..2 {
        assert!(sweep(&t3, &mut watch).await.is_empty());
    }
    assert!(t.neutron.ports().iter().any(|p| p.id == port));
}

#[tokio::test]
async fn network_rm_deletes_the_reservations_on_it() {
    let t = setup_with(without_pools());
    let net = id("orphan-netrm");
    let (nid, port, _) = reserved(&t, &net, "10.42.0.0/24").await;
    let t2 = setup_over(&t, without_pools());
    t2.driver.delete_network(&net_id_req(&net)).await.unwrap();
    assert!(!t2.neutron.ports().iter().any(|p| p.id == port));
    assert!(!t2.neutron.networks().iter().any(|n| n.id == nid));
}
