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
//! response (or timeout) of the queries sent in it. [`run_interleaved`] gives several servers
//! turns of a fraction of a second from one client, each turn a window of its own, and sums
//! each server's windows: on a machine whose speed drifts, every server then samples the same
//! drift.

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
    /// The server's process and its children (found once, before any window).
    server_tree: Option<Vec<i32>>,
    pfds: Vec<libc::pollfd>,
    /// Open loop: when the current schedule started, and how many of its queries went out.
    sched_origin_ns: u64,
    scheduled: u64,
    /// Open loop: how far behind schedule the client ever was in a measured window.
    max_lag_ns: u64,
    next_progress: u64,
    last_progress: (u64, u64),
    opening: Option<Opening>,
    totals: Totals,
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

/// The readings taken when a measured window opens.
struct Opening {
    server: Option<procfs::Cpu>,
    threads: Vec<(i32, String, procfs::Cpu)>,
    client: procfs::Cpu,
    machine: Option<procfs::MachineCpu>,
    at_ns: u64,
}

/// What the measured windows of one target added up to: one window for [`run`], one per
/// slice for [`run_interleaved`].
#[derive(Default)]
struct Totals {
    windows: u64,
    /// Time spent sending in the windows.
    window_ns: u64,
    /// The windows with their drains (the span the CPU readings cover).
    wall_ns: u64,
    server: Option<procfs::Cpu>,
    threads: BTreeMap<i32, (String, f64)>,
    client: procfs::Cpu,
    machine: Option<procfs::MachineCpu>,
}

impl<'a> Engine<'a> {
    /// Opens the lanes to `cfg.target` and finds the server's process tree.
    fn new(cfg: &'a LoadConfig, pool: &'a Pool) -> Result<Engine<'a>> {
        let lanes_n = cfg.lanes.clamp(1, 4096);
        let mut lanes = Vec::with_capacity(lanes_n);
        for _ in 0..lanes_n {
            lanes.push(match cfg.transport {
                Transport::Udp => Lane::Udp(
                    UdpLane::connect(cfg.target, cfg.batch, cfg.gso)
                        .context("opening a UDP socket")?,
                ),
                Transport::Tcp => Lane::Tcp(
                    TcpLane::connect(cfg.target, Duration::from_secs(3))
                        .with_context(|| format!("connecting to {} over TCP", cfg.target))?,
                ),
            });
        }
        let hist = Histogram::<u64>::new_with_bounds(1, 120_000_000_000, 3)
            .context("creating the latency histogram")?;
        // The server's process tree, found once: scanning /proc takes milliseconds, too long
        // to do at the start of a measured window.
        let server_tree = match cfg.server_pid {
            Some(pid) => {
                Some(procfs::process_tree(pid).with_context(|| format!("--server-pid {pid}"))?)
            }
            None => None,
        };
        Ok(Engine {
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
            server_tree,
            pfds: Vec::with_capacity(lanes_n),
            sched_origin_ns: 0,
            scheduled: 0,
            max_lag_ns: 0,
            next_progress: 1_000_000_000,
            last_progress: (0, 0),
            opening: None,
            totals: Totals::default(),
        })
    }

    /// Starts the open loop's schedule afresh at `now` (a slice after a pause must not try to
    /// catch up on the queries of the pause).
    fn restart_schedule(&mut self, now: u64) {
        self.sched_origin_ns = now;
        self.scheduled = 0;
    }

    /// Opens a measured window: queries sent from now on count, and the CPU readings start.
    fn open_window(&mut self) {
        let now = self.now_ns();
        if self.totals.windows == 0 {
            self.hist.reset();
            self.c = Counters::default();
            self.measure_from_ns = now;
        }
        self.measuring = true;
        let me = std::process::id() as i32;
        self.opening = Some(Opening {
            server: self.server_tree.as_deref().map(procfs::cpu_of_pids),
            threads: self
                .cfg
                .server_pid
                .map(procfs::thread_cpu)
                .unwrap_or_default(),
            client: procfs::cpu_of_pids(&[me]),
            machine: procfs::machine_cpu().ok(),
            at_ns: self.now_ns(),
        });
    }

    /// Closes the window opened last, once its queries are answered or lost (after
    /// [`Engine::drain`]): `sent_until` is when it stopped sending.
    fn close_window(&mut self, sent_until: u64) {
        self.measuring = false;
        let Some(open) = self.opening.take() else {
            return;
        };
        let closed_at = self.now_ns();
        let t = &mut self.totals;
        t.windows += 1;
        t.window_ns += sent_until.saturating_sub(open.at_ns);
        t.wall_ns += closed_at.saturating_sub(open.at_ns);
        if let (Some(tree), Some(before)) = (&self.server_tree, open.server) {
            *t.server.get_or_insert_with(procfs::Cpu::default) +=
                procfs::cpu_of_pids(tree).since(&before);
        }
        if let Some(pid) = self.cfg.server_pid {
            for (tid, name, after) in procfs::thread_cpu(pid) {
                let before = open
                    .threads
                    .iter()
                    .find(|b| b.0 == tid)
                    .map(|b| b.2)
                    .unwrap_or_default();
                t.threads.entry(tid).or_insert((name, 0.0)).1 += after.since(&before).total_s();
            }
        }
        let me = std::process::id() as i32;
        t.client += procfs::cpu_of_pids(&[me]).since(&open.client);
        if let (Some(before), Ok(after)) = (open.machine, procfs::machine_cpu()) {
            *t.machine.get_or_insert_with(procfs::MachineCpu::default) += after.since(&before);
        }
    }

    fn stopped(&self) -> bool {
        self.cfg
            .stop
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sends and receives until `end_ns` (or the stop flag, or every lane failed).
    fn load_until(&mut self, end_ns: u64) -> Result<()> {
        let batch = self.cfg.batch.max(1);
        let timeout_ns = self.cfg.timeout.as_nanos() as u64;
        let tty = self.cfg.progress && std::io::stderr().is_terminal();
        loop {
            let now = self.now_ns();
            if now >= end_ns || self.stopped() || !self.lanes_alive() {
                return Ok(());
            }
            let mut sent_any = false;
            match self.cfg.mode {
                Mode::Closed { outstanding } => {
                    // Refill in whole batches: one system call per batch is the point of
                    // batching.
                    let refill_at = (batch as u64).min(outstanding.div_ceil(2)).max(1);
                    while outstanding - self.outstanding.min(outstanding) >= refill_at {
                        let want = (outstanding - self.outstanding) as usize;
                        let k = self.send_batch(want.min(batch), None)?;
                        if k == 0 {
                            break;
                        }
                        sent_any = true;
                    }
                }
                Mode::Open { rate } => {
                    let step = 1e9 / rate;
                    let origin = self.sched_origin_ns;
                    let due = ((now - origin.min(now)) as f64 / step) as u64 + 1;
                    while self.scheduled < due {
                        let first = origin + (self.scheduled as f64 * step) as u64;
                        let want = ((due - self.scheduled) as usize).min(batch);
                        let k = self.send_batch(want, Some((first, step)))?;
                        if k == 0 {
                            break;
                        }
                        self.scheduled += k as u64;
                        sent_any = true;
                        if self.measuring {
                            let lag = self.now_ns().saturating_sub(first);
                            self.max_lag_ns = self.max_lag_ns.max(lag);
                        }
                    }
                    // Queries more than a timeout behind schedule will never be sent in time:
                    // count them as unsent and move the schedule on.
                    let floor = ((now.saturating_sub(origin).saturating_sub(timeout_ns)) as f64
                        / step) as u64;
                    if self.scheduled < floor {
                        if self.measuring {
                            self.c.unsent += floor - self.scheduled;
                        }
                        self.scheduled = floor;
                    }
                }
            }
            for l in self.lanes.iter_mut() {
                if let Err(err) = l.flush() {
                    eprintln!("bsf-bench: {err}");
                }
            }
            let got = self.receive();
            let now = self.now_ns();
            self.expire(now, timeout_ns);
            if self.cfg.progress && self.measuring && now >= self.next_progress {
                self.progress_line(now, tty);
            }
            if got == 0 && !sent_any {
                let wait = match self.cfg.mode {
                    Mode::Closed { .. } => Duration::from_millis(1),
                    Mode::Open { rate } => {
                        let next_due = self.sched_origin_ns
                            + ((self.scheduled as f64 + 1.0) * 1e9 / rate) as u64;
                        Duration::from_nanos(next_due.saturating_sub(now).min(1_000_000))
                    }
                };
                if !wait.is_zero() && !self.cfg.busy_poll {
                    net::wait_any(&self.lanes, &mut self.pfds, wait);
                }
            }
        }
    }

    fn progress_line(&mut self, now: u64, tty: bool) {
        let secs = (now - self.measure_from_ns) as f64 / 1e9;
        let line = format!(
            "[{:6.1}s] sent {:>8.0}/s  answered {:>8.0}/s  lost {}  wrong {}  outstanding {}",
            secs,
            (self.c.sent - self.last_progress.0) as f64,
            (self.c.answered - self.last_progress.1) as f64,
            self.c.lost,
            self.c.wrong.total(),
            self.outstanding
        );
        if tty {
            eprint!("\r{line}  ");
        } else {
            eprintln!("{line}");
        }
        self.last_progress = (self.c.sent, self.c.answered);
        self.next_progress += 1_000_000_000;
    }

    /// Waits for the answers still due, at most one timeout; what does not come is lost.
    fn drain(&mut self) {
        let timeout_ns = self.cfg.timeout.as_nanos() as u64;
        let drain_end = self.now_ns() + timeout_ns;
        while self.outstanding > 0 && self.lanes_alive() {
            for l in self.lanes.iter_mut() {
                let _ = l.flush();
            }
            let got = self.receive();
            let now = self.now_ns();
            if now >= drain_end {
                self.expire(u64::MAX, 0);
                break;
            }
            self.expire(now, timeout_ns);
            if got == 0 {
                net::wait_any(&self.lanes, &mut self.pfds, Duration::from_millis(1));
            }
        }
        // Lanes that died leave queries outstanding: they are lost.
        self.expire(u64::MAX, 0);
    }

    /// What the windows measured.
    fn result(self) -> RunResult {
        let cfg = self.cfg;
        let t = &self.totals;
        let mut server_threads: Vec<ThreadCpu> = t
            .threads
            .iter()
            .map(|(&tid, (name, cpu_s))| ThreadCpu {
                tid,
                name: name.clone(),
                cpu_s: *cpu_s,
            })
            .collect();
        let threads_total: f64 = server_threads.iter().map(|t| t.cpu_s).sum();
        server_threads.retain(|t| t.cpu_s > threads_total * 0.01 && t.cpu_s > 0.0);
        server_threads.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
        let server_mem = match cfg.server_pid {
            Some(pid) => procfs::mem_of_tree(pid).ok(),
            None => None,
        };
        let wall_s = (t.wall_ns as f64 / 1e9).max(1e-9);
        let window_s = t.window_ns as f64 / 1e9;
        let server_cpu = t.server;
        let machine = t.machine.map(|m| {
            let ours = t.client.total_s() + server_cpu.map(|c| c.total_s()).unwrap_or(0.0);
            MachineLoad {
                busy_cores: m.busy_s / wall_s,
                other_cores: ((m.busy_s - ours) / wall_s).max(0.0),
                steal_cores: m.steal_s / wall_s,
            }
        });
        let c = &self.c;
        let mut notes = Vec::new();
        if let Mode::Open { rate } = cfg.mode {
            let sent_rate = c.sent as f64 / window_s.max(1e-9);
            if sent_rate < rate * 0.98 {
                notes.push(format!("the client sent only {sent_rate:.0} q/s of the {rate:.0} asked: it (or the server's socket) could not keep up"));
            }
            if self.max_lag_ns > 5_000_000 {
                notes.push(format!("the client fell up to {:.1} ms behind schedule (latency is measured from the schedule)", self.max_lag_ns as f64 / 1e6));
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
        if self.states.iter().any(|s| s.dead) {
            notes.push("some lanes failed during the run (see stderr)".into());
        }
        RunResult {
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
            lanes: self.lanes.len() as u64,
            batch: cfg.batch as u64,
            pool: self.pool.len() as u64,
            lenient: cfg.lenient,
            duration_s: window_s,
            windows: t.windows,
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
            latency_us: Latency::from_histogram(&self.hist),
            max_lag_us: self.max_lag_ns as f64 / 1000.0,
            client_cpu: t.client,
            server_pid: cfg.server_pid,
            server_cpu: server_cpu.map(|cpu| ServerCpu::from_usage(cpu, window_s, c.answered)),
            server_mem,
            machine,
            server_threads,
            notes,
        }
    }
}

/// Runs one load test and returns what it measured.
pub fn run(cfg: &LoadConfig, pool: &Pool) -> Result<RunResult> {
    net::tighten_timer_slack();
    let mut e = Engine::new(cfg, pool)?;
    let warm_ns = cfg.warmup.as_nanos() as u64;
    e.load_until(warm_ns)?;
    e.open_window();
    e.load_until(warm_ns + cfg.duration.as_nanos() as u64)?;
    let sent_until = e.now_ns();
    if cfg.progress && std::io::stderr().is_terminal() {
        eprintln!();
    }
    e.drain();
    e.close_window(sent_until);
    Ok(e.result())
}

/// One progress line of [`run_interleaved`].
fn interleaved_progress(engines: &[Engine], duration_ns: u64, tty: bool) {
    let measured = engines.first().map_or(0, |e| e.totals.window_ns);
    let parts: Vec<String> = engines
        .iter()
        .map(|e| {
            let secs = (e.totals.window_ns as f64 / 1e9).max(1e-9);
            let name = e
                .cfg
                .tags
                .get("server")
                .map_or(e.cfg.target.to_string(), Clone::clone);
            format!(
                "{name} {:.0}/s lost {} wrong {}",
                e.c.answered as f64 / secs,
                e.c.lost,
                e.c.wrong.total()
            )
        })
        .collect();
    let line = format!(
        "[{:5.1} of {:.1} s each] {}",
        measured as f64 / 1e9,
        duration_ns as f64 / 1e9,
        parts.join(" | ")
    );
    if tty {
        eprint!("\r{line}  ");
    } else {
        eprintln!("{line}");
    }
}

/// Runs the same load against several servers in turn, a slice of time each, from one
/// client; returns one result per server, in the order given.
///
/// Each server first gets `warmup` of unmeasured load; then the servers take turns, `slice`
/// each, until each has had `duration` (the order reversed every turn, so that no server
/// always follows the same one). A slice ends with a drain: its queries are answered (or
/// lost) and the server's CPU read before the next server's slice opens, so each result
/// holds only its own server's work. Why: on a shared machine the cost of the same work
/// drifts by 10-30% over seconds; servers measured seconds apart are measured on different
/// machines, while slices a fraction of a second long, interleaved, sample the same drift.
///
/// `progress`: a line on stderr about once a second (each server's measured seconds, answers
/// per second and losses so far); the configurations' own `progress` should be off, as their
/// lines would describe single slices.
pub fn run_interleaved(
    cfgs: &[LoadConfig],
    pool: &Pool,
    slice: Duration,
    progress: bool,
) -> Result<Vec<RunResult>> {
    let Some(first) = cfgs.first() else {
        return Ok(Vec::new());
    };
    net::tighten_timer_slack();
    let mut engines = cfgs
        .iter()
        .map(|cfg| {
            Engine::new(cfg, pool).with_context(|| format!("opening lanes to {}", cfg.target))
        })
        .collect::<Result<Vec<_>>>()?;
    for e in &mut engines {
        let now = e.now_ns();
        e.restart_schedule(now);
        e.load_until(now + e.cfg.warmup.as_nanos() as u64)?;
        e.drain();
    }
    let duration_ns = first.duration.as_nanos().max(1) as u64;
    let slice_ns = slice.as_nanos().clamp(1_000_000, u128::from(duration_ns)) as u64;
    let turns = duration_ns.div_ceil(slice_ns);
    // Equal slices that add up to the duration.
    let slice_ns = duration_ns / turns;
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut next_line = Duration::from_secs(1);
    for turn in 0..turns {
        let order: Vec<usize> = if turn % 2 == 0 {
            (0..engines.len()).collect()
        } else {
            (0..engines.len()).rev().collect()
        };
        for i in order {
            let e = &mut engines[i];
            if e.stopped() || !e.lanes_alive() {
                continue;
            }
            e.open_window();
            let now = e.now_ns();
            e.restart_schedule(now);
            e.load_until(now + slice_ns)?;
            let sent_until = e.now_ns();
            e.drain();
            e.close_window(sent_until);
        }
        if progress && (started.elapsed() >= next_line || turn + 1 == turns) {
            next_line += Duration::from_secs(1);
            interleaved_progress(&engines, duration_ns, tty);
        }
    }
    if progress && tty {
        eprintln!();
    }
    Ok(engines.into_iter().map(Engine::result).collect())
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

    #[test]
    fn interleaved_servers_take_turns_and_each_gets_the_whole_duration() {
        let (a, b) = (floor(), floor());
        let mut cfgs = Vec::new();
        for (name, target) in [("a", a), ("b", b)] {
            let mut cfg = config(target, Mode::Closed { outstanding: 16 }, true);
            cfg.duration = Duration::from_millis(400);
            cfg.tags.insert("server".into(), name.into());
            cfgs.push(cfg);
        }
        let results = run_interleaved(&cfgs, &pool(), Duration::from_millis(100), false).unwrap();
        assert_eq!(results.len(), 2);
        for (r, name) in results.iter().zip(["a", "b"]) {
            assert_eq!(r.tags["server"], name, "results in the order given");
            assert_eq!(r.windows, 4, "{}", r.table());
            // Four slices of 100 ms of sending each (the drains are not in the window).
            assert!(
                (0.39..0.5).contains(&r.duration_s),
                "{} s: {}",
                r.duration_s,
                r.table()
            );
            assert!(r.answered > 100, "{}", r.table());
            assert_eq!(r.sent, r.answered, "{}", r.table());
            assert_eq!(r.lost + r.wrong + r.unexpected, 0, "{}", r.table());
            assert!(r.server_cpu.is_some(), "{}", r.table());
        }
        assert_eq!(results[0].target, a.to_string());
        assert_eq!(results[1].target, b.to_string());
    }

    #[test]
    fn interleaved_open_loop_starts_each_slice_on_schedule() {
        // Each server's schedule starts afresh with its slice: the time the other server had
        // is neither sent in a burst nor counted unsent.
        let (a, b) = (floor(), floor());
        let cfgs: Vec<LoadConfig> = [a, b]
            .into_iter()
            .map(|target| {
                let mut cfg = config(target, Mode::Open { rate: 5000.0 }, true);
                cfg.duration = Duration::from_millis(400);
                cfg
            })
            .collect();
        let results = run_interleaved(&cfgs, &pool(), Duration::from_millis(100), true).unwrap();
        for r in &results {
            assert!((r.sent as f64 - 2000.0).abs() < 200.0, "{}", r.table());
            assert_eq!(r.unsent + r.lost + r.wrong, 0, "{}", r.table());
            assert!(r.max_lag_us < 50_000.0, "{}", r.table());
        }
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
