//! Wire-level scalar types: IPAM pool IDs and the free-form options maps (Docker IDs and MAC
//! addresses are `kuryr_types`'), plus the serde helpers for Docker's `null`/`""` conventions.

use std::fmt;
use std::str::FromStr;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::keys;

pub use kuryr_types::{DockerId, MacAddr};

/// An IPAM pool ID: opaque to Docker, chosen by the IPAM driver and echoed back.
///
/// Only sanity is checked (non-empty, printable, bounded) since the driver defines the format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PoolId(String);

impl PoolId {
    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PoolId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("empty pool id".into());
        }
        if s.len() > 255 || s.chars().any(|c| c.is_control()) {
            return Err(format!(
                "invalid pool id {:?}: expected 1 to 255 printable characters",
                truncate_for_message(s)
            ));
        }
        Ok(PoolId(s.to_owned()))
    }
}

impl TryFrom<String> for PoolId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl<'de> Deserialize<'de> for PoolId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PoolId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A free-form options map (`map[string]any` in Docker): values may be strings, bools, numbers,
/// arrays, objects or `null`. A `null` map decodes as empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Options(pub Map<String, Value>);

impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Options(
            Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default(),
        ))
    }
}

impl Options {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Whether `key` is present (even as `null`).
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Inserts a value (builder style, for tests and callers constructing requests).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The string under `key`; `None` if absent, `null`, or not a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// A boolean under `key`, accepting a JSON bool or oslo's boolean strings (`true`, `yes`, `1`...),
    /// since `-o key=value` driver options always arrive as strings.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if kuryr_types::parse_bool(s).is_some() => {
                Ok(kuryr_types::parse_bool(s))
            }
            Some(other) => Err(format!(
                "option {key}: expected a boolean, got {}",
                value_summary(other)
            )),
        }
    }

    /// Decodes the value under `key` into `T`; `None` if absent or `null`.
    pub fn get_typed<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::deserialize(v)
                .map(Some)
                .map_err(|e| format!("option {key}: {e}")),
        }
    }

    /// The driver options given with `docker network create -o k=v`
    /// (`com.docker.network.generic`), empty when absent or `null`.
    pub fn generic(&self) -> Result<Options, String> {
        Ok(self
            .get_typed::<Options>(keys::GENERIC)?
            .unwrap_or_default())
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Map<String, Value>> for Options {
    fn from(m: Map<String, Value>) -> Self {
        Options(m)
    }
}

fn value_summary(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Keeps hostile inputs from turning error messages into megabytes.
pub(crate) fn truncate_for_message(s: &str) -> String {
    truncate_chars(s, 80)
}

/// `s` cut to at most `max` characters, marked with an ellipsis when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// serde helpers for Docker's Go conventions.
pub mod serde_helpers {
    use super::*;

    /// `null` decodes as `T::default()` (Go encodes nil maps/slices as `null`).
    pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    /// A string field where `""` (or `null`) means "not set"; anything else must parse as `T`.
    pub mod empty_as_none {
        use super::*;

        /// Decodes `""`/`null` as `None`, other strings through `FromStr`.
        pub fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
        where
            D: Deserializer<'de>,
            T: FromStr,
            T::Err: fmt::Display,
        {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|e| D::Error::custom(format!("{:?}: {e}", truncate_for_message(&s)))),
            }
        }

        /// Encodes `None` as `""` (what Go's zero value looks like) and `Some(v)` via `Display`.
        pub fn serialize<S, T>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error>
        where
            S: Serializer,
            T: fmt::Display,
        {
            match v {
                None => s.serialize_str(""),
                Some(v) => s.collect_str(v),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_id_rules() {
        assert_eq!(
            "kuryrPool-10.0.0.0/24".parse::<PoolId>().unwrap().as_str(),
            "kuryrPool-10.0.0.0/24"
        );
        assert!("".parse::<PoolId>().is_err());
        assert!("a\nb".parse::<PoolId>().is_err());
    }

    #[test]
    fn options_null_and_accessors() {
        let o: Options = serde_json::from_str("null").unwrap();
        assert!(o.is_empty());
        let o: Options = serde_json::from_str(
            r#"{"com.docker.network.enable_ipv6": false,
                "com.docker.network.generic": {"neutron.net.shared": "True", "n": 3},
                "s": "v", "b": "FALSE", "x": [1]}"#,
        )
        .unwrap();
        assert_eq!(o.get_bool(keys::ENABLE_IPV6).unwrap(), Some(false));
        assert_eq!(o.get_bool("b").unwrap(), Some(false));
        assert_eq!(o.get_bool("missing").unwrap(), None);
        assert!(o.get_bool("x").unwrap_err().contains("expected a boolean"));
        assert_eq!(o.get_str("s"), Some("v"));
        let g = o.generic().unwrap();
        assert_eq!(g.get_bool("neutron.net.shared").unwrap(), Some(true));
        assert_eq!(g.get_str("n"), None);
        let bad = Options::new().with(keys::GENERIC, "not a map");
        assert!(bad.generic().is_err());
        assert!(Options::new().generic().unwrap().is_empty());
    }
}
