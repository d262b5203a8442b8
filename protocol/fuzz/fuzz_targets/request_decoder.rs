//! Any bytes into the request decoder, for every API key and version the
//! broker decodes; see `ringlog_protocol::fuzzing::request_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    ringlog_protocol::fuzzing::request_decoder(input);
});
