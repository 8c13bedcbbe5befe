//! Every name prefix, external_ids key and default of the host binding, in one place.
//! Values match kuryr-lib so hosts plugged by the Python original are recognised.

/// Linux interface names are at most 15 bytes; kuryr-lib truncates to 14.
pub const NIC_NAME_LEN: usize = 14;
/// Characters of a port or network UUID kept after a 3-character prefix.
pub const ID_PREFIX_LEN: usize = NIC_NAME_LEN - 3;

/// Host end of the veth pair (`tap<port id[:11]>`).
pub const HOST_VETH_PREFIX: &str = "tap";
/// Container end of the veth pair, also the macvlan/VLAN child (`t_c<port id[:11]>`).
pub const CONTAINER_VETH_PREFIX: &str = "t_c";
/// OVS hybrid plug: per-port Linux bridge.
pub const HYBRID_BRIDGE_PREFIX: &str = "qbr";
/// OVS hybrid plug: veth end enslaved to the `qbr` bridge.
pub const HYBRID_BRIDGE_VETH_PREFIX: &str = "qvb";
/// OVS hybrid plug: veth end added to the OVS bridge.
pub const HYBRID_OVS_VETH_PREFIX: &str = "qvo";
/// Linux bridge agent's per-network bridge (`brq<network id[:11]>`).
pub const LINUX_BRIDGE_PREFIX: &str = "brq";

/// Owner recorded on the links (alias) and OVS port (`vm-uuid`) of a pooled port that no
/// endpoint holds: a port pool plugged it ahead of time. Not a Docker id anyone can have (Docker's
/// are 64 hex digits).
pub const POOL_LINK_OWNER: &str = "kuryrpool";

/// OVS bridge used when vif_details do not name one.
pub const DEFAULT_OVS_BRIDGE: &str = "br-int";
/// MTU used when the network has none (kuryr-lib's DEFAULT_NETWORK_MTU).
pub const DEFAULT_NETWORK_MTU: u32 = 1500;
/// Seconds given to one ovs-vsctl transaction.
pub const DEFAULT_OVS_VSCTL_TIMEOUT_SECS: u64 = 10;
/// Seconds given to one vif-type hook script.
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 60;
/// Where kuryr-lib installs its vif-type scripts.
pub const DEFAULT_BINDIR: &str = "/usr/libexec/kuryr";

/// `external_ids:owner` value marking OVS interfaces Kuryr plugged.
pub const OWNER: &str = "kuryr";
pub const EXT_ID_IFACE_ID: &str = "iface-id";
pub const EXT_ID_ATTACHED_MAC: &str = "attached-mac";
pub const EXT_ID_IFACE_STATUS: &str = "iface-status";
pub const EXT_ID_VM_UUID: &str = "vm-uuid";
pub const EXT_ID_OWNER: &str = "owner";
pub const IFACE_STATUS_ACTIVE: &str = "active";

/// Interface alias (IFLA_IFALIAS) prefix on links Kuryr creates: `kuryr:<endpoint id>:<port id>`.
/// It is how reconcile tells Kuryr's links from Nova's `tap…` devices on the same host.
pub const LINK_ALIAS_PREFIX: &str = "kuryr";

/// vif_details keys.
pub const VIF_DETAILS_OVS_HYBRID_PLUG: &str = "ovs_hybrid_plug";
pub const VIF_DETAILS_BRIDGE_NAME: &str = "bridge_name";

/// Hook script sub-commands (kuryr-lib's BINDING_SUBCOMMAND / UNBINDING_SUBCOMMAND).
pub const HOOK_BIND: &str = "bind";
pub const HOOK_UNBIND: &str = "unbind";

/// 802.1Q VLAN IDs usable for trunk subports.
pub const MIN_VLAN_ID: u16 = 1;
pub const MAX_VLAN_ID: u16 = 4094;
