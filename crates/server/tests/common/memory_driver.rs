//! An in-memory NetworkDriver + IpamDriver: addresses from a pool, a real veth pair per endpoint
//! in the host netns (optional), and a log of every call in order. Test code, not a product mode.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use kuryr_plugin_api::async_trait;
use kuryr_plugin_api::ipam::{
    AddressSpacesResponse, IpamCapabilitiesResponse, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use kuryr_plugin_api::network::{
    CapabilitiesResponse, CreateEndpointRequest, CreateEndpointResponse, CreateNetworkRequest,
    DeleteEndpointRequest, DeleteNetworkRequest, EndpointOperInfoRequest, EndpointOperInfoResponse,
    InterfaceName, JoinRequest, JoinResponse, LeaveRequest, ProgramExternalConnectivityRequest,
    RevokeExternalConnectivityRequest, Scope, StaticRoute,
};
use kuryr_plugin_api::{DockerId, IpamDriver, MacAddr, NetworkDriver, PluginError, PoolId};

/// The extra route a container joined to a network with gateway `gw` gets, so tests can see
/// static routes arrive: `198.18.<second octet of gw>.0/24` (distinct per test network, since
/// two endpoints of one container cannot carry the same route).
pub fn extra_route_for(gw: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(198, 18, gw.octets()[1], 0), 24).unwrap()
}
/// Address space reported by the in-memory IPAM.
pub const ADDRESS_SPACE: &str = "memtest";

/// One recorded call: `"NetworkDriver.Join"` plus the main ID it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub id: String,
}

/// What to do instead of the normal behaviour for a given method.
#[derive(Debug, Clone)]
pub enum Fault {
    Fail(PluginError),
    Panic,
    Hang(Duration),
}

struct Pool {
    cidr: IpNet,
    used: BTreeSet<IpAddr>,
}

struct Network {
    gateway: Option<Ipv4Addr>,
}

struct Endpoint {
    host_if: String,
    container_if: String,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// What the server told the driver of (answers Docker had), apart from the calls.
    notified: Vec<Call>,
    pools: HashMap<PoolId, Pool>,
    networks: HashMap<DockerId, Network>,
    endpoints: HashMap<DockerId, Endpoint>,
    faults: HashMap<&'static str, Fault>,
}

/// See the module docs.
pub struct MemoryDriver {
    create_links: bool,
    link_prefix: String,
    next_pool: AtomicU32,
    state: Mutex<State>,
}

impl MemoryDriver {
    /// A driver that creates veth pairs named `<prefix>h<id>` / `<prefix>c<id>` in the host netns.
    pub fn with_links(prefix: &str) -> Self {
        assert!(prefix.len() <= 4, "interface names are limited to 15 bytes");
        MemoryDriver {
            create_links: true,
            link_prefix: prefix.to_owned(),
            next_pool: AtomicU32::new(0),
            state: Mutex::default(),
        }
    }

    /// A driver that only pretends to create links (protocol tests).
    pub fn without_links() -> Self {
        MemoryDriver {
            create_links: false,
            link_prefix: "mt".into(),
            next_pool: AtomicU32::new(0),
            state: Mutex::default(),
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn notified(&self) -> Vec<Call> {
        self.state.lock().unwrap().notified.clone()
    }

    /// Method names only, in order.
    pub fn methods(&self) -> Vec<&'static str> {
        self.calls().into_iter().map(|c| c.method).collect()
    }

    /// Makes `method` (e.g. `"NetworkDriver.Join"`) misbehave from now on.
    pub fn inject(&self, method: &'static str, fault: Fault) {
        self.state.lock().unwrap().faults.insert(method, fault);
    }

    /// Live networks and endpoints, as `KuryrDriver::held` counts them.
    pub fn held(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        (s.networks.len(), s.endpoints.len())
    }

    /// Host-side interface names of the live endpoints.
    pub fn host_links(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.endpoints.values().map(|e| e.host_if.clone()).collect()
    }

    /// Records the call and applies an injected fault, if any.
    async fn enter(&self, method: &'static str, id: impl ToString) -> Result<(), PluginError> {
        let fault = {
            let mut s = self.state.lock().unwrap();
            s.calls.push(Call {
                method,
                id: id.to_string(),
            });
            s.faults.get(method).cloned()
        };
        match fault {
            None => Ok(()),
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::Panic) => panic!("injected panic in {method}"),
            Some(Fault::Hang(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        }
    }

    /// Records a synchronous notification (no fault applies).
    fn told(&self, method: &'static str, id: String) {
        self.state
            .lock()
            .unwrap()
            .notified
            .push(Call { method, id });
    }

    fn names(&self, endpoint: &DockerId) -> (String, String) {
        let short = endpoint.short(9);
        (
            format!("{}h{short}", self.link_prefix),
            format!("{}c{short}", self.link_prefix),
        )
    }

    /// A locally administered MAC derived from the endpoint ID.
    pub fn mac_for(endpoint: &DockerId) -> MacAddr {
        let mut o: [u8; 6] = [0x02, 0, 0, 0, 0, 0];
        for (i, b) in endpoint.as_str().bytes().enumerate() {
            o[1 + i % 5] = o[1 + i % 5].wrapping_mul(31).wrapping_add(b);
        }
        MacAddr::new(o)
    }
}

async fn ip(args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes a link; "not found" is success (teardown is idempotent).
pub async fn delete_link(name: &str) -> Result<(), String> {
    match ip(&["link", "del", name]).await {
        Ok(()) => Ok(()),
        Err(e) if e.contains("Cannot find device") || e.contains("does not exist") => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl NetworkDriver for MemoryDriver {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse, PluginError> {
        self.enter("NetworkDriver.GetCapabilities", "").await?;
        Ok(CapabilitiesResponse {
            scope: Scope::Local,
            connectivity_scope: None,
            gw_alloc_checker: false,
        })
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError> {
        self.enter("NetworkDriver.CreateNetwork", &req.network_id)
            .await?;
        let gateway = req.ipv4_data.first().and_then(|d| match d.gateway {
            Some(IpNet::V4(gw)) => Some(gw.addr()),
            _ => None,
        });
        self.state
            .lock()
            .unwrap()
            .networks
            .insert(req.network_id, Network { gateway });
        Ok(())
    }

    async fn delete_network(&self, req: DeleteNetworkRequest) -> Result<(), PluginError> {
        self.enter("NetworkDriver.DeleteNetwork", &req.network_id)
            .await?;
        self.state.lock().unwrap().networks.remove(&req.network_id);
        Ok(())
    }

    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        self.enter("NetworkDriver.CreateEndpoint", &req.endpoint_id)
            .await?;
        if !self
            .state
            .lock()
            .unwrap()
            .networks
            .contains_key(&req.network_id)
        {
            return Err(PluginError::not_found(format!(
                "network {} not found",
                req.network_id
            )));
        }
        let (host_if, container_if) = self.names(&req.endpoint_id);
        let mac = req
            .interface
            .mac_address
            .unwrap_or_else(|| Self::mac_for(&req.endpoint_id));
        if self.create_links {
            let mac_s = mac.to_string();
            ip(&[
                "link",
                "add",
                &host_if,
                "type",
                "veth",
                "peer",
                "name",
                &container_if,
                "address",
                &mac_s,
            ])
            .await
            .map_err(|e| PluginError::internal(format!("endpoint {}: {e}", req.endpoint_id)))?;
            if let Err(e) = ip(&["link", "set", &host_if, "up"]).await {
                // Unwind: the endpoint does not exist unless all of it does.
                let _ = delete_link(&host_if).await;
                return Err(PluginError::internal(format!(
                    "endpoint {}: {e}",
                    req.endpoint_id
                )));
            }
        }
        self.state.lock().unwrap().endpoints.insert(
            req.endpoint_id.clone(),
            Endpoint {
                host_if,
                container_if,
            },
        );
        Ok(CreateEndpointResponse::with_mac_if_unset(&req, mac))
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        self.enter("NetworkDriver.EndpointOperInfo", &req.endpoint_id)
            .await?;
        Ok(EndpointOperInfoResponse::default())
    }

    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> Result<(), PluginError> {
        self.enter("NetworkDriver.DeleteEndpoint", &req.endpoint_id)
            .await?;
        let ep = self
            .state
            .lock()
            .unwrap()
            .endpoints
            .remove(&req.endpoint_id);
        if let (true, Some(ep)) = (self.create_links, ep) {
            delete_link(&ep.host_if)
                .await
                .map_err(|e| PluginError::internal(format!("endpoint {}: {e}", req.endpoint_id)))?;
        }
        Ok(())
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError> {
        self.enter("NetworkDriver.Join", &req.endpoint_id).await?;
        let s = self.state.lock().unwrap();
        let ep = s.endpoints.get(&req.endpoint_id).ok_or_else(|| {
            PluginError::not_found(format!("endpoint {} not found", req.endpoint_id))
        })?;
        let gateway = s.networks.get(&req.network_id).and_then(|n| n.gateway);
        Ok(JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: ep.container_if.clone(),
                dst_prefix: "eth".into(),
            }),
            gateway,
            gateway_ipv6: None,
            static_routes: gateway
                .map(|gw| vec![StaticRoute::via(extra_route_for(gw).into(), gw.into())])
                .unwrap_or_default(),
            disable_gateway_service: true,
        })
    }

    async fn leave(&self, req: LeaveRequest) -> Result<(), PluginError> {
        self.enter("NetworkDriver.Leave", &req.endpoint_id).await
    }

    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        self.enter(
            "NetworkDriver.ProgramExternalConnectivity",
            &req.endpoint_id,
        )
        .await
    }

    async fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        self.enter("NetworkDriver.RevokeExternalConnectivity", &req.endpoint_id)
            .await
    }

    async fn undo_abandoned(&self, call: kuryr_plugin_api::driver::AbandonedCall) {
        let id = match &call {
            kuryr_plugin_api::driver::AbandonedCall::CreateNetwork(r) => r.network_id.to_string(),
            other => format!("{other:?}"),
        };
        let _ = self.enter("undo_abandoned", id).await;
    }

    fn create_network_answered(&self, req: &CreateNetworkRequest) {
        self.told("create_network_answered", req.network_id.to_string());
    }
}

#[async_trait]
impl IpamDriver for MemoryDriver {
    async fn get_capabilities(&self) -> Result<IpamCapabilitiesResponse, PluginError> {
        self.enter("IpamDriver.GetCapabilities", "").await?;
        Ok(IpamCapabilitiesResponse::default())
    }

    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse, PluginError> {
        self.enter("IpamDriver.GetDefaultAddressSpaces", "").await?;
        Ok(AddressSpacesResponse {
            local_default_address_space: ADDRESS_SPACE.into(),
            global_default_address_space: ADDRESS_SPACE.into(),
        })
    }

    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        let n = self.next_pool.fetch_add(1, Ordering::Relaxed);
        let cidr = match req.pool {
            Some(p) => p.trunc(),
            None if req.v6 => {
                return Err(PluginError::bad_request(
                    "automatic ipv6 pools are not supported by the memory driver",
                ))
            }
            // A new pool on every call, as Docker's overlap loop requires.
            None => {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 250, (n % 256) as u8, 0), 24).unwrap())
            }
        };
        let pool_id: PoolId = format!("mem-{n}-{cidr}").parse().unwrap();
        self.enter("IpamDriver.RequestPool", &pool_id).await?;
        self.state.lock().unwrap().pools.insert(
            pool_id.clone(),
            Pool {
                cidr,
                used: BTreeSet::new(),
            },
        );
        Ok(RequestPoolResponse::new(pool_id, cidr))
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError> {
        self.enter("IpamDriver.ReleasePool", &req.pool_id).await?;
        self.state.lock().unwrap().pools.remove(&req.pool_id);
        Ok(())
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        let method = if req.is_gateway() {
            "IpamDriver.RequestAddress(gateway)"
        } else {
            "IpamDriver.RequestAddress"
        };
        self.enter(method, &req.pool_id).await?;
        let mut s = self.state.lock().unwrap();
        let pool = s
            .pools
            .get_mut(&req.pool_id)
            .ok_or_else(|| PluginError::not_found(format!("pool {} not found", req.pool_id)))?;
        let addr = match req.address {
            Some(a) if !pool.cidr.contains(&a) => {
                return Err(PluginError::bad_request(format!(
                    "address {a} is not in pool {}",
                    pool.cidr
                )))
            }
            Some(a) => a,
            None => pool
                .cidr
                .hosts()
                .find(|a| !pool.used.contains(a))
                .ok_or_else(|| {
                    PluginError::unavailable(format!("pool {} is exhausted", pool.cidr))
                })?,
        };
        pool.used.insert(addr);
        let net = IpNet::new(addr, pool.cidr.prefix_len()).unwrap();
        Ok(RequestAddressResponse::new(net))
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError> {
        self.enter("IpamDriver.ReleaseAddress", &req.pool_id)
            .await?;
        if let Some(pool) = self.state.lock().unwrap().pools.get_mut(&req.pool_id) {
            pool.used.remove(&req.address);
        }
        Ok(())
    }

    async fn undo_abandoned(&self, call: kuryr_plugin_api::driver::AbandonedCall) {
        let _ = self.enter("undo_abandoned", call.name()).await;
    }

    fn request_pool_answered(&self, reply: &RequestPoolResponse) {
        self.told("request_pool_answered", reply.pool_id.to_string());
    }
}
