//! Shared harness for the integration tests: free loopback ports, the real `bsf-dns` binary as
//! a child process (started, polled until it answers, stopped even when a test fails), a small
//! DNS client over real sockets, `dig`, and template sets generated from the real MCC/MNC table.
//!
//! Every wait is a bounded poll; every process started here is stopped by a Drop guard.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

pub const BIN: &str = env!("CARGO_BIN_EXE_bsf-dns");

/// A port free for both UDP and TCP on 127.0.0.1 (probed by binding port 0).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP probe");
        let port = udp.local_addr().expect("probe address").port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port found in 50 tries");
}

/// Runs `start` on a port probed free, again on another when the port was taken before the
/// process could bind it (tests beside this one bind ephemeral ports by the thousand): the
/// start's error, the process's log, then says "in use". Five ports at most.
pub fn on_free_port<T>(mut start: impl FnMut(u16) -> Result<T, String>) -> T {
    let mut last = String::new();
    for _ in 0..5 {
        match start(free_port()) {
            Ok(started) => return started,
            Err(log) if log.contains("in use") => last = log,
            Err(log) => panic!("{log}"),
        }
    }
    panic!("five ports taken before the process could bind them\n{last}");
}

/// A child process stopped (SIGTERM, then SIGKILL) and reaped on drop.
pub struct Guard {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!(
            "--- {} log ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[start..].join("\n")
        )
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early ({status})\n{}", self.name, self.log_tail());
        }
    }

    /// Sends a signal (e.g. libc::SIGHUP).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Stops the process with SIGTERM and returns its exit status (bounded wait).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Spawns a command with stdout/stderr to a log file in `dir`.
pub fn spawn(name: &str, command: Command, dir: &Path) -> Guard {
    let mut command = command;
    spawn_logged(name, &mut command, dir.join(format!("{name}.log")))
}

/// Spawns a command with stdout/stderr to the file `log`.
pub fn spawn_logged(name: &str, command: &mut Command, log: PathBuf) -> Guard {
    let file = std::fs::File::create(&log).expect("create log file");
    let err = file.try_clone().expect("clone log file");
    command.stdin(Stdio::null()).stdout(file).stderr(err);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
    Guard {
        child,
        name: name.to_string(),
        log,
    }
}

/// A running bsf-dns.
pub struct Server {
    pub guard: Guard,
    pub port: u16,
    pub addr: SocketAddr,
    /// Holds the log file; removed after the process is stopped (fields drop in order).
    _log_dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bsf-dns serve` on a free port ([`on_free_port`]) and waits until it answers.
    pub fn start(zones: &Path, config: Option<&Path>, extra: &[&str]) -> Server {
        on_free_port(|port| Server::try_start(zones, config, extra, port))
    }

    /// One start on `port`; the log when the server exits before it answers.
    fn try_start(
        zones: &Path,
        config: Option<&Path>,
        extra: &[&str],
        port: u16,
    ) -> Result<Server, String> {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .arg("--zones")
            .arg(zones)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("BSF_DNS_LOG", "info");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        if !extra.contains(&"--threads") {
            command.args(["--threads", "1"]);
        }
        command.args(extra);
        let log_dir = tempfile::tempdir().expect("log dir");
        let guard = spawn(&format!("bsf-dns-{port}"), command, log_dir.path());
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut server = Server {
            guard,
            port,
            addr,
            _log_dir: log_dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.guard.child.try_wait() {
                return Err(format!(
                    "bsf-dns exited early ({status}):\n{}",
                    self.guard.log_text()
                ));
            }
            if udp_exchange(
                self.addr,
                &query_bytes("lwm2m.org.", RecordType::SOA, None),
                200,
            )
            .is_some()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "bsf-dns did not answer within 20 s:\n{}",
            self.guard.log_text()
        );
    }

    pub fn ask(&self, name: &str, rtype: RecordType) -> Message {
        ask_udp(self.addr, name, rtype, Some(1232))
    }

    /// The SOA serial the server answers with now.
    pub fn serial(&self) -> u32 {
        apex_serial(self.addr)
    }
}

/// The SOA serial of `lwm2m.org` as the bsf-dns at `addr` answers it (panics otherwise).
pub fn apex_serial(addr: SocketAddr) -> u32 {
    let answer = ask_udp(addr, "lwm2m.org.", RecordType::SOA, None);
    match answer.answers.first().map(|r| &r.data) {
        Some(hickory_proto::rr::RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA in the answer: {other:?}"),
    }
}

/// A query message in wire form. `edns`: the advertised payload size, or none.
pub fn query_bytes(name: &str, rtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(name).expect("test name"),
        rtype,
    ));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        message.set_edns(e);
    }
    message.to_vec().expect("encode query")
}

/// Sends one datagram and waits for the reply with the same ID (bounded by `timeout_ms`).
pub fn udp_exchange(addr: SocketAddr, query: &[u8], timeout_ms: u64) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(timeout_ms)))
        .ok()?;
    socket.send_to(query, addr).ok()?;
    let mut buf = vec![0u8; 65535];
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    while Instant::now() < deadline {
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

/// Query over UDP, decoded; retries a few times (UDP on a loaded machine may drop).
pub fn ask_udp(addr: SocketAddr, name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let query = query_bytes(name, rtype, edns);
    for _ in 0..5 {
        if let Some(bytes) = udp_exchange(addr, &query, 1000) {
            return Message::from_vec(&bytes).expect("decode response");
        }
    }
    panic!("no UDP answer from {addr} for {name} {rtype}");
}

/// Writes one length-prefixed message to a TCP stream.
pub fn tcp_send(stream: &mut TcpStream, message: &[u8]) {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).expect("TCP write");
}

/// Reads one length-prefixed message.
pub fn tcp_recv(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("TCP connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    stream
}

/// Query over TCP, decoded.
pub fn ask_tcp(addr: SocketAddr, name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut stream = tcp_connect(addr);
    tcp_send(&mut stream, &query_bytes(name, rtype, edns));
    let bytes = tcp_recv(&mut stream).expect("TCP answer");
    Message::from_vec(&bytes).expect("decode response")
}

/// Whether an external tool is installed. In CI a missing tool fails the test; elsewhere the
/// test says why it is skipped.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required in CI (.ci/run installs it)");
        }
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// Runs dig against our loopback server only (an explicit @127.0.0.1 -p PORT, always).
pub fn dig(port: u16, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+time=2", "+tries=2"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The seed example's operator (MCC 313, MNC 460): addresses and one coaps bootstrap URI.
pub const SEED_TEMPLATE: &str = r#"mcc = "313"
mnc = ["460"]
addresses = ["192.0.2.10", "2001:db8::10"]
[[bootstrap]]
uri = "coaps://bs.example-op.net:5684"
"#;

/// The response to one query over UDP (panics when none comes within 5 s).
pub fn udp_answer(addr: SocketAddr, query: &[u8]) -> Vec<u8> {
    udp_exchange(addr, query, 5000).expect("an answer over UDP")
}

/// The response to one query over a new TCP connection.
pub fn tcp_answer(addr: SocketAddr, query: &[u8]) -> Vec<u8> {
    let mut stream = tcp_connect(addr);
    tcp_send(&mut stream, query);
    tcp_recv(&mut stream).expect("an answer over TCP")
}

/// Wire form of a dotted name, letter case kept.
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A query built byte by byte; `edns`: an OPT with this payload size and these options.
pub fn raw_query(
    id: u16,
    name: &str,
    qtype: u16,
    qclass: u16,
    edns: Option<(u16, &[u8])>,
) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, edns.is_some() as u8]);
    q.extend_from_slice(&wire_name(name));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    if let Some((payload, options)) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&payload.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0]);
        q.extend_from_slice(&(options.len() as u16).to_be_bytes());
        q.extend_from_slice(options);
    }
    q
}

/// A temporary directory with a `zones/` inside.
pub fn temp_zones(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).expect("zones dir");
    for (name, text) in files {
        std::fs::write(zones.join(name), text).expect("write template");
    }
    (dir, zones)
}

/// A server on these templates (in a temporary `zones/`) and, when given, this settings text
/// (as `settings.toml` beside it); the directory lives as long as the returned guard.
pub fn start_with(
    files: &[(&str, &str)],
    settings: Option<&str>,
    extra: &[&str],
) -> (tempfile::TempDir, Server) {
    let (dir, zones) = temp_zones(files);
    let settings_path = settings.map(|text| {
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, text).expect("write settings");
        path
    });
    let server = Server::start(&zones, settings_path.as_deref(), extra);
    (dir, server)
}

/// The bundled example templates of the repository.
pub fn bundled_zones() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("zones")
}

/// One (mcc, mnc) row of data/mcc-mnc-pairs.csv.
#[derive(Debug, Clone)]
pub struct Pair {
    pub mcc: String,
    pub mnc: String,
}

/// The real networks of the MCC/MNC table, minus 2-digit MNCs whose zero-padded spelling is
/// a network of its own (they would share a name).
pub fn real_pairs() -> Vec<Pair> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mcc-mnc-pairs.csv");
    let text = std::fs::read_to_string(path).expect("read data/mcc-mnc-pairs.csv");
    let all: Vec<Pair> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            Some(Pair {
                mcc: fields.next()?.to_string(),
                mnc: fields.next()?.to_string(),
            })
        })
        .collect();
    let exists = |mcc: &str, mnc: &str| all.iter().any(|p| p.mcc == mcc && p.mnc == mnc);
    all.iter()
        .filter(|p| !(p.mnc.len() == 2 && exists(&p.mcc, &format!("0{}", p.mnc))))
        .cloned()
        .collect()
}

/// Writes one template per real network; transports and addresses vary deterministically.
pub fn write_real_templates(zones: &Path) -> Vec<Pair> {
    let pairs = real_pairs();
    for (i, p) in pairs.iter().enumerate() {
        let mut text = format!(
            "mcc = \"{}\"\nmnc = [\"{}\"]\nttl = {}\naddresses = [\"10.{}.{}.{}\"",
            p.mcc,
            p.mnc,
            300 + (i % 3) * 300,
            i / 65536,
            (i / 256) % 256,
            i % 256
        );
        if i % 2 == 0 {
            text.push_str(&format!(", \"2001:db8::{:x}\"", i + 1));
        }
        text.push_str("]\n");
        text.push_str(&format!(
            "[[bootstrap]]\nuri = \"coaps://bs.mnc{}.mcc{}.op{}.example:5684\"\n",
            p.mnc, p.mcc, i
        ));
        if i % 3 == 0 {
            text.push_str(&format!(
                "[[bootstrap]]\nuri = \"coap://10.{}.{}.{}\"\npriority = 20\nweight = {}\n",
                i / 65536,
                (i / 256) % 256,
                i % 256,
                i % 7
            ));
        }
        if i % 5 == 0 {
            text.push_str(&format!(
                "[[bootstrap]]\nuri = \"coaps+tcp://bs.op{i}.example\"\npriority = 30\n"
            ));
        }
        std::fs::write(zones.join(format!("{}-{}.toml", p.mcc, p.mnc)), text)
            .expect("write template");
    }
    pairs
}
