//! Helpers shared by the custom-harness benchmarks: settings from the
//! environment, whether to run at all, where on the disk to run, and the
//! median/min/max summary of timed runs. One copy, so every benchmark
//! selects, places and summarises the same way.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

const TMPFS_MAGIC: i64 = 0x0102_1994;

/// A whole-number setting from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `RINGLOG_BENCH_DIR`, or `<target>/tmp/<name>`.
pub fn bench_dir(name: &str) -> PathBuf {
    std::env::var_os("RINGLOG_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name))
}

/// Refuses tmpfs: `O_DIRECT` does not work there, and it is not a disk.
pub fn check_not_tmpfs(dir: &Path) {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("path without NUL");
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `fs` a writable statfs.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut fs) };
    assert_eq!(rc, 0, "statfs {}", dir.display());
    assert!(
        fs.f_type as i64 != TMPFS_MAGIC,
        "{} is on tmpfs; set RINGLOG_BENCH_DIR to a real disk",
        dir.display()
    );
}

/// Whether the benchmark `name` runs: `cargo bench` passes `--bench`, and
/// a filter argument may follow; any other filter selects another bench.
pub fn selected(name: &str) -> bool {
    !std::env::args()
        .skip(1)
        .any(|a| a != "--bench" && !a.starts_with('-') && !name.contains(&a))
}

/// [`bench_dir`] emptied of an earlier run, created, and checked to be on
/// a real disk.
pub fn fresh_bench_dir(name: &str) -> PathBuf {
    let dir = bench_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    check_not_tmpfs(&dir);
    dir
}

/// The median, fastest and slowest of a measurement's timed runs.
pub struct Spread {
    /// The middle run (the upper one of an even count).
    pub median: Duration,
    /// The fastest run.
    pub min: Duration,
    /// The slowest run.
    pub max: Duration,
    /// How many runs.
    pub runs: usize,
}

impl Spread {
    /// Summarises `runs`, which must not be empty.
    pub fn of(mut runs: Vec<Duration>) -> Spread {
        assert!(!runs.is_empty(), "at least one timed run");
        runs.sort();
        Spread {
            median: runs[runs.len() / 2],
            min: runs[0],
            max: runs[runs.len() - 1],
            runs: runs.len(),
        }
    }
}
