//! `LinuxHostBinding`: the real host binding (netlink for links, ovs-vsctl for OVS, hook
//! scripts for other vif types).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::bpf;
use crate::constants::*;
use crate::error::{BindingError, ErrorList};
use crate::hook::{self, HookBindArgs};
use crate::link::{is_exists, ChildSpec, LinkConfig, LinkOps, NetlinkLinkOps, VethSpec};
use crate::naming;
use crate::ovs::{OvsDb, OvsVsctl};
use crate::types::*;
use crate::HostBinding;

/// Settings of the real host binding (from kuryr.conf `[DEFAULT] bindir`, `[binding]`, …).
#[derive(Debug, Clone)]
pub struct BindingConfig {
    /// Directory of vif-type hook scripts (kuryr-lib's `bindir`).
    pub bindir: PathBuf,
    /// `--timeout` of each ovs-vsctl transaction.
    pub ovs_vsctl_timeout: Duration,
    /// OVS bridge when vif_details carry no `bridge_name`.
    pub default_bridge: String,
    /// Time limit of one hook script run.
    pub hook_timeout: Duration,
    /// ovs-vsctl program (path or name on PATH).
    pub ovs_vsctl_program: PathBuf,
    /// `--db=` for ovs-vsctl; `None` = its default socket.
    pub ovs_db: Option<String>,
    /// `--no-wait` for ovs-vsctl (OVSDB without ovs-vswitchd, tests only).
    pub ovs_no_wait: bool,
}

impl Default for BindingConfig {
    fn default() -> Self {
        BindingConfig {
            bindir: PathBuf::from(DEFAULT_BINDIR),
            ovs_vsctl_timeout: Duration::from_secs(DEFAULT_OVS_VSCTL_TIMEOUT_SECS),
            default_bridge: DEFAULT_OVS_BRIDGE.to_string(),
            hook_timeout: Duration::from_secs(DEFAULT_HOOK_TIMEOUT_SECS),
            ovs_vsctl_program: PathBuf::from("ovs-vsctl"),
            ovs_db: None,
            ovs_no_wait: false,
        }
    }
}

impl BindingConfig {
    pub fn ovs_vsctl(&self) -> OvsVsctl {
        OvsVsctl {
            program: self.ovs_vsctl_program.clone(),
            db: self.ovs_db.clone(),
            timeout: self.ovs_vsctl_timeout,
            no_wait: self.ovs_no_wait,
        }
    }
}

/// How the host end of a veth is plugged, chosen from `binding:vif_type`/`vif_details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VifPlugger {
    /// Host end into an OVS bridge.
    Ovs { bridge: String },
    /// `qbr` Linux bridge holding the host end and `qvb`, its peer `qvo` into OVS.
    OvsHybrid {
        bridge: String,
        qbr: String,
        qvb: String,
        qvo: String,
    },
    /// Host end into a Linux bridge (`brq<net>` or vif_details `bridge_name`).
    LinuxBridge { bridge: String },
    /// Nothing to plug: the tap stays unbridged.
    Tap,
    /// `<bindir>/<vif_type>`.
    Hook { path: PathBuf },
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        // Some backends send strings; accept Python's spellings.
        Some(Value::String(s)) => kuryr_types::parse_bool(s).unwrap_or(false),
        _ => false,
    }
}

fn bridge_from_details(details: &Map<String, Value>) -> Option<String> {
    details
        .get(VIF_DETAILS_BRIDGE_NAME)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl VifPlugger {
    /// Picks the plugger; for hooks the script must exist now, before the host is touched.
    pub fn choose(
        cfg: &BindingConfig,
        vif_type: &VifType,
        details: &Map<String, Value>,
        port_id: &str,
        network_id: &str,
    ) -> Result<VifPlugger, BindingError> {
        let plugger = match vif_type {
            VifType::Ovs => {
                let bridge = bridge_from_details(details).unwrap_or(cfg.default_bridge.clone());
                if truthy(details.get(VIF_DETAILS_OVS_HYBRID_PLUG)) {
                    let (qbr, qvb, qvo) = naming::hybrid_names(port_id);
                    VifPlugger::OvsHybrid {
                        bridge,
                        qbr,
                        qvb,
                        qvo,
                    }
                } else {
                    VifPlugger::Ovs { bridge }
                }
            }
            VifType::Bridge => VifPlugger::LinuxBridge {
                bridge: bridge_from_details(details)
                    .unwrap_or_else(|| naming::linux_bridge_name(network_id)),
            },
            VifType::Tap => VifPlugger::Tap,
            other => VifPlugger::Hook {
                path: hook::find_hook(&cfg.bindir, other.as_str())?,
            },
        };
        plugger.validate()?;
        Ok(plugger)
    }

    fn validate(&self) -> Result<(), BindingError> {
        let bridge = match self {
            VifPlugger::Ovs { bridge }
            | VifPlugger::OvsHybrid { bridge, .. }
            | VifPlugger::LinuxBridge { bridge } => bridge,
            _ => return Ok(()),
        };
        if naming::valid_ifname(bridge) {
            Ok(())
        } else {
            Err(BindingError::InvalidRequest(format!(
                "invalid bridge name {bridge:?}"
            )))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            VifPlugger::Ovs { .. } => "ovs",
            VifPlugger::OvsHybrid { .. } => "ovs-hybrid",
            VifPlugger::LinuxBridge { .. } => "bridge",
            VifPlugger::Tap => "tap",
            VifPlugger::Hook { .. } => "hook",
        }
    }
}

/// What pluggers need to know about the port.
struct PortCtx<'a> {
    port_id: &'a str,
    endpoint_id: &'a str,
    network_id: &'a str,
    project_id: &'a str,
    mac: String,
    mtu: u32,
    host_ifname: String,
    vif_details: &'a Map<String, Value>,
}

impl PortCtx<'_> {
    fn alias(&self) -> String {
        naming::link_alias(self.endpoint_id, self.port_id)
    }

    fn external_ids(&self) -> Vec<(String, String)> {
        [
            (EXT_ID_IFACE_ID, self.port_id),
            (EXT_ID_ATTACHED_MAC, self.mac.as_str()),
            (EXT_ID_IFACE_STATUS, IFACE_STATUS_ACTIVE),
            (EXT_ID_VM_UUID, self.endpoint_id),
            (EXT_ID_OWNER, OWNER),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn hook_args(&self) -> HookBindArgs<'_> {
        HookBindArgs {
            port_id: self.port_id,
            ifname: &self.host_ifname,
            endpoint_id: self.endpoint_id,
            mac: &self.mac,
            network_id: self.network_id,
            project_id: self.project_id,
            vif_details: self.vif_details,
        }
    }
}

/// How a veth pair's host and container ends are set up for a port: MTU, owner mark, up; the
/// container end also carries the port's MAC.
fn pair_config(mtu: u32, mac: MacAddr, alias: &str) -> (LinkConfig, LinkConfig) {
    let host = LinkConfig {
        mtu: Some(mtu),
        alias: Some(alias.to_string()),
        up: true,
        ..Default::default()
    };
    let container = LinkConfig {
        mac: Some(mac),
        ..host.clone()
    };
    (host, container)
}

/// The real host binding.
pub struct LinuxHostBinding {
    cfg: BindingConfig,
    links: Arc<dyn LinkOps>,
    ovs: Arc<dyn OvsDb>,
}

impl LinuxHostBinding {
    /// Opens a netlink socket in the host namespace; call inside the tokio runtime.
    pub fn new(cfg: BindingConfig) -> Result<Self, BindingError> {
        let links = Arc::new(NetlinkLinkOps::new()?);
        let ovs = Arc::new(cfg.ovs_vsctl());
        Ok(Self::with_parts(cfg, links, ovs))
    }

    /// For tests and alternative back-ends.
    pub fn with_parts(cfg: BindingConfig, links: Arc<dyn LinkOps>, ovs: Arc<dyn OvsDb>) -> Self {
        LinuxHostBinding { cfg, links, ovs }
    }

    fn validate(req: &BindRequest) -> Result<u32, BindingError> {
        let invalid = |m: String| Err(BindingError::InvalidRequest(m));
        for (what, v) in [("port_id", &req.port_id), ("network_id", &req.network_id)] {
            // Ids end up in link names, aliases and script arguments.
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return invalid(format!("invalid {what} {v:?}"));
            }
        }
        if req.mac.octets()[0] & 1 == 1 {
            return invalid(format!("mac {} is a multicast address", req.mac));
        }
        let mtu = req.mtu.unwrap_or(DEFAULT_NETWORK_MTU);
        if !(68..=65535).contains(&mtu) {
            return invalid(format!("invalid mtu {mtu}"));
        }
        match &req.mode {
            BindMode::Veth => {}
            BindMode::NestedMacvlan { parent_ifname } => {
                if !naming::valid_ifname(parent_ifname) {
                    return invalid(format!("invalid parent interface {parent_ifname:?}"));
                }
            }
            BindMode::NestedVlan {
                parent_ifname,
                vlan_id,
            } => {
                if !naming::valid_ifname(parent_ifname) {
                    return invalid(format!("invalid parent interface {parent_ifname:?}"));
                }
                if !(MIN_VLAN_ID..=MAX_VLAN_ID).contains(vlan_id) {
                    return invalid(format!("invalid vlan id {vlan_id}"));
                }
            }
        }
        Ok(mtu)
    }

    async fn bind_veth(
        &self,
        req: &BindRequest,
        mtu: u32,
        plugger: &VifPlugger,
    ) -> Result<BoundInterface, BindingError> {
        let (host, container) = naming::veth_pair_names(&req.port_id);
        let ctx = PortCtx {
            port_id: &req.port_id,
            endpoint_id: req.endpoint_id.as_str(),
            network_id: &req.network_id,
            project_id: &req.project_id,
            mac: req.mac.to_string(),
            mtu,
            host_ifname: host.clone(),
            vif_details: &req.vif_details,
        };
        let alias = ctx.alias();
        let spec = VethSpec {
            name: host.clone(),
            peer: container.clone(),
            mtu,
            peer_mac: Some(req.mac),
            alias: Some(alias.clone()),
        };
        match self.links.create_veth(&spec).await {
            Ok(()) => {}
            // A retried CreateEndpoint: reuse the pair (kuryr-lib does too), re-applying settings.
            Err(e) if is_exists(&e) => {
                tracing::info!(link = %host, "veth pair exists, reusing it");
            }
            Err(e) => return Err(e),
        }
        let configured = async {
            let (host_cfg, c_cfg) = pair_config(mtu, req.mac, &alias);
            self.links.configure(&host, &host_cfg).await?;
            // The peer is invisible here once Docker moved it into a sandbox; that is fine.
            if self.links.get(&container).await?.is_some() {
                self.links.configure(&container, &c_cfg).await?;
            }
            self.plug(plugger, &ctx).await
        }
        .await;
        if let Err(e) = configured {
            tracing::warn!(port_id = %req.port_id, error = %e, "bind failed, undoing");
            if let Err(undo) = self.unplug(plugger, &ctx).await {
                tracing::warn!(port_id = %req.port_id, error = %undo, "undo of plug failed");
            }
            if let Err(undo) = self.links.delete(&host).await {
                tracing::warn!(link = %host, error = %undo, "undo of veth failed");
            }
            return Err(e);
        }
        Ok(BoundInterface {
            container_ifname: container,
            host_ifname: Some(host),
        })
    }

    async fn plug(&self, p: &VifPlugger, ctx: &PortCtx<'_>) -> Result<(), BindingError> {
        match p {
            VifPlugger::Ovs { bridge } => {
                self.ovs
                    .add_port(bridge, &ctx.host_ifname, &ctx.external_ids())
                    .await
            }
            VifPlugger::OvsHybrid {
                bridge,
                qbr,
                qvb,
                qvo,
            } => {
                let alias = ctx.alias();
                self.links.ensure_bridge(qbr, Some(&alias)).await?;
                let spec = VethSpec {
                    name: qvb.clone(),
                    peer: qvo.clone(),
                    mtu: ctx.mtu,
                    peer_mac: None,
                    alias: Some(alias.clone()),
                };
                match self.links.create_veth(&spec).await {
                    Ok(()) => {}
                    Err(e) if is_exists(&e) => {}
                    Err(e) => return Err(e),
                }
                let up = LinkConfig {
                    mtu: Some(ctx.mtu),
                    up: true,
                    ..Default::default()
                };
                self.links.configure(qvb, &up).await?;
                self.links.configure(qvo, &up).await?;
                self.links.set_master(qvb, Some(qbr)).await?;
                self.links.set_master(&ctx.host_ifname, Some(qbr)).await?;
                self.ovs.add_port(bridge, qvo, &ctx.external_ids()).await
            }
            VifPlugger::LinuxBridge { bridge } => {
                // Shared by every port of the network: no alias, reconcile never removes it.
                if self.links.ensure_bridge(bridge, None).await? {
                    tracing::info!(bridge = %bridge, "created linux bridge");
                }
                self.links.set_master(&ctx.host_ifname, Some(bridge)).await
            }
            VifPlugger::Tap => Ok(()),
            VifPlugger::Hook { path } => {
                let argv = hook::bind_argv(&ctx.hook_args());
                let out = hook::run_hook(path, &argv, self.cfg.hook_timeout, ctx.port_id).await?;
                tracing::debug!(port_id = %ctx.port_id, stdout = %out.trim(), "bind hook ran");
                Ok(())
            }
        }
    }

    /// Idempotent; every step runs, errors are collected.
    async fn unplug(&self, p: &VifPlugger, ctx: &PortCtx<'_>) -> Result<(), BindingError> {
        let mut errors = ErrorList::default();
        match p {
            // Both OVS flavours sweep both layouts: vif_details may have changed since bind.
            VifPlugger::Ovs { .. } | VifPlugger::OvsHybrid { .. } => {
                let (qbr, qvb, qvo) = naming::hybrid_names(ctx.port_id);
                errors.push(self.ovs.del_ports(&[&ctx.host_ifname, &qvo]).await);
                errors.push(self.links.delete(&qvb).await.map(drop));
                errors.push(self.links.delete(&qbr).await.map(drop));
            }
            // Deleting the tap frees it from the bridge; the bridge stays for other ports.
            VifPlugger::LinuxBridge { .. } | VifPlugger::Tap => {}
            VifPlugger::Hook { path } => {
                let argv = hook::unbind_argv(&ctx.hook_args());
                errors.push(
                    hook::run_hook(path, &argv, self.cfg.hook_timeout, ctx.port_id)
                        .await
                        .map(drop),
                );
            }
        }
        errors.into_result()
    }

    async fn bind_child(
        &self,
        req: &BindRequest,
        mtu: u32,
        parent: &str,
        vlan_id: Option<u16>,
    ) -> Result<BoundInterface, BindingError> {
        if self.links.get(parent).await?.is_none() {
            return Err(BindingError::LinkNotFound(parent.to_string()));
        }
        let name = naming::container_ifname(&req.port_id);
        let alias = naming::link_alias(req.endpoint_id.as_str(), &req.port_id);
        let spec = ChildSpec {
            name: name.clone(),
            parent: parent.to_string(),
            mac: req.mac,
            mtu: Some(mtu),
            alias: Some(alias.clone()),
        };
        let created = match vlan_id {
            Some(id) => self.links.create_vlan(&spec, id).await,
            None => self.links.create_macvlan(&spec).await,
        };
        match created {
            Ok(()) => {}
            Err(e) if is_exists(&e) => {
                tracing::info!(link = %name, "child link exists, reusing it")
            }
            Err(e) => return Err(e),
        }
        let cfg = LinkConfig {
            mtu: Some(mtu),
            mac: Some(req.mac),
            alias: Some(alias),
            up: true,
        };
        if let Err(e) = self.links.configure(&name, &cfg).await {
            if let Err(undo) = self.links.delete(&name).await {
                tracing::warn!(link = %name, error = %undo, "undo of child link failed");
            }
            return Err(e);
        }
        Ok(BoundInterface {
            container_ifname: name,
            host_ifname: None,
        })
    }
}

#[async_trait::async_trait]
impl HostBinding for LinuxHostBinding {
    async fn bind(&self, req: &BindRequest) -> Result<BoundInterface, BindingError> {
        let mtu = Self::validate(req)?;
        match &req.mode {
            BindMode::Veth => {
                let plugger = VifPlugger::choose(
                    &self.cfg,
                    &req.vif_type,
                    &req.vif_details,
                    &req.port_id,
                    &req.network_id,
                )?;
                tracing::debug!(port_id = %req.port_id, plugger = plugger.name(), "binding");
                self.bind_veth(req, mtu, &plugger).await
            }
            BindMode::NestedMacvlan { parent_ifname } => {
                self.bind_child(req, mtu, parent_ifname, None).await
            }
            BindMode::NestedVlan {
                parent_ifname,
                vlan_id,
            } => {
                self.bind_child(req, mtu, parent_ifname, Some(*vlan_id))
                    .await
            }
        }
    }

    async fn unbind(&self, req: &UnbindRequest) -> Result<(), BindingError> {
        if req.port_id.is_empty() {
            return Err(BindingError::InvalidRequest("empty port_id".into()));
        }
        let (host, container) = naming::veth_pair_names(&req.port_id);
        let mut errors = ErrorList::default();
        if req.mode == BindMode::Veth {
            let ctx = PortCtx {
                port_id: &req.port_id,
                endpoint_id: req.endpoint_id.as_str(),
                network_id: &req.network_id,
                project_id: "",
                mac: req.mac.map(|m| m.to_string()).unwrap_or_default(),
                mtu: DEFAULT_NETWORK_MTU,
                host_ifname: host.clone(),
                vif_details: &req.vif_details,
            };
            match VifPlugger::choose(
                &self.cfg,
                &req.vif_type,
                &req.vif_details,
                &req.port_id,
                &req.network_id,
            ) {
                Ok(p) => errors.push(self.unplug(&p, &ctx).await),
                // No script for this vif type: nothing of it can be undone; links still go.
                Err(BindingError::VifTypeNotSupported { vif_type, .. }) => {
                    tracing::info!(port_id = %req.port_id, %vif_type, "no unbind hook, skipping unplug")
                }
                Err(e) => errors.0.push(e),
            }
            errors.push(self.links.delete(&host).await.map(drop));
        }
        // Veth peer normally goes with the tap; nested children are deleted here.
        errors.push(self.links.delete(&container).await.map(drop));
        errors.into_result()
    }

    async fn claim(&self, req: &BindRequest) -> Result<bool, BindingError> {
        if req.mode != BindMode::Veth {
            return Ok(false);
        }
        let mtu = Self::validate(req)?;
        let (host, container) = naming::veth_pair_names(&req.port_id);
        let pool_alias = naming::link_alias(POOL_LINK_OWNER, &req.port_id);
        // Both ends here, the container end not yet in any sandbox and marked as the pool's.
        let pre_plugged = match self.links.get(&container).await? {
            Some(c) => c.alias.as_deref() == Some(pool_alias.as_str()),
            None => false,
        };
        if !pre_plugged || self.links.get(&host).await?.is_none() {
            return Ok(false);
        }
        let alias = naming::link_alias(req.endpoint_id.as_str(), &req.port_id);
        // The pool plugged it before the network's MTU was known to it.
        let (host_cfg, c_cfg) = pair_config(mtu, req.mac, &alias);
        self.links.configure(&host, &host_cfg).await?;
        self.links.configure(&container, &c_cfg).await?;
        Ok(true)
    }

    async fn unclaim(&self, req: &UnbindRequest) -> Result<(), BindingError> {
        let (host, container) = naming::veth_pair_names(&req.port_id);
        let mark = LinkConfig {
            alias: Some(naming::link_alias(POOL_LINK_OWNER, &req.port_id)),
            ..Default::default()
        };
        // The host end first: it stays here whatever happened to the container end.
        for name in [&host, &container] {
            if self.links.get(name).await?.is_some() {
                self.links.configure(name, &mark).await?;
            }
        }
        Ok(())
    }

    async fn reuse(&self, req: &BindRequest) -> Result<bool, BindingError> {
        if req.mode != BindMode::Veth {
            return Ok(false);
        }
        Self::validate(req)?;
        let (host, container) = naming::veth_pair_names(&req.port_id);
        let pool_alias = naming::link_alias(POOL_LINK_OWNER, &req.port_id);
        let (Some(h), Some(c)) = (
            self.links.get(&host).await?,
            self.links.get(&container).await?,
        ) else {
            return Ok(false);
        };
        if [&h.alias, &c.alias]
            .iter()
            .any(|a| a.as_deref() != Some(pool_alias.as_str()))
        {
            return Ok(false);
        }
        // Addresses, routes, neighbours, qdiscs and their filters went with the namespace
        // move; what is listed here did not.
        let mut leftovers = c.leftovers;
        if c.tx_queue_len != h.tx_queue_len {
            leftovers.push(format!("queue length {:?}", c.tx_queue_len));
        }
        if c.master.is_some() {
            leftovers.push("a master device".into());
        }
        match bpf::tcx_programs(c.index, &container) {
            Ok(0) => {}
            Ok(n) => leftovers.push(format!("{n} tcx program(s)")),
            Err(e) => leftovers.push(e.to_string()),
        }
        if !leftovers.is_empty() {
            tracing::info!(link = %container, ?leftovers, "a returned container interface keeps settings of its container: plugged afresh");
            return Ok(false);
        }
        // As the pool plugged it: the port's MAC (the container may have changed it), up.
        let cfg = LinkConfig {
            mac: Some(req.mac),
            up: true,
            ..Default::default()
        };
        self.links.configure(&container, &cfg).await?;
        Ok(true)
    }

    async fn enter_sandbox(&self, req: &crate::EnterSandbox) -> Result<(), BindingError> {
        crate::sandbox::enter(req).await
    }

    async fn leave_sandbox(
        &self,
        sandbox: &crate::SandboxRef,
        host_ifname: Option<&str>,
    ) -> Result<bool, BindingError> {
        crate::sandbox::leave(sandbox, host_ifname).await
    }

    async fn inspect_sandbox(
        &self,
        sandbox: &crate::SandboxRef,
    ) -> Result<Option<crate::SandboxState>, BindingError> {
        crate::sandbox::inspect(sandbox).await
    }

    async fn list_owned(&self) -> Result<Vec<OwnedLink>, BindingError> {
        let mut out: Vec<OwnedLink> = self
            .links
            .list()
            .await?
            .into_iter()
            .filter_map(|l| {
                let (ep, port) = naming::parse_link_alias(l.alias.as_deref()?)?;
                Some(OwnedLink {
                    kind: OwnedKind::Link,
                    name: l.name,
                    port_id: Some(port),
                    endpoint_id: Some(ep),
                    bridge: None,
                })
            })
            .collect();
        match self.ovs.list_owned().await {
            Ok(ifaces) => out.extend(ifaces.into_iter().map(|i| OwnedLink {
                kind: OwnedKind::OvsPort,
                port_id: i.external_id(EXT_ID_IFACE_ID).map(str::to_string),
                endpoint_id: i.external_id(EXT_ID_VM_UUID).map(str::to_string),
                name: i.name,
                bridge: None,
            })),
            // Hosts without Open vSwitch (Linux bridge, nested) have no OVS ports to list.
            Err(BindingError::Ovs { message, .. }) if message.starts_with("cannot run") => {
                tracing::debug!(%message, "ovs-vsctl unavailable, no OVS ports listed")
            }
            Err(e) => return Err(e),
        }
        Ok(out)
    }

    async fn remove_owned(&self, link: &OwnedLink) -> Result<(), BindingError> {
        match link.kind {
            OwnedKind::Link => self.links.delete(&link.name).await.map(drop),
            OwnedKind::OvsPort => self.ovs.del_ports(&[&link.name]).await,
        }
    }

    async fn link_mac(&self, ifname: &str) -> Result<MacAddr, BindingError> {
        if !naming::valid_ifname(ifname) {
            return Err(BindingError::InvalidRequest(format!(
                "invalid interface name {ifname:?}"
            )));
        }
        // sysfs, not netlink: it answers for the namespace this process was started in, which
        // is the VM's own when the daemon runs under `ip netns exec`.
        let path = format!("/sys/class/net/{ifname}/address");
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|_| BindingError::LinkNotFound(ifname.to_string()))?;
        text.trim()
            .parse()
            .map_err(|e| BindingError::Other(format!("{path}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PORT: &str = "0123456789abcdef-0000";

    fn details(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn cfg(bindir: &std::path::Path) -> BindingConfig {
        BindingConfig {
            bindir: bindir.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn dispatch_by_vif_type() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let choose = |t: &str, d: Value| {
            VifPlugger::choose(&c, &VifType::from(t), &details(d), PORT, "net0123456789ab")
        };
        assert_eq!(
            choose("ovs", json!({})).unwrap(),
            VifPlugger::Ovs {
                bridge: "br-int".into()
            }
        );
        assert_eq!(
            choose("ovs", json!({"bridge_name": "br-ex"})).unwrap(),
            VifPlugger::Ovs {
                bridge: "br-ex".into()
            }
        );
        assert_eq!(
            choose("ovs", json!({"ovs_hybrid_plug": true})).unwrap(),
            VifPlugger::OvsHybrid {
                bridge: "br-int".into(),
                qbr: "qbr0123456789a".into(),
                qvb: "qvb0123456789a".into(),
                qvo: "qvo0123456789a".into(),
            }
        );
        assert_eq!(
            choose("bridge", json!({})).unwrap(),
            VifPlugger::LinuxBridge {
                bridge: "brqnet01234567".into()
            }
        );
        assert_eq!(
            choose("bridge", json!({"bridge_name": "brx"})).unwrap(),
            VifPlugger::LinuxBridge {
                bridge: "brx".into()
            }
        );
        assert_eq!(choose("tap", json!({})).unwrap(), VifPlugger::Tap);
        // Unknown types need a script; empty means `unbound`.
        assert!(matches!(
            choose("vhostuser", json!({})),
            Err(BindingError::VifTypeNotSupported { .. })
        ));
        assert!(matches!(
            choose("", json!({})),
            Err(BindingError::VifTypeNotSupported { vif_type, .. }) if vif_type == VifType::Unbound.as_str()
        ));
        use std::os::unix::fs::PermissionsExt;
        let script = dir.path().join("vhostuser");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            choose("vhostuser", json!({})).unwrap(),
            VifPlugger::Hook { path: script }
        );
        assert!(matches!(
            choose("ovs", json!({"bridge_name": "a/b"})),
            Err(BindingError::InvalidRequest(_))
        ));
    }

    fn req(mode: BindMode) -> BindRequest {
        BindRequest {
            port_id: PORT.into(),
            endpoint_id: "ep1".parse().unwrap(),
            network_id: "net1".into(),
            project_id: "proj".into(),
            mac: "fa:16:3e:00:00:01".parse().unwrap(),
            mtu: Some(1442),
            vif_type: "ovs".into(),
            vif_details: Map::new(),
            mode,
        }
    }

    #[test]
    fn validation_rejects_bad_input() {
        assert_eq!(
            LinuxHostBinding::validate(&req(BindMode::Veth)).unwrap(),
            1442
        );
        let mut r = req(BindMode::Veth);
        r.port_id = "../x".into();
        assert!(LinuxHostBinding::validate(&r).is_err());
        let mut r = req(BindMode::Veth);
        r.mtu = Some(10);
        assert!(LinuxHostBinding::validate(&r).is_err());
        let mut r = req(BindMode::Veth);
        r.mac = "01:00:5e:00:00:01".parse().unwrap();
        assert!(LinuxHostBinding::validate(&r).is_err());
        let r = req(BindMode::NestedVlan {
            parent_ifname: "eth0".into(),
            vlan_id: 4095,
        });
        assert!(LinuxHostBinding::validate(&r).is_err());
        let r = req(BindMode::NestedMacvlan {
            parent_ifname: "bad name".into(),
        });
        assert!(LinuxHostBinding::validate(&r).is_err());
        let mut r = req(BindMode::Veth);
        r.mtu = None;
        assert_eq!(LinuxHostBinding::validate(&r).unwrap(), 1500);
    }
}
