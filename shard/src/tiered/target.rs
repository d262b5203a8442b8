//! Where archives go: `--archive off`, a local directory (the default,
//! `<data-dir>/archive`), or `s3://bucket[/prefix]` with an optional
//! `--s3-endpoint` for S3-compatible servers.
//!
//! Parsing checks everything that can be checked without I/O, so a typo
//! fails at start-up with the value in the message rather than as the
//! first upload's error minutes later; [`super::store::check`] then
//! checks what needs the store itself (the bucket exists, the
//! credentials are accepted, the directory is writable).

use object_store::path::Path as ObjectPath;
use std::fmt;
use std::path::{Path, PathBuf};

/// The local directory under the data directory that holds archives when
/// `--archive` is not given.
pub const ARCHIVE_DIR_DEFAULT: &str = "archive";

/// Directories of the data directory that the broker owns. An archive
/// directory inside one of them would be taken for broker state (start-up
/// removes unknown directories under `topics/` as orphans).
const DATA_DIRS_RESERVED: [&str; 3] = ["meta", "topics", "cache"];

/// S3's bucket name length limits.
const BUCKET_NAME_BYTES_MIN: usize = 3;
const BUCKET_NAME_BYTES_MAX: usize = 63;

/// Where sealed segments' archives are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveTarget {
    /// Archiving is off: sealed segments stay local until retention.
    Off,
    /// A directory on this host (the embedded default).
    Local {
        /// The directory; created at start-up if missing.
        dir: PathBuf,
    },
    /// An S3 bucket, or an S3-compatible server at `endpoint`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/`
        /// (empty for the bucket's root).
        prefix: String,
        /// `--s3-endpoint`: the server's URL (`http://` or `https://`);
        /// `None` for AWS itself.
        endpoint: Option<String>,
    },
}

impl ArchiveTarget {
    /// The default target of `ringlog serve`: `<data-dir>/archive`.
    pub fn default_for(data_dir: &Path) -> ArchiveTarget {
        ArchiveTarget::Local {
            dir: data_dir.join(ARCHIVE_DIR_DEFAULT),
        }
    }

    /// Parses `--archive` (with `--s3-endpoint`): `off`;
    /// `s3://bucket[/prefix]`; anything else is a local directory.
    ///
    /// Refused: an empty value; a scheme other than `s3://` (a typo such
    /// as `s3:/b` or `gs://b` must not become a local directory named
    /// after it); a bucket name that S3 would refuse; a prefix with empty,
    /// `.` or `..` segments; an endpoint that is not an `http://` or
    /// `https://` URL, or one given for a target that is not S3; a local
    /// directory that contains `data_dir`, or lies inside its `meta/`,
    /// `topics/` or `cache/` (relative paths are compared after joining
    /// them to the working directory).
    pub fn parse(
        archive: &str,
        s3_endpoint: Option<&str>,
        data_dir: &Path,
    ) -> Result<ArchiveTarget, String> {
        if archive.trim().is_empty() {
            return Err("--archive is empty: give off, s3://bucket[/prefix] or a directory".into());
        }
        if let Some(rest) = archive.strip_prefix("s3://") {
            return parse_s3(archive, rest, s3_endpoint);
        }
        if let Some(endpoint) = s3_endpoint {
            return Err(format!(
                "--s3-endpoint {endpoint} is set but --archive {archive} is not an s3:// target"
            ));
        }
        if archive == "off" {
            return Ok(ArchiveTarget::Off);
        }
        if let Some((scheme, _)) = archive.split_once("://") {
            return Err(format!(
                "--archive {archive}: unsupported scheme {scheme}:// (give off, s3://bucket[/prefix] or a directory)"
            ));
        }
        let dir = PathBuf::from(archive);
        check_local_dir(&dir, data_dir)?;
        Ok(ArchiveTarget::Local { dir })
    }
}

fn parse_s3(archive: &str, rest: &str, endpoint: Option<&str>) -> Result<ArchiveTarget, String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    check_bucket(bucket).map_err(|why| format!("--archive {archive}: {why}"))?;
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        check_object_path(prefix)
            .map_err(|why| format!("--archive {archive}: bad prefix {prefix:?}: {why}"))?;
    }
    if let Some(endpoint) = endpoint {
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"));
        if host.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
            return Err(format!(
                "--s3-endpoint {endpoint}: not a URL (give http://host:port or https://host)"
            ));
        }
    }
    Ok(ArchiveTarget::S3 {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        endpoint: endpoint.map(str::to_string),
    })
}

/// S3's rules for new bucket names: 3 to 63 bytes of lower-case letters,
/// digits, `.` and `-`, starting and ending with a letter or digit.
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("no bucket name (give s3://bucket[/prefix])".into());
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(BUCKET_NAME_BYTES_MIN..=BUCKET_NAME_BYTES_MAX).contains(&bucket.len())
        || !bucket.chars().all(allowed)
        || !edge(bucket.chars().next())
        || !edge(bucket.chars().last())
    {
        return Err(format!(
            "bad bucket name {bucket:?}: {BUCKET_NAME_BYTES_MIN} to {BUCKET_NAME_BYTES_MAX} lower-case letters, digits, '.' or '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// An object key or key prefix as the store layer takes it: `/`-separated
/// segments, none empty, `.` or `..`, and written the way the object
/// store would write it back (so a listed key equals the key that was
/// put).
pub(super) fn check_object_path(path: &str) -> Result<ObjectPath, String> {
    let parsed = ObjectPath::parse(path).map_err(|e| e.to_string())?;
    if path.is_empty() || parsed.as_ref() != path {
        return Err("keys are '/'-separated names without a leading or trailing '/' or empty, '.' or '..' segments".into());
    }
    Ok(parsed)
}

fn check_local_dir(dir: &Path, data_dir: &Path) -> Result<(), String> {
    let absolute =
        |path: &Path| std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()));
    let archive = absolute(dir)?;
    let data = absolute(data_dir)?;
    if data.starts_with(&archive) {
        return Err(format!(
            "--archive {}: the archive directory must not contain the data directory {}",
            dir.display(),
            data_dir.display()
        ));
    }
    if let Some(reserved) = DATA_DIRS_RESERVED
        .iter()
        .find(|name| archive.starts_with(data.join(name)))
    {
        return Err(format!(
            "--archive {}: inside the broker's own {reserved}/ directory of {}",
            dir.display(),
            data_dir.display()
        ));
    }
    Ok(())
}

/// How the target is named in logs and errors: `off`, the directory, or
/// `s3://bucket/prefix` (with the endpoint when one is set).
impl fmt::Display for ArchiveTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveTarget::Off => write!(f, "off"),
            ArchiveTarget::Local { dir } => write!(f, "{}", dir.display()),
            ArchiveTarget::S3 {
                bucket,
                prefix,
                endpoint,
            } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{prefix}")?;
                }
                if let Some(endpoint) = endpoint {
                    write!(f, " at {endpoint}")?;
                }
                Ok(())
            }
        }
    }
}
