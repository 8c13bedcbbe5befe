//! IpamDriver.RequestAddress: the gateway, an aux address, or a container address, reserved as a
//! Neutron port (the port lifecycle's reservation).

use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_plugin_api::ipam::{RequestAddressRequest, RequestAddressResponse};

use super::{first_host, pool_ref, KuryrDriver};
use crate::constants::*;
use crate::core::AddressFor;
use crate::error::{DriverError, Result};
use crate::neutron::Subnet;

impl KuryrDriver {
    pub async fn request_address(
        &self,
        req: &RequestAddressRequest,
    ) -> Result<RequestAddressResponse> {
        let pool = pool_ref(&req.pool_id)?;
        let addr = req.address;
        let mac = req.mac_address();
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
        let with_len = |ip: IpAddr| {
            IpNet::new(ip, len)
                .map(RequestAddressResponse::new)
                .map_err(|_| {
                    DriverError::Conflict(format!("prefix length {len} does not fit address {ip}"))
                })
        };

        if req.is_gateway() {
            return match subnet {
                Some(s) => gateway_of(&s, addr).and_then(|g| match g {
                    Some(g) => with_len(g),
                    // Subnet without a gateway: Docker needs some answer.
                    None => Ok(RequestAddressResponse::new(no_gateway(&s))),
                }),
                // No subnet yet (network being created): the subnet will get this gateway;
                // without --gateway that is the first address, as Neutron would choose.
                None => with_len(addr.unwrap_or_else(|| first_host(&prefix))),
            };
        }

        // Docker sends aux addresses (`--aux-address`) without a MAC or any option, as it does a
        // container's `--ip` now that the IPAM asks for no MAC: they are told apart by when they
        // come, between RequestPool and the CreateNetwork that takes the pool.
        let aux = mac.is_none() && addr.is_some() && self.pool_awaits_network(&pool);
        let Some(subnet) = subnet else {
            if let (Some(a), None) = (addr, mac) {
                // --aux-address during network create: CreateNetwork reserves it once the
                // subnet exists.
                return with_len(a);
            }
            return Err(DriverError::NotFound(format!(
                "no subnet exists for pool {}",
                req.pool_id
            )));
        };
        let purpose = if aux {
            AddressFor::Aux
        } else {
            AddressFor::Container { mac }
        };
        let (ip, _) = self.ports.reserve(&subnet, addr, purpose).await?;
        with_len(ip)
    }
}

impl KuryrDriver {
    /// Whether RequestPool handed out this pool and no CreateNetwork has taken it yet (the
    /// network is being created).
    fn pool_awaits_network(&self, pool: &kuryr_types::PoolRef) -> bool {
        self.ipam().requested.values().any(|r| r.pool == *pool)
    }
}

/// The gateway to answer for an existing subnet: its own, which a requested one must match.
fn gateway_of(s: &Subnet, requested: Option<IpAddr>) -> Result<Option<IpAddr>> {
    match (requested, s.gateway_ip) {
        (None, g) => Ok(g),
        (Some(a), Some(g)) if a == g => Ok(Some(a)),
        (Some(a), g) => Err(DriverError::Conflict(format!(
            "requested gateway {a} does not match gateway {} of subnet {} ({})",
            g.map_or("none".to_string(), |g| g.to_string()),
            s.cidr,
            s.id
        ))),
    }
}

fn no_gateway(s: &Subnet) -> IpNet {
    let text = if s.cidr.addr().is_ipv6() {
        NO_GATEWAY_V6
    } else {
        NO_GATEWAY_V4
    };
    text.parse().expect("constant cidr")
}
