//! An admin endpoint without a broker: the real `--http` endpoint whose
//! mailbox a test thread answers, as the controller does in a broker.

use futures_lite::StreamExt;
use ringlog_shard::admin::{AdminMailbox, AdminOutcome, AdminRequest};
use ringlog_shard::metrics::Metrics;
use ringlog_tools::http;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

/// Starts the endpoint on a free port; every call is answered by `answer`
/// and then reported on the returned channel.
pub fn admin_endpoint(
    answer: impl Fn(&AdminRequest) -> AdminOutcome + Send + 'static,
) -> (SocketAddr, mpsc::Receiver<AdminRequest>) {
    let admin = Arc::new(AdminMailbox::default());
    let mut calls = admin
        .take_receiver()
        .expect("a new mailbox has its receiving end");
    let (seen_sender, seen) = mpsc::channel();
    std::thread::spawn(move || {
        futures_lite::future::block_on(async {
            while let Some(call) = calls.next().await {
                let outcome = answer(&call.request);
                // The test may have stopped listening; the answer still goes.
                let _ = seen_sender.send(call.request);
                let _ = call.reply.send(outcome);
            }
        });
    });
    let addr = http::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Metrics::new(2)),
        admin,
        None,
    )
    .unwrap();
    (addr, seen)
}
