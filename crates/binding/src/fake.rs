//! In-memory `HostBinding` for the driver's unit tests: records every call, keeps the set of
//! bound ports (so `list_owned` reflects binds/unbinds), and fails on demand.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::naming;
use crate::{
    BindMode, BindRequest, BindingError, BoundInterface, HostBinding, OwnedKind, OwnedLink,
    UnbindRequest,
};

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeCall {
    Bind(BindRequest),
    Unbind(UnbindRequest),
    ListOwned,
    RemoveOwned(OwnedLink),
    Claim(BindRequest),
    Unclaim(UnbindRequest),
    Reuse(BindRequest),
    EnterSandbox(crate::EnterSandbox),
    LeaveSandbox(crate::SandboxRef, Option<String>),
}

#[derive(Default)]
struct State {
    calls: Vec<FakeCall>,
    /// port id -> owned links made for it.
    bound: BTreeMap<String, Vec<OwnedLink>>,
    fail_bind: Option<String>,
    fail_unbind: Option<String>,
    fail_list: Option<String>,
    link_macs: BTreeMap<String, crate::MacAddr>,
    /// Ports whose container end came back with a container's settings (`reuse` refuses until
    /// the port is bound afresh).
    dirty: std::collections::BTreeSet<String>,
    /// (netns, ifname) -> the endpoint's interface placed there.
    sandboxes: BTreeMap<(std::path::PathBuf, String), (crate::DockerId, crate::SandboxState)>,
    /// Namespaces that exist (`enter_sandbox` refuses others).
    netns: std::collections::BTreeSet<std::path::PathBuf>,
}

/// Records calls; `fail_next_*` make the next call of that kind fail (once).
#[derive(Default)]
pub struct FakeHostBinding {
    state: Mutex<State>,
}

impl FakeHostBinding {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn calls(&self) -> Vec<FakeCall> {
        self.lock().calls.clone()
    }

    /// Forgets the calls recorded so far (and their memory).
    pub fn reset_calls(&self) {
        self.lock().calls = Vec::new();
    }

    /// Port ids currently bound.
    pub fn bound_ports(&self) -> Vec<String> {
        self.lock().bound.keys().cloned().collect()
    }

    pub fn fail_next_bind(&self, message: &str) {
        self.lock().fail_bind = Some(message.to_string());
    }

    pub fn fail_next_unbind(&self, message: &str) {
        self.lock().fail_unbind = Some(message.to_string());
    }

    pub fn fail_next_list(&self, message: &str) {
        self.lock().fail_list = Some(message.to_string());
    }

    /// Gives a host interface a MAC (what `link_mac` answers).
    pub fn set_link_mac(&self, ifname: &str, mac: crate::MacAddr) {
        self.lock().link_macs.insert(ifname.to_string(), mac);
    }

    /// The port's container end comes back with settings of its container: `reuse` says no
    /// until the port is bound afresh.
    pub fn mark_dirty(&self, port_id: &str) {
        self.lock().dirty.insert(port_id.to_string());
    }

    /// A network namespace the runtime made (what `enter_sandbox` needs).
    pub fn add_netns(&self, path: &str) {
        self.lock().netns.insert(path.into());
    }

    /// The runtime deleted a namespace: its interfaces go with it.
    pub fn remove_netns(&self, path: &str) {
        let mut st = self.lock();
        let p = std::path::PathBuf::from(path);
        st.netns.remove(&p);
        st.sandboxes.retain(|(ns, _), _| *ns != p);
    }

    /// The interfaces placed in sandboxes: (netns, ifname).
    pub fn sandboxed(&self) -> Vec<(String, String)> {
        self.lock()
            .sandboxes
            .keys()
            .map(|(ns, i)| (ns.display().to_string(), i.clone()))
            .collect()
    }

    /// Something changed the sandbox interface behind Kuryr's back (for CHECK tests).
    pub fn tamper_sandbox(
        &self,
        path: &str,
        ifname: &str,
        f: impl FnOnce(&mut crate::SandboxState),
    ) {
        if let Some((_, st)) = self
            .lock()
            .sandboxes
            .get_mut(&(path.into(), ifname.to_string()))
        {
            f(st);
        }
    }

    /// Pretends a previous run left links for this port/endpoint (for reconcile tests).
    pub fn insert_owned(&self, port_id: &str, endpoint_id: &str) {
        let links = owned_for(port_id, endpoint_id, true);
        self.lock().bound.insert(port_id.to_string(), links);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test must not poison other assertions.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn owned_for(port_id: &str, endpoint_id: &str, veth: bool) -> Vec<OwnedLink> {
    let name = if veth {
        naming::host_veth_name(port_id)
    } else {
        naming::container_ifname(port_id)
    };
    vec![OwnedLink {
        kind: OwnedKind::Link,
        name,
        port_id: Some(port_id.to_string()),
        endpoint_id: Some(endpoint_id.to_string()),
        bridge: None,
    }]
}

#[async_trait::async_trait]
impl HostBinding for FakeHostBinding {
    async fn bind(&self, req: &BindRequest) -> Result<BoundInterface, BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::Bind(req.clone()));
        if let Some(message) = st.fail_bind.take() {
            return Err(BindingError::Other(message));
        }
        let veth = matches!(req.mode, BindMode::Veth);
        // New links: nothing of a container on them.
        st.dirty.remove(&req.port_id);
        st.bound.insert(
            req.port_id.clone(),
            owned_for(&req.port_id, req.endpoint_id.as_str(), veth),
        );
        Ok(BoundInterface {
            container_ifname: naming::container_ifname(&req.port_id),
            host_ifname: veth.then(|| naming::host_veth_name(&req.port_id)),
        })
    }

    async fn unbind(&self, req: &UnbindRequest) -> Result<(), BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::Unbind(req.clone()));
        if let Some(message) = st.fail_unbind.take() {
            return Err(BindingError::Other(message));
        }
        st.bound.remove(&req.port_id);
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<OwnedLink>, BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::ListOwned);
        if let Some(message) = st.fail_list.take() {
            return Err(BindingError::Other(message));
        }
        Ok(st.bound.values().flatten().cloned().collect())
    }

    async fn remove_owned(&self, link: &OwnedLink) -> Result<(), BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::RemoveOwned(link.clone()));
        for links in st.bound.values_mut() {
            links.retain(|l| l != link);
        }
        st.bound.retain(|_, links| !links.is_empty());
        Ok(())
    }

    async fn claim(&self, req: &BindRequest) -> Result<bool, BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::Claim(req.clone()));
        let Some(links) = st.bound.get_mut(&req.port_id) else {
            return Ok(false);
        };
        if links
            .iter()
            .any(|l| l.endpoint_id.as_deref() != Some(crate::constants::POOL_LINK_OWNER))
        {
            return Ok(false);
        }
        for l in links.iter_mut() {
            l.endpoint_id = Some(req.endpoint_id.to_string());
        }
        Ok(true)
    }

    async fn unclaim(&self, req: &UnbindRequest) -> Result<(), BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::Unclaim(req.clone()));
        if let Some(links) = st.bound.get_mut(&req.port_id) {
            for l in links.iter_mut() {
                l.endpoint_id = Some(crate::constants::POOL_LINK_OWNER.to_string());
            }
        }
        Ok(())
    }

    async fn reuse(&self, req: &BindRequest) -> Result<bool, BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::Reuse(req.clone()));
        if st.dirty.contains(&req.port_id) {
            return Ok(false);
        }
        Ok(st.bound.get(&req.port_id).is_some_and(|links| {
            links
                .iter()
                .all(|l| l.endpoint_id.as_deref() == Some(crate::constants::POOL_LINK_OWNER))
        }))
    }

    async fn enter_sandbox(&self, req: &crate::EnterSandbox) -> Result<(), BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::EnterSandbox(req.clone()));
        let sb = &req.sandbox;
        if !st.netns.contains(&sb.netns) {
            return Err(BindingError::InvalidRequest(format!(
                "network namespace {} does not exist",
                sb.netns.display()
            )));
        }
        let key = (sb.netns.clone(), sb.ifname.clone());
        if st.sandboxes.contains_key(&key) {
            return Err(BindingError::InvalidRequest(format!(
                "interface {} already exists in {}",
                sb.ifname,
                sb.netns.display()
            )));
        }
        let port = st
            .bound
            .keys()
            .find(|p| naming::container_ifname(p) == req.host_ifname)
            .cloned()
            .ok_or_else(|| BindingError::LinkNotFound(req.host_ifname.clone()))?;
        let state = crate::SandboxState {
            mac: None,
            mtu: None,
            up: true,
            addresses: req.addresses.clone(),
            routes: req.routes.clone(),
            alias: Some(naming::link_alias(sb.endpoint_id.as_str(), &port)),
        };
        st.sandboxes.insert(key, (sb.endpoint_id.clone(), state));
        Ok(())
    }

    async fn leave_sandbox(
        &self,
        sandbox: &crate::SandboxRef,
        host_ifname: Option<&str>,
    ) -> Result<bool, BindingError> {
        let mut st = self.lock();
        st.calls.push(FakeCall::LeaveSandbox(
            sandbox.clone(),
            host_ifname.map(str::to_string),
        ));
        let key = (sandbox.netns.clone(), sandbox.ifname.clone());
        match st.sandboxes.get(&key) {
            Some((ep, _)) if *ep == sandbox.endpoint_id => {
                st.sandboxes.remove(&key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn inspect_sandbox(
        &self,
        sandbox: &crate::SandboxRef,
    ) -> Result<Option<crate::SandboxState>, BindingError> {
        let st = self.lock();
        Ok(st
            .sandboxes
            .get(&(sandbox.netns.clone(), sandbox.ifname.clone()))
            .map(|(_, s)| s.clone()))
    }

    async fn link_mac(&self, ifname: &str) -> Result<crate::MacAddr, BindingError> {
        self.lock()
            .link_macs
            .get(ifname)
            .copied()
            .ok_or_else(|| BindingError::LinkNotFound(ifname.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MacAddr;

    fn req() -> BindRequest {
        BindRequest {
            port_id: "0123456789abcdef".into(),
            endpoint_id: "ep".parse().unwrap(),
            network_id: "net".into(),
            project_id: String::new(),
            mac: "fa:16:3e:00:00:01".parse::<MacAddr>().unwrap(),
            mtu: None,
            vif_type: "ovs".into(),
            vif_details: Default::default(),
            mode: BindMode::Veth,
        }
    }

    #[tokio::test]
    async fn records_and_fails_once() {
        let fake = FakeHostBinding::new();
        fake.fail_next_bind("boom");
        assert!(fake.bind(&req()).await.is_err());
        let b = fake.bind(&req()).await.unwrap();
        assert_eq!(b.container_ifname, "t_c0123456789a");
        assert_eq!(b.host_ifname.as_deref(), Some("tap0123456789a"));
        assert_eq!(fake.list_owned().await.unwrap().len(), 1);
        fake.unbind(&UnbindRequest::from(&req())).await.unwrap();
        assert!(fake.bound_ports().is_empty());
        assert_eq!(fake.calls().len(), 4);
    }
}
