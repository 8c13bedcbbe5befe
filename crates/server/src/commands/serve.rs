//! `kuryr-server serve`: configuration → Neutron client + host binding → driver → start-up
//! reconcile → plugin API on `/run/docker/plugins/kuryr.sock` (or TCP + spec file), until
//! SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kuryr_binding::{BindingConfig, HostBinding, LinuxHostBinding};
use kuryr_config::defaults;
use kuryr_driver::KuryrDriver;
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
    let driver_cfg = cfg.driver_config()?;
    tracing::info!(
        host = %driver_cfg.host,
        port_driver = driver_cfg.port_driver.name(),
        "starting kuryr-server"
    );

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
    if let Some(link) = driver_cfg.port_driver.link_iface() {
        // The nested modes find the VM's port by this interface's MAC: fail now, not at the
        // first `docker run`.
        binding
            .link_mac(link)
            .await
            .with_context(|| format!("[binding] link_iface {link}"))?;
    }
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
