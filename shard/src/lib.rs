//! # ringlog-shard
//!
//! The thread-per-core runtime: one pinned glommio executor per shard,
//! each owning its partitions, and a channel mesh between them. Shard 0
//! runs the caller's main task (the controller and, next, the Kafka
//! router); every partition request is executed by the shard that owns it.
#![warn(missing_docs)]

pub mod controller;
pub mod dispatch_order;
pub mod group;
pub mod handlers;
pub mod message;
pub mod meta_view;
pub mod metrics;
pub mod panics;
pub mod partitions;
pub mod router;
pub mod runtime;
pub mod server;
pub mod service;
pub mod topic_config;
