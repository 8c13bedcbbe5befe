//! A container port's security settings from `-o neutron.port.security_groups` /
//! `neutron.port.port_security` (the network's default, kept in its Neutron tags) and from an
//! endpoint's own options (`docker network connect --driver-opt`).

mod common;

use common::*;
use kuryr_driver::constants::*;
use kuryr_openstack::neutron::{NeutronApi, NewNetwork, NewSecurityGroup, Port};

fn port_of(t: &T, ep: &str) -> Port {
    let ep = did(ep);
    let found: Vec<Port> = t
        .neutron
        .ports()
        .into_iter()
        .filter(|p| {
            p.device_id == ep.as_str() || p.tags.iter().any(|x| x.contains(&ep.as_str()[..32]))
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[tokio::test]
async fn port_settings_from_the_network_and_the_endpoint() {
    let t = setup_with({
        let mut c = config();
        c.pool = None;
        c
    });
    let web = t
        .neutron
        .create_security_group(&NewSecurityGroup {
            name: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;

    // A group that does not exist: refused before anything is made.
    let err = t
        .network_create(
            &id("net-nosg"),
            "10.27.9.0/24",
            "10.27.9.1",
            &[(OPT_PORT_SECURITY_GROUPS, "nosuch")],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("\"nosuch\" does not exist"),
        "{err}"
    );
    assert!(t.neutron.networks().is_empty());

    // The network's default, by name: kept in its tags.
    let net = id("net-sg");
    let pools = t
        .network_create(
            &net,
            "10.27.0.0/24",
            "10.27.0.1",
            &[(OPT_PORT_SECURITY_GROUPS, "web")],
        )
        .await
        .unwrap();
    let n = t.network_of(&net);
    assert!(
        n.tags
            .contains(&format!("{TAG_NET_PORT_SG}{}:{web}", &net[..12])),
        "{:?}",
        n.tags
    );
    let ep = id("ep-sg");
    let addr = t.run(&net, &ep, &pools.0, "", &mac(7)).await.unwrap();
    let p = port_of(&t, &ep);
    assert_eq!(p.security_groups, vec![web.clone()]);
    assert!(
        p.tags.contains(&TAG_PORT_SETTINGS.to_string()),
        "{:?}",
        p.tags
    );

    // A restarted daemon reads the default back from the tags.
    let t2 = setup_over(&t, t.cfg.clone());
    let ep2 = id("ep-sg2");
    let addr2 = t2.run(&net, &ep2, &pools.0, "", &mac(8)).await.unwrap();
    assert_eq!(port_of(&t2, &ep2).security_groups, vec![web.clone()]);

    // An endpoint's own options win: no port security (and so no groups).
    let ep3 = id("ep-nops");
    let a3 = t2
        .connect_with(
            &net,
            &ep3,
            &pools.0,
            &mac(9),
            &[(OPT_PORT_SECURITY, "false")],
        )
        .await
        .unwrap();
    let p3 = port_of(&t2, &ep3);
    assert_eq!(p3.port_security_enabled, Some(false));
    assert!(p3.security_groups.is_empty(), "{:?}", p3.security_groups);

    // A contradiction is refused.
    let mut bad = create_ep_req(&net, &id("ep-bad"), &a3, "", &mac(9));
    bad.options = opts(&[
        (OPT_PORT_SECURITY, "false"),
        (OPT_PORT_SECURITY_GROUPS, "web"),
    ]);
    let e = t2.driver.create_endpoint(&bad).await.unwrap_err();
    assert!(e.to_string().contains("exclude each other"), "{e}");

    t2.rm(&net, &ep3, &pools.0, &a3).await;
    t2.rm(&net, &ep2, &pools.0, &addr2).await;
    t2.rm(&net, &ep, &pools.0, &addr).await;
    t2.network_rm(&net, &[pools]).await;

    // No port security as the network's default.
    let net2 = id("net-nops");
    let pools2 = t2
        .network_create(
            &net2,
            "10.27.1.0/24",
            "10.27.1.1",
            &[(OPT_PORT_SECURITY, "false")],
        )
        .await
        .unwrap();
    let ep4 = id("ep-nops2");
    let a4 = t2.run(&net2, &ep4, &pools2.0, "", &mac(10)).await.unwrap();
    assert_eq!(port_of(&t2, &ep4).port_security_enabled, Some(false));
    t2.rm(&net2, &ep4, &pools2.0, &a4).await;
    t2.network_rm(&net2, &[pools2]).await;

    // On an adopted network, the settings' tag goes with the Docker network's other tags.
    let theirs = t2
        .neutron
        .create_network(&NewNetwork {
            name: Some("theirs".into()),
            tags: Some(vec!["owner-tag".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    let net3 = id("net-adopt");
    let pools3 = t2
        .network_create(
            &net3,
            "10.27.2.0/24",
            "10.27.2.1",
            &[(OPT_NET_UUID, &theirs.id), (OPT_PORT_SECURITY_GROUPS, &web)],
        )
        .await
        .unwrap();
    let tagged = t2.network_of(&net3).tags;
    assert!(
        tagged.iter().any(|x| x.starts_with(TAG_NET_PORT_SG)),
        "{tagged:?}"
    );
    t2.network_rm(&net3, &[pools3]).await;
    let after = t2
        .neutron
        .networks()
        .into_iter()
        .find(|n| n.id == theirs.id)
        .unwrap();
    assert_eq!(after.tags, vec!["owner-tag".to_string()]);
    t2.neutron.delete_network(&theirs.id).await.unwrap();

    t2.neutron.delete_security_group(&web).await.unwrap();
    assert!(t2.neutron.is_empty(), "nothing left");
}

/// Docker's `-o com.docker.network.driver.mtu`: the containers' interfaces get it (kept in the
/// network's tags); one above the Neutron network's MTU is refused and leaves nothing.
#[tokio::test]
async fn docker_mtu_option_below_neutrons_is_honoured_above_it_refused() {
    let t = setup_with({
        let mut c = config();
        c.pool = None;
        c
    });
    let mtu_key = kuryr_plugin_api::keys::MTU;
    let err = t
        .network_create(
            &id("net-big"),
            "10.28.1.0/24",
            "10.28.1.1",
            &[(mtu_key, "9000")],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("larger than neutron network"),
        "{err}"
    );
    assert!(t.neutron.is_empty(), "nothing left");
    let bad = t
        .network_create(
            &id("net-bad"),
            "10.28.2.0/24",
            "10.28.2.1",
            &[(mtu_key, "big")],
        )
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("must be an MTU"), "{bad}");

    let net = id("net-mtu");
    let pools = t
        .network_create(&net, "10.28.0.0/24", "10.28.0.1", &[(mtu_key, "1400")])
        .await
        .unwrap();
    let ep = id("ep-mtu");
    let addr = t.run(&net, &ep, &pools.0, "", &mac(11)).await.unwrap();
    let mtus: Vec<Option<u32>> = t
        .binding
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            kuryr_binding::FakeCall::Bind(b) => Some(b.mtu),
            _ => None,
        })
        .collect();
    assert_eq!(mtus, vec![Some(1400)]);
    // A restarted daemon reads it back from the tags.
    let t2 = setup_over(&t, t.cfg.clone());
    let ep2 = id("ep-mtu2");
    let addr2 = t2.run(&net, &ep2, &pools.0, "", &mac(12)).await.unwrap();
    let last = t2.binding.calls().into_iter().rev().find_map(|c| match c {
        kuryr_binding::FakeCall::Bind(b) => Some(b.mtu),
        _ => None,
    });
    assert_eq!(last, Some(Some(1400)));
    t2.rm(&net, &ep2, &pools.0, &addr2).await;
    t2.rm(&net, &ep, &pools.0, &addr).await;
    t2.network_rm(&net, &[pools]).await;
    assert!(t2.neutron.is_empty());
}

/// `neutron.port.qos_policy` (the network's default, by name, kept in its tags) and an
/// endpoint's `neutron.port.dns_name`; a DNS name as a network's default is refused.
#[tokio::test]
async fn qos_policy_and_dns_name() {
    let t = setup_with({
        let mut c = config();
        c.pool = None;
        c
    });
    let gold = t.neutron.add_qos_policy("gold");
    let e = t
        .network_create(
            &id("net-dns"),
            "10.29.1.0/24",
            "10.29.1.1",
            &[(OPT_PORT_DNS_NAME, "web")],
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("names one container"), "{e}");
    let e = t
        .network_create(
            &id("net-noq"),
            "10.29.2.0/24",
            "10.29.2.1",
            &[(OPT_PORT_QOS_POLICY, "tin")],
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("QoS policy \"tin\" does not exist"),
        "{e}"
    );

    let net = id("net-qos");
    let pools = t
        .network_create(
            &net,
            "10.29.0.0/24",
            "10.29.0.1",
            &[(OPT_PORT_QOS_POLICY, "gold")],
        )
        .await
        .unwrap();
    let ep = id("ep-qos");
    let addr = t.run(&net, &ep, &pools.0, "", &mac(13)).await.unwrap();
    assert_eq!(
        port_of(&t, &ep).qos_policy_id.as_deref(),
        Some(gold.as_str())
    );

    let ep2 = id("ep-dns");
    let a2 = t
        .connect_with(
            &net,
            &ep2,
            &pools.0,
            &mac(14),
            &[(OPT_PORT_DNS_NAME, "web-1")],
        )
        .await
        .unwrap();
    let p2 = port_of(&t, &ep2);
    assert_eq!(p2.dns_name.as_deref(), Some("web-1"));
    assert_eq!(
        p2.qos_policy_id.as_deref(),
        Some(gold.as_str()),
        "the network's default too"
    );
    t.rm(&net, &ep2, &pools.0, &a2).await;
    t.rm(&net, &ep, &pools.0, &addr).await;
    t.network_rm(&net, &[pools]).await;
    assert!(t.neutron.is_empty());
}

/// `--internal` (`com.docker.network.internal`): the Docker network's mark is kept in the Neutron
/// network's tags, and Join answers no gateway (so Docker sets no default route through it), in
/// this daemon and in one started afterwards; the mark goes with the network.
#[tokio::test]
async fn an_internal_network_joins_without_a_gateway() {
    let t = setup();
    let net = id("net-internal");
    let r = t
        .driver
        .request_pool(&pool_req("10.19.0.0/24", "", false, &[]))
        .await
        .unwrap();
    let pool_id = r.pool_id.to_string();
    let gw = t
        .driver
        .request_address(&gw_req(&pool_id, "10.19.0.1"))
        .await
        .unwrap()
        .address;
    let mut req = net_req_full(
        &net,
        vec![ipam_data("10.19.0.0/24", &gw.to_string(), &[])],
        Vec::new(),
        &[],
    );
    req.options = req.options.with(kuryr_plugin_api::keys::INTERNAL, true);
    t.driver.create_network(&req).await.unwrap();
    let n = t.network_of(&net);
    assert!(
        n.tags
            .contains(&format!("{TAG_NET_INTERNAL}{}", &net[..12])),
        "{:?}",
        n.tags
    );
    let ep = id("ep-internal");
    let addr = t.run(&net, &ep, &pool_id, "", &mac(19)).await.unwrap();
    assert!(addr.starts_with("10.19.0."), "{addr}");
    let join = t.driver.join(&join_req(&net, &ep)).await.unwrap();
    assert_eq!((join.gateway, join.gateway_ipv6), (None, None));
    assert!(join.interface_name.is_some());
    let t2 = t.restart();
    let join = t2.driver.join(&join_req(&net, &ep)).await.unwrap();
    assert_eq!((join.gateway, join.gateway_ipv6), (None, None));
    t2.rm(&net, &ep, &pool_id, &addr).await;
    t2.network_rm(&net, &[(pool_id, "10.19.0.0/24".into(), gw.to_string())])
        .await;
    assert!(t2.neutron.is_empty());

    // The same network without --internal gets its gateway.
    let plain = id("net-plain");
    let pools = t2
        .network_create(&plain, "10.20.0.0/24", "10.20.0.1", &[])
        .await
        .unwrap();
    let ep = id("ep-plain");
    let addr = t2.run(&plain, &ep, &pools.0, "", &mac(20)).await.unwrap();
    let join = t2.driver.join(&join_req(&plain, &ep)).await.unwrap();
    assert_eq!(join.gateway, Some("10.20.0.1".parse().unwrap()));
    t2.rm(&plain, &ep, &pools.0, &addr).await;
    t2.network_rm(&plain, &[pools]).await;
    assert!(t2.neutron.is_empty());
}
