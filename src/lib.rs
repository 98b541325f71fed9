//! bsf-dns: an authoritative DNS server that tells a cellular LwM2M device with no settings
//! where its bootstrap server is.
//!
//! A device derives `bsf.mnc<MNC>.mcc<MCC>.<apex>` from its IMSI and asks the operator's DNS;
//! bsf-dns answers from per-operator templates with addresses (A/AAAA), ports (SRV) and full
//! bootstrap URIs (URI, TXT).
//!
//! # Layout
//! Data flows one way, top to bottom:
//! - [`plmn`]: IMSI, MCC and MNC, and the names derived from them;
//! - [`diag`]: errors that name file, line and field;
//! - [`config`]: server-wide settings (apex, SOA, NS, listeners);
//! - [`template`]: the operator templates in `zones/`, validated;
//! - [`dirfiles`]: reading a directory's files with few system calls;
//! - [`load`]: reads settings and templates together;
//! - [`parallel`]: loading work spread over the cores, and freeing what it leaves behind;
//! - [`zone`]: the compiled zone (records), the answer function, the master-file export, the
//!   difference between two versions;
//! - [`wire`]: answers precompiled to wire format, and the per-packet responder;
//! - [`server`]: UDP and TCP sockets, query statistics and the metrics endpoint, giving up
//!   root after binding, shutdown;
//! - [`reload`]: watching the inputs and swapping in new snapshots;
//! - [`service`]: telling systemd the server is ready, reloading or stopping;
//! - [`transfer`]: AXFR/IXFR to secondaries (with a journal of earlier versions), NOTIFY, TSIG,
//!   `allow-transfer`;
//! - [`resolve`]: the device's side — the lookup a device does, as `bsf-dns resolve`.

pub mod commands;
pub mod config;
pub mod diag;
pub mod dirfiles;
pub mod load;
pub mod parallel;
pub mod plmn;
pub mod reload;
pub mod resolve;
pub mod server;
pub mod service;
pub mod template;
pub mod transfer;
pub mod wire;
pub mod zone;
