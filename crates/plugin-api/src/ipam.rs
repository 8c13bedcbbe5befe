//! `IpamDriver` wire types, field names exactly as in libnetwork's `ipams/remote/api`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::PluginError;
use crate::keys;
use crate::request::{PluginRequest, TraceIds};
use crate::types::serde_helpers::{empty_as_none, null_as_default};
use crate::types::{MacAddr, Options, PoolId};

/// Reply to `/IpamDriver.GetCapabilities`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamCapabilitiesResponse {
    /// Docker generates the endpoint MAC before `RequestAddress` and passes it in the options.
    #[serde(rename = "RequiresMACAddress", default)]
    pub requires_mac_address: bool,
    /// Docker replays pools and addresses at every daemon start.
    #[serde(rename = "RequiresRequestReplay", default)]
    pub requires_request_replay: bool,
}

/// Reply to `/IpamDriver.GetDefaultAddressSpaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpacesResponse {
    /// Address space for local-scope networks.
    #[serde(rename = "LocalDefaultAddressSpace", default)]
    pub local_default_address_space: String,
    /// Address space for global-scope networks.
    #[serde(rename = "GlobalDefaultAddressSpace", default)]
    pub global_default_address_space: String,
}

/// `/IpamDriver.RequestPool`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    /// Address space (from `GetDefaultAddressSpaces` unless the API user chose one).
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    /// The requested pool (`--subnet`); `None` asks the driver to pick one, and a *new* one on
    /// every call (Docker loops otherwise).
    #[serde(
        rename = "Pool",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub pool: Option<IpNet>,
    /// `--ip-range`: narrows dynamic allocation; requires `pool`.
    #[serde(
        rename = "SubPool",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub sub_pool: Option<IpNet>,
    /// `--ipam-opt` values.
    #[serde(rename = "Options", default)]
    pub options: Options,
    /// Whether an IPv6 pool is requested.
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

impl PluginRequest for RequestPoolRequest {
    fn validate(&self) -> Result<(), PluginError> {
        let family = if self.v6 { "ipv6" } else { "ipv4" };
        if let Some(pool) = self.pool {
            if matches!(pool, IpNet::V6(_)) != self.v6 {
                return Err(PluginError::bad_request(format!(
                    "pool {pool} does not match the requested address family {family}"
                )));
            }
        }
        match (self.pool, self.sub_pool) {
            (None, Some(sub)) => Err(PluginError::bad_request(format!(
                "sub-pool {sub} requested without a pool"
            ))),
            (Some(pool), Some(sub)) if !pool.contains(&sub) => Err(PluginError::bad_request(
                format!("sub-pool {sub} is not inside pool {pool}"),
            )),
            _ => Ok(()),
        }
    }
}

/// Reply to `/IpamDriver.RequestPool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    /// Opaque ID Docker echoes in later calls.
    #[serde(rename = "PoolID")]
    pub pool_id: PoolId,
    /// The pool.
    #[serde(rename = "Pool")]
    pub pool: IpNet,
    /// Extra data; [`keys::GATEWAY`] here hands Docker the gateway (`<ip>/<len>`).
    #[serde(rename = "Data", default, deserialize_with = "null_as_default")]
    pub data: BTreeMap<String, String>,
}

impl RequestPoolResponse {
    /// A reply with no extra data.
    pub fn new(pool_id: PoolId, pool: IpNet) -> Self {
        RequestPoolResponse {
            pool_id,
            pool,
            data: BTreeMap::new(),
        }
    }

    /// Hands Docker the gateway so it does not request one (`gateway` keeps the pool prefix).
    pub fn with_gateway(mut self, gateway: IpNet) -> Self {
        self.data
            .insert(keys::GATEWAY.to_owned(), gateway.to_string());
        self
    }
}

/// `/IpamDriver.ReleasePool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    /// Pool to release.
    #[serde(rename = "PoolID")]
    pub pool_id: PoolId,
}

impl PluginRequest for ReleasePoolRequest {
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            pool_id: Some(&self.pool_id),
            ..TraceIds::default()
        }
    }
}

/// `/IpamDriver.RequestAddress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    /// Pool to allocate from.
    #[serde(rename = "PoolID")]
    pub pool_id: PoolId,
    /// A specific address (bare IP), or `None` for any.
    #[serde(
        rename = "Address",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub address: Option<IpAddr>,
    /// `RequestAddressType`, the endpoint MAC, the endpoint name (Docker 29+), ...
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl RequestAddressRequest {
    /// Whether this reserves the network gateway.
    pub fn is_gateway(&self) -> bool {
        self.options.get_str(keys::REQUEST_ADDRESS_TYPE) == Some(keys::GATEWAY)
    }

    /// The endpoint MAC Docker generated (text form), when the driver requires MACs.
    pub fn mac_address(&self) -> Option<MacAddr> {
        // validate() has rejected unparseable values already.
        self.options
            .get_str(keys::MAC_ADDRESS)
            .filter(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
    }
}

impl PluginRequest for RequestAddressRequest {
    fn validate(&self) -> Result<(), PluginError> {
        match self.options.get(keys::MAC_ADDRESS) {
            None | Some(serde_json::Value::Null) => Ok(()),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(()),
            Some(serde_json::Value::String(s)) => s.parse::<MacAddr>().map(drop).map_err(|e| {
                PluginError::bad_request(format!("option {}: {e}", keys::MAC_ADDRESS))
            }),
            Some(_) => Err(PluginError::bad_request(format!(
                "option {}: expected a string",
                keys::MAC_ADDRESS
            ))),
        }
    }

    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            pool_id: Some(&self.pool_id),
            ..TraceIds::default()
        }
    }
}

/// Reply to `/IpamDriver.RequestAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    /// The address with the pool's prefix length (the container's netmask).
    #[serde(rename = "Address")]
    pub address: IpNet,
    /// Extra data.
    #[serde(rename = "Data", default, deserialize_with = "null_as_default")]
    pub data: BTreeMap<String, String>,
}

impl RequestAddressResponse {
    /// A reply with no extra data.
    pub fn new(address: IpNet) -> Self {
        RequestAddressResponse {
            address,
            data: BTreeMap::new(),
        }
    }
}

/// `/IpamDriver.ReleaseAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    /// Pool the address belongs to.
    #[serde(rename = "PoolID")]
    pub pool_id: PoolId,
    /// The address, a bare IP.
    #[serde(rename = "Address")]
    pub address: IpAddr,
}

impl PluginRequest for ReleaseAddressRequest {
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            pool_id: Some(&self.pool_id),
            ..TraceIds::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::request::decode_request;
    use serde_json::json;

    #[test]
    fn request_pool_lab_capture() {
        let r: RequestPoolRequest = decode_request(
            b"{\"AddressSpace\":\"l\",\"Pool\":\"\",\"SubPool\":\"\",\"Options\":{},\"V6\":false}\n",
        )
        .unwrap();
        assert_eq!(r.address_space, "l");
        assert_eq!((r.pool, r.sub_pool, r.v6), (None, None, false));
        let r: RequestPoolRequest = decode_request(
            br#"{"AddressSpace":"l","Pool":"10.1.0.0/16","SubPool":"10.1.2.0/24","Options":null,"V6":false}"#,
        )
        .unwrap();
        assert_eq!(r.sub_pool, Some("10.1.2.0/24".parse().unwrap()));
    }

    #[test]
    fn request_pool_rejects_inconsistent() {
        for (body, needle) in [
            (json!({"SubPool": "10.0.0.0/24"}), "without a pool"),
            (
                json!({"Pool": "10.0.0.0/24", "SubPool": "10.0.1.0/24"}),
                "not inside",
            ),
            (json!({"Pool": "fd00::/64", "V6": false}), "address family"),
            (json!({"Pool": "10.0.0.0/24", "V6": true}), "address family"),
            (json!({"Pool": "banana"}), "Pool"),
            (json!({"V6": "yes"}), "V6"),
        ] {
            let e = decode_request::<RequestPoolRequest>(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadRequest);
            assert!(e.message().contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn request_pool_response_with_gateway() {
        let r = RequestPoolResponse::new("p1".parse().unwrap(), "10.0.0.0/24".parse().unwrap())
            .with_gateway("10.0.0.1/24".parse().unwrap());
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"PoolID": "p1", "Pool": "10.0.0.0/24",
                   "Data": {"com.docker.network.gateway": "10.0.0.1/24"}})
        );
    }

    #[test]
    fn request_address_variants() {
        let gw: RequestAddressRequest = decode_request(
            br#"{"PoolID":"p1","Address":"10.0.0.1","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#,
        )
        .unwrap();
        assert!(gw.is_gateway());
        assert_eq!(gw.address, Some("10.0.0.1".parse().unwrap()));
        let ep: RequestAddressRequest = decode_request(
            br#"{"PoolID":"p1","Address":"","Options":{"com.docker.network.endpoint.macaddress":"02:42:0a:00:00:02"}}"#,
        )
        .unwrap();
        assert!(!ep.is_gateway());
        assert_eq!(ep.address, None);
        assert_eq!(ep.mac_address(), Some("02:42:0a:00:00:02".parse().unwrap()));
        let aux: RequestAddressRequest =
            decode_request(br#"{"PoolID":"p1","Address":"10.0.0.9","Options":null}"#).unwrap();
        assert!(aux.options.is_empty());
        for (body, needle) in [
            (r#"{"PoolID":"p1","Address":"10.0.0.1/24"}"#, "Address"),
            (r#"{"PoolID":"","Address":""}"#, "empty pool id"),
            (
                r#"{"PoolID":"p1","Options":{"com.docker.network.endpoint.macaddress":"AkIKAAAC"}}"#,
                "mac address",
            ),
        ] {
            let e = decode_request::<RequestAddressRequest>(body.as_bytes()).unwrap_err();
            assert!(e.message().contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn release_address_requires_bare_ip() {
        let r: ReleaseAddressRequest =
            decode_request(br#"{"PoolID":"p1","Address":"fd00::5"}"#).unwrap();
        assert_eq!(r.address, "fd00::5".parse::<IpAddr>().unwrap());
        assert!(
            decode_request::<ReleaseAddressRequest>(br#"{"PoolID":"p1","Address":""}"#).is_err()
        );
        assert!(decode_request::<ReleaseAddressRequest>(br#"{"PoolID":"p1"}"#).is_err());
    }

    #[test]
    fn replies_encode() {
        assert_eq!(
            serde_json::to_value(IpamCapabilitiesResponse {
                requires_mac_address: true,
                requires_request_replay: false
            })
            .unwrap(),
            json!({"RequiresMACAddress": true, "RequiresRequestReplay": false})
        );
        assert_eq!(
            serde_json::to_value(AddressSpacesResponse {
                local_default_address_space: "no_address_space".into(),
                global_default_address_space: "no_address_space".into()
            })
            .unwrap(),
            json!({"LocalDefaultAddressSpace": "no_address_space",
                   "GlobalDefaultAddressSpace": "no_address_space"})
        );
        assert_eq!(
            serde_json::to_value(RequestAddressResponse::new("10.0.0.5/24".parse().unwrap()))
                .unwrap(),
            json!({"Address": "10.0.0.5/24", "Data": {}})
        );
    }
}
