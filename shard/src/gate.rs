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
/// requests in flight. A waiter holds one slot while it waits and gives it
/// back when it resolves or is dropped (a long poll that times out on an
/// idle partition leaves nothing behind), and a waiter polled again
/// replaces its waker rather than adding one.
#[derive(Default)]
pub struct DataGate {
    generation: Cell<u64>,
    /// Ids for the slots of `waiters`, never reused.
    waiter_next: Cell<u64>,
    waiters: RefCell<Vec<(u64, Waker)>>,
}

impl DataGate {
    /// The current generation; pass it to [`DataGate::wait_after`].
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Records a change and wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for (_, waker) in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves when a notify happens after `seen`, or after `timeout`.
    pub async fn wait_after(&self, seen: u64, timeout: Duration) -> bool {
        let slot = Slot::new(self);
        let notified = poll_fn(|cx| {
            if self.generation.get() != seen {
                Poll::Ready(true)
            } else {
                slot.register(cx.waker());
                Poll::Pending
            }
        });
        let timed_out = async {
            glommio::timer::sleep(timeout).await;
            false
        };
        futures_lite::future::or(notified, timed_out).await
    }

    /// How many waiters hold a slot.
    #[cfg(test)]
    fn waiter_count(&self) -> usize {
        self.waiters.borrow().len()
    }
}

/// One waiter's place among a gate's waiters, released on drop.
struct Slot<'a> {
    gate: &'a DataGate,
    id: u64,
}

impl<'a> Slot<'a> {
    fn new(gate: &'a DataGate) -> Self {
        let id = gate.waiter_next.get();
        gate.waiter_next.set(id + 1);
        Slot { gate, id }
    }

    /// Stores `waker` as this waiter's, in its existing slot if a notify
    /// has not emptied it since the last poll.
    fn register(&self, waker: &Waker) {
        let mut waiters = self.gate.waiters.borrow_mut();
        match waiters.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, held)) => held.clone_from(waker),
            None => waiters.push((self.id, waker.clone())),
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.gate
            .waiters
            .borrow_mut()
            .retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;

    #[test]
    fn timed_out_and_notified_waiters_leave_no_waker_behind() {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                let gate = DataGate::default();
                for _ in 0..100 {
                    let seen = gate.generation();
                    assert!(!gate.wait_after(seen, Duration::from_millis(1)).await);
                }
                assert_eq!(gate.waiter_count(), 0);

                let gate = std::rc::Rc::new(gate);
                let seen = gate.generation();
                let waiters: Vec<_> = (0..8)
                    .map(|_| {
                        let gate = gate.clone();
                        glommio::spawn_local(async move {
                            gate.wait_after(seen, Duration::from_secs(60)).await
                        })
                    })
                    .collect();
                glommio::yield_if_needed().await;
                glommio::executor().yield_task_queue_now().await;
                assert_eq!(gate.waiter_count(), 8);
                gate.notify();
                for waiter in waiters {
                    assert!(waiter.await);
                }
                assert_eq!(gate.waiter_count(), 0);
            })
            .expect("executor")
            .join()
            .expect("test task");
    }
}
