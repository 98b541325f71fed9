//! TSIG (RFC 8945): HMAC signatures on zone transfers and NOTIFY, with shared secrets.
//!
//! Written against the RFC rather than taken from hickory-proto, whose TSIG code needs its
//! DNSSEC feature (and a crypto backend) and signs whole `Message` values; a transfer here is a
//! stream of messages built as bytes, each signed as it leaves. The pieces:
//! - [`Key`]: a named secret and its algorithm; its `Debug` never shows the secret, so keys
//!   cannot reach a log by accident;
//! - [`read`] and [`find`]: the TSIG record of a received message;
//! - [`verify_request`]: the server-side checks of RFC 8945 §5.2 in their order (key, MAC,
//!   time), giving either the verified request or the error to answer with (§5.3.2);
//! - [`Signer`]: signs a message or a sequence of messages (§5.3.1: the first response covers
//!   the request MAC, each later one the MAC before it, with the timers only);
//! - [`Verifier`]: the client side of the same, for NOTIFY acknowledgements (and tests).
//!
//! MACs are always compared in constant time (`hmac`'s `verify_slice`). Truncated MACs
//! (§5.2.2.1) are not accepted: a MAC shorter than the algorithm's output gets BADTRUNC, or
//! FORMERR below the RFC's floor.

use std::fmt;

use hickory_proto::rr::Name;
use hmac::{Hmac, Mac};
use sha2::{Sha224, Sha256, Sha384, Sha512};

use crate::wire::query::skip_name;

pub use crate::wire::query::{CLASS_ANY, TYPE_TSIG};
/// Seconds of clock difference tolerated (RFC 8945 §10 recommends 300).
pub const FUDGE: u16 = 300;

/// TSIG error codes (RFC 8945 §3, IANA "DNS RCODEs").
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
pub const BADTRUNC: u16 = 22;

/// The HMAC algorithms offered (RFC 8945 §6; HMAC-SHA256 is the one to use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha224,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
        Algorithm::HmacSha224,
    ];

    /// The algorithm's name as written in settings files and in Knot, NSD and BIND
    /// configurations (`hmac-sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha224 => "hmac-sha224",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// Parses a configured algorithm name (case-insensitive, trailing dot allowed).
    pub fn parse(text: &str) -> Option<Algorithm> {
        let text = text.trim_end_matches('.').to_ascii_lowercase();
        Algorithm::ALL.into_iter().find(|a| a.name() == text)
    }

    /// The algorithm name in wire form (one label, lower case, uncompressed).
    pub fn wire_name(self) -> Vec<u8> {
        let name = self.name().as_bytes();
        let mut wire = Vec::with_capacity(name.len() + 2);
        wire.push(name.len() as u8);
        wire.extend_from_slice(name);
        wire.push(0);
        wire
    }

    fn from_wire(lower: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.wire_name() == lower)
    }

    /// Length of the full MAC in octets.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::HmacSha224 => 28,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }
}

/// Key material. Compared, cloned and dropped like bytes; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} octets, not shown>)", self.0.len())
    }
}

/// A TSIG key: its name (a domain name, lower case), algorithm and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: Name,
    pub algorithm: Algorithm,
    secret: Secret,
}

impl Key {
    pub fn new(name: Name, algorithm: Algorithm, secret: Vec<u8>) -> Key {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        Key {
            name,
            algorithm,
            secret: Secret(secret.into_boxed_slice()),
        }
    }

    /// The key name in canonical wire form (lower case, uncompressed).
    pub fn name_wire(&self) -> Vec<u8> {
        name_wire(&self.name)
    }

    fn mac(&self) -> Hmacs {
        Hmacs::new(self.algorithm, &self.secret.0)
    }
}

/// Canonical wire form of a name: lower case, uncompressed.
pub fn name_wire(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 1);
    for label in name.to_lowercase().iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    wire
}

/// One running HMAC, whichever the algorithm.
enum Hmacs {
    Sha224(Hmac<Sha224>),
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl Hmacs {
    fn new(algorithm: Algorithm, secret: &[u8]) -> Hmacs {
        // HMAC takes keys of any length (RFC 2104 §3): `new_from_slice` cannot fail for it.
        fn make<M: Mac + hmac::digest::KeyInit>(secret: &[u8]) -> M {
            <M as hmac::digest::KeyInit>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
        }
        match algorithm {
            Algorithm::HmacSha224 => Hmacs::Sha224(make(secret)),
            Algorithm::HmacSha256 => Hmacs::Sha256(make(secret)),
            Algorithm::HmacSha384 => Hmacs::Sha384(make(secret)),
            Algorithm::HmacSha512 => Hmacs::Sha512(make(secret)),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hmacs::Sha224(m) => m.update(data),
            Hmacs::Sha256(m) => m.update(data),
            Hmacs::Sha384(m) => m.update(data),
            Hmacs::Sha512(m) => m.update(data),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Hmacs::Sha224(m) => m.finalize().into_bytes().to_vec(),
            Hmacs::Sha256(m) => m.finalize().into_bytes().to_vec(),
            Hmacs::Sha384(m) => m.finalize().into_bytes().to_vec(),
            Hmacs::Sha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }

    /// Constant-time comparison with a received MAC.
    fn verify(self, mac: &[u8]) -> bool {
        match self {
            Hmacs::Sha224(m) => m.verify_slice(mac).is_ok(),
            Hmacs::Sha256(m) => m.verify_slice(mac).is_ok(),
            Hmacs::Sha384(m) => m.verify_slice(mac).is_ok(),
            Hmacs::Sha512(m) => m.verify_slice(mac).is_ok(),
        }
    }
}

/// A TSIG record as read from a message. Names are in canonical wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigRecord {
    /// Offset of the record in the message (the unsigned message ends there).
    pub offset: usize,
    pub key_name: Vec<u8>,
    pub algorithm: Vec<u8>,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

impl TsigRecord {
    /// The key name as a domain name.
    pub fn key_name(&self) -> Option<Name> {
        Name::from_labels(crate::zone::wire_labels(&self.key_name).map(|(_, label)| label)).ok()
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn read_u48(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at + 6)?;
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// Reads a name at `at`, following compression pointers (bounded), lower-casing it into
/// canonical wire form. Returns the name and the offset after it in the original position.
fn read_name(bytes: &[u8], at: usize) -> Option<(Vec<u8>, usize)> {
    let mut wire = Vec::with_capacity(32);
    let mut pos = at;
    let mut end = None;
    for _ in 0..128 {
        let len = *bytes.get(pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                wire.push(0);
                return (wire.len() <= 255).then_some((wire, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = bytes.get(pos + 1..pos + 1 + len as usize)?;
                wire.push(len);
                wire.extend(label.iter().map(u8::to_ascii_lowercase));
                pos += 1 + len as usize;
            }
            0xC0 => {
                let target = (read_u16(bytes, pos)? & 0x3FFF) as usize;
                end.get_or_insert(pos + 2);
                // Pointers must go backwards; this also bounds the walk.
                if target >= pos {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
    None
}

/// Reads the TSIG record starting at `offset`, which must end the message.
pub fn read(message: &[u8], offset: usize) -> Option<TsigRecord> {
    let (key_name, pos) = read_name(message, offset)?;
    if read_u16(message, pos)? != TYPE_TSIG {
        return None;
    }
    let rdlength = read_u16(message, pos + 8)? as usize;
    let rdata_start = pos + 10;
    let rdata_end = rdata_start + rdlength;
    if rdata_end != message.len() {
        return None;
    }
    let rdata = &message[..rdata_end];
    let (algorithm, p) = read_name(rdata, rdata_start)?;
    let time_signed = read_u48(rdata, p)?;
    let fudge = read_u16(rdata, p + 6)?;
    let mac_len = read_u16(rdata, p + 8)? as usize;
    let mac = rdata.get(p + 10..p + 10 + mac_len)?.to_vec();
    let p = p + 10 + mac_len;
    let original_id = read_u16(rdata, p)?;
    let error = read_u16(rdata, p + 2)?;
    let other_len = read_u16(rdata, p + 4)? as usize;
    let other = rdata.get(p + 6..p + 6 + other_len)?.to_vec();
    if p + 6 + other_len != rdata_end {
        return None;
    }
    Some(TsigRecord {
        offset,
        key_name,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// Finds the TSIG record of a message (query or response): `Ok(None)` when there is none,
/// `Err(())` when the message is malformed or a TSIG record is not the last record.
#[allow(clippy::result_unit_err)]
pub fn find(message: &[u8]) -> Result<Option<TsigRecord>, ()> {
    let count = |at| read_u16(message, at).ok_or(());
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(message, pos).ok_or(())? + 4;
    }
    let records = an as usize + ns as usize + ar as usize;
    for index in 0..records {
        let start = pos;
        let after_owner = skip_name(message, pos).ok_or(())?;
        let rtype = read_u16(message, after_owner).ok_or(())?;
        let rdlength = read_u16(message, after_owner + 8).ok_or(())? as usize;
        pos = after_owner + 10 + rdlength;
        if pos > message.len() {
            return Err(());
        }
        if rtype == TYPE_TSIG {
            if index + 1 != records || index < an as usize + ns as usize {
                return Err(());
            }
            return read(message, start).map(Some).ok_or(());
        }
    }
    Ok(None)
}

/// What the MAC covers after the message itself (RFC 8945 §4.3.3).
enum Variables<'a> {
    /// All TSIG variables: requests, single responses, the first message of a sequence.
    Full {
        key_name: &'a [u8],
        algorithm: &'a [u8],
        time_signed: u64,
        fudge: u16,
        error: u16,
        other: &'a [u8],
    },
    /// Time Signed and Fudge only: later messages of a sequence (§5.3.1).
    Timers { time_signed: u64, fudge: u16 },
}

fn push_u48(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes()[2..]);
}

/// Computes a MAC over: the prior MAC (length-prefixed) if any, the message without its TSIG
/// (header given separately, so the ID and ARCOUNT can be the original ones), and the variables.
fn compute(
    key: &Key,
    prior_mac: Option<&[u8]>,
    header: &[u8; 12],
    body: &[u8],
    variables: &Variables<'_>,
) -> Hmacs {
    let mut mac = key.mac();
    if let Some(prior) = prior_mac {
        mac.update(&(prior.len() as u16).to_be_bytes());
        mac.update(prior);
    }
    mac.update(header);
    mac.update(body);
    let mut vars = Vec::with_capacity(64);
    match variables {
        Variables::Full {
            key_name,
            algorithm,
            time_signed,
            fudge,
            error,
            other,
        } => {
            vars.extend_from_slice(key_name);
            vars.extend_from_slice(&CLASS_ANY.to_be_bytes());
            vars.extend_from_slice(&0u32.to_be_bytes());
            vars.extend_from_slice(algorithm);
            push_u48(&mut vars, *time_signed);
            vars.extend_from_slice(&fudge.to_be_bytes());
            vars.extend_from_slice(&error.to_be_bytes());
            vars.extend_from_slice(&(other.len() as u16).to_be_bytes());
            vars.extend_from_slice(other);
        }
        Variables::Timers { time_signed, fudge } => {
            push_u48(&mut vars, *time_signed);
            vars.extend_from_slice(&fudge.to_be_bytes());
        }
    }
    mac.update(&vars);
    mac
}

impl TsigRecord {
    /// All the TSIG variables of this record, as its MAC covers them (RFC 8945 §4.3.3).
    fn full_variables(&self) -> Variables<'_> {
        Variables::Full {
            key_name: &self.key_name,
            algorithm: &self.algorithm,
            time_signed: self.time_signed,
            fudge: self.fudge,
            error: self.error,
            other: &self.other,
        }
    }

    /// What the MAC of a received `message` signed: its header as it was before the TSIG
    /// was added, and the body up to the TSIG record.
    fn signed_parts<'m>(&self, message: &'m [u8]) -> Option<([u8; 12], &'m [u8])> {
        Some((
            original_header(message, self.original_id)?,
            message.get(12..self.offset)?,
        ))
    }
}

/// The header of a message as it was before the TSIG was added: the original ID and one
/// additional record fewer.
fn original_header(message: &[u8], original_id: u16) -> Option<[u8; 12]> {
    let mut header: [u8; 12] = message.get(..12)?.try_into().ok()?;
    header[0..2].copy_from_slice(&original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([header[10], header[11]]).checked_sub(1)?;
    header[10..12].copy_from_slice(&arcount.to_be_bytes());
    Some(header)
}

/// Appends a TSIG record to `message` and counts it in ARCOUNT.
#[allow(clippy::too_many_arguments)]
fn append_record(
    message: &mut Vec<u8>,
    key_name: &[u8],
    algorithm: &[u8],
    time_signed: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) {
    message.extend_from_slice(key_name);
    message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    let rdlength = algorithm.len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + other.len();
    message.extend_from_slice(&(rdlength as u16).to_be_bytes());
    message.extend_from_slice(algorithm);
    push_u48(message, time_signed);
    message.extend_from_slice(&fudge.to_be_bytes());
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&original_id.to_be_bytes());
    message.extend_from_slice(&error.to_be_bytes());
    message.extend_from_slice(&(other.len() as u16).to_be_bytes());
    message.extend_from_slice(other);
    if message.len() >= 12 {
        let arcount = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
        message[10..12].copy_from_slice(&arcount.to_be_bytes());
    }
}

/// A request whose TSIG checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key: Key,
    pub record: TsigRecord,
}

/// Why a signed request is not accepted, and how to say so.
#[derive(Debug, Clone)]
pub enum Rejection {
    /// The TSIG record itself is malformed (or its MAC is shorter than RFC 8945 allows):
    /// answer FORMERR without a TSIG.
    FormErr,
    /// BADKEY, BADSIG, BADTIME or BADTRUNC: answer NOTAUTH with this error in the TSIG.
    Tsig {
        error: u16,
        record: Box<TsigRecord>,
        /// The key, when the request MAC was made with it (BADTIME, BADTRUNC): the error
        /// response is then signed.
        key: Option<Key>,
    },
}

impl Rejection {
    /// The error's mnemonic, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Rejection::FormErr => "FORMERR",
            Rejection::Tsig { error, .. } => error_name(*error),
        }
    }

    /// Appends the TSIG record of the error response to `response` (RFC 8945 §5.3.2): unsigned
    /// (empty MAC) for BADKEY and BADSIG, signed for BADTIME (the request's Time Signed, the
    /// server's time in Other Data, §5.2.3) and BADTRUNC. Nothing for FORMERR.
    pub fn append_to(&self, response: &mut Vec<u8>, now: u64) {
        let Rejection::Tsig { error, record, key } = self else {
            return;
        };
        match key {
            Some(key) => {
                let (time_signed, other) = if *error == BADTIME {
                    (record.time_signed, now.to_be_bytes()[2..].to_vec())
                } else {
                    (now, Vec::new())
                };
                let mut signer = Signer::response(key.clone(), record.mac.clone());
                signer.fudge = record.fudge;
                signer.sign_with(response, time_signed, *error, &other);
            }
            None => append_record(
                response,
                &record.key_name,
                &record.algorithm,
                record.time_signed,
                record.fudge,
                &[],
                record.original_id,
                *error,
                &[],
            ),
        }
    }
}

pub fn error_name(error: u16) -> &'static str {
    match error {
        0 => "NOERROR",
        BADSIG => "BADSIG",
        BADKEY => "BADKEY",
        BADTIME => "BADTIME",
        BADTRUNC => "BADTRUNC",
        _ => "TSIG error",
    }
}

/// Checks the TSIG of a request, in RFC 8945 §5.2's order: the key is known and of that
/// algorithm (BADKEY), the MAC is right (BADSIG), the time is within the fudge (BADTIME).
pub fn verify_request(
    keys: &[Key],
    message: &[u8],
    record: TsigRecord,
    now: u64,
) -> Result<Verified, Rejection> {
    let Some(key) = keys.iter().find(|k| {
        k.name_wire() == record.key_name
            && Algorithm::from_wire(&record.algorithm) == Some(k.algorithm)
    }) else {
        return Err(Rejection::Tsig {
            error: BADKEY,
            record: Box::new(record),
            key: None,
        });
    };
    // §5.2.2.1: a MAC longer than the output, or shorter than half of it (or 10 octets), is
    // malformed; a shorter one within those bounds is a truncation this server does not accept.
    let full = key.algorithm.output_len();
    let mac_len = record.mac.len();
    if mac_len > full || mac_len < 10.max(full / 2) {
        return Err(Rejection::FormErr);
    }
    if mac_len < full {
        return Err(Rejection::Tsig {
            error: BADTRUNC,
            record: Box::new(record),
            key: Some(key.clone()),
        });
    }
    let Some((header, body)) = record.signed_parts(message) else {
        return Err(Rejection::FormErr);
    };
    if !compute(key, None, &header, body, &record.full_variables()).verify(&record.mac) {
        return Err(Rejection::Tsig {
            error: BADSIG,
            record: Box::new(record),
            key: None,
        });
    }
    if now.abs_diff(record.time_signed) > u64::from(record.fudge) {
        return Err(Rejection::Tsig {
            error: BADTIME,
            record: Box::new(record),
            key: Some(key.clone()),
        });
    }
    Ok(Verified {
        key: key.clone(),
        record,
    })
}

/// Signs requests, responses and sequences of response messages.
#[derive(Debug, Clone)]
pub struct Signer {
    key: Key,
    /// The MAC the next signature covers: the request's for the first response, then each
    /// message's own.
    prior_mac: Option<Vec<u8>>,
    /// Whether a message was signed already (later ones of a sequence cover the timers only).
    signed_one: bool,
    pub fudge: u16,
}

impl Signer {
    /// For a request (no prior MAC).
    pub fn request(key: Key) -> Signer {
        Signer {
            key,
            prior_mac: None,
            signed_one: false,
            fudge: FUDGE,
        }
    }

    /// For the response(s) to a request whose MAC is `request_mac`.
    pub fn response(key: Key, request_mac: Vec<u8>) -> Signer {
        Signer {
            key,
            prior_mac: Some(request_mac),
            signed_one: false,
            fudge: FUDGE,
        }
    }

    /// Signs `message` (complete but for the TSIG) at time `now`; returns the MAC.
    pub fn sign(&mut self, message: &mut Vec<u8>, now: u64) -> Vec<u8> {
        self.sign_with(message, now, 0, &[])
    }

    fn sign_with(&mut self, message: &mut Vec<u8>, now: u64, error: u16, other: &[u8]) -> Vec<u8> {
        let key_name = self.key.name_wire();
        let algorithm = self.key.algorithm.wire_name();
        let mut header = [0u8; 12];
        if let Some(h) = message.get(..12) {
            header.copy_from_slice(h);
        }
        let original_id = u16::from_be_bytes([header[0], header[1]]);
        let variables = if self.signed_one {
            Variables::Timers {
                time_signed: now,
                fudge: self.fudge,
            }
        } else {
            Variables::Full {
                key_name: &key_name,
                algorithm: &algorithm,
                time_signed: now,
                fudge: self.fudge,
                error,
                other,
            }
        };
        let body = message.get(12..).unwrap_or_default();
        let mac = compute(
            &self.key,
            self.prior_mac.as_deref(),
            &header,
            body,
            &variables,
        )
        .finalize();
        append_record(
            message,
            &key_name,
            &algorithm,
            now,
            self.fudge,
            &mac,
            original_id,
            error,
            other,
        );
        self.prior_mac = Some(mac.clone());
        self.signed_one = true;
        mac
    }
}

/// Why a signed response was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The response carries no TSIG although the request was signed.
    Unsigned,
    /// Malformed, or signed with another key or algorithm.
    Malformed,
    /// The server reported a TSIG error (BADKEY, BADSIG, ...) in an unsigned TSIG.
    ServerError(u16),
    BadSig,
    BadTime,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Unsigned => write!(f, "the response is not signed"),
            VerifyError::Malformed => {
                write!(f, "the response's TSIG is malformed or uses another key")
            }
            VerifyError::ServerError(e) => write!(f, "the peer answered {}", error_name(*e)),
            VerifyError::BadSig => write!(f, "the response's MAC is wrong"),
            VerifyError::BadTime => write!(f, "the response's time is outside the fudge"),
        }
    }
}

/// Checks the signatures of the response(s) to a signed request, every message signed.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: Key,
    prior_mac: Vec<u8>,
    verified_one: bool,
}

impl Verifier {
    pub fn new(key: Key, request_mac: Vec<u8>) -> Verifier {
        Verifier {
            key,
            prior_mac: request_mac,
            verified_one: false,
        }
    }

    /// Verifies the next message of the response; returns its TSIG record.
    pub fn verify(&mut self, message: &[u8], now: u64) -> Result<TsigRecord, VerifyError> {
        let record = match find(message) {
            Ok(Some(record)) => record,
            Ok(None) => return Err(VerifyError::Unsigned),
            Err(()) => return Err(VerifyError::Malformed),
        };
        if record.key_name != self.key.name_wire()
            || Algorithm::from_wire(&record.algorithm) != Some(self.key.algorithm)
        {
            return Err(VerifyError::Malformed);
        }
        if record.mac.is_empty() && record.error != 0 {
            return Err(VerifyError::ServerError(record.error));
        }
        let (header, body) = record.signed_parts(message).ok_or(VerifyError::Malformed)?;
        let variables = if self.verified_one {
            Variables::Timers {
                time_signed: record.time_signed,
                fudge: record.fudge,
            }
        } else {
            record.full_variables()
        };
        if !compute(&self.key, Some(&self.prior_mac), &header, body, &variables).verify(&record.mac)
        {
            return Err(VerifyError::BadSig);
        }
        self.prior_mac = record.mac.clone();
        self.verified_one = true;
        if record.error != 0 {
            return Err(VerifyError::ServerError(record.error));
        }
        if now.abs_diff(record.time_signed) > u64::from(record.fudge) {
            return Err(VerifyError::BadTime);
        }
        Ok(record)
    }
}

/// Seconds since the epoch, as TSIG counts time.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> Key {
        Key::new(
            Name::from_ascii("Transfer-Key.").unwrap(),
            Algorithm::HmacSha256,
            secret.to_vec(),
        )
    }

    /// A query for `lwm2m.org AXFR` with ID 0x1234.
    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x05lwm2m\x03org\x00\x00\xfc\x00\x01");
        q
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = key(b"supersecretvalue");
        let shown = format!("{k:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("transfer-key"), "{shown}");
    }

    #[test]
    fn request_round_trip_and_each_error() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let mut q = query();
        let now = 1_700_000_000;
        let mac = Signer::request(k.clone()).sign(&mut q, now);
        assert_eq!(mac.len(), 32);
        let record = find(&q).unwrap().unwrap();
        assert_eq!(record.key_name, b"\x0ctransfer-key\x00");
        let verified =
            verify_request(std::slice::from_ref(&k), &q, record.clone(), now + 10).unwrap();
        assert_eq!(verified.record.mac, mac);

        // Unknown key name, or the same name with another algorithm: BADKEY.
        let other = Key::new(
            Name::from_ascii("other.").unwrap(),
            Algorithm::HmacSha256,
            b"x".repeat(32),
        );
        let err = verify_request(&[other], &q, record.clone(), now).unwrap_err();
        assert_eq!(err.name(), "BADKEY");
        let wrong_alg = Key::new(k.name.clone(), Algorithm::HmacSha512, b"x".repeat(32));
        let err = verify_request(&[wrong_alg], &q, record.clone(), now).unwrap_err();
        assert_eq!(err.name(), "BADKEY");
        // Wrong secret: BADSIG.
        let err =
            verify_request(&[key(b"another secret value")], &q, record.clone(), now).unwrap_err();
        assert_eq!(err.name(), "BADSIG");
        // Tampered message: BADSIG.
        let mut tampered = q.clone();
        tampered[14] = b'L';
        let record2 = find(&tampered).unwrap().unwrap();
        assert_eq!(
            verify_request(std::slice::from_ref(&k), &tampered, record2, now)
                .unwrap_err()
                .name(),
            "BADSIG"
        );
        // Outside the fudge: BADTIME.
        let err = verify_request(std::slice::from_ref(&k), &q, record, now + 301).unwrap_err();
        assert_eq!(err.name(), "BADTIME");
    }

    #[test]
    fn error_responses_follow_rfc_8945() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let mut q = query();
        let now = 1_700_000_000;
        let request_mac = Signer::request(k.clone()).sign(&mut q, now);
        let record = find(&q).unwrap().unwrap();
        let response_head = {
            let mut r = q[..record.offset].to_vec();
            r[2] = 0x80;
            r[3] = 9;
            r[10..12].copy_from_slice(&0u16.to_be_bytes());
            r
        };
        // BADSIG: unsigned, echoing the request's time.
        let err =
            verify_request(&[key(b"wrong secret, wrong")], &q, record.clone(), now).unwrap_err();
        let mut r = response_head.clone();
        err.append_to(&mut r, now + 5);
        let t = find(&r).unwrap().unwrap();
        assert_eq!((t.error, t.mac.len(), t.time_signed), (BADSIG, 0, now));
        let mut v = Verifier::new(k.clone(), request_mac.clone());
        assert_eq!(v.verify(&r, now), Err(VerifyError::ServerError(BADSIG)));
        // BADTIME: signed with the request MAC, request time, server time in Other Data.
        let server_now = now + 1000;
        let err = verify_request(std::slice::from_ref(&k), &q, record, server_now).unwrap_err();
        let mut r = response_head;
        err.append_to(&mut r, server_now);
        let t = find(&r).unwrap().unwrap();
        assert_eq!((t.error, t.time_signed), (BADTIME, now));
        assert_eq!(t.other, server_now.to_be_bytes()[2..].to_vec());
        let mut v = Verifier::new(k, request_mac);
        assert_eq!(v.verify(&r, now), Err(VerifyError::ServerError(BADTIME)));
    }

    #[test]
    fn sequences_chain_their_macs() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let request_mac = vec![7u8; 32];
        let mut signer = Signer::response(k.clone(), request_mac.clone());
        let messages: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                let mut m = vec![0x12, 0x34, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
                m.extend_from_slice(b"\x00\x00\x10\x00\x01\x00\x00\x00\x00\x00\x01");
                m.push(i);
                signer.sign(&mut m, 1_700_000_000 + i as u64);
                m
            })
            .collect();
        let mut v = Verifier::new(k.clone(), request_mac.clone());
        for m in &messages {
            v.verify(m, 1_700_000_000).unwrap();
        }
        // Out of order, the chain breaks.
        let mut v = Verifier::new(k, request_mac);
        v.verify(&messages[0], 1_700_000_000).unwrap();
        assert_eq!(
            v.verify(&messages[2], 1_700_000_000),
            Err(VerifyError::BadSig)
        );
    }

    #[test]
    fn truncated_and_malformed_macs() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let mut q = query();
        Signer::request(k.clone()).sign(&mut q, 1);
        let mut record = find(&q).unwrap().unwrap();
        record.mac.truncate(20);
        assert_eq!(
            verify_request(std::slice::from_ref(&k), &q, record.clone(), 1)
                .unwrap_err()
                .name(),
            "BADTRUNC"
        );
        record.mac.truncate(8);
        assert!(matches!(
            verify_request(&[k], &q, record, 1),
            Err(Rejection::FormErr)
        ));
        assert!(find(&q[..q.len() - 1]).is_err());
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(
            Algorithm::parse("HMAC-SHA256."),
            Some(Algorithm::HmacSha256)
        );
        assert_eq!(Algorithm::parse("hmac-md5"), None);
        assert_eq!(Algorithm::HmacSha512.wire_name()[0], 11);
    }
}
