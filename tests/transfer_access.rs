//! Who may transfer and query, against the real binary: `allow-transfer` by address and by
//! TSIG key, every TSIG error of RFC 8945 §5.2, `allow-query` refusals, AXFR over UDP refused,
//! IXFR answered AXFR-style or with the SOA alone, NOTIFY to the primary answered NOTIMP, and
//! `dig -y` (BIND's own TSIG code) as an independent check of the signatures.
//!
//! Clients use several 127.0.0.0/8 source addresses (all loopback on Linux) to stand for
//! different hosts.

mod common;
#[path = "common/secondaries.rs"]
mod secondaries;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;

use bsf_dns::transfer::tsig::{self, Verifier, VerifyError};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::RecordType;
use secondaries::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

struct Setup {
    _dir: TempDir,
    bsf: Guard,
    server: SocketAddr,
    xfr: KeySpec,
    other: KeySpec,
    records: usize,
}

/// bsf-dns with: transfers from 127.0.0.2 (any key or none), from 127.0.0.3 only with key
/// `xfr`; key `other` known but allowed nowhere; queries only from 127.0.0.1 and 127.0.0.2.
fn setup() -> Setup {
    let dir = TempDir::new("access");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    copy_example_zones(&zones);
    let xfr = KeySpec::new("xfr", 1);
    let other = KeySpec::new("other", 2);
    let config = dir.path().join("bsf-dns.toml");
    std::fs::write(
        &config,
        format!(
            "[access]\nallow-query = [\"127.0.0.1\", \"127.0.0.2\"]\n\
             allow-transfer = [\"127.0.0.2\", \"127.0.0.3 key xfr\"]\n{}{}",
            xfr.bsf_toml(),
            other.bsf_toml()
        ),
    )
    .unwrap();
    let (bsf, port) = start_bsf_on_free_port(dir.path(), &zones, &config);
    let export = Command::new(env!("CARGO_BIN_EXE_bsf-dns"))
        .args(["export", "--zones"])
        .arg(&zones)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let records = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(';') && !l.starts_with("$ORIGIN") && !l.trim().is_empty())
        .count();
    Setup {
        _dir: dir,
        bsf,
        server: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        xfr,
        other,
        records,
    }
}

fn request(s: &Setup, source: u8, key: Option<&KeySpec>) -> TransferRequest<'static> {
    let mut r = TransferRequest::axfr(s.server);
    r.source = ip(source);
    r.key = key.map(KeySpec::key);
    r
}

/// A complete transfer: SOA first and last, every record of the export in between.
fn assert_complete(s: &Setup, result: &TransferResult) {
    assert_eq!(result.rcode(), ResponseCode::NoError);
    let records = result.records();
    assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
    assert_eq!(
        records.len(),
        s.records + 1,
        "SOA twice plus the other records"
    );
}

#[test]
fn transfers_follow_allow_transfer_and_tsig() {
    let mut s = setup();

    // Allowed by address, no key needed.
    let plain = transfer(&request(&s, 2, None)).unwrap();
    assert_complete(&s, &plain);
    assert!(plain.first_tsig().is_none());

    // An address no entry covers: REFUSED.
    let refused = transfer(&request(&s, 4, None)).unwrap();
    assert_eq!(refused.rcode(), ResponseCode::Refused);
    assert!(refused.records().is_empty());

    // The address needs the key: without one, NOTAUTH (and nothing to put a TSIG error in).
    let unsigned = transfer(&request(&s, 3, None)).unwrap();
    assert_eq!(unsigned.rcode(), ResponseCode::NotAuth);
    assert!(unsigned.first_tsig().is_none());

    // With the key: complete, every message signed and chained (checked by `transfer`).
    let signed = transfer(&request(&s, 3, Some(&s.xfr))).unwrap();
    assert_complete(&s, &signed);
    let t = signed.first_tsig().unwrap();
    assert_eq!((t.error, t.mac.len()), (0, 32));

    // A key the server knows but this address may not use: NOTAUTH, BADKEY, unsigned.
    let wrong_key = transfer(&request(&s, 3, Some(&s.other))).unwrap();
    assert_eq!(wrong_key.rcode(), ResponseCode::NotAuth);
    let t = wrong_key.first_tsig().unwrap();
    assert_eq!((t.error, t.mac.len()), (tsig::BADKEY, 0));

    // A key name the server does not know: BADKEY.
    let unknown = KeySpec::new("nobody", 3);
    let r = transfer(&request(&s, 3, Some(&unknown))).unwrap();
    assert_eq!(r.rcode(), ResponseCode::NotAuth);
    assert_eq!(r.first_tsig().unwrap().error, tsig::BADKEY);

    // The right name with a wrong secret: BADSIG, unsigned.
    let forged = KeySpec {
        name: "xfr".into(),
        secret_b64: KeySpec::new("x", 99).secret_b64,
    };
    let r = transfer(&request(&s, 3, Some(&forged))).unwrap();
    assert_eq!(r.rcode(), ResponseCode::NotAuth);
    let t = r.first_tsig().unwrap();
    assert_eq!((t.error, t.mac.len()), (tsig::BADSIG, 0));

    // A stale signature (outside the 300 s fudge): BADTIME, signed with the request MAC,
    // Time Signed echoed, the server's time in Other Data.
    let stale_time = tsig::now() - 1000;
    let mut stale = request(&s, 3, Some(&s.xfr));
    stale.time = Some(stale_time);
    let r = transfer(&stale).unwrap();
    assert_eq!(r.rcode(), ResponseCode::NotAuth);
    let t = r.first_tsig().unwrap();
    assert_eq!((t.error, t.time_signed), (tsig::BADTIME, stale_time));
    assert_eq!(t.other.len(), 6);
    let server_time = t.other.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    assert!(server_time.abs_diff(tsig::now()) < 60);
    // The BADTIME answer is authentic: its MAC checks out against the stale request's MAC.
    let mut request_bytes = query_bytes("lwm2m.org.", RecordType::AXFR);
    let mac = tsig::Signer::request(s.xfr.key()).sign(&mut request_bytes, stale_time);
    let response = exchange_tcp(ip(3), s.server, &request_bytes);
    let mut verifier = Verifier::new(s.xfr.key(), mac);
    assert_eq!(
        verifier.verify(&response, tsig::now()),
        Err(VerifyError::ServerError(tsig::BADTIME))
    );

    // Another zone, even from an allowed address: NOTAUTH (RFC 5936 §2.2.1).
    let mut elsewhere = request(&s, 2, None);
    elsewhere.zone = "example.com.";
    assert_eq!(transfer(&elsewhere).unwrap().rcode(), ResponseCode::NotAuth);

    // Transfers are allow-transfer's business alone: 127.0.0.3 may not query...
    let q = query_udp_from(ip(3), s.server, &name("lwm2m.org."), RecordType::SOA).unwrap();
    assert_eq!(q.metadata.response_code, ResponseCode::Refused);
    // ...and the signed transfer from there worked above.

    // The secrets never reach the log.
    let log = s.bsf.log_text();
    for secret in [&s.xfr.secret_b64, &s.other.secret_b64, &forged.secret_b64] {
        assert!(!log.contains(secret.as_str()));
    }
    assert!(log.contains("error=\"BADSIG\""), "{}", s.bsf.log_tail());
    s.bsf.assert_running();
}

fn query_bytes(zone: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.queries.push(Query::query(name(zone), qtype));
    m.to_vec().unwrap()
}

/// One request, one response message over TCP.
fn exchange_tcp(source: IpAddr, server: SocketAddr, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut framed = (request.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    stream.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut response = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut response).unwrap();
    response
}

#[test]
fn udp_transfers_ixfr_notify_and_allow_query() {
    let mut s = setup();
    let serial = soa_serial(s.server, "lwm2m.org.").unwrap();

    // AXFR and IXFR over UDP: REFUSED, even from an address allowed to transfer.
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let r = query_udp_from(ip(2), s.server, &name("lwm2m.org."), qtype).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{qtype}");
        assert!(r.answers.is_empty());
    }

    // IXFR from an older serial: the whole zone, AXFR-style (RFC 1995 §4).
    let mut ixfr = request(&s, 2, None);
    ixfr.qtype = RecordType::IXFR;
    ixfr.ixfr_serial = Some(serial.wrapping_sub(10));
    assert_complete(&s, &transfer(&ixfr).unwrap());
    // IXFR from the current serial: the SOA alone (the client is up to date).
    ixfr.ixfr_serial = Some(serial);
    let r = transfer(&ixfr).unwrap();
    assert_eq!(r.records().len(), 1);
    assert_eq!(r.records()[0].record_type(), RecordType::SOA);
    // Signed, the same.
    ixfr.source = ip(3);
    ixfr.key = Some(s.xfr.key());
    assert_eq!(transfer(&ixfr).unwrap().records().len(), 1);

    // NOTIFY sent to the primary: NOTIMP (it has no primary of its own).
    let mut notify = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
    notify.metadata.authoritative = true;
    notify
        .queries
        .push(Query::query(name("lwm2m.org."), RecordType::SOA));
    let answer = exchange_udp(ip(1), s.server, &notify.to_vec().unwrap()).unwrap();
    let answer = Message::from_vec(&answer).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NotImp);

    // allow-query: 127.0.0.1 and .2 get answers, others REFUSED, over UDP and TCP alike.
    let bsf = name("bsf.mnc460.mcc313.lwm2m.org.");
    for (source, expected) in [
        (1, ResponseCode::NoError),
        (2, ResponseCode::NoError),
        (5, ResponseCode::Refused),
    ] {
        let r = query_udp_from(ip(source), s.server, &bsf, RecordType::A).unwrap();
        assert_eq!(
            r.metadata.response_code, expected,
            "UDP from 127.0.0.{source}"
        );
        assert_eq!(r.answers.is_empty(), expected == ResponseCode::Refused);
        let tcp = exchange_tcp(
            ip(source),
            s.server,
            &query_bytes("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A),
        );
        let tcp = Message::from_vec(&tcp).unwrap();
        assert_eq!(
            tcp.metadata.response_code, expected,
            "TCP from 127.0.0.{source}"
        );
    }
    s.bsf.assert_running();
}

/// BIND's `dig`, with its own TSIG implementation, accepts the signed transfer and sees the
/// server's TSIG errors.
#[test]
fn dig_verifies_signed_transfers() {
    require_tool("/usr/bin/dig", "bind9-dnsutils");
    let mut s = setup();
    let dig = |key: &KeySpec, source: u8| {
        let output = Command::new("/usr/bin/dig")
            .arg("-b")
            .arg(ip(source).to_string())
            .arg("-p")
            .arg(s.server.port().to_string())
            .arg("@127.0.0.1")
            .args([
                "lwm2m.org.",
                "AXFR",
                "+noall",
                "+answer",
                "+additional",
                "+tries=1",
                "+time=5",
            ])
            .arg("-y")
            .arg(format!("hmac-sha256:{}:{}", key.name, key.secret_b64))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let good = dig(&s.xfr, 3);
    let records = good
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t"))
        .count();
    assert_eq!(records, s.records + 1, "{good}");
    // dig shows the TSIG of every message it verified.
    assert!(
        good.lines()
            .any(|l| l.contains("\tTSIG\t") && l.contains("NOERROR")),
        "{good}"
    );
    assert!(!good.contains("Transfer failed"), "{good}");
    let forged = KeySpec {
        name: "xfr".into(),
        secret_b64: KeySpec::new("x", 42).secret_b64,
    };
    let bad = dig(&forged, 3);
    assert!(bad.contains("BADSIG"), "{bad}");
    let unknown = dig(&KeySpec::new("nobody", 5), 3);
    assert!(unknown.contains("BADKEY"), "{unknown}");
    s.bsf.assert_running();
}
