//! Docker's libnetwork remote `NetworkDriver` and `IpamDriver` protocol: wire types with Docker's
//! field names, the driver traits the server calls, and [`PluginError`]. No I/O.
//!
//! Decoding rules live in [`request::decode_request`]; the HTTP server only moves bytes.

pub mod driver;
pub mod error;
pub mod ipam;
pub mod keys;
pub mod network;
pub mod request;
pub mod types;

pub use driver::{IpamDriver, NetworkDriver};
pub use error::{ErrorKind, ErrorResponse, PluginError};
pub use request::{decode_request, PluginRequest, TraceIds};
pub use types::{DockerId, MacAddr, Options, PoolId};

/// Re-exported so implementors use the same `async_trait` macro version.
pub use async_trait::async_trait;
