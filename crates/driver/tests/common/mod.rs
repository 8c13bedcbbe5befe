//! Test harness: a `KuryrDriver` over `FakeNeutron` + `FakeHostBinding`, and Docker's call
//! sequences (what libnetwork sends for `network create`, `run`, `rm`, `network rm`).
//!
//! The harness speaks strings (IDs, CIDRs, MACs as Docker prints them) and builds the wire
//! requests of `kuryr_plugin_api` inside; the request builders below do the same for tests that
//! call the verbs directly.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use kuryr_binding::FakeHostBinding;
use kuryr_driver::*;
use kuryr_openstack::neutron::{
    FakeNeutron, FixedIpRequest, NeutronApi, NewNetwork, NewPort, NewSubnet, NewSubnetPool,
};
use kuryr_plugin_api::ipam::{
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest,
};
use kuryr_plugin_api::network::{
    CreateEndpointRequest, CreateNetworkRequest, EndpointInterface, EndpointRequest, IpamData,
    JoinRequest, NetworkRequest,
};
use kuryr_plugin_api::{keys, DockerId, MacAddr, Options, PoolId};
use serde_json::{Map, Value};

pub const HOST: &str = "host-1";

pub struct T {
    pub neutron: Arc<FakeNeutron>,
    pub binding: Arc<FakeHostBinding>,
    pub driver: Arc<KuryrDriver>,
    pub cfg: DriverConfig,
}

pub fn config() -> DriverConfig {
    let mut c = DriverConfig::new(HOST);
    c.vif_plugging_is_fatal = true;
    c.vif_plugging_timeout = std::time::Duration::from_secs(2);
    c
}

pub fn setup() -> T {
    setup_with(config())
}

pub fn setup_with(cfg: DriverConfig) -> T {
    let neutron = Arc::new(FakeNeutron::new());
    neutron.activate_on_bind(true);
    let binding = Arc::new(FakeHostBinding::new());
    let driver = Arc::new(KuryrDriver::new(
        neutron.clone(),
        binding.clone(),
        cfg.clone(),
    ));
    T {
        neutron,
        binding,
        driver,
        cfg,
    }
}

// ---- request builders: Docker's wire requests from strings ("" = not set) ----

/// A Docker ID (network or endpoint).
pub fn did(s: &str) -> DockerId {
    s.parse().unwrap_or_else(|e| panic!("docker id {s:?}: {e}"))
}

/// An IPAM PoolID.
pub fn pid(s: &str) -> PoolId {
    s.parse().unwrap_or_else(|e| panic!("pool id {s:?}: {e}"))
}

/// A CIDR, `None` for `""`.
pub fn net_or_none(s: &str) -> Option<IpNet> {
    (!s.is_empty()).then(|| s.parse().unwrap_or_else(|e| panic!("cidr {s:?}: {e}")))
}

/// A bare IP, `None` for `""`.
pub fn ip_or_none(s: &str) -> Option<IpAddr> {
    (!s.is_empty()).then(|| s.parse().unwrap_or_else(|e| panic!("ip {s:?}: {e}")))
}

/// A MAC, `None` for `""`.
pub fn mac_or_none(s: &str) -> Option<MacAddr> {
    (!s.is_empty()).then(|| s.parse().unwrap_or_else(|e| panic!("mac {s:?}: {e}")))
}

/// Flat string options (IPAM options, RequestAddress options).
pub fn opts(kv: &[(&str, &str)]) -> Options {
    kv.iter()
        .fold(Options::new(), |o, (k, v)| o.with(*k, v.to_string()))
}

/// Network options with `-o k=v` driver options under `com.docker.network.generic`, as Docker
/// sends them (also the IPv6 switch, always present in CreateNetwork).
pub fn net_opts(generic: &[(&str, &str)], ipv6: bool) -> Options {
    let g: Map<String, Value> = generic
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Options::new()
        .with(keys::ENABLE_IPV6, ipv6)
        .with(keys::GENERIC, Value::Object(g))
}

/// One `IPAMData` entry: pool, gateway in CIDR form (or `""`), aux addresses by name.
pub fn ipam_data(pool: &str, gateway: &str, aux: &[(&str, &str)]) -> IpamData {
    IpamData {
        address_space: String::new(),
        pool: pool.parse().unwrap(),
        gateway: net_or_none(gateway),
        aux_addresses: aux
            .iter()
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// CreateNetwork with IPv4 (pool, gateway CIDR) entries.
pub fn net_req(net: &str, v4: &[(&str, &str)], generic: &[(&str, &str)]) -> CreateNetworkRequest {
    net_req_full(
        net,
        v4.iter().map(|(p, g)| ipam_data(p, g, &[])).collect(),
        Vec::new(),
        generic,
    )
}

/// CreateNetwork with any IPAM data.
pub fn net_req_full(
    net: &str,
    v4: Vec<IpamData>,
    v6: Vec<IpamData>,
    generic: &[(&str, &str)],
) -> CreateNetworkRequest {
    CreateNetworkRequest {
        network_id: did(net),
        options: net_opts(generic, !v6.is_empty()),
        ipv4_data: v4,
        ipv6_data: v6,
    }
}

/// DeleteNetwork.
pub fn net_id_req(net: &str) -> NetworkRequest {
    NetworkRequest {
        network_id: did(net),
    }
}

/// DeleteEndpoint, Leave, EndpointOperInfo.
pub fn ep_req(net: &str, ep: &str) -> EndpointRequest {
    EndpointRequest {
        network_id: did(net),
        endpoint_id: did(ep),
    }
}

/// Join.
pub fn join_req(net: &str, ep: &str) -> JoinRequest {
    JoinRequest {
        network_id: did(net),
        endpoint_id: did(ep),
        sandbox_key: "/var/run/docker/netns/test".into(),
        options: Options::new(),
    }
}

/// CreateEndpoint: v4 address in CIDR form, v6 address in CIDR form, MAC (each `""` = unset).
pub fn create_ep_req(net: &str, ep: &str, v4: &str, v6: &str, mac: &str) -> CreateEndpointRequest {
    CreateEndpointRequest {
        network_id: did(net),
        endpoint_id: did(ep),
        interface: EndpointInterface {
            address: (!v4.is_empty()).then(|| v4.parse().unwrap()),
            address_ipv6: (!v6.is_empty()).then(|| v6.parse().unwrap()),
            mac_address: mac_or_none(mac),
        },
        options: Options::new(),
    }
}

/// RequestAddress: a bare IP (or `""` for any) and flat options.
pub fn addr_req(pool_id: &str, ip: &str, options: &[(&str, &str)]) -> RequestAddressRequest {
    RequestAddressRequest {
        pool_id: pid(pool_id),
        address: ip_or_none(ip),
        options: opts(options),
    }
}

/// RequestAddress for the network gateway.
pub fn gw_req(pool_id: &str, ip: &str) -> RequestAddressRequest {
    addr_req(pool_id, ip, &[(keys::REQUEST_ADDRESS_TYPE, keys::GATEWAY)])
}

/// RequestAddress for a container, with the MAC Docker generated.
pub fn mac_addr_req(pool_id: &str, ip: &str, mac: &str) -> RequestAddressRequest {
    addr_req(pool_id, ip, &[(keys::MAC_ADDRESS, mac)])
}

/// ReleaseAddress: the address as a bare IP or in CIDR form.
pub fn release_addr_req(pool_id: &str, addr: &str) -> ReleaseAddressRequest {
    ReleaseAddressRequest {
        pool_id: pid(pool_id),
        address: ip_of(addr),
    }
}

/// RequestPool: pool and sub-pool CIDRs (`""` = unset) and `--ipam-opt` values.
pub fn pool_req(
    pool: &str,
    sub_pool: &str,
    v6: bool,
    options: &[(&str, &str)],
) -> RequestPoolRequest {
    RequestPoolRequest {
        address_space: String::new(),
        pool: net_or_none(pool),
        sub_pool: net_or_none(sub_pool),
        options: opts(options),
        v6,
    }
}

/// ReleasePool.
pub fn release_pool_req(pool_id: &str) -> ReleasePoolRequest {
    ReleasePoolRequest {
        pool_id: pid(pool_id),
    }
}

/// The status EndpointOperInfo reports, if any.
pub async fn oper_status(driver: &KuryrDriver, net: &str, ep: &str) -> Option<String> {
    driver
        .endpoint_oper_info(&ep_req(net, ep))
        .await
        .value
        .get("status")
        .map(|v| v.as_str().expect("status is a string").to_string())
}

impl T {
    /// A new driver over the same Neutron and host: what a restarted daemon sees.
    pub fn restart(&self) -> T {
        T {
            neutron: self.neutron.clone(),
            binding: self.binding.clone(),
            driver: Arc::new(KuryrDriver::new(
                self.neutron.clone(),
                self.binding.clone(),
                self.cfg.clone(),
            )),
            cfg: self.cfg.clone(),
        }
    }

    /// The deployer's default pools.
    pub async fn default_pools(&self) -> (String, String) {
        let v4 = self
            .neutron
            .create_subnetpool(&NewSubnetPool {
                name: "kuryr".into(),
                prefixes: vec!["10.90.0.0/16".parse().unwrap()],
                default_prefixlen: Some(24),
                ..Default::default()
            })
            .await
            .unwrap();
        let v6 = self
            .neutron
            .create_subnetpool(&NewSubnetPool {
                name: "kuryr6".into(),
                prefixes: vec!["fd90::/48".parse().unwrap()],
                default_prefixlen: Some(64),
                ..Default::default()
            })
            .await
            .unwrap();
        (v4.id, v6.id)
    }

    /// `docker network create` for one IPv4 pool: RequestPool, gateway RequestAddress,
    /// CreateNetwork. Returns (PoolID, pool, gateway reply). On failure, Docker's rollback runs.
    pub async fn network_create(
        &self,
        net_id: &str,
        pool: &str,
        gateway: &str,
        generic: &[(&str, &str)],
    ) -> Result<(String, String, String), DriverError> {
        self.network_create_full(net_id, &[(pool, "", gateway)], &[], generic, &[])
            .await
            .map(|mut v| v.remove(0))
    }

    /// The general form: v4 and v6 (pool, sub-pool, gateway) entries.
    pub async fn network_create_full(
        &self,
        net_id: &str,
        v4: &[(&str, &str, &str)],
        v6: &[(&str, &str, &str)],
        generic: &[(&str, &str)],
        ipam_opts: &[(&str, &str)],
    ) -> Result<Vec<(String, String, String)>, DriverError> {
        let mut got: Vec<(String, String, String)> = Vec::new();
        let mut data = (Vec::new(), Vec::new());
        for (is_v6, list) in [(false, v4), (true, v6)] {
            for (pool, sub, gw) in list {
                let r = self
                    .driver
                    .request_pool(&pool_req(pool, sub, is_v6, ipam_opts))
                    .await;
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        self.rollback_network(&got).await;
                        return Err(e);
                    }
                };
                let pool_id = r.pool_id.to_string();
                let gw_reply = self.driver.request_address(&gw_req(&pool_id, gw)).await;
                let gw_reply = match gw_reply {
                    Ok(g) => g.address,
                    Err(e) => {
                        got.push((pool_id, r.pool.to_string(), String::new()));
                        self.rollback_network(&got).await;
                        return Err(e);
                    }
                };
                let entry = IpamData {
                    address_space: String::new(),
                    pool: r.pool,
                    gateway: Some(gw_reply),
                    aux_addresses: BTreeMap::new(),
                };
                if is_v6 {
                    data.1.push(entry);
                } else {
                    data.0.push(entry);
                }
                got.push((pool_id, r.pool.to_string(), gw_reply.to_string()));
            }
        }
        let req = net_req_full(net_id, data.0, data.1, generic);
        if let Err(e) = self.driver.create_network(&req).await {
            self.rollback_network(&got).await;
            return Err(e);
        }
        Ok(got)
    }

    /// Docker's IPAM rollback of a failed network create.
    async fn rollback_network(&self, got: &[(String, String, String)]) {
        for (pool_id, _, gw) in got {
            if !gw.is_empty() {
                let _ = self
                    .driver
                    .release_address(&release_addr_req(pool_id, gw))
                    .await;
            }
            let _ = self.driver.release_pool(&release_pool_req(pool_id)).await;
        }
    }

    /// `docker network rm`: ReleaseAddress(gateway), ReleasePool, DeleteNetwork.
    pub async fn network_rm(&self, net_id: &str, pools: &[(String, String, String)]) {
        for (pool_id, _, gw) in pools {
            if !gw.is_empty() {
                self.driver
                    .release_address(&release_addr_req(pool_id, gw))
                    .await
                    .unwrap();
            }
            self.driver
                .release_pool(&release_pool_req(pool_id))
                .await
                .unwrap();
        }
        self.driver
            .delete_network(&net_id_req(net_id))
            .await
            .unwrap();
    }

    /// `docker run` on one IPv4 pool: RequestAddress (with MAC), CreateEndpoint, Join,
    /// EndpointOperInfo. Docker's rollback runs on failure. Returns the address (`ip/len`).
    pub async fn run(
        &self,
        net_id: &str,
        ep_id: &str,
        pool_id: &str,
        ip: &str,
        mac: &str,
    ) -> Result<String, DriverError> {
        let addr = self
            .driver
            .request_address(&mac_addr_req(pool_id, ip, mac))
            .await?
            .address
            .to_string();
        let created = self
            .driver
            .create_endpoint(&create_ep_req(net_id, ep_id, &addr, "", mac))
            .await;
        if let Err(e) = created {
            let _ = self
                .driver
                .release_address(&release_addr_req(pool_id, &addr))
                .await;
            return Err(e);
        }
        if let Err(e) = self.driver.join(&join_req(net_id, ep_id)).await {
            let _ = self.driver.delete_endpoint(&ep_req(net_id, ep_id)).await;
            let _ = self
                .driver
                .release_address(&release_addr_req(pool_id, &addr))
                .await;
            return Err(e);
        }
        self.driver.endpoint_oper_info(&ep_req(net_id, ep_id)).await;
        self.driver.endpoint_oper_info(&ep_req(net_id, ep_id)).await;
        Ok(addr)
    }

    /// RequestAddress for any address of the pool, without a MAC; the address as Docker has it.
    pub async fn any_address(&self, pool_id: &str) -> String {
        self.driver
            .request_address(&addr_req(pool_id, "", &[]))
            .await
            .unwrap()
            .address
            .to_string()
    }

    /// `docker network connect --driver-opt …`: RequestAddress (with `mac`, unless empty), then
    /// CreateEndpoint with the endpoint's own options. Returns the address.
    pub async fn connect_with(
        &self,
        net_id: &str,
        ep_id: &str,
        pool_id: &str,
        mac: &str,
        options: &[(&str, &str)],
    ) -> Result<String, DriverError> {
        let req = if mac.is_empty() {
            addr_req(pool_id, "", &[])
        } else {
            mac_addr_req(pool_id, "", mac)
        };
        let addr = self.driver.request_address(&req).await?.address.to_string();
        let mut ep = create_ep_req(net_id, ep_id, &addr, "", mac);
        ep.options = opts(options);
        self.driver.create_endpoint(&ep).await?;
        Ok(addr)
    }

    /// `docker rm`: Revoke, Leave, DeleteEndpoint, ReleaseAddress.
    pub async fn rm(&self, net_id: &str, ep_id: &str, pool_id: &str, addr: &str) {
        self.driver
            .revoke_external_connectivity(&did(ep_id))
            .await
            .unwrap();
        self.driver.leave(&ep_req(net_id, ep_id));
        self.driver
            .delete_endpoint(&ep_req(net_id, ep_id))
            .await
            .unwrap();
        self.driver
            .release_address(&release_addr_req(pool_id, addr))
            .await
            .unwrap();
    }

    /// Lets the driver's background work (the port naming after CreateEndpoint) run until
    /// `done`, for at most a second.
    pub async fn settle(&self, done: impl Fn() -> bool) {
        for _ in 0..100 {
            if done() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn ports_on(&self, net: &str) -> Vec<kuryr_openstack::neutron::Port> {
        self.neutron
            .ports()
            .into_iter()
            .filter(|p| p.network_id == net && !p.device_owner.starts_with("network:"))
            .collect()
    }

    pub fn network_of(&self, docker_id: &str) -> kuryr_openstack::neutron::Network {
        let tags = tags::docker_id_tags(docker_id);
        let nets: Vec<_> = self
            .neutron
            .networks()
            .into_iter()
            .filter(|n| tags.iter().all(|t| n.tags.contains(t)))
            .collect();
        assert_eq!(nets.len(), 1, "{nets:?}");
        nets[0].clone()
    }
}

/// A 64-hex Docker ID made from a short seed.
pub fn id(seed: &str) -> String {
    let mut s: String = seed.bytes().map(|b| format!("{:02x}", b)).collect();
    while s.len() < 64 {
        s.push('0');
    }
    s.truncate(64);
    s
}

pub fn mac(n: u8) -> String {
    format!("02:42:0a:00:00:{n:02x}")
}

/// The IP of an address given bare or in CIDR form.
pub fn ip_of(addr: &str) -> IpAddr {
    addr.split('/').next().unwrap().parse().unwrap()
}

/// A restarted daemon with another configuration, over the same Neutron and host.
pub fn setup_over(t: &T, cfg: DriverConfig) -> T {
    T {
        neutron: t.neutron.clone(),
        binding: t.binding.clone(),
        driver: Arc::new(KuryrDriver::new(
            t.neutron.clone(),
            t.binding.clone(),
            cfg.clone(),
        )),
        cfg,
    }
}

/// Kuryr inside a VM: a driver with `port_driver` on `eth0`, and the VM's own network and port
/// (with an address on `192.168.0.0/24`, bound to `vm_host` when given).
pub async fn in_a_vm(
    port_driver: PortDriverKind,
    vm_mac: &str,
    vm_host: Option<&str>,
) -> (
    T,
    kuryr_openstack::neutron::Network,
    kuryr_openstack::neutron::Port,
) {
    let mut cfg = config();
    cfg.port_driver = port_driver;
    let t = setup_with(cfg);
    t.binding.set_link_mac("eth0", vm_mac.parse().unwrap());
    let vm_net = t
        .neutron
        .create_network(&NewNetwork {
            name: Some("vm-net".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let vm_sub = t
        .neutron
        .create_subnet(&NewSubnet {
            network_id: vm_net.id.clone(),
            ip_version: 4,
            cidr: Some("192.168.0.0/24".parse().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    let vm = t
        .neutron
        .create_port(&NewPort {
            network_id: vm_net.id.clone(),
            mac_address: Some(vm_mac.parse().unwrap()),
            fixed_ips: Some(vec![FixedIpRequest::subnet(&vm_sub.id)]),
            binding_host_id: vm_host.map(str::to_string),
            ..Default::default()
        })
        .await
        .unwrap();
    (t, vm_net, vm)
}
