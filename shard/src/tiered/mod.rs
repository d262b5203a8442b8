//! Tiered storage's object-store layer: where archives of sealed
//! segments go ([`ArchiveTarget`]: off, a local directory, S3) and the
//! per-shard store thread every other part of tiering calls
//! ([`StoreHandle`]: put, ranged get, size, delete, list).
//!
//! Layer: foundation (see the crate docs). It imports nothing of this
//! crate: the archive format (the engine crate) and the shard's uploader
//! and read path build on it.
//!
//! Start-up: [`ArchiveTarget::parse`] the `--archive` and `--s3-endpoint`
//! values, [`check`] the target once (blocking: the bucket exists, the
//! credentials are accepted, the directory is writable), then
//! [`start_store`] one store thread per shard.

mod cache;
mod store;
mod target;

pub use cache::{CacheSettings, CHUNK_BYTES};
pub use store::{
    check, start_store, start_store_with_cache, StoreError, StoreHandle, StoreStats,
    LIST_ENTRIES_MAX, PUT_PARTS_MAX, PUT_PART_BYTES, PUT_SINGLE_BYTES_MAX, STORE_ATTEMPTS_MAX,
    STORE_BACKOFF_FIRST_MS, STORE_BACKOFF_MAX_MS, STORE_CONNECT_TIMEOUT_S, STORE_OPS_IN_FLIGHT_MAX,
    STORE_REQUESTS_QUEUED_MAX, STORE_REQUEST_TIMEOUT_S,
};
pub use target::{ArchiveTarget, ARCHIVE_DIR_DEFAULT};

#[cfg(test)]
mod tests;
