//! NetworkDriver.CreateEndpoint: make the endpoint's Neutron port ready on this host (one port per
//! endpoint, named, owned, bound, tagged with the endpoint id), plug it, and wait for ACTIVE.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use kuryr_binding::{BindMode, BindRequest, MacAddr, UnbindRequest};

use crate::config::PortMode;
use crate::constants::*;
use crate::driver::{is_kuryr_port, parse_address, validate_docker_id, EndpointInfo, KuryrDriver};
use crate::error::{with_rollback, DriverError, Result};
use crate::neutron::{Kind, Net, NewPort, Port, PortChange, PortQuery};
use crate::tags;
use crate::undo::Undo;

/// CreateEndpoint's inputs (internal form).
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub network_id: String,
    pub endpoint_id: String,
    /// `<ip>/<len>` or empty.
    pub address: String,
    pub address_v6: String,
    /// Docker's MAC, or empty.
    pub mac_address: String,
}

/// Poll intervals while waiting for ACTIVE: quick at first (OVN reports in ~0.3 s), then 1 s.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);

impl KuryrDriver {
    /// Returns the MAC to hand back to Docker (only when Docker gave none).
    pub async fn create_endpoint(&self, req: &EndpointRequest) -> Result<Option<String>> {
        validate_docker_id("network id", &req.network_id)?;
        validate_docker_id("endpoint id", &req.endpoint_id)?;
        let mut ips = Vec::new();
        for (what, a) in [("address", &req.address), ("ipv6 address", &req.address_v6)] {
            if !a.trim().is_empty() {
                ips.push(parse_address(what, a)?);
            }
        }
        if ips.is_empty() {
            return Err(DriverError::InvalidRequest(
                "interface address v4 or v6 not provided".into(),
            ));
        }
        let mac = match req.mac_address.trim() {
            "" => None,
            m => Some(
                m.parse::<MacAddr>()
                    .map_err(|e| DriverError::InvalidRequest(e.to_string()))?
                    .to_string(),
            ),
        };

        let _guard = self.locks.lock(&format!("ep:{}", req.endpoint_id)).await;
        let net = self.network_for(&req.network_id).await?.ok_or_else(|| {
            DriverError::NotFound(format!(
                "neutron network for docker network {} does not exist",
                req.network_id
            ))
        })?;
        let mut undo = Undo::new();
        let mut deferred = None;
        match self
            .create_endpoint_steps(req, &net, &ips, mac.as_deref(), &mut undo, &mut deferred)
            .await
        {
            Ok(port) => {
                undo.commit();
                if let Some(change) = deferred {
                    self.update_port_in_background(&port.id, change);
                }
                let reply_mac = mac.is_none().then(|| port.mac_address.clone());
                self.cache().endpoints.insert(
                    req.endpoint_id.clone(),
                    EndpointInfo {
                        port,
                        status_at: Instant::now(),
                        exposed: false,
                    },
                );
                Ok(reply_mac)
            }
            Err(e) => {
                let errors = undo.unwind().await;
                Err(with_rollback(e, errors))
            }
        }
    }

    async fn create_endpoint_steps(
        &self,
        req: &EndpointRequest,
        net: &Net,
        ips: &[IpAddr],
        mac: Option<&str>,
        undo: &mut Undo,
        deferred: &mut Option<PortChange>,
    ) -> Result<Port> {
        let ep = &req.endpoint_id;
        let ep_tags = tags::docker_id_tags(ep);
        let found = self.ports_holding(net, ips).await?;
        let bind_here = self.cfg.port_mode == PortMode::Veth;

        let port = if found.is_empty() {
            // Docker's own IPAM (not Kuryr) gave the addresses: make the whole port in one go.
            let p = self
                .nt
                .create_port(&NewPort {
                    name: port_name(ep),
                    network_id: net.id.clone(),
                    fixed_ips: ips.iter().map(|ip| (None, Some(*ip))).collect(),
                    mac_address: mac.filter(|_| self.mac_goes_on_port()).map(str::to_string),
                    device_owner: Some(DEVICE_OWNER.into()),
                    device_id: Some(ep.clone()),
                    host_id: bind_here.then(|| self.cfg.host.clone()),
                })
                .await?;
            let (nt, id) = (self.nt.clone(), p.id.clone());
            undo.push(format!("delete port {id}"), move || async move {
                nt.delete_port(&id).await
            });
            let mut want = endpoint_tags(&p, &ep_tags);
            want.push(TAG_PORT_FOREIGN_IPAM.into());
            self.nt.set_tags(Kind::Port, &p.id, &want).await?;
            Port { tags: want, ..p }
        } else {
            let (port, cosmetic) = self
                .prepare_found_ports(ep, found, mac, bind_here, &ep_tags, undo)
                .await?;
            *deferred = cosmetic;
            port
        };

        let iface_mac = self.iface_mac(&port, mac);
        let mode = self.nested_neutron_side(&port, &iface_mac, undo).await?;
        let bind = BindRequest {
            port_id: port.id.clone(),
            endpoint_id: ep
                .parse()
                .map_err(|e: kuryr_types::ParseError| DriverError::InvalidRequest(e.to_string()))?,
            network_id: net.id.clone(),
            project_id: port.project_id.clone(),
            mac: iface_mac.parse().map_err(|e: kuryr_types::ParseError| {
                DriverError::Binding(format!("port {}: {e}", port.id))
            })?,
            mtu: net.mtu,
            vif_type: port.vif_type.as_str().into(),
            vif_details: port.vif_details.clone(),
            mode,
        };
        self.binding
            .bind(&bind)
            .await
            .map_err(|e| DriverError::Binding(format!("plug port {}: {e}", port.id)))?;
        let (binding, unbind) = (self.binding.clone(), UnbindRequest::from(&bind));
        undo.push(format!("unplug port {}", port.id), move || async move {
            binding.unbind(&unbind).await
        });

        if bind_here {
            if let Some(limit) = self.cfg.active_wait() {
                let port = self.wait_active(&port, limit).await?;
                return Ok(port);
            }
        }
        Ok(port)
    }

    /// The ports on `net` holding any of `ips` (from RequestAddress's memory, else Neutron).
    async fn ports_holding(&self, net: &Net, ips: &[IpAddr]) -> Result<Vec<Port>> {
        {
            let c = self.cache();
            let mut found: Vec<Port> = Vec::new();
            for ip in ips {
                if let Some(p) = c
                    .pending_ports
                    .iter()
                    .find(|((_, a), p)| a == ip && p.network_id == net.id)
                    .map(|(_, p)| p.clone())
                {
                    if !found.iter().any(|f| f.id == p.id) {
                        found.push(p);
                    }
                }
            }
            // Only trust memory when it covers every address with one port.
            if found.len() == 1
                && ips
                    .iter()
                    .all(|ip| found[0].fixed_ips.iter().any(|f| f.ip_address == *ip))
            {
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
        ports.retain(|p| p.fixed_ips.iter().any(|f| ips.contains(&f.ip_address)));
        Ok(ports)
    }

    /// Makes one port of the ports holding the endpoint's addresses and updates it for the
    /// endpoint (owner, device, host, MAC, name) in one request.
    async fn prepare_found_ports(
        &self,
        ep: &str,
        mut found: Vec<Port>,
        mac: Option<&str>,
        bind_here: bool,
        ep_tags: &[String],
        undo: &mut Undo,
    ) -> Result<(Port, Option<PortChange>)> {
        for p in &found {
            if p.device_owner.starts_with("network:") {
                // Neutron's own (DHCP, metadata, router) port: another IPAM driver chose an
                // address Neutron already uses.
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
                if other != ep {
                    return Err(DriverError::Conflict(format!(
                        "port {} is already used by endpoint {other}",
                        p.id
                    )));
                }
            }
        }
        // Keep the adopted port if there is one, else the first.
        let keep_idx = found.iter().position(|p| !is_kuryr_port(p)).unwrap_or(0);
        let keep = found.remove(keep_idx);
        let mut fixed = None;
        if !found.is_empty() {
            if let Some(p) = found.iter().find(|p| !is_kuryr_port(p)) {
                return Err(DriverError::Conflict(format!(
                    "the endpoint's addresses are held by two existing ports {} and {}",
                    keep.id, p.id
                )));
            }
            // Placeholders of another family (e.g. made by the Python daemon): move their
            // addresses onto the kept port.
            let mut list: Vec<_> = keep
                .fixed_ips
                .iter()
                .map(|f| (Some(f.subnet_id.clone()), Some(f.ip_address)))
                .collect();
            for p in &found {
                self.nt.delete_port(&p.id).await?;
                list.extend(
                    p.fixed_ips
                        .iter()
                        .map(|f| (Some(f.subnet_id.clone()), Some(f.ip_address))),
                );
            }
            fixed = Some(list);
        }

        let owned = is_kuryr_port(&keep);
        let mut change = PortChange {
            fixed_ips: fixed,
            ..Default::default()
        };
        if owned && keep.name != port_name(ep) {
            change.name = Some(port_name(ep));
        }
        if keep.device_id.is_empty() || (owned && keep.device_id != ep) {
            change.device_id = Some(ep.to_string());
        }
        if bind_here && keep.host_id != self.cfg.host {
            // Host and owner in one request: DVR schedules on the pair (the original's fix).
            change.host_id = Some(self.cfg.host.clone());
            change.device_owner = Some(DEVICE_OWNER.into());
        } else if keep.device_owner != DEVICE_OWNER {
            change.device_owner = Some(DEVICE_OWNER.into());
        }
        if !keep.admin_state_up {
            change.admin_state_up = Some(true);
        }
        if let Some(m) = mac.filter(|_| self.mac_goes_on_port()) {
            if !keep.mac_address.eq_ignore_ascii_case(m) {
                change.mac_address = Some(m.to_string());
            }
        }
        let mut deferred = None;
        if owned {
            // Kuryr's own port is already bound and owned (RequestAddress made it so); the
            // endpoint tags below are what ties it to the endpoint. Its name and device id are
            // for people reading Neutron: set after Docker has its answer.
            let cosmetic = PortChange {
                name: change.name.take(),
                device_id: change.device_id.take(),
                ..Default::default()
            };
            if !cosmetic.is_empty() {
                deferred = Some(cosmetic);
            }
        }
        let want = endpoint_tags(&keep, ep_tags);
        // The update and the tags are independent: one round trip instead of two.
        let update = async {
            if change.is_empty() {
                Ok(None)
            } else {
                self.nt.update_port(&keep.id, &change).await.map(Some)
            }
        };
        let tag = async {
            if want == keep.tags {
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
        if let Ok(Some(_)) = &updated {
            if !owned {
                // Give an adopted port its previous state back on failure.
                let revert = PortChange {
                    device_owner: change
                        .device_owner
                        .as_ref()
                        .map(|_| keep.device_owner.clone()),
                    device_id: change.device_id.as_ref().map(|_| keep.device_id.clone()),
                    host_id: change.host_id.as_ref().map(|_| keep.host_id.clone()),
                    mac_address: change
                        .mac_address
                        .as_ref()
                        .map(|_| keep.mac_address.clone()),
                    admin_state_up: change.admin_state_up.map(|_| keep.admin_state_up),
                    ..Default::default()
                };
                let (nt, id) = (self.nt.clone(), keep.id.clone());
                undo.push(format!("restore port {id}"), move || async move {
                    nt.update_port(&id, &revert).await.map(|_| ())
                });
            }
        }
        tagged?;
        let port = updated?.unwrap_or(keep);
        Ok((Port { tags: want, ..port }, deferred))
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
        let mut interval = POLL_FIRST;
        let mut last = port.clone();
        loop {
            if last.status == PORT_STATUS_ACTIVE {
                return Ok(last);
            }
            if start.elapsed() >= limit {
                let msg = format!(
                    "neutron port {} did not become active within {}s (status {})",
                    port.id,
                    limit.as_secs(),
                    last.status
                );
                if self.cfg.vif_plugging_is_fatal {
                    return Err(DriverError::Timeout(msg));
                }
                tracing::warn!("{msg}");
                return Ok(last);
            }
            tokio::time::sleep(interval.min(limit.saturating_sub(start.elapsed()))).await;
            interval = (interval * 2).min(POLL_MAX);
            if let Some(p) = self.nt.port(&port.id).await? {
                last = p;
            } else {
                return Err(DriverError::NotFound(format!(
                    "neutron port {} disappeared while plugging",
                    port.id
                )));
            }
        }
    }

    /// The VM's own port (nested modes), found by the MAC of `link_iface`.
    pub(crate) async fn vm_port(&self) -> Result<Port> {
        let cached = self.cache().vm_port_id.clone();
        if let Some(id) = cached {
            if let Some(p) = self.nt.port(&id).await? {
                return Ok(p);
            }
        }
        let mac = self.cfg.link_iface_mac.clone().ok_or_else(|| {
            DriverError::NotFound("mac address of [binding] link_iface is unknown".into())
        })?;
        let p = self
            .nt
            .ports(&PortQuery {
                mac_address: Some(mac.clone()),
                ..Default::default()
            })
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                DriverError::NotFound(format!("no neutron port has the vm's mac address {mac}"))
            })?;
        self.cache().vm_port_id = Some(p.id.clone());
        Ok(p)
    }

    /// Whether the container's MAC is also the Neutron port's. Not in the macvlan mode: there the
    /// MAC lives in the VM port's address pair, and a port with the same MAC would make OVN see
    /// it twice on the switch (the VM port and the container's virtual port), so that replies
    /// went to either at random.
    pub(crate) fn mac_goes_on_port(&self) -> bool {
        !matches!(self.cfg.port_mode, PortMode::Nested { .. })
    }

    /// The MAC the container's interface carries: Docker's, or else the port's.
    fn iface_mac(&self, port: &Port, docker_mac: Option<&str>) -> String {
        match docker_mac {
            Some(m) if !self.mac_goes_on_port() => m.to_string(),
            _ => port.mac_address.clone(),
        }
    }

    /// Neutron side of the nested modes; returns how the host should make the interface.
    async fn nested_neutron_side(
        &self,
        port: &Port,
        iface_mac: &str,
        undo: &mut Undo,
    ) -> Result<BindMode> {
        match &self.cfg.port_mode {
            PortMode::Veth => Ok(BindMode::Veth),
            PortMode::Nested { link_iface } => {
                let _g = self.locks.lock("vm-port").await;
                let vm = self.vm_port().await?;
                let mut pairs = vm.allowed_address_pairs.clone();
                let mut added = Vec::new();
                for f in &port.fixed_ips {
                    let ip = f.ip_address.to_string();
                    if !pairs.iter().any(|p| p.ip_address == ip) {
                        let pair = crate::neutron::AddressPair {
                            ip_address: ip,
                            mac_address: Some(iface_mac.to_string()),
                        };
                        pairs.push(pair.clone());
                        added.push(pair);
                    }
                }
                if !added.is_empty() {
                    self.nt
                        .update_port(
                            &vm.id,
                            &PortChange {
                                allowed_address_pairs: Some(pairs),
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(|e| address_pair_refused(e, &vm.id))?;
                    let (nt, vm_id) = (self.nt.clone(), vm.id.clone());
                    undo.push(
                        format!("remove address pairs from vm port {vm_id}"),
                        move || async move { remove_pairs(&nt, &vm_id, &added).await },
                    );
                }
                Ok(BindMode::NestedMacvlan {
                    parent_ifname: link_iface.clone(),
                })
            }
            PortMode::Vlan { link_iface } => {
                let vm = self.vm_port().await?;
                let (trunk_id, _) = vm.trunk.clone().ok_or_else(|| {
                    DriverError::NotFound(format!("vm port {} is not a trunk parent", vm.id))
                })?;
                let _g = self.locks.lock(&format!("trunk:{trunk_id}")).await;
                // Re-read under the lock: the trunk's own subport list is the VLAN allocation
                // state, so a restart loses nothing.
                let vm = self.vm_port().await?;
                let subports = vm.trunk.map(|(_, s)| s).unwrap_or_default();
                let vlan_id = if let Some(s) = subports.iter().find(|s| s.port_id == port.id) {
                    s.segmentation_id
                } else {
                    let id = kuryr_binding::pick_free_vlan_id(
                        subports.iter().map(|s| s.segmentation_id),
                    )
                    .map_err(|e| DriverError::Conflict(format!("trunk {trunk_id}: {e}")))?;
                    self.nt.trunk_add_subport(&trunk_id, &port.id, id).await?;
                    let (nt, t, p) = (self.nt.clone(), trunk_id.clone(), port.id.clone());
                    undo.push(
                        format!("remove subport {p} from trunk {t}"),
                        move || async move { nt.trunk_remove_subport(&t, &p).await },
                    );
                    id
                };
                Ok(BindMode::NestedVlan {
                    parent_ifname: link_iface.clone(),
                    vlan_id,
                })
            }
        }
    }
}

/// Recent Neutron ML2/OVN (29 here) accepts an address pair whose MAC is not the port's own only
/// from the VRRP ranges, so the macvlan mode's pair (container IP, container MAC) is refused
/// there: say so, and what works instead, rather than pass on a message about VRRP.
fn address_pair_refused(e: DriverError, vm_port: &str) -> DriverError {
    match e {
        DriverError::Neutron {
            context,
            status: Some(400),
            message,
        } if message.contains("VRRP") => DriverError::Neutron {
            context: format!("{context} (allowed address pairs of vm port {vm_port})"),
            status: Some(400),
            message: format!(
                "{message} This Neutron backend (ML2/OVN) does not let a vm port carry a \
                 container's own MAC, which the macvlan mode needs: use \
                 default_port_driver = vlan (trunk subports) on ML2/OVN, or give the \
                 container a MAC in 00:00:5e:00:01:xx (docker run --mac-address)"
            ),
        },
        other => other,
    }
}

/// Removes address pairs from the VM port (read-modify-write).
pub(crate) async fn remove_pairs(
    nt: &crate::neutron::Nt,
    vm_id: &str,
    remove: &[crate::neutron::AddressPair],
) -> Result<()> {
    let Some(vm) = nt.port(vm_id).await? else {
        return Ok(());
    };
    let kept: Vec<_> = vm
        .allowed_address_pairs
        .iter()
        .filter(|p| !remove.iter().any(|r| r.ip_address == p.ip_address))
        .cloned()
        .collect();
    if kept.len() == vm.allowed_address_pairs.len() {
        return Ok(());
    }
    nt.update_port(
        vm_id,
        &PortChange {
            allowed_address_pairs: Some(kept),
            ..Default::default()
        },
    )
    .await
    .map(|_| ())
}

/// The port's tags plus the endpoint's, and `compute:kuryr` on ports Kuryr owns.
fn endpoint_tags(p: &Port, ep_tags: &[String]) -> Vec<String> {
    let mut want = p.tags.clone();
    let owned = is_kuryr_port(p).then(|| DEVICE_OWNER.to_string());
    for t in ep_tags.iter().cloned().chain(owned) {
        if !want.contains(&t) {
            want.push(t);
        }
    }
    want
}
