//! What the lifecycle remembers between the calls of one container start or stop. Neutron stays
//! the only state: every entry here can be found again in Neutron (by the endpoint's tags or the
//! port's address) after a restart; the memory only saves the look-ups.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Instant;

use kuryr_types::{DockerId, MacAddr};

use crate::neutron::Port;

/// An attached endpoint's port, as CreateEndpoint left it.
#[derive(Debug, Clone)]
pub(crate) struct EndpointRecord {
    pub port: Port,
    /// When `port.status` was read from Neutron.
    pub status_at: Instant,
    /// Whether an exposed-ports security group was made for it (so revoking need not look).
    pub exposed: bool,
}

#[derive(Default)]
pub(crate) struct EndpointMemory {
    /// (subnet id, address) → the port RequestAddress made or found, for CreateEndpoint.
    pub reserved: HashMap<(String, IpAddr), Port>,
    /// Port id → the MAC asked for, where the port keeps Neutron's own (nested macvlan).
    pub requested_macs: HashMap<String, MacAddr>,
    /// Ports carrying a MAC Docker or the user chose: never pooled (a later `--mac-address`
    /// looks them up by that MAC).
    pub chosen_macs: HashSet<String>,
    /// Endpoint → its port.
    pub endpoints: HashMap<DockerId, EndpointRecord>,
    /// (subnet id, address) → the port of an endpoint just detached, as it was left, for the
    /// release that follows.
    pub detached: HashMap<(String, IpAddr), Port>,
    /// Endpoints this daemon detached without error, and when: a repeated DEL (containerd
    /// sends one at StopPodSandbox and again at RemovePodSandbox) is answered without asking
    /// Neutron. Bounded by [`GONE_KEPT_FOR`] and [`GONE_KEPT_MAX`].
    pub gone: HashMap<DockerId, Instant>,
}

/// How long a detached endpoint is remembered as gone.
pub(crate) const GONE_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(600);
/// At most this many detached endpoints are remembered (the oldest go first).
pub(crate) const GONE_KEPT_MAX: usize = 4096;

impl EndpointMemory {
    /// Records an endpoint as cleanly detached.
    pub fn mark_gone(&mut self, endpoint: &DockerId) {
        let now = Instant::now();
        self.gone
            .retain(|_, at| now.duration_since(*at) < GONE_KEPT_FOR);
        if self.gone.len() >= GONE_KEPT_MAX {
            if let Some(oldest) = self
                .gone
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(e, _)| e.clone())
            {
                self.gone.remove(&oldest);
            }
        }
        self.gone.insert(endpoint.clone(), now);
    }

    /// Whether the endpoint was detached here lately (and not attached again since).
    pub fn is_gone(&self, endpoint: &DockerId) -> bool {
        self.gone
            .get(endpoint)
            .is_some_and(|at| at.elapsed() < GONE_KEPT_FOR)
    }

    /// Forgets a port everywhere (it was deleted or given back).
    pub fn forget_port(&mut self, port_id: &str) {
        self.reserved.retain(|_, p| p.id != port_id);
        self.detached.retain(|_, p| p.id != port_id);
        self.requested_macs.remove(port_id);
        self.chosen_macs.remove(port_id);
        self.endpoints.retain(|_, e| e.port.id != port_id);
    }

    /// Forgets every port of a Neutron network (it is being deleted).
    pub fn forget_network(&mut self, network_id: &str) {
        self.reserved.retain(|_, p| p.network_id != network_id);
        self.detached.retain(|_, p| p.network_id != network_id);
        self.endpoints
            .retain(|_, e| e.port.network_id != network_id);
        let live: std::collections::HashSet<&String> = self
            .reserved
            .values()
            .map(|p| &p.id)
            .chain(self.endpoints.values().map(|e| &e.port.id))
            .collect();
        self.requested_macs.retain(|id, _| live.contains(id));
        self.chosen_macs.retain(|id| live.contains(id));
    }
}
