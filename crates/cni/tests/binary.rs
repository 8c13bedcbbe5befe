//! The `kuryr-cni` binary as a runtime runs it: what it answers on its own (VERSION, no
//! daemon), and that it hands the call to the daemon unchanged and prints the daemon's answer.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn run(env: &[(&str, &str)], stdin: &str) -> (i32, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kuryr-cni"))
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::Null),
    )
}

/// A configuration whose daemon socket is `sock`.
fn conf(version: &str, sock: &std::path::Path) -> String {
    format!(
        r#"{{"cniVersion":"{version}","name":"n","type":"kuryr-cni","neutron_network":"x","daemon_socket":"{}"}}"#,
        sock.display()
    )
}

const ADD_ENV: [(&str, &str); 4] = [
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "c1"),
    ("CNI_IFNAME", "eth0"),
    ("CNI_NETNS", "/run/netns/x"),
];

#[test]
fn version_is_answered_without_a_daemon() {
    let (code, out) = run(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"0.4.0"}"#);
    assert_eq!(code, 0);
    assert_eq!(out["cniVersion"], "0.4.0");
    let v: Vec<&str> = out["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(v, ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
}

#[test]
fn no_daemon_means_try_again_later_and_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let (code, out) = run(&ADD_ENV, &conf("1.0.0", &sock));
    assert_eq!(code, 1);
    assert_eq!(out["code"], 11);
    assert_eq!(out["cniVersion"], "1.0.0");
    assert!(
        out["msg"].as_str().unwrap().contains("not reachable"),
        "{out}"
    );
    let (code, out) = run(&[("CNI_COMMAND", "STATUS")], &conf("1.1.0", &sock));
    assert_eq!((code, out["code"].as_u64()), (1, Some(50)));
}

#[test]
fn the_daemon_gets_the_call_and_its_answer_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("cni.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let daemon = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 8192];
        // Head and body arrive in at most a few reads; the body ends the JSON object.
        loop {
            let n = c.read(&mut buf).unwrap();
            req.extend_from_slice(&buf[..n]);
            if n == 0 || req.ends_with(b"}") {
                break;
            }
        }
        let answer = r#"{"exit_code":1,"stdout":"{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no such network\"}"}"#;
        write!(
            c,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        String::from_utf8_lossy(&req).to_string()
    });
    let mut env = ADD_ENV.to_vec();
    env.push(("NOT_CNI", "left out"));
    let (code, out) = run(&env, &conf("1.0.0", &sock));
    assert_eq!(code, 1);
    assert_eq!(out["code"], 7);
    let req = daemon.join().unwrap();
    assert!(req.contains(r#""CNI_CONTAINERID":"c1""#), "{req}");
    assert!(
        !req.contains("NOT_CNI"),
        "only CNI_ variables are forwarded: {req}"
    );
    assert!(req.contains("neutron_network"), "stdin forwarded: {req}");
}

#[test]
fn install_copies_the_plugin_into_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_kuryr-cni"))
        .args(["install", dir.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let copy = dir.path().join("kuryr-cni");
    let out = Command::new(&copy)
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("supportedVersions"));
    assert!(!dir.path().join(".kuryr-cni.tmp").exists());

    // With the node's network configuration, which must be JSON.
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("10-kuryr.conflist");
    std::fs::write(&conf, r#"{"cniVersion":"1.0.0","name":"k","plugins":[]}"#).unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_kuryr-cni"))
        .arg("install")
        .args([dir.path(), &conf, conf_dir.path()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(conf_dir.path().join("10-kuryr.conflist").exists());
    std::fs::write(&conf, "not json").unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_kuryr-cni"))
        .arg("install")
        .args([dir.path(), &conf, conf_dir.path()])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success(), "a broken conflist is refused");
}
