//! `ringlog user`: SASL users' SCRAM credentials, offline or online.
//!
//! Online (`--bootstrap`), `add`, `delete` and `list` are Kafka's admin
//! requests (KIP-554): AlterUserScramCredentials and
//! DescribeUserScramCredentials, over the same client security flags as
//! `ringlog topic` ([`SecurityOptions`]), so an admin user authenticates
//! with SASL_SSL. `add` salts the password client-side (a random salt,
//! PBKDF2 with the mechanism's hash) and sends only the salted password:
//! the password itself never leaves this process.
//!
//! Offline (`add --data-dir`), the credential is written into a stopped
//! broker's metadata log — how the first user of a SASL listener is
//! created. Why offline: credentials are metadata events, and the metadata log has
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

use crate::kafka_client::{check_error, render_table, str_bytes, BrokerArgs, ClientError};
use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use ringlog_bench::options::SecurityOptions;
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

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user's SCRAM credential (or replace it): online with
    /// --bootstrap, or into a stopped broker's --data-dir.
    Add(AddArgs),
    /// Delete a user's SCRAM credential for one mechanism (online).
    Delete(DeleteArgs),
    /// List users with SCRAM credentials: user, mechanism, iterations (online).
    List(ListArgs),
}

impl std::fmt::Debug for UserCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UserCommand::Add(_) => "add",
            UserCommand::Delete(_) => "delete",
            UserCommand::List(_) => "list",
        })
    }
}

/// The client id of the online commands.
const CLIENT_ID: &str = "ringlog-user";

#[derive(Args)]
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
    /// Data directory of the stopped broker (created if missing); or --bootstrap.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "bootstrap",
        conflicts_with = "bootstrap"
    )]
    data_dir: Option<PathBuf>,
    /// Broker to add the credential on, running (AlterUserScramCredentials); or --data-dir.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
    /// With --bootstrap: connect, read and write timeout.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))]
    timeout_ms: u32,
    /// With --bootstrap: the security protocol, TLS files and SASL login.
    #[command(flatten)]
    security: SecurityOptions,
}

#[derive(Args)]
struct DeleteArgs {
    /// The user name.
    name: String,
    /// The mechanism whose credential is deleted.
    #[arg(long, value_name = "SCRAM-SHA-256|SCRAM-SHA-512", value_parser = Mechanism::parse_scram)]
    mechanism: Mechanism,
    #[command(flatten)]
    broker: BrokerArgs,
}

#[derive(Args)]
struct ListArgs {
    /// Users to list (default: every user).
    names: Vec<String>,
    /// Print JSON: an array of {"user", "mechanism", "iterations"}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Runs `ringlog user`: 0 on success; 1 when the broker runs (offline),
/// the log cannot be written or the broker refuses; 2 for bad input.
/// Errors go to stderr as `ringlog user: ...`.
pub fn run(args: UserArgs) -> ExitCode {
    let outcome = match args.command {
        UserCommand::Add(args) => match (&args.data_dir, &args.bootstrap) {
            (Some(data_dir), _) => add_offline(&args, data_dir).map(|()| {
                format!(
                    "user {:?}: {} credential stored in {}\n",
                    args.name,
                    args.mechanism,
                    data_dir.display()
                )
            }),
            (None, Some(bootstrap)) => add_online(&args, bootstrap),
            (None, None) => unreachable!("clap requires --data-dir or --bootstrap"),
        },
        UserCommand::Delete(args) => delete(&args).map_err(|e| (1, e.to_string())),
        UserCommand::List(args) => list(&args).map_err(|e| (1, e.to_string())),
    };
    match outcome {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("ringlog user: {message}");
            ExitCode::from(code)
        }
    }
}

/// Kafka's wire code of a SCRAM mechanism (KIP-554's `ScramMechanism`).
fn mechanism_code(mechanism: Mechanism) -> i8 {
    match mechanism {
        Mechanism::ScramSha256 => 1,
        Mechanism::ScramSha512 => 2,
        Mechanism::Plain => unreachable!("clap accepts SCRAM mechanisms only"),
    }
}

/// The name of a wire code, or the number for one this client does not know.
fn mechanism_name(code: i8) -> String {
    match code {
        1 => Mechanism::ScramSha256.to_string(),
        2 => Mechanism::ScramSha512.to_string(),
        other => format!("UNKNOWN({other})"),
    }
}

fn add_online(args: &AddArgs, bootstrap: &str) -> Result<String, (u8, String)> {
    check_user_name(&args.name).map_err(|e| (2, e))?;
    let password = read_password(std::io::stdin().lock()).map_err(|e| (2, e))?;
    let salt = sasl::random_salt().map_err(|e| (1, e))?;
    let salted = sasl::salted_password(args.mechanism, &password, &salt, args.iterations)
        .map_err(|e| (2, e))?;
    let broker = BrokerArgs {
        bootstrap: bootstrap.to_string(),
        timeout_ms: args.timeout_ms,
        security: args.security.clone(),
    };
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(str_bytes(&args.name))
        .with_mechanism(mechanism_code(args.mechanism))
        .with_iterations(i32::try_from(args.iterations).expect("checked: at most 16384"))
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted));
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
    alter(&broker, &args.name, &request).map_err(|e| (1, e.to_string()))?;
    Ok(format!(
        "user {:?}: {} credential stored on {bootstrap}\n",
        args.name, args.mechanism
    ))
}

fn delete(args: &DeleteArgs) -> Result<String, ClientError> {
    let deletion = ScramCredentialDeletion::default()
        .with_name(str_bytes(&args.name))
        .with_mechanism(mechanism_code(args.mechanism));
    let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
    alter(&args.broker, &args.name, &request)?;
    Ok(format!(
        "user {:?}: {} credential deleted\n",
        args.name, args.mechanism
    ))
}

/// Sends an AlterUserScramCredentials request about `user` and checks its
/// one result.
fn alter(
    broker: &BrokerArgs,
    user: &str,
    request: &AlterUserScramCredentialsRequest,
) -> Result<(), ClientError> {
    let mut client = broker.connect(CLIENT_ID)?;
    let version = client.version::<AlterUserScramCredentialsRequest>()?;
    let response = client.call(version, request)?;
    let subject = format!("user {user:?}");
    match &response.results[..] {
        [result] if result.user.as_str() == user => {
            check_error(&subject, result.error_code, result.error_message.as_ref())
        }
        _ => Err(ClientError::Protocol {
            address: client.address().to_string(),
            why: format!(
                "AlterUserScramCredentials answered {} results, not one for {subject}",
                response.results.len()
            ),
        }),
    }
}

/// One row of `ringlog user list`.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
struct Row {
    user: String,
    mechanism: String,
    iterations: i32,
}

fn list(args: &ListArgs) -> Result<String, ClientError> {
    let mut client = args.broker.connect(CLIENT_ID)?;
    let version = client.version::<DescribeUserScramCredentialsRequest>()?;
    let users = (!args.names.is_empty()).then(|| {
        args.names
            .iter()
            .map(|name| UserName::default().with_name(str_bytes(name)))
            .collect()
    });
    let request = DescribeUserScramCredentialsRequest::default().with_users(users);
    let response = client.call(version, &request)?;
    check_error(
        client.address(),
        response.error_code,
        response.error_message.as_ref(),
    )?;
    let mut rows = Vec::new();
    for result in &response.results {
        check_error(
            &format!("user {:?}", result.user.as_str()),
            result.error_code,
            result.error_message.as_ref(),
        )?;
        rows.extend(result.credential_infos.iter().map(|info| Row {
            user: result.user.to_string(),
            mechanism: mechanism_name(info.mechanism),
            iterations: info.iterations,
        }));
    }
    Ok(render_rows(&rows, args.json))
}

fn render_rows(rows: &[Row], json: bool) -> String {
    if json {
        let text = serde_json::to_string_pretty(rows).expect("rows serialize");
        return text + "\n";
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.user.clone(),
                r.mechanism.clone(),
                r.iterations.to_string(),
            ]
        })
        .collect();
    render_table(&["USER", "MECHANISM", "ITERATIONS"], &cells)
}

fn add_offline(args: &AddArgs, data_dir: &Path) -> Result<(), (u8, String)> {
    check_user_name(&args.name).map_err(|e| (2, e))?;
    let password = read_password(std::io::stdin().lock()).map_err(|e| (2, e))?;
    let credential =
        sasl::new_credential(args.mechanism, &password, args.iterations).map_err(|e| (2, e))?;
    // A new deployment's first user comes before its first start.
    std::fs::create_dir_all(data_dir).map_err(|e| {
        (
            1,
            format!("cannot create data directory {}: {e}", data_dir.display()),
        )
    })?;
    let _lock = lock_data_dir(data_dir).map_err(|e| (1, e))?;
    let event = MetaEvent::UserScramCredential(UserScramCredential {
        user: args.name.clone(),
        mechanism: args.mechanism.name().to_string(),
        salt: credential.salt,
        iterations: credential.iterations,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
    });
    append(data_dir, event).map_err(|e| (1, e))
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
    fn rows_render_as_a_table_or_json() {
        let rows = [
            Row {
                user: "alice".into(),
                mechanism: mechanism_name(2),
                iterations: 4096,
            },
            Row {
                user: "bob".into(),
                mechanism: mechanism_name(9),
                iterations: 8192,
            },
        ];
        assert_eq!(
            render_rows(&rows, false),
            "USER   MECHANISM      ITERATIONS\nalice  SCRAM-SHA-512  4096\nbob    UNKNOWN(9)     8192\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render_rows(&rows, true)).unwrap();
        assert_eq!(json[0]["user"], "alice");
        assert_eq!(json[1]["iterations"], 8192);
        assert_eq!(mechanism_code(Mechanism::ScramSha256), 1);
    }

    #[test]
    fn add_needs_exactly_one_of_data_dir_and_bootstrap() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            user: UserArgs,
        }
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["user"].iter().chain(args))
                .map(|c| format!("{:?}", c.user.command))
        };
        assert!(parse(&["add", "bob", "--password-stdin"]).is_err());
        assert!(parse(&[
            "add",
            "bob",
            "--password-stdin",
            "--data-dir",
            "d",
            "--bootstrap",
            "h:1"
        ])
        .is_err());
        assert_eq!(
            parse(&["add", "bob", "--password-stdin", "--data-dir", "d"]).unwrap(),
            "add"
        );
        assert_eq!(
            parse(&["add", "bob", "--password-stdin", "--bootstrap", "h:1"]).unwrap(),
            "add"
        );
        assert!(
            parse(&["delete", "bob"]).is_err(),
            "--mechanism is required"
        );
        assert_eq!(
            parse(&["delete", "bob", "--mechanism", "SCRAM-SHA-512"]).unwrap(),
            "delete"
        );
        assert_eq!(parse(&["list", "a", "b", "--json"]).unwrap(), "list");
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
