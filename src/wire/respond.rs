//! From query bytes to response bytes: the per-packet path shared by UDP and TCP.
//!
//! The path is: parse (no allocation), look the lower-cased name up in the snapshot, write the
//! prebuilt answer's header (ID and flags patched), the client's question and the answer's
//! records. Negative answers and errors are built in place from the question and the
//! snapshot's SOA. Only names of networks served by the default template take a slower path
//! that builds records on demand.
//!
//! Protocol rules applied here (DESIGN.md §3): AA=1 and RA=0; the question echoed with the
//! client's letter case; EDNS(0) OPT echoed with our payload size, the client's size honoured
//! up to our maximum (512 without EDNS), TC=1 when the answer does not fit, BADVERS for a
//! version above 0, unknown options ignored, DO copied (RFC 3225); FORMERR for QDCOUNT ≠ 1 and
//! malformed packets with a readable header; NOTIMP for opcodes other than QUERY; REFUSED for
//! other classes and names outside the zone; responses (QR=1) are never answered.

use std::net::IpAddr;

use hickory_proto::op::Query as HickoryQuery;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::cookie;
use super::encode::Encoder;
use super::identity;
use super::names::Prebuilt;
use super::query::{
    parse, parse_into, CookieOption, Edns, LowerName, Query, Question, Reject, CLASS_ANY, CLASS_IN,
    FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RD, FLAG_TC, OPCODE_QUERY, OPTION_TCP_KEEPALIVE, TYPE_ANY,
    TYPE_AXFR, TYPE_IXFR, TYPE_OPT,
};
use super::snapshot::{prebuild, Snapshot};
use crate::zone::lookup::{lookup, Transport};

pub(super) const RCODE_NOERROR: u16 = 0;
const RCODE_FORMERR: u16 = 1;
pub(super) const RCODE_NXDOMAIN: u16 = 3;
const RCODE_NOTIMP: u16 = 4;
const RCODE_REFUSED: u16 = 5;
/// Extended RCODEs (RFC 6891 §6.1.3): the upper 8 bits go in the OPT record, the lower 4 in
/// the header.
const RCODE_BADVERS: u16 = 16;
const RCODE_BADCOOKIE: u16 = 23;

/// Extended DNS Errors (RFC 8914 §4) telling a client why it was refused: not allowed to ask
/// (`allow-query`), a name or class outside the zone, a zone transfer over UDP.
const OPTION_EDE: u16 = 15;
const EDE_PROHIBITED: u16 = 18;
const EDE_NOT_AUTHORITATIVE: u16 = 20;
const EDE_NOT_SUPPORTED: u16 = 21;
/// Bytes of an EDE option without extra text: code, length, INFO-CODE.
const EDE_OPTION_LEN: usize = 6;
/// Bytes of an edns-tcp-keepalive option with its TIMEOUT (RFC 7828 §3.1).
const KEEPALIVE_OPTION_LEN: usize = 6;

/// Responses without EDNS must fit in 512 octets (RFC 1035 §4.2.1).
pub(super) const CLASSIC_UDP_LIMIT: usize = 512;
/// Bytes of an OPT record without options.
pub(super) const OPT_LEN: usize = 11;

/// Reusable per-worker state, so the packet path allocates nothing.
pub struct Responder {
    lower: LowerName,
    /// On a TCP connection: the idle timeout to tell clients that ask (edns-tcp-keepalive,
    /// RFC 7828), in units of 100 ms.
    tcp_keepalive: Option<u16>,
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

/// What the transport should do with the output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
}

impl Responder {
    pub fn new() -> Self {
        Responder {
            lower: LowerName::new(),
            tcp_keepalive: None,
        }
    }

    /// A responder for TCP connections that the server closes after `idle_timeout` without
    /// a query: a query carrying an edns-tcp-keepalive option is told so (RFC 7828 §3.3.2),
    /// in the option's units of 100 ms (at most 6,553.5 s).
    pub fn for_tcp(idle_timeout: std::time::Duration) -> Self {
        let units = idle_timeout.as_millis() / 100;
        Responder {
            lower: LowerName::new(),
            tcp_keepalive: Some(u16::try_from(units).unwrap_or(u16::MAX)),
        }
    }

    /// Answers REFUSED to a client the access list does not allow (RFC 1035 §4.1.1: the
    /// server refuses for policy reasons). Malformed packets and responses are dropped.
    pub fn refuse(&mut self, snapshot: &Snapshot, packet: &[u8], out: &mut Vec<u8>) -> Verdict {
        out.clear();
        match parse(packet, &mut self.lower) {
            Ok(mut query) => {
                offer_keepalive(&mut query, self.tcp_keepalive);
                let question = query.question.map(|q| q.raw);
                write_error(
                    out,
                    snapshot,
                    &query,
                    question,
                    RCODE_REFUSED,
                    query.edns,
                    Some(EDE_PROHIBITED),
                );
                Verdict::Send
            }
            Err(_) => Verdict::Drop,
        }
    }

    /// Answers `packet` into `out` (cleared first), not knowing who sent it: COOKIE options
    /// are then ignored (a server cookie is bound to the client's address).
    pub fn respond(
        &mut self,
        snapshot: &Snapshot,
        packet: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Verdict {
        self.respond_from(snapshot, packet, transport, None, out)
    }

    /// `respond` for a packet from `client` (when known).
    pub fn respond_from(
        &mut self,
        snapshot: &Snapshot,
        packet: &[u8],
        transport: Transport,
        client: Option<IpAddr>,
        out: &mut Vec<u8>,
    ) -> Verdict {
        let lower = &mut self.lower;
        let keepalive = self.tcp_keepalive;
        answer(
            snapshot,
            packet,
            transport,
            out,
            lower,
            false,
            None,
            keepalive,
            || client,
        )
    }

    /// As `respond_from`, for a packet whose question name the caller already read into
    /// `lower` and hashed (`query::scan_question_name`, the name checked by
    /// `LowerName::is_well_formed`): the UDP path does both ahead for a whole batch, to
    /// prefetch, and they are not done again here. The client's
    /// address is asked for only when a query carries a cookie.
    #[allow(clippy::too_many_arguments)]
    pub fn respond_prepared(
        &mut self,
        snapshot: &Snapshot,
        packet: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
        lower: &mut LowerName,
        hash: u64,
        client: impl FnOnce() -> Option<IpAddr>,
    ) -> Verdict {
        answer(
            snapshot,
            packet,
            transport,
            out,
            lower,
            true,
            Some(hash),
            None,
            client,
        )
    }
}

/// The responder's work; `lower` is the question-name buffer (already filled when
/// `prelowered`); `keepalive`, the responder's idle timeout to tell (TCP only); `client`
/// gives the sender's address, asked for when a query has a cookie.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn answer(
    snapshot: &Snapshot,
    packet: &[u8],
    transport: Transport,
    out: &mut Vec<u8>,
    lower: &mut LowerName,
    prelowered: bool,
    hash: Option<u64>,
    keepalive: Option<u16>,
    client: impl FnOnce() -> Option<IpAddr>,
) -> Verdict {
    {
        out.clear();
        let mut query = Query::unread(packet);
        let parsed = parse_into(&mut query, lower, prelowered);
        offer_keepalive(&mut query, keepalive);
        // A cookie is judged for a query read whole, or one that only asks for a cookie.
        if matches!(parsed, Ok(()) | Err(Reject::NoQuestion)) {
            if let Some(sent) = sent_cookie(snapshot, &query) {
                let judged = judge_cookie(out, snapshot, &mut query, sent, transport, client);
                if let Some(verdict) = judged {
                    return verdict;
                }
            }
        }
        match parsed {
            Ok(()) => {}
            Err(Reject::Drop) => return Verdict::Drop,
            Err(Reject::FormErr | Reject::NoQuestion) => {
                // The question is echoed only when it was read whole and is the only one.
                let question = query.question.filter(|_| query.qdcount == 1);
                write_error(
                    out,
                    snapshot,
                    &query,
                    question.map(|q| q.raw),
                    RCODE_FORMERR,
                    None,
                    None,
                );
                return Verdict::Send;
            }
        };
        let raw_question = query.question.map(|q| q.raw);
        let Some(question) = query.question else {
            write_error(out, snapshot, &query, None, RCODE_FORMERR, None, None);
            return Verdict::Send;
        };
        if query.opcode != OPCODE_QUERY {
            write_error(
                out,
                snapshot,
                &query,
                raw_question,
                RCODE_NOTIMP,
                query.edns,
                None,
            );
            return Verdict::Send;
        }
        // A standard query carries no answer or authority records (IXFR puts its SOA in
        // the authority section).
        if query.ancount != 0
            || (query.nscount != 0 && question.qtype != TYPE_IXFR)
            || question.qtype == TYPE_OPT
        {
            write_error(
                out,
                snapshot,
                &query,
                raw_question,
                RCODE_FORMERR,
                query.edns,
                None,
            );
            return Verdict::Send;
        }
        if let Some(edns) = query.edns.filter(|e| e.version > 0) {
            write_error(
                out,
                snapshot,
                &query,
                raw_question,
                RCODE_BADVERS,
                Some(edns),
                None,
            );
            return Verdict::Send;
        }
        // Other classes and zone transfers (never over UDP; over TCP they are the transfer
        // module's job) are refused; so are names outside the zone, below, once the look-up
        // has missed (every compiled name lies in the zone, so a hit needs no such check).
        let refuse = |out: &mut Vec<u8>, reason| {
            let edns = query.edns;
            write_error(
                out,
                snapshot,
                &query,
                raw_question,
                RCODE_REFUSED,
                edns,
                Some(reason),
            )
        };
        let limit = size_limit(snapshot, transport, query.edns);
        if !matches!(question.qclass, CLASS_IN | CLASS_ANY)
            || matches!(question.qtype, TYPE_AXFR | TYPE_IXFR)
        {
            if !write_chaos(out, snapshot, &query, lower, question) {
                // A zone transfer over UDP is not something we do; another class's data is
                // not ours.
                let in_class = matches!(question.qclass, CLASS_IN | CLASS_ANY);
                refuse(
                    out,
                    if in_class {
                        EDE_NOT_SUPPORTED
                    } else {
                        EDE_NOT_AUTHORITATIVE
                    },
                );
            }
            return Verdict::Send;
        }
        let node = match hash {
            Some(hash) => snapshot.index().get_hashed(hash, lower.as_slice()),
            None => snapshot.node(lower.as_slice()),
        };
        match node {
            Some(node) => {
                let prebuilt = match question.qtype {
                    TYPE_ANY if transport == Transport::Tcp => node.any_tcp(),
                    TYPE_ANY => node.first(),
                    qtype => node.answer(qtype),
                };
                match prebuilt {
                    Some(p) => write_prebuilt(out, snapshot, &query, question.raw, p, limit),
                    None => {
                        write_negative(out, snapshot, &query, lower, question.raw, RCODE_NOERROR)
                    }
                }
            }
            None if !lower.is_at_or_below(snapshot.apex_wire()) => {
                refuse(out, EDE_NOT_AUTHORITATIVE)
            }
            None => {
                if snapshot.zone.default.is_none()
                    || !write_synthesized(out, snapshot, &query, question.raw, transport, limit)
                {
                    write_negative(out, snapshot, &query, lower, question.raw, RCODE_NXDOMAIN);
                }
            }
        }
        Verdict::Send
    }
}

/// The largest response the client accepts on this transport.
#[inline(always)]
fn size_limit(snapshot: &Snapshot, transport: Transport, edns: Option<Edns>) -> usize {
    match (transport, edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        (Transport::Udp, None) => CLASSIC_UDP_LIMIT,
        (Transport::Udp, Some(e)) => udp_limit(snapshot, e),
    }
}

/// The largest UDP response an EDNS client takes: its payload size, within ours, at least 512.
#[inline(always)]
fn udp_limit(snapshot: &Snapshot, edns: Edns) -> usize {
    udp_payload_limit(snapshot, edns.payload)
}

/// `udp_limit` for a client's payload size as read from its OPT record.
#[inline(always)]
pub(super) fn udp_payload_limit(snapshot: &Snapshot, payload: u16) -> usize {
    (payload as usize)
        .min(snapshot.max_udp_payload as usize)
        .max(CLASSIC_UDP_LIMIT)
}

/// Response flags from a query's: QR, the opcode, RD and CD carried over.
#[inline(always)]
fn response_flags(query: &Query<'_>, extra: u16, rcode: u16) -> u16 {
    flags_answering(query.flags, extra, rcode)
}

/// Response flags from the flags of the query they answer.
#[inline(always)]
fn flags_answering(query_flags: u16, extra: u16, rcode: u16) -> u16 {
    FLAG_QR | (query_flags & (0x7800 | FLAG_RD | FLAG_CD)) | extra | (rcode & 0xF)
}

#[inline(always)]
fn write_header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    // One 12-byte append, not six two-byte ones (each checks the capacity).
    let [i0, i1] = id.to_be_bytes();
    let [f0, f1] = flags.to_be_bytes();
    let [[q0, q1], [a0, a1], [n0, n1], [r0, r1]] = counts.map(u16::to_be_bytes);
    out.extend_from_slice(&[i0, i1, f0, f1, q0, q1, a0, a1, n0, n1, r0, r1]);
}

/// OPT with our payload size, version 0, the client's DO bit (RFC 3225 §3) and, when asked
/// for, our cookie (RFC 7873) and NSID (RFC 5001).
#[inline(always)]
fn write_opt(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &Query<'_>,
    extended_rcode: u8,
    edns: Edns,
) {
    if edns.nsid || query.reply_cookie.is_some() || query.reply_keepalive.is_some() {
        write_opt_with_options(out, snapshot, query, extended_rcode, edns, None);
        return;
    }
    out.extend_from_slice(&opt_header(snapshot, extended_rcode, edns.dnssec_ok, 0));
}

/// Bytes of the OPT record a response to `query` ends with, when it has one: the answer
/// must leave room for it, cookie and keepalive included. (Not the NSID, added only where
/// room is left.)
#[inline(always)]
fn opt_len(query: &Query<'_>) -> usize {
    match query.edns {
        None => 0,
        Some(_) => {
            OPT_LEN
                + query.reply_cookie.map_or(0, |_| cookie::OPTION_LEN)
                + query.reply_keepalive.map_or(0, |_| KEEPALIVE_OPTION_LEN)
        }
    }
}

/// `write_opt` for a query with a cookie, asking for the NSID or (over TCP) the idle
/// timeout, or for a refusal saying why (`ede`): kept out of line, as few queries need it. The answer was sized with the cookie in
/// it (a resolver that sent one drops a response without it as forged); the NSID goes in only
/// where the response stays within what the client takes over UDP (RFC 6891 §6.2.5; the same
/// bound over TCP, where responses that large carry no NSID): the data matters more than the
/// name of who sent it.
#[cold]
#[inline(never)]
fn write_opt_with_options(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &Query<'_>,
    extended_rcode: u8,
    edns: Edns,
    ede: Option<u16>,
) {
    let cookie_len = query.reply_cookie.map_or(0, |_| cookie::OPTION_LEN);
    let keepalive_len = query.reply_keepalive.map_or(0, |_| KEEPALIVE_OPTION_LEN);
    let ede_len = ede.map_or(0, |_| EDE_OPTION_LEN);
    let room = udp_limit(snapshot, edns)
        .saturating_sub(out.len() + OPT_LEN + cookie_len + keepalive_len + ede_len);
    let nsid_len = Some(identity::nsid_option_len(&snapshot.identity))
        .filter(|&len| edns.nsid && len <= room)
        .unwrap_or(0);
    out.extend_from_slice(&opt_header(
        snapshot,
        extended_rcode,
        edns.dnssec_ok,
        cookie_len + keepalive_len + ede_len + nsid_len,
    ));
    if let Some(reply) = &query.reply_cookie {
        cookie::write_option(out, reply);
    }
    if let Some(timeout) = query.reply_keepalive {
        let [c0, c1] = OPTION_TCP_KEEPALIVE.to_be_bytes();
        let [t0, t1] = timeout.to_be_bytes();
        out.extend_from_slice(&[c0, c1, 0, 2, t0, t1]);
    }
    if let Some(code) = ede {
        let [c0, c1] = OPTION_EDE.to_be_bytes();
        let [i0, i1] = code.to_be_bytes();
        out.extend_from_slice(&[c0, c1, 0, 2, i0, i1]);
    }
    if nsid_len != 0 {
        identity::write_nsid_option(out, &snapshot.identity);
    }
}

/// Sets the edns-tcp-keepalive TIMEOUT to answer `query` with, when it asked (RFC 7828
/// §3.3.2). `keepalive` is the responder's: only one made for TCP ([`Responder::for_tcp`])
/// has one, so over UDP the option is ignored (§3.3.1) by construction.
#[inline(always)]
fn offer_keepalive(query: &mut Query<'_>, keepalive: Option<u16>) {
    if keepalive.is_some() && query.edns.is_some_and(|e| e.tcp_keepalive) {
        query.reply_keepalive = keepalive;
    }
}

/// The query's cookie option, when it has one and cookies are on.
#[inline(always)]
fn sent_cookie(snapshot: &Snapshot, query: &Query<'_>) -> Option<CookieOption> {
    let cookie = query.edns?.cookie;
    (cookie != CookieOption::Absent && snapshot.cookies.is_some()).then_some(cookie)
}

/// Judges a query's cookie (RFC 7873 §5.2, RFC 9018) and sets the one to answer with; or
/// answers the query itself: FORMERR for a malformed cookie, NOERROR or BADCOOKIE to a query
/// that only asks for a cookie (no question: §5.4), BADCOOKIE to a UDP query without a valid
/// server cookie when cookies are required (§5.2.3). A query whose sender is not known is
/// answered as if it had no cookie.
#[cold]
#[inline(never)]
fn judge_cookie(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &mut Query<'_>,
    sent: CookieOption,
    transport: Transport,
    client: impl FnOnce() -> Option<IpAddr>,
) -> Option<Verdict> {
    let (Some(cookies), Some(edns)) = (&snapshot.cookies, query.edns) else {
        return None;
    };
    let question = query.question.map(|q| q.raw);
    let questionless = query.question.is_none();
    let data = match sent {
        CookieOption::Sent { at, len } => query.bytes.get(at as usize..at as usize + len as usize),
        CookieOption::Malformed | CookieOption::Absent => None,
    };
    let Some((client_cookie, server_cookie)) = data.and_then(|d| d.split_first_chunk()) else {
        write_error(
            out,
            snapshot,
            query,
            question,
            RCODE_FORMERR,
            Some(edns),
            None,
        );
        return Some(Verdict::Send);
    };
    let ip = client()?;
    let now = cookie::now();
    query.reply_cookie = Some(cookies.reply(client_cookie, ip, now));
    // Validating costs a hash: only where the answer depends on it.
    let accepted = || cookies.accepts(client_cookie, server_cookie, ip, now);
    if questionless {
        let rcode = if server_cookie.is_empty() || accepted() {
            RCODE_NOERROR
        } else {
            RCODE_BADCOOKIE
        };
        write_error(out, snapshot, query, None, rcode, Some(edns), None);
        return Some(Verdict::Send);
    }
    if cookies.require && transport == Transport::Udp && !accepted() {
        write_error(
            out,
            snapshot,
            query,
            question,
            RCODE_BADCOOKIE,
            Some(edns),
            None,
        );
        return Some(Verdict::Send);
    }
    None
}

/// The OPT record up to its options: owner (root), type, our payload size, extended RCODE,
/// version 0, the DO bit, RDLENGTH.
#[inline(always)]
pub(super) fn opt_header(
    snapshot: &Snapshot,
    extended_rcode: u8,
    dnssec_ok: bool,
    options: usize,
) -> [u8; OPT_LEN] {
    let [p0, p1] = snapshot.max_udp_payload.to_be_bytes();
    let do_bit = if dnssec_ok { 0x80 } else { 0 };
    let [l0, l1] = (options as u16).to_be_bytes();
    [0, 0, 41, p0, p1, extended_rcode, 0, do_bit, 0, l0, l1]
}

/// A response without records: the header, the question when given, and OPT when `edns`,
/// with the upper bits of an extended RCODE (BADVERS, BADCOOKIE) and, for a refusal, an
/// Extended DNS Error saying why (RFC 8914; dig shows `EDE: 18 (Prohibited)`).
#[cold]
#[inline(never)]
fn write_error(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &Query<'_>,
    question: Option<&[u8]>,
    rcode: u16,
    edns: Option<Edns>,
    ede: Option<u16>,
) {
    let counts = [question.is_some() as u16, 0, 0, edns.is_some() as u16];
    write_header(out, query.id, response_flags(query, 0, rcode), counts);
    if let Some(q) = question {
        out.extend_from_slice(q);
    }
    if let Some(e) = edns {
        let extended = (rcode >> 4) as u8;
        match ede {
            Some(_) => write_opt_with_options(out, snapshot, query, extended, e, ede),
            None => write_opt(out, snapshot, query, extended, e),
        }
    }
}

/// NXDOMAIN or NODATA: the question and the SOA (negative TTL) in the authority section.
fn write_negative(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &Query<'_>,
    lower: &LowerName,
    question: &[u8],
    rcode: u16,
) {
    let opt = query.edns.is_some();
    out.extend_from_slice(&negative_header(query.id, query.flags, rcode, opt));
    out.extend_from_slice(question);
    out.extend_from_slice(&soa_owner(snapshot, lower.len));
    out.extend_from_slice(&snapshot.soa_tail);
    if let Some(e) = query.edns {
        write_opt(out, snapshot, query, 0, e);
    }
}

/// The header of a negative answer (`rcode` NXDOMAIN or NOERROR for NODATA) to a query with
/// one question: authoritative, the SOA in the authority section, and OPT when `opt`. (Also
/// the fast path's.)
#[inline(always)]
pub(super) fn negative_header(id: u16, query_flags: u16, rcode: u16, opt: bool) -> [u8; 12] {
    let [i0, i1] = id.to_be_bytes();
    let [f0, f1] = flags_answering(query_flags, FLAG_AA, rcode).to_be_bytes();
    [i0, i1, f0, f1, 0, 1, 0, 0, 0, 1, 0, opt as u8]
}

/// The owner of a negative answer's SOA, the apex: a suffix of the question name (of
/// `name_len` octets, from offset 12), so a pointer to it. (Also the fast path's.)
#[inline(always)]
pub(super) fn soa_owner(snapshot: &Snapshot, name_len: usize) -> [u8; 2] {
    let apex_offset = 12 + name_len - snapshot.apex_wire().len();
    (0xC000u16 | apex_offset as u16).to_be_bytes()
}

/// Writes a prebuilt answer, or its trimmed form, or a truncated response, whichever fits:
/// the stored header with the query's ID and RD/CD bits, the client's question (its letter
/// case; the same length as the one the answer was built for, so the records' compression
/// pointers land), the stored records, and OPT when asked for.
#[inline(always)]
fn write_prebuilt(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &Query<'_>,
    question: &[u8],
    prebuilt: Prebuilt<'_>,
    limit: usize,
) {
    let opt_len = opt_len(query);
    let fits = |len: usize| len + question.len() + opt_len <= limit;
    let chosen = if fits(prebuilt.bytes.len()) {
        Some((prebuilt.bytes, false))
    } else {
        prebuilt
            .trimmed
            .filter(|&len| fits(len))
            .and_then(|len| prebuilt.bytes.get(..len))
            .map(|bytes| (bytes, true))
    };
    let Some((Some((header, records)), trimmed)) =
        chosen.map(|(bytes, trimmed)| (bytes.split_first_chunk::<12>(), trimmed))
    else {
        // RFC 2181 §9: the answer does not fit; say so and let the client retry over TCP.
        // (A stored answer shorter than a header, which compiling never makes, ends here too.)
        let counts = [1, 0, 0, query.edns.is_some() as u16];
        write_header(
            out,
            query.id,
            response_flags(query, FLAG_AA | FLAG_TC, 0),
            counts,
        );
        out.extend_from_slice(question);
        if let Some(e) = query.edns {
            write_opt(out, snapshot, query, 0, e);
        }
        return;
    };
    out.extend_from_slice(&answer_header(
        header,
        query.id,
        query.flags,
        !trimmed,
        query.edns.is_some(),
    ));
    out.extend_from_slice(question);
    out.extend_from_slice(records);
    if let Some(e) = query.edns {
        write_opt(out, snapshot, query, 0, e);
    }
}

/// A prebuilt answer's header as sent: the query's ID, the stored flags with the query's RD
/// and CD, the stored counts, ARCOUNT without the stored additional records unless
/// `additional` and with one more for our OPT record when `opt`.
#[inline(always)]
pub(super) fn answer_header(
    stored: &[u8; 12],
    id: u16,
    query_flags: u16,
    additional: bool,
    opt: bool,
) -> [u8; 12] {
    let [_, _, f0, f1, qd0, qd1, an0, an1, ns0, ns1, ar0, ar1] = *stored;
    let [i0, i1] = id.to_be_bytes();
    let [r0, r1] =
        (u16::from_be_bytes([f0, f1]) | (query_flags & (FLAG_RD | FLAG_CD))).to_be_bytes();
    let stored_additional = if additional {
        u16::from_be_bytes([ar0, ar1])
    } else {
        0
    };
    let [a0, a1] = stored_additional.saturating_add(opt as u16).to_be_bytes();
    [i0, i1, r0, r1, qd0, qd1, an0, an1, ns0, ns1, a0, a1]
}

/// Answers a CHAOS query about the server (`identity`), or returns false for the caller to
/// refuse it: another class, name or type, or an answer switched off. The answer always fits
/// in 512 octets: the question is one of four short names and the text at most 255 octets.
#[cold]
#[inline(never)]
fn write_chaos(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &Query<'_>,
    lower: &LowerName,
    question: Question<'_>,
) -> bool {
    if question.qclass != identity::CLASS_CH
        || !matches!(question.qtype, identity::TYPE_TXT | TYPE_ANY)
    {
        return false;
    }
    let Some(text) = identity::chaos_text(&snapshot.identity, lower.as_slice()) else {
        return false;
    };
    let counts = [1, 1, 0, query.edns.is_some() as u16];
    write_header(
        out,
        query.id,
        response_flags(query, 0, RCODE_NOERROR),
        counts,
    );
    out.extend_from_slice(question.raw);
    identity::write_chaos_record(out, text);
    if let Some(e) = query.edns {
        write_opt(out, snapshot, query, 0, e);
    }
    true
}

/// Answers a name of a network without a file from the default template. Returns false when
/// the name is not such a name (the caller then answers NXDOMAIN).
#[cold]
#[inline(never)]
fn write_synthesized(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    query: &Query<'_>,
    question: &[u8],
    transport: Transport,
    limit: usize,
) -> bool {
    let mut decoder = BinDecoder::new(question);
    let Ok(parsed) = HickoryQuery::read(&mut decoder) else {
        return false;
    };
    let name: &Name = &parsed.name;
    let qtype = RecordType::from(u16::from(parsed.query_type));
    let answer = lookup(&snapshot.zone, name, qtype, DNSClass::IN, transport);
    if answer.outcome == crate::zone::Outcome::NxDomain {
        return false;
    }
    let Some(owned) = prebuild(&mut Encoder::default(), &parsed, &answer) else {
        return false;
    };
    let prebuilt = Prebuilt {
        bytes: &owned.bytes,
        trimmed: owned.trimmed,
    };
    write_prebuilt(out, snapshot, query, question, prebuilt, limit);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_tcp_idle_timeout_is_told_in_units_of_100_ms() {
        let told = |timeout| Responder::for_tcp(timeout).tcp_keepalive;
        assert_eq!(told(Duration::from_secs(10)), Some(100));
        assert_eq!(told(Duration::from_millis(250)), Some(2));
        assert_eq!(
            told(Duration::from_secs(7 * 3600)),
            Some(u16::MAX),
            "at most 6,553.5 s"
        );
        assert_eq!(
            Responder::new().tcp_keepalive,
            None,
            "UDP workers tell nothing"
        );
    }
}
