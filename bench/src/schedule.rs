//! When each record (or request) is due: the open-loop schedule.
//!
//! Why open loop: a closed-loop generator sends the next message only after
//! the previous one was answered, so when the broker stalls for 200 ms it
//! also stops *asking* for 200 ms, and the histogram holds one slow sample
//! instead of the 200 ms x rate messages a real client would have waited
//! behind the stall ("coordinated omission", Gil Tene). With `--rate`,
//! message `i` of a connection is due at `phase + i / rate`, fixed before
//! the run starts; its latency is measured from that due time, whether or
//! not the generator managed to send it then. A stalled broker therefore
//! shows up in every percentile it really affects.
//!
//! Without `--rate` the bench runs closed loop at the highest rate the
//! broker and the in-flight limits allow (maximum throughput); a message is
//! due when it is created.

/// What the schedule says at a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// A message is due; this is its due time (ns since the run started).
    Now(u64),
    /// Nothing is due before this time (ns since the run started).
    At(u64),
    /// The run has generated everything it will.
    Done,
}

/// The due times of one connection's messages.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Nanoseconds between messages; `None` runs closed loop.
    interval_ns: Option<f64>,
    /// Due time of message 0.
    phase_ns: u64,
    /// Nothing is due at or after this.
    end_ns: Option<u64>,
    /// At most this many messages.
    limit: Option<u64>,
    /// Messages taken so far.
    taken: u64,
}

impl Schedule {
    /// A schedule of `rate_per_s` messages per second (closed loop when
    /// `None`) starting at `phase_ns`, ending before `end_ns` and after
    /// `limit` messages.
    pub fn new(
        rate_per_s: Option<f64>,
        phase_ns: u64,
        end_ns: Option<u64>,
        limit: Option<u64>,
    ) -> Schedule {
        let interval_ns = rate_per_s.map(|rate| {
            assert!(
                rate > 0.0 && rate.is_finite(),
                "rate {rate} must be positive"
            );
            1e9 / rate
        });
        Schedule {
            interval_ns,
            phase_ns,
            end_ns,
            limit,
            taken: 0,
        }
    }

    /// Messages taken so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Whether the schedule is open loop (fixed rate).
    pub fn is_fixed_rate(&self) -> bool {
        self.interval_ns.is_some()
    }

    fn due_ns(&self, index: u64) -> Option<u64> {
        self.interval_ns
            .map(|interval| self.phase_ns + (index as f64 * interval) as u64)
    }

    /// Whether a message is due at `now_ns`, without taking it.
    pub fn peek(&self, now_ns: u64) -> Due {
        if self.limit.is_some_and(|limit| self.taken >= limit) {
            return Due::Done;
        }
        let due = self.due_ns(self.taken).unwrap_or(now_ns.max(self.phase_ns));
        if self.end_ns.is_some_and(|end| due >= end) {
            return Due::Done;
        }
        if due <= now_ns {
            Due::Now(due)
        } else {
            Due::At(due)
        }
    }

    /// Takes the next message if one is due at `now_ns`.
    pub fn take(&mut self, now_ns: u64) -> Due {
        let due = self.peek(now_ns);
        if let Due::Now(_) = due {
            self.taken += 1;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn fixed_rate_messages_are_due_on_a_grid_from_the_phase() {
        let mut s = Schedule::new(Some(1000.0), 5 * MS, None, None);
        assert_eq!(s.take(0), Due::At(5 * MS));
        // At 7.5 ms, messages due at 5, 6 and 7 ms are ready, in order.
        assert_eq!(s.take(7 * MS + MS / 2), Due::Now(5 * MS));
        assert_eq!(s.take(7 * MS + MS / 2), Due::Now(6 * MS));
        assert_eq!(s.take(7 * MS + MS / 2), Due::Now(7 * MS));
        assert_eq!(s.take(7 * MS + MS / 2), Due::At(8 * MS));
        assert_eq!(s.taken(), 3);
        assert!(s.is_fixed_rate());
    }

    #[test]
    fn a_late_generator_keeps_the_original_due_times() {
        // The generator was stalled for a second: every message keeps the
        // time it was due, so the stall is charged to each of them.
        let mut s = Schedule::new(Some(100.0), 0, None, None);
        let late = 1_000 * MS;
        let dues: Vec<Due> = (0..3).map(|_| s.take(late)).collect();
        assert_eq!(dues, [Due::Now(0), Due::Now(10 * MS), Due::Now(20 * MS)]);
    }

    #[test]
    fn limits_and_end_stop_the_schedule() {
        let mut s = Schedule::new(Some(1000.0), 0, None, Some(2));
        assert_eq!(s.take(u64::MAX / 2), Due::Now(0));
        assert_eq!(s.take(u64::MAX / 2), Due::Now(MS));
        assert_eq!(s.take(u64::MAX / 2), Due::Done);
        let mut s = Schedule::new(Some(1000.0), 0, Some(3 * MS), None);
        let taken = (0..10)
            .filter(|_| matches!(s.take(10 * MS), Due::Now(_)))
            .count();
        assert_eq!(taken, 3, "due at 0, 1 and 2 ms; 3 ms is the end");
        assert_eq!(s.peek(10 * MS), Due::Done);
    }

    #[test]
    fn closed_loop_is_due_whenever_asked_until_the_end() {
        let mut s = Schedule::new(None, 0, Some(100), Some(1_000));
        assert!(!s.is_fixed_rate());
        assert_eq!(s.take(10), Due::Now(10));
        assert_eq!(s.take(10), Due::Now(10));
        assert_eq!(s.take(99), Due::Now(99));
        assert_eq!(s.take(100), Due::Done);
        let mut s = Schedule::new(None, 50, None, Some(1));
        assert_eq!(s.take(10), Due::At(50), "not before the phase");
        assert_eq!(s.take(60), Due::Now(60));
        assert_eq!(s.take(60), Due::Done);
    }

    #[test]
    fn long_runs_do_not_drift() {
        // 1 M messages at 333,333.3/s: the last is due at 3 s, not off by
        // accumulated rounding.
        let mut s = Schedule::new(Some(1e6 / 3.0), 0, None, None);
        let mut last = 0;
        for _ in 0..1_000_000 {
            if let Due::Now(due) = s.take(u64::MAX / 2) {
                last = due;
            }
        }
        let expected = 3_000_000_000u64 - 3_000;
        assert!(last.abs_diff(expected) <= 1, "{last} vs {expected}");
    }
}
