//! The commands of the `ringlog` binary, as a library so the integration
//! tests can call their pure parts (configuration merging, request
//! building, response rendering) without a running broker.

pub mod doctor;
pub mod group;
pub mod http;
pub mod inspect;
pub mod kafka_client;
pub mod serve;
pub mod topic;
