//! Docker's option keys, method paths and protocol constants, in one place.
//!
//! Kuryr's own option names (`neutron.net.uuid`, ...) live in `kuryr-driver::constants`; this
//! module only holds what Docker defines.

/// Driver options from `docker network create -o k=v` (an object of strings).
pub const GENERIC: &str = "com.docker.network.generic";
/// Whether IPv6 is enabled on the network (bool, always present in CreateNetwork).
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// Whether IPv4 is enabled on the network (bool, Docker 28+).
pub const ENABLE_IPV4: &str = "com.docker.network.enable_ipv4";
/// Present (true) on `--internal` networks.
pub const INTERNAL: &str = "com.docker.network.internal";
/// MTU driver option (inside [`GENERIC`], a string).
pub const MTU: &str = "com.docker.network.driver.mtu";
/// Exposed ports: `[{"Proto": 6, "Port": 80}]`.
pub const EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";
/// Port mappings: `[{"Proto", "IP", "Port", "HostIP", "HostPort", "HostPortEnd"}]`.
pub const PORT_MAP: &str = "com.docker.network.portmap";
/// The endpoint MAC: text form in IPAM RequestAddress, base64 in CreateEndpoint (read the MAC
/// from `Interface.MacAddress` there instead).
pub const MAC_ADDRESS: &str = "com.docker.network.endpoint.macaddress";
/// DNS servers of the endpoint (array of strings).
pub const DNS_SERVERS: &str = "com.docker.network.endpoint.dnsservers";
/// Endpoint (container) name in IPAM RequestAddress (Docker 29+).
pub const ENDPOINT_NAME: &str = "com.docker.network.endpoint.name";
/// Key of the address type in IPAM RequestAddress options.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
/// [`REQUEST_ADDRESS_TYPE`] value for the network gateway; also the RequestPool `Data` key that
/// hands Docker a gateway (`<ip>/<len>`).
pub const GATEWAY: &str = "com.docker.network.gateway";

/// Media type of plugin replies.
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1+json";

/// `Implements` entry for the network subsystem.
pub const IMPLEMENTS_NETWORK: &str = "NetworkDriver";
/// `Implements` entry for the IPAM subsystem.
pub const IMPLEMENTS_IPAM: &str = "IpamDriver";

/// Every HTTP path the plugin serves.
pub mod paths {
    /// Handshake.
    pub const ACTIVATE: &str = "/Plugin.Activate";

    /// `/NetworkDriver.GetCapabilities`
    pub const NET_GET_CAPABILITIES: &str = "/NetworkDriver.GetCapabilities";
    /// `/NetworkDriver.CreateNetwork`
    pub const NET_CREATE_NETWORK: &str = "/NetworkDriver.CreateNetwork";
    /// `/NetworkDriver.DeleteNetwork`
    pub const NET_DELETE_NETWORK: &str = "/NetworkDriver.DeleteNetwork";
    /// `/NetworkDriver.AllocateNetwork`
    pub const NET_ALLOCATE_NETWORK: &str = "/NetworkDriver.AllocateNetwork";
    /// `/NetworkDriver.FreeNetwork`
    pub const NET_FREE_NETWORK: &str = "/NetworkDriver.FreeNetwork";
    /// `/NetworkDriver.CreateEndpoint`
    pub const NET_CREATE_ENDPOINT: &str = "/NetworkDriver.CreateEndpoint";
    /// `/NetworkDriver.EndpointOperInfo`
    pub const NET_ENDPOINT_OPER_INFO: &str = "/NetworkDriver.EndpointOperInfo";
    /// `/NetworkDriver.DeleteEndpoint`
    pub const NET_DELETE_ENDPOINT: &str = "/NetworkDriver.DeleteEndpoint";
    /// `/NetworkDriver.Join`
    pub const NET_JOIN: &str = "/NetworkDriver.Join";
    /// `/NetworkDriver.Leave`
    pub const NET_LEAVE: &str = "/NetworkDriver.Leave";
    /// `/NetworkDriver.DiscoverNew`
    pub const NET_DISCOVER_NEW: &str = "/NetworkDriver.DiscoverNew";
    /// `/NetworkDriver.DiscoverDelete`
    pub const NET_DISCOVER_DELETE: &str = "/NetworkDriver.DiscoverDelete";
    /// `/NetworkDriver.ProgramExternalConnectivity`
    pub const NET_PROGRAM_EXTERNAL_CONNECTIVITY: &str =
        "/NetworkDriver.ProgramExternalConnectivity";
    /// `/NetworkDriver.RevokeExternalConnectivity`
    pub const NET_REVOKE_EXTERNAL_CONNECTIVITY: &str = "/NetworkDriver.RevokeExternalConnectivity";
    /// `/NetworkDriver.GwAllocCheck`
    pub const NET_GW_ALLOC_CHECK: &str = "/NetworkDriver.GwAllocCheck";

    /// `/IpamDriver.GetCapabilities`
    pub const IPAM_GET_CAPABILITIES: &str = "/IpamDriver.GetCapabilities";
    /// `/IpamDriver.GetDefaultAddressSpaces`
    pub const IPAM_GET_DEFAULT_ADDRESS_SPACES: &str = "/IpamDriver.GetDefaultAddressSpaces";
    /// `/IpamDriver.RequestPool`
    pub const IPAM_REQUEST_POOL: &str = "/IpamDriver.RequestPool";
    /// `/IpamDriver.ReleasePool`
    pub const IPAM_RELEASE_POOL: &str = "/IpamDriver.ReleasePool";
    /// `/IpamDriver.RequestAddress`
    pub const IPAM_REQUEST_ADDRESS: &str = "/IpamDriver.RequestAddress";
    /// `/IpamDriver.ReleaseAddress`
    pub const IPAM_RELEASE_ADDRESS: &str = "/IpamDriver.ReleaseAddress";

    /// Every path, in protocol order.
    pub const ALL: &[&str] = &[
        ACTIVATE,
        NET_GET_CAPABILITIES,
        NET_CREATE_NETWORK,
        NET_DELETE_NETWORK,
        NET_ALLOCATE_NETWORK,
        NET_FREE_NETWORK,
        NET_CREATE_ENDPOINT,
        NET_ENDPOINT_OPER_INFO,
        NET_DELETE_ENDPOINT,
        NET_JOIN,
        NET_LEAVE,
        NET_DISCOVER_NEW,
        NET_DISCOVER_DELETE,
        NET_PROGRAM_EXTERNAL_CONNECTIVITY,
        NET_REVOKE_EXTERNAL_CONNECTIVITY,
        NET_GW_ALLOC_CHECK,
        IPAM_GET_CAPABILITIES,
        IPAM_GET_DEFAULT_ADDRESS_SPACES,
        IPAM_REQUEST_POOL,
        IPAM_RELEASE_POOL,
        IPAM_REQUEST_ADDRESS,
        IPAM_RELEASE_ADDRESS,
    ];
}
