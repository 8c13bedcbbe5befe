//! kuryr.conf's listening options (`[DEFAULT] kuryr_uri`, `enable_ssl`, `ssl_cert_file`,
//! `ssl_key_file`) resolved into a [`Listen`] and the discovery file that announces it: the one
//! place that chooses between the unix socket and TCP, with or without TLS.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use kuryr_config::{defaults, DefaultSection};

use super::spec::{write_spec_file, DEFAULT_SPEC_DIR};
use super::unix::{UnixListenerConfig, DEFAULT_SOCKET_PATH};
use super::{Listen, TlsFiles};

/// The plugin name Docker is given (`-d kuryr --ipam-driver kuryr`).
pub const PLUGIN_NAME: &str = "kuryr";

/// Where kuryr.conf says to serve, as parsed by `kuryr-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSettings {
    /// `[DEFAULT] kuryr_uri`: left at its default, the unix socket Docker discovers by name;
    /// `unix:///path`: that socket; `http://host:port` (or `tcp://`, or `https://` with TLS on):
    /// TCP, announced by a `.spec` file.
    pub kuryr_uri: String,
    /// `[DEFAULT] enable_ssl`: serve TCP with TLS.
    pub enable_ssl: bool,
    /// `[DEFAULT] ssl_cert_file` (PEM chain), used when `enable_ssl`.
    pub ssl_cert_file: PathBuf,
    /// `[DEFAULT] ssl_key_file` (PEM key), used when `enable_ssl`.
    pub ssl_key_file: PathBuf,
    /// The name of the `.spec` file (the plugin name Docker uses).
    pub plugin_name: String,
    /// Where the `.spec` file is written.
    pub spec_dir: PathBuf,
    /// `[DEFAULT] allow_insecure_tcp`: serve plain HTTP on a non-loopback address anyway.
    pub allow_insecure_tcp: bool,
}

impl ListenSettings {
    /// The settings of `[DEFAULT]`, for plugin [`PLUGIN_NAME`] announced in
    /// [`DEFAULT_SPEC_DIR`].
    pub fn from_config(d: &DefaultSection) -> Self {
        ListenSettings {
            kuryr_uri: d.kuryr_uri.clone(),
            enable_ssl: d.enable_ssl,
            ssl_cert_file: PathBuf::from(&d.ssl_cert_file),
            ssl_key_file: PathBuf::from(&d.ssl_key_file),
            plugin_name: PLUGIN_NAME.into(),
            spec_dir: PathBuf::from(DEFAULT_SPEC_DIR),
            allow_insecure_tcp: d.allow_insecure_tcp,
        }
    }
}

/// A `.spec` discovery file: `dir/<name>.spec` holding `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFile {
    /// Docker's plugin directory (`/etc/docker/plugins`).
    pub dir: PathBuf,
    /// The plugin name: the file is `<name>.spec`.
    pub name: String,
    /// `http://host:port` or `https://host:port`, as `kuryr_uri` names the host.
    pub url: String,
}

impl SpecFile {
    /// Writes the file atomically; returns its path.
    pub fn write(&self) -> io::Result<PathBuf> {
        write_spec_file(&self.dir, &self.name, &self.url)
    }
}

/// Where to serve, and the spec file that tells Docker (none for a unix socket: Docker finds
/// `/run/docker/plugins/<name>.sock` by its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServePlan {
    /// The listener.
    pub listen: Listen,
    /// Written once a TCP listener is bound.
    pub spec: Option<SpecFile>,
}

fn invalid(uri: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("kuryr_uri {uri:?}: {why}"),
    )
}

impl ServePlan {
    /// Resolves `s` (host names are looked up here, once).
    pub fn from_settings(s: &ListenSettings) -> io::Result<Self> {
        let uri = s.kuryr_uri.trim();
        // The default URI means "not configured": the socket needs no spec file and is not
        // reachable from the network. With TLS asked for, the original's TCP default applies.
        let unix_default = uri.is_empty() || (uri == defaults::KURYR_URI && !s.enable_ssl);
        if unix_default {
            return Ok(Self::unix(PathBuf::from(DEFAULT_SOCKET_PATH), s));
        }
        if let Some(path) = uri.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid(uri, "no socket path"));
            }
            return Ok(Self::unix(PathBuf::from(path), s));
        }
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid(uri, "expected unix://, http:// or https://"))?;
        match scheme {
            "http" | "tcp" => {}
            "https" if s.enable_ssl => {}
            "https" => return Err(invalid(uri, "https needs [DEFAULT] enable_ssl = true")),
            _ => return Err(invalid(uri, "expected unix://, http:// or https://")),
        }
        let host_port = rest.trim_end_matches('/');
        if host_port.is_empty() || host_port.contains('/') {
            return Err(invalid(uri, "expected scheme://host:port without a path"));
        }
        let addr = resolve(host_port).map_err(|e| invalid(uri, &e))?;
        let tls = s.enable_ssl.then(|| TlsFiles {
            cert: s.ssl_cert_file.clone(),
            key: s.ssl_key_file.clone(),
            // kuryr.conf has no client CA option: Docker's `.spec` client sends no certificate.
            client_ca: None,
        });
        if tls.is_none() {
            // Whoever reaches the plugin API drives Docker's networking and Kuryr's Neutron
            // project: plain HTTP only where no one else can listen in or call.
            if !addr.ip().is_loopback() && !s.allow_insecure_tcp {
                return Err(invalid(
                    uri,
                    "plain http on a non-loopback address lets anyone who reaches it drive \
                     docker's networking and kuryr's neutron project: set [DEFAULT] enable_ssl \
                     = true (with ssl_cert_file and ssl_key_file), listen on a loopback address \
                     or a unix socket, or accept the risk with [DEFAULT] allow_insecure_tcp = true",
                ));
            }
            tracing::warn!(%addr, "the plugin api is served over plain http: every local user can call it");
        }
        let url_scheme = if tls.is_some() { "https" } else { "http" };
        Ok(ServePlan {
            listen: Listen::Tcp { addr, tls },
            spec: Some(SpecFile {
                dir: s.spec_dir.clone(),
                name: s.plugin_name.clone(),
                url: format!("{url_scheme}://{host_port}"),
            }),
        })
    }

    fn unix(path: PathBuf, s: &ListenSettings) -> Self {
        if s.enable_ssl {
            // File permissions guard the local socket; TLS there would only break Docker.
            tracing::warn!(path = %path.display(), "enable_ssl is ignored on a unix socket");
        }
        ServePlan {
            listen: Listen::Unix(UnixListenerConfig::new(path)),
            spec: None,
        }
    }
}

fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = host_port.parse() {
        return Ok(addr);
    }
    host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host_port} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(uri: &str, ssl: bool) -> ListenSettings {
        ListenSettings {
            enable_ssl: ssl,
            ssl_cert_file: "/c.pem".into(),
            ssl_key_file: "/k.pem".into(),
            spec_dir: "/specs".into(),
            ..ListenSettings::from_config(&DefaultSection {
                kuryr_uri: uri.into(),
                ..DefaultSection::default()
            })
        }
    }

    fn plan(uri: &str, ssl: bool) -> ServePlan {
        ServePlan::from_settings(&settings(uri, ssl)).unwrap()
    }

    fn unix_path(p: &ServePlan) -> PathBuf {
        match &p.listen {
            Listen::Unix(cfg) => cfg.path.clone(),
            other => panic!("not a unix socket: {other:?}"),
        }
    }

    #[test]
    fn default_and_unix_uris_serve_a_socket_without_spec() {
        for uri in [defaults::KURYR_URI, "", "  "] {
            let p = plan(uri, false);
            assert_eq!(unix_path(&p), PathBuf::from(DEFAULT_SOCKET_PATH), "{uri:?}");
            assert_eq!(p.spec, None);
        }
        let p = plan("unix:///run/k/k.sock", false);
        assert_eq!(unix_path(&p), PathBuf::from("/run/k/k.sock"));
        assert_eq!(p.spec, None);
        // TLS cannot apply to a unix socket: ignored (with a warning), not an error.
        assert_eq!(
            unix_path(&plan("unix:///run/k/k.sock", true)),
            PathBuf::from("/run/k/k.sock")
        );
    }

    #[test]
    fn tcp_uri_serves_plain_http_with_an_http_spec() {
        let p = plan("http://127.0.0.1:23751/", false);
        assert_eq!(
            p.listen,
            Listen::Tcp {
                addr: "127.0.0.1:23751".parse().unwrap(),
                tls: None
            }
        );
        assert_eq!(
            p.spec,
            Some(SpecFile {
                dir: "/specs".into(),
                name: "kuryr".into(),
                url: "http://127.0.0.1:23751".into()
            })
        );
        let p = plan("tcp://[::1]:23751", false);
        assert_eq!(
            p.listen,
            Listen::Tcp {
                addr: "[::1]:23751".parse().unwrap(),
                tls: None
            }
        );
        assert_eq!(p.spec.unwrap().url, "http://[::1]:23751");
    }

    #[test]
    fn enable_ssl_serves_tls_with_the_configured_files_and_an_https_spec() {
        let files = Some(TlsFiles {
            cert: "/c.pem".into(),
            key: "/k.pem".into(),
            client_ca: None,
        });
        for uri in ["http://127.0.0.1:23750", "https://127.0.0.1:23750"] {
            let p = plan(uri, true);
            assert_eq!(
                p.listen,
                Listen::Tcp {
                    addr: "127.0.0.1:23750".parse().unwrap(),
                    tls: files.clone()
                },
                "{uri}"
            );
            assert_eq!(p.spec.unwrap().url, "https://127.0.0.1:23750", "{uri}");
        }
    }

    #[test]
    fn host_names_are_resolved_and_kept_in_the_spec() {
        let p = plan("http://localhost:23752", false);
        match p.listen {
            Listen::Tcp { addr, .. } => {
                assert!(addr.ip().is_loopback(), "{addr}");
                assert_eq!(addr.port(), 23752);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.spec.unwrap().url, "http://localhost:23752");
    }

    #[test]
    fn plain_http_beyond_loopback_needs_tls_or_an_explicit_risk() {
        for uri in [
            "http://0.0.0.0:23753",
            "http://192.0.2.10:23753",
            "tcp://[::]:23753",
        ] {
            let err = ServePlan::from_settings(&settings(uri, false)).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("enable_ssl") && msg.contains("allow_insecure_tcp"),
                "{msg}"
            );
            // TLS is fine anywhere; so is plain http when the operator says so.
            assert!(matches!(
                plan(uri, true).listen,
                Listen::Tcp { tls: Some(_), .. }
            ));
            let mut s = settings(uri, false);
            s.allow_insecure_tcp = true;
            assert!(matches!(
                ServePlan::from_settings(&s).unwrap().listen,
                Listen::Tcp { tls: None, .. }
            ));
        }
    }

    #[test]
    fn bad_uris_are_refused_naming_the_uri() {
        for (uri, ssl, why) in [
            ("https://127.0.0.1:1", false, "enable_ssl"),
            ("ftp://127.0.0.1:1", false, "expected unix://"),
            ("127.0.0.1:1", false, "expected unix://"),
            ("http://127.0.0.1:1/plugin", false, "without a path"),
            ("http://", false, "without a path"),
            ("http://127.0.0.1", false, "127.0.0.1"),
            ("unix://", false, "no socket path"),
        ] {
            let err = ServePlan::from_settings(&settings(uri, ssl)).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{uri}: {msg}");
            assert!(
                msg.contains(&format!("{uri:?}")) && msg.contains(why),
                "{uri}: {msg}"
            );
        }
    }
}
