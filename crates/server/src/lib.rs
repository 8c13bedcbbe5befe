//! The Kuryr libnetwork daemon's protocol layer: the Docker plugin HTTP API ([`http`]) and the
//! sockets it is served on ([`transport`]), plus the daemon's [`logging`] and `check-config`'s
//! logic ([`check`]), and the opt-in Prometheus endpoint ([`metrics`]). The translation logic plugs in through the
//! `kuryr_plugin_api::{NetworkDriver, IpamDriver}` traits.

pub mod check;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod transport;

pub use http::{router, router_with_metrics, Limits};
