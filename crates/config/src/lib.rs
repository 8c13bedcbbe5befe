//! kuryr-config: `kuryr.conf` (oslo.config INI) parsed into typed configuration, with the option
//! names and defaults of the Python kuryr-libnetwork and kuryr-lib, so existing files work as they
//! are.
//!
//! # Sources and precedence
//!
//! Files are read in the order given on the command line: each `--config-file`, and for each
//! `--config-dir` every `*.conf` file in it in alphabetical order. A later file overrides an
//! earlier one option by option, as oslo.config does. On top of the files, oslo's environment
//! source applies: `OS_<SECTION>__<OPTION>` (e.g. `OS_NEUTRON__PASSWORD`, `OS_DEFAULT__DEBUG`)
//! overrides the files. `OS_KURYR_URI` and `CAPABILITY_SCOPE` only replace the built-in defaults of
//! `kuryr_uri` and `capability_scope`, as in the original.
//!
//! Unknown options in the known sections are reported in [`KuryrConfig::warnings`], not rejected,
//! so a file written for a newer or older Kuryr still loads.
//!
//! # Neutron credentials
//!
//! The `[neutron]` section holds keystoneauth's options, parsed here into `kuryr-openstack`'s own
//! input type [`KeystoneOptions`] (`NeutronSection::auth`, ready for
//! `kuryr_openstack::client_from_options`); with `auth_section = X` they are read from section
//! `[X]` (options in `[neutron]` win), and kuryr-lib's `endpoint_type` fills `interface` when that
//! is not set. Where they are absent, `kuryr-openstack` falls back to `OS_CLOUD` + `clouds.yaml`,
//! then to the `OS_*` environment variables: `[neutron]` counts as configured when it sets
//! `auth_type`, `auth_url` or `endpoint`. See `docs/openstack-auth.md`.

mod driver;
pub mod oslo;

pub use driver::{DriverConfig, PoolConfig, PortDriverKind};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use kuryr_openstack::auth::KeystoneOptions;
pub use secrecy::{ExposeSecret, SecretString};

use oslo::{normalize_key, parse_bool, parse_list, Origin, RawConfig, RawValue};

/// Option and section names, and defaults, in one place.
pub mod defaults {
    pub const SECTION_DEFAULT: &str = "DEFAULT";
    pub const SECTION_NEUTRON: &str = "neutron";
    pub const SECTION_BINDING: &str = "binding";
    pub const SECTION_METRICS: &str = "metrics";
    pub const SECTION_VIF_POOL: &str = "vif_pool";
    pub const SECTION_CNI_DAEMON: &str = "cni_daemon";
    /// Where `kuryr-cni` finds the daemon (kuryr-cni's own default is the same path).
    pub const CNI_SOCKET_PATH: &str = "/run/kuryr/cni.sock";

    pub const KURYR_URI: &str = "http://127.0.0.1:23750";
    pub const CAPABILITY_SCOPE: &str = "local";
    pub const ADDRESS_SPACE: &str = "no_address_space";
    pub const PORT_DRIVER: &str = "kuryr_libnetwork.port_driver.drivers.veth";
    pub const SSL_CERT_FILE: &str = "/var/lib/kuryr/certs/cert.pem";
    pub const SSL_KEY_FILE: &str = "/var/lib/kuryr/certs/key.pem";
    pub const BINDIR: &str = "/usr/libexec/kuryr";
    pub const SUBNETPOOL_NAME_PREFIX: &str = "kuryrPool";
    pub const DEPLOYMENT_TYPE: &str = "baremetal";
    pub const SUBNETPOOL_V4: &str = "kuryr";
    pub const SUBNETPOOL_V6: &str = "kuryr6";
    pub const ENDPOINT_TYPE: &str = "public";
    pub const VETH_DST_PREFIX: &str = "eth";
    /// `[vif_pool]`: sized for a small Docker host (a few networks, tens of containers): a few
    /// ports kept ready, and room for the ports a burst of 50 brings back.
    pub const POOL_MIN: usize = 5;
    pub const POOL_MAX: usize = 50;
    pub const POOL_BATCH: usize = 10;
    pub const POOL_UPDATE_FREQUENCY_SECS: u64 = 20;
    pub const ORPHAN_SWEEP_INTERVAL_SECS: u64 = 60;
    /// Where the daemon keeps what must outlive it (oslo's `state_path`).
    pub const STATE_PATH: &str = "/var/lib/kuryr";
    pub const BINDING_DRIVER: &str = "kuryr.lib.binding.drivers.veth";

    /// Environment variables that replace built-in defaults (not file values).
    pub const ENV_KURYR_URI: &str = "OS_KURYR_URI";
    pub const ENV_CAPABILITY_SCOPE: &str = "CAPABILITY_SCOPE";
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: Origin, message: String },
    /// `where_` is `file:line` or the environment variable; the value itself is shown only for
    /// options that are not secret.
    #[error("{where_}: [{section}] {key}: {message}")]
    Value {
        where_: String,
        section: String,
        key: String,
        message: String,
    },
}

/// `[DEFAULT]`.
#[derive(Debug, Clone)]
pub struct DefaultSection {
    pub kuryr_uri: String,
    /// `local` or `global`.
    pub capability_scope: String,
    pub local_default_address_space: String,
    pub global_default_address_space: String,
    /// Deprecated and never read by the original; kept so old files load.
    pub port_driver: String,
    pub default_port_driver: String,
    pub enabled_port_drivers: Vec<String>,
    pub process_external_connectivity: bool,
    pub ssl_cert_file: String,
    pub ssl_key_file: String,
    pub enable_ssl: bool,
    /// Serve the plugin API over plain HTTP on a non-loopback address (refused otherwise).
    pub allow_insecure_tcp: bool,
    pub bindir: String,
    pub subnetpool_name_prefix: String,
    pub deployment_type: String,
    pub debug: bool,
    pub log_file: Option<String>,
    pub log_dir: Option<String>,
    pub use_syslog: bool,
    /// `[DEFAULT] host`: this host's name in Neutron (`binding:host_id`); the machine's host
    /// name when unset.
    pub host: Option<String>,
    /// oslo.log's `use_json`: one JSON object per log line.
    pub use_json: bool,
    /// Seconds between sweeps for this host's address reservations no endpoint ever took (the
    /// daemon was killed between RequestAddress and CreateEndpoint); 0: no sweep.
    pub orphan_sweep_interval: u64,
    /// `state_path`: the directory for what must outlive a restart (set-up calls whose answer
    /// Docker may not have had).
    pub state_path: String,
    /// `ip_range_as_subnet`: make the Neutron subnet (and its pool) on `--ip-range`, as the
    /// Python original does, instead of on `--subnet` as Docker's IPAM does.
    pub ip_range_as_subnet: bool,
}

impl Default for DefaultSection {
    fn default() -> Self {
        use defaults::*;
        DefaultSection {
            kuryr_uri: KURYR_URI.into(),
            capability_scope: CAPABILITY_SCOPE.into(),
            local_default_address_space: ADDRESS_SPACE.into(),
            global_default_address_space: ADDRESS_SPACE.into(),
            port_driver: PORT_DRIVER.into(),
            default_port_driver: PORT_DRIVER.into(),
            enabled_port_drivers: vec![PORT_DRIVER.into()],
            process_external_connectivity: true,
            ssl_cert_file: SSL_CERT_FILE.into(),
            ssl_key_file: SSL_KEY_FILE.into(),
            enable_ssl: false,
            allow_insecure_tcp: false,
            bindir: BINDIR.into(),
            subnetpool_name_prefix: SUBNETPOOL_NAME_PREFIX.into(),
            deployment_type: DEPLOYMENT_TYPE.into(),
            debug: false,
            log_file: None,
            log_dir: None,
            use_syslog: false,
            host: None,
            use_json: false,
            orphan_sweep_interval: ORPHAN_SWEEP_INTERVAL_SECS,
            state_path: STATE_PATH.into(),
            ip_range_as_subnet: false,
        }
    }
}

/// `[neutron]`.
#[derive(Debug, Clone)]
pub struct NeutronSection {
    pub enable_dhcp: bool,
    pub default_subnetpool_v4: String,
    pub default_subnetpool_v6: String,
    pub vif_plugging_is_fatal: bool,
    /// Seconds; 0 means no limit when fatal.
    pub vif_plugging_timeout: u64,
    /// kuryr-lib's `endpoint_type` (catalog interface); keystoneauth's `interface` wins.
    pub endpoint_type: String,
    /// keystoneauth options (from `[neutron]`, or its `auth_section`), with `interface` set from
    /// `endpoint_type` when neither `interface` nor `valid_interfaces` is given.
    pub auth: KeystoneOptions,
}

impl Default for NeutronSection {
    fn default() -> Self {
        NeutronSection {
            enable_dhcp: true,
            default_subnetpool_v4: defaults::SUBNETPOOL_V4.into(),
            default_subnetpool_v6: defaults::SUBNETPOOL_V6.into(),
            vif_plugging_is_fatal: false,
            vif_plugging_timeout: 0,
            endpoint_type: defaults::ENDPOINT_TYPE.into(),
            auth: KeystoneOptions::default(),
        }
    }
}

impl NeutronSection {
    /// The catalog interface to use: keystoneauth's `interface`/`valid_interfaces`, else
    /// kuryr-lib's `endpoint_type`.
    pub fn interface(&self) -> &str {
        self.auth
            .interface
            .as_deref()
            .unwrap_or(&self.endpoint_type)
    }
}

/// `[binding]`.
#[derive(Debug, Clone)]
pub struct BindingSection {
    pub veth_dst_prefix: String,
    pub default_driver: String,
    pub enabled_drivers: Vec<String>,
    /// VM NIC for the nested drivers; empty = find it by the VM port's MAC.
    pub link_iface: String,
}

impl Default for BindingSection {
    fn default() -> Self {
        BindingSection {
            veth_dst_prefix: defaults::VETH_DST_PREFIX.into(),
            default_driver: defaults::BINDING_DRIVER.into(),
            enabled_drivers: vec![defaults::BINDING_DRIVER.into()],
            link_iface: String::new(),
        }
    }
}

/// `[metrics]`: the opt-in Prometheus endpoint (not in the original).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSection {
    /// `listen_address`: `ip:port` to serve `GET /metrics` on, on a listener of its own (never
    /// the plugin socket). Empty or absent: no metrics endpoint.
    pub listen_address: Option<SocketAddr>,
}

/// `[cni_daemon]`: the CNI front end (`kuryr-cni` calls it; not in kuryr-libnetwork).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniDaemonSection {
    /// `enabled`: serve CNI calls (off by default: a Docker-only host opens no second socket).
    pub enabled: bool,
    /// `socket_path`: the root-only unix socket `kuryr-cni` connects to.
    pub socket_path: PathBuf,
}

impl Default for CniDaemonSection {
    fn default() -> Self {
        CniDaemonSection {
            enabled: false,
            socket_path: PathBuf::from(defaults::CNI_SOCKET_PATH),
        }
    }
}

/// `[vif_pool]`: ports made ahead of time per network, named like kuryr-kubernetes' options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VifPoolSection {
    /// `enabled`: pools on (the default) or off (every container makes its own port).
    pub enabled: bool,
    /// `pre_plug`: a pooled port gets its veth pair and OVS port when it enters the pool, so
    /// it is ACTIVE before a container asks for it.
    pub pre_plug: bool,
    /// `ports_pool_min`: refill when fewer ports than this are free.
    pub min: usize,
    /// `ports_pool_max`: never hold more free ports than this (0: no limit).
    pub max: usize,
    /// `ports_pool_batch`: ports made in one bulk request.
    pub batch: usize,
    /// `ports_pool_update_frequency`: seconds between checks of the pools' ports.
    pub update_frequency: u64,
}

impl Default for VifPoolSection {
    fn default() -> Self {
        VifPoolSection {
            enabled: true,
            pre_plug: true,
            min: defaults::POOL_MIN,
            max: defaults::POOL_MAX,
            batch: defaults::POOL_BATCH,
            update_frequency: defaults::POOL_UPDATE_FREQUENCY_SECS,
        }
    }
}

/// Where configuration comes from, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config-file`: must exist.
    File(PathBuf),
    /// `--config-dir`: every `*.conf` in it, alphabetically; must exist.
    Dir(PathBuf),
}

/// The whole of kuryr.conf.
#[derive(Debug, Clone, Default)]
pub struct KuryrConfig {
    pub default: DefaultSection,
    pub neutron: NeutronSection,
    pub binding: BindingSection,
    pub metrics: MetricsSection,
    pub vif_pool: VifPoolSection,
    pub cni_daemon: CniDaemonSection,
    /// Unknown options and deprecated names, one human-readable line each.
    pub warnings: Vec<String>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

/// oslo.log options Kuryr accepts in `[DEFAULT]` without using them all.
const OSLO_LOG_OPTS: &[&str] = &[
    "verbose",
    "log_config_append",
    "log_date_format",
    "log_file",
    "log_dir",
    "watch_log_file",
    "use_syslog",
    "use_journal",
    "use_json",
    "syslog_log_facility",
    "use_stderr",
    "use_eventlog",
    "log_color",
    "log_rotate_interval",
    "log_rotate_interval_type",
    "max_logfile_count",
    "max_logfile_size_mb",
    "log_rotation_type",
    "logging_context_format_string",
    "logging_default_format_string",
    "logging_debug_format_suffix",
    "logging_exception_prefix",
    "logging_user_identity_format",
    "default_log_levels",
    "publish_errors",
    "instance_format",
    "instance_uuid_format",
    "rate_limit_interval",
    "rate_limit_burst",
    "rate_limit_except_level",
    "fatal_deprecations",
];

/// keystoneauth session/adapter options accepted in `[neutron]` that Kuryr does not use.
const IGNORED_KEYSTONE_OPTS: &[&str] = &[
    "collect_timing",
    "split_loggers",
    "service_type",
    "service_name",
    "min_version",
    "max_version",
    "version",
    "connect_retries",
    "connect_retry_delay",
    "status_code_retries",
    "status_code_retry_delay",
    "www_authenticate_uri",
    "trust_id",
    "system_scope",
    "tenant_id",
];

/// Reads typed options from one section, remembering which keys were used.
struct Reader<'a> {
    raw: &'a RawConfig,
    env: &'a dyn Fn(&str) -> Option<String>,
    section: String,
    used: BTreeSet<String>,
}

struct Found {
    value: String,
    where_: String,
}

impl<'a> Reader<'a> {
    fn new(raw: &'a RawConfig, env: &'a dyn Fn(&str) -> Option<String>, section: &str) -> Self {
        Reader {
            raw,
            env,
            section: section.to_string(),
            used: BTreeSet::new(),
        }
    }

    fn find(&mut self, key: &str) -> Option<Found> {
        self.used.insert(key.to_string());
        let var = format!(
            "OS_{}__{}",
            self.section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        );
        if let Some(v) = (self.env)(&var) {
            return Some(Found {
                value: v,
                where_: var,
            });
        }
        self.raw
            .get(&self.section, key)
            .map(|RawValue { value, origin }| Found {
                value: value.replace('\n', ""),
                where_: origin.to_string(),
            })
    }

    fn error(&self, f: &Found, key: &str, message: String) -> ConfigError {
        ConfigError::Value {
            where_: f.where_.clone(),
            section: self.section.clone(),
            key: key.into(),
            message,
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        self.find(key).map(|f| f.value)
    }

    fn string_or(&mut self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_string())
    }

    /// Like `string`, but also accepts a deprecated name (the new name wins).
    fn string_alias(&mut self, key: &str, old: &str, warnings: &mut Vec<String>) -> Option<String> {
        let new = self.string(key);
        let old_v = self.string(old);
        if old_v.is_some() {
            warnings.push(format!("[{}] {old} is deprecated, use {key}", self.section));
        }
        new.or(old_v)
    }

    fn secret(&mut self, key: &str) -> Option<SecretString> {
        self.find(key).map(|f| SecretString::from(f.value))
    }

    fn boolean(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.find(key) {
            None => Ok(default),
            Some(f) => parse_bool(&f.value)
                .ok_or_else(|| self.error(&f, key, format!("invalid boolean value {:?}", f.value))),
        }
    }

    fn list_or(&mut self, key: &str, default: &[&str]) -> Vec<String> {
        match self.find(key) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(f) => parse_list(&f.value),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.find(key) {
            None => Ok(None),
            Some(f) => f
                .value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.error(&f, key, format!("invalid number {:?}", f.value))),
        }
    }

    /// An `ip:port` socket address; empty means none.
    fn socket_addr(&mut self, key: &str) -> Result<Option<SocketAddr>, ConfigError> {
        match self.find(key) {
            None => Ok(None),
            Some(f) if f.value.trim().is_empty() => Ok(None),
            Some(f) => f.value.trim().parse().map(Some).map_err(|_| {
                self.error(
                    &f,
                    key,
                    format!("invalid address {:?}, expected ip:port", f.value),
                )
            }),
        }
    }

    fn choice(
        &mut self,
        key: &str,
        default: &str,
        allowed: &[&str],
    ) -> Result<String, ConfigError> {
        match self.find(key) {
            None => Ok(default.to_string()),
            Some(f) if allowed.contains(&f.value.as_str()) => Ok(f.value),
            Some(f) => Err(self.error(
                &f,
                key,
                format!("{:?} is not one of {}", f.value, allowed.join(", ")),
            )),
        }
    }

    /// Warn about keys of the section nobody read: known ones that have no effect here (with
    /// why), and unknown ones.
    fn unknown(&self, no_effect: (&[&str], &str), warnings: &mut Vec<String>) {
        let (known, why) = no_effect;
        if let Some(sec) = self.raw.sections.get(&self.section) {
            for (key, values) in sec {
                if self.used.contains(key) {
                    continue;
                }
                let origin = &values.last().expect("a key has a value").origin;
                if known.contains(&key.as_str()) {
                    warnings.push(format!(
                        "{origin}: [{}] {key} has no effect in kuryr-rs ({why})",
                        self.section
                    ));
                } else {
                    warnings.push(format!("{origin}: unknown option [{}] {key}", self.section));
                }
            }
        }
    }

    /// Warn when a key is set although it changes nothing here (it counts as known).
    fn read_but_no_effect(&mut self, key: &str, why: &str, warnings: &mut Vec<String>) {
        self.used.insert(key.to_string());
        if let Some(values) = self
            .raw
            .sections
            .get(&self.section)
            .and_then(|s| s.get(key))
        {
            let origin = &values.last().expect("a key has a value").origin;
            warnings.push(format!(
                "{origin}: [{}] {key} has no effect in kuryr-rs ({why})",
                self.section
            ));
        }
    }
}

/// Keystone options of one section.
fn read_keystone(
    r: &mut Reader<'_>,
    warnings: &mut Vec<String>,
) -> Result<KeystoneOptions, ConfigError> {
    let interface = match r.string("interface") {
        Some(i) => Some(i),
        None => r
            .string("valid_interfaces")
            .and_then(|v| parse_list(&v).into_iter().next()),
    };
    Ok(KeystoneOptions {
        auth_type: r.string_alias("auth_type", "auth_plugin", warnings),
        auth_url: r.string("auth_url"),
        username: r.string_alias("username", "user_name", warnings),
        user_id: r.string("user_id"),
        password: r.secret("password"),
        user_domain_name: r.string("user_domain_name"),
        user_domain_id: r.string("user_domain_id"),
        project_name: r.string_alias("project_name", "tenant_name", warnings),
        project_id: r.string("project_id"),
        project_domain_name: r.string("project_domain_name"),
        project_domain_id: r.string("project_domain_id"),
        domain_name: r.string("domain_name"),
        domain_id: r.string("domain_id"),
        default_domain_name: r.string("default_domain_name"),
        default_domain_id: r.string("default_domain_id"),
        application_credential_id: r.string("application_credential_id"),
        application_credential_name: r.string("application_credential_name"),
        application_credential_secret: r.secret("application_credential_secret"),
        token: r.secret("token"),
        endpoint: match r.string("endpoint") {
            Some(e) => Some(e),
            None => r.string("endpoint_override"),
        },
        region_name: r.string("region_name"),
        interface,
        cafile: r.string("cafile"),
        certfile: r.string("certfile"),
        keyfile: r.string("keyfile"),
        insecure: r.boolean("insecure", false)?,
        timeout: r.number("timeout")?,
    })
}

/// Fill unset fields of `a` from `b`.
fn merge_keystone(a: KeystoneOptions, b: KeystoneOptions) -> KeystoneOptions {
    KeystoneOptions {
        auth_type: a.auth_type.or(b.auth_type),
        auth_url: a.auth_url.or(b.auth_url),
        username: a.username.or(b.username),
        user_id: a.user_id.or(b.user_id),
        password: a.password.or(b.password),
        user_domain_name: a.user_domain_name.or(b.user_domain_name),
        user_domain_id: a.user_domain_id.or(b.user_domain_id),
        project_name: a.project_name.or(b.project_name),
        project_id: a.project_id.or(b.project_id),
        project_domain_name: a.project_domain_name.or(b.project_domain_name),
        project_domain_id: a.project_domain_id.or(b.project_domain_id),
        domain_name: a.domain_name.or(b.domain_name),
        domain_id: a.domain_id.or(b.domain_id),
        default_domain_name: a.default_domain_name.or(b.default_domain_name),
        default_domain_id: a.default_domain_id.or(b.default_domain_id),
        application_credential_id: a.application_credential_id.or(b.application_credential_id),
        application_credential_name: a
            .application_credential_name
            .or(b.application_credential_name),
        application_credential_secret: a
            .application_credential_secret
            .or(b.application_credential_secret),
        token: a.token.or(b.token),
        endpoint: a.endpoint.or(b.endpoint),
        region_name: a.region_name.or(b.region_name),
        interface: a.interface.or(b.interface),
        cafile: a.cafile.or(b.cafile),
        certfile: a.certfile.or(b.certfile),
        keyfile: a.keyfile.or(b.keyfile),
        insecure: a.insecure || b.insecure,
        timeout: a.timeout.or(b.timeout),
    }
}

/// `[DEFAULT] capability_scope`'s choices.
const SCOPES: &[&str] = &["local", "global"];

/// oslo.log names the file of a bare `log_dir` after the program.
pub const LOG_FILE_OF_DIR: &str = "kuryr-server.log";

/// Where the daemon logs (oslo.log's `_get_log_file_path`): `log_file` alone is the file; with
/// `log_dir` too it is relative to `log_dir` (an absolute `log_file` stays as it is); `log_dir`
/// alone means `<log_dir>/kuryr-server.log`; neither means stderr (`None`).
pub fn log_path(log_file: Option<&str>, log_dir: Option<&str>) -> Option<PathBuf> {
    let file = log_file.map(str::trim).filter(|f| !f.is_empty());
    let dir = log_dir.map(str::trim).filter(|d| !d.is_empty());
    match (file, dir) {
        (Some(f), None) => Some(PathBuf::from(f)),
        (Some(f), Some(d)) => Some(Path::new(d).join(f)),
        (None, Some(d)) => Some(Path::new(d).join(LOG_FILE_OF_DIR)),
        (None, None) => None,
    }
}

fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl KuryrConfig {
    /// Load `sources` in order, with the process environment.
    pub fn load(sources: &[ConfigSource]) -> Result<Self, ConfigError> {
        Self::load_with_env(sources, &process_env)
    }

    /// `--config-file`s then `--config-dir`s, the common command-line shape.
    pub fn load_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Self, ConfigError> {
        let mut sources: Vec<ConfigSource> =
            files.iter().cloned().map(ConfigSource::File).collect();
        sources.extend(dirs.iter().cloned().map(ConfigSource::Dir));
        Self::load(&sources)
    }

    /// Load with an explicit environment (tests).
    pub fn load_with_env(
        sources: &[ConfigSource],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw = RawConfig::default();
        let mut files = Vec::new();
        for source in sources {
            match source {
                ConfigSource::File(p) => files.push(p.clone()),
                ConfigSource::Dir(d) => {
                    let entries = std::fs::read_dir(d).map_err(|e| ConfigError::Io {
                        path: d.clone(),
                        source: e,
                    })?;
                    let mut confs: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
                        .collect();
                    confs.sort();
                    files.extend(confs);
                }
            }
        }
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| ConfigError::Io {
                path: f.clone(),
                source: e,
            })?;
            raw.parse_str(&text, f)?;
        }
        let mut cfg = Self::from_raw(&raw, env)?;
        cfg.files = files;
        Ok(cfg)
    }

    /// Parse one file's text (no environment overrides).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut raw = RawConfig::default();
        raw.parse_str(text, Path::new("<string>"))?;
        Self::from_raw(&raw, &|_| None)
    }

    fn from_raw(
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        use defaults::*;
        let mut warnings = Vec::new();

        let mut r = Reader::new(raw, env, SECTION_DEFAULT);
        let uri_default = env(ENV_KURYR_URI).unwrap_or_else(|| KURYR_URI.into());
        // oslo.config checks an option's default against its choices: kuryr-libnetwork stops on
        // an invalid `CAPABILITY_SCOPE` even when the file sets the option.
        let scope_default = match env(ENV_CAPABILITY_SCOPE) {
            None => CAPABILITY_SCOPE.to_string(),
            Some(v) if SCOPES.contains(&v.as_str()) => v,
            Some(v) => {
                return Err(ConfigError::Value {
                    where_: ENV_CAPABILITY_SCOPE.into(),
                    section: SECTION_DEFAULT.into(),
                    key: "capability_scope".into(),
                    message: format!("{v:?} is not one of {}", SCOPES.join(", ")),
                })
            }
        };
        let port_driver = r.string("port_driver");
        if port_driver.is_some() {
            warnings.push(
                "[DEFAULT] port_driver is deprecated and ignored, use default_port_driver".into(),
            );
        }
        let default = DefaultSection {
            kuryr_uri: r.string_or("kuryr_uri", &uri_default),
            capability_scope: r.choice("capability_scope", &scope_default, SCOPES)?,
            local_default_address_space: r.string_or("local_default_address_space", ADDRESS_SPACE),
            global_default_address_space: r
                .string_or("global_default_address_space", ADDRESS_SPACE),
            port_driver: port_driver.unwrap_or_else(|| PORT_DRIVER.into()),
            default_port_driver: r.string_or("default_port_driver", PORT_DRIVER),
            enabled_port_drivers: r.list_or("enabled_port_drivers", &[PORT_DRIVER]),
            process_external_connectivity: r.boolean("process_external_connectivity", true)?,
            ssl_cert_file: r.string_or("ssl_cert_file", SSL_CERT_FILE),
            ssl_key_file: r.string_or("ssl_key_file", SSL_KEY_FILE),
            enable_ssl: r.boolean("enable_ssl", false)?,
            allow_insecure_tcp: r.boolean("allow_insecure_tcp", false)?,
            bindir: r.string_or("bindir", BINDIR),
            subnetpool_name_prefix: r.string_or("subnetpool_name_prefix", SUBNETPOOL_NAME_PREFIX),
            deployment_type: r.string_or("deployment_type", DEPLOYMENT_TYPE),
            debug: r.boolean("debug", false)?,
            log_file: r.string("log_file"),
            log_dir: r.string("log_dir"),
            use_syslog: r.boolean("use_syslog", false)?,
            host: r.string("host"),
            use_json: r.boolean("use_json", false)?,
            orphan_sweep_interval: r
                .number("orphan_sweep_interval")?
                .unwrap_or(ORPHAN_SWEEP_INTERVAL_SECS),
            state_path: r.string_or("state_path", STATE_PATH),
            ip_range_as_subnet: r.boolean("ip_range_as_subnet", false)?,
        };
        r.read_but_no_effect("pybasedir", "the Python package's directory", &mut warnings);
        r.read_but_no_effect(
            "deployment_type",
            "kuryr-libnetwork does not read it either: default_port_driver chooses the nested drivers",
            &mut warnings,
        );
        r.unknown(
            (
                OSLO_LOG_OPTS,
                "an oslo.log option: kuryr-rs logs in its own format; debug, log_file, log_dir and \
                 use_json apply",
            ),
            &mut warnings,
        );
        if default.use_syslog {
            // A start-up warning like the others: `serve` logs it, `check-config` reports it.
            warnings.push(format!(
                "[DEFAULT] use_syslog is not supported, logging to {}",
                log_path(default.log_file.as_deref(), default.log_dir.as_deref())
                    .map_or_else(|| "stderr".into(), |p| p.display().to_string())
            ));
        }
        let chosen = driver::short_name(&default.default_port_driver);
        if !default
            .enabled_port_drivers
            .iter()
            .any(|e| driver::short_name(e) == chosen)
        {
            warnings.push(format!(
                "[DEFAULT] default_port_driver {chosen} is not in enabled_port_drivers ({}): \
                 used anyway (the Python original refuses this configuration)",
                default.enabled_port_drivers.join(", ")
            ));
        }

        let mut r = Reader::new(raw, env, SECTION_NEUTRON);
        let mut auth = read_keystone(&mut r, &mut warnings)?;
        let auth_section = r.string("auth_section");
        if let Some(sec) = &auth_section {
            if !raw.sections.contains_key(sec) {
                warnings.push(format!(
                    "[neutron] auth_section names a missing section [{sec}]"
                ));
            }
            let mut other = Reader::new(raw, env, sec);
            let from_section = read_keystone(&mut other, &mut warnings)?;
            auth = merge_keystone(auth, from_section);
        }
        let endpoint_type = r.choice(
            "endpoint_type",
            ENDPOINT_TYPE,
            &[
                "public",
                "admin",
                "internal",
                "publicURL",
                "adminURL",
                "internalURL",
            ],
        )?;
        let endpoint_type = endpoint_type.trim_end_matches("URL").to_string();
        // The client reads one option; kuryr-lib's name for it is only the fallback.
        if auth.interface.is_none() {
            auth.interface = Some(endpoint_type.clone());
        }
        let vif_plugging_timeout: Option<u64> = r.number("vif_plugging_timeout")?;
        let neutron = NeutronSection {
            enable_dhcp: r.boolean("enable_dhcp", true)?,
            default_subnetpool_v4: r.string_or("default_subnetpool_v4", SUBNETPOOL_V4),
            default_subnetpool_v6: r.string_or("default_subnetpool_v6", SUBNETPOOL_V6),
            vif_plugging_is_fatal: r.boolean("vif_plugging_is_fatal", false)?,
            vif_plugging_timeout: vif_plugging_timeout.unwrap_or(0),
            endpoint_type,
            auth,
        };
        r.unknown(
            (
                IGNORED_KEYSTONE_OPTS,
                "a keystoneauth option the Neutron client does not use: it retries GET, PUT and \
                 DELETE on resets and 502/503/504 by its own rule",
            ),
            &mut warnings,
        );

        let mut r = Reader::new(raw, env, SECTION_BINDING);
        let binding = BindingSection {
            veth_dst_prefix: r.string_or("veth_dst_prefix", VETH_DST_PREFIX),
            default_driver: r
                .string_alias("default_driver", "driver", &mut warnings)
                .unwrap_or_else(|| BINDING_DRIVER.into()),
            enabled_drivers: r.list_or("enabled_drivers", &[BINDING_DRIVER]),
            link_iface: r.string_or("link_iface", ""),
        };
        const BOUND_BY_VIF_TYPE: &str = "each port is bound by its binding:vif_type: OVS, OVS \
             hybrid, Linux bridge and tap natively, any other by its script in bindir";
        r.read_but_no_effect("default_driver", BOUND_BY_VIF_TYPE, &mut warnings);
        r.read_but_no_effect("driver", BOUND_BY_VIF_TYPE, &mut warnings);
        r.read_but_no_effect("enabled_drivers", BOUND_BY_VIF_TYPE, &mut warnings);
        r.unknown((&[], ""), &mut warnings);

        let mut r = Reader::new(raw, env, SECTION_METRICS);
        let metrics = MetricsSection {
            listen_address: r.socket_addr("listen_address")?,
        };
        r.unknown((&[], ""), &mut warnings);

        let mut r = Reader::new(raw, env, SECTION_VIF_POOL);
        let vif_pool = VifPoolSection {
            enabled: r.boolean("enabled", true)?,
            pre_plug: r.boolean("pre_plug", true)?,
            min: r.number("ports_pool_min")?.unwrap_or(POOL_MIN),
            max: r.number("ports_pool_max")?.unwrap_or(POOL_MAX),
            batch: r.number("ports_pool_batch")?.unwrap_or(POOL_BATCH),
            update_frequency: r
                .number("ports_pool_update_frequency")?
                .unwrap_or(POOL_UPDATE_FREQUENCY_SECS),
        };
        r.unknown((&[], ""), &mut warnings);

        let mut r = Reader::new(raw, env, SECTION_CNI_DAEMON);
        let cni_daemon = CniDaemonSection {
            enabled: r.boolean("enabled", false)?,
            socket_path: PathBuf::from(r.string_or("socket_path", CNI_SOCKET_PATH)),
        };
        r.unknown((&[], ""), &mut warnings);

        Ok(KuryrConfig {
            default,
            neutron,
            binding,
            metrics,
            vif_pool,
            cni_daemon,
            warnings,
            files: Vec::new(),
        })
    }
}

/// Keys are compared after oslo's normalisation; exposed for callers that read other sections.
pub fn option_name(key: &str) -> String {
    normalize_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original() {
        let c = KuryrConfig::parse("").unwrap();
        assert_eq!(c.default.kuryr_uri, "http://127.0.0.1:23750");
        assert_eq!(c.default.capability_scope, "local");
        assert_eq!(c.default.local_default_address_space, "no_address_space");
        assert_eq!(c.default.subnetpool_name_prefix, "kuryrPool");
        assert_eq!(c.default.bindir, "/usr/libexec/kuryr");
        assert!(c.default.process_external_connectivity);
        assert_eq!(c.neutron.default_subnetpool_v4, "kuryr");
        assert_eq!(c.neutron.default_subnetpool_v6, "kuryr6");
        assert!(!c.neutron.vif_plugging_is_fatal);
        assert_eq!(c.neutron.vif_plugging_timeout, 0);
        assert!(c.neutron.enable_dhcp);
        assert_eq!(c.neutron.interface(), "public");
        assert_eq!(c.binding.veth_dst_prefix, "eth");
        assert_eq!(c.binding.default_driver, "kuryr.lib.binding.drivers.veth");
        assert!(!c.neutron.auth.is_configured());
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn typical_file_with_keystone_and_unknowns() {
        let text = "[DEFAULT]\nbindir = /usr/local/libexec/kuryr\ncapability_scope = global\n\
            process_external_connectivity = False\ndebug = yes\nlog_file = /var/log/k.log\nbogus = 1\n\
            [neutron]\nauth_type = password\nauth_url = http://ks:5000/v3\nusername = kuryr\n\
            password = s3cr#t\nproject_name = service\nuser_domain_name = Default\n\
            project_domain_name = Default\nregion_name = RegionOne\nendpoint_type = internalURL\n\
            insecure = true\ntimeout = 12.5\nvif_plugging_is_fatal = True\nvif_plugging_timeout = 30\n\
            tenant_name = ignored\n[binding]\ndriver = kuryr.lib.binding.drivers.vlan\nlink_iface = eth1\n";
        let c = KuryrConfig::parse(text).unwrap();
        assert_eq!(c.default.capability_scope, "global");
        assert!(!c.default.process_external_connectivity);
        assert!(c.default.debug);
        assert_eq!(c.neutron.auth.auth_type.as_deref(), Some("password"));
        assert_eq!(
            c.neutron.auth.password.as_ref().unwrap().expose_secret(),
            "s3cr#t"
        );
        assert_eq!(
            c.neutron.auth.project_name.as_deref(),
            Some("service"),
            "new name wins"
        );
        assert_eq!(c.neutron.interface(), "internal");
        assert!(c.neutron.auth.insecure);
        assert_eq!(c.neutron.auth.timeout, Some(12.5));
        assert!(c.neutron.vif_plugging_is_fatal);
        assert_eq!(c.neutron.vif_plugging_timeout, 30);
        assert_eq!(c.binding.default_driver, "kuryr.lib.binding.drivers.vlan");
        assert_eq!(c.binding.link_iface, "eth1");
        let w = c.warnings.join("\n");
        assert!(w.contains("unknown option [DEFAULT] bogus"), "{w}");
        assert!(w.contains("tenant_name is deprecated"), "{w}");
        assert!(w.contains("[binding] driver is deprecated"), "{w}");
        assert!(
            !format!("{c:?}").contains("s3cr#t"),
            "Debug must not show secrets"
        );
    }

    /// Options of the original that change nothing here are accepted and warned once each,
    /// naming the line and why; options that work are not.
    #[test]
    fn options_without_effect_are_warned_once_each() {
        let text = "[DEFAULT]\ndeployment_type = nested\npybasedir = /usr/lib/python3\n\
            log_config_append = /etc/kuryr/logging.conf\nverbose = true\nlog_color = true\n\
            debug = true\nuse_json = true\nlog_dir = /var/log\n\
            [neutron]\nconnect_retries = 3\nwww_authenticate_uri = http://ks\ntimeout = 5\n\
            [binding]\ndefault_driver = kuryr.lib.binding.drivers.veth\n\
            enabled_drivers = kuryr.lib.binding.drivers.veth\nveth_dst_prefix = eth\n";
        let c = KuryrConfig::parse(text).unwrap();
        let no_effect: Vec<&String> = c
            .warnings
            .iter()
            .filter(|w| w.contains("has no effect in kuryr-rs"))
            .collect();
        let keys: Vec<String> = no_effect
            .iter()
            .map(|w| {
                let (_, rest) = w.split_once(": [").unwrap();
                rest.split(" has no effect").next().unwrap().to_string()
            })
            .collect();
        let mut keys = keys;
        keys.sort();
        assert_eq!(
            keys,
            [
                "DEFAULT] deployment_type",
                "DEFAULT] log_color",
                "DEFAULT] log_config_append",
                "DEFAULT] pybasedir",
                "DEFAULT] verbose",
                "binding] default_driver",
                "binding] enabled_drivers",
                "neutron] connect_retries",
                "neutron] www_authenticate_uri",
            ],
            "{:?}",
            c.warnings
        );
        let w = c.warnings.join("\n");
        assert!(w.contains("<string>:2: [DEFAULT] deployment_type has no effect in kuryr-rs (kuryr-libnetwork does not read it either"), "{w}");
        assert!(w.contains("[binding] enabled_drivers has no effect in kuryr-rs (each port is bound by its binding:vif_type"), "{w}");
        assert_eq!(c.warnings.len(), 9, "nothing else is warned: {w}");
        // The defaults warn about nothing.
        assert!(KuryrConfig::parse("").unwrap().warnings.is_empty());
    }

    /// The deprecated `port_driver` is never read (as in the original) and says so.
    #[test]
    fn the_deprecated_port_driver_is_warned_not_used() {
        let c = KuryrConfig::parse(
            "[DEFAULT]\nport_driver = kuryr_libnetwork.port_driver.drivers.nested\n",
        )
        .unwrap();
        let w = c.warnings.join("\n");
        assert!(
            w.contains("[DEFAULT] port_driver is deprecated and ignored, use default_port_driver"),
            "{w}"
        );
        assert_eq!(c.default.default_port_driver, defaults::PORT_DRIVER);
    }

    #[test]
    fn logging_options() {
        let c = KuryrConfig::parse("").unwrap();
        assert!(!c.default.use_json && !c.default.debug);
        assert_eq!((c.default.log_file, c.default.log_dir), (None, None));
        let c = KuryrConfig::parse(
            "[DEFAULT]\nuse_json = true\nlog_dir = /var/log/kuryr\nlog_file = k.log\n",
        )
        .unwrap();
        assert!(c.default.use_json);
        assert_eq!(c.default.log_dir.as_deref(), Some("/var/log/kuryr"));
        assert_eq!(c.default.log_file.as_deref(), Some("k.log"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let e = KuryrConfig::parse("[DEFAULT]\nuse_json = sometimes\n").unwrap_err();
        assert!(e.to_string().contains("use_json"), "{e}");
    }

    #[test]
    fn cni_daemon_section() {
        let c = KuryrConfig::parse("").unwrap();
        assert!(!c.cni_daemon.enabled, "off by default");
        assert_eq!(
            c.cni_daemon.socket_path,
            PathBuf::from("/run/kuryr/cni.sock")
        );
        let c = KuryrConfig::parse("[cni_daemon]\nenabled = true\nsocket_path = /tmp/k.sock\n")
            .unwrap();
        assert!(c.cni_daemon.enabled);
        assert_eq!(c.cni_daemon.socket_path, PathBuf::from("/tmp/k.sock"));
        assert!(KuryrConfig::parse("[cni_daemon]\nenabled = maybe\n").is_err());
    }

    #[test]
    fn metrics_listen_address() {
        let c = KuryrConfig::parse("").unwrap();
        assert_eq!(c.metrics.listen_address, None, "off by default");
        let c = KuryrConfig::parse("[metrics]\nlisten_address =\n").unwrap();
        assert_eq!(c.metrics.listen_address, None, "empty is off");
        let c = KuryrConfig::parse("[metrics]\nlisten_address = 127.0.0.1:9102\n").unwrap();
        assert_eq!(
            c.metrics.listen_address,
            Some("127.0.0.1:9102".parse().unwrap())
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = KuryrConfig::parse("[metrics]\nlisten_address = [::1]:9102\npath = /m\n").unwrap();
        assert_eq!(
            c.metrics.listen_address,
            Some("[::1]:9102".parse().unwrap())
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("unknown option [metrics] path"),
            "{:?}",
            c.warnings
        );
        let e = KuryrConfig::parse("[metrics]\nlisten_address = 9102\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("<string>:2")
                && e.contains("[metrics] listen_address")
                && e.contains("ip:port"),
            "{e}"
        );
        let env = |k: &str| (k == "OS_METRICS__LISTEN_ADDRESS").then(|| "0.0.0.0:9200".to_string());
        let c = KuryrConfig::load_with_env(&[], &env).unwrap();
        assert_eq!(
            c.metrics.listen_address,
            Some("0.0.0.0:9200".parse().unwrap())
        );
    }

    #[test]
    fn neutron_section_is_the_clients_input() {
        use kuryr_openstack::auth::{AuthConfig, AuthSource, ClientSettings, Interface};
        let text = "[neutron]\nauth_url = http://ks/v3\nusername = u\npassword = p\n\
            project_id = pid\nendpoint_type = internalURL\n";
        let c = KuryrConfig::parse(text).unwrap();
        assert_eq!(c.neutron.auth.interface.as_deref(), Some("internal"));
        let s = ClientSettings::resolve_with_env(&c.neutron.auth, &|_| None).unwrap();
        assert_eq!(s.source, AuthSource::KuryrConf);
        match &s.auth {
            AuthConfig::Password { catalog, .. } => {
                assert_eq!(catalog.interface, Interface::Internal)
            }
            other => panic!("{other:?}"),
        }
        // keystoneauth's own option beats kuryr-lib's endpoint_type.
        let c = KuryrConfig::parse(&format!("{text}valid_interfaces = admin,public\n")).unwrap();
        assert_eq!(c.neutron.auth.interface.as_deref(), Some("admin"));
        assert_eq!(c.neutron.interface(), "admin");
    }

    #[test]
    fn invalid_values_name_the_place_not_the_secret() {
        let e = KuryrConfig::parse("[neutron]\ninsecure = maybe\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("<string>:2") && e.contains("[neutron] insecure"),
            "{e}"
        );
        let e = KuryrConfig::parse("[DEFAULT]\ncapability_scope = planet\n").unwrap_err();
        assert!(e.to_string().contains("capability_scope"));
    }

    #[test]
    fn auth_section_is_read_and_neutron_wins() {
        let text = "[neutron]\nauth_section = keystone_authtoken\nregion_name = B\n\
            [keystone_authtoken]\nauth_type = v3applicationcredential\nauth_url = http://ks/v3\n\
            application_credential_id = abc\napplication_credential_secret = xyz\nregion_name = A\n";
        let c = KuryrConfig::parse(text).unwrap();
        assert_eq!(
            c.neutron.auth.auth_type.as_deref(),
            Some("v3applicationcredential")
        );
        assert_eq!(
            c.neutron.auth.application_credential_id.as_deref(),
            Some("abc")
        );
        assert_eq!(c.neutron.auth.region_name.as_deref(), Some("B"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn files_dirs_and_env_in_oslo_order() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("kuryr.conf");
        std::fs::write(&main, "[DEFAULT]\nkuryr_uri = http://a:1\nbindir = /a\n[neutron]\ndefault_subnetpool_v4 = p1\n").unwrap();
        let d = dir.path().join("kuryr.conf.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("20-b.conf"), "[DEFAULT]\nbindir = /b2\n").unwrap();
        std::fs::write(
            d.join("10-a.conf"),
            "[DEFAULT]\nbindir = /b1\nkuryr_uri = http://b:1\n",
        )
        .unwrap();
        std::fs::write(d.join("ignored.txt"), "[DEFAULT]\nbindir = /no\n").unwrap();
        let env = |k: &str| match k {
            "OS_NEUTRON__DEFAULT_SUBNETPOOL_V4" => Some("from-env".to_string()),
            "OS_KURYR_URI" => Some("http://env-default:1".to_string()),
            _ => None,
        };
        let c = KuryrConfig::load_with_env(
            &[
                ConfigSource::File(main.clone()),
                ConfigSource::Dir(d.clone()),
            ],
            &env,
        )
        .unwrap();
        assert_eq!(c.default.bindir, "/b2", "later files win");
        assert_eq!(c.default.kuryr_uri, "http://b:1", "files beat env defaults");
        assert_eq!(
            c.neutron.default_subnetpool_v4, "from-env",
            "OS_<GROUP>__<OPT> beats files"
        );
        assert_eq!(c.files.len(), 3);
        let none = KuryrConfig::load_with_env(&[], &env).unwrap();
        assert_eq!(none.default.kuryr_uri, "http://env-default:1");
        let missing =
            KuryrConfig::load_with_env(&[ConfigSource::File(dir.path().join("nope.conf"))], &env);
        assert!(matches!(missing, Err(ConfigError::Io { .. })));
    }
}
