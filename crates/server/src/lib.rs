//! The Kuryr libnetwork daemon's protocol layer: the Docker plugin HTTP API ([`http`]) and the
//! sockets it is served on ([`transport`]), plus the daemon's [`logging`], `check-config`'s
//! logic ([`check`]), its command line ([`cli`]), its reports to systemd ([`sd_notify`]) and the
//! opt-in Prometheus endpoint ([`metrics`]). The translation logic plugs in through the
//! `kuryr_plugin_api::{NetworkDriver, IpamDriver}` traits.

pub mod check;
pub mod cli;
pub mod cni;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod sd_notify;
pub mod transport;

pub use http::{router, router_with_metrics, Limits};
