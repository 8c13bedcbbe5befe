//! NetworkDriver.DeleteNetwork: take this Docker network off its Neutron network, and delete what
//! Kuryr made (the network, or on an adopted network Kuryr's subnets, and the Kuryr pools left
//! unused) once no Docker network uses it any more, on this host or another. Idempotent.
//!
//! Several Docker networks may share one Neutron network: others adopt it by
//! `-o neutron.net.uuid`/`neutron.net.name`, on this host or on other hosts. Each carries its own
//! tags on it and removes only those. The one that made the network, when it leaves first, marks
//! it [`TAG_NET_MADE`] so that the last one out deletes it. Every user re-reads the tags after
//! removing its own, so that two leaving at once cannot both leave it behind.

use std::collections::BTreeSet;

use kuryr_plugin_api::network::DeleteNetworkRequest;
use kuryr_types::DockerId;

use super::create_network::adoption_tags;
use super::deferred::Teardown;
use super::port_options::is_port_settings_tag_of;
use super::KuryrDriver;
use crate::constants::*;
use crate::error::{teardown_result, DriverError, Result};
use crate::neutron::{Kind, Net, SubnetQuery};
use crate::tags;

/// Whether Docker networks other than `ours` still use the network.
fn used_by_others(net: &Net, ours: &[String]) -> bool {
    net.tags
        .iter()
        .any(|t| tags::is_docker_network_tag(t) && !ours.contains(t))
}

impl KuryrDriver {
    pub async fn delete_network(&self, req: &DeleteNetworkRequest) -> Result<()> {
        let result = self.delete_network_now(req).await;
        self.defer_if_unavailable(result, || Teardown::Network(req.clone()))
    }

    pub(crate) async fn delete_network_now(&self, req: &DeleteNetworkRequest) -> Result<()> {
        let network_id = &req.network_id;
        let _guard = self.locks.lock(&format!("net:{network_id}")).await;
        let nets = self.current_networks_of(network_id).await?;
        if nets.is_empty() {
            tracing::debug!(docker = %network_id, "no neutron network: already deleted");
            self.networks().nets.remove(network_id);
            self.forget_create_network(network_id);
            return Ok(());
        }
        let mut errors = Vec::new();
        for net in nets {
            self.release_host_ports(&net, &mut errors).await;
            self.leave_network(network_id, net, &mut errors).await;
        }
        if errors.is_empty() {
            self.forget_create_network(network_id);
        }
        teardown_result(format!("delete network {network_id}"), errors)
    }

    /// The Neutron networks tagged for a Docker network, with Neutron's current tags, never
    /// remembered ones: another host's Kuryr may have adopted the network (or left it) since this
    /// daemon last looked.
    pub(super) async fn current_networks_of(&self, docker_net: &DockerId) -> Result<Vec<Net>> {
        self.nt
            .networks_by_tags(&tags::docker_id_tags(docker_net.as_str()))
            .await
    }

    /// Pooled ports, and reservations a killed daemon never answered (Docker released nothing
    /// for them), would keep Neutron from deleting the network. Only this host's: another
    /// host's pool serves its own Docker networks. A network this process made cannot hold an
    /// earlier process's reservations: no need to look.
    pub(super) async fn release_host_ports(&self, net: &Net, errors: &mut Vec<DriverError>) {
        if let Err(e) = self.ports.drain_network(&net.id).await {
            errors.push(e);
        }
        let made_here = self.networks().made_here.contains(&net.id);
        if !made_here {
            if let Err(e) = self.ports.delete_reservations_on(&net.id).await {
                errors.push(e);
            }
        }
    }

    async fn leave_network(
        &self,
        docker_net: &DockerId,
        mut net: Net,
        errors: &mut Vec<DriverError>,
    ) {
        if tags::has(&net.tags, TAG_NET_SWARM) {
            // A swarm network: this node's last task left, the network stays for the others
            // (and for this node's next task) until the manager's FreeNetwork.
            tracing::info!(net = %net.id, "left swarm network");
            self.forget_network(docker_net, &net.id);
            return;
        }
        let mut ours = adoption_tags(docker_net);
        ours.extend(
            net.tags
                .iter()
                .filter(|t| is_port_settings_tag_of(docker_net, t))
                .cloned(),
        );
        let adopted = tags::has(&net.tags, &tags::existing_net_tag(docker_net.as_str()));
        let made = !adopted || tags::has(&net.tags, TAG_NET_MADE);
        if used_by_others(&net, &ours) {
            if made && !tags::has(&net.tags, TAG_NET_MADE) {
                if let Err(e) = self.nt.add_tag(Kind::Network, &net.id, TAG_NET_MADE).await {
                    // Without the mark the last user would take it for an adopted network and
                    // leave it: keep our tags, so that the next attempt can try again.
                    errors.push(e);
                    return;
                }
            }
            self.remove_our_tags(&net, &ours, errors).await;
            // Those others may have left while we did: whoever sees no user left finishes.
            match self.nt.network(&net.id).await {
                Ok(Some(now)) if used_by_others(&now, &ours) => {
                    tracing::info!(net = %net.id, "left network to the Docker networks still using it");
                    self.forget_network(docker_net, &net.id);
                    return;
                }
                Ok(Some(now)) => net = now,
                Ok(None) => {
                    self.forget_network(docker_net, &net.id);
                    return;
                }
                Err(e) => {
                    errors.push(e);
                    return;
                }
            }
        }
        self.finish_network(docker_net, &net, made, &ours, errors)
            .await;
    }

    /// This Docker network was the network's last user: delete what Kuryr made.
    pub(super) async fn finish_network(
        &self,
        docker_net: &DockerId,
        net: &Net,
        made: bool,
        ours: &[String],
        errors: &mut Vec<DriverError>,
    ) {
        let remembered = self.networks().subnets_on(net);
        let subnets = match remembered {
            Some(list) => list,
            None => match self.nt.subnets(&SubnetQuery::on_network(&net.id)).await {
                Ok(list) => list,
                Err(e) => {
                    errors.push(e);
                    return;
                }
            },
        };
        let kuryr_subnets: Vec<_> = subnets
            .iter()
            .filter(|s| s.name.starts_with(SUBNET_NAME_PREFIX))
            .collect();
        let pools: BTreeSet<String> = kuryr_subnets
            .iter()
            .filter_map(|s| s.subnetpool_id.clone())
            .collect();
        let mut removed = true;
        if made {
            let mut deleted = self.nt.delete_network(&net.id).await;
            if matches!(&deleted, Err(e) if e.is_conflict()) {
                // Neutron was slow: a pooled port whose recycling outlasted the drain, or the
                // port of a departed endpoint whose release failed, still holds the network.
                // Docker has no endpoint on it any more: this host's such ports go, then the
                // network.
                let found = match self.ports.delete_leftover_ports(&net.id).await {
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(e);
                        0
                    }
                };
                if found > 0 {
                    deleted = self.nt.delete_network(&net.id).await;
                }
            }
            match deleted {
                Ok(()) => tracing::info!(net = %net.id, "deleted network"),
                Err(e) => {
                    removed = false;
                    errors.push(e);
                }
            }
        } else {
            for s in &kuryr_subnets {
                if let Err(e) = self.nt.delete_subnet(&s.id).await {
                    removed = false;
                    errors.push(e);
                }
            }
            self.remove_our_tags(net, ours, errors).await;
            tracing::info!(net = %net.id, "released adopted network");
        }
        if removed {
            for pool_id in pools {
                match self.known_pool(&pool_id).await {
                    Ok(Some(p)) if self.is_kuryr_pool(&p) => {
                        if let Err(e) = self.delete_pool_if_unused(&p.id).await {
                            self.defer_part(&e, Teardown::UnusedKuryrPool(p.id.clone()));
                            errors.push(e);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.defer_part(&e, Teardown::UnusedKuryrPool(pool_id.clone()));
                        errors.push(e);
                    }
                }
            }
        }
        self.forget_network(docker_net, &net.id);
    }

    /// Only this Docker network's tags go, one by one: the owner's list (and other Docker
    /// networks' tags on it) are never rewritten.
    async fn remove_our_tags(&self, net: &Net, ours: &[String], errors: &mut Vec<DriverError>) {
        for t in ours {
            if net.tags.contains(t) {
                if let Err(e) = self.nt.remove_tag(Kind::Network, &net.id, t).await {
                    errors.push(e);
                }
            }
        }
    }
}
