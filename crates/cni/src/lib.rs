//! kuryr-cni: the CNI side of Kuryr.
//!
//! - [`wire`]: the CNI spec's JSON (network configuration, results in every supported
//!   version, error objects and codes).
//! - [`command`]: a CNI call (environment + stdin) parsed and validated into one typed command.
//! - [`forward`]: how the `kuryr-cni` binary hands a call to the node daemon (`kuryr-server`
//!   with `[cni_daemon] enabled`), which owns Neutron, the pools and the host binding.

pub mod command;
pub mod forward;
pub mod wire;

pub use command::{parse_call, Command, Invocation};
pub use wire::{CniError, NetConf, SUPPORTED_VERSIONS};
