//! `bench produce`. A run with acknowledgements ends by reading the
//! partitions' high watermarks back: a throughput figure counts only when
//! every acknowledged record is readable (DESIGN §7), so the check sits
//! with the command that makes the claim.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::{
    check_client, check_producer, clean, count, describe_producer, offsets, options_json, outputs,
    producer_config, setup_topic,
};
use crate::cluster::{self, Layout, LATEST};
use crate::conn::Dial;
use crate::options::ProduceArgs;
use crate::report::{self, Report, Verification};
use crate::runner::{self, Clock};
use crate::{produce, Failure};

/// Runs `ringlog bench produce`; `Ok(false)` when the run had errors or
/// was not verified.
pub fn run(args: ProduceArgs) -> Result<bool, Failure> {
    let dial = check_client(&args.client)?;
    check_producer(&args.producer)?;
    let layout = setup_topic(
        &args.client,
        &dial,
        &args.topic.topic,
        args.topic.partitions,
    )?;
    let verify = args.producer.acks.wire() != 0;
    let before = if verify {
        Some(offsets(&layout, LATEST, &dial)?)
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
        &dial,
        &args.run,
        &args.producer,
        true,
    ));
    let headline = format!(
        "ringlog bench produce: {} of {} at {}{}, {}, {} on {}",
        count(layout.partitions.len(), "partition"),
        layout.topic,
        args.client.bootstrap,
        args.client.security.over(),
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
        Some(before) => match readable_after(&layout, &before, totals.acknowledged_all, &dial) {
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

/// How far the high watermarks advanced since `before`, polled until they
/// cover `acknowledged` records or `timeout` passes. acks=1 records are
/// acknowledged once the leader has them but become readable (below the
/// high watermark) only when they are durable, which may take a moment.
fn readable_after(
    layout: &Layout,
    before: &BTreeMap<i32, i64>,
    acknowledged: u64,
    dial: &Dial,
) -> Result<u64, Failure> {
    let (layout, before, dial) = (layout.clone(), before.clone(), dial.clone());
    Ok(runner::once("bench-verify", move || async move {
        let deadline = std::time::Instant::now() + dial.timeout;
        // Bounded by the deadline.
        loop {
            let after = cluster::all_offsets(&layout, LATEST, &dial).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_sums_per_partition_growth() {
        let before = BTreeMap::from([(0, 10), (1, 0)]);
        let after = BTreeMap::from([(0, 15), (1, 7), (2, 3)]);
        assert_eq!(advance(&before, &after), 15);
    }
}
