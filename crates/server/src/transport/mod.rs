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
    serve_plan_then(plan, router, shutdown, || {}).await
}

/// [`serve_plan`], calling `listening` once the listener is bound (and a TCP plan's spec file
/// written), just before serving: the moment Docker can reach the plugin (systemd's `READY=1`).
/// Not called when binding fails.
pub async fn serve_plan_then<F, L>(
    plan: &ServePlan,
    router: Router,
    shutdown: F,
    listening: L,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
    L: FnOnce(),
{
    if let Some(listener) = listener_from_systemd()? {
        listening();
        return serve_unix(listener, router, shutdown).await;
    }
    match &plan.listen {
        Listen::Unix(cfg) => {
            let bound = bind_unix(cfg)?;
            listening();
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
            listening();
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn serve_plan_then_reports_listening_once_the_socket_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kuryr.sock");
        let plan = ServePlan {
            listen: Listen::Unix(UnixListenerConfig::new(&path)),
            spec: None,
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<bool>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sock = path.clone();
        let server = tokio::spawn(async move {
            serve_plan_then(
                &plan,
                Router::new(),
                async {
                    let _ = stop_rx.await;
                },
                move || {
                    // Called after binding: the socket is already there to connect to.
                    let _ = ready_tx.send(std::os::unix::net::UnixStream::connect(&sock).is_ok());
                },
            )
            .await
        });
        assert!(ready_rx.await.unwrap(), "socket not connectable when ready");
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(!path.exists(), "socket left behind");
    }

    #[tokio::test]
    async fn serve_plan_then_does_not_report_listening_when_binding_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"x").unwrap();
        let plan = ServePlan {
            listen: Listen::Unix(UnixListenerConfig::new(&path)),
            spec: None,
        };
        let called = Arc::new(AtomicBool::new(false));
        let flag = called.clone();
        let err = serve_plan_then(&plan, Router::new(), async {}, move || {
            flag.store(true, Ordering::SeqCst)
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(!called.load(Ordering::SeqCst));
    }
}
