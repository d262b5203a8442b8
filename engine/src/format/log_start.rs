//! The log start checkpoint: one small file per log that records where
//! Kafka DeleteRecords moved the log start.
//!
//! ## Log start checkpoint `log-start-offset`
//!
//! ```text
//! 32 bytes, the whole file:
//!   0  8  magic "RINGLLSO"
//!   8  2  format version (1)
//!  10  6  zero
//!  16  8  log start offset
//!  24  4  zero
//!  28  4  crc32c of bytes 0..28
//! ```
//!
//! Written by Kafka DeleteRecords ([`crate::Log::delete_records_below`]),
//! which moves the log start to an arbitrary offset, usually inside a
//! segment; segment files alone can only say "starts at my base offset".
//! Replaced atomically (temp file, fdatasync, rename, directory sync), so a
//! crash leaves the old or the new file, never a torn one — a torn or
//! damaged file is therefore corruption, not a crash artefact. On open the
//! log start is the larger of the checkpoint and the first segment's base;
//! a checkpoint above the log end (data that was never durable is gone) is
//! clamped to the end and rewritten. A missing file means the log starts at
//! its first segment.

use super::{le_u16, le_u32, le_u64, put};
use crate::error::Corruption;

/// Log start checkpoint magic.
pub const LOG_START_MAGIC: [u8; 8] = *b"RINGLLSO";
/// The only log start checkpoint version this build writes and reads.
pub const LOG_START_VERSION: u16 = 1;
/// Bytes in a log start checkpoint file (the whole file).
pub const LOG_START_BYTES: usize = 32;
/// Name of the log start checkpoint inside a log directory. Not a segment
/// name (those are 20 digits), so segment listings skip it.
pub const LOG_START_FILE_NAME: &str = "log-start-offset";
/// Log start checkpoint: version, u16.
pub const LOG_START_VERSION_AT: usize = 8;
/// Log start checkpoint: log start offset, u64.
pub const LOG_START_OFFSET_AT: usize = 16;
/// Log start checkpoint: crc32c of the bytes before it, u32
/// ([`log_start_crc`]).
pub const LOG_START_CRC_AT: usize = 28;

// The crc is the layout's last field.
const _: () = assert!(LOG_START_CRC_AT + 4 == LOG_START_BYTES);

/// The crc32c a log start checkpoint stores at [`LOG_START_CRC_AT`]: of
/// every byte before it.
pub fn log_start_crc(checkpoint: &[u8]) -> u32 {
    crc32c::crc32c(&checkpoint[..LOG_START_CRC_AT])
}

/// Encodes a complete log start checkpoint file.
pub fn encode_log_start(log_start_offset: u64) -> [u8; LOG_START_BYTES] {
    let mut out = [0u8; LOG_START_BYTES];
    out[..LOG_START_MAGIC.len()].copy_from_slice(&LOG_START_MAGIC);
    put(&mut out, LOG_START_VERSION_AT, LOG_START_VERSION);
    put(&mut out, LOG_START_OFFSET_AT, log_start_offset);
    let crc = log_start_crc(&out);
    put(&mut out, LOG_START_CRC_AT, crc);
    out
}

/// Decodes and verifies a whole log start checkpoint file. On failure
/// returns the byte position of the bad range with what is wrong there:
/// magic and crc at 0 (the crc covers bytes 0..28), version at 8, a
/// truncated file at its length (the first missing byte), extra bytes at 32,
/// a reserved byte at its position.
///
/// ```
/// use ringlog_engine::format::{decode_log_start, encode_log_start};
/// use ringlog_engine::Corruption;
/// assert_eq!(decode_log_start(&encode_log_start(42)), Ok(42));
/// assert_eq!(decode_log_start(&[]), Err((0, Corruption::LengthPastEnd)));
/// ```
pub fn decode_log_start(bytes: &[u8]) -> Result<u64, (u64, Corruption)> {
    if bytes.len() < LOG_START_BYTES {
        return Err((bytes.len() as u64, Corruption::LengthPastEnd));
    }
    if bytes[0..8] != LOG_START_MAGIC {
        return Err((0, Corruption::BadMagic));
    }
    let version = le_u16(bytes, LOG_START_VERSION_AT);
    if version != LOG_START_VERSION {
        return Err((LOG_START_VERSION_AT as u64, Corruption::BadVersion(version)));
    }
    if log_start_crc(bytes) != le_u32(bytes, LOG_START_CRC_AT) {
        return Err((0, Corruption::BadHeaderCrc));
    }
    if bytes.len() > LOG_START_BYTES {
        return Err((
            LOG_START_BYTES as u64,
            Corruption::Malformed("bytes after the log start checkpoint"),
        ));
    }
    let mut reserved = (LOG_START_VERSION_AT + 2..LOG_START_OFFSET_AT)
        .chain(LOG_START_OFFSET_AT + 8..LOG_START_CRC_AT);
    if let Some(at) = reserved.find(|&at| bytes[at] != 0) {
        return Err((
            at as u64,
            Corruption::Malformed("reserved log start checkpoint bytes set"),
        ));
    }
    Ok(le_u64(bytes, LOG_START_OFFSET_AT))
}
