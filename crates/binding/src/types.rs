//! Request and result types of the `HostBinding` trait (internal types: the driver fills them
//! from Neutron's port/network, never from Docker's wire types directly).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::BindingError;

/// An Ethernet MAC address; parsed from and printed as lowercase `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for MacAddr {
    type Err = BindingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BindingError::InvalidRequest(format!("invalid mac address {s:?}"));
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
    /// Docker endpoint id.
    pub endpoint_id: String,
    /// Neutron network id of the port.
    pub network_id: String,
    /// Neutron project (tenant) id of the port; passed to hook scripts. Empty if unknown.
    pub project_id: String,
    /// The port's MAC; set on the container end.
    pub mac: MacAddr,
    /// The network's MTU; `None` means 1500 (kuryr-lib's default).
    pub mtu: Option<u32>,
    /// The port's `binding:vif_type` (empty or absent in Neutron = `"unbound"`).
    pub vif_type: String,
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
    pub endpoint_id: String,
    pub network_id: String,
    pub mac: Option<MacAddr>,
    pub vif_type: String,
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
