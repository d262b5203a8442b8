//! The store layer against a local directory (under `target/`), against
//! object_store's in-memory store for multipart uploads, and against a
//! store that fails on demand for retries; `ArchiveTarget::parse` cases.
//! S3 itself is tested against a moto server in `shard/tests/s3_store.rs`.

use super::store::{http_status, spawn_store, store_runtime, Backend, Limits};
use super::*;
use bytes::Bytes;
use futures_lite::future::{block_on, poll_once};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::memory::InMemory;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartId, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fresh directory under `target/` (direct children of the crate's
/// target directory, never a tmpfs).
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tmp/tiered")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `len` bytes that differ at every offset modulo 251, so a range read
/// from the wrong place does not compare equal.
fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Limits for tests: millisecond backoff, tiny multipart thresholds.
fn quick_limits() -> Limits {
    Limits {
        attempts_max: 3,
        backoff_first: Duration::from_millis(1),
        backoff_max: Duration::from_millis(2),
        put_single_bytes_max: 4096,
        put_part_bytes: 3000,
        ..Limits::DEFAULT
    }
}

fn spawn_with<S: ObjectStore + MultipartStore>(store: Arc<S>, limits: Limits) -> StoreHandle {
    let backend = Backend {
        objects: store.clone(),
        multipart: Some(store),
        local: None,
    };
    spawn_store(
        store_runtime("test").unwrap(),
        backend,
        "memory".into(),
        "test",
        limits,
        None,
        None,
    )
    .unwrap()
}

fn local_store(name: &str) -> (StoreHandle, PathBuf) {
    let dir = test_dir(name);
    let target = ArchiveTarget::Local { dir: dir.clone() };
    let store = start_store(&target, name)
        .unwrap()
        .expect("a local target has a store");
    (store, dir)
}

#[test]
fn parse_accepts_off_s3_and_directories() {
    let data = Path::new("/srv/ringlog");
    assert_eq!(
        ArchiveTarget::parse("off", None, data),
        Ok(ArchiveTarget::Off)
    );
    assert_eq!(
        ArchiveTarget::parse("s3://logs", None, data),
        Ok(ArchiveTarget::S3 {
            bucket: "logs".into(),
            prefix: String::new(),
            endpoint: None
        })
    );
    assert_eq!(
        ArchiveTarget::parse("s3://logs.eu-1/a/b/", Some("http://127.0.0.1:9000"), data),
        Ok(ArchiveTarget::S3 {
            bucket: "logs.eu-1".into(),
            prefix: "a/b".into(),
            endpoint: Some("http://127.0.0.1:9000".into())
        })
    );
    assert_eq!(
        ArchiveTarget::parse("/mnt/archive", None, data),
        Ok(ArchiveTarget::Local {
            dir: "/mnt/archive".into()
        })
    );
    // The default, beside the broker's own directories, is allowed.
    assert_eq!(
        ArchiveTarget::parse("/srv/ringlog/archive", None, data),
        Ok(ArchiveTarget::default_for(data))
    );
    assert_eq!(
        ArchiveTarget::parse("relative/dir", None, data),
        Ok(ArchiveTarget::Local {
            dir: "relative/dir".into()
        })
    );
    let s3 = ArchiveTarget::parse("s3://logs/p", Some("https://minio.local"), data).unwrap();
    assert_eq!(s3.to_string(), "s3://logs/p at https://minio.local");
    assert_eq!(
        ArchiveTarget::default_for(data).to_string(),
        "/srv/ringlog/archive"
    );
}

#[test]
fn parse_refuses_bad_values_naming_them() {
    let data = Path::new("/srv/ringlog");
    let refused = |archive: &str, endpoint: Option<&str>, says: &str| {
        let err = ArchiveTarget::parse(archive, endpoint, data).unwrap_err();
        assert!(err.contains(says), "{archive:?} {endpoint:?}: {err}");
    };
    refused("", None, "empty");
    refused("  ", None, "empty");
    refused("s3://", None, "no bucket name");
    refused("s3:///prefix", None, "no bucket name");
    refused("s3://ab", None, "bad bucket name \"ab\"");
    refused("s3://Logs", None, "bad bucket name \"Logs\"");
    refused("s3://logs_x", None, "bad bucket name");
    refused("s3://-logs", None, "bad bucket name");
    refused(&format!("s3://{}", "a".repeat(64)), None, "bad bucket name");
    refused("s3://logs//x", None, "bad prefix \"/x\"");
    refused("s3://logs/a//b", None, "bad prefix");
    refused("s3://logs/a/../b", None, "bad prefix");
    refused(
        "s3://logs",
        Some("localhost:9000"),
        "--s3-endpoint localhost:9000: not a URL",
    );
    refused("s3://logs", Some("http://"), "not a URL");
    refused("gs://logs", None, "unsupported scheme gs://");
    refused("file:///tmp/a", None, "unsupported scheme file://");
    refused(
        "off",
        Some("http://127.0.0.1:9000"),
        "is not an s3:// target",
    );
    refused(
        "/mnt/archive",
        Some("http://127.0.0.1:9000"),
        "is not an s3:// target",
    );
    refused("/srv/ringlog", None, "must not contain the data directory");
    refused("/srv", None, "must not contain the data directory");
    refused(
        "/srv/ringlog/topics/x",
        None,
        "inside the broker's own topics/",
    );
    refused("/srv/ringlog/meta", None, "inside the broker's own meta/");
    refused(
        "/srv/ringlog/cache/a",
        None,
        "inside the broker's own cache/",
    );
}

#[test]
fn off_has_no_store_and_nothing_to_check() {
    assert!(start_store(&ArchiveTarget::Off, "0").unwrap().is_none());
    check(&ArchiveTarget::Off).unwrap();
}

#[test]
fn local_directory_puts_reads_lists_and_deletes() {
    let (store, dir) = local_store("local-roundtrip");
    let key = "topics/t1/0/00000000000000000000-00000000000000000099.rla";
    let other = "topics/t1/1/00000000000000000000-00000000000000000009.rla";
    let apart = "topics/t10/0/a.rla";
    block_on(async {
        let bytes = pattern(10_000);
        store.put(key, bytes.clone()).await.unwrap();
        store.put(other, pattern(10)).await.unwrap();
        store.put(apart, pattern(3)).await.unwrap();
        assert!(
            dir.join(key).is_file(),
            "keys are paths under the directory"
        );

        assert_eq!(store.size(key).await, Ok(Some(10_000)));
        assert_eq!(store.get_range(key, 0..10_000).await.unwrap(), bytes);
        assert_eq!(
            store.get_range(key, 4000..4100).await.unwrap(),
            bytes.slice(4000..4100)
        );

        // What a crash in the middle of an archive's write leaves is
        // never listed (and so never taken for an archive).
        let staging = format!(
            "{}{}",
            dir.join(other).display(),
            ringlog_engine::archive::STAGING_SUFFIX
        );
        std::fs::write(&staging, b"half an archive").unwrap();
        let mut listed = store.list("topics/t1").await.unwrap();
        listed.sort();
        assert_eq!(
            listed,
            vec![(key.to_string(), 10_000), (other.to_string(), 10)]
        );
        assert_eq!(store.list("").await.unwrap().len(), 3);
        assert_eq!(store.list("topics/none").await, Ok(Vec::new()));

        // Putting the same key again replaces the object.
        store.put(key, pattern(5)).await.unwrap();
        assert_eq!(store.size(key).await, Ok(Some(5)));

        store.delete(key).await.unwrap();
        assert_eq!(store.size(key).await, Ok(None));
        store.delete(key).await.unwrap();
        let missing = store.get_range(key, 0..1).await.unwrap_err();
        assert_eq!(
            missing,
            StoreError::NotFound {
                store: dir.display().to_string(),
                key: key.into()
            }
        );
        let shown = missing.to_string();
        assert!(
            shown.contains(&dir.display().to_string()) && shown.contains(key),
            "{shown}"
        );
        assert!(!missing.is_transient());

        // Deleting a partition's last object leaves no empty directory.
        std::fs::remove_file(&staging).unwrap();
        store.delete(other).await.unwrap();
        assert!(!dir.join("topics/t1").exists());
        assert!(dir.is_dir());
    });
    let stats = store.stats();
    assert_eq!((stats.puts, stats.put_bytes), (4, 10_000 + 10 + 3 + 5));
    assert_eq!(
        (stats.retries, stats.failures),
        (0, 0),
        "a missing object is no failure"
    );
    assert_eq!((stats.queued, stats.in_flight), (0, 0));
}

#[test]
fn local_directory_takes_objects_above_the_multipart_threshold() {
    let (store, dir) = local_store("local-large");
    let len = 2 * PUT_SINGLE_BYTES_MAX + 12_345;
    let bytes = pattern(len);
    let key = "topics/t/0/big.rla";
    block_on(async {
        store.put(key, bytes.clone()).await.unwrap();
        assert_eq!(store.size(key).await, Ok(Some(len as u64)));
        let across = (PUT_PART_BYTES as u64 - 10)..(PUT_PART_BYTES as u64 + 10);
        assert_eq!(
            store.get_range(key, across.clone()).await.unwrap(),
            bytes.slice(across.start as usize..across.end as usize)
        );
        let tail = (len as u64 - 100)..len as u64;
        assert_eq!(
            store.get_range(key, tail).await.unwrap(),
            bytes.slice(len - 100..)
        );
    });
    assert_eq!(std::fs::read(dir.join(key)).unwrap(), bytes);
}

#[test]
fn keys_and_ranges_are_checked_before_the_store_is_asked() {
    let (store, dir) = local_store("local-bad-keys");
    block_on(async {
        for key in ["", "/a", "a/", "a//b", "a/./b", "a/../b", ".."] {
            let err = store.put(key, pattern(1)).await.unwrap_err();
            assert!(matches!(err, StoreError::BadKey { .. }), "{key:?}: {err}");
            assert!(err.to_string().contains(&format!("{key:?}")), "{err}");
        }
        assert!(matches!(
            store.list("a//b").await,
            Err(StoreError::BadKey { .. })
        ));
        store.put("k", pattern(10)).await.unwrap();
        let empty = store.get_range("k", 5..5).await.unwrap_err();
        assert!(matches!(empty, StoreError::Refused { .. }), "{empty}");
        let past_end = store.get_range("k", 5..20).await.unwrap_err();
        assert!(matches!(past_end, StoreError::Refused { .. }), "{past_end}");
    });
    assert_eq!(store.stats().retries, 0, "a bad range is not retried");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn large_objects_go_up_in_parts() {
    let flaky = Arc::new(Flaky::default());
    let store = spawn_with(flaky.clone(), quick_limits());
    let bytes = pattern(10_000);
    block_on(async {
        store.put("small", pattern(4096)).await.unwrap();
        assert_eq!(
            flaky.part_calls.load(Ordering::Relaxed),
            0,
            "at the threshold: one PUT"
        );
        store.put("big", bytes.clone()).await.unwrap();
        assert_eq!(
            flaky.part_calls.load(Ordering::Relaxed),
            4,
            "10000 bytes in parts of 3000"
        );
        assert_eq!(store.get_range("big", 0..10_000).await.unwrap(), bytes);
        assert_eq!(store.size("big").await, Ok(Some(10_000)));
    });
    assert_eq!(store.stats().puts, 2);
}

/// A sealed segment file of `batches` batches of 100-byte records from
/// offset 0, as the log writes one: file header, a frame per batch, the
/// footer frame.
fn sealed_segment(name: &str, batches: usize) -> (PathBuf, Vec<u8>) {
    use ringlog_engine::format::{
        encode_footer, encode_frame_header, encode_segment_header, FrameHeader, SegmentFooter,
        SegmentHeader, SegmentKind, FLAG_FOOTER, FRAME_HEADER_BYTES,
    };
    let mut file = encode_segment_header(&SegmentHeader {
        kind: SegmentKind::Partition,
        base_offset: 0,
        created_ms: 0,
    })
    .to_vec();
    let mut records = Vec::new();
    let mut frame = |payload: &[u8], base_offset: u64, count: u32, flags: u16| {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        let h = FrameHeader {
            payload_len: payload.len() as u32,
            base_offset,
            max_timestamp_ms: 1000,
            count,
            flags,
        };
        encode_frame_header(&mut header, &h, payload);
        file.extend_from_slice(&header);
        file.extend_from_slice(payload);
    };
    let value = [b'v'; 100];
    for i in 0..batches {
        let mut batch = ringlog_engine::batch::build_batch(1000, &[&value, &value]);
        ringlog_engine::batch::set_base_offset(&mut batch, 2 * i as u64);
        frame(&batch, 2 * i as u64, 2, 0);
        records.extend_from_slice(&batch);
    }
    let footer = SegmentFooter {
        end_offset: 2 * batches as u64,
        ..SegmentFooter::default()
    };
    frame(&encode_footer(&footer), footer.end_offset, 0, FLAG_FOOTER);
    let dir = test_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("00000000000000000000.log");
    std::fs::write(&path, &file).unwrap();
    (path, records)
}

fn segment_meta() -> ringlog_engine::archive::ArchiveMeta {
    ringlog_engine::archive::ArchiveMeta {
        topic_id: [3; 16],
        topic: "t".into(),
        partition: 0,
    }
}

#[test]
fn archives_stream_to_s3_in_parts_and_a_bad_segment_leaves_nothing() {
    use ringlog_engine::archive::verify_all;
    let flaky = Arc::new(Flaky::default());
    let store = spawn_with(flaky.clone(), quick_limits());
    // About 12 KiB of batches: parts of 3000 bytes as they are built.
    let (segment, records) = sealed_segment("s3-streamed", 40);
    block_on(async {
        let archived = store
            .put_segment("big", segment_meta(), segment.clone(), Vec::new())
            .await
            .unwrap();
        let object = store.get_range("big", 0..archived.len_bytes).await.unwrap();
        let report = verify_all(&object).unwrap();
        assert_eq!(report.footer, archived.footer);
        assert!(object.starts_with(&records));
        let parts = flaky.part_calls.load(Ordering::Relaxed);
        assert_eq!(parts as u64, archived.len_bytes.div_ceil(3000));

        // One part's worth goes up in one PUT.
        let (small, _) = sealed_segment("s3-small", 2);
        let archived = store
            .put_segment("small", segment_meta(), small, Vec::new())
            .await
            .unwrap();
        assert!(archived.len_bytes <= 3000);
        assert_eq!(flaky.part_calls.load(Ordering::Relaxed), parts);
        assert_eq!(store.size("small").await, Ok(Some(archived.len_bytes)));

        // A segment cut short (no footer) fails after parts went up: the
        // upload is aborted and no object appears.
        let image = std::fs::read(&segment).unwrap();
        std::fs::write(&segment, &image[..image.len() - 100]).unwrap();
        let err = store
            .put_segment("torn", segment_meta(), segment.clone(), Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("torn"), "{err}");
        assert_eq!(flaky.aborts.load(Ordering::Relaxed), 1);
        assert_eq!(store.size("torn").await, Ok(None));

        // A store that fails every attempt stops the building too.
        std::fs::write(&segment, &image).unwrap();
        flaky.transient.store(u32::MAX, Ordering::Relaxed);
        let err = store
            .put_segment("down", segment_meta(), segment, Vec::new())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        flaky.transient.store(0, Ordering::Relaxed);
        assert_eq!(store.size("down").await, Ok(None));
    });
    assert_eq!(store.stats().puts, 2);
}

#[test]
fn transient_failures_are_retried_and_counted() {
    let flaky = Arc::new(Flaky::default());
    let store = spawn_with(flaky.clone(), quick_limits());
    block_on(async {
        flaky.transient.store(2, Ordering::Relaxed);
        store.put("a", pattern(100)).await.unwrap();
        assert_eq!(store.stats().retries, 2);

        // A failed part is sent again on its own; the others once.
        flaky.transient.store(1, Ordering::Relaxed);
        store.put("big", pattern(10_000)).await.unwrap();
        assert_eq!(flaky.part_calls.load(Ordering::Relaxed), 5);
        assert_eq!(
            store.get_range("big", 0..10_000).await.unwrap(),
            pattern(10_000)
        );

        flaky.transient.store(1, Ordering::Relaxed);
        assert_eq!(
            store.get_range("a", 10..20).await.unwrap(),
            pattern(100).slice(10..20)
        );
    });
    let stats = store.stats();
    assert_eq!((stats.retries, stats.failures, stats.puts), (4, 0, 2));
}

#[test]
fn attempts_are_bounded() {
    let flaky = Arc::new(Flaky::default());
    let store = spawn_with(flaky.clone(), quick_limits());
    flaky.transient.store(u32::MAX, Ordering::Relaxed);
    let err = block_on(store.put("topics/x/0/1-2.rla", pattern(10))).unwrap_err();
    assert!(err.is_transient(), "{err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("memory: put topics/x/0/1-2.rla: unavailable:")
            && shown.contains("connection refused"),
        "{shown}"
    );
    let stats = store.stats();
    assert_eq!((stats.retries, stats.failures, stats.puts), (2, 1, 0));

    // A multipart upload that fails is aborted: no upload is left behind.
    let err = block_on(store.put("big", pattern(10_000))).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(flaky.aborts.load(Ordering::Relaxed), 1);
}

#[test]
fn refusals_are_not_retried() {
    let flaky = Arc::new(Flaky::default());
    let store = spawn_with(flaky.clone(), quick_limits());
    flaky.refuse.store(true, Ordering::Relaxed);
    let err = block_on(store.put("k", pattern(10))).unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("access denied"), "{err}");
    let stats = store.stats();
    assert_eq!((stats.retries, stats.failures), (0, 1));
}

#[test]
fn a_full_queue_makes_callers_wait() {
    let slow = Arc::new(ThrottledStore::new(
        InMemory::new(),
        ThrottleConfig {
            wait_put_per_call: Duration::from_millis(400),
            ..ThrottleConfig::default()
        },
    ));
    let limits = Limits {
        requests_queued_max: 2,
        ops_in_flight_max: 2,
        ..quick_limits()
    };
    let store = spawn_with(slow, limits);
    block_on(async {
        let keys: Vec<String> = (0..7).map(|i| format!("k{i}")).collect();
        let mut puts: Vec<_> = keys
            .iter()
            .map(|key| Box::pin(store.put(key, pattern(10))))
            .collect();
        // Poll every caller until the thread holds two and the queue two.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for put in &mut puts {
                assert!(
                    poll_once(put).await.is_none(),
                    "a put ended before its time"
                );
            }
            let stats = store.stats();
            assert!(stats.queued <= 2 && stats.in_flight <= 2, "{stats:?}");
            if (stats.queued, stats.in_flight) == (2, 2) {
                break;
            }
            assert!(Instant::now() < deadline, "never filled: {stats:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The three others wait to be queued; all finish in turn.
        for put in puts {
            put.await.unwrap();
        }
    });
    let stats = store.stats();
    assert_eq!((stats.puts, stats.queued, stats.in_flight), (7, 0, 0));
}

#[test]
fn glommio_tasks_await_answers_without_blocking_their_reactor() {
    let (store, _dir) = local_store("local-glommio");
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            // A timer task on the same reactor keeps ticking while the
            // store works.
            let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
            let ticking = ticks.clone();
            let _ticker = glommio::spawn_local(async move {
                for _ in 0..1000 {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                    ticking.set(ticking.get() + 1);
                }
            })
            .detach();
            let bytes = pattern(3 * PUT_SINGLE_BYTES_MAX);
            for i in 0..4 {
                store.put(&format!("g/{i}"), bytes.clone()).await.unwrap();
            }
            assert_eq!(
                store.get_range("g/3", 7..9).await.unwrap(),
                bytes.slice(7..9)
            );
            assert!(ticks.get() > 0, "the reactor ran other tasks meanwhile");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn check_creates_a_local_directory_and_names_one_it_cannot_use() {
    let dir = test_dir("check-local").join("archive");
    check(&ArchiveTarget::Local { dir: dir.clone() }).unwrap();
    assert!(dir.is_dir());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "the probe is gone"
    );

    let file = test_dir("check-local-file");
    std::fs::create_dir_all(&file).unwrap();
    let file = file.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("archive");
    let err = check(&ArchiveTarget::Local {
        dir: under_file.clone(),
    })
    .unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    assert!(
        err.to_string().contains(&under_file.display().to_string()),
        "{err}"
    );
}

#[test]
fn http_statuses_are_read_from_request_errors() {
    let text = "Error performing GET http://h/b in 1ms - Server returned non-2xx status code: 503 Service Unavailable: <Error/>";
    assert_eq!(http_status(text), Some(503));
    assert_eq!(http_status("status code: 404 Not Found"), Some(404));
    assert_eq!(http_status("status code: 40"), None);
    assert_eq!(http_status("status code: abc"), None);
    assert_eq!(http_status("connection refused"), None);
}

/// An in-memory store that fails on demand: the next `transient` puts,
/// parts or gets fail as if the connection was refused; with `refuse`,
/// they fail as if the credentials were refused.
#[derive(Debug, Default)]
struct Flaky {
    inner: InMemory,
    transient: AtomicU32,
    refuse: AtomicBool,
    part_calls: AtomicU32,
    aborts: AtomicU32,
}

impl Flaky {
    fn fault(&self) -> object_store::Result<()> {
        if self.refuse.load(Ordering::Relaxed) {
            return Err(object_store::Error::PermissionDenied {
                path: "k".into(),
                source: "access denied".into(),
            });
        }
        let failing = self
            .transient
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if failing.is_ok() {
            let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            return Err(object_store::Error::Generic {
                store: "Flaky",
                source: Box::new(HttpError::new(HttpErrorKind::Connect, refused)),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flaky")
    }
}

type MetaStream =
    Pin<Box<dyn futures_lite::Stream<Item = object_store::Result<ObjectMeta>> + Send>>;
type PathStream =
    Pin<Box<dyn futures_lite::Stream<Item = object_store::Result<ObjectPath>> + Send>>;

#[async_trait::async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.fault()?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.fault()?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: PathStream) -> PathStream {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> MetaStream {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[async_trait::async_trait]
impl MultipartStore for Flaky {
    async fn create_multipart(&self, path: &ObjectPath) -> object_store::Result<MultipartId> {
        self.inner.create_multipart(path).await
    }

    async fn put_part(
        &self,
        path: &ObjectPath,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> object_store::Result<PartId> {
        self.part_calls.fetch_add(1, Ordering::Relaxed);
        self.fault()?;
        self.inner.put_part(path, id, part_idx, data).await
    }

    async fn complete_multipart(
        &self,
        path: &ObjectPath,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> object_store::Result<PutResult> {
        self.inner.complete_multipart(path, id, parts).await
    }

    async fn abort_multipart(
        &self,
        path: &ObjectPath,
        id: &MultipartId,
    ) -> object_store::Result<()> {
        self.aborts.fetch_add(1, Ordering::Relaxed);
        self.inner.abort_multipart(path, id).await
    }
}
