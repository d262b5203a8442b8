//! The in-memory metadata state the meta log folds into, and the rules an
//! event must satisfy to be applied.
//!
//! Validation and application work on the *archived* event, so the live
//! append path, replay from disk and (later) followers on other shards run
//! the same code, and replay allocates only for the strings it keeps.

use super::acl::{check_binding, AclBinding, Acls, ACLS_MAX, ACL_BINDINGS_PER_EVENT_MAX};
use super::event::{
    encode_event, ArchivedClientQuotasAltered, ArchivedMetaEvent, GroupMemberRecord, MetaEvent,
    ARCHIVE_KEY_BYTES_MAX, GROUP_ID_BYTES_MAX, OFFSET_METADATA_BYTES_MAX,
};
use super::quota::{check_quota_change, resolve, ClientQuotaMap};
use super::{QuotaEntity, QuotaName};
use crate::error::{Error, Result};
use rkyv::with::Skip;
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Largest partition count of one topic. Bounds the placement vector a
/// single event can make the state allocate.
pub const PARTITIONS_MAX: u32 = 1 << 20;
/// Longest topic name (Kafka's limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Largest producer id block end: ids are `i64` on the wire.
pub const PRODUCER_ID_BLOCK_END_MAX: u64 = i64::MAX as u64;
/// Longest user name of a SCRAM credential (bytes).
pub const USER_NAME_BYTES_MAX: usize = 256;
/// Fewest PBKDF2 iterations a stored SCRAM credential may have (Kafka's
/// minimum).
pub const SCRAM_ITERATIONS_MIN: u32 = 4096;
/// Most PBKDF2 iterations a stored SCRAM credential may have (Kafka's
/// maximum): bounds the work one PLAIN authentication costs the broker.
pub const SCRAM_ITERATIONS_MAX: u32 = 16384;
/// Largest salt of a stored SCRAM credential.
pub const SCRAM_SALT_BYTES_MAX: usize = 64;

/// The key size of a SCRAM mechanism by its name; `None` for any other
/// name.
pub fn scram_key_bytes(mechanism: &str) -> Option<usize> {
    match mechanism {
        "SCRAM-SHA-256" => Some(32),
        "SCRAM-SHA-512" => Some(64),
        _ => None,
    }
}

/// A user name: 1 to [`USER_NAME_BYTES_MAX`] bytes, no control characters
/// (names appear in log lines and principals).
pub fn check_user_name(user: &str) -> std::result::Result<(), String> {
    if user.is_empty() || user.len() > USER_NAME_BYTES_MAX || user.chars().any(char::is_control) {
        return Err(format!(
            "invalid user name {user:?}: 1-{USER_NAME_BYTES_MAX} bytes, no control characters"
        ));
    }
    Ok(())
}

/// One user's salted SCRAM credential for one mechanism (see
/// [`super::UserScramCredential`]).
#[derive(Archive, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The PBKDF2 salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

/// Keys are password equivalents for SCRAM: never printed.
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .field("salt_bytes", &self.salt.len())
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Whether this is a well-formed credential of `mechanism`.
    fn check(&self, user: &str, mechanism: &str) -> std::result::Result<(), String> {
        check_user_name(user)?;
        let Some(keys) = scram_key_bytes(mechanism) else {
            return Err(format!(
                "user {user:?}: {mechanism:?} is not SCRAM-SHA-256 or SCRAM-SHA-512"
            ));
        };
        if self.salt.is_empty()
            || self.salt.len() > SCRAM_SALT_BYTES_MAX
            || !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&self.iterations)
            || self.stored_key.len() != keys
            || self.server_key.len() != keys
        {
            return Err(format!(
                "user {user:?}: not a {mechanism} credential (salt 1-{SCRAM_SALT_BYTES_MAX} bytes, iterations {SCRAM_ITERATIONS_MIN}..={SCRAM_ITERATIONS_MAX}, keys of {keys} bytes)"
            ));
        }
        Ok(())
    }
}

/// One topic's metadata.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    /// Kafka topic id (UUID bytes).
    pub topic_id: [u8; 16],
    /// Owning shard of each partition, indexed by partition; `None` until
    /// placed.
    pub partitions: Vec<Option<u32>>,
    /// Topic-level configuration overrides.
    pub configs: BTreeMap<String, String>,
}

/// A committed offset as the state keeps it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch the client saw (-1 when unknown).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_ms: i64,
}

/// A group's stored membership (see [`super::GroupStored`]).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// Generation id.
    pub generation: i32,
    /// Protocol type; empty if none yet.
    pub protocol_type: String,
    /// Chosen protocol; empty for an empty group.
    pub protocol: String,
    /// Leader member id; empty for an empty group.
    pub leader: String,
    /// When the group reached this state (ms since the epoch).
    pub state_ms: i64,
    /// Members and their assignments.
    pub members: Vec<GroupMemberRecord>,
}

/// What the meta log knows of one consumer group: its last stored
/// generation and its committed offsets (topic -> partition -> offset).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupState {
    /// The last stored generation; `None` for a group that only committed
    /// offsets (a "simple" consumer or an admin tool).
    pub record: Option<GroupRecord>,
    /// Committed offsets.
    pub offsets: BTreeMap<String, BTreeMap<u32, CommittedOffset>>,
}

impl GroupState {
    /// Number of committed offsets.
    pub fn offset_count(&self) -> usize {
        self.offsets.values().map(BTreeMap::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.record.is_none() && self.offsets.is_empty()
    }
}

/// Kafka's group id rule (non-empty) plus this broker's length bound.
pub fn check_group_id(group: &str) -> std::result::Result<(), String> {
    if group.is_empty() || group.len() > GROUP_ID_BYTES_MAX {
        return Err(format!(
            "invalid group id {group:?}: 1-{GROUP_ID_BYTES_MAX} bytes"
        ));
    }
    Ok(())
}

/// One recorded archive (see [`super::ArchiveSealed`]).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// Object key.
    pub key: String,
    /// First offset in it.
    pub first_offset: u64,
    /// Last offset in it.
    pub last_offset: u64,
    /// Smallest batch timestamp (ms).
    pub min_timestamp_ms: i64,
    /// Largest batch timestamp (ms).
    pub max_timestamp_ms: i64,
    /// Object size in bytes.
    pub bytes: u64,
    /// Where its footer starts.
    pub footer_offset: u64,
    /// Footer length in bytes.
    pub footer_bytes: u32,
}

/// The archives of one partition.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionArchives {
    /// The first offset still readable from archives (records below it
    /// were deleted by retention or DeleteRecords).
    pub log_start_offset: u64,
    /// Archives by first offset; their offset ranges never overlap.
    pub archives: BTreeMap<u64, ArchiveRecord>,
}

impl PartitionArchives {
    /// The archive holding `offset`, if any.
    pub fn holding(&self, offset: u64) -> Option<&ArchiveRecord> {
        let (_, archive) = self.archives.range(..=offset).next_back()?;
        (offset <= archive.last_offset).then_some(archive)
    }

    /// One past the last archived offset (0 if none).
    pub fn end_offset(&self) -> u64 {
        self.archives
            .values()
            .next_back()
            .map_or(0, |a| a.last_offset + 1)
    }
}

/// Everything the meta log has applied: the fold of events
/// `0..applied_offset`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaState {
    applied_offset: u64,
    /// Producer ids below this are allocated ([`MetaEvent::ProducerIdBlock`]).
    producer_id_block_end: u64,
    topics: BTreeMap<String, TopicState>,
    groups: BTreeMap<String, GroupState>,
    /// Archived segments, by topic and partition (snapshot version 3).
    archives: BTreeMap<String, BTreeMap<u32, PartitionArchives>>,
    /// Shards of the last start that recorded one; 0 if none did (a data
    /// directory of an older build).
    started_shards: u32,
    /// SCRAM credentials by user and mechanism name (snapshot version 4).
    users: BTreeMap<String, BTreeMap<String, ScramCredential>>,
    /// Client quotas by entity and key, values as f64 bits (snapshot
    /// version 5).
    quotas: ClientQuotaMap,
    /// ACL bindings (snapshot version 5).
    acls: Acls,
    /// Derived index topic id -> name; not snapshotted, rebuilt on load.
    #[rkyv(with = Skip)]
    topic_ids: HashMap<[u8; 16], String>,
}

/// The metadata state as snapshot version 4 stored it (before client
/// quotas and ACLs): read, then converted, so a data directory of an
/// older build loads.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetaStateV4 {
    applied_offset: u64,
    producer_id_block_end: u64,
    topics: BTreeMap<String, TopicState>,
    groups: BTreeMap<String, GroupState>,
    archives: BTreeMap<String, BTreeMap<u32, PartitionArchives>>,
    started_shards: u32,
    users: BTreeMap<String, BTreeMap<String, ScramCredential>>,
}

impl From<MetaStateV4> for MetaState {
    fn from(v4: MetaStateV4) -> Self {
        MetaState {
            applied_offset: v4.applied_offset,
            producer_id_block_end: v4.producer_id_block_end,
            topics: v4.topics,
            groups: v4.groups,
            archives: v4.archives,
            started_shards: v4.started_shards,
            users: v4.users,
            quotas: ClientQuotaMap::new(),
            acls: Acls::default(),
            topic_ids: HashMap::new(),
        }
    }
}

/// The metadata state as snapshot version 3 stored it (before SCRAM
/// credentials): read, then converted, so a data directory of an older
/// build loads.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetaStateV3 {
    applied_offset: u64,
    producer_id_block_end: u64,
    topics: BTreeMap<String, TopicState>,
    groups: BTreeMap<String, GroupState>,
    archives: BTreeMap<String, BTreeMap<u32, PartitionArchives>>,
    started_shards: u32,
}

impl From<MetaStateV3> for MetaState {
    fn from(v3: MetaStateV3) -> Self {
        MetaState {
            applied_offset: v3.applied_offset,
            producer_id_block_end: v3.producer_id_block_end,
            topics: v3.topics,
            groups: v3.groups,
            archives: v3.archives,
            started_shards: v3.started_shards,
            users: BTreeMap::new(),
            quotas: ClientQuotaMap::new(),
            acls: Acls::default(),
            topic_ids: HashMap::new(),
        }
    }
}

/// The metadata state as snapshot version 2 stored it (before archives):
/// read, then converted, so a data directory of an older build loads.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetaStateV2 {
    applied_offset: u64,
    producer_id_block_end: u64,
    topics: BTreeMap<String, TopicState>,
    groups: BTreeMap<String, GroupState>,
}

impl From<MetaStateV2> for MetaState {
    fn from(v2: MetaStateV2) -> Self {
        MetaState {
            applied_offset: v2.applied_offset,
            producer_id_block_end: v2.producer_id_block_end,
            topics: v2.topics,
            groups: v2.groups,
            archives: BTreeMap::new(),
            started_shards: 0,
            users: BTreeMap::new(),
            quotas: ClientQuotaMap::new(),
            acls: Acls::default(),
            topic_ids: HashMap::new(),
        }
    }
}

/// The bindings of an ACL event: 1 to [`ACL_BINDINGS_PER_EVENT_MAX`].
fn archived_bindings(
    bindings: &rkyv::vec::ArchivedVec<super::acl::ArchivedAclBinding>,
) -> std::result::Result<Vec<AclBinding>, String> {
    if bindings.is_empty() || bindings.len() > ACL_BINDINGS_PER_EVENT_MAX {
        return Err(format!(
            "an ACL event of {} bindings, 1-{ACL_BINDINGS_PER_EVENT_MAX}",
            bindings.len()
        ));
    }
    Ok(bindings
        .iter()
        .map(|b| {
            rkyv::deserialize::<AclBinding, rkyv::rancor::Failure>(b)
                .expect("validated archive deserializes")
        })
        .collect())
}

fn archived_credential(e: &super::event::ArchivedUserScramCredential) -> ScramCredential {
    ScramCredential {
        salt: e.salt.to_vec(),
        iterations: e.iterations.to_native(),
        stored_key: e.stored_key.to_vec(),
        server_key: e.server_key.to_vec(),
    }
}

/// An archived quota change as owned values: the entity, the keys set
/// with their values, the keys removed.
fn quota_change(e: &ArchivedClientQuotasAltered) -> (QuotaEntity, Vec<(String, f64)>, Vec<String>) {
    let name = |name: &rkyv::option::ArchivedOption<super::event::ArchivedQuotaName>| {
        name.as_ref().map(|name| match name {
            super::event::ArchivedQuotaName::Default => QuotaName::Default,
            super::event::ArchivedQuotaName::Named(name) => QuotaName::Named(name.to_string()),
        })
    };
    let entity = QuotaEntity {
        user: name(&e.entity.user),
        client_id: name(&e.entity.client_id),
    };
    let set = e
        .set
        .iter()
        .map(|kv| (kv.0.to_string(), f64::from_bits(kv.1.to_native())))
        .collect();
    let remove = e.remove.iter().map(|key| key.to_string()).collect();
    (entity, set, remove)
}

/// Kafka's topic name rules; names become directory names, so this also
/// keeps path separators and `..` out of the data directory.
pub fn check_topic_name(name: &str) -> std::result::Result<(), String> {
    let legal = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > TOPIC_NAME_BYTES_MAX || !legal || name == "." || name == ".."
    {
        return Err(format!(
            "invalid topic name {name:?}: 1-{TOPIC_NAME_BYTES_MAX} characters of [a-zA-Z0-9._-], not '.' or '..'"
        ));
    }
    Ok(())
}

fn check_partition_count(topic: &str, count: u32) -> std::result::Result<(), String> {
    if count == 0 || count > PARTITIONS_MAX {
        return Err(format!(
            "topic {topic:?}: partition count {count} outside 1..={PARTITIONS_MAX}"
        ));
    }
    Ok(())
}

/// Config keys must be non-empty and unique within one list.
fn check_config_keys<'a>(
    topic: &str,
    keys: impl Iterator<Item = &'a str>,
) -> std::result::Result<(), String> {
    let mut seen = BTreeSet::new();
    for key in keys {
        if key.is_empty() {
            return Err(format!("topic {topic:?}: empty config key"));
        }
        if !seen.insert(key) {
            return Err(format!("topic {topic:?}: config key {key:?} given twice"));
        }
    }
    Ok(())
}

impl MetaState {
    /// The empty state (before offset 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// The offset of the next event to apply; every event below it is in
    /// this state.
    pub fn applied_offset(&self) -> u64 {
        self.applied_offset
    }

    /// One topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.topics.get(name)
    }

    /// One topic by Kafka topic id.
    pub fn topic_by_id(&self, topic_id: &[u8; 16]) -> Option<(&str, &TopicState)> {
        let name = self.topic_ids.get(topic_id)?;
        self.topics
            .get_key_value(name.as_str())
            .map(|(n, t)| (n.as_str(), t))
    }

    /// Every topic, in name order.
    pub fn topics(&self) -> impl Iterator<Item = (&str, &TopicState)> + '_ {
        self.topics.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of topics.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// A topic's partition count, `None` if the topic does not exist.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics.get(topic).map(|t| t.partitions.len() as u32)
    }

    /// The shard owning `topic`/`partition`; `None` if the partition does
    /// not exist or is not placed yet (tell the two apart with
    /// [`MetaState::partition_count`]).
    pub fn placement(&self, topic: &str, partition: u32) -> Option<u32> {
        *self.topics.get(topic)?.partitions.get(partition as usize)?
    }

    /// End (exclusive) of the producer ids allocated so far: the next
    /// block starts here, and no id below it is handed out again.
    pub fn producer_id_block_end(&self) -> u64 {
        self.producer_id_block_end
    }

    /// One group by id.
    pub fn group(&self, group: &str) -> Option<&GroupState> {
        self.groups.get(group)
    }

    /// Every group, in id order.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &GroupState)> + '_ {
        self.groups.iter().map(|(n, g)| (n.as_str(), g))
    }

    /// The SCRAM credential of `user` for `mechanism` (`SCRAM-SHA-256`,
    /// `SCRAM-SHA-512`), if stored.
    pub fn scram_credential(&self, user: &str, mechanism: &str) -> Option<&ScramCredential> {
        self.users.get(user)?.get(mechanism)
    }

    /// Every configured client quota entity and its values (f64 bits), in
    /// entity order.
    pub fn client_quotas(&self) -> &ClientQuotaMap {
        &self.quotas
    }

    /// The quota for `key` of a client with this user and client id, and
    /// the configured entity it comes from (Kafka's precedence: see
    /// [`super::quota::resolve`]).
    pub fn client_quota(
        &self,
        user: &str,
        client_id: &str,
        key: &str,
    ) -> Option<(&QuotaEntity, f64)> {
        resolve(&self.quotas, user, client_id, key)
    }

    /// Users with at least one SCRAM credential, by name.
    pub fn users(&self) -> impl Iterator<Item = &str> + '_ {
        self.users.keys().map(String::as_str)
    }

    /// Every ACL binding, indexed for the authorizer.
    pub fn acls(&self) -> &Acls {
        &self.acls
    }

    /// Shards of the last start that recorded its count, if one did.
    pub fn started_shards(&self) -> Option<u32> {
        (self.started_shards > 0).then_some(self.started_shards)
    }

    /// A partition's archives, if it has any (or had: the log start stays).
    pub fn archives(&self, topic: &str, partition: u32) -> Option<&PartitionArchives> {
        self.archives.get(topic)?.get(&partition)
    }

    /// Every partition with archives, by topic then partition.
    pub fn all_archives(&self) -> impl Iterator<Item = (&str, u32, &PartitionArchives)> + '_ {
        self.archives
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, a)| (t.as_str(), *p, a)))
    }

    /// A group's committed offset for a partition.
    pub fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Option<&CommittedOffset> {
        self.groups.get(group)?.offsets.get(topic)?.get(&partition)
    }

    /// Whether `event` may be applied to this state; the reason as
    /// [`Error::Rejected`] if not.
    pub fn check_event(&self, event: &MetaEvent) -> Result<()> {
        let bytes = encode_event(event).map_err(Error::Rejected)?;
        let archived = super::event::access_event(&bytes)
            .map_err(|c| Error::Rejected(format!("event fails its own encoding: {c}")))?;
        self.check_archived(archived).map_err(Error::Rejected)
    }

    /// Applies `event` as the event at `offset`, which must be
    /// [`MetaState::applied_offset`] — how a follower folds events the
    /// controller made durable. Nothing changes on error.
    pub fn apply_event(&mut self, offset: u64, event: &MetaEvent) -> Result<()> {
        let bytes = encode_event(event).map_err(Error::Rejected)?;
        let archived = super::event::access_event(&bytes)
            .map_err(|c| Error::Rejected(format!("event fails its own encoding: {c}")))?;
        self.apply_archived(offset, archived)
            .map_err(Error::Rejected)
    }

    /// Checks an archived event against this state without changing it.
    pub(crate) fn check_archived(
        &self,
        event: &ArchivedMetaEvent,
    ) -> std::result::Result<(), String> {
        match event {
            ArchivedMetaEvent::TopicCreated(e) => {
                let name = e.name.as_str();
                check_topic_name(name)?;
                if self.topics.contains_key(name) {
                    return Err(format!("topic {name:?} already exists"));
                }
                if e.topic_id == [0u8; 16] {
                    return Err(format!("topic {name:?}: the all-zero topic id is reserved"));
                }
                if let Some(other) = self.topic_ids.get(&e.topic_id) {
                    return Err(format!(
                        "topic {name:?}: topic id already used by topic {other:?}"
                    ));
                }
                check_partition_count(name, e.partitions.to_native())?;
                check_config_keys(name, e.configs.iter().map(|kv| kv.0.as_str()))
            }
            ArchivedMetaEvent::TopicDeleted(e) => {
                let name = e.name.as_str();
                if !self.topics.contains_key(name) {
                    return Err(format!("topic {name:?} does not exist"));
                }
                Ok(())
            }
            ArchivedMetaEvent::TopicConfigChanged(e) => {
                let name = e.name.as_str();
                if !self.topics.contains_key(name) {
                    return Err(format!("topic {name:?} does not exist"));
                }
                check_config_keys(name, e.set.iter().map(|kv| kv.0.as_str()))?;
                check_config_keys(name, e.remove.iter().map(|k| k.as_str()))?;
                if let Some(both) = e.remove.iter().find(|k| e.set.iter().any(|kv| kv.0 == **k)) {
                    return Err(format!(
                        "topic {name:?}: config key {:?} both set and removed",
                        both.as_str()
                    ));
                }
                Ok(())
            }
            ArchivedMetaEvent::PartitionsAdded(e) => {
                let name = e.name.as_str();
                let Some(topic) = self.topics.get(name) else {
                    return Err(format!("topic {name:?} does not exist"));
                };
                let new_total = e.new_total.to_native();
                let current = topic.partitions.len();
                if new_total as usize <= current {
                    return Err(format!(
                        "topic {name:?} has {current} partitions; the new total {new_total} must be larger"
                    ));
                }
                check_partition_count(name, new_total)
            }
            ArchivedMetaEvent::PartitionPlaced(e) => {
                let name = e.topic.as_str();
                let Some(topic) = self.topics.get(name) else {
                    return Err(format!("topic {name:?} does not exist"));
                };
                let partition = e.partition.to_native();
                if partition as usize >= topic.partitions.len() {
                    return Err(format!(
                        "topic {name:?} has no partition {partition} ({} partitions)",
                        topic.partitions.len()
                    ));
                }
                Ok(())
            }
            ArchivedMetaEvent::OffsetsCommitted(e) => {
                check_group_id(e.group.as_str())?;
                if e.offsets.is_empty() {
                    return Err(format!(
                        "group {:?}: a commit of no offsets",
                        e.group.as_str()
                    ));
                }
                for o in e.offsets.iter() {
                    check_topic_name(o.topic.as_str())?;
                    if o.metadata.len() > OFFSET_METADATA_BYTES_MAX {
                        return Err(format!(
                            "group {:?}: offset metadata of {} bytes, at most {OFFSET_METADATA_BYTES_MAX}",
                            e.group.as_str(),
                            o.metadata.len()
                        ));
                    }
                }
                Ok(())
            }
            ArchivedMetaEvent::OffsetsDeleted(e) => check_group_id(e.group.as_str()),
            ArchivedMetaEvent::GroupStored(e) => {
                let group = e.group.as_str();
                check_group_id(group)?;
                let generation = e.generation.to_native();
                let stored = self
                    .groups
                    .get(group)
                    .and_then(|g| g.record.as_ref())
                    .map(|r| r.generation);
                if generation < 0 || stored.is_some_and(|s| generation < s) {
                    return Err(format!(
                        "group {group:?}: generation {generation} is below the stored {stored:?}"
                    ));
                }
                let leader = e.leader.as_str();
                if !leader.is_empty() && !e.members.iter().any(|m| m.member_id == *leader) {
                    return Err(format!(
                        "group {group:?}: leader {leader:?} is not a member"
                    ));
                }
                Ok(())
            }
            ArchivedMetaEvent::GroupDeleted(e) => {
                if !self.groups.contains_key(e.group.as_str()) {
                    return Err(format!("group {:?} does not exist", e.group.as_str()));
                }
                Ok(())
            }
            ArchivedMetaEvent::ArchiveSealed(e) => {
                let topic = e.topic.as_str();
                let partition = e.partition.to_native();
                self.check_partition(topic, partition)?;
                let (first, last) = (e.first_offset.to_native(), e.last_offset.to_native());
                let key = e.key.as_str();
                if key.is_empty() || key.len() > ARCHIVE_KEY_BYTES_MAX {
                    return Err(format!(
                        "archive of {topic}-{partition}: key of {} bytes, 1-{ARCHIVE_KEY_BYTES_MAX}",
                        key.len()
                    ));
                }
                if first > last {
                    return Err(format!(
                        "archive {key:?}: first offset {first} after last offset {last}"
                    ));
                }
                let footer_end =
                    e.footer_offset.to_native() + u64::from(e.footer_bytes.to_native());
                if footer_end > e.bytes.to_native() {
                    return Err(format!(
                        "archive {key:?}: footer ends at byte {footer_end}, past its {} bytes",
                        e.bytes.to_native()
                    ));
                }
                if let Some(archives) = self.archives(topic, partition) {
                    if last < archives.log_start_offset {
                        return Err(format!(
                            "archive {key:?}: offsets {first}..={last} are below the log start {}",
                            archives.log_start_offset
                        ));
                    }
                    let overlapping = archives
                        .archives
                        .range(..=last)
                        .next_back()
                        .filter(|(_, a)| a.last_offset >= first);
                    if let Some((_, other)) = overlapping {
                        return Err(format!(
                            "archive {key:?}: offsets {first}..={last} overlap archive {:?} ({}..={})",
                            other.key, other.first_offset, other.last_offset
                        ));
                    }
                }
                Ok(())
            }
            ArchivedMetaEvent::ArchivesTrimmed(e) => {
                let topic = e.topic.as_str();
                let partition = e.partition.to_native();
                self.check_partition(topic, partition)?;
                let start = e.log_start_offset.to_native();
                let current = self
                    .archives(topic, partition)
                    .map_or(0, |a| a.log_start_offset);
                if start < current {
                    return Err(format!(
                        "{topic}-{partition}: archive log start {start} below the current {current}"
                    ));
                }
                Ok(())
            }
            ArchivedMetaEvent::UserScramCredential(e) => {
                archived_credential(e).check(e.user.as_str(), e.mechanism.as_str())
            }
            ArchivedMetaEvent::ClientQuotasAltered(e) => {
                let (entity, set, remove) = quota_change(e);
                check_quota_change(&entity, &set, &remove)
            }
            ArchivedMetaEvent::AclsCreated(e) => {
                let bindings = archived_bindings(&e.bindings)?;
                for binding in &bindings {
                    check_binding(binding)?;
                }
                let new = bindings.iter().filter(|b| !self.acls.contains(b)).count();
                if self.acls.len() + new > ACLS_MAX {
                    return Err(format!(
                        "{new} new ACL bindings would make {}, more than {ACLS_MAX}",
                        self.acls.len() + new
                    ));
                }
                Ok(())
            }
            ArchivedMetaEvent::AclsDeleted(e) => archived_bindings(&e.bindings).map(drop),
            ArchivedMetaEvent::UserScramCredentialDeleted(e) => {
                let (user, mechanism) = (e.user.as_str(), e.mechanism.as_str());
                if self.scram_credential(user, mechanism).is_none() {
                    return Err(format!("user {user:?} has no {mechanism:?} credential"));
                }
                Ok(())
            }
            ArchivedMetaEvent::ShardsStarted(e) => {
                if e.shards.to_native() == 0 {
                    return Err("a start with no shards".to_string());
                }
                Ok(())
            }
            ArchivedMetaEvent::ProducerIdBlock(e) => {
                let end = e.block_end.to_native();
                if end <= self.producer_id_block_end || end > PRODUCER_ID_BLOCK_END_MAX {
                    return Err(format!(
                        "producer id block end {end} must be above the current end {} and at most {PRODUCER_ID_BLOCK_END_MAX}",
                        self.producer_id_block_end
                    ));
                }
                Ok(())
            }
        }
    }

    fn check_partition(&self, topic: &str, partition: u32) -> std::result::Result<(), String> {
        let Some(state) = self.topics.get(topic) else {
            return Err(format!("topic {topic:?} does not exist"));
        };
        if partition as usize >= state.partitions.len() {
            return Err(format!(
                "topic {topic:?} has no partition {partition} ({} partitions)",
                state.partitions.len()
            ));
        }
        Ok(())
    }

    /// Checks and applies an archived event as the event at `offset`.
    /// Nothing changes on error.
    pub(crate) fn apply_archived(
        &mut self,
        offset: u64,
        event: &ArchivedMetaEvent,
    ) -> std::result::Result<(), String> {
        if offset != self.applied_offset {
            return Err(format!(
                "event at offset {offset}, expected offset {}",
                self.applied_offset
            ));
        }
        if let ArchivedMetaEvent::PartitionPlaced(e) = event {
            // The hot path of replay: one lookup for check and update.
            let name = e.topic.as_str();
            let partition = e.partition.to_native() as usize;
            let slot = self
                .topics
                .get_mut(name)
                .ok_or_else(|| format!("topic {name:?} does not exist"))?
                .partitions
                .get_mut(partition)
                .ok_or_else(|| format!("topic {name:?} has no partition {partition}"))?;
            *slot = Some(e.shard.to_native());
            self.applied_offset += 1;
            return Ok(());
        }
        self.check_archived(event)?;
        match event {
            ArchivedMetaEvent::TopicCreated(e) => {
                let topic = TopicState {
                    topic_id: e.topic_id,
                    partitions: vec![None; e.partitions.to_native() as usize],
                    configs: e
                        .configs
                        .iter()
                        .map(|kv| (kv.0.to_string(), kv.1.to_string()))
                        .collect(),
                };
                let name = e.name.to_string();
                self.topic_ids.insert(e.topic_id, name.clone());
                let previous = self.topics.insert(name, topic);
                assert!(previous.is_none(), "checked: the topic did not exist");
            }
            ArchivedMetaEvent::TopicDeleted(e) => {
                let removed = self
                    .topics
                    .remove(e.name.as_str())
                    .expect("checked: the topic exists");
                // Its archives go with it (the controller removes the
                // objects after the event).
                self.archives.remove(e.name.as_str());
                // Kafka drops the offsets of a deleted topic: a topic
                // created later under the same name starts fresh.
                for group in self.groups.values_mut() {
                    group.offsets.remove(e.name.as_str());
                }
                self.groups.retain(|_, g| !g.is_empty());
                let name = self.topic_ids.remove(&removed.topic_id);
                assert_eq!(
                    name.as_deref(),
                    Some(e.name.as_str()),
                    "topic id index out of step"
                );
            }
            ArchivedMetaEvent::TopicConfigChanged(e) => {
                let topic = self
                    .topics
                    .get_mut(e.name.as_str())
                    .expect("checked: the topic exists");
                for key in e.remove.iter() {
                    topic.configs.remove(key.as_str());
                }
                for kv in e.set.iter() {
                    match topic.configs.get_mut(kv.0.as_str()) {
                        Some(value) => {
                            value.clear();
                            value.push_str(kv.1.as_str());
                        }
                        None => {
                            topic.configs.insert(kv.0.to_string(), kv.1.to_string());
                        }
                    }
                }
            }
            ArchivedMetaEvent::PartitionsAdded(e) => {
                let topic = self
                    .topics
                    .get_mut(e.name.as_str())
                    .expect("checked: the topic exists");
                topic
                    .partitions
                    .resize(e.new_total.to_native() as usize, None);
            }
            ArchivedMetaEvent::ProducerIdBlock(e) => {
                self.producer_id_block_end = e.block_end.to_native();
            }
            ArchivedMetaEvent::ShardsStarted(e) => {
                self.started_shards = e.shards.to_native();
            }
            ArchivedMetaEvent::UserScramCredential(e) => {
                self.users
                    .entry(e.user.to_string())
                    .or_default()
                    .insert(e.mechanism.to_string(), archived_credential(e));
            }
            ArchivedMetaEvent::ClientQuotasAltered(e) => {
                let (entity, set, remove) = quota_change(e);
                let values = self.quotas.entry(entity.clone()).or_default();
                for key in &remove {
                    values.remove(key);
                }
                for (key, value) in set {
                    values.insert(key, value.to_bits());
                }
                if values.is_empty() {
                    self.quotas.remove(&entity);
                }
            }
            ArchivedMetaEvent::AclsCreated(e) => {
                for binding in archived_bindings(&e.bindings)? {
                    self.acls.insert(&binding);
                }
            }
            ArchivedMetaEvent::AclsDeleted(e) => {
                for binding in archived_bindings(&e.bindings)? {
                    self.acls.remove(&binding);
                }
            }
            ArchivedMetaEvent::UserScramCredentialDeleted(e) => {
                let user = e.user.as_str();
                let mechanisms = self.users.get_mut(user).expect("checked: the user exists");
                mechanisms.remove(e.mechanism.as_str());
                // A user without credentials is no user: `users()` lists
                // only those with one.
                if mechanisms.is_empty() {
                    self.users.remove(user);
                }
            }
            ArchivedMetaEvent::ArchiveSealed(e) => {
                let record = ArchiveRecord {
                    key: e.key.to_string(),
                    first_offset: e.first_offset.to_native(),
                    last_offset: e.last_offset.to_native(),
                    min_timestamp_ms: e.min_timestamp_ms.to_native(),
                    max_timestamp_ms: e.max_timestamp_ms.to_native(),
                    bytes: e.bytes.to_native(),
                    footer_offset: e.footer_offset.to_native(),
                    footer_bytes: e.footer_bytes.to_native(),
                };
                self.archives
                    .entry(e.topic.to_string())
                    .or_default()
                    .entry(e.partition.to_native())
                    .or_default()
                    .archives
                    .insert(record.first_offset, record);
            }
            ArchivedMetaEvent::ArchivesTrimmed(e) => {
                let start = e.log_start_offset.to_native();
                let archives = self
                    .archives
                    .entry(e.topic.to_string())
                    .or_default()
                    .entry(e.partition.to_native())
                    .or_default();
                archives.log_start_offset = start;
                archives.archives.retain(|_, a| a.last_offset >= start);
            }
            ArchivedMetaEvent::PartitionPlaced(_) => unreachable!("handled above"),
            ArchivedMetaEvent::OffsetsCommitted(e) => {
                let commit_ms = e.commit_ms.to_native();
                let group = self.groups.entry(e.group.to_string()).or_default();
                for o in e.offsets.iter() {
                    let value = CommittedOffset {
                        offset: o.offset.to_native(),
                        leader_epoch: o.leader_epoch.to_native(),
                        metadata: o.metadata.to_string(),
                        commit_ms,
                    };
                    let partitions = match group.offsets.get_mut(o.topic.as_str()) {
                        Some(partitions) => partitions,
                        None => group.offsets.entry(o.topic.to_string()).or_default(),
                    };
                    partitions.insert(o.partition.to_native(), value);
                }
            }
            ArchivedMetaEvent::OffsetsDeleted(e) => {
                if let Some(group) = self.groups.get_mut(e.group.as_str()) {
                    for pair in e.partitions.iter() {
                        let topic = pair.0.as_str();
                        if let Some(partitions) = group.offsets.get_mut(topic) {
                            partitions.remove(&pair.1.to_native());
                            if partitions.is_empty() {
                                group.offsets.remove(topic);
                            }
                        }
                    }
                    if group.is_empty() {
                        self.groups.remove(e.group.as_str());
                    }
                }
            }
            ArchivedMetaEvent::GroupStored(e) => {
                let record = GroupRecord {
                    generation: e.generation.to_native(),
                    protocol_type: e.protocol_type.to_string(),
                    protocol: e.protocol.to_string(),
                    leader: e.leader.to_string(),
                    state_ms: e.state_ms.to_native(),
                    members: e
                        .members
                        .iter()
                        .map(|m| {
                            rkyv::deserialize::<GroupMemberRecord, rkyv::rancor::Failure>(m)
                                .expect("validated archive deserializes")
                        })
                        .collect(),
                };
                self.groups.entry(e.group.to_string()).or_default().record = Some(record);
            }
            ArchivedMetaEvent::GroupDeleted(e) => {
                self.groups.remove(e.group.as_str());
            }
        }
        self.applied_offset += 1;
        Ok(())
    }

    /// After loading a snapshot: rebuilds the derived indexes and checks the
    /// invariants events maintain (a snapshot is trusted no more than an
    /// event).
    pub(crate) fn rebuild_and_check(&mut self) -> std::result::Result<(), &'static str> {
        if self.producer_id_block_end > PRODUCER_ID_BLOCK_END_MAX {
            return Err("producer id block end out of range");
        }
        self.topic_ids.clear();
        for (name, topic) in &self.topics {
            check_topic_name(name).map_err(|_| "invalid topic name")?;
            check_partition_count(name, topic.partitions.len().min(u32::MAX as usize) as u32)
                .map_err(|_| "partition count out of range")?;
            if topic.topic_id == [0u8; 16] {
                return Err("all-zero topic id");
            }
            if topic.configs.keys().any(String::is_empty) {
                return Err("empty config key");
            }
            if self
                .topic_ids
                .insert(topic.topic_id, name.clone())
                .is_some()
            {
                return Err("topic id used twice");
            }
        }
        for (id, group) in &self.groups {
            check_group_id(id).map_err(|_| "invalid group id")?;
            if group.is_empty() {
                return Err("group with neither membership nor offsets");
            }
            let metadata_too_long = group
                .offsets
                .values()
                .flat_map(BTreeMap::values)
                .any(|o| o.metadata.len() > OFFSET_METADATA_BYTES_MAX);
            if metadata_too_long {
                return Err("offset metadata too long");
            }
        }
        for (user, credentials) in &self.users {
            if credentials.is_empty() {
                return Err("user without credentials");
            }
            for (mechanism, credential) in credentials {
                credential
                    .check(user, mechanism)
                    .map_err(|_| "malformed SCRAM credential")?;
            }
        }
        for (entity, values) in &self.quotas {
            let set: Vec<(String, f64)> = values
                .iter()
                .map(|(key, bits)| (key.clone(), f64::from_bits(*bits)))
                .collect();
            if set.is_empty() || check_quota_change(entity, &set, &[]).is_err() {
                return Err("malformed client quota");
            }
        }
        self.acls.check()?;
        for (topic, partitions) in &self.archives {
            let Some(state) = self.topics.get(topic) else {
                return Err("archives of a topic that does not exist");
            };
            for (partition, archives) in partitions {
                if *partition as usize >= state.partitions.len() {
                    return Err("archives of a partition that does not exist");
                }
                let mut next_free = 0u64;
                for (first, archive) in &archives.archives {
                    let well_formed = *first == archive.first_offset
                        && archive.first_offset <= archive.last_offset
                        && archive.first_offset >= next_free
                        && archive.last_offset >= archives.log_start_offset
                        && !archive.key.is_empty()
                        && archive.key.len() <= ARCHIVE_KEY_BYTES_MAX
                        && archive.footer_offset + u64::from(archive.footer_bytes) <= archive.bytes;
                    if !well_formed {
                        return Err("archive records overlap or are malformed");
                    }
                    next_free = archive.last_offset + 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::event::{
        AclsCreated, AclsDeleted, UserScramCredential, UserScramCredentialDeleted,
    };
    use crate::meta::{AclOperation, AclPatternType, AclPermission, AclResourceType};

    fn credential(user: &str, mechanism: &str, keys: usize, iterations: u32) -> MetaEvent {
        MetaEvent::UserScramCredential(UserScramCredential {
            user: user.into(),
            mechanism: mechanism.into(),
            salt: vec![9; 32],
            iterations,
            stored_key: vec![1; keys],
            server_key: vec![2; keys],
        })
    }

    #[test]
    fn scram_credentials_are_set_replaced_and_checked() {
        let mut state = MetaState::new();
        state
            .apply_event(0, &credential("alice", "SCRAM-SHA-256", 32, 4096))
            .expect("valid");
        state
            .apply_event(1, &credential("alice", "SCRAM-SHA-512", 64, 8192))
            .expect("valid");
        // A second credential for the same mechanism replaces the first.
        state
            .apply_event(2, &credential("alice", "SCRAM-SHA-256", 32, 16384))
            .expect("valid");
        let sha256 = state
            .scram_credential("alice", "SCRAM-SHA-256")
            .expect("stored");
        assert_eq!((sha256.iterations, sha256.stored_key.len()), (16384, 32));
        assert_eq!(
            state
                .scram_credential("alice", "SCRAM-SHA-512")
                .map(|c| c.iterations),
            Some(8192)
        );
        assert_eq!(state.scram_credential("bob", "SCRAM-SHA-256"), None);
        assert_eq!(state.users().collect::<Vec<_>>(), ["alice"]);

        let refused = [
            credential("alice", "PLAIN", 32, 4096),
            credential("alice", "SCRAM-SHA-256", 64, 4096),
            credential("alice", "SCRAM-SHA-512", 32, 4096),
            credential("alice", "SCRAM-SHA-256", 32, 4095),
            credential("alice", "SCRAM-SHA-256", 32, 16385),
            credential("", "SCRAM-SHA-256", 32, 4096),
            credential("a\nb", "SCRAM-SHA-256", 32, 4096),
            credential(
                &"u".repeat(USER_NAME_BYTES_MAX + 1),
                "SCRAM-SHA-256",
                32,
                4096,
            ),
        ];
        for event in refused {
            assert!(state.check_event(&event).is_err(), "{event}");
            let before = state.clone();
            assert!(state.apply_event(3, &event).is_err(), "{event}");
            assert_eq!(state, before, "nothing changes on error");
        }
        // Deleting removes one mechanism, then the user with the last.
        let deleted = |user: &str, mechanism: &str| {
            MetaEvent::UserScramCredentialDeleted(UserScramCredentialDeleted {
                user: user.into(),
                mechanism: mechanism.into(),
            })
        };
        state
            .apply_event(3, &deleted("alice", "SCRAM-SHA-256"))
            .expect("stored");
        assert_eq!(state.scram_credential("alice", "SCRAM-SHA-256"), None);
        assert!(state.scram_credential("alice", "SCRAM-SHA-512").is_some());
        for missing in [
            deleted("alice", "SCRAM-SHA-256"),
            deleted("bob", "SCRAM-SHA-512"),
            deleted("alice", "PLAIN"),
        ] {
            let before = state.clone();
            assert!(state.apply_event(4, &missing).is_err(), "{missing}");
            assert_eq!(state, before, "nothing changes on error");
        }
        state
            .apply_event(4, &deleted("alice", "SCRAM-SHA-512"))
            .expect("stored");
        assert_eq!(state.users().count(), 0);
        assert_eq!(state.applied_offset(), 5);

        // No key bytes in what is printed.
        let printed = format!("{:?}", credential("alice", "SCRAM-SHA-256", 32, 4096));
        assert!(!printed.contains("stored_key"), "{printed}");
    }

    fn acl(name: &str, principal: &str, permission: AclPermission) -> AclBinding {
        AclBinding {
            resource_type: AclResourceType::Topic,
            pattern_type: AclPatternType::Literal,
            name: name.into(),
            principal: principal.into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission,
        }
    }

    #[test]
    fn acls_are_created_deduplicated_deleted_and_replayed() {
        let alice = acl("orders", "User:alice", AclPermission::Allow);
        let deny = acl("orders", "User:alice", AclPermission::Deny);
        let bob = acl("payments", "User:bob", AclPermission::Allow);
        let events = [
            MetaEvent::AclsCreated(AclsCreated {
                bindings: vec![alice.clone(), bob.clone(), alice.clone()],
            }),
            MetaEvent::AclsCreated(AclsCreated {
                bindings: vec![deny.clone(), bob.clone()],
            }),
            MetaEvent::AclsDeleted(AclsDeleted {
                bindings: vec![bob.clone(), acl("absent", "User:x", AclPermission::Allow)],
            }),
        ];
        let mut state = MetaState::new();
        for (offset, event) in events.iter().enumerate() {
            state.apply_event(offset as u64, event).expect("valid");
        }
        assert_eq!(state.acls().len(), 2, "deduplicated, bob deleted");
        assert_eq!(state.acls().bindings().collect::<Vec<_>>(), [alice, deny]);
        let entries = &state.acls().of(AclResourceType::Topic).literal["orders"];
        assert_eq!(entries.len(), 2);
        assert!(!state
            .acls()
            .of(AclResourceType::Topic)
            .literal
            .contains_key("payments"));
        // Replay of the same events from a snapshot of the middle.
        let mut replayed = MetaState::new();
        replayed.apply_event(0, &events[0]).expect("valid");
        let bytes = super::super::encode_snapshot_file(&replayed).expect("encode");
        let (_, mut loaded) = super::super::read_snapshot_file(&bytes).expect("decodes");
        for (offset, event) in events.iter().enumerate().skip(1) {
            loaded.apply_event(offset as u64, event).expect("valid");
        }
        assert_eq!(loaded, state);

        let refused = [
            MetaEvent::AclsCreated(AclsCreated { bindings: vec![] }),
            MetaEvent::AclsDeleted(AclsDeleted { bindings: vec![] }),
            MetaEvent::AclsCreated(AclsCreated {
                bindings: vec![acl("orders", "alice", AclPermission::Allow)],
            }),
            MetaEvent::AclsCreated(AclsCreated {
                bindings: vec![acl("", "User:alice", AclPermission::Allow)],
            }),
            MetaEvent::AclsCreated(AclsCreated {
                bindings: vec![
                    acl("orders", "User:alice", AclPermission::Allow);
                    ACL_BINDINGS_PER_EVENT_MAX + 1
                ],
            }),
        ];
        for event in refused {
            let before = state.clone();
            assert!(state.apply_event(3, &event).is_err(), "{event}");
            assert_eq!(state, before, "nothing changes on error");
        }
    }
}
