//! NetworkDriver.Leave: nothing to do (the interface is unplugged in DeleteEndpoint, as the
//! original does); always succeeds so Docker's rollback Leave calls are harmless.

use crate::driver::{validate_docker_id, KuryrDriver};
use crate::error::Result;

impl KuryrDriver {
    pub async fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        validate_docker_id("network id", network_id)?;
        validate_docker_id("endpoint id", endpoint_id)?;
        Ok(())
    }
}
