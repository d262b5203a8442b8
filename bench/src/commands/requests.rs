//! `bench requests`: one request type from many connections. The rate is
//! split evenly and each connection's schedule starts at its own phase,
//! so the total arrives smoothly instead of one request per connection at
//! the same instant.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{check_client, clean, count, options_json, outputs, setup_topic};
use crate::cluster;
use crate::options::RequestsArgs;
use crate::report::Report;
use crate::requests::{self, Api, RequestsConfig, RequestsPlan};
use crate::runner::{self, Clock};
use crate::{units, Failure};

/// Runs `ringlog bench requests`; `Ok(false)` when the run had errors.
pub fn run(args: RequestsArgs) -> Result<bool, Failure> {
    let dial = check_client(&args.client)?;
    let threads = usize::from(args.client.threads);
    let broker = match args.api {
        Api::CreateTopics => args.client.bootstrap.clone(),
        Api::Metadata => {
            setup_topic(&args.client, &dial, &args.topic, args.partitions)?;
            args.client.bootstrap.clone()
        }
        Api::OffsetCommit | Api::OffsetFetch => {
            setup_topic(&args.client, &dial, &args.topic, args.partitions)?;
            let bootstrap = args.client.bootstrap.clone();
            let group = args.group.clone();
            let dial = dial.clone();
            runner::once("bench-setup", move || async move {
                let mut conn = dial.connect(&bootstrap, 1).await?;
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
        request_timeout: dial.timeout,
        security: dial.security.clone(),
    });
    let headline = format!(
        "ringlog bench requests: {} at {broker}{}, {} on {}, {}",
        serde_json::to_value(args.api)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        args.client.security.over(),
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
