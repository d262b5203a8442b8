//! Pipelined Produce requests of one connection are appended in the order
//! they were sent, per partition, also while the partition's log is still
//! being opened by the first of them (issue 12: librdkafka without
//! idempotence saw its records stored out of order on a new topic).

mod common;

use common::{create_topic, produce_request, Client, Server};
use kafka_protocol::messages::*;
use ringlog_engine::batch::build_batch;

/// Requests pipelined per topic: enough that many arrive while the new
/// partitions' logs are opening.
const REQUESTS: usize = 96;
const PARTITIONS: i32 = 3;
/// Fresh topics per run: each one's first requests race its opens.
const TOPICS: usize = 24;

fn tagged_request(topic: &str, partition: i32, tag: usize) -> ProduceRequest {
    // Sizes vary so some appends take the slow path of the write buffer.
    let value = vec![b'v'; 100 + (tag * 7919) % 60_000];
    let acks = if tag.is_multiple_of(2) { -1 } else { 1 };
    produce_request(topic, partition, acks, build_batch(1, &[value.as_slice()]))
}

#[test]
fn pipelined_produces_are_appended_in_request_order_from_the_first_one() {
    let server = Server::start("produce-order");
    let mut client = Client::connect(server.addr);
    for t in 0..TOPICS {
        let topic = format!("order-{t}");
        create_topic(&mut client, 5, &topic, PARTITIONS);
        let mut sent = Vec::with_capacity(REQUESTS);
        for tag in 0..REQUESTS {
            let partition = (tag % PARTITIONS as usize) as i32;
            let (correlation_id, frame) = client.frame(9, tagged_request(&topic, partition, tag));
            client.write_raw(&frame);
            sent.push((correlation_id, partition));
        }
        let mut last = vec![-1i64; PARTITIONS as usize];
        for (correlation_id, partition) in sent {
            let ResponseKind::Produce(response) =
                client.receive(ApiKey::Produce, 9, correlation_id)
            else {
                panic!("not Produce");
            };
            let answer = &response.responses[0].partition_responses[0];
            assert_eq!(answer.error_code, 0, "{topic}-{partition}");
            assert!(
                answer.base_offset > last[partition as usize],
                "{topic}-{partition}: request {correlation_id} appended at {} after offset {}",
                answer.base_offset,
                last[partition as usize]
            );
            last[partition as usize] = answer.base_offset;
        }
    }
}
