//! What transfers and NOTIFY rounds have done, counted for the metrics endpoint: an operator
//! running bsf-dns as a hidden primary learns from these whether its secondaries keep up.

use std::sync::atomic::{AtomicU64, Ordering};

/// How a transfer request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The whole zone was sent (AXFR, or IXFR from a serial the journal no longer has).
    Full,
    /// IXFR from a kept older serial: only what changed since was sent.
    Incremental,
    /// IXFR from the serial served: the SOA alone was sent.
    UpToDate,
    /// Refused: address, key, TSIG or zone (the reason is logged).
    Refused,
    /// Accepted, but not sent whole (the peer went away, or the zone could not be encoded).
    Failed,
}

/// How a NOTIFY to one secondary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    Acknowledged,
    /// An answer that asking again would not change (REFUSED, NOTAUTH, NOTIMP, a bad TSIG).
    Refused,
    /// No acknowledgement after every attempt.
    Unanswered,
}

impl TransferOutcome {
    pub const ALL: [TransferOutcome; 5] = [
        TransferOutcome::Full,
        TransferOutcome::Incremental,
        TransferOutcome::UpToDate,
        TransferOutcome::Refused,
        TransferOutcome::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TransferOutcome::Full => "full",
            TransferOutcome::Incremental => "incremental",
            TransferOutcome::UpToDate => "up_to_date",
            TransferOutcome::Refused => "refused",
            TransferOutcome::Failed => "failed",
        }
    }
}

impl NotifyOutcome {
    pub const ALL: [NotifyOutcome; 3] = [
        NotifyOutcome::Acknowledged,
        NotifyOutcome::Refused,
        NotifyOutcome::Unanswered,
    ];

    pub fn label(self) -> &'static str {
        match self {
            NotifyOutcome::Acknowledged => "acknowledged",
            NotifyOutcome::Refused => "refused",
            NotifyOutcome::Unanswered => "unanswered",
        }
    }
}

/// Counts per outcome (requests are few: plain atomic adds).
#[derive(Debug, Default)]
pub struct TransferStats {
    transfers: [AtomicU64; TransferOutcome::ALL.len()],
    notifies: [AtomicU64; NotifyOutcome::ALL.len()],
}

impl TransferStats {
    pub fn transfer(&self, outcome: TransferOutcome) {
        self.transfers[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn notify(&self, outcome: NotifyOutcome) {
        self.notifies[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn transfers(&self, outcome: TransferOutcome) -> u64 {
        self.transfers[outcome as usize].load(Ordering::Relaxed)
    }

    pub fn notifies(&self, outcome: NotifyOutcome) -> u64 {
        self.notifies[outcome as usize].load(Ordering::Relaxed)
    }
}
