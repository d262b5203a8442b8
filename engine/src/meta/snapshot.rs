//! Snapshot files: the byte layout (pure functions, shared with
//! `ringlog inspect`) and writing one through the [`Storage`] trait.
//! The layout is documented byte by byte in the [module docs](super).

use super::state::MetaState;
use crate::error::Corruption;
use crate::io::{write_file_atomic, Storage};
use std::io;
use std::path::{Path, PathBuf};

/// Snapshot file magic.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RINGLSNP";
/// The only snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u16 = 2;
/// Bytes in a snapshot file header.
pub const SNAPSHOT_HEADER_BYTES: usize = 64;
/// Extension of snapshot files: `<applied offset, 20 digits>.snap`.
pub const SNAPSHOT_EXTENSION: &str = "snap";
/// Suffix of a snapshot being written; such leftovers are deleted on open.
pub(crate) use crate::io::TMP_SUFFIX;

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Serializes `state` into a complete snapshot file image (header and
/// payload). Fails only if the state exceeds what 32-bit relative pointers
/// address (4 GiB).
pub fn encode_snapshot_file(state: &MetaState) -> Result<Vec<u8>, String> {
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(state)
        .map_err(|e| format!("cannot encode snapshot: {e}"))?;
    let mut file = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + payload.len());
    file.extend_from_slice(&SNAPSHOT_MAGIC);
    file.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    file.resize(16, 0);
    file.extend_from_slice(&state.applied_offset().to_le_bytes());
    file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    file.resize(60, 0);
    let header_crc = crc32c::crc32c(&file[..60]);
    file.extend_from_slice(&header_crc.to_le_bytes());
    assert_eq!(file.len(), SNAPSHOT_HEADER_BYTES);
    file.extend_from_slice(&payload);
    Ok(file)
}

/// Decodes and verifies a whole snapshot file: header (magic, version,
/// crc), payload length and crc32c, then validated rkyv access and the
/// state's own invariants. Returns the applied offset and the state.
///
/// A payload whose crc32c does not match is [`Corruption::BadFrameCrc`]
/// (the header frames the payload); a payload that fails rkyv validation
/// is [`Corruption::BadPayload`].
pub fn read_snapshot_file(bytes: &[u8]) -> Result<(u64, MetaState), Corruption> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(Corruption::LengthPastEnd);
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err(Corruption::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != SNAPSHOT_VERSION {
        return Err(Corruption::BadVersion(version));
    }
    if crc32c::crc32c(&bytes[..60]) != le_u32(bytes, 60) {
        return Err(Corruption::BadHeaderCrc);
    }
    if bytes[10..16].iter().chain(&bytes[36..60]).any(|&b| b != 0) {
        return Err(Corruption::Malformed("reserved snapshot header bytes set"));
    }
    let applied_offset = le_u64(bytes, 16);
    let payload_len = le_u64(bytes, 24);
    let available = (bytes.len() - SNAPSHOT_HEADER_BYTES) as u64;
    if payload_len > available {
        return Err(Corruption::LengthPastEnd);
    }
    if payload_len < available {
        return Err(Corruption::Malformed("bytes after the snapshot payload"));
    }
    let payload = &bytes[SNAPSHOT_HEADER_BYTES..];
    if crc32c::crc32c(payload) != le_u32(bytes, 32) {
        return Err(Corruption::BadFrameCrc);
    }
    let archived = rkyv::access::<super::state::ArchivedMetaState, rkyv::rancor::Failure>(payload)
        .map_err(|_| Corruption::BadPayload)?;
    let mut state = rkyv::deserialize::<MetaState, rkyv::rancor::Failure>(archived)
        .map_err(|_| Corruption::BadPayload)?;
    if state.applied_offset() != applied_offset {
        return Err(Corruption::Malformed(
            "snapshot header and payload disagree on the applied offset",
        ));
    }
    state.rebuild_and_check().map_err(Corruption::Malformed)?;
    Ok((applied_offset, state))
}

/// Path of the snapshot at `applied_offset` in `dir`.
pub(crate) fn snapshot_path(dir: &Path, applied_offset: u64) -> PathBuf {
    dir.join(crate::format::segment_file_name(
        applied_offset,
        SNAPSHOT_EXTENSION,
    ))
}

/// Writes a snapshot file image atomically (see
/// [`crate::io::write_file_atomic`]): a crash leaves either the complete
/// file or a `.tmp` leftover that open deletes.
pub(crate) async fn write_snapshot_file<S: Storage>(
    storage: &S,
    dir: &Path,
    applied_offset: u64,
    image: &[u8],
) -> io::Result<PathBuf> {
    let path = snapshot_path(dir, applied_offset);
    write_file_atomic(storage, dir, &path, image).await?;
    Ok(path)
}

pub(crate) use crate::io::read_whole_file;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::event::{
        MetaEvent, OffsetCommit, OffsetsCommitted, PartitionPlaced, TopicConfigChanged,
        TopicCreated,
    };

    fn state() -> MetaState {
        let mut state = MetaState::new();
        let events = [
            MetaEvent::TopicCreated(TopicCreated {
                name: "orders".into(),
                topic_id: [1; 16],
                partitions: 4,
                configs: vec![("retention.ms".into(), "60000".into())],
            }),
            MetaEvent::TopicCreated(TopicCreated {
                name: "logs".into(),
                topic_id: [2; 16],
                partitions: 2,
                configs: vec![],
            }),
            MetaEvent::PartitionPlaced(PartitionPlaced {
                topic: "orders".into(),
                partition: 3,
                shard: 1,
            }),
            MetaEvent::TopicConfigChanged(TopicConfigChanged {
                name: "logs".into(),
                set: vec![("cleanup.policy".into(), "delete".into())],
                remove: vec![],
            }),
            MetaEvent::OffsetsCommitted(OffsetsCommitted {
                group: "billing".into(),
                commit_ms: 1_700_000_000_000,
                offsets: vec![OffsetCommit {
                    topic: "orders".into(),
                    partition: 3,
                    offset: 99,
                    leader_epoch: 0,
                    metadata: "checkpoint".into(),
                }],
            }),
        ];
        for (offset, event) in events.iter().enumerate() {
            state
                .apply_event(offset as u64, event)
                .expect("valid event");
        }
        state
    }

    fn reseal_header(bytes: &mut [u8]) {
        let crc = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn snapshot_round_trips() {
        let state = state();
        let bytes = encode_snapshot_file(&state).expect("encode");
        assert_eq!(&bytes[0..8], b"RINGLSNP");
        assert_eq!(le_u64(&bytes, 16), 5);
        assert_eq!(
            le_u64(&bytes, 24),
            (bytes.len() - SNAPSHOT_HEADER_BYTES) as u64
        );
        let (offset, decoded) = read_snapshot_file(&bytes).expect("valid");
        assert_eq!(offset, 5);
        assert_eq!(decoded, state);
        assert_eq!(decoded.topic_by_id(&[2; 16]).map(|(n, _)| n), Some("logs"));
        let empty = encode_snapshot_file(&MetaState::new()).expect("encode");
        assert_eq!(read_snapshot_file(&empty), Ok((0, MetaState::new())));
    }

    #[test]
    fn snapshot_bad_magic() {
        let mut bytes = encode_snapshot_file(&state()).expect("encode");
        bytes[3] = b'X';
        assert_eq!(read_snapshot_file(&bytes), Err(Corruption::BadMagic));
    }

    #[test]
    fn snapshot_bad_version() {
        let mut bytes = encode_snapshot_file(&state()).expect("encode");
        for version in [SNAPSHOT_VERSION - 1, SNAPSHOT_VERSION + 1] {
            bytes[8..10].copy_from_slice(&version.to_le_bytes());
            reseal_header(&mut bytes);
            assert_eq!(
                read_snapshot_file(&bytes),
                Err(Corruption::BadVersion(version))
            );
        }
    }

    #[test]
    fn snapshot_bad_header_crc() {
        let mut bytes = encode_snapshot_file(&state()).expect("encode");
        bytes[17] ^= 0x01; // applied offset
        assert_eq!(read_snapshot_file(&bytes), Err(Corruption::BadHeaderCrc));
        let mut bytes = encode_snapshot_file(&state()).expect("encode");
        bytes[61] ^= 0x80; // the crc itself
        assert_eq!(read_snapshot_file(&bytes), Err(Corruption::BadHeaderCrc));
    }

    #[test]
    fn snapshot_bad_payload_crc() {
        let mut bytes = encode_snapshot_file(&state()).expect("encode");
        let at = SNAPSHOT_HEADER_BYTES + 5;
        bytes[at] ^= 0x04;
        assert_eq!(read_snapshot_file(&bytes), Err(Corruption::BadFrameCrc));
    }

    #[test]
    fn snapshot_truncated_payload() {
        let bytes = encode_snapshot_file(&state()).expect("encode");
        assert_eq!(
            read_snapshot_file(&bytes[..bytes.len() - 1]),
            Err(Corruption::LengthPastEnd)
        );
        assert_eq!(
            read_snapshot_file(&bytes[..SNAPSHOT_HEADER_BYTES]),
            Err(Corruption::LengthPastEnd)
        );
        assert_eq!(
            read_snapshot_file(&bytes[..SNAPSHOT_HEADER_BYTES - 1]),
            Err(Corruption::LengthPastEnd)
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            read_snapshot_file(&longer),
            Err(Corruption::Malformed(_))
        ));
    }

    #[test]
    fn snapshot_unreadable_payload_with_valid_crcs() {
        let mut bytes = encode_snapshot_file(&state()).expect("encode");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let crc = crc32c::crc32c(&bytes[SNAPSHOT_HEADER_BYTES..]);
        bytes[32..36].copy_from_slice(&crc.to_le_bytes());
        reseal_header(&mut bytes);
        assert_eq!(read_snapshot_file(&bytes), Err(Corruption::BadPayload));
    }

    #[test]
    fn snapshot_offset_disagreement() {
        let mut bytes = encode_snapshot_file(&state()).expect("encode");
        bytes[16..24].copy_from_slice(&6u64.to_le_bytes());
        reseal_header(&mut bytes);
        assert!(matches!(
            read_snapshot_file(&bytes),
            Err(Corruption::Malformed(_))
        ));
    }
}
