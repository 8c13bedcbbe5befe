//! The plugin-api traits: Docker's wire types in, the driver's internal calls, wire types out.

use std::collections::HashMap;
use std::net::IpAddr;

use kuryr_plugin_api::ipam::{
    AddressSpacesResponse, IpamCapabilitiesResponse, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use kuryr_plugin_api::network::{
    CapabilitiesResponse, CreateEndpointRequest, CreateEndpointResponse, CreateNetworkRequest,
    DeleteEndpointRequest, DeleteNetworkRequest, EndpointOperInfoRequest, EndpointOperInfoResponse,
    InterfaceName, JoinRequest, JoinResponse, LeaveRequest, ProgramExternalConnectivityRequest,
    RevokeExternalConnectivityRequest, Scope, StaticRoute,
};
use kuryr_plugin_api::{async_trait, IpamDriver, NetworkDriver, Options, PluginError, PoolId};

use crate::create_endpoint::EndpointRequest;
use crate::create_network::{IpamData, NetworkRequest};
use crate::driver::KuryrDriver;
use crate::error::DriverError;
use crate::external_connectivity::ExposedPort;
use crate::options::string_options;
use crate::request_address::AddressRequest;
use crate::request_pool::PoolRequest;

impl From<DriverError> for PluginError {
    fn from(e: DriverError) -> Self {
        let msg = e.to_string();
        match &e {
            DriverError::InvalidRequest(_) => PluginError::bad_request(msg),
            DriverError::NotFound(_) => PluginError::not_found(msg),
            DriverError::Conflict(_) => PluginError::conflict(msg),
            DriverError::Neutron { status, .. } => match status {
                Some(404) => PluginError::not_found(msg),
                Some(409) => PluginError::conflict(msg),
                Some(s) if (400..500).contains(s) => PluginError::bad_request(msg),
                _ => PluginError::unavailable(msg),
            },
            DriverError::Binding(_) => PluginError::internal(msg),
            DriverError::Timeout(_) => PluginError::unavailable(msg),
        }
    }
}

fn options_map(o: &Options) -> HashMap<String, String> {
    string_options(Some(&serde_json::Value::Object(o.0.clone())))
}

fn ipam_data(list: &[kuryr_plugin_api::network::IpamData]) -> Vec<IpamData> {
    list.iter()
        .map(|d| IpamData {
            pool: d.pool.to_string(),
            gateway: d.gateway.map(|g| g.to_string()).unwrap_or_default(),
            aux_addresses: d
                .aux_addresses
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        })
        .collect()
}

fn scope(s: &str) -> Scope {
    if s.eq_ignore_ascii_case("global") {
        Scope::Global
    } else {
        Scope::Local
    }
}

#[async_trait]
impl NetworkDriver for KuryrDriver {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse, PluginError> {
        Ok(CapabilitiesResponse {
            scope: scope(self.scope()),
            connectivity_scope: Some(scope(self.scope())),
            gw_alloc_checker: false,
        })
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError> {
        let generic = req.options.generic().map_err(PluginError::bad_request)?;
        let internal = NetworkRequest {
            network_id: req.network_id.to_string(),
            ipv4: ipam_data(&req.ipv4_data),
            ipv6: ipam_data(&req.ipv6_data),
            generic: options_map(&generic),
        };
        Ok(KuryrDriver::create_network(self, &internal).await?)
    }

    async fn delete_network(&self, req: DeleteNetworkRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::delete_network(self, req.network_id.as_str()).await?)
    }

    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        let internal = EndpointRequest {
            network_id: req.network_id.to_string(),
            endpoint_id: req.endpoint_id.to_string(),
            address: req
                .interface
                .address
                .map(|a| a.to_string())
                .unwrap_or_default(),
            address_v6: req
                .interface
                .address_ipv6
                .map(|a| a.to_string())
                .unwrap_or_default(),
            mac_address: req
                .interface
                .mac_address
                .map(|m| m.to_string())
                .unwrap_or_default(),
        };
        let mac = KuryrDriver::create_endpoint(self, &internal).await?;
        match mac {
            Some(m) => {
                let mac = m.parse().map_err(|e: kuryr_types::ParseError| {
                    PluginError::internal(format!("neutron port mac {m:?}: {e}"))
                })?;
                Ok(CreateEndpointResponse::with_mac_if_unset(&req, mac))
            }
            None => Ok(CreateEndpointResponse::unchanged()),
        }
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        let mut resp = EndpointOperInfoResponse::default();
        if let Some(status) = KuryrDriver::endpoint_oper_info(self, req.endpoint_id.as_str()).await
        {
            resp.value
                .insert("status".into(), serde_json::Value::String(status));
        }
        Ok(resp)
    }

    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> Result<(), PluginError> {
        Ok(
            KuryrDriver::delete_endpoint(self, req.network_id.as_str(), req.endpoint_id.as_str())
                .await?,
        )
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError> {
        let info =
            KuryrDriver::join(self, req.network_id.as_str(), req.endpoint_id.as_str()).await?;
        Ok(JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: info.src_name,
                dst_prefix: info.dst_prefix,
            }),
            gateway: match info.gateway {
                Some(IpAddr::V4(g)) => Some(g),
                _ => None,
            },
            gateway_ipv6: match info.gateway_v6 {
                Some(IpAddr::V6(g)) => Some(g),
                _ => None,
            },
            static_routes: info
                .static_routes
                .into_iter()
                .map(|(d, n)| StaticRoute::via(d, n))
                .collect(),
            // Neutron provides the gateway: never attach docker_gwbridge.
            disable_gateway_service: true,
        })
    }

    async fn leave(&self, req: LeaveRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::leave(self, req.network_id.as_str(), req.endpoint_id.as_str()).await?)
    }

    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        let exposed: Vec<ExposedPort> = req
            .options
            .exposed_ports()?
            .into_iter()
            .map(|p| ExposedPort {
                proto: p.proto,
                port: p.port,
            })
            .collect();
        Ok(
            KuryrDriver::program_external_connectivity(self, req.endpoint_id.as_str(), &exposed)
                .await?,
        )
    }

    async fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        Ok(KuryrDriver::revoke_external_connectivity(self, req.endpoint_id.as_str()).await?)
    }
}

fn pool_id(s: &str) -> Result<PoolId, PluginError> {
    s.parse()
        .map_err(|e: String| PluginError::internal(format!("pool id {s:?}: {e}")))
}

#[async_trait]
impl IpamDriver for KuryrDriver {
    async fn get_capabilities(&self) -> Result<IpamCapabilitiesResponse, PluginError> {
        Ok(IpamCapabilitiesResponse {
            // Docker then passes its MAC to RequestAddress, so the port gets it at creation.
            requires_mac_address: true,
            // Everything is in Neutron: nothing to replay.
            requires_request_replay: false,
        })
    }

    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse, PluginError> {
        let (local, global) = self.default_address_spaces();
        Ok(AddressSpacesResponse {
            local_default_address_space: local.to_string(),
            global_default_address_space: global.to_string(),
        })
    }

    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        let internal = PoolRequest {
            pool: req.pool.map(|p| p.to_string()).unwrap_or_default(),
            sub_pool: req.sub_pool.map(|p| p.to_string()).unwrap_or_default(),
            v6: req.v6,
            options: options_map(&req.options),
        };
        let reply = KuryrDriver::request_pool(self, &internal).await?;
        Ok(RequestPoolResponse::new(
            pool_id(&reply.pool_id)?,
            reply.pool,
        ))
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError> {
        Ok(KuryrDriver::release_pool(self, req.pool_id.as_str()).await?)
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        let internal = AddressRequest {
            pool_id: req.pool_id.to_string(),
            address: req.address.map(|a| a.to_string()).unwrap_or_default(),
            options: options_map(&req.options),
        };
        let addr = KuryrDriver::request_address(self, &internal).await?;
        let net = addr.parse().map_err(|_| {
            PluginError::internal(format!("driver produced an invalid address {addr:?}"))
        })?;
        Ok(RequestAddressResponse::new(net))
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError> {
        Ok(
            KuryrDriver::release_address(self, req.pool_id.as_str(), &req.address.to_string())
                .await?,
        )
    }
}
