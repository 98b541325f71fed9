//! The server naming itself: CHAOS TXT `id.server.`/`hostname.bind.`/`version.server.`/
//! `version.bind.` (RFC 4892) and the EDNS NSID option (RFC 5001), with their defaults and
//! settings, over UDP and TCP and through dig — what an operator with several servers uses to
//! learn which one answered.

mod common;

use common::raw_query as query;
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RData};

const SEED: &str = SEED_TEMPLATE;

/// Six bootstrap URIs: TXT, SRV and URI answers of 250 to 300 bytes, so that with a long NSID
/// they no longer fit in 512.
const MANY: &str = r#"mcc = "001"
mnc = ["01"]
addresses = ["192.0.2.1"]
[[bootstrap]]
uri = "coaps://bootstrap-one.long-operator-name.example:5684"
[[bootstrap]]
uri = "coaps://bootstrap-two.long-operator-name.example:5684"
[[bootstrap]]
uri = "coaps://bootstrap-three.long-operator-name.example:5684"
[[bootstrap]]
uri = "coaps://bootstrap-four.long-operator-name.example:5684"
[[bootstrap]]
uri = "coaps://bootstrap-five.long-operator-name.example:5684"
[[bootstrap]]
uri = "coaps://bootstrap-six.long-operator-name.example:5684"
"#;

fn start(config: Option<&str>) -> (tempfile::TempDir, Server) {
    start_with(
        &[("313-460.toml", SEED), ("001-01.toml", MANY)],
        config,
        &[],
    )
}

const NSID_ASKED: &[u8] = &[0, 3, 0, 0];
const TXT: u16 = 16;
const CH: u16 = 3;
const IN: u16 = 1;

/// The TXT answer's text, after checking everything else about a CHAOS answer: the question
/// echoed byte for byte, AA clear, one TXT record in class CH with TTL 0 owned by the question.
fn chaos_answer(response: &[u8], query: &[u8]) -> String {
    let m = Message::from_vec(response).expect("a parsable response");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.metadata.authoritative, "AA clear: no zone's data");
    let question_end = 12 + query[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
    assert_eq!(&response[12..question_end], &query[12..question_end]);
    assert_eq!(m.answers.len(), 1);
    let record = &m.answers[0];
    assert_eq!(record.dns_class, DNSClass::CH);
    assert_eq!(record.ttl, 0);
    assert_eq!(record.name, m.queries[0].name);
    match &record.data {
        RData::TXT(txt) => {
            assert_eq!(txt.txt_data.len(), 1, "one string");
            String::from_utf8(txt.txt_data[0].to_vec()).unwrap()
        }
        other => panic!("expected TXT, got {other:?}"),
    }
}

fn rcode(response: &[u8]) -> ResponseCode {
    Message::from_vec(response).unwrap().metadata.response_code
}

/// The NSID payload of a response, if it carries one.
fn nsid(response: &[u8]) -> Option<Vec<u8>> {
    let m = Message::from_vec(response).unwrap();
    match m.edns.as_ref()?.options().get(EdnsCode::NSID)? {
        EdnsOption::NSID(payload) => Some(payload.as_ref().to_vec()),
        other => panic!("NSID decoded as {other:?}"),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn chaos_names_answer_with_host_name_and_version_by_default() {
    let (_dir, server) = start(None);
    let version = format!("bsf-dns {}", env!("CARGO_PKG_VERSION"));
    for exchange in [udp_answer, tcp_answer] {
        for (name, want) in [
            ("id.server", host_name()),
            ("HostName.BIND", host_name()),
            ("version.SERVER", version.clone()),
            ("version.bind", version.clone()),
        ] {
            for (qtype, edns) in [(TXT, None), (255, Some((1232, &[][..])))] {
                let q = query(0x5151, name, qtype, CH, edns);
                let response = exchange(server.addr, &q);
                assert_eq!(&response[..2], &[0x51, 0x51]);
                assert_eq!(chaos_answer(&response, &q), want, "{name} type {qtype}");
                let m = Message::from_vec(&response).unwrap();
                assert_eq!(m.edns.is_some(), edns.is_some(), "OPT as asked");
            }
        }
        // Other types of the same names, other CHAOS names, the names in class IN: refused.
        for (name, qtype, qclass) in [
            ("id.server", 1, CH),
            ("version.bind", 6, CH),
            ("authors.bind", TXT, CH),
            ("x.id.server", TXT, CH),
            ("bsf.mnc460.mcc313.lwm2m.org", TXT, CH),
            ("id.server", TXT, IN),
        ] {
            let response = exchange(server.addr, &query(7, name, qtype, qclass, None));
            assert_eq!(
                rcode(&response),
                ResponseCode::Refused,
                "{name} {qtype}/{qclass}"
            );
        }
    }
}

#[test]
fn nsid_is_sent_when_asked_for_on_every_kind_of_response() {
    let (_dir, server) = start(None);
    let host = host_name().into_bytes();
    let cookie_then_nsid = [&[0u8, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8][..], NSID_ASKED].concat();
    for exchange in [udp_answer, tcp_answer] {
        for (name, qtype, qclass, want) in [
            ("bsf.mnc460.mcc313.lwm2m.org", 1, IN, ResponseCode::NoError),
            ("bsf.mnc460.mcc313.lwm2m.org", 15, IN, ResponseCode::NoError),
            ("bsf.mnc999.mcc313.lwm2m.org", 1, IN, ResponseCode::NXDomain),
            ("example.org", 1, IN, ResponseCode::Refused),
            ("id.server", TXT, CH, ResponseCode::NoError),
        ] {
            let asked = exchange(
                server.addr,
                &query(1, name, qtype, qclass, Some((1232, NSID_ASKED))),
            );
            assert_eq!(rcode(&asked), want, "{name}");
            assert_eq!(
                nsid(&asked).as_ref(),
                Some(&host),
                "{name}: NSID = host name"
            );
            let among = query(2, name, qtype, qclass, Some((1232, &cookie_then_nsid)));
            assert_eq!(nsid(&exchange(server.addr, &among)).as_ref(), Some(&host));
            let not_asked = exchange(
                server.addr,
                &query(3, name, qtype, qclass, Some((1232, &[]))),
            );
            assert_eq!(nsid(&not_asked), None, "{name}: no NSID unless asked");
            assert_eq!(rcode(&not_asked), want);
        }
    }
    // BADVERS carries it too: a client is told which server rejected its version.
    let mut badvers = query(4, "lwm2m.org", 6, IN, Some((1232, NSID_ASKED)));
    let version_at = badvers.len() - NSID_ASKED.len() - 2 - 2 - 1;
    badvers[version_at] = 1;
    let response = udp_answer(server.addr, &badvers);
    let m = Message::from_vec(&response).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    assert_eq!(nsid(&response), Some(host));
}

#[test]
fn settings_name_the_server_hide_the_version_and_size_the_answers() {
    let nsid_hex = "ab".repeat(200);
    let config = format!(
        "[server]\nidentity = \"ns-a.example.net\"\nversion = \"\"\nnsid = \"0x{nsid_hex}\"\n"
    );
    let (_dir, server) = start(Some(&config));
    let q = query(9, "id.server", TXT, CH, Some((1232, NSID_ASKED)));
    let response = udp_answer(server.addr, &q);
    assert_eq!(chaos_answer(&response, &q), "ns-a.example.net");
    assert_eq!(nsid(&response), Some(vec![0xab; 200]));
    for name in ["version.bind", "version.server"] {
        let response = udp_answer(server.addr, &query(10, name, TXT, CH, None));
        assert_eq!(
            rcode(&response),
            ResponseCode::Refused,
            "{name}: version hidden"
        );
    }
    // The NSID goes in only where room remains: a 512-byte client gets every answer whole and
    // within 512 bytes, with the NSID where it fits beside the answer and without it where it
    // does not; a 1232-byte client gets it with each.
    let config = format!("[server]\nnsid = \"{}\"\n", "n".repeat(255));
    let (_dir2, server) = start(Some(&config));
    let bsf = "bsf.mnc01.mcc001.lwm2m.org";
    let coaps = "_coaps._udp.bsf.mnc01.mcc001.lwm2m.org";
    // A long question makes even a negative answer and a refusal too large for both.
    let label = "a".repeat(60);
    let long_unknown = format!("{label}.{label}.{label}.x.lwm2m.org");
    let short = "b".repeat(55);
    let long_outside = format!("{short}.{short}.{short}.{short}.example.net");
    for (name, qtype, want, nsid_at_512) in [
        (bsf, 1, ResponseCode::NoError, true),
        (bsf, 16, ResponseCode::NoError, false),
        (coaps, 33, ResponseCode::NoError, false),
        (coaps, 256, ResponseCode::NoError, false),
        (&long_unknown, 1, ResponseCode::NXDomain, false),
        (&long_outside, 1, ResponseCode::Refused, false),
    ] {
        for (payload, with_nsid) in [(512, nsid_at_512), (1232, true)] {
            let asked = query(11, name, qtype, IN, Some((payload, NSID_ASKED)));
            let response = udp_answer(server.addr, &asked);
            let what = format!("{name} type {qtype} at {payload}");
            assert!(
                response.len() <= payload as usize,
                "{what}: {} bytes",
                response.len()
            );
            let m = Message::from_vec(&response).unwrap();
            assert_eq!(m.metadata.response_code, want, "{what}");
            assert!(
                !m.metadata.truncation,
                "{what}: the answer is never cut for the NSID"
            );
            assert_eq!(
                m.answers.is_empty(),
                want != ResponseCode::NoError,
                "{what}"
            );
            let expected = with_nsid.then(|| vec![b'n'; 255]);
            assert_eq!(nsid(&response), expected, "{what}");
        }
    }
    // The same for the CHAOS answers: a 255-byte identity is answered whole to a 512-byte
    // client, the 255-byte NSID left out; over TCP too (the bound is the client's UDP size).
    let long = "x".repeat(255);
    let config = format!("[server]\nidentity = \"{long}\"\nnsid = \"{long}\"\n");
    let (_dir3, server) = start(Some(&config));
    for (payload, with_nsid) in [(512, false), (1232, true)] {
        let q = query(12, "hostname.bind", TXT, CH, Some((payload, NSID_ASKED)));
        for exchange in [udp_answer, tcp_answer] {
            let response = exchange(server.addr, &q);
            assert!(response.len() <= payload as usize);
            assert_eq!(chaos_answer(&response, &q), long, "at {payload}");
            assert_eq!(
                nsid(&response),
                with_nsid.then(|| long.clone().into_bytes())
            );
        }
    }
}

#[test]
fn switched_off_identity_and_nsid_are_not_answered() {
    let config = "[server]\nidentity = \"\"\nnsid = \"\"\n";
    let (_dir, server) = start(Some(config));
    for name in ["id.server", "hostname.bind"] {
        let response = udp_answer(server.addr, &query(13, name, TXT, CH, None));
        assert_eq!(rcode(&response), ResponseCode::Refused, "{name}");
    }
    let q = query(14, "version.bind", TXT, CH, None);
    assert!(chaos_answer(&udp_answer(server.addr, &q), &q).starts_with("bsf-dns "));
    let response = udp_answer(
        server.addr,
        &query(
            15,
            "bsf.mnc460.mcc313.lwm2m.org",
            1,
            IN,
            Some((1232, NSID_ASKED)),
        ),
    );
    assert_eq!(rcode(&response), ResponseCode::NoError);
    assert_eq!(nsid(&response), None);
}

/// A reload renames the server (an operator moving an instance): identity and NSID change
/// without a restart.
#[test]
fn a_reload_renames_the_server() {
    let (dir, server) = start(Some("[server]\nidentity = \"ns-a\"\n"));
    let q = query(16, "id.server", TXT, CH, Some((1232, NSID_ASKED)));
    let named = |q: &[u8]| {
        let response = udp_answer(server.addr, q);
        (chaos_answer(&response, q), nsid(&response))
    };
    assert_eq!(named(&q), ("ns-a".to_string(), Some(b"ns-a".to_vec())));
    let staged = dir.path().join("settings.toml.new");
    std::fs::write(&staged, "[server]\nidentity = \"ns-b\"\n").unwrap();
    std::fs::rename(&staged, dir.path().join("settings.toml")).unwrap();
    for _ in 0..100 {
        if named(&q).0 == "ns-b" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(named(&q), ("ns-b".to_string(), Some(b"ns-b".to_vec())));
}

#[test]
fn dig_reads_the_identity_and_the_nsid() {
    if !have_tool("dig") {
        return;
    }
    let (_dir, server) = start(Some("[server]\nidentity = \"bsf-primary\"\n"));
    let out = dig(server.port, &["+short", "id.server", "CH", "TXT"]);
    assert_eq!(out.trim(), "\"bsf-primary\"");
    let out = dig(server.port, &["+nsid", "bsf.mnc460.mcc313.lwm2m.org", "A"]);
    assert!(
        out.contains("NSID: 62 73 66 2d 70 72 69 6d 61 72 79 (\"bsf-primary\")"),
        "{out}"
    );
    assert!(out.contains("192.0.2.10"), "{out}");
}
