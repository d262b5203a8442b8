//! Any Produce `records` blob through the batch splitter and the
//! RecordBatch v2 view; see `ringlog_protocol::fuzzing::record_batch_view`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    ringlog_protocol::fuzzing::record_batch_view(input);
});
