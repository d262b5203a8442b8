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

use super::acl::AclBinding;
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

/// One partition's committed position in an [`OffsetsCommitted`] event.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommit {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch the client saw (-1 when unknown).
    pub leader_epoch: i32,
    /// The client's metadata string (at most [`OFFSET_METADATA_BYTES_MAX`]).
    pub metadata: String,
}

/// Longest metadata string of one committed offset (Kafka's
/// `offset.metadata.max.bytes` default).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
/// Longest group id this broker accepts. Kafka sets no limit; ids become
/// map keys in every shard's replica, so one is set.
pub const GROUP_ID_BYTES_MAX: usize = 1024;

/// A group committed offsets (Kafka OffsetCommit).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OffsetsCommitted {
    /// Group id.
    pub group: String,
    /// When the coordinator accepted the commit (ms since the epoch); the
    /// base of offset retention for groups without members.
    pub commit_ms: i64,
    /// At least one partition; a partition named twice keeps the last.
    pub offsets: Vec<OffsetCommit>,
}

/// Committed offsets removed (Kafka OffsetDelete, or retention expiry).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OffsetsDeleted {
    /// Group id.
    pub group: String,
    /// Topic and partition of each removed offset; absent ones are no-ops.
    pub partitions: Vec<(String, u32)>,
}

/// One member of a stored group generation.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupMemberRecord {
    /// Member id the coordinator issued.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Client id of the member's connection.
    pub client_id: String,
    /// Client host (peer address) of the member's connection.
    pub client_host: String,
    /// Session timeout the member asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout the member asked for.
    pub rebalance_timeout_ms: i32,
    /// The member's metadata for the chosen protocol (opaque).
    pub subscription: Vec<u8>,
    /// The assignment the leader gave the member (opaque).
    pub assignment: Vec<u8>,
}

/// A group's membership at a generation: written when a generation
/// becomes stable and when the group empties, so a restarted coordinator
/// resumes the generation instead of forcing every member to rejoin.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupStored {
    /// Group id.
    pub group: String,
    /// Generation id; never lower than the stored one.
    pub generation: i32,
    /// Protocol type (`consumer` for consumer groups); empty if none yet.
    pub protocol_type: String,
    /// The protocol every member supports that was chosen (e.g. `range`);
    /// empty for an empty group.
    pub protocol: String,
    /// Leader member id; empty for an empty group.
    pub leader: String,
    /// When the group reached this state (ms since the epoch); for an
    /// empty group, the base of offset retention.
    pub state_ms: i64,
    /// Members with their assignments; empty when the group emptied.
    pub members: Vec<GroupMemberRecord>,
}

/// A group and all its offsets were removed (Kafka DeleteGroups).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupDeleted {
    /// Group id.
    pub group: String,
}

/// A sealed segment's archive is in the object store: written, and
/// acknowledged by the store, before this event is appended. An archive
/// object without this event is an orphan: never served, removed.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSealed {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Object key, relative to the store's root (at most
    /// [`ARCHIVE_KEY_BYTES_MAX`] bytes).
    pub key: String,
    /// First offset in the archive.
    pub first_offset: u64,
    /// Last offset in the archive (>= `first_offset`).
    pub last_offset: u64,
    /// Smallest record batch timestamp in it (ms).
    pub min_timestamp_ms: i64,
    /// Largest record batch timestamp in it (ms).
    pub max_timestamp_ms: i64,
    /// Object size in bytes.
    pub bytes: u64,
    /// Where its footer starts, so a reader needs no tail read.
    pub footer_offset: u64,
    /// Footer length in bytes.
    pub footer_bytes: u32,
}

/// Longest archive object key.
pub const ARCHIVE_KEY_BYTES_MAX: usize = 1024;

/// The archived part of a partition now starts at `log_start_offset`
/// (retention or DeleteRecords): archives wholly below it are gone from
/// the metadata, and the caller deletes their objects after this event.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ArchivesTrimmed {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The first offset still readable; never lower than before.
    pub log_start_offset: u64,
}

/// The broker started with `shards` shards. Recorded when the count
/// differs from the last start's, so `--core-balancing on-change` knows a
/// change when it sees one.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ShardsStarted {
    /// Shards of this start, at least 1.
    pub shards: u32,
}

/// A user's salted SCRAM credential for one mechanism was set (created or
/// replaced): what SASL/SCRAM and PLAIN authenticate against. The
/// password is never stored, only what RFC 5802 derives from it.
#[derive(Archive, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct UserScramCredential {
    /// User name (the principal is `User:<user>`).
    pub user: String,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The PBKDF2 salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

/// The name of one part of a client-quota entity (Kafka's
/// `ClientQuotaEntity`): a named user or client id, or the type's default
/// entity (Kafka's `<default>`, a null name on the wire), whose quota
/// applies to every name that has none of its own.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[rkyv(derive(PartialEq, Eq, PartialOrd, Ord))]
pub enum QuotaName {
    /// The default entity of the type.
    Default,
    /// One user or client id (a client id may be empty).
    Named(String),
}

/// A client-quota entity: a user, a client id, or both (at least one).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[rkyv(derive(PartialEq, Eq, PartialOrd, Ord))]
pub struct QuotaEntity {
    /// The `user` part (the principal's name without `User:`).
    pub user: Option<QuotaName>,
    /// The `client-id` part.
    pub client_id: Option<QuotaName>,
}

/// One entity's client quotas changed (AlterClientQuotas): `remove`
/// first, then `set`. Values are stored as the bits of Kafka's f64
/// (`f64::to_bits`), so events stay `Eq`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClientQuotasAltered {
    /// The entity the quotas belong to.
    pub entity: QuotaEntity,
    /// `(key, f64 bits)`: `producer_byte_rate`, `consumer_byte_rate`,
    /// `request_percentage`.
    pub set: Vec<(String, u64)>,
    /// Keys whose quota is removed.
    pub remove: Vec<String>,
}

/// Keys are password equivalents for SCRAM: never printed.
impl fmt::Debug for UserScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserScramCredential")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Kafka's spelling: `user=alice,client-id=<default>`.
impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [("user", &self.user), ("client-id", &self.client_id)];
        let mut first = true;
        for (kind, name) in parts {
            let Some(name) = name else { continue };
            if !first {
                f.write_str(",")?;
            }
            first = false;
            match name {
                QuotaName::Default => write!(f, "{kind}=<default>")?,
                QuotaName::Named(name) => write!(f, "{kind}={name:?}")?,
            }
        }
        Ok(())
    }
}

/// ACL bindings were created (Kafka CreateAcls); one already held is a
/// no-op (bindings are a set).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AclsCreated {
    /// 1 to [`super::ACL_BINDINGS_PER_EVENT_MAX`] well-formed bindings.
    pub bindings: Vec<AclBinding>,
}

/// ACL bindings were deleted (Kafka DeleteAcls): the exact bindings the
/// filters matched; one not held is a no-op.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AclsDeleted {
    /// 1 to [`super::ACL_BINDINGS_PER_EVENT_MAX`] bindings.
    pub bindings: Vec<AclBinding>,
}

/// A user's SCRAM credential for one mechanism was removed
/// (AlterUserScramCredentials' deletion): new authentications with it
/// fail; connections it already authenticated stay (as in Kafka). The
/// credential must exist.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserScramCredentialDeleted {
    /// User name.
    pub user: String,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
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
    OffsetsCommitted(#[rkyv(with = AsBox)] OffsetsCommitted),
    /// Tag 6.
    OffsetsDeleted(#[rkyv(with = AsBox)] OffsetsDeleted),
    /// Tag 7.
    GroupStored(#[rkyv(with = AsBox)] GroupStored),
    /// Tag 8.
    GroupDeleted(#[rkyv(with = AsBox)] GroupDeleted),
    /// Tag 9.
    ProducerIdBlock(#[rkyv(with = AsBox)] ProducerIdBlock),
    /// Tag 10.
    ArchiveSealed(#[rkyv(with = AsBox)] ArchiveSealed),
    /// Tag 11.
    ArchivesTrimmed(#[rkyv(with = AsBox)] ArchivesTrimmed),
    /// Tag 12.
    ShardsStarted(#[rkyv(with = AsBox)] ShardsStarted),
    /// Tag 13.
    UserScramCredential(#[rkyv(with = AsBox)] UserScramCredential),
    /// Tag 14.
    ClientQuotasAltered(#[rkyv(with = AsBox)] ClientQuotasAltered),
    /// Tag 15.
    AclsCreated(#[rkyv(with = AsBox)] AclsCreated),
    /// Tag 16.
    AclsDeleted(#[rkyv(with = AsBox)] AclsDeleted),
    /// Tag 17.
    UserScramCredentialDeleted(#[rkyv(with = AsBox)] UserScramCredentialDeleted),
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
    /// The topic the event is about; `None` for group events.
    pub fn topic(&self) -> Option<&str> {
        match self {
            MetaEvent::TopicCreated(e) => Some(&e.name),
            MetaEvent::TopicDeleted(e) => Some(&e.name),
            MetaEvent::TopicConfigChanged(e) => Some(&e.name),
            MetaEvent::PartitionsAdded(e) => Some(&e.name),
            MetaEvent::PartitionPlaced(e) => Some(&e.topic),
            MetaEvent::ArchiveSealed(e) => Some(&e.topic),
            MetaEvent::ArchivesTrimmed(e) => Some(&e.topic),
            MetaEvent::OffsetsCommitted(_)
            | MetaEvent::OffsetsDeleted(_)
            | MetaEvent::GroupStored(_)
            | MetaEvent::GroupDeleted(_)
            | MetaEvent::ProducerIdBlock(_)
            | MetaEvent::ShardsStarted(_)
            | MetaEvent::UserScramCredential(_)
            | MetaEvent::ClientQuotasAltered(_)
            | MetaEvent::AclsCreated(_)
            | MetaEvent::AclsDeleted(_)
            | MetaEvent::UserScramCredentialDeleted(_) => None,
        }
    }

    /// The group the event is about; `None` for topic events.
    pub fn group(&self) -> Option<&str> {
        match self {
            MetaEvent::OffsetsCommitted(e) => Some(&e.group),
            MetaEvent::OffsetsDeleted(e) => Some(&e.group),
            MetaEvent::GroupStored(e) => Some(&e.group),
            MetaEvent::GroupDeleted(e) => Some(&e.group),
            _ => None,
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
            MetaEvent::ArchiveSealed(e) => write!(
                f,
                "archive-sealed topic={:?} partition={} key={:?} offsets={}..={} timestamps={}..={} bytes={} footer={}+{}",
                e.topic,
                e.partition,
                e.key,
                e.first_offset,
                e.last_offset,
                e.min_timestamp_ms,
                e.max_timestamp_ms,
                e.bytes,
                e.footer_offset,
                e.footer_bytes
            ),
            MetaEvent::ArchivesTrimmed(e) => write!(
                f,
                "archives-trimmed topic={:?} partition={} log_start={}",
                e.topic, e.partition, e.log_start_offset
            ),
            MetaEvent::ShardsStarted(e) => write!(f, "shards-started shards={}", e.shards),
            MetaEvent::UserScramCredential(e) => write!(
                f,
                "user-scram-credential user={:?} mechanism={:?} iterations={} salt_bytes={}",
                e.user,
                e.mechanism,
                e.iterations,
                e.salt.len()
            ),
            MetaEvent::ClientQuotasAltered(e) => {
                write!(f, "client-quotas-altered entity={}", e.entity)?;
                for (key, bits) in &e.set {
                    write!(f, " {key:?}={}", f64::from_bits(*bits))?;
                }
                write!(f, " remove={:?}", e.remove)
            }
            MetaEvent::AclsCreated(e) => {
                f.write_str("acls-created")?;
                for binding in &e.bindings {
                    write!(f, " [{binding}]")?;
                }
                Ok(())
            }
            MetaEvent::AclsDeleted(e) => {
                f.write_str("acls-deleted")?;
                for binding in &e.bindings {
                    write!(f, " [{binding}]")?;
                }
                Ok(())
            }
            MetaEvent::UserScramCredentialDeleted(e) => write!(
                f,
                "user-scram-credential-deleted user={:?} mechanism={:?}",
                e.user, e.mechanism
            ),
            MetaEvent::OffsetsCommitted(e) => {
                write!(
                    f,
                    "offsets-committed group={:?} at_ms={}",
                    e.group, e.commit_ms
                )?;
                for o in &e.offsets {
                    write!(
                        f,
                        " {:?}/{}={} epoch={} metadata={:?}",
                        o.topic, o.partition, o.offset, o.leader_epoch, o.metadata
                    )?;
                }
                Ok(())
            }
            MetaEvent::OffsetsDeleted(e) => {
                write!(f, "offsets-deleted group={:?}", e.group)?;
                for (topic, partition) in &e.partitions {
                    write!(f, " {topic:?}/{partition}")?;
                }
                Ok(())
            }
            MetaEvent::GroupStored(e) => {
                write!(
                    f,
                    "group-stored group={:?} generation={} protocol_type={:?} protocol={:?} leader={:?} at_ms={} members=[",
                    e.group, e.generation, e.protocol_type, e.protocol, e.leader, e.state_ms
                )?;
                for (i, m) in e.members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(
                        f,
                        "{:?} instance={:?} client={:?}@{:?} assignment_bytes={}",
                        m.member_id,
                        m.instance_id,
                        m.client_id,
                        m.client_host,
                        m.assignment.len()
                    )?;
                }
                f.write_str("]")
            }
            MetaEvent::GroupDeleted(e) => write!(f, "group-deleted group={:?}", e.group),
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
            MetaEvent::OffsetsCommitted(OffsetsCommitted {
                group: "g".into(),
                commit_ms: 5,
                offsets: vec![OffsetCommit {
                    topic: "orders".into(),
                    partition: 1,
                    offset: 42,
                    leader_epoch: -1,
                    metadata: "m".into(),
                }],
            }),
            MetaEvent::OffsetsDeleted(OffsetsDeleted {
                group: "g".into(),
                partitions: vec![("orders".into(), 1)],
            }),
            MetaEvent::GroupStored(GroupStored {
                group: "g".into(),
                generation: 3,
                protocol_type: "consumer".into(),
                protocol: "range".into(),
                leader: "m-1".into(),
                state_ms: 9,
                members: vec![GroupMemberRecord {
                    member_id: "m-1".into(),
                    instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    session_timeout_ms: 10_000,
                    rebalance_timeout_ms: 30_000,
                    subscription: vec![1, 2],
                    assignment: vec![3],
                }],
            }),
            MetaEvent::GroupDeleted(GroupDeleted { group: "g".into() }),
            MetaEvent::ProducerIdBlock(ProducerIdBlock { block_end: 2000 }),
            MetaEvent::ArchiveSealed(ArchiveSealed {
                topic: "orders".into(),
                partition: 1,
                key: "topics/07/1/0-99.rla".into(),
                first_offset: 0,
                last_offset: 99,
                min_timestamp_ms: 10,
                max_timestamp_ms: 20,
                bytes: 5000,
                footer_offset: 4800,
                footer_bytes: 150,
            }),
            MetaEvent::ArchivesTrimmed(ArchivesTrimmed {
                topic: "orders".into(),
                partition: 1,
                log_start_offset: 50,
            }),
            MetaEvent::ShardsStarted(ShardsStarted { shards: 3 }),
            MetaEvent::UserScramCredential(UserScramCredential {
                user: "alice".into(),
                mechanism: "SCRAM-SHA-256".into(),
                salt: vec![1; 32],
                iterations: 4096,
                stored_key: vec![2; 32],
                server_key: vec![3; 32],
            }),
            MetaEvent::ClientQuotasAltered(ClientQuotasAltered {
                entity: QuotaEntity {
                    user: Some(QuotaName::Named("alice".into())),
                    client_id: Some(QuotaName::Default),
                },
                set: vec![("producer_byte_rate".into(), 1_048_576f64.to_bits())],
                remove: vec!["request_percentage".into()],
            }),
            MetaEvent::AclsCreated(AclsCreated {
                bindings: vec![acl_sample()],
            }),
            MetaEvent::AclsDeleted(AclsDeleted {
                bindings: vec![acl_sample()],
            }),
            MetaEvent::UserScramCredentialDeleted(UserScramCredentialDeleted {
                user: "alice".into(),
                mechanism: "SCRAM-SHA-256".into(),
            }),
        ]
    }

    fn acl_sample() -> AclBinding {
        use crate::meta::{AclOperation, AclPatternType, AclPermission, AclResourceType};
        AclBinding {
            resource_type: AclResourceType::Topic,
            pattern_type: AclPatternType::Prefixed,
            name: "orders-".into(),
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn acl_events_display_their_bindings() {
        let event = MetaEvent::AclsCreated(AclsCreated {
            bindings: vec![acl_sample()],
        });
        assert_eq!(
            event.to_string(),
            r#"acls-created [TOPIC PREFIXED "orders-" principal="User:alice" host="*" ALLOW WRITE]"#
        );
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
        assert_eq!(
            samples()
                .iter()
                .find(|e| matches!(e, MetaEvent::ClientQuotasAltered(_)))
                .expect("a quota sample")
                .to_string(),
            r#"client-quotas-altered entity=user="alice",client-id=<default> "producer_byte_rate"=1048576 remove=["request_percentage"]"#
        );
        assert_eq!(
            samples()
                .iter()
                .find(|e| matches!(e, MetaEvent::UserScramCredentialDeleted(_)))
                .expect("a deletion sample")
                .to_string(),
            r#"user-scram-credential-deleted user="alice" mechanism="SCRAM-SHA-256""#
        );
    }
}
