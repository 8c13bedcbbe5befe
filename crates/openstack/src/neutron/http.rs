//! [`NeutronApi`] over HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kuryr_types::Backoff;
use reqwest::{Method, StatusCode, Url};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::error::{ErrorContext, NeutronError, Result};
use super::observe::{RequestObserver, RequestOutcome};
use super::resource::Resource;
use super::types::*;
use super::NeutronApi;
use crate::auth::{ClientSettings, Session, AUTH_TOKEN};

/// Stop following `next` links after this many pages: a server that loops must not hang Kuryr.
const MAX_PAGES: usize = 10_000;
/// Longest error body text kept in an error message.
const MAX_MESSAGE: usize = 512;

/// Retries of idempotent requests (GET, PUT, DELETE) on connection failures and 502/503/504.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delay before the first retry, doubled each time...
    pub base_delay: Duration,
    /// ...up to this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// The wait before retry `attempt + 1`: the workspace's one back-off schedule.
    fn delay(&self, attempt: u32) -> Duration {
        Backoff::nth(self.base_delay, self.max_delay, attempt)
    }
}

/// Describe a reqwest error with its causes (reqwest's own message is often just "error sending
/// request"; the cause says "connection reset" or "certificate unknown").
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    // URLs in reqwest errors carry no credentials: tokens travel in headers.
    s
}

/// Neutron's (or Keystone's) error type and message from an error body.
pub(crate) fn error_message(body: &str) -> (Option<String>, String) {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(ne) = v.get("NeutronError") {
            let kind = ne.get("type").and_then(Value::as_str).map(str::to_string);
            let msg = ne
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return (kind, msg);
        }
        if let Some(e) = v.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let kind = e.get("title").and_then(Value::as_str).map(str::to_string);
            return (kind, msg);
        }
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return (None, m.to_string());
        }
    }
    let t = body.trim();
    let cut = t
        .char_indices()
        .nth(MAX_MESSAGE)
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    (None, t[..cut].to_string())
}

/// The Neutron v2.0 API over HTTP with a Keystone [`Session`].
pub struct HttpNeutron {
    session: Arc<Session>,
    http: reqwest::Client,
    retry: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
    /// Port creates carry their tags: ML2's `tag_ports_during_bulk_creation` applies them (ML2/OVN
    /// loads it without listing its alias), a Neutron without it ignores them, and the tags the
    /// answer lacks are set after. Off once a Neutron refused `tags` in a port create.
    port_tags_in_body: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for HttpNeutron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpNeutron")
            .field("session", &self.session)
            .field("retry", &self.retry)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

fn take_tags(v: &mut Value) -> Vec<String> {
    v.as_object_mut()
        .and_then(|m| m.remove("tags"))
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default()
}

/// A decoded response.
struct Response {
    status: StatusCode,
    body: Value,
}

impl HttpNeutron {
    /// A client from resolved settings.
    pub fn new(settings: &ClientSettings) -> Result<Self> {
        let http = settings.transport.build_client()?;
        Ok(Self::with_client(settings.auth.clone(), http))
    }

    /// A client with a ready reqwest client (shared by Keystone and Neutron requests).
    pub fn with_client(auth: crate::auth::AuthConfig, http: reqwest::Client) -> Self {
        HttpNeutron {
            session: Arc::new(Session::new(auth, http.clone())),
            http,
            retry: RetryPolicy::default(),
            observer: None,
            port_tags_in_body: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    fn port_tags_in_body(&self) -> bool {
        self.port_tags_in_body
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One bulk create; `in_body`: the tags stay in the body (those the answer lacks are set
    /// after). All or nothing: a port that cannot be tagged is deleted with the others.
    async fn create_ports_once(&self, ports: &[NewPort], in_body: bool) -> Result<Vec<Port>> {
        if ports.is_empty() {
            return Ok(Vec::new());
        }
        let mut bodies = Vec::with_capacity(ports.len());
        let mut tags = Vec::with_capacity(ports.len());
        for p in ports {
            let mut v = serde_json::to_value(p).map_err(|e| {
                NeutronError::Decode(ErrorContext::new(
                    "POST",
                    Port::COLLECTION,
                    format!("cannot encode port: {e}"),
                ))
            })?;
            tags.push(if in_body {
                v.get("tags")
                    .and_then(|t| serde_json::from_value(t.clone()).ok())
                    .unwrap_or_default()
            } else {
                take_tags(&mut v)
            });
            bodies.push(v);
        }
        let r = self
            .call(
                Method::POST,
                &[Port::COLLECTION],
                &[],
                Some(&json!({ Port::PLURAL: bodies })),
                false,
            )
            .await?;
        let mut made: Vec<Port> = Self::decode(r.body, Port::PLURAL, Port::COLLECTION)?;
        if made.len() != ports.len() {
            return Err(NeutronError::Decode(ErrorContext::new(
                "POST",
                "/v2.0/ports",
                format!(
                    "bulk create returned {} ports for {} requested",
                    made.len(),
                    ports.len()
                ),
            )));
        }
        for (i, port_tags) in tags.iter().enumerate() {
            // Tags Neutron applied from the body need no second request.
            if port_tags.iter().all(|t| made[i].tags.contains(t)) {
                continue;
            }
            let (done, rest) = made.split_at_mut(i);
            if let Err(e) = self.tag_new(&mut rest[0], port_tags).await {
                // All or nothing, like the bulk create itself.
                for p in done.iter().chain(rest[1..].iter()) {
                    if let Err(undo) = self.delete::<Port>(&p.id).await {
                        tracing::warn!(port = %p.id, error = %undo, "cannot delete a port of a failed bulk create");
                    }
                }
                return Err(e);
            }
        }
        Ok(made)
    }

    /// Replace the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Tell `observer` of every HTTP attempt (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, method: &Method, path: &str, outcome: RequestOutcome, elapsed: Duration) {
        if let Some(o) = &self.observer {
            o.observe(method.as_str(), path, outcome, elapsed);
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// `{endpoint}/v2.0/{segments...}` with each segment escaped.
    fn url(endpoint: &str, segments: &[&str]) -> Result<Url> {
        let mut base = endpoint.trim_end_matches('/').to_string();
        if !base.ends_with("/v2.0") {
            base.push_str("/v2.0");
        }
        let mut url = Url::parse(&base).map_err(|e| {
            NeutronError::Config(format!("invalid Neutron endpoint {endpoint:?}: {e}"))
        })?;
        {
            let mut p = url.path_segments_mut().map_err(|_| {
                NeutronError::Config(format!("invalid Neutron endpoint {endpoint:?}"))
            })?;
            p.pop_if_empty();
            // The collection (first) may sit under an extension's prefix (`qos/policies`);
            // the other segments are values (ids, tags) and are encoded whole.
            for (i, s) in segments.iter().enumerate() {
                if i == 0 {
                    for part in s.split('/') {
                        p.push(part);
                    }
                } else {
                    p.push(s);
                }
            }
        }
        Ok(url)
    }

    /// One API call: auth, retries, error mapping, logging. `query` is applied to the URL;
    /// `idempotent` allows retries on transient failures.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(String, String)],
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Response> {
        let mut attempt: u32 = 0;
        let mut reauthenticated = false;
        loop {
            let creds = self.session.credentials().await?;
            let mut url = Self::url(&creds.endpoint, segments)?;
            if !query.is_empty() {
                let mut q = url.query_pairs_mut();
                for (k, v) in query {
                    q.append_pair(k, v);
                }
            }
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            let mut req = self
                .http
                .request(method.clone(), url)
                .header("accept", "application/json");
            if let Some(t) = &creds.token {
                req = req.header(AUTH_TOKEN, t.expose_secret());
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = Instant::now();
            let result = req.send().await;
            let elapsed = started.elapsed();
            let elapsed_ms = elapsed.as_millis() as u64;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let mut ctx = ErrorContext::new(method.as_str(), &path, describe_reqwest(&e));
                    if e.is_connect() {
                        ctx = ctx.unsent();
                    }
                    let timeout = e.is_timeout();
                    let outcome = if timeout {
                        RequestOutcome::Timeout
                    } else {
                        RequestOutcome::Transport
                    };
                    self.observe(&method, &path, outcome, elapsed);
                    tracing::debug!(method = %method, path = %path, elapsed_ms, error = %ctx.message, "neutron request failed");
                    // A timed-out request may still be running: only retry fast failures.
                    if idempotent && !timeout && attempt < self.retry.max_retries {
                        tokio::time::sleep(self.retry.delay(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(if timeout {
                        NeutronError::Timeout(ctx)
                    } else {
                        NeutronError::Transport(ctx)
                    });
                }
            };
            let status = resp.status();
            self.observe(
                &method,
                &path,
                RequestOutcome::Status(status.as_u16()),
                elapsed,
            );
            let request_id = resp
                .headers()
                .get("x-openstack-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            tracing::debug!(method = %method, path = %path, status = status.as_u16(), elapsed_ms, request_id = request_id.as_deref().unwrap_or("-"), "neutron request");
            if status == StatusCode::UNAUTHORIZED && creds.token.is_some() && !reauthenticated {
                // Neutron did nothing with the request: re-sending is safe for any method.
                reauthenticated = true;
                self.session.invalidate(creds.generation).await;
                continue;
            }
            if idempotent
                && matches!(status.as_u16(), 502..=504)
                && attempt < self.retry.max_retries
            {
                tokio::time::sleep(self.retry.delay(attempt)).await;
                attempt += 1;
                continue;
            }
            let text = resp.text().await.map_err(|e| {
                NeutronError::Transport(
                    ErrorContext::new(
                        method.as_str(),
                        &path,
                        format!("reading the response: {}", describe_reqwest(&e)),
                    )
                    .with_request_id(request_id.clone()),
                )
            })?;
            if !status.is_success() {
                let (kind, message) = error_message(&text);
                let mut ctx =
                    ErrorContext::new(method.as_str(), &path, message).with_request_id(request_id);
                ctx.kind = kind.map(String::into_boxed_str);
                return Err(NeutronError::from_status(status.as_u16(), ctx));
            }
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    NeutronError::Decode(
                        ErrorContext::new(
                            method.as_str(),
                            &path,
                            format!("response is not JSON: {e}"),
                        )
                        .with_request_id(request_id),
                    )
                })?
            };
            return Ok(Response { status, body });
        }
    }

    fn decode<T: DeserializeOwned>(v: Value, key: &str, what: &str) -> Result<T> {
        let inner = match v {
            Value::Object(mut m) if m.contains_key(key) => m.remove(key).expect("checked"),
            other => other,
        };
        serde_json::from_value(inner).map_err(|e| {
            NeutronError::Decode(ErrorContext::new(
                "",
                what,
                format!("cannot decode {key}: {e}"),
            ))
        })
    }

    /// GET a collection, following `next` links until complete.
    async fn list<R: Resource>(&self, filters: &Filters) -> Result<Vec<R>> {
        let (collection, key) = (R::COLLECTION, R::PLURAL);
        let mut out: Vec<R> = Vec::new();
        let mut query = filters.query();
        let mut seen: Vec<Vec<(String, String)>> = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self
                .call(Method::GET, &[collection], &query, None, true)
                .await?;
            let mut body = resp.body;
            let items: Vec<R> = Self::decode(
                body.get_mut(key).map(Value::take).unwrap_or(Value::Null),
                key,
                collection,
            )?;
            let count = items.len();
            out.extend(items);
            let next = body
                .get(format!("{key}_links"))
                .and_then(Value::as_array)
                .and_then(|links| {
                    links
                        .iter()
                        .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
                })
                .and_then(|l| l.get("href").and_then(Value::as_str))
                .map(str::to_string);
            let Some(href) = next else { return Ok(out) };
            if count == 0 {
                return Ok(out);
            }
            // Keep our own endpoint (a proxy may rewrite scheme/host); take only the query.
            let parsed = Url::parse(&href).map_err(|e| {
                NeutronError::Decode(ErrorContext::new(
                    "GET",
                    collection,
                    format!("invalid next link {href:?}: {e}"),
                ))
            })?;
            let next_query: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if seen.contains(&next_query) || next_query == query {
                return Err(NeutronError::Decode(ErrorContext::new(
                    "GET",
                    collection,
                    "pagination loops: the next link repeats an earlier page",
                )));
            }
            seen.push(query);
            query = next_query;
        }
        Err(NeutronError::Decode(ErrorContext::new(
            "GET",
            collection,
            format!("more than {MAX_PAGES} pages"),
        )))
    }

    async fn get<R: Resource>(&self, id: &str) -> Result<R> {
        let r = self
            .call(Method::GET, &[R::COLLECTION, id], &[], None, true)
            .await?;
        Self::decode(r.body, R::SINGULAR, R::COLLECTION)
    }

    /// POST a resource. Neutron (up to 29 at least) refuses `tags` in the POST body, so tags
    /// go in a second request; if that fails the new resource is deleted again, so the caller
    /// sees one operation that either happened completely or not at all.
    async fn create<R: Resource>(&self, body: &R::Create) -> Result<R> {
        let (collection, key) = (R::COLLECTION, R::SINGULAR);
        let mut value = serde_json::to_value(body).map_err(|e| {
            NeutronError::Decode(ErrorContext::new(
                "POST",
                collection,
                format!("cannot encode {key}: {e}"),
            ))
        })?;
        let tags = match R::KIND {
            Some(_) => take_tags(&mut value),
            None => Vec::new(),
        };
        let r = self
            .call(
                Method::POST,
                &[collection],
                &[],
                Some(&json!({ key: value })),
                false,
            )
            .await?;
        let mut made: R = Self::decode(r.body, key, collection)?;
        if !tags.is_empty() {
            self.tag_new(&mut made, &tags).await?;
        }
        Ok(made)
    }

    /// Set the tags of a resource just created, deleting it if that fails.
    async fn tag_new<R: Resource>(&self, made: &mut R, tags: &[String]) -> Result<()> {
        let Some(kind) = R::KIND else {
            return Ok(());
        };
        match self.replace_tags(kind, made.id(), tags).await {
            Ok(t) => {
                made.set_tags(t);
                Ok(())
            }
            Err(e) => {
                if let Err(undo) = self.delete::<R>(made.id()).await {
                    tracing::warn!(resource = %kind, id = made.id(), error = %undo, "cannot delete a resource whose tagging failed");
                }
                Err(e)
            }
        }
    }

    async fn update<R: Resource>(&self, id: &str, body: &R::Update) -> Result<R> {
        let r = self
            .call(
                Method::PUT,
                &[R::COLLECTION, id],
                &[],
                Some(&json!({ R::SINGULAR: body })),
                true,
            )
            .await?;
        Self::decode(r.body, R::SINGULAR, R::COLLECTION)
    }

    async fn delete<R: Resource>(&self, id: &str) -> Result<()> {
        self.call(Method::DELETE, &[R::COLLECTION, id], &[], None, true)
            .await
            .map(|_| ())
    }

    async fn trunk_action(&self, trunk_id: &str, action: &str, body: Value) -> Result<Trunk> {
        // Not idempotent: a retried add after a lost reply would fail with a conflict.
        let r = self
            .call(
                Method::PUT,
                &[Trunk::COLLECTION, trunk_id, action],
                &[],
                Some(&body),
                false,
            )
            .await?;
        Self::decode(r.body, Trunk::SINGULAR, Trunk::COLLECTION)
    }
}

#[async_trait]
impl NeutronApi for HttpNeutron {
    async fn list_networks(&self, filters: &Filters) -> Result<Vec<Network>> {
        self.list(filters).await
    }
    async fn get_network(&self, id: &str) -> Result<Network> {
        self.get(id).await
    }
    async fn create_network(&self, network: &NewNetwork) -> Result<Network> {
        self.create(network).await
    }
    async fn update_network(&self, id: &str, update: &NetworkUpdate) -> Result<Network> {
        self.update(id, update).await
    }
    async fn delete_network(&self, id: &str) -> Result<()> {
        self.delete::<Network>(id).await
    }

    async fn list_subnets(&self, filters: &Filters) -> Result<Vec<Subnet>> {
        self.list(filters).await
    }
    async fn get_subnet(&self, id: &str) -> Result<Subnet> {
        self.get(id).await
    }
    async fn create_subnet(&self, subnet: &NewSubnet) -> Result<Subnet> {
        self.create(subnet).await
    }
    async fn update_subnet(&self, id: &str, update: &SubnetUpdate) -> Result<Subnet> {
        self.update(id, update).await
    }
    async fn delete_subnet(&self, id: &str) -> Result<()> {
        self.delete::<Subnet>(id).await
    }

    async fn list_subnetpools(&self, filters: &Filters) -> Result<Vec<SubnetPool>> {
        self.list(filters).await
    }
    async fn get_subnetpool(&self, id: &str) -> Result<SubnetPool> {
        self.get(id).await
    }
    async fn create_subnetpool(&self, pool: &NewSubnetPool) -> Result<SubnetPool> {
        self.create(pool).await
    }
    async fn update_subnetpool(&self, id: &str, update: &SubnetPoolUpdate) -> Result<SubnetPool> {
        self.update(id, update).await
    }
    async fn delete_subnetpool(&self, id: &str) -> Result<()> {
        self.delete::<SubnetPool>(id).await
    }

    async fn list_ports(&self, filters: &Filters) -> Result<Vec<Port>> {
        self.list(filters).await
    }
    async fn get_port(&self, id: &str) -> Result<Port> {
        self.get(id).await
    }
    async fn create_port(&self, port: &NewPort) -> Result<Port> {
        if self.port_tags_in_body() && port.tags.as_ref().is_some_and(|t| !t.is_empty()) {
            let mut made = self.create_ports(std::slice::from_ref(port)).await?;
            return Ok(made.remove(0));
        }
        self.create(port).await
    }
    async fn create_ports(&self, ports: &[NewPort]) -> Result<Vec<Port>> {
        let in_body = self.port_tags_in_body();
        match self.create_ports_once(ports, in_body).await {
            // An older Neutron that refuses the attribute: tags after, from now on.
            Err(e) if in_body && e.is_bad_request() && e.to_string().contains("tags") => {
                tracing::info!("neutron refuses tags in a port create: they are set after");
                self.port_tags_in_body
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                self.create_ports_once(ports, false).await
            }
            other => other,
        }
    }
    async fn update_port(&self, id: &str, update: &PortUpdate) -> Result<Port> {
        self.update(id, update).await
    }
    async fn delete_port(&self, id: &str) -> Result<()> {
        self.delete::<Port>(id).await
    }

    async fn add_tag(&self, kind: ResourceKind, id: &str, tag: &str) -> Result<()> {
        self.call(
            Method::PUT,
            &[kind.collection(), id, "tags", tag],
            &[],
            None,
            true,
        )
        .await
        .map(|_| ())
    }
    async fn add_tags(&self, kind: ResourceKind, id: &str, tags: &[String]) -> Result<()> {
        // Adding tags that are there already changes nothing: safe to retry.
        self.call(
            Method::POST,
            &[kind.collection(), id, "tags"],
            &[],
            Some(&json!({ "tags": tags })),
            true,
        )
        .await
        .map(|_| ())
    }
    async fn remove_tag(&self, kind: ResourceKind, id: &str, tag: &str) -> Result<()> {
        self.call(
            Method::DELETE,
            &[kind.collection(), id, "tags", tag],
            &[],
            None,
            true,
        )
        .await
        .map(|_| ())
    }
    async fn replace_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        tags: &[String],
    ) -> Result<Vec<String>> {
        let r = self
            .call(
                Method::PUT,
                &[kind.collection(), id, "tags"],
                &[],
                Some(&json!({ "tags": tags })),
                true,
            )
            .await?;
        if r.status == StatusCode::NO_CONTENT || r.body.is_null() {
            return Ok(tags.to_vec());
        }
        Self::decode(r.body, "tags", kind.collection())
    }

    async fn list_security_groups(&self, filters: &Filters) -> Result<Vec<SecurityGroup>> {
        self.list(filters).await
    }
    async fn list_qos_policies(&self, filters: &Filters) -> Result<Vec<QosPolicy>> {
        self.list(filters).await
    }
    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.get(id).await
    }
    async fn create_security_group(&self, group: &NewSecurityGroup) -> Result<SecurityGroup> {
        self.create(group).await
    }
    async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.delete::<SecurityGroup>(id).await
    }
    async fn list_security_group_rules(&self, filters: &Filters) -> Result<Vec<SecurityGroupRule>> {
        self.list(filters).await
    }
    async fn create_security_group_rule(
        &self,
        rule: &NewSecurityGroupRule,
    ) -> Result<SecurityGroupRule> {
        self.create(rule).await
    }
    async fn delete_security_group_rule(&self, id: &str) -> Result<()> {
        self.delete::<SecurityGroupRule>(id).await
    }

    async fn list_trunks(&self, filters: &Filters) -> Result<Vec<Trunk>> {
        self.list(filters).await
    }
    async fn get_trunk(&self, id: &str) -> Result<Trunk> {
        self.get(id).await
    }
    async fn create_trunk(&self, trunk: &NewTrunk) -> Result<Trunk> {
        self.create(trunk).await
    }
    async fn delete_trunk(&self, id: &str) -> Result<()> {
        self.delete::<Trunk>(id).await
    }
    async fn add_subports(&self, trunk_id: &str, subports: &[SubPort]) -> Result<Trunk> {
        self.trunk_action(trunk_id, "add_subports", json!({ "sub_ports": subports }))
            .await
    }
    async fn remove_subports(&self, trunk_id: &str, port_ids: &[String]) -> Result<Trunk> {
        let subs: Vec<Value> = port_ids.iter().map(|p| json!({ "port_id": p })).collect();
        self.trunk_action(trunk_id, "remove_subports", json!({ "sub_ports": subs }))
            .await
    }

    async fn list_extensions(&self) -> Result<Vec<Extension>> {
        let r = self
            .call(Method::GET, &["extensions"], &[], None, true)
            .await?;
        Self::decode(r.body, "extensions", "extensions")
    }

    async fn token_project(&self) -> Result<Option<String>> {
        Ok(self.session.credentials().await?.project_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_error_bodies() {
        let u = HttpNeutron::url(
            "http://n:9696/",
            &["ports", "a b", "tags", "kuryr.net.uuid.lh:ab/c"],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "http://n:9696/v2.0/ports/a%20b/tags/kuryr.net.uuid.lh:ab%2Fc"
        );
        let u = HttpNeutron::url("http://n:9696", &["qos/policies", "a/b"]).unwrap();
        assert_eq!(u.as_str(), "http://n:9696/v2.0/qos/policies/a%2Fb");
        let u = HttpNeutron::url("https://cloud/networking/v2.0", &["networks"]).unwrap();
        assert_eq!(u.as_str(), "https://cloud/networking/v2.0/networks");
        let (k, m) = error_message(
            r#"{"NeutronError": {"type": "PortNotFound", "message": "Port x could not be found.", "detail": ""}}"#,
        );
        assert_eq!(
            (k.as_deref(), m.as_str()),
            (Some("PortNotFound"), "Port x could not be found.")
        );
        let (k, m) = error_message(
            r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#,
        );
        assert_eq!(k.as_deref(), Some("Unauthorized"));
        assert!(m.starts_with("The request"));
        assert_eq!(error_message(&"x".repeat(2000)).1.len(), MAX_MESSAGE);
        assert_eq!(RetryPolicy::default().delay(0), Duration::from_millis(200));
        assert_eq!(RetryPolicy::default().delay(2), Duration::from_millis(800));
        assert_eq!(RetryPolicy::default().delay(10), Duration::from_secs(2));
        assert_eq!(
            RetryPolicy::default().delay(u32::MAX),
            Duration::from_secs(2)
        );
    }
}
