//! NetworkDriver.AllocateNetwork and FreeNetwork: what a swarm manager calls, once per
//! swarm-scope network, at `docker network create` and `docker network rm` (global capability
//! scope only).
//!
//! Every node then calls CreateNetwork for the same Docker network ID, and several nodes do so
//! at once when a service starts. If each made its own Neutron network, the replicas would land
//! on different networks. So the manager makes the one Neutron network (and its subnets) here,
//! tagged with the swarm network's ID and [`TAG_NET_SWARM`]; the nodes' CreateNetwork finds it by
//! those tags, their DeleteNetwork (a node's last task gone) leaves it, and FreeNetwork deletes it.
//!
//! The answer is stored as the network's driver state and handed to every node's CreateNetwork,
//! so Kuryr's `-o` options (`neutron.net.uuid`, ...) must be in it.

use std::collections::BTreeMap;

use kuryr_plugin_api::keys;
use kuryr_plugin_api::network::{
    AllocateNetworkRequest, AllocateNetworkResponse, CreateNetworkRequest, FreeNetworkRequest,
};
use kuryr_plugin_api::Options;

use super::options::string_value;
use super::KuryrDriver;
use crate::constants::*;
use crate::error::{teardown_result, DriverError, Result};
use crate::neutron::Kind;
use crate::tags;

/// Docker's own option keys start with this; they reach every node without our help.
const DOCKER_KEY_PREFIX: &str = "com.docker.";

/// The network's `-o` options, as every node's CreateNetwork must see them.
fn kuryr_options(req: &AllocateNetworkRequest) -> BTreeMap<String, String> {
    req.options
        .iter()
        .filter(|(k, _)| !k.starts_with(DOCKER_KEY_PREFIX))
        .filter_map(|(k, _)| Some((k.clone(), string_value(&req.options, k)?)))
        .collect()
}

impl KuryrDriver {
    pub async fn allocate_network(
        &self,
        req: &AllocateNetworkRequest,
    ) -> Result<AllocateNetworkResponse> {
        let options = kuryr_options(req);
        // The manager's CreateNetwork, as a node would call it: the same validation, adoption
        // and subnets (from Docker's IPAM or Kuryr's), and the same unwinding on failure.
        let generic: serde_json::Map<String, serde_json::Value> = options
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut create_options = Options::new().with(keys::GENERIC, generic);
        if let Some(v) = req.options.get(keys::ENABLE_IPV6) {
            create_options = create_options.with(keys::ENABLE_IPV6, v.clone());
        }
        let create = CreateNetworkRequest {
            network_id: req.network_id.clone(),
            options: create_options,
            ipv4_data: req.ipv4_data.clone(),
            ipv6_data: req.ipv6_data.clone(),
        };
        self.create_network(&create).await?;
        let net = self.networks().nets.get(&req.network_id).cloned();
        if let Some(net) = net {
            if !tags::has(&net.tags, TAG_NET_SWARM) {
                // A failure here leaves the network tagged with the swarm ID: Docker retries the
                // allocation, which finds it and tags it then.
                self.nt
                    .add_tag(Kind::Network, &net.id, TAG_NET_SWARM)
                    .await?;
                let mut c = self.networks();
                if let Some(n) = c.nets.get_mut(&req.network_id) {
                    n.tags.push(TAG_NET_SWARM.to_string());
                }
            }
            tracing::info!(net = %net.id, docker = %req.network_id, "allocated swarm network");
        }
        Ok(AllocateNetworkResponse { options })
    }

    pub async fn free_network(&self, req: &FreeNetworkRequest) -> Result<()> {
        let network_id = &req.network_id;
        let _guard = self.locks.lock(&format!("net:{network_id}")).await;
        let nets = self.current_networks_of(network_id).await?;
        let mut errors = Vec::new();
        for net in nets {
            self.release_host_ports(&net, &mut errors).await;
            let adopted = tags::has(&net.tags, &tags::existing_net_tag(network_id.as_str()));
            let mut ours = super::create_network::adoption_tags(network_id);
            ours.push(TAG_NET_SWARM.to_string());
            let mut finished = Vec::new();
            self.finish_network(network_id, &net, !adopted, &ours, &mut finished)
                .await;
            if finished.iter().any(DriverError::is_conflict) && tags::has(&net.tags, TAG_NET_SWARM)
            {
                // The manager frees the network while the nodes still stop the service's last
                // tasks (their ports are still on it). Without the swarm mark the network is an
                // ordinary one again: the last node's DeleteNetwork deletes it.
                match self
                    .nt
                    .remove_tag(Kind::Network, &net.id, TAG_NET_SWARM)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(net = %net.id, "swarm network still in use on nodes: the last one leaving deletes it");
                        finished.retain(|e| !e.is_conflict());
                    }
                    Err(e) => finished.push(e),
                }
            }
            errors.extend(finished);
        }
        teardown_result(format!("free network {network_id}"), errors)
    }
}

#[cfg(test)]
mod tests {
    use kuryr_plugin_api::Options;

    use super::*;
    use crate::constants::{OPT_NET_NAME, OPT_NET_SHARED};

    #[test]
    fn kuryr_options_travel_to_every_node() {
        let req = AllocateNetworkRequest {
            network_id: "n1".parse().unwrap(),
            options: Options::new()
                .with(OPT_NET_NAME, "shared-net")
                .with(OPT_NET_SHARED, true)
                .with("com.docker.network.enable_ipv6", false),
            ipv4_data: Vec::new(),
            ipv6_data: Vec::new(),
        };
        let got = kuryr_options(&req);
        assert_eq!(
            got.get(OPT_NET_NAME).map(String::as_str),
            Some("shared-net")
        );
        assert_eq!(got.get(OPT_NET_SHARED).map(String::as_str), Some("true"));
        assert_eq!(got.len(), 2, "{got:?}");
    }
}
