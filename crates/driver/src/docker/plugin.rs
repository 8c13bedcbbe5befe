//! The plugin-api traits, each call handed to its verb's file; errors become what Docker shows.

use kuryr_plugin_api::driver::AbandonedCall;
use kuryr_plugin_api::ipam::{
    AddressSpacesResponse, IpamCapabilitiesResponse, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use kuryr_plugin_api::network::{
    AllocateNetworkRequest, AllocateNetworkResponse, CapabilitiesResponse, CreateEndpointRequest,
    CreateEndpointResponse, CreateNetworkRequest, DeleteEndpointRequest, DeleteNetworkRequest,
    EndpointOperInfoRequest, EndpointOperInfoResponse, FreeNetworkRequest, JoinRequest,
    JoinResponse, LeaveRequest, ProgramExternalConnectivityRequest,
    RevokeExternalConnectivityRequest,
};
use kuryr_plugin_api::{async_trait, IpamDriver, NetworkDriver, PluginError};

use super::KuryrDriver;
use crate::error::{DriverError, ErrorClass};

impl From<DriverError> for PluginError {
    fn from(e: DriverError) -> Self {
        // The source chain (Neutron's request id) is for the log, the text for Docker.
        tracing::debug!(error = ?e, "driver call failed");
        let msg = e.to_string();
        match e.class() {
            ErrorClass::BadRequest => PluginError::bad_request(msg),
            ErrorClass::NotFound => PluginError::not_found(msg),
            ErrorClass::Conflict => PluginError::conflict(msg),
            ErrorClass::Unavailable => PluginError::unavailable(msg),
            ErrorClass::Internal => PluginError::internal(msg),
        }
    }
}

#[async_trait]
impl NetworkDriver for KuryrDriver {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse, PluginError> {
        Ok(self.network_capabilities())
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::create_network(self, &req).await?)
    }

    async fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> Result<AllocateNetworkResponse, PluginError> {
        Ok(KuryrDriver::allocate_network(self, &req).await?)
    }

    async fn free_network(&self, req: FreeNetworkRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::free_network(self, &req).await?)
    }

    async fn delete_network(&self, req: DeleteNetworkRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::delete_network(self, &req).await?)
    }

    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        Ok(KuryrDriver::create_endpoint(self, &req).await?)
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        Ok(KuryrDriver::endpoint_oper_info(self, &req).await)
    }

    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::delete_endpoint(self, &req).await?)
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError> {
        Ok(KuryrDriver::join(self, &req).await?)
    }

    async fn leave(&self, req: LeaveRequest) -> Result<(), PluginError> {
        KuryrDriver::leave(self, &req);
        Ok(())
    }

    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        let exposed = req.options.exposed_ports()?;
        let published = req
            .options
            .get(kuryr_plugin_api::keys::PORT_MAP)
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty());
        if published {
            // Docker's bridge forwards host ports; a Neutron port is reached at its own address.
            tracing::warn!(endpoint = %req.endpoint_id, "-p/--publish: no host port is forwarded; the container port is opened on its Neutron address");
        }
        Ok(KuryrDriver::program_external_connectivity(self, &req.endpoint_id, &exposed).await?)
    }

    async fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        Ok(KuryrDriver::revoke_external_connectivity(self, &req.endpoint_id).await?)
    }

    async fn undo_abandoned(&self, call: AbandonedCall) {
        KuryrDriver::undo_abandoned(self, call).await
    }

    fn create_network_answered(&self, req: &CreateNetworkRequest) {
        KuryrDriver::create_network_answered(self, req)
    }
}

#[async_trait]
impl IpamDriver for KuryrDriver {
    async fn get_capabilities(&self) -> Result<IpamCapabilitiesResponse, PluginError> {
        Ok(self.ipam_capabilities())
    }

    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse, PluginError> {
        Ok(self.default_address_spaces())
    }

    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        Ok(KuryrDriver::request_pool(self, &req).await?)
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::release_pool(self, &req).await?)
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        Ok(KuryrDriver::request_address(self, &req).await?)
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::release_address(self, &req).await?)
    }

    async fn undo_abandoned(&self, call: AbandonedCall) {
        KuryrDriver::undo_abandoned(self, call).await
    }

    fn request_pool_answered(&self, reply: &RequestPoolResponse) {
        KuryrDriver::request_pool_answered(self, reply)
    }
}
