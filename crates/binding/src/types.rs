//! Request and result types of the `HostBinding` trait (internal types: the driver fills them
//! from Neutron's port/network, never from Docker's wire types directly).

use serde::{Deserialize, Serialize};

pub use kuryr_types::{DockerId, MacAddr, VifType};

/// How the container's interface is made on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindMode {
    /// Bare metal: a veth pair `tap…`/`t_c…`, the host end plugged according to `vif_type`.
    Veth,
    /// Kuryr inside a VM, allowed-address-pairs mode: a macvlan (mode bridge) child `t_c…` of
    /// the VM's interface carrying the container port's MAC. Nothing is plugged.
    NestedMacvlan { parent_ifname: String },
    /// Kuryr inside a VM, trunk mode: a VLAN child `t_c…` of the VM's interface with the
    /// subport's VLAN ID and the container port's MAC. Nothing is plugged.
    NestedVlan { parent_ifname: String, vlan_id: u16 },
}

/// Everything the host needs to make and plug a container interface for one Neutron port.
#[derive(Debug, Clone, PartialEq)]
pub struct BindRequest {
    /// Neutron port id (full UUID).
    pub port_id: String,
    /// Docker endpoint id (or CNI container id).
    pub endpoint_id: DockerId,
    /// Neutron network id of the port.
    pub network_id: String,
    /// Neutron project (tenant) id of the port; passed to hook scripts. Empty if unknown.
    pub project_id: String,
    /// The port's MAC; set on the container end.
    pub mac: MacAddr,
    /// The network's MTU; `None` means 1500 (kuryr-lib's default).
    pub mtu: Option<u32>,
    /// The port's `binding:vif_type`.
    pub vif_type: VifType,
    /// The port's `binding:vif_details`.
    pub vif_details: serde_json::Map<String, serde_json::Value>,
    pub mode: BindMode,
}

/// What `bind` made: Join hands `container_ifname` to Docker as `InterfaceName.SrcName`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundInterface {
    pub container_ifname: String,
    /// The host end (`tap…`) for veth mode; `None` for nested modes.
    pub host_ifname: Option<String>,
}

/// What `unbind` needs. Same fields as the bind request so hook scripts get the same data;
/// `unbind` also sweeps every link/OVS port named after `port_id`, so a stale
/// `vif_type` still leaves nothing behind.
#[derive(Debug, Clone, PartialEq)]
pub struct UnbindRequest {
    pub port_id: String,
    pub endpoint_id: DockerId,
    pub network_id: String,
    pub mac: Option<MacAddr>,
    pub vif_type: VifType,
    pub vif_details: serde_json::Map<String, serde_json::Value>,
    pub mode: BindMode,
}

impl From<&BindRequest> for UnbindRequest {
    fn from(r: &BindRequest) -> Self {
        UnbindRequest {
            port_id: r.port_id.clone(),
            endpoint_id: r.endpoint_id.clone(),
            network_id: r.network_id.clone(),
            mac: Some(r.mac),
            vif_type: r.vif_type.clone(),
            vif_details: r.vif_details.clone(),
            mode: r.mode.clone(),
        }
    }
}

/// What kind of host object an `OwnedLink` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OwnedKind {
    /// A kernel link (tap/t_c/qbr/qvb/qvo) carrying Kuryr's alias.
    Link,
    /// An OVS port whose interface has `external_ids:owner=kuryr`.
    OvsPort,
}

/// A link or OVS port Kuryr made on this host, for start-up reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnedLink {
    pub kind: OwnedKind,
    /// Interface (or OVS port) name.
    pub name: String,
    /// Full Neutron port id when recorded (alias / `iface-id`), else `None`.
    pub port_id: Option<String>,
    /// Docker endpoint id when recorded (alias / `vm-uuid`), else `None`.
    pub endpoint_id: Option<String>,
    /// OVS bridge the port is on (`OvsPort` only).
    pub bridge: Option<String>,
}
