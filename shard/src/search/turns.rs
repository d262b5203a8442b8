//! The batches waiting for one shard's indexer, taken a partition at a
//! time in turn.
//!
//! Why not first in, first out: a shard's indexer serves every partition
//! of the shard, and one busy partition can queue up to
//! `--index-lag-bytes-max` of batches. In arrival order, a record of a
//! quiet partition produced behind that backlog waited for all of it (at
//! ~15 MB/s of indexing, 32 MiB is two seconds), so "searchable within a
//! second" failed for every topic as soon as one topic was busy. Taken in
//! turn, a batch waits for at most one batch of each other partition
//! with a backlog.

use super::indexer::AppendedBatch;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A partition as the queue keys it (the batch's own shared topic name:
/// no allocation per batch).
type QueueKey = (Arc<str>, u32);

/// Batches by partition, and the partitions that have some, in the order
/// of their next turn.
#[derive(Default)]
pub(super) struct Turns {
    batches: BTreeMap<QueueKey, VecDeque<AppendedBatch>>,
    /// Each partition with batches, exactly once.
    order: VecDeque<QueueKey>,
    len: usize,
}

impl Turns {
    /// Batches waiting, over every partition. The feeders bound it (the
    /// hub refuses a batch past `INDEX_QUEUE_JOBS_MAX` queued).
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `batch` behind its partition's earlier batches.
    pub(super) fn push(&mut self, batch: AppendedBatch) {
        let key = (batch.topic.clone(), batch.partition);
        let queue = self.batches.entry(key.clone()).or_default();
        if queue.is_empty() {
            self.order.push_back(key);
        }
        queue.push_back(batch);
        self.len += 1;
        debug_assert_eq!(self.order.len(), self.batches.len());
    }

    /// The oldest batch of the partition whose turn it is; that
    /// partition's next batch, if any, waits for every other partition's.
    pub(super) fn pop(&mut self) -> Option<AppendedBatch> {
        let key = self.order.pop_front()?;
        let queue = self
            .batches
            .get_mut(&key)
            .expect("a partition in the order has batches");
        let batch = queue.pop_front().expect("a queued partition is not empty");
        if queue.is_empty() {
            self.batches.remove(&key);
        } else {
            self.order.push_back(key);
        }
        self.len -= 1;
        Some(batch)
    }

    /// Takes every batch of `topic`'s `partition` out (it was dropped):
    /// they are not indexed.
    pub(super) fn remove(&mut self, topic: &str, partition: u32) -> Vec<AppendedBatch> {
        let key: QueueKey = (Arc::from(topic), partition);
        let Some(queue) = self.batches.remove(&key) else {
            return Vec::new();
        };
        self.order.retain(|k| *k != key);
        self.len -= queue.len();
        queue.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn batch(topic: &Arc<str>, partition: u32, base_offset: u64) -> AppendedBatch {
        AppendedBatch {
            topic: topic.clone(),
            partition,
            base_offset,
            log_append_time_ms: None,
            batch: Bytes::new(),
        }
    }

    fn order(turns: &mut Turns) -> Vec<(u32, u64)> {
        std::iter::from_fn(|| turns.pop())
            .map(|b| (b.partition, b.base_offset))
            .collect()
    }

    #[test]
    fn a_quiet_partition_waits_for_one_batch_of_a_busy_one_not_its_backlog() {
        let topic: Arc<str> = Arc::from("t");
        let mut turns = Turns::default();
        for offset in 0..100 {
            turns.push(batch(&topic, 0, offset));
        }
        turns.push(batch(&topic, 1, 7));
        assert_eq!(turns.len(), 101);
        let taken = order(&mut turns);
        assert_eq!(taken[..3], [(0, 0), (1, 7), (0, 1)]);
        // Each partition's batches stay in their order.
        let busy: Vec<u64> = taken.iter().filter(|t| t.0 == 0).map(|t| t.1).collect();
        assert_eq!(busy, (0..100).collect::<Vec<_>>());
        assert!(turns.is_empty());
    }

    #[test]
    fn partitions_with_backlogs_alternate() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut turns = Turns::default();
        for offset in 0..3 {
            turns.push(batch(&a, 0, offset));
            turns.push(batch(&b, 0, offset + 10));
        }
        let topics: Vec<(String, u64)> = std::iter::from_fn(|| turns.pop())
            .map(|t| (t.topic.to_string(), t.base_offset))
            .collect();
        let expected = [
            ("a", 0),
            ("b", 10),
            ("a", 1),
            ("b", 11),
            ("a", 2),
            ("b", 12),
        ];
        assert_eq!(
            topics,
            expected.map(|(t, o)| (t.to_string(), o)).to_vec(),
            "turns alternate and keep each partition's order"
        );
    }

    #[test]
    fn a_removed_partition_gives_back_its_batches_and_loses_its_turn() {
        let topic: Arc<str> = Arc::from("t");
        let mut turns = Turns::default();
        turns.push(batch(&topic, 0, 0));
        turns.push(batch(&topic, 1, 5));
        turns.push(batch(&topic, 0, 1));
        let removed = turns.remove("t", 0);
        assert_eq!(
            removed.iter().map(|b| b.base_offset).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(turns.len(), 1);
        assert!(turns.remove("t", 9).is_empty());
        assert_eq!(order(&mut turns), [(1, 5)]);
        // A partition queued again after its removal gets a turn again.
        turns.push(batch(&topic, 0, 2));
        assert_eq!(order(&mut turns), [(0, 2)]);
    }
}
