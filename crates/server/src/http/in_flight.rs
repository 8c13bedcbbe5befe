//! Driver calls still running, some past the deadline their reply was cut at: the daemon waits
//! for them before it exits, so that a set-up is never cut off before it finished or unwound
//! (a detached task would otherwise be dropped with the runtime, its rollback with it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Held by a running driver call; counted until dropped (also when the call panics).
pub(crate) struct Running(());

impl Running {
    pub(crate) fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many driver calls are running now.
pub fn running() -> usize {
    RUNNING.load(Ordering::SeqCst)
}

/// Waits until no driver call runs, for at most `limit`; returns how many still run then.
pub async fn drain(limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let n = running();
        if n == 0 || start.elapsed() >= limit {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
