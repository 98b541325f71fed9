//! The `bsf-dns` command line: parses arguments and calls into the library.

use std::net::SocketAddr;
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
    /// Serve the zone over UDP and TCP (default: 127.0.0.1:1053 and [::1]:1053); reload on
    /// template changes and SIGHUP; stop on SIGTERM/SIGINT.
    Serve {
        #[command(flatten)]
        zone: ZoneArgs,
        /// Address to listen on, UDP and TCP (repeatable), e.g. 0.0.0.0:53 or [::]:53.
        /// Overrides the settings file's [server] listen.
        #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
        listen: Vec<SocketAddr>,
        /// UDP worker threads per listen address (default: one per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Log every query (client, name, type, rcode); off by default, it costs more than the answer.
        #[arg(long)]
        log_queries: bool,
        /// Do not watch the zones directory and settings file (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
        /// Serve metrics (Prometheus text format) over HTTP at http://ADDR:PORT/metrics, e.g.
        /// 127.0.0.1:9153. Overrides the settings file's [server] metrics. Port 0 picks a
        /// free port (logged).
        #[arg(long, value_name = "ADDR:PORT", value_parser = parse_metrics_address)]
        metrics: Option<SocketAddr>,
        /// Log lines as text (for people) or as one JSON object each (for log collectors:
        /// every field its own key, multi-line messages kept in one line). Level filter:
        /// BSF_DNS_LOG (default info).
        #[arg(long, value_name = "FORMAT", default_value = "text")]
        log_format: LogFormat,
        /// Serve as this user (and its group) once the sockets are bound: start as root to
        /// listen on port 53, answer as an unprivileged user. The templates and settings must
        /// be readable by it. Overrides the settings file's [server] user.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
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
    /// Look up the bootstrap server the way a device does (URI, SRV, TXT, A/AAAA through a
    /// resolver) and print the URIs to try, in order. Exit 0 found, 1 bad input, 2 nothing
    /// found (NXDOMAIN: operator unknown), 3 resolver failed.
    Resolve(bsf_dns::resolve::ResolveCommand),
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    bsf_dns::config::parse_listen(text)
}

fn parse_metrics_address(text: &str) -> Result<SocketAddr, String> {
    bsf_dns::config::parse_metrics_address(text)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BSF_DNS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logger.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logger
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            zone,
            listen,
            threads,
            log_queries,
            no_watch,
            metrics,
            log_format,
            user,
        } => {
            init_logging(log_format);
            let options = bsf_dns::server::ServeOptions {
                inputs: bsf_dns::load::Inputs {
                    zones_dir: zone.zones,
                    settings_file: zone.config,
                },
                listen: (!listen.is_empty()).then_some(listen),
                threads: threads.map(usize::from),
                log_queries,
                watch: !no_watch,
                metrics,
                user,
            };
            match bsf_dns::server::run(options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Check(z) => bsf_dns::commands::check(&z.zones, z.config.as_deref()),
        Command::Export(z) => bsf_dns::commands::export(&z.zones, z.config.as_deref()),
        Command::Name {
            imsi,
            mnc_digits,
            apex,
        } => bsf_dns::commands::name(&imsi, mnc_digits, &apex),
        Command::Resolve(command) => bsf_dns::resolve::cli::main(&command),
    }
}
