//! Docker ID ↔ Neutron tag mapping (the scheme of the Python kuryr-libnetwork).
//!
//! A 64-character Docker ID is split into `kuryr.net.uuid.lh:<[0..32]>` and
//! `kuryr.net.uuid.uh:<[32..64]>`; a 25-character swarm ID gets only the `lh` tag. Ports carry their
//! endpoint ID with the same prefixes.

use crate::constants::{
    CNI_TAG_PREFIXES, NET_EXISTING_ID_LEN, TAG_LH, TAG_NET_EXISTING, TAG_PORT_SETTINGS, TAG_UH,
};

const HALF: usize = 32;

/// The `lh` (and, for IDs longer than 32 characters, `uh`) tags for a Docker ID.
pub fn docker_id_tags(docker_id: &str) -> Vec<String> {
    let mut tags = Vec::with_capacity(2);
    let (lh, uh) = if docker_id.len() > HALF && docker_id.is_char_boundary(HALF) {
        docker_id.split_at(HALF)
    } else {
        (docker_id, "")
    };
    tags.push(format!("{TAG_LH}{lh}"));
    if !uh.is_empty() {
        let end = uh.len().min(HALF);
        tags.push(format!("{TAG_UH}{}", &uh[..end]));
    }
    tags
}

/// The Docker ID encoded in a resource's tags, if it carries an `lh` tag.
pub fn docker_id_from_tags<S: AsRef<str>>(tags: &[S]) -> Option<String> {
    let lh = tags.iter().find_map(|t| t.as_ref().strip_prefix(TAG_LH))?;
    let uh = tags
        .iter()
        .find_map(|t| t.as_ref().strip_prefix(TAG_UH))
        .unwrap_or("");
    Some(format!("{lh}{uh}"))
}

/// The tag that marks a network adopted by the Docker network `docker_id`.
pub fn existing_net_tag(docker_id: &str) -> String {
    let n = docker_id.len().min(NET_EXISTING_ID_LEN);
    format!("{TAG_NET_EXISTING}{}", &docker_id[..n])
}

/// Whether `tags` contains every tag in `wanted`.
pub fn has_all<S: AsRef<str>>(tags: &[S], wanted: &[String]) -> bool {
    wanted.iter().all(|w| tags.iter().any(|t| t.as_ref() == w))
}

/// Whether `tags` contains `wanted`.
pub fn has<S: AsRef<str>>(tags: &[S], wanted: &str) -> bool {
    tags.iter().any(|t| t.as_ref() == wanted)
}

/// Whether a tag is one of the Docker-ID tags (`lh`/`uh`), an existing-network marker, or a
/// CNI attachment's (container, interface, pod).
pub fn is_kuryr_id_tag(tag: &str) -> bool {
    tag.starts_with(TAG_LH)
        || tag.starts_with(TAG_UH)
        || tag.starts_with(TAG_NET_EXISTING)
        || tag == TAG_PORT_SETTINGS
        || CNI_TAG_PREFIXES.iter().any(|p| tag.starts_with(p))
}

/// Whether a network tag says that a Docker network uses the network (its ID tags or its
/// adoption marker).
pub fn is_docker_network_tag(tag: &str) -> bool {
    tag.starts_with(TAG_LH) || tag.starts_with(TAG_UH) || tag.starts_with(TAG_NET_EXISTING)
}

/// `prefix` + `value`, cut to Neutron's tag length (on a character boundary).
pub fn bounded_tag(prefix: &str, value: &str) -> String {
    let mut t = format!("{prefix}{value}");
    if t.len() > crate::constants::MAX_TAG_LEN {
        let mut end = crate::constants::MAX_TAG_LEN;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t.truncate(end);
    }
    t
}

/// The tags without the Docker-ID ones ([`is_kuryr_id_tag`]): what a port keeps between owners.
pub fn without_kuryr_id_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter(|t| !is_kuryr_id_tag(t))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_id_gets_both_halves() {
        let id = "0123456789abcdef0123456789abcdefFEDCBA9876543210fedcba9876543210";
        let tags = docker_id_tags(id);
        assert_eq!(
            tags,
            vec![
                "kuryr.net.uuid.lh:0123456789abcdef0123456789abcdef".to_string(),
                "kuryr.net.uuid.uh:FEDCBA9876543210fedcba9876543210".to_string(),
            ]
        );
        assert_eq!(existing_net_tag(id), "kuryr.net.existing:0123456789ab");
    }

    #[test]
    fn swarm_id_gets_only_lh() {
        let id = "abcdefghijklmnopqrstuvwxy";
        assert_eq!(docker_id_tags(id), vec![format!("{TAG_LH}{id}")]);
        assert_eq!(
            docker_id_from_tags(&docker_id_tags(id)).as_deref(),
            Some(id)
        );
    }

    #[test]
    fn untagged_resource_has_no_id() {
        assert_eq!(docker_id_from_tags(&["compute:kuryr"]), None);
        assert!(!is_kuryr_id_tag("compute:kuryr"));
        assert!(is_kuryr_id_tag("kuryr.net.existing:0123"));
    }

    proptest! {
        #[test]
        fn docker_ids_round_trip(id in "[0-9a-f]{64}|[0-9a-z]{25}") {
            let tags = docker_id_tags(&id);
            prop_assert_eq!(tags.len(), if id.len() == 64 { 2 } else { 1 });
            prop_assert_eq!(docker_id_from_tags(&tags), Some(id.clone()));
            prop_assert!(has_all(&tags, &tags));
            // Order of tags on the resource does not matter.
            let mut reversed = tags.clone();
            reversed.reverse();
            reversed.push("unrelated".into());
            prop_assert_eq!(docker_id_from_tags(&reversed), Some(id));
        }

        #[test]
        fn distinct_ids_never_share_tag_sets(a in "[0-9a-f]{64}", b in "[0-9a-f]{64}") {
            prop_assume!(a != b);
            prop_assert!(!has_all(&docker_id_tags(&a), &docker_id_tags(&b)));
        }
    }
}
