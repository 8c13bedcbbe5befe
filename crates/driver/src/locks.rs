//! Per-key async locks: calls for the same network or endpoint are serialised, others run in
//! parallel. Entries are dropped once nobody holds or waits for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A set of named async mutexes.
#[derive(Default)]
pub struct KeyedLocks {
    inner: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

/// Holding this keeps the key locked.
pub struct KeyGuard {
    _guard: OwnedMutexGuard<()>,
}

impl KeyedLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until `key` is free and locks it.
    pub async fn lock(&self, key: &str) -> KeyGuard {
        let mutex = {
            let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            // Drop dead entries so the map does not grow with every Docker ID ever seen.
            if map.len() > 64 {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(AsyncMutex::new(()));
                    map.insert(key.to_string(), Arc::downgrade(&m));
                    m
                }
            }
        };
        KeyGuard {
            _guard: mutex.lock_owned().await,
        }
    }

    /// Number of keys currently tracked (for tests).
    pub fn tracked(&self) -> usize {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_key_is_serialised_other_keys_are_not() {
        let locks = Arc::new(KeyedLocks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (locks, inside, max_inside) = (locks.clone(), inside.clone(), max_inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock("net-a").await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_inside.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max_inside.load(Ordering::SeqCst), 1);

        // A different key is not blocked by a held one.
        let _a = locks.lock("net-a").await;
        let b = tokio::time::timeout(Duration::from_millis(200), locks.lock("net-b")).await;
        assert!(b.is_ok());
        drop(b);
        drop(_a);
        assert_eq!(locks.tracked(), 0);
    }
}
