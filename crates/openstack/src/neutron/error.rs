//! Errors of Neutron (and Keystone) calls, typed by what the caller can do about them.

use std::fmt;

/// What a failed request was: the call, Neutron's message and the request id to find it in the
/// server logs. Never holds credentials (auth bodies are not echoed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorContext {
    /// `GET`, `POST`, ... (empty when the error did not come from a request).
    pub method: String,
    /// The URL path (and query) of the request, e.g. `/v2.0/ports/abc`.
    pub path: String,
    /// Neutron's (or Keystone's) message, or a description of the failure.
    pub message: String,
    /// Neutron's error type, e.g. `IpAddressAlreadyAllocated`, `PortNotFound`.
    /// (Boxed: errors travel in every `Result` of the client and must stay small.)
    pub kind: Option<Box<str>>,
    /// `x-openstack-request-id` of the response.
    pub request_id: Option<Box<str>>,
    /// The request never reached Neutron (the connection could not be made): nothing was done.
    pub unsent: bool,
}

impl ErrorContext {
    pub fn new(method: &str, path: &str, message: impl Into<String>) -> Self {
        ErrorContext {
            method: method.to_string(),
            path: path.to_string(),
            message: message.into(),
            kind: None,
            request_id: None,
            unsent: false,
        }
    }

    /// Marks a request that never reached Neutron.
    pub fn unsent(mut self) -> Self {
        self.unsent = true;
        self
    }

    /// Set Neutron's error type.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into().into_boxed_str());
        self
    }

    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id.map(String::into_boxed_str);
        self
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.method.is_empty() {
            write!(f, "{} {}: ", self.method, self.path)?;
        }
        if let Some(k) = &self.kind {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// A failed Neutron or Keystone request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeutronError {
    /// 404.
    #[error("not found: {0}")]
    NotFound(ErrorContext),
    /// 409: in use, already allocated, duplicate.
    #[error("conflict: {0}")]
    Conflict(ErrorContext),
    /// 400 with Neutron's explanation.
    #[error("bad request: {0}")]
    BadRequest(ErrorContext),
    /// 401 after one re-authentication, or Keystone refused the credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(ErrorContext),
    /// 403.
    #[error("forbidden: {0}")]
    Forbidden(ErrorContext),
    /// Any other 4xx.
    #[error("client error {status}: {ctx}")]
    Client { status: u16, ctx: ErrorContext },
    /// 5xx (after retries for idempotent requests).
    #[error("server error {status}: {ctx}")]
    Server { status: u16, ctx: ErrorContext },
    /// The request did not complete within the configured timeout.
    #[error("timed out: {0}")]
    Timeout(ErrorContext),
    /// Connection refused, reset, TLS failure...
    #[error("transport error: {0}")]
    Transport(ErrorContext),
    /// The response was not what the API documents.
    #[error("invalid response: {0}")]
    Decode(ErrorContext),
    /// The client cannot be built or cannot find its endpoint (bad options, no catalog entry).
    #[error("configuration error: {0}")]
    Config(String),
}

impl NeutronError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, NeutronError::NotFound(_))
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, NeutronError::Conflict(_))
    }

    pub fn is_bad_request(&self) -> bool {
        matches!(self, NeutronError::BadRequest(_))
    }

    /// True for failures that may go away on their own (5xx, timeouts, transport).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NeutronError::Server { .. } | NeutronError::Timeout(_) | NeutronError::Transport(_)
        )
    }

    /// Whether Neutron may have done what the request asked although the caller got no answer
    /// (a reset or a timeout after the request went out): a create may have created.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            NeutronError::Timeout(_) => true,
            NeutronError::Transport(c) => !c.unsent,
            _ => false,
        }
    }

    /// The HTTP status, when the error is a response.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            NeutronError::NotFound(_) => 404,
            NeutronError::Conflict(_) => 409,
            NeutronError::BadRequest(_) => 400,
            NeutronError::Unauthorized(_) => 401,
            NeutronError::Forbidden(_) => 403,
            NeutronError::Client { status, .. } | NeutronError::Server { status, .. } => *status,
            _ => return None,
        })
    }

    pub fn context(&self) -> Option<&ErrorContext> {
        match self {
            NeutronError::NotFound(c)
            | NeutronError::Conflict(c)
            | NeutronError::BadRequest(c)
            | NeutronError::Unauthorized(c)
            | NeutronError::Forbidden(c)
            | NeutronError::Timeout(c)
            | NeutronError::Transport(c)
            | NeutronError::Decode(c)
            | NeutronError::Client { ctx: c, .. }
            | NeutronError::Server { ctx: c, .. } => Some(c),
            NeutronError::Config(_) => None,
        }
    }

    /// Neutron's error type (`IpAddressAlreadyAllocated`, `SubnetInUse`, ...), if it sent one.
    pub fn neutron_kind(&self) -> Option<&str> {
        self.context().and_then(|c| c.kind.as_deref())
    }

    /// `x-openstack-request-id` of the failed response.
    pub fn request_id(&self) -> Option<&str> {
        self.context().and_then(|c| c.request_id.as_deref())
    }

    /// The error for an HTTP status.
    pub fn from_status(status: u16, ctx: ErrorContext) -> Self {
        match status {
            400 => NeutronError::BadRequest(ctx),
            401 => NeutronError::Unauthorized(ctx),
            403 => NeutronError::Forbidden(ctx),
            404 => NeutronError::NotFound(ctx),
            409 => NeutronError::Conflict(ctx),
            500..=599 => NeutronError::Server { status, ctx },
            _ => NeutronError::Client { status, ctx },
        }
    }
}

/// Result of a Neutron call.
pub type Result<T, E = NeutronError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_call_kind_and_request_id() {
        let e = NeutronError::from_status(
            409,
            ErrorContext::new(
                "POST",
                "/v2.0/ports",
                "IP address 10.0.0.5 already allocated",
            )
            .with_kind("IpAddressAlreadyAllocated")
            .with_request_id(Some("req-1".into())),
        );
        assert!(e.is_conflict());
        assert_eq!(e.neutron_kind(), Some("IpAddressAlreadyAllocated"));
        assert_eq!(
            e.to_string(),
            "conflict: POST /v2.0/ports: IpAddressAlreadyAllocated: IP address 10.0.0.5 already allocated (request id req-1)"
        );
        assert_eq!(
            NeutronError::from_status(503, ErrorContext::default()).status(),
            Some(503)
        );
        assert!(NeutronError::from_status(502, ErrorContext::default()).is_transient());
        assert!(!NeutronError::from_status(404, ErrorContext::default()).is_transient());
    }
}
