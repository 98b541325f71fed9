//! AXFR of a zone the size of the world's operator list: one template per (MCC, MNC) row of
//! `data/mcc-mnc-pairs.csv` (over 3,000 networks, about 22,000 records). The transfer is
//! complete (exactly the records of `bsf-dns export`, SOA first and last), split into
//! messages of about 16 KiB (each well under 64 KiB) with names compressed, signed message by
//! message when asked, and accepted by `dig -y`. (That a transfer comes from one snapshot even
//! when a reload lands meanwhile is a unit test in `src/transfer/mod.rs`: over loopback the
//! whole transfer would sit in socket buffers before a reload could interfere.)

mod common;
#[path = "common/secondaries.rs"]
mod secondaries;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Instant;

use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinEncodable;
use secondaries::*;

#[test]
fn axfr_of_every_operator_is_complete_signed_and_from_one_snapshot() {
    let started = Instant::now();
    let dir = TempDir::new("large");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let rows = plmn_rows();
    assert!(rows.len() >= 3000, "{} rows", rows.len());
    write_operator_templates(&zones, &rows);
    let key = KeySpec::new("big", 11);
    let config = dir.path().join("bsf-dns.toml");
    std::fs::write(
        &config,
        format!(
            "[access]\nallow-transfer = [\"127.0.0.1 key big\", \"127.0.0.2\"]\n{}",
            key.bsf_toml()
        ),
    )
    .unwrap();

    // The export runs while the server starts (two cores).
    let export = Command::new(env!("CARGO_BIN_EXE_bsf-dns"))
        .args(["export", "--zones"])
        .arg(&zones)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut bsf, port) = start_bsf_on_free_port(dir.path(), &zones, &config);
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let export = export.wait_with_output().unwrap();
    assert!(export.status.success());
    let mut exported: Vec<String> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(';') && !l.starts_with("$ORIGIN") && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    exported.sort();
    let record_count = exported.len();
    assert!(exported.len() > 20_000, "{} records", exported.len());
    eprintln!(
        "{} networks, {} records; server up after {:?}",
        rows.len(),
        exported.len(),
        started.elapsed()
    );

    // Unsigned, from the address allowed without a key.
    let mut plain = TransferRequest::axfr(server);
    plain.source = IpAddr::from([127, 0, 0, 2]);
    let t0 = Instant::now();
    let result = transfer(&plain).unwrap();
    let elapsed = t0.elapsed();
    let records = result.records();
    assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
    assert_eq!(
        records.len(),
        record_count + 1,
        "SOA twice, every other record once"
    );
    // Both sides as text, the closing SOA included: export and server derive the same serial
    // from the same inputs.
    let mut received: Vec<String> = records[1..].iter().map(|r| record_text(r)).collect();
    received.sort();
    if received != exported {
        let only_axfr: Vec<&String> = received
            .iter()
            .filter(|r| exported.binary_search(r).is_err())
            .take(5)
            .collect();
        let only_export: Vec<&String> = exported
            .iter()
            .filter(|r| received.binary_search(r).is_err())
            .take(5)
            .collect();
        panic!("the transfer and the export differ: only in the transfer {only_axfr:?}, only in the export {only_export:?}");
    }
    let sizes: Vec<usize> = result.raw.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    assert!(sizes.len() > 10, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 17 * 1024), "{sizes:?}");
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&s| s >= 16 * 1024),
        "{sizes:?}"
    );
    assert_eq!(result.messages[0].queries.len(), 1);
    assert!(result.messages[1..].iter().all(|m| m.queries.is_empty()));
    // Names are compressed: the messages take well under the records encoded one by one.
    let one_by_one: usize = records.iter().map(|r| r.to_bytes().unwrap().len()).sum();
    assert!(
        total * 10 < one_by_one * 7,
        "{total} octets; the records one by one take {one_by_one}"
    );
    eprintln!(
        "AXFR: {} messages, {total} octets, {:.1} octets per record, {elapsed:?}",
        sizes.len(),
        total as f64 / records.len() as f64
    );

    // Signed: every message carries a TSIG chained to the one before (verified by `transfer`).
    let mut signed = TransferRequest::axfr(server);
    signed.key = Some(key.key());
    let result = transfer(&signed).unwrap();
    assert_eq!(result.records().len(), record_count + 1);
    assert!(result
        .raw
        .iter()
        .all(|m| bsf_dns::transfer::tsig::find(m).unwrap().is_some()));

    // BIND's dig checks the same chain with its own TSIG code.
    if std::path::Path::new("/usr/bin/dig").exists() {
        let output = Command::new("/usr/bin/dig")
            .args(["-p", &port.to_string(), "@127.0.0.1", "lwm2m.org.", "AXFR"])
            .args(["+noall", "+answer", "+tries=1", "+time=10"])
            .arg("-y")
            .arg(format!("hmac-sha256:big:{}", key.secret_b64))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(!text.contains("Transfer failed") && !text.contains("Couldn't verify"));
        let count = text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .count();
        assert_eq!(count, record_count + 1, "dig saw {count} records");
    }

    bsf.assert_running();
    eprintln!("total {:?}", started.elapsed());
}
