//! `ringlog serve` as a process: it refuses to start when a start-up check
//! or a setting fails, and stops cleanly (exit 0) on SIGINT and SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Time a broker gets to start or to stop.
const LIFECYCLE_TIMEOUT: Duration = Duration::from_secs(60);

fn ringlog_serve() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringlog"));
    command.arg("serve");
    // Only what each test sets: no settings leak in from the caller.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RINGLOG_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.env("RINGLOG_LOG", "info");
    command
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

fn is_tmpfs(path: &Path) -> bool {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: plain old data filled in by statfs.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out pointer.
    unsafe { libc::statfs(c_path.as_ptr(), &mut stat) == 0 && stat.f_type == libc::TMPFS_MAGIC }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run ringlog serve")
}

#[test]
fn serve_refuses_a_tmpfs_data_dir() {
    let shm = Path::new("/dev/shm");
    assert!(
        shm.is_dir() && is_tmpfs(shm),
        "this test needs /dev/shm on tmpfs, as on every Linux host"
    );
    let dir = shm.join("ringlog-cli-serve");
    let out = run(ringlog_serve().args(["--data-dir", dir.to_str().unwrap()]));
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("ringlog serve: o_direct: ") && l.contains("tmpfs")),
        "{stderr}"
    );
    assert!(!stderr.contains("starting:"), "{stderr}");
}

#[test]
fn serve_refuses_bad_settings_with_exit_2() {
    let out = run(ringlog_serve().args(["--shards", "many"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "ringlog serve: --shards: \"many\" is not a whole number"
    );
    let out = run(ringlog_serve().env("RINGLOG_CORE_BALANCING", "sometimes"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "ringlog serve: environment variable RINGLOG_CORE_BALANCING: \"sometimes\" is not off, on-change or continuous"
    );

    let out = run(ringlog_serve().args(["--request-memory-bytes-max", "1048576"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "ringlog serve: --request-memory-bytes-max 1048576 is below --max-request-bytes 104857600: a shard could never hold the largest request"
    );
    let out = run(ringlog_serve().env("RINGLOG_MAX_CONNECTIONS", "0"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "ringlog serve: environment variable RINGLOG_MAX_CONNECTIONS: 0 is outside 1..=1048576"
    );

    let dir = test_dir("cli-serve-config");
    let file = dir.join("ringlog.toml");
    std::fs::write(&file, "shard = 2\n").unwrap();
    let out = run(ringlog_serve().env("RINGLOG_CONFIG", &file));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "ringlog serve: config file {}: unknown key \"shard\"",
            file.display()
        )),
        "{stderr}"
    );

    let missing = dir.join("missing.toml");
    let out = run(ringlog_serve().args(["--config", missing.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "ringlog serve: cannot read config file {}:",
            missing.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_refuses_unusable_tls_files_with_exit_1() {
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/tls");
    let dir = test_dir("cli-serve-tls");
    let missing = dir.join("missing.pem");
    let cases = [
        (
            missing.clone(),
            tls.join("server.key"),
            format!("--tls-cert {}: No such file", missing.display()),
        ),
        (
            tls.join("server.pem"),
            tls.join("README"),
            format!(
                "--tls-key {}: no PEM private key",
                tls.join("README").display()
            ),
        ),
        (
            tls.join("server.pem"),
            tls.join("client.key"),
            "the private key does not belong to the certificate".to_string(),
        ),
    ];
    for (cert, key, expected) in cases {
        let out = run(ringlog_serve().args([
            "--data-dir",
            dir.join("data").to_str().unwrap(),
            "--security-protocol",
            "SSL",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("ringlog serve: --tls-"), "{stderr}");
        assert!(stderr.contains(&expected), "{expected:?} in {stderr}");
        assert!(!stderr.contains("starting:"), "{stderr}");
    }
}

#[test]
fn serve_refuses_a_taken_http_address() {
    let dir = test_dir("cli-serve-http-taken");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let out = run(ringlog_serve().args([
        "--data-dir",
        dir.to_str().unwrap(),
        "--shards",
        "1",
        "--listen",
        &listen,
        "--http",
        &addr,
    ]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "ringlog serve: http: cannot serve metrics and the admin API on {addr}: "
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("starting:"), "{stderr}");
}

/// Credentials for S3 tests: set, so that nothing looks further for them
/// (the instance metadata endpoint), though no request gets that far.
const AWS_TEST_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

#[test]
fn serve_refuses_an_archive_bucket_it_cannot_reach() {
    let dir = test_dir("cli-serve-archive-unreachable");
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let out = run(ringlog_serve().envs(AWS_TEST_ENV).args([
        "--data-dir",
        dir.to_str().unwrap(),
        "--shards",
        "1",
        "--listen",
        &listen,
        "--archive",
        "s3://no-such-bucket/prefix",
        "--s3-endpoint",
        &endpoint,
    ]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("ringlog serve: archive: "))
        .unwrap_or_else(|| panic!("no archive check failure in {stderr}"));
    assert!(
        line.contains(&format!(
            "s3://no-such-bucket/prefix at {endpoint}: start-up check: "
        )),
        "{line}"
    );
    assert!(!stderr.contains("starting:"), "{stderr}");
}

#[test]
fn serve_creates_the_default_archive_directory() {
    let (mut child, seen, _rest) = start_broker("cli-serve-archive-default");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-serve-archive-default");
    let archive = dir.join("archive");
    let created = archive.is_dir();
    // SAFETY: signalling our own child process by its id.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = wait_for_exit(&mut child);
    let log = seen.join("\n");
    assert!(created, "{} missing\n{log}", archive.display());
    assert!(
        log.contains(&format!(
            "archive: {}; local.retention.ms default 0",
            archive.display()
        )),
        "{log}"
    );
    // The start-up check's probe object is gone again.
    let left: Vec<_> = std::fs::read_dir(&archive).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{log}");
}

/// Starts a broker on a real-disk data dir and waits for its "starting"
/// line; returns the child and the stderr lines seen so far, with a channel
/// carrying the rest.
fn start_broker(name: &str) -> (Child, Vec<String>, mpsc::Receiver<String>) {
    let dir = test_dir(name);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = ringlog_serve()
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--shards",
            "1",
            "--listen",
            &listen,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringlog serve");
    let stderr = child.stderr.take().unwrap();
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + LIFECYCLE_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(remaining) {
            Ok(line) => {
                let started = line.contains("starting:");
                seen.push(line);
                if started {
                    return (child, seen, receiver);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("broker did not start: {}", seen.join("\n"));
            }
        }
    }
}

fn wait_for_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + LIFECYCLE_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn serve_stops_cleanly_on_sigint_and_sigterm() {
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let (mut child, mut seen, rest) = start_broker(&format!("cli-serve-{name}"));
        // SAFETY: signalling our own child process by its id.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let status = wait_for_exit(&mut child);
        // The child is gone, so its stderr ends and the reader thread with it.
        seen.extend(rest.iter());
        let log = seen.join("\n");
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{name}: {status:?}\n{log}"
        );
        assert!(log.contains(&format!("{name}: shutting down")), "{log}");
    }
}
