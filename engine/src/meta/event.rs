//! Metadata events: the vocabulary of the meta log and its on-disk form.
//!
//! An event payload is exactly one rkyv archive whose root is
//! [`MetaEvent`]. rkyv places the root object at the *end* of the buffer
//! and finds it at `len - size_of::<ArchivedMetaEvent>()`, so the size of
//! the archived enum is part of the format: if a later variant made the
//! enum larger, every older payload would be read at the wrong position.
//! That is why every variant holds its fields in a struct serialized out of
//! line (`#[rkyv(with = AsBox)]`): the archived enum is a one-byte tag plus a
//! four-byte relative pointer, whatever the variants hold, and a const
//! assertion below keeps it that way.

use crate::error::Corruption;
use rkyv::with::AsBox;
use rkyv::{Archive, Deserialize, Serialize};
use std::fmt;

/// A topic came into existence with `partitions` unplaced partitions.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicCreated {
    /// Topic name (Kafka's rules: 1-249 of `[a-zA-Z0-9._-]`, not `.`/`..`).
    pub name: String,
    /// Kafka topic id (a UUID); never all zero, unique among live topics.
    pub topic_id: [u8; 16],
    /// Partition count, at least 1.
    pub partitions: u32,
    /// Topic-level configuration overrides (keys unique).
    pub configs: Vec<(String, String)>,
}

/// A topic and its placement were removed.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicDeleted {
    /// Topic name.
    pub name: String,
}

/// Topic configuration overrides changed: `remove` first, then `set`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicConfigChanged {
    /// Topic name.
    pub name: String,
    /// Keys to set (unique, none also in `remove`).
    pub set: Vec<(String, String)>,
    /// Keys to remove (unique); removing an unset key is a no-op.
    pub remove: Vec<String>,
}

/// A topic grew to `new_total` partitions (Kafka CreatePartitions); the
/// new ones are unplaced.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PartitionsAdded {
    /// Topic name.
    pub name: String,
    /// The partition count afterwards; larger than the current count.
    pub new_total: u32,
}

/// A partition was assigned to (or moved to) a shard.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PartitionPlaced {
    /// Topic name.
    pub topic: String,
    /// Partition index, below the topic's partition count.
    pub partition: u32,
    /// The owning shard.
    pub shard: u32,
}

/// Producer ids below `block_end` are allocated (Kafka InitProducerId).
/// The controller hands ids out of the block from memory and records the
/// next block before answering with its first id, so an id answered before
/// a crash is never answered again: after a restart allocation starts at
/// the recorded end.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProducerIdBlock {
    /// End (exclusive) of the allocated ids: larger than the previous end,
    /// at most `i64::MAX` (ids are `i64` on the wire, -1 means none).
    pub block_end: u64,
}

/// One change to cluster metadata: the unit of the meta log (one event per
/// offset; the frame carries the event time in ms).
///
/// **The variant order is part of the on-disk format**: rkyv stores the
/// variant's position as the tag byte. Never reorder, remove or insert
/// variants; add new ones at the end only, each as a struct wrapped with
/// `#[rkyv(with = AsBox)]` (see the module docs for why). Old logs then stay
/// readable, and an older build meeting a newer variant fails validation
/// ([`Corruption::BadPayload`]) rather than misreading it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum MetaEvent {
    /// Tag 0.
    TopicCreated(#[rkyv(with = AsBox)] TopicCreated),
    /// Tag 1.
    TopicDeleted(#[rkyv(with = AsBox)] TopicDeleted),
    /// Tag 2.
    TopicConfigChanged(#[rkyv(with = AsBox)] TopicConfigChanged),
    /// Tag 3.
    PartitionsAdded(#[rkyv(with = AsBox)] PartitionsAdded),
    /// Tag 4.
    PartitionPlaced(#[rkyv(with = AsBox)] PartitionPlaced),
    /// Tag 5.
    ProducerIdBlock(#[rkyv(with = AsBox)] ProducerIdBlock),
}

/// Archived events are a tag byte plus one 32-bit relative pointer, for
/// every variant present and future (see the module docs).
pub(crate) const ARCHIVED_EVENT_BYTES: usize = 5;
const _: () = assert!(std::mem::size_of::<ArchivedMetaEvent>() == ARCHIVED_EVENT_BYTES);
const _: () = assert!(std::mem::align_of::<ArchivedMetaEvent>() == 1);

/// Serializes an event into a meta log payload. Fails only if the event is
/// too large for 32-bit relative pointers (4 GiB).
pub fn encode_event(event: &MetaEvent) -> Result<Vec<u8>, String> {
    rkyv::to_bytes::<rkyv::rancor::Error>(event)
        .map(|bytes| bytes.into_vec())
        .map_err(|e| format!("cannot encode metadata event: {e}"))
}

/// Validated, zero-copy access to a payload read from disk. Payloads can
/// sit at any buffer position: archived data has alignment 1.
pub(crate) fn access_event(payload: &[u8]) -> Result<&ArchivedMetaEvent, Corruption> {
    rkyv::access::<ArchivedMetaEvent, rkyv::rancor::Failure>(payload)
        .map_err(|_| Corruption::BadPayload)
}

/// Decodes (with validation) a meta log payload into an owned event — what
/// `ringlog inspect meta` prints.
pub fn decode_event(payload: &[u8]) -> Result<MetaEvent, Corruption> {
    let archived = access_event(payload)?;
    rkyv::deserialize::<MetaEvent, rkyv::rancor::Failure>(archived)
        .map_err(|_| Corruption::BadPayload)
}

impl MetaEvent {
    /// The topic the event is about, if it is about one.
    pub fn topic(&self) -> Option<&str> {
        match self {
            MetaEvent::TopicCreated(e) => Some(&e.name),
            MetaEvent::TopicDeleted(e) => Some(&e.name),
            MetaEvent::TopicConfigChanged(e) => Some(&e.name),
            MetaEvent::PartitionsAdded(e) => Some(&e.name),
            MetaEvent::PartitionPlaced(e) => Some(&e.topic),
            MetaEvent::ProducerIdBlock(_) => None,
        }
    }
}

/// Formats a topic id as 32 lowercase hex digits.
pub fn format_topic_id(topic_id: &[u8; 16]) -> String {
    topic_id.iter().map(|b| format!("{b:02x}")).collect()
}

struct Pairs<'a>(&'a [(String, String)]);

impl fmt::Display for Pairs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{key:?}={value:?}")?;
        }
        f.write_str("}")
    }
}

/// One line per event, strings quoted and escaped (payloads come from disk
/// and may hold anything):
///
/// ```
/// use ringlog_engine::meta::{MetaEvent, PartitionPlaced};
/// let event = MetaEvent::PartitionPlaced(PartitionPlaced { topic: "orders".into(), partition: 2, shard: 1 });
/// assert_eq!(event.to_string(), r#"partition-placed topic="orders" partition=2 shard=1"#);
/// ```
impl fmt::Display for MetaEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaEvent::TopicCreated(e) => write!(
                f,
                "topic-created topic={:?} id={} partitions={} configs={}",
                e.name,
                format_topic_id(&e.topic_id),
                e.partitions,
                Pairs(&e.configs)
            ),
            MetaEvent::TopicDeleted(e) => write!(f, "topic-deleted topic={:?}", e.name),
            MetaEvent::TopicConfigChanged(e) => write!(
                f,
                "topic-config-changed topic={:?} set={} remove={:?}",
                e.name,
                Pairs(&e.set),
                e.remove
            ),
            MetaEvent::PartitionsAdded(e) => {
                write!(
                    f,
                    "partitions-added topic={:?} new_total={}",
                    e.name, e.new_total
                )
            }
            MetaEvent::PartitionPlaced(e) => write!(
                f,
                "partition-placed topic={:?} partition={} shard={}",
                e.topic, e.partition, e.shard
            ),
            MetaEvent::ProducerIdBlock(e) => {
                write!(f, "producer-id-block block_end={}", e.block_end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<MetaEvent> {
        vec![
            MetaEvent::TopicCreated(TopicCreated {
                name: "orders".into(),
                topic_id: [7; 16],
                partitions: 3,
                configs: vec![("retention.ms".into(), "1000".into())],
            }),
            MetaEvent::TopicDeleted(TopicDeleted {
                name: "orders".into(),
            }),
            MetaEvent::TopicConfigChanged(TopicConfigChanged {
                name: "orders".into(),
                set: vec![("a".into(), "b".into())],
                remove: vec!["c".into()],
            }),
            MetaEvent::PartitionsAdded(PartitionsAdded {
                name: "orders".into(),
                new_total: 9,
            }),
            MetaEvent::PartitionPlaced(PartitionPlaced {
                topic: "orders".into(),
                partition: 2,
                shard: 1,
            }),
            MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end: 2000 }),
        ]
    }

    #[test]
    fn events_round_trip_at_any_buffer_position() {
        for event in samples() {
            let bytes = encode_event(&event).expect("encode");
            assert_eq!(decode_event(&bytes), Ok(event.clone()));
            // Unaligned: the same payload one byte into a buffer.
            let mut shifted = vec![0u8];
            shifted.extend_from_slice(&bytes);
            assert_eq!(decode_event(&shifted[1..]), Ok(event));
        }
    }

    /// The tag byte is the variant's position: pins the on-disk numbering.
    #[test]
    fn variant_tags_are_stable() {
        for (tag, event) in samples().iter().enumerate() {
            let bytes = encode_event(event).expect("encode");
            assert_eq!(
                bytes[bytes.len() - ARCHIVED_EVENT_BYTES] as usize,
                tag,
                "{event}"
            );
        }
    }

    #[test]
    fn garbage_and_unknown_tags_are_bad_payload() {
        assert_eq!(decode_event(&[]), Err(Corruption::BadPayload));
        assert_eq!(decode_event(&[1, 2, 3]), Err(Corruption::BadPayload));
        let mut bytes = encode_event(&samples()[0]).expect("encode");
        let tag_at = bytes.len() - ARCHIVED_EVENT_BYTES;
        bytes[tag_at] = 200;
        assert_eq!(decode_event(&bytes), Err(Corruption::BadPayload));
        let mut bytes = encode_event(&samples()[0]).expect("encode");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40; // relative pointer now points outside the buffer
        assert_eq!(decode_event(&bytes), Err(Corruption::BadPayload));
    }

    #[test]
    fn display_escapes_strings() {
        let event = MetaEvent::TopicConfigChanged(TopicConfigChanged {
            name: "t\n".into(),
            set: vec![("k".into(), "v\"".into())],
            remove: vec!["r".into()],
        });
        assert_eq!(
            event.to_string(),
            r#"topic-config-changed topic="t\n" set={"k"="v\""} remove=["r"]"#
        );
        assert!(samples()[0]
            .to_string()
            .contains("id=07070707070707070707070707070707"));
    }
}
