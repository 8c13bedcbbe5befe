//! Set-up calls that finished after their deadline. The server answers Docker with an error
//! when a call runs past its deadline and lets the call run on (cutting it half-way would leave
//! a half-made network or port); Docker takes it as failed and undoes only what it was told
//! about. What such a call made is removed here, as its inverse call would remove it.

use kuryr_plugin_api::driver::AbandonedCall;
use kuryr_plugin_api::ipam::ReleaseAddressRequest;
use kuryr_plugin_api::network::{EndpointRequest, NetworkRequest};

use super::KuryrDriver;
use crate::error::Result;

impl KuryrDriver {
    pub async fn undo_abandoned(&self, call: AbandonedCall) {
        let what = call.name();
        tracing::warn!("{what} finished after Docker was told it failed: undoing it");
        if let Err(e) = self.undo_abandoned_call(call).await {
            tracing::warn!(error = %e, "{what}: undoing the late success failed");
        }
    }

    async fn undo_abandoned_call(&self, call: AbandonedCall) -> Result<()> {
        match call {
            AbandonedCall::CreateNetwork(r) => {
                self.delete_network(&NetworkRequest {
                    network_id: r.network_id,
                })
                .await
            }
            AbandonedCall::AllocateNetwork(r) => {
                self.free_network(&NetworkRequest {
                    network_id: r.network_id,
                })
                .await
            }
            AbandonedCall::Join(r) => {
                self.leave(&EndpointRequest {
                    network_id: r.network_id,
                    endpoint_id: r.endpoint_id,
                });
                Ok(())
            }
            AbandonedCall::ProgramExternalConnectivity(r) => {
                self.revoke_external_connectivity(&r.endpoint_id).await
            }
            AbandonedCall::CreateEndpoint(r) => {
                // Docker released the endpoint's addresses when CreateEndpoint failed, maybe
                // before the port was ready: detach, then release the port's addresses again
                // (left alone if this daemon has given them to someone else since).
                let port = self.ports.endpoint_port(&r.endpoint_id).await?;
                self.delete_endpoint(&EndpointRequest {
                    network_id: r.network_id,
                    endpoint_id: r.endpoint_id,
                })
                .await?;
                if let Some(p) = port {
                    for f in &p.fixed_ips {
                        self.ports.release_again(&f.subnet_id, f.ip_address).await?;
                    }
                }
                Ok(())
            }
            AbandonedCall::RequestPool(reply) => match super::pool_ref(&reply.pool_id)? {
                kuryr_types::PoolRef::Whole(id) => self.undo_unanswered_pool(&id).await,
                // A range of a shared pool is nothing in Neutron until a subnet uses it.
                kuryr_types::PoolRef::Carved { .. } => Ok(()),
            },
            AbandonedCall::RequestAddress(req, reply) => {
                self.release_address_again(&ReleaseAddressRequest {
                    pool_id: req.pool_id,
                    address: reply.address.addr(),
                })
                .await
            }
        }
    }
}
