//! NetworkDriver.Join: the interface Docker moves into the sandbox, the gateways of the port's
//! subnets and every subnet's host routes. Read-only.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::driver::{validate_docker_id, KuryrDriver};
use crate::error::{DriverError, Result};
use crate::neutron::{Port, PortQuery, Subnet, SubnetQuery};
use crate::tags;

/// How long Join trusts a network's subnets (gateway, host routes) read for an earlier Join: an
/// operator's change of host routes reaches new containers within this time.
pub const SUBNETS_FRESH_FOR: Duration = Duration::from_secs(30);

/// Join's answer (internal form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInfo {
    pub src_name: String,
    pub dst_prefix: String,
    pub gateway: Option<IpAddr>,
    pub gateway_v6: Option<IpAddr>,
    /// `(destination, next hop)`.
    pub static_routes: Vec<(IpNet, IpAddr)>,
}

impl KuryrDriver {
    pub async fn join(&self, network_id: &str, endpoint_id: &str) -> Result<JoinInfo> {
        validate_docker_id("network id", network_id)?;
        validate_docker_id("endpoint id", endpoint_id)?;
        let port = self.endpoint_port(endpoint_id).await?.ok_or_else(|| {
            DriverError::NotFound(format!("no neutron port for endpoint {endpoint_id}"))
        })?;
        let subnets = self.network_subnets(&port.network_id).await?;
        let mut info = JoinInfo {
            src_name: kuryr_binding::naming::container_ifname(&port.id),
            dst_prefix: self.cfg.veth_dst_prefix.clone(),
            gateway: None,
            gateway_v6: None,
            static_routes: Vec::new(),
        };
        for s in &subnets {
            if port.fixed_ips.iter().any(|f| f.subnet_id == s.id) {
                match s.gateway_ip {
                    Some(g @ IpAddr::V4(_)) if info.gateway.is_none() => info.gateway = Some(g),
                    Some(g @ IpAddr::V6(_)) if info.gateway_v6.is_none() => {
                        info.gateway_v6 = Some(g)
                    }
                    _ => {}
                }
            }
            info.static_routes.extend(s.host_routes.iter().copied());
        }
        Ok(info)
    }

    /// A network's subnets, re-read after [`SUBNETS_FRESH_FOR`]: every container start needs
    /// their gateways and routes, which change rarely.
    async fn network_subnets(&self, network_id: &str) -> Result<Vec<Subnet>> {
        if let Some((at, list)) = self.cache().net_subnets.get(network_id) {
            if at.elapsed() < SUBNETS_FRESH_FOR {
                return Ok(list.clone());
            }
        }
        let list = self
            .nt
            .subnets(&SubnetQuery {
                network_id: Some(network_id.to_string()),
                ..Default::default()
            })
            .await?;
        self.cache()
            .net_subnets
            .insert(network_id.to_string(), (Instant::now(), list.clone()));
        Ok(list)
    }

    /// The endpoint's port: remembered from CreateEndpoint, else found by the endpoint tags.
    pub(crate) async fn endpoint_port(&self, endpoint_id: &str) -> Result<Option<Port>> {
        if let Some(e) = self.cache().endpoints.get(endpoint_id) {
            return Ok(Some(e.port.clone()));
        }
        let ports = self
            .nt
            .ports(&PortQuery {
                tags: tags::docker_id_tags(endpoint_id),
                ..Default::default()
            })
            .await?;
        Ok(ports.into_iter().next())
    }
}
