//! kuryr-driver: the translation logic of Kuryr, in three layers.
//!
//! - [`docker`]: Docker's front end. [`KuryrDriver`] implements libnetwork's
//!   `NetworkDriver`/`IpamDriver` (`kuryr_plugin_api`), one file per verb.
//! - [`core`]: what every front end shares, the container port's lifecycle on this host
//!   ([`PortLifecycle`]); the CNI front end and the port pools build on it.
//! - [`port_driver`]: how ports reach the host (veth, nested macvlan, nested VLAN), chosen by
//!   name from the configuration.
//!
//! Below them, Neutron is reached only through `kuryr_openstack::NeutronApi` (wrapped by
//! [`neutron::Nt`]) and the host only through `kuryr_binding::HostBinding`. Neutron (names and
//! tags, in the Python kuryr-libnetwork's scheme) is the only state: what the layers remember
//! saves look-ups and can be found again in Neutron after a restart. [`constants`] holds every
//! option key, tag and name.

pub mod cni;
pub mod constants;
pub mod core;
pub mod crash_point;
pub mod docker;
pub mod neutron;
pub mod port_driver;
pub mod tags;

mod error;
mod locks;
mod undo;

pub use core::{AttachRequest, OrphanWatch, PortLifecycle, ReconcileReport};
pub use docker::{exposed_rules, KuryrDriver, POOL_GRACE};
pub use error::{DriverError, ErrorClass, UndoError};
pub use kuryr_config::{DriverConfig, PortDriverKind};
pub use locks::KeyedLocks;
pub use undo::Undo;
