//! Test harness: a `KuryrDriver` over `FakeNeutron` + `FakeHostBinding`, and Docker's call
//! sequences (what libnetwork sends for `network create`, `run`, `rm`, `network rm`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use kuryr_binding::FakeHostBinding;
use kuryr_driver::constants::*;
use kuryr_driver::*;
use kuryr_openstack::neutron::{FakeNeutron, NeutronApi, NewSubnetPool};

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
        let opts: HashMap<String, String> = ipam_opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut got: Vec<(String, String, String)> = Vec::new();
        let mut data = (Vec::new(), Vec::new());
        for (is_v6, list) in [(false, v4), (true, v6)] {
            for (pool, sub, gw) in list {
                let r = self
                    .driver
                    .request_pool(&PoolRequest {
                        pool: pool.to_string(),
                        sub_pool: sub.to_string(),
                        v6: is_v6,
                        options: opts.clone(),
                    })
                    .await;
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        self.rollback_network(&got).await;
                        return Err(e);
                    }
                };
                let gw_reply = self
                    .driver
                    .request_address(&AddressRequest {
                        pool_id: r.pool_id.clone(),
                        address: gw.to_string(),
                        options: [(
                            OPT_REQUEST_ADDRESS_TYPE.to_string(),
                            REQUEST_ADDRESS_TYPE_GATEWAY.to_string(),
                        )]
                        .into(),
                    })
                    .await;
                let gw_reply = match gw_reply {
                    Ok(g) => g,
                    Err(e) => {
                        got.push((r.pool_id.clone(), r.pool.to_string(), String::new()));
                        self.rollback_network(&got).await;
                        return Err(e);
                    }
                };
                let entry = IpamData {
                    pool: r.pool.to_string(),
                    gateway: gw_reply.clone(),
                    aux_addresses: HashMap::new(),
                };
                if is_v6 {
                    data.1.push(entry);
                } else {
                    data.0.push(entry);
                }
                got.push((r.pool_id, r.pool.to_string(), gw_reply));
            }
        }
        let req = NetworkRequest {
            network_id: net_id.to_string(),
            ipv4: data.0,
            ipv6: data.1,
            generic: generic
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        if let Err(e) = self.driver.create_network(&req).await {
            self.rollback_network(&got).await;
            return Err(e);
        }
        Ok(got)
    }

    /// Docker's IPAM rollback of a failed network create.
    async fn rollback_network(&self, got: &[(String, String, String)]) {
        for (pool_id, _, gw) in got {
            if let Some(ip) = gw.split('/').next().filter(|s| !s.is_empty()) {
                let _ = self.driver.release_address(pool_id, ip).await;
            }
            let _ = self.driver.release_pool(pool_id).await;
        }
    }

    /// `docker network rm`: ReleaseAddress(gateway), ReleasePool, DeleteNetwork.
    pub async fn network_rm(&self, net_id: &str, pools: &[(String, String, String)]) {
        for (pool_id, _, gw) in pools {
            if let Some(ip) = gw.split('/').next().filter(|s| !s.is_empty()) {
                self.driver.release_address(pool_id, ip).await.unwrap();
            }
            self.driver.release_pool(pool_id).await.unwrap();
        }
        self.driver.delete_network(net_id).await.unwrap();
    }

    /// `docker run` on one IPv4 pool: RequestAddress (with MAC), CreateEndpoint, Join,
    /// EndpointOperInfo. Docker's rollback runs on failure. Returns the address.
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
            .request_address(&AddressRequest {
                pool_id: pool_id.to_string(),
                address: ip.to_string(),
                options: [(OPT_MAC_ADDRESS.to_string(), mac.to_string())].into(),
            })
            .await?;
        let created = self
            .driver
            .create_endpoint(&EndpointRequest {
                network_id: net_id.to_string(),
                endpoint_id: ep_id.to_string(),
                address: addr.clone(),
                address_v6: String::new(),
                mac_address: mac.to_string(),
            })
            .await;
        if let Err(e) = created {
            let _ = self.driver.release_address(pool_id, &addr).await;
            return Err(e);
        }
        if let Err(e) = self.driver.join(net_id, ep_id).await {
            let _ = self.driver.delete_endpoint(net_id, ep_id).await;
            let _ = self.driver.release_address(pool_id, &addr).await;
            return Err(e);
        }
        self.driver.endpoint_oper_info(ep_id).await;
        self.driver.endpoint_oper_info(ep_id).await;
        Ok(addr)
    }

    /// `docker rm`: Revoke, Leave, DeleteEndpoint, ReleaseAddress.
    pub async fn rm(&self, net_id: &str, ep_id: &str, pool_id: &str, addr: &str) {
        self.driver
            .revoke_external_connectivity(ep_id)
            .await
            .unwrap();
        self.driver.leave(net_id, ep_id).await.unwrap();
        self.driver.delete_endpoint(net_id, ep_id).await.unwrap();
        self.driver.release_address(pool_id, addr).await.unwrap();
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

pub fn ip_of(addr: &str) -> IpAddr {
    addr.split('/').next().unwrap().parse().unwrap()
}
