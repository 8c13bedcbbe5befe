//! Decoding of request bodies, independent of any HTTP library.
//!
//! The rules, from the protocol digest: the request Content-Type is never trusted; an empty body
//! on a call that takes arguments is rejected (Docker may retry with an already-consumed, empty
//! buffer); syntax errors are "malformed" (HTTP 400); well-formed JSON with wrong types or invalid
//! values (CIDRs, MACs, IDs) is a bad request (HTTP 500 with a message naming the field).

use serde::de::DeserializeOwned;

use crate::error::PluginError;
use crate::types::{truncate_chars, DockerId, PoolId};

/// The Docker IDs a request carries, for the per-request tracing span.
#[derive(Debug, Default, Clone, Copy)]
pub struct TraceIds<'a> {
    /// `NetworkID`, if the request has one.
    pub network_id: Option<&'a DockerId>,
    /// `EndpointID`, if the request has one.
    pub endpoint_id: Option<&'a DockerId>,
    /// `PoolID`, if the request has one.
    pub pool_id: Option<&'a PoolId>,
}

/// A request body type of some plugin call.
pub trait PluginRequest: DeserializeOwned + Send + 'static {
    /// Cross-field checks that serde cannot express (e.g. `SubPool` needs `Pool`).
    fn validate(&self) -> Result<(), PluginError> {
        Ok(())
    }

    /// The IDs to record on the request's tracing span.
    fn trace_ids(&self) -> TraceIds<'_> {
        TraceIds::default()
    }
}

/// Decodes and validates a request body of a call that takes arguments.
pub fn decode_request<T: PluginRequest>(body: &[u8]) -> Result<T, PluginError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(PluginError::malformed(
            "empty request body: this call requires a json object",
        ));
    }
    // serde's derived structs also accept JSON arrays (by position); Docker only sends objects.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(e) => Err(describe(".", &e)),
            Ok(_) => Err(PluginError::bad_request(
                "invalid request: expected a json object",
            )),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        describe(&path, &inner)
    })?;
    // Trailing garbage after the object is a syntax error too.
    de.end().map_err(|e| describe(".", &e))?;
    value.validate()?;
    Ok(value)
}

fn describe(path: &str, e: &serde_json::Error) -> PluginError {
    use serde_json::error::Category;
    // serde_json's message can quote attacker-sized input; bound it.
    let msg = truncate_chars(&e.to_string(), 300);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            PluginError::malformed(format!("malformed json in request body: {msg}"))
        }
        Category::Data if path == "." || path.is_empty() => {
            PluginError::bad_request(format!("invalid request: {msg}"))
        }
        Category::Data => PluginError::bad_request(format!("invalid request field {path}: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::network::CreateNetworkRequest;

    #[test]
    fn empty_and_whitespace_bodies_are_malformed() {
        for body in [&b""[..], b"  \n"] {
            let e = decode_request::<CreateNetworkRequest>(body).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Malformed);
            assert!(e.message().contains("empty request body"), "{e}");
        }
    }

    #[test]
    fn syntax_vs_data_errors() {
        let e = decode_request::<CreateNetworkRequest>(b"{\"NetworkID\": ").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
        let trailing = format!("{{\"NetworkID\": \"{}\"}} x", "a".repeat(64));
        let e = decode_request::<CreateNetworkRequest>(trailing.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
        let e = decode_request::<CreateNetworkRequest>(b"{\"NetworkID\": 5}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest, "{e}");
        assert!(e.message().contains("NetworkID"), "{e}");
        for body in [&b"[]"[..], b"[\"a\", 1]", b"null", b"7", b"\"s\""] {
            let e = decode_request::<CreateNetworkRequest>(body).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadRequest, "{e}");
            assert!(e.message().contains("expected a json object"), "{e}");
        }
        let e = decode_request::<CreateNetworkRequest>(b"[1,").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
    }

    #[test]
    fn messages_are_bounded() {
        let long = format!("{{\"NetworkID\": \"{}\"}}", "z".repeat(100_000));
        let e = decode_request::<CreateNetworkRequest>(long.as_bytes()).unwrap_err();
        assert!(e.message().len() < 400, "{}", e.message().len());
    }
}
