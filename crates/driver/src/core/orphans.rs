//! Reservations that never became endpoints. RequestAddress makes a port (`kuryr-unbound-port`,
//! bound to this host, no endpoint tags) and CreateEndpoint names it for its endpoint. When the
//! daemon dies between the two (or before Docker read the answer), Docker sends no
//! ReleaseAddress: nothing would ever delete the port, and it would keep its network from being
//! deleted. Two things find such ports:
//! - a sweep at start-up and then periodically: a port seen in two sweeps a full period apart,
//!   still without an endpoint and not a reservation this daemon holds, is deleted;
//! - `docker network rm`: no container can be on a network Docker deletes, so this host's
//!   reservations on it go first.

use std::collections::HashSet;

use super::ports::{is_kuryr_port, PortLifecycle};
use crate::constants::{DEVICE_OWNER, UNBOUND_PORT_NAME};
use crate::error::{teardown_result, Result};
use crate::neutron::{Port, PortQuery};
use crate::tags;

/// What the previous sweep saw: ports that looked like orphans then.
#[derive(Debug, Default)]
pub struct OrphanWatch {
    seen: HashSet<String>,
}

impl PortLifecycle {
    /// This host's reservations without an endpoint (on one network, or all).
    async fn unclaimed_reservations(&self, network_id: Option<&str>) -> Result<Vec<Port>> {
        if !self.port_driver.binds_to_host() {
            // Nested ports are bound to the VM's host, not ours: no way to tell ours apart.
            return Ok(Vec::new());
        }
        let ports = self
            .nt
            .ports(&PortQuery {
                network_id: network_id.map(str::to_string),
                name: Some(UNBOUND_PORT_NAME.into()),
                device_owner: Some(DEVICE_OWNER.into()),
                host_id: Some(self.host.clone()),
                ..Default::default()
            })
            .await?;
        let mem = self.memory();
        let held: HashSet<&str> = mem
            .reserved
            .values()
            .map(|p| p.id.as_str())
            .chain(mem.endpoints.values().map(|e| e.port.id.as_str()))
            .chain(mem.detached.values().map(|p| p.id.as_str()))
            .collect();
        Ok(ports
            .into_iter()
            // Name, owner and host are the query's filters.
            .filter(|p| {
                is_kuryr_port(p)
                    && tags::docker_id_from_tags(&p.tags).is_none()
                    && !held.contains(p.id.as_str())
            })
            .collect())
    }

    /// One sweep: deletes the orphans the previous sweep saw too; remembers the others for the
    /// next. Returns the ids deleted. Every candidate is tried; errors name their port.
    pub async fn sweep_orphans(&self, watch: &mut OrphanWatch) -> Result<Vec<String>> {
        let now: HashSet<String> = self
            .unclaimed_reservations(None)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        let (old, new): (Vec<String>, Vec<String>) =
            now.into_iter().partition(|id| watch.seen.contains(id));
        watch.seen = new.into_iter().collect();
        self.delete_orphans(old).await
    }

    /// Deletes this host's reservations on a network Docker is deleting.
    pub(crate) async fn delete_reservations_on(&self, network_id: &str) -> Result<Vec<String>> {
        let ports = self.unclaimed_reservations(Some(network_id)).await?;
        self.delete_orphans(ports.into_iter().map(|p| p.id).collect())
            .await
    }

    async fn delete_orphans(&self, ids: Vec<String>) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for id in ids {
            match self.nt.delete_port(&id).await {
                Ok(()) => {
                    tracing::info!(port = %id, "deleted a reservation no endpoint ever took");
                    self.memory().forget_port(&id);
                    deleted.push(id);
                }
                Err(e) => errors.push(e),
            }
        }
        teardown_result("delete orphaned reservations", errors).map(|()| deleted)
    }
}
