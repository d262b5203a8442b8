//! A panic inside one partition's work stops that partition, not the shard.
//!
//! Layer: foundation (see the crate docs). Imports nothing of the crate.
//!
//! Why: a shard owns many partitions, and glommio ends the executor thread
//! when a task panics, which takes every partition of the core — and the
//! broker — down for a bug that one partition's state hit. So the shard
//! runs each piece of partition work (produce, fetch, offsets, delete,
//! reconfigure, maintenance) through [`catch`], and a caught panic stops
//! only that partition (`Partitions::guarded`).
//!
//! Why a panic hook: the backtrace exists only while the panicking frame
//! is still on the stack, before unwinding starts. The hook, installed
//! once per process by [`install_hook`], records the message, location
//! and backtrace of the panicking thread; [`catch`] hands them to the
//! caller for the ERROR line. The previous hook still runs, so a panic
//! nobody catches is reported as before.

use futures_lite::FutureExt;
use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

/// What a caught panic said.
#[derive(Debug)]
pub struct Caught {
    /// The panic message.
    pub message: String,
    /// `file:line:column` of the panic.
    pub location: String,
    /// The panicking thread's stack at the panic.
    pub backtrace: Backtrace,
}

thread_local! {
    /// The last panic of this thread, set by the hook, taken by [`catch`].
    static LAST_PANIC: RefCell<Option<Caught>> = const { RefCell::new(None) };
}

/// Installs the recording hook (once per process; later calls do nothing).
pub fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = panic_message(info.payload());
            let location = info
                .location()
                .map_or_else(|| "an unknown place".to_string(), ToString::to_string);
            LAST_PANIC.with(|last| {
                *last.borrow_mut() = Some(Caught {
                    message,
                    location,
                    backtrace: Backtrace::force_capture(),
                });
            });
            previous(info);
        }));
    });
}

/// The text a panic was raised with (`panic!` with a literal or a format).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Runs `work`; a panic inside it comes back as [`Caught`] instead of
/// unwinding further. The caller must not use what the work was changing
/// as if nothing happened: its invariants may be broken.
pub async fn catch<F: Future>(work: F) -> Result<F::Output, Caught> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(output) => Ok(output),
        Err(payload) => Err(LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| Caught {
                message: panic_message(&*payload),
                location: "unknown (the panic hook was not installed)".to_string(),
                backtrace: Backtrace::disabled(),
            })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_carries_its_message_location_and_backtrace() {
        install_hook();
        let caught = futures_lite::future::block_on(catch(async {
            let lengths: Vec<u32> = Vec::new();
            assert!(!lengths.is_empty(), "an invariant that broke");
            lengths[0]
        }))
        .unwrap_err();
        assert_eq!(caught.message, "an invariant that broke");
        assert!(caught.location.contains("panics.rs"), "{}", caught.location);
        assert_eq!(
            caught.backtrace.status(),
            std::backtrace::BacktraceStatus::Captured
        );
    }

    #[test]
    fn work_that_does_not_panic_passes_its_output_through() {
        install_hook();
        assert_eq!(
            futures_lite::future::block_on(catch(async { 7 })).unwrap(),
            7
        );
    }
}
