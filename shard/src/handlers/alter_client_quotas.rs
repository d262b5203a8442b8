//! AlterClientQuotas (on the controller): set and remove the quotas of
//! users and client ids (KIP-546), one entry at a time, each answered with
//! its own error.
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::controller::Controller;
use kafka_protocol::messages::alter_client_quotas_request::EntityData;
use kafka_protocol::messages::alter_client_quotas_response::{self, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{QuotaEntity, QuotaName};

/// Kafka's entity type of a user.
pub const ENTITY_USER: &str = "user";
/// Kafka's entity type of a client id.
pub const ENTITY_CLIENT_ID: &str = "client-id";
/// Kafka's entity type of a client address (connection-rate quotas).
pub const ENTITY_IP: &str = "ip";

/// Answers an AlterClientQuotas request; `applied` becomes the meta offset
/// the changes reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: AlterClientQuotasRequest,
    applied: &mut u64,
) -> AlterClientQuotasResponse {
    let mut entries = Vec::with_capacity(request.entries.len());
    for entry in request.entries {
        let echoed = echo_entity(&entry.entity);
        // Kafka's error message is null on success.
        let result = EntryData::default()
            .with_entity(echoed)
            .with_error_message(None);
        let outcome = match entity_of(&entry.entity) {
            Ok(entity) => {
                let (removed, set): (Vec<_>, Vec<_>) =
                    entry.ops.into_iter().partition(|op| op.remove);
                let set = set
                    .into_iter()
                    .map(|op| (op.key.to_string(), op.value))
                    .collect();
                let remove = removed.into_iter().map(|op| op.key.to_string()).collect();
                controller
                    .alter_client_quotas(entity, set, remove, request.validate_only)
                    .await
                    .map_err(|e| (e.error, e.message))
            }
            Err(message) => Err((ResponseError::InvalidRequest, message)),
        };
        entries.push(match outcome {
            Ok(offset) => {
                *applied = (*applied).max(offset);
                result
            }
            Err((error, message)) => result
                .with_error_code(error.code())
                .with_error_message(Some(text(message))),
        });
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// An entry's entity as its answer repeats it.
pub fn echo_entity(parts: &[EntityData]) -> Vec<alter_client_quotas_response::EntityData> {
    parts
        .iter()
        .map(|part| {
            alter_client_quotas_response::EntityData::default()
                .with_entity_type(part.entity_type.clone())
                .with_entity_name(part.entity_name.clone())
        })
        .collect()
}

/// The entity an entry names: a user, a client id or both, each type at
/// most once; a null name is the type's default entity.
fn entity_of(parts: &[EntityData]) -> Result<QuotaEntity, String> {
    let mut entity = QuotaEntity {
        user: None,
        client_id: None,
    };
    for part in parts {
        let name = match &part.entity_name {
            None => QuotaName::Default,
            Some(name) => QuotaName::Named(name.to_string()),
        };
        let slot = match part.entity_type.as_str() {
            ENTITY_USER => &mut entity.user,
            ENTITY_CLIENT_ID => &mut entity.client_id,
            ENTITY_IP => return Err("ip quotas are not supported".into()),
            other => return Err(format!("unknown entity type {other:?}")),
        };
        if slot.replace(name).is_some() {
            return Err(format!(
                "entity type {:?} named twice",
                part.entity_type.as_str()
            ));
        }
    }
    Ok(entity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn part(entity_type: &str, name: Option<&str>) -> EntityData {
        EntityData::default()
            .with_entity_type(StrBytes::from_string(entity_type.into()))
            .with_entity_name(name.map(|n| StrBytes::from_string(n.into())))
    }

    #[test]
    fn entities_are_read_from_their_parts() {
        let entity =
            entity_of(&[part("client-id", None), part("user", Some("alice"))]).expect("valid");
        assert_eq!(entity.user, Some(QuotaName::Named("alice".into())));
        assert_eq!(entity.client_id, Some(QuotaName::Default));
        assert!(entity_of(&[part("user", Some("a")), part("user", Some("b"))]).is_err());
        assert!(entity_of(&[part("ip", Some("127.0.0.1"))]).is_err());
        assert!(entity_of(&[part("group", Some("g"))]).is_err());
    }
}
