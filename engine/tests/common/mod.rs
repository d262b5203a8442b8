//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use glommio::LocalExecutorBuilder;
use ringlog_engine::batch::{build_batch, build_producer_batch};
use ringlog_engine::io::Storage;
use ringlog_engine::partition::PartitionLog;
use std::future::Future;
use std::path::PathBuf;

/// Runs `f` on a fresh glommio executor and returns its output.
pub fn run<T: Send + 'static, F, Fut>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn executor")
        .join()
        .expect("executor thread")
}

/// A fresh directory on the real disk (under target/, never tmpfs) for
/// direct-I/O tests.
pub fn disk_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// A batch of `records` values of `value_bytes` each, tagged with `tag` so
/// every batch is distinguishable.
pub fn batch(tag: u64, records: usize, value_bytes: usize, timestamp_ms: i64) -> Vec<u8> {
    let mut value = vec![b'v'; value_bytes.max(8)];
    value[..8].copy_from_slice(&tag.to_be_bytes());
    let values: Vec<&[u8]> = (0..records).map(|_| value.as_slice()).collect();
    build_batch(timestamp_ms, &values)
}

/// [`batch`] from an idempotent producer: `seq` numbers the first record.
pub fn producer_batch(
    tag: u64,
    records: usize,
    value_bytes: usize,
    timestamp_ms: i64,
    (producer_id, epoch, seq): (i64, i16, i32),
) -> Vec<u8> {
    let mut value = vec![b'v'; value_bytes.max(8)];
    value[..8].copy_from_slice(&tag.to_be_bytes());
    let values: Vec<&[u8]> = (0..records).map(|_| value.as_slice()).collect();
    build_producer_batch(timestamp_ms, &values, producer_id, epoch, seq)
}

/// The tag `batch` wrote into the first value of a stored batch.
pub fn tag_of(batch_bytes: &[u8]) -> u64 {
    // build_batch records: length, attributes (1 byte), timestamp delta,
    // offset delta, key length (-1), value length, value — varints except
    // the attributes. The value starts with the 8-byte tag.
    let mut at = 61;
    let skip_varint = |at: &mut usize| {
        while batch_bytes[*at] & 0x80 != 0 {
            *at += 1;
        }
        *at += 1;
    };
    skip_varint(&mut at); // record length
    at += 1; // attributes
    for _ in 0..4 {
        skip_varint(&mut at); // timestamp delta, offset delta, key length, value length
    }
    u64::from_be_bytes(batch_bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Every frame from the log start to the high watermark, as
/// (base offset, tag).
pub async fn read_all<S: Storage>(log: &PartitionLog<S>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut offset = log.log().log_start_offset();
    while offset < log.log().high_watermark() {
        let batches = log.log().read(offset, 1 << 20).await.expect("read");
        assert!(
            !batches.is_empty(),
            "read at {offset} below the high watermark returned nothing"
        );
        for (frame, payload) in batches.iter() {
            out.push((frame.base_offset, tag_of(payload)));
        }
        offset = batches.next_offset().expect("frames");
    }
    out
}
