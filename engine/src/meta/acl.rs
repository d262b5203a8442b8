//! Access control lists as the meta log keeps them: Kafka's ACL bindings
//! (resource pattern + principal, host, operation, permission), created
//! and deleted by events, kept by [`super::MetaState`] indexed by
//! resource type, pattern type and resource name.
//!
//! Why in the meta log: ACLs are cluster metadata like topics — every
//! shard's router checks requests against its own replica without a
//! cross-core call, they survive restarts through the same snapshot and
//! replay, and `ringlog inspect meta` shows who changed them when.
//!
//! Only concrete values are representable here (no ANY / MATCH / UNKNOWN):
//! those are filter values of DescribeAcls/DeleteAcls, and a binding that
//! holds one cannot be created (Kafka answers INVALID_REQUEST).

use rkyv::{Archive, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// The name of the one cluster resource (Kafka's).
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// Longest resource name of a binding (the longest group id).
pub const ACL_RESOURCE_NAME_BYTES_MAX: usize = super::event::GROUP_ID_BYTES_MAX;
/// Longest principal of a binding (`User:` plus the longest user name).
pub const ACL_PRINCIPAL_BYTES_MAX: usize = 5 + super::state::USER_NAME_BYTES_MAX;
/// Most bindings one event creates or deletes: bounds one request's work.
pub const ACL_BINDINGS_PER_EVENT_MAX: usize = 1024;
/// Most bindings the state holds: every shard keeps them all.
pub const ACLS_MAX: usize = 100_000;

/// The kind of resource a binding protects (Kafka's codes on the wire).
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum AclResourceType {
    /// A topic (code 2).
    Topic,
    /// A consumer group (code 3).
    Group,
    /// The cluster (code 4), always named [`CLUSTER_RESOURCE_NAME`].
    Cluster,
    /// A transactional id (code 5).
    TransactionalId,
}

/// How a binding's resource name matches (Kafka's codes on the wire).
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum AclPatternType {
    /// The exact name, or every name if the name is `*` (code 3).
    Literal,
    /// Every name starting with the name (code 4).
    Prefixed,
}

/// What a binding allows or denies (Kafka's codes on the wire).
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum AclOperation {
    /// Every operation (code 2).
    All,
    /// Code 3.
    Read,
    /// Code 4.
    Write,
    /// Code 5.
    Create,
    /// Code 6.
    Delete,
    /// Code 7.
    Alter,
    /// Code 8.
    Describe,
    /// Code 9.
    ClusterAction,
    /// Code 10.
    DescribeConfigs,
    /// Code 11.
    AlterConfigs,
    /// Code 12.
    IdempotentWrite,
}

/// Allow or deny (Kafka's codes on the wire).
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum AclPermission {
    /// Code 3.
    Allow,
    /// Code 2.
    Deny,
}

impl AclResourceType {
    /// Every type, in code order.
    pub const ALL: [AclResourceType; 4] = [
        AclResourceType::Topic,
        AclResourceType::Group,
        AclResourceType::Cluster,
        AclResourceType::TransactionalId,
    ];

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            AclResourceType::Topic => 2,
            AclResourceType::Group => 3,
            AclResourceType::Cluster => 4,
            AclResourceType::TransactionalId => 5,
        }
    }

    /// The type of a wire code; `None` for UNKNOWN, ANY and the types this
    /// broker has no resources of.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Kafka's name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            AclResourceType::Topic => "TOPIC",
            AclResourceType::Group => "GROUP",
            AclResourceType::Cluster => "CLUSTER",
            AclResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }
}

impl AclPatternType {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            AclPatternType::Literal => 3,
            AclPatternType::Prefixed => 4,
        }
    }

    /// The type of a wire code; `None` for UNKNOWN, ANY and MATCH.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(AclPatternType::Literal),
            4 => Some(AclPatternType::Prefixed),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            AclPatternType::Literal => "LITERAL",
            AclPatternType::Prefixed => "PREFIXED",
        }
    }
}

impl AclOperation {
    /// Every operation, in code order.
    pub const ALL: [AclOperation; 11] = [
        AclOperation::All,
        AclOperation::Read,
        AclOperation::Write,
        AclOperation::Create,
        AclOperation::Delete,
        AclOperation::Alter,
        AclOperation::Describe,
        AclOperation::ClusterAction,
        AclOperation::DescribeConfigs,
        AclOperation::AlterConfigs,
        AclOperation::IdempotentWrite,
    ];

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
        }
    }

    /// The operation of a wire code; `None` for UNKNOWN, ANY and the
    /// delegation token operations.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            AclOperation::All => "ALL",
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::ClusterAction => "CLUSTER_ACTION",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
        }
    }

    /// Whether an ALLOW of `self` allows `wanted`: ALL allows everything,
    /// READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
    /// DESCRIBE_CONFIGS (Kafka's implied operations).
    pub fn allows(self, wanted: AclOperation) -> bool {
        self == wanted
            || self == AclOperation::All
            || (wanted == AclOperation::Describe
                && matches!(
                    self,
                    AclOperation::Read
                        | AclOperation::Write
                        | AclOperation::Delete
                        | AclOperation::Alter
                ))
            || (wanted == AclOperation::DescribeConfigs && self == AclOperation::AlterConfigs)
    }

    /// Whether a DENY of `self` denies `wanted`: the operation itself or
    /// ALL; a denial implies nothing else (Kafka's rule).
    pub fn denies(self, wanted: AclOperation) -> bool {
        self == wanted || self == AclOperation::All
    }
}

impl AclPermission {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            AclPermission::Deny => 2,
            AclPermission::Allow => 3,
        }
    }

    /// The permission of a wire code; `None` for UNKNOWN and ANY.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(AclPermission::Deny),
            3 => Some(AclPermission::Allow),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            AclPermission::Allow => "ALLOW",
            AclPermission::Deny => "DENY",
        }
    }
}

/// One ACL: who (`principal` from `host`) may or may not (`permission`)
/// do `operation` on the resources `pattern_type` + `name` of
/// `resource_type` select.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: AclResourceType,
    /// How `name` matches resource names.
    pub pattern_type: AclPatternType,
    /// The resource name or prefix; `*` with [`AclPatternType::Literal`]
    /// matches every resource of the type.
    pub name: String,
    /// `User:<name>`, or `User:*` for everyone.
    pub principal: String,
    /// The client's IP address, or `*` for any host.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AclBinding {
    /// The entry this binding adds under its resource pattern.
    pub fn entry(&self) -> AclEntry {
        AclEntry {
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation,
            permission: self.permission,
        }
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:?} principal={:?} host={:?} {} {}",
            self.resource_type.name(),
            self.pattern_type.name(),
            self.name,
            self.principal,
            self.host,
            self.permission.name(),
            self.operation.name()
        )
    }
}

/// The part of a binding below its resource pattern: what the state keeps
/// per pattern, sorted and unique.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclEntry {
    /// `User:<name>` or `User:*`.
    pub principal: String,
    /// An IP address or `*`.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

/// Whether a principal is `User:` followed by a name (or `*`): the only
/// principal type this broker authenticates.
pub fn check_principal(principal: &str) -> Result<(), String> {
    let Some(user) = principal.strip_prefix("User:") else {
        return Err(format!(
            "principal {principal:?} is not of the form User:<name>"
        ));
    };
    if user.is_empty()
        || principal.len() > ACL_PRINCIPAL_BYTES_MAX
        || principal.chars().any(char::is_control)
    {
        return Err(format!(
            "principal {principal:?}: User: and 1-{} bytes without control characters",
            ACL_PRINCIPAL_BYTES_MAX - 5
        ));
    }
    Ok(())
}

/// Whether a binding is well formed: a resource name of 1 to
/// [`ACL_RESOURCE_NAME_BYTES_MAX`] bytes (the cluster's is always
/// [`CLUSTER_RESOURCE_NAME`], literal), a `User:` principal, a host that
/// is `*` or an IP address.
pub fn check_binding(binding: &AclBinding) -> Result<(), String> {
    let name = binding.name.as_str();
    if name.is_empty()
        || name.len() > ACL_RESOURCE_NAME_BYTES_MAX
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "resource name {name:?}: 1-{ACL_RESOURCE_NAME_BYTES_MAX} bytes without control characters"
        ));
    }
    if binding.resource_type == AclResourceType::Cluster
        && (name != CLUSTER_RESOURCE_NAME || binding.pattern_type != AclPatternType::Literal)
    {
        return Err(format!(
            "the cluster resource is the literal name {CLUSTER_RESOURCE_NAME:?}, not {} {name:?}",
            binding.pattern_type.name()
        ));
    }
    check_principal(&binding.principal)?;
    let host = binding.host.as_str();
    if host != "*" && host.parse::<IpAddr>().is_err() {
        return Err(format!("host {host:?} is neither * nor an IP address"));
    }
    Ok(())
}

/// The bindings of one resource type: entries by pattern name, one map
/// per pattern type. Every entry list is sorted, unique and non-empty.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AclPatterns {
    /// Literal names (`*` is the wildcard).
    pub literal: BTreeMap<String, Vec<AclEntry>>,
    /// Prefixes.
    pub prefixed: BTreeMap<String, Vec<AclEntry>>,
}

impl AclPatterns {
    /// The map of one pattern type.
    pub fn by_pattern(&self, pattern_type: AclPatternType) -> &BTreeMap<String, Vec<AclEntry>> {
        match pattern_type {
            AclPatternType::Literal => &self.literal,
            AclPatternType::Prefixed => &self.prefixed,
        }
    }

    fn by_pattern_mut(
        &mut self,
        pattern_type: AclPatternType,
    ) -> &mut BTreeMap<String, Vec<AclEntry>> {
        match pattern_type {
            AclPatternType::Literal => &mut self.literal,
            AclPatternType::Prefixed => &mut self.prefixed,
        }
    }
}

/// Every binding, by resource type (snapshot version 5).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Acls {
    topic: AclPatterns,
    group: AclPatterns,
    cluster: AclPatterns,
    transactional_id: AclPatterns,
    /// Bindings held, across all types.
    count: u64,
}

impl Acls {
    /// The bindings of one resource type.
    pub fn of(&self, resource_type: AclResourceType) -> &AclPatterns {
        match resource_type {
            AclResourceType::Topic => &self.topic,
            AclResourceType::Group => &self.group,
            AclResourceType::Cluster => &self.cluster,
            AclResourceType::TransactionalId => &self.transactional_id,
        }
    }

    fn of_mut(&mut self, resource_type: AclResourceType) -> &mut AclPatterns {
        match resource_type {
            AclResourceType::Topic => &mut self.topic,
            AclResourceType::Group => &mut self.group,
            AclResourceType::Cluster => &mut self.cluster,
            AclResourceType::TransactionalId => &mut self.transactional_id,
        }
    }

    /// Bindings held.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether this exact binding is held.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.of(binding.resource_type)
            .by_pattern(binding.pattern_type)
            .get(&binding.name)
            .is_some_and(|entries| entries.binary_search(&binding.entry()).is_ok())
    }

    /// Adds a binding; `false` if it was already held (bindings are a set).
    pub(crate) fn insert(&mut self, binding: &AclBinding) -> bool {
        let entries = self
            .of_mut(binding.resource_type)
            .by_pattern_mut(binding.pattern_type)
            .entry(binding.name.clone())
            .or_default();
        let entry = binding.entry();
        match entries.binary_search(&entry) {
            Ok(_) => false,
            Err(at) => {
                entries.insert(at, entry);
                self.count += 1;
                true
            }
        }
    }

    /// Removes a binding; `false` if it was not held.
    pub(crate) fn remove(&mut self, binding: &AclBinding) -> bool {
        let map = self
            .of_mut(binding.resource_type)
            .by_pattern_mut(binding.pattern_type);
        let Some(entries) = map.get_mut(&binding.name) else {
            return false;
        };
        let Ok(at) = entries.binary_search(&binding.entry()) else {
            return false;
        };
        entries.remove(at);
        if entries.is_empty() {
            map.remove(&binding.name);
        }
        assert!(self.count > 0, "a held binding was counted");
        self.count -= 1;
        true
    }

    /// Every binding, by resource type, pattern type, name, then entry.
    pub fn bindings(&self) -> impl Iterator<Item = AclBinding> + '_ {
        AclResourceType::ALL
            .into_iter()
            .flat_map(move |resource_type| {
                let patterns = self.of(resource_type);
                [AclPatternType::Literal, AclPatternType::Prefixed]
                    .into_iter()
                    .flat_map(move |pattern_type| {
                        patterns
                            .by_pattern(pattern_type)
                            .iter()
                            .flat_map(move |(name, entries)| {
                                entries.iter().map(move |e| AclBinding {
                                    resource_type,
                                    pattern_type,
                                    name: name.clone(),
                                    principal: e.principal.clone(),
                                    host: e.host.clone(),
                                    operation: e.operation,
                                    permission: e.permission,
                                })
                            })
                    })
            })
    }

    /// After loading a snapshot: every binding well formed, every entry
    /// list sorted, unique and non-empty, the count right.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let mut counted = 0usize;
        for resource_type in AclResourceType::ALL {
            for pattern_type in [AclPatternType::Literal, AclPatternType::Prefixed] {
                for entries in self.of(resource_type).by_pattern(pattern_type).values() {
                    if entries.is_empty() || entries.windows(2).any(|w| w[0] >= w[1]) {
                        return Err("ACL entries empty, unsorted or repeated");
                    }
                    counted += entries.len();
                }
            }
        }
        if counted != self.len() || counted > ACLS_MAX {
            return Err("ACL count wrong or above the limit");
        }
        if self.bindings().any(|b| check_binding(&b).is_err()) {
            return Err("malformed ACL binding");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, principal: &str, host: &str) -> AclBinding {
        AclBinding {
            resource_type: AclResourceType::Topic,
            pattern_type: AclPatternType::Literal,
            name: name.into(),
            principal: principal.into(),
            host: host.into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn wire_codes_round_trip_and_concrete_only() {
        for t in AclResourceType::ALL {
            assert_eq!(AclResourceType::from_code(t.code()), Some(t));
        }
        for o in AclOperation::ALL {
            assert_eq!(AclOperation::from_code(o.code()), Some(o));
        }
        for p in [AclPermission::Allow, AclPermission::Deny] {
            assert_eq!(AclPermission::from_code(p.code()), Some(p));
        }
        for code in [0, 1, 6, 7] {
            assert_eq!(AclResourceType::from_code(code), None, "{code}");
        }
        for code in [0, 1, 2] {
            assert_eq!(AclPatternType::from_code(code), None, "{code}");
        }
        for code in [0, 1, 13] {
            assert_eq!(AclOperation::from_code(code), None, "{code}");
        }
        assert_eq!(AclPermission::from_code(1), None);
    }

    #[test]
    fn bindings_are_checked() {
        assert!(check_binding(&binding("orders", "User:alice", "*")).is_ok());
        assert!(check_binding(&binding("orders", "User:*", "10.0.0.1")).is_ok());
        assert!(check_binding(&binding("orders", "User:alice", "::1")).is_ok());
        assert!(check_binding(&binding("", "User:alice", "*")).is_err());
        assert!(check_binding(&binding("orders", "alice", "*")).is_err());
        assert!(check_binding(&binding("orders", "Group:x", "*")).is_err());
        assert!(check_binding(&binding("orders", "User:", "*")).is_err());
        assert!(check_binding(&binding("orders", "User:alice", "host.example")).is_err());
        let mut cluster = binding("kafka-cluster", "User:alice", "*");
        cluster.resource_type = AclResourceType::Cluster;
        assert!(check_binding(&cluster).is_ok());
        cluster.name = "other".into();
        assert!(check_binding(&cluster).is_err());
        cluster.name = CLUSTER_RESOURCE_NAME.into();
        cluster.pattern_type = AclPatternType::Prefixed;
        assert!(check_binding(&cluster).is_err());
    }

    #[test]
    fn set_semantics() {
        let mut acls = Acls::default();
        let a = binding("orders", "User:alice", "*");
        let b = binding("orders", "User:bob", "*");
        assert!(acls.insert(&a));
        assert!(!acls.insert(&a), "deduplicated");
        assert!(acls.insert(&b));
        assert_eq!(acls.len(), 2);
        assert!(acls.contains(&a));
        assert_eq!(acls.bindings().collect::<Vec<_>>(), [a.clone(), b.clone()]);
        assert_eq!(acls.check(), Ok(()));
        assert!(acls.remove(&a));
        assert!(!acls.remove(&a));
        assert!(acls.remove(&b));
        assert!(acls.is_empty());
        assert!(
            acls.of(AclResourceType::Topic).literal.is_empty(),
            "no empty lists left"
        );
    }

    #[test]
    fn implied_operations() {
        use AclOperation::*;
        for op in [Read, Write, Delete, Alter, All, Describe] {
            assert!(op.allows(Describe), "{op:?}");
        }
        for op in [
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
        ] {
            assert!(!op.allows(Describe), "{op:?}");
        }
        assert!(AlterConfigs.allows(DescribeConfigs));
        assert!(!Read.allows(Write));
        assert!(All.allows(IdempotentWrite));
        assert!(!Read.denies(Describe), "denials imply nothing");
        assert!(All.denies(Write));
    }
}
