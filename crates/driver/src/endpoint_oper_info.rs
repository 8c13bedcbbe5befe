//! NetworkDriver.EndpointOperInfo: the Neutron port's status. One cheap request; never fails
//! (Docker ignores the answer's errors and must not be slowed down by them).

use std::time::Duration;

use crate::driver::KuryrDriver;
use crate::neutron::PortQuery;
use crate::tags;

/// How long a status read by CreateEndpoint is answered without asking Neutron again.
const FRESH: Duration = Duration::from_secs(5);

impl KuryrDriver {
    /// `Some(status)` when the endpoint's port exists.
    pub async fn endpoint_oper_info(&self, endpoint_id: &str) -> Option<String> {
        let cached = {
            let c = self.cache();
            match c.endpoints.get(endpoint_id) {
                // Docker asks twice during every start and uses nothing of the answer but the
                // port-mapping keys: a status read a moment ago is answer enough.
                Some(e) if e.status_at.elapsed() < FRESH => {
                    return Some(e.port.status.clone());
                }
                Some(e) => Some(e.port.id.clone()),
                None => None,
            }
        };
        let result = match cached {
            Some(id) => self.nt.port(&id).await,
            None => self
                .nt
                .ports(&PortQuery {
                    tags: tags::docker_id_tags(endpoint_id),
                    ..Default::default()
                })
                .await
                .map(|ps| ps.into_iter().next()),
        };
        match result {
            Ok(p) => p.map(|p| p.status),
            Err(e) => {
                tracing::debug!(endpoint = %endpoint_id, error = %e, "endpoint status unavailable");
                None
            }
        }
    }
}
