//! Interface names, identical to kuryr-lib's (`<prefix><id>` cut to 14 characters).

use crate::constants::*;

fn prefixed(prefix: &str, id: &str) -> String {
    let mut name = String::with_capacity(NIC_NAME_LEN);
    name.push_str(prefix);
    // Char-wise so a (never expected) non-ASCII id cannot split a code point.
    name.extend(id.chars().take(NIC_NAME_LEN.saturating_sub(prefix.len())));
    name
}

/// `tap<port id[:11]>`: host end of the veth pair.
pub fn host_veth_name(port_id: &str) -> String {
    prefixed(HOST_VETH_PREFIX, port_id)
}

/// `t_c<port id[:11]>`: container end (veth peer, macvlan or VLAN child).
pub fn container_ifname(port_id: &str) -> String {
    prefixed(CONTAINER_VETH_PREFIX, port_id)
}

/// `(host, container)` veth names, as kuryr-lib's `get_veth_pair_names`.
pub fn veth_pair_names(port_id: &str) -> (String, String) {
    (host_veth_name(port_id), container_ifname(port_id))
}

/// OVS hybrid plug names `(qbr, qvb, qvo)`.
pub fn hybrid_names(port_id: &str) -> (String, String, String) {
    (
        prefixed(HYBRID_BRIDGE_PREFIX, port_id),
        prefixed(HYBRID_BRIDGE_VETH_PREFIX, port_id),
        prefixed(HYBRID_OVS_VETH_PREFIX, port_id),
    )
}

/// `brq<network id[:11]>`: the Linux bridge of a network.
pub fn linux_bridge_name(network_id: &str) -> String {
    prefixed(LINUX_BRIDGE_PREFIX, network_id)
}

/// Alias stored on every link Kuryr creates, read back by reconcile.
pub fn link_alias(endpoint_id: &str, port_id: &str) -> String {
    format!("{LINK_ALIAS_PREFIX}:{endpoint_id}:{port_id}")
}

/// Parses `link_alias`'s output into `(endpoint id, port id)`.
pub fn parse_link_alias(alias: &str) -> Option<(String, String)> {
    let rest = alias.strip_prefix(LINK_ALIAS_PREFIX)?.strip_prefix(':')?;
    let (ep, port) = rest.split_once(':')?;
    if ep.is_empty() || port.is_empty() {
        return None;
    }
    Some((ep.to_string(), port.to_string()))
}

/// Linux accepts at most 15 bytes, no '/', ':' or whitespace; we stay within kuryr-lib's 14.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: &str = "1234567890ab-cdef-0000-1111-222233334444";

    #[test]
    fn names_match_kuryr_lib() {
        assert_eq!(
            veth_pair_names(PORT),
            ("tap1234567890a".into(), "t_c1234567890a".into())
        );
        assert_eq!(
            hybrid_names(PORT),
            (
                "qbr1234567890a".into(),
                "qvb1234567890a".into(),
                "qvo1234567890a".into()
            )
        );
        assert_eq!(linux_bridge_name("abcdefabcdef12"), "brqabcdefabcde");
        assert_eq!(host_veth_name(PORT).len(), NIC_NAME_LEN);
        // Short ids are not padded.
        assert_eq!(host_veth_name("ab"), "tapab");
    }

    #[test]
    fn alias_round_trips() {
        let a = link_alias("ep1", PORT);
        assert_eq!(parse_link_alias(&a), Some(("ep1".into(), PORT.into())));
        assert_eq!(parse_link_alias("nova:x:y"), None);
        assert_eq!(parse_link_alias("kuryr::y"), None);
    }

    #[test]
    fn ifname_validation() {
        assert!(valid_ifname("tap1234567890a"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("sixteen-chars-xx"));
        assert!(!valid_ifname("with space"));
    }
}
