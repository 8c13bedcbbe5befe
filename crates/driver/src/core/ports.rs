//! A container port's lifecycle on this host: attach (find or make the port, give it to the
//! endpoint, bind it here, plug it, wait for ACTIVE) and detach (unplug, undo the port driver's
//! Neutron side, untag). Set-up unwinds on failure; tear-down tries every step and reports all
//! failures; "not found" counts as done.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kuryr_binding::{BindRequest, HostBinding, UnbindRequest};
use kuryr_config::DriverConfig;
use kuryr_types::{Backoff, DockerId, MacAddr, PortStatus};

use super::memory::{EndpointMemory, EndpointRecord};
use super::pool::{PoolOwner, PortPools};
use crate::constants::*;
use crate::error::{teardown_result, with_rollback, DriverError, Result};
use crate::locks::KeyedLocks;
use crate::neutron::{Kind, Net, NewPort, Nt, Port, PortChange, PortQuery};
use crate::port_driver::PortDriver;
use crate::tags;
use crate::undo::Undo;

/// Poll intervals while waiting for ACTIVE: quick at first (OVN reports in ~0.3 s), then 1 s.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);

/// An endpoint to attach: its id (the tags tie the port to it), its Neutron network, the
/// addresses its IPAM chose and the MAC asked for, if any.
#[derive(Debug, Clone)]
pub struct AttachRequest<'a> {
    pub endpoint: &'a DockerId,
    pub network: &'a Net,
    pub ips: &'a [IpAddr],
    pub mac: Option<MacAddr>,
    /// More tags the endpoint's port carries while it holds it (the CNI attachment's).
    pub tags: &'a [String],
    /// Security settings chosen for the port (`None`: Neutron's defaults, as made).
    pub settings: Option<&'a PortSettings>,
    /// A pooled port taken for it is renamed after the endpoint and gets its id as device id
    /// (Docker's front end: what the Python original's ports show). The CNI front end says no:
    /// the tags name the pod, and the pod's start and stop then cost Neutron one write each
    /// instead of two (kuryr-kubernetes did not rename pooled ports either).
    pub rename_pooled: bool,
}

/// A container port's security settings, chosen for it rather than Neutron's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSettings {
    /// Group ids (port security on).
    pub security_groups: Option<Vec<String>>,
    /// `Some(false)`: no port security (and no groups).
    pub port_security: Option<bool>,
    /// A QoS policy id.
    pub qos_policy: Option<String>,
    /// Neutron's `dns_name` (one endpoint's).
    pub dns_name: Option<String>,
}

impl PortSettings {
    pub fn is_empty(&self) -> bool {
        *self == PortSettings::default()
    }

    /// What `port` must change to carry these settings.
    fn apply_to(&self, port: &Port, change: &mut PortChange) {
        if let Some(q) = &self.qos_policy {
            if port.qos_policy_id.as_ref() != Some(q) {
                change.qos_policy = Some(Some(q.clone()));
            }
        }
        if let Some(d) = &self.dns_name {
            if port.dns_name.as_ref() != Some(d) {
                change.dns_name = Some(d.clone());
            }
        }
        if self.port_security == Some(false) {
            if port.port_security != Some(false) {
                change.port_security = Some(false);
            }
            if !port.security_groups.is_empty() {
                change.security_groups = Some(Vec::new());
            }
            return;
        }
        if port.port_security == Some(false) {
            change.port_security = Some(true);
        }
        if let Some(g) = &self.security_groups {
            if *g != port.security_groups {
                change.security_groups = Some(g.clone());
            }
        }
    }
}

/// The port lifecycle, shared by the front ends.
pub struct PortLifecycle {
    pub(crate) nt: Nt,
    pub(crate) binding: Arc<dyn HostBinding>,
    pub(crate) port_driver: Arc<dyn PortDriver>,
    /// `binding:host_id` of ports bound here.
    pub(crate) host: String,
    active_wait: Option<Duration>,
    plugging_fatal: bool,
    pub(crate) locks: Arc<KeyedLocks>,
    memory: Mutex<EndpointMemory>,
    /// `None` when `[vif_pool] enabled = false`.
    pub(crate) pools: Option<PortPools>,
}

impl PortLifecycle {
    pub fn new(
        nt: Nt,
        binding: Arc<dyn HostBinding>,
        port_driver: Arc<dyn PortDriver>,
        cfg: &DriverConfig,
        locks: Arc<KeyedLocks>,
    ) -> Self {
        let pools = cfg.pool.clone().map(|p| {
            PortPools::new(
                p,
                &cfg.host,
                nt.clone(),
                binding.clone(),
                port_driver.clone(),
            )
        });
        PortLifecycle {
            pools,
            nt,
            binding,
            port_driver,
            host: cfg.host.clone(),
            active_wait: cfg.active_wait(),
            plugging_fatal: cfg.vif_plugging_is_fatal,
            locks,
            memory: Mutex::new(EndpointMemory::default()),
        }
    }

    pub(crate) fn memory(&self) -> MutexGuard<'_, EndpointMemory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This host's port pools, when on.
    pub fn pools(&self) -> Option<&PortPools> {
        self.pools.as_ref()
    }

    /// The pools when `p` is one of their ports.
    pub(crate) fn pooled(&self, p: &Port) -> Option<&PortPools> {
        self.pools
            .as_ref()
            .filter(|pools| pools.owner(p) == PoolOwner::ThisHost)
    }

    /// The pools when `p` is one of their ports that a container just took.
    pub(crate) fn claimed_pool_port(&self, p: &Port) -> Option<&PortPools> {
        self.pooled(p).filter(|pools| pools.is_claimed(&p.id))
    }

    /// Starts the pools' periodic check, when pools are on.
    pub fn spawn_pool_maintenance(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.pools.as_ref().map(PortPools::spawn_maintenance)
    }

    /// Deletes the free ports of a network's pools (the network is being deleted).
    pub(crate) async fn drain_network(&self, network_id: &str) -> Result<()> {
        match &self.pools {
            Some(p) => p.drain_network(network_id).await,
            None => Ok(()),
        }
    }

    /// Attaches an endpoint; returns its port and the MAC its interface carries. On failure
    /// everything this call changed is undone.
    pub async fn attach(&self, req: &AttachRequest<'_>) -> Result<(Port, MacAddr)> {
        if req.ips.is_empty() {
            return Err(DriverError::InvalidRequest(
                "interface address v4 or v6 not provided".into(),
            ));
        }
        let _guard = self.locks.lock(&format!("ep:{}", req.endpoint)).await;
        let mut undo = Undo::new();
        let mut cosmetic = None;
        match self.attach_steps(req, &mut undo, &mut cosmetic).await {
            Ok((port, mac)) => {
                undo.commit();
                match self.claimed_pool_port(&port) {
                    Some(pools) => {
                        pools.write_claim(&port, req.endpoint, req.tags, req.rename_pooled)
                    }
                    None => {
                        if let Some(change) = cosmetic {
                            self.update_port_in_background(&port.id, change);
                        }
                        // The pool this container found empty fills now (not for a port of
                        // another project: the pool's would not serve it).
                        if let Some(pools) = self
                            .pools
                            .as_ref()
                            .filter(|_| !tags::has(&port.tags, TAG_PORT_PROJECT))
                        {
                            for f in &port.fixed_ips {
                                pools.refill_if_low(&f.subnet_id);
                            }
                        }
                    }
                }
                let mut memory = self.memory();
                memory.gone.remove(req.endpoint);
                memory.endpoints.insert(
                    req.endpoint.clone(),
                    EndpointRecord {
                        port: port.clone(),
                        status_at: Instant::now(),
                        exposed: false,
                    },
                );
                Ok((port, mac))
            }
            Err(e) => {
                let errors = undo.unwind().await;
                Err(with_rollback(e, errors))
            }
        }
    }

    async fn attach_steps(
        &self,
        req: &AttachRequest<'_>,
        undo: &mut Undo,
        cosmetic: &mut Option<PortChange>,
    ) -> Result<(Port, MacAddr)> {
        let found = self.ports_holding(req.network, req.ips).await?;
        let port = if found.is_empty() {
            self.create_for_foreign_ipam(req, undo).await?
        } else {
            let (port, later) = self.take_found_ports(req, found, undo).await?;
            *cosmetic = later;
            port
        };

        let iface_mac = self.port_driver.choose_mac(&port, req.mac).await?;
        let mode = self.port_driver.attach(&port, iface_mac, undo).await?;
        let pre_plugged = self.claimed_pool_port(&port).is_some_and(|p| p.pre_plugs());
        let bind = BindRequest {
            port_id: port.id.clone(),
            endpoint_id: req.endpoint.clone(),
            network_id: req.network.id.clone(),
            project_id: port.project_id.clone(),
            mac: iface_mac,
            mtu: req.network.mtu,
            vif_type: port.vif_type.clone(),
            vif_details: port.vif_details.clone(),
            mode,
        };
        // A pooled port plugged ahead of time only changes hands; else (or if its plug is gone)
        // it is plugged now.
        let claimed = pre_plugged
            && self
                .binding
                .claim(&bind)
                .await
                .map_err(|e| DriverError::binding(format!("claim port {}", port.id), e))?;
        if !claimed {
            self.binding
                .bind(&bind)
                .await
                .map_err(|e| DriverError::binding(format!("plug port {}", port.id), e))?;
        }
        let (binding, unbind) = (self.binding.clone(), UnbindRequest::from(&bind));
        undo.push(format!("unplug port {}", port.id), move || async move {
            binding.unbind(&unbind).await
        });

        let port = match self.active_wait {
            Some(limit) if self.port_driver.binds_to_host() => {
                self.wait_active(&port, limit).await?
            }
            _ => port,
        };
        Ok((port, iface_mac))
    }

    /// Docker's own IPAM (not Kuryr's) chose the addresses: make the whole port in one go. It is
    /// tagged so that detaching deletes it (no ReleaseAddress will reach Kuryr for it).
    async fn create_for_foreign_ipam(
        &self,
        req: &AttachRequest<'_>,
        undo: &mut Undo,
    ) -> Result<Port> {
        let ep = req.endpoint.as_str();
        let mut tags = tags::docker_id_tags(ep);
        tags.extend([DEVICE_OWNER.to_string(), TAG_PORT_FOREIGN_IPAM.to_string()]);
        tags.extend(req.tags.iter().cloned());
        let p = self
            .nt
            .create_port(&NewPort {
                name: port_name(ep),
                network_id: req.network.id.clone(),
                fixed_ips: req.ips.iter().map(|ip| (None, Some(*ip))).collect(),
                mac_address: req.mac.filter(|_| self.port_driver.mac_on_port()),
                device_owner: Some(DEVICE_OWNER.into()),
                device_id: Some(ep.to_string()),
                host_id: self.port_driver.binds_to_host().then(|| self.host.clone()),
                tags,
                project_id: None,
            })
            .await?;
        let (nt, id) = (self.nt.clone(), p.id.clone());
        undo.push(format!("delete port {id}"), move || async move {
            nt.delete_port(&id).await
        });
        let mut change = PortChange::default();
        if let Some(s) = req.settings {
            s.apply_to(&p, &mut change);
        }
        if !change.is_empty() {
            return self.nt.update_port(&p.id, &change).await;
        }
        Ok(p)
    }

    /// The ports on `net` holding any of `ips` (from the reservation just made, else Neutron).
    async fn ports_holding(&self, net: &Net, ips: &[IpAddr]) -> Result<Vec<Port>> {
        {
            let m = self.memory();
            let mut found: Vec<Port> = Vec::new();
            for ip in ips {
                let hit = m
                    .reserved
                    .iter()
                    .find(|((_, a), p)| a == ip && p.network_id == net.id)
                    .map(|(_, p)| p.clone());
                if let Some(p) = hit {
                    if !found.iter().any(|f| f.id == p.id) {
                        found.push(p);
                    }
                }
            }
            // Trust memory only when one port covers every address.
            if found.len() == 1 && ips.iter().all(|ip| holds(&found[0], *ip)) {
                return Ok(found);
            }
        }
        let mut ports = self
            .nt
            .ports(&PortQuery {
                network_id: Some(net.id.clone()),
                fixed_ips: ips.iter().map(|ip| (None, Some(*ip))).collect(),
                ..Default::default()
            })
            .await?;
        ports.retain(|p| ips.iter().any(|ip| holds(p, *ip)));
        Ok(ports)
    }

    /// Makes one port of the ports holding the endpoint's addresses and gives it to the
    /// endpoint. Returns the port and the cosmetic change (name, device id) to write once Docker
    /// has its answer.
    async fn take_found_ports(
        &self,
        req: &AttachRequest<'_>,
        found: Vec<Port>,
        undo: &mut Undo,
    ) -> Result<(Port, Option<PortChange>)> {
        check_found_ports(req.endpoint, &found)?;
        let (mut keep, placeholders) = split_kept_port(found)?;
        if req.settings.is_some() && !is_kuryr_port(&keep) {
            return Err(DriverError::InvalidRequest(format!(
                "port {} is an existing port: its security settings are its owner's (drop the \
                 neutron.port.* options for this endpoint)",
                keep.id
            )));
        }
        let fixed_ips = self.merge_placeholders(&keep, &placeholders, undo).await?;
        let (mut change, cosmetic) = self.endpoint_change(req, &keep, fixed_ips);
        if change.mac_address.is_some() && !keep.host_id.is_empty() {
            // A user's --mac-address (Docker no longer passes MACs to the IPAM): Neutron refuses
            // a new MAC on a bound port, so it is unbound first and bound again with the MAC. A
            // pooled port leaves its pool (its plug has the old MAC).
            if let Some(pools) = self.claimed_pool_port(&keep) {
                pools.leave(&keep).await;
                keep.tags.retain(|t| pools.owner_tag() != t);
            }
            self.nt
                .update_port(
                    &keep.id,
                    &PortChange {
                        host_id: Some(String::new()),
                        ..Default::default()
                    },
                )
                .await?;
            if self.port_driver.binds_to_host() {
                change.host_id = Some(self.host.clone());
            }
        }
        if change.mac_address.is_some() {
            self.memory().chosen_macs.insert(keep.id.clone());
        }
        let port = self.apply_endpoint_change(req, &keep, change, undo).await?;
        Ok((port, cosmetic))
    }

    /// Placeholders of another address family (made by the Python daemon, one port per address)
    /// are deleted and their addresses moved onto the kept port: the endpoint has one port.
    /// Returns the kept port's new address list, if it changes.
    async fn merge_placeholders(
        &self,
        keep: &Port,
        placeholders: &[Port],
        undo: &mut Undo,
    ) -> Result<Option<Vec<(Option<String>, Option<IpAddr>)>>> {
        if placeholders.is_empty() {
            return Ok(None);
        }
        let mut list = fixed_ip_list(keep);
        for p in placeholders {
            self.nt.delete_port(&p.id).await?;
            let (nt, again) = (self.nt.clone(), placeholder_again(p));
            undo.push(
                format!("recreate placeholder port for {:?}", again.fixed_ips),
                move || async move { nt.create_port(&again).await.map(|_| ()) },
            );
            list.extend(fixed_ip_list(p));
        }
        Ok(Some(list))
    }

    /// What the kept port needs to become the endpoint's (owner, device, host, MAC, admin
    /// state), and separately the cosmetic part (name, device id) of a port Kuryr owns, which
    /// is written after Docker has its answer: the endpoint's tags are what tie the two.
    fn endpoint_change(
        &self,
        req: &AttachRequest<'_>,
        keep: &Port,
        fixed_ips: Option<Vec<(Option<String>, Option<IpAddr>)>>,
    ) -> (PortChange, Option<PortChange>) {
        let ep = req.endpoint.as_str();
        let owned = is_kuryr_port(keep);
        let mut change = PortChange {
            fixed_ips,
            ..Default::default()
        };
        let mut cosmetic = PortChange::default();
        let name = (owned && keep.name != port_name(ep)).then(|| port_name(ep));
        let device_id =
            (keep.device_id.is_empty() || (owned && keep.device_id != ep)).then(|| ep.to_string());
        if owned {
            cosmetic.name = name;
            cosmetic.device_id = device_id;
        } else {
            change.device_id = device_id;
        }
        if self.port_driver.binds_to_host() && keep.host_id != self.host {
            // Host and owner in one request: DVR schedules on the pair (the original's fix).
            change.host_id = Some(self.host.clone());
            change.device_owner = Some(DEVICE_OWNER.into());
        } else if keep.device_owner != DEVICE_OWNER {
            change.device_owner = Some(DEVICE_OWNER.into());
        }
        if !keep.admin_state_up {
            change.admin_state_up = Some(true);
        }
        if let Some(s) = req.settings.filter(|_| owned) {
            s.apply_to(keep, &mut change);
        }
        if let Some(m) = req.mac.filter(|_| self.port_driver.mac_on_port()) {
            if keep.mac_address != m {
                change.mac_address = Some(m);
            }
        }
        (change, (!cosmetic.is_empty()).then_some(cosmetic))
    }

    /// Writes the change and the endpoint's tags (independent: one round trip instead of two)
    /// and records how to reverse each.
    async fn apply_endpoint_change(
        &self,
        req: &AttachRequest<'_>,
        keep: &Port,
        change: PortChange,
        undo: &mut Undo,
    ) -> Result<Port> {
        let endpoint = req.endpoint;
        let want = endpoint_tags(keep, endpoint, req.tags);
        // A pooled port's tags are written once Docker has its answer (`write_claim`).
        let tags_later = self.claimed_pool_port(keep).is_some();
        let update = async {
            if change.is_empty() {
                Ok(None)
            } else {
                self.nt.update_port(&keep.id, &change).await.map(Some)
            }
        };
        let tag = async {
            if want == keep.tags || tags_later {
                Ok(false)
            } else {
                self.nt
                    .set_tags(Kind::Port, &keep.id, &want)
                    .await
                    .map(|_| true)
            }
        };
        let (updated, tagged) = tokio::join!(update, tag);
        if let Ok(true) = tagged {
            let (nt, id, old) = (self.nt.clone(), keep.id.clone(), keep.tags.clone());
            undo.push(format!("untag port {id}"), move || async move {
                nt.set_tags(Kind::Port, &id, &old).await
            });
        }
        if let (Ok(Some(_)), false) = (&updated, is_kuryr_port(keep)) {
            // Give an adopted port its previous state back on failure.
            let revert = revert_change(keep, &change);
            let (nt, id) = (self.nt.clone(), keep.id.clone());
            undo.push(format!("restore port {id}"), move || async move {
                nt.update_port(&id, &revert).await.map(|_| ())
            });
        }
        tagged?;
        let port = updated?.unwrap_or_else(|| keep.clone());
        Ok(Port { tags: want, ..port })
    }

    /// A port update nobody waits for; a port deleted meanwhile is fine, other failures are
    /// logged (they only leave a port's name or device id unset).
    fn update_port_in_background(&self, port_id: &str, change: PortChange) {
        let (nt, id) = (self.nt.clone(), port_id.to_string());
        tokio::spawn(async move {
            match nt.update_port(&id, &change).await {
                Err(e) if !e.is_not_found() => {
                    tracing::warn!(port = %id, error = %e, "naming the port failed")
                }
                _ => {}
            }
        });
    }

    /// Polls the port until Neutron reports it ACTIVE.
    async fn wait_active(&self, port: &Port, limit: Duration) -> Result<Port> {
        let start = Instant::now();
        let mut backoff = Backoff::new(POLL_FIRST, POLL_MAX);
        let mut last = port.clone();
        loop {
            if last.status.is_active() {
                return Ok(last);
            }
            if start.elapsed() >= limit {
                let msg = format!(
                    "neutron port {} did not become active within {}s (status {})",
                    port.id,
                    limit.as_secs(),
                    last.status
                );
                if self.plugging_fatal {
                    return Err(DriverError::Timeout(msg));
                }
                tracing::warn!("{msg}");
                return Ok(last);
            }
            let pause = backoff.next_delay();
            tokio::time::sleep(pause.min(limit.saturating_sub(start.elapsed()))).await;
            last = self.nt.port(&port.id).await?.ok_or_else(|| {
                DriverError::NotFound(format!(
                    "neutron port {} disappeared while plugging",
                    port.id
                ))
            })?;
        }
    }

    /// Detaches an endpoint: unplugs it, undoes the port driver's Neutron side and removes the
    /// endpoint's tags. Kuryr's own port stays for the release that follows (which deletes it);
    /// a port made for another IPAM's address is deleted now. Idempotent.
    pub async fn detach(&self, endpoint: &DockerId) -> Result<()> {
        let _guard = self.locks.lock(&format!("ep:{endpoint}")).await;
        // The attach's own record when this daemon made the endpoint; Neutron otherwise (after a
        // restart).
        let (remembered, gone) = {
            let memory = self.memory();
            let remembered = memory.endpoints.get(endpoint).map(|e| e.port.clone());
            (remembered, memory.is_gone(endpoint))
        };
        if remembered.is_none() && gone {
            return Ok(());
        }
        let ports = match remembered {
            Some(p) => vec![p],
            None => self.ports_tagged_for(endpoint).await?,
        };
        let mut errors = Vec::new();
        if ports.is_empty() {
            // The port is gone (deleted behind our back): still remove what is on the host.
            self.remove_host_leftovers(endpoint, &mut errors).await;
        }
        for p in &ports {
            self.detach_port(endpoint, p, &mut errors).await;
        }
        {
            let mut memory = self.memory();
            memory.endpoints.remove(endpoint);
            if errors.is_empty() {
                memory.mark_gone(endpoint);
            }
        }
        teardown_result(format!("delete endpoint {endpoint}"), errors)
    }

    /// Ports of Kuryr's still on a network Docker removes (Neutron refused the delete for ports
    /// in use), left by work Neutron failed while it was slow; Docker has no endpoint on it any
    /// more. One listing finds both kinds, never a port a container holds:
    /// - this host's pool ports that no container holds (a recycle that outlasted the drain):
    ///   unplugged and deleted;
    /// - ports bound to this host tagged with an endpoint this daemon does not hold, no CNI
    ///   attachment's (a release that failed): detached as DeleteEndpoint would (a user's adopted
    ///   port only untagged), Kuryr's own deleted.
    ///
    /// How many were found.
    pub async fn delete_leftover_ports(&self, network_id: &str) -> Result<usize> {
        let ports = self
            .nt
            .ports(&PortQuery {
                network_id: Some(network_id.to_string()),
                ..Default::default()
            })
            .await?;
        let held: std::collections::HashSet<String> = self
            .memory()
            .endpoints
            .values()
            .map(|e| e.port.id.clone())
            .collect();
        let mut errors = Vec::new();
        let mut found = 0;
        for p in &ports {
            let claimed = self.pools.as_ref().is_some_and(|pl| pl.is_claimed(&p.id));
            if held.contains(&p.id) || claimed {
                continue;
            }
            let endpoint: Option<DockerId> =
                tags::docker_id_from_tags(&p.tags).and_then(|e| e.parse().ok());
            let pools = self.pooled(p);
            let deleted = match (&endpoint, pools) {
                // A pooled port, unplugged (its tap is the pool's) and deleted.
                (None, Some(pools)) => {
                    tracing::info!(port = %p.id, "deleting a pooled port left on a drained network");
                    pools.discard(p).await
                }
                (Some(endpoint), _)
                    if p.host_id == self.host
                        && !p.tags.iter().any(|t| t.starts_with(TAG_CNI_CONTAINER)) =>
                {
                    tracing::info!(port = %p.id, endpoint = %endpoint, "deleting the port of an endpoint docker no longer has, left on a network it removes");
                    match pools {
                        Some(pools) => pools.discard(p).await,
                        None => {
                            self.detach_port(endpoint, p, &mut errors).await;
                            if is_kuryr_port(p) && !tags::has(&p.tags, TAG_PORT_FOREIGN_IPAM) {
                                self.nt.delete_port(&p.id).await
                            } else {
                                Ok(())
                            }
                        }
                    }
                }
                _ => continue,
            };
            found += 1;
            // No ReleaseAddress will come for it.
            self.memory().forget_port(&p.id);
            if let Err(e) = deleted {
                errors.push(e);
            }
        }
        teardown_result(
            format!("delete the ports left on network {network_id}"),
            errors,
        )
        .map(|()| found)
    }

    async fn detach_port(&self, endpoint: &DockerId, p: &Port, errors: &mut Vec<DriverError>) {
        let mode = self.port_driver.detach(p, errors).await;
        let req = UnbindRequest {
            port_id: p.id.clone(),
            endpoint_id: endpoint.clone(),
            network_id: p.network_id.clone(),
            mac: Some(p.mac_address),
            vif_type: p.vif_type.clone(),
            vif_details: p.vif_details.clone(),
            mode,
        };
        let ep_tags = tags::docker_id_tags(endpoint.as_str());
        let kept: Vec<String> = p
            .tags
            .iter()
            .filter(|t| !ep_tags.contains(t))
            .cloned()
            .collect();
        let foreign_ipam = tags::has(&p.tags, TAG_PORT_FOREIGN_IPAM);
        // Kuryr's own port is deleted by the release that follows: untagging it first would
        // only add a request to every container's removal.
        let released_next = !foreign_ipam && is_kuryr_port(p);
        // A pooled port keeps its plug until it is recycled; marking its links as the pool's
        // records the release on the host (what a restarted daemon reads).
        let pooled = self.pooled(p).is_some();
        let host_side = async {
            if pooled {
                self.binding.unclaim(&req).await
            } else {
                self.binding.unbind(&req).await
            }
        };
        // Host and Neutron sides are independent: one wait instead of two.
        let (unbound, neutron_side) = tokio::join!(host_side, async {
            if foreign_ipam {
                self.nt.delete_port(&p.id).await
            } else if released_next {
                Ok(())
            } else {
                self.nt.set_tags(Kind::Port, &p.id, &kept).await
            }
        });
        if let Err(e) = unbound {
            errors.push(DriverError::binding(format!("unplug port {}", p.id), e));
        }
        match neutron_side {
            Err(e) if !e.is_not_found() => errors.push(e),
            _ => {}
        }
        if foreign_ipam {
            return;
        }
        let left = Port {
            tags: if released_next { p.tags.clone() } else { kept },
            ..p.clone()
        };
        let mut m = self.memory();
        for f in &p.fixed_ips {
            m.detached
                .insert((f.subnet_id.clone(), f.ip_address), left.clone());
        }
    }

    async fn remove_host_leftovers(&self, endpoint: &DockerId, errors: &mut Vec<DriverError>) {
        self.remove_links_where(
            |l| l.endpoint_id.as_deref() == Some(endpoint.as_str()),
            errors,
        )
        .await;
    }

    /// Removes this host's links and OVS ports recorded for a port (none is fine).
    pub(crate) async fn remove_links_of_port(&self, port_id: &str, errors: &mut Vec<DriverError>) {
        self.remove_links_where(|l| l.port_id.as_deref() == Some(port_id), errors)
            .await;
    }

    async fn remove_links_where(
        &self,
        wanted: impl Fn(&kuryr_binding::OwnedLink) -> bool,
        errors: &mut Vec<DriverError>,
    ) {
        match self.binding.list_owned().await {
            Ok(owned) => {
                for l in owned.iter().filter(|l| wanted(l)) {
                    if let Err(e) = self.binding.remove_owned(l).await {
                        errors.push(DriverError::binding(format!("remove {}", l.name), e));
                    }
                }
            }
            Err(e) => errors.push(DriverError::binding("list host interfaces", e)),
        }
    }

    /// The endpoint's port: remembered from the attach, else found by the endpoint's tags.
    pub async fn endpoint_port(&self, endpoint: &DockerId) -> Result<Option<Port>> {
        {
            let memory = self.memory();
            if let Some(e) = memory.endpoints.get(endpoint) {
                return Ok(Some(e.port.clone()));
            }
            if memory.is_gone(endpoint) {
                return Ok(None);
            }
        }
        Ok(self.ports_tagged_for(endpoint).await?.into_iter().next())
    }

    /// The ports Neutron shows tagged with the endpoint, without this host's pooled ports that
    /// no container holds: a port back in its pool may still carry a departed endpoint's tags
    /// until the next claim or Neutron's reset rewrites them.
    async fn ports_tagged_for(&self, endpoint: &DockerId) -> Result<Vec<Port>> {
        let mut ports = self
            .nt
            .ports(&PortQuery {
                tags: tags::docker_id_tags(endpoint.as_str()),
                ..Default::default()
            })
            .await?;
        if let Some(pools) = &self.pools {
            ports.retain(|p| !pools.is_unclaimed_member(p));
        }
        Ok(ports)
    }

    /// The status of the endpoint's port; one read at most moments old is answer enough.
    pub async fn endpoint_status(
        &self,
        endpoint: &DockerId,
        fresh_for: Duration,
    ) -> Result<Option<PortStatus>> {
        let port_id = match self.memory().endpoints.get(endpoint) {
            Some(e) if e.status_at.elapsed() < fresh_for => return Ok(Some(e.port.status.clone())),
            Some(e) => Some(e.port.id.clone()),
            None => None,
        };
        let port = match port_id {
            Some(id) => self.nt.port(&id).await?,
            None => self.endpoint_port(endpoint).await?,
        };
        Ok(port.map(|p| p.status))
    }
}

/// The ports found for the endpoint's addresses may be given to it only when they belong to no
/// other endpoint and are not Neutron's own.
fn check_found_ports(endpoint: &DockerId, found: &[Port]) -> Result<()> {
    for p in found {
        if p.device_owner.starts_with(NEUTRON_OWNER_PREFIX) {
            // Neutron's own (DHCP, metadata, router) port: another IPAM driver chose an address
            // Neutron already uses.
            return Err(DriverError::Conflict(format!(
                "address {} is held by neutron's {} port {}; keep docker's ipam off it \
                 (--ip-range, --aux-address) or use kuryr's ipam",
                p.fixed_ips
                    .first()
                    .map_or(String::new(), |f| f.ip_address.to_string()),
                p.device_owner,
                p.id
            )));
        }
        if let Some(other) = tags::docker_id_from_tags(&p.tags) {
            if other != endpoint.as_str() {
                return Err(DriverError::Conflict(format!(
                    "port {} is already used by endpoint {other}",
                    p.id
                )));
            }
        }
    }
    Ok(())
}

/// The port the endpoint keeps (the adopted one if any, else the first) and Kuryr's other
/// placeholders; two adopted ports cannot be merged.
fn split_kept_port(mut found: Vec<Port>) -> Result<(Port, Vec<Port>)> {
    let keep_idx = found.iter().position(|p| !is_kuryr_port(p)).unwrap_or(0);
    let keep = found.remove(keep_idx);
    if let Some(p) = found.iter().find(|p| !is_kuryr_port(p)) {
        return Err(DriverError::Conflict(format!(
            "the endpoint's addresses are held by two existing ports {} and {}",
            keep.id, p.id
        )));
    }
    Ok((keep, found))
}

/// A placeholder port as it was (for the undo of its deletion).
fn placeholder_again(p: &Port) -> NewPort {
    NewPort {
        name: p.name.clone(),
        network_id: p.network_id.clone(),
        fixed_ips: fixed_ip_list(p),
        mac_address: None,
        device_owner: Some(p.device_owner.clone()).filter(|o| !o.is_empty()),
        device_id: Some(p.device_id.clone()).filter(|d| !d.is_empty()),
        host_id: None,
        tags: p.tags.clone(),
        project_id: None,
    }
}

/// The fields of `change` set back to `port`'s values.
fn revert_change(port: &Port, change: &PortChange) -> PortChange {
    PortChange {
        device_owner: change
            .device_owner
            .as_ref()
            .map(|_| port.device_owner.clone()),
        device_id: change.device_id.as_ref().map(|_| port.device_id.clone()),
        host_id: change.host_id.as_ref().map(|_| port.host_id.clone()),
        mac_address: change.mac_address.map(|_| port.mac_address),
        admin_state_up: change.admin_state_up.map(|_| port.admin_state_up),
        ..Default::default()
    }
}

fn fixed_ip_list(p: &Port) -> Vec<(Option<String>, Option<IpAddr>)> {
    p.fixed_ips
        .iter()
        .map(|f| (Some(f.subnet_id.clone()), Some(f.ip_address)))
        .collect()
}

pub(crate) fn holds(p: &Port, ip: IpAddr) -> bool {
    p.fixed_ips.iter().any(|f| f.ip_address == ip)
}

/// The port's tags plus the endpoint's, and `compute:kuryr` on ports Kuryr owns.
fn endpoint_tags(p: &Port, endpoint: &DockerId, extra: &[String]) -> Vec<String> {
    let mut want = p.tags.clone();
    let owned = is_kuryr_port(p).then(|| DEVICE_OWNER.to_string());
    for t in tags::docker_id_tags(endpoint.as_str())
        .into_iter()
        .chain(owned)
        .chain(extra.iter().cloned())
    {
        if !want.contains(&t) {
            want.push(t);
        }
    }
    want
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

/// The port's address on a subnet.
pub(crate) fn ip_on_subnet(p: &Port, subnet_id: &str) -> Option<IpAddr> {
    p.fixed_ips
        .iter()
        .find(|f| f.subnet_id == subnet_id)
        .map(|f| f.ip_address)
}
