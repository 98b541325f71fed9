//! `bsf-dns serve` on real loopback sockets: every DESIGN.md §3 case over UDP and TCP, EDNS,
//! truncation, name compression, malformed packets, TCP framing rules, start-up and shutdown.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};

const SEED: &str = r#"mcc = "313"
mnc = ["460"]
ttl = 300
addresses = ["192.0.2.10", "2001:db8::10"]
[[bootstrap]]
uri = "coaps://bs.example-op.net:5684"
[[bootstrap]]
uri = "coap://192.0.2.10"
priority = 20
"#;

const TWO_DIGIT: &str = r#"mcc = "262"
mnc = ["01"]
addresses = ["198.51.100.20"]
[[bootstrap]]
uri = "coaps://198.51.100.20:5684"
"#;

fn seed_server(
    extra_files: &[(&str, &str)],
    config: Option<&str>,
    extra: &[&str],
) -> (tempfile::TempDir, Server) {
    let mut files = vec![("313-460.toml", SEED), ("262-01.toml", TWO_DIGIT)];
    files.extend_from_slice(extra_files);
    start_with(&files, config, extra)
}

type Ask = fn(SocketAddr, &str, RecordType, Option<u16>) -> Message;

fn check_common(m: &Message, name: &str, rtype: RecordType) {
    assert!(
        m.metadata.authoritative,
        "AA must be set for {name} {rtype}"
    );
    assert!(!m.metadata.recursion_available, "RA must be clear");
    assert_eq!(m.queries.len(), 1);
    assert_eq!(m.queries[0].name.to_ascii(), name);
    assert_eq!(m.queries[0].query_type, rtype);
}

fn every_design_row(addr: SocketAddr, ask: Ask) {
    let soa = ask(addr, "lwm2m.org.", RecordType::SOA, Some(1232));
    check_common(&soa, "lwm2m.org.", RecordType::SOA);
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert_eq!(soa.answers.len(), 1);
    assert!(matches!(soa.answers[0].data, RData::SOA(_)));

    let ns = ask(addr, "lwm2m.org.", RecordType::NS, Some(1232));
    assert_eq!(ns.answers.len(), 1);
    let glue: Vec<_> = ns
        .additionals
        .iter()
        .map(|r| (r.name.to_ascii(), r.record_type()))
        .collect();
    assert_eq!(
        glue,
        [
            ("ns1.lwm2m.org.".into(), RecordType::A),
            ("ns1.lwm2m.org.".into(), RecordType::AAAA)
        ]
    );

    let a = ask(
        addr,
        "bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::A,
        Some(1232),
    );
    check_common(&a, "bsf.mnc460.mcc313.lwm2m.org.", RecordType::A);
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.answers[0].data, RData::A("192.0.2.10".parse().unwrap()));
    assert_eq!(a.answers[0].ttl, 300);
    assert!(a.authorities.is_empty());

    let aaaa = ask(
        addr,
        "bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::AAAA,
        Some(1232),
    );
    assert_eq!(
        aaaa.answers[0].data,
        RData::AAAA("2001:db8::10".parse().unwrap())
    );

    let txt = ask(addr, "bsf.mnc460.mcc313.lwm2m.org.", RecordType::TXT, None);
    let mut texts: Vec<String> = txt
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::TXT(t) => String::from_utf8(t.txt_data[0].to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "uri=coap://192.0.2.10",
            "uri=coaps://bs.example-op.net:5684"
        ]
    );

    let srv = ask(
        addr,
        "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::SRV,
        Some(1232),
    );
    let RData::SRV(s) = &srv.answers[0].data else {
        panic!()
    };
    assert_eq!(
        (s.priority, s.weight, s.port, s.target.to_ascii().as_str()),
        (10, 1, 5684, "bs.example-op.net.")
    );

    let srv = ask(
        addr,
        "_coap._udp.bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::SRV,
        Some(1232),
    );
    let RData::SRV(s) = &srv.answers[0].data else {
        panic!()
    };
    assert_eq!(
        (s.priority, s.port, s.target.to_ascii().as_str()),
        (20, 5683, "bsf.mnc460.mcc313.lwm2m.org.")
    );
    let extra: Vec<_> = srv.additionals.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        extra,
        [RecordType::A, RecordType::AAAA],
        "in-zone SRV target addresses in additional"
    );

    let uri = ask(
        addr,
        "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::Unknown(256),
        Some(1232),
    );
    assert_eq!(uri.answers.len(), 1);
    let RData::Unknown { rdata, .. } = &uri.answers[0].data else {
        panic!("{:?}", uri.answers[0])
    };
    assert_eq!(&rdata.anything[..4], &[0, 10, 0, 1]);
    assert_eq!(&rdata.anything[4..], b"coaps://bs.example-op.net:5684");

    for ent in [
        "mcc313.lwm2m.org.",
        "mnc460.mcc313.lwm2m.org.",
        "_udp.bsf.mnc460.mcc313.lwm2m.org.",
    ] {
        let m = ask(addr, ent, RecordType::A, Some(1232));
        check_common(&m, ent, RecordType::A);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{ent} is an empty non-terminal"
        );
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities.len(), 1);
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(
            m.authorities[0].ttl, 300,
            "negative TTL = min(SOA TTL, minimum)"
        );
    }

    let nodata = ask(
        addr,
        "bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::MX,
        Some(1232),
    );
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);

    let nx = ask(
        addr,
        "bsf.mnc999.mcc313.lwm2m.org.",
        RecordType::A,
        Some(1232),
    );
    check_common(&nx, "bsf.mnc999.mcc313.lwm2m.org.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities.len(), 1);
    assert_eq!(nx.authorities[0].name.to_ascii(), "lwm2m.org.");
    assert_eq!(nx.authorities[0].ttl, 300);

    let refused = ask(addr, "example.com.", RecordType::A, Some(1232));
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(!refused.metadata.authoritative);
    assert!(refused.answers.is_empty() && refused.authorities.is_empty());

    for name in [
        "bsf.mnc01.mcc262.lwm2m.org.",
        "bsf.mnc001.mcc262.lwm2m.org.",
    ] {
        let m = ask(addr, name, RecordType::A, Some(1232));
        assert_eq!(
            m.answers[0].data,
            RData::A("198.51.100.20".parse().unwrap()),
            "{name}"
        );
    }
}

#[test]
fn every_design_row_over_udp_and_tcp() {
    let (_dir, server) = seed_server(&[], None, &[]);
    every_design_row(server.addr, ask_udp);
    every_design_row(server.addr, ask_tcp);
}

#[test]
fn any_is_minimal_over_udp_and_complete_over_tcp() {
    let (_dir, server) = seed_server(&[], None, &[]);
    let udp = ask_udp(
        server.addr,
        "bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::ANY,
        None,
    );
    let types: std::collections::BTreeSet<_> =
        udp.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types.len(),
        1,
        "RFC 8482: one RRset over UDP, got {types:?}"
    );
    let tcp = ask_tcp(
        server.addr,
        "bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::ANY,
        None,
    );
    let types: std::collections::BTreeSet<_> =
        tcp.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 3, "A, AAAA and TXT over TCP, got {types:?}");
}

/// Builds a query by hand so every byte is under the test's control.
fn raw_query(
    id: u16,
    flags: u16,
    counts: [u16; 4],
    name: &[u8],
    qtype: u16,
    qclass: u16,
    extra: &[u8],
) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        q.extend_from_slice(&c.to_be_bytes());
    }
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q.extend_from_slice(extra);
    q
}

const BSF_MIXED: &[u8] = b"\x03BsF\x06MnC460\x06mcc313\x05LwM2m\x03oRG\x00";

fn opt(payload: u16, version: u8, dnssec_ok: bool, options: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 0, 41];
    o.extend_from_slice(&payload.to_be_bytes());
    o.push(0);
    o.push(version);
    o.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    o.extend_from_slice(&(options.len() as u16).to_be_bytes());
    o.extend_from_slice(options);
    o
}

#[test]
fn question_case_is_echoed_and_answers_point_at_it() {
    let (_dir, server) = seed_server(&[], None, &[]);
    let query = raw_query(0x4242, 0x0100, [1, 0, 0, 0], BSF_MIXED, 1, 1, &[]);
    let response = udp_exchange(server.addr, &query, 2000).expect("answer");
    assert_eq!(&response[..2], &[0x42, 0x42]);
    assert_eq!(response[2] & 0x80, 0x80, "QR");
    assert_eq!(response[2] & 0x04, 0x04, "AA");
    assert_eq!(response[2] & 0x01, 0x01, "RD copied");
    assert_eq!(response[3] & 0x80, 0, "RA clear");
    let qlen = BSF_MIXED.len() + 4;
    assert_eq!(
        &response[12..12 + qlen],
        &query[12..12 + qlen],
        "question echoed byte for byte"
    );
    // The answer's owner is a compression pointer to the question name at offset 12.
    assert_eq!(&response[12 + qlen..12 + qlen + 2], &[0xC0, 0x0C]);
    let m = Message::from_vec(&response).unwrap();
    assert_eq!(m.answers[0].name.to_ascii(), "BsF.MnC460.mcc313.LwM2m.oRG.");
}

#[test]
fn edns_is_echoed_and_badvers_returned() {
    let (_dir, server) = seed_server(&[], None, &[]);
    // Unknown option (code 65001) is ignored; DO is copied.
    let option = [0xFD, 0xE9, 0, 2, 0xAB, 0xCD];
    let query = raw_query(
        7,
        0,
        [1, 0, 0, 1],
        BSF_MIXED,
        1,
        1,
        &opt(4096, 0, true, &option),
    );
    let m = Message::from_vec(&udp_exchange(server.addr, &query, 2000).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let edns = m.edns.as_ref().expect("OPT echoed");
    assert_eq!(edns.max_payload(), 1232, "our payload size");
    assert_eq!(edns.version(), 0);
    assert!(edns.flags().dnssec_ok, "DO copied");
    assert!(edns.options().as_ref().is_empty(), "no options echoed");

    let query = raw_query(
        8,
        0,
        [1, 0, 0, 1],
        BSF_MIXED,
        1,
        1,
        &opt(1232, 1, false, &[]),
    );
    let bytes = udp_exchange(server.addr, &query, 2000).unwrap();
    let m = Message::from_vec(&bytes).unwrap();
    // BADVERS and BADSIG share code 16 (RFC 6891, RFC 8945); hickory decodes it as BADSIG.
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    assert!(m.answers.is_empty());
    assert_eq!(m.edns.as_ref().map(|e| e.version()), Some(0));

    let query = raw_query(9, 0, [1, 0, 0, 0], BSF_MIXED, 1, 1, &[]);
    let m = Message::from_vec(&udp_exchange(server.addr, &query, 2000).unwrap()).unwrap();
    assert!(m.edns.is_none(), "no OPT without one in the query");

    // Two OPT records: FORMERR.
    let two = [opt(1232, 0, false, &[]), opt(1232, 0, false, &[])].concat();
    let query = raw_query(10, 0, [1, 0, 0, 2], BSF_MIXED, 1, 1, &two);
    let m = Message::from_vec(&udp_exchange(server.addr, &query, 2000).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
}

fn big_template() -> String {
    let mut text = String::from("mcc = \"001\"\nmnc = [\"01\"]\naddresses = [\"192.0.2.1\"]\n");
    for i in 0..8 {
        text.push_str(&format!(
            "[[bootstrap]]\nuri = \"coaps://bootstrap-server-number-{i}.a-rather-long-operator-domain.example:5684/bs?ep=device\"\n"
        ));
    }
    text
}

#[test]
fn truncation_follows_the_clients_size() {
    let big = big_template();
    let (_dir, server) = seed_server(&[("001-01.toml", &big)], None, &[]);
    let name = "bsf.mnc01.mcc001.lwm2m.org.";
    let small = ask_udp(server.addr, name, RecordType::TXT, None);
    assert!(small.metadata.truncation, "TC when over 512 without EDNS");
    assert!(small.answers.is_empty());
    assert!(small.metadata.authoritative);
    let large = ask_udp(server.addr, name, RecordType::TXT, Some(4096));
    assert!(!large.metadata.truncation, "fits in 1232");
    assert_eq!(large.answers.len(), 8);
    // ANY over TCP has more than 1232 octets; over UDP with a 4096 buffer it stays within our
    // 1232 maximum (a minimal ANY is one RRset).
    let tcp_any = ask_tcp(server.addr, name, RecordType::ANY, None);
    assert_eq!(tcp_any.answers.len(), 9);
    let bytes = udp_exchange(
        server.addr,
        &query_bytes(name, RecordType::TXT, Some(4096)),
        2000,
    )
    .unwrap();
    assert!(
        bytes.len() <= 1232,
        "never above our maximum: {}",
        bytes.len()
    );
    let tcp = ask_tcp(server.addr, name, RecordType::TXT, None);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 8);
    // A small EDNS buffer below 512 is treated as 512.
    let tiny = ask_udp(server.addr, name, RecordType::TXT, Some(100));
    assert!(tiny.metadata.truncation);
}

/// A network whose bootstrap server's 31 addresses make the SRV answer's additional section
/// larger than 512 octets on its own.
fn many_addresses_template() -> String {
    let mut text = String::from("mcc = \"001\"\nmnc = [\"01\"]\naddresses = [\"192.0.2.1\"");
    for i in 1..=30 {
        text.push_str(&format!(", \"2001:db8::{i:x}\""));
    }
    text.push_str("]\n[[bootstrap]]\nuri = \"coaps://192.0.2.1:5684\"\n");
    text
}

#[test]
fn additional_records_go_before_an_answer_is_truncated() {
    let (_dir, server) = seed_server(&[("001-01.toml", &many_addresses_template())], None, &[]);
    let name = "_coaps._udp.bsf.mnc01.mcc001.lwm2m.org.";
    let ask_raw = |edns: Option<u16>| {
        let bytes = udp_exchange(server.addr, &query_bytes(name, RecordType::SRV, edns), 2000)
            .expect("answered");
        let message = Message::from_vec(&bytes).expect("parses");
        (bytes, message)
    };
    let srv = |m: &Message| match m.answers.as_slice() {
        [record] => match &record.data {
            RData::SRV(s) => (s.port, s.target.to_ascii()),
            other => panic!("not an SRV: {other:?}"),
        },
        other => panic!("{} answers", other.len()),
    };
    // With room (1232 octets), the SRV comes with its target's 31 addresses.
    let (full_bytes, full) = ask_raw(Some(1232));
    assert!(!full.metadata.truncation);
    assert!(full_bytes.len() > 512, "{} octets", full_bytes.len());
    assert_eq!(
        srv(&full),
        (5684, "bsf.mnc01.mcc001.lwm2m.org.".to_string())
    );
    let types: Vec<RecordType> = full.additionals.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 31);
    assert_eq!(types.iter().filter(|t| **t == RecordType::AAAA).count(), 30);
    // Within 512 octets (no EDNS, or EDNS asking for 512), the addresses go and the SRV stays
    // (RFC 2181 §9): no TC, ARCOUNT counting only the OPT when there is one.
    for (edns, arcount) in [(None, 0u16), (Some(512), 1)] {
        let (bytes, m) = ask_raw(edns);
        assert!(bytes.len() <= 512, "{edns:?}: {} octets", bytes.len());
        assert!(!m.metadata.truncation, "{edns:?}: TC set");
        assert!(m.metadata.authoritative);
        assert_eq!(srv(&m), srv(&full), "{edns:?}");
        assert!(m.additionals.is_empty(), "{edns:?}: {:?}", m.additionals);
        assert_eq!(
            u16::from_be_bytes([bytes[10], bytes[11]]),
            arcount,
            "{edns:?}"
        );
        assert_eq!(m.edns.is_some(), edns.is_some());
        // The same bytes as the full answer up to its additional section, but for the ID and
        // ARCOUNT.
        let question_and_answer = &bytes[12..];
        assert_eq!(
            &full_bytes[2..10],
            &bytes[2..10],
            "{edns:?}: flags and counts"
        );
        let without_opt = question_and_answer.len() - if edns.is_some() { 11 } else { 0 };
        assert_eq!(
            &full_bytes[12..12 + without_opt],
            &question_and_answer[..without_opt],
            "{edns:?}"
        );
    }
}

#[test]
fn two_bootstrap_uris_fit_in_512_without_edns() {
    let two = r#"mcc = "310"
mnc = ["410"]
addresses = ["203.0.113.7", "2001:db8:7::7"]
[[bootstrap]]
uri = "coaps://bootstrap-primary.iot-platform.example-operator.com:5684"
[[bootstrap]]
uri = "coaps://bootstrap-secondary.iot-platform.example-operator.com:5684"
priority = 20
"#;
    let (_dir, server) = seed_server(&[("310-410.toml", two)], None, &[]);
    let bsf = "bsf.mnc410.mcc310.lwm2m.org.";
    let srv_name = "_coaps._udp.bsf.mnc410.mcc310.lwm2m.org.";
    for (name, rtype) in [
        (bsf, RecordType::A),
        (bsf, RecordType::AAAA),
        (bsf, RecordType::TXT),
        (bsf, RecordType::ANY),
        (srv_name, RecordType::SRV),
        (srv_name, RecordType::Unknown(256)),
        (srv_name, RecordType::ANY),
    ] {
        let bytes = udp_exchange(server.addr, &query_bytes(name, rtype, None), 2000).unwrap();
        assert!(bytes.len() <= 512, "{name} {rtype}: {} bytes", bytes.len());
        let m = Message::from_vec(&bytes).unwrap();
        assert!(!m.metadata.truncation, "{name} {rtype} truncated");
        assert!(!m.answers.is_empty(), "{name} {rtype}");
    }
}

/// Refusals say why in an Extended DNS Error (RFC 8914), when the query has EDNS: not allowed
/// to ask (`allow-query`: 18, Prohibited), a name or class outside the zone (20, Not
/// Authoritative), a zone transfer over UDP (21, Not Supported). Over UDP and TCP; without
/// EDNS, no OPT at all.
#[test]
fn refusals_say_why() {
    let (_dir, open) = seed_server(&[], None, &[]);
    let (_dir2, closed) = seed_server(&[], Some("[access]\nallow-query = [\"10.0.0.0/8\"]\n"), &[]);
    let with_edns = opt(1232, 0, false, &[]);
    let exchange_both = |addr, q: &[u8]| [udp_answer(addr, q), tcp_answer(addr, q)];
    let expect_ede = |addr, q: &[u8], code: u8| {
        for r in exchange_both(addr, q) {
            assert_eq!(r[3] & 0xF, 5, "REFUSED: {r:02x?}");
            assert_eq!(&r[..2], &q[..2]);
            assert_eq!(u16::from_be_bytes([r[10], r[11]]), 1, "OPT");
            // The response ends with OPT carrying one option: EDE, INFO-CODE, no text.
            assert_eq!(&r[r.len() - 8..], &[0, 6, 0, 15, 0, 2, 0, code], "{r:02x?}");
        }
    };
    let hit = raw_query(1, 0, [1, 0, 0, 1], BSF_MIXED, 1, 1, &with_edns);
    expect_ede(closed.addr, &hit, 18);
    let outside = raw_query(
        2,
        0,
        [1, 0, 0, 1],
        b"\x07example\x03com\x00",
        1,
        1,
        &with_edns,
    );
    expect_ede(open.addr, &outside, 20);
    let chaos = raw_query(3, 0, [1, 0, 0, 1], BSF_MIXED, 1, 3, &with_edns);
    expect_ede(open.addr, &chaos, 20);
    let axfr = raw_query(
        4,
        0,
        [1, 0, 0, 1],
        b"\x05lwm2m\x03org\x00",
        252,
        1,
        &with_edns,
    );
    let r = udp_exchange(open.addr, &axfr, 5000).expect("REFUSED");
    assert_eq!(&r[r.len() - 8..], &[0, 6, 0, 15, 0, 2, 0, 21], "{r:02x?}");
    // Without EDNS: REFUSED alone.
    let classic = raw_query(5, 0, [1, 0, 0, 0], BSF_MIXED, 1, 1, &[]);
    for r in exchange_both(closed.addr, &classic) {
        assert_eq!((r[3] & 0xF, u16::from_be_bytes([r[10], r[11]])), (5, 0));
    }
    if have_tool("dig") {
        let out = dig(closed.port, &["+norec", "bsf.mnc460.mcc313.lwm2m.org", "A"]);
        assert!(out.contains("EDE: 18 (Prohibited)"), "{out}");
    }
}

/// A network answered from the default template whose bootstrap server is another network's
/// name in the zone (a central bootstrap server for every unprovisioned network) gets that
/// name's addresses in the additional section, as a network with a file would (DESIGN.md §3),
/// also once the zone is compiled and the other network's records are no longer kept; the
/// padded spelling of a 2-digit network too.
#[test]
fn default_template_answers_carry_addresses_of_targets_in_other_networks() {
    let default = "default = true\n[[bootstrap]]\nuri = \"coaps://bsf.mnc460.mcc313.lwm2m.org:5684\"\n[[bootstrap]]\nuri = \"coap://bsf.mnc001.mcc262.lwm2m.org\"\n";
    let (_dir, server) = seed_server(
        &[("default.toml", default)],
        Some("default-template = true\n"),
        &[],
    );
    for ask in [ask_udp as Ask, ask_tcp] {
        let m = ask(
            server.addr,
            "_coaps._udp.bsf.mnc99.mcc999.lwm2m.org.",
            RecordType::SRV,
            Some(1232),
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1, "{m:?}");
        let RData::SRV(srv) = &m.answers[0].data else {
            panic!("not SRV: {m:?}");
        };
        assert_eq!(srv.target.to_ascii(), "bsf.mnc460.mcc313.lwm2m.org.");
        let mut extra: Vec<(String, String)> = m
            .additionals
            .iter()
            .map(|r| (r.name.to_ascii(), r.data.to_string()))
            .collect();
        extra.sort();
        assert_eq!(
            extra,
            [
                (
                    "bsf.mnc460.mcc313.lwm2m.org.".to_string(),
                    "192.0.2.10".to_string()
                ),
                (
                    "bsf.mnc460.mcc313.lwm2m.org.".to_string(),
                    "2001:db8::10".to_string()
                ),
            ]
        );
        // The second URI's target is 262-01 in its padded spelling.
        let m = ask(
            server.addr,
            "_coap._udp.bsf.mnc99.mcc999.lwm2m.org.",
            RecordType::SRV,
            Some(1232),
        );
        let extra: Vec<(String, String)> = m
            .additionals
            .iter()
            .map(|r| (r.name.to_ascii(), r.data.to_string()))
            .collect();
        assert_eq!(
            extra,
            [(
                "bsf.mnc001.mcc262.lwm2m.org.".to_string(),
                "198.51.100.20".to_string()
            )],
            "{m:?}"
        );
    }
}

#[test]
fn malformed_and_unsupported_queries() {
    let (_dir, server) = seed_server(&[], None, &[]);
    let exchange = |q: &[u8]| udp_exchange(server.addr, q, 700);
    let rcode = |bytes: &[u8]| bytes[3] & 0xF;

    let no_question = raw_query(1, 0, [0, 0, 0, 0], b"", 0, 0, &[]);
    let r = exchange(&no_question[..12]).expect("FORMERR for QDCOUNT 0");
    assert_eq!((rcode(&r), r[2] & 0x80), (1, 0x80));

    let two = raw_query(2, 0, [2, 0, 0, 0], BSF_MIXED, 1, 1, &[]);
    let r = exchange(&two).expect("FORMERR for QDCOUNT 2");
    assert_eq!(rcode(&r), 1);
    assert_eq!(&r[..2], &[0, 2]);

    let mut truncated = raw_query(3, 0, [1, 0, 0, 0], BSF_MIXED, 1, 1, &[]);
    truncated.truncate(20);
    assert_eq!(rcode(&exchange(&truncated).expect("FORMERR")), 1);

    assert!(exchange(&[1, 2, 3, 4, 5]).is_none(), "no header: dropped");
    let mut response = raw_query(4, 0x8000, [1, 0, 0, 0], BSF_MIXED, 1, 1, &[]);
    assert!(exchange(&response).is_none(), "QR=1 is never answered");
    response[2] = 0x84;
    assert!(exchange(&response).is_none());

    let status = raw_query(5, 2 << 11, [1, 0, 0, 0], BSF_MIXED, 1, 1, &[]);
    assert_eq!(rcode(&exchange(&status).expect("NOTIMP")), 4);
    let notify = raw_query(6, 4 << 11, [1, 0, 0, 0], b"\x05lwm2m\x03org\x00", 6, 1, &[]);
    let r = exchange(&notify).expect("NOTIMP for NOTIFY to a primary");
    assert_eq!((rcode(&r), (r[2] >> 3) & 0xF), (4, 4), "opcode echoed");

    // CHAOS: only the server's identity and version are answered (tests/identity.rs).
    let chaos = raw_query(7, 0, [1, 0, 0, 0], b"\x07authors\x04bind\x00", 16, 3, &[]);
    assert_eq!(rcode(&exchange(&chaos).expect("REFUSED")), 5);
    let chaos_in_zone = raw_query(8, 0, [1, 0, 0, 0], BSF_MIXED, 1, 3, &[]);
    assert_eq!(rcode(&exchange(&chaos_in_zone).expect("REFUSED")), 5);
    let class_any = raw_query(9, 0, [1, 0, 0, 0], BSF_MIXED, 1, 255, &[]);
    let r = exchange(&class_any).expect("answer");
    assert_eq!((rcode(&r), u16::from_be_bytes([r[6], r[7]])), (0, 1));

    let axfr = raw_query(10, 0, [1, 0, 0, 0], b"\x05lwm2m\x03org\x00", 252, 1, &[]);
    assert_eq!(
        rcode(&exchange(&axfr).expect("REFUSED")),
        5,
        "no AXFR over UDP"
    );
    let with_answer = raw_query(
        11,
        0,
        [1, 1, 0, 0],
        BSF_MIXED,
        1,
        1,
        &[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(rcode(&exchange(&with_answer).expect("FORMERR")), 1);

    // Still serving.
    let m = server.ask("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn tcp_pipelining_and_split_segments() {
    let (_dir, server) = seed_server(&[], None, &[]);
    let mut stream = tcp_connect(server.addr);
    let names = [
        "bsf.mnc460.mcc313.lwm2m.org.",
        "bsf.mnc01.mcc262.lwm2m.org.",
        "nope.lwm2m.org.",
    ];
    let mut all = Vec::new();
    let mut ids = Vec::new();
    for i in 0..30 {
        let q = query_bytes(names[i % 3], RecordType::A, None);
        ids.push(u16::from_be_bytes([q[0], q[1]]));
        all.extend_from_slice(&(q.len() as u16).to_be_bytes());
        all.extend_from_slice(&q);
    }
    stream.write_all(&all).unwrap();
    let mut seen = Vec::new();
    for _ in 0..30 {
        let bytes = tcp_recv(&mut stream).expect("pipelined answer");
        let m = Message::from_vec(&bytes).unwrap();
        seen.push(m.metadata.id);
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "every pipelined query answered once");

    // One query split over several segments, with pauses between.
    let q = query_bytes("bsf.mnc460.mcc313.lwm2m.org.", RecordType::TXT, None);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    for chunk in [&framed[..1], &framed[1..7], &framed[7..]] {
        stream.write_all(chunk).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    let m = Message::from_vec(&tcp_recv(&mut stream).unwrap()).unwrap();
    assert_eq!(m.answers.len(), 2);
}

/// The edns-tcp-keepalive option of a response (RFC 7828): `Some(TIMEOUT)`, or `None`.
fn keepalive_of(response: &[u8]) -> Option<u16> {
    let m = Message::from_vec(response).expect("a parsable response");
    let option = m.edns.as_ref()?.options().get(EdnsCode::Keepalive)?;
    match option {
        EdnsOption::Unknown(11, data) => Some(u16::from_be_bytes(
            data.as_slice().try_into().expect("a two-byte TIMEOUT"),
        )),
        other => panic!("keepalive decoded as {other:?}"),
    }
}

#[test]
fn tcp_keepalive_tells_the_idle_timeout_over_tcp_only() {
    let config = "[server]\ntcp-idle-timeout = 7\n";
    let (_dir, server) = seed_server(&[], Some(config), &[]);
    let keepalive = [0u8, 11, 0, 0];
    // Asked for over TCP, beside a padding option: TIMEOUT 70 (units of 100 ms), on a
    // positive answer, on BADVERS, and on a name outside the zone (REFUSED, whose OPT also
    // carries the Extended DNS Error saying why).
    for (qname, version, rcode, options_sent) in [
        (BSF_MIXED, 0, 0, 1),
        (BSF_MIXED, 1, 16, 1),
        (&b"\x07example\x03com\x00"[..], 0, 5, 2),
    ] {
        let options = [&keepalive[..], &[0, 12, 0, 2, 0, 0]].concat();
        let query = raw_query(
            3,
            0,
            [1, 0, 0, 1],
            qname,
            1,
            1,
            &opt(1232, version, false, &options),
        );
        let response = tcp_answer(server.addr, &query);
        let m = Message::from_vec(&response).unwrap();
        assert_eq!(u16::from(m.metadata.response_code), rcode);
        assert_eq!(keepalive_of(&response), Some(70), "rcode {rcode}");
        let sent = m.edns.as_ref().unwrap().options().as_ref().len();
        assert_eq!(
            sent, options_sent,
            "rcode {rcode}: the padding is not echoed"
        );
    }
    let answer = Message::from_vec(&tcp_answer(
        server.addr,
        &raw_query(
            4,
            0,
            [1, 0, 0, 1],
            BSF_MIXED,
            1,
            1,
            &opt(1232, 0, false, &keepalive),
        ),
    ))
    .unwrap();
    assert_eq!(
        answer.answers.len(),
        1,
        "the A record, as without the option"
    );
    // Not asked for over TCP, or asked for over UDP (RFC 7828 §3.3.1: ignored): no option.
    let plain = raw_query(
        5,
        0,
        [1, 0, 0, 1],
        BSF_MIXED,
        1,
        1,
        &opt(1232, 0, false, &[]),
    );
    assert_eq!(keepalive_of(&tcp_answer(server.addr, &plain)), None);
    let over_udp = raw_query(
        6,
        0,
        [1, 0, 0, 1],
        BSF_MIXED,
        1,
        1,
        &opt(1232, 0, false, &keepalive),
    );
    let response = udp_answer(server.addr, &over_udp);
    assert_eq!(keepalive_of(&response), None);
    assert!(
        Message::from_vec(&response).unwrap().edns.is_some(),
        "OPT still echoed"
    );
    // A client the access list refuses is told too, over TCP only (default timeout: 10 s).
    let (_dir2, closed) = seed_server(&[], Some("[access]\nallow-query = [\"10.0.0.0/8\"]\n"), &[]);
    let refused = tcp_answer(closed.addr, &over_udp);
    assert_eq!(
        Message::from_vec(&refused).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    assert_eq!(keepalive_of(&refused), Some(100));
    assert_eq!(keepalive_of(&udp_answer(closed.addr, &over_udp)), None);
    // dig shows what an operator sees.
    if have_tool("dig") {
        let port = server.addr.port().to_string();
        let out = dig(
            server.addr.port(),
            &["+tcp", "+keepalive", "bsf.mnc460.mcc313.lwm2m.org", "A"],
        );
        assert!(
            out.contains("TCP KEEPALIVE: 7.0 secs"),
            "port {port}: {out}"
        );
    }
}

#[test]
fn tcp_idle_timeout_and_connection_cap() {
    let config = "[server]\ntcp-idle-timeout = 1\ntcp-max-connections = 2\n";
    let (_dir, server) = seed_server(&[], Some(config), &[]);
    let silent = tcp_connect(server.addr);
    let mut busy = tcp_connect(server.addr);
    tcp_send(&mut busy, &query_bytes("lwm2m.org.", RecordType::SOA, None));
    assert!(
        tcp_recv(&mut busy).is_some(),
        "second connection served while the first is silent"
    );
    // Third connection: over the cap, closed at once.
    let mut third = tcp_connect(server.addr);
    tcp_send(
        &mut third,
        &query_bytes("lwm2m.org.", RecordType::SOA, None),
    );
    assert!(
        tcp_recv(&mut third).is_none(),
        "connection over the cap is closed"
    );
    // UDP is unaffected by TCP clients that say nothing.
    assert_eq!(server.ask("lwm2m.org.", RecordType::SOA).answers.len(), 1);
    // The silent one is closed by the idle timeout (1 s), well before our 5 s read timeout.
    let started = Instant::now();
    let mut silent = silent;
    assert!(tcp_recv(&mut silent).is_none());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "idle connection closed after {:?}",
        started.elapsed()
    );
    drop(busy);
    // With the slots freed, new connections work again (bounded poll).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = tcp_connect(server.addr);
        tcp_send(
            &mut again,
            &query_bytes("lwm2m.org.", RecordType::SOA, None),
        );
        if tcp_recv(&mut again).is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections never accepted again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_stops_cleanly_and_a_taken_port_is_a_clear_error() {
    let (dir, mut server) = seed_server(&[], None, &["--threads", "1"]);
    let zones = dir.path().join("zones");
    // Same port again: must fail with a message naming the address. With one thread the UDP
    // socket is not shared (no SO_REUSEPORT), so already the UDP bind is refused: a second
    // server never receives part of the first one's queries.
    let output = std::process::Command::new(BIN)
        .args([
            "serve",
            "--threads",
            "1",
            "--listen",
            &format!("127.0.0.1:{}", server.port),
            "--zones",
        ])
        .arg(&zones)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{} (UDP)", server.port)) && stderr.contains("in use"),
        "{stderr}"
    );

    let status = server.guard.terminate().expect("exit status");
    assert!(status.success(), "SIGTERM exit: {status}");
    assert!(server.guard.log_text().contains("stopped"));
}

/// Runs `script` (sh) in new network and PID namespaces with only a loopback device and IPv6
/// switched off, as in a container on a host without IPv6; killed after 30 s with every
/// process in it. `None` where namespaces cannot be made (not root).
fn without_ipv6(script: &str) -> Option<String> {
    if !have_tool("unshare") || !have_tool("ip") {
        return None;
    }
    let namespaces = ["-n", "-p", "-f", "--kill-child"];
    let probe = std::process::Command::new("unshare")
        .args(namespaces)
        .arg("true")
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipping: cannot create namespaces here (not root?)");
        return None;
    }
    let setup = "ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 \
                 && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6";
    let output = std::process::Command::new("timeout")
        .args(["-s", "KILL", "30", "unshare"])
        .args(namespaces)
        .args(["sh", "-c", &format!("{setup} && {script}")])
        .output()
        .expect("run unshare");
    Some(String::from_utf8_lossy(&[output.stdout, output.stderr].concat()).into_owned())
}

#[test]
fn the_default_addresses_serve_on_a_host_without_ipv6_and_chosen_ones_must_bind() {
    let zones = bundled_zones();
    let zones = zones.to_str().unwrap();
    // The quick start (no --listen): ::1 is skipped with a warning, 127.0.0.1 answers.
    let script = format!(
        "{BIN} serve --zones {zones} > /tmp/bsf-dns-no-ipv6.$$ 2>&1 & \
         for i in $(seq 1 100); do \
           out=$({BIN} resolve --imsi 313460000000001 --server 127.0.0.1:1053 2>&1) && break; \
           sleep 0.1; \
         done; \
         echo \"$out\"; cat /tmp/bsf-dns-no-ipv6.$$; rm -f /tmp/bsf-dns-no-ipv6.$$; \
         {BIN} serve --zones {zones} --listen [::1]:1053 --listen 127.0.0.1:1054; \
         echo \"chosen exit $?\""
    );
    let Some(output) = without_ipv6(&script) else {
        return;
    };
    assert!(
        output.contains("coaps://bs.example-op.net:5684"),
        "{output}"
    );
    assert!(
        output.contains("IPv6 is not available on this host") && output.contains("[::1]:1053"),
        "{output}"
    );
    assert!(
        output.contains("serving on 127.0.0.1:1053 (UDP and TCP)"),
        "{output}"
    );
    // A chosen address the host cannot have stops start-up, naming it.
    assert!(output.contains("cannot listen on [::1]:1053"), "{output}");
    assert!(output.contains("chosen exit 1"), "{output}");
}

#[test]
fn bad_templates_refuse_to_start_with_located_error() {
    let (dir, zones) = temp_zones(&[(
        "bad.toml",
        "mcc = \"31\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
    )]);
    let output = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--zones",
        ])
        .arg(&zones)
        .output()
        .unwrap();
    drop(dir);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml:1: field `mcc`"), "{stderr}");
}
