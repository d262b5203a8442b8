//! Append-path benchmark on the real disk (custom harness: `harness = false`).
//!
//! Measures, in one run and on one directory:
//!
//! * a raw `O_DIRECT` sequential-write baseline driven straight through
//!   io_uring (2 MiB = the log's default write buffer, and 256 KiB writes;
//!   queue depth 4 and 1), ending with one fdatasync included in the time;
//! * the partition log appending 16 KiB RecordBatch v2 blocks of 16 ~1 KiB
//!   records without per-append durability (one `sync()` at the end,
//!   timed), with 1 and 4 appender tasks, and with a 256 KiB write buffer;
//! * the partition log under `FlushPolicy::Always` (every append waits for
//!   an fdatasync shared by group commit) with 1, 4, 16 and 64 tasks;
//! * the latency of a 4 KiB `O_DIRECT` write + fdatasync pair, appending
//!   (the file grows, as the active segment does) and overwriting.
//!
//! The cases run in interleaved rounds (every case once per round), so a
//! slow phase of a shared disk hits the baseline and the log alike. Each
//! figure is the median over rounds with min and max; each log/raw ratio is
//! taken within a round against the faster raw run of the same write size,
//! then the median. MB = 10^6 bytes. Run with
//! `cargo bench -p ringlog-engine --bench append`.
//!
//! Environment:
//!
//! | variable                   | default                     | meaning                                  |
//! |----------------------------|-----------------------------|------------------------------------------|
//! | `RINGLOG_BENCH_DIR`        | `<workspace>/target/bench-append` | directory on the disk to measure   |
//! | `RINGLOG_BENCH_BYTES`      | 1 GiB                       | bytes per throughput run                 |
//! | `RINGLOG_BENCH_RUNS`       | 3                           | rounds (runs per case)                   |
//! | `RINGLOG_BENCH_SYNC_SECS`  | 2                           | duration of one `acks=all` run           |
//! | `RINGLOG_BENCH_FSYNC_ITERS`| 2000                        | write+fdatasync pairs for the latency    |
//! | `RINGLOG_BENCH_ONLY`       | (all)                       | comma list of `raw,log,acks,fsync`       |

use glommio::LocalExecutorBuilder;
use io_uring::{opcode, types, IoUring};
use ringlog_engine::aligned::AlignedBuf;
use ringlog_engine::batch::build_batch;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, FlushPolicy, LogConfig, LogStats};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TMPFS_MAGIC: i64 = 0x0102_1994;
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const BATCH_BYTES: usize = 16 * KIB;
const RECORDS_PER_BATCH: usize = 16;
const DISTINCT_BATCHES: usize = 64;
const RAW_QUEUE_DEPTH: usize = 4;
/// Large enough that the default 1 GiB run never rolls (payload plus frame
/// headers exceed 1 GiB), below the 4 GiB limit of index positions.
const SEGMENT_BYTES: u64 = (4 << 30) - (64 << 20);

struct Settings {
    dir: PathBuf,
    total_bytes: u64,
    runs: usize,
    sync_run: Duration,
    fsync_iters: usize,
    only: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> Settings {
        let dir = std::env::var_os("RINGLOG_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../target/bench-append"
                ))
            });
        let num = |name: &str, default: u64| -> u64 {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a non-negative integer")),
                Err(_) => default,
            }
        };
        let total_bytes = num("RINGLOG_BENCH_BYTES", 1 << 30);
        assert!(
            total_bytes >= (8 * MIB) as u64,
            "RINGLOG_BENCH_BYTES must be at least 8 MiB"
        );
        Settings {
            dir,
            total_bytes,
            runs: num("RINGLOG_BENCH_RUNS", 3).max(1) as usize,
            sync_run: Duration::from_millis((num("RINGLOG_BENCH_SYNC_SECS", 2) * 1000).max(100)),
            fsync_iters: num("RINGLOG_BENCH_FSYNC_ITERS", 2000).max(10) as usize,
            only: std::env::var("RINGLOG_BENCH_ONLY")
                .ok()
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
        }
    }

    fn wants(&self, part: &str) -> bool {
        match &self.only {
            None => true,
            Some(only) => only.iter().any(|p| p == part),
        }
    }
}

// ---------------------------------------------------------------------------
// Where we are measuring.

struct Machine {
    cores: usize,
    cpu: String,
    kernel: String,
    fs_type: String,
    device: String,
    mount: String,
    scheduler: String,
}

/// Refuses tmpfs (no `O_DIRECT`, and it would measure memory, not a disk).
fn check_not_tmpfs(dir: &Path) {
    let c = CString::new(dir.as_os_str().as_bytes()).expect("path without NUL");
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid out-pointer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        panic!(
            "statfs({}): {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    if st.f_type as i64 == TMPFS_MAGIC {
        eprintln!(
            "error: {} is on tmpfs; this benchmark measures a real disk with O_DIRECT.\n\
             Set RINGLOG_BENCH_DIR to a directory on a disk-backed file system.",
            dir.display()
        );
        std::process::exit(2);
    }
}

fn machine(dir: &Path) -> Machine {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    // The mount holding `dir`: the longest mount point that prefixes it.
    let (mut device, mut mount, mut fs_type) = ("?".to_string(), "?".to_string(), "?".to_string());
    if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
        let mut best = 0;
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 3 {
                continue;
            }
            let mp = Path::new(f[1]);
            if dir.starts_with(mp) && f[1].len() >= best {
                best = f[1].len();
                device = f[0].to_string();
                mount = f[1].to_string();
                fs_type = f[2].to_string();
            }
        }
    }
    let scheduler = device
        .strip_prefix("/dev/")
        .and_then(|d| std::fs::read_to_string(format!("/sys/block/{d}/queue/scheduler")).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into());
    Machine {
        cores,
        cpu,
        kernel,
        fs_type,
        device,
        mount,
        scheduler,
    }
}

// ---------------------------------------------------------------------------
// Statistics.

#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    Spread {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------------------
// Raw O_DIRECT baseline through io_uring.

fn open_direct(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap_or_else(|e| panic!("open O_DIRECT {}: {e}", path.display()))
}

fn wait_one(ring: &mut IoUring) -> Vec<(u64, i32)> {
    ring.submit_and_wait(1).expect("io_uring submit");
    ring.completion()
        .map(|c| (c.user_data(), c.result()))
        .collect()
}

/// Writes `total_bytes` sequentially in `write_bytes` writes with up to
/// `queue_depth` in flight, then one fdatasync; returns the elapsed time of
/// all of it (open excluded).
fn raw_sequential(
    path: &Path,
    total_bytes: u64,
    write_bytes: usize,
    queue_depth: usize,
) -> Duration {
    let file = open_direct(path);
    let fd = types::Fd(file.as_raw_fd());
    let mut bufs: Vec<AlignedBuf> = (0..queue_depth)
        .map(|_| AlignedBuf::zeroed(write_bytes))
        .collect();
    for (i, b) in bufs.iter_mut().enumerate() {
        // Incompressible-ish, non-zero content, like record data.
        for (j, byte) in b.as_mut_slice().iter_mut().enumerate() {
            *byte = (j.wrapping_mul(31) ^ i) as u8 | 1;
        }
    }
    let writes = total_bytes.div_ceil(write_bytes as u64);
    let mut ring = IoUring::new(64).expect("io_uring setup");
    let start = Instant::now();
    let mut next: u64 = 0;
    let mut in_flight = 0usize;
    let submit = |ring: &mut IoUring, slot: usize, index: u64| {
        let sqe = opcode::Write::new(fd, bufs[slot].as_ptr(), write_bytes as u32)
            .offset(index * write_bytes as u64)
            .build()
            .user_data(slot as u64);
        // SAFETY: the buffer outlives the request (we wait for every
        // completion before dropping `bufs`).
        unsafe { ring.submission().push(&sqe).expect("submission queue full") };
    };
    while next < writes && in_flight < queue_depth {
        submit(&mut ring, in_flight, next);
        next += 1;
        in_flight += 1;
    }
    while in_flight > 0 {
        for (slot, res) in wait_one(&mut ring) {
            assert_eq!(
                res, write_bytes as i32,
                "raw write failed or short (result {res})"
            );
            in_flight -= 1;
            if next < writes {
                submit(&mut ring, slot as usize, next);
                next += 1;
                in_flight += 1;
            }
        }
    }
    let sqe = opcode::Fsync::new(fd)
        .flags(types::FsyncFlags::DATASYNC)
        .build()
        .user_data(u64::MAX);
    // SAFETY: no buffers involved.
    unsafe { ring.submission().push(&sqe).expect("submission queue full") };
    let done = wait_one(&mut ring);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1, 0, "fdatasync failed: {}", done[0].1);
    let elapsed = start.elapsed();
    drop(file);
    elapsed
}

/// Latency of `iters` pairs of one 4 KiB `O_DIRECT` write and fdatasync,
/// appending (growing the file, as the log's active segment does) or
/// overwriting block 0. Stops early after 20 s.
fn fsync_latency(path: &Path, iters: usize, append: bool) -> (Vec<f64>, usize) {
    let file = open_direct(path);
    let fd = file.as_raw_fd();
    let mut buf = AlignedBuf::zeroed(4096);
    buf.as_mut_slice().fill(0x5A);
    let mut lat = Vec::with_capacity(iters);
    let budget = Instant::now();
    for i in 0..iters {
        let pos = if append { i as i64 * 4096 } else { 0 };
        let t = Instant::now();
        // SAFETY: valid fd and aligned buffer of 4096 bytes.
        let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast::<libc::c_void>(), 4096, pos) };
        assert_eq!(n, 4096, "pwrite: {}", std::io::Error::last_os_error());
        // SAFETY: valid fd.
        let rc = unsafe { libc::fdatasync(fd) };
        assert_eq!(rc, 0, "fdatasync: {}", std::io::Error::last_os_error());
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if budget.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let n = lat.len();
    lat.sort_by(|a, b| a.total_cmp(b));
    (lat, n)
}

// ---------------------------------------------------------------------------
// The log.

/// `DISTINCT_BATCHES` valid RecordBatch v2 blocks of exactly
/// `BATCH_BYTES`, each holding `RECORDS_PER_BATCH` records of ~1 KiB.
fn prebuilt_batches() -> Vec<Vec<u8>> {
    let ts = Clock::System.now_ms();
    (0..DISTINCT_BATCHES)
        .map(|tag| {
            // 61-byte header + 16 records of (value + 9 bytes of record
            // framing); pad the last value to land on exactly 16 KiB.
            let base = (BATCH_BYTES - 61) / RECORDS_PER_BATCH - 9;
            let mut values: Vec<Vec<u8>> = (0..RECORDS_PER_BATCH)
                .map(|r| {
                    (0..base)
                        .map(|j| (j.wrapping_mul(131) ^ r.wrapping_mul(7) ^ tag) as u8)
                        .collect()
                })
                .collect();
            loop {
                let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
                let batch = build_batch(ts, &refs);
                match batch.len().cmp(&BATCH_BYTES) {
                    std::cmp::Ordering::Equal => return batch,
                    std::cmp::Ordering::Less => values.last_mut().expect("records").push(tag as u8),
                    std::cmp::Ordering::Greater => panic!("batch overshoots {BATCH_BYTES} bytes"),
                }
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Load {
    /// Append this many batches in total (split across tasks), then one
    /// `sync()`.
    Bytes(u64),
    /// Append until the deadline (or the byte cap), each append acked.
    For(Duration, u64),
}

struct LogRun {
    elapsed: Duration,
    stats: LogStats,
    /// Ack latencies in ms (only under `Load::For`), sorted.
    ack_ms: Vec<f64>,
}

fn log_run(
    dir: &Path,
    write_buffer_bytes: usize,
    policy: FlushPolicy,
    tasks: usize,
    load: Load,
    batches: Arc<Vec<Vec<u8>>>,
) -> LogRun {
    let dir = dir.to_path_buf();
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let config = LogConfig {
                flush_policy: policy,
                segment_bytes: SEGMENT_BYTES,
                write_buffer_bytes,
                // A smaller buffer must still hold a largest frame.
                max_payload_bytes: LogConfig::default()
                    .max_payload_bytes
                    .min(write_buffer_bytes / 2),
                ..LogConfig::default()
            };
            let log = Rc::new(
                PartitionLog::open(DmaStorage, &dir, config, Clock::System)
                    .await
                    .expect("open log"),
            );
            let batches = Rc::new(batches);
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let log = log.clone();
                    let batches = batches.clone();
                    glommio::spawn_local(async move {
                        let mut ack_ms = Vec::new();
                        let mut i = t;
                        match load {
                            Load::Bytes(total) => {
                                let count = total / BATCH_BYTES as u64;
                                let mine = count / tasks as u64
                                    + u64::from((t as u64) < count % tasks as u64);
                                for _ in 0..mine {
                                    log.append(&batches[i % DISTINCT_BATCHES])
                                        .await
                                        .expect("append");
                                    i += tasks;
                                }
                            }
                            Load::For(duration, cap) => {
                                let deadline = start + duration;
                                let cap = cap / BATCH_BYTES as u64 / tasks as u64;
                                let mut n = 0;
                                while n < cap {
                                    let t0 = Instant::now();
                                    if t0 >= deadline {
                                        break;
                                    }
                                    log.append(&batches[i % DISTINCT_BATCHES])
                                        .await
                                        .expect("append");
                                    ack_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                                    i += tasks;
                                    n += 1;
                                }
                            }
                        }
                        ack_ms
                    })
                })
                .collect();
            let mut ack_ms = Vec::new();
            for h in handles {
                ack_ms.extend(h.await);
            }
            log.log().sync().await.expect("final sync");
            let elapsed = start.elapsed();
            let stats = log.log().stats();
            let log = Rc::try_unwrap(log).ok().expect("tasks finished");
            log.close().await.expect("close");
            ack_ms.sort_by(|a, b| a.total_cmp(b));
            LogRun {
                elapsed,
                stats,
                ack_ms,
            }
        })
        .expect("spawn executor")
        .join()
        .expect("executor thread")
}

fn fresh_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

// ---------------------------------------------------------------------------
// Cases, rounds and the report.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    /// Raw io_uring `O_DIRECT` writes of `write_bytes`, `qd` in flight.
    Raw { write_bytes: usize, qd: usize },
    /// Log appends without per-append durability, one sync at the end.
    NoSync { buffer: usize, tasks: usize },
    /// Log appends under `FlushPolicy::Always` (acks=all).
    Acks { tasks: usize },
}

struct Sample {
    mbps: f64,
    stats: Option<LogStats>,
    appends_per_s: f64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
}

fn plural(tasks: usize) -> &'static str {
    if tasks == 1 {
        ""
    } else {
        "s"
    }
}

fn size_label(bytes: usize) -> String {
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}

impl Case {
    fn label(&self, default_buffer: usize) -> String {
        match *self {
            Case::Raw { write_bytes, qd } => format!(
                "raw O_DIRECT sequential write ({} writes, qd {qd})",
                size_label(write_bytes)
            ),
            Case::NoSync { buffer, tasks } => format!(
                "log append, no per-append sync ({tasks} task{}{})",
                plural(tasks),
                if buffer == default_buffer {
                    String::new()
                } else {
                    format!(", {} buffer", size_label(buffer))
                }
            ),
            Case::Acks { tasks } => format!(
                "log append, acks=all group commit ({tasks} task{})",
                plural(tasks)
            ),
        }
    }

    /// The write size of the raw runs this case is compared with (the
    /// log's write buffer: the size of its disk writes).
    fn baseline_write_bytes(&self, default_buffer: usize) -> Option<usize> {
        match *self {
            Case::Raw { .. } => None,
            Case::NoSync { buffer, .. } => Some(buffer),
            Case::Acks { .. } => Some(default_buffer),
        }
    }

    fn run(&self, dir: &Path, settings: &Settings, batches: &Arc<Vec<Vec<u8>>>) -> Sample {
        let total = settings.total_bytes;
        match *self {
            Case::Raw { write_bytes, qd } => {
                let path = dir.join("ringlog-bench-raw.dat");
                let elapsed = raw_sequential(&path, total, write_bytes, qd);
                let _ = std::fs::remove_file(&path);
                let written = total.div_ceil(write_bytes as u64) * write_bytes as u64;
                Sample {
                    mbps: mb_per_s(written, elapsed),
                    stats: None,
                    appends_per_s: 0.0,
                    ack_p50_ms: 0.0,
                    ack_p99_ms: 0.0,
                }
            }
            Case::NoSync { buffer, tasks } => {
                let d = fresh_dir(dir, "ringlog-bench-log");
                // Never syncs on its own (nobody calls `maintain`, and the
                // interval is effectively infinite).
                let policy = FlushPolicy::IntervalMs(u64::MAX / 4);
                let r = log_run(
                    &d,
                    buffer,
                    policy,
                    tasks,
                    Load::Bytes(total),
                    batches.clone(),
                );
                let _ = std::fs::remove_dir_all(&d);
                Sample {
                    mbps: mb_per_s(r.stats.append_bytes, r.elapsed),
                    stats: Some(r.stats),
                    appends_per_s: r.stats.appends as f64 / r.elapsed.as_secs_f64(),
                    ack_p50_ms: 0.0,
                    ack_p99_ms: 0.0,
                }
            }
            Case::Acks { tasks } => {
                let d = fresh_dir(dir, "ringlog-bench-acks");
                let buffer = LogConfig::default().write_buffer_bytes;
                let load = Load::For(settings.sync_run, total);
                let r = log_run(
                    &d,
                    buffer,
                    FlushPolicy::Always,
                    tasks,
                    load,
                    batches.clone(),
                );
                let _ = std::fs::remove_dir_all(&d);
                Sample {
                    mbps: mb_per_s(r.stats.append_bytes, r.elapsed),
                    stats: Some(r.stats),
                    appends_per_s: r.stats.appends as f64 / r.elapsed.as_secs_f64(),
                    ack_p50_ms: percentile(&r.ack_ms, 0.50),
                    ack_p99_ms: percentile(&r.ack_ms, 0.99),
                }
            }
        }
    }
}

fn main() {
    // Arguments (`--bench`, filters) are ignored; select with
    // RINGLOG_BENCH_ONLY instead.
    let settings = Settings::from_env();
    std::fs::create_dir_all(&settings.dir)
        .unwrap_or_else(|e| panic!("create {}: {e}", settings.dir.display()));
    let dir = settings.dir.canonicalize().expect("canonical bench dir");
    check_not_tmpfs(&dir);
    let m = machine(&dir);
    let runs = settings.runs;
    let total = settings.total_bytes;
    let default_buffer = LogConfig::default().write_buffer_bytes;
    let small_buffer = 256 * KIB;
    let started = Instant::now();

    let mut cases = Vec::new();
    if settings.wants("raw") {
        for qd in [RAW_QUEUE_DEPTH, 1] {
            for write_bytes in [default_buffer, small_buffer] {
                cases.push(Case::Raw { write_bytes, qd });
            }
        }
    }
    if settings.wants("log") {
        cases.push(Case::NoSync {
            buffer: default_buffer,
            tasks: 1,
        });
        cases.push(Case::NoSync {
            buffer: default_buffer,
            tasks: 4,
        });
        cases.push(Case::NoSync {
            buffer: small_buffer,
            tasks: 1,
        });
    }
    if settings.wants("acks") {
        for tasks in [1, 4, 16, 64] {
            cases.push(Case::Acks { tasks });
        }
    }
    eprintln!(
        "append bench: {total} bytes per throughput run, {runs} rounds of {} cases, in {}",
        cases.len(),
        dir.display()
    );

    // Rounds interleave the cases, so a slow phase of a shared disk hits
    // the raw baseline and the log alike; ratios are taken within a round.
    let batches = Arc::new(prebuilt_batches());
    let mut samples: Vec<Vec<Sample>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..runs {
        for (i, case) in cases.iter().enumerate() {
            let s = case.run(&dir, &settings, &batches);
            eprintln!(
                "  round {}/{runs}: {:<60} {:>8.1} MB/s",
                round + 1,
                case.label(default_buffer),
                s.mbps
            );
            samples[i].push(s);
        }
    }

    let mut fsync_lines = Vec::new();
    if settings.wants("fsync") {
        for append in [true, false] {
            let path = dir.join("ringlog-bench-fsync.dat");
            let (lat, n) = fsync_latency(&path, settings.fsync_iters, append);
            let _ = std::fs::remove_file(&path);
            fsync_lines.push(format!(
                "fdatasync after 4 KiB O_DIRECT {} write: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({n} pairs)",
                if append { "appending" } else { "overwriting" },
                percentile(&lat, 0.50),
                percentile(&lat, 0.99),
                lat[lat.len() - 1],
            ));
        }
    }

    // The table.
    println!();
    println!(
        "machine: {} cores ({}), kernel {}, {} on {} ({} mounted at {}, scheduler {})",
        m.cores,
        m.cpu,
        m.kernel,
        dir.display(),
        m.fs_type,
        m.device,
        m.mount,
        m.scheduler
    );
    println!(
        "MB = 10^6 bytes. Throughput: {total} bytes per run (acks=all: {:.1} s per run), \
         median of {runs} interleaved rounds [min .. max]. Ratio = log MB/s / the faster raw run \
         (qd {RAW_QUEUE_DEPTH} or qd 1) with the log's write size in the same round; median [min .. max] over rounds. \
         Log MB/s count record-batch payload: {BATCH_BYTES}-byte batches of {RECORDS_PER_BATCH} ~1 KiB records.",
        settings.sync_run.as_secs_f64(),
    );
    let width = cases
        .iter()
        .map(|c| c.label(default_buffer).len())
        .max()
        .unwrap_or(0)
        + 1;
    let mut verdict = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let rows = &samples[i];
        let mbps = spread(&rows.iter().map(|s| s.mbps).collect::<Vec<_>>());
        // Against the faster raw run (any queue depth) of the same write
        // size in the same round: the best the disk did right then.
        let base_bytes = case.baseline_write_bytes(default_buffer);
        let raw_idx: Vec<usize> = cases
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, Case::Raw { write_bytes, .. } if Some(*write_bytes) == base_bytes))
            .map(|(j, _)| j)
            .collect();
        let ratio = (!raw_idx.is_empty()).then(|| {
            let per_round: Vec<f64> = rows
                .iter()
                .enumerate()
                .map(|(r, s)| {
                    let best = raw_idx
                        .iter()
                        .map(|&j| samples[j][r].mbps)
                        .fold(0.0, f64::max);
                    s.mbps / best
                })
                .collect();
            spread(&per_round)
        });
        let ratio_text = match (ratio, base_bytes) {
            (Some(r), Some(write_bytes)) => format!(
                "{:.2}x raw({}) [{:.2} .. {:.2}]",
                r.median,
                size_label(write_bytes),
                r.min,
                r.max
            ),
            (None, Some(_)) => "(no raw baseline run)".to_string(),
            _ => String::new(),
        };
        let last = rows.last().and_then(|s| s.stats).unwrap_or_default();
        let extra = match *case {
            Case::Raw { .. } => String::new(),
            Case::NoSync { buffer, tasks } => {
                if let Some(r) = ratio {
                    verdict.push((buffer, tasks, r.median));
                }
                format!(
                    "{ratio_text}  writes {} (avg {:.0} KiB)  fdatasyncs {}",
                    last.writes,
                    last.append_bytes as f64 / last.writes.max(1) as f64 / 1024.0,
                    last.fdatasyncs
                )
            }
            Case::Acks { .. } => {
                let med =
                    |f: fn(&Sample) -> f64| spread(&rows.iter().map(f).collect::<Vec<_>>()).median;
                let per_sync: Vec<f64> = rows
                    .iter()
                    .filter_map(|s| s.stats)
                    .map(|st| st.appends as f64 / st.fdatasyncs.max(1) as f64)
                    .collect();
                format!(
                    "{ratio_text}  {:.0} appends/s  appends/fdatasync {:.1}  ack p50 {:.2} ms  p99 {:.2} ms",
                    med(|s| s.appends_per_s),
                    spread(&per_sync).median,
                    med(|s| s.ack_p50_ms),
                    med(|s| s.ack_p99_ms),
                )
            }
        };
        println!(
            "{:<width$} {:>8.1} MB/s [{:>7.1} .. {:>7.1}]  {}",
            format!("{}:", case.label(default_buffer)),
            mbps.median,
            mbps.min,
            mbps.max,
            extra
        );
    }
    for l in &fsync_lines {
        println!("{l}");
    }
    for (buffer, tasks, x) in verdict {
        println!(
            "target: no-sync append ({tasks} task{}, {} buffer) >= 0.80x raw: {:.2}x {}",
            plural(tasks),
            size_label(buffer),
            x,
            if x >= 0.80 { "PASS" } else { "MISS" }
        );
    }
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
    // Only what this run created; the directory itself only if now empty.
    for name in ["ringlog-bench-raw.dat", "ringlog-bench-fsync.dat"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    for name in ["ringlog-bench-log", "ringlog-bench-acks"] {
        let _ = std::fs::remove_dir_all(dir.join(name));
    }
    let _ = std::fs::remove_dir(&dir);
}
