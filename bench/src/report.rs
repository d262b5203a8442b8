//! The end-of-run outputs: the summary table on stdout, the `--json`
//! report, and the `--hgrm` percentile file.
//!
//! The `.hgrm` file is HdrHistogram's own percentile-distribution text (the
//! format `HistogramLogProcessor` and the online HdrHistogram plotter
//! read), in milliseconds, so runs from ringlog, Kafka's and other tools'
//! histograms can be laid over each other.

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt::Write as _;

use crate::stats::{us_to_ms, Totals, LATENCY_SIGFIG};
use crate::units::thousands;

/// Percentile steps per halving of the remaining distance in the `.hgrm`
/// output (HdrHistogram's default).
pub const HGRM_TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The usual percentiles of a latency histogram, in ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Samples.
    pub count: u64,
}

impl Percentiles {
    /// The percentiles of `histogram` (µs values); all zero when empty.
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| us_to_ms(histogram.value_at_quantile(q));
        Percentiles {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: us_to_ms(histogram.highest_equivalent(histogram.max())),
            mean_ms: histogram.mean() / 1_000.0,
            count: histogram.len(),
        }
    }
}

/// The end-of-run check that acknowledged records are really there
/// (DESIGN §7: a throughput figure counts only when verified).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verification {
    /// Records the broker acknowledged over the whole run.
    pub acknowledged: u64,
    /// Records found readable afterwards.
    pub readable: u64,
    /// How `readable` was counted.
    pub counted_by: &'static str,
    /// Whether every acknowledged record is readable.
    pub ok: bool,
}

/// [`Verification::counted_by`] of produce runs.
pub const BY_HIGH_WATERMARKS: &str = "advance of the partitions' high watermarks";
/// [`Verification::counted_by`] of end-to-end runs.
pub const BY_CONSUMING: &str = "records consumed";

impl Verification {
    /// Compares the acknowledged count with what is readable. More
    /// readable than acknowledged is fine (records whose answer was lost
    /// to a timeout, or another producer); fewer means acknowledged
    /// records are missing.
    pub fn new(acknowledged: u64, readable: u64, counted_by: &'static str) -> Verification {
        Verification {
            acknowledged,
            readable,
            counted_by,
            ok: readable >= acknowledged,
        }
    }
}

/// Everything the outputs are made from.
pub struct Report<'a> {
    /// `produce`, `consume`, `e2e`, `requests`.
    pub command: &'static str,
    /// What is counted: `records` or `requests`.
    pub unit: &'static str,
    /// One line describing the workload.
    pub headline: String,
    /// The merged measurements.
    pub totals: &'a Totals,
    /// What the primary latency measures.
    pub latency_label: &'static str,
    /// What the secondary latency measures, if the workload has one.
    pub secondary_label: Option<&'static str>,
    /// The end-of-run check, when the workload does one.
    pub verification: Option<Verification>,
    /// The options the run used.
    pub options: Value,
}

fn percentile_rows(out: &mut String, label: &str, p: &Percentiles) {
    let _ = writeln!(out, "{label} (ms):");
    let _ = writeln!(
        out,
        "  {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "p50", "p90", "p99", "p99.9", "max", "mean", "samples"
    );
    let _ = writeln!(
        out,
        "  {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>12}",
        p.p50_ms,
        p.p90_ms,
        p.p99_ms,
        p.p999_ms,
        p.max_ms,
        p.mean_ms,
        thousands(p.count)
    );
}

impl Report<'_> {
    /// The summary table printed at the end of a run.
    pub fn summary(&self) -> String {
        let t = self.totals;
        let mut out = String::new();
        let _ = writeln!(out, "\n{}", self.headline);
        let unit = self.unit;
        let _ = writeln!(
            out,
            "measured {:.2} s after the warm-up ({} {unit}, {} errors during the warm-up)",
            t.duration_s,
            thousands(t.warmup_records),
            thousands(t.warmup_errors)
        );
        let _ = writeln!(
            out,
            "  {unit:<8} {:>16}   {:>14} {unit}/s",
            thousands(t.records),
            thousands(t.records_per_s().round() as u64)
        );
        let _ = writeln!(
            out,
            "  {:<8} {:>16}   {:>14.1} MB/s",
            "bytes",
            thousands(t.bytes),
            t.mb_per_s()
        );
        let _ = writeln!(out, "  {:<8} {:>16}", "errors", thousands(t.errors));
        percentile_rows(&mut out, self.latency_label, &Percentiles::of(&t.latency));
        if let Some(label) = self.secondary_label {
            percentile_rows(&mut out, label, &Percentiles::of(&t.secondary));
        }
        if let Some(v) = &self.verification {
            let verdict = if v.ok { "verified" } else { "NOT VERIFIED" };
            let _ = writeln!(
                out,
                "{verdict}: {} records acknowledged, {} readable ({})",
                thousands(v.acknowledged),
                thousands(v.readable),
                v.counted_by
            );
        }
        if !t.error_kinds.is_empty() {
            let _ = writeln!(out, "errors by kind (whole run):");
            for (kind, count) in &t.error_kinds {
                let _ = writeln!(out, "  {:>12}  {kind}", thousands(*count));
            }
        }
        out
    }

    /// The `--json` report.
    pub fn json(&self) -> Value {
        let t = self.totals;
        let p = Percentiles::of(&t.latency);
        let mut report = json!({
            "command": self.command,
            "version": env!("CARGO_PKG_VERSION"),
            "records": t.records,
            "bytes": t.bytes,
            "duration_s": t.duration_s,
            "throughput_mb_s": t.mb_per_s(),
            "throughput_records_s": t.records_per_s(),
            "p50_ms": p.p50_ms,
            "p90_ms": p.p90_ms,
            "p99_ms": p.p99_ms,
            "p999_ms": p.p999_ms,
            "max_ms": p.max_ms,
            "mean_ms": p.mean_ms,
            "latency_samples": p.count,
            "latency": self.latency_label,
            "errors": t.errors,
            "error_kinds": t.error_kinds,
            "warmup_records": t.warmup_records,
            "warmup_errors": t.warmup_errors,
            "series": t.series,
            "verified": self.verification,
            "options": self.options,
        });
        if let Some(label) = self.secondary_label {
            report["secondary"] = json!({
                "latency": label,
                "percentiles": Percentiles::of(&t.secondary),
            });
        }
        report
    }
}

/// HdrHistogram's percentile distribution of `histogram` (µs values) in
/// milliseconds.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !histogram.is_empty() {
        for step in histogram.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
            total += step.count_since_last_iteration();
            let value = us_to_ms(histogram.highest_equivalent(step.value_iterated_to()));
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:>12.3} {quantile:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - quantile)
                );
            } else {
                let _ = writeln!(out, "{value:>12.3} {quantile:>2.12} {total:>10}");
            }
        }
    }
    let (mean, stdev, max) = if histogram.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            histogram.mean() / 1_000.0,
            histogram.stdev() / 1_000.0,
            us_to_ms(histogram.highest_equivalent(histogram.max())),
        )
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.3}, StdDeviation   = {stdev:>12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.3}, Total count    = {:>12}]",
        histogram.len()
    );
    let sub_buckets = (2 * 10u64.pow(u32::from(LATENCY_SIGFIG))).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {sub_buckets:>12}]",
        histogram.buckets()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{new_histogram, SeriesPoint};
    use std::collections::BTreeMap;

    fn totals() -> Totals {
        let mut latency = new_histogram();
        for us in 1..=1000u64 {
            latency.record(us * 10).unwrap();
        }
        let mut secondary = new_histogram();
        secondary.record(500).unwrap();
        Totals {
            records: 1000,
            bytes: 1_000_000,
            errors: 2,
            latency,
            secondary,
            error_kinds: BTreeMap::from([("REQUEST_TIMED_OUT (7)".to_string(), 2)]),
            warmup_errors: 0,
            warmup_records: 10,
            series: vec![SeriesPoint {
                t_s: 1.0,
                records: 500,
                bytes: 500_000,
                errors: 0,
                p99_ms: 9.9,
            }],
            duration_s: 2.0,
            acknowledged_all: 1010,
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let t = totals();
        let p = Percentiles::of(&t.latency);
        // Values 10 µs .. 10 ms in 10 µs steps.
        assert!((p.p50_ms - 5.0).abs() < 0.01, "{p:?}");
        assert!((p.p90_ms - 9.0).abs() < 0.01, "{p:?}");
        assert!((p.p99_ms - 9.9).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 10.0).abs() < 0.01, "{p:?}");
        assert_eq!(p.count, 1000);
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }

    #[test]
    fn json_has_the_documented_fields() {
        let t = totals();
        let report = Report {
            command: "produce",
            unit: "records",
            headline: "test".into(),
            totals: &t,
            latency_label: "latency",
            secondary_label: Some("request"),
            verification: Some(Verification::new(1010, 1010, BY_HIGH_WATERMARKS)),
            options: json!({"acks": "all"}),
        };
        let v = report.json();
        for key in [
            "records",
            "bytes",
            "duration_s",
            "throughput_mb_s",
            "throughput_records_s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
            "errors",
            "options",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        assert_eq!(v["records"], 1000);
        assert_eq!(v["throughput_records_s"], 500.0);
        assert_eq!(v["throughput_mb_s"], 0.5);
        assert_eq!(v["options"]["acks"], "all");
        assert_eq!(v["verified"]["ok"], true);
        assert_eq!(v["error_kinds"]["REQUEST_TIMED_OUT (7)"], 2);
        assert_eq!(v["secondary"]["percentiles"]["count"], 1);
        let text = report.summary();
        assert!(text.contains("500 records/s"), "{text}");
        assert!(
            text.contains("verified: 1,010 records acknowledged"),
            "{text}"
        );
        assert!(text.contains("REQUEST_TIMED_OUT (7)"), "{text}");
    }

    #[test]
    fn missing_acknowledged_records_fail_verification() {
        assert!(!Verification::new(100, 99, BY_CONSUMING).ok);
        assert!(Verification::new(100, 100, BY_CONSUMING).ok);
        assert!(Verification::new(100, 130, BY_HIGH_WATERMARKS).ok);
    }

    #[test]
    fn hgrm_is_hdrhistogram_percentile_text() {
        let t = totals();
        let text = hgrm(&t.latency);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].trim_start().starts_with("Value"));
        assert_eq!(lines[1], "");
        let rows: Vec<Vec<&str>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(rows.len() > 20, "{text}");
        // Values and percentiles never decrease; counts end at the total.
        let mut last = (0.0f64, 0.0f64, 0u64);
        for row in &rows {
            let value: f64 = row[0].parse().unwrap();
            let pct: f64 = row[1].parse().unwrap();
            let count: u64 = row[2].parse().unwrap();
            assert!(
                value >= last.0 && pct >= last.1 && count >= last.2,
                "{row:?}"
            );
            last = (value, pct, count);
        }
        assert_eq!(last.1, 1.0);
        assert_eq!(last.2, 1000);
        assert_eq!(rows.last().unwrap().len(), 3, "the 100% row has no 1/(1-p)");
        assert!(text.contains("#[Max     =       10.007"), "{text}");
        assert!(text.contains("Total count    =         1000]"), "{text}");
        assert!(text.contains("SubBuckets     =         2048]"), "{text}");
        // An empty histogram still yields a well-formed file.
        assert!(hgrm(&new_histogram()).contains("Total count    =            0]"));
    }
}
