//! The metadata state as a snapshot file, and writing one through the
//! [`Storage`] trait. The header is [`crate::format`]'s (one codec for
//! this and the producer snapshot); the payload is the rkyv archive of
//! [`MetaState`], so what lives here is the state's side: validated
//! access, then the state's own invariants, because a snapshot that loads
//! becomes the state every later event is validated against.

use super::state::{
    ArchivedMetaState, ArchivedMetaStateV2, ArchivedMetaStateV3, ArchivedMetaStateV4, MetaState,
    MetaStateV2, MetaStateV3, MetaStateV4,
};
use crate::error::Corruption;
use crate::format::{
    decode_snapshot, encode_snapshot, SnapshotKind, META_SNAPSHOT_EXTENSION,
    META_SNAPSHOT_VERSION_ARCHIVES, META_SNAPSHOT_VERSION_QUOTAS, META_SNAPSHOT_VERSION_USERS,
};
use crate::io::{write_file_atomic, Storage};
use std::io;
use std::path::{Path, PathBuf};

/// Suffix of a snapshot being written; such leftovers are deleted on open.
pub(crate) use crate::io::TMP_SUFFIX;

/// Serializes `state` into a complete snapshot file image (header and
/// payload). Fails only if the state exceeds what 32-bit relative pointers
/// address (4 GiB).
pub fn encode_snapshot_file(state: &MetaState) -> Result<Vec<u8>, String> {
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(state)
        .map_err(|e| format!("cannot encode snapshot: {e}"))?;
    Ok(encode_snapshot(
        SnapshotKind::Meta,
        state.applied_offset(),
        0,
        &payload,
    ))
}

/// Decodes and verifies a whole snapshot file: header (magic, version,
/// crc), payload length and crc32c, then validated rkyv access and the
/// state's own invariants. Returns the applied offset and the state.
///
/// A payload whose crc32c does not match is [`Corruption::BadFrameCrc`]
/// (the header frames the payload); a payload that fails rkyv validation
/// is [`Corruption::BadPayload`].
pub fn read_snapshot_file(bytes: &[u8]) -> Result<(u64, MetaState), Corruption> {
    let snapshot =
        decode_snapshot(SnapshotKind::Meta, bytes).map_err(|(_, corruption)| corruption)?;
    assert_eq!(snapshot.entries, 0, "a metadata snapshot counts no entries");
    let mut state = match snapshot.version {
        META_SNAPSHOT_VERSION_QUOTAS => {
            let archived =
                rkyv::access::<ArchivedMetaState, rkyv::rancor::Failure>(snapshot.payload)
                    .map_err(|_| Corruption::BadPayload)?;
            rkyv::deserialize::<MetaState, rkyv::rancor::Failure>(archived)
                .map_err(|_| Corruption::BadPayload)?
        }
        META_SNAPSHOT_VERSION_USERS => {
            // Version 4, before client quotas and ACLs: the same state
            // without them.
            let archived =
                rkyv::access::<ArchivedMetaStateV4, rkyv::rancor::Failure>(snapshot.payload)
                    .map_err(|_| Corruption::BadPayload)?;
            rkyv::deserialize::<MetaStateV4, rkyv::rancor::Failure>(archived)
                .map_err(|_| Corruption::BadPayload)?
                .into()
        }
        META_SNAPSHOT_VERSION_ARCHIVES => {
            // Version 3, before SCRAM credentials: the same state without
            // them.
            let archived =
                rkyv::access::<ArchivedMetaStateV3, rkyv::rancor::Failure>(snapshot.payload)
                    .map_err(|_| Corruption::BadPayload)?;
            rkyv::deserialize::<MetaStateV3, rkyv::rancor::Failure>(archived)
                .map_err(|_| Corruption::BadPayload)?
                .into()
        }
        _ => {
            // Version 2, before archives: the same state without them.
            let archived =
                rkyv::access::<ArchivedMetaStateV2, rkyv::rancor::Failure>(snapshot.payload)
                    .map_err(|_| Corruption::BadPayload)?;
            rkyv::deserialize::<MetaStateV2, rkyv::rancor::Failure>(archived)
                .map_err(|_| Corruption::BadPayload)?
                .into()
        }
    };
    if state.applied_offset() != snapshot.offset {
        return Err(Corruption::Malformed(
            "snapshot header and payload disagree on the applied offset",
        ));
    }
    state.rebuild_and_check().map_err(Corruption::Malformed)?;
    Ok((snapshot.offset, state))
}

/// Path of the snapshot at `applied_offset` in `dir`.
pub(crate) fn snapshot_path(dir: &Path, applied_offset: u64) -> PathBuf {
    dir.join(crate::format::segment_file_name(
        applied_offset,
        META_SNAPSHOT_EXTENSION,
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

    #[test]
    fn snapshot_round_trips() {
        let state = state();
        let bytes = encode_snapshot_file(&state).expect("encode");
        let header = decode_snapshot(SnapshotKind::Meta, &bytes).expect("valid");
        assert_eq!((header.offset, header.entries), (5, 0));
        let (offset, decoded) = read_snapshot_file(&bytes).expect("valid");
        assert_eq!(offset, 5);
        assert_eq!(decoded, state);
        assert_eq!(decoded.topic_by_id(&[2; 16]).map(|(n, _)| n), Some("logs"));
        let empty = encode_snapshot_file(&MetaState::new()).expect("encode");
        assert_eq!(read_snapshot_file(&empty), Ok((0, MetaState::new())));
    }

    /// The header's checks are [`crate::format`]'s (tested there for both
    /// snapshots); this file reports what they found without a position.
    #[test]
    fn snapshot_header_corruption_is_reported() {
        let bytes = encode_snapshot_file(&state()).expect("encode");
        let producers = encode_snapshot(SnapshotKind::Producer, 5, 0, &[]);
        assert_eq!(read_snapshot_file(&producers), Err(Corruption::BadMagic));
        assert_eq!(
            read_snapshot_file(&bytes[..bytes.len() - 1]),
            Err(Corruption::LengthPastEnd)
        );
        let mut flipped = bytes.clone();
        *flipped.last_mut().expect("a payload") ^= 0x04;
        assert_eq!(read_snapshot_file(&flipped), Err(Corruption::BadFrameCrc));
    }

    fn payload(state: &MetaState) -> Vec<u8> {
        rkyv::to_bytes::<rkyv::rancor::Error>(state)
            .expect("encode")
            .to_vec()
    }

    #[test]
    fn snapshot_unreadable_payload_with_valid_crcs() {
        let mut payload = payload(&state());
        // The root object ends the payload: its last fields are the
        // (empty) user map, whose last four bytes are its length, and the
        // ACLs; the map then claims entries the payload does not hold.
        let at = payload.len() - 4 - std::mem::size_of::<crate::meta::acl::ArchivedAcls>();
        payload[at] ^= 0x40;
        let bytes = encode_snapshot(SnapshotKind::Meta, 5, 0, &payload);
        assert_eq!(read_snapshot_file(&bytes), Err(Corruption::BadPayload));
    }

    #[test]
    fn snapshot_offset_disagreement() {
        let bytes = encode_snapshot(SnapshotKind::Meta, 6, 0, &payload(&state()));
        assert!(matches!(
            read_snapshot_file(&bytes),
            Err(Corruption::Malformed(_))
        ));
    }
}
