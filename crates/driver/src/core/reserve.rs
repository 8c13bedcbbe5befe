//! Addresses as ports: an IPAM reservation is a Neutron port holding the address (made, or a
//! user's port adopted), and its release deletes Kuryr's port or gives an adopted one back.

use std::net::IpAddr;
use std::time::Duration;

use kuryr_types::MacAddr;

use super::pool::PoolOwner;
use super::ports::{ip_on_subnet, is_kuryr_port, PortLifecycle};
use crate::constants::*;
use crate::error::{teardown_result, DriverError, Result};
use crate::neutron::{Kind, NewPort, Port, PortChange, PortQuery, Subnet};
use crate::tags;

/// Who an address is reserved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressFor {
    /// A container; `mac` when Docker passed one (a daemon that read the old capability, or
    /// the CNI front end).
    Container { mac: Option<MacAddr> },
    /// Docker's `--aux-address`: held, never handed to a container.
    Aux,
}

/// How long a request for a specific address waits for the pooled port holding it to come back
/// from recycling.
const RECYCLE_WAIT: Duration = Duration::from_secs(30);
/// How long a container start that found the pool empty waits for a port being made or
/// recycled for it before making one on demand.
const PENDING_WAIT: Duration = Duration::from_secs(10);
/// How long a container start on a full subnet waits for pooled ports still being made.
const FULL_SUBNET_WAIT: Duration = Duration::from_secs(30);

impl PortLifecycle {
    /// Finds (adopting a user's port) or makes the port holding an address on `subnet`: `addr`
    /// when given, any otherwise. A container's address comes from this host's port pool when it
    /// has one (no Neutron request), else its port is made bound to this host, ready for the
    /// attach. Returns the address and, when this call made the port, its id.
    pub(crate) async fn reserve(
        &self,
        subnet: &Subnet,
        addr: Option<IpAddr>,
        purpose: AddressFor,
    ) -> Result<(IpAddr, Option<String>)> {
        let mac = match purpose {
            AddressFor::Container { mac } => mac,
            AddressFor::Aux => None,
        };
        let container = purpose != AddressFor::Aux;
        // Serialise duplicates of one request (same MAC or same address), not the whole pool.
        let key = match (mac, addr) {
            (Some(m), _) => Some(format!("mac:{}:{m}", subnet.network_id)),
            (None, Some(a)) => Some(format!("ip:{}:{a}", subnet.id)),
            (None, None) => None,
        };
        let _guard = match &key {
            Some(k) => Some(self.locks.lock(k).await),
            None => None,
        };

        if let (true, None, Some(pools)) = (container, mac, &self.pools) {
            if let Some(p) = pools.take(&subnet.id, &subnet.network_id, addr) {
                return self.remember_reserved(subnet, p).map(|ip| (ip, None));
            }
            // Docker makes a network's endpoints one at a time: during a burst a port coming
            // back to the pool is sooner than one made on demand, and costs Neutron nothing.
            if addr.is_none() {
                let coming = pools
                    .wait_for_free(&subnet.id, &subnet.network_id, PENDING_WAIT)
                    .await;
                if let Some(p) = coming {
                    return self.remember_reserved(subnet, p).map(|ip| (ip, None));
                }
            }
        }
        if let Some(a) = addr {
            if let Some(p) = self.port_at(subnet, a).await? {
                if container && p.name == AUX_PORT_NAME {
                    return Err(DriverError::Conflict(format!(
                        "address {a} is reserved as an aux address of the network"
                    )));
                }
                if let Some(p) = self.take_pooled_at(&p, a, container).await? {
                    return self.remember_reserved(subnet, p).map(|ip| (ip, None));
                }
                self.adopt_or_reuse(&p, subnet).await?;
                return Ok((a, None));
            }
        }
        if let Some(m) = mac {
            if let Some(p) = self.port_with_mac(subnet, m).await? {
                if let Some(pools) = self.pooled(&p) {
                    // A pooled port never goes to two containers.
                    if pools.take_by_id(&p.id, RECYCLE_WAIT).await?.is_some() {
                        self.memory().chosen_macs.insert(p.id.clone());
                    }
                }
                return Ok((self.use_port_found_by_mac(p, subnet, addr).await?, None));
            }
        }
        match self.make_reservation(subnet, addr, purpose, None).await {
            Err(e) if e.is_address_exhausted() => {
                self.reserve_on_full_subnet(subnet, addr, purpose, e).await
            }
            other => other,
        }
    }

    /// A pooled port found holding an address asked for: taken from this host's pool (a
    /// container's request), refused when another host's pool or an aux address wants it.
    /// `Ok(None)`: not a pooled port.
    async fn take_pooled_at(&self, p: &Port, a: IpAddr, container: bool) -> Result<Option<Port>> {
        let Some(pools) = &self.pools else {
            return Ok(None);
        };
        match pools.owner(p) {
            PoolOwner::NoPool => Ok(None),
            PoolOwner::OtherHost => Err(DriverError::Conflict(format!(
                "address {a} is held by port {} of another host's port pool",
                p.id
            ))),
            PoolOwner::ThisHost if !container => Err(DriverError::Conflict(format!(
                "address {a} is held by port {} of this host's port pool",
                p.id
            ))),
            PoolOwner::ThisHost => match pools.take_by_id(&p.id, RECYCLE_WAIT).await? {
                Some(p) => Ok(Some(p)),
                // Pooled, but neither free nor held here (a restart left it): as any Kuryr port.
                None => Ok(None),
            },
        }
    }

    /// The subnet had no address left for a new port: a container start takes a pooled port
    /// still being made; anything else gets an address back from the pool and tries again.
    async fn reserve_on_full_subnet(
        &self,
        subnet: &Subnet,
        addr: Option<IpAddr>,
        purpose: AddressFor,
        full: DriverError,
    ) -> Result<(IpAddr, Option<String>)> {
        let Some(pools) = &self.pools else {
            return Err(full);
        };
        if let (AddressFor::Container { mac: None }, None) = (purpose, addr) {
            if let Some(p) = pools
                .wait_for_free(&subnet.id, &subnet.network_id, FULL_SUBNET_WAIT)
                .await
            {
                return self.remember_reserved(subnet, p).map(|ip| (ip, None));
            }
        }
        if !pools.evict_one(&subnet.id).await {
            return Err(full);
        }
        self.make_reservation(subnet, addr, purpose, None).await
    }

    /// A container's port made in `project` (a CNI network's): never from the pool, whose
    /// ports are in Kuryr's own project, and tagged so that it never joins one.
    pub(crate) async fn reserve_in_project(
        &self,
        subnet: &Subnet,
        project: &str,
    ) -> Result<(IpAddr, Option<String>)> {
        self.make_reservation(
            subnet,
            None,
            AddressFor::Container { mac: None },
            Some(project),
        )
        .await
    }

    /// Records a port taken from the pool for the CreateEndpoint that follows; its address.
    fn remember_reserved(&self, subnet: &Subnet, p: Port) -> Result<IpAddr> {
        let ip = address_on(&p, subnet)?;
        tracing::debug!(port = %p.id, %ip, "address from the port pool");
        self.memory().reserved.insert((subnet.id.clone(), ip), p);
        Ok(ip)
    }

    async fn port_at(&self, subnet: &Subnet, a: IpAddr) -> Result<Option<Port>> {
        let found = self.nt.ports(&PortQuery::at(&subnet.id, a)).await?;
        Ok(found.into_iter().next())
    }

    /// The port with this MAC on the subnet's network: this daemon's own first (the other
    /// family's request of a dual-stack endpoint, or a duplicate call), without asking Neutron.
    async fn port_with_mac(&self, subnet: &Subnet, m: MacAddr) -> Result<Option<Port>> {
        let remembered = {
            let mem = self.memory();
            mem.reserved
                .values()
                .find(|p| {
                    p.network_id == subnet.network_id
                        && (p.mac_address == m || mem.requested_macs.get(&p.id) == Some(&m))
                })
                .cloned()
        };
        if remembered.is_some() {
            return Ok(remembered);
        }
        // A MAC Docker generated cannot belong to a user's port: skip the look-up (one request
        // less per container). A user's --mac-address is looked up.
        if is_docker_generated(m) {
            return Ok(None);
        }
        let found = self
            .nt
            .ports(&PortQuery::with_mac(m).on_network(&subnet.network_id))
            .await?;
        Ok(found.into_iter().next())
    }

    async fn make_reservation(
        &self,
        subnet: &Subnet,
        addr: Option<IpAddr>,
        purpose: AddressFor,
        project: Option<&str>,
    ) -> Result<(IpAddr, Option<String>)> {
        let (aux, mac) = match purpose {
            AddressFor::Container { mac } => (false, mac),
            AddressFor::Aux => (true, None),
        };
        let bind_here = !aux && self.port_driver.binds_to_host();
        let mac_on_port = self.port_driver.mac_on_port();
        let port = self
            .nt
            .create_port(&NewPort {
                name: if aux {
                    AUX_PORT_NAME
                } else {
                    UNBOUND_PORT_NAME
                }
                .into(),
                network_id: subnet.network_id.clone(),
                fixed_ips: vec![(Some(subnet.id.clone()), addr)],
                mac_address: mac.filter(|_| mac_on_port),
                device_owner: Some(DEVICE_OWNER.into()),
                device_id: None,
                // Bound now, with the owner, in the same request: the attach then only names it
                // (saves the slow binding update).
                host_id: bind_here.then(|| self.host.clone()),
                tags: project
                    .map(|_| vec![TAG_PORT_PROJECT.to_string()])
                    .unwrap_or_default(),
                project_id: project.map(str::to_string),
            })
            .await?;
        crate::crash_point::reached(crate::crash_point::RESERVE_PORT_MADE);
        let ip = address_on(&port, subnet)?;
        tracing::debug!(port = %port.id, %ip, "reserved address");
        let id = port.id.clone();
        let mut mem = self.memory();
        match (mac, mac_on_port) {
            (Some(m), false) => {
                mem.requested_macs.insert(id.clone(), m);
            }
            (Some(_), true) => {
                mem.chosen_macs.insert(id.clone());
            }
            _ => {}
        }
        mem.reserved.insert((subnet.id.clone(), ip), port);
        Ok((ip, Some(id)))
    }

    async fn use_port_found_by_mac(
        &self,
        p: Port,
        subnet: &Subnet,
        addr: Option<IpAddr>,
    ) -> Result<IpAddr> {
        if let Some(ip) = ip_on_subnet(&p, &subnet.id) {
            if addr.is_some_and(|a| a != ip) {
                return Err(DriverError::Conflict(format!(
                    "port {} with mac {} already holds {ip} on subnet {}",
                    p.id, p.mac_address, subnet.cidr
                )));
            }
            self.adopt_or_reuse(&p, subnet).await?;
            return Ok(ip);
        }
        if !is_kuryr_port(&p) {
            return Err(DriverError::Conflict(format!(
                "port {} with mac {} has no address on subnet {}",
                p.id, p.mac_address, subnet.cidr
            )));
        }
        // Dual stack: the other family's address goes on the same port (one port per endpoint,
        // as the attach wants it).
        let mut fixed: Vec<_> = p
            .fixed_ips
            .iter()
            .map(|f| (Some(f.subnet_id.clone()), Some(f.ip_address)))
            .collect();
        fixed.push((Some(subnet.id.clone()), addr));
        let port = self.nt.set_fixed_ips(&p.id, fixed).await?;
        let ip = address_on(&port, subnet)?;
        self.memory().reserved.insert((subnet.id.clone(), ip), port);
        Ok(ip)
    }

    /// A found port is either ours (a replayed request) or a user's that we adopt.
    async fn adopt_or_reuse(&self, p: &Port, subnet: &Subnet) -> Result<()> {
        // Carrying an endpoint's tags means a running container holds it.
        let in_use = tags::docker_id_from_tags(&p.tags).is_some()
            || (!is_kuryr_port(p) && !p.device_owner.is_empty() && p.device_owner != DEVICE_OWNER);
        if in_use {
            return Err(DriverError::Conflict(format!(
                "port {} on subnet {} is in use (device_owner {:?}, device_id {:?})",
                p.id, subnet.cidr, p.device_owner, p.device_id
            )));
        }
        if is_kuryr_port(p) || tags::has(&p.tags, TAG_PORT_EXISTING) {
            return Ok(());
        }
        // Adopting rebinds the port here: never take one another host is serving (a VM's, or
        // another Kuryr host's container).
        let elsewhere = !p.host_id.is_empty() && p.host_id != self.host;
        if elsewhere && self.port_driver.binds_to_host() {
            return Err(DriverError::Conflict(format!(
                "port {} on subnet {} is bound to host {:?}: kuryr adopts only unbound ports or \
                 ports bound to this host ({:?})",
                p.id, subnet.cidr, p.host_id, self.host
            )));
        }
        self.nt
            .add_tag(Kind::Port, &p.id, TAG_PORT_EXISTING)
            .await?;
        tracing::info!(port = %p.id, "adopted existing port");
        Ok(())
    }

    /// Releases the address `ip` of `subnet`: deletes Kuryr's port, gives an adopted port back,
    /// leaves a foreign port (the router's, DHCP's) alone. Idempotent.
    pub(crate) async fn release(&self, subnet_id: &str, ip: IpAddr) -> Result<()> {
        self.release_address_of(subnet_id, ip, false).await
    }

    /// A release run again after Neutron failed it, while Docker may have handed the address
    /// out again: ports this daemon has given to an endpoint or a reservation since, pooled
    /// ports and ports bound to another host are left alone.
    pub(crate) async fn release_again(&self, subnet_id: &str, ip: IpAddr) -> Result<()> {
        self.release_address_of(subnet_id, ip, true).await
    }

    async fn release_address_of(&self, subnet_id: &str, ip: IpAddr, again: bool) -> Result<()> {
        let detached = self.memory().detached.remove(&(subnet_id.to_string(), ip));
        // Not detached by this daemon: DeleteEndpoint may never have come (the daemon died
        // before Docker had CreateEndpoint's answer, and Docker gave up on the endpoint), so
        // the links of a port deleted here go with it.
        let unbind_first = detached.is_none();
        let ports = match detached {
            Some(p) => vec![p],
            None => self.nt.ports(&PortQuery::at(subnet_id, ip)).await?,
        };
        let ports: Vec<Port> = if again {
            let m = self.memory();
            ports
                .into_iter()
                .filter(|p| {
                    let held = m.reserved.values().any(|r| r.id == p.id)
                        || m.endpoints.values().any(|e| e.port.id == p.id);
                    let elsewhere = !p.host_id.is_empty() && p.host_id != self.host;
                    !held && !elsewhere && self.pooled(p).is_none()
                })
                .collect()
        } else {
            ports
        };
        let mut errors = Vec::new();
        for p in ports {
            if let Some(pools) = self.pooled(&p) {
                // Back to its pool (recycled in the background); Docker need not wait. A port
                // no container holds is free or being recycled already (a repeated release).
                self.memory().forget_port(&p.id);
                if pools.is_claimed(&p.id) {
                    if tags::has(&p.tags, TAG_PORT_SETTINGS) {
                        // Its groups or port security were its container's: reset first.
                        pools.mark_exposed(&p.id);
                    }
                    pools.give_back(p);
                }
                continue;
            }
            if self
                .pools
                .as_ref()
                .is_some_and(|pools| pools.owner(&p) == PoolOwner::OtherHost)
            {
                tracing::debug!(port = %p.id, "address held by another host's port pool");
                continue;
            }
            let chosen_mac = self.memory().chosen_macs.contains(&p.id);
            let result = if tags::has(&p.tags, TAG_PORT_EXISTING) {
                self.give_back_port(&p).await
            } else if is_kuryr_port(&p) {
                let poolable = !chosen_mac
                    && p.name != AUX_PORT_NAME
                    && !tags::has(&p.tags, TAG_PORT_PROJECT)
                    && !tags::has(&p.tags, TAG_PORT_SETTINGS);
                let pooled = poolable && self.pools.as_ref().is_some_and(|pools| pools.take_in(&p));
                if pooled {
                    Ok(())
                } else {
                    if unbind_first {
                        self.remove_links_of_port(&p.id, &mut errors).await;
                    }
                    self.nt.delete_port(&p.id).await
                }
            } else {
                tracing::debug!(port = %p.id, owner = %p.device_owner, "address held by a foreign port");
                Ok(())
            };
            if let Err(e) = result {
                errors.push(e);
            }
            self.memory().forget_port(&p.id);
        }
        teardown_result(format!("release address {ip}"), errors)
    }

    /// Undoes what adoption changed: host, owner, the device id Kuryr set, and Kuryr's tags.
    async fn give_back_port(&self, p: &Port) -> Result<()> {
        let mut change = PortChange::default();
        if p.device_owner == DEVICE_OWNER {
            change.device_owner = Some(String::new());
        }
        if !p.host_id.is_empty() {
            change.host_id = Some(String::new());
        }
        let device_is_ours = p
            .device_id
            .parse::<kuryr_types::DockerId>()
            .is_ok_and(|d| d.is_full_hex())
            || (!p.device_id.is_empty() && p.name.starts_with(&p.device_id));
        if device_is_ours {
            change.device_id = Some(String::new());
        }
        if !change.is_empty() {
            self.nt.update_port(&p.id, &change).await?;
        }
        let kept: Vec<String> = p
            .tags
            .iter()
            .filter(|t| *t != TAG_PORT_EXISTING && !tags::is_kuryr_id_tag(t))
            .cloned()
            .collect();
        if kept.len() != p.tags.len() {
            self.nt.set_tags(Kind::Port, &p.id, &kept).await?;
        }
        tracing::info!(port = %p.id, "released adopted port");
        Ok(())
    }
}

/// The port's address on the subnet it was made or extended for.
fn address_on(port: &Port, subnet: &Subnet) -> Result<IpAddr> {
    ip_on_subnet(port, &subnet.id).ok_or_else(|| {
        DriverError::Conflict(format!(
            "neutron gave port {} no address on subnet {}",
            port.id, subnet.id
        ))
    })
}

/// Whether Docker generated this MAC (its prefix `02:42`).
fn is_docker_generated(m: MacAddr) -> bool {
    m.octets()[..2] == DOCKER_MAC_PREFIX
}
