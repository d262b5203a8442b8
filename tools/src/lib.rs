//! The commands of the `ringlog` binary, as a library so the integration
//! tests can call their pure parts (configuration merging, request
//! building, response rendering) without a running broker.

pub mod acl;
pub mod admin_api;
pub mod admin_client;
pub mod doctor;
pub mod group;
pub mod http;
pub mod inspect;
pub mod kafka_client;
pub mod partition;
pub mod search;
pub mod search_api;
pub mod serve;
pub mod shard;
pub mod topic;
pub mod user;
