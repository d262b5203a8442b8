//! The ACL authorizer: may this principal, from this host, do this
//! operation on this resource? Pure logic over the ACL bindings of a
//! metadata replica ([`Acls`]), with Kafka's StandardAuthorizer semantics.
//!
//! Layer: foundation (see the crate docs): imports nothing of the shard.
//!
//! The rules, in order:
//! 1. A super user (`--super-users`) may do everything.
//! 2. The bindings that match the resource are the literal ones on its
//!    name, the literal ones on `*`, and the prefixed ones on any prefix of
//!    its name. If there are none, whoever asks — any principal — gets
//!    `--allow-everyone-if-no-acl-found`.
//! 3. Of those, the ones for the caller (its principal or `User:*`, its
//!    IP or host `*`): a DENY of the operation (or of ALL) refuses, whatever
//!    allows it — DENY overrides ALLOW.
//! 4. Otherwise an ALLOW of the operation, of ALL, or of an operation
//!    implying it (READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS
//!    implies DESCRIBE_CONFIGS) allows; nothing else does.
//!
//! Why no per-connection cache: the lookup is a handful of B-tree
//! searches (one per literal name, plus one per prefix of the name only
//! when prefixed bindings of the type exist), O(log n) in the bindings
//! each, with no allocation; a cache would need invalidation on every ACL
//! change and would cost about as much to probe. With the authorizer off
//! the router never calls in here: the check is one branch on an
//! `Option`.

use ringlog_engine::meta::{
    AclBinding, AclEntry, AclOperation, AclPatternType, AclPermission, AclResourceType, Acls,
};
use std::rc::Rc;

/// Longest `--super-users` list.
pub const SUPER_USERS_MAX: usize = 64;

/// The authorizer's settings (`serve --authorizer on`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Principals that bypass every check (`User:admin`).
    pub super_users: Vec<String>,
    /// What a resource no binding matches allows (Kafka's
    /// `allow.everyone.if.no.acl.found`, default false).
    pub allow_everyone_if_no_acl_found: bool,
}

/// Who asks: Kafka's principal and the client's IP address.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// `User:<name>`.
    pub principal: &'a str,
    /// The peer's IP address as text (`127.0.0.1`).
    pub ip: &'a str,
}

/// Who is at the other end of a connection, as requests need it.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Kafka's principal: `User:<name>`, `User:<certificate subject>` or
    /// `User:ANONYMOUS`.
    pub principal: Rc<str>,
    /// The client's host as Kafka shows a member's (DescribeGroups):
    /// `/<ip>`.
    pub host: Rc<str>,
}

impl Identity {
    /// The caller as the authorizer sees it.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            principal: &self.principal,
            ip: self.host.strip_prefix('/').unwrap_or(&self.host),
        }
    }
}

/// How an [`AclFilter`] matches pattern types (Kafka's
/// `PatternTypeFilter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type; a name matches only the same name.
    Any,
    /// The bindings that would apply to the named resource: literal on the
    /// name or `*`, prefixed on a prefix of it (every binding without a
    /// name).
    Match,
    /// This pattern type only.
    Exactly(AclPatternType),
}

/// Kafka's ACL binding filter (DescribeAcls, DeleteAcls): `None` fields
/// match anything (ANY on the wire, or a null string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type; `None` is ANY.
    pub resource_type: Option<AclResourceType>,
    /// How pattern types match.
    pub pattern: PatternFilter,
    /// The resource name; `None` matches any name.
    pub name: Option<String>,
    /// The principal, exactly; `None` matches any.
    pub principal: Option<String>,
    /// The host, exactly; `None` matches any.
    pub host: Option<String>,
    /// The operation, exactly; `None` is ANY.
    pub operation: Option<AclOperation>,
    /// The permission; `None` is ANY.
    pub permission: Option<AclPermission>,
}

/// Kafka's ANY code of the ACL enums.
const CODE_ANY: i8 = 1;
/// Kafka's MATCH code of the pattern type.
const CODE_MATCH: i8 = 2;

impl AclFilter {
    /// A filter from its wire fields; `Err` names a field that is neither
    /// ANY nor a value this broker knows (Kafka answers INVALID_REQUEST).
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, String> {
        let resource_type = match resource_type {
            CODE_ANY => None,
            code => Some(AclResourceType::from_code(code).ok_or_else(|| {
                format!(
                    "resource type {code} is not ANY, TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID"
                )
            })?),
        };
        let pattern = match pattern_type {
            CODE_ANY => PatternFilter::Any,
            CODE_MATCH => PatternFilter::Match,
            code => PatternFilter::Exactly(AclPatternType::from_code(code).ok_or_else(|| {
                format!("pattern type {code} is not ANY, MATCH, LITERAL or PREFIXED")
            })?),
        };
        let operation = match operation {
            CODE_ANY => None,
            code => Some(
                AclOperation::from_code(code)
                    .ok_or_else(|| format!("operation {code} is not ANY or a known operation"))?,
            ),
        };
        let permission = match permission {
            CODE_ANY => None,
            code => Some(
                AclPermission::from_code(code)
                    .ok_or_else(|| format!("permission type {code} is not ANY, ALLOW or DENY"))?,
            ),
        };
        Ok(AclFilter {
            resource_type,
            pattern,
            name: name.map(String::from),
            principal: principal.map(String::from),
            host: host.map(String::from),
            operation,
            permission,
        })
    }

    /// Whether `binding` matches.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let pattern = match (self.pattern, self.name.as_deref()) {
            (PatternFilter::Exactly(p), name) => {
                p == binding.pattern_type && name.is_none_or(|n| n == binding.name)
            }
            (PatternFilter::Any, name) => name.is_none_or(|n| n == binding.name),
            (PatternFilter::Match, None) => true,
            (PatternFilter::Match, Some(name)) => match binding.pattern_type {
                AclPatternType::Literal => binding.name == name || binding.name == "*",
                AclPatternType::Prefixed => name.starts_with(binding.name.as_str()),
            },
        };
        self.resource_type
            .is_none_or(|t| t == binding.resource_type)
            && pattern
            && field(&self.principal, &binding.principal)
            && field(&self.host, &binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }
}

/// Parses `--super-users`: principals separated by `;` (Kafka's
/// `super.users`), each `User:<name>`.
pub fn parse_super_users(text: &str) -> Result<Vec<String>, String> {
    let users: Vec<String> = text
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if users.len() > SUPER_USERS_MAX {
        return Err(format!(
            "--super-users names {} principals, at most {SUPER_USERS_MAX}",
            users.len()
        ));
    }
    for user in &users {
        ringlog_engine::meta::acl::check_principal(user)
            .map_err(|e| format!("--super-users: {e}"))?;
    }
    Ok(users)
}

impl AuthorizerConfig {
    /// Whether `caller` may do `operation` on the resource
    /// `resource_type`/`name`, given `acls`.
    pub fn allows(
        &self,
        acls: &Acls,
        caller: Caller<'_>,
        operation: AclOperation,
        resource_type: AclResourceType,
        name: &str,
    ) -> bool {
        if self.super_users.iter().any(|u| u == caller.principal) {
            return true;
        }
        let patterns = acls.of(resource_type);
        let mut matched = false;
        let mut allowed = false;
        let mut judge = |entries: &[AclEntry]| {
            for entry in entries {
                matched = true;
                let applies = (entry.principal == caller.principal || entry.principal == "User:*")
                    && (entry.host == "*" || entry.host == caller.ip);
                if !applies {
                    continue;
                }
                match entry.permission {
                    AclPermission::Deny if entry.operation.denies(operation) => return true,
                    AclPermission::Allow if entry.operation.allows(operation) => allowed = true,
                    _ => {}
                }
            }
            false
        };
        for literal in [name, "*"] {
            if let Some(entries) = patterns.literal.get(literal) {
                if judge(entries) {
                    return false;
                }
            }
            if name == "*" {
                break;
            }
        }
        if !patterns.prefixed.is_empty() {
            for (end, _) in name.char_indices().skip(1).chain([(name.len(), ' ')]) {
                if let Some(entries) = patterns.prefixed.get(&name[..end]) {
                    if judge(entries) {
                        return false;
                    }
                }
            }
        }
        if !matched {
            return self.allow_everyone_if_no_acl_found;
        }
        allowed
    }

    /// Whether `caller` may do `operation` on some resource of
    /// `resource_type` (Kafka's `authorizeByResourceType`, which
    /// InitProducerId uses: WRITE on any topic allows an idempotent
    /// producer): some ALLOW for the caller allows it and no DENY of the
    /// caller covers every name (a literal `*`). With no binding of the
    /// type at all, `--allow-everyone-if-no-acl-found` decides.
    pub fn allows_any(
        &self,
        acls: &Acls,
        caller: Caller<'_>,
        operation: AclOperation,
        resource_type: AclResourceType,
    ) -> bool {
        if self.super_users.iter().any(|u| u == caller.principal) {
            return true;
        }
        let patterns = acls.of(resource_type);
        if patterns.literal.is_empty() && patterns.prefixed.is_empty() {
            return self.allow_everyone_if_no_acl_found;
        }
        let applies = |entry: &AclEntry| {
            (entry.principal == caller.principal || entry.principal == "User:*")
                && (entry.host == "*" || entry.host == caller.ip)
        };
        let denied_everywhere = patterns.literal.get("*").is_some_and(|entries| {
            entries.iter().any(|e| {
                e.permission == AclPermission::Deny && e.operation.denies(operation) && applies(e)
            })
        });
        if denied_everywhere {
            return false;
        }
        patterns
            .literal
            .values()
            .chain(patterns.prefixed.values())
            .flatten()
            .any(|e| {
                e.permission == AclPermission::Allow && e.operation.allows(operation) && applies(e)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlog_engine::meta::{AclBinding, AclPatternType, AclsCreated, MetaEvent, MetaState};
    use AclOperation::*;
    use AclPermission::*;
    use AclResourceType::*;

    fn binding(
        resource_type: AclResourceType,
        pattern_type: AclPatternType,
        name: &str,
        principal: &str,
        host: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            pattern_type,
            name: name.into(),
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        }
    }

    fn topic(name: &str, principal: &str, op: AclOperation, perm: AclPermission) -> AclBinding {
        binding(
            Topic,
            AclPatternType::Literal,
            name,
            principal,
            "*",
            op,
            perm,
        )
    }

    fn prefixed(name: &str, principal: &str, op: AclOperation, perm: AclPermission) -> AclBinding {
        binding(
            Topic,
            AclPatternType::Prefixed,
            name,
            principal,
            "*",
            op,
            perm,
        )
    }

    fn state(bindings: Vec<AclBinding>) -> MetaState {
        let mut state = MetaState::new();
        state
            .apply_event(0, &MetaEvent::AclsCreated(AclsCreated { bindings }))
            .expect("valid bindings");
        state
    }

    const ALICE: Caller<'static> = Caller {
        principal: "User:alice",
        ip: "10.0.0.1",
    };
    const BOB: Caller<'static> = Caller {
        principal: "User:bob",
        ip: "10.0.0.2",
    };

    fn strict() -> AuthorizerConfig {
        AuthorizerConfig::default()
    }

    #[test]
    fn literal_allow_is_per_principal_and_operation() {
        let s = state(vec![topic("orders", "User:alice", Write, Allow)]);
        let acls = s.acls();
        assert!(strict().allows(acls, ALICE, Write, Topic, "orders"));
        assert!(!strict().allows(acls, ALICE, Read, Topic, "orders"));
        assert!(!strict().allows(acls, BOB, Write, Topic, "orders"));
        assert!(!strict().allows(acls, ALICE, Write, Topic, "orders2"));
        assert!(!strict().allows(acls, ALICE, Write, Group, "orders"));
    }

    #[test]
    fn deny_overrides_allow() {
        let s = state(vec![
            prefixed("orders-", "User:alice", Write, Allow),
            topic("orders-secret", "User:alice", Write, Deny),
            topic("audit", "User:*", All, Allow),
            topic("audit", "User:alice", All, Deny),
        ]);
        let acls = s.acls();
        assert!(strict().allows(acls, ALICE, Write, Topic, "orders-eu"));
        assert!(!strict().allows(acls, ALICE, Write, Topic, "orders-secret"));
        assert!(!strict().allows(acls, ALICE, Read, Topic, "audit"));
        assert!(strict().allows(acls, BOB, Read, Topic, "audit"));
        // A denial of one operation implies nothing else.
        assert!(strict().allows(acls, ALICE, Describe, Topic, "orders-secret"));
    }

    #[test]
    fn prefixed_patterns_match_prefixes_only() {
        let s = state(vec![prefixed("orders-", "User:alice", Read, Allow)]);
        let acls = s.acls();
        assert!(strict().allows(acls, ALICE, Read, Topic, "orders-"));
        assert!(strict().allows(acls, ALICE, Read, Topic, "orders-eu-1"));
        assert!(!strict().allows(acls, ALICE, Read, Topic, "orders"));
        assert!(!strict().allows(acls, ALICE, Read, Topic, "my-orders-eu"));
        // Multi-byte names split only at character boundaries.
        assert!(!strict().allows(acls, ALICE, Read, Group, "λorders-"));
    }

    #[test]
    fn wildcard_name_and_principal() {
        let s = state(vec![
            topic("*", "User:alice", Read, Allow),
            binding(
                Group,
                AclPatternType::Literal,
                "billing",
                "User:*",
                "*",
                Read,
                Allow,
            ),
        ]);
        let acls = s.acls();
        assert!(strict().allows(acls, ALICE, Read, Topic, "anything"));
        assert!(!strict().allows(acls, BOB, Read, Topic, "anything"));
        assert!(strict().allows(acls, ALICE, Read, Group, "billing"));
        assert!(strict().allows(acls, BOB, Read, Group, "billing"));
        assert!(!strict().allows(acls, BOB, Read, Group, "other"));
    }

    #[test]
    fn host_must_match() {
        let s = state(vec![binding(
            Topic,
            AclPatternType::Literal,
            "orders",
            "User:alice",
            "10.0.0.1",
            Read,
            Allow,
        )]);
        let acls = s.acls();
        assert!(strict().allows(acls, ALICE, Read, Topic, "orders"));
        let elsewhere = Caller {
            principal: "User:alice",
            ip: "10.0.0.9",
        };
        assert!(!strict().allows(acls, elsewhere, Read, Topic, "orders"));
    }

    #[test]
    fn implied_operations() {
        let s = state(vec![
            topic("r", "User:alice", Read, Allow),
            topic("w", "User:alice", Write, Allow),
            topic("d", "User:alice", Delete, Allow),
            topic("a", "User:alice", Alter, Allow),
            topic("c", "User:alice", AlterConfigs, Allow),
            topic("all", "User:alice", All, Allow),
            topic("create", "User:alice", Create, Allow),
        ]);
        let acls = s.acls();
        for name in ["r", "w", "d", "a", "all"] {
            assert!(
                strict().allows(acls, ALICE, Describe, Topic, name),
                "{name}"
            );
        }
        assert!(!strict().allows(acls, ALICE, Describe, Topic, "create"));
        assert!(!strict().allows(acls, ALICE, Describe, Topic, "c"));
        assert!(strict().allows(acls, ALICE, DescribeConfigs, Topic, "c"));
        assert!(!strict().allows(acls, ALICE, Write, Topic, "r"));
        for op in AclOperation::ALL {
            assert!(strict().allows(acls, ALICE, op, Topic, "all"), "{op:?}");
        }
    }

    #[test]
    fn super_users_bypass_even_denials() {
        let s = state(vec![topic("orders", "User:*", All, Deny)]);
        let config = AuthorizerConfig {
            super_users: vec!["User:admin".into()],
            allow_everyone_if_no_acl_found: false,
        };
        let admin = Caller {
            principal: "User:admin",
            ip: "127.0.0.1",
        };
        assert!(config.allows(s.acls(), admin, Write, Topic, "orders"));
        assert!(config.allows(s.acls(), admin, Alter, Cluster, "kafka-cluster"));
        assert!(!config.allows(s.acls(), ALICE, Write, Topic, "orders"));
    }

    #[test]
    fn no_acl_found_both_ways() {
        let s = state(vec![topic("orders", "User:bob", Read, Allow)]);
        let open = AuthorizerConfig {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        };
        // No binding matches "logs" at all: the flag decides.
        assert!(open.allows(s.acls(), ALICE, Write, Topic, "logs"));
        assert!(!strict().allows(s.acls(), ALICE, Write, Topic, "logs"));
        // A binding for someone else matches "orders": no fallback.
        assert!(!open.allows(s.acls(), ALICE, Read, Topic, "orders"));
        let empty = MetaState::new();
        assert!(open.allows(empty.acls(), ALICE, Read, Cluster, "kafka-cluster"));
        assert!(!strict().allows(empty.acls(), ALICE, Read, Cluster, "kafka-cluster"));
    }

    #[test]
    fn authorization_by_resource_type() {
        let s = state(vec![
            prefixed("orders-", "User:alice", Write, Allow),
            topic("*", "User:bob", Write, Deny),
            topic("x", "User:bob", Write, Allow),
        ]);
        assert!(strict().allows_any(s.acls(), ALICE, Write, Topic));
        assert!(!strict().allows_any(s.acls(), ALICE, Read, Topic));
        assert!(
            !strict().allows_any(s.acls(), BOB, Write, Topic),
            "denied on *"
        );
        let open = AuthorizerConfig {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        };
        assert!(
            open.allows_any(s.acls(), BOB, Write, TransactionalId),
            "no bindings of the type"
        );
        assert!(!strict().allows_any(s.acls(), BOB, Write, TransactionalId));
    }

    fn any_filter() -> AclFilter {
        AclFilter::from_wire(1, None, 1, None, None, 1, 1).expect("all ANY")
    }

    #[test]
    fn filters_match_per_kafka() {
        let literal = topic("orders-eu", "User:alice", Write, Allow);
        let wildcard = topic("*", "User:bob", Read, Deny);
        let prefix = prefixed("orders-", "User:alice", Read, Allow);
        let group = binding(
            Group,
            AclPatternType::Literal,
            "g",
            "User:alice",
            "10.0.0.1",
            Read,
            Allow,
        );
        let all = [&literal, &wildcard, &prefix, &group];
        let matching = |filter: &AclFilter| all.iter().filter(|b| filter.matches(b)).count();
        assert_eq!(matching(&any_filter()), 4, "null and ANY match everything");
        let mut f = any_filter();
        f.resource_type = Some(Topic);
        assert_eq!(matching(&f), 3);
        f.name = Some("orders-eu".into());
        assert_eq!(matching(&f), 1, "ANY pattern: the exact name only");
        f.pattern = PatternFilter::Match;
        assert_eq!(matching(&f), 3, "MATCH: literal, * and the prefix");
        f.pattern = PatternFilter::Exactly(AclPatternType::Prefixed);
        assert_eq!(matching(&f), 0);
        f.name = Some("orders-".into());
        assert_eq!(matching(&f), 1);
        let mut f = any_filter();
        f.principal = Some("User:alice".into());
        f.operation = Some(Read);
        assert_eq!(matching(&f), 2, "operations match exactly");
        f.host = Some("10.0.0.1".into());
        assert_eq!(matching(&f), 1);
        f.permission = Some(Deny);
        assert_eq!(matching(&f), 0);
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 0, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 1, None, None, 0, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 1, None, None, 1, 0).is_err());
    }

    #[test]
    fn identity_strips_the_host_slash() {
        let identity = Identity {
            principal: "User:alice".into(),
            host: "/10.0.0.1".into(),
        };
        let caller = identity.caller();
        assert_eq!((caller.principal, caller.ip), ("User:alice", "10.0.0.1"));
    }

    #[test]
    fn super_users_are_parsed() {
        assert_eq!(
            parse_super_users("User:admin; User:ops;"),
            Ok(vec!["User:admin".to_string(), "User:ops".to_string()])
        );
        assert_eq!(parse_super_users(""), Ok(vec![]));
        assert!(parse_super_users("admin").is_err());
        let many = vec!["User:x"; SUPER_USERS_MAX + 1].join(";");
        assert!(parse_super_users(&many).is_err());
    }
}
