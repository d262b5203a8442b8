//! Any bytes as the segment, index, checkpoint and producer snapshot files
//! of a partition log, recovered twice, read back whole and appended to;
//! see `ringlog_engine::fuzzing::segment_recovery`. Every input runs on one
//! glommio executor per process.
#![no_main]

use ringlog_engine::fuzzing::{block_on, segment_recovery};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    block_on(segment_recovery(input));
});
