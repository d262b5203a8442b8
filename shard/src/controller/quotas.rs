//! Client quotas (AlterClientQuotas): one metadata event per entity.
//!
//! Layer: controller (see the crate docs); a part of the controller, which
//! alone writes the metadata log. A change is checked with the state's
//! own rule before it is logged, so a refused change is an answer to the
//! client, never an event replay would refuse.

use super::Controller;
use crate::message::{AdminError, AdminResult};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::quota::check_quota_change;
use ringlog_engine::meta::{ClientQuotasAltered, MetaEvent, QuotaEntity};

impl Controller {
    /// Sets and removes quotas of one entity; returns the meta offset the
    /// change reached (the current one when nothing changes).
    pub async fn alter_client_quotas(
        &self,
        entity: QuotaEntity,
        set: Vec<(String, f64)>,
        remove: Vec<String>,
        validate_only: bool,
    ) -> AdminResult<u64> {
        check_quota_change(&entity, &set, &remove)
            .map_err(|m| AdminError::new(ResponseError::InvalidRequest, m))?;
        if validate_only || (set.is_empty() && remove.is_empty()) {
            return Ok(self.meta.applied_offset());
        }
        let described = entity.to_string();
        let applied = self
            .append(MetaEvent::ClientQuotasAltered(ClientQuotasAltered {
                entity,
                set: set
                    .into_iter()
                    .map(|(key, value)| (key, value.to_bits()))
                    .collect(),
                remove,
            }))
            .await
            .map_err(|e| AdminError::engine(&e))?;
        tracing::info!(entity = %described, "client quotas changed");
        Ok(applied)
    }
}
