//! The compiled zone: every record that settings plus templates produce, as hickory-proto types.
//!
//! A [`Zone`] is immutable once built. It is the single source of truth for everything that
//! leaves the server: the answer function ([`lookup`]), the precompiled wire answers
//! ([`crate::wire`]), the master-file export ([`export`]) and zone transfers all read it.
//!
//! Layout:
//! - `build`: settings + templates → records (DESIGN.md §3), empty non-terminals included;
//! - `lookup`: the authoritative answer logic as a pure function;
//! - `export`: the RFC 1035 master-file form.

mod build;
pub mod export;
pub mod lookup;
pub mod serial;

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, Record, RecordType};

use crate::config::ZoneSettings;
use crate::template::Template;

pub use build::{build, parse_uri_rdata, uri_rdata, BuildError};
pub use lookup::{Answer, Outcome, Transport};

/// URI resource record type (RFC 7553). hickory-proto has no typed form; records carry it as
/// unknown RDATA with the RFC wire layout.
pub const URI_TYPE: RecordType = RecordType::Unknown(256);

/// All records of one type at one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRset {
    pub rtype: RecordType,
    pub records: Vec<Record>,
}

impl RRset {
    pub fn ttl(&self) -> u32 {
        self.records.first().map_or(0, |r| r.ttl)
    }
}

/// The record sets at one owner name; empty for an empty non-terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub rrsets: Vec<RRset>,
}

impl Node {
    pub fn rrset(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// The default template, kept to synthesize answers for networks without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultTemplate {
    pub template: Template,
    pub default_ttl: u32,
}

/// An immutable, fully built zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub settings: ZoneSettings,
    pub serial: u32,
    /// Owner names (lower case) in DNSSEC canonical order, the apex first.
    pub nodes: BTreeMap<Name, Node>,
    pub default: Option<DefaultTemplate>,
    /// Number of networks with a template file, per spelling not counted twice.
    pub operators: usize,
}

impl Zone {
    pub fn apex(&self) -> &Name {
        &self.settings.apex
    }

    /// The SOA record at the apex.
    pub fn soa(&self) -> Option<&Record> {
        self.nodes
            .get(self.apex())
            .and_then(|n| n.rrset(RecordType::SOA))
            .and_then(|s| s.records.first())
    }

    /// RFC 2308 §5: the TTL of the SOA in negative answers is min(SOA TTL, SOA MINIMUM).
    pub fn negative_ttl(&self) -> u32 {
        self.settings.soa.ttl.min(self.settings.soa.minimum)
    }

    pub fn record_count(&self) -> usize {
        self.nodes
            .values()
            .flat_map(|n| n.rrsets.iter())
            .map(|s| s.records.len())
            .sum()
    }

    /// Every record, SOA first, in canonical owner order (the order of exports and transfers).
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.nodes
            .values()
            .flat_map(|n| n.rrsets.iter())
            .flat_map(|s| s.records.iter())
    }

    /// Whether two zones serve the same data apart from the SOA serial: a reload that changes
    /// nothing must not bump the serial (secondaries would transfer for nothing).
    pub fn same_content(&self, other: &Zone) -> bool {
        let strip = |z: &Zone| {
            let mut soa = z.soa().cloned();
            if let Some(hickory_proto::rr::RData::SOA(s)) = soa.as_mut().map(|r| &mut r.data) {
                s.serial = 0;
            }
            soa
        };
        self.settings == other.settings
            && self.default == other.default
            && strip(self) == strip(other)
            && self.nodes.len() == other.nodes.len()
            && self
                .nodes
                .iter()
                .zip(other.nodes.iter())
                .filter(|((name, _), _)| *name != self.apex())
                .all(|(a, b)| a == b)
    }
}
