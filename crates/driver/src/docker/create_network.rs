//! NetworkDriver.CreateNetwork: find (by tags), adopt (`neutron.net.*`) or create the Neutron
//! network, then its subnets. A replay finds everything and changes nothing; a failure unwinds
//! what this call made. The find is skipped when RequestPool has just made the network's pools.

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;
use kuryr_plugin_api::network::CreateNetworkRequest;
use kuryr_plugin_api::DockerId;
use kuryr_types::PoolRef;

use super::options::{FamilyOptions, NeutronOptions};
use super::port_options::{
    check_mtu, internal_tag, mtu_tag, port_settings_tags, wanted_mtu, PortOptions,
};
use super::{check_network_cidr, check_shared, KuryrDriver};
use crate::constants::*;
use crate::core::AddressFor;
use crate::error::{with_rollback, DriverError, Result};
use crate::neutron::{Kind, Net, NewSubnet, Subnet, SubnetQuery};
use crate::tags;
use crate::undo::Undo;

/// One subnet the network should have (from Docker's IPv4Data / IPv6Data).
struct Wanted {
    cidr: IpNet,
    gateway: Option<IpAddr>,
    aux: Vec<IpAddr>,
    opts: FamilyOptions,
}

/// How many of the network's Docker pools are of `cidr`'s IP version.
fn family_count(wanted: &[Wanted], cidr: &IpNet) -> usize {
    let v6 = cidr.addr().is_ipv6();
    wanted
        .iter()
        .filter(|w| w.cidr.addr().is_ipv6() == v6)
        .count()
}

/// What CreateNetwork leaves in Neutron, remembered once the call succeeded.
struct Made {
    net: Net,
    /// The network was created by this call (so `subnets` are all it has).
    fresh: bool,
    /// The subnet for each wanted entry, in order, and the pool it serves (if Kuryr's IPAM).
    subnets: Vec<(Subnet, Option<String>)>,
}

impl KuryrDriver {
    pub async fn create_network(&self, req: &CreateNetworkRequest) -> Result<()> {
        // Validate everything before touching Neutron.
        let generic = req.options.generic().map_err(DriverError::InvalidRequest)?;
        let opts = NeutronOptions::from_wire(&generic)?;
        let port_opts = PortOptions::network_from_wire(&generic)?;
        let mtu = wanted_mtu(&generic)?;
        let internal = req
            .options
            .get_typed::<bool>(kuryr_plugin_api::keys::INTERNAL)
            .ok()
            .flatten()
            == Some(true);
        if internal {
            // Join answers no gateway, as Docker's bridge driver gives none; what else reaches
            // the network is Neutron's (its routers), not something Kuryr can close.
            tracing::warn!(docker = %req.network_id, "--internal: no default route through this network; reaching beyond it depends on Neutron's routers");
        }
        let mut wanted = Vec::new();
        for (v6, list) in [(false, &req.ipv4_data), (true, &req.ipv6_data)] {
            for d in list {
                wanted.push(Wanted {
                    cidr: check_network_cidr("pool", d.pool)?,
                    gateway: d.gateway.map(|g| g.addr()),
                    aux: d.aux_addresses.values().map(|a| a.addr()).collect(),
                    opts: opts.family(v6).clone(),
                });
            }
        }

        // Groups named by the options must exist (looked up before anything is made).
        let mut settings_tags = if port_opts.is_empty() {
            Vec::new()
        } else {
            let s = self.resolve_port_options(&port_opts).await?;
            port_settings_tags(&req.network_id, &s)
        };
        if internal {
            settings_tags.push(internal_tag(&req.network_id));
        }

        let _guard = self.locks.lock(&format!("net:{}", req.network_id)).await;
        self.note_create_network(req);
        let mut undo = Undo::new();
        match self
            .create_network_steps(
                &req.network_id,
                &opts,
                &settings_tags,
                mtu,
                &wanted,
                &mut undo,
            )
            .await
        {
            Ok(made) => {
                undo.commit();
                self.remember_network(&req.network_id, &wanted, made);
                Ok(())
            }
            Err(e) => {
                let errors = undo.unwind().await;
                if errors.is_empty() {
                    self.forget_create_network(&req.network_id);
                }
                self.networks().nets.remove(&req.network_id);
                // Something may be left (a failed undo, a timed-out request): a retry looks.
                let mut c = self.ipam();
                for w in &wanted {
                    if let Some(r) = c.requested.get_mut(&w.cidr) {
                        r.fresh = false;
                    }
                }
                Err(with_rollback(e, errors))
            }
        }
    }

    /// What RequestAddress, ReleasePool, DeleteNetwork and Join then need without asking.
    fn remember_network(&self, network_id: &DockerId, wanted: &[Wanted], made: Made) {
        let Made {
            mut net,
            fresh,
            subnets,
        } = made;
        let mut by_pool = Vec::new();
        {
            let mut c = self.ipam();
            for (w, (s, pool_id)) in wanted.iter().zip(&subnets) {
                if let Some(r) = c.requested.remove(&w.cidr) {
                    if let PoolRef::Carved { pool_id, cidr } = &r.pool {
                        c.carved.remove(&(pool_id.clone(), *cidr));
                    }
                    by_pool.push((r.pool, s.clone()));
                }
                // A pool one network now uses is no longer fresh for another.
                if let Some(pool_id) = pool_id {
                    for r in c.requested.values_mut() {
                        if r.pool.pool_id() == pool_id {
                            r.fresh = false;
                        }
                    }
                }
            }
        }
        let subnets: Vec<Subnet> = subnets.into_iter().map(|(s, _)| s).collect();
        for s in &subnets {
            if !net.subnets.contains(&s.id) {
                net.subnets.push(s.id.clone());
            }
        }
        let mut c = self.networks();
        for (pool, s) in by_pool {
            // RequestAddress for containers now finds the subnet without asking Neutron.
            c.pool_subnets.insert(pool.to_string(), s);
        }
        if fresh {
            // A network just made has exactly these subnets, as Neutron returned them.
            c.made_here.insert(net.id.clone());
            c.subnets_of
                .insert(net.id.clone(), (Instant::now(), subnets));
        } else {
            c.subnets_of.remove(&net.id);
        }
        c.nets.insert(network_id.clone(), net);
    }

    async fn create_network_steps(
        &self,
        network_id: &DockerId,
        opts: &NeutronOptions,
        settings_tags: &[String],
        mtu: Option<u32>,
        wanted: &[Wanted],
        undo: &mut Undo,
    ) -> Result<Made> {
        let shared = opts.shared;
        let id_tags = tags::docker_id_tags(network_id.as_str());
        let known = if self.is_first_create(wanted) {
            Vec::new()
        } else {
            self.nt.networks_by_tags(&id_tags).await?
        };
        if known.len() > 1 {
            return Err(DriverError::Conflict(format!(
                "several neutron networks carry the tags of docker network {network_id}"
            )));
        }
        let (net, fresh) = if let Some(net) = known.into_iter().next() {
            tracing::debug!(net = %net.id, "network already exists (replay)");
            (net, false)
        } else if let Some(net) = self.adoptable_network(opts).await? {
            check_shared("network", &net.id, net.shared, shared)?;
            let ours: Vec<String> = adoption_tags(network_id)
                .into_iter()
                .chain(settings_tags.iter().cloned())
                .filter(|t| !net.tags.contains(t))
                .collect();
            // Only Kuryr's tags are added (and taken back), the owner's list is never rewritten.
            // Pushed first: a failure half-way leaves no tag behind.
            let (nt, id, added) = (self.nt.clone(), net.id.clone(), ours.clone());
            undo.push(format!("untag network {id}"), move || async move {
                let mut r = Ok(());
                for t in &added {
                    if let Err(e) = nt.remove_tag(Kind::Network, &id, t).await {
                        r = Err(e);
                    }
                }
                r
            });
            self.nt.add_tags(Kind::Network, &net.id, &ours).await?;
            tracing::info!(net = %net.id, docker = %network_id, "adopted existing network");
            let mut net = net;
            net.tags.extend(ours);
            (net, false)
        } else {
            let net = self
                .nt
                .create_network(
                    &network_name(network_id.as_str()),
                    shared.unwrap_or(false),
                    &[id_tags.as_slice(), settings_tags].concat(),
                )
                .await?;
            let (nt, id) = (self.nt.clone(), net.id.clone());
            undo.push(format!("delete network {id}"), move || async move {
                nt.delete_network(&id).await
            });
            tracing::info!(net = %net.id, docker = %network_id, "created network");
            (net, true)
        };

        let mut net = net;
        if let Some(m) = mtu {
            // Known once Neutron made (or we found) the network.
            check_mtu(m, &net)?;
            let tag = mtu_tag(network_id, m);
            if !net.tags.contains(&tag) {
                self.nt.add_tag(Kind::Network, &net.id, &tag).await?;
                let (nt, id, t) = (self.nt.clone(), net.id.clone(), tag.clone());
                undo.push(format!("untag network {id}"), move || async move {
                    nt.remove_tag(Kind::Network, &id, &t).await
                });
                net.tags.push(tag);
            }
        }
        let mut subnets = Vec::with_capacity(wanted.len());
        // The network's subnets so far (none on a network this call made).
        let mut on_network = if fresh {
            Vec::new()
        } else {
            self.nt.subnets(&SubnetQuery::on_network(&net.id)).await?
        };
        for w in wanted {
            let made = self
                .ensure_subnet(&net, &on_network, wanted, w, undo)
                .await?;
            if !on_network.iter().any(|s| s.id == made.0.id) {
                on_network.push(made.0.clone());
            }
            subnets.push(made);
        }
        Ok(Made {
            net,
            fresh,
            subnets,
        })
    }

    /// Whether this CreateNetwork is the first for its Docker network, known without asking
    /// Neutron: each of its pools was made (or a range reserved) by this daemon's RequestPool for
    /// the network being created, and no network has used it since. A replay of CreateNetwork
    /// would find its pools in use, or not remembered (after a restart). Only for local scope:
    /// with global scope other hosts create the network from pools this host's IPAM made.
    fn is_first_create(&self, wanted: &[Wanted]) -> bool {
        if self.cfg.capability_scope == "global" || wanted.is_empty() {
            return false;
        }
        let c = self.ipam();
        wanted
            .iter()
            .all(|w| c.requested.get(&w.cidr).is_some_and(|r| r.fresh))
    }

    /// The network named by `neutron.net.uuid` / `neutron.net.name`, if given.
    async fn adoptable_network(&self, opts: &NeutronOptions) -> Result<Option<Net>> {
        if let Some(id) = &opts.net_uuid {
            let net = self.nt.network(id).await?.ok_or_else(|| {
                DriverError::NotFound(format!("specified network id {id} does not exist"))
            })?;
            self.nt
                .check_visible("network", id, &net.project_id, net.shared)
                .await?;
            return Ok(Some(net));
        }
        if let Some(name) = &opts.net_name {
            let mut nets = self.nt.networks_by_name(name, None).await?;
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
        if let Some(vm) = self.ports.port_driver.required_network().await? {
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
        on_network: &[Subnet],
        wanted: &[Wanted],
        w: &Wanted,
        undo: &mut Undo,
    ) -> Result<(Subnet, Option<String>)> {
        let pool_id = self.pool_for_network(w).await?;
        let range = self.ipam().requested.get(&w.cidr).and_then(|r| r.range);
        let existing = on_network.iter().find(|s| s.cidr == w.cidr).cloned();
        // Neutron wants a network's subnets of one IP version all from one subnetpool, or all
        // outside any. Each Docker pool has its own subnetpool, so with two `--subnet`s of a
        // family, or beside a pool-less subnet already there, the subnets are made outside any
        // pool and tagged with their pool id so that RequestAddress finds them (as an adopted
        // subnet is).
        let same_family = |c: &IpNet| c.addr().is_ipv6() == w.cidr.addr().is_ipv6();
        let outside_pool = pool_id.is_some()
            && (family_count(wanted, &w.cidr) > 1
                || on_network
                    .iter()
                    .any(|s| same_family(&s.cidr) && s.subnetpool_id.is_none()));
        let subnet = match existing {
            Some(mut s) => {
                // An adopted subnet is tagged with the pool id so RequestAddress finds it even
                // when several networks have the same CIDR.
                if let Some(pool_id) = &pool_id {
                    if s.subnetpool_id.as_ref() != Some(pool_id) && !tags::has(&s.tags, pool_id) {
                        self.nt.add_tag(Kind::Subnet, &s.id, pool_id).await?;
                        let (nt, id, tag) = (self.nt.clone(), s.id.clone(), pool_id.clone());
                        undo.push(format!("untag subnet {id}"), move || async move {
                            nt.remove_tag(Kind::Subnet, &id, &tag).await
                        });
                        s.tags.push(pool_id.clone());
                    }
                }
                s
            }
            None => {
                let mut s = self
                    .nt
                    .create_subnet(&NewSubnet {
                        name: subnet_name(&w.cidr.to_string()),
                        network_id: net.id.clone(),
                        cidr: w.cidr,
                        gateway_ip: w.gateway,
                        subnetpool_id: pool_id.clone().filter(|_| !outside_pool),
                        enable_dhcp: self.cfg.enable_dhcp,
                        // Docker's own IPAM picks the addresses (no Kuryr pool): keep Neutron's
                        // ports at the top, out of its way.
                        allocation_pools: match pool_id {
                            None => top_range(w.cidr, w.gateway).into_iter().collect(),
                            Some(_) => allocation_pools(w.cidr, range, w.gateway, &w.aux),
                        },
                    })
                    .await?;
                let (nt, id) = (self.nt.clone(), s.id.clone());
                undo.push(format!("delete subnet {id}"), move || async move {
                    nt.delete_subnet(&id).await
                });
                tracing::info!(subnet = %s.id, cidr = %s.cidr, "created subnet");
                if let Some(pool_id) = pool_id.as_ref().filter(|_| outside_pool) {
                    self.nt.add_tag(Kind::Subnet, &s.id, pool_id).await?;
                    s.tags.push(pool_id.clone());
                }
                s
            }
        };
        for a in &w.aux {
            let (_, created) = self
                .ports
                .reserve(&subnet, Some(*a), AddressFor::Aux)
                .await?;
            // Only ports this call created are undone (an adopted/replayed one is kept).
            if let Some(port_id) = created {
                let nt = self.nt.clone();
                undo.push(format!("delete port {port_id}"), move || async move {
                    nt.delete_port(&port_id).await
                });
            }
        }
        Ok((subnet, pool_id))
    }

    /// Which subnetpool the subnet for a Docker pool comes from: what RequestPool answered
    /// (remembered), else the pool the options name, `kuryrPool-<cidr>`, or the default pool
    /// containing the CIDR. `None` when the network's IPAM driver is not Kuryr.
    async fn pool_for_network(&self, w: &Wanted) -> Result<Option<String>> {
        if let Some(r) = self.ipam().requested.get(&w.cidr) {
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

/// The tags an adopted network carries for the Docker network `id`: its id's, and the mark that
/// the network is not Kuryr's to delete.
pub(super) fn adoption_tags(id: &DockerId) -> Vec<String> {
    let mut t = tags::docker_id_tags(id.as_str());
    t.push(tags::existing_net_tag(id.as_str()));
    t
}

/// Where Neutron may allocate on a subnet Kuryr's IPAM serves: Docker's `--ip-range` (else the
/// whole subnet) without the gateway and the `--aux-address`es, so that no port Neutron makes for
/// itself (DHCP, metadata) can take an address Docker reserved. Empty (Neutron's default) when
/// there is no range and no aux address.
fn allocation_pools(
    cidr: IpNet,
    range: Option<IpNet>,
    gateway: Option<IpAddr>,
    aux: &[IpAddr],
) -> Vec<(IpAddr, IpAddr)> {
    if range.is_none() && aux.is_empty() {
        return Vec::new();
    }
    let v4 = cidr.addr().is_ipv4();
    let (first_host, last_host) = hosts(cidr);
    let span = range.unwrap_or(cidr);
    let (mut lo, hi) = (
        num(span.network()).max(first_host),
        num(span.broadcast()).min(last_host),
    );
    let mut taken: Vec<u128> = gateway.iter().chain(aux).map(|a| num(*a)).collect();
    taken.sort_unstable();
    let mut pools = Vec::new();
    for t in taken {
        if t < lo || t > hi {
            continue;
        }
        if t > lo {
            pools.push((ip_of(lo, v4), ip_of(t - 1, v4)));
        }
        lo = t + 1;
    }
    if lo <= hi {
        pools.push((ip_of(lo, v4), ip_of(hi, v4)));
    }
    pools
}

/// The last [`NEUTRON_OWN_ADDRESSES`] usable addresses of `cidr` below any gateway there; `None`
/// for a subnet too small to spare them.
fn top_range(cidr: IpNet, gateway: Option<IpAddr>) -> Option<(IpAddr, IpAddr)> {
    let n = u128::from(NEUTRON_OWN_ADDRESSES);
    let size = (num(cidr.broadcast()) - num(cidr.network())).checked_add(1)?;
    if size < 4 * n {
        return None;
    }
    let v4 = cidr.addr().is_ipv4();
    let (_, mut end) = hosts(cidr);
    if let Some(g) = gateway.map(num).filter(|g| *g > end - n && *g <= end) {
        end = g - 1;
    }
    Some((ip_of(end + 1 - n, v4), ip_of(end, v4)))
}

/// The subnet's first and last host as numbers: not its network address, nor IPv4's broadcast.
fn hosts(cidr: IpNet) -> (u128, u128) {
    let v4 = u128::from(cidr.addr().is_ipv4());
    (num(cidr.network()) + 1, num(cidr.broadcast()) - v4)
}

fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn ip_of(x: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4((x as u32).into())
    } else {
        IpAddr::V6(x.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allocation_pools_are_the_range_without_gateway_and_aux() {
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [&'a str],
            &'a [(&'a str, &'a str)],
        );
        let cases: &[Case] = &[
            // Gateway outside the range: the whole range.
            (
                "10.1.4.0/24",
                Some("10.1.4.128/28"),
                Some("10.1.4.1"),
                &[],
                &[("10.1.4.128", "10.1.4.143")],
            ),
            // Aux addresses and a gateway inside: holes, at the edges or in the middle.
            (
                "10.1.5.0/24",
                None,
                Some("10.1.5.1"),
                &["10.1.5.3", "10.1.5.2", "10.1.5.254"],
                &[("10.1.5.4", "10.1.5.253")],
            ),
            (
                "10.1.6.0/24",
                None,
                Some("10.1.6.1"),
                &["10.1.6.9"],
                &[("10.1.6.2", "10.1.6.8"), ("10.1.6.10", "10.1.6.254")],
            ),
            // A range up to the subnet's broadcast stops before it.
            (
                "10.1.7.0/24",
                Some("10.1.7.128/25"),
                None,
                &[],
                &[("10.1.7.128", "10.1.7.254")],
            ),
            (
                "fd00:7::/64",
                Some("fd00:7::100/120"),
                Some("fd00:7::1"),
                &[],
                &[("fd00:7::100", "fd00:7::1ff")],
            ),
            // Nothing to narrow: Neutron's default.
            ("10.1.8.0/24", None, Some("10.1.8.1"), &[], &[]),
        ];
        for (cidr, range, gw, aux, want) in cases {
            let aux: Vec<IpAddr> = aux.iter().map(|a| ip(a)).collect();
            let got = allocation_pools(n(cidr), range.map(n), gw.map(ip), &aux);
            let want: Vec<_> = want.iter().map(|(a, b)| (ip(a), ip(b))).collect();
            assert_eq!(got, want, "{cidr} {range:?} {gw:?} {aux:?}");
        }
    }

    #[test]
    fn neutron_keeps_the_top_of_the_subnet() {
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(
            top_range(n("10.91.9.0/24"), Some(ip("10.91.9.1"))),
            Some((ip("10.91.9.251"), ip("10.91.9.254")))
        );
        // A gateway up there pushes the range below it.
        assert_eq!(
            top_range(n("10.91.9.0/24"), Some(ip("10.91.9.253"))),
            Some((ip("10.91.9.249"), ip("10.91.9.252")))
        );
        assert_eq!(
            top_range(n("fd00:1::/64"), None),
            Some((
                ip("fd00:1::ffff:ffff:ffff:fffc"),
                ip("fd00:1::ffff:ffff:ffff:ffff")
            ))
        );
        assert_eq!(top_range(n("10.0.0.0/29"), None), None);
    }
}
