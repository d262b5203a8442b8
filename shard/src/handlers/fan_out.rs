//! The per-partition fan-out of Produce, ListOffsets and DeleteRecords:
//! each partition's part of the request goes to the shard that owns it,
//! every part is sent before any answer is awaited (so the owners work in
//! parallel), and the answers are gathered in request order.
//!
//! Layer: handlers (see the crate docs); a helper of the handlers, which
//! say what each part becomes and how each answer is written.

use crate::calls::{all_placed, catch_up_unless, owner};
use crate::message::ShardRequest;
use crate::runtime::ShardClient;
use crate::wake;
use futures_channel::oneshot;
use kafka_protocol::ResponseError;

/// Why a partition's part was not sent: the Kafka error, and a message for
/// the answers that carry one.
pub type Refusal = (ResponseError, Option<String>);

/// Something for each partition of a request, by topic in request order:
/// `(topic, [(partition index, T)])`.
pub type ByTopic<T> = Vec<(String, Vec<(i32, T)>)>;

/// The partitions of a request, each with its part (`T`).
pub struct Parts<T> {
    topics: ByTopic<T>,
}

impl<T> Parts<T> {
    /// A request's partitions. If this shard's replica does not place them
    /// all, it first catches up (bounded) with the controller, so a topic
    /// created through another router is found.
    pub async fn new(client: &ShardClient, topics: ByTopic<T>) -> Self {
        catch_up_unless(client, |state| {
            all_placed(
                state,
                topics.iter().flat_map(|(name, partitions)| {
                    partitions.iter().map(|(index, _)| (name.as_str(), *index))
                }),
            )
        })
        .await;
        Parts { topics }
    }

    /// The topic names, in request order.
    pub fn topic_names(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(|(name, _)| name.as_str())
    }

    /// Sends each part to the shard that owns its partition, in request
    /// order: `request` makes the shard request around the reply's sender,
    /// or refuses the part. A partition no shard owns is
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn send<R>(
        self,
        client: &ShardClient,
        mut request: impl FnMut(&str, u32, T, oneshot::Sender<R>) -> Result<ShardRequest, Refusal>,
    ) -> Sent<R> {
        let mut topics = Vec::with_capacity(self.topics.len());
        for (name, parts) in self.topics {
            let mut sent = Vec::with_capacity(parts.len());
            for (index, part) in parts {
                let pending = match owner(client, &name, index) {
                    None => Err((ResponseError::UnknownTopicOrPartition, None)),
                    Some(owner) => {
                        let (reply, answer) = wake::channel();
                        match request(&name, index as u32, part, reply) {
                            Ok(request) => {
                                client.send(owner as usize, request).await;
                                Ok(answer)
                            }
                            Err(refusal) => Err(refusal),
                        }
                    }
                };
                sent.push((index, pending));
            }
            topics.push((name, sent));
        }
        Sent { topics }
    }

    /// Refuses every part with `refusal` (a request refused as a whole).
    pub fn refuse<R>(self, refusal: Refusal) -> Sent<R> {
        let topics = self
            .topics
            .into_iter()
            .map(|(name, parts)| {
                let refused = parts
                    .into_iter()
                    .map(|(index, _)| (index, Err(refusal.clone())))
                    .collect();
                (name, refused)
            })
            .collect();
        Sent { topics }
    }
}

/// A part on its way: the reply to come, or why it was not sent.
type Pending<R> = Result<wake::Answer<R>, Refusal>;

/// The parts of a request on their way.
pub struct Sent<R> {
    topics: ByTopic<Pending<R>>,
}

impl<R> Sent<R> {
    /// Awaits each reply in request order. `partition` answers one
    /// partition from its reply or refusal (a reply its owner dropped is
    /// UNKNOWN_SERVER_ERROR); `topic` answers one topic from its
    /// partitions' answers.
    pub async fn answer<P, A>(
        self,
        mut partition: impl FnMut(&str, i32, Result<R, Refusal>) -> P,
        mut topic: impl FnMut(&str, Vec<P>) -> A,
    ) -> Vec<A> {
        let mut answers = Vec::with_capacity(self.topics.len());
        for (name, parts) in self.topics {
            let mut partitions = Vec::with_capacity(parts.len());
            for (index, pending) in parts {
                let reply = match pending {
                    Ok(answer) => answer
                        .await
                        .map_err(|_| (ResponseError::UnknownServerError, None)),
                    Err(refusal) => Err(refusal),
                };
                partitions.push(partition(&name, index, reply));
            }
            answers.push(topic(&name, partitions));
        }
        answers
    }
}
