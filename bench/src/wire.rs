//! The little DNS wire format the benchmark needs: encode a query, and judge a response.
//!
//! Deliberately hand-rolled and allocation-free on the response path: the load generator judges
//! several hundred thousand responses a second on one core, so it compares bytes instead of
//! decoding messages. Only what the benchmark checks is looked at: the header flags, the echoed
//! question (byte for byte, so a server that does not echo the client's letter case fails), and
//! the RCODE.

use std::fmt;

/// Record types the query mix uses (and a few more for probes).
pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_URI: u16 = 256;

/// RCODE values the benchmark expects.
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_NXDOMAIN: u8 = 3;

const HEADER_LEN: usize = 12;
const QR: u8 = 0x80;
const AA: u8 = 0x04;
const TC: u8 = 0x02;

/// The mnemonic of a record type, or its number as `TYPEnnn` (RFC 3597 style).
pub fn type_name(t: u16) -> String {
    match t {
        TYPE_A => "A".into(),
        TYPE_NS => "NS".into(),
        TYPE_SOA => "SOA".into(),
        TYPE_TXT => "TXT".into(),
        TYPE_AAAA => "AAAA".into(),
        TYPE_SRV => "SRV".into(),
        TYPE_URI => "URI".into(),
        other => format!("TYPE{other}"),
    }
}

/// Parses a record type mnemonic (case-insensitive) or `TYPEnnn`.
pub fn parse_type(s: &str) -> Option<u16> {
    let up = s.to_ascii_uppercase();
    match up.as_str() {
        "A" => Some(TYPE_A),
        "NS" => Some(TYPE_NS),
        "SOA" => Some(TYPE_SOA),
        "TXT" => Some(TYPE_TXT),
        "AAAA" => Some(TYPE_AAAA),
        "SRV" => Some(TYPE_SRV),
        "URI" => Some(TYPE_URI),
        _ => up.strip_prefix("TYPE").and_then(|n| n.parse().ok()),
    }
}

/// Why a name could not be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    EmptyLabel(String),
    LabelTooLong(String),
    NameTooLong(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::EmptyLabel(n) => write!(f, "name {n:?} has an empty label"),
            NameError::LabelTooLong(n) => write!(f, "name {n:?} has a label over 63 octets"),
            NameError::NameTooLong(n) => write!(f, "name {n:?} is over 255 octets on the wire"),
        }
    }
}

impl std::error::Error for NameError {}

/// Appends `name` (dotted, trailing dot optional, no escapes) in wire form to `out`.
pub fn push_name(out: &mut Vec<u8>, name: &str) -> Result<(), NameError> {
    let start = out.len();
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel(name.to_string()));
            }
            if label.len() > 63 {
                return Err(NameError::LabelTooLong(name.to_string()));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > 255 {
        return Err(NameError::NameTooLong(name.to_string()));
    }
    Ok(())
}

/// Builds a query message with ID 0 (the sender patches the ID into bytes 0..2).
///
/// Returns the message and the length of its question section, which starts at offset 12.
/// `edns_payload`: add an OPT record advertising that UDP payload size (as resolvers do), with
/// `options` (EDNS options, code-length-data, already encoded) as its RDATA.
pub fn encode_query(
    name: &str,
    qtype: u16,
    edns_payload: Option<u16>,
    options: &[u8],
) -> Result<(Vec<u8>, usize), NameError> {
    let mut m = Vec::with_capacity(64);
    let arcount: u16 = if edns_payload.is_some() { 1 } else { 0 };
    m.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    m.extend_from_slice(&arcount.to_be_bytes());
    push_name(&mut m, name)?;
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // class IN
    let qlen = m.len() - HEADER_LEN;
    if let Some(size) = edns_payload {
        m.push(0); // root owner
        m.extend_from_slice(&41u16.to_be_bytes()); // OPT
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]); // ext rcode, version, flags
        m.extend_from_slice(&(options.len() as u16).to_be_bytes());
        m.extend_from_slice(options);
    }
    Ok((m, qlen))
}

/// What a response must say, besides echoing ID and question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The name exists: RCODE NOERROR (with or without data).
    NoError,
    /// The name does not exist: RCODE NXDOMAIN.
    NxDomain,
    /// Anything goes (query files without expectations).
    Any,
}

impl Expect {
    /// The word used in query files.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::NoError => "NOERROR",
            Expect::NxDomain => "NXDOMAIN",
            Expect::Any => "ANY",
        }
    }

    /// Parses `NOERROR` / `NXDOMAIN` / `ANY` (case-insensitive).
    pub fn parse(s: &str) -> Option<Expect> {
        match s.to_ascii_uppercase().as_str() {
            "NOERROR" => Some(Expect::NoError),
            "NXDOMAIN" => Some(Expect::NxDomain),
            "ANY" | "-" => Some(Expect::Any),
            _ => None,
        }
    }
}

/// The judgement of one response. Every path ends in one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right answer.
    Ok,
    /// Right answer, but with TC=1 (the client would have to retry over TCP).
    Truncated,
    /// Shorter than a header.
    Malformed,
    /// QR=0: not a response.
    NotResponse,
    /// Question missing, or not byte-identical to the query's (case included).
    BadQuestion,
    /// AA=0 from a server that is authoritative for the name.
    NotAuthoritative,
    /// RCODE differs from what the name's existence implies.
    BadRcode(u8),
}

/// Judges `resp` against the `query` it answers; the caller matched the ID already.
///
/// `lenient`: only QR, ID and question are checked (for the floor responder, which echoes the
/// query without looking at it).
pub fn check(resp: &[u8], query: &[u8], qlen: usize, expect: Expect, lenient: bool) -> Verdict {
    if resp.len() < HEADER_LEN {
        return Verdict::Malformed;
    }
    if resp[2] & QR == 0 {
        return Verdict::NotResponse;
    }
    let qd = u16::from_be_bytes([resp[4], resp[5]]);
    let qend = HEADER_LEN + qlen;
    if qd != 1
        || resp.len() < qend
        || query.len() < qend
        || resp[HEADER_LEN..qend] != query[HEADER_LEN..qend]
    {
        return Verdict::BadQuestion;
    }
    let truncated = resp[2] & TC != 0;
    if !lenient {
        if resp[2] & AA == 0 {
            return Verdict::NotAuthoritative;
        }
        let rcode = resp[3] & 0x0F;
        let good = match expect {
            Expect::NoError => rcode == RCODE_NOERROR,
            Expect::NxDomain => rcode == RCODE_NXDOMAIN,
            Expect::Any => true,
        };
        if !good {
            return Verdict::BadRcode(rcode);
        }
    }
    if truncated {
        Verdict::Truncated
    } else {
        Verdict::Ok
    }
}

/// The ID of a message (0 for one shorter than two bytes).
pub fn id_of(msg: &[u8]) -> u16 {
    match msg {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// RCODE of a response, if it has a header.
pub fn rcode_of(msg: &[u8]) -> Option<u8> {
    msg.get(3).map(|b| b & 0x0F)
}

/// Returns the answer-section records of type `qtype` as raw RDATA slices, for probes that
/// need to see the data (the reload probe looks for a new A address). Returns `None` when the
/// message cannot be walked.
pub fn answer_rdatas(msg: &[u8], qtype: u16) -> Option<Vec<&[u8]>> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        pos = skip_name(msg, pos)?;
        let fixed = msg.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        pos += 10;
        let rdata = msg.get(pos..pos + rdlen)?;
        if rtype == qtype {
            out.push(rdata);
        }
        pos += rdlen;
    }
    Some(out)
}

/// Position just after the (possibly compressed) name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => return Some(pos + 2),
            l if l & 0xC0 == 0 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_for(query: &[u8], flags2: u8, rcode: u8) -> Vec<u8> {
        let mut r = query.to_vec();
        r[2] = flags2;
        r[3] = rcode;
        r
    }

    #[test]
    fn encodes_a_query_with_edns() {
        let (q, qlen) =
            encode_query("bsf.mnc01.mcc202.lwm2m.org", TYPE_SRV, Some(1232), &[]).unwrap();
        assert_eq!(qlen, 28 + 4);
        assert_eq!(&q[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(q[12], 3);
        assert_eq!(&q[13..16], b"bsf");
        assert_eq!(q.len(), 12 + qlen + 11);
        // With an option: RDLENGTH counts it, and it ends the message.
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let (c, _) =
            encode_query("bsf.mnc01.mcc202.lwm2m.org", TYPE_SRV, Some(1232), &cookie).unwrap();
        assert_eq!(c.len(), q.len() + 12);
        assert_eq!(&c[q.len() - 2..q.len()], &[0, 12]);
        assert_eq!(&c[q.len()..], &cookie);
    }

    #[test]
    fn rejects_bad_names() {
        assert!(encode_query("a..b", TYPE_A, None, &[]).is_err());
        let long = "x".repeat(64);
        assert!(encode_query(&long, TYPE_A, None, &[]).is_err());
        assert!(encode_query(".", TYPE_A, None, &[]).is_ok());
    }

    #[test]
    fn judges_responses() {
        let (q, qlen) = encode_query("BsF.example", TYPE_A, None, &[]).unwrap();
        let ok = response_for(&q, QR | AA, 0);
        assert_eq!(check(&ok, &q, qlen, Expect::NoError, false), Verdict::Ok);
        assert_eq!(
            check(&ok, &q, qlen, Expect::NxDomain, false),
            Verdict::BadRcode(0)
        );
        let nx = response_for(&q, QR | AA, 3);
        assert_eq!(check(&nx, &q, qlen, Expect::NxDomain, false), Verdict::Ok);
        assert_eq!(check(&nx, &q, qlen, Expect::NoError, true), Verdict::Ok);
        let noaa = response_for(&q, QR, 0);
        assert_eq!(
            check(&noaa, &q, qlen, Expect::NoError, false),
            Verdict::NotAuthoritative
        );
        assert_eq!(
            check(&q, &q, qlen, Expect::NoError, false),
            Verdict::NotResponse
        );
        let tc = response_for(&q, QR | AA | TC, 0);
        assert_eq!(
            check(&tc, &q, qlen, Expect::NoError, false),
            Verdict::Truncated
        );
        assert_eq!(
            check(&q[..5], &q, qlen, Expect::NoError, false),
            Verdict::Malformed
        );
    }

    #[test]
    fn question_case_must_be_echoed() {
        let (q, qlen) = encode_query("BsF.example", TYPE_A, None, &[]).unwrap();
        let mut r = response_for(&q, QR | AA, 0);
        r[13] = b'b';
        assert_eq!(
            check(&r, &q, qlen, Expect::NoError, false),
            Verdict::BadQuestion
        );
        assert_eq!(
            check(&r, &q, qlen, Expect::NoError, true),
            Verdict::BadQuestion
        );
    }

    #[test]
    fn types_round_trip() {
        for t in [
            TYPE_A, TYPE_AAAA, TYPE_TXT, TYPE_SRV, TYPE_URI, TYPE_SOA, TYPE_NS, 999,
        ] {
            assert_eq!(parse_type(&type_name(t)), Some(t));
        }
        assert_eq!(parse_type("srv"), Some(TYPE_SRV));
        assert_eq!(parse_type("bogus"), None);
    }

    #[test]
    fn finds_answer_rdata() {
        let (q, _) = encode_query("a.example", TYPE_A, None, &[]).unwrap();
        let mut r = response_for(&q, QR | AA, 0);
        r[7] = 1; // ANCOUNT
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
        let rd = answer_rdatas(&r, TYPE_A).unwrap();
        assert_eq!(rd, vec![&[192u8, 0, 2, 7][..]]);
        assert!(answer_rdatas(&r[..r.len() - 1], TYPE_A).is_none());
    }
}
