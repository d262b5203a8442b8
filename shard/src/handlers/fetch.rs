//! Fetch: read every requested partition from its owning shard; when the
//! answer is smaller than `min_bytes`, long-poll until data arrives on any
//! of them or `max_wait_ms` passes.
//!
//! Layer: handlers (see the crate docs).
//!
//! Why three rounds instead of one long wait per partition: the common
//! case (a consumer behind the head) is answered by the first round with
//! no waiting. Only when that round is short do we park a waiter on every
//! partition's shard; the first one that sees new data ends the wait, and a
//! last immediate round collects everything now readable, so a response
//! never misses data that arrived on other partitions meanwhile and
//! always carries current high watermarks.

use super::topic_name;
use crate::message::{FetchReply, PartitionOffsets, ShardRequest};
use crate::runtime::ShardClient;
use crate::wake;
use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Longest wait a client may ask for; Kafka clients use at most a few
/// seconds, this bounds a hostile one.
const MAX_WAIT_MS_MAX: u64 = 60_000;
/// Payload asked of each partition in the waiting round: any data ends
/// the wait, and the last round reads it properly.
const WAKE_PROBE_BYTES: usize = 1;

/// One requested partition.
struct Wanted {
    topic: usize,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    owner: Option<u32>,
}

/// What one round found for one partition.
enum Found {
    Error(ResponseError, PartitionOffsets),
    Records(Bytes, PartitionOffsets),
}

impl Found {
    fn bytes(&self) -> usize {
        match self {
            Found::Records(records, _) => records.len(),
            Found::Error(..) => 0,
        }
    }
}

const NO_OFFSETS: PartitionOffsets = PartitionOffsets {
    log_start: 0,
    high_watermark: 0,
};

/// Answers a Fetch request.
pub async fn handle(
    client: &Rc<ShardClient>,
    version: i16,
    request: FetchRequest,
) -> FetchResponse {
    let response = FetchResponse::default();
    if version >= 7 && request.session_id != 0 && request.session_epoch > 0 {
        // We never hand out session ids (every response says session 0,
        // "no session"), so an incremental fetch names a session we do not
        // have; the client then falls back to full fetches.
        return response.with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let topics: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.topic.0.to_string())
        .collect();
    let topics_ref = &topics;
    crate::calls::catch_up_unless(client, |state| {
        crate::calls::all_placed(
            state,
            request.topics.iter().enumerate().flat_map(|(i, t)| {
                t.partitions
                    .iter()
                    .map(move |p| (topics_ref[i].as_str(), p.partition))
            }),
        )
    })
    .await;
    let mut wanted = Vec::new();
    client.local().meta.with(|state| {
        for (topic, t) in request.topics.iter().enumerate() {
            for p in &t.partitions {
                let owner = u32::try_from(p.partition)
                    .ok()
                    .and_then(|index| state.placement(&topics[topic], index));
                wanted.push(Wanted {
                    topic,
                    partition: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                    owner,
                });
            }
        }
    });
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(MAX_WAIT_MS_MAX));
    let deadline = Instant::now() + max_wait;

    let mut found = read_round(client, &topics, &wanted, Duration::ZERO, None).await;
    let total: usize = found.iter().map(Found::bytes).sum();
    let any_error = found.iter().any(|f| matches!(f, Found::Error(..)));
    if total < min_bytes && !any_error && !max_wait.is_zero() {
        let now = Instant::now();
        if now < deadline {
            wait_for_data(client, &topics, &wanted, deadline - now).await;
            found = read_round(client, &topics, &wanted, Duration::ZERO, None).await;
        }
    }
    assemble(
        response,
        version,
        &topics,
        &wanted,
        found,
        request.max_bytes,
    )
}

/// Sends one fetch per partition and collects every reply.
async fn read_round(
    client: &Rc<ShardClient>,
    topics: &[String],
    wanted: &[Wanted],
    max_wait: Duration,
    probe_bytes: Option<usize>,
) -> Vec<Found> {
    let mut replies = Vec::with_capacity(wanted.len());
    for w in wanted {
        replies.push(send(client, topics, w, max_wait, probe_bytes).await);
    }
    let mut found = Vec::with_capacity(wanted.len());
    for reply in replies {
        found.push(match reply {
            Err(error) => Found::Error(error, NO_OFFSETS),
            Ok(answer) => to_found(answer.await),
        });
    }
    found
}

fn to_found(answer: Result<FetchReply, oneshot::Canceled>) -> Found {
    match answer {
        Ok(FetchReply {
            records: Ok(records),
            offsets,
        }) => Found::Records(records, offsets),
        Ok(FetchReply {
            records: Err(e),
            offsets,
        }) => Found::Error(ringlog_protocol::response_error(&e), offsets),
        Err(_) => Found::Error(ResponseError::UnknownServerError, NO_OFFSETS),
    }
}

async fn send(
    client: &Rc<ShardClient>,
    topics: &[String],
    w: &Wanted,
    max_wait: Duration,
    probe_bytes: Option<usize>,
) -> Result<wake::Answer<FetchReply>, ResponseError> {
    let owner = w.owner.ok_or(ResponseError::UnknownTopicOrPartition)?;
    let offset = u64::try_from(w.offset).map_err(|_| ResponseError::OffsetOutOfRange)?;
    let (reply, answer) = wake::channel();
    client
        .send(
            owner as usize,
            ShardRequest::Fetch {
                topic: topics[w.topic].clone(),
                partition: w.partition as u32,
                offset,
                max_bytes: probe_bytes.unwrap_or(w.max_bytes),
                max_wait,
                reply,
            },
        )
        .await;
    Ok(answer)
}

/// Parks a waiter on every partition's shard; returns when the first one
/// reports data (or an error), or when every wait has timed out.
async fn wait_for_data(
    client: &Rc<ShardClient>,
    topics: &[String],
    wanted: &[Wanted],
    max_wait: Duration,
) {
    let mut waiting = Vec::with_capacity(wanted.len());
    for w in wanted {
        if let Ok(answer) = send(client, topics, w, max_wait, Some(WAKE_PROBE_BYTES)).await {
            waiting.push(Some(answer));
        }
    }
    std::future::poll_fn(|cx| {
        let mut pending = 0;
        for slot in waiting.iter_mut() {
            let Some(answer) = slot else { continue };
            match Pin::new(answer).poll(cx) {
                Poll::Pending => pending += 1,
                Poll::Ready(reply) => {
                    *slot = None;
                    if to_found(reply).bytes() > 0 {
                        return Poll::Ready(());
                    }
                }
            }
        }
        if pending == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// Builds the response in request order. The first partition with data is
/// always included (as Kafka does, so an oversized batch still makes
/// progress); later ones only while the total stays within `max_bytes`.
fn assemble(
    response: FetchResponse,
    version: i16,
    topics: &[String],
    wanted: &[Wanted],
    found: Vec<Found>,
    max_bytes: i32,
) -> FetchResponse {
    let max_bytes = if max_bytes <= 0 {
        usize::MAX
    } else {
        max_bytes as usize
    };
    let mut total = 0usize;
    let mut responses: Vec<FetchableTopicResponse> = Vec::with_capacity(topics.len());
    for (w, found) in wanted.iter().zip(found) {
        let (error, records, offsets) = match found {
            Found::Error(error, offsets) => (error.code(), Bytes::new(), offsets),
            Found::Records(records, offsets) => {
                let fits = total == 0 || total + records.len() <= max_bytes;
                if fits {
                    total += records.len();
                    (0, records, offsets)
                } else {
                    (0, Bytes::new(), offsets)
                }
            }
        };
        let mut data = PartitionData::default()
            .with_partition_index(w.partition)
            .with_error_code(error)
            .with_high_watermark(offsets.high_watermark as i64)
            .with_last_stable_offset(offsets.high_watermark as i64)
            .with_aborted_transactions(Some(Vec::new()))
            .with_records(Some(records));
        if version >= 5 {
            data = data.with_log_start_offset(offsets.log_start as i64);
        }
        if version >= 11 {
            data = data.with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1));
        }
        match responses.last_mut() {
            Some(last) if last.topic.0.as_str() == topics[w.topic] => last.partitions.push(data),
            _ => responses.push(
                FetchableTopicResponse::default()
                    .with_topic(topic_name(&topics[w.topic]))
                    .with_partitions(vec![data]),
            ),
        }
    }
    response.with_responses(responses)
}
