//! One handler per plugin call. Each decodes its body (argument-less calls ignore the body),
//! then runs the driver method through [`run`].

use std::future::Future;

use axum::extract::State;
use axum::response::Response;
use http::{StatusCode, Uri};
use kuryr_plugin_api::ipam::{
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest,
};
use kuryr_plugin_api::network::{
    ActivateResponse, AllocateNetworkRequest, CreateEndpointRequest, CreateNetworkRequest,
    DiscoveryNotification, EndpointRequest, GwAllocCheckRequest, JoinRequest, NetworkRequest,
    ProgramExternalConnectivityRequest,
};
use kuryr_plugin_api::{keys, PluginError};
use serde::Serialize;
use tracing::Instrument;

use super::extract::PluginJson;
use super::reply::{error_reply, error_with_status, is_ipam_path, ok_json, Empty};
use super::AppState;

/// Runs a driver call in its own task under the request deadline.
///
/// The task is spawned rather than awaited in place so that a driver panic becomes a JSON error
/// and so that a call hitting the deadline keeps running to completion (its own rollback
/// included) instead of being cancelled halfway through host or Neutron changes.
async fn run<R, F>(state: &AppState, ipam: bool, call: F) -> Response
where
    R: Serialize + Send + 'static,
    F: Future<Output = Result<R, PluginError>> + Send + 'static,
{
    let timeout = state.limits.request_timeout;
    let task = tokio::spawn(call.instrument(tracing::Span::current()));
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(reply))) => ok_json(&reply, ipam),
        Ok(Ok(Err(e))) => error_reply(&e, ipam),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "driver task failed");
            error_reply(
                &PluginError::internal("internal error in the plugin driver"),
                ipam,
            )
        }
        Err(_) => error_reply(
            &PluginError::unavailable(format!(
                "the plugin did not finish within {} s; the operation continues in the background",
                timeout.as_secs()
            )),
            ipam,
        ),
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
    run(&s, false, async move { d.get_capabilities().await }).await
}

pub(crate) async fn create_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<CreateNetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, unit(async move { d.create_network(req).await })).await
}

pub(crate) async fn delete_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<NetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, unit(async move { d.delete_network(req).await })).await
}

pub(crate) async fn allocate_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<AllocateNetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, async move { d.allocate_network(req).await }).await
}

pub(crate) async fn free_network(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<NetworkRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, unit(async move { d.free_network(req).await })).await
}

pub(crate) async fn create_endpoint(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<CreateEndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, async move { d.create_endpoint(req).await }).await
}

pub(crate) async fn endpoint_oper_info(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<EndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, async move { d.endpoint_oper_info(req).await }).await
}

pub(crate) async fn delete_endpoint(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<EndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, unit(async move { d.delete_endpoint(req).await })).await
}

pub(crate) async fn join(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<JoinRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, async move { d.join(req).await }).await
}

pub(crate) async fn leave(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<EndpointRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, unit(async move { d.leave(req).await })).await
}

pub(crate) async fn discover_new(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<DiscoveryNotification>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, unit(async move { d.discover_new(req).await })).await
}

pub(crate) async fn discover_delete(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<DiscoveryNotification>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, unit(async move { d.discover_delete(req).await })).await
}

pub(crate) async fn program_external_connectivity(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<ProgramExternalConnectivityRequest>,
) -> Response {
    let d = s.network.clone();
    run(
        &s,
        false,
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
        false,
        unit(async move { d.revoke_external_connectivity(req).await }),
    )
    .await
}

pub(crate) async fn gw_alloc_check(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<GwAllocCheckRequest>,
) -> Response {
    let d = s.network.clone();
    run(&s, false, async move { d.gw_alloc_check(req).await }).await
}

// IpamDriver.

pub(crate) async fn ipam_get_capabilities(State(s): State<AppState>) -> Response {
    let d = s.ipam.clone();
    run(&s, true, async move { d.get_capabilities().await }).await
}

pub(crate) async fn get_default_address_spaces(State(s): State<AppState>) -> Response {
    let d = s.ipam.clone();
    run(
        &s,
        true,
        async move { d.get_default_address_spaces().await },
    )
    .await
}

pub(crate) async fn request_pool(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<RequestPoolRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(&s, true, async move { d.request_pool(req).await }).await
}

pub(crate) async fn release_pool(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<ReleasePoolRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(&s, true, unit(async move { d.release_pool(req).await })).await
}

pub(crate) async fn request_address(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<RequestAddressRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(&s, true, async move { d.request_address(req).await }).await
}

pub(crate) async fn release_address(
    State(s): State<AppState>,
    PluginJson(req): PluginJson<ReleaseAddressRequest>,
) -> Response {
    let d = s.ipam.clone();
    run(&s, true, unit(async move { d.release_address(req).await })).await
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
