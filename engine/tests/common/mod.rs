//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use glommio::LocalExecutorBuilder;
use ringlog_engine::batch::build_batch;
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
