use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;

use crate::{quoted, ParseError};

/// Docker's opaque IPAM PoolID as Kuryr writes it. Either a whole Neutron subnetpool (the Python
/// original's scheme, `<pool uuid>`) or a range carved from a shared pool such as the default
/// `kuryr` pool (`<pool uuid>/<cidr>`), so that every network gets its own subnet of the pool's
/// default prefix length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolRef {
    Whole(String),
    Carved { pool_id: String, cidr: IpNet },
}

impl PoolRef {
    /// The Neutron subnetpool id.
    pub fn pool_id(&self) -> &str {
        match self {
            PoolRef::Whole(id) => id,
            PoolRef::Carved { pool_id, .. } => pool_id,
        }
    }
}

impl FromStr for PoolRef {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError(format!("invalid pool id {}", quoted(s)));
        let valid_id = |id: &str| {
            !id.is_empty()
                && id.len() <= 255
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        match s.split_once('/') {
            None if valid_id(s) => Ok(PoolRef::Whole(s.to_string())),
            Some((id, cidr)) if valid_id(id) => {
                let cidr = IpNet::from_str(cidr).map_err(|_| bad())?;
                if cidr.trunc() != cidr {
                    return Err(bad());
                }
                Ok(PoolRef::Carved {
                    pool_id: id.to_string(),
                    cidr,
                })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PoolRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolRef::Whole(id) => f.write_str(id),
            PoolRef::Carved { pool_id, cidr } => write!(f, "{pool_id}/{cidr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let w: PoolRef = "0b6e4e6a-3b3b-4f6e-9a1e-4d9c3f7a2b10".parse().unwrap();
        assert_eq!(
            w,
            PoolRef::Whole("0b6e4e6a-3b3b-4f6e-9a1e-4d9c3f7a2b10".into())
        );
        let c: PoolRef = "abc/10.90.3.0/24".parse().unwrap();
        assert_eq!(c.to_string(), "abc/10.90.3.0/24");
        assert_eq!(c.pool_id(), "abc");
        let c6: PoolRef = "abc/fd90:0:0:3::/64".parse().unwrap();
        assert_eq!(c6.to_string(), "abc/fd90:0:0:3::/64");
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "/10.0.0.0/8",
            "abc/zzz",
            "abc/10.0.0.1/24",
            "a b",
            "a\nb",
        ] {
            let e = bad.parse::<PoolRef>().unwrap_err();
            assert!(e.message().starts_with("invalid pool id"), "{bad:?}: {e}");
        }
    }
}
