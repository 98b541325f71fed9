//! Hot reload on a running server: edits, new and deleted files, editor-style renames, bad
//! edits (old data kept), serials, reload under continuous load, and a 100k-network set.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

const NAME: &str = "bsf.mnc460.mcc313.lwm2m.org.";

fn template(address: &str) -> String {
    format!(
        "mcc = \"313\"\nmnc = [\"460\"]\nttl = 5\naddresses = [\"{address}\"]\n[[bootstrap]]\nuri = \"coaps://bs.example.net\"\n"
    )
}

fn address_of(m: &Message) -> Option<String> {
    m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

/// Polls until `check` holds (bounded), returning how long it took.
fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what}: not seen within {limit:?}");
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn edits_additions_deletions_and_renames_are_served() {
    let (_dir, zones) = temp_zones(&[("313-460.toml", &template("192.0.2.1"))]);
    let server = Server::start(&zones, None, &[]);
    assert_eq!(
        address_of(&server.ask(NAME, RecordType::A)).as_deref(),
        Some("192.0.2.1")
    );
    let first_serial = server.serial();

    std::fs::write(zones.join("313-460.toml"), template("192.0.2.2")).unwrap();
    let took = wait_for("edited answer", Duration::from_secs(2), || {
        address_of(&server.ask(NAME, RecordType::A)).as_deref() == Some("192.0.2.2")
    });
    eprintln!("edit served after {took:?}");
    let second_serial = server.serial();
    assert!(
        second_serial > first_serial,
        "serial increases: {first_serial} -> {second_serial}"
    );

    let other = "mcc = \"262\"\nmnc = [\"02\"]\naddresses = [\"198.51.100.2\"]\n[[bootstrap]]\nuri = \"coaps://x.example\"\n";
    std::fs::write(zones.join("262-02.toml"), other).unwrap();
    wait_for("new operator", Duration::from_secs(2), || {
        server
            .ask("bsf.mnc02.mcc262.lwm2m.org.", RecordType::A)
            .metadata
            .response_code
            == ResponseCode::NoError
    });
    std::fs::remove_file(zones.join("262-02.toml")).unwrap();
    wait_for("deleted operator", Duration::from_secs(2), || {
        server
            .ask("bsf.mnc02.mcc262.lwm2m.org.", RecordType::A)
            .metadata
            .response_code
            == ResponseCode::NXDomain
    });

    // How editors save: write a temporary file, then rename it over the original.
    let wait_quiet = || std::thread::sleep(Duration::from_millis(600));
    wait_quiet();
    let applied_before = count(&server.guard.log_text(), "reload: new zone served");
    let tmp = zones.join(".313-460.toml.swp");
    std::fs::write(&tmp, template("192.0.2.3")).unwrap();
    std::fs::rename(&tmp, zones.join("313-460.toml")).unwrap();
    wait_for("renamed file", Duration::from_secs(2), || {
        address_of(&server.ask(NAME, RecordType::A)).as_deref() == Some("192.0.2.3")
    });
    wait_quiet();
    let applied_after = count(&server.guard.log_text(), "reload: new zone served");
    assert_eq!(
        applied_after - applied_before,
        1,
        "one reload for write+rename:\n{}",
        server.guard.log_text()
    );
}

/// Lays out `dir` as Kubernetes mounts a ConfigMap: the data in a timestamped directory,
/// `..data` linking to it, and each file a link through `..data`. An update writes a new
/// directory, renames a new `..data` link over the old one and removes the old directory.
fn configmap_update(dir: &Path, version: &str, files: &[(&str, String)]) {
    let data = dir.join(format!("..{version}"));
    std::fs::create_dir(&data).unwrap();
    for (name, text) in files {
        std::fs::write(data.join(name), text).unwrap();
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
    let previous = std::fs::read_link(dir.join("..data")).ok();
    std::os::unix::fs::symlink(format!("..{version}"), dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if let Some(previous) = previous {
        std::fs::remove_dir_all(dir.join(previous)).unwrap();
    }
}

#[test]
fn configmap_style_updates_through_a_swapped_link_are_served() {
    let (dir, zones) = temp_zones(&[]);
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    let settings = |refresh: u32| format!("[soa]\nrefresh = {refresh}\n");
    configmap_update(
        &zones,
        "2026_11_29_a",
        &[("313-460.toml", template("192.0.2.1"))],
    );
    configmap_update(
        &config_dir,
        "2026_11_29_a",
        &[("settings.toml", settings(1111))],
    );
    let server = Server::start(&zones, Some(&config_dir.join("settings.toml")), &[]);
    let refresh = || match server.ask("lwm2m.org.", RecordType::SOA).answers.first() {
        Some(record) => match &record.data {
            RData::SOA(soa) => soa.refresh,
            _ => 0,
        },
        None => 0,
    };
    assert_eq!(
        address_of(&server.ask(NAME, RecordType::A)).as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(refresh(), 1111);

    // The templates' and the settings' own names see no event: only `..data` changes.
    configmap_update(
        &zones,
        "2026_11_29_b",
        &[("313-460.toml", template("192.0.2.2"))],
    );
    wait_for(
        "template updated through ..data",
        Duration::from_secs(5),
        || address_of(&server.ask(NAME, RecordType::A)).as_deref() == Some("192.0.2.2"),
    );
    configmap_update(
        &config_dir,
        "2026_11_29_b",
        &[("settings.toml", settings(2222))],
    );
    wait_for(
        "settings updated through ..data",
        Duration::from_secs(5),
        || refresh() == 2222,
    );
}

#[test]
fn a_zones_link_pointed_at_another_release_is_followed() {
    // Deploy tools ship each version to a directory of its own and switch a link.
    let dir = tempfile::tempdir().unwrap();
    let release = |name: &str, address: &str| {
        let path = dir.path().join("releases").join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("313-460.toml"), template(address)).unwrap();
        path
    };
    let zones = dir.path().join("zones");
    let first = release("a", "192.0.2.1");
    std::os::unix::fs::symlink("releases/a", &zones).unwrap();
    let server = Server::start(&zones, None, &[]);
    let answer = || address_of(&server.ask(NAME, RecordType::A));
    assert_eq!(answer().as_deref(), Some("192.0.2.1"));

    let second = release("b", "192.0.2.2");
    std::os::unix::fs::symlink("releases/b", dir.path().join("zones.new")).unwrap();
    std::fs::rename(dir.path().join("zones.new"), &zones).unwrap();
    wait_for("the new release", Duration::from_secs(5), || {
        answer().as_deref() == Some("192.0.2.2")
    });
    // The watch moved with the link: an edit in the new release is served, one in the old
    // release is not.
    std::fs::write(second.join("313-460.toml"), template("192.0.2.3")).unwrap();
    wait_for("an edit in the new release", Duration::from_secs(5), || {
        answer().as_deref() == Some("192.0.2.3")
    });
    std::fs::write(first.join("313-460.toml"), template("192.0.2.9")).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(answer().as_deref(), Some("192.0.2.3"));
    assert!(
        server
            .guard
            .log_text()
            .contains("zones link points elsewhere"),
        "{}",
        server.guard.log_tail()
    );
}

#[test]
fn bad_edits_keep_the_old_zone_and_name_file_and_line() {
    let (_dir, zones) = temp_zones(&[("313-460.toml", &template("192.0.2.1"))]);
    let server = Server::start(&zones, None, &[]);
    let serial_before = server.serial();
    std::fs::write(
        zones.join("313-460.toml"),
        "mcc = \"313\"\nmnc = [\"460\"]\naddresses = [\"192.0.2.999\"]\n[[bootstrap]]\nuri = \"coaps://bs.example.net\"\n",
    )
    .unwrap();
    wait_for("rejection logged", Duration::from_secs(3), || {
        server
            .guard
            .log_text()
            .contains("313-460.toml:3: field `addresses[0]`")
    });
    assert!(server.guard.log_text().contains("reload rejected"));
    assert_eq!(
        address_of(&server.ask(NAME, RecordType::A)).as_deref(),
        Some("192.0.2.1"),
        "old answer kept"
    );
    assert_eq!(server.serial(), serial_before);

    // A duplicate network in a second file is rejected whole, too.
    std::fs::write(zones.join("dup.toml"), template("192.0.2.7")).unwrap();
    std::fs::write(zones.join("313-460.toml"), template("192.0.2.5")).unwrap();
    wait_for("duplicate rejected", Duration::from_secs(3), || {
        server.guard.log_text().contains("also claimed by")
    });
    assert_eq!(
        address_of(&server.ask(NAME, RecordType::A)).as_deref(),
        Some("192.0.2.1")
    );

    std::fs::remove_file(zones.join("dup.toml")).unwrap();
    wait_for("fixed answer", Duration::from_secs(2), || {
        address_of(&server.ask(NAME, RecordType::A)).as_deref() == Some("192.0.2.5")
    });
    assert!(server.serial() > serial_before);
}

#[test]
fn unchanged_content_keeps_the_serial_and_sighup_reloads() {
    let (_dir, zones) = temp_zones(&[("313-460.toml", &template("192.0.2.1"))]);
    let server = Server::start(&zones, None, &["--no-watch"]);
    let before = server.serial();
    // Rewrite with the same content and ask for a reload: nothing changes.
    std::fs::write(zones.join("313-460.toml"), template("192.0.2.1")).unwrap();
    server.guard.signal(libc::SIGHUP);
    wait_for("no-op reload logged", Duration::from_secs(3), || {
        server.guard.log_text().contains("content unchanged")
    });
    assert_eq!(server.serial(), before, "no serial bump without a change");
    // With --no-watch, a change waits for SIGHUP.
    std::fs::write(zones.join("313-460.toml"), template("192.0.2.9")).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        address_of(&server.ask(NAME, RecordType::A)).as_deref(),
        Some("192.0.2.1")
    );
    server.guard.signal(libc::SIGHUP);
    wait_for("SIGHUP reload", Duration::from_secs(2), || {
        address_of(&server.ask(NAME, RecordType::A)).as_deref() == Some("192.0.2.9")
    });
    assert!(server.serial() > before);
}

/// The TTL of the first answer record.
fn ttl_of(m: &Message) -> u32 {
    m.answers.first().expect("an answer record").ttl
}

#[test]
fn a_default_ttl_edit_publishes_a_change_only_where_a_template_takes_the_default() {
    let (dir, zones) = temp_zones(&[("313-460.toml", &template("192.0.2.1"))]);
    let config = dir.path().join("bsf-dns.toml");
    std::fs::write(&config, "default-ttl = 300\n").unwrap();
    let server = Server::start(&zones, Some(&config), &["--no-watch"]);
    let first = server.serial();
    let reloads = |server: &Server| count(&server.guard.log_text(), "reload: ");

    // Every template sets its own TTL: nothing to publish, the serial stays.
    std::fs::write(&config, "default-ttl = 600\n").unwrap();
    server.guard.signal(libc::SIGHUP);
    wait_for("no-op reload logged", Duration::from_secs(3), || {
        server.guard.log_text().contains("content unchanged")
    });
    assert_eq!(server.serial(), first);
    assert_eq!(ttl_of(&server.ask(NAME, RecordType::A)), 5);

    // A template without one takes the default: a change, with the TTL in its answers.
    let untimed = "mcc = \"262\"\nmnc = [\"01\"]\naddresses = [\"198.51.100.7\"]\n[[bootstrap]]\nuri = \"coaps://bs.example.de\"\n";
    std::fs::write(zones.join("262-01.toml"), untimed).unwrap();
    let before = reloads(&server);
    server.guard.signal(libc::SIGHUP);
    let german = "bsf.mnc01.mcc262.lwm2m.org.";
    wait_for("new template served", Duration::from_secs(3), || {
        server.ask(german, RecordType::A).response_code == ResponseCode::NoError
    });
    assert!(reloads(&server) > before);
    let second = server.serial();
    assert!(second > first);
    assert_eq!(ttl_of(&server.ask(german, RecordType::A)), 600);

    // Now the edit changes that network's answers (and only those), under a new serial.
    std::fs::write(&config, "default-ttl = 900\n").unwrap();
    server.guard.signal(libc::SIGHUP);
    wait_for("new default TTL served", Duration::from_secs(3), || {
        ttl_of(&server.ask(german, RecordType::A)) == 900
    });
    assert!(server.serial() > second);
    assert_eq!(ttl_of(&server.ask(NAME, RecordType::A)), 5);
}

#[test]
fn a_restart_keeps_the_serial_unless_the_inputs_changed_meanwhile() {
    let (_dir, zones) = temp_zones(&[("313-460.toml", &template("192.0.2.1"))]);
    let first = Server::start(&zones, None, &["--no-watch"]).serial();
    // Change times count whole seconds: each start below comes in a later second than the
    // serial, so that a serial taken from the clock would differ.
    let clock_past_first = || {
        wait_for("the clock past the serial", Duration::from_secs(3), || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .is_ok_and(|now| now.as_secs() > u64::from(first))
        })
    };
    // Over the same inputs: the same serial, so secondaries have nothing to transfer; and the
    // zone `export` writes carries it too.
    clock_past_first();
    let again = Server::start(&zones, None, &["--no-watch"]);
    assert_eq!(again.serial(), first, "restart over unchanged inputs");
    let export = std::process::Command::new(BIN)
        .args(["export", "--zones"])
        .arg(&zones)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&export.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("SOA") && l.contains(&format!(" {first} "))),
        "export serial, expected {first}:\n{text}"
    );
    drop(again);
    // A change while no server runs: a later serial after the next start.
    std::fs::write(zones.join("313-460.toml"), template("192.0.2.7")).unwrap();
    let changed = Server::start(&zones, None, &["--no-watch"]);
    assert!(
        changed.serial() > first,
        "{} after {first}",
        changed.serial()
    );
    assert_eq!(
        address_of(&changed.ask(NAME, RecordType::A)).as_deref(),
        Some("192.0.2.7")
    );
}

/// Version `n` of a template whose SRV port and additional-section address both carry `n`: a
/// response mixing two snapshots would show two different versions.
fn versioned(n: u32) -> String {
    format!(
        "mcc = \"313\"\nmnc = [\"460\"]\nttl = 5\n[[bootstrap]]\nuri = \"coap://192.0.2.{n}:{}\"\n",
        5000 + n
    )
}

#[test]
fn reload_under_load_loses_nothing_and_never_mixes() {
    let (_dir, zones) = temp_zones(&[("313-460.toml", &versioned(1))]);
    let server = Server::start(&zones, None, &["--threads", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let addr = server.addr;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (stop, answered) = (stop.clone(), answered.clone());
        clients.push(std::thread::spawn(move || {
            let mut problems = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let query = query_bytes(
                    "_coap._udp.bsf.mnc460.mcc313.lwm2m.org.",
                    RecordType::SRV,
                    Some(1232),
                );
                let Some(bytes) = udp_exchange(addr, &query, 2000) else {
                    problems.push("unanswered query".to_string());
                    continue;
                };
                let m = Message::from_vec(&bytes).unwrap();
                let port = match m.answers.first().map(|r| &r.data) {
                    Some(RData::SRV(s)) => s.port,
                    _ => {
                        problems.push(format!("bad answer: {m:?}"));
                        continue;
                    }
                };
                let mut additional = m.clone();
                additional.answers = m.additionals.clone();
                let extra = address_of(&additional);
                let expected = format!("192.0.2.{}", port - 5000);
                if extra.as_deref() != Some(expected.as_str()) || m.answers.len() != 1 {
                    problems.push(format!("mixed snapshot: port {port} with {extra:?}"));
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
            problems
        }));
    }
    let writer_deadline = Instant::now() + Duration::from_secs(8);
    let mut version = 1;
    let path = zones.join("313-460.toml");
    while Instant::now() < writer_deadline {
        version += 1;
        if version % 3 == 0 {
            std::fs::write(&path, "mcc = \"313\"\nthis is not toml\n").unwrap();
        } else {
            std::fs::write(&path, versioned(version % 200 + 1)).unwrap();
        }
        // Longer than the debounce quiet period, so most writes are reloads of their own.
        std::thread::sleep(Duration::from_millis(400));
    }
    std::fs::write(&path, versioned(250)).unwrap();
    wait_for("final version", Duration::from_secs(3), || {
        matches!(server.ask("_coap._udp.bsf.mnc460.mcc313.lwm2m.org.", RecordType::SRV).answers.first().map(|r| &r.data),
            Some(RData::SRV(s)) if s.port == 5250)
    });
    stop.store(true, Ordering::Relaxed);
    let problems: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let total = answered.load(Ordering::Relaxed);
    assert!(total > 200, "only {total} queries answered");
    assert!(
        problems.is_empty(),
        "{} problems in {total} queries: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    let log = server.guard.log_text();
    assert!(count(&log, "reload: new zone served") >= 5, "{log}");
    assert!(count(&log, "reload rejected") >= 3, "{log}");
}

/// 100 files of 1,000 networks each.
fn write_large_set(zones: &Path, address: &str) {
    for mcc in 100..200 {
        let mncs: Vec<String> = (0..1000).map(|m| format!("\"{m:03}\"")).collect();
        let text = format!(
            "mcc = \"{mcc}\"\nmnc = [{}]\naddresses = [\"{address}\"]\n[[bootstrap]]\nuri = \"coaps://bs.mcc{mcc}.example.net\"\n",
            mncs.join(", ")
        );
        std::fs::write(zones.join(format!("{mcc}.toml")), text).unwrap();
    }
}

#[test]
fn a_hundred_thousand_networks_reload_without_stalling_answers() {
    let (_dir, zones) = temp_zones(&[]);
    write_large_set(&zones, "192.0.2.1");
    let server = Server::start(&zones, None, &["--threads", "2"]);
    let probe = "bsf.mnc999.mcc199.lwm2m.org.";
    assert_eq!(
        address_of(&server.ask(probe, RecordType::A)).as_deref(),
        Some("192.0.2.1")
    );
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr;
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut answered, mut unanswered) = (0, 0);
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let query = query_bytes("bsf.mnc123.mcc150.lwm2m.org.", RecordType::A, None);
                match udp_exchange(addr, &query, 2000) {
                    Some(_) => answered += 1,
                    None => unanswered += 1,
                }
            }
            (answered, unanswered)
        })
    };
    std::fs::write(
        zones.join("199.toml"),
        std::fs::read_to_string(zones.join("199.toml"))
            .unwrap()
            .replace("192.0.2.1", "192.0.2.2"),
    )
    .unwrap();
    let took = wait_for("large reload", Duration::from_secs(90), || {
        address_of(&server.ask(probe, RecordType::A)).as_deref() == Some("192.0.2.2")
    });
    stop.store(true, Ordering::Relaxed);
    let (answered, unanswered) = client.join().unwrap();
    eprintln!("100k-network reload served after {took:?}; {answered} queries answered meanwhile");
    assert_eq!(unanswered, 0, "queries lost during the reload");
    assert!(answered > 0);
}

/// The port and target of the first SRV answer, and the addresses in the additional section.
fn srv_and_glue(m: &Message) -> (Option<(u16, String)>, Vec<String>) {
    let srv = m.answers.iter().find_map(|r| match &r.data {
        RData::SRV(s) => Some((s.port, s.target.to_string())),
        _ => None,
    });
    let glue = m
        .additionals
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    (srv, glue)
}

#[test]
fn srv_targets_in_another_country_keep_their_addresses_across_reloads() {
    // One operator's bootstrap server is another operator's bsf name, under another MCC: the
    // SRV answer carries that name's address as additional data. Reloads rebuild only the
    // countries whose templates changed; the other country's records must still be found.
    let target = "bsf.mnc480.mcc311.lwm2m.org.";
    let pointing = |port: u16| {
        format!(
            "mcc = \"313\"\nmnc = [\"460\"]\nttl = 5\naddresses = [\"192.0.2.1\"]\n[[bootstrap]]\nuri = \"coaps://bsf.mnc480.mcc311.lwm2m.org:{port}\"\n"
        )
    };
    let target_template = |address: &str| {
        format!(
            "mcc = \"311\"\nmnc = [\"480\"]\nttl = 5\naddresses = [\"{address}\"]\n[[bootstrap]]\nuri = \"coaps://bs.example.net\"\n"
        )
    };
    let (_dir, zones) = temp_zones(&[
        ("313-460.toml", &pointing(5684)),
        ("311-480.toml", &target_template("192.0.2.80")),
    ]);
    let server = Server::start(&zones, None, &[]);
    let srv_name = "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.";
    let ask = || srv_and_glue(&server.ask(srv_name, RecordType::SRV));
    assert_eq!(
        ask(),
        (
            Some((5684, target.to_string())),
            vec!["192.0.2.80".to_string()]
        )
    );

    // Only the pointing country changes: the target's country is reused as it was.
    std::fs::write(zones.join("313-460.toml"), pointing(5685)).unwrap();
    wait_for("new port", Duration::from_secs(3), || {
        ask().0.is_some_and(|(port, _)| port == 5685)
    });
    assert_eq!(
        ask(),
        (
            Some((5685, target.to_string())),
            vec!["192.0.2.80".to_string()]
        ),
        "the target's address after a reload of the pointing country only"
    );

    // Only the target's country changes: the pointing answer follows the new address.
    std::fs::write(zones.join("311-480.toml"), target_template("192.0.2.81")).unwrap();
    wait_for("new target address", Duration::from_secs(3), || {
        ask().1 == vec!["192.0.2.81".to_string()]
    });
    assert_eq!(
        ask(),
        (
            Some((5685, target.to_string())),
            vec!["192.0.2.81".to_string()]
        )
    );
}
