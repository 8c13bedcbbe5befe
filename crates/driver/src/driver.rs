//! `KuryrDriver`: shared state, caches and helpers used by the per-verb files.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use kuryr_binding::HostBinding;
use kuryr_openstack::neutron::NeutronApi;

use crate::config::DriverConfig;
use crate::constants::*;
use crate::error::{DriverError, Result};
use crate::locks::KeyedLocks;
use crate::neutron::{Net, Nt, Pool, Port, Subnet, SubnetQuery};
use crate::tags;

/// How long an address range handed out from a shared pool (default `kuryr` pool) stays
/// reserved in memory waiting for CreateNetwork to make its subnet.
const CARVE_RESERVATION_TTL: Duration = Duration::from_secs(600);

/// Docker's opaque PoolID. Either a whole subnetpool (the original's scheme, `<pool uuid>`) or a
/// range carved from a shared pool such as the default `kuryr` pool (`<pool uuid>/<cidr>`), so
/// that every network gets its own subnet of the pool's default prefix length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PoolRef {
    Whole(String),
    Carved { pool_id: String, cidr: IpNet },
}

impl PoolRef {
    pub(crate) fn parse(s: &str) -> Result<Self> {
        let bad = || DriverError::InvalidRequest(format!("invalid pool id {s:?}"));
        if s.is_empty() {
            return Err(bad());
        }
        match s.split_once('/') {
            None => Ok(PoolRef::Whole(s.to_string())),
            Some((id, cidr)) if !id.is_empty() => Ok(PoolRef::Carved {
                pool_id: id.to_string(),
                cidr: IpNet::from_str(cidr).map_err(|_| bad())?,
            }),
            Some(_) => Err(bad()),
        }
    }

    pub(crate) fn pool_id(&self) -> &str {
        match self {
            PoolRef::Whole(id) => id,
            PoolRef::Carved { pool_id, .. } => pool_id,
        }
    }
}

impl fmt::Display for PoolRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolRef::Whole(id) => f.write_str(id),
            PoolRef::Carved { pool_id, cidr } => write!(f, "{pool_id}/{cidr}"),
        }
    }
}

/// What RequestPool handed out for a CIDR, remembered for the gateway RequestAddress and
/// CreateNetwork that follow within milliseconds (saves Neutron look-ups).
#[derive(Debug, Clone)]
pub(crate) struct RequestedPool {
    pub pool: PoolRef,
    /// The pool was created by this daemon and no network uses it yet.
    pub fresh: bool,
}

/// Endpoint facts learnt in CreateEndpoint, reused by Join/EndpointOperInfo/DeleteEndpoint.
#[derive(Debug, Clone)]
pub(crate) struct EndpointInfo {
    pub port: Port,
    /// When `port.status` was read from Neutron.
    pub status_at: Instant,
    /// Whether ProgramExternalConnectivity made an exposed-ports group for it (so Revoke
    /// need not look for one).
    pub exposed: bool,
}

#[derive(Default)]
pub(crate) struct Caches {
    /// Docker network id → Neutron network (immutable mapping while the network exists).
    pub nets: HashMap<String, Net>,
    /// PoolID → the subnet made from it.
    pub pool_subnets: HashMap<String, Subnet>,
    /// CIDR → what RequestPool answered for it.
    pub requested: HashMap<IpNet, RequestedPool>,
    /// (pool id, cidr) carved from a shared pool, not yet a subnet.
    pub carved: HashMap<(String, IpNet), Instant>,
    /// (subnet id, address) → port made by RequestAddress, for CreateEndpoint.
    pub pending_ports: HashMap<(String, IpAddr), Port>,
    /// Endpoint id → facts.
    pub endpoints: HashMap<String, EndpointInfo>,
    /// (subnet id, address) → the port of an endpoint DeleteEndpoint just removed, as it left
    /// it, for the ReleaseAddress that follows (saves looking it up again).
    pub released_ports: HashMap<(String, IpAddr), Port>,
    /// The VM's own port id (nested modes).
    pub vm_port_id: Option<String>,
    /// Neutron network id → its subnets and when they were read (Join's gateways and routes).
    pub net_subnets: HashMap<String, (Instant, Vec<Subnet>)>,
    /// Port id → the MAC Docker asked for, where the port keeps Neutron's own (nested macvlan:
    /// the container's MAC lives in the VM port's address pair, see `iface_mac`).
    pub requested_macs: HashMap<String, String>,
}

/// The Kuryr network + IPAM driver: Docker's model onto Neutron.
pub struct KuryrDriver {
    pub(crate) nt: Nt,
    pub(crate) binding: Arc<dyn HostBinding>,
    pub(crate) cfg: DriverConfig,
    pub(crate) locks: KeyedLocks,
    pub(crate) cache: Mutex<Caches>,
}

impl KuryrDriver {
    pub fn new(
        neutron: Arc<dyn NeutronApi>,
        binding: Arc<dyn HostBinding>,
        cfg: DriverConfig,
    ) -> Self {
        KuryrDriver {
            nt: Nt::new(neutron),
            binding,
            cfg,
            locks: KeyedLocks::new(),
            cache: Mutex::new(Caches::default()),
        }
    }

    pub fn config(&self) -> &DriverConfig {
        &self.cfg
    }

    pub(crate) fn cache(&self) -> std::sync::MutexGuard<'_, Caches> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Neutron network of a Docker network (by the lh/uh tags), cached.
    pub(crate) async fn network_for(&self, docker_net_id: &str) -> Result<Option<Net>> {
        if let Some(n) = self.cache().nets.get(docker_net_id) {
            return Ok(Some(n.clone()));
        }
        let nets = self
            .nt
            .networks_by_tags(&tags::docker_id_tags(docker_net_id))
            .await?;
        match nets.len() {
            0 => Ok(None),
            1 => {
                let n = nets.into_iter().next().expect("one network");
                self.cache()
                    .nets
                    .insert(docker_net_id.to_string(), n.clone());
                Ok(Some(n))
            }
            _ => Err(DriverError::Conflict(format!(
                "several neutron networks carry the tags of docker network {docker_net_id}"
            ))),
        }
    }

    /// Forgets everything cached about a Neutron network.
    pub(crate) fn forget_network(&self, docker_net_id: &str, neutron_net_id: &str) {
        let mut c = self.cache();
        c.nets.remove(docker_net_id);
        c.pool_subnets.retain(|_, s| s.network_id != neutron_net_id);
        c.pending_ports
            .retain(|_, p| p.network_id != neutron_net_id);
        let live: std::collections::HashSet<String> =
            c.pending_ports.values().map(|p| p.id.clone()).collect();
        c.requested_macs.retain(|id, _| live.contains(id));
        c.endpoints
            .retain(|_, e| e.port.network_id != neutron_net_id);
        c.released_ports
            .retain(|_, p| p.network_id != neutron_net_id);
        c.net_subnets.remove(neutron_net_id);
    }

    /// The subnet a PoolID's addresses live on, if it exists yet, and the prefix of the pool
    /// (used for replies before the subnet exists).
    pub(crate) async fn pool_subnet(&self, pool: &PoolRef) -> Result<(Option<Subnet>, IpNet)> {
        let key = pool.to_string();
        if let Some(s) = self.cache().pool_subnets.get(&key) {
            return Ok((Some(s.clone()), s.cidr));
        }
        let found = match pool {
            PoolRef::Carved { pool_id, cidr } => {
                let subnets = self
                    .nt
                    .subnets(&SubnetQuery {
                        subnetpool_id: Some(pool_id.clone()),
                        cidr: Some(*cidr),
                        ..Default::default()
                    })
                    .await?;
                (subnets.into_iter().next(), *cidr)
            }
            PoolRef::Whole(pool_id) => self.whole_pool_subnet(pool_id).await?,
        };
        if let (Some(s), _) = &found {
            self.cache().pool_subnets.insert(key, s.clone());
        }
        Ok(found)
    }

    async fn whole_pool_subnet(&self, pool_id: &str) -> Result<(Option<Subnet>, IpNet)> {
        let requested = {
            let c = self.cache();
            c.requested
                .iter()
                .find(|(_, r)| r.pool == PoolRef::Whole(pool_id.to_string()))
                .map(|(cidr, r)| (*cidr, r.fresh))
        };
        // A pool this daemon just created has no subnet yet: skip the look-ups.
        if let Some((cidr, true)) = requested {
            return Ok((None, cidr));
        }
        let by_pool = self
            .nt
            .subnets(&SubnetQuery {
                subnetpool_id: Some(pool_id.to_string()),
                ..Default::default()
            })
            .await?;
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
        let tagged = self
            .nt
            .subnets(&SubnetQuery {
                tags: vec![pool_id.to_string()],
                ..Default::default()
            })
            .await?;
        if tagged.len() == 1 {
            return Ok((tagged.into_iter().next(), prefix));
        }
        // Before CreateNetwork tagged it: an adopted subnet with exactly this CIDR, if unique.
        let by_cidr = self
            .nt
            .subnets(&SubnetQuery {
                cidr: Some(prefix),
                ..Default::default()
            })
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

    /// Drops carve reservations older than the TTL.
    pub(crate) fn expire_reservations(c: &mut Caches) {
        c.carved.retain(|_, t| t.elapsed() < CARVE_RESERVATION_TTL);
    }
}

pub(crate) fn first_prefix(pool: &Pool) -> Result<IpNet> {
    pool.prefixes
        .first()
        .copied()
        .ok_or_else(|| DriverError::Conflict(format!("subnetpool {} has no prefixes", pool.id)))
}

/// Parses a CIDR Docker sent, refusing host bits (`10.0.0.1/24`).
pub(crate) fn parse_network_cidr(what: &str, s: &str) -> Result<IpNet> {
    let net = IpNet::from_str(s.trim())
        .map_err(|_| DriverError::InvalidRequest(format!("{what} {s:?} is not a cidr")))?;
    if net.trunc() != net {
        return Err(DriverError::InvalidRequest(format!(
            "{what} {s} has host bits set (did you mean {}?)",
            net.trunc()
        )));
    }
    Ok(net)
}

/// Parses an address in CIDR form (`10.0.0.5/24`) or bare (`10.0.0.5`).
pub(crate) fn parse_address(what: &str, s: &str) -> Result<IpAddr> {
    let s = s.trim();
    let ip = s.split('/').next().unwrap_or(s);
    IpAddr::from_str(ip)
        .map_err(|_| DriverError::InvalidRequest(format!("{what} {s:?} is not an ip address")))
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

/// Whether Kuryr made this port (and may delete it), as opposed to adopting a user's port.
pub(crate) fn is_kuryr_port(p: &Port) -> bool {
    if tags::has(&p.tags, TAG_PORT_EXISTING) {
        return false;
    }
    tags::has(&p.tags, DEVICE_OWNER)
        || p.name == UNBOUND_PORT_NAME
        || p.name == AUX_PORT_NAME
        || (!p.device_id.is_empty() && p.name == port_name(&p.device_id))
        || (p.device_owner == DEVICE_OWNER && p.tags.is_empty())
}

/// Whether a string looks like a Docker ID (64 hex or a 25-char swarm ID).
pub(crate) fn is_docker_id(s: &str) -> bool {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        || (s.len() == 25
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()))
}

pub(crate) fn validate_docker_id(what: &str, s: &str) -> Result<()> {
    if is_docker_id(s) {
        Ok(())
    } else {
        Err(DriverError::InvalidRequest(format!("invalid {what} {s:?}")))
    }
}

/// The port's address on a subnet.
pub(crate) fn ip_on_subnet(p: &Port, subnet_id: &str) -> Option<IpAddr> {
    p.fixed_ips
        .iter()
        .find(|f| f.subnet_id == subnet_id)
        .map(|f| f.ip_address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ref_round_trips() {
        let w = PoolRef::parse("0b6e4e6a-3b3b-4f6e-9a1e-4d9c3f7a2b10").unwrap();
        assert_eq!(
            w,
            PoolRef::Whole("0b6e4e6a-3b3b-4f6e-9a1e-4d9c3f7a2b10".into())
        );
        let c = PoolRef::parse("abc/10.90.3.0/24").unwrap();
        assert_eq!(c.to_string(), "abc/10.90.3.0/24");
        assert_eq!(c.pool_id(), "abc");
        let c6 = PoolRef::parse("abc/fd90:0:0:3::/64").unwrap();
        assert_eq!(c6.to_string(), "abc/fd90:0:0:3::/64");
        assert!(PoolRef::parse("").is_err());
        assert!(PoolRef::parse("/10.0.0.0/8").is_err());
        assert!(PoolRef::parse("abc/zzz").is_err());
    }

    #[test]
    fn cidr_and_address_parsing() {
        assert!(parse_network_cidr("pool", "10.0.0.0/24").is_ok());
        let e = parse_network_cidr("pool", "10.0.0.1/24").unwrap_err();
        assert!(e.to_string().contains("host bits"), "{e}");
        assert!(parse_network_cidr("pool", "pool-should-be-cidr").is_err());
        assert_eq!(
            parse_address("a", "10.0.0.5/24").unwrap().to_string(),
            "10.0.0.5"
        );
        assert_eq!(
            parse_address("a", "fd00::5").unwrap().to_string(),
            "fd00::5"
        );
        assert_eq!(
            first_host(&"10.1.0.0/24".parse().unwrap()).to_string(),
            "10.1.0.1"
        );
        assert_eq!(
            first_host(&"fd90::/64".parse().unwrap()).to_string(),
            "fd90::1"
        );
    }

    #[test]
    fn docker_ids() {
        assert!(is_docker_id(&"a".repeat(64)));
        assert!(is_docker_id("abcdefghijklmnopqrstuvwxy"));
        assert!(!is_docker_id("xyz"));
        assert!(!is_docker_id(&"g".repeat(64)));
    }
}
