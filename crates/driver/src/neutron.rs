//! The driver's view of Neutron: the few resource fields it reads, and the calls it makes, on top
//! of `kuryr_openstack::NeutronApi`. Keeping this narrow makes the verbs easy to read and test.

use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_types::{MacAddr, PortStatus, VifType};

/// A Neutron network as the driver sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Net {
    pub id: String,
    pub name: String,
    pub mtu: Option<u32>,
    pub shared: bool,
    pub tags: Vec<String>,
    pub project_id: String,
    /// Ids of its subnets, as Neutron listed them when the network was read or made.
    pub subnets: Vec<String>,
}

/// A Neutron subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub subnetpool_id: Option<String>,
    pub tags: Vec<String>,
    pub project_id: String,
    /// `(destination, nexthop)` pairs.
    pub host_routes: Vec<(IpNet, IpAddr)>,
    /// Neutron's `dns_nameservers` (the CNI result's DNS servers).
    pub dns_nameservers: Vec<String>,
}

/// A Neutron subnetpool.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub prefixes: Vec<IpNet>,
    pub default_prefixlen: Option<u8>,
    pub shared: bool,
    pub tags: Vec<String>,
    pub project_id: String,
}

/// One fixed IP of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

/// An allowed address pair of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPair {
    /// An address or a CIDR.
    pub ip_address: String,
    pub mac_address: Option<MacAddr>,
}

/// A trunk subport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubPort {
    pub port_id: String,
    pub segmentation_id: u16,
}

/// A Neutron port.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub mac_address: MacAddr,
    pub fixed_ips: Vec<FixedIp>,
    pub tags: Vec<String>,
    pub device_id: String,
    pub device_owner: String,
    pub host_id: String,
    pub status: PortStatus,
    pub admin_state_up: bool,
    pub vif_type: VifType,
    pub vif_details: serde_json::Map<String, serde_json::Value>,
    pub security_groups: Vec<String>,
    /// `port_security_enabled` (`None`: the extension is off).
    pub port_security: Option<bool>,
    pub qos_policy_id: Option<String>,
    pub dns_name: Option<String>,
    pub project_id: String,
    pub allowed_address_pairs: Vec<AddressPair>,
    /// `(trunk id, subports)` when the port is a trunk parent.
    pub trunk: Option<(String, Vec<SubPort>)>,
}

/// Filters for listing subnets (all given ones must match).
#[derive(Debug, Clone, Default)]
pub struct SubnetQuery {
    pub network_id: Option<String>,
    pub cidr: Option<IpNet>,
    pub subnetpool_id: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
}

/// Filters for listing ports.
#[derive(Debug, Clone, Default)]
pub struct PortQuery {
    pub network_id: Option<String>,
    pub name: Option<String>,
    pub mac_address: Option<MacAddr>,
    pub device_owner: Option<String>,
    pub host_id: Option<String>,
    pub tags: Vec<String>,
    /// Each entry is `subnet_id=` and/or `ip_address=` of one fixed IP filter.
    pub fixed_ips: Vec<(Option<String>, Option<IpAddr>)>,
    /// Any of these ports (empty: no filter).
    pub ids: Vec<String>,
}

impl SubnetQuery {
    pub fn on_network(network_id: &str) -> Self {
        SubnetQuery {
            network_id: Some(network_id.to_string()),
            ..Default::default()
        }
    }

    pub fn from_pool(subnetpool_id: &str) -> Self {
        SubnetQuery {
            subnetpool_id: Some(subnetpool_id.to_string()),
            ..Default::default()
        }
    }

    pub fn tagged(tag: &str) -> Self {
        SubnetQuery {
            tags: vec![tag.to_string()],
            ..Default::default()
        }
    }

    pub fn named(name: &str) -> Self {
        SubnetQuery {
            name: Some(name.to_string()),
            ..Default::default()
        }
    }

    pub fn with_cidr(self, cidr: IpNet) -> Self {
        SubnetQuery {
            cidr: Some(cidr),
            ..self
        }
    }
}

impl PortQuery {
    /// The ports carrying a Docker ID's tags (an endpoint's port).
    pub fn tagged_with(docker_id: &str) -> Self {
        PortQuery {
            tags: crate::tags::docker_id_tags(docker_id),
            ..Default::default()
        }
    }

    /// The port holding `ip` on `subnet_id`.
    pub fn at(subnet_id: &str, ip: IpAddr) -> Self {
        PortQuery {
            fixed_ips: vec![(Some(subnet_id.to_string()), Some(ip))],
            ..Default::default()
        }
    }

    pub fn with_mac(mac: MacAddr) -> Self {
        PortQuery {
            mac_address: Some(mac),
            ..Default::default()
        }
    }

    pub fn owned_by(device_owner: &str) -> Self {
        PortQuery {
            device_owner: Some(device_owner.to_string()),
            ..Default::default()
        }
    }

    pub fn on_network(self, network_id: &str) -> Self {
        PortQuery {
            network_id: Some(network_id.to_string()),
            ..self
        }
    }
}

/// Body of a new subnet.
#[derive(Debug, Clone)]
pub struct NewSubnet {
    pub name: String,
    pub network_id: String,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub subnetpool_id: Option<String>,
    pub enable_dhcp: bool,
    /// Where Neutron may pick addresses for its own ports; empty = the whole subnet.
    pub allocation_pools: Vec<(IpAddr, IpAddr)>,
}

/// Body of a new port.
#[derive(Debug, Clone, Default)]
pub struct NewPort {
    pub name: String,
    pub network_id: String,
    /// `(subnet id, optional fixed address)`; a `None` subnet means "Neutron infers it".
    pub fixed_ips: Vec<(Option<String>, Option<IpAddr>)>,
    pub mac_address: Option<MacAddr>,
    pub device_owner: Option<String>,
    pub device_id: Option<String>,
    pub host_id: Option<String>,
    /// Carried by the create where Neutron has `tag-creation`, set right after otherwise.
    pub tags: Vec<String>,
    /// Another project than the credentials' (a CNI network's `project`; needs the admin role).
    pub project_id: Option<String>,
}

/// Changes to a port (absent fields are left alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortChange {
    pub name: Option<String>,
    pub device_owner: Option<String>,
    pub device_id: Option<String>,
    pub host_id: Option<String>,
    pub mac_address: Option<MacAddr>,
    pub admin_state_up: Option<bool>,
    /// The complete new fixed IP list.
    pub fixed_ips: Option<Vec<(Option<String>, Option<IpAddr>)>>,
    pub security_groups: Option<Vec<String>>,
    /// `port_security_enabled`.
    pub port_security: Option<bool>,
    /// `Some(None)` clears it.
    pub qos_policy: Option<Option<String>>,
    /// `""` clears it.
    pub dns_name: Option<String>,
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
}

impl PortChange {
    pub fn is_empty(&self) -> bool {
        *self == PortChange::default()
    }
}

/// A security group rule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSgRule {
    pub ethertype: &'static str,
    pub protocol: &'static str,
    pub port_range: Option<(u16, u16)>,
}

/// Which kind of resource a tag call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Network,
    Subnet,
    SubnetPool,
    Port,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::SubnetPool => "subnetpool",
            Kind::Port => "port",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The calls, on top of `kuryr_openstack::NeutronApi`.

use std::sync::Arc;

use kuryr_openstack::neutron as os;
use kuryr_openstack::neutron::{Filters, NeutronApi, NeutronError, ResourceKind};

use crate::error::{DriverError, Result};

/// Typed access to Neutron for the verbs; every error names the call and the resource.
#[derive(Clone)]
pub struct Nt {
    api: Arc<dyn NeutronApi>,
    /// Whether Neutron has `tag-creation` (several tags added in one request), learnt once per
    /// process: from the start-up check ([`Nt::learn_extensions`]) or by asking when first needed.
    tag_creation: Arc<tokio::sync::OnceCell<bool>>,
    /// The project Kuryr's token is scoped to (`None`: noauth), learnt once. Listings keep to
    /// what a member of it would see, because an admin's token lists every project's resources
    /// and Kuryr must never read, adopt or delete another project's, even with matching tags.
    own_project: Arc<tokio::sync::OnceCell<Option<String>>>,
}

/// Keeps the listed resources that belong to `project`, or are shared with it when the owner's
/// `of` says so; all of them without a project (noauth).
fn keep_to<T>(items: Vec<T>, project: Option<&str>, of: impl Fn(&T) -> (&str, bool)) -> Vec<T> {
    let Some(project) = project else {
        return items;
    };
    items
        .into_iter()
        .filter(|x| {
            let (owner, shared) = of(x);
            owner == project || shared
        })
        .collect()
}

/// The create body of a port.
fn port_body(p: &NewPort) -> os::NewPort {
    os::NewPort {
        network_id: p.network_id.clone(),
        name: Some(p.name.clone()),
        fixed_ips: Some(fixed_ip_requests(&p.fixed_ips)),
        mac_address: p.mac_address,
        admin_state_up: Some(true),
        device_owner: p.device_owner.clone(),
        device_id: p.device_id.clone(),
        binding_host_id: p.host_id.clone(),
        tags: (!p.tags.is_empty()).then(|| p.tags.clone()),
        project_id: p.project_id.clone(),
        ..Default::default()
    }
}

fn err(context: String) -> impl FnOnce(NeutronError) -> DriverError {
    move |e| {
        tracing::debug!(%context, error = %e, "neutron call failed");
        DriverError::neutron(context, e)
    }
}

/// Whether a name or id given by a user is a Neutron id (8-4-4-4-12 hex digits).
pub(crate) fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

/// A create whose answer was lost (connection reset, timeout) may have been done all the same:
/// Docker would never be told of the resource, and nothing would delete it. The look-up by the
/// create's unique keys (name; network and CIDR) that finds exactly one resource without tags
/// or with all of `tags` is taken as the create's answer; otherwise the create's own error
/// stands. (The client tags right after a create: a lost answer leaves it untagged.)
fn made_all_the_same<T>(
    error: NeutronError,
    found: std::result::Result<Vec<T>, NeutronError>,
    tags_of: impl Fn(&T) -> &[String],
    tags: &[String],
    context: String,
) -> Result<T> {
    let found = found.map(|l| {
        l.into_iter()
            .filter(|x| tags_of(x).is_empty() || tags.iter().all(|t| tags_of(x).contains(t)))
            .collect::<Vec<T>>()
    });
    match found {
        Ok(mut list) if list.len() == 1 => {
            tracing::info!(%context, error = %error, "the answer was lost, but neutron made it: going on with it");
            Ok(list.remove(0))
        }
        _ => Err(err(context)(error)),
    }
}

/// `Ok(None)` for 404.
fn optional<T>(r: std::result::Result<T, NeutronError>, context: String) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(err(context)(e)),
    }
}

/// `Ok(())` for 404: tear-down treats "already gone" as done.
fn gone_ok(r: std::result::Result<(), NeutronError>, context: String) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(err(context)(e)),
    }
}

fn kind(k: Kind) -> ResourceKind {
    match k {
        Kind::Network => ResourceKind::Network,
        Kind::Subnet => ResourceKind::Subnet,
        Kind::SubnetPool => ResourceKind::SubnetPool,
        Kind::Port => ResourceKind::Port,
    }
}

fn net(n: os::Network) -> Net {
    Net {
        id: n.id,
        name: n.name,
        mtu: n.mtu,
        shared: n.shared,
        tags: n.tags,
        project_id: n.project_id,
        subnets: n.subnets,
    }
}

fn subnet(s: os::Subnet) -> Subnet {
    Subnet {
        id: s.id,
        name: s.name,
        network_id: s.network_id,
        cidr: s.cidr,
        gateway_ip: s.gateway_ip,
        subnetpool_id: s.subnetpool_id.filter(|p| !p.is_empty()),
        tags: s.tags,
        project_id: s.project_id,
        dns_nameservers: s.dns_nameservers,
        host_routes: s
            .host_routes
            .into_iter()
            .map(|r| (r.destination, r.nexthop))
            .collect(),
    }
}

fn pool(p: os::SubnetPool) -> Pool {
    Pool {
        id: p.id,
        name: p.name,
        prefixes: p.prefixes,
        default_prefixlen: p.default_prefixlen,
        shared: p.shared,
        tags: p.tags,
        project_id: p.project_id,
    }
}

fn port(p: os::Port) -> Port {
    Port {
        id: p.id,
        name: p.name,
        network_id: p.network_id,
        mac_address: p.mac_address,
        fixed_ips: p
            .fixed_ips
            .into_iter()
            .map(|f| FixedIp {
                subnet_id: f.subnet_id,
                ip_address: f.ip_address,
            })
            .collect(),
        tags: p.tags,
        device_id: p.device_id,
        device_owner: p.device_owner,
        host_id: p.binding_host_id,
        status: p.status,
        admin_state_up: p.admin_state_up,
        vif_type: p.binding_vif_type,
        vif_details: p.binding_vif_details,
        security_groups: p.security_groups,
        port_security: p.port_security_enabled,
        qos_policy_id: p.qos_policy_id.filter(|q| !q.is_empty()),
        dns_name: p.dns_name.filter(|d| !d.is_empty()),
        project_id: p.project_id,
        allowed_address_pairs: p
            .allowed_address_pairs
            .into_iter()
            .map(|a| AddressPair {
                ip_address: a.ip_address,
                mac_address: a.mac_address,
            })
            .collect(),
        trunk: p.trunk_details.map(|t| {
            (
                t.trunk_id,
                t.sub_ports
                    .into_iter()
                    .map(|s| SubPort {
                        port_id: s.port_id,
                        segmentation_id: s.segmentation_id as u16,
                    })
                    .collect(),
            )
        }),
    }
}

fn fixed_ip_requests(list: &[(Option<String>, Option<IpAddr>)]) -> Vec<os::FixedIpRequest> {
    list.iter()
        .map(|(s, ip)| os::FixedIpRequest {
            subnet_id: s.clone(),
            ip_address: *ip,
        })
        .collect()
}

fn pairs(list: &[AddressPair]) -> Vec<os::AllowedAddressPair> {
    list.iter()
        .map(|p| os::AllowedAddressPair {
            ip_address: p.ip_address.clone(),
            mac_address: p.mac_address,
        })
        .collect()
}

impl Nt {
    pub fn new(api: Arc<dyn NeutronApi>) -> Self {
        Nt {
            api,
            tag_creation: Arc::new(tokio::sync::OnceCell::new()),
            own_project: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Refuses a resource a user named by id (`what`: "network", "subnetpool") that a member of
    /// Kuryr's project could not use: neither its project's nor shared with it (an admin's token
    /// reads any).
    pub async fn check_visible(
        &self,
        what: &str,
        id: &str,
        project_id: &str,
        shared: bool,
    ) -> Result<()> {
        let own = self.own_project().await?;
        if own.is_none_or(|p| p == project_id || shared) {
            return Ok(());
        }
        Err(DriverError::NotFound(format!(
            "specified {what} id {id} is in project {project_id}, not kuryr's, and not shared"
        )))
    }

    /// The project of Kuryr's token; asked of the client once (a failure is asked again).
    async fn own_project(&self) -> Result<Option<String>> {
        let r = self
            .own_project
            .get_or_try_init(|| self.api.token_project())
            .await;
        r.cloned()
            .map_err(err("learn the project of kuryr's token".into()))
    }

    /// What Neutron's extension list, read at start-up, says: saves asking again.
    pub fn learn_extensions(&self, aliases: &[&str]) {
        let has = aliases.contains(&kuryr_openstack::neutron::extensions::TAG_CREATION);
        // Already known (asked by a call that ran first): same answer, keep it.
        let _ = self.tag_creation.set(has);
    }

    /// Whether Neutron has `tag-creation`; a failed look-up means no, and is asked again next
    /// time.
    async fn tag_creation(&self) -> bool {
        let known = self
            .tag_creation
            .get_or_try_init(|| async {
                let exts = self.api.list_extensions().await?;
                Ok::<_, NeutronError>(
                    exts.iter()
                        .any(|e| e.alias == kuryr_openstack::neutron::extensions::TAG_CREATION),
                )
            })
            .await;
        known.copied().unwrap_or(false)
    }

    /// Networks of Kuryr's project, or shared with it, carrying all of `tags` (an adopted
    /// shared network carries Kuryr's tags too).
    pub async fn networks_by_tags(&self, tags: &[String]) -> Result<Vec<Net>> {
        let own = self.own_project().await?;
        let r = self.api.list_networks(&Filters::new().tags(tags)).await;
        let all = r.map_err(err(format!("list networks tagged {}", tags.join(","))))?;
        let nets = all.into_iter().map(net).collect();
        Ok(keep_to(nets, own.as_deref(), |n| (&n.project_id, n.shared)))
    }

    /// Networks named `name` in `project` (Kuryr's own when `None`) or shared with it.
    pub async fn networks_by_name(&self, name: &str, project: Option<&str>) -> Result<Vec<Net>> {
        let own = self.own_project().await?;
        let r = self.api.list_networks(&Filters::new().name(name)).await;
        let all = r.map_err(err(format!("list networks named {name}")))?;
        let nets = all.into_iter().map(net).collect();
        let project = project.or(own.as_deref());
        Ok(keep_to(nets, project, |n| (&n.project_id, n.shared)))
    }

    pub async fn network(&self, id: &str) -> Result<Option<Net>> {
        let r = self.api.get_network(id).await;
        Ok(optional(r, format!("show network {id}"))?.map(net))
    }

    /// Creates a network carrying `tags`: the client tags it right after the create (Neutron
    /// refuses tags in the body) and deletes it again if that fails, so none is left untagged.
    pub async fn create_network(&self, name: &str, shared: bool, tags: &[String]) -> Result<Net> {
        let r = self
            .api
            .create_network(&os::NewNetwork {
                name: Some(name.to_string()),
                admin_state_up: Some(true),
                shared: Some(shared),
                tags: (!tags.is_empty()).then(|| tags.to_vec()),
                ..Default::default()
            })
            .await;
        let context = format!("create network {name}");
        match r {
            Ok(n) => Ok(net(n)),
            Err(e) if e.outcome_unknown() => {
                let own = self.own_project().await?;
                let found = self.api.list_networks(&Filters::new().name(name)).await;
                let found = found.map(|l| keep_to(l, own.as_deref(), |n| (&n.project_id, false)));
                let mut n = net(made_all_the_same(e, found, |n| &n.tags, tags, context)?);
                // The client's tagging after the create was lost with the answer.
                self.add_missing_tags(Kind::Network, &n.id, &mut n.tags, tags)
                    .await?;
                Ok(n)
            }
            Err(e) => Err(err(context)(e)),
        }
    }

    /// Adds those of `wanted` that `have` lacks (one by one), and records them in `have`.
    async fn add_missing_tags(
        &self,
        k: Kind,
        id: &str,
        have: &mut Vec<String>,
        wanted: &[String],
    ) -> Result<()> {
        let missing: Vec<String> = wanted
            .iter()
            .filter(|t| !have.contains(t))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.add_tags(k, id, &missing).await?;
            have.extend(missing);
        }
        Ok(())
    }

    pub async fn delete_network(&self, id: &str) -> Result<()> {
        gone_ok(
            self.api.delete_network(id).await,
            format!("delete network {id}"),
        )
    }

    /// Replaces the whole tag set (one request).
    pub async fn set_tags(&self, k: Kind, id: &str, tags: &[String]) -> Result<()> {
        let r = self.api.replace_tags(kind(k), id, tags).await;
        r.map(|_| ())
            .map_err(err(format!("set tags of {} {id}", k.as_str())))
    }

    pub async fn add_tag(&self, k: Kind, id: &str, tag: &str) -> Result<()> {
        let r = self.api.add_tag(kind(k), id, tag).await;
        r.map_err(err(format!("tag {} {id} with {tag}", k.as_str())))
    }

    /// Adds tags to a resource that is not only Kuryr's, never rewriting its tag list: one
    /// request with `tag-creation`, one per tag without.
    pub async fn add_tags(&self, k: Kind, id: &str, tags: &[String]) -> Result<()> {
        if tags.len() > 1 && self.tag_creation().await {
            let r = self.api.add_tags(kind(k), id, tags).await;
            return r.map_err(err(format!(
                "tag {} {id} with {}",
                k.as_str(),
                tags.join(",")
            )));
        }
        for t in tags {
            self.add_tag(k, id, t).await?;
        }
        Ok(())
    }

    /// A tag (or resource) already gone is fine.
    pub async fn remove_tag(&self, k: Kind, id: &str, tag: &str) -> Result<()> {
        gone_ok(
            self.api.remove_tag(kind(k), id, tag).await,
            format!("remove tag {tag} from {} {id}", k.as_str()),
        )
    }

    pub async fn subnets(&self, q: &SubnetQuery) -> Result<Vec<Subnet>> {
        let mut f = Filters::new();
        if let Some(v) = &q.network_id {
            f = f.network_id(v);
        }
        if let Some(v) = &q.cidr {
            f = f.cidr(v);
        }
        if let Some(v) = &q.subnetpool_id {
            f = f.subnetpool_id(v);
        }
        if let Some(v) = &q.name {
            f = f.name(v);
        }
        f = f.tags(&q.tags);
        let own = self.own_project().await?;
        let r = self.api.list_subnets(&f).await;
        let subnets = r
            .map_err(err("list subnets".into()))?
            .into_iter()
            .map(subnet)
            .collect();
        // A network's subnets are as visible as the network the caller already holds; found by
        // anything else, only Kuryr's project's.
        let any_on_network = q.network_id.is_some() && q.tags.is_empty();
        Ok(keep_to(subnets, own.as_deref(), |s| {
            (&s.project_id, any_on_network)
        }))
    }

    pub async fn create_subnet(&self, s: &NewSubnet) -> Result<Subnet> {
        let r = self
            .api
            .create_subnet(&os::NewSubnet {
                network_id: s.network_id.clone(),
                ip_version: if s.cidr.addr().is_ipv6() { 6 } else { 4 },
                cidr: Some(s.cidr),
                name: Some(s.name.clone()),
                gateway_ip: s.gateway_ip.map(Some),
                enable_dhcp: Some(s.enable_dhcp),
                subnetpool_id: s.subnetpool_id.clone(),
                allocation_pools: (!s.allocation_pools.is_empty()).then(|| {
                    s.allocation_pools
                        .iter()
                        .map(|&(start, end)| os::AllocationPool { start, end })
                        .collect()
                }),
                ..Default::default()
            })
            .await;
        let context = format!("create subnet {} on network {}", s.cidr, s.network_id);
        match r {
            Ok(v) => Ok(subnet(v)),
            Err(e) if e.outcome_unknown() => {
                let own = self.own_project().await?;
                let found = self
                    .api
                    .list_subnets(&Filters::new().network_id(&s.network_id).cidr(&s.cidr))
                    .await;
                let found = found.map(|l| keep_to(l, own.as_deref(), |s| (&s.project_id, false)));
                Ok(subnet(made_all_the_same(
                    e,
                    found,
                    |s| &s.tags,
                    &[],
                    context,
                )?))
            }
            Err(e) => Err(err(context)(e)),
        }
    }

    pub async fn delete_subnet(&self, id: &str) -> Result<()> {
        gone_ok(
            self.api.delete_subnet(id).await,
            format!("delete subnet {id}"),
        )
    }

    /// Subnetpools named `name` carrying `tags`: Kuryr's project's, and (looked up by name only,
    /// an operator's or user's choice) those shared with it.
    pub async fn pools_by_name(&self, name: &str, tags: &[String]) -> Result<Vec<Pool>> {
        let own = self.own_project().await?;
        let r = self
            .api
            .list_subnetpools(&Filters::new().name(name).tags(tags))
            .await;
        let pools = r
            .map_err(err(format!("list subnetpools named {name}")))?
            .into_iter()
            .map(pool)
            .collect();
        let shared_ok = tags.is_empty();
        Ok(keep_to(pools, own.as_deref(), |p| {
            (&p.project_id, shared_ok && p.shared)
        }))
    }

    pub async fn pool(&self, id: &str) -> Result<Option<Pool>> {
        let r = self.api.get_subnetpool(id).await;
        Ok(optional(r, format!("show subnetpool {id}"))?.map(pool))
    }

    /// Creates a subnetpool carrying `tags` (tagged by the client right after, as networks).
    pub async fn create_pool(
        &self,
        name: &str,
        prefixes: &[IpNet],
        default_prefixlen: u8,
        shared: bool,
        tags: &[String],
    ) -> Result<Pool> {
        let r = self
            .api
            .create_subnetpool(&os::NewSubnetPool {
                name: name.to_string(),
                prefixes: prefixes.to_vec(),
                default_prefixlen: Some(default_prefixlen),
                shared: Some(shared),
                tags: (!tags.is_empty()).then(|| tags.to_vec()),
                ..Default::default()
            })
            .await;
        let context = format!("create subnetpool {name}");
        match r {
            Ok(p) => Ok(pool(p)),
            Err(e) if e.outcome_unknown() => {
                let own = self.own_project().await?;
                let found = self.api.list_subnetpools(&Filters::new().name(name)).await;
                let found = found.map(|l| keep_to(l, own.as_deref(), |p| (&p.project_id, false)));
                let mut p = pool(made_all_the_same(e, found, |p| &p.tags, tags, context)?);
                self.add_missing_tags(Kind::SubnetPool, &p.id, &mut p.tags, tags)
                    .await?;
                Ok(p)
            }
            Err(e) => Err(err(context)(e)),
        }
    }

    pub async fn delete_pool(&self, id: &str) -> Result<()> {
        gone_ok(
            self.api.delete_subnetpool(id).await,
            format!("delete subnetpool {id}"),
        )
    }

    pub async fn ports(&self, q: &PortQuery) -> Result<Vec<Port>> {
        let mut f = Filters::new();
        if let Some(v) = &q.network_id {
            f = f.network_id(v);
        }
        if let Some(v) = &q.mac_address {
            f = f.mac_address(v.to_string());
        }
        if let Some(v) = &q.name {
            f = f.name(v);
        }
        if let Some(v) = &q.device_owner {
            f = f.device_owner(v);
        }
        if let Some(v) = &q.host_id {
            f = f.binding_host_id(v);
        }
        for (s, ip) in &q.fixed_ips {
            f = f.fixed_ip(s.as_deref(), *ip);
        }
        f = f.tags(&q.tags);
        for id in &q.ids {
            f = f.id(id);
        }
        let own = self.own_project().await?;
        let r = self.api.list_ports(&f).await;
        let ports = r
            .map_err(err("list ports".into()))?
            .into_iter()
            .map(port)
            .collect();
        // Besides its own project's, only the ports Kuryr made in a project a CNI network names.
        Ok(keep_to(ports, own.as_deref(), |p| {
            (
                &p.project_id,
                crate::tags::has(&p.tags, crate::constants::TAG_PORT_PROJECT),
            )
        }))
    }

    pub async fn port(&self, id: &str) -> Result<Option<Port>> {
        let r = self.api.get_port(id).await;
        Ok(optional(r, format!("show port {id}"))?.map(port))
    }

    /// Creates a port carrying `p.tags` (in the create where Neutron allows it).
    pub async fn create_port(&self, p: &NewPort) -> Result<Port> {
        // The client carries the tags: in the body where Neutron applies them there
        // (`tag-ports-during-bulk-creation`), else right after, deleting the port if that fails.
        let r = self.api.create_port(&port_body(p)).await;
        Ok(port(r.map_err(err(format!(
            "create port on network {}",
            p.network_id
        )))?))
    }

    /// Creates several ports in one request (all or none), each carrying its tags (a port that
    /// cannot be tagged is deleted with the others).
    pub async fn create_ports(&self, ports: &[NewPort]) -> Result<Vec<Port>> {
        let bodies: Vec<os::NewPort> = ports.iter().map(port_body).collect();
        let what = format!(
            "create {} ports on network {}",
            ports.len(),
            ports.first().map_or("", |p| p.network_id.as_str())
        );
        let r = self.api.create_ports(&bodies).await;
        Ok(r.map_err(err(what))?.into_iter().map(port).collect())
    }

    pub async fn update_port(&self, id: &str, c: &PortChange) -> Result<Port> {
        let r = self
            .api
            .update_port(
                id,
                &os::PortUpdate {
                    name: c.name.clone(),
                    fixed_ips: c.fixed_ips.as_deref().map(fixed_ip_requests),
                    mac_address: c.mac_address,
                    admin_state_up: c.admin_state_up,
                    device_owner: c.device_owner.clone(),
                    device_id: c.device_id.clone(),
                    binding_host_id: c.host_id.clone(),
                    security_groups: c.security_groups.clone(),
                    port_security_enabled: c.port_security,
                    qos_policy_id: c.qos_policy.clone(),
                    dns_name: c.dns_name.clone(),
                    allowed_address_pairs: c.allowed_address_pairs.as_deref().map(pairs),
                    ..Default::default()
                },
            )
            .await;
        Ok(port(r.map_err(err(format!("update port {id}")))?))
    }

    /// Replaces a port's allowed address pairs.
    pub async fn set_address_pairs(&self, id: &str, pairs: Vec<AddressPair>) -> Result<Port> {
        let change = PortChange {
            allowed_address_pairs: Some(pairs),
            ..Default::default()
        };
        self.update_port(id, &change).await
    }

    /// Replaces a port's security groups.
    pub async fn set_security_groups(&self, id: &str, groups: Vec<String>) -> Result<Port> {
        let change = PortChange {
            security_groups: Some(groups),
            ..Default::default()
        };
        self.update_port(id, &change).await
    }

    /// Replaces a port's fixed IPs (`(subnet, address)`; no address: Neutron picks one).
    pub async fn set_fixed_ips(
        &self,
        id: &str,
        fixed_ips: Vec<(Option<String>, Option<IpAddr>)>,
    ) -> Result<Port> {
        let change = PortChange {
            fixed_ips: Some(fixed_ips),
            ..Default::default()
        };
        self.update_port(id, &change).await
    }

    pub async fn delete_port(&self, id: &str) -> Result<()> {
        gone_ok(self.api.delete_port(id).await, format!("delete port {id}"))
    }

    /// The ids of the QoS policies named `name` in Kuryr's project or shared with it.
    pub async fn qos_policies_by_name(&self, name: &str) -> Result<Vec<String>> {
        let own = self.own_project().await?;
        let r = self.api.list_qos_policies(&Filters::new().name(name)).await;
        let all = r.map_err(err(format!("list QoS policies named {name}")))?;
        let kept = keep_to(all, own.as_deref(), |q| (&q.project_id, q.shared));
        Ok(kept.into_iter().map(|q| q.id).collect())
    }

    /// The ids of the security groups named `name` in `project` (Kuryr's own when `None`).
    pub async fn security_groups_by_name(
        &self,
        name: &str,
        project: Option<&str>,
    ) -> Result<Vec<String>> {
        let own = self.own_project().await?;
        let mut filters = Filters::new().name(name);
        if let Some(p) = project.or(own.as_deref()) {
            filters = filters.project_id(p);
        }
        let r = self.api.list_security_groups(&filters).await;
        Ok(
            r.map_err(err(format!("list security groups named {name}")))?
                .into_iter()
                .map(|g| g.id)
                .collect(),
        )
    }

    pub async fn create_security_group(&self, name: &str, description: &str) -> Result<String> {
        let r = self
            .api
            .create_security_group(&os::NewSecurityGroup {
                name: name.to_string(),
                description: Some(description.to_string()),
                ..Default::default()
            })
            .await;
        Ok(r.map_err(err(format!("create security group {name}")))?.id)
    }

    pub async fn create_security_group_rule(&self, sg: &str, rule: &NewSgRule) -> Result<()> {
        let mut body = os::NewSecurityGroupRule::ingress(sg, rule.ethertype);
        body.protocol = Some(rule.protocol.to_string());
        if let Some((lo, hi)) = rule.port_range {
            body.port_range_min = Some(lo);
            body.port_range_max = Some(hi);
        }
        let r = self.api.create_security_group_rule(&body).await;
        r.map(|_| ()).map_err(err(format!(
            "create {} {} rule in security group {sg}",
            rule.ethertype, rule.protocol
        )))
    }

    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        gone_ok(
            self.api.delete_security_group(id).await,
            format!("delete security group {id}"),
        )
    }

    pub async fn trunk_add_subport(&self, trunk: &str, port_id: &str, vlan: u16) -> Result<()> {
        let r = self
            .api
            .add_subports(trunk, &[os::SubPort::vlan(port_id, u32::from(vlan))])
            .await;
        r.map(|_| ()).map_err(err(format!(
            "add port {port_id} to trunk {trunk} with vlan {vlan}"
        )))
    }

    pub async fn trunk_remove_subport(&self, trunk: &str, port_id: &str) -> Result<()> {
        let r = self
            .api
            .remove_subports(trunk, &[port_id.to_string()])
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(err(format!("remove port {port_id} from trunk {trunk}"))(e)),
        }
    }
}
