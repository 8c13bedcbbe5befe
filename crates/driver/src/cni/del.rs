//! CNI DEL: the interface comes back from the sandbox (as Docker hands it back at Leave), the
//! port is unplugged and released (deleted, or back to its pool). Best effort and idempotent:
//! a namespace, interface or port already gone is done.

use kuryr_binding::naming::container_ifname;

use super::{sandbox_of, CniDel};
use crate::docker::KuryrDriver;
use crate::error::{teardown_result, DriverError, Result};

impl KuryrDriver {
    pub async fn cni_del(&self, req: &CniDel) -> Result<()> {
        let a = &req.attachment;
        let endpoint = a.endpoint_id();
        let port = self.ports.endpoint_port(&endpoint).await?;
        let mut errors = Vec::new();
        if let Some(netns) = &req.netns {
            let host_ifname = port.as_ref().map(|p| container_ifname(&p.id));
            if let Err(e) = self
                .ports
                .binding
                .leave_sandbox(&sandbox_of(a, netns.clone()), host_ifname.as_deref())
                .await
            {
                errors.push(DriverError::binding(
                    format!("take {} out of {}", a.ifname, netns.display()),
                    e,
                ));
            }
        }
        if let Err(e) = self.ports.detach(&endpoint).await {
            errors.push(e);
        }
        if let Some(p) = &port {
            for f in &p.fixed_ips {
                if let Err(e) = self.ports.release(&f.subnet_id, f.ip_address).await {
                    errors.push(e);
                }
            }
            tracing::info!(container = %a.container_id, ifname = %a.ifname, port = %p.id, "cni attachment deleted");
        }
        teardown_result(
            format!("delete attachment {} {}", a.container_id, a.ifname),
            errors,
        )
    }
}
