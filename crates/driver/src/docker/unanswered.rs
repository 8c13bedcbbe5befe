//! Set-up calls whose answer Docker may never have had, kept on disk (`[DEFAULT] state_path`)
//! so that a restarted daemon can undo them.
//!
//! Killed after CreateNetwork or RequestPool did their work and before Docker had the answer,
//! the daemon leaves a Neutron network (or subnetpool) Docker never heard of. Docker retries the
//! call with an empty body (its plugin client reuses the request buffer it already drained), the
//! retry fails, and Docker forgets the network. Nothing else would ever remove what was made:
//! - a **CreateNetwork** is recorded when it starts and forgotten once Docker is given its
//!   success, or when it fails (it unwound itself), or at DeleteNetwork. Docker rolls back a
//!   failed create with ReleasePool of its pools, and never sends ReleasePool for a network it
//!   has without DeleteNetwork right after it. So a ReleasePool of a recorded network's pool
//!   means Docker rolled it back: the network is deleted.
//! - a **RequestPool** that made a subnetpool is recorded until Docker is given the pool. Docker
//!   then never names that pool again; a pool still recorded when the daemon starts is deleted
//!   once [`POOL_GRACE`] has passed with no subnet made from it and no network asking for it
//!   (had the answer got through just before the kill, Docker's next calls would have used it
//!   within seconds).
//!
//! One file per call: `create-network-<docker id>` (the network's pool CIDRs, one per line)
//! and `request-pool-<pool id>` (empty). Writing is best effort: a daemon that cannot write its
//! state directory says so and works as before. Without a state directory nothing is recorded:
//! within one process a late answer is already undone (see `abandoned.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use kuryr_plugin_api::ipam::RequestPoolResponse;
use kuryr_plugin_api::network::{CreateNetworkRequest, NetworkRequest};
use kuryr_plugin_api::DockerId;
use kuryr_types::PoolRef;

use super::{pool_ref, KuryrDriver};
use crate::error::Result;
use crate::neutron::SubnetQuery;

/// How long a restarted daemon leaves a recorded subnetpool to a Docker that might have had it.
pub const POOL_GRACE: Duration = Duration::from_secs(30);

const NETWORK_PREFIX: &str = "create-network-";
const POOL_PREFIX: &str = "request-pool-";
const DIR: &str = "unanswered";

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// A Docker network id and the CIDRs of its pools.
    CreateNetwork {
        network_id: DockerId,
        cidrs: Vec<IpNet>,
    },
    /// A subnetpool id.
    RequestPool { pool_id: String },
}

/// The record of a CreateNetwork (its file's name), known by the Docker network alone.
fn network_key(network_id: &DockerId) -> String {
    format!("{NETWORK_PREFIX}{network_id}")
}

/// The record of a subnetpool RequestPool made.
fn pool_key(pool_id: &str) -> String {
    format!("{POOL_PREFIX}{pool_id}")
}

impl Unanswered {
    fn file_name(&self) -> String {
        match self {
            Unanswered::CreateNetwork { network_id, .. } => network_key(network_id),
            Unanswered::RequestPool { pool_id } => pool_key(pool_id),
        }
    }

    fn contents(&self) -> String {
        match self {
            Unanswered::CreateNetwork { cidrs, .. } => {
                cidrs.iter().map(|c| format!("{c}\n")).collect()
            }
            Unanswered::RequestPool { .. } => String::new(),
        }
    }

    /// Read back from a file; `None` for anything this daemon did not write.
    fn parse(name: &str, contents: &str) -> Option<Self> {
        let plain = |id: &str| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if let Some(id) = name.strip_prefix(NETWORK_PREFIX) {
            let cidrs: Option<Vec<IpNet>> =
                contents.lines().map(|l| l.trim().parse().ok()).collect();
            return Some(Unanswered::CreateNetwork {
                network_id: id.parse().ok()?,
                cidrs: cidrs?,
            });
        }
        let id = name.strip_prefix(POOL_PREFIX)?;
        plain(id).then(|| Unanswered::RequestPool {
            pool_id: id.to_string(),
        })
    }
}

/// The recorded calls, in memory and (when a state directory is configured) on disk.
#[derive(Default)]
pub(crate) struct UnansweredCalls {
    dir: Option<PathBuf>,
    calls: Mutex<BTreeMap<String, Unanswered>>,
}

impl UnansweredCalls {
    /// Reads what an earlier daemon left in `state_path` (`None`: nothing is kept).
    pub(crate) fn open(state_path: Option<&Path>) -> Self {
        let Some(dir) = state_path.map(|p| p.join(DIR)) else {
            return Self::default();
        };
        let mut calls = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let contents = std::fs::read_to_string(e.path()).unwrap_or_default();
                match Unanswered::parse(&name, &contents) {
                    Some(call) => {
                        tracing::warn!(
                            call = %name,
                            "a set-up call of an earlier daemon may never have been answered"
                        );
                        calls.insert(name, call);
                    }
                    None => tracing::debug!(file = %name, "not a record of this daemon: ignored"),
                }
            }
        }
        UnansweredCalls {
            dir: Some(dir),
            calls: Mutex::new(calls),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Unanswered>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call before its answer goes out.
    pub(crate) fn note(&self, call: Unanswered) {
        let name = call.file_name();
        if let Some(dir) = &self.dir {
            // Written whole then renamed: a kill half-way leaves no half record.
            let tmp = dir.join(format!(".{name}.tmp"));
            let written = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&tmp, call.contents()))
                .and_then(|()| std::fs::rename(&tmp, dir.join(&name)));
            if let Err(e) = written {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot record {name}: a kill before docker has the answer would leave it in neutron");
            }
            self.lock().insert(name, call);
        }
    }

    /// Forgets a call by its key (answered, failed, or undone).
    pub(crate) fn forget(&self, name: &str) {
        if self.lock().remove(name).is_none() {
            return;
        }
        if let Some(dir) = &self.dir {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "cannot remove the record {name}"),
            }
        }
    }

    /// The recorded CreateNetwork calls with a pool of `cidr`.
    pub(crate) fn networks_with_pool(&self, cidr: &IpNet) -> Vec<Unanswered> {
        self.lock()
            .values()
            .filter(
                |c| matches!(c, Unanswered::CreateNetwork { cidrs, .. } if cidrs.contains(cidr)),
            )
            .cloned()
            .collect()
    }

    pub(crate) fn has_networks(&self) -> bool {
        self.lock()
            .values()
            .any(|c| matches!(c, Unanswered::CreateNetwork { .. }))
    }

    /// The recorded subnetpools.
    pub(crate) fn pools(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter_map(|c| match c {
                Unanswered::RequestPool { pool_id } => Some(pool_id.clone()),
                Unanswered::CreateNetwork { .. } => None,
            })
            .collect()
    }

    #[cfg(test)]
    fn is_recorded(&self, call: &Unanswered) -> bool {
        self.lock().contains_key(&call.file_name())
    }
}

impl KuryrDriver {
    /// Records a CreateNetwork about to touch Neutron. Only with a local scope: a global
    /// network's Neutron network is shared by every host's Docker, and one host's rollback must
    /// not delete it.
    pub(crate) fn note_create_network(&self, req: &CreateNetworkRequest) {
        if self.cfg.capability_scope == "local" {
            let cidrs = req.ipv4_data.iter().chain(&req.ipv6_data);
            self.unanswered.note(Unanswered::CreateNetwork {
                network_id: req.network_id.clone(),
                cidrs: cidrs.map(|d| d.pool.trunc()).collect(),
            });
        }
    }

    /// CreateNetwork answered, failed (and unwound itself), undone, or its network deleted.
    pub(crate) fn forget_create_network(&self, network_id: &DockerId) {
        self.unanswered.forget(&network_key(network_id));
    }

    /// Docker is given CreateNetwork's success.
    pub fn create_network_answered(&self, req: &CreateNetworkRequest) {
        self.forget_create_network(&req.network_id);
    }

    /// Records a subnetpool RequestPool made, until Docker is given it.
    pub(crate) fn note_request_pool(&self, pool_id: &str) {
        self.unanswered.note(Unanswered::RequestPool {
            pool_id: pool_id.to_string(),
        });
    }

    /// Docker is given RequestPool's reply.
    pub fn request_pool_answered(&self, reply: &RequestPoolResponse) {
        if let Ok(PoolRef::Whole(id)) = pool_ref(&reply.pool_id) {
            self.unanswered.forget(&pool_key(&id));
        }
    }

    /// A RequestPool whose reply Docker never had: its pool goes once no network uses it.
    pub(crate) async fn undo_unanswered_pool(&self, pool_id: &str) -> Result<()> {
        // Neutron refuses to delete a pool with subnets with a mere 400: ask first.
        let subnets = self.nt.subnets(&SubnetQuery::from_pool(pool_id)).await?;
        if subnets.is_empty() {
            self.delete_unused_pool_again(pool_id).await?;
        }
        self.unanswered.forget(&pool_key(pool_id));
        Ok(())
    }

    /// ReleasePool of `pool` while a recorded CreateNetwork has a pool of that CIDR: Docker is
    /// rolling the network back (it releases a network's pools before DeleteNetwork only when
    /// it removes a network it has, and then DeleteNetwork follows; a create it took as failed
    /// gets no DeleteNetwork). The network goes as DeleteNetwork would remove it.
    pub(crate) async fn undo_unanswered_networks_of(&self, pool: &PoolRef) -> Result<()> {
        if !self.unanswered.has_networks() {
            return Ok(());
        }
        let cidrs = match pool {
            PoolRef::Carved { cidr, .. } => vec![cidr.trunc()],
            PoolRef::Whole(id) => match self.known_pool(id).await? {
                Some(p) => p.prefixes.iter().map(IpNet::trunc).collect(),
                None => Vec::new(),
            },
        };
        for cidr in cidrs {
            for call in self.unanswered.networks_with_pool(&cidr) {
                let Unanswered::CreateNetwork { network_id, .. } = &call else {
                    continue;
                };
                tracing::warn!(docker = %network_id, %cidr, "docker releases the pool of a network whose CreateNetwork answer it never had: deleting the network");
                let req = NetworkRequest {
                    network_id: network_id.clone(),
                };
                self.delete_network_now(&req).await?;
                self.unanswered.forget(&call.file_name());
            }
        }
        Ok(())
    }

    /// Subnetpools an earlier daemon made in RequestPool without Docker having the reply are
    /// deleted after `grace` ([`POOL_GRACE`]) when still unused (a background task, run once).
    pub fn spawn_unanswered_pool_checks(
        self: &Arc<Self>,
        grace: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let pools = self.unanswered.pools();
        if pools.is_empty() {
            return None;
        }
        let held = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let Some(d) = held.upgrade() else { return };
            for id in pools {
                match d.undo_unanswered_pool(&id).await {
                    Ok(()) => {
                        tracing::info!(pool = %id, "subnetpool of an unanswered RequestPool: deleted unless used")
                    }
                    Err(e) => {
                        tracing::warn!(pool = %id, error = %e, "subnetpool of an unanswered RequestPool: not deleted")
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kuryr-unanswered-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_outlive_the_daemon_until_forgotten() {
        let dir = temp_dir("outlive");
        let net = Unanswered::CreateNetwork {
            network_id: "ab".repeat(32).parse().unwrap(),
            cidrs: vec!["10.1.0.0/24".parse().unwrap(), "fd00::/64".parse().unwrap()],
        };
        let pool = Unanswered::RequestPool {
            pool_id: "0e1f2a3b-0000-4000-8000-000000000001".into(),
        };
        let first = UnansweredCalls::open(Some(&dir));
        first.note(net.clone());
        first.note(pool.clone());
        let second = UnansweredCalls::open(Some(&dir));
        assert!(second.is_recorded(&net) && second.is_recorded(&pool));
        assert_eq!(
            second.networks_with_pool(&"fd00::/64".parse().unwrap()),
            vec![net.clone()]
        );
        assert!(second
            .networks_with_pool(&"10.2.0.0/24".parse().unwrap())
            .is_empty());
        assert_eq!(
            second.pools(),
            vec!["0e1f2a3b-0000-4000-8000-000000000001".to_string()]
        );
        second.forget(&net.file_name());
        second.forget(&pool.file_name());
        let third = UnansweredCalls::open(Some(&dir));
        assert!(!third.is_recorded(&net) && !third.is_recorded(&pool));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_it_did_not_write_are_ignored() {
        let dir = temp_dir("foreign");
        std::fs::create_dir_all(dir.join(DIR)).unwrap();
        std::fs::write(dir.join(DIR).join("create-network-../x"), "").ok();
        std::fs::write(dir.join(DIR).join("create-network-abc"), "not a cidr\n").unwrap();
        std::fs::write(dir.join(DIR).join("other"), "").unwrap();
        assert!(UnansweredCalls::open(Some(&dir)).lock().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_state_path_nothing_is_recorded() {
        let calls = UnansweredCalls::open(None);
        let pool = Unanswered::RequestPool {
            pool_id: "p1".into(),
        };
        calls.note(pool.clone());
        assert!(!calls.is_recorded(&pool));
    }
}
