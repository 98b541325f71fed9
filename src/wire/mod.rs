//! Answers on the wire: precompiled snapshots and the per-packet responder.
//!
//! Layout:
//! - `query`: reading a query's bytes without allocating;
//! - `encode`: answers to response bytes, for the compiler;
//! - `names`: the compact name → prebuilt answers table;
//! - `arena`: the chunks holding the compiled parts' bytes, kept across reloads;
//! - `huge`: the memory of that table's slots and of those chunks (large ones in huge pages);
//! - `snapshot`: a zone with every positive answer prebuilt as response bytes;
//! - `respond`: query bytes → response bytes, shared by UDP and TCP;
//! - `fastpath`: the common UDP query answered in one pass, before `respond`;
//! - `identity`: the server's identity, version and NSID on the wire (CHAOS TXT, EDNS);
//! - `cookie`: DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018).

mod arena;
pub mod cookie;
pub mod encode;
pub mod fastpath;
mod huge;
pub mod identity;
pub mod names;
pub mod query;
pub mod respond;
pub mod snapshot;

pub use respond::{Responder, Verdict};
pub use snapshot::Snapshot;
