//! SaslAuthenticate (v0-v2, KIP-152): one token of the exchange the
//! handshake chose, checked by [`ringlog_protocol::sasl::ServerSession`]
//! against the SCRAM credentials in this shard's metadata replica.
//! Answered by the router's authentication phase on a SASL listener;
//! anywhere else it is ILLEGAL_SASL_STATE (see `sasl_handshake.rs`).
//!
//! A failure answers SASL_AUTHENTICATION_FAILED with one message for every
//! cause (unknown user, wrong password, malformed token), so the wire does
//! not tell them apart; the cause goes to the broker's log only. The
//! session lifetime is 0: re-authentication (KIP-368) is not offered.
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

/// Steps `session` with the request's token.
pub fn handle(
    session: &mut ServerSession,
    store: &MetaView,
    request: &SaslAuthenticateRequest,
) -> (SaslAuthenticateResponse, Outcome) {
    let response = SaslAuthenticateResponse::default().with_session_lifetime_ms(0);
    match session.step(&request.auth_bytes, store) {
        Step::Challenge(challenge) => (
            response.with_auth_bytes(challenge.into()),
            Outcome::Continue,
        ),
        Step::Done { user, reply } => (
            response.with_auth_bytes(reply.into()),
            Outcome::Authenticated(user),
        ),
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
