//! The object store as shards see it: a [`StoreHandle`] whose calls
//! (`put`, `get_range`, `size`, `delete`, `list`) are futures a glommio
//! task awaits, answered by a store thread per shard.
//!
//! Why a thread with its own runtime: `object_store` is built on tokio
//! (reqwest for S3, tokio's blocking pool for local files), and a shard's
//! reactor must never block or host a second runtime. Each shard starts
//! one thread, `archive-store-<name>`, running a current-thread tokio
//! runtime. Requests reach it through a bounded queue
//! ([`STORE_REQUESTS_QUEUED_MAX`]; a caller finding it full waits, so a
//! shard that seals faster than the store takes can only slow down, never
//! pile up memory), at most [`STORE_OPS_IN_FLIGHT_MAX`] run at once, and
//! each answer comes back through a [`crate::wake::channel`]. The store
//! thread wakes shard tasks (an answer, a free queue slot), so both waits
//! are shielded: glommio frees a task twice when a foreign thread drops
//! the last reference to its waker (see [`crate::wake`]).
//!
//! Why tokio's bounded `mpsc` for the queue and not `futures-channel`'s:
//! a `futures-channel` sender needs `&mut self` to send, so a shared
//! handle would clone a sender per call, and each clone owns a slot of its
//! own: the queue would grow with the number of waiting callers. Tokio's
//! channel has exactly its capacity and sends through `&self`; its
//! synchronisation types work under any executor.
//!
//! Retries: `object_store`'s own retries are turned off so there is one
//! policy, counted in [`StoreStats`]: a call that fails with a transient
//! error (transport, timeout, HTTP 5xx/408/429, local I/O) is tried again
//! after [`STORE_BACKOFF_FIRST_MS`], doubling up to
//! [`STORE_BACKOFF_MAX_MS`], at most [`STORE_ATTEMPTS_MAX`] attempts in
//! all; anything else (refused credentials, a missing bucket, a bad
//! range) fails at once. A multipart upload retries each part and the
//! completion on their own, so one lost part costs one part.

use super::cache::{CacheSettings, ChunkCache, Lookup, ReadRate, CHUNK_BYTES};
use super::target::{check_object_path, ArchiveTarget};
use crate::wake;
use bytes::{Bytes, BytesMut};
use futures_channel::oneshot;
use futures_lite::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::client::HttpError;
use object_store::local::LocalFileSystem;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use ringlog_engine::archive::{
    archive_segment, write_archive_file, ArchiveMeta, Archived, NewMember,
};
use std::error::Error as StdError;
use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, Semaphore};

/// Requests waiting for the store thread, per shard, before callers wait.
/// It bounds requests, not bytes: a put holds its object until it is
/// done, so a caller bounds how many puts it has outstanding (the
/// uploader one or two segments at a time).
pub const STORE_REQUESTS_QUEUED_MAX: usize = 64;
/// Object store calls running at once on one store thread (one request
/// is one call; a multipart upload sends its parts one after another).
pub const STORE_OPS_IN_FLIGHT_MAX: usize = 4;
/// Attempts of one object store call, the first included.
pub const STORE_ATTEMPTS_MAX: u32 = 8;
/// Wait before the first retry; each later wait doubles.
pub const STORE_BACKOFF_FIRST_MS: u64 = 100;
/// Longest wait between two attempts.
pub const STORE_BACKOFF_MAX_MS: u64 = 5_000;
/// Largest object sent in one PUT; larger ones go up as a multipart upload.
pub const PUT_SINGLE_BYTES_MAX: usize = 8 << 20;
/// Size of each part of a multipart upload but the last (S3 wants at
/// least 5 MiB).
pub const PUT_PART_BYTES: usize = 8 << 20;
/// S3's limit on the parts of one upload (so objects up to 80 GB here).
pub const PUT_PARTS_MAX: usize = 10_000;
/// Most entries one `list` returns; more is an error, not a bigger vector.
pub const LIST_ENTRIES_MAX: usize = 1 << 20;
/// One HTTP request's time limit (an 8 MiB part at 1 MB/s fits).
pub const STORE_REQUEST_TIMEOUT_S: u64 = 60;
/// Time limit to connect to the S3 endpoint.
pub const STORE_CONNECT_TIMEOUT_S: u64 = 5;
/// Threads of the store runtime's blocking pool: the local-directory
/// backend does its file I/O there, at most one per op in flight.
const STORE_BLOCKING_THREADS_MAX: usize = STORE_OPS_IN_FLIGHT_MAX;
/// Error sources followed when classifying an error.
const ERROR_CHAIN_DEPTH_MAX: usize = 16;

/// Why a store call failed. Every message names the store (directory or
/// `s3://bucket/prefix`) and, where there is one, the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{store}: object {key} not found")]
    NotFound {
        /// The target, as [`ArchiveTarget`] displays it.
        store: String,
        /// The key asked for.
        key: String,
    },
    /// The store could not be reached or failed on its side (network,
    /// timeout, HTTP 5xx, local I/O), every attempt: it may work later.
    #[error("{store}: {what}: unavailable: {message}")]
    Unavailable {
        /// The target.
        store: String,
        /// The call and its key, e.g. `put topics/…/0-99.rla`.
        what: String,
        /// The last attempt's error.
        message: String,
    },
    /// The store refused the call (credentials, a missing bucket,
    /// permissions, a bad range): trying again would not help.
    #[error("{store}: {what}: refused: {message}")]
    Refused {
        /// The target.
        store: String,
        /// The call and its key.
        what: String,
        /// The store's error.
        message: String,
    },
    /// The key is not one the store layer takes (see [`StoreHandle`]).
    #[error("{store}: bad object key {key:?}: {message}")]
    BadKey {
        /// The target.
        store: String,
        /// The key given.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The target cannot be set up (the S3 client refused its settings,
    /// the store thread could not start).
    #[error("archive store: {0}")]
    Config(String),
}

impl StoreError {
    /// Whether the call may succeed if made again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Counters of one store thread, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Objects put.
    pub puts: u64,
    /// Bytes of the objects put.
    pub put_bytes: u64,
    /// Attempts that failed transiently and were made again.
    pub retries: u64,
    /// Calls that ended in [`StoreError::Unavailable`] or
    /// [`StoreError::Refused`] (a missing object is an answer, not a
    /// failure).
    pub failures: u64,
    /// Requests waiting in the queue now.
    pub queued: u64,
    /// Requests the store thread is executing now.
    pub in_flight: u64,
}

/// The handle shards use to call their store thread. Clone it freely; the
/// thread ends once every clone is dropped and its calls have finished.
///
/// Keys are relative to the target's root (the directory, or the bucket
/// and prefix), `/`-separated, without empty, `.` or `..` segments, e.g.
/// `topics/<topic-id>/<partition>/<first>-<last>.rla`; [`Self::list`]
/// gives them back the same way.
#[derive(Clone)]
pub struct StoreHandle {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

/// What a handle and its thread share.
struct Shared {
    /// The target as errors name it.
    store: String,
    puts: AtomicU64,
    put_bytes: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    in_flight: AtomicU64,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Request {
    Put {
        key: ObjectPath,
        bytes: Bytes,
        reply: Reply<()>,
    },
    PutSegment {
        key: ObjectPath,
        meta: ArchiveMeta,
        segment: PathBuf,
        members: Vec<NewMember>,
        reply: Reply<Archived>,
    },
    GetRange {
        key: ObjectPath,
        range: Range<u64>,
        /// The object's size, when the caller knows it: then the read
        /// goes through the chunk cache, if the store has one.
        object_len: Option<u64>,
        reply: Reply<Bytes>,
    },
    Size {
        key: ObjectPath,
        reply: Reply<Option<u64>>,
    },
    Delete {
        key: ObjectPath,
        reply: Reply<()>,
    },
    List {
        prefix: Option<ObjectPath>,
        reply: Reply<Vec<(String, u64)>>,
    },
}

impl StoreHandle {
    /// Stores `bytes` under `key`, replacing any object there: one PUT up
    /// to [`PUT_SINGLE_BYTES_MAX`], a multipart upload above it (on S3;
    /// the local directory writes one file either way). When it returns
    /// `Ok` the object is durable (S3 acknowledged it, or the local file
    /// and its directory were fsynced).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.object_path(key)?;
        let (reply, answer) = wake::channel();
        self.call(
            Request::Put {
                key: path,
                bytes,
                reply,
            },
            answer,
        )
        .await
    }

    /// Archives the sealed segment file `segment` under `key`, replacing
    /// any object there, and returns what it wrote. The archive is built
    /// and written on the store thread's blocking pool, never on the
    /// caller's: into the local directory streamed with direct I/O
    /// ([`write_archive_file`]), to S3 streamed part by part as it is
    /// built. Durable when it returns `Ok`, as a put.
    /// A segment that does not archive (not sealed, a frame that does not
    /// verify) is [`StoreError::Refused`] naming the file. `members` (the
    /// search index) go into the archive after the records.
    pub async fn put_segment(
        &self,
        key: &str,
        meta: ArchiveMeta,
        segment: PathBuf,
        members: Vec<NewMember>,
    ) -> Result<Archived, StoreError> {
        let path = self.object_path(key)?;
        let (reply, answer) = wake::channel();
        self.call(
            Request::PutSegment {
                key: path,
                meta,
                segment,
                members,
                reply,
            },
            answer,
        )
        .await
    }

    /// The bytes of `range` of the object at `key`. The range must lie
    /// within the object.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.ranged(key, range, None).await
    }

    /// [`Self::get_range`] of an object of `object_len` bytes, at the
    /// store's read rate and through its chunk cache when it has one (both
    /// set by [`start_store_with_cache`]; the cache for a remote store
    /// only): whole chunks are fetched and kept, and a sequential reader's
    /// next chunk is read ahead.
    pub async fn read(
        &self,
        key: &str,
        object_len: u64,
        range: Range<u64>,
    ) -> Result<Bytes, StoreError> {
        self.ranged(key, range, Some(object_len)).await
    }

    async fn ranged(
        &self,
        key: &str,
        range: Range<u64>,
        object_len: Option<u64>,
    ) -> Result<Bytes, StoreError> {
        let path = self.object_path(key)?;
        let past_end = object_len.is_some_and(|len| range.end > len);
        if range.start >= range.end || past_end {
            return Err(StoreError::Refused {
                store: self.shared.store.clone(),
                what: format!("get_range {key}"),
                message: format!("range {range:?} is empty or past the object's end"),
            });
        }
        let (reply, answer) = wake::channel();
        self.call(
            Request::GetRange {
                key: path,
                range,
                object_len,
                reply,
            },
            answer,
        )
        .await
    }

    /// The size of the object at `key`, `None` if there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.object_path(key)?;
        let (reply, answer) = wake::channel();
        self.call(Request::Size { key: path, reply }, answer).await
    }

    /// Deletes the object at `key`; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.object_path(key)?;
        let (reply, answer) = wake::channel();
        self.call(Request::Delete { key: path, reply }, answer)
            .await
    }

    /// Every object under `prefix` (whole segments: `topics/a` holds
    /// `topics/a/0/x` but not `topics/ab/x`; `""` lists everything), as
    /// (key, size), in no particular order. At most [`LIST_ENTRIES_MAX`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let prefix = match prefix {
            "" => None,
            prefix => Some(self.object_path(prefix)?),
        };
        let (reply, answer) = wake::channel();
        self.call(Request::List { prefix, reply }, answer).await
    }

    /// The thread's counters, and its queue and in-flight requests now.
    pub fn stats(&self) -> StoreStats {
        let shared = &self.shared;
        let free = self.requests.capacity();
        StoreStats {
            puts: shared.puts.load(Ordering::Relaxed),
            put_bytes: shared.put_bytes.load(Ordering::Relaxed),
            retries: shared.retries.load(Ordering::Relaxed),
            failures: shared.failures.load(Ordering::Relaxed),
            queued: (self.requests.max_capacity() - free) as u64,
            in_flight: shared.in_flight.load(Ordering::Relaxed),
        }
    }

    /// The target, as errors name it.
    pub fn store(&self) -> &str {
        &self.shared.store
    }

    fn object_path(&self, key: &str) -> Result<ObjectPath, StoreError> {
        check_object_path(key).map_err(|message| StoreError::BadKey {
            store: self.shared.store.clone(),
            key: key.to_string(),
            message,
        })
    }

    /// Queues `request` (waiting while the queue is full) and waits for
    /// its answer.
    async fn call<T>(
        &self,
        request: Request,
        answer: wake::Answer<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        // Only a panic drops a request unanswered (the thread lives as
        // long as a handle does).
        let stopped = || {
            StoreError::Config(format!(
                "the store thread of {} dropped the request (a panic; see the log)",
                self.shared.store
            ))
        };
        // A full queue parks this task in tokio's semaphore, which the
        // store thread wakes: shielded, like the answer (crate::wake).
        wake::shield(Box::pin(self.requests.send(request)))
            .await
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The settings of a store thread; [`Limits::DEFAULT`] outside tests.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) requests_queued_max: usize,
    pub(super) ops_in_flight_max: usize,
    pub(super) attempts_max: u32,
    pub(super) backoff_first: Duration,
    pub(super) backoff_max: Duration,
    pub(super) put_single_bytes_max: usize,
    pub(super) put_part_bytes: usize,
}

impl Limits {
    pub(super) const DEFAULT: Limits = Limits {
        requests_queued_max: STORE_REQUESTS_QUEUED_MAX,
        ops_in_flight_max: STORE_OPS_IN_FLIGHT_MAX,
        attempts_max: STORE_ATTEMPTS_MAX,
        backoff_first: Duration::from_millis(STORE_BACKOFF_FIRST_MS),
        backoff_max: Duration::from_millis(STORE_BACKOFF_MAX_MS),
        put_single_bytes_max: PUT_SINGLE_BYTES_MAX,
        put_part_bytes: PUT_PART_BYTES,
    };
}

/// The object store behind a thread: every call goes to `objects`;
/// multipart uploads to `multipart` when the backend has one (S3). The
/// local directory has none and takes every object in one write:
/// multipart exists to bound an HTTP request and retry a part, and a file
/// write needs neither.
pub(super) struct Backend {
    pub(super) objects: Arc<dyn ObjectStore>,
    pub(super) multipart: Option<Arc<dyn MultipartStore>>,
    /// The local directory, when that is the store: archives are written
    /// into it directly ([`write_archive_file`]).
    pub(super) local: Option<Arc<LocalFileSystem>>,
}

/// The blocking task that builds an archive for S3.
type Building = tokio::task::JoinHandle<ringlog_engine::Result<Archived>>;
/// What it ended with.
type Built = Result<ringlog_engine::Result<Archived>, tokio::task::JoinError>;

/// Where a multipart upload's parts come from.
enum Parts<'a> {
    /// An object in memory, already cut.
    Whole(std::vec::IntoIter<Bytes>),
    /// An archive being built: the parts taken to decide on a multipart
    /// upload, then the queue; whole once its building succeeded.
    Streamed {
        ahead: std::array::IntoIter<Bytes, 2>,
        queued: &'a mut mpsc::Receiver<Bytes>,
        building: &'a mut Building,
        /// Boxed: an archive's footer is far larger than the rest.
        settled: Option<Box<Built>>,
    },
}

impl Parts<'_> {
    /// The next part; `None` once there are no more.
    async fn next(&mut self) -> Option<Bytes> {
        match self {
            Parts::Whole(parts) => parts.next(),
            Parts::Streamed { ahead, queued, .. } => match ahead.next() {
                Some(part) => Some(part),
                None => queued.recv().await,
            },
        }
    }

    /// Whether the parts yielded make the whole object: for an archive,
    /// waits for its building to end and keeps what it returned.
    async fn whole(&mut self) -> bool {
        match self {
            Parts::Whole(_) => true,
            Parts::Streamed {
                building, settled, ..
            } => {
                let built = settled.insert(Box::new((&mut **building).await));
                matches!(**built, Ok(Ok(_)))
            }
        }
    }
}

/// The archive's bytes cut into parts of `part_bytes` for a multipart
/// upload, each queued as soon as it is full (the last at
/// [`PartWriter::send_staged`]). A write fails once the uploader has
/// stopped taking parts.
struct PartWriter {
    part_bytes: usize,
    staged: Vec<u8>,
    parts: mpsc::Sender<Bytes>,
}

impl PartWriter {
    /// Queues what is staged as a part, unless nothing is.
    fn send_staged(&mut self) -> std::io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.staged, Vec::with_capacity(self.part_bytes));
        self.parts
            .blocking_send(Bytes::from(full))
            .map_err(|_| std::io::Error::other("the upload stopped taking parts"))
    }
}

impl std::io::Write for PartWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let taken = bytes.len().min(self.part_bytes - self.staged.len());
        self.staged.extend_from_slice(&bytes[..taken]);
        if self.staged.len() == self.part_bytes {
            self.send_staged()?;
        }
        Ok(taken)
    }

    /// Staged bytes wait for a whole part or [`PartWriter::send_staged`].
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts the store thread of shard `name` (`archive-store-<name>`) for
/// `target`; `None` when archiving is off. Creates a local directory if
/// missing; makes no request to S3 (see [`check`] for that).
pub fn start_store(target: &ArchiveTarget, name: &str) -> Result<Option<StoreHandle>, StoreError> {
    if *target == ArchiveTarget::Off {
        return Ok(None);
    }
    let (runtime, backend) = runtime_and_backend(target, name)?;
    spawn_store(
        runtime,
        backend,
        target.to_string(),
        name,
        Limits::DEFAULT,
        None,
        None,
    )
    .map(Some)
}

/// The store thread's runtime and the backend for `target`, built inside
/// the runtime it will run on (the S3 client needs one).
fn runtime_and_backend(
    target: &ArchiveTarget,
    name: &str,
) -> Result<(tokio::runtime::Runtime, Backend), StoreError> {
    let runtime = store_runtime(name)?;
    let backend = {
        let _inside = runtime.enter();
        backend(target)?
    };
    Ok((runtime, backend))
}

/// [`start_store`] with a read rate for reads through
/// [`StoreHandle::read`] and, when `target` is remote (S3), a chunk cache
/// for them: a local directory is read in place (its files are the
/// cache, and its reads cost no request), but its reads still keep to the
/// rate, so a backfill from it cannot take the disk and the cores from
/// produce either.
pub fn start_store_with_cache(
    target: &ArchiveTarget,
    name: &str,
    cache: CacheSettings,
) -> Result<Option<StoreHandle>, StoreError> {
    if *target == ArchiveTarget::Off {
        return Ok(None);
    }
    let (runtime, backend) = runtime_and_backend(target, name)?;
    let rate = ReadRate::new(cache.read_bytes_per_s);
    let cache = match target {
        ArchiveTarget::S3 { .. } => {
            let dir = cache.dir.clone();
            Some(ChunkCache::open(cache).map_err(|e| {
                StoreError::Config(format!("chunk cache directory {}: {e}", dir.display()))
            })?)
        }
        _ => None,
    };
    spawn_store(
        runtime,
        backend,
        target.to_string(),
        name,
        Limits::DEFAULT,
        cache,
        Some(rate),
    )
    .map(Some)
}

/// Checks at start-up, blocking, that `target` works: a local directory
/// is created if missing and must take a file; on S3 the bucket must
/// exist and the credentials be accepted for listing, putting and
/// deleting (a probe object under the prefix, deleted again). One attempt
/// each, so a wrong setting fails start-up at once, naming the bucket or
/// directory and the store's error. It runs a runtime of its own on the
/// calling thread, so it is called outside any tokio runtime (start-up
/// has none).
pub fn check(target: &ArchiveTarget) -> Result<(), StoreError> {
    if *target == ArchiveTarget::Off {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .map_err(|e| StoreError::Config(format!("tokio runtime for checking {target}: {e}")))?;
    let backend = {
        let _inside = runtime.enter();
        backend(target)?
    };
    runtime.block_on(probe(&backend, &target.to_string()))
}

async fn probe(backend: &Backend, store: &str) -> Result<(), StoreError> {
    let error = |what: &str, err: object_store::Error| {
        let message = describe(&err);
        let what = format!("start-up check: {what}");
        let store = store.to_string();
        match classify(&err) {
            Fault::Transient(_) => StoreError::Unavailable {
                store,
                what,
                message,
            },
            // A PUT that finds no bucket is a 404, like a missing key.
            Fault::Missing(_) | Fault::Permanent(_) => StoreError::Refused {
                store,
                what,
                message,
            },
        }
    };
    if let Some(Err(err)) = backend.objects.list(None).next().await {
        return Err(error("list", err));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let key = ObjectPath::from(format!(
        "ringlog-start-check-{}-{nanos}",
        std::process::id()
    ));
    let what = format!("put {key}");
    backend
        .objects
        .put(&key, PutPayload::from_static(b"ringlog start-up check\n"))
        .await
        .map_err(|err| error(&what, err))?;
    let what = format!("delete {key}");
    backend
        .objects
        .delete(&key)
        .await
        .map_err(|err| error(&what, err))
}

pub(super) fn store_runtime(name: &str) -> Result<tokio::runtime::Runtime, StoreError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(STORE_BLOCKING_THREADS_MAX)
        .thread_name(format!("archive-io-{name}"))
        .build()
        .map_err(|e| StoreError::Config(format!("tokio runtime of archive-store-{name}: {e}")))
}

fn backend(target: &ArchiveTarget) -> Result<Backend, StoreError> {
    match target {
        ArchiveTarget::Off => unreachable!("callers return early when archiving is off"),
        ArchiveTarget::Local { dir } => {
            let refused = |what: &str, message: String| StoreError::Refused {
                store: target.to_string(),
                what: what.to_string(),
                message,
            };
            std::fs::create_dir_all(dir)
                .map_err(|e| refused("create the archive directory", e.to_string()))?;
            let local = LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| refused("open the archive directory", e.to_string()))?
                // An archive replaces a local segment once recorded, so it
                // must be on disk before the put is acknowledged.
                .with_fsync(true)
                // Deleting a partition's last archive removes the
                // directories it leaves empty.
                .with_automatic_cleanup(true);
            let local = Arc::new(local);
            Ok(Backend {
                objects: local.clone(),
                multipart: None,
                local: Some(local),
            })
        }
        ArchiveTarget::S3 {
            bucket,
            prefix,
            endpoint,
        } => {
            // Credentials, region and AWS_ALLOW_HTTP from the standard
            // variables.
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                // One retry policy, ours, counted in the stats.
                .with_retry(RetryConfig {
                    max_retries: 0,
                    ..RetryConfig::default()
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_timeout(Duration::from_secs(STORE_REQUEST_TIMEOUT_S))
                        .with_connect_timeout(Duration::from_secs(STORE_CONNECT_TIMEOUT_S)),
                );
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                builder = builder.with_region("us-east-1");
            }
            builder = match endpoint {
                // S3-compatible servers (MinIO, moto) address buckets by
                // path; an http:// endpoint is an explicit choice of
                // plain HTTP, so it needs no AWS_ALLOW_HTTP.
                Some(endpoint) => builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false)
                    .with_allow_http(endpoint.starts_with("http://")),
                // AWS itself: bucket.s3.<region>.amazonaws.com.
                None => builder.with_virtual_hosted_style_request(true),
            };
            let s3 = builder
                .build()
                .map_err(|e| StoreError::Config(format!("{target}: {e}")))?;
            let root = ObjectPath::parse(prefix)
                .map_err(|e| StoreError::Config(format!("{target}: prefix {prefix:?}: {e}")))?;
            let store = Arc::new(PrefixStore::new(s3, root));
            Ok(Backend {
                objects: store.clone(),
                multipart: Some(store),
                local: None,
            })
        }
    }
}

/// Spawns the store thread on `runtime`, serving `backend`.
pub(super) fn spawn_store(
    runtime: tokio::runtime::Runtime,
    backend: Backend,
    store: String,
    name: &str,
    limits: Limits,
    cache: Option<ChunkCache>,
    rate: Option<ReadRate>,
) -> Result<StoreHandle, StoreError> {
    assert!(limits.requests_queued_max > 0 && limits.ops_in_flight_max > 0);
    assert!(limits.attempts_max > 0 && limits.put_part_bytes > 0);
    let (requests, queue) = mpsc::channel(limits.requests_queued_max);
    let shared = Arc::new(Shared {
        store,
        puts: AtomicU64::new(0),
        put_bytes: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
    });
    let worker = Arc::new(Worker {
        backend,
        shared: shared.clone(),
        limits,
        cache: cache.map(Arc::new),
        rate,
    });
    std::thread::Builder::new()
        .name(format!("archive-store-{name}"))
        .spawn(move || runtime.block_on(worker.serve(queue)))
        .map_err(|e| StoreError::Config(format!("spawn thread archive-store-{name}: {e}")))?;
    Ok(StoreHandle { requests, shared })
}

/// The store thread's side.
struct Worker {
    backend: Backend,
    shared: Arc<Shared>,
    limits: Limits,
    /// Remote stores only: chunks kept on local disk.
    cache: Option<Arc<ChunkCache>>,
    /// The rate of reads through [`StoreHandle::read`], when set.
    rate: Option<ReadRate>,
}

/// A failed attempt, classified.
enum Fault {
    /// The object (or, on a PUT, the bucket) does not exist.
    Missing(String),
    /// Worth another attempt.
    Transient(String),
    /// Not worth another attempt.
    Permanent(String),
}

impl Worker {
    /// Takes requests until every handle is gone, running at most
    /// `ops_in_flight_max` at once; then waits for those in flight.
    async fn serve(self: Arc<Self>, mut queue: mpsc::Receiver<Request>) {
        let permits = Arc::new(Semaphore::new(self.limits.ops_in_flight_max));
        loop {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let Some(request) = queue.recv().await else {
                break;
            };
            let worker = self.clone();
            tokio::spawn(async move {
                worker.shared.in_flight.fetch_add(1, Ordering::Relaxed);
                worker.execute(request).await;
                drop(permit);
            });
        }
        let all = u32::try_from(self.limits.ops_in_flight_max).expect("a few permits");
        let _finished = permits.acquire_many(all).await;
    }

    /// Runs one request and answers it.
    async fn execute(self: &Arc<Self>, request: Request) {
        match request {
            Request::Put { key, bytes, reply } => {
                let len = bytes.len() as u64;
                let result = self.put(&key, bytes).await;
                if result.is_ok() {
                    self.shared.puts.fetch_add(1, Ordering::Relaxed);
                    self.shared.put_bytes.fetch_add(len, Ordering::Relaxed);
                }
                self.answer(reply, result);
            }
            Request::PutSegment {
                key,
                meta,
                segment,
                members,
                reply,
            } => {
                let result = self.put_segment(key, meta, segment, members).await;
                if let Ok(archived) = &result {
                    self.shared.puts.fetch_add(1, Ordering::Relaxed);
                    (self.shared.put_bytes).fetch_add(archived.len_bytes, Ordering::Relaxed);
                }
                self.answer(reply, result);
            }
            Request::GetRange {
                key,
                range,
                object_len,
                reply,
            } => {
                let result = match (&self.cache, object_len) {
                    (Some(cache), Some(len)) => self.cached(cache, &key, len, range).await,
                    (None, Some(_)) => {
                        if let Some(rate) = &self.rate {
                            rate.throttle(range.end - range.start).await;
                        }
                        self.get_range(&key, range).await
                    }
                    (_, None) => self.get_range(&key, range).await,
                };
                self.answer(reply, result);
            }
            Request::Size { key, reply } => {
                let result = match self
                    .retried("size", &key, || self.backend.objects.head(&key))
                    .await
                {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(Fault::Missing(_)) => Ok(None),
                    Err(fault) => Err(self.failed("size", &key, fault)),
                };
                self.answer(reply, result);
            }
            Request::Delete { key, reply } => {
                let result = match self
                    .retried("delete", &key, || self.backend.objects.delete(&key))
                    .await
                {
                    Ok(()) | Err(Fault::Missing(_)) => Ok(()),
                    Err(fault) => Err(self.failed("delete", &key, fault)),
                };
                self.answer(reply, result);
            }
            Request::List { prefix, reply } => {
                let result = self.list(prefix).await;
                self.answer(reply, result);
            }
        }
    }

    /// Ends a request: it leaves the in-flight count before its caller
    /// hears, so a caller that has all its answers sees the thread idle.
    /// The caller may have stopped waiting (its future dropped); the
    /// answer is then dropped too.
    fn answer<T>(&self, reply: Reply<T>, result: Result<T, StoreError>) {
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let _ = reply.send(result);
    }

    /// A ranged read, which must lie within the object: the backends
    /// differ on a range past the end (S3 and local files shorten it), so
    /// a short answer is refused here rather than handed on.
    async fn get_range(&self, key: &ObjectPath, range: Range<u64>) -> Result<Bytes, StoreError> {
        let bytes = self
            .retried("get_range", key, || {
                self.backend.objects.get_range(key, range.clone())
            })
            .await
            .map_err(|fault| self.failed("get_range", key, fault))?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(self.failed(
                "get_range",
                key,
                Fault::Permanent(format!(
                    "range {range:?} reaches past the object's end ({} bytes came back)",
                    bytes.len()
                )),
            ));
        }
        Ok(bytes)
    }

    /// A ranged read through the chunk cache: each chunk the range touches
    /// from its file, or fetched whole (within the read rate) and kept;
    /// then the next chunk read ahead in the background when this read
    /// continued the previous one.
    async fn cached(
        self: &Arc<Self>,
        cache: &Arc<ChunkCache>,
        key: &ObjectPath,
        object_len: u64,
        range: Range<u64>,
    ) -> Result<Bytes, StoreError> {
        let (first, last) = (range.start / CHUNK_BYTES, (range.end - 1) / CHUNK_BYTES);
        let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
        for chunk in first..=last {
            let bytes = self.chunk(cache, key, object_len, chunk).await?;
            let base = chunk * CHUNK_BYTES;
            let from = (range.start.max(base) - base) as usize;
            let to = (range.end.min(base + bytes.len() as u64) - base) as usize;
            out.extend_from_slice(&bytes[from..to]);
        }
        let ahead = cache
            .read_ahead(key.as_ref(), first, last)
            .filter(|next| next * CHUNK_BYTES < object_len);
        if let Some(next) = ahead {
            let (worker, cache, key) = (self.clone(), cache.clone(), key.clone());
            tokio::spawn(async move {
                if let Err(e) = worker.chunk(&cache, &key, object_len, next).await {
                    tracing::debug!(%key, chunk = next, error = %e, "read-ahead failed");
                }
            });
        }
        Ok(out.freeze())
    }

    /// One whole chunk of an object of `object_len` bytes.
    async fn chunk(
        &self,
        cache: &ChunkCache,
        key: &ObjectPath,
        object_len: u64,
        chunk: u64,
    ) -> Result<Bytes, StoreError> {
        if let Lookup::Hit(bytes) = cache.lookup(key.as_ref(), chunk) {
            return Ok(bytes);
        }
        let start = chunk * CHUNK_BYTES;
        let range = start..object_len.min(start + CHUNK_BYTES);
        if let Some(rate) = &self.rate {
            rate.throttle(range.end - range.start).await;
        }
        let bytes = self.get_range(key, range).await?;
        cache.admit(key.as_ref(), chunk, &bytes);
        Ok(bytes)
    }

    async fn put(&self, key: &ObjectPath, bytes: Bytes) -> Result<(), StoreError> {
        let result = match &self.backend.multipart {
            Some(multipart) if bytes.len() > self.limits.put_single_bytes_max => {
                let part_bytes = self.limits.put_part_bytes;
                let parts: Vec<Bytes> = (0..bytes.len())
                    .step_by(part_bytes)
                    .map(|start| bytes.slice(start..bytes.len().min(start + part_bytes)))
                    .collect();
                let mut source = Parts::Whole(parts.into_iter());
                self.put_parts(multipart.as_ref(), key, &mut source).await
            }
            _ => self
                .retried("put", key, || {
                    self.backend
                        .objects
                        .put(key, PutPayload::from_bytes(bytes.clone()))
                })
                .await
                .map(|_| ()),
        };
        result.map_err(|fault| match fault {
            // A PUT that finds nothing is a missing bucket or directory.
            Fault::Missing(message) => self.failed("put", key, Fault::Permanent(message)),
            fault => self.failed("put", key, fault),
        })
    }

    /// [`StoreHandle::put_segment`] on this thread: the archive is built
    /// on the blocking pool, and written there too into a local
    /// directory; to S3 it streams part by part ([`Worker::put_streamed`]).
    async fn put_segment(
        &self,
        key: ObjectPath,
        meta: ArchiveMeta,
        segment: PathBuf,
        members: Vec<NewMember>,
    ) -> Result<Archived, StoreError> {
        let what = format!("put {key}");
        let object = key.to_string();
        let built = match (&self.backend.local, &self.backend.multipart) {
            (Some(local), _) => {
                let dest = local
                    .path_to_filesystem(&key)
                    .map_err(|e| self.refused(&what, e.to_string()))?;
                tokio::task::spawn_blocking(move || {
                    write_archive_file(meta, &object, &segment, &dest, members)
                })
                .await
            }
            (None, Some(multipart)) => {
                let (parts, mut queued) = mpsc::channel(1);
                let part_bytes = self.limits.put_part_bytes;
                let building = tokio::task::spawn_blocking(move || {
                    let source = std::fs::File::open(&segment)
                        .and_then(|f| Ok((f.metadata()?.len(), f)))
                        .map_err(|e| ringlog_engine::Error::io(&segment, e))?;
                    let mut out = PartWriter {
                        part_bytes,
                        staged: Vec::with_capacity(part_bytes),
                        parts,
                    };
                    let archived =
                        archive_segment(meta, &object, source.1, source.0, members, &mut out)?;
                    out.send_staged()
                        .map_err(|e| ringlog_engine::Error::io(&object, e))?;
                    Ok(archived)
                });
                self.put_streamed(multipart.as_ref(), &key, &mut queued, building)
                    .await?
            }
            (None, None) => unreachable!("a store without multipart uploads is a local directory"),
        };
        let built =
            built.map_err(|e| self.refused(&what, format!("the archiving task failed: {e}")))?;
        built.map_err(|e| match e {
            ringlog_engine::Error::Io { .. } => StoreError::Unavailable {
                store: self.shared.store.clone(),
                what: what.clone(),
                message: e.to_string(),
            },
            e => self.refused(&what, e.to_string()),
        })
    }

    /// Uploads the parts `building` queues as it builds the archive: an
    /// archive of one part in one PUT, a larger one as a multipart upload
    /// whose parts go up as they come, so at most three parts are in
    /// memory (one being built, one queued, one going up). Nothing is put
    /// or completed before `building` has finished the archive, so a
    /// segment that fails half way leaves no object. Returns what
    /// `building` returned, or the store's failure.
    async fn put_streamed(
        &self,
        multipart: &dyn MultipartStore,
        key: &ObjectPath,
        queued: &mut mpsc::Receiver<Bytes>,
        mut building: Building,
    ) -> Result<Built, StoreError> {
        let failed = |fault| match fault {
            Fault::Missing(message) => self.failed("put", key, Fault::Permanent(message)),
            fault => self.failed("put", key, fault),
        };
        let first = queued.recv().await;
        let second = match first {
            Some(_) => queued.recv().await,
            None => None,
        };
        let (first, second) = match (first, second) {
            (Some(first), Some(second)) => (first, second),
            (Some(only), None) => {
                let built = building.await;
                if matches!(built, Ok(Ok(_))) {
                    self.retried("put", key, || {
                        (self.backend.objects).put(key, PutPayload::from_bytes(only.clone()))
                    })
                    .await
                    .map_err(failed)?;
                }
                return Ok(built);
            }
            (None, _) => return Ok(building.await),
        };
        let mut source = Parts::Streamed {
            ahead: [first, second].into_iter(),
            queued,
            building: &mut building,
            settled: None,
        };
        let uploaded = self.put_parts(multipart, key, &mut source).await;
        let Parts::Streamed {
            queued, settled, ..
        } = source
        else {
            unreachable!("the source stays streamed")
        };
        // A store that failed first stops the building (its next part
        // finds the queue closed).
        queued.close();
        match (settled.map(|built| *built), uploaded) {
            (Some(built), Ok(())) => Ok(built),
            // The archive could not be built: its error, the upload aborted.
            (Some(built @ (Err(_) | Ok(Err(_)))), Err(_)) => Ok(built),
            (Some(Ok(Ok(_))), Err(fault)) => Err(failed(fault)),
            (None, Err(fault)) => {
                // The building ends at its next part; its error is only
                // that the upload stopped.
                let _stopped = building.await;
                Err(failed(fault))
            }
            (None, Ok(())) => unreachable!("a multipart upload completes only once settled"),
        }
    }

    fn refused(&self, what: &str, message: String) -> StoreError {
        StoreError::Refused {
            store: self.shared.store.clone(),
            what: what.to_string(),
            message,
        }
    }

    /// A multipart upload of the parts `parts_from` yields, in order:
    /// create, each part as it comes, then, if the parts make the whole
    /// object ([`Parts::whole`]), complete; each call retried on its own. Aborted
    /// (once, best effort) if any call fails or the parts are not whole,
    /// so the store does not keep them. (A crash mid-upload leaves them to
    /// the bucket's lifecycle rule for incomplete uploads.)
    async fn put_parts(
        &self,
        multipart: &dyn MultipartStore,
        key: &ObjectPath,
        parts_from: &mut Parts<'_>,
    ) -> Result<(), Fault> {
        let id = self
            .retried("create multipart upload", key, || {
                multipart.create_multipart(key)
            })
            .await?;
        let uploaded = async {
            let mut parts: Vec<PartId> = Vec::new();
            // Bounded: at most PUT_PARTS_MAX parts go up.
            while let Some(part) = parts_from.next().await {
                if parts.len() == PUT_PARTS_MAX {
                    return Err(Fault::Permanent(format!(
                        "more than {PUT_PARTS_MAX} parts of {} bytes",
                        self.limits.put_part_bytes
                    )));
                }
                let (id, index) = (&id, parts.len());
                let uploaded = self
                    .retried("put part", key, || {
                        multipart.put_part(key, id, index, PutPayload::from_bytes(part.clone()))
                    })
                    .await?;
                parts.push(uploaded);
            }
            if !parts_from.whole().await {
                return Err(Fault::Permanent("the object was not whole".to_string()));
            }
            self.retried("complete multipart upload", key, || {
                multipart.complete_multipart(key, &id, parts.clone())
            })
            .await
        }
        .await;
        match uploaded {
            Ok(_) => Ok(()),
            Err(fault) => {
                if let Err(e) = multipart.abort_multipart(key, &id).await {
                    tracing::warn!(store = %self.shared.store, %key, error = %e, "abort of a failed multipart upload failed");
                }
                Err(fault)
            }
        }
    }

    async fn list(&self, prefix: Option<ObjectPath>) -> Result<Vec<(String, u64)>, StoreError> {
        let what_key = prefix.clone().unwrap_or_default();
        let listed = self
            .retried("list", &what_key, || async {
                let mut stream = self.backend.objects.list(prefix.as_ref());
                let mut entries = Vec::new();
                while let Some(meta) = stream.next().await {
                    if entries.len() == LIST_ENTRIES_MAX {
                        return Ok(None);
                    }
                    let meta = meta?;
                    entries.push((meta.location.to_string(), meta.size));
                }
                Ok(Some(entries))
            })
            .await;
        match listed {
            Ok(Some(entries)) => Ok(entries),
            Ok(None) => Err(self.failed(
                "list",
                &what_key,
                Fault::Permanent(format!("more than {LIST_ENTRIES_MAX} objects")),
            )),
            // Nothing was ever put under the prefix.
            Err(Fault::Missing(_)) => Ok(Vec::new()),
            Err(fault) => Err(self.failed("list", &what_key, fault)),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or has been made
    /// `attempts_max` times, waiting with capped exponential backoff
    /// between attempts.
    async fn retried<T, F, Fut>(
        &self,
        what: &str,
        key: &ObjectPath,
        mut attempt: F,
    ) -> Result<T, Fault>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut backoff = self.limits.backoff_first;
        let mut made = 0;
        loop {
            made += 1;
            let fault = match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) => classify(&err),
            };
            match fault {
                Fault::Transient(message) if made < self.limits.attempts_max => {
                    self.shared.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        store = %self.shared.store,
                        what,
                        %key,
                        attempt = made,
                        retry_in_ms = backoff.as_millis() as u64,
                        error = %message,
                        "object store call failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.limits.backoff_max);
                }
                fault => return Err(fault),
            }
        }
    }

    /// The error a call ends with, counted as a failure.
    fn failed(&self, what: &str, key: &ObjectPath, fault: Fault) -> StoreError {
        let store = self.shared.store.clone();
        let what = format!("{what} {key}");
        match fault {
            Fault::Missing(_) => StoreError::NotFound {
                store,
                key: key.to_string(),
            },
            Fault::Transient(message) => {
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
                StoreError::Unavailable {
                    store,
                    what,
                    message,
                }
            }
            Fault::Permanent(message) => {
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
                StoreError::Refused {
                    store,
                    what,
                    message,
                }
            }
        }
    }
}

/// Sorts an object store error: missing, worth retrying, or not.
///
/// `object_store` maps the HTTP statuses it recognises to variants (404
/// not found, 401/403 refused, 409/412 conflicts) and leaves the rest in
/// `Generic`, whose source chain says what happened: a transport error
/// ([`HttpError`]: connect, timeout, reset), an HTTP status in the
/// message (its request error type is not public), or, for the local
/// directory, an I/O error. Only those known to pass are retried.
fn classify(err: &object_store::Error) -> Fault {
    use object_store::Error as E;
    let message = describe(err);
    match err {
        E::NotFound { .. } => Fault::Missing(message),
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => Fault::Permanent(message),
        _ if transient(err) => Fault::Transient(message),
        _ => Fault::Permanent(message),
    }
}

/// The error and those of its sources that its message leaves out (a
/// transport error's message stops at "error sending request"; the
/// cause, such as "Connection refused", is further down).
fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    for _ in 0..ERROR_CHAIN_DEPTH_MAX {
        let Some(err) = cause else {
            break;
        };
        let text = err.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = err.source();
    }
    message
}

fn transient(err: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(err);
    for _ in 0..ERROR_CHAIN_DEPTH_MAX {
        let Some(err) = cause else {
            return false;
        };
        if err.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return !matches!(
                io.kind(),
                K::PermissionDenied | K::ReadOnlyFilesystem | K::InvalidInput
            );
        }
        let text = err.to_string();
        if let Some(status) = http_status(&text) {
            return status >= 500 || status == 408 || status == 429;
        }
        // S3 can fail a request in the body of a 200 (InternalError,
        // SlowDown); object_store reports it as an error response.
        if text.contains("Server returned error response") {
            return true;
        }
        cause = err.source();
    }
    false
}

/// The HTTP status of an object_store request error's message
/// ("... status code: 503 Service Unavailable: ...").
pub(super) fn http_status(text: &str) -> Option<u16> {
    let (_, after) = text.split_once("status code: ")?;
    let digits = after.get(..3)?;
    digits
        .parse()
        .ok()
        .filter(|status| (100..600).contains(status))
}
