//! IpamDriver.ReleasePool. Adopted and default pools are only untagged, never deleted; a Kuryr
//! pool is deleted once no subnet uses it (DeleteNetwork, which Docker calls after this, deletes
//! it when its network's subnet was still there).

use kuryr_plugin_api::ipam::ReleasePoolRequest;
use kuryr_types::PoolRef;

use super::{pool_ref, KuryrDriver};
use crate::constants::*;
use crate::error::{teardown_result, Result};
use crate::neutron::{Kind, SubnetQuery};
use crate::tags;

impl KuryrDriver {
    pub async fn release_pool(&self, req: &ReleasePoolRequest) -> Result<()> {
        let pool_ref = pool_ref(&req.pool_id)?;
        {
            let mut c = self.ipam();
            c.requested.retain(|_, r| r.pool != pool_ref);
            if let PoolRef::Carved { pool_id, cidr } = &pool_ref {
                c.carved.remove(&(pool_id.clone(), *cidr));
            }
        }
        self.networks().pool_subnets.remove(&pool_ref.to_string());
        let PoolRef::Whole(id) = pool_ref else {
            // A range of a shared pool: its subnet goes with the network.
            return Ok(());
        };
        let Some(pool) = self.nt.pool(&id).await? else {
            return Ok(());
        };
        let _guard = self.locks.lock(&format!("pool:{}", pool.name)).await;
        let mut errors = Vec::new();
        // Adopted subnets were tagged with this pool id by CreateNetwork.
        let tagged = self.nt.subnets(&SubnetQuery::tagged(&id)).await?;
        for s in tagged {
            if let Err(e) = self.nt.remove_tag(Kind::Subnet, &s.id, &id).await {
                errors.push(e);
            }
        }
        if tags::has(&pool.tags, TAG_SUBNETPOOL_EXISTING) {
            if let Err(e) = self
                .nt
                .remove_tag(Kind::SubnetPool, &id, TAG_SUBNETPOOL_EXISTING)
                .await
            {
                errors.push(e);
            }
        } else if self.is_kuryr_pool(&pool) {
            let used = self.nt.subnets(&SubnetQuery::from_pool(&id)).await?;
            if used.is_empty() {
                if let Err(e) = self.delete_pool_if_unused(&id).await {
                    errors.push(e);
                }
            }
        }
        teardown_result(format!("release subnetpool {id}"), errors)
    }

    /// Deletes a Kuryr pool; "in use" (another host's network) and "not found" are fine.
    pub(crate) async fn delete_pool_if_unused(&self, id: &str) -> Result<()> {
        match self.nt.delete_pool(id).await {
            Ok(()) => {
                tracing::info!(pool = %id, "deleted subnetpool");
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
