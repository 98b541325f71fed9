//! NOTIFY (RFC 1996): telling the secondaries that a new serial is served.
//!
//! A round starts at start-up and after every reload that changes the serial (the
//! [`crate::reload::Reloader::serials`] channel). Each configured secondary gets a NOTIFY
//! (opcode 4, AA, question `<apex> SOA`, the new SOA in the answer section as RFC 1996 §3.7
//! allows), signed when the target names a key, over UDP from an ephemeral port. It is sent
//! again with doubling timeouts (1, 2, 4, 8, 16 s) until the secondary acknowledges it; an
//! answer that refuses (REFUSED, NOTAUTH, NOTIMP) or fails TSIG ends the attempts with a
//! warning, since repeating would not change it. A newer serial cancels the round still
//! retrying for an older one. The secondary then asks for the SOA and transfers the zone.

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::message::{MessageWriter, Section, FLAG_AA, FLAG_QR};
use super::settings::TransferSettings;
use super::stats::{NotifyOutcome, TransferStats};
use super::tsig::{self, Key, Signer, Verifier};
use crate::config::Settings;
use crate::wire::Snapshot;

const OPCODE_NOTIFY: u16 = 4;
/// Attempts per secondary and round, and the first wait for an answer (doubled each time).
pub const ATTEMPTS: u32 = 5;
pub const FIRST_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends a round of NOTIFY now and after every serial change, until `shutdown`.
///
/// Settings updates arrive on their own channel; a reload publishes them before the new
/// serial, and they are applied first (`biased`), so a round always uses the targets and keys
/// of the load that produced its serial.
pub async fn run(
    mut serials: watch::Receiver<u32>,
    mut updates: watch::Receiver<Option<Arc<Settings>>>,
    snapshots: Arc<ArcSwap<Snapshot>>,
    settings: Arc<ArcSwap<TransferSettings>>,
    stats: Arc<TransferStats>,
    shutdown: CancellationToken,
) {
    let mut round = shutdown.child_token();
    start_round(&snapshots, &settings, &stats, &round);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            changed = updates.changed() => {
                if changed.is_err() { break }
                super::follow_settings(&mut updates, &settings);
                continue;
            }
            changed = serials.changed() => if changed.is_err() { break },
        }
        if updates.has_changed().unwrap_or(false) {
            super::follow_settings(&mut updates, &settings);
        }
        round.cancel();
        round = shutdown.child_token();
        start_round(&snapshots, &settings, &stats, &round);
    }
    round.cancel();
}

fn start_round(
    snapshots: &ArcSwap<Snapshot>,
    settings: &ArcSwap<TransferSettings>,
    stats: &Arc<TransferStats>,
    token: &CancellationToken,
) {
    let snapshot = snapshots.load_full();
    let settings = settings.load_full();
    if settings.notify.is_empty() {
        return;
    }
    let serial = snapshot.serial();
    for target in &settings.notify {
        let key = match &target.key {
            Some(name) => match settings.key(name) {
                Some(key) => Some(key.clone()),
                // The settings check makes this impossible; say so rather than send unsigned.
                None => {
                    tracing::error!(secondary = %target.addr, key = %name, "NOTIFY not sent: unknown key");
                    continue;
                }
            },
            None => None,
        };
        let addr = target.addr;
        let token = token.clone();
        let snapshot = snapshot.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            tokio::select! {
                outcome = notify_one(addr, key, &snapshot) => stats.notify(outcome),
                _ = token.cancelled() => {
                    tracing::debug!(secondary = %addr, serial, "NOTIFY round superseded");
                }
            }
        });
    }
}

/// Builds the NOTIFY for `snapshot`'s serial with this ID (unsigned).
pub fn notify_message(snapshot: &Snapshot, id: u16) -> Vec<u8> {
    let zone = &snapshot.zone;
    let mut writer = MessageWriter::new(id, (OPCODE_NOTIFY << 11) | FLAG_AA, 256);
    writer.question(zone.apex(), u16::from(RecordType::SOA));
    if let Some(soa) = zone.soa() {
        // The SOA is valid by construction; a NOTIFY without it is still a valid NOTIFY.
        let _ = writer.record(Section::Answer, soa);
    }
    writer.finish()
}

fn random_id() -> u16 {
    // A randomly keyed SipHash of the clock: unpredictable enough for a message ID.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u16
}

/// How one attempt ended.
enum Reply {
    Acknowledged,
    /// An answer that will not change by asking again.
    Refused(String),
    /// No answer in time, or SERVFAIL (the secondary may be busy loading): ask again.
    TryAgain,
}

async fn notify_one(addr: SocketAddr, key: Option<Key>, snapshot: &Snapshot) -> NotifyOutcome {
    let serial = snapshot.serial();
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(secondary = %addr, %error, "NOTIFY not sent: cannot open a UDP socket");
            return NotifyOutcome::Unanswered;
        }
    };
    let mut timeout = FIRST_TIMEOUT;
    for attempt in 1..=ATTEMPTS {
        let id = random_id();
        let mut message = notify_message(snapshot, id);
        let verifier = key.as_ref().map(|key| {
            let mac = Signer::request(key.clone()).sign(&mut message, tsig::now());
            Verifier::new(key.clone(), mac)
        });
        if let Err(error) = socket.send_to(&message, addr).await {
            tracing::debug!(secondary = %addr, %error, attempt, "NOTIFY send failed");
        }
        match await_reply(&socket, addr, id, verifier, timeout).await {
            Reply::Acknowledged => {
                tracing::info!(secondary = %addr, serial, attempt, "NOTIFY acknowledged");
                return NotifyOutcome::Acknowledged;
            }
            Reply::Refused(why) => {
                tracing::warn!(secondary = %addr, serial, "NOTIFY refused: {why}; check the secondary's ACL and key");
                return NotifyOutcome::Refused;
            }
            Reply::TryAgain => {
                tracing::debug!(secondary = %addr, serial, attempt, "no acknowledgement of NOTIFY within {timeout:?}");
            }
        }
        timeout *= 2;
    }
    tracing::warn!(
        secondary = %addr,
        serial,
        "NOTIFY not acknowledged after {ATTEMPTS} attempts; the secondary will see the new serial at its next SOA refresh"
    );
    NotifyOutcome::Unanswered
}

/// Waits up to `timeout` for the answer to NOTIFY `id` from `addr`, ignoring anything else.
async fn await_reply(
    socket: &UdpSocket,
    addr: SocketAddr,
    id: u16,
    mut verifier: Option<Verifier>,
    timeout: Duration,
) -> Reply {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 4096];
    // Bounded: each turn consumes a datagram or ends at the deadline.
    for _ in 0..64 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (len, from) = match tokio::time::timeout(remaining, socket.recv_from(&mut buf)).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(_)) => continue,
            Err(_) => return Reply::TryAgain,
        };
        let reply = &buf[..len];
        if from != addr || len < 12 {
            continue;
        }
        let reply_id = u16::from_be_bytes([reply[0], reply[1]]);
        let flags = u16::from_be_bytes([reply[2], reply[3]]);
        if reply_id != id || flags & FLAG_QR == 0 || (flags >> 11) & 0xF != OPCODE_NOTIFY {
            continue;
        }
        if let Some(verifier) = verifier.as_mut() {
            if let Err(error) = verifier.verify(reply, tsig::now()) {
                return Reply::Refused(format!("TSIG: {error}"));
            }
        }
        let rcode = flags & 0xF;
        return match rcode {
            0 => Reply::Acknowledged,
            2 => {
                // Wait out the rest of this attempt's time, so a busy peer is not hammered.
                tokio::time::sleep_until(deadline.into()).await;
                Reply::TryAgain
            }
            _ => Reply::Refused(format!(
                "rcode {}",
                hickory_proto::op::ResponseCode::from(0, rcode as u8)
            )),
        };
    }
    Reply::TryAgain
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, OpCode};

    #[test]
    fn notify_is_opcode_4_with_aa_soa_question_and_the_new_soa() {
        let settings = crate::config::Settings::default();
        let set = crate::template::TemplateSet::default();
        let zone = crate::zone::build(&settings.zone, &set, 77, None).unwrap();
        let snapshot = Snapshot::compile(zone, &settings.server, None);
        let message = Message::from_vec(&notify_message(&snapshot, 0x4242)).unwrap();
        assert_eq!(message.metadata.id, 0x4242);
        assert_eq!(message.metadata.op_code, OpCode::Notify);
        assert!(message.metadata.authoritative);
        assert_eq!(message.queries[0].query_type, RecordType::SOA);
        assert_eq!(message.queries[0].name.to_ascii(), "lwm2m.org.");
        match &message.answers[0].data {
            hickory_proto::rr::RData::SOA(soa) => assert_eq!(soa.serial, 77),
            other => panic!("{other:?}"),
        }
    }
}
