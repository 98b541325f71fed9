//! Single-query probes around a running server: how long it takes to start answering (zone
//! load time), and how long a template change takes to reach the answers while load runs
//! (reload time, and whether any query was lost meanwhile).

use crate::load::{self, LoadConfig};
use crate::mix::Pool;
use crate::procfs::{self, Mem};
use crate::results::RunResult;
use crate::wire;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One query/response exchange over a fresh UDP socket; `None` on timeout.
pub struct Prober {
    sock: UdpSocket,
    id: u16,
    buf: Vec<u8>,
}

impl Prober {
    /// A socket connected to `target`.
    pub fn new(target: SocketAddr) -> Result<Prober> {
        let local = if target.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(local).context("binding a probe socket")?;
        sock.connect(target)
            .with_context(|| format!("connecting to {target}"))?;
        Ok(Prober {
            sock,
            id: 0x4242,
            buf: vec![0; 65_535],
        })
    }

    /// Asks `name`/`qtype` and waits at most `wait` for the matching response.
    pub fn ask(&mut self, name: &str, qtype: u16, wait: Duration) -> Result<Option<Vec<u8>>> {
        let (mut q, _) = wire::encode_query(name, qtype, Some(1232), &[])?;
        self.id = self.id.wrapping_add(1);
        q[..2].copy_from_slice(&self.id.to_be_bytes());
        let deadline = Instant::now() + wait;
        // Refused (ICMP port unreachable: nothing listens yet) counts as no answer.
        if self.sock.send(&q).is_err() {
            return Ok(None);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.recv(&mut self.buf) {
                Ok(n) if n >= 12 && wire::id_of(&self.buf[..n]) == self.id => {
                    return Ok(Some(self.buf[..n].to_vec()))
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(_) => {
                    // ECONNREFUSED and friends: wait out the rest of this attempt's time slot.
                    std::thread::sleep(left.min(Duration::from_millis(1)));
                    return Ok(None);
                }
            }
        }
    }
}

/// Nanoseconds since the Unix epoch (what `date +%s%N` prints).
pub fn epoch_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Result of `bsf-bench wait`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WaitResult {
    /// Labels from `--tag k=v`.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    pub target: String,
    pub name: String,
    /// Milliseconds from `--since-ns` (or from the start of waiting) to the first good answer.
    pub ready_ms: f64,
    pub attempts: u64,
    /// The process given as `--server-pid`: which server this was, and what to stop.
    #[serde(default)]
    pub server_pid: Option<i32>,
    pub server_mem: Option<Mem>,
}

/// Polls every `interval` until `name`/`qtype` is answered NOERROR with AA (or `timeout`).
pub fn wait_ready(
    target: SocketAddr,
    name: &str,
    qtype: u16,
    since_ns: Option<u128>,
    interval: Duration,
    timeout: Duration,
    server_pid: Option<i32>,
) -> Result<WaitResult> {
    let t0 = since_ns.unwrap_or_else(epoch_ns);
    let started = Instant::now();
    let mut p = Prober::new(target)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Some(r) = p.ask(name, qtype, interval)? {
            if wire::rcode_of(&r) == Some(wire::RCODE_NOERROR) && r[2] & 0x04 != 0 {
                let ready_ms = epoch_ns().saturating_sub(t0) as f64 / 1e6;
                let server_mem = server_pid.and_then(|pid| procfs::mem_of_tree(pid).ok());
                return Ok(WaitResult {
                    tags: Default::default(),
                    target: target.to_string(),
                    name: name.into(),
                    ready_ms,
                    attempts,
                    server_pid,
                    server_mem,
                });
            }
            // Answered but not yet authoritative (zone still loading): wait a slot.
            std::thread::sleep(interval);
        }
        if started.elapsed() >= timeout {
            bail!(
                "{target} did not answer {name} {} with NOERROR+AA within {:?}",
                wire::type_name(qtype),
                timeout
            );
        }
        if let Some(pid) = server_pid {
            if !procfs::is_alive(pid) {
                bail!("server process {pid} exited before answering");
            }
        }
    }
}

/// How a template is rewritten for the reload probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Write a temporary file beside it, then rename over it (what deploy tools do).
    Rename,
    /// Truncate and write the file itself (what an editor without backup does).
    InPlace,
}

/// What the reload probe needs.
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    pub load: LoadConfig,
    pub file: PathBuf,
    pub name: String,
    /// Seconds into the load when the file is rewritten.
    pub change_at: Duration,
    /// Give up waiting for the new answer after this long.
    pub max_wait: Duration,
    pub write_mode: WriteMode,
    /// Put the original file back afterwards.
    pub restore: bool,
    /// Load kept running after the new answer is first seen.
    pub settle: Duration,
}

/// Result of `bsf-bench reload`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReloadResult {
    pub file: String,
    pub name: String,
    pub new_address: String,
    /// Milliseconds from the rewrite (rename/close) to the first answer with the new address;
    /// `None` if it never came within the wait.
    pub reload_ms: Option<f64>,
    pub probes: u64,
    /// The load that ran meanwhile.
    pub load: RunResult,
}

/// Replaces the `addresses = [...]` line of a template so its first IPv4 address becomes
/// `new`. Returns the new text, or an error if the template has no such line.
pub fn rewrite_addresses(text: &str, new: Ipv4Addr) -> Result<String> {
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        if !found && line.trim_start().starts_with("addresses") && line.contains('[') {
            found = true;
            let v6: Vec<&str> = line
                .split(['[', ']', ','])
                .map(|s| s.trim().trim_matches('"'))
                .filter(|s| s.contains(':'))
                .collect();
            let mut items = vec![format!("\"{new}\"")];
            items.extend(v6.iter().map(|a| format!("\"{a}\"")));
            out.push_str(&format!("addresses = [{}]", items.join(", ")));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        bail!("the template has no one-line `addresses = [...]` to rewrite");
    }
    Ok(out)
}

fn write_file(path: &Path, text: &str, mode: WriteMode) -> Result<()> {
    match mode {
        WriteMode::InPlace => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        WriteMode::Rename => {
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".bench-tmp");
            let tmp = PathBuf::from(tmp);
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} over {}", tmp.display(), path.display()))
        }
    }
}

/// Runs load in the background, rewrites the template, and times the change.
pub fn reload(cfg: &ReloadConfig, pool: &Pool) -> Result<ReloadResult> {
    let original = std::fs::read_to_string(&cfg.file)
        .with_context(|| format!("reading {}", cfg.file.display()))?;
    let mut prober = Prober::new(cfg.load.target)?;
    // The current answer, to pick an address that differs from it.
    let before = prober
        .ask(&cfg.name, wire::TYPE_A, Duration::from_secs(2))?
        .with_context(|| format!("no answer for {} before the change", cfg.name))?;
    let old: Vec<Vec<u8>> = wire::answer_rdatas(&before, wire::TYPE_A)
        .unwrap_or_default()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let new_addr = (200u8..=254)
        .map(|n| Ipv4Addr::new(203, 0, 113, n))
        .find(|a| !old.iter().any(|o| o[..] == a.octets()))
        .unwrap_or(Ipv4Addr::new(203, 0, 113, 199));
    let new_text = rewrite_addresses(&original, new_addr)?;

    // The load runs from before the change until the change has been seen and has settled
    // (or the wait is over), however long the reload takes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load_cfg = cfg.load.clone();
    load_cfg.duration = cfg.change_at.saturating_sub(load_cfg.warmup) + cfg.max_wait + cfg.settle;
    load_cfg.stop = Some(stop.clone());
    let result = std::thread::scope(|s| -> Result<ReloadResult> {
        let handle = s.spawn(|| load::run(&load_cfg, pool));
        std::thread::sleep(cfg.change_at);
        write_file(&cfg.file, &new_text, cfg.write_mode)?;
        let t0 = Instant::now();
        let mut probes = 0;
        let mut reload_ms = None;
        while t0.elapsed() < cfg.max_wait {
            probes += 1;
            if let Some(r) = prober.ask(&cfg.name, wire::TYPE_A, Duration::from_millis(200))? {
                let got = wire::answer_rdatas(&r, wire::TYPE_A).unwrap_or_default();
                if got.iter().any(|rd| *rd == new_addr.octets()) {
                    reload_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        if reload_ms.is_some() {
            std::thread::sleep(cfg.settle);
        }
        stop.store(true, Ordering::Relaxed);
        let load = match handle.join() {
            Ok(r) => r?,
            Err(_) => bail!("the load thread panicked"),
        };
        Ok(ReloadResult {
            file: cfg.file.display().to_string(),
            name: cfg.name.clone(),
            new_address: new_addr.to_string(),
            reload_ms,
            probes,
            load,
        })
    });
    if cfg.restore {
        write_file(&cfg.file, &original, cfg.write_mode)?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_first_ipv4() {
        let t = "mcc = \"202\"\naddresses = [\"192.0.2.1\", \"2001:db8::1\"]\n[[bootstrap]]\n";
        let n = rewrite_addresses(t, Ipv4Addr::new(203, 0, 113, 200)).unwrap();
        assert!(n.contains("addresses = [\"203.0.113.200\", \"2001:db8::1\"]"));
        assert!(n.starts_with("mcc = \"202\"\n"));
        assert!(rewrite_addresses("mcc = \"1\"\n", Ipv4Addr::LOCALHOST).is_err());
    }
}
