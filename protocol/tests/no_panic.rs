//! Whatever bytes arrive, the frame reader and `parse_request` return an
//! error instead of panicking.

mod common;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
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
/// Half the bodies are uniform random bytes, half are drawn mostly from
/// bytes that make lengths and counts interesting (0x00, 0xff, 0x7f, 0x01:
/// zero, null / -1, huge, one), so nulls, empty and huge arrays and strings
/// are all common. Until kafka-protocol was vendored with the fix (see
/// `protocol/vendor/kafka-protocol/PATCHES.md`) this aborted the process:
/// its array decoders called `Vec::with_capacity(count)` with the count read
/// off the wire, and a ~20-byte AlterConfigs request asked for 188 GB.
#[test]
fn random_bodies_behind_valid_headers_never_panic() {
    const INTERESTING: [u8; 4] = [0x00, 0xff, 0x7f, 0x01];
    let mut rng = SplitMix(0x5eed_0003);
    let mut bad_bodies = 0;
    for case in 0..50_000 {
        let entry = &SUPPORTED_APIS[rng.below(SUPPORTED_APIS.len() as u64) as usize];
        let version = entry.min + rng.below((entry.max - entry.min + 1) as u64) as i16;
        let mut frame = header(entry.key, version);
        let len = rng.below(96) as usize;
        let biased = case % 2 == 1;
        frame.extend((0..len).map(|_| {
            let byte = rng.next();
            if biased && !byte.is_multiple_of(8) {
                INTERESTING[(byte >> 8) as usize % INTERESTING.len()]
            } else {
                (byte >> 16) as u8
            }
        }));
        match parse_request(frame.freeze()) {
            Ok(request) => {
                assert_eq!((request.api_key, request.api_version), (entry.key, version));
            }
            Err(RequestError::BadBody {
                api_key,
                api_version,
                ..
            }) => {
                assert_eq!((api_key, api_version), (entry.key, version));
                bad_bodies += 1;
            }
            Err(other) => panic!("case {case}: a valid header gave {other:?}"),
        }
    }
    // Most random bodies are invalid; if nearly none are, the generator or
    // the header above is broken and the test exercises nothing.
    assert!(bad_bodies > 25_000, "only {bad_bodies} bad bodies");
}

/// An array claiming about 2^31 (non-flexible i32 count) or 2^32 (flexible
/// varint count) elements in a tiny body, at the top level and nested one
/// level down, for the APIs whose bodies start with arrays of topics. Each
/// must be a body error with the header kept, not an allocation abort.
#[test]
fn huge_claimed_counts_are_errors_not_aborts() {
    let mut cases = 0;
    for (key, nested) in [
        (ApiKey::Produce, true),
        (ApiKey::Fetch, true),
        (ApiKey::Metadata, false),
        (ApiKey::CreateTopics, true),
    ] {
        let entry = SUPPORTED_APIS.iter().find(|e| e.key == key).unwrap();
        for version in entry.min..=entry.max {
            let flexible = key.request_header_version(version) >= 2;
            for count in huge_counts(flexible) {
                for trailing in [0usize, 1, 7] {
                    let mut bodies = vec![[fields_before_topics(key, version), count.clone()]];
                    if nested {
                        // One topic, whose inner array claims the huge count.
                        let mut outer = fields_before_topics(key, version);
                        outer.extend(one_element(flexible));
                        outer.extend(topic_fields_before_inner_array(key, version));
                        bodies.push([outer, count.clone()]);
                    }
                    for [prefix, count] in bodies {
                        let mut frame = header(key, version);
                        frame.extend_from_slice(&prefix);
                        frame.extend_from_slice(&count);
                        frame.extend(std::iter::repeat_n(0x01, trailing));
                        let result = parse_request(frame.freeze());
                        assert!(
                            matches!(
                                &result,
                                Err(RequestError::BadBody { api_key, api_version, header, .. })
                                    if *api_key == key
                                        && *api_version == version
                                        && header.correlation_id == 7
                            ),
                            "{key:?} v{version} count {count:02x?} +{trailing}: {result:?}"
                        );
                        cases += 1;
                    }
                }
            }
        }
    }
    // Versions x counts x 3 trailing lengths x (1 or 2 bodies): Produce 60,
    // Fetch 60, Metadata 51, CreateTopics 54.
    assert_eq!(cases, 225);
}

/// The same claimed counts after every short run of zero and 0xff bytes,
/// for every supported API and version: whatever field the count lands in,
/// decoding returns (Ok or Err) instead of aborting.
#[test]
fn huge_counts_anywhere_in_short_bodies_never_abort() {
    for entry in SUPPORTED_APIS {
        for version in entry.min..=entry.max {
            for count in huge_counts(true).into_iter().chain(huge_counts(false)) {
                for fill in [0x00, 0xff] {
                    for at in 0..40 {
                        let mut frame = header(entry.key, version);
                        frame.extend(std::iter::repeat_n(fill, at));
                        frame.extend_from_slice(&count);
                        let _ = parse_request(frame.freeze());
                    }
                }
            }
        }
    }
}

/// A request header (v1 or v2 as `key` and `version` need) with correlation
/// id 7 and a null client id.
fn header(key: ApiKey, version: i16) -> BytesMut {
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&(key as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    if key.request_header_version(version) >= 2 {
        frame.extend_from_slice(&[0]); // no header tags
    }
    frame
}

/// Encodings of huge array counts: i32::MAX for non-flexible versions; for
/// flexible ones the varints 0xffff_ffff (2^32 - 2 elements, the most a
/// compact array can claim) and 0x8000_0000.
fn huge_counts(flexible: bool) -> Vec<Vec<u8>> {
    if flexible {
        vec![
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![0x80, 0x80, 0x80, 0x80, 0x08],
        ]
    } else {
        vec![i32::MAX.to_be_bytes().to_vec()]
    }
}

/// An array count of one.
fn one_element(flexible: bool) -> Vec<u8> {
    if flexible {
        vec![2]
    } else {
        1i32.to_be_bytes().to_vec()
    }
}

/// The request body fields before its top-level topics array: scalars zero,
/// the nullable transactional id null.
fn fields_before_topics(key: ApiKey, version: i16) -> Vec<u8> {
    let flexible = key.request_header_version(version) >= 2;
    match key {
        // transactional_id, acks (i16), timeout_ms (i32).
        ApiKey::Produce => {
            let mut out = if flexible { vec![0] } else { vec![0xff, 0xff] };
            out.extend([0; 6]);
            out
        }
        // replica_id, max_wait_ms, min_bytes, max_bytes (i32),
        // isolation_level (i8), then session_id and session_epoch (i32)
        // from v7.
        ApiKey::Fetch => vec![0; if version >= 7 { 25 } else { 17 }],
        ApiKey::Metadata | ApiKey::CreateTopics => vec![],
        other => panic!("no layout for {other:?}"),
    }
}

/// The fields of one topic before its first inner array: the empty name,
/// then for CreateTopics num_partitions (i32) and replication_factor (i16).
fn topic_fields_before_inner_array(key: ApiKey, version: i16) -> Vec<u8> {
    let flexible = key.request_header_version(version) >= 2;
    let mut out = if flexible { vec![1] } else { vec![0, 0] };
    if key == ApiKey::CreateTopics {
        out.extend([0; 6]);
    }
    out
}
