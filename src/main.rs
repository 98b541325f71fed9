//! The `bsf-dns` command line: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Authoritative DNS that lets a cellular LwM2M device with no settings find its bootstrap
/// server: from the IMSI the device asks for bsf.mnc<MNC>.mcc<MCC>.<apex>, and bsf-dns answers
/// with addresses (A/AAAA), ports (SRV) and full bootstrap URIs (URI, TXT) from per-operator
/// templates.
#[derive(Parser)]
#[command(name = "bsf-dns", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the zone comes from (shared by several subcommands).
#[derive(clap::Args)]
struct ZoneArgs {
    /// Directory of operator templates (*.toml, one per operator).
    #[arg(long, value_name = "DIR", default_value = "zones")]
    zones: PathBuf,
    /// Server settings file (TOML); without it the embedded defaults apply (apex lwm2m.org).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate settings and templates; print a summary, or every problem and exit 1.
    Check(ZoneArgs),
    /// Print the synthesized zone as an RFC 1035 master file (loads in BIND, Knot, NSD).
    Export(ZoneArgs),
    /// Print the bootstrap name a device derives from its IMSI.
    Name {
        /// The SIM's IMSI (6 to 15 digits).
        #[arg(long)]
        imsi: String,
        /// MNC length from the SIM (EF_AD); without it, guessed from the MCC.
        #[arg(long, value_name = "2|3")]
        mnc_digits: Option<u8>,
        /// Zone apex under which the names live.
        #[arg(long, value_name = "ZONE", default_value = "lwm2m.org")]
        apex: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(z) => bsf_dns::commands::check(&z.zones, z.config.as_deref()),
        Command::Export(z) => bsf_dns::commands::export(&z.zones, z.config.as_deref()),
        Command::Name {
            imsi,
            mnc_digits,
            apex,
        } => bsf_dns::commands::name(&imsi, mnc_digits, &apex),
    }
}
