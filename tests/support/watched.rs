//! State shared between a stand-in server's tasks and the test that waits on it: a mutex and a
//! notification on every change. Used by the Runtime API stand-in (also built into
//! `examples/runtime_api.rs`) and the OTLP receiver.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// `S` behind a mutex, with waiters woken on every [`Watched::changed`].
#[derive(Default)]
pub struct Watched<S> {
    state: Mutex<S>,
    changed: Notify,
}

impl<S> Watched<S> {
    /// The state; a panicking test thread must not take every later assertion down with it.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every waiter of [`Watched::wait_for`] to look again.
    pub fn changed(&self) {
        self.changed.notify_waiters();
    }

    /// Waits until `check` returns `Some` or `timeout` passes.
    pub async fn wait_for<T>(&self, timeout: Duration, mut check: impl FnMut(&S) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = check(&self.lock()) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return check(&self.lock());
            }
        }
    }
}
