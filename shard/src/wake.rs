//! Waiting, on a shard, for something another thread completes: the
//! reply of another shard, of the archive store thread, of the HTTP
//! admin thread or of the signal thread.
//!
//! Why this exists: glommio 0.9 cannot take the *last* reference of a
//! task's waker being dropped on a foreign thread. Its foreign
//! `drop_waker` decrements the task's reference count and, if that hit
//! zero, clones the waker back (count 1) and queues it to the owning
//! executor, which destroys the task when it drops that clone. Between the
//! decrement and the clone the count reads zero, and if the owning
//! executor drops the task's `JoinHandle` in that window (the router does,
//! for every request task, as soon as it has its reply) it destroys the
//! task too: the queued clone then frees it a second time. The broker
//! aborted with `free(): double free detected in tcache 2` in
//! `SleepNotifier::process_foreign_wakes`, about once in a dozen runs of
//! `bench/scripts/tiered.py`, whose store threads are often preempted
//! inside that window on a two-core host.
//!
//! The fix is a rule: a glommio waker never leaves its executor's thread
//! in a way that lets another thread drop it. [`Shielded`] hands the
//! future it wraps a waker of its own, an `Arc<Slot>` whose mutex holds
//! the task's glommio waker. Another thread only ever calls
//! `wake_by_ref` on that waker under the mutex (glommio's foreign path
//! then clones it, a reference the mutex keeps alive, and the clone is
//! dropped by the owning executor), and [`Shielded`] takes the glommio
//! waker back out, on its own thread, when it completes or is dropped.
//! Whoever drops the slot last drops an empty mutex.
//!
//! Every oneshot in this crate comes from [`channel`], whose receiving
//! end is shielded (`shard/clippy.toml` refuses
//! `futures_channel::oneshot::channel`); any other future a foreign
//! thread wakes is wrapped with [`shield`].
//!
//! ```
//! use ringlog_shard::wake;
//!
//! glommio::LocalExecutorBuilder::default()
//!     .spawn(|| async {
//!         let (reply, answer) = wake::channel::<u32>();
//!         std::thread::spawn(move || reply.send(7)).join().unwrap().unwrap();
//!         assert_eq!(answer.await, Ok(7));
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap();
//! ```

use futures_channel::oneshot;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// The waker a shielded future hands down: foreign threads wake the
/// task's glommio waker through it by reference only.
#[derive(Default)]
struct Slot {
    task: Mutex<Option<Waker>>,
}

impl Slot {
    fn task(&self) -> MutexGuard<'_, Option<Waker>> {
        // The lock guards a plain `Option` that no code panics while
        // holding, so a poisoned lock still holds a coherent value.
        self.task.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for Slot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(task) = self.task().as_ref() {
            task.wake_by_ref();
        }
    }
}

/// A future whose waker is safe to wake, clone and drop from any thread
/// (see the module doc). Completes with what the inner future does.
pub struct Shielded<F> {
    inner: F,
    slot: Arc<Slot>,
    waker: Waker,
}

/// Wraps `inner`, a future some other thread may wake, so that it can be
/// awaited on a shard.
pub fn shield<F: Future + Unpin>(inner: F) -> Shielded<F> {
    let slot = Arc::new(Slot::default());
    let waker = Waker::from(slot.clone());
    Shielded { inner, slot, waker }
}

impl<F> Shielded<F> {
    /// The wrapped future, e.g. to ask a receiver without waiting.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// Takes the glommio waker out of the slot, on this thread.
    fn release(&self) {
        let task = self.slot.task().take();
        drop(task);
    }
}

impl<F: Future + Unpin> Future for Shielded<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let replaced = {
            let mut task = this.slot.task();
            match task.as_ref() {
                Some(held) if held.will_wake(cx.waker()) => None,
                _ => task.replace(cx.waker().clone()),
            }
        };
        // A waker replaced here is dropped here, on its own thread.
        drop(replaced);
        let poll = Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker));
        if poll.is_ready() {
            this.release();
        }
        poll
    }
}

impl<F> Drop for Shielded<F> {
    fn drop(&mut self) {
        self.release();
    }
}

/// The receiving end of [`channel`].
pub type Answer<T> = Shielded<oneshot::Receiver<T>>;

/// A oneshot whose receiver may be awaited on a shard while the sender is
/// on any thread.
pub fn channel<T>() -> (oneshot::Sender<T>, Answer<T>) {
    #[allow(clippy::disallowed_methods)] // the one place it is wrapped
    let (sender, receiver) = oneshot::channel();
    (sender, shield(receiver))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn on_executor(test: impl FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send + 'static) {
        glommio::LocalExecutorBuilder::default()
            .spawn(test)
            .expect("executor")
            .join()
            .expect("test task");
    }

    /// The task's waker leaves the slot when the answer arrives, so a
    /// sender on another thread that still holds the shielded waker (a
    /// late wake, a drop) never touches the finished task.
    #[test]
    fn completion_takes_the_task_waker_back() {
        on_executor(|| {
            Box::pin(async {
                let (reply, mut answer) = channel::<u64>();
                let slot = answer.slot.clone();
                let sender = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    reply.send(9).expect("receiver alive");
                });
                assert_eq!((&mut answer).await, Ok(9));
                assert!(slot.task().is_none(), "waker released at completion");
                sender.join().expect("sender thread");
                drop(answer);
                assert_eq!(Arc::strong_count(&slot), 1, "only this test holds it");
            })
        });
    }

    /// Dropping an answer before it arrives also takes the waker back.
    #[test]
    fn drop_takes_the_task_waker_back() {
        on_executor(|| {
            Box::pin(async {
                let (reply, mut answer) = channel::<u64>();
                let slot = answer.slot.clone();
                let polled = futures_lite::future::poll_once(&mut answer).await;
                assert!(polled.is_none(), "nothing sent yet");
                assert!(slot.task().is_some(), "pending: the task waits in the slot");
                drop(answer);
                assert!(slot.task().is_none(), "dropped: slot empty");
                assert!(reply.send(1).is_err(), "the receiver is gone");
            })
        });
    }

    /// Many request tasks, each joined (its `JoinHandle` dropped) the
    /// moment it ends, answered from plain threads: the pattern that made
    /// glommio free a task twice. Under `MALLOC_CHECK_=3` a double free
    /// aborts the test.
    #[test]
    fn foreign_answers_to_joined_tasks() {
        const TASKS: usize = 20_000;
        const THREADS: usize = 2;
        on_executor(|| {
            Box::pin(async {
                let (replies, receivers): (Vec<_>, Vec<_>) =
                    (0..TASKS).map(|_| channel::<usize>()).unzip();
                let mut shares: Vec<Vec<_>> = (0..THREADS).map(|_| Vec::new()).collect();
                for (i, reply) in replies.into_iter().enumerate() {
                    shares[i % THREADS].push((i, reply));
                }
                let senders: Vec<_> = shares
                    .into_iter()
                    .map(|share| {
                        std::thread::spawn(move || {
                            for (i, reply) in share {
                                reply.send(i).expect("receiver alive");
                            }
                        })
                    })
                    .collect();
                let tasks: Vec<_> = receivers.into_iter().map(glommio::spawn_local).collect();
                for (i, task) in tasks.into_iter().enumerate() {
                    assert_eq!(task.await, Ok(i));
                }
                for sender in senders {
                    sender.join().expect("sender thread");
                }
            })
        });
    }
}
