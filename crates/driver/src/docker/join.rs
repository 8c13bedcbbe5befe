//! NetworkDriver.Join: the interface Docker moves into the sandbox, the gateways of the port's
//! subnets (none on an `--internal` network) and every subnet's host routes. Read-only.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use kuryr_plugin_api::network::{InterfaceName, JoinRequest, JoinResponse, StaticRoute};

use super::port_options::network_is_internal;
use super::KuryrDriver;
use crate::error::{DriverError, Result};
use crate::neutron::{Subnet, SubnetQuery};

/// How long Join trusts a network's subnets (gateway, host routes) read for an earlier Join: an
/// operator's change of host routes reaches new containers within this time.
pub const SUBNETS_FRESH_FOR: Duration = Duration::from_secs(30);

impl KuryrDriver {
    pub async fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
        let port = self
            .ports
            .endpoint_port(&req.endpoint_id)
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("no neutron port for endpoint {}", req.endpoint_id))
            })?;
        let subnets = self.network_subnets(&port.network_id).await?;
        // `--internal`: no gateway, so Docker sets no default route through this network.
        let internal = self
            .network_for(&req.network_id)
            .await?
            .is_some_and(|n| network_is_internal(&req.network_id, &n.tags));
        let mut resp = JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: kuryr_binding::naming::container_ifname(&port.id),
                dst_prefix: self.cfg.veth_dst_prefix.clone(),
            }),
            // Neutron provides the gateway: never attach docker_gwbridge.
            disable_gateway_service: true,
            ..Default::default()
        };
        for s in &subnets {
            if !internal && port.fixed_ips.iter().any(|f| f.subnet_id == s.id) {
                match s.gateway_ip {
                    Some(IpAddr::V4(g)) if resp.gateway.is_none() => resp.gateway = Some(g),
                    Some(IpAddr::V6(g)) if resp.gateway_ipv6.is_none() => {
                        resp.gateway_ipv6 = Some(g)
                    }
                    _ => {}
                }
            }
            resp.static_routes.extend(
                s.host_routes
                    .iter()
                    .map(|(dst, via)| StaticRoute::via(*dst, *via)),
            );
        }
        Ok(resp)
    }

    /// A network's subnets: every container start needs their gateways and routes, which change
    /// rarely. Read once, then re-read in the background when older than [`SUBNETS_FRESH_FOR`]
    /// (the container start does not wait for Neutron).
    pub(crate) async fn network_subnets(&self, network_id: &str) -> Result<Vec<Subnet>> {
        let cached = self.networks().subnets_of.get(network_id).cloned();
        if let Some((at, list)) = cached {
            if at.elapsed() >= SUBNETS_FRESH_FOR {
                // Marked fresh now so that one refresh runs, not one per container.
                self.networks()
                    .subnets_of
                    .insert(network_id.to_string(), (Instant::now(), list.clone()));
                let (nt, cache, id) = (
                    self.nt.clone(),
                    self.networks.clone(),
                    network_id.to_string(),
                );
                tokio::spawn(async move {
                    match nt.subnets(&SubnetQuery::on_network(&id)).await {
                        Ok(fresh) => {
                            let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
                            // Not brought back if the network was deleted meanwhile.
                            if let Some(entry) = c.subnets_of.get_mut(&id) {
                                *entry = (Instant::now(), fresh);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(network = %id, error = %e, "re-reading subnets failed")
                        }
                    }
                });
            }
            return Ok(list);
        }
        let list = self
            .nt
            .subnets(&SubnetQuery::on_network(network_id))
            .await?;
        self.networks()
            .subnets_of
            .insert(network_id.to_string(), (Instant::now(), list.clone()));
        Ok(list)
    }
}
