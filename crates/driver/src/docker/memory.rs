//! What the Docker front end remembers. [`NetworkCache`] holds what this daemon made or read of
//! networks, subnets and pools, to spare look-ups: a hint, never the only truth (after a restart
//! it is empty and Neutron is asked). [`IpamMemory`] holds the short-lived hand-off between
//! RequestPool and the CreateNetwork that follows within milliseconds: lost on a restart, Docker
//! then simply asks again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use kuryr_plugin_api::DockerId;
use kuryr_types::PoolRef;

use crate::neutron::{Net, Pool, Subnet};

/// How long an address range handed out from a shared pool (the default `kuryr` pool) stays
/// reserved waiting for CreateNetwork to make its subnet.
const CARVE_RESERVATION_TTL: Duration = Duration::from_secs(600);

#[derive(Default)]
pub(crate) struct NetworkCache {
    /// Docker network → its Neutron network.
    pub nets: HashMap<DockerId, Net>,
    /// PoolID → the subnet made from it.
    pub pool_subnets: HashMap<String, Subnet>,
    /// Neutron network id → its subnets and when they were read (Join's gateways and routes).
    pub subnets_of: HashMap<String, (Instant, Vec<Subnet>)>,
    /// Subnetpool id → the pool as RequestPool made or found it (or ReleasePool read it): whether
    /// Kuryr may delete it, without asking again.
    pub pools: HashMap<String, Pool>,
    /// Neutron networks this process created: no earlier process can have left reservations on
    /// them (DeleteNetwork need not look for any).
    pub made_here: HashSet<String>,
}

impl NetworkCache {
    pub fn forget(&mut self, docker_net: &DockerId, neutron_net_id: &str) {
        self.nets.remove(docker_net);
        self.pool_subnets
            .retain(|_, s| s.network_id != neutron_net_id);
        self.subnets_of.remove(neutron_net_id);
        self.made_here.remove(neutron_net_id);
    }

    /// A subnet this daemon made or read, by id.
    pub fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.pool_subnets
            .values()
            .chain(self.subnets_of.values().flat_map(|(_, l)| l))
            .find(|s| s.id == id)
    }

    /// All subnets of a network when every one of them is remembered, else `None`.
    pub fn subnets_on(&self, net: &Net) -> Option<Vec<Subnet>> {
        net.subnets
            .iter()
            .map(|id| self.subnet(id).cloned())
            .collect()
    }
}

/// What RequestPool handed out for a CIDR.
#[derive(Debug, Clone)]
pub(crate) struct RequestedPool {
    pub pool: PoolRef,
    /// The pool (or range) was created by this daemon for the network being created and no
    /// network uses it yet: that network cannot exist in Neutron yet.
    pub fresh: bool,
    /// Docker's `--ip-range`: where containers' addresses come from (the subnet is the pool).
    pub range: Option<IpNet>,
}

#[derive(Default)]
pub(crate) struct IpamMemory {
    /// CIDR → what RequestPool answered for it.
    pub requested: HashMap<IpNet, RequestedPool>,
    /// (pool id, cidr) carved from a shared pool, not yet a subnet.
    pub carved: HashMap<(String, IpNet), Instant>,
}

impl IpamMemory {
    /// Drops carve reservations older than the TTL.
    pub fn expire_reservations(&mut self) {
        self.carved
            .retain(|_, t| t.elapsed() < CARVE_RESERVATION_TTL);
    }
}
