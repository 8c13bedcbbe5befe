//! The front-end-neutral core: a container port's lifecycle on this host (find or make the port,
//! bind it here, plug it, wait for ACTIVE, unplug, release). Docker's CNM verbs call it today and
//! the CNI verbs will call it next; port pools will live here.

mod memory;
mod ports;
mod reconcile;
mod reserve;

pub use ports::{AttachRequest, PortLifecycle};
pub use reconcile::ReconcileReport;
