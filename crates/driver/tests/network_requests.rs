//! The Neutron requests `docker network create` and `docker network rm` cost, exactly, in Docker's
//! order (RequestPool, gateway RequestAddress, CreateNetwork; gateway ReleaseAddress,
//! ReleasePool, DeleteNetwork), with and without `tag-creation`, and after a restart (empty
//! memory, Neutron asked). The fake records what the HTTP client sends: a tagged create is two
//! requests, as Neutron refuses tags in the create body of networks, subnets and subnetpools.

mod common;

use common::*;
use kuryr_driver::constants::*;
use kuryr_driver::tags;
use kuryr_openstack::neutron::{
    extensions, FixedIpRequest, NeutronApi, NewNetwork, NewPort, NewSubnet, ResourceKind,
};
use kuryr_plugin_api::network::AllocateNetworkRequest;
use kuryr_plugin_api::Options;

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
/// it; DeleteNetwork reads the network's current tags (other Docker networks, on this host or
/// another, may have adopted it since) and knows its subnet and its Kuryr pool (and that no
/// earlier process left reservations on a network this one made); ReleasePool knows the pool
/// still serves the network's subnet.
const RM: &[&str] = &[
    "list_ports",
    "list_networks",
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
            "list_networks",
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
                "list_networks",
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
            // IPv6: Neutron refuses a pool-less IPv4 subnet beside one from a pool.
            network_id: n.id.clone(),
            ip_version: 6,
            cidr: Some("fd37::/64".parse().unwrap()),
            name: Some("someone-elses".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    t.neutron.reset_calls();
    t.network_rm(&net, &[pools]).await;
    // The network now lists a subnet this daemon never saw: its subnets are read.
    assert_eq!(
        requests(&t),
        [
            "list_ports",
            "list_networks",
            "list_subnets",
            "delete_network",
            "delete_subnetpool"
        ]
    );
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

/// Two Docker networks on one Neutron network (on one host here; one per host in the two-host
/// test): the one that made it, and one that adopted it by id. Whichever leaves first takes
/// only its own tags; the last one out deletes what Kuryr made.
#[tokio::test]
async fn a_shared_network_is_deleted_by_its_last_user_whichever_leaves_first() {
    for maker_leaves_first in [true, false] {
        let t = stack(true);
        // Seeds that make every part of the IDs in tags differ (lh, uh, the first 12 characters).
        let (maker, adopter) = (
            id("maker-shared-net:maker-tail"),
            id("adopt-shared-net:adopter-tail"),
        );
        let maker_pools = t
            .network_create(&maker, "10.38.0.0/24", "10.38.0.1", &[])
            .await
            .unwrap();
        let n = t.network_of(&maker);
        let adopter_pools = t
            .network_create(&adopter, "10.38.0.0/24", "", &[(OPT_NET_UUID, &n.id)])
            .await
            .unwrap();
        assert_eq!(t.network_of(&adopter).id, n.id);
        let (first, first_pools, last, last_pools) = if maker_leaves_first {
            (&maker, &maker_pools, &adopter, &adopter_pools)
        } else {
            (&adopter, &adopter_pools, &maker, &maker_pools)
        };
        t.network_rm(first, std::slice::from_ref(first_pools)).await;
        let left = t.network_of(last);
        assert_eq!(left.id, n.id, "still there for its other user");
        let first_tags = tags::docker_id_tags(first);
        assert!(
            !left.tags.iter().any(|t| first_tags.contains(t)),
            "the first one's tags are gone: {:?}",
            left.tags
        );
        assert_eq!(
            left.tags.contains(&TAG_NET_MADE.to_string()),
            maker_leaves_first,
            "marked as Kuryr's to delete only when its maker left: {:?}",
            left.tags
        );
        assert_eq!(t.neutron.subnets().len(), 1, "the shared subnet stays");
        t.network_rm(last, std::slice::from_ref(last_pools)).await;
        assert!(
            t.neutron.is_empty(),
            "maker first {maker_leaves_first}: {:?}",
            t.neutron.networks()
        );
    }
}

/// Swarm (global scope): the manager's AllocateNetwork makes the one Neutron network; every
/// node's CreateNetwork (several at once when a service starts) finds it; a node's
/// DeleteNetwork (its last task gone) leaves it; the manager's FreeNetwork deletes it, or, while
/// a node still stops a task, leaves it to the last node's DeleteNetwork.
#[tokio::test]
async fn a_swarm_network_is_made_once_by_the_manager_and_freed_by_it() {
    for task_still_stopping in [false, true] {
        let mut cfg = config();
        cfg.capability_scope = "global".into();
        let manager = setup_with(cfg.clone());
        let mut cfg2 = cfg.clone();
        cfg2.host = "host-2".into();
        let node2 = setup_over(&manager, cfg2);
        let swarm_id = "s81ynez02ohu5kgztlyezkmvr";
        manager
            .driver
            .allocate_network(&AllocateNetworkRequest {
                network_id: did(swarm_id),
                options: Options::new().with("com.docker.network.enable_ipv6", false),
                ipv4_data: vec![ipam_data("10.39.0.0/24", "10.39.0.1/24", &[])],
                ipv6_data: Vec::new(),
            })
            .await
            .unwrap();
        let nets = manager.neutron.networks();
        assert_eq!(nets.len(), 1, "{nets:?}");
        let made = nets[0].clone();
        assert!(made.tags.contains(&TAG_NET_SWARM.to_string()), "{made:?}");
        let create = net_req(swarm_id, &[("10.39.0.0/24", "10.39.0.1/24")], &[]);
        let (a, b) = tokio::join!(
            manager.driver.create_network(&create),
            node2.driver.create_network(&create)
        );
        a.unwrap();
        b.unwrap();
        let nets = manager.neutron.networks();
        assert_eq!(
            nets.len(),
            1,
            "both nodes use the manager's network: {nets:?}"
        );
        assert_eq!(nets[0].id, made.id);
        assert_eq!(manager.neutron.subnets().len(), 1);

        node2
            .driver
            .delete_network(&net_id_req(swarm_id))
            .await
            .unwrap();
        let find = |id: &str| manager.neutron.networks().into_iter().find(|n| n.id == id);
        assert!(find(&made.id).is_some(), "a node leaves it");

        let stopping = if task_still_stopping {
            let subnet = manager.neutron.subnets()[0].id.clone();
            Some(
                manager
                    .neutron
                    .create_port(&NewPort {
                        network_id: made.id.clone(),
                        fixed_ips: Some(vec![FixedIpRequest {
                            subnet_id: Some(subnet),
                            ip_address: None,
                        }]),
                        binding_host_id: Some("host-2".into()),
                        device_owner: Some(DEVICE_OWNER.into()),
                        ..Default::default()
                    })
                    .await
                    .unwrap(),
            )
        } else {
            None
        };
        manager
            .driver
            .free_network(&net_id_req(swarm_id))
            .await
            .unwrap();
        if let Some(port) = stopping {
            let left = find(&made.id).expect("a task's port is on it");
            assert!(!left.tags.contains(&TAG_NET_SWARM.to_string()), "{left:?}");
            manager.neutron.delete_port(&port.id).await.unwrap();
            node2.driver.create_network(&create).await.unwrap();
            node2
                .driver
                .delete_network(&net_id_req(swarm_id))
                .await
                .unwrap();
        }
        assert!(
            manager.neutron.is_empty(),
            "task still stopping {task_still_stopping}: {:?}",
            manager.neutron.networks()
        );
    }
}

/// A network the Python daemon made in its no-tag mode (named by the full Docker network id,
/// untagged), met after the swap on a Neutron that now has tags: the first container finds it by
/// name and Kuryr adopts it with its tags, marked existing, so `docker network rm` keeps it. A
/// network of that name already carrying another Docker network's tags is never taken.
#[tokio::test]
async fn a_python_no_tag_network_is_found_by_name_and_kept() {
    use kuryr_openstack::neutron::NetworkUpdate;
    let t = setup();
    let net = id("net-notag");
    let pools = t
        .network_create(&net, "10.21.0.0/24", "10.21.0.1", &[])
        .await
        .unwrap();
    let n = t.network_of(&net);
    // What the Python no-tag mode left: the name, no tags.
    for tag in &n.tags {
        t.neutron
            .remove_tag(ResourceKind::Network, &n.id, tag)
            .await
            .unwrap();
    }
    t.neutron
        .update_network(
            &n.id,
            &NetworkUpdate {
                name: Some(net.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t = t.restart();
    let ep = id("ep-notag");
    let addr = t.run(&net, &ep, &pools.0, "", &mac(21)).await.unwrap();
    assert!(addr.starts_with("10.21.0."), "{addr}");
    let adopted = t.network_of(&net);
    assert_eq!(adopted.id, n.id);
    assert!(
        adopted.tags.contains(&tags::existing_net_tag(&net)),
        "{:?}",
        adopted.tags
    );
    t.rm(&net, &ep, &pools.0, &addr).await;
    t.network_rm(&net, &[pools]).await;
    let kept = t
        .neutron
        .networks()
        .into_iter()
        .find(|x| x.id == n.id)
        .expect("the network is kept");
    assert!(
        !kept.tags.iter().any(|x| x.starts_with(TAG_LH)),
        "Kuryr's tags are taken back: {:?}",
        kept.tags
    );

    // A network of that name that another Docker network's tags claim is not taken.
    let other = id("net-notag-other");
    t.neutron
        .create_network(&NewNetwork {
            name: Some(other.clone()),
            tags: Some(tags::docker_id_tags(&id("someone-else"))),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = t
        .driver
        .create_endpoint(&create_ep_req(&other, &id("ep-x"), "10.21.0.9/24", "", ""))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

/// GetDefaultAddressSpaces answers the configured names, and GetCapabilities the scope.
#[tokio::test]
async fn address_spaces_and_scope_come_from_the_configuration() {
    let t = setup();
    let a = t.driver.default_address_spaces();
    assert_eq!(
        (
            a.local_default_address_space.as_str(),
            a.global_default_address_space.as_str()
        ),
        ("no_address_space", "no_address_space")
    );
    let mut cfg = config();
    cfg.local_default_address_space = "kuryr-local".into();
    cfg.global_default_address_space = "kuryr-global".into();
    cfg.capability_scope = "global".into();
    let t = setup_with(cfg);
    let a = t.driver.default_address_spaces();
    assert_eq!(a.local_default_address_space, "kuryr-local");
    assert_eq!(a.global_default_address_space, "kuryr-global");
    assert_eq!(
        t.driver.network_capabilities().scope,
        kuryr_plugin_api::network::Scope::Global
    );
}
