//! CNI CHECK: the attachment's port still exists and is ACTIVE, and the sandbox interface still
//! carries what ADD set (the port's MAC and addresses, the default route).

use kuryr_types::PortStatus;

use super::{sandbox_of, CniCheck};
use crate::docker::KuryrDriver;
use crate::error::{DriverError, Result};

impl KuryrDriver {
    pub async fn cni_check(&self, req: &CniCheck) -> Result<()> {
        let a = &req.attachment;
        let endpoint = a.endpoint_id();
        let port = self.ports.endpoint_port(&endpoint).await?.ok_or_else(|| {
            DriverError::NotFound(format!(
                "no neutron port for container {} interface {}",
                a.container_id, a.ifname
            ))
        })?;
        let binds_here = self.ports.port_driver.binds_to_host();
        if binds_here && port.status != PortStatus::Active {
            return Err(DriverError::Conflict(format!(
                "neutron port {} is {:?}, not ACTIVE",
                port.id, port.status
            )));
        }
        let sandbox = sandbox_of(a, req.netns.clone());
        let state = self
            .ports
            .binding
            .inspect_sandbox(&sandbox)
            .await
            .map_err(|e| DriverError::binding(format!("inspect {}", req.netns.display()), e))?
            .ok_or_else(|| {
                DriverError::NotFound(format!(
                    "interface {} is missing in {}",
                    a.ifname,
                    req.netns.display()
                ))
            })?;
        let mut wrong = Vec::new();
        let ours = state
            .alias
            .as_deref()
            .and_then(kuryr_binding::naming::parse_link_alias)
            .is_some_and(|(ep, p)| ep == endpoint.as_str() && p == port.id);
        if !ours {
            wrong.push(format!("it is not port {}'s interface", port.id));
        }
        if binds_here && state.mac != Some(port.mac_address) {
            wrong.push(format!(
                "its MAC is {}, the port's is {}",
                state.mac.map_or("none".into(), |m| m.to_string()),
                port.mac_address
            ));
        }
        for f in &port.fixed_ips {
            if !state.addresses.iter().any(|n| n.addr() == f.ip_address) {
                wrong.push(format!("address {} is missing", f.ip_address));
            }
        }
        if !state.up {
            wrong.push("it is down".into());
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(DriverError::Conflict(format!(
                "interface {} in {}: {}",
                a.ifname,
                req.netns.display(),
                wrong.join("; ")
            )))
        }
    }
}
