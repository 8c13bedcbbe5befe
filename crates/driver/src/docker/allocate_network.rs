//! NetworkDriver.AllocateNetwork (swarm managers, global scope): the answer is stored as the
//! network's driver state and handed to every node's CreateNetwork, so Kuryr's `-o` options
//! (`neutron.net.uuid`, ...) must be in it: an empty answer makes the nodes create plain
//! networks instead of adopting the one the user named.

use kuryr_plugin_api::network::{AllocateNetworkRequest, AllocateNetworkResponse};

use super::options::string_value;
use super::KuryrDriver;

/// Docker's own option keys start with this; they reach every node without our help.
const DOCKER_KEY_PREFIX: &str = "com.docker.";

impl KuryrDriver {
    pub fn allocate_network(&self, req: &AllocateNetworkRequest) -> AllocateNetworkResponse {
        let options = req
            .options
            .iter()
            .filter(|(k, _)| !k.starts_with(DOCKER_KEY_PREFIX))
            .filter_map(|(k, _)| Some((k.clone(), string_value(&req.options, k)?)))
            .collect();
        AllocateNetworkResponse { options }
    }
}

#[cfg(test)]
mod tests {
    use kuryr_plugin_api::Options;

    use super::*;
    use crate::constants::{OPT_NET_NAME, OPT_NET_SHARED};

    #[test]
    fn kuryr_options_travel_to_every_node() {
        let t = crate::docker::tests::driver();
        let req = AllocateNetworkRequest {
            network_id: "n1".parse().unwrap(),
            options: Options::new()
                .with(OPT_NET_NAME, "shared-net")
                .with(OPT_NET_SHARED, true)
                .with("com.docker.network.enable_ipv6", false),
            ipv4_data: Vec::new(),
            ipv6_data: Vec::new(),
        };
        let got = t.allocate_network(&req).options;
        assert_eq!(
            got.get(OPT_NET_NAME).map(String::as_str),
            Some("shared-net")
        );
        assert_eq!(got.get(OPT_NET_SHARED).map(String::as_str), Some("true"));
        assert_eq!(got.len(), 2, "{got:?}");
    }
}
