//! An in-memory Neutron with the semantics Kuryr relies on, for tests of code written against
//! [`NeutronApi`].
//!
//! What behaves like the real thing: tag filters (`tags` all, `tags-any`, `not-tags`,
//! `not-tags-any`), attribute filters (repeat a key for "any of"; unknown attributes are a 400 as
//! with strict filter validation), `fields` selection, IP allocation from subnets (pools, gateway
//! excluded, specific addresses, 409 `IpAddressAlreadyAllocated`), MAC generation and
//! `MacAddressInUse`, subnet allocation from subnet pools by `prefixlen` or CIDR (overlap and out of
//! pool are errors), in-use checks on delete, security groups with their default egress rules,
//! trunks with subports and the parent port's `trunk_details`, tag validation (60 characters, no
//! comma), tags on create, several tags added at once (`tag-creation`). A network, subnet or
//! subnetpool created with tags is recorded as the two requests [`HttpNeutron`] sends (Neutron
//! refuses `tags` in their create body): the create, then `replace_tags`; when that fails the new
//! resource is deleted again, as the HTTP client does.
//!
//! [`HttpNeutron`]: super::HttpNeutron
//!
//! Test controls: [`FakeNeutron::fail_nth`] makes the Nth next call of an operation fail with a
//! chosen error, [`FakeNeutron::calls`] / [`FakeNeutron::count`] tell what was called, and
//! [`FakeNeutron::set_port_status`] / [`FakeNeutron::activate_on_bind`] simulate the agent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use ipnet::IpNet;
use kuryr_types::{MacAddr, PortStatus, VifType};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{ErrorContext, NeutronError, Result};
use super::resource::Resource;
use super::types::*;
use super::{extensions as ext, NeutronApi};

/// Neutron's limit on tag length: 255 in the Neutron the stack runs (29; older releases had
/// 60), the limit the driver bounds its tags to.
const MAX_TAG_LEN: usize = 255;
/// The MTU of a geneve tenant network with ML2/OVN, as on the test stack.
const DEFAULT_MTU: u32 = 1442;
/// Bounds the search for a free prefix in huge pools.
const MAX_PREFIX_CANDIDATES: usize = 1 << 20;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The trait method name, e.g. `create_port`.
    pub op: &'static str,
    /// The id or name the call was about (empty for lists).
    pub target: String,
    /// Whether the call returned an error.
    pub failed: bool,
}

struct Fault {
    op: String,
    /// Calls of `op` still to let through before failing.
    skip: usize,
    error: NeutronError,
    always: bool,
}

/// What the client reports when the connection drops after Neutron did a create.
fn lost_answer(path: &str) -> NeutronError {
    NeutronError::Transport(ErrorContext::new(
        "POST",
        path,
        "reading the response: connection reset by peer",
    ))
}

struct State {
    /// Operations that answer only after a while (a slow Neutron), by trait method name.
    delays: HashMap<String, std::time::Duration>,
    project_id: String,
    /// Whether the client's token names `project_id` (Keystone), not none (noauth).
    token_scoped: bool,
    seed: u64,
    counter: u64,
    networks: BTreeMap<String, Network>,
    subnets: BTreeMap<String, Subnet>,
    pools: BTreeMap<String, SubnetPool>,
    ports: BTreeMap<String, Port>,
    groups: BTreeMap<String, SecurityGroup>,
    qos_policies: BTreeMap<String, QosPolicy>,
    rules: BTreeMap<String, SecurityGroupRule>,
    trunks: BTreeMap<String, Trunk>,
    extensions: Vec<String>,
    calls: Vec<Call>,
    faults: Vec<Fault>,
    /// Creates whose next answer is lost (done, then a connection reset).
    lost_answers: Vec<String>,
    activate_on_bind: bool,
    vif_type: VifType,
    vif_details: Map<String, Value>,
}

/// In-memory [`NeutronApi`]. Cheap to create; one per test.
pub struct FakeNeutron {
    state: Mutex<State>,
}

impl Default for FakeNeutron {
    fn default() -> Self {
        Self::new()
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn err(status: u16, method: &str, path: String, kind: &str, message: String) -> NeutronError {
    NeutronError::from_status(
        status,
        ErrorContext::new(method, &path, message).with_kind(kind),
    )
}

fn not_found(kind: ResourceKind, id: &str) -> NeutronError {
    let k = match kind {
        ResourceKind::Network => Network::NOT_FOUND,
        ResourceKind::Subnet => Subnet::NOT_FOUND,
        ResourceKind::SubnetPool => SubnetPool::NOT_FOUND,
        ResourceKind::Port => Port::NOT_FOUND,
        ResourceKind::SecurityGroup => SecurityGroup::NOT_FOUND,
        ResourceKind::Trunk => Trunk::NOT_FOUND,
    };
    missing(kind.collection(), kind.singular(), k, id)
}

/// Neutron's 404 for `GET /v2.0/{collection}/{id}`.
fn missing(collection: &str, singular: &str, kind: &str, id: &str) -> NeutronError {
    err(
        404,
        "GET",
        format!("/v2.0/{collection}/{id}"),
        kind,
        format!("{singular} {id} could not be found"),
    )
}

/// What the fake keeps of a resource: its table, Neutron's error type for a missing one, and
/// the view Neutron shows (with attributes derived from other resources).
trait Stored: Resource + Serialize + Clone {
    const NOT_FOUND: &'static str;

    fn table(s: &State) -> &BTreeMap<String, Self>;

    fn view(_: &State, r: &Self) -> Self {
        r.clone()
    }
}

macro_rules! stored {
    ($t:ty, $table:ident, $not_found:literal $(, $view:ident)?) => {
        impl Stored for $t {
            const NOT_FOUND: &'static str = $not_found;

            fn table(s: &State) -> &BTreeMap<String, Self> {
                &s.$table
            }

            $(fn view(s: &State, r: &Self) -> Self {
                s.$view(r)
            })?
        }
    };
}
stored!(Network, networks, "NetworkNotFound", network_view);
stored!(Subnet, subnets, "SubnetNotFound");
stored!(SubnetPool, pools, "SubnetPoolNotFound");
stored!(Port, ports, "PortNotFound", port_view);
stored!(SecurityGroup, groups, "SecurityGroupNotFound", group_view);
stored!(SecurityGroupRule, rules, "SecurityGroupRuleNotFound");
stored!(Trunk, trunks, "TrunkNotFound");
stored!(QosPolicy, qos_policies, "QosPolicyNotFound");

fn bad_request(path: String, message: String) -> NeutronError {
    err(400, "POST", path, "InvalidInput", message)
}

/// Does `v` (a resource attribute) equal the query string `want`?
fn value_matches(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == want,
        Value::Null => want.is_empty(),
        _ => false,
    }
}

fn tag_set(v: &Value) -> BTreeSet<String> {
    v.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Neutron's list semantics over a resource's JSON form.
fn matches(v: &Value, filters: &Filters, collection: &str) -> Result<bool> {
    for (key, wants) in filters.grouped() {
        let tags = || tag_set(v);
        let split = |w: &str| w.split(',').map(str::to_string).collect::<Vec<_>>();
        let ok = match key {
            "tags" => wants
                .iter()
                .all(|w| split(w).iter().all(|t| tags().contains(t))),
            "tags-any" => wants
                .iter()
                .any(|w| split(w).iter().any(|t| tags().contains(t))),
            "not-tags" => !wants
                .iter()
                .all(|w| split(w).iter().all(|t| tags().contains(t))),
            "not-tags-any" => !wants
                .iter()
                .any(|w| split(w).iter().any(|t| tags().contains(t))),
            "fixed_ips" => {
                // One fixed IP must satisfy every sub-key; repeated values of a sub-key are "any of".
                let mut by_sub: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for w in &wants {
                    let (k, val) = w.split_once('=').unwrap_or(("", w));
                    by_sub.entry(k).or_default().push(val);
                }
                v.get("fixed_ips")
                    .and_then(Value::as_array)
                    .is_some_and(|ips| {
                        ips.iter().any(|ip| {
                            by_sub.iter().all(|(k, vals)| {
                                ip.get(*k)
                                    .is_some_and(|x| vals.iter().any(|w| value_matches(x, w)))
                            })
                        })
                    })
            }
            attr => match v.get(attr) {
                None => {
                    return Err(bad_request(
                        format!("/v2.0/{collection}"),
                        format!("{attr} is an invalid filter for {collection}"),
                    ))
                }
                Some(x) => wants.iter().any(|w| value_matches(x, w)),
            },
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Apply filters and `fields` to a collection.
fn select<T: Serialize + DeserializeOwned>(
    items: impl Iterator<Item = T>,
    filters: &Filters,
    collection: &str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for item in items {
        let v = serde_json::to_value(&item).expect("fake resources serialize");
        if !matches(&v, filters, collection)? {
            continue;
        }
        if filters.selected_fields().is_empty() {
            out.push(item);
        } else {
            let mut kept = Map::new();
            if let Value::Object(m) = v {
                for (k, x) in m {
                    if filters.selected_fields().contains(&k) {
                        kept.insert(k, x);
                    }
                }
            }
            out.push(
                serde_json::from_value(Value::Object(kept)).expect("partial resources decode"),
            );
        }
    }
    Ok(out)
}

fn check_tags(tags: &[String], path: String) -> Result<()> {
    for t in tags {
        if t.is_empty() || t.len() > MAX_TAG_LEN || t.contains(',') {
            return Err(bad_request(path, format!("invalid tag {t:?}")));
        }
    }
    Ok(())
}

fn dedup_tags(tags: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    tags.iter()
        .filter(|t| seen.insert(t.as_str()))
        .cloned()
        .collect()
}

fn ip_add(ip: IpAddr, n: u128) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a)
            .checked_add(u32::try_from(n).ok()?)
            .map(|x| IpAddr::V4(Ipv4Addr::from(x))),
        IpAddr::V6(a) => u128::from(a)
            .checked_add(n)
            .map(|x| IpAddr::V6(Ipv6Addr::from(x))),
    }
}

fn ip_le(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
        _ => false,
    }
}

/// The default allocation pool: every host address (not the network or IPv4 broadcast address).
fn default_pool(cidr: &IpNet) -> AllocationPool {
    let first = ip_add(cidr.network(), 1).unwrap_or(cidr.network());
    let last = match cidr {
        IpNet::V4(n) if n.prefix_len() < 31 => {
            IpAddr::V4(Ipv4Addr::from(u32::from(n.broadcast()) - 1))
        }
        _ => cidr.broadcast(),
    };
    AllocationPool {
        start: first,
        end: last,
    }
}

impl State {
    fn new_id(&mut self) -> String {
        self.counter += 1;
        let a = splitmix(self.seed ^ self.counter);
        let b = splitmix(a);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    fn new_mac(&mut self) -> MacAddr {
        loop {
            self.counter += 1;
            let x = splitmix(self.seed ^ self.counter);
            // Neutron's default base_mac, fa:16:3e:00:00:00.
            let mac = MacAddr::new([0xfa, 0x16, 0x3e, (x >> 16) as u8, (x >> 8) as u8, x as u8]);
            if !self.ports.values().any(|p| p.mac_address == mac) {
                return mac;
            }
        }
    }

    /// Record the call, and fail it if a fault is due.
    /// Whether this create's answer is to be lost (once).
    fn answer_lost(&mut self, op: &str) -> bool {
        match self.lost_answers.iter().position(|o| o == op) {
            Some(i) => {
                self.lost_answers.remove(i);
                true
            }
            None => false,
        }
    }

    fn enter(&mut self, op: &'static str, target: &str) -> Result<()> {
        let mut injected = None;
        if let Some(i) = self.faults.iter().position(|f| f.op == op) {
            let f = &mut self.faults[i];
            if f.skip > 0 {
                f.skip -= 1;
            } else if f.always {
                injected = Some(f.error.clone());
            } else {
                injected = Some(self.faults.remove(i).error);
            }
        }
        self.calls.push(Call {
            op,
            target: target.to_string(),
            failed: injected.is_some(),
        });
        match injected {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn mark_failed<T>(&mut self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            if let Some(c) = self.calls.last_mut() {
                c.failed = true;
            }
        }
        r
    }

    fn default_group(&mut self) -> String {
        if let Some(g) = self
            .groups
            .values()
            .find(|g| g.name == "default" && g.project_id == self.project_id)
        {
            return g.id.clone();
        }
        self.insert_group(NewSecurityGroup {
            name: "default".into(),
            description: Some("Default security group".into()),
            ..Default::default()
        })
        .id
    }

    fn insert_group(&mut self, g: NewSecurityGroup) -> SecurityGroup {
        let id = self.new_id();
        let mut rules = Vec::new();
        for eth in ["IPv4", "IPv6"] {
            let rid = self.new_id();
            let r = SecurityGroupRule {
                id: rid.clone(),
                security_group_id: id.clone(),
                direction: "egress".into(),
                ethertype: eth.into(),
                project_id: self.project_id.clone(),
                ..Default::default()
            };
            self.rules.insert(rid, r.clone());
            rules.push(r);
        }
        let group = SecurityGroup {
            id: id.clone(),
            name: g.name,
            description: g.description.unwrap_or_default(),
            project_id: g.project_id.unwrap_or_else(|| self.project_id.clone()),
            tags: g.tags.unwrap_or_default(),
            security_group_rules: rules,
            stateful: Some(g.stateful.unwrap_or(true)),
        };
        self.groups.insert(id, group.clone());
        group
    }

    fn group_view(&self, g: &SecurityGroup) -> SecurityGroup {
        let mut g = g.clone();
        g.security_group_rules = self
            .rules
            .values()
            .filter(|r| r.security_group_id == g.id)
            .cloned()
            .collect();
        g
    }

    /// A port as Neutron shows it: with `trunk_details` when it is a trunk parent.
    fn port_view(&self, p: &Port) -> Port {
        let mut p = p.clone();
        p.trunk_details = self
            .trunks
            .values()
            .find(|t| t.port_id == p.id)
            .map(|t| TrunkDetails {
                trunk_id: t.id.clone(),
                sub_ports: t
                    .sub_ports
                    .iter()
                    .map(|s| TrunkSubPortDetail {
                        port_id: s.port_id.clone(),
                        segmentation_type: s.segmentation_type.clone(),
                        segmentation_id: s.segmentation_id,
                        mac_address: self.ports.get(&s.port_id).map(|x| x.mac_address),
                    })
                    .collect(),
            });
        p
    }

    fn network_view(&self, n: &Network) -> Network {
        let mut n = n.clone();
        n.subnets = self
            .subnets
            .values()
            .filter(|s| s.network_id == n.id)
            .map(|s| s.id.clone())
            .collect();
        n
    }

    fn ip_in_use(&self, subnet: &Subnet, ip: IpAddr, except_port: Option<&str>) -> bool {
        subnet.gateway_ip == Some(ip)
            || self.ports.values().any(|p| {
                Some(p.id.as_str()) != except_port
                    && p.fixed_ips
                        .iter()
                        .any(|f| f.subnet_id == subnet.id && f.ip_address == ip)
            })
    }

    fn next_free_ip(
        &self,
        subnet: &Subnet,
        except_port: Option<&str>,
        taken: &[FixedIp],
    ) -> Option<IpAddr> {
        for pool in &subnet.allocation_pools {
            let mut ip = pool.start;
            // Bounded: a test never fills more than a few thousand addresses.
            for _ in 0..65_536 {
                if !ip_le(ip, pool.end) {
                    break;
                }
                if !self.ip_in_use(subnet, ip, except_port)
                    && !taken.iter().any(|t| t.ip_address == ip)
                {
                    return Some(ip);
                }
                ip = ip_add(ip, 1)?;
            }
        }
        None
    }

    /// Resolve fixed IP requests of a port on `network_id` (the port itself excluded from
    /// conflicts when updating).
    fn allocate(
        &self,
        network_id: &str,
        requests: Option<&[FixedIpRequest]>,
        except_port: Option<&str>,
        method: &str,
        path: &str,
    ) -> Result<Vec<FixedIp>> {
        let subnets: Vec<&Subnet> = self
            .subnets
            .values()
            .filter(|s| s.network_id == network_id)
            .collect();
        let mut out: Vec<FixedIp> = Vec::new();
        let exhausted = |s: &Subnet| {
            err(
                409,
                method,
                path.to_string(),
                "IpAddressGenerationFailure",
                format!(
                    "no more IP addresses available on network {network_id} (subnet {})",
                    s.id
                ),
            )
        };
        let Some(requests) = requests else {
            // Neutron's default: one address from a subnet of each IP version.
            for version in [4u8, 6] {
                if let Some(s) = subnets.iter().find(|s| s.ip_version == version) {
                    let ip = self
                        .next_free_ip(s, except_port, &out)
                        .ok_or_else(|| exhausted(s))?;
                    out.push(FixedIp {
                        subnet_id: s.id.clone(),
                        ip_address: ip,
                    });
                }
            }
            return Ok(out);
        };
        for r in requests {
            let subnet = match (&r.subnet_id, r.ip_address) {
                (Some(id), _) => match subnets.iter().find(|s| &s.id == id) {
                    Some(s) => *s,
                    None => {
                        return Err(err(
                            400,
                            method,
                            path.to_string(),
                            "InvalidInput",
                            format!("subnet {id} is not on network {network_id}"),
                        ))
                    }
                },
                (None, Some(ip)) => match subnets.iter().find(|s| s.cidr.contains(&ip)) {
                    Some(s) => *s,
                    None => {
                        return Err(err(
                            400,
                            method,
                            path.to_string(),
                            "InvalidIpForNetwork",
                            format!("IP address {ip} is not a valid IP for any of the subnets on network {network_id}"),
                        ))
                    }
                },
                (None, None) => {
                    return Err(bad_request(path.to_string(), "fixed_ips entry needs subnet_id or ip_address".into()))
                }
            };
            let ip = match r.ip_address {
                Some(ip) => {
                    if !subnet.cidr.contains(&ip) {
                        return Err(err(
                            400,
                            method,
                            path.to_string(),
                            "InvalidIpForSubnet",
                            format!("IP address {ip} is not a valid IP for subnet {}", subnet.id),
                        ));
                    }
                    if self.ip_in_use(subnet, ip, except_port)
                        || out.iter().any(|o| o.ip_address == ip)
                    {
                        return Err(err(
                            409,
                            method,
                            path.to_string(),
                            "IpAddressAlreadyAllocated",
                            format!("IP address {ip} already allocated in subnet {}", subnet.id),
                        ));
                    }
                    ip
                }
                None => self
                    .next_free_ip(subnet, except_port, &out)
                    .ok_or_else(|| exhausted(subnet))?,
            };
            out.push(FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip,
            });
        }
        Ok(out)
    }

    fn bind(&self, p: &mut Port) {
        if p.binding_host_id.is_empty() {
            p.binding_vif_type = VifType::Unbound;
            p.binding_vif_details = Map::new();
        } else {
            p.binding_vif_type = self.vif_type.clone();
            p.binding_vif_details = self.vif_details.clone();
            if self.activate_on_bind {
                p.status = PortStatus::Active;
            }
        }
    }

    fn build_port(&mut self, n: &NewPort) -> Result<Port> {
        let path = "/v2.0/ports".to_string();
        if !self.networks.contains_key(&n.network_id) {
            return Err(err(
                404,
                "POST",
                path,
                "NetworkNotFound",
                format!("network {} could not be found", n.network_id),
            ));
        }
        if let Some(t) = &n.tags {
            check_tags(t, path.clone())?;
        }
        let fixed_ips =
            self.allocate(&n.network_id, n.fixed_ips.as_deref(), None, "POST", &path)?;
        let mac = match n.mac_address {
            Some(m) => {
                if self
                    .ports
                    .values()
                    .any(|p| p.network_id == n.network_id && p.mac_address == m)
                {
                    return Err(err(
                        409,
                        "POST",
                        path,
                        "MacAddressInUse",
                        format!("unable to complete operation for network {}: the mac address {m} is in use", n.network_id),
                    ));
                }
                m
            }
            None => self.new_mac(),
        };
        let port_security = n.port_security_enabled.unwrap_or_else(|| {
            self.networks
                .get(&n.network_id)
                .and_then(|x| x.port_security_enabled)
                .unwrap_or(true)
        });
        if !port_security
            && n.allowed_address_pairs
                .as_ref()
                .is_some_and(|a| !a.is_empty())
        {
            return Err(err(
                409,
                "POST",
                path,
                "AddressPairAndPortSecurityRequired",
                "port security must be enabled in order to have allowed address pairs on a port"
                    .into(),
            ));
        }
        let security_groups = match &n.security_groups {
            Some(g) => {
                for id in g {
                    if !self.groups.contains_key(id) {
                        return Err(not_found(ResourceKind::SecurityGroup, id));
                    }
                }
                g.clone()
            }
            None if port_security
                && !n
                    .device_owner
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("network:") =>
            {
                vec![self.default_group()]
            }
            None => Vec::new(),
        };
        let id = self.new_id();
        let mut p = Port {
            id,
            name: n.name.clone().unwrap_or_default(),
            description: n.description.clone().unwrap_or_default(),
            network_id: n.network_id.clone(),
            mac_address: mac,
            fixed_ips,
            status: PortStatus::Down,
            admin_state_up: n.admin_state_up.unwrap_or(true),
            device_owner: n.device_owner.clone().unwrap_or_default(),
            device_id: n.device_id.clone().unwrap_or_default(),
            project_id: n
                .project_id
                .clone()
                .unwrap_or_else(|| self.project_id.clone()),
            tags: dedup_tags(n.tags.as_deref().unwrap_or_default()),
            binding_host_id: n.binding_host_id.clone().unwrap_or_default(),
            binding_vnic_type: n
                .binding_vnic_type
                .clone()
                .unwrap_or_else(|| "normal".into()),
            binding_profile: n.binding_profile.clone().unwrap_or_default(),
            allowed_address_pairs: n.allowed_address_pairs.clone().unwrap_or_default(),
            security_groups,
            port_security_enabled: Some(port_security),
            ..Default::default()
        };
        self.bind(&mut p);
        Ok(p)
    }

    fn tags_of(&mut self, kind: ResourceKind, id: &str) -> Option<&mut Vec<String>> {
        match kind {
            ResourceKind::Network => self.networks.get_mut(id).map(|r| &mut r.tags),
            ResourceKind::Subnet => self.subnets.get_mut(id).map(|r| &mut r.tags),
            ResourceKind::SubnetPool => self.pools.get_mut(id).map(|r| &mut r.tags),
            ResourceKind::Port => self.ports.get_mut(id).map(|r| &mut r.tags),
            ResourceKind::SecurityGroup => self.groups.get_mut(id).map(|r| &mut r.tags),
            ResourceKind::Trunk => self.trunks.get_mut(id).map(|r| &mut r.tags),
        }
    }

    /// The tagging request that follows the create of a tagged network, subnet or subnetpool
    /// over HTTP: recorded (and failing when a fault is due), the new resource deleted again on
    /// failure.
    fn tag_after_create(&mut self, kind: ResourceKind, id: &str, tags: bool) -> Result<()> {
        if !tags {
            return Ok(());
        }
        if let Err(e) = self.enter("replace_tags", id) {
            let (op, gone) = match kind {
                ResourceKind::Network => ("delete_network", self.networks.remove(id).is_some()),
                ResourceKind::Subnet => ("delete_subnet", self.subnets.remove(id).is_some()),
                ResourceKind::SubnetPool => ("delete_subnetpool", self.pools.remove(id).is_some()),
                _ => ("", false),
            };
            if gone {
                self.calls.push(Call {
                    op,
                    target: id.to_string(),
                    failed: false,
                });
            }
            return Err(e);
        }
        Ok(())
    }

    fn allocate_from_pool(&self, pool: &SubnetPool, s: &NewSubnet) -> Result<IpNet> {
        let path = "/v2.0/subnets".to_string();
        let taken: Vec<IpNet> = self
            .subnets
            .values()
            .filter(|x| x.subnetpool_id.as_deref() == Some(pool.id.as_str()))
            .map(|x| x.cidr)
            .collect();
        let overlaps = |c: &IpNet| taken.iter().any(|t| t.contains(c) || c.contains(t));
        if let Some(cidr) = s.cidr {
            if !pool.prefixes.iter().any(|p| p.contains(&cidr)) {
                return Err(err(
                    400,
                    "POST",
                    path,
                    "CidrOutOfPool",
                    format!("cidr {cidr} is not in subnet pool {}", pool.id),
                ));
            }
            if overlaps(&cidr) {
                return Err(err(
                    409,
                    "POST",
                    path,
                    "SubnetAllocationError",
                    format!("failed to allocate subnet: cidr {cidr} overlaps with another subnet of pool {}", pool.id),
                ));
            }
            return Ok(cidr);
        }
        let len = s
            .prefixlen
            .or(pool.default_prefixlen)
            .unwrap_or(if pool.ip_version == 6 { 64 } else { 24 });
        if pool.min_prefixlen.is_some_and(|m| len < m)
            || pool.max_prefixlen.is_some_and(|m| len > m)
        {
            return Err(err(
                400,
                "POST",
                path,
                "IllegalSubnetPoolPrefixLength",
                format!(
                    "prefixlen {len} is outside the limits of subnet pool {}",
                    pool.id
                ),
            ));
        }
        for prefix in &pool.prefixes {
            let Ok(candidates) = prefix.subnets(len) else {
                continue;
            };
            for c in candidates.take(MAX_PREFIX_CANDIDATES) {
                if !overlaps(&c) {
                    return Ok(c);
                }
            }
        }
        Err(err(
            409,
            "POST",
            path,
            "SubnetAllocationError",
            format!(
                "failed to allocate subnet: insufficient prefix space in subnet pool {}",
                pool.id
            ),
        ))
    }

    fn build_subnet(&mut self, s: &NewSubnet) -> Result<Subnet> {
        let path = "/v2.0/subnets".to_string();
        if !self.networks.contains_key(&s.network_id) {
            return Err(err(
                404,
                "POST",
                path,
                "NetworkNotFound",
                format!("network {} could not be found", s.network_id),
            ));
        }
        if let Some(t) = &s.tags {
            check_tags(t, path.clone())?;
        }
        let cidr = match &s.subnetpool_id {
            Some(pid) => {
                let pool = self
                    .pools
                    .get(pid)
                    .ok_or_else(|| not_found(ResourceKind::SubnetPool, pid))?
                    .clone();
                if pool.ip_version != s.ip_version {
                    return Err(bad_request(
                        path,
                        format!("subnet pool {pid} is not IPv{}", s.ip_version),
                    ));
                }
                self.allocate_from_pool(&pool, s)?
            }
            None => s.cidr.ok_or_else(|| {
                bad_request(path.clone(), "a cidr or a subnetpool_id is required".into())
            })?,
        };
        let version = if cidr.addr().is_ipv4() { 4 } else { 6 };
        if version != s.ip_version {
            return Err(bad_request(
                path,
                format!("cidr {cidr} does not match ip_version {}", s.ip_version),
            ));
        }
        // Neutron's rule: a network's subnets of one IP version come from one subnetpool.
        let pool = s.subnetpool_id.as_deref().filter(|p| !p.is_empty());
        if self.subnets.values().any(|x| {
            x.network_id == s.network_id
                && x.ip_version == s.ip_version
                && x.subnetpool_id.as_deref().filter(|p| !p.is_empty()) != pool
        }) {
            return Err(bad_request(
                path,
                "Subnets hosted on the same network must be allocated from the same subnet pool"
                    .into(),
            ));
        }
        let cidr = cidr.trunc();
        if let Some(other) = self.subnets.values().find(|x| {
            x.network_id == s.network_id && (x.cidr.contains(&cidr) || cidr.contains(&x.cidr))
        }) {
            return Err(bad_request(
                path,
                format!(
                    "requested subnet with cidr {cidr} for network {} overlaps with subnet {}",
                    s.network_id, other.id
                ),
            ));
        }
        let gateway_ip = match s.gateway_ip {
            Some(g) => g,
            None => ip_add(cidr.network(), 1),
        };
        if let Some(g) = gateway_ip {
            if !cidr.contains(&g) {
                return Err(bad_request(
                    path,
                    format!("gateway {g} is not in subnet {cidr}"),
                ));
            }
        }
        let id = self.new_id();
        Ok(Subnet {
            id,
            name: s.name.clone().unwrap_or_default(),
            description: s.description.clone().unwrap_or_default(),
            network_id: s.network_id.clone(),
            cidr,
            ip_version: version,
            gateway_ip,
            allocation_pools: s
                .allocation_pools
                .clone()
                .unwrap_or_else(|| vec![default_pool(&cidr)]),
            host_routes: s.host_routes.clone().unwrap_or_default(),
            dns_nameservers: s.dns_nameservers.clone().unwrap_or_default(),
            enable_dhcp: s.enable_dhcp.unwrap_or(true),
            subnetpool_id: s.subnetpool_id.clone(),
            ipv6_ra_mode: s.ipv6_ra_mode.clone(),
            ipv6_address_mode: s.ipv6_address_mode.clone(),
            tags: dedup_tags(s.tags.as_deref().unwrap_or_default()),
            project_id: s
                .project_id
                .clone()
                .unwrap_or_else(|| self.project_id.clone()),
        })
    }
}

impl FakeNeutron {
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()) << 32;
        let mut vif_details = Map::new();
        vif_details.insert("port_filter".into(), Value::Bool(true));
        vif_details.insert("connectivity".into(), Value::String("l2".into()));
        vif_details.insert("bridge_name".into(), Value::String("br-int".into()));
        vif_details.insert("datapath_type".into(), Value::String("system".into()));
        let extensions = [
            ext::STANDARD_ATTR_TAG,
            ext::TAG_CREATION,
            ext::PORT_BINDING,
            ext::SUBNET_ALLOCATION,
            ext::SECURITY_GROUP,
            ext::PORT_SECURITY,
            ext::ALLOWED_ADDRESS_PAIRS,
            ext::TRUNK,
            ext::TRUNK_DETAILS,
            ext::PAGINATION,
            "network-mtu",
            "external-net",
            "provider",
        ];
        FakeNeutron {
            state: Mutex::new(State {
                delays: HashMap::new(),
                project_id: "fake_project_id".into(),
                token_scoped: false,
                seed: splitmix(seed),
                counter: 0,
                networks: BTreeMap::new(),
                subnets: BTreeMap::new(),
                pools: BTreeMap::new(),
                ports: BTreeMap::new(),
                groups: BTreeMap::new(),
                qos_policies: BTreeMap::new(),
                rules: BTreeMap::new(),
                trunks: BTreeMap::new(),
                extensions: extensions.iter().map(|s| s.to_string()).collect(),
                calls: Vec::new(),
                faults: Vec::new(),
                lost_answers: Vec::new(),
                activate_on_bind: false,
                vif_type: VifType::Ovs,
                vif_details,
            }),
        }
    }

    /// `list_*`: the views Neutron would show, filtered.
    fn list_of<R: Stored>(&self, op: &'static str, filters: &Filters) -> Result<Vec<R>> {
        let mut s = self.lock();
        s.enter(op, "")?;
        let views: Vec<R> = R::table(&s).values().map(|r| R::view(&s, r)).collect();
        let r = select(views.into_iter(), filters, R::COLLECTION);
        s.mark_failed(r)
    }

    /// `get_*`: one view, or Neutron's 404.
    fn get_of<R: Stored>(&self, op: &'static str, id: &str) -> Result<R> {
        let mut s = self.lock();
        s.enter(op, id)?;
        let r = R::table(&s)
            .get(id)
            .map(|x| R::view(&s, x))
            .ok_or_else(|| missing(R::COLLECTION, R::SINGULAR, R::NOT_FOUND, id));
        s.mark_failed(r)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The project new resources belong to (`fake_project_id`, as a noauth Neutron uses).
    pub fn project_id(&self) -> String {
        self.lock().project_id.clone()
    }

    /// From now on the client's token is scoped to [`FakeNeutron::project_id`], as a Keystone
    /// token is (an admin's still lists every project's resources).
    pub fn scope_token_to_project(&self) {
        self.lock().token_scoped = true;
    }

    /// Make the `nth` next call (1 = the very next) of operation `op` (a trait method name such
    /// as `create_port`) fail with `error`. Several faults for one op apply in order.
    pub fn fail_nth(&self, op: &str, nth: usize, error: NeutronError) {
        let mut s = self.lock();
        let before: usize = s
            .faults
            .iter()
            .filter(|f| f.op == op)
            .map(|f| f.skip + 1)
            .sum();
        s.faults.push(Fault {
            op: op.to_string(),
            skip: nth.saturating_sub(1).saturating_sub(before),
            error,
            always: false,
        });
    }

    /// The next `create_network`, `create_subnet` or `create_subnetpool` (`op`) is done, but its
    /// answer is lost (a connection reset after Neutron did the work), and so is the tagging the
    /// client does right after a create.
    pub fn lose_next_answer(&self, op: &str) {
        self.lock().lost_answers.push(op.to_string());
    }

    /// Make the next call of `op` fail.
    pub fn fail_next(&self, op: &str, error: NeutronError) {
        self.fail_nth(op, 1, error);
    }

    /// Make every call of `op` fail until [`FakeNeutron::clear_faults`].
    pub fn fail_always(&self, op: &str, error: NeutronError) {
        self.lock().faults.push(Fault {
            op: op.to_string(),
            skip: 0,
            error,
            always: true,
        });
    }

    /// Every later call of `op` answers only after `delay` (a slow Neutron); zero: at once.
    pub fn set_delay(&self, op: &str, delay: std::time::Duration) {
        self.lock().delays.insert(op.to_string(), delay);
    }

    async fn pause(&self, op: &str) {
        let d = self.lock().delays.get(op).copied();
        if let Some(d) = d.filter(|d| !d.is_zero()) {
            tokio::time::sleep(d).await;
        }
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many times `op` was called (failed calls included).
    pub fn count(&self, op: &str) -> usize {
        self.lock().calls.iter().filter(|c| c.op == op).count()
    }

    /// Calls of every op, for quick assertions.
    pub fn counters(&self) -> HashMap<&'static str, usize> {
        let mut m = HashMap::new();
        for c in self.lock().calls.iter() {
            *m.entry(c.op).or_insert(0) += 1;
        }
        m
    }

    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    /// Simulate the agent: set a port's `status` (e.g. `ACTIVE`).
    pub fn set_port_status(&self, port_id: &str, status: &str) -> bool {
        match self.lock().ports.get_mut(port_id) {
            Some(p) => {
                p.status = PortStatus::from(status);
                true
            }
            None => false,
        }
    }

    /// When on, binding a port to a host makes it `ACTIVE` at once.
    pub fn activate_on_bind(&self, on: bool) {
        self.lock().activate_on_bind = on;
    }

    /// The `binding:vif_type` and `binding:vif_details` that bound ports get (default `ovs`).
    pub fn set_vif_binding(&self, vif_type: &str, details: Map<String, Value>) {
        let mut s = self.lock();
        s.vif_type = VifType::from(vif_type);
        s.vif_details = details;
    }

    /// Replace the advertised extension aliases (e.g. to simulate a cloud without tags).
    pub fn set_extensions(&self, aliases: &[&str]) {
        self.lock().extensions = aliases.iter().map(|a| a.to_string()).collect();
    }

    /// Snapshots for assertions.
    pub fn networks(&self) -> Vec<Network> {
        let s = self.lock();
        s.networks.values().map(|n| s.network_view(n)).collect()
    }

    pub fn subnets(&self) -> Vec<Subnet> {
        self.lock().subnets.values().cloned().collect()
    }

    pub fn subnetpools(&self) -> Vec<SubnetPool> {
        self.lock().pools.values().cloned().collect()
    }

    pub fn ports(&self) -> Vec<Port> {
        let s = self.lock();
        s.ports.values().map(|p| s.port_view(p)).collect()
    }

    /// Adds a QoS policy (an operator's: Kuryr only finds them); returns its id.
    pub fn add_qos_policy(&self, name: &str) -> String {
        let mut s = self.lock();
        let id = s.new_id();
        let project_id = s.project_id.clone();
        s.qos_policies.insert(
            id.clone(),
            QosPolicy {
                id: id.clone(),
                name: name.to_string(),
                project_id,
                shared: false,
            },
        );
        id
    }

    pub fn security_groups(&self) -> Vec<SecurityGroup> {
        let s = self.lock();
        s.groups.values().map(|g| s.group_view(g)).collect()
    }

    pub fn trunks(&self) -> Vec<Trunk> {
        self.lock().trunks.values().cloned().collect()
    }

    /// True when no network, subnet, pool, port (other than `network:*` ones), trunk or
    /// non-default security group is left: what a clean teardown must achieve.
    pub fn is_empty(&self) -> bool {
        let s = self.lock();
        s.networks.is_empty()
            && s.subnets.is_empty()
            && s.pools.is_empty()
            && s.trunks.is_empty()
            && s.ports
                .values()
                .all(|p| p.device_owner.starts_with("network:"))
            && s.groups.values().all(|g| g.name == "default")
    }
}

#[async_trait]
impl NeutronApi for FakeNeutron {
    async fn list_networks(&self, filters: &Filters) -> Result<Vec<Network>> {
        self.list_of("list_networks", filters)
    }

    async fn get_network(&self, id: &str) -> Result<Network> {
        self.get_of("get_network", id)
    }

    async fn create_network(&self, n: &NewNetwork) -> Result<Network> {
        let mut s = self.lock();
        s.enter("create_network", n.name.as_deref().unwrap_or(""))?;
        if let Some(t) = &n.tags {
            let r = check_tags(t, "/v2.0/networks".into());
            s.mark_failed(r)?;
        }
        let id = s.new_id();
        let net = Network {
            id: id.clone(),
            name: n.name.clone().unwrap_or_default(),
            description: n.description.clone().unwrap_or_default(),
            mtu: Some(n.mtu.unwrap_or(DEFAULT_MTU)),
            status: "ACTIVE".into(),
            admin_state_up: n.admin_state_up.unwrap_or(true),
            subnets: Vec::new(),
            tags: dedup_tags(n.tags.as_deref().unwrap_or_default()),
            router_external: n.router_external.unwrap_or(false),
            shared: n.shared.unwrap_or(false),
            project_id: n.project_id.clone().unwrap_or_else(|| s.project_id.clone()),
            port_security_enabled: Some(n.port_security_enabled.unwrap_or(true)),
            provider_network_type: Some(
                n.provider_network_type
                    .clone()
                    .unwrap_or_else(|| "geneve".into()),
            ),
            provider_physical_network: n.provider_physical_network.clone(),
            provider_segmentation_id: Some(n.provider_segmentation_id.unwrap_or(id.len() as u32)),
        };
        s.networks.insert(id.clone(), net.clone());
        if s.answer_lost("create_network") {
            // The client's tagging step after the create never happens either.
            s.networks.get_mut(&id).expect("just made").tags.clear();
            return Err(lost_answer("/v2.0/networks"));
        }
        s.tag_after_create(ResourceKind::Network, &id, !net.tags.is_empty())?;
        Ok(net)
    }

    async fn update_network(&self, id: &str, u: &NetworkUpdate) -> Result<Network> {
        let mut s = self.lock();
        s.enter("update_network", id)?;
        let Some(n) = s.networks.get_mut(id) else {
            let e = not_found(ResourceKind::Network, id);
            return s.mark_failed(Err(e));
        };
        if let Some(v) = &u.name {
            n.name = v.clone();
        }
        if let Some(v) = &u.description {
            n.description = v.clone();
        }
        if let Some(v) = u.admin_state_up {
            n.admin_state_up = v;
        }
        if let Some(v) = u.shared {
            n.shared = v;
        }
        if let Some(v) = u.mtu {
            n.mtu = Some(v);
        }
        if let Some(v) = u.port_security_enabled {
            n.port_security_enabled = Some(v);
        }
        let n = n.clone();
        Ok(s.network_view(&n))
    }

    async fn delete_network(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("delete_network", id)?;
        if !s.networks.contains_key(id) {
            let e = not_found(ResourceKind::Network, id);
            return s.mark_failed(Err(e));
        }
        if let Some(p) = s
            .ports
            .values()
            .find(|p| p.network_id == id && !p.device_owner.starts_with("network:"))
        {
            let e = err(
                409,
                "DELETE",
                format!("/v2.0/networks/{id}"),
                "NetworkInUse",
                format!("unable to complete operation on network {id}: there are one or more ports still in use (port {})", p.id),
            );
            return s.mark_failed(Err(e));
        }
        // Neutron removes its own ports and the subnets with the network.
        s.ports.retain(|_, p| p.network_id != id);
        s.subnets.retain(|_, x| x.network_id != id);
        s.networks.remove(id);
        Ok(())
    }

    async fn list_subnets(&self, filters: &Filters) -> Result<Vec<Subnet>> {
        self.list_of("list_subnets", filters)
    }

    async fn get_subnet(&self, id: &str) -> Result<Subnet> {
        self.get_of("get_subnet", id)
    }

    async fn create_subnet(&self, n: &NewSubnet) -> Result<Subnet> {
        let mut s = self.lock();
        s.enter("create_subnet", n.name.as_deref().unwrap_or(""))?;
        let r = s.build_subnet(n);
        let subnet = s.mark_failed(r)?;
        s.subnets.insert(subnet.id.clone(), subnet.clone());
        if s.answer_lost("create_subnet") {
            s.subnets
                .get_mut(&subnet.id)
                .expect("just made")
                .tags
                .clear();
            return Err(lost_answer("/v2.0/subnets"));
        }
        s.tag_after_create(ResourceKind::Subnet, &subnet.id, !subnet.tags.is_empty())?;
        Ok(subnet)
    }

    async fn update_subnet(&self, id: &str, u: &SubnetUpdate) -> Result<Subnet> {
        let mut s = self.lock();
        s.enter("update_subnet", id)?;
        let Some(x) = s.subnets.get_mut(id) else {
            let e = not_found(ResourceKind::Subnet, id);
            return s.mark_failed(Err(e));
        };
        if let Some(v) = &u.name {
            x.name = v.clone();
        }
        if let Some(v) = &u.description {
            x.description = v.clone();
        }
        if let Some(v) = u.gateway_ip {
            x.gateway_ip = v;
        }
        if let Some(v) = u.enable_dhcp {
            x.enable_dhcp = v;
        }
        if let Some(v) = &u.allocation_pools {
            x.allocation_pools = v.clone();
        }
        if let Some(v) = &u.host_routes {
            x.host_routes = v.clone();
        }
        if let Some(v) = &u.dns_nameservers {
            x.dns_nameservers = v.clone();
        }
        Ok(x.clone())
    }

    async fn delete_subnet(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("delete_subnet", id)?;
        if !s.subnets.contains_key(id) {
            let e = not_found(ResourceKind::Subnet, id);
            return s.mark_failed(Err(e));
        }
        let in_use = s.ports.values().any(|p| {
            !p.device_owner.starts_with("network:") && p.fixed_ips.iter().any(|f| f.subnet_id == id)
        });
        if in_use {
            let e = err(
                409,
                "DELETE",
                format!("/v2.0/subnets/{id}"),
                "SubnetInUse",
                format!("unable to complete operation on subnet {id}: one or more ports have an IP allocation from this subnet"),
            );
            return s.mark_failed(Err(e));
        }
        for p in s.ports.values_mut() {
            p.fixed_ips.retain(|f| f.subnet_id != id);
        }
        s.subnets.remove(id);
        Ok(())
    }

    async fn list_subnetpools(&self, filters: &Filters) -> Result<Vec<SubnetPool>> {
        self.list_of("list_subnetpools", filters)
    }

    async fn get_subnetpool(&self, id: &str) -> Result<SubnetPool> {
        self.get_of("get_subnetpool", id)
    }

    async fn create_subnetpool(&self, n: &NewSubnetPool) -> Result<SubnetPool> {
        let mut s = self.lock();
        s.enter("create_subnetpool", &n.name)?;
        let path = "/v2.0/subnetpools".to_string();
        let r = (|| {
            if let Some(t) = &n.tags {
                check_tags(t, path.clone())?;
            }
            let first = n
                .prefixes
                .first()
                .ok_or_else(|| bad_request(path.clone(), "prefixes must not be empty".into()))?;
            let v6 = first.addr().is_ipv6();
            if n.prefixes.iter().any(|p| p.addr().is_ipv6() != v6) {
                return Err(bad_request(
                    path.clone(),
                    "prefixes of one pool must share an IP version".into(),
                ));
            }
            let (min, max) = if v6 { (64u8, 128u8) } else { (8u8, 32u8) };
            let min = n.min_prefixlen.unwrap_or(min);
            let max = n.max_prefixlen.unwrap_or(max);
            let default = n.default_prefixlen.unwrap_or(min);
            if !(min <= default && default <= max) {
                return Err(bad_request(
                    path.clone(),
                    format!("default_prefixlen {default} is outside [{min}, {max}]"),
                ));
            }
            Ok((v6, min, max, default))
        })();
        let (v6, min, max, default) = s.mark_failed(r)?;
        let id = s.new_id();
        let pool = SubnetPool {
            id: id.clone(),
            name: n.name.clone(),
            description: n.description.clone().unwrap_or_default(),
            prefixes: n.prefixes.iter().map(IpNet::trunc).collect(),
            default_prefixlen: Some(default),
            min_prefixlen: Some(min),
            max_prefixlen: Some(max),
            ip_version: if v6 { 6 } else { 4 },
            is_default: n.is_default.unwrap_or(false),
            shared: n.shared.unwrap_or(false),
            address_scope_id: n.address_scope_id.clone(),
            tags: dedup_tags(n.tags.as_deref().unwrap_or_default()),
            project_id: n.project_id.clone().unwrap_or_else(|| s.project_id.clone()),
        };
        s.pools.insert(id.clone(), pool.clone());
        if s.answer_lost("create_subnetpool") {
            s.pools.get_mut(&id).expect("just made").tags.clear();
            return Err(lost_answer("/v2.0/subnetpools"));
        }
        s.tag_after_create(ResourceKind::SubnetPool, &id, !pool.tags.is_empty())?;
        Ok(pool)
    }

    async fn update_subnetpool(&self, id: &str, u: &SubnetPoolUpdate) -> Result<SubnetPool> {
        let mut s = self.lock();
        s.enter("update_subnetpool", id)?;
        let Some(p) = s.pools.get_mut(id) else {
            let e = not_found(ResourceKind::SubnetPool, id);
            return s.mark_failed(Err(e));
        };
        if let Some(v) = &u.prefixes {
            // Neutron only lets prefixes grow.
            if !p
                .prefixes
                .iter()
                .all(|old| v.iter().any(|n| n.contains(old)))
            {
                let e = bad_request(
                    format!("/v2.0/subnetpools/{id}"),
                    "existing prefixes cannot be removed".into(),
                );
                return s.mark_failed(Err(e));
            }
            p.prefixes = v.clone();
        }
        if let Some(v) = &u.name {
            p.name = v.clone();
        }
        if let Some(v) = &u.description {
            p.description = v.clone();
        }
        if let Some(v) = u.default_prefixlen {
            p.default_prefixlen = Some(v);
        }
        if let Some(v) = u.is_default {
            p.is_default = v;
        }
        Ok(p.clone())
    }

    async fn delete_subnetpool(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("delete_subnetpool", id)?;
        if !s.pools.contains_key(id) {
            let e = not_found(ResourceKind::SubnetPool, id);
            return s.mark_failed(Err(e));
        }
        if s.subnets
            .values()
            .any(|x| x.subnetpool_id.as_deref() == Some(id))
        {
            // Neutron 29 answers 400 here, not 409.
            let e = err(
                400,
                "DELETE",
                format!("/v2.0/subnetpools/{id}"),
                "SubnetPoolDeleteError",
                "unable to delete subnet pool: subnet pool has existing allocations".into(),
            );
            return s.mark_failed(Err(e));
        }
        s.pools.remove(id);
        Ok(())
    }

    async fn list_ports(&self, filters: &Filters) -> Result<Vec<Port>> {
        self.list_of("list_ports", filters)
    }

    async fn get_port(&self, id: &str) -> Result<Port> {
        self.get_of("get_port", id)
    }

    async fn create_port(&self, n: &NewPort) -> Result<Port> {
        let mut s = self.lock();
        s.enter("create_port", n.name.as_deref().unwrap_or(""))?;
        let r = s.build_port(n);
        let p = s.mark_failed(r)?;
        s.ports.insert(p.id.clone(), p.clone());
        Ok(s.port_view(&p))
    }

    async fn create_ports(&self, ports: &[NewPort]) -> Result<Vec<Port>> {
        let mut s = self.lock();
        s.enter("create_ports", "")?;
        // All or nothing, as Neutron's bulk create: insert as we go (later ports must see earlier
        // addresses), then roll back on failure.
        let mut made: Vec<Port> = Vec::new();
        for n in ports {
            match s.build_port(n) {
                Ok(p) => {
                    s.ports.insert(p.id.clone(), p.clone());
                    made.push(p);
                }
                Err(e) => {
                    for p in &made {
                        s.ports.remove(&p.id);
                    }
                    return s.mark_failed(Err(e));
                }
            }
        }
        Ok(made.iter().map(|p| s.port_view(p)).collect())
    }

    async fn update_port(&self, id: &str, u: &PortUpdate) -> Result<Port> {
        self.pause("update_port").await;
        let mut s = self.lock();
        s.enter("update_port", id)?;
        let path = format!("/v2.0/ports/{id}");
        let Some(old) = s.ports.get(id).cloned() else {
            let e = not_found(ResourceKind::Port, id);
            return s.mark_failed(Err(e));
        };
        let r = (|| {
            let mut p = old.clone();
            if let Some(req) = &u.fixed_ips {
                p.fixed_ips = s.allocate(&p.network_id, Some(req), Some(id), "PUT", &path)?;
            }
            if let Some(m) = u.mac_address {
                if m != old.mac_address {
                    if !old.binding_host_id.is_empty() {
                        return Err(err(
                            409,
                            "PUT",
                            path,
                            "PortBound",
                            format!("unable to change the mac address of bound port {id}"),
                        ));
                    }
                    if s.ports
                        .values()
                        .any(|x| x.id != id && x.network_id == p.network_id && x.mac_address == m)
                    {
                        return Err(err(
                            409,
                            "PUT",
                            path,
                            "MacAddressInUse",
                            format!("the mac address {m} is in use"),
                        ));
                    }
                }
                p.mac_address = m;
            }
            if let Some(v) = &u.security_groups {
                for g in v {
                    if !s.groups.contains_key(g) {
                        return Err(not_found(ResourceKind::SecurityGroup, g));
                    }
                }
                p.security_groups = v.clone();
            }
            if let Some(v) = u.port_security_enabled {
                p.port_security_enabled = Some(v);
            }
            if let Some(q) = &u.qos_policy_id {
                if let Some(id) = q {
                    if !s.qos_policies.contains_key(id) {
                        return Err(missing(
                            "qos/policies",
                            "QoS policy",
                            "QosPolicyNotFound",
                            id,
                        ));
                    }
                }
                p.qos_policy_id = q.clone();
            }
            if let Some(d) = &u.dns_name {
                p.dns_name = (!d.is_empty()).then(|| d.clone());
            }
            if let Some(v) = &u.allowed_address_pairs {
                p.allowed_address_pairs = v.clone();
            }
            if p.port_security_enabled == Some(false) && !p.allowed_address_pairs.is_empty() {
                return Err(err(
                    409,
                    "PUT",
                    path,
                    "AddressPairAndPortSecurityRequired",
                    "port security must be enabled in order to have allowed address pairs on a port".into(),
                ));
            }
            if let Some(v) = &u.name {
                p.name = v.clone();
            }
            if let Some(v) = &u.description {
                p.description = v.clone();
            }
            if let Some(v) = u.admin_state_up {
                p.admin_state_up = v;
            }
            if let Some(v) = &u.device_owner {
                p.device_owner = v.clone();
            }
            if let Some(v) = &u.device_id {
                p.device_id = v.clone();
            }
            if let Some(v) = &u.binding_vnic_type {
                p.binding_vnic_type = v.clone();
            }
            if let Some(v) = &u.binding_profile {
                p.binding_profile = v.clone();
            }
            if let Some(h) = &u.binding_host_id {
                if *h != old.binding_host_id {
                    p.binding_host_id = h.clone();
                    if h.is_empty() {
                        p.status = PortStatus::Down;
                    }
                    s.bind(&mut p);
                }
            }
            Ok(p)
        })();
        let p = s.mark_failed(r)?;
        s.ports.insert(id.to_string(), p.clone());
        Ok(s.port_view(&p))
    }

    async fn delete_port(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("delete_port", id)?;
        let path = format!("/v2.0/ports/{id}");
        let r = if !s.ports.contains_key(id) {
            Err(not_found(ResourceKind::Port, id))
        } else if let Some(t) = s.trunks.values().find(|t| t.port_id == id) {
            Err(err(
                409,
                "DELETE",
                path,
                "PortInUseAsTrunkParent",
                format!("port {id} is the parent of trunk {}", t.id),
            ))
        } else if let Some(t) = s
            .trunks
            .values()
            .find(|t| t.sub_ports.iter().any(|x| x.port_id == id))
        {
            Err(err(
                409,
                "DELETE",
                path,
                "PortInUseAsSubPort",
                format!("port {id} is a subport of trunk {}", t.id),
            ))
        } else {
            Ok(())
        };
        s.mark_failed(r)?;
        s.ports.remove(id);
        Ok(())
    }

    async fn add_tag(&self, kind: ResourceKind, id: &str, tag: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("add_tag", id)?;
        let path = format!("/v2.0/{}/{id}/tags/{tag}", kind.collection());
        let r = check_tags(&[tag.to_string()], path);
        s.mark_failed(r)?;
        match s.tags_of(kind, id) {
            Some(tags) => {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_string());
                }
                Ok(())
            }
            None => s.mark_failed(Err(not_found(kind, id))),
        }
    }

    async fn add_tags(&self, kind: ResourceKind, id: &str, tags: &[String]) -> Result<()> {
        let mut s = self.lock();
        s.enter("add_tags", id)?;
        let path = format!("/v2.0/{}/{id}/tags", kind.collection());
        if !s.extensions.iter().any(|e| e == ext::TAG_CREATION) {
            // Without the extension Neutron has no such route.
            let e = err(
                404,
                "POST",
                path,
                "HTTPNotFound",
                "the resource could not be found".into(),
            );
            return s.mark_failed(Err(e));
        }
        let r = check_tags(tags, path);
        s.mark_failed(r)?;
        match s.tags_of(kind, id) {
            Some(have) => {
                for t in tags {
                    if !have.contains(t) {
                        have.push(t.clone());
                    }
                }
                Ok(())
            }
            None => s.mark_failed(Err(not_found(kind, id))),
        }
    }

    async fn remove_tag(&self, kind: ResourceKind, id: &str, tag: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("remove_tag", id)?;
        let r = match s.tags_of(kind, id) {
            None => Err(not_found(kind, id)),
            Some(tags) => match tags.iter().position(|t| t == tag) {
                Some(i) => {
                    tags.remove(i);
                    Ok(())
                }
                None => Err(err(
                    404,
                    "DELETE",
                    format!("/v2.0/{}/{id}/tags/{tag}", kind.collection()),
                    "TagNotFound",
                    format!("tag {tag} could not be found for {kind} {id}"),
                )),
            },
        };
        s.mark_failed(r)
    }

    async fn replace_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        tags: &[String],
    ) -> Result<Vec<String>> {
        self.pause("replace_tags").await;
        let mut s = self.lock();
        s.enter("replace_tags", id)?;
        let r = check_tags(tags, format!("/v2.0/{}/{id}/tags", kind.collection()));
        s.mark_failed(r)?;
        match s.tags_of(kind, id) {
            Some(t) => {
                *t = dedup_tags(tags);
                Ok(t.clone())
            }
            None => s.mark_failed(Err(not_found(kind, id))),
        }
    }

    async fn list_security_groups(&self, filters: &Filters) -> Result<Vec<SecurityGroup>> {
        self.list_of("list_security_groups", filters)
    }

    async fn list_qos_policies(&self, filters: &Filters) -> Result<Vec<QosPolicy>> {
        self.list_of("list_qos_policies", filters)
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.get_of("get_security_group", id)
    }

    async fn create_security_group(&self, g: &NewSecurityGroup) -> Result<SecurityGroup> {
        let mut s = self.lock();
        s.enter("create_security_group", &g.name)?;
        if let Some(t) = &g.tags {
            let r = check_tags(t, "/v2.0/security-groups".into());
            s.mark_failed(r)?;
        }
        Ok(s.insert_group(g.clone()))
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("delete_security_group", id)?;
        let r = if !s.groups.contains_key(id) {
            Err(not_found(ResourceKind::SecurityGroup, id))
        } else if let Some(p) = s
            .ports
            .values()
            .find(|p| p.security_groups.iter().any(|g| g == id))
        {
            Err(err(
                409,
                "DELETE",
                format!("/v2.0/security-groups/{id}"),
                "SecurityGroupInUse",
                format!("security group {id} in use by port {}", p.id),
            ))
        } else {
            Ok(())
        };
        s.mark_failed(r)?;
        s.groups.remove(id);
        s.rules.retain(|_, r| r.security_group_id != id);
        Ok(())
    }

    async fn list_security_group_rules(&self, filters: &Filters) -> Result<Vec<SecurityGroupRule>> {
        self.list_of("list_security_group_rules", filters)
    }

    async fn create_security_group_rule(
        &self,
        n: &NewSecurityGroupRule,
    ) -> Result<SecurityGroupRule> {
        let mut s = self.lock();
        s.enter("create_security_group_rule", &n.security_group_id)?;
        let path = "/v2.0/security-group-rules".to_string();
        let r = if !s.groups.contains_key(&n.security_group_id) {
            Err(not_found(ResourceKind::SecurityGroup, &n.security_group_id))
        } else if !matches!(n.direction.as_str(), "ingress" | "egress")
            || !matches!(n.ethertype.as_str(), "IPv4" | "IPv6")
        {
            Err(bad_request(
                path,
                format!(
                    "invalid direction {:?} or ethertype {:?}",
                    n.direction, n.ethertype
                ),
            ))
        } else if let Some(dup) = s.rules.values().find(|r| {
            r.security_group_id == n.security_group_id
                && r.direction == n.direction
                && r.ethertype == n.ethertype
                && r.protocol == n.protocol
                && r.port_range_min == n.port_range_min
                && r.port_range_max == n.port_range_max
                && r.remote_ip_prefix == n.remote_ip_prefix
                && r.remote_group_id == n.remote_group_id
        }) {
            Err(err(
                409,
                "POST",
                path,
                "SecurityGroupRuleExists",
                format!("security group rule already exists, rule id is {}", dup.id),
            ))
        } else {
            Ok(())
        };
        s.mark_failed(r)?;
        let id = s.new_id();
        let rule = SecurityGroupRule {
            id: id.clone(),
            security_group_id: n.security_group_id.clone(),
            direction: n.direction.clone(),
            ethertype: n.ethertype.clone(),
            protocol: n.protocol.clone(),
            port_range_min: n.port_range_min,
            port_range_max: n.port_range_max,
            remote_ip_prefix: n.remote_ip_prefix.clone(),
            remote_group_id: n.remote_group_id.clone(),
            description: n.description.clone(),
            project_id: s.project_id.clone(),
        };
        s.rules.insert(id, rule.clone());
        Ok(rule)
    }

    async fn delete_security_group_rule(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("delete_security_group_rule", id)?;
        if s.rules.remove(id).is_none() {
            let e = err(
                404,
                "DELETE",
                format!("/v2.0/security-group-rules/{id}"),
                SecurityGroupRule::NOT_FOUND,
                format!("security group rule {id} does not exist"),
            );
            return s.mark_failed(Err(e));
        }
        Ok(())
    }

    async fn list_trunks(&self, filters: &Filters) -> Result<Vec<Trunk>> {
        self.list_of("list_trunks", filters)
    }

    async fn get_trunk(&self, id: &str) -> Result<Trunk> {
        self.get_of("get_trunk", id)
    }

    async fn create_trunk(&self, n: &NewTrunk) -> Result<Trunk> {
        let mut s = self.lock();
        s.enter("create_trunk", &n.port_id)?;
        let path = "/v2.0/trunks".to_string();
        let r =
            if !s.ports.contains_key(&n.port_id) {
                Err(not_found(ResourceKind::Port, &n.port_id))
            } else if s.trunks.values().any(|t| {
                t.port_id == n.port_id || t.sub_ports.iter().any(|x| x.port_id == n.port_id)
            }) {
                Err(err(
                    409,
                    "POST",
                    path,
                    "TrunkPortInUse",
                    format!("port {} is currently in use by a trunk", n.port_id),
                ))
            } else {
                Ok(())
            };
        s.mark_failed(r)?;
        let id = s.new_id();
        let trunk = Trunk {
            id: id.clone(),
            name: n.name.clone().unwrap_or_default(),
            description: n.description.clone().unwrap_or_default(),
            port_id: n.port_id.clone(),
            status: "ACTIVE".into(),
            admin_state_up: n.admin_state_up.unwrap_or(true),
            sub_ports: Vec::new(),
            tags: dedup_tags(n.tags.as_deref().unwrap_or_default()),
            project_id: s.project_id.clone(),
        };
        s.trunks.insert(id.clone(), trunk);
        if !n.sub_ports.is_empty() {
            let r = add_subports_locked(&mut s, &id, &n.sub_ports);
            if let Err(e) = r {
                s.trunks.remove(&id);
                return s.mark_failed(Err(e));
            }
        }
        Ok(s.trunks[&id].clone())
    }

    async fn delete_trunk(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.enter("delete_trunk", id)?;
        let r = match s.trunks.get(id) {
            None => Err(not_found(ResourceKind::Trunk, id)),
            Some(t)
                if s.ports
                    .get(&t.port_id)
                    .is_some_and(|p| !p.binding_host_id.is_empty() && !t.sub_ports.is_empty()) =>
            {
                Err(err(
                    409,
                    "DELETE",
                    format!("/v2.0/trunks/{id}"),
                    "TrunkInUse",
                    format!("trunk {id} is in use"),
                ))
            }
            Some(_) => Ok(()),
        };
        s.mark_failed(r)?;
        s.trunks.remove(id);
        Ok(())
    }

    async fn add_subports(&self, trunk_id: &str, subports: &[SubPort]) -> Result<Trunk> {
        let mut s = self.lock();
        s.enter("add_subports", trunk_id)?;
        let r = add_subports_locked(&mut s, trunk_id, subports);
        s.mark_failed(r)
    }

    async fn remove_subports(&self, trunk_id: &str, port_ids: &[String]) -> Result<Trunk> {
        let mut s = self.lock();
        s.enter("remove_subports", trunk_id)?;
        let path = format!("/v2.0/trunks/{trunk_id}/remove_subports");
        let r = match s.trunks.get_mut(trunk_id) {
            None => Err(not_found(ResourceKind::Trunk, trunk_id)),
            Some(t) => match port_ids
                .iter()
                .find(|p| !t.sub_ports.iter().any(|x| &x.port_id == *p))
            {
                Some(missing) => Err(err(
                    404,
                    "PUT",
                    path,
                    "SubPortNotFound",
                    format!("subport {missing} not found in trunk {trunk_id}"),
                )),
                None => {
                    t.sub_ports.retain(|x| !port_ids.contains(&x.port_id));
                    Ok(t.clone())
                }
            },
        };
        s.mark_failed(r)
    }

    async fn list_extensions(&self) -> Result<Vec<Extension>> {
        let mut s = self.lock();
        s.enter("list_extensions", "")?;
        Ok(s.extensions
            .iter()
            .map(|a| Extension {
                alias: a.clone(),
                name: a.clone(),
                description: String::new(),
            })
            .collect())
    }

    async fn token_project(&self) -> Result<Option<String>> {
        let s = self.lock();
        Ok(s.token_scoped.then(|| s.project_id.clone()))
    }
}

fn add_subports_locked(s: &mut State, trunk_id: &str, subports: &[SubPort]) -> Result<Trunk> {
    let path = format!("/v2.0/trunks/{trunk_id}/add_subports");
    let Some(t) = s.trunks.get(trunk_id) else {
        return Err(not_found(ResourceKind::Trunk, trunk_id));
    };
    for (i, sp) in subports.iter().enumerate() {
        if !s.ports.contains_key(&sp.port_id) {
            return Err(not_found(ResourceKind::Port, &sp.port_id));
        }
        if sp.segmentation_type == "vlan" && !(1..=4094).contains(&sp.segmentation_id) {
            return Err(bad_request(
                path,
                format!("invalid VLAN id {}", sp.segmentation_id),
            ));
        }
        let in_use = s.trunks.values().any(|x| {
            x.port_id == sp.port_id || x.sub_ports.iter().any(|y| y.port_id == sp.port_id)
        }) || subports[..i].iter().any(|y| y.port_id == sp.port_id);
        if in_use {
            return Err(err(
                409,
                "PUT",
                path,
                "PortInUseAsSubPort",
                format!("port {} is already in use by a trunk", sp.port_id),
            ));
        }
        let dup_seg = t.sub_ports.iter().chain(subports[..i].iter()).any(|y| {
            y.segmentation_type == sp.segmentation_type && y.segmentation_id == sp.segmentation_id
        });
        if dup_seg {
            return Err(err(
                409,
                "PUT",
                path,
                "DuplicateSubPort",
                format!(
                    "segmentation id {} is already in use on trunk {trunk_id}",
                    sp.segmentation_id
                ),
            ));
        }
    }
    let t = s.trunks.get_mut(trunk_id).expect("checked above");
    t.sub_ports.extend(subports.iter().cloned());
    Ok(t.clone())
}
