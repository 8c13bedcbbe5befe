//! Arbitrary bytes and arbitrary JSON to every route: the server never panics, never hangs, and
//! always answers a JSON object (with `Err` unless the status is 200). `KURYR_FUZZ_CASES` sets
//! the cases per test (default: a short run for CI; `./dev.sh fuzz` runs 1,000,000).

mod common;

use std::time::Duration;

use common::{app, call_raw, docker_id};
use http::StatusCode;
use kuryr_libnetwork::Limits;
use kuryr_plugin_api::keys::paths;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(paths::ALL).prop_map(str::to_owned),
        1 => "/[A-Za-z.]{0,30}",
    ]
}

/// Strings that get past the first layer of checks more often than random text would.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(docker_id(7)),
        Just("k3b0x8vuxn2lqzq0w1t3g7s4a".to_owned()),
        Just(String::new()),
        Just("10.0.0.0/24".to_owned()),
        Just("10.0.0.1/24".to_owned()),
        Just("10.0.0.1".to_owned()),
        Just("fd00::/64".to_owned()),
        Just("02:42:ac:11:00:02".to_owned()),
        Just("com.docker.network.gateway".to_owned()),
        Just("p1".to_owned()),
        ".{0,40}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(&[
            "NetworkID", "EndpointID", "Options", "IPv4Data", "IPv6Data", "Pool", "SubPool",
            "Gateway", "AuxAddresses", "AddressSpace", "Interface", "Address", "AddressIPv6",
            "MacAddress", "PoolID", "V6", "SandboxKey", "DiscoveryType", "DiscoveryData",
            "RequestAddressType", "com.docker.network.generic", "com.docker.network.enable_ipv6",
            "com.docker.network.endpoint.macaddress", "com.docker.network.endpoint.exposedports",
        ][..]).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        interesting_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects shaped like requests, so decoding gets deep before failing.
fn any_request_object() -> impl Strategy<Value = Value> {
    btree_map(key(), any_json(), 0..8).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn check_reply(path: &str, status: StatusCode, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        [
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ]
        .contains(&status),
        "{path}: unexpected status {status}"
    );
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{path}: reply is not json: {e}")))?;
    prop_assert!(v.is_object(), "{path}: reply is not an object: {v}");
    if status != StatusCode::OK {
        let err = v["Err"].as_str().unwrap_or("");
        prop_assert!(!err.is_empty(), "{path}: error reply without Err: {v}");
    }
    Ok(())
}

fn run<S>(strategy: S, cases: u32)
where
    S: Strategy<Value = (String, Vec<u8>)>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits {
        max_body_bytes: 4096,
        request_timeout: Duration::from_secs(5),
    };
    let (app, _) = app(limits);
    let cases = std::env::var("KURYR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(path, body)| {
            let (status, reply) = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), call_raw(&app, &path, body))
                    .await
                    .expect("the server hung")
            });
            check_reply(&path, status, &reply)
        })
        .unwrap();
}

#[test]
fn arbitrary_bytes_to_every_route() {
    run((any_path(), vec(any::<u8>(), 0..600)), 2000);
}

#[test]
fn arbitrary_json_to_every_route() {
    run(
        (
            any_path(),
            any_json().prop_map(|v| v.to_string().into_bytes()),
        ),
        1500,
    );
}

#[test]
fn request_shaped_json_to_every_route() {
    run(
        (
            any_path(),
            any_request_object().prop_map(|v| v.to_string().into_bytes()),
        ),
        3000,
    );
}

/// The strategies pick from `paths::ALL`: it must be exactly what the router serves.
#[test]
fn the_path_list_and_the_router_agree() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (app, _) = app(Limits::default());
    let unknown = |status: StatusCode, body: &[u8]| {
        status == StatusCode::NOT_FOUND
            && String::from_utf8_lossy(body).contains("unknown plugin call")
    };
    rt.block_on(async {
        let mut seen = std::collections::HashSet::new();
        for path in paths::ALL {
            assert!(seen.insert(*path), "{path} listed twice");
            // Not JSON: calls with arguments stop at decoding (400) and the others ignore the
            // body (200), so no driver gets to answer "not implemented" with its own 404.
            let (status, body) = call_raw(&app, path, b"not json".to_vec()).await;
            assert_ne!(status, StatusCode::NOT_FOUND, "{path} is not routed");
            assert!(!unknown(status, &body), "{path} is not routed");
        }
        for path in [
            "/NetworkDriver.Bogus",
            "/IpamDriver.RequestPools",
            "/networkdriver.join",
            "/Plugin.Activate/",
            "/",
        ] {
            assert!(!paths::ALL.contains(&path));
            let (status, body) = call_raw(&app, path, b"{}".to_vec()).await;
            assert!(
                unknown(status, &body),
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    });
}
