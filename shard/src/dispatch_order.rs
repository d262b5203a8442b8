//! Turns in arrival order: Produce requests reach a partition's log in
//! the order they arrived, through every wait on the way.
//!
//! Layer: foundation (see the crate docs): the router and the partitions
//! both take turns. Imports nothing of the crate.
//!
//! Why: Kafka appends the Produce requests of one connection in order, and
//! a client that pipelines them without idempotence (librdkafka's default)
//! relies on it for per-partition order. Two places could break it:
//!
//! * The router runs each request as a task of its own, so pipelined
//!   requests overlap; one that waits on its way to a shard (a full mesh
//!   channel, metadata catching up after a topic was created) could be
//!   overtaken by the next. Each request of a connection takes a [`Turn`]
//!   when its frame is read; a Produce waits for it before routing and
//!   gives it up once every batch is on its way, any other request at once.
//! * On the owning shard, a request that arrives while the partition's log
//!   is opening waits; when the open ends, a request that arrived later
//!   but had not run yet found the log open and appended first (seen with
//!   librdkafka: a producer's records stored out of the order it sent
//!   them). Each request takes a turn of its partition before its first
//!   await and holds it until its batches are appended
//!   (`Partitions::arrival_turn`).
//!
//! Only the hand-over is ordered: fsyncs and answers still overlap, so
//! group commit keeps grouping. Turns are bounded by the requests in flight
//! (per connection, the router's `IN_FLIGHT_REQUESTS_MAX`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// The turns of one connection, or of one partition on its shard.
#[derive(Default)]
pub struct DispatchOrder {
    next_ticket: Cell<u64>,
    /// Every ticket below this has been given up.
    serving: Cell<u64>,
    /// Tickets at or above `serving` given up early (requests that needed
    /// no turn, or finished out of order).
    given_up: RefCell<BTreeSet<u64>>,
    waiters: RefCell<Vec<Waker>>,
}

impl DispatchOrder {
    /// The next turn, in arrival order.
    pub fn take(self: &Rc<Self>) -> Turn {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        Turn {
            order: self.clone(),
            ticket,
        }
    }
}

/// One request's place in a [`DispatchOrder`]. Dropping it gives the turn
/// up (once dispatched or appended, at once for requests that need no
/// turn, or when the request's task is cancelled).
pub struct Turn {
    order: Rc<DispatchOrder>,
    ticket: u64,
}

impl Turn {
    /// Resolves when every earlier turn has been given up.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.order.serving.get() == self.ticket {
                Poll::Ready(())
            } else {
                self.order.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let order = &self.order;
        let mut given_up = order.given_up.borrow_mut();
        given_up.insert(self.ticket);
        let before = order.serving.get();
        let mut serving = before;
        while given_up.remove(&serving) {
            serving += 1;
        }
        order.serving.set(serving);
        drop(given_up);
        if serving != before {
            for waker in order.waiters.borrow_mut().drain(..) {
                waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn a_turn_comes_when_every_earlier_one_is_given_up_in_any_order() {
        let order = Rc::new(DispatchOrder::default());
        let (first, second, third) = (order.take(), order.take(), order.take());
        block_on(async {
            assert!(poll_once(third.wait()).await.is_none());
            drop(second);
            assert!(poll_once(third.wait()).await.is_none(), "first still holds");
            assert!(poll_once(first.wait()).await.is_some());
            drop(first);
            assert!(poll_once(third.wait()).await.is_some());
        });
        drop(third);
        assert!(order.given_up.borrow().is_empty());
        assert_eq!(order.serving.get(), 3);
    }
}
