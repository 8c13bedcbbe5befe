//! Where credentials come from: kuryr.conf `[neutron]`, else `OS_CLOUD` + `clouds.yaml`, else the
//! `OS_*` environment variables. All three are mapped to keystoneauth's option names
//! ([`KeystoneOptions`]) and built into an [`AuthConfig`] by one function.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde_yaml::Value as Yaml;

use super::{AuthConfig, CatalogOptions, Interface, KeystoneOptions, Scope, UserRef};
use crate::neutron::{NeutronError, Result};

/// Default per-request timeout when none is configured: well under the 60 s a plugin call gets,
/// so that a hanging Neutron fails the call with an error naming Neutron (and leaves time for
/// its rollback) instead of the call's own deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);
/// Connecting should never take long; a down Neutron must fail fast.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which source the credentials came from (shown by `check-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// kuryr.conf `[neutron]`.
    KuryrConf,
    /// `clouds.yaml` entry `cloud` in `file`.
    CloudsYaml { cloud: String, file: PathBuf },
    /// `OS_*` environment variables.
    Environment,
}

impl std::fmt::Display for AuthSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthSource::KuryrConf => f.write_str("kuryr.conf [neutron]"),
            AuthSource::CloudsYaml { cloud, file } => {
                write!(f, "cloud {cloud:?} of {}", file.display())
            }
            AuthSource::Environment => f.write_str("OS_* environment variables"),
        }
    }
}

/// TLS and timeout options of the HTTP client.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportOptions {
    /// PEM bundle of extra trusted CAs (`cafile`, clouds.yaml `cacert`, `OS_CACERT`).
    pub cafile: Option<PathBuf>,
    /// Client certificate and key, PEM (`certfile`/`keyfile`).
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// Skip server certificate verification.
    pub insecure: bool,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            cafile: None,
            certfile: None,
            keyfile: None,
            insecure: false,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl TransportOptions {
    fn from_options(o: &KeystoneOptions) -> Result<Self> {
        let timeout = match o.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t.is_finite() && t > 0.0 => Duration::from_secs_f64(t),
            Some(t) => {
                return Err(NeutronError::Config(format!(
                    "timeout must be a positive number of seconds, not {t}"
                )))
            }
        };
        Ok(TransportOptions {
            cafile: o.cafile.as_ref().map(PathBuf::from),
            certfile: o.certfile.as_ref().map(PathBuf::from),
            keyfile: o.keyfile.as_ref().map(PathBuf::from),
            insecure: o.insecure,
            timeout,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT.min(timeout),
        })
    }

    /// A reqwest client with these options.
    pub fn build_client(&self) -> Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("kuryr-rs/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &self.cafile {
            let pem = std::fs::read(ca).map_err(|e| {
                NeutronError::Config(format!("cannot read cafile {}: {e}", ca.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                NeutronError::Config(format!("invalid cafile {}: {e}", ca.display()))
            })?;
            if certs.is_empty() {
                return Err(NeutronError::Config(format!(
                    "cafile {} holds no certificate",
                    ca.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        match (&self.certfile, &self.keyfile) {
            (Some(cert), key) => {
                let mut pem = std::fs::read(cert).map_err(|e| {
                    NeutronError::Config(format!("cannot read certfile {}: {e}", cert.display()))
                })?;
                if let Some(k) = key {
                    pem.push(b'\n');
                    pem.extend(std::fs::read(k).map_err(|e| {
                        NeutronError::Config(format!("cannot read keyfile {}: {e}", k.display()))
                    })?);
                }
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    NeutronError::Config(format!(
                        "invalid client certificate {}: {e}",
                        cert.display()
                    ))
                })?;
                b = b.identity(id);
            }
            (None, Some(_)) => {
                return Err(NeutronError::Config(
                    "keyfile is set without certfile".into(),
                ))
            }
            (None, None) => {}
        }
        if self.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        b.build()
            .map_err(|e| NeutronError::Config(format!("cannot build the HTTP client: {e}")))
    }
}

/// Everything needed to build a client, and where it came from.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub auth: AuthConfig,
    pub transport: TransportOptions,
    pub source: AuthSource,
}

impl ClientSettings {
    /// `conf` (kuryr.conf's `[neutron]`, as `kuryr-config` parsed it) if it configures auth, else
    /// `OS_CLOUD` + clouds.yaml, else `OS_*`.
    pub fn resolve(conf: &KeystoneOptions) -> Result<Self> {
        Self::resolve_with_env(conf, &|k| std::env::var(k).ok())
    }

    /// [`ClientSettings::resolve`] with an explicit environment (tests).
    pub fn resolve_with_env(
        conf: &KeystoneOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let (mut opts, source) = if conf.is_configured() {
            (conf.clone(), AuthSource::KuryrConf)
        } else if let Some(cloud) = env("OS_CLOUD").filter(|c| !c.is_empty()) {
            let (o, file) = options_from_clouds_yaml(&cloud, env)?;
            (o, AuthSource::CloudsYaml { cloud, file })
        } else {
            let o = options_from_env(env)?;
            if !o.is_configured() {
                return Err(NeutronError::Config(
                    "no Neutron credentials: set auth_type/auth_url or endpoint in kuryr.conf [neutron], or OS_CLOUD, or OS_AUTH_URL".into(),
                ));
            }
            (o, AuthSource::Environment)
        };
        // kuryr.conf's region applies when the other sources do not set one.
        if opts.region_name.is_none() {
            opts.region_name = conf.region_name.clone();
        }
        Ok(ClientSettings {
            auth: auth_from_options(&opts)?,
            transport: TransportOptions::from_options(&opts)?,
            source,
        })
    }
}

fn user_from(o: &KeystoneOptions) -> UserRef {
    UserRef {
        id: o.user_id.clone(),
        name: o.username.clone(),
        domain_id: o
            .user_domain_id
            .clone()
            .or_else(|| o.default_domain_id.clone()),
        domain_name: o
            .user_domain_name
            .clone()
            .or_else(|| o.default_domain_name.clone()),
    }
}

fn scope_from(o: &KeystoneOptions) -> Scope {
    if o.project_id.is_some() || o.project_name.is_some() {
        Scope::Project {
            id: o.project_id.clone(),
            name: o.project_name.clone(),
            domain_id: o
                .project_domain_id
                .clone()
                .or_else(|| o.default_domain_id.clone()),
            domain_name: o
                .project_domain_name
                .clone()
                .or_else(|| o.default_domain_name.clone()),
        }
    } else if o.domain_id.is_some() || o.domain_name.is_some() {
        Scope::Domain {
            id: o.domain_id.clone(),
            name: o.domain_name.clone(),
        }
    } else {
        Scope::Unscoped
    }
}

fn required<'a>(v: &'a Option<String>, what: &str, auth_type: &str) -> Result<&'a String> {
    v.as_ref()
        .ok_or_else(|| NeutronError::Config(format!("auth_type {auth_type} needs {what}")))
}

/// Build an [`AuthConfig`] from keystoneauth options. `auth_type` defaults to `password`, or
/// `v3applicationcredential` / `token` when those credentials are the ones given, or `none` when
/// only an endpoint is.
pub(crate) fn auth_from_options(o: &KeystoneOptions) -> Result<AuthConfig> {
    let auth_type = match o.auth_type.as_deref() {
        Some(t) => t.to_string(),
        None if o.application_credential_secret.is_some() => "v3applicationcredential".into(),
        None if o.token.is_some() => "token".into(),
        None if o.auth_url.is_none() && o.endpoint.is_some() => "none".into(),
        None => "password".into(),
    };
    let interface_s = o.interface.as_deref().unwrap_or("public");
    let interface = Interface::parse(interface_s).ok_or_else(|| {
        NeutronError::Config(format!(
            "unknown interface {interface_s:?} (public, internal or admin)"
        ))
    })?;
    let catalog = CatalogOptions {
        service_type: "network".into(),
        interface,
        region: o.region_name.clone(),
        endpoint_override: o.endpoint.clone(),
    };
    let t = auth_type.as_str();
    match t {
        "none" | "noauth" => Ok(AuthConfig::NoAuth { endpoint: required(&o.endpoint, "endpoint", t)?.clone() }),
        "password" | "v3password" => {
            let auth_url = required(&o.auth_url, "auth_url", t)?.clone();
            if o.username.is_none() && o.user_id.is_none() {
                return Err(NeutronError::Config(format!("auth_type {t} needs username or user_id")));
            }
            let password = o
                .password
                .clone()
                .ok_or_else(|| NeutronError::Config(format!("auth_type {t} needs password")))?;
            Ok(AuthConfig::Password { auth_url, user: user_from(o), password, scope: scope_from(o), catalog })
        }
        "v3applicationcredential" | "applicationcredential" | "application_credential" => {
            let auth_url = required(&o.auth_url, "auth_url", t)?.clone();
            let secret = o
                .application_credential_secret
                .clone()
                .ok_or_else(|| NeutronError::Config(format!("auth_type {t} needs application_credential_secret")))?;
            if o.application_credential_id.is_none() && o.application_credential_name.is_none() {
                return Err(NeutronError::Config(format!(
                    "auth_type {t} needs application_credential_id or application_credential_name"
                )));
            }
            let user = (o.application_credential_id.is_none()).then(|| user_from(o));
            Ok(AuthConfig::ApplicationCredential {
                auth_url,
                id: o.application_credential_id.clone(),
                name: o.application_credential_name.clone(),
                user,
                secret,
                catalog,
            })
        }
        "token" | "v3token" => {
            let token = o.token.clone().ok_or_else(|| NeutronError::Config(format!("auth_type {t} needs token")))?;
            let auth_url = required(&o.auth_url, "auth_url", t)?.clone();
            Ok(AuthConfig::Token { auth_url: Some(auth_url), token, scope: scope_from(o), catalog })
        }
        "admin_token" | "token_endpoint" => {
            let token = o.token.clone().ok_or_else(|| NeutronError::Config(format!("auth_type {t} needs token")))?;
            required(&o.endpoint, "endpoint", t)?;
            Ok(AuthConfig::Token { auth_url: None, token, scope: Scope::Unscoped, catalog })
        }
        other => Err(NeutronError::Config(format!(
            "unsupported auth_type {other:?} (none, password, v3applicationcredential, token, admin_token)"
        ))),
    }
}

fn env_opt(env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    env(key).filter(|v| !v.is_empty())
}

/// The `OS_*` variables of openstackclient.
pub(crate) fn options_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<KeystoneOptions> {
    let e = |k: &str| env_opt(env, k);
    let timeout = match e("OS_TIMEOUT") {
        None => None,
        Some(t) => Some(
            t.parse::<f64>()
                .map_err(|_| NeutronError::Config(format!("OS_TIMEOUT is not a number: {t:?}")))?,
        ),
    };
    Ok(KeystoneOptions {
        auth_type: e("OS_AUTH_TYPE"),
        auth_url: e("OS_AUTH_URL"),
        username: e("OS_USERNAME"),
        user_id: e("OS_USER_ID"),
        password: e("OS_PASSWORD").map(SecretString::from),
        user_domain_name: e("OS_USER_DOMAIN_NAME"),
        user_domain_id: e("OS_USER_DOMAIN_ID"),
        project_name: e("OS_PROJECT_NAME").or_else(|| e("OS_TENANT_NAME")),
        project_id: e("OS_PROJECT_ID").or_else(|| e("OS_TENANT_ID")),
        project_domain_name: e("OS_PROJECT_DOMAIN_NAME"),
        project_domain_id: e("OS_PROJECT_DOMAIN_ID"),
        domain_name: e("OS_DOMAIN_NAME"),
        domain_id: e("OS_DOMAIN_ID"),
        default_domain_name: e("OS_DEFAULT_DOMAIN_NAME"),
        default_domain_id: e("OS_DEFAULT_DOMAIN_ID").or_else(|| e("OS_DEFAULT_DOMAIN")),
        application_credential_id: e("OS_APPLICATION_CREDENTIAL_ID"),
        application_credential_name: e("OS_APPLICATION_CREDENTIAL_NAME"),
        application_credential_secret: e("OS_APPLICATION_CREDENTIAL_SECRET")
            .map(SecretString::from),
        token: e("OS_TOKEN").map(SecretString::from),
        endpoint: e("OS_ENDPOINT").or_else(|| e("OS_NETWORK_ENDPOINT_OVERRIDE")),
        region_name: e("OS_REGION_NAME"),
        interface: e("OS_INTERFACE").or_else(|| e("OS_ENDPOINT_TYPE")),
        cafile: e("OS_CACERT"),
        certfile: e("OS_CERT"),
        keyfile: e("OS_KEY"),
        insecure: e("OS_INSECURE").is_some_and(|v| kuryr_types::parse_bool(&v) == Some(true)),
        timeout,
    })
}

/// clouds.yaml search order of openstacksdk: `OS_CLIENT_CONFIG_FILE`, the current directory,
/// the user's config directory, `/etc/openstack`.
fn clouds_yaml_candidates(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    v.push(PathBuf::from(name));
    let config_home = env_opt(env, "XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env_opt(env, "HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(c) = config_home {
        v.push(c.join("openstack").join(name));
    }
    v.push(Path::new("/etc/openstack").join(name));
    v
}

fn merge_yaml(base: &mut Yaml, over: Yaml) {
    match (base, over) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge_yaml(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn read_yaml(path: &Path) -> Result<Yaml> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| NeutronError::Config(format!("cannot read {}: {e}", path.display())))?;
    // The parser's message may quote file content, which can be a secret: give only the place.
    serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}", l.line()))
            .unwrap_or_default();
        NeutronError::Config(format!("{} is not valid YAML{at}", path.display()))
    })
}

fn yaml_str(v: &Yaml, key: &str) -> Option<String> {
    match v.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The entry `cloud` of clouds.yaml (merged with secure.yaml), as keystoneauth options.
pub(crate) fn options_from_clouds_yaml(
    cloud: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(KeystoneOptions, PathBuf)> {
    let file = match env_opt(env, "OS_CLIENT_CONFIG_FILE") {
        Some(f) => PathBuf::from(f),
        None => clouds_yaml_candidates(env, "clouds.yaml")
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                NeutronError::Config(format!("OS_CLOUD={cloud} but no clouds.yaml found"))
            })?,
    };
    let mut doc = read_yaml(&file)?;
    if let Some(secure) = clouds_yaml_candidates(env, "secure.yaml")
        .into_iter()
        .find(|p| p.is_file())
    {
        merge_yaml(&mut doc, read_yaml(&secure)?);
    }
    let entry = doc
        .get("clouds")
        .and_then(|c| c.get(cloud))
        .ok_or_else(|| {
            NeutronError::Config(format!("cloud {cloud:?} is not in {}", file.display()))
        })?;
    let auth = entry.get("auth").cloned().unwrap_or(Yaml::Null);
    let a = |k: &str| yaml_str(&auth, k);
    let c = |k: &str| yaml_str(entry, k);
    let verify = entry.get("verify").and_then(Yaml::as_bool);
    let timeout = entry.get("api_timeout").and_then(Yaml::as_f64);
    let opts = KeystoneOptions {
        auth_type: c("auth_type"),
        auth_url: a("auth_url"),
        username: a("username"),
        user_id: a("user_id"),
        password: a("password").map(SecretString::from),
        user_domain_name: a("user_domain_name"),
        user_domain_id: a("user_domain_id"),
        project_name: a("project_name").or_else(|| a("tenant_name")),
        project_id: a("project_id").or_else(|| a("tenant_id")),
        project_domain_name: a("project_domain_name"),
        project_domain_id: a("project_domain_id"),
        domain_name: a("domain_name"),
        domain_id: a("domain_id"),
        default_domain_name: a("default_domain_name"),
        default_domain_id: a("default_domain_id"),
        application_credential_id: a("application_credential_id"),
        application_credential_name: a("application_credential_name"),
        application_credential_secret: a("application_credential_secret").map(SecretString::from),
        token: a("token").map(SecretString::from),
        endpoint: c("network_endpoint_override").or_else(|| a("endpoint")),
        region_name: c("region_name"),
        interface: c("interface").or_else(|| c("network_interface")),
        cafile: c("cacert"),
        certfile: c("cert"),
        keyfile: c("key"),
        insecure: verify == Some(false),
        timeout,
    };
    Ok((opts, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    /// Keystone's v2 API is gone: its auth types are refused with the supported list.
    #[test]
    fn keystone_v2_auth_types_are_refused() {
        for t in ["v2password", "v2token"] {
            let o = KeystoneOptions {
                auth_type: Some(t.into()),
                auth_url: Some("http://ks/v2.0".into()),
                ..Default::default()
            };
            let err = auth_from_options(&o).unwrap_err().to_string();
            assert!(
                err.contains(&format!("unsupported auth_type \"{t}\"")) && err.contains("password"),
                "{err}"
            );
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn some(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn kuryr_conf_wins_and_builds_each_mode() {
        let conf = KeystoneOptions {
            auth_type: some("none"),
            endpoint: some("http://127.0.0.1:9696"),
            ..Default::default()
        };
        let s =
            ClientSettings::resolve_with_env(&conf, &env_of(&[("OS_AUTH_URL", "http://ignored")]))
                .unwrap();
        assert_eq!(s.source, AuthSource::KuryrConf);
        assert!(
            matches!(s.auth, AuthConfig::NoAuth { ref endpoint } if endpoint == "http://127.0.0.1:9696")
        );

        let conf = KeystoneOptions {
            auth_url: some("http://ks/v3"),
            username: some("u"),
            password: Some(SecretString::from("p")),
            project_id: some("pid"),
            interface: some("internalURL"),
            timeout: Some(5.0),
            ..Default::default()
        };
        let s = ClientSettings::resolve_with_env(&conf, &env_of(&[])).unwrap();
        match &s.auth {
            AuthConfig::Password {
                scope: Scope::Project { id, .. },
                catalog,
                ..
            } => {
                assert_eq!(id.as_deref(), Some("pid"));
                assert_eq!(catalog.interface, Interface::Internal);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.transport.timeout, Duration::from_secs(5));
        assert!(
            !format!("{conf:?}").contains("\"p\""),
            "Debug redacts the password"
        );

        let conf = KeystoneOptions {
            auth_type: some("password"),
            auth_url: some("http://ks"),
            username: some("u"),
            ..Default::default()
        };
        let e = ClientSettings::resolve_with_env(&conf, &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs password"), "{e}");
    }

    #[test]
    fn env_and_clouds_yaml_fallbacks() {
        let empty = KeystoneOptions::default();
        let s = ClientSettings::resolve_with_env(
            &empty,
            &env_of(&[
                ("OS_AUTH_URL", "http://ks:5000"),
                ("OS_APPLICATION_CREDENTIAL_ID", "acid"),
                ("OS_APPLICATION_CREDENTIAL_SECRET", "acs"),
                ("OS_REGION_NAME", "R9"),
            ]),
        )
        .unwrap();
        assert_eq!(s.source, AuthSource::Environment);
        match &s.auth {
            AuthConfig::ApplicationCredential {
                id,
                secret,
                catalog,
                ..
            } => {
                assert_eq!(id.as_deref(), Some("acid"));
                assert_eq!(secret.expose_secret(), "acs");
                assert_eq!(catalog.region.as_deref(), Some("R9"));
            }
            other => panic!("{other:?}"),
        }
        assert!(ClientSettings::resolve_with_env(&empty, &env_of(&[])).is_err());

        let dir = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(
            &clouds,
            "clouds:\n  dev:\n    auth:\n      auth_url: http://ks/v3\n      username: u\n      project_name: p\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: R1\n    interface: internal\n    verify: false\n",
        )
        .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".config/openstack")).unwrap();
        std::fs::write(
            home.join(".config/openstack/secure.yaml"),
            "clouds:\n  dev:\n    auth:\n      password: from-secure\n",
        )
        .unwrap();
        let env = env_of(&[
            ("OS_CLOUD", "dev"),
            ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap()),
            ("HOME", home.to_str().unwrap()),
        ]);
        let s = ClientSettings::resolve_with_env(&empty, &env).unwrap();
        assert!(matches!(s.source, AuthSource::CloudsYaml { ref cloud, .. } if cloud == "dev"));
        assert!(s.transport.insecure);
        match &s.auth {
            AuthConfig::Password {
                password, catalog, ..
            } => {
                assert_eq!(password.expose_secret(), "from-secure");
                assert_eq!(catalog.interface, Interface::Internal);
                assert_eq!(catalog.region.as_deref(), Some("R1"));
            }
            other => panic!("{other:?}"),
        }
        let missing = env_of(&[
            ("OS_CLOUD", "nope"),
            ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap()),
        ]);
        assert!(ClientSettings::resolve_with_env(&empty, &missing)
            .unwrap_err()
            .to_string()
            .contains("\"nope\""));
    }
}
