//! Helpers shared by the custom-harness benchmarks: settings from the
//! environment and where on the disk to run.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
