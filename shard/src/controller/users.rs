//! SCRAM credentials (AlterUserScramCredentials): a user's alterations
//! are appended as one batch, so they are all logged or none.
//!
//! Layer: controller (see the crate docs); a part of the controller, which
//! alone writes the metadata log. Why exclusive: a deletion is checked
//! against the durable state (the credential must exist) and must not race
//! another alteration of the same credential between check and append.

use super::Controller;
use crate::message::{AdminError, AdminResult};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::MetaEvent;

impl Controller {
    /// Applies one user's credential `events` (upserts and deletions,
    /// already checked on their own). Returns the meta offset replicas
    /// must reach.
    pub async fn alter_scram_credentials(
        &self,
        user: &str,
        events: Vec<MetaEvent>,
    ) -> AdminResult<u64> {
        assert!(
            !events.is_empty(),
            "a user in the request has an alteration"
        );
        let _permit = self.exclusive().await;
        for event in &events {
            if let MetaEvent::UserScramCredentialDeleted(deleted) = event {
                let stored = self.meta.with_state(|s| {
                    s.scram_credential(&deleted.user, &deleted.mechanism)
                        .is_some()
                });
                if !stored {
                    return Err(AdminError::new(
                        ResponseError::ResourceNotFound,
                        format!(
                            "user {user:?} has no {} credential to delete",
                            deleted.mechanism
                        ),
                    ));
                }
            }
        }
        let applied = self
            .append_all(events)
            .await
            .map_err(|e| AdminError::engine(&e))?;
        tracing::info!(user, "SCRAM credentials altered");
        Ok(applied)
    }
}
