//! Produce: split each partition's records into whole RecordBatch v2
//! slices (zero-copy views of the request frame), send them to the owning
//! shard, answer once every partition has replied.
//!
//! Layer: handlers (see the crate docs).
//!
//! Why batches travel as `Bytes`: the request frame is read once into one
//! buffer; each batch is a reference-counted slice of it that crosses the
//! mesh without a copy. The shard copies it exactly once, into its aligned
//! write buffer. With the default topic configs no record is decoded, so
//! compressed batches are stored exactly as produced; the configs that
//! change batches (`compression.type`, `message.timestamp.type`, the
//! timestamp window) are applied by the engine
//! (`ringlog_engine::records::prepare`). A LogAppendTime topic answers the
//! append time in `log_append_time_ms` (-1 otherwise, as Kafka does); a
//! record outside the timestamp window refuses the partition's batch with
//! INVALID_TIMESTAMP (32), naming the record in `record_errors` (v8+).
//!
//! Idempotent producers: the owning shard checks each batch's producer id,
//! epoch and sequence against the partition's producer state
//! (`ringlog_engine::producer`). A retry of a batch already written is
//! answered like the first time — no error, the original base offset —
//! and not written again. Refusals map to the codes Kafka answers on
//! Produce: a sequence gap or a new epoch not starting at 0 is
//! OUT_OF_ORDER_SEQUENCE_NUMBER (45); an epoch older than the producer's
//! current one is INVALID_PRODUCER_EPOCH (47) — Kafka's answer on Produce
//! since 2.7, which clients treat as "this instance is stale", while
//! PRODUCER_FENCED is the transaction coordinator's; a negative sequence
//! or epoch with a producer id, or a control batch, is INVALID_RECORD
//! (87); a transactional batch is TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! (53), as for a request with a transactional id, because transactions
//! are not supported.

use super::access::Access;
use super::fan_out::Parts;
use super::topic_name;
use crate::calls::call_controller;
use crate::dispatch_order::Turn;
use crate::message::{ControllerRequest, ShardRequest};
use crate::runtime::ShardClient;
use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use ringlog_engine::batch::BatchError;
use ringlog_engine::meta::check_topic_name;
use ringlog_engine::partition::AppendError;
use ringlog_engine::producer::ProducerError;
use ringlog_protocol::errors::batch_error;
use std::rc::Rc;

/// Batches accepted in one partition's records: Kafka requires exactly one
/// per partition from Produce v3 on.
const BATCHES_PER_PARTITION_MAX: usize = 1;

/// Answers a Produce request; `None` for acks=0 (no response is sent).
/// With a `turn`, the batches are routed only after every earlier request
/// of the connection has routed its own (see [`crate::dispatch_order`]).
/// Missing topics are auto-created (`--auto-create-topics`) only if the
/// caller may create them (CREATE on the cluster or the topic).
pub async fn handle(
    client: &Rc<ShardClient>,
    access: &Access<'_>,
    version: i16,
    request: ProduceRequest,
    turn: Option<Turn>,
) -> Option<ProduceResponse> {
    debug_assert!(version >= 3, "the version table starts Produce at v3");
    if let Some(turn) = &turn {
        turn.wait().await;
    }
    let shard = client.local();
    let acks = request.acks;
    let refused = if !matches!(acks, -1..=1) {
        Some((
            ResponseError::InvalidRequiredAcks,
            format!("acks={acks}: only 0, 1 and -1 (all)"),
        ))
    } else if request.transactional_id.is_some() {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not supported".to_string(),
        ))
    } else {
        None
    };
    let wanted = request
        .topic_data
        .into_iter()
        .map(|t| {
            let partitions = t.partition_data.into_iter();
            let records = partitions.map(|p| (p.index, p.records));
            (t.name.0.to_string(), records.collect())
        })
        .collect();
    let parts = Parts::new(client, wanted).await;
    if shard.config.auto_create_topics && refused.is_none() {
        let missing: Vec<String> = shard.meta.with(|state| {
            parts
                .topic_names()
                .filter(|n| state.topic(n).is_none() && check_topic_name(n).is_ok())
                .map(str::to_string)
                .collect()
        });
        let missing = access.may_create(missing);
        if !missing.is_empty() {
            if let Err(e) =
                call_controller(client, ControllerRequest::AutoCreate { topics: missing }).await
            {
                tracing::warn!(error = %e, "auto-create on Produce failed");
            }
        }
    }
    let sent = match refused {
        Some((error, message)) => parts.refuse((error, Some(message))),
        None => {
            let durable = acks == -1;
            parts
                .send(client, |topic, partition, records, reply| {
                    let batches = batches(topic, partition, records)?;
                    Ok(ShardRequest::Produce {
                        topic: topic.to_string(),
                        partition,
                        batches,
                        durable,
                        reply,
                    })
                })
                .await
        }
    };
    // Every batch is on its way to its shard: the next request may route.
    drop(turn);
    let responses = sent
        .answer(
            |topic, index, reply| {
                let response = PartitionProduceResponse::default().with_index(index);
                match reply {
                    Err((error, message)) => response
                        .with_error_code(error.code())
                        .with_base_offset(-1)
                        .with_error_message(
                            message.filter(|_| version >= 8).map(StrBytes::from_string),
                        ),
                    Ok(Ok(ack)) => {
                        let response = response
                            .with_base_offset(ack.base_offset as i64)
                            .with_log_append_time_ms(ack.log_append_time_ms.unwrap_or(-1));
                        if version >= 5 {
                            response.with_log_start_offset(ack.offsets.log_start as i64)
                        } else {
                            response
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%topic, partition = index, error = %e, "produce refused");
                        let message = (version >= 8).then(|| StrBytes::from_string(e.to_string()));
                        let record_errors = match &e {
                            AppendError::Log(ringlog_engine::Error::InvalidBatch(
                                BatchError::TimestampOutOfRange { record_index, .. },
                            )) if version >= 8 => vec![BatchIndexAndErrorMessage::default()
                                .with_batch_index(*record_index as i32)
                                .with_batch_index_error_message(message.clone())],
                            _ => Vec::new(),
                        };
                        response
                            .with_error_code(append_error(&e).code())
                            .with_base_offset(-1)
                            .with_record_errors(record_errors)
                            .with_error_message(message)
                    }
                }
            },
            |name, partition_responses| {
                TopicProduceResponse::default()
                    .with_name(topic_name(name))
                    .with_partition_responses(partition_responses)
            },
        )
        .await;
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// The Kafka error for a refused append (see the module docs).
fn append_error(err: &AppendError) -> ResponseError {
    match err {
        AppendError::Log(e) => ringlog_protocol::response_error(e),
        AppendError::Producer(e) => match e {
            ProducerError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            ProducerError::InvalidEpoch { .. } => ResponseError::InvalidProducerEpoch,
            ProducerError::InvalidFields { .. } | ProducerError::ControlBatch => {
                ResponseError::InvalidRecord
            }
            ProducerError::Transactional => ResponseError::TransactionalIdAuthorizationFailed,
        },
    }
}

/// One partition's records as whole batches, zero-copy slices of the
/// request frame; refused unless they are exactly one valid batch.
fn batches(
    topic: &str,
    partition: u32,
    records: Option<Bytes>,
) -> Result<Vec<Bytes>, (ResponseError, Option<String>)> {
    let records = records.unwrap_or_default();
    let mut batches = Vec::with_capacity(BATCHES_PER_PARTITION_MAX);
    for batch in ringlog_protocol::batches(&records) {
        match batch {
            Ok(batch) => batches.push(batch),
            Err(e) => return Err((batch_error(&e), Some(e.to_string()))),
        }
    }
    if batches.len() != BATCHES_PER_PARTITION_MAX {
        return Err((
            ResponseError::InvalidRecord,
            Some(format!(
                "{} record batches for {topic}-{partition}: Produce v3+ carries exactly one",
                batches.len()
            )),
        ));
    }
    Ok(batches)
}
