//! Reading a DNS query straight from its bytes, without allocating.
//!
//! The per-packet path must be a parse, a hash look-up and a copy. This parser reads exactly
//! what answering needs: header fields, the one question (lower-cased into a stack buffer for
//! the look-up, kept as received for echoing the client's letter case), and the OPT record.
//! Its error type is a small enum because errors are frequent on an exposed port.

use super::cookie::{ReplyCookie, CLIENT_LEN, OPTION_COOKIE, SERVER_LEN_RANGE};
use super::names::NameHasher;

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
    /// The query carries an NSID option (RFC 5001): it asks the server to identify itself.
    pub nsid: bool,
    /// The query carries an edns-tcp-keepalive option (RFC 7828): over TCP, the client asks
    /// how long the server will keep an idle connection open.
    pub tcp_keepalive: bool,
    /// Its first COOKIE option (RFC 7873 §5.2: later ones are ignored).
    pub cookie: CookieOption,
}

/// Where a query's COOKIE option lies (RFC 7873 §4); judged by the responder (`cookie`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieOption {
    Absent,
    /// Of a length RFC 7873 §5.2.2 answers with FORMERR: not a client cookie alone, nor one
    /// followed by a server cookie of 8 to 32 bytes.
    Malformed,
    /// Its data (the client cookie, then any server cookie) is `bytes[at..at + len]`.
    Sent {
        at: u16,
        len: u8,
    },
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
    pub tsig_offset: Option<u32>,
    /// The COOKIE option to answer with, once the responder has judged the query's.
    pub reply_cookie: Option<ReplyCookie>,
    /// The edns-tcp-keepalive TIMEOUT (in units of 100 ms) to answer with: set by the
    /// responder for a TCP query that carries the option (RFC 7828 §3.3.2).
    pub reply_keepalive: Option<u16>,
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
    /// No question, and otherwise well formed: FORMERR, unless the query asks only for a
    /// server cookie (RFC 7873 §5.4; the responder tells).
    NoQuestion,
}

/// Lower-cased QNAME in wire format, in a stack buffer.
pub struct LowerName {
    /// 255 octets: the longest name there is, and so the limit `read_qname` enforces.
    pub bytes: [u8; 255],
    pub len: usize,
}

impl LowerName {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether the bytes are one uncompressed name whose root label is their last byte:
    /// labels of at most 63 octets walked from the first byte land exactly there. Tells
    /// whether a name read by [`scan_question_name`] is the packet's question name.
    pub fn is_well_formed(&self) -> bool {
        self.len > 0 && name_end(self.as_slice(), 0) == Some(self.len - 1)
    }

    /// Whether the name is `suffix` or lies below it, at a label boundary. Walks the labels:
    /// only names the look-up missed need this, so the hot path keeps no label offsets.
    pub fn is_at_or_below(&self, suffix: &[u8]) -> bool {
        let name = self.as_slice();
        let Some(start) = name.len().checked_sub(suffix.len()) else {
            return false;
        };
        if &name[start..] != suffix {
            return false;
        }
        let mut pos = 0;
        while pos < start {
            match name.get(pos) {
                Some(&len) if len != 0 => pos += 1 + len as usize,
                _ => return false,
            }
        }
        pos == start
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// Reads a QNAME at `at` (no compression pointers: a question has nothing to point back to),
/// lower-casing it into `lower`. Returns the offset after the name.
///
/// The labels are walked first (lengths only), then the whole name is copied and lower-cased
/// eight bytes at a time: length octets are at most 63, below `A`, so lower-casing them too
/// changes nothing. Every query's name goes through here, so it is kept short.
fn read_qname(bytes: &[u8], at: usize, lower: &mut LowerName) -> Option<usize> {
    let pos = name_end(bytes, at)?;
    // The name's length limit (255 octets, RFC 1035 §2.3.4) is `lower`'s buffer, checked
    // right here.
    let name = bytes.get(at..=pos)?;
    let out = lower.bytes.get_mut(..name.len())?;
    lower.len = name.len();
    if name.len() < 8 {
        for (dst, src) in out.iter_mut().zip(name) {
            *dst = src.to_ascii_lowercase();
        }
        return Some(pos + 1);
    }
    let (words, _) = name.as_chunks::<8>();
    let (lowered, _) = out.as_chunks_mut::<8>();
    for (src, dst) in words.iter().zip(lowered) {
        *dst = ascii_lowercase_word(u64::from_le_bytes(*src)).to_le_bytes();
    }
    // The last 1..=7 bytes: one word ending with the name, over bytes already lowered
    // (lowering twice changes nothing), instead of a loop byte by byte.
    if name.len() % 8 != 0 {
        if let (Some(last), Some(dst)) = (name.last_chunk::<8>(), out.last_chunk_mut::<8>()) {
            *dst = ascii_lowercase_word(u64::from_le_bytes(*last)).to_le_bytes();
        }
    }
    Some(pos + 1)
}

/// The offset of the root label ending the uncompressed name at `at`: the labels walked by
/// their lengths (none over 63 octets, no pointers) within `bytes`. The walk moves forward
/// one label at a time, so it ends.
#[inline(always)]
fn name_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    loop {
        let len = *bytes.get(pos)? as usize;
        if len == 0 {
            return Some(pos);
        }
        if len > 63 {
            return None;
        }
        pos += 1 + len;
    }
}

/// The UDP path's read of a question name, ahead of answering: the bytes from offset 12 up
/// to and including the first zero byte, lower-cased into `lower`, and their hash by
/// `hasher` (the same as `hasher.hash(lower.as_slice())`). `buffer` is the receive buffer,
/// holding the packet's `packet_len` bytes and at least 12 + 256 bytes in all, so the scan
/// reads whole 16-byte blocks; a name that does not end within the packet or is over 255
/// octets is `None`.
///
/// No label is walked: the name a well-formed question carries ends at its first zero byte
/// unless a label holds a zero byte itself (legal, never in a name we serve). The bytes read
/// are therefore a *candidate*: when they are a key of the index they are the question
/// name (a key is a well-formed name, and its length octets, at most 63, are the packet's:
/// lower-casing only changes bytes from `A` up); otherwise
/// [`LowerName::is_well_formed`] tells. Finding the end 16 bytes at a time, then lowering
/// and hashing 16 bytes at a time (the hasher's blocks are laid out so: the last block is
/// the name's last 16 bytes), replaces a walk of five to seven labels whose end the CPU
/// mispredicts on nearly every packet.
#[inline(always)]
pub fn scan_question_name(
    buffer: &[u8],
    packet_len: usize,
    lower: &mut LowerName,
    hasher: &NameHasher,
) -> Option<u64> {
    let area = buffer.get(12..)?;
    let (blocks, _) = area.as_chunks::<16>();
    let mut len = None;
    for (i, block) in blocks.iter().take(16).enumerate() {
        if let Some(zero) = first_zero(block) {
            len = Some(16 * i + zero + 1);
            break;
        }
    }
    let n = len.filter(|&n| 12 + n <= packet_len)?;
    let name = area.get(..n)?;
    if n < 16 {
        // Short names (the apex and its near children): read the usual way, labels walked.
        let packet = buffer.get(..packet_len)?;
        read_qname(packet, 12, lower)?;
        return Some(hasher.hash(lower.as_slice()));
    }
    let out = lower.bytes.get_mut(..n)?;
    lower.len = n;
    let mut acc = hasher.start(n);
    let mut at = 0;
    while n - at > 16 {
        let (Some(src), Some(dst)) = (
            name.get(at..).and_then(|r| r.first_chunk::<16>()),
            out.get_mut(at..).and_then(|r| r.first_chunk_mut::<16>()),
        ) else {
            return None;
        };
        *dst = ascii_lowercase_block(src);
        let (low, high) = block_words(dst);
        acc = hasher.block(acc, low, high);
        at += 16;
    }
    let (Some(src), Some(dst)) = (name.last_chunk::<16>(), out.last_chunk_mut::<16>()) else {
        return None;
    };
    *dst = ascii_lowercase_block(src);
    let (low, high) = block_words(dst);
    Some(hasher.finish(acc, low, high))
}

/// The offset of the first zero byte of a block, if it has one. On x86_64, SSE2 (part of
/// the architecture's baseline) compares the 16 bytes with zero at once and gathers one bit
/// per byte: four instructions, where the word test below takes some twenty on the block's
/// two 64-bit halves (callgrind; written as a loop over bytes, the compiler makes it longer
/// still).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_zero(block: &[u8; 16]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128,
    };
    // SAFETY: SSE2 is enabled on every x86_64 target, and the load reads the block's 16
    // bytes (an unaligned load: the block has no alignment).
    let zeros = unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast());
        _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_setzero_si128()))
    } as u32;
    (zeros != 0).then(|| zeros.trailing_zeros() as usize)
}

/// The offset of the first zero byte of a block, if it has one: the classic test of a word
/// for a zero byte, whose lowest flagged byte is exact (borrows only flag bytes above it).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn first_zero(block: &[u8; 16]) -> Option<usize> {
    const ONES: u128 = u128::from_le_bytes([0x01; 16]);
    const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);
    let word = u128::from_le_bytes(*block);
    let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
    (zeros != 0).then(|| zeros.trailing_zeros() as usize / 8)
}

/// `to_ascii_lowercase` on 16 bytes, written for the compiler to make it a few vector
/// instructions (SSE2 on x86_64).
#[inline(always)]
fn ascii_lowercase_block(block: &[u8; 16]) -> [u8; 16] {
    block.map(|b| b.to_ascii_lowercase())
}

#[inline(always)]
fn block_words(block: &[u8; 16]) -> (u64, u64) {
    let (low, high) = block.split_at(8);
    let word = |half: &[u8]| {
        half.first_chunk::<8>()
            .map_or(0, |w| u64::from_le_bytes(*w))
    };
    (word(low), word(high))
}

/// `to_ascii_lowercase` on eight bytes at once: each byte in `A..=Z` gains 0x20, all others
/// (including non-ASCII) are left as they are. Per byte, on its low seven bits: adding 0x3F
/// sets bit 7 from `A` (0x41) up, adding 0x25 sets it from `[` (0x5B) up; no sum carries into
/// the next byte.
#[inline(always)]
fn ascii_lowercase_word(word: u64) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = word & LOW7;
    let from_a = low + 0x3F3F_3F3F_3F3F_3F3F;
    let past_z = low + 0x2525_2525_2525_2525;
    let upper = from_a & !past_z & !word & HIGH;
    word | (upper >> 2)
}

/// Reads only the question name of a packet (lower-cased into `lower`), labels walked: what
/// the tests hold `read_qname` and `scan_question_name` to.
#[cfg(test)]
fn question_name(bytes: &[u8], lower: &mut LowerName) -> bool {
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
    let mut query = Query::unread(bytes);
    match parse_into(&mut query, lower, false) {
        Ok(()) => Ok(query),
        Err(Reject::Drop) => Err((Reject::Drop, None)),
        Err(reject) => Err((reject, Some(query))),
    }
}

impl<'a> Query<'a> {
    /// A query of which nothing is read yet, for [`parse_into`].
    #[inline(always)]
    pub fn unread(bytes: &'a [u8]) -> Query<'a> {
        Query {
            id: 0,
            flags: 0,
            opcode: 0,
            qdcount: 0,
            ancount: 0,
            nscount: 0,
            arcount: 0,
            question: None,
            edns: None,
            tsig_offset: None,
            reply_cookie: None,
            reply_keepalive: None,
            bytes,
        }
    }
}

/// The parse, into a query the caller holds (so the packet path copies no query around);
/// `prelowered` says `lower` already holds this packet's question name (read by
/// `question_name`), so it is not read again. On `Reject::FormErr` the query holds what was
/// read; on `Reject::Drop` nothing is to be answered.
// Inlined into the responder: as a call returning the query through a large `Result` it cost
// ~40 instructions per packet more (callgrind), and moving the query out of a `Result` ~40
// again.
#[inline(always)]
pub fn parse_into(
    query: &mut Query<'_>,
    lower: &mut LowerName,
    prelowered: bool,
) -> Result<(), Reject> {
    let bytes = query.bytes;
    // One bounds check for the header, not one per field.
    let Some(&[i0, i1, f0, f1, qd0, qd1, an0, an1, ns0, ns1, ar0, ar1]) = bytes.first_chunk::<12>()
    else {
        return Err(Reject::Drop);
    };
    let flags = u16::from_be_bytes([f0, f1]);
    if flags & FLAG_QR != 0 {
        return Err(Reject::Drop);
    }
    query.id = u16::from_be_bytes([i0, i1]);
    query.flags = flags;
    query.opcode = ((flags >> 11) & 0xF) as u8;
    query.qdcount = u16::from_be_bytes([qd0, qd1]);
    query.ancount = u16::from_be_bytes([an0, an1]);
    query.nscount = u16::from_be_bytes([ns0, ns1]);
    query.arcount = u16::from_be_bytes([ar0, ar1]);
    if query.qdcount != 1 {
        if query.qdcount == 0 {
            // RFC 7873 §5.4: a query without a question may ask for a server cookie; read
            // its OPT record for the responder to tell.
            read_questionless_records(query)?;
            return Err(Reject::NoQuestion);
        }
        return Err(Reject::FormErr);
    }
    // A question name has no compression pointers: its wire length is its lowered length.
    let after_name = if prelowered {
        Some(12 + lower.len)
    } else {
        read_qname(bytes, 12, lower)
    };
    let Some(after_name) = after_name else {
        return Err(Reject::FormErr);
    };
    let Some(&[t0, t1, c0, c1]) = bytes
        .get(after_name..)
        .and_then(|rest| rest.first_chunk::<4>())
    else {
        return Err(Reject::FormErr);
    };
    query.question = Some(Question {
        raw: &bytes[12..after_name + 4],
        name_len: after_name - 12,
        qtype: u16::from_be_bytes([t0, t1]),
        qclass: u16::from_be_bytes([c0, c1]),
    });
    read_records(query, after_name + 4)
}

/// `read_records` for a query without a question: out of line, as few queries are.
#[cold]
#[inline(never)]
fn read_questionless_records(query: &mut Query<'_>) -> Result<(), Reject> {
    read_records(query, 12)
}

/// Reads the answer, authority and additional records from `pos`: the OPT record's EDNS
/// parameters and where a TSIG record lies.
#[inline(always)]
fn read_records(query: &mut Query<'_>, mut pos: usize) -> Result<(), Reject> {
    let bytes = query.bytes;
    let records = query.ancount as usize + query.nscount as usize + query.arcount as usize;
    let first_additional = query.ancount as usize + query.nscount as usize;
    for index in 0..records {
        let start = pos;
        let Some(after_owner) = skip_name(bytes, pos) else {
            return Err(Reject::FormErr);
        };
        // TYPE, CLASS, TTL (for OPT: extended RCODE, version, DO and Z), RDLENGTH.
        let Some(&[r0, r1, c0, c1, _, version, do_z, _, l0, l1]) = bytes
            .get(after_owner..)
            .and_then(|rest| rest.first_chunk::<10>())
        else {
            return Err(Reject::FormErr);
        };
        let rtype = u16::from_be_bytes([r0, r1]);
        let end = after_owner + 10 + u16::from_be_bytes([l0, l1]) as usize;
        if end > bytes.len() {
            return Err(Reject::FormErr);
        }
        if index >= first_additional {
            match rtype {
                TYPE_OPT => {
                    // RFC 6891 §6.1.1: exactly one OPT, owned by the root.
                    if query.edns.is_some() || bytes[start] != 0 {
                        return Err(Reject::FormErr);
                    }
                    let Some(options) = read_options(bytes, after_owner + 10, end) else {
                        return Err(Reject::FormErr);
                    };
                    query.edns = Some(Edns {
                        payload: u16::from_be_bytes([c0, c1]),
                        version,
                        dnssec_ok: do_z & 0x80 != 0,
                        nsid: options.nsid,
                        tcp_keepalive: options.tcp_keepalive,
                        cookie: options.cookie,
                    });
                }
                TYPE_TSIG => {
                    // RFC 8945 §5.1: TSIG must be the last record.
                    if index + 1 != records {
                        return Err(Reject::FormErr);
                    }
                    // A DNS message is at most 65,535 bytes (TCP's length prefix).
                    let Ok(offset) = u32::try_from(start) else {
                        return Err(Reject::FormErr);
                    };
                    query.tsig_offset = Some(offset);
                }
                _ => {}
            }
        }
        pos = end;
    }
    Ok(())
}

/// EDNS option code of NSID (RFC 5001 §2.3).
pub const OPTION_NSID: u16 = 3;
/// EDNS option code of edns-tcp-keepalive (RFC 7828 §3.1).
pub const OPTION_TCP_KEEPALIVE: u16 = 11;

/// The EDNS options of a query that the responder acts on.
struct Options {
    nsid: bool,
    tcp_keepalive: bool,
    cookie: CookieOption,
}

/// Reads the EDNS options in `bytes[start..end]` (the OPT RDATA), (code, length, data)
/// triples that must exactly fill it: whether NSID and edns-tcp-keepalive are among them,
/// and the first COOKIE; `None` when they are malformed. Other options are ignored (RFC 6891
/// §6.1.2), and so is a keepalive option's content: a client sends it empty (RFC 7828 §3.2.1),
/// and what the server answers does not depend on it. Inlined: most queries carry an OPT
/// record, and as a call returning this struct it cost ~60 instructions per query (callgrind).
#[inline(always)]
fn read_options(bytes: &[u8], start: usize, end: usize) -> Option<Options> {
    let mut options = Options {
        nsid: false,
        tcp_keepalive: false,
        cookie: CookieOption::Absent,
    };
    let mut pos = start;
    while pos < end {
        let code = read_u16(bytes, pos)?;
        let len = read_u16(bytes, pos + 2)? as usize;
        let data = pos + 4;
        pos = data + len;
        if pos > end {
            return None;
        }
        options.nsid |= code == OPTION_NSID;
        options.tcp_keepalive |= code == OPTION_TCP_KEEPALIVE;
        if code == OPTION_COOKIE && options.cookie == CookieOption::Absent {
            options.cookie = cookie_option(data, len);
        }
    }
    Some(options)
}

/// A COOKIE option's data at `at`, of `len` bytes: a client cookie, alone or followed by a
/// server cookie.
#[cold]
fn cookie_option(at: usize, len: usize) -> CookieOption {
    let server = len.wrapping_sub(CLIENT_LEN);
    if len == CLIENT_LEN || SERVER_LEN_RANGE.contains(&server) {
        // An OPT record lies within a message of at most 65535 bytes.
        CookieOption::Sent {
            at: at as u16,
            len: len as u8,
        }
    } else {
        CookieOption::Malformed
    }
}

impl LowerName {
    pub fn new() -> Self {
        LowerName {
            bytes: [0; 255],
            len: 0,
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
    #[test]
    fn word_lowercasing_matches_the_byte_rule() {
        for value in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = [b'Q'; 8];
                bytes[at] = value;
                let got = ascii_lowercase_word(u64::from_le_bytes(bytes)).to_le_bytes();
                let want = bytes.map(|b| b.to_ascii_lowercase());
                assert_eq!(got, want, "byte {value:#04x} at {at}");
            }
        }
    }

    /// `scan_question_name` on `packet` in a receive buffer that extends past it.
    fn scan(packet: &[u8], lower: &mut LowerName) -> Option<u64> {
        let mut buffer = packet.to_vec();
        buffer.resize(packet.len().max(12 + 256 + 16), 0x41);
        scan_question_name(&buffer, packet.len(), lower, &NameHasher::get())
    }

    #[test]
    fn scanned_names_are_lowered_and_hashed_as_the_index_hashes_keys() {
        let hasher = NameHasher::get();
        let mut lower = LowerName::new();
        // Names of every length from the root to the longest (255 octets), in mixed case,
        // labels of varied lengths, followed by QTYPE and QCLASS.
        let mut lengths = 0;
        for len in 1..=255usize {
            let mut wire = Vec::new();
            let mut label = 0;
            while wire.len() + 1 < len {
                let room = len - 1 - wire.len() - 1;
                let size = (label % 63 + 1).min(room.max(1));
                wire.push(size as u8);
                wire.extend((0..size).map(|i| if (i + label) % 3 == 0 { b'Q' } else { b'z' }));
                label += 7;
            }
            if wire.len() + 1 != len {
                continue;
            }
            lengths += 1;
            wire.push(0);
            let mut packet = vec![0u8; 12];
            packet.extend_from_slice(&wire);
            packet.extend_from_slice(&[0, 1, 0, 1]);
            let hash = scan(&packet, &mut lower);
            assert_eq!(
                lower.as_slice(),
                wire.to_ascii_lowercase().as_slice(),
                "{len}"
            );
            assert_eq!(hash, Some(hasher.hash(lower.as_slice())), "{len}");
            assert!(lower.is_well_formed(), "{len}");
        }
        assert!(lengths > 200, "{lengths} lengths");
        // No zero byte within the packet, or none within 256 bytes: no name.
        for bad in [&[3, b'a', b'b'][..], &[63; 300]] {
            let mut packet = vec![0u8; 12];
            packet.extend_from_slice(bad);
            assert_eq!(scan(&packet, &mut lower), None, "{bad:?}");
        }
        // A first zero byte that is not the root label (in a label, in QTYPE after a
        // pointer, after a length octet over 63): read, and told apart.
        for (candidate, want) in [
            (
                &b"\x14AaaaaaaaaaaaaaaaaA\x00b\x03org\x00\x00\x01\x00\x01"[..],
                &b"\x14aaaaaaaaaaaaaaaaaa\x00"[..],
            ),
            (
                b"\x10aaaaaaaaaaaaaaaa\x03org\xC0\x0c\x00\x01",
                b"\x10aaaaaaaaaaaaaaaa\x03org\xc0\x0c\x00",
            ),
            (
                b"\x41aaaaaaaaaaaaaaaaaaaaaaaaa\x00",
                b"\x61aaaaaaaaaaaaaaaaaaaaaaaaa\x00",
            ),
        ] {
            let mut packet = vec![0u8; 12];
            packet.extend_from_slice(candidate);
            assert!(scan(&packet, &mut lower).is_some());
            assert_eq!(lower.as_slice(), want);
            assert!(!lower.is_well_formed(), "{candidate:?}");
        }
        // A name shorter than one block is walked: a label with a zero byte is read whole.
        let mut packet = vec![0u8; 12];
        packet.extend_from_slice(b"\x05aB\x00dE\x03org\x00\x00\x01\x00\x01");
        assert!(scan(&packet, &mut lower).is_some());
        assert_eq!(lower.as_slice(), b"\x05ab\x00de\x03org\x00");
        assert!(lower.is_well_formed());
    }

    #[test]
    fn question_names_are_lowered_whole_and_placed_under_suffixes() {
        let mut lower = LowerName::new();
        // Names of every length class around the eight-byte steps, in mixed case.
        for extra in 0..20 {
            let first = "Ab".repeat(extra / 2 + 1);
            let wire: Vec<u8> = [first.as_str(), "BsF", "lwM2m", "ORG"]
                .iter()
                .flat_map(|l| std::iter::once(l.len() as u8).chain(l.bytes()))
                .chain([0])
                .collect();
            let mut packet = vec![0u8; 12];
            packet.extend_from_slice(&wire);
            assert!(question_name(&packet, &mut lower));
            assert_eq!(lower.as_slice(), wire.to_ascii_lowercase().as_slice());
            assert!(lower.is_at_or_below(b"\x05lwm2m\x03org\x00"));
            assert!(lower.is_at_or_below(b"\x03bsf\x05lwm2m\x03org\x00"));
            assert!(lower.is_at_or_below(b"\x00"));
            assert!(!lower.is_at_or_below(b"\x03org\x01x\x00"));
            // A suffix that matches bytes but not at a label boundary.
            assert!(!lower.is_at_or_below(b"\x02sf\x05lwm2m\x03org\x00"));
            assert!(!lower.is_at_or_below(b"org\x00"));
        }
        // Names shorter than one eight-byte step, the root included.
        for wire in [
            &b"\x00"[..],
            b"\x01Q\x00",
            b"\x02Ab\x01C\x00",
            b"\x06XyZzY\x5B\x00",
        ] {
            let mut packet = vec![0u8; 12];
            packet.extend_from_slice(wire);
            assert!(question_name(&packet, &mut lower));
            assert_eq!(lower.as_slice(), wire.to_ascii_lowercase().as_slice());
        }
        // A pointer, a label over 63 octets, a name over 255, a missing end: not names.
        for bad in [&[0xC0u8, 12][..], &[64], &[3, b'a', b'b']] {
            let mut packet = vec![0u8; 12];
            packet.extend_from_slice(bad);
            assert!(!question_name(&packet, &mut lower), "{bad:?}");
        }
        let mut long = vec![0u8; 12];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'x'; 63]);
        }
        long.push(0);
        assert!(!question_name(&long, &mut lower));
        // At the limit: 255 octets is a name (RFC 1035 §2.3.4), 256 is not.
        for (last_label, accepted) in [(61u8, true), (62, false)] {
            let mut packet = vec![0u8; 12];
            for _ in 0..3 {
                packet.push(63);
                packet.extend_from_slice(&[b'Y'; 63]);
            }
            packet.push(last_label);
            packet.extend(std::iter::repeat_n(b'z', last_label as usize));
            packet.push(0);
            assert_eq!(question_name(&packet, &mut lower), accepted, "{last_label}");
            if accepted {
                assert_eq!(lower.len, 255);
                assert_eq!(lower.bytes[1], b'y');
            }
        }
    }

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
                dnssec_ok: true,
                nsid: false,
                tcp_keepalive: false,
                cookie: CookieOption::Absent,
            })
        );
        // NSID and edns-tcp-keepalive asked for among other options (a cookie before them,
        // padding after).
        let options = [
            &[0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 24][..],
            &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0, 3, 0, 0],
            &[0, 11, 0, 0],
            &[0, 12, 0, 0],
        ]
        .concat();
        let bytes = query(b"\x00", 6, &options, 1);
        let edns = parse(&bytes, &mut lower).unwrap().edns.unwrap();
        assert!(edns.nsid && edns.tcp_keepalive);
        // The cookie's data lies after header, question (1 + 4), OPT (11) and option head.
        let at = 12 + 5 + 11 + 4;
        assert_eq!(edns.cookie, CookieOption::Sent { at, len: 8 });
        assert_eq!(
            bytes[at as usize..at as usize + 8],
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        let two = [opt, opt].concat();
        let bytes = query(b"\x00", 6, &two, 2);
        assert_eq!(parse(&bytes, &mut lower).unwrap_err().0, Reject::FormErr);
        let bad_option = [0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 3, 0, 10, 0];
        let bytes = query(b"\x00", 6, &bad_option, 1);
        assert_eq!(parse(&bytes, &mut lower).unwrap_err().0, Reject::FormErr);
    }

    /// RFC 7873 §5.2.2: a client cookie alone or with a server cookie of 8 to 32 bytes; the
    /// first COOKIE option counts.
    #[test]
    fn cookie_option_lengths() {
        let mut lower = LowerName::new();
        let cookie_of = |options: &[&[u8]]| {
            let data: Vec<u8> = options
                .iter()
                .flat_map(|o| [&[0u8, 10][..], &(o.len() as u16).to_be_bytes(), o].concat())
                .collect();
            let mut opt = vec![0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
            opt.extend_from_slice(&(data.len() as u16).to_be_bytes());
            opt.extend_from_slice(&data);
            let bytes = query(b"\x00", 1, &opt, 1);
            parse(&bytes, &mut LowerName::new())
                .unwrap()
                .edns
                .unwrap()
                .cookie
        };
        for len in [8, 16, 24, 40] {
            assert!(
                matches!(cookie_of(&[&vec![0; len]]), CookieOption::Sent { len: l, .. } if l as usize == len),
                "{len}"
            );
        }
        for len in [0, 7, 9, 15, 41] {
            assert_eq!(
                cookie_of(&[&vec![0; len]]),
                CookieOption::Malformed,
                "{len}"
            );
        }
        assert!(matches!(
            cookie_of(&[&[0; 8], &[0; 3]]),
            CookieOption::Sent { len: 8, .. }
        ));
        // A query without a question still has its OPT record read.
        let opt = [
            0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let mut bytes = vec![0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
        bytes.extend_from_slice(&opt);
        let (reject, read) = parse(&bytes, &mut lower).unwrap_err();
        assert_eq!(reject, Reject::NoQuestion);
        let edns = read.unwrap().edns.unwrap();
        assert_eq!(edns.cookie, CookieOption::Sent { at: 27, len: 8 });
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
