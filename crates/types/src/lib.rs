//! kuryr-types: the values every layer of Kuryr passes around, each validated once, where it
//! enters (Docker's wire, Neutron's answers, `kuryr.conf`), and typed from then on.
//!
//! No I/O and no dependency on any other Kuryr crate: the wire layer, the driver, the OpenStack
//! client and the host binding all build on it.

mod backoff;
mod boolean;
pub mod calendar;
mod docker_id;
mod error;
mod mac;
mod pool_ref;
mod port;

pub use backoff::Backoff;
pub use boolean::parse_bool;
pub use docker_id::DockerId;
pub use error::ParseError;
pub use mac::MacAddr;
pub use pool_ref::PoolRef;
pub use port::{PortStatus, VifType};

/// Shortens user input quoted in an error message (inputs can be megabytes long).
pub(crate) fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

/// Displays a list as `a; b; c`: how every "several things failed" error reads.
pub struct Joined<'a, T>(pub &'a [T]);

impl<T: std::fmt::Display> std::fmt::Display for Joined<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
