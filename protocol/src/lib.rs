//! # ringlog-protocol
//!
//! The Kafka wire protocol as the ringlog broker speaks it. Everything here
//! is pure (no I/O, no executor): the router feeds it the bytes it read from
//! a socket and writes back the bytes it returns, so every rule about what
//! goes on the wire is testable without a server.
//!
//! * [`frame`] — size-prefixed frames, with the request size limit enforced
//!   before any body is buffered.
//! * [`versions`] — the one table of APIs and versions this broker
//!   implements; ApiVersions advertises it and dispatch enforces it.
//! * [`request`] — one frame into a typed [`request::Request`] (header of the
//!   right version, body decoded by the `kafka-protocol` crate), with errors
//!   that tell the caller whether it can still answer.
//! * [`response`] — a typed response into one complete frame.
//! * [`api_versions`] — the ApiVersions answer, including the
//!   UNSUPPORTED_VERSION fallback clients probe for.
//! * [`batch`] — splitting a Produce `records` blob into RecordBatch v2
//!   slices without copying or decoding records.
//! * [`errors`] — engine failures as Kafka error codes.
//! * [`fuzzing`] — the properties the fuzz targets (`protocol/fuzz`) check,
//!   shared with the stable test that replays their corpora.
//! * `client` (cargo feature `client`) — the other side of the same wire for
//!   ringlog's own clients (`ringlog bench`, the admin commands): request
//!   frames, response decoding, version choice, error names.
//! * `tls` (cargo feature `tls`) — `--security-protocol` and the TLS files
//!   of the broker and its clients into rustls configurations, and the
//!   principal of a client certificate. The one module that reads files
//!   (the PEM files, once, at start).
//! * `sasl` (cargo feature `sasl`) — the SASL mechanisms, salted SCRAM
//!   credentials and the server side of PLAIN and SCRAM exchanges.
//!
//! Message codecs are never hand-written: bodies and headers come from
//! `kafka-protocol`, which is generated from Kafka's own JSON schemas.
#![warn(missing_docs)]

pub mod api_versions;
pub mod batch;
#[cfg(any(test, feature = "client"))]
pub mod client;
pub mod errors;
pub mod frame;
pub mod fuzzing;
pub mod request;
pub mod response;
#[cfg(any(test, feature = "sasl"))]
pub mod sasl;
#[cfg(any(test, feature = "tls"))]
pub mod tls;
pub mod versions;

/// The `kafka-protocol` crate, re-exported so dependants name message types
/// through the same version this crate decodes with.
pub use kafka_protocol;
pub use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
pub use kafka_protocol::ResponseError;

pub use api_versions::api_versions_response;
pub use batch::{batches, Batches};
pub use errors::{error_code, response_error, response_error_with, Rejection};
pub use frame::{next_frame, FrameBuffer, FrameError};
pub use request::{parse_request, Request, RequestError};
pub use response::{encode_response, encode_response_into, EncodeError};
pub use versions::{check, ApiSupport, VersionError, SUPPORTED_APIS};
