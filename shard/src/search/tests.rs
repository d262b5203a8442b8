//! The search module's unit tests: tail and segment indexes over batches
//! of every codec, each query feature, and damaged blobs.

use super::*;
use ringlog_engine::archive::MemberKind;
use ringlog_engine::batch::set_base_offset;
use ringlog_engine::codec::Codec;
use ringlog_engine::records::{build_records_batch, NewRecord};
use std::sync::Arc;

const NOW: i64 = 1_700_000_000_000;

/// A batch of `values` (keys `key-<offset>`, no headers) at offsets
/// `base..`, timestamps `NOW + offset`.
fn batch(codec: Codec, base: u64, values: &[&str]) -> Vec<u8> {
    let keys: Vec<String> = (0..values.len())
        .map(|i| format!("key-{}", base + i as u64))
        .collect();
    let records: Vec<NewRecord<'_>> = values
        .iter()
        .zip(&keys)
        .enumerate()
        .map(|(i, (value, key))| NewRecord {
            timestamp_ms: NOW + base as i64 + i as i64,
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .collect();
    let mut bytes = build_records_batch(codec, &records);
    set_base_offset(&mut bytes, base);
    bytes
}

/// 100 filler records with a rare word at offsets `base + 17` and
/// `base + 71`.
fn filler(codec: Codec, base: u64, rare: &str) -> Vec<u8> {
    let values: Vec<String> = (0..100)
        .map(|i| match i {
            17 | 71 => format!("the quick {rare} fox {i}"),
            _ => format!("the lazy dog number {i}"),
        })
        .collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    batch(codec, base, &values)
}

fn committed(partition: u32, batches: &[Vec<u8>]) -> TailIndex {
    let mut tail = TailIndex::new(partition).unwrap();
    for b in batches {
        tail.add_batch(b).unwrap();
    }
    assert!(tail.commit_if_due(NOW).unwrap());
    tail
}

fn request(q: &str) -> SearchRequest {
    SearchRequest {
        q: q.to_owned(),
        limit: 100,
        ..SearchRequest::default()
    }
}

fn offsets(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.offset).collect()
}

fn run(tails: &[&TailIndex], request: &SearchRequest) -> Vec<Hit> {
    let searchers: Vec<_> = tails.iter().map(|t| t.searcher()).collect();
    let refs: Vec<_> = searchers.iter().collect();
    search(&refs, request).unwrap()
}

#[test]
fn rare_words_are_found_at_their_offsets_in_every_codec() {
    for (i, codec) in Codec::ALL.into_iter().enumerate() {
        let base = 1000 * i as u64;
        let rare = format!("zyzzyva{i}");
        let tail = committed(3, &[filler(codec, base, &rare)]);
        let hits = run(&[&tail], &request(&rare));
        assert_eq!(offsets(&hits), vec![base + 71, base + 17], "{codec}");
        let hit = &hits[1];
        assert_eq!(hit.partition, 3);
        assert_eq!(hit.timestamp_ms, NOW + base as i64 + 17);
        assert_eq!(hit.key, Some(Payload::Utf8(format!("key-{}", base + 17))));
        assert_eq!(
            hit.value,
            Some(Payload::Utf8(format!("the quick {rare} fox 17")))
        );
        assert_eq!(tail.offsets(), base..base + 100);
    }
}

#[test]
fn a_json_member_is_a_field() {
    let tail = committed(
        0,
        &[batch(
            Codec::Zstd,
            0,
            &[
                r#"{"user":"alice","action":"login"}"#,
                r#"{"user":"bob","note":"alice"}"#,
                "user alice, not json",
            ],
        )],
    );
    assert_eq!(
        offsets(&run(&[&tail], &request("value.user:alice"))),
        vec![0]
    );
    assert_eq!(offsets(&run(&[&tail], &request("value.user:bob"))), vec![1]);
    // A bare word finds JSON and plain values alike.
    assert_eq!(offsets(&run(&[&tail], &request("alice"))), vec![2, 1, 0]);
    assert_eq!(
        offsets(&run(&[&tail], &request("alice AND value.action:login"))),
        vec![0]
    );
}

#[test]
fn keys_are_searchable_by_word_and_exactly() {
    let tail = committed(0, &[batch(Codec::Lz4, 40, &["a", "b", "c"])]);
    assert_eq!(offsets(&run(&[&tail], &request("key:41"))), vec![41]);
    assert_eq!(
        offsets(&run(&[&tail], &request("key_raw:\"key-42\""))),
        vec![42]
    );
    assert!(run(&[&tail], &request("key_raw:key")).is_empty());
}

#[test]
fn headers_are_searchable_and_returned() {
    let records = [
        NewRecord {
            timestamp_ms: NOW,
            key: None,
            value: Some(b"plain"),
            headers: &[(b"trace", Some(b"abc123")), (b"flag", None)],
        },
        NewRecord {
            timestamp_ms: NOW,
            key: None,
            value: None,
            headers: &[(b"other", Some(b"x"))],
        },
    ];
    let tail = committed(0, &[build_records_batch(Codec::Snappy, &records)]);
    let hits = run(&[&tail], &request("headers:trace"));
    assert_eq!(offsets(&hits), vec![0]);
    assert_eq!(
        hits[0].headers,
        vec![
            (
                Payload::Utf8("trace".into()),
                Some(Payload::Utf8("abc123".into()))
            ),
            (Payload::Utf8("flag".into()), None),
        ]
    );
    assert_eq!(hits[0].key, None);
    assert_eq!(offsets(&run(&[&tail], &request("abc123"))), vec![0]);
    // A tombstone: found by its header, no value.
    let hits = run(&[&tail], &request("headers:other"));
    assert_eq!((hits[0].offset, hits[0].value.clone()), (1, None));
}

#[test]
fn the_time_range_filters() {
    let tail = committed(0, &[filler(Codec::Gzip, 0, "rare")]);
    let mut r = request("lazy");
    r.from_ts_ms = Some(NOW + 10);
    r.to_ts_ms = Some(NOW + 13);
    assert_eq!(offsets(&run(&[&tail], &r)), vec![12, 11, 10]);
    r.to_ts_ms = None;
    r.from_ts_ms = Some(NOW + 98);
    assert_eq!(offsets(&run(&[&tail], &r)), vec![99, 98]);
    // An empty query with a range: every record in it.
    let r = SearchRequest {
        to_ts_ms: Some(NOW + 2),
        ..request("")
    };
    assert_eq!(offsets(&run(&[&tail], &r)), vec![1, 0]);
}

#[test]
fn the_partition_filters_across_indexes() {
    let zero = committed(0, &[filler(Codec::None, 0, "shared")]);
    let one = committed(1, &[filler(Codec::None, 500, "shared")]);
    let all = run(&[&zero, &one], &request("shared"));
    assert_eq!(offsets(&all), vec![571, 517, 71, 17]);
    let r = SearchRequest {
        partition: Some(1),
        ..request("shared")
    };
    let hits = run(&[&zero, &one], &r);
    assert_eq!(offsets(&hits), vec![571, 517]);
    assert!(hits.iter().all(|h| h.partition == 1));
}

#[test]
fn newest_first_and_the_limit_hold_across_indexes() {
    let older = committed(0, &[filler(Codec::None, 0, "rare")]);
    let newer = committed(0, &[filler(Codec::Zstd, 100, "rare")]);
    let r = SearchRequest {
        limit: 5,
        ..request("lazy")
    };
    assert_eq!(
        offsets(&run(&[&older, &newer], &r)),
        vec![199, 198, 197, 196, 195]
    );
    let r = SearchRequest {
        limit: 100_000,
        ..request("")
    };
    assert_eq!(run(&[&older, &newer], &r).len(), 200);
    let r = SearchRequest {
        limit: 0,
        ..request("lazy")
    };
    assert!(run(&[&older], &r).is_empty());
}

#[test]
fn score_order_puts_the_best_match_first() {
    let tail = committed(
        0,
        &[batch(
            Codec::None,
            0,
            &[
                "apple",
                "apple apple apple banana",
                "banana only",
                "apple pie",
            ],
        )],
    );
    let r = SearchRequest {
        order: Order::Score,
        ..request("apple")
    };
    let hits = run(&[&tail], &r);
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].offset, 1);
    assert!(hits.iter().all(|h| h.score.is_some()));
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn a_bad_query_is_bad_query_with_the_parser_message() {
    let tail = committed(0, &[batch(Codec::None, 0, &["a"])]);
    for q in ["value_text:(", "timestamp:notanumber", "offset:[1 TO"] {
        let searcher = tail.searcher();
        match search(&[&searcher], &request(q)) {
            Err(SearchError::BadQuery(message)) => assert!(!message.is_empty(), "{q}"),
            other => panic!("{q}: {other:?}"),
        }
    }
}

#[test]
fn binary_values_are_indexed_as_far_as_they_are_text_and_returned_in_base64() {
    let value = b"\xff\xfeprefix\x00\xc3middle\xffsuffix";
    let records = [NewRecord {
        timestamp_ms: NOW,
        key: Some(b"\x80key"),
        value: Some(value),
        headers: &[],
    }];
    let tail = committed(0, &[build_records_batch(Codec::Gzip, &records)]);
    for word in ["prefix", "middle", "suffix"] {
        let hits = run(&[&tail], &request(word));
        assert_eq!(offsets(&hits), vec![0], "{word}");
    }
    let hits = run(&[&tail], &request("middle"));
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    assert_eq!(hits[0].value, Some(Payload::Base64(b64(value))));
    assert_eq!(hits[0].key, Some(Payload::Base64(b64(b"\x80key"))));
}

#[test]
fn drop_below_forgets_archived_records_at_the_next_commit() {
    let mut tail = committed(
        0,
        &[
            filler(Codec::Lz4, 0, "rare"),
            filler(Codec::Lz4, 100, "rare"),
        ],
    );
    tail.drop_below(100).unwrap();
    assert_eq!(tail.offsets(), 100..200);
    assert!(tail.commit_if_due(NOW + TAIL_COMMIT_INTERVAL_MS).unwrap());
    assert_eq!(offsets(&run(&[&tail], &request("rare"))), vec![171, 117]);
    // Below the start already: nothing to do.
    tail.drop_below(50).unwrap();
    assert!(!tail
        .commit_if_due(NOW + 10 * TAIL_COMMIT_INTERVAL_MS)
        .unwrap());
}

#[test]
fn commits_wait_for_the_interval() {
    let mut tail = committed(0, &[batch(Codec::None, 0, &["first"])]);
    tail.add_batch(&batch(Codec::None, 1, &["second"])).unwrap();
    assert!(!tail
        .commit_if_due(NOW + TAIL_COMMIT_INTERVAL_MS - 1)
        .unwrap());
    assert!(run(&[&tail], &request("second")).is_empty());
    assert!(tail.commit_if_due(NOW + TAIL_COMMIT_INTERVAL_MS).unwrap());
    assert_eq!(offsets(&run(&[&tail], &request("second"))), vec![1]);
    // Nothing new: no commit.
    assert!(!tail
        .commit_if_due(NOW + 5 * TAIL_COMMIT_INTERVAL_MS)
        .unwrap());
}

#[test]
fn a_corrupt_batch_adds_nothing() {
    let mut tail = TailIndex::new(0).unwrap();
    let mut bad = filler(Codec::Zstd, 0, "rare");
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(tail.add_batch(&bad), Err(SearchError::Batch(_))));
    assert!(matches!(
        tail.add_batch(&bad[..20]),
        Err(SearchError::Batch(_))
    ));
    assert_eq!(tail.offsets(), 0..0);
}

fn segment_blob(codec: Codec) -> Vec<u8> {
    let mut builder = SegmentIndexBuilder::new(2).unwrap();
    for base in [0u64, 100, 200] {
        assert_eq!(
            builder
                .add_batch(&filler(codec, base, &format!("seg{base}")))
                .unwrap(),
            100
        );
    }
    builder.finish().unwrap().into_blob().unwrap()
}

#[test]
fn a_segment_index_round_trips_through_its_blob_in_every_codec() {
    for codec in Codec::ALL {
        let segment = SegmentIndex::open(segment_blob(codec)).unwrap();
        let tail = committed(2, &[filler(codec, 300, "seg100")]);
        let searchers = [segment.searcher(), tail.searcher()];
        let refs: Vec<_> = searchers.iter().collect();
        let hits = search(&refs, &request("seg100")).unwrap();
        assert_eq!(offsets(&hits), vec![371, 317, 171, 117], "{codec}");
        assert_eq!(hits[3].partition, 2);
        assert_eq!(
            hits[3].value,
            Some(Payload::Utf8("the quick seg100 fox 17".into()))
        );
        let every = search(
            &refs[..1],
            &SearchRequest {
                limit: 1000,
                ..request("")
            },
        )
        .unwrap();
        assert_eq!(every.len(), 300);
    }
}

/// The data of a blob, read on demand and counted, each block optionally
/// damaged: the archive member as [`SegmentIndex::open_ranged`] sees it.
struct CountedData {
    data: Vec<u8>,
    reads: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl RangeSource for CountedData {
    fn read(&self, range: std::ops::Range<u64>) -> std::io::Result<Vec<u8>> {
        use std::sync::atomic::Ordering::Relaxed;
        self.reads.fetch_add(1, Relaxed);
        self.bytes.fetch_add(range.end - range.start, Relaxed);
        Ok(self.data[range.start as usize..range.end as usize].to_vec())
    }
}

/// A segment of 40 batches of 100 records, each record's value 200
/// bytes of words no other record has: enough data for many blocks.
fn large_segment_blob() -> Vec<u8> {
    large_segment(SegmentIndexBuilder::new(0).unwrap())
        .into_blob()
        .unwrap()
}

fn large_segment(mut builder: SegmentIndexBuilder) -> BuiltIndex {
    for b in 0..40u64 {
        let values: Vec<String> = (0..100u64)
            .map(|i| {
                let n = b * 100 + i;
                let words: Vec<String> =
                    (0..24).map(|w| format!("w{}x{w}", n * 31 % 9973)).collect();
                format!("record{n} {}", words.join(" "))
            })
            .collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        builder
            .add_batch(&batch(Codec::Lz4, b * 100, &values))
            .unwrap();
    }
    builder.finish().unwrap()
}

/// A fresh directory under the build's target directory: a real disk,
/// as the data directory is.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tmp/search-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts that `q` finds the same records, some, in `a` and `b`.
fn assert_same_hits(a: &SegmentIndex, b: &SegmentIndex, q: &str) {
    let every = SearchRequest {
        limit: 5000,
        ..request(q)
    };
    let (a, b) = (run_segment(a, &every), run_segment(b, &every));
    assert!(!a.is_empty(), "{q}");
    assert_eq!(offsets(&a), offsets(&b), "{q}");
}

/// [`large_segment`] spilled to a scratch file in `dir`. About 21 KB of
/// records a batch (100 values of ~200 bytes and their keys): a chunk
/// ends at the fifth batch past 100 KB, so the 40 batches are 8 tantivy
/// segments in one blob.
fn spilled_large_segment(dir: &std::path::Path) -> BuiltIndex {
    let builder = SegmentIndexBuilder::spilling(0, dir)
        .unwrap()
        .with_chunk_records_bytes_max(100_000);
    large_segment(builder)
}

#[test]
fn a_segment_indexed_in_chunks_and_spilled_finds_what_one_chunk_does() {
    let dir = scratch("chunks");
    let spilled = spilled_large_segment(&dir);
    // Nothing is left in the directory: the scratch file has no name.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // The member streams exactly the blob.
    let len_bytes = spilled.len_bytes();
    let mut member = spilled.into_member(MemberKind::SEARCH_INDEX).unwrap();
    assert_eq!(member.len_bytes, len_bytes);
    let mut blob = Vec::new();
    std::io::Read::read_to_end(&mut member.bytes, &mut blob).unwrap();
    assert_eq!(blob.len() as u64, len_bytes);
    let whole = SegmentIndex::open(blob.clone()).unwrap();
    assert_eq!(whole.searcher().segment_readers().len(), 8);
    let one = SegmentIndex::open(large_segment_blob()).unwrap();
    assert_eq!(one.searcher().segment_readers().len(), 1);
    for q in [
        "record1234",
        "record0",
        "record3999",
        "w1550x3",
        "offset:[100 TO 2000]",
    ] {
        assert_same_hits(&whole, &one, q);
    }
    // Opened from its head as an archive's member is, every segment's
    // hot ranges came with it: opening reads no data.
    let (ranged, data) = open_ranged(&blob, false);
    assert_eq!(data.reads.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(
        offsets(&run_segment(&ranged, &request("record2345"))),
        vec![2345]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_spilled_index_is_searched_from_its_scratch_file() {
    let dir = scratch("opened");
    let spilled = spilled_large_segment(&dir);
    let blob_bytes = spilled.len_bytes();
    // As a local segment's index is: opened where it was built.
    let opened = spilled.open().unwrap();
    // In RAM: the head, and a block cache of at most its bound.
    let head_bytes = opened.held_bytes() - super::directory::BLOCK_CACHE_BYTES_MAX;
    assert!(
        head_bytes < blob_bytes / 2,
        "the head is not the blob: {head_bytes} of {blob_bytes}"
    );
    let in_ram = large_segment(SegmentIndexBuilder::new(0).unwrap())
        .open()
        .unwrap();
    // Built in RAM, it is held whole.
    assert_eq!(in_ram.held_bytes(), large_segment_blob().len() as u64);
    for q in ["record1234", "record3999", "offset:[100 TO 2000]"] {
        assert_same_hits(&opened, &in_ram, q);
    }
    // The scratch file has no name: nothing to clean up, then or now.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    drop(opened);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_scratch_directory_that_is_not_there_is_a_scratch_error() {
    let dir = scratch("missing").join("gone");
    assert!(matches!(
        SegmentIndexBuilder::spilling(0, &dir),
        Err(SearchError::Scratch { .. })
    ));
}

/// Opens `blob` as an archive's member would be: its header and head in
/// hand, its data read on demand from `data`.
fn open_ranged(blob: &[u8], damage_every_block: bool) -> (SegmentIndex, Arc<CountedData>) {
    let header = SegmentIndexHeader::parse(blob, blob.len() as u64).unwrap();
    let data_at = header.data_at() as usize;
    let mut data = blob[data_at..].to_vec();
    if damage_every_block {
        for at in (0..data.len()).step_by(DATA_BLOCK_BYTES as usize) {
            data[at] ^= 0x40;
        }
    }
    let data = Arc::new(CountedData {
        data,
        reads: 0.into(),
        bytes: 0.into(),
    });
    let index = SegmentIndex::open_ranged(&header, &blob[..data_at], data.clone()).unwrap();
    (index, data)
}

#[test]
fn an_index_opens_from_its_head_and_a_query_reads_a_few_blocks() {
    use std::sync::atomic::Ordering::Relaxed;
    let blob = large_segment_blob();
    let header = SegmentIndexHeader::parse(&blob, blob.len() as u64).unwrap();
    let data_bytes = blob.len() as u64 - header.data_at();
    assert!(
        data_bytes > 8 * DATA_BLOCK_BYTES,
        "{data_bytes} bytes of data"
    );
    // The head (with its hot ranges) is a small part of the blob.
    assert!(
        header.data_at() * 4 < blob.len() as u64,
        "{} of {}",
        header.data_at(),
        blob.len()
    );
    let whole = SegmentIndex::open(blob.clone()).unwrap();
    let (ranged, data) = open_ranged(&blob, false);
    assert_eq!(data.reads.load(Relaxed), 0, "opening read data");
    let expected = run_segment(&whole, &request("record2345"));
    assert_eq!(offsets(&expected), vec![2345]);
    assert_eq!(run_segment(&ranged, &request("record2345")), expected);
    let (reads, bytes) = (data.reads.load(Relaxed), data.bytes.load(Relaxed));
    assert!((1..=8).contains(&reads), "{reads} reads");
    assert!(bytes * 4 < data_bytes, "{bytes} of {data_bytes} bytes read");
    // The same query again reads nothing: its blocks are cached.
    assert_eq!(run_segment(&ranged, &request("record2345")), expected);
    assert_eq!(data.reads.load(Relaxed), reads);
    // Every filter and order gives what the whole blob gives.
    for request in [
        SearchRequest {
            from_offset: Some(1000),
            to_offset: Some(1010),
            ..request("")
        },
        SearchRequest {
            from_ts_ms: Some(NOW + 3990),
            ..request("")
        },
        SearchRequest {
            order: Order::Score,
            ..request("record17 OR record3999")
        },
        SearchRequest {
            limit: 1000,
            ..request("")
        },
    ] {
        assert_eq!(
            run_segment(&ranged, &request),
            run_segment(&whole, &request),
            "{request:?}"
        );
    }
}

fn run_segment(index: &SegmentIndex, request: &SearchRequest) -> Vec<Hit> {
    search(&[&index.searcher()], request).unwrap()
}

#[test]
fn a_local_index_failing_while_searched_is_reported_unindexed_and_the_rest_answers() {
    use super::indexer::Unindexed;
    use super::searcher::{serve_searches, PartitionView, SearchJob, SearcherShared};
    let blob = large_segment_blob();
    let (damaged, _) = open_ranged(&blob, true);
    let tail = committed(2, &[filler(Codec::None, 5000, "record2345")]);
    let view = PartitionView {
        tail: Some(tail.searcher()),
        local: vec![(0..4000, damaged.searcher())],
        ..PartitionView::default()
    };
    let shared = SearcherShared {
        store: Arc::default(),
        views: std::sync::Mutex::new([(("t".to_string(), 2), view)].into()),
        unindexed: Arc::new(Unindexed::default()),
    };
    let (jobs, queue) = crossbeam_channel::bounded(1);
    let (reply, answer) = crossbeam_channel::bounded(1);
    jobs.send(SearchJob {
        topic: "t".into(),
        request: request("record2345"),
        reply,
    })
    .unwrap();
    drop(jobs);
    // Serves the one search, then ends: its queue is closed.
    serve_searches(0, &queue, &shared);
    let found = answer.recv().unwrap().expect("the search answers");
    // The tail's hit, and the damaged local index's offsets reported.
    assert_eq!(offsets(&found.hits), vec![5071, 5017]);
    let damaged_offsets: Vec<std::ops::Range<u64>> = std::iter::once(0..4000).collect();
    assert_eq!(found.unindexed, [(2, damaged_offsets)].into());
}

#[test]
fn a_damaged_data_block_fails_only_the_search_of_its_index() {
    let blob = large_segment_blob();
    let (damaged, _) = open_ranged(&blob, true);
    let tail = committed(2, &[filler(Codec::None, 0, "record2345")]);
    let searchers = [tail.searcher(), damaged.searcher()];
    let refs: Vec<_> = searchers.iter().collect();
    let Searched { hits, failed } = search_each(&refs, &request("record2345")).unwrap();
    assert_eq!(offsets(&hits), vec![71, 17]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 1);
    let message = failed[0].1.to_string();
    assert!(
        message.contains("data block") && message.contains("crc32c"),
        "{message}"
    );
    assert!(search(&refs, &request("record2345")).is_err());
}

fn corrupt(blob: Vec<u8>) -> Corruption {
    match SegmentIndex::open(blob) {
        Err(SearchError::Corrupt(c)) => c,
        Err(other) => panic!("not a corruption: {other}"),
        Ok(_) => panic!("a damaged blob opened"),
    }
}

/// `blob` with its header's crc32c recomputed, so a change to the header
/// or head reaches the checks behind the checksum.
fn resealed(mut blob: Vec<u8>) -> Vec<u8> {
    let header = SegmentIndexHeader::parse(&blob, blob.len() as u64).unwrap();
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&blob[..34]),
        &blob[SEGMENT_INDEX_HEADER_BYTES..header.data_at() as usize],
    );
    blob[34..38].copy_from_slice(&crc.to_le_bytes());
    blob
}

#[test]
fn a_blob_with_a_bad_magic_is_corrupt() {
    let mut blob = segment_blob(Codec::None);
    blob[0] ^= 1;
    assert_eq!(corrupt(blob), Corruption::BadMagic);
}

#[test]
fn a_blob_with_an_unknown_version_is_corrupt() {
    let mut blob = segment_blob(Codec::None);
    blob[8..10].copy_from_slice(&7u16.to_le_bytes());
    assert_eq!(corrupt(blob), Corruption::BadVersion(7));
}

#[test]
fn a_blob_with_a_damaged_head_is_corrupt() {
    let mut blob = segment_blob(Codec::None);
    blob[SEGMENT_INDEX_HEADER_BYTES + 3] ^= 0x10;
    assert!(matches!(corrupt(blob), Corruption::BadChecksum { .. }));
}

#[test]
fn a_blob_with_a_damaged_data_block_is_corrupt() {
    let mut blob = segment_blob(Codec::None);
    let last = blob.len() - 1;
    blob[last] ^= 0x10;
    assert!(matches!(corrupt(blob), Corruption::DataBlock { .. }));
}

#[test]
fn a_blob_whose_file_table_disagrees_is_corrupt() {
    let mut blob = segment_blob(Codec::None);
    let files = u32::from_le_bytes(blob[10..14].try_into().unwrap());
    blob[10..14].copy_from_slice(&(files + 1).to_le_bytes());
    assert!(matches!(corrupt(resealed(blob)), Corruption::FileTable(_)));
}

#[test]
fn a_blob_with_bytes_after_its_data_is_corrupt() {
    let mut blob = segment_blob(Codec::None);
    blob.push(0);
    assert_eq!(corrupt(blob), Corruption::FileTable("bytes after the data"));
}

#[test]
fn a_truncated_blob_is_corrupt() {
    let blob = segment_blob(Codec::None);
    for cut in [0, 10, 37, 38, blob.len() / 2, blob.len() - 1] {
        assert_eq!(
            corrupt(blob[..cut].to_vec()),
            Corruption::Truncated {
                actual_bytes: cut as u64
            },
            "cut at {cut}"
        );
    }
}
