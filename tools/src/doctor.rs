//! `ringlog doctor`: checks whether this host can run ringlog.
//!
//! ringlog is a thread-per-core engine built on glommio, which does all of its
//! disk and network I/O through io_uring. That design has hard requirements on
//! the host that, when missing, otherwise show up as confusing errors deep
//! inside executor start-up. Each check below explains one of them up front:
//!
//! * **kernel**: glommio documents Linux >= 5.8 as its minimum; older kernels
//!   lack io_uring operations and behaviour its reactor relies on.
//! * **io_uring**: the ring must be creatable (it can be disabled by the
//!   `kernel.io_uring_disabled` sysctl or blocked by a seccomp profile) and
//!   must support every opcode ringlog issues: file reads/writes/fsync,
//!   open/close/statx, socket accept/connect/send/recv, timeouts, cancellation
//!   and polling.
//! * **memlock**: each glommio executor (one per shard) registers buffers with
//!   io_uring, and registered buffers count against `RLIMIT_MEMLOCK`; glommio
//!   needs at least 512 KiB of lockable memory per executor.
//! * **data dir / filesystem / o_direct**: log segments are written with
//!   `O_DIRECT` (bypassing the page cache, with aligned buffers), so the data
//!   directory must be on a filesystem that really supports direct I/O and is
//!   durable. tmpfs either refuses `O_DIRECT` (EINVAL, before Linux 6.6) or
//!   only emulates it on RAM that is lost on reboot, so it is rejected. The
//!   check performs a real aligned write + fdatasync + read-back round trip.
//! * **free space**: reported for information.
//! * **archive**: where sealed segments are archived (`--archive`) must
//!   work before the first segment seals: a local directory is created and
//!   must take a file; an S3 bucket must exist and accept the credentials
//!   for listing, putting and deleting. Otherwise uploads would fail and
//!   retry for as long as the broker runs while local segments pile up.
//!
//! Every check yields a [`Check`] with a [`Verdict`]; nothing here panics on
//! runtime failures: OS errors become `Fail` verdicts carrying the OS error
//! text.

use ringlog_shard::tiered::ArchiveTarget;
use std::ffi::{CStr, CString};
use std::fs::OpenOptions;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Outcome of a single check, so callers (the `doctor` command, `serve`
/// start-up) can decide whether to proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The host meets the requirement.
    Ok,
    /// Works, but is risky or unusual; ringlog can still start.
    Warn,
    /// ringlog cannot run correctly until this is fixed.
    Fail,
}

/// One line of the doctor report: what was checked, the verdict and a
/// human-readable explanation (found values, OS errors, how to fix).
#[derive(Debug, Clone)]
pub struct Check {
    /// Short fixed name of the check, e.g. `"kernel"`.
    pub name: &'static str,
    /// Whether the host passes this check.
    pub verdict: Verdict,
    /// What was found, and on failure why and how to fix it.
    pub detail: String,
}

/// All checks of one doctor run, in the order they were performed.
#[derive(Debug, Clone)]
pub struct Report {
    /// The individual check results.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed (warnings are allowed), i.e. ringlog can start.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.verdict == Verdict::Fail)
    }

    /// Formats the report for a terminal: one aligned line per check plus a
    /// final summary line.
    pub fn render(&self) -> String {
        let name_width_chars = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0)
            .max(NAME_MIN_WIDTH_CHARS)
            + 2;
        let mut out = String::new();
        for check in &self.checks {
            let tag = match check.verdict {
                Verdict::Ok => "[ OK ]",
                Verdict::Warn => "[WARN]",
                Verdict::Fail => "[FAIL]",
            };
            out.push_str(&format!(
                "{tag} {:<name_width_chars$}{}\n",
                check.name, check.detail
            ));
        }
        let fail_count = self.count(Verdict::Fail);
        let warn_count = self.count(Verdict::Warn);
        let total = self.checks.len();
        if fail_count > 0 {
            out.push_str(&format!(
                "FAIL: {fail_count} of {total} checks failed ({}); \
                 ringlog cannot run on this host until the [FAIL] lines are fixed\n",
                plural(warn_count, "warning")
            ));
        } else if warn_count > 0 {
            out.push_str(&format!(
                "OK with warnings: {total} checks, {}; ringlog can run\n",
                plural(warn_count, "warning")
            ));
        } else {
            out.push_str(&format!("OK: all {total} checks passed; ringlog can run\n"));
        }
        out
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }
}

/// Names are padded to at least this width so the layout stays stable when
/// the data-dir checks are skipped.
const NAME_MIN_WIDTH_CHARS: usize = "free space".len();

/// "1 warning", "2 warnings".
fn plural(count: usize, word: &str) -> String {
    if count == 1 {
        format!("{count} {word}")
    } else {
        format!("{count} {word}s")
    }
}

/// Runs every check against this host, with `data_dir` as the ringlog data
/// directory (created if missing), `shards` executors to size memlock for,
/// and `archive` as the archive target (a local directory is created if
/// missing; S3 is asked over the network, one attempt per call).
pub fn run(data_dir: &Path, shards: usize, archive: &ArchiveTarget) -> Report {
    let mut checks = vec![check_kernel(), check_io_uring(), check_memlock(shards)];
    let dir_check = check_data_dir(data_dir);
    let dir_usable = dir_check.verdict != Verdict::Fail;
    checks.push(dir_check);
    if dir_usable {
        checks.push(check_filesystem(data_dir));
        checks.push(check_o_direct(data_dir));
        checks.push(check_free_space(data_dir));
    }
    checks.push(check_archive(archive));
    Report { checks }
}

// ---------------------------------------------------------------- archive

fn check_archive(target: &ArchiveTarget) -> Check {
    let (verdict, detail) = match target {
        ArchiveTarget::Off => (
            Verdict::Ok,
            "off: sealed segments stay on the local disk until retention".to_string(),
        ),
        target => match ringlog_shard::tiered::check(target) {
            Ok(()) => (
                Verdict::Ok,
                format!("{target}: a probe object was put and deleted"),
            ),
            Err(err) => (
                Verdict::Fail,
                format!("{err}; fix --archive (or --s3-endpoint and the AWS_* variables), or set --archive off"),
            ),
        },
    };
    Check {
        name: "archive",
        verdict,
        detail,
    }
}

// ---------------------------------------------------------------- kernel

const KERNEL_MIN_VERSION: (u32, u32) = (5, 8);

fn check_kernel() -> Check {
    // SAFETY: utsname is plain old data; uname fills it in.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a properly sized utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Check {
            name: "kernel",
            verdict: Verdict::Fail,
            detail: format!("uname failed: {}", io::Error::last_os_error()),
        };
    }
    // SAFETY: uname NUL-terminates release within the array.
    let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy();
    kernel_verdict(&release)
}

/// Pure comparison of a `uname -r` string against the glommio minimum.
fn kernel_verdict(release: &str) -> Check {
    let (min_major, min_minor) = KERNEL_MIN_VERSION;
    let version: String = release
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = version.split('.').map(str::parse::<u32>);
    let parsed = match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Some((major, minor)),
        _ => None,
    };
    match parsed {
        Some(found) if found >= KERNEL_MIN_VERSION => Check {
            name: "kernel",
            verdict: Verdict::Ok,
            detail: format!("{version} (>= {min_major}.{min_minor} needed)"),
        },
        Some(_) => Check {
            name: "kernel",
            verdict: Verdict::Fail,
            detail: format!(
                "{version} is too old: glommio needs Linux >= {min_major}.{min_minor}; upgrade the kernel"
            ),
        },
        None => Check {
            name: "kernel",
            verdict: Verdict::Fail,
            detail: format!(
                "cannot parse kernel release {release:?} (>= {min_major}.{min_minor} needed)"
            ),
        },
    }
}

// ---------------------------------------------------------------- io_uring

/// The io_uring opcodes ringlog (via glommio) issues. `fdatasync` is `Fsync`
/// with `IORING_FSYNC_DATASYNC`, so it needs no separate entry.
fn io_uring_opcodes_needed() -> [(&'static str, u8); 15] {
    use io_uring::opcode;
    [
        ("Read", opcode::Read::CODE),
        ("Write", opcode::Write::CODE),
        ("Readv", opcode::Readv::CODE),
        ("Writev", opcode::Writev::CODE),
        ("Fsync", opcode::Fsync::CODE),
        ("OpenAt", opcode::OpenAt::CODE),
        ("Close", opcode::Close::CODE),
        ("Statx", opcode::Statx::CODE),
        ("Accept", opcode::Accept::CODE),
        ("Connect", opcode::Connect::CODE),
        ("Send", opcode::Send::CODE),
        ("Recv", opcode::Recv::CODE),
        ("Timeout", opcode::Timeout::CODE),
        ("AsyncCancel", opcode::AsyncCancel::CODE),
        ("PollAdd", opcode::PollAdd::CODE),
    ]
}

fn check_io_uring() -> Check {
    let ring = match io_uring::IoUring::new(8) {
        Ok(ring) => ring,
        Err(err) => {
            return Check {
                name: "io_uring",
                verdict: Verdict::Fail,
                detail: format!("io_uring_setup failed: {err}{}", io_uring_setup_hint(&err)),
            }
        }
    };
    let mut probe = io_uring::Probe::new();
    if let Err(err) = ring.submitter().register_probe(&mut probe) {
        return Check {
            name: "io_uring",
            verdict: Verdict::Fail,
            detail: format!(
                "cannot probe supported opcodes (IORING_REGISTER_PROBE): {err}; kernel too old?"
            ),
        };
    }
    let needed = io_uring_opcodes_needed();
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(_, code)| !probe.is_supported(*code))
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        Check {
            name: "io_uring",
            verdict: Verdict::Ok,
            detail: format!("all {} needed opcodes supported", needed.len()),
        }
    } else {
        Check {
            name: "io_uring",
            verdict: Verdict::Fail,
            detail: format!(
                "missing opcodes: {} ({} of {} needed are unsupported); upgrade the kernel",
                missing.join(", "),
                missing.len(),
                needed.len()
            ),
        }
    }
}

/// Explains the usual causes of an io_uring_setup failure.
fn io_uring_setup_hint(err: &io::Error) -> String {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .ok();
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "; io_uring is disabled or blocked: check sysctl kernel.io_uring_disabled (now {}) \
             and the container's seccomp profile",
            sysctl.as_deref().unwrap_or("unknown")
        ),
        Some(libc::ENOSYS) => "; this kernel was built without io_uring".to_string(),
        Some(libc::ENOMEM) => {
            "; out of memory or locked memory (RLIMIT_MEMLOCK) for the ring".to_string()
        }
        _ => String::new(),
    }
}

// ---------------------------------------------------------------- memlock

/// glommio needs at least this much lockable memory per executor (shard).
const MEMLOCK_PER_SHARD_BYTES: u64 = 512 * 1024;

/// Locked memory the given number of shards needs.
fn memlock_bytes_needed(shards: usize) -> u64 {
    u64::try_from(shards)
        .unwrap_or(u64::MAX)
        .saturating_mul(MEMLOCK_PER_SHARD_BYTES)
}

fn check_memlock(shards: usize) -> Check {
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rlim) } != 0 {
        return Check {
            name: "memlock",
            verdict: Verdict::Fail,
            detail: format!(
                "getrlimit(RLIMIT_MEMLOCK) failed: {}",
                io::Error::last_os_error()
            ),
        };
    }
    let limit_bytes = if rlim.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(rlim.rlim_cur)
    };
    memlock_verdict(limit_bytes, shards)
}

/// Pure comparison of the soft `RLIMIT_MEMLOCK` (`None` = unlimited) against
/// what `shards` executors need.
fn memlock_verdict(limit_bytes: Option<u64>, shards: usize) -> Check {
    let needed_bytes = memlock_bytes_needed(shards);
    let need = format!(
        "{} needed for {} x {}",
        format_bytes(needed_bytes),
        plural(shards, "shard"),
        format_bytes(MEMLOCK_PER_SHARD_BYTES)
    );
    match limit_bytes {
        None => Check {
            name: "memlock",
            verdict: Verdict::Ok,
            detail: format!("unlimited ({need})"),
        },
        Some(limit) if limit >= needed_bytes => Check {
            name: "memlock",
            verdict: Verdict::Ok,
            detail: format!("{} ({need})", format_bytes(limit)),
        },
        Some(limit) => {
            let needed_kib = needed_bytes.div_ceil(1024);
            Check {
                name: "memlock",
                verdict: Verdict::Fail,
                detail: format!(
                    "{} < {need}; raise the locked-memory limit: `ulimit -l {needed_kib}` \
                     (or `ulimit -l unlimited`) in the launching shell, `LimitMEMLOCK={needed_kib}K` \
                     (or infinity) in the systemd unit, or a `<user> - memlock {needed_kib}` line \
                     in /etc/security/limits.conf",
                    format_bytes(limit)
                ),
            }
        }
    }
}

// ---------------------------------------------------------------- data dir

fn check_data_dir(dir: &Path) -> Check {
    let existed = dir.is_dir();
    match std::fs::create_dir_all(dir) {
        Ok(()) => Check {
            name: "data dir",
            verdict: Verdict::Ok,
            detail: format!(
                "{} ({})",
                dir.display(),
                if existed { "exists" } else { "created" }
            ),
        },
        Err(err) => Check {
            name: "data dir",
            verdict: Verdict::Fail,
            detail: format!("cannot create {}: {err}", dir.display()),
        },
    }
}

const FS_TMPFS: u32 = 0x0102_1994;
const FS_EXT: u32 = 0xEF53;
const FS_XFS: u32 = 0x5846_5342;
const FS_BTRFS: u32 = 0x9123_683E;
const FS_OVERLAY: u32 = 0x794C_7630;
const FS_ZFS: u32 = 0x2FC1_2FC1;
const FS_NFS: u32 = 0x6969;

fn path_cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// The statfs magic number of the filesystem holding `path`.
fn fs_magic(path: &Path) -> io::Result<u32> {
    let c_path = path_cstring(path)?;
    // SAFETY: statfs is plain old data; the syscall fills it in.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and valid out pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // f_type is a signed long on some targets; magic numbers are 32-bit.
    Ok(st.f_type as u32)
}

fn fs_name(magic: u32) -> Option<&'static str> {
    match magic {
        FS_TMPFS => Some("tmpfs"),
        FS_EXT => Some("ext4/ext3/ext2"),
        FS_XFS => Some("xfs"),
        FS_BTRFS => Some("btrfs"),
        FS_OVERLAY => Some("overlayfs"),
        FS_ZFS => Some("zfs"),
        FS_NFS => Some("nfs"),
        _ => None,
    }
}

fn fs_label(magic: u32) -> String {
    match fs_name(magic) {
        Some(name) => name.to_string(),
        None => format!("unknown filesystem 0x{magic:X}"),
    }
}

fn check_filesystem(dir: &Path) -> Check {
    let magic = match fs_magic(dir) {
        Ok(magic) => magic,
        Err(err) => {
            return Check {
                name: "filesystem",
                verdict: Verdict::Fail,
                detail: format!("statfs({}) failed: {err}", dir.display()),
            }
        }
    };
    let (verdict, note) = match magic {
        FS_EXT | FS_XFS | FS_BTRFS => (Verdict::Ok, ""),
        FS_TMPFS => (Verdict::Warn, ": RAM-backed, data is lost on reboot"),
        FS_OVERLAY => (
            Verdict::Warn,
            ": container overlay; mount a volume from a real disk for the data dir",
        ),
        FS_NFS => (
            Verdict::Warn,
            ": network filesystem; O_DIRECT and fsync semantics are weaker",
        ),
        FS_ZFS => (
            Verdict::Warn,
            ": O_DIRECT support depends on the OpenZFS version",
        ),
        _ => (Verdict::Warn, ": not a tested filesystem"),
    };
    Check {
        name: "filesystem",
        verdict,
        detail: format!("{}{note}", fs_label(magic)),
    }
}

// ---------------------------------------------------------------- O_DIRECT

/// Size and alignment of the O_DIRECT probe block (covers 512 and 4K sector
/// devices).
const PROBE_BLOCK_BYTES: usize = 4096;
/// Name prefix of the temporary file the O_DIRECT probe creates.
const PROBE_FILE_PREFIX: &str = ".ringlog-doctor-probe-";

static PROBE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A zeroed heap buffer aligned to `PROBE_BLOCK_BYTES`, as O_DIRECT requires.
struct AlignedBlock {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

impl AlignedBlock {
    fn new() -> io::Result<Self> {
        let layout = std::alloc::Layout::from_size_align(PROBE_BLOCK_BYTES, PROBE_BLOCK_BYTES)
            .map_err(|e| io::Error::other(format!("bad layout: {e}")))?;
        // SAFETY: layout has non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = std::ptr::NonNull::new(raw)
            .ok_or_else(|| io::Error::other("aligned allocation failed"))?;
        Ok(Self { ptr, layout })
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr points to layout.size() initialised (zeroed) bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with exactly this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Removes the probe file if the probe bails out early.
struct RemoveOnDrop<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

fn o_direct_fail(detail: String) -> Check {
    Check {
        name: "o_direct",
        verdict: Verdict::Fail,
        detail,
    }
}

const REAL_DISK_ADVICE: &str = "put the data dir on a real disk filesystem such as ext4 or xfs";

/// Real O_DIRECT round trip in `dir`: aligned write, fdatasync, aligned
/// read-back and compare, then remove the probe file.
fn check_o_direct(dir: &Path) -> Check {
    let magic = fs_magic(dir).ok();
    let on_tmpfs = magic == Some(FS_TMPFS);
    let fs_desc = magic
        .map(fs_label)
        .unwrap_or_else(|| "unknown filesystem".to_string());

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seq = PROBE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(
        "{PROBE_FILE_PREFIX}{}-{nanos}-{seq}",
        std::process::id()
    ));

    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
    {
        Ok(file) => file,
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            let what = if on_tmpfs {
                format!(
                    "{} is on tmpfs, which does not support O_DIRECT",
                    dir.display()
                )
            } else {
                format!("{} ({fs_desc}) does not support O_DIRECT", dir.display())
            };
            return o_direct_fail(format!(
                "open(O_DIRECT) failed: {err}: {what}; {REAL_DISK_ADVICE}"
            ));
        }
        Err(err) => {
            return o_direct_fail(format!(
                "cannot create probe file {}: {err}",
                path.display()
            ))
        }
    };
    let mut guard = RemoveOnDrop {
        path: &path,
        armed: true,
    };

    let mut written = match AlignedBlock::new() {
        Ok(block) => block,
        Err(err) => return o_direct_fail(format!("probe buffer: {err}")),
    };
    let salt = (nanos as u64).wrapping_add(seq) as u8;
    for (i, byte) in written.as_mut_slice().iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(31).wrapping_add(salt);
    }
    match file.write_at(written.as_slice(), 0) {
        Ok(n) if n == PROBE_BLOCK_BYTES => {}
        Ok(n) => {
            return o_direct_fail(format!(
                "short O_DIRECT write: {n} of {PROBE_BLOCK_BYTES} bytes on {fs_desc}"
            ))
        }
        Err(err) => {
            return o_direct_fail(format!(
                "aligned O_DIRECT write failed on {fs_desc}: {err}; {REAL_DISK_ADVICE}"
            ))
        }
    }
    // SAFETY: fd is valid for the lifetime of `file`.
    if unsafe { libc::fdatasync(file.as_raw_fd()) } != 0 {
        return o_direct_fail(format!(
            "fdatasync failed on {fs_desc}: {}",
            io::Error::last_os_error()
        ));
    }
    let mut read_back = match AlignedBlock::new() {
        Ok(block) => block,
        Err(err) => return o_direct_fail(format!("probe buffer: {err}")),
    };
    match file.read_at(read_back.as_mut_slice(), 0) {
        Ok(n) if n == PROBE_BLOCK_BYTES => {}
        Ok(n) => {
            return o_direct_fail(format!(
                "short O_DIRECT read: {n} of {PROBE_BLOCK_BYTES} bytes on {fs_desc}"
            ))
        }
        Err(err) => {
            return o_direct_fail(format!(
                "aligned O_DIRECT read failed on {fs_desc}: {err}; {REAL_DISK_ADVICE}"
            ))
        }
    }
    if read_back.as_slice() != written.as_slice() {
        return o_direct_fail(format!(
            "O_DIRECT read-back differs from what was written on {fs_desc}; \
             the storage is not trustworthy"
        ));
    }
    drop(file);
    guard.armed = false;
    if let Err(err) = std::fs::remove_file(&path) {
        return Check {
            name: "o_direct",
            verdict: Verdict::Warn,
            detail: format!(
                "round trip ok, but cannot remove probe file {}: {err}",
                path.display()
            ),
        };
    }

    if on_tmpfs {
        // Since Linux 6.6 tmpfs accepts O_DIRECT, but it is only emulated on
        // RAM: no real direct I/O and nothing survives a reboot.
        return o_direct_fail(format!(
            "{} is on tmpfs: O_DIRECT is only emulated there and data lives in RAM \
             (lost on reboot); {REAL_DISK_ADVICE}",
            dir.display()
        ));
    }
    Check {
        name: "o_direct",
        verdict: Verdict::Ok,
        detail: format!(
            "{PROBE_BLOCK_BYTES}-byte aligned write + fdatasync + read-back ok on {fs_desc}"
        ),
    }
}

// ---------------------------------------------------------------- free space

fn check_free_space(dir: &Path) -> Check {
    let free = path_cstring(dir).and_then(|c_path| {
        // SAFETY: statvfs is plain old data; the syscall fills it in.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid NUL-terminated path and valid out pointer.
        if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let block_bytes = st.f_frsize as u64;
        Ok((
            (st.f_bavail as u64).saturating_mul(block_bytes),
            (st.f_blocks as u64).saturating_mul(block_bytes),
        ))
    });
    match free {
        Ok((free_bytes, total_bytes)) => Check {
            name: "free space",
            verdict: Verdict::Ok,
            detail: format!(
                "{} available of {}",
                format_bytes(free_bytes),
                format_bytes(total_bytes)
            ),
        },
        Err(err) => Check {
            name: "free space",
            verdict: Verdict::Warn,
            detail: format!("statvfs({}) failed: {err}", dir.display()),
        },
    }
}

/// Binary-unit size, exact when whole ("2 MiB"), else one decimal ("1.5 GiB").
fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scale: u64 = 1;
    while unit + 1 < UNITS.len() && bytes / scale >= 1024 {
        scale *= 1024;
        unit += 1;
    }
    // Written without `%` so clippy's is_multiple_of hint (Rust 1.87+) stays
    // quiet regardless of the workspace MSRV.
    if bytes / scale * scale == bytes {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn real_disk_test_dir() -> PathBuf {
        match std::env::var("RINGLOG_TEST_DIR") {
            Ok(dir) => PathBuf::from(dir),
            Err(_) => PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/doctor-test"
            )),
        }
    }

    fn probe_files_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("read test dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(PROBE_FILE_PREFIX))
            .collect()
    }

    #[test]
    fn o_direct_ok_on_real_disk_and_probe_file_removed() {
        let dir = real_disk_test_dir();
        std::fs::create_dir_all(&dir).expect("create test dir");
        let check = check_o_direct(&dir);
        assert_eq!(
            check.verdict,
            Verdict::Ok,
            "O_DIRECT probe in {} (set RINGLOG_TEST_DIR to a dir on a real disk): {}",
            dir.display(),
            check.detail
        );
        assert!(
            probe_files_in(&dir).is_empty(),
            "probe file left behind in {}",
            dir.display()
        );
    }

    #[test]
    fn o_direct_fails_on_tmpfs() {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            eprintln!("skipping o_direct_fails_on_tmpfs: /dev/shm does not exist");
            return;
        }
        match fs_magic(shm) {
            Ok(FS_TMPFS) => {}
            Ok(other) => {
                eprintln!(
                    "skipping o_direct_fails_on_tmpfs: /dev/shm is {}, not tmpfs",
                    fs_label(other)
                );
                return;
            }
            Err(err) => {
                eprintln!("skipping o_direct_fails_on_tmpfs: statfs(/dev/shm) failed: {err}");
                return;
            }
        }
        let dir = shm.join("ringlog-doctor-test");
        std::fs::create_dir_all(&dir).expect("create tmpfs test dir");
        let check = check_o_direct(&dir);
        let leftovers = probe_files_in(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(check.verdict, Verdict::Fail, "detail: {}", check.detail);
        assert!(check.detail.contains("tmpfs"), "detail: {}", check.detail);
        assert!(check.detail.contains("ext4"), "detail: {}", check.detail);
        assert!(
            leftovers.is_empty(),
            "probe file left behind: {leftovers:?}"
        );
    }

    #[test]
    fn memlock_need_for_four_shards_is_two_mib() {
        assert_eq!(memlock_bytes_needed(4), 2 * 1024 * 1024);
    }

    #[test]
    fn memlock_verdict_compares_limit_with_need() {
        let need = memlock_bytes_needed(4);
        let low = memlock_verdict(Some(need - 1), 4);
        assert_eq!(low.verdict, Verdict::Fail, "{}", low.detail);
        assert!(low.detail.contains("ulimit -l"), "{}", low.detail);
        assert!(low.detail.contains("LimitMEMLOCK="), "{}", low.detail);
        assert!(
            low.detail.contains("/etc/security/limits.conf"),
            "{}",
            low.detail
        );
        assert!(low.detail.contains("2 MiB"), "{}", low.detail);
        assert_eq!(memlock_verdict(Some(need), 4).verdict, Verdict::Ok);
        let unlimited = memlock_verdict(None, 4);
        assert_eq!(unlimited.verdict, Verdict::Ok);
        assert!(unlimited.detail.contains("unlimited"));
    }

    #[test]
    fn kernel_verdict_parses_release() {
        let ok = kernel_verdict("6.18.44-fc-v669");
        assert_eq!(ok.verdict, Verdict::Ok);
        assert!(ok.detail.starts_with("6.18.44 "), "{}", ok.detail);
        assert_eq!(kernel_verdict("5.8.0").verdict, Verdict::Ok);
        assert_eq!(kernel_verdict("5.4.0-150-generic").verdict, Verdict::Fail);
        assert_eq!(kernel_verdict("garbage").verdict, Verdict::Fail);
    }

    #[test]
    fn render_aligns_and_summarises() {
        let report = Report {
            checks: vec![
                Check {
                    name: "kernel",
                    verdict: Verdict::Ok,
                    detail: "6.18.44 (>= 5.8 needed)".to_string(),
                },
                Check {
                    name: "free space",
                    verdict: Verdict::Fail,
                    detail: "x".to_string(),
                },
            ],
        };
        assert!(!report.passed());
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "[ OK ] kernel      6.18.44 (>= 5.8 needed)");
        assert_eq!(lines[1], "[FAIL] free space  x");
        assert!(lines[2].starts_with("FAIL: 1 of 2 checks failed"));
    }

    #[test]
    fn format_bytes_units() {
        assert_eq!(format_bytes(512 * 1024), "512 KiB");
        assert_eq!(format_bytes(2 * 1024 * 1024), "2 MiB");
        assert_eq!(format_bytes(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(format_bytes(100), "100 B");
    }
}
