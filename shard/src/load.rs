//! Load over the last seconds: bytes per second of each partition, and
//! the fraction of time each shard's reactor was busy.
//!
//! Layer: foundation (see the crate docs).
//!
//! Why per-second buckets over a fixed window and not an exponential
//! average: `ringlog shard list` says "MB/s over the last 10 s", and a
//! rebalance compares shards by exactly that; a bucketed window gives the
//! number the operator reads, forgets a burst after the window, and costs
//! one add on the data path.

use std::sync::OnceLock;
use std::time::Instant;

/// Seconds the load figures cover.
pub const LOAD_WINDOW_S: u64 = 10;
/// One bucket per second of the window, plus the second now filling.
const BUCKETS: usize = LOAD_WINDOW_S as usize + 1;
const _: () = assert!(LOAD_WINDOW_S >= 1);

/// Whole seconds since the first call in this process: a monotonic clock
/// for load windows (wall-clock steps must not empty or double a window).
pub fn now_s() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs()
}

/// A count per second over the last [`LOAD_WINDOW_S`] whole seconds.
#[derive(Clone, Debug, Default)]
pub struct RateWindow {
    /// `buckets[s % BUCKETS]` counts second `s`, for the seconds in
    /// `newest_s - LOAD_WINDOW_S ..= newest_s`.
    buckets: [u64; BUCKETS],
    /// The second the newest bucket counts.
    newest_s: u64,
}

impl RateWindow {
    /// Counts `n` in second `now_s`. A `now_s` older than the newest
    /// second seen counts in the newest (the clock is monotonic; callers
    /// on one thread only race by a second).
    pub fn add(&mut self, now_s: u64, n: u64) {
        self.advance(now_s);
        let slot = (self.newest_s % BUCKETS as u64) as usize;
        self.buckets[slot] = self.buckets[slot].saturating_add(n);
    }

    /// The mean per second over the [`LOAD_WINDOW_S`] whole seconds before
    /// `now_s` (the second now filling is left out: it is partial).
    pub fn per_second(&self, now_s: u64) -> f64 {
        let total: u64 = (now_s.saturating_sub(LOAD_WINDOW_S)..now_s)
            .filter(|s| *s <= self.newest_s && s + LOAD_WINDOW_S >= self.newest_s)
            .map(|s| self.buckets[(s % BUCKETS as u64) as usize])
            .fold(0u64, u64::saturating_add);
        total as f64 / LOAD_WINDOW_S as f64
    }

    /// Clears the buckets of the seconds between the newest one and
    /// `now_s`, and makes `now_s` the newest.
    fn advance(&mut self, now_s: u64) {
        if now_s <= self.newest_s {
            return;
        }
        // Bounded by BUCKETS: past that every bucket is stale anyway.
        let stale = (now_s - self.newest_s).min(BUCKETS as u64);
        for s in now_s + 1 - stale..=now_s {
            self.buckets[(s % BUCKETS as u64) as usize] = 0;
        }
        self.newest_s = now_s;
    }
}

/// A partition's traffic.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    /// Bytes appended.
    pub produced: RateWindow,
    /// Bytes returned to fetches.
    pub fetched: RateWindow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_reads_back_once_the_window_is_full() {
        let mut window = RateWindow::default();
        for s in 100..120 {
            window.add(s, 1_000);
        }
        // Seconds 110..=119 are the ten whole seconds before 120.
        assert_eq!(window.per_second(120), 1_000.0);
        // The second now filling is left out.
        window.add(120, 1_000_000);
        assert_eq!(window.per_second(120), 1_000.0);
    }

    #[test]
    fn a_burst_is_forgotten_after_the_window() {
        let mut window = RateWindow::default();
        window.add(5, 10_000);
        assert_eq!(window.per_second(6), 1_000.0);
        assert_eq!(window.per_second(5 + LOAD_WINDOW_S), 1_000.0);
        assert_eq!(window.per_second(6 + LOAD_WINDOW_S), 0.0);
        // An add long after clears every stale bucket.
        window.add(1_000, 7);
        assert_eq!(window.per_second(1_001), 0.7);
    }

    #[test]
    fn buckets_reused_after_a_gap_do_not_carry_old_counts() {
        let mut window = RateWindow::default();
        for s in 0..=LOAD_WINDOW_S {
            window.add(s, 1);
        }
        // Three seconds without traffic, then one add: the buckets of the
        // silent seconds are zero, not what they held a window ago.
        window.add(LOAD_WINDOW_S + 4, 1);
        let expected = (LOAD_WINDOW_S - 3) as f64 / LOAD_WINDOW_S as f64;
        assert_eq!(window.per_second(LOAD_WINDOW_S + 5), expected);
    }

    #[test]
    fn an_older_second_counts_in_the_newest() {
        let mut window = RateWindow::default();
        window.add(10, 5);
        window.add(9, 5);
        assert_eq!(window.per_second(11), 1.0);
    }
}
