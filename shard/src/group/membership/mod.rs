//! One consumer group's membership state machine (Kafka's classic group
//! protocol), free of I/O so every transition is unit-tested.
//!
//! Layer: group (see the crate docs). Imports only the foundation modules:
//! no mesh, no clock, no meta log.
//!
//! ```text
//!            join                 all joined / timeout          leader syncs (stored)
//!   Empty ----------> Preparing ----------------------> Completing -----------------> Stable
//!     ^               Rebalance <----------------------  Rebalance  <---------------    |
//!     |                  |   ^        join, leave, expiry                join, leave,   |
//!     +--- last member --+   +------------------------------------------ expiry --------+
//!          left (generation bumped, stored)
//! ```
//!
//! Why the broker never looks inside assignments: the classic protocol
//! lets the *leader* member compute them from every member's metadata with
//! a client-side assignor (range, roundrobin, cooperative-sticky...). The
//! coordinator only chooses a protocol all members support, collects the
//! metadata for the leader, and hands each member the bytes the leader
//! gave it. That keeps the broker compatible with assignors it has never
//! heard of.
//!
//! Requests that must wait (JoinGroup until the rebalance completes,
//! SyncGroup until the leader's assignment is stored) park a oneshot
//! sender in their member; the transition that completes them sends the
//! answer. Time is passed in (`now`), so tests drive timeouts without
//! sleeping.

mod messages;
#[cfg(test)]
mod tests;

pub use messages::{Answer, JoinRequest, JoinResponse, SyncResponse};

use crate::config::GroupSettings;
use crate::wake;
use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::ResponseError;
use ringlog_engine::meta::{GroupMemberRecord, GroupRecord};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Members one group admits (Kafka's `group.max.size` is unbounded by
/// default; a bound keeps one group from exhausting the coordinator).
pub const MEMBERS_MAX: usize = 1000;
/// Protocols one member may offer.
pub const PROTOCOLS_MAX: usize = 32;

/// Where a group is in the rebalance protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No members (offsets may exist).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl Phase {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::PreparingRebalance => "PreparingRebalance",
            Phase::CompletingRebalance => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }
}

/// A member of the group.
#[derive(Debug)]
pub struct Member {
    /// Member id issued by the coordinator.
    pub id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Protocols in preference order with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment from the last completed sync.
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncResponse>>,
    session_deadline: Instant,
}

impl Member {
    /// This member's metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn refresh(&mut self, now: Instant) {
        self.session_deadline = now + timeout(self.session_timeout_ms);
    }
}

fn timeout(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// A membership to write to the meta log before going on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRequest {
    /// The generation being stored.
    pub generation: i32,
    /// The record.
    pub record: GroupRecord,
}

/// One consumer group on its coordinator shard.
pub struct Group {
    id: String,
    phase: Phase,
    /// When the group entered its phase (ms since the epoch).
    phase_since_ms: i64,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or
    /// their session timeout passes. Bounded by [`MEMBERS_MAX`].
    pending_members: HashMap<String, Instant>,
    /// Static members: instance id -> member id.
    static_members: HashMap<String, String>,
    /// The rebalance gives up on members that have not rejoined by then.
    rebalance_deadline: Option<Instant>,
    /// The first rebalance of an empty group completes no earlier.
    join_not_before: Option<Instant>,
    /// When the initial delay started (it never stretches past the
    /// rebalance timeout from here).
    initial_join_started: Option<Instant>,
    /// A leader's assignment waiting to be stored: generation and
    /// assignments by member id.
    pending_assignment: Option<(i32, HashMap<String, Bytes>)>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, now_ms: i64) -> Self {
        Group {
            id: id.to_string(),
            phase: Phase::Empty,
            phase_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            join_not_before: None,
            initial_join_started: None,
            pending_assignment: None,
        }
    }

    /// A group restored from its stored record after a restart: stable at
    /// the stored generation if it had members (their sessions start
    /// again now), empty otherwise.
    pub fn restore(id: &str, record: &GroupRecord, now: Instant) -> Self {
        let mut group = Group::new(id, record.state_ms);
        group.generation = record.generation;
        group.protocol_type =
            Some(record.protocol_type.clone()).filter(|t| !t.is_empty() || record.generation > 0);
        if record.members.is_empty() {
            return group;
        }
        group.phase = Phase::Stable;
        group.protocol = Some(record.protocol.clone());
        group.leader = Some(record.leader.clone());
        for m in &record.members {
            let protocols = vec![(record.protocol.clone(), Bytes::from(m.subscription.clone()))];
            let mut member = Member {
                id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols,
                assignment: Bytes::from(m.assignment.clone()),
                join_waiter: None,
                sync_waiter: None,
                session_deadline: now,
            };
            member.refresh(now);
            if let Some(instance) = &m.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(m.member_id.clone(), member);
        }
        group
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The generation id.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The protocol type, if any member ever joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The chosen protocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The members, by member id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// When the group entered its phase (ms since the epoch).
    pub fn phase_since_ms(&self) -> i64 {
        self.phase_since_ms
    }

    /// Kafka's member id shape: the client (or instance) id and a UUID.
    fn new_member_id(client_id: &str, instance_id: Option<&str>) -> String {
        let prefix = instance_id.unwrap_or(client_id);
        let id = uuid::Uuid::from_bytes(crate::ids::random_uuid());
        format!("{prefix}-{id}")
    }

    fn set_phase(&mut self, phase: Phase, now_ms: i64) {
        self.phase = phase;
        self.phase_since_ms = now_ms;
    }

    /// Protocols every member (and the candidate `protocols`, if given)
    /// supports.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Checks the fields every JoinGroup must get right.
    fn check_join(&self, request: &JoinRequest, settings: &GroupSettings) -> Option<ResponseError> {
        if !(settings.min_session_timeout_ms..=settings.max_session_timeout_ms)
            .contains(&request.session_timeout_ms)
        {
            return Some(ResponseError::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty()
            || request.protocols.is_empty()
            || request.protocols.len() > PROTOCOLS_MAX
        {
            return Some(ResponseError::InconsistentGroupProtocol);
        }
        None
    }

    /// Handles a JoinGroup. May start a rebalance or complete one.
    pub fn join(
        &mut self,
        request: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
        now_ms: i64,
    ) -> Answer<JoinResponse> {
        if let Some(error) = self.check_join(&request, settings) {
            return Answer::Now(JoinResponse::error(error, &request.member_id));
        }
        if request.member_id.is_empty() {
            return self.join_unknown(request, settings, now, now_ms);
        }
        let id = request.member_id.clone();
        if let Some(instance) = &request.instance_id {
            match self.static_members.get(instance) {
                Some(known) if *known != id => {
                    return Answer::Now(JoinResponse::error(ResponseError::FencedInstanceId, &id))
                }
                _ => {}
            }
        }
        if self.pending_members.remove(&id).is_some() {
            return self.add_member(id, request, now, now_ms, settings);
        }
        let Some(member) = self.members.get(&id) else {
            return Answer::Now(JoinResponse::error(ResponseError::UnknownMemberId, &id));
        };
        if !self.supports(&request.protocol_type, &request.protocols) {
            return Answer::Now(JoinResponse::error(
                ResponseError::InconsistentGroupProtocol,
                &id,
            ));
        }
        let unchanged = member.protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.phase {
            Phase::CompletingRebalance | Phase::Stable if unchanged && !is_leader => {
                // A retried or repeated join with the same metadata: the
                // current generation stands.
                let member = self.members.get_mut(&id).expect("checked above");
                member.refresh(now);
                Answer::Now(self.join_answer(&id))
            }
            Phase::CompletingRebalance if unchanged => {
                let member = self.members.get_mut(&id).expect("checked above");
                member.refresh(now);
                Answer::Now(self.join_answer(&id))
            }
            _ => {
                let (tx, rx) = wake::channel();
                let member = self.members.get_mut(&id).expect("checked above");
                member.protocols = request.protocols;
                member.session_timeout_ms = request.session_timeout_ms;
                member.rebalance_timeout_ms = request.rebalance_timeout_ms;
                member.join_waiter = Some(tx);
                if self.phase != Phase::PreparingRebalance {
                    self.prepare_rebalance(now, now_ms, settings);
                }
                self.try_complete_join(now, now_ms);
                Answer::Later(rx)
            }
        }
    }

    fn join_unknown(
        &mut self,
        request: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
        now_ms: i64,
    ) -> Answer<JoinResponse> {
        if !self.supports(&request.protocol_type, &request.protocols) {
            return Answer::Now(JoinResponse::error(
                ResponseError::InconsistentGroupProtocol,
                "",
            ));
        }
        if let Some(instance) = request.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old_id, request, settings, now, now_ms);
            }
            let id = Self::new_member_id(&request.client_id, Some(&instance));
            return self.add_member(id, request, now, now_ms, settings);
        }
        if self.members.len() + self.pending_members.len() >= MEMBERS_MAX {
            return Answer::Now(JoinResponse::error(ResponseError::GroupMaxSizeReached, ""));
        }
        let id = Self::new_member_id(&request.client_id, None);
        if request.require_known_member_id {
            self.pending_members
                .insert(id.clone(), now + timeout(request.session_timeout_ms));
            return Answer::Now(JoinResponse::error(ResponseError::MemberIdRequired, &id));
        }
        self.add_member(id, request, now, now_ms, settings)
    }

    /// A static member came back with a new connection (and no member id):
    /// it takes over its old membership under a new id; the old id is
    /// fenced. In a stable group with unchanged metadata no rebalance
    /// happens — the point of static membership.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        request: JoinRequest,
        settings: &GroupSettings,
        now: Instant,
        now_ms: i64,
    ) -> Answer<JoinResponse> {
        let instance = request.instance_id.clone().expect("static member");
        let new_id = Self::new_member_id(&request.client_id, Some(&instance));
        let mut member = self
            .members
            .remove(old_id)
            .expect("static member is a member");
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResponse::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResponse::error(ResponseError::FencedInstanceId));
        }
        let unchanged = member.protocols == request.protocols;
        member.id = new_id.clone();
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.protocols = request.protocols;
        member.refresh(now);
        self.members.insert(new_id.clone(), member);
        self.static_members.insert(instance, new_id.clone());
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if let Some((_, assignments)) = &mut self.pending_assignment {
            if let Some(a) = assignments.remove(old_id) {
                assignments.insert(new_id.clone(), a);
            }
        }
        if self.phase == Phase::Stable && unchanged {
            return Answer::Now(self.join_answer(&new_id));
        }
        let (tx, rx) = wake::channel();
        self.members.get_mut(&new_id).expect("inserted").join_waiter = Some(tx);
        if self.phase != Phase::PreparingRebalance {
            self.prepare_rebalance(now, now_ms, settings);
        }
        self.try_complete_join(now, now_ms);
        Answer::Later(rx)
    }

    fn add_member(
        &mut self,
        id: String,
        request: JoinRequest,
        now: Instant,
        now_ms: i64,
        settings: &GroupSettings,
    ) -> Answer<JoinResponse> {
        if self.members.len() >= MEMBERS_MAX {
            return Answer::Now(JoinResponse::error(ResponseError::GroupMaxSizeReached, &id));
        }
        let (tx, rx) = wake::channel();
        let mut member = Member {
            id: id.clone(),
            instance_id: request.instance_id.clone(),
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: request.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            session_deadline: now,
        };
        member.refresh(now);
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type);
        }
        if let Some(instance) = request.instance_id {
            self.static_members.insert(instance, id.clone());
        }
        self.members.insert(id, member);
        match self.phase {
            Phase::PreparingRebalance => self.extend_initial_delay(now, settings),
            _ => self.prepare_rebalance(now, now_ms, settings),
        }
        self.try_complete_join(now, now_ms);
        Answer::Later(rx)
    }

    /// A member joining during the initial delay pushes completion back
    /// by the delay again, up to the rebalance timeout.
    fn extend_initial_delay(&mut self, now: Instant, settings: &GroupSettings) {
        if let (Some(_), Some(started)) = (self.join_not_before, self.initial_join_started) {
            let limit = started + self.max_rebalance_timeout();
            let wanted = now + Duration::from_millis(settings.initial_rebalance_delay_ms);
            self.join_not_before = Some(wanted.min(limit));
        }
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| timeout(m.rebalance_timeout_ms))
            .max()
            .unwrap_or_default()
    }

    /// Starts a rebalance: members must rejoin by the rebalance timeout.
    fn prepare_rebalance(&mut self, now: Instant, now_ms: i64, settings: &GroupSettings) {
        if self.phase == Phase::CompletingRebalance {
            // The generation being synced is abandoned.
            self.pending_assignment = None;
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncResponse::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let was_empty = self.phase == Phase::Empty;
        self.set_phase(Phase::PreparingRebalance, now_ms);
        self.rebalance_deadline = Some(now + self.max_rebalance_timeout());
        if was_empty && settings.initial_rebalance_delay_ms > 0 {
            self.initial_join_started = Some(now);
            let delay = Duration::from_millis(settings.initial_rebalance_delay_ms);
            self.join_not_before = Some((now + delay).min(now + self.max_rebalance_timeout()));
        } else {
            self.join_not_before = None;
            self.initial_join_started = None;
        }
    }

    /// Completes the join phase if every member rejoined (and the initial
    /// delay passed), or the rebalance timeout expired. Returns a record to
    /// store when the group became empty.
    pub fn try_complete_join(&mut self, now: Instant, now_ms: i64) -> Option<StoreRequest> {
        if self.phase != Phase::PreparingRebalance {
            return None;
        }
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| now >= d);
        let delay_passed = self.join_not_before.is_none_or(|t| now >= t);
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        if !(deadline_passed || (delay_passed && all_joined)) {
            return None;
        }
        if deadline_passed {
            let gone: Vec<String> = self
                .members
                .values()
                .filter(|m| m.join_waiter.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in gone {
                self.remove_member_only(&id);
            }
        }
        self.rebalance_deadline = None;
        self.join_not_before = None;
        self.initial_join_started = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.set_phase(Phase::Empty, now_ms);
            self.protocol = None;
            self.leader = None;
            return Some(self.store_request(now_ms));
        }
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.protocol = self.select_protocol();
        self.set_phase(Phase::CompletingRebalance, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let answer = self.join_answer(&id);
            let member = self.members.get_mut(&id).expect("listed");
            member.refresh(now);
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(answer);
            }
        }
        None
    }

    /// Kafka's vote: among protocols every member supports, each member
    /// votes for the first it lists; most votes wins (ties: the first
    /// candidate in the leader's order).
    fn select_protocol(&self) -> Option<String> {
        let leader = self.members.get(self.leader.as_ref()?)?;
        let candidates: Vec<&String> = leader
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for member in self.members.values() {
            let choice = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n));
            if let Some((name, _)) = choice {
                if let Some(entry) = votes.iter_mut().find(|(_, c)| *c == name) {
                    entry.0 += 1;
                }
            }
        }
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .into_iter()
            .find(|(n, _)| *n == best)
            .map(|(_, name)| name.clone())
    }

    fn join_answer(&self, id: &str) -> JoinResponse {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if leader == id {
            self.members
                .values()
                .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            member_id: id.to_string(),
            members,
        }
    }

    /// Checks a request from a member of a generation: member known, not
    /// fenced, generation current.
    pub fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        if let Some(instance) = instance_id {
            if let Some(known) = self.static_members.get(instance) {
                if known != member_id {
                    return Some(ResponseError::FencedInstanceId);
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Some(ResponseError::IllegalGeneration);
        }
        None
    }

    /// Handles a SyncGroup. A leader's sync during CompletingRebalance
    /// returns the record to store; the coordinator stores it and calls
    /// [`Group::stored`].
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
        now_ms: i64,
    ) -> (Answer<SyncResponse>, Option<StoreRequest>) {
        if let Some(error) = self.check_member(member_id, instance_id, generation) {
            return (Answer::Now(SyncResponse::error(error)), None);
        }
        let member = self.members.get_mut(member_id).expect("checked");
        member.refresh(now);
        match self.phase {
            Phase::Empty | Phase::PreparingRebalance => (
                Answer::Now(SyncResponse::error(ResponseError::RebalanceInProgress)),
                None,
            ),
            Phase::Stable => (Answer::Now(self.sync_answer(member_id)), None),
            Phase::CompletingRebalance => {
                let (tx, rx) = wake::channel();
                member.sync_waiter = Some(tx);
                let is_leader = self.leader.as_deref() == Some(member_id);
                if !is_leader || self.pending_assignment.is_some() {
                    return (Answer::Later(rx), None);
                }
                let assignments: HashMap<String, Bytes> = assignments
                    .into_iter()
                    .filter(|(id, _)| self.members.contains_key(id))
                    .collect();
                self.pending_assignment = Some((self.generation, assignments));
                let mut store = self.store_request(now_ms);
                let pending = &self.pending_assignment.as_ref().expect("set").1;
                for member in &mut store.record.members {
                    member.assignment = pending
                        .get(&member.member_id)
                        .map(|a| a.to_vec())
                        .unwrap_or_default();
                }
                (Answer::Later(rx), Some(store))
            }
        }
    }

    /// The leader's assignment for `generation` is durable (`ok`) or could
    /// not be stored: the group becomes stable and every waiting member
    /// gets its assignment, or every waiter gets the error and the group
    /// rebalances.
    pub fn stored(
        &mut self,
        generation: i32,
        ok: bool,
        settings: &GroupSettings,
        now: Instant,
        now_ms: i64,
    ) {
        let Some((pending_generation, assignments)) = self.pending_assignment.take() else {
            return;
        };
        if pending_generation != generation
            || self.generation != generation
            || self.phase != Phase::CompletingRebalance
        {
            return; // a rebalance began meanwhile
        }
        if !ok {
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ =
                        waiter.send(SyncResponse::error(ResponseError::CoordinatorNotAvailable));
                }
            }
            self.prepare_rebalance(now, now_ms, settings);
            return;
        }
        for member in self.members.values_mut() {
            member.assignment = assignments.get(&member.id).cloned().unwrap_or_default();
        }
        self.set_phase(Phase::Stable, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let answer = self.sync_answer(&id);
            if let Some(waiter) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                let _ = waiter.send(answer);
            }
        }
    }

    fn sync_answer(&self, id: &str) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self
                .members
                .get(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Handles a Heartbeat: keeps the session alive, and tells the member
    /// to rejoin while a rebalance is under way.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if let Some(instance) = instance_id {
            if self
                .static_members
                .get(instance)
                .is_some_and(|known| known != member_id)
            {
                return Some(ResponseError::FencedInstanceId);
            }
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        member.refresh(now);
        match self.phase {
            Phase::Empty => Some(ResponseError::UnknownMemberId),
            Phase::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            Phase::CompletingRebalance | Phase::Stable if generation != self.generation => {
                Some(ResponseError::IllegalGeneration)
            }
            Phase::CompletingRebalance | Phase::Stable => None,
        }
    }

    /// Handles one member of a LeaveGroup; returns the error for it, and a
    /// record to store if the group became empty.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        settings: &GroupSettings,
        now: Instant,
        now_ms: i64,
    ) -> (Option<ResponseError>, Option<StoreRequest>) {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(known) if !member_id.is_empty() && known != member_id => {
                    return (Some(ResponseError::FencedInstanceId), None)
                }
                Some(known) => known.clone(),
                None => return (Some(ResponseError::UnknownMemberId), None),
            },
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&id).is_some() {
            return (None, None);
        }
        if !self.members.contains_key(&id) {
            return (Some(ResponseError::UnknownMemberId), None);
        }
        (None, self.remove_member(&id, settings, now, now_ms))
    }

    /// Removes members whose session expired and pending member ids nobody
    /// used, and completes a rebalance whose time is up. Returns records
    /// to store.
    pub fn expire(
        &mut self,
        settings: &GroupSettings,
        now: Instant,
        now_ms: i64,
    ) -> Vec<StoreRequest> {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                // A member parked in JoinGroup is covered by the rebalance
                // timeout, not its session.
                m.join_waiter.is_none() && m.session_deadline <= now
            })
            .map(|m| m.id.clone())
            .collect();
        let mut stores = Vec::new();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            stores.extend(self.remove_member(&id, settings, now, now_ms));
        }
        stores.extend(self.try_complete_join(now, now_ms));
        stores
    }

    fn remove_member_only(&mut self, id: &str) {
        if let Some(mut member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResponse::error(ResponseError::UnknownMemberId, id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResponse::error(ResponseError::UnknownMemberId));
            }
        }
    }

    fn remove_member(
        &mut self,
        id: &str,
        settings: &GroupSettings,
        now: Instant,
        now_ms: i64,
    ) -> Option<StoreRequest> {
        self.remove_member_only(id);
        match self.phase {
            Phase::Stable | Phase::CompletingRebalance => {
                self.prepare_rebalance(now, now_ms, settings);
                self.try_complete_join(now, now_ms)
            }
            Phase::PreparingRebalance => self.try_complete_join(now, now_ms),
            Phase::Empty => None,
        }
    }

    /// The membership as the meta log stores it.
    pub fn store_request(&self, now_ms: i64) -> StoreRequest {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|m| GroupMemberRecord {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscription: m.metadata(&protocol).to_vec(),
                assignment: m.assignment.to_vec(),
            })
            .collect();
        StoreRequest {
            generation: self.generation,
            record: GroupRecord {
                generation: self.generation,
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocol,
                leader: self.leader.clone().unwrap_or_default(),
                state_ms: now_ms,
                members,
            },
        }
    }

    /// Whether a commit from this member at this generation is allowed
    /// (Kafka's rules); `None` means commit.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if generation < 0 && member_id.is_empty() && self.phase == Phase::Empty {
            return None; // a "simple" commit (admin tool, assign() consumer)
        }
        if self.phase == Phase::CompletingRebalance {
            return Some(ResponseError::RebalanceInProgress);
        }
        if let Some(error) = self.check_member(member_id, instance_id, generation) {
            return Some(error);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.refresh(now);
        }
        None
    }

    /// Whether the group has no members and no rebalance in flight.
    pub fn is_empty(&self) -> bool {
        self.phase == Phase::Empty && self.members.is_empty()
    }
}
