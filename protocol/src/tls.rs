//! TLS for the Kafka listener and ringlog's own clients: Kafka's
//! `security.protocol` names (a listener's may add SASL, whose exchange is
//! the `sasl` module's), PEM files into rustls configurations, and the
//! principal a client certificate authenticates.
//!
//! Why here: the broker (`ringlog serve`), the admin commands and
//! `ringlog bench` all turn the same flags into rustls configurations, and a
//! bad file must read the same everywhere: the file's name and why it is
//! wrong, at start, before anything listens or connects. This is the one
//! module of the crate that reads files, once, at start; the handshake and
//! the record layer are rustls's, driven by the caller's socket.
//!
//! Every configuration uses rustls's aws-lc-rs provider explicitly (the one
//! object_store's HTTPS client already uses), never a process-wide default,
//! so nothing depends on which crate installed a provider first.

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most certificates read from one PEM file (a chain or a CA bundle); a
/// larger file is refused rather than read without bound.
pub const PEM_CERTIFICATES_MAX: usize = 1024;

/// The transport of Kafka's `security.protocol`: plain TCP or TLS
/// ([`ListenerSecurity`] adds SASL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Kafka over plain TCP.
    Plaintext,
    /// Kafka over TLS.
    Ssl,
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
        })
    }
}

/// Kafka's `security.protocol`, of the broker's listener or of one of
/// ringlog's clients: the transport, and whether clients authenticate
/// with SASL on it (`SASL_PLAINTEXT`, `SASL_SSL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerSecurity {
    /// Plain TCP or TLS.
    pub transport: SecurityProtocol,
    /// Clients authenticate with SASL before any other request.
    pub sasl: bool,
}

impl ListenerSecurity {
    /// Parses Kafka's name (any case).
    ///
    /// # Errors
    ///
    /// Anything but `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn parse(text: &str) -> Result<ListenerSecurity, String> {
        let (transport, sasl) = match text.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => (SecurityProtocol::Plaintext, false),
            "SSL" => (SecurityProtocol::Ssl, false),
            "SASL_PLAINTEXT" => (SecurityProtocol::Plaintext, true),
            "SASL_SSL" => (SecurityProtocol::Ssl, true),
            _ => {
                return Err(format!(
                    "{text:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ))
            }
        };
        Ok(ListenerSecurity { transport, sasl })
    }
}

impl fmt::Display for ListenerSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sasl {
            f.write_str("SASL_")?;
        }
        self.transport.fmt(f)
    }
}

/// A TLS setting that cannot be used: the file (when one is to blame) and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn file_error(what: &str, path: &Path, why: impl fmt::Display) -> TlsError {
    TlsError(format!("{what} {}: {why}", path.display()))
}

/// The crypto every configuration here uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificates of a PEM file, in file order (a chain: the end entity
/// first). `what` names the file's role in errors (`--tls-cert`).
///
/// # Errors
///
/// The file cannot be read, is not PEM, holds no certificate or more than
/// [`PEM_CERTIFICATES_MAX`].
pub fn load_certificates(
    what: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |why: String| file_error(what, path, why);
    let items = CertificateDer::pem_file_iter(path).map_err(|e| fail(pem_reason(e)))?;
    let mut certificates = Vec::new();
    for item in items {
        if certificates.len() == PEM_CERTIFICATES_MAX {
            return Err(fail(format!(
                "more than {PEM_CERTIFICATES_MAX} certificates"
            )));
        }
        certificates.push(item.map_err(|e| fail(pem_reason(e)))?);
    }
    if certificates.is_empty() {
        return Err(fail(
            "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// The file cannot be read or holds no PEM private key.
pub fn load_private_key(what: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => file_error(
            what,
            path,
            "no PEM private key in it (expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
        ),
        e => file_error(what, path, pem_reason(e)),
    })
}

fn pem_reason(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        e => format!("not a valid PEM file: {e}"),
    }
}

/// The certificate authorities of a PEM bundle, as trust anchors.
fn load_roots(what: &str, path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(what, path)? {
        roots
            .add(certificate)
            .map_err(|e| file_error(what, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The broker's TLS files: `--tls-cert`, `--tls-key`, `--tls-client-ca`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The certificate chain, end entity first.
    pub cert: PathBuf,
    /// The private key of the end entity.
    pub key: PathBuf,
    /// With it, clients must present a certificate this CA bundle signed.
    pub client_ca: Option<PathBuf>,
}

impl ServerTlsFiles {
    /// Reads the files into the listener's configuration, built once and
    /// shared by every shard.
    ///
    /// # Errors
    ///
    /// A file that cannot be read or is not what it should be, or a key
    /// that does not belong to the certificate, naming the file and why.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certificates = load_certificates("--tls-cert", &self.cert)?;
        let key = load_private_key("--tls-key", &self.key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("TLS versions: {e}")))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let roots = load_roots("--tls-client-ca", path)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| file_error("--tls-client-ca", path, e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certificates, key).map_err(|e| {
            TlsError(format!(
                "--tls-cert {} with --tls-key {}: {}",
                self.cert.display(),
                self.key.display(),
                key_reason(&e)
            ))
        })?;
        Ok(Arc::new(config))
    }
}

fn key_reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => {
            "the private key does not belong to the certificate".to_string()
        }
        e => e.to_string(),
    }
}

/// A client's TLS files: `--tls-ca`, and `--tls-cert` with `--tls-key` for
/// client authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The CA bundle the broker's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// The client's certificate chain.
    pub cert: Option<PathBuf>,
    /// The client's private key.
    pub key: Option<PathBuf>,
}

impl ClientTlsFiles {
    /// Reads the files into a client configuration.
    ///
    /// # Errors
    ///
    /// No `--tls-ca`, only one of `--tls-cert` and `--tls-key`, or a file
    /// that cannot be used, naming it and why.
    pub fn load(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let Some(ca) = &self.ca else {
            return Err(TlsError(
                "--security-protocol SSL needs --tls-ca FILE: the CA bundle the broker's certificate is checked against".into(),
            ));
        };
        let roots = load_roots("--tls-ca", ca)?;
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| file_error("--tls-ca", ca, e))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("TLS versions: {e}")))?
            .with_webpki_verifier(verifier);
        let config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let certificates = load_certificates("--tls-cert", cert)?;
                let private_key = load_private_key("--tls-key", key)?;
                builder
                    .with_client_auth_cert(certificates, private_key)
                    .map_err(|e| {
                        TlsError(format!(
                            "--tls-cert {} with --tls-key {}: {}",
                            cert.display(),
                            key.display(),
                            key_reason(&e)
                        ))
                    })?
            }
            (Some(_), None) => return Err(TlsError("--tls-cert needs --tls-key".into())),
            (None, Some(_)) => return Err(TlsError("--tls-key needs --tls-cert".into())),
        };
        Ok(Arc::new(config))
    }
}

/// The name the broker's certificate must carry for `address`
/// (`host:port`): the host, a DNS name or an IP address.
///
/// # Errors
///
/// The host is neither.
pub fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = match address.rsplit_once(':') {
        Some((host, _port)) => host,
        None => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("{address}: {host:?} is not a name TLS can verify: {e}"))
}

/// Kafka's principal for a client certificate: `User:` and the subject's
/// distinguished name as RFC 2253 writes it (most specific attribute first,
/// `CN=client,O=Example,C=US`), what Kafka's default principal builder
/// answers for an SSL client. `None` when the certificate does not parse
/// (rustls has verified it, so it does).
pub fn principal(certificate: &[u8]) -> Option<String> {
    subject_rfc2253(certificate).map(|subject| format!("User:{subject}"))
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
const TAG_VERSION: u8 = 0xa0;

/// One DER element: its tag, contents and what follows it. Lengths of up
/// to four bytes, which covers any certificate.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, rest) = rest.split_at(count);
        let length = digits
            .iter()
            .fold(0usize, |length, &digit| (length << 8) | usize::from(digit));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
}

/// The contents of the element `input` starts with, if it has `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = der(input)?;
    (found == tag).then_some((contents, rest))
}

fn subject_rfc2253(certificate: &[u8]) -> Option<String> {
    let (certificate, _) = expect(certificate, TAG_SEQUENCE)?;
    let (tbs, _) = expect(certificate, TAG_SEQUENCE)?;
    let mut rest = tbs;
    if let Some((TAG_VERSION, _, after)) = der(rest) {
        rest = after;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        rest = der(rest)?.2;
    }
    let (mut rdns, _) = expect(rest, TAG_SEQUENCE)?;
    let mut names = Vec::new();
    while !rdns.is_empty() {
        let (mut set, after) = expect(rdns, TAG_SET)?;
        rdns = after;
        let mut attributes = Vec::new();
        while !set.is_empty() {
            let (attribute, after) = expect(set, TAG_SEQUENCE)?;
            set = after;
            let (oid, value) = expect(attribute, TAG_OID)?;
            let (value_tag, value_contents, _) = der(value)?;
            attributes.push(attribute_rfc2253(oid, value, value_tag, value_contents)?);
        }
        names.push(attributes.join("+"));
    }
    names.reverse();
    Some(names.join(","))
}

/// The keywords RFC 2253 (and Java's X500Principal) write by name.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

fn attribute_rfc2253(oid: &[u8], value: &[u8], tag: u8, contents: &[u8]) -> Option<String> {
    let dotted = dotted_oid(oid)?;
    let text = match keyword(&dotted) {
        Some(name) => string_value(tag, contents).map(|text| (name, escape_rfc2253(&text))),
        None => None,
    };
    Some(match text {
        Some((name, text)) => format!("{name}={text}"),
        // As RFC 2253 says for other types: the whole element in hex.
        None => {
            let element_len = value.len() - der(value)?.2.len();
            let hex: String = value[..element_len]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{dotted}=#{hex}")
        }
    })
}

/// The text of a directory string (UTF8String, PrintableString,
/// IA5String, TeletexString as Latin-1, BMPString).
fn string_value(tag: u8, contents: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 => std::str::from_utf8(contents).ok().map(str::to_string),
        0x14 => Some(contents.iter().map(|&b| char::from(b)).collect()),
        0x1e if contents.len().is_multiple_of(2) => {
            let units = contents
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

fn escape_rfc2253(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An OBJECT IDENTIFIER's contents in dotted form; arcs of up to 63 bits.
fn dotted_oid(contents: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut arc: u64 = 0;
    for (i, &byte) in contents.iter().enumerate() {
        if arc > (u64::MAX >> 8) {
            return None;
        }
        arc = (arc << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 != 0 {
            if i + 1 == contents.len() {
                return None;
            }
            continue;
        }
        if arcs.is_empty() {
            let first = (arc / 40).min(2);
            arcs.push(first);
            arcs.push(arc - first * 40);
        } else {
            arcs.push(arc);
        }
        arc = 0;
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test certificates made with openssl (see `tests/tls/README`).
    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/tls")
            .join(name)
    }

    fn server(cert: &str, key: &str, client_ca: Option<&str>) -> ServerTlsFiles {
        ServerTlsFiles {
            cert: data(cert),
            key: data(key),
            client_ca: client_ca.map(data),
        }
    }

    #[test]
    fn security_protocols() {
        assert_eq!(
            ListenerSecurity::parse("PLAINTEXT").map(|l| l.transport),
            Ok(SecurityProtocol::Plaintext)
        );
        for sasl in ["SASL_SSL", "SASL_PLAINTEXT"] {
            let listener = ListenerSecurity::parse(&sasl.to_lowercase()).unwrap();
            assert!(listener.sasl);
            assert_eq!(listener.to_string(), sasl);
        }
        assert_eq!(
            ListenerSecurity::parse("SASL_SSL").map(|l| l.transport),
            Ok(SecurityProtocol::Ssl)
        );
        assert_eq!(ListenerSecurity::parse("ssl").map(|l| l.sasl), Ok(false));
        assert!(ListenerSecurity::parse("TLS").is_err());
    }

    #[test]
    fn good_files_load() {
        server("server.pem", "server.key", None).load().unwrap();
        server("server.pem", "server.key", Some("ca.pem"))
            .load()
            .unwrap();
        ClientTlsFiles {
            ca: Some(data("ca.pem")),
            cert: Some(data("client.pem")),
            key: Some(data("client.key")),
        }
        .load()
        .unwrap();
    }

    #[test]
    fn missing_file_is_named() {
        let err = server("nope.pem", "server.key", None).load().unwrap_err();
        assert!(err.0.starts_with("--tls-cert "), "{err}");
        assert!(err.0.contains("nope.pem"), "{err}");
        assert!(err.0.contains("No such file"), "{err}");
        let err = server("server.pem", "nope.key", None).load().unwrap_err();
        assert!(
            err.0.starts_with("--tls-key ") && err.0.contains("nope.key"),
            "{err}"
        );
        let err = server("server.pem", "server.key", Some("nope-ca.pem"))
            .load()
            .unwrap_err();
        assert!(
            err.0.starts_with("--tls-client-ca ") && err.0.contains("nope-ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn not_pem_is_named() {
        let err = server("README", "server.key", None).load().unwrap_err();
        assert!(
            err.0.contains("README") && err.0.contains("no PEM certificate"),
            "{err}"
        );
        let err = server("server.pem", "README", None).load().unwrap_err();
        assert!(
            err.0.contains("README") && err.0.contains("no PEM private key"),
            "{err}"
        );
        // A certificate where the key should be, and the other way round.
        let err = server("server.pem", "server.pem", None).load().unwrap_err();
        assert!(err.0.contains("no PEM private key"), "{err}");
        let err = server("server.key", "server.key", None).load().unwrap_err();
        assert!(err.0.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let err = server("server.pem", "client.key", None).load().unwrap_err();
        assert!(
            err.0.contains("server.pem") && err.0.contains("client.key"),
            "{err}"
        );
        assert!(err.0.contains("does not belong"), "{err}");
        let err = ClientTlsFiles {
            ca: Some(data("ca.pem")),
            cert: Some(data("client.pem")),
            key: Some(data("server.key")),
        }
        .load()
        .unwrap_err();
        assert!(err.0.contains("does not belong"), "{err}");
    }

    #[test]
    fn client_flags_must_come_together() {
        let err = ClientTlsFiles::default().load().unwrap_err();
        assert!(err.0.contains("--tls-ca"), "{err}");
        let err = ClientTlsFiles {
            ca: Some(data("ca.pem")),
            cert: Some(data("client.pem")),
            key: None,
        }
        .load()
        .unwrap_err();
        assert_eq!(err.0, "--tls-cert needs --tls-key");
    }

    #[test]
    fn principal_is_the_subject_in_rfc2253_order() {
        let certificate = load_certificates("cert", &data("client.pem")).unwrap();
        assert_eq!(
            principal(&certificate[0]).as_deref(),
            Some("User:CN=writer\\, ops,OU=Stream,O=Example,C=US")
        );
    }

    #[test]
    fn principal_never_panics_on_garbage() {
        let certificate = load_certificates("cert", &data("client.pem")).unwrap();
        let bytes = certificate[0].as_ref();
        for len in 0..bytes.len() {
            let _ = principal(&bytes[..len]);
        }
        let mut flipped = bytes.to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = principal(&flipped);
            flipped[i] ^= 0xff;
        }
    }

    #[test]
    fn oids_and_escapes() {
        assert_eq!(dotted_oid(&[0x55, 0x04, 0x03]).as_deref(), Some("2.5.4.3"));
        assert_eq!(
            dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(dotted_oid(&[0x86]), None);
        assert_eq!(escape_rfc2253("#a b "), "\\#a b\\ ");
        assert_eq!(escape_rfc2253("a+b;c"), "a\\+b\\;c");
    }

    #[test]
    fn server_names() {
        assert!(server_name("127.0.0.1:9092").is_ok());
        assert!(server_name("localhost:9092").is_ok());
        assert!(server_name("[::1]:9092").is_ok());
        assert!(server_name("bad host:9092").is_err());
    }
}
