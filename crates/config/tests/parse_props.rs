//! Hostile `kuryr.conf`: arbitrary text, and text shaped like oslo.config files with Kuryr's
//! sections and options and hostile values, never makes the parser panic; every refusal is an
//! error that names what is wrong. Cases: `KURYR_FUZZ_CASES` (default: a short run for CI;
//! `./dev.sh fuzz` runs 1,000,000).

use kuryr_config::KuryrConfig;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

fn cases(default: u32) -> u32 {
    std::env::var("KURYR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("unix:///run/docker/plugins/kuryr.sock".to_owned()),
        Just("http://[::1]:9696".to_owned()),
        Just("../../../etc/shadow".to_owned()),
        Just("$(reboot); `id`".to_owned()),
        Just("a\0b".to_owned()),
        Just("x".repeat(400)),
        Just("a,b,,c".to_owned()),
        Just("%(host)s".to_owned()),
        ".{0,30}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    let section = proptest::sample::select(
        &[
            "DEFAULT",
            "neutron",
            "binding",
            "vif_pool",
            "cni_daemon",
            "metrics",
            "keystone_authtoken",
        ][..],
    );
    let key = proptest::sample::select(
        &[
            "host",
            "kuryr_uri",
            "capability_scope",
            "debug",
            "log_file",
            "log_dir",
            "enable_ssl",
            "ssl_cert_file",
            "endpoint",
            "auth_type",
            "auth_url",
            "password",
            "timeout",
            "default_subnetpool_v4",
            "vif_plugging_timeout",
            "veth_dst_prefix",
            "link_iface",
            "driver",
            "enabled",
            "ports_pool_min",
            "ports_pool_max",
            "socket_path",
            "listen_address",
            "orphan_sweep_interval",
            "default_port_driver",
        ][..],
    );
    prop_oneof![
        2 => section.prop_map(|s| format!("[{s}]")),
        6 => (key, value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => value().prop_map(|v| format!("    {v}")),
        1 => Just("# comment".to_owned()),
        1 => ".{0,30}",
    ]
}

#[test]
fn hostile_kuryr_conf_never_panics_and_errors_say_what() {
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(3000),
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let text = prop_oneof![
        4 => vec(line(), 0..20).prop_map(|l| l.join("\n")),
        1 => vec(any::<u8>(), 0..400).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    runner
        .run(&text, |text| {
            if let Err(e) = KuryrConfig::parse(&text) {
                prop_assert!(!e.to_string().trim().is_empty(), "empty error for {text:?}");
            }
            Ok(())
        })
        .unwrap();
}
