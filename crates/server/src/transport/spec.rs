//! Discovery files Docker reads from `/etc/docker/plugins` (or `/usr/lib/docker/plugins`):
//! `<name>.spec` holds one URL; `<name>.json` holds `{"Name", "Addr", "TLSConfig"}`.
//!
//! Files are written atomically and left in place at shutdown: while the daemon restarts, Docker
//! then retries the connection instead of failing the lookup with "plugin not found".

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a root Docker daemon looks first.
pub const DEFAULT_SPEC_DIR: &str = "/etc/docker/plugins";

/// TLS settings of a `.json` discovery file (paths on the Docker host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSpec {
    /// Skip server certificate verification (Docker forces this when `CAFile` is empty).
    #[serde(rename = "InsecureSkipVerify")]
    pub insecure_skip_verify: bool,
    /// CA bundle that signed the plugin's certificate.
    #[serde(rename = "CAFile", default, skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// Client certificate Docker presents.
    #[serde(rename = "CertFile", default, skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    /// Client key Docker uses.
    #[serde(rename = "KeyFile", default, skip_serializing_if = "String::is_empty")]
    pub key_file: String,
}

/// Content of a `.json` discovery file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSpec {
    /// Plugin name (Docker uses the file name; kept equal for readers).
    #[serde(rename = "Name")]
    pub name: String,
    /// `https://host:port`, `tcp://host:port`, `http://host:port` or `unix:///path`.
    #[serde(rename = "Addr")]
    pub addr: String,
    /// TLS settings, for `https://` addresses.
    #[serde(rename = "TLSConfig", default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsSpec>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("invalid plugin name {name:?}")))
    }
}

fn check_url(url: &str) -> io::Result<()> {
    const SCHEMES: [&str; 4] = ["unix://", "tcp://", "http://", "https://"];
    match SCHEMES.iter().find(|s| url.starts_with(**s)) {
        Some(s) if url.len() > s.len() && !url.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(invalid(format!(
            "invalid plugin address {url:?}: expected unix://, tcp://, http:// or https:// followed by an address"
        ))),
    }
}

/// Writes `contents` to `dir/file` through a temporary file and a rename.
fn write_atomic(dir: &Path, file: &str, contents: &[u8]) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    let target = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io::Error::new(e.kind(), format!("cannot write {}: {e}", target.display()))
    })?;
    Ok(target)
}

/// Writes `dir/<name>.spec` containing `url` (e.g. `http://127.0.0.1:23750`).
pub fn write_spec_file(dir: &Path, name: &str, url: &str) -> io::Result<PathBuf> {
    check_name(name)?;
    check_url(url)?;
    write_atomic(dir, &format!("{name}.spec"), format!("{url}\n").as_bytes())
}

/// Writes `dir/<name>.json` from `spec` (its `name` must match).
pub fn write_json_spec(dir: &Path, spec: &JsonSpec) -> io::Result<PathBuf> {
    check_name(&spec.name)?;
    check_url(&spec.addr)?;
    let body = serde_json::to_vec_pretty(spec).map_err(|e| invalid(e.to_string()))?;
    write_atomic(dir, &format!("{}.json", spec.name), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kuryr-spec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn spec_file_holds_the_url() {
        let dir = temp_dir("spec");
        let p = write_spec_file(&dir, "kuryr", "http://127.0.0.1:23750").unwrap();
        assert_eq!(p, dir.join("kuryr.spec"));
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "http://127.0.0.1:23750\n"
        );
        // Rewriting replaces it and leaves no temporary file.
        write_spec_file(&dir, "kuryr", "unix:///run/kuryr/kuryr.sock").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap().trim(),
            "unix:///run/kuryr/kuryr.sock"
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_spec_shape() {
        let dir = temp_dir("json");
        let spec = JsonSpec {
            name: "kuryr".into(),
            addr: "https://127.0.0.1:23750".into(),
            tls_config: Some(TlsSpec {
                insecure_skip_verify: false,
                ca_file: "/etc/kuryr/ca.pem".into(),
                ..TlsSpec::default()
            }),
        };
        let p = write_json_spec(&dir, &spec).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Name": "kuryr", "Addr": "https://127.0.0.1:23750",
                "TLSConfig": {"InsecureSkipVerify": false, "CAFile": "/etc/kuryr/ca.pem"}})
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_bad_names_and_urls() {
        let dir = temp_dir("bad");
        for name in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(
                write_spec_file(&dir, name, "http://x:1").is_err(),
                "{name:?}"
            );
        }
        for url in ["", "127.0.0.1:23750", "http://", "ftp://x", "http://a b"] {
            assert!(write_spec_file(&dir, "kuryr", url).is_err(), "{url:?}");
        }
        assert!(!dir.join("kuryr.spec").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
