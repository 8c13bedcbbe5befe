//! NetworkDriver.EndpointOperInfo: the Neutron port's status. One cheap request at most; never
//! fails (Docker ignores the answer's errors and must not be slowed down by them).

use std::time::Duration;

use kuryr_plugin_api::network::{EndpointOperInfoRequest, EndpointOperInfoResponse};

use super::KuryrDriver;

/// How long a status read by CreateEndpoint is answered without asking Neutron again: Docker
/// asks twice during every start and uses nothing of the answer but the port-mapping keys.
const FRESH: Duration = Duration::from_secs(5);

impl KuryrDriver {
    pub async fn endpoint_oper_info(
        &self,
        req: &EndpointOperInfoRequest,
    ) -> EndpointOperInfoResponse {
        let mut resp = EndpointOperInfoResponse::default();
        match self.ports.endpoint_status(&req.endpoint_id, FRESH).await {
            Ok(Some(status)) => {
                resp.value.insert("status".into(), status.as_str().into());
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(endpoint = %req.endpoint_id, error = %e, "endpoint status unavailable")
            }
        }
        resp
    }
}
