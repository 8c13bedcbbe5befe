//! Neutron resources as the v2.0 API sends and accepts them.
//!
//! Read types tolerate missing fields (a `fields=` selection returns only some) and `null` where
//! Neutron sends it. Create/update payloads are separate structs whose `None` fields are left out of
//! the request, so one call can set exactly what the caller means.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

// The typed fields' types, so users of these resources need no other crate to name them.
pub use kuryr_types::{MacAddr, PortStatus, VifType};

/// Deserialize `null` as the type's default (Neutron sends `null` for many empty attributes).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Prefix lengths come as numbers from current Neutron and as strings from older releases.
fn lenient_u8<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(u8),
        Str(String),
    }
    match Option::<NumOrStr>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrStr::Num(n)) => Ok(Some(n)),
        Some(NumOrStr::Str(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A Neutron network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    pub mtu: Option<u32>,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    #[serde(deserialize_with = "null_default")]
    pub admin_state_up: bool,
    #[serde(deserialize_with = "null_default")]
    pub subnets: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(rename = "router:external", deserialize_with = "null_default")]
    pub router_external: bool,
    #[serde(deserialize_with = "null_default")]
    pub shared: bool,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
    pub port_security_enabled: Option<bool>,
    #[serde(rename = "provider:network_type")]
    pub provider_network_type: Option<String>,
    #[serde(rename = "provider:physical_network")]
    pub provider_physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    pub provider_segmentation_id: Option<u32>,
}

/// A start-end range of a subnet's allocation pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    pub start: IpAddr,
    pub end: IpAddr,
}

/// A static route handed out with a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

/// A Neutron subnet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subnet {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    #[serde(deserialize_with = "null_default")]
    pub network_id: String,
    #[serde(deserialize_with = "null_default")]
    pub cidr: IpNet,
    #[serde(deserialize_with = "null_default")]
    pub ip_version: u8,
    /// `None` when the subnet has no gateway.
    pub gateway_ip: Option<IpAddr>,
    #[serde(deserialize_with = "null_default")]
    pub allocation_pools: Vec<AllocationPool>,
    #[serde(deserialize_with = "null_default")]
    pub host_routes: Vec<HostRoute>,
    #[serde(deserialize_with = "null_default")]
    pub dns_nameservers: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub enable_dhcp: bool,
    pub subnetpool_id: Option<String>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
}

/// A Neutron subnet pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetPool {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    #[serde(deserialize_with = "null_default")]
    pub prefixes: Vec<IpNet>,
    #[serde(deserialize_with = "lenient_u8")]
    pub default_prefixlen: Option<u8>,
    #[serde(deserialize_with = "lenient_u8")]
    pub min_prefixlen: Option<u8>,
    #[serde(deserialize_with = "lenient_u8")]
    pub max_prefixlen: Option<u8>,
    #[serde(deserialize_with = "null_default")]
    pub ip_version: u8,
    #[serde(deserialize_with = "null_default")]
    pub is_default: bool,
    #[serde(deserialize_with = "null_default")]
    pub shared: bool,
    pub address_scope_id: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
}

/// One address of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

/// A fixed IP request: a subnet, an address, or both (Neutron picks what is left out).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIpRequest {
    pub subnet_id: Option<String>,
    pub ip_address: Option<IpAddr>,
}

impl FixedIpRequest {
    /// Any free address of `subnet_id`.
    pub fn subnet(subnet_id: impl Into<String>) -> Self {
        FixedIpRequest {
            subnet_id: Some(subnet_id.into()),
            ip_address: None,
        }
    }

    /// Exactly `ip` in `subnet_id`.
    pub fn address(subnet_id: impl Into<String>, ip: IpAddr) -> Self {
        FixedIpRequest {
            subnet_id: Some(subnet_id.into()),
            ip_address: Some(ip),
        }
    }
}

/// An extra address (and optionally MAC) a port may send from.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedAddressPair {
    /// An address or a CIDR.
    pub ip_address: String,
    #[serde(default)]
    pub mac_address: Option<MacAddr>,
}

/// A subport of a trunk, as trunks and `add_subports` use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubPort {
    pub port_id: String,
    /// `vlan` (or `inherit` where the cloud supports it).
    pub segmentation_type: String,
    pub segmentation_id: u32,
}

impl SubPort {
    /// A VLAN subport.
    pub fn vlan(port_id: impl Into<String>, vlan_id: u32) -> Self {
        SubPort {
            port_id: port_id.into(),
            segmentation_type: "vlan".into(),
            segmentation_id: vlan_id,
        }
    }
}

/// A subport as the parent port's `trunk_details` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkSubPortDetail {
    pub port_id: String,
    #[serde(default)]
    pub segmentation_type: String,
    pub segmentation_id: u32,
    #[serde(default)]
    pub mac_address: Option<MacAddr>,
}

/// `trunk_details` of a trunk's parent port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkDetails {
    pub trunk_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub sub_ports: Vec<TrunkSubPortDetail>,
}

/// A Neutron port.
///
/// `status` and `binding:vif_type` read what Neutron sends, unknown values included (as
/// `Other`); `null` or absent reads as `DOWN` and `unbound`. A listing that leaves out
/// `mac_address` (a `fields=` selection) reads as [`Port::NO_MAC`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    #[serde(deserialize_with = "null_default")]
    pub network_id: String,
    pub mac_address: MacAddr,
    #[serde(deserialize_with = "null_default")]
    pub fixed_ips: Vec<FixedIp>,
    pub status: PortStatus,
    #[serde(deserialize_with = "null_default")]
    pub admin_state_up: bool,
    #[serde(deserialize_with = "null_default")]
    pub device_owner: String,
    #[serde(deserialize_with = "null_default")]
    pub device_id: String,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(rename = "binding:host_id", deserialize_with = "null_default")]
    pub binding_host_id: String,
    #[serde(rename = "binding:vif_type")]
    pub binding_vif_type: VifType,
    #[serde(rename = "binding:vnic_type", deserialize_with = "null_default")]
    pub binding_vnic_type: String,
    #[serde(rename = "binding:vif_details", deserialize_with = "null_default")]
    pub binding_vif_details: Map<String, Value>,
    #[serde(rename = "binding:profile", deserialize_with = "null_default")]
    pub binding_profile: Map<String, Value>,
    #[serde(deserialize_with = "null_default")]
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    #[serde(deserialize_with = "null_default")]
    pub security_groups: Vec<String>,
    pub port_security_enabled: Option<bool>,
    /// `qos-port` extension (absent or null: none).
    pub qos_policy_id: Option<String>,
    /// `dns-integration` extension (absent or null: none).
    pub dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trunk_details: Option<TrunkDetails>,
}

impl Port {
    /// The MAC of a port read without its `mac_address` (`00:00:00:00:00:00`).
    pub const NO_MAC: MacAddr = MacAddr::new([0; 6]);
}

impl Default for Port {
    fn default() -> Self {
        Port {
            id: String::new(),
            name: String::new(),
            description: String::new(),
            network_id: String::new(),
            mac_address: Port::NO_MAC,
            fixed_ips: Vec::new(),
            status: PortStatus::default(),
            admin_state_up: false,
            device_owner: String::new(),
            device_id: String::new(),
            project_id: String::new(),
            tags: Vec::new(),
            binding_host_id: String::new(),
            binding_vif_type: VifType::default(),
            binding_vnic_type: String::new(),
            binding_vif_details: Map::new(),
            binding_profile: Map::new(),
            allowed_address_pairs: Vec::new(),
            security_groups: Vec::new(),
            port_security_enabled: None,
            qos_policy_id: None,
            dns_name: None,
            trunk_details: None,
        }
    }
}

/// A QoS policy (`qos` extension): only found by name, never made or changed by Kuryr.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QosPolicy {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
    #[serde(deserialize_with = "null_default")]
    pub shared: bool,
}

/// A security group rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityGroupRule {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub security_group_id: String,
    /// `ingress` or `egress`.
    #[serde(deserialize_with = "null_default")]
    pub direction: String,
    /// `IPv4` or `IPv6`.
    #[serde(deserialize_with = "null_default")]
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
}

/// A security group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityGroup {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub security_group_rules: Vec<SecurityGroupRule>,
    pub stateful: Option<bool>,
}

/// A trunk (a parent port carrying VLAN subports).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Trunk {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    #[serde(deserialize_with = "null_default")]
    pub port_id: String,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    #[serde(deserialize_with = "null_default")]
    pub admin_state_up: bool,
    #[serde(deserialize_with = "null_default")]
    pub sub_ports: Vec<SubPort>,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub project_id: String,
}

/// An API extension the cloud offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Extension {
    #[serde(deserialize_with = "null_default")]
    pub alias: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub description: String,
}

// ---------------------------------------------------------------------------------------------
// Request payloads. `None` means "not sent": Neutron applies its default (create) or leaves the
// attribute alone (update); `skip_serializing_none` leaves out every `Option` field that is `None`,
// so `Some(None)` (e.g. `gateway_ip`) still sends an explicit `null`.

/// Body of `POST /v2.0/networks`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewNetwork {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    pub mtu: Option<u32>,
    pub port_security_enabled: Option<bool>,
    #[serde(rename = "router:external")]
    pub router_external: Option<bool>,
    #[serde(rename = "provider:network_type")]
    pub provider_network_type: Option<String>,
    #[serde(rename = "provider:physical_network")]
    pub provider_physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    pub provider_segmentation_id: Option<u32>,
    pub project_id: Option<String>,
    /// Tags of the new network. Neutron refuses them in the POST body, so [`HttpNeutron`]
    /// sets them with one `PUT .../tags` right after, and deletes the network if that fails.
    ///
    /// [`HttpNeutron`]: super::HttpNeutron
    pub tags: Option<Vec<String>>,
}

/// Body of `PUT /v2.0/networks/{id}`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetworkUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    pub mtu: Option<u32>,
    pub port_security_enabled: Option<bool>,
}

/// Body of `POST /v2.0/subnets`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewSubnet {
    pub network_id: String,
    pub ip_version: u8,
    /// Left out when allocating from a subnet pool by `prefixlen`.
    pub cidr: Option<IpNet>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` sends `null`: a subnet without a gateway.
    pub gateway_ip: Option<Option<IpAddr>>,
    pub enable_dhcp: Option<bool>,
    pub subnetpool_id: Option<String>,
    pub prefixlen: Option<u8>,
    pub allocation_pools: Option<Vec<AllocationPool>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub dns_nameservers: Option<Vec<String>>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub project_id: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Body of `PUT /v2.0/subnets/{id}`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SubnetUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub gateway_ip: Option<Option<IpAddr>>,
    pub enable_dhcp: Option<bool>,
    pub allocation_pools: Option<Vec<AllocationPool>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub dns_nameservers: Option<Vec<String>>,
}

/// Body of `POST /v2.0/subnetpools`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewSubnetPool {
    pub name: String,
    pub prefixes: Vec<IpNet>,
    pub description: Option<String>,
    pub default_prefixlen: Option<u8>,
    pub min_prefixlen: Option<u8>,
    pub max_prefixlen: Option<u8>,
    pub shared: Option<bool>,
    pub is_default: Option<bool>,
    pub address_scope_id: Option<String>,
    pub project_id: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Body of `PUT /v2.0/subnetpools/{id}`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SubnetPoolUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Prefixes can only be added, never removed (Neutron's rule).
    pub prefixes: Option<Vec<IpNet>>,
    pub default_prefixlen: Option<u8>,
    pub is_default: Option<bool>,
}

/// Body of `POST /v2.0/ports` (one element of a bulk create).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewPort {
    pub network_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub mac_address: Option<MacAddr>,
    pub admin_state_up: Option<bool>,
    pub device_owner: Option<String>,
    pub device_id: Option<String>,
    #[serde(rename = "binding:host_id")]
    pub binding_host_id: Option<String>,
    #[serde(rename = "binding:vnic_type")]
    pub binding_vnic_type: Option<String>,
    #[serde(rename = "binding:profile")]
    pub binding_profile: Option<Map<String, Value>>,
    pub security_groups: Option<Vec<String>>,
    pub port_security_enabled: Option<bool>,
    pub allowed_address_pairs: Option<Vec<AllowedAddressPair>>,
    pub project_id: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Body of `PUT /v2.0/ports/{id}`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PortUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The complete new list (Neutron replaces it).
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub mac_address: Option<MacAddr>,
    pub admin_state_up: Option<bool>,
    pub device_owner: Option<String>,
    pub device_id: Option<String>,
    #[serde(rename = "binding:host_id")]
    pub binding_host_id: Option<String>,
    #[serde(rename = "binding:vnic_type")]
    pub binding_vnic_type: Option<String>,
    #[serde(rename = "binding:profile")]
    pub binding_profile: Option<Map<String, Value>>,
    pub security_groups: Option<Vec<String>>,
    pub port_security_enabled: Option<bool>,
    /// `Some(None)` clears it (`null`).
    pub qos_policy_id: Option<Option<String>>,
    /// `""` clears it.
    pub dns_name: Option<String>,
    pub allowed_address_pairs: Option<Vec<AllowedAddressPair>>,
}

impl PortUpdate {
    /// True when nothing would be sent.
    pub fn is_empty(&self) -> bool {
        *self == PortUpdate::default()
    }
}

/// Body of `POST /v2.0/security-groups`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewSecurityGroup {
    pub name: String,
    pub description: Option<String>,
    pub stateful: Option<bool>,
    pub project_id: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Body of `POST /v2.0/security-group-rules`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewSecurityGroupRule {
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: Option<String>,
}

impl NewSecurityGroupRule {
    /// An ingress rule for `security_group_id` and `ethertype`, everything else open.
    pub fn ingress(security_group_id: impl Into<String>, ethertype: impl Into<String>) -> Self {
        NewSecurityGroupRule {
            security_group_id: security_group_id.into(),
            direction: "ingress".into(),
            ethertype: ethertype.into(),
            protocol: None,
            port_range_min: None,
            port_range_max: None,
            remote_ip_prefix: None,
            remote_group_id: None,
            description: None,
        }
    }
}

/// Body of `POST /v2.0/trunks`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewTrunk {
    pub port_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sub_ports: Vec<SubPort>,
    pub tags: Option<Vec<String>>,
}

/// The resource collections that carry tags (the `{resource}` of `/v2.0/{resource}/{id}/tags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Network,
    Subnet,
    SubnetPool,
    Port,
    SecurityGroup,
    Trunk,
}

impl ResourceKind {
    /// The URL collection name.
    pub fn collection(self) -> &'static str {
        match self {
            ResourceKind::Network => "networks",
            ResourceKind::Subnet => "subnets",
            ResourceKind::SubnetPool => "subnetpools",
            ResourceKind::Port => "ports",
            ResourceKind::SecurityGroup => "security-groups",
            ResourceKind::Trunk => "trunks",
        }
    }

    /// The singular JSON key (`network`, `security_group`, ...).
    pub fn singular(self) -> &'static str {
        match self {
            ResourceKind::Network => "network",
            ResourceKind::Subnet => "subnet",
            ResourceKind::SubnetPool => "subnetpool",
            ResourceKind::Port => "port",
            ResourceKind::SecurityGroup => "security_group",
            ResourceKind::Trunk => "trunk",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.singular())
    }
}

/// Query filters for list calls, in Neutron's query-string form.
///
/// Repeating a key (`eq("id", a).eq("id", b)`) matches any of the values, as Neutron does; different
/// keys must all match. `tags` needs every tag, `tags_any` at least one, `not_tags` excludes
/// resources having all of them and `not_tags_any` resources having any of them. `limit` is a page
/// size: list calls still follow `next` links until the listing is complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pairs: Vec<(String, String)>,
    fields: Vec<String>,
    limit: Option<u32>,
}

impl Filters {
    pub fn new() -> Self {
        Filters::default()
    }

    /// `key=value`; repeat the key for "any of".
    pub fn eq(mut self, key: &str, value: impl Into<String>) -> Self {
        self.pairs.push((key.to_string(), value.into()));
        self
    }

    pub fn id(self, id: impl Into<String>) -> Self {
        self.eq("id", id)
    }

    pub fn name(self, name: impl Into<String>) -> Self {
        self.eq("name", name)
    }

    pub fn network_id(self, id: impl Into<String>) -> Self {
        self.eq("network_id", id)
    }

    pub fn device_id(self, id: impl Into<String>) -> Self {
        self.eq("device_id", id)
    }

    pub fn device_owner(self, owner: impl Into<String>) -> Self {
        self.eq("device_owner", owner)
    }

    pub fn mac_address(self, mac: impl Into<String>) -> Self {
        self.eq("mac_address", mac)
    }

    pub fn binding_host_id(self, host: impl Into<String>) -> Self {
        self.eq("binding:host_id", host)
    }

    pub fn cidr(self, cidr: &IpNet) -> Self {
        self.eq("cidr", cidr.to_string())
    }

    pub fn subnetpool_id(self, id: impl Into<String>) -> Self {
        self.eq("subnetpool_id", id)
    }

    pub fn project_id(self, id: impl Into<String>) -> Self {
        self.eq("project_id", id)
    }

    /// Ports with an address in `subnet_id` and/or equal to `ip` (`fixed_ips=subnet_id=..`).
    pub fn fixed_ip(mut self, subnet_id: Option<&str>, ip: Option<IpAddr>) -> Self {
        if let Some(s) = subnet_id {
            self = self.eq("fixed_ips", format!("subnet_id={s}"));
        }
        if let Some(ip) = ip {
            self = self.eq("fixed_ips", format!("ip_address={ip}"));
        }
        self
    }

    fn tag_list(self, key: &str, tags: &[impl AsRef<str>]) -> Self {
        if tags.is_empty() {
            return self;
        }
        let joined = tags
            .iter()
            .map(|t| t.as_ref())
            .collect::<Vec<_>>()
            .join(",");
        self.eq(key, joined)
    }

    /// Resources carrying all of `tags`.
    pub fn tags(self, tags: &[impl AsRef<str>]) -> Self {
        self.tag_list("tags", tags)
    }

    /// Resources carrying at least one of `tags`.
    pub fn tags_any(self, tags: &[impl AsRef<str>]) -> Self {
        self.tag_list("tags-any", tags)
    }

    /// Resources not carrying all of `tags` together.
    pub fn not_tags(self, tags: &[impl AsRef<str>]) -> Self {
        self.tag_list("not-tags", tags)
    }

    /// Resources carrying none of `tags`.
    pub fn not_tags_any(self, tags: &[impl AsRef<str>]) -> Self {
        self.tag_list("not-tags-any", tags)
    }

    /// Return only these attributes (others come back as their defaults).
    pub fn fields(mut self, fields: &[impl AsRef<str>]) -> Self {
        self.fields
            .extend(fields.iter().map(|f| f.as_ref().to_string()));
        self
    }

    /// Page size for the requests; the listing is still complete.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The filter pairs, without `fields` and `limit`.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn selected_fields(&self) -> &[String] {
        &self.fields
    }

    pub fn page_size(&self) -> Option<u32> {
        self.limit
    }

    /// Filter values grouped by key, in the order the keys were first given.
    pub fn grouped(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in &self.pairs {
            m.entry(k.as_str()).or_default().push(v.as_str());
        }
        m
    }

    /// Everything as query pairs, ready for a URL.
    pub fn query(&self) -> Vec<(String, String)> {
        let mut q = self.pairs.clone();
        for f in &self.fields {
            q.push(("fields".into(), f.clone()));
        }
        if let Some(l) = self.limit {
            q.push(("limit".into(), l.to_string()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_decodes_binding_and_nulls() {
        let v = serde_json::json!({
            "id": "p1", "name": null, "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
            "binding:host_id": "host-a", "binding:vif_type": "ovs",
            "binding:vif_details": {"bridge_name": "br-int", "port_filter": true},
            "binding:profile": {}, "allowed_address_pairs": [{"ip_address": "10.0.0.9"}],
            "security_groups": ["sg"], "port_security_enabled": true, "tags": ["a"],
            "trunk_details": {"trunk_id": "t1", "sub_ports": [
                {"port_id": "p2", "segmentation_type": "vlan", "segmentation_id": 101, "mac_address": "fa:16:3e:00:00:02"}]}
        });
        let p: Port = serde_json::from_value(v).unwrap();
        assert_eq!(p.name, "");
        assert_eq!(p.mac_address.to_string(), "fa:16:3e:00:00:01");
        assert_eq!(p.binding_vif_type, VifType::Ovs);
        assert_eq!(p.status, PortStatus::Down, "absent status reads as DOWN");
        assert_eq!(p.binding_host_id, "host-a");
        assert_eq!(p.binding_vif_details["bridge_name"], "br-int");
        assert_eq!(
            p.fixed_ips[0].ip_address,
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(p.allowed_address_pairs[0].mac_address, None);
        assert_eq!(p.trunk_details.unwrap().sub_ports[0].segmentation_id, 101);
    }

    #[test]
    fn port_reads_what_real_neutron_sends() {
        let v = serde_json::json!({
            "id": "p1", "mac_address": "FA:16:3E:00:00:0A", "status": "N/A",
            "binding:vif_type": null,
            "allowed_address_pairs": [{"ip_address": "10.0.0.9", "mac_address": "00:00:5e:00:01:07"}]
        });
        let p: Port = serde_json::from_value(v).unwrap();
        assert_eq!(p.mac_address, "fa:16:3e:00:00:0a".parse().unwrap());
        assert_eq!(p.status, PortStatus::Other("N/A".into()));
        assert_eq!(p.binding_vif_type, VifType::Unbound);
        assert!(p.allowed_address_pairs[0].mac_address.unwrap().is_vrrp());
        let p: Port = serde_json::from_value(serde_json::json!({
            "id": "p2", "mac_address": "fa:16:3e:00:00:0b", "status": "ACTIVE",
            "binding:vif_type": "vhostuser"
        }))
        .unwrap();
        assert!(p.status.is_active());
        assert_eq!(p.binding_vif_type, VifType::Other("vhostuser".into()));
        let p: Port = serde_json::from_value(serde_json::json!({"id": "p3"})).unwrap();
        assert_eq!(p.mac_address, Port::NO_MAC);
        assert_eq!(p.binding_vif_type, VifType::Unbound);
        let e = serde_json::from_value::<Port>(serde_json::json!({"mac_address": "nope"}));
        assert!(e.unwrap_err().to_string().contains("invalid mac address"));
        // Requests send the MAC as Neutron writes it.
        let u = PortUpdate {
            mac_address: Some("FA-16-3E-00-00-0C".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({"mac_address": "fa:16:3e:00:00:0c"})
        );
    }

    #[test]
    fn subnetpool_prefixlen_as_string_or_number() {
        let a: SubnetPool =
            serde_json::from_value(serde_json::json!({"default_prefixlen": "24"})).unwrap();
        let b: SubnetPool =
            serde_json::from_value(serde_json::json!({"default_prefixlen": 26})).unwrap();
        assert_eq!(a.default_prefixlen, Some(24));
        assert_eq!(b.default_prefixlen, Some(26));
    }

    #[test]
    fn payloads_skip_none_and_send_null_gateway() {
        let s = NewSubnet {
            network_id: "n".into(),
            ip_version: 4,
            cidr: Some("10.0.0.0/24".parse().unwrap()),
            gateway_ip: Some(None),
            ..Default::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"network_id": "n", "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": null})
        );
        let u = PortUpdate {
            binding_host_id: Some("h".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({"binding:host_id": "h"})
        );
        assert!(PortUpdate::default().is_empty());
    }

    #[test]
    fn filters_build_neutron_query() {
        let f = Filters::new()
            .name("x")
            .tags(&["a", "b"])
            .not_tags_any(&["c"])
            .tags_any(&Vec::<String>::new())
            .fixed_ip(Some("s1"), Some("10.0.0.2".parse().unwrap()))
            .fields(&["id", "name"])
            .limit(50);
        assert_eq!(
            f.query(),
            vec![
                ("name".to_string(), "x".to_string()),
                ("tags".into(), "a,b".into()),
                ("not-tags-any".into(), "c".into()),
                ("fixed_ips".into(), "subnet_id=s1".into()),
                ("fixed_ips".into(), "ip_address=10.0.0.2".into()),
                ("fields".into(), "id".into()),
                ("fields".into(), "name".into()),
                ("limit".into(), "50".into()),
            ]
        );
    }
}
