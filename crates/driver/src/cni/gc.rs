//! CNI GC: this host's ports on a CNI network whose attachment the runtime no longer has (a pod
//! that vanished while the daemon was down, a DEL that never came) are released like a DEL
//! without a namespace. Every port is tried; errors are collected.

use std::collections::BTreeSet;

use super::{attachment_of, CniDel, CniGc};
use crate::constants::TAG_CNI_NETWORK;
use crate::core::is_kuryr_port;
use crate::docker::KuryrDriver;
use crate::error::{teardown_result, Result};
use crate::neutron::PortQuery;
use crate::tags::bounded_tag;

/// What GC removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// (container id, interface) of each attachment removed.
    pub removed: Vec<(String, String)>,
}

impl KuryrDriver {
    pub async fn cni_gc(&self, req: &CniGc) -> Result<GcReport> {
        let valid: BTreeSet<_> = req.valid.iter().cloned().collect();
        let ports = self
            .nt
            .ports(&PortQuery {
                tags: vec![bounded_tag(TAG_CNI_NETWORK, &req.network.name)],
                ..Default::default()
            })
            .await?;
        let mut report = GcReport::default();
        let mut errors = Vec::new();
        for p in ports {
            // Only this host's, only Kuryr's own, only what an attachment holds.
            if p.host_id != self.ports.host || !is_kuryr_port(&p) {
                continue;
            }
            // Back in its pool already, with its last attachment's tags until the tidy.
            if let Some(pools) = self.ports.pools() {
                if pools.is_unclaimed_member(&p) {
                    continue;
                }
            }
            let Some(a) = attachment_of(&p.tags) else {
                continue;
            };
            if valid.contains(&a) {
                continue;
            }
            let del = CniDel {
                attachment: a.clone(),
                netns: None,
                network: req.network.clone(),
            };
            match self.cni_del(&del).await {
                Ok(()) => report.removed.push((a.container_id, a.ifname)),
                Err(e) => errors.push(e),
            }
        }
        teardown_result(format!("gc of cni network {}", req.network.name), errors)?;
        Ok(report)
    }
}
