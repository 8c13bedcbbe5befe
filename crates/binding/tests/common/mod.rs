//! Test fixtures: every test body runs on its own std thread inside a fresh network
//! namespace (never on a shared runtime thread), with a current-thread runtime of its own.

#![allow(dead_code)]

use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use kuryr_binding::{BindMode, BindRequest, MacAddr};
use serde_json::Value;

/// A test that cannot get what it needs (root, OVSDB): in CI (`CI=true`), where it always has
/// them, that is a failure; elsewhere an explicit skip, and the test passes.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot run in CI: {reason}");
    }
    println!("skipped: {reason}");
}

/// Runs `body` in a new network namespace; returns false (after [`skip_or_fail`]) when the
/// namespace cannot be made (not root).
pub fn in_netns<F, Fut>(test: &str, body: F) -> bool
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let test = test.to_string();
    let h = std::thread::spawn(move || {
        // unshare affects only this thread; it is thrown away afterwards, so the namespace
        // never leaks into other code.
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            skip_or_fail(&format!(
                "{test}: cannot create a network namespace ({e}); needs root"
            ));
            return false;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(body());
        true
    });
    match h.join() {
        Ok(ran) => ran,
        Err(p) => std::panic::resume_unwind(p),
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A port-id-like unique string: the first 11 characters differ per test and run.
pub fn unique_id() -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{:05x}{:02x}{:04x}-aaaa-bbbb-cccc-dddddddddddd",
        std::process::id() & 0xfffff,
        n & 0xff,
        nanos & 0xffff
    )
}

pub fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn sh_ok(cmd: &str) -> String {
    let (ok, out) = sh(cmd);
    assert!(ok, "`{cmd}` failed: {out}");
    out
}

/// `ip -d -j link show dev NAME` in the calling thread's namespace.
pub fn link(name: &str) -> Option<Value> {
    let out = Command::new("ip")
        .args(["-d", "-j", "link", "show", "dev", name])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.first().cloned()
}

pub fn link_names() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-j", "link", "show"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

pub fn master_of(name: &str) -> Option<String> {
    link(name)?["master"].as_str().map(str::to_string)
}

pub fn req(port_id: &str, vif_type: &str, details: Value, mode: BindMode) -> BindRequest {
    BindRequest {
        port_id: port_id.to_string(),
        endpoint_id: format!("ep{}", port_id.replace('-', ""))
            .parse()
            .expect("endpoint id"),
        network_id: format!("ne{}", &port_id[..11]),
        project_id: "proj1".into(),
        mac: "fa:16:3e:12:34:56".parse::<MacAddr>().unwrap(),
        mtu: Some(1442),
        vif_type: vif_type.into(),
        vif_details: details.as_object().cloned().unwrap_or_default(),
        mode,
    }
}

/// A named netns (`ip netns add`) deleted on drop, playing a container sandbox.
pub struct NamedNetns(pub String);

impl NamedNetns {
    pub fn new(prefix: &str) -> Self {
        let name = format!("{prefix}-{}", &unique_id()[..11]);
        sh_ok(&format!("ip netns add {name}"));
        NamedNetns(name)
    }

    pub fn exec(&self, cmd: &str) -> (bool, String) {
        sh(&format!("ip netns exec {} {cmd}", self.0))
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.0));
    }
}
