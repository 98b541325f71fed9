//! Reading a DNS query straight from its bytes, without allocating.
//!
//! The per-packet path must be a parse, a hash look-up and a copy. This parser reads exactly
//! what answering needs: header fields, the one question (lower-cased into a stack buffer for
//! the look-up, kept as received for echoing the client's letter case), and the OPT record.
//! Its error type is a small enum because errors are frequent on an exposed port.

/// Header flag bits (RFC 1035 §4.1.1), in the 16-bit flags word.
pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_CD: u16 = 0x0010;

pub const TYPE_OPT: u16 = 41;
pub const TYPE_TSIG: u16 = 250;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

pub const OPCODE_QUERY: u8 = 0;

/// The EDNS(0) parameters of a query (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// The question, both as received and lower-cased for look-ups.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// QNAME, QTYPE and QCLASS exactly as the client sent them (its letter case included).
    pub raw: &'a [u8],
    /// Length of QNAME in `raw`.
    pub name_len: usize,
    pub qtype: u16,
    pub qclass: u16,
}

/// A query as far as it could be read.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub id: u16,
    pub flags: u16,
    pub opcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    pub question: Option<Question<'a>>,
    pub edns: Option<Edns>,
    /// Offset of a TSIG record (the last of the additional section), if any.
    pub tsig_offset: Option<usize>,
    /// The whole message.
    pub bytes: &'a [u8],
}

/// Why a query cannot be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not worth an answer: too short for a header, or itself a response (no reflection loops).
    Drop,
    /// Malformed after a readable header: answer FORMERR.
    FormErr,
}

/// Lower-cased QNAME in wire format, in a stack buffer.
pub struct LowerName {
    pub bytes: [u8; 255],
    pub len: usize,
    /// Offsets at which labels start, to find the apex suffix at a label boundary.
    pub label_starts: [u8; 128],
    pub labels: usize,
}

impl LowerName {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether the name is `suffix` or lies below it, at a label boundary.
    #[inline(always)]
    pub fn is_at_or_below(&self, suffix: &[u8]) -> bool {
        if suffix.len() > self.len {
            return false;
        }
        let start = self.len - suffix.len();
        self.label_starts[..self.labels]
            .iter()
            .any(|&s| s as usize == start)
            && &self.bytes[start..self.len] == suffix
            || (start == self.len - 1 && suffix == [0])
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// Reads a QNAME at `at` (no compression pointers: a question has nothing to point back to),
/// lower-casing it into `lower`. Returns the offset after the name.
fn read_qname(bytes: &[u8], at: usize, lower: &mut LowerName) -> Option<usize> {
    let mut pos = at;
    lower.len = 0;
    lower.labels = 0;
    loop {
        let len = *bytes.get(pos)? as usize;
        if len == 0 {
            *lower.bytes.get_mut(lower.len)? = 0;
            lower.len += 1;
            return Some(pos + 1);
        }
        if len > 63 || lower.len + 1 + len + 1 > 255 {
            return None;
        }
        let label = bytes.get(pos + 1..pos + 1 + len)?;
        *lower.label_starts.get_mut(lower.labels)? = lower.len as u8;
        lower.labels += 1;
        lower.bytes[lower.len] = len as u8;
        for (dst, &src) in lower.bytes[lower.len + 1..lower.len + 1 + len]
            .iter_mut()
            .zip(label)
        {
            *dst = src.to_ascii_lowercase();
        }
        lower.len += 1 + len;
        pos += 1 + len;
    }
}

/// Reads only the question name of a packet (lower-cased into `lower`), for prefetching; the
/// full parse comes later.
pub fn question_name(bytes: &[u8], lower: &mut LowerName) -> bool {
    bytes.len() >= 12 && read_qname(bytes, 12, lower).is_some()
}

/// Skips a possibly compressed name (in records after the question); the offset after it.
pub fn skip_name(bytes: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *bytes.get(pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + len as usize,
            0xC0 => {
                bytes.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
    None
}

/// Parses a query. On success the question (if QDCOUNT is 1) is in `lower` and `Query`.
pub fn parse<'a>(
    bytes: &'a [u8],
    lower: &mut LowerName,
) -> Result<Query<'a>, (Reject, Option<Query<'a>>)> {
    parse_with(bytes, lower, false)
}

/// `parse`, where `prelowered` says `lower` already holds this packet's question name (read by
/// `question_name`), so it is not read again.
pub fn parse_with<'a>(
    bytes: &'a [u8],
    lower: &mut LowerName,
    prelowered: bool,
) -> Result<Query<'a>, (Reject, Option<Query<'a>>)> {
    if bytes.len() < 12 {
        return Err((Reject::Drop, None));
    }
    let flags = read_u16(bytes, 2).unwrap_or(0);
    if flags & FLAG_QR != 0 {
        return Err((Reject::Drop, None));
    }
    let mut query = Query {
        id: read_u16(bytes, 0).unwrap_or(0),
        flags,
        opcode: ((flags >> 11) & 0xF) as u8,
        qdcount: read_u16(bytes, 4).unwrap_or(0),
        ancount: read_u16(bytes, 6).unwrap_or(0),
        nscount: read_u16(bytes, 8).unwrap_or(0),
        arcount: read_u16(bytes, 10).unwrap_or(0),
        question: None,
        edns: None,
        tsig_offset: None,
        bytes,
    };
    if query.qdcount != 1 {
        return Err((Reject::FormErr, Some(query)));
    }
    // A question name has no compression pointers: its wire length is its lowered length.
    let after_name = if prelowered {
        Some(12 + lower.len)
    } else {
        read_qname(bytes, 12, lower)
    };
    let Some(after_name) = after_name else {
        return Err((Reject::FormErr, Some(query)));
    };
    let (Some(qtype), Some(qclass)) =
        (read_u16(bytes, after_name), read_u16(bytes, after_name + 2))
    else {
        return Err((Reject::FormErr, Some(query)));
    };
    query.question = Some(Question {
        raw: &bytes[12..after_name + 4],
        name_len: after_name - 12,
        qtype,
        qclass,
    });
    let mut pos = after_name + 4;
    let records = query.ancount as usize + query.nscount as usize + query.arcount as usize;
    let first_additional = query.ancount as usize + query.nscount as usize;
    for index in 0..records {
        let start = pos;
        let Some(after_owner) = skip_name(bytes, pos) else {
            return Err((Reject::FormErr, Some(query)));
        };
        let (Some(rtype), Some(class), Some(ttl_hi), Some(ttl_lo), Some(rdlen)) = (
            read_u16(bytes, after_owner),
            read_u16(bytes, after_owner + 2),
            read_u16(bytes, after_owner + 4),
            read_u16(bytes, after_owner + 6),
            read_u16(bytes, after_owner + 8),
        ) else {
            return Err((Reject::FormErr, Some(query)));
        };
        let end = after_owner + 10 + rdlen as usize;
        if end > bytes.len() {
            return Err((Reject::FormErr, Some(query)));
        }
        if index >= first_additional {
            match rtype {
                TYPE_OPT => {
                    // RFC 6891 §6.1.1: exactly one OPT, owned by the root.
                    if query.edns.is_some()
                        || bytes[start] != 0
                        || !options_well_formed(&bytes[after_owner + 10..end])
                    {
                        return Err((Reject::FormErr, Some(query)));
                    }
                    query.edns = Some(Edns {
                        payload: class,
                        version: (ttl_hi & 0xFF) as u8,
                        dnssec_ok: ttl_lo & 0x8000 != 0,
                    });
                }
                TYPE_TSIG => {
                    // RFC 8945 §5.1: TSIG must be the last record.
                    if index + 1 != records {
                        return Err((Reject::FormErr, Some(query)));
                    }
                    query.tsig_offset = Some(start);
                }
                _ => {}
            }
        }
        pos = end;
    }
    Ok(query)
}

/// EDNS options are (code, length, data) triples that must exactly fill the RDATA.
fn options_well_formed(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let Some(len) = read_u16(rdata, 2) else {
            return false;
        };
        let Some(rest) = rdata.get(4 + len as usize..) else {
            return false;
        };
        rdata = rest;
    }
    true
}

impl LowerName {
    pub fn new() -> Self {
        LowerName {
            bytes: [0; 255],
            len: 0,
            label_starts: [0; 128],
            labels: 0,
        }
    }
}

impl Default for LowerName {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        q.extend_from_slice(&arcount.to_be_bytes());
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q.extend_from_slice(extra);
        q
    }

    #[test]
    fn reads_question_and_lowercases() {
        let bytes = query(b"\x03BsF\x05lwm2m\x03ORG\x00", 1, &[], 0);
        let mut lower = LowerName::new();
        let q = parse(&bytes, &mut lower).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(lower.as_slice(), b"\x03bsf\x05lwm2m\x03org\x00");
        let question = q.question.unwrap();
        assert_eq!(
            &question.raw[..question.name_len],
            b"\x03BsF\x05lwm2m\x03ORG\x00"
        );
        assert!(lower.is_at_or_below(b"\x05lwm2m\x03org\x00"));
        assert!(!lower.is_at_or_below(b"\x04wm2m\x03org\x00"));
        assert!(lower.is_at_or_below(b"\x00"));
    }

    #[test]
    fn edns_and_its_errors() {
        let opt = [0u8, 0, 41, 0x04, 0xd0, 0, 1, 0x80, 0, 0, 0];
        let bytes = query(b"\x00", 6, &opt, 1);
        let mut lower = LowerName::new();
        let q = parse(&bytes, &mut lower).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                payload: 1232,
                version: 1,
                dnssec_ok: true
            })
        );
        let two = [opt, opt].concat();
        let bytes = query(b"\x00", 6, &two, 2);
        assert_eq!(parse(&bytes, &mut lower).unwrap_err().0, Reject::FormErr);
        let bad_option = [0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 3, 0, 10, 0];
        let bytes = query(b"\x00", 6, &bad_option, 1);
        assert_eq!(parse(&bytes, &mut lower).unwrap_err().0, Reject::FormErr);
    }

    #[test]
    fn malformed_queries() {
        let mut lower = LowerName::new();
        assert_eq!(parse(&[0; 11], &mut lower).unwrap_err().0, Reject::Drop);
        let mut response = query(b"\x00", 1, &[], 0);
        response[2] |= 0x80;
        assert_eq!(parse(&response, &mut lower).unwrap_err().0, Reject::Drop);
        // Compression pointer in the question, truncated question, over-long label.
        for name in [&b"\xc0\x0c"[..], b"\x03bsf", b"\x40aaaa\x00"] {
            let bytes = query(name, 1, &[], 0);
            assert_eq!(parse(&bytes, &mut lower).unwrap_err().0, Reject::FormErr);
        }
        let mut truncated = query(b"\x00", 1, &[], 0);
        truncated.pop();
        assert_eq!(
            parse(&truncated, &mut lower).unwrap_err().0,
            Reject::FormErr
        );
        // Two questions.
        let mut two = query(b"\x00", 1, &[], 0);
        two[5] = 2;
        assert_eq!(parse(&two, &mut lower).unwrap_err().0, Reject::FormErr);
        // A name longer than 255 octets.
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        let bytes = query(&long, 1, &[], 0);
        assert_eq!(parse(&bytes, &mut lower).unwrap_err().0, Reject::FormErr);
    }
}
