//! `bench e2e`: producers and consumers in one run on the same threads,
//! so produce-to-consume latency is read on one clock (each value carries
//! its due time), and the run is verified only when every acknowledged
//! record was consumed.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{
    check_client, check_producer, clean, consumer_config, consumer_plans, count, describe_producer,
    offsets, options_json, outputs, producer_config, setup_topic,
};
use crate::cluster::{self, LATEST};
use crate::consume::{self, StopRule};
use crate::options::E2eArgs;
use crate::report::{self, Report, Verification};
use crate::runner::{self, Clock};
use crate::{produce, Failure};

/// Runs `ringlog bench e2e`; `Ok(false)` when the run had errors or not
/// every acknowledged record was consumed.
pub fn run(args: E2eArgs) -> Result<bool, Failure> {
    let dial = check_client(&args.client)?;
    check_producer(&args.producer)?;
    if args.producer.acks.wire() == 0 {
        return Err(Failure::Usage(
            "e2e needs acknowledgements (--acks 1 or all) to know when every record was consumed"
                .to_string(),
        ));
    }
    let layout = setup_topic(
        &args.client,
        &dial,
        &args.topic.topic,
        args.topic.partitions,
    )?;
    let start = offsets(&layout, LATEST, &dial)?;
    let threads = usize::from(args.client.threads);
    let producers = cluster::assign(&layout, args.client.connections(), threads);
    let producer_threads: BTreeSet<usize> = producers.iter().map(|a| a.thread).collect();
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
        &dial,
        &args.run,
        &args.producer,
        false,
    ));
    let consumer_config = Arc::new(consumer_config(
        &args.topic.topic,
        &dial,
        &args.consumer,
        true,
    ));
    let stop = Arc::new(StopRule {
        producers_running: AtomicUsize::new(producer_threads.len()),
        drain_ns: dial.timeout.as_nanos() as u64,
        ..StopRule::default()
    });
    let headline = format!(
        "ringlog bench e2e: {} of {} at {}{}, {}, {} and {} on {}",
        count(layout.partitions.len(), "partition"),
        layout.topic,
        args.client.bootstrap,
        args.client.security.over(),
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
