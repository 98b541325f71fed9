//! Hostile input: hundreds of random and mutated packets over UDP and TCP. The server must stay
//! up, never answer a response packet, and answer a good query afterwards.

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn mutate(base: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut packet = base.to_vec();
    match rng.gen_range(0..5) {
        0 => {
            for _ in 0..rng.gen_range(1..6) {
                let i = rng.gen_range(0..packet.len());
                packet[i] = rng.gen();
            }
        }
        1 => packet.truncate(rng.gen_range(0..packet.len())),
        2 => packet.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>())),
        3 => {
            // Counts set to random values: claims of records that are not there.
            let at = 4 + 2 * rng.gen_range(0..4);
            packet[at] = rng.gen();
            packet[at + 1] = rng.gen();
        }
        _ => packet = (0..rng.gen_range(0..600)).map(|_| rng.gen()).collect(),
    }
    packet
}

#[test]
fn random_and_mutated_packets_do_not_hurt() {
    let server = Server::start(&bundled_zones(), None, &[]);
    let mut rng = StdRng::seed_from_u64(7);
    let bases = [
        query_bytes("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A, Some(1232)),
        query_bytes(
            "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
            RecordType::SRV,
            None,
        ),
        query_bytes("nothing.lwm2m.org.", RecordType::TXT, Some(512)),
        // With a client and server cookie (and NSID asked for), and asking only for a cookie.
        raw_query(
            3,
            "bsf.mnc460.mcc313.lwm2m.org",
            16,
            1,
            Some((
                1232,
                &[
                    &[0u8, 10, 0, 24][..],
                    &[7; 8],
                    &[1, 0, 0, 0, 0x6b, 0, 0, 0],
                    &[9; 8],
                    &[0, 3, 0, 0],
                ]
                .concat(),
            )),
        ),
        [
            &[0u8, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1][..],
            &[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8],
            &[7; 8],
        ]
        .concat(),
    ];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let mut buf = [0u8; 65535];
    let mut answered_responses = 0;
    for i in 0..600 {
        let packet = mutate(&bases[i % bases.len()], &mut rng);
        socket.send_to(&packet, server.addr).unwrap();
        // Anything that comes back must be a response (QR=1) with a parseable header.
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            assert!(n >= 12, "short reply");
            assert_eq!(buf[2] & 0x80, 0x80, "reply without QR");
            answered_responses += 1;
        }
    }
    // Responses (QR=1) are never answered, whatever else is in them: sent from a socket of
    // their own, nothing may come back to it.
    let reflector = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..50 {
        let mut packet = mutate(&bases[0], &mut rng);
        if packet.len() < 3 {
            continue;
        }
        packet[2] |= 0x80;
        reflector.send_to(&packet, server.addr).unwrap();
    }
    // A well-formed query last: its answer shows the server got this far.
    let marker = query_bytes("lwm2m.org.", RecordType::SOA, None);
    reflector.send_to(&marker, server.addr).unwrap();
    reflector
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let (n, _) = reflector
        .recv_from(&mut buf)
        .expect("answer to the marker query");
    assert_eq!(
        &buf[..2],
        &marker[..2],
        "a QR=1 packet was answered (reflection)"
    );
    assert!(n >= 12);
    reflector
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        reflector.recv_from(&mut buf).is_err(),
        "more replies than queries"
    );
    // Over TCP, garbage ends the connection but not the server.
    for _ in 0..50 {
        let mut stream = tcp_connect(server.addr);
        let packet = mutate(&bases[1], &mut rng);
        let _ = stream.write_all(&(packet.len() as u16).to_be_bytes());
        let _ = stream.write_all(&packet);
        let _ = tcp_recv(&mut stream);
    }
    let m: Message = server.ask("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A);
    assert_eq!(m.answers.len(), 1, "still answering after the garbage");
    assert!(
        answered_responses > 0,
        "FORMERR/answers were sent for readable headers"
    );
    assert!(server.guard.log_text().find("panicked").is_none());
}

#[test]
fn oversized_and_empty_datagrams_are_dropped() {
    let server = Server::start(&bundled_zones(), None, &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A real query followed by 5,000 bytes of padding: larger than any query the server
    // reads, so the kernel cuts it short, and what is left must not be answered as if whole.
    let mut oversized = query_bytes("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A, None);
    oversized[0] = 0xEE;
    oversized.resize(5000, 0);
    socket.send_to(&oversized, server.addr).unwrap();
    // An empty datagram: nothing to answer (and no reason to stop serving).
    socket.send_to(&[], server.addr).unwrap();
    let marker = query_bytes("lwm2m.org.", RecordType::SOA, None);
    socket.send_to(&marker, server.addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = socket.recv_from(&mut buf).expect("answer to the marker");
    assert!(n >= 12);
    assert_eq!(&buf[..2], &marker[..2], "the oversized query was answered");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(socket.recv_from(&mut buf).is_err(), "an extra reply came");
    let m: Message = server.ask("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A);
    assert_eq!(m.answers.len(), 1, "still answering");
}

/// The UDP path reads a question name up to its first zero byte (`scan_question_name`) and
/// answers common queries on a fast path; a label holding a zero byte, or a length octet
/// over 63 before it, must still get the answer the responder gives over TCP: the whole
/// question echoed, the right RCODE.
#[test]
fn names_with_zero_bytes_in_labels_are_answered_over_udp_as_over_tcp() {
    let server = Server::start(&bundled_zones(), None, &[]);
    let under_apex = |label: &[u8], rest: &str| {
        let mut name = vec![label.len() as u8];
        name.extend_from_slice(label);
        name.extend_from_slice(&wire_name(rest));
        name
    };
    let names = [
        // First zero byte inside a label, past the first 16 bytes and within them.
        under_apex(b"aaaaaaaaaaaaaaaaaa\x00b", "lwm2m.org"),
        under_apex(b"a\x00b", "bsf.mnc460.mcc313.lwm2m.org"),
        under_apex(b"\x00", "lwm2m.org"),
        // Common names, for comparison: the fast path's answers, and a network without a
        // template (NXDOMAIN: the bundled settings leave the default template off).
        wire_name("BSF.mnc460.mcc313.lwm2m.org"),
        wire_name("_coaps._udp.bsf.mnc460.mcc313.lwm2m.org"),
        wire_name("bsf.mnc15.mcc234.lwm2m.org"),
    ];
    let mut rcodes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for (qtype, opt) in [(1u16, false), (33, true), (256, true), (16, false)] {
            let mut query = vec![0x12, i as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, opt as u8];
            query.extend_from_slice(name);
            query.extend_from_slice(&qtype.to_be_bytes());
            query.extend_from_slice(&[0, 1]);
            if opt {
                query.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
            }
            let udp = udp_answer(server.addr, &query);
            let tcp = tcp_answer(server.addr, &query);
            assert_eq!(udp, tcp, "name {name:02x?} type {qtype}");
            assert_eq!(&udp[12..12 + name.len()], &name[..], "question echoed");
            rcodes.push(udp[3] & 0xF);
        }
    }
    // NXDOMAIN for the names with a zero byte, answers (NOERROR) for the served ones.
    assert_eq!(&rcodes[..12], &[3; 12]);
    assert_eq!(&rcodes[12..20], &[0; 8]);
    assert_eq!(&rcodes[20..], &[3; 4]);
    // NODATA (MX of a served name), which the fast path also writes over the query: as over
    // TCP, with the SOA in the authority section.
    for name in &names[3..5] {
        for opt in [false, true] {
            let mut query = vec![0x34, 0x56, 0, 0, 0, 1, 0, 0, 0, 0, 0, opt as u8];
            query.extend_from_slice(name);
            query.extend_from_slice(&[0, 15, 0, 1]);
            if opt {
                query.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
            }
            let udp = udp_answer(server.addr, &query);
            assert_eq!(udp, tcp_answer(server.addr, &query), "name {name:02x?} MX");
            assert_eq!(udp[3] & 0xF, 0, "NOERROR");
            assert_eq!(&udp[4..12], &[0, 1, 0, 0, 0, 1, 0, opt as u8], "counts");
        }
    }
}
