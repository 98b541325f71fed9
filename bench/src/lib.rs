//! bsf-bench: the benchmark bundled with bsf-dns.
//!
//! It answers one question honestly: how much server CPU does bsf-dns spend per answered query,
//! and how fast and how well does it answer, next to NSD, Knot DNS and a do-nothing responder
//! that shares its I/O path (the "floor").
//!
//! # Layout
//! - [`rng`]: a tiny seeded PRNG, so zone sets and query mixes are reproducible.
//! - [`wire`]: encode a query, judge a response (ID, echoed question, RCODE) without decoding.
//! - [`mix`]: names files, query files and the default mix; the pre-encoded query [`mix::Pool`].
//! - [`net`]: UDP lanes with `sendmmsg`/`recvmmsg`, pipelined TCP lanes, `ppoll` over both.
//! - [`load`]: the closed- and open-loop load engine with loss and latency accounting.
//! - [`procfs`]: the server's CPU (user/system) and memory from `/proc`, process tree included.
//! - [`results`]: what a run measured, as JSON and as a table.
//! - [`probe`]: readiness (zone load time) and reload timing under load.
//! - [`zonegen`]: operator templates from the MCC/MNC table or synthetic, and names files.
//! - [`floor`]: the floor responder behind the `bsf-floor` binary.
//! - [`report`]: medians, ratios and PASS/FAIL rows from a directory of results.
//!
//! `main.rs` only parses the command line and calls in.

pub mod floor;
pub mod load;
pub mod mix;
pub mod net;
pub mod probe;
pub mod procfs;
pub mod report;
pub mod results;
pub mod rng;
pub mod wire;
pub mod zonegen;
