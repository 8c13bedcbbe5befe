//! Named crash points for the fault tests: with `KURYR_TEST_CRASH_AT=<name>` in its environment
//! the daemon aborts (no clean-up, as after `kill -9`) when it reaches that point. The variable
//! is read once; unset, a crash point costs one comparison.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_AT_ENV: &str = "KURYR_TEST_CRASH_AT";

/// After RequestAddress made its port, before Docker has the answer.
pub const RESERVE_PORT_MADE: &str = "reserve:port-made";

/// Aborts the process when `name` is the crash point asked for.
pub fn reached(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(CRASH_AT_ENV).ok());
    if at.as_deref() == Some(name) {
        eprintln!("{CRASH_AT_ENV}={name}: aborting");
        std::process::abort();
    }
}
