//! One trait for Neutron's resource collections, so each verb (list, show, create, update,
//! delete) is written once, generically, instead of once per resource.

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use super::types::*;

/// The update body of a resource Kuryr never updates: no value exists, so no such call can be
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoUpdate {}

impl Serialize for NoUpdate {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        match *self {}
    }
}

/// A Neutron resource: where it lives in the API and what its request bodies are.
pub trait Resource: DeserializeOwned + Send + Sync + 'static {
    /// The JSON key of one resource (`security_group`).
    const SINGULAR: &'static str;
    /// The JSON key of a listing (`security_groups`).
    const PLURAL: &'static str;
    /// The URL path segment (`security-groups`).
    const COLLECTION: &'static str;
    /// The tag collection, for resources that carry tags.
    const KIND: Option<ResourceKind>;
    /// Body of `POST /v2.0/{COLLECTION}`.
    type Create: Serialize + Send + Sync;
    /// Body of `PUT /v2.0/{COLLECTION}/{id}`.
    type Update: Serialize + Send + Sync;

    fn id(&self) -> &str;
    /// Replace the tags (after tagging a new resource); nothing for untagged resources.
    fn set_tags(&mut self, tags: Vec<String>);
}

macro_rules! resource {
    ($t:ty, $singular:literal, $plural:literal, $collection:literal, $kind:expr,
     $create:ty, $update:ty, $($tags:ident)?) => {
        impl Resource for $t {
            const SINGULAR: &'static str = $singular;
            const PLURAL: &'static str = $plural;
            const COLLECTION: &'static str = $collection;
            const KIND: Option<ResourceKind> = $kind;
            type Create = $create;
            type Update = $update;

            fn id(&self) -> &str {
                &self.id
            }

            #[allow(unused_variables)]
            fn set_tags(&mut self, tags: Vec<String>) {
                $(self.$tags = tags;)?
            }
        }
    };
}

resource!(
    Network,
    "network",
    "networks",
    "networks",
    Some(ResourceKind::Network),
    NewNetwork,
    NetworkUpdate,
    tags
);
resource!(
    Subnet,
    "subnet",
    "subnets",
    "subnets",
    Some(ResourceKind::Subnet),
    NewSubnet,
    SubnetUpdate,
    tags
);
resource!(
    SubnetPool,
    "subnetpool",
    "subnetpools",
    "subnetpools",
    Some(ResourceKind::SubnetPool),
    NewSubnetPool,
    SubnetPoolUpdate,
    tags
);
resource!(
    Port,
    "port",
    "ports",
    "ports",
    Some(ResourceKind::Port),
    NewPort,
    PortUpdate,
    tags
);
resource!(
    SecurityGroup,
    "security_group",
    "security_groups",
    "security-groups",
    Some(ResourceKind::SecurityGroup),
    NewSecurityGroup,
    NoUpdate,
    tags
);
resource!(
    SecurityGroupRule,
    "security_group_rule",
    "security_group_rules",
    "security-group-rules",
    None,
    NewSecurityGroupRule,
    NoUpdate,
);
resource!(
    QosPolicy,
    "policy",
    "policies",
    "qos/policies",
    None,
    NoUpdate,
    NoUpdate,
);
resource!(
    Trunk,
    "trunk",
    "trunks",
    "trunks",
    Some(ResourceKind::Trunk),
    NewTrunk,
    NoUpdate,
    tags
);

#[cfg(test)]
mod tests {
    use super::*;

    fn names<R: Resource>() -> (&'static str, &'static str, Option<ResourceKind>) {
        (R::SINGULAR, R::COLLECTION, R::KIND)
    }

    #[test]
    fn tagged_resources_agree_with_their_resource_kind() {
        for (singular, collection, kind) in [
            names::<Network>(),
            names::<Subnet>(),
            names::<SubnetPool>(),
            names::<Port>(),
            names::<SecurityGroup>(),
            names::<Trunk>(),
        ] {
            let kind = kind.expect("tagged");
            assert_eq!(kind.singular(), singular);
            assert_eq!(kind.collection(), collection);
        }
        assert_eq!(names::<SecurityGroupRule>().2, None);
        let mut net = Network::default();
        net.set_tags(vec!["x".into()]);
        assert_eq!(net.tags, ["x"]);
    }
}
