//! Wall-clock time for segment age and retention, swappable for a manual
//! clock so tests can age segments without sleeping.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, from the system or from a test.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `SystemTime::now()`.
    #[default]
    System,
    /// A value the test sets.
    Manual(Rc<Cell<i64>>),
}

impl Clock {
    /// A manual clock starting at `start_ms`.
    pub fn manual(start_ms: i64) -> Self {
        Clock::Manual(Rc::new(Cell::new(start_ms)))
    }

    /// Now, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Clock::Manual(cell) => cell.get(),
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance_ms(&self, delta_ms: i64) {
        if let Clock::Manual(cell) = self {
            cell.set(cell.get() + delta_ms);
        }
    }
}
