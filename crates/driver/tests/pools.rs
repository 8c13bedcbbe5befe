//! Port pools against the fake Neutron and host: a warm pool starts a container with no Neutron
//! request, released ports come back, `network rm` drains, a restart re-adopts, and a pool never
//! makes fail what works without it.

mod common;

use common::*;
use kuryr_binding::FakeCall;
use kuryr_driver::constants::*;
use kuryr_driver::*;
use kuryr_openstack::neutron::{FixedIpRequest, NeutronApi, NewPort};
use kuryr_plugin_api::network::CreateEndpointResponse;

/// This host's pool tag.
fn pool_tag() -> String {
    format!("{TAG_POOL}{HOST}")
}

impl T {
    /// `docker run` as a Docker that reads `RequiresMACAddress: false`: RequestAddress without a
    /// MAC, CreateEndpoint with the user's `--mac-address` if any, Join. Returns the address and
    /// the MAC the driver answered.
    async fn start(
        &self,
        net: &str,
        ep: &str,
        pool_id: &str,
        ip: &str,
        user_mac: &str,
    ) -> Result<(String, String), DriverError> {
        let addr = self
            .driver
            .request_address(&addr_req(pool_id, ip, &[]))
            .await?
            .address
            .to_string();
        let resp: CreateEndpointResponse = self
            .driver
            .create_endpoint(&create_ep_req(net, ep, &addr, "", user_mac))
            .await?;
        self.driver.join(&join_req(net, ep)).await?;
        let mac = resp
            .interface
            .and_then(|i| i.mac_address)
            .map_or(user_mac.to_string(), |m| m.to_string());
        Ok((addr, mac))
    }

    /// The Neutron port on network `net` holding `addr` (`a.b.c.d/len` as Docker has it).
    fn port_holding(&self, net: &str, addr: &str) -> kuryr_openstack::neutron::Port {
        let ip = addr.split('/').next().unwrap();
        self.ports_on(net)
            .into_iter()
            .find(|p| p.fixed_ips[0].ip_address.to_string() == ip)
            .unwrap_or_else(|| panic!("no port holds {addr}"))
    }

    fn subnet_id(&self) -> String {
        self.neutron.subnets()[0].id.clone()
    }

    fn free(&self) -> usize {
        self.driver.ports().pools().map_or(0, |p| p.sizes().0)
    }

    /// Waits until the pool holds `n` free ports and nothing is in flight.
    async fn pool_settles_at(&self, n: usize) {
        let pools = self.driver.ports().pools().expect("pools on");
        self.settle(|| pools.sizes() == (n, 0)).await;
        assert_eq!(pools.sizes(), (n, 0), "free and pending ports");
    }

    /// A network with one IPv4 pool and, after a first container came and went, a full pool:
    /// one batch, and the first container's port (made on demand, then pooled on release).
    async fn warm_network(&self, net: &str, cidr: &str) -> (String, String, String) {
        let created = self.network_create(net, cidr, "", &[]).await.unwrap();
        let warm = id(&format!("{net}-warm"));
        let (addr, _) = self.start(net, &warm, &created.0, "", "").await.unwrap();
        self.rm(net, &warm, &created.0, &addr).await;
        self.pool_settles_at(11).await;
        created
    }
}

#[tokio::test]
async fn a_warm_pool_starts_a_container_without_neutron() {
    let t = setup();
    let net = id("pool-warm");
    let (pool_id, _, _) = t.warm_network(&net, "10.20.0.0/24").await;
    let n = t.network_of(&net);
    // Pooled ports: made in one bulk request, bound here, tagged, plugged for the pool.
    let pooled = t.ports_on(&n.id);
    assert_eq!(pooled.len(), 11);
    for p in &pooled {
        assert_eq!(p.name, POOL_PORT_NAME);
        assert_eq!(p.binding_host_id, HOST);
        assert!(p.tags.contains(&pool_tag()), "{:?}", p.tags);
        assert!(t.binding.bound_ports().contains(&p.id));
    }

    t.neutron.reset_calls();
    let ep = id("pool-warm-ep");
    let (addr, mac) = t.start(&net, &ep, &pool_id, "", "").await.unwrap();
    assert!(
        t.neutron.calls().is_empty(),
        "no Neutron request before Docker has its answers: {:?}",
        t.neutron.calls()
    );
    assert!(
        t.binding
            .calls()
            .iter()
            .any(|c| matches!(c, FakeCall::Claim(r) if r.endpoint_id.as_str() == ep)),
        "the pre-plugged port changes hands"
    );
    let port = t.port_holding(&n.id, &addr);
    assert_eq!(mac, port.mac_address.to_string(), "the port's own MAC");

    // The endpoint's tags and name follow in the background.
    t.settle(|| {
        t.neutron
            .ports()
            .iter()
            .any(|p| p.id == port.id && p.device_id == ep)
    })
    .await;
    let port = t
        .neutron
        .ports()
        .into_iter()
        .find(|p| p.id == port.id)
        .unwrap();
    assert_eq!(port.name, format!("{ep}-port"));
    for tag in tags::docker_id_tags(&ep) {
        assert!(port.tags.contains(&tag));
    }
    assert!(port.tags.contains(&pool_tag()));

    // Released: back in the pool, reset, with its plug kept; nothing else made or deleted.
    let before = t.binding.calls().len();
    t.rm(&net, &ep, &pool_id, &addr).await;
    t.pool_settles_at(11).await;
    let after: Vec<FakeCall> = t.binding.calls().split_off(before);
    assert!(
        after
            .iter()
            .any(|c| matches!(c, FakeCall::Reuse(r) if r.port_id == port.id)),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|c| matches!(c,
            FakeCall::Bind(r) if r.port_id == port.id)
            || matches!(c, FakeCall::Unbind(r) if r.port_id == port.id)),
        "a clean port is not plugged again: {after:?}"
    );
    // Neutron's record is tidied at the next pool check (the claim would have rewritten it).
    let untidy = t
        .neutron
        .ports()
        .into_iter()
        .find(|p| p.id == port.id)
        .unwrap();
    assert_eq!(untidy.device_id, ep, "not reset at once");
    t.driver.ports().pools().unwrap().tidy_now();
    let reset = || {
        t.neutron
            .ports()
            .into_iter()
            .any(|p| p.id == port.id && p.name == POOL_PORT_NAME)
    };
    t.settle(reset).await;
    let back = t
        .neutron
        .ports()
        .into_iter()
        .find(|p| p.id == port.id)
        .unwrap();
    assert_eq!(back.name, POOL_PORT_NAME);
    assert_eq!(back.device_id, "");
    assert!(!back.tags.iter().any(|t| t.starts_with(TAG_LH)));
    assert_eq!(t.ports_on(&n.id).len(), 11);
}

#[tokio::test]
async fn network_rm_drains_the_pool() {
    let t = setup();
    let net = id("pool-drain");
    let created = t.warm_network(&net, "10.21.0.0/24").await;
    let n = t.network_of(&net);
    t.network_rm(&net, &[created]).await;
    assert!(t.ports_on(&n.id).is_empty());
    assert!(t.neutron.networks().is_empty(), "the network went");
    assert!(t.binding.bound_ports().is_empty(), "no plug left");
    assert_eq!(t.free(), 0);
}

/// A pooled port whose recycling outlasted the drain (Neutron slow: seen in the soak) is still
/// on the network when Neutron is asked to delete it: this host's pool ports are deleted and
/// the network goes; another host's pool port is never touched.
#[tokio::test]
async fn network_rm_deletes_a_pooled_port_that_outlasted_the_drain() {
    let t = setup();
    let net = id("pool-straggler");
    let created = t.warm_network(&net, "10.22.0.0/24").await;
    let n = t.network_of(&net);
    let straggler = t
        .neutron
        .create_port(&NewPort {
            network_id: n.id.clone(),
            name: Some(format!("{}{PORT_NAME_SUFFIX}", id("old-endpoint"))),
            device_owner: Some(DEVICE_OWNER.into()),
            tags: Some(vec![DEVICE_OWNER.into(), pool_tag()]),
            ..Default::default()
        })
        .await
        .unwrap();
    t.network_rm(&net, &[created]).await;
    assert!(!t.neutron.ports().iter().any(|p| p.id == straggler.id));
    assert!(t.neutron.networks().is_empty(), "the network went");
}

/// What a recycle that Neutron failed twice leaves (its reset timed out, then its delete): the
/// port of an endpoint Docker removed, still tagged with it, in no pool. `docker network rm`
/// deletes it, then the network; another host's port of the same kind is never touched.
#[tokio::test]
async fn network_rm_deletes_the_port_of_a_departed_endpoint() {
    let t = setup();
    let net = id("pool-departed");
    let created = t.warm_network(&net, "10.24.0.0/24").await;
    let n = t.network_of(&net);
    let departed = id("departed-endpoint");
    let port_of = |ep: &str, host: &str| NewPort {
        network_id: n.id.clone(),
        name: Some(format!("{ep}{PORT_NAME_SUFFIX}")),
        device_owner: Some(DEVICE_OWNER.into()),
        device_id: Some(ep[..12].to_string()),
        binding_host_id: Some(host.into()),
        tags: Some([vec![DEVICE_OWNER.to_string()], tags::docker_id_tags(ep)].concat()),
        ..Default::default()
    };
    let left = t
        .neutron
        .create_port(&port_of(&departed, HOST))
        .await
        .unwrap();
    // One of the pool's, still tagged with the endpoint that had it: its plug is the pool's.
    let mut pooled = port_of(&id("departed-pooled"), HOST);
    pooled.tags.as_mut().unwrap().push(pool_tag());
    let pooled = t.neutron.create_port(&pooled).await.unwrap();
    let before = t.binding.calls().len();
    t.network_rm(&net, &[created]).await;
    assert!(!t.neutron.ports().iter().any(|p| p.id == left.id));
    assert!(!t.neutron.ports().iter().any(|p| p.id == pooled.id));
    assert!(t.neutron.networks().is_empty(), "the network went");
    let calls = t.binding.calls().split_off(before);
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, FakeCall::Unbind(r) if r.port_id == pooled.id)),
        "the pooled port is unplugged: {calls:?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, FakeCall::Unclaim(r) if r.port_id == pooled.id)),
        "not handed to the pool: {calls:?}"
    );

    // Another host's port keeps the network, and is kept.
    let net2 = id("pool-departed-2");
    let created = t.warm_network(&net2, "10.25.0.0/24").await;
    let n2 = t.network_of(&net2);
    let theirs = t
        .neutron
        .create_port(&NewPort {
            network_id: n2.id.clone(),
            ..port_of(&id("their-endpoint"), "host-2")
        })
        .await
        .unwrap();
    let (pool_id, _, gw) = &created;
    t.driver
        .release_address(&release_addr_req(pool_id, gw))
        .await
        .unwrap();
    t.driver
        .release_pool(&release_pool_req(pool_id))
        .await
        .unwrap();
    let _ = t.driver.delete_network(&net_id_req(&net2)).await;
    assert!(t.neutron.ports().iter().any(|p| p.id == theirs.id));
    assert!(t.neutron.networks().iter().any(|x| x.id == n2.id));
}

/// A Neutron slower than the containers' churn: one pooled port claimed and released twenty
/// times while each write takes 300 ms. The claims' writes are not all queued (the backlog, and
/// the daemon's memory, grew with the load in the soak): a write that a later one supersedes is
/// skipped, and Neutron ends with the last container's endpoint.
#[tokio::test]
async fn writes_to_a_pooled_port_that_later_ones_supersede_are_skipped() {
    let t = setup();
    let net = id("pool-churn");
    let (pool_id, _, _) = t.warm_network(&net, "10.26.0.0/24").await;
    let n = t.network_of(&net);
    let pooled = t.ports_on(&n.id)[2].clone();
    let ip = pooled.fixed_ips[0].ip_address.to_string();
    t.neutron
        .set_delay("replace_tags", std::time::Duration::from_millis(300));
    t.neutron
        .set_delay("update_port", std::time::Duration::from_millis(300));
    t.neutron.reset_calls();
    let mut last = String::new();
    for i in 0..20 {
        let ep = id(&format!("pool-churn-ep{i}"));
        let (addr, _) = t.start(&net, &ep, &pool_id, &ip, "").await.unwrap();
        if i < 19 {
            t.rm(&net, &ep, &pool_id, &addr).await;
        }
        last = ep;
    }
    t.settle(|| {
        t.neutron
            .ports()
            .iter()
            .any(|p| p.id == pooled.id && p.device_id == last)
    })
    .await;
    let port = t
        .neutron
        .ports()
        .into_iter()
        .find(|p| p.id == pooled.id)
        .unwrap();
    for tag in tags::docker_id_tags(&last) {
        assert!(port.tags.contains(&tag), "{:?}", port.tags);
    }
    let writes = t
        .neutron
        .calls()
        .iter()
        .filter(|c| c.op == "replace_tags" && c.target == pooled.id)
        .count();
    assert!(writes <= 4, "{writes} tag writes for 20 claims");
}

#[tokio::test]
async fn an_address_asked_for_gets_the_pooled_port_holding_it() {
    let t = setup();
    let net = id("pool-ip");
    let (pool_id, _, _) = t.warm_network(&net, "10.22.0.0/24").await;
    let n = t.network_of(&net);
    let pooled = t.ports_on(&n.id)[3].clone();
    let ip = pooled.fixed_ips[0].ip_address.to_string();
    t.neutron.reset_calls();
    let ep = id("pool-ip-ep");
    let (addr, _) = t.start(&net, &ep, &pool_id, &ip, "").await.unwrap();
    assert_eq!(addr, format!("{ip}/24"));
    assert_eq!(t.neutron.count("create_port"), 0);
    t.settle(|| t.neutron.ports().iter().any(|p| p.device_id == ep))
        .await;
    let holder = t
        .neutron
        .ports()
        .into_iter()
        .find(|p| p.device_id == ep)
        .unwrap();
    assert_eq!(holder.id, pooled.id);
}

#[tokio::test]
async fn a_users_mac_takes_the_port_out_of_the_pool() {
    let t = setup();
    let net = id("pool-mac");
    let (pool_id, _, _) = t.warm_network(&net, "10.23.0.0/24").await;
    let ep = id("pool-mac-ep");
    let user_mac = "02:00:00:aa:bb:cc";
    let (addr, mac) = t.start(&net, &ep, &pool_id, "", user_mac).await.unwrap();
    assert_eq!(mac, user_mac);
    let n = t.network_of(&net);
    let port = t
        .ports_on(&n.id)
        .into_iter()
        .find(|p| p.mac_address.to_string() == user_mac)
        .expect("the port carries the user's MAC");
    assert_eq!(
        port.binding_host_id, HOST,
        "bound again after the MAC change"
    );
    assert!(!port.tags.contains(&pool_tag()), "no longer pooled");
    // Released like a port made on demand: deleted.
    t.rm(&net, &ep, &pool_id, &addr).await;
    assert!(t.neutron.ports().iter().all(|p| p.id != port.id));
}

#[tokio::test]
async fn a_restart_adopts_the_pool_and_recycles_what_was_released_meanwhile() {
    let t = setup();
    let net = id("pool-restart");
    let (pool_id, _, _) = t.warm_network(&net, "10.24.0.0/24").await;
    let held_ep = id("pool-restart-held");
    let (held_addr, _) = t.start(&net, &held_ep, &pool_id, "", "").await.unwrap();
    let gone_ep = id("pool-restart-gone");
    let (gone_addr, _) = t.start(&net, &gone_ep, &pool_id, "", "").await.unwrap();
    t.settle(|| {
        t.neutron
            .ports()
            .iter()
            .filter(|p| !p.device_id.is_empty())
            .count()
            >= 2
    })
    .await;
    // The daemon dies between DeleteEndpoint and ReleaseAddress of one container.
    t.driver
        .delete_endpoint(&ep_req(&net, &gone_ep))
        .await
        .unwrap();

    let t2 = t.restart();
    let report = t2.driver.reconcile().await.unwrap();
    assert_eq!(report.pool.free, 9);
    assert_eq!(report.pool.held, 1);
    assert_eq!(report.pool.recycled, 1);
    t2.pool_settles_at(10).await;
    // Docker's late release of the recycled one is a no-op; the held one comes back.
    t2.driver
        .release_address(&release_addr_req(&pool_id, &gone_addr))
        .await
        .unwrap();
    t2.rm(&net, &held_ep, &pool_id, &held_addr).await;
    t2.pool_settles_at(11).await;
    let n = t2.network_of(&net);
    assert_eq!(t2.ports_on(&n.id).len(), 11, "nothing leaked, nothing lost");
}

#[tokio::test]
async fn pools_turned_off_delete_free_ports_at_restart() {
    let t = setup();
    let net = id("pool-off");
    t.warm_network(&net, "10.25.0.0/24").await;
    let mut cfg = t.cfg.clone();
    cfg.pool = None;
    let t2 = setup_over(&t, cfg);
    let report = t2.driver.reconcile().await.unwrap();
    assert_eq!(report.pool.deleted, 11);
    let n = t2.network_of(&net);
    assert!(t2.ports_on(&n.id).is_empty());
    assert!(t2.binding.bound_ports().is_empty());
}

#[tokio::test]
async fn another_hosts_pool_is_never_touched() {
    let t = setup();
    let net = id("pool-other");
    let (pool_id, _, _) = t.warm_network(&net, "10.26.0.0/24").await;
    let n = t.network_of(&net);
    let theirs = t
        .neutron
        .create_port(&NewPort {
            network_id: n.id.clone(),
            name: Some(POOL_PORT_NAME.into()),
            fixed_ips: Some(vec![FixedIpRequest {
                subnet_id: Some(t.subnet_id()),
                ip_address: Some("10.26.0.200".parse().unwrap()),
            }]),
            binding_host_id: Some("host-2".into()),
            device_owner: Some(DEVICE_OWNER.into()),
            tags: Some(vec![format!("{TAG_POOL}host-2")]),
            ..Default::default()
        })
        .await
        .unwrap();
    let e = t
        .start(&net, &id("pool-other-ep"), &pool_id, "10.26.0.200", "")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("another host's port pool"), "{e}");
    let report = t.restart().driver.reconcile().await.unwrap();
    assert_eq!(report.pool.free, 11, "only this host's ports");
    assert!(t.neutron.ports().iter().any(|p| p.id == theirs.id));
}

#[tokio::test]
async fn a_full_subnet_hands_out_pooled_ports_and_gives_addresses_back() {
    let t = setup();
    let net = id("pool-full");
    // A /28: 13 addresses for ports after the gateway and DHCP.
    let (pool_id, _, _) = t
        .network_create(&net, "10.27.0.0/28", "", &[])
        .await
        .unwrap();
    let first = id("pool-full-0");
    let (a0, _) = t.start(&net, &first, &pool_id, "", "").await.unwrap();
    let pools = t.driver.ports().pools().unwrap();
    t.settle(|| pools.sizes().1 == 0 && pools.sizes().0 > 0)
        .await;
    // Every address is now held by a container or the pool; more containers still start.
    let mut started = vec![(first, a0)];
    for i in 1..8 {
        let ep = id(&format!("pool-full-{i}"));
        let (a, _) = t.start(&net, &ep, &pool_id, "", "").await.unwrap();
        started.push((ep, a));
    }
    // A MAC's request (the direct path) gets an address the pool gives back.
    let ep = id("pool-full-mac");
    let a = t
        .driver
        .request_address(&mac_addr_req(&pool_id, "", &mac(9)))
        .await
        .expect("the pool gives an address back");
    t.driver
        .create_endpoint(&create_ep_req(
            &net,
            &ep,
            &a.address.to_string(),
            "",
            &mac(9),
        ))
        .await
        .unwrap();
    started.push((ep, a.address.to_string()));
    for (ep, addr) in &started {
        t.rm(&net, ep, &pool_id, addr).await;
    }
    let pools = t.driver.ports().pools().unwrap();
    t.settle(|| pools.sizes().1 == 0).await;
    let n = t.network_of(&net);
    let held: usize = t.ports_on(&n.id).len();
    assert_eq!(
        held,
        pools.sizes().0,
        "every port left is a free pooled one"
    );
}

#[tokio::test]
async fn a_restart_right_after_a_claim_keeps_the_port_with_its_container() {
    let t = setup();
    let net = id("pool-claim-crash");
    let (pool_id, _, _) = t.warm_network(&net, "10.28.0.0/24").await;
    let ep = id("pool-claim-crash-ep");
    let (addr, _) = t.start(&net, &ep, &pool_id, "", "").await.unwrap();
    // The daemon dies before the claim's tags reached Neutron: a new driver, same host.
    let t2 = t.restart();
    let report = t2.driver.reconcile().await.unwrap();
    assert_eq!(report.pool.held, 1, "{report:?}");
    assert_eq!(report.pool.free, 10);
    let ip = addr.split('/').next().unwrap();
    let port = t2
        .neutron
        .ports()
        .into_iter()
        .find(|p| p.fixed_ips.iter().any(|f| f.ip_address.to_string() == ip))
        .unwrap();
    for tag in tags::docker_id_tags(&ep) {
        assert!(port.tags.contains(&tag), "{:?}", port.tags);
    }
    assert!(
        t2.binding.bound_ports().contains(&port.id),
        "the container's plug is kept"
    );
    t2.rm(&net, &ep, &pool_id, &addr).await;
    t2.pool_settles_at(11).await;
}

#[tokio::test]
async fn an_idle_pool_shrinks_to_its_minimum() {
    let t = setup();
    let net = id("pool-idle");
    t.warm_network(&net, "10.29.0.0/24").await;
    let pools = t.driver.ports().pools().unwrap();
    // Used a moment ago: nothing goes.
    assert_eq!(
        pools.shrink_idle(std::time::Duration::from_secs(60)).await,
        0
    );
    assert_eq!(pools.shrink_idle(std::time::Duration::ZERO).await, 11 - 5);
    assert_eq!(pools.sizes(), (5, 0));
    let n = t.network_of(&net);
    assert_eq!(
        t.ports_on(&n.id).len(),
        5,
        "the extra ports are deleted in Neutron"
    );
}

#[tokio::test]
async fn a_port_whose_container_left_settings_on_it_is_plugged_afresh() {
    let t = setup();
    let net = id("pool-dirty");
    let (pool_id, _, _) = t.warm_network(&net, "10.27.0.0/24").await;
    let n = t.network_of(&net);
    let ep = id("pool-dirty-ep");
    let (addr, _) = t.start(&net, &ep, &pool_id, "", "").await.unwrap();
    let port = t.port_holding(&n.id, &addr);
    // Say the container attached an XDP program to its interface.
    t.binding.mark_dirty(&port.id);
    let before = t.binding.calls().len();
    t.rm(&net, &ep, &pool_id, &addr).await;
    t.pool_settles_at(11).await;
    let after: Vec<FakeCall> = t.binding.calls().split_off(before);
    let unbind = after
        .iter()
        .position(|c| matches!(c, FakeCall::Unbind(r) if r.port_id == port.id));
    let bind = after
        .iter()
        .position(|c| matches!(c, FakeCall::Bind(r) if r.port_id == port.id));
    assert!(
        matches!((unbind, bind), (Some(u), Some(b)) if u < b),
        "unplugged, then plugged afresh: {after:?}"
    );
    assert!(t.binding.bound_ports().contains(&port.id));
}

#[tokio::test]
async fn a_pool_found_empty_while_ports_come_back_grows_at_once() {
    // Minimum 1: a pool with a port coming back is not "low", only the miss can grow it.
    let mut cfg = config();
    cfg.pool.as_mut().expect("pools on by default").min = 1;
    let t = setup_with(cfg);
    let net = id("pool-grow");
    let (pool_id, _, _) = t.warm_network(&net, "10.28.0.0/24").await;
    let n = t.network_of(&net);
    let pools = t.driver.ports().pools().unwrap();
    // The refill the last take starts fails: the pool stays empty.
    t.neutron.fail_next(
        "create_ports",
        kuryr_openstack::neutron::NeutronError::from_status(
            503,
            kuryr_openstack::neutron::ErrorContext::new("POST", "/v2.0/ports", "busy"),
        ),
    );
    let mut running = Vec::new();
    for i in 0..11 {
        let ep = id(&format!("pool-grow-{i}"));
        let (addr, _) = t.start(&net, &ep, &pool_id, "", "").await.unwrap();
        running.push((ep, addr));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!((t.ports_on(&n.id).len(), pools.sizes()), (11, (0, 0)));

    // One container goes; its port comes back slowly (re-plugged, not ACTIVE yet); ports made
    // from now on stay DOWN until the test says so.
    t.neutron.activate_on_bind(false);
    let (ep, addr) = running.remove(0);
    let back = t.port_holding(&n.id, &addr);
    t.binding.mark_dirty(&back.id);
    t.neutron.set_port_status(&back.id, "DOWN");
    t.rm(&net, &ep, &pool_id, &addr).await;
    t.settle(|| pools.sizes() == (0, 1)).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!((t.ports_on(&n.id).len(), pools.sizes()), (11, (0, 1)));

    // The next container finds the pool empty with a port coming: it waits, and the pool grows
    // by a batch meanwhile instead of staying at the size that proved too small.
    let next = id("pool-grow-next");
    let activate = async {
        t.settle(|| t.ports_on(&n.id).len() == 21).await;
        assert_eq!(t.ports_on(&n.id).len(), 21, "a batch of 10 more");
        for p in t.ports_on(&n.id) {
            t.neutron.set_port_status(&p.id, "ACTIVE");
        }
    };
    let (started, ()) = tokio::join!(t.start(&net, &next, &pool_id, "", ""), activate);
    started.unwrap();
    t.settle(|| pools.sizes() == (10, 0)).await;
    assert_eq!(
        pools.sizes(),
        (10, 0),
        "the batch and the returned port, one taken"
    );
}

#[tokio::test]
async fn a_departed_endpoints_tags_on_a_free_port_do_not_make_it_that_endpoints() {
    let t = setup();
    let net = id("pool-stale");
    let (pool_id, _, _) = t.warm_network(&net, "10.29.0.0/24").await;
    let n = t.network_of(&net);
    let ep = id("pool-stale-ep");
    let (addr, _) = t.start(&net, &ep, &pool_id, "", "").await.unwrap();
    let port = t.port_holding(&n.id, &addr);
    t.rm(&net, &ep, &pool_id, &addr).await;
    t.pool_settles_at(11).await;
    // As Neutron shows a free port whose reset has not run yet.
    t.neutron
        .add_tags(
            kuryr_openstack::neutron::ResourceKind::Port,
            &port.id,
            &tags::docker_id_tags(&ep),
        )
        .await
        .unwrap();
    // Docker repeats the departed endpoint's DeleteEndpoint (say after its own restart).
    let before = t.binding.calls().len();
    t.driver.delete_endpoint(&ep_req(&net, &ep)).await.unwrap();
    let after: Vec<FakeCall> = t.binding.calls().split_off(before);
    assert!(
        !after.iter().any(
            |c| matches!(c, FakeCall::Unclaim(r) if r.port_id == port.id)
                || matches!(c, FakeCall::Unbind(r) if r.port_id == port.id)
        ),
        "the free port is left alone: {after:?}"
    );
    assert_eq!(t.driver.ports().pools().unwrap().sizes(), (11, 0));
    assert!(t.binding.bound_ports().contains(&port.id));
}

/// Releases with Neutron's reads failing from the release on: a port whose container exposed
/// ports must be reset before another container may have it (so it is deleted when the reset
/// fails); one whose container changed nothing in Neutron is back in the pool at once.
#[tokio::test]
async fn only_a_port_whose_groups_were_changed_waits_for_neutrons_reset() {
    for exposed in [true, false] {
        let t = setup();
        let net = id(&format!("pool-exp-{exposed}"));
        let (pool_id, _, _) = t.warm_network(&net, "10.30.0.0/24").await;
        let ep = id(&format!("pool-exp-ep-{exposed}"));
        let (addr, _) = t.start(&net, &ep, &pool_id, "", "").await.unwrap();
        if exposed {
            let web = [kuryr_plugin_api::network::ExposedPort { proto: 6, port: 80 }];
            t.driver
                .program_external_connectivity(&did(&ep), &web)
                .await
                .unwrap();
        }
        t.driver
            .revoke_external_connectivity(&did(&ep))
            .await
            .unwrap();
        t.driver.leave(&ep_req(&net, &ep));
        t.driver.delete_endpoint(&ep_req(&net, &ep)).await.unwrap();
        t.neutron.fail_always(
            "get_port",
            kuryr_openstack::neutron::NeutronError::from_status(
                503,
                kuryr_openstack::neutron::ErrorContext::new("GET", "/v2.0/ports", "busy"),
            ),
        );
        t.driver
            .release_address(&release_addr_req(&pool_id, &addr))
            .await
            .unwrap();
        let want = if exposed { 10 } else { 11 };
        t.pool_settles_at(want).await;
        assert_eq!(
            t.ports_on(&t.network_of(&net).id).len(),
            want,
            "exposed: {exposed}"
        );
    }
}

#[tokio::test]
async fn a_port_taken_again_before_the_tidy_keeps_its_new_endpoint() {
    let t = setup();
    let net = id("pool-tidy");
    let (pool_id, _, _) = t.warm_network(&net, "10.31.0.0/24").await;
    let n = t.network_of(&net);
    let first = id("pool-tidy-1");
    let (addr, _) = t.start(&net, &first, &pool_id, "", "").await.unwrap();
    t.rm(&net, &first, &pool_id, &addr).await;
    t.pool_settles_at(11).await;
    // The same port for the next container (its address asked for), before any pool check.
    let ip = addr.split('/').next().unwrap();
    let second = id("pool-tidy-2");
    let (again, _) = t.start(&net, &second, &pool_id, ip, "").await.unwrap();
    assert_eq!(again.split('/').next().unwrap(), ip);
    let holds = |ep: &str| {
        t.ports_on(&n.id).into_iter().any(|p| {
            p.fixed_ips[0].ip_address.to_string() == ip
                && p.device_id == ep
                && tags::docker_id_tags(ep)
                    .iter()
                    .all(|tag| p.tags.contains(tag))
        })
    };
    t.settle(|| holds(&second)).await;
    t.driver.ports().pools().unwrap().tidy_now();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(holds(&second), "the claim's record is not reset");
    // (The test ids share their upper half: the first's lower-half tag tells them apart.)
    assert!(!t
        .ports_on(&n.id)
        .iter()
        .any(|p| tags::docker_id_tags(&first)
            .iter()
            .all(|tag| p.tags.contains(tag))));
}

/// A pooled port that got its container's own security settings (no port security here) is
/// reset before the pool hands it on: port security back on, the pool's groups, no settings mark.
#[tokio::test]
async fn a_port_with_its_containers_security_settings_is_reset_for_the_next() {
    let t = setup();
    let net = id("pool-nops");
    let (pool_id, _, _) = t.warm_network(&net, "10.31.0.0/24").await;
    let before = t.ports_on(&t.network_of(&net).id)[0]
        .security_groups
        .clone();
    let ep = id("pool-nops-ep");
    let addr = t
        .connect_with(&net, &ep, &pool_id, "", &[(OPT_PORT_SECURITY, "false")])
        .await
        .unwrap();
    let p = t.port_holding(&t.network_of(&net).id, &addr);
    assert_eq!(p.port_security_enabled, Some(false));
    assert!(p.security_groups.is_empty());
    t.driver.leave(&ep_req(&net, &ep));
    t.driver.delete_endpoint(&ep_req(&net, &ep)).await.unwrap();
    t.driver
        .release_address(&release_addr_req(&pool_id, &addr))
        .await
        .unwrap();
    t.pool_settles_at(11).await;
    let back = t
        .neutron
        .ports()
        .into_iter()
        .find(|x| x.id == p.id)
        .expect("back in the pool");
    assert_eq!(back.port_security_enabled, Some(true));
    assert_eq!(back.security_groups, before);
    assert!(
        !back.tags.contains(&TAG_PORT_SETTINGS.to_string()),
        "{:?}",
        back.tags
    );
}
