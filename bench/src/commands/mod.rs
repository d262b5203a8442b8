//! The bodies of the `ringlog bench` commands, one file each, and what
//! the Kafka workloads share: option checks, topic set-up, offset reads,
//! producer and consumer settings, headline wording and the outputs. Kept
//! in one place so every workload is set up, described and reported the
//! same way, and figures from different commands compare.

pub mod consume;
pub mod disk;
pub mod e2e;
pub mod produce;
pub mod requests;

use std::collections::BTreeMap;
use std::path::Path;

use crate::cluster::{self, Assignment, Layout};
use crate::conn::Dial;
use crate::consume::{ConsumerConfig, ConsumerPlan};
use crate::options::{self, ClientOptions, ProducerOptions, RunOptions};
use crate::produce::ProducerConfig;
use crate::records::VALUE_STAMP_BYTES;
use crate::report::{self, Report, Verification};
use crate::stats::Totals;
use crate::{plot, runner, units, Failure};

/// Checks the client options and reads the TLS files, once: how every
/// connection of the run is opened.
fn check_client(client: &ClientOptions) -> Result<Dial, Failure> {
    if client.connections() < usize::from(client.threads) {
        return Err(Failure::Usage(format!(
            "--connections {} is fewer than --threads {}: every thread needs a connection",
            client.connections(),
            client.threads
        )));
    }
    Ok(Dial {
        security: client.security.resolve().map_err(Failure::Usage)?,
        timeout: client.request_timeout(),
    })
}

fn check_producer(producer: &ProducerOptions) -> Result<(), Failure> {
    if producer.message_bytes < VALUE_STAMP_BYTES {
        return Err(Failure::Usage(format!(
            "--message-bytes {} is below {VALUE_STAMP_BYTES}: every value starts with its send-time stamp",
            producer.message_bytes
        )));
    }
    if producer.max_request_bytes < producer.batch_bytes {
        return Err(Failure::Usage(format!(
            "--max-request-bytes {} is below --batch-bytes {}: a full batch would not fit a request",
            producer.max_request_bytes, producer.batch_bytes
        )));
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))
}

/// Prints the summary and writes `--json`, `--hgrm` and `--plot`.
fn outputs(run: &RunOptions, report: &Report) -> Result<(), Failure> {
    print!("{}", report.summary());
    if let Some(path) = &run.json {
        let text = serde_json::to_string_pretty(&report.json())
            .map_err(|e| Failure::Run(format!("JSON report: {e}")))?;
        write_file(path, &(text + "\n"))?;
    }
    if let Some(path) = &run.hgrm {
        write_file(path, &report::hgrm(&report.totals.latency))?;
    }
    if let Some(path) = &run.plot {
        let title = format!("ringlog bench {}", report.command);
        write_file(
            path,
            &plot::svg(
                &title,
                &report.totals.latency,
                report.latency_label,
                &report.totals.series,
            ),
        )?;
    }
    Ok(())
}

fn options_json<T: serde::Serialize>(args: &T) -> serde_json::Value {
    serde_json::to_value(args).unwrap_or(serde_json::Value::Null)
}

/// A clean run: no error at all, warm-up included, and verified if checked.
fn clean(totals: &Totals, verification: Option<&Verification>) -> bool {
    totals.errors == 0 && totals.warmup_errors == 0 && verification.is_none_or(|v| v.ok)
}

/// Connects to the bootstrap broker and makes sure the topic exists.
fn setup_topic(
    client: &ClientOptions,
    dial: &Dial,
    topic: &str,
    partitions: i32,
) -> Result<Layout, Failure> {
    let bootstrap = client.bootstrap.clone();
    let dial = dial.clone();
    let name = topic.to_string();
    let (layout, created) = runner::once("bench-setup", move || async move {
        let mut conn = dial.connect(&bootstrap, 1).await?;
        cluster::ensure_topic(&mut conn, &name, partitions).await
    })?;
    if created {
        eprintln!("ringlog bench: created topic {topic} with {partitions} partitions");
    } else if layout.partitions.len() != partitions as usize {
        eprintln!(
            "ringlog bench: topic {topic} exists with {} partitions (not the --partitions {partitions}); using all of them",
            layout.partitions.len()
        );
    }
    Ok(layout)
}

fn offsets(layout: &Layout, timestamp: i64, dial: &Dial) -> Result<BTreeMap<i32, i64>, Failure> {
    let (layout, dial) = (layout.clone(), dial.clone());
    Ok(runner::once("bench-offsets", move || async move {
        cluster::all_offsets(&layout, timestamp, &dial).await
    })?)
}

fn producer_config(
    topic: &str,
    dial: &Dial,
    run: &RunOptions,
    p: &ProducerOptions,
    measured: bool,
) -> ProducerConfig {
    ProducerConfig {
        topic: topic.to_string(),
        acks: p.acks.wire(),
        codec: p.compression,
        message_bytes: p.message_bytes,
        batch_bytes: p.batch_bytes,
        linger_ns: p.linger_ms * 1_000_000,
        key_cardinality: p.key_cardinality,
        max_in_flight: p.max_in_flight as usize,
        buffer_bytes: p.buffer_bytes,
        max_request_bytes: p.max_request_bytes,
        request_timeout: dial.timeout,
        security: dial.security.clone(),
        seed: run.seed,
        measured,
    }
}

/// `1 connection`, `2 connections`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn describe_producer(p: &ProducerOptions) -> String {
    format!(
        "{} B records, batches of {} B, linger {} ms, acks={}, compression {}, {}",
        p.message_bytes,
        p.batch_bytes,
        p.linger_ms,
        match p.acks.wire() {
            -1 => "all".to_string(),
            n => n.to_string(),
        },
        format!("{:?}", p.compression).to_lowercase(),
        match p.rate {
            Some(r) => format!("{} records/s", units::thousands(r.round() as u64)),
            None => "max rate".to_string(),
        }
    )
}

fn consumer_config(
    topic: &str,
    dial: &Dial,
    c: &options::ConsumerOptions,
    end_to_end: bool,
) -> ConsumerConfig {
    ConsumerConfig {
        topic: topic.to_string(),
        max_wait_ms: c.fetch_max_wait_ms,
        fetch_max_bytes: i32::try_from(c.fetch_max_bytes).unwrap_or(i32::MAX),
        partition_max_bytes: i32::try_from(c.partition_max_bytes).unwrap_or(i32::MAX),
        request_timeout: dial.timeout,
        security: dial.security.clone(),
        end_to_end,
    }
}

fn consumer_plans(
    assignments: Vec<Assignment>,
    start: &BTreeMap<i32, i64>,
    end: Option<&BTreeMap<i32, i64>>,
) -> Vec<ConsumerPlan> {
    let pick = |offsets: &BTreeMap<i32, i64>, partitions: &[i32]| -> BTreeMap<i32, i64> {
        partitions
            .iter()
            .filter_map(|p| offsets.get(p).map(|&o| (*p, o)))
            .collect()
    };
    assignments
        .into_iter()
        .map(|assignment| ConsumerPlan {
            start: pick(start, &assignment.partitions),
            end: end.map(|e| pick(e, &assignment.partitions)),
            assignment,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_plans_take_their_partitions_offsets() {
        let a = vec![Assignment {
            connection: 0,
            thread: 0,
            leader: "b".into(),
            partitions: vec![1, 3],
        }];
        let start = BTreeMap::from([(0, 0), (1, 10), (2, 0), (3, 30)]);
        let end = BTreeMap::from([(1, 11), (3, 31)]);
        let plans = consumer_plans(a, &start, Some(&end));
        assert_eq!(plans[0].start, BTreeMap::from([(1, 10), (3, 30)]));
        assert_eq!(plans[0].end.as_ref().unwrap().len(), 2);
    }
}
