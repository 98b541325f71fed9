//! Running as a service: the notifications a service manager (systemd, `Type=notify`)
//! receives on `$NOTIFY_SOCKET`, each when it is true — READY once the server answers,
//! RELOADING and READY around a reload with a status saying what it did, STOPPING at
//! shutdown — and logs as JSON lines for a log collector.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// The service manager's end: a datagram socket in a temporary directory.
struct Manager {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Manager {
    fn new() -> Manager {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Manager {
            socket,
            _dir: dir,
            path,
        }
    }

    /// The next notification, as `KEY=value` lines.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let len = self
            .socket
            .recv(&mut buf)
            .expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

#[test]
fn the_service_manager_hears_ready_reloading_and_stopping_when_they_are_true() {
    let manager = Manager::new();
    let seed = std::fs::read_to_string(bundled_zones().join("313-460.toml")).expect("seed");
    let (dir, zones) = temp_zones(&[("313-460.toml", &seed)]);
    let (mut bsf, addr, ready) = on_free_port(|port| {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--threads", "1", "--zones"])
            .arg(&zones)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("NOTIFY_SOCKET", &manager.path);
        let guard = spawn(&format!("bsf-dns-{port}"), command, dir.path());
        // READY=1, or the process ended (a taken port) and nothing will come.
        manager
            .socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut guard = guard;
        for _ in 0..100 {
            let mut buf = [0u8; 4096];
            if let Ok(len) = manager.socket.recv(&mut buf) {
                let lines: Vec<String> = String::from_utf8_lossy(&buf[..len])
                    .lines()
                    .map(str::to_string)
                    .collect();
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                return Ok((guard, addr, lines));
            }
            if let Ok(Some(_)) = guard.child.try_wait() {
                return Err(guard.log_text());
            }
        }
        panic!("no notification in 20 s:\n{}", guard.log_tail());
    });
    manager
        .socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");

    // READY means answering: the very next query is answered.
    assert_eq!(value(&ready, "READY"), Some("1"), "{ready:?}");
    let started_serial = apex_serial(addr);
    assert_eq!(
        value(&ready, "STATUS"),
        Some(format!("serving 1 operator, serial {started_serial}").as_str())
    );

    // A reload over the same files: RELOADING, then READY saying nothing changed.
    bsf.signal(libc::SIGHUP);
    let reloading = manager.next();
    assert_eq!(value(&reloading, "RELOADING"), Some("1"), "{reloading:?}");
    let usec: u64 = value(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .expect("MONOTONIC_USEC");
    assert!(usec > 0);
    let done = manager.next();
    assert_eq!(value(&done, "READY"), Some("1"));
    assert_eq!(
        value(&done, "STATUS"),
        Some(
            format!("serving 1 operator, serial {started_serial} (last reload: no change)")
                .as_str()
        )
    );

    // A broken file: the status says the reload was rejected and what is still served.
    std::fs::write(zones.join("262-01.toml"), "mcc = \"262\"\nmnc = [\"01\"\n").expect("write");
    let reloading = manager.next();
    assert_eq!(value(&reloading, "RELOADING"), Some("1"));
    let rejected = manager.next();
    let status = value(&rejected, "STATUS").expect("STATUS");
    assert!(
        status.starts_with(&format!(
            "last reload rejected, still serving 1 operator, serial {started_serial}: "
        )) && status.contains("262-01.toml"),
        "{status}"
    );
    assert_eq!(
        ask_udp(addr, "bsf.mnc460.mcc313.lwm2m.org.", RecordType::A, None)
            .metadata
            .response_code,
        ResponseCode::NoError
    );

    // SIGTERM: STOPPING before the process is gone (after whatever a late second reload of
    // the broken file, should the watch report it twice, sends first).
    bsf.signal(libc::SIGTERM);
    let stopping = (0..10)
        .map(|_| manager.next())
        .find(|message| value(message, "STOPPING").is_some())
        .expect("STOPPING among the next ten notifications");
    assert_eq!(value(&stopping, "STOPPING"), Some("1"), "{stopping:?}");
    let status = bsf.terminate().expect("exit status");
    assert!(status.success(), "{status}\n{}", bsf.log_tail());
}

#[test]
fn json_logs_are_one_object_per_line_with_fields_as_keys() {
    let seed = std::fs::read_to_string(bundled_zones().join("313-460.toml")).expect("seed");
    let (_dir, zones) = temp_zones(&[("313-460.toml", &seed)]);
    let server = Server::start(&zones, None, &["--log-format", "json", "--log-queries"]);
    let served_serial = apex_serial(server.addr);
    ask_udp(
        server.addr,
        "bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::A,
        None,
    );
    // A rejected reload: its message spans lines (one per problem) and stays one object.
    std::fs::write(zones.join("262-01.toml"), "mcc = \"262\"\nmnc = [\"01\"\n").expect("write");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.guard.log_text().contains("reload rejected") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.guard.log_tail()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let log = server.guard.log_text();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let find = |needle: &str| {
        events
            .iter()
            .find(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)))
            .unwrap_or_else(|| panic!("no {needle:?} in {log}"))
    };
    let serving = find("serving on");
    assert_eq!(serving["level"], "INFO");
    assert_eq!(serving["serial"], u64::from(served_serial));
    assert_eq!(serving["operators"], 1);
    let query = events
        .iter()
        .find(|e| e["message"] == "query" && e["qtype"] == "A")
        .unwrap_or_else(|| panic!("no query line for A in {log}"));
    assert_eq!(query["name"], "bsf.mnc460.mcc313.lwm2m.org.");
    assert_eq!(query["transport"], "udp");
    assert_eq!(query["rcode"], "No Error");
    let rejected = find("reload rejected");
    assert_eq!(rejected["level"], "ERROR");
    assert!(rejected["message"]
        .as_str()
        .is_some_and(|m| m.contains("262-01.toml:2: field `mnc`")));
}
