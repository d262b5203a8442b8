//! The `ringlog` binary end to end: files written by the real engine on the
//! real disk, inspected (and corrupted) through the command line.

use glommio::LocalExecutorBuilder;
use ringlog_engine::batch::build_batch;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::meta::{MetaConfig, MetaEvent, MetaLog, PartitionPlaced, TopicCreated};
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, LogConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ringlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(args)
        .output()
        .expect("run ringlog")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes 3 sealed-or-active segments of 40 batches and returns the first segment's path.
fn write_partition(dir: &Path) -> PathBuf {
    let first = dir.join(format!("{:020}.log", 0));
    let dir = dir.to_path_buf();
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let config = LogConfig {
                segment_bytes: 16 * 1024,
                max_payload_bytes: 4096,
                write_buffer_bytes: 16 * 1024,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(DmaStorage, &dir, config, Clock::System)
                .await
                .unwrap();
            for i in 0..40 {
                log.append(&build_batch(1000 + i, &[vec![b'x'; 700].as_slice()]))
                    .await
                    .unwrap();
            }
            assert!(log.log().segments().len() >= 2);
            log.close().await.unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(first.exists());
    first
}

#[test]
fn inspect_segment_verifies_a_sealed_segment() {
    let dir = test_dir("cli-inspect-segment");
    let segment = write_partition(&dir);
    let out = ringlog(&["inspect", "segment", segment.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout {stdout} stderr {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("Partition segment, format v1, base offset 0"),
        "{stdout}"
    );
    assert!(stdout.contains("footer: end offset"), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with("ok: ") && summary.contains("sealed"),
        "{summary}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("offsets 0..1 ") && l.contains("codec 0")),
        "{stdout}"
    );
}

#[test]
fn inspect_segment_names_file_and_byte_of_the_first_corruption() {
    let dir = test_dir("cli-inspect-corrupt");
    let segment = write_partition(&dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    // Frame 0 starts at 64; each frame is 32 + batch bytes. Damage frame 2's payload.
    let frame_len = 32 + u32::from_le_bytes(bytes[64..68].try_into().unwrap()) as usize;
    let frame2 = 64 + 2 * frame_len;
    bytes[frame2 + 100] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();
    let out = ringlog(&["inspect", "segment", segment.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let expected = format!(
        "corrupt {} at byte {frame2}: frame crc32c mismatch",
        segment.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr: {stderr}\nexpected: {expected}"
    );
    // Header damage is reported at byte 0.
    bytes[0] = b'X';
    std::fs::write(&segment, &bytes).unwrap();
    let out = ringlog(&["inspect", "segment", segment.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("at byte 0: bad magic"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inspect_segment_missing_file_is_a_usage_error() {
    let out = ringlog(&[
        "inspect",
        "segment",
        "/nonexistent/00000000000000000000.log",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/00000000000000000000.log"));
}

fn write_meta(data_dir: &Path) {
    let meta_dir = data_dir.join("meta");
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let meta = MetaLog::open(DmaStorage, &meta_dir, MetaConfig::default(), Clock::System)
                .await
                .unwrap();
            meta.append(&MetaEvent::TopicCreated(TopicCreated {
                name: "orders".into(),
                topic_id: [7; 16],
                partitions: 2,
                configs: vec![("retention.ms".into(), "60000".into())],
            }))
            .await
            .unwrap();
            for partition in 0..2 {
                meta.append(&MetaEvent::PartitionPlaced(PartitionPlaced {
                    topic: "orders".into(),
                    partition,
                    shard: partition,
                }))
                .await
                .unwrap();
            }
            meta.snapshot().await.unwrap();
            meta.close().await.unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn inspect_meta_prints_events_and_snapshots() {
    let data = test_dir("cli-inspect-meta");
    write_meta(&data);
    let out = ringlog(&["inspect", "meta", data.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("orders"), "{stdout}");
    assert!(stdout.contains("applied offset 3"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("ok: 1 snapshots, 3 events"),
        "{stdout}"
    );
}

#[test]
fn inspect_meta_reports_a_corrupt_event_frame() {
    let data = test_dir("cli-inspect-meta-corrupt");
    write_meta(&data);
    let segment = data.join("meta/log").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[64 + 40] ^= 0x01; // inside the first event's payload
    std::fs::write(&segment, &bytes).unwrap();
    let out = ringlog(&["inspect", "meta", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("corrupt {} at byte 64", segment.display())),
        "{stderr}"
    );
}

#[test]
fn doctor_passes_on_a_real_disk_directory() {
    let dir = test_dir("cli-doctor");
    let out = ringlog(&[
        "doctor",
        "--data-dir",
        dir.to_str().unwrap(),
        "--shards",
        "2",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for check in ["kernel", "io_uring", "memlock", "o_direct"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("[ OK ]") && l.contains(check)),
            "{check}: {stdout}"
        );
    }
}

#[test]
fn doctor_fails_on_tmpfs() {
    let shm = Path::new("/dev/shm");
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new("/dev/shm").unwrap();
    let is_tmpfs =
        unsafe { libc::statfs(c.as_ptr(), &mut stat) } == 0 && stat.f_type == libc::TMPFS_MAGIC;
    assert!(
        shm.is_dir() && is_tmpfs,
        "this test needs /dev/shm on tmpfs, as on every Linux host"
    );
    let dir = shm.join("ringlog-cli-doctor");
    let out = ringlog(&["doctor", "--data-dir", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[FAIL] o_direct") && l.contains("tmpfs")),
        "{stdout}"
    );
}
