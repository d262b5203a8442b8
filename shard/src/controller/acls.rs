//! ACL bindings (CreateAcls, DeleteAcls): the controller appends them to
//! the metadata log, which ships them to every shard's replica, where the
//! router's authorizer reads them.
//!
//! Layer: controller (see the crate docs). Deletion runs under the
//! exclusive admin permit, so the bindings a filter matched are the ones
//! the event removes: no creation slips in between the match and the
//! append.

use super::Controller;
use crate::authorizer::AclFilter;
use crate::message::{AdminError, AdminResult};
use ringlog_engine::meta::{
    AclBinding, AclsCreated, AclsDeleted, MetaEvent, ACL_BINDINGS_PER_EVENT_MAX,
};
use std::collections::BTreeSet;

impl Controller {
    /// Creates `bindings` (checked by the caller; the log checks them
    /// again), at most [`ACL_BINDINGS_PER_EVENT_MAX`] per event, all with
    /// one fdatasync. Returns the offset replicas must reach.
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> AdminResult<u64> {
        assert!(!bindings.is_empty(), "a creation of no bindings");
        let _permit = self.exclusive().await;
        let count = bindings.len();
        let events = bindings
            .chunks(ACL_BINDINGS_PER_EVENT_MAX)
            .map(|chunk| {
                MetaEvent::AclsCreated(AclsCreated {
                    bindings: chunk.to_vec(),
                })
            })
            .collect();
        let applied = self
            .append_all(events)
            .await
            .map_err(|e| AdminError::engine(&e))?;
        tracing::info!(bindings = count, "ACLs created");
        Ok(applied)
    }

    /// Deletes every binding each filter matches. Returns the matches per
    /// filter (a binding two filters match is removed once, reported for
    /// both, as Kafka does) and the offset replicas must reach.
    pub async fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> AdminResult<(Vec<Vec<AclBinding>>, u64)> {
        let _permit = self.exclusive().await;
        let matched: Vec<Vec<AclBinding>> = self.meta.with_state(|state| {
            filters
                .iter()
                .map(|filter| {
                    state
                        .acls()
                        .bindings()
                        .filter(|b| filter.matches(b))
                        .collect()
                })
                .collect()
        });
        let removed: BTreeSet<&AclBinding> = matched.iter().flatten().collect();
        if removed.is_empty() {
            return Ok((matched, self.meta.applied_offset()));
        }
        let removed: Vec<AclBinding> = removed.into_iter().cloned().collect();
        let events = removed
            .chunks(ACL_BINDINGS_PER_EVENT_MAX)
            .map(|chunk| {
                MetaEvent::AclsDeleted(AclsDeleted {
                    bindings: chunk.to_vec(),
                })
            })
            .collect();
        let applied = self
            .append_all(events)
            .await
            .map_err(|e| AdminError::engine(&e))?;
        tracing::info!(bindings = removed.len(), "ACLs deleted");
        Ok((matched, applied))
    }
}
