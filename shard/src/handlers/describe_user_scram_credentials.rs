//! DescribeUserScramCredentials (v0, KIP-554): which users have SCRAM
//! credentials, for which mechanisms and with how many iterations — never
//! salts or keys. Runs on the router from its shard's metadata replica,
//! like Metadata: credentials are replicated meta state.
//!
//! An absent or empty user list describes every user; a named user with no
//! credential is RESOURCE_NOT_FOUND and a user named twice is
//! DUPLICATE_RESOURCE (one result for it), each in that user's result.
//!
//! Layer: handlers (see the crate docs).

use super::text;
use crate::runtime::ShardClient;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::MetaState;
use ringlog_protocol::sasl::Mechanism;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Kafka's wire code of a SCRAM mechanism (`ScramMechanism` in KIP-554).
pub fn mechanism_code(mechanism: Mechanism) -> i8 {
    match mechanism {
        Mechanism::ScramSha256 => 1,
        Mechanism::ScramSha512 => 2,
        Mechanism::Plain => unreachable!("PLAIN has no stored credential"),
    }
}

/// The SCRAM mechanism of a wire code; `None` for UNKNOWN (0) and anything
/// else.
pub fn mechanism_of_code(code: i8) -> Option<Mechanism> {
    match code {
        1 => Some(Mechanism::ScramSha256),
        2 => Some(Mechanism::ScramSha512),
        _ => None,
    }
}

/// Answers from this shard's replica.
pub fn handle(
    client: &Rc<ShardClient>,
    _version: i16,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    client.local().meta.with(|state| describe(state, &request))
}

fn describe(
    state: &MetaState,
    request: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let named: Vec<String> = match &request.users {
        Some(users) if !users.is_empty() => users.iter().map(|u| u.name.to_string()).collect(),
        _ => state.users().map(str::to_string).collect(),
    };
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for user in &named {
        *times.entry(user).or_default() += 1;
    }
    let mut results = Vec::with_capacity(times.len());
    let mut answered = std::collections::BTreeSet::new();
    for user in &named {
        if !answered.insert(user.as_str()) {
            continue;
        }
        let result = DescribeUserScramCredentialsResult::default().with_user(text(user.clone()));
        let infos: Vec<CredentialInfo> = [Mechanism::ScramSha256, Mechanism::ScramSha512]
            .into_iter()
            .filter_map(|m| {
                state.scram_credential(user, m.name()).map(|c| {
                    CredentialInfo::default()
                        .with_mechanism(mechanism_code(m))
                        .with_iterations(i32::try_from(c.iterations).unwrap_or(i32::MAX))
                })
            })
            .collect();
        results.push(if times[user.as_str()] > 1 {
            result
                .with_error_code(ResponseError::DuplicateResource.code())
                .with_error_message(Some(text(format!(
                    "user {user:?} is named more than once in the request"
                ))))
        } else if infos.is_empty() {
            result
                .with_error_code(ResponseError::ResourceNotFound.code())
                .with_error_message(Some(text(format!("user {user:?} has no SCRAM credential"))))
        } else {
            result.with_credential_infos(infos)
        });
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use ringlog_engine::meta::{MetaEvent, UserScramCredential};

    fn state() -> MetaState {
        let mut state = MetaState::new();
        let credentials = [
            ("alice", Mechanism::ScramSha256, 4096),
            ("alice", Mechanism::ScramSha512, 8192),
            ("bob", Mechanism::ScramSha512, 4096),
        ];
        for (offset, (user, mechanism, iterations)) in credentials.into_iter().enumerate() {
            let keys = mechanism.key_bytes();
            let event = MetaEvent::UserScramCredential(UserScramCredential {
                user: user.into(),
                mechanism: mechanism.name().into(),
                salt: vec![1; 32],
                iterations,
                stored_key: vec![2; keys],
                server_key: vec![3; keys],
            });
            state.apply_event(offset as u64, &event).expect("valid");
        }
        state
    }

    /// A result: user, error code, (mechanism, iterations) of each credential.
    type Described = (String, i16, Vec<(i8, i32)>);

    fn ask(users: Option<&[&str]>) -> Vec<Described> {
        let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
            u.iter()
                .map(|name| UserName::default().with_name(text(*name)))
                .collect()
        }));
        let response = describe(&state(), &request);
        assert_eq!(response.error_code, 0);
        response
            .results
            .iter()
            .map(|r| {
                (
                    r.user.to_string(),
                    r.error_code,
                    r.credential_infos
                        .iter()
                        .map(|i| (i.mechanism, i.iterations))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn describes_all_named_unknown_and_duplicate_users() {
        let all = vec![
            ("alice".to_string(), 0, vec![(1, 4096), (2, 8192)]),
            ("bob".to_string(), 0, vec![(2, 4096)]),
        ];
        assert_eq!(ask(None), all);
        assert_eq!(ask(Some(&[])), all);
        assert_eq!(
            ask(Some(&["bob", "carol", "alice", "alice"])),
            vec![
                ("bob".to_string(), 0, vec![(2, 4096)]),
                (
                    "carol".to_string(),
                    ResponseError::ResourceNotFound.code(),
                    vec![]
                ),
                (
                    "alice".to_string(),
                    ResponseError::DuplicateResource.code(),
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn mechanism_codes_round_trip() {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            assert_eq!(mechanism_of_code(mechanism_code(m)), Some(m));
        }
        assert_eq!(mechanism_of_code(0), None);
        assert_eq!(mechanism_of_code(3), None);
    }
}
