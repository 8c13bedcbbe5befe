//! The driver's settings, produced from `kuryr.conf` in one step: the defaults are those of the
//! sections ([`DefaultSection`], [`NeutronSection`], [`BindingSection`]), nowhere else.

use std::time::Duration;

use crate::{
    BindingSection, ConfigError, DefaultSection, KuryrConfig, NeutronSection, VifPoolSection,
};

/// How container ports reach the host: `[DEFAULT] default_port_driver`, by the last component
/// of the Python original's module path (`kuryr_libnetwork.port_driver.drivers.veth` = `veth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortDriverKind {
    /// Bare metal: a veth pair plugged by `binding:vif_type`; the port is bound to this host.
    Veth,
    /// In a VM: a macvlan child of `link_iface`; the container's address is added to the VM
    /// port's `allowed_address_pairs` (the original's `nested`).
    NestedMacvlan { link_iface: String },
    /// In a VM: a VLAN child of `link_iface`; the container port is a subport of the VM port's
    /// trunk (the original's `vlan`).
    NestedVlan { link_iface: String },
}

impl PortDriverKind {
    /// The driver's short name, as the original's module is named.
    pub fn name(&self) -> &'static str {
        match self {
            PortDriverKind::Veth => "veth",
            PortDriverKind::NestedMacvlan { .. } => "nested",
            PortDriverKind::NestedVlan { .. } => "vlan",
        }
    }

    /// The parent interface of the nested modes.
    pub fn link_iface(&self) -> Option<&str> {
        match self {
            PortDriverKind::Veth => None,
            PortDriverKind::NestedMacvlan { link_iface }
            | PortDriverKind::NestedVlan { link_iface } => Some(link_iface),
        }
    }
}

/// Short name of a port driver given as a module path or a bare name.
pub(crate) fn short_name(s: &str) -> &str {
    s.trim().rsplit('.').next().unwrap_or("")
}

/// What the driver needs from `kuryr.conf`, as plain values.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// `binding:host_id` given to ports: this host's name as Neutron knows it (`[DEFAULT] host`,
    /// else the host name; it must equal the OVN chassis or agent host).
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
    pub port_driver: PortDriverKind,
    /// `[vif_pool]`: `None` when pools are off.
    pub pool: Option<PoolConfig>,
    /// `[DEFAULT] orphan_sweep_interval`; `None`: no sweep.
    pub orphan_sweep: Option<Duration>,
    /// `[DEFAULT] state_path`; `None` (built-in configurations, tests): nothing kept on disk.
    pub state_path: Option<std::path::PathBuf>,
    /// `[DEFAULT] ip_range_as_subnet`: `--ip-range` is the Neutron subnet (the original's way).
    pub ip_range_as_subnet: bool,
}

/// Port pools' sizes and pace (`[vif_pool]`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub pre_plug: bool,
    pub min: usize,
    /// `usize::MAX` when `ports_pool_max` is 0 (no limit).
    pub max: usize,
    pub batch: usize,
    pub update_frequency: Duration,
}

impl PoolConfig {
    fn from_section(s: &VifPoolSection) -> Result<Option<Self>, ConfigError> {
        if !s.enabled {
            return Ok(None);
        }
        let invalid = |key: &str, message: String| ConfigError::Value {
            where_: "kuryr.conf".into(),
            section: crate::defaults::SECTION_VIF_POOL.into(),
            key: key.into(),
            message,
        };
        let max = if s.max == 0 { usize::MAX } else { s.max };
        if s.batch == 0 {
            return Err(invalid("ports_pool_batch", "must be at least 1".into()));
        }
        if s.min > max {
            return Err(invalid(
                "ports_pool_min",
                format!("{} is above ports_pool_max {}", s.min, s.max),
            ));
        }
        if s.update_frequency == 0 {
            return Err(invalid(
                "ports_pool_update_frequency",
                "must be at least 1 second".into(),
            ));
        }
        Ok(Some(PoolConfig {
            pre_plug: s.pre_plug,
            min: s.min,
            max,
            batch: s.batch,
            update_frequency: Duration::from_secs(s.update_frequency),
        }))
    }
}

impl DriverConfig {
    /// Docker calls have no timeout and the server gives each call 60 s: an endless wait would
    /// hang `docker run`, so every wait (also "forever", timeout 0 with fatal plugging) is capped.
    pub const FATAL_WAIT_CAP: Duration = Duration::from_secs(50);

    /// The defaults of `kuryr.conf` for a given host.
    pub fn new(host: impl Into<String>) -> Self {
        let mut c = Self::from_sections(
            host.into(),
            &DefaultSection::default(),
            &NeutronSection::default(),
            &BindingSection::default(),
            &VifPoolSection::default(),
        )
        .expect("the built-in defaults are a valid configuration");
        c.state_path = None;
        c
    }

    fn from_sections(
        host: String,
        d: &DefaultSection,
        n: &NeutronSection,
        b: &BindingSection,
        p: &VifPoolSection,
    ) -> Result<Self, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Value {
            where_: "kuryr.conf".into(),
            section: "DEFAULT".into(),
            key: key.into(),
            message,
        };
        let chosen = short_name(&d.default_port_driver);
        let link = b.link_iface.trim().to_string();
        let port_driver = match chosen {
            "veth" => PortDriverKind::Veth,
            "nested" | "vlan" if link.is_empty() => {
                return Err(invalid(
                    "default_port_driver",
                    format!("port driver {chosen} needs [binding] link_iface"),
                ))
            }
            "nested" => PortDriverKind::NestedMacvlan { link_iface: link },
            "vlan" => PortDriverKind::NestedVlan { link_iface: link },
            other => {
                return Err(invalid(
                    "default_port_driver",
                    format!("port driver {other:?} is not supported (veth, nested, vlan)"),
                ))
            }
        };
        Ok(DriverConfig {
            host,
            capability_scope: d.capability_scope.clone(),
            local_default_address_space: d.local_default_address_space.clone(),
            global_default_address_space: d.global_default_address_space.clone(),
            default_subnetpool_v4: n.default_subnetpool_v4.clone(),
            default_subnetpool_v6: n.default_subnetpool_v6.clone(),
            subnetpool_name_prefix: d.subnetpool_name_prefix.clone(),
            enable_dhcp: n.enable_dhcp,
            process_external_connectivity: d.process_external_connectivity,
            vif_plugging_is_fatal: n.vif_plugging_is_fatal,
            vif_plugging_timeout: Duration::from_secs(n.vif_plugging_timeout),
            veth_dst_prefix: b.veth_dst_prefix.clone(),
            port_driver,
            pool: PoolConfig::from_section(p)?,
            orphan_sweep: (d.orphan_sweep_interval > 0)
                .then(|| Duration::from_secs(d.orphan_sweep_interval)),
            state_path: Some(d.state_path.clone().into()),
            ip_range_as_subnet: d.ip_range_as_subnet,
        })
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

impl KuryrConfig {
    /// The driver's settings. `host` is `[DEFAULT] host` (from every file and directory this
    /// configuration was loaded from, and `OS_DEFAULT__HOST`), else this machine's host name.
    pub fn driver_config(&self) -> Result<DriverConfig, ConfigError> {
        let host = match self.default.host.as_deref().map(str::trim) {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => system_host_name()?,
        };
        DriverConfig::from_sections(
            host,
            &self.default,
            &self.neutron,
            &self.binding,
            &self.vif_pool,
        )
    }
}

fn system_host_name() -> Result<String, ConfigError> {
    const PATH: &str = "/proc/sys/kernel/hostname";
    std::fs::read_to_string(PATH)
        .map(|h| h.trim().to_string())
        .map_err(|e| ConfigError::Io {
            path: PATH.into(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_sections() {
        let c = DriverConfig::new("h1");
        assert_eq!(c.host, "h1");
        assert_eq!(c.port_driver, PortDriverKind::Veth);
        assert_eq!(c.default_subnetpool_v4, "kuryr");
        assert_eq!(c.default_subnetpool_v6, "kuryr6");
        assert_eq!(c.subnetpool_name_prefix, "kuryrPool");
        assert!(c.enable_dhcp);
        assert_eq!(c.active_wait(), None);
        // A built-in configuration keeps nothing on disk; a daemon's keeps it in state_path.
        assert_eq!(c.state_path, None);
        let mut parsed = KuryrConfig::parse("[DEFAULT]\nhost = h1\n")
            .unwrap()
            .driver_config()
            .unwrap();
        assert_eq!(parsed.state_path.take(), Some("/var/lib/kuryr".into()));
        assert_eq!(format!("{parsed:?}"), format!("{c:?}"));
        let custom = KuryrConfig::parse("[DEFAULT]\nhost = h1\nstate_path = /srv/k\n").unwrap();
        let custom = custom.driver_config().unwrap();
        assert_eq!(custom.state_path, Some("/srv/k".into()));
    }

    #[test]
    fn host_from_the_file_else_the_machine() {
        let c = KuryrConfig::parse("[DEFAULT]\nhost = compute-7\n").unwrap();
        assert_eq!(c.driver_config().unwrap().host, "compute-7");
        let c = KuryrConfig::parse("").unwrap();
        let expected = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(c.driver_config().unwrap().host, expected.trim());
    }

    #[test]
    fn port_driver_by_name_and_enabled() {
        let conf = "[DEFAULT]\nhost = h\ndefault_port_driver = kuryr_libnetwork.port_driver.drivers.vlan\n\
                    enabled_port_drivers = kuryr_libnetwork.port_driver.drivers.veth, kuryr_libnetwork.port_driver.drivers.vlan\n\
                    [binding]\nlink_iface = eth0\n";
        let c = KuryrConfig::parse(conf).unwrap().driver_config().unwrap();
        assert_eq!(
            c.port_driver,
            PortDriverKind::NestedVlan {
                link_iface: "eth0".into()
            }
        );
        assert_eq!(c.port_driver.name(), "vlan");
        // Not enabled: used, with a warning (the Python original refuses it).
        let c = KuryrConfig::parse(
            "[DEFAULT]\nhost = h\ndefault_port_driver = nested\n[binding]\nlink_iface = eth0\n",
        )
        .unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("not in enabled_port_drivers")),
            "{:?}",
            c.warnings
        );
        assert_eq!(c.driver_config().unwrap().port_driver.name(), "nested");
        // Nested without its parent interface.
        let e = KuryrConfig::parse(
            "[DEFAULT]\nhost = h\ndefault_port_driver = nested\nenabled_port_drivers = nested\n",
        )
        .unwrap()
        .driver_config()
        .unwrap_err();
        assert!(e.to_string().contains("needs [binding] link_iface"), "{e}");
        let e = KuryrConfig::parse(
            "[DEFAULT]\nhost = h\ndefault_port_driver = sriov\nenabled_port_drivers = sriov\n",
        )
        .unwrap()
        .driver_config()
        .unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }

    #[test]
    fn active_wait_is_capped() {
        let mut c = DriverConfig::new("h");
        c.vif_plugging_is_fatal = true;
        assert_eq!(c.active_wait(), Some(DriverConfig::FATAL_WAIT_CAP));
        c.vif_plugging_timeout = Duration::from_secs(5);
        assert_eq!(c.active_wait(), Some(Duration::from_secs(5)));
        c.vif_plugging_timeout = Duration::from_secs(500);
        assert_eq!(c.active_wait(), Some(DriverConfig::FATAL_WAIT_CAP));
    }

    #[test]
    fn orphan_sweep_every_minute_unless_set() {
        assert_eq!(
            DriverConfig::new("h").orphan_sweep,
            Some(Duration::from_secs(60))
        );
        let c = |text: &str| KuryrConfig::parse(text).unwrap().driver_config().unwrap();
        assert_eq!(
            c("[DEFAULT]\nhost = h\norphan_sweep_interval = 5\n").orphan_sweep,
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            c("[DEFAULT]\nhost = h\norphan_sweep_interval = 0\n").orphan_sweep,
            None
        );
        assert!(KuryrConfig::parse("[DEFAULT]\norphan_sweep_interval = soon\n").is_err());
    }

    /// `[vif_pool]` sizes and pace are read as given, and impossible ones are refused with the
    /// key they are about.
    #[test]
    fn vif_pool_settings_are_read_and_checked() {
        let pool = |body: &str| {
            KuryrConfig::parse(&format!("[DEFAULT]\nhost = h\n[vif_pool]\n{body}"))
                .unwrap()
                .driver_config()
        };
        let p = pool("ports_pool_max = 7\nports_pool_min = 2\nports_pool_update_frequency = 3\npre_plug = false\n")
            .unwrap()
            .pool
            .unwrap();
        assert_eq!((p.max, p.min, p.pre_plug), (7, 2, false));
        assert_eq!(p.update_frequency, Duration::from_secs(3));
        let unlimited = pool("ports_pool_max = 0\n").unwrap().pool.unwrap();
        assert_eq!(unlimited.max, usize::MAX);
        assert_eq!(pool("enabled = false\n").unwrap().pool, None);
        for (body, key) in [
            ("ports_pool_batch = 0\n", "ports_pool_batch"),
            ("ports_pool_min = 9\nports_pool_max = 4\n", "ports_pool_min"),
            (
                "ports_pool_update_frequency = 0\n",
                "ports_pool_update_frequency",
            ),
        ] {
            let err = pool(body).unwrap_err().to_string();
            assert!(err.contains(key), "{body}: {err}");
        }
    }
}
