//! `bench requests`: the latency of one request type under many
//! concurrent clients — Metadata, OffsetCommit, OffsetFetch or
//! CreateTopics.
//!
//! Each connection is one client sending its requests back to back (or at
//! its share of `--rate`, open loop: latency from the due time, as for
//! produce), with at most `--max-in-flight` outstanding. A request counts
//! as an error when the broker answers it with an error code anywhere in
//! the answer. OffsetCommit is a "simple" commit (generation -1, empty
//! member id: a group with no members, as `kafka-consumer-groups
//! --reset-offsets` and assign-mode consumers do) of every partition of
//! `--topic`; OffsetFetch reads those offsets back; both go to the
//! group's coordinator. Bytes are the answers' sizes. CreateTopics creates a new, uniquely named topic
//! per request (`<topic>-<run id>-<connection>-<n>`).

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, GroupId, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{check_created, create_topics_request, topic_name};
use crate::conn::{Conn, Recv};
use crate::options::ClientSecurity;
use crate::runner::{stopping, ThreadContext};
use crate::schedule::{Due, Schedule};
use ringlog_protocol::client::{decode_response, error_code_name};

/// The request type of `bench requests --api`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    /// Metadata for `--topic`.
    Metadata,
    /// OffsetCommit of every partition of `--topic` to `--group`.
    OffsetCommit,
    /// OffsetFetch of every partition of `--topic` from `--group`.
    OffsetFetch,
    /// CreateTopics of a new topic per request.
    CreateTopics,
}

/// Settings every requests connection shares.
#[derive(Clone, Debug)]
pub struct RequestsConfig {
    /// The request type.
    pub api: Api,
    /// The topic named (or, for CreateTopics, the name prefix).
    pub topic: String,
    /// Partitions of `topic` (OffsetCommit/OffsetFetch), or of each created
    /// topic (CreateTopics).
    pub partitions: i32,
    /// The consumer group (OffsetCommit/OffsetFetch).
    pub group: String,
    /// Unique id of this run in created topic names.
    pub run_id: String,
    /// Requests outstanding per connection.
    pub max_in_flight: usize,
    /// Time a request may take.
    pub request_timeout: Duration,
    /// TLS and SASL to the brokers (`--security-protocol`).
    pub security: ClientSecurity,
}

/// One requests connection's plan.
#[derive(Clone, Debug)]
pub struct RequestsPlan {
    /// Connection index.
    pub connection: usize,
    /// Its thread.
    pub thread: usize,
    /// The broker it talks to (the group coordinator for offsets).
    pub broker: String,
    /// Requests per second (`None`: back to back).
    pub rate: Option<f64>,
    /// Due time of the first request, ns after the start.
    pub phase_ns: u64,
    /// Requests to send at most.
    pub limit: Option<u64>,
}

/// A request ready for the wire, whichever type.
pub enum AnyRequest {
    /// Metadata.
    Metadata(MetadataRequest),
    /// OffsetCommit.
    OffsetCommit(OffsetCommitRequest),
    /// OffsetFetch.
    OffsetFetch(OffsetFetchRequest),
    /// CreateTopics.
    CreateTopics(CreateTopicsRequest),
}

/// The name of the `n`th topic connection `connection` creates.
pub fn created_topic_name(config: &RequestsConfig, connection: usize, n: u64) -> String {
    format!("{}-{}-{connection}-{n}", config.topic, config.run_id)
}

/// Request number `n` of `connection` at `version`.
pub fn build(config: &RequestsConfig, version: i16, connection: usize, n: u64) -> AnyRequest {
    let partitions: Vec<i32> = (0..config.partitions).collect();
    match config.api {
        Api::Metadata => {
            let request = MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(&config.topic))),
            ]));
            AnyRequest::Metadata(if version >= 4 {
                request.with_allow_auto_topic_creation(false)
            } else {
                request
            })
        }
        Api::OffsetCommit => AnyRequest::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(config.group.clone())))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(StrBytes::from_static_str(""))
                .with_retention_time_ms(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&config.topic))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|&p| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(n as i64)
                                    .with_committed_leader_epoch(-1)
                                    .with_committed_metadata(Some(StrBytes::from_static_str("")))
                            })
                            .collect(),
                    )]),
        ),
        Api::OffsetFetch => {
            let group = GroupId(StrBytes::from_string(config.group.clone()));
            AnyRequest::OffsetFetch(if version >= 8 {
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group)
                    .with_member_epoch(-1)
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(topic_name(&config.topic))
                        .with_partition_indexes(partitions)]))])
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(group)
                    .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                        .with_name(topic_name(&config.topic))
                        .with_partition_indexes(partitions)]))
            })
        }
        Api::CreateTopics => AnyRequest::CreateTopics(create_topics_request(
            version,
            &created_topic_name(config, connection, n),
            config.partitions,
            config.request_timeout,
        )),
    }
}

/// Checks a Metadata answer: the topic is known and has no error.
pub fn check_metadata(topic: &str, response: &MetadataResponse) -> Result<(), String> {
    let found = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or_else(|| format!("Metadata answer does not mention topic {topic}"))?;
    match found.error_code {
        0 => Ok(()),
        code => Err(format!("Metadata: {}", error_code_name(code))),
    }
}

/// Checks an OffsetCommit answer: every partition committed.
pub fn check_offset_commit(response: &OffsetCommitResponse) -> Result<(), String> {
    let partitions = response.topics.iter().flat_map(|t| &t.partitions);
    let mut count = 0;
    for p in partitions {
        count += 1;
        if p.error_code != 0 {
            return Err(format!("OffsetCommit: {}", error_code_name(p.error_code)));
        }
    }
    if count == 0 {
        return Err("OffsetCommit answer lists no partition".to_string());
    }
    Ok(())
}

/// Checks an OffsetFetch answer at `version`: no group or partition error.
pub fn check_offset_fetch(version: i16, response: &OffsetFetchResponse) -> Result<(), String> {
    let fail = |code: i16| Err(format!("OffsetFetch: {}", error_code_name(code)));
    if version >= 8 {
        let group = response
            .groups
            .first()
            .ok_or("OffsetFetch answer lists no group")?;
        if group.error_code != 0 {
            return fail(group.error_code);
        }
        if let Some(p) = group
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.error_code != 0)
        {
            return fail(p.error_code);
        }
    } else {
        if response.error_code != 0 {
            return fail(response.error_code);
        }
        if let Some(p) = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.error_code != 0)
        {
            return fail(p.error_code);
        }
    }
    Ok(())
}

fn check_create(
    config: &RequestsConfig,
    connection: usize,
    n: u64,
    response: &CreateTopicsResponse,
) -> Result<(), String> {
    check_created(&created_topic_name(config, connection, n), response)
}

struct Sent {
    correlation_id: i32,
    n: u64,
    due_ns: u64,
    sent_ns: u64,
}

/// Runs every requests connection of this thread.
pub async fn thread_body(
    ctx: ThreadContext,
    config: Arc<RequestsConfig>,
    plans: Arc<Vec<RequestsPlan>>,
) -> u64 {
    let ctx = Rc::new(ctx);
    let tasks: Vec<_> = plans
        .iter()
        .filter(|plan| plan.thread == ctx.thread)
        .map(|plan| glommio::spawn_local(connection(ctx.clone(), config.clone(), plan.clone())))
        .collect();
    let mut end = 0;
    for task in tasks {
        end = end.max(task.await);
    }
    end
}

async fn connection(
    ctx: Rc<ThreadContext>,
    config: Arc<RequestsConfig>,
    plan: RequestsPlan,
) -> u64 {
    let mut in_flight = VecDeque::with_capacity(config.max_in_flight);
    let mut generation_end = None;
    let outcome = run(&ctx, &config, &plan, &mut in_flight, &mut generation_end).await;
    let now = ctx.clock.now_ns();
    if let Err(why) = outcome {
        eprintln!(
            "ringlog bench: requests connection {} to {}: {why}",
            plan.connection, plan.broker
        );
        ctx.recorder
            .borrow_mut()
            .failed(now, (in_flight.len() as u64).max(1), &why);
    }
    generation_end.unwrap_or(now)
}

async fn send_one(
    conn: &mut Conn,
    config: &RequestsConfig,
    version: i16,
    connection: usize,
    n: u64,
    deadline: std::time::Instant,
) -> Result<i32, String> {
    match build(config, version, connection, n) {
        AnyRequest::Metadata(r) => conn.send(version, &r, deadline).await,
        AnyRequest::OffsetCommit(r) => conn.send(version, &r, deadline).await,
        AnyRequest::OffsetFetch(r) => conn.send(version, &r, deadline).await,
        AnyRequest::CreateTopics(r) => conn.send(version, &r, deadline).await,
    }
}

fn check_answer(
    config: &RequestsConfig,
    version: i16,
    connection: usize,
    sent: &Sent,
    frame: bytes::Bytes,
) -> Result<Result<(), String>, String> {
    let id = sent.correlation_id;
    Ok(match config.api {
        Api::Metadata => check_metadata(
            &config.topic,
            &decode_response::<MetadataRequest>(version, id, frame)?,
        ),
        Api::OffsetCommit => {
            check_offset_commit(&decode_response::<OffsetCommitRequest>(version, id, frame)?)
        }
        Api::OffsetFetch => check_offset_fetch(
            version,
            &decode_response::<OffsetFetchRequest>(version, id, frame)?,
        ),
        Api::CreateTopics => check_create(
            config,
            connection,
            sent.n,
            &decode_response::<CreateTopicsRequest>(version, id, frame)?,
        ),
    })
}

async fn run(
    ctx: &ThreadContext,
    config: &RequestsConfig,
    plan: &RequestsPlan,
    in_flight: &mut VecDeque<Sent>,
    generation_end: &mut Option<u64>,
) -> Result<(), String> {
    let clock = ctx.clock;
    let mut conn = Conn::connect(
        &plan.broker,
        &config.security,
        config.request_timeout,
        config.max_in_flight + 1,
    )
    .await?;
    let version = match config.api {
        Api::Metadata => conn.version::<MetadataRequest>(),
        Api::OffsetCommit => conn.version::<OffsetCommitRequest>(),
        Api::OffsetFetch => conn.version::<OffsetFetchRequest>(),
        Api::CreateTopics => conn.version::<CreateTopicsRequest>(),
    }?;
    let mut schedule = Schedule::new(plan.rate, plan.phase_ns, clock.end_ns, plan.limit);
    let timeout_ns = config.request_timeout.as_nanos() as u64;
    // Each round sends what is due, then waits (bounded) for an answer or
    // the next due request.
    loop {
        let now = clock.now_ns();
        if generation_end.is_none() && stopping() {
            *generation_end = Some(now);
        }
        while generation_end.is_none() && in_flight.len() < config.max_in_flight {
            match schedule.take(now) {
                Due::Now(due_ns) => {
                    let n = schedule.taken() - 1;
                    let deadline = clock.instant(now) + config.request_timeout;
                    let sent_ns = clock.now_ns();
                    let correlation_id =
                        send_one(&mut conn, config, version, plan.connection, n, deadline).await?;
                    in_flight.push_back(Sent {
                        correlation_id,
                        n,
                        due_ns,
                        sent_ns,
                    });
                }
                Due::At(_) => break,
                Due::Done => *generation_end = Some(now),
            }
        }
        if generation_end.is_some() && in_flight.is_empty() {
            return Ok(());
        }
        let mut wake = u64::MAX;
        if generation_end.is_none() && in_flight.len() < config.max_in_flight {
            if let Due::At(at) = schedule.peek(now) {
                wake = at;
            }
            if let Some(end) = clock.end_ns {
                wake = wake.min(end);
            }
        }
        let timeout_at = in_flight.front().map(|s| s.sent_ns + timeout_ns);
        if let Some(at) = timeout_at {
            wake = wake.min(at);
        }
        let wake = wake.max(now + crate::produce::WAIT_MIN_NS);
        if in_flight.is_empty() {
            glommio::timer::sleep(Duration::from_nanos(wake - now)).await;
            continue;
        }
        match conn.recv(clock.instant(wake)).await {
            Recv::Frame(frame) => {
                let sent = in_flight.pop_front().expect("not empty");
                let bytes = frame.len() as u64;
                let verdict = check_answer(config, version, plan.connection, &sent, frame)?;
                let done = clock.now_ns();
                let mut recorder = ctx.recorder.borrow_mut();
                match verdict {
                    Ok(()) => {
                        recorder.completed(done, 1, bytes, [done.saturating_sub(sent.due_ns)]);
                        recorder.secondary(done, [done.saturating_sub(sent.sent_ns)]);
                    }
                    Err(why) => recorder.failed(done, 1, &why),
                }
            }
            Recv::TimedOut => {
                if timeout_at.is_some_and(|at| clock.now_ns() >= at) {
                    return Err(format!(
                        "request timed out: no answer within {} ms",
                        config.request_timeout.as_millis()
                    ));
                }
            }
            Recv::Closed(why) => return Err(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };

    fn config(api: Api) -> RequestsConfig {
        RequestsConfig {
            api,
            topic: "bench".into(),
            partitions: 3,
            group: "g".into(),
            run_id: "r1".into(),
            max_in_flight: 1,
            request_timeout: Duration::from_secs(1),
            security: ClientSecurity::default(),
        }
    }

    #[test]
    fn offset_commits_are_simple_commits_of_every_partition() {
        let AnyRequest::OffsetCommit(r) = build(&config(Api::OffsetCommit), 8, 0, 42) else {
            panic!("wrong type");
        };
        assert_eq!(r.group_id.0.as_str(), "g");
        assert_eq!(r.generation_id_or_member_epoch, -1);
        assert!(r.member_id.is_empty());
        let offsets: Vec<(i32, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect();
        assert_eq!(offsets, [(0, 42), (1, 42), (2, 42)]);
    }

    #[test]
    fn offset_fetch_layout_follows_the_version() {
        let AnyRequest::OffsetFetch(old) = build(&config(Api::OffsetFetch), 7, 0, 0) else {
            panic!("wrong type");
        };
        assert_eq!(old.group_id.0.as_str(), "g");
        assert_eq!(old.topics.as_ref().unwrap()[0].partition_indexes, [0, 1, 2]);
        let AnyRequest::OffsetFetch(new) = build(&config(Api::OffsetFetch), 8, 0, 0) else {
            panic!("wrong type");
        };
        assert_eq!(new.groups[0].group_id.0.as_str(), "g");
    }

    #[test]
    fn created_topics_are_unique_per_connection_and_request() {
        let c = config(Api::CreateTopics);
        let AnyRequest::CreateTopics(r) = build(&c, 7, 3, 9) else {
            panic!("wrong type");
        };
        assert_eq!(r.topics[0].name.0.as_str(), "bench-r1-3-9");
        assert_eq!(r.topics[0].num_partitions, 3);
        assert_ne!(created_topic_name(&c, 3, 9), created_topic_name(&c, 9, 3));
    }

    #[test]
    fn answers_with_error_codes_are_errors() {
        let ok = OffsetCommitResponse::default()
            .with_topics(vec![OffsetCommitResponseTopic::default()
                .with_partitions(vec![OffsetCommitResponsePartition::default()])]);
        assert_eq!(check_offset_commit(&ok), Ok(()));
        let bad =
            OffsetCommitResponse::default()
                .with_topics(vec![OffsetCommitResponseTopic::default().with_partitions(
                    vec![OffsetCommitResponsePartition::default().with_error_code(16)],
                )]);
        assert!(check_offset_commit(&bad)
            .unwrap_err()
            .contains("NOT_COORDINATOR"));
        assert!(check_offset_commit(&OffsetCommitResponse::default()).is_err());
        let fetched =
            OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
                .with_topics(vec![OffsetFetchResponseTopics::default().with_partitions(
                    vec![OffsetFetchResponsePartitions::default().with_error_code(3)],
                )])]);
        assert!(check_offset_fetch(8, &fetched)
            .unwrap_err()
            .contains("UNKNOWN_TOPIC"));
        assert!(
            check_offset_fetch(7, &OffsetFetchResponse::default().with_error_code(15))
                .unwrap_err()
                .contains("COORDINATOR_NOT_AVAILABLE")
        );
        assert_eq!(
            check_offset_fetch(7, &OffsetFetchResponse::default()),
            Ok(())
        );
    }
}
