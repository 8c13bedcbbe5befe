//! The CNI front end: a container runtime's attachment (CNI `ADD`/`DEL`/`CHECK`/`GC`/`STATUS`)
//! on a Neutron network, one file per verb, on the same port lifecycle, pools and binding as
//! Docker's front end. These are internal types: the CNI wire format (versions, error codes)
//! is `kuryr-cni`'s.
//!
//! An attachment (container id, interface name) is an endpoint: its id is a hash of both, so
//! the core's endpoint tags, locks and memory serve it unchanged; the port also carries the
//! container id, interface and CNI network name as tags, which DEL after a restart and GC read.

mod add;
mod check;
mod del;
mod gc;
mod status;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use kuryr_binding::SandboxRef;
use kuryr_types::{DockerId, MacAddr};
use sha2::{Digest, Sha256};

use crate::constants::*;
use crate::docker::KuryrDriver;
use crate::error::{DriverError, Result};
use crate::neutron::{Net, Subnet};
use crate::tags::bounded_tag;

pub use gc::GcReport;

/// How long a CNI network's Neutron network, found by name or id, is trusted.
const NETWORK_FRESH_FOR: Duration = Duration::from_secs(30);

/// One container's interface on one CNI network: what the runtime knows it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

impl Attachment {
    /// The endpoint id the core knows this attachment by: 64 hex characters, like a Docker
    /// endpoint's, derived from both parts (one container may have several interfaces).
    pub fn endpoint_id(&self) -> DockerId {
        let mut h = Sha256::new();
        h.update(self.container_id.as_bytes());
        h.update([0]);
        h.update(self.ifname.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        hex.parse().expect("64 hex characters are a valid id")
    }
}

/// The Neutron side of a CNI network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniNetwork {
    /// The CNI network's `name` (tags the ports: GC is per network).
    pub name: String,
    /// The Neutron network: its id, or its name (which must be unique).
    pub neutron_network: String,
    /// A subnet of that network (id or CIDR); else its first IPv4 subnet, else its first.
    pub subnet: Option<String>,
    /// Overrides the network's MTU on the interface.
    pub mtu: Option<u32>,
    /// Security groups (ids or unique names) instead of the port's default ones.
    pub security_groups: Vec<String>,
    /// The project (id) the pods' ports are made in, instead of Kuryr's own; names of the
    /// network and the groups are looked up in it. Such ports are never pooled.
    pub project: Option<String>,
}

impl CniNetwork {
    /// The key under which the daemon remembers what a name (or id) of this configuration
    /// resolved to: one name means another resource in another project.
    fn memo(&self, name: &str) -> String {
        format!("{}\0{name}", self.project.as_deref().unwrap_or(""))
    }

    /// [`Self::memo`] of the configuration's network.
    pub(crate) fn network_memo(&self) -> String {
        self.memo(&self.neutron_network)
    }
}

/// The Kubernetes pod an attachment is for (`CNI_ARGS`), when the runtime says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CniAdd {
    pub attachment: Attachment,
    pub netns: PathBuf,
    pub network: CniNetwork,
    pub pod: PodRef,
}

#[derive(Debug, Clone)]
pub struct CniDel {
    pub attachment: Attachment,
    /// Empty when the runtime deleted the namespace already.
    pub netns: Option<PathBuf>,
    pub network: CniNetwork,
}

#[derive(Debug, Clone)]
pub struct CniCheck {
    pub attachment: Attachment,
    pub netns: PathBuf,
    pub network: CniNetwork,
}

#[derive(Debug, Clone)]
pub struct CniGc {
    pub network: CniNetwork,
    /// Every attachment the runtime still has on this network.
    pub valid: Vec<Attachment>,
}

/// What ADD set up: the CNI result, before its wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct CniAttached {
    pub ifname: String,
    pub mac: MacAddr,
    pub mtu: u32,
    pub sandbox: PathBuf,
    pub port_id: String,
    /// The veth's host end and its MAC (none in the nested modes).
    pub host_interface: Option<(String, MacAddr)>,
    /// Each address with its subnet's prefix length and gateway.
    pub ips: Vec<(IpNet, Option<IpAddr>)>,
    /// (destination, gateway)
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
    pub dns_nameservers: Vec<String>,
}

/// Neutron networks the CNI front end resolved, by the configuration's reference.
#[derive(Default)]
pub(crate) struct CniMemory {
    networks: std::collections::HashMap<String, (Instant, Net)>,
    /// Security group name -> id (names are resolved once per daemon).
    security_groups: std::collections::HashMap<String, String>,
}

/// The sandbox interface of an attachment.
fn sandbox_of(a: &Attachment, netns: PathBuf) -> SandboxRef {
    SandboxRef {
        netns,
        ifname: a.ifname.clone(),
        endpoint_id: a.endpoint_id(),
    }
}

/// The tags an attachment's port carries while the attachment holds it.
fn attachment_tags(a: &Attachment, network: &CniNetwork, pod: &PodRef) -> Vec<String> {
    let mut t = vec![
        bounded_tag(TAG_CNI_CONTAINER, &a.container_id),
        bounded_tag(TAG_CNI_IFNAME, &a.ifname),
        bounded_tag(TAG_CNI_NETWORK, &network.name),
    ];
    for (prefix, v) in [
        (TAG_K8S_NAMESPACE, &pod.namespace),
        (TAG_K8S_POD, &pod.name),
        (TAG_K8S_POD_UID, &pod.uid),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            t.push(bounded_tag(prefix, v));
        }
    }
    t
}

/// The attachment a port's tags name, if they do.
fn attachment_of(tags: &[String]) -> Option<Attachment> {
    let find = |prefix: &str| tags.iter().find_map(|t| t.strip_prefix(prefix));
    Some(Attachment {
        container_id: find(TAG_CNI_CONTAINER)?.to_string(),
        ifname: find(TAG_CNI_IFNAME)?.to_string(),
    })
}

impl KuryrDriver {
    pub(crate) fn cni_memory(&self) -> std::sync::MutexGuard<'_, CniMemory> {
        self.cni.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Neutron network a CNI configuration names (by id, else by a unique name; in the
    /// configuration's project, with the networks shared with it, when it names one).
    async fn cni_network(&self, n: &CniNetwork) -> Result<Net> {
        let key = &n.neutron_network;
        let memo = n.network_memo();
        if let Some((at, net)) = self.cni_memory().networks.get(&memo) {
            if at.elapsed() < NETWORK_FRESH_FOR {
                return Ok(net.clone());
            }
        }
        let visible = |net: &Net| {
            n.project
                .as_deref()
                .is_none_or(|p| net.shared || net.project_id == p)
        };
        let by_id = if crate::neutron::looks_like_uuid(key) {
            self.nt.network(key).await?
        } else {
            None
        };
        let net = match by_id {
            Some(net) if visible(&net) => net,
            Some(net) => {
                let want = n.project.as_deref().unwrap_or_default();
                let msg = format!(
                    "neutron network {key} (CNI network {}) is in project {}, not in {want}",
                    n.name, net.project_id
                );
                return Err(DriverError::NotFound(format!("{msg} and not shared")));
            }
            None => {
                // In the configured project (else Kuryr's own), with those shared with it.
                let mut found = self.nt.networks_by_name(key, n.project.as_deref()).await?;
                let within = n
                    .project
                    .as_deref()
                    .map(|p| format!(" in project {p}"))
                    .unwrap_or_default();
                match found.len() {
                    0 => {
                        return Err(DriverError::NotFound(format!(
                            "neutron network {key:?}{within} (CNI network {}) does not exist",
                            n.name
                        )))
                    }
                    1 => found.remove(0),
                    k => {
                        return Err(DriverError::Conflict(format!(
                            "{k} neutron networks{within} are named {key:?}: give the network's id"
                        )))
                    }
                }
            }
        };
        self.cni_memory()
            .networks
            .insert(memo, (Instant::now(), net.clone()));
        Ok(net)
    }

    /// The ids of the configuration's security groups (given by id or by a unique name).
    async fn cni_security_groups(&self, n: &CniNetwork) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n.security_groups.len());
        for g in &n.security_groups {
            if crate::neutron::looks_like_uuid(g) {
                ids.push(g.clone());
                continue;
            }
            let memo = n.memo(g);
            if let Some(id) = self.cni_memory().security_groups.get(&memo) {
                ids.push(id.clone());
                continue;
            }
            let id = match self.security_group_id(g, n.project.as_deref()).await {
                Err(DriverError::NotFound(m)) => {
                    return Err(DriverError::NotFound(format!(
                        "{m} (CNI network {})",
                        n.name
                    )))
                }
                other => other?,
            };
            self.cni_memory().security_groups.insert(memo, id.clone());
            ids.push(id);
        }
        Ok(ids)
    }

    /// The subnet the configuration asks for (id or CIDR), else the network's first IPv4 one,
    /// else its first.
    async fn cni_subnet(&self, n: &CniNetwork, net: &Net) -> Result<Subnet> {
        let subnets = self.network_subnets(&net.id).await?;
        let chosen = match &n.subnet {
            Some(want) => subnets
                .iter()
                .find(|s| s.id == *want || s.cidr.to_string() == *want),
            None => subnets
                .iter()
                .find(|s| s.cidr.addr().is_ipv4())
                .or(subnets.first()),
        };
        chosen.cloned().ok_or_else(|| match &n.subnet {
            Some(want) => DriverError::NotFound(format!(
                "subnet {want:?} is not a subnet of neutron network {}",
                net.id
            )),
            None => DriverError::NotFound(format!("neutron network {} has no subnet", net.id)),
        })
    }
}
