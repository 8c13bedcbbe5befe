//! A CNI call (its `CNI_*` environment and stdin) parsed and validated into one command, so
//! that nothing malformed reaches Neutron or the host. Errors carry the spec's codes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{code, refused_key, version_at_least, CniError, NetConf, SUPPORTED_VERSIONS};

/// A call as the runtime made it: the `CNI_*` variables and stdin, forwarded to the daemon as is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub env: BTreeMap<String, String>,
    pub stdin: String,
}

impl Invocation {
    /// This process's `CNI_*` variables and the given stdin.
    pub fn from_process(stdin: String) -> Self {
        Invocation {
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with("CNI_"))
                .collect(),
            stdin,
        }
    }

    pub fn var(&self, k: &str) -> Option<&str> {
        self.env
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The container a call is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub container_id: String,
    pub ifname: String,
    /// `None` for a DEL whose namespace is gone.
    pub netns: Option<String>,
    /// `CNI_ARGS` as pairs.
    pub args: Vec<(String, String)>,
    pub conf: NetConf,
}

impl Target {
    pub fn arg(&self, k: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Add(Target),
    Del(Target),
    Check(Target),
    Status(NetConf),
    Gc(NetConf),
    Version(String),
}

/// `CNI_ARGS` keys Kuryr reads; others are refused unless `IgnoreUnknown` is set.
const KNOWN_ARGS: [&str; 5] = [
    "IgnoreUnknown",
    "K8S_POD_NAMESPACE",
    "K8S_POD_NAME",
    "K8S_POD_UID",
    "K8S_POD_INFRA_CONTAINER_ID",
];

/// The version a call asked for, for its error answers (empty when unreadable).
pub fn asked_version(inv: &Invocation) -> String {
    serde_json::from_str::<Value>(&inv.stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Parses and validates a call.
pub fn parse_call(inv: &Invocation) -> Result<Command, CniError> {
    let asked = asked_version(inv);
    parse(inv).map_err(|e| e.in_version(&asked))
}

fn parse(inv: &Invocation) -> Result<Command, CniError> {
    let command = inv
        .var("CNI_COMMAND")
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set"))?;
    if command == "VERSION" {
        return Ok(Command::Version(asked_version(inv)));
    }
    if !matches!(command, "ADD" | "DEL" | "CHECK" | "STATUS" | "GC") {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_COMMAND {command:?} is not one of ADD, DEL, CHECK, STATUS, GC, VERSION"),
        ));
    }
    let conf: NetConf = serde_json::from_str(&inv.stdin).map_err(|e| {
        CniError::new(
            code::DECODE_FAILURE,
            "cannot decode the network configuration on stdin",
        )
        .with_details(e.to_string())
    })?;
    let v = conf.cni_version.as_str();
    if !SUPPORTED_VERSIONS.contains(&v) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "cniVersion {v:?} is not supported (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    let needs = |min: &str| {
        if version_at_least(v, min) {
            Ok(())
        } else {
            Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("{command} needs cniVersion {min} or later, the configuration has {v}"),
            ))
        }
    };
    if command != "DEL" && conf.network_for_pod().is_none() {
        return Err(CniError::new(
            code::INVALID_NETWORK_CONFIG,
            format!(
                "network {:?}: \"neutron_network\" (a Neutron network id or name) is required",
                conf.name
            ),
        ));
    }
    match command {
        "STATUS" => {
            needs("1.1.0")?;
            return Ok(Command::Status(conf));
        }
        "GC" => {
            needs("1.1.0")?;
            return Ok(Command::Gc(conf));
        }
        "CHECK" => needs("0.4.0")?,
        _ => {}
    }
    if command == "ADD" {
        if let Some((k, val, hint)) = refused_key(&conf) {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                format!(
                    "configuration key {k:?} (value {val}) is not supported by kuryr-cni: {hint}"
                ),
            ));
        }
        if conf.project.as_deref() == Some("") {
            return Err(CniError::new(
                code::INVALID_NETWORK_CONFIG,
                "configuration key \"project\" is empty: give a project id or leave it out",
            ));
        }
    }
    let required = |k: &str| {
        inv.var(k)
            .ok_or_else(|| CniError::new(code::INVALID_ENV, format!("{k} is not set")))
    };
    let container_id = required("CNI_CONTAINERID")?;
    if !valid_container_id(container_id) {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_CONTAINERID {container_id:?} is invalid: letters, digits, '_', '.', '-', starting with a letter or digit"),
        ));
    }
    let ifname = required("CNI_IFNAME")?;
    if !valid_ifname(ifname) {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_IFNAME {ifname:?} is not a valid interface name"),
        ));
    }
    let netns = inv.var("CNI_NETNS").map(str::to_string);
    if command != "DEL" {
        let Some(ns) = &netns else {
            return Err(CniError::new(code::INVALID_ENV, "CNI_NETNS is not set"));
        };
        if !ns.starts_with('/') {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("CNI_NETNS {ns:?} is not an absolute path"),
            ));
        }
    }
    let args = parse_args(inv.var("CNI_ARGS").unwrap_or(""))?;
    let target = Target {
        container_id: container_id.to_string(),
        ifname: ifname.to_string(),
        netns,
        args,
        conf,
    };
    Ok(match command {
        "ADD" => Command::Add(target),
        "DEL" => Command::Del(target),
        _ => Command::Check(target),
    })
}

fn parse_args(s: &str) -> Result<Vec<(String, String)>, CniError> {
    let mut out = Vec::new();
    for pair in s.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                format!("CNI_ARGS entry {pair:?} is not KEY=VALUE"),
            )
        })?;
        out.push((k.to_string(), v.to_string()));
    }
    let ignore_unknown = out.iter().any(|(k, v)| {
        k == "IgnoreUnknown" && matches!(v.to_ascii_lowercase().as_str(), "1" | "true")
    });
    if !ignore_unknown {
        if let Some((k, _)) = out.iter().find(|(k, _)| !KNOWN_ARGS.contains(&k.as_str())) {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!(
                    "CNI_ARGS key {k:?} is unknown to kuryr-cni (set IgnoreUnknown=1 to pass it)"
                ),
            ));
        }
    }
    Ok(out)
}

/// The spec's rule: alphanumeric first, then alphanumerics, '_', '.', '-'.
fn valid_container_id(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        && s.len() <= 255
}

/// Linux: at most 15 bytes, not `.`/`..`, no '/', ':', whitespace or control bytes (a NUL would
/// cut the name short on its way to the kernel).
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s
            .bytes()
            .any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace() || c.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(command: &str, stdin: &str) -> Invocation {
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "abc123"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/x"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
            ),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        Invocation {
            env,
            stdin: stdin.to_string(),
        }
    }

    const CONF: &str =
        r#"{"cniVersion":"1.0.0","name":"net","type":"kuryr-cni","neutron_network":"n1"}"#;

    fn code_of(r: Result<Command, CniError>) -> u32 {
        r.expect_err("should fail").code
    }

    #[test]
    fn add_parses_pod_args() {
        let Command::Add(t) = parse_call(&inv("ADD", CONF)).unwrap() else {
            panic!("not an add");
        };
        assert_eq!(t.container_id, "abc123");
        assert_eq!(t.arg("K8S_POD_NAME"), Some("p"));
        assert_eq!(t.conf.neutron_network.as_deref(), Some("n1"));
    }

    #[test]
    fn errors_have_the_spec_codes() {
        assert_eq!(code_of(parse_call(&inv("ADD", "{not json"))), 6);
        let old = CONF.replace("1.0.0", "0.2.0");
        let e = parse_call(&inv("ADD", &old)).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.msg.contains("0.2.0"), "{}", e.msg);
        assert_eq!(code_of(parse_call(&inv("FOO", CONF))), 4);
        let mut i = inv("ADD", CONF);
        i.env.remove("CNI_NETNS");
        assert_eq!(code_of(parse_call(&i)), 4);
        for bad in [
            "a/b",
            "eth\0",
            "../x",
            "e th",
            "x".repeat(16).as_str(),
            "$(id)\n",
        ] {
            let mut i = inv("ADD", CONF);
            i.env.insert("CNI_IFNAME".into(), bad.into());
            assert_eq!(code_of(parse_call(&i)), 4, "{bad:?}");
        }
        let mut i = inv("ADD", CONF);
        i.env.insert("CNI_CONTAINERID".into(), "-bad".into());
        assert_eq!(code_of(parse_call(&i)), 4);
        let no_net = r#"{"cniVersion":"1.0.0","name":"net","type":"kuryr-cni"}"#;
        assert_eq!(code_of(parse_call(&inv("ADD", no_net))), 7);
        let project = CONF.replace("\"n1\"", "\"n1\",\"project_id\":\"p\"");
        let e = parse_call(&inv("ADD", &project)).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(
            e.msg.contains("project_id") && e.msg.contains("\"project\""),
            "{}",
            e.msg
        );
        let empty = CONF.replace("\"n1\"", "\"n1\",\"project\":\"\"");
        assert_eq!(code_of(parse_call(&inv("ADD", &empty))), 7);
        let given = CONF.replace("\"n1\"", "\"n1\",\"project\":\"p1\"");
        assert!(parse_call(&inv("ADD", &given)).is_ok());
        // Answered in the caller's version.
        assert_eq!(e.cni_version, "1.0.0");
    }

    #[test]
    fn del_needs_no_netns_and_no_network() {
        let mut i = inv(
            "DEL",
            r#"{"cniVersion":"1.0.0","name":"net","type":"kuryr-cni"}"#,
        );
        i.env.remove("CNI_NETNS");
        let Command::Del(t) = parse_call(&i).unwrap() else {
            panic!("not a del");
        };
        assert!(t.netns.is_none());
    }

    #[test]
    fn verbs_need_their_versions() {
        assert_eq!(code_of(parse_call(&inv("STATUS", CONF))), 1);
        assert_eq!(code_of(parse_call(&inv("GC", CONF))), 1);
        let v11 = CONF.replace("1.0.0", "1.1.0");
        assert!(matches!(
            parse_call(&inv("STATUS", &v11)),
            Ok(Command::Status(_))
        ));
        let v03 = CONF.replace("1.0.0", "0.3.1");
        assert_eq!(code_of(parse_call(&inv("CHECK", &v03))), 1);
    }

    #[test]
    fn unknown_args_need_ignore_unknown() {
        let mut i = inv("ADD", CONF);
        i.env.insert("CNI_ARGS".into(), "FOO=bar".into());
        assert_eq!(code_of(parse_call(&i)), 4);
        i.env
            .insert("CNI_ARGS".into(), "IgnoreUnknown=true;FOO=bar".into());
        assert!(parse_call(&i).is_ok());
    }

    #[test]
    fn version_needs_nothing_else() {
        let mut i = Invocation::default();
        i.env.insert("CNI_COMMAND".into(), "VERSION".into());
        i.stdin = r#"{"cniVersion":"0.4.0"}"#.into();
        assert_eq!(parse_call(&i).unwrap(), Command::Version("0.4.0".into()));
    }
}
