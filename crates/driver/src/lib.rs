//! kuryr-driver: the translation logic of Kuryr, Docker's network model onto Neutron.
//!
//! [`KuryrDriver`] implements `kuryr_plugin_api::{NetworkDriver, IpamDriver}` using only the
//! `kuryr_openstack::NeutronApi` and `kuryr_binding::HostBinding` traits. Neutron (names and tags,
//! in the Python kuryr-libnetwork's scheme) is the only state; the in-memory caches only hold
//! facts that cannot change while the resource exists, or save a look-up right after a create.
//!
//! One file per Docker verb; [`constants`] holds every option key, tag and name.

pub mod constants;
pub mod tags;

mod capabilities;
mod config;
mod create_endpoint;
mod create_network;
mod delete_endpoint;
mod delete_network;
mod driver;
mod endpoint_oper_info;
mod error;
mod external_connectivity;
mod join;
mod leave;
mod locks;
mod neutron;
mod options;
mod plugin;
mod reconcile;
mod release_address;
mod release_pool;
mod request_address;
mod request_pool;
mod undo;

pub use config::{DriverConfig, PortMode};
pub use create_endpoint::EndpointRequest;
pub use create_network::{IpamData, NetworkRequest};
pub use driver::KuryrDriver;
pub use error::DriverError;
pub use external_connectivity::{exposed_rules, ExposedPort};
pub use join::JoinInfo;
pub use locks::KeyedLocks;
pub use reconcile::ReconcileReport;
pub use request_address::AddressRequest;
pub use request_pool::{PoolReply, PoolRequest};
pub use undo::Undo;
