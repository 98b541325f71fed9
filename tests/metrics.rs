//! The metrics endpoint on a running server: every kind of response counted once, per
//! transport, over real sockets; the zone's gauges against what DNS answers; reloads good and
//! bad; HTTP requests the endpoint must refuse without falling over.

mod common;
#[path = "common/secondaries.rs"]
mod secondaries;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use secondaries::write_atomically;

const HIT: &str = "bsf.mnc460.mcc313.lwm2m.org.";
/// Every `result` label of `bsf_dns_queries_total`.
const RESULTS: [&str; 11] = [
    "answer",
    "nodata",
    "nxdomain",
    "truncated",
    "refused",
    "formerr",
    "notimp",
    "badvers",
    "badcookie",
    "other",
    "dropped",
];

fn template(mcc: &str, mnc: &str, bootstraps: usize) -> String {
    let mut text = format!("mcc = \"{mcc}\"\nmnc = [\"{mnc}\"]\naddresses = [\"192.0.2.1\"]\n");
    for i in 0..bootstraps {
        text.push_str(&format!(
            "[[bootstrap]]\nuri = \"coaps://bootstrap-server-{i}.a-rather-long-operator-domain.example:5684\"\n"
        ));
    }
    text
}

/// The metrics address the server logged (`--metrics 127.0.0.1:0` lets the kernel pick it).
fn metrics_address(server: &Server) -> SocketAddr {
    let log = server.guard.log_text();
    let at = log
        .find("metrics on http://")
        .unwrap_or_else(|| panic!("no metrics line in the log:\n{log}"));
    let rest = &log[at + "metrics on http://".len()..];
    let end = rest.find('/').expect("address ends at the path");
    rest[..end].parse().expect("a socket address")
}

/// One HTTP exchange: the status line, the headers (lower-case names) and the body.
fn http(addr: SocketAddr, request: &[u8]) -> (String, HashMap<String, String>, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(request).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {response:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// Every sample of a scrape, keyed by series (`name{labels}`).
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, headers, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(headers.get("content-length"), Some(&body.len().to_string()));
    let mut samples = HashMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value {line:?}"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "twice: {series}"
        );
    }
    samples
}

fn queries(samples: &HashMap<String, f64>, transport: &str, result: &str) -> f64 {
    let series = format!("bsf_dns_queries_total{{transport=\"{transport}\",result=\"{result}\"}}");
    *samples
        .get(&series)
        .unwrap_or_else(|| panic!("no {series}"))
}

/// Polls the metrics until `check` holds (bounded); returns the last scrape.
fn scrape_until(
    addr: SocketAddr,
    what: &str,
    check: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(addr);
        if check(&samples) {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen in 5 s: {samples:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A UDP exchange that must be answered.
/// A UDP exchange that must be answered. Sent once, never again: a retry of a query whose
/// answer is only late would be counted twice, and loopback does not lose datagrams this
/// test sends one at a time.
fn udp_answer(addr: SocketAddr, query: &[u8]) -> Message {
    let bytes = udp_exchange(addr, query, 10_000).expect("an answer within 10 s");
    Message::from_vec(&bytes).expect("decode")
}

#[test]
fn every_response_is_counted_once_by_transport_and_result() {
    let big = template("262", "01", 12);
    let seed = std::fs::read_to_string(bundled_zones().join("313-460.toml")).expect("seed");
    let (_dir, zones) = temp_zones(&[("313-460.toml", &seed), ("262-01.toml", &big)]);
    let server = Server::start(&zones, None, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_address(&server);
    let before = scrape(metrics);
    let addr = server.addr;

    let mut expected_udp: HashMap<&str, f64> = HashMap::new();
    let mut expect = |result, query: Vec<u8>, check: &dyn Fn(&Message) -> bool| {
        let response = udp_answer(addr, &query);
        assert!(check(&response), "{result}: {response:?}");
        *expected_udp.entry(result).or_default() += 1.0;
    };
    let big_name = "bsf.mnc01.mcc262.lwm2m.org.";
    let rcode = |code: ResponseCode| move |m: &Message| m.metadata.response_code == code;
    for _ in 0..3 {
        expect(
            "answer",
            query_bytes(HIT, RecordType::A, Some(1232)),
            &|m| m.answers.len() == 1,
        );
    }
    for _ in 0..2 {
        expect("nodata", query_bytes(HIT, RecordType::MX, None), &|m| {
            m.answers.is_empty() && m.metadata.response_code == ResponseCode::NoError
        });
    }
    for _ in 0..2 {
        let unknown = query_bytes("bsf.mnc99.mcc262.lwm2m.org.", RecordType::A, None);
        expect("nxdomain", unknown, &rcode(ResponseCode::NXDomain));
    }
    let outside = query_bytes("example.com.", RecordType::A, None);
    expect("refused", outside, &rcode(ResponseCode::Refused));
    // Twelve URIs do not fit 512 octets: TC=1 without EDNS.
    let txt = query_bytes(big_name, RecordType::TXT, None);
    expect("truncated", txt, &|m| m.metadata.truncation);
    let mut status = query_bytes(HIT, RecordType::A, None);
    status[2] |= 2 << 3; // opcode STATUS
    expect("notimp", status, &rcode(ResponseCode::NotImp));
    // The error responses checked by their bytes (hickory reads neither back).
    let mut sent = |result, query: Vec<u8>, check: &dyn Fn(&[u8]) -> bool| {
        let response = udp_exchange(addr, &query, 10_000).expect("a response within 10 s");
        assert!(check(&response), "{result}: {response:02x?}");
        *expected_udp.entry(result).or_default() += 1.0;
    };
    let mut two_questions = query_bytes(HIT, RecordType::A, None);
    two_questions[5] = 2;
    sent("formerr", two_questions, &|r| r[3] & 0xF == 1);
    let mut version_one = query_bytes(HIT, RecordType::A, Some(1232));
    let opt_version = version_one.len() - 11 + 6;
    version_one[opt_version] = 1;
    sent("badvers", version_one, &|r| {
        r[3] & 0xF == 0 && r.len() > 11 && r[r.len() - 11 + 5] == 1
    });
    // A query with no question asking for a cookie, with a server cookie that is not ours:
    // BADCOOKIE (23: 7 in the header, 1 in OPT, followed by our 28-byte COOKIE option).
    let mut bad_cookie = vec![
        0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 41, 4, 0xd0, 0, 0, 0, 0,
    ];
    bad_cookie.extend_from_slice(&[0, 20, 0, 10, 0, 16]);
    bad_cookie.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 0, 0, 0, 0]);
    sent("badcookie", bad_cookie, &|r| {
        r[3] & 0xF == 7 && r.len() == 12 + 11 + 28 && r[12 + 5] == 1
    });

    // Two packets that get no response: a response, and a packet shorter than a header. One
    // worker answers in order, so once the query sent after them is answered, they were seen.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut response = query_bytes(HIT, RecordType::A, None);
    response[2] |= 0x80;
    socket.send_to(&response, addr).expect("send");
    socket.send_to(&[1, 2, 3], addr).expect("send");
    sent("answer", query_bytes(HIT, RecordType::AAAA, None), &|r| {
        r[3] & 0xF == 0 && r[7] == 1
    });
    *expected_udp.entry("dropped").or_default() += 2.0;

    let mut tcp = tcp_connect(addr);
    for (name, rtype) in [(HIT, RecordType::A), (HIT, RecordType::TXT)] {
        tcp_send(&mut tcp, &query_bytes(name, rtype, None));
        let m = Message::from_vec(&tcp_recv(&mut tcp).expect("TCP answer")).expect("decode");
        assert_eq!(m.answers.len(), 1);
    }
    // Over TCP the twelve URIs fit: an answer, not a truncation.
    tcp_send(&mut tcp, &query_bytes(big_name, RecordType::TXT, None));
    let m = Message::from_vec(&tcp_recv(&mut tcp).expect("TCP answer")).expect("decode");
    assert_eq!(m.answers.len(), 12);
    tcp_send(
        &mut tcp,
        &query_bytes("bsf.mnc98.mcc262.lwm2m.org.", RecordType::A, None),
    );
    tcp_recv(&mut tcp).expect("TCP NXDOMAIN");
    let expected_tcp: HashMap<&str, f64> = [("answer", 3.0), ("nxdomain", 1.0)].into();
    // The connection is open while it is: the gauge reads one, and zero once it is closed.
    assert_eq!(scrape(metrics)["bsf_dns_tcp_connections_open"], 1.0);
    drop(tcp);

    let udp_total: f64 = expected_udp.values().sum();
    let after = scrape_until(metrics, "all counted", |s| {
        let seen = |t: &str| -> f64 {
            RESULTS
                .iter()
                .map(|r| queries(s, t, r) - queries(&before, t, r))
                .sum()
        };
        seen("udp") >= udp_total
            && seen("tcp") >= 4.0
            && s.get("bsf_dns_tcp_connections_open") == Some(&0.0)
    });
    for result in RESULTS {
        let delta = |t| queries(&after, t, result) - queries(&before, t, result);
        let want_udp = expected_udp.get(result).copied().unwrap_or(0.0);
        let want_tcp = expected_tcp.get(result).copied().unwrap_or(0.0);
        assert_eq!(delta("udp"), want_udp, "udp {result}");
        assert_eq!(delta("tcp"), want_tcp, "tcp {result}");
    }
    let accepted = "bsf_dns_tcp_connections_accepted_total";
    assert_eq!(after[accepted] - before[accepted], 1.0);
    assert_eq!(after["bsf_dns_tcp_connections_over_limit_total"], 0.0);

    // The zone's gauges, against DNS and the start-up log line.
    assert_eq!(after["bsf_dns_zone_serial"], f64::from(server.serial()));
    assert_eq!(after["bsf_dns_zone_operators"], 2.0);
    let log = server.guard.log_text();
    let records: f64 = log
        .split("records=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("records= in the serving line");
    assert_eq!(after["bsf_dns_zone_records"], records);
    assert!(after["bsf_dns_zone_names"] >= 6.0, "{after:?}");
    assert_eq!(after["bsf_dns_reload_last_good"], 1.0);
    let version = format!(
        "bsf_dns_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(after[&version], 1.0);
    let started = after["bsf_dns_start_time_seconds"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        started <= now && started > now - 120.0,
        "{started} vs {now}"
    );
}

#[test]
fn reloads_are_counted_and_a_bad_set_shows() {
    let seed = std::fs::read_to_string(bundled_zones().join("313-460.toml")).expect("seed");
    let (_dir, zones) = temp_zones(&[("313-460.toml", &seed)]);
    let server = Server::start(&zones, None, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_address(&server);
    let first = scrape(metrics);
    let serial_before = server.serial();
    assert_eq!(first["bsf_dns_zone_serial"], f64::from(serial_before));
    for outcome in ["applied", "unchanged", "rejected"] {
        assert_eq!(
            first[&format!("bsf_dns_reloads_total{{outcome=\"{outcome}\"}}")],
            0.0
        );
    }
    assert_eq!(first["bsf_dns_reload_last_good"], 1.0);
    // Nothing kept for IXFR yet: transfers start from the served serial.
    assert_eq!(first["bsf_dns_journal_versions"], 0.0);
    assert_eq!(
        first["bsf_dns_journal_oldest_serial"],
        f64::from(serial_before)
    );
    // The start-up load read a good set.
    let read_at = first["bsf_dns_reload_last_good_timestamp_seconds"];
    assert!(read_at >= first["bsf_dns_start_time_seconds"], "{first:?}");

    // A broken file: rejected, the old zone still served, and the metrics say so.
    write_atomically(&zones.join("262-01.toml"), "mcc = \"262\"\nmnc = [\"01\"\n");
    let bad = scrape_until(metrics, "rejection", |s| {
        s["bsf_dns_reloads_total{outcome=\"rejected\"}"] == 1.0
    });
    assert_eq!(bad["bsf_dns_reload_last_good"], 0.0);
    assert_eq!(bad["bsf_dns_zone_serial"], f64::from(serial_before));
    assert_eq!(bad["bsf_dns_zone_operators"], 1.0);
    assert_eq!(server.serial(), serial_before);

    // Mended: applied, and the gauges follow the new zone.
    write_atomically(&zones.join("262-01.toml"), &template("262", "01", 1));
    let good = scrape_until(metrics, "applied", |s| {
        s["bsf_dns_reloads_total{outcome=\"applied\"}"] == 1.0
    });
    assert_eq!(good["bsf_dns_reload_last_good"], 1.0);
    assert_eq!(good["bsf_dns_zone_operators"], 2.0);
    let serial_after = server.serial();
    assert!(serial_after > serial_before);
    assert_eq!(good["bsf_dns_zone_serial"], f64::from(serial_after));
    assert!(good["bsf_dns_reload_last_good_timestamp_seconds"] >= read_at);
    assert_eq!(
        bad["bsf_dns_reload_last_good_timestamp_seconds"], read_at,
        "a rejected reload read no good set"
    );
    assert!(good["bsf_dns_zone_records"] > first["bsf_dns_zone_records"]);
    // The replaced version is kept: a secondary at the old serial can take the difference.
    assert_eq!(good["bsf_dns_journal_versions"], 1.0);
    assert_eq!(
        good["bsf_dns_journal_oldest_serial"],
        f64::from(serial_before)
    );
    let took = good["bsf_dns_reload_last_duration_seconds"];
    assert!(took > 0.0 && took < 5.0, "{took}");

    // SIGHUP over the same files: unchanged.
    server.guard.signal(libc::SIGHUP);
    scrape_until(metrics, "unchanged", |s| {
        s["bsf_dns_reloads_total{outcome=\"unchanged\"}"] == 1.0
    });
}

#[test]
fn the_endpoint_refuses_what_it_does_not_serve_and_keeps_serving() {
    let server = Server::start(&bundled_zones(), None, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_address(&server);
    let cases: [(&[u8], &str); 5] = [
        (b"GET /nothing HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (b"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET /metrics FTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"),
    ];
    for (request, want) in cases {
        let (status, _, _) = http(metrics, request);
        assert_eq!(status, want, "{}", String::from_utf8_lossy(request));
    }
    // A head that never ends is cut off, not buffered without bound.
    let mut endless = b"GET /metrics HTTP/1.1\r\n".to_vec();
    endless.extend(std::iter::repeat_n(b'x', 20_000));
    let mut stream = TcpStream::connect(metrics).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = stream.write_all(&endless);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(
        reply.starts_with(b"HTTP/1.1 400 Bad Request"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // HEAD: the headers of the scrape, no body.
    let (status, headers, body) = http(metrics, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.is_empty());
    assert!(headers["content-length"].parse::<usize>().expect("length") > 1000);
    // Still serving both.
    scrape(metrics);
    assert_eq!(
        server.ask(HIT, RecordType::A).metadata.response_code,
        ResponseCode::NoError
    );
}

#[test]
fn a_taken_metrics_port_stops_start_up_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let expected = format!("cannot listen on 127.0.0.1:{port} (metrics, HTTP)");
    // The DNS port is probed free; should another process take it first, try another.
    for _ in 0..5 {
        let output = std::process::Command::new(BIN)
            .args(["serve", "--zones"])
            .arg(bundled_zones())
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--metrics", &format!("127.0.0.1:{port}")])
            .output()
            .expect("run");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("(UDP)") || stderr.contains("(TCP)") {
            continue;
        }
        assert!(
            stderr.contains(&expected) && stderr.contains("pick another with --metrics"),
            "{stderr}"
        );
        return;
    }
    panic!("five DNS ports taken before bsf-dns could bind them");
}

/// Answers the first NOTIFY for a serial newer than `newer_than` that reaches `secondary`
/// with `rcode` (as a secondary would) and returns that serial. A repeat of an earlier round's
/// NOTIFY (sent again when the test was slow to answer it) is acknowledged and passed over.
fn answer_notify(secondary: &UdpSocket, rcode: u8, newer_than: u32) -> u32 {
    secondary
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        let (len, from) = secondary.recv_from(&mut buf).expect("a NOTIFY within 10 s");
        let notify = Message::from_vec(&buf[..len]).expect("decode NOTIFY");
        assert_eq!(notify.metadata.op_code, hickory_proto::op::OpCode::Notify);
        let serial = match notify.answers.first().map(|r| &r.data) {
            Some(RData::SOA(soa)) => soa.serial,
            other => panic!("NOTIFY without the SOA: {other:?}"),
        };
        // Header and question of the NOTIFY, as a response: QR, opcode 4, AA, the rcode.
        let question_end = 12 + buf[12..len].iter().position(|&b| b == 0).expect("name") + 1 + 4;
        let mut reply = buf[..question_end].to_vec();
        reply[2] = 0x80 | (4 << 3) | 0x04;
        reply[3] = if serial > newer_than { rcode } else { 0 };
        reply[6..12].fill(0);
        secondary.send_to(&reply, from).expect("reply");
        if serial > newer_than {
            return serial;
        }
    }
    panic!("no NOTIFY for a serial above {newer_than} in 20 messages");
}

#[test]
fn transfers_and_notify_rounds_are_counted_by_outcome() {
    let secondary = UdpSocket::bind("127.0.0.1:0").expect("bind the secondary");
    let seed = std::fs::read_to_string(bundled_zones().join("313-460.toml")).expect("seed");
    let (dir, zones) = temp_zones(&[("313-460.toml", &seed)]);
    let config = dir.path().join("settings.toml");
    let notify_to = secondary.local_addr().expect("addr");
    std::fs::write(
        &config,
        format!("notify = [\"{notify_to}\"]\n[access]\nallow-transfer = [\"127.0.0.1\"]\n"),
    )
    .expect("settings");
    let server = Server::start(&zones, Some(&config), &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_address(&server);
    let transfers = |s: &HashMap<String, f64>, result: &str| {
        s[&format!("bsf_dns_transfers_total{{result=\"{result}\"}}")]
    };
    let notifies = |s: &HashMap<String, f64>, result: &str| {
        s[&format!("bsf_dns_notify_total{{result=\"{result}\"}}")]
    };

    // The start-up round, acknowledged.
    let first_serial = answer_notify(&secondary, 0, 0);
    assert_eq!(first_serial, server.serial());
    let s = scrape_until(metrics, "NOTIFY acknowledged", |s| {
        notifies(s, "acknowledged") == 1.0
    });
    assert_eq!(notifies(&s, "refused"), 0.0);

    // AXFR from an allowed address, from another one, and IXFR at the served serial.
    let mut axfr = secondaries::TransferRequest::axfr(server.addr);
    let full = secondaries::transfer(&axfr).expect("AXFR");
    assert_eq!(full.rcode(), ResponseCode::NoError);
    assert!(full.records().len() > 5);
    axfr.source = std::net::IpAddr::from([127, 0, 0, 2]);
    let refused = secondaries::transfer(&axfr).expect("refused AXFR");
    assert_eq!(refused.rcode(), ResponseCode::Refused);
    let mut ixfr = secondaries::TransferRequest::axfr(server.addr);
    ixfr.qtype = RecordType::IXFR;
    ixfr.ixfr_serial = Some(first_serial);
    let current = secondaries::transfer(&ixfr).expect("IXFR");
    assert_eq!(current.records().len(), 1, "the SOA alone");
    let s = scrape_until(metrics, "transfers", |s| transfers(s, "up_to_date") == 1.0);
    assert_eq!(transfers(&s, "full"), 1.0);
    assert_eq!(transfers(&s, "refused"), 1.0);
    assert_eq!(transfers(&s, "failed"), 0.0);

    // A new serial: the next round, refused by the secondary.
    write_atomically(&zones.join("262-01.toml"), &template("262", "01", 1));
    let second_serial = answer_notify(&secondary, 5, first_serial);
    assert!(second_serial > first_serial);
    let s = scrape_until(metrics, "NOTIFY refused", |s| notifies(s, "refused") == 1.0);
    assert_eq!(notifies(&s, "acknowledged"), 1.0);
    assert_eq!(notifies(&s, "unanswered"), 0.0);

    // IXFR from the first serial, which the journal keeps: the change alone.
    let changes = secondaries::transfer(&ixfr).expect("IXFR");
    let soas = changes
        .records()
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .count();
    assert_eq!(soas, 4, "an incremental answer");
    let s = scrape_until(metrics, "incremental", |s| {
        transfers(s, "incremental") == 1.0
    });
    assert_eq!(transfers(&s, "full"), 1.0);
    assert_eq!(transfers(&s, "up_to_date"), 1.0);
}

#[test]
fn counts_add_up_across_workers_under_load() {
    let seed = std::fs::read_to_string(bundled_zones().join("313-460.toml")).expect("seed");
    let (_dir, zones) = temp_zones(&[("313-460.toml", &seed)]);
    let server = Server::start(
        &zones,
        None,
        &["--threads", "2", "--metrics", "127.0.0.1:0"],
    );
    let metrics = metrics_address(&server);
    let before = scrape(metrics);
    const CLIENTS: usize = 4;
    const QUERIES: usize = 5_000;
    const WINDOW: usize = 32;
    // Each client its own socket (so SO_REUSEPORT spreads them over both workers), a window
    // of queries in flight, every response's RCODE tallied.
    let tallies: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                scope.spawn(move || {
                    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
                    // Every answer is waited for: loopback loses none with 32 in flight (far
                    // under the server's receive buffer), and stopping early would leave
                    // answers the server has counted on their way.
                    socket
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    let known = query_bytes(HIT, RecordType::A, Some(1232));
                    let unknown = query_bytes("bsf.mnc99.mcc262.lwm2m.org.", RecordType::A, None);
                    let (mut sent, mut received) = (0, 0);
                    let (mut noerror, mut nxdomain) = (0u64, 0u64);
                    let mut buf = [0u8; 1500];
                    while received < QUERIES {
                        while sent < QUERIES && sent - received < WINDOW {
                            let query = if (sent + client) % 3 == 0 {
                                &unknown
                            } else {
                                &known
                            };
                            socket.send_to(query, server.addr).expect("send");
                            sent += 1;
                        }
                        let len = socket
                            .recv(&mut buf)
                            .unwrap_or_else(|e| panic!("answer {received} of {QUERIES}: {e}"));
                        assert!(len >= 12, "short response");
                        received += 1;
                        match buf[3] & 0xF {
                            0 => noerror += 1,
                            3 => nxdomain += 1,
                            other => panic!("rcode {other}"),
                        }
                    }
                    (noerror, nxdomain)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let noerror: u64 = tallies.iter().map(|t| t.0).sum();
    let nxdomain: u64 = tallies.iter().map(|t| t.1).sum();
    assert_eq!(
        noerror + nxdomain,
        (CLIENTS * QUERIES) as u64,
        "{tallies:?}"
    );
    let after = scrape(metrics);
    let delta = |result| queries(&after, "udp", result) - queries(&before, "udp", result);
    assert_eq!(delta("answer"), noerror as f64);
    assert_eq!(delta("nxdomain"), nxdomain as f64);
    for result in RESULTS
        .iter()
        .filter(|r| !["answer", "nxdomain"].contains(r))
    {
        assert_eq!(delta(result), 0.0, "{result}");
    }
}
