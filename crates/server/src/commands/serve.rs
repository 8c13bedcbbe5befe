//! `kuryr-server serve`: configuration → Neutron client + host binding → driver → start-up
//! reconcile → plugin API on `/run/docker/plugins/kuryr.sock` (or TCP + spec file), until
//! SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kuryr_binding::{BindingConfig, HostBinding, LinuxHostBinding};
use kuryr_config::KuryrConfig;
use kuryr_driver::{DriverConfig, KuryrDriver, PortMode};
use kuryr_libnetwork::logging::{self, LogSettings};
use kuryr_libnetwork::transport::{self, ListenSettings, ServePlan};
use kuryr_libnetwork::{router, Limits};
use kuryr_openstack::neutron::extensions;
use kuryr_openstack::NeutronApi;
use kuryr_types::Backoff;

use crate::Cli;

/// Start-up attempts to reach Neutron before serving anyway.
const NEUTRON_ATTEMPTS: u32 = 6;

pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let cfg = super::load_config(cli)?;
    let log = LogSettings::from_config(&cfg.default);
    logging::init(&log)?;
    if cfg.default.use_syslog {
        tracing::warn!(
            "[DEFAULT] use_syslog is not supported, logging to {}",
            log_target(&log)
        );
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    // Resolved before waiting for Neutron: a bad kuryr_uri fails at once.
    let listen = ServePlan::from_settings(&ListenSettings::from_config(&cfg.default))?;
    let driver_cfg = driver_config(cli, &cfg)?;
    tracing::info!(host = %driver_cfg.host, mode = ?driver_cfg.port_mode, "starting kuryr-server");

    let neutron: Arc<dyn NeutronApi> =
        kuryr_openstack::client_from_config(&cfg).context("cannot build the neutron client")?;
    check_neutron(neutron.as_ref()).await?;
    let binding: Arc<dyn HostBinding> = Arc::new(
        LinuxHostBinding::new(BindingConfig {
            bindir: PathBuf::from(&cfg.default.bindir),
            ..BindingConfig::default()
        })
        .context("cannot open the host binding")?,
    );
    let driver = Arc::new(KuryrDriver::new(neutron, binding, driver_cfg));
    match driver.reconcile().await {
        Ok(r) => {
            tracing::info!(
                removed = r.removed.len(),
                kept = r.kept.len(),
                "start-up reconcile done"
            );
            for e in r.errors {
                tracing::warn!("reconcile: {e}");
            }
        }
        // Not fatal: Docker must be able to reach the plugin even if Neutron is slow to start.
        Err(e) => tracing::warn!("start-up reconcile skipped: {e}"),
    }

    let app = router(driver.clone(), driver, Limits::default());
    transport::serve_plan(&listen, app, transport::shutdown_signal())
        .await
        .context("cannot serve the plugin api")?;
    tracing::info!("stopped");
    Ok(())
}

fn log_target(log: &LogSettings) -> String {
    log.file
        .as_ref()
        .map_or_else(|| "stderr".into(), |p| p.display().to_string())
}

/// Neutron must have tags (the only state Kuryr keeps). It may still be starting: retry a while
/// with back-off, as the original does, but start anyway so Docker is not blocked.
async fn check_neutron(api: &dyn NeutronApi) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
    for attempt in 1..=NEUTRON_ATTEMPTS {
        match api.list_extensions().await {
            Ok(exts) => {
                if !exts
                    .iter()
                    .any(|e| e.alias == extensions::STANDARD_ATTR_TAG)
                {
                    bail!(
                        "neutron lacks the {} extension: kuryr-rs keeps its state in tags",
                        extensions::STANDARD_ATTR_TAG
                    );
                }
                return Ok(());
            }
            Err(e) if attempt < NEUTRON_ATTEMPTS => {
                tracing::warn!(attempt, "neutron not reachable yet: {e}");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::warn!("neutron still not reachable, serving anyway: {e}");
            }
        }
    }
    Ok(())
}

/// The driver's settings from kuryr.conf.
fn driver_config(cli: &Cli, cfg: &KuryrConfig) -> anyhow::Result<DriverConfig> {
    let mut d = DriverConfig::new(binding_host(cli)?);
    d.capability_scope = cfg.default.capability_scope.clone();
    d.local_default_address_space = cfg.default.local_default_address_space.clone();
    d.global_default_address_space = cfg.default.global_default_address_space.clone();
    d.default_subnetpool_v4 = cfg.neutron.default_subnetpool_v4.clone();
    d.default_subnetpool_v6 = cfg.neutron.default_subnetpool_v6.clone();
    d.subnetpool_name_prefix = cfg.default.subnetpool_name_prefix.clone();
    d.enable_dhcp = cfg.neutron.enable_dhcp;
    d.process_external_connectivity = cfg.default.process_external_connectivity;
    d.vif_plugging_is_fatal = cfg.neutron.vif_plugging_is_fatal;
    d.vif_plugging_timeout = Duration::from_secs(cfg.neutron.vif_plugging_timeout);
    d.veth_dst_prefix = cfg.binding.veth_dst_prefix.clone();
    let driver = cfg
        .default
        .default_port_driver
        .rsplit('.')
        .next()
        .unwrap_or("veth");
    let link = cfg.binding.link_iface.trim().to_string();
    d.port_mode = match driver {
        "veth" => PortMode::Veth,
        "nested" | "vlan" if link.is_empty() => {
            bail!("[DEFAULT] default_port_driver = {driver} needs [binding] link_iface")
        }
        "nested" => PortMode::Nested { link_iface: link.clone() },
        "vlan" => PortMode::Vlan { link_iface: link.clone() },
        other => bail!("[DEFAULT] default_port_driver: port driver {other:?} is not supported (veth, nested, vlan)"),
    };
    if d.port_mode != PortMode::Veth {
        // The VM's own port is found by the MAC of its interface (a sysfs read, no netlink).
        let path = format!("/sys/class/net/{link}/address");
        let mac = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read the mac address of link_iface {link} ({path})")
        })?;
        d.link_iface_mac = Some(mac.trim().to_ascii_lowercase());
    }
    Ok(d)
}

/// `binding:host_id`: `[DEFAULT] host` (oslo's usual option, as Neutron and Nova use it), else the
/// host name — which must equal the OVN chassis / agent host.
fn binding_host(cli: &Cli) -> anyhow::Result<String> {
    let mut raw = kuryr_config::oslo::RawConfig::default();
    let mut files = cli.config_files.clone();
    for d in &cli.config_dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            let mut confs: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            confs.sort();
            files.extend(confs);
        }
    }
    for f in &files {
        if let Ok(text) = std::fs::read_to_string(f) {
            raw.parse_str(&text, f)?;
        }
    }
    if let Ok(h) = std::env::var("OS_DEFAULT__HOST") {
        if !h.trim().is_empty() {
            return Ok(h.trim().to_string());
        }
    }
    if let Some(v) = raw.get("DEFAULT", "host") {
        let h = v.value.trim();
        if !h.is_empty() {
            return Ok(h.to_string());
        }
    }
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("cannot read the host name")?;
    Ok(h.trim().to_string())
}
