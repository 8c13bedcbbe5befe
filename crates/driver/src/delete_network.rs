//! NetworkDriver.DeleteNetwork: delete the Kuryr network (its subnets go with it) and the Kuryr
//! pools left unused; an adopted network only loses Kuryr's tags and subnets. Idempotent.

use std::collections::BTreeSet;

use crate::constants::*;
use crate::driver::{validate_docker_id, KuryrDriver};
use crate::error::{join_errors, Result};
use crate::neutron::{Kind, SubnetQuery};
use crate::tags;

impl KuryrDriver {
    pub async fn delete_network(&self, network_id: &str) -> Result<()> {
        validate_docker_id("network id", network_id)?;
        let _guard = self.locks.lock(&format!("net:{network_id}")).await;
        let nets = self
            .nt
            .networks_by_tags(&tags::docker_id_tags(network_id))
            .await?;
        if nets.is_empty() {
            tracing::debug!(docker = %network_id, "no neutron network: already deleted");
            self.cache().nets.remove(network_id);
            return Ok(());
        }
        let mut errors = Vec::new();
        for net in nets {
            let subnets = self
                .nt
                .subnets(&SubnetQuery {
                    network_id: Some(net.id.clone()),
                    ..Default::default()
                })
                .await?;
            let kuryr_subnets: Vec<_> = subnets
                .iter()
                .filter(|s| s.name.starts_with(SUBNET_NAME_PREFIX))
                .collect();
            let pools: BTreeSet<String> = kuryr_subnets
                .iter()
                .filter_map(|s| s.subnetpool_id.clone())
                .collect();
            let adopted = tags::has(&net.tags, &tags::existing_net_tag(network_id));
            let mut removed = true;
            if adopted {
                for s in &kuryr_subnets {
                    if let Err(e) = self.nt.delete_subnet(&s.id).await {
                        removed = false;
                        errors.push(e.to_string());
                    }
                }
                let kept: Vec<String> = net
                    .tags
                    .iter()
                    .filter(|t| !tags::is_kuryr_id_tag(t))
                    .cloned()
                    .collect();
                if let Err(e) = self.nt.set_tags(Kind::Network, &net.id, &kept).await {
                    errors.push(e.to_string());
                }
                tracing::info!(net = %net.id, "released adopted network");
            } else {
                match self.nt.delete_network(&net.id).await {
                    Ok(()) => tracing::info!(net = %net.id, "deleted network"),
                    Err(e) => {
                        removed = false;
                        errors.push(e.to_string());
                    }
                }
            }
            if removed {
                for pool_id in pools {
                    match self.nt.pool(&pool_id).await {
                        Ok(Some(p)) if self.is_kuryr_pool(&p) => {
                            if let Err(e) = self.delete_pool_if_unused(&p.id).await {
                                errors.push(e.to_string());
                            }
                        }
                        Ok(_) => {}
                        Err(e) => errors.push(e.to_string()),
                    }
                }
            }
            self.forget_network(network_id, &net.id);
        }
        join_errors(&format!("delete network {network_id}"), errors)
    }
}
