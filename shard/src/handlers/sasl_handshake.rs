//! SaslHandshake (v0-v1): the client names the mechanism it will
//! authenticate with. Answered by the router's authentication phase on a
//! SASL listener, and by the router's re-authentication (KIP-368) on an
//! authenticated one; anywhere else (a PLAINTEXT or SSL listener) it is
//! ILLEGAL_SASL_STATE, as Kafka answers it.
//!
//! Layer: handlers (see the crate docs).

use super::text;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::ResponseError;
use ringlog_protocol::sasl::Mechanism;

/// The answer to a handshake on a SASL listener offering `enabled`, and
/// the mechanism chosen (`None`: not offered, answered
/// UNSUPPORTED_SASL_MECHANISM with the list).
pub fn handle(
    enabled: &[Mechanism],
    request: &SaslHandshakeRequest,
) -> (SaslHandshakeResponse, Option<Mechanism>) {
    let chosen = Mechanism::from_name(request.mechanism.as_str()).filter(|m| enabled.contains(m));
    let response = SaslHandshakeResponse::default()
        .with_mechanisms(enabled.iter().map(|m| text(m.name())).collect());
    match chosen {
        Some(_) => (response.with_error_code(0), chosen),
        None => (
            response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
            None,
        ),
    }
}

/// The answer outside the authentication phase.
pub fn refused() -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}
