//! Shared test helpers: the in-memory driver, an app builder, and a minimal plugin client that
//! talks HTTP/1.1 over a unix socket the way Docker does (no Content-Type, Accept v1.2).

#![allow(dead_code)] // each test binary uses a different subset

pub mod http1;
pub mod memory_driver;
pub mod skip;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use kuryr_libnetwork::{router, Limits};
use memory_driver::MemoryDriver;

/// Docker's request Accept header.
pub const DOCKER_ACCEPT: &str = "application/vnd.docker.plugins.v1.2+json";

/// The router over a fresh in-memory driver that creates no host links.
pub fn app(limits: Limits) -> (axum::Router, Arc<MemoryDriver>) {
    let driver = Arc::new(MemoryDriver::without_links());
    (router(driver.clone(), driver.clone(), limits), driver)
}

/// A request as Docker sends it.
pub fn docker_request(path: &str, body: impl Into<Bytes>) -> Request<axum::body::Body> {
    Request::post(path)
        .header(http::header::HOST, "plugin.moby.localhost")
        .header(http::header::ACCEPT, DOCKER_ACCEPT)
        .body(axum::body::Body::from(body.into()))
        .unwrap()
}

/// Sends one request through the router in memory.
pub async fn call(
    app: &axum::Router,
    path: &str,
    body: impl Into<Bytes>,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    use tower::ServiceExt;
    let resp = app
        .clone()
        .oneshot(docker_request(path, body))
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{path}: reply is not json ({e}): {bytes:?}"));
    (status, headers, json)
}

/// Sends one request over a new connection to the unix socket at `socket`.
pub async fn call_unix(
    socket: &Path,
    path: &str,
    body: impl Into<Bytes>,
) -> Result<(StatusCode, serde_json::Value), String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    post_on(stream, path, body).await
}

/// Sends one plugin call as Docker does on `io`, a fresh connection (unix, TCP or TLS), with
/// hyper's HTTP/1 client; `Err` when there is no HTTP answer with a JSON body.
pub async fn post_on<S>(
    io: S,
    path: &str,
    body: impl Into<Bytes>,
) -> Result<(StatusCode, serde_json::Value), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let req = Request::post(path)
        .header(http::header::HOST, "plugin.moby.localhost")
        .header(http::header::ACCEPT, DOCKER_ACCEPT)
        .body(Full::new(body.into()))
        .unwrap();
    let (status, bytes) = http1::exchange(io, req).await?;
    let json = serde_json::from_slice(&bytes).map_err(|e| format!("json: {e}: {bytes:?}"))?;
    Ok((status, json))
}

/// A 64-hex Docker ID derived from `seed`.
pub fn docker_id(seed: u64) -> String {
    format!("{seed:016x}").repeat(4)
}

/// Sends raw bytes through the router in memory; returns the status and the raw reply.
pub async fn call_raw(app: &axum::Router, path: &str, body: Vec<u8>) -> (StatusCode, Bytes) {
    use tower::ServiceExt;
    let resp = app
        .clone()
        .oneshot(docker_request(path, body))
        .await
        .expect("the router is infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes)
}
