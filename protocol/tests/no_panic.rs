//! Whatever bytes arrive, the frame reader and `parse_request` return an
//! error instead of panicking.

mod common;

use bytes::{Bytes, BytesMut};
use ringlog_engine::io::mem::SplitMix;
use ringlog_protocol::frame::next_frame;
use ringlog_protocol::request::{parse_request, RequestError};
use ringlog_protocol::versions::SUPPORTED_APIS;

#[test]
fn random_frames_never_panic() {
    let mut rng = SplitMix(0x5eed_0001);
    for case in 0..20_000 {
        let len = (rng.next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let result = parse_request(Bytes::from(bytes));
        if len < 8 {
            assert!(
                matches!(result, Err(RequestError::Truncated { .. })),
                "case {case}"
            );
        }
    }
}

#[test]
fn random_bytes_through_the_frame_reader_never_panic() {
    let mut rng = SplitMix(0x5eed_0002);
    for _ in 0..2_000 {
        let mut buf = BytesMut::new();
        for _ in 0..(rng.next() % 8) {
            let chunk = (rng.next() % 64) as usize;
            buf.extend((0..chunk).map(|_| rng.next() as u8));
            match next_frame(&mut buf, 256) {
                Ok(Some(frame)) => {
                    let _ = parse_request(frame);
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}

#[test]
fn every_truncation_of_every_valid_request_is_an_error() {
    for (key, version, _, frame) in common::all_requests() {
        for cut in 0..frame.len() {
            let result = parse_request(frame.slice(..cut));
            assert!(result.is_err(), "{key:?} v{version} cut at {cut} parsed");
        }
    }
}

/// A supported key and version with a random body: this is what exercises
/// the body decoders (random frames almost never name a supported API).
///
/// Ignored because it ABORTS the process today, in `kafka-protocol` 0.18
/// itself: `Array::decode` / `CompactArray::decode` call
/// `Vec::with_capacity(count)` with the count read off the wire, before
/// checking it against the bytes left. A ~20-byte AlterConfigs request
/// asked for 188 GB; the allocation fails and Rust aborts (not a panic, so
/// nothing can catch it). Upstream: kafka-protocol-rs PRs #152, #161, #200
/// (bound the count by the remaining bytes). Run it with `--ignored` once
/// the dependency carries that fix; until then it is the reproducer.
#[test]
#[ignore = "aborts: kafka-protocol 0.18 pre-allocates arrays from untrusted counts"]
fn random_bodies_behind_valid_headers_never_panic() {
    let mut rng = SplitMix(0x5eed_0003);
    for _ in 0..20_000 {
        let entry = &SUPPORTED_APIS[rng.below(SUPPORTED_APIS.len() as u64) as usize];
        let version = entry.min + rng.below((entry.max - entry.min + 1) as u64) as i16;
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&(entry.key as i16).to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        if entry.key.request_header_version(version) >= 2 {
            frame.extend_from_slice(&[0]); // no header tags
        }
        let len = rng.below(64) as usize;
        frame.extend((0..len).map(|_| rng.next() as u8));
        let _ = parse_request(frame.freeze());
    }
}
