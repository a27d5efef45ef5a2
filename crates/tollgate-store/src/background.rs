//! What keeps a store's background tasks running: the handles that callers hold.
//!
//! A store starts tasks that run beside its callers: the change feed (`change_feed`), the
//! Redis recovery (`redis_connection`), the refresh-rotation writer (`refresh_rotation`) and
//! SQLite's checkpoints (`checkpoint`). Each holds a copy of the store, and each copy holds
//! connections. If those copies kept the store alive, a store that every caller has dropped
//! would go on listening, polling and retrying for as long as the process lives.
//!
//! So the stores that callers get (from [`Store::connect`] and their clones) each hold a
//! [`Handle::Caller`], and the copies that tasks hold a [`Handle::Task`], which does not count.
//! When the last caller's handle is dropped, the tasks see it at their next turn, or at once
//! while they wait, and end, dropping their copies; the rotation writer and the checkpoints,
//! which end with the last copy of their queue and pool, follow.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::{with_pool, Store};

/// Whether a copy of a store keeps its background tasks running.
#[derive(Debug, Clone)]
pub(crate) enum Handle {
    /// A caller's copy. Nothing is ever sent: the channel only tells, by closing, that the
    /// last caller's copy is gone.
    Caller(Arc<watch::Sender<()>>),
    /// A background task's copy.
    Task(watch::Receiver<()>),
}

impl Handle {
    /// The handle of a new store.
    pub(crate) fn new() -> Handle {
        Handle::Caller(Arc::new(watch::channel(()).0))
    }

    fn for_task(&self) -> Handle {
        match self {
            Handle::Caller(sender) => Handle::Task(sender.subscribe()),
            Handle::Task(receiver) => Handle::Task(receiver.clone()),
        }
    }
}

impl Store {
    /// A copy of this store for a background task: it does not keep the store's tasks running.
    pub(crate) fn for_task(&self) -> Store {
        Store {
            handle: self.handle.for_task(),
            ..self.clone()
        }
    }

    /// Whether every caller's copy of this store was dropped (never, for a caller's copy).
    fn dropped(&self) -> bool {
        match &self.handle {
            Handle::Caller(_) => false,
            Handle::Task(receiver) => receiver.has_changed().is_err(),
        }
    }

    /// Whether a background task should end: the store was closed, or every caller's copy of
    /// it was dropped.
    pub(crate) fn ended(&self) -> bool {
        self.dropped() || with_pool!(self, |pool| pool.is_closed())
    }

    /// Completes once every caller's copy of this store was dropped.
    pub(crate) async fn until_dropped(&self) {
        match &self.handle {
            Handle::Caller(_) => std::future::pending().await,
            Handle::Task(receiver) => {
                let mut receiver = receiver.clone();
                // Nothing is sent: this returns when the sender is gone.
                while receiver.changed().await.is_ok() {}
            }
        }
    }

    /// Waits `pause`, or less if every caller's copy is dropped meanwhile.
    pub(crate) async fn pause(&self, pause: Duration) {
        tokio::select! {
            () = self.until_dropped() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}
