//! The `resolve` subcommand: its flags, the name derivation, and its body.
//!
//! [`ResolveCommand`] is the whole subcommand (`main.rs` only names it and calls [`main`]):
//! the IMSI, `--mnc-digits` and `--apex` as for `bsf-dns name`, plus the lookup's own flags
//! in [`ResolveArgs`]. [`run`] takes an already derived name, for callers that have one.
//!
//! Exit codes: 0 found, 1 bad input (IMSI, apex), 2 nothing found (NXDOMAIN: operator
//! unknown; or nothing published), 3 the resolver failed (timeout, SERVFAIL, REFUSED, ...).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::output;
use super::{resolve, ResolveOptions, Transport};
use crate::config::parse_name;
use crate::plmn::{parse_imsi, MncLengthSource};

/// Bad input: an IMSI or apex that names nothing.
pub const EXIT_BAD_INPUT: u8 = 1;

/// `bsf-dns resolve`: everything on its command line.
#[derive(Clone, Debug, clap::Args)]
pub struct ResolveCommand {
    /// The SIM's IMSI (6 to 15 digits).
    #[arg(long)]
    pub imsi: String,
    /// MNC length from the SIM (EF_AD); without it, guessed from the MCC.
    #[arg(long, value_name = "2|3")]
    pub mnc_digits: Option<u8>,
    /// Zone apex under which the names live.
    #[arg(long, value_name = "ZONE", default_value = "lwm2m.org")]
    pub apex: String,
    /// How to look up.
    #[command(flatten)]
    pub lookup: ResolveArgs,
}

/// The bsf name a device with this IMSI asks for, or the message for a bad input.
pub fn bsf_name(imsi: &str, mnc_digits: Option<u8>, apex: &str) -> Result<Name, String> {
    let apex = parse_name(apex, None).map_err(|message| format!("--apex: {message}"))?;
    let parsed = parse_imsi(imsi, mnc_digits).map_err(|error| format!("--imsi: {error}"))?;
    if parsed.mnc_length_source == MncLengthSource::Guess {
        eprintln!(
            "note: MCC {} has both 2- and 3-digit MNCs; took {} digits. The SIM knows (EF_AD): pass --mnc-digits 2 or 3 to be sure.",
            parsed.plmn.mcc,
            parsed.plmn.mnc.digit_count()
        );
    }
    parsed
        .plmn
        .bsf_name(&apex)
        .map_err(|error| error.to_string())
}

/// `bsf-dns resolve` from start to end: derive the name, look it up on a small runtime of
/// its own, print, and return the exit code.
pub fn main(command: &ResolveCommand) -> ExitCode {
    let name = match bsf_name(&command.imsi, command.mnc_digits, &command.apex) {
        Ok(name) => name,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(output::EXIT_RESOLVER_FAILED);
        }
    };
    runtime.block_on(run(&command.lookup, &name))
}

/// Flags of `bsf-dns resolve` besides the ones that build the name.
#[derive(Clone, Debug, clap::Args)]
pub struct ResolveArgs {
    /// Resolver to ask, as ADDR:PORT (or ADDR for port 53) [default: the system's, from
    /// /etc/resolv.conf]
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_server)]
    pub server: Option<SocketAddr>,

    /// Transports the device speaks, most preferred first (repeat or comma-separate)
    #[arg(
        long = "transport",
        value_name = "TRANSPORT",
        value_delimiter = ',',
        default_values = ["coaps", "coaps+tcp", "coap", "coap+tcp"],
    )]
    pub transports: Vec<Transport>,

    /// Print one JSON object instead of one line per candidate
    #[arg(long)]
    pub json: bool,

    /// Seconds to wait for each reply
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Seed for the RFC 2782 weighted draw: the same seed gives the same order
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

impl ResolveArgs {
    /// The library options these flags stand for.
    pub fn options(&self) -> ResolveOptions {
        ResolveOptions {
            server: self.server,
            transports: self.transports.clone(),
            timeout: self.timeout,
            seed: self.seed,
            ..ResolveOptions::default()
        }
    }
}

fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not ADDR:PORT (e.g. 127.0.0.1:53 or [::1]:53) or ADDR"))
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.01..=300.0).contains(&seconds) {
        return Err(format!("timeout {seconds} s is outside 0.01 to 300"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Looks up `bsf_name`, prints the result and returns the exit code (0, 2 or 3).
pub async fn run(args: &ResolveArgs, bsf_name: &Name) -> ExitCode {
    let opts = args.options();
    let result = resolve(bsf_name, &opts).await;
    let code = match &result {
        Ok(_) => output::EXIT_FOUND,
        Err(err) => err.exit_code(),
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    // Printing can only fail on a closed pipe; the exit code still tells the outcome.
    let _ = match (&result, args.json) {
        (Ok(resolution), true) => {
            writeln!(stdout, "{:#}", output::json_found(resolution, &opts))
        }
        (Err(err), true) => {
            let mut name = bsf_name.clone();
            name.set_fqdn(true);
            writeln!(stdout, "{:#}", output::json_error(err, &name, &opts))
        }
        (Ok(resolution), false) => {
            for line in output::human_warnings(resolution) {
                let _ = writeln!(stderr, "{line}");
            }
            write!(stdout, "{}", output::human(resolution))
        }
        (Err(err), false) => {
            for line in output::human_error(err) {
                let _ = writeln!(stderr, "{line}");
            }
            Ok(())
        }
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ResolveArgs,
    }

    #[derive(Parser)]
    struct Whole {
        #[command(flatten)]
        command: ResolveCommand,
    }

    #[test]
    fn the_whole_command_parses_and_derives_the_name() {
        let whole = Whole::try_parse_from([
            "resolve",
            "--imsi",
            "313460000000001",
            "--server",
            "127.0.0.1:53",
        ])
        .unwrap();
        assert_eq!(whole.command.apex, "lwm2m.org");
        let name = bsf_name(&whole.command.imsi, None, &whole.command.apex).unwrap();
        assert_eq!(name.to_ascii(), "bsf.mnc460.mcc313.lwm2m.org.");
        let name = bsf_name("262011234567890", Some(2), "Example.NET").unwrap();
        assert_eq!(name.to_ascii(), "bsf.mnc01.mcc262.example.net.");
        assert!(bsf_name("31346x", None, "lwm2m.org")
            .unwrap_err()
            .contains("--imsi"));
        assert!(bsf_name("313460000000001", None, "a..b")
            .unwrap_err()
            .contains("--apex"));
        assert!(
            Whole::try_parse_from(["resolve"]).is_err(),
            "--imsi is required"
        );
    }

    fn parse(argv: &[&str]) -> Result<ResolveArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("resolve").chain(argv.iter().copied()))
            .map(|cli| cli.args)
    }

    #[test]
    fn defaults() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.server, None);
        assert_eq!(args.transports, Transport::DEFAULT_ORDER);
        assert_eq!(args.timeout, Duration::from_secs(5));
        assert!(!args.json);
    }

    #[test]
    fn flags() {
        let args = parse(&[
            "--server",
            "127.0.0.1:5353",
            "--transport",
            "coap+tcp,coap",
            "--transport",
            "COAPS",
            "--json",
            "--timeout",
            "0.5",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(args.server, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(
            args.transports,
            [Transport::CoapTcp, Transport::Coap, Transport::Coaps]
        );
        assert_eq!(args.timeout, Duration::from_millis(500));
        assert_eq!(args.options().seed, Some(7));
        assert_eq!(
            parse(&["--server", "::1"]).unwrap().server,
            Some("[::1]:53".parse().unwrap())
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--server", "localhost:53"]).is_err());
        assert!(parse(&["--transport", "http"]).is_err());
        assert!(parse(&["--timeout", "0"]).is_err());
        assert!(parse(&["--timeout", "soon"]).is_err());
    }
}
