//! Kernel links through rtnetlink, behind the narrow `LinkOps` trait.
//!
//! The netlink socket is bound to the namespace of the thread that opens it. The daemon only
//! ever works in the host namespace (Docker moves the container end itself), so the socket is
//! opened once on a runtime thread and no code here switches namespace.

use futures::TryStreamExt;
use netlink_packet_route::link::{
    BridgeStpState, InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp,
    MacVlanMode, XdpAttached,
};
use rtnetlink::{
    Handle, LinkBridge, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVlan,
};

use crate::error::BindingError;
use kuryr_types::MacAddr;

/// A veth pair; the host end is brought up, the peer gets the port's MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    pub name: String,
    pub peer: String,
    pub mtu: u32,
    pub peer_mac: Option<MacAddr>,
    /// Alias stored on both ends (IFLA_IFALIAS), read back by reconcile.
    pub alias: Option<String>,
}

/// A macvlan (mode bridge) or VLAN child of `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    pub name: String,
    pub parent: String,
    pub mac: MacAddr,
    pub mtu: Option<u32>,
    pub alias: Option<String>,
}

/// What a link dump tells about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfoSummary {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub kind: Option<String>,
    pub mac: Option<MacAddr>,
    pub mtu: Option<u32>,
    pub master: Option<u32>,
    pub up: bool,
    pub tx_queue_len: Option<u32>,
    /// What a container may have set on the link that survives the link's return to the host
    /// namespace (its addresses, routes, qdiscs and filters do not): an XDP program, flags,
    /// a group, alternative names. Empty for a link as `create_veth` made it.
    pub leftovers: Vec<String>,
}

/// The netlink verbs the binding needs. Deletions report `Ok(false)` when the link was
/// already gone, so tear-down can be idempotent.
#[async_trait::async_trait]
pub trait LinkOps: Send + Sync {
    async fn get(&self, name: &str) -> Result<Option<LinkInfoSummary>, BindingError>;
    async fn list(&self) -> Result<Vec<LinkInfoSummary>, BindingError>;
    /// Creates the pair; `Err(Link{op:"create"…})` with "exists" text when it already exists.
    async fn create_veth(&self, spec: &VethSpec) -> Result<(), BindingError>;
    async fn create_macvlan(&self, spec: &ChildSpec) -> Result<(), BindingError>;
    async fn create_vlan(&self, spec: &ChildSpec, vlan_id: u16) -> Result<(), BindingError>;
    /// Creates a Linux bridge (forward delay 0, STP off, up) unless it exists.
    /// Returns whether it was created.
    async fn ensure_bridge(&self, name: &str, alias: Option<&str>) -> Result<bool, BindingError>;
    /// Sets MTU / MAC / alias and optionally brings the link up.
    async fn configure(&self, name: &str, cfg: &LinkConfig) -> Result<(), BindingError>;
    /// Enslaves `name` to `master`, or frees it with `None`.
    async fn set_master(&self, name: &str, master: Option<&str>) -> Result<(), BindingError>;
    async fn delete(&self, name: &str) -> Result<bool, BindingError>;
}

/// Settings applied by `LinkOps::configure`; `None` leaves the attribute as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkConfig {
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
    pub alias: Option<String>,
    pub up: bool,
}

/// `LinkOps` over an rtnetlink connection in the current (host) namespace.
#[derive(Clone)]
pub struct NetlinkLinkOps {
    handle: Handle,
}

impl NetlinkLinkOps {
    /// Opens a netlink socket in the calling thread's namespace and spawns its connection on
    /// the current tokio runtime (must be called inside one).
    pub fn new() -> Result<Self, BindingError> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| BindingError::Other(format!("cannot open netlink socket: {e}")))?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    async fn index(&self, name: &str) -> Result<u32, BindingError> {
        match self.get(name).await? {
            Some(l) => Ok(l.index),
            None => Err(BindingError::LinkNotFound(name.to_string())),
        }
    }

    async fn add(&self, link: &str, msg: LinkMessage) -> Result<(), BindingError> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| nl_err(link, "create", e))
    }

    async fn set(
        &self,
        link: &str,
        op: &'static str,
        msg: LinkMessage,
    ) -> Result<(), BindingError> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| nl_err(link, op, e))
    }
}

/// Raw errno of a netlink error, if it is one.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EOPNOTSUPP: i32 = 95;

pub(crate) fn nl_err(link: &str, op: &'static str, e: rtnetlink::Error) -> BindingError {
    let message = match errno(&e) {
        Some(EEXIST) => "already exists".to_string(),
        Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
        None => e.to_string(),
    };
    BindingError::Link {
        link: link.to_string(),
        op,
        message,
    }
}

/// True for the error `create` gives when the link name is taken.
pub fn is_exists(e: &BindingError) -> bool {
    matches!(e, BindingError::Link { op: "create", message, .. } if message == "already exists")
}

pub(crate) fn summarize(msg: &LinkMessage) -> LinkInfoSummary {
    let mut s = LinkInfoSummary {
        index: msg.header.index,
        name: String::new(),
        alias: None,
        kind: None,
        mac: None,
        mtu: None,
        master: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        tx_queue_len: None,
        leftovers: Vec::new(),
    };
    for (flag, what) in [
        (LinkFlags::Promisc, "promiscuous mode"),
        (LinkFlags::Allmulti, "all-multicast mode"),
        (LinkFlags::Noarp, "ARP off"),
    ] {
        if msg.header.flags.contains(flag) {
            s.leftovers.push(what.to_string());
        }
    }
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::TxQueueLen(q) => s.tx_queue_len = Some(*q),
            LinkAttribute::Group(g) if *g != 0 => s.leftovers.push(format!("group {g}")),
            LinkAttribute::PropList(props) if !props.is_empty() => {
                s.leftovers.push("alternative names".into())
            }
            LinkAttribute::Xdp(xdp) => {
                let attached = xdp.iter().any(|x| {
                    matches!(x, LinkXdp::Attached(a) if *a != XdpAttached::None)
                        || matches!(x, LinkXdp::ProgId(id) if *id != 0)
                });
                if attached {
                    s.leftovers.push("an XDP program".into());
                }
            }
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::IfAlias(a) => s.alias = Some(a.clone()),
            LinkAttribute::Mtu(m) => s.mtu = Some(*m),
            LinkAttribute::Controller(m) => s.master = Some(*m),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut b = [0u8; 6];
                b.copy_from_slice(a);
                s.mac = Some(MacAddr::new(b));
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        s.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    s
}

/// The RTM_NEWLINK message for a veth pair: MTU on both ends, MAC on the peer, host end up.
pub fn veth_message(spec: &VethSpec) -> LinkMessage {
    let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(spec.peer.clone())
        .mtu(spec.mtu);
    if let Some(mac) = spec.peer_mac {
        peer = peer.address(mac.octets().to_vec());
    }
    LinkVeth::new(&spec.name, &spec.peer)
        .mtu(spec.mtu)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build()
}

/// The RTM_NEWLINK message for a macvlan child in bridge mode (kuryr-lib's mode).
pub fn macvlan_message(spec: &ChildSpec, parent_index: u32) -> LinkMessage {
    let mut b = LinkMacVlan::new(&spec.name, parent_index, MacVlanMode::Bridge)
        .address(spec.mac.octets().to_vec());
    if let Some(mtu) = spec.mtu {
        b = b.mtu(mtu);
    }
    b.build()
}

/// The RTM_NEWLINK message for an 802.1Q child with the subport's VLAN ID and MAC.
pub fn vlan_message(spec: &ChildSpec, parent_index: u32, vlan_id: u16) -> LinkMessage {
    let mut b =
        LinkVlan::new(&spec.name, parent_index, vlan_id).address(spec.mac.octets().to_vec());
    if let Some(mtu) = spec.mtu {
        b = b.mtu(mtu);
    }
    b.build()
}

fn bridge_message(name: &str) -> LinkMessage {
    // kuryr-lib's scripts set forward delay 0 and STP off so the port forwards at once.
    LinkBridge::new(name)
        .forward_delay(0)
        .stp_state(BridgeStpState::Disabled)
        .build()
}

#[async_trait::async_trait]
impl LinkOps for NetlinkLinkOps {
    async fn get(&self, name: &str) -> Result<Option<LinkInfoSummary>, BindingError> {
        let mut stream = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match stream.try_next().await {
            Ok(Some(msg)) => Ok(Some(summarize(&msg))),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(nl_err(name, "get", e)),
        }
    }

    async fn list(&self) -> Result<Vec<LinkInfoSummary>, BindingError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("*", "dump", e))?;
        Ok(msgs.iter().map(summarize).collect())
    }

    async fn create_veth(&self, spec: &VethSpec) -> Result<(), BindingError> {
        self.add(&spec.name, veth_message(spec)).await?;
        if let Some(alias) = &spec.alias {
            for name in [&spec.name, &spec.peer] {
                let cfg = LinkConfig {
                    alias: Some(alias.clone()),
                    ..Default::default()
                };
                self.configure(name, &cfg).await?;
            }
        }
        Ok(())
    }

    async fn create_macvlan(&self, spec: &ChildSpec) -> Result<(), BindingError> {
        let parent = self.index(&spec.parent).await?;
        self.add(&spec.name, macvlan_message(spec, parent)).await?;
        self.set_alias_if_any(&spec.name, spec.alias.as_deref())
            .await
    }

    async fn create_vlan(&self, spec: &ChildSpec, vlan_id: u16) -> Result<(), BindingError> {
        let parent = self.index(&spec.parent).await?;
        match self
            .handle
            .link()
            .add(vlan_message(spec, parent, vlan_id))
            .execute()
            .await
        {
            Ok(()) => {}
            // The kernel answers EOPNOTSUPP for a link kind whose module is missing.
            Err(e) if errno(&e) == Some(EOPNOTSUPP) => {
                return Err(BindingError::Unsupported(format!(
                    "cannot create vlan link {}: the kernel has no 8021q support",
                    spec.name
                )))
            }
            Err(e) => return Err(nl_err(&spec.name, "create", e)),
        }
        self.set_alias_if_any(&spec.name, spec.alias.as_deref())
            .await
    }

    async fn ensure_bridge(&self, name: &str, alias: Option<&str>) -> Result<bool, BindingError> {
        if self.get(name).await?.is_some() {
            return Ok(false);
        }
        match self.add(name, bridge_message(name)).await {
            Ok(()) => {}
            // Lost a race with another bind on the same network: fine, it exists.
            Err(e) if is_exists(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.set_alias_if_any(name, alias).await?;
        Ok(true)
    }

    async fn configure(&self, name: &str, cfg: &LinkConfig) -> Result<(), BindingError> {
        let index = self.index(name).await?;
        let mut b = LinkUnspec::new_with_index(index);
        if let Some(mtu) = cfg.mtu {
            b = b.mtu(mtu);
        }
        if let Some(mac) = cfg.mac {
            b = b.address(mac.octets().to_vec());
        }
        if let Some(alias) = &cfg.alias {
            b = b.alias(alias.clone());
        }
        if cfg.up {
            b = b.up();
        }
        self.set(name, "configure", b.build()).await
    }

    async fn set_master(&self, name: &str, master: Option<&str>) -> Result<(), BindingError> {
        let index = self.index(name).await?;
        let b = LinkUnspec::new_with_index(index);
        let msg = match master {
            Some(m) => b.controller(self.index(m).await?).build(),
            None => b.nocontroller().build(),
        };
        self.set(name, "set master", msg).await
    }

    async fn delete(&self, name: &str) -> Result<bool, BindingError> {
        let Some(link) = self.get(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            // Gone between get and del (e.g. its veth peer was deleted): done.
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(e) => Err(nl_err(name, "delete", e)),
        }
    }
}

impl NetlinkLinkOps {
    async fn set_alias_if_any(&self, name: &str, alias: Option<&str>) -> Result<(), BindingError> {
        match alias {
            Some(a) => {
                let cfg = LinkConfig {
                    alias: Some(a.to_string()),
                    ..Default::default()
                };
                self.configure(name, &cfg).await
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{InfoKind, InfoMacVlan, InfoVlan};

    fn kind_and_data(msg: &LinkMessage) -> (Option<InfoKind>, Option<InfoData>) {
        let mut kind = None;
        let mut data = None;
        for a in &msg.attributes {
            if let LinkAttribute::LinkInfo(infos) = a {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => kind = Some(k.clone()),
                        LinkInfo::Data(d) => data = Some(d.clone()),
                        _ => {}
                    }
                }
            }
        }
        (kind, data)
    }

    fn child() -> ChildSpec {
        ChildSpec {
            name: "t_c0123456789a".into(),
            parent: "eth0".into(),
            mac: "fa:16:3e:aa:bb:cc".parse().unwrap(),
            mtu: Some(1450),
            alias: None,
        }
    }

    #[test]
    fn vlan_message_carries_id_mac_parent() {
        let msg = vlan_message(&child(), 7, 101);
        let (kind, data) = kind_and_data(&msg);
        assert_eq!(kind, Some(InfoKind::Vlan));
        match data {
            Some(InfoData::Vlan(v)) => assert!(v.contains(&InfoVlan::Id(101))),
            other => panic!("unexpected info data {other:?}"),
        }
        assert!(msg.attributes.contains(&LinkAttribute::Link(7)));
        assert!(msg.attributes.contains(&LinkAttribute::Address(vec![
            0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc
        ])));
        assert!(msg.attributes.contains(&LinkAttribute::Mtu(1450)));
        assert!(msg
            .attributes
            .contains(&LinkAttribute::IfName("t_c0123456789a".into())));
    }

    #[test]
    fn macvlan_message_is_bridge_mode() {
        let msg = macvlan_message(&child(), 3);
        let (kind, data) = kind_and_data(&msg);
        assert_eq!(kind, Some(InfoKind::MacVlan));
        match data {
            Some(InfoData::MacVlan(v)) => {
                assert!(v.contains(&InfoMacVlan::Mode(MacVlanMode::Bridge)))
            }
            other => panic!("unexpected info data {other:?}"),
        }
        assert!(msg.attributes.contains(&LinkAttribute::Link(3)));
    }

    #[test]
    fn veth_message_sets_peer_mac_and_mtu() {
        let spec = VethSpec {
            name: "tapx".into(),
            peer: "t_cx".into(),
            mtu: 1442,
            peer_mac: Some("fa:16:3e:00:00:01".parse().unwrap()),
            alias: None,
        };
        let msg = veth_message(&spec);
        assert!(msg.header.flags.contains(LinkFlags::Up));
        assert!(msg.attributes.contains(&LinkAttribute::Mtu(1442)));
        let (kind, data) = kind_and_data(&msg);
        assert_eq!(kind, Some(InfoKind::Veth));
        let Some(InfoData::Veth(InfoVeth::Peer(peer))) = data else {
            panic!("no veth peer");
        };
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("t_cx".into())));
        assert!(peer.attributes.contains(&LinkAttribute::Mtu(1442)));
        assert!(peer
            .attributes
            .contains(&LinkAttribute::Address(vec![0xfa, 0x16, 0x3e, 0, 0, 1])));
    }
}
