//! `bench consume`: fixed partitions per connection, or members of a
//! consumer group. Consumers never outnumber partitions: an extra one
//! would read a partition twice (or, in a group, sit idle) and skew the
//! per-connection figures.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::{
    check_client, clean, consumer_config, consumer_plans, count, offsets, options_json, outputs,
};
use crate::cluster::{self, Layout, EARLIEST, LATEST};
use crate::conn::Dial;
use crate::consume::{self, ConsumerPlan, StopRule};
use crate::options::{ConsumeArgs, StartFrom};
use crate::report::Report;
use crate::runner::{self, Clock};
use crate::{group, Failure};

/// Runs `ringlog bench consume`; `Ok(false)` when the run had errors.
pub fn run(args: ConsumeArgs) -> Result<bool, Failure> {
    let dial = check_client(&args.client)?;
    let bootstrap = args.client.bootstrap.clone();
    let topic = args.topic.clone();
    let setup = dial.clone();
    let layout = runner::once("bench-setup", move || async move {
        let mut conn = setup.connect(&bootstrap, 1).await?;
        cluster::layout(&mut conn, &topic).await
    })?
    .ok_or_else(|| Failure::Run(format!("topic {} does not exist", args.topic)))?;
    let from = match args.from {
        StartFrom::Earliest => EARLIEST,
        StartFrom::Latest => LATEST,
    };
    let end = if args.until_end {
        Some(offsets(&layout, LATEST, &dial)?)
    } else {
        None
    };
    let threads = usize::from(args.client.threads);
    // Consumers never share a partition: extra ones would read it twice
    // (or, in a group, sit idle).
    let connections = args.client.connections().min(layout.partitions.len());
    let config = Arc::new(consumer_config(&args.topic, &dial, &args.consumer, false));
    let stop = StopRule {
        target: args.run.records,
        ..StopRule::default()
    };
    let work = match &args.group {
        None => {
            let start = offsets(&layout, from, &dial)?;
            ConsumeWork::Assigned(Arc::new(consumer_plans(
                cluster::assign(&layout, connections, threads),
                &start,
                end.as_ref(),
            )))
        }
        Some(group) => {
            ConsumeWork::Group(Arc::new(group_config(&args, &dial, group, &layout, end)?))
        }
    };
    let stop = Arc::new(stop);
    let headline = format!(
        "ringlog bench consume: {} of {} at {}{} from {}{}{}, {} on {}",
        count(layout.partitions.len(), "partition"),
        layout.topic,
        args.client.bootstrap,
        args.client.security.over(),
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
    dial: &Dial,
    group: &str,
    layout: &Layout,
    end: Option<BTreeMap<i32, i64>>,
) -> Result<group::GroupConfig, Failure> {
    let bootstrap = args.client.bootstrap.clone();
    let dial = dial.clone();
    let name = group.to_string();
    let coordinator = runner::once("bench-setup", move || async move {
        let mut conn = dial.connect(&bootstrap, 1).await?;
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
