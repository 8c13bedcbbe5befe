//! NetworkDriver.CreateEndpoint: the endpoint's Neutron port, ready on this host (one port per
//! endpoint, bound, tagged with the endpoint id, plugged, ACTIVE), through the port lifecycle.

use kuryr_plugin_api::network::{CreateEndpointRequest, CreateEndpointResponse};

use super::KuryrDriver;
use crate::core::AttachRequest;
use crate::error::{DriverError, Result};

impl KuryrDriver {
    /// Answers with the port's MAC when Docker gave none.
    pub async fn create_endpoint(
        &self,
        req: &CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse> {
        let iface = &req.interface;
        let ips: Vec<_> = [
            iface.address.map(|a| a.addr().into()),
            iface.address_ipv6.map(|a| a.addr().into()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if ips.is_empty() {
            return Err(DriverError::InvalidRequest(
                "interface address v4 or v6 not provided".into(),
            ));
        }
        let network = self.existing_network(&req.network_id).await?;
        let (_, mac) = self
            .ports
            .attach(&AttachRequest {
                endpoint: &req.endpoint_id,
                network: &network,
                ips: &ips,
                mac: iface.mac_address,
                tags: &[],
                rename_pooled: true,
            })
            .await?;
        Ok(CreateEndpointResponse::with_mac_if_unset(req, mac))
    }
}
