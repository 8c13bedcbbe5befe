//! IpamDriver.ReleaseAddress: delete the port Kuryr made for an address, or give an adopted port
//! back to its owner. Idempotent: an address nobody holds is already released.

use crate::constants::*;
use crate::driver::{is_docker_id, is_kuryr_port, parse_address, KuryrDriver, PoolRef};
use crate::error::{join_errors, Result};
use crate::neutron::{Kind, PortChange, PortQuery};
use crate::tags;

impl KuryrDriver {
    pub async fn release_address(&self, pool_id: &str, address: &str) -> Result<()> {
        let pool = PoolRef::parse(pool_id)?;
        let ip = parse_address("address", address)?;
        let subnet = match self.pool_subnet(&pool).await {
            Ok((Some(s), _)) => s,
            Ok((None, _)) => {
                tracing::debug!(%pool, %ip, "no subnet for pool: address already released");
                return Ok(());
            }
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let released = self.cache().released_ports.remove(&(subnet.id.clone(), ip));
        let ports = match released {
            Some(p) => vec![p],
            None => {
                self.nt
                    .ports(&PortQuery {
                        fixed_ips: vec![(Some(subnet.id.clone()), Some(ip))],
                        ..Default::default()
                    })
                    .await?
            }
        };
        let mut errors = Vec::new();
        for p in ports {
            let result = if tags::has(&p.tags, TAG_PORT_EXISTING) {
                self.give_back_port(&p).await
            } else if is_kuryr_port(&p) {
                self.nt.delete_port(&p.id).await
            } else {
                // The router's or DHCP's port on the gateway address: not ours.
                tracing::debug!(port = %p.id, owner = %p.device_owner, "address held by a foreign port");
                Ok(())
            };
            if let Err(e) = result {
                errors.push(e.to_string());
            }
            let mut c = self.cache();
            c.pending_ports.retain(|_, q| q.id != p.id);
            c.released_ports.retain(|_, q| q.id != p.id);
            c.requested_macs.remove(&p.id);
            c.endpoints.retain(|_, e| e.port.id != p.id);
        }
        join_errors(&format!("release address {ip}"), errors)
    }

    /// Undoes what adoption changed: host, owner, the device id Kuryr set, and Kuryr's tags.
    async fn give_back_port(&self, p: &crate::neutron::Port) -> Result<()> {
        let mut change = PortChange::default();
        if p.device_owner == DEVICE_OWNER {
            change.device_owner = Some(String::new());
        }
        if !p.host_id.is_empty() {
            change.host_id = Some(String::new());
        }
        if is_docker_id(&p.device_id) || p.name.starts_with(&p.device_id) && !p.device_id.is_empty()
        {
            change.device_id = Some(String::new());
        }
        if !change.is_empty() {
            self.nt.update_port(&p.id, &change).await?;
        }
        let kept: Vec<String> = p
            .tags
            .iter()
            .filter(|t| *t != TAG_PORT_EXISTING && !tags::is_kuryr_id_tag(t))
            .cloned()
            .collect();
        if kept.len() != p.tags.len() {
            self.nt.set_tags(Kind::Port, &p.id, &kept).await?;
        }
        tracing::info!(port = %p.id, "released adopted port");
        Ok(())
    }
}
