//! `bench/compare.sh` end to end, on this build's own binaries: the one command the README
//! gives an operator still runs through. It starts bsf-dns, NSD, Knot and the floor
//! responder, measures every scenario, writes the report and its verdicts, and stops every
//! server it started.
//!
//! The binaries are the debug build the tests run on (`--bin`), the rounds one second long:
//! the figures say nothing about performance and no verdict of the performance rows is
//! asserted. What is asserted holds on any build: each server answered, bsf-dns answered
//! every query right and lost none at a fixed rate it keeps up with, the reload probe saw the
//! new answer with nothing lost, every target row has a verdict, and no server outlives the
//! script.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The script's own time limit (it takes well under a minute here); past it the test stops
/// the script's whole process group and fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the script and its servers get to stop on SIGTERM before they are killed.
const GRACE: Duration = Duration::from_secs(10);

/// Servers of the comparison and the scenarios each is measured in.
const SERVERS: [&str; 4] = ["bsf-dns", "floor", "nsd", "knot"];
const SCENARIOS: [&str; 3] = ["max", "fixed", "half"];

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The peers the script starts and the two cores it pins to: there, or the test is skipped
/// (outside CI) or fails (in CI, whose `.ci/run` installs the peers).
fn can_run_script() -> bool {
    let missing: Vec<&str> = ["nsd", "knotd", "taskset"]
        .into_iter()
        .filter(|tool| find_tool(tool).is_none())
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let why = if !missing.is_empty() {
        format!("{missing:?} not installed (apt-get install nsd knot util-linux)")
    } else if cores < 2 {
        format!("the script pins servers and client to two cores; this machine has {cores}")
    } else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("{why}, and CI is set: .ci/run must provide them");
    }
    eprintln!("SKIPPED: {why}; set CI=1 to fail instead");
    false
}

/// The directory holding this build's `bsf-bench`, `bsf-floor` and (built by the workspace's
/// test run, as the README's test command does) `bsf-dns`.
fn binaries() -> PathBuf {
    let bench = Path::new(env!("CARGO_BIN_EXE_bsf-bench"));
    let dir = bench
        .parent()
        .expect("bsf-bench has a directory")
        .to_path_buf();
    assert!(
        dir.join("bsf-dns").is_file(),
        "no bsf-dns beside {}: run the workspace's tests (cargo test --workspace), which build it",
        bench.display()
    );
    dir
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn count(run: &Value, field: &str) -> u64 {
    run[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {field:?} in {run}"))
}

/// Runs the script; on a timeout stops its process group (the script, its load generator and
/// the servers) and fails.
fn run_script(args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("compare.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start bench/compare.sh");
    let group = child.id() as i32;
    // The outputs are small (a table and a line per run); they are read once it has ended.
    let started = Instant::now();
    loop {
        match child.try_wait().expect("poll the script") {
            Some(_) => break,
            None if started.elapsed() > SCRIPT_TIMEOUT => {
                // SAFETY: signals the process group this test created; no memory is involved.
                unsafe { libc::kill(-group, libc::SIGTERM) };
                // Its servers stop on SIGTERM; anything still there after a grace period is
                // killed.
                let grace = Instant::now();
                while child.try_wait().ok().flatten().is_none() && grace.elapsed() < GRACE {
                    std::thread::sleep(Duration::from_millis(100));
                }
                // SAFETY: as above.
                unsafe { libc::kill(-group, libc::SIGKILL) };
                let output = child
                    .wait_with_output()
                    .expect("collect the stopped script");
                panic!(
                    "compare.sh still running after {SCRIPT_TIMEOUT:?}; stopped. stderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    child
        .wait_with_output()
        .expect("collect the script's output")
}

#[test]
fn compare_runs_every_scenario_and_stops_every_server() {
    if !can_run_script() {
        return;
    }
    let bin = binaries();
    let out = tempfile_dir();
    let out_arg = out.to_str().expect("temporary directory is UTF-8");
    let bin_arg = bin.to_str().expect("target directory is UTF-8");
    let output = run_script(&[
        "--quick",
        "--rounds",
        "1",
        "--duration",
        "1",
        "--operators",
        "300",
        "--large",
        "3500",
        "--fixed-rate",
        "5000",
        "--no-dnsperf",
        "--no-install",
        // Never wait for a quiet machine nor repeat a run: nothing here is a measurement.
        "--max-other",
        "2",
        "--bin",
        bin_arg,
        "--out",
        out_arg,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);

    // First, as it must hold however the script ended: every server it started has stopped.
    // Their PIDs are in the readiness records; any still running is stopped here before the
    // test fails.
    let servers = started_servers(&out);
    let left: Vec<String> = servers
        .iter()
        .filter_map(|(record, pid)| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let ours = ["bsf-compare.", "bsf-floor"]
                .iter()
                .any(|m| cmdline.contains(m));
            ours.then(|| {
                // SAFETY: signals a server process the script started; no memory involved.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
                format!("{pid} ({record}): {cmdline}")
            })
        })
        .collect();
    assert!(
        output.status.success(),
        "compare.sh failed: {}\n{stderr}",
        output.status
    );
    assert!(
        left.is_empty(),
        "servers still running after the script: {left:?}"
    );
    // Four servers, the four of the two-thread runs, three with the large set.
    assert_eq!(
        servers.len(),
        11,
        "readiness records in {}: {servers:?}",
        out.display()
    );

    // Every server measured in every scenario, each answering; bsf-dns and the peers right.
    for scenario in SCENARIOS {
        for server in SERVERS {
            let run = read_json(&out.join(format!("{scenario}-{server}-r1.json")));
            assert!(count(&run, "answered") > 0, "{scenario} {server}: {run}");
            // Measured in turns of 0.1 s with the other servers (bsf-bench interleave).
            assert_eq!(count(&run, "windows"), 10, "{scenario} {server}: {run}");
            assert_eq!(run["tags"]["server"], server, "{run}");
            assert_eq!(run["tags"]["scenario"], scenario, "{run}");
            assert_eq!(run["tags"]["round"], "1", "{run}");
            if server != "floor" {
                assert_eq!(count(&run, "wrong"), 0, "{scenario} {server}: {run}");
            }
        }
    }
    let fixed = read_json(&out.join("fixed-bsf-dns-r1.json"));
    assert_eq!(
        count(&fixed, "lost"),
        0,
        "bsf-dns lost queries at 5,000 q/s: {fixed}"
    );
    assert!(
        fixed["server_cpu"].is_object(),
        "no server CPU measured: {fixed}"
    );
    // One thread vs two, bsf-dns and the floor, at maximum load and at the fixed rate.
    for (prefix, server) in [("bsf", "bsf-dns"), ("floor", "floor")] {
        for threads in ["t1", "t2"] {
            for scenario in ["cores2", "cores2-rate"] {
                let file = format!("{scenario}-{prefix}-{threads}-r1.json");
                let run = read_json(&out.join(&file));
                assert!(count(&run, "answered") > 0, "{file}: {run}");
                assert_eq!(count(&run, "windows"), 10, "{file}: {run}");
                assert_eq!(run["tags"]["server"], server, "{file}: {run}");
                assert_eq!(
                    run["tags"]["scenario"],
                    format!("{scenario}-{threads}"),
                    "{file}: {run}"
                );
                if server == "bsf-dns" {
                    assert_eq!(count(&run, "wrong"), 0, "{file}: {run}");
                }
                // Threads that worked, as /proc counts them (in clock ticks: the floor at the
                // fixed rate may well use too few in 1 s for its second thread to show).
                if server == "bsf-dns" || scenario == "cores2" {
                    let seen = run["server_threads"].as_array().map_or(0, Vec::len);
                    let want = if threads == "t1" { 1 } else { 2 };
                    assert_eq!(seen, want, "{file}: {run}");
                }
                if scenario == "cores2-rate" {
                    // Half of bsf-dns's maximum, open loop.
                    assert!(
                        run["target_qps"].as_f64().is_some_and(|q| q > 0.0),
                        "{file}"
                    );
                    assert_eq!(count(&run, "lost"), 0, "{file}: {run}");
                }
            }
        }
    }

    // The reload probes saw the changed template served, losing nothing meanwhile.
    for (file, operators) in [("reload-main.json", "300"), ("reload-large.json", "3500")] {
        let reload = read_json(&out.join(file));
        let reload_ms = reload["reload_ms"].as_f64();
        assert!(reload_ms.is_some_and(|ms| ms > 0.0), "{file}: {reload}");
        assert_eq!(reload["load"]["tags"]["operators"], operators, "{file}");
        assert_eq!(count(&reload["load"], "lost"), 0, "{file}: {reload}");
        assert_eq!(count(&reload["load"], "wrong"), 0, "{file}: {reload}");
    }

    // The report: the table on standard output and in report.md, a verdict for every target.
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert_eq!(report, stdout, "report.md is what was printed");
    for row in [
        "max rate, answered q/s (closed loop)",
        "CPU µs per query at 5k q/s (open loop)",
        "p99 latency at 50% of NSD max",
        "memory after load: PSS of process tree, MiB",
        "zone load time (start → first answer), ms",
        "large set: zone load time, ms",
        "reload: template change → new answer (3500 operators)",
        "bsf-dns --threads 2 on cores 0+1",
        "floor --threads 2 on cores 0+1",
        "per-core capacity, two threads ÷ one",
    ] {
        assert!(report.contains(row), "report has no row {row:?}:\n{report}");
    }
    let verdicts = read_json(&out.join("summary.json"));
    let verdicts = verdicts.as_array().expect("summary.json lists the targets");
    assert_eq!(verdicts.len(), 13, "{verdicts:?}");
    for verdict in verdicts {
        assert!(verdict["pass"].is_boolean(), "no verdict: {verdict}");
        let target = verdict["target"].as_str().unwrap_or_default();
        if target.starts_with("bsf-dns: no wrong answer") {
            assert_eq!(verdict["pass"], true, "{verdict}");
        }
    }

    let _ = std::fs::remove_dir_all(&out);
}

/// The servers the script started: each readiness record (`load-*.json`) and its PID.
fn started_servers(results: &Path) -> Vec<(String, i32)> {
    let mut servers = Vec::new();
    // No directory: the script ended before it started anything.
    let Ok(entries) = std::fs::read_dir(results) else {
        return servers;
    };
    for entry in entries {
        let path = entry.expect("results entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.starts_with("load-") && name.ends_with(".json")) {
            continue;
        }
        let pid = read_json(&path)["server_pid"]
            .as_i64()
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or_else(|| panic!("{name} has no server_pid"));
        servers.push((name.to_string(), pid));
    }
    servers.sort();
    servers
}

/// A fresh results directory of this test's own (the script creates it).
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bsf-compare-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
