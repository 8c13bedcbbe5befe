//! IpamDriver.ReleasePool. Adopted and default pools are only untagged, never deleted; a Kuryr
//! pool is deleted once no subnet uses it (DeleteNetwork, which Docker calls after this, deletes
//! it when its network's subnet was still there). The pool and its subnet, when this daemon
//! remembers them, spare the look-ups.

use kuryr_plugin_api::ipam::ReleasePoolRequest;
use kuryr_types::PoolRef;

use super::deferred::Teardown;
use super::{pool_ref, KuryrDriver};
use crate::constants::*;
use crate::error::{teardown_result, Result};
use crate::neutron::{Kind, Pool, SubnetQuery};
use crate::tags;

impl KuryrDriver {
    pub async fn release_pool(&self, req: &ReleasePoolRequest) -> Result<()> {
        let result = self.release_pool_now(req).await;
        self.defer_if_unavailable(result, || Teardown::Pool(req.clone()))
    }

    /// Run again after Neutron failed it: a pool requested again since is left to its new
    /// network.
    pub(crate) async fn release_pool_again(&self, req: &ReleasePoolRequest) -> Result<()> {
        if self.requested_again(&pool_ref(&req.pool_id)?) {
            tracing::info!(pool = %req.pool_id, "pool requested again since: not released");
            return Ok(());
        }
        self.release_pool_now(req).await
    }

    /// Whether a network has requested the pool (again) since Docker released it.
    fn requested_again(&self, pool: &PoolRef) -> bool {
        self.ipam().requested.values().any(|r| r.pool == *pool)
    }

    /// A Kuryr pool left when its network was deleted, deleted once unused, unless a network
    /// requested it again since.
    pub(crate) async fn delete_unused_pool_again(&self, id: &str) -> Result<()> {
        if self.requested_again(&PoolRef::Whole(id.to_string())) {
            return Ok(());
        }
        match self.known_pool(id).await? {
            Some(p) if self.is_kuryr_pool(&p) => self.delete_pool_if_unused(id).await,
            _ => Ok(()),
        }
    }

    async fn release_pool_now(&self, req: &ReleasePoolRequest) -> Result<()> {
        let pool_ref = pool_ref(&req.pool_id)?;
        self.undo_unanswered_networks_of(&pool_ref).await?;
        {
            let mut c = self.ipam();
            c.requested.retain(|_, r| r.pool != pool_ref);
            if let PoolRef::Carved { pool_id, cidr } = &pool_ref {
                c.carved.remove(&(pool_id.clone(), *cidr));
            }
        }
        // The pool's subnet stays remembered: DeleteNetwork, next, forgets it with its network.
        let PoolRef::Whole(id) = pool_ref else {
            // A range of a shared pool: its subnet goes with the network.
            return Ok(());
        };
        let Some(pool) = self.known_pool(&id).await? else {
            return Ok(());
        };
        let _guard = self.locks.lock(&format!("pool:{}", pool.name)).await;
        let mut errors = Vec::new();
        // The subnet CreateNetwork made from the pool, or adopted and tagged with its id.
        let subnet = self.networks().pool_subnets.get(&id).cloned();
        let tagged = match &subnet {
            Some(s) if tags::has(&s.tags, &id) => vec![s.clone()],
            Some(_) => Vec::new(),
            None => self.nt.subnets(&SubnetQuery::tagged(&id)).await?,
        };
        for s in tagged {
            match self.nt.remove_tag(Kind::Subnet, &s.id, &id).await {
                Ok(()) => {
                    if let Some(m) = self.networks().pool_subnets.get_mut(&id) {
                        m.tags.retain(|t| *t != id);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if tags::has(&pool.tags, TAG_SUBNETPOOL_EXISTING) {
            match self
                .nt
                .remove_tag(Kind::SubnetPool, &id, TAG_SUBNETPOOL_EXISTING)
                .await
            {
                Ok(()) => {
                    if let Some(p) = self.networks().pools.get_mut(&id) {
                        p.tags.retain(|t| t != TAG_SUBNETPOOL_EXISTING);
                    }
                }
                Err(e) => errors.push(e),
            }
        } else if self.is_kuryr_pool(&pool) {
            // A subnet made from the pool still exists (Docker releases before DeleteNetwork):
            // no need to ask whether the pool is used.
            let in_use = subnet.is_some_and(|s| s.subnetpool_id.as_deref() == Some(id.as_str()));
            if !in_use
                && self
                    .nt
                    .subnets(&SubnetQuery::from_pool(&id))
                    .await?
                    .is_empty()
            {
                if let Err(e) = self.delete_pool_if_unused(&id).await {
                    errors.push(e);
                }
            }
        }
        teardown_result(format!("release subnetpool {id}"), errors)
    }

    /// The pool as this daemon remembers it, else as Neutron has it (`None`: gone).
    pub(crate) async fn known_pool(&self, id: &str) -> Result<Option<Pool>> {
        if let Some(p) = self.networks().pools.get(id) {
            return Ok(Some(p.clone()));
        }
        let pool = self.nt.pool(id).await?;
        if let Some(p) = &pool {
            self.remember_pool(p.clone());
        }
        Ok(pool)
    }

    /// Deletes a Kuryr pool; "in use" (another host's network) and "not found" are fine.
    pub(crate) async fn delete_pool_if_unused(&self, id: &str) -> Result<()> {
        match self.nt.delete_pool(id).await {
            Ok(()) => {
                tracing::info!(pool = %id, "deleted subnetpool");
                self.networks().pools.remove(id);
                Ok(())
            }
            Err(e) if e.is_conflict() => {
                tracing::info!(pool = %id, "subnetpool still in use: kept");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
