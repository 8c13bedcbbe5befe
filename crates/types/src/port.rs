use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Neutron port's `status`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum PortStatus {
    Active,
    #[default]
    Down,
    Build,
    Error,
    /// A status this version does not know (`N/A` for some ports, or a future one).
    Other(String),
}

impl PortStatus {
    pub fn as_str(&self) -> &str {
        match self {
            PortStatus::Active => "ACTIVE",
            PortStatus::Down => "DOWN",
            PortStatus::Build => "BUILD",
            PortStatus::Error => "ERROR",
            PortStatus::Other(s) => s,
        }
    }

    pub fn is_active(&self) -> bool {
        *self == PortStatus::Active
    }
}

impl From<&str> for PortStatus {
    fn from(s: &str) -> Self {
        match s {
            "ACTIVE" => PortStatus::Active,
            "DOWN" => PortStatus::Down,
            "BUILD" => PortStatus::Build,
            "ERROR" => PortStatus::Error,
            other => PortStatus::Other(other.to_string()),
        }
    }
}

/// A port's `binding:vif_type`: how the host end of a container interface is plugged.
/// Neutron leaves it empty or absent on an unbound port, which reads as [`VifType::Unbound`]
/// (kuryr-lib's `FALLBACK_VIF_TYPE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum VifType {
    Ovs,
    Bridge,
    Tap,
    #[default]
    Unbound,
    BindingFailed,
    /// Any other type: plugged by the `<bindir>/<vif_type>` hook script, if one is installed.
    Other(String),
}

impl VifType {
    pub fn as_str(&self) -> &str {
        match self {
            VifType::Ovs => "ovs",
            VifType::Bridge => "bridge",
            VifType::Tap => "tap",
            VifType::Unbound => "unbound",
            VifType::BindingFailed => "binding_failed",
            VifType::Other(s) => s,
        }
    }
}

impl From<&str> for VifType {
    fn from(s: &str) -> Self {
        match s {
            "ovs" => VifType::Ovs,
            "bridge" => VifType::Bridge,
            "tap" => VifType::Tap,
            "" | "unbound" => VifType::Unbound,
            "binding_failed" => VifType::BindingFailed,
            other => VifType::Other(other.to_string()),
        }
    }
}

macro_rules! string_enum_impls {
    ($t:ty) => {
        impl From<String> for $t {
            fn from(s: String) -> Self {
                <$t>::from(s.as_str())
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // `null` reads as the default (Neutron omits or nulls these on some ports).
                let s = Option::<String>::deserialize(d)?;
                Ok(s.map(<$t>::from).unwrap_or_default())
            }
        }
    };
}
string_enum_impls!(PortStatus);
string_enum_impls!(VifType);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_values_round_trip() {
        for s in ["ACTIVE", "DOWN", "BUILD", "ERROR", "N/A"] {
            assert_eq!(PortStatus::from(s).as_str(), s);
        }
        for s in [
            "ovs",
            "bridge",
            "tap",
            "unbound",
            "binding_failed",
            "vhostuser",
        ] {
            assert_eq!(VifType::from(s).as_str(), s);
        }
        assert_eq!(VifType::from(""), VifType::Unbound);
        assert!(PortStatus::Active.is_active());
        assert!(!PortStatus::Build.is_active());
    }

    #[test]
    fn serde_reads_null_as_default() {
        assert_eq!(
            serde_json::from_str::<VifType>("null").unwrap(),
            VifType::Unbound
        );
        assert_eq!(
            serde_json::from_str::<PortStatus>("\"ACTIVE\"").unwrap(),
            PortStatus::Active
        );
        assert_eq!(serde_json::to_string(&VifType::Ovs).unwrap(), "\"ovs\"");
    }
}
