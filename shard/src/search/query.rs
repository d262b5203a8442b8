//! A search over any number of indexes (tail and sealed segments, one
//! partition or many) with one request, merged under one limit.
//!
//! The query language is tantivy's (`alice`, `value.user:alice`,
//! `headers:trace`, `key_raw:"user-1"`, `a AND NOT b`, phrases); words
//! without a field search the value's text, a JSON value's members, the
//! key and the headers, and several words must all match. An empty query
//! matches every record (with the filters: "the newest records of this
//! hour"). Filters (partition, time range, offset range) never change a
//! score.
//!
//! Each index yields at most `limit` candidates, ordered by its fast
//! fields (newest) or BM25 (score); the candidates are merged and only
//! the `limit` kept are read from the stored fields. BM25 statistics are
//! each index's own, so scores across indexes are comparable only
//! roughly.

use super::schema::{decode_header, tokenizers, SearchSchema};
use super::{Corruption, SearchError};
use base64::Engine as _;
use std::ops::Bound;
use tantivy::collector::sort_key::SortByStaticFastValue;
use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, Order as TantivyOrder, Searcher, TantivyDocument, Term};

/// The most hits one search returns.
pub const SEARCH_LIMIT_MAX: usize = 1000;

/// How hits are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Latest timestamp first, then highest offset.
    #[default]
    Newest,
    /// Best BM25 score first.
    Score,
}

/// One search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchRequest {
    /// The query (see the module docs); empty: every record.
    pub q: String,
    /// The most hits wanted, at most [`SEARCH_LIMIT_MAX`] (more is taken
    /// as that).
    pub limit: usize,
    /// Only this partition's records.
    pub partition: Option<u32>,
    /// Only records at or after this timestamp.
    pub from_ts_ms: Option<i64>,
    /// Only records before this timestamp.
    pub to_ts_ms: Option<i64>,
    /// Only records at or after this offset.
    pub from_offset: Option<u64>,
    /// Only records before this offset.
    pub to_offset: Option<u64>,
    /// The order of the hits.
    pub order: Order,
}

/// A key, value or header as produced: text when it is UTF-8, else its
/// bytes in standard base64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Valid UTF-8, as is.
    Utf8(String),
    /// Anything else, base64-encoded.
    Base64(String),
}

impl Payload {
    fn of(bytes: &[u8]) -> Payload {
        match std::str::from_utf8(bytes) {
            Ok(text) => Payload::Utf8(text.to_owned()),
            Err(_) => Payload::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }
}

/// One record found.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Its timestamp.
    pub timestamp_ms: i64,
    /// Its key (`None`: null).
    pub key: Option<Payload>,
    /// Its value (`None`: null).
    pub value: Option<Payload>,
    /// Its headers: key, value (`None`: null).
    pub headers: Vec<(Payload, Option<Payload>)>,
    /// Its BM25 score, with [`Order::Score`].
    pub score: Option<f32>,
}

/// What orders a candidate hit.
#[derive(Clone, Copy, Debug)]
enum Rank {
    /// Timestamp, offset.
    Newest(i64, u64),
    Score(f32),
}

impl Rank {
    /// Best first.
    fn cmp(&self, other: &Rank) -> std::cmp::Ordering {
        match (self, other) {
            (Rank::Newest(t, o), Rank::Newest(other_t, other_o)) => (other_t, other_o).cmp(&(t, o)),
            (Rank::Score(s), Rank::Score(other_s)) => other_s.total_cmp(s),
            (Rank::Newest(..), Rank::Score(_)) => std::cmp::Ordering::Less,
            (Rank::Score(_), Rank::Newest(..)) => std::cmp::Ordering::Greater,
        }
    }
}

/// A candidate hit: where it is and what orders it.
struct Candidate {
    searcher: usize,
    address: DocAddress,
    rank: Rank,
}

/// The query of `request` over `schema`: the parsed text, with the
/// filters as score-free clauses.
fn build_query(
    schema: &SearchSchema,
    request: &SearchRequest,
) -> Result<Box<dyn Query>, SearchError> {
    let text: Box<dyn Query> = if request.q.trim().is_empty() {
        Box::new(AllQuery)
    } else {
        let mut parser =
            QueryParser::new(schema.schema.clone(), schema.default_fields(), tokenizers());
        parser.set_conjunction_by_default();
        parser
            .parse_query(&request.q)
            .map_err(|e| SearchError::BadQuery(e.to_string()))?
    };
    let mut clauses = vec![(Occur::Must, text)];
    let filter = |query: Box<dyn Query>| -> (Occur, Box<dyn Query>) {
        (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
    };
    if let Some(partition) = request.partition {
        let term = Term::from_field_u64(schema.partition, u64::from(partition));
        clauses.push(filter(Box::new(TermQuery::new(
            term,
            IndexRecordOption::Basic,
        ))));
    }
    if request.from_ts_ms.is_some() || request.to_ts_ms.is_some() {
        let at = |ts: i64| Term::from_field_i64(schema.timestamp, ts);
        let lower = request
            .from_ts_ms
            .map_or(Bound::Unbounded, |ts| Bound::Included(at(ts)));
        let upper = request
            .to_ts_ms
            .map_or(Bound::Unbounded, |ts| Bound::Excluded(at(ts)));
        clauses.push(filter(Box::new(RangeQuery::new(lower, upper))));
    }
    if request.from_offset.is_some() || request.to_offset.is_some() {
        let at = |offset: u64| Term::from_field_u64(schema.offset, offset);
        let lower = request
            .from_offset
            .map_or(Bound::Unbounded, |offset| Bound::Included(at(offset)));
        let upper = request
            .to_offset
            .map_or(Bound::Unbounded, |offset| Bound::Excluded(at(offset)));
        clauses.push(filter(Box::new(RangeQuery::new(lower, upper))));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Runs `request` over every searcher (all built on [`SearchSchema`]) and
/// returns the best `limit` hits of them all, in the request's order.
///
/// # Errors
///
/// A bad query, or the first searcher that failed.
pub fn search(searchers: &[&Searcher], request: &SearchRequest) -> Result<Vec<Hit>, SearchError> {
    let mut searched = search_each(searchers, request)?;
    match searched.failed.pop() {
        Some((_, e)) => Err(e),
        None => Ok(searched.hits),
    }
}

/// What [`search_each`] found.
pub struct Searched {
    /// The best `limit` hits of the searchers that did not fail.
    pub hits: Vec<Hit>,
    /// The searchers that failed (their position in the slice), and why:
    /// an index read on demand whose bytes did not read or check out.
    pub failed: Vec<(usize, SearchError)>,
}

/// Like [`search`], but a searcher that fails leaves the others' hits:
/// the best `limit` of the rest are returned, with the failures.
///
/// # Errors
///
/// Only a bad query.
pub fn search_each(
    searchers: &[&Searcher],
    request: &SearchRequest,
) -> Result<Searched, SearchError> {
    let schema = SearchSchema::new();
    let query = build_query(&schema, request)?;
    let limit = request.limit.min(SEARCH_LIMIT_MAX);
    let mut failed: Vec<(usize, SearchError)> = Vec::new();
    if limit == 0 {
        return Ok(Searched {
            hits: Vec::new(),
            failed,
        });
    }
    let mut candidates = Vec::new();
    for (index, searcher) in searchers.iter().enumerate() {
        let found = match request.order {
            Order::Newest => {
                let newest = TopDocs::with_limit(limit).order_by((
                    (
                        SortByStaticFastValue::<i64>::for_field(super::schema::names::TIMESTAMP),
                        TantivyOrder::Desc,
                    ),
                    (
                        SortByStaticFastValue::<u64>::for_field(super::schema::names::OFFSET),
                        TantivyOrder::Desc,
                    ),
                ));
                searcher.search(&query, &newest).map(|found| {
                    found
                        .into_iter()
                        .map(|((timestamp, offset), address)| {
                            let rank =
                                Rank::Newest(timestamp.unwrap_or(i64::MIN), offset.unwrap_or(0));
                            (rank, address)
                        })
                        .collect::<Vec<_>>()
                })
            }
            Order::Score => {
                let best = TopDocs::with_limit(limit).order_by_score();
                searcher.search(&query, &best).map(|found| {
                    found
                        .into_iter()
                        .map(|(score, address)| (Rank::Score(score), address))
                        .collect()
                })
            }
        };
        match found {
            Ok(found) => candidates.extend(found.into_iter().map(|(rank, address)| Candidate {
                searcher: index,
                address,
                rank,
            })),
            Err(e) => failed.push((index, e.into())),
        }
    }
    candidates.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then(a.searcher.cmp(&b.searcher))
            .then(a.address.cmp(&b.address))
    });
    // Read the stored records of the best candidates; one that does not
    // read fails its searcher, whose other candidates are passed over.
    let mut hits = Vec::with_capacity(limit);
    for c in candidates {
        if hits.len() == limit {
            break;
        }
        if failed.iter().any(|(index, _)| *index == c.searcher) {
            continue;
        }
        let score = match c.rank {
            Rank::Score(score) => Some(score),
            Rank::Newest(..) => None,
        };
        let read = searchers[c.searcher]
            .doc::<TantivyDocument>(c.address)
            .map_err(SearchError::from)
            .and_then(|doc| hit(&schema, &doc, score));
        match read {
            Ok(hit) => hits.push(hit),
            Err(e) => failed.push((c.searcher, e)),
        }
    }
    Ok(Searched { hits, failed })
}

/// The hit a stored document describes.
fn hit(
    schema: &SearchSchema,
    doc: &TantivyDocument,
    score: Option<f32>,
) -> Result<Hit, SearchError> {
    let missing = |what| SearchError::Corrupt(Corruption::StoredDocument(what));
    let partition = doc
        .get_first(schema.partition)
        .and_then(|v| v.as_u64())
        .and_then(|p| u32::try_from(p).ok())
        .ok_or(missing("partition"))?;
    let offset = doc
        .get_first(schema.offset)
        .and_then(|v| v.as_u64())
        .ok_or(missing("offset"))?;
    let timestamp_ms = doc
        .get_first(schema.timestamp)
        .and_then(|v| v.as_i64())
        .ok_or(missing("timestamp"))?;
    let bytes = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_bytes())
            .map(Payload::of)
    };
    let headers = doc
        .get_all(schema.header_bytes)
        .map(|v| {
            let (key, value) = v
                .as_bytes()
                .and_then(decode_header)
                .ok_or(missing("header"))?;
            Ok((Payload::of(key), value.map(Payload::of)))
        })
        .collect::<Result<_, SearchError>>()?;
    Ok(Hit {
        partition,
        offset,
        timestamp_ms,
        key: bytes(schema.key_bytes),
        value: bytes(schema.value_bytes),
        headers,
        score,
    })
}
