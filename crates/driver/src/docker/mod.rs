//! Docker's front end: libnetwork's remote NetworkDriver and IpamDriver, one file per verb. Each
//! verb takes the wire request (typed and validated by `kuryr-plugin-api`), maps Docker's
//! network model onto Neutron's, and hands container ports to the shared [`PortLifecycle`].

mod abandoned;
mod allocate_network;
mod capabilities;
mod create_endpoint;
mod create_network;
mod deferred;
mod delete_endpoint;
mod delete_network;
mod endpoint_oper_info;
mod external_connectivity;
mod join;
mod leave;
mod memory;
mod options;
mod plugin;
mod port_options;
mod release_address;
mod release_pool;
mod request_address;
mod request_pool;
mod unanswered;
pub use unanswered::POOL_GRACE;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;
use kuryr_binding::HostBinding;
use kuryr_config::DriverConfig;
use kuryr_openstack::neutron::NeutronApi;
use kuryr_plugin_api::DockerId;
use kuryr_types::PoolRef;

pub use external_connectivity::exposed_rules;
pub use join::SUBNETS_FRESH_FOR;
pub(crate) use memory::{IpamMemory, NetworkCache, RequestedPool};

use crate::constants::*;
use crate::core::{PortLifecycle, ReconcileReport};
use crate::error::{DriverError, Result};
use crate::locks::KeyedLocks;
use crate::neutron::{Kind, Net, Nt, Pool, Subnet, SubnetQuery};
use crate::port_driver;
use crate::tags;

/// The Kuryr network + IPAM driver: Docker's model onto Neutron.
pub struct KuryrDriver {
    pub(crate) nt: Nt,
    pub(crate) cfg: DriverConfig,
    pub(crate) ports: PortLifecycle,
    pub(crate) locks: Arc<KeyedLocks>,
    networks: Arc<Mutex<NetworkCache>>,
    ipam: Mutex<IpamMemory>,
    pub(crate) cni: Mutex<crate::cni::CniMemory>,
    /// Tear-downs Neutron failed, run again in the background.
    deferred: Arc<deferred::DeferredTeardowns>,
    /// Set-up calls Docker may not have had the answer of (kept across restarts).
    unanswered: unanswered::UnansweredCalls,
}

impl KuryrDriver {
    /// A driver over a Neutron client and a host binding, with the port driver the
    /// configuration names.
    pub fn new(
        neutron: Arc<dyn NeutronApi>,
        binding: Arc<dyn HostBinding>,
        cfg: DriverConfig,
    ) -> Self {
        let nt = Nt::new(neutron);
        let locks = Arc::new(KeyedLocks::new());
        let port_driver = port_driver::from_config(&cfg.port_driver, &nt, &binding);
        let ports = PortLifecycle::new(nt.clone(), binding, port_driver, &cfg, locks.clone());
        KuryrDriver {
            nt,
            ports,
            locks,
            networks: Arc::new(Mutex::new(NetworkCache::default())),
            ipam: Mutex::new(IpamMemory::default()),
            cni: Mutex::new(Default::default()),
            deferred: Arc::new(deferred::DeferredTeardowns::open(cfg.state_path.as_deref())),
            unanswered: unanswered::UnansweredCalls::open(cfg.state_path.as_deref()),
            cfg,
        }
    }

    /// The Neutron extensions the daemon found at start-up, so that the driver need not ask.
    pub fn learn_extensions(&self, aliases: &[&str]) {
        self.nt.learn_extensions(aliases);
    }

    pub fn config(&self) -> &DriverConfig {
        &self.cfg
    }

    /// The shared port lifecycle (also what start-up reconcile runs on).
    pub fn ports(&self) -> &PortLifecycle {
        &self.ports
    }

    /// Docker networks and endpoints known to this daemon since it started (what it holds in
    /// memory, not what Neutron has): `(networks, endpoints)`. Read-only; for metrics.
    pub fn held(&self) -> (usize, usize) {
        let networks = self.networks().nets.len();
        let endpoints = self.ports.memory().endpoints.len();
        (networks, endpoints)
    }

    /// Removes host interfaces left for ports that are gone (the container was removed while
    /// the daemon was down).
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        self.ports.reconcile().await
    }

    pub(crate) fn networks(&self) -> MutexGuard<'_, NetworkCache> {
        self.networks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn ipam(&self) -> MutexGuard<'_, IpamMemory> {
        self.ipam.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Neutron network of a Docker network (by its tags), cached.
    pub(crate) async fn network_for(&self, docker_net: &DockerId) -> Result<Option<Net>> {
        if let Some(n) = self.networks().nets.get(docker_net) {
            return Ok(Some(n.clone()));
        }
        let mut nets = self
            .nt
            .networks_by_tags(&tags::docker_id_tags(docker_net.as_str()))
            .await?;
        if nets.is_empty() {
            nets = self
                .python_no_tag_network(docker_net)
                .await?
                .into_iter()
                .collect();
        }
        match nets.len() {
            0 => Ok(None),
            1 => {
                let n = nets.remove(0);
                self.networks().nets.insert(docker_net.clone(), n.clone());
                Ok(Some(n))
            }
            _ => Err(DriverError::Conflict(format!(
                "several neutron networks carry the tags of docker network {docker_net}"
            ))),
        }
    }

    /// A network the Python kuryr-libnetwork made or adopted in its no-tag mode (Neutron then
    /// had no tag extension): named by the full Docker network id, untagged. It is adopted with
    /// Kuryr's tags so that every later look-up finds it by tag. Marked existing, so `docker
    /// network rm` keeps it: the Python daemon renamed the networks it adopted the same way, and
    /// a user's network must never be deleted on a guess.
    async fn python_no_tag_network(&self, docker_net: &DockerId) -> Result<Option<Net>> {
        let mut named: Vec<Net> = self
            .nt
            .networks_by_name(docker_net.as_str(), None)
            .await?
            .into_iter()
            .filter(|n| !n.tags.iter().any(|t| t.starts_with(TAG_LH)))
            .collect();
        if named.len() != 1 {
            return Ok(None);
        }
        let mut net = named.remove(0);
        let ours = create_network::adoption_tags(docker_net);
        self.nt.add_tags(Kind::Network, &net.id, &ours).await?;
        tracing::warn!(net = %net.id, docker = %docker_net, "adopted a network named by the docker network id (the Python kuryr's no-tag mode): docker network rm will keep it, delete it in Neutron when no longer needed");
        net.tags.extend(ours);
        Ok(Some(net))
    }

    /// The Neutron network of a Docker network that must exist.
    pub(crate) async fn existing_network(&self, docker_net: &DockerId) -> Result<Net> {
        self.network_for(docker_net).await?.ok_or_else(|| {
            DriverError::NotFound(format!(
                "neutron network for docker network {docker_net} does not exist"
            ))
        })
    }

    /// Forgets everything remembered about a Neutron network.
    pub(crate) fn forget_network(&self, docker_net: &DockerId, neutron_net_id: &str) {
        self.networks().forget(docker_net, neutron_net_id);
        self.ports.memory().forget_network(neutron_net_id);
    }

    /// The subnet a PoolID's addresses live on, if it exists yet, and the prefix of the pool
    /// (used for replies before the subnet exists).
    pub(crate) async fn pool_subnet(&self, pool: &PoolRef) -> Result<(Option<Subnet>, IpNet)> {
        let key = pool.to_string();
        if let Some(s) = self.networks().pool_subnets.get(&key) {
            return Ok((Some(s.clone()), s.cidr));
        }
        let found = match pool {
            PoolRef::Carved { pool_id, cidr } => {
                let subnets = self
                    .nt
                    .subnets(&SubnetQuery::from_pool(pool_id).with_cidr(*cidr))
                    .await?;
                (subnets.into_iter().next(), *cidr)
            }
            PoolRef::Whole(pool_id) => self.whole_pool_subnet(pool_id).await?,
        };
        if let (Some(s), _) = &found {
            self.networks().pool_subnets.insert(key, s.clone());
        }
        Ok(found)
    }

    async fn whole_pool_subnet(&self, pool_id: &str) -> Result<(Option<Subnet>, IpNet)> {
        let whole = PoolRef::Whole(pool_id.to_string());
        let requested = self
            .ipam()
            .requested
            .iter()
            .find(|(_, r)| r.pool == whole)
            .map(|(cidr, r)| (*cidr, r.fresh));
        // A pool this daemon just created has no subnet yet: skip the look-ups.
        if let Some((cidr, true)) = requested {
            return Ok((None, cidr));
        }
        let by_pool = self.nt.subnets(&SubnetQuery::from_pool(pool_id)).await?;
        if by_pool.len() == 1 {
            let s = by_pool.into_iter().next().expect("one subnet");
            let cidr = s.cidr;
            return Ok((Some(s), cidr));
        }
        let pool = self.pool_by_id(pool_id).await?;
        let prefix = first_prefix(&pool)?;
        if by_pool.len() > 1 {
            // Several networks share the pool (the original's multi-host reuse): the one
            // covering the whole prefix is ours.
            let s = by_pool.into_iter().find(|s| s.cidr == prefix);
            return Ok((s, prefix));
        }
        // An adopted subnet is tagged with the pool id by CreateNetwork.
        let tagged = self.nt.subnets(&SubnetQuery::tagged(pool_id)).await?;
        if tagged.len() == 1 {
            return Ok((tagged.into_iter().next(), prefix));
        }
        // Before CreateNetwork tagged it: an adopted subnet with exactly this CIDR, if unique.
        let by_cidr = self
            .nt
            .subnets(&SubnetQuery::default().with_cidr(prefix))
            .await?;
        if by_cidr.len() == 1 {
            return Ok((by_cidr.into_iter().next(), prefix));
        }
        Ok((None, prefix))
    }

    pub(crate) async fn pool_by_id(&self, pool_id: &str) -> Result<Pool> {
        self.nt
            .pool(pool_id)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("subnetpool {pool_id} does not exist")))
    }

    /// Whether a pool is one the daemon may delete: named `<prefix>-<cidr>` by Kuryr and not
    /// adopted.
    pub(crate) fn is_kuryr_pool(&self, pool: &Pool) -> bool {
        let ours = pool.prefixes.iter().any(|p| {
            pool.name == subnetpool_name(&self.cfg.subnetpool_name_prefix, &p.to_string())
        });
        ours && !tags::has(&pool.tags, TAG_SUBNETPOOL_EXISTING)
            && pool.name != self.cfg.default_subnetpool_v4
            && pool.name != self.cfg.default_subnetpool_v6
    }
}

/// Docker's PoolID as Kuryr issued it.
pub(crate) fn pool_ref(pool_id: &kuryr_plugin_api::PoolId) -> Result<PoolRef> {
    pool_id
        .as_str()
        .parse()
        .map_err(|e: kuryr_types::ParseError| DriverError::InvalidRequest(e.to_string()))
}

pub(crate) fn first_prefix(pool: &Pool) -> Result<IpNet> {
    pool.prefixes
        .first()
        .copied()
        .ok_or_else(|| DriverError::Conflict(format!("subnetpool {} has no prefixes", pool.id)))
}

/// An adopted network or pool must be as shared as `neutron.net.shared` says, when given.
pub(crate) fn check_shared(what: &str, id: &str, actual: bool, wanted: Option<bool>) -> Result<()> {
    match wanted {
        Some(w) if w != actual => Err(DriverError::Conflict(format!(
            "{what} {id} is {}shared but {OPT_NET_SHARED}={w} was given",
            if actual { "" } else { "not " }
        ))),
        _ => Ok(()),
    }
}

/// Refuses a CIDR with host bits (`10.0.0.1/24`), which Docker passes through.
pub(crate) fn check_network_cidr(what: &str, net: IpNet) -> Result<IpNet> {
    if net.trunc() != net {
        return Err(DriverError::InvalidRequest(format!(
            "{what} {net} has host bits set (did you mean {}?)",
            net.trunc()
        )));
    }
    Ok(net)
}

/// The first usable host address of a network (Neutron's default gateway).
pub(crate) fn first_host(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let base = u32::from(n.network());
            let host = if n.prefix_len() >= 31 { base } else { base + 1 };
            IpAddr::V4(host.into())
        }
        IpNet::V6(n) => {
            let base = u128::from(n.network());
            let host = if n.prefix_len() >= 127 {
                base
            } else {
                base + 1
            };
            IpAddr::V6(host.into())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn cidr_checks_and_first_hosts() {
        assert!(check_network_cidr("pool", "10.0.0.0/24".parse().unwrap()).is_ok());
        let e = check_network_cidr("pool", "10.0.0.1/24".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("did you mean 10.0.0.0/24"), "{e}");
        assert_eq!(
            first_host(&"10.1.0.0/24".parse().unwrap()).to_string(),
            "10.1.0.1"
        );
        assert_eq!(
            first_host(&"fd90::/64".parse().unwrap()).to_string(),
            "fd90::1"
        );
        assert_eq!(
            first_host(&"10.1.0.4/31".parse().unwrap()).to_string(),
            "10.1.0.4"
        );
    }
}
