//! `ringlog search`: finds records of a running broker's topic by their
//! value, key and headers, through `GET /search` on its `--http` listener
//! ([`crate::search_api`]), and prints a table or the broker's JSON.

use crate::admin_client::AdminArgs;
use crate::kafka_client::{exit_code, ClientError};
use crate::search_api::{HitJson, SearchJson, LIMIT_DEFAULT, SEARCH_PATH};
use clap::{Args, ValueEnum};
use ringlog_shard::search::{Order, SearchRequest};
use std::fmt::Write as _;
use std::process::ExitCode;

/// Longest value or key shown in a table cell, in characters; `--json`
/// prints them whole.
pub const CELL_CHARS_MAX: usize = 60;

/// `ringlog search` and its options.
#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The topic to search.
    #[arg(long)]
    topic: String,
    /// The query: tantivy's query language over the value, key and
    /// headers (`order 8812`, `"exact phrase"`, `value.user:alice`,
    /// `key:k1`, `headers:trace`); empty matches every record.
    query: String,
    /// The most hits to print (at most 1000).
    #[arg(long, default_value_t = LIMIT_DEFAULT)]
    limit: usize,
    /// Only this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// Only records at or after this timestamp (ms since the epoch).
    #[arg(long, value_name = "MS")]
    from_ts: Option<i64>,
    /// Only records before this timestamp (ms since the epoch).
    #[arg(long, value_name = "MS")]
    to_ts: Option<i64>,
    /// Only records at or after this offset.
    #[arg(long, value_name = "OFFSET")]
    from_offset: Option<u64>,
    /// Only records before this offset.
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<u64>,
    /// The order of the hits.
    #[arg(long, value_enum, default_value_t = SearchOrder::Newest)]
    order: SearchOrder,
    /// Print the broker's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--order`.
#[derive(Clone, Copy, ValueEnum)]
pub enum SearchOrder {
    /// Latest timestamp first.
    Newest,
    /// Best match first.
    Score,
}

/// `/search?...` for `request` over `topic`, each value percent-encoded.
pub fn search_path(topic: &str, request: &SearchRequest) -> String {
    let order = match request.order {
        Order::Newest => "newest",
        Order::Score => "score",
    };
    let mut path = format!(
        "{SEARCH_PATH}?topic={}&q={}&limit={}&order={order}",
        encode(topic),
        encode(&request.q),
        request.limit
    );
    let numbers = [
        ("partition", request.partition.map(i128::from)),
        ("from_ts", request.from_ts_ms.map(i128::from)),
        ("to_ts", request.to_ts_ms.map(i128::from)),
        ("from_offset", request.from_offset.map(i128::from)),
        ("to_offset", request.to_offset.map(i128::from)),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            let _ = write!(path, "&{name}={value}");
        }
    }
    path
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A cell: the text cut to [`CELL_CHARS_MAX`] characters, newlines and
/// tabs shown as spaces; `-` for none; base64 marked.
fn cell(text: Option<&str>, base64: bool) -> String {
    let Some(text) = text else {
        return "-".to_string();
    };
    let mut shown: String = text
        .chars()
        .take(CELL_CHARS_MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > CELL_CHARS_MAX {
        shown.push('…');
    }
    if base64 {
        format!("base64:{shown}")
    } else {
        shown
    }
}

/// The answer as a table: one row per hit, then the unindexed ranges.
pub fn render(answer: &SearchJson) -> String {
    let rows: Vec<[String; 5]> = answer
        .hits
        .iter()
        .map(|hit: &HitJson| {
            [
                hit.partition.to_string(),
                hit.offset.to_string(),
                hit.timestamp.to_string(),
                cell(hit.key.as_deref(), hit.key_base64),
                cell(hit.value.as_deref(), hit.value_base64),
            ]
        })
        .collect();
    let titles = ["PARTITION", "OFFSET", "TIMESTAMP", "KEY", "VALUE"];
    let mut widths = titles.map(|t| t.chars().count());
    for row in &rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&titles);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let _ = writeln!(
        out,
        "{} hits in {:.1} ms",
        answer.hits.len(),
        answer.took_ms
    );
    for range in &answer.unindexed {
        let _ = writeln!(
            out,
            "not searched: partition {} offsets {}..{}",
            range.partition, range.start, range.end
        );
    }
    out
}

/// Runs `ringlog search`: prints the hits on stdout and returns 0, or
/// prints `ringlog search: <error>` on stderr and returns 1.
pub fn run(args: SearchArgs) -> ExitCode {
    exit_code("search", execute(&args).err())
}

fn execute(args: &SearchArgs) -> Result<(), ClientError> {
    let client = args.admin.client()?;
    let request = SearchRequest {
        q: args.query.clone(),
        limit: args.limit,
        partition: args.partition,
        from_ts_ms: args.from_ts,
        to_ts_ms: args.to_ts,
        from_offset: args.from_offset,
        to_offset: args.to_offset,
        order: match args.order {
            SearchOrder::Newest => Order::Newest,
            SearchOrder::Score => Order::Score,
        },
    };
    let path = search_path(&args.topic, &request);
    let answer = client.get(&path)?;
    if args.json {
        print!("{answer}");
    } else {
        print!("{}", render(&client.decode(&answer)?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search_api::UnindexedJson;

    #[test]
    fn the_path_encodes_every_value() {
        let request = SearchRequest {
            q: "value.user:alice & \"x\"".into(),
            limit: 5,
            partition: Some(2),
            to_ts_ms: Some(9),
            from_offset: Some(4),
            order: Order::Score,
            ..SearchRequest::default()
        };
        assert_eq!(
            search_path("t 1", &request),
            "/search?topic=t%201&q=value.user%3Aalice%20%26%20%22x%22&limit=5&order=score&partition=2&to_ts=9&from_offset=4"
        );
    }

    #[test]
    fn the_table_lists_hits_and_unsearched_ranges() {
        let hit = HitJson {
            topic: "t".into(),
            partition: 1,
            offset: 42,
            timestamp: 7,
            key: None,
            key_base64: false,
            value: Some("order 8812\nshipped".into()),
            value_base64: false,
            headers: Vec::new(),
            score: None,
        };
        let text = render(&SearchJson {
            hits: vec![hit],
            took_ms: 1.0,
            archives_searched: 0,
            unindexed: vec![UnindexedJson {
                partition: 0,
                start: 0,
                end: 10,
            }],
        });
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("PARTITION  OFFSET  TIMESTAMP  KEY"),
            "{text}"
        );
        assert!(
            lines[1].contains("42") && lines[1].contains("order 8812 shipped"),
            "{text}"
        );
        assert_eq!(lines[2], "1 hits in 1.0 ms");
        assert_eq!(lines[3], "not searched: partition 0 offsets 0..10");
    }
}
