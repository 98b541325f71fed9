//! Scale-out through standard DNS: zone transfers to ordinary secondaries (Knot, NSD, BIND),
//! NOTIFY when the serial changes, TSIG and the `allow-transfer` access list.
//!
//! bsf-dns can be a hidden primary: secondaries take the compiled zone by AXFR and serve it
//! themselves; a reload that changes the serial NOTIFYs them and they transfer again, by
//! IXFR only what changed when the journal still has their version.
//!
//! Layout:
//! - `settings`: `[[tsig-key]]`, `[access] allow-transfer`, `notify`, validated;
//! - `tsig`: RFC 8945 signatures (verify requests, sign responses and sequences);
//! - `message`: response bytes with name compression;
//! - `axfr`: a transfer as a sequence of messages from one snapshot;
//! - `journal`: earlier versions of the zone, for incremental transfers (IXFR);
//! - `notify`: the NOTIFY rounds;
//! - `stats`: how transfers and NOTIFYs ended, for the metrics endpoint;
//! - here: the TCP hook ([`answer`]) that runs a transfer request through TSIG, zone and
//!   access checks, in that order, and streams the answer.
//!
//! What a refused transfer gets (every case is logged with the peer and, if any, the key name,
//! never the secret):
//! - malformed TSIG → FORMERR;
//! - unknown key, wrong MAC, stale time → NOTAUTH with BADKEY / BADSIG / BADTIME in the TSIG
//!   (RFC 8945 §5.2; BADTIME signed, the others not);
//! - a zone other than ours → NOTAUTH (RFC 5936 §2.2.1);
//! - an address that `allow-transfer` covers only with a key, and the request has none or
//!   another one → NOTAUTH (with BADKEY in the TSIG when signed), as Knot does;
//! - an address no entry covers → REFUSED.
//!
//! Transfers are governed by `allow-transfer` alone, not `allow-query`: secondaries usually sit
//! outside the device networks an `allow-query` list names.

pub mod axfr;
pub mod journal;
pub mod message;
pub mod notify;
pub mod settings;
pub mod stats;
pub mod tsig;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::DEFAULT_MAX_UDP_PAYLOAD;
use crate::reload::Reloader;
use crate::wire::query::skip_name;
use crate::wire::query::{
    parse, LowerName, Query, CLASS_IN, FLAG_RD, OPCODE_QUERY, TYPE_AXFR, TYPE_IXFR,
};
use crate::wire::Snapshot;
use crate::zone::diff::{self, ZoneDiff};
use crate::zone::Zone;
use axfr::{Echo, Transfer};
use journal::Journal;
use message::{MessageWriter, FLAG_QR};
use settings::{Decision, TransferSettings};
use stats::{TransferOutcome, TransferStats};
use tsig::{Rejection, Signer};

/// The settings every transfer and NOTIFY round reads; swapped whole on reload.
pub type SharedSettings = Arc<ArcSwap<TransferSettings>>;

/// How long one message may take to leave before the transfer is abandoned (a client that
/// stops reading must not hold a task forever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

const RCODE_FORMERR: u16 = 1;
const RCODE_NOTAUTH: u16 = 9;
const RCODE_REFUSED: u16 = 5;
const TYPE_SOA: u16 = 6;

/// Starts what runs beside the server: one task that keeps the transfer settings current on
/// reload and sends a NOTIFY round at start-up and on every serial change.
pub fn start(
    reloader: &Reloader,
    snapshots: Arc<ArcSwap<Snapshot>>,
    settings: SharedSettings,
    stats: Arc<TransferStats>,
    shutdown: CancellationToken,
) {
    tokio::spawn(notify::run(
        reloader.serials(),
        reloader.settings(),
        snapshots,
        settings,
        stats,
        shutdown,
    ));
}

/// Stores the transfer part of newly loaded settings, if it changed.
fn follow_settings(
    updates: &mut watch::Receiver<Option<Arc<crate::config::Settings>>>,
    settings: &ArcSwap<TransferSettings>,
) {
    let latest = updates.borrow_and_update().clone();
    if let Some(latest) = latest {
        if latest.transfer != **settings.load() {
            settings.store(Arc::new(latest.transfer.clone()));
            tracing::info!("transfer settings changed (allow-transfer, tsig-key, notify)");
        }
    }
}

/// Whether a TCP query is a transfer request for [`answer`]. Anything malformed, or with
/// EDNS version other than 0, is left to the ordinary responder (FORMERR, BADVERS, NOTIMP).
pub fn is_transfer_request(query: &[u8]) -> bool {
    let mut lower = LowerName::new();
    let Ok(query) = parse(query, &mut lower) else {
        return false;
    };
    query.opcode == OPCODE_QUERY
        && query.ancount == 0
        && query.edns.is_none_or(|e| e.version == 0)
        && query
            .question
            .is_some_and(|q| q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR)
}

/// Answers a transfer request on a TCP connection: checks, then the whole transfer from one
/// snapshot, each message length-prefixed and (for a signed request) signed.
pub async fn answer<W: AsyncWrite + Unpin>(
    writer: &mut W,
    request: &[u8],
    peer: SocketAddr,
    snapshots: &ArcSwap<Snapshot>,
    settings: &ArcSwap<TransferSettings>,
    journal: &Journal,
    stats: &TransferStats,
) -> std::io::Result<()> {
    let started = Instant::now();
    let mut lower = LowerName::new();
    let Ok(query) = parse(request, &mut lower) else {
        return Ok(());
    };
    let Some(question) = query.question else {
        return Ok(());
    };
    // One snapshot for the whole transfer: a reload meanwhile changes nothing in it.
    let snapshot = snapshots.load_full();
    let settings = settings.load_full();
    let kind = if question.qtype == TYPE_AXFR {
        "AXFR"
    } else {
        "IXFR"
    };
    let edns = query.edns.map(|e| (DEFAULT_MAX_UDP_PAYLOAD, e.dnssec_ok));
    let echo = Echo {
        id: query.id,
        rd: query.flags & FLAG_RD != 0,
        question: question.raw,
        name_len: question.name_len,
        edns,
    };

    let verified = match query.tsig_offset {
        None => None,
        Some(offset) => {
            let checked = match tsig::read(request, offset as usize) {
                Some(record) => tsig::verify_request(&settings.keys, request, record, tsig::now()),
                None => Err(Rejection::FormErr),
            };
            match checked {
                Ok(verified) => Some(verified),
                Err(rejection) => {
                    let key = tsig::find(request)
                        .ok()
                        .flatten()
                        .and_then(|r| r.key_name())
                        .map_or_else(|| "-".to_string(), |n| n.to_string());
                    tracing::warn!(%peer, key, kind, error = rejection.name(), "transfer refused: TSIG check failed");
                    let rcode = match rejection {
                        Rejection::FormErr => RCODE_FORMERR,
                        Rejection::Tsig { .. } => RCODE_NOTAUTH,
                    };
                    let mut response = error_message(&query, &echo, rcode);
                    rejection.append_to(&mut response, tsig::now());
                    stats.transfer(TransferOutcome::Refused);
                    return send(writer, &response).await;
                }
            }
        }
    };
    let key_name = verified.as_ref().map(|v| v.key.name.clone());
    let key_label = key_name
        .as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string);
    let mut signer = verified
        .as_ref()
        .map(|v| Signer::response(v.key.clone(), v.record.mac.clone()));

    let refusal = if lower.as_slice() != snapshot.apex_wire() || question.qclass != CLASS_IN {
        Some((RCODE_NOTAUTH, "not this zone", false))
    } else {
        match settings.decide(peer.ip(), key_name.as_ref()) {
            Decision::Allow => None,
            Decision::NeedsKey => Some((RCODE_NOTAUTH, "allow-transfer wants a key", true)),
            Decision::Deny => Some((RCODE_REFUSED, "address not in allow-transfer", false)),
        }
    };
    if let Some((rcode, why, bad_key)) = refusal {
        tracing::warn!(%peer, key = key_label, kind, "transfer refused: {why}");
        let mut response = error_message(&query, &echo, rcode);
        match (&verified, &mut signer) {
            // A valid key that the access list does not accept here: RFC 8945's BADKEY.
            (Some(v), _) if bad_key => Rejection::Tsig {
                error: tsig::BADKEY,
                record: Box::new(v.record.clone()),
                key: None,
            }
            .append_to(&mut response, tsig::now()),
            (_, Some(signer)) => {
                signer.sign(&mut response, tsig::now());
            }
            _ => {}
        }
        stats.transfer(TransferOutcome::Refused);
        return send(writer, &response).await;
    }

    let zone = &snapshot.zone;
    let their_serial = if question.qtype == TYPE_IXFR {
        ixfr_serial(&query, question.raw.len())
    } else {
        None
    };
    let (outcome, changes) = match their_serial {
        Some(theirs) if serial_at_least(theirs, zone.serial) => (TransferOutcome::UpToDate, None),
        Some(theirs) => match changes_since(journal, theirs, &snapshot.zone).await {
            Some(changes) => (TransferOutcome::Incremental, Some(changes)),
            None => (TransferOutcome::Full, None),
        },
        None => (TransferOutcome::Full, None),
    };
    let mut transfer = match changes {
        Some((theirs, diff)) => Transfer::incremental(zone, &theirs, diff, echo),
        None if outcome == TransferOutcome::UpToDate => Transfer::soa_only(zone, echo),
        None => Transfer::full(zone, echo),
    };
    let (mut messages, mut octets) = (0usize, 0usize);
    let sent = async {
        while let Some(message) = transfer.next_message() {
            let mut message = match message {
                Ok(m) => m,
                Err(error) => {
                    // The zone cannot be sent whole; a partial transfer must not look complete.
                    tracing::error!(%peer, kind, %error, "transfer aborted");
                    return Err(std::io::Error::other(error.to_string()));
                }
            };
            if let Some(signer) = signer.as_mut() {
                signer.sign(&mut message, tsig::now());
            }
            messages += 1;
            octets += message.len();
            send_unflushed(writer, &message).await?;
        }
        writer.flush().await
    }
    .await;
    if let Err(error) = sent {
        stats.transfer(TransferOutcome::Failed);
        return Err(error);
    }
    stats.transfer(outcome);
    tracing::info!(
        %peer,
        key = key_label,
        kind,
        serial = zone.serial,
        from_serial = their_serial,
        sent = outcome.label(),
        messages,
        records = transfer.records_sent,
        octets,
        duration_ms = started.elapsed().as_millis() as u64,
        "zone transferred"
    );
    Ok(())
}

/// The changes from the client's version to `zone`, when the journal still has that version
/// and the changes are smaller than the zone (otherwise the zone itself is the smaller
/// answer). The comparison (up to every record of the changed countries, twice) runs off the
/// runtime's threads, which serve TCP meanwhile, once per pair of versions: the journal
/// remembers the last one for the other secondaries that ask for it.
async fn changes_since(
    journal: &Journal,
    theirs: u32,
    zone: &Arc<Zone>,
) -> Option<(Arc<Zone>, Arc<ZoneDiff>)> {
    let old = journal.find(theirs)?;
    let compute = {
        let (old, zone) = (old.clone(), zone.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                diff::diff_within(&old, &zone, zone.record_count()).map(Arc::new)
            })
            .await
            .ok()
        }
    };
    let difference = journal.difference(theirs, zone.serial, compute).await?;
    Some((old, difference.changes?))
}

/// A header-and-question response with `rcode` (and OPT when asked for), unsigned.
fn error_message(query: &Query<'_>, echo: &Echo<'_>, rcode: u16) -> Vec<u8> {
    let flags = FLAG_QR | (query.flags & (0x7800 | FLAG_RD)) | rcode;
    let mut writer = MessageWriter::new(query.id, flags, 512);
    writer.question_raw(echo.question, echo.name_len);
    if let Some((payload, dnssec_ok)) = echo.edns {
        writer.opt(payload, dnssec_ok);
    }
    writer.finish()
}

async fn send_unflushed<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &[u8],
) -> std::io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| std::io::Error::other("a message over 65535 octets"))?;
    let write = async {
        writer.write_all(&length.to_be_bytes()).await?;
        writer.write_all(message).await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, message: &[u8]) -> std::io::Result<()> {
    send_unflushed(writer, message).await?;
    writer.flush().await
}

/// The serial of the SOA in an IXFR request's authority section (RFC 1995 §3).
fn ixfr_serial(query: &Query<'_>, question_len: usize) -> Option<u32> {
    if query.nscount == 0 {
        return None;
    }
    let bytes = query.bytes;
    let mut pos = skip_name(bytes, 12 + question_len)?;
    let rtype = u16::from_be_bytes([*bytes.get(pos)?, *bytes.get(pos + 1)?]);
    if rtype != TYPE_SOA {
        return None;
    }
    pos += 10;
    pos = skip_name(bytes, pos)?;
    pos = skip_name(bytes, pos)?;
    let serial = bytes.get(pos..pos + 4)?;
    Some(u32::from_be_bytes([
        serial[0], serial[1], serial[2], serial[3],
    ]))
}

/// `a >= b` in serial number arithmetic (RFC 1982).
fn serial_at_least(a: u32, b: u32) -> bool {
    a == b || a.wrapping_sub(b) < (1 << 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(serial_at_least(5, 5));
        assert!(serial_at_least(6, 5));
        assert!(!serial_at_least(4, 5));
        assert!(serial_at_least(1, u32::MAX));
        assert!(!serial_at_least(u32::MAX, 1));
    }

    /// A connection that swaps in another snapshot as soon as the transfer starts writing, as a
    /// reload landing mid-transfer would.
    struct SwapOnWrite {
        snapshots: Arc<ArcSwap<Snapshot>>,
        replacement: Option<Arc<Snapshot>>,
        written: Vec<u8>,
    }

    impl AsyncWrite for SwapOnWrite {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            if let Some(next) = self.replacement.take() {
                self.snapshots.store(next);
            }
            self.written.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn snapshot(operators: usize, serial: u32) -> Arc<Snapshot> {
        let texts: Vec<(String, String)> = (0..operators)
            .map(|i| {
                (
                    format!("t{i}.toml"),
                    format!(
                        "mcc = \"310\"\nmnc = [\"{:03}\"]\naddresses = [\"192.0.2.1\"]\n\
                         [[bootstrap]]\nuri = \"coaps://bs{i}.example.net\"\n",
                        i
                    ),
                )
            })
            .collect();
        let set = crate::template::TemplateSet::from_texts(
            texts
                .iter()
                .map(|(p, t)| (std::path::Path::new(p.as_str()), t.as_str())),
        )
        .unwrap();
        let settings = crate::config::Settings::default();
        let zone = crate::zone::build(&settings.zone, &set, serial, None).unwrap();
        Arc::new(Snapshot::compile(zone, &settings.server, None))
    }

    #[tokio::test]
    async fn a_transfer_comes_from_one_snapshot_even_across_a_reload() {
        let old = snapshot(400, 100);
        let new = snapshot(10, 200);
        let snapshots = Arc::new(ArcSwap::new(old.clone()));
        let settings = ArcSwap::from_pointee(TransferSettings {
            allow_transfer: vec![settings::TransferRule {
                prefix: None,
                key: None,
            }],
            ..Default::default()
        });
        let mut request = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        request.extend_from_slice(b"\x05lwm2m\x03org\x00\x00\xfc\x00\x01");
        let mut conn = SwapOnWrite {
            snapshots: snapshots.clone(),
            replacement: Some(new.clone()),
            written: Vec::new(),
        };
        let peer: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let stats = TransferStats::default();
        let journal = journal::Journal::new();
        answer(
            &mut conn, &request, peer, &snapshots, &settings, &journal, &stats,
        )
        .await
        .unwrap();
        assert_eq!(stats.transfers(TransferOutcome::Full), 1);
        // The swap happened during the transfer...
        assert_eq!(snapshots.load().serial(), 200);
        // ...and every message still came from the old snapshot.
        let mut rest = conn.written.as_slice();
        let (mut messages, mut records, mut serials) = (0, 0, Vec::new());
        while rest.len() >= 2 {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let message = hickory_proto::op::Message::from_vec(&rest[2..2 + len]).unwrap();
            rest = &rest[2 + len..];
            messages += 1;
            records += message.answers.len();
            serials.extend(message.answers.iter().filter_map(|r| match &r.data {
                hickory_proto::rr::RData::SOA(s) => Some(s.serial),
                _ => None,
            }));
        }
        assert!(messages > 1);
        assert_eq!(records, old.zone.record_count() + 1);
        assert_eq!(serials, [100, 100]);
    }

    #[test]
    fn transfer_requests_are_recognised() {
        let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x05lwm2m\x03org\x00\x00\xfc\x00\x01");
        assert!(is_transfer_request(&q));
        q[2] = 0x20; // opcode 4: NOTIFY, left to the responder (NOTIMP)
        assert!(!is_transfer_request(&q));
        q[2] = 0;
        let len = q.len();
        q[len - 3] = 1; // type A
        assert!(!is_transfer_request(&q));
    }
}
