//! Port drivers: how a container's Neutron port reaches this host, one file each, chosen by name
//! from `[DEFAULT] default_port_driver`. The port lifecycle calls them; so do both front ends
//! (Docker's CNM verbs, and next the CNI verbs) through it.
//!
//! - [`veth`]: bare metal; the port is bound to this host and a veth pair is plugged where its
//!   `binding:vif_type` says.
//! - [`nested_macvlan`]: inside a Nova VM; a macvlan child of the VM's interface, the container's
//!   address in the VM port's `allowed_address_pairs`.
//! - [`nested_vlan`]: inside a Nova VM; a VLAN child, the container port a subport of the VM
//!   port's trunk.

mod nested_macvlan;
mod nested_vlan;
mod veth;
mod vm_port;

use std::sync::Arc;

use kuryr_binding::{BindMode, HostBinding, MacAddr};
use kuryr_config::PortDriverKind;

use crate::error::{DriverError, Result};
use crate::neutron::{Nt, Port};
use crate::undo::Undo;

pub use nested_macvlan::NestedMacvlanDriver;
pub use nested_vlan::NestedVlanDriver;
pub use veth::VethDriver;

/// One way of attaching container ports to the host.
#[async_trait::async_trait]
pub trait PortDriver: Send + Sync {
    /// The name `default_port_driver` selects it by.
    fn name(&self) -> &'static str;

    /// Whether container ports are bound to this host (`binding:host_id`). Nested ports are
    /// not: the VM's port is, and they ride on it.
    fn binds_to_host(&self) -> bool;

    /// Whether the container's MAC is the Neutron port's. Not in the macvlan mode: there the MAC
    /// lives in the VM port's address pair, and a port with the same MAC would make OVN see it
    /// twice on the switch (the VM port and the container's virtual port), so that replies went
    /// to either at random.
    fn mac_on_port(&self) -> bool {
        true
    }

    /// The MAC the container's interface carries: the one asked for, else the port's.
    fn iface_mac(&self, port: &Port, requested: Option<MacAddr>) -> MacAddr {
        match requested {
            Some(m) if !self.mac_on_port() => m,
            _ => port.mac_address,
        }
    }

    /// The MAC for a container's interface, when Docker asked for none it is the driver's
    /// choice (after the attach, which may record it, answered to Docker).
    async fn choose_mac(&self, port: &Port, requested: Option<MacAddr>) -> Result<MacAddr> {
        Ok(self.iface_mac(port, requested))
    }

    /// The port whose network containers must be on when the user names none: the VM's own
    /// in the macvlan mode (containers can reach nothing else), as the Python original does.
    async fn required_network(&self) -> Result<Option<Port>> {
        Ok(None)
    }

    /// Neutron's side of attaching `port` (address pairs, trunk subports); pushes the reverse
    /// of each change on `undo`. Returns how the host makes the interface.
    async fn attach(&self, port: &Port, iface_mac: MacAddr, undo: &mut Undo) -> Result<BindMode>;

    /// Reverses [`PortDriver::attach`] for `port` (already undone is fine), collecting
    /// failures in `errors`; returns how the host made the interface, for the unplug.
    async fn detach(&self, port: &Port, errors: &mut Vec<DriverError>) -> BindMode;
}

/// The port driver `kind` names.
pub fn from_config(
    kind: &PortDriverKind,
    nt: &Nt,
    binding: &Arc<dyn HostBinding>,
) -> Arc<dyn PortDriver> {
    match kind {
        PortDriverKind::Veth => Arc::new(VethDriver),
        PortDriverKind::NestedMacvlan { link_iface } => Arc::new(NestedMacvlanDriver::new(
            nt.clone(),
            binding.clone(),
            link_iface.clone(),
        )),
        PortDriverKind::NestedVlan { link_iface } => Arc::new(NestedVlanDriver::new(
            nt.clone(),
            binding.clone(),
            link_iface.clone(),
        )),
    }
}
