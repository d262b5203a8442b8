//! `GET /search` on `ringlog serve --http`: record search over a topic's
//! indexed records, and the JSON documents `ringlog search` reads back.
//!
//! `GET /search?topic=T&q=QUERY&limit=N` with optional `partition`,
//! `from_ts` and `to_ts` (ms; from inclusive, to exclusive),
//! `from_offset` and `to_offset` (from inclusive, to exclusive) and
//! `order=newest|score` (default newest). The query is tantivy's query
//! language over the record's value (`value.user:alice` reaches a member of
//! a JSON value), key and headers; an empty query matches every record.
//! The answer is a [`SearchJson`]; a query that does not parse is 400 with
//! the parser's message, an unknown topic 404.
//!
//! Why the endpoint asks the controller whether the topic exists: the
//! indexers only know partitions they have indexed, and "no hits" must not
//! be the answer to a misspelt topic.
//!
//! [`respond`] is pure but for the two calls it is handed, which is how
//! the tests route requests without a broker.

use crate::admin_api::Reply;
use ringlog_shard::admin::{AdminAnswer, AdminOutcome, AdminRequest};
use ringlog_shard::search::{Found, Hit, Order, Payload, SearchError, SearchRequest};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// `GET /search`.
pub const SEARCH_PATH: &str = "/search";
/// Hits returned when the request names no `limit`.
pub const LIMIT_DEFAULT: usize = 100;
/// Longest query string accepted, in bytes (the request head's own bound
/// is larger; a query this long is a mistake).
pub const QUERY_STRING_BYTES_MAX: usize = 4096;

/// The answer to `GET /search`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchJson {
    /// The hits, in the request's order.
    pub hits: Vec<HitJson>,
    /// Milliseconds the broker took.
    pub took_ms: f64,
    /// Archives opened (archived records are not indexed yet: always 0).
    pub archives_searched: u64,
    /// Offset ranges of the topic that exist but were not searched.
    pub unindexed: Vec<UnindexedJson>,
}

/// One record found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HitJson {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Its timestamp (ms).
    pub timestamp: i64,
    /// Its key: UTF-8 text, or base64 with `key_base64`; `null` for none.
    pub key: Option<String>,
    /// Whether `key` is base64.
    #[serde(default)]
    pub key_base64: bool,
    /// Its value: UTF-8 text, or base64 with `value_base64`; `null` for none.
    pub value: Option<String>,
    /// Whether `value` is base64.
    #[serde(default)]
    pub value_base64: bool,
    /// Its headers, in order.
    pub headers: Vec<HeaderJson>,
    /// Its BM25 score, with `order=score`.
    pub score: Option<f32>,
}

/// One header of a hit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeaderJson {
    /// Its key (base64 with `key_base64`).
    pub key: String,
    /// Whether `key` is base64.
    #[serde(default)]
    pub key_base64: bool,
    /// Its value (base64 with `value_base64`); `null` for none.
    pub value: Option<String>,
    /// Whether `value` is base64.
    #[serde(default)]
    pub value_base64: bool,
}

/// Offsets `start..end` of a partition that were not searched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnindexedJson {
    /// The partition.
    pub partition: u32,
    /// First offset not searched.
    pub start: u64,
    /// The offset after the last one not searched.
    pub end: u64,
}

/// Text and its base64 flag.
fn payload(payload: Option<Payload>) -> (Option<String>, bool) {
    match payload {
        None => (None, false),
        Some(Payload::Utf8(text)) => (Some(text), false),
        Some(Payload::Base64(text)) => (Some(text), true),
    }
}

impl HitJson {
    fn new(topic: &str, hit: Hit) -> HitJson {
        let (key, key_base64) = payload(hit.key);
        let (value, value_base64) = payload(hit.value);
        let headers = hit
            .headers
            .into_iter()
            .map(|(key, value)| {
                let (key, key_base64) = payload(Some(key));
                let (value, value_base64) = payload(value);
                HeaderJson {
                    key: key.unwrap_or_default(),
                    key_base64,
                    value,
                    value_base64,
                }
            })
            .collect();
        HitJson {
            topic: topic.to_string(),
            partition: hit.partition,
            offset: hit.offset,
            timestamp: hit.timestamp_ms,
            key,
            key_base64,
            value,
            value_base64,
            headers,
            score: hit.score,
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a
/// space, `%XX` a byte; the bytes must be UTF-8.
fn decode_component(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in {text:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} does not decode to UTF-8"))
}

/// A request's topic and search, read from its query string.
fn parse_query(query: &str) -> Result<(String, SearchRequest), String> {
    if query.len() > QUERY_STRING_BYTES_MAX {
        return Err(format!(
            "the query string is {} bytes; at most {QUERY_STRING_BYTES_MAX} are accepted",
            query.len()
        ));
    }
    let mut topic = None;
    let mut request = SearchRequest {
        limit: LIMIT_DEFAULT,
        ..SearchRequest::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode_component(value)?;
        let number = |what: &str| -> Result<i64, String> {
            value
                .parse()
                .map_err(|_| format!("{what}={value:?} is not an integer"))
        };
        let offset = |what: &str| -> Result<u64, String> {
            u64::try_from(number(what)?).map_err(|_| format!("{what}={value} is negative"))
        };
        match decode_component(name)?.as_str() {
            "topic" => topic = Some(value.clone()),
            "q" => request.q = value.clone(),
            "limit" => {
                request.limit = usize::try_from(number("limit")?)
                    .map_err(|_| format!("limit={value} is negative"))?;
            }
            "partition" => {
                request.partition = Some(
                    u32::try_from(number("partition")?)
                        .map_err(|_| format!("partition={value} is out of range"))?,
                );
            }
            "from_ts" => request.from_ts_ms = Some(number("from_ts")?),
            "to_ts" => request.to_ts_ms = Some(number("to_ts")?),
            "from_offset" => request.from_offset = Some(offset("from_offset")?),
            "to_offset" => request.to_offset = Some(offset("to_offset")?),
            "order" => {
                request.order = match value.as_str() {
                    "newest" => Order::Newest,
                    "score" => Order::Score,
                    other => return Err(format!("order={other:?}: use newest or score")),
                }
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; there are topic, q, limit, partition, from_ts, to_ts, from_offset, to_offset, order"
                ))
            }
        }
    }
    let topic = topic
        .filter(|t| !t.is_empty())
        .ok_or("the topic parameter is required: /search?topic=T&q=QUERY")?;
    Ok((topic, request))
}

/// The answer to `method /search?query`: `topics` asks the broker for
/// its shards' partitions, `search` runs the search.
pub fn respond(
    method: &str,
    query: &str,
    topics: impl FnOnce(AdminRequest) -> AdminOutcome,
    search: impl FnOnce(&str, &SearchRequest) -> Result<Found, SearchError>,
) -> Reply {
    if method != "GET" {
        return Reply {
            allow: Some("GET"),
            ..Reply::error(405, format!("{method} {SEARCH_PATH}: use GET"))
        };
    }
    let started = Instant::now();
    let (topic, request) = match parse_query(query) {
        Ok(parsed) => parsed,
        Err(why) => return Reply::error(400, why),
    };
    let known = match topics(AdminRequest::Shards) {
        Ok(AdminAnswer::Shards(shards)) => shards
            .iter()
            .flat_map(|s| &s.partitions)
            .any(|p| p.topic == topic),
        Ok(_) => return Reply::error(500, "the broker answered another call"),
        Err(failure) => return Reply::error(failure.kind.http_status(), failure.message),
    };
    if !known {
        return Reply::error(404, format!("unknown topic {topic}"));
    }
    match search(&topic, &request) {
        Ok(found) => Reply::ok(&SearchJson {
            hits: found
                .hits
                .into_iter()
                .map(|hit| HitJson::new(&topic, hit))
                .collect(),
            took_ms: started.elapsed().as_secs_f64() * 1e3,
            archives_searched: found.archives_searched,
            unindexed: found
                .unindexed
                .into_iter()
                .flat_map(|(partition, ranges)| {
                    ranges.into_iter().map(move |r| UnindexedJson {
                        partition,
                        start: r.start,
                        end: r.end,
                    })
                })
                .collect(),
        }),
        Err(SearchError::BadQuery(why)) => Reply::error(400, format!("bad query: {why}")),
        Err(SearchError::Unavailable(why)) => Reply::error(503, why),
        Err(e) => Reply::error(500, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlog_shard::admin::{PartitionLoad, ShardLoad};

    fn shards(topic: &str) -> AdminOutcome {
        Ok(AdminAnswer::Shards(vec![ShardLoad {
            shard: 0,
            cpu: None,
            partitions: vec![PartitionLoad {
                topic: topic.to_string(),
                partition: 0,
                bytes: 0,
                produce_bytes_per_s: 0.0,
                fetch_bytes_per_s: 0.0,
            }],
            busy: 0.0,
            in_flight: 0,
        }]))
    }

    #[test]
    fn parameters_decode_and_are_checked() {
        let (topic, request) =
            parse_query("topic=orders&q=value.user%3Aalice+AND+8812&limit=5&partition=2&from_ts=10&to_ts=20&from_offset=3&to_offset=9&order=score")
                .unwrap();
        assert_eq!(topic, "orders");
        assert_eq!(request.q, "value.user:alice AND 8812");
        assert_eq!(request.limit, 5);
        assert_eq!(request.partition, Some(2));
        assert_eq!((request.from_ts_ms, request.to_ts_ms), (Some(10), Some(20)));
        assert_eq!((request.from_offset, request.to_offset), (Some(3), Some(9)));
        assert_eq!(request.order, Order::Score);
        assert_eq!(parse_query("topic=t").unwrap().1.limit, LIMIT_DEFAULT);
        for bad in [
            "q=x",
            "topic=t&limit=-1",
            "topic=t&order=oldest",
            "topic=t&q=%zz",
            "topic=t&size=3",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_topics_bad_queries_and_methods_get_their_status() {
        let never =
            |_: &str, _: &SearchRequest| -> Result<Found, SearchError> { panic!("not searched") };
        assert_eq!(
            respond("GET", "topic=other&q=x", |_| shards("t"), never).status,
            404
        );
        assert_eq!(
            respond("POST", "topic=t", |_| shards("t"), never).status,
            405
        );
        assert_eq!(
            respond("GET", "limit=3", |_| shards("t"), never).status,
            400
        );
        let bad = respond(
            "GET",
            "topic=t&q=a:(",
            |_| shards("t"),
            |_, _| Err(SearchError::BadQuery("syntax error".into())),
        );
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("syntax error"), "{}", bad.body);
    }

    #[test]
    fn hits_carry_their_topic_and_flag_base64() {
        let reply = respond(
            "GET",
            "topic=t&q=x",
            |_| shards("t"),
            |_, _| {
                Ok(Found {
                    hits: vec![Hit {
                        partition: 0,
                        offset: 7,
                        timestamp_ms: 11,
                        key: Some(Payload::Base64("AAE=".into())),
                        value: Some(Payload::Utf8("x".into())),
                        headers: vec![(Payload::Utf8("h".into()), None)],
                        score: None,
                    }],
                    unindexed: [(0, std::iter::once(0..3).collect())].into_iter().collect(),
                    archives_searched: 2,
                })
            },
        );
        assert_eq!(reply.status, 200);
        let answer: SearchJson = serde_json::from_str(&reply.body).unwrap();
        let hit = &answer.hits[0];
        assert_eq!(
            (hit.topic.as_str(), hit.offset, hit.timestamp),
            ("t", 7, 11)
        );
        assert!(hit.key_base64 && !hit.value_base64);
        assert_eq!(hit.headers[0].value, None);
        assert_eq!(answer.archives_searched, 2);
        assert_eq!(
            answer.unindexed,
            vec![UnindexedJson {
                partition: 0,
                start: 0,
                end: 3
            }]
        );
    }
}
