//! The Neutron v2.0 API as Kuryr uses it: typed resources, the [`NeutronApi`] trait, its HTTP
//! implementation [`HttpNeutron`] and (feature `fake`) an in-memory [`FakeNeutron`].

mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod http;
mod observe;
mod resource;
pub mod types;

use async_trait::async_trait;

pub use error::{ErrorContext, NeutronError, Result};
#[cfg(any(test, feature = "fake"))]
pub use fake::FakeNeutron;
pub(crate) use http::{describe_reqwest, error_message};
pub use http::{HttpNeutron, RetryPolicy};
pub use observe::{request_resource, RequestObserver, RequestOutcome};
pub use resource::{NoUpdate, Resource};
pub use types::*;

/// Extension aliases Kuryr looks for.
pub mod extensions {
    /// Tags on all standard-attribute resources (networks, subnets, pools, ports, SGs, trunks).
    pub const STANDARD_ATTR_TAG: &str = "standard-attr-tag";
    /// `POST /{resource}/{id}/tags` adds several tags at once, keeping the others. It does not
    /// let tags into a create's body: Neutron (29 at least) refuses `tags` when creating a
    /// network, subnet or subnetpool.
    pub const TAG_CREATION: &str = "tag-creation";
    /// Legacy tag extensions (pre standard-attr-tag).
    pub const TAG: &str = "tag";
    pub const TAG_EXT: &str = "tag-ext";
    pub const PORT_BINDING: &str = "binding";
    pub const SUBNET_ALLOCATION: &str = "subnet_allocation";
    pub const SECURITY_GROUP: &str = "security-group";
    pub const PORT_SECURITY: &str = "port-security";
    pub const ALLOWED_ADDRESS_PAIRS: &str = "allowed-address-pairs";
    pub const TRUNK: &str = "trunk";
    pub const TRUNK_DETAILS: &str = "trunk-details";
    pub const PAGINATION: &str = "pagination";
}

/// Everything Kuryr asks of Neutron. `get_*` and `delete_*` of a missing resource fail with
/// [`NeutronError::NotFound`]; callers that tear down treat that as done.
#[async_trait]
pub trait NeutronApi: Send + Sync {
    // Networks.
    async fn list_networks(&self, filters: &Filters) -> Result<Vec<Network>>;
    async fn get_network(&self, id: &str) -> Result<Network>;
    async fn create_network(&self, network: &NewNetwork) -> Result<Network>;
    async fn update_network(&self, id: &str, update: &NetworkUpdate) -> Result<Network>;
    async fn delete_network(&self, id: &str) -> Result<()>;

    // Subnets.
    async fn list_subnets(&self, filters: &Filters) -> Result<Vec<Subnet>>;
    async fn get_subnet(&self, id: &str) -> Result<Subnet>;
    async fn create_subnet(&self, subnet: &NewSubnet) -> Result<Subnet>;
    async fn update_subnet(&self, id: &str, update: &SubnetUpdate) -> Result<Subnet>;
    async fn delete_subnet(&self, id: &str) -> Result<()>;

    // Subnet pools.
    async fn list_subnetpools(&self, filters: &Filters) -> Result<Vec<SubnetPool>>;
    async fn get_subnetpool(&self, id: &str) -> Result<SubnetPool>;
    async fn create_subnetpool(&self, pool: &NewSubnetPool) -> Result<SubnetPool>;
    async fn update_subnetpool(&self, id: &str, update: &SubnetPoolUpdate) -> Result<SubnetPool>;
    async fn delete_subnetpool(&self, id: &str) -> Result<()>;

    // Ports.
    async fn list_ports(&self, filters: &Filters) -> Result<Vec<Port>>;
    async fn get_port(&self, id: &str) -> Result<Port>;
    async fn create_port(&self, port: &NewPort) -> Result<Port>;
    /// One bulk request; Neutron creates all or none.
    async fn create_ports(&self, ports: &[NewPort]) -> Result<Vec<Port>>;
    async fn update_port(&self, id: &str, update: &PortUpdate) -> Result<Port>;
    async fn delete_port(&self, id: &str) -> Result<()>;

    // Tags (any [`ResourceKind`]). A create's `tags` are set by the create itself (over HTTP a
    // second request, as Neutron refuses them in the body; the new resource is deleted again
    // when that fails).
    async fn add_tag(&self, kind: ResourceKind, id: &str, tag: &str) -> Result<()>;
    /// Adds several tags in one request, leaving the others alone; needs the
    /// [`extensions::TAG_CREATION`] extension (without it Neutron answers 404).
    async fn add_tags(&self, kind: ResourceKind, id: &str, tags: &[String]) -> Result<()>;
    /// Removing a tag the resource does not have is [`NeutronError::NotFound`].
    async fn remove_tag(&self, kind: ResourceKind, id: &str, tag: &str) -> Result<()>;
    /// Replace the whole tag set; returns the tags Neutron now holds.
    async fn replace_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        tags: &[String],
    ) -> Result<Vec<String>>;

    // Security groups and rules.
    async fn list_security_groups(&self, filters: &Filters) -> Result<Vec<SecurityGroup>>;
    /// QoS policies (`qos` extension).
    async fn list_qos_policies(&self, filters: &Filters) -> Result<Vec<QosPolicy>>;
    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup>;
    async fn create_security_group(&self, group: &NewSecurityGroup) -> Result<SecurityGroup>;
    async fn delete_security_group(&self, id: &str) -> Result<()>;
    async fn list_security_group_rules(&self, filters: &Filters) -> Result<Vec<SecurityGroupRule>>;
    async fn create_security_group_rule(
        &self,
        rule: &NewSecurityGroupRule,
    ) -> Result<SecurityGroupRule>;
    async fn delete_security_group_rule(&self, id: &str) -> Result<()>;

    // Trunks.
    async fn list_trunks(&self, filters: &Filters) -> Result<Vec<Trunk>>;
    async fn get_trunk(&self, id: &str) -> Result<Trunk>;
    async fn create_trunk(&self, trunk: &NewTrunk) -> Result<Trunk>;
    async fn delete_trunk(&self, id: &str) -> Result<()>;
    /// Returns the trunk with its new subport list.
    async fn add_subports(&self, trunk_id: &str, subports: &[SubPort]) -> Result<Trunk>;
    /// Removes subports by port id; returns the trunk with its new subport list.
    async fn remove_subports(&self, trunk_id: &str, port_ids: &[String]) -> Result<Trunk>;

    /// The API extensions the cloud offers.
    async fn list_extensions(&self) -> Result<Vec<Extension>>;

    /// The project the client's token is scoped to; `None` without Keystone (noauth).
    async fn token_project(&self) -> Result<Option<String>> {
        Ok(None)
    }
}
