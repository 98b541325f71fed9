//! The command line as a user meets it: `name`, `check`, `export` and `--help`.

mod common;

use std::process::Command;

use common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn name_from_imsi() {
    assert_eq!(
        run(&["name", "--imsi", "313460000000001"]).1,
        "bsf.mnc460.mcc313.lwm2m.org\n"
    );
    assert_eq!(
        run(&[
            "name",
            "--imsi",
            "262011234567890",
            "--apex",
            "iot.example.net"
        ])
        .1,
        "bsf.mnc01.mcc262.iot.example.net\n"
    );
    let (code, out, err) = run(&["name", "--imsi", "405030123456789"]);
    assert_eq!((code, out.as_str()), (0, "bsf.mnc030.mcc405.lwm2m.org\n"));
    assert!(
        err.contains("--mnc-digits"),
        "mixed MCC says how to override: {err}"
    );
    assert_eq!(
        run(&["name", "--imsi", "405030123456789", "--mnc-digits", "2"]).1,
        "bsf.mnc03.mcc405.lwm2m.org\n"
    );
    let (code, _, err) = run(&["name", "--imsi", "31346x"]);
    assert_eq!(code, 2);
    assert!(err.contains("digits only"), "{err}");
}

#[test]
fn check_summarises_or_lists_every_error() {
    let (code, out, _) = run(&["check", "--zones", bundled_zones().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ok: zone lwm2m.org.: 3 template files, 5 networks"),
        "{out}"
    );

    let (_dir, zones) = temp_zones(&[
        (
            "a.toml",
            "mcc = \"31\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
        ),
        (
            "b.toml",
            "mcc = \"313\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"ftp://a.example\"\n",
        ),
        ("c.toml~", "this is an editor backup and is ignored"),
        (".d.toml.swp", "so is this"),
    ]);
    let (code, _, err) = run(&["check", "--zones", zones.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("a.toml:1: field `mcc`"), "{err}");
    assert!(err.contains("b.toml:4: field `bootstrap[0].uri`"), "{err}");
    assert!(err.contains("2 problems found"), "{err}");
}

#[test]
fn check_reports_settings_errors_and_duplicate_networks() {
    let (dir, zones) = temp_zones(&[
        (
            "a.toml",
            "mcc = \"313\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
        ),
        (
            "b.toml",
            "mcc = \"313\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://b.example\"\n",
        ),
    ]);
    let settings = dir.path().join("settings.toml");
    std::fs::write(&settings, "apex = \"lwm2m.org\"\n[soa]\nrefresh = -5\n").unwrap();
    let (code, _, err) = run(&[
        "check",
        "--zones",
        zones.to_str().unwrap(),
        "--config",
        settings.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("settings.toml:3: field `soa.refresh`"),
        "{err}"
    );
    assert!(
        err.contains("a.toml") && err.contains("b.toml") && err.contains("313-460"),
        "{err}"
    );
}

#[test]
fn help_explains_the_commands() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for word in ["serve", "check", "export", "name", "bootstrap"] {
        assert!(out.contains(word), "{word} missing from --help:\n{out}");
    }
    let (_, out, _) = run(&["serve", "--help"]);
    assert!(
        out.contains("--listen") && out.contains("--zones") && out.contains("--config"),
        "{out}"
    );
}
