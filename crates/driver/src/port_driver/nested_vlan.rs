//! Inside a Nova VM, trunk mode (the original's `vlan`): the container port becomes a subport of
//! the VM port's trunk with a free VLAN ID, and the container's interface is a VLAN child of the
//! VM's interface with that ID. The trunk's own subport list is the VLAN allocation state, so a
//! restart loses nothing.

use std::sync::Arc;

use kuryr_binding::{BindMode, HostBinding, MacAddr};
use tokio::sync::Mutex as AsyncMutex;

use super::vm_port::VmPort;
use super::PortDriver;
use crate::error::{DriverError, Result};
use crate::neutron::{Nt, Port};
use crate::undo::Undo;

pub struct NestedVlanDriver {
    vm: VmPort,
    /// Picking a free VLAN ID is a read-modify-write of the trunk.
    trunk_lock: AsyncMutex<()>,
}

impl NestedVlanDriver {
    pub fn new(nt: Nt, binding: Arc<dyn HostBinding>, link_iface: String) -> Self {
        NestedVlanDriver {
            vm: VmPort::new(nt, binding, link_iface),
            trunk_lock: AsyncMutex::new(()),
        }
    }

    fn mode(&self, vlan_id: u16) -> BindMode {
        BindMode::NestedVlan {
            parent_ifname: self.vm.link_iface.clone(),
            vlan_id,
        }
    }
}

#[async_trait::async_trait]
impl PortDriver for NestedVlanDriver {
    fn name(&self) -> &'static str {
        "vlan"
    }

    fn binds_to_host(&self) -> bool {
        false
    }

    async fn attach(&self, port: &Port, _mac: MacAddr, undo: &mut Undo) -> Result<BindMode> {
        let _g = self.trunk_lock.lock().await;
        // Read under the lock: the subport list is the allocation state.
        let vm = self.vm.get().await?;
        let (trunk_id, subports) = vm.trunk.ok_or_else(|| {
            DriverError::NotFound(format!("vm port {} is not a trunk parent", vm.id))
        })?;
        if let Some(s) = subports.iter().find(|s| s.port_id == port.id) {
            return Ok(self.mode(s.segmentation_id));
        }
        let vlan_id = kuryr_binding::pick_free_vlan_id(subports.iter().map(|s| s.segmentation_id))
            .map_err(|e| DriverError::binding(format!("trunk {trunk_id}"), e))?;
        let nt = self.vm.nt();
        nt.trunk_add_subport(&trunk_id, &port.id, vlan_id).await?;
        let (nt, t, p) = (nt.clone(), trunk_id.clone(), port.id.clone());
        undo.push(
            format!("remove subport {p} from trunk {t}"),
            move || async move { nt.trunk_remove_subport(&t, &p).await },
        );
        Ok(self.mode(vlan_id))
    }

    async fn detach(&self, port: &Port, errors: &mut Vec<DriverError>) -> BindMode {
        let _g = self.trunk_lock.lock().await;
        let mut vlan_id = 0;
        match self.vm.get().await {
            Ok(vm) => {
                if let Some((trunk_id, subports)) = vm.trunk {
                    if let Some(s) = subports.iter().find(|s| s.port_id == port.id) {
                        vlan_id = s.segmentation_id;
                        if let Err(e) = self.vm.nt().trunk_remove_subport(&trunk_id, &port.id).await
                        {
                            errors.push(e);
                        }
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        self.mode(vlan_id)
    }
}
