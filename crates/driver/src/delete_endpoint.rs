//! NetworkDriver.DeleteEndpoint: unplug, undo the nested-mode Neutron changes and remove the
//! endpoint tags. The port itself goes in ReleaseAddress. Idempotent, best effort: every step is
//! tried and all errors are reported.

use kuryr_binding::{BindMode, UnbindRequest};

use crate::config::PortMode;
use crate::constants::TAG_PORT_FOREIGN_IPAM;
use crate::create_endpoint::remove_pairs;
use crate::driver::{is_kuryr_port, validate_docker_id, KuryrDriver};
use crate::error::{join_errors, DriverError, Result};
use crate::neutron::{AddressPair, Kind, Port, PortQuery};
use crate::tags;

impl KuryrDriver {
    pub async fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        validate_docker_id("network id", network_id)?;
        validate_docker_id("endpoint id", endpoint_id)?;
        let _guard = self.locks.lock(&format!("ep:{endpoint_id}")).await;
        let ep_tags = tags::docker_id_tags(endpoint_id);
        // CreateEndpoint's own record when this daemon made the endpoint; Neutron otherwise
        // (after a restart).
        let remembered = self
            .cache()
            .endpoints
            .get(endpoint_id)
            .map(|e| e.port.clone());
        let ports = match remembered {
            Some(p) => vec![p],
            None => {
                self.nt
                    .ports(&PortQuery {
                        tags: ep_tags.clone(),
                        ..Default::default()
                    })
                    .await?
            }
        };
        let mut errors = Vec::new();
        if ports.is_empty() {
            // The port is gone (deleted behind our back): still remove what is on the host.
            self.remove_host_leftovers(endpoint_id, &mut errors).await;
        }
        for p in &ports {
            let mode = self.unplug_mode(p, &mut errors).await;
            let req = UnbindRequest {
                port_id: p.id.clone(),
                endpoint_id: endpoint_id.parse().map_err(|e: kuryr_types::ParseError| {
                    DriverError::InvalidRequest(e.to_string())
                })?,
                network_id: p.network_id.clone(),
                mac: p.mac_address.parse().ok(),
                vif_type: p.vif_type.as_str().into(),
                vif_details: p.vif_details.clone(),
                mode,
            };
            let kept: Vec<String> = p
                .tags
                .iter()
                .filter(|t| !ep_tags.contains(t))
                .cloned()
                .collect();
            // Host and Neutron sides are independent: one wait instead of two. A port whose
            // address came from another IPAM driver goes now: nobody else will release it.
            let foreign_ipam = tags::has(&p.tags, TAG_PORT_FOREIGN_IPAM);
            // Kuryr's own port is deleted by the ReleaseAddress that follows: untagging it
            // first would only add a request to every container's removal.
            let released_next = !foreign_ipam && is_kuryr_port(p);
            let (unbound, untagged) = tokio::join!(self.binding.unbind(&req), async {
                if foreign_ipam {
                    self.nt.delete_port(&p.id).await
                } else if released_next {
                    Ok(())
                } else {
                    self.nt.set_tags(Kind::Port, &p.id, &kept).await
                }
            });
            if let Err(e) = unbound {
                errors.push(format!("unplug port {}: {e}", p.id));
            }
            match untagged {
                Err(e) if !e.is_not_found() => errors.push(e.to_string()),
                _ => {}
            }
            let mut c = self.cache();
            for f in p.fixed_ips.iter().filter(|_| !foreign_ipam) {
                c.released_ports.insert(
                    (f.subnet_id.clone(), f.ip_address),
                    Port {
                        tags: if released_next {
                            p.tags.clone()
                        } else {
                            kept.clone()
                        },
                        ..p.clone()
                    },
                );
            }
        }
        self.cache().endpoints.remove(endpoint_id);
        join_errors(&format!("delete endpoint {endpoint_id}"), errors)
    }

    /// Undoes the nested modes' Neutron side and says how the interface was made.
    async fn unplug_mode(&self, p: &Port, errors: &mut Vec<String>) -> BindMode {
        match &self.cfg.port_mode {
            PortMode::Veth => BindMode::Veth,
            PortMode::Nested { link_iface } => {
                let _g = self.locks.lock("vm-port").await;
                let pairs: Vec<AddressPair> = p
                    .fixed_ips
                    .iter()
                    .map(|f| AddressPair {
                        ip_address: f.ip_address.to_string(),
                        mac_address: None,
                    })
                    .collect();
                match self.vm_port().await {
                    Ok(vm) => {
                        if let Err(e) = remove_pairs(&self.nt, &vm.id, &pairs).await {
                            errors.push(e.to_string());
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
                BindMode::NestedMacvlan {
                    parent_ifname: link_iface.clone(),
                }
            }
            PortMode::Vlan { link_iface } => {
                let mut vlan_id = 0;
                match self.vm_port().await {
                    Ok(vm) => {
                        if let Some((trunk_id, subports)) = vm.trunk {
                            let _g = self.locks.lock(&format!("trunk:{trunk_id}")).await;
                            if let Some(s) = subports.iter().find(|s| s.port_id == p.id) {
                                vlan_id = s.segmentation_id;
                                match self.nt.trunk_remove_subport(&trunk_id, &p.id).await {
                                    Err(e) if !e.is_not_found() => errors.push(e.to_string()),
                                    _ => {}
                                }
                            }
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
                BindMode::NestedVlan {
                    parent_ifname: link_iface.clone(),
                    vlan_id,
                }
            }
        }
    }

    async fn remove_host_leftovers(&self, endpoint_id: &str, errors: &mut Vec<String>) {
        match self.binding.list_owned().await {
            Ok(owned) => {
                for l in owned
                    .iter()
                    .filter(|l| l.endpoint_id.as_deref() == Some(endpoint_id))
                {
                    if let Err(e) = self.binding.remove_owned(l).await {
                        errors.push(format!("remove {}: {e}", l.name));
                    }
                }
            }
            Err(e) => errors.push(format!("list host interfaces: {e}")),
        }
    }
}
