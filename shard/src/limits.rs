//! Bounds on what clients can make the broker hold: open connections
//! (broker-wide and per client IP) and the memory of requests being
//! served (per shard).
//!
//! Layer: foundation (see the crate docs). Imports only `metrics` of the
//! crate: the router applies the bounds, `config` carries the connection
//! count shared by every shard.
//!
//! Why the connection count is one shared value behind a mutex: with
//! `--router-cores all` every shard accepts on the same port (the kernel
//! spreads connections with SO_REUSEPORT), so a per-router count would let
//! the broker hold `--max-connections` times the number of routers. The
//! lock is taken once per accept and once per close, never per request.
//! The per-IP map holds only IPs with an open connection (an entry goes
//! when its count reaches 0), so it is bounded by the open connections.
//!
//! Why request memory is bounded per shard (Kafka's
//! `queued.max.request.bytes`): a shard's requests live in that shard's
//! memory and are served by its executor alone, so the budget needs no
//! cross-core synchronisation, and a shard that is behind pushes back on
//! its own clients only. Bytes are taken from the budget once a frame's
//! size prefix is in, before its body is read, and given back when the
//! request's answer was written: a shard over the bound stops reading its
//! sockets until answers go out, so it cannot grow without bound. Waiters
//! are served in arrival order, so a large frame is not starved by a
//! stream of small ones. A frame never exceeds the whole budget
//! (`--max-request-bytes` is checked to be at most the bound at start), so
//! every waiter gets its turn once earlier requests are answered. Outside
//! the budget: up to one read chunk of bytes not yet cut into frames per
//! connection, and the SASL phase, which reads one frame of at most
//! 64 KiB at a time per connection; both are bounded by the connection
//! limit. A client that declares a frame and then stalls holds its bytes
//! until the idle timeout closes its connection.

use crate::metrics::Metrics;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Default `--max-connections`.
pub const MAX_CONNECTIONS_DEFAULT: usize = 8192;
/// Default `--connections-max-idle-ms`: Kafka's `connections.max.idle.ms`.
pub const CONNECTIONS_MAX_IDLE_MS_DEFAULT: u64 = 600_000;
/// Default `--request-memory-bytes-max`: 512 MiB per shard.
pub const REQUEST_MEMORY_BYTES_MAX_DEFAULT: usize = 512 << 20;

/// Why a connection was refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The broker holds `--max-connections` connections.
    Total {
        /// The limit in force.
        limit: usize,
    },
    /// The client's IP holds `--max-connections-per-ip` connections.
    PerIp {
        /// The limit in force.
        limit: usize,
    },
}

/// The open Kafka connections of the whole broker, counted against
/// `--max-connections` and `--max-connections-per-ip`. Shared by every
/// shard's router (`Send + Sync`).
#[derive(Debug)]
pub struct ConnectionLimits {
    max_connections: usize,
    max_connections_per_ip: usize,
    open: Mutex<OpenConnections>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl ConnectionLimits {
    /// Limits of `max_connections` in all and `max_connections_per_ip` per
    /// client IP, both above 0.
    pub fn new(max_connections: usize, max_connections_per_ip: usize) -> Self {
        assert!(max_connections > 0, "max_connections must be above 0");
        assert!(
            max_connections_per_ip > 0,
            "max_connections_per_ip must be above 0"
        );
        ConnectionLimits {
            max_connections,
            max_connections_per_ip,
            open: Mutex::default(),
        }
    }

    /// `--max-connections`.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// `--max-connections-per-ip`.
    pub fn max_connections_per_ip(&self) -> usize {
        self.max_connections_per_ip
    }

    /// Counts a new connection from `ip`; the count is given back when the
    /// returned slot is dropped. `Err` when a limit is reached (nothing is
    /// counted then).
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut open = self.lock();
        if open.total >= self.max_connections {
            return Err(Refusal::Total {
                limit: self.max_connections,
            });
        }
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.max_connections_per_ip {
            return Err(Refusal::PerIp {
                limit: self.max_connections_per_ip,
            });
        }
        open.total += 1;
        open.per_ip.insert(ip, from_ip + 1);
        assert!(open.per_ip.len() <= open.total);
        Ok(ConnectionSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.lock().total
    }

    /// Connections open now from `ip`.
    pub fn open_connections_from(&self, ip: IpAddr) -> usize {
        self.lock().per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Client IPs with a connection open now (the per-IP map's size).
    pub fn client_ips(&self) -> usize {
        self.lock().per_ip.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenConnections> {
        // The lock guards plain counts updated without a panic point; a
        // poisoned lock still holds consistent counts.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn close(&self, ip: IpAddr) {
        let mut open = self.lock();
        assert!(open.total > 0);
        open.total -= 1;
        let from_ip = open
            .per_ip
            .get_mut(&ip)
            .expect("a closing connection's IP is counted");
        assert!(*from_ip > 0);
        *from_ip -= 1;
        if *from_ip == 0 {
            open.per_ip.remove(&ip);
        }
    }
}

/// One open connection's place in [`ConnectionLimits`], given back on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.close(self.ip);
    }
}

/// One shard's budget of request bytes (`--request-memory-bytes-max`):
/// [`RequestMemory::acquire`] waits, in arrival order, until the bytes fit.
pub struct RequestMemory {
    bytes_max: usize,
    state: RefCell<Budget>,
    gauge: Option<(Arc<Metrics>, usize)>,
}

struct Budget {
    in_use_bytes: usize,
    /// The most `in_use_bytes` has been since start: what a scrape of the
    /// current value can miss between two scrapes.
    in_use_bytes_peak: usize,
    /// Acquires that did not fit, oldest first, by ticket.
    waiters: VecDeque<Waiter>,
    next_ticket: u64,
}

struct Waiter {
    ticket: u64,
    waker: Waker,
}

impl RequestMemory {
    /// A budget of `bytes_max` bytes (above 0) whose use is exported as
    /// `shard`'s request memory gauge in `metrics`, if given.
    pub fn new(bytes_max: usize, gauge: Option<(Arc<Metrics>, usize)>) -> Rc<Self> {
        assert!(bytes_max > 0, "request memory bound must be above 0");
        Rc::new(RequestMemory {
            bytes_max,
            state: RefCell::new(Budget {
                in_use_bytes: 0,
                in_use_bytes_peak: 0,
                waiters: VecDeque::new(),
                next_ticket: 0,
            }),
            gauge,
        })
    }

    /// Bytes held by permits now.
    pub fn in_use_bytes(&self) -> usize {
        self.state.borrow().in_use_bytes
    }

    /// Acquires that wait now.
    pub fn waiting(&self) -> usize {
        self.state.borrow().waiters.len()
    }

    /// A permit for `bytes` bytes (at most the bound: a larger request
    /// could never fit), once they fit and every earlier waiter was served.
    pub fn acquire(self: &Rc<Self>, bytes: usize) -> Acquire {
        assert!(
            bytes <= self.bytes_max,
            "a request of {bytes} bytes exceeds the request memory bound of {} bytes",
            self.bytes_max
        );
        Acquire {
            memory: self.clone(),
            bytes,
            ticket: None,
        }
    }

    /// The most bytes permits have held at once since start.
    pub fn in_use_bytes_peak(&self) -> usize {
        self.state.borrow().in_use_bytes_peak
    }

    fn set_gauge(&self, in_use_bytes: usize, in_use_bytes_peak: usize) {
        if let Some((metrics, shard)) = &self.gauge {
            metrics.set_request_memory(*shard, in_use_bytes, in_use_bytes_peak);
        }
    }

    /// Wakes the oldest waiter, which takes its bytes if they fit now (and
    /// wakes the next one in turn).
    fn wake_front(budget: &Budget) {
        if let Some(front) = budget.waiters.front() {
            front.waker.wake_by_ref();
        }
    }

    fn release(&self, bytes: usize) {
        let mut budget = self.state.borrow_mut();
        assert!(budget.in_use_bytes >= bytes);
        budget.in_use_bytes -= bytes;
        let (in_use_bytes, in_use_bytes_peak) = (budget.in_use_bytes, budget.in_use_bytes_peak);
        Self::wake_front(&budget);
        drop(budget);
        self.set_gauge(in_use_bytes, in_use_bytes_peak);
    }
}

/// The future of [`RequestMemory::acquire`].
pub struct Acquire {
    memory: Rc<RequestMemory>,
    bytes: usize,
    /// Its place in the queue once it had to wait.
    ticket: Option<u64>,
}

impl Future for Acquire {
    type Output = MemoryPermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MemoryPermit> {
        let this = &mut *self;
        let mut budget = this.memory.state.borrow_mut();
        let first = match (this.ticket, budget.waiters.front()) {
            (_, None) => true,
            (Some(ticket), Some(front)) => front.ticket == ticket,
            (None, Some(_)) => false,
        };
        if first && budget.in_use_bytes + this.bytes <= this.memory.bytes_max {
            if this.ticket.take().is_some() {
                budget.waiters.pop_front();
            }
            budget.in_use_bytes += this.bytes;
            budget.in_use_bytes_peak = budget.in_use_bytes_peak.max(budget.in_use_bytes);
            assert!(budget.in_use_bytes_peak <= this.memory.bytes_max);
            let (in_use_bytes, in_use_bytes_peak) = (budget.in_use_bytes, budget.in_use_bytes_peak);
            RequestMemory::wake_front(&budget);
            drop(budget);
            this.memory.set_gauge(in_use_bytes, in_use_bytes_peak);
            return Poll::Ready(MemoryPermit {
                memory: this.memory.clone(),
                bytes: this.bytes,
            });
        }
        match this.ticket {
            Some(ticket) => {
                let waiter = budget
                    .waiters
                    .iter_mut()
                    .find(|w| w.ticket == ticket)
                    .expect("a waiting acquire is queued");
                waiter.waker.clone_from(cx.waker());
            }
            None => {
                let ticket = budget.next_ticket;
                budget.next_ticket += 1;
                budget.waiters.push_back(Waiter {
                    ticket,
                    waker: cx.waker().clone(),
                });
                this.ticket = Some(ticket);
            }
        }
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let mut budget = self.memory.state.borrow_mut();
        let was_first = budget.waiters.front().map(|w| w.ticket) == Some(ticket);
        budget.waiters.retain(|w| w.ticket != ticket);
        if was_first {
            RequestMemory::wake_front(&budget);
        }
    }
}

/// Bytes of a shard's request budget, given back on drop.
pub struct MemoryPermit {
    memory: Rc<RequestMemory>,
    bytes: usize,
}

impl MemoryPermit {
    /// The bytes it holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        self.memory.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn total_limit_is_reached_and_freed_on_close() {
        let limits = Arc::new(ConnectionLimits::new(2, 10));
        let a = limits.open(ip("127.0.0.1")).unwrap();
        let _b = limits.open(ip("127.0.0.2")).unwrap();
        assert_eq!(
            limits.open(ip("127.0.0.3")).unwrap_err(),
            Refusal::Total { limit: 2 }
        );
        assert_eq!(limits.open_connections(), 2);
        drop(a);
        assert_eq!(limits.open_connections(), 1);
        let _c = limits.open(ip("127.0.0.3")).unwrap();
        assert_eq!(limits.open_connections(), 2);
    }

    #[test]
    fn per_ip_limit_spares_other_ips_and_the_map_stays_bounded() {
        let limits = Arc::new(ConnectionLimits::new(100, 2));
        let one = ip("127.0.0.1");
        let slots: Vec<_> = (0..2).map(|_| limits.open(one).unwrap()).collect();
        assert_eq!(limits.open(one).unwrap_err(), Refusal::PerIp { limit: 2 });
        // A refusal counts nothing.
        assert_eq!(limits.open_connections(), 2);
        let other = limits.open(ip("::1")).unwrap();
        assert_eq!(limits.open_connections_from(one), 2);
        assert_eq!(limits.client_ips(), 2);
        drop(slots);
        assert_eq!(limits.open_connections_from(one), 0);
        assert_eq!(
            limits.client_ips(),
            1,
            "an IP without connections leaves the map"
        );
        drop(other);
        assert_eq!(limits.client_ips(), 0);
        assert_eq!(limits.open_connections(), 0);
        // Many short-lived clients leave nothing behind.
        for n in 0..1000u32 {
            let _slot = limits.open(IpAddr::from(n.to_be_bytes())).unwrap();
        }
        assert_eq!(limits.client_ips(), 0);
    }

    #[test]
    #[should_panic(expected = "above 0")]
    fn zero_connections_is_refused() {
        let _ = ConnectionLimits::new(0, 1);
    }

    /// Counts its wake-ups.
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_with(acquire: &mut Acquire, waker: &Arc<CountingWaker>) -> Option<MemoryPermit> {
        let waker = Waker::from(waker.clone());
        match Pin::new(acquire).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(permit) => Some(permit),
            Poll::Pending => None,
        }
    }

    #[test]
    fn budget_is_taken_and_given_back() {
        let metrics = Arc::new(Metrics::new(2));
        let memory = RequestMemory::new(100, Some((metrics.clone(), 1)));
        let a = block_on(memory.acquire(60));
        let b = block_on(memory.acquire(40));
        assert_eq!(memory.in_use_bytes(), 100);
        assert!(metrics
            .encode()
            .contains("ringlog_request_memory_bytes{shard=\"1\"} 100"));
        assert_eq!(a.bytes(), 60);
        drop(a);
        drop(b);
        assert_eq!(memory.in_use_bytes(), 0);
        let c = block_on(memory.acquire(30));
        drop(c);
        // The peak remembers the full budget after every permit is gone.
        assert_eq!(memory.in_use_bytes_peak(), 100);
        let text = metrics.encode();
        assert!(text.contains("ringlog_request_memory_bytes{shard=\"1\"} 0"));
        assert!(text.contains("ringlog_request_memory_peak_bytes{shard=\"1\"} 100"));
    }

    #[test]
    fn budget_waits_and_wakes_in_arrival_order() {
        let memory = RequestMemory::new(100, None);
        let held = block_on(memory.acquire(90));
        let large_waker = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let small_waker = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut large = memory.acquire(50);
        assert!(poll_with(&mut large, &large_waker).is_none());
        // A small request that would fit waits behind the large one.
        let mut small = memory.acquire(10);
        assert!(poll_with(&mut small, &small_waker).is_none());
        assert_eq!(memory.waiting(), 2);
        assert_eq!(memory.in_use_bytes(), 90);
        drop(held);
        assert_eq!(
            large_waker.0.load(Ordering::SeqCst),
            1,
            "the oldest is woken"
        );
        let large = poll_with(&mut large, &large_waker).expect("fits now");
        // Taking its bytes woke the next waiter, which fits too.
        assert_eq!(small_waker.0.load(Ordering::SeqCst), 1);
        let small = poll_with(&mut small, &small_waker).expect("fits too");
        assert_eq!(memory.in_use_bytes(), 60);
        assert_eq!(memory.waiting(), 0);
        drop((large, small));
        assert_eq!(memory.in_use_bytes(), 0);
    }

    #[test]
    fn a_cancelled_waiter_lets_the_next_one_in() {
        let memory = RequestMemory::new(100, None);
        let held = block_on(memory.acquire(80));
        let waker = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut large = memory.acquire(50);
        assert!(poll_with(&mut large, &waker).is_none());
        let mut small = memory.acquire(20);
        assert!(poll_with(&mut small, &waker).is_none());
        drop(large);
        assert_eq!(memory.waiting(), 1);
        let small = poll_with(&mut small, &waker).expect("the large waiter left");
        assert_eq!(small.bytes(), 20);
        assert!(block_on(poll_once(memory.acquire(1))).is_none(), "full");
        drop(held);
        assert_eq!(memory.waiting(), 0, "a dropped acquire leaves the queue");
        assert!(block_on(poll_once(memory.acquire(80))).is_some());
        drop(small);
    }

    #[test]
    #[should_panic(expected = "exceeds the request memory bound")]
    fn a_request_larger_than_the_budget_is_a_bug() {
        let memory = RequestMemory::new(100, None);
        drop(memory.acquire(101));
    }
}
