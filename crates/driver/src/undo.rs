//! An undo stack: each step of a multi-request operation pushes the action that reverses it; on
//! failure the actions run in reverse order, on success the stack is committed (forgotten).

use std::fmt::Display;
use std::future::Future;

use futures::future::BoxFuture;

use crate::error::UndoError;

type Action = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

/// Reverse actions of what the current call created.
#[derive(Default)]
pub struct Undo {
    steps: Vec<(String, Action)>,
}

impl Undo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records how to reverse a step; `what` names the resource for logs.
    pub fn push<F, Fut, E>(&mut self, what: impl Into<String>, f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let action: Action =
            Box::new(move || Box::pin(async move { f().await.map_err(|e| e.to_string()) }));
        self.steps.push((what.into(), action));
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The operation succeeded: keep everything.
    pub fn commit(mut self) {
        self.steps.clear();
    }

    /// Runs every recorded action, newest first, and returns the failures (each naming its step).
    /// All actions run even if some fail.
    pub async fn unwind(mut self) -> Vec<UndoError> {
        let mut errors = Vec::new();
        while let Some((what, action)) = self.steps.pop() {
            match action().await {
                Ok(()) => tracing::debug!(step = %what, "rolled back"),
                Err(e) => {
                    tracing::warn!(step = %what, error = %e, "rollback step failed");
                    errors.push(UndoError {
                        step: what,
                        message: e,
                    });
                }
            }
        }
        errors
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.steps.is_empty() {
            // A bug, not a runtime condition: every path must commit or unwind.
            tracing::error!(
                steps = self.steps.len(),
                "undo stack dropped without commit or unwind"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn unwinds_in_reverse_and_collects_errors() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut undo = Undo::new();
        for i in 0..3 {
            let log = log.clone();
            undo.push(format!("step {i}"), move || async move {
                log.lock().unwrap().push(i);
                if i == 1 {
                    Err("boom")
                } else {
                    Ok(())
                }
            });
        }
        assert_eq!(undo.len(), 3);
        let errors = undo.unwind().await;
        assert_eq!(*log.lock().unwrap(), vec![2, 1, 0]);
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors, vec!["step 1: boom".to_string()]);
    }

    #[tokio::test]
    async fn commit_runs_nothing() {
        let log = Arc::new(Mutex::new(Vec::<i32>::new()));
        let mut undo = Undo::new();
        let l = log.clone();
        undo.push("x", move || async move {
            l.lock().unwrap().push(1);
            Ok::<(), String>(())
        });
        undo.commit();
        assert!(log.lock().unwrap().is_empty());
    }
}
