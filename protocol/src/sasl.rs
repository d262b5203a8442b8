//! SASL for the Kafka listener: the mechanisms (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512), salted SCRAM credentials, and the server side of each
//! exchange as a pure state machine over the tokens of SaslAuthenticate.
//!
//! Why here and pure: the router feeds a session the client's tokens and
//! writes back what it returns, so every rule (nonces, proofs, the
//! look-alike refusal of an unknown user) is tested against RFC vectors
//! without a socket, and `ringlog user add` derives credentials with the
//! same function the broker verifies them with.
//!
//! Credentials are Kafka's: per user and SCRAM mechanism a random salt, an
//! iteration count, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`
//! and `ServerKey = HMAC(SaltedPassword, "Server Key")` (RFC 5802 §3); the
//! password itself is never stored. PLAIN checks a password against the
//! same store: salted and hashed with the user's stored parameters, its
//! StoredKey is compared in constant time. Passwords are used as the bytes
//! the client sent (no SASLprep): equal for any ASCII password, which is
//! what Kafka's clients send in practice.
//!
//! An unknown user and a wrong password look the same on the wire: SCRAM
//! answers an unknown user with a salt derived from the name and a
//! per-process secret (stable across attempts) and then fails the proof,
//! with the one message every failure carries.
//!
//! The client side ([`ClientSession`]) is the same kind of state machine,
//! used by ringlog's own clients (`ringlog bench`, `topic`, `group`,
//! `user`) right after connecting: it verifies the server's signature, so
//! a broker that does not hold the credential (or a man in the middle
//! without it) cannot pass for one that does, and it refuses a server
//! nonce that does not extend its own. Testing it against
//! [`ServerSession`] checks both halves of every exchange. The helpers
//! that salt a password client-side ([`salted_password`]) and derive the
//! stored keys from a salted password ([`credential_from_salted`]) serve
//! AlterUserScramCredentials (KIP-554), where only the salted password
//! travels.
//!
//! The crypto is aws-lc-rs's (PBKDF2, HMAC, SHA-2, constant-time compare,
//! the system random generator), the library rustls already runs on here.

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2, rand};
use base64::prelude::{Engine, BASE64_STANDARD};
use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::OnceLock;

pub use ringlog_engine::meta::{
    check_user_name, ScramCredential, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN,
};

/// Default iterations of `ringlog user add`.
pub const ITERATIONS_DEFAULT: u32 = SCRAM_ITERATIONS_MIN;
/// Bytes of a new credential's random salt.
pub const SALT_BYTES: usize = 32;
/// Longest password (bytes).
pub const PASSWORD_BYTES_MAX: usize = 1024;
/// Largest SASL token a client may send; longer ones fail authentication
/// before anything is parsed.
pub const TOKEN_BYTES_MAX: usize = 4096;
/// Bytes of the random part of the server's SCRAM nonce.
const SERVER_NONCE_BYTES: usize = 24;
/// Longest client nonce accepted.
const CLIENT_NONCE_BYTES_MAX: usize = 256;

/// The message of every failed authentication, Kafka's wording: the same
/// for an unknown user, a wrong password and a malformed exchange.
pub fn failure_message(mechanism: Mechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
    )
}

/// A SASL mechanism this broker offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// RFC 7677.
    ScramSha256,
    /// RFC 5802 with SHA-512, as Kafka has it.
    ScramSha512,
    /// RFC 4616: the password in the clear (use it over TLS only).
    Plain,
}

/// `--sasl-mechanisms`' default: every mechanism.
pub const MECHANISMS_DEFAULT: &str = "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN";

impl Mechanism {
    /// Every mechanism, strongest first.
    pub const ALL: [Mechanism; 3] = [
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::Plain,
    ];

    /// The IANA name Kafka clients send (`sasl.mechanism`).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// The mechanism of a name, exactly as clients spell it.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether this is a SCRAM mechanism (one a credential is stored for).
    pub fn is_scram(self) -> bool {
        self != Mechanism::Plain
    }

    /// Parses a stored or command-line SCRAM mechanism name.
    ///
    /// # Errors
    ///
    /// Not `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub fn parse_scram(name: &str) -> Result<Mechanism, String> {
        match Mechanism::from_name(name) {
            Some(m) if m.is_scram() => Ok(m),
            _ => Err(format!("{name:?} is not SCRAM-SHA-256 or SCRAM-SHA-512")),
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Mechanism::ScramSha512 => hmac::HMAC_SHA512,
            _ => hmac::HMAC_SHA256,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Mechanism::ScramSha512 => &digest::SHA512,
            _ => &digest::SHA256,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::ScramSha512 => pbkdf2::PBKDF2_HMAC_SHA512,
            _ => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }

    /// Bytes of this SCRAM mechanism's keys (its hash's output).
    pub fn key_bytes(self) -> usize {
        self.digest().output_len()
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `--sasl-mechanisms`: a comma-separated list of mechanism names,
/// at least one, each once.
///
/// # Errors
///
/// An empty list, an unknown name or one given twice.
pub fn parse_mechanisms(text: &str) -> Result<Vec<Mechanism>, String> {
    let mut mechanisms = Vec::new();
    for name in text.split(',').map(str::trim) {
        let Some(mechanism) = Mechanism::from_name(&name.to_ascii_uppercase()) else {
            return Err(format!(
                "{name:?} is not a SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN)"
            ));
        };
        if mechanisms.contains(&mechanism) {
            return Err(format!("{mechanism} is listed twice"));
        }
        mechanisms.push(mechanism);
    }
    Ok(mechanisms)
}

fn check_password(password: &[u8]) -> Result<(), String> {
    if password.is_empty() || password.len() > PASSWORD_BYTES_MAX {
        return Err(format!("a password is 1-{PASSWORD_BYTES_MAX} bytes"));
    }
    Ok(())
}

/// `SaltedPassword`, `StoredKey` and `ServerKey` of a password.
fn derive(
    mechanism: Mechanism,
    password: &[u8],
    salt: &[u8],
    iterations: NonZeroU32,
) -> ScramCredential {
    let mut salted = vec![0u8; mechanism.key_bytes()];
    pbkdf2::derive(mechanism.pbkdf2(), iterations, salt, password, &mut salted);
    let (stored_key, server_key) = keys(mechanism, &salted);
    ScramCredential {
        salt: salt.to_vec(),
        iterations: iterations.get(),
        stored_key,
        server_key,
    }
}

/// A new credential for `password` with a random salt (what
/// `ringlog user add` stores).
///
/// # Errors
///
/// Not a SCRAM mechanism, iterations outside
/// [`SCRAM_ITERATIONS_MIN`]`..=`[`SCRAM_ITERATIONS_MAX`], an empty or too long
/// password, or no system randomness.
pub fn new_credential(
    mechanism: Mechanism,
    password: &[u8],
    iterations: u32,
) -> Result<ScramCredential, String> {
    if !mechanism.is_scram() {
        return Err(format!("{mechanism} stores no credential"));
    }
    if !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&iterations) {
        return Err(format!(
            "iterations {iterations} outside {SCRAM_ITERATIONS_MIN}..={SCRAM_ITERATIONS_MAX}"
        ));
    }
    check_password(password)?;
    let mut salt = [0u8; SALT_BYTES];
    rand::fill(&mut salt).map_err(|_| "no system randomness for the salt".to_string())?;
    let iterations = NonZeroU32::new(iterations).ok_or("zero iterations")?;
    Ok(derive(mechanism, password, &salt, iterations))
}

/// Per-process secret for the salts of unknown users.
fn unknown_user_secret() -> &'static [u8; 32] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut secret = [0u8; 32];
        // Without randomness the fake salts are still per-name and
        // stable; only their unpredictability suffers.
        let _ = rand::fill(&mut secret);
        secret
    })
}

/// A credential no password matches, shaped like a real one, for a user
/// the store does not have: same salt for the same name every time.
fn unknown_user_credential(mechanism: Mechanism, user: &str) -> ScramCredential {
    let key = hmac::Key::new(hmac::HMAC_SHA256, unknown_user_secret());
    let salt = hmac::sign(&key, format!("{mechanism}\0{user}").as_bytes());
    let mut stored_key = vec![0u8; mechanism.key_bytes()];
    let _ = rand::fill(&mut stored_key);
    ScramCredential {
        salt: salt.as_ref().to_vec(),
        iterations: SCRAM_ITERATIONS_MIN,
        stored_key: stored_key.clone(),
        server_key: stored_key,
    }
}

/// Where a session looks credentials up: the user's credential for a
/// SCRAM mechanism, if stored.
pub trait CredentialStore {
    /// The credential of `user` for `mechanism`.
    fn credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential>;
}

/// What one client token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the next token.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send `reply` (empty for PLAIN).
    Done {
        /// The authenticated user name.
        user: String,
        /// The last server message.
        reply: Vec<u8>,
    },
    /// Authentication failed: answer [`failure_message`], log `reason`
    /// (never a password) with `user` when known.
    Failed {
        /// The user the client named, when it got that far.
        user: Option<String>,
        /// Why, for the log only.
        reason: String,
    },
}

fn failed(user: Option<&str>, reason: impl Into<String>) -> Step {
    Step::Failed {
        user: user.map(str::to_string),
        reason: reason.into(),
    }
}

/// The server side of one authentication exchange.
pub struct ServerSession {
    mechanism: Mechanism,
    state: ScramState,
}

enum ScramState {
    /// Waiting for the client's first token.
    Start,
    /// Server-first sent; waiting for client-final.
    Challenged {
        user: String,
        known: bool,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    /// Finished (done or failed): any further token fails.
    Over,
}

impl ServerSession {
    /// A session for `mechanism`, chosen by SaslHandshake.
    pub fn new(mechanism: Mechanism) -> Self {
        ServerSession {
            mechanism,
            state: ScramState::Start,
        }
    }

    /// The mechanism of this session.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client's next token.
    pub fn step(&mut self, token: &[u8], store: &impl CredentialStore) -> Step {
        let mut nonce = [0u8; SERVER_NONCE_BYTES];
        if rand::fill(&mut nonce).is_err() {
            self.state = ScramState::Over;
            return failed(None, "no system randomness for the nonce");
        }
        self.step_with_nonce(token, store, &BASE64_STANDARD.encode(nonce))
    }

    fn step_with_nonce(
        &mut self,
        token: &[u8],
        store: &impl CredentialStore,
        server_nonce: &str,
    ) -> Step {
        let state = std::mem::replace(&mut self.state, ScramState::Over);
        if token.len() > TOKEN_BYTES_MAX {
            return failed(None, format!("a token over {TOKEN_BYTES_MAX} bytes"));
        }
        match (self.mechanism, state) {
            (Mechanism::Plain, ScramState::Start) => plain(token, store),
            (_, ScramState::Start) => match self.client_first(token, store, server_nonce) {
                Ok((state, challenge)) => {
                    self.state = state;
                    Step::Challenge(challenge)
                }
                Err(step) => step,
            },
            (
                _,
                ScramState::Challenged {
                    user,
                    known,
                    credential,
                    client_first_bare,
                    server_first,
                    nonce,
                },
            ) => {
                let exchange = Exchange {
                    mechanism: self.mechanism,
                    credential: &credential,
                    client_first_bare: &client_first_bare,
                    server_first: &server_first,
                    nonce: &nonce,
                };
                match exchange.client_final(token) {
                    Ok(reply) if known => Step::Done { user, reply },
                    Ok(_) => failed(Some(&user), "unknown user"),
                    Err(reason) if known => failed(Some(&user), reason),
                    Err(_) => failed(Some(&user), "unknown user"),
                }
            }
            (_, ScramState::Over) => failed(None, "a token after the exchange ended"),
        }
    }

    fn client_first(
        &self,
        token: &[u8],
        store: &impl CredentialStore,
        server_nonce: &str,
    ) -> Result<(ScramState, Vec<u8>), Step> {
        let text =
            std::str::from_utf8(token).map_err(|_| failed(None, "client-first is not UTF-8"))?;
        // gs2-header: "n" or "y" (no channel binding), then an optional
        // authzid, then the bare message.
        let mut parts = text.splitn(3, ',');
        let (Some(binding), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(failed(None, "client-first without a GS2 header"));
        };
        if binding != "n" && binding != "y" {
            return Err(failed(None, "channel binding is not supported"));
        }
        let mut fields = bare.split(',');
        let user = match fields.next().and_then(|f| f.strip_prefix("n=")) {
            Some(name) => {
                unescape_name(name).ok_or_else(|| failed(None, "bad user name escape"))?
            }
            None => return Err(failed(None, "client-first without n=")),
        };
        let Some(client_nonce) = fields.next().and_then(|f| f.strip_prefix("r=")) else {
            return Err(failed(Some(&user), "client-first without r="));
        };
        if client_nonce.is_empty()
            || client_nonce.len() > CLIENT_NONCE_BYTES_MAX
            || !client_nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(failed(Some(&user), "bad client nonce"));
        }
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if unescape_name(authzid).as_deref() != Some(user.as_str()) {
                return Err(failed(
                    Some(&user),
                    "an authorization id other than the user",
                ));
            }
        } else if !authzid.is_empty() {
            return Err(failed(Some(&user), "malformed authorization id"));
        }
        check_user_name(&user).map_err(|reason| failed(Some(&user), reason))?;
        let (credential, known) = match store.credential(&user, self.mechanism) {
            Some(credential) => (credential, true),
            None => (unknown_user_credential(self.mechanism, &user), false),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64_STANDARD.encode(&credential.salt),
            credential.iterations
        );
        let challenge = server_first.clone().into_bytes();
        Ok((
            ScramState::Challenged {
                user,
                known,
                credential,
                client_first_bare: bare.to_string(),
                server_first,
                nonce,
            },
            challenge,
        ))
    }
}

/// The messages of a SCRAM exchange so far, for the client-final check.
struct Exchange<'a> {
    mechanism: Mechanism,
    credential: &'a ScramCredential,
    client_first_bare: &'a str,
    server_first: &'a str,
    nonce: &'a str,
}

impl Exchange<'_> {
    /// Verifies client-final's proof; returns server-final.
    fn client_final(&self, token: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(token).map_err(|_| "client-final is not UTF-8")?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or("client-final without a proof")?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or("client-final without c=")?;
        // Without channel binding the client echoes its GS2 header, which
        // for "n,," and "y,," is one of these.
        if binding != "biws" && binding != "eSws" {
            return Err("channel binding data that is not a plain GS2 header".into());
        }
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or("client-final without r=")?;
        if nonce != self.nonce {
            return Err("client-final nonce is not the exchange's".into());
        }
        let proof = BASE64_STANDARD
            .decode(proof)
            .map_err(|_| "proof is not base64")?;
        let keys = self.mechanism.key_bytes();
        if proof.len() != keys {
            return Err("proof of the wrong length".into());
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let stored = hmac::Key::new(self.mechanism.hmac(), &self.credential.stored_key);
        let signature = hmac::sign(&stored, auth_message.as_bytes());
        // ClientKey = proof XOR ClientSignature; it must hash to StoredKey.
        let client_key: Vec<u8> = proof
            .iter()
            .zip(signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        let computed = digest::digest(self.mechanism.digest(), &client_key);
        constant_time::verify_slices_are_equal(computed.as_ref(), &self.credential.stored_key)
            .map_err(|_| "wrong password")?;
        let server = hmac::Key::new(self.mechanism.hmac(), &self.credential.server_key);
        let server_signature = hmac::sign(&server, auth_message.as_bytes());
        Ok(format!("v={}", BASE64_STANDARD.encode(server_signature.as_ref())).into_bytes())
    }
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`, checked against the
/// user's stored SCRAM credential.
fn plain(token: &[u8], store: &impl CredentialStore) -> Step {
    let mut parts = token.split(|&b| b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return failed(None, "PLAIN token is not authzid NUL user NUL password");
    };
    let Ok(user) = std::str::from_utf8(user) else {
        return failed(None, "PLAIN user name is not UTF-8");
    };
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return failed(Some(user), "an authorization id other than the user");
    }
    if let Err(reason) = check_user_name(user).and_then(|()| check_password(password)) {
        return failed(Some(user), reason);
    }
    let stored = [Mechanism::ScramSha256, Mechanism::ScramSha512]
        .into_iter()
        .find_map(|m| store.credential(user, m).map(|c| (m, c)));
    // An unknown user costs the same derivation as a known one.
    let (mechanism, credential, known) = match stored {
        Some((mechanism, credential)) => (mechanism, credential, true),
        None => (
            Mechanism::ScramSha256,
            unknown_user_credential(Mechanism::ScramSha256, user),
            false,
        ),
    };
    let Some(iterations) = NonZeroU32::new(credential.iterations) else {
        return failed(Some(user), "stored credential with zero iterations");
    };
    let derived = derive(mechanism, password, &credential.salt, iterations);
    let matches =
        constant_time::verify_slices_are_equal(&derived.stored_key, &credential.stored_key).is_ok();
    match (known, matches) {
        (true, true) => Step::Done {
            user: user.to_string(),
            reply: Vec::new(),
        },
        (true, false) => failed(Some(user), "wrong password"),
        (false, _) => failed(Some(user), "unknown user"),
    }
}

/// Bytes of the random part of the client's SCRAM nonce (before base64).
const CLIENT_NONCE_BYTES: usize = 24;

/// `SaltedPassword` of a password: what AlterUserScramCredentials carries
/// (KIP-554), derived client-side so the password never leaves the client.
///
/// # Errors
///
/// Not a SCRAM mechanism, iterations outside
/// [`SCRAM_ITERATIONS_MIN`]`..=`[`SCRAM_ITERATIONS_MAX`], an empty or too long
/// password, or an empty salt.
pub fn salted_password(
    mechanism: Mechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, String> {
    if !mechanism.is_scram() {
        return Err(format!("{mechanism} stores no credential"));
    }
    if !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&iterations) {
        return Err(format!(
            "iterations {iterations} outside {SCRAM_ITERATIONS_MIN}..={SCRAM_ITERATIONS_MAX}"
        ));
    }
    check_password(password)?;
    if salt.is_empty() {
        return Err("an empty salt".into());
    }
    let iterations = NonZeroU32::new(iterations).ok_or("zero iterations")?;
    let mut salted = vec![0u8; mechanism.key_bytes()];
    pbkdf2::derive(mechanism.pbkdf2(), iterations, salt, password, &mut salted);
    Ok(salted)
}

/// A random salt of [`SALT_BYTES`] for a new credential.
///
/// # Errors
///
/// No system randomness.
pub fn random_salt() -> Result<Vec<u8>, String> {
    let mut salt = vec![0u8; SALT_BYTES];
    rand::fill(&mut salt).map_err(|_| "no system randomness for the salt".to_string())?;
    Ok(salt)
}

/// The credential the broker stores for a salted password it was sent
/// (AlterUserScramCredentials): the keys RFC 5802 derives from it.
///
/// # Errors
///
/// Not a SCRAM mechanism, or a salted password of the wrong length for
/// the mechanism's hash.
pub fn credential_from_salted(
    mechanism: Mechanism,
    salted_password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<ScramCredential, String> {
    if !mechanism.is_scram() {
        return Err(format!("{mechanism} stores no credential"));
    }
    if salted_password.len() != mechanism.key_bytes() {
        return Err(format!(
            "a {mechanism} salted password is {} bytes, not {}",
            mechanism.key_bytes(),
            salted_password.len()
        ));
    }
    let (stored_key, server_key) = keys(mechanism, salted_password);
    Ok(ScramCredential {
        salt: salt.to_vec(),
        iterations,
        stored_key,
        server_key,
    })
}

/// `StoredKey` and `ServerKey` of a salted password.
fn keys(mechanism: Mechanism, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let key = hmac::Key::new(mechanism.hmac(), salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(mechanism.digest(), client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    (stored_key.as_ref().to_vec(), server_key.as_ref().to_vec())
}

/// What one of ringlog's clients authenticates with: the mechanism, the
/// user and the password (never printed: `Debug` leaves it out).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: Mechanism,
    /// The user name.
    pub user: String,
    /// The password, as the bytes sent (no SASLprep, like the server).
    pub password: Vec<u8>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Checked credentials.
    ///
    /// # Errors
    ///
    /// A user name [`check_user_name`] refuses, or an empty or too long
    /// password.
    pub fn new(
        mechanism: Mechanism,
        user: &str,
        password: Vec<u8>,
    ) -> Result<ClientCredentials, String> {
        check_user_name(user)?;
        check_password(&password)?;
        Ok(ClientCredentials {
            mechanism,
            user: user.to_string(),
            password,
        })
    }
}

/// The client side of one authentication exchange (RFC 4616 PLAIN, RFC
/// 5802/7677 SCRAM), as a pure state machine like [`ServerSession`]:
/// [`ClientSession::first`] is the first token, [`ClientSession::step`]
/// takes each server token and says what to send next, or that the server
/// proved it knows the credential (SCRAM's server signature, verified).
pub struct ClientSession {
    credentials: ClientCredentials,
    state: ClientState,
}

enum ClientState {
    /// Nothing sent yet.
    Start,
    /// PLAIN's one token sent; the server answers with nothing.
    PlainSent,
    /// Client-first sent.
    FirstSent {
        client_first_bare: String,
        client_nonce: String,
    },
    /// Client-final sent; the server must answer with this signature.
    FinalSent { server_signature: Vec<u8> },
    /// Done or failed: any further token fails.
    Over,
}

impl ClientSession {
    /// A session that authenticates as `credentials`.
    pub fn new(credentials: ClientCredentials) -> Self {
        ClientSession {
            credentials,
            state: ClientState::Start,
        }
    }

    /// The first token: PLAIN's `NUL user NUL password`, or SCRAM's
    /// client-first with a random nonce.
    ///
    /// # Errors
    ///
    /// Called twice, or no system randomness.
    pub fn first(&mut self) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; CLIENT_NONCE_BYTES];
        rand::fill(&mut nonce).map_err(|_| "no system randomness for the nonce".to_string())?;
        self.first_with_nonce(&BASE64_STANDARD.encode(nonce))
    }

    fn first_with_nonce(&mut self, client_nonce: &str) -> Result<Vec<u8>, String> {
        if !matches!(self.state, ClientState::Start) {
            self.state = ClientState::Over;
            return Err("the first token was already sent".into());
        }
        let credentials = &self.credentials;
        if credentials.mechanism == Mechanism::Plain {
            self.state = ClientState::PlainSent;
            let mut token =
                Vec::with_capacity(credentials.user.len() + credentials.password.len() + 2);
            token.push(0);
            token.extend_from_slice(credentials.user.as_bytes());
            token.push(0);
            token.extend_from_slice(&credentials.password);
            return Ok(token);
        }
        let client_first_bare = format!("n={},r={client_nonce}", escape_name(&credentials.user));
        let token = format!("n,,{client_first_bare}").into_bytes();
        self.state = ClientState::FirstSent {
            client_first_bare,
            client_nonce: client_nonce.to_string(),
        };
        Ok(token)
    }

    /// Takes the server's next token: `Ok(Some(token))` to send next,
    /// `Ok(None)` when authentication is complete (for SCRAM: the server's
    /// signature verified).
    ///
    /// # Errors
    ///
    /// A malformed server message, a server nonce that does not extend
    /// the client's, iterations outside the accepted range, a server
    /// signature that does not verify, or a token out of turn.
    pub fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let state = std::mem::replace(&mut self.state, ClientState::Over);
        if token.len() > TOKEN_BYTES_MAX {
            return Err(format!("a server token over {TOKEN_BYTES_MAX} bytes"));
        }
        match state {
            ClientState::PlainSent if token.is_empty() => Ok(None),
            ClientState::PlainSent => Err("PLAIN answered with a challenge".into()),
            ClientState::FirstSent {
                client_first_bare,
                client_nonce,
            } => {
                let (client_final, server_signature) =
                    self.client_final(token, &client_first_bare, &client_nonce)?;
                self.state = ClientState::FinalSent { server_signature };
                Ok(Some(client_final))
            }
            ClientState::FinalSent { server_signature } => {
                let text = std::str::from_utf8(token).map_err(|_| "server-final is not UTF-8")?;
                if let Some(error) = text.strip_prefix("e=") {
                    return Err(format!("the server refused: {error}"));
                }
                let verifier = text
                    .split(',')
                    .next()
                    .and_then(|f| f.strip_prefix("v="))
                    .ok_or("server-final without v=")?;
                let verifier = BASE64_STANDARD
                    .decode(verifier)
                    .map_err(|_| "server signature is not base64")?;
                constant_time::verify_slices_are_equal(&verifier, &server_signature).map_err(
                    |_| "the server's signature does not verify: it does not know this credential",
                )?;
                Ok(None)
            }
            ClientState::Start | ClientState::Over => Err("a server token out of turn".into()),
        }
    }

    /// Client-final for server-first, and the server signature it implies.
    fn client_final(
        &self,
        token: &[u8],
        client_first_bare: &str,
        client_nonce: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        let mechanism = self.credentials.mechanism;
        let server_first = std::str::from_utf8(token).map_err(|_| "server-first is not UTF-8")?;
        let mut fields = server_first.split(',');
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or("server-first without r=")?;
        if nonce.len() <= client_nonce.len() || !nonce.starts_with(client_nonce) {
            return Err("the server nonce does not extend the client's".into());
        }
        let salt = fields
            .next()
            .and_then(|f| f.strip_prefix("s="))
            .ok_or("server-first without s=")?;
        let salt = BASE64_STANDARD
            .decode(salt)
            .map_err(|_| "server salt is not base64")?;
        let iterations: u32 = fields
            .next()
            .and_then(|f| f.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or("server-first without a numeric i=")?;
        let salted = salted_password(mechanism, &self.credentials.password, &salt, iterations)?;
        let key = hmac::Key::new(mechanism.hmac(), &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let (stored_key, server_key) = keys(mechanism, &salted);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac::sign(
            &hmac::Key::new(mechanism.hmac(), &stored_key),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = hmac::sign(
            &hmac::Key::new(mechanism.hmac(), &server_key),
            auth_message.as_bytes(),
        );
        Ok((
            format!("{without_proof},p={}", BASE64_STANDARD.encode(proof)).into_bytes(),
            server_signature.as_ref().to_vec(),
        ))
    }
}

/// SaslHandshake version ringlog's clients send: v1, the tokens follow in
/// SaslAuthenticate requests (KIP-152).
pub const CLIENT_HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate version ringlog's clients send (v0 and v1 differ only
/// in the session lifetime answered; v2 is flexible). Fixed, because the
/// exchange runs before ApiVersions.
pub const CLIENT_AUTHENTICATE_VERSION: i16 = 1;
/// Most SaslAuthenticate round trips of one client exchange (SCRAM needs
/// two, PLAIN one).
pub const CLIENT_ROUNDS_MAX: usize = 4;

/// The SaslHandshake a client opens with.
pub fn handshake_request(credentials: &ClientCredentials) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_static_str(credentials.mechanism.name()))
}

/// A client's SaslAuthenticate carrying `token`.
pub fn authenticate_request(token: Vec<u8>) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token))
}

/// How a client names a failed authentication: the user and the
/// mechanism, never the password.
pub fn client_failure(credentials: &ClientCredentials, why: &str) -> String {
    format!(
        "SASL authentication as user {:?} with {} failed: {why}",
        credentials.user, credentials.mechanism
    )
}

/// Checks the broker's SaslHandshake answer.
///
/// # Errors
///
/// The broker refused the mechanism (saying which it offers) or is not in
/// an authentication phase; the message names the user and mechanism.
pub fn check_handshake(
    credentials: &ClientCredentials,
    response: &SaslHandshakeResponse,
) -> Result<(), String> {
    if response.error_code == 0 {
        return Ok(());
    }
    let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
    Err(client_failure(
        credentials,
        &format!(
            "the broker answered SaslHandshake with error {} (it offers: {})",
            response.error_code,
            if offered.is_empty() {
                "nothing".to_string()
            } else {
                offered.join(", ")
            }
        ),
    ))
}

/// The server token of the broker's SaslAuthenticate answer.
///
/// # Errors
///
/// The broker refused: its message, with the user and mechanism.
pub fn check_authenticate(
    credentials: &ClientCredentials,
    response: SaslAuthenticateResponse,
) -> Result<Vec<u8>, String> {
    if response.error_code == 0 {
        return Ok(response.auth_bytes.to_vec());
    }
    let message = response
        .error_message
        .as_ref()
        .map_or("no message", |m| m.as_str());
    Err(client_failure(
        credentials,
        &format!("error {}: {message}", response.error_code),
    ))
}

/// RFC 5802's saslname escape: `,` is `=2C` and `=` is `=3D`.
fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// RFC 5802's saslname: `=2C` is `,` and `=3D` is `=`; any other `=` is an
/// error.
fn unescape_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Store(HashMap<(String, Mechanism), ScramCredential>);

    impl CredentialStore for Store {
        fn credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
            self.0.get(&(user.to_string(), mechanism)).cloned()
        }
    }

    fn store_with(user: &str, mechanism: Mechanism, password: &str) -> Store {
        let mut store = Store::default();
        let credential = new_credential(mechanism, password.as_bytes(), 4096).unwrap();
        store.0.insert((user.to_string(), mechanism), credential);
        store
    }

    /// RFC 7677 §3: user "user", password "pencil".
    const RFC7677_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const RFC7677_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677_store() -> Store {
        let salt = BASE64_STANDARD.decode(RFC7677_SALT).unwrap();
        let credential = derive(
            Mechanism::ScramSha256,
            b"pencil",
            &salt,
            NonZeroU32::new(4096).unwrap(),
        );
        let mut store = Store::default();
        store
            .0
            .insert(("user".to_string(), Mechanism::ScramSha256), credential);
        store
    }

    #[test]
    fn scram_sha_256_matches_rfc7677() {
        let store = rfc7677_store();
        let mut session = ServerSession::new(Mechanism::ScramSha256);
        assert_eq!(
            session.step_with_nonce(
                RFC7677_CLIENT_FIRST.as_bytes(),
                &store,
                RFC7677_SERVER_NONCE
            ),
            Step::Challenge(RFC7677_SERVER_FIRST.as_bytes().to_vec())
        );
        assert_eq!(
            session.step_with_nonce(RFC7677_CLIENT_FINAL.as_bytes(), &store, "unused"),
            Step::Done {
                user: "user".into(),
                reply: RFC7677_SERVER_FINAL.as_bytes().to_vec()
            }
        );
        // Nothing more is accepted.
        assert!(matches!(
            session.step(b"again", &store),
            Step::Failed { .. }
        ));
    }

    #[test]
    fn scram_wrong_proof_and_unknown_user_fail_alike() {
        let store = rfc7677_store();
        let mut session = ServerSession::new(Mechanism::ScramSha256);
        session.step_with_nonce(
            RFC7677_CLIENT_FIRST.as_bytes(),
            &store,
            RFC7677_SERVER_NONCE,
        );
        let forged = RFC7677_CLIENT_FINAL.replace("p=dH", "p=eH");
        assert_eq!(
            session.step_with_nonce(forged.as_bytes(), &store, ""),
            failed(Some("user"), "wrong password")
        );

        // An unknown user gets a well-formed challenge whose salt is the
        // same on every attempt, then fails the proof.
        let challenge = |store: &Store| {
            let mut session = ServerSession::new(Mechanism::ScramSha256);
            match session.step(b"n,,n=nobody,r=abc", store) {
                Step::Challenge(c) => String::from_utf8(c).unwrap(),
                other => panic!("{other:?}"),
            }
        };
        let (first, second) = (challenge(&store), challenge(&store));
        let salt = |c: &str| c.split(',').nth(1).unwrap().to_string();
        assert_eq!(salt(&first), salt(&second));
        assert!(first.ends_with(",i=4096"));
        let mut session = ServerSession::new(Mechanism::ScramSha256);
        session.step_with_nonce(b"n,,n=nobody,r=abc", &store, "xyz");
        let final_message = format!("c=biws,r=abcxyz,p={}", BASE64_STANDARD.encode([0u8; 32]));
        assert_eq!(
            session.step(final_message.as_bytes(), &store),
            failed(Some("nobody"), "unknown user")
        );
    }

    /// A SCRAM client run against the session, for both hashes.
    fn client_exchange(mechanism: Mechanism, store: &Store, password: &str) -> Step {
        let mut session = ServerSession::new(mechanism);
        let client_first_bare = "n=al=3Dice,r=clientnonce";
        let Step::Challenge(server_first) =
            session.step(format!("n,,{client_first_bare}").as_bytes(), store)
        else {
            panic!("no challenge");
        };
        let server_first = String::from_utf8(server_first).unwrap();
        let mut fields = server_first.split(',');
        let nonce = fields.next().unwrap().strip_prefix("r=").unwrap();
        let salt = BASE64_STANDARD
            .decode(fields.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let iterations: u32 = fields
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        let mut salted = vec![0u8; mechanism.key_bytes()];
        pbkdf2::derive(
            mechanism.pbkdf2(),
            NonZeroU32::new(iterations).unwrap(),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let key = hmac::Key::new(mechanism.hmac(), &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored_key = digest::digest(mechanism.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac::sign(
            &hmac::Key::new(mechanism.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let client_final = format!("{without_proof},p={}", BASE64_STANDARD.encode(proof));
        session.step(client_final.as_bytes(), store)
    }

    #[test]
    fn scram_sha_512_and_256_with_escaped_names() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let store = store_with("al=ice", mechanism, "secret");
            assert!(
                matches!(client_exchange(mechanism, &store, "secret"), Step::Done { ref user, .. } if user == "al=ice"),
                "{mechanism}"
            );
            assert_eq!(
                client_exchange(mechanism, &store, "wrong"),
                failed(Some("al=ice"), "wrong password")
            );
        }
    }

    /// Runs a [`ClientSession`] against a [`ServerSession`]; `tamper`
    /// may change each server token before the client sees it.
    fn run_client(
        credentials: ClientCredentials,
        store: &Store,
        tamper: impl Fn(Vec<u8>) -> Vec<u8>,
    ) -> (Result<(), String>, Option<Step>) {
        let mut server = ServerSession::new(credentials.mechanism);
        let mut client = ClientSession::new(credentials);
        let mut token = client.first().unwrap();
        for _ in 0..4 {
            let reply = match server.step(&token, store) {
                Step::Challenge(challenge) => challenge,
                Step::Done { user, reply } => {
                    let done = Step::Done {
                        user,
                        reply: reply.clone(),
                    };
                    return match client.step(&tamper(reply)) {
                        Ok(None) => (Ok(()), Some(done)),
                        Ok(Some(_)) => (Err("client wants more".into()), Some(done)),
                        Err(e) => (Err(e), Some(done)),
                    };
                }
                failed @ Step::Failed { .. } => return (Err("server failed".into()), Some(failed)),
            };
            match client.step(&tamper(reply)) {
                Ok(Some(next)) => token = next,
                Ok(None) => return (Err("client done before the server".into()), None),
                Err(e) => return (Err(e), None),
            }
        }
        (Err("no end".into()), None)
    }

    fn credentials(mechanism: Mechanism, user: &str, password: &str) -> ClientCredentials {
        ClientCredentials::new(mechanism, user, password.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn client_authenticates_against_the_server_session() {
        for stored in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let user = "al=i,ce";
            let store = store_with(user, stored, "s3cret");
            for mechanism in [stored, Mechanism::Plain] {
                let (outcome, server) =
                    run_client(credentials(mechanism, user, "s3cret"), &store, |t| t);
                assert_eq!(outcome, Ok(()), "{mechanism}");
                assert!(
                    matches!(server, Some(Step::Done { ref user, .. }) if user == "al=i,ce"),
                    "{mechanism}: {server:?}"
                );
                let (outcome, server) =
                    run_client(credentials(mechanism, user, "wrong"), &store, |t| t);
                assert!(outcome.is_err(), "{mechanism}");
                assert_eq!(server, Some(failed(Some(user), "wrong password")));
            }
        }
    }

    #[test]
    fn client_refuses_a_forged_server_signature_and_a_foreign_nonce() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let store = store_with("bob", mechanism, "pw");
            // The server accepted the proof, but its signature is forged.
            let forge = |token: Vec<u8>| match token.strip_prefix(b"v=") {
                Some(_) => {
                    let bytes = vec![7u8; mechanism.key_bytes()];
                    format!("v={}", BASE64_STANDARD.encode(bytes)).into_bytes()
                }
                None => token,
            };
            let (outcome, server) = run_client(credentials(mechanism, "bob", "pw"), &store, forge);
            assert!(matches!(server, Some(Step::Done { .. })));
            assert!(outcome.unwrap_err().contains("signature does not verify"));

            let mut client = ClientSession::new(credentials(mechanism, "bob", "pw"));
            client.first_with_nonce("abc").unwrap();
            let err = client.step(b"r=xyzabcdef,s=AAAA,i=4096").unwrap_err();
            assert!(err.contains("does not extend"), "{err}");
            let mut client = ClientSession::new(credentials(mechanism, "bob", "pw"));
            client.first_with_nonce("abc").unwrap();
            assert!(
                client.step(b"r=abc,s=AAAA,i=4096").is_err(),
                "no server part"
            );
            let mut client = ClientSession::new(credentials(mechanism, "bob", "pw"));
            client.first_with_nonce("abc").unwrap();
            assert!(
                client.step(b"r=abcd,s=AAAA,i=1").is_err(),
                "too few iterations"
            );
            let mut client = ClientSession::new(credentials(mechanism, "bob", "pw"));
            client.first_with_nonce("abc").unwrap();
            assert_eq!(
                client.step(b"e=invalid-proof").unwrap_err(),
                "server-first without r="
            );
        }
        let mut plain = ClientSession::new(credentials(Mechanism::Plain, "bob", "pw"));
        assert_eq!(plain.first().unwrap(), b"\0bob\0pw");
        assert!(plain.step(b"challenge").is_err());
        assert!(plain.step(b"").is_err(), "over after a failure");
        assert!(ClientCredentials::new(Mechanism::Plain, "bob", Vec::new()).is_err());
        assert!(ClientCredentials::new(Mechanism::Plain, "", b"pw".to_vec()).is_err());
        let printed = format!("{:?}", credentials(Mechanism::Plain, "bob", "hunter2"));
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn salted_passwords_give_the_credential_a_password_does() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let salt = random_salt().unwrap();
            let salted = salted_password(mechanism, b"pw", &salt, 4096).unwrap();
            assert_eq!(
                credential_from_salted(mechanism, &salted, &salt, 4096).unwrap(),
                derive(mechanism, b"pw", &salt, NonZeroU32::new(4096).unwrap())
            );
            assert!(credential_from_salted(mechanism, &salted[1..], &salt, 4096).is_err());
            assert!(salted_password(mechanism, b"pw", &[], 4096).is_err());
            assert!(salted_password(mechanism, b"pw", &salt, 100).is_err());
        }
        assert!(salted_password(Mechanism::Plain, b"pw", b"salt", 4096).is_err());
    }

    #[test]
    fn plain_checks_the_scram_store() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let store = store_with("bob", mechanism, "hunter2");
            let plain = |token: &[u8]| ServerSession::new(Mechanism::Plain).step(token, &store);
            assert_eq!(
                plain(b"\0bob\0hunter2"),
                Step::Done {
                    user: "bob".into(),
                    reply: vec![]
                }
            );
            assert_eq!(
                plain(b"bob\0bob\0hunter2"),
                Step::Done {
                    user: "bob".into(),
                    reply: vec![]
                }
            );
            assert_eq!(
                plain(b"\0bob\0hunter3"),
                failed(Some("bob"), "wrong password")
            );
            assert_eq!(
                plain(b"\0eve\0hunter2"),
                failed(Some("eve"), "unknown user")
            );
            assert!(matches!(plain(b"\0bob"), Step::Failed { .. }));
            assert!(matches!(plain(b"eve\0bob\0hunter2"), Step::Failed { .. }));
            assert!(matches!(plain(b"\0bob\0"), Step::Failed { .. }));
        }
    }

    #[test]
    fn malformed_tokens_fail_without_panicking() {
        let store = rfc7677_store();
        let big = vec![b'n'; TOKEN_BYTES_MAX + 1];
        let inputs: [&[u8]; 12] = [
            b"",
            b"n",
            b"n,,",
            b"p=tls,,n=user,r=x",
            b"n,,n=user",
            b"n,,n=us=er,r=x",
            b"n,,n=user,r=",
            b"n,a=other,n=user,r=x",
            b"\xff\xfe",
            b"n,,n=,r=x",
            b"n,,r=x,n=user",
            &big,
        ];
        for input in inputs {
            let mut session = ServerSession::new(Mechanism::ScramSha256);
            assert!(
                matches!(session.step(input, &store), Step::Failed { .. }),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        for last in [&b""[..], b"c=biws", b"c=biws,r=x,p=!!", b"c=xx,r=x,p=AAAA"] {
            let mut session = ServerSession::new(Mechanism::ScramSha256);
            session.step_with_nonce(
                RFC7677_CLIENT_FIRST.as_bytes(),
                &store,
                RFC7677_SERVER_NONCE,
            );
            assert!(matches!(session.step(last, &store), Step::Failed { .. }));
        }
    }

    #[test]
    fn credentials_are_bounded() {
        assert!(new_credential(Mechanism::ScramSha256, b"pw", 4095).is_err());
        assert!(new_credential(Mechanism::ScramSha256, b"pw", 16385).is_err());
        assert!(new_credential(Mechanism::ScramSha256, b"", 4096).is_err());
        assert!(new_credential(Mechanism::Plain, b"pw", 4096).is_err());
        let credential = new_credential(Mechanism::ScramSha512, b"pw", 16384).unwrap();
        assert_eq!(
            (
                credential.salt.len(),
                credential.stored_key.len(),
                credential.server_key.len()
            ),
            (SALT_BYTES, 64, 64)
        );
    }

    #[test]
    fn mechanism_lists() {
        assert_eq!(
            parse_mechanisms(MECHANISMS_DEFAULT).unwrap(),
            Mechanism::ALL
        );
        assert_eq!(
            parse_mechanisms("plain, scram-sha-512").unwrap(),
            [Mechanism::Plain, Mechanism::ScramSha512]
        );
        assert!(parse_mechanisms("PLAIN,PLAIN").is_err());
        assert!(parse_mechanisms("GSSAPI").is_err());
        assert!(parse_mechanisms("").is_err());
        assert_eq!(
            Mechanism::parse_scram("SCRAM-SHA-512"),
            Ok(Mechanism::ScramSha512)
        );
        assert!(Mechanism::parse_scram("PLAIN").is_err());
    }
}
