//! Every plugin route through the router in memory: encodings, empty-body rules, `null`
//! tolerance, and each error path (malformed, invalid, driver failure, not implemented, panic,
//! timeout, oversized body, unknown route, wrong method), plus the per-request tracing span.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::memory_driver::Fault;
use common::{app, call, docker_id};
use http::StatusCode;
use kuryr_libnetwork::{router, Limits};
use kuryr_plugin_api::ipam::{
    AddressSpacesResponse, IpamCapabilitiesResponse, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use kuryr_plugin_api::keys::{paths, CONTENT_TYPE};
use kuryr_plugin_api::network::{
    CapabilitiesResponse, CreateEndpointRequest, CreateEndpointResponse, CreateNetworkRequest,
    DeleteEndpointRequest, DeleteNetworkRequest, JoinRequest, JoinResponse, LeaveRequest, Scope,
};
use kuryr_plugin_api::{async_trait, IpamDriver, NetworkDriver, PluginError};
use serde_json::{json, Value};

fn nid() -> String {
    docker_id(0xabc)
}
fn eid() -> String {
    docker_id(0xdef)
}

/// A valid body for every call that takes arguments.
fn valid_body(path: &str) -> Value {
    let (n, e) = (nid(), eid());
    match path {
        paths::NET_CREATE_NETWORK => json!({"NetworkID": n,
            "Options": {"com.docker.network.enable_ipv6": false, "com.docker.network.generic": {}},
            "IPv4Data": [{"AddressSpace": "l", "Gateway": "10.99.0.1/24", "Pool": "10.99.0.0/24"}],
            "IPv6Data": []}),
        paths::NET_DELETE_NETWORK | paths::NET_FREE_NETWORK => json!({"NetworkID": n}),
        paths::NET_ALLOCATE_NETWORK => {
            json!({"NetworkID": n, "Options": {}, "IPv4Data": [], "IPv6Data": null})
        }
        paths::NET_CREATE_ENDPOINT => json!({"NetworkID": n, "EndpointID": e,
            "Interface": {"Address": "10.99.0.2/24", "AddressIPv6": "", "MacAddress": ""}, "Options": {}}),
        paths::NET_JOIN => json!({"NetworkID": n, "EndpointID": e,
            "SandboxKey": "/var/run/docker/netns/abc", "Options": {}}),
        paths::NET_PROGRAM_EXTERNAL_CONNECTIVITY => {
            json!({"NetworkID": n, "EndpointID": e, "Options": {}})
        }
        paths::NET_ENDPOINT_OPER_INFO
        | paths::NET_DELETE_ENDPOINT
        | paths::NET_LEAVE
        | paths::NET_REVOKE_EXTERNAL_CONNECTIVITY => json!({"NetworkID": n, "EndpointID": e}),
        paths::NET_DISCOVER_NEW | paths::NET_DISCOVER_DELETE => json!({"DiscoveryType": 1,
            "DiscoveryData": {"Address": "10.0.0.12", "BindAddress": "", "Self": true}}),
        paths::NET_GW_ALLOC_CHECK => json!({"Options": {}}),
        paths::IPAM_REQUEST_POOL => {
            json!({"AddressSpace": "l", "Pool": "", "SubPool": "", "Options": {}, "V6": false})
        }
        paths::IPAM_RELEASE_POOL => json!({"PoolID": "p1"}),
        paths::IPAM_REQUEST_ADDRESS => json!({"PoolID": "p1", "Address": "", "Options": null}),
        paths::IPAM_RELEASE_ADDRESS => json!({"PoolID": "p1", "Address": "10.0.0.2"}),
        other => panic!("no body for {other}"),
    }
}

/// Calls that take no arguments (Docker sends an empty body).
const NO_ARG: &[&str] = &[
    paths::ACTIVATE,
    paths::NET_GET_CAPABILITIES,
    paths::IPAM_GET_CAPABILITIES,
    paths::IPAM_GET_DEFAULT_ADDRESS_SPACES,
];

fn with_args() -> impl Iterator<Item = &'static str> {
    paths::ALL.iter().copied().filter(|p| !NO_ARG.contains(p))
}

fn is_ipam(path: &str) -> bool {
    path.starts_with("/IpamDriver.")
}

#[tokio::test]
async fn no_argument_calls_accept_an_empty_body() {
    let (app, _) = app(Limits::default());
    let (status, headers, body) = call(&app, paths::ACTIVATE, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[http::header::CONTENT_TYPE], CONTENT_TYPE);
    assert_eq!(body, json!({"Implements": ["NetworkDriver", "IpamDriver"]}));

    let (status, _, body) = call(&app, paths::NET_GET_CAPABILITIES, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"Scope": "local", "GwAllocChecker": false}));

    let (status, _, body) = call(&app, paths::IPAM_GET_CAPABILITIES, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"RequiresMACAddress": false, "RequiresRequestReplay": false})
    );

    let (status, _, body) = call(&app, paths::IPAM_GET_DEFAULT_ADDRESS_SPACES, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"LocalDefaultAddressSpace": "memtest", "GlobalDefaultAddressSpace": "memtest"})
    );

    // Bodies on argument-less calls are ignored, whatever they contain.
    for path in NO_ARG {
        for body in ["{}", "null", "garbage"] {
            let (status, _, _) = call(&app, path, body).await;
            assert_eq!(status, StatusCode::OK, "{path} with {body}");
        }
    }
}

#[tokio::test]
async fn calls_with_arguments_reject_empty_bodies_with_400() {
    let (app, driver) = app(Limits::default());
    for path in with_args() {
        for body in ["", " \n"] {
            let (status, headers, reply) = call(&app, path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(headers[http::header::CONTENT_TYPE], CONTENT_TYPE);
            let err = reply["Err"].as_str().unwrap();
            assert!(err.contains("empty request body"), "{path}: {err}");
            assert_eq!(reply.get("Error").is_some(), is_ipam(path), "{path}");
        }
    }
    assert!(
        driver.calls().is_empty(),
        "driver must not see invalid calls"
    );
}

#[tokio::test]
async fn malformed_json_is_400_and_invalid_content_is_500() {
    let (app, driver) = app(Limits::default());
    for path in with_args() {
        let (status, _, reply) = call(&app, path, "{\"NetworkID\": ").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply["Err"].as_str().unwrap().contains("malformed json"));

        let (status, _, reply) = call(&app, path, "[1, 2]").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(reply["Err"].as_str().unwrap().contains("invalid request"));
        if is_ipam(path) {
            assert_eq!(reply["Error"], reply["Err"], "{path}");
        }
    }
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn every_call_answers_its_valid_body() {
    let (app, driver) = app(Limits::default());
    // Set up state the later calls refer to: a pool p1 does not exist, so create the network and
    // endpoint first and use a real pool for the IPAM calls.
    let (status, _, pool) = call(
        &app,
        paths::IPAM_REQUEST_POOL,
        valid_body(paths::IPAM_REQUEST_POOL).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pool}");
    let pool_id = pool["PoolID"].as_str().unwrap().to_owned();
    assert_eq!(pool["Pool"], "10.250.0.0/24");
    assert_eq!(pool["Data"], json!({}));

    let ordered = [
        paths::NET_CREATE_NETWORK,
        paths::NET_CREATE_ENDPOINT,
        paths::NET_JOIN,
        paths::NET_PROGRAM_EXTERNAL_CONNECTIVITY,
        paths::NET_ENDPOINT_OPER_INFO,
        paths::NET_REVOKE_EXTERNAL_CONNECTIVITY,
        paths::NET_LEAVE,
        paths::NET_DELETE_ENDPOINT,
        paths::NET_ALLOCATE_NETWORK,
        paths::NET_FREE_NETWORK,
        paths::NET_DISCOVER_NEW,
        paths::NET_DISCOVER_DELETE,
        paths::NET_GW_ALLOC_CHECK,
        paths::NET_DELETE_NETWORK,
        paths::IPAM_REQUEST_ADDRESS,
        paths::IPAM_RELEASE_ADDRESS,
        paths::IPAM_RELEASE_POOL,
    ];
    for path in ordered {
        let mut body = valid_body(path);
        if body.get("PoolID").is_some() {
            body["PoolID"] = json!(pool_id);
        }
        let (status, headers, reply) = call(&app, path, body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {reply}");
        assert_eq!(headers[http::header::CONTENT_TYPE], CONTENT_TYPE);
        let expected = match path {
            // The request had no MAC, so the driver's MAC comes back, and only that.
            paths::NET_CREATE_ENDPOINT => {
                assert_eq!(reply["Interface"].as_object().unwrap().len(), 1, "{reply}");
                assert!(reply["Interface"]["MacAddress"]
                    .as_str()
                    .unwrap()
                    .starts_with("02:"));
                continue;
            }
            paths::NET_JOIN => {
                json!({"InterfaceName": {"SrcName": format!("mtc{}", &eid()[..9]), "DstPrefix": "eth"},
                "Gateway": "10.99.0.1",
                "StaticRoutes": [{"Destination": "198.18.99.0/24", "RouteType": 0, "NextHop": "10.99.0.1"}],
                "DisableGatewayService": true})
            }
            paths::NET_ENDPOINT_OPER_INFO => json!({"Value": {}}),
            paths::NET_ALLOCATE_NETWORK => json!({"Options": {}}),
            paths::NET_GW_ALLOC_CHECK => json!({"SkipIPv4": false, "SkipIPv6": false}),
            paths::IPAM_REQUEST_ADDRESS => json!({"Address": "10.250.0.1/24", "Data": {}}),
            _ => json!({}),
        };
        assert_eq!(reply, expected, "{path}");
    }
    let methods = driver.methods();
    assert_eq!(
        methods,
        vec![
            "IpamDriver.RequestPool",
            "NetworkDriver.CreateNetwork",
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.ProgramExternalConnectivity",
            "NetworkDriver.EndpointOperInfo",
            "NetworkDriver.RevokeExternalConnectivity",
            "NetworkDriver.Leave",
            "NetworkDriver.DeleteEndpoint",
            "NetworkDriver.DeleteNetwork",
            "IpamDriver.RequestAddress",
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
        ]
    );
}

#[tokio::test]
async fn create_endpoint_does_not_echo_a_mac_docker_sent() {
    let (app, _) = app(Limits::default());
    call(
        &app,
        paths::NET_CREATE_NETWORK,
        valid_body(paths::NET_CREATE_NETWORK).to_string(),
    )
    .await;
    let mut body = valid_body(paths::NET_CREATE_ENDPOINT);
    body["Interface"]["MacAddress"] = json!("02:42:0a:63:00:02");
    let (status, _, reply) = call(&app, paths::NET_CREATE_ENDPOINT, body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({}));
}

#[tokio::test]
async fn null_maps_and_slices_are_accepted() {
    let (app, driver) = app(Limits::default());
    let body = json!({"NetworkID": nid(), "Options": null, "IPv4Data": null, "IPv6Data": null});
    let (status, _, reply) = call(&app, paths::NET_CREATE_NETWORK, body.to_string()).await;
    assert_eq!((status, reply), (StatusCode::OK, json!({})));
    let body = json!({"NetworkID": nid(), "EndpointID": eid(), "Interface": null, "Options": null});
    let (status, _, _) = call(&app, paths::NET_CREATE_ENDPOINT, body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let body =
        json!({"NetworkID": nid(), "EndpointID": eid(), "SandboxKey": "/x", "Options": null});
    let (status, _, reply) = call(&app, paths::NET_JOIN, body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // No IPv4Data, so no gateway and no routes, but still the interface.
    assert!(reply.get("Gateway").is_none());
    assert!(reply["InterfaceName"]["SrcName"].is_string());
    let body =
        json!({"AddressSpace": null, "Pool": null, "SubPool": null, "Options": null, "V6": false});
    let (status, _, _) = call(&app, paths::IPAM_REQUEST_POOL, body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(driver.calls().len(), 4);
}

#[tokio::test]
async fn invalid_values_name_the_field() {
    let (app, driver) = app(Limits::default());
    let cases = [
        (
            paths::NET_CREATE_NETWORK,
            json!({"NetworkID": "../../etc"}),
            "NetworkID",
        ),
        (
            paths::NET_CREATE_NETWORK,
            json!({"NetworkID": nid(), "IPv4Data": [{"Pool": "10.0.0.0/40"}]}),
            "IPv4Data[0].Pool",
        ),
        (
            paths::NET_CREATE_ENDPOINT,
            json!({"NetworkID": nid(), "EndpointID": eid(), "Interface": {"MacAddress": "zz"}}),
            "Interface.MacAddress",
        ),
        (
            paths::NET_CREATE_ENDPOINT,
            json!({"NetworkID": nid(), "EndpointID": 12}),
            "EndpointID",
        ),
        (
            paths::NET_JOIN,
            json!({"NetworkID": nid(), "EndpointID": eid(), "SandboxKey": 5}),
            "SandboxKey",
        ),
        (
            paths::IPAM_REQUEST_POOL,
            json!({"Pool": "10.0.0.0/24", "SubPool": "10.1.0.0/24"}),
            "not inside",
        ),
        (
            paths::IPAM_REQUEST_ADDRESS,
            json!({"PoolID": "p", "Address": "10.0.0.1/24"}),
            "Address",
        ),
        (
            paths::IPAM_RELEASE_ADDRESS,
            json!({"PoolID": "p", "Address": "nope"}),
            "Address",
        ),
        (paths::IPAM_RELEASE_POOL, json!({"PoolID": ""}), "PoolID"),
    ];
    for (path, body, needle) in cases {
        let (status, _, reply) = call(&app, path, body.to_string()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path} {body}");
        let err = reply["Err"].as_str().unwrap();
        assert!(err.contains(needle), "{path} {body}: {err}");
    }
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn driver_errors_become_err_replies() {
    let (app, driver) = app(Limits::default());
    driver.inject(
        "NetworkDriver.CreateNetwork",
        Fault::Fail(PluginError::conflict(
            "network exists in neutron with other options",
        )),
    );
    let (status, _, reply) = call(
        &app,
        paths::NET_CREATE_NETWORK,
        valid_body(paths::NET_CREATE_NETWORK).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply,
        json!({"Err": "network exists in neutron with other options"})
    );

    driver.inject(
        "IpamDriver.ReleasePool",
        Fault::Fail(PluginError::not_found("pool p1 not found")),
    );
    let (status, _, reply) = call(
        &app,
        paths::IPAM_RELEASE_POOL,
        valid_body(paths::IPAM_RELEASE_POOL).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply,
        json!({"Err": "pool p1 not found", "Error": "pool p1 not found"})
    );

    driver.inject(
        "NetworkDriver.ProgramExternalConnectivity",
        Fault::Fail(PluginError::not_implemented("not supported")),
    );
    let (status, _, reply) = call(
        &app,
        paths::NET_PROGRAM_EXTERNAL_CONNECTIVITY,
        valid_body(paths::NET_PROGRAM_EXTERNAL_CONNECTIVITY).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply, json!({"Err": "not supported"}));
}

#[tokio::test]
async fn a_panicking_driver_gets_a_json_500_and_the_server_keeps_serving() {
    let (app, driver) = app(Limits::default());
    driver.inject("NetworkDriver.Leave", Fault::Panic);
    let (status, _, reply) = call(
        &app,
        paths::NET_LEAVE,
        valid_body(paths::NET_LEAVE).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply, json!({"Err": "internal error in the plugin driver"}));
    let (status, _, _) = call(&app, paths::NET_GET_CAPABILITIES, "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_hung_driver_is_cut_off_at_the_deadline() {
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (app, driver) = app(limits);
    driver.inject(
        "IpamDriver.RequestPool",
        Fault::Hang(Duration::from_secs(3600)),
    );
    let started = std::time::Instant::now();
    let (status, _, reply) = call(
        &app,
        paths::IPAM_REQUEST_POOL,
        valid_body(paths::IPAM_REQUEST_POOL).to_string(),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reply["Error"]
            .as_str()
            .unwrap()
            .contains("did not finish within"),
        "{reply}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_decoding() {
    let limits = Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    };
    let (app, driver) = app(limits);
    let mut body = valid_body(paths::NET_CREATE_NETWORK);
    body["Options"]["pad"] = json!("x".repeat(2048));
    let (status, _, reply) = call(&app, paths::NET_CREATE_NETWORK, body.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply["Err"]
        .as_str()
        .unwrap()
        .contains("larger than 1024 bytes"));
    assert!(driver.calls().is_empty());
    // Just under the limit is fine.
    let (status, _, _) = call(
        &app,
        paths::NET_CREATE_NETWORK,
        valid_body(paths::NET_CREATE_NETWORK).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json() {
    use tower::ServiceExt;
    let (app, _) = app(Limits::default());
    let (status, _, reply) = call(&app, "/VolumeDriver.Create", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply,
        json!({"Err": "unknown plugin call /VolumeDriver.Create"})
    );

    let req = http::Request::get(paths::ACTIVATE)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["Err"], "plugin calls must use POST");
}

/// A driver that implements only the mandatory methods, to check the trait defaults on the wire.
struct MinimalDriver;

#[async_trait]
impl NetworkDriver for MinimalDriver {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse, PluginError> {
        Ok(CapabilitiesResponse {
            scope: Scope::Global,
            connectivity_scope: Some(Scope::Global),
            gw_alloc_checker: true,
        })
    }
    async fn create_network(&self, _: CreateNetworkRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn delete_network(&self, _: DeleteNetworkRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn create_endpoint(
        &self,
        _: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        Ok(CreateEndpointResponse::unchanged())
    }
    async fn delete_endpoint(&self, _: DeleteEndpointRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn join(&self, _: JoinRequest) -> Result<JoinResponse, PluginError> {
        Ok(JoinResponse::default())
    }
    async fn leave(&self, _: LeaveRequest) -> Result<(), PluginError> {
        Ok(())
    }
}

#[async_trait]
impl IpamDriver for MinimalDriver {
    async fn get_capabilities(&self) -> Result<IpamCapabilitiesResponse, PluginError> {
        Ok(IpamCapabilitiesResponse {
            requires_mac_address: true,
            requires_request_replay: false,
        })
    }
    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse, PluginError> {
        Ok(AddressSpacesResponse::default())
    }
    async fn request_pool(
        &self,
        _: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        Ok(
            RequestPoolResponse::new("p".parse().unwrap(), "10.0.0.0/24".parse().unwrap())
                .with_gateway("10.0.0.1/24".parse().unwrap()),
        )
    }
    async fn release_pool(&self, _: ReleasePoolRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn request_address(
        &self,
        _: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        Ok(RequestAddressResponse::new("10.0.0.2/24".parse().unwrap()))
    }
    async fn release_address(&self, _: ReleaseAddressRequest) -> Result<(), PluginError> {
        Ok(())
    }
}

#[tokio::test]
async fn trait_defaults_on_the_wire() {
    let d = Arc::new(MinimalDriver);
    let app = router(d.clone(), d, Limits::default());
    let expect = [
        (
            paths::NET_GET_CAPABILITIES,
            StatusCode::OK,
            json!({"Scope": "global", "ConnectivityScope": "global", "GwAllocChecker": true}),
        ),
        (
            paths::NET_ALLOCATE_NETWORK,
            StatusCode::OK,
            json!({"Options": {}}),
        ),
        (paths::NET_FREE_NETWORK, StatusCode::OK, json!({})),
        (
            paths::NET_ENDPOINT_OPER_INFO,
            StatusCode::OK,
            json!({"Value": {}}),
        ),
        (paths::NET_DISCOVER_NEW, StatusCode::OK, json!({})),
        (paths::NET_DISCOVER_DELETE, StatusCode::OK, json!({})),
        (
            paths::NET_GW_ALLOC_CHECK,
            StatusCode::OK,
            json!({"SkipIPv4": false, "SkipIPv6": false}),
        ),
        // Optional: 404 so Docker carries on instead of failing container start.
        (
            paths::NET_PROGRAM_EXTERNAL_CONNECTIVITY,
            StatusCode::NOT_FOUND,
            json!({"Err": "external connectivity is not implemented by this driver"}),
        ),
        (
            paths::NET_REVOKE_EXTERNAL_CONNECTIVITY,
            StatusCode::NOT_FOUND,
            json!({"Err": "external connectivity is not implemented by this driver"}),
        ),
        (paths::NET_CREATE_ENDPOINT, StatusCode::OK, json!({})),
        (
            paths::NET_JOIN,
            StatusCode::OK,
            json!({"DisableGatewayService": false}),
        ),
        (
            paths::IPAM_GET_CAPABILITIES,
            StatusCode::OK,
            json!({"RequiresMACAddress": true, "RequiresRequestReplay": false}),
        ),
        (
            paths::IPAM_GET_DEFAULT_ADDRESS_SPACES,
            StatusCode::OK,
            json!({"LocalDefaultAddressSpace": "", "GlobalDefaultAddressSpace": ""}),
        ),
        (
            paths::IPAM_REQUEST_POOL,
            StatusCode::OK,
            json!({"PoolID": "p", "Pool": "10.0.0.0/24", "Data": {"com.docker.network.gateway": "10.0.0.1/24"}}),
        ),
    ];
    for (path, status, reply) in expect {
        let body = if NO_ARG.contains(&path) {
            String::new()
        } else {
            valid_body(path).to_string()
        };
        let got = call(&app, path, body).await;
        assert_eq!((got.0, got.2), (status, reply), "{path}");
    }
}

/// Collects formatted tracing output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_has_a_span_with_ids_status_and_duration() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary run in parallel threads without a subscriber: a call site they
    // reached first may have cached "never interested"; ask again now that this one exists.
    tracing::callsite::rebuild_interest_cache();

    let (app, _) = app(Limits::default());
    call(
        &app,
        paths::NET_CREATE_NETWORK,
        valid_body(paths::NET_CREATE_NETWORK).to_string(),
    )
    .await;
    call(
        &app,
        paths::NET_CREATE_ENDPOINT,
        valid_body(paths::NET_CREATE_ENDPOINT).to_string(),
    )
    .await;
    call(
        &app,
        paths::IPAM_RELEASE_POOL,
        valid_body(paths::IPAM_RELEASE_POOL).to_string(),
    )
    .await;

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("call=NetworkDriver.CreateEndpoint") && l.contains("plugin call done"))
        .unwrap_or_else(|| panic!("no completion line in:\n{text}"));
    assert!(line.contains(&format!("network_id={}", nid())), "{line}");
    assert!(line.contains(&format!("endpoint_id={}", eid())), "{line}");
    assert!(line.contains("status=200"), "{line}");
    assert!(line.contains("elapsed_ms="), "{line}");
    assert!(
        text.lines()
            .any(|l| l.contains("call=IpamDriver.ReleasePool") && l.contains("pool_id=p1")),
        "{text}"
    );
}
