//! Program/RevokeExternalConnectivity: a container's exposed ports become a security group
//! `<port id>-exposed_ports` on its port, with ingress rules for IPv4 and IPv6.

use std::collections::BTreeMap;

use kuryr_plugin_api::network::ExposedPort;
use kuryr_plugin_api::DockerId;

use super::KuryrDriver;
use crate::constants::*;
use crate::error::{teardown_result, with_rollback, DriverError, Result};
use crate::neutron::NewSgRule;
use crate::undo::Undo;

/// The rules for a set of exposed ports: per protocol, contiguous ports merged into ranges, each
/// for IPv4 and IPv6.
pub fn exposed_rules(ports: &[ExposedPort]) -> Result<Vec<NewSgRule>> {
    let mut by_proto: BTreeMap<&'static str, Vec<u16>> = BTreeMap::new();
    for p in ports {
        let proto = match p.proto {
            1 => "icmp",
            6 => "tcp",
            17 => "udp",
            132 => "sctp",
            other => {
                return Err(DriverError::InvalidRequest(format!(
                    "exposed port {}: ip protocol {other} is not supported",
                    p.port
                )))
            }
        };
        by_proto.entry(proto).or_default().push(p.port);
    }
    let mut rules = Vec::new();
    for (proto, mut list) in by_proto {
        list.sort_unstable();
        list.dedup();
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for port in list {
            match ranges.last_mut() {
                Some((_, hi)) if hi.checked_add(1) == Some(port) => *hi = port,
                _ => ranges.push((port, port)),
            }
        }
        for ethertype in ["IPv4", "IPv6"] {
            if proto == "icmp" {
                // An ICMP "port" has no meaning: allow ICMP of the family.
                rules.push(NewSgRule {
                    ethertype,
                    protocol: if ethertype == "IPv6" {
                        "ipv6-icmp"
                    } else {
                        "icmp"
                    },
                    port_range: None,
                });
                continue;
            }
            for r in &ranges {
                rules.push(NewSgRule {
                    ethertype,
                    protocol: proto,
                    port_range: Some(*r),
                });
            }
        }
    }
    Ok(rules)
}

impl KuryrDriver {
    pub async fn program_external_connectivity(
        &self,
        endpoint_id: &DockerId,
        exposed: &[ExposedPort],
    ) -> Result<()> {
        if !self.cfg.process_external_connectivity || exposed.is_empty() {
            return Ok(());
        }
        let rules = exposed_rules(exposed)?;
        let _guard = self.locks.lock(&format!("ep:{endpoint_id}")).await;
        let port = self
            .ports
            .endpoint_port(endpoint_id)
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("no neutron port for endpoint {endpoint_id}"))
            })?;
        if port.port_security == Some(false) {
            // No filtering at all on this port (`neutron.port.port_security=false`): every
            // port is open already, and Neutron refuses groups on it.
            tracing::debug!(port = %port.id, "no port security: nothing to expose");
            return Ok(());
        }
        let name = sg_expose_name(&port.id);
        if !self
            .nt
            .security_groups_by_name(&name, None)
            .await?
            .is_empty()
        {
            // A replay: already programmed.
            return Ok(());
        }
        let mut undo = Undo::new();
        let result: Result<()> = async {
            let sg = self
                .nt
                .create_security_group(&name, SG_EXPOSE_DESCRIPTION)
                .await?;
            let (nt, id) = (self.nt.clone(), sg.clone());
            undo.push(format!("delete security group {id}"), move || async move {
                nt.delete_security_group(&id).await
            });
            for r in &rules {
                self.nt.create_security_group_rule(&sg, r).await?;
            }
            // A pooled port with changed groups must be reset before another container has it.
            if let Some(pools) = self.ports.pooled(&port) {
                pools.mark_exposed(&port.id);
            }
            let current = self.nt.port(&port.id).await?.unwrap_or(port.clone());
            let mut groups = vec![sg];
            groups.extend(current.security_groups.iter().cloned());
            self.nt.set_security_groups(&port.id, groups).await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                undo.commit();
                if let Some(e) = self.ports.memory().endpoints.get_mut(endpoint_id) {
                    e.exposed = true;
                }
                Ok(())
            }
            Err(e) => Err(with_rollback(e, undo.unwind().await)),
        }
    }

    pub async fn revoke_external_connectivity(&self, endpoint_id: &DockerId) -> Result<()> {
        if !self.cfg.process_external_connectivity {
            return Ok(());
        }
        let _guard = self.locks.lock(&format!("ep:{endpoint_id}")).await;
        if self
            .ports
            .memory()
            .endpoints
            .get(endpoint_id)
            .is_some_and(|e| !e.exposed)
        {
            // This daemon made the endpoint and exposed nothing: no group to look for.
            return Ok(());
        }
        let Some(port) = self.ports.endpoint_port(endpoint_id).await? else {
            return Ok(());
        };
        let groups = self
            .nt
            .security_groups_by_name(&sg_expose_name(&port.id), None)
            .await?;
        if groups.is_empty() {
            return Ok(());
        }
        let mut errors = Vec::new();
        if let Some(current) = self.nt.port(&port.id).await? {
            let kept: Vec<String> = current
                .security_groups
                .iter()
                .filter(|g| !groups.contains(g))
                .cloned()
                .collect();
            if kept.len() != current.security_groups.len() {
                if let Err(e) = self.nt.set_security_groups(&port.id, kept).await {
                    errors.push(e);
                }
            }
        }
        for g in groups {
            if let Err(e) = self.nt.delete_security_group(&g).await {
                errors.push(e);
            }
        }
        teardown_result(
            format!("revoke exposed ports of endpoint {endpoint_id}"),
            errors,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(proto: u8, port: u16) -> ExposedPort {
        ExposedPort { proto, port }
    }

    #[test]
    fn contiguous_ports_merge_per_protocol_and_family() {
        let rules = exposed_rules(&[p(6, 81), p(6, 80), p(6, 82), p(6, 90), p(17, 53)]).unwrap();
        let tcp4: Vec<_> = rules
            .iter()
            .filter(|r| r.protocol == "tcp" && r.ethertype == "IPv4")
            .map(|r| r.port_range)
            .collect();
        assert_eq!(tcp4, vec![Some((80, 82)), Some((90, 90))]);
        assert!(rules.iter().any(|r| r.protocol == "udp"
            && r.ethertype == "IPv6"
            && r.port_range == Some((53, 53))));
        assert_eq!(rules.len(), 6);
    }

    #[test]
    fn unknown_protocol_is_refused() {
        let e = exposed_rules(&[p(47, 1)]).unwrap_err();
        assert!(e.to_string().contains("protocol 47"));
        let icmp = exposed_rules(&[p(1, 0)]).unwrap();
        assert_eq!(icmp.len(), 2);
        assert!(icmp.iter().all(|r| r.port_range.is_none()));
    }
}
