//! Start-up reconcile: host interfaces Kuryr made for ports that no longer exist in Neutron (the
//! container was removed while the daemon was down) are removed; live ones are left alone. A link
//! goes only when Neutron answers 404 for its own port: a short listing never unplugs anything.
//! Then this host's pooled ports are adopted back into their pools.

use std::collections::HashSet;

use super::pool::{AdoptReport, PortPools};
use super::ports::PortLifecycle;
use crate::constants::DEVICE_OWNER;
use crate::error::{DriverError, Result};
use crate::neutron::PortQuery;

/// What reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// What became of this host's pooled ports.
    pub pool: AdoptReport,
    /// Names of host objects removed.
    pub removed: Vec<String>,
    /// Names of host objects kept (their port is alive).
    pub kept: Vec<String>,
    /// Failures (each names its object); reconcile goes on after one.
    pub errors: Vec<String>,
}

impl PortLifecycle {
    /// Removes stale host interfaces, then puts this host's pooled ports back where they
    /// belong (or deletes them when pools are off).
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let mut report = self.remove_stale_links().await?;
        report.pool =
            PortPools::adopt_all(&self.nt, &self.binding, self.pools.as_ref(), &self.host).await?;
        Ok(report)
    }

    async fn remove_stale_links(&self) -> Result<ReconcileReport> {
        let owned = self
            .binding
            .list_owned()
            .await
            .map_err(|e| DriverError::binding("list host interfaces", e))?;
        let mut report = ReconcileReport::default();
        if owned.is_empty() {
            return Ok(report);
        }
        // One request for every live Kuryr port (bound here, or in a VM not bound at all).
        let ports = self.nt.ports(&PortQuery::owned_by(DEVICE_OWNER)).await?;
        let live_ports: HashSet<&str> = ports.iter().map(|p| p.id.as_str()).collect();
        let live_endpoints: HashSet<String> = ports
            .iter()
            .filter_map(|p| crate::tags::docker_id_from_tags(&p.tags))
            .collect();
        for link in &owned {
            let alive = match (&link.port_id, &link.endpoint_id) {
                (Some(p), _) => live_ports.contains(p.as_str()),
                (None, Some(ep)) => live_endpoints.contains(ep),
                // Nothing recorded: not provably stale, keep it.
                (None, None) => true,
            };
            if alive {
                report.kept.push(link.name.clone());
                continue;
            }
            // The listing can come back partial (a policy or credential change hides ports):
            // only a port Neutron says, by itself, does not exist makes its link stale.
            if let Some(id) = &link.port_id {
                match self.nt.port(id).await {
                    Ok(None) => {}
                    Ok(Some(_)) => {
                        tracing::warn!(link = %link.name, port = %id, "port missing from neutron's listing but alive: kept");
                        report.kept.push(link.name.clone());
                        continue;
                    }
                    Err(e) => {
                        report.kept.push(link.name.clone());
                        report.errors.push(format!("{}: {e}", link.name));
                        continue;
                    }
                }
            }
            match self.binding.remove_owned(link).await {
                Ok(()) => {
                    tracing::info!(link = %link.name, "removed stale host interface");
                    report.removed.push(link.name.clone());
                }
                Err(e) => report.errors.push(format!("{}: {e}", link.name)),
            }
        }
        Ok(report)
    }
}
