//! The store layer against a real S3 server: moto (`python3 -m
//! moto.server`, from `moto[server]` on PyPI, which ci/python_deps.sh
//! installs) on 127.0.0.1, started and stopped by the test. Small and
//! multipart puts, ranged gets, sizes, lists under a prefix, deletes;
//! the start-up check on a missing bucket and on a server that is down;
//! the same handle working again once the server is back.
//!
//! moto is required, not optional: without it the test fails and says
//! how to install it.

use bytes::Bytes;
use futures_lite::future::block_on;
use ringlog_shard::tiered::{
    check, start_store, ArchiveTarget, StoreError, PUT_PART_BYTES, PUT_SINGLE_BYTES_MAX,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "ringlog-test";
/// moto answers within a few seconds of starting; this bounds the wait.
const MOTO_START_S: u64 = 60;
/// Time limit of one raw HTTP exchange with moto.
const HTTP_TIMEOUT_S: u64 = 10;

/// A moto server on 127.0.0.1, killed when dropped (also when a test
/// panics).
struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// Starts moto on `port` (a free one if `None`) and waits until it
    /// accepts connections.
    fn start(port: Option<u16>) -> Moto {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .output()
            .expect("python3 runs");
        assert!(
            installed.status.success(),
            "moto[server] is not installed for python3 (ci/python_deps.sh installs the pinned version; or pip install 'moto[server]'): {}",
            String::from_utf8_lossy(&installed.stderr)
        );
        let port = port.unwrap_or_else(|| {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        });
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("python3 -m moto.server starts");
        let mut moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(MOTO_START_S);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!("moto exited with {status}: {}", moto.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "moto did not listen within {MOTO_START_S} s: {}",
                moto.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One HTTP/1.1 request without a body; moto takes unsigned requests.
    /// Returns the whole response.
    fn http(&self, method: &str, target: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(HTTP_TIMEOUT_S)))
            .unwrap();
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// object_store cannot create buckets; S3's CreateBucket is a PUT of
    /// the bucket's path.
    fn create_bucket(&self, bucket: &str) {
        let response = self.http("PUT", &format!("/{bucket}"));
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket {bucket}: {response}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Credentials moto accepts, in the variables the store reads. Set
/// before any store exists, so no credential lookup leaves the host.
fn test_credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::remove_var("AWS_SESSION_TOKEN");
    std::env::remove_var("AWS_ENDPOINT");
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("s3-store-data")
}

/// `len` bytes that differ at every offset modulo 251.
fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[test]
fn s3_store_against_moto() {
    test_credentials();
    let moto = Moto::start(None);
    moto.create_bucket(BUCKET);
    let endpoint = moto.endpoint();
    let target = ArchiveTarget::parse(
        &format!("s3://{BUCKET}/cluster-a"),
        Some(&endpoint),
        &data_dir(),
    )
    .unwrap();
    check(&target).unwrap_or_else(|e| panic!("check: {e}\n{}", moto.log_text()));
    let store = start_store(&target, "s3test")
        .unwrap()
        .expect("an S3 target has a store");

    let small_key = "topics/t/0/00000000000000000000-00000000000000000009.rla";
    let large_key = "topics/t/0/00000000000000000010-00000000000000000099.rla";
    let small = pattern(1000);
    let large_len = 2 * PUT_PART_BYTES + 1234;
    assert!(
        large_len > PUT_SINGLE_BYTES_MAX,
        "the large object goes up in parts"
    );
    let large = pattern(large_len);
    block_on(async {
        store.put(small_key, small.clone()).await.unwrap();
        store.put(large_key, large.clone()).await.unwrap();

        assert_eq!(store.size(small_key).await, Ok(Some(1000)));
        assert_eq!(store.size(large_key).await, Ok(Some(large_len as u64)));
        assert_eq!(
            store.get_range(small_key, 100..200).await.unwrap(),
            small.slice(100..200)
        );
        let across = (PUT_PART_BYTES - 5) as u64..(PUT_PART_BYTES + 5) as u64;
        assert_eq!(
            store.get_range(large_key, across).await.unwrap(),
            large.slice(PUT_PART_BYTES - 5..PUT_PART_BYTES + 5)
        );
        let tail = (large_len - 7) as u64..large_len as u64;
        assert_eq!(
            store.get_range(large_key, tail).await.unwrap(),
            large.slice(large_len - 7..)
        );
        let whole = store
            .get_range(large_key, 0..large_len as u64)
            .await
            .unwrap();
        assert!(whole == large, "the multipart object reads back whole");

        let mut listed = store.list("topics/t").await.unwrap();
        listed.sort();
        assert_eq!(
            listed,
            vec![
                (small_key.to_string(), 1000),
                (large_key.to_string(), large_len as u64)
            ]
        );
        assert_eq!(store.list("topics/none").await, Ok(Vec::new()));
    });

    // The keys live under the prefix in the bucket.
    let listing = moto.http("GET", &format!("/{BUCKET}?list-type=2"));
    assert!(
        listing.contains(&format!("<Key>cluster-a/{small_key}</Key>")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("<Key>cluster-a/{large_key}</Key>")),
        "{listing}"
    );
    assert!(
        !listing.contains("ringlog-start-check"),
        "the check's probe is deleted: {listing}"
    );

    block_on(async {
        store.delete(small_key).await.unwrap();
        assert_eq!(store.size(small_key).await, Ok(None));
        store.delete(small_key).await.unwrap();
        let missing = store.get_range(small_key, 0..1).await.unwrap_err();
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        let shown = missing.to_string();
        assert!(
            shown.contains("s3://ringlog-test/cluster-a") && shown.contains(small_key),
            "{shown}"
        );
    });
    let stats = store.stats();
    assert_eq!(
        (stats.puts, stats.put_bytes, stats.retries, stats.failures),
        (2, (1000 + large_len) as u64, 0, 0)
    );

    // A bucket that does not exist fails the start-up check, named.
    let missing =
        ArchiveTarget::parse("s3://no-such-bucket", Some(&endpoint), &data_dir()).unwrap();
    let err = check(&missing).unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, StoreError::Refused { .. }), "{shown}");
    assert!(
        shown.contains("s3://no-such-bucket") && shown.contains("NoSuchBucket"),
        "{shown}"
    );
    println!("check of a missing bucket: {shown}");

    // The server goes down: the check says so (transient, named); the
    // same handle works again once the server is back.
    let port = moto.port;
    drop(moto);
    let err = check(&target).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string().contains("s3://ringlog-test/cluster-a"),
        "{err}"
    );
    println!("check with the server down: {err}");
    let moto = Moto::start(Some(port));
    moto.create_bucket(BUCKET);
    block_on(async {
        store.put(small_key, small.clone()).await.unwrap();
        assert_eq!(store.get_range(small_key, 0..1000).await.unwrap(), small);
    });
    assert_eq!(store.stats().failures, 0);
    println!("stats: {:?}", store.stats());
}

#[test]
fn check_names_an_endpoint_nobody_listens_on() {
    test_credentials();
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let target = ArchiveTarget::parse(
        "s3://nobody-home",
        Some(&format!("http://127.0.0.1:{port}")),
        &data_dir(),
    )
    .unwrap();
    let err = check(&target).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("s3://nobody-home"), "{err}");
}

/// Reads of a remote archive go through the chunk cache: the bytes are
/// the object's, the chunks land in the cache directory (the read-ahead
/// one too for a sequential reader), and a read served from the cache
/// still answers after the store is gone.
#[test]
fn reads_through_the_chunk_cache_against_moto() {
    use ringlog_shard::tiered::{start_store_with_cache, CacheSettings, CHUNK_BYTES};
    test_credentials();
    let moto = Moto::start(None);
    moto.create_bucket(BUCKET);
    let target = ArchiveTarget::parse(
        &format!("s3://{BUCKET}/cached"),
        Some(&moto.endpoint()),
        &data_dir(),
    )
    .unwrap();
    let cache_dir = data_dir().join("chunk-cache");
    let store = start_store_with_cache(
        &target,
        "s3cache",
        CacheSettings {
            dir: cache_dir.clone(),
            bytes_max: 8 * CHUNK_BYTES,
            read_bytes_per_s: 1 << 30,
        },
    )
    .unwrap()
    .expect("an S3 target has a store");
    let key = "topics/t/0/00000000000000000000-00000000000000000999.rla";
    let len = 3 * CHUNK_BYTES as usize + 777;
    let object = pattern(len);
    let chunk_files = || std::fs::read_dir(&cache_dir).unwrap().count();
    block_on(async {
        store.put(key, object.clone()).await.unwrap();
        assert_eq!(chunk_files(), 0, "the cache starts empty");
        let len = len as u64;
        let first = store.read(key, len, 10..20).await.unwrap();
        assert_eq!(first, object.slice(10..20));
        assert_eq!(chunk_files(), 1);
        // Across chunks 0 and 1: a sequential read, so chunk 2 is read ahead.
        let across = CHUNK_BYTES - 5..CHUNK_BYTES + 5;
        let read = store.read(key, len, across.clone()).await.unwrap();
        assert_eq!(
            read,
            object.slice(across.start as usize..across.end as usize)
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while chunk_files() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "chunk 2 not read ahead"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let tail = len - 7..len;
        assert_eq!(
            store.read(key, len, tail.clone()).await.unwrap(),
            object.slice(tail.start as usize..)
        );
    });
    // With the store gone, what is cached still reads.
    drop(moto);
    block_on(async {
        let cached = store.read(key, len as u64, 0..100).await.unwrap();
        assert_eq!(cached, object.slice(0..100));
        let refused = store.read(key, len as u64, 0..len as u64 + 1).await;
        assert!(refused.is_err(), "a range past the object's end");
    });
}
