//! Differential test against a real authoritative server: `bsf-dns export` the zone of ~3,000
//! real networks, serve it with Knot DNS, send the same queries to both and require the same
//! rcode, AA flag and sections (each as a set of records, TTLs included).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

struct Knot {
    _guard: Guard,
    addr: SocketAddr,
}

fn start_knot(dir: &Path, zone_file: &Path) -> Knot {
    let port = free_port();
    let config = dir.join("knot.conf");
    std::fs::write(
        &config,
        format!(
            r#"server:
    listen: 127.0.0.1@{port}
    rundir: "{dir}"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{dir}"
control:
    listen: "{dir}/knot.sock"
log:
  - target: stderr
    any: warning
zone:
  - domain: lwm2m.org
    file: "{zone}"
    zonefile-sync: -1
    journal-content: none
"#,
            dir = dir.display(),
            zone = zone_file.display()
        ),
    )
    .unwrap();
    let mut command = Command::new("knotd");
    command.arg("-c").arg(&config);
    let guard = spawn("knotd", command, dir);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = udp_exchange(addr, &query_bytes("lwm2m.org.", RecordType::SOA, None), 300)
            .and_then(|b| Message::from_vec(&b).ok())
            .is_some_and(|m| !m.answers.is_empty());
        if answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "knotd did not serve the zone:\n{}",
            guard.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Knot {
        _guard: guard,
        addr,
    }
}

fn record_set(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        // Export and serve read the same inputs, so even the SOA serials agree.
        .map(|r| r.to_string().to_ascii_lowercase())
        .collect()
}

fn summary(m: &Message) -> String {
    format!(
        "rcode={} aa={} tc={}\n answer={:#?}\n authority={:#?}\n additional={:#?}",
        m.metadata.response_code,
        m.metadata.authoritative,
        m.metadata.truncation,
        record_set(&m.answers),
        record_set(&m.authorities),
        record_set(&m.additionals)
    )
}

#[test]
fn same_answers_as_knot_for_the_real_operator_table() {
    if !have_tool("knotd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    let pairs = write_real_templates(&zones);
    assert!(pairs.len() > 3000, "{} networks", pairs.len());

    let export = Command::new(BIN)
        .arg("export")
        .arg("--zones")
        .arg(&zones)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let zone_file = dir.path().join("lwm2m.org.zone");
    std::fs::write(&zone_file, &export.stdout).unwrap();

    let ours = Server::start(&zones, None, &[]);
    let knot = start_knot(dir.path(), &zone_file);

    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut queries: Vec<(String, RecordType)> = Vec::new();
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::MX,
        RecordType::NS,
    ];
    let service_types = [RecordType::SRV, RecordType::Unknown(256), RecordType::A];
    let mut sample = pairs.clone();
    sample.shuffle(&mut rng);
    for p in sample.iter().take(260) {
        let mut spellings = vec![p.mnc.clone()];
        if p.mnc.len() == 2 {
            spellings.push(format!("0{}", p.mnc));
        }
        for mnc in spellings {
            let bsf = format!("bsf.mnc{mnc}.mcc{}.lwm2m.org.", p.mcc);
            let rtype = types[rng.gen_range(0..types.len())];
            queries.push((bsf.clone(), rtype));
            for service in ["_coaps._udp", "_coap._udp", "_coaps._tcp"] {
                let rtype = service_types[rng.gen_range(0..service_types.len())];
                queries.push((format!("{service}.{bsf}"), rtype));
            }
            queries.push((format!("_udp.{bsf}"), RecordType::SRV));
            queries.push((format!("mnc{mnc}.mcc{}.lwm2m.org.", p.mcc), RecordType::A));
            queries.push((format!("mcc{}.lwm2m.org.", p.mcc), RecordType::TXT));
            queries.push((format!("www.{bsf}"), RecordType::A));
        }
        // Unknown networks under a known country.
        queries.push((
            format!(
                "bsf.mnc9{:02}.mcc{}.lwm2m.org.",
                rng.gen_range(0..100),
                p.mcc
            ),
            RecordType::A,
        ));
    }
    for (name, rtype) in [
        ("lwm2m.org.", RecordType::NS),
        ("lwm2m.org.", RecordType::A),
        ("ns1.lwm2m.org.", RecordType::A),
        ("ns1.lwm2m.org.", RecordType::AAAA),
        ("nothing.lwm2m.org.", RecordType::A),
        ("mcc999.lwm2m.org.", RecordType::A),
    ] {
        queries.push((name.into(), rtype));
    }
    assert!(queries.len() >= 1000, "{} queries", queries.len());

    let mut differences = Vec::new();
    for (name, rtype) in &queries {
        let name = &mixed_case(name, &mut rng);
        let a = ask_udp(ours.addr, name, *rtype, Some(1232));
        let b = ask_udp(knot.addr, name, *rtype, Some(1232));
        let same = a.metadata.response_code == b.metadata.response_code
            && a.metadata.authoritative == b.metadata.authoritative
            && a.metadata.truncation == b.metadata.truncation
            && record_set(&a.answers) == record_set(&b.answers)
            && record_set(&a.authorities) == record_set(&b.authorities)
            && record_set(&a.additionals) == record_set(&b.additionals);
        if !same {
            differences.push(format!(
                "{name} {rtype}\n bsf-dns: {}\n knot:    {}",
                summary(&a),
                summary(&b)
            ));
        }
    }
    // The SOA itself, serial included: both derive from the same inputs.
    let soa_a = ask_udp(ours.addr, "lwm2m.org.", RecordType::SOA, None);
    let soa_b = ask_udp(knot.addr, "lwm2m.org.", RecordType::SOA, None);
    assert_eq!(soa_a.answers[0].to_string(), soa_b.answers[0].to_string());
    assert!(
        differences.is_empty(),
        "{} of {} queries differ; first ones:\n{}",
        differences.len(),
        queries.len(),
        differences
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Random letter case, as resolvers using 0x20 randomisation send.
fn mixed_case(name: &str, rng: &mut StdRng) -> String {
    name.chars()
        .map(|c| {
            if rng.gen_bool(0.5) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}
