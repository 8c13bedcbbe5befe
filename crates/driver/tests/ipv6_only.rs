//! An IPv6-only Docker network (`docker network create --ipv4=false --ipv6 --subnet fd07::/64`,
//! Docker 27+): libnetwork's whole sequence against the fake Neutron, with no IPv4 anywhere.

mod common;

use std::net::IpAddr;

use common::*;
use kuryr_plugin_api::network::{CreateEndpointResponse, CreateNetworkRequest};

/// CreateNetwork as Docker sends it for an IPv6-only network: IPv6Data only, IPv6 on.
fn v6_only_net_req(net: &str, pool: &str, gateway: &str) -> CreateNetworkRequest {
    let req = net_req_full(net, Vec::new(), vec![ipam_data(pool, gateway, &[])], &[]);
    assert!(req.ipv4_data.is_empty() && req.ipv6_data.len() == 1);
    req
}

/// Docker's order: RequestPool, RequestAddress (gateway), CreateNetwork; `run`: RequestAddress,
/// CreateEndpoint, Join; `rm`: Leave, DeleteEndpoint, ReleaseAddress; `network rm`:
/// DeleteNetwork, ReleaseAddress (gateway), ReleasePool.
async fn ipv6_only_lifecycle(t: &T, net: &str, ep: &str, subnet: &str, expect_prefix: &str) {
    // network create
    let pool = t
        .driver
        .request_pool(&pool_req(subnet, "", true, &[]))
        .await
        .unwrap();
    let pool_id = pool.pool_id.to_string();
    let pool_cidr = pool.pool.to_string();
    assert!(pool_cidr.starts_with(expect_prefix), "{pool_cidr}");
    assert!(pool.pool.addr().is_ipv6(), "{pool_cidr}");
    let gw = t
        .driver
        .request_address(&gw_req(&pool_id, ""))
        .await
        .unwrap()
        .address;
    assert!(gw.addr().is_ipv6(), "{gw}");
    t.driver
        .create_network(&v6_only_net_req(net, &pool_cidr, &gw.to_string()))
        .await
        .unwrap();

    let n = t.network_of(net);
    let subnets: Vec<_> = t
        .neutron
        .subnets()
        .into_iter()
        .filter(|s| s.network_id == n.id)
        .collect();
    assert_eq!(subnets.len(), 1, "one subnet, IPv6: {subnets:?}");
    let s = &subnets[0];
    assert_eq!(s.ip_version, 6, "{s:?}");
    assert_eq!(s.cidr.to_string(), pool_cidr);
    assert_eq!(s.gateway_ip, Some(gw.addr()));
    assert_eq!(
        t.neutron.subnets().len(),
        1,
        "no IPv4 subnet anywhere: {:?}",
        t.neutron.subnets()
    );

    // run
    let m = mac(7);
    let addr = t
        .driver
        .request_address(&mac_addr_req(&pool_id, "", &m))
        .await
        .unwrap()
        .address;
    assert!(addr.addr().is_ipv6(), "{addr}");
    assert_eq!(addr.prefix_len(), pool.pool.prefix_len());
    let reply = t
        .driver
        .create_endpoint(&create_ep_req(net, ep, "", &addr.to_string(), &m))
        .await
        .unwrap();
    assert_eq!(reply, CreateEndpointResponse::unchanged());
    let ports = t.ports_on(&n.id);
    assert_eq!(ports.len(), 1, "{ports:?}");
    let p = &ports[0];
    assert_eq!(p.mac_address.to_string(), m);
    assert_eq!(
        p.fixed_ips.len(),
        1,
        "only the IPv6 address: {:?}",
        p.fixed_ips
    );
    assert_eq!(p.fixed_ips[0].ip_address, addr.addr());
    assert_eq!(p.fixed_ips[0].subnet_id, s.id);
    assert!(p.fixed_ips.iter().all(|f| f.ip_address.is_ipv6()));

    let join = t.driver.join(&join_req(net, ep)).await.unwrap();
    assert_eq!(join.gateway, None, "no IPv4 gateway: {join:?}");
    let IpAddr::V6(gw6) = gw.addr() else {
        unreachable!()
    };
    assert_eq!(join.gateway_ipv6, Some(gw6), "{join:?}");
    assert!(join.interface_name.is_some(), "{join:?}");

    // rm
    t.driver.leave(&ep_req(net, ep));
    t.driver.delete_endpoint(&ep_req(net, ep)).await.unwrap();
    t.driver
        .release_address(&release_addr_req(&pool_id, &addr.to_string()))
        .await
        .unwrap();
    assert!(t.ports_on(&n.id).is_empty(), "{:?}", t.ports_on(&n.id));
    assert!(t.binding.bound_ports().is_empty());

    // network rm
    t.driver.delete_network(&net_id_req(net)).await.unwrap();
    t.driver
        .release_address(&release_addr_req(&pool_id, &gw.to_string()))
        .await
        .unwrap();
    t.driver
        .release_pool(&release_pool_req(&pool_id))
        .await
        .unwrap();
    assert_eq!(t.driver.held(), (0, 0));
}

#[tokio::test]
async fn ipv6_only_network_with_a_subnet_leaves_nothing() {
    let t = setup();
    ipv6_only_lifecycle(
        &t,
        &id("net-v6only"),
        &id("ep-v6only"),
        "fd07::/64",
        "fd07::",
    )
    .await;
    assert!(
        t.neutron.is_empty(),
        "leftovers: {:?} {:?} {:?} {:?}",
        t.neutron.networks(),
        t.neutron.subnets(),
        t.neutron.subnetpools(),
        t.neutron.ports()
    );
    assert!(t.neutron.ports().is_empty(), "{:?}", t.neutron.ports());
}

/// Without `--subnet`: the range comes from the deployer's IPv6 pool (`kuryr6`), which stays.
#[tokio::test]
async fn ipv6_only_network_from_the_default_pool_leaves_only_the_pool() {
    let t = setup();
    let (v4_pool, v6_pool) = t.default_pools().await;
    ipv6_only_lifecycle(&t, &id("net-v6dflt"), &id("ep-v6dflt"), "", "fd90:").await;
    assert!(
        t.neutron.networks().is_empty(),
        "{:?}",
        t.neutron.networks()
    );
    assert!(t.neutron.subnets().is_empty(), "{:?}", t.neutron.subnets());
    assert!(t.neutron.ports().is_empty(), "{:?}", t.neutron.ports());
    let mut left: Vec<String> = t.neutron.subnetpools().into_iter().map(|p| p.id).collect();
    left.sort();
    let mut want = vec![v4_pool, v6_pool];
    want.sort();
    assert_eq!(left, want, "only the deployer's pools");
}
