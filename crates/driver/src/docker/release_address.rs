//! IpamDriver.ReleaseAddress: delete the port Kuryr made for an address, or give an adopted port
//! back to its owner (the port lifecycle's release). Idempotent: an address nobody holds is
//! already released.

use kuryr_plugin_api::ipam::ReleaseAddressRequest;

use super::deferred::Teardown;
use super::{pool_ref, KuryrDriver};
use crate::error::Result;

impl KuryrDriver {
    pub async fn release_address(&self, req: &ReleaseAddressRequest) -> Result<()> {
        let result = self.release_address_now(req, false).await;
        self.defer_if_unavailable(result, || Teardown::Address(req.clone()))
    }

    /// Run again after Neutron failed it: see [`crate::core::PortLifecycle`]'s `release_again`.
    pub(crate) async fn release_address_again(&self, req: &ReleaseAddressRequest) -> Result<()> {
        self.release_address_now(req, true).await
    }

    async fn release_address_now(&self, req: &ReleaseAddressRequest, again: bool) -> Result<()> {
        let pool = pool_ref(&req.pool_id)?;
        let ip = req.address;
        let subnet = match self.pool_subnet(&pool).await {
            Ok((Some(s), _)) => s,
            Ok((None, _)) => {
                tracing::debug!(%pool, %ip, "no subnet for pool: address already released");
                return Ok(());
            }
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        if again {
            self.ports.release_again(&subnet.id, ip).await
        } else {
            self.ports.release(&subnet.id, ip).await
        }
    }
}
