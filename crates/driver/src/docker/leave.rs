//! NetworkDriver.Leave: nothing to do (the interface is unplugged in DeleteEndpoint, as the
//! original does); always succeeds so Docker's rollback Leave calls are harmless.

use kuryr_plugin_api::network::LeaveRequest;

use super::KuryrDriver;

impl KuryrDriver {
    pub fn leave(&self, req: &LeaveRequest) {
        tracing::debug!(endpoint = %req.endpoint_id, "leave");
    }
}
