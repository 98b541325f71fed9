//! DNS over TCP (RFC 7766): length-prefixed messages, pipelining, idle timeout, a connection cap.
//!
//! Each connection is a task: it reads queries back to back and answers each with the same
//! responder as UDP (so behaviour cannot drift between transports), flushing when no further
//! query is already buffered, so pipelined queries cost one write. A connection that sends
//! nothing holds only its task and closes at the idle timeout; past the cap, new connections are
//! closed at once rather than queued. On shutdown, connections stop reading but finish the
//! answer they are writing.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::access::QueryAcl;
use super::stats::{Outcome, ServerStats};
use crate::wire::{Responder, Snapshot, Verdict};
use crate::zone::Transport;

/// What every connection task shares.
pub struct TcpContext {
    pub snapshots: Arc<ArcSwap<Snapshot>>,
    pub acl: Arc<ArcSwap<QueryAcl>>,
    pub idle_timeout: Duration,
    pub connections: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub log_queries: bool,
    /// `allow-transfer`, TSIG keys (for AXFR/IXFR, answered by `crate::transfer`).
    pub transfer: crate::transfer::SharedSettings,
    /// Earlier versions of the zone, for incremental transfers.
    pub journal: Arc<crate::transfer::journal::Journal>,
    pub stats: Arc<ServerStats>,
}

/// Accepts connections until shutdown.
pub async fn accept_loop(listener: TcpListener, cx: Arc<TcpContext>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = cx.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = cx.connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "TCP connection limit reached; closing new connection");
            cx.stats.tcp_over_limit.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        cx.stats.tcp_accepted.fetch_add(1, Ordering::Relaxed);
        let cx2 = cx.clone();
        cx.tracker.spawn(async move {
            if let Err(error) = serve_connection(stream, peer, &cx2).await {
                tracing::debug!(%peer, %error, "TCP connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    cx: &TcpContext,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut writer = BufWriter::new(writer);
    let mut responder = Responder::for_tcp(cx.idle_timeout);
    let mut query = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    loop {
        let length = tokio::select! {
            read = tokio::time::timeout(cx.idle_timeout, reader.read_u16()) => match read {
                Ok(Ok(length)) => length as usize,
                // Idle timeout, or the client closed: either way the connection is done.
                _ => break,
            },
            _ = cx.shutdown.cancelled() => break,
        };
        query.resize(length, 0);
        match tokio::time::timeout(cx.idle_timeout, reader.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        // Zone transfers are the transfer module's, under `allow-transfer` (not `allow-query`).
        if crate::transfer::is_transfer_request(&query) {
            let stats = &cx.stats.transfers;
            crate::transfer::answer(
                &mut writer,
                &query,
                peer,
                &cx.snapshots,
                &cx.transfer,
                &cx.journal,
                stats,
            )
            .await?;
            continue;
        }
        let snapshot = cx.snapshots.load_full();
        let verdict = if cx.acl.load().allows(peer.ip()) {
            responder.respond_from(&snapshot, &query, Transport::Tcp, Some(peer.ip()), &mut out)
        } else {
            responder.refuse(&snapshot, &query, &mut out)
        };
        if cx.log_queries {
            super::log_query(peer.ip(), "tcp", &query, &out);
        }
        if verdict == Verdict::Drop {
            // Not a query we can answer (a response, or too short): the stream is not DNS.
            cx.stats.tcp.add(Outcome::Dropped);
            break;
        }
        cx.stats.tcp.add(Outcome::of_response(&out));
        writer.write_u16(out.len() as u16).await?;
        writer.write_all(&out).await?;
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
    writer.flush().await?;
    let _ = writer.shutdown().await;
    Ok(())
}
