//! `ringlog user add`: SCRAM credentials written into a stopped broker's
//! metadata log — how the first user of a SASL listener is created.
//!
//! Why offline: credentials are metadata events, and the metadata log has
//! one writer, the running broker's controller. With the broker stopped
//! this command is that writer: it opens the log (recovering it as a start
//! would), appends one `UserScramCredential` event durably and closes it,
//! holding the data directory's lock ([`lock_data_dir`]) so a broker
//! cannot start meanwhile, and refusing while one runs.
//!
//! The password is read from stdin (its first line), never from argv, so
//! it stays out of `ps` and shell history. Only its salted SCRAM
//! derivation is stored (`ringlog_protocol::sasl::new_credential`); PLAIN
//! clients are checked against the same credential.

use clap::{Args, Subcommand};
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::meta::{MetaConfig, MetaEvent, MetaLog, UserScramCredential};
use ringlog_engine::Clock;
use ringlog_protocol::sasl::{
    self, check_user_name, Mechanism, ITERATIONS_DEFAULT, PASSWORD_BYTES_MAX,
};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The file whose exclusive lock a broker (and `ringlog user add`) holds
/// on its data directory.
pub const DATA_DIR_LOCK_FILE: &str = "lock";

/// `ringlog user ...`.
#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user's SCRAM credential (or replace it) with the broker stopped.
    Add(AddArgs),
}

#[derive(Args, Debug)]
struct AddArgs {
    /// The user name (the principal is User:NAME).
    name: String,
    /// SCRAM mechanism of the credential; PLAIN clients are checked against it too.
    #[arg(
        long,
        value_name = "SCRAM-SHA-256|SCRAM-SHA-512",
        default_value = "SCRAM-SHA-256",
        value_parser = Mechanism::parse_scram
    )]
    mechanism: Mechanism,
    /// PBKDF2 iterations, 4096..=16384.
    #[arg(long, default_value_t = ITERATIONS_DEFAULT)]
    iterations: u32,
    /// Read the password from the first line of stdin (required: passwords never go in argv).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// Data directory of the stopped broker (created if missing).
    #[arg(long, default_value = "./data", env = "RINGLOG_DATA_DIR")]
    data_dir: PathBuf,
}

/// Runs `ringlog user`: 0 on success, 1 when the broker runs or the log
/// cannot be written, 2 for bad input. Errors go to stderr as
/// `ringlog user: ...`.
pub fn run(args: UserArgs) -> ExitCode {
    let UserCommand::Add(args) = args.command;
    match add(&args) {
        Ok(()) => {
            println!(
                "user {:?}: {} credential stored in {}",
                args.name,
                args.mechanism,
                args.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("ringlog user: {message}");
            ExitCode::from(code)
        }
    }
}

fn add(args: &AddArgs) -> Result<(), (u8, String)> {
    check_user_name(&args.name).map_err(|e| (2, e))?;
    let password = read_password(std::io::stdin().lock()).map_err(|e| (2, e))?;
    let credential =
        sasl::new_credential(args.mechanism, &password, args.iterations).map_err(|e| (2, e))?;
    // A new deployment's first user comes before its first start.
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        (
            1,
            format!(
                "cannot create data directory {}: {e}",
                args.data_dir.display()
            ),
        )
    })?;
    let _lock = lock_data_dir(&args.data_dir).map_err(|e| (1, e))?;
    let event = MetaEvent::UserScramCredential(UserScramCredential {
        user: args.name.clone(),
        mechanism: args.mechanism.name().to_string(),
        salt: credential.salt,
        iterations: credential.iterations,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
    });
    append(&args.data_dir, event).map_err(|e| (1, e))
}

/// The password: the first line of `input` without its line end, at most
/// [`PASSWORD_BYTES_MAX`] bytes.
fn read_password(input: impl Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    input
        .take(PASSWORD_BYTES_MAX as u64 + 2)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() || line.len() > PASSWORD_BYTES_MAX {
        return Err(format!(
            "the password (first line of stdin) must be 1-{PASSWORD_BYTES_MAX} bytes"
        ));
    }
    Ok(line.to_vec())
}

/// Takes the exclusive lock on `<data_dir>/lock` that a running broker
/// holds for its lifetime; released when the file is dropped (or the
/// process ends, however it ends).
///
/// # Errors
///
/// The lock is held (a broker runs on this directory), or the file cannot
/// be opened.
pub fn lock_data_dir(data_dir: &Path) -> Result<File, String> {
    let path = data_dir.join(DATA_DIR_LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        return Err(if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!(
                "a ringlog broker is running on {} ({} is locked): stop it first",
                data_dir.display(),
                path.display()
            )
        } else {
            format!("cannot lock {}: {error}", path.display())
        });
    }
    Ok(file)
}

/// Appends `event` durably to the metadata log under `data_dir`, on a
/// one-off glommio executor (the log's storage is io_uring's).
fn append(data_dir: &Path, event: MetaEvent) -> Result<(), String> {
    let meta_dir = data_dir.join("meta");
    let executor = glommio::LocalExecutorBuilder::default()
        .name("ringlog-user")
        .spawn(move || async move {
            let meta = MetaLog::open(DmaStorage, meta_dir, MetaConfig::default(), Clock::System)
                .await
                .map_err(|e| format!("cannot open the metadata log: {e}"))?;
            let appended = meta.append(&event).await;
            let closed = meta.close().await;
            appended.map_err(|e| format!("cannot append the credential: {e}"))?;
            closed.map_err(|e| format!("cannot close the metadata log: {e}"))
        })
        .map_err(|e| format!("cannot start an executor: {e}"))?;
    executor
        .join()
        .map_err(|e| format!("the executor failed: {e:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_the_first_line() {
        assert_eq!(read_password(&b"secret\n"[..]), Ok(b"secret".to_vec()));
        assert_eq!(
            read_password(&b"secret\r\nmore"[..]),
            Ok(b"secret".to_vec())
        );
        assert_eq!(
            read_password(&b"no newline"[..]),
            Ok(b"no newline".to_vec())
        );
        assert!(read_password(&b"\n"[..]).is_err());
        assert!(read_password(&b""[..]).is_err());
        let long = vec![b'x'; PASSWORD_BYTES_MAX + 1];
        assert!(read_password(&long[..]).is_err());
    }

    #[test]
    fn the_data_dir_lock_is_exclusive() {
        let dir = std::env::temp_dir().join(format!("ringlog-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let held = lock_data_dir(&dir).expect("free");
        let err = lock_data_dir(&dir).unwrap_err();
        assert!(err.contains("broker is running"), "{err}");
        drop(held);
        lock_data_dir(&dir).expect("released on drop");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
