//! `bsf-bench`: command line of the benchmark; parses arguments and calls into the library.

use anyhow::{bail, Context, Result};
use bsf_bench::load::{self, LoadConfig, Mode, Transport};
use bsf_bench::mix::{self, Mix, Pool};
use bsf_bench::{probe, procfs, report, wire, zonegen};
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Benchmark for bsf-dns: load generator, zone-set generator, probes and report.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send load to a DNS server (closed loop by default; --rate for open loop) and report.
    Run(RunArgs),
    /// Send the same load to several servers in turn, in short slices, and report each
    /// (for comparisons on a machine whose speed drifts: every server samples the same drift).
    Interleave(InterleaveArgs),
    /// Write operator templates (one per PLMN) and a names file for the load generator.
    GenZones(GenArgs),
    /// Write a query file drawn from a names file (add --dnsperf for dnsperf's format).
    Queries(QueriesArgs),
    /// Wait until a server answers (NOERROR, AA); print how long it took.
    Wait(WaitArgs),
    /// Time a template change under load: rewrite one file, poll until the new answer shows.
    Reload(ReloadArgs),
    /// Print CPU time (user/system) and memory (VmRSS/PSS) of a process tree as JSON.
    Proc {
        /// Process to measure (with its descendants).
        #[arg(long)]
        pid: i32,
    },
    /// Aggregate a directory of result JSON files into the comparison table.
    Report(report::ReportArgs),
    /// Print the median of one number over the run results of a directory (for scripts).
    Median {
        #[arg(long)]
        results: PathBuf,
        /// `scenario` tag to match.
        #[arg(long)]
        scenario: String,
        /// `server` tag to match.
        #[arg(long)]
        server: String,
        /// qps, us_per_query, user_us_per_query, p99_us or share.
        #[arg(long, default_value = "qps")]
        field: String,
    },
    /// Print a loopback port that is free for both UDP and TCP right now (for scripts).
    FreePort,
    /// Wait until the machine is quiet (other processes idle); exit 1 if it never is.
    Quiet {
        /// Busy cores (all processes) under which the machine counts as quiet.
        #[arg(long, default_value_t = 0.10)]
        max_busy: f64,
        /// Seconds over which busy time is measured.
        #[arg(long, default_value_t = 0.5)]
        window: f64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
}

/// Where the queries come from.
#[derive(Args, Clone)]
struct QuerySource {
    /// Names file from gen-zones (`name known|unknown`); queries are drawn by --mix.
    #[arg(long, conflicts_with = "queries")]
    names: Option<PathBuf>,
    /// Query file (`name TYPE [NOERROR|NXDOMAIN|ANY]`), asked in its order (letter case
    /// re-randomised unless --no-random-case; no expectation: RCODE not checked).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Weights of the query kinds drawn from --names.
    #[arg(long, default_value = "a=40,aaaa=15,txt=15,srv=10,uri=10,nx=10")]
    mix: Mix,
    /// Distinct queries to pre-encode from --names (cycled through).
    #[arg(long, default_value_t = 65_536)]
    pool: usize,
    /// Seed of the query draw and letter case.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep names in the case written (default: random case, as resolvers doing 0x20 send).
    #[arg(long)]
    no_random_case: bool,
}

impl QuerySource {
    fn specs(&self) -> Result<Vec<mix::QuerySpec>> {
        match (&self.names, &self.queries) {
            (Some(n), None) => {
                let names = mix::read_names(n)?;
                mix::generate(
                    &names,
                    &self.mix,
                    self.pool.max(1),
                    self.seed,
                    !self.no_random_case,
                )
            }
            (None, Some(q)) => {
                let mut specs = mix::read_queries(q)?;
                if !self.no_random_case {
                    let mut r = bsf_bench::rng::Rng::new(self.seed);
                    for s in &mut specs {
                        s.name = mix::random_case(&s.name, &mut r);
                    }
                }
                Ok(specs)
            }
            _ => bail!("give --names FILE or --queries FILE"),
        }
    }
}

/// The one server a run measures.
#[derive(Args, Clone, Debug, PartialEq)]
struct TargetArgs {
    /// Server address (loopback).
    #[arg(long, default_value = "127.0.0.1:1053")]
    target: SocketAddr,
    /// Measure this server process (and its children): CPU per answered query, memory.
    #[arg(long)]
    server_pid: Option<i32>,
    /// Check only ID, QR and question (for bsf-floor, which echoes queries).
    #[arg(long)]
    lenient: bool,
}

/// The load: queries, pacing, lanes, timeouts, labels.
#[derive(Args, Clone)]
struct LoadArgs {
    #[command(flatten)]
    source: QuerySource,
    /// Use TCP (pipelined, one connection per lane) instead of UDP.
    #[arg(long)]
    tcp: bool,
    /// Closed loop: queries kept outstanding. 128 saturates every server here without
    /// overflowing a default-sized (208 KiB) server socket buffer, which 256 does for Knot.
    #[arg(long, default_value_t = 128)]
    outstanding: u64,
    /// Open loop: send this many queries per second on a fixed schedule.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Sockets (UDP) or connections (TCP); each has its own source port.
    #[arg(long, default_value_t = 4)]
    lanes: usize,
    /// Messages per sendmmsg/recvmmsg call at most.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Seconds after which an unanswered query is lost.
    #[arg(long, default_value_t = 1.0)]
    timeout: f64,
    /// Label the result (repeatable): --tag server=nsd --tag round=2.
    #[arg(long = "tag", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// UDP: send runs of equal-length queries as one UDP GSO send each (the kernel splits them
    /// into ordinary datagrams; the server sees the same). Makes the client a little cheaper
    /// per query; off by default so the client's path is the plain sendmmsg one.
    #[arg(long)]
    gso: bool,
    /// Sleep in ppoll while waiting for answers (default: spin). Spinning keeps the client's
    /// own wake-up latency (large in a VM: up to milliseconds) out of the latency figures; use
    /// this flag when the client shares its core with the server.
    #[arg(long)]
    no_busy_poll: bool,
    /// Send a query without EDNS (default: EDNS with a 1232-byte payload, as resolvers do).
    #[arg(long)]
    no_edns: bool,
    /// Put a DNS cookie (RFC 7873: a client cookie, as dig and BIND's resolver send in every query) into each
    /// query's OPT record, to measure what answering cookies costs a server.
    #[arg(long, conflicts_with = "no_edns")]
    cookie: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected key=value"))?;
    Ok((k.to_string(), v.to_string()))
}

fn secs(v: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| anyhow::anyhow!("{what} must be a non-negative number of seconds, not {v}"))
}

impl LoadArgs {
    /// The run's configuration against `server`, and its queries.
    fn build(&self, server: &TargetArgs) -> Result<(LoadConfig, Pool)> {
        Ok((self.config(server)?, self.pool()?))
    }

    /// UDP GSO only where there are datagrams.
    fn gso(&self) -> bool {
        self.gso && !self.tcp
    }

    /// The queries, encoded once: the same for every server a run loads.
    fn pool(&self) -> Result<Pool> {
        let specs = self.source.specs()?;
        // COOKIE (option 10), 8 bytes of client cookie.
        let cookie: &[u8] = &[0, 10, 0, 8, 0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
        let options = if self.cookie { cookie } else { &[] };
        let mut pool = Pool::build(
            &specs,
            if self.no_edns { None } else { Some(1232) },
            options,
        )?;
        if self.gso() {
            pool.group_runs(self.batch.clamp(1, 64), self.source.seed);
        }
        Ok(pool)
    }

    /// How the load is paced and measured against `server`.
    fn config(&self, server: &TargetArgs) -> Result<LoadConfig> {
        let mode = match self.rate {
            Some(r) if r > 0.0 && r.is_finite() => Mode::Open { rate: r },
            Some(r) => bail!("--rate must be positive, not {r}"),
            None if self.outstanding == 0 => bail!("--outstanding must be at least 1"),
            None => Mode::Closed {
                outstanding: self.outstanding,
            },
        };
        if self.duration <= 0.0 {
            bail!("--duration must be positive");
        }
        Ok(LoadConfig {
            target: server.target,
            transport: if self.tcp {
                Transport::Tcp
            } else {
                Transport::Udp
            },
            mode,
            duration: secs(self.duration, "--duration")?,
            warmup: secs(self.warmup, "--warmup")?,
            lanes: self.lanes.max(1),
            batch: self.batch.clamp(1, 1024),
            timeout: secs(self.timeout, "--timeout")?,
            lenient: server.lenient,
            gso: self.gso(),
            busy_poll: !self.no_busy_poll,
            server_pid: server.server_pid,
            progress: !self.quiet,
            tags: self.tags.iter().cloned().collect::<BTreeMap<_, _>>(),
            stop: None,
        })
    }
}

#[derive(Args)]
struct Output {
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Output {
    fn emit<T: serde::Serialize>(&self, value: &T, table: impl FnOnce() -> String) -> Result<()> {
        let json = serde_json::to_string_pretty(value)?;
        if let Some(p) = &self.out {
            std::fs::write(p, format!("{json}\n"))
                .with_context(|| format!("writing {}", p.display()))?;
        }
        if self.json {
            println!("{json}");
        } else {
            print!("{}", table());
        }
        Ok(())
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    server: TargetArgs,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    output: Output,
}

#[derive(Args)]
struct InterleaveArgs {
    /// A server to load (repeat, two or more):
    /// `name=NAME,target=ADDR:PORT[,pid=PID][,lenient][,tag.KEY=VALUE...]`. NAME tags the
    /// result as `server=NAME` (unless a `tag.server=` says otherwise), PID is measured as
    /// --server-pid is by `run`, `lenient` checks the answers as --lenient does, and `tag.`
    /// items add labels to this server's result only.
    #[arg(long = "server", value_parser = parse_server, required = true)]
    servers: Vec<ServerSpec>,
    /// Seconds of load per slice; each server gets --duration in all, in slices this long.
    #[arg(long, default_value_t = 0.1)]
    slice: f64,
    #[command(flatten)]
    load: LoadArgs,
    /// Print the results as a JSON array instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write each server's result as JSON to this path, `{server}` replaced by its name.
    #[arg(long)]
    out: Option<String>,
}

/// One server of `bsf-bench interleave`.
#[derive(Clone, Debug, PartialEq)]
struct ServerSpec {
    name: String,
    target: TargetArgs,
    tags: Vec<(String, String)>,
}

fn parse_server(s: &str) -> Result<ServerSpec, String> {
    let (mut name, mut target, mut pid, mut lenient) = (None, None, None, false);
    let mut tags = Vec::new();
    for part in s.split(',') {
        if let Some(tag) = part.strip_prefix("tag.") {
            tags.push(parse_tag(tag)?);
            continue;
        }
        match part.split_once('=') {
            Some(("name", v)) if !v.is_empty() => name = Some(v.to_string()),
            Some(("target", v)) => {
                target = Some(v.parse().map_err(|e| format!("target {v:?}: {e}"))?)
            }
            Some(("pid", v)) => pid = Some(v.parse().map_err(|e| format!("pid {v:?}: {e}"))?),
            None if part == "lenient" => lenient = true,
            _ => {
                return Err(format!(
                "{part:?}: expected name=NAME, target=ADDR:PORT, pid=PID, lenient or tag.KEY=VALUE"
            ))
            }
        }
    }
    match (name, target) {
        (Some(name), Some(target)) => Ok(ServerSpec {
            name,
            target: TargetArgs {
                target,
                server_pid: pid,
                lenient,
            },
            tags,
        }),
        _ => Err(format!("{s:?}: name= and target= are required")),
    }
}

#[derive(Args)]
struct GenArgs {
    /// The MCC/MNC table.
    #[arg(long, default_value = "data/mcc-mnc-pairs.csv")]
    csv: PathBuf,
    /// Directory for the templates (created; only *.toml files go in it).
    #[arg(long)]
    out: PathBuf,
    /// Names file to write (default: <out>.names beside the directory).
    #[arg(long)]
    names: Option<PathBuf>,
    /// Operators to write (default: every pair of the table; more: synthetic ones added).
    #[arg(long)]
    operators: Option<usize>,
    /// Unknown names to list (default: a tenth of the operators, at least 100).
    #[arg(long)]
    unknown: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Zone apex of the names.
    #[arg(long, default_value = "lwm2m.org")]
    apex: String,
    /// Leave out 2-digit MNCs whose zero-padded form is another real operator's 3-digit MNC.
    #[arg(long)]
    skip_colliding: bool,
    /// Replace *.toml files already in --out.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct QueriesArgs {
    #[arg(long)]
    names: PathBuf,
    #[arg(long, default_value = "a=40,aaaa=15,txt=15,srv=10,uri=10,nx=10")]
    mix: Mix,
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    no_random_case: bool,
    /// Plain dnsperf data file (no expected RCODE column).
    #[arg(long)]
    dnsperf: bool,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct WaitArgs {
    #[arg(long, default_value = "127.0.0.1:1053")]
    target: SocketAddr,
    /// Name to ask (the zone apex, with --type SOA, is what the contract promises).
    #[arg(long, default_value = "lwm2m.org")]
    name: String,
    #[arg(long = "type", default_value = "SOA")]
    qtype: String,
    /// Count from this instant (nanoseconds since the epoch, as `date +%s%N` prints).
    #[arg(long)]
    since_ns: Option<u128>,
    /// Milliseconds between attempts.
    #[arg(long, default_value_t = 2)]
    interval_ms: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Fail early if this process exits; report its memory when ready.
    #[arg(long)]
    server_pid: Option<i32>,
    /// Label the result (repeatable).
    #[arg(long = "tag", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    #[command(flatten)]
    output: Output,
}

#[derive(Args)]
struct ReloadArgs {
    #[command(flatten)]
    server: TargetArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Template to rewrite (its first IPv4 address is replaced).
    #[arg(long)]
    file: PathBuf,
    /// bsf name whose A answer must change.
    #[arg(long)]
    name: String,
    /// Seconds into the load when the file is rewritten.
    #[arg(long, default_value_t = 2.0)]
    change_at: f64,
    /// Give up waiting for the new answer after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    max_wait: f64,
    /// Seconds of load kept running after the new answer is first seen (the run's
    /// --duration is ignored: the load covers the whole reload).
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Truncate and rewrite the file in place (default: write beside it and rename over it).
    #[arg(long)]
    in_place: bool,
    /// Leave the changed file (default: put the original back afterwards).
    #[arg(long)]
    no_restore: bool,
    #[command(flatten)]
    output: Output,
}

/// A port free on 127.0.0.1 for UDP and TCP: bind UDP to port 0, then check TCP takes it.
fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
        let port = u.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no port free for both UDP and TCP")
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(a) => {
            let (cfg, pool) = a.load.build(&a.server)?;
            let r = load::run(&cfg, &pool)?;
            a.output.emit(&r, || r.table())?;
        }
        Cmd::Interleave(a) => interleave(&a)?,
        Cmd::GenZones(a) => {
            let names = a.names.clone().unwrap_or_else(|| {
                let mut p = a.out.clone().into_os_string();
                p.push(".names");
                PathBuf::from(p)
            });
            let cfg = zonegen::GenConfig {
                csv: a.csv,
                out: a.out.clone(),
                names: names.clone(),
                operators: a.operators,
                unknown: a.unknown,
                seed: a.seed,
                apex: a.apex.trim_end_matches('.').to_string(),
                skip_colliding: a.skip_colliding,
                force: a.force,
            };
            let s = zonegen::generate(&cfg)?;
            println!(
                "wrote {} templates to {} ({} real, {} synthetic{}); names file {} ({} known, {} unknown)",
                s.files,
                a.out.display(),
                s.real,
                s.synthetic,
                if s.skipped_colliding > 0 { format!(", {} colliding skipped", s.skipped_colliding) } else { String::new() },
                names.display(),
                s.known_names,
                s.unknown_names
            );
        }
        Cmd::Queries(a) => {
            let names = mix::read_names(&a.names)?;
            let specs = mix::generate(&names, &a.mix, a.count.max(1), a.seed, !a.no_random_case)?;
            mix::write_queries(&a.out, &specs, !a.dnsperf)?;
        }
        Cmd::Wait(a) => {
            let qtype = wire::parse_type(&a.qtype)
                .with_context(|| format!("unknown type {:?}", a.qtype))?;
            let mut r = probe::wait_ready(
                a.target,
                &a.name,
                qtype,
                a.since_ns,
                Duration::from_millis(a.interval_ms.max(1)),
                secs(a.timeout, "--timeout")?,
                a.server_pid,
            )?;
            r.tags = a.tags.into_iter().collect();
            a.output.emit(&r, || {
                format!(
                    "{} answered {} after {:.1} ms ({} attempts)\n",
                    r.target, r.name, r.ready_ms, r.attempts
                )
            })?;
        }
        Cmd::Reload(a) => {
            let (load, pool) = a.load.build(&a.server)?;
            let cfg = probe::ReloadConfig {
                load,
                file: a.file,
                name: a.name,
                change_at: secs(a.change_at, "--change-at")?,
                max_wait: secs(a.max_wait, "--max-wait")?,
                write_mode: if a.in_place {
                    probe::WriteMode::InPlace
                } else {
                    probe::WriteMode::Rename
                },
                restore: !a.no_restore,
                settle: secs(a.settle, "--settle")?,
            };
            let r = probe::reload(&cfg, &pool)?;
            a.output.emit(&r, || {
                let when = match r.reload_ms {
                    Some(ms) => format!("{ms:.1} ms"),
                    None => "never (within the wait)".into(),
                };
                format!(
                    "reload of {} -> {} seen after {when}\n{}",
                    r.file,
                    r.new_address,
                    r.load.table()
                )
            })?;
        }
        Cmd::Proc { pid } => {
            let v = serde_json::json!({
                "pid": pid,
                "cpu": procfs::cpu_of_tree(pid)?,
                "mem": procfs::mem_of_tree(pid)?,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::Report(a) => return report::main(&a),
        Cmd::Median {
            results,
            scenario,
            server,
            field,
        } => {
            let res = report::load(&results)?;
            let f = |r: &bsf_bench::results::RunResult| -> Option<f64> {
                match field.as_str() {
                    "qps" => Some(r.qps),
                    "p99_us" => Some(r.latency_us.p99),
                    "us_per_query" => r.server_cpu.map(|c| c.us_per_query),
                    "user_us_per_query" => r.server_cpu.map(|c| c.user_us_per_query),
                    "share" => r.server_cpu.map(|c| c.share),
                    _ => None,
                }
            };
            match res.med(&scenario, &server, f) {
                Some(v) => println!("{v:.0}"),
                None => bail!(
                    "no {field} for scenario {scenario:?}, server {server:?} in {}",
                    results.display()
                ),
            }
        }
        Cmd::FreePort => println!("{}", free_port()?),
        Cmd::Quiet {
            max_busy,
            window,
            timeout,
        } => {
            let window = secs(window, "--window")?.max(Duration::from_millis(50));
            let deadline = std::time::Instant::now() + secs(timeout, "--timeout")?;
            loop {
                let before = procfs::machine_cpu()?;
                std::thread::sleep(window);
                let busy = procfs::machine_cpu()?.since(&before).busy_s / window.as_secs_f64();
                if busy <= max_busy {
                    return Ok(ExitCode::SUCCESS);
                }
                if std::time::Instant::now() >= deadline {
                    eprintln!("bsf-bench: the machine stayed busy ({busy:.2} cores)");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn interleave(a: &InterleaveArgs) -> Result<()> {
    if a.servers.len() < 2 {
        bail!("give two or more --server (one server is what `run` is for)");
    }
    for (i, s) in a.servers.iter().enumerate() {
        if a.servers[..i].iter().any(|o| o.name == s.name) {
            bail!("two servers named {:?}", s.name);
        }
    }
    if let Some(out) = &a.out {
        if !out.contains("{server}") {
            bail!("--out {out:?} must contain {{server}}: one file is written per server");
        }
    }
    let slice = secs(a.slice, "--slice")?;
    if slice < Duration::from_millis(10) {
        bail!("--slice must be at least 0.01 s");
    }
    let mut cfgs = Vec::with_capacity(a.servers.len());
    for s in &a.servers {
        let mut cfg = a.load.config(&s.target)?;
        // One progress line for all servers (run_interleaved's), none per slice.
        cfg.progress = false;
        cfg.tags.insert("server".into(), s.name.clone());
        cfg.tags.extend(s.tags.iter().cloned());
        cfgs.push(cfg);
    }
    let pool = a.load.pool()?;
    let results = load::run_interleaved(&cfgs, &pool, slice, !a.load.quiet)?;
    for (s, r) in a.servers.iter().zip(&results) {
        if let Some(out) = &a.out {
            let path = out.replace("{server}", &s.name);
            std::fs::write(&path, format!("{}\n", serde_json::to_string_pretty(r)?))
                .with_context(|| format!("writing {path}"))?;
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!("{}", r.table());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bsf-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_items_of_interleave() {
        let s =
            parse_server("name=floor,target=127.0.0.1:5399,pid=42,lenient,tag.scenario=x").unwrap();
        assert_eq!(s.name, "floor");
        assert_eq!(s.target.target, "127.0.0.1:5399".parse().unwrap());
        assert_eq!(s.target.server_pid, Some(42));
        assert!(s.target.lenient);
        assert_eq!(s.tags, vec![("scenario".to_string(), "x".to_string())]);
        let plain = parse_server("target=[::1]:53,name=b").unwrap();
        assert_eq!(
            (plain.target.server_pid, plain.target.lenient),
            (None, false)
        );
        for bad in [
            "name=a",
            "target=127.0.0.1:53",
            "name=,target=127.0.0.1:53",
            "name=a,target=localhost",
            "name=a,target=127.0.0.1:53,pid=x",
            "name=a,target=127.0.0.1:53,fast",
            "name=a,target=127.0.0.1:53,tag.novalue",
        ] {
            assert!(parse_server(bad).is_err(), "{bad} accepted");
        }
    }
}
