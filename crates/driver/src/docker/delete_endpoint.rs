//! NetworkDriver.DeleteEndpoint: unplug, undo the nested modes' Neutron side and remove the
//! endpoint's tags, through the port lifecycle. The port itself goes in ReleaseAddress.
//! Idempotent, best effort: every step is tried and all errors are reported.

use kuryr_plugin_api::network::DeleteEndpointRequest;

use super::deferred::Teardown;
use super::KuryrDriver;
use crate::error::Result;

impl KuryrDriver {
    pub async fn delete_endpoint(&self, req: &DeleteEndpointRequest) -> Result<()> {
        let result = self.delete_endpoint_now(req).await;
        self.defer_if_unavailable(result, || Teardown::Endpoint(req.clone()))
    }

    pub(crate) async fn delete_endpoint_now(&self, req: &DeleteEndpointRequest) -> Result<()> {
        self.ports.detach(&req.endpoint_id).await
    }
}
