//! Named crash points for the fault tests: with `KURYR_TEST_CRASH_AT=<name>` in its environment
//! the daemon aborts (no clean-up, as after `kill -9`) when it reaches that point. The variable
//! is read once; unset, a crash point costs one comparison.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_AT_ENV: &str = "KURYR_TEST_CRASH_AT";

/// After RequestAddress made its port, before Docker has the answer.
pub const RESERVE_PORT_MADE: &str = "reserve:port-made";

/// Prefix of the points after a plugin call's work, before Docker has its answer:
/// `call:/NetworkDriver.CreateEndpoint` and so on (the call's path).
pub const AFTER_CALL_PREFIX: &str = "call:";

fn armed() -> Option<&'static str> {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| std::env::var(CRASH_AT_ENV).ok())
        .as_deref()
}

fn abort(name: &str) -> ! {
    eprintln!("{CRASH_AT_ENV}={name}: aborting");
    std::process::abort();
}

/// Aborts the process when `name` is the crash point asked for.
pub fn reached(name: &str) {
    if armed() == Some(name) {
        abort(name);
    }
}

/// Aborts the process when the crash point asked for is the end of the plugin call `path`
/// (its work done, its answer not sent).
pub fn after_call(path: &str) {
    if let Some(at) = armed() {
        if at.strip_prefix(AFTER_CALL_PREFIX) == Some(path) {
            abort(at);
        }
    }
}
