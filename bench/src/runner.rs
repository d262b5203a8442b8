//! Thread-per-core harness: one glommio executor per `--threads`, the
//! collector on the main thread.
//!
//! Why thread-per-core for a load generator: the broker under test is
//! thread-per-core, and a generator that shares work between threads
//! (locks, work stealing) spends its CPU on coordination and adds its own
//! queueing to the latencies it reports. Here each executor owns its
//! connections, record generation and histograms outright; the only
//! cross-thread traffic is one message per thread per second to the main
//! thread, which merges them, prints progress and writes the reports.
//!
//! Every executor gets a small io_uring and no registered I/O memory: the
//! bench does socket I/O only, and must fit beside a broker in the same
//! memlock budget.

use std::cell::RefCell;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::{LocalExecutorBuilder, Placement};

use crate::stats::{Collector, Progress, Recorder, Totals, INTERVAL_NS};

/// io_uring submission queue depth per bench executor.
pub const RING_DEPTH: usize = 256;
/// Registered I/O memory per bench executor (glommio needs some; sockets
/// do not use it).
pub const IO_MEMORY_BYTES: usize = 64 << 10;
/// How long the main thread waits for a message before checking on the
/// threads again.
const COLLECT_POLL_MS: u64 = 200;
/// How long after a boundary a thread closes its interval (so events
/// stamped just before the boundary are in).
const ROLL_SLACK_NS: u64 = 5_000_000;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes the first Ctrl-C (SIGINT) end the run early but cleanly (the
/// summary is still printed); a second one kills the process as usual.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe; SA_RESETHAND restores the default afterwards.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_interrupt as *const () as usize;
        action.sa_flags = libc::SA_RESETHAND;
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

/// Whether the run was asked to stop (Ctrl-C).
pub fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// The run's clock, shared by every thread.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Monotonic start of the run.
    pub start: Instant,
    /// Wall-clock start, ns since the Unix epoch (record stamps are
    /// `wall_start_ns + due_ns`).
    pub wall_start_ns: u64,
    /// End of the warm-up, ns after the start.
    pub warmup_ns: u64,
    /// Nothing is generated at or after this, ns after the start.
    pub end_ns: Option<u64>,
}

impl Clock {
    /// A clock starting now.
    pub fn start_now(warmup: Duration, duration: Option<Duration>) -> Clock {
        let wall_start_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let warmup_ns = warmup.as_nanos() as u64;
        Clock {
            start: Instant::now(),
            wall_start_ns,
            warmup_ns,
            end_ns: duration.map(|d| warmup_ns + d.as_nanos() as u64),
        }
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The instant `ns` after the start.
    pub fn instant(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }

    /// The wall-clock time (ns since the Unix epoch) `ns` after the start.
    pub fn wall_ns(&self, ns: u64) -> u64 {
        self.wall_start_ns + ns
    }
}

/// What a thread's body gets.
pub struct ThreadContext {
    /// Thread index.
    pub thread: usize,
    /// The run's clock.
    pub clock: Clock,
    /// The thread's recorder.
    pub recorder: Rc<RefCell<Recorder>>,
}

async fn tick(recorder: Weak<RefCell<Recorder>>, clock: Clock) {
    // Ends when the thread's body has finished and let go of the recorder.
    loop {
        let now = clock.now_ns();
        let since = (now + INTERVAL_NS - clock.warmup_ns % INTERVAL_NS) % INTERVAL_NS;
        let wait = INTERVAL_NS - since + ROLL_SLACK_NS;
        glommio::timer::sleep(Duration::from_nanos(wait)).await;
        let Some(recorder) = recorder.upgrade() else {
            return;
        };
        recorder.borrow_mut().roll(clock.now_ns());
    }
}

/// Runs `body` on `threads` executors and collects their measurements.
/// `body` returns when the thread has finished, with the time (ns since
/// the start) it stopped generating. Progress lines go to stderr unless
/// `quiet`.
///
/// # Errors
///
/// An executor could not start or a thread panicked.
pub fn run<F, Fut>(threads: usize, clock: Clock, quiet: bool, body: F) -> Result<Totals, String>
where
    F: Fn(ThreadContext) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = u64> + 'static,
{
    assert!(threads >= 1);
    let (sink, messages) = mpsc::channel();
    let mut handles = Vec::with_capacity(threads);
    for thread in 0..threads {
        let sink = sink.clone();
        let body = body.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("bench-{thread}"))
            .ring_depth(RING_DEPTH)
            .io_memory(IO_MEMORY_BYTES)
            .spawn(move || async move {
                let recorder = Rc::new(RefCell::new(Recorder::new(
                    thread,
                    clock.start,
                    clock.warmup_ns,
                    sink,
                )));
                glommio::spawn_local(tick(Rc::downgrade(&recorder), clock)).detach();
                let generation_end_ns = body(ThreadContext {
                    thread,
                    clock,
                    recorder: recorder.clone(),
                })
                .await;
                recorder.borrow_mut().finish(generation_end_ns);
            })
            .map_err(|e| format!("cannot start bench thread {thread}: {e}"))?;
        handles.push(handle);
    }
    drop(sink);
    let mut collector = Collector::new(threads, clock.warmup_ns);
    let print = |lines: Vec<String>| {
        if !quiet {
            for line in lines {
                eprintln!("{line}");
            }
        }
    };
    // Ends when every thread is done, or every sender is gone (a thread
    // panicked); each wait is bounded.
    while !collector.all_done() {
        match messages.recv_timeout(Duration::from_millis(COLLECT_POLL_MS)) {
            Ok(message) => {
                if let Progress::Lines(lines) = collector.accept(message) {
                    print(lines);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let mut failed = Vec::new();
    for (thread, handle) in handles.into_iter().enumerate() {
        if let Err(e) = handle.join() {
            failed.push(format!("bench thread {thread} failed: {e:?}"));
        }
    }
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    let (totals, lines) = collector.finish();
    print(lines);
    Ok(totals)
}

/// Runs one future on a fresh executor on its own thread (set-up and
/// verification steps that talk to the cluster).
///
/// # Errors
///
/// The executor could not start or the thread panicked; otherwise the
/// future's own result.
pub fn once<T, F, Fut>(name: &str, body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, String>> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .ring_depth(RING_DEPTH)
        .io_memory(IO_MEMORY_BYTES)
        .spawn(body)
        .map_err(|e| format!("cannot start the {name} executor: {e}"))?
        .join()
        .map_err(|e| format!("{name} failed: {e:?}"))?
}
