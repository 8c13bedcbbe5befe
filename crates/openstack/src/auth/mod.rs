//! Keystone v3 authentication and the service catalog.
//!
//! A [`Session`] turns an [`AuthConfig`] into what each Neutron request needs: the Neutron
//! endpoint and a token. Tokens are cached and renewed before they expire (5 minutes early, or at
//! half their lifetime for short-lived tokens); renewal is single-flight (one request to Keystone
//! however many callers need a token) and a 401 from Neutron invalidates the token it was sent
//! with, once, so concurrent 401s cause one re-authentication.

mod options;
mod sources;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::neutron::{ErrorContext, NeutronError, Result};

pub use options::KeystoneOptions;
pub use sources::{AuthSource, ClientSettings, TransportOptions};

/// Keystone header carrying the issued token.
const SUBJECT_TOKEN: &str = "x-subject-token";
/// Header carrying the token on requests.
pub(crate) const AUTH_TOKEN: &str = "x-auth-token";
/// Renew this long before expiry...
const RENEW_MARGIN: Duration = Duration::from_secs(300);
/// ...or at this fraction of the lifetime when that is shorter.
const RENEW_FRACTION: f64 = 0.5;

/// Which catalog endpoint to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    /// Accepts keystoneauth's and the legacy `publicURL` spellings.
    pub fn parse(s: &str) -> Option<Self> {
        match s
            .trim()
            .trim_end_matches("URL")
            .to_ascii_lowercase()
            .as_str()
        {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// How the Neutron endpoint is found when a token is issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogOptions {
    /// Catalog service type; `network` for Neutron.
    pub service_type: String,
    pub interface: Interface,
    pub region: Option<String>,
    /// Use this URL instead of the catalog's.
    pub endpoint_override: Option<String>,
}

impl CatalogOptions {
    pub fn network() -> Self {
        CatalogOptions {
            service_type: "network".into(),
            ..Default::default()
        }
    }
}

/// A user, by id or by name within a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRef {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
}

/// What a token is scoped to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// A project by id, or by name within a domain.
    Project {
        id: Option<String>,
        name: Option<String>,
        domain_id: Option<String>,
        domain_name: Option<String>,
    },
    Domain {
        id: Option<String>,
        name: Option<String>,
    },
    /// No scope (application credentials carry their own).
    #[default]
    Unscoped,
}

/// How to authenticate.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// A Neutron with `auth_strategy = noauth`: no token, fixed endpoint (`auth_type = none`).
    NoAuth { endpoint: String },
    /// Keystone v3 password.
    Password {
        auth_url: String,
        user: UserRef,
        password: SecretString,
        scope: Scope,
        catalog: CatalogOptions,
    },
    /// Keystone v3 application credential (by id, or by name with its user).
    ApplicationCredential {
        auth_url: String,
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
        secret: SecretString,
        catalog: CatalogOptions,
    },
    /// An existing token. With `auth_url` it is exchanged for a scoped token with a catalog
    /// (`v3token`); without, it is used as is against `catalog.endpoint_override` (`admin_token`).
    Token {
        auth_url: Option<String>,
        token: SecretString,
        scope: Scope,
        catalog: CatalogOptions,
    },
}

impl AuthConfig {
    /// These keystoneauth options alone (see [`ClientSettings::resolve`] for the clouds.yaml and
    /// environment fall-backs).
    pub fn from_options(opts: &KeystoneOptions) -> Result<AuthConfig> {
        sources::auth_from_options(opts)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AuthConfig::NoAuth { .. } => "none",
            AuthConfig::Password { .. } => "password",
            AuthConfig::ApplicationCredential { .. } => "v3applicationcredential",
            AuthConfig::Token {
                auth_url: Some(_), ..
            } => "token",
            AuthConfig::Token { auth_url: None, .. } => "admin_token",
        }
    }

    /// Keystone's URL, if this mode talks to Keystone.
    pub fn auth_url(&self) -> Option<&str> {
        match self {
            AuthConfig::NoAuth { .. } => None,
            AuthConfig::Password { auth_url, .. }
            | AuthConfig::ApplicationCredential { auth_url, .. } => Some(auth_url),
            AuthConfig::Token { auth_url, .. } => auth_url.as_deref(),
        }
    }
}

/// What a request needs. `generation` identifies the token so a 401 invalidates only it.
#[derive(Clone)]
pub struct Credentials {
    /// The Neutron endpoint (catalog URL or override), without the `v2.0` suffix.
    pub endpoint: String,
    pub token: Option<SecretString>,
    pub generation: u64,
    /// Project the token is scoped to, when Keystone said.
    pub project_id: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("generation", &self.generation)
            .finish()
    }
}

struct Cached {
    creds: Arc<Credentials>,
    renew_at: Option<Instant>,
}

/// Token cache and catalog lookup for one [`AuthConfig`].
pub struct Session {
    auth: AuthConfig,
    http: reqwest::Client,
    state: Mutex<(Option<Cached>, u64)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("auth", &self.auth.kind())
            .finish()
    }
}

/// `.../v3` whatever form `auth_url` takes (`http://ks:5000`, `.../v3/`, `.../identity`).
fn v3_url(auth_url: &str) -> String {
    let u = auth_url.trim_end_matches('/');
    if u.ends_with("/v3") {
        u.to_string()
    } else {
        format!("{u}/v3")
    }
}

fn user_json(u: &UserRef) -> Value {
    let mut user = serde_json::Map::new();
    if let Some(id) = &u.id {
        user.insert("id".into(), json!(id));
    }
    if let Some(name) = &u.name {
        user.insert("name".into(), json!(name));
        if let Some(d) = &u.domain_id {
            user.insert("domain".into(), json!({ "id": d }));
        } else if let Some(d) = &u.domain_name {
            user.insert("domain".into(), json!({ "name": d }));
        }
    }
    Value::Object(user)
}

fn scope_json(s: &Scope) -> Option<Value> {
    match s {
        Scope::Unscoped => None,
        Scope::Project { id: Some(id), .. } => Some(json!({"project": {"id": id}})),
        Scope::Project {
            id: None,
            name,
            domain_id,
            domain_name,
        } => {
            let domain = match (domain_id, domain_name) {
                (Some(d), _) => json!({"id": d}),
                (None, Some(d)) => json!({"name": d}),
                (None, None) => json!({"id": "default"}),
            };
            Some(json!({"project": {"name": name, "domain": domain}}))
        }
        Scope::Domain { id: Some(id), .. } => Some(json!({"domain": {"id": id}})),
        Scope::Domain { id: None, name } => Some(json!({"domain": {"name": name}})),
    }
}

/// The body of `POST /v3/auth/tokens`.
fn auth_body(auth: &AuthConfig) -> Option<Value> {
    let (identity, scope) = match auth {
        AuthConfig::NoAuth { .. } | AuthConfig::Token { auth_url: None, .. } => return None,
        AuthConfig::Password {
            user,
            password,
            scope,
            ..
        } => {
            let mut u = user_json(user);
            u["password"] = json!(password.expose_secret());
            (
                json!({"methods": ["password"], "password": {"user": u}}),
                scope_json(scope),
            )
        }
        AuthConfig::ApplicationCredential {
            id,
            name,
            user,
            secret,
            ..
        } => {
            let mut ac = serde_json::Map::new();
            if let Some(id) = id {
                ac.insert("id".into(), json!(id));
            }
            if let Some(n) = name {
                ac.insert("name".into(), json!(n));
            }
            if let Some(u) = user {
                ac.insert("user".into(), user_json(u));
            }
            ac.insert("secret".into(), json!(secret.expose_secret()));
            (
                json!({"methods": ["application_credential"], "application_credential": ac}),
                None,
            )
        }
        AuthConfig::Token { token, scope, .. } => (
            json!({"methods": ["token"], "token": {"id": token.expose_secret()}}),
            scope_json(scope),
        ),
    };
    let mut auth = json!({ "identity": identity });
    if let Some(s) = scope {
        auth["scope"] = s;
    }
    Some(json!({ "auth": auth }))
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: Option<String>,
    issued_at: Option<String>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
    project: Option<IdOnly>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// One service of the Keystone catalog.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogEntry {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// One endpoint of a catalog service.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogEndpoint {
    pub interface: String,
    pub url: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
}

/// Pick the endpoint for `opts` from a catalog; the error lists what the catalog offers.
pub fn select_endpoint(
    catalog: &[CatalogEntry],
    opts: &CatalogOptions,
) -> std::result::Result<String, String> {
    let services: Vec<&CatalogEntry> = catalog
        .iter()
        .filter(|c| c.service_type == opts.service_type)
        .collect();
    if services.is_empty() {
        let types: Vec<&str> = catalog.iter().map(|c| c.service_type.as_str()).collect();
        return Err(format!(
            "no {:?} service in the catalog (services: {})",
            opts.service_type,
            types.join(", ")
        ));
    }
    let region_ok = |e: &CatalogEndpoint| match &opts.region {
        None => true,
        Some(r) => {
            e.region_id.as_deref() == Some(r.as_str()) || e.region.as_deref() == Some(r.as_str())
        }
    };
    for s in &services {
        if let Some(e) = s
            .endpoints
            .iter()
            .find(|e| e.interface == opts.interface.as_str() && region_ok(e))
        {
            return Ok(e.url.clone());
        }
    }
    let offered: Vec<String> = services
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            format!(
                "{} in {}",
                e.interface,
                e.region_id
                    .as_deref()
                    .or(e.region.as_deref())
                    .unwrap_or("any region")
            )
        })
        .collect();
    Err(format!(
        "no {} {:?} endpoint{} in the catalog (offered: {})",
        opts.interface.as_str(),
        opts.service_type,
        opts.region
            .as_deref()
            .map(|r| format!(" in region {r}"))
            .unwrap_or_default(),
        offered.join(", ")
    ))
}

/// Seconds since the epoch of an ISO 8601 UTC time as Keystone writes it
/// (`2026-11-28T12:00:00.000000Z`).
pub(crate) fn parse_keystone_time(s: &str) -> Option<SystemTime> {
    let s = s.trim().trim_end_matches('Z');
    let s = s.strip_suffix("+00:00").unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let days = kuryr_types::calendar::days_from_civil(y, m, day);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// When to renew a token of `lifetime`, counted from now.
fn renew_after(lifetime: Duration) -> Duration {
    let early = lifetime.mul_f64(RENEW_FRACTION).min(RENEW_MARGIN);
    lifetime.saturating_sub(early)
}

fn request_id(h: &reqwest::header::HeaderMap) -> Option<String> {
    h.get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Session {
    pub fn new(auth: AuthConfig, http: reqwest::Client) -> Self {
        Session {
            auth,
            http,
            state: Mutex::new((None, 0)),
        }
    }

    pub fn auth(&self) -> &AuthConfig {
        &self.auth
    }

    /// Endpoint and token, authenticating if there is no valid cached token.
    pub async fn credentials(&self) -> Result<Arc<Credentials>> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.0 {
            if c.renew_at.is_none_or(|t| Instant::now() < t) {
                return Ok(c.creds.clone());
            }
        }
        // Still holding the lock: concurrent callers wait for this one authentication.
        state.1 += 1;
        let generation = state.1;
        let cached = self.authenticate(generation).await?;
        let creds = cached.creds.clone();
        state.0 = Some(cached);
        Ok(creds)
    }

    /// Drop the token of `generation` (after a 401); a newer token is kept.
    pub async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state
            .0
            .as_ref()
            .is_some_and(|c| c.creds.generation == generation)
        {
            state.0 = None;
        }
    }

    async fn authenticate(&self, generation: u64) -> Result<Cached> {
        let catalog = match &self.auth {
            AuthConfig::NoAuth { endpoint } => {
                let creds = Credentials {
                    endpoint: endpoint.clone(),
                    token: None,
                    generation,
                    project_id: None,
                };
                return Ok(Cached {
                    creds: Arc::new(creds),
                    renew_at: None,
                });
            }
            AuthConfig::Token {
                auth_url: None,
                token,
                catalog,
                ..
            } => {
                let endpoint = catalog.endpoint_override.clone().ok_or_else(|| {
                    NeutronError::Config("a token without auth_url needs an endpoint".into())
                })?;
                let creds = Credentials {
                    endpoint,
                    token: Some(token.clone()),
                    generation,
                    project_id: None,
                };
                return Ok(Cached {
                    creds: Arc::new(creds),
                    renew_at: None,
                });
            }
            AuthConfig::Password { catalog, .. }
            | AuthConfig::ApplicationCredential { catalog, .. }
            | AuthConfig::Token { catalog, .. } => catalog,
        };
        let auth_url = self
            .auth
            .auth_url()
            .expect("keystone modes have an auth_url");
        let url = format!("{}/auth/tokens", v3_url(auth_url));
        let path = reqwest::Url::parse(&url)
            .map(|u| u.path().to_string())
            .unwrap_or_else(|_| url.clone());
        let body = auth_body(&self.auth).expect("keystone modes have a body");
        let started = Instant::now();
        let resp = self.http.post(&url).json(&body).send().await.map_err(|e| {
            let ctx = ErrorContext::new(
                "POST",
                &path,
                format!(
                    "keystone at {auth_url}: {}",
                    crate::neutron::describe_reqwest(&e)
                ),
            );
            if e.is_timeout() {
                NeutronError::Timeout(ctx)
            } else {
                NeutronError::Transport(ctx)
            }
        })?;
        let status = resp.status();
        let rid = request_id(resp.headers());
        tracing::debug!(method = "POST", path = %path, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, request_id = rid.as_deref().unwrap_or("-"), "keystone request");
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let msg = crate::neutron::error_message(&text).1;
            let ctx = ErrorContext::new(
                "POST",
                &path,
                format!("keystone refused the credentials: {msg}"),
            )
            .with_request_id(rid);
            return Err(NeutronError::from_status(status.as_u16(), ctx));
        }
        let token = resp
            .headers()
            .get(SUBJECT_TOKEN)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(|s| SecretString::from(s.to_string()))
            .ok_or_else(|| {
                NeutronError::Decode(
                    ErrorContext::new("POST", &path, "keystone sent no X-Subject-Token")
                        .with_request_id(rid.clone()),
                )
            })?;
        let body: TokenBody = resp.json().await.map_err(|e| {
            NeutronError::Decode(
                ErrorContext::new("POST", &path, format!("keystone token body: {e}"))
                    .with_request_id(rid.clone()),
            )
        })?;
        let endpoint = match &catalog.endpoint_override {
            Some(e) => e.clone(),
            None => select_endpoint(&body.token.catalog, catalog).map_err(NeutronError::Config)?,
        };
        let expires = body
            .token
            .expires_at
            .as_deref()
            .and_then(parse_keystone_time);
        // Lifetime from Keystone's own two timestamps: immune to clock skew between hosts.
        let lifetime = match (
            expires,
            body.token
                .issued_at
                .as_deref()
                .and_then(parse_keystone_time),
        ) {
            (Some(e), Some(i)) => e.duration_since(i).ok(),
            (Some(e), None) => e.duration_since(SystemTime::now()).ok(),
            _ => None,
        };
        let renew_at = lifetime.map(|l| started + renew_after(l));
        tracing::debug!(endpoint = %endpoint, lifetime_s = lifetime.map(|l| l.as_secs()), "authenticated with keystone");
        let creds = Credentials {
            endpoint,
            token: Some(token),
            generation,
            project_id: body.token.project.map(|p| p.id),
        };
        Ok(Cached {
            creds: Arc::new(creds),
            renew_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_times() {
        let t = parse_keystone_time("2026-11-28T12:00:00.500000Z").unwrap();
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_795_867_200);
        assert_eq!(d.subsec_millis(), 500);
        assert_eq!(
            parse_keystone_time("1970-01-01T00:00:10Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(10)
        );
        assert!(parse_keystone_time("yesterday").is_none());
    }

    #[test]
    fn renewal_is_early() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3300)
        );
        assert_eq!(
            renew_after(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn catalog_selection() {
        let cat: Vec<CatalogEntry> = serde_json::from_value(json!([
            {"type": "identity", "endpoints": []},
            {"type": "network", "name": "neutron", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "http://pub1"},
                {"interface": "internal", "region_id": "R1", "url": "http://int1"},
                {"interface": "public", "region": "R2", "url": "http://pub2"}
            ]}
        ]))
        .unwrap();
        let mut o = CatalogOptions::network();
        assert_eq!(select_endpoint(&cat, &o).unwrap(), "http://pub1");
        o.region = Some("R2".into());
        assert_eq!(select_endpoint(&cat, &o).unwrap(), "http://pub2");
        o.interface = Interface::Internal;
        let e = select_endpoint(&cat, &o).unwrap_err();
        assert!(
            e.contains("internal") && e.contains("R2") && e.contains("offered"),
            "{e}"
        );
        o.region = Some("R1".into());
        assert_eq!(select_endpoint(&cat, &o).unwrap(), "http://int1");
        o.service_type = "load-balancer".into();
        assert!(select_endpoint(&cat, &o)
            .unwrap_err()
            .contains("identity, network"));
    }

    #[test]
    fn auth_bodies() {
        let pw = AuthConfig::Password {
            auth_url: "http://ks".into(),
            user: UserRef {
                name: Some("u".into()),
                domain_name: Some("Default".into()),
                ..Default::default()
            },
            password: SecretString::from("pw"),
            scope: Scope::Project {
                id: None,
                name: Some("p".into()),
                domain_id: None,
                domain_name: Some("Default".into()),
            },
            catalog: CatalogOptions::network(),
        };
        let b = auth_body(&pw).unwrap();
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(b["auth"]["scope"]["project"]["name"], "p");
        assert!(
            !format!("{pw:?}").contains("\"pw\""),
            "Debug redacts the password"
        );
        let ac = AuthConfig::ApplicationCredential {
            auth_url: "http://ks".into(),
            id: Some("id".into()),
            name: None,
            user: None,
            secret: SecretString::from("s"),
            catalog: CatalogOptions::network(),
        };
        let b = auth_body(&ac).unwrap();
        assert_eq!(
            b["auth"]["identity"]["application_credential"],
            json!({"id": "id", "secret": "s"})
        );
        assert!(b["auth"].get("scope").is_none());
        assert_eq!(v3_url("http://ks:5000/"), "http://ks:5000/v3");
        assert_eq!(v3_url("http://ks:5000/v3/"), "http://ks:5000/v3");
    }
}
