//! DescribeClientQuotas (on the router, from the shard's metadata
//! replica): the configured quotas of the entities a filter matches
//! (KIP-546).
//!
//! Layer: handlers (see the crate docs).

use super::alter_client_quotas::{ENTITY_CLIENT_ID, ENTITY_IP, ENTITY_USER};
use super::text;
use crate::runtime::ShardClient;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{QuotaEntity, QuotaName};

/// Kafka's match types of a filter component.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// What one component asks of an entity's part of its type.
#[derive(Debug, PartialEq)]
enum Wanted {
    /// This name.
    Exact(String),
    /// The default entity.
    Default,
    /// Any name or the default, as long as the entity has the type.
    Specified,
}

/// A checked filter: per entity type what it wants (`None`: the filter
/// does not name the type).
#[derive(Debug, Default, PartialEq)]
struct Filter {
    user: Option<Wanted>,
    client_id: Option<Wanted>,
    /// Whether the filter names an ip part, which no entity here has.
    ip: bool,
    strict: bool,
}

/// Answers a DescribeClientQuotas request.
pub fn handle(
    client: &ShardClient,
    _version: i16,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let filter = match filter_of(&request.components, request.strict) {
        Ok(filter) => filter,
        Err(message) => {
            return DescribeClientQuotasResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(text(message)))
                .with_entries(None)
        }
    };
    let entries = client.local().meta.with(|state| {
        state
            .client_quotas()
            .iter()
            .filter(|(entity, _)| filter.matches(entity))
            .map(|(entity, values)| {
                let values = values
                    .iter()
                    .map(|(key, bits)| {
                        ValueData::default()
                            .with_key(text(key.as_str()))
                            .with_value(f64::from_bits(*bits))
                    })
                    .collect();
                EntryData::default()
                    .with_entity(entity_parts(entity))
                    .with_values(values)
            })
            .collect()
    });
    // Kafka's error message is null on success.
    DescribeClientQuotasResponse::default()
        .with_error_message(None)
        .with_entries(Some(entries))
}

fn filter_of(components: &[ComponentData], strict: bool) -> Result<Filter, String> {
    let mut filter = Filter {
        strict,
        ..Filter::default()
    };
    for component in components {
        let kind = component.entity_type.as_str();
        let wanted = match (component.match_type, &component._match) {
            (MATCH_EXACT, Some(name)) => Wanted::Exact(name.to_string()),
            (MATCH_EXACT, None) => return Err(format!("an exact match on {kind:?} needs a name")),
            (MATCH_DEFAULT, _) => Wanted::Default,
            (MATCH_SPECIFIED, _) => Wanted::Specified,
            (other, _) => return Err(format!("unknown match type {other}")),
        };
        let slot = match kind {
            ENTITY_USER => &mut filter.user,
            ENTITY_CLIENT_ID => &mut filter.client_id,
            ENTITY_IP if !filter.ip => {
                filter.ip = true;
                continue;
            }
            ENTITY_IP => return Err(format!("entity type {kind:?} named twice")),
            other => return Err(format!("unknown entity type {other:?}")),
        };
        if slot.replace(wanted).is_some() {
            return Err(format!("entity type {kind:?} named twice"));
        }
    }
    Ok(filter)
}

impl Filter {
    fn matches(&self, entity: &QuotaEntity) -> bool {
        // No entity here has an ip part.
        if self.ip {
            return false;
        }
        let part = |wanted: &Option<Wanted>, name: &Option<QuotaName>| match (wanted, name) {
            (None, None) => true,
            (None, Some(_)) => !self.strict,
            (Some(_), None) => false,
            (Some(Wanted::Specified), Some(_)) => true,
            (Some(Wanted::Default), Some(name)) => *name == QuotaName::Default,
            (Some(Wanted::Exact(wanted)), Some(QuotaName::Named(name))) => wanted == name,
            (Some(Wanted::Exact(_)), Some(QuotaName::Default)) => false,
        };
        part(&self.user, &entity.user) && part(&self.client_id, &entity.client_id)
    }
}

/// An entity as Kafka spells it: its parts, a null name for a default.
fn entity_parts(entity: &QuotaEntity) -> Vec<EntityData> {
    [
        (ENTITY_USER, &entity.user),
        (ENTITY_CLIENT_ID, &entity.client_id),
    ]
    .into_iter()
    .filter_map(|(kind, name)| {
        let name = name.as_ref()?;
        let name = match name {
            QuotaName::Default => None,
            QuotaName::Named(name) => Some(text(name.as_str())),
        };
        Some(
            EntityData::default()
                .with_entity_type(text(kind))
                .with_entity_name(name),
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn component(kind: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(StrBytes::from_string(kind.into()))
            .with_match_type(match_type)
            .with_match(name.map(|n| StrBytes::from_string(n.into())))
    }

    fn entity(user: Option<QuotaName>, client_id: Option<QuotaName>) -> QuotaEntity {
        QuotaEntity { user, client_id }
    }

    fn named(name: &str) -> Option<QuotaName> {
        Some(QuotaName::Named(name.into()))
    }

    #[test]
    fn filters_match_as_kafka_describes() {
        let alice = entity(named("alice"), None);
        let alice_app = entity(named("alice"), named("app"));
        let default_user = entity(Some(QuotaName::Default), None);
        let app = entity(None, named("app"));

        let exact = filter_of(&[component("user", MATCH_EXACT, Some("alice"))], false).expect("ok");
        assert!(exact.matches(&alice) && exact.matches(&alice_app));
        assert!(!exact.matches(&default_user) && !exact.matches(&app));

        let strict = filter_of(&[component("user", MATCH_EXACT, Some("alice"))], true).expect("ok");
        assert!(strict.matches(&alice) && !strict.matches(&alice_app));

        let default = filter_of(&[component("user", MATCH_DEFAULT, None)], false).expect("ok");
        assert!(default.matches(&default_user) && !default.matches(&alice));

        let any_client =
            filter_of(&[component("client-id", MATCH_SPECIFIED, None)], false).expect("ok");
        assert!(
            any_client.matches(&app)
                && any_client.matches(&alice_app)
                && !any_client.matches(&alice)
        );

        let everything = filter_of(&[], false).expect("ok");
        assert!([&alice, &alice_app, &default_user, &app]
            .iter()
            .all(|e| everything.matches(e)));

        let ip = filter_of(&[component("ip", MATCH_SPECIFIED, None)], false).expect("ok");
        assert!(!ip.matches(&alice));
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(filter_of(&[component("user", MATCH_EXACT, None)], false).is_err());
        assert!(filter_of(&[component("user", 7, None)], false).is_err());
        assert!(filter_of(&[component("group", MATCH_SPECIFIED, None)], false).is_err());
        let twice = [
            component("user", MATCH_DEFAULT, None),
            component("user", MATCH_SPECIFIED, None),
        ];
        assert!(filter_of(&twice, false).is_err());
    }

    #[test]
    fn entities_are_spelled_with_null_defaults() {
        let parts = entity_parts(&entity(named("alice"), Some(QuotaName::Default)));
        let spelled: Vec<_> = parts
            .iter()
            .map(|p| {
                (
                    p.entity_type.to_string(),
                    p.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        assert_eq!(
            spelled,
            [
                ("user".to_string(), Some("alice".to_string())),
                ("client-id".to_string(), None)
            ]
        );
    }
}
