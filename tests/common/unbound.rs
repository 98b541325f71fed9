//! Unbound as the recursive resolver between a test "device" and bsf-dns, kept on loopback.
//!
//! Devices never ask an authoritative server directly: they ask the operator's resolver,
//! which caches by TTL. End-to-end tests therefore put Debian's `unbound` in between,
//! stub-zoning the apex to a bsf-dns on loopback. The test installs nothing: `.ci/run`
//! installs `unbound` (and `dnsutils` for `dig`). Without it a test fails when `CI` is set
//! and is skipped, with a printed message, otherwise.
//!
//! Keeping Unbound off the network is layered, so no one slip sends a packet out:
//! - `local-zone: "." refuse` answers REFUSED for every name outside the stub-zoned apexes
//!   (each apex is `transparent`, so it goes on to the iterator and the stub);
//! - `outgoing-interface: 127.0.0.1`: upstream sockets are bound to loopback, and the kernel
//!   will not route a loopback source to any other address;
//! - `root-hints` names only 127.0.0.9 (nothing listens), so even a root priming would stay
//!   local; `module-config: "iterator"` with no trust anchor means no DNSSEC fetches; no
//!   prefetch, `target-fetch-policy` zero, IPv6 off;
//! - [`Unbound::contacted_servers`] lists every upstream Unbound has talked to
//!   (`unbound-control dump_infra`), so a test can assert all of them are loopback.
//!
//! [`Unbound`] owns the process: its `Drop` kills and reaps it even when a test panics.

#![allow(dead_code)] // each test file uses its own subset

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// How long a server may take to answer its first query.
pub const READY_LIMIT: Duration = Duration::from_secs(10);

/// A program from `PATH` or the sbin directories (root's tools live there).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A tool a test needs: found, or `None` after printing why the test is skipped. Under CI
/// (`CI` set) a missing tool fails the test instead: CI must install it.
pub fn require_tool(name: &str, package: &str) -> Option<PathBuf> {
    if let Some(path) = find_tool(name) {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not installed, and CI is set: .ci/run must `apt-get install {package}`");
    }
    eprintln!(
        "SKIPPED: {name} is not installed (apt-get install {package}); set CI=1 to fail instead"
    );
    None
}

/// A loopback port free for both UDP and TCP right now (bind-to-port-0 probe).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let Ok(udp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP after 100 tries");
}

/// One UDP query (RD set, EDNS 1232), one reply; `Err` on timeout or a garbled reply.
pub fn query(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
    timeout: Duration,
) -> io::Result<Message> {
    assert!(
        server.ip().is_loopback(),
        "tests only talk to loopback, not {server}"
    );
    let name = Name::from_ascii(name).map_err(|e| io::Error::other(e.to_string()))?;
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.add_query(Query::query(name, record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    request.set_edns(edns);
    let bytes = request
        .to_vec()
        .map_err(|e| io::Error::other(e.to_string()))?;

    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket.set_read_timeout(Some(timeout))?;
    socket.connect(server)?;
    socket.send(&bytes)?;
    let mut buffer = [0u8; 4096];
    loop {
        let len = socket.recv(&mut buffer)?;
        let reply =
            Message::from_vec(&buffer[..len]).map_err(|e| io::Error::other(e.to_string()))?;
        if reply.metadata.id == request.metadata.id {
            return Ok(reply);
        }
    }
}

/// Polls `server` with `name`/`record_type` until any reply comes, for at most `limit`.
/// `alive` is checked between tries so a crashed process fails fast with its status.
pub fn wait_until_answering(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
    limit: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<Message, String> {
    let start = Instant::now();
    let mut last = String::from("no try made");
    while start.elapsed() < limit {
        alive()?;
        match query(server, name, record_type, Duration::from_millis(200)) {
            Ok(reply) => return Ok(reply),
            Err(err) => last = err.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{server} did not answer {name} {record_type} within {limit:?} (last: {last})"
    ))
}

/// Checks that a child is still running.
pub fn still_running(child: &mut Child, what: &str) -> Result<(), String> {
    match child.try_wait() {
        Ok(None) => Ok(()),
        Ok(Some(status)) => Err(format!("{what} exited early: {status}")),
        Err(err) => Err(format!("{what}: cannot check status: {err}")),
    }
}

/// A zone Unbound sends to an authoritative server on loopback.
#[derive(Clone, Debug)]
pub struct StubZone {
    /// The apex, e.g. `lwm2m.org`.
    pub apex: String,
    /// Where bsf-dns listens (loopback).
    pub server: SocketAddr,
}

/// A running Unbound, stopped and reaped on drop.
pub struct Unbound {
    child: Child,
    /// Where it listens, UDP and TCP.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    config: PathBuf,
    control: Option<PathBuf>,
}

impl Unbound {
    /// Starts Unbound with `stubs`; `None` if Unbound is not installed (and not under CI).
    pub fn start(stubs: &[StubZone]) -> Option<Self> {
        let binary = require_tool("unbound", "unbound")?;
        for stub in stubs {
            assert!(
                stub.server.ip().is_loopback(),
                "stub {} must be on loopback",
                stub.apex
            );
        }
        // A probed port can be taken before Unbound binds it: then try another.
        for attempt in 1..=5 {
            let dir = tempfile::tempdir().expect("temp dir for unbound");
            let port = free_port();
            let config = write_config(dir.path(), port, stubs);
            let log = fs::File::create(dir.path().join("stderr.log")).expect("unbound stderr log");
            let child = Command::new(&binary)
                .arg("-d")
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn unbound");
            let mut unbound = Unbound {
                child,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                dir,
                config,
                control: find_tool("unbound-control"),
            };
            let addr = unbound.addr;
            let ready = wait_until_answering(
                addr,
                "readiness-probe.invalid.",
                RecordType::A,
                READY_LIMIT,
                || still_running(&mut unbound.child, "unbound"),
            );
            match ready {
                Ok(_) => return Some(unbound),
                Err(err) => {
                    let log = unbound.log();
                    if attempt < 5 && log.contains("Address already in use") {
                        continue;
                    }
                    panic!("unbound did not start: {err}\n{log}");
                }
            }
        }
        unreachable!("the last attempt panics or returns")
    }

    /// Unbound's log (its logfile and stderr), for failure messages.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for file in ["unbound.log", "stderr.log"] {
            if let Ok(content) = fs::read_to_string(self.dir.path().join(file)) {
                text.push_str(&format!("--- unbound {file} ---\n{content}"));
            }
        }
        text
    }

    /// The config file in use.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Every upstream server Unbound has contacted or tried (`ip@port` from `dump_infra`).
    pub fn contacted_servers(&self) -> Result<Vec<String>, String> {
        let control = self
            .control
            .as_ref()
            .ok_or("unbound-control is not installed")?;
        let output = Command::new(control)
            .arg("-c")
            .arg(&self.config)
            .arg("dump_infra")
            .output()
            .map_err(|e| format!("unbound-control: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "unbound-control dump_infra: {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect())
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, port: u16, stubs: &[StubZone]) -> PathBuf {
    let d = dir.display();
    let hints = dir.join("root.hints");
    fs::write(
        &hints,
        ".                        3600000  NS  loopback-root.invalid.\n\
         loopback-root.invalid.  3600000  A   127.0.0.9\n",
    )
    .expect("write root hints");

    let mut text = format!(
        r#"server:
    interface: 127.0.0.1
    port: {port}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    outgoing-interface: 127.0.0.1
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    use-syslog: no
    logfile: "{d}/unbound.log"
    log-time-ascii: yes
    verbosity: 1
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    num-threads: 1
    so-reuseport: no
    module-config: "iterator"
    root-hints: "{d}/root.hints"
    do-not-query-localhost: no
    prefetch: no
    target-fetch-policy: "0 0 0 0 0"
    local-zone: "." refuse
"#
    );
    for stub in stubs {
        let apex = stub.apex.trim_end_matches('.');
        text.push_str(&format!("    local-zone: \"{apex}.\" transparent\n"));
    }
    for stub in stubs {
        let apex = stub.apex.trim_end_matches('.');
        text.push_str(&format!(
            "stub-zone:\n    name: \"{apex}.\"\n    stub-addr: {}@{}\n    stub-prime: no\n    stub-first: no\n",
            stub.server.ip(),
            stub.server.port()
        ));
    }
    text.push_str(&format!(
        "remote-control:\n    control-enable: yes\n    control-interface: \"{d}/unbound.ctl\"\n    control-use-cert: no\n"
    ));
    let path = dir.join("unbound.conf");
    fs::write(&path, text).expect("write unbound.conf");
    path
}
