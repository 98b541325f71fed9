//! The result of one load run: counters, latency percentiles, server CPU and memory, as JSON
//! for machines and as a small table for people.

use crate::procfs::{Cpu, Mem};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Why answers were judged wrong (see [`crate::wire::Verdict`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrongDetail {
    pub malformed: u64,
    pub not_response: u64,
    pub bad_question: u64,
    pub not_authoritative: u64,
    pub bad_rcode: u64,
}

impl WrongDetail {
    /// All wrong answers.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.not_response
            + self.bad_question
            + self.not_authoritative
            + self.bad_rcode
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// Reads percentiles off a histogram recorded in nanoseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// The server's CPU over the measured window, and per answered query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCpu {
    pub user_s: f64,
    pub system_s: f64,
    /// CPU seconds per wall-clock second (1.0 = one core fully busy).
    pub share: f64,
    pub us_per_query: f64,
    pub user_us_per_query: f64,
    pub system_us_per_query: f64,
    /// Answered QPS divided by CPU share: what one fully busy core would answer.
    pub capacity_qps: f64,
}

impl ServerCpu {
    /// Derives the per-query numbers from CPU used over `wall_s` while `answered` were answered.
    pub fn from_usage(cpu: Cpu, wall_s: f64, answered: u64) -> ServerCpu {
        let per = |s: f64| {
            if answered > 0 {
                s * 1e6 / answered as f64
            } else {
                0.0
            }
        };
        let share = if wall_s > 0.0 {
            cpu.total_s() / wall_s
        } else {
            0.0
        };
        let qps = if wall_s > 0.0 {
            answered as f64 / wall_s
        } else {
            0.0
        };
        ServerCpu {
            user_s: cpu.user_s,
            system_s: cpu.system_s,
            share,
            us_per_query: per(cpu.total_s()),
            user_us_per_query: per(cpu.user_s),
            system_us_per_query: per(cpu.system_s),
            capacity_qps: if share > 0.0 { qps / share } else { 0.0 },
        }
    }
}

/// What else the machine did during the measured window (in cores: CPU seconds per second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineLoad {
    /// All CPUs' busy time.
    pub busy_cores: f64,
    /// Busy time not spent by the client or the server: other processes, interrupts.
    /// Much above 0.05 means the numbers of this run were disturbed.
    pub other_cores: f64,
    /// Hypervisor steal.
    pub steal_cores: f64,
}

/// One server thread's CPU over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadCpu {
    pub tid: i32,
    pub name: String,
    pub cpu_s: f64,
}

fn one_window() -> u64 {
    1
}

/// Everything one `bsf-bench run` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Free-form labels from `--tag k=v` (the comparison script sets server, scenario, round).
    pub tags: BTreeMap<String, String>,
    pub target: String,
    pub transport: String,
    /// "closed" or "open".
    pub mode: String,
    pub outstanding: Option<u64>,
    pub target_qps: Option<f64>,
    pub lanes: u64,
    pub batch: u64,
    pub pool: u64,
    pub lenient: bool,
    /// Length of the measured window (warm-up excluded), seconds; interleaved runs: of all the
    /// slices together.
    pub duration_s: f64,
    /// Measured windows: 1 for a plain run, one per slice for `bsf-bench interleave`.
    #[serde(default = "one_window")]
    pub windows: u64,
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
    pub wrong: u64,
    pub wrong_detail: WrongDetail,
    pub truncated: u64,
    /// Responses matching no outstanding query (late after the timeout, or duplicated).
    pub unexpected: u64,
    /// Open loop only: queries the client could not send on schedule (no free ID, or the
    /// kernel refused them); they are not in `sent`.
    pub unsent: u64,
    /// Mean size of the answered responses (DNS message, without UDP/IP headers).
    #[serde(default)]
    pub mean_response_bytes: f64,
    pub sent_qps: f64,
    /// Answered queries per second (right or wrong).
    pub qps: f64,
    pub loss_ratio: f64,
    pub latency_us: Latency,
    /// Open loop: how far behind schedule the client ever was, microseconds.
    pub max_lag_us: f64,
    pub client_cpu: Cpu,
    pub server_pid: Option<i32>,
    pub server_cpu: Option<ServerCpu>,
    pub server_mem: Option<Mem>,
    pub machine: Option<MachineLoad>,
    /// CPU seconds of each busy thread of the server's main process over the window (threads
    /// under 1% of the total left out), busiest first: shows how work spreads over threads.
    #[serde(default)]
    pub server_threads: Vec<ThreadCpu>,
    /// Notes worth a reader's attention (e.g. the client could not keep up).
    pub notes: Vec<String>,
}

impl RunResult {
    /// A human-readable summary table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mode = match (self.mode.as_str(), self.outstanding, self.target_qps) {
            ("closed", Some(n), _) => format!("closed loop, {n} outstanding"),
            ("open", _, Some(r)) => format!("open loop at {r:.0} q/s"),
            (m, _, _) => m.to_string(),
        };
        let _ = writeln!(
            s,
            "target      {} ({}, {mode}; {} lanes, batch {})",
            self.target, self.transport, self.lanes, self.batch
        );
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, "tags        {}", tags.join(" "));
        }
        if self.windows > 1 {
            let _ = writeln!(
                s,
                "duration    {:.2} s measured, in {} slices",
                self.duration_s, self.windows
            );
        } else {
            let _ = writeln!(s, "duration    {:.2} s measured", self.duration_s);
        }
        let _ = writeln!(
            s,
            "queries     sent {}  answered {}  lost {} ({:.4}%)",
            self.sent,
            self.answered,
            self.lost,
            self.loss_ratio * 100.0
        );
        let w = &self.wrong_detail;
        let _ =
            writeln!(
            s,
            "wrong       {}  (rcode {}, question {}, not-AA {}, not-response {}, malformed {}){}",
            self.wrong,
            w.bad_rcode,
            w.bad_question,
            w.not_authoritative,
            w.not_response,
            w.malformed,
            if self.lenient { "  [lenient: rcode/AA not checked]" } else { "" }
        );
        if self.truncated + self.unexpected + self.unsent > 0 {
            let _ = writeln!(
                s,
                "other       truncated {}  unexpected {}  unsent {}",
                self.truncated, self.unexpected, self.unsent
            );
        }
        let _ = writeln!(
            s,
            "rate        {:.0} answered/s  ({:.0} sent/s); responses {:.0} bytes on average",
            self.qps, self.sent_qps, self.mean_response_bytes
        );
        let l = &self.latency_us;
        let _ = writeln!(
            s,
            "latency µs  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (mean {:.1})",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
        if let Some(c) = &self.server_cpu {
            let _ = writeln!(
                s,
                "server CPU  {:.3} µs/query (user {:.3}, system {:.3});  {:.1}% of a core;  capacity {:.0} q/s per core",
                c.us_per_query,
                c.user_us_per_query,
                c.system_us_per_query,
                c.share * 100.0,
                c.capacity_qps
            );
        }
        if self.server_threads.len() > 1 {
            let parts: Vec<String> = self
                .server_threads
                .iter()
                .map(|t| format!("{} {:.2} s", t.name, t.cpu_s))
                .collect();
            let _ = writeln!(s, "threads     {}", parts.join(", "));
        }
        if let Some(m) = &self.server_mem {
            let _ = writeln!(
                s,
                "server mem  VmRSS {:.1} MiB (tree {:.1} MiB, PSS {:.1} MiB, {} processes)",
                m.rss_main_kib as f64 / 1024.0,
                m.rss_tree_kib as f64 / 1024.0,
                m.pss_tree_kib as f64 / 1024.0,
                m.processes
            );
        }
        let _ = writeln!(
            s,
            "client CPU  user {:.2} s, system {:.2} s",
            self.client_cpu.user_s, self.client_cpu.system_s
        );
        for n in &self.notes {
            let _ = writeln!(s, "note        {n}");
        }
        s
    }
}
