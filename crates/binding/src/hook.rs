//! Executable vif-type hooks, called exactly like kuryr-lib's `bind`/`unbind` scripts so any
//! vendor's plug script in `bindir` keeps working.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::constants::{HOOK_BIND, HOOK_UNBIND};
use crate::error::BindingError;

/// What kuryr-lib passes for vif_details: the Python `str()` of the dict inside double quotes,
/// or `None` (Python's `str(None)`) when empty. Scripts grep this text, e.g. the `ovs` script
/// looks for `'ovs_hybrid_plug': True`.
pub fn vif_details_arg(details: &Map<String, Value>) -> String {
    if details.is_empty() {
        return "None".into();
    }
    let mut s = String::from("\"");
    python_repr_map(details, &mut s);
    s.push('"');
    s
}

fn python_repr_map(m: &Map<String, Value>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        python_repr_str(k, out);
        out.push_str(": ");
        python_repr(v, out);
    }
    out.push('}');
}

fn python_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => python_repr_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_repr(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => python_repr_map(m, out),
    }
}

/// Python's str repr: single quotes unless the text has a single quote and no double quote.
fn python_repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Arguments of a hook `bind` call (kuryr-lib veth driver order).
pub struct HookBindArgs<'a> {
    pub port_id: &'a str,
    pub ifname: &'a str,
    pub endpoint_id: &'a str,
    pub mac: &'a str,
    pub network_id: &'a str,
    pub project_id: &'a str,
    pub vif_details: &'a Map<String, Value>,
}

/// `bind <port_id> <ifname> <endpoint_id> <mac> <network_id> <project_id> <vif_details>`.
pub fn bind_argv(a: &HookBindArgs<'_>) -> Vec<String> {
    vec![
        HOOK_BIND.into(),
        a.port_id.into(),
        a.ifname.into(),
        a.endpoint_id.into(),
        a.mac.into(),
        a.network_id.into(),
        a.project_id.into(),
        vif_details_arg(a.vif_details),
    ]
}

/// `unbind <port_id> <ifname> <endpoint_id> <mac> <vif_details> <network_id>`: kuryr-lib's
/// unbind order differs from bind, and scripts depend on it.
pub fn unbind_argv(a: &HookBindArgs<'_>) -> Vec<String> {
    vec![
        HOOK_UNBIND.into(),
        a.port_id.into(),
        a.ifname.into(),
        a.endpoint_id.into(),
        a.mac.into(),
        vif_details_arg(a.vif_details),
        a.network_id.into(),
    ]
}

/// A vif type is a file name in bindir: refuse anything that could walk out of it.
pub fn valid_vif_type(vif_type: &str) -> bool {
    !vif_type.is_empty()
        && !vif_type.starts_with('.')
        && vif_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Path of the hook for `vif_type`, if an executable file is there.
pub fn find_hook(bindir: &Path, vif_type: &str) -> Result<PathBuf, BindingError> {
    let path = bindir.join(vif_type);
    let not_supported = || BindingError::VifTypeNotSupported {
        vif_type: vif_type.to_string(),
        path: path.display().to_string(),
    };
    if !valid_vif_type(vif_type) {
        return Err(not_supported());
    }
    let meta = std::fs::metadata(&path).map_err(|_| not_supported())?;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(not_supported());
    }
    // The daemon runs hooks as root: one that another user could rewrite is a way in.
    let unsafe_hook = |reason: &str| BindingError::UnsafeHook {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(unsafe_hook("writable by its group or by others"));
    }
    let me = own_uid();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(unsafe_hook("owned by another user than root"));
    }
    Ok(path)
}

/// The daemon's own user id (from /proc, to keep libc out of this crate).
fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// What a hook's environment holds: a standard `PATH` and nothing of the daemon's own (its
/// `OS_PASSWORD`, tokens and other credentials stay with it).
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs a hook with a timeout; stderr goes into the error. Returns stdout.
pub async fn run_hook(
    path: &Path,
    argv: &[String],
    timeout: Duration,
    port_id: &str,
) -> Result<String, BindingError> {
    let subcommand = if argv.first().map(String::as_str) == Some(HOOK_UNBIND) {
        HOOK_UNBIND
    } else {
        HOOK_BIND
    };
    let err = |message: String| BindingError::Hook {
        script: path.display().to_string(),
        subcommand,
        port_id: port_id.to_string(),
        message,
    };
    let child = tokio::process::Command::new(path)
        .args(argv)
        .env_clear()
        .env("PATH", HOOK_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot start: {e}")))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| err(format!("timed out after {}s", timeout.as_secs())))?
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // kuryr-lib's `unbound` script prints to stdout, so fall back to it.
        let detail = if stderr.trim().is_empty() {
            stdout.trim().to_string()
        } else {
            stderr.trim().to_string()
        };
        return Err(err(format!("exited with {}: {detail}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn details() -> Map<String, Value> {
        // Keys in sorted order so the result is the same with serde_json's preserve_order.
        json!({"bridge_name": "br-int", "l": ["a"], "n": 3, "ovs_hybrid_plug": false,
               "port_filter": true, "x": null})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn vif_details_like_python_str() {
        let s = vif_details_arg(&details());
        assert_eq!(
            s,
            "\"{'bridge_name': 'br-int', 'l': ['a'], 'n': 3, 'ovs_hybrid_plug': False, \
             'port_filter': True, 'x': None}\""
        );
        assert_eq!(vif_details_arg(&Map::new()), "None");
        let hybrid = json!({"ovs_hybrid_plug": true})
            .as_object()
            .unwrap()
            .clone();
        assert!(vif_details_arg(&hybrid).contains("'ovs_hybrid_plug': True"));
        let mut q = String::new();
        python_repr_str("it's", &mut q);
        assert_eq!(q, "\"it's\"");
    }

    #[test]
    fn bind_and_unbind_argument_order() {
        let d = details();
        let a = HookBindArgs {
            port_id: "P",
            ifname: "tapP",
            endpoint_id: "E",
            mac: "fa:16:3e:00:00:01",
            network_id: "N",
            project_id: "T",
            vif_details: &d,
        };
        let b = bind_argv(&a);
        assert_eq!(
            &b[..7],
            ["bind", "P", "tapP", "E", "fa:16:3e:00:00:01", "N", "T"]
        );
        assert!(b[7].starts_with("\"{"));
        let u = unbind_argv(&a);
        assert_eq!(&u[..5], ["unbind", "P", "tapP", "E", "fa:16:3e:00:00:01"]);
        assert!(u[5].starts_with("\"{"));
        assert_eq!(u[6], "N");
    }

    #[test]
    fn vif_type_cannot_escape_bindir() {
        assert!(valid_vif_type("vhostuser"));
        assert!(valid_vif_type("binding_failed"));
        assert!(!valid_vif_type("../bin/sh"));
        assert!(!valid_vif_type(".hidden"));
        assert!(!valid_vif_type(""));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            find_hook(dir.path(), "../etc"),
            Err(BindingError::VifTypeNotSupported { .. })
        ));
        // Present but not executable is not a hook.
        std::fs::write(dir.path().join("plain"), "#!/bin/sh\n").unwrap();
        assert!(find_hook(dir.path(), "plain").is_err());
    }

    /// A script `name` in a new directory, with `mode`; the directory lives as long as the guard.
    fn script(name: &str, body: &str, mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn failing_hook_reports_stderr() {
        let (dir, _path) = script(
            "vendor",
            "#!/bin/sh\necho \"no luck with $1\" >&2\nexit 3\n",
            0o755,
        );
        let found = find_hook(dir.path(), "vendor").unwrap();
        let err = run_hook(&found, &["bind".into()], Duration::from_secs(5), "P")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no luck with bind"), "{err}");
        assert!(err.contains("port P"), "{err}");
    }

    #[tokio::test]
    async fn hooks_get_none_of_the_daemons_environment() {
        let (_dir, path) = script("env", "#!/bin/sh\nenv\n", 0o755);
        // A variable of this test process stands for the daemon's OS_PASSWORD.
        std::env::set_var("KURYR_HOOK_TEST_SECRET", "s3cr3t");
        let out = run_hook(&path, &["bind".into()], Duration::from_secs(5), "P")
            .await
            .unwrap();
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains(&format!("PATH={HOOK_PATH}")), "{out}");
    }

    #[test]
    fn hooks_others_can_write_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, path) = script("vendor", "#!/bin/sh\n", 0o755);
        for mode in [0o777, 0o775, 0o757] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = find_hook(dir.path(), "vendor").unwrap_err();
            assert!(
                matches!(e, BindingError::UnsafeHook { .. }),
                "{mode:o}: {e}"
            );
            assert!(e.to_string().contains("writable"), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(find_hook(dir.path(), "vendor").is_ok());
    }

    #[tokio::test]
    async fn hung_hook_times_out() {
        let (_dir, path) = script("slow", "#!/bin/sh\nexec sleep 30\n", 0o755);
        let err = run_hook(&path, &["unbind".into()], Duration::from_millis(300), "P")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("timed out"), "{err}");
        assert!(err.contains("unbind"), "{err}");
    }
}
