//! The compiled zone: every record that settings plus templates produce, as hickory-proto types.
//!
//! A [`Zone`] is immutable once built. It is the single source of truth for everything that
//! leaves the server: the answer function ([`lookup`]), the precompiled wire answers
//! ([`crate::wire`]), the master-file export ([`export`]) and zone transfers all read it.
//!
//! Layout:
//! - `build`: settings + templates → records (DESIGN.md §3), empty non-terminals included;
//! - `lookup`: the authoritative answer logic as a pure function;
//! - `export`: the RFC 1035 master-file form;
//! - `diff`: what changed between two versions, for incremental transfers.

mod build;
pub mod diff;
pub mod export;
pub mod lookup;
pub mod serial;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hickory_proto::rr::{Name, Record, RecordType};

use crate::config::ZoneSettings;
use crate::plmn::{Mcc, Plmn};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The owner, in lower case.
    pub name: Name,
    pub rrsets: Vec<RRset>,
}

impl Node {
    pub fn rrset(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// Lower-case, uncompressed wire form of a name: the key of every name look-up.
///
/// Written label by label rather than through hickory's encoder: a zone build computes one
/// for every record and every ancestor name (millions for 100,000 operators), and the encoder
/// (a lower-case copy of the name, then compression bookkeeping) made this a fifth of the
/// start-up's CPU time.
pub fn wire_key(name: &Name) -> Box<[u8]> {
    let mut key = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        // `Name` keeps its labels within 63 octets; should one not be, the key is the root's,
        // as the encoder's error made it.
        if label.len() > 63 {
            return Box::new([0]);
        }
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key.push(0);
    key.into_boxed_slice()
}

/// The labels of an uncompressed wire name, each with the offset where it starts (its
/// length octet): the suffix from there is that ancestor's wire name. Stops at the root, or
/// at a label the bytes cut short.
pub fn wire_labels(wire: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let len = usize::from(*wire.get(pos).filter(|&&len| len != 0)?);
        let label = wire.get(pos + 1..pos + 1 + len)?;
        let start = pos;
        pos += 1 + len;
        Some((start, label))
    })
}

/// RFC 4034 §6.1 canonical order key: labels from the root down, each lower case and
/// terminated by a zero octet (our names hold no zero octets: they are host names and
/// service labels), so that byte order is canonical order.
fn canonical_key(wire: &[u8]) -> Vec<u8> {
    let labels: Vec<&[u8]> = wire_labels(wire).map(|(_, label)| label).collect();
    let mut key = Vec::with_capacity(wire.len());
    for label in labels.iter().rev() {
        key.extend_from_slice(label);
        key.push(0);
    }
    key
}

/// The owner names of a zone. Hashed by wire key: building and looking up hundreds of
/// thousands of names must not pay for canonical comparisons, which only export and
/// transfer need (they sort once).
#[derive(Debug, Clone, Default)]
pub struct Nodes {
    map: HashMap<Box<[u8]>, Node, ahash::RandomState>,
}

impl Nodes {
    pub fn get(&self, name: &Name) -> Option<&Node> {
        self.map.get(&wire_key(name))
    }

    pub fn get_wire(&self, key: &[u8]) -> Option<&Node> {
        self.map.get(key)
    }

    pub fn contains(&self, name: &Name) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Nodes with their wire keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.map.iter().map(|(k, v)| (&k[..], v))
    }

    /// The node for `name` (lower case), created empty if absent. Returns whether it is new.
    pub(crate) fn entry(&mut self, name: &Name) -> (&mut Node, bool) {
        self.entry_keyed(wire_key(name), || name.clone())
    }

    /// `entry` for a caller that has the name's wire key already; `name` gives the node's
    /// name (lower case) when it is created.
    pub(crate) fn entry_keyed(
        &mut self,
        key: Box<[u8]>,
        name: impl FnOnce() -> Name,
    ) -> (&mut Node, bool) {
        let mut created = false;
        let node = self.map.entry(key).or_insert_with(|| {
            created = true;
            Node {
                name: name(),
                rrsets: Vec::new(),
            }
        });
        (node, created)
    }

    pub(crate) fn get_mut(&mut self, name: &Name) -> Option<&mut Node> {
        self.map.get_mut(&wire_key(name))
    }
}

impl PartialEq for Nodes {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl Eq for Nodes {}

/// The default template, kept to synthesize answers for networks without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultTemplate {
    pub template: Template,
    pub default_ttl: u32,
}

/// The names of one country code: `mcc<MCC>.<apex>` and everything below it, built from the
/// templates of that MCC. Parts are the unit of rebuilding: a reload rebuilds only the parts
/// whose templates changed, and snapshots share the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub mcc: Mcc,
    /// The templates it was built from, with the settings that shape it: equal inputs give an
    /// equal part, so a previous part is reused when these compare equal.
    pub templates: Vec<Arc<Template>>,
    pub apex: Name,
    pub default_ttl: u32,
    /// The part's records while they are needed (building, compiling). A served snapshot
    /// keeps only the compiled answers and releases these; they are rebuilt from the
    /// templates when someone enumerates the zone (export, transfer).
    pub records: Option<Nodes>,
    pub operators: usize,
    pub names: usize,
    pub record_count: usize,
    /// Whether every answer of the part depends on the part alone (no SRV target with
    /// addresses elsewhere in the zone), so its compiled answers can be reused as they are.
    pub self_contained: bool,
}

impl Part {
    /// The network a name spelled this way (`mnc15` or `mnc015`) belongs to, as a template
    /// file of the part lists it: as spelled, or the listed 2-digit MNC that a padded spelling
    /// stands for. Answered from the templates, so it holds after the records are released.
    pub fn listed_network(&self, spelled: Plmn) -> Option<Plmn> {
        if self.template_of(spelled).is_some() {
            return Some(spelled);
        }
        let two = Plmn::new(spelled.mcc, spelled.mnc.unpadded()?);
        self.template_of(two).map(|_| two)
    }

    /// The template file that lists `network`.
    pub fn template_of(&self, network: Plmn) -> Option<&Arc<Template>> {
        self.templates.iter().find(|t| match &t.coverage {
            crate::template::Coverage::Networks(list) => list.contains(&network),
            crate::template::Coverage::Default => false,
        })
    }

    /// The part's records: the kept ones, or rebuilt from the templates.
    pub fn nodes(&self) -> std::borrow::Cow<'_, Nodes> {
        match &self.records {
            Some(nodes) => std::borrow::Cow::Borrowed(nodes),
            None => std::borrow::Cow::Owned(build::part_nodes(self)),
        }
    }

    /// The part's records in canonical order of their owners: its share of a transfer.
    pub fn records_in_order(&self) -> Vec<Record> {
        let nodes = self.nodes();
        let mut sorted: Vec<(Vec<u8>, &Node)> =
            nodes.iter().map(|(k, n)| (canonical_key(k), n)).collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sorted
            .into_iter()
            .flat_map(|(_, n)| n.rrsets.iter().flat_map(|s| s.records.iter().cloned()))
            .collect()
    }

    /// Whether two parts were built from the same inputs (and so hold the same records).
    pub fn same_inputs(&self, other: &Part) -> bool {
        self.built_from(other.mcc, &other.templates, &other.apex, other.default_ttl)
    }

    /// Whether this part is what building `mcc` from these inputs would give: the one
    /// definition of a part's inputs, for reuse across reloads and for content comparison.
    pub fn built_from(
        &self,
        mcc: Mcc,
        templates: &[Arc<Template>],
        apex: &Name,
        default_ttl: u32,
    ) -> bool {
        self.mcc == mcc
            && crate::template::same_templates(&self.templates, templates)
            && self.apex == *apex
            && ttl_in_effect(self.templates.iter().map(|t| &**t), self.default_ttl)
                == ttl_in_effect(templates.iter().map(|t| &**t), default_ttl)
    }
}

/// The default TTL as it shapes the records built from `templates`: only a template without a
/// `ttl` of its own takes it (`None`: none does). A `default-ttl` edit thus leaves the parts
/// whose templates all set their own as they were: reused, not rebuilt, and no change to
/// publish (no new serial, nothing for an IXFR to compare).
fn ttl_in_effect<'a>(
    templates: impl IntoIterator<Item = &'a Template>,
    default_ttl: u32,
) -> Option<u32> {
    templates
        .into_iter()
        .any(|t| t.ttl.is_none())
        .then_some(default_ttl)
}

impl DefaultTemplate {
    /// Whether both answer alike: the same template, and the same default TTL where it takes one.
    fn same_answers(&self, other: &DefaultTemplate) -> bool {
        self.template == other.template
            && ttl_in_effect([&self.template], self.default_ttl)
                == ttl_in_effect([&other.template], other.default_ttl)
    }
}

/// The MCC of the label right below the apex, for a lower-case wire name ending in the apex
/// (`\x06mcc313\x05lwm2m\x03org\x00` → 313). Names without one belong to the apex part.
pub fn mcc_of_wire(key: &[u8], apex_len: usize) -> Option<Mcc> {
    let apex_start = key.len().checked_sub(apex_len)?;
    let mut pos = 0;
    while pos < apex_start {
        let len = *key.get(pos)? as usize;
        let end = pos + 1 + len;
        if end == apex_start {
            let label = key.get(pos + 1..end)?;
            return (len == 6 && &label[..3] == b"mcc")
                .then(|| std::str::from_utf8(&label[3..]).ok())
                .flatten()
                .and_then(|digits| Mcc::parse(digits).ok());
        }
        pos = end;
    }
    None
}

/// An immutable, fully built zone: the apex part (SOA, NS, glue) and one part per MCC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub settings: ZoneSettings,
    pub serial: u32,
    /// Names not under an `mcc<MCC>` label: the apex and in-zone name servers.
    pub apex_nodes: Nodes,
    pub parts: BTreeMap<Mcc, Arc<Part>>,
    pub default: Option<DefaultTemplate>,
    /// Number of networks with a template file.
    pub operators: usize,
    apex_key_len: usize,
}

impl Zone {
    pub(crate) fn new(
        settings: ZoneSettings,
        serial: u32,
        apex_nodes: Nodes,
        parts: BTreeMap<Mcc, Arc<Part>>,
        default: Option<DefaultTemplate>,
    ) -> Zone {
        let operators = parts.values().map(|p| p.operators).sum();
        let apex_key_len = wire_key(&settings.apex).len();
        Zone {
            settings,
            serial,
            apex_nodes,
            parts,
            default,
            operators,
            apex_key_len,
        }
    }

    pub fn apex(&self) -> &Name {
        &self.settings.apex
    }

    /// The node of a name, if the zone has it.
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.node_wire(&wire_key(name))
    }

    /// The node of a lower-case wire name, among the records kept in memory (all of them
    /// until a snapshot is compiled; only the apex part's after that).
    pub fn node_wire(&self, key: &[u8]) -> Option<&Node> {
        match mcc_of_wire(key, self.apex_key_len) {
            Some(mcc) => self.parts.get(&mcc)?.records.as_ref()?.get_wire(key),
            None => self.apex_nodes.get_wire(key),
        }
    }

    /// Whether a network spelled this way (`mnc15` or `mnc015`) has names from a template
    /// file ([`Part::listed_network`]).
    pub fn has_network_name(&self, spelled: Plmn) -> bool {
        self.parts
            .get(&spelled.mcc)
            .is_some_and(|part| part.listed_network(spelled).is_some())
    }

    pub fn name_count(&self) -> usize {
        self.apex_nodes.len() + self.parts.values().map(|p| p.names).sum::<usize>()
    }

    /// The SOA record at the apex.
    pub fn soa(&self) -> Option<&Record> {
        self.apex_nodes
            .get(self.apex())
            .and_then(|n| n.rrset(RecordType::SOA))
            .and_then(|s| s.records.first())
    }

    /// RFC 2308 §5: the TTL of the SOA in negative answers is min(SOA TTL, SOA MINIMUM).
    pub fn negative_ttl(&self) -> u32 {
        self.settings.soa.ttl.min(self.settings.soa.minimum)
    }

    pub fn record_count(&self) -> usize {
        let apex: usize = self
            .apex_nodes
            .iter()
            .flat_map(|(_, n)| n.rrsets.iter())
            .map(|s| s.records.len())
            .sum();
        apex + self.parts.values().map(|p| p.record_count).sum::<usize>()
    }

    /// Every record, the apex's first (SOA first of all), then each country code's in
    /// canonical order, then the other in-zone names (name servers): the order of exports and
    /// transfers. Parts whose records were released are rebuilt one at a time, so enumerating
    /// a large zone never holds more than one part's records at once.
    pub fn records(&self) -> impl Iterator<Item = Record> + Send + '_ {
        let apex_key = wire_key(self.apex());
        let mut apex_nodes: Vec<(&[u8], &Node)> = self.apex_nodes.iter().collect();
        apex_nodes.sort_unstable_by_key(|(k, _)| (*k != &apex_key[..], canonical_key(k)));
        let mut apex_nodes = apex_nodes.into_iter().map(|(_, n)| n);
        let apex_node = apex_nodes.next();
        let rest: Vec<&Node> = apex_nodes.collect();
        let owned = |node: &Node| -> Vec<Record> {
            node.rrsets
                .iter()
                .flat_map(|s| s.records.iter().cloned())
                .collect()
        };
        apex_node
            .map(owned)
            .into_iter()
            .flatten()
            .chain(self.parts.values().flat_map(|part| part.records_in_order()))
            .chain(rest.into_iter().flat_map(owned))
    }

    /// Publishes a new serial in place (the SOA is the only record that carries it).
    pub fn set_serial(&mut self, serial: u32) {
        self.serial = serial;
        let apex = self.settings.apex.clone();
        if let Some(node) = self.apex_nodes.get_mut(&apex) {
            for set in &mut node.rrsets {
                for record in &mut set.records {
                    if let hickory_proto::rr::RData::SOA(soa) = &mut record.data {
                        soa.serial = serial;
                    }
                }
            }
        }
    }

    /// Whether two zones serve the same data apart from the SOA serial: a reload that changes
    /// nothing must not bump the serial (secondaries would transfer for nothing).
    pub fn same_content(&self, other: &Zone) -> bool {
        let strip = |z: &Zone| {
            let mut apex = z.apex_nodes.clone();
            if let Some(node) = apex.get_mut(z.apex()) {
                for record in node.rrsets.iter_mut().flat_map(|s| s.records.iter_mut()) {
                    if let hickory_proto::rr::RData::SOA(soa) = &mut record.data {
                        soa.serial = 0;
                    }
                }
            }
            apex
        };
        // The default TTL shapes content only through the parts and the default template,
        // compared below for where it takes effect.
        let settings = |z: &Zone| ZoneSettings {
            default_ttl: 0,
            ..z.settings.clone()
        };
        let same_default = match (&self.default, &other.default) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_answers(b),
            _ => false,
        };
        settings(self) == settings(other)
            && same_default
            && self.parts.len() == other.parts.len()
            && self
                .parts
                .iter()
                .zip(other.parts.iter())
                .all(|((a_mcc, a), (b_mcc, b))| {
                    a_mcc == b_mcc && (Arc::ptr_eq(a, b) || a.same_inputs(b))
                })
            && strip(self) == strip(other)
    }
}

/// A zone built with the default settings from template texts (file name, text), for tests.
#[cfg(test)]
pub(crate) fn zone_of_texts<S: AsRef<str>>(
    files: &[(S, S)],
    serial: u32,
    previous: Option<&Zone>,
) -> Zone {
    let set = crate::template::TemplateSet::from_texts(
        files
            .iter()
            .map(|(path, text)| (std::path::Path::new(path.as_ref()), text.as_ref())),
    )
    .expect("test templates are valid");
    let settings = crate::config::Settings::default();
    let mut zone = build(&settings.zone, &set, serial, previous).expect("test zone builds");
    zone.set_serial(serial);
    zone
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::serialize::binary::BinEncodable;

    #[test]
    fn wire_labels_give_each_label_and_where_it_starts() {
        let wire = b"\x03bsf\x06mnc460\x05lwm2m\x03org\x00";
        let labels: Vec<(usize, &[u8])> = wire_labels(wire).collect();
        assert_eq!(
            labels,
            [
                (0, &b"bsf"[..]),
                (4, b"mnc460"),
                (11, b"lwm2m"),
                (17, b"org")
            ]
        );
        // The suffix from a label's start is that ancestor's wire name.
        assert_eq!(&wire[labels[2].0..], b"\x05lwm2m\x03org\x00");
        assert_eq!(wire_labels(b"\x00").count(), 0);
        // A label the bytes cut short ends the walk.
        assert_eq!(wire_labels(b"\x03bsf\x09mnc").count(), 1);
    }

    #[test]
    fn wire_key_is_the_lower_case_wire_form() {
        for text in [
            "BSF.mnc460.MCC313.lwm2m.org.",
            "_coaps._UDP.bsf.mnc01.mcc001.lwm2m.org.",
            "relative.Name",
            ".",
        ] {
            let name = Name::from_ascii(text).expect("valid name");
            let encoded = name.to_lowercase().to_bytes().expect("encodes");
            assert_eq!(&*wire_key(&name), &encoded[..], "{text}");
        }
        let name = Name::from_ascii("Bsf.MNC460.mcc313.lwm2m.org.").expect("valid name");
        assert_eq!(
            &*wire_key(&name),
            b"\x03bsf\x06mnc460\x06mcc313\x05lwm2m\x03org\x00"
        );
    }
}
