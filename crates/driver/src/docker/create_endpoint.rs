//! NetworkDriver.CreateEndpoint: the endpoint's Neutron port, ready on this host (one port per
//! endpoint, bound, tagged with the endpoint id, plugged, ACTIVE), through the port lifecycle.

use kuryr_plugin_api::network::{CreateEndpointRequest, CreateEndpointResponse};

use super::port_options::network_mtu;
use super::KuryrDriver;
use crate::constants::TAG_PORT_SETTINGS;
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
        let mut network = self.existing_network(&req.network_id).await?;
        if let Some(m) = network_mtu(&req.network_id, &network.tags) {
            // `-o com.docker.network.driver.mtu`: the containers' interfaces get it.
            network.mtu = Some(m);
        }
        let settings = self
            .endpoint_port_settings(&req.network_id, &network, &req.options)
            .await?;
        // A port whose settings were chosen is reset before a pool hands it on.
        let extra: Vec<String> = settings
            .iter()
            .map(|_| TAG_PORT_SETTINGS.to_string())
            .collect();
        let (_, mac) = self
            .ports
            .attach(&AttachRequest {
                endpoint: &req.endpoint_id,
                network: &network,
                ips: &ips,
                mac: iface.mac_address,
                settings: settings.as_ref(),
                tags: &extra,
                rename_pooled: true,
            })
            .await?;
        Ok(CreateEndpointResponse::with_mac_if_unset(req, mac))
    }
}
