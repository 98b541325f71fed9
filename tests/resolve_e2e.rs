//! End to end, the way a device meets bsf-dns: through a recursive resolver.
//!
//! Each test writes operator templates to a temp dir, starts `bsf-dns serve` on a free
//! loopback port, puts Unbound in front of it (stub zone for the apex, see
//! `common/unbound.rs`), and runs `bsf-dns resolve --server <unbound>` as a device would,
//! checking the ordered URIs, the exit codes, that `dig` through Unbound agrees, and that a
//! template change reaches the device once the old TTL has run out. Nothing leaves loopback:
//! every test ends by asking Unbound which servers it contacted.

#[path = "common/unbound.rs"]
mod unbound;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::Value;

use unbound::{
    free_port, query, require_tool, still_running, wait_until_answering, StubZone, Unbound,
    READY_LIMIT,
};

const BIN: &str = env!("CARGO_BIN_EXE_bsf-dns");
const APEX: &str = "lwm2m.org";

/// Three-digit MNC, three transports, a URI with a path, addresses for the fallback.
const OP1: &str = r#"
mcc = "313"
mnc = ["460"]
ttl = 60
addresses = ["192.0.2.10", "2001:db8::10"]

[[bootstrap]]
uri = "coaps://bs.op1.example:5684/bs"
priority = 10

[[bootstrap]]
uri = "coaps+tcp://bs.op1.example:5684"
priority = 10

[[bootstrap]]
uri = "coap://bs.op1.example"
priority = 30
"#;

/// Two-digit MNC, weights 1:3 at one priority, a second transport with a lower priority.
const OP2: &str = r#"
mcc = "262"
mnc = ["01"]
ttl = 60

[[bootstrap]]
uri = "coap://a.op2.example:5683"
priority = 10
weight = 1

[[bootstrap]]
uri = "coap://b.op2.example:5683"
priority = 10
weight = 3

[[bootstrap]]
uri = "coap+tcp://c.op2.example:5683"
priority = 5
"#;

/// An address literal as the URI host (the SRV target is then the bsf name), short TTL.
fn op3(literal: &str) -> String {
    format!(
        r#"
mcc = "310"
mnc = ["150"]
ttl = 2
addresses = ["198.51.100.7"]

[[bootstrap]]
uri = "coaps://[{literal}]:5684"
"#
    )
}

const OP1_IMSI: [&str; 3] = ["--imsi", "313460000000001", "--mnc-digits=3"];
const OP2_IMSI: [&str; 3] = ["--imsi", "262010000000002", "--mnc-digits=2"];
const OP3_IMSI: [&str; 3] = ["--imsi", "310150123456789", "--mnc-digits=3"];
const UNKNOWN_IMSI: [&str; 3] = ["--imsi", "001010000000001", "--mnc-digits=2"];

/// A running `bsf-dns serve`, stopped and reaped on drop.
struct BsfDns {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl BsfDns {
    fn start(zones: &Path, log_dir: &Path) -> Self {
        let log = log_dir.join("bsf-dns.log");
        for attempt in 1..=5 {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let child = Command::new(BIN)
                .arg("serve")
                .arg("--zones")
                .arg(zones)
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--threads")
                .arg("1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).expect("bsf-dns log file"))
                .spawn()
                .expect("spawn bsf-dns serve");
            let mut server = BsfDns {
                child,
                addr,
                log: log.clone(),
            };
            let ready = wait_until_answering(addr, APEX, RecordType::SOA, READY_LIMIT, || {
                still_running(&mut server.child, "bsf-dns serve")
            });
            match ready {
                Ok(_) => return server,
                Err(err) => {
                    let text = server.log_text();
                    if attempt < 5 && text.contains("in use") {
                        // The probed port was taken meanwhile: stop this one, try another.
                        drop(server);
                        continue;
                    }
                    panic!("bsf-dns serve did not become ready: {err}\n{text}");
                }
            }
        }
        unreachable!("the last attempt panics or returns")
    }

    fn log_text(&self) -> String {
        format!(
            "--- bsf-dns log ---\n{}",
            fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// Asks for a reload the way an operator would (the file watcher may be quicker).
    fn sighup(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(rc, 0, "SIGHUP to bsf-dns failed");
    }
}

impl Drop for BsfDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a template atomically (temp file + rename), so a watcher never sees half a file.
fn write_template(dir: &Path, file: &str, text: &str) {
    let temp = dir.join(format!(".{file}.part"));
    fs::write(&temp, text).expect("write template");
    fs::rename(&temp, dir.join(file)).expect("rename template");
}

/// bsf-dns with `templates`, and Unbound in front of it; `None` when Unbound is missing.
struct Stack {
    unbound: Unbound,
    server: BsfDns,
    zones: tempfile::TempDir,
    _logs: tempfile::TempDir,
}

impl Stack {
    fn start(templates: &[(&str, &str)]) -> Option<Self> {
        require_tool("unbound", "unbound")?;
        let zones = tempfile::tempdir().expect("zones dir");
        let logs = tempfile::tempdir().expect("log dir");
        for (file, text) in templates {
            write_template(zones.path(), file, text);
        }
        let server = BsfDns::start(zones.path(), logs.path());
        let unbound = Unbound::start(&[StubZone {
            apex: APEX.into(),
            server: server.addr,
        }])?;
        Some(Stack {
            unbound,
            server,
            zones,
            _logs: logs,
        })
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.server.log_text(), self.unbound.log())
    }

    /// Every upstream Unbound contacted is our bsf-dns: nothing went off loopback.
    fn assert_stayed_on_loopback(&self) {
        let contacted = self
            .unbound
            .contacted_servers()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        let ours = format!("{}@{}", self.server.addr.ip(), self.server.addr.port());
        assert!(
            contacted.iter().all(|server| *server == ours),
            "unbound contacted {contacted:?}, expected only {ours}"
        );
    }
}

/// One run of `bsf-dns resolve --json`.
struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

impl Run {
    /// (uri, source) of each candidate, in order.
    fn candidates(&self) -> Vec<(String, String)> {
        self.json["candidates"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| {
                        (
                            c["uri"].as_str().unwrap_or_default().to_owned(),
                            c["source"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn uris(&self) -> Vec<String> {
        self.candidates().into_iter().map(|(uri, _)| uri).collect()
    }
}

fn resolve_json(server: SocketAddr, args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .arg("resolve")
        .args(args)
        .arg("--server")
        .arg(server.to_string())
        .args(["--json", "--timeout", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("run bsf-dns resolve");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("resolve --json printed no JSON ({e}): {stdout}\n{stderr}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

fn resolve_human(server: SocketAddr, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN)
        .arg("resolve")
        .args(args)
        .arg("--server")
        .arg(server.to_string())
        .args(["--timeout", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("run bsf-dns resolve");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(u, s)| ((*u).to_owned(), (*s).to_owned()))
        .collect()
}

#[test]
fn unbound_refuses_other_names_and_stays_on_loopback() {
    // The stub points at a loopback port where nothing listens.
    let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let Some(unbound) = Unbound::start(&[StubZone {
        apex: APEX.into(),
        server: dead,
    }]) else {
        return;
    };
    for name in ["example.com.", "lwm2m.org.example.", "org.", "."] {
        let reply = query(unbound.addr, name, RecordType::A, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", unbound.log()));
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
    }
    let contacted = unbound.contacted_servers().expect("dump_infra");
    assert!(
        contacted.is_empty(),
        "refused names made unbound contact {contacted:?}"
    );

    // A name under the apex goes to the stub, and only there.
    let _ = query(
        unbound.addr,
        "bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::A,
        Duration::from_millis(1500),
    );
    let contacted = unbound.contacted_servers().expect("dump_infra");
    assert_eq!(
        contacted,
        [format!("127.0.0.1@{}", dead.port())],
        "{}",
        unbound.log()
    );
}

#[test]
fn resolve_through_unbound_orders_uris_per_operator() {
    let Some(stack) = Stack::start(&[
        ("313-460.toml", OP1),
        ("262-01.toml", OP2),
        ("310-150.toml", &op3("2001:db8::7")),
    ]) else {
        return;
    };
    let via = stack.unbound.addr;

    // 3-digit MNC: URI records first (by transport preference), SRV adds what URI lacked
    // (the path-less coaps URI), TXT adds nothing new, the addresses give the last resort.
    let run = resolve_json(via, &OP1_IMSI);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, stack.logs());
    assert_eq!(run.json["bsf_name"], "bsf.mnc460.mcc313.lwm2m.org.");
    let op1_expected = pairs(&[
        ("coaps://bs.op1.example:5684/bs", "URI"),
        ("coaps+tcp://bs.op1.example:5684", "URI"),
        ("coap://bs.op1.example", "URI"),
        ("coaps://bs.op1.example:5684", "SRV"),
        ("coaps://bsf.mnc460.mcc313.lwm2m.org:5684", "A/AAAA"),
    ]);
    assert_eq!(run.candidates(), op1_expected, "{}", run.stderr);
    assert_eq!(
        run.json["candidates"][4]["addresses"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Asking bsf-dns directly gives the same list as asking through Unbound.
    assert_eq!(
        resolve_json(stack.server.addr, &OP1_IMSI).candidates(),
        op1_expected
    );
    // Human output: one line per candidate, URI first.
    let (code, stdout, _) = resolve_human(via, &OP1_IMSI);
    assert_eq!(code, 0);
    let firsts: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        firsts,
        op1_expected
            .iter()
            .map(|(u, _)| u.as_str())
            .collect::<Vec<_>>()
    );
    // A device that only speaks coap.
    let run = resolve_json(via, &[&OP1_IMSI[..], &["--transport", "coap"]].concat());
    assert_eq!(
        run.candidates(),
        pairs(&[
            ("coap://bs.op1.example", "URI"),
            ("coap://bsf.mnc460.mcc313.lwm2m.org:5683", "A/AAAA"),
        ])
    );

    // 2-digit MNC with weights 1:3: both orders occur over seeds, a seed fixes the order,
    // and the device's transport preference comes before priorities across transports.
    let mut a_first = 0;
    for seed in 0..20 {
        let seed = seed.to_string();
        let run = resolve_json(via, &[&OP2_IMSI[..], &["--seed", &seed]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.json["bsf_name"], "bsf.mnc01.mcc262.lwm2m.org.");
        let uris = run.uris();
        let mut first_two = uris[..2].to_vec();
        first_two.sort();
        assert_eq!(
            first_two,
            ["coap://a.op2.example:5683", "coap://b.op2.example:5683"]
        );
        assert_eq!(uris[2..], ["coap+tcp://c.op2.example:5683"]);
        if uris[0] == "coap://a.op2.example:5683" {
            a_first += 1;
        }
        let again = resolve_json(via, &[&OP2_IMSI[..], &["--seed", &seed]].concat());
        assert_eq!(again.uris(), uris, "same seed, same order");
    }
    assert!(
        (1..=12).contains(&a_first),
        "weight 1 of 4 came first {a_first} times in 20"
    );
    let run = resolve_json(
        via,
        &[&OP2_IMSI[..], &["--transport", "coap+tcp,coap"]].concat(),
    );
    assert_eq!(run.uris()[0], "coap+tcp://c.op2.example:5683");
    // The name exists, but nothing for coaps: nothing found, exit 2.
    let run = resolve_json(via, &[&OP2_IMSI[..], &["--transport", "coaps"]].concat());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.json["status"], "nothing-published");
    let message = run.json["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("(it does for coap, coap+tcp)"),
        "{message}"
    );

    // An address literal host: URI as written, SRV points at the bsf name.
    let run = resolve_json(via, &OP3_IMSI);
    assert_eq!(
        run.candidates(),
        pairs(&[
            ("coaps://[2001:db8::7]:5684", "URI"),
            ("coaps://bsf.mnc150.mcc310.lwm2m.org:5684", "SRV"),
        ])
    );

    // Unknown operator: NXDOMAIN, exit 2, said plainly.
    let run = resolve_json(via, &UNKNOWN_IMSI);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.json["status"], "unknown-operator");
    let (code, stdout, stderr) = resolve_human(via, &UNKNOWN_IMSI);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("NXDOMAIN"), "{stderr}");

    // Unbound refuses names outside the stub zone: the resolver failed, exit 3.
    let run = resolve_json(via, &[&OP1_IMSI[..], &["--apex", "example.net"]].concat());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.json["status"], "resolver-failed");
    assert_eq!(run.json["failures"][0]["error"], "REFUSED");

    stack.assert_stayed_on_loopback();
}

#[test]
fn an_unreachable_resolver_is_a_failure_not_an_answer() {
    let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let output = Command::new(BIN)
        .args(["resolve", "--imsi", "313460000000001", "--mnc-digits", "3"])
        .args(["--server", &dead.to_string(), "--timeout", "0.3"])
        .stdin(Stdio::null())
        .output()
        .expect("run bsf-dns resolve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the resolver failed"), "{stderr}");
}

/// `dig +short` through Unbound.
fn dig(dig: &Path, server: SocketAddr, record_type: &str, name: &str) -> Vec<String> {
    let output = Command::new(dig)
        .arg(format!("@{}", server.ip()))
        .args([
            "-p",
            &server.port().to_string(),
            "+short",
            "+tries=1",
            "+time=3",
        ])
        .args([record_type, name])
        .output()
        .expect("run dig");
    assert!(
        output.status.success(),
        "dig {record_type} {name}: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn dig_through_unbound_agrees_with_resolve() {
    let Some(dig_path) = require_tool("dig", "dnsutils") else {
        return;
    };
    let Some(stack) = Stack::start(&[("313-460.toml", OP1), ("262-01.toml", OP2)]) else {
        return;
    };
    let via = stack.unbound.addr;
    for imsi in [OP1_IMSI, OP2_IMSI] {
        let run = resolve_json(via, &imsi);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let bsf = run.json["bsf_name"].as_str().expect("bsf_name").to_owned();
        let mut uri_targets = Vec::new();
        let mut srv_uris = Vec::new();
        for (scheme, owner) in [
            ("coaps", "_coaps._udp"),
            ("coaps+tcp", "_coaps._tcp"),
            ("coap", "_coap._udp"),
            ("coap+tcp", "_coap._tcp"),
        ] {
            for line in dig(&dig_path, via, "URI", &format!("{owner}.{bsf}")) {
                // `10 1 "coaps://..."`
                let target = line.split('"').nth(1).expect("quoted URI target");
                uri_targets.push(target.to_owned());
            }
            for line in dig(&dig_path, via, "SRV", &format!("{owner}.{bsf}")) {
                // `10 1 5684 bs.example.`
                let fields: Vec<&str> = line.split_whitespace().collect();
                let host = fields[3].trim_end_matches('.');
                srv_uris.push(format!("{scheme}://{host}:{}", fields[2]));
            }
        }
        let txt_uris: Vec<String> = dig(&dig_path, via, "TXT", &bsf)
            .iter()
            .filter_map(|l| l.trim_matches('"').strip_prefix("uri=").map(str::to_owned))
            .collect();
        let has_address = !dig(&dig_path, via, "A", &bsf).is_empty()
            || !dig(&dig_path, via, "AAAA", &bsf).is_empty();

        // Every URI record is a candidate (they come first, and here none repeat).
        let mut from_uri: Vec<String> = run
            .candidates()
            .into_iter()
            .filter(|(_, source)| source == "URI")
            .map(|(uri, _)| uri)
            .collect();
        from_uri.sort();
        uri_targets.sort();
        assert_eq!(from_uri, uri_targets, "{bsf}");
        // Every other candidate is backed by a record dig sees.
        for (uri, source) in run.candidates() {
            match source.as_str() {
                "URI" => {}
                "SRV" => assert!(srv_uris.contains(&uri), "{uri} not in {srv_uris:?}"),
                "TXT" => assert!(txt_uris.contains(&uri), "{uri} not in {txt_uris:?}"),
                "A/AAAA" => assert!(has_address, "{uri} without A/AAAA"),
                other => panic!("unknown source {other}"),
            }
        }
        // Each TXT uri= is also published as a URI record (one per bootstrap entry).
        for uri in &txt_uris {
            assert!(uri_targets.contains(uri), "TXT {uri} has no URI record");
        }
    }
    // The zero-padded spelling of a 2-digit MNC answers the same through Unbound.
    let plain = dig(
        &dig_path,
        via,
        "URI",
        "_coap._udp.bsf.mnc01.mcc262.lwm2m.org",
    );
    let mut padded = dig(
        &dig_path,
        via,
        "URI",
        "_coap._udp.bsf.mnc001.mcc262.lwm2m.org",
    );
    let mut plain_sorted = plain.clone();
    plain_sorted.sort();
    padded.sort();
    assert_eq!(padded, plain_sorted);
    assert_eq!(plain.len(), 2);

    stack.assert_stayed_on_loopback();
}

#[test]
fn a_template_change_reaches_the_device_once_the_ttl_has_run_out() {
    let Some(stack) = Stack::start(&[("310-150.toml", &op3("2001:db8::7"))]) else {
        return;
    };
    let via = stack.unbound.addr;
    let old = "coaps://[2001:db8::7]:5684";
    let new = "coaps://[2001:db8::8]:5684";
    let owner = "_coaps._udp.bsf.mnc150.mcc310.lwm2m.org.";

    // The old answer, now cached in Unbound for ttl = 2 s.
    assert_eq!(resolve_json(via, &OP3_IMSI).uris()[0], old);

    write_template(stack.zones.path(), "310-150.toml", &op3("2001:db8::8"));
    // bsf-dns reloads on file change; SIGHUP as well, in case the watcher is slow or off.
    let changed = Instant::now();
    let mut hupped = false;
    loop {
        let reply = query(
            stack.server.addr,
            owner,
            RecordType::Unknown(256),
            Duration::from_secs(1),
        );
        let served_new = reply.is_ok_and(|m| {
            m.answers.iter().any(|r| match &r.data {
                RData::Unknown { rdata, .. } => {
                    String::from_utf8_lossy(&rdata.anything).ends_with(new)
                }
                _ => false,
            })
        });
        if served_new {
            break;
        }
        if !hupped && changed.elapsed() > Duration::from_secs(3) {
            stack.server.sighup();
            hupped = true;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "bsf-dns still serves the old URI 10 s after the template changed\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Through Unbound the new URI arrives once the 2 s TTL of the cached answer has run out.
    let switched = Instant::now();
    loop {
        let uris = resolve_json(via, &OP3_IMSI).uris();
        if uris.first().map(String::as_str) == Some(new) {
            eprintln!(
                "new URI through Unbound {:?} after bsf-dns served it",
                switched.elapsed()
            );
            break;
        }
        assert_eq!(
            uris.first().map(String::as_str),
            Some(old),
            "neither old nor new"
        );
        assert!(
            switched.elapsed() < Duration::from_secs(2 + 5),
            "Unbound still answers the old URI well past its 2 s TTL\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stack.assert_stayed_on_loopback();
}
