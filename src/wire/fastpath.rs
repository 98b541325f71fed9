//! The query nearly every device and resolver sends, answered in one pass: a standard query
//! for a name of the zone in class IN, with no EDNS or with a bare EDNS(0) OPT record (no
//! options), whose whole answer fits the client's size limit; or, for such a query, NODATA,
//! and NXDOMAIN when no default template could answer the name.
//!
//! The UDP path has read and hashed the question name ahead (to prefetch its look-up); this
//! module checks the rest of the packet against that one shape with a few whole-word
//! comparisons and writes the prebuilt answer, instead of the general parse (every header
//! field, each record, each EDNS option) and the responder's case analysis. The answer is
//! written over the query in the receive buffer: the question, which every response repeats
//! as the client sent it, is already in place, so only the header is patched and what
//! follows the question written (callgrind: ~40 instructions a query fewer than building it
//! in a buffer of its own). Negative answers are written the same way from the responder's
//! own pieces (`respond::negative_header`, `respond::soa_owner`). Anything else — other
//! opcodes, counts, classes or types, options (cookies, NSID, padding), EDNS versions, names
//! outside the zone or that a default template may answer, answers to trim or truncate — is
//! left to the responder ([`super::respond`]), which the caller then calls as if this had
//! not been tried: nothing is written before the packet is known to be common and its answer
//! to fit. The response is byte for byte the one the responder writes (a test compares them
//! over every name of the bundled zones, in twelve types and six shapes of query, each as
//! sent and in mixed case, and over mutated queries).

use super::names::NameIndex;
use super::query::{LowerName, CLASS_IN, FLAG_QR, TYPE_ANY, TYPE_IXFR, TYPE_OPT};
use super::respond::{
    self, answer_header, negative_header, opt_header, udp_payload_limit, CLASSIC_UDP_LIMIT,
    OPT_LEN, RCODE_NOERROR, RCODE_NXDOMAIN,
};
use super::snapshot::Snapshot;

/// Header bytes 4..12 of a query with one question and nothing else (QDCOUNT 1, ANCOUNT,
/// NSCOUNT and ARCOUNT 0), as one big-endian word; ARCOUNT 1 (the OPT record) adds 1.
const COUNTS_ONE_QUESTION: u64 = 0x0001_0000_0000_0000;
/// The flag bits that must be clear: QR (a response is never answered) and the opcode
/// (only QUERY, 0, is answered here).
const FLAGS_MUST_BE_CLEAR: u16 = FLAG_QR | 0x7800;

/// What [`answer_common`] did with a query: declined it (nothing written), or answered it
/// over itself. Tells the caller where the response ends, and its counters what it is
/// without reading it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Common {
    Declined,
    /// The response is the receive buffer's first `len` bytes.
    Answered {
        len: usize,
        kind: Kind,
    },
}

/// The three answers to a common query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The name's records of the asked type.
    Data,
    /// NOERROR with no answer: the name exists without records of the type.
    NoData,
    NxDomain,
}

/// Answers the query in `buffer`'s first `packet_len` bytes, over it, when it is a common
/// query: the question stays where it is (as the client sent it, its letter case included),
/// the header becomes the response's, and the records (or, for a negative answer, the SOA)
/// and our OPT record are written after the question. On [`Common::Declined`] nothing is
/// written. `name` and `hash` are the packet's question name as scanned by
/// `query::scan_question_name` and its hash: a candidate, which the look-up proves to be the
/// question name when it finds it.
#[inline(always)]
pub fn answer_common(
    snapshot: &Snapshot,
    index: &NameIndex,
    buffer: &mut [u8],
    packet_len: usize,
    name: &LowerName,
    hash: u64,
) -> Common {
    let Some(packet) = buffer.get(..packet_len) else {
        return Common::Declined;
    };
    let Some(&header) = packet.first_chunk::<12>() else {
        return Common::Declined;
    };
    let flags = u16::from_be_bytes([header[2], header[3]]);
    let counts = u64::from_be_bytes([
        header[4], header[5], header[6], header[7], header[8], header[9], header[10], header[11],
    ]);
    let has_opt = counts == COUNTS_ONE_QUESTION + 1;
    if flags & FLAGS_MUST_BE_CLEAR != 0 || !(has_opt || counts == COUNTS_ONE_QUESTION) {
        return Common::Declined;
    }
    // The question: the name (its length known from the read ahead), QTYPE and QCLASS.
    let question_end = 12 + name.len + 4;
    let Some(&[t0, t1, c0, c1]) = packet
        .get(12..question_end)
        .and_then(|question| question.last_chunk::<4>())
    else {
        return Common::Declined;
    };
    let qtype = u16::from_be_bytes([t0, t1]);
    // ANY, zone transfers (IXFR to ANY) and OPT as a question have rules of their own;
    // other classes too.
    if u16::from_be_bytes([c0, c1]) != CLASS_IN || matches!(qtype, TYPE_OPT | TYPE_IXFR..=TYPE_ANY)
    {
        return Common::Declined;
    }
    let edns = if has_opt {
        match bare_opt(packet, question_end) {
            Some(edns) => Some(edns),
            None => return Common::Declined,
        }
    } else {
        None
    };
    // Only what the stored answer needs stays live across the look-up.
    let prebuilt = match index.get_hashed(hash, name.as_slice()) {
        Some(node) => match node.answer(qtype) {
            Some(prebuilt) => prebuilt,
            // The name has no data of this type (NODATA); the look-up proved the name.
            None => return answer_negative(snapshot, buffer, packet_len, name, RCODE_NOERROR),
        },
        // No such name: NXDOMAIN when it lies in the zone and no default template could
        // answer it; the scanned name must first be proven the question name.
        None if name.is_well_formed()
            && snapshot.zone.default.is_none()
            && name.is_at_or_below(snapshot.apex_wire()) =>
        {
            return answer_negative(snapshot, buffer, packet_len, name, RCODE_NXDOMAIN)
        }
        None => return Common::Declined,
    };
    // The whole answer must fit, with our OPT record when the query has one.
    let (limit, opt_len) = match edns {
        Some((payload, _)) => (udp_payload_limit(snapshot, payload) - OPT_LEN, OPT_LEN),
        None => (CLASSIC_UDP_LIMIT, 0),
    };
    let Some((stored, records)) = prebuilt.bytes.split_first_chunk::<12>() else {
        return Common::Declined;
    };
    let records_end = question_end + records.len();
    if records_end > limit {
        return Common::Declined;
    }
    // Over the query: the stored header patched for it, the question left where it is, the
    // records, our OPT record (over the query's).
    let len = records_end + opt_len;
    let Some((written_header, written_records, written_opt)) =
        split_response(buffer, len, question_end, records.len())
    else {
        return Common::Declined;
    };
    let id = u16::from_be_bytes([header[0], header[1]]);
    *written_header = answer_header(stored, id, flags, true, edns.is_some());
    written_records.copy_from_slice(records);
    if let (Some((_, dnssec_ok)), Some(written_opt)) = (edns, written_opt.first_chunk_mut()) {
        *written_opt = opt_header(snapshot, 0, dnssec_ok, 0);
    }
    Common::Answered {
        len,
        kind: Kind::Data,
    }
}

/// The parts of a response of `len` bytes written over the query in `buffer`: its header,
/// `records_len` bytes after the question (which ends at `question_end`), and the rest.
#[inline(always)]
fn split_response(
    buffer: &mut [u8],
    len: usize,
    question_end: usize,
    records_len: usize,
) -> Option<(&mut [u8; 12], &mut [u8], &mut [u8])> {
    let (header, after_header) = buffer.get_mut(..len)?.split_first_chunk_mut::<12>()?;
    let (records, rest) = after_header
        .get_mut(question_end.checked_sub(12)?..)?
        .split_at_mut_checked(records_len)?;
    Some((header, records, rest))
}

/// NODATA or NXDOMAIN to a common query (as [`answer_common`] has read it: one question of
/// `name`'s length, at most a bare OPT record), over it: the header, the question left where
/// it is, the SOA (its owner, the apex, a pointer into the question name) and our OPT record.
/// As the responder writes them (`respond::write_negative`, whose pieces these are). Out of
/// line: negative answers are rarer than answers, and what they need (the SOA, the query's
/// OPT record read again) would otherwise stay live across every look-up.
#[cold]
#[inline(never)]
fn answer_negative(
    snapshot: &Snapshot,
    buffer: &mut [u8],
    packet_len: usize,
    name: &LowerName,
    rcode: u16,
) -> Common {
    let question_end = 12 + name.len + 4;
    let Some(packet) = buffer.get(..packet_len) else {
        return Common::Declined;
    };
    let Some(&[i0, i1, f0, f1, _, _, _, _, _, _, _, arcount]) = packet.first_chunk::<12>() else {
        return Common::Declined;
    };
    let edns = if arcount != 0 {
        match bare_opt(packet, question_end) {
            Some(edns) => Some(edns),
            None => return Common::Declined,
        }
    } else {
        None
    };
    let owner = respond::soa_owner(snapshot, name.len);
    let soa = &snapshot.soa_tail[..];
    let opt_len = if edns.is_some() { OPT_LEN } else { 0 };
    let len = question_end + owner.len() + soa.len() + opt_len;
    let Some((written_header, written_soa, written_opt)) =
        split_response(buffer, len, question_end, owner.len() + soa.len())
    else {
        return Common::Declined;
    };
    let Some((written_owner, written_tail)) = written_soa.split_first_chunk_mut::<2>() else {
        return Common::Declined;
    };
    let id = u16::from_be_bytes([i0, i1]);
    let flags = u16::from_be_bytes([f0, f1]);
    *written_header = negative_header(id, flags, rcode, edns.is_some());
    *written_owner = owner;
    written_tail.copy_from_slice(soa);
    if let (Some((_, dnssec_ok)), Some(written_opt)) = (edns, written_opt.first_chunk_mut()) {
        *written_opt = opt_header(snapshot, 0, dnssec_ok, 0);
    }
    let kind = if rcode == RCODE_NXDOMAIN {
        Kind::NxDomain
    } else {
        Kind::NoData
    };
    Common::Answered { len, kind }
}

/// The OPT record after the question, when it is bare: root owner, TYPE OPT, version 0,
/// RDLENGTH 0; its payload size and DO bit. (The extended RCODE, meaningless in a query, and
/// the Z bits are not looked at.)
#[inline(always)]
fn bare_opt(packet: &[u8], question_end: usize) -> Option<(u16, bool)> {
    let &[owner, o0, o1, p0, p1, _, version, do_z, _, l0, l1] = packet
        .get(question_end..)
        .and_then(|rest| rest.first_chunk::<OPT_LEN>())?;
    if owner != 0 || [o0, o1] != TYPE_OPT.to_be_bytes() || version != 0 || l0 | l1 != 0 {
        return None;
    }
    Some((u16::from_be_bytes([p0, p1]), do_z & 0x80 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::RECV_BUFFER;
    use crate::wire::query::{scan_question_name, FLAG_CD, FLAG_RD};
    use crate::wire::Responder;
    use crate::zone::{wire_key, Transport};

    /// How a test query is put together around its question.
    #[derive(Clone, Copy, Debug)]
    struct Shape {
        flags: u16,
        qclass: u16,
        /// (payload size, version, DO, options) of an OPT record, if any.
        opt: Option<(u16, u8, bool, &'static [u8])>,
        /// Extra bytes after the records (ignored by every reader).
        trailing: &'static [u8],
        /// Header counts in place of the query's own (QD, AN, NS, AR).
        counts: Option<[u16; 4]>,
    }

    const PLAIN: Shape = Shape {
        flags: 0,
        qclass: CLASS_IN,
        opt: None,
        trailing: &[],
        counts: None,
    };

    fn packet(name: &[u8], qtype: u16, shape: Shape) -> Vec<u8> {
        let arcount = shape.opt.is_some() as u16;
        let counts = shape.counts.unwrap_or([1, 0, 0, arcount]);
        let mut p = vec![0xAB, 0xCD];
        p.extend_from_slice(&shape.flags.to_be_bytes());
        for count in counts {
            p.extend_from_slice(&count.to_be_bytes());
        }
        p.extend_from_slice(name);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&shape.qclass.to_be_bytes());
        if let Some((payload, version, dnssec_ok, options)) = shape.opt {
            p.extend_from_slice(&[0, 0, 41]);
            p.extend_from_slice(&payload.to_be_bytes());
            p.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0]);
            p.extend_from_slice(&(options.len() as u16).to_be_bytes());
            p.extend_from_slice(options);
        }
        p.extend_from_slice(shape.trailing);
        p
    }

    /// Upper-cases every other letter, so that lower-casing and the echo of the client's
    /// case are both exercised.
    fn mixed_case(name: &[u8]) -> Vec<u8> {
        let mut letters = 0;
        name.iter()
            .map(|&b| {
                if b.is_ascii_alphabetic() {
                    letters += 1;
                    if letters % 2 == 1 {
                        return b.to_ascii_uppercase();
                    }
                }
                b
            })
            .collect()
    }

    /// Tries the fast path on one packet: `Some(response)` when it answered, and then the
    /// response must be the responder's, byte for byte, and of the kind it said it wrote;
    /// `None` when it declined, and then it must have left the receive buffer alone.
    fn try_fast(snapshot: &Snapshot, packet: &[u8]) -> Option<Vec<u8>> {
        let mut name = LowerName::new();
        let index = snapshot.index();
        // The UDP path's receive buffer: the packet, then bytes from earlier packets.
        let mut buffer = packet.to_vec();
        buffer.resize(packet.len().max(RECV_BUFFER), 0xA5);
        let hash = scan_question_name(&buffer, packet.len(), &mut name, index.hasher())?;
        let received = buffer.clone();
        let written = answer_common(snapshot, index, &mut buffer, packet.len(), &name, hash);
        let mut general = Vec::new();
        Responder::new().respond_from(snapshot, packet, Transport::Udp, None, &mut general);
        let Common::Answered { len, kind } = written else {
            assert_eq!(
                buffer, received,
                "declined but wrote over, for {packet:02x?}"
            );
            return None;
        };
        let fast = buffer[..len].to_vec();
        assert_eq!(fast, general, "fast path differs for {packet:02x?}");
        assert_eq!(buffer[len..], received[len..], "wrote past the response");
        let rcode = fast[3] & 0xF;
        let answers = u16::from_be_bytes([fast[6], fast[7]]);
        let said = match (rcode, answers) {
            (0, 1..) => Kind::Data,
            (0, 0) => Kind::NoData,
            (3, 0) => Kind::NxDomain,
            other => panic!("rcode and answer count {other:?} for {packet:02x?}"),
        };
        assert_eq!(kind, said, "for {packet:02x?}");
        Some(fast)
    }

    const TYPES: [u16; 12] = [1, 28, 16, 33, 256, 2, 6, 15, 257, 65280, 99, 250];

    #[test]
    fn answers_as_the_responder_does_or_leaves_the_query_to_it() {
        let snapshot = Snapshot::of_bundled_zones();
        let mut names: Vec<Vec<u8>> = snapshot
            .zone
            .records()
            .map(|r| wire_key(&r.name).into_vec())
            .collect();
        names.sort();
        names.dedup();
        assert!(names.len() > 10, "the bundled zones have names");
        // Names without data of their own: synthesized from the default template, below
        // the apex and absent, outside the zone.
        for text in [
            "bsf.mnc999.mcc999.lwm2m.org.",
            "absent.lwm2m.org.",
            "example.com.",
        ] {
            let name = hickory_proto::rr::Name::from_ascii(text).expect("valid name");
            names.push(wire_key(&name).into_vec());
        }
        let common = [
            PLAIN,
            Shape {
                opt: Some((1232, 0, false, &[])),
                ..PLAIN
            },
            Shape {
                opt: Some((4096, 0, true, &[])),
                flags: FLAG_RD | FLAG_CD,
                ..PLAIN
            },
            // Below 512 (read as 512), and larger than the server's own limit.
            Shape {
                opt: Some((100, 0, false, &[])),
                ..PLAIN
            },
            Shape {
                opt: Some((65535, 0, true, &[])),
                trailing: &[1, 2, 3],
                ..PLAIN
            },
            // AD and Z set in the query: neither is echoed.
            Shape {
                flags: 0x0060,
                ..PLAIN
            },
        ];
        let mut answered = 0;
        let mut declined = 0;
        for name in &names {
            for qtype in TYPES {
                for shape in common {
                    for spelling in [name.clone(), mixed_case(name)] {
                        match try_fast(&snapshot, &packet(&spelling, qtype, shape)) {
                            Some(response) => {
                                answered += 1;
                                // The client's spelling is echoed, its ID kept.
                                assert_eq!(&response[..2], &[0xAB, 0xCD]);
                                assert_eq!(&response[12..12 + spelling.len()], &spelling[..]);
                            }
                            None => declined += 1,
                        }
                    }
                }
            }
        }
        // Every name with data answers some type by the fast path; the others (NODATA,
        // NXDOMAIN, synthesized, refused) are the responder's.
        assert!(answered > names.len() * 2, "{answered} answered");
        assert!(declined > 0, "{declined} declined");
    }

    #[test]
    fn other_queries_are_left_to_the_responder() {
        let snapshot = Snapshot::of_bundled_zones();
        let name = wire_key(
            &hickory_proto::rr::Name::from_ascii("bsf.mnc460.mcc313.lwm2m.org.")
                .expect("valid name"),
        );
        assert!(
            try_fast(&snapshot, &packet(&name, 1, PLAIN)).is_some(),
            "the plain query is common"
        );
        let cookie: &[u8] = &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let nsid: &[u8] = &[0, 3, 0, 0];
        let uncommon = [
            // A response, another opcode (NOTIMP), class CH and ANY.
            Shape {
                flags: FLAG_QR,
                ..PLAIN
            },
            Shape {
                flags: 2 << 11,
                ..PLAIN
            },
            Shape { qclass: 3, ..PLAIN },
            Shape {
                qclass: 255,
                ..PLAIN
            },
            // EDNS version 1 (BADVERS), options (cookie, NSID).
            Shape {
                opt: Some((1232, 1, false, &[])),
                ..PLAIN
            },
            Shape {
                opt: Some((1232, 0, false, cookie)),
                ..PLAIN
            },
            Shape {
                opt: Some((1232, 0, false, nsid)),
                ..PLAIN
            },
            // Counts other than one question and at most the OPT record.
            Shape {
                counts: Some([2, 0, 0, 0]),
                ..PLAIN
            },
            Shape {
                counts: Some([1, 1, 0, 0]),
                ..PLAIN
            },
            Shape {
                counts: Some([1, 0, 1, 0]),
                ..PLAIN
            },
            Shape {
                counts: Some([1, 0, 0, 2]),
                opt: Some((1232, 0, false, &[])),
                ..PLAIN
            },
            // ARCOUNT 1 without a record, or with a record that is not OPT.
            Shape {
                counts: Some([1, 0, 0, 1]),
                ..PLAIN
            },
            Shape {
                counts: Some([1, 0, 0, 1]),
                trailing: &[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
                ..PLAIN
            },
        ];
        for shape in uncommon {
            assert_eq!(
                try_fast(&snapshot, &packet(&name, 1, shape)),
                None,
                "{shape:?}"
            );
        }
        // ANY, zone transfers and OPT as the question's type.
        for qtype in [255, 252, 251, 41] {
            assert_eq!(try_fast(&snapshot, &packet(&name, qtype, PLAIN)), None);
        }
        // Cut short anywhere: before QTYPE/QCLASS end, inside the OPT record.
        let whole = packet(
            &name,
            1,
            Shape {
                opt: Some((1232, 0, false, &[])),
                ..PLAIN
            },
        );
        for len in 12 + name.len()..whole.len() {
            assert_eq!(try_fast(&snapshot, &whole[..len]), None, "cut at {len}");
        }
    }

    #[test]
    fn mutated_queries_are_answered_as_the_responder_does_or_left_to_it() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let snapshot = Snapshot::of_bundled_zones();
        let names = [
            "bsf.mnc460.mcc313.lwm2m.org.",
            "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
            "bsf.mnc01.mcc262.lwm2m.org.",
        ]
        .map(|text| {
            wire_key(&hickory_proto::rr::Name::from_ascii(text).expect("valid name")).into_vec()
        });
        let bases: Vec<Vec<u8>> = names
            .iter()
            .flat_map(|name| {
                [1u16, 28, 16, 33, 256].map(|qtype| {
                    packet(
                        name,
                        qtype,
                        Shape {
                            opt: Some((1232, 0, true, &[])),
                            ..PLAIN
                        },
                    )
                })
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(5);
        let (mut answered, mut declined) = (0, 0);
        for round in 0..20_000 {
            let mut query = bases[round % bases.len()].clone();
            // A few bytes anywhere set to values that matter to the reader (zero, the
            // lengths and types around, flag bits, or anything); or, as often, a bit flipped
            // where a common query may differ from another: the ID and flags, a letter's
            // case, the OPT record's payload size and DO/Z.
            for _ in 0..rng.gen_range(1..4) {
                if rng.gen_bool(0.5) {
                    let len = query.len();
                    let at = match rng.gen_range(0..3) {
                        0 => rng.gen_range(0..4),
                        1 => rng.gen_range(13..len - 15),
                        _ => len - rng.gen_range(4..9),
                    };
                    query[at] ^= 1 << rng.gen_range(0..8);
                    continue;
                }
                let at = rng.gen_range(0..query.len());
                query[at] = match rng.gen_range(0..4) {
                    0 => 0,
                    1 => rng.gen_range(0..64),
                    2 => query[at] ^ (1 << rng.gen_range(0..8)),
                    _ => rng.gen(),
                };
            }
            if rng.gen_bool(0.2) {
                query.truncate(rng.gen_range(12..query.len()));
            }
            match try_fast(&snapshot, &query) {
                Some(_) => answered += 1,
                None => declined += 1,
            }
        }
        // Both ways taken many times (each checked above, packet by packet).
        assert!(answered > 1_000, "{answered} answered");
        assert!(declined > 1_000, "{declined} declined");
    }

    #[test]
    fn negative_answers_are_common_unless_a_default_template_may_answer() {
        let name = |text: &str| {
            wire_key(&hickory_proto::rr::Name::from_ascii(text).expect("valid name")).into_vec()
        };
        let rcode_and_counts = |response: &[u8]| {
            let word = |at: usize| u16::from_be_bytes([response[at], response[at + 1]]);
            (response[3] & 0xF, [word(4), word(6), word(8), word(10)])
        };
        let plain = Snapshot::of_bundled_zones();
        // NODATA (a name with data, not of this type) and NXDOMAIN (a network without a
        // template, in the zone): answered here, with the SOA in the authority section.
        let nodata = try_fast(
            &plain,
            &packet(&name("bsf.mnc460.mcc313.lwm2m.org."), 15, PLAIN),
        )
        .expect("NODATA is common");
        assert_eq!(rcode_and_counts(&nodata), (0, [1, 0, 1, 0]));
        let with_opt = Shape {
            opt: Some((1232, 0, true, &[])),
            ..PLAIN
        };
        let nxdomain = try_fast(
            &plain,
            &packet(&name("bsf.mnc15.mcc234.lwm2m.org."), 1, with_opt),
        )
        .expect("NXDOMAIN is common");
        assert_eq!(rcode_and_counts(&nxdomain), (3, [1, 0, 1, 1]));
        // Outside the zone: REFUSED, the responder's.
        assert_eq!(
            try_fast(&plain, &packet(&name("example.com."), 1, PLAIN)),
            None
        );
        // With the default template on, a network without a file of its own is answered
        // from it: the responder's, as every other name the index does not hold.
        let dir = tempfile::tempdir().expect("temporary directory");
        let settings = dir.path().join("settings.toml");
        std::fs::write(&settings, "default-template = true\n").expect("settings written");
        let inputs = crate::load::Inputs {
            zones_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones"),
            settings_file: Some(settings),
        };
        let loaded = inputs.read().expect("bundled zones load");
        let zone = loaded.build(1).expect("bundled zones build");
        let templated = Snapshot::compile(zone, &loaded.settings.server, None);
        assert!(templated.zone.default.is_some());
        for text in ["bsf.mnc15.mcc234.lwm2m.org.", "absent.lwm2m.org."] {
            assert_eq!(
                try_fast(&templated, &packet(&name(text), 1, with_opt)),
                None,
                "{text}"
            );
        }
        let nodata = try_fast(
            &templated,
            &packet(&name("bsf.mnc460.mcc313.lwm2m.org."), 15, PLAIN),
        );
        assert!(nodata.is_some(), "NODATA needs no template");
    }
}
