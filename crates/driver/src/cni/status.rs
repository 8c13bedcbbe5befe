//! CNI STATUS: ready for ADD when Neutron answers and the configured network exists.

use super::CniNetwork;
use crate::docker::KuryrDriver;
use crate::error::Result;

impl KuryrDriver {
    pub async fn cni_status(&self, network: &CniNetwork) -> Result<()> {
        // Not from memory: STATUS is asked because something may have changed.
        self.cni_memory().networks.remove(&network.network_memo());
        self.cni_network(network).await.map(drop)
    }
}
