//! NetworkDriver.CreateNetwork: find (by tags), adopt (`neutron.net.*`) or create the Neutron
//! network, then its subnets. A replay finds everything and changes nothing; a failure unwinds
//! what this call made.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::PortMode;
use crate::constants::*;
use crate::driver::{parse_address, parse_network_cidr, validate_docker_id, KuryrDriver, PoolRef};
use crate::error::{with_rollback, DriverError, Result};
use crate::neutron::{Kind, Net, NewSubnet, SubnetQuery};
use crate::options::{parse_bool, FamilyOptions};
use crate::tags;
use crate::undo::Undo;

/// One entry of Docker's IPv4Data / IPv6Data (internal form).
#[derive(Debug, Clone, Default)]
pub struct IpamData {
    /// The pool CIDR as Docker sent it.
    pub pool: String,
    /// `<ip>/<len>` or empty.
    pub gateway: String,
    /// name → `<ip>/<len>`.
    pub aux_addresses: HashMap<String, String>,
}

/// CreateNetwork's inputs (internal form).
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub network_id: String,
    pub ipv4: Vec<IpamData>,
    pub ipv6: Vec<IpamData>,
    /// `-o` options (`com.docker.network.generic`).
    pub generic: HashMap<String, String>,
}

struct Wanted {
    pool_text: String,
    cidr: IpNet,
    gateway: Option<IpAddr>,
    aux: Vec<IpAddr>,
    opts: FamilyOptions,
}

impl KuryrDriver {
    pub async fn create_network(&self, req: &NetworkRequest) -> Result<()> {
        validate_docker_id("network id", &req.network_id)?;
        // Validate everything before touching Neutron.
        let mut wanted = Vec::new();
        for (v6, list) in [(false, &req.ipv4), (true, &req.ipv6)] {
            let opts = FamilyOptions::from_map(&req.generic, v6)?;
            for d in list {
                let cidr = parse_network_cidr("pool", &d.pool)?;
                let gateway = match d.gateway.trim() {
                    "" => None,
                    g => Some(parse_address("gateway", g)?),
                };
                let aux = d
                    .aux_addresses
                    .values()
                    .map(|a| parse_address("aux address", a))
                    .collect::<Result<Vec<_>>>()?;
                wanted.push(Wanted {
                    pool_text: d.pool.trim().to_string(),
                    cidr,
                    gateway,
                    aux,
                    opts: opts.clone(),
                });
            }
        }
        let shared = match req.generic.get(OPT_NET_SHARED) {
            Some(v) => Some(parse_bool(OPT_NET_SHARED, v)?),
            None => None,
        };

        let _guard = self.locks.lock(&format!("net:{}", req.network_id)).await;
        let mut undo = Undo::new();
        match self
            .create_network_steps(req, &wanted, shared, &mut undo)
            .await
        {
            Ok(net) => {
                undo.commit();
                self.cache().net_subnets.remove(&net.id);
                self.cache().nets.insert(req.network_id.clone(), net);
                Ok(())
            }
            Err(e) => {
                let errors = undo.unwind().await;
                self.cache().nets.remove(&req.network_id);
                Err(with_rollback(e, errors))
            }
        }
    }

    async fn create_network_steps(
        &self,
        req: &NetworkRequest,
        wanted: &[Wanted],
        shared: Option<bool>,
        undo: &mut Undo,
    ) -> Result<Net> {
        let id_tags = tags::docker_id_tags(&req.network_id);
        let known = self.nt.networks_by_tags(&id_tags).await?;
        if known.len() > 1 {
            return Err(DriverError::Conflict(format!(
                "several neutron networks carry the tags of docker network {}",
                req.network_id
            )));
        }
        let (net, fresh) = if let Some(net) = known.into_iter().next() {
            tracing::debug!(net = %net.id, "network already exists (replay)");
            (net, false)
        } else if let Some(net) = self.adoptable_network(&req.generic).await? {
            if let Some(shared) = shared {
                if shared != net.shared {
                    return Err(DriverError::Conflict(format!(
                        "network {} is {}shared but {OPT_NET_SHARED}={shared} was given",
                        net.id,
                        if net.shared { "" } else { "not " }
                    )));
                }
            }
            let mut new_tags = net.tags.clone();
            for t in id_tags
                .iter()
                .cloned()
                .chain([tags::existing_net_tag(&req.network_id)])
            {
                if !new_tags.contains(&t) {
                    new_tags.push(t);
                }
            }
            self.nt.set_tags(Kind::Network, &net.id, &new_tags).await?;
            let (nt, id, old) = (self.nt.clone(), net.id.clone(), net.tags.clone());
            undo.push(format!("untag network {id}"), move || async move {
                nt.set_tags(Kind::Network, &id, &old).await
            });
            tracing::info!(net = %net.id, docker = %req.network_id, "adopted existing network");
            (
                Net {
                    tags: new_tags,
                    ..net
                },
                false,
            )
        } else {
            let net = self
                .nt
                .create_network(&network_name(&req.network_id), shared.unwrap_or(false))
                .await?;
            let (nt, id) = (self.nt.clone(), net.id.clone());
            undo.push(format!("delete network {id}"), move || async move {
                nt.delete_network(&id).await
            });
            self.nt.set_tags(Kind::Network, &net.id, &id_tags).await?;
            tracing::info!(net = %net.id, docker = %req.network_id, "created network");
            (
                Net {
                    tags: id_tags.clone(),
                    ..net
                },
                true,
            )
        };

        for w in wanted {
            self.ensure_subnet(&net, fresh, w, undo).await?;
        }
        Ok(net)
    }

    /// The network named by `neutron.net.uuid` / `neutron.net.name`, if given.
    async fn adoptable_network(&self, generic: &HashMap<String, String>) -> Result<Option<Net>> {
        let get = |k: &str| {
            generic
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(id) = get(OPT_NET_UUID) {
            return self.nt.network(&id).await?.map(Some).ok_or_else(|| {
                DriverError::NotFound(format!("specified network id {id} does not exist"))
            });
        }
        if let Some(name) = get(OPT_NET_NAME) {
            let mut nets = self.nt.networks_by_name(&name).await?;
            return match nets.len() {
                0 => Err(DriverError::NotFound(format!(
                    "specified network name {name} does not exist"
                ))),
                1 => Ok(nets.pop()),
                n => Err(DriverError::Conflict(format!(
                    "{n} networks are named {name}"
                ))),
            };
        }
        // Inside a VM (macvlan mode) containers can only reach the VM's own network, so that is
        // the default, adopted like a named one and never deleted (as the Python original does).
        if matches!(self.cfg.port_mode, PortMode::Nested { .. }) {
            let vm = self.vm_port().await?;
            return self
                .nt
                .network(&vm.network_id)
                .await?
                .map(Some)
                .ok_or_else(|| {
                    DriverError::NotFound(format!(
                        "network {} of the vm port {} does not exist",
                        vm.network_id, vm.id
                    ))
                });
        }
        Ok(None)
    }

    async fn ensure_subnet(
        &self,
        net: &Net,
        fresh: bool,
        w: &Wanted,
        undo: &mut Undo,
    ) -> Result<()> {
        let pool_id = self.pool_for_network(w).await?;
        let existing = if fresh {
            None
        } else {
            self.nt
                .subnets(&SubnetQuery {
                    network_id: Some(net.id.clone()),
                    cidr: Some(w.cidr),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .next()
        };
        let subnet = match existing {
            Some(s) => {
                // An adopted subnet is tagged with the pool id so RequestAddress finds it even
                // when several networks have the same CIDR.
                if let Some(pool_id) = &pool_id {
                    if s.subnetpool_id.as_ref() != Some(pool_id) && !tags::has(&s.tags, pool_id) {
                        self.nt.add_tag(Kind::Subnet, &s.id, pool_id).await?;
                        let (nt, id, tag) = (self.nt.clone(), s.id.clone(), pool_id.clone());
                        undo.push(format!("untag subnet {id}"), move || async move {
                            nt.remove_tag(Kind::Subnet, &id, &tag).await
                        });
                    }
                }
                s
            }
            None => {
                let s = self
                    .nt
                    .create_subnet(&NewSubnet {
                        name: subnet_name(&w.pool_text),
                        network_id: net.id.clone(),
                        cidr: w.cidr,
                        gateway_ip: w.gateway,
                        subnetpool_id: pool_id.clone(),
                        enable_dhcp: self.cfg.enable_dhcp,
                    })
                    .await?;
                let (nt, id) = (self.nt.clone(), s.id.clone());
                undo.push(format!("delete subnet {id}"), move || async move {
                    nt.delete_subnet(&id).await
                });
                tracing::info!(subnet = %s.id, cidr = %s.cidr, "created subnet");
                s
            }
        };
        for a in &w.aux {
            let (_, created) = self.reserve_address(&subnet, Some(*a), None).await?;
            // Only ports this call created are undone (an adopted/replayed one is kept).
            if let Some(port_id) = created {
                let nt = self.nt.clone();
                undo.push(format!("delete port {port_id}"), move || async move {
                    nt.delete_port(&port_id).await
                });
            }
        }
        let mut c = self.cache();
        if let Some(r) = c.requested.remove(&w.cidr) {
            // RequestAddress for containers now finds the subnet without asking Neutron.
            c.pool_subnets.insert(r.pool.to_string(), subnet.clone());
            if let PoolRef::Carved { pool_id, cidr } = &r.pool {
                c.carved.remove(&(pool_id.clone(), *cidr));
            }
        }
        if let Some(pool_id) = &pool_id {
            for r in c.requested.values_mut() {
                if r.pool.pool_id() == pool_id {
                    r.fresh = false;
                }
            }
        }
        Ok(())
    }

    /// Which subnetpool the subnet for a Docker pool comes from: what RequestPool answered
    /// (remembered), else the pool the options name, `kuryrPool-<cidr>`, or the default pool
    /// containing the CIDR. `None` when the network's IPAM driver is not Kuryr.
    async fn pool_for_network(&self, w: &Wanted) -> Result<Option<String>> {
        if let Some(r) = self.cache().requested.get(&w.cidr) {
            return Ok(Some(r.pool.pool_id().to_string()));
        }
        if w.opts.names_pool() {
            let pool = self.named_pool(&w.opts).await?;
            if pool.prefixes.iter().any(|p| p.contains(&w.cidr)) {
                return Ok(Some(pool.id));
            }
        }
        let subnet_id = self.option_subnet_id(&w.opts).await?;
        let name = subnetpool_name(&self.cfg.subnetpool_name_prefix, &w.cidr.to_string());
        let with_tags: Vec<String> = subnet_id.into_iter().collect();
        if let Some(p) = self
            .nt
            .pools_by_name(&name, &with_tags)
            .await?
            .into_iter()
            .next()
        {
            return Ok(Some(p.id));
        }
        let default = if w.cidr.addr().is_ipv6() {
            &self.cfg.default_subnetpool_v6
        } else {
            &self.cfg.default_subnetpool_v4
        };
        if let Some(p) = self
            .nt
            .pools_by_name(default, &[])
            .await?
            .into_iter()
            .next()
        {
            if p.prefixes.iter().any(|x| x.contains(&w.cidr)) {
                return Ok(Some(p.id));
            }
        }
        Ok(None)
    }
}
