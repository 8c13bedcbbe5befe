//! The Docker plugin HTTP API as an axum [`Router`].
//!
//! Every call is `POST /<Subsystem>.<Method>`. Bodies are read with a size limit and decoded by
//! `kuryr_plugin_api::decode_request` (not `axum::Json`: Docker sends no Content-Type and empty
//! bodies on argument-less calls). Driver calls run in their own task under a deadline, so a
//! panicking or hung driver still gets Docker a JSON error instead of a dropped connection or a
//! blocked daemon.

mod extract;
mod handlers;
pub mod in_flight;
mod reply;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use kuryr_plugin_api::keys::paths;
use kuryr_plugin_api::{IpamDriver, NetworkDriver};

use crate::metrics::Metrics;

/// Request limits of the plugin API.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body; Docker's are a few KiB.
    pub max_body_bytes: usize,
    /// Longest a driver call may take before Docker gets an error. Docker has no timeout of its
    /// own for legacy plugins and blocks while it waits, so this bounds every call.
    pub request_timeout: Duration,
}

impl Limits {
    /// 1 MiB bodies, 60 s per call.
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 1024 * 1024,
        request_timeout: Duration::from_secs(60),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) network: Arc<dyn NetworkDriver>,
    pub(crate) ipam: Arc<dyn IpamDriver>,
    pub(crate) limits: Limits,
    /// Where plugin calls are recorded, when metrics are on.
    pub(crate) metrics: Option<Arc<Metrics>>,
}

/// The plugin API for one network driver and one IPAM driver (Kuryr implements both on one
/// socket, `-d kuryr --ipam-driver kuryr`).
pub fn router(
    network: Arc<dyn NetworkDriver>,
    ipam: Arc<dyn IpamDriver>,
    limits: Limits,
) -> Router {
    build(AppState {
        network,
        ipam,
        limits,
        metrics: None,
    })
}

/// [`router`], recording every plugin call in `metrics` (served elsewhere, see
/// [`crate::metrics`]).
pub fn router_with_metrics(
    network: Arc<dyn NetworkDriver>,
    ipam: Arc<dyn IpamDriver>,
    limits: Limits,
    metrics: Arc<Metrics>,
) -> Router {
    build(AppState {
        network,
        ipam,
        limits,
        metrics: Some(metrics),
    })
}

fn build(state: AppState) -> Router {
    use handlers as h;
    Router::new()
        .route(paths::ACTIVATE, post(h::activate))
        .route(paths::NET_GET_CAPABILITIES, post(h::net_get_capabilities))
        .route(paths::NET_CREATE_NETWORK, post(h::create_network))
        .route(paths::NET_DELETE_NETWORK, post(h::delete_network))
        .route(paths::NET_ALLOCATE_NETWORK, post(h::allocate_network))
        .route(paths::NET_FREE_NETWORK, post(h::free_network))
        .route(paths::NET_CREATE_ENDPOINT, post(h::create_endpoint))
        .route(paths::NET_ENDPOINT_OPER_INFO, post(h::endpoint_oper_info))
        .route(paths::NET_DELETE_ENDPOINT, post(h::delete_endpoint))
        .route(paths::NET_JOIN, post(h::join))
        .route(paths::NET_LEAVE, post(h::leave))
        .route(paths::NET_DISCOVER_NEW, post(h::discover_new))
        .route(paths::NET_DISCOVER_DELETE, post(h::discover_delete))
        .route(
            paths::NET_PROGRAM_EXTERNAL_CONNECTIVITY,
            post(h::program_external_connectivity),
        )
        .route(
            paths::NET_REVOKE_EXTERNAL_CONNECTIVITY,
            post(h::revoke_external_connectivity),
        )
        .route(paths::NET_GW_ALLOC_CHECK, post(h::gw_alloc_check))
        .route(paths::IPAM_GET_CAPABILITIES, post(h::ipam_get_capabilities))
        .route(
            paths::IPAM_GET_DEFAULT_ADDRESS_SPACES,
            post(h::get_default_address_spaces),
        )
        .route(paths::IPAM_REQUEST_POOL, post(h::request_pool))
        .route(paths::IPAM_RELEASE_POOL, post(h::release_pool))
        .route(paths::IPAM_REQUEST_ADDRESS, post(h::request_address))
        .route(paths::IPAM_RELEASE_ADDRESS, post(h::release_address))
        .fallback(h::unknown_call)
        .method_not_allowed_fallback(h::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(trace::trace_request))
}
