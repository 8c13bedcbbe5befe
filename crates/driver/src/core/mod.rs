//! The front-end-neutral core: a container port's lifecycle on this host (find or make the port,
//! bind it here, plug it, wait for ACTIVE, unplug, release). Docker's CNM verbs call it today and
//! the CNI verbs will call it next. Port pools keep ports ready ahead of time.

mod memory;
mod orphans;
mod pool;
mod ports;
mod reconcile;
mod reserve;

pub use orphans::OrphanWatch;
pub use pool::{AdoptReport, PortPools};
pub(crate) use ports::is_kuryr_port;
pub use ports::{AttachRequest, PortLifecycle, PortSettings};
pub use reconcile::ReconcileReport;
pub(crate) use reserve::AddressFor;
