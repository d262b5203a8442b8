//! Client quotas in the metadata state: which keys exist, what a change
//! must satisfy, and which configured entity's quota applies to a client.
//!
//! Why here and not in the broker: the rules are the state's invariants
//! (the controller validates a request with [`check_quota_change`] before
//! logging it, replay validates the logged event with the same function),
//! and the precedence of [`resolve`] is a pure function of the state that
//! every shard's replica answers the same way.

use super::event::{QuotaEntity, QuotaName};
use std::collections::BTreeMap;

/// Bytes a client may produce per second (Kafka's key).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Bytes a client may fetch per second.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percentage of one request-handling thread a client may use per second.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Every quota key this broker enforces.
pub const QUOTA_KEYS: [&str; 3] = [PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE];
/// Longest user or client-id name of a quota entity (bytes).
pub const QUOTA_NAME_BYTES_MAX: usize = 256;
/// Largest quota value: beyond 2^53 an f64 no longer holds every integer,
/// and no link moves that many bytes per second.
pub const QUOTA_VALUE_MAX: f64 = 9_007_199_254_740_992.0;

/// Configured quotas: the values (f64 bits) of each entity, by key.
pub type ClientQuotaMap = BTreeMap<QuotaEntity, BTreeMap<String, u64>>;

/// Checks one entity's change: an entity with a user or a client id (names
/// of at most [`QUOTA_NAME_BYTES_MAX`] bytes, no control characters), known
/// keys, each key at most once, values positive and finite, and whole
/// numbers for the byte rates.
pub fn check_quota_change(
    entity: &QuotaEntity,
    set: &[(String, f64)],
    remove: &[String],
) -> Result<(), String> {
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err("a quota entity needs a user or a client id".into());
    }
    for name in [&entity.user, &entity.client_id].into_iter().flatten() {
        if let QuotaName::Named(name) = name {
            if name.len() > QUOTA_NAME_BYTES_MAX || name.chars().any(char::is_control) {
                return Err(format!(
                    "invalid quota entity name {name:?}: at most {QUOTA_NAME_BYTES_MAX} bytes, no control characters"
                ));
            }
        }
    }
    let keys = set.iter().map(|(key, _)| key).chain(remove);
    let mut seen = Vec::with_capacity(QUOTA_KEYS.len());
    for key in keys {
        if !QUOTA_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "unknown quota key {key:?}; known: {}",
                QUOTA_KEYS.join(", ")
            ));
        }
        if seen.contains(&key) {
            return Err(format!("quota key {key:?} named twice"));
        }
        seen.push(key);
    }
    for (key, value) in set {
        if !value.is_finite() || *value <= 0.0 || *value > QUOTA_VALUE_MAX {
            return Err(format!(
                "quota {key} = {value}: must be positive and at most {QUOTA_VALUE_MAX}"
            ));
        }
        if key != REQUEST_PERCENTAGE && value.fract() != 0.0 {
            return Err(format!("quota {key} = {value}: must be a whole number"));
        }
    }
    Ok(())
}

/// The quota for `key` of a client with this user and client id, and the
/// configured entity it comes from, by Kafka's precedence (most specific
/// first): user and client id, user and default client, user alone,
/// default user and client id, default user and default client, default
/// user alone, client id alone, default client alone.
pub fn resolve<'a>(
    quotas: &'a ClientQuotaMap,
    user: &str,
    client_id: &str,
    key: &str,
) -> Option<(&'a QuotaEntity, f64)> {
    if quotas.is_empty() {
        return None;
    }
    let named = |name: &str| Some(QuotaName::Named(name.to_string()));
    let default = || Some(QuotaName::Default);
    let order = [
        (named(user), named(client_id)),
        (named(user), default()),
        (named(user), None),
        (default(), named(client_id)),
        (default(), default()),
        (default(), None),
        (None, named(client_id)),
        (None, default()),
    ];
    order.into_iter().find_map(|(user, client_id)| {
        let (entity, values) = quotas.get_key_value(&QuotaEntity { user, client_id })?;
        let bits = values.get(key)?;
        Some((entity, f64::from_bits(*bits)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<QuotaName>, client_id: Option<QuotaName>) -> QuotaEntity {
        QuotaEntity { user, client_id }
    }

    fn named(name: &str) -> Option<QuotaName> {
        Some(QuotaName::Named(name.into()))
    }

    #[test]
    fn changes_are_checked() {
        let alice = entity(named("alice"), None);
        let set = |key: &str, value: f64| vec![(key.to_string(), value)];
        assert!(check_quota_change(&alice, &set(PRODUCER_BYTE_RATE, 1024.0), &[]).is_ok());
        assert!(check_quota_change(&alice, &set(REQUEST_PERCENTAGE, 12.5), &[]).is_ok());
        assert!(check_quota_change(&entity(None, None), &[], &[]).is_err());
        assert!(check_quota_change(&alice, &set("controller_mutation_rate", 1.0), &[]).is_err());
        assert!(check_quota_change(&alice, &set(PRODUCER_BYTE_RATE, 0.0), &[]).is_err());
        assert!(check_quota_change(&alice, &set(PRODUCER_BYTE_RATE, -5.0), &[]).is_err());
        assert!(check_quota_change(&alice, &set(PRODUCER_BYTE_RATE, f64::NAN), &[]).is_err());
        assert!(check_quota_change(&alice, &set(PRODUCER_BYTE_RATE, f64::INFINITY), &[]).is_err());
        assert!(check_quota_change(&alice, &set(CONSUMER_BYTE_RATE, 10.5), &[]).is_err());
        assert!(check_quota_change(
            &alice,
            &set(PRODUCER_BYTE_RATE, 1.0),
            &[PRODUCER_BYTE_RATE.to_string()]
        )
        .is_err());
        let long = entity(named(&"x".repeat(QUOTA_NAME_BYTES_MAX + 1)), None);
        assert!(check_quota_change(&long, &[], &[]).is_err());
        let control = entity(None, named("a\nb"));
        assert!(check_quota_change(&control, &[], &[]).is_err());
        // An empty client id is a name Kafka allows.
        assert!(check_quota_change(&entity(None, named("")), &[], &[]).is_ok());
    }

    #[test]
    fn the_most_specific_entity_wins() {
        let mut quotas = ClientQuotaMap::new();
        let mut put = |user, client_id, value: f64| {
            quotas
                .entry(entity(user, client_id))
                .or_default()
                .insert(PRODUCER_BYTE_RATE.to_string(), value.to_bits());
        };
        put(None, Some(QuotaName::Default), 1.0);
        put(None, named("app"), 2.0);
        put(Some(QuotaName::Default), None, 3.0);
        put(named("alice"), None, 4.0);
        put(named("alice"), named("app"), 5.0);
        let value = |user, client| {
            resolve(&quotas, user, client, PRODUCER_BYTE_RATE).map(|(_, value)| value)
        };
        assert_eq!(value("alice", "app"), Some(5.0));
        assert_eq!(value("alice", "other"), Some(4.0));
        assert_eq!(value("bob", "app"), Some(3.0));
        quotas.remove(&entity(Some(QuotaName::Default), None));
        let value = |user, client| {
            resolve(&quotas, user, client, PRODUCER_BYTE_RATE).map(|(_, value)| value)
        };
        assert_eq!(value("bob", "app"), Some(2.0));
        assert_eq!(value("bob", "other"), Some(1.0));
        assert_eq!(resolve(&quotas, "bob", "app", CONSUMER_BYTE_RATE), None);
        let (entity, _) = resolve(&quotas, "alice", "x", PRODUCER_BYTE_RATE).expect("quota");
        assert_eq!(entity.user, named("alice"));
    }
}
