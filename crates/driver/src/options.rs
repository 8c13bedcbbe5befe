//! Kuryr's `-o` / `--ipam-opt` options for one address family.

use std::collections::HashMap;

use crate::constants::*;
use crate::error::{DriverError, Result};

/// The `neutron.*` options that apply to one family (v4 keys or their `.v6.` variants).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FamilyOptions {
    pub subnet_uuid: Option<String>,
    pub subnet_name: Option<String>,
    pub pool_uuid: Option<String>,
    pub pool_name: Option<String>,
    /// `neutron.net.shared`, when given.
    pub shared: Option<bool>,
}

fn get(opts: &HashMap<String, String>, key: &str) -> Option<String> {
    opts.get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// oslo's `bool_from_string` (lenient: unknown strings are false).
pub(crate) fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" | "" => Ok(false),
        other => Err(DriverError::InvalidRequest(format!(
            "option {key} must be a boolean, not {other:?}"
        ))),
    }
}

impl FamilyOptions {
    pub(crate) fn from_map(opts: &HashMap<String, String>, v6: bool) -> Result<Self> {
        let (su, sn, pu, pn) = if v6 {
            (
                OPT_SUBNET_V6_UUID,
                OPT_SUBNET_V6_NAME,
                OPT_POOL_V6_UUID,
                OPT_POOL_V6_NAME,
            )
        } else {
            (
                OPT_SUBNET_UUID,
                OPT_SUBNET_NAME,
                OPT_POOL_UUID,
                OPT_POOL_NAME,
            )
        };
        let shared = match get(opts, OPT_NET_SHARED) {
            Some(v) => Some(parse_bool(OPT_NET_SHARED, &v)?),
            None => None,
        };
        Ok(FamilyOptions {
            subnet_uuid: get(opts, su),
            subnet_name: get(opts, sn),
            pool_uuid: get(opts, pu),
            pool_name: get(opts, pn),
            shared,
        })
    }

    pub(crate) fn names_pool(&self) -> bool {
        self.pool_uuid.is_some() || self.pool_name.is_some()
    }
}

/// Converts Docker's option values (JSON of any type) to strings; `-o` values are strings
/// already, but booleans and numbers are accepted.
pub fn string_options(v: Option<&serde_json::Value>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(serde_json::Value::Object(m)) = v {
        for (k, v) in m {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            out.insert(k.clone(), s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_keys() {
        let m: HashMap<String, String> = [
            (OPT_SUBNET_NAME, "s4"),
            (OPT_SUBNET_V6_UUID, "u6"),
            (OPT_POOL_NAME, "p4"),
            (OPT_NET_SHARED, "True"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let v4 = FamilyOptions::from_map(&m, false).unwrap();
        assert_eq!(v4.subnet_name.as_deref(), Some("s4"));
        assert_eq!(v4.pool_name.as_deref(), Some("p4"));
        assert_eq!(v4.shared, Some(true));
        let v6 = FamilyOptions::from_map(&m, true).unwrap();
        assert_eq!(v6.subnet_uuid.as_deref(), Some("u6"));
        assert!(!v6.names_pool());
        let bad: HashMap<String, String> =
            [(OPT_NET_SHARED.to_string(), "maybe".to_string())].into();
        assert!(FamilyOptions::from_map(&bad, false).is_err());
    }

    #[test]
    fn json_options_become_strings() {
        let v = serde_json::json!({"a": "x", "b": true, "c": 3, "d": null});
        let m = string_options(Some(&v));
        assert_eq!(m["a"], "x");
        assert_eq!(m["b"], "true");
        assert_eq!(m["c"], "3");
        assert!(!m.contains_key("d"));
    }
}
