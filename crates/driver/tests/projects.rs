//! Kuryr with a Keystone token scoped to its project, when Neutron lists every project's
//! resources to it (an admin's token does): another project's networks, pools, groups and
//! ports are never read, adopted or deleted, even with the same names and Kuryr's own tags.

mod common;

use common::*;
use kuryr_driver::constants::*;
use kuryr_driver::*;
use kuryr_openstack::neutron::{
    NeutronApi, NewNetwork, NewPort, NewSecurityGroup, NewSubnet, NewSubnetPool,
};

const OTHER: &str = "other_project_id";

/// A driver whose token names the fake's project, with the deployer's default pools in it.
async fn scoped() -> T {
    let t = setup();
    t.neutron.scope_token_to_project();
    t.default_pools().await;
    t
}

async fn their_network(t: &T, name: &str, shared: bool, tags: Vec<String>) -> String {
    let n = t
        .neutron
        .create_network(&NewNetwork {
            name: Some(name.into()),
            shared: Some(shared),
            project_id: Some(OTHER.into()),
            tags: (!tags.is_empty()).then_some(tags),
            ..Default::default()
        })
        .await
        .unwrap();
    n.id
}

#[tokio::test]
async fn another_projects_network_is_not_adopted_by_name_or_id_unless_shared() {
    let t = scoped().await;
    let theirs = their_network(&t, "theirs", false, vec![]).await;
    let by_name = t
        .network_create(
            &id("p-by-name"),
            "10.60.1.0/24",
            "",
            &[(OPT_NET_NAME, "theirs")],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(by_name.contains("does not exist"), "{by_name}");
    let by_id = t
        .network_create(
            &id("p-by-id"),
            "10.60.2.0/24",
            "",
            &[(OPT_NET_UUID, &theirs)],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        by_id.contains(OTHER) && by_id.contains("not shared"),
        "{by_id}"
    );
    // Shared with Kuryr's project: adopted, as a member of it would see it.
    let shared = their_network(&t, "theirs-shared", true, vec![]).await;
    t.network_create(
        &id("p-shared"),
        "10.60.3.0/24",
        "",
        &[(OPT_NET_NAME, "theirs-shared")],
    )
    .await
    .unwrap();
    assert_eq!(t.network_of(&id("p-shared")).id, shared);
    let untouched = t.neutron.get_network(&theirs).await.unwrap();
    assert!(untouched.tags.is_empty(), "{:?}", untouched.tags);
}

#[tokio::test]
async fn a_network_of_another_project_with_the_same_tags_is_left_alone() {
    let t = scoped().await;
    let net = id("p-same-tags");
    let tags = tags::docker_id_tags(&net);
    let theirs = their_network(&t, &net, false, tags.clone()).await;
    let pools = t
        .network_create(&net, "10.61.0.0/24", "", &[])
        .await
        .unwrap();
    let ours = t
        .neutron
        .networks()
        .into_iter()
        .filter(|n| n.id != theirs && tags.iter().all(|x| n.tags.contains(x)))
        .collect::<Vec<_>>();
    assert_eq!(ours.len(), 1, "kuryr made its own network: {ours:?}");
    assert_eq!(ours[0].project_id, t.neutron.project_id());
    t.network_rm(&net, &[pools]).await;
    let left = t.neutron.get_network(&theirs).await.unwrap();
    assert_eq!(left.tags, tags, "their network and its tags stay");
    assert!(!t.neutron.networks().iter().any(|n| n.id == ours[0].id));
}

#[tokio::test]
async fn a_subnetpool_of_another_project_with_the_default_name_is_not_used() {
    let t = scoped().await;
    let theirs = t
        .neutron
        .create_subnetpool(&NewSubnetPool {
            name: "kuryr".into(),
            prefixes: vec!["10.91.0.0/16".parse().unwrap()],
            default_prefixlen: Some(24),
            project_id: Some(OTHER.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // Without a pool: the default pool by name, Kuryr's, not the other project's.
    let net = id("p-default-pool");
    t.network_create(&net, "", "", &[]).await.unwrap();
    let n = t.network_of(&net);
    let subnets: Vec<_> = t
        .neutron
        .subnets()
        .into_iter()
        .filter(|s| s.network_id == n.id)
        .collect();
    assert_eq!(subnets.len(), 1);
    assert_ne!(
        subnets[0].subnetpool_id.as_deref(),
        Some(theirs.id.as_str())
    );
    assert!(
        subnets[0].cidr.to_string().starts_with("10.90."),
        "{subnets:?}"
    );
    // By id: refused.
    let err = t
        .network_create_full(
            &id("p-pool-id"),
            &[("10.91.7.0/24", "", "")],
            &[],
            &[],
            &[(OPT_POOL_UUID, theirs.id.as_str())],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not shared"), "{err}");
}

#[tokio::test]
async fn another_projects_security_group_is_not_found_by_name() {
    let t = scoped().await;
    t.neutron
        .create_security_group(&NewSecurityGroup {
            name: "theirs-sg".into(),
            project_id: Some(OTHER.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = t
        .network_create(
            &id("p-sg"),
            "10.62.0.0/24",
            "",
            &[(OPT_PORT_SECURITY_GROUPS, "theirs-sg")],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("theirs-sg"), "{err}");
}

#[tokio::test]
async fn another_projects_port_that_looks_like_an_orphan_reservation_is_kept() {
    let t = scoped().await;
    let net = their_network(&t, "theirs-ports", false, vec![]).await;
    let subnet = t
        .neutron
        .create_subnet(&NewSubnet {
            network_id: net.clone(),
            ip_version: 4,
            cidr: Some("10.63.0.0/24".parse().unwrap()),
            project_id: Some(OTHER.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let port = t
        .neutron
        .create_port(&NewPort {
            network_id: net,
            name: Some(UNBOUND_PORT_NAME.into()),
            device_owner: Some(DEVICE_OWNER.into()),
            binding_host_id: Some(HOST.into()),
            project_id: Some(OTHER.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut watch = OrphanWatch::default();
    for _ in 0..3 {
        let deleted = t.driver.ports().sweep_orphans(&mut watch).await.unwrap();
        assert!(deleted.is_empty(), "{deleted:?}");
    }
    assert!(t.neutron.ports().iter().any(|p| p.id == port.id));
    assert!(t.neutron.subnets().iter().any(|s| s.id == subnet.id));
}
