//! The `--http` metrics endpoint over a real socket: /metrics answers in
//! the OpenMetrics format, other methods and garbage are refused, and a
//! client that never finishes its request cannot keep the endpoint from
//! answering the next one. The admin API on the same endpoint is
//! `admin_http.rs`'s.

use ringlog_shard::admin::AdminMailbox;
use ringlog_shard::metrics::Metrics;
use ringlog_tools::http::{self, OPENMETRICS_CONTENT_TYPE, REQUEST_TIMEOUT_MS};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start() -> (SocketAddr, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new(2));
    let addr = http::start(
        "127.0.0.1:0".parse().unwrap(),
        metrics.clone(),
        Arc::new(AdminMailbox::default()),
        None,
    )
    .unwrap();
    (addr, metrics)
}

/// Sends `request` and reads the whole answer (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

#[test]
fn metrics_are_served_as_openmetrics() {
    let (addr, metrics) = start();
    metrics.produced(1, 7, 700);
    let answer = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.lines()
            .any(|l| l == format!("Content-Type: {OPENMETRICS_CONTENT_TYPE}")),
        "{head}"
    );
    assert!(
        head.lines()
            .any(|l| l == format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert!(
        body.contains("ringlog_produce_records_total{shard=\"1\"} 7"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    // A query string is ignored; HEAD gets the headers only.
    let answer = exchange(addr, b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    let answer = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
}

#[test]
fn other_paths_methods_and_garbage_are_refused() {
    let (addr, _metrics) = start();
    let answer = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found");
    let answer = exchange(addr, b"GET /metricsx HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found");
    let answer = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 405 Method Not Allowed");
    assert!(answer.contains("Allow: GET, HEAD\r\n"), "{answer}");
    let answer = exchange(addr, b"garbage\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
    let answer = exchange(addr, b"GET /metrics SPDY/3\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
    let answer = exchange(addr, b"GET /metrics HTTP/1.1 extra\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while huge.len() < 16 * 1024 {
        huge.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    huge.extend_from_slice(b"\r\n");
    let answer = exchange(addr, &huge);
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[test]
fn a_stalled_client_is_dropped_after_the_head_timeout() {
    let (addr, _metrics) = start();
    let started = Instant::now();
    // Connects and sends half a request line, then nothing.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"GET /met").unwrap();
    // The next client waits behind it, but not forever.
    let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(REQUEST_TIMEOUT_MS + 5_000),
        "waited {waited:?}"
    );
    // The stalled client got nothing and was closed.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[test]
fn another_protocol_is_refused_at_its_first_bytes() {
    let (addr, _metrics) = start();
    // A Kafka ApiVersions v3 request, as a client reconnecting to a port
    // this endpoint now holds sends it, and a TLS ClientHello's first
    // bytes: neither ends a head, both are refused without waiting.
    let kafka = b"\x00\x00\x00\x16\x00\x12\x00\x03\x00\x00\x00\x01\x00\x07rdkafka\x00";
    let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    for garbage in [&kafka[..], &tls[..], b"GETTINGLONGERTHANAMETHOD"] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(REQUEST_TIMEOUT_MS / 2),
            "waited {waited:?}"
        );
    }
    // A request line arriving in pieces is still read whole (the pause
    // only makes the pieces separate segments; nothing is awaited).
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(b"GE").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"T /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
}

#[test]
fn binding_a_taken_address_fails() {
    let (addr, metrics) = start();
    assert!(http::start(addr, metrics, Arc::new(AdminMailbox::default()), None).is_err());
}
