//! The `ringlog` binary end to end: files written by the real engine on the
//! real disk, inspected (and corrupted) through the command line.

use glommio::LocalExecutorBuilder;
use ringlog_engine::archive::{ArchiveMeta, ArchiveWriter, Footer, MemberKind};
use ringlog_engine::batch::build_batch;
use ringlog_engine::format::{walk_frames, FrameRead, FILE_HEADER_BYTES, FRAME_HEADER_BYTES};
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

/// Archives the first (sealed) segment [`write_partition`] writes, as the
/// uploader will: each frame's payload pushed as stored, the output taken
/// as it grows. Spans of 2 KiB, so the index has several. Returns the
/// archive's path, its footer and the position of each batch.
fn write_archive(dir: &Path) -> (PathBuf, Footer, Vec<u64>) {
    let segment = std::fs::read(write_partition(dir)).unwrap();
    let meta = ArchiveMeta {
        topic_id: [7; 16],
        topic: "orders".into(),
        partition: 2,
    };
    let mut writer = ArchiveWriter::with_index_interval(meta, 2048).unwrap();
    let (mut object, mut positions) = (Vec::new(), Vec::new());
    for (at, found) in walk_frames(&segment, FILE_HEADER_BYTES, usize::MAX) {
        match found {
            FrameRead::Frame(h) if !h.is_footer() => {
                positions.push(object.len() as u64);
                writer
                    .push_batch(&segment[at + FRAME_HEADER_BYTES..at + h.frame_bytes()])
                    .unwrap();
                object.extend(writer.take_output());
            }
            FrameRead::Frame(_) => {}
            other => panic!("a sealed segment ends in its footer: {other:?}"),
        }
    }
    let finished = writer.finish().unwrap();
    object.extend(finished.bytes);
    let path = dir.join("archive.rla");
    std::fs::write(&path, &object).unwrap();
    (path, finished.footer, positions)
}

#[test]
fn inspect_archive_prints_the_footer_and_verifies_every_member() {
    let dir = test_dir("cli-inspect-archive");
    let (path, footer, positions) = write_archive(&dir);
    let out = ringlog(&["inspect", "archive", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(
        stdout.contains(
            "archive, format v1, topic orders (id 07070707070707070707070707070707), partition 2"
        ),
        "{stdout}"
    );
    let batches = positions.len();
    assert_eq!(footer.batch_count, batches as u64);
    assert!(
        stdout.contains(&format!(
            "offsets 0..{batches} ({batches} records in {batches} batches)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "key topics/07070707070707070707070707070707/2/00000000000000000000-{:020}.rla",
            batches - 1
        )),
        "{stdout}"
    );
    for m in &footer.members {
        let line = format!(
            "{:>12}  member {}: {} bytes, crc32c {:#010x}",
            m.position, m.kind, m.len_bytes, m.crc32c
        );
        assert!(stdout.contains(&line), "{line}\n{stdout}");
    }
    assert!(stdout.contains("footer: "), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("ok: {batches} batches in "))
            && summary.ends_with(&format!(
                ", offsets 0..{batches}, 3 members, every crc verified"
            )),
        "{summary}"
    );
    let quiet = ringlog(&["inspect", "archive", "--quiet", path.to_str().unwrap()]);
    assert!(quiet.status.success());
    assert_eq!(text(&quiet.stdout).trim_end(), summary);
}

#[test]
fn inspect_archive_names_the_member_and_byte_of_a_corruption() {
    let dir = test_dir("cli-inspect-archive-corrupt");
    let (path, footer, positions) = write_archive(&dir);
    let good = std::fs::read(&path).unwrap();
    let inspect = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let out = ringlog(&["inspect", "archive", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        text(&out.stderr)
    };
    // A flipped byte in a batch: named by member, and located to the batch.
    let mut bytes = good.clone();
    bytes[positions[3] as usize + 100] ^= 0x40;
    let stderr = inspect(&bytes);
    let expected = format!(
        "corrupt {}: member records at byte {}: record batch: CRC-32C",
        path.display(),
        positions[3]
    );
    assert!(
        stderr.contains(&expected),
        "stderr: {stderr}\nexpected: {expected}"
    );
    // A flipped byte in the time index: its crc, at the member's start.
    let time_index = footer.member(MemberKind::TIME_INDEX).unwrap().position;
    let mut bytes = good.clone();
    bytes[time_index as usize + 2] ^= 0x01;
    let stderr = inspect(&bytes);
    let expected = format!(
        "corrupt {}: member time index at byte {time_index}: crc32c",
        path.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr: {stderr}\nexpected: {expected}"
    );
    // Truncated: the tail is no trailer.
    let cut = good.len() - 10;
    let stderr = inspect(&good[..cut]);
    let expected = format!(
        "corrupt {}: trailer at byte {}: bad magic",
        path.display(),
        cut - 8
    );
    assert!(
        stderr.contains(&expected),
        "stderr: {stderr}\nexpected: {expected}"
    );
    let stderr = inspect(&good[..10]);
    assert!(
        stderr.contains("trailer at byte 10: object ends early"),
        "{stderr}"
    );
}

#[test]
fn inspect_archive_refuses_what_is_not_one_object() {
    let out = ringlog(&["inspect", "archive", "s3://bucket"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("s3://bucket: give s3://bucket/key, the key of one archive object"),
        "{stderr}"
    );
    let out = ringlog(&["inspect", "archive", "gs://bucket/a.rla"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gs://bucket/a.rla: unsupported scheme gs://"),
        "{stderr}"
    );
    let out = ringlog(&[
        "inspect",
        "archive",
        "--s3-endpoint",
        "http://127.0.0.1:9000",
        "/tmp/a.rla",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "--s3-endpoint http://127.0.0.1:9000 is set but /tmp/a.rla is not an s3:// URL"
        ),
        "{stderr}"
    );
    let out = ringlog(&["inspect", "archive", "/nonexistent/a.rla"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/a.rla"));
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
    for check in ["kernel", "io_uring", "memlock", "o_direct", "archive"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("[ OK ]") && l.contains(check)),
            "{check}: {stdout}"
        );
    }
    // The default archive target, created and probed.
    let archive = dir.join("archive");
    assert!(
        stdout.contains(&format!(
            "archive     {}: a probe object was put and deleted",
            archive.display()
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read_dir(&archive).unwrap().count(), 0);
}

#[test]
fn doctor_checks_the_archive_target() {
    let dir = test_dir("cli-doctor-archive");
    let data_dir = dir.to_str().unwrap();
    let out = ringlog(&["doctor", "--data-dir", data_dir, "--archive", "off"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "[ OK ] archive     off: sealed segments stay on the local disk until retention"
        ),
        "{stdout}"
    );
    assert!(!dir.join("archive").exists());

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = Command::new(env!("CARGO_BIN_EXE_ringlog"))
        .args(["doctor", "--data-dir", data_dir])
        .env("RINGLOG_ARCHIVE", "s3://no-such-bucket")
        .env("RINGLOG_S3_ENDPOINT", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!(
            "[FAIL] archive     s3://no-such-bucket at {endpoint}: start-up check: list: unavailable: "
        ))),
        "{stdout}"
    );

    let out = ringlog(&["doctor", "--data-dir", data_dir, "--archive", "s3://"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--archive s3://: no bucket name"),
        "{}",
        text(&out.stderr)
    );
    let out = ringlog(&["doctor", "--data-dir", data_dir, "--s3-endpoint", &endpoint]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is set but --archive is not an s3:// target"),
        "{}",
        text(&out.stderr)
    );
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
