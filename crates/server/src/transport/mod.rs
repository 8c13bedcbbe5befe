//! Where the plugin API is served: the unix socket Docker discovers (bound by us or passed by
//! systemd), or TCP announced through a `.spec`/`.json` discovery file.
//!
//! kuryr.conf's options ([`ListenSettings`]) are resolved by [`ServePlan::from_settings`], the
//! one place that chooses the listener, and served by [`serve_plan`]; [`serve_settings`] does both
//! (the daemon resolves first, so a bad `kuryr_uri` fails before it waits for Neutron).

pub mod settings;
pub mod spec;
pub mod systemd;
pub mod tcp;
pub mod tls;
pub mod unix;

pub use settings::{ListenSettings, ServePlan, SpecFile, PLUGIN_NAME};
pub use spec::{write_json_spec, write_spec_file, JsonSpec, TlsSpec};
pub use systemd::listener_from_systemd;
pub use tcp::serve_tcp;
pub use tls::{serve_tcp_tls, server_config, TlsFiles, TlsListener};
pub use unix::{bind_unix, serve_unix, BoundUnixListener, SocketGuard, UnixListenerConfig};

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;

/// Where to serve the plugin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// The unix socket Docker discovers by name (or the one systemd passes, if any).
    Unix(UnixListenerConfig),
    /// TCP, announced with a `.spec`/`.json` file; TLS when `tls` is set.
    Tcp {
        /// Address to bind.
        addr: SocketAddr,
        /// Certificates; `None` serves plain HTTP.
        tls: Option<TlsFiles>,
    },
}

/// Serves `router` where `settings` say until `shutdown` resolves: a socket passed by systemd if
/// any, else the unix socket or TCP (+TLS) of `kuryr_uri`, announced by a `.spec` file.
pub async fn serve_settings<F>(
    settings: &ListenSettings,
    router: Router,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_plan(&ServePlan::from_settings(settings)?, router, shutdown).await
}

/// Binds `listen` and serves `router` until `shutdown` resolves (a socket passed by systemd
/// wins); a socket file this function created is removed before it returns.
pub async fn serve_plugin<F>(listen: &Listen, router: Router, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let plan = ServePlan {
        listen: listen.clone(),
        spec: None,
    };
    serve_plan(&plan, router, shutdown).await
}

/// Carries out `plan` until `shutdown` resolves. A socket passed by systemd wins over the plan:
/// the unit file decided where to listen (it is left to systemd at shutdown). A TCP plan's spec
/// file is written once the port is bound and the TLS files are loaded, so Docker is never sent
/// to an address that cannot answer; it is left in place at shutdown (see [`spec`]).
pub async fn serve_plan<F>(plan: &ServePlan, router: Router, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Some(listener) = listener_from_systemd()? {
        return serve_unix(listener, router, shutdown).await;
    }
    match &plan.listen {
        Listen::Unix(cfg) => {
            let bound = bind_unix(cfg)?;
            let result = serve_unix(bound.listener, router, shutdown).await;
            drop(bound.guard);
            result
        }
        Listen::Tcp { addr, tls } => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
            let tls = tls.as_ref().map(server_config).transpose()?;
            if let Some(spec) = &plan.spec {
                let path = spec.write()?;
                tracing::info!(spec = %path.display(), url = %spec.url, "wrote plugin spec file");
            }
            match tls {
                Some(config) => serve_tcp_tls(listener, config, router, shutdown).await,
                None => serve_tcp(listener, router, shutdown).await,
            }
        }
    }
}

/// Resolves when the process gets SIGTERM or SIGINT: the signal to stop serving.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("got SIGTERM, shutting down"),
                _ = int.recv() => tracing::info!("got SIGINT, shutting down"),
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            // Without signal handlers only Ctrl-C handling is left; keep serving until it fires.
            tracing::warn!(error = %e, "cannot install signal handlers, falling back to ctrl-c");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
