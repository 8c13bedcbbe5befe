//! Port pools: Neutron ports made ahead of time, per subnet, bound to this host and (with
//! `pre_plug`) already plugged and ACTIVE, so that a container start takes one without asking
//! Neutron. A pool never makes anything fail that works without it: a subnet that cannot have
//! one (several subnets on the network), a MAC asked for, or an empty pool all fall back to
//! making the port on demand.
//!
//! A pooled port carries `kuryr.pool:<host>` for as long as it exists: free, it waits here;
//! held by a container, it also carries the endpoint's tags, and comes back here when released.
//! What a restart needs is in Neutron (the tags) and on the host (the links' owner mark, which
//! says whether an endpoint still holds the port): [`PortPools::adopt`] reads both.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kuryr_binding::constants::POOL_LINK_OWNER;
use kuryr_binding::{BindMode, BindRequest, HostBinding, OwnedLink, UnbindRequest};
use kuryr_config::PoolConfig;
use kuryr_types::{Backoff, DockerId};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::ports::holds;
use crate::constants::*;
use crate::error::{DriverError, Result};
use crate::neutron::{Kind, NewPort, Nt, Port, PortChange, PortQuery, SubnetQuery};
use crate::port_driver::PortDriver;
use crate::tags;

/// A pool no container took a port from for this long shrinks to its minimum.
const IDLE_AFTER: Duration = Duration::from_secs(600);

/// How long a refill waits for its new ports to become ACTIVE before dropping them.
const ACTIVE_LIMIT: Duration = Duration::from_secs(60);
/// Port deletes a drain sends to Neutron at once.
const DRAIN_CONCURRENCY: usize = 4;

/// Whose pool a port is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolOwner {
    ThisHost,
    OtherHost,
    NoPool,
}

/// The port pools of this host.
#[derive(Clone)]
pub struct PortPools {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: PoolConfig,
    host: String,
    /// `kuryr.pool:<host>`.
    tag: String,
    nt: Nt,
    binding: Arc<dyn HostBinding>,
    port_driver: Arc<dyn PortDriver>,
    /// Whether pooled ports are plugged when they enter the pool.
    plug: bool,
    state: Mutex<State>,
    /// Signalled whenever a port becomes free or a pool's work ends.
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// Subnet id → its pool.
    pools: HashMap<String, SubnetPool>,
    /// Pooled ports a container holds: port id → subnet id.
    claimed: HashMap<String, String>,
    /// The last background write to a port: the next one waits for it, so a release never
    /// overtakes the claim before it.
    /// With it, how many writes the port was given while one was in flight: a Neutron write that
    /// is no longer the port's last one is skipped ([`Inner::after_latest`]).
    writes: HashMap<String, (u64, JoinHandle<()>)>,
    /// Claimed ports whose security groups their container changed (exposed ports): they are
    /// reset in Neutron before another container may have them.
    exposed: HashSet<String>,
    /// Free ports whose Neutron record still shows their last endpoint (returned at once): the
    /// next pool check resets those still free; a claim rewrites the record anyway.
    untidy: HashSet<String>,
}

struct SubnetPool {
    network_id: String,
    /// Whether the subnet can have a pool: it is its network's only subnet (a dual-stack
    /// endpoint needs one port with both addresses, which two requests without a MAC cannot
    /// pair up). `None` until the first refill checked.
    eligible: Option<bool>,
    free: VecDeque<Port>,
    /// Ports being made, plugged or recycled for this pool.
    pending: usize,
    refilling: bool,
    /// `docker network rm` is emptying it: nothing enters any more.
    draining: bool,
    /// Container starts that found the pool empty since the last refill (the next batch grows).
    missed: usize,
    /// The security groups Neutron gave the pool's ports; a recycled port gets them back.
    security_groups: Option<Vec<String>>,
    /// When a container last took a port (or the pool was made).
    last_take: Instant,
}

impl SubnetPool {
    fn new(network_id: &str) -> Self {
        SubnetPool {
            network_id: network_id.to_string(),
            eligible: None,
            free: VecDeque::new(),
            pending: 0,
            refilling: false,
            draining: false,
            missed: 0,
            security_groups: None,
            last_take: Instant::now(),
        }
    }
}

/// What [`PortPools::adopt`] found at start-up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AdoptReport {
    /// Free ports back in their pools.
    pub free: usize,
    /// Ports a container holds (they come back when released).
    pub held: usize,
    /// Ports released while the daemon was down, or whose plug was lost: recycled.
    pub recycled: usize,
    /// Ports deleted (pools off, or their subnet cannot have a pool).
    pub deleted: usize,
}

/// `kuryr.pool:<host>`, cut to Neutron's tag length.
pub(crate) fn pool_tag(host: &str) -> String {
    tags::bounded_tag(TAG_POOL, host)
}

/// Whose pool `p` belongs to, for a host tagged `tag`.
pub(crate) fn pool_owner(p: &Port, tag: &str) -> PoolOwner {
    if tags::has(&p.tags, tag) {
        PoolOwner::ThisHost
    } else if p.tags.iter().any(|t| t.starts_with(TAG_POOL)) {
        PoolOwner::OtherHost
    } else {
        PoolOwner::NoPool
    }
}

impl PortPools {
    pub(crate) fn new(
        cfg: PoolConfig,
        host: &str,
        nt: Nt,
        binding: Arc<dyn HostBinding>,
        port_driver: Arc<dyn PortDriver>,
    ) -> Self {
        let plug = cfg.pre_plug && port_driver.binds_to_host();
        PortPools {
            inner: Arc::new(Inner {
                tag: pool_tag(host),
                host: host.to_string(),
                cfg,
                nt,
                binding,
                port_driver,
                plug,
                state: Mutex::new(State::default()),
                changed: Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state()
    }

    pub(crate) fn owner(&self, p: &Port) -> PoolOwner {
        pool_owner(p, &self.inner.tag)
    }

    /// Whether a container holds this pooled port (taken and not yet given back).
    pub(crate) fn is_claimed(&self, port_id: &str) -> bool {
        self.state().claimed.contains_key(port_id)
    }

    /// The claimed port's security groups were changed for its container.
    pub(crate) fn mark_exposed(&self, port_id: &str) {
        let mut st = self.state();
        if st.claimed.contains_key(port_id) {
            st.exposed.insert(port_id.to_string());
        }
    }

    /// A port of this host's pools that no container holds (free, or coming back): whatever
    /// endpoint tags Neutron still shows on it are a departed container's.
    pub(crate) fn is_unclaimed_member(&self, p: &Port) -> bool {
        self.owner(p) == PoolOwner::ThisHost && !self.is_claimed(&p.id)
    }

    /// `kuryr.pool:<host>`.
    pub(crate) fn owner_tag(&self) -> &str {
        &self.inner.tag
    }

    /// A claimed port stops being a pooled one (it needs a MAC of the user's): its plug goes,
    /// and it is released like any port made on demand. The caller drops the pool's tag.
    pub(crate) async fn leave(&self, p: &Port) {
        self.state().claimed.remove(&p.id);
        if self.inner.plug {
            if let Err(e) = self.inner.binding.unbind(&pool_unbind(p)).await {
                tracing::warn!(port = %p.id, error = %e, "unplugging a pooled port failed");
            }
        }
    }

    /// Whether pooled ports are plugged ahead of time.
    pub(crate) fn pre_plugs(&self) -> bool {
        self.inner.plug
    }

    /// Resets in Neutron the free ports returned at once since the last pool check (what the
    /// periodic check does; tests call it directly).
    pub fn tidy_now(&self) {
        self.inner.tidy();
    }

    /// Free ports per subnet and ports being made (for metrics and tests).
    pub fn sizes(&self) -> (usize, usize) {
        let st = self.state();
        st.pools.values().fold((0, 0), |(f, p), pool| {
            (f + pool.free.len(), p + pool.pending)
        })
    }

    /// Free ports of one subnet's pool.
    pub fn free_on(&self, subnet_id: &str) -> usize {
        self.state()
            .pools
            .get(subnet_id)
            .map_or(0, |p| p.free.len())
    }

    /// Takes a free port of the subnet's pool (holding `addr` when given), without asking
    /// Neutron; starts a refill when the pool runs low. `None`: make the port on demand.
    pub(crate) fn take(
        &self,
        subnet_id: &str,
        network_id: &str,
        addr: Option<IpAddr>,
    ) -> Option<Port> {
        self.take_free(subnet_id, network_id, addr, true)
    }

    /// [`Self::take`]; `count_miss`: an empty pool counts as a container that found it empty
    /// (once per container: not again while it waits).
    fn take_free(
        &self,
        subnet_id: &str,
        network_id: &str,
        addr: Option<IpAddr>,
        count_miss: bool,
    ) -> Option<Port> {
        let taken = {
            let mut st = self.state();
            let pool = st
                .pools
                .entry(subnet_id.to_string())
                .or_insert_with(|| SubnetPool::new(network_id));
            // Unchecked (adopted after a restart) is fine: ports were only made for a subnet
            // that could have a pool, and Docker adds no subnet to an existing network.
            let taken = if pool.eligible != Some(false) && !pool.draining {
                let at = match addr {
                    None => (!pool.free.is_empty()).then_some(0),
                    Some(a) => pool.free.iter().position(|p| holds(p, a)),
                };
                at.and_then(|i| pool.free.remove(i))
            } else {
                None
            };
            // A miss while ports are coming back means the pool is too small for the load:
            // it grows (the caller waits for a port); a miss with nothing coming makes the
            // port on demand, and the pool grows after that container's attach
            // (`refill_if_low` from there), not competing with it.
            let mut grow_now = false;
            if taken.is_none() && addr.is_none() && count_miss {
                pool.missed += 1;
                grow_now = pool.pending > 0;
                tracing::debug!(subnet = %subnet_id, pending = pool.pending, missed = pool.missed, "pool empty");
            }
            pool.last_take = Instant::now();
            if let Some(p) = &taken {
                st.claimed.insert(p.id.clone(), subnet_id.to_string());
            }
            (taken, grow_now)
        };
        let (taken, grow_now) = taken;
        if taken.is_some() || grow_now {
            self.refill_if_low(subnet_id);
        }
        taken
    }

    /// Takes the pooled port `port_id` for an address asked for by a container: at once when
    /// free, after its recycling when it is being recycled (up to `limit`). `Ok(None)`: not in a
    /// pool here. A port a container holds is a conflict.
    pub(crate) async fn take_by_id(&self, port_id: &str, limit: Duration) -> Result<Option<Port>> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.inner.changed.notified();
            {
                let mut st = self.state();
                if st.claimed.contains_key(port_id) {
                    return Err(DriverError::Conflict(format!(
                        "port {port_id} is in use by a container"
                    )));
                }
                let found = st.pools.iter_mut().find_map(|(sid, pool)| {
                    let i = pool.free.iter().position(|p| p.id == port_id)?;
                    Some((sid.clone(), pool.free.remove(i)?))
                });
                if let Some((sid, p)) = found {
                    st.claimed.insert(p.id.clone(), sid);
                    return Ok(Some(p));
                }
                let busy = st
                    .writes
                    .get(port_id)
                    .is_some_and(|(_, h)| !h.is_finished());
                if !busy {
                    return Ok(None);
                }
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return Err(DriverError::Timeout(format!(
                    "port {port_id} is still being returned to its pool"
                )));
            }
        }
    }

    /// Waits (up to `limit`) for a port of the subnet's pool still being made or recycled: a
    /// nearly full subnet hands those out before saying it is full.
    pub(crate) async fn wait_for_free(
        &self,
        subnet_id: &str,
        network_id: &str,
        limit: Duration,
    ) -> Option<Port> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.inner.changed.notified();
            if let Some(p) = self.take_free(subnet_id, network_id, None, false) {
                return Some(p);
            }
            let waiting = {
                let st = self.state();
                st.pools
                    .get(subnet_id)
                    .is_some_and(|p| p.pending > 0 && !p.draining)
            };
            if !waiting {
                return None;
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Deletes one free port of the subnet's pool, giving its address back to the subnet (an
    /// address asked for on demand must not fail because the pool holds the last ones).
    /// Returns whether one was deleted.
    pub(crate) async fn evict_one(&self, subnet_id: &str) -> bool {
        let victim = {
            let mut st = self.state();
            st.pools.get_mut(subnet_id).and_then(|p| p.free.pop_back())
        };
        match victim {
            Some(p) => {
                if let Err(e) = self.inner.discard(&p).await {
                    tracing::warn!(port = %p.id, error = %e, "evicting a pooled port failed");
                }
                true
            }
            None => false,
        }
    }

    /// After a claimed port was attached: writes the endpoint's tags (and, when `rename`, the
    /// port's name and device id) in the background (the caller already has its answer).
    pub(crate) fn write_claim(
        &self,
        port: &Port,
        endpoint: &DockerId,
        extra: &[String],
        rename: bool,
    ) {
        // A port returned at once may still carry its last endpoint's tags in Neutron (and in
        // the copy read from there): the whole list is written, without them.
        let mut want = tags::without_kuryr_id_tags(&port.tags);
        for t in tags::docker_id_tags(endpoint.as_str())
            .into_iter()
            .chain(extra.iter().cloned())
        {
            if !want.contains(&t) {
                want.push(t);
            }
        }
        let change = rename.then(|| PortChange {
            name: Some(format!("{endpoint}{PORT_NAME_SUFFIX}")),
            device_id: Some(endpoint.to_string()),
            ..Default::default()
        });
        let (nt, id) = (self.inner.nt.clone(), port.id.clone());
        self.inner.after_latest(&port.id, async move {
            let named = async {
                match &change {
                    Some(c) => nt.update_port(&id, c).await.map(drop),
                    None => Ok(()),
                }
            };
            let (tagged, named) = tokio::join!(nt.set_tags(Kind::Port, &id, &want), named);
            for e in [tagged.err(), named.err()].into_iter().flatten() {
                if !e.is_not_found() {
                    tracing::warn!(port = %id, error = %e, "writing a pooled port's endpoint failed");
                }
            }
        });
    }

    /// A released pooled port goes back to its pool (recycled in the background: unplugged,
    /// reset, plugged afresh) or, when the pool is full or going away, is deleted.
    pub(crate) fn give_back(&self, port: Port) {
        let subnet = {
            let mut st = self.state();
            let subnet = st
                .claimed
                .remove(&port.id)
                .or_else(|| port.fixed_ips.first().map(|f| f.subnet_id.clone()));
            if let Some(pool) = subnet.as_ref().and_then(|s| st.pools.get_mut(s)) {
                pool.pending += 1;
            }
            let exposed = st.exposed.remove(&port.id);
            (subnet, !exposed)
        };
        let (subnet, fast) = subnet;
        if fast {
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.return_at_once(port, subnet).await });
        } else {
            self.inner.spawn_recycle(port, subnet);
        }
    }

    /// A port made on demand (the pool was empty) and now released joins the pool instead of
    /// being deleted, when its subnet has a pool with room. Whether it was taken in.
    pub(crate) fn take_in(&self, port: &Port) -> bool {
        let subnet = match port.fixed_ips.as_slice() {
            [only] => only.subnet_id.clone(),
            _ => return false,
        };
        {
            let mut st = self.state();
            let Some(pool) = st.pools.get_mut(&subnet) else {
                return false;
            };
            let room = pool.free.len() + pool.pending < self.inner.cfg.max;
            if pool.draining || pool.eligible == Some(false) || !room {
                return false;
            }
            pool.pending += 1;
        }
        self.inner.spawn_recycle(port.clone(), Some(subnet));
        true
    }

    /// Empties the pools of a network that is being deleted: waits for their work in flight,
    /// then deletes every free port. Errors name their port; every port is tried.
    pub(crate) async fn drain_network(&self, network_id: &str) -> Result<()> {
        let subnets: Vec<String> = {
            let mut st = self.state();
            st.pools
                .iter_mut()
                .filter(|(_, p)| p.network_id == network_id)
                .map(|(sid, p)| {
                    p.draining = true;
                    sid.clone()
                })
                .collect()
        };
        if subnets.is_empty() {
            return Ok(());
        }
        // Work in flight ends by deleting its port (the pool is draining).
        let deadline = Instant::now() + ACTIVE_LIMIT;
        loop {
            let notified = self.inner.changed.notified();
            let busy = {
                let st = self.state();
                subnets.iter().any(|s| {
                    st.pools
                        .get(s)
                        .is_some_and(|p| p.pending > 0 || p.refilling)
                })
            };
            if !busy
                || tokio::time::timeout_at(deadline.into(), notified)
                    .await
                    .is_err()
            {
                break;
            }
        }
        let ports: Vec<Port> = {
            let mut st = self.state();
            subnets
                .iter()
                .filter_map(|s| st.pools.remove(s))
                .flat_map(|p| p.free.into_iter())
                .collect()
        };
        // A few at a time: a pool grown by a burst holds dozens, and so many deletes at once
        // overflow a small Neutron's listen queue (connections time out: seen in the soak).
        let mut errors: Vec<DriverError> = Vec::new();
        for some in ports.chunks(DRAIN_CONCURRENCY) {
            let results =
                futures::future::join_all(some.iter().map(|p| self.inner.discard(p))).await;
            errors.extend(results.into_iter().filter_map(|r| r.err()));
        }
        crate::error::teardown_result(
            format!("drain the port pool of network {network_id}"),
            errors,
        )
    }

    /// Unplugs and deletes one of this host's pool ports ("not found" is done).
    pub(crate) async fn discard(&self, p: &Port) -> Result<()> {
        self.inner.discard(p).await
    }

    /// Start-up: finds this host's pooled ports in Neutron (one request) and, from their tags
    /// and the host's links, puts each where it belongs. `enabled` false (pools were turned
    /// off) deletes the free ones.
    pub(crate) async fn adopt_all(
        nt: &Nt,
        binding: &Arc<dyn HostBinding>,
        pools: Option<&PortPools>,
        host: &str,
    ) -> Result<AdoptReport> {
        let tag = pool_tag(host);
        let ports = nt
            .ports(&PortQuery {
                tags: vec![tag.clone()],
                ..Default::default()
            })
            .await?;
        let mut report = AdoptReport::default();
        if ports.is_empty() {
            return Ok(report);
        }
        let links = binding
            .list_owned()
            .await
            .map_err(|e| DriverError::binding("list host interfaces", e))?;
        let owner_of = |port_id: &str| -> Option<String> {
            links
                .iter()
                .filter(|l: &&OwnedLink| l.port_id.as_deref() == Some(port_id))
                .find_map(|l| l.endpoint_id.clone())
        };
        for mut p in ports {
            let owner = owner_of(&p.id);
            let marked_free = owner.as_deref() == Some(POOL_LINK_OWNER);
            let mut held = tags::docker_id_from_tags(&p.tags).is_some();
            // Claimed by an endpoint (its links say so) whose tags the daemon had no time to
            // write: the container runs on it, so the tags are written now.
            if let Some(ep) = owner.filter(|o| !held && o != POOL_LINK_OWNER) {
                let mut want = p.tags.clone();
                want.extend(tags::docker_id_tags(&ep));
                nt.set_tags(Kind::Port, &p.id, &want).await?;
                tracing::info!(port = %p.id, endpoint = %ep, "pooled port held by an endpoint: tagged");
                p.tags = want;
                held = true;
            }
            match pools {
                // An endpoint still holds it: it comes back with its release.
                _ if held && !marked_free => {
                    if let Some(pools) = pools {
                        if let Some(f) = p.fixed_ips.first() {
                            let mut st = pools.state();
                            st.claimed.insert(p.id.clone(), f.subnet_id.clone());
                            st.pools
                                .entry(f.subnet_id.clone())
                                .or_insert_with(|| SubnetPool::new(&p.network_id));
                        }
                    }
                    report.held += 1;
                }
                Some(pools) => {
                    let subnet = p.fixed_ips.first().map(|f| f.subnet_id.clone());
                    let plugged = marked_free && !held;
                    let ready = plugged && (!pools.inner.plug || p.status.is_active());
                    match subnet {
                        Some(sid) if ready && p.fixed_ips.len() == 1 => {
                            let mut st = pools.state();
                            let pool = st
                                .pools
                                .entry(sid)
                                .or_insert_with(|| SubnetPool::new(&p.network_id));
                            pool.free.push_back(p);
                            report.free += 1;
                        }
                        _ => {
                            {
                                let mut st = pools.state();
                                if let Some(sid) = &subnet {
                                    st.pools
                                        .entry(sid.clone())
                                        .or_insert_with(|| SubnetPool::new(&p.network_id))
                                        .pending += 1;
                                }
                            }
                            pools.inner.spawn_recycle(p, subnet);
                            report.recycled += 1;
                        }
                    }
                }
                None => {
                    let unbind = pool_unbind(&p);
                    if let Err(e) = binding.unbind(&unbind).await {
                        tracing::warn!(port = %p.id, error = %e, "unplugging a pooled port failed");
                    }
                    nt.delete_port(&p.id).await?;
                    report.deleted += 1;
                }
            }
        }
        // The free ports' subnets are checked (and refilled) by the first refill.
        if let Some(pools) = pools {
            let subnets: Vec<String> = pools.state().pools.keys().cloned().collect();
            for s in subnets {
                pools.refill_if_low(&s);
            }
        }
        Ok(report)
    }

    /// Starts the periodic check (`ports_pool_update_frequency`): pools below their minimum
    /// are refilled, free ports whose plug is gone are recycled.
    pub fn spawn_maintenance(&self) -> JoinHandle<()> {
        let pools = self.clone();
        let every = self.inner.cfg.update_frequency;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                pools.check().await;
            }
        })
    }

    async fn check(&self) {
        if self.inner.plug {
            match self.inner.binding.list_owned().await {
                Ok(links) => {
                    let plugged: HashSet<String> =
                        links.into_iter().filter_map(|l| l.port_id).collect();
                    let lost: Vec<Port> = {
                        let mut st = self.state();
                        let mut lost = Vec::new();
                        for pool in st.pools.values_mut() {
                            let (keep, gone): (VecDeque<Port>, VecDeque<Port>) =
                                pool.free.drain(..).partition(|p| plugged.contains(&p.id));
                            pool.free = keep;
                            pool.pending += gone.len();
                            lost.extend(gone);
                        }
                        lost
                    };
                    for p in lost {
                        tracing::warn!(port = %p.id, "a pooled port lost its plug: recycling it");
                        let subnet = p.fixed_ips.first().map(|f| f.subnet_id.clone());
                        self.inner.spawn_recycle(p, subnet);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "checking pooled ports' plugs failed"),
            }
        }
        self.inner.tidy();
        self.shrink_idle(IDLE_AFTER).await;
        let subnets: Vec<String> = self.state().pools.keys().cloned().collect();
        for s in subnets {
            self.refill_if_low(&s);
        }
    }

    /// Pools no container took from for `idle` keep only `ports_pool_min` free ports: what a
    /// burst brought back is given back to the subnet. Returns how many ports were deleted.
    pub async fn shrink_idle(&self, idle: Duration) -> usize {
        let extra: Vec<Port> = {
            let mut st = self.state();
            let min = self.inner.cfg.min;
            st.pools
                .values_mut()
                .filter(|p| p.last_take.elapsed() >= idle && p.free.len() > min)
                .flat_map(|p| p.free.split_off(min))
                .collect()
        };
        for p in &extra {
            if let Err(e) = self.inner.discard(p).await {
                tracing::warn!(port = %p.id, error = %e, "deleting an idle pooled port failed");
            }
        }
        if !extra.is_empty() {
            tracing::info!(
                deleted = extra.len(),
                "idle port pools shrunk to their minimum"
            );
        }
        extra.len()
    }

    /// Starts a refill of the subnet's pool when it holds fewer than the minimum (free and
    /// coming), or containers found it empty and it may still grow, and none runs.
    pub(crate) fn refill_if_low(&self, subnet_id: &str) {
        let network_id = {
            let mut st = self.state();
            let Some(pool) = st.pools.get_mut(subnet_id) else {
                return;
            };
            let low = self.inner.wants(pool) > 0;
            if pool.refilling || pool.draining || pool.eligible == Some(false) || !low {
                return;
            }
            pool.refilling = true;
            pool.network_id.clone()
        };
        let inner = self.inner.clone();
        let subnet = subnet_id.to_string();
        tokio::spawn(async move {
            inner.refill(&subnet, &network_id).await;
            if let Some(p) = inner.state().pools.get_mut(&subnet) {
                p.refilling = false;
            }
            inner.changed.notify_waiters();
        });
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `work` after the port's previous background write.
    fn after(
        self: &Arc<Self>,
        port_id: &str,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.after_counted(port_id, |_| work);
    }

    /// [`Self::after`] for a write of the port's whole state to Neutron (a claim's tags and
    /// name, a free port's reset): skipped when a later write to the port was queued meanwhile,
    /// since that one writes the whole state again. Without this, a Neutron slower than the
    /// containers' churn queued every write of every reuse, and the backlog (and the daemon's
    /// memory) grew for as long as the load lasted (the soak).
    fn after_latest(
        self: &Arc<Self>,
        port_id: &str,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let inner = self.clone();
        let id = port_id.to_string();
        self.after_counted(port_id, move |n| async move {
            let latest = inner
                .state()
                .writes
                .get(&id)
                .is_some_and(|(last, _)| *last == n);
            if latest {
                work.await;
            } else {
                tracing::debug!(port = %id, "a later write to the port supersedes this one");
            }
        });
    }

    /// Queues `work(n)` after the port's previous background write; `n` counts the port's
    /// writes while any is in flight.
    fn after_counted<F, W>(self: &Arc<Self>, port_id: &str, work: W)
    where
        W: FnOnce(u64) -> F,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut st = self.state();
        st.writes.retain(|_, (_, h)| !h.is_finished());
        let (n, previous) = match st.writes.remove(port_id) {
            Some((n, h)) => (n + 1, Some(h)),
            None => (1, None),
        };
        let work = work(n);
        let handle = tokio::spawn(async move {
            if let Some(h) = previous {
                let _ = h.await;
            }
            work.await;
        });
        st.writes.insert(port_id.to_string(), (n, handle));
    }

    /// Recycles a port in the background, after its previous writes.
    fn spawn_recycle(self: &Arc<Self>, port: Port, subnet: Option<String>) {
        self.spawn_recycle_with(port, subnet, true);
    }

    /// [`Self::spawn_recycle`] for a port whose plug is known not to be reusable.
    fn spawn_replug(self: &Arc<Self>, port: Port, subnet: Option<String>) {
        self.spawn_recycle_with(port, subnet, false);
    }

    fn spawn_recycle_with(self: &Arc<Self>, port: Port, subnet: Option<String>, reuse: bool) {
        let inner = self.clone();
        let id = port.id.clone();
        self.after(&id, async move {
            inner.recycle(port, subnet, reuse).await;
        });
    }

    /// Returns a released port to its pool at once when its container changed nothing in
    /// Neutron that the next one must not see (its security groups) and its plug can be kept:
    /// the host side is all that gates reuse. Neutron's record is tidied by the next pool check
    /// ([`Self::tidy`]) if the port is still free then; a container that took it first rewrites
    /// the same tags, name and device id with its claim. Anything else goes the way of
    /// [`Self::recycle`].
    async fn return_at_once(self: &Arc<Self>, port: Port, subnet: Option<String>) {
        let Some(sid) = subnet.clone().filter(|s| self.plug && self.keeps(s, &port)) else {
            return self.spawn_recycle(port, subnet);
        };
        match self.binding.reuse(&pool_bind(&port)).await {
            Ok(true) => {}
            Ok(false) => return self.spawn_replug(port, subnet),
            Err(e) => {
                tracing::debug!(port = %port.id, error = %e, "keeping a pooled port's plug failed: plugging afresh");
                return self.spawn_replug(port, subnet);
            }
        }
        let free = Port {
            tags: tags::without_kuryr_id_tags(&port.tags),
            name: POOL_PORT_NAME.into(),
            device_id: String::new(),
            ..port.clone()
        };
        if !self.admit(&sid, vec![free]).is_empty() {
            // The pool began draining meanwhile.
            return self.spawn_recycle(port, subnet);
        }
        // Neutron is tidied later, for the ports still free then: under churn most are taken
        // again first, and their claim's writes replace the record (three requests saved).
        self.state().untidy.insert(port.id);
    }

    /// Resets in Neutron the free ports returned at once since the last call (after the
    /// port's earlier writes); ports a container took meanwhile are left to their claim.
    fn tidy(self: &Arc<Self>) {
        let due: Vec<(Port, Option<Vec<String>>)> = {
            let mut st = self.state();
            let untidy = std::mem::take(&mut st.untidy);
            st.pools
                .values()
                .flat_map(|pool| {
                    pool.free
                        .iter()
                        .filter(|p| untidy.contains(&p.id))
                        .map(|p| (p.clone(), pool.security_groups.clone()))
                })
                .collect()
        };
        for (port, groups) in due {
            let inner = self.clone();
            self.after_latest(&port.id.clone(), async move {
                if inner.state().claimed.contains_key(&port.id) {
                    return;
                }
                if let Err(e) = inner.reset(&port, groups).await {
                    if !e.is_not_found() {
                        tracing::warn!(port = %port.id, error = %e, "resetting a free pooled port in Neutron failed");
                    }
                }
            });
        }
    }

    /// Whether the subnet's pool takes `port` back (else it is deleted).
    fn keeps(&self, subnet: &str, port: &Port) -> bool {
        let st = self.state();
        st.pools.get(subnet).is_some_and(|p| {
            !p.draining
                && p.eligible != Some(false)
                && port.fixed_ips.len() == 1
                && p.free.len() + p.pending <= self.cfg.max
        })
    }

    async fn refill(self: &Arc<Self>, subnet_id: &str, network_id: &str) {
        if !self.check_eligible(subnet_id, network_id).await {
            return;
        }
        loop {
            let n = {
                let mut st = self.state();
                let Some(pool) = st.pools.get_mut(subnet_id) else {
                    return;
                };
                if pool.draining {
                    return;
                }
                let n = self.wants(pool);
                pool.missed = 0;
                pool.pending += n;
                n
            };
            if n == 0 {
                return;
            }
            let started = Instant::now();
            tracing::debug!(subnet = %subnet_id, n, "pool batch");
            let made = self.make_ports(subnet_id, network_id, n).await;
            let made = match made {
                Ok(m) => m,
                Err(e) => {
                    self.settle(subnet_id, n);
                    if e.is_address_exhausted() {
                        tracing::info!(subnet = %subnet_id, "subnet full: the pool stops growing");
                    } else {
                        tracing::warn!(subnet = %subnet_id, error = %e, "refilling a port pool failed");
                    }
                    return;
                }
            };
            // Fewer made than counted (a full subnet): give the difference back.
            self.settle(subnet_id, n - made.len());
            if let (Some(p), Some(pool)) = (made.first(), self.state().pools.get_mut(subnet_id)) {
                pool.security_groups
                    .get_or_insert_with(|| p.security_groups.clone());
            }
            let prepared =
                futures::future::join_all(made.into_iter().map(|p| self.prepare(p))).await;
            let count = prepared.len();
            let plugged: Vec<Port> = prepared.into_iter().flatten().collect();
            // Plugs that failed deleted their port.
            self.settle(subnet_id, count - plugged.len());
            let admitted = self.wait_active(subnet_id, plugged).await;
            tracing::debug!(subnet = %subnet_id, n, elapsed_ms = started.elapsed().as_millis() as u64, "pool batch in");
            if !admitted {
                return;
            }
        }
    }

    /// How many ports the pool should make now: none while it holds its minimum (free and
    /// coming) and no container found it empty since the last batch; otherwise a batch, a
    /// bigger one after more misses, never beyond the maximum.
    fn wants(&self, pool: &SubnetPool) -> usize {
        let have = pool.free.len() + pool.pending;
        if have >= self.cfg.min.max(1) && pool.missed == 0 {
            return 0;
        }
        let room = self.cfg.max.saturating_sub(have);
        self.cfg.batch.max(pool.missed).min(room)
    }

    /// Takes `n` ports off the subnet's pending count.
    fn settle(&self, subnet_id: &str, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(p) = self.state().pools.get_mut(subnet_id) {
            p.pending = p.pending.saturating_sub(n);
        }
        self.changed.notify_waiters();
    }

    async fn check_eligible(&self, subnet_id: &str, network_id: &str) -> bool {
        let known = self.state().pools.get(subnet_id).and_then(|p| p.eligible);
        if let Some(k) = known {
            return k;
        }
        match self.nt.subnets(&SubnetQuery::on_network(network_id)).await {
            Ok(subnets) => {
                let ok = subnets.len() == 1 && subnets[0].id == subnet_id;
                if let Some(p) = self.state().pools.get_mut(subnet_id) {
                    p.eligible = Some(ok);
                }
                if !ok {
                    tracing::info!(subnet = %subnet_id, "network has several subnets: no port pool");
                }
                ok
            }
            Err(e) => {
                tracing::warn!(subnet = %subnet_id, error = %e, "cannot read the network's subnets");
                false
            }
        }
    }

    /// Makes up to `n` ports in one request; on a subnet too full for all of them, as many as
    /// fit, one by one.
    async fn make_ports(&self, subnet_id: &str, network_id: &str, n: usize) -> Result<Vec<Port>> {
        let one = NewPort {
            name: POOL_PORT_NAME.into(),
            network_id: network_id.to_string(),
            fixed_ips: vec![(Some(subnet_id.to_string()), None)],
            mac_address: None,
            device_owner: Some(DEVICE_OWNER.into()),
            device_id: None,
            host_id: self.port_driver.binds_to_host().then(|| self.host.clone()),
            tags: vec![DEVICE_OWNER.to_string(), self.tag.clone()],
            project_id: None,
        };
        match self.nt.create_ports(&vec![one.clone(); n]).await {
            Ok(made) => Ok(made),
            Err(e) if e.is_address_exhausted() && n > 1 => {
                let mut made = Vec::new();
                for _ in 0..n {
                    match self.nt.create_port(&one).await {
                        Ok(p) => made.push(p),
                        Err(e) if e.is_address_exhausted() && !made.is_empty() => break,
                        Err(e) if e.is_address_exhausted() => return Err(e),
                        Err(e) => {
                            tracing::warn!(error = %e, "making a pooled port failed");
                            break;
                        }
                    }
                }
                Ok(made)
            }
            Err(e) => Err(e),
        }
    }

    /// Plugs a new or recycled port for the pool; `None` (the port deleted) when that fails.
    async fn prepare(&self, p: Port) -> Option<Port> {
        if !self.plug {
            return Some(p);
        }
        match self.binding.bind(&pool_bind(&p)).await {
            Ok(_) => Some(p),
            Err(e) => {
                tracing::warn!(port = %p.id, error = %e, "plugging a pooled port failed");
                self.discard_or_retry(&p).await;
                None
            }
        }
    }

    /// Ports ready for the pool go in (its `pending` count down); those a draining or deleted
    /// pool cannot take are handed back.
    fn admit(&self, subnet_id: &str, ready: Vec<Port>) -> Vec<Port> {
        if ready.is_empty() {
            return ready;
        }
        let rejected = {
            let mut st = self.state();
            match st.pools.get_mut(subnet_id) {
                Some(pool) if !pool.draining => {
                    pool.pending = pool.pending.saturating_sub(ready.len());
                    pool.free.extend(ready);
                    Vec::new()
                }
                _ => ready,
            }
        };
        self.changed.notify_waiters();
        rejected
    }

    /// Puts the plugged ports into the subnet's pool as each becomes ACTIVE (one listing per
    /// poll for all of them); those not ACTIVE within the limit, or that the pool no longer
    /// wants, are deleted. Whether the pool still takes ports.
    async fn wait_active(&self, subnet_id: &str, mut ports: Vec<Port>) -> bool {
        let start = Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut rejected = Vec::new();
        loop {
            let (active, waiting): (Vec<Port>, Vec<Port>) = ports
                .into_iter()
                .partition(|p| !self.plug || p.status.is_active());
            rejected.extend(self.admit(subnet_id, active));
            ports = waiting;
            if ports.is_empty() {
                break;
            }
            let draining = self.state().pools.get(subnet_id).is_none_or(|p| p.draining);
            if draining {
                // `docker network rm` waits for these: no point waiting for ACTIVE.
                rejected.append(&mut ports);
                break;
            }
            if start.elapsed() >= ACTIVE_LIMIT {
                for p in &ports {
                    tracing::warn!(port = %p.id, status = %p.status, "pooled port never became active: deleted");
                }
                rejected.append(&mut ports);
                break;
            }
            tokio::time::sleep(backoff.next_delay()).await;
            let q = PortQuery {
                ids: ports.iter().map(|p| p.id.clone()).collect(),
                ..Default::default()
            };
            match self.nt.ports(&q).await {
                Ok(now) => {
                    // A port missing from the answer was deleted behind our back.
                    self.settle(subnet_id, ports.len().saturating_sub(now.len()));
                    ports = now;
                }
                Err(e) => tracing::warn!(error = %e, "polling pooled ports failed"),
            }
        }
        let taken = rejected.is_empty();
        self.settle(subnet_id, rejected.len());
        for p in &rejected {
            self.discard_or_retry(p).await;
        }
        taken
    }

    /// Returns a released port to its pool: unplugged, reset in Neutron (endpoint tags, name,
    /// device, security groups), plugged afresh, ACTIVE again. Deleted instead when the pool is
    /// full, going away, or pools are off.
    /// `reuse`: try to keep the plug (not when that was just found impossible).
    async fn recycle(self: &Arc<Self>, port: Port, subnet: Option<String>, reuse: bool) {
        let Some(subnet) = subnet else {
            self.discard_or_retry(&port).await;
            return;
        };
        if !self.keeps(&subnet, &port) {
            if let Err(e) = self.discard(&port).await {
                tracing::warn!(port = %port.id, error = %e, "deleting a released pooled port failed");
            }
            self.settle(&subnet, 1);
            return;
        }
        let groups = self
            .state()
            .pools
            .get(&subnet)
            .and_then(|p| p.security_groups.clone());
        // A container end that came back clean keeps its plug: only Neutron's reset is left,
        // and the port stays ACTIVE (no OVS change for OVN to see).
        let started = Instant::now();
        if self.plug && reuse {
            match self.binding.reuse(&pool_bind(&port)).await {
                Ok(true) => {
                    match self.reset(&port, groups).await {
                        Ok(p) => {
                            self.wait_active(&subnet, vec![p]).await;
                            tracing::debug!(port = %port.id, elapsed_ms = started.elapsed().as_millis() as u64, "pooled port back, plug kept");
                        }
                        Err(e) => {
                            tracing::warn!(port = %port.id, error = %e, "resetting a released pooled port failed: deleting it");
                            self.discard_or_retry(&port).await;
                            self.settle(&subnet, 1);
                        }
                    }
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(port = %port.id, error = %e, "keeping a pooled port's plug failed: plugging afresh")
                }
            }
        }
        // Unplugged first (the fresh plug takes the same names); then Neutron's reset and the
        // new plug, which are independent, together.
        let unplugged = self.binding.unbind(&pool_unbind(&port)).await;
        let plug = async {
            if self.plug {
                self.binding.bind(&pool_bind(&port)).await.map(drop)
            } else {
                Ok(())
            }
        };
        let (reset, plugged) = match unplugged {
            Ok(()) => tokio::join!(self.reset(&port, groups), plug),
            Err(e) => (Ok(port.clone()), Err(e)),
        };
        match (reset, plugged) {
            (Ok(mut p), Ok(())) => {
                // What Neutron said before the new plug says nothing: poll at least once.
                if self.plug {
                    p.status = kuryr_types::PortStatus::Down;
                }
                self.wait_active(&subnet, vec![p]).await;
                tracing::debug!(port = %port.id, elapsed_ms = started.elapsed().as_millis() as u64, "pooled port back, plugged afresh");
            }
            (reset, plugged) => {
                let error = reset
                    .err()
                    .map(|e| e.to_string())
                    .or(plugged.err().map(|e| e.to_string()));
                tracing::warn!(port = %port.id, error = ?error, "recycling a released pooled port failed: deleting it");
                self.discard_or_retry(&port).await;
                self.settle(&subnet, 1);
            }
        }
    }

    /// Writes the port's pool state back into Neutron, from the port as Neutron has it now (the
    /// claim's background writes and exposed ports changed it).
    async fn reset(&self, released: &Port, groups: Option<Vec<String>>) -> Result<Port> {
        let port = self.nt.port(&released.id).await?.ok_or_else(|| {
            DriverError::NotFound(format!("pooled port {} was deleted", released.id))
        })?;
        let port = &port;
        let mut kept = tags::without_kuryr_id_tags(&port.tags);
        // A port made on demand joins the pool.
        if !kept.contains(&self.tag) {
            kept.push(self.tag.clone());
        }
        if kept != port.tags {
            self.nt.set_tags(Kind::Port, &port.id, &kept).await?;
        }
        let mut change = PortChange::default();
        if port.name != POOL_PORT_NAME {
            change.name = Some(POOL_PORT_NAME.into());
        }
        if !port.device_id.is_empty() {
            change.device_id = Some(String::new());
        }
        // The pool's ports all have the groups the pool's first ports got from Neutron.
        if let Some(g) = groups.filter(|g| *g != port.security_groups) {
            change.security_groups = Some(g);
        }
        if port.port_security == Some(false) {
            // A container's choice (`neutron.port.port_security=false`), not the pool's.
            change.port_security = Some(true);
        }
        if port.qos_policy_id.is_some() {
            change.qos_policy = Some(None);
        }
        if port.dns_name.is_some() {
            change.dns_name = Some(String::new());
        }
        let port = if change.is_empty() {
            port.clone()
        } else {
            self.nt.update_port(&port.id, &change).await?
        };
        Ok(Port { tags: kept, ..port })
    }

    /// [`Self::discard`] for a port the pool gives up on: Neutron may be slow, so a few tries
    /// over half a minute; after that, the network's removal finds the port
    /// (`PortLifecycle::delete_leftover_ports`).
    async fn discard_or_retry(&self, p: &Port) {
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=DISCARD_TRIES {
            match self.discard(p).await {
                Ok(()) => return,
                Err(e) if attempt == DISCARD_TRIES => {
                    tracing::warn!(port = %p.id, error = %e, "deleting a pooled port failed; the network's removal will delete it");
                }
                Err(e) => {
                    tracing::debug!(port = %p.id, error = %e, "deleting a pooled port failed; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }

    /// Unplugs and deletes a pooled port ("not found" is done).
    async fn discard(&self, p: &Port) -> Result<()> {
        if self.plug {
            if let Err(e) = self.binding.unbind(&pool_unbind(p)).await {
                tracing::warn!(port = %p.id, error = %e, "unplugging a pooled port failed");
            }
        }
        self.nt.delete_port(&p.id).await
    }
}

/// Tries to delete a port the pool gives up on (1 + 2 + 4 + 8 s between them).
const DISCARD_TRIES: u32 = 5;

fn pool_owner_id() -> DockerId {
    POOL_LINK_OWNER.parse().expect("constant id")
}

/// How the pool plugs a port no endpoint holds yet.
fn pool_bind(p: &Port) -> BindRequest {
    BindRequest {
        port_id: p.id.clone(),
        endpoint_id: pool_owner_id(),
        network_id: p.network_id.clone(),
        project_id: p.project_id.clone(),
        mac: p.mac_address,
        mtu: None,
        vif_type: p.vif_type.clone(),
        vif_details: p.vif_details.clone(),
        mode: BindMode::Veth,
    }
}

fn pool_unbind(p: &Port) -> UnbindRequest {
    UnbindRequest::from(&pool_bind(p))
}
