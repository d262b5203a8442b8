//! The controller's part of tiered storage: removing archive objects the
//! metadata no longer records.
//!
//! Layer: controller (see the crate docs).
//!
//! Why a sweep that only removes what can never be recorded: uploads run
//! on every shard, and an object is put before its `ArchiveSealed` event
//! is appended. A sweep that removed every object without an event could
//! remove one whose event is on its way, and the metadata would then name
//! an object that is gone. So it removes an object only when its event can
//! never come: its topic id is not a live topic's (topic ids are never
//! reused), or its offsets end below the partition's archive start (the
//! state refuses such an event). Any other object without an event was
//! left by a crash between its put and its event; it is never served
//! (reads go by the metadata) and the next upload of its segment writes
//! the same key and records it.

use super::Controller;
use crate::tiered::StoreHandle;
use ringlog_engine::archive::parse_archive_key;
use ringlog_engine::meta::MetaState;

/// Prefix under which every archive key lies.
const ARCHIVES_PREFIX: &str = "topics/";

/// Whether the object `key` can never be recorded in `state`.
fn unrecordable(state: &MetaState, key: &str) -> bool {
    let Some((topic_id, partition, _first, last)) = parse_archive_key(key) else {
        return false; // not ours to judge
    };
    let Some((topic, _)) = state.topic_by_id(&topic_id) else {
        return true;
    };
    state
        .archives(topic, partition)
        .is_some_and(|a| last < a.log_start_offset)
}

impl Controller {
    /// Removes every object under the store's archive prefix that can
    /// never be recorded (see the module docs). Failures are logged; the
    /// next start sweeps again.
    pub(super) async fn sweep_archives(&self, store: &StoreHandle) {
        let listed = match store.list(ARCHIVES_PREFIX).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "listing archives for the sweep failed");
                return;
            }
        };
        let doomed: Vec<String> = self.meta.with_state(|state| {
            listed
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| unrecordable(state, key))
                .collect()
        });
        for key in &doomed {
            match store.delete(key).await {
                Ok(()) => tracing::info!(
                    key,
                    "removed an archive object the metadata no longer records"
                ),
                Err(e) => {
                    tracing::warn!(key, error = %e, "removing an unrecorded archive object failed")
                }
            }
        }
    }

    /// After a topic's deletion: removes the objects of its archives
    /// (`keys`, read from the state before the event). What fails here
    /// the next start's sweep removes.
    pub(super) async fn delete_archives(&self, store: &StoreHandle, keys: Vec<String>) {
        for key in keys {
            if let Err(e) = store.delete(&key).await {
                tracing::warn!(key, error = %e, "removing a deleted topic's archive failed; the next start's sweep removes it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlog_engine::archive::archive_key;
    use ringlog_engine::meta::{ArchivesTrimmed, MetaEvent, TopicCreated};

    #[test]
    fn only_objects_that_can_never_be_recorded_are_doomed() {
        let mut state = MetaState::new();
        let events = [
            MetaEvent::TopicCreated(TopicCreated {
                name: "t".into(),
                topic_id: [1; 16],
                partitions: 2,
                configs: vec![],
            }),
            MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
                topic: "t".into(),
                partition: 0,
                log_start_offset: 100,
            }),
        ];
        for (offset, event) in events.iter().enumerate() {
            state.apply_event(offset as u64, event).unwrap();
        }
        // Below partition 0's archive start: can never be recorded.
        assert!(unrecordable(&state, &archive_key(&[1; 16], 0, 0, 99)));
        // At or above it, or on another partition: may still be recorded.
        assert!(!unrecordable(&state, &archive_key(&[1; 16], 0, 50, 100)));
        assert!(!unrecordable(&state, &archive_key(&[1; 16], 1, 0, 99)));
        // A topic id no live topic has (deleted; ids are never reused).
        assert!(unrecordable(&state, &archive_key(&[2; 16], 0, 0, 9)));
        // Not an archive key: left alone.
        assert!(!unrecordable(&state, "topics/readme.txt"));
    }
}
