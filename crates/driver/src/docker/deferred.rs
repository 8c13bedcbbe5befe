//! Tear-downs that failed because Neutron could not be reached (refused, reset, timed out, 5xx).
//!
//! Docker forgets a container's endpoint and address, and a network and its pool, whatever the
//! driver answers to their removal: libnetwork logs the error and goes on, and never asks
//! again. Left alone, the port (or network, subnet, pool) would stay in Neutron for good. So the
//! daemon keeps such a tear-down and runs it again in the background, with back-off, until
//! Neutron answers.
//!
//! Each verb run again here is idempotent and keyed by Docker's ids, which are never reused,
//! except two: an address and a pool, which Docker may hand out again meanwhile. Their second
//! run leaves alone what this daemon has given to someone else since (see
//! [`KuryrDriver::release_address_again`] and [`KuryrDriver::release_pool_again`]).
//!
//! Kept on disk too (`<state_path>/deferred/`, one JSON file each) for a daemon restarted while
//! Neutron is still down, except the release of an address: run by a new daemon that does not
//! know which containers it has given the address to since, it could take a container's port.
//! Keyed by Docker's ids (never reused) or a pool's id, so the new daemon runs them as the
//! old one would have.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kuryr_plugin_api::ipam::{ReleaseAddressRequest, ReleasePoolRequest};
use kuryr_plugin_api::network::{DeleteEndpointRequest, DeleteNetworkRequest};
use kuryr_types::Backoff;
use tokio::sync::Notify;

use super::KuryrDriver;
use crate::error::{ErrorClass, Result};

/// At most this many tear-downs wait; beyond, the oldest is dropped (and logged).
const MAX_WAITING: usize = 10_000;
/// Back-off between rounds while some still fail.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// A tear-down to run again.
#[derive(Debug, Clone)]
pub(crate) enum Teardown {
    Endpoint(DeleteEndpointRequest),
    Address(ReleaseAddressRequest),
    Network(DeleteNetworkRequest),
    Pool(ReleasePoolRequest),
    /// A Kuryr subnetpool whose network is gone: the network's second run would not find it.
    UnusedKuryrPool(String),
}

impl std::fmt::Display for Teardown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Teardown::Endpoint(r) => write!(f, "delete endpoint {}", r.endpoint_id),
            Teardown::Address(r) => write!(f, "release address {} of {}", r.address, r.pool_id),
            Teardown::Network(r) => write!(f, "delete network {}", r.network_id),
            Teardown::Pool(r) => write!(f, "release pool {}", r.pool_id),
            Teardown::UnusedKuryrPool(id) => write!(f, "delete subnetpool {id}"),
        }
    }
}

impl Teardown {
    /// The file a tear-down is kept in, and its contents; `None`: kept in memory only.
    fn record(&self) -> Option<(String, String)> {
        let (kind, body) = match self {
            Teardown::Endpoint(r) => ("endpoint", serde_json::to_string(r)),
            Teardown::Network(r) => ("network", serde_json::to_string(r)),
            Teardown::Pool(r) => ("pool", serde_json::to_string(r)),
            Teardown::UnusedKuryrPool(id) => ("unused-pool", serde_json::to_string(id)),
            Teardown::Address(_) => return None,
        };
        let body = body.ok()?;
        // Named by what it is about (ids may hold `/`): the same tear-down twice is one file.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(body.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Some((format!("{kind}-{hex}.json"), body))
    }

    fn from_record(name: &str, body: &str) -> Option<Teardown> {
        let kind = name.rsplit_once('-')?.0;
        match kind {
            "endpoint" => serde_json::from_str(body).ok().map(Teardown::Endpoint),
            "network" => serde_json::from_str(body).ok().map(Teardown::Network),
            "pool" => serde_json::from_str(body).ok().map(Teardown::Pool),
            "unused-pool" => serde_json::from_str(body)
                .ok()
                .map(Teardown::UnusedKuryrPool),
            _ => None,
        }
    }
}

/// The tear-downs waiting for Neutron.
#[derive(Default)]
pub(crate) struct DeferredTeardowns {
    waiting: Mutex<VecDeque<Teardown>>,
    added: Notify,
    /// Where they are kept across restarts (`None`: memory only).
    dir: Option<PathBuf>,
}

impl DeferredTeardowns {
    /// The queue, with what an earlier daemon left in `state_path`.
    pub(crate) fn open(state_path: Option<&Path>) -> Self {
        let Some(dir) = state_path.map(|p| p.join("deferred")) else {
            return Self::default();
        };
        let mut waiting = VecDeque::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<_> = entries.flatten().collect();
            // Oldest first: a network's tear-down after its endpoints'.
            files.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
            for e in files {
                let name = e.file_name().to_string_lossy().into_owned();
                let body = std::fs::read_to_string(e.path()).unwrap_or_default();
                match name
                    .strip_suffix(".json")
                    .and_then(|n| Teardown::from_record(n, &body))
                {
                    Some(t) => {
                        tracing::warn!(
                            "{t}: left by an earlier daemon while Neutron failed; run again"
                        );
                        waiting.push_back(t);
                    }
                    None => tracing::debug!(file = %name, "not a tear-down record: ignored"),
                }
            }
        }
        DeferredTeardowns {
            waiting: Mutex::new(waiting),
            added: Notify::new(),
            dir: Some(dir),
        }
    }

    fn push(&self, t: Teardown) {
        self.keep_on_disk(&t);
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() >= MAX_WAITING {
            if let Some(old) = w.pop_front() {
                tracing::error!("too many tear-downs waiting for Neutron: gave up on {old}");
                self.done(&old);
            }
        }
        w.push_back(t);
        drop(w);
        self.added.notify_one();
    }

    fn keep_on_disk(&self, t: &Teardown) {
        let (Some(dir), Some((name, body))) = (&self.dir, t.record()) else {
            return;
        };
        let tmp = dir.join(format!(".{name}.tmp"));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, body))
            .and_then(|()| std::fs::rename(&tmp, dir.join(&name)));
        if let Err(e) = written {
            tracing::warn!(dir = %dir.display(), error = %e, "{t}: cannot keep it on disk; a restart would forget it");
        }
    }

    /// A tear-down done (or given up): its record goes.
    fn done(&self, t: &Teardown) {
        let (Some(dir), Some((name, _))) = (&self.dir, t.record()) else {
            return;
        };
        match std::fs::remove_file(dir.join(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "{t}: cannot remove its record"),
        }
    }

    fn take_all(&self) -> Vec<Teardown> {
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        w.drain(..).collect()
    }

    /// Puts back, ahead of anything added meanwhile, what must run again.
    fn put_back(&self, again: Vec<Teardown>) {
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for t in again.into_iter().rev() {
            w.push_front(t);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl KuryrDriver {
    /// Keeps a tear-down that failed for Neutron's sake, to run it again; the result is
    /// Docker's answer either way.
    pub(crate) fn defer_if_unavailable(
        &self,
        result: Result<()>,
        teardown: impl FnOnce() -> Teardown,
    ) -> Result<()> {
        if let Err(e) = &result {
            self.defer_part(e, teardown());
        }
        result
    }

    /// Keeps a tear-down that failed for Neutron's sake (also one no verb's second run would
    /// find again).
    pub(crate) fn defer_part(&self, error: &crate::error::DriverError, teardown: Teardown) {
        if error.class() == ErrorClass::Unavailable {
            tracing::warn!(error = %error, "{teardown}: Neutron failed; Docker forgets it, so kuryr runs it again in the background");
            self.deferred.push(teardown);
        }
    }

    /// Tear-downs waiting for Neutron (for metrics and tests).
    pub fn deferred_teardowns(&self) -> usize {
        self.deferred.len()
    }

    /// Runs every waiting tear-down once, in the order they came; keeps those Neutron failed
    /// again. Returns how many are still waiting from this round.
    pub async fn run_deferred_teardowns(&self) -> usize {
        let mut again = Vec::new();
        for t in self.deferred.take_all() {
            let result = match &t {
                Teardown::Endpoint(r) => self.delete_endpoint_now(r).await,
                Teardown::Address(r) => self.release_address_again(r).await,
                Teardown::Network(r) => self.delete_network_now(r).await,
                Teardown::Pool(r) => self.release_pool_again(r).await,
                Teardown::UnusedKuryrPool(id) => self.delete_unused_pool_again(id).await,
            };
            match result {
                Ok(()) => {
                    tracing::info!("{t}: done now that Neutron answers");
                    self.deferred.done(&t);
                }
                Err(e) if e.class() == ErrorClass::Unavailable => {
                    tracing::debug!(error = %e, "{t}: Neutron still failing");
                    again.push(t);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{t}: failed; not retried");
                    self.deferred.done(&t);
                }
            }
        }
        let n = again.len();
        self.deferred.put_back(again);
        n
    }

    /// The background task running waiting tear-downs, until the driver is dropped.
    pub fn spawn_deferred_teardowns(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let held = Arc::downgrade(self);
        let queue = self.deferred.clone();
        tokio::spawn(async move {
            let mut failed_rounds: u32 = 0;
            loop {
                let Some(d) = held.upgrade() else { break };
                let still = d.run_deferred_teardowns().await;
                let delay = if still > 0 {
                    failed_rounds = failed_rounds.saturating_add(1);
                    Backoff::nth(FIRST_DELAY, MAX_DELAY, failed_rounds - 1)
                } else {
                    failed_rounds = 0;
                    MAX_DELAY
                };
                drop(d);
                let added = queue.added.notified();
                tokio::pin!(added);
                if still > 0 {
                    tokio::time::sleep(delay).await;
                } else {
                    // Idle: wake for a new one (or now and then, to notice the driver's drop).
                    let _ = tokio::time::timeout(delay, added).await;
                    // A first attempt waits a moment: Neutron just failed.
                    tokio::time::sleep(FIRST_DELAY).await;
                }
            }
        })
    }
}
