//! Counting and latency recording: per thread while the run goes, merged
//! on the main thread once per second and at the end.
//!
//! Why per-thread recorders and one-second intervals: a load-generator
//! thread must never wait for another, so each keeps its own counters and
//! HdrHistograms (recording is an array increment) and hands the main
//! thread one closed interval per second over a channel. The main thread
//! merges interval `i` once every thread has closed it and prints the
//! progress line; the final report is the merge of every interval after
//! the warm-up. HdrHistogram keeps 3 significant digits from 1 µs to an
//! hour, so the tail (p99.9, max) is exact to 0.1% rather than bucketed.
//!
//! Interval `i` covers `[warmup + i s, warmup + (i+1) s)` of the run, so
//! warm-up intervals have negative indexes and never reach the totals.

use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::Sender;
use std::time::Instant;

/// Largest latency recorded, µs (an hour); larger values saturate.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Significant digits of every histogram.
pub const LATENCY_SIGFIG: u8 = 3;
/// Length of a progress interval.
pub const INTERVAL_NS: u64 = 1_000_000_000;
/// Distinct error descriptions kept per interval; further kinds are
/// counted under one "other errors" entry (bounds memory if a broker
/// returns ever-changing messages).
pub const ERROR_KINDS_MAX: usize = 32;
const OTHER_ERRORS: &str = "other errors";

/// An empty latency histogram (µs).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Nanoseconds to the µs the histograms hold (at least 1).
pub fn ns_to_us(ns: u64) -> u64 {
    (ns / 1_000).max(1)
}

/// Milliseconds of a histogram value (µs).
pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// What one thread measured in one interval.
#[derive(Clone, Debug)]
pub struct Interval {
    /// The thread.
    pub thread: usize,
    /// Interval index (negative during warm-up).
    pub index: i64,
    /// Records (or requests) completed successfully.
    pub records: u64,
    /// Bytes of those records as the broker counts them (batch bytes).
    pub bytes: u64,
    /// Records (or requests) that failed.
    pub errors: u64,
    /// Primary latency, µs.
    pub latency: Histogram<u64>,
    /// Secondary latency (e.g. request round trips), µs.
    pub secondary: Histogram<u64>,
    /// Error description -> records.
    pub error_kinds: HashMap<String, u64>,
    /// Latest completion time in this interval, ns since the run started.
    pub last_completion_ns: Option<u64>,
}

impl Interval {
    fn new(thread: usize, index: i64) -> Interval {
        Interval {
            thread,
            index,
            records: 0,
            bytes: 0,
            errors: 0,
            latency: new_histogram(),
            secondary: new_histogram(),
            error_kinds: HashMap::new(),
            last_completion_ns: None,
        }
    }

    fn add_errors(&mut self, kind: &str, count: u64) {
        self.errors += count;
        add_kind(&mut self.error_kinds, kind, count);
    }
}

/// A thread's last word.
#[derive(Clone, Debug, Default)]
pub struct ThreadEnd {
    /// The thread.
    pub thread: usize,
    /// When it stopped generating, ns since the run started.
    pub generation_end_ns: u64,
    /// Records acknowledged, warm-up included (for verification).
    pub acknowledged_all: u64,
}

/// What threads send the collector.
#[derive(Debug)]
pub enum Message {
    /// A closed interval.
    Interval(Box<Interval>),
    /// The thread finished (after its last interval).
    Done(ThreadEnd),
}

/// One thread's recorder. Shared by the thread's tasks through
/// `Rc<RefCell<..>>`; never borrowed across an await.
pub struct Recorder {
    start: Instant,
    warmup_ns: u64,
    current: Interval,
    sink: Sender<Message>,
    acknowledged_all: u64,
}

impl Recorder {
    /// A recorder for `thread` of a run that started at `start` and
    /// measures after `warmup_ns`.
    pub fn new(thread: usize, start: Instant, warmup_ns: u64, sink: Sender<Message>) -> Recorder {
        let mut recorder = Recorder {
            start,
            warmup_ns,
            current: Interval::new(thread, 0),
            sink,
            acknowledged_all: 0,
        };
        recorder.current.index = recorder.index_of(0);
        recorder
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The run's start.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The interval holding time `t_ns`.
    pub fn index_of(&self, t_ns: u64) -> i64 {
        (t_ns as i128 - self.warmup_ns as i128).div_euclid(INTERVAL_NS as i128) as i64
    }

    /// Closes and sends every interval that ended by `now_ns`, empty ones
    /// included (the collector needs each thread's word on each interval).
    pub fn roll(&mut self, now_ns: u64) {
        let target = self.index_of(now_ns);
        while self.current.index < target {
            let next = Interval::new(self.current.thread, self.current.index + 1);
            let closed = std::mem::replace(&mut self.current, next);
            // A gone collector means the run is being torn down.
            let _ = self.sink.send(Message::Interval(Box::new(closed)));
        }
    }

    /// `records` records of `bytes` bytes completed at `now_ns`; `latencies_ns`
    /// are their latencies.
    pub fn completed(
        &mut self,
        now_ns: u64,
        records: u64,
        bytes: u64,
        latencies_ns: impl IntoIterator<Item = u64>,
    ) {
        self.roll(now_ns);
        self.acknowledged_all += records;
        let current = &mut self.current;
        current.records += records;
        current.bytes += bytes;
        for latency in latencies_ns {
            current.latency.saturating_record(ns_to_us(latency));
        }
        current.last_completion_ns = Some(now_ns);
    }

    /// Secondary latency samples (request round trips, or produce
    /// acknowledgements in end-to-end runs) taken at `now_ns`.
    pub fn secondary(&mut self, now_ns: u64, latencies_ns: impl IntoIterator<Item = u64>) {
        self.roll(now_ns);
        for latency in latencies_ns {
            self.current.secondary.saturating_record(ns_to_us(latency));
        }
    }

    /// `count` records (or requests) failed at `now_ns` for `kind`.
    pub fn failed(&mut self, now_ns: u64, count: u64, kind: &str) {
        if count == 0 {
            return;
        }
        self.roll(now_ns);
        self.current.add_errors(kind, count);
    }

    /// Records acknowledged so far, warm-up included.
    pub fn acknowledged_all(&self) -> u64 {
        self.acknowledged_all
    }

    /// Sends the open interval and the thread's end. Called once, when
    /// every task of the thread has finished.
    pub fn finish(&mut self, generation_end_ns: u64) {
        let now = self.now_ns();
        self.roll(now);
        let thread = self.current.thread;
        let last = std::mem::replace(&mut self.current, Interval::new(thread, i64::MAX));
        let _ = self.sink.send(Message::Interval(Box::new(last)));
        let _ = self.sink.send(Message::Done(ThreadEnd {
            thread,
            generation_end_ns,
            acknowledged_all: self.acknowledged_all,
        }));
    }
}

/// Throughput and tail of one second, for the progress line and the plot.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SeriesPoint {
    /// End of the interval, seconds after the warm-up.
    pub t_s: f64,
    /// Records completed.
    pub records: u64,
    /// Bytes completed.
    pub bytes: u64,
    /// Errors.
    pub errors: u64,
    /// p99 latency of the interval, ms (0 when nothing completed).
    pub p99_ms: f64,
}

/// Everything measured after the warm-up, merged over threads.
#[derive(Clone, Debug)]
pub struct Totals {
    /// Records completed.
    pub records: u64,
    /// Bytes completed.
    pub bytes: u64,
    /// Records (or requests) failed.
    pub errors: u64,
    /// Primary latency, µs.
    pub latency: Histogram<u64>,
    /// Secondary latency, µs.
    pub secondary: Histogram<u64>,
    /// Error description -> count, over the whole run (warm-up included:
    /// an error is worth reporting whenever it happened).
    pub error_kinds: BTreeMap<String, u64>,
    /// Errors during the warm-up (also in `error_kinds`).
    pub warmup_errors: u64,
    /// Records completed during the warm-up.
    pub warmup_records: u64,
    /// Per-second series after the warm-up.
    pub series: Vec<SeriesPoint>,
    /// Measured time, seconds (after the warm-up until the last completion
    /// or the end of generation, whichever is later).
    pub duration_s: f64,
    /// Records acknowledged over the whole run, warm-up included.
    pub acknowledged_all: u64,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            records: 0,
            bytes: 0,
            errors: 0,
            latency: new_histogram(),
            secondary: new_histogram(),
            error_kinds: BTreeMap::new(),
            warmup_errors: 0,
            warmup_records: 0,
            series: Vec::new(),
            duration_s: 0.0,
            acknowledged_all: 0,
        }
    }

    /// Records per second over the measured time.
    pub fn records_per_s(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.records as f64 / self.duration_s
        } else {
            0.0
        }
    }

    /// MB (10^6 bytes) per second over the measured time.
    pub fn mb_per_s(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.bytes as f64 / crate::units::MB / self.duration_s
        } else {
            0.0
        }
    }
}

/// Merges the threads' intervals on the main thread.
pub struct Collector {
    threads: usize,
    warmup_ns: u64,
    /// Intervals not yet reported by every live thread.
    pending: BTreeMap<i64, Interval>,
    /// The last interval each thread reported (threads report them in
    /// order, so it has reported every earlier one).
    last_reported: Vec<Option<i64>>,
    /// Which threads have finished (they report nothing more).
    finished: Vec<bool>,
    done: usize,
    ends: Vec<ThreadEnd>,
    last_completion_ns: Option<u64>,
    totals: Totals,
}

/// What [`Collector::accept`] produced.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// Nothing new to show.
    Nothing,
    /// Interval lines to print, in order.
    Lines(Vec<String>),
}

impl Collector {
    /// A collector for `threads` threads and a warm-up of `warmup_ns`.
    pub fn new(threads: usize, warmup_ns: u64) -> Collector {
        assert!(threads >= 1);
        Collector {
            threads,
            warmup_ns,
            pending: BTreeMap::new(),
            last_reported: vec![None; threads],
            finished: vec![false; threads],
            done: 0,
            ends: Vec::with_capacity(threads),
            last_completion_ns: None,
            totals: Totals::new(),
        }
    }

    /// Whether every thread has finished.
    pub fn all_done(&self) -> bool {
        self.done == self.threads
    }

    /// Takes one message; returns the progress lines of intervals it
    /// completed.
    pub fn accept(&mut self, message: Message) -> Progress {
        match message {
            Message::Interval(interval) => {
                let interval = *interval;
                if let Some(t) = interval.last_completion_ns {
                    self.last_completion_ns = Some(self.last_completion_ns.map_or(t, |l| l.max(t)));
                }
                let last = &mut self.last_reported[interval.thread];
                assert!(
                    last.is_none_or(|l| l < interval.index),
                    "thread {} reported interval {} after {last:?}",
                    interval.thread,
                    interval.index
                );
                *last = Some(interval.index);
                match self.pending.get_mut(&interval.index) {
                    Some(merged) => merge(merged, &interval),
                    None => {
                        self.pending.insert(interval.index, interval);
                    }
                }
            }
            Message::Done(end) => {
                assert!(
                    !self.finished[end.thread],
                    "thread {} done twice",
                    end.thread
                );
                self.finished[end.thread] = true;
                self.done += 1;
                self.ends.push(end);
            }
        }
        self.release(false)
    }

    /// Intervals every live thread has reported, oldest first. With
    /// `all`, every pending interval (the end of the run).
    fn release(&mut self, all: bool) -> Progress {
        let mut lines = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let index = *entry.key();
            let complete = (0..self.threads)
                .all(|t| self.finished[t] || self.last_reported[t].is_some_and(|l| l >= index));
            if !all && !complete {
                break;
            }
            let interval = entry.remove();
            lines.push(self.fold(interval));
        }
        if lines.is_empty() {
            Progress::Nothing
        } else {
            Progress::Lines(lines)
        }
    }

    fn fold(&mut self, interval: Interval) -> String {
        let totals = &mut self.totals;
        for (kind, count) in &interval.error_kinds {
            add_kind(&mut totals.error_kinds, kind, *count);
        }
        let p99_us = if interval.latency.is_empty() {
            0
        } else {
            interval.latency.value_at_quantile(0.99)
        };
        if interval.index < 0 {
            totals.warmup_errors += interval.errors;
            totals.warmup_records += interval.records;
            return format!(
                "[warmup {:>3}s] {:>12} rec/s {:>9.1} MB/s  p99 {:>9.3} ms  errors {}",
                interval.index,
                crate::units::thousands(interval.records),
                interval.bytes as f64 / crate::units::MB,
                us_to_ms(p99_us),
                interval.errors
            );
        }
        totals.records += interval.records;
        totals.bytes += interval.bytes;
        totals.errors += interval.errors;
        totals
            .latency
            .add(&interval.latency)
            .expect("histograms share bounds");
        totals
            .secondary
            .add(&interval.secondary)
            .expect("histograms share bounds");
        totals.series.push(SeriesPoint {
            t_s: (interval.index + 1) as f64,
            records: interval.records,
            bytes: interval.bytes,
            errors: interval.errors,
            p99_ms: us_to_ms(p99_us),
        });
        let run_p99 = if totals.latency.is_empty() {
            0
        } else {
            totals.latency.value_at_quantile(0.99)
        };
        format!(
            "[{:>10}s] {:>12} rec/s {:>9.1} MB/s  p99 {:>9.3} ms (run {:.3} ms)  errors {}",
            interval.index + 1,
            crate::units::thousands(interval.records),
            interval.bytes as f64 / crate::units::MB,
            us_to_ms(p99_us),
            us_to_ms(run_p99),
            totals.errors
        )
    }

    /// The totals once every thread is done (or the run is abandoned):
    /// folds what is still pending and fixes the measured duration.
    pub fn finish(mut self) -> (Totals, Vec<String>) {
        let lines = match self.release(true) {
            Progress::Nothing => Vec::new(),
            Progress::Lines(lines) => lines,
        };
        let generation_end = self.ends.iter().map(|e| e.generation_end_ns).max();
        let end_ns = match (self.last_completion_ns, generation_end) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(self.warmup_ns),
        };
        let mut totals = self.totals;
        totals.duration_s = end_ns.saturating_sub(self.warmup_ns) as f64 / 1e9;
        // Intervals that started after the measured end (a thread closing
        // its last, empty interval) are not part of the run.
        let duration_s = totals.duration_s;
        totals.series.retain(|p| p.t_s - 1.0 < duration_s);
        totals.acknowledged_all = self.ends.iter().map(|e| e.acknowledged_all).sum();
        (totals, lines)
    }
}

/// Counts `count` errors of `kind` in `kinds`, which keeps at most
/// [`ERROR_KINDS_MAX`] named kinds plus [`OTHER_ERRORS`].
fn add_kind<M: KindMap>(kinds: &mut M, kind: &str, count: u64) {
    let named = kinds.len() - usize::from(kinds.has(OTHER_ERRORS));
    let key = if kinds.has(kind) || kind == OTHER_ERRORS || named < ERROR_KINDS_MAX {
        kind
    } else {
        OTHER_ERRORS
    };
    kinds.add(key, count);
}

/// The two maps error kinds are kept in.
trait KindMap {
    fn len(&self) -> usize;
    fn has(&self, kind: &str) -> bool;
    fn add(&mut self, kind: &str, count: u64);
}

impl KindMap for HashMap<String, u64> {
    fn len(&self) -> usize {
        HashMap::len(self)
    }
    fn has(&self, kind: &str) -> bool {
        self.contains_key(kind)
    }
    fn add(&mut self, kind: &str, count: u64) {
        *self.entry(kind.to_string()).or_default() += count;
    }
}

impl KindMap for BTreeMap<String, u64> {
    fn len(&self) -> usize {
        BTreeMap::len(self)
    }
    fn has(&self, kind: &str) -> bool {
        self.contains_key(kind)
    }
    fn add(&mut self, kind: &str, count: u64) {
        *self.entry(kind.to_string()).or_default() += count;
    }
}

fn merge(into: &mut Interval, from: &Interval) {
    into.records += from.records;
    into.bytes += from.bytes;
    into.errors += from.errors;
    into.latency
        .add(&from.latency)
        .expect("histograms share bounds");
    into.secondary
        .add(&from.secondary)
        .expect("histograms share bounds");
    for (kind, count) in &from.error_kinds {
        into.add_errors(kind, *count);
    }
    into.last_completion_ns = match (into.last_completion_ns, from.last_completion_ns) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const S: u64 = 1_000_000_000;

    fn drain(rx: &mpsc::Receiver<Message>, collector: &mut Collector) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(message) = rx.try_recv() {
            if let Progress::Lines(more) = collector.accept(message) {
                lines.extend(more);
            }
        }
        lines
    }

    #[test]
    fn intervals_are_indexed_from_the_end_of_the_warmup() {
        let (tx, _rx) = mpsc::channel();
        let r = Recorder::new(0, Instant::now(), 2 * S, tx);
        assert_eq!(r.index_of(0), -2);
        assert_eq!(r.index_of(2 * S - 1), -1);
        assert_eq!(r.index_of(2 * S), 0);
        assert_eq!(r.index_of(3 * S + 5), 1);
    }

    #[test]
    fn two_threads_merge_per_interval_and_warmup_is_excluded() {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        let mut a = Recorder::new(0, start, S, tx.clone());
        let mut b = Recorder::new(1, start, S, tx);
        let mut collector = Collector::new(2, S);
        // Warm-up: counted apart.
        a.completed(S / 2, 10, 1000, [5_000_000; 10]);
        // Second 0 after warm-up.
        a.completed(S + 1, 100, 10_000, [1_000_000; 100]);
        b.completed(S + 2, 100, 10_000, [3_000_000; 100]);
        b.failed(S + 3, 4, "REQUEST_TIMED_OUT (7)");
        // Second 1: only thread b has data; a closes it empty.
        b.completed(2 * S + 10, 50, 5_000, [2_000_000; 50]);
        a.roll(3 * S);
        b.roll(3 * S);
        let lines = drain(&rx, &mut collector);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("warmup"), "{lines:?}");
        assert!(lines[1].contains("200 rec/s"), "{lines:?}");
        a.finish(3 * S);
        b.finish(3 * S);
        drain(&rx, &mut collector);
        assert!(collector.all_done());
        let (totals, _) = collector.finish();
        assert_eq!(totals.records, 250);
        assert_eq!(totals.bytes, 25_000);
        assert_eq!(totals.errors, 4);
        assert_eq!(totals.warmup_records, 10);
        assert_eq!(totals.acknowledged_all, 260);
        assert_eq!(totals.latency.len(), 250);
        assert_eq!(
            totals.latency.max(),
            totals.latency.highest_equivalent(3_000)
        );
        assert_eq!(totals.error_kinds["REQUEST_TIMED_OUT (7)"], 4);
        assert!(
            (totals.duration_s - 2.0).abs() < 1e-9,
            "{}",
            totals.duration_s
        );
        assert_eq!(totals.series.len(), 2);
        assert_eq!(totals.series[0].records, 200);
        assert!((totals.series[0].p99_ms - 3.0).abs() < 0.01);
        assert!((totals.records_per_s() - 125.0).abs() < 1e-6);
    }

    #[test]
    fn a_finished_thread_does_not_hold_back_the_others() {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        let mut a = Recorder::new(0, start, 0, tx.clone());
        let mut b = Recorder::new(1, start, 0, tx);
        let mut collector = Collector::new(2, 0);
        a.finish(0);
        b.completed(S / 2, 1, 1, [1_000]);
        b.roll(2 * S + 1);
        let lines = drain(&rx, &mut collector);
        assert_eq!(lines.len(), 2, "{lines:?}");
    }

    #[test]
    fn error_kinds_are_bounded() {
        let (tx, rx) = mpsc::channel();
        let mut r = Recorder::new(0, Instant::now(), 0, tx);
        for i in 0..(ERROR_KINDS_MAX + 10) {
            r.failed(1, 1, &format!("error {i}"));
        }
        r.finish(1);
        let mut collector = Collector::new(1, 0);
        drain(&rx, &mut collector);
        let (totals, _) = collector.finish();
        assert_eq!(totals.errors, (ERROR_KINDS_MAX + 10) as u64);
        assert_eq!(totals.error_kinds.len(), ERROR_KINDS_MAX + 1);
        assert_eq!(totals.error_kinds[OTHER_ERRORS], 10);
    }

    #[test]
    fn latencies_round_to_microseconds() {
        assert_eq!(ns_to_us(0), 1);
        assert_eq!(ns_to_us(999), 1);
        assert_eq!(ns_to_us(1_500), 1);
        assert_eq!(ns_to_us(2_000_000), 2_000);
        assert!((us_to_ms(1_500) - 1.5).abs() < 1e-12);
    }
}
