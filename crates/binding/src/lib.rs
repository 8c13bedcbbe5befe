//! kuryr-binding: the host side of Kuryr.
//!
//! A container's interface is made in the host namespace (Docker moves it into the sandbox):
//! a veth pair `tap…`/`t_c…` plugged according to the port's `binding:vif_type` (OVS, OVS
//! hybrid, Linux bridge, tap, or a kuryr-lib compatible hook script), or for Kuryr inside a VM
//! a macvlan/VLAN child of the VM's interface. The driver only sees the [`HostBinding`] trait.

mod bpf;
pub mod constants;
mod error;
pub mod hook;
pub mod link;
mod linux;
pub mod naming;
pub mod ovs;
mod sandbox;
mod types;
mod vlan_id;

#[cfg(any(test, feature = "fake"))]
mod fake;

pub use error::{BindingError, ErrorList};
pub use linux::{BindingConfig, LinuxHostBinding, VifPlugger};
pub use sandbox::{EnterSandbox, SandboxRef, SandboxRoute, SandboxState};
pub use types::{
    BindMode, BindRequest, BoundInterface, DockerId, MacAddr, OwnedKind, OwnedLink, UnbindRequest,
    VifType,
};
pub use vlan_id::pick_free_vlan_id;

#[cfg(any(test, feature = "fake"))]
pub use fake::{FakeCall, FakeHostBinding};

/// The host binding the driver calls from CreateEndpoint/Join (bind), DeleteEndpoint (unbind)
/// and at start-up (list_owned/remove_owned).
#[async_trait::async_trait]
pub trait HostBinding: Send + Sync {
    /// Makes the container interface and plugs it. On failure nothing is left behind.
    /// Binding an already bound port again succeeds (the existing links are reused).
    async fn bind(&self, req: &BindRequest) -> Result<BoundInterface, BindingError>;

    /// Unplugs and deletes everything `bind` made. Idempotent: "already gone" is success;
    /// every step is tried and all errors are reported together.
    async fn unbind(&self, req: &UnbindRequest) -> Result<(), BindingError>;

    /// Links and OVS ports Kuryr made on this host, with the port/endpoint they belong to.
    async fn list_owned(&self) -> Result<Vec<OwnedLink>, BindingError>;

    /// Removes one object returned by `list_owned` ("already gone" is success).
    async fn remove_owned(&self, link: &OwnedLink) -> Result<(), BindingError>;

    /// Hands a port plugged ahead of time (by `bind` for the owner [`constants::POOL_LINK_OWNER`])
    /// to an endpoint: only its links' owner mark, MAC and MTU change; nothing is re-plugged.
    /// `Ok(false)` when the port is not so plugged here (the caller binds it instead).
    async fn claim(&self, _req: &BindRequest) -> Result<bool, BindingError> {
        Ok(false)
    }

    /// Marks a claimed port's links as the pool's again (the endpoint left): the mark is what a
    /// restarted daemon reads to know the port was released. Links already gone are fine.
    async fn unclaim(&self, _req: &UnbindRequest) -> Result<(), BindingError> {
        Ok(())
    }

    /// Readies a pre-plugged port an endpoint gave back (after `unclaim`) for the next endpoint
    /// while keeping its plug: no OVS change, so the port stays ACTIVE. `Ok(false)` when that is
    /// not possible or not safe: a link is gone, or the container end carries something its
    /// last container set that survives the return to the host (an XDP or tcx program, flags).
    /// The caller then unbinds and binds afresh.
    async fn reuse(&self, _req: &BindRequest) -> Result<bool, BindingError> {
        Ok(false)
    }

    /// Moves a bound port's container end into a sandbox the caller's runtime made (CNI) and
    /// sets its addresses and routes there. Fails when the sandbox already has that interface.
    async fn enter_sandbox(&self, _req: &EnterSandbox) -> Result<(), BindingError> {
        Err(BindingError::Unsupported(
            "placing interfaces in sandboxes".into(),
        ))
    }

    /// Brings the endpoint's interface back from its sandbox to the host as `host_ifname` (as
    /// Docker does at Leave), or deletes it there when `None`. `Ok(false)` when the sandbox or
    /// the interface is gone, or the interface there is not the endpoint's.
    async fn leave_sandbox(
        &self,
        _sandbox: &SandboxRef,
        _host_ifname: Option<&str>,
    ) -> Result<bool, BindingError> {
        Ok(false)
    }

    /// The sandbox interface as it is now; `None` when the sandbox or the interface is gone.
    async fn inspect_sandbox(
        &self,
        _sandbox: &SandboxRef,
    ) -> Result<Option<SandboxState>, BindingError> {
        Ok(None)
    }

    /// The MAC address of a host interface (nested modes find the VM's own Neutron port by the
    /// MAC of its interface).
    async fn link_mac(&self, ifname: &str) -> Result<MacAddr, BindingError>;
}
