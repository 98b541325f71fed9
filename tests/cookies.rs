//! DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018), on real sockets: what
//! a resolver that sends cookies (BIND, Unbound) gets back, field by field, over UDP and TCP;
//! the `require` policy; a secret rolled over; cookies switched off; and the point of RFC 9018:
//! bsf-dns and Knot DNS sharing a secret accept each other's cookies, as servers behind one
//! anycast address must.

mod common;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bsf_dns::wire::cookie::mint;
use bsf_dns::wire::query::skip_name;
use common::*;

const SEED: &str = SEED_TEMPLATE;

/// RFC 9018 Appendix A's secrets.
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
const OLD_SECRET: &str = "dd3bdf9344b678b185a6f5cb60fca715";
const CLIENT_COOKIE: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
const NAME: &str = "BsF.mnc460.MCC313.lwm2m.org";
const A: u16 = 1;
const IN: u16 = 1;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn start(settings: &str) -> (tempfile::TempDir, Server) {
    start_with(&[("313-460.toml", SEED)], Some(settings), &[])
}

fn secret(hex: &str) -> [u8; 16] {
    let bytes: Vec<u8> = (0..32)
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// An OPT RDATA holding one COOKIE option with this data.
fn cookie_option(data: &[u8]) -> Vec<u8> {
    [&[0u8, 10][..], &(data.len() as u16).to_be_bytes(), data].concat()
}

/// An A query for `NAME` with this COOKIE data (EDNS payload 1232).
fn query_with_cookie(id: u16, data: &[u8]) -> Vec<u8> {
    raw_query(id, NAME, A, IN, Some((1232, &cookie_option(data))))
}

/// A query with no question, only an OPT record with this COOKIE data (RFC 7873 §5.4).
fn cookie_only_query(id: u16, data: &[u8]) -> Vec<u8> {
    let options = cookie_option(data);
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    q.extend_from_slice(&(options.len() as u16).to_be_bytes());
    q.extend_from_slice(&options);
    q
}

/// A response read byte by byte: header fields, the full RCODE (header and OPT), and the OPT
/// record's options.
#[derive(Debug)]
struct Response {
    id: u16,
    flags: u16,
    counts: [u16; 4],
    rcode: u16,
    /// The question section as sent back.
    question: Vec<u8>,
    options: Vec<(u16, Vec<u8>)>,
    has_opt: bool,
}

fn read(bytes: &[u8]) -> Response {
    let word = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    let counts = [word(4), word(6), word(8), word(10)];
    let mut pos = 12;
    for _ in 0..counts[0] {
        pos = skip_name(bytes, pos).expect("a question name") + 4;
    }
    let question = bytes[12..pos].to_vec();
    let (mut rcode, mut options, mut has_opt) = (word(2) & 0xF, Vec::new(), false);
    for _ in 0..counts[1] + counts[2] + counts[3] {
        let owner = pos;
        pos = skip_name(bytes, pos).expect("an owner name");
        let (rtype, rdlength) = (word(pos), word(pos + 8) as usize);
        let rdata = pos + 10;
        if rtype == 41 {
            assert_eq!(bytes[owner], 0, "OPT owned by the root");
            has_opt = true;
            rcode |= (bytes[pos + 4] as u16) << 4;
            let mut at = rdata;
            while at < rdata + rdlength {
                let (code, len) = (word(at), word(at + 2) as usize);
                options.push((code, bytes[at + 4..at + 4 + len].to_vec()));
                at += 4 + len;
            }
            assert_eq!(at, rdata + rdlength, "options fill the OPT RDATA");
        }
        pos = rdata + rdlength;
    }
    assert_eq!(pos, bytes.len(), "nothing after the last record");
    Response {
        id: word(0),
        flags: word(2),
        counts,
        rcode,
        question,
        options,
        has_opt,
    }
}

impl Response {
    /// The COOKIE option's data, checked to be there exactly once.
    fn cookie(&self) -> Vec<u8> {
        let cookies: Vec<_> = self.options.iter().filter(|(c, _)| *c == 10).collect();
        assert_eq!(cookies.len(), 1, "one COOKIE option in {self:?}");
        cookies[0].1.clone()
    }

    fn has_cookie(&self) -> bool {
        self.options.iter().any(|(c, _)| *c == 10)
    }
}

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// Checks a reply cookie: our client cookie, then an RFC 9018 server cookie minted under
/// `key` for 127.0.0.1 within the last few seconds. Returns it.
fn assert_minted(reply: &[u8], key: &str) -> Vec<u8> {
    assert_eq!(
        reply.len(),
        24,
        "client cookie and a 16-byte server cookie: {reply:02x?}"
    );
    assert_eq!(reply[..8], CLIENT_COOKIE, "the client cookie echoed");
    assert_eq!(reply[8..12], [1, 0, 0, 0], "version 1, reserved zero");
    let stamp = u32::from_be_bytes([reply[12], reply[13], reply[14], reply[15]]);
    let now = now();
    assert!(
        stamp <= now && now - stamp <= 5,
        "timestamp {stamp}, now {now}"
    );
    let expected = mint(&secret(key), &CLIENT_COOKIE, LOCALHOST, stamp);
    assert_eq!(
        reply[8..],
        expected,
        "SipHash-2-4 under the configured secret"
    );
    reply.to_vec()
}

const ANSWERED: u16 = 0x8400; // QR, AA, opcode QUERY, RCODE 0

#[test]
fn cookies_are_answered_field_by_field_over_udp_and_tcp() {
    let (_dir, server) = start(&format!("[server]\ncookie-secret = \"0x{SECRET}\"\n"));
    let query = query_with_cookie(0x4242, &CLIENT_COOKIE);
    for (transport, bytes) in [
        ("udp", udp_answer(server.addr, &query)),
        ("tcp", tcp_answer(server.addr, &query)),
    ] {
        let r = read(&bytes);
        assert_eq!(r.id, 0x4242, "{transport}");
        assert_eq!(r.flags & 0xFF8F, ANSWERED, "{transport}: {:04x}", r.flags);
        assert_eq!(r.rcode, 0, "{transport}");
        assert_eq!(r.counts, [1, 1, 0, 1], "{transport}");
        assert_eq!(
            r.question,
            query[12..12 + r.question.len()],
            "{transport}: case kept"
        );
        assert_minted(&r.cookie(), SECRET);
    }

    // The server cookie brought back: still answered, with a cookie minted now.
    let first = read(&udp_answer(server.addr, &query)).cookie();
    let again = read(&udp_answer(server.addr, &query_with_cookie(7, &first)));
    assert_eq!((again.rcode, again.counts[1]), (0, 1));
    assert_minted(&again.cookie(), SECRET);

    // A query that only asks for a cookie (no question): NOERROR with a client cookie alone
    // or a valid server cookie, BADCOOKIE with one that is not ours; never an answer.
    for (data, rcode) in [
        (CLIENT_COOKIE.to_vec(), 0),
        (first.clone(), 0),
        (
            [
                &CLIENT_COOKIE[..],
                &[1, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9],
            ]
            .concat(),
            23,
        ),
        ([&CLIENT_COOKIE[..], &[0xAB; 8]].concat(), 23),
    ] {
        let r = read(&udp_answer(server.addr, &cookie_only_query(9, &data)));
        assert_eq!(r.rcode, rcode, "{data:02x?}");
        assert_eq!((r.counts, r.question.len()), ([0, 0, 0, 1], 0));
        assert_eq!(r.flags & 0x8400, 0x8000, "QR set, AA clear");
        assert_minted(&r.cookie(), SECRET);
    }
    // Someone else's cookie from another address is not valid here: the hash covers the
    // client's address. (A cookie minted for 127.0.0.2 under our own secret.)
    let elsewhere = mint(
        &secret(SECRET),
        &CLIENT_COOKIE,
        "127.0.0.2".parse().unwrap(),
        now(),
    );
    let data = [&CLIENT_COOKIE[..], &elsewhere].concat();
    assert_eq!(
        read(&udp_answer(server.addr, &cookie_only_query(10, &data))).rcode,
        23
    );

    // Malformed lengths (RFC 7873 §5.2.2): FORMERR, with OPT and without a cookie.
    for len in [7, 9, 15, 41] {
        let r = read(&udp_answer(
            server.addr,
            &query_with_cookie(11, &vec![0x55; len]),
        ));
        assert_eq!(r.rcode, 1, "length {len}");
        assert!(r.has_opt && !r.has_cookie(), "length {len}: {r:?}");
        assert_eq!(r.counts[0], 1, "the question echoed");
    }
    // Queries without a cookie are answered as ever, with no cookie.
    let plain = read(&udp_answer(
        server.addr,
        &raw_query(12, NAME, A, IN, Some((1232, &[]))),
    ));
    assert_eq!((plain.rcode, plain.counts), (0, [1, 1, 0, 1]));
    assert!(plain.options.is_empty());
    let classic = read(&udp_answer(server.addr, &raw_query(13, NAME, A, IN, None)));
    assert_eq!((classic.counts, classic.has_opt), ([1, 1, 0, 0], false));
}

#[test]
fn required_cookies_turn_udp_queries_without_one_away() {
    let (_dir, server) = start(&format!(
        "[server]\ncookies = \"require\"\ncookie-secret = \"{SECRET}\"\n"
    ));
    // A client cookie alone over UDP: BADCOOKIE, the question echoed, no answer, and a
    // server cookie to come back with (RFC 7873 §5.2.3).
    let query = query_with_cookie(21, &CLIENT_COOKIE);
    let turned = read(&udp_answer(server.addr, &query));
    assert_eq!(turned.rcode, 23);
    assert_eq!(turned.counts, [1, 0, 0, 1]);
    assert_eq!(turned.question, query[12..12 + turned.question.len()]);
    assert_eq!(turned.flags & 0x8400, 0x8000, "QR set, AA clear");
    let cookie = assert_minted(&turned.cookie(), SECRET);
    // Back with it: answered.
    let answered = read(&udp_answer(server.addr, &query_with_cookie(22, &cookie)));
    assert_eq!((answered.rcode, answered.counts), (0, [1, 1, 0, 1]));
    assert_minted(&answered.cookie(), SECRET);
    // Over TCP the source address is proven: answered without a server cookie.
    let over_tcp = read(&tcp_answer(server.addr, &query));
    assert_eq!((over_tcp.rcode, over_tcp.counts[1]), (0, 1));
    // A client without cookies is never turned away.
    let plain = read(&udp_answer(
        server.addr,
        &raw_query(23, NAME, A, IN, Some((1232, &[]))),
    ));
    assert_eq!((plain.rcode, plain.counts[1]), (0, 1));
    // An expired cookie (minted two hours ago under the right secret) is turned away.
    let old = mint(&secret(SECRET), &CLIENT_COOKIE, LOCALHOST, now() - 7200);
    let stale = read(&udp_answer(
        server.addr,
        &query_with_cookie(24, &[&CLIENT_COOKIE[..], &old].concat()),
    ));
    assert_eq!((stale.rcode, stale.counts[1]), (23, 0));
}

#[test]
fn a_rolled_secret_still_accepts_the_old_ones_cookies() {
    let (_dir, server) = start(&format!(
        "[server]\ncookies = \"require\"\ncookie-secret = [\"{SECRET}\", \"0x{OLD_SECRET}\"]\n"
    ));
    let by_old = mint(&secret(OLD_SECRET), &CLIENT_COOKIE, LOCALHOST, now());
    let r = read(&udp_answer(
        server.addr,
        &query_with_cookie(31, &[&CLIENT_COOKIE[..], &by_old].concat()),
    ));
    assert_eq!((r.rcode, r.counts[1]), (0, 1), "accepted");
    assert_minted(&r.cookie(), SECRET);
}

#[test]
fn switched_off_cookies_are_ignored() {
    let (_dir, server) = start("[server]\ncookies = \"off\"\n");
    let r = read(&udp_answer(
        server.addr,
        &query_with_cookie(41, &CLIENT_COOKIE),
    ));
    assert_eq!((r.rcode, r.counts), (0, [1, 1, 0, 1]));
    assert!(r.options.is_empty(), "{r:?}");
    // Not even a malformed one is looked at, and a question is needed.
    let r = read(&udp_answer(server.addr, &query_with_cookie(42, &[1; 9])));
    assert_eq!(r.rcode, 0);
    let r = read(&udp_answer(
        server.addr,
        &cookie_only_query(43, &CLIENT_COOKIE),
    ));
    assert_eq!(r.rcode, 1);
}

/// dig sends a cookie by default and says whether the server cookie it got back was good.
#[test]
fn dig_gets_a_good_cookie() {
    let (_dir, server) = start("[server]\n");
    let out = dig(server.port, &["+cookie", "+norec", NAME, "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("no cookie in {out}"));
    assert!(line.ends_with("(good)"), "{line}");

    // Where cookies are required, dig is turned away once, takes the cookie and gets its
    // answer (as a BIND resolver does).
    let (_dir, strict) = start("[server]\ncookies = \"require\"\n");
    let out = dig(strict.port, &["+cookie", "+norec", NAME, "A"]);
    assert!(out.contains("BADCOOKIE, retrying"), "{out}");
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("192.0.2.10"), "{out}");
}

/// Knot DNS with `mod-cookies` and the same secret as bsf-dns, both requiring cookies: each
/// accepts the other's server cookie, and neither accepts one made under another secret.
#[test]
fn knot_and_bsf_dns_accept_each_others_cookies() {
    assert!(
        std::path::Path::new("/usr/sbin/knotd").exists(),
        "knotd is missing: install the Debian package `knot`"
    );
    let (_dir, bsf) = start(&format!(
        "[server]\ncookies = \"require\"\ncookie-secret = \"{SECRET}\"\n"
    ));
    let (_other_dir, other) = start(&format!(
        "[server]\ncookies = \"require\"\ncookie-secret = \"{OLD_SECRET}\"\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let (_knot, knot) = start_knot_with_cookies(dir.path(), SECRET);

    // Each turns a client cookie alone away, with its own server cookie.
    let knot_turned = read(&udp_answer(knot, &query_with_cookie(51, &CLIENT_COOKIE)));
    assert_eq!(
        knot_turned.rcode, 23,
        "Knot requires cookies: {knot_turned:?}"
    );
    let from_knot = knot_turned.cookie();
    assert_minted(&from_knot, SECRET);
    let from_bsf = read(&udp_answer(
        bsf.addr,
        &query_with_cookie(52, &CLIENT_COOKIE),
    ))
    .cookie();
    let from_other = read(&udp_answer(
        other.addr,
        &query_with_cookie(53, &CLIENT_COOKIE),
    ))
    .cookie();
    assert_minted(&from_other, OLD_SECRET);

    let rcode_at = |server: SocketAddr, cookie: &[u8]| {
        read(&udp_answer(server, &query_with_cookie(54, cookie))).rcode
    };
    assert_eq!(
        rcode_at(bsf.addr, &from_knot),
        0,
        "bsf-dns accepts Knot's cookie"
    );
    assert_eq!(
        rcode_at(knot, &from_bsf),
        0,
        "Knot accepts bsf-dns's cookie"
    );
    assert_eq!(
        rcode_at(knot, &from_other),
        23,
        "another secret's cookie is not Knot's"
    );
    assert_eq!(rcode_at(bsf.addr, &from_other), 23, "nor bsf-dns's");
}

/// Knot on a free port of 127.0.0.1 serving a small lwm2m.org zone, with `mod-cookies`
/// under `secret`; waits until it answers.
fn start_knot_with_cookies(dir: &std::path::Path, secret: &str) -> (Guard, SocketAddr) {
    std::fs::write(
        dir.join("lwm2m.org.zone"),
        "$ORIGIN lwm2m.org.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ 3600 IN NS ns1\n\
         ns1 3600 IN A 192.0.2.1\nbsf.mnc460.mcc313 300 IN A 192.0.2.10\n",
    )
    .unwrap();
    on_free_port(|port| {
        let mut conf = String::new();
        let _ = write!(
            conf,
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
             database:\n    storage: \"{d}/db\"\n\
             mod-cookies:\n  - id: shared\n    secret: 0x{secret}\n\
             template:\n  - id: default\n    global-module: mod-cookies/shared\n\
             zone:\n  - domain: lwm2m.org\n    file: \"{d}/lwm2m.org.zone\"\n\
             log:\n  - target: stderr\n    any: info\n",
            d = dir.display()
        );
        let conf_path = dir.join("knot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut command = std::process::Command::new("/usr/sbin/knotd");
        command.arg("-c").arg(&conf_path);
        let mut guard = spawn_logged("knotd", &mut command, dir.join(format!("knotd-{port}.log")));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let soa = raw_query(1, "lwm2m.org", 6, IN, None);
        for _ in 0..100 {
            if udp_exchange(addr, &soa, 100).is_some() {
                return Ok((guard, addr));
            }
            if let Ok(Some(status)) = guard.child.try_wait() {
                return Err(format!("knotd exited ({status}):\n{}", guard.log_text()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = guard.log_text();
        guard.terminate();
        Err(format!("knotd did not answer within 5 s:\n{log}"))
    })
}

/// Twelve bootstrap URIs: TXT, SRV and URI answers of several hundred bytes, around the
/// sizes clients take.
fn many_uris() -> String {
    let mut text = String::from("mcc = \"001\"\nmnc = [\"01\"]\naddresses = [\"192.0.2.1\"]\n");
    for i in 0..12 {
        let _ = write!(
            text,
            "[[bootstrap]]\nuri = \"coaps://bootstrap-{i}.a-long-operator-name.example:5684\"\n"
        );
    }
    text
}

/// The cookie is part of the answer's size: every response fits the client's UDP size with
/// it (TC or trimmed additional records where the answer alone would have fitted), and
/// carries it; the NSID (asked for too) comes only where room is left.
#[test]
fn answers_leave_room_for_the_cookie() {
    let many = many_uris();
    let nsid = "n".repeat(100);
    let (_dir, server) = start_with(
        &[("313-460.toml", SEED), ("001-01.toml", &many)],
        Some(&format!(
            "[server]\nnsid = \"{nsid}\"\ncookie-secret = \"{SECRET}\"\n"
        )),
        &[],
    );
    let options = [cookie_option(&CLIENT_COOKIE), vec![0, 3, 0, 0]].concat();
    let mut truncated = 0;
    for payload in (512..=1232).step_by(40) {
        for (name, qtype) in [
            ("bsf.mnc01.mcc001.lwm2m.org", 16),
            ("_coaps._udp.bsf.mnc01.mcc001.lwm2m.org", 33),
            ("_coaps._udp.bsf.mnc01.mcc001.lwm2m.org", 256),
            ("bsf.mnc01.mcc001.lwm2m.org", A),
            ("bsf.mnc99.mcc001.lwm2m.org", A),
        ] {
            let query = raw_query(61, name, qtype, IN, Some((payload, &options)));
            let bytes = udp_answer(server.addr, &query);
            let r = read(&bytes);
            let what = format!("{name} type {qtype} at {payload}: {} bytes", bytes.len());
            assert!(bytes.len() <= payload as usize, "{what}");
            assert_minted(&r.cookie(), SECRET);
            if r.flags & 0x0200 != 0 {
                truncated += 1;
                assert_eq!(r.counts[1], 0, "{what}: TC with no answer");
            }
        }
    }
    assert!(truncated > 0, "some answers only fit over TCP");
}

/// Rolling a shared secret over (RFC 9018 §5) takes settings changes on every server of the
/// set, so a reload applies them, without a restart and without a new serial: first the new
/// secret beside the old (cookies of both accepted, the new one minted), then the new alone.
#[test]
fn a_reload_rolls_the_secret_over() {
    let settings = |text: &str| format!("[server]\ncookies = \"require\"\n{text}");
    let (dir, server) = start(&settings(&format!("cookie-secret = \"{OLD_SECRET}\"\n")));
    let serial = server.serial();
    let by_old = [
        &CLIENT_COOKIE[..],
        &mint(&secret(OLD_SECRET), &CLIENT_COOKIE, LOCALHOST, now()),
    ]
    .concat();
    let rcode_of = |cookie: &[u8]| read(&udp_answer(server.addr, &query_with_cookie(71, cookie)));
    assert_eq!(rcode_of(&by_old).rcode, 0);

    let path = dir.path().join("settings.toml");
    let rewrite = |text: String| {
        let staged = dir.path().join("settings.toml.new");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &path).unwrap();
    };
    // Polls (5 s at most) until a reply cookie is minted under `key`.
    let minted_under = |key: &str| {
        for _ in 0..100 {
            let reply = rcode_of(&CLIENT_COOKIE).cookie();
            let stamp = u32::from_be_bytes([reply[12], reply[13], reply[14], reply[15]]);
            if reply[8..] == mint(&secret(key), &CLIENT_COOKIE, LOCALHOST, stamp) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no cookie minted under {key}:\n{}", server.guard.log_text());
    };
    rewrite(settings(&format!(
        "cookie-secret = [\"{SECRET}\", \"{OLD_SECRET}\"]\n"
    )));
    minted_under(SECRET);
    assert_eq!(
        rcode_of(&by_old).rcode,
        0,
        "the old secret's cookies still taken"
    );
    rewrite(settings(&format!("cookie-secret = \"{SECRET}\"\n")));
    for _ in 0..100 {
        if rcode_of(&by_old).rcode == 23 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rcode_of(&by_old).rcode, 23, "the old secret retired");
    assert_eq!(server.serial(), serial, "the zone did not change");
    let log = server.guard.log_text();
    assert!(log.contains("identity or cookie settings applied"), "{log}");
    assert!(!log.contains("take effect after a restart"), "{log}");
}
