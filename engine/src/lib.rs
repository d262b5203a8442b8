//! # ringlog-engine
//!
//! The storage engine under ringlog: partition logs and the metadata log,
//! written with direct I/O through the owning shard's io_uring, crash-safe
//! by construction and checked by recovery.
//!
//! * [`io`] — the small async I/O trait, with the glommio DMA backend and a
//!   fault-injecting in-memory backend.
//! * [`format`](mod@format) — every on-disk byte layout (magic, version, crc32c).
//! * [`archive`] — the archive of a sealed segment for object storage:
//!   its layout, building one, reading it by ranges, verifying it.
//! * [`log`] — the segmented log: write-behind appends, group commit, rolls,
//!   retention, sparse indexes, reads, recovery.
//! * [`partition`] — a log of Kafka RecordBatch v2 blocks, with its
//!   idempotent producer state.
//! * [`producer`] — idempotent producer sequence rules and their snapshot
//!   file.
//! * [`meta`] — the event-sourced metadata log with snapshots.
//! * [`batch`] — the zero-copy RecordBatch v2 header view.
//! * [`records`] — the records inside a batch, decoded only for
//!   ListOffsets by time and for topic configs that change batches.
//! * [`codec`] — the four Kafka codecs, streaming and bounded.
//! * [`fuzzing`] — the properties the fuzz targets (`engine/fuzz`) check,
//!   shared with the stable test that replays their corpora.
//!
//! Everything here runs on one glommio executor per shard; types are
//! `!Send` on purpose (see ARCHITECTURE.md, "thread-per-core").
#![warn(missing_docs)]

pub mod aligned;
mod appender;
pub mod archive;
pub mod batch;
pub mod clock;
pub mod codec;
pub mod error;
pub mod format;
pub mod fuzzing;
pub mod io;
pub mod log;
pub mod meta;
pub mod partition;
pub mod producer;
pub mod records;

pub use clock::Clock;
pub use error::{Corruption, Error, Result};
pub use log::{FlushPolicy, Log, LogConfig, LogStats, ReadBatches, SegmentInfo};
