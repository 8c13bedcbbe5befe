//! `kuryr-server serve`: configuration → Neutron client + host binding → driver → start-up
//! reconcile → plugin API on `/run/docker/plugins/kuryr.sock` (or TCP + spec file), until
//! SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kuryr_binding::{BindingConfig, HostBinding, LinuxHostBinding};
use kuryr_config::{defaults, KuryrConfig};
use kuryr_driver::{DriverConfig, KuryrDriver, PortMode};
use kuryr_libnetwork::transport::{self, UnixListenerConfig};
use kuryr_libnetwork::{router, Limits};
use kuryr_openstack::neutron::extensions;
use kuryr_openstack::NeutronApi;

use crate::Cli;

/// Where Docker looks for legacy plugins' spec files.
const SPEC_DIR: &str = "/etc/docker/plugins";

pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let cfg = super::load_config(cli)?;
    init_tracing(cfg.default.debug);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let driver_cfg = driver_config(cli, &cfg)?;
    tracing::info!(host = %driver_cfg.host, mode = ?driver_cfg.port_mode, "starting kuryr-server");

    let neutron: Arc<dyn NeutronApi> = kuryr_openstack::client_from_options(&cfg.neutron.auth)
        .context("cannot build the neutron client")?;
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
    let uri = cfg.default.kuryr_uri.trim();
    if let Some(listener) = transport::listener_from_systemd().context("systemd socket")? {
        tracing::info!("serving on the socket passed by systemd");
        transport::serve_unix(listener, app, transport::shutdown_signal()).await?;
    } else if uri == defaults::KURYR_URI || uri.is_empty() || uri.starts_with("unix://") {
        let path = uri
            .strip_prefix("unix://")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(transport::unix::DEFAULT_SOCKET_PATH));
        let bound = transport::bind_unix(&UnixListenerConfig::new(&path))
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        transport::serve_unix(bound.listener, app, transport::shutdown_signal()).await?;
        drop(bound.guard);
    } else {
        let addr = uri
            .strip_prefix("http://")
            .with_context(|| format!("kuryr_uri {uri:?}: only http:// and unix:// are supported"))?
            .trim_end_matches('/');
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let spec = transport::write_spec_file(
            Path::new(SPEC_DIR),
            kuryr_driver::constants::PLUGIN_NAME,
            uri,
        )
        .with_context(|| format!("cannot write the plugin spec file in {SPEC_DIR}"))?;
        tracing::info!(spec = %spec.display(), "wrote plugin spec file");
        transport::serve_tcp(listener, app, transport::shutdown_signal()).await?;
    }
    tracing::info!("stopped");
    Ok(())
}

fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Neutron must have tags (the only state Kuryr keeps). It may still be starting: retry a while
/// with back-off, as the original does, but start anyway so Docker is not blocked.
async fn check_neutron(api: &dyn NeutronApi) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=6 {
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
            Err(e) if attempt < 6 => {
                tracing::warn!(attempt, "neutron not reachable yet: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
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
