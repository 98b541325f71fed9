//! Scale-out with real secondaries: bsf-dns as the primary, Knot (TSIG) and NSD (address
//! ACL) as secondaries on loopback. Both transfer the zone, answer a few hundred queries
//! exactly as bsf-dns does, and follow a template change through NOTIFY.
//!
//! Needs the Debian packages `knot` and `nsd` (CI installs them).
//!
//! What is compared: RCODE, AA, the answer section as a set of records with TTLs, and the SOA
//! (with its RFC 2308 negative TTL) in negative answers. The rest of the authority section and
//! the additional section may differ by each server's policy (e.g. which glue it adds), so they
//! are reported but do not fail the test.

mod common;
#[path = "common/secondaries.rs"]
mod secondaries;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::free_port;
use hickory_proto::rr::{Name, RData, RecordType};
use secondaries::*;

const URI: RecordType = RecordType::Unknown(256);

/// Queries derived from the zone: every owner and its ancestors with several types, names of
/// networks that do not exist, names outside the zone; some in mixed case (0x20).
fn queries_for(owners: &BTreeSet<Name>, apex: &Name) -> Vec<(Name, RecordType)> {
    let mut names: BTreeSet<Name> = BTreeSet::new();
    for owner in owners {
        let mut n = owner.clone();
        while apex.zone_of(&n) {
            names.insert(n.clone());
            if n == *apex {
                break;
            }
            n = n.base_name();
        }
    }
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::SRV,
        URI,
        RecordType::SOA,
        RecordType::NS,
        RecordType::MX,
    ];
    let mut queries = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let asked = if i % 4 == 0 { mixed_case(n) } else { n.clone() };
        for t in types {
            queries.push((asked.clone(), t));
        }
    }
    for missing in [
        "bsf.mnc999.mcc999.lwm2m.org.",
        "bsf.mnc99.mcc313.lwm2m.org.",
        "_coaps._udp.bsf.mnc999.mcc313.lwm2m.org.",
        "x.bsf.mnc460.mcc313.lwm2m.org.",
        "nothing.lwm2m.org.",
        "mcc999.lwm2m.org.",
    ] {
        for t in [RecordType::A, RecordType::SRV, URI] {
            queries.push((name(missing), t));
        }
    }
    for outside in ["example.com.", "org.", "lwm2m.net."] {
        queries.push((name(outside), RecordType::A));
    }
    queries
}

fn mixed_case(n: &Name) -> Name {
    let text: String = n
        .to_ascii()
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    name(&text)
}

/// Asks both servers every query; returns (compared, differences, additional differences).
fn compare(
    reference: SocketAddr,
    peer: SocketAddr,
    queries: &[(Name, RecordType)],
) -> (usize, Vec<String>, usize) {
    let mut differences = Vec::new();
    let mut additional_differences = 0;
    for (qname, qtype) in queries {
        let (Some(ours), Some(theirs)) = (
            query_udp(reference, qname, *qtype),
            query_udp(peer, qname, *qtype),
        ) else {
            differences.push(format!("{qname} {qtype}: no answer"));
            continue;
        };
        let (a, b) = (comparable(&ours), comparable(&theirs));
        if a != b {
            differences.push(format!(
                "{qname} {qtype}:\n  bsf-dns: {a:?}\n  peer:    {b:?}"
            ));
        }
        if additional_text(&ours) != additional_text(&theirs) {
            if additional_differences == 0 {
                eprintln!(
                    "  e.g. {qname} {qtype}: additional of bsf-dns {:?}, of the peer {:?}",
                    additional_text(&ours),
                    additional_text(&theirs)
                );
            }
            additional_differences += 1;
        }
    }
    (queries.len(), differences, additional_differences)
}

fn a_records(server: SocketAddr, qname: &str) -> Vec<String> {
    query_udp(server, &name(qname), RecordType::A)
        .map(|m| {
            m.answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn knot_and_nsd_secondaries_serve_what_bsf_dns_serves() {
    require_tool("/usr/sbin/knotd", "knot");
    require_tool("/usr/sbin/nsd", "nsd");
    let started = Instant::now();
    let dir = TempDir::new("secondaries");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    copy_example_zones(&zones);
    let rows = plmn_rows();
    write_operator_templates(&zones, &rows[..30]);

    let (bsf_port, knot_port, nsd_port) = loop {
        let ports = (free_port(), free_port(), free_port());
        if ports.0 != ports.1 && ports.1 != ports.2 && ports.0 != ports.2 {
            break ports;
        }
    };
    let key = KeySpec::new("knot-xfr", 7);
    // Knot transfers from 127.0.0.2 with the key; NSD from 127.0.0.3 without one.
    let config = dir.path().join("bsf-dns.toml");
    std::fs::write(
        &config,
        format!(
            "notify = [\"127.0.0.1:{knot_port} key knot-xfr\", \"127.0.0.1:{nsd_port}\"]\n\
             [access]\nallow-transfer = [\"127.0.0.2 key knot-xfr\", \"127.0.0.3\"]\n{}",
            key.bsf_toml()
        ),
    )
    .unwrap();
    let mut bsf = start_bsf(dir.path(), &zones, &config, bsf_port);
    let primary = SocketAddr::from((Ipv4Addr::LOCALHOST, bsf_port));
    let knot_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, knot_port));
    let nsd_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, nsd_port));
    let serial = soa_serial(primary, "lwm2m.org.").unwrap();

    let mut knot = start_knot(
        dir.path(),
        knot_port,
        primary,
        IpAddr::from([127, 0, 0, 2]),
        Some(&key),
    );
    let mut nsd = start_nsd(
        dir.path(),
        nsd_port,
        primary,
        IpAddr::from([127, 0, 0, 3]),
        None,
    );
    for (proc, addr) in [(&mut knot, knot_addr), (&mut nsd, nsd_addr)] {
        let limit = Duration::from_secs(20);
        let t0 = Instant::now();
        while soa_serial(addr, "lwm2m.org.") != Some(serial) {
            proc.assert_running();
            assert!(
                t0.elapsed() < limit,
                "{} did not load serial {serial} within {limit:?}\n{}\n{}",
                proc.name,
                proc.log_tail(),
                bsf.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!(
        "secondaries loaded serial {serial} after {:?}",
        started.elapsed()
    );

    // The queries come from the zone as transferred (with the key, from Knot's address).
    let mut axfr = TransferRequest::axfr(primary);
    axfr.source = IpAddr::from([127, 0, 0, 2]);
    axfr.key = Some(key.key());
    let transferred = transfer(&axfr).unwrap();
    let owners: BTreeSet<Name> = transferred
        .records()
        .iter()
        .map(|r| r.name.to_lowercase())
        .collect();
    let queries = queries_for(&owners, &name("lwm2m.org."));
    assert!(queries.len() >= 500, "only {} queries", queries.len());
    let same_answers = |queries: &[(Name, RecordType)]| {
        for (peer, addr) in [("knot", knot_addr), ("nsd", nsd_addr)] {
            let (compared, differences, additional) = compare(primary, addr, queries);
            assert!(
                differences.is_empty(),
                "{peer} differs from bsf-dns in {} of {compared} answers; first ones:\n{}",
                differences.len(),
                differences
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            eprintln!(
                "{peer}: {compared} answers identical to bsf-dns (rcode, AA, answer set with TTLs, negative SOA); additional sections differ in {additional}"
            );
        }
    };
    same_answers(&queries);

    // A template change: bsf-dns reloads, NOTIFYs, and both secondaries serve the change.
    let template = zones.join("313-460.toml");
    let text = std::fs::read_to_string(&template).unwrap();
    assert!(text.contains("192.0.2.10"));
    write_atomically(&template, &text.replace("192.0.2.10", "192.0.2.99"));
    let new_serial = wait_for(Duration::from_secs(10), "bsf-dns to reload", || {
        soa_serial(primary, "lwm2m.org.").filter(|s| *s != serial)
    });
    let changed = Instant::now();
    for (proc, addr) in [(&mut knot, knot_addr), (&mut nsd, nsd_addr)] {
        let limit = Duration::from_secs(20);
        let t0 = Instant::now();
        loop {
            let up = soa_serial(addr, "lwm2m.org.") == Some(new_serial)
                && a_records(addr, "bsf.mnc460.mcc313.lwm2m.org.") == ["192.0.2.99"];
            if up {
                break;
            }
            proc.assert_running();
            assert!(
                t0.elapsed() < limit,
                "{} did not follow serial {new_serial} within {limit:?}\n{}\n{}",
                proc.name,
                proc.log_tail(),
                bsf.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!(
        "both secondaries serve serial {new_serial} {:?} after bsf-dns did",
        changed.elapsed()
    );
    // Each took only the change, by IXFR (RFC 1995), and applied it: every answer is the
    // primary's again.
    let log = bsf.log_text();
    for source in ["127.0.0.2", "127.0.0.3"] {
        assert!(
            log.lines().any(|l| l.contains("zone transferred")
                && l.contains(&format!("peer={source}:"))
                && l.contains("kind=\"IXFR\"")
                && l.contains("sent=\"incremental\"")
                && l.contains(&format!("from_serial={serial}"))),
            "no incremental transfer to {source}\n{}",
            bsf.log_tail()
        );
    }
    // None fell back to a whole transfer (as a secondary does when it cannot apply one).
    let whole_after = log.lines().any(|l| {
        l.contains("zone transferred")
            && l.contains(&format!(" serial={new_serial} "))
            && !l.contains("sent=\"incremental\"")
    });
    assert!(
        !whole_after,
        "a whole transfer of the new serial\n{}",
        bsf.log_tail()
    );
    same_answers(&queries);
    // They learnt it from NOTIFY (the SOA refresh timer is an hour), and said so.
    for port in [knot_port, nsd_port] {
        let acked = format!("secondary=127.0.0.1:{port} serial={new_serial}");
        assert!(
            log.lines()
                .any(|l| l.contains("NOTIFY acknowledged") && l.contains(&acked)),
            "no NOTIFY acknowledgement from port {port}\n{}",
            bsf.log_tail()
        );
    }
    // The secret never reaches a log.
    assert!(!log.contains(&key.secret_b64));
    bsf.assert_running();
    eprintln!("total {:?}", started.elapsed());
}
