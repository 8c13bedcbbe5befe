//! The daemon's Prometheus metrics (opt-in, `[metrics] listen_address`): one registry, the
//! metric families, and `GET /metrics` on a listener of its own, never on the plugin socket.
//!
//! - `kuryr_plugin_call_duration_seconds{call, outcome}`: each plugin call the driver ran, by
//!   call (`NetworkDriver.CreateEndpoint`) and outcome (`ok` or the error kind Docker got).
//! - `kuryr_plugin_errors_total{call, kind}`: failed plugin calls, by kind; bodies refused before
//!   the driver ran count here too (`malformed`, `bad_request`).
//! - `kuryr_neutron_request_duration_seconds{method, resource, status}`: each HTTP attempt to
//!   Neutron (retries included), by collection (never an id) and status code, or `timeout` /
//!   `transport` when there was no answer.
//! - `kuryr_neutron_requests_in_calls_total{call}`: the Neutron attempts made while a plugin call
//!   ran, that is on Docker's path (background work, such as refilling port pools, not counted).
//! - `kuryr_port_pool_ports{state}`: ports in this host's port pools, `free` or `pending` (being
//!   made or recycled), read at scrape time.
//! - `kuryr_networks`, `kuryr_endpoints`: Docker networks and endpoints known to this daemon since
//!   it started (its memory, not Neutron's count), read at scrape time.
//! - `kuryr_build_info{version}`: always 1.

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kuryr_openstack::neutron::{request_resource, RequestObserver, RequestOutcome};
use kuryr_plugin_api::ErrorKind;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// What `GET /metrics` answers with: the OpenMetrics text format prometheus-client encodes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The one path served.
pub const PATH: &str = "/metrics";

/// Bucket bounds in seconds, for plugin calls (60 s deadline) and Neutron requests alike.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    call: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NeutronLabels {
    method: String,
    resource: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InCallLabels {
    call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Reads `(networks, endpoints)` held by the driver.
type HeldSource = Box<dyn Fn() -> (usize, usize) + Send + Sync>;

tokio::task_local! {
    /// The plugin call (its route) the current task runs; unset in background tasks.
    pub static PLUGIN_CALL: &'static str;
}

/// The registry and every metric family. Cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    plugin_calls: Histograms<CallLabels>,
    plugin_errors: Family<ErrorLabels, Counter>,
    neutron_requests: Histograms<NeutronLabels>,
    in_calls: Family<InCallLabels, Counter>,
    pool_ports: Family<PoolLabels, Gauge>,
    networks: Gauge,
    endpoints: Gauge,
    held: Mutex<Option<HeldSource>>,
    pools: Mutex<Option<HeldSource>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The label of a plugin error kind.
pub fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Malformed => "malformed",
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::NotImplemented => "not_implemented",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Internal => "internal",
    }
}

/// `NetworkDriver.Join` from the route `/NetworkDriver.Join`.
fn call_label(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let plugin_calls = Histograms::<CallLabels>::new_with_constructor(histogram);
        registry.register(
            "kuryr_plugin_call_duration_seconds",
            "Plugin calls run by the driver, by call and outcome (ok or the error kind)",
            plugin_calls.clone(),
        );
        let plugin_errors = Family::<ErrorLabels, Counter>::default();
        // prometheus-client adds the `_total` suffix of counters.
        registry.register(
            "kuryr_plugin_errors",
            "Failed plugin calls, by call and error kind",
            plugin_errors.clone(),
        );
        let neutron_requests = Histograms::<NeutronLabels>::new_with_constructor(histogram);
        registry.register(
            "kuryr_neutron_request_duration_seconds",
            "HTTP attempts to Neutron, by method, resource and status (or timeout, transport)",
            neutron_requests.clone(),
        );
        let in_calls = Family::<InCallLabels, Counter>::default();
        registry.register(
            "kuryr_neutron_requests_in_calls",
            "Neutron attempts made while a plugin call ran (on Docker's path), by call",
            in_calls.clone(),
        );
        let pool_ports = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "kuryr_port_pool_ports",
            "Ports in this host's port pools: free, or pending (being made or recycled)",
            pool_ports.clone(),
        );
        let networks = Gauge::default();
        registry.register(
            "kuryr_networks",
            "Docker networks known to this daemon since it started",
            networks.clone(),
        );
        let endpoints = Gauge::default();
        registry.register(
            "kuryr_endpoints",
            "Docker endpoints known to this daemon since it started",
            endpoints.clone(),
        );
        // An info metric: encoded as `kuryr_build_info{version="..."} 1`.
        registry.register(
            "kuryr_build",
            "The kuryr-server build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }),
        );
        Metrics {
            registry,
            plugin_calls,
            plugin_errors,
            neutron_requests,
            in_calls,
            pool_ports,
            networks,
            endpoints,
            held: Mutex::new(None),
            pools: Mutex::new(None),
        }
    }

    /// Where `kuryr_networks` and `kuryr_endpoints` are read at each scrape (the driver's
    /// `held()`); both stay 0 without one.
    pub fn track_held(&self, source: impl Fn() -> (usize, usize) + Send + Sync + 'static) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(source));
    }

    /// Where `kuryr_port_pool_ports` is read at each scrape: `(free, pending)`.
    pub fn track_pools(&self, source: impl Fn() -> (usize, usize) + Send + Sync + 'static) {
        *self.pools.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(source));
    }

    /// One plugin call the driver ran (`path` is its route, `/NetworkDriver.Join`).
    pub fn record_call(&self, path: &str, error: Option<ErrorKind>, elapsed: Duration) {
        let call = call_label(path);
        let outcome = error.map_or("ok", kind_label);
        self.plugin_calls
            .get_or_create(&CallLabels {
                call: call.clone(),
                outcome: outcome.to_string(),
            })
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.record_error(path, kind);
        }
    }

    /// A failed plugin call, also one refused before the driver ran (a malformed body).
    pub fn record_error(&self, path: &str, kind: ErrorKind) {
        self.plugin_errors
            .get_or_create(&ErrorLabels {
                call: call_label(path),
                kind: kind_label(kind).to_string(),
            })
            .inc();
    }

    /// The text exposition, with the gauges read now.
    pub fn encode(&self) -> String {
        if let Some(source) = self.held.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let (networks, endpoints) = source();
            self.networks
                .set(i64::try_from(networks).unwrap_or(i64::MAX));
            self.endpoints
                .set(i64::try_from(endpoints).unwrap_or(i64::MAX));
        }
        if let Some(source) = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let (free, pending) = source();
            for (state, n) in [("free", free), ("pending", pending)] {
                self.pool_ports
                    .get_or_create(&PoolLabels { state })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            // Writing to a String cannot fail; say so in the output rather than panic.
            let _ = writeln!(out, "# encoding failed: {e}");
        }
        out
    }
}

impl RequestObserver for Metrics {
    fn observe(&self, method: &str, path: &str, outcome: RequestOutcome, elapsed: Duration) {
        if let Ok(call) = PLUGIN_CALL.try_with(|c| *c) {
            self.in_calls
                .get_or_create(&InCallLabels {
                    call: call_label(call),
                })
                .inc();
        }
        self.neutron_requests
            .get_or_create(&NeutronLabels {
                method: method.to_string(),
                resource: request_resource(path).to_string(),
                status: outcome.label(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// `GET /metrics`; anything else is 404.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(PATH, get(scrape))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: the metrics are at GET /metrics\n",
    )
        .into_response()
}

/// Serves [`metrics_router`] on `listener` until `shutdown` resolves.
pub async fn serve_metrics<F>(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, metrics_router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The value of the sample line of an exposition `text` that starts with `prefix` (the metric's
/// name and labels): what a scraper reads, for tests and tools.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().split(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The build info sample's name and labels, as this binary exports it.
pub fn build_info_prefix() -> String {
    format!(
        "kuryr_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_calls_show_up_with_their_labels_and_counts() {
        let m = Metrics::new();
        let join = "/NetworkDriver.Join";
        m.record_call(join, None, Duration::from_millis(3));
        m.record_call(join, None, Duration::from_millis(700));
        m.record_call(join, Some(ErrorKind::NotFound), Duration::from_millis(2));
        m.record_error("/IpamDriver.RequestPool", ErrorKind::Malformed);
        let text = m.encode();
        let ok = r#"call="NetworkDriver.Join",outcome="ok""#;
        assert_eq!(
            sample(
                &text,
                &format!("kuryr_plugin_call_duration_seconds_count{{{ok}}}")
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("kuryr_plugin_call_duration_seconds_bucket{{le=\"0.005\",{ok}}}")
            ),
            Some(1.0),
            "one of the two within 5 ms: {text}"
        );
        let sum = sample(
            &text,
            &format!("kuryr_plugin_call_duration_seconds_sum{{{ok}}}"),
        )
        .unwrap();
        assert!((sum - 0.703).abs() < 1e-9, "{sum}");
        assert_eq!(
            sample(
                &text,
                r#"kuryr_plugin_call_duration_seconds_count{call="NetworkDriver.Join",outcome="not_found"}"#
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"kuryr_plugin_errors_total{call="NetworkDriver.Join",kind="not_found"}"#
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"kuryr_plugin_errors_total{call="IpamDriver.RequestPool",kind="malformed"}"#
            ),
            Some(1.0),
            "{text}"
        );
        assert!(
            !text.contains(r#"kuryr_plugin_errors_total{call="NetworkDriver.Join",kind="ok"}"#),
            "{text}"
        );
        assert_eq!(sample(&text, &build_info_prefix()), Some(1.0), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn neutron_requests_are_labelled_by_method_resource_and_status() {
        let m = Metrics::new();
        let id = "3f0c0b6e-6f3a-4b8e-9a43-0c4d5e6f7a8b";
        m.observe(
            "GET",
            &format!("/v2.0/ports/{id}?fields=status"),
            RequestOutcome::Status(200),
            Duration::from_millis(20),
        );
        m.observe(
            "GET",
            "/v2.0/ports?device_id=x",
            RequestOutcome::Status(200),
            Duration::from_millis(30),
        );
        m.observe(
            "PUT",
            &format!("/v2.0/networks/{id}/tags/kuryr.net.uuid.lh:abc"),
            RequestOutcome::Status(404),
            Duration::from_millis(1),
        );
        m.observe(
            "POST",
            "/v2.0/security-group-rules",
            RequestOutcome::Timeout,
            Duration::from_secs(30),
        );
        m.observe(
            "DELETE",
            &format!("/v2.0/trunks/{id}"),
            RequestOutcome::Transport,
            Duration::from_millis(1),
        );
        let text = m.encode();
        assert!(!text.contains(id), "ids never become labels: {text}");
        for (labels, count) in [
            (r#"method="GET",resource="ports",status="200""#, 2.0),
            (r#"method="PUT",resource="tags",status="404""#, 1.0),
            (
                r#"method="POST",resource="security-group-rules",status="timeout""#,
                1.0,
            ),
            (
                r#"method="DELETE",resource="trunks",status="transport""#,
                1.0,
            ),
        ] {
            assert_eq!(
                sample(
                    &text,
                    &format!("kuryr_neutron_request_duration_seconds_count{{{labels}}}")
                ),
                Some(count),
                "{labels}: {text}"
            );
        }
    }

    #[test]
    fn held_gauges_are_read_at_scrape_time() {
        let m = Metrics::new();
        let text = m.encode();
        assert_eq!(sample(&text, "kuryr_networks "), Some(0.0), "{text}");
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(2));
        let source = n.clone();
        m.track_held(move || (source.load(std::sync::atomic::Ordering::SeqCst), 5));
        let text = m.encode();
        assert_eq!(sample(&text, "kuryr_networks "), Some(2.0), "{text}");
        assert_eq!(sample(&text, "kuryr_endpoints "), Some(5.0), "{text}");
        n.store(3, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(sample(&m.encode(), "kuryr_networks "), Some(3.0));
    }
}
