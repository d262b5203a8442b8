//! Any bytes as the segments and snapshots of the metadata log, replayed
//! twice, snapshotted and appended to; see
//! `ringlog_engine::fuzzing::metadata_log_replay`. Every input runs on one
//! glommio executor per process.
#![no_main]

use ringlog_engine::fuzzing::{block_on, metadata_log_replay};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    block_on(metadata_log_replay(input));
});
