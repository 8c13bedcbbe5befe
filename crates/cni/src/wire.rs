//! The CNI spec's JSON: what the runtime writes on stdin, and what a plugin prints.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Every version this plugin speaks (`VERSION` lists them; others are refused with code 1).
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// The version of answers when the caller's cannot be known (an unreadable configuration).
pub const LATEST: &str = "1.1.0";

/// Error codes of the CNI spec, and Kuryr's own (100 and up).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    /// Kuryr: Neutron or the host could not do what was asked (the message says which).
    pub const KURYR_FAILED: u32 = 100;
    /// Kuryr: CHECK found the attachment different from what ADD set up.
    pub const KURYR_CHECK_FAILED: u32 = 101;
}

/// A CNI error object (printed on stdout, with a non-zero exit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniError {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            cni_version: LATEST.to_string(),
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// Answered in the caller's version when it is one we speak.
    pub fn in_version(mut self, v: &str) -> Self {
        if SUPPORTED_VERSIONS.contains(&v) {
            self.cni_version = v.to_string();
        }
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("error object serialises")
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cni error {}: {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

/// One attachment the runtime still has (GC's `cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// Kuryr's network configuration (one plugin of a conflist, as the runtime hands it over).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// The Neutron network: id or unique name.
    #[serde(default)]
    pub neutron_network: Option<String>,
    /// A subnet of it (id or CIDR).
    #[serde(default)]
    pub neutron_subnet: Option<String>,
    /// The interface's MTU instead of the network's.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Security groups (ids or unique names) instead of the port's default ones.
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
    /// The project (id) the ports are made in, instead of the daemon's own.
    #[serde(default)]
    pub project: Option<String>,
    /// The node daemon's socket (default [`crate::forward::DEFAULT_SOCKET`]).
    #[serde(default)]
    pub daemon_socket: Option<String>,
    /// The previous plugin's result in a chain.
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    /// What the runtime passes for the capabilities the configuration declares.
    /// (`null` from some runtimes: read as absent.)
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: Option<RuntimeConfig>,
    /// Everything else (checked for keys Kuryr refuses to ignore).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The runtime's per-call settings Kuryr reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RuntimeConfig {
    /// The pod's annotations (containerd passes them for the
    /// `io.kubernetes.cri.pod-annotations` capability).
    /// (containerd sends `null` for a pod without annotations.)
    #[serde(rename = "io.kubernetes.cri.pod-annotations", default)]
    pub pod_annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// Pod annotations that choose a pod's Neutron network and subnet instead of the
/// configuration's (only with the `io.kubernetes.cri.pod-annotations` capability declared).
pub const ANNOTATION_NETWORK: &str = "kuryr.openstack.org/neutron-network";
pub const ANNOTATION_SUBNET: &str = "kuryr.openstack.org/neutron-subnet";

impl NetConf {
    fn pod_annotation(&self, key: &str) -> Option<&str> {
        self.runtime_config
            .as_ref()?
            .pod_annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// The Neutron network of this call: the pod's annotation, else the configuration's.
    pub fn network_for_pod(&self) -> Option<&str> {
        self.pod_annotation(ANNOTATION_NETWORK)
            .or(self.neutron_network.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// The subnet of this call: the pod's annotation, else the configuration's.
    pub fn subnet_for_pod(&self) -> Option<&str> {
        self.pod_annotation(ANNOTATION_SUBNET)
            .or(self.neutron_subnet.as_deref())
            .filter(|n| !n.is_empty())
    }
}

/// Keys a configuration may carry that Kuryr would otherwise ignore, with what to do
/// instead: refusing them (code 2) beats a pod in the wrong project or with another IPAM.
pub const REFUSED_KEYS: [(&str, &str); 2] = [
    ("project_id", "the project is given as \"project\""),
    (
        "ipam",
        "addresses come from Neutron: remove the ipam section",
    ),
];

/// A configuration key that names something the plugin will not do, its value, and the hint.
pub fn refused_key(c: &NetConf) -> Option<(&'static str, &Value, &'static str)> {
    REFUSED_KEYS
        .iter()
        .find_map(|(k, hint)| c.other.get(*k).map(|v| (*k, v, *hint)))
}

/// An interface of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    pub mtu: Option<u32>,
    pub sandbox: Option<String>,
}

/// An address of a result: CIDR form, gateway, index into the interfaces.
#[derive(Debug, Clone, PartialEq)]
pub struct IpConfig {
    pub address: String,
    pub gateway: Option<String>,
    pub interface: usize,
    pub v6: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub dst: String,
    pub gw: Option<String>,
}

/// A version-neutral ADD result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub nameservers: Vec<String>,
}

fn version_tuple(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Whether `v` is at least `min` (both dotted triples).
pub fn version_at_least(v: &str, min: &str) -> bool {
    match (version_tuple(v), version_tuple(min)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

impl AddResult {
    /// The result in version `v`, merged after `prev` (an earlier plugin's result in a chain):
    /// its interfaces, addresses and routes first, ours appended with indexes shifted.
    pub fn to_json(&self, v: &str, prev: Option<&Value>) -> Value {
        let pre_1_0 = !version_at_least(v, "1.0.0");
        let with_mtu = version_at_least(v, "1.1.0");
        let mut interfaces: Vec<Value> = prev
            .and_then(|p| p.get("interfaces"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let shift = interfaces.len();
        for i in &self.interfaces {
            let mut o = json!({"name": i.name, "mac": i.mac});
            if let (true, Some(m)) = (with_mtu, i.mtu) {
                o["mtu"] = json!(m);
            }
            if let Some(s) = &i.sandbox {
                o["sandbox"] = json!(s);
            }
            interfaces.push(o);
        }
        let mut ips: Vec<Value> = prev
            .and_then(|p| p.get("ips"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for ip in &self.ips {
            let mut o = json!({"address": ip.address, "interface": ip.interface + shift});
            if let Some(g) = &ip.gateway {
                o["gateway"] = json!(g);
            }
            if pre_1_0 {
                o["version"] = json!(if ip.v6 { "6" } else { "4" });
            }
            ips.push(o);
        }
        let mut routes: Vec<Value> = prev
            .and_then(|p| p.get("routes"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in &self.routes {
            let mut o = json!({"dst": r.dst});
            if let Some(g) = &r.gw {
                o["gw"] = json!(g);
            }
            routes.push(o);
        }
        let mut out = json!({
            "cniVersion": v,
            "interfaces": interfaces,
            "ips": ips,
            "routes": routes,
        });
        let mut dns = prev
            .and_then(|p| p.get("dns"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        if !self.nameservers.is_empty() && dns.get("nameservers").is_none() {
            dns["nameservers"] = json!(self.nameservers);
        }
        out["dns"] = dns;
        out
    }
}

/// VERSION's answer.
pub fn version_reply(asked: &str) -> Value {
    json!({
        "cniVersion": if asked.is_empty() { LATEST } else { asked },
        "supportedVersions": SUPPORTED_VERSIONS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> AddResult {
        AddResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "fa:16:3e:00:00:01".into(),
                mtu: Some(1442),
                sandbox: Some("/run/netns/p".into()),
            }],
            ips: vec![IpConfig {
                address: "10.0.0.5/24".into(),
                gateway: Some("10.0.0.1".into()),
                interface: 0,
                v6: false,
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".into(),
                gw: Some("10.0.0.1".into()),
            }],
            nameservers: vec!["10.0.0.2".into()],
        }
    }

    #[test]
    fn result_1_1_has_mtu_and_no_ip_version() {
        let v = result().to_json("1.1.0", None);
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["interfaces"][0]["mtu"], 1442);
        assert_eq!(v["interfaces"][0]["sandbox"], "/run/netns/p");
        assert!(v["ips"][0].get("version").is_none());
        assert_eq!(v["ips"][0]["interface"], 0);
        assert_eq!(v["routes"][0]["gw"], "10.0.0.1");
        assert_eq!(v["dns"]["nameservers"][0], "10.0.0.2");
    }

    #[test]
    fn result_1_0_has_no_mtu_and_0_4_has_ip_version() {
        let v = result().to_json("1.0.0", None);
        assert!(v["interfaces"][0].get("mtu").is_none());
        let v = result().to_json("0.4.0", None);
        assert_eq!(v["ips"][0]["version"], "4");
        assert_eq!(v["cniVersion"], "0.4.0");
    }

    #[test]
    fn prev_result_comes_first_and_indexes_shift() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "lo"}],
            "ips": [{"address": "127.0.0.1/8", "interface": 0}],
            "dns": {"nameservers": ["1.1.1.1"]},
        });
        let v = result().to_json("1.0.0", Some(&prev));
        assert_eq!(v["interfaces"].as_array().unwrap().len(), 2);
        assert_eq!(v["ips"][0]["address"], "127.0.0.1/8");
        assert_eq!(v["ips"][1]["interface"], 1);
        // The earlier plugin's DNS is kept.
        assert_eq!(v["dns"]["nameservers"][0], "1.1.1.1");
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("1.1.0", "1.0.0"));
        assert!(version_at_least("0.4.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0"));
        assert!(!version_at_least("0.10", "0.4.0"));
        assert!(version_at_least("10.0.0", "1.1.0"));
    }

    #[test]
    fn pod_annotations_choose_the_network() {
        let c: NetConf = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","name":"n","type":"kuryr-cni","neutron_network":"default-net",
                "runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"kuryr.openstack.org/neutron-network":"other"}}}"#,
        )
        .unwrap();
        assert_eq!(c.network_for_pod(), Some("other"));
        assert_eq!(c.subnet_for_pod(), None);
        let c: NetConf = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","name":"n","type":"kuryr-cni","neutron_network":"default-net"}"#,
        )
        .unwrap();
        assert_eq!(c.network_for_pod(), Some("default-net"));
        // containerd: null for a pod without annotations.
        let c: NetConf = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","name":"n","type":"kuryr-cni","neutron_network":"d",
                "runtimeConfig":{"io.kubernetes.cri.pod-annotations":null}}"#,
        )
        .unwrap();
        assert_eq!(c.network_for_pod(), Some("d"));
    }

    #[test]
    fn refused_keys_are_named() {
        let c: NetConf = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","name":"n","type":"kuryr-cni","project_id":"x"}"#,
        )
        .unwrap();
        let (k, _, hint) = refused_key(&c).unwrap();
        assert_eq!(k, "project_id");
        assert!(hint.contains("\"project\""), "{hint}");
        let c: NetConf = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","name":"n","type":"kuryr-cni","project":"p1"}"#,
        )
        .unwrap();
        assert_eq!(refused_key(&c), None);
        assert_eq!(c.project.as_deref(), Some("p1"));
    }
}
