use std::fmt;

/// Errors of the host binding; each names the resource it is about.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// The request is invalid; nothing was touched on the host.
    #[error("invalid binding request: {0}")]
    InvalidRequest(String),
    /// The vif type has no native plugger and no hook script in bindir.
    #[error("vif_type {vif_type:?} is not supported: no binding script {path}")]
    VifTypeNotSupported { vif_type: String, path: String },
    /// A netlink operation on a link failed.
    #[error("link {link}: {op} failed: {message}")]
    Link {
        link: String,
        op: &'static str,
        message: String,
    },
    /// The link a nested mode needs (the VM's interface) does not exist.
    #[error("link {0} not found")]
    LinkNotFound(String),
    /// An ovs-vsctl transaction failed or timed out.
    #[error("ovs port {port}: {message}")]
    Ovs { port: String, message: String },
    /// A hook script failed, timed out or could not be started; stderr is included.
    #[error("binding script {script} {subcommand} for port {port_id}: {message}")]
    Hook {
        script: String,
        subcommand: &'static str,
        port_id: String,
        message: String,
    },
    /// A hook script the daemon refuses to run as root (others could change it).
    #[error("binding script {path} refused: {reason}")]
    UnsafeHook { path: String, reason: String },
    /// The host does not support something (e.g. no 8021q module for VLAN children).
    #[error("not supported on this host: {0}")]
    Unsupported(String),
    /// No free VLAN ID is left on the trunk.
    #[error("no free vlan id left (all of {min}..={max} in use)")]
    NoFreeVlanId { min: u16, max: u16 },
    /// Tear-down collected several errors; all are reported.
    #[error("{0}")]
    Multiple(ErrorList),
    /// Anything else (e.g. the netlink worker went away).
    #[error("{0}")]
    Other(String),
}

/// Several errors from one best-effort tear-down.
#[derive(Debug, Default)]
pub struct ErrorList(pub Vec<BindingError>);

impl fmt::Display for ErrorList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        kuryr_types::Joined(&self.0).fmt(f)
    }
}

impl ErrorList {
    pub fn push(&mut self, r: Result<(), BindingError>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }

    /// `Ok` when nothing failed, the single error, or `Multiple`.
    pub fn into_result(mut self) -> Result<(), BindingError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.remove(0)),
            _ => Err(BindingError::Multiple(self)),
        }
    }
}
