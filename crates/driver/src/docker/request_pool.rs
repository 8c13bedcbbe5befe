//! IpamDriver.RequestPool: a Neutron subnetpool for a Docker pool.

use std::time::Instant;

use ipnet::IpNet;
use kuryr_plugin_api::ipam::{RequestPoolRequest, RequestPoolResponse};
use kuryr_plugin_api::PoolId;
use kuryr_types::PoolRef;

use super::options::{FamilyOptions, NeutronOptions};
use super::{check_network_cidr, check_shared, KuryrDriver, RequestedPool};
use crate::constants::*;
use crate::error::{DriverError, Result};
use crate::neutron::{Kind, Pool, SubnetQuery};
use crate::tags;

/// What RequestPool hands out: the PoolID and the pool's CIDR.
type PoolReply = (PoolRef, IpNet);

impl KuryrDriver {
    pub async fn request_pool(&self, req: &RequestPoolRequest) -> Result<RequestPoolResponse> {
        let (pool_ref, cidr) = self.pick_pool(req).await?;
        let pool_id: PoolId = pool_ref.to_string().parse().map_err(|e: String| {
            DriverError::Conflict(format!("pool id {pool_ref} cannot be sent to docker: {e}"))
        })?;
        Ok(RequestPoolResponse::new(pool_id, cidr))
    }

    async fn pick_pool(&self, req: &RequestPoolRequest) -> Result<PoolReply> {
        let all = NeutronOptions::from_wire(&req.options)?;
        let opts = all.family(req.v6);
        let Some(pool) = req.pool else {
            if let Some(sub) = req.sub_pool {
                return Err(DriverError::InvalidRequest(format!(
                    "sub-pool {sub} given without a pool"
                )));
            }
            return self.carve_from_shared_pool(req.v6, opts).await;
        };
        // As Docker's own IPAM: the subnet is the pool, `--ip-range` only narrows where
        // containers' addresses come from (the subnet's allocation pool), so a gateway outside
        // the range works and containers get the subnet's netmask.
        let cidr = check_network_cidr("pool", pool)?;
        if cidr.addr().is_ipv6() != req.v6 {
            return Err(DriverError::InvalidRequest(format!(
                "pool {cidr} is not an ipv{} cidr",
                if req.v6 { 6 } else { 4 }
            )));
        }
        let range = match req.sub_pool {
            Some(sub) => {
                let sub = check_network_cidr("sub-pool", sub)?;
                if !cidr.contains(&sub) {
                    return Err(DriverError::InvalidRequest(format!(
                        "sub-pool {sub} is not inside pool {cidr}"
                    )));
                }
                Some(sub)
            }
            None => None,
        };
        if self.cfg.ip_range_as_subnet {
            // The Python original's way: the range is the pool and the Neutron subnet (a
            // gateway outside it then fails, as there).
            if let Some(range) = range {
                return self.pool_for_cidr(range, opts, all.shared).await;
            }
        }
        let reply = self.pool_for_cidr(cidr, opts, all.shared).await?;
        if let Some(r) = self.ipam().requested.get_mut(&cidr) {
            r.range = range;
        }
        Ok(reply)
    }

    async fn pool_for_cidr(
        &self,
        cidr: IpNet,
        opts: &FamilyOptions,
        shared: Option<bool>,
    ) -> Result<PoolReply> {
        if opts.names_pool() {
            let pool = self.named_pool(opts).await?;
            if let Some(reply) = self.use_named_pool(&pool, cidr, shared).await? {
                return Ok(reply);
            }
            // The named pool does not cover the CIDR: a Kuryr pool for it, as the original.
        }
        let subnet_id = self.option_subnet_id(opts).await?;
        self.kuryr_pool(cidr, subnet_id, shared.unwrap_or(false))
            .await
    }

    /// The subnetpool named by `neutron.pool(.v6).uuid|name`.
    pub(crate) async fn named_pool(&self, opts: &FamilyOptions) -> Result<Pool> {
        if let Some(id) = &opts.pool_uuid {
            let pool = self.nt.pool(id).await?.ok_or_else(|| {
                DriverError::NotFound(format!("specified subnetpool id {id} does not exist"))
            })?;
            self.nt
                .check_visible("subnetpool", id, &pool.project_id, pool.shared)
                .await?;
            return Ok(pool);
        }
        let name = opts.pool_name.as_deref().unwrap_or_default();
        self.unique_pool_by_name(name, &[]).await?.ok_or_else(|| {
            DriverError::NotFound(format!("specified subnetpool name {name} does not exist"))
        })
    }

    pub(crate) async fn unique_pool_by_name(
        &self,
        name: &str,
        with_tags: &[String],
    ) -> Result<Option<Pool>> {
        let mut pools = self.nt.pools_by_name(name, with_tags).await?;
        match pools.len() {
            0 => Ok(None),
            1 => Ok(pools.pop()),
            n => Err(DriverError::Conflict(format!(
                "{n} subnetpools are named {name}"
            ))),
        }
    }

    /// The subnet id named by `neutron.subnet(.v6).uuid|name`, if any.
    pub(crate) async fn option_subnet_id(&self, opts: &FamilyOptions) -> Result<Option<String>> {
        if let Some(id) = &opts.subnet_uuid {
            return Ok(Some(id.clone()));
        }
        let Some(name) = &opts.subnet_name else {
            return Ok(None);
        };
        let subnets = self.nt.subnets(&SubnetQuery::named(name)).await?;
        match subnets.len() {
            0 => Err(DriverError::NotFound(format!(
                "specified subnet name {name} does not exist"
            ))),
            1 => Ok(Some(subnets[0].id.clone())),
            n => Err(DriverError::Conflict(format!(
                "{n} subnets are named {name}"
            ))),
        }
    }

    /// Uses an adopted pool for `cidr` if it covers it; tags it as existing.
    async fn use_named_pool(
        &self,
        pool: &Pool,
        cidr: IpNet,
        shared: Option<bool>,
    ) -> Result<Option<PoolReply>> {
        let pool_ref = if pool.prefixes.contains(&cidr) {
            check_shared("subnetpool", &pool.id, pool.shared, shared)?;
            PoolRef::Whole(pool.id.clone())
        } else if pool.prefixes.iter().any(|p| p.contains(&cidr)) {
            PoolRef::Carved {
                pool_id: pool.id.clone(),
                cidr,
            }
        } else {
            return Ok(None);
        };
        self.mark_pool_existing(pool).await?;
        self.remember_requested(cidr, pool_ref.clone(), false);
        Ok(Some((pool_ref, cidr)))
    }

    pub(crate) async fn mark_pool_existing(&self, pool: &Pool) -> Result<()> {
        let is_default = pool.name == self.cfg.default_subnetpool_v4
            || pool.name == self.cfg.default_subnetpool_v6;
        let mut pool = pool.clone();
        if !is_default && !tags::has(&pool.tags, TAG_SUBNETPOOL_EXISTING) {
            self.nt
                .add_tag(Kind::SubnetPool, &pool.id, TAG_SUBNETPOOL_EXISTING)
                .await?;
            pool.tags.push(TAG_SUBNETPOOL_EXISTING.to_string());
        }
        self.remember_pool(pool);
        Ok(())
    }

    /// Keeps what a pool is (its name and tags say whether Kuryr may delete it) for the
    /// ReleasePool and DeleteNetwork of the network it serves.
    pub(crate) fn remember_pool(&self, pool: Pool) {
        self.networks().pools.insert(pool.id.clone(), pool);
    }

    /// Finds or creates `kuryrPool-<cidr>` (tagged with the subnet id when a subnet was named).
    async fn kuryr_pool(
        &self,
        cidr: IpNet,
        subnet_id: Option<String>,
        shared: bool,
    ) -> Result<PoolReply> {
        let name = subnetpool_name(&self.cfg.subnetpool_name_prefix, &cidr.to_string());
        let with_tags: Vec<String> = subnet_id.iter().cloned().collect();
        let _guard = self.locks.lock(&format!("pool:{name}")).await;
        // Reusing an existing pool of that name is deliberate (the original's multi-host
        // sharing) and makes Docker's replays harmless.
        if let Some(pool) = self.unique_pool_by_name(&name, &with_tags).await? {
            let pool_ref = PoolRef::Whole(pool.id.clone());
            self.remember_pool(pool);
            self.remember_requested(cidr, pool_ref.clone(), false);
            return Ok((pool_ref, cidr));
        }
        // Tagged (with the subnet id) by the create itself: a pool whose tagging fails is
        // deleted again, not left for the look-up above to miss and make a second one.
        let pool = self
            .nt
            .create_pool(&name, &[cidr], cidr.prefix_len(), shared, &with_tags)
            .await?;
        tracing::info!(pool = %pool.id, %name, "created subnetpool");
        self.note_request_pool(&pool.id);
        let pool_ref = PoolRef::Whole(pool.id.clone());
        self.remember_pool(pool);
        self.remember_requested(cidr, pool_ref.clone(), true);
        Ok((pool_ref, cidr))
    }

    /// `Pool: ""`: a new range of the pool's default prefix length from the default (or named)
    /// pool, never the whole prefix; every call gets a different range (Docker re-asks when a
    /// range overlaps host routes).
    async fn carve_from_shared_pool(&self, v6: bool, opts: &FamilyOptions) -> Result<PoolReply> {
        let pool = if opts.names_pool() {
            let p = self.named_pool(opts).await?;
            self.mark_pool_existing(&p).await?;
            p
        } else {
            let name = if v6 {
                &self.cfg.default_subnetpool_v6
            } else {
                &self.cfg.default_subnetpool_v4
            };
            let p = self.unique_pool_by_name(name, &[]).await?.ok_or_else(|| {
                DriverError::NotFound(format!(
                    "default subnetpool {name} does not exist: create it or give --subnet"
                ))
            })?;
            self.remember_pool(p.clone());
            p
        };
        let _guard = self.locks.lock(&format!("carve:{}", pool.id)).await;
        let used: Vec<IpNet> = self
            .nt
            .subnets(&SubnetQuery::from_pool(&pool.id))
            .await?
            .into_iter()
            .map(|s| s.cidr)
            .collect();
        let cidr = {
            let mut c = self.ipam();
            c.expire_reservations();
            let reserved: Vec<IpNet> = c
                .carved
                .keys()
                .filter(|(id, _)| *id == pool.id)
                .map(|(_, n)| *n)
                .collect();
            let cidr = pick_free_range(&pool, &used, &reserved).ok_or_else(|| {
                DriverError::Conflict(format!(
                    "subnetpool {} ({}) has no free range left",
                    pool.name, pool.id
                ))
            })?;
            c.carved.insert((pool.id.clone(), cidr), Instant::now());
            cidr
        };
        let pool_ref = PoolRef::Carved {
            pool_id: pool.id.clone(),
            cidr,
        };
        self.remember_requested(cidr, pool_ref.clone(), true);
        tracing::info!(pool = %pool.id, %cidr, "reserved a range of a shared subnetpool");
        Ok((pool_ref, cidr))
    }

    pub(crate) fn remember_requested(&self, cidr: IpNet, pool: PoolRef, fresh: bool) {
        self.ipam().requested.insert(
            cidr,
            RequestedPool {
                pool,
                fresh,
                range: None,
            },
        );
    }
}

/// The first range of the pool's default prefix length that overlaps nothing used or reserved.
pub(crate) fn pick_free_range(pool: &Pool, used: &[IpNet], reserved: &[IpNet]) -> Option<IpNet> {
    let overlaps = |a: &IpNet, b: &IpNet| a.contains(&b.network()) || b.contains(&a.network());
    for prefix in &pool.prefixes {
        let len = pool
            .default_prefixlen
            .unwrap_or(if prefix.addr().is_ipv6() { 64 } else { 24 })
            .max(prefix.prefix_len());
        let Ok(mut candidates) = prefix.subnets(len) else {
            continue;
        };
        if let Some(free) =
            candidates.find(|c| !used.iter().chain(reserved).any(|u| overlaps(c, u)))
        {
            return Some(free);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(prefixes: &[&str], len: u8) -> Pool {
        Pool {
            id: "p".into(),
            name: "kuryr".into(),
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
            default_prefixlen: Some(len),
            ..Default::default()
        }
    }

    #[test]
    fn picks_first_free_range_of_default_length() {
        let p = pool(&["10.90.0.0/16"], 24);
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(pick_free_range(&p, &[], &[]), Some(n("10.90.0.0/24")));
        assert_eq!(
            pick_free_range(&p, &[n("10.90.0.0/24")], &[n("10.90.1.0/24")]),
            Some(n("10.90.2.0/24"))
        );
        // A bigger used subnet blocks everything inside it.
        assert_eq!(
            pick_free_range(&p, &[n("10.90.0.0/23")], &[]),
            Some(n("10.90.2.0/24"))
        );
        // Whole prefix used: nothing left.
        assert_eq!(pick_free_range(&p, &[n("10.90.0.0/16")], &[]), None);
        let p6 = pool(&["fd90::/48"], 64);
        assert_eq!(
            pick_free_range(&p6, &[n("fd90::/64")], &[]),
            Some(n("fd90:0:0:1::/64"))
        );
    }
}
