//! The one error type that crosses the plugin boundary.
//!
//! Docker only ever shows the message (prefixed by `<Subsystem>.<Method>: `), so the message must
//! stand on its own: lowercase, no trailing period, naming the resource, no secrets. The kind only
//! chooses the HTTP status and lets callers match without parsing text.

use std::fmt;

/// What went wrong, coarsely; it chooses the HTTP status, never the text Docker shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The body is not JSON at all, or is empty where arguments are required (HTTP 400).
    Malformed,
    /// Well-formed JSON whose content is invalid: wrong type, bad CIDR, MAC or ID (HTTP 500).
    BadRequest,
    /// A resource the request names does not exist (HTTP 500).
    NotFound,
    /// The request conflicts with existing state (HTTP 500).
    Conflict,
    /// The driver does not implement this optional call (HTTP 404, which Docker tolerates for
    /// `ProgramExternalConnectivity`, `RevokeExternalConnectivity` and IPAM `GetCapabilities`).
    NotImplemented,
    /// A backend (Neutron, OVS, the kernel) is unreachable or timed out (HTTP 500).
    Unavailable,
    /// Anything else (HTTP 500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status the server answers with.
    ///
    /// Docker treats every non-200 status as failure and shows `Err`; only 404 has a meaning of
    /// its own, so everything except malformed input and "not implemented" is a plain 500, as
    /// go-plugins-helpers does.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Malformed => 400,
            ErrorKind::NotImplemented => 404,
            _ => 500,
        }
    }
}

/// An error a driver returns to Docker: a kind plus the message the user will read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    kind: ErrorKind,
    message: String,
}

impl PluginError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
        }
    }

    /// The body could not be parsed as JSON, or was empty where arguments are required.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, message)
    }

    /// The request content is invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// A named resource does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The request conflicts with existing state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// The optional call is not implemented (answered with HTTP 404).
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }

    /// A backend is unreachable or timed out.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Any other failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The text Docker shows to the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with context, keeping the kind: `"<context>: <message>"`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        PluginError {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }

    /// The JSON body Docker parses on failure.
    ///
    /// `Err` is what both subsystems read from a non-200 reply; IPAM replies also carry `Error`,
    /// the field IPAM's 200-reply struct uses, so no Docker version reads the failure as success.
    pub fn to_body(&self, ipam: bool) -> ErrorResponse {
        ErrorResponse {
            err: self.message.clone(),
            error: ipam.then(|| self.message.clone()),
        }
    }
}

/// The wire form of a failure: `{"Err": "..."}` (plus `"Error"` for IPAM).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorResponse {
    /// The message Docker shows.
    #[serde(rename = "Err")]
    pub err: String,
    /// The same message for the IPAM subsystem.
    #[serde(rename = "Error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_protocol() {
        assert_eq!(PluginError::malformed("x").kind().http_status(), 400);
        assert_eq!(PluginError::not_implemented("x").kind().http_status(), 404);
        for e in [
            PluginError::bad_request("x"),
            PluginError::not_found("x"),
            PluginError::conflict("x"),
            PluginError::unavailable("x"),
            PluginError::internal("x"),
        ] {
            assert_eq!(e.kind().http_status(), 500, "{:?}", e.kind());
        }
    }

    #[test]
    fn body_has_error_field_only_for_ipam() {
        let e = PluginError::not_found("no such pool p1");
        assert_eq!(
            serde_json::to_string(&e.to_body(false)).unwrap(),
            r#"{"Err":"no such pool p1"}"#
        );
        assert_eq!(
            serde_json::to_string(&e.to_body(true)).unwrap(),
            r#"{"Err":"no such pool p1","Error":"no such pool p1"}"#
        );
    }

    #[test]
    fn context_keeps_kind_and_prefixes() {
        let e = PluginError::conflict("already exists").context("network abc");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.to_string(), "network abc: already exists");
    }
}
