//! A daemon killed after CreateNetwork's or RequestPool's work, before Docker had the answer:
//! the restarted daemon finds the calls it recorded in its state directory and undoes them
//! once Docker shows it never had the answer (it releases the network's pool without
//! DeleteNetwork), or, for a pool Docker was never given, once nothing used it for a while.

mod common;

use std::time::Duration;

use common::*;
use kuryr_driver::*;
use kuryr_plugin_api::ipam::RequestPoolResponse;

fn with_state(tag: &str) -> (DriverConfig, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("kuryr-state-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    cfg.pool = None;
    cfg.state_path = Some(dir.clone());
    (cfg, dir)
}

/// Docker's rollback of a network create whose CreateNetwork failed (here: its answer was lost).
async fn docker_rolls_back(t: &T, pools: &[(String, String, String)]) {
    for (pool_id, _, gw) in pools {
        t.driver
            .release_address(&release_addr_req(pool_id, gw))
            .await
            .unwrap();
        t.driver
            .release_pool(&release_pool_req(pool_id))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_network_docker_never_heard_of_goes_when_docker_releases_its_pool() {
    let (cfg, dir) = with_state("net-lost");
    let t = setup_with(cfg.clone());
    let net = id("lost-create");
    // RequestPool, RequestAddress and CreateNetwork ran; the daemon died before answering the
    // last one (the server never told the driver it answered).
    let pools = t
        .network_create_full(&net, &[("10.70.1.0/24", "", "")], &[], &[], &[])
        .await
        .unwrap();
    let nid = t.network_of(&net).id;
    let t2 = setup_over(&t, cfg);
    docker_rolls_back(&t2, &pools).await;
    assert!(
        !t2.neutron.networks().iter().any(|n| n.id == nid),
        "the network docker never had is deleted"
    );
    assert!(t2.neutron.subnets().iter().all(|s| s.network_id != nid));
    assert!(
        !t2.neutron
            .subnetpools()
            .iter()
            .any(|p| p.name.ends_with("10.70.1.0/24")),
        "and its pool"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_network_docker_has_is_kept_when_its_pool_is_released_before_delete_network() {
    let (cfg, dir) = with_state("net-answered");
    let t = setup_with(cfg.clone());
    let net = id("answered-create");
    let pools = t
        .network_create_full(&net, &[("10.70.2.0/24", "", "")], &[], &[], &[])
        .await
        .unwrap();
    // The server gave Docker both answers.
    for (pool_id, cidr, _) in &pools {
        t.driver.request_pool_answered(&RequestPoolResponse::new(
            pool_id.parse().unwrap(),
            cidr.parse().unwrap(),
        ));
    }
    t.driver.create_network_answered(&net_req(&net, &[], &[]));
    let nid = t.network_of(&net).id;
    // Restarted, then `docker network rm`: ReleasePool comes before DeleteNetwork.
    let t2 = setup_over(&t, cfg);
    docker_rolls_back(&t2, &pools).await;
    assert!(
        t2.neutron.networks().iter().any(|n| n.id == nid),
        "a network docker has stays until DeleteNetwork"
    );
    t2.driver.delete_network(&net_id_req(&net)).await.unwrap();
    assert!(!t2.neutron.networks().iter().any(|n| n.id == nid));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_pool_docker_was_never_given_goes_after_the_grace_unless_used() {
    let (cfg, dir) = with_state("pool-lost");
    let t = setup_with(cfg.clone());
    // Two pools made, both answers lost; a network is then made on the second one (the answer
    // got out just before the kill, and Docker went on).
    let lost = t
        .driver
        .request_pool(&pool_req("10.70.3.0/24", "", false, &[]))
        .await
        .unwrap();
    let used = t
        .network_create("ab".repeat(32).as_str(), "10.70.4.0/24", "", &[])
        .await;
    used.unwrap();
    let t2 = setup_over(&t, cfg);
    let checks = t2
        .driver
        .spawn_unanswered_pool_checks(Duration::ZERO)
        .expect("recorded pools to check");
    checks.await.unwrap();
    let names: Vec<String> = t2
        .neutron
        .subnetpools()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with("10.70.3.0/24")),
        "pool {} left: {names:?}",
        lost.pool_id
    );
    assert!(
        names.iter().any(|n| n.ends_with("10.70.4.0/24")),
        "{names:?}"
    );
    // Nothing is recorded any more.
    let t3 = setup_over(&t, t.cfg.clone());
    assert!(t3
        .driver
        .spawn_unanswered_pool_checks(Duration::ZERO)
        .is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
