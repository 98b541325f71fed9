//! The served snapshot: a zone with every positive answer precompiled to wire format.
//!
//! Everything an answer needs is decided here, when a snapshot is compiled, so the per-packet
//! work is a hash look-up and a copy (as in NSD and Knot). Each prebuilt answer is a response
//! with ID 0 stored without its question section; the responder copies its header (with the
//! ID and the RD/CD bits patched), the client's question (its letter case, same length) and
//! its records. Answer owners are compressed against the question, so they come out in the
//! client's case too.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::cookie::Cookies;
use super::encode::{Encoded, Encoder};
use super::names::{NameIndex, NodeAnswers, OwnedPrebuilt, PartNames, PartNamesBuilder};
use std::sync::Arc;

use hickory_proto::op::Query;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::config::{ServerIdentity, ServerSettings};
use crate::plmn::Mcc;
use crate::zone::lookup::{answer_at, Answer, Transport};
use crate::zone::{mcc_of_wire, wire_key, Nodes, Part, Zone};

/// The compiled answers of one zone part, shared between snapshots while the part is
/// unchanged.
pub struct CompiledPart {
    part: Arc<Part>,
    names: PartNames,
}

/// What the responder reads for every packet. Immutable; replaced whole on reload.
pub struct Snapshot {
    pub zone: Arc<Zone>,
    /// The apex in lower-case wire form, inline: every query is checked against it, and
    /// inline it shares the snapshot's lines instead of another allocation's.
    apex_wire: ([u8; 255], u8),
    /// Every compiled name of the apex and all parts: what the packet path reads.
    index: NameIndex,
    /// The compiled parts, kept for the next snapshot to reuse.
    parts: HashMap<Mcc, Arc<CompiledPart>, ahash::RandomState>,
    /// The SOA record for negative answers minus its owner name: TYPE, CLASS, TTL (the
    /// RFC 2308 negative TTL), RDLENGTH and RDATA with uncompressed names.
    pub soa_tail: Box<[u8]>,
    pub max_udp_payload: u16,
    /// What the server says about itself (CHAOS TXT answers, NSID).
    pub identity: ServerIdentity,
    /// DNS cookies: `None` when switched off.
    pub cookies: Option<Cookies>,
}

/// A response as the index stores it: without its question section (the responder copies
/// the client's in its place, same length, so the records' compression pointers still land),
/// and, when it has additional records, the length of the prefix without them.
pub(crate) fn prebuild(
    encoder: &mut Encoder,
    question: &Query,
    answer: &Answer,
) -> Option<OwnedPrebuilt> {
    let Encoded {
        mut message,
        question_end,
        trimmed,
    } = encoder.encode(question, answer)?;
    let question_len = question_end.checked_sub(12)?;
    message.drain(12..12 + question_len);
    Some(OwnedPrebuilt {
        bytes: message,
        trimmed: trimmed.map(|length| length - question_len),
    })
}

/// A wire name (at most 255 octets) as a fixed array and its length.
fn inline_name(wire: &[u8]) -> ([u8; 255], u8) {
    let len = wire.len().min(255);
    let mut bytes = [0u8; 255];
    bytes[..len].copy_from_slice(&wire[..len]);
    (bytes, len as u8)
}

fn soa_tail(zone: &Zone) -> Box<[u8]> {
    let mut tail = Vec::with_capacity(64);
    if let Some(soa) = zone.soa() {
        let mut rdata = Vec::new();
        if let hickory_proto::rr::RData::SOA(s) = &soa.data {
            rdata.extend_from_slice(&wire_key(&s.mname));
            rdata.extend_from_slice(&wire_key(&s.rname));
            for v in [
                s.serial,
                s.refresh as u32,
                s.retry as u32,
                s.expire as u32,
                s.minimum,
            ] {
                rdata.extend_from_slice(&v.to_be_bytes());
            }
        }
        tail.extend_from_slice(&u16::from(RecordType::SOA).to_be_bytes());
        tail.extend_from_slice(&1u16.to_be_bytes());
        tail.extend_from_slice(&zone.negative_ttl().to_be_bytes());
        tail.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        tail.extend_from_slice(&rdata);
    }
    tail.into_boxed_slice()
}

/// The records of the other parts that hold in-zone SRV targets of `nodes` but no longer keep
/// their records (a part reused from an earlier snapshot has only compiled answers), rebuilt
/// from their templates for the additional section. Empty unless an operator's bootstrap
/// server is a name under another country's part.
fn released_target_parts(zone: &Zone, nodes: &Nodes) -> HashMap<Mcc, Nodes> {
    let apex_len = wire_key(zone.apex()).len();
    let mut rebuilt = HashMap::new();
    let srv_targets = nodes
        .iter()
        .flat_map(|(_, node)| node.rrsets.iter())
        .filter(|set| set.rtype == RecordType::SRV)
        .flat_map(|set| set.records.iter())
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(&srv.target),
            _ => None,
        });
    for target in srv_targets {
        if !zone.apex().zone_of(target) {
            continue;
        }
        let Some(mcc) = mcc_of_wire(&wire_key(target), apex_len) else {
            continue;
        };
        if let (Entry::Vacant(slot), Some(part)) = (rebuilt.entry(mcc), zone.parts.get(&mcc)) {
            if part.records.is_none() {
                slot.insert(part.nodes().into_owned());
            }
        }
    }
    rebuilt
}

/// Compiles the answers of `nodes` (the records of one part, or of the apex).
fn compile_nodes(zone: &Zone, nodes: &Nodes) -> PartNames {
    let mut names = PartNamesBuilder::default();
    let mut answers = Vec::new();
    let mut encoder = Encoder::default();
    // Additional-section targets: this part's own names first, then the zone's kept records,
    // then the rebuilt records of parts that released theirs.
    let apex_len = wire_key(zone.apex()).len();
    let elsewhere = released_target_parts(zone, nodes);
    let resolve = |name: &Name| {
        nodes.get(name).or_else(|| zone.node(name)).or_else(|| {
            let key = wire_key(name);
            elsewhere.get(&mcc_of_wire(&key, apex_len)?)?.get_wire(&key)
        })
    };
    for (key, node) in nodes.iter() {
        let owner = &node.name;
        answers.clear();
        for set in &node.rrsets {
            let question = Query::query(owner.clone(), set.rtype);
            let answer = answer_at(zone, resolve, node, set.rtype, Transport::Udp);
            if let Some(prebuilt) = prebuild(&mut encoder, &question, &answer) {
                answers.push((u16::from(set.rtype), prebuilt));
            }
        }
        let any_tcp = (node.rrsets.len() > 1)
            .then(|| {
                let question = Query::query(owner.clone(), RecordType::ANY);
                let answer = answer_at(zone, resolve, node, RecordType::ANY, Transport::Tcp);
                prebuild(&mut encoder, &question, &answer)
            })
            .flatten();
        names.insert(key, &answers, any_tcp.as_ref());
    }
    names.finish()
}

impl Snapshot {
    /// Precompiles every positive answer of the zone. Parts unchanged since `previous` (the
    /// same shared part, with answers that depend on it alone) keep their compiled answers.
    /// Once compiled, the records of the MCC parts are released: answers come from the
    /// compiled bytes, and enumeration (export, transfer) rebuilds records from templates.
    pub fn compile(
        mut zone: Zone,
        server: &ServerSettings,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        // Parts unchanged since `previous` keep their compiled answers; the others compile on
        // their own, over the cores when there are several.
        let mut reused: Vec<(Mcc, &CompiledPart)> = Vec::new();
        let mut pending: Vec<(Mcc, &Arc<Part>)> = Vec::new();
        for (mcc, part) in &zone.parts {
            let reusable = previous
                .and_then(|s| s.parts.get(mcc))
                .filter(|c| part.self_contained && Arc::ptr_eq(&c.part, part));
            match reusable {
                Some(done) => reused.push((*mcc, done)),
                None => pending.push((*mcc, part)),
            }
        }
        let fresh =
            crate::parallel::map(&pending, 2, |(_, part)| compile_nodes(&zone, &part.nodes()));
        let fresh_mccs: Vec<Mcc> = pending.into_iter().map(|(mcc, _)| mcc).collect();
        let apex_names = compile_nodes(&zone, &zone.apex_nodes);
        // The records of parts built for this zone are no longer needed: answers come from
        // the compiled bytes. (A part still shared elsewhere released them when it was first
        // compiled.) Freeing them is a twentieth of a large start-up: done off the way to
        // serving.
        let released: Vec<Nodes> = zone
            .parts
            .values_mut()
            .filter_map(|part| Arc::get_mut(part)?.records.take())
            .collect();
        if !released.is_empty() {
            crate::parallel::free_in_background(released);
        }
        // The index places the parts' bytes in chunks (the parts compiled anew copied into a
        // new one, reused parts mostly left where they are); the parts kept for the next
        // snapshot are the placed ones, in the order given: the apex (compiled anew every
        // time, not kept), the reused parts, the fresh ones.
        let mut all: Vec<&PartNames> = vec![&apex_names];
        all.extend(reused.iter().map(|(_, c)| &c.names));
        all.extend(fresh.iter());
        let (index, placed) = NameIndex::build(&all);
        let mut placed = placed.into_iter().skip(1);
        let mut parts = HashMap::with_capacity_and_hasher(zone.parts.len(), Default::default());
        for ((mcc, done), names) in reused.iter().zip(&mut placed) {
            let part = done.part.clone();
            parts.insert(*mcc, Arc::new(CompiledPart { part, names }));
        }
        for (mcc, names) in fresh_mccs.into_iter().zip(placed) {
            if let Some(part) = zone.parts.get(&mcc) {
                let part = part.clone();
                parts.insert(mcc, Arc::new(CompiledPart { part, names }));
            }
        }
        Snapshot {
            apex_wire: inline_name(&wire_key(zone.apex())),
            soa_tail: soa_tail(&zone),
            index,
            parts,
            zone: Arc::new(zone),
            max_udp_payload: server.max_udp_payload,
            identity: server.identity.clone(),
            cookies: Cookies::from_settings(&server.cookies),
        }
    }

    /// Whether this snapshot answers as `server` says about itself (identity, NSID) and
    /// about cookies: the settings a reload applies without a new zone.
    pub fn answers_as(&self, server: &ServerSettings) -> bool {
        self.identity == server.identity && self.cookies == Cookies::from_settings(&server.cookies)
    }

    /// The apex in lower-case wire form.
    pub fn apex_wire(&self) -> &[u8] {
        &self.apex_wire.0[..self.apex_wire.1 as usize]
    }

    /// The names the packet path looks up.
    pub fn index(&self) -> &NameIndex {
        &self.index
    }

    /// The compiled answers of a lower-case wire name.
    pub fn node(&self, lower: &[u8]) -> Option<NodeAnswers<'_>> {
        self.index.get(lower)
    }

    pub fn serial(&self) -> u32 {
        self.zone.serial
    }

    /// The snapshot of the bundled `zones/` with default settings, for tests that answer
    /// queries.
    #[cfg(test)]
    pub(crate) fn of_bundled_zones() -> Snapshot {
        let zones = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        let inputs = crate::load::Inputs {
            zones_dir: zones,
            settings_file: None,
        };
        let loaded = inputs.read().expect("bundled zones load");
        let zone = loaded.build(1).expect("bundled zones build");
        Snapshot::compile(zone, &loaded.settings.server, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::template::TemplateSet;

    const MCCS: u16 = 8;
    const MNCS: u16 = 3;

    /// One file per MCC, its networks' address ending in that MCC's version.
    fn templates(versions: &[u8]) -> TemplateSet {
        let texts: Vec<(String, String)> = versions
            .iter()
            .enumerate()
            .map(|(i, version)| {
                let mncs: Vec<String> = (0..MNCS).map(|m| format!("\"{m:03}\"")).collect();
                (
                    format!("{}.toml", 310 + i),
                    format!(
                        "mcc = \"{}\"\nmnc = [{}]\naddresses = [\"192.0.2.{version}\"]\n\
                         [[bootstrap]]\nuri = \"coaps://bs{version}.mcc{}.example.net\"\n",
                        310 + i,
                        mncs.join(", "),
                        310 + i
                    ),
                )
            })
            .collect();
        TemplateSet::from_texts(
            texts
                .iter()
                .map(|(p, t)| (std::path::Path::new(p.as_str()), t.as_str())),
        )
        .expect("valid templates")
    }

    type Answers = Vec<Option<(Vec<u8>, Option<usize>)>>;

    /// Every answer of every network's names, as the snapshot's index gives them.
    fn answers(snapshot: &Snapshot) -> Answers {
        let mut all = Vec::new();
        for mcc in 310..310 + MCCS {
            for mnc in 0..MNCS {
                for prefix in ["", "_coaps._udp."] {
                    let name = format!("{prefix}bsf.mnc{mnc:03}.mcc{mcc}.lwm2m.org.");
                    let key = wire_key(&Name::from_ascii(&name).expect("name"));
                    let node = snapshot.node(&key);
                    assert!(node.is_some(), "{name} not in the index");
                    for qtype in [1u16, 16, 28, 33, 256] {
                        all.push(
                            node.and_then(|n| n.answer(qtype))
                                .map(|p| (p.bytes.to_vec(), p.trimmed)),
                        );
                    }
                }
            }
        }
        all
    }

    #[test]
    fn parts_kept_across_many_reloads_answer_as_a_fresh_compile() {
        let settings = Settings::default();
        let mut versions = vec![1u8; MCCS as usize];
        let zone =
            crate::zone::build(&settings.zone, &templates(&versions), 1, None).expect("zone");
        let mut snapshot = Snapshot::compile(zone, &settings.server, None);
        // Each reload changes one or two countries; the others keep their compiled parts
        // (and their bytes move between chunks as the index places them).
        for step in 0..12u32 {
            versions[(step as usize * 3) % MCCS as usize] += 1;
            if step % 4 == 0 {
                versions[(step as usize + 1) % MCCS as usize] += 1;
            }
            let serial = 2 + step;
            let set = templates(&versions);
            let zone = crate::zone::build(&settings.zone, &set, serial, Some(&snapshot.zone))
                .expect("zone");
            let reused = zone
                .parts
                .iter()
                .filter(|(mcc, part)| {
                    snapshot
                        .parts
                        .get(mcc)
                        .is_some_and(|c| Arc::ptr_eq(&c.part, part))
                })
                .count();
            assert!(
                reused >= MCCS as usize - 2,
                "step {step}: {reused} parts reused"
            );
            let next = Snapshot::compile(zone, &settings.server, Some(&snapshot));
            let fresh_zone = crate::zone::build(&settings.zone, &set, serial, None).expect("zone");
            let fresh = Snapshot::compile(fresh_zone, &settings.server, None);
            assert_eq!(answers(&next), answers(&fresh), "step {step}");
            snapshot = next;
        }
    }
}
