//! Plain HTTP over TCP, for deployments that announce the plugin with a `.spec` file
//! (kuryr-libnetwork ships `http://127.0.0.1:23750`).
//!
//! Plain HTTP authenticates nobody: keep it on loopback, or use [`super::tls`].

use std::future::Future;
use std::io;

use axum::Router;

/// The address kuryr-libnetwork has always used.
pub const DEFAULT_TCP_ADDR: &str = "127.0.0.1:23750";

/// Serves the plugin API on `listener` until `shutdown` resolves.
pub async fn serve_tcp<F>(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        if !addr.ip().is_loopback() {
            // Anyone reaching this port can make the daemon rewire host networking.
            tracing::warn!(%addr, "plugin API served without TLS on a non-loopback address");
        }
        tracing::info!(%addr, "listening on tcp");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
