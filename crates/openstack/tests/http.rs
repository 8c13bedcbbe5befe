//! HttpNeutron and Session against a fake Keystone + Neutron (wiremock): every auth mode, token
//! renewal and 401 handling, catalog selection, pagination, retries and error mapping.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kuryr_openstack::auth::{ClientSettings, KeystoneOptions};
use kuryr_openstack::neutron::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PASSWORD: &str = "pa55-w0rd-secret";

fn iso(t: SystemTime) -> String {
    // Keystone's format, computed without a date crate: seconds since the epoch to civil time.
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let rem = secs % 86_400;
    let (y, m, d) = kuryr_types::calendar::civil_from_days(secs / 86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Keystone: hands out `tok1`, `tok2`, ... with the given lifetime and a catalog whose network
/// endpoints point back at this server under `/public`, `/internal` (region R1) and `/r2`
/// (public, region R2).
struct Keystone {
    base: String,
    lifetime: Duration,
    issued: AtomicUsize,
}

impl Respond for Keystone {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let now = SystemTime::now();
        let b = &self.base;
        ResponseTemplate::new(201).insert_header("x-subject-token", format!("tok{n}").as_str()).set_body_json(json!({
            "token": {
                "issued_at": iso(now),
                "expires_at": iso(now + self.lifetime),
                "project": {"id": "proj-1"},
                "catalog": [
                    {"type": "identity", "name": "keystone", "endpoints": []},
                    {"type": "network", "name": "neutron", "endpoints": [
                        {"interface": "public", "region_id": "R1", "region": "R1", "url": format!("{b}/public")},
                        {"interface": "internal", "region_id": "R1", "region": "R1", "url": format!("{b}/internal/")},
                        {"interface": "public", "region_id": "R2", "region": "R2", "url": format!("{b}/r2")}
                    ]}
                ]
            }
        }))
    }
}

async fn keystone(server: &MockServer, lifetime: Duration) -> Arc<AtomicUsize> {
    let k = Keystone {
        base: server.uri(),
        lifetime,
        issued: AtomicUsize::new(0),
    };
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    // Count through a wrapper so tests can read how many tokens were issued.
    struct Counting(Keystone, Arc<AtomicUsize>);
    impl Respond for Counting {
        fn respond(&self, r: &Request) -> ResponseTemplate {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.respond(r)
        }
    }
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(Counting(k, counter))
        .mount(server)
        .await;
    issued
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn client(opts: KeystoneOptions) -> HttpNeutron {
    let settings = ClientSettings::resolve_with_env(&opts, &|_| None).unwrap();
    HttpNeutron::new(&settings)
        .unwrap()
        .with_retry(fast_retry())
}

fn some(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

/// `auth_type = none` against a fixed endpoint.
fn noauth(endpoint: impl Into<String>) -> KeystoneOptions {
    KeystoneOptions {
        auth_type: some("none"),
        endpoint: some(endpoint),
        ..Default::default()
    }
}

fn password_opts(server: &MockServer) -> KeystoneOptions {
    KeystoneOptions {
        auth_type: some("password"),
        auth_url: some(format!("{}/v3", server.uri())),
        username: some("kuryr"),
        password: Some(SecretString::from(PASSWORD)),
        project_name: some("service"),
        user_domain_name: some("Default"),
        project_domain_name: some("Default"),
        ..Default::default()
    }
}

fn nets(names: &[&str]) -> Value {
    json!({"networks": names.iter().map(|n| json!({"id": format!("id-{n}"), "name": n})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn password_auth_scopes_by_name_and_selects_catalog_endpoint() {
    let server = MockServer::start().await;
    let issued = keystone(&server, Duration::from_secs(3600)).await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .and(body_partial_json(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": "kuryr", "domain": {"name": "Default"}, "password": PASSWORD}}},
            "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}})))
        .respond_with(Keystone { base: server.uri(), lifetime: Duration::from_secs(3600), issued: AtomicUsize::new(0) })
        .with_priority(1)
        // One token per client below (three clients), however many requests each makes.
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/internal/v2.0/networks"))
        .and(header("x-auth-token", "tok1"))
        .and(query_param("name", "a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(nets(&["a"])))
        .expect(2)
        .mount(&server)
        .await;
    let n = client(KeystoneOptions {
        interface: some("internal"),
        region_name: some("R1"),
        ..password_opts(&server)
    });
    let got = n.list_networks(&Filters::new().name("a")).await.unwrap();
    assert_eq!(got[0].name, "a");
    n.list_networks(&Filters::new().name("a")).await.unwrap();
    assert_eq!(
        issued.load(Ordering::SeqCst),
        0,
        "the specific matcher answered, once: the token is cached"
    );

    // Region selection: R2's public endpoint.
    Mock::given(method("GET"))
        .and(path("/r2/v2.0/extensions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"extensions": [{"alias": "binding", "name": "b"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let n2 = client(KeystoneOptions {
        region_name: some("R2"),
        ..password_opts(&server)
    });
    assert_eq!(n2.list_extensions().await.unwrap()[0].alias, "binding");

    // No such interface in the region: a configuration error naming what exists.
    let n3 = client(KeystoneOptions {
        region_name: some("R2"),
        interface: some("admin"),
        ..password_opts(&server)
    });
    let e = n3.list_extensions().await.unwrap_err();
    assert!(matches!(e, NeutronError::Config(_)), "{e}");
    assert!(e.to_string().contains("offered"), "{e}");
}

#[tokio::test]
async fn application_credential_and_token_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .and(body_partial_json(
            json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": "ac-id", "secret": "ac-secret"}}}}),
        ))
        .respond_with(Keystone {
            base: server.uri(),
            lifetime: Duration::from_secs(3600),
            issued: AtomicUsize::new(0),
        })
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .and(body_partial_json(
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "user-token"}},
            "scope": {"project": {"id": "p-id"}}}}),
        ))
        .respond_with(Keystone {
            base: server.uri(),
            lifetime: Duration::from_secs(3600),
            issued: AtomicUsize::new(10),
        })
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/public/v2.0/networks"))
        .and(header("x-auth-token", "tok1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(nets(&["via-ac"])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/public/v2.0/networks"))
        .and(header("x-auth-token", "tok11"))
        .respond_with(ResponseTemplate::new(200).set_body_json(nets(&["via-token"])))
        .mount(&server)
        .await;
    let ac = client(KeystoneOptions {
        auth_type: some("v3applicationcredential"),
        auth_url: some(server.uri()),
        application_credential_id: some("ac-id"),
        application_credential_secret: Some(SecretString::from("ac-secret")),
        ..Default::default()
    });
    assert_eq!(
        ac.list_networks(&Filters::new()).await.unwrap()[0].name,
        "via-ac"
    );
    let tok = client(KeystoneOptions {
        auth_type: some("v3token"),
        auth_url: some(format!("{}/v3/", server.uri())),
        token: Some(SecretString::from("user-token")),
        project_id: some("p-id"),
        ..Default::default()
    });
    assert_eq!(
        tok.list_networks(&Filters::new()).await.unwrap()[0].name,
        "via-token"
    );
}

#[tokio::test]
async fn noauth_and_admin_token_use_the_fixed_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .and(|r: &Request| !r.headers.contains_key("x-auth-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(nets(&["noauth"])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .and(header("x-auth-token", "static"))
        .respond_with(ResponseTemplate::new(200).set_body_json(nets(&["static"])))
        .expect(1)
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    assert_eq!(
        n.list_networks(&Filters::new()).await.unwrap()[0].name,
        "noauth"
    );
    let t = client(KeystoneOptions {
        auth_type: some("admin_token"),
        token: Some(SecretString::from("static")),
        endpoint: some(format!("{}/", server.uri())),
        ..Default::default()
    });
    assert_eq!(
        t.list_networks(&Filters::new()).await.unwrap()[0].name,
        "static"
    );
}

#[tokio::test]
async fn token_is_renewed_before_expiry() {
    let server = MockServer::start().await;
    // A 2 s token is renewed at half its lifetime.
    let issued = keystone(&server, Duration::from_secs(2)).await;
    for tok in ["tok1", "tok2"] {
        Mock::given(method("GET"))
            .and(path("/public/v2.0/networks"))
            .and(header("x-auth-token", tok))
            .respond_with(ResponseTemplate::new(200).set_body_json(nets(&[tok])))
            .mount(&server)
            .await;
    }
    let n = client(password_opts(&server));
    assert_eq!(
        n.list_networks(&Filters::new()).await.unwrap()[0].name,
        "tok1"
    );
    assert_eq!(
        n.list_networks(&Filters::new()).await.unwrap()[0].name,
        "tok1"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        n.list_networks(&Filters::new()).await.unwrap()[0].name,
        "tok2"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_401_reauthenticates_once_and_concurrent_callers_share_one_token() {
    let server = MockServer::start().await;
    let issued = keystone(&server, Duration::from_secs(3600)).await;
    Mock::given(method("GET"))
        .and(path("/public/v2.0/ports"))
        .and(header("x-auth-token", "tok1"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "token revoked"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/public/v2.0/ports"))
        .and(header("x-auth-token", "tok2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ports": [{"id": "p"}]})))
        .mount(&server)
        .await;
    let n = Arc::new(client(password_opts(&server)));
    // Ten callers race for the first token: one Keystone request.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let n = n.clone();
            tokio::spawn(async move { n.list_ports(&Filters::new()).await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap()[0].id, "p");
    }
    // tok1 was refused by all ten; the invalidation is per token, so they re-authenticated once.
    assert_eq!(issued.load(Ordering::SeqCst), 2);

    // A Neutron that refuses every token: one retry, then Unauthorized, without the password.
    Mock::given(method("GET"))
        .and(path("/public/v2.0/networks"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "nope"}})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let e = n.list_networks(&Filters::new()).await.unwrap_err();
    assert!(matches!(e, NeutronError::Unauthorized(_)), "{e}");
    assert!(!e.to_string().contains(PASSWORD));
    assert!(
        !format!("{e:?}").contains("tok"),
        "tokens never appear in errors: {e:?}"
    );
}

#[tokio::test]
async fn keystone_rejection_is_unauthorized_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-openstack-request-id", "req-ks")
                .set_body_json(json!({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let n = client(password_opts(&server));
    let e = n.list_networks(&Filters::new()).await.unwrap_err();
    assert!(matches!(e, NeutronError::Unauthorized(_)), "{e}");
    assert_eq!(e.request_id(), Some("req-ks"));
    let text = format!("{e} {e:?} {n:?}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn pagination_follows_next_links_on_our_endpoint() {
    let server = MockServer::start().await;
    let page = |ids: &[&str], next: Option<&str>| {
        let mut v = json!({"ports": ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>()});
        if let Some(m) = next {
            // A proxy-rewritten host: only the query may be used.
            v["ports_links"] = json!([{"rel": "next", "href": format!("http://elsewhere.invalid/v2.0/ports?limit=2&marker={m}&tags=t")}]);
        }
        ResponseTemplate::new(200).set_body_json(v)
    };
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(|r: &Request| !r.url.query().unwrap_or("").contains("marker"))
        .and(query_param("tags", "t"))
        .respond_with(page(&["p1", "p2"], Some("p2")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("marker", "p2"))
        .respond_with(page(&["p3", "p4"], Some("p4")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/ports"))
        .and(query_param("marker", "p4"))
        .respond_with(page(&["p5"], None))
        .expect(1)
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    let ports = n
        .list_ports(&Filters::new().tags(&["t"]).limit(2))
        .await
        .unwrap();
    let ids: Vec<_> = ports.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p2", "p3", "p4", "p5"]);

    // A server whose next link points at the same page is an error, not an endless loop.
    Mock::given(method("GET"))
        .and(path("/v2.0/networks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"networks": [{"id": "n"}],
            "networks_links": [{"rel": "next", "href": format!("{}/v2.0/networks?marker=n", server.uri())}]})))
        .mount(&server)
        .await;
    let e = n.list_networks(&Filters::new()).await.unwrap_err();
    assert!(
        matches!(e, NeutronError::Decode(_)) && e.to_string().contains("loop"),
        "{e}"
    );
}

#[tokio::test]
async fn retries_idempotent_requests_on_5xx_but_never_posts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks/n1"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks/n1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"network": {"id": "n1", "name": "x"}})),
        )
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2.0/networks"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/ports/p1"))
        .respond_with(ResponseTemplate::new(502))
        .expect(4)
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    assert_eq!(n.get_network("n1").await.unwrap().name, "x");
    let e = n.create_network(&NewNetwork::default()).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    let e = n.delete_port("p1").await.unwrap_err();
    assert_eq!(
        e.status(),
        Some(502),
        "bounded: 1 + 3 retries, then the error"
    );
}

/// A server that resets the first connection after reading the request (as uwsgi does to kept-
/// alive connections), then answers normally. Returns its address and a request counter.
async fn resetting_server(body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            let _ = sock.read(&mut buf).await;
            if n == 0 {
                // Close with RST: linger 0 (which does not block on drop, unlike a positive linger).
                #[allow(deprecated)]
                let _ = sock.set_linger(Some(Duration::ZERO));
                drop(sock);
                continue;
            }
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn connection_reset_is_retried_for_get_only() {
    let (url, seen) = resetting_server(r#"{"network": {"id": "n1", "name": "after-reset"}}"#).await;
    let n = client(noauth(&url));
    assert_eq!(n.get_network("n1").await.unwrap().name, "after-reset");
    assert_eq!(seen.load(Ordering::SeqCst), 2);

    let (url, seen) = resetting_server(r#"{"network": {"id": "n2"}}"#).await;
    let n = client(noauth(&url));
    let e = n.create_network(&NewNetwork::default()).await.unwrap_err();
    assert!(matches!(e, NeutronError::Transport(_)), "{e}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "a POST is never re-sent");
}

#[tokio::test]
async fn neutron_errors_are_typed_with_message_and_request_id() {
    let server = MockServer::start().await;
    let neutron_error = |status: u16, kind: &str, msg: &str| {
        ResponseTemplate::new(status)
            .insert_header("x-openstack-request-id", "req-42")
            .set_body_json(json!({"NeutronError": {"type": kind, "message": msg, "detail": ""}}))
    };
    Mock::given(method("GET"))
        .and(path("/v2.0/ports/missing"))
        .respond_with(neutron_error(
            404,
            "PortNotFound",
            "Port missing could not be found.",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .respond_with(neutron_error(
            409,
            "IpAddressAlreadyAllocated",
            "IP address 10.0.0.5 already allocated in subnet s",
        ))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/subnets/s"))
        .respond_with(neutron_error(
            400,
            "HTTPBadRequest",
            "Invalid input for gateway_ip",
        ))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/networks/n"))
        .respond_with(neutron_error(
            403,
            "PolicyNotAuthorized",
            "rule:delete_network is disallowed by policy",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/trunks/t"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    let e = n.get_port("missing").await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.request_id(), Some("req-42"));
    assert_eq!(e.neutron_kind(), Some("PortNotFound"));
    assert_eq!(
        e.to_string(),
        "not found: GET /v2.0/ports/missing: PortNotFound: Port missing could not be found. (request id req-42)"
    );
    let e = n
        .create_port(&NewPort {
            network_id: "net".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.is_conflict());
    assert_eq!(e.neutron_kind(), Some("IpAddressAlreadyAllocated"));
    let e = n
        .update_subnet(
            "s",
            &SubnetUpdate {
                gateway_ip: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.is_bad_request() && e.to_string().contains("Invalid input for gateway_ip"),
        "{e}"
    );
    let e = n.delete_network("n").await.unwrap_err();
    assert!(matches!(e, NeutronError::Forbidden(_)));
    let e = n.get_trunk("t").await.unwrap_err();
    assert!(matches!(e, NeutronError::Decode(_)), "{e}");
}

#[tokio::test]
async fn slow_neutron_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(3))
                .set_body_json(json!({"network": {}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let n = client(KeystoneOptions {
        timeout: Some(0.3),
        ..noauth(server.uri())
    });
    let e = n.get_network("slow").await.unwrap_err();
    assert!(matches!(e, NeutronError::Timeout(_)), "{e}");
}

#[tokio::test]
async fn create_with_tags_tags_in_a_second_request_and_unwinds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2.0/networks"))
        .and(|r: &Request| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["network"].get("tags").is_none() && v["network"]["name"] == "n"
        })
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"network": {"id": "net-1", "name": "n", "tags": []}})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/networks/net-1/tags"))
        .and(body_partial_json(
            json!({"tags": ["kuryr.net.uuid.lh:abc"]}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"tags": ["kuryr.net.uuid.lh:abc"]})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/networks/net-1/tags"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"NeutronError": {"type": "HTTPBadRequest", "message": "bad tag"}}),
        ))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/networks/net-1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    let new = NewNetwork {
        name: Some("n".into()),
        tags: Some(vec!["kuryr.net.uuid.lh:abc".into()]),
        ..Default::default()
    };
    let made = n.create_network(&new).await.unwrap();
    assert_eq!(made.tags, vec!["kuryr.net.uuid.lh:abc".to_string()]);
    let e = n.create_network(&new).await.unwrap_err();
    assert!(e.is_bad_request(), "{e}");
    // The DELETE expectation (exactly one, after the failed tagging) is verified on drop.
}

#[tokio::test]
async fn port_tags_ride_in_the_create_where_neutron_applies_them() {
    let server = MockServer::start().await;
    // The bulk create carries the tags (ML2's `tag_ports_during_bulk_creation` applies them); a
    // port Neutron answers without them (the driver not loaded) is tagged after.
    Mock::given(method("POST"))
        .and(path("/v2.0/ports"))
        .and(|r: &Request| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["ports"][0]["tags"] == json!(["pool"]) && v["ports"][1]["tags"] == json!(["pool"])
        })
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"ports": [
            {"id": "p1", "network_id": "n", "mac_address": "fa:16:3e:00:00:01", "tags": ["pool"]},
            {"id": "p2", "network_id": "n", "mac_address": "fa:16:3e:00:00:02", "tags": []}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/ports/p2/tags"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tags": ["pool"]})))
        .expect(1)
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    let one = NewPort {
        network_id: "n".into(),
        tags: Some(vec!["pool".into()]),
        ..Default::default()
    };
    let made = n.create_ports(&[one.clone(), one]).await.unwrap();
    assert!(made.iter().all(|p| p.tags == vec!["pool".to_string()]));
}

#[tokio::test]
async fn several_tags_are_added_in_one_post_keeping_the_others() {
    let server = MockServer::start().await;
    // `tag-creation`: POST on the tag collection adds, where PUT would replace the whole list.
    Mock::given(method("POST"))
        .and(path("/v2.0/networks/net-1/tags"))
        .and(body_partial_json(json!({"tags": ["a", "b"]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"tags": ["a", "b"]})))
        .expect(1)
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    n.add_tags(ResourceKind::Network, "net-1", &["a".into(), "b".into()])
        .await
        .unwrap();
}

#[tokio::test]
async fn every_resource_uses_its_own_path_and_json_keys() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/security-groups"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"security_groups": [{"id": "sg-1", "name": "default"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2.0/security-group-rules"))
        .and(body_partial_json(
            json!({"security_group_rule": {"security_group_id": "sg-1", "direction": "ingress"}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"security_group_rule": {"id": "r-1", "security_group_id": "sg-1"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2.0/subnetpools/p-1"))
        .and(body_partial_json(
            json!({"subnetpool": {"name": "renamed"}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"subnetpool": {"id": "p-1", "name": "renamed"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/trunks/t-1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/trunks/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"NeutronError": {"type": "TrunkNotFound", "message": "Trunk gone could not be found."}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let n = client(noauth(server.uri()));
    let groups = n.list_security_groups(&Filters::new()).await.unwrap();
    assert_eq!(groups[0].id, "sg-1");
    let rule = n
        .create_security_group_rule(&NewSecurityGroupRule::ingress("sg-1", "IPv4"))
        .await
        .unwrap();
    assert_eq!(rule.id, "r-1");
    let pool = n
        .update_subnetpool(
            "p-1",
            &SubnetPoolUpdate {
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(pool.name, "renamed");
    n.delete_trunk("t-1").await.unwrap();
    let e = n.get_trunk("gone").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.neutron_kind(), Some("TrunkNotFound"));
}

/// Records what the observer hook is told.
#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<(String, String, RequestOutcome)>>);

impl RequestObserver for Seen {
    fn observe(&self, method: &str, path: &str, outcome: RequestOutcome, elapsed: Duration) {
        assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
        self.0
            .lock()
            .unwrap()
            .push((method.to_string(), path.to_string(), outcome));
    }
}

#[tokio::test]
async fn the_observer_sees_every_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks/n1"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2.0/networks/n1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"network": {"id": "n1", "name": "x"}})),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2.0/ports/p1"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"NeutronError": {"type": "PortNotFound", "message": "no", "detail": ""}}),
        ))
        .mount(&server)
        .await;
    let seen = Arc::new(Seen::default());
    let n = client(noauth(server.uri())).with_observer(seen.clone());
    n.get_network("n1").await.unwrap();
    n.delete_port("p1").await.unwrap_err();
    let got = seen.0.lock().unwrap().clone();
    let want = [
        (
            "GET",
            "/v2.0/networks/n1",
            RequestOutcome::Status(503),
            "networks",
        ),
        (
            "GET",
            "/v2.0/networks/n1",
            RequestOutcome::Status(200),
            "networks",
        ),
        (
            "DELETE",
            "/v2.0/ports/p1",
            RequestOutcome::Status(404),
            "ports",
        ),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((m, p, o), (wm, wp, wo, resource)) in got.iter().zip(want) {
        assert_eq!((m.as_str(), p.as_str(), *o), (wm, wp, wo));
        assert_eq!(request_resource(p), resource);
    }

    // No answer at all: `transport`, once per attempt (a POST is never retried).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let seen = Arc::new(Seen::default());
    let n = client(noauth(closed)).with_observer(seen.clone());
    n.create_network(&NewNetwork::default()).await.unwrap_err();
    let got = seen.0.lock().unwrap().clone();
    assert_eq!(
        got,
        [(
            "POST".to_string(),
            "/v2.0/networks".to_string(),
            RequestOutcome::Transport
        )]
    );
}

/// No secret reaches the log at any level: not the password, not the token Keystone issued,
/// not an application credential secret, even at TRACE and on failures.
#[tokio::test]
async fn secrets_never_reach_the_log_even_at_trace() {
    const APP_SECRET: &str = "app-cr3d-s3cret";
    // The log goes to a file, as a daemon's would.
    let log = tempfile::NamedTempFile::new().unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(Arc::new(log.reopen().unwrap()))
        .finish();
    // The process-wide subscriber (a thread-local one misses events whose callsites other tests'
    // threads cached as unwatched); other tests' logs land here too, and must be as clean.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let server = MockServer::start().await;
    keystone(&server, Duration::from_secs(3600)).await;
    for (p, reply) in [
        (
            "/public/v2.0/networks",
            ResponseTemplate::new(200).set_body_json(nets(&["a"])),
        ),
        (
            "/public/v2.0/ports",
            ResponseTemplate::new(500).set_body_string("boom"),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(reply)
            .mount(&server)
            .await;
    }
    let n = client(password_opts(&server));
    n.list_networks(&Filters::new()).await.unwrap();
    assert!(n.list_ports(&Filters::new()).await.is_err());
    let app = client(KeystoneOptions {
        auth_type: some("v3applicationcredential"),
        auth_url: some(format!("{}/v3", server.uri())),
        application_credential_id: some("app-id"),
        application_credential_secret: Some(SecretString::from(APP_SECRET)),
        ..Default::default()
    });
    app.list_networks(&Filters::new()).await.unwrap();

    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        text.contains("/v2.0/networks"),
        "the requests were logged: {text}"
    );
    for secret in [PASSWORD, APP_SECRET, "tok1", "tok2"] {
        assert!(!text.contains(secret), "{secret:?} in the log:\n{text}");
    }
}
