//! The Neutron requests `docker network create` and `docker network rm` cost, exactly, in Docker's
//! order (RequestPool, gateway RequestAddress, CreateNetwork; gateway ReleaseAddress,
//! ReleasePool, DeleteNetwork), with and without `tag-creation`, and after a restart (empty
//! memory, Neutron asked). The fake records what the HTTP client sends: a tagged create is two
//! requests, as Neutron refuses tags in the create body of networks, subnets and subnetpools.

mod common;

use common::*;
use kuryr_driver::constants::*;
use kuryr_openstack::neutron::{extensions, NeutronApi, NewNetwork, NewSubnet, ResourceKind};

const WITHOUT_TAG_CREATION: &[&str] = &[
    extensions::STANDARD_ATTR_TAG,
    extensions::PORT_BINDING,
    extensions::SUBNET_ALLOCATION,
];

/// A driver over a Neutron with or without `tag-creation`, told the extensions as the server
/// tells it at start-up.
fn stack(tag_creation: bool) -> T {
    let t = setup();
    let mut aliases = WITHOUT_TAG_CREATION.to_vec();
    if tag_creation {
        aliases.push(extensions::TAG_CREATION);
    }
    t.neutron.set_extensions(&aliases);
    t.driver.learn_extensions(&aliases);
    t
}

/// The requests since the last call, then forgets them.
fn requests(t: &T) -> Vec<&'static str> {
    let ops = t.neutron.calls().into_iter().map(|c| c.op).collect();
    t.neutron.reset_calls();
    ops
}

/// What `docker network create --subnet 10.30.0.0/24 --gateway 10.30.0.1` costs.
const CREATE: &[&str] = &[
    // RequestPool: is there a kuryrPool-10.30.0.0/24 already? No: make it.
    "list_subnetpools",
    "create_subnetpool",
    // CreateNetwork: no look-up (the pool was just made for this network), the network and its
    // tags (a second request: Neutron refuses them in the create), the subnet.
    "create_network",
    "replace_tags",
    "create_subnet",
];

/// What `docker network rm` costs right after: the gateway's release looks for a port holding
/// it; DeleteNetwork looks for this host's reservations no endpoint took (a daemon killed
/// between RequestAddress and its answer leaves one that Docker never releases), and knows the
/// network, its subnet and its Kuryr pool; ReleasePool knows the pool still serves the
/// network's subnet.
const RM: &[&str] = &[
    "list_ports",
    "list_ports",
    "delete_network",
    "delete_subnetpool",
];

#[tokio::test]
async fn network_create_and_rm_cost_five_and_four_requests() {
    for tag_creation in [true, false] {
        let t = stack(tag_creation);
        let net = id("net-req");
        let pools = t
            .network_create(&net, "10.30.0.0/24", "10.30.0.1", &[])
            .await
            .unwrap();
        assert_eq!(requests(&t), CREATE, "tag-creation {tag_creation}");
        t.network_rm(&net, &[pools]).await;
        assert_eq!(requests(&t), RM, "tag-creation {tag_creation}");
        assert!(t.neutron.is_empty(), "tag-creation {tag_creation}");
    }
    // Not told the extensions: neither verb needs them.
    let t = setup();
    let net = id("net-req");
    let pools = t
        .network_create(&net, "10.30.0.0/24", "10.30.0.1", &[])
        .await
        .unwrap();
    assert_eq!(requests(&t), CREATE);
    t.network_rm(&net, &[pools]).await;
    assert_eq!(requests(&t), RM);
}

#[tokio::test]
async fn a_restarted_daemon_asks_neutron_and_deletes_the_same() {
    let t = stack(true);
    let net = id("net-restart-rm");
    let pools = t
        .network_create(&net, "10.31.0.0/24", "10.31.0.1", &[])
        .await
        .unwrap();
    let t = t.restart();
    t.neutron.reset_calls();
    t.network_rm(&net, &[pools]).await;
    assert_eq!(
        requests(&t),
        [
            // ReleaseAddress (gateway): the pool's subnet, then a port holding the address.
            "list_subnets",
            "list_ports",
            // ReleasePool: what the pool is (its subnet was just read: in use, kept).
            "get_subnetpool",
            // DeleteNetwork: the network by its tags (its one subnet was just read), orphaned
            // reservations on it.
            "list_networks",
            "list_ports",
            "delete_network",
            "delete_subnetpool",
        ]
    );
    assert!(t.neutron.is_empty());

    // Restarted between RequestPool and CreateNetwork: CreateNetwork looks everything up.
    let t = stack(true);
    let net = id("net-restart-mk");
    let pool = t
        .driver
        .request_pool(&pool_req("10.32.0.0/24", "", false, &[]))
        .await
        .unwrap();
    let t = t.restart();
    t.neutron.reset_calls();
    t.driver
        .create_network(&net_req(&net, &[("10.32.0.0/24", "10.32.0.1/24")], &[]))
        .await
        .unwrap();
    assert_eq!(
        requests(&t),
        [
            "list_networks",
            "create_network",
            "replace_tags",
            // The pool for the subnet, by its name.
            "list_subnetpools",
            "create_subnet"
        ]
    );
    let s = &t.neutron.subnets()[0];
    assert_eq!(s.subnetpool_id.as_deref(), Some(pool.pool_id.as_str()));
}

/// libnetwork's order (DeleteNetwork first, then ReleasePool) as the Python original documents
/// it: the pool is deleted with the network and ReleasePool finds it gone.
#[tokio::test]
async fn delete_network_before_release_pool_leaves_nothing() {
    let t = stack(true);
    let net = id("net-order");
    let (pool_id, _, gw) = t
        .network_create(&net, "10.33.0.0/24", "10.33.0.1", &[])
        .await
        .unwrap();
    t.neutron.reset_calls();
    t.driver
        .release_address(&release_addr_req(&pool_id, &gw))
        .await
        .unwrap();
    t.driver.delete_network(&net_id_req(&net)).await.unwrap();
    t.driver
        .release_pool(&release_pool_req(&pool_id))
        .await
        .unwrap();
    assert_eq!(
        requests(&t),
        [
            "list_ports",
            "list_ports",
            "delete_network",
            "delete_subnetpool",
            "get_subnetpool"
        ]
    );
    assert!(t.neutron.is_empty());
}

/// A user's network adopted with `-o neutron.net.name`: Kuryr's three tags are added to the
/// owner's in one request with `tag-creation` (one each without), and removed one by one at rm,
/// so that the owner's tags, even those added meanwhile, stay.
#[tokio::test]
async fn adopting_a_network_adds_kuryrs_tags_in_one_request() {
    for (tag_creation, adds) in [(true, ["add_tags"].as_slice()), (false, &["add_tag"; 3])] {
        let t = stack(tag_creation);
        let user = t
            .neutron
            .create_network(&NewNetwork {
                name: Some("user-net".into()),
                tags: Some(vec!["owner".into()]),
                ..Default::default()
            })
            .await
            .unwrap();
        t.neutron.reset_calls();
        let net = id("net-adopt");
        let pools = t
            .network_create(
                &net,
                "10.34.0.0/24",
                "10.34.0.1",
                &[(OPT_NET_NAME, "user-net")],
            )
            .await
            .unwrap();
        let mut want = vec!["list_subnetpools", "create_subnetpool", "list_networks"];
        want.extend(adds);
        want.extend(["list_subnets", "create_subnet"]);
        assert_eq!(requests(&t), want, "tag-creation {tag_creation}");

        t.neutron
            .add_tag(ResourceKind::Network, &user.id, "added-meanwhile")
            .await
            .unwrap();
        t.neutron.reset_calls();
        t.network_rm(&net, &[pools]).await;
        assert_eq!(
            requests(&t),
            [
                "list_ports",
                "list_ports",
                "delete_subnet",
                "remove_tag",
                "remove_tag",
                "remove_tag",
                "delete_subnetpool"
            ],
            "tag-creation {tag_creation}"
        );
        let n = t.neutron.get_network(&user.id).await.unwrap();
        assert_eq!(n.tags, ["owner", "added-meanwhile"]);
        assert!(t.neutron.subnetpools().is_empty());
    }
}

/// The extensions are read once per process: by the server at start-up, or at the first
/// adoption when it could not.
#[tokio::test]
async fn extensions_are_read_once() {
    let t = setup();
    for (n, cidr) in [(1u8, "10.35.1.0/24"), (2, "10.35.2.0/24")] {
        let name = format!("user-net-{n}");
        t.neutron
            .create_network(&NewNetwork {
                name: Some(name.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        let gw = cidr.replace(".0/24", ".1");
        t.network_create(
            &id(&format!("net-ext-{n}")),
            cidr,
            &gw,
            &[(OPT_NET_NAME, &name)],
        )
        .await
        .unwrap();
    }
    assert_eq!(t.neutron.count("list_extensions"), 1);
    assert_eq!(t.neutron.count("add_tags"), 2);
}

/// Another owner's subnet added to a Kuryr network after its create is no reason to ask: the
/// network goes with its subnets, and only Kuryr's subnets name pools to delete.
#[tokio::test]
async fn a_subnet_added_by_someone_else_is_deleted_with_the_network() {
    let t = stack(true);
    let net = id("net-extra");
    let pools = t
        .network_create(&net, "10.36.0.0/24", "10.36.0.1", &[])
        .await
        .unwrap();
    let n = t.network_of(&net);
    t.neutron
        .create_subnet(&NewSubnet {
            network_id: n.id.clone(),
            ip_version: 4,
            cidr: Some("10.37.0.0/24".parse().unwrap()),
            name: Some("someone-elses".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    t.neutron.reset_calls();
    t.network_rm(&net, &[pools]).await;
    assert_eq!(requests(&t), RM);
    assert!(t.neutron.is_empty());
}

/// A CreateNetwork that failed may have left something (an undo that failed too, a request that
/// timed out): the same call again looks in Neutron before making anything.
#[tokio::test]
async fn a_create_retried_after_a_failure_looks_first() {
    let t = stack(true);
    let net = id("net-retry");
    t.driver
        .request_pool(&pool_req("10.38.0.0/24", "", false, &[]))
        .await
        .unwrap();
    t.neutron.fail_next(
        "create_subnet",
        kuryr_openstack::neutron::NeutronError::from_status(
            500,
            kuryr_openstack::neutron::ErrorContext::new("POST", "/v2.0/subnets", "boom"),
        ),
    );
    let req = net_req(&net, &[("10.38.0.0/24", "10.38.0.1/24")], &[]);
    t.driver.create_network(&req).await.unwrap_err();
    t.neutron.reset_calls();
    t.driver.create_network(&req).await.unwrap();
    assert_eq!(
        requests(&t),
        [
            "list_networks",
            "create_network",
            "replace_tags",
            "create_subnet"
        ]
    );
    assert_eq!(t.neutron.networks().len(), 1);
}
