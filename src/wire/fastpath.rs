//! The query nearly every device and resolver sends, answered in one pass: a standard query
//! for a name of the zone in class IN, with no EDNS or with a bare EDNS(0) OPT record (no
//! options), whose whole answer fits the client's size limit; or, for such a query, NODATA,
//! and NXDOMAIN when no default template could answer the name.
//!
//! The UDP path has read and hashed the question name ahead (to prefetch its look-up); this
//! module checks the rest of the packet against that one shape with a few whole-word
//! comparisons and writes the prebuilt answer, instead of the general parse (every header
//! field, each record, each EDNS option) and the responder's case analysis; negative answers
//! go through the responder's own writer. Anything else — other opcodes, counts, classes or
//! types, options (cookies, NSID, padding), EDNS versions, names outside the zone or that a
//! default template may answer, answers to trim or truncate — is left to the responder
//! ([`super::respond`]), which the caller then calls as if this had not been tried: nothing
//! is written before the packet is known to fit. The response is byte for byte the one the
//! responder writes (a test compares them over every name of the bundled zones, in twelve
//! types and six shapes of query, each as sent and in mixed case, and over mutated queries).

use super::names::NameIndex;
use super::query::{
    CookieOption, Edns, LowerName, Query, CLASS_IN, FLAG_QR, TYPE_ANY, TYPE_IXFR, TYPE_OPT,
};
use super::respond::{
    answer_header, opt_header, udp_payload_limit, write_negative, CLASSIC_UDP_LIMIT, OPT_LEN,
    RCODE_NOERROR, RCODE_NXDOMAIN,
};
use super::snapshot::Snapshot;

/// Header bytes 4..12 of a query with one question and nothing else (QDCOUNT 1, ANCOUNT,
/// NSCOUNT and ARCOUNT 0), as one big-endian word; ARCOUNT 1 (the OPT record) adds 1.
const COUNTS_ONE_QUESTION: u64 = 0x0001_0000_0000_0000;
/// The flag bits that must be clear: QR (a response is never answered) and the opcode
/// (only QUERY, 0, is answered here).
const FLAGS_MUST_BE_CLEAR: u16 = FLAG_QR | 0x7800;

/// Writes the answer to `packet` into `out` (cleared first) when the packet is a common
/// query, and returns whether it did; on `false`, `out` is left as it was. `name` and `hash`
/// are the packet's question name as scanned by `query::scan_question_name` and its hash: a
/// candidate, which the look-up proves to be the question name when it finds it.
#[inline(always)]
pub fn answer_common(
    snapshot: &Snapshot,
    index: &NameIndex,
    packet: &[u8],
    name: &LowerName,
    hash: u64,
    out: &mut Vec<u8>,
) -> bool {
    let Some(header) = packet.first_chunk::<12>() else {
        return false;
    };
    let flags = u16::from_be_bytes([header[2], header[3]]);
    let counts = u64::from_be_bytes([
        header[4], header[5], header[6], header[7], header[8], header[9], header[10], header[11],
    ]);
    let has_opt = counts == COUNTS_ONE_QUESTION + 1;
    if flags & FLAGS_MUST_BE_CLEAR != 0 || !(has_opt || counts == COUNTS_ONE_QUESTION) {
        return false;
    }
    // The question: the name (its length known from the read ahead), QTYPE and QCLASS.
    let question_end = 12 + name.len + 4;
    let Some(question) = packet.get(12..question_end) else {
        return false;
    };
    let Some(&[t0, t1, c0, c1]) = question.last_chunk::<4>() else {
        return false;
    };
    let qtype = u16::from_be_bytes([t0, t1]);
    // ANY, zone transfers (IXFR to ANY) and OPT as a question have rules of their own;
    // other classes too.
    if u16::from_be_bytes([c0, c1]) != CLASS_IN || matches!(qtype, TYPE_OPT | TYPE_IXFR..=TYPE_ANY)
    {
        return false;
    }
    // The OPT record, bare: root owner, TYPE OPT, version 0, RDLENGTH 0; the payload size,
    // the extended RCODE (meaningless in a query) and DO/Z as sent.
    let edns = if has_opt {
        let Some(&[owner, o0, o1, p0, p1, _, version, do_z, _, l0, l1]) = packet
            .get(question_end..)
            .and_then(|rest| rest.first_chunk::<OPT_LEN>())
        else {
            return false;
        };
        if owner != 0 || [o0, o1] != TYPE_OPT.to_be_bytes() || version != 0 || l0 | l1 != 0 {
            return false;
        }
        Some((u16::from_be_bytes([p0, p1]), do_z & 0x80 != 0))
    } else {
        None
    };
    let common = Common {
        packet,
        flags,
        question,
        edns,
    };
    let prebuilt = match index.get_hashed(hash, name.as_slice()) {
        Some(node) => match node.answer(qtype) {
            Some(prebuilt) => prebuilt,
            // The name has no data of this type (NODATA); the look-up proved the name.
            None => return answer_negative(out, snapshot, &common, name, RCODE_NOERROR),
        },
        // No such name: NXDOMAIN when it lies in the zone and no default template could
        // answer it; the scanned name must first be proven the question name.
        None if name.is_well_formed()
            && snapshot.zone.default.is_none()
            && name.is_at_or_below(snapshot.apex_wire()) =>
        {
            return answer_negative(out, snapshot, &common, name, RCODE_NXDOMAIN)
        }
        None => return false,
    };
    // The whole answer must fit, with our OPT record when the query has one.
    let limit = match edns {
        Some((payload, _)) => udp_payload_limit(snapshot, payload) - OPT_LEN,
        None => CLASSIC_UDP_LIMIT,
    };
    let Some((stored, records)) = prebuilt.bytes.split_first_chunk::<12>() else {
        return false;
    };
    if 12 + question.len() + records.len() > limit {
        return false;
    }
    // The responder's own pieces: the stored header patched for this query, our OPT.
    let id = u16::from_be_bytes([header[0], header[1]]);
    out.clear();
    out.extend_from_slice(&answer_header(stored, id, flags, true, edns.is_some()));
    out.extend_from_slice(question);
    out.extend_from_slice(records);
    if let Some((_, dnssec_ok)) = edns {
        out.extend_from_slice(&opt_header(snapshot, 0, dnssec_ok, 0));
    }
    true
}

/// What a negative answer needs of a common query.
struct Common<'a> {
    packet: &'a [u8],
    flags: u16,
    question: &'a [u8],
    /// The OPT record's payload size and DO bit, when it has one.
    edns: Option<(u16, bool)>,
}

/// NODATA or NXDOMAIN to a common query, by the responder's own writer (given the query as
/// its parse would have read it): negative answers are rarer than answers, and this way
/// there is one definition of them.
#[cold]
#[inline(never)]
fn answer_negative(
    out: &mut Vec<u8>,
    snapshot: &Snapshot,
    common: &Common<'_>,
    name: &LowerName,
    rcode: u16,
) -> bool {
    let mut query = Query::unread(common.packet);
    if let Some(&[i0, i1]) = common.packet.first_chunk::<2>() {
        query.id = u16::from_be_bytes([i0, i1]);
    }
    query.flags = common.flags;
    query.qdcount = 1;
    query.arcount = common.edns.is_some() as u16;
    query.edns = common.edns.map(|(payload, dnssec_ok)| Edns {
        payload,
        version: 0,
        dnssec_ok,
        nsid: false,
        tcp_keepalive: false,
        cookie: CookieOption::Absent,
    });
    out.clear();
    write_negative(out, snapshot, &query, name, common.question, rcode);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
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
    /// response must be the responder's, byte for byte; `None` when it declined, and then it
    /// must have left the output buffer alone.
    fn try_fast(snapshot: &Snapshot, packet: &[u8]) -> Option<Vec<u8>> {
        let mut name = LowerName::new();
        let index = snapshot.index();
        // The UDP path scans the name in its receive buffer, which extends past the packet.
        let mut buffer = packet.to_vec();
        buffer.resize(packet.len().max(12 + 256 + 16), 0xA5);
        let hash = scan_question_name(&buffer, packet.len(), &mut name, index.hasher())?;
        let untouched = vec![0xEE; 3];
        let mut fast = untouched.clone();
        let answered = answer_common(snapshot, index, packet, &name, hash, &mut fast);
        let mut general = Vec::new();
        Responder::new().respond_from(snapshot, packet, Transport::Udp, None, &mut general);
        if answered {
            assert_eq!(fast, general, "fast path differs for {packet:02x?}");
            Some(fast)
        } else {
            assert_eq!(fast, untouched, "declined but wrote, for {packet:02x?}");
            None
        }
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
