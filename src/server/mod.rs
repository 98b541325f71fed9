//! `bsf-dns serve`: sockets, worker threads, signals, reload triggers and graceful shutdown.
//!
//! Layout:
//! - `udp`: the batched UDP workers (the hot path, plain threads);
//! - `fdtable`: a file descriptor table of its own for each UDP worker;
//! - `pktinfo`: answering from the queried address on wildcard sockets;
//! - `privileges`: serving as an unprivileged user once the sockets are bound;
//! - `tcp`: RFC 7766 connections on a small Tokio runtime;
//! - `access`: the `allow-query` check;
//! - `stats`: counts of what was answered, kept off the packet path's way;
//! - `metrics`: the HTTP endpoint that reports them (when asked for).
//!
//! Start-up binds every socket before announcing readiness, so a taken port is an immediate,
//! clear error. SIGTERM/SIGINT stop accepting, let in-flight TCP answers finish, then exit;
//! SIGHUP reloads.

pub mod access;
mod fdtable;
mod metrics;
mod pktinfo;
mod privileges;
pub mod stats;
mod tcp;
mod udp;

/// The size of the UDP path's receive buffers, for the fast path's tests (which answer over a
/// query in a buffer like them).
#[cfg(test)]
pub(crate) use udp::RECV_BUFFER;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::load::{Inputs, LoadError};
use crate::reload::{InputWatch, Reloader};
use crate::template::TemplateCache;
use crate::wire::Snapshot;
use access::QueryAcl;

/// How long shutdown waits for TCP connections to finish their answers.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What `serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub inputs: Inputs,
    /// Overrides the settings' listen addresses.
    pub listen: Option<Vec<SocketAddr>>,
    /// Overrides the settings' UDP threads per address.
    pub threads: Option<usize>,
    pub log_queries: bool,
    /// Watch the inputs for changes (SIGHUP reloads either way).
    pub watch: bool,
    /// Overrides the settings' metrics address.
    pub metrics: Option<SocketAddr>,
    /// Overrides the settings' user to serve as.
    pub user: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}\nerror: the zone could not be loaded; not starting")]
    Load(#[from] LoadError),
    #[error("cannot listen on {addr} ({proto}): {source}{hint}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("cannot serve as user {user:?}: {reason}")]
    User { user: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

const METRICS_PROTO: &str = "metrics, HTTP";

/// `proto`: what the socket is for, as the error says it.
/// Whether a bind failed because the host has no such address or no such address family
/// (IPv6 switched off), rather than for a reason the operator must see.
fn address_family_unavailable(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::AddrNotAvailable
        || error.raw_os_error() == Some(libc::EAFNOSUPPORT)
}

fn bind_error(addr: SocketAddr, proto: &'static str, source: std::io::Error) -> ServeError {
    let hint = match source.kind() {
        std::io::ErrorKind::AddrInUse if proto == METRICS_PROTO => {
            " (another process holds this port; pick another with --metrics)"
        }
        std::io::ErrorKind::AddrInUse => {
            " (another process holds this port; pick another with --listen)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        std::io::ErrorKind::AddrNotAvailable => " (no interface has this address)",
        _ => "",
    };
    ServeError::Bind {
        addr,
        proto,
        source,
        hint,
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(options: ServeOptions) -> Result<(), ServeError> {
    // First: its start time is the process's.
    let stats = Arc::new(stats::ServerStats::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bsf-dns-rt")
        .enable_all()
        .build()?;
    // Handlers first: a SIGHUP or SIGTERM that arrives while the zone loads must reload or
    // stop cleanly, not take the default action (which ends the process).
    let signals = {
        let _context = runtime.enter();
        Signals::install()
    };
    // Watch before the first read: a change made while starting is then reloaded, not lost.
    let watch = if options.watch {
        match InputWatch::start(&options.inputs) {
            Ok(watch) => Some(watch),
            Err(error) => {
                tracing::error!(%error, "cannot watch the inputs for changes; reload with SIGHUP");
                None
            }
        }
    } else {
        None
    };
    // Start-up's three steps are timed apart: with many operators start-up takes seconds,
    // and an operator sizing a restart window wants to know which step it is.
    let started = Instant::now();
    let mut cache = TemplateCache::default();
    let loaded = options.inputs.read_cached(&mut cache, None)?;
    let read_ms = started.elapsed().as_millis() as u64;
    let zone = loaded.build(loaded.serial_after(0))?;
    let build_ms = started.elapsed().as_millis() as u64 - read_ms;
    let mut server_settings = loaded.settings.server.clone();
    let running = server_settings.clone();
    if let Some(listen) = &options.listen {
        server_settings.listen = listen.clone();
        server_settings.listen_defaulted = false;
    }
    if options.threads.is_some() {
        server_settings.threads = options.threads;
    }
    if options.metrics.is_some() {
        server_settings.metrics = options.metrics;
    }
    if options.user.is_some() {
        server_settings.user.clone_from(&options.user);
    }
    let threads = server_settings
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    let (serial, operators, records) = (zone.serial, zone.operators, zone.record_count());
    let snapshots = Arc::new(ArcSwap::from_pointee(Snapshot::compile(
        zone,
        &server_settings,
        None,
    )));
    crate::parallel::release_freed_memory();
    let compile_ms = started.elapsed().as_millis() as u64 - read_ms - build_ms;
    let acl = Arc::new(ArcSwap::from_pointee(QueryAcl::new(
        loaded.settings.access.allow_query.clone(),
    )));
    let transfer = Arc::new(ArcSwap::from_pointee(loaded.settings.transfer.clone()));

    // Bind everything first: a taken port must fail start-up, not a worker later.
    let mut udp_sockets = Vec::new();
    let mut tcp_listeners = Vec::new();
    let mut unavailable = Vec::new();
    for &requested in &server_settings.listen {
        let first = match udp::bind(requested, threads > 1) {
            Ok(socket) => socket,
            // The default addresses are loopback of both families; a host or container with
            // IPv6 switched off has no ::1, and the quick start must still run there.
            Err(error)
                if server_settings.listen_defaulted
                    && requested.is_ipv6()
                    && address_family_unavailable(&error) =>
            {
                tracing::warn!(
                    addr = %requested,
                    %error,
                    "IPv6 is not available on this host: not listening on the default IPv6 address (choose addresses with --listen or [server] listen)"
                );
                unavailable.push(requested);
                continue;
            }
            Err(error) => return Err(bind_error(requested, "UDP", error)),
        };
        // With port 0 the kernel picks one; every socket of this address must share it.
        let addr = first
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(requested);
        udp_sockets.push((addr, first));
        for _ in 1..threads {
            udp_sockets.push((
                addr,
                udp::bind(addr, true).map_err(|e| bind_error(addr, "UDP", e))?,
            ));
        }
        tcp_listeners.push((
            addr,
            bind_tcp(addr).map_err(|e| bind_error(addr, "TCP", e))?,
        ));
    }
    server_settings
        .listen
        .retain(|addr| !unavailable.contains(addr));
    let metrics_listener = match server_settings.metrics {
        Some(addr) => Some(bind_tcp(addr).map_err(|e| bind_error(addr, METRICS_PROTO, e))?),
        None => None,
    };

    // Every socket is bound: root (or CAP_NET_BIND_SERVICE) is needed no more.
    if let Some(name) = &server_settings.user {
        let user_error = |reason: String| ServeError::User {
            user: name.clone(),
            reason,
        };
        let account = privileges::lookup(name).map_err(user_error)?;
        privileges::switch_to(&account).map_err(user_error)?;
        tracing::info!(user = %account.name, uid = account.uid, gid = account.gid, "serving as an unprivileged user");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, (addr, socket)) in udp_sockets.into_iter().enumerate() {
        workers.push(udp::spawn_worker(
            format!("udp-{i}"),
            socket,
            snapshots.clone(),
            acl.clone(),
            stop.clone(),
            stats.udp_worker(),
            options.log_queries,
        )?);
        tracing::debug!(%addr, "UDP worker {i} started");
    }

    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let journal = Arc::new(crate::transfer::journal::Journal::new());
        let cx = Arc::new(tcp::TcpContext {
            snapshots: snapshots.clone(),
            acl: acl.clone(),
            idle_timeout: server_settings.tcp_idle_timeout,
            connections: Arc::new(Semaphore::new(server_settings.tcp_max_connections)),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            log_queries: options.log_queries,
            transfer: transfer.clone(),
            journal: journal.clone(),
            stats: stats.clone(),
        });
        let mut accept_tasks = Vec::new();
        for (_, listener) in tcp_listeners {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            accept_tasks.push(tokio::spawn(tcp::accept_loop(listener, cx.clone())));
        }
        let reloader = Arc::new(Reloader::new(
            std::mem::take(&mut cache),
            options.inputs.clone(),
            snapshots.clone(),
            acl.clone(),
            running,
            journal.clone(),
        ));
        // Scale-out: NOTIFY on serial changes, transfer settings kept current.
        crate::transfer::start(
            &reloader,
            snapshots.clone(),
            transfer,
            stats.transfers.clone(),
            shutdown.clone(),
        );
        if let Some(watch) = watch {
            tokio::spawn(reloader.clone().follow(watch, shutdown.clone()));
        }
        if let Some(listener) = metrics_listener {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let addr = listener.local_addr()?;
            let source = Arc::new(metrics::MetricsSource {
                stats: stats.clone(),
                reloader: reloader.clone(),
                snapshots: snapshots.clone(),
                tcp_connections: cx.connections.clone(),
                tcp_max_connections: server_settings.tcp_max_connections,
                journal: journal.clone(),
            });
            tokio::spawn(metrics::serve(listener, source, shutdown.clone()));
            tracing::info!("metrics on http://{addr}/metrics");
        }
        let listeners: Vec<String> = server_settings.listen_display();
        tracing::info!(
            zone = %snapshots.load().zone.apex(),
            serial,
            operators,
            records,
            udp_threads_per_address = threads,
            read_ms,
            build_ms,
            compile_ms,
            "serving on {} (UDP and TCP)",
            listeners.join(", ")
        );
        crate::service::ready(&crate::service::serving(operators, serial));
        signals.wait(&reloader).await;
        crate::service::stopping();
        tracing::info!("shutting down: closing listeners, finishing TCP answers");
        shutdown.cancel();
        stop.store(true, Ordering::Relaxed);
        tracker.close();
        for task in accept_tasks {
            let _ = task.await;
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some TCP connections did not finish within {SHUTDOWN_GRACE:?}");
        }
        Ok::<(), ServeError>(())
    });
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.stop();
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    tracing::info!("stopped");
    result
}

impl crate::config::ServerSettings {
    fn listen_display(&self) -> Vec<String> {
        self.listen.iter().map(ToString::to_string).collect()
    }
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The signals the server acts on, registered with the runtime.
struct Signals {
    streams: Option<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
}

impl Signals {
    /// Must run inside the runtime's context.
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Some((term, int, hup)),
            _ => {
                tracing::error!("cannot install signal handlers; stop with SIGKILL");
                None
            }
        };
        Signals { streams }
    }

    /// Returns on SIGTERM or SIGINT; reloads on SIGHUP meanwhile.
    async fn wait(self, reloader: &Arc<Reloader>) {
        let Some((mut term, mut int, mut hup)) = self.streams else {
            std::future::pending::<()>().await;
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = int.recv() => return,
                _ = hup.recv() => {
                    let reloader = reloader.clone();
                    let _ = tokio::task::spawn_blocking(move || reloader.reload("SIGHUP")).await;
                }
            }
        }
    }
}

/// One log line per query, for `--log-queries` (off by default: it costs more than the answer).
pub(crate) fn log_query(client: std::net::IpAddr, transport: &str, query: &[u8], response: &[u8]) {
    let mut lower = crate::wire::query::LowerName::new();
    let (name, qtype) = match crate::wire::query::parse(query, &mut lower) {
        Ok(q) => (
            hickory_proto::rr::Name::from_labels(
                crate::zone::wire_labels(lower.as_slice()).map(|(_, label)| label),
            )
            .map(|n| n.to_ascii())
            .unwrap_or_else(|_| "?".into()),
            q.question.map_or(0, |q| q.qtype),
        ),
        Err(_) => ("-".into(), 0),
    };
    let rcode = response.get(3).map_or(0, |b| b & 0xF);
    tracing::info!(
        %client,
        transport,
        name,
        qtype = %hickory_proto::rr::RecordType::from(qtype),
        rcode = %hickory_proto::op::ResponseCode::from(0, rcode),
        "query"
    );
}
