//! One handler per plugin call. Each decodes its body (argument-less calls ignore the body),
//! then runs the driver method through [`run`].

use std::future::Future;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use http::{StatusCode, Uri};
use kuryr_plugin_api::ipam::{
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest,
};
use kuryr_plugin_api::keys::{self, paths};
use kuryr_plugin_api::network::{
    ActivateResponse, AllocateNetworkRequest, CreateEndpointRequest, CreateNetworkRequest,
    DiscoveryNotification, EndpointRequest, GwAllocCheckRequest, JoinRequest, NetworkRequest,
    ProgramExternalConnectivityRequest,
};
use kuryr_plugin_api::PluginError;
use serde::Serialize;
use tracing::Instrument;

use super::extract::PluginJson;
use super::reply::{error_reply, error_with_status, is_ipam_path, ok_json, Empty};
use super::AppState;

/// Runs a driver call in its own task under the request deadline, and records it (with `path`,
/// the call's route) in the metrics when they are on.
///
/// The task is spawned rather than awaited in place so that a driver panic becomes a JSON error
/// and so that a call hitting the deadline keeps running to completion (its own rollback
/// included) instead of being cancelled halfway through host or Neutron changes.
async fn run<R, F>(state: &AppState, path: &'static str, call: F) -> Response
where
    R: Serialize + Send + 'static,
    F: Future<Output = Result<R, PluginError>> + Send + 'static,
{
    let started = Instant::now();
    let ipam = is_ipam_path(path);
    let timeout = state.limits.request_timeout;
    let task = tokio::spawn(call.instrument(tracing::Span::current()));
    let result = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => {
            tracing::error!(error = %join, "driver task failed");
            Err(PluginError::internal("internal error in the plugin driver"))
        }
        Err(_) => Err(PluginError::unavailable(format!(
            "the plugin did not finish within {} s; the operation continues in the background",
            timeout.as_secs()
        ))),
    };
    if let Some(m) = &state.metrics {
        m.record_call(
            path,
            result.as_ref().err().map(PluginError::kind),
            started.elapsed(),
        );
    }
    match result {
        Ok(reply) => ok_json(&reply, ipam),
        Err(e) => error_reply(&e, ipam),
    }
}

/// Adapts a driver call returning `()` to the `{}` reply.
async fn unit<F>(call: F) -> Result<Empty, PluginError>
where
    F: Future<Output = Result<(), PluginError>> + Send + 'static,
{
    call.await.map(|()| Empty {})
}

pub(crate) async fn activate() -> Response {
    let reply = ActivateResponse {
        implements: vec![
            keys::IMPLEMENTS_NETWORK.to_owned(),
            keys::IMPLEMENTS_IPAM.to_owned(),
        ],
    };
    ok_json(&reply, false)
}

// NetworkDriver.

pub(crate) async fn net_get_capabilities(State(s): State<AppState>) -> Response {
    let d = s.network.clone();
    run(&s, paths::NET_GET_CAPABILITIES, async move {
        d.get_capabilities().await
    })
    .await
}

pub(crate) async fn create_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<CreateNetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_CREATE_NETWORK,
        unit(async move { d.create_network(req).await }),
    )
    .await
}

pub(crate) async fn delete_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<NetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_DELETE_NETWORK,
        unit(async move { d.delete_network(req).await }),
    )
    .await
}

pub(crate) async fn allocate_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<AllocateNetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, paths::NET_ALLOCATE_NETWORK, async move {
        d.allocate_network(req).await
    })
    .await
}

pub(crate) async fn free_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<NetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_FREE_NETWORK,
        unit(async move { d.free_network(req).await }),
    )
    .await
}

pub(crate) async fn create_endpoint(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<CreateEndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, paths::NET_CREATE_ENDPOINT, async move {
        d.create_endpoint(req).await
    })
    .await
}

pub(crate) async fn endpoint_oper_info(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<EndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, paths::NET_ENDPOINT_OPER_INFO, async move {
        d.endpoint_oper_info(req).await
    })
    .await
}

pub(crate) async fn delete_endpoint(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<EndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_DELETE_ENDPOINT,
        unit(async move { d.delete_endpoint(req).await }),
    )
    .await
}

pub(crate) async fn join(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<JoinRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, paths::NET_JOIN, async move { d.join(req).await }).await
}

pub(crate) async fn leave(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<EndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_LEAVE,
        unit(async move { d.leave(req).await }),
    )
    .await
}

pub(crate) async fn discover_new(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<DiscoveryNotification>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_DISCOVER_NEW,
        unit(async move { d.discover_new(req).await }),
    )
    .await
}

pub(crate) async fn discover_delete(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<DiscoveryNotification>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_DISCOVER_DELETE,
        unit(async move { d.discover_delete(req).await }),
    )
    .await
}

pub(crate) async fn program_external_connectivity(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<ProgramExternalConnectivityRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_PROGRAM_EXTERNAL_CONNECTIVITY,
        unit(async move { d.program_external_connectivity(req).await }),
    )
    .await
}

pub(crate) async fn revoke_external_connectivity(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<EndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        paths::NET_REVOKE_EXTERNAL_CONNECTIVITY,
        unit(async move { d.revoke_external_connectivity(req).await }),
    )
    .await
}

pub(crate) async fn gw_alloc_check(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<GwAllocCheckRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, paths::NET_GW_ALLOC_CHECK, async move {
        d.gw_alloc_check(req).await
    })
    .await
}

// IpamDriver.

pub(crate) async fn ipam_get_capabilities(State(s): State<AppState>) -> Response {
    let d = s.ipam.clone();
    run(&s, paths::IPAM_GET_CAPABILITIES, async move {
        d.get_capabilities().await
    })
    .await
}

pub(crate) async fn get_default_address_spaces(State(s): State<AppState>) -> Response {
    let d = s.ipam.clone();
    run(&s, paths::IPAM_GET_DEFAULT_ADDRESS_SPACES, async move {
        d.get_default_address_spaces().await
    })
    .await
}

pub(crate) async fn request_pool(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<RequestPoolRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(&s, paths::IPAM_REQUEST_POOL, async move {
        d.request_pool(req).await
    })
    .await
}

pub(crate) async fn release_pool(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<ReleasePoolRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(
        &s,
        paths::IPAM_RELEASE_POOL,
        unit(async move { d.release_pool(req).await }),
    )
    .await
}

pub(crate) async fn request_address(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<RequestAddressRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(&s, paths::IPAM_REQUEST_ADDRESS, async move {
        d.request_address(req).await
    })
    .await
}

pub(crate) async fn release_address(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<ReleaseAddressRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(
        &s,
        paths::IPAM_RELEASE_ADDRESS,
        unit(async move { d.release_address(req).await }),
    )
    .await
}

// Anything else.

pub(crate) async fn unknown_call(uri: Uri) -> Response {
    let path: String = uri.path().chars().take(64).collect();
    error_with_status(
        StatusCode::NOT_FOUND,
        &PluginError::not_implemented(format!("unknown plugin call {path}")),
        is_ipam_path(&path),
    )
}

pub(crate) async fn method_not_allowed(uri: Uri) -> Response {
    error_with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        &PluginError::malformed("plugin calls must use POST"),
        is_ipam_path(uri.path()),
    )
}
