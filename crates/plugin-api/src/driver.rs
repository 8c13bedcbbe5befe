//! The traits the HTTP server calls: one method per Docker call, typed request in, typed reply
//! (or [`PluginError`]) out. Object safe through `async-trait`, so the server holds
//! `Arc<dyn NetworkDriver>` and `Arc<dyn IpamDriver>`.
//!
//! Requests reach a driver already decoded and validated. Calls for different networks and
//! endpoints arrive concurrently; implementations synchronise internally. Methods Docker only
//! logs failures of (`delete_*`, `leave`, `release_*`) should be idempotent: unknown = success.

use async_trait::async_trait;

use crate::error::PluginError;
use crate::ipam::{
    AddressSpacesResponse, IpamCapabilitiesResponse, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use crate::network::{
    AllocateNetworkRequest, AllocateNetworkResponse, CapabilitiesResponse, CreateEndpointRequest,
    CreateEndpointResponse, CreateNetworkRequest, DeleteEndpointRequest, DeleteNetworkRequest,
    DiscoveryNotification, EndpointOperInfoRequest, EndpointOperInfoResponse, FreeNetworkRequest,
    GwAllocCheckRequest, GwAllocCheckResponse, JoinRequest, JoinResponse, LeaveRequest,
    ProgramExternalConnectivityRequest, RevokeExternalConnectivityRequest,
};

/// A set-up call that finished only after Docker had been answered with the call's deadline
/// error. Docker takes the call as failed and never undoes it, so the driver must: what the call
/// made is removed as its inverse call would remove it.
#[derive(Debug, Clone)]
pub enum AbandonedCall {
    CreateNetwork(CreateNetworkRequest),
    AllocateNetwork(AllocateNetworkRequest),
    CreateEndpoint(CreateEndpointRequest),
    Join(JoinRequest),
    ProgramExternalConnectivity(ProgramExternalConnectivityRequest),
    /// The request and the address the late reply held.
    RequestAddress(RequestAddressRequest, RequestAddressResponse),
    /// The late reply: the pool Docker never heard of.
    RequestPool(RequestPoolResponse),
}

impl AbandonedCall {
    /// The plugin call's name, as Docker calls it.
    pub fn name(&self) -> &'static str {
        match self {
            AbandonedCall::CreateNetwork(_) => "CreateNetwork",
            AbandonedCall::AllocateNetwork(_) => "AllocateNetwork",
            AbandonedCall::CreateEndpoint(_) => "CreateEndpoint",
            AbandonedCall::Join(_) => "Join",
            AbandonedCall::ProgramExternalConnectivity(_) => "ProgramExternalConnectivity",
            AbandonedCall::RequestAddress(..) => "RequestAddress",
            AbandonedCall::RequestPool(_) => "RequestPool",
        }
    }
}

/// Docker's libnetwork remote network driver (`/NetworkDriver.*`).
#[async_trait]
pub trait NetworkDriver: Send + Sync {
    /// `GetCapabilities`: must be constant across restarts (Docker caches it).
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse, PluginError>;

    /// `CreateNetwork`: idempotent for a known ID with identical parameters.
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError>;

    /// `DeleteNetwork`: idempotent; an unknown ID is success.
    async fn delete_network(&self, req: DeleteNetworkRequest) -> Result<(), PluginError>;

    /// `AllocateNetwork` (swarm manager, global scope): defaults to no driver state.
    async fn allocate_network(
        &self,
        _req: AllocateNetworkRequest,
    ) -> Result<AllocateNetworkResponse, PluginError> {
        Ok(AllocateNetworkResponse::default())
    }

    /// `FreeNetwork` (swarm manager, global scope): defaults to success.
    async fn free_network(&self, _req: FreeNetworkRequest) -> Result<(), PluginError> {
        Ok(())
    }

    /// `CreateEndpoint`: reply only with fields the request left empty.
    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError>;

    /// `EndpointOperInfo`: must be fast; defaults to `{"Value": {}}`.
    async fn endpoint_oper_info(
        &self,
        _req: EndpointOperInfoRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        Ok(EndpointOperInfoResponse::default())
    }

    /// `DeleteEndpoint`: idempotent; an unknown endpoint is success.
    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> Result<(), PluginError>;

    /// `Join`: name an interface that exists in the host netns when this returns.
    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError>;

    /// `Leave`: idempotent (Docker also sends it as a rollback).
    async fn leave(&self, req: LeaveRequest) -> Result<(), PluginError>;

    /// `DiscoverNew` (swarm node events): defaults to success.
    async fn discover_new(&self, _req: DiscoveryNotification) -> Result<(), PluginError> {
        Ok(())
    }

    /// `DiscoverDelete` (swarm node events): defaults to success.
    async fn discover_delete(&self, _req: DiscoveryNotification) -> Result<(), PluginError> {
        Ok(())
    }

    /// `ProgramExternalConnectivity`: defaults to "not implemented", answered with HTTP 404,
    /// which Docker tolerates (a 500 would fail container start).
    async fn program_external_connectivity(
        &self,
        _req: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        Err(PluginError::not_implemented(
            "external connectivity is not implemented by this driver",
        ))
    }

    /// `RevokeExternalConnectivity`: defaults to "not implemented" (HTTP 404).
    async fn revoke_external_connectivity(
        &self,
        _req: RevokeExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        Err(PluginError::not_implemented(
            "external connectivity is not implemented by this driver",
        ))
    }

    /// `GwAllocCheck` (Docker 28+, only if advertised): defaults to "reserve gateways as usual".
    async fn gw_alloc_check(
        &self,
        _req: GwAllocCheckRequest,
    ) -> Result<GwAllocCheckResponse, PluginError> {
        Ok(GwAllocCheckResponse::default())
    }

    /// Undo a network call that succeeded after its deadline (see [`AbandonedCall`]). The
    /// default does nothing: for drivers whose calls cannot outlive the deadline.
    async fn undo_abandoned(&self, _call: AbandonedCall) {}

    /// Called once Docker has been given CreateNetwork's success, so a driver that recorded the
    /// call as possibly unanswered (to undo it if Docker never heard of it) can forget it.
    fn create_network_answered(&self, _req: &CreateNetworkRequest) {}
}

/// Docker's libnetwork remote IPAM driver (`/IpamDriver.*`).
#[async_trait]
pub trait IpamDriver: Send + Sync {
    /// `GetCapabilities`.
    async fn get_capabilities(&self) -> Result<IpamCapabilitiesResponse, PluginError>;

    /// `GetDefaultAddressSpaces`: constant and cheap (called before every RequestPool on 27+).
    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse, PluginError>;

    /// `RequestPool`: a new pool on every call without `Pool`; refcount identical requests.
    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError>;

    /// `ReleasePool`: refcount-aware, idempotent.
    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError>;

    /// `RequestAddress`: reply with the pool's prefix length; replay-safe.
    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError>;

    /// `ReleaseAddress`: idempotent (Docker sends duplicates).
    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError>;

    /// Undo an IPAM call that succeeded after its deadline (see [`AbandonedCall`]).
    async fn undo_abandoned(&self, _call: AbandonedCall) {}

    /// Called once Docker has been given RequestPool's reply (see
    /// [`NetworkDriver::create_network_answered`]).
    fn request_pool_answered(&self, _reply: &RequestPoolResponse) {}
}
