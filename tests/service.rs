//! Running as a service: the notifications a service manager (systemd, `Type=notify`)
//! receives on `$NOTIFY_SOCKET`, each when it is true — READY once the server answers,
//! RELOADING and READY around a reload with a status saying what it did, STOPPING at
//! shutdown —, logs as JSON lines for a log collector, and serving as an unprivileged user
//! after binding as root (`--user`).

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

/// The uid and gid of every thread of a process, from `/proc`.
fn thread_ids(pid: u32) -> Vec<(String, String)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
    tasks
        .map(|task| {
            let status = std::fs::read_to_string(task.expect("a thread").path().join("status"))
                .expect("thread status");
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            };
            (field("Uid:"), field("Gid:"))
        })
        .collect()
}

#[test]
fn started_as_root_it_serves_and_reloads_as_the_user_it_was_given() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: switching users needs root");
        return;
    }
    let template = |address: &str| {
        format!(
            "mcc = \"313\"\nmnc = [\"460\"]\naddresses = [\"{address}\"]\n\
             [[bootstrap]]\nuri = \"coaps://bs.example-op.net:5684\"\n"
        )
    };
    let (dir, zones) = temp_zones(&[("313-460.toml", &template("192.0.2.10"))]);
    // nobody must be able to read what reloads read.
    let file = zones.join("313-460.toml");
    for (path, mode) in [
        (dir.path(), 0o755),
        (zones.as_path(), 0o755),
        (&file, 0o644),
    ] {
        let permissions = std::os::unix::fs::PermissionsExt::from_mode(mode);
        std::fs::set_permissions(path, permissions).unwrap();
    }
    let server = Server::start(&zones, None, &["--user", "nobody", "--threads", "2"]);
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        // Real, effective, saved and file-system ids, as /proc lists them.
        [id.as_str(); 4].join(" ")
    };
    let (uid, gid) = (id("-u"), id("-g"));
    let ids = thread_ids(server.guard.pid());
    assert!(ids.len() >= 3, "{ids:?}");
    for ids_of_thread in &ids {
        assert_eq!(
            ids_of_thread,
            &(uid.clone(), gid.clone()),
            "every thread: {ids:?}"
        );
    }
    let address = |server: &Server| {
        server
            .ask("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A)
            .answers
            .first()
            .map(|r| r.data.to_string())
    };
    assert_eq!(address(&server).as_deref(), Some("192.0.2.10"));
    std::fs::write(&file, template("192.0.2.11")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while address(&server).as_deref() != Some("192.0.2.11") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload as nobody\n{}",
            server.guard.log_tail()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(server
        .guard
        .log_text()
        .contains("serving as an unprivileged user user=nobody"));

    // A user that does not exist stops start-up, naming it.
    let out = Command::new(BIN)
        .args(["serve", "--zones"])
        .arg(&zones)
        .args(["--listen", "127.0.0.1:0", "--user", "no-such-user-bsf-dns"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot serve as user \"no-such-user-bsf-dns\": no such user"),
        "{err}"
    );
}
