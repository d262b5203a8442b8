//! # ringlog-bench
//!
//! `ringlog bench`: a Kafka load generator and a raw-disk ceiling, for
//! sizing hardware, comparing brokers, and holding ringlog to its goals.
//!
//! What makes its numbers trustworthy, and where each rule lives:
//!
//! * **It speaks Kafka itself** ([`wire`], [`conn`], [`group`]): requests encoded by
//!   `kafka-protocol` and framed by `ringlog_protocol::client` (the same
//!   code as the admin commands), versions negotiated with ApiVersions, partition
//!   leaders from Metadata — so it runs unchanged against ringlog or any
//!   Kafka broker, and what it sends is what Kafka clients send
//!   ([`records`]: RecordBatch v2, all five codecs, Kafka's batching and
//!   partitioners in [`produce`]).
//! * **Open loop at a fixed rate** ([`schedule`]): latency is measured
//!   from when a message was due, not when the generator got round to
//!   sending it, so a broker stall is charged to every message it delayed
//!   (no coordinated omission).
//! * **Thread-per-core** ([`runner`]): one glommio executor per
//!   `--threads`, each owning its connections and histograms, so the
//!   generator adds no cross-thread queueing of its own.
//! * **HdrHistogram** ([`stats`], [`report`], [`plot`]): every latency
//!   recorded, 3 significant digits from 1 µs to an hour; percentiles,
//!   `.hgrm` files and SVG plots from the same data.
//! * **Counted like the broker counts** and **verified**: produced
//!   records and RecordBatch bytes match ringlog's `/metrics`; at the end
//!   of an acks=1/all run the partitions' high watermarks must have
//!   advanced by at least the acknowledged count (DESIGN §7: a throughput
//!   figure counts only when every acknowledged record is readable).
//! * **Failures are loud**: errors are counted by kind and printed, a
//!   broker that stops answering costs at most `--request-timeout-ms`,
//!   and any error makes the exit code 1.
//! * **The ceiling is measured, not assumed** ([`disk`]): O_DIRECT
//!   sequential writes at the segment write size and fdatasync latency on
//!   the same disk, via `io-uring` directly, so broker results are stated
//!   as ratios of what the hardware can do.
//!
//! Exit codes: 0 clean run; 1 errors during the run, failed verification,
//! or a broker that cannot be reached; 2 bad usage or an output file that
//! cannot be written.
#![warn(missing_docs)]

pub mod cluster;
pub mod conn;
pub mod consume;
pub mod disk;
pub mod group;
pub mod options;
pub mod plot;
pub mod produce;
pub mod records;
pub mod report;
pub mod requests;
pub mod rng;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod units;
pub mod wire;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use options::{BenchArgs, BenchCommand};

use cluster::{Assignment, Layout, EARLIEST, LATEST};
use conn::Conn;
use consume::{ConsumerConfig, ConsumerPlan, StopRule};
use options::{
    ClientOptions, ConsumeArgs, DiskArgs, E2eArgs, ProduceArgs, ProducerOptions, RequestsArgs,
    RunOptions, StartFrom,
};
use produce::ProducerConfig;
use records::VALUE_STAMP_BYTES;
use report::{Report, Verification};
use requests::{Api, RequestsConfig, RequestsPlan};
use runner::Clock;
use stats::Totals;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad options or an output file that cannot be written (exit 2).
    Usage(String),
    /// The run could not happen or went wrong (exit 1).
    Run(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Run(why)
    }
}

/// Runs `ringlog bench ...` and returns the process exit code.
pub fn run(args: BenchArgs) -> ExitCode {
    runner::install_interrupt_handler();
    let outcome = match args.command {
        BenchCommand::Produce(args) => produce_command(args),
        BenchCommand::Consume(args) => consume_command(args),
        BenchCommand::E2e(args) => e2e_command(args),
        BenchCommand::Requests(args) => requests_command(args),
        BenchCommand::Disk(args) => disk_command(&args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::Run(why)) => {
            eprintln!("ringlog bench: {why}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(why)) => {
            eprintln!("ringlog bench: {why}");
            ExitCode::from(2)
        }
    }
}

fn check_client(client: &ClientOptions) -> Result<(), Failure> {
    if client.connections() < usize::from(client.threads) {
        return Err(Failure::Usage(format!(
            "--connections {} is fewer than --threads {}: every thread needs a connection",
            client.connections(),
            client.threads
        )));
    }
    Ok(())
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
fn setup_topic(client: &ClientOptions, topic: &str, partitions: i32) -> Result<Layout, Failure> {
    let bootstrap = client.bootstrap.clone();
    let timeout = client.request_timeout();
    let name = topic.to_string();
    let (layout, created) = runner::once("bench-setup", move || async move {
        let mut conn = Conn::connect(&bootstrap, timeout, 1).await?;
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

fn offsets(
    layout: &Layout,
    timestamp: i64,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, Failure> {
    let layout = layout.clone();
    Ok(runner::once("bench-offsets", move || async move {
        cluster::all_offsets(&layout, timestamp, timeout).await
    })?)
}

/// How far the high watermarks advanced since `before`, polled until they
/// cover `acknowledged` records or `timeout` passes. acks=1 records are
/// acknowledged once the leader has them but become readable (below the
/// high watermark) only when they are durable, which may take a moment.
fn readable_after(
    layout: &Layout,
    before: &BTreeMap<i32, i64>,
    acknowledged: u64,
    timeout: Duration,
) -> Result<u64, Failure> {
    let (layout, before) = (layout.clone(), before.clone());
    Ok(runner::once("bench-verify", move || async move {
        let deadline = std::time::Instant::now() + timeout;
        // Bounded by the deadline.
        loop {
            let after = cluster::all_offsets(&layout, LATEST, timeout).await?;
            let readable = advance(&before, &after);
            if readable >= acknowledged || std::time::Instant::now() >= deadline {
                return Ok(readable);
            }
            glommio::timer::sleep(VERIFY_POLL).await;
        }
    })?)
}

/// Pause between high-watermark polls of the verification.
const VERIFY_POLL: Duration = Duration::from_millis(50);

fn advance(before: &BTreeMap<i32, i64>, after: &BTreeMap<i32, i64>) -> u64 {
    after
        .iter()
        .map(|(p, &end)| (end - before.get(p).copied().unwrap_or(0)).max(0) as u64)
        .sum()
}

fn producer_config(
    topic: &str,
    client: &ClientOptions,
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
        request_timeout: client.request_timeout(),
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

fn produce_command(args: ProduceArgs) -> Result<bool, Failure> {
    check_client(&args.client)?;
    check_producer(&args.producer)?;
    let layout = setup_topic(&args.client, &args.topic.topic, args.topic.partitions)?;
    let timeout = args.client.request_timeout();
    let verify = args.producer.acks.wire() != 0;
    let before = if verify {
        Some(offsets(&layout, LATEST, timeout)?)
    } else {
        None
    };
    let threads = usize::from(args.client.threads);
    let assignments = cluster::assign(&layout, args.client.connections(), threads);
    let plans = Arc::new(produce::plans(
        &assignments,
        args.producer.rate,
        args.run.records,
    ));
    let config = Arc::new(producer_config(
        &args.topic.topic,
        &args.client,
        &args.run,
        &args.producer,
        true,
    ));
    let headline = format!(
        "ringlog bench produce: {} of {} at {}, {}, {} on {}",
        count(layout.partitions.len(), "partition"),
        layout.topic,
        args.client.bootstrap,
        describe_producer(&args.producer),
        count(assignments.len(), "connection"),
        count(threads, "thread"),
    );
    eprintln!("{headline}");
    let clock = Clock::start_now(args.run.warmup, args.run.duration());
    let totals = runner::run(threads, clock, args.run.quiet, move |ctx| {
        let (config, plans) = (config.clone(), plans.clone());
        async move { produce::thread_body(Rc::new(ctx), config, plans, None).await }
    })?;
    let mut verified_or_skipped = true;
    let verification = match before {
        Some(before) => match readable_after(&layout, &before, totals.acknowledged_all, timeout) {
            Ok(readable) => Some(Verification::new(
                totals.acknowledged_all,
                readable,
                report::BY_HIGH_WATERMARKS,
            )),
            Err(Failure::Run(why) | Failure::Usage(why)) => {
                eprintln!("ringlog bench: NOT VERIFIED: cannot read the high watermarks: {why}");
                verified_or_skipped = false;
                None
            }
        },
        None => {
            eprintln!("ringlog bench: acks=0: nothing is acknowledged, so nothing is verified");
            None
        }
    };
    let report = Report {
        command: "produce",
        unit: "records",
        headline,
        totals: &totals,
        latency_label: "latency from each record's due time to its acknowledgement",
        secondary_label: (args.producer.acks.wire() != 0).then_some("Produce request round trip"),
        verification: verification.clone(),
        options: options_json(&args),
    };
    outputs(&args.run, &report)?;
    Ok(verified_or_skipped && clean(&totals, verification.as_ref()))
}

fn consumer_config(
    topic: &str,
    client: &ClientOptions,
    c: &options::ConsumerOptions,
    end_to_end: bool,
) -> ConsumerConfig {
    ConsumerConfig {
        topic: topic.to_string(),
        max_wait_ms: c.fetch_max_wait_ms,
        fetch_max_bytes: i32::try_from(c.fetch_max_bytes).unwrap_or(i32::MAX),
        partition_max_bytes: i32::try_from(c.partition_max_bytes).unwrap_or(i32::MAX),
        request_timeout: client.request_timeout(),
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

fn consume_command(args: ConsumeArgs) -> Result<bool, Failure> {
    check_client(&args.client)?;
    let bootstrap = args.client.bootstrap.clone();
    let timeout = args.client.request_timeout();
    let topic = args.topic.clone();
    let layout = runner::once("bench-setup", move || async move {
        let mut conn = Conn::connect(&bootstrap, timeout, 1).await?;
        cluster::layout(&mut conn, &topic).await
    })?
    .ok_or_else(|| Failure::Run(format!("topic {} does not exist", args.topic)))?;
    let from = match args.from {
        StartFrom::Earliest => EARLIEST,
        StartFrom::Latest => LATEST,
    };
    let end = if args.until_end {
        Some(offsets(&layout, LATEST, timeout)?)
    } else {
        None
    };
    let threads = usize::from(args.client.threads);
    // Consumers never share a partition: extra ones would read it twice
    // (or, in a group, sit idle).
    let connections = args.client.connections().min(layout.partitions.len());
    let config = Arc::new(consumer_config(
        &args.topic,
        &args.client,
        &args.consumer,
        false,
    ));
    let stop = StopRule {
        target: args.run.records,
        ..StopRule::default()
    };
    let work = match &args.group {
        None => {
            let start = offsets(&layout, from, timeout)?;
            ConsumeWork::Assigned(Arc::new(consumer_plans(
                cluster::assign(&layout, connections, threads),
                &start,
                end.as_ref(),
            )))
        }
        Some(group) => ConsumeWork::Group(Arc::new(group_config(&args, group, &layout, end)?)),
    };
    let stop = Arc::new(stop);
    let headline = format!(
        "ringlog bench consume: {} of {} at {} from {}{}{}, {} on {}",
        count(layout.partitions.len(), "partition"),
        layout.topic,
        args.client.bootstrap,
        format!("{:?}", args.from).to_lowercase(),
        if args.until_end { " until the end" } else { "" },
        args.group
            .as_ref()
            .map(|g| format!(" as group {g}"))
            .unwrap_or_default(),
        count(connections, "connection"),
        count(threads, "thread"),
    );
    eprintln!("{headline}");
    let duration = if args.until_end && args.run.duration.is_none() {
        None
    } else {
        args.run.duration()
    };
    let clock = Clock::start_now(args.run.warmup, duration);
    let totals = runner::run(threads, clock, args.run.quiet, move |ctx| {
        let (config, work, stop) = (config.clone(), work.clone(), stop.clone());
        async move {
            let ctx = Rc::new(ctx);
            match work {
                ConsumeWork::Assigned(plans) => {
                    consume::thread_body(ctx.clone(), config, plans, stop).await;
                }
                ConsumeWork::Group(group) => {
                    let members: Vec<_> = (0..connections)
                        .filter(|i| i % threads == ctx.thread)
                        .map(|i| {
                            glommio::spawn_local(group::member(
                                ctx.clone(),
                                config.clone(),
                                group.clone(),
                                stop.clone(),
                                i,
                            ))
                        })
                        .collect();
                    for member in members {
                        member.await;
                    }
                }
            }
            ctx.clock.now_ns()
        }
    })?;
    let report = Report {
        command: "consume",
        unit: "records",
        headline,
        totals: &totals,
        latency_label: "Fetch round trip (fetches that returned records)",
        secondary_label: None,
        verification: None,
        options: options_json(&args),
    };
    outputs(&args.run, &report)?;
    Ok(clean(&totals, None))
}

/// What the consumer threads run.
#[derive(Clone)]
enum ConsumeWork {
    /// Fixed partitions per connection.
    Assigned(Arc<Vec<ConsumerPlan>>),
    /// One group member per connection.
    Group(Arc<group::GroupConfig>),
}

fn group_config(
    args: &ConsumeArgs,
    group: &str,
    layout: &Layout,
    end: Option<BTreeMap<i32, i64>>,
) -> Result<group::GroupConfig, Failure> {
    let bootstrap = args.client.bootstrap.clone();
    let timeout = args.client.request_timeout();
    let name = group.to_string();
    let coordinator = runner::once("bench-setup", move || async move {
        let mut conn = Conn::connect(&bootstrap, timeout, 1).await?;
        cluster::find_coordinator(&mut conn, &name).await
    })?;
    Ok(group::GroupConfig {
        group: group.to_string(),
        coordinator,
        topic: args.topic.clone(),
        leaders: layout
            .partitions
            .iter()
            .map(|p| (p.partition, p.leader.clone()))
            .collect(),
        from: args.from,
        end,
    })
}

fn e2e_command(args: E2eArgs) -> Result<bool, Failure> {
    check_client(&args.client)?;
    check_producer(&args.producer)?;
    if args.producer.acks.wire() == 0 {
        return Err(Failure::Usage(
            "e2e needs acknowledgements (--acks 1 or all) to know when every record was consumed"
                .to_string(),
        ));
    }
    let layout = setup_topic(&args.client, &args.topic.topic, args.topic.partitions)?;
    let timeout = args.client.request_timeout();
    let start = offsets(&layout, LATEST, timeout)?;
    let threads = usize::from(args.client.threads);
    let producers = cluster::assign(&layout, args.client.connections(), threads);
    let producer_threads: std::collections::BTreeSet<usize> =
        producers.iter().map(|a| a.thread).collect();
    let consumers = cluster::assign(
        &layout,
        (args.consumers as usize).min(layout.partitions.len()),
        threads,
    );
    let consumer_count = consumers.len();
    let consumer_plans = Arc::new(consumer_plans(consumers, &start, None));
    let producer_plans = Arc::new(produce::plans(
        &producers,
        args.producer.rate,
        args.run.records,
    ));
    let producer_config = Arc::new(producer_config(
        &args.topic.topic,
        &args.client,
        &args.run,
        &args.producer,
        false,
    ));
    let consumer_config = Arc::new(consumer_config(
        &args.topic.topic,
        &args.client,
        &args.consumer,
        true,
    ));
    let stop = Arc::new(StopRule {
        producers_running: AtomicUsize::new(producer_threads.len()),
        drain_ns: timeout.as_nanos() as u64,
        ..StopRule::default()
    });
    let headline = format!(
        "ringlog bench e2e: {} of {} at {}, {}, {} and {} on {}",
        count(layout.partitions.len(), "partition"),
        layout.topic,
        args.client.bootstrap,
        describe_producer(&args.producer),
        count(producers.len(), "producer connection"),
        count(consumer_count, "consumer connection"),
        count(threads, "thread"),
    );
    eprintln!("{headline}");
    let clock = Clock::start_now(args.run.warmup, args.run.duration());
    let shared = stop.clone();
    let totals = runner::run(threads, clock, args.run.quiet, move |ctx| {
        let (producer_config, producer_plans) = (producer_config.clone(), producer_plans.clone());
        let (consumer_config, consumer_plans, stop) = (
            consumer_config.clone(),
            consumer_plans.clone(),
            shared.clone(),
        );
        let produces = producer_threads.contains(&ctx.thread);
        async move {
            let ctx = Rc::new(ctx);
            let consumers = glommio::spawn_local(consume::thread_body(
                ctx.clone(),
                consumer_config,
                consumer_plans,
                stop.clone(),
            ));
            let mut end = ctx.clock.now_ns();
            if produces {
                end = produce::thread_body(
                    ctx.clone(),
                    producer_config,
                    producer_plans,
                    Some(stop.acknowledged.clone()),
                )
                .await;
                if stop.producers_running.fetch_sub(1, Ordering::AcqRel) == 1 {
                    stop.producers_done_ns
                        .store(ctx.clock.now_ns(), Ordering::Release);
                }
            }
            consumers.await;
            end
        }
    })?;
    let acknowledged = stop.acknowledged.load(Ordering::Acquire);
    let consumed = stop.consumed.load(Ordering::Acquire);
    let verification = Verification::new(acknowledged, consumed, report::BY_CONSUMING);
    let report = Report {
        command: "e2e",
        unit: "records",
        headline,
        totals: &totals,
        latency_label: "produce-to-consume latency from each record's due time",
        secondary_label: Some("produce acknowledgement latency from each record's due time"),
        verification: Some(verification.clone()),
        options: options_json(&args),
    };
    outputs(&args.run, &report)?;
    Ok(clean(&totals, Some(&verification)))
}

fn requests_command(args: RequestsArgs) -> Result<bool, Failure> {
    check_client(&args.client)?;
    let timeout = args.client.request_timeout();
    let threads = usize::from(args.client.threads);
    let broker = match args.api {
        Api::CreateTopics => args.client.bootstrap.clone(),
        Api::Metadata => {
            setup_topic(&args.client, &args.topic, args.partitions)?;
            args.client.bootstrap.clone()
        }
        Api::OffsetCommit | Api::OffsetFetch => {
            setup_topic(&args.client, &args.topic, args.partitions)?;
            let bootstrap = args.client.bootstrap.clone();
            let group = args.group.clone();
            runner::once("bench-setup", move || async move {
                let mut conn = Conn::connect(&bootstrap, timeout, 1).await?;
                cluster::find_coordinator(&mut conn, &group).await
            })?
        }
    };
    let connections = args.client.connections();
    let rate = args.rate.map(|r| r / connections as f64);
    let plans = Arc::new(
        (0..connections)
            .map(|i| RequestsPlan {
                connection: i,
                thread: i % threads,
                broker: broker.clone(),
                rate,
                phase_ns: rate.map_or(0, |r| ((i as f64 / connections as f64) * 1e9 / r) as u64),
                limit: args.run.records.map(|total| {
                    total / connections as u64 + u64::from((i as u64) < total % connections as u64)
                }),
            })
            .collect::<Vec<_>>(),
    );
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string();
    let config = Arc::new(RequestsConfig {
        api: args.api,
        topic: args.topic.clone(),
        partitions: args.partitions,
        group: args.group.clone(),
        run_id,
        max_in_flight: args.max_in_flight as usize,
        request_timeout: timeout,
    });
    let headline = format!(
        "ringlog bench requests: {} at {broker}, {} on {}, {}",
        serde_json::to_value(args.api)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        count(connections, "connection"),
        count(threads, "thread"),
        match args.rate {
            Some(r) => format!("{} requests/s", units::thousands(r.round() as u64)),
            None => "back to back".to_string(),
        }
    );
    eprintln!("{headline}");
    let clock = Clock::start_now(args.run.warmup, args.run.duration());
    let totals = runner::run(threads, clock, args.run.quiet, move |ctx| {
        let (config, plans) = (config.clone(), plans.clone());
        async move { requests::thread_body(ctx, config, plans).await }
    })?;
    let report = Report {
        command: "requests",
        unit: "requests",
        headline,
        totals: &totals,
        latency_label: "latency from each request's due time to its answer",
        secondary_label: Some("request round trip"),
        verification: None,
        options: options_json(&args),
    };
    outputs(&args.run, &report)?;
    Ok(clean(&totals, None))
}

fn disk_command(args: &DiskArgs) -> Result<bool, Failure> {
    let config = disk::DiskConfig {
        dir: args.dir.clone(),
        write_bytes: args
            .write_bytes
            .unwrap_or(ringlog_engine::LogConfig::default().write_buffer_bytes),
        queue_depth: usize::from(args.queue_depth),
        total_bytes: args.total_bytes,
        duration: args.duration,
        fsyncs: args.fsyncs,
        fsync_write_bytes: args.fsync_write_bytes,
    };
    disk::validate(&config).map_err(Failure::Usage)?;
    let report = disk::run(&config)?;
    print!("{}", disk::summary(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::Run(format!("JSON report: {e}")))?;
        write_file(path, &(text + "\n"))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_sums_per_partition_growth() {
        let before = BTreeMap::from([(0, 10), (1, 0)]);
        let after = BTreeMap::from([(0, 15), (1, 7), (2, 3)]);
        assert_eq!(advance(&before, &after), 15);
    }

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
