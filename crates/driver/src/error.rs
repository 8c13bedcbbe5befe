//! The driver's error type. Every variant names the resource it is about, and errors from Neutron
//! and from the host keep their source (Neutron's error type and request id stay reachable for
//! logs). The `Display` text reaches Docker (and so the user) as is: short, lowercase, free of
//! internal detail.

/// Neutron's error type for a subnet without free addresses.
const NEUTRON_NO_MORE_ADDRESSES: &str = "IpAddressGenerationFailure";

use kuryr_binding::BindingError;
use kuryr_openstack::NeutronError;
use kuryr_types::Joined;

/// What went wrong in a driver call.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The request cannot be acted on; nothing was changed.
    #[error("{0}")]
    InvalidRequest(String),
    /// A resource the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what exists (an option mismatch, a port in use).
    #[error("{0}")]
    Conflict(String),
    /// Neutron refused or failed a request. Shown as `<context>: <Neutron's message>`.
    #[error("{context}: {}", neutron_message(.source))]
    Neutron {
        context: String,
        #[source]
        source: Box<NeutronError>,
    },
    /// The host side (veth, OVS, hook script) failed.
    #[error("{context}: {source}")]
    Binding {
        context: String,
        #[source]
        source: BindingError,
    },
    /// A wait ran out (port not ACTIVE in time).
    #[error("{0}")]
    Timeout(String),
    /// A best-effort tear-down: every step was tried, these failed.
    #[error("{context}: {}", Joined(.errors))]
    Teardown {
        context: String,
        errors: Vec<DriverError>,
    },
    /// A set-up failed and so did part of its rollback (something may be left behind: the text
    /// says what, so that the user sees it in Docker's message).
    #[error("{error} (rollback failed: {})", Joined(.rollback))]
    RollbackFailed {
        error: Box<DriverError>,
        rollback: Vec<UndoError>,
    },
}

/// One rollback step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct UndoError {
    pub step: String,
    pub message: String,
}

/// Neutron's own message (without the method and path, which mean nothing to a Docker user).
/// When Neutron could not be reached or failed, the text says so and names the cause an
/// operator can act on (the address tried, refused or reset connections, a timeout), not the
/// HTTP client's wording.
fn neutron_message(e: &NeutronError) -> String {
    let message = match e.context() {
        Some(c) if !c.message.is_empty() => c.message.trim_end_matches('.').to_string(),
        _ => return e.to_string(),
    };
    match e {
        NeutronError::Transport(_) => match unreachable_cause(&message) {
            Some((url, cause)) => format!("cannot reach Neutron at {url}: {cause}"),
            None => format!("Neutron's connection failed: {message}"),
        },
        NeutronError::Timeout(_) => match unreachable_cause(&message) {
            Some((url, _)) => format!("Neutron at {url} did not answer in time"),
            None => format!("Neutron did not answer in time: {message}"),
        },
        NeutronError::Server { status, .. } => format!("Neutron failed ({status}): {message}"),
        _ => message,
    }
}

/// From an HTTP client's description (`error sending request for url (http://h:p/v2.0/...):
/// client error (Connect): tcp connect error: Connection refused (os error 111)`): Neutron's
/// address (scheme, host and port) and the innermost cause.
fn unreachable_cause(message: &str) -> Option<(String, String)> {
    let start = message.find("url (")? + "url (".len();
    let url = &message[start..];
    let url = &url[..url.find(')')?];
    let origin_end = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(url.len());
    let cause = message
        .rsplit(": ")
        .next()
        .filter(|c| !c.starts_with("error sending request"))
        .unwrap_or("the request failed")
        .to_lowercase();
    Some((url[..origin_end].to_string(), cause))
}

/// What Docker should make of an error: the classes of `PluginError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    BadRequest,
    NotFound,
    Conflict,
    /// Try again later (Neutron down or slow).
    Unavailable,
    /// A fault of this host (binding) or of Kuryr.
    Internal,
}

impl DriverError {
    pub fn neutron(context: impl Into<String>, source: NeutronError) -> Self {
        DriverError::Neutron {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub fn binding(context: impl Into<String>, source: BindingError) -> Self {
        DriverError::Binding {
            context: context.into(),
            source,
        }
    }

    /// The Neutron error behind this one, if any.
    pub fn neutron_source(&self) -> Option<&NeutronError> {
        match self {
            DriverError::Neutron { source, .. } => Some(&**source),
            DriverError::RollbackFailed { error, .. } => error.neutron_source(),
            _ => None,
        }
    }

    /// Whether the resource was not found (here or in Neutron).
    pub fn is_not_found(&self) -> bool {
        matches!(self, DriverError::NotFound(_))
            || self
                .neutron_source()
                .is_some_and(NeutronError::is_not_found)
    }

    /// Whether this conflicts with what exists (here or in Neutron: in use, overlap, duplicate).
    pub fn is_conflict(&self) -> bool {
        matches!(self, DriverError::Conflict(_))
            || self.neutron_source().is_some_and(NeutronError::is_conflict)
    }

    /// Whether Neutron has no free address left on the subnet.
    pub fn is_address_exhausted(&self) -> bool {
        self.neutron_source()
            .and_then(NeutronError::neutron_kind)
            .is_some_and(|k| k == NEUTRON_NO_MORE_ADDRESSES)
    }

    /// How Docker should see this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            DriverError::InvalidRequest(_) => ErrorClass::BadRequest,
            DriverError::NotFound(_) => ErrorClass::NotFound,
            DriverError::Conflict(_) => ErrorClass::Conflict,
            DriverError::Neutron { source, .. } => match source.status() {
                Some(404) => ErrorClass::NotFound,
                Some(409) => ErrorClass::Conflict,
                Some(s) if (400..500).contains(&s) => ErrorClass::BadRequest,
                _ => ErrorClass::Unavailable,
            },
            DriverError::Binding { .. } => ErrorClass::Internal,
            DriverError::Timeout(_) => ErrorClass::Unavailable,
            // A tear-down that left something behind: Docker must not forget the object.
            DriverError::Teardown { errors, .. } => errors
                .iter()
                .map(DriverError::class)
                .find(|c| *c != ErrorClass::NotFound)
                .unwrap_or(ErrorClass::Internal),
            DriverError::RollbackFailed { error, .. } => error.class(),
        }
    }
}

pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// The outcome of a best-effort tear-down: `Ok` when every step worked, else every failure.
pub fn teardown_result(context: impl Into<String>, errors: Vec<DriverError>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DriverError::Teardown {
            context: context.into(),
            errors,
        })
    }
}

/// The error of a failed set-up, with the failures of its rollback attached (so that a leak is
/// visible in the message Docker shows).
pub fn with_rollback(e: DriverError, rollback: Vec<UndoError>) -> DriverError {
    if rollback.is_empty() {
        e
    } else {
        DriverError::RollbackFailed {
            error: Box::new(e),
            rollback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuryr_openstack::neutron::ErrorContext;

    fn conflict() -> NeutronError {
        NeutronError::from_status(
            409,
            ErrorContext::new(
                "POST",
                "/v2.0/ports",
                "IP address 10.0.0.5 already allocated.",
            )
            .with_kind("IpAddressAlreadyAllocated")
            .with_request_id(Some("req-1".into())),
        )
    }

    #[test]
    fn unreachable_or_failing_neutron_is_named_with_the_cause() {
        let refused = NeutronError::Transport(ErrorContext::new(
            "GET",
            "/v2.0/subnetpools",
            "error sending request for url (http://127.0.0.1:9696/v2.0/subnetpools?name=a): client error (Connect): tcp connect error: Connection refused (os error 111)",
        ));
        assert_eq!(
            DriverError::neutron("list subnetpools", refused).to_string(),
            "list subnetpools: cannot reach Neutron at http://127.0.0.1:9696: connection refused (os error 111)"
        );
        let timeout = NeutronError::Timeout(ErrorContext::new(
            "POST",
            "/v2.0/ports",
            "error sending request for url (http://n:9696/v2.0/ports): operation timed out",
        ));
        assert_eq!(
            DriverError::neutron("create port", timeout).to_string(),
            "create port: Neutron at http://n:9696 did not answer in time"
        );
        let reset =
            NeutronError::Transport(ErrorContext::new("GET", "/p", "reading the body: reset"));
        assert_eq!(
            DriverError::neutron("get", reset).to_string(),
            "get: Neutron's connection failed: reading the body: reset"
        );
        let server = NeutronError::from_status(
            500,
            ErrorContext::new(
                "POST",
                "/v2.0/ports",
                "Request Failed: internal server error.",
            ),
        );
        assert_eq!(
            DriverError::neutron("create port", server).to_string(),
            "create port: Neutron failed (500): Request Failed: internal server error"
        );
    }

    #[test]
    fn neutron_errors_keep_their_source_and_show_only_the_message() {
        let e = DriverError::neutron("create port on network n1", conflict());
        assert_eq!(
            e.to_string(),
            "create port on network n1: IP address 10.0.0.5 already allocated"
        );
        let src = std::error::Error::source(&e).expect("source kept");
        assert!(src.to_string().contains("req-1"), "{src}");
        assert!(e.is_conflict());
        assert_eq!(e.class(), ErrorClass::Conflict);
    }

    #[test]
    fn teardown_and_rollback_list_every_failure() {
        let e = teardown_result(
            "delete endpoint e1",
            vec![
                DriverError::Conflict("a".into()),
                DriverError::neutron("untag port p1", conflict()),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "delete endpoint e1: a; untag port p1: IP address 10.0.0.5 already allocated"
        );
        assert_eq!(e.class(), ErrorClass::Conflict);
        let r = with_rollback(
            DriverError::Timeout("port p1 not active".into()),
            vec![UndoError {
                step: "delete port p1".into(),
                message: "boom".into(),
            }],
        );
        assert_eq!(
            r.to_string(),
            "port p1 not active (rollback failed: delete port p1: boom)"
        );
        assert_eq!(r.class(), ErrorClass::Unavailable);
        assert!(teardown_result("x", vec![]).is_ok());
    }
}
