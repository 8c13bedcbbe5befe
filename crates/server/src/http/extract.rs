//! `PluginJson<T>`: the lenient-where-Docker-needs-it body extractor.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::response::Response;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use kuryr_plugin_api::{decode_request, ErrorKind, PluginError, PluginRequest};

use super::reply::{error_reply, error_with_status, is_ipam_path};
use super::AppState;

/// A decoded, validated request body.
///
/// Ignores Content-Type, enforces [`super::Limits::max_body_bytes`], records the request's
/// Docker IDs on the current span, and rejects with the JSON error Docker expects.
#[derive(Debug)]
pub(crate) struct PluginJson<T>(pub T);

impl<T: PluginRequest> FromRequest<AppState> for PluginJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let ipam = is_ipam_path(req.uri().path());
        // Only matched routes get here: the path is one of the plugin calls.
        let path = req.uri().path().to_owned();
        let refused = |kind| {
            if let Some(m) = &state.metrics {
                m.record_error(&path, kind);
            }
        };
        let bytes = read_body(req.into_body(), state.limits.max_body_bytes, ipam)
            .await
            .inspect_err(|_| refused(ErrorKind::Malformed))?;
        let value: T = decode_request(&bytes).map_err(|e| {
            refused(e.kind());
            error_reply(&e, ipam)
        })?;
        record_ids(&value);
        Ok(PluginJson(value))
    }
}

/// Reads the whole body, refusing more than `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize, ipam: bool) -> Result<Bytes, Response> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error_with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            &PluginError::malformed(format!("request body larger than {limit} bytes")),
            ipam,
        )),
        Err(e) => Err(error_reply(
            &PluginError::malformed(format!("cannot read request body: {e}")),
            ipam,
        )),
    }
}

fn record_ids<T: PluginRequest>(value: &T) {
    let span = tracing::Span::current();
    let ids = value.trace_ids();
    if let Some(id) = ids.network_id {
        span.record("network_id", tracing::field::display(id));
    }
    if let Some(id) = ids.endpoint_id {
        span.record("endpoint_id", tracing::field::display(id));
    }
    if let Some(id) = ids.pool_id {
        span.record("pool_id", tracing::field::display(id));
    }
}
