//! SaslAuthenticate (v0-v2, KIP-152): one token of the exchange the
//! handshake chose, checked by [`ringlog_protocol::sasl::ServerSession`]
//! against the SCRAM credentials in this shard's metadata replica.
//! Answered by the router's authentication phase on a SASL listener;
//! anywhere else it is ILLEGAL_SASL_STATE (see `sasl_handshake.rs`).
//!
//! A failure answers SASL_AUTHENTICATION_FAILED with one message for every
//! cause (unknown user, wrong password, malformed token), so the wire does
//! not tell them apart; the cause goes to the broker's log only. A
//! successful answer (v1+) carries the session lifetime,
//! `--connections-max-reauth-ms` (0: the session never expires, and the
//! client never re-authenticates; KIP-368).
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::meta_view::MetaView;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::ResponseError;
use ringlog_protocol::sasl::{
    self, CredentialStore, Mechanism, ScramCredential, ServerSession, Step,
};

impl CredentialStore for MetaView {
    fn credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.with(|state| state.scram_credential(user, mechanism.name()).cloned())
    }
}

/// What a token led to.
pub enum Outcome {
    /// More tokens to come.
    Continue,
    /// Authenticated as this user.
    Authenticated(String),
    /// Refused: the user the client named (if it got that far) and why.
    Failed {
        /// The user the client named.
        user: Option<String>,
        /// Why, for the log.
        reason: String,
    },
}

/// SaslAuthenticate's first version with a session lifetime.
const SESSION_LIFETIME_VERSION: i16 = 1;

/// Steps `session` with the request's token; a finished exchange is
/// answered with `lifetime_ms` as the session lifetime where the
/// `version` has the field (a v0 client is never asked to re-authenticate).
pub fn handle(
    session: &mut ServerSession,
    store: &MetaView,
    request: &SaslAuthenticateRequest,
    version: i16,
    lifetime_ms: u64,
) -> (SaslAuthenticateResponse, Outcome) {
    // Kafka's error message is null unless there is an error.
    let response = SaslAuthenticateResponse::default().with_error_message(None);
    match session.step(&request.auth_bytes, store) {
        Step::Challenge(challenge) => (
            response.with_auth_bytes(challenge.into()),
            Outcome::Continue,
        ),
        Step::Done { user, reply } => {
            let lifetime_ms = if version >= SESSION_LIFETIME_VERSION {
                i64::try_from(lifetime_ms).unwrap_or(i64::MAX)
            } else {
                0
            };
            (
                response
                    .with_auth_bytes(reply.into())
                    .with_session_lifetime_ms(lifetime_ms),
                Outcome::Authenticated(user),
            )
        }
        Step::Failed { user, reason } => (
            response
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(text(sasl::failure_message(session.mechanism())))),
            Outcome::Failed { user, reason },
        ),
    }
}

/// The answer outside the authentication phase (or before a handshake).
pub fn refused() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(text(
            "SaslAuthenticate outside a SASL exchange: SaslHandshake first, on a SASL listener, once",
        )))
}
