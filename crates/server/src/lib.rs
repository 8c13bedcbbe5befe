//! The Kuryr libnetwork daemon's protocol layer: the Docker plugin HTTP API ([`http`]) and the
//! sockets it is served on ([`transport`]). The translation logic plugs in through the
//! `kuryr_plugin_api::{NetworkDriver, IpamDriver}` traits. [`check`] is `check-config`'s logic.

pub mod check;
pub mod http;
pub mod transport;

pub use http::{router, Limits};
