//! The oslo.config INI dialect and value rules.
//!
//! Written by hand rather than with a generic INI crate because oslo's rules differ in ways that
//! matter for secrets: no escape processing (a password may hold `\`), no inline comments (it may
//! hold `#` or `;`), matching surrounding quotes are stripped, indented lines continue a value,
//! and a repeated key keeps every value (multi-valued options) while single-valued options take
//! the last one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ConfigError;

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One value of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawValue {
    pub value: String,
    pub origin: Origin,
}

/// Every section and key of all parsed files, later files appended after earlier ones.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    /// section -> key (with `-` normalised to `_`) -> values in file order.
    pub sections: BTreeMap<String, BTreeMap<String, Vec<RawValue>>>,
}

/// oslo treats `-` and `_` in option names alike.
pub fn normalize_key(k: &str) -> String {
    k.trim().replace('-', "_")
}

fn strip_quotes(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

impl RawConfig {
    /// Parse one file's text and merge it in.
    pub fn parse_str(&mut self, text: &str, file: &Path) -> Result<(), ConfigError> {
        let mut section: Option<String> = None;
        // (section, key, index of the value) of the value a continuation line extends.
        let mut last: Option<(String, String, usize)> = None;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let origin = || Origin {
                file: file.to_path_buf(),
                line: line_no,
            };
            if raw.trim().is_empty() {
                last = None;
                continue;
            }
            let trimmed = raw.trim_start();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                if let Some((s, k, idx)) = &last {
                    let v = &mut self
                        .sections
                        .get_mut(s)
                        .expect("section exists")
                        .get_mut(k)
                        .expect("key exists")[*idx];
                    v.value.push('\n');
                    v.value.push_str(raw.trim());
                    continue;
                }
                return Err(ConfigError::Syntax {
                    origin: origin(),
                    message: "unexpected continuation line".into(),
                });
            }
            let line = raw.trim();
            if line.starts_with('[') {
                if !line.ends_with(']') || line.len() < 3 {
                    return Err(ConfigError::Syntax {
                        origin: origin(),
                        message: format!("invalid section header {line:?}"),
                    });
                }
                section = Some(line[1..line.len() - 1].trim().to_string());
                last = None;
                continue;
            }
            let Some(sep) = line.find(['=', ':']) else {
                return Err(ConfigError::Syntax {
                    origin: origin(),
                    message: "expected `key = value`".into(),
                });
            };
            let key = normalize_key(&line[..sep]);
            if key.is_empty() {
                return Err(ConfigError::Syntax {
                    origin: origin(),
                    message: "empty option name".into(),
                });
            }
            let Some(sec) = section.clone() else {
                return Err(ConfigError::Syntax {
                    origin: origin(),
                    message: "option outside of any section".into(),
                });
            };
            let value = strip_quotes(line[sep + 1..].trim()).to_string();
            let values = self
                .sections
                .entry(sec.clone())
                .or_default()
                .entry(key.clone())
                .or_default();
            values.push(RawValue {
                value,
                origin: origin(),
            });
            last = Some((sec, key, values.len() - 1));
        }
        Ok(())
    }

    /// The effective value of a single-valued option: the last one given.
    pub fn get(&self, section: &str, key: &str) -> Option<&RawValue> {
        self.sections.get(section)?.get(key)?.last()
    }

    /// All values of a multi-valued option.
    pub fn get_all(&self, section: &str, key: &str) -> &[RawValue] {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// oslo's Boolean type (one parser for every boolean Kuryr reads).
pub use kuryr_types::parse_bool;

/// oslo's List type: comma-separated, items trimmed, empty input is an empty list.
pub fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oslo_ini_rules() {
        let mut c = RawConfig::default();
        let text = "# comment\n[DEFAULT]\nkuryr-uri = http://x:1\n\n[neutron]\npassword = \"p#;\\w\"\nlist = a,\n  b\nk: v1\nk = v2\n";
        c.parse_str(text, Path::new("a.conf")).unwrap();
        assert_eq!(c.get("DEFAULT", "kuryr_uri").unwrap().value, "http://x:1");
        assert_eq!(c.get("neutron", "password").unwrap().value, "p#;\\w");
        assert_eq!(c.get("neutron", "list").unwrap().value, "a,\nb");
        assert_eq!(
            parse_list(&c.get("neutron", "list").unwrap().value.replace('\n', "")),
            vec!["a", "b"]
        );
        assert_eq!(c.get("neutron", "k").unwrap().value, "v2");
        assert_eq!(c.get_all("neutron", "k").len(), 2);
        assert_eq!(c.get("neutron", "k").unwrap().origin.line, 10);
        let e = RawConfig::default()
            .parse_str("x = 1\n", Path::new("b.conf"))
            .unwrap_err();
        assert!(e.to_string().contains("b.conf:1"), "{e}");
    }

    #[test]
    fn oslo_values() {
        for t in ["True", "yes", "1", "ON"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["False", "no", "0", "off"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
        assert!(parse_list(" ").is_empty());
        assert_eq!(parse_list("a, b ,c"), vec!["a", "b", "c"]);
    }
}
