//! # ringlog-shard
//!
//! The thread-per-core broker: one pinned glommio executor per shard,
//! each owning its partitions, joined by a channel mesh; the controller,
//! the group coordinator and the Kafka router on top.
//!
//! ## Layers
//!
//! Each module imports only from its own layer and the layers below it,
//! so the crate reads from the bottom up and no module calls into one
//! above it. Where a lower layer must reach a higher one (a request for the
//! controller or a group's coordinator arriving over the mesh, a router to
//! start on another shard), it does so through [`runtime::Service`], which
//! the top layer implements and hands in at start-up.
//!
//! | layer | modules | may import |
//! |---|---|---|
//! | start-up | [`server`] | everything |
//! | router | [`router`] | handlers and below |
//! | handlers | [`handlers`] | controller, group and below |
//! | state machines | [`controller`], [`group`] | runtime and below; never handlers |
//! | runtime | [`runtime`], [`shard`], [`calls`], [`archiving`], [`quota`] | partitions, meta view, foundation |
//! | shard state | [`partitions`], [`meta_view`] | foundation |
//! | foundation | [`wake`], [`config`], [`authorizer`], [`admin`], [`load`], [`crash`], [`message`], [`topic_config`], [`ids`], [`gate`], [`dispatch_order`], [`panics`], [`metrics`], [`limits`], [`tiered`], [`search`] | each other, the engine and protocol crates |
#![warn(missing_docs)]

pub mod admin;
pub mod archiving;
pub mod authorizer;
pub mod calls;
pub mod config;
pub mod controller;
pub mod crash;
pub mod dispatch_order;
pub mod gate;
pub mod group;
pub mod handlers;
pub mod ids;
pub mod limits;
pub mod load;
pub mod message;
pub mod meta_view;
pub mod metrics;
pub mod panics;
pub mod partitions;
pub mod quota;
pub mod router;
pub mod runtime;
pub mod search;
pub mod server;
pub mod shard;
pub mod tiered;
pub mod topic_config;
pub mod wake;
