//! The producer state as a snapshot file. The bytes are
//! [`crate::format`]'s; what lives here is the state's side of the
//! contract: a loaded snapshot becomes the state every retry and sequence
//! is judged against, so decoding refuses anything a correct encoder could
//! not have written (ids not ascending, epochs or sequences negative,
//! batches overlapping or at or above the covered offset) even when the
//! crcs match — a snapshot written by a bug is skipped, not trusted.

use super::{BatchRecord, ProducerEntry, ProducerStates, BATCHES_RETAINED};
use crate::error::Corruption;
use crate::format::{
    decode_producer_snapshot_batch, decode_producer_snapshot_entry, decode_snapshot,
    encode_producer_snapshot_batch, encode_producer_snapshot_entry, encode_snapshot,
    ProducerSnapshotEntry, SnapshotKind, PRODUCER_SNAPSHOT_BATCH_BYTES,
    PRODUCER_SNAPSHOT_ENTRY_BYTES,
};
use std::collections::VecDeque;

impl ProducerStates {
    /// A complete snapshot file image of this state as covering every
    /// batch below `covered_offset`.
    pub fn encode_snapshot(&self, covered_offset: u64) -> Vec<u8> {
        let mut ids: Vec<i64> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        let mut payload = Vec::with_capacity(
            ids.len()
                * (PRODUCER_SNAPSHOT_ENTRY_BYTES
                    + BATCHES_RETAINED * PRODUCER_SNAPSHOT_BATCH_BYTES),
        );
        for &producer_id in &ids {
            let entry = &self.producers[&producer_id];
            assert!(!entry.batches.is_empty() && entry.batches.len() <= BATCHES_RETAINED);
            assert!(entry.last().last_offset() < covered_offset);
            payload.extend_from_slice(&encode_producer_snapshot_entry(&ProducerSnapshotEntry {
                producer_id,
                epoch: entry.epoch,
                batches: entry.batches.len() as u8,
                last_write_ms: entry.last_write_ms,
            }));
            for batch in &entry.batches {
                payload.extend_from_slice(&encode_producer_snapshot_batch(batch));
            }
        }
        encode_snapshot(
            SnapshotKind::Producer,
            covered_offset,
            ids.len() as u32,
            &payload,
        )
    }

    /// Decodes and verifies a whole snapshot file; returns the covered
    /// offset and the state. On failure: the byte position of the bad
    /// range and what is wrong there (the header's positions are listed at
    /// [`crate::format::decode_snapshot`]; a bad entry at its first byte).
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(u64, ProducerStates), (u64, Corruption)> {
        let snapshot = decode_snapshot(SnapshotKind::Producer, bytes)?;
        let covered_offset = snapshot.offset;
        let mut states = ProducerStates::new();
        let mut rest = snapshot.payload;
        let mut previous_id = None;
        for _ in 0..snapshot.entries {
            let entry_at = (bytes.len() - rest.len()) as u64;
            let bad = |why| Err((entry_at, Corruption::Malformed(why)));
            let Some((entry, after_entry)) =
                rest.split_first_chunk::<PRODUCER_SNAPSHOT_ENTRY_BYTES>()
            else {
                return bad("producer snapshot entry runs past the payload");
            };
            let Some(entry) = decode_producer_snapshot_entry(entry) else {
                return bad("reserved producer snapshot entry bytes set");
            };
            let id = entry.producer_id;
            if id < 0 || previous_id.is_some_and(|p| p >= id) {
                return bad("producer ids not ascending and non-negative");
            }
            let n = entry.batches as usize;
            if entry.epoch < 0 || n == 0 || n > BATCHES_RETAINED {
                return bad("producer epoch or batch count out of range");
            }
            let Some((batch_bytes, after_batches)) =
                after_entry.split_at_checked(n * PRODUCER_SNAPSHOT_BATCH_BYTES)
            else {
                return bad("producer snapshot entry runs past the payload");
            };
            let mut batches: VecDeque<BatchRecord> = VecDeque::with_capacity(BATCHES_RETAINED);
            for batch in batch_bytes.chunks_exact(PRODUCER_SNAPSHOT_BATCH_BYTES) {
                let batch = batch.try_into().expect("chunks of one batch");
                let previous_end = batches.back().map(|p| p.last_offset() + 1);
                let Some(record) = decode_producer_snapshot_batch(batch).filter(|record| {
                    record.first_seq >= 0
                        && record.last_seq >= 0
                        && record.offset_count >= 1
                        && previous_end.is_none_or(|end| record.base_offset >= end)
                        && record
                            .base_offset
                            .checked_add(record.offset_count as u64)
                            .is_some_and(|end| end <= covered_offset)
                }) else {
                    return bad("producer batch fields out of range");
                };
                batches.push_back(record);
            }
            assert_eq!(batches.len(), n);
            states.producers.insert(
                id,
                ProducerEntry {
                    epoch: entry.epoch,
                    batches,
                    last_write_ms: entry.last_write_ms,
                },
            );
            previous_id = Some(id);
            rest = after_batches;
        }
        if !rest.is_empty() {
            return Err((
                (bytes.len() - rest.len()) as u64,
                Corruption::Malformed("producer snapshot payload longer than its entries"),
            ));
        }
        assert_eq!(states.len(), snapshot.entries as usize);
        Ok((covered_offset, states))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::PRODUCER_SNAPSHOT_HEADER_BYTES;
    use crate::producer::ProducerBatch;

    const COVERED: u64 = 40;

    /// Producer 42 at epoch 1 wrote seven batches of three (five are
    /// retained); producer 3 wrote one batch across the sequence wrap.
    fn sample() -> ProducerStates {
        let mut states = ProducerStates::new();
        for i in 0..7 {
            let batch = ProducerBatch {
                producer_id: 42,
                epoch: 1,
                first_seq: i * 3,
                last_seq: i * 3 + 2,
            };
            states.record(&batch, 10 + i as u64 * 3, 3, 1_000);
        }
        let other = ProducerBatch {
            producer_id: 3,
            epoch: 0,
            first_seq: i32::MAX,
            last_seq: 0,
        };
        states.record(&other, 31, 2, 2_000);
        states
    }

    type Entries = Vec<(ProducerSnapshotEntry, Vec<BatchRecord>)>;

    /// The entries of `states` as the encoder writes them, to edit.
    fn entries(states: &ProducerStates) -> Entries {
        let mut ids: Vec<i64> = states.producers.keys().copied().collect();
        ids.sort_unstable();
        ids.iter()
            .map(|&producer_id| {
                let e = &states.producers[&producer_id];
                let entry = ProducerSnapshotEntry {
                    producer_id,
                    epoch: e.epoch,
                    batches: e.batches.len() as u8,
                    last_write_ms: e.last_write_ms,
                };
                (entry, e.batches.iter().copied().collect())
            })
            .collect()
    }

    fn payload(entries: &Entries) -> Vec<u8> {
        let mut out = Vec::new();
        for (entry, batches) in entries {
            out.extend_from_slice(&encode_producer_snapshot_entry(entry));
            for batch in batches {
                out.extend_from_slice(&encode_producer_snapshot_batch(batch));
            }
        }
        out
    }

    /// A sealed snapshot of `payload` claiming `count` producers: the crcs
    /// match, so the decoder reaches its field checks.
    fn image(count: u32, payload: &[u8]) -> Vec<u8> {
        encode_snapshot(SnapshotKind::Producer, COVERED, count, payload)
    }

    /// File position of entry `index` of `entries`.
    fn entry_at(entries: &Entries, index: usize) -> u64 {
        let before: usize = entries[..index]
            .iter()
            .map(|(_, b)| PRODUCER_SNAPSHOT_ENTRY_BYTES + b.len() * PRODUCER_SNAPSHOT_BATCH_BYTES)
            .sum();
        (PRODUCER_SNAPSHOT_HEADER_BYTES + before) as u64
    }

    /// Edits the sample's entries, and expects the decoder to refuse the
    /// result as malformed at the first byte of entry `index`.
    fn bad_entry(edit: impl FnOnce(&mut Entries), index: usize) {
        let mut edited = entries(&sample());
        edit(&mut edited);
        let bytes = image(edited.len() as u32, &payload(&edited));
        let decoded = ProducerStates::decode_snapshot(&bytes);
        let expected = entry_at(&edited, index);
        assert!(
            matches!(decoded, Err((at, Corruption::Malformed(_))) if at == expected),
            "{decoded:?}"
        );
    }

    #[test]
    fn snapshot_round_trips() {
        let states = sample();
        let bytes = states.encode_snapshot(COVERED);
        assert_eq!(bytes, image(2, &payload(&entries(&states))));
        assert_eq!(
            bytes.len(),
            PRODUCER_SNAPSHOT_HEADER_BYTES
                + 2 * PRODUCER_SNAPSHOT_ENTRY_BYTES
                + 6 * PRODUCER_SNAPSHOT_BATCH_BYTES
        );
        let (covered, decoded) = ProducerStates::decode_snapshot(&bytes).unwrap();
        assert_eq!(covered, COVERED);
        assert_eq!(decoded, states);
        let empty = ProducerStates::new().encode_snapshot(0);
        assert_eq!(
            ProducerStates::decode_snapshot(&empty),
            Ok((0, ProducerStates::new()))
        );
    }

    #[test]
    fn snapshot_header_corruption_is_reported_where_it_is() {
        let bytes = sample().encode_snapshot(COVERED);
        let short = &bytes[..PRODUCER_SNAPSHOT_HEADER_BYTES - 1];
        assert_eq!(
            ProducerStates::decode_snapshot(short),
            Err((short.len() as u64, Corruption::LengthPastEnd))
        );
        let meta = encode_snapshot(SnapshotKind::Meta, COVERED, 0, &[]);
        assert_eq!(
            ProducerStates::decode_snapshot(&meta),
            Err((0, Corruption::BadMagic))
        );
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x10;
        assert_eq!(
            ProducerStates::decode_snapshot(&flipped),
            Err((
                PRODUCER_SNAPSHOT_HEADER_BYTES as u64,
                Corruption::BadFrameCrc
            ))
        );
    }

    #[test]
    fn snapshot_producer_ids_not_ascending() {
        // Entry 0 is producer 3, entry 1 producer 42.
        bad_entry(|e| e[1].0.producer_id = 3, 1);
        bad_entry(|e| e[1].0.producer_id = 2, 1);
        bad_entry(|e| e[0].0.producer_id = -1, 0);
    }

    #[test]
    fn snapshot_epoch_or_batch_count_out_of_range() {
        bad_entry(|e| e[0].0.epoch = -1, 0);
        bad_entry(|e| e[1].0.batches = 0, 1);
        bad_entry(|e| e[1].0.batches = BATCHES_RETAINED as u8 + 1, 1);
    }

    /// Every byte the entry and batch codecs leave zero whatever the
    /// fields hold is reserved, and a reserved byte set refuses the entry.
    #[test]
    fn snapshot_reserved_entry_bytes() {
        let full = encode_producer_snapshot_entry(&ProducerSnapshotEntry {
            producer_id: -1,
            epoch: -1,
            batches: u8::MAX,
            last_write_ms: -1,
        });
        let full_batch = encode_producer_snapshot_batch(&BatchRecord {
            first_seq: -1,
            last_seq: -1,
            base_offset: u64::MAX,
            offset_count: u32::MAX,
        });
        let reserved: Vec<usize> = (0..full.len()).filter(|&i| full[i] == 0).collect();
        let batch_reserved: Vec<usize> = (0..full_batch.len())
            .filter(|&i| full_batch[i] == 0)
            .map(|i| PRODUCER_SNAPSHOT_ENTRY_BYTES + i)
            .collect();
        assert!(!reserved.is_empty() && !batch_reserved.is_empty());
        let sample = entries(&sample());
        let second = (entry_at(&sample, 1) as usize) - PRODUCER_SNAPSHOT_HEADER_BYTES;
        for at in reserved.into_iter().chain(batch_reserved) {
            let mut bytes = payload(&sample);
            bytes[second + at] = 1;
            let decoded = ProducerStates::decode_snapshot(&image(2, &bytes));
            let expected = entry_at(&sample, 1);
            assert!(
                matches!(decoded, Err((pos, Corruption::Malformed(_))) if pos == expected),
                "byte {at}: {decoded:?}"
            );
        }
    }

    #[test]
    fn snapshot_batch_fields_out_of_range() {
        bad_entry(|e| e[0].1[0].first_seq = -1, 0);
        bad_entry(|e| e[0].1[0].last_seq = i32::MIN, 0);
        bad_entry(|e| e[0].1[0].offset_count = 0, 0);
        // Ends beyond the covered offset.
        bad_entry(|e| e[0].1[0].base_offset = COVERED - 1, 0);
        bad_entry(|e| e[0].1[0].base_offset = u64::MAX, 0);
        // Offsets going backwards inside an entry (producer 42's second batch).
        bad_entry(|e| e[1].1[1].base_offset = 0, 1);
        bad_entry(|e| e[1].1[1].base_offset = e[1].1[0].base_offset, 1);
    }

    #[test]
    fn snapshot_entry_past_the_payload() {
        let sample = entries(&sample());
        let bytes = payload(&sample);
        // One more producer claimed than the payload holds.
        let file = image(3, &bytes);
        let end = file.len() as u64;
        assert!(matches!(
            ProducerStates::decode_snapshot(&file),
            Err((at, Corruption::Malformed(_))) if at == end
        ));
        // Fewer batches than the entry claims.
        let cut = &bytes[..bytes.len() - PRODUCER_SNAPSHOT_BATCH_BYTES];
        let second = entry_at(&sample, 1);
        assert!(matches!(
            ProducerStates::decode_snapshot(&image(2, cut)),
            Err((at, Corruption::Malformed(_))) if at == second
        ));
        // One fewer producer: bytes left over.
        assert!(matches!(
            ProducerStates::decode_snapshot(&image(1, &bytes)),
            Err((at, Corruption::Malformed(_))) if at == second
        ));
    }
}
