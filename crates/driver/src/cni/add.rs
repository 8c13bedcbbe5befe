//! CNI ADD: a port on the configured network (from the pool when warm), bound here, its
//! container end moved into the runtime's namespace as `CNI_IFNAME` with the port's address,
//! the subnet's gateway and host routes. On failure nothing is left.

use ipnet::IpNet;
use kuryr_binding::naming::container_ifname;
use kuryr_binding::EnterSandbox;

use super::{attachment_tags, sandbox_of, CniAdd, CniAttached};
use crate::core::{AddressFor, AttachRequest};
use crate::docker::KuryrDriver;
use crate::error::{with_rollback, DriverError, Result};

impl KuryrDriver {
    pub async fn cni_add(&self, req: &CniAdd) -> Result<CniAttached> {
        let a = &req.attachment;
        let endpoint = a.endpoint_id();
        let sandbox = sandbox_of(a, req.netns.clone());
        // Checked before Neutron is asked for anything.
        let binding = &self.ports.binding;
        if binding
            .inspect_sandbox(&sandbox)
            .await
            .map_err(|e| DriverError::binding(format!("inspect {}", req.netns.display()), e))?
            .is_some()
        {
            return Err(DriverError::Conflict(format!(
                "interface {} already exists in {}",
                a.ifname,
                req.netns.display()
            )));
        }
        let mut net = self.cni_network(&req.network).await?;
        if req.network.mtu.is_some() {
            net.mtu = req.network.mtu;
        }
        let subnet = self.cni_subnet(&req.network, &net).await?;
        // Resolved before any port is taken: a wrong name fails without leaving anything.
        let groups = self.cni_security_groups(&req.network).await?;
        let (ip, _) = match &req.network.project {
            Some(project) => self.ports.reserve_in_project(&subnet, project).await?,
            None => {
                self.ports
                    .reserve(&subnet, None, AddressFor::Container { mac: None })
                    .await?
            }
        };
        let tags = attachment_tags(a, &req.network, &req.pod);
        let attached = self
            .ports
            .attach(&AttachRequest {
                endpoint: &endpoint,
                network: &net,
                ips: &[ip],
                mac: None,
                settings: None,
                tags: &tags,
                rename_pooled: false,
            })
            .await;
        let (port, mac) = match attached {
            Ok(x) => x,
            Err(e) => {
                let rollback = self.ports.release(&subnet.id, ip).await;
                return Err(rollback_err(e, rollback));
            }
        };

        if !groups.is_empty() {
            if let Err(e) = self.nt.set_security_groups(&port.id, groups).await {
                let detached = self.ports.detach(&endpoint).await;
                let released = self.ports.release(&subnet.id, ip).await;
                return Err(rollback_err(rollback_err(e, detached), released));
            }
            // A pooled port is reset to the pool's groups before anyone else may have it.
            if let Some(pools) = self.ports.pools() {
                pools.mark_exposed(&port.id);
            }
        }
        let address = IpNet::new(ip, subnet.cidr.prefix_len()).map_err(|_| {
            DriverError::Conflict(format!("address {ip} does not fit {}", subnet.cidr))
        })?;
        let mut routes: Vec<(IpNet, Option<std::net::IpAddr>)> = Vec::new();
        if let Some(g) = subnet.gateway_ip {
            let default = if g.is_ipv4() {
                IpNet::V4(Default::default())
            } else {
                IpNet::V6(Default::default())
            };
            routes.push((default, Some(g)));
        }
        routes.extend(subnet.host_routes.iter().map(|(d, via)| (*d, Some(*via))));
        let enter = EnterSandbox {
            sandbox,
            host_ifname: container_ifname(&port.id),
            addresses: vec![address],
            routes: routes
                .iter()
                .map(|(d, g)| kuryr_binding::SandboxRoute {
                    destination: *d,
                    gateway: *g,
                })
                .collect(),
        };
        if let Err(e) = binding.enter_sandbox(&enter).await {
            let err = DriverError::binding(
                format!(
                    "place port {} in {} as {}",
                    port.id,
                    req.netns.display(),
                    a.ifname
                ),
                e,
            );
            let detached = self.ports.detach(&endpoint).await;
            let released = self.ports.release(&subnet.id, ip).await;
            return Err(rollback_err(rollback_err(err, detached), released));
        }
        let host_ifname = kuryr_binding::naming::host_veth_name(&port.id);
        let host_interface = match binding.link_mac(&host_ifname).await {
            Ok(m) => Some((host_ifname, m)),
            // Nested modes: the interface is a child of the VM's; nothing on the host side.
            Err(_) => None,
        };
        tracing::info!(container = %a.container_id, ifname = %a.ifname, port = %port.id, %address, "cni attachment added");
        Ok(CniAttached {
            ifname: a.ifname.clone(),
            mac,
            mtu: net
                .mtu
                .unwrap_or(kuryr_binding::constants::DEFAULT_NETWORK_MTU),
            sandbox: req.netns.clone(),
            port_id: port.id.clone(),
            host_interface,
            ips: vec![(address, subnet.gateway_ip)],
            routes,
            dns_nameservers: subnet.dns_nameservers.clone(),
        })
    }
}

/// The set-up error, with its rollback's failure when that failed too.
fn rollback_err(e: DriverError, rollback: Result<()>) -> DriverError {
    match rollback {
        Ok(()) => e,
        Err(r) => with_rollback(
            e,
            vec![crate::error::UndoError {
                step: "rollback".into(),
                message: r.to_string(),
            }],
        ),
    }
}
