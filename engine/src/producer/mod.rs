//! Idempotent producers: the sequence state of one partition, the rules a
//! batch must pass against it, and its snapshot file.
//!
//! A Kafka idempotent producer stamps every batch with its producer id,
//! epoch and the sequence number of the first record; sequences count
//! records per partition and wrap at `i32::MAX`. A retried batch carries
//! the same numbers, so the partition can tell a retry from new data. Per
//! producer the partition keeps the epoch and the last
//! [`BATCHES_RETAINED`] batches (first and last sequence, base offset,
//! offsets covered): librdkafka and the Java client keep at most five
//! batches in flight per partition with idempotence on, so a retry always
//! names one of them.
//!
//! ## The rules ([`ProducerStates::check`], in Kafka's order)
//!
//! * Producer id -1: not idempotent, no checks. Control batches and
//!   transactional batches are refused (clients never write the first;
//!   transactions are not supported).
//! * A negative base sequence or epoch with a producer id is malformed.
//! * Unknown producer id (never seen, forgotten after
//!   [`PRODUCER_EXPIRATION_MS`] without writes, or never rebuilt because
//!   all its batches left the log): accepted at any sequence, as Kafka
//!   does since 2.5 (KIP-360), so a producer whose state expired can go on.
//! * Same epoch and the same first and last sequence as a retained batch:
//!   a duplicate. Nothing is written; the answer is the original offsets.
//! * Epoch below the current one: [`ProducerError::InvalidEpoch`]. Kafka
//!   answers INVALID_PRODUCER_EPOCH on Produce since 2.7 (PRODUCER_FENCED
//!   belongs to the transaction coordinator's paths), and so do we.
//! * Epoch above the current one: a new epoch must start at sequence 0.
//! * Same epoch: the first sequence must follow the last retained one
//!   (`i32::MAX` is followed by 0); anything else, a gap or an older batch
//!   no longer retained, is [`ProducerError::OutOfOrderSequence`].
//!
//! ## Why a snapshot plus a scan
//!
//! The state is a fold of the batch headers in offset order, so it could
//! always be rebuilt by reading the log — but reading a whole partition at
//! every start is not bounded work. A snapshot file holds the state
//! covering every offset below the number in its name; open loads the
//! newest valid one and folds in only the batch headers after it. One is
//! written when a segment rolls (the sealed segment is durable then, so the
//! snapshot describes durable data only) and when the log closes, so a
//! clean restart scans nothing and a crash scans at most the active
//! segment. See [`crate::partition`] for the file handling.
//!
//! The file `<covered offset, 20 digits>.producers` is laid out byte by
//! byte in [`crate::format`], whose one snapshot header codec also frames
//! the metadata snapshot; [`ProducerStates::encode_snapshot`] and
//! [`ProducerStates::decode_snapshot`] map the state onto it.

mod snapshot;

use crate::batch::BatchView;
use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer: Kafka's number, and the most batches
/// librdkafka and the Java client keep in flight per partition with
/// idempotence on.
pub const BATCHES_RETAINED: usize = 5;
/// Producers one partition tracks. A new producer beyond this makes the
/// partition forget the one that wrote least recently (it is then unknown,
/// which is accepted): memory and snapshot size stay bounded whatever
/// clients do.
pub const PRODUCERS_MAX: usize = 10_000;
/// A producer that wrote nothing for this long is forgotten (Kafka's
/// `producer.id.expiration.ms` default, one day).
pub const PRODUCER_EXPIRATION_MS: i64 = 24 * 3600 * 1000;
const _: () = assert!(BATCHES_RETAINED >= 1);

/// RecordBatch attribute bit: part of a transaction.
const ATTRIBUTE_TRANSACTIONAL: i16 = 1 << 4;
/// RecordBatch attribute bit: a control batch (transaction marker).
const ATTRIBUTE_CONTROL: i16 = 1 << 5;

/// The producer fields of one idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Producer id (>= 0).
    pub producer_id: i64,
    /// Producer epoch (>= 0).
    pub epoch: i16,
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record (wrapped past `i32::MAX`).
    pub last_seq: i32,
}

/// Why the producer rules refuse a batch. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// An epoch older than the producer's current one: a zombie instance.
    #[error(
        "producer {producer_id}: epoch {epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The epoch the partition knows.
        current_epoch: i16,
    },
    /// A sequence that does not follow the last batch written (a gap, or a
    /// batch older than the retained ones), or a new epoch not starting at 0.
    #[error("producer {producer_id} epoch {epoch}: out of order sequence {first_seq}, expected {expected_seq}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The batch's first sequence.
        first_seq: i32,
        /// The sequence the partition expected.
        expected_seq: i32,
    },
    /// A producer id with a negative epoch or base sequence.
    #[error("producer {producer_id}: invalid epoch {epoch} or base sequence {base_sequence} in an idempotent batch")]
    InvalidFields {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The batch's base sequence.
        base_sequence: i32,
    },
    /// A batch marked transactional: transactions are not supported.
    #[error("transactional record batches are not supported")]
    Transactional,
    /// A control batch: only the broker writes those.
    #[error("clients may not write control batches")]
    ControlBatch,
}

/// The sequence `delta` records after `seq`, wrapping from `i32::MAX` to 0
/// as Kafka producers do.
///
/// ```
/// use ringlog_engine::producer::sequence_after;
/// assert_eq!(sequence_after(5, 3), 8);
/// assert_eq!(sequence_after(i32::MAX, 1), 0);
/// assert_eq!(sequence_after(i32::MAX - 1, 3), 1);
/// ```
pub fn sequence_after(seq: i32, delta: i32) -> i32 {
    assert!(
        seq >= 0 && delta >= 0,
        "sequences and deltas are non-negative"
    );
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// The producer fields of a batch: `None` when it is not idempotent
/// (producer id -1, or any negative id), an error when the batch may not
/// be written by a client at all.
pub fn classify(view: &BatchView<'_>) -> Result<Option<ProducerBatch>, ProducerError> {
    let attributes = view.attributes();
    if attributes & ATTRIBUTE_CONTROL != 0 {
        return Err(ProducerError::ControlBatch);
    }
    if attributes & ATTRIBUTE_TRANSACTIONAL != 0 {
        return Err(ProducerError::Transactional);
    }
    let producer_id = view.producer_id();
    if producer_id < 0 {
        return Ok(None);
    }
    let (epoch, base_sequence) = (view.producer_epoch(), view.base_sequence());
    if epoch < 0 || base_sequence < 0 {
        return Err(ProducerError::InvalidFields {
            producer_id,
            epoch,
            base_sequence,
        });
    }
    Ok(Some(ProducerBatch {
        producer_id,
        epoch,
        first_seq: base_sequence,
        last_seq: sequence_after(base_sequence, view.last_offset_delta()),
    }))
}

/// Where one retained batch of a producer landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// First sequence.
    pub first_seq: i32,
    /// Last sequence.
    pub last_seq: i32,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offsets the batch covers (at least 1).
    pub offset_count: u32,
}

impl BatchRecord {
    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.offset_count as u64 - 1
    }
}

/// What [`ProducerStates::check`] decided for a batch that passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New data: append it, then [`ProducerStates::record`] it.
    Append,
    /// A retry of this retained batch: answer with its offsets, write
    /// nothing.
    Duplicate(BatchRecord),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first; never empty, at most [`BATCHES_RETAINED`].
    batches: VecDeque<BatchRecord>,
    /// Broker time of the last write (drives expiry).
    last_write_ms: i64,
}

impl ProducerEntry {
    fn last(&self) -> &BatchRecord {
        self.batches
            .back()
            .expect("an entry holds at least one batch")
    }
}

/// The idempotent producer state of one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// No producers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// No producer tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// A producer's current epoch and its retained batches, oldest first.
    pub fn producer(&self, producer_id: i64) -> Option<(i16, Vec<BatchRecord>)> {
        self.producers
            .get(&producer_id)
            .map(|e| (e.epoch, e.batches.iter().copied().collect()))
    }

    /// Applies the rules of the module docs to `batch`; changes nothing.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Verdict, ProducerError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(Verdict::Append);
        };
        if batch.epoch == entry.epoch {
            if let Some(found) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == batch.first_seq && b.last_seq == batch.last_seq)
            {
                return Ok(Verdict::Duplicate(*found));
            }
        }
        if batch.epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                current_epoch: entry.epoch,
            });
        }
        let expected_seq = if batch.epoch > entry.epoch {
            0
        } else {
            sequence_after(entry.last().last_seq, 1)
        };
        if batch.first_seq != expected_seq {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                first_seq: batch.first_seq,
                expected_seq,
            });
        }
        Ok(Verdict::Append)
    }

    /// Folds in a batch the log holds at `base_offset`: after
    /// [`ProducerStates::check`] said [`Verdict::Append`] and the append
    /// succeeded, and when rebuilding from the log. `now_ms` is the broker
    /// time of the write (expiry counts from it).
    pub fn record(
        &mut self,
        batch: &ProducerBatch,
        base_offset: u64,
        offset_count: u32,
        now_ms: i64,
    ) {
        assert!(offset_count >= 1, "a batch covers at least one offset");
        let record = BatchRecord {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            base_offset,
            offset_count,
        };
        if !self.producers.contains_key(&batch.producer_id) && self.producers.len() >= PRODUCERS_MAX
        {
            self.forget_least_recent();
        }
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: batch.epoch,
                batches: VecDeque::with_capacity(BATCHES_RETAINED),
                last_write_ms: now_ms,
            });
        if entry.epoch != batch.epoch {
            // A new epoch starts a new sequence space: the old batches can
            // no longer be retried.
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        if let Some(last) = entry.batches.back() {
            assert!(
                last.base_offset < base_offset,
                "batches are recorded in offset order"
            );
        }
        if entry.batches.len() == BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(record);
        entry.last_write_ms = entry.last_write_ms.max(now_ms);
        assert!(self.producers.len() <= PRODUCERS_MAX);
    }

    /// Forgets the producer whose last write is oldest (ties: the lowest
    /// last offset, then the lowest id, so replaying the same history
    /// forgets the same producer).
    fn forget_least_recent(&mut self) {
        let victim = self
            .producers
            .iter()
            .min_by_key(|(id, e)| (e.last_write_ms, e.last().base_offset, **id))
            .map(|(id, _)| *id);
        if let Some(id) = victim {
            self.producers.remove(&id);
        }
    }

    /// Forgets producers that wrote nothing for `expiration_ms` before
    /// `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_write_ms) < expiration_ms);
        before - self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{build_batch, build_producer_batch};

    const PID: i64 = 42;

    fn batch(epoch: i16, first_seq: i32, records: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: PID,
            epoch,
            first_seq,
            last_seq: sequence_after(first_seq, records - 1),
        }
    }

    /// Checks `b`, and records it at the log end `*end` if it passes as new.
    fn produce(
        states: &mut ProducerStates,
        end: &mut u64,
        b: ProducerBatch,
    ) -> Result<Verdict, ProducerError> {
        let verdict = states.check(&b)?;
        if verdict == Verdict::Append {
            let count = (b.last_seq.wrapping_sub(b.first_seq) as u32 & i32::MAX as u32) + 1;
            states.record(&b, *end, count, 1_000);
            *end += count as u64;
        }
        Ok(verdict)
    }

    fn out_of_order(epoch: i16, first_seq: i32, expected_seq: i32) -> ProducerError {
        ProducerError::OutOfOrderSequence {
            producer_id: PID,
            epoch,
            first_seq,
            expected_seq,
        }
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(sequence_after(0, 0), 0);
        assert_eq!(sequence_after(i32::MAX, 0), i32::MAX);
        assert_eq!(sequence_after(i32::MAX, 1), 0);
        assert_eq!(sequence_after(i32::MAX - 2, 4), 1);
        assert_eq!(sequence_after(i32::MAX - 2, 2), i32::MAX);
    }

    #[test]
    fn classify_reads_the_header() {
        let plain = build_batch(5, &[b"a".as_slice()]);
        assert_eq!(classify(&BatchView::parse(&plain).unwrap()), Ok(None));
        let three = [b"a".as_slice(), b"b", b"c"];
        let idempotent = build_producer_batch(5, &three, PID, 3, i32::MAX - 1);
        assert_eq!(
            classify(&BatchView::parse(&idempotent).unwrap()),
            Ok(Some(ProducerBatch {
                producer_id: PID,
                epoch: 3,
                first_seq: i32::MAX - 1,
                last_seq: 0,
            }))
        );
    }

    fn with_attributes(mut bytes: Vec<u8>, attributes: i16) -> Vec<u8> {
        bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn control_and_transactional_batches_are_refused() {
        let bytes = build_producer_batch(5, &[b"a".as_slice()], PID, 0, 0);
        let control = with_attributes(bytes.clone(), 1 << 5);
        assert_eq!(
            classify(&BatchView::parse(&control).unwrap()),
            Err(ProducerError::ControlBatch)
        );
        let transactional = with_attributes(bytes, 1 << 4);
        assert_eq!(
            classify(&BatchView::parse(&transactional).unwrap()),
            Err(ProducerError::Transactional)
        );
    }

    #[test]
    fn negative_sequence_or_epoch_with_a_producer_id_is_invalid() {
        for (epoch, seq) in [(0, -1), (-1, 0), (-5, -5)] {
            let bytes = build_producer_batch(5, &[b"a".as_slice()], PID, epoch, seq);
            assert_eq!(
                classify(&BatchView::parse(&bytes).unwrap()),
                Err(ProducerError::InvalidFields {
                    producer_id: PID,
                    epoch,
                    base_sequence: seq
                })
            );
        }
    }

    #[test]
    fn unknown_producers_are_accepted_at_any_sequence() {
        let states = ProducerStates::new();
        for seq in [0, 1, 77, i32::MAX] {
            assert_eq!(states.check(&batch(0, seq, 1)), Ok(Verdict::Append));
            assert_eq!(states.check(&batch(9, seq, 1)), Ok(Verdict::Append));
        }
    }

    #[test]
    fn in_sequence_batches_append_and_gaps_are_out_of_order() {
        let (mut states, mut end) = (ProducerStates::new(), 100);
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 0, 3)),
            Ok(Verdict::Append)
        );
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 3, 2)),
            Ok(Verdict::Append)
        );
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 6, 1)),
            Err(out_of_order(0, 6, 5))
        );
        // An overlap that is no retained batch is out of order, too.
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 4, 1)),
            Err(out_of_order(0, 4, 5))
        );
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 5, 1)),
            Ok(Verdict::Append)
        );
        assert_eq!(end, 106);
        let (epoch, batches) = states.producer(PID).unwrap();
        assert_eq!(epoch, 0);
        assert_eq!(batches.len(), 3);
        assert_eq!(
            batches[2],
            BatchRecord {
                first_seq: 5,
                last_seq: 5,
                base_offset: 105,
                offset_count: 1
            }
        );
    }

    #[test]
    fn duplicates_of_the_last_five_batches_answer_their_offsets() {
        let (mut states, mut end) = (ProducerStates::new(), 0);
        for i in 0..7 {
            assert_eq!(
                produce(&mut states, &mut end, batch(0, i * 2, 2)),
                Ok(Verdict::Append)
            );
        }
        // Batches 2..7 are retained: each resend is a duplicate at its offset.
        for i in 2..7 {
            let verdict = produce(&mut states, &mut end, batch(0, i * 2, 2));
            assert_eq!(
                verdict,
                Ok(Verdict::Duplicate(BatchRecord {
                    first_seq: i * 2,
                    last_seq: i * 2 + 1,
                    base_offset: i as u64 * 2,
                    offset_count: 2
                }))
            );
        }
        // The two oldest fell out of the window: out of order, not duplicates.
        for i in 0..2 {
            assert_eq!(
                produce(&mut states, &mut end, batch(0, i * 2, 2)),
                Err(out_of_order(0, i * 2, 14))
            );
        }
        // Same first sequence, different length: not the same batch.
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 12, 1)),
            Err(out_of_order(0, 12, 14))
        );
        assert_eq!(end, 14, "nothing was appended twice");
    }

    #[test]
    fn epochs_fence_old_instances_and_restart_sequences() {
        let (mut states, mut end) = (ProducerStates::new(), 0);
        assert_eq!(
            produce(&mut states, &mut end, batch(2, 0, 5)),
            Ok(Verdict::Append)
        );
        // An older epoch, even a duplicate-looking one, is fenced.
        let stale = ProducerError::InvalidEpoch {
            producer_id: PID,
            epoch: 1,
            current_epoch: 2,
        };
        assert_eq!(
            produce(&mut states, &mut end, batch(1, 0, 5)),
            Err(stale.clone())
        );
        assert_eq!(produce(&mut states, &mut end, batch(1, 5, 1)), Err(stale));
        // A newer epoch must start at 0.
        assert_eq!(
            produce(&mut states, &mut end, batch(3, 5, 1)),
            Err(out_of_order(3, 5, 0))
        );
        assert_eq!(
            produce(&mut states, &mut end, batch(3, 0, 1)),
            Ok(Verdict::Append)
        );
        let (epoch, batches) = states.producer(PID).unwrap();
        assert_eq!(
            (epoch, batches.len()),
            (3, 1),
            "the old epoch's batches are gone"
        );
        // The old epoch's batch is no longer a duplicate: the epoch is stale.
        assert!(matches!(
            produce(&mut states, &mut end, batch(2, 0, 5)),
            Err(ProducerError::InvalidEpoch {
                current_epoch: 3,
                ..
            })
        ));
        assert_eq!(
            produce(&mut states, &mut end, batch(3, 1, 1)),
            Ok(Verdict::Append)
        );
    }

    #[test]
    fn sequences_continue_across_the_wrap() {
        let (mut states, mut end) = (ProducerStates::new(), 0);
        assert_eq!(
            produce(&mut states, &mut end, batch(0, i32::MAX - 2, 2)),
            Ok(Verdict::Append)
        );
        // i32::MAX - 1 was last: this batch spans MAX and wraps to 0, 1.
        let spanning = batch(0, i32::MAX, 3);
        assert_eq!(spanning.last_seq, 1);
        assert_eq!(
            produce(&mut states, &mut end, spanning),
            Ok(Verdict::Append)
        );
        assert_eq!(
            produce(&mut states, &mut end, spanning),
            Ok(Verdict::Duplicate(BatchRecord {
                first_seq: i32::MAX,
                last_seq: 1,
                base_offset: 2,
                offset_count: 3
            }))
        );
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 2, 1)),
            Ok(Verdict::Append)
        );
        assert_eq!(
            produce(&mut states, &mut end, batch(0, 0, 1)),
            Err(out_of_order(0, 0, 3))
        );
    }

    #[test]
    fn producers_are_independent() {
        let mut states = ProducerStates::new();
        let mut a = batch(0, 0, 1);
        states.record(&a, 0, 1, 0);
        let b = ProducerBatch {
            producer_id: PID + 1,
            ..batch(0, 50, 1)
        };
        assert_eq!(states.check(&b), Ok(Verdict::Append));
        states.record(&b, 1, 1, 0);
        a.first_seq = 1;
        a.last_seq = 1;
        assert_eq!(states.check(&a), Ok(Verdict::Append));
        assert_eq!(states.len(), 2);
    }

    #[test]
    fn idle_producers_expire() {
        let mut states = ProducerStates::new();
        states.record(&batch(0, 0, 1), 0, 1, 1_000);
        let other = ProducerBatch {
            producer_id: 7,
            ..batch(0, 0, 1)
        };
        states.record(&other, 1, 1, 5_000);
        assert_eq!(
            states.expire(1_000 + PRODUCER_EXPIRATION_MS - 1, PRODUCER_EXPIRATION_MS),
            0
        );
        assert_eq!(
            states.expire(1_000 + PRODUCER_EXPIRATION_MS, PRODUCER_EXPIRATION_MS),
            1
        );
        assert!(states.producer(PID).is_none());
        assert!(states.producer(7).is_some());
        // Forgotten means unknown: any sequence is accepted again.
        assert_eq!(states.check(&batch(0, 99, 1)), Ok(Verdict::Append));
    }

    #[test]
    fn the_least_recent_producer_is_forgotten_at_the_limit() {
        let mut states = ProducerStates::new();
        for id in 0..PRODUCERS_MAX as i64 {
            let b = ProducerBatch {
                producer_id: id,
                ..batch(0, 0, 1)
            };
            // Producer 0 writes last of all, so producer 1 is the oldest.
            let ms = if id == 0 { 1_000_000 } else { id };
            states.record(&b, id as u64, 1, ms);
        }
        assert_eq!(states.len(), PRODUCERS_MAX);
        let newcomer = ProducerBatch {
            producer_id: PRODUCERS_MAX as i64,
            ..batch(0, 0, 1)
        };
        states.record(&newcomer, PRODUCERS_MAX as u64, 1, 1_000_001);
        assert_eq!(states.len(), PRODUCERS_MAX);
        assert!(states.producer(1).is_none());
        assert!(states.producer(0).is_some());
        assert!(states.producer(PRODUCERS_MAX as i64).is_some());
    }
}
