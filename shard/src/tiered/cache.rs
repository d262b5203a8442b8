//! The chunk cache of archives read from a remote store: fixed chunks of
//! [`CHUNK_BYTES`] in files under `<data>/cache/<shard>`, a bound on their
//! bytes, admission that keeps one long backfill from evicting everyone
//! else's chunks, read-ahead for sequential readers; and the read rate
//! every read of archived records keeps to.
//!
//! Layer: foundation (part of [`crate::tiered`]); it runs on the store
//! thread.
//!
//! ## Why two segments (probation and protected)
//!
//! A chunk enters *probation*; a second read of it while it is cached
//! moves it to *protected*. Probation holds at most a quarter of the
//! bound and protected the rest; a protected segment over its share
//! hands its oldest chunk back to probation, and chunks leave the cache
//! only from probation, oldest first (a segmented LRU). A backfill
//! reads each chunk once, so its chunks only ever cycle through probation
//! while the chunks that other readers come back to (a consumer group's
//! working set, an archive's first chunk) stay protected: the cache
//! thrash Redpanda users hit (a cache evicting the very chunks being read)
//! needs a reader to lose to a scan, and here a scan can only evict other
//! chunks of probation.
//!
//! ## Why files, forgotten at start
//!
//! The cache bound is meant to be larger than memory; the page cache
//! keeps hot chunk files in memory anyway. The index of what is cached
//! lives in memory only, so start-up empties the directory: a cold cache
//! after a restart costs reads, never a wrong byte.

use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes per chunk: a ranged GET of this size keeps request overhead
/// small against S3's latency, and a fetch rarely needs more than two.
pub const CHUNK_BYTES: u64 = 4 << 20;
/// Share of the bound probation may hold, in quarters.
const PROBATION_QUARTERS: u64 = 1;
/// Objects whose last read chunk is remembered for read-ahead.
const READERS_REMEMBERED_MAX: usize = 1024;
const _: () = assert!(PROBATION_QUARTERS >= 1 && PROBATION_QUARTERS < 4);

/// What a shard's cache is set up with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// The shard's cache directory (emptied at start).
    pub dir: PathBuf,
    /// The most bytes of chunks kept.
    pub bytes_max: u64,
    /// Bytes per second fetched from the store, at most.
    pub read_bytes_per_s: u64,
}

/// One cached chunk.
struct Entry {
    file: PathBuf,
    len_bytes: u64,
    protected: bool,
    last_use: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<(String, u64), Entry>,
    bytes: u64,
    probation_bytes: u64,
    /// Ticks on every use, ordering entries by recency.
    clock: u64,
    /// Names chunk files.
    next_file: u64,
    /// The last chunk read of each object (read-ahead).
    last_read: HashMap<String, u64>,
}

/// Token bucket of bytes fetched per second. Tokens may go negative: a
/// fetch larger than the balance waits for the debt to be repaid.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The read rate of a store thread (`--archive-read-mb-s`): every read
/// of archived records, from S3 or a local directory, waits its turn, so
/// a backfill takes at most this much of the disk, the network and the
/// copying, and produce keeps the rest.
pub(super) struct ReadRate {
    bytes_per_s: u64,
    bucket: Mutex<Bucket>,
}

impl ReadRate {
    pub(super) fn new(bytes_per_s: u64) -> ReadRate {
        assert!(bytes_per_s > 0);
        ReadRate {
            bytes_per_s,
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                at: Instant::now(),
            }),
        }
    }

    /// Waits until reading `bytes` keeps within the rate.
    pub(super) async fn throttle(&self, bytes: u64) {
        let wait = {
            let mut bucket = self.bucket.lock().expect("never poisoned");
            let rate = self.bytes_per_s as f64;
            let now = Instant::now();
            let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
            // At most one second of credit builds up.
            bucket.tokens = (bucket.tokens + refill).min(rate) - bytes as f64;
            bucket.at = now;
            (bucket.tokens < 0.0).then(|| Duration::from_secs_f64(-bucket.tokens / rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A shard's chunk cache (see the module docs).
pub(super) struct ChunkCache {
    settings: CacheSettings,
    state: Mutex<State>,
}

/// What a read of a range needs.
pub(super) enum Lookup {
    /// The chunk's bytes, from its file.
    Hit(Bytes),
    /// Not cached: fetch it.
    Miss,
}

impl ChunkCache {
    /// Empties (or creates) the directory and starts an empty cache.
    pub(super) fn open(settings: CacheSettings) -> std::io::Result<ChunkCache> {
        assert!(settings.bytes_max >= CHUNK_BYTES);
        match std::fs::remove_dir_all(&settings.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&settings.dir)?;
        Ok(ChunkCache {
            settings,
            state: Mutex::default(),
        })
    }

    /// The cached bytes of `chunk` of `key`, counting the read (a second
    /// read protects the chunk).
    pub(super) fn lookup(&self, key: &str, chunk: u64) -> Lookup {
        let file = {
            let mut state = self.state.lock().expect("never poisoned");
            state.clock += 1;
            let clock = state.clock;
            let Some(entry) = state.entries.get_mut(&(key.to_string(), chunk)) else {
                return Lookup::Miss;
            };
            entry.last_use = clock;
            let promoted = !entry.protected;
            entry.protected = true;
            let (file, len) = (entry.file.clone(), entry.len_bytes);
            if promoted {
                state.probation_bytes -= len;
                let doomed = self.evictions(&mut state);
                remove_files(doomed);
            }
            file
        };
        match std::fs::read(&file) {
            Ok(bytes) => Lookup::Hit(Bytes::from(bytes)),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "a cached chunk could not be read; fetching it again");
                self.forget(key, chunk);
                Lookup::Miss
            }
        }
    }

    /// Keeps `bytes` as `chunk` of `key` (in probation), evicting what the
    /// bound needs. A failed write only means the chunk is not cached.
    pub(super) fn admit(&self, key: &str, chunk: u64, bytes: &Bytes) {
        let len = bytes.len() as u64;
        let file = {
            let mut state = self.state.lock().expect("never poisoned");
            if state.entries.contains_key(&(key.to_string(), chunk)) {
                return; // a concurrent read admitted it
            }
            state.next_file += 1;
            self.settings.dir.join(format!("{}.chunk", state.next_file))
        };
        if let Err(e) = write_file(&file, bytes) {
            tracing::warn!(file = %file.display(), error = %e, "caching a chunk failed");
            return;
        }
        let doomed = {
            let mut state = self.state.lock().expect("never poisoned");
            state.clock += 1;
            let clock = state.clock;
            let previous = state.entries.insert(
                (key.to_string(), chunk),
                Entry {
                    file,
                    len_bytes: len,
                    protected: false,
                    last_use: clock,
                },
            );
            assert!(previous.is_none(), "checked above under the same key");
            state.bytes += len;
            state.probation_bytes += len;
            self.evictions(&mut state)
        };
        remove_files(doomed);
    }

    /// Restores the segment bounds: the oldest protected chunks go back to
    /// probation (as its newest) while protected is over its share, then
    /// the oldest probation chunks leave while probation is over its own.
    /// Returns the files of the chunks that left.
    fn evictions(&self, state: &mut State) -> Vec<PathBuf> {
        let probation_max = self.settings.bytes_max / 4 * PROBATION_QUARTERS;
        let protected_max = self.settings.bytes_max - probation_max;
        // Bounded: each round demotes one protected entry.
        while state.bytes - state.probation_bytes > protected_max {
            state.clock += 1;
            let clock = state.clock;
            let Some(oldest) = state
                .entries
                .values_mut()
                .filter(|e| e.protected)
                .min_by_key(|e| e.last_use)
            else {
                break;
            };
            oldest.protected = false;
            oldest.last_use = clock;
            let len = oldest.len_bytes;
            state.probation_bytes += len;
        }
        let mut doomed = Vec::new();
        // Bounded: each round removes one entry.
        while state.probation_bytes > probation_max {
            let victim = state
                .entries
                .iter()
                .filter(|(_, e)| !e.protected)
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            let entry = state.entries.remove(&victim).expect("just found");
            state.bytes -= entry.len_bytes;
            state.probation_bytes -= entry.len_bytes;
            doomed.push(entry.file);
        }
        assert!(state.bytes <= self.settings.bytes_max || state.entries.len() <= 1);
        doomed
    }

    fn forget(&self, key: &str, chunk: u64) {
        let mut state = self.state.lock().expect("never poisoned");
        if let Some(entry) = state.entries.remove(&(key.to_string(), chunk)) {
            state.bytes -= entry.len_bytes;
            if !entry.protected {
                state.probation_bytes -= entry.len_bytes;
            }
        }
    }

    /// Records that a read of `key` ended in chunk `last`; returns the
    /// chunk to read ahead when the read continued the previous one
    /// (started in the chunk it ended in, or the next) and that chunk is
    /// not cached.
    pub(super) fn read_ahead(&self, key: &str, first: u64, last: u64) -> Option<u64> {
        let mut state = self.state.lock().expect("never poisoned");
        if state.last_read.len() >= READERS_REMEMBERED_MAX && !state.last_read.contains_key(key) {
            state.last_read.clear();
        }
        let previous = state.last_read.insert(key.to_string(), last);
        let sequential = previous.is_some_and(|p| first == p || first == p + 1);
        let next = last + 1;
        (sequential && !state.entries.contains_key(&(key.to_string(), next))).then_some(next)
    }

    /// Bytes cached now.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> (u64, u64) {
        let state = self.state.lock().expect("never poisoned");
        (state.bytes, state.probation_bytes)
    }
}

fn remove_files(files: Vec<PathBuf>) {
    for file in files {
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::warn!(file = %file.display(), error = %e, "removing an evicted chunk failed");
        }
    }
}

/// Writes a chunk file whole (a temporary name, then a rename), so a
/// concurrent reader never sees half of one.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under `target/` (a real disk), never tmpfs.
    fn test_dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/tmp/tiered")
            .join(name)
    }

    fn cache(name: &str, chunks: u64) -> ChunkCache {
        let dir = test_dir(name);
        ChunkCache::open(CacheSettings {
            dir,
            bytes_max: chunks * CHUNK_BYTES,
            read_bytes_per_s: 1 << 30,
        })
        .unwrap()
    }

    fn chunk(byte: u8) -> Bytes {
        Bytes::from(vec![byte; CHUNK_BYTES as usize])
    }

    fn hit(cache: &ChunkCache, key: &str, c: u64) -> bool {
        matches!(cache.lookup(key, c), Lookup::Hit(_))
    }

    #[test]
    fn a_scan_cannot_evict_chunks_other_readers_came_back_to() {
        let cache = cache("cache-scan", 8);
        // A working set read twice: protected.
        for c in 0..4 {
            cache.admit("hot", c, &chunk(c as u8));
            assert!(hit(&cache, "hot", c));
        }
        // A backfill reads 40 chunks once each.
        for c in 0..40 {
            assert!(!hit(&cache, "scan", c));
            cache.admit("scan", c, &chunk(7));
        }
        for c in 0..4 {
            match cache.lookup("hot", c) {
                Lookup::Hit(bytes) => assert_eq!(bytes[0], c as u8),
                Lookup::Miss => panic!("hot chunk {c} evicted by a scan"),
            }
        }
        let (bytes, probation) = cache.bytes();
        assert!(bytes <= 8 * CHUNK_BYTES && probation <= 2 * CHUNK_BYTES);
        // Only the newest scan chunks are still cached.
        assert!(hit(&cache, "scan", 39) && !hit(&cache, "scan", 0));
        let files = std::fs::read_dir(&cache.settings.dir).unwrap().count();
        assert_eq!(
            files as u64,
            bytes / CHUNK_BYTES,
            "evicted files are removed"
        );
    }

    #[test]
    fn the_bound_holds_when_everything_is_protected() {
        let cache = cache("cache-bound", 4);
        for c in 0..10 {
            cache.admit("k", c, &chunk(1));
            assert!(hit(&cache, "k", c));
        }
        assert!(cache.bytes().0 <= 4 * CHUNK_BYTES);
        assert!(hit(&cache, "k", 9) && !hit(&cache, "k", 0));
    }

    #[test]
    fn sequential_readers_get_the_next_chunk_read_ahead() {
        let cache = cache("cache-ahead", 4);
        assert_eq!(
            cache.read_ahead("k", 0, 0),
            None,
            "a first read is not a sequence"
        );
        assert_eq!(cache.read_ahead("k", 0, 1), Some(2));
        assert_eq!(cache.read_ahead("k", 2, 2), Some(3));
        cache.admit("k", 4, &chunk(1));
        assert_eq!(cache.read_ahead("k", 3, 3), None, "chunk 4 is cached");
        assert_eq!(
            cache.read_ahead("k", 9, 9),
            None,
            "a jump is not a sequence"
        );
    }

    #[test]
    fn the_read_rate_is_held() {
        let rate = ReadRate::new(10_000_000);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let started = Instant::now();
        runtime.block_on(async {
            for _ in 0..5 {
                rate.throttle(1_000_000).await;
            }
        });
        // 5 MB at 10 MB/s from an empty bucket: at least 0.5 s.
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
    }
}
