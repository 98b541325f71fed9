//! The load engine: closed loop (keep N queries outstanding, to find the maximum rate) and open
//! loop (send on a fixed schedule, to measure latency at a given load), over UDP or TCP.
//!
//! One thread drives every lane (socket or connection). Each lane has a table of the 65,536
//! possible query IDs; a response is matched by (lane, ID), judged against the query it answers
//! ([`crate::wire::check`]) and its latency recorded in an HDR histogram. Queries unanswered
//! after `timeout` are lost, and recorded in the histogram at the time they were given up. In
//! the open loop, latency is measured from the *scheduled* send time, so a stalled client or
//! server cannot hide queueing delay (no coordinated omission).
//!
//! The server's CPU is read from `/proc` when the measured window opens and after the last
//! response (or timeout) of the queries sent in it.

use crate::mix::Pool;
use crate::net::{self, Lane, TcpLane, UdpLane};
use crate::procfs;
use crate::results::{Latency, MachineLoad, RunResult, ServerCpu, ThreadCpu, WrongDetail};
use crate::wire::{self, Verdict};
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// How queries are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Keep this many queries outstanding at all times.
    Closed { outstanding: u64 },
    /// Send this many queries per second on a fixed schedule.
    Open { rate: f64 },
}

/// Everything a run needs besides the query pool.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: SocketAddr,
    pub transport: Transport,
    pub mode: Mode,
    pub duration: Duration,
    pub warmup: Duration,
    pub lanes: usize,
    pub batch: usize,
    pub timeout: Duration,
    pub lenient: bool,
    /// UDP: send runs of equal-length queries with GSO (see [`crate::net::UdpLane`]).
    pub gso: bool,
    /// Never sleep between sends and receives (the client core spins; the server's
    /// numbers are unaffected, its wake-ups may be fewer).
    pub busy_poll: bool,
    pub server_pid: Option<i32>,
    pub progress: bool,
    /// Ends the run early when set (the reload probe stops the load once it has seen the
    /// change and let it settle).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    pub tags: BTreeMap<String, String>,
}

/// At most this many queries outstanding per lane (IDs are 16 bits; keep some free so the
/// allocator always finds one quickly).
const LANE_LIMIT: u32 = 60_000;
const FREE: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Slot {
    /// Send time (scheduled time in the open loop), ns since start; `FREE` if unused.
    sent_ns: u64,
    pool: u32,
    /// Sent inside the measured window.
    measured: bool,
}

struct LaneState {
    slots: Vec<Slot>,
    next_id: u16,
    outstanding: u32,
    dead: bool,
}

impl LaneState {
    fn new() -> LaneState {
        LaneState {
            slots: vec![
                Slot {
                    sent_ns: FREE,
                    pool: 0,
                    measured: false
                };
                65_536
            ],
            next_id: 0,
            outstanding: 0,
            dead: false,
        }
    }

    /// The next free ID at or after `next_id` (the table is never full: see `LANE_LIMIT`).
    fn free_id(&mut self) -> u16 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if self.slots[usize::from(id)].sent_ns == FREE {
                return id;
            }
        }
    }
}

#[derive(Default)]
struct Counters {
    sent: u64,
    answered: u64,
    lost: u64,
    wrong: WrongDetail,
    truncated: u64,
    unexpected: u64,
    unsent: u64,
    response_bytes: u64,
}

struct Engine<'a> {
    cfg: &'a LoadConfig,
    pool: &'a Pool,
    lanes: Vec<Lane>,
    states: Vec<LaneState>,
    /// (lane, id, sent_ns) in send order, for finding timeouts.
    order: VecDeque<(u16, u16, u64)>,
    hist: Histogram<u64>,
    c: Counters,
    outstanding: u64,
    pool_cursor: usize,
    lane_cursor: usize,
    start: Instant,
    measure_from_ns: u64,
    measuring: bool,
    sbuf: Vec<u8>,
    sinfo: Vec<(u16, u16, u32, usize, usize)>,
}

impl<'a> Engine<'a> {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Sends up to `n` queries on the next live lane. `sched`: scheduled time of the first one
    /// and spacing (open loop); `None` stamps them with the time of sending.
    /// Returns how many went out.
    fn send_batch(&mut self, n: usize, sched: Option<(u64, f64)>) -> Result<usize> {
        let lanes = self.lanes.len();
        let mut li = self.lane_cursor;
        let mut tries = 0;
        while self.states[li].dead || self.states[li].outstanding >= LANE_LIMIT {
            li = (li + 1) % lanes;
            tries += 1;
            if tries > lanes {
                return Ok(0);
            }
        }
        self.lane_cursor = (li + 1) % lanes;
        let room = (LANE_LIMIT - self.states[li].outstanding) as usize;
        let n = n.min(self.cfg.batch).min(room);
        self.sbuf.clear();
        self.sinfo.clear();
        // Tentatively pick IDs; slots are only marked once the kernel took the datagrams.
        let saved_next = self.states[li].next_id;
        for k in 0..n {
            let pi = (self.pool_cursor + k) % self.pool.len();
            let (msg, _, _) = self.pool.get(pi);
            let id = self.states[li].free_id();
            let off = self.sbuf.len();
            self.sbuf.extend_from_slice(msg);
            self.sbuf[off..off + 2].copy_from_slice(&id.to_be_bytes());
            self.sinfo.push((li as u16, id, pi as u32, off, msg.len()));
        }
        let msgs: Vec<&[u8]> = self
            .sinfo
            .iter()
            .map(|&(_, _, _, off, len)| &self.sbuf[off..off + len])
            .collect();
        let stamp = self.now_ns();
        let sent = match self.lanes[li].send(&msgs) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("bsf-bench: lane {li}: {e}; dropping it");
                self.states[li].dead = true;
                0
            }
        };
        drop(msgs);
        if sent < n {
            // Datagrams the kernel refused keep their pool entries for the next try.
            self.states[li].next_id = saved_next;
        }
        for (k, &(_, id, pi, _, _)) in self.sinfo[..sent].iter().enumerate() {
            let t = match sched {
                Some((first, step)) => first + (k as f64 * step) as u64,
                None => stamp,
            };
            self.states[li].slots[usize::from(id)] = Slot {
                sent_ns: t,
                pool: pi,
                measured: self.measuring,
            };
            self.order.push_back((li as u16, id, t));
        }
        if sent > 0 {
            // Re-advance past the IDs actually used.
            if sent < n {
                self.states[li].next_id = self.sinfo[sent - 1].1.wrapping_add(1);
            }
            self.states[li].outstanding += sent as u32;
        }
        self.outstanding += sent as u64;
        self.pool_cursor = (self.pool_cursor + sent) % self.pool.len();
        if self.measuring {
            self.c.sent += sent as u64;
        }
        Ok(sent)
    }

    /// Takes every response that has arrived on every lane. Returns how many.
    fn receive(&mut self) -> usize {
        let mut got = 0;
        for li in 0..self.lanes.len() {
            if self.states[li].dead {
                continue;
            }
            let now = self.now_ns();
            let st = &mut self.states[li];
            let pool = self.pool;
            let lenient = self.cfg.lenient;
            let hist = &mut self.hist;
            let c = &mut self.c;
            let outstanding = &mut self.outstanding;
            let r = self.lanes[li].recv(&mut |resp: &[u8]| {
                let id = usize::from(wire::id_of(resp));
                let slot = st.slots[id];
                if slot.sent_ns == FREE || resp.len() < 2 {
                    c.unexpected += 1;
                    return;
                }
                st.slots[id].sent_ns = FREE;
                st.outstanding -= 1;
                *outstanding -= 1;
                if !slot.measured {
                    return;
                }
                let (q, qlen, expect) = pool.get(slot.pool as usize);
                c.answered += 1;
                c.response_bytes += resp.len() as u64;
                match wire::check(resp, q, qlen, expect, lenient) {
                    Verdict::Ok => {}
                    Verdict::Truncated => c.truncated += 1,
                    Verdict::Malformed => c.wrong.malformed += 1,
                    Verdict::NotResponse => c.wrong.not_response += 1,
                    Verdict::BadQuestion => c.wrong.bad_question += 1,
                    Verdict::NotAuthoritative => c.wrong.not_authoritative += 1,
                    Verdict::BadRcode(_) => c.wrong.bad_rcode += 1,
                }
                let _ = hist.record(now.saturating_sub(slot.sent_ns).max(1));
            });
            match r {
                Ok(n) => got += n,
                Err(e) => {
                    eprintln!("bsf-bench: lane {li}: {e}; dropping it");
                    self.states[li].dead = true;
                }
            }
        }
        got
    }

    /// Frees queries older than the timeout, counting them lost; also drops answered entries
    /// from the front of the send-order queue.
    fn expire(&mut self, now: u64, timeout_ns: u64) {
        while let Some(&(li, id, t)) = self.order.front() {
            let st = &mut self.states[usize::from(li)];
            let slot = st.slots[usize::from(id)];
            if slot.sent_ns != t {
                self.order.pop_front();
                continue;
            }
            if now < t.saturating_add(timeout_ns) {
                break;
            }
            st.slots[usize::from(id)].sent_ns = FREE;
            st.outstanding -= 1;
            self.outstanding -= 1;
            if slot.measured {
                self.c.lost += 1;
                // A lost query is the worst latency a client sees (it waits out its timeout
                // before it retries): counted in the distribution, so that a server dropping
                // its slowest queries does not show a better tail for it.
                let _ = self.hist.record(now.saturating_sub(t).max(1));
            }
            self.order.pop_front();
        }
    }

    fn lanes_alive(&self) -> bool {
        self.states.iter().any(|s| !s.dead)
    }
}

/// Runs one load test and returns what it measured.
pub fn run(cfg: &LoadConfig, pool: &Pool) -> Result<RunResult> {
    net::tighten_timer_slack();
    let lanes_n = cfg.lanes.clamp(1, 4096);
    let mut lanes = Vec::with_capacity(lanes_n);
    for _ in 0..lanes_n {
        lanes.push(match cfg.transport {
            Transport::Udp => Lane::Udp(
                UdpLane::connect(cfg.target, cfg.batch, cfg.gso).context("opening a UDP socket")?,
            ),
            Transport::Tcp => Lane::Tcp(
                TcpLane::connect(cfg.target, Duration::from_secs(3))
                    .with_context(|| format!("connecting to {} over TCP", cfg.target))?,
            ),
        });
    }
    let hist = Histogram::<u64>::new_with_bounds(1, 120_000_000_000, 3)
        .context("creating the latency histogram")?;
    let mut e = Engine {
        cfg,
        pool,
        lanes,
        states: (0..lanes_n).map(|_| LaneState::new()).collect(),
        order: VecDeque::with_capacity(1 << 16),
        hist,
        c: Counters::default(),
        outstanding: 0,
        pool_cursor: 0,
        lane_cursor: 0,
        start: Instant::now(),
        measure_from_ns: 0,
        measuring: false,
        sbuf: Vec::with_capacity(cfg.batch * 512),
        sinfo: Vec::with_capacity(cfg.batch),
    };
    let me = std::process::id() as i32;
    let warm_ns = cfg.warmup.as_nanos() as u64;
    let end_ns = warm_ns + cfg.duration.as_nanos() as u64;
    let timeout_ns = cfg.timeout.as_nanos() as u64;
    let mut cpu_before = None;
    // The server's process tree, found once: scanning /proc takes milliseconds, too long to do
    // at the start of the measured window.
    let server_tree = match cfg.server_pid {
        Some(pid) => {
            Some(procfs::process_tree(pid).with_context(|| format!("--server-pid {pid}"))?)
        }
        None => None,
    };
    let mut client_before = procfs::Cpu::default();
    let mut threads_before: Vec<(i32, String, procfs::Cpu)> = Vec::new();
    let mut machine_before = None;
    let mut pfds = Vec::with_capacity(lanes_n);
    let mut scheduled: u64 = 0; // open loop: queries due so far that went out
    let mut max_lag_ns: u64 = 0;
    let tty = std::io::stderr().is_terminal();
    let mut next_progress = 1_000_000_000u64;
    let mut last = (0u64, 0u64, 0u64);
    let batch = cfg.batch.max(1);

    loop {
        let now = e.now_ns();
        if !e.measuring && now >= warm_ns {
            e.measuring = true;
            e.measure_from_ns = now;
            e.hist.reset();
            e.c = Counters::default();
            cpu_before = server_tree.as_deref().map(procfs::cpu_of_pids);
            threads_before = cfg.server_pid.map(procfs::thread_cpu).unwrap_or_default();
            client_before = procfs::cpu_of_pids(&[me]);
            machine_before = procfs::machine_cpu().ok();
        }
        let stopped = cfg
            .stop
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed));
        if now >= end_ns || stopped || !e.lanes_alive() {
            break;
        }
        let mut sent_any = false;
        match cfg.mode {
            Mode::Closed { outstanding } => {
                // Refill in whole batches: one system call per batch is the point of batching.
                let refill_at = (batch as u64).min(outstanding.div_ceil(2)).max(1);
                while outstanding - e.outstanding.min(outstanding) >= refill_at {
                    let want = (outstanding - e.outstanding) as usize;
                    let k = e.send_batch(want.min(batch), None)?;
                    if k == 0 {
                        break;
                    }
                    sent_any = true;
                }
            }
            Mode::Open { rate } => {
                let step = 1e9 / rate;
                let due = ((now as f64) / step) as u64 + 1;
                while scheduled < due {
                    let first = (scheduled as f64 * step) as u64;
                    let want = ((due - scheduled) as usize).min(batch);
                    let k = e.send_batch(want, Some((first, step)))?;
                    if k == 0 {
                        break;
                    }
                    scheduled += k as u64;
                    sent_any = true;
                    if e.measuring {
                        max_lag_ns = max_lag_ns.max(e.now_ns().saturating_sub(first));
                    }
                }
                // Queries more than a timeout behind schedule will never be sent in time:
                // count them as unsent and move the schedule on.
                let floor = ((now.saturating_sub(timeout_ns) as f64) / step) as u64;
                if scheduled < floor {
                    if e.measuring {
                        e.c.unsent += floor - scheduled;
                    }
                    scheduled = floor;
                }
            }
        }
        for l in e.lanes.iter_mut() {
            if let Err(err) = l.flush() {
                eprintln!("bsf-bench: {err}");
            }
        }
        let got = e.receive();
        let now = e.now_ns();
        e.expire(now, timeout_ns);
        if cfg.progress && e.measuring && now >= next_progress {
            let secs = (now - e.measure_from_ns) as f64 / 1e9;
            let dt = 1.0;
            let line = format!(
                "[{:6.1}s] sent {:>8.0}/s  answered {:>8.0}/s  lost {}  wrong {}  outstanding {}",
                secs,
                (e.c.sent - last.0) as f64 / dt,
                (e.c.answered - last.1) as f64 / dt,
                e.c.lost,
                e.c.wrong.total(),
                e.outstanding
            );
            if tty {
                eprint!("\r{line}  ");
            } else {
                eprintln!("{line}");
            }
            last = (e.c.sent, e.c.answered, e.c.lost);
            next_progress += 1_000_000_000;
        }
        if got == 0 && !sent_any {
            let wait = match cfg.mode {
                Mode::Closed { .. } => Duration::from_millis(1),
                Mode::Open { rate } => {
                    let next_due = ((scheduled as f64 + 1.0) * 1e9 / rate) as u64;
                    Duration::from_nanos(next_due.saturating_sub(now).min(1_000_000))
                }
            };
            if !wait.is_zero() && !cfg.busy_poll {
                net::wait_any(&e.lanes, &mut pfds, wait);
            }
        }
    }
    let window_end = e.now_ns();
    if cfg.progress && tty {
        eprintln!();
    }
    // Drain: wait for the answers still due, at most one timeout.
    let drain_end = window_end + timeout_ns;
    while e.outstanding > 0 && e.lanes_alive() {
        for l in e.lanes.iter_mut() {
            let _ = l.flush();
        }
        let got = e.receive();
        let now = e.now_ns();
        if now >= drain_end {
            e.expire(u64::MAX, 0);
            break;
        }
        e.expire(now, timeout_ns);
        if got == 0 {
            net::wait_any(&e.lanes, &mut pfds, Duration::from_millis(1));
        }
    }
    // Lanes that died leave queries outstanding: they are lost.
    e.expire(u64::MAX, 0);
    let server_cpu = match (&server_tree, cpu_before) {
        (Some(tree), Some(before)) => Some(procfs::cpu_of_pids(tree).since(&before)),
        _ => None,
    };
    let mut server_threads: Vec<ThreadCpu> = match cfg.server_pid {
        Some(pid) => procfs::thread_cpu(pid)
            .into_iter()
            .map(|(tid, name, after)| {
                let before = threads_before
                    .iter()
                    .find(|t| t.0 == tid)
                    .map(|t| t.2)
                    .unwrap_or_default();
                ThreadCpu {
                    tid,
                    name,
                    cpu_s: after.since(&before).total_s(),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let threads_total: f64 = server_threads.iter().map(|t| t.cpu_s).sum();
    server_threads.retain(|t| t.cpu_s > threads_total * 0.01 && t.cpu_s > 0.0);
    server_threads.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
    let server_mem = match cfg.server_pid {
        Some(pid) => procfs::mem_of_tree(pid).ok(),
        None => None,
    };
    let client_cpu = procfs::cpu_of_pids(&[me]).since(&client_before);
    let machine_used = match (machine_before, procfs::machine_cpu().ok()) {
        (Some(b), Some(a)) => Some(a.since(&b)),
        _ => None,
    };
    let wall_s = (e.now_ns().saturating_sub(e.measure_from_ns) as f64 / 1e9).max(1e-9);
    let window_s = window_end.saturating_sub(e.measure_from_ns) as f64 / 1e9;
    let machine = machine_used.map(|m| {
        let ours = client_cpu.total_s() + server_cpu.map(|c| c.total_s()).unwrap_or(0.0);
        MachineLoad {
            busy_cores: m.busy_s / wall_s,
            other_cores: ((m.busy_s - ours) / wall_s).max(0.0),
            steal_cores: m.steal_s / wall_s,
        }
    });
    let c = &e.c;
    let mut notes = Vec::new();
    if let Mode::Open { rate } = cfg.mode {
        let sent_rate = c.sent as f64 / window_s.max(1e-9);
        if sent_rate < rate * 0.98 {
            notes.push(format!("the client sent only {sent_rate:.0} q/s of the {rate:.0} asked: it (or the server's socket) could not keep up"));
        }
        if max_lag_ns > 5_000_000 {
            notes.push(format!("the client fell up to {:.1} ms behind schedule (latency is measured from the schedule)", max_lag_ns as f64 / 1e6));
        }
    }
    if let (Mode::Closed { .. }, Some(cpu)) = (cfg.mode, server_cpu) {
        let share = cpu.total_s() / window_s.max(1e-9);
        if share < 0.90 {
            notes.push(format!(
                "the server was busy only {:.0}% of a core: the maximum rate is bounded by the client or by the number of outstanding queries, not by the server",
                share * 100.0
            ));
        }
    }
    if let Some(m) = machine {
        if m.other_cores > 0.10 || m.steal_cores > 0.10 {
            notes.push(format!(
                "other work on the machine used {:.2} cores (steal {:.2}) during the run: these numbers are disturbed",
                m.other_cores, m.steal_cores
            ));
        }
    }
    if e.states.iter().any(|s| s.dead) {
        notes.push("some lanes failed during the run (see stderr)".into());
    }
    Ok(RunResult {
        tags: cfg.tags.clone(),
        target: cfg.target.to_string(),
        transport: match cfg.transport {
            Transport::Udp => "udp".into(),
            Transport::Tcp => "tcp".into(),
        },
        mode: match cfg.mode {
            Mode::Closed { .. } => "closed".into(),
            Mode::Open { .. } => "open".into(),
        },
        outstanding: match cfg.mode {
            Mode::Closed { outstanding } => Some(outstanding),
            Mode::Open { .. } => None,
        },
        target_qps: match cfg.mode {
            Mode::Open { rate } => Some(rate),
            Mode::Closed { .. } => None,
        },
        lanes: lanes_n as u64,
        batch: cfg.batch as u64,
        pool: pool.len() as u64,
        lenient: cfg.lenient,
        duration_s: window_s,
        sent: c.sent,
        answered: c.answered,
        lost: c.lost,
        wrong: c.wrong.total(),
        wrong_detail: c.wrong,
        truncated: c.truncated,
        unexpected: c.unexpected,
        unsent: c.unsent,
        mean_response_bytes: if c.answered > 0 {
            c.response_bytes as f64 / c.answered as f64
        } else {
            0.0
        },
        sent_qps: c.sent as f64 / window_s.max(1e-9),
        qps: c.answered as f64 / window_s.max(1e-9),
        loss_ratio: if c.sent > 0 {
            c.lost as f64 / c.sent as f64
        } else {
            0.0
        },
        latency_us: Latency::from_histogram(&e.hist),
        max_lag_us: max_lag_ns as f64 / 1000.0,
        client_cpu,
        server_pid: cfg.server_pid,
        server_cpu: server_cpu.map(|cpu| ServerCpu::from_usage(cpu, window_s, c.answered)),
        server_mem,
        machine,
        server_threads,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::{self, Mix, NameList};
    use std::net::UdpSocket;

    fn pool() -> Pool {
        let names = NameList {
            known: vec![
                "bsf.mnc01.mcc202.lwm2m.org".into(),
                "bsf.mnc460.mcc313.lwm2m.org".into(),
            ],
            unknown: vec!["bsf.mnc99.mcc999.lwm2m.org".into()],
        };
        let specs = mix::generate(&names, &Mix::default(), 500, 1, true).unwrap();
        Pool::build(&specs, Some(1232), &[]).unwrap()
    }

    fn floor() -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || crate::floor::serve_socket(&sock, 32, None));
        addr
    }

    fn config(target: SocketAddr, mode: Mode, lenient: bool) -> LoadConfig {
        LoadConfig {
            target,
            transport: Transport::Udp,
            mode,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            lanes: 2,
            batch: 16,
            timeout: Duration::from_millis(500),
            lenient,
            gso: false,
            busy_poll: false,
            server_pid: Some(std::process::id() as i32),
            progress: false,
            tags: BTreeMap::new(),
            stop: None,
        }
    }

    #[test]
    fn closed_loop_against_the_floor() {
        let target = floor();
        let r = run(
            &config(target, Mode::Closed { outstanding: 32 }, true),
            &pool(),
        )
        .unwrap();
        assert!(r.answered > 100, "{}", r.table());
        assert_eq!(r.wrong, 0, "{}", r.table());
        assert_eq!(r.lost, 0, "{}", r.table());
        assert_eq!(r.sent, r.answered);
        assert!(r.latency_us.p50 > 0.0);
        assert!(r.server_cpu.is_some() && r.server_mem.is_some());
    }

    #[test]
    fn strict_checks_catch_the_floor_s_fake_answers() {
        // The floor answers NOERROR for unknown names too: strict mode must count those wrong.
        let target = floor();
        let r = run(
            &config(target, Mode::Closed { outstanding: 16 }, false),
            &pool(),
        )
        .unwrap();
        assert!(r.wrong_detail.bad_rcode > 0, "{}", r.table());
        assert_eq!(r.wrong_detail.bad_question, 0);
    }

    #[test]
    fn open_loop_keeps_the_rate_and_gso_changes_nothing() {
        let target = floor();
        let mut cfg = config(target, Mode::Open { rate: 5000.0 }, true);
        cfg.gso = true;
        let mut p = pool();
        p.group_runs(16, 1);
        let r = run(&cfg, &p).unwrap();
        assert!((r.sent as f64 - 1500.0).abs() < 150.0, "{}", r.table());
        assert_eq!(r.wrong, 0, "{}", r.table());
        assert_eq!(r.lost, 0, "{}", r.table());
    }

    /// A TCP responder for tests: echoes each length-prefixed query with QR and AA set.
    fn tcp_floor() -> SocketAddr {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { return };
                std::thread::spawn(move || {
                    let mut len = [0u8; 2];
                    while c.read_exact(&mut len).is_ok() {
                        let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if c.read_exact(&mut m).is_err() {
                            return;
                        }
                        m[2] |= 0x84;
                        if c.write_all(&len).and_then(|_| c.write_all(&m)).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn tcp_pipelining() {
        let target = tcp_floor();
        let mut cfg = config(target, Mode::Closed { outstanding: 32 }, true);
        cfg.transport = Transport::Tcp;
        let r = run(&cfg, &pool()).unwrap();
        assert!(r.answered > 100, "{}", r.table());
        assert_eq!(r.wrong + r.lost, 0, "{}", r.table());
        assert_eq!(r.transport, "tcp");
    }

    #[test]
    fn silence_is_loss() {
        // A socket that never answers: every measured query is lost after the timeout.
        let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = mute.local_addr().unwrap();
        let mut cfg = config(target, Mode::Closed { outstanding: 8 }, true);
        cfg.timeout = Duration::from_millis(100);
        cfg.server_pid = None;
        let r = run(&cfg, &pool()).unwrap();
        assert_eq!(r.answered, 0);
        assert!(r.lost > 0 && r.lost == r.sent, "{}", r.table());
        // Each counts in the latency distribution at (at least) the timeout.
        assert!(r.latency_us.p50 >= 100_000.0, "{}", r.table());
        drop(mute);
    }
}
