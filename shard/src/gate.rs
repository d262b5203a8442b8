//! A wake-up for tasks that wait for something to change: new data in a
//! partition, a metadata replica moving on, a shard stopping.
//!
//! Layer: foundation (see the crate docs); imports nothing of the crate.
//! Why a generation counter rather than a channel: a waiter reads the
//! generation, checks its condition, then waits for a later generation, so
//! a notify between the check and the wait is never lost, and one notify
//! wakes every waiter at once without a queue per waiter.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Wakes the tasks waiting for a change. Waiters are bounded by the tasks
/// that wait on one gate: for a partition's data, the fetches in flight
/// for it; for a replica or a shard, its own few background tasks and the
/// requests in flight.
#[derive(Default)]
pub struct DataGate {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl DataGate {
    /// The current generation; pass it to [`DataGate::wait_after`].
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Records a change and wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves when a notify happens after `seen`, or after `timeout`.
    pub async fn wait_after(&self, seen: u64, timeout: Duration) -> bool {
        let notified = poll_fn(|cx| {
            if self.generation.get() != seen {
                Poll::Ready(true)
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        });
        let timed_out = async {
            glommio::timer::sleep(timeout).await;
            false
        };
        futures_lite::future::or(notified, timed_out).await
    }
}
