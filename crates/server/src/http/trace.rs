//! One tracing span per plugin request: the call name, Docker's IDs (recorded once the body is
//! decoded), the status and the duration.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::Instrument;

/// Longest call name recorded; paths are client-controlled.
const MAX_CALL_NAME: usize = 64;

pub(crate) async fn trace_request(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let call: String = path
        .trim_start_matches('/')
        .chars()
        .take(MAX_CALL_NAME)
        .collect();
    let span = tracing::info_span!(
        "plugin_request",
        call = %call,
        network_id = Empty,
        endpoint_id = Empty,
        pool_id = Empty,
        status = Empty,
        elapsed_ms = Empty,
    );
    let start = Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    span.record("status", resp.status().as_u16());
    span.record("elapsed_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if resp.status().is_success() {
            tracing::info!("plugin call done");
        } else {
            tracing::info!("plugin call answered with an error");
        }
    });
    resp
}
