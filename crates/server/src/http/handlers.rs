//! One handler per plugin call. Each decodes its body (argument-less calls ignore the body),
//! then runs the driver method through [`run`].

use std::future::Future;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use http::{StatusCode, Uri};
use kuryr_plugin_api::driver::{AbandonedCall, IpamDriver, NetworkDriver};
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
    run_undoable(
        state,
        path,
        call,
        None::<fn(R) -> Option<LateUndo>>,
        None::<fn(&R)>,
    )
    .await
}

/// The undo of a set-up call's late success: `None` when there is nothing to undo.
type LateUndo = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// [`run`] for set-up calls: when the call succeeds only after the deadline answered Docker with
/// an error, Docker takes it as failed, so `undo` (given the late reply) removes what it made.
/// `answered` is told of a success once its reply is about to go to Docker.
async fn run_undoable<R, F, U, A>(
    state: &AppState,
    path: &'static str,
    call: F,
    undo: Option<U>,
    answered: Option<A>,
) -> Response
where
    R: Serialize + Send + 'static,
    F: Future<Output = Result<R, PluginError>> + Send + 'static,
    U: FnOnce(R) -> Option<LateUndo> + Send + 'static,
    A: FnOnce(&R) + Send,
{
    let started = Instant::now();
    let ipam = is_ipam_path(path);
    let timeout = state.limits.request_timeout;
    let running = super::in_flight::Running::start();
    let mut task = tokio::spawn(
        async move {
            let _running = running;
            crate::metrics::PLUGIN_CALL.scope(path, call).await
        }
        .instrument(tracing::Span::current()),
    );
    let result = match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => {
            tracing::error!(error = %join, "driver task failed");
            Err(PluginError::internal("internal error in the plugin driver"))
        }
        Err(_) => {
            if let Some(undo) = undo {
                // Counted as running until the undo is done, so that shutdown waits for it.
                let running = super::in_flight::Running::start();
                tokio::spawn(
                    async move {
                        let _running = running;
                        if let Ok(Ok(reply)) = task.await {
                            if let Some(undo) = undo(reply) {
                                undo.await;
                            }
                        }
                    }
                    .instrument(tracing::Span::current()),
                );
            }
            Err(PluginError::unavailable(format!(
                "the plugin did not finish within {} s; what the call still does is undone when it ends",
                timeout.as_secs()
            )))
        }
    };
    if let Some(m) = &state.metrics {
        m.record_call(
            path,
            result.as_ref().err().map(PluginError::kind),
            started.elapsed(),
        );
    }
    kuryr_driver::crash_point::after_call(path);
    match result {
        Ok(reply) => {
            if let Some(answered) = answered {
                answered(&reply);
            }
            ok_json(&reply, ipam)
        }
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

/// One handler per plugin call: decode the body as the call's request type (argument-less calls
/// take none), run the driver method through [`run`]; `unit` calls answer `{}`.
macro_rules! plugin_call {
    ($name:ident: $driver:ident.$method:ident() at $path:ident) => {
        pub(crate) async fn $name(State(s): State<AppState>) -> Response {
            let d = s.$driver.clone();
            run(&s, paths::$path, async move { d.$method().await }).await
        }
    };
    ($name:ident: $driver:ident.$method:ident($req:ty) at $path:ident) => {
        pub(crate) async fn $name(
            State(s): State<AppState>,
            PluginJson(req): PluginJson<$req>,
        ) -> Response {
            let d = s.$driver.clone();
            run(&s, paths::$path, async move { d.$method(req).await }).await
        }
    };
    // A set-up call: `$undo(request, late reply)` names what to undo after a late success;
    // `$answered(driver, request, reply)`, when given, is told of a success Docker is given.
    ($name:ident: $driver:ident.$method:ident($req:ty) $(-> $unit:ident)? at $path:ident, undo $undo:expr $(, answered $answered:expr)?) => {
        pub(crate) async fn $name(
            State(s): State<AppState>,
            PluginJson(req): PluginJson<$req>,
        ) -> Response {
            let d = s.$driver.clone();
            let (late, late_req) = (s.$driver.clone(), req.clone());
            let undo = move |reply| -> Option<LateUndo> {
                let call: AbandonedCall = ($undo)(late_req, reply)?;
                Some(Box::pin(async move { late.undo_abandoned(call).await }))
            };
            #[allow(unused_mut, unused_assignments)]
            let mut answered = None::<Box<dyn FnOnce(&_) + Send>>;
            // Only the calls that tell the driver pay for the copies.
            $(
                let (told, told_req) = (s.$driver.clone(), req.clone());
                answered = Some(Box::new(move |reply: &_| ($answered)(&*told, &told_req, reply)));
            )?
            run_undoable(&s, paths::$path, plugin_call!(@call $($unit)? d.$method(req)), Some(undo), answered).await
        }
    };
    (@call unit $d:ident.$method:ident($req:ident)) => {
        unit(async move { $d.$method($req).await })
    };
    (@call $d:ident.$method:ident($req:ident)) => {
        async move { $d.$method($req).await }
    };
    ($name:ident: $driver:ident.$method:ident($req:ty) -> unit at $path:ident) => {
        pub(crate) async fn $name(
            State(s): State<AppState>,
            PluginJson(req): PluginJson<$req>,
        ) -> Response {
            let d = s.$driver.clone();
            run(&s, paths::$path, unit(async move { d.$method(req).await })).await
        }
    };
}

// NetworkDriver.
plugin_call!(net_get_capabilities: network.get_capabilities() at NET_GET_CAPABILITIES);
plugin_call!(create_network: network.create_network(CreateNetworkRequest) -> unit at NET_CREATE_NETWORK,
    undo |r, _| Some(AbandonedCall::CreateNetwork(r)),
    answered |d: &dyn NetworkDriver, r: &CreateNetworkRequest, _: &Empty| d.create_network_answered(r));
plugin_call!(delete_network: network.delete_network(NetworkRequest) -> unit at NET_DELETE_NETWORK);
plugin_call!(allocate_network: network.allocate_network(AllocateNetworkRequest) at NET_ALLOCATE_NETWORK,
    undo |r, _| Some(AbandonedCall::AllocateNetwork(r)));
plugin_call!(free_network: network.free_network(NetworkRequest) -> unit at NET_FREE_NETWORK);
plugin_call!(create_endpoint: network.create_endpoint(CreateEndpointRequest) at NET_CREATE_ENDPOINT,
    undo |r, _| Some(AbandonedCall::CreateEndpoint(r)));
plugin_call!(endpoint_oper_info: network.endpoint_oper_info(EndpointRequest) at NET_ENDPOINT_OPER_INFO);
plugin_call!(delete_endpoint: network.delete_endpoint(EndpointRequest) -> unit at NET_DELETE_ENDPOINT);
plugin_call!(join: network.join(JoinRequest) at NET_JOIN,
    undo |r, _| Some(AbandonedCall::Join(r)));
plugin_call!(leave: network.leave(EndpointRequest) -> unit at NET_LEAVE);
plugin_call!(discover_new: network.discover_new(DiscoveryNotification) -> unit at NET_DISCOVER_NEW);
plugin_call!(discover_delete: network.discover_delete(DiscoveryNotification) -> unit at NET_DISCOVER_DELETE);
plugin_call!(program_external_connectivity: network.program_external_connectivity(ProgramExternalConnectivityRequest) -> unit at NET_PROGRAM_EXTERNAL_CONNECTIVITY,
    undo |r, _| Some(AbandonedCall::ProgramExternalConnectivity(r)));
plugin_call!(revoke_external_connectivity: network.revoke_external_connectivity(EndpointRequest) -> unit at NET_REVOKE_EXTERNAL_CONNECTIVITY);
plugin_call!(gw_alloc_check: network.gw_alloc_check(GwAllocCheckRequest) at NET_GW_ALLOC_CHECK);

// IpamDriver.
plugin_call!(ipam_get_capabilities: ipam.get_capabilities() at IPAM_GET_CAPABILITIES);
plugin_call!(get_default_address_spaces: ipam.get_default_address_spaces() at IPAM_GET_DEFAULT_ADDRESS_SPACES);
plugin_call!(request_pool: ipam.request_pool(RequestPoolRequest) at IPAM_REQUEST_POOL,
    undo |_, reply| Some(AbandonedCall::RequestPool(reply)),
    answered |d: &dyn IpamDriver, _: &RequestPoolRequest, reply| d.request_pool_answered(reply));
plugin_call!(release_pool: ipam.release_pool(ReleasePoolRequest) -> unit at IPAM_RELEASE_POOL);
plugin_call!(request_address: ipam.request_address(RequestAddressRequest) at IPAM_REQUEST_ADDRESS,
    undo |r, reply| Some(AbandonedCall::RequestAddress(r, reply)));
plugin_call!(release_address: ipam.release_address(ReleaseAddressRequest) -> unit at IPAM_RELEASE_ADDRESS);

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
