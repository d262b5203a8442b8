use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn settings() -> GroupSettings {
    GroupSettings {
        initial_rebalance_delay_ms: 0,
        ..GroupSettings::default()
    }
}

fn join_request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("{member_id}:{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn now_answer<T>(answer: Answer<T>) -> T {
    match answer {
        Answer::Now(t) => t,
        Answer::Later(_) => panic!("expected an immediate answer"),
    }
}

fn later<T>(answer: Answer<T>) -> wake::Answer<T> {
    match answer {
        Answer::Later(rx) => rx,
        Answer::Now(_) => panic!("expected a parked request"),
    }
}

fn ready<T>(rx: &mut wake::Answer<T>) -> T {
    rx.get_mut()
        .try_recv()
        .expect("not cancelled")
        .expect("answered by now")
}

/// KIP-394: an unknown member gets an id first, then joins with it.
fn join_new(
    group: &mut Group,
    protocols: &[&str],
    now: Instant,
) -> (String, wake::Answer<JoinResponse>) {
    let first = now_answer(group.join(join_request("", protocols), &settings(), now, 0));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let id = first.member_id;
    assert!(!id.is_empty());
    let rx = later(group.join(join_request(&id, protocols), &settings(), now, 0));
    (id, rx)
}

/// One member: join, lead, sync its own assignment, stable.
#[test]
fn single_member_joins_leads_and_syncs() {
    let now = Instant::now();
    let mut group = Group::new("g", 0);
    let (id, mut joined) = join_new(&mut group, &["range"], now);
    let answer = ready(&mut joined);
    assert_eq!(answer.error, None);
    assert_eq!(answer.generation, 1);
    assert_eq!(answer.leader, id);
    assert_eq!(answer.protocol.as_deref(), Some("range"));
    assert_eq!(answer.members.len(), 1, "the leader gets the member list");
    assert_eq!(group.phase(), Phase::CompletingRebalance);
    let (answer, store) = group.sync(
        &id,
        None,
        1,
        vec![(id.clone(), Bytes::from_static(b"a"))],
        now,
        5,
    );
    let mut synced = later(answer);
    let store = store.expect("the leader's assignment is stored first");
    assert_eq!(store.record.members[0].assignment, b"a");
    assert!(
        synced.get_mut().try_recv().expect("pending").is_none(),
        "answered only once stored"
    );
    group.stored(store.generation, true, &settings(), now, 6);
    assert_eq!(ready(&mut synced).assignment, Bytes::from_static(b"a"));
    assert_eq!(group.phase(), Phase::Stable);
    assert_eq!(group.heartbeat(&id, None, 1, now), None);
    assert_eq!(
        group.heartbeat(&id, None, 0, now),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.heartbeat("nobody", None, 1, now),
        Some(ResponseError::UnknownMemberId)
    );
}

/// A second member triggers a rebalance: the first learns it from its
/// heartbeat, rejoins, and both get the next generation.
#[test]
fn second_member_rebalances_and_protocol_is_voted() {
    let now = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, mut a_joined) = join_new(&mut group, &["roundrobin", "range"], now);
    ready(&mut a_joined);
    let (answer, store) = group.sync(&a, None, 1, vec![], now, 0);
    group.stored(store.expect("leader").generation, true, &settings(), now, 0);
    ready(&mut later(answer));
    let (_b, mut b_joined) = join_new(&mut group, &["range", "roundrobin"], now);
    assert_eq!(group.phase(), Phase::PreparingRebalance);
    assert!(
        b_joined.get_mut().try_recv().expect("pending").is_none(),
        "waits for a to rejoin"
    );
    assert_eq!(
        group.heartbeat(&a, None, 1, now),
        Some(ResponseError::RebalanceInProgress)
    );
    let mut a_rejoined = later(group.join(
        join_request(&a, &["roundrobin", "range"]),
        &settings(),
        now,
        0,
    ));
    let (a_answer, b_answer) = (ready(&mut a_rejoined), ready(&mut b_joined));
    assert_eq!((a_answer.generation, b_answer.generation), (2, 2));
    assert_eq!(a_answer.leader, a, "the leader stays");
    assert_eq!(a_answer.members.len(), 2);
    assert!(b_answer.members.is_empty(), "followers get no member list");
    // One vote each: the tie goes to the first candidate in the
    // leader's order.
    assert_eq!(a_answer.protocol.as_deref(), Some("roundrobin"));
    // A member with nothing in common is refused.
    let odd = group.join(join_request("", &["sticky"]), &settings(), now, 0);
    assert_eq!(
        now_answer(odd).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
}

/// Stable one-member group: join, lead, sync, stored.
fn stable_one(now: Instant) -> (Group, String) {
    let mut group = Group::new("g", 0);
    let (a, mut a_joined) = join_new(&mut group, &["range"], now);
    ready(&mut a_joined);
    let (answer, store) = group.sync(&a, None, 1, vec![], now, 0);
    group.stored(store.expect("leader").generation, true, &settings(), now, 0);
    ready(&mut later(answer));
    (group, a)
}

/// A member that stops heartbeating is dropped after its session,
/// even while a rebalance waits for it.
#[test]
fn silent_member_expires_after_its_session() {
    let start = Instant::now();
    let (mut group, _a) = stable_one(start);
    let (b, mut b_joined) = join_new(&mut group, &["range"], start);
    let before = start + timeout(SESSION_MS) - Duration::from_millis(1);
    assert!(group.expire(&settings(), before, 0).is_empty());
    assert!(b_joined.get_mut().try_recv().expect("pending").is_none());
    group.expire(&settings(), start + timeout(SESSION_MS), 0);
    let answer = ready(&mut b_joined);
    assert_eq!((answer.generation, answer.leader.as_str()), (2, b.as_str()));
    assert_eq!(group.members().count(), 1);
    let (answer, store) = group.sync(&b, None, 2, vec![], start, 0);
    group.stored(
        store.expect("leader").generation,
        true,
        &settings(),
        start,
        0,
    );
    ready(&mut later(answer));
    // b goes silent too: the group empties and asks to be stored.
    let late = start + timeout(SESSION_MS) * 2;
    let stores = group.expire(&settings(), late, 9);
    assert_eq!(group.phase(), Phase::Empty);
    assert_eq!(stores.len(), 1);
    assert!(stores[0].record.members.is_empty());
    assert_eq!(stores[0].generation, 3, "emptying bumps the generation");
}

/// A member that heartbeats but never rejoins is dropped at the
/// rebalance timeout.
#[test]
fn member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let start = Instant::now();
    let (mut group, a) = stable_one(start);
    let (b, mut b_joined) = join_new(&mut group, &["range"], start);
    let mut now = start;
    while now < start + timeout(REBALANCE_MS) - Duration::from_secs(1) {
        now += Duration::from_secs(1);
        assert_eq!(
            group.heartbeat(&a, None, 1, now),
            Some(ResponseError::RebalanceInProgress)
        );
        assert!(group.expire(&settings(), now, 0).is_empty());
    }
    assert!(b_joined.get_mut().try_recv().expect("pending").is_none());
    group.expire(&settings(), start + timeout(REBALANCE_MS), 0);
    assert_eq!(ready(&mut b_joined).leader, b);
    assert_eq!(
        group.heartbeat(&a, None, 1, now),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn leave_rebalances_and_last_leave_empties() {
    let now = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, mut a_joined) = join_new(&mut group, &["range"], now);
    ready(&mut a_joined);
    let (b, mut b_joined) = join_new(&mut group, &["range"], now);
    let mut a_rejoined = later(group.join(join_request(&a, &["range"]), &settings(), now, 0));
    assert_eq!(ready(&mut a_rejoined).generation, 2);
    assert_eq!(ready(&mut b_joined).generation, 2);
    assert_eq!(
        group.leave("nobody", None, &settings(), now, 0).0,
        Some(ResponseError::UnknownMemberId)
    );
    let (error, store) = group.leave(&a, None, &settings(), now, 0);
    assert_eq!((error, store), (None, None));
    assert_eq!(group.phase(), Phase::PreparingRebalance);
    let mut b_rejoined = later(group.join(join_request(&b, &["range"]), &settings(), now, 0));
    assert_eq!(
        ready(&mut b_rejoined).leader,
        b,
        "the leader moves to a remaining member"
    );
    let (error, store) = group.leave(&b, None, &settings(), now, 0);
    assert_eq!(error, None);
    assert!(store.expect("emptied").record.members.is_empty());
    assert!(group.is_empty());
}

/// Static members: rejoining with a new connection keeps the
/// assignment without a rebalance; the old member id is fenced.
#[test]
fn static_member_rejoins_without_rebalance_and_fences_the_old_id() {
    let now = Instant::now();
    let mut group = Group::new("g", 0);
    let static_join = |id: &str| JoinRequest {
        instance_id: Some("instance-1".into()),
        ..join_request(id, &["range"])
    };
    let first = later(group.join(static_join(""), &settings(), now, 0));
    let mut first = first;
    let joined = ready(&mut first);
    let old = joined.member_id.clone();
    assert!(
        old.starts_with("instance-1-"),
        "no MEMBER_ID_REQUIRED for static members"
    );
    let (answer, store) = group.sync(
        &old,
        Some("instance-1"),
        1,
        vec![(old.clone(), Bytes::from_static(b"p0"))],
        now,
        0,
    );
    group.stored(store.expect("leader").generation, true, &settings(), now, 0);
    ready(&mut later(answer));
    let again = now_answer(group.join(static_join(""), &settings(), now, 0));
    assert_eq!(again.error, None);
    assert_eq!(again.generation, 1, "no rebalance");
    assert_ne!(again.member_id, old);
    assert_eq!(group.phase(), Phase::Stable);
    let (answer, _) = group.sync(&again.member_id, Some("instance-1"), 1, vec![], now, 0);
    assert_eq!(now_answer(answer).assignment, Bytes::from_static(b"p0"));
    assert_eq!(
        group.heartbeat(&old, Some("instance-1"), 1, now),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        group.check_commit(&old, Some("instance-1"), 1, now),
        Some(ResponseError::FencedInstanceId)
    );
}

#[test]
fn commit_rules() {
    let now = Instant::now();
    let mut group = Group::new("g", 0);
    assert_eq!(
        group.check_commit("", None, -1, now),
        None,
        "simple commit to an empty group"
    );
    let (a, mut a_joined) = join_new(&mut group, &["range"], now);
    ready(&mut a_joined);
    assert_eq!(
        group.check_commit(&a, None, 1, now),
        Some(ResponseError::RebalanceInProgress)
    );
    let (answer, store) = group.sync(&a, None, 1, vec![], now, 0);
    group.stored(store.expect("leader").generation, true, &settings(), now, 0);
    ready(&mut later(answer));
    assert_eq!(group.check_commit(&a, None, 1, now), None);
    assert_eq!(
        group.check_commit(&a, None, 0, now),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.check_commit("", None, -1, now),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn bad_joins_are_refused() {
    let now = Instant::now();
    let mut group = Group::new("g", 0);
    let mut short = join_request("", &["range"]);
    short.session_timeout_ms = 1;
    assert_eq!(
        now_answer(group.join(short, &settings(), now, 0)).error,
        Some(ResponseError::InvalidSessionTimeout)
    );
    assert_eq!(
        now_answer(group.join(join_request("", &[]), &settings(), now, 0)).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        now_answer(group.join(join_request("made-up", &["range"]), &settings(), now, 0)).error,
        Some(ResponseError::UnknownMemberId)
    );
}

/// The initial delay holds the first rebalance of an empty group so
/// members starting together land in one generation.
#[test]
fn initial_delay_holds_the_first_rebalance() {
    let now = Instant::now();
    let delayed = GroupSettings {
        initial_rebalance_delay_ms: 3_000,
        ..GroupSettings::default()
    };
    let mut group = Group::new("g", 0);
    let mut request = join_request("", &["range"]);
    request.require_known_member_id = false;
    let mut a = later(group.join(request.clone(), &delayed, now, 0));
    assert!(a.get_mut().try_recv().expect("pending").is_none());
    let mut b = later(group.join(request, &delayed, now + Duration::from_secs(1), 0));
    assert!(group
        .expire(&delayed, now + Duration::from_millis(3_500), 0)
        .is_empty());
    assert!(
        a.get_mut().try_recv().expect("pending").is_none(),
        "b's join extended the delay"
    );
    group.expire(&delayed, now + Duration::from_secs(4), 0);
    assert_eq!((ready(&mut a).generation, ready(&mut b).generation), (1, 1));
}

#[test]
fn restore_resumes_the_stored_generation() {
    let now = Instant::now();
    let mut group = Group::new("g", 0);
    let (a, mut a_joined) = join_new(&mut group, &["range"], now);
    ready(&mut a_joined);
    let (_, store) = group.sync(
        &a,
        None,
        1,
        vec![(a.clone(), Bytes::from_static(b"x"))],
        now,
        0,
    );
    let record = store.expect("leader").record;
    let mut restored = Group::restore("g", &record, now);
    assert_eq!(restored.phase(), Phase::Stable);
    assert_eq!(restored.generation(), 1);
    assert_eq!(restored.heartbeat(&a, None, 1, now), None);
    let (answer, _) = restored.sync(&a, None, 1, vec![], now, 0);
    assert_eq!(now_answer(answer).assignment, Bytes::from_static(b"x"));
}
