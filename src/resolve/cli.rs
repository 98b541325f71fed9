//! The `resolve` subcommand's own flags and its body.
//!
//! The IMSI, `--mnc-digits` and `--apex` belong to the name derivation (shared with `name`),
//! so `main.rs` flattens [`ResolveArgs`] next to those, derives the bsf name and calls
//! [`run`] with it. That keeps this module free of `plmn` and the command line in one place.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::output;
use super::{resolve, ResolveOptions, Transport};

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
