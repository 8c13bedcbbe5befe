//! Inside a Nova VM, allowed-address-pairs mode (the original's `nested`): the container's
//! interface is a macvlan child of the VM's interface, and its addresses (with its MAC) are added
//! to the VM port's `allowed_address_pairs`, so that port security lets them through. The
//! container's own port only holds the addresses and is never bound.

use std::sync::Arc;

use kuryr_binding::{BindMode, HostBinding, MacAddr};
use tokio::sync::Mutex as AsyncMutex;

use super::vm_port::VmPort;
use super::PortDriver;
use crate::error::{DriverError, Result};
use crate::neutron::{AddressPair, Nt, Port};
use crate::undo::Undo;

pub struct NestedMacvlanDriver {
    vm: Arc<VmPort>,
    /// The pairs are a read-modify-write of one list on the VM port.
    pairs_lock: Arc<AsyncMutex<()>>,
    /// MACs chosen lately, maybe not in a pair yet.
    chosen: std::sync::Mutex<Vec<MacAddr>>,
}

impl NestedMacvlanDriver {
    pub fn new(nt: Nt, binding: Arc<dyn HostBinding>, link_iface: String) -> Self {
        NestedMacvlanDriver {
            vm: Arc::new(VmPort::new(nt, binding, link_iface)),
            pairs_lock: Arc::new(AsyncMutex::new(())),
            chosen: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn mode(&self) -> BindMode {
        BindMode::NestedMacvlan {
            parent_ifname: self.vm.link_iface.clone(),
        }
    }
}

#[async_trait::async_trait]
impl PortDriver for NestedMacvlanDriver {
    fn name(&self) -> &'static str {
        "nested"
    }

    fn binds_to_host(&self) -> bool {
        false
    }

    fn mac_on_port(&self) -> bool {
        false
    }

    /// Without a MAC from Docker (it no longer generates one for the IPAM), a free one of
    /// VRRP's ranges: the only foreign MACs ML2/OVN lets into the VM port's address pairs, and
    /// never the container port's own (OVN would see it twice).
    async fn choose_mac(&self, _port: &Port, requested: Option<MacAddr>) -> Result<MacAddr> {
        if let Some(m) = requested {
            return Ok(m);
        }
        let _g = self.pairs_lock.lock().await;
        let vm = self.vm.get().await?;
        let used: Vec<MacAddr> = vm
            .allowed_address_pairs
            .iter()
            .filter_map(|p| p.mac_address)
            .collect();
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        let free = vrrp_macs().find(|m| !used.contains(m) && !chosen.contains(m));
        let m = free.ok_or_else(|| {
            DriverError::Conflict(format!(
                "vm port {} has no free mac of the vrrp ranges left (510 containers at most)",
                vm.id
            ))
        })?;
        // Held until the pair carries it (a concurrent start must not pick it too).
        chosen.push(m);
        if chosen.len() > 64 {
            chosen.remove(0);
        }
        Ok(m)
    }

    async fn required_network(&self) -> Result<Option<Port>> {
        self.vm.get().await.map(Some)
    }

    async fn attach(&self, port: &Port, iface_mac: MacAddr, undo: &mut Undo) -> Result<BindMode> {
        let _g = self.pairs_lock.lock().await;
        let vm = self.vm.get().await?;
        let mut pairs = vm.allowed_address_pairs.clone();
        let mut added = Vec::new();
        for f in &port.fixed_ips {
            if !pairs
                .iter()
                .any(|p| p.ip_address == f.ip_address.to_string())
            {
                let pair = AddressPair {
                    ip_address: f.ip_address.to_string(),
                    mac_address: Some(iface_mac),
                };
                pairs.push(pair.clone());
                added.push(pair);
            }
        }
        if !added.is_empty() {
            self.vm
                .nt()
                .set_address_pairs(&vm.id, pairs)
                .await
                .map_err(|e| address_pair_refused(e, &vm.id))?;
            let (vm_port, lock) = (self.vm.clone(), self.pairs_lock.clone());
            undo.push(
                format!("remove address pairs from vm port {}", vm.id),
                move || async move {
                    let _g = lock.lock().await;
                    remove_pairs(&vm_port, &added).await
                },
            );
        }
        Ok(self.mode())
    }

    async fn detach(&self, port: &Port, errors: &mut Vec<DriverError>) -> BindMode {
        let _g = self.pairs_lock.lock().await;
        let pairs: Vec<AddressPair> = port
            .fixed_ips
            .iter()
            .map(|f| AddressPair {
                ip_address: f.ip_address.to_string(),
                mac_address: None,
            })
            .collect();
        if let Err(e) = remove_pairs(&self.vm, &pairs).await {
            errors.push(e);
        }
        self.mode()
    }
}

/// VRRP's virtual router MACs, IPv4's range then IPv6's (`00:00:5e:00:01:01` ...).
fn vrrp_macs() -> impl Iterator<Item = MacAddr> {
    [0x01u8, 0x02]
        .into_iter()
        .flat_map(|family| (1..=255u8).map(move |id| MacAddr::new([0, 0, 0x5e, 0, family, id])))
}

/// Removes address pairs (by address) from the VM port: read-modify-write.
async fn remove_pairs(vm: &VmPort, remove: &[AddressPair]) -> Result<()> {
    let vm_port = vm.get().await?;
    let kept: Vec<_> = vm_port
        .allowed_address_pairs
        .iter()
        .filter(|p| !remove.iter().any(|r| r.ip_address == p.ip_address))
        .cloned()
        .collect();
    if kept.len() == vm_port.allowed_address_pairs.len() {
        return Ok(());
    }
    vm.nt()
        .set_address_pairs(&vm_port.id, kept)
        .await
        .map(|_| ())
}

/// Recent Neutron ML2/OVN (29 here) accepts an address pair whose MAC is not the port's own only
/// from the VRRP ranges, so this mode's pair (container IP, container MAC) is refused there: say
/// so, and what works instead, rather than pass on a message about VRRP. Neutron gives no error
/// type for this case: its message is the only signal.
fn address_pair_refused(e: DriverError, vm_port: &str) -> DriverError {
    let refused = e.neutron_source().is_some_and(|n| {
        n.is_bad_request() && n.context().is_some_and(|c| c.message.contains("VRRP"))
    });
    if !refused {
        return e;
    }
    DriverError::InvalidRequest(format!(
        "{e}. This Neutron backend (ML2/OVN) does not let vm port {vm_port} carry a container's \
         own MAC in its allowed address pairs, which the macvlan mode needs: use \
         default_port_driver = vlan (trunk subports) on ML2/OVN, or give the container a MAC in \
         00:00:5e:00:01:xx (docker run --mac-address)"
    ))
}
