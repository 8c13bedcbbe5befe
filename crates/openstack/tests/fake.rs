//! FakeNeutron behaves like Neutron where Kuryr depends on it.

use std::net::IpAddr;

use kuryr_openstack::neutron::*;
use kuryr_types::{PortStatus, VifType};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn net_with_subnet(n: &FakeNeutron, cidr: &str) -> (Network, Subnet) {
    let net = n
        .create_network(&NewNetwork {
            name: Some("net".into()),
            tags: Some(vec!["t1".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    let sub = n
        .create_subnet(&NewSubnet {
            network_id: net.id.clone(),
            ip_version: 4,
            cidr: Some(cidr.parse().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    (net, sub)
}

#[tokio::test]
async fn allocates_addresses_and_rejects_duplicates() {
    let n = FakeNeutron::new();
    let (net, sub) = net_with_subnet(&n, "10.1.0.0/29").await;
    assert_eq!(sub.gateway_ip, Some(ip("10.1.0.1")));
    let p1 = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p1.fixed_ips[0].ip_address, ip("10.1.0.2"));
    assert_eq!(p1.mac_address.octets()[..3], [0xfa, 0x16, 0x3e]);
    assert_eq!(p1.status, PortStatus::Down);
    let want = NewPort {
        network_id: net.id.clone(),
        fixed_ips: Some(vec![FixedIpRequest::address(&sub.id, ip("10.1.0.5"))]),
        ..Default::default()
    };
    let p2 = n.create_port(&want).await.unwrap();
    assert_eq!(p2.fixed_ips[0].ip_address, ip("10.1.0.5"));
    let dup = n.create_port(&want).await.unwrap_err();
    assert!(dup.is_conflict());
    assert_eq!(dup.neutron_kind(), Some("IpAddressAlreadyAllocated"));
    // The gateway is never handed out and the /29 has .2-.6: .2 and .5 are taken.
    let mut got = Vec::new();
    for _ in 0..3 {
        let p = n
            .create_port(&NewPort {
                network_id: net.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        got.push(p.fixed_ips[0].ip_address);
    }
    assert_eq!(got, vec![ip("10.1.0.3"), ip("10.1.0.4"), ip("10.1.0.6")]);
    let full = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(full.neutron_kind(), Some("IpAddressGenerationFailure"));
    let mac_dup = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            mac_address: Some(p1.mac_address),
            fixed_ips: Some(vec![]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(mac_dup.neutron_kind(), Some("MacAddressInUse"));
}

#[tokio::test]
async fn tag_filters_follow_neutron_semantics() {
    let n = FakeNeutron::new();
    let a = n
        .create_network(&NewNetwork {
            name: Some("a".into()),
            tags: Some(vec!["x".into(), "y".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    let b = n
        .create_network(&NewNetwork {
            name: Some("b".into()),
            tags: Some(vec!["x".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    let c = n
        .create_network(&NewNetwork {
            name: Some("c".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let names = |v: Vec<Network>| v.into_iter().map(|x| x.name).collect::<Vec<_>>();
    let ids = |v: &[&Network]| v.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    let mut all = names(
        n.list_networks(&Filters::new().tags(&["x", "y"]))
            .await
            .unwrap(),
    );
    all.sort();
    assert_eq!(all, ids(&[&a]));
    let mut any = names(
        n.list_networks(&Filters::new().tags_any(&["y", "x"]))
            .await
            .unwrap(),
    );
    any.sort();
    assert_eq!(any, ids(&[&a, &b]));
    let mut not = names(
        n.list_networks(&Filters::new().not_tags(&["x", "y"]))
            .await
            .unwrap(),
    );
    not.sort();
    assert_eq!(not, ids(&[&b, &c]));
    let mut not_any = names(
        n.list_networks(&Filters::new().not_tags_any(&["y"]))
            .await
            .unwrap(),
    );
    not_any.sort();
    assert_eq!(not_any, ids(&[&b, &c]));
    // Repeated key = any of; fields selects.
    let two = n
        .list_networks(&Filters::new().name("a").name("c").fields(&["id"]))
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|x| x.name.is_empty() && !x.id.is_empty()));
    let bad = n
        .list_networks(&Filters::new().eq("no_such_attr", "1"))
        .await
        .unwrap_err();
    assert!(bad.is_bad_request());
    // Tag calls.
    n.add_tag(ResourceKind::Network, &c.id, "z").await.unwrap();
    assert_eq!(
        n.get_network(&c.id).await.unwrap().tags,
        vec!["z".to_string()]
    );
    assert!(n
        .remove_tag(ResourceKind::Network, &c.id, "nope")
        .await
        .unwrap_err()
        .is_not_found());
    let t = n
        .replace_tags(
            ResourceKind::Network,
            &c.id,
            &["p".into(), "p".into(), "q".into()],
        )
        .await
        .unwrap();
    assert_eq!(t, vec!["p".to_string(), "q".to_string()]);
    n.add_tag(ResourceKind::Network, &c.id, &"x".repeat(255))
        .await
        .unwrap();
    assert!(n
        .add_tag(ResourceKind::Network, &c.id, &"x".repeat(256))
        .await
        .unwrap_err()
        .is_bad_request());
}

#[tokio::test]
async fn subnetpool_allocation_and_in_use() {
    let n = FakeNeutron::new();
    let pool = n
        .create_subnetpool(&NewSubnetPool {
            name: "kuryr".into(),
            prefixes: vec!["10.10.0.0/16".parse().unwrap()],
            default_prefixlen: Some(24),
            ..Default::default()
        })
        .await
        .unwrap();
    let net = n.create_network(&NewNetwork::default()).await.unwrap();
    let from_pool = |cidr: Option<&str>, len: Option<u8>| NewSubnet {
        network_id: net.id.clone(),
        ip_version: 4,
        cidr: cidr.map(|c| c.parse().unwrap()),
        subnetpool_id: Some(pool.id.clone()),
        prefixlen: len,
        ..Default::default()
    };
    let s1 = n.create_subnet(&from_pool(None, None)).await.unwrap();
    assert_eq!(s1.cidr.to_string(), "10.10.0.0/24");
    let net2 = n.create_network(&NewNetwork::default()).await.unwrap();
    let mut req = from_pool(None, Some(26));
    req.network_id = net2.id.clone();
    assert_eq!(
        n.create_subnet(&req).await.unwrap().cidr.to_string(),
        "10.10.1.0/26"
    );
    let mut overlap = from_pool(Some("10.10.0.128/25"), None);
    overlap.network_id = net2.id.clone();
    assert!(n.create_subnet(&overlap).await.unwrap_err().is_conflict());
    assert!(n
        .create_subnet(&from_pool(Some("192.168.0.0/24"), None))
        .await
        .unwrap_err()
        .is_bad_request());
    assert_eq!(
        n.delete_subnetpool(&pool.id)
            .await
            .unwrap_err()
            .neutron_kind(),
        Some("SubnetPoolDeleteError")
    );
    let p = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        n.delete_subnet(&s1.id).await.unwrap_err().neutron_kind(),
        Some("SubnetInUse")
    );
    assert_eq!(
        n.delete_network(&net.id).await.unwrap_err().neutron_kind(),
        Some("NetworkInUse")
    );
    n.delete_port(&p.id).await.unwrap();
    n.delete_network(&net.id).await.unwrap();
    n.delete_network(&net2.id).await.unwrap();
    n.delete_subnetpool(&pool.id).await.unwrap();
    assert!(n.is_empty());
}

#[tokio::test]
async fn trunks_subports_and_trunk_details() {
    let n = FakeNeutron::new();
    let (net, _) = net_with_subnet(&n, "10.2.0.0/24").await;
    let parent = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let child = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let other = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let trunk = n
        .create_trunk(&NewTrunk {
            port_id: parent.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let t = n
        .add_subports(&trunk.id, &[SubPort::vlan(&child.id, 101)])
        .await
        .unwrap();
    assert_eq!(t.sub_ports.len(), 1);
    let dup = n
        .add_subports(&trunk.id, &[SubPort::vlan(&other.id, 101)])
        .await
        .unwrap_err();
    assert!(dup.is_conflict());
    let details = n.get_port(&parent.id).await.unwrap().trunk_details.unwrap();
    assert_eq!(details.trunk_id, trunk.id);
    assert_eq!(details.sub_ports[0].segmentation_id, 101);
    assert_eq!(details.sub_ports[0].mac_address, Some(child.mac_address));
    assert!(n.delete_port(&child.id).await.unwrap_err().is_conflict());
    let t = n
        .remove_subports(&trunk.id, std::slice::from_ref(&child.id))
        .await
        .unwrap();
    assert!(t.sub_ports.is_empty());
    assert!(n
        .remove_subports(&trunk.id, std::slice::from_ref(&child.id))
        .await
        .unwrap_err()
        .is_not_found());
    n.delete_trunk(&trunk.id).await.unwrap();
    assert!(n
        .get_port(&parent.id)
        .await
        .unwrap()
        .trunk_details
        .is_none());
}

#[tokio::test]
async fn binding_status_and_fault_injection() {
    let n = FakeNeutron::new();
    let (net, _) = net_with_subnet(&n, "10.3.0.0/24").await;
    let p = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p.binding_vif_type, VifType::Unbound);
    let u = PortUpdate {
        binding_host_id: Some("host-a".into()),
        device_owner: Some("compute:kuryr".into()),
        device_id: Some("ep".into()),
        ..Default::default()
    };
    let bound = n.update_port(&p.id, &u).await.unwrap();
    assert_eq!(bound.binding_vif_type, VifType::Ovs);
    assert_eq!(bound.binding_vif_details["bridge_name"], "br-int");
    assert_eq!(bound.status, PortStatus::Down);
    assert!(n.set_port_status(&p.id, "ACTIVE"));
    assert_eq!(n.get_port(&p.id).await.unwrap().status, PortStatus::Active);
    // Changing the MAC of a bound port is refused, as Neutron does.
    let mac = PortUpdate {
        mac_address: Some("fa:16:3e:aa:bb:cc".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(
        n.update_port(&p.id, &mac).await.unwrap_err().neutron_kind(),
        Some("PortBound")
    );

    n.reset_calls();
    let boom = NeutronError::from_status(
        500,
        ErrorContext::new("DELETE", "/v2.0/ports/x", "injected"),
    );
    n.fail_nth("delete_port", 2, boom.clone());
    let other = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    n.delete_port(&other.id).await.unwrap();
    assert_eq!(n.delete_port(&p.id).await.unwrap_err(), boom);
    // The failed call changed nothing and the fault is used up.
    n.get_port(&p.id).await.unwrap();
    n.delete_port(&p.id).await.unwrap();
    assert_eq!(n.count("delete_port"), 3);
    let failed: Vec<_> = n.calls().into_iter().filter(|c| c.failed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].target, p.id);
    assert_eq!(n.counters()["create_port"], 1);
}

#[tokio::test]
async fn bulk_create_is_all_or_nothing_and_security_groups() {
    let n = FakeNeutron::new();
    let (net, sub) = net_with_subnet(&n, "10.4.0.0/24").await;
    let good = NewPort {
        network_id: net.id.clone(),
        ..Default::default()
    };
    let bad = NewPort {
        network_id: net.id.clone(),
        fixed_ips: Some(vec![FixedIpRequest::address(&sub.id, ip("10.9.9.9"))]),
        ..Default::default()
    };
    assert!(n.create_ports(&[good.clone(), bad]).await.is_err());
    assert!(n.ports().is_empty());
    assert_eq!(
        n.create_ports(&[good.clone(), good]).await.unwrap().len(),
        2
    );

    let sg = n
        .create_security_group(&NewSecurityGroup {
            name: "exposed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sg.security_group_rules.len(), 2, "default egress rules");
    let mut rule = NewSecurityGroupRule::ingress(&sg.id, "IPv4");
    rule.protocol = Some("tcp".into());
    rule.port_range_min = Some(80);
    rule.port_range_max = Some(80);
    let r = n.create_security_group_rule(&rule).await.unwrap();
    assert!(n
        .create_security_group_rule(&rule)
        .await
        .unwrap_err()
        .is_conflict());
    let rules = n
        .list_security_group_rules(
            &Filters::new()
                .eq("security_group_id", &sg.id)
                .eq("direction", "ingress"),
        )
        .await
        .unwrap();
    assert_eq!(rules, vec![r.clone()]);
    let port = n
        .list_ports(&Filters::new().network_id(&net.id))
        .await
        .unwrap()
        .remove(0);
    n.update_port(
        &port.id,
        &PortUpdate {
            security_groups: Some(vec![sg.id.clone()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(n
        .delete_security_group(&sg.id)
        .await
        .unwrap_err()
        .is_conflict());
    let by_ip = n
        .list_ports(&Filters::new().fixed_ip(Some(&sub.id), Some(port.fixed_ips[0].ip_address)))
        .await
        .unwrap();
    assert_eq!(by_ip.len(), 1);
    assert_eq!(by_ip[0].id, port.id);
}

#[tokio::test]
async fn get_and_list_of_every_resource_follow_neutron() {
    let n = FakeNeutron::new();
    let (net, sub) = net_with_subnet(&n, "10.9.0.0/24").await;
    let port = n
        .create_port(&NewPort {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Views carry what Neutron derives: the network's subnets, the port's default group.
    assert_eq!(n.get_subnet(&sub.id).await.unwrap().cidr, sub.cidr);
    assert_eq!(n.get_network(&net.id).await.unwrap().subnets, vec![sub.id]);
    let groups = n
        .list_security_groups(&Filters::new().name("default"))
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(port.security_groups, [groups[0].id.clone()]);
    assert_eq!(groups[0].security_group_rules.len(), 2);
    let rules = n
        .list_security_group_rules(&Filters::new().eq("direction", "egress"))
        .await
        .unwrap();
    assert_eq!(rules.len(), 2);
    let macs = n.list_ports(&Filters::new().fields(&["id"])).await.unwrap();
    assert_eq!(macs[0].id, port.id);
    assert_eq!(macs[0].mac_address, Port::NO_MAC, "not selected");
    let e = n.list_ports(&Filters::new().eq("bogus", "1")).await;
    assert!(e.unwrap_err().is_bad_request());
    for (e, kind) in [
        (n.get_network("nope").await.unwrap_err(), "NetworkNotFound"),
        (
            n.get_subnetpool("nope").await.unwrap_err(),
            "SubnetPoolNotFound",
        ),
        (n.get_port("nope").await.unwrap_err(), "PortNotFound"),
        (
            n.get_security_group("nope").await.unwrap_err(),
            "SecurityGroupNotFound",
        ),
        (n.get_trunk("nope").await.unwrap_err(), "TrunkNotFound"),
    ] {
        assert!(e.is_not_found(), "{e}");
        assert_eq!(e.neutron_kind(), Some(kind));
    }
    assert_eq!(n.count("get_trunk"), 1);
}

/// A tagged network, subnet or subnetpool costs what HttpNeutron sends (Neutron refuses tags in
/// their create body): the create and the tagging, the resource deleted again when the tagging
/// fails. Several tags at once need `tag-creation` and keep the tags already there.
#[tokio::test]
async fn tagged_creates_count_as_two_requests_and_tags_add_in_one() {
    let n = FakeNeutron::new();
    let tags = Some(vec!["k".to_string()]);
    let net = n
        .create_network(&NewNetwork {
            name: Some("n".into()),
            tags: tags.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    n.create_subnet(&NewSubnet {
        network_id: net.id.clone(),
        ip_version: 4,
        cidr: Some("10.5.0.0/24".parse().unwrap()),
        tags: tags.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let pool = n
        .create_subnetpool(&NewSubnetPool {
            name: "p".into(),
            prefixes: vec!["10.6.0.0/24".parse().unwrap()],
            tags: tags.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.tags, vec!["k".to_string()]);
    let ops: Vec<_> = n.calls().into_iter().map(|c| c.op).collect();
    assert_eq!(
        ops,
        [
            "create_network",
            "replace_tags",
            "create_subnet",
            "replace_tags",
            "create_subnetpool",
            "replace_tags"
        ]
    );

    n.reset_calls();
    n.fail_next(
        "replace_tags",
        NeutronError::from_status(500, ErrorContext::new("PUT", "/v2.0/x", "boom")),
    );
    let e = n
        .create_subnetpool(&NewSubnetPool {
            name: "q".into(),
            prefixes: vec!["10.7.0.0/24".parse().unwrap()],
            tags,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(
        n.subnetpools().len(),
        1,
        "the untagged pool is deleted again"
    );
    let ops: Vec<_> = n.calls().into_iter().map(|c| c.op).collect();
    assert_eq!(
        ops,
        ["create_subnetpool", "replace_tags", "delete_subnetpool"]
    );

    n.add_tags(ResourceKind::Network, &net.id, &["a".into(), "k".into()])
        .await
        .unwrap();
    assert_eq!(
        n.get_network(&net.id).await.unwrap().tags,
        vec!["k".to_string(), "a".to_string()]
    );
    n.set_extensions(&[extensions::STANDARD_ATTR_TAG]);
    let e = n
        .add_tags(ResourceKind::Network, &net.id, &["b".into()])
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "no tag-creation, no such route: {e}");
}
