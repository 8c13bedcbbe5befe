//! `kuryr-cni`: the CNI plugin binary. The runtime runs it with `CNI_*` variables and the
//! network configuration on stdin; it answers VERSION itself and hands every other call to the
//! node daemon, printing the daemon's answer. Logs go to stderr, answers to stdout.

use std::io::Read;
use std::path::PathBuf;

use kuryr_cni::command::{asked_version, parse_call, Command, Invocation};
use kuryr_cni::forward::{self, DEFAULT_SOCKET};
use kuryr_cni::wire::{code, version_reply, CniError};

fn main() {
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

fn fail(e: CniError) -> ! {
    eprintln!("kuryr-cni: {e}");
    println!("{}", e.to_json());
    std::process::exit(1);
}
