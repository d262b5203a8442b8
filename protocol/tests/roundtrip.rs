//! Requests built with `kafka-protocol`'s client encoders, framed as on the
//! wire, come back out of the frame reader and `parse_request` intact.

mod common;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, RequestKind};
use ringlog_protocol::frame::next_frame;
use ringlog_protocol::request::parse_request;
use ringlog_protocol::versions::SUPPORTED_APIS;

#[test]
fn every_supported_api_at_min_and_max_round_trips() {
    let mut seen = 0;
    for entry in SUPPORTED_APIS {
        for (version, corr, client) in [
            (entry.min, 17, Some("min-client")),
            (entry.max, i32::MAX, Some("max-client")),
            (entry.max, -5, None),
        ] {
            let body = common::body(entry.key, version);
            let wire = common::wire_request(entry.key, version, corr, client, &body);
            let mut buf = BytesMut::from(&wire[..]);
            let frame = next_frame(&mut buf, 1 << 20).unwrap().expect("whole frame");
            assert!(buf.is_empty());
            let request =
                parse_request(frame).unwrap_or_else(|e| panic!("{:?} v{version}: {e}", entry.key));
            assert_eq!(request.api_key, entry.key);
            assert_eq!(request.api_version, version);
            assert_eq!(request.correlation_id(), corr);
            assert_eq!(request.client_id(), client);
            assert_eq!(request.header.request_api_key, entry.key as i16);
            assert_eq!(request.header.request_api_version, version);
            assert_eq!(request.body, body, "{:?} v{version} body", entry.key);
            seen += 1;
        }
    }
    assert_eq!(seen, 3 * SUPPORTED_APIS.len());
}

#[test]
fn pipelined_requests_split_byte_by_byte() {
    let requests = common::all_requests();
    let mut wire = Vec::new();
    for (key, version, body, _) in &requests {
        wire.extend_from_slice(&common::wire_request(*key, *version, 7, Some("pipe"), body));
    }
    let mut buf = BytesMut::new();
    let mut parsed = Vec::new();
    for byte in wire {
        buf.extend_from_slice(&[byte]);
        while let Some(frame) = next_frame(&mut buf, 1 << 20).unwrap() {
            parsed.push(parse_request(frame).unwrap());
        }
    }
    assert_eq!(parsed.len(), requests.len());
    for (request, (key, version, body, _)) in parsed.iter().zip(&requests) {
        assert_eq!((request.api_key, request.api_version), (*key, *version));
        assert_eq!(&request.body, body);
    }
}

#[test]
fn produce_records_are_zero_copy_slices_of_the_frame() {
    let entry = SUPPORTED_APIS
        .iter()
        .find(|e| e.key == ApiKey::Produce)
        .unwrap();
    for version in entry.min..=entry.max {
        let body = common::body(ApiKey::Produce, version);
        let frame = common::encode_request(ApiKey::Produce, version, 1, Some("p"), &body);
        let range = frame.as_ptr_range();
        let request = parse_request(frame.clone()).unwrap();
        let RequestKind::Produce(produce) = request.body else {
            panic!("not produce");
        };
        let records = produce.topic_data[0].partition_data[0]
            .records
            .clone()
            .unwrap();
        assert_eq!(records, common::records());
        assert!(
            range.contains(&records.as_ptr()),
            "v{version}: records were copied out of the frame"
        );
        let batches: Vec<_> = ringlog_protocol::batches(&records)
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(batches.len(), 2);
        for batch in &batches {
            assert!(range.contains(&batch.as_ptr()));
            ringlog_protocol::batch::BatchView::parse(batch).unwrap();
        }
    }
}
