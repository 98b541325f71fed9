//! The served snapshot: a zone with every positive answer precompiled to wire format.
//!
//! Everything an answer needs is decided here, when a snapshot is compiled, so the per-packet
//! work is a hash look-up and a copy (as in NSD and Knot). Each prebuilt answer is a complete
//! response with ID 0 and the question in lower case; the responder patches the ID, the RD/CD
//! bits and the question (the client's letter case, same length) into a copy. Answer owners are
//! compressed against the question, so they come out in the client's case too.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::config::ServerSettings;
use crate::plmn::Mcc;
use crate::zone::lookup::{lookup, Answer, Transport};
use crate::zone::{mcc_of_wire, Node, Part, Zone};

/// A prebuilt response and, when it has additional records, the same without them (used when
/// the full one does not fit the client's size limit: RFC 2181 §9 lets additional data go).
#[derive(Debug, Clone)]
pub struct Prebuilt {
    pub full: Box<[u8]>,
    pub without_additional: Option<Box<[u8]>>,
}

/// The prebuilt answers at one owner name.
#[derive(Debug, Clone, Default)]
pub struct CompiledNode {
    /// Per record type present, in the node's order (the first also answers ANY over UDP).
    pub answers: Vec<(u16, Prebuilt)>,
    /// ANY over TCP, when the node has more than one record set.
    pub any_tcp: Option<Prebuilt>,
}

/// Hash-flooding resistant and fast: query names are chosen by whoever sends packets.
type NameMap = HashMap<Box<[u8]>, CompiledNode, ahash::RandomState>;

/// The compiled answers of one zone part, shared between snapshots while the part is
/// unchanged.
pub struct CompiledPart {
    part: Arc<Part>,
    names: NameMap,
}

/// What the responder reads for every packet. Immutable; replaced whole on reload.
pub struct Snapshot {
    pub zone: Arc<Zone>,
    pub apex_wire: Box<[u8]>,
    apex_names: NameMap,
    parts: HashMap<Mcc, Arc<CompiledPart>, ahash::RandomState>,
    /// The SOA record for negative answers minus its owner name: TYPE, CLASS, TTL (the
    /// RFC 2308 negative TTL), RDLENGTH and RDATA with uncompressed names.
    pub soa_tail: Box<[u8]>,
    pub max_udp_payload: u16,
}

/// Wire form of a name, lower case, uncompressed.
pub fn wire_name(name: &Name) -> Box<[u8]> {
    let lower = name.to_lowercase();
    lower
        .to_bytes()
        .unwrap_or_else(|_| vec![0])
        .into_boxed_slice()
}

/// Encodes an answer as a complete response to `question` (ID 0, RD/CD clear). Names are
/// compressed against the question and each other.
pub fn encode(question: &Query, answer: &Answer) -> Option<Vec<u8>> {
    let mut metadata = Metadata::new(0, MessageType::Response, OpCode::Query);
    metadata.authoritative = answer.authoritative();
    metadata.response_code = answer.rcode();
    let mut message = Message::new(0, MessageType::Response, OpCode::Query);
    message.metadata = metadata;
    message.queries.push(question.clone());
    // Answer owners equal the question name; writing them as the question's spelling lets
    // the encoder point them at the question.
    let rename = |r: &Record| {
        let mut r = r.clone();
        if r.name.eq_ignore_root(&question.name) {
            r.name = question.name.clone();
        }
        r
    };
    message.answers = answer.answers.iter().map(rename).collect();
    message.authorities = answer.authority.clone();
    message.additionals = answer.additional.clone();
    message.to_vec().ok()
}

fn prebuild(question: &Query, answer: &Answer) -> Option<Prebuilt> {
    let full = encode(question, answer)?.into_boxed_slice();
    let without_additional = if answer.additional.is_empty() {
        None
    } else {
        let mut trimmed = answer.clone();
        trimmed.additional.clear();
        Some(encode(question, &trimmed)?.into_boxed_slice())
    };
    Some(Prebuilt {
        full,
        without_additional,
    })
}

fn soa_tail(zone: &Zone) -> Box<[u8]> {
    let mut tail = Vec::with_capacity(64);
    if let Some(soa) = zone.soa() {
        let mut rdata = Vec::new();
        if let hickory_proto::rr::RData::SOA(s) = &soa.data {
            rdata.extend_from_slice(&wire_name(&s.mname));
            rdata.extend_from_slice(&wire_name(&s.rname));
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

fn compile_nodes<'a>(zone: &Zone, nodes: impl Iterator<Item = (&'a [u8], &'a Node)>) -> NameMap {
    let mut names = NameMap::default();
    for (key, node) in nodes {
        let owner = &node.name;
        let mut compiled = CompiledNode::default();
        for set in &node.rrsets {
            let question = Query::query(owner.clone(), set.rtype);
            let answer = lookup(zone, owner, set.rtype, DNSClass::IN, Transport::Udp);
            if let Some(prebuilt) = prebuild(&question, &answer) {
                compiled.answers.push((u16::from(set.rtype), prebuilt));
            }
        }
        if node.rrsets.len() > 1 {
            let question = Query::query(owner.clone(), RecordType::ANY);
            let answer = lookup(zone, owner, RecordType::ANY, DNSClass::IN, Transport::Tcp);
            compiled.any_tcp = prebuild(&question, &answer);
        }
        names.insert(key.into(), compiled);
    }
    names
}

impl Snapshot {
    /// Precompiles every positive answer of the zone. Parts unchanged since `previous` (the
    /// same shared part, with answers that depend on it alone) keep their compiled answers.
    pub fn compile(
        zone: Arc<Zone>,
        server: &ServerSettings,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let mut parts = HashMap::with_capacity_and_hasher(zone.parts.len(), Default::default());
        for (mcc, part) in &zone.parts {
            let reusable = previous
                .and_then(|s| s.parts.get(mcc))
                .filter(|c| part.self_contained && Arc::ptr_eq(&c.part, part));
            let compiled = match reusable {
                Some(compiled) => compiled.clone(),
                None => Arc::new(CompiledPart {
                    part: part.clone(),
                    names: compile_nodes(&zone, part.nodes.iter()),
                }),
            };
            parts.insert(*mcc, compiled);
        }
        Snapshot {
            apex_wire: wire_name(zone.apex()),
            soa_tail: soa_tail(&zone),
            apex_names: compile_nodes(&zone, zone.apex_nodes.iter()),
            parts,
            zone,
            max_udp_payload: server.max_udp_payload,
        }
    }

    /// The compiled node of a lower-case wire name.
    pub fn node(&self, lower: &[u8]) -> Option<&CompiledNode> {
        match mcc_of_wire(lower, self.apex_wire.len()) {
            Some(mcc) => self.parts.get(&mcc)?.names.get(lower),
            None => self.apex_names.get(lower),
        }
    }

    pub fn serial(&self) -> u32 {
        self.zone.serial
    }
}
