//! The command-line subcommands' work: what `check`, `export` and `name` print and return.
//!
//! `main.rs` parses arguments; these functions do the work and map outcomes to exit codes, so
//! they can be called (and tested) without a process.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use hickory_proto::rr::Name;

use crate::config::parse_name;
use crate::load::load_zone;
use crate::plmn::{parse_imsi, MncLengthSource};
use crate::zone::export::master_file;

/// `bsf-dns check`: validate everything, print a one-line summary, exit 1 listing every error.
pub fn check(zones: &Path, config: Option<&Path>) -> ExitCode {
    match load_zone(zones, config) {
        Ok((loaded, zone)) => {
            for warning in &loaded.templates.warnings {
                eprintln!("warning: {warning}");
            }
            let names = zone.name_count();
            let default = match (&loaded.templates.default, zone.default.is_some()) {
                (Some(t), true) => format!("; default template {} enabled", t.file.display()),
                (Some(t), false) => format!(
                    "; default template {} present but not enabled (settings: default-template = true)",
                    t.file.display()
                ),
                (None, _) => String::new(),
            };
            println!(
                "ok: zone {}: {} template files, {} networks, {} names, {} records{}",
                zone.apex(),
                loaded.templates.templates.len(),
                zone.operators,
                names,
                zone.record_count(),
                default
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            let text = error.to_string();
            let count = text.lines().count();
            eprintln!("{text}");
            eprintln!(
                "error: {count} problem{} found; nothing was loaded",
                if count == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
    }
}

/// `bsf-dns export`: the zone as a master file on stdout.
pub fn export(zones: &Path, config: Option<&Path>) -> ExitCode {
    match load_zone(zones, config) {
        Ok((_, zone)) => {
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(master_file(&zone).as_bytes()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            eprintln!("error: the zone was not exported");
            ExitCode::from(1)
        }
    }
}

/// `bsf-dns name`: the bsf name for an IMSI.
pub fn name(imsi: &str, mnc_digits: Option<u8>, apex: &str) -> ExitCode {
    let apex: Name = match parse_name(apex, None) {
        Ok(apex) => apex,
        Err(message) => {
            eprintln!("error: --apex: {message}");
            return ExitCode::from(2);
        }
    };
    let parsed = match parse_imsi(imsi, mnc_digits) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("error: --imsi: {error}");
            return ExitCode::from(2);
        }
    };
    let name = match parsed.plmn.bsf_name(&apex) {
        Ok(name) => name,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if parsed.mnc_length_source == MncLengthSource::Guess {
        eprintln!(
            "note: MCC {} has both 2- and 3-digit MNCs; took {} digits. The SIM knows (EF_AD): pass --mnc-digits 2 or 3 to be sure.",
            parsed.plmn.mcc,
            parsed.plmn.mnc.digit_count()
        );
    }
    println!("{}", name.to_ascii().trim_end_matches('.'));
    ExitCode::SUCCESS
}
