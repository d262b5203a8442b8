//! AlterUserScramCredentials (v0, KIP-554), on the controller: upsert or
//! delete users' SCRAM credentials. An upsertion carries the salt, the
//! iteration count and the salted password (derived by the client, so the
//! password never travels); the broker keeps only the keys RFC 5802
//! derives from it (`ringlog_protocol::sasl::credential_from_salted`), as
//! `UserScramCredential` events. A deletion is a
//! `UserScramCredentialDeleted` event.
//!
//! One result per user, and a user's alterations are all applied (one
//! meta append) or none: UNSUPPORTED_SASL_MECHANISM for a mechanism other
//! than SCRAM-SHA-256/512, UNACCEPTABLE_CREDENTIAL for a bad user name,
//! iterations outside Kafka's 4096..=16384, an empty or oversized salt or
//! a salted password of the wrong length, DUPLICATE_RESOURCE for one
//! (user, mechanism) altered twice, RESOURCE_NOT_FOUND for deleting a
//! credential that does not exist. Connections a deleted credential
//! already authenticated stay open (as in Kafka); new ones are refused.
//!
//! Layer: handlers (see the crate docs).

use super::describe_user_scram_credentials::mechanism_of_code;
use super::text;
use crate::controller::Controller;
use crate::message::AdminError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{
    check_user_name, MetaEvent, UserScramCredential, UserScramCredentialDeleted,
    SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN, SCRAM_SALT_BYTES_MAX,
};
use ringlog_protocol::sasl::{credential_from_salted, Mechanism};
use std::collections::BTreeSet;

/// Answers an AlterUserScramCredentials request; `applied` becomes the
/// meta offset the changes reached.
pub async fn handle(
    controller: &Controller,
    _version: i16,
    request: AlterUserScramCredentialsRequest,
    applied: &mut u64,
) -> AlterUserScramCredentialsResponse {
    let mut results = Vec::new();
    for (user, planned) in plan(&request) {
        let outcome = match planned {
            Ok(events) => controller.alter_scram_credentials(&user, events).await,
            Err(e) => Err(e),
        };
        let result = AlterUserScramCredentialsResult::default().with_user(text(user));
        results.push(match outcome {
            Ok(offset) => {
                *applied = (*applied).max(offset);
                result
            }
            Err(e) => result
                .with_error_code(e.error.code())
                .with_error_message(Some(text(e.message))),
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// One alteration of a request, before it is checked.
struct Alteration<'a> {
    user: &'a str,
    mechanism: i8,
    /// `None` for a deletion.
    upsert: Option<(i32, &'a [u8], &'a [u8])>,
}

/// The events of each user's alterations, in the order users first
/// appear, or why that user's alterations are refused.
fn plan(
    request: &AlterUserScramCredentialsRequest,
) -> Vec<(String, Result<Vec<MetaEvent>, AdminError>)> {
    let alterations: Vec<Alteration<'_>> = request
        .deletions
        .iter()
        .map(|d| Alteration {
            user: d.name.as_str(),
            mechanism: d.mechanism,
            upsert: None,
        })
        .chain(request.upsertions.iter().map(|u| Alteration {
            user: u.name.as_str(),
            mechanism: u.mechanism,
            upsert: Some((u.iterations, &u.salt[..], &u.salted_password[..])),
        }))
        .collect();
    let mut users: Vec<&str> = Vec::new();
    for alteration in &alterations {
        if !users.contains(&alteration.user) {
            users.push(alteration.user);
        }
    }
    users
        .into_iter()
        .map(|user| {
            let mine: Vec<&Alteration<'_>> =
                alterations.iter().filter(|a| a.user == user).collect();
            (user.to_string(), user_events(user, &mine))
        })
        .collect()
}

fn user_events(user: &str, alterations: &[&Alteration<'_>]) -> Result<Vec<MetaEvent>, AdminError> {
    let unacceptable = |m: String| AdminError::new(ResponseError::UnacceptableCredential, m);
    check_user_name(user).map_err(unacceptable)?;
    let mut seen = BTreeSet::new();
    let mut events = Vec::with_capacity(alterations.len());
    for alteration in alterations {
        let Some(mechanism) = mechanism_of_code(alteration.mechanism) else {
            return Err(AdminError::new(
                ResponseError::UnsupportedSaslMechanism,
                format!(
                    "mechanism {} is not SCRAM-SHA-256 (1) or SCRAM-SHA-512 (2)",
                    alteration.mechanism
                ),
            ));
        };
        if !seen.insert(mechanism) {
            return Err(AdminError::new(
                ResponseError::DuplicateResource,
                format!("user {user:?}: {mechanism} is altered more than once in the request"),
            ));
        }
        events.push(match alteration.upsert {
            None => MetaEvent::UserScramCredentialDeleted(UserScramCredentialDeleted {
                user: user.to_string(),
                mechanism: mechanism.name().to_string(),
            }),
            Some((iterations, salt, salted_password)) => {
                upsert_event(user, mechanism, iterations, salt, salted_password)
                    .map_err(|m| unacceptable(format!("user {user:?}: {m}")))?
            }
        });
    }
    Ok(events)
}

fn upsert_event(
    user: &str,
    mechanism: Mechanism,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<MetaEvent, String> {
    let iterations = u32::try_from(iterations)
        .ok()
        .filter(|i| (SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(i))
        .ok_or_else(|| {
            format!(
                "iterations {iterations} outside {SCRAM_ITERATIONS_MIN}..={SCRAM_ITERATIONS_MAX}"
            )
        })?;
    if salt.is_empty() || salt.len() > SCRAM_SALT_BYTES_MAX {
        return Err(format!("a salt is 1-{SCRAM_SALT_BYTES_MAX} bytes"));
    }
    let credential = credential_from_salted(mechanism, salted_password, salt, iterations)?;
    Ok(MetaEvent::UserScramCredential(UserScramCredential {
        user: user.to_string(),
        mechanism: mechanism.name().to_string(),
        salt: credential.salt,
        iterations: credential.iterations,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use ringlog_protocol::sasl::{salted_password, CredentialStore, ScramCredential};

    fn upsertion(
        user: &str,
        mechanism: i8,
        iterations: i32,
        salt: &[u8],
    ) -> ScramCredentialUpsertion {
        let keys = mechanism_of_code(mechanism).map_or(32, Mechanism::key_bytes);
        ScramCredentialUpsertion::default()
            .with_name(text(user))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(Bytes::copy_from_slice(salt))
            .with_salted_password(Bytes::from(vec![5; keys]))
    }

    fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default()
            .with_name(text(user))
            .with_mechanism(mechanism)
    }

    fn codes(
        deletions: Vec<ScramCredentialDeletion>,
        upsertions: Vec<ScramCredentialUpsertion>,
    ) -> Vec<(String, Option<ResponseError>)> {
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(deletions)
            .with_upsertions(upsertions);
        plan(&request)
            .into_iter()
            .map(|(user, planned)| (user, planned.err().map(|e| e.error)))
            .collect()
    }

    #[test]
    fn each_user_is_checked_on_its_own() {
        let salt = [1u8; 16];
        assert_eq!(
            codes(
                vec![deletion("bob", 1), deletion("dave", 0)],
                vec![
                    upsertion("alice", 1, 4096, &salt),
                    upsertion("alice", 2, 16384, &salt),
                    upsertion("bob", 1, 4096, &salt),
                    upsertion("carol", 2, 4095, &salt),
                    upsertion("erin", 2, 4096, &[]),
                    upsertion("", 2, 4096, &salt),
                    upsertion("frank", 1, 16385, &salt),
                    upsertion("gina", 2, 4096, &[0; SCRAM_SALT_BYTES_MAX + 1]),
                ],
            ),
            vec![
                ("bob".to_string(), Some(ResponseError::DuplicateResource)),
                (
                    "dave".to_string(),
                    Some(ResponseError::UnsupportedSaslMechanism)
                ),
                ("alice".to_string(), None),
                (
                    "carol".to_string(),
                    Some(ResponseError::UnacceptableCredential)
                ),
                (
                    "erin".to_string(),
                    Some(ResponseError::UnacceptableCredential)
                ),
                (String::new(), Some(ResponseError::UnacceptableCredential)),
                (
                    "frank".to_string(),
                    Some(ResponseError::UnacceptableCredential)
                ),
                (
                    "gina".to_string(),
                    Some(ResponseError::UnacceptableCredential)
                ),
            ]
        );
        let wrong_length =
            upsertion("hal", 2, 4096, &salt).with_salted_password(Bytes::from(vec![5; 32]));
        assert_eq!(
            codes(vec![], vec![wrong_length]),
            vec![(
                "hal".to_string(),
                Some(ResponseError::UnacceptableCredential)
            )]
        );
    }

    struct One(String, Mechanism, ScramCredential);

    impl CredentialStore for One {
        fn credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
            (user == self.0 && mechanism == self.1).then(|| self.2.clone())
        }
    }

    #[test]
    fn an_upsertion_stores_what_the_password_authenticates_against() {
        use ringlog_protocol::sasl::{ServerSession, Step};
        let salt = [3u8; 32];
        let salted = salted_password(Mechanism::ScramSha256, b"pw", &salt, 4096).unwrap();
        let request = AlterUserScramCredentialsRequest::default()
            .with_upsertions(vec![
                upsertion("zoe", 1, 4096, &salt).with_salted_password(Bytes::from(salted))
            ]);
        let mut planned = plan(&request);
        let Some((user, Ok(events))) = planned.pop() else {
            panic!("refused")
        };
        let [MetaEvent::UserScramCredential(event)] = &events[..] else {
            panic!("{events:?}")
        };
        let store = One(
            user,
            Mechanism::ScramSha256,
            ScramCredential {
                salt: event.salt.clone(),
                iterations: event.iterations,
                stored_key: event.stored_key.clone(),
                server_key: event.server_key.clone(),
            },
        );
        let plain = |password: &[u8]| {
            let mut token = b"\0zoe\0".to_vec();
            token.extend_from_slice(password);
            ServerSession::new(Mechanism::Plain).step(&token, &store)
        };
        assert!(matches!(plain(b"pw"), Step::Done { .. }));
        assert!(matches!(plain(b"px"), Step::Failed { .. }));
    }
}
