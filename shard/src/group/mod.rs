//! The group coordinator: consumer group membership and committed offsets.
//!
//! Layer: group, with the controller above the runtime (see the crate
//! docs). May import the runtime and every layer below it; never the
//! handlers or the router. The group handlers call it on the group's
//! coordinator shard and translate its answers to Kafka responses.
//!
//! ## Where a group lives
//!
//! Each group has one coordinator shard, `crc32c(group id) % shards`, so
//! all of a group's membership changes run on one core in arrival order
//! without locks, and every router (on any core) finds it without asking
//! anyone. FindCoordinator always names this broker; the router forwards
//! the group's requests to the coordinator shard over the mesh.
//!
//! ## What is durable, and where
//!
//! * **Committed offsets** are meta-log events
//!   ([`ringlog_engine::meta::OffsetsCommitted`]). The coordinator checks
//!   the member and generation, the controller appends the event
//!   (sharing fdatasyncs with concurrent commits: see
//!   `ringlog_engine::meta`) and broadcasts it; the router answers the
//!   commit as soon as the controller reports the event durable (the
//!   verdict goes to the router directly, not back through the
//!   coordinator). OffsetFetch is not a coordinator request: any router
//!   answers it from its own replica, caught up first with everything the
//!   controller published, so it reads every acknowledged commit, with no
//!   meta-log I/O.
//! * **Membership** (generation, protocol, leader, members, assignments) is
//!   stored ([`ringlog_engine::meta::GroupStored`]) when a generation
//!   becomes stable and when the group empties. After a restart the
//!   coordinator resumes the stored generation: members keep heartbeating
//!   with their member ids and assignments instead of all rejoining, and a
//!   member that never comes back is removed when its session (restarted
//!   at load) times out.
//! * Join and sync waits, heartbeat deadlines and pending member ids are
//!   in memory only: a restart is, to clients, a coordinator that briefly
//!   went away.
//!
//! ## Offset retention
//!
//! Kafka's `offsets.retention.minutes` rule (KIP-211): offsets of a group
//! with members never expire; once the group is empty (or never had
//! members), an offset expires `offsets_retention_ms` after the later of
//! its commit and the moment the group emptied. A group left with neither
//! offsets nor members is deleted.

mod membership;

pub use membership::{
    Answer, Group, JoinRequest, JoinResponse, Phase, StoreRequest, SyncResponse, MEMBERS_MAX,
};

use crate::calls::call_controller;
use crate::message::ControllerRequest;
use crate::runtime::ShardClient;
use ringlog_engine::meta::{GroupDeleted, GroupStored, MetaEvent, OffsetsDeleted};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often each shard checks session and rebalance timeouts.
pub const GROUP_TICK_MS: u64 = 100;
/// Most often offset retention is checked; less often for long retention.
const RETENTION_CHECK_MS_MAX: u64 = 60_000;

/// The shard coordinating `group` among `shards` shards.
pub fn coordinator_shard(group: &str, shards: usize) -> usize {
    assert!(shards > 0);
    crc32c::crc32c(group.as_bytes()) as usize % shards
}

/// Wall-clock time in ms since the epoch (stored timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The groups one shard coordinates.
#[derive(Default)]
pub struct Coordinator {
    groups: RefCell<HashMap<String, Group>>,
    /// The metadata replica reset this shard last restored groups from.
    restored_reset: Cell<u64>,
    /// When offset retention was last checked.
    retention_checked: Cell<Option<Instant>>,
}

impl Coordinator {
    /// Ticks every [`GROUP_TICK_MS`] until the shard stops (see
    /// [`Coordinator::tick`]).
    pub fn start_ticking(self: &Rc<Self>, client: &Rc<ShardClient>) {
        let (groups, ticker) = (self.clone(), client.clone());
        client
            .local()
            .every(Duration::from_millis(GROUP_TICK_MS), move || {
                let (groups, ticker) = (groups.clone(), ticker.clone());
                async move { groups.tick(&ticker).await }
            });
    }

    /// Runs `f` on the group, creating it (from its stored record, if the
    /// meta log has one) when it is not in memory yet.
    pub fn with_group<T>(
        &self,
        client: &ShardClient,
        id: &str,
        f: impl FnOnce(&mut Group) -> T,
    ) -> T {
        self.restore(client);
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .entry(id.to_string())
            .or_insert_with(|| Group::new(id, now_ms()));
        f(group)
    }

    /// Runs `f` on the group if it is in memory.
    pub fn with_existing<T>(
        &self,
        client: &ShardClient,
        id: &str,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Option<T> {
        self.restore(client);
        self.groups.borrow_mut().get_mut(id).map(f)
    }

    /// Ids of the groups in memory.
    pub fn live_ids(&self, client: &ShardClient) -> Vec<String> {
        self.restore(client);
        self.groups.borrow().keys().cloned().collect()
    }

    /// Forgets a deleted group.
    pub fn forget(&self, id: &str) {
        self.groups.borrow_mut().remove(id);
    }

    /// After the replica was reset (start-up), loads every stored group
    /// this shard coordinates that is not in memory yet.
    fn restore(&self, client: &ShardClient) {
        let shard = client.local();
        let resets = shard.meta.resets();
        if self.restored_reset.get() == resets {
            return;
        }
        self.restored_reset.set(resets);
        let now = Instant::now();
        let shards = client.shard_count();
        let mut groups = self.groups.borrow_mut();
        shard.meta.with(|state| {
            for (id, stored) in state.groups() {
                if coordinator_shard(id, shards) != shard.id || groups.contains_key(id) {
                    continue;
                }
                if let Some(record) = &stored.record {
                    groups.insert(id.to_string(), Group::restore(id, record, now));
                }
            }
        });
    }

    /// Expires sessions, completes timed-out rebalances and enforces offset
    /// retention; stores what changed.
    pub async fn tick(&self, client: &Rc<ShardClient>) {
        self.restore(client);
        let config = &client.local().config.coordinator;
        let now = Instant::now();
        let at_ms = now_ms();
        let stores: Vec<(String, StoreRequest)> = {
            let mut groups = self.groups.borrow_mut();
            groups
                .iter_mut()
                .flat_map(|(id, group)| {
                    group
                        .expire(&config.groups, now, at_ms)
                        .into_iter()
                        .map(move |s| (id.clone(), s))
                })
                .collect()
        };
        for (group, store) in stores {
            if let Err(e) = self.store(client, &group, store).await {
                tracing::warn!(%group, error = %e, "storing an emptied group failed");
            }
        }
        let interval = Duration::from_millis(
            (config.offsets_retention_ms / 4).clamp(GROUP_TICK_MS, RETENTION_CHECK_MS_MAX),
        );
        if self
            .retention_checked
            .get()
            .is_none_or(|at| now.duration_since(at) >= interval)
        {
            self.retention_checked.set(Some(now));
            self.expire_offsets(client, config.offsets_retention_ms, at_ms)
                .await;
        }
    }

    /// Writes a group's membership to the meta log.
    pub async fn store(
        &self,
        client: &Rc<ShardClient>,
        group: &str,
        store: StoreRequest,
    ) -> Result<(), String> {
        let record = store.record;
        let event = MetaEvent::GroupStored(GroupStored {
            group: group.to_string(),
            generation: record.generation,
            protocol_type: record.protocol_type,
            protocol: record.protocol,
            leader: record.leader,
            state_ms: record.state_ms,
            members: record.members,
        });
        append(client, event).await
    }

    async fn expire_offsets(&self, client: &Rc<ShardClient>, retention_ms: u64, at_ms: i64) {
        let shard = client.local();
        let shards = client.shard_count();
        let retention_ms = retention_ms.min(i64::MAX as u64) as i64;
        let mut events: Vec<(String, bool, Vec<MetaEvent>)> = Vec::new();
        {
            let groups = self.groups.borrow();
            shard.meta.with(|state| {
                for (id, stored) in state.groups() {
                    if coordinator_shard(id, shards) != shard.id {
                        continue;
                    }
                    let live = groups.get(id);
                    if live.is_some_and(|g| !g.is_empty()) {
                        continue; // offsets of a group with members never expire
                    }
                    let empty_since_ms = live
                        .map(Group::phase_since_ms)
                        .or(stored.record.as_ref().map(|r| r.state_ms))
                        .unwrap_or(i64::MIN);
                    let expired: Vec<(String, u32)> = stored
                        .offsets
                        .iter()
                        .flat_map(|(topic, partitions)| {
                            partitions
                                .iter()
                                .filter(|(_, o)| {
                                    o.commit_ms.max(empty_since_ms).saturating_add(retention_ms)
                                        <= at_ms
                                })
                                .map(move |(p, _)| (topic.clone(), *p))
                        })
                        .collect();
                    let all_expired = expired.len() == stored.offset_count();
                    let mut group_events = Vec::new();
                    if !expired.is_empty() {
                        group_events.push(MetaEvent::OffsetsDeleted(OffsetsDeleted {
                            group: id.to_string(),
                            partitions: expired,
                        }));
                    }
                    if all_expired && stored.record.is_some() {
                        group_events.push(MetaEvent::GroupDeleted(GroupDeleted {
                            group: id.to_string(),
                        }));
                    }
                    if !group_events.is_empty() {
                        events.push((id.to_string(), all_expired, group_events));
                    }
                }
            });
        }
        for (group, all_expired, group_events) in events {
            let mut done = true;
            for event in group_events {
                if let Err(e) = append(client, event).await {
                    tracing::warn!(%group, error = %e, "offset expiry failed");
                    done = false;
                    break;
                }
            }
            if done {
                tracing::info!(%group, all_expired, "committed offsets expired");
            }
            if done && all_expired {
                // Nothing is left of an empty group whose offsets expired
                // (unless a member joined meanwhile).
                self.groups
                    .borrow_mut()
                    .retain(|id, g| *id != group || !g.is_empty());
            }
        }
    }
}

/// Appends one event through the controller and waits until this shard's
/// replica has applied it.
pub async fn append(client: &Rc<ShardClient>, event: MetaEvent) -> Result<(), String> {
    let reply = call_controller(
        client,
        ControllerRequest::Append {
            event: Box::new(event),
        },
    )
    .await?;
    match reply.failed {
        Some(why) => Err(why.message),
        None => Ok(()),
    }
}
