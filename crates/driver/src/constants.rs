//! Every option key, tag and name the driver reads or writes, in one place.
//!
//! The tag and name formats are those of the Python kuryr-libnetwork, so that Neutron resources made
//! by either daemon are understood by the other.

/// Network tag prefix holding the first 32 characters of a Docker ID (networks and ports).
pub const TAG_LH: &str = "kuryr.net.uuid.lh:";
/// Network tag prefix holding characters 32..64 of a Docker ID (absent for 25-char swarm IDs).
pub const TAG_UH: &str = "kuryr.net.uuid.uh:";
/// Tag on an adopted network: `kuryr.net.existing:<first 12 chars of the Docker network ID>`.
pub const TAG_NET_EXISTING: &str = "kuryr.net.existing:";
/// Number of Docker network ID characters in [`TAG_NET_EXISTING`].
pub const NET_EXISTING_ID_LEN: usize = 12;
/// On a network Kuryr made for a Docker network that was removed while other Docker networks (on
/// this host or another) still used it: whichever of them leaves last deletes the network.
pub const TAG_NET_MADE: &str = "kuryr.net.made";
/// On a network made (or adopted) by a swarm manager's AllocateNetwork for a swarm-scope Docker
/// network: the nodes' CreateNetwork and DeleteNetwork use it and leave it, FreeNetwork (the
/// manager, at `docker network rm`) deletes it.
pub const TAG_NET_SWARM: &str = "kuryr.net.swarm";
/// Tag on an adopted (user-created) port.
pub const TAG_PORT_EXISTING: &str = "kuryr.port.existing";
/// On a port CreateEndpoint made because another IPAM driver (Docker's own) gave the address:
/// no ReleaseAddress will reach Kuryr for it, so DeleteEndpoint deletes it.
pub const TAG_PORT_FOREIGN_IPAM: &str = "kuryr.port.foreign_ipam";
/// On a port made in a project a CNI network named (`project`): never pooled (the pools hold
/// Kuryr's own project's ports), deleted at release.
pub const TAG_PORT_PROJECT: &str = "kuryr.port.project";
/// Tag on an adopted subnetpool.
pub const TAG_SUBNETPOOL_EXISTING: &str = "kuryr.subnetpool.existing";

/// Name prefix of Neutron networks created by Kuryr (`kuryr-net-<first 8 of the Docker ID>`).
pub const NET_NAME_PREFIX: &str = "kuryr-net-";
/// Docker network ID characters used in the network name.
pub const NET_NAME_ID_LEN: usize = 8;
/// Name prefix of Neutron subnets created by Kuryr (`kuryr-subnet-<pool cidr>`).
pub const SUBNET_NAME_PREFIX: &str = "kuryr-subnet-";
/// Name of a port created by IPAM before the endpoint exists.
pub const UNBOUND_PORT_NAME: &str = "kuryr-unbound-port";
/// Name of a port waiting in this host's port pool.
pub const POOL_PORT_NAME: &str = "kuryr-pool-port";
/// Tag prefix of a pooled port: `kuryr.pool:<host>`, the host whose pool it belongs to (it stays
/// while a container holds the port, which goes back to that pool when released).
pub const TAG_POOL: &str = "kuryr.pool:";
/// CNI attachments: the port's container id, interface name and CNI network name, so that DEL
/// after a restart and GC find ports by what the runtime knows.
pub const TAG_CNI_CONTAINER: &str = "kuryr.cni.container:";
pub const TAG_CNI_IFNAME: &str = "kuryr.cni.ifname:";
pub const TAG_CNI_NETWORK: &str = "kuryr.cni.network:";
/// The pod a CNI attachment is for (from `CNI_ARGS`), for operators reading Neutron.
pub const TAG_K8S_NAMESPACE: &str = "kuryr.k8s.namespace:";
pub const TAG_K8S_POD: &str = "kuryr.k8s.pod:";
pub const TAG_K8S_POD_UID: &str = "kuryr.k8s.pod_uid:";
/// Every tag prefix that belongs to the endpoint holding a port (gone when it leaves).
pub const CNI_TAG_PREFIXES: [&str; 6] = [
    TAG_CNI_CONTAINER,
    TAG_CNI_IFNAME,
    TAG_CNI_NETWORK,
    TAG_K8S_NAMESPACE,
    TAG_K8S_POD,
    TAG_K8S_POD_UID,
];
/// Neutron's longest tag.
pub const MAX_TAG_LEN: usize = 255;
/// Name of a port reserving a Docker `--aux-address` (never handed to a container).
pub const AUX_PORT_NAME: &str = "kuryr-aux-port";
/// Suffix of endpoint port names (`<EndpointID>-port`).
pub const PORT_NAME_SUFFIX: &str = "-port";
/// `device_owner` of ports Kuryr binds; also the tag on IPAM-created ports.
pub const DEVICE_OWNER: &str = "compute:kuryr";
/// Suffix of the security group holding exposed ports (`<port id>-exposed_ports`).
pub const SG_EXPOSE_SUFFIX: &str = "-exposed_ports";
/// Description of that security group.
pub const SG_EXPOSE_DESCRIPTION: &str = "Docker exposed ports created by Kuryr.";
/// Addresses left to Neutron's own ports (DHCP, metadata, router) at the top of a subnet whose
/// addresses Docker's own IPAM picks, lowest first: Neutron picks its addresses at random.
pub const NEUTRON_OWN_ADDRESSES: u32 = 4;
/// `device_owner` prefix of Neutron's own ports (DHCP, metadata, router): never adopted.
pub const NEUTRON_OWNER_PREFIX: &str = "network:";

// Docker's own option keys are the wire layer's: `kuryr_plugin_api::keys`.

// Kuryr's own option keys (`-o` and `--ipam-opt`).
pub const OPT_NET_UUID: &str = "neutron.net.uuid";
pub const OPT_NET_NAME: &str = "neutron.net.name";
pub const OPT_NET_SHARED: &str = "neutron.net.shared";
pub const OPT_SUBNET_UUID: &str = "neutron.subnet.uuid";
pub const OPT_SUBNET_NAME: &str = "neutron.subnet.name";
pub const OPT_SUBNET_V6_UUID: &str = "neutron.subnet.v6.uuid";
pub const OPT_SUBNET_V6_NAME: &str = "neutron.subnet.v6.name";
pub const OPT_POOL_UUID: &str = "neutron.pool.uuid";
pub const OPT_POOL_NAME: &str = "neutron.pool.name";
pub const OPT_POOL_V6_UUID: &str = "neutron.pool.v6.uuid";
pub const OPT_POOL_V6_NAME: &str = "neutron.pool.v6.name";
/// A container port's security groups (names or ids, comma-separated): a network's `-o`
/// default, or one endpoint's `--driver-opt` (`docker network connect`).
pub const OPT_PORT_SECURITY_GROUPS: &str = "neutron.port.security_groups";
/// A container port's port security (`true`/`false`), as [`OPT_PORT_SECURITY_GROUPS`].
pub const OPT_PORT_SECURITY: &str = "neutron.port.port_security";
/// A container port's QoS policy (name or id), as [`OPT_PORT_SECURITY_GROUPS`].
pub const OPT_PORT_QOS_POLICY: &str = "neutron.port.qos_policy";
/// A container port's DNS name (Neutron's `dns_name`): one endpoint's `--driver-opt` only.
pub const OPT_PORT_DNS_NAME: &str = "neutron.port.dns_name";

/// A network's default security group for its Docker network's ports:
/// `kuryr.port.sg.<12 characters of the Docker network id>:<group id>` (one tag per group), so
/// that a restarted daemon and other hosts apply it too.
pub const TAG_NET_PORT_SG: &str = "kuryr.port.sg.";
/// A network's default QoS policy for its Docker network's ports:
/// `kuryr.port.qos.<12 characters of the Docker network id>:<policy id>`.
pub const TAG_NET_PORT_QOS: &str = "kuryr.port.qos.";
/// The network's ports of that Docker network have no port security:
/// `kuryr.port.nosecurity.<12 characters of the Docker network id>`.
pub const TAG_NET_PORT_NO_SECURITY: &str = "kuryr.port.nosecurity.";
/// Docker's `-o com.docker.network.driver.mtu` for the Docker network's containers, below the
/// Neutron network's own: `kuryr.mtu.<12 characters of the Docker network id>:<mtu>`.
pub const TAG_NET_MTU: &str = "kuryr.mtu.";
/// The Docker network is `--internal`: Join answers no gateway, so its containers get no default
/// route through it (as Docker's bridge driver does): `kuryr.internal.<12 characters of the
/// Docker network id>`.
pub const TAG_NET_INTERNAL: &str = "kuryr.internal.";
/// A container port whose security settings were chosen for it: reset before a pool hands it on.
pub const TAG_PORT_SETTINGS: &str = "kuryr.port.settings";

/// First octets of the MACs Docker generates for endpoints (`02:42:…`).
pub const DOCKER_MAC_PREFIX: [u8; 2] = [0x02, 0x42];
/// Plugin name Docker knows us by.
pub const PLUGIN_NAME: &str = "kuryr";
/// IPv4 placeholder answered for a gateway request on a subnet without a gateway.
pub const NO_GATEWAY_V4: &str = "0.0.0.0/0";
/// IPv6 placeholder answered for a gateway request on a subnet without a gateway.
pub const NO_GATEWAY_V6: &str = "::/0";

/// Name of a Kuryr-created network for a Docker network ID.
pub fn network_name(docker_network_id: &str) -> String {
    let n = docker_network_id.len().min(NET_NAME_ID_LEN);
    format!("{NET_NAME_PREFIX}{}", &docker_network_id[..n])
}

/// Name of a Kuryr-created subnet for the pool CIDR as Docker sent it.
pub fn subnet_name(pool: &str) -> String {
    format!("{SUBNET_NAME_PREFIX}{pool}")
}

/// Name of a Kuryr-created subnetpool.
pub fn subnetpool_name(prefix: &str, cidr: &str) -> String {
    format!("{prefix}-{cidr}")
}

/// Name of an endpoint's port.
pub fn port_name(endpoint_id: &str) -> String {
    format!("{endpoint_id}{PORT_NAME_SUFFIX}")
}

/// Name of the security group holding a port's exposed ports.
pub fn sg_expose_name(port_id: &str) -> String {
    format!("{port_id}{SG_EXPOSE_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_python_original() {
        let id = "f3d5c7b1a2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4a6";
        assert_eq!(network_name(id), "kuryr-net-f3d5c7b1");
        assert_eq!(subnet_name("10.1.0.0/24"), "kuryr-subnet-10.1.0.0/24");
        assert_eq!(
            subnetpool_name(
                kuryr_config::defaults::SUBNETPOOL_NAME_PREFIX,
                "10.1.0.0/24"
            ),
            "kuryrPool-10.1.0.0/24"
        );
        assert_eq!(port_name("abc"), "abc-port");
        assert_eq!(sg_expose_name("p1"), "p1-exposed_ports");
        assert_eq!(network_name("short"), "kuryr-net-short");
    }
}
