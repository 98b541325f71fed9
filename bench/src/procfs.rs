//! What `/proc` tells about the server under test: CPU time and memory of its process tree.
//!
//! CPU is `utime`+`stime` (fields 14 and 15 of `/proc/<pid>/stat`, all threads included),
//! summed over the process and its descendants: NSD answers from a forked child, so the PID the
//! script knows is not the one doing the work. Memory is reported both as VmRSS (summed over the
//! tree; this double-counts pages a fork shares) and as PSS from `smaps_rollup` (shared pages
//! split between sharers), which is the fair number for a multi-process server.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;

/// Stat fields of one process that the benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: i32,
    utime: u64,
    stime: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses, so cut at the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
    })
}

fn read_stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `pid` and every live descendant of it.
pub fn process_tree(pid: i32) -> Result<Vec<i32>> {
    if read_stat(pid).is_none() {
        bail!("process {pid} does not exist (or /proc/{pid}/stat is unreadable)");
    }
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in fs::read_dir("/proc").context("listing /proc")?.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(s) = read_stat(p) {
            parents.push((p, s.ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    Ok(tree)
}

/// CPU seconds spent by a process tree, split user/system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub user_s: f64,
    pub system_s: f64,
}

impl Cpu {
    /// User plus system.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.system_s
    }

    /// `self - earlier`, clamped at zero (a child that exited takes its time with it).
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            system_s: (self.system_s - earlier.system_s).max(0.0),
        }
    }
}

/// Sums CPU over processes or over measured windows.
impl std::ops::AddAssign for Cpu {
    fn add_assign(&mut self, other: Cpu) {
        self.user_s += other.user_s;
        self.system_s += other.system_s;
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU used so far by `pid` and its descendants.
pub fn cpu_of_tree(pid: i32) -> Result<Cpu> {
    Ok(cpu_of_pids(&process_tree(pid)?))
}

/// CPU used so far by the given processes (those that have gone count nothing). Cheap: reads
/// one file per process, where [`process_tree`] scans all of `/proc`.
pub fn cpu_of_pids(pids: &[i32]) -> Cpu {
    let hz = clock_ticks();
    let mut cpu = Cpu::default();
    for &p in pids {
        if let Some(s) = read_stat(p) {
            cpu += Cpu {
                user_s: s.utime as f64 / hz,
                system_s: s.stime as f64 / hz,
            };
        }
    }
    cpu
}

/// CPU used so far by each thread of `pid` (not its children): `(tid, name, cpu)`.
pub fn thread_cpu(pid: i32) -> Vec<(i32, String, Cpu)> {
    let hz = clock_ticks();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let name = match (text.find('('), text.rfind(')')) {
            (Some(a), Some(b)) if a < b => text[a + 1..b].to_string(),
            _ => String::new(),
        };
        if let Some(st) = parse_stat(&text) {
            out.push((
                tid,
                name,
                Cpu {
                    user_s: st.utime as f64 / hz,
                    system_s: st.stime as f64 / hz,
                },
            ));
        }
    }
    out
}

/// True while `pid` runs (exists and is not a zombie).
pub fn is_alive(pid: i32) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = text
        .rfind(')')
        .and_then(|i| text[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// Memory of a process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Mem {
    /// VmRSS of the main process.
    pub rss_main_kib: u64,
    /// VmRSS summed over the tree.
    pub rss_tree_kib: u64,
    /// Pss summed over the tree (0 where `smaps_rollup` is unreadable).
    pub pss_tree_kib: u64,
    /// Number of processes in the tree.
    pub processes: u32,
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.trim_start().strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Memory of `pid` and its descendants now.
pub fn mem_of_tree(pid: i32) -> Result<Mem> {
    let mut m = Mem::default();
    for p in process_tree(pid)? {
        let Ok(status) = fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        let rss = kib_field(&status, "VmRSS").unwrap_or(0);
        if p == pid {
            m.rss_main_kib = rss;
        }
        m.rss_tree_kib += rss;
        if let Ok(roll) = fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            m.pss_tree_kib += kib_field(&roll, "Pss").unwrap_or(0);
        }
        m.processes += 1;
    }
    Ok(m)
}

/// Machine-wide CPU time from the first line of `/proc/stat`, in seconds summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineCpu {
    /// user + nice + system + irq + softirq.
    pub busy_s: f64,
    /// Time the hypervisor gave to someone else.
    pub steal_s: f64,
}

impl MachineCpu {
    /// `self - earlier`.
    pub fn since(&self, earlier: &MachineCpu) -> MachineCpu {
        MachineCpu {
            busy_s: (self.busy_s - earlier.busy_s).max(0.0),
            steal_s: (self.steal_s - earlier.steal_s).max(0.0),
        }
    }
}

/// Sums machine CPU over measured windows.
impl std::ops::AddAssign for MachineCpu {
    fn add_assign(&mut self, other: MachineCpu) {
        self.busy_s += other.busy_s;
        self.steal_s += other.steal_s;
    }
}

fn parse_proc_stat(text: &str, hz: f64) -> Option<MachineCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0) as f64;
    // user nice system idle iowait irq softirq steal ...
    Some(MachineCpu {
        busy_s: (get(0) + get(1) + get(2) + get(5) + get(6)) / hz,
        steal_s: get(7) / hz,
    })
}

/// CPU time the whole machine has spent so far.
pub fn machine_cpu() -> Result<MachineCpu> {
    let text = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_proc_stat(&text, clock_ticks()).context("no `cpu` line in /proc/stat")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let s = "42 (a) b) c) S 7 42 42 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 1 0 5 0 0";
        assert_eq!(
            parse_stat(s),
            Some(Stat {
                ppid: 7,
                utime: 123,
                stime: 45
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id() as i32;
        let tree = process_tree(me).unwrap();
        assert_eq!(tree[0], me);
        let cpu = cpu_of_tree(me).unwrap();
        assert!(cpu.total_s() >= 0.0);
        let mem = mem_of_tree(me).unwrap();
        assert!(mem.rss_main_kib > 0);
        assert!(mem.processes >= 1);
        assert!(process_tree(i32::MAX).is_err());
        assert!(is_alive(me));
        assert!(!is_alive(i32::MAX));
        assert!(cpu_of_pids(&[me]).total_s() >= 0.0);
        assert!(thread_cpu(me).iter().any(|(tid, _, _)| *tid == me));
    }

    #[test]
    fn parses_proc_stat() {
        let m = parse_proc_stat("cpu  100 0 50 1000 5 1 9 40 0 0\ncpu0 1 2 3\n", 100.0).unwrap();
        assert!((m.busy_s - 1.6).abs() < 1e-9);
        assert!((m.steal_s - 0.4).abs() < 1e-9);
        assert!(machine_cpu().unwrap().busy_s > 0.0);
    }

    #[test]
    fn finds_kib_fields() {
        assert_eq!(
            kib_field("VmPeak:\t 10 kB\nVmRSS:\t  2048 kB\n", "VmRSS"),
            Some(2048)
        );
        assert_eq!(
            kib_field("Rss: 5 kB\nPss:   7 kB\nPss_Anon: 1 kB", "Pss"),
            Some(7)
        );
    }
}
