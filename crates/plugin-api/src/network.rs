//! `NetworkDriver` wire types, field names exactly as in libnetwork's `drivers/remote/api`.
//!
//! Requests are decoded leniently where Docker is sloppy (`null` maps/slices, `""` for unset
//! addresses, unknown keys ignored) and strictly where the format is fixed (IDs, CIDRs, MACs).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::PluginError;
use crate::keys;
use crate::request::{PluginRequest, TraceIds};
use crate::types::serde_helpers::{empty_as_none, null_as_default};
use crate::types::{DockerId, MacAddr, Options};

/// Reply to `/Plugin.Activate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    /// Subsystems implemented: `NetworkDriver`, `IpamDriver`.
    #[serde(rename = "Implements")]
    pub implements: Vec<String>,
}

/// Data scope / connectivity scope of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Networks exist on this host only (Kuryr's default).
    Local,
    /// Networks are cluster-wide (swarm).
    Global,
}

/// Reply to `/NetworkDriver.GetCapabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    /// Mandatory; anything but `local`/`global` fails driver registration.
    #[serde(rename = "Scope")]
    pub scope: Scope,
    /// Empty means "same as Scope".
    #[serde(
        rename = "ConnectivityScope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connectivity_scope: Option<Scope>,
    /// Docker 28+: ask Docker to call `/NetworkDriver.GwAllocCheck`.
    #[serde(rename = "GwAllocChecker", default)]
    pub gw_alloc_checker: bool,
}

/// One address pool of a network as IPAM allocated it (`IPAMData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    /// Address space of the pool (may be `""`).
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    /// The pool.
    #[serde(rename = "Pool")]
    pub pool: IpNet,
    /// The gateway, in CIDR form (`10.0.0.1/24`); absent when none was allocated.
    #[serde(
        rename = "Gateway",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<IpNet>,
    /// Reserved auxiliary addresses by name, CIDR form.
    #[serde(
        rename = "AuxAddresses",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, IpNet>,
}

impl IpamData {
    fn check_family(&self, v6: bool, field: &str) -> Result<(), PluginError> {
        let pool_v6 = matches!(self.pool, IpNet::V6(_));
        if pool_v6 != v6 {
            return Err(PluginError::bad_request(format!(
                "{field}: pool {} is not an {} pool",
                self.pool,
                if v6 { "ipv6" } else { "ipv4" }
            )));
        }
        if let Some(gw) = self.gateway {
            if matches!(gw, IpNet::V6(_)) != v6 {
                return Err(PluginError::bad_request(format!(
                    "{field}: gateway {gw} is not in the address family of pool {}",
                    self.pool
                )));
            }
        }
        Ok(())
    }
}

fn check_ipam_data(data: &[IpamData], v6: bool, field: &str) -> Result<(), PluginError> {
    data.iter().try_for_each(|d| d.check_family(v6, field))
}

/// `/NetworkDriver.CreateNetwork`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    /// Docker network ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Network options; driver options are under [`keys::GENERIC`] (see [`Options::generic`]).
    #[serde(rename = "Options", default)]
    pub options: Options,
    /// IPv4 pools (`[]` when IPv4 is disabled).
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 pools (`[]` unless IPv6 is enabled).
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

impl CreateNetworkRequest {
    /// Whether IPv6 is enabled (`com.docker.network.enable_ipv6`).
    pub fn ipv6_enabled(&self) -> bool {
        // validate() has already rejected non-boolean values.
        self.options
            .get_bool(keys::ENABLE_IPV6)
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Whether the network is `--internal`.
    pub fn internal(&self) -> bool {
        self.options
            .get_bool(keys::INTERNAL)
            .ok()
            .flatten()
            .unwrap_or(false)
    }
}

impl PluginRequest for CreateNetworkRequest {
    fn validate(&self) -> Result<(), PluginError> {
        check_ipam_data(&self.ipv4_data, false, "IPv4Data")?;
        check_ipam_data(&self.ipv6_data, true, "IPv6Data")?;
        for key in [keys::ENABLE_IPV6, keys::ENABLE_IPV4, keys::INTERNAL] {
            self.options
                .get_bool(key)
                .map_err(PluginError::bad_request)?;
        }
        self.options.generic().map_err(PluginError::bad_request)?;
        Ok(())
    }

    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            network_id: Some(&self.network_id),
            ..TraceIds::default()
        }
    }
}

/// Requests that carry only a network ID: `DeleteNetwork`, `FreeNetwork`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// Docker network ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
}

impl PluginRequest for NetworkRequest {
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            network_id: Some(&self.network_id),
            ..TraceIds::default()
        }
    }
}

/// `/NetworkDriver.DeleteNetwork`.
pub type DeleteNetworkRequest = NetworkRequest;
/// `/NetworkDriver.FreeNetwork`.
pub type FreeNetworkRequest = NetworkRequest;

/// `/NetworkDriver.AllocateNetwork` (swarm managers, global-scope drivers only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocateNetworkRequest {
    /// Docker network ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Driver options merged with previously returned state.
    #[serde(rename = "Options", default)]
    pub options: Options,
    /// IPv4 pools.
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 pools.
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

impl PluginRequest for AllocateNetworkRequest {
    fn validate(&self) -> Result<(), PluginError> {
        check_ipam_data(&self.ipv4_data, false, "IPv4Data")?;
        check_ipam_data(&self.ipv6_data, true, "IPv6Data")
    }

    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            network_id: Some(&self.network_id),
            ..TraceIds::default()
        }
    }
}

/// Reply to `/NetworkDriver.AllocateNetwork`: driver state handed to every node's CreateNetwork.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkResponse {
    /// Opaque driver state.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

/// An endpoint's addresses and MAC (`EndpointInterface`); `""` on the wire means "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    /// IPv4 address with the pool's prefix length.
    #[serde(
        rename = "Address",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub address: Option<Ipv4Net>,
    /// IPv6 address with the pool's prefix length.
    #[serde(
        rename = "AddressIPv6",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub address_ipv6: Option<Ipv6Net>,
    /// MAC address.
    #[serde(
        rename = "MacAddress",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub mac_address: Option<MacAddr>,
}

impl EndpointInterface {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.address.is_none() && self.address_ipv6.is_none() && self.mac_address.is_none()
    }
}

/// `/NetworkDriver.CreateEndpoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    /// Docker network ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Docker endpoint ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    /// What Docker already decided (addresses from IPAM, maybe a MAC).
    #[serde(rename = "Interface", default, deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
    /// Endpoint options: exposed ports, port map, `--driver-opt` values, ...
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl PluginRequest for CreateEndpointRequest {
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            network_id: Some(&self.network_id),
            endpoint_id: Some(&self.endpoint_id),
            pool_id: None,
        }
    }
}

/// Reply to `/NetworkDriver.CreateEndpoint`.
///
/// Docker applies every non-empty field and fails if it already had that field (even with the
/// same value), so set only what the request left empty — typically the MAC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    /// Fields the driver fills in; `None` (or all-empty) means "keep Docker's".
    #[serde(rename = "Interface", default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

impl CreateEndpointResponse {
    /// A reply that changes nothing.
    pub fn unchanged() -> Self {
        Self::default()
    }

    /// The reply for `request`: returns `mac` only if Docker did not already set one, never
    /// echoing a value Docker has.
    pub fn with_mac_if_unset(request: &CreateEndpointRequest, mac: MacAddr) -> Self {
        if request.interface.mac_address.is_some() {
            return Self::unchanged();
        }
        CreateEndpointResponse {
            interface: Some(EndpointInterface {
                mac_address: Some(mac),
                ..EndpointInterface::default()
            }),
        }
    }
}

/// Requests that carry a network and an endpoint ID only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    /// Docker network ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Docker endpoint ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
}

impl PluginRequest for EndpointRequest {
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            network_id: Some(&self.network_id),
            endpoint_id: Some(&self.endpoint_id),
            pool_id: None,
        }
    }
}

/// `/NetworkDriver.EndpointOperInfo`.
pub type EndpointOperInfoRequest = EndpointRequest;
/// `/NetworkDriver.DeleteEndpoint`.
pub type DeleteEndpointRequest = EndpointRequest;
/// `/NetworkDriver.Leave`.
pub type LeaveRequest = EndpointRequest;
/// `/NetworkDriver.RevokeExternalConnectivity`.
pub type RevokeExternalConnectivityRequest = EndpointRequest;

/// Reply to `/NetworkDriver.EndpointOperInfo`: free-form, ignored by Docker on Linux.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointOperInfoResponse {
    /// Operational data.
    #[serde(rename = "Value", default, deserialize_with = "null_as_default")]
    pub value: Map<String, Value>,
}

/// `/NetworkDriver.Join`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Docker network ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Docker endpoint ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    /// Path of the container's network namespace.
    #[serde(rename = "SandboxKey", default, deserialize_with = "null_as_default")]
    pub sandbox_key: String,
    /// The container's sandbox options (exposed ports, port map).
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl PluginRequest for JoinRequest {
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            network_id: Some(&self.network_id),
            endpoint_id: Some(&self.endpoint_id),
            pool_id: None,
        }
    }
}

/// The host interface Docker moves into the sandbox and renames to `<DstPrefix><n>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceName {
    /// Name of an interface in the host network namespace.
    #[serde(rename = "SrcName")]
    pub src_name: String,
    /// Prefix of its name inside the container, usually `eth`.
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// How a static route is bound (`RouteType`, an integer on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    /// Via `NextHop` (0).
    NextHop,
    /// Directly on the interface, no next hop (1).
    Connected,
}

impl Serialize for RouteType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            RouteType::NextHop => 0,
            RouteType::Connected => 1,
        })
    }
}

impl<'de> Deserialize<'de> for RouteType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(RouteType::NextHop),
            1 => Ok(RouteType::Connected),
            n => Err(serde::de::Error::custom(format!(
                "invalid route type {n}: expected 0 (next hop) or 1 (connected)"
            ))),
        }
    }
}

/// A route Docker installs in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    /// Destination prefix.
    #[serde(rename = "Destination")]
    pub destination: IpNet,
    /// Next-hop or connected.
    #[serde(rename = "RouteType")]
    pub route_type: RouteType,
    /// Gateway, for [`RouteType::NextHop`] only.
    #[serde(
        rename = "NextHop",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_hop: Option<IpAddr>,
}

impl StaticRoute {
    /// A route via a gateway.
    pub fn via(destination: IpNet, next_hop: IpAddr) -> Self {
        StaticRoute {
            destination,
            route_type: RouteType::NextHop,
            next_hop: Some(next_hop),
        }
    }

    /// A route bound directly to the interface.
    pub fn connected(destination: IpNet) -> Self {
        StaticRoute {
            destination,
            route_type: RouteType::Connected,
            next_hop: None,
        }
    }
}

/// Reply to `/NetworkDriver.Join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The interface to move into the sandbox; `None` moves nothing.
    #[serde(
        rename = "InterfaceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_name: Option<InterfaceName>,
    /// IPv4 gateway, a bare IP (a CIDR here makes Docker fail the join).
    #[serde(
        rename = "Gateway",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 gateway, a bare IP.
    #[serde(
        rename = "GatewayIPv6",
        default,
        with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_ipv6: Option<Ipv6Addr>,
    /// Extra routes.
    #[serde(
        rename = "StaticRoutes",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_routes: Vec<StaticRoute>,
    /// True keeps Docker from adding a `docker_gwbridge` interface for a default route.
    #[serde(rename = "DisableGatewayService", default)]
    pub disable_gateway_service: bool,
}

/// `/NetworkDriver.ProgramExternalConnectivity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    /// Docker network ID.
    #[serde(rename = "NetworkID")]
    pub network_id: DockerId,
    /// Docker endpoint ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: DockerId,
    /// Sandbox options (exposed ports, port map).
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl PluginRequest for ProgramExternalConnectivityRequest {
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds {
            network_id: Some(&self.network_id),
            endpoint_id: Some(&self.endpoint_id),
            pool_id: None,
        }
    }
}

/// `/NetworkDriver.DiscoverNew` and `/NetworkDriver.DiscoverDelete` (swarm node events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    /// 1 = node discovery (the only type forwarded to remote drivers).
    #[serde(rename = "DiscoveryType", default)]
    pub discovery_type: i64,
    /// `{"Address", "BindAddress", "Self"}` for node events.
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: Value,
}

impl PluginRequest for DiscoveryNotification {}

/// `/NetworkDriver.GwAllocCheck` (Docker 28+, when advertised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GwAllocCheckRequest {
    /// The options CreateNetwork will receive.
    #[serde(rename = "Options", default)]
    pub options: Options,
}

impl PluginRequest for GwAllocCheckRequest {}

/// Reply to `/NetworkDriver.GwAllocCheck`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GwAllocCheckResponse {
    /// Don't reserve an IPv4 gateway address in IPAM.
    #[serde(rename = "SkipIPv4", default)]
    pub skip_ipv4: bool,
    /// Don't reserve an IPv6 gateway address in IPAM.
    #[serde(rename = "SkipIPv6", default)]
    pub skip_ipv6: bool,
}

/// One exposed port (`com.docker.network.endpoint.exposedports` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExposedPort {
    /// IP protocol number: 6 tcp, 17 udp, 132 sctp.
    #[serde(rename = "Proto")]
    pub proto: u8,
    /// Port number.
    #[serde(rename = "Port")]
    pub port: u16,
}

/// One published port (`com.docker.network.portmap` entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    /// IP protocol number.
    #[serde(rename = "Proto")]
    pub proto: u8,
    /// Container IP (`""` when unset).
    #[serde(rename = "IP", default, with = "empty_as_none")]
    pub ip: Option<IpAddr>,
    /// Container port.
    #[serde(rename = "Port")]
    pub port: u16,
    /// Host IP (`""` = all).
    #[serde(rename = "HostIP", default, with = "empty_as_none")]
    pub host_ip: Option<IpAddr>,
    /// First host port.
    #[serde(rename = "HostPort", default)]
    pub host_port: u16,
    /// Last host port of a range.
    #[serde(rename = "HostPortEnd", default)]
    pub host_port_end: u16,
}

impl Options {
    /// The exposed ports (`[]` if none).
    pub fn exposed_ports(&self) -> Result<Vec<ExposedPort>, PluginError> {
        self.get_typed::<Vec<ExposedPort>>(keys::EXPOSED_PORTS)
            .map(Option::unwrap_or_default)
            .map_err(PluginError::bad_request)
    }

    /// The published ports (`[]` if none).
    pub fn port_map(&self) -> Result<Vec<PortBinding>, PluginError> {
        self.get_typed::<Vec<PortBinding>>(keys::PORT_MAP)
            .map(Option::unwrap_or_default)
            .map_err(PluginError::bad_request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::request::decode_request;
    use serde_json::json;

    const NID: &str = "6f1a9c2b8e7d4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a";
    const EID: &str = "0e1d2c3b4a5968778695a4b3c2d1e0f9f8e7d6c5b4a3928170f6e5d4c3b2a190";

    #[test]
    fn create_network_lab_capture_decodes() {
        // Shape recorded from Docker 20.10 (protocol digest, section 2.3).
        let body = format!(
            r#"{{"NetworkID":"{NID}","Options":{{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{{}}}},"IPv4Data":[{{"AddressSpace":"l","Gateway":"10.99.0.5/24","Pool":"10.99.0.0/24"}}],"IPv6Data":[]}}
"#
        );
        let r: CreateNetworkRequest = decode_request(body.as_bytes()).unwrap();
        assert_eq!(r.network_id.as_str(), NID);
        assert!(!r.ipv6_enabled());
        assert!(!r.internal());
        assert_eq!(r.ipv4_data.len(), 1);
        assert_eq!(r.ipv4_data[0].address_space, "l");
        assert_eq!(
            r.ipv4_data[0].pool,
            "10.99.0.0/24".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            r.ipv4_data[0].gateway,
            Some("10.99.0.5/24".parse().unwrap())
        );
        assert!(r.ipv4_data[0].aux_addresses.is_empty());
        assert!(r.ipv6_data.is_empty());
        assert!(r.options.generic().unwrap().is_empty());
    }

    #[test]
    fn create_network_tolerates_nulls_and_unknown_keys() {
        let body = json!({"NetworkID": NID, "Options": null, "IPv4Data": null, "IPv6Data": null,
            "SomethingNew": {"x": 1}});
        let r: CreateNetworkRequest = decode_request(body.to_string().as_bytes()).unwrap();
        assert!(r.options.is_empty() && r.ipv4_data.is_empty() && r.ipv6_data.is_empty());
        let body = json!({"NetworkID": NID, "IPv4Data": [{"AddressSpace": null,
            "Pool": "10.0.0.0/16", "Gateway": "", "AuxAddresses": null}]});
        let r: CreateNetworkRequest = decode_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.ipv4_data[0].gateway, None);
        assert_eq!(r.ipv4_data[0].address_space, "");
    }

    #[test]
    fn create_network_rejects_bad_values() {
        let cases = [
            (json!({"Options": {}}), "NetworkID"),
            (json!({"NetworkID": "not/an/id"}), "NetworkID"),
            (
                json!({"NetworkID": NID, "IPv4Data": [{"Pool": "10.0.0.0/33"}]}),
                "IPv4Data[0].Pool",
            ),
            (
                json!({"NetworkID": NID, "IPv4Data": [{"Pool": "10.0.0.0/24", "Gateway": "10.0.0.1/x"}]}),
                "Gateway",
            ),
            (
                json!({"NetworkID": NID, "IPv4Data": [{"Pool": "fd00::/64"}]}),
                "not an ipv4 pool",
            ),
            (
                json!({"NetworkID": NID, "IPv6Data": [{"Pool": "fd00::/64", "Gateway": "10.0.0.1/24"}]}),
                "address family",
            ),
            (
                json!({"NetworkID": NID, "Options": {"com.docker.network.enable_ipv6": "maybe"}}),
                "expected a boolean",
            ),
            (
                json!({"NetworkID": NID, "Options": {"com.docker.network.generic": []}}),
                "com.docker.network.generic",
            ),
            (json!({"NetworkID": NID, "Options": 7}), "Options"),
        ];
        for (body, needle) in cases {
            let e = decode_request::<CreateNetworkRequest>(body.to_string().as_bytes())
                .expect_err(&body.to_string());
            assert_eq!(e.kind(), ErrorKind::BadRequest, "{body}: {e}");
            assert!(e.message().contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn create_endpoint_decodes_and_never_echoes() {
        let body = json!({"NetworkID": NID, "EndpointID": EID,
            "Interface": {"Address": "10.99.0.2/24", "AddressIPv6": "", "MacAddress": ""},
            "Options": {"com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 80}],
                        "com.docker.network.portmap": [{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}],
                        "com.docker.network.endpoint.macaddress": "AkIKAAAC"}});
        let r: CreateEndpointRequest = decode_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.interface.address, Some("10.99.0.2/24".parse().unwrap()));
        assert_eq!(r.interface.address_ipv6, None);
        assert_eq!(r.interface.mac_address, None);
        assert_eq!(
            r.options.exposed_ports().unwrap(),
            vec![ExposedPort { proto: 6, port: 80 }]
        );
        let pm = r.options.port_map().unwrap();
        assert_eq!((pm[0].port, pm[0].host_port, pm[0].ip), (80, 8080, None));

        let mac: MacAddr = "fa:16:3e:00:00:01".parse().unwrap();
        let resp = CreateEndpointResponse::with_mac_if_unset(&r, mac);
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            json!({"Interface": {"MacAddress": "fa:16:3e:00:00:01"}})
        );

        let mut with_mac = r.clone();
        with_mac.interface.mac_address = Some("02:42:0a:00:00:02".parse().unwrap());
        let resp = CreateEndpointResponse::with_mac_if_unset(&with_mac, mac);
        assert_eq!(serde_json::to_value(&resp).unwrap(), json!({}));
    }

    #[test]
    fn create_endpoint_null_interface_and_bad_fields() {
        let body = json!({"NetworkID": NID, "EndpointID": EID, "Interface": null, "Options": null});
        let r: CreateEndpointRequest = decode_request(body.to_string().as_bytes()).unwrap();
        assert!(r.interface.is_empty());
        for (iface, needle) in [
            (json!({"Address": "10.0.0.300/24"}), "Interface.Address"),
            (json!({"Address": "fd00::2/64"}), "Interface.Address"),
            (
                json!({"AddressIPv6": "10.0.0.2/24"}),
                "Interface.AddressIPv6",
            ),
            (json!({"MacAddress": "02:42"}), "mac address"),
        ] {
            let body = json!({"NetworkID": NID, "EndpointID": EID, "Interface": iface});
            let e =
                decode_request::<CreateEndpointRequest>(body.to_string().as_bytes()).unwrap_err();
            assert!(e.message().contains(needle), "{body}: {e}");
        }
        let body = json!({"NetworkID": NID, "EndpointID": EID,
            "Options": {"com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 70000}]}});
        let r: CreateEndpointRequest = decode_request(body.to_string().as_bytes()).unwrap();
        assert!(r
            .options
            .exposed_ports()
            .unwrap_err()
            .message()
            .contains("exposedports"));
    }

    #[test]
    fn join_response_encoding() {
        let resp = JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: "t_c1234".into(),
                dst_prefix: "eth".into(),
            }),
            gateway: Some("10.99.0.1".parse().unwrap()),
            gateway_ipv6: None,
            static_routes: vec![
                StaticRoute::via(
                    "10.0.0.0/8".parse().unwrap(),
                    "10.99.0.254".parse().unwrap(),
                ),
                StaticRoute::connected("192.168.5.0/24".parse().unwrap()),
            ],
            disable_gateway_service: true,
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            v,
            json!({"InterfaceName": {"SrcName": "t_c1234", "DstPrefix": "eth"},
                   "Gateway": "10.99.0.1",
                   "StaticRoutes": [{"Destination": "10.0.0.0/8", "RouteType": 0, "NextHop": "10.99.0.254"},
                                    {"Destination": "192.168.5.0/24", "RouteType": 1}],
                   "DisableGatewayService": true})
        );
        let back: JoinResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, resp);
        assert_eq!(
            serde_json::to_value(JoinResponse::default()).unwrap(),
            json!({"DisableGatewayService": false})
        );
        assert!(serde_json::from_value::<RouteType>(json!(2)).is_err());
    }

    #[test]
    fn join_request_decodes() {
        let body = json!({"NetworkID": NID, "EndpointID": EID,
            "SandboxKey": "/var/run/docker/netns/3a72648abcdf", "Options": null});
        let r: JoinRequest = decode_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.sandbox_key, "/var/run/docker/netns/3a72648abcdf");
        let ids = r.trace_ids();
        assert_eq!(ids.endpoint_id.unwrap().as_str(), EID);
        let e = decode_request::<JoinRequest>(json!({"NetworkID": NID}).to_string().as_bytes())
            .unwrap_err();
        assert!(e.message().contains("EndpointID"), "{e}");
    }

    #[test]
    fn capabilities_and_small_replies() {
        let caps = CapabilitiesResponse {
            scope: Scope::Local,
            connectivity_scope: None,
            gw_alloc_checker: false,
        };
        assert_eq!(
            serde_json::to_value(caps).unwrap(),
            json!({"Scope": "local", "GwAllocChecker": false})
        );
        let caps = CapabilitiesResponse {
            scope: Scope::Global,
            connectivity_scope: Some(Scope::Global),
            gw_alloc_checker: true,
        };
        assert_eq!(
            serde_json::to_value(caps).unwrap(),
            json!({"Scope": "global", "ConnectivityScope": "global", "GwAllocChecker": true})
        );
        assert_eq!(
            serde_json::to_value(GwAllocCheckResponse {
                skip_ipv4: true,
                skip_ipv6: false
            })
            .unwrap(),
            json!({"SkipIPv4": true, "SkipIPv6": false})
        );
        assert_eq!(
            serde_json::to_value(EndpointOperInfoResponse::default()).unwrap(),
            json!({"Value": {}})
        );
        assert_eq!(
            serde_json::to_value(AllocateNetworkResponse::default()).unwrap(),
            json!({"Options": {}})
        );
    }

    #[test]
    fn discovery_and_gw_alloc_check_decode() {
        let d: DiscoveryNotification = decode_request(
            br#"{"DiscoveryType": 1, "DiscoveryData": {"Address": "10.0.0.12", "BindAddress": "", "Self": true}}"#,
        )
        .unwrap();
        assert_eq!(d.discovery_type, 1);
        assert_eq!(d.discovery_data["Address"], "10.0.0.12");
        let g: GwAllocCheckRequest =
            decode_request(br#"{"Options": {"com.docker.network.enable_ipv4": true}}"#).unwrap();
        assert_eq!(g.options.get_bool(keys::ENABLE_IPV4).unwrap(), Some(true));
    }

    #[test]
    fn allocate_network_decodes_swarm_id() {
        let r: AllocateNetworkRequest = decode_request(
            br#"{"NetworkID": "k3b0x8vuxn2lqzq0w1t3g7s4a", "Options": {"a": "b"},
                 "IPv4Data": [{"AddressSpace": "", "Pool": "10.0.9.0/24", "Gateway": "10.0.9.1/24"}],
                 "IPv6Data": null}"#,
        )
        .unwrap();
        assert_eq!(r.network_id.as_str().len(), 25);
        assert_eq!(r.options.get_str("a"), Some("b"));
    }
}
