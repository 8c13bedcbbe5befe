//! The driver's error type. Every variant names the resource it is about; the text reaches
//! Docker (and so the user) as is, so it is short, lowercase and free of internal detail.

/// What went wrong in a driver call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Docker sent something we cannot act on; nothing was changed.
    #[error("{0}")]
    InvalidRequest(String),
    /// A resource the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what exists (e.g. an option mismatch or a port in use).
    #[error("{0}")]
    Conflict(String),
    /// Neutron refused or failed a request; `status` is its HTTP status when it answered.
    #[error("{context}: {message}")]
    Neutron {
        context: String,
        status: Option<u16>,
        message: String,
    },
    /// The host side (veth, OVS, hook script) failed.
    #[error("{0}")]
    Binding(String),
    /// A wait ran out (port not ACTIVE in time).
    #[error("{0}")]
    Timeout(String),
}

impl DriverError {
    /// Neutron's HTTP status, when this is a Neutron error with one.
    pub fn neutron_status(&self) -> Option<u16> {
        match self {
            DriverError::Neutron { status, .. } => *status,
            _ => None,
        }
    }

    /// Whether Neutron said "not found".
    pub fn is_not_found(&self) -> bool {
        matches!(self, DriverError::NotFound(_)) || self.neutron_status() == Some(404)
    }

    /// Whether Neutron said "conflict" (in use, overlap, duplicate).
    pub fn is_conflict(&self) -> bool {
        matches!(self, DriverError::Conflict(_)) || self.neutron_status() == Some(409)
    }
}

pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// Joins several tear-down errors into one (all of them are reported).
pub fn join_errors(context: &str, errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DriverError::Conflict(format!(
            "{context}: {}",
            errors.join("; ")
        )))
    }
}

/// The error of a failed set-up, with any failures of its rollback appended (so a leak is
/// visible in the message Docker shows).
pub fn with_rollback(e: DriverError, rollback_errors: Vec<String>) -> DriverError {
    if rollback_errors.is_empty() {
        return e;
    }
    let extra = format!(" (rollback failed: {})", rollback_errors.join("; "));
    match e {
        DriverError::InvalidRequest(m) => DriverError::InvalidRequest(m + &extra),
        DriverError::NotFound(m) => DriverError::NotFound(m + &extra),
        DriverError::Conflict(m) => DriverError::Conflict(m + &extra),
        DriverError::Neutron {
            context,
            status,
            message,
        } => DriverError::Neutron {
            context,
            status,
            message: message + &extra,
        },
        DriverError::Binding(m) => DriverError::Binding(m + &extra),
        DriverError::Timeout(m) => DriverError::Timeout(m + &extra),
    }
}
