//! The VM's own Neutron port, which the nested modes hang containers on: found by the MAC of the
//! VM's interface (`[binding] link_iface`), remembered by id.

use std::sync::{Arc, Mutex};

use kuryr_binding::HostBinding;

use crate::error::{DriverError, Result};
use crate::neutron::{Nt, Port, PortQuery};

pub(super) struct VmPort {
    nt: Nt,
    binding: Arc<dyn HostBinding>,
    pub(super) link_iface: String,
    id: Mutex<Option<String>>,
}

impl VmPort {
    pub(super) fn new(nt: Nt, binding: Arc<dyn HostBinding>, link_iface: String) -> Self {
        VmPort {
            nt,
            binding,
            link_iface,
            id: Mutex::new(None),
        }
    }

    pub(super) fn nt(&self) -> &Nt {
        &self.nt
    }

    /// The VM's port as Neutron has it now.
    pub(super) async fn get(&self) -> Result<Port> {
        let known = self.id.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(id) = known {
            if let Some(p) = self.nt.port(&id).await? {
                return Ok(p);
            }
        }
        let mac = self.binding.link_mac(&self.link_iface).await.map_err(|e| {
            DriverError::binding(format!("[binding] link_iface {}", self.link_iface), e)
        })?;
        let p = self
            .nt
            .ports(&PortQuery::with_mac(mac))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                DriverError::NotFound(format!("no neutron port has the vm's mac address {mac}"))
            })?;
        *self.id.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.id.clone());
        Ok(p)
    }
}
