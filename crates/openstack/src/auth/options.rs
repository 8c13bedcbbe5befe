//! keystoneauth's options: the one input the client is built from, whatever wrote them
//! (kuryr.conf `[neutron]` through `kuryr-config`, `clouds.yaml`, the `OS_*` variables).

use secrecy::SecretString;

/// keystoneauth's options as `[neutron]` spells them (also the shape `clouds.yaml` and `OS_*`
/// variables are mapped to). Secrets are [`SecretString`]s: never printed by `Debug`.
#[derive(Debug, Clone, Default)]
pub struct KeystoneOptions {
    /// `none` (noauth, fixed `endpoint`), `password`/`v3password`, `v3applicationcredential`,
    /// `token`/`v3token`, `admin_token`.
    pub auth_type: Option<String>,
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<SecretString>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    /// Domain scope (instead of a project).
    pub domain_name: Option<String>,
    pub domain_id: Option<String>,
    /// Used for the user and project domains when those are not given.
    pub default_domain_name: Option<String>,
    pub default_domain_id: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<SecretString>,
    pub token: Option<SecretString>,
    /// Neutron's URL, instead of the catalog's (`endpoint` or `endpoint_override`).
    pub endpoint: Option<String>,
    pub region_name: Option<String>,
    /// Catalog interface: `public`, `internal` or `admin` (`publicURL` spellings accepted).
    pub interface: Option<String>,
    pub cafile: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    pub insecure: bool,
    /// Per-request timeout in seconds.
    pub timeout: Option<f64>,
}

impl KeystoneOptions {
    /// Whether these options say how to reach Neutron at all; when they do not,
    /// [`ClientSettings::resolve`](super::ClientSettings::resolve) falls back to `OS_CLOUD` and
    /// then to the `OS_*` variables.
    pub fn is_configured(&self) -> bool {
        self.auth_type.is_some() || self.auth_url.is_some() || self.endpoint.is_some()
    }
}
