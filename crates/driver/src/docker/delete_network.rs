//! NetworkDriver.DeleteNetwork: delete the Kuryr network (its subnets go with it) and the Kuryr
//! pools left unused; an adopted network only loses Kuryr's tags and subnets. Idempotent. What
//! this daemon remembers of the network, its subnets and pools spares the look-ups.

use std::collections::BTreeSet;

use kuryr_plugin_api::network::DeleteNetworkRequest;

use super::create_network::adoption_tags;
use super::KuryrDriver;
use crate::constants::*;
use crate::error::{teardown_result, Result};
use crate::neutron::{Kind, SubnetQuery};
use crate::tags;

impl KuryrDriver {
    pub async fn delete_network(&self, req: &DeleteNetworkRequest) -> Result<()> {
        let network_id = &req.network_id;
        let _guard = self.locks.lock(&format!("net:{network_id}")).await;
        let remembered = self.networks().nets.get(network_id).cloned();
        let nets = match remembered {
            Some(net) => vec![net],
            None => {
                self.nt
                    .networks_by_tags(&tags::docker_id_tags(network_id.as_str()))
                    .await?
            }
        };
        if nets.is_empty() {
            tracing::debug!(docker = %network_id, "no neutron network: already deleted");
            self.networks().nets.remove(network_id);
            return Ok(());
        }
        let mut errors = Vec::new();
        for net in nets {
            // Pooled ports, and reservations a killed daemon never answered (Docker released
            // nothing for them), would keep Neutron from deleting the network.
            if let Err(e) = self.ports.drain_network(&net.id).await {
                errors.push(e);
            }
            if let Err(e) = self.ports.delete_reservations_on(&net.id).await {
                errors.push(e);
            }
            let remembered = self.networks().subnets_on(&net);
            let subnets = match remembered {
                Some(list) => list,
                None => self.nt.subnets(&SubnetQuery::on_network(&net.id)).await?,
            };
            let kuryr_subnets: Vec<_> = subnets
                .iter()
                .filter(|s| s.name.starts_with(SUBNET_NAME_PREFIX))
                .collect();
            let pools: BTreeSet<String> = kuryr_subnets
                .iter()
                .filter_map(|s| s.subnetpool_id.clone())
                .collect();
            let adopted = tags::has(&net.tags, &tags::existing_net_tag(network_id.as_str()));
            let mut removed = true;
            if adopted {
                for s in &kuryr_subnets {
                    if let Err(e) = self.nt.delete_subnet(&s.id).await {
                        removed = false;
                        errors.push(e);
                    }
                }
                // Only this Docker network's tags go, one by one: the owner's list (and another
                // Docker network's tags on it) are never rewritten.
                for t in adoption_tags(network_id) {
                    if net.tags.contains(&t) {
                        if let Err(e) = self.nt.remove_tag(Kind::Network, &net.id, &t).await {
                            errors.push(e);
                        }
                    }
                }
                tracing::info!(net = %net.id, "released adopted network");
            } else {
                match self.nt.delete_network(&net.id).await {
                    Ok(()) => tracing::info!(net = %net.id, "deleted network"),
                    Err(e) => {
                        removed = false;
                        errors.push(e);
                    }
                }
            }
            if removed {
                for pool_id in pools {
                    match self.known_pool(&pool_id).await {
                        Ok(Some(p)) if self.is_kuryr_pool(&p) => {
                            if let Err(e) = self.delete_pool_if_unused(&p.id).await {
                                errors.push(e);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => errors.push(e),
                    }
                }
            }
            self.forget_network(network_id, &net.id);
        }
        teardown_result(format!("delete network {network_id}"), errors)
    }
}
