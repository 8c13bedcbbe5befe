//! Kuryr's own `-o` (network) and `--ipam-opt` (pool) options, read once from Docker's options
//! map into [`NeutronOptions`].

use kuryr_plugin_api::Options;

use crate::constants::*;
use crate::error::{DriverError, Result};

/// The `neutron.*` options that apply to one address family (the v4 keys or their `.v6.` forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FamilyOptions {
    pub subnet_uuid: Option<String>,
    pub subnet_name: Option<String>,
    pub pool_uuid: Option<String>,
    pub pool_name: Option<String>,
}

impl FamilyOptions {
    pub(crate) fn names_pool(&self) -> bool {
        self.pool_uuid.is_some() || self.pool_name.is_some()
    }
}

/// Every `neutron.*` option of one options map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NeutronOptions {
    pub net_uuid: Option<String>,
    pub net_name: Option<String>,
    /// `neutron.net.shared`, when given.
    pub shared: Option<bool>,
    pub v4: FamilyOptions,
    pub v6: FamilyOptions,
}

/// Kuryr's option keys: what `-o` (network), `--ipam-opt` (pool) and `--driver-opt` (endpoint)
/// may carry. Any other `neutron.*` key is refused (a typo must not be ignored silently).
const NETWORK_KEYS: &[&str] = &[
    OPT_NET_UUID,
    OPT_NET_NAME,
    OPT_NET_SHARED,
    OPT_SUBNET_UUID,
    OPT_SUBNET_NAME,
    OPT_SUBNET_V6_UUID,
    OPT_SUBNET_V6_NAME,
    OPT_POOL_UUID,
    OPT_POOL_NAME,
    OPT_POOL_V6_UUID,
    OPT_POOL_V6_NAME,
    OPT_PORT_SECURITY_GROUPS,
    OPT_PORT_SECURITY,
    OPT_PORT_QOS_POLICY,
    OPT_PORT_DNS_NAME,
];
/// What `--driver-opt` of `docker network connect` may carry.
pub(crate) const ENDPOINT_KEYS: &[&str] = &[
    OPT_PORT_SECURITY_GROUPS,
    OPT_PORT_SECURITY,
    OPT_PORT_QOS_POLICY,
    OPT_PORT_DNS_NAME,
];
/// The prefix of Kuryr's keys.
const KURYR_KEY_PREFIX: &str = "neutron.";

/// Refuses `neutron.*` keys that are not in `known` (other keys are Docker's or another
/// tool's, and are left alone).
pub(crate) fn check_keys(opts: &Options, known: &[&str], what: &str) -> Result<()> {
    for (k, _) in opts.iter() {
        if k.starts_with(KURYR_KEY_PREFIX) && !known.contains(&k.as_str()) {
            return Err(DriverError::InvalidRequest(format!(
                "unknown {what} option {k:?}; kuryr's are {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

impl NeutronOptions {
    pub(crate) fn from_wire(opts: &Options) -> Result<Self> {
        check_keys(opts, NETWORK_KEYS, "network")?;
        let get = |key: &str| string_value(opts, key);
        let shared = match get(OPT_NET_SHARED) {
            Some(v) => Some(kuryr_types::parse_bool(&v).ok_or_else(|| {
                DriverError::InvalidRequest(format!(
                    "option {OPT_NET_SHARED} must be a boolean, not {v:?}"
                ))
            })?),
            None => None,
        };
        Ok(NeutronOptions {
            net_uuid: get(OPT_NET_UUID),
            net_name: get(OPT_NET_NAME),
            shared,
            v4: FamilyOptions {
                subnet_uuid: get(OPT_SUBNET_UUID),
                subnet_name: get(OPT_SUBNET_NAME),
                pool_uuid: get(OPT_POOL_UUID),
                pool_name: get(OPT_POOL_NAME),
            },
            v6: FamilyOptions {
                subnet_uuid: get(OPT_SUBNET_V6_UUID),
                subnet_name: get(OPT_SUBNET_V6_NAME),
                pool_uuid: get(OPT_POOL_V6_UUID),
                pool_name: get(OPT_POOL_V6_NAME),
            },
        })
    }

    pub(crate) fn family(&self, v6: bool) -> &FamilyOptions {
        if v6 {
            &self.v6
        } else {
            &self.v4
        }
    }
}

/// An option as a trimmed, non-empty string: `-o` values are strings, but Docker's API lets
/// booleans and numbers through.
pub(crate) fn string_value(opts: &Options, key: &str) -> Option<String> {
    let s = match opts.get(key)? {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Null => return None,
        other => other.to_string(),
    };
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_keys_and_values() {
        let o = Options::new()
            .with(OPT_SUBNET_NAME, "s4")
            .with(OPT_SUBNET_V6_UUID, "u6")
            .with(OPT_POOL_NAME, " p4 ")
            .with(OPT_NET_SHARED, "True")
            .with(OPT_NET_UUID, "");
        let n = NeutronOptions::from_wire(&o).unwrap();
        assert_eq!(n.v4.subnet_name.as_deref(), Some("s4"));
        assert_eq!(n.v4.pool_name.as_deref(), Some("p4"));
        assert_eq!(n.shared, Some(true));
        assert_eq!(n.net_uuid, None);
        assert_eq!(n.family(true).subnet_uuid.as_deref(), Some("u6"));
        assert!(!n.v6.names_pool());
        assert!(n.v4.names_pool());
        let json_bool = Options::new().with(OPT_NET_SHARED, false);
        assert_eq!(
            NeutronOptions::from_wire(&json_bool).unwrap().shared,
            Some(false)
        );
        let typo = Options::new().with("neutron.net.uid", "x");
        let e = NeutronOptions::from_wire(&typo).unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown network option \"neutron.net.uid\""),
            "{e}"
        );
        let theirs = Options::new().with("com.docker.network.driver.mtu", "1400");
        assert!(NeutronOptions::from_wire(&theirs).is_ok());
        let bad = Options::new().with(OPT_NET_SHARED, "maybe");
        let e = NeutronOptions::from_wire(&bad).unwrap_err();
        assert!(e.to_string().contains("must be a boolean"), "{e}");
    }
}
