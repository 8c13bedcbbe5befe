//! A container port's settings: `-o neutron.port.security_groups=<names or ids>`,
//! `-o neutron.port.port_security=false` and `-o neutron.port.qos_policy=<name or id>` on
//! `docker network create` (the network's default), or the same keys as `--driver-opt` of
//! `docker network connect` (one endpoint's, overriding the network's), and
//! `--driver-opt neutron.port.dns_name=<name>` (one endpoint's only). Without them a port gets
//! what Neutron gives (the project's default group, no policy, no DNS name).
//!
//! The network's default is kept as tags on its Neutron network, keyed by the Docker network
//! (several Docker networks may share one Neutron network), so that a restarted daemon and
//! other hosts apply it too; `docker network rm` removes them with the Docker network's other
//! tags.

use kuryr_plugin_api::{DockerId, Options};

use super::options::{check_keys, string_value, ENDPOINT_KEYS};
use super::KuryrDriver;
use crate::constants::*;
use crate::core::PortSettings;
use crate::error::{DriverError, Result};
use crate::neutron::{looks_like_uuid, Net};

/// Characters of the Docker network id in the tags (as [`TAG_NET_EXISTING`]'s).
const ID_LEN: usize = NET_EXISTING_ID_LEN;

/// The settings as asked for: groups by name or id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PortOptions {
    pub security_groups: Option<Vec<String>>,
    pub port_security: Option<bool>,
    pub qos_policy: Option<String>,
    pub dns_name: Option<String>,
}

impl PortOptions {
    pub(crate) fn from_wire(opts: &Options) -> Result<Self> {
        let security_groups = string_value(opts, OPT_PORT_SECURITY_GROUPS).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let port_security = match string_value(opts, OPT_PORT_SECURITY) {
            Some(v) => Some(kuryr_types::parse_bool(&v).ok_or_else(|| {
                DriverError::InvalidRequest(format!(
                    "option {OPT_PORT_SECURITY} must be a boolean, not {v:?}"
                ))
            })?),
            None => None,
        };
        if let Some(g) = &security_groups {
            if g.is_empty() {
                return Err(DriverError::InvalidRequest(format!(
                    "option {OPT_PORT_SECURITY_GROUPS} names no group"
                )));
            }
            if port_security == Some(false) {
                return Err(DriverError::InvalidRequest(format!(
                    "options {OPT_PORT_SECURITY_GROUPS} and {OPT_PORT_SECURITY}=false exclude each \
                     other: a port without port security has no security groups"
                )));
            }
        }
        let dns_name = string_value(opts, OPT_PORT_DNS_NAME);
        if let Some(d) = &dns_name {
            check_dns_label(d)?;
        }
        Ok(PortOptions {
            security_groups,
            port_security,
            qos_policy: string_value(opts, OPT_PORT_QOS_POLICY),
            dns_name,
        })
    }

    /// The network's defaults: a DNS name names one container, not a network's.
    pub(crate) fn network_from_wire(opts: &Options) -> Result<Self> {
        let o = Self::from_wire(opts)?;
        if o.dns_name.is_some() {
            return Err(DriverError::InvalidRequest(format!(
                "option {OPT_PORT_DNS_NAME} names one container: give it with \
                 `docker network connect --driver-opt {OPT_PORT_DNS_NAME}=<name>`"
            )));
        }
        Ok(o)
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == PortOptions::default()
    }
}

impl KuryrDriver {
    /// The settings with groups as ids (a name must name exactly one group).
    pub(crate) async fn resolve_port_options(&self, o: &PortOptions) -> Result<PortSettings> {
        let security_groups = match &o.security_groups {
            Some(list) => {
                let mut ids = Vec::with_capacity(list.len());
                for g in list {
                    ids.push(self.security_group_id(g, None).await?);
                }
                Some(ids)
            }
            None => None,
        };
        let qos_policy = match &o.qos_policy {
            Some(q) => Some(self.qos_policy_id(q).await?),
            None => None,
        };
        Ok(PortSettings {
            security_groups,
            port_security: o.port_security,
            qos_policy,
            dns_name: o.dns_name.clone(),
        })
    }

    /// A QoS policy's id, given its id or its unique name.
    async fn qos_policy_id(&self, q: &str) -> Result<String> {
        if looks_like_uuid(q) {
            return Ok(q.to_string());
        }
        let found = self.nt.qos_policies_by_name(q).await?;
        the_one_named(found, q, ("QoS policy", "QoS policies", "policy"), "")
    }

    /// A security group's id, given its id or its unique name (within `project` when given).
    pub(crate) async fn security_group_id(&self, g: &str, project: Option<&str>) -> Result<String> {
        if looks_like_uuid(g) {
            return Ok(g.to_string());
        }
        let found = self.nt.security_groups_by_name(g, project).await?;
        let within = project
            .map(|p| format!(" in project {p}"))
            .unwrap_or_default();
        the_one_named(
            found,
            g,
            ("security group", "security groups", "group"),
            &within,
        )
    }

    /// The settings for an endpoint of `docker_net` on `net`: the endpoint's own options where
    /// it has them, else the network's (from its tags).
    pub(crate) async fn endpoint_port_settings(
        &self,
        docker_net: &DockerId,
        net: &Net,
        endpoint_options: &Options,
    ) -> Result<Option<PortSettings>> {
        check_keys(endpoint_options, ENDPOINT_KEYS, "endpoint")?;
        let own = PortOptions::from_wire(endpoint_options)?;
        let mut settings = network_port_settings(docker_net, &net.tags);
        if !own.is_empty() {
            let own = self.resolve_port_options(&own).await?;
            if own.port_security == Some(false) {
                // No port security: the network's groups cannot apply.
                settings.security_groups = None;
            }
            if own.security_groups.is_some() {
                // Groups need port security, whatever the network's default says.
                settings.port_security = None;
            }
            settings.security_groups = own.security_groups.or(settings.security_groups);
            settings.port_security = own.port_security.or(settings.port_security);
            settings.qos_policy = own.qos_policy.or(settings.qos_policy);
            settings.dns_name = own.dns_name;
        }
        Ok((!settings.is_empty()).then_some(settings))
    }
}

/// Docker's `-o com.docker.network.driver.mtu`, checked against the Neutron network's MTU
/// (a larger one would have the network drop what the container sends).
pub(crate) fn wanted_mtu(generic: &Options) -> Result<Option<u32>> {
    let Some(v) = string_value(generic, kuryr_plugin_api::keys::MTU) else {
        return Ok(None);
    };
    match v.parse::<u32>() {
        Ok(m) if (68..=65535).contains(&m) => Ok(Some(m)),
        _ => Err(DriverError::InvalidRequest(format!(
            "option {} must be an MTU (68 to 65535), not {v:?}",
            kuryr_plugin_api::keys::MTU
        ))),
    }
}

/// Refuses an MTU above the Neutron network's.
pub(crate) fn check_mtu(mtu: u32, net: &Net) -> Result<()> {
    match net.mtu {
        Some(n) if mtu > n => Err(DriverError::InvalidRequest(format!(
            "MTU {mtu} is larger than neutron network {}'s MTU {n}: its packets would be dropped",
            net.id
        ))),
        _ => Ok(()),
    }
}

/// The tag that keeps a Docker network's MTU on its Neutron network.
pub(crate) fn mtu_tag(docker_net: &DockerId, mtu: u32) -> String {
    format!("{TAG_NET_MTU}{}:{mtu}", docker_net.short(ID_LEN))
}

/// The Docker network's own MTU, read back from the Neutron network's tags.
pub(crate) fn network_mtu(docker_net: &DockerId, tags: &[String]) -> Option<u32> {
    let prefix = format!("{TAG_NET_MTU}{}:", docker_net.short(ID_LEN));
    tags.iter()
        .find_map(|t| t.strip_prefix(&prefix)?.parse().ok())
}

/// The tag that marks a Docker network `--internal` on its Neutron network.
pub(crate) fn internal_tag(docker_net: &DockerId) -> String {
    format!("{TAG_NET_INTERNAL}{}", docker_net.short(ID_LEN))
}

/// Whether the Docker network is `--internal`, read back from its Neutron network's tags.
pub(crate) fn network_is_internal(docker_net: &DockerId, tags: &[String]) -> bool {
    tags.contains(&internal_tag(docker_net))
}

/// The id of the one resource named `name` among `found`; else what went wrong, with the kind's
/// (singular, plural, short) names and where it was looked for.
fn the_one_named(
    found: Vec<String>,
    name: &str,
    (one, many, short): (&str, &str, &str),
    within: &str,
) -> Result<String> {
    match found.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(DriverError::NotFound(format!(
            "{one} {name:?}{within} does not exist"
        ))),
        _ => Err(DriverError::Conflict(format!(
            "{} {many}{within} are named {name:?}: give the {short}'s id",
            found.len()
        ))),
    }
}

/// The tags that keep a Docker network's port settings on its Neutron network.
pub(crate) fn port_settings_tags(docker_net: &DockerId, s: &PortSettings) -> Vec<String> {
    let id = docker_net.short(ID_LEN);
    let mut t: Vec<String> = s
        .security_groups
        .iter()
        .flatten()
        .map(|g| format!("{TAG_NET_PORT_SG}{id}:{g}"))
        .collect();
    if s.port_security == Some(false) {
        t.push(format!("{TAG_NET_PORT_NO_SECURITY}{id}"));
    }
    if let Some(q) = &s.qos_policy {
        t.push(format!("{TAG_NET_PORT_QOS}{id}:{q}"));
    }
    t
}

/// Whether a network tag keeps a port setting of this Docker network.
pub(crate) fn is_port_settings_tag_of(docker_net: &DockerId, tag: &str) -> bool {
    let id = docker_net.short(ID_LEN);
    let keyed = |prefix: &str| {
        tag.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(id))
            .is_some_and(|r| r.starts_with(':'))
    };
    keyed(TAG_NET_PORT_SG)
        || keyed(TAG_NET_PORT_QOS)
        || tag == format!("{TAG_NET_PORT_NO_SECURITY}{id}")
        || tag == internal_tag(docker_net)
        || tag
            .strip_prefix(TAG_NET_MTU)
            .and_then(|r| r.strip_prefix(id))
            .is_some_and(|r| r.starts_with(':'))
}

/// The Docker network's port settings, read back from its Neutron network's tags.
pub(crate) fn network_port_settings(docker_net: &DockerId, tags: &[String]) -> PortSettings {
    let id = docker_net.short(ID_LEN);
    let prefix = format!("{TAG_NET_PORT_SG}{id}:");
    let groups: Vec<String> = tags
        .iter()
        .filter_map(|t| t.strip_prefix(&prefix).map(str::to_string))
        .collect();
    let no_security = tags.contains(&format!("{TAG_NET_PORT_NO_SECURITY}{id}"));
    let qos_prefix = format!("{TAG_NET_PORT_QOS}{id}:");
    PortSettings {
        security_groups: (!groups.is_empty()).then_some(groups),
        port_security: no_security.then_some(false),
        qos_policy: tags
            .iter()
            .find_map(|t| t.strip_prefix(&qos_prefix).map(str::to_string)),
        dns_name: None,
    }
}

/// A DNS label as Neutron takes a port's `dns_name`: letters, digits and hyphens, 1 to 63, not
/// starting or ending with a hyphen.
fn check_dns_label(d: &str) -> Result<()> {
    let ok = d.len() <= 63
        && !d.starts_with('-')
        && !d.ends_with('-')
        && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DriverError::InvalidRequest(format!(
            "option {OPT_PORT_DNS_NAME} must be a DNS label (letters, digits, hyphens; at most \
             63), not {d:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net_id() -> DockerId {
        "ab".repeat(32).parse().unwrap()
    }

    #[test]
    fn options_parse_and_refuse_contradictions() {
        let o = Options::new()
            .with(OPT_PORT_SECURITY_GROUPS, " web, db ,")
            .with(OPT_PORT_SECURITY, "true");
        let p = PortOptions::from_wire(&o).unwrap();
        assert_eq!(
            p.security_groups,
            Some(vec!["web".to_string(), "db".to_string()])
        );
        assert_eq!(p.port_security, Some(true));
        assert!(PortOptions::from_wire(&Options::new()).unwrap().is_empty());
        for (k, v, msg) in [
            (OPT_PORT_SECURITY, "maybe", "must be a boolean"),
            (OPT_PORT_SECURITY_GROUPS, ",", "names no group"),
        ] {
            let e = PortOptions::from_wire(&Options::new().with(k, v)).unwrap_err();
            assert!(e.to_string().contains(msg), "{e}");
        }
        let dns = Options::new().with(OPT_PORT_DNS_NAME, "web-1");
        assert_eq!(
            PortOptions::from_wire(&dns).unwrap().dns_name.as_deref(),
            Some("web-1")
        );
        let e = PortOptions::network_from_wire(&dns).unwrap_err();
        assert!(e.to_string().contains("names one container"), "{e}");
        let e = PortOptions::from_wire(&Options::new().with(OPT_PORT_DNS_NAME, "a b")).unwrap_err();
        assert!(e.to_string().contains("must be a DNS label"), "{e}");
        let both = Options::new()
            .with(OPT_PORT_SECURITY_GROUPS, "web")
            .with(OPT_PORT_SECURITY, false);
        let e = PortOptions::from_wire(&both).unwrap_err();
        assert!(e.to_string().contains("exclude each other"), "{e}");
    }

    #[test]
    fn settings_round_trip_through_tags_of_their_docker_network_only() {
        let (a, b) = (net_id(), "cd".repeat(32).parse::<DockerId>().unwrap());
        let g = "0b5c6f36-6a5e-4a39-9c1c-1a2b3c4d5e6f".to_string();
        let s = PortSettings {
            security_groups: Some(vec![g.clone()]),
            qos_policy: Some(g.clone()),
            ..Default::default()
        };
        let mut tags = port_settings_tags(&a, &s);
        tags.extend(port_settings_tags(
            &b,
            &PortSettings {
                port_security: Some(false),
                ..Default::default()
            },
        ));
        assert_eq!(network_port_settings(&a, &tags), s);
        assert_eq!(network_port_settings(&b, &tags).port_security, Some(false));
        assert!(network_port_settings(&b, &tags).security_groups.is_none());
        assert!(tags.iter().all(|t| t.len() <= MAX_TAG_LEN));
        // The group's tag and the policy's.
        assert_eq!(
            tags.iter()
                .filter(|t| is_port_settings_tag_of(&a, t))
                .count(),
            2
        );
        assert_eq!(
            tags.iter()
                .filter(|t| is_port_settings_tag_of(&b, t))
                .count(),
            1
        );
        assert!(looks_like_uuid(&g));
        assert!(!looks_like_uuid("web"));
    }
}
