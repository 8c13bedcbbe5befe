use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{quoted, ParseError};

/// A 48-bit Ethernet MAC address; parsed from `aa:bb:cc:dd:ee:ff` (or `-` separated, any case)
/// and always printed lowercase with colons, as Neutron and Docker write it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    pub const fn new(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// A locally administered, unicast address.
    pub fn is_local_unicast(&self) -> bool {
        self.0[0] & 0x03 == 0x02
    }

    /// VRRP's virtual router range (`00:00:5e:00:01:xx` IPv4, `00:00:5e:00:02:xx` IPv6): the only
    /// foreign MACs ML2/OVN accepts in an allowed address pair.
    pub fn is_vrrp(&self) -> bool {
        matches!(self.0, [0x00, 0x00, 0x5e, 0x00, 0x01 | 0x02, _])
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ParseError(format!(
                "invalid mac address {}: expected six hex octets like 02:42:ac:11:00:02",
                quoted(s)
            ))
        };
        let mut out = [0u8; 6];
        let mut parts = s.trim().split([':', '-']);
        for octet in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *octet = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_separators_and_prints_lowercase() {
        let m: MacAddr = "FA-16-3E-00-AB-01".parse().unwrap();
        assert_eq!(m.to_string(), "fa:16:3e:00:ab:01");
        assert_eq!(m, "fa:16:3e:00:ab:01".parse().unwrap());
        assert!(m.is_local_unicast());
        assert!(!m.is_vrrp());
        assert!("00:00:5e:00:01:07".parse::<MacAddr>().unwrap().is_vrrp());
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "fa:16:3e:00:ab",
            "fa:16:3e:00:ab:01:02",
            "fa:16:3e:00:ab:1",
            "zz:16:3e:00:ab:01",
        ] {
            let e = bad.parse::<MacAddr>().unwrap_err();
            assert!(
                e.message().starts_with("invalid mac address"),
                "{bad:?}: {e}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trips(o in any::<[u8; 6]>()) {
            let m = MacAddr::new(o);
            prop_assert_eq!(m.to_string().parse::<MacAddr>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(serde_json::from_str::<MacAddr>(&json).unwrap(), m);
        }
    }
}
