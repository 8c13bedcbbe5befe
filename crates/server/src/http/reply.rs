//! Building replies: JSON with Docker's plugin media type, errors as `{"Err": ...}`.

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use kuryr_plugin_api::{keys, ErrorResponse, PluginError};
use serde::Serialize;

/// The reply of calls that return nothing: Docker needs at least `{}` (an empty body is an error).
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}

/// Whether a path belongs to the IPAM subsystem (whose error field is `Error`, not `Err`).
pub(crate) fn is_ipam_path(path: &str) -> bool {
    path.starts_with("/IpamDriver.")
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(keys::CONTENT_TYPE),
    );
    resp
}

/// HTTP 200 with `body` as JSON.
pub(crate) fn ok_json<T: Serialize>(body: &T, ipam: bool) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        // Only a driver returning a non-string map key could get here; still answer in JSON.
        Err(e) => error_reply(
            &PluginError::internal(format!("cannot encode reply: {e}")),
            ipam,
        ),
    }
}

/// The error reply for `err`, logged on the current request span.
pub(crate) fn error_reply(err: &PluginError, ipam: bool) -> Response {
    let status =
        StatusCode::from_u16(err.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_with_status(status, err, ipam)
}

/// An error reply with an explicit status (e.g. 413 for oversized bodies).
pub(crate) fn error_with_status(status: StatusCode, err: &PluginError, ipam: bool) -> Response {
    tracing::warn!(kind = ?err.kind(), error = %err, "plugin call failed");
    let body: ErrorResponse = err.to_body(ipam);
    // ErrorResponse is two strings: encoding cannot fail, but never panic on a request path.
    let bytes =
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"Err\":\"internal error\"}".to_vec());
    json_response(status, bytes)
}
