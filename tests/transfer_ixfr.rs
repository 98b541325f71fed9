//! Incremental zone transfers (IXFR, RFC 1995 §4) from the real binary: after template
//! changes, a client at an earlier serial gets only the records that changed, in one
//! condensed difference sequence, and applying them to its copy gives exactly the zone a whole
//! transfer gives now; a serial the server never served gets the whole zone, the serial it
//! serves the SOA alone.

mod common;
#[path = "common/secondaries.rs"]
mod secondaries;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{RData, Record, RecordType};
use secondaries::*;

fn serial_of(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// The records of a whole transfer between its opening and closing SOA, SOA left out, as
/// comparable text.
fn zone_between_soas<'r>(records: impl IntoIterator<Item = &'r Record>) -> BTreeSet<String> {
    records
        .into_iter()
        .filter(|r| r.record_type() != RecordType::SOA)
        .map(record_text)
        .collect()
}

/// The zone as a whole transfer gives it now, SOA left out, as comparable text.
fn whole_zone(server: SocketAddr) -> BTreeSet<String> {
    let result = transfer(&TransferRequest::axfr(server)).unwrap();
    let records = result.records();
    zone_between_soas(records[..records.len() - 1].iter().copied())
}

/// Checks an IXFR answered with the whole zone (AXFR-style, RFC 1995 §4: the new SOA, then
/// records, no difference sequence) and that it is `zone`.
fn assert_whole_zone_sent(answer: &[Record], serial: u32, zone: &BTreeSet<String>) {
    assert_eq!(serial_of(&answer[0]), Some(serial));
    assert!(serial_of(&answer[1]).is_none(), "AXFR-style: no sequence");
    assert_eq!(zone_between_soas(&answer[1..answer.len() - 1]), *zone);
}

fn ixfr(server: SocketAddr, serial: u32) -> Vec<Record> {
    let mut request = TransferRequest::axfr(server);
    request.qtype = RecordType::IXFR;
    request.ixfr_serial = Some(serial);
    let result = transfer(&request).unwrap();
    result.records().into_iter().cloned().collect()
}

/// Checks an incremental answer from `from` to `to` and applies it to `zone`, as a secondary
/// would; returns the zone it gives and how many records the difference had.
fn apply_incremental(
    answer: &[Record],
    from: u32,
    to: u32,
    zone: &BTreeSet<String>,
) -> (BTreeSet<String>, usize) {
    let serials: Vec<u32> = answer.iter().filter_map(serial_of).collect();
    assert_eq!(
        serials,
        [to, from, to, to],
        "new SOA, one sequence (old SOA … new SOA …), new SOA"
    );
    assert_eq!(serial_of(&answer[0]), Some(to));
    assert_eq!(
        serial_of(&answer[1]),
        Some(from),
        "the second record opens a sequence"
    );
    assert_eq!(serial_of(answer.last().unwrap()), Some(to));
    let refs: Vec<&Record> = answer.iter().collect();
    let sequences = difference_sequences(&refs);
    assert_eq!(sequences.len(), 1, "versions in between condensed into one");
    let (old, deleted, new, added) = &sequences[0];
    assert_eq!((*old, *new), (from, to));
    let mut result = zone.clone();
    for record in deleted {
        assert!(
            result.remove(&record_text(record)),
            "deleted record not in the old zone: {}",
            record_text(record)
        );
    }
    for record in added {
        assert!(
            result.insert(record_text(record)),
            "added record already there: {}",
            record_text(record)
        );
    }
    (result, deleted.len() + added.len())
}

#[test]
fn changes_go_out_as_differences_and_unknown_serials_get_the_zone() {
    let dir = TempDir::new("ixfr");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    copy_example_zones(&zones);
    let rows = plmn_rows();
    write_operator_templates(&zones, &rows[..40]);
    let config = dir.path().join("bsf-dns.toml");
    std::fs::write(&config, "[access]\nallow-transfer = [\"127.0.0.1\"]\n").unwrap();
    let (mut bsf, port) = start_bsf_on_free_port(dir.path(), &zones, &config);
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let serial_0 = soa_serial(server, "lwm2m.org.").unwrap();
    let zone_0 = whole_zone(server);
    let next_serial = |after: u32| {
        wait_for(Duration::from_secs(10), "bsf-dns to reload", || {
            soa_serial(server, "lwm2m.org.").filter(|s| *s != after)
        })
    };

    // One address changed: the difference is that A record out and the new one in.
    let seed = zones.join("313-460.toml");
    let text = std::fs::read_to_string(&seed).unwrap();
    write_atomically(&seed, &text.replace("192.0.2.10", "192.0.2.99"));
    let serial_1 = next_serial(serial_0);
    let zone_1 = whole_zone(server);
    let (applied, size) = apply_incremental(&ixfr(server, serial_0), serial_0, serial_1, &zone_0);
    assert_eq!(
        applied, zone_1,
        "the old zone plus the difference is the new zone"
    );
    assert_eq!(size, 2, "one record deleted, one added");

    // A network added, one removed and one given another URI: from either earlier serial,
    // one sequence takes the client to the zone served now.
    let (mcc, mnc) = &rows[0];
    std::fs::remove_file(zones.join(format!("gen-{mcc}-{mnc}.toml"))).unwrap();
    write_operator_templates(&zones, &rows[40..41]);
    let (mcc, mnc) = &rows[1];
    let other = zones.join(format!("gen-{mcc}-{mnc}.toml"));
    let text = std::fs::read_to_string(&other).unwrap();
    write_atomically(&other, &text.replace("coaps://bs.", "coaps://bootstrap."));
    let serial_2 = next_serial(serial_1);
    // A burst of changes may be applied in more than one reload: wait for the last.
    std::thread::sleep(Duration::from_millis(500));
    let serial_2 = soa_serial(server, "lwm2m.org.").unwrap_or(serial_2);
    let zone_2 = whole_zone(server);
    assert_ne!(zone_2, zone_1);
    for (from, zone) in [(serial_0, &zone_0), (serial_1, &zone_1)] {
        let (applied, size) = apply_incremental(&ixfr(server, from), from, serial_2, zone);
        assert_eq!(applied, zone_2, "from serial {from}");
        assert!(
            size < zone_2.len() / 4,
            "{size} records of {}",
            zone_2.len()
        );
    }

    // Up to date: the SOA alone. A serial never served: the whole zone, AXFR-style.
    let answer = ixfr(server, serial_2);
    assert_eq!(answer.len(), 1);
    assert_eq!(serial_of(&answer[0]), Some(serial_2));
    assert_whole_zone_sent(&ixfr(server, serial_0.wrapping_sub(7)), serial_2, &zone_2);

    // Secondaries asking at once, from the same serial (the difference computed once and
    // shared): each gets the whole of it.
    let answers: Vec<Vec<Record>> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| ixfr(server, serial_1)))
            .collect();
        asks.into_iter().map(|ask| ask.join().unwrap()).collect()
    });
    for answer in &answers {
        let (applied, _) = apply_incremental(answer, serial_1, serial_2, &zone_1);
        assert_eq!(applied, zone_2);
    }

    // A new default TTL changes every record of the generated templates (they have no ttl
    // of their own): a difference larger than the zone, so the zone itself goes.
    std::fs::write(
        &config,
        "default-ttl = 77\n[access]\nallow-transfer = [\"127.0.0.1\"]\n",
    )
    .unwrap();
    let serial_3 = next_serial(serial_2);
    let zone_3 = whole_zone(server);
    assert!(zone_3.iter().any(|r| r.contains(" 77 ")), "new TTLs served");
    assert_whole_zone_sent(&ixfr(server, serial_2), serial_3, &zone_3);

    let log = bsf.log_text();
    let incremental = log
        .lines()
        .filter(|l| l.contains("zone transferred") && l.contains("sent=\"incremental\""))
        .count();
    assert_eq!(incremental, 6, "{}", bsf.log_tail());
    bsf.assert_running();
}
