/// A boolean as OpenStack writes one (oslo's `Boolean` type and `bool_from_string`, which the
/// Python original applies to `kuryr.conf`, to `-o` options and to `OS_*` variables): `None` for
/// anything else, so each caller decides between an error and a default.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oslo_spellings() {
        for t in ["1", "t", "True", " yes ", "ON", "y"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "FALSE", "no", "off", "n"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for x in ["", "2", "maybe", "truee"] {
            assert_eq!(parse_bool(x), None, "{x}");
        }
    }
}
