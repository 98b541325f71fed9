//! The metrics endpoint: the server's counters and the served zone's state in the Prometheus
//! text format (version 0.0.4), over a deliberately small HTTP/1.1 server.
//!
//! Off unless `[server] metrics` or `--metrics` names an address. One request per
//! connection (`Connection: close`): a scraper asks every few seconds, so keeping connections
//! alive buys nothing and a small server has less to get wrong. Requests are bounded in size,
//! time and number of connections at once; anything but `GET`/`HEAD` of `/metrics` (or `/`)
//! gets a plain error status. The endpoint reads only counters and the current snapshot: a
//! scrape never waits for a reload and never touches the query path.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::stats::{unix_seconds, Outcome, ServerStats};
use crate::reload::Reloader;
use crate::transfer::journal::Journal;
use crate::transfer::stats::{NotifyOutcome, TransferOutcome};
use crate::wire::Snapshot;

/// Longest request head read; a scraper's is a few hundred bytes.
const MAX_REQUEST: usize = 8192;
/// Time a client gets to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;

/// What the endpoint reports on.
pub struct MetricsSource {
    pub stats: Arc<ServerStats>,
    pub reloader: Arc<Reloader>,
    pub snapshots: Arc<ArcSwap<Snapshot>>,
    /// The TCP connection cap's permits (each open connection holds one) and their number:
    /// the connections open now, without a counter of their own.
    pub tcp_connections: Arc<Semaphore>,
    pub tcp_max_connections: usize,
    /// The versions kept for incremental transfers.
    pub journal: Arc<Journal>,
}

/// Accepts scrapes until shutdown.
pub async fn serve(listener: TcpListener, source: Arc<MetricsSource>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let source = source.clone();
        tokio::spawn(async move {
            if let Err(error) = answer(stream, &source).await {
                tracing::debug!(%error, "metrics: connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, source: &MetricsSource) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(error)) => return Err(error),
        Err(_) => return Ok(()),
    };
    let response = match head {
        Some(head) => respond(&head, || render(source)),
        None => reply(
            400,
            "Bad Request",
            "request head too large or cut short\n",
            false,
        ),
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// Reads up to the blank line that ends the request head; `None` when it does not come
/// within [`MAX_REQUEST`] bytes or the client stops sending.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = find_blank_line(&head) {
            head.truncate(end);
            return Ok(Some(head));
        }
        if head.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The response to a request head (`body` renders the metrics, only when asked for).
fn respond(head: &[u8], body: impl FnOnce() -> String) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return reply(400, "Bad Request", "malformed request line\n", false);
    };
    if !version.starts_with("HTTP/1.") {
        return reply(400, "Bad Request", "only HTTP/1.x is spoken here\n", false);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return reply(405, "Method Not Allowed", "use GET\n", false),
    };
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" => reply_typed(200, "OK", METRICS_TYPE, &body(), head_only),
        "/" => reply(200, "OK", "bsf-dns: metrics at /metrics\n", head_only),
        _ => reply(
            404,
            "Not Found",
            "not found; metrics are at /metrics\n",
            head_only,
        ),
    }
}

/// The content type of the exposition format.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

fn reply(status: u16, reason: &str, body: &str, head_only: bool) -> Vec<u8> {
    reply_typed(status, reason, TEXT_TYPE, body, head_only)
}

fn reply_typed(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if status == 405 {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("Connection: close\r\n\r\n");
    let mut bytes = response.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

/// One metric family: its HELP and TYPE lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'a str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            let rendered: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            let _ = write!(self.out, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// One sample per value of one label.
    fn by<'v>(mut self, label: &str, samples: impl IntoIterator<Item = (&'v str, u64)>) {
        for (value, count) in samples {
            self.sample(&[(label, value)], count);
        }
    }
}

/// A family of one unlabelled sample: (name, kind, help, value). Values are `f64`, as
/// Prometheus's are: exact for counts up to 2^53, and durations in seconds, its base unit.
type Single<'a> = (&'a str, &'a str, &'a str, f64);

/// The exposition text.
pub fn render(source: &MetricsSource) -> String {
    let mut out = String::with_capacity(4096);
    let stats = &source.stats;

    let mut queries = Family::new(
        &mut out,
        "bsf_dns_queries_total",
        "counter",
        "DNS queries handled, by transport and by what the response was (result=\"dropped\": none was sent).",
    );
    for (transport, count) in [
        ("udp", &(|o| stats.udp(o)) as &dyn Fn(Outcome) -> u64),
        ("tcp", &|o| stats.tcp.get(o)),
    ] {
        for outcome in Outcome::ALL {
            queries.sample(
                &[("transport", transport), ("result", outcome.label())],
                count(outcome),
            );
        }
    }
    let transfers = &stats.transfers;
    Family::new(
        &mut out,
        "bsf_dns_transfers_total",
        "counter",
        "Zone transfer requests (AXFR, IXFR) by how they ended: full zone sent, up_to_date (IXFR at the served serial: the SOA alone), refused, failed (accepted but not sent whole).",
    )
    .by(
        "result",
        TransferOutcome::ALL.map(|o| (o.label(), transfers.transfers(o))),
    );
    Family::new(
        &mut out,
        "bsf_dns_notify_total",
        "counter",
        "NOTIFY messages to secondaries by how they ended (unanswered: not acknowledged after every retry).",
    )
    .by(
        "result",
        NotifyOutcome::ALL.map(|o| (o.label(), transfers.notifies(o))),
    );
    let reloads = source.reloader.stats();
    Family::new(
        &mut out,
        "bsf_dns_reloads_total",
        "counter",
        "Reloads since start, by outcome (rejected: the files were bad and the previous zone is still served).",
    )
    .by(
        "outcome",
        [
            ("applied", &reloads.applied),
            ("unchanged", &reloads.unchanged),
            ("rejected", &reloads.rejected),
        ]
        .map(|(outcome, counter)| (outcome, counter.load(Ordering::Relaxed))),
    );

    let snapshot = source.snapshots.load();
    let zone = &snapshot.zone;
    let load = |value: &std::sync::atomic::AtomicU64| value.load(Ordering::Relaxed) as f64;
    let singles: [Single; 13] = [
        (
            "bsf_dns_tcp_connections_accepted_total",
            "counter",
            "TCP connections accepted.",
            load(&stats.tcp_accepted),
        ),
        (
            "bsf_dns_tcp_connections_over_limit_total",
            "counter",
            "TCP connections closed at once because tcp-max-connections were open.",
            load(&stats.tcp_over_limit),
        ),
        (
            "bsf_dns_tcp_connections_open",
            "gauge",
            "TCP connections open now.",
            source
                .tcp_max_connections
                .saturating_sub(source.tcp_connections.available_permits()) as f64,
        ),
        (
            "bsf_dns_zone_serial",
            "gauge",
            "The SOA serial served now.",
            f64::from(zone.serial),
        ),
        (
            "bsf_dns_zone_operators",
            "gauge",
            "Networks with a template file in the zone served now.",
            zone.operators as f64,
        ),
        (
            "bsf_dns_zone_records",
            "gauge",
            "Records in the zone served now (default-template answers, made per query, not included).",
            zone.record_count() as f64,
        ),
        (
            "bsf_dns_zone_names",
            "gauge",
            "Names with precompiled answers in the zone served now.",
            snapshot.index().len() as f64,
        ),
        (
            "bsf_dns_reload_last_good",
            "gauge",
            "1 if the last reload read a good set of files (or none was tried since start-up), 0 if it was rejected: the previous zone is still served.",
            f64::from(u8::from(reloads.last_good.load(Ordering::Relaxed))),
        ),
        (
            "bsf_dns_reload_last_good_timestamp_seconds",
            "gauge",
            "When a good set of files was last read (at start-up or by a reload), in Unix seconds.",
            load(&reloads.last_good_at),
        ),
        (
            "bsf_dns_reload_last_duration_seconds",
            "gauge",
            "How long the last reload took, whatever its outcome.",
            load(&reloads.last_duration_us) / 1e6,
        ),
        (
            "bsf_dns_journal_versions",
            "gauge",
            "Earlier versions of the zone kept for incremental transfers (IXFR): a secondary at one of their serials gets only the differences, an older one the whole zone.",
            source.journal.len() as f64,
        ),
        (
            "bsf_dns_journal_oldest_serial",
            "gauge",
            "The oldest serial an incremental transfer can start from (the served serial when no earlier version is kept).",
            f64::from(source.journal.oldest_serial().unwrap_or(zone.serial)),
        ),
        (
            "bsf_dns_start_time_seconds",
            "gauge",
            "When the server started, in Unix seconds.",
            unix_seconds(stats.started) as f64,
        ),
    ];
    for (name, kind, help, value) in singles {
        Family::new(&mut out, name, kind, help).sample(&[], value);
    }
    Family::new(
        &mut out,
        "bsf_dns_build_info",
        "gauge",
        "Always 1; the version in a label.",
    )
    .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(response: &[u8]) -> String {
        let text = String::from_utf8_lossy(response);
        text.lines().next().unwrap_or_default().to_string()
    }

    #[test]
    fn routes_and_methods() {
        let body = || "# HELP x y\n".to_string();
        let ok = respond(b"GET /metrics HTTP/1.1\r\nHost: a", body);
        assert_eq!(status_of(&ok), "HTTP/1.1 200 OK");
        let text = String::from_utf8(ok).unwrap();
        assert!(text.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(text.contains("Content-Length: 11\r\n"));
        assert!(text.ends_with("\r\n\r\n# HELP x y\n"));
        let with_query = respond(b"GET /metrics?x=1 HTTP/1.0", body);
        assert_eq!(status_of(&with_query), "HTTP/1.1 200 OK");
        let head = String::from_utf8(respond(b"HEAD /metrics HTTP/1.1", body)).unwrap();
        assert!(head.contains("Content-Length: 11\r\n") && head.ends_with("\r\n\r\n"));
        assert_eq!(
            status_of(&respond(b"GET /other HTTP/1.1", body)),
            "HTTP/1.1 404 Not Found"
        );
        let post = String::from_utf8(respond(b"POST /metrics HTTP/1.1", body)).unwrap();
        assert!(post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(post.contains("Allow: GET, HEAD\r\n"));
        for bad in [
            &b"GET /metrics"[..],
            b"GET  /metrics HTTP/1.1",
            b"GET /metrics SPDY/3",
            b"",
        ] {
            assert_eq!(
                status_of(&respond(bad, body)),
                "HTTP/1.1 400 Bad Request",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(
            find_blank_line(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"),
            Some(20)
        );
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n"), None);
    }
}
