//! Typed failures. Corruption is its own variant so callers (recovery,
//! `ringlog inspect`, later the Kafka error mapping) can tell "the disk
//! holds bad bytes" from "the disk failed" and from "the caller sent bad
//! input".

use crate::batch::BatchError;
use crate::records::RecordsError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// What exactly is wrong with bytes read from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The file does not start with the expected magic bytes.
    BadMagic,
    /// A format version this build cannot read.
    BadVersion(u16),
    /// A file header whose crc32c does not match.
    BadHeaderCrc,
    /// A frame whose crc32c does not match its contents.
    BadFrameCrc,
    /// A frame whose length runs past the end of the file.
    LengthPastEnd,
    /// A frame header with impossible fields (named).
    Malformed(&'static str),
    /// A frame whose base offset does not continue the previous one.
    OffsetGap {
        /// The offset the previous frame ends at.
        expected: u64,
        /// The base offset found.
        found: u64,
    },
    /// An unreadable rkyv payload (meta log event or snapshot).
    BadPayload,
    /// A stored RecordBatch whose header or records do not decode (the
    /// frame is intact: the batch was stored as produced, undecoded).
    BadBatch(RecordsError),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::BadMagic => write!(f, "bad magic"),
            Corruption::BadVersion(v) => write!(f, "unsupported format version {v}"),
            Corruption::BadHeaderCrc => write!(f, "header crc32c mismatch"),
            Corruption::BadFrameCrc => write!(f, "frame crc32c mismatch"),
            Corruption::LengthPastEnd => write!(f, "frame length runs past end of file"),
            Corruption::Malformed(what) => write!(f, "malformed frame: {what}"),
            Corruption::OffsetGap { expected, found } => {
                write!(
                    f,
                    "offset gap: expected base offset {expected}, found {found}"
                )
            }
            Corruption::BadPayload => write!(f, "payload fails validation"),
            Corruption::BadBatch(e) => write!(f, "stored record batch: {e}"),
        }
    }
}

/// Every failure the engine reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system or device failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Bytes on disk fail validation; nothing was repaired.
    #[error("corrupt {path} at byte {offset}: {corruption}")]
    Corrupt {
        /// The corrupt file.
        path: PathBuf,
        /// Byte offset of the first bad byte range (a frame or header start).
        offset: u64,
        /// What is wrong.
        corruption: Corruption,
    },
    /// The caller's record batch is invalid; nothing was written.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The payload exceeds the configured maximum.
    #[error("record batch of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge {
        /// Payload size.
        len_bytes: usize,
        /// Configured limit.
        max_bytes: usize,
    },
    /// An earlier write or fdatasync failed, so what is on disk is unknown;
    /// the log refuses further work until it is reopened (and recovered).
    #[error("log {path} stopped after an earlier I/O failure; reopen it to recover")]
    Poisoned {
        /// The log directory.
        path: PathBuf,
    },
    /// An internal invariant broke at run time: a bug in ringlog, not bad
    /// input and not a failed disk. The log that found it stops (later
    /// calls answer [`Error::Poisoned`]); the process and every other log
    /// go on.
    #[error("internal invariant broken in {path}: {what}")]
    Invariant {
        /// The log directory.
        path: PathBuf,
        /// What broke.
        what: String,
    },
    /// An append would end past [`crate::format::OFFSET_MAX`], the largest
    /// offset Kafka's `i64` offsets hold; nothing was written. A log never
    /// gets there by appends in practice, but recovery accepts a log that
    /// ends anywhere up to that offset.
    #[error("log {path} has no offsets left: {count} offsets from {next_offset} pass the largest offset")]
    OffsetsExhausted {
        /// The log directory.
        path: PathBuf,
        /// The offset the append would have started at.
        next_offset: u64,
        /// Offsets the append covers.
        count: u32,
    },
    /// The requested offset is outside `[log start, log end)`.
    #[error("offset {offset} out of range [{start}, {end})")]
    OffsetOutOfRange {
        /// Requested offset.
        offset: u64,
        /// Log start offset.
        start: u64,
        /// Log end offset.
        end: u64,
    },
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A metadata event conflicts with the current state.
    #[error("rejected metadata change: {0}")]
    Rejected(String),
    /// An archive object is corrupt, or a segment cannot be archived; names
    /// the object (its key) and what is wrong where.
    #[error("archive {object}: {error}")]
    Archive {
        /// The object's key.
        object: String,
        /// What is wrong.
        error: crate::archive::ArchiveError,
    },
    /// The log is not served here: its partition moved to another shard
    /// (or is moving). Kafka clients answered this way refresh their
    /// metadata and retry, as after a leader change.
    #[error("{0}")]
    NotOwned(String),
}

/// Engine result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, corruption: Corruption) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            corruption,
        }
    }
}
