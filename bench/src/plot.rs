//! `--plot <file.svg>`: the latency percentile curve and the throughput
//! over time, as one self-contained SVG.
//!
//! Why hand-written SVG: two line charts need a few dozen lines of text,
//! not a plotting stack with fonts and raster back ends. The percentile
//! axis is logarithmic in 1/(1-p) (0%, 90%, 99%, 99.9%, ...), the way
//! HdrHistogram plots are read: each step right is ten times rarer, so a
//! stall that hits one request in a thousand is as visible as the median.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

use crate::stats::{us_to_ms, SeriesPoint};
use crate::units::MB;

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 30.0;
const MARGIN_TOP: f64 = 50.0;
const MARGIN_BOTTOM: f64 = 50.0;
/// Percentile decades on the x axis at most (99.9999%).
const DECADES_MAX: u32 = 6;
/// Percentile steps per halving of the remaining distance.
const QUANTILE_TICKS_PER_HALF_DISTANCE: u32 = 20;
const Y_TICKS: u32 = 5;

/// The smallest of 1, 2, 5 x 10^k that is >= `value` (at least 1e-3).
pub fn nice_ceiling(value: f64) -> f64 {
    let value = value.max(1e-3);
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|&candidate| candidate >= value * (1.0 - 1e-12))
        .unwrap_or(10.0 * magnitude)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn percentile_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_string(),
        d => {
            let nines = 100.0 - 100.0 / 10f64.powi(d as i32);
            let decimals = d.saturating_sub(2) as usize;
            format!("{nines:.decimals$}%")
        }
    }
}

struct Panel {
    top: f64,
    x_max: f64,
    y_max: f64,
}

impl Panel {
    fn left(&self) -> f64 {
        MARGIN_LEFT
    }
    fn right(&self) -> f64 {
        WIDTH - MARGIN_RIGHT
    }
    fn bottom(&self) -> f64 {
        self.top + PANEL_HEIGHT - MARGIN_BOTTOM
    }
    fn x(&self, value: f64) -> f64 {
        self.left() + (self.right() - self.left()) * (value / self.x_max).clamp(0.0, 1.0)
    }
    fn y(&self, value: f64) -> f64 {
        let plot_top = self.top + MARGIN_TOP;
        self.bottom() - (self.bottom() - plot_top) * (value / self.y_max).clamp(0.0, 1.0)
    }

    fn frame(&self, out: &mut String, title: &str, y_label: &str, x_label: &str) {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="16" font-weight="bold">{}</text>"#,
            self.left(),
            self.top + 25.0,
            escape(title)
        );
        let _ = writeln!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
            self.left(),
            self.top + MARGIN_TOP,
            self.right() - self.left(),
            self.bottom() - self.top - MARGIN_TOP
        );
        for i in 0..=Y_TICKS {
            let value = self.y_max * f64::from(i) / f64::from(Y_TICKS);
            let y = self.y(value);
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                self.left(),
                self.right(),
                self.left() - 6.0,
                y + 4.0,
                trim_number(value)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
            self.left() - 55.0,
            (self.top + MARGIN_TOP + self.bottom()) / 2.0,
            self.left() - 55.0,
            (self.top + MARGIN_TOP + self.bottom()) / 2.0,
            escape(y_label)
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            (self.left() + self.right()) / 2.0,
            self.bottom() + 38.0,
            escape(x_label)
        );
    }
}

fn trim_number(value: f64) -> String {
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn no_data(out: &mut String, panel: &Panel) {
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="14" text-anchor="middle">no data</text>"#,
        (panel.left() + panel.right()) / 2.0,
        (panel.top + MARGIN_TOP + panel.bottom()) / 2.0
    );
}

/// The SVG: `latency` (µs histogram) by percentile on top, `series` (MB/s
/// per second) below.
pub fn svg(
    title: &str,
    latency: &Histogram<u64>,
    latency_label: &str,
    series: &[SeriesPoint],
) -> String {
    let height = 2.0 * PANEL_HEIGHT + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(out, "<title>{}</title>", escape(title));

    // Latency by percentile.
    let decades = if latency.len() > 1 {
        ((latency.len() as f64).log10().ceil() as u32).clamp(2, DECADES_MAX)
    } else {
        2
    };
    let max_ms = us_to_ms(latency.highest_equivalent(latency.max()));
    let top = Panel {
        top: 0.0,
        x_max: f64::from(decades),
        y_max: nice_ceiling(max_ms),
    };
    top.frame(
        &mut out,
        &format!("{title}: {latency_label}"),
        "latency (ms)",
        "percentile",
    );
    for decade in 0..=decades {
        let x = top.x(f64::from(decade));
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            top.top + MARGIN_TOP,
            top.bottom(),
            top.bottom() + 16.0,
            percentile_label(decade)
        );
    }
    if latency.is_empty() {
        no_data(&mut out, &top);
    } else {
        let mut points = String::new();
        for step in latency.iter_quantiles(QUANTILE_TICKS_PER_HALF_DISTANCE) {
            let q = step.quantile_iterated_to();
            if q >= 1.0 {
                break;
            }
            let x = (1.0 / (1.0 - q)).log10();
            if x > f64::from(decades) {
                break;
            }
            let value = us_to_ms(latency.highest_equivalent(step.value_iterated_to()));
            let _ = write!(points, "{:.1},{:.1} ", top.x(x), top.y(value));
        }
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
            points.trim_end()
        );
        let y = top.y(max_ms);
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d62728" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#d62728" text-anchor="end">max {max_ms:.3} ms</text>"##,
            top.left(),
            top.right(),
            top.right() - 4.0,
            y - 4.0
        );
    }

    // Throughput over time.
    let mb: Vec<(f64, f64)> = series
        .iter()
        .map(|p| (p.t_s, p.bytes as f64 / MB))
        .collect();
    let t_max = mb.iter().map(|p| p.0).fold(1.0f64, f64::max);
    let mb_max = mb.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let bottom = Panel {
        top: PANEL_HEIGHT + 20.0,
        x_max: t_max,
        y_max: nice_ceiling(mb_max),
    };
    bottom.frame(
        &mut out,
        "throughput per second",
        "MB/s",
        "seconds after warm-up",
    );
    let x_step = nice_ceiling(t_max / 10.0);
    let mut t = 0.0;
    while t <= t_max + 1e-9 {
        let x = bottom.x(t);
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            bottom.bottom() + 16.0,
            trim_number(t)
        );
        t += x_step;
    }
    if mb.is_empty() {
        no_data(&mut out, &bottom);
    } else {
        let points: Vec<String> = mb
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", bottom.x(t), bottom.y(v)))
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="#2ca02c" stroke-width="2" points="{}"/>"##,
            points.join(" ")
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.2), 2.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(230.0), 500.0);
        assert_eq!(nice_ceiling(0.0), 0.001);
    }

    #[test]
    fn percentile_labels() {
        let labels: Vec<String> = (0..=5).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn svg_draws_both_curves() {
        let mut h = new_histogram();
        for us in 1..=10_000u64 {
            h.record(us).unwrap();
        }
        h.record(200_000).unwrap();
        let series: Vec<SeriesPoint> = (1..=5)
            .map(|i| SeriesPoint {
                t_s: f64::from(i),
                records: 1000,
                bytes: 100_000_000 * u64::from(i as u32),
                errors: 0,
                p99_ms: 1.0,
            })
            .collect();
        let text = svg("produce <8 partitions>", &h, "latency", &series);
        assert!(text.starts_with("<svg"));
        assert!(text.trim_end().ends_with("</svg>"));
        assert_eq!(text.matches("<polyline").count(), 2);
        assert!(text.contains("produce &lt;8 partitions&gt;"));
        assert!(!text.contains("<8 partitions>"));
        assert!(text.contains("max 200."), "the stall is labelled");
        assert!(text.contains(">99.99%<"), "x axis reaches the tail");
        // The throughput axis tops at 500 MB/s for a 500 MB/s peak.
        assert!(text.contains(">500<"), "{text}");
    }

    #[test]
    fn svg_without_data_says_so() {
        let text = svg("empty", &new_histogram(), "latency", &[]);
        assert_eq!(text.matches("no data").count(), 2);
        assert!(text.trim_end().ends_with("</svg>"));
    }
}
