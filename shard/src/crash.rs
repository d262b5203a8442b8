//! Crash points: places where a test can make the broker die as a kill -9
//! would, to prove that a restart from there loses nothing.
//!
//! Layer: foundation (see the crate docs).
//!
//! Why an environment variable in the release binary and not a cargo
//! feature: the crash tests drive the very binary users run, with real
//! Kafka clients, so the points must be in it. Unset (always, outside
//! tests) a point costs one load of a cached `None`. Set
//! `RINGLOG_CRASH_AT=<name>` and the process sends itself SIGKILL (no
//! destructors, no final fdatasync, no core dump: exactly what a kill -9
//! leaves) the first time it reaches the point of that name.

use std::sync::OnceLock;

/// The environment variable naming the point to crash at.
pub const CRASH_AT_ENV: &str = "RINGLOG_CRASH_AT";

/// Kills the process if [`CRASH_AT_ENV`] names `name`.
pub fn point(name: &'static str) {
    static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
    let wanted = CRASH_AT.get_or_init(|| std::env::var(CRASH_AT_ENV).ok());
    if wanted.as_deref() == Some(name) {
        eprintln!("ringlog: crash point {name} reached ({CRASH_AT_ENV}); killing the process");
        // SAFETY: kill(2) on our own pid has no memory effects; SIGKILL
        // cannot be caught, so it does not return.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        unreachable!("SIGKILL is not caught");
    }
}
