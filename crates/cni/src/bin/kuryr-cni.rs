//! `kuryr-cni`: the CNI plugin binary. The runtime runs it with `CNI_*` variables and the
//! network configuration on stdin; it answers VERSION itself and hands every other call to the
//! node daemon, printing the daemon's answer. Logs go to stderr, answers to stdout.

use std::io::Read;
use std::path::PathBuf;

use kuryr_cni::command::{asked_version, parse_call, Command, Invocation};
use kuryr_cni::forward::{self, DEFAULT_SOCKET};
use kuryr_cni::wire::{code, version_reply, CniError};

fn main() {
    // `kuryr-cni install <bin dir> [<conflist> <conf dir>]`: a DaemonSet's init container puts
    // the plugin (and the node's network configuration) on the node; the image has no shell.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("install") {
        let dir = args.get(2).map_or("/opt/cni/bin", String::as_str);
        let me = std::env::current_exe();
        let mut done =
            me.and_then(|me| install_file(&me, std::path::Path::new(dir), "kuryr-cni", 0o755));
        if let (Ok(_), Some(conf), Some(conf_dir)) = (&done, args.get(3), args.get(4)) {
            let src = std::path::Path::new(conf);
            let name = src
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("10-kuryr.conflist");
            done = serde_json::from_slice::<serde_json::Value>(
                &std::fs::read(src).unwrap_or_default(),
            )
            .map_err(|e| std::io::Error::other(format!("{conf} is not JSON: {e}")))
            .and_then(|_| install_file(src, std::path::Path::new(conf_dir), name, 0o644));
        }
        match done {
            Ok(_) => {
                eprintln!("kuryr-cni: installed into {dir}");
                return;
            }
            Err(e) => {
                eprintln!("kuryr-cni: install failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let mut stdin = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut stdin) {
        fail(CniError::new(
            code::IO_FAILURE,
            format!("cannot read stdin: {e}"),
        ));
    }
    let inv = Invocation::from_process(stdin);
    let asked = asked_version(&inv);
    let command = inv.var("CNI_COMMAND").unwrap_or("").to_string();
    // A malformed call is answered here: the daemon need not be up to say what is wrong.
    let socket = match parse_call(&inv) {
        Ok(Command::Version(_)) => {
            println!("{}", version_reply(&asked));
            return;
        }
        Ok(Command::Add(t) | Command::Del(t) | Command::Check(t)) => t.conf.daemon_socket,
        Ok(Command::Status(c) | Command::Gc(c)) => c.daemon_socket,
        Err(e) => fail(e),
    }
    .map(PathBuf::from)
    .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    match forward::call(&socket, &inv, forward::CALL_TIMEOUT) {
        Ok(reply) => {
            if !reply.stdout.is_empty() {
                println!("{}", reply.stdout);
            }
            std::process::exit(reply.exit_code);
        }
        Err(e) => {
            // STATUS reports "not ready"; other calls are worth retrying once the daemon is up.
            let c = if command == "STATUS" {
                code::NOT_AVAILABLE
            } else {
                code::TRY_AGAIN_LATER
            };
            fail(
                CniError::new(
                    c,
                    format!("the kuryr daemon is not reachable at {}", socket.display()),
                )
                .with_details(format!(
                    "{e}; is kuryr-server running with [cni_daemon] enabled = true?"
                ))
                .in_version(&asked),
            );
        }
    }
}

/// Copies `src` to `dir/name` under a temporary name, then renames it: a runtime never runs a
/// half-written plugin or reads a half-written configuration.
fn install_file(
    src: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    mode: u32,
) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    std::fs::copy(src, &tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

fn fail(e: CniError) -> ! {
    eprintln!("kuryr-cni: {e}");
    println!("{}", e.to_json());
    std::process::exit(1);
}
