//! RecordBatch v2 on the produce path, without decoding records.
//!
//! The header view itself is the engine's ([`BatchView`]: CRC-32C check,
//! base offset, producer id/epoch/sequence, timestamps, record count, and
//! [`set_base_offset`] to assign offsets in place); it is re-exported here
//! so the router and the shards use one implementation.
//!
//! What this module adds is [`batches`]: splitting a Produce partition's
//! `records` blob into whole batches by their `batch_length` (bytes 8..12),
//! as zero-copy slices of the request frame. It checks framing and the
//! magic byte only. Why not the CRC: the owning shard's `PartitionLog`
//! checks the CRC-32C on append anyway, and the router — a single core by
//! default — should not checksum every byte a second time. A batch with a
//! bad CRC therefore passes [`batches`] and is refused by
//! [`BatchView::parse`] with [`BatchError::CrcMismatch`].
//!
//! Kafka's rule for Produce v3+ is exactly one batch per partition, magic 2;
//! it answers INVALID_RECORD otherwise (see [`crate::errors::batch_error`]).
//! [`batches`] yields every batch so the handler can apply that rule (or a
//! looser one) itself.

use bytes::Bytes;

pub use ringlog_engine::batch::{set_base_offset, BatchError, BatchView, BATCH_HEADER_BYTES};

/// Bytes before `batch_length` counts: base offset (8) and the length (4).
pub const LOG_OVERHEAD: usize = 12;
/// Position of the magic byte in a batch.
pub const MAGIC_OFFSET: usize = 16;

/// Iterates over the whole batches in a Produce `records` blob.
///
/// Each item is one complete batch as a zero-copy slice of `records`. The
/// iterator stops after the first error: once a length is wrong the rest of
/// the blob cannot be delimited.
///
/// ```
/// use bytes::Bytes;
/// use ringlog_engine::batch::build_batch;
/// use ringlog_protocol::batch::{batches, BatchView};
/// let mut blob = build_batch(1, &[b"a".as_slice()]);
/// blob.extend(build_batch(2, &[b"b".as_slice(), b"c".as_slice()]));
/// let records = Bytes::from(blob);
/// let counts: Vec<i32> = batches(&records)
///     .map(|b| BatchView::parse(&b.unwrap()).unwrap().record_count())
///     .collect();
/// assert_eq!(counts, [1, 2]);
/// ```
pub fn batches(records: &Bytes) -> Batches {
    Batches {
        records: records.clone(),
        done: false,
    }
}

/// The iterator [`batches`] returns.
#[derive(Clone, Debug)]
pub struct Batches {
    records: Bytes,
    done: bool,
}

impl Batches {
    fn split_next(&mut self) -> Result<Bytes, BatchError> {
        let available = self.records.len();
        let Some(length) = self.records.get(8..LOG_OVERHEAD) else {
            return Err(BatchError::TooShort(available));
        };
        let batch_length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let declared = LOG_OVERHEAD.saturating_add(batch_length.max(0) as usize);
        if batch_length < 0 || declared > available {
            return Err(BatchError::LengthMismatch {
                declared,
                actual: available,
            });
        }
        if declared < BATCH_HEADER_BYTES {
            return Err(BatchError::TooShort(declared));
        }
        let magic = self.records[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic(magic));
        }
        Ok(self.records.split_to(declared))
    }
}

impl Iterator for Batches {
    type Item = Result<Bytes, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.records.is_empty() {
            return None;
        }
        let item = self.split_next();
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

impl std::iter::FusedIterator for Batches {}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlog_engine::batch::build_batch;

    fn blob(parts: &[Vec<u8>]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn splits_concatenated_batches_zero_copy() {
        let a = build_batch(10, &[b"one".as_slice()]);
        let b = build_batch(20, &[b"two".as_slice(), b"three".as_slice()]);
        let records = blob(&[a.clone(), b.clone()]);
        let out: Vec<Bytes> = batches(&records).map(Result::unwrap).collect();
        assert_eq!(out, vec![Bytes::from(a.clone()), Bytes::from(b)]);
        // Slices point into the request's buffer: no copy.
        assert_eq!(out[0].as_ptr(), records.as_ptr());
        assert_eq!(out[1].as_ptr(), records[a.len()..].as_ptr());
        let view = BatchView::parse(&out[1]).unwrap();
        assert_eq!(view.record_count(), 2);
        assert_eq!(view.max_timestamp(), 20);
    }

    #[test]
    fn empty_blob_has_no_batches() {
        assert_eq!(batches(&Bytes::new()).count(), 0);
    }

    #[test]
    fn truncated_last_batch_is_an_error_and_stops() {
        let a = build_batch(1, &[b"x".as_slice()]);
        let b = build_batch(2, &[b"yy".as_slice()]);
        let mut records = [a.clone(), b.clone()].concat();
        records.truncate(records.len() - 3);
        let mut it = batches(&Bytes::from(records));
        assert_eq!(it.next().unwrap().unwrap(), Bytes::from(a));
        assert_eq!(
            it.next().unwrap(),
            Err(BatchError::LengthMismatch {
                declared: b.len(),
                actual: b.len() - 3
            })
        );
        assert!(it.next().is_none());
    }

    #[test]
    fn truncated_inside_the_length_field() {
        let a = build_batch(1, &[b"x".as_slice()]);
        for cut in 1..LOG_OVERHEAD {
            let mut it = batches(&Bytes::copy_from_slice(&a[..cut]));
            assert_eq!(it.next().unwrap(), Err(BatchError::TooShort(cut)));
            assert!(it.next().is_none());
        }
    }

    #[test]
    fn negative_and_tiny_lengths_are_refused() {
        let mut bad = build_batch(1, &[b"x".as_slice()]);
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            batches(&Bytes::from(bad)).next().unwrap(),
            Err(BatchError::LengthMismatch { .. })
        ));
        let mut tiny = build_batch(1, &[b"x".as_slice()]);
        tiny[8..12].copy_from_slice(&4i32.to_be_bytes());
        assert_eq!(
            batches(&Bytes::from(tiny)).next().unwrap(),
            Err(BatchError::TooShort(16))
        );
    }

    #[test]
    fn magic_other_than_two_is_refused() {
        for magic in [0u8, 1, 3, 0xff] {
            let mut old = build_batch(1, &[b"x".as_slice()]);
            old[MAGIC_OFFSET] = magic;
            assert_eq!(
                batches(&Bytes::from(old)).next().unwrap(),
                Err(BatchError::BadMagic(magic as i8))
            );
        }
    }

    #[test]
    fn bad_crc_passes_the_splitter_and_fails_the_view() {
        let mut bad = build_batch(1, &[b"hello".as_slice()]);
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        let records = Bytes::from(bad);
        let batch = batches(&records).next().unwrap().unwrap();
        assert!(matches!(
            BatchView::parse(&batch),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn base_offset_rewrite_on_a_split_batch() {
        let records = blob(&[build_batch(5, &[b"a".as_slice(), b"b".as_slice()])]);
        let batch = batches(&records).next().unwrap().unwrap();
        let mut owned = batch.to_vec();
        set_base_offset(&mut owned, 1000);
        let view = BatchView::parse(&owned).unwrap();
        assert_eq!(view.base_offset(), 1000);
        assert_eq!(view.offset_count(), 2);
        assert_eq!(view.producer_id(), -1);
        assert_eq!(view.producer_epoch(), -1);
        assert_eq!(view.base_sequence(), -1);
        assert_eq!(view.base_timestamp(), 5);
    }
}
