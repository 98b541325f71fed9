//! Test helpers for scale-out: temp dirs, free loopback ports, the bsf-dns binary and real
//! Knot and NSD secondaries as child processes (killed and reaped on drop, even when a test
//! fails), and a small DNS client (UDP queries, AXFR/IXFR over TCP from a chosen source
//! address, TSIG-signed when asked).
//!
//! Test files include it beside the shared harness (`mod common;` then `#[path =
//! "common/secondaries.rs"] mod secondaries;`), whose process guard and port probe it uses.
//! All traffic goes to 127.0.0.0/8; every wait is bounded in count and time.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bsf_dns::transfer::tsig::{self, Key, Signer, Verifier};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

// ---------------------------------------------------------------------------------------
// Files and ports

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "bsf-dns-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a file so that a watcher sees it whole: write beside it, then rename.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if started.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// Processes: the shared harness's guard (SIGTERM, then SIGKILL after 3 s, reaped either way,
// so that NSD's forked children stop too) and its port probe.

pub use crate::common::Guard;
use crate::common::{on_free_port, spawn_logged};

/// Whether an executable is installed (CI installs `knot`, `nsd`, `bind9-dnsutils`).
pub fn require_tool(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install {package})"
    );
}

/// Starts `bsf-dns serve` on 127.0.0.1:`port` (one UDP thread) and waits until it answers
/// `SOA <apex>` over UDP.
pub fn start_bsf(dir: &Path, zones: &Path, config: &Path, port: u16) -> Guard {
    try_start_bsf(dir, zones, config, port).unwrap_or_else(|log| panic!("{log}"))
}

/// `start_bsf` on a port probed free ([`on_free_port`]), and that port.
pub fn start_bsf_on_free_port(dir: &Path, zones: &Path, config: &Path) -> (Guard, u16) {
    on_free_port(|port| try_start_bsf(dir, zones, config, port).map(|guard| (guard, port)))
}

/// Starts bsf-dns and waits until it answers; its log if it exits first.
fn try_start_bsf(dir: &Path, zones: &Path, config: &Path, port: u16) -> Result<Guard, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bsf-dns"));
    command
        .arg("serve")
        .arg("--zones")
        .arg(zones)
        .arg("--config")
        .arg(config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--threads")
        .arg("1")
        .env("BSF_DNS_LOG", "info");
    let mut proc = spawn_logged(
        "bsf-dns",
        &mut command,
        dir.join(format!("bsf-dns-{port}.log")),
    );
    let server = SocketAddr::from((LOCALHOST, port));
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!(
                "{} exited early ({status})\n{}",
                proc.name,
                proc.log_tail()
            ));
        }
        if soa_serial(server, "lwm2m.org.").is_some() {
            return Ok(proc);
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!(
                "bsf-dns did not answer SOA within 30 s\n{}",
                proc.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TSIG key as the three configuration items every server takes.
#[derive(Clone)]
pub struct KeySpec {
    pub name: String,
    pub secret_b64: String,
}

impl KeySpec {
    pub fn new(name: &str, seed: u8) -> KeySpec {
        use base64::Engine as _;
        let secret: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(seed))
            .collect();
        KeySpec {
            name: name.to_string(),
            secret_b64: base64::engine::general_purpose::STANDARD.encode(secret),
        }
    }

    pub fn key(&self) -> Key {
        use base64::Engine as _;
        Key::new(
            Name::from_ascii(&self.name).unwrap(),
            tsig::Algorithm::HmacSha256,
            base64::engine::general_purpose::STANDARD
                .decode(&self.secret_b64)
                .unwrap(),
        )
    }

    /// The `[[tsig-key]]` block of a bsf-dns settings file.
    pub fn bsf_toml(&self) -> String {
        format!(
            "[[tsig-key]]\nname = \"{}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{}\"\n",
            self.name, self.secret_b64
        )
    }
}

/// Starts Knot (`knotd`, foreground) as a secondary of lwm2m.org on 127.0.0.1:`port`,
/// transferring from `primary` with source address `via`, with `key` for transfers and NOTIFY
/// when given. No `knotc` needed: the zone is bootstrapped at start and refreshed on NOTIFY.
pub fn start_knot(
    dir: &Path,
    port: u16,
    primary: SocketAddr,
    via: IpAddr,
    key: Option<&KeySpec>,
) -> Guard {
    require_tool("/usr/sbin/knotd", "knot");
    let root = dir.join("knot");
    std::fs::create_dir_all(root.join("db")).unwrap();
    let mut conf = String::new();
    let _ = write!(
        conf,
        "server:\n    rundir: \"{r}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         database:\n    storage: \"{r}/db\"\n\
         control:\n    listen: \"{r}/knot.sock\"\n",
        r = root.display()
    );
    let key_ref = match key {
        Some(k) => {
            let _ = write!(
                conf,
                "key:\n  - id: {}\n    algorithm: hmac-sha256\n    secret: {}\n",
                k.name, k.secret_b64
            );
            format!("\n    key: {}", k.name)
        }
        None => String::new(),
    };
    let _ = write!(
        conf,
        "remote:\n  - id: primary\n    address: {}@{}\n    via: {via}{key_ref}\n\
         acl:\n  - id: notify_from_primary\n    address: {}\n    action: notify{key_ref}\n\
         zone:\n  - domain: lwm2m.org\n    storage: \"{r}\"\n    file: \"lwm2m.org.zone\"\n    master: primary\n    acl: notify_from_primary\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n\
         log:\n  - target: stderr\n    any: info\n",
        primary.ip(),
        primary.port(),
        primary.ip(),
        r = root.display()
    );
    let conf_path = root.join("knot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut command = Command::new("/usr/sbin/knotd");
    command.arg("-c").arg(&conf_path);
    spawn_logged("knotd", &mut command, root.join("knotd.log"))
}

/// Starts NSD (`nsd -d`) as a secondary of lwm2m.org on 127.0.0.1:`port`, transferring from
/// `primary` with source address `via` (`outgoing-interface`), with `key` when given.
/// Response rate limiting is off (`rrl-ratelimit: 0`): the comparison sends many queries.
pub fn start_nsd(
    dir: &Path,
    port: u16,
    primary: SocketAddr,
    via: IpAddr,
    key: Option<&KeySpec>,
) -> Guard {
    require_tool("/usr/sbin/nsd", "nsd");
    let root = dir.join("nsd");
    std::fs::create_dir_all(&root).unwrap();
    let r = root.display();
    let mut conf = format!(
        "server:\n    ip-address: 127.0.0.1@{port}\n    port: {port}\n    username: \"\"\n    chroot: \"\"\n    zonesdir: \"{r}\"\n    database: \"\"\n    zonelistfile: \"{r}/zone.list\"\n    xfrdfile: \"{r}/xfrd.state\"\n    xfrdir: \"{r}\"\n    pidfile: \"{r}/nsd.pid\"\n    server-count: 1\n    verbosity: 2\n    rrl-ratelimit: 0\n    tcp-count: 20\n\
         remote-control:\n    control-enable: no\n"
    );
    let key_name = match key {
        Some(k) => {
            let _ = write!(
                conf,
                "key:\n    name: \"{}\"\n    algorithm: hmac-sha256\n    secret: \"{}\"\n",
                k.name, k.secret_b64
            );
            k.name.clone()
        }
        None => "NOKEY".to_string(),
    };
    let _ = write!(
        conf,
        "zone:\n    name: \"lwm2m.org\"\n    zonefile: \"lwm2m.org.zone\"\n    request-xfr: {}@{} {key_name}\n    allow-notify: {} {key_name}\n    outgoing-interface: {via}\n",
        primary.ip(),
        primary.port(),
        primary.ip()
    );
    let conf_path = root.join("nsd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut command = Command::new("/usr/sbin/nsd");
    command.arg("-d").arg("-c").arg(&conf_path);
    spawn_logged("nsd", &mut command, root.join("nsd.log"))
}

// ---------------------------------------------------------------------------------------
// DNS client

pub fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// A query message: RD clear, EDNS(0) with a 1232-octet payload.
pub fn query_message(qname: &Name, qtype: RecordType) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = false;
    message.queries.push(Query::query(qname.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.edns = Some(edns);
    message
}

/// Sends a query over UDP and returns the answer (3 tries, 1 s each), or `None`.
pub fn query_udp(server: SocketAddr, qname: &Name, qtype: RecordType) -> Option<Message> {
    query_udp_from(IpAddr::V4(LOCALHOST), server, qname, qtype)
}

/// [`query_udp`] from a chosen source address.
pub fn query_udp_from(
    source: IpAddr,
    server: SocketAddr,
    qname: &Name,
    qtype: RecordType,
) -> Option<Message> {
    let message = query_message(qname, qtype);
    exchange_udp(source, server, &message.to_vec().unwrap())
        .and_then(|bytes| Message::from_vec(&bytes).ok())
}

/// Sends raw bytes over UDP from `source` and returns the raw answer with the same ID.
pub fn exchange_udp(source: IpAddr, server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((source, 0)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..3 {
        socket.send_to(bytes, server).ok()?;
        // Bounded: stray datagrams are skipped, at most 8 of them per try.
        for _ in 0..8 {
            match socket.recv_from(&mut buf) {
                Ok((len, from)) if from == server && len >= 2 && buf[..2] == bytes[..2] => {
                    return Some(buf[..len].to_vec());
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    None
}

/// The zone's SOA serial as `server` answers it, if it answers NOERROR with one.
pub fn soa_serial(server: SocketAddr, apex: &str) -> Option<u32> {
    let answer = query_udp(server, &name(apex), RecordType::SOA)?;
    if answer.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    answer.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// What a transfer request got back.
#[derive(Debug)]
pub struct TransferResult {
    /// Every message, raw.
    pub raw: Vec<Vec<u8>>,
    pub messages: Vec<Message>,
}

impl TransferResult {
    pub fn rcode(&self) -> ResponseCode {
        self.messages
            .first()
            .map_or(ResponseCode::ServFail, |m| m.metadata.response_code)
    }

    /// Every answer record of every message, in order.
    pub fn records(&self) -> Vec<&Record> {
        self.messages
            .iter()
            .flat_map(|m| m.answers.iter())
            .collect()
    }

    /// The TSIG record (error code, MAC length) of the first message, if any.
    pub fn first_tsig(&self) -> Option<tsig::TsigRecord> {
        self.raw.first().and_then(|m| tsig::find(m).ok().flatten())
    }
}

/// How to ask for a transfer.
pub struct TransferRequest<'a> {
    pub server: SocketAddr,
    pub zone: &'a str,
    pub qtype: RecordType,
    /// For IXFR: the serial the client claims to have.
    pub ixfr_serial: Option<u32>,
    /// Connect from this source address (127.0.0.0/8 addresses all work on Linux loopback).
    pub source: IpAddr,
    pub key: Option<Key>,
    /// Time Signed to use (default: now).
    pub time: Option<u64>,
}

impl<'a> TransferRequest<'a> {
    pub fn axfr(server: SocketAddr) -> TransferRequest<'a> {
        TransferRequest {
            server,
            zone: "lwm2m.org.",
            qtype: RecordType::AXFR,
            ixfr_serial: None,
            source: IpAddr::V4(LOCALHOST),
            key: None,
            time: None,
        }
    }
}

fn read_message(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut message)?;
    Ok(message)
}

/// Runs a transfer over TCP. Reads until the closing SOA (or one error message); verifies the
/// TSIG chain of a signed request (every message must be signed). Bounded: 100,000 messages,
/// 10 s without data.
pub fn transfer(request: &TransferRequest<'_>) -> Result<TransferResult, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket =
        Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(|e| e.to_string())?;
    socket
        .bind(&SocketAddr::new(request.source, 0).into())
        .map_err(|e| format!("bind {}: {e}", request.source))?;
    socket
        .connect_timeout(&request.server.into(), Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;

    let mut message = query_message(&name(request.zone), request.qtype);
    message.edns = None;
    if let Some(serial) = request.ixfr_serial {
        let soa = hickory_proto::rr::rdata::SOA::new(
            name("ns1.lwm2m.org."),
            name("hostmaster.lwm2m.org."),
            serial,
            3600,
            600,
            1_209_600,
            300,
        );
        message
            .authorities
            .push(Record::from_rdata(name(request.zone), 0, RData::SOA(soa)));
    }
    let mut bytes = message.to_vec().map_err(|e| e.to_string())?;
    let mut verifier = request.key.as_ref().map(|key| {
        let mac =
            Signer::request(key.clone()).sign(&mut bytes, request.time.unwrap_or_else(tsig::now));
        Verifier::new(key.clone(), mac)
    });
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).map_err(|e| e.to_string())?;

    let mut result = TransferResult {
        raw: Vec::new(),
        messages: Vec::new(),
    };
    let mut end = TransferEnd::default();
    for _ in 0..100_000 {
        let raw = read_message(&mut stream)
            .map_err(|e| format!("reading message {}: {e}", result.raw.len() + 1))?;
        let parsed = Message::from_vec(&raw).map_err(|e| format!("parse: {e}"))?;
        if let Some(v) = verifier.as_mut() {
            if parsed.metadata.response_code == ResponseCode::NoError {
                v.verify(&raw, tsig::now())
                    .map_err(|e| format!("TSIG of message {}: {e}", result.raw.len() + 1))?;
            }
        }
        let error = parsed.metadata.response_code != ResponseCode::NoError;
        for record in &parsed.answers {
            end.see(record);
        }
        let single_soa = request.qtype == RecordType::IXFR
            && result.messages.is_empty()
            && parsed.answers.len() == 1
            && end.records == 1;
        result.raw.push(raw);
        result.messages.push(parsed);
        if error || end.done || single_soa {
            return Ok(result);
        }
    }
    Err("more than 100,000 messages".into())
}

/// Where a transfer's records end (RFC 1995 §4, RFC 5936 §2.2): a whole zone at the second SOA
/// with the first's serial; an incremental one (a second record that is an SOA) after
/// difference sequences of SOA (old), deletions, SOA (new), additions, at an SOA with the
/// first's serial where the next sequence would start, after a sequence that reached it.
#[derive(Default)]
struct TransferEnd {
    records: usize,
    newest: Option<u32>,
    incremental: bool,
    /// SOAs seen after the first, and the serial of the last "new" one.
    soas: usize,
    reached: Option<u32>,
    done: bool,
}

impl TransferEnd {
    fn see(&mut self, record: &Record) {
        self.records += 1;
        let serial = match &record.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        };
        if self.records == 1 {
            self.newest = serial;
            return;
        }
        if self.records == 2 {
            self.incremental = serial.is_some();
        }
        let Some(serial) = serial else {
            return;
        };
        if !self.incremental {
            self.done = Some(serial) == self.newest;
            return;
        }
        self.soas += 1;
        if self.soas.is_multiple_of(2) {
            self.reached = Some(serial);
        } else if self.soas > 1 && self.reached == self.newest && Some(serial) == self.newest {
            self.done = true;
        }
    }
}

/// An incremental transfer's difference sequences: (old serial, deleted, new serial, added),
/// read from a complete response's records (after the first SOA).
pub fn difference_sequences(records: &[&Record]) -> Vec<(u32, Vec<Record>, u32, Vec<Record>)> {
    let serial = |r: &Record| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    };
    let inner = records
        .get(1..records.len().saturating_sub(1))
        .unwrap_or_default();
    let mut rest = inner.iter().peekable();
    let mut sequences = Vec::new();
    while let Some(first) = rest.next() {
        let old = serial(first).expect("a sequence starts with an SOA");
        let mut deleted = Vec::new();
        while let Some(record) = rest.next_if(|r| serial(r).is_none()) {
            deleted.push((*record).clone());
        }
        let new = rest
            .next()
            .and_then(|r| serial(r))
            .expect("the new SOA after the deletions");
        let mut added = Vec::new();
        while let Some(record) = rest.next_if(|r| serial(r).is_none()) {
            added.push((*record).clone());
        }
        sequences.push((old, deleted, new, added));
    }
    sequences
}

// ---------------------------------------------------------------------------------------
// Comparing answers

/// What two servers must agree on for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparable {
    pub rcode: ResponseCode,
    pub aa: bool,
    /// Answer records as `owner ttl class type rdata`, owner lower-cased.
    pub answer: BTreeSet<String>,
    /// The SOA in the authority section of a negative answer (NXDOMAIN, NODATA): its TTL
    /// is the RFC 2308 negative TTL on every server.
    pub negative_soa: BTreeSet<String>,
}

/// A record as `owner ttl IN type rdata`, names (owner and in RDATA) lower-cased: servers may
/// compress names against the question and so echo the client's letter case in them.
pub fn record_text(record: &Record) -> String {
    let mut r = record.clone();
    r.name = r.name.to_lowercase();
    match &mut r.data {
        RData::SOA(soa) => {
            soa.mname = soa.mname.to_lowercase();
            soa.rname = soa.rname.to_lowercase();
        }
        RData::NS(ns) => ns.0 = ns.0.to_lowercase(),
        RData::SRV(srv) => srv.target = srv.target.to_lowercase(),
        _ => {}
    }
    bsf_dns::zone::export::record_line(&r)
}

pub fn comparable(message: &Message) -> Comparable {
    let negative = message.answers.is_empty();
    Comparable {
        rcode: message.metadata.response_code,
        aa: message.metadata.authoritative,
        answer: message.answers.iter().map(record_text).collect(),
        negative_soa: if negative {
            message
                .authorities
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .map(record_text)
                .collect()
        } else {
            BTreeSet::new()
        },
    }
}

/// The additional section as text, for reporting differences that policy allows.
pub fn additional_text(message: &Message) -> BTreeSet<String> {
    message
        .additionals
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(record_text)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Zones

/// The example templates of the repository (without the default template).
pub fn copy_example_zones(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if file.ends_with(".toml") && file != "default.toml" {
            std::fs::copy(&path, to.join(&file)).unwrap();
        }
    }
}

/// The (mcc, mnc) rows of `data/mcc-mnc-pairs.csv`, skipping a 2-digit MNC whose zero-padded
/// `0NN` spelling is also a row of the same MCC (both would claim the name `mnc0NN`).
pub fn plmn_rows() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mcc-mnc-pairs.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let rows: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        })
        .collect();
    let all: BTreeSet<(String, String)> = rows.iter().cloned().collect();
    rows.into_iter()
        .filter(|(mcc, mnc)| !(mnc.len() == 2 && all.contains(&(mcc.clone(), format!("0{mnc}")))))
        .collect()
}

/// Writes one template per row: addresses, a CoAPs URI and (every third) a CoAP+TCP one.
pub fn write_operator_templates(dir: &Path, rows: &[(String, String)]) {
    for (i, (mcc, mnc)) in rows.iter().enumerate() {
        let mut text = format!(
            "mcc = \"{mcc}\"\nmnc = [\"{mnc}\"]\naddresses = [\"198.18.{}.{}\", \"2001:db8:{i:x}::1\"]\n\
             [[bootstrap]]\nuri = \"coaps://bs.mnc{mnc}.mcc{mcc}.example.net:5684\"\n",
            i / 250,
            i % 250 + 1
        );
        if i % 3 == 0 {
            text.push_str("[[bootstrap]]\nuri = \"coaps+tcp://bs.example.net\"\npriority = 20\n");
        }
        std::fs::write(dir.join(format!("gen-{mcc}-{mnc}.toml")), text).unwrap();
    }
}
