use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{quoted, ParseError};

/// Longest ID accepted; Docker's are 64 (local) or 25 (swarm) characters.
const MAX_ID_LEN: usize = 128;

/// A Docker network or endpoint ID (also a CNI container ID).
///
/// Local IDs are 64 lowercase hex characters; swarm-scoped networks have 25-character base-36
/// IDs; so any 1..=128 ASCII letters and digits are accepted. Anything else (empty, `/`, spaces,
/// non-ASCII) is refused where it enters, because IDs end up in Neutron names and tags, interface
/// aliases, OVS external_ids and hook script arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DockerId(String);

impl DockerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a full 64-hex-character local ID (as opposed to a swarm ID).
    pub fn is_full_hex(&self) -> bool {
        self.0.len() == 64 && self.0.bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// The first `n` characters (the whole ID if shorter), for names and log lines.
    pub fn short(&self, n: usize) -> &str {
        // IDs are ASCII: byte slicing is on char boundaries.
        &self.0[..n.min(self.0.len())]
    }
}

impl FromStr for DockerId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseError::new("empty docker id"));
        }
        if s.len() > MAX_ID_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError(format!(
                "invalid docker id {}: expected 1 to {MAX_ID_LEN} ascii letters or digits",
                quoted(s)
            )));
        }
        Ok(DockerId(s.to_owned()))
    }
}

impl TryFrom<String> for DockerId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl<'de> Deserialize<'de> for DockerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DockerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DockerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_local_and_swarm_ids() {
        let local = "a1".repeat(32);
        let id: DockerId = local.parse().unwrap();
        assert!(id.is_full_hex());
        assert_eq!(id.short(12), &local[..12]);
        let swarm: DockerId = "abcdefghijklmnopqrstuvwxy".parse().unwrap();
        assert!(!swarm.is_full_hex());
    }

    #[test]
    fn refuses_what_could_escape_a_name() {
        for bad in ["", "a/b", "a b", "../x", "a\0b", "é", &"a".repeat(129)] {
            let e = bad.parse::<DockerId>().unwrap_err();
            assert!(e.message().contains("docker id"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<DockerId>("\"abc\"").is_ok());
        assert!(serde_json::from_str::<DockerId>("\"a;b\"").is_err());
    }
}
