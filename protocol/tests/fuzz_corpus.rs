//! The protocol fuzz targets' corpora, replayed on stable.
//!
//! `protocol/fuzz` runs [`request_decoder`] and [`record_batch_view`] under
//! cargo-fuzz on nightly (see `ci/fuzz.sh`). This test runs the same checks
//! over every committed input (`protocol/fuzz/corpus/<target>/` and
//! `protocol/fuzz/regressions/<target>/`), so the corpora and every fixed
//! finding are exercised by `cargo test` wherever CI runs, with or without a
//! nightly toolchain. A counting allocator stands in for libFuzzer's
//! `-malloc_limit_mb`: no single allocation may exceed
//! [`ALLOCATION_BYTES_MAX`].
//!
//! The seeds are real requests, one per supported API and version, encoded
//! by `kafka-protocol`'s client encoders, and real record batches. To
//! rewrite the committed seeds after adding an API or version:
//!
//! ```sh
//! cargo test -p ringlog-protocol --test fuzz_corpus -- --ignored write_seed_corpus
//! ```

mod common;

use kafka_protocol::messages::ApiKey;
use ringlog_engine::batch::{build_batch, build_producer_batch};
use ringlog_engine::fuzzing::{replay_corpus, WatchedAllocator};
use ringlog_protocol::fuzzing::{record_batch_view, request_decoder, steered_request_input};
use ringlog_protocol::request::parse_request;
use ringlog_protocol::versions::SUPPORTED_APIS;
use std::path::{Path, PathBuf};

#[global_allocator]
static ALLOCATOR: WatchedAllocator = WatchedAllocator;

/// Runs `check` on every committed input of `target`; returns how many.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    replay_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"),
        target,
        check,
    )
}

#[test]
fn request_decoder_corpus() {
    let replayed = replay("request_decoder", request_decoder);
    assert!(replayed >= request_seeds().len(), "{replayed} inputs");
}

#[test]
fn record_batch_view_corpus() {
    let replayed = replay("record_batch_view", record_batch_view);
    assert!(replayed >= batch_seeds().len(), "{replayed} inputs");
}

/// The committed seeds are exactly what the seed builders make now.
#[test]
fn committed_seeds_are_current() {
    for (target, seeds) in [
        ("request_decoder", request_seeds()),
        ("record_batch_view", batch_seeds()),
    ] {
        for (name, input) in seeds {
            let path = seed_path(target, &name);
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; rewrite the seeds (see the module docs)",
                    path.display()
                )
            });
            assert!(committed == input, "{} is stale", path.display());
        }
    }
}

/// Writes the seeds into `protocol/fuzz/corpus/<target>/seed-<name>`.
#[test]
#[ignore = "rewrites the committed seed corpus"]
fn write_seed_corpus() {
    for (target, seeds) in [
        ("request_decoder", request_seeds()),
        ("record_batch_view", batch_seeds()),
    ] {
        for (name, input) in seeds {
            let path = seed_path(target, &name);
            std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
            std::fs::write(&path, input).expect("write seed");
        }
    }
}

fn seed_path(target: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
        .join(format!("seed-{name}"))
}

/// (name, input): every supported API at every supported version as a
/// steered input, and two whole requests as a raw stream.
fn request_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for entry in SUPPORTED_APIS {
        for version in entry.min..=entry.max {
            let body = common::body(entry.key, version);
            let frame = common::encode_request(entry.key, version, 7, Some("fuzz"), &body);
            assert!(
                parse_request(frame.clone()).is_ok(),
                "{:?} v{version}",
                entry.key
            );
            seeds.push((
                format!("{:?}-v{version}", entry.key).to_lowercase(),
                steered_request_input(&frame),
            ));
        }
    }
    let mut stream = vec![0x80];
    for key in [ApiKey::ApiVersions, ApiKey::Metadata] {
        let body = common::body(key, 3);
        stream.extend_from_slice(&common::wire_request(key, 3, 1, Some("fuzz"), &body));
    }
    seeds.push(("raw-stream".into(), stream));
    seeds
}

/// (name, input): real batches, alone and concatenated, plain and from an
/// idempotent producer, intact and with a damaged CRC for the reseal flag.
fn batch_seeds() -> Vec<(String, Vec<u8>)> {
    let one = build_batch(1_700_000_000_000, &[b"value".as_slice()]);
    let many = build_batch(
        1_700_000_000_000,
        &[b"a".as_slice(), b"".as_slice(), b"ccc".as_slice()],
    );
    let producer = build_producer_batch(1_700_000_000_000, &[b"p".as_slice(); 2], 42, 3, 100);
    let mut damaged = one.clone();
    damaged[17] ^= 0xff;
    let seed = |flags: u8, parts: &[&[u8]]| {
        let mut input = vec![flags];
        for part in parts {
            input.extend_from_slice(part);
        }
        input
    };
    vec![
        ("one".into(), seed(0, &[&one])),
        ("many-records".into(), seed(0, &[&many])),
        ("producer".into(), seed(0, &[&producer])),
        ("three-batches".into(), seed(0, &[&one, &producer, &many])),
        ("damaged-crc-resealed".into(), seed(1, &[&damaged, &one])),
    ]
}
