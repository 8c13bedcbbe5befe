//! Bare metal: the port is bound to this host (by the lifecycle, in its create or update), and
//! the host binding makes a veth pair whose host end is plugged by the port's `vif_type`.
//! Nothing to do on Neutron's side here.

use kuryr_binding::{BindMode, MacAddr};

use super::PortDriver;
use crate::error::{DriverError, Result};
use crate::neutron::Port;
use crate::undo::Undo;

pub struct VethDriver;

#[async_trait::async_trait]
impl PortDriver for VethDriver {
    fn name(&self) -> &'static str {
        "veth"
    }

    fn binds_to_host(&self) -> bool {
        true
    }

    async fn attach(&self, _port: &Port, _mac: MacAddr, _undo: &mut Undo) -> Result<BindMode> {
        Ok(BindMode::Veth)
    }

    async fn detach(&self, _port: &Port, _errors: &mut Vec<DriverError>) -> BindMode {
        BindMode::Veth
    }
}
