//! IpamDriver.RequestAddress: the gateway, an aux address, or a container address, reserved as a
//! Neutron port.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::PortMode;
use crate::constants::*;
use crate::driver::{first_host, ip_on_subnet, is_kuryr_port, parse_address, KuryrDriver, PoolRef};
use crate::error::{DriverError, Result};
use crate::neutron::{Kind, NewPort, Port, PortChange, PortQuery, Subnet};
use crate::tags;

/// RequestAddress's inputs (internal form).
#[derive(Debug, Clone, Default)]
pub struct AddressRequest {
    pub pool_id: String,
    /// Bare IP, or empty for "any".
    pub address: String,
    pub options: HashMap<String, String>,
}

impl KuryrDriver {
    /// Returns `<ip>/<prefix length>`.
    pub async fn request_address(&self, req: &AddressRequest) -> Result<String> {
        let pool = PoolRef::parse(&req.pool_id)?;
        let addr = match req.address.trim() {
            "" => None,
            a => Some(parse_address("address", a)?),
        };
        let is_gateway = req
            .options
            .get(OPT_REQUEST_ADDRESS_TYPE)
            .is_some_and(|v| v == REQUEST_ADDRESS_TYPE_GATEWAY);
        let mac = req
            .options
            .get(OPT_MAC_ADDRESS)
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty());

        let (subnet, prefix) = self.pool_subnet(&pool).await?;
        if let Some(a) = addr {
            if !prefix.contains(&a) && subnet.as_ref().is_none_or(|s| !s.cidr.contains(&a)) {
                return Err(DriverError::InvalidRequest(format!(
                    "address {a} is not in pool {prefix}"
                )));
            }
        }
        let len = subnet
            .as_ref()
            .map_or(prefix.prefix_len(), |s| s.cidr.prefix_len());

        if is_gateway {
            return match subnet {
                Some(s) => match (addr, s.gateway_ip) {
                    (None, Some(g)) => Ok(format!("{g}/{len}")),
                    // Subnet without a gateway: Docker needs some answer.
                    (None, None) => Ok(if s.cidr.addr().is_ipv6() {
                        NO_GATEWAY_V6.into()
                    } else {
                        NO_GATEWAY_V4.into()
                    }),
                    (Some(a), Some(g)) if a == g => Ok(format!("{a}/{len}")),
                    (Some(a), g) => Err(DriverError::Conflict(format!(
                        "requested gateway {a} does not match gateway {} of subnet {} ({})",
                        g.map_or("none".to_string(), |g| g.to_string()),
                        s.cidr,
                        s.id
                    ))),
                },
                // No subnet yet (network being created): the subnet will get this gateway;
                // without --gateway that is the first address, as Neutron would choose.
                None => Ok(format!(
                    "{}/{len}",
                    addr.unwrap_or_else(|| first_host(&prefix))
                )),
            };
        }

        let Some(subnet) = subnet else {
            if let (Some(a), None) = (addr, &mac) {
                // --aux-address during network create: CreateNetwork reserves it once the
                // subnet exists.
                return Ok(format!("{a}/{len}"));
            }
            return Err(DriverError::NotFound(format!(
                "no subnet exists for pool {}",
                req.pool_id
            )));
        };
        let (ip, _) = self.reserve_address(&subnet, addr, mac.as_deref()).await?;
        Ok(format!("{ip}/{len}"))
    }

    /// Finds (adopting a user's port) or creates the port holding the address. Returns the
    /// address and, when this call created the port, its id.
    pub(crate) async fn reserve_address(
        &self,
        subnet: &Subnet,
        addr: Option<IpAddr>,
        mac: Option<&str>,
    ) -> Result<(IpAddr, Option<String>)> {
        // Serialise duplicates of one request (same MAC or same address), not the whole pool.
        let key = match (mac, addr) {
            (Some(m), _) => format!("mac:{}:{m}", subnet.network_id),
            (None, Some(a)) => format!("ip:{}:{a}", subnet.id),
            (None, None) => String::new(),
        };
        let _guard = if key.is_empty() {
            None
        } else {
            Some(self.locks.lock(&key).await)
        };

        if let Some(a) = addr {
            let found = self
                .nt
                .ports(&PortQuery {
                    fixed_ips: vec![(Some(subnet.id.clone()), Some(a))],
                    ..Default::default()
                })
                .await?;
            if let Some(p) = found.into_iter().next() {
                if mac.is_some() && p.name == AUX_PORT_NAME {
                    return Err(DriverError::Conflict(format!(
                        "address {a} is reserved as an aux address of the network"
                    )));
                }
                self.adopt_or_reuse(&p, subnet).await?;
                return Ok((a, None));
            }
        }
        if let Some(m) = mac {
            // This daemon's own ports first (the other family's request of a dual-stack
            // endpoint, or a duplicate call), without asking Neutron.
            let remembered = {
                let c = self.cache();
                c.pending_ports
                    .values()
                    .find(|p| {
                        p.network_id == subnet.network_id
                            && (p.mac_address == m
                                || c.requested_macs.get(&p.id).is_some_and(|r| r == m))
                    })
                    .cloned()
            };
            let found = match remembered {
                Some(p) => vec![p],
                // A MAC Docker generated cannot belong to a user's port: skip the look-up
                // (one request less per container). A user's --mac-address is looked up.
                None if m.starts_with(DOCKER_MAC_PREFIX) => Vec::new(),
                None => {
                    self.nt
                        .ports(&PortQuery {
                            network_id: Some(subnet.network_id.clone()),
                            mac_address: Some(m.to_string()),
                            ..Default::default()
                        })
                        .await?
                }
            };
            if let Some(p) = found.into_iter().next() {
                return Ok((self.use_port_found_by_mac(p, subnet, addr).await?, None));
            }
        }

        let bind_here = mac.is_some() && self.cfg.port_mode == PortMode::Veth;
        let mac_on_port = self.mac_goes_on_port();
        let port = self
            .nt
            .create_port(&NewPort {
                // An address without a MAC is Docker's --aux-address reservation.
                name: if mac.is_none() && addr.is_some() {
                    AUX_PORT_NAME
                } else {
                    UNBOUND_PORT_NAME
                }
                .into(),
                network_id: subnet.network_id.clone(),
                fixed_ips: vec![(Some(subnet.id.clone()), addr)],
                mac_address: mac.filter(|_| mac_on_port).map(str::to_string),
                device_owner: Some(DEVICE_OWNER.into()),
                device_id: None,
                // Bound now, with the owner, in the same request: CreateEndpoint then only
                // names it (saves the slow binding PUT).
                host_id: bind_here.then(|| self.cfg.host.clone()),
            })
            .await?;
        let ip = ip_on_subnet(&port, &subnet.id).ok_or_else(|| DriverError::Neutron {
            context: format!("create port on subnet {}", subnet.id),
            status: None,
            message: "neutron returned no address on the subnet".into(),
        })?;
        tracing::debug!(port = %port.id, %ip, "reserved address");
        let id = port.id.clone();
        let mut c = self.cache();
        if let (Some(m), false) = (mac, mac_on_port) {
            c.requested_macs.insert(id.clone(), m.to_string());
        }
        c.pending_ports.insert((subnet.id.clone(), ip), port);
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
        // Dual stack: the other family's address goes on the same port (one port per
        // endpoint, as CreateEndpoint wants it).
        let mut fixed: Vec<_> = p
            .fixed_ips
            .iter()
            .map(|f| (Some(f.subnet_id.clone()), Some(f.ip_address)))
            .collect();
        fixed.push((Some(subnet.id.clone()), addr));
        let port = self
            .nt
            .update_port(
                &p.id,
                &PortChange {
                    fixed_ips: Some(fixed),
                    ..Default::default()
                },
            )
            .await?;
        let ip = ip_on_subnet(&port, &subnet.id).ok_or_else(|| DriverError::Neutron {
            context: format!("add subnet {} to port {}", subnet.id, p.id),
            status: None,
            message: "neutron returned no address on the subnet".into(),
        })?;
        self.cache()
            .pending_ports
            .insert((subnet.id.clone(), ip), port);
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
        self.nt
            .add_tag(Kind::Port, &p.id, TAG_PORT_EXISTING)
            .await?;
        tracing::info!(port = %p.id, "adopted existing port");
        Ok(())
    }
}
