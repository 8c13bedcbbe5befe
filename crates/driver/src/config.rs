//! What the driver needs from kuryr.conf, as plain values (the binary fills it from
//! `kuryr_config::KuryrConfig`; tests build it directly).

use std::time::Duration;

use crate::constants::SUBNETPOOL_NAME_PREFIX;

/// How container ports reach the host (`[DEFAULT] default_port_driver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMode {
    /// Bare metal: a veth pair plugged by `binding:vif_type`; the port is bound to this host.
    Veth,
    /// In a VM: macvlan child of `link_iface`; the container address is added to the VM port's
    /// `allowed_address_pairs`.
    Nested { link_iface: String },
    /// In a VM: VLAN child of `link_iface`; the container port is a subport of the VM port's trunk.
    Vlan { link_iface: String },
}

/// The driver's settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// `binding:host_id` given to ports: this host's name as Neutron knows it.
    pub host: String,
    /// `[DEFAULT] capability_scope`: `local` or `global`.
    pub capability_scope: String,
    pub local_default_address_space: String,
    pub global_default_address_space: String,
    /// `[neutron] default_subnetpool_v4` / `_v6`.
    pub default_subnetpool_v4: String,
    pub default_subnetpool_v6: String,
    /// `[DEFAULT] subnetpool_name_prefix`.
    pub subnetpool_name_prefix: String,
    /// `[neutron] enable_dhcp` for subnets Kuryr creates.
    pub enable_dhcp: bool,
    /// `[DEFAULT] process_external_connectivity`.
    pub process_external_connectivity: bool,
    /// `[neutron] vif_plugging_is_fatal`: fail CreateEndpoint when the port is not ACTIVE in time.
    pub vif_plugging_is_fatal: bool,
    /// `[neutron] vif_plugging_timeout`: how long to wait for ACTIVE; zero = do not wait unless
    /// fatal, in which case [`DriverConfig::FATAL_WAIT_CAP`] bounds the wait.
    pub vif_plugging_timeout: Duration,
    /// `[binding] veth_dst_prefix`: Docker names the container interface `<prefix><n>`.
    pub veth_dst_prefix: String,
    pub port_mode: PortMode,
    /// MAC of `link_iface` (nested modes), read by the binary; finds the VM's own port.
    pub link_iface_mac: Option<String>,
}

impl DriverConfig {
    /// Docker calls have no timeout and the server gives each call 60 s: an endless wait would
    /// hang `docker run`, so every wait (also "forever", timeout 0 with fatal plugging) is capped.
    pub const FATAL_WAIT_CAP: Duration = Duration::from_secs(50);

    /// Settings with the original's defaults for a given host.
    pub fn new(host: impl Into<String>) -> Self {
        DriverConfig {
            host: host.into(),
            capability_scope: "local".into(),
            local_default_address_space: "no_address_space".into(),
            global_default_address_space: "no_address_space".into(),
            default_subnetpool_v4: "kuryr".into(),
            default_subnetpool_v6: "kuryr6".into(),
            subnetpool_name_prefix: SUBNETPOOL_NAME_PREFIX.into(),
            enable_dhcp: true,
            process_external_connectivity: true,
            vif_plugging_is_fatal: false,
            vif_plugging_timeout: Duration::ZERO,
            veth_dst_prefix: "eth".into(),
            port_mode: PortMode::Veth,
            link_iface_mac: None,
        }
    }

    /// How long CreateEndpoint waits for ACTIVE, if at all.
    pub fn active_wait(&self) -> Option<Duration> {
        match (
            self.vif_plugging_is_fatal,
            self.vif_plugging_timeout.is_zero(),
        ) {
            (false, true) => None,
            (true, true) => Some(Self::FATAL_WAIT_CAP),
            (_, false) => Some(self.vif_plugging_timeout.min(Self::FATAL_WAIT_CAP)),
        }
    }
}
