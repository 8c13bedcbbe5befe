//! Open vSwitch through `ovs-vsctl`, one transaction per plug/unplug, behind `OvsDb`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::constants::*;
use crate::error::BindingError;

/// An OVS interface Kuryr owns (`external_ids:owner=kuryr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsInterface {
    pub name: String,
    pub external_ids: Vec<(String, String)>,
}

impl OvsInterface {
    pub fn external_id(&self, key: &str) -> Option<&str> {
        self.external_ids
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The OVSDB operations the binding needs. Each is atomic: a failed `add_port` leaves no
/// port behind.
#[async_trait::async_trait]
pub trait OvsDb: Send + Sync {
    /// Adds `port` to `bridge` (no-op if present) and sets its interface's external_ids.
    async fn add_port(
        &self,
        bridge: &str,
        port: &str,
        external_ids: &[(String, String)],
    ) -> Result<(), BindingError>;
    /// Removes the ports from whatever bridge holds them; absent ports are fine.
    async fn del_ports(&self, ports: &[&str]) -> Result<(), BindingError>;
    /// Interfaces whose `external_ids:owner` is `kuryr`.
    async fn list_owned(&self) -> Result<Vec<OvsInterface>, BindingError>;
}

/// `ovs-vsctl` invocation settings.
#[derive(Debug, Clone)]
pub struct OvsVsctl {
    pub program: PathBuf,
    /// `--db=` target; `None` uses ovs-vsctl's default socket.
    pub db: Option<String>,
    /// Passed as `--timeout=N`; the process is also killed a little after it.
    pub timeout: Duration,
    /// `--no-wait`: do not wait for ovs-vswitchd (for an OVSDB without a switch, in tests).
    pub no_wait: bool,
}

impl Default for OvsVsctl {
    fn default() -> Self {
        OvsVsctl {
            program: PathBuf::from("ovs-vsctl"),
            db: None,
            timeout: Duration::from_secs(DEFAULT_OVS_VSCTL_TIMEOUT_SECS),
            no_wait: false,
        }
    }
}

impl OvsVsctl {
    fn global_args(&self) -> Vec<String> {
        let mut v = vec![format!("--timeout={}", self.timeout.as_secs().max(1))];
        if let Some(db) = &self.db {
            v.push(format!("--db={db}"));
        }
        if self.no_wait {
            v.push("--no-wait".into());
        }
        v
    }

    /// `--may-exist add-port BR PORT -- set Interface PORT external_ids:k=v …` in one
    /// transaction, so either the port exists with its ids or nothing changed.
    pub fn add_port_argv(
        &self,
        bridge: &str,
        port: &str,
        external_ids: &[(String, String)],
    ) -> Vec<String> {
        let mut v = self.global_args();
        v.extend(["--", "--may-exist", "add-port", bridge, port].map(String::from));
        if !external_ids.is_empty() {
            v.extend(["--", "set", "Interface", port].map(String::from));
            for (k, val) in external_ids {
                v.push(format!("external_ids:{k}={}", quote_value(val)));
            }
        }
        v
    }

    pub fn del_ports_argv(&self, ports: &[&str]) -> Vec<String> {
        let mut v = self.global_args();
        for p in ports {
            v.extend(["--", "--if-exists", "del-port", p].map(String::from));
        }
        v
    }

    pub fn list_owned_argv(&self) -> Vec<String> {
        let mut v = self.global_args();
        v.extend(
            [
                "--format=json",
                "--columns=name,external_ids",
                "find",
                "Interface",
            ]
            .map(String::from),
        );
        v.push(format!("external_ids:{EXT_ID_OWNER}={OWNER}"));
        v
    }

    async fn run(&self, about: &str, argv: Vec<String>) -> Result<String, BindingError> {
        let err = |message: String| BindingError::Ovs {
            port: about.to_string(),
            message,
        };
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot run {}: {e}", self.program.display())))?;
        // ovs-vsctl's own --timeout covers the database; this covers a hung process.
        let limit = self.timeout + Duration::from_secs(5);
        let out = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| err(format!("ovs-vsctl timed out after {}s", limit.as_secs())))?
            .map_err(|e| err(format!("ovs-vsctl failed: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(err(format!(
                "ovs-vsctl exited with {}: {}",
                out.status,
                stderr.trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// external_ids values are OVSDB strings; quote anything beyond a safe charset.
fn quote_value(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        v.to_string()
    } else {
        serde_json::Value::String(v.to_string()).to_string()
    }
}

/// Parses `--format=json find` output: `{"data": [[name, ["map", [[k, v], …]]], …]}`.
pub fn parse_find_output(json: &str) -> Result<Vec<OvsInterface>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("bad ovs-vsctl json: {e}"))?;
    let rows = v
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or("ovs-vsctl json has no data array")?;
    let mut out = Vec::new();
    for row in rows {
        let name = row
            .get(0)
            .and_then(|n| n.as_str())
            .ok_or("ovs-vsctl row has no name")?
            .to_string();
        let mut external_ids = Vec::new();
        if let Some(pairs) = row
            .get(1)
            .filter(|m| m.get(0).and_then(|t| t.as_str()) == Some("map"))
            .and_then(|m| m.get(1))
            .and_then(|p| p.as_array())
        {
            for pair in pairs {
                if let (Some(k), Some(val)) = (
                    pair.get(0).and_then(|k| k.as_str()),
                    pair.get(1).and_then(|v| v.as_str()),
                ) {
                    external_ids.push((k.to_string(), val.to_string()));
                }
            }
        }
        out.push(OvsInterface { name, external_ids });
    }
    Ok(out)
}

#[async_trait::async_trait]
impl OvsDb for OvsVsctl {
    async fn add_port(
        &self,
        bridge: &str,
        port: &str,
        external_ids: &[(String, String)],
    ) -> Result<(), BindingError> {
        self.run(port, self.add_port_argv(bridge, port, external_ids))
            .await
            .map(drop)
    }

    async fn del_ports(&self, ports: &[&str]) -> Result<(), BindingError> {
        if ports.is_empty() {
            return Ok(());
        }
        self.run(&ports.join(","), self.del_ports_argv(ports))
            .await
            .map(drop)
    }

    async fn list_owned(&self) -> Result<Vec<OvsInterface>, BindingError> {
        let out = self.run("*", self.list_owned_argv()).await?;
        parse_find_output(&out).map_err(|message| BindingError::Ovs {
            port: "*".into(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vsctl() -> OvsVsctl {
        OvsVsctl {
            db: Some("unix:/tmp/db.sock".into()),
            timeout: Duration::from_secs(7),
            ..Default::default()
        }
    }

    #[test]
    fn add_port_is_one_transaction() {
        let ids = vec![
            ("iface-id".to_string(), "p1".to_string()),
            ("attached-mac".to_string(), "fa:16:3e:00:00:01".to_string()),
        ];
        let argv = vsctl().add_port_argv("br-int", "tapx", &ids);
        assert_eq!(
            argv,
            [
                "--timeout=7",
                "--db=unix:/tmp/db.sock",
                "--",
                "--may-exist",
                "add-port",
                "br-int",
                "tapx",
                "--",
                "set",
                "Interface",
                "tapx",
                "external_ids:iface-id=p1",
                "external_ids:attached-mac=fa:16:3e:00:00:01",
            ]
        );
    }

    #[test]
    fn del_ports_if_exists() {
        let argv = OvsVsctl {
            no_wait: true,
            ..Default::default()
        }
        .del_ports_argv(&["tapx", "qvox"]);
        assert_eq!(
            argv,
            [
                "--timeout=10",
                "--no-wait",
                "--",
                "--if-exists",
                "del-port",
                "tapx",
                "--",
                "--if-exists",
                "del-port",
                "qvox"
            ]
        );
    }

    #[test]
    fn list_owned_filters_on_owner() {
        let argv = vsctl().list_owned_argv();
        assert_eq!(argv.last().unwrap(), "external_ids:owner=kuryr");
        assert!(argv.contains(&"--format=json".to_string()));
    }

    #[test]
    fn odd_values_are_quoted() {
        assert_eq!(quote_value("abc-1"), "abc-1");
        assert_eq!(quote_value("a b"), "\"a b\"");
        assert_eq!(quote_value(""), "\"\"");
    }

    #[test]
    fn parses_find_json() {
        let json = r#"{"data":[["tapabc",["map",[["iface-id","p1"],["owner","kuryr"]]]],["x",["map",[]]]],"headings":["name","external_ids"]}"#;
        let v = parse_find_output(json).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "tapabc");
        assert_eq!(v[0].external_id("iface-id"), Some("p1"));
        assert!(v[1].external_ids.is_empty());
        assert!(parse_find_output("{}").is_err());
    }
}
