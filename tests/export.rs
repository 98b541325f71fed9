//! `bsf-dns export` loaded by real tools: Knot's `kzonecheck` and BIND's `named-checkzone`
//! (always `-i local`: the default `-i full` would resolve out-of-zone SRV targets over the
//! network), for the bundled zones and for ~3,000 real networks.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn export(zones: &Path) -> String {
    export_with(zones, &[])
}

fn export_with(zones: &Path, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("export")
        .arg("--zones")
        .arg(zones)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn check_with_tools(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lwm2m.org.zone");
    std::fs::write(&file, text).unwrap();
    if have_tool("kzonecheck") {
        let out = Command::new("kzonecheck")
            .args(["-o", "lwm2m.org"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kzonecheck: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if have_tool("named-checkzone") {
        let out = Command::new("named-checkzone")
            .args(["-i", "local", "-k", "fail", "-n", "fail", "lwm2m.org"])
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK"),
            "named-checkzone: {stdout}"
        );
        let records = text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.starts_with('$'))
            .count();
        // named-checkzone counts its own way; it must load every one of our records.
        assert!(stdout.contains("loaded serial"), "{stdout}");
        assert!(records > 0);
    }
}

#[test]
fn bundled_export_loads_in_knot_and_bind() {
    let text = export(&bundled_zones());
    assert!(
        text.lines().nth(2).unwrap().contains(" IN SOA "),
        "SOA first:\n{text}"
    );
    assert!(
        text.contains("bsf.mnc001.mcc262.lwm2m.org. 300 IN A 198.51.100.20"),
        "padded spelling exported"
    );
    assert!(
        !text.contains("; the default template"),
        "not enabled, not mentioned"
    );
    check_with_tools(&text);

    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.toml");
    std::fs::write(&settings, "default-template = true\n").unwrap();
    let text = export_with(&bundled_zones(), &["--config", settings.to_str().unwrap()]);
    assert!(
        text.contains("; the default template"),
        "an enabled default template is mentioned:\n{text}"
    );
    check_with_tools(&text);
}

#[test]
fn real_operator_table_export_loads_in_knot_and_bind() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    let pairs = write_real_templates(&zones);
    let text = export(&zones);
    let bsf_a = text
        .lines()
        .filter(|l| l.starts_with("bsf.") && l.contains(" IN A "))
        .count();
    let spellings: usize = pairs
        .iter()
        .map(|p| if p.mnc.len() == 2 { 2 } else { 1 })
        .sum();
    assert_eq!(bsf_a, spellings, "one A per network spelling");
    check_with_tools(&text);
}
