//! Hostile CNI input: arbitrary `CNI_*` environments and stdin (random bytes, and JSON shaped
//! like network configurations) never make the parser panic, and every refusal carries one of the
//! spec's error codes and a message. Cases: `KURYR_FUZZ_CASES` (default: a short run for CI;
//! `./dev.sh fuzz` runs 1,000,000).

use std::collections::BTreeMap;

use kuryr_cni::command::{parse_call, valid_ifname, Command, Invocation};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

const CODES: [u32; 12] = [1, 2, 3, 4, 5, 6, 7, 11, 50, 100, 101, 999];

fn cases(default: u32) -> u32 {
    std::env::var("KURYR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("ADD".to_owned()),
        Just("DEL".to_owned()),
        Just("CHECK".to_owned()),
        Just("VERSION".to_owned()),
        Just("eth0".to_owned()),
        Just("/var/run/netns/pod".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("$(reboot); `id` | & > /tmp/x".to_owned()),
        Just("a\0b".to_owned()),
        Just("x".repeat(300)),
        Just("K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns;IgnoreUnknown=1".to_owned()),
        ".{0,40}",
    ]
}

fn env() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(
        prop_oneof![
            proptest::sample::select(
                &[
                    "CNI_COMMAND",
                    "CNI_CONTAINERID",
                    "CNI_NETNS",
                    "CNI_IFNAME",
                    "CNI_ARGS",
                    "CNI_PATH",
                ][..]
            )
            .prop_map(str::to_owned),
            "CNI_[A-Z]{0,8}",
        ],
        hostile_string(),
        0..7,
    )
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        hostile_string().prop_map(Value::String),
        proptest::sample::select(&["0.3.0", "0.4.0", "1.0.0", "1.1.0", "9.9.9"][..])
            .prop_map(|s| Value::String(s.into())),
    ];
    let key = prop_oneof![
        4 => proptest::sample::select(&[
            "cniVersion", "name", "type", "neutron_network", "neutron_subnet", "network",
            "security_groups", "project", "project_id", "prevResult", "runtimeConfig",
            "interfaces", "ips", "routes", "dns", "mtu", "validAttachments", "args",
        ][..]).prop_map(str::to_owned),
        1 => ".{0,10}",
    ];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(key.clone(), inner, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn stdin() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => json().prop_map(|v| v.to_string()),
        1 => vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

#[test]
fn hostile_cni_calls_are_refused_with_a_spec_code() {
    let mut runner = TestRunner::new(Config {
        cases: cases(3000),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(env(), stdin()), |(env, stdin)| {
            let inv = Invocation { env, stdin };
            match parse_call(&inv) {
                Err(e) => {
                    prop_assert!(CODES.contains(&e.code), "code {} for {inv:?}", e.code);
                    prop_assert!(!e.msg.is_empty(), "no message for {inv:?}");
                    let out: Value = serde_json::from_str(&e.to_json()).expect("the error is JSON");
                    prop_assert_eq!(out["code"].as_u64(), Some(e.code as u64));
                }
                // What reaches the host (interface names, the container id in link names and
                // tags, the namespace path) is clean.
                Ok(Command::Add(t) | Command::Del(t) | Command::Check(t)) => {
                    prop_assert!(valid_ifname(&t.ifname), "{:?}", t.ifname);
                    prop_assert!(
                        t.container_id
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c)),
                        "{:?}",
                        t.container_id
                    );
                    if let Some(ns) = &t.netns {
                        prop_assert!(!ns.contains('\0'), "{ns:?}");
                    }
                }
                Ok(_) => {}
            }
            Ok(())
        })
        .unwrap();
}
