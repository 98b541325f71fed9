//! Answers to response bytes: the DNS message writer the snapshot compiler uses.
//!
//! A compile encodes every answer of every name: for 100,000 operators that is millions of
//! messages, and hickory's general encoder (a `Message` of cloned records, each name's
//! suffixes copied into a table of their own) was a third of start-up's CPU time. This writer
//! covers the record types a zone holds (SOA, NS, A, AAAA, TXT, SRV, and opaque RDATA such as
//! URI) and writes the bytes hickory's encoder writes: the same header, the same compression
//! choices (a name's longest suffix already written, matched byte for byte, at most 64
//! remembered suffixes and 120 compressed names per message, SRV targets uncompressed as
//! RFC 2782 asks), so that answers do not change with the writer; a test checks that over
//! whole zones. Any other record type, or a message too large, goes to hickory's encoder.

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record};

use super::query::skip_name;
use crate::zone::lookup::Answer;

/// A response to a question, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// ID 0, RD/CD clear, the question, then the records.
    pub message: Vec<u8>,
    /// Where the question section ends (the records start).
    pub question_end: usize,
    /// When the answer has additional records: the length of the same response without them
    /// (with ARCOUNT 0), which is this one's prefix, as they come last and compression only
    /// points backwards.
    pub trimmed: Option<usize>,
}

/// The same message through hickory's encoder: for record types this writer does not cover,
/// and the reference its tests compare against.
fn with_hickory(question: &Query, answer: &Answer) -> Option<Encoded> {
    let mut metadata = Metadata::new(0, MessageType::Response, OpCode::Query);
    metadata.authoritative = answer.authoritative();
    metadata.response_code = answer.rcode();
    let mut message = Message::new(0, MessageType::Response, OpCode::Query);
    message.metadata = metadata;
    message.queries.push(question.clone());
    let rename = |r: &Record| {
        let mut r = r.clone();
        if r.name.eq_ignore_root(&question.name) {
            r.name = question.name.clone();
        }
        r
    };
    message.answers = answer.answers.iter().map(rename).collect();
    message.authorities = answer.authority.clone();
    let mut shorter = message.clone();
    message.additionals = answer.additional.clone();
    let bytes = message.to_vec().ok()?;
    let trimmed = if answer.additional.is_empty() {
        None
    } else {
        // Should the encoder lay the records out otherwise than as a prefix, the answer
        // simply has no trimmed form (TC=1 when it does not fit).
        shorter.additionals.clear();
        let shorter = shorter.to_vec().ok()?;
        (shorter.len() <= bytes.len()
            && shorter[..10] == bytes[..10]
            && shorter[12..] == bytes[12..shorter.len()])
            .then_some(shorter.len())
    };
    Some(Encoded {
        question_end: skip_name(&bytes, 12)? + 4,
        message: bytes,
        trimmed,
    })
}

/// At most this many suffixes are remembered for compression, and names compressed, per
/// message (hickory's limits, the second Unbound's answer to CVE-2024-8508).
const SUFFIX_LIMIT: usize = 64;
const COMPRESSED_NAME_LIMIT: usize = 120;
/// Offsets from here on cannot be pointed at (a pointer has 14 bits).
const POINTER_LIMIT: usize = 0x3FFF;

/// Encodes answers as responses; kept across the answers of a compile for its buffers.
#[derive(Default)]
pub struct Encoder {
    out: Vec<u8>,
    /// Suffixes written so far: where each starts in `out`, and its labels uncompressed
    /// (a range of `suffix_bytes`).
    suffixes: Vec<(u16, u32, u32)>,
    suffix_bytes: Vec<u8>,
    compressed_names: usize,
    /// The name being written, labels uncompressed, and where each label starts in it.
    labels: Vec<u8>,
    label_starts: Vec<usize>,
}

impl Encoder {
    /// Encodes an answer as a complete response to `question` (ID 0, RD/CD clear). Answer
    /// owners equal to the question name are written as its spelling, so they compress to a
    /// pointer at the question.
    pub fn encode(&mut self, question: &Query, answer: &Answer) -> Option<Encoded> {
        self.write(question, answer)
            .or_else(|| with_hickory(question, answer))
    }

    /// This writer's encoding; `None` for what it does not cover.
    fn write(&mut self, question: &Query, answer: &Answer) -> Option<Encoded> {
        self.out.clear();
        self.out.reserve(512);
        self.suffixes.clear();
        self.suffix_bytes.clear();
        self.compressed_names = 0;
        let flags = 0x8000
            | if answer.authoritative() { 0x0400 } else { 0 }
            | u16::from(answer.rcode().low());
        self.u16(0);
        self.u16(flags);
        for count in [
            1,
            answer.answers.len(),
            answer.authority.len(),
            answer.additional.len(),
        ] {
            self.u16(u16::try_from(count).ok()?);
        }
        self.name(&question.name, true)?;
        self.u16(u16::from(question.query_type));
        self.u16(u16::from(question.query_class));
        let question_end = self.out.len();
        for record in &answer.answers {
            let owner = if record.name.eq_ignore_root(&question.name) {
                &question.name
            } else {
                &record.name
            };
            self.record(owner, record)?;
        }
        for record in &answer.authority {
            self.record(&record.name, record)?;
        }
        let additional_at = self.out.len();
        for record in &answer.additional {
            self.record(&record.name, record)?;
        }
        if self.out.len() > usize::from(u16::MAX) {
            return None;
        }
        Some(Encoded {
            question_end,
            trimmed: (!answer.additional.is_empty()).then_some(additional_at),
            message: std::mem::take(&mut self.out),
        })
    }

    fn record(&mut self, owner: &Name, record: &Record) -> Option<()> {
        self.name(owner, true)?;
        self.u16(u16::from(record.record_type()));
        self.u16(u16::from(record.dns_class));
        self.out.extend_from_slice(&record.ttl.to_be_bytes());
        let length_at = self.out.len();
        self.u16(0);
        match &record.data {
            RData::A(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::AAAA(aaaa) => self.out.extend_from_slice(&aaaa.0.octets()),
            RData::NS(ns) => self.name(&ns.0, true)?,
            RData::SOA(soa) => {
                self.name(&soa.mname, true)?;
                self.name(&soa.rname, true)?;
                for value in [
                    soa.serial,
                    soa.refresh as u32,
                    soa.retry as u32,
                    soa.expire as u32,
                    soa.minimum,
                ] {
                    self.out.extend_from_slice(&value.to_be_bytes());
                }
            }
            RData::TXT(txt) => {
                for string in txt.txt_data.iter() {
                    self.out.push(u8::try_from(string.len()).ok()?);
                    self.out.extend_from_slice(string);
                }
            }
            RData::SRV(srv) => {
                for value in [srv.priority, srv.weight, srv.port] {
                    self.u16(value);
                }
                self.name(&srv.target, false)?;
            }
            RData::Unknown { rdata, .. } => self.out.extend_from_slice(&rdata.anything),
            _ => return None,
        }
        let length = u16::try_from(self.out.len() - length_at - 2).ok()?;
        self.out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        Some(())
    }

    /// Writes `name`: with `compress`, its longest suffix already written becomes a pointer
    /// there. Either way its own suffixes are remembered for the names after it.
    fn name(&mut self, name: &Name, compress: bool) -> Option<()> {
        self.labels.clear();
        self.label_starts.clear();
        for label in name.iter() {
            let length = u8::try_from(label.len()).ok().filter(|&l| l <= 63)?;
            self.label_starts.push(self.labels.len());
            self.labels.push(length);
            self.labels.extend_from_slice(label);
        }
        let compress = compress && self.compressed_names < COMPRESSED_NAME_LIMIT;
        if compress {
            self.compressed_names += 1;
        }
        let at = self.out.len();
        let end = at + self.labels.len();
        for index in 0..self.label_starts.len() {
            let start = self.label_starts[index];
            if compress {
                if let Some(pointer) = self.find(&self.labels[start..]) {
                    self.out.extend_from_slice(&self.labels[..start]);
                    self.u16(0xC000 | pointer);
                    return (self.out.len() - at <= 255).then_some(());
                }
            }
            if end < POINTER_LIMIT && self.suffixes.len() < SUFFIX_LIMIT {
                let from = self.suffix_bytes.len() as u32;
                self.suffix_bytes.extend_from_slice(&self.labels[start..]);
                let to = self.suffix_bytes.len() as u32;
                self.suffixes.push(((at + start) as u16, from, to));
            }
        }
        self.out.extend_from_slice(&self.labels);
        self.out.push(0);
        (self.out.len() - at <= 255).then_some(())
    }

    /// The first remembered suffix equal to `labels`, if a pointer can reach it.
    fn find(&self, labels: &[u8]) -> Option<u16> {
        self.suffixes
            .iter()
            .find(|(_, from, to)| &self.suffix_bytes[*from as usize..*to as usize] == labels)
            .map(|(offset, _, _)| *offset)
            .filter(|offset| offset & 0xC000 == 0)
    }

    fn u16(&mut self, value: u16) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::rr::{DNSClass, RecordType};

    use super::*;
    use crate::config::Settings;
    use crate::template::TemplateSet;
    use crate::zone::lookup::{lookup, Transport};
    use crate::zone::{build, Zone};

    /// The bundled templates, plus networks whose bootstrap hosts are names in the zone (in
    /// another country, in mixed case), so that answers carry additional records whose owners
    /// compress against the question and against SRV targets.
    fn zone() -> Zone {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        let mut files: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(&dir)
            .expect("bundled zones")
            .map(|entry| {
                let path = entry.expect("entry").path();
                let text = std::fs::read_to_string(&path).expect("template");
                (path, text)
            })
            .collect();
        files.push((
            "901-70.toml".into(),
            "mcc = \"901\"\nmnc = [\"70\", \"071\"]\naddresses = [\"192.0.2.1\", \"2001:db8::1\"]\n\
             [[bootstrap]]\nuri = \"coaps://BSF.mnc01.MCC262.lwm2m.org\"\n\
             [[bootstrap]]\nuri = \"coaps+tcp://bsf.mnc070.mcc901.lwm2m.org:5685\"\n\
             [[bootstrap]]\nuri = \"coap://[2001:db8::5]\"\n"
                .into(),
        ));
        let set = TemplateSet::from_texts(files.iter().map(|(p, t)| (p.as_path(), t.as_str())))
            .expect("valid templates");
        let settings = Settings::default();
        build(&settings.zone, &set, 2024010101, None).expect("zone")
    }

    /// The first label in upper case: questions come in the client's spelling.
    fn shouted(name: &Name) -> Name {
        let text = name.to_ascii();
        let (first, rest) = text.split_once('.').unwrap_or((&text, ""));
        Name::from_ascii(format!("{}.{rest}", first.to_uppercase())).expect("name")
    }

    #[test]
    fn writes_what_hickory_writes_for_every_answer_of_a_zone() {
        let zone = zone();
        let mut names: Vec<Name> = zone
            .apex_nodes
            .iter()
            .map(|(_, n)| n.name.clone())
            .collect();
        for part in zone.parts.values() {
            names.extend(part.nodes().iter().map(|(_, n)| n.name.clone()));
        }
        // Names of the default template, and names that do not exist.
        for extra in [
            "bsf.mnc99.mcc999.lwm2m.org.",
            "_coaps._udp.bsf.mnc015.mcc262.lwm2m.org.",
        ] {
            names.push(Name::from_ascii(extra).expect("name"));
        }
        names.push(Name::from_ascii("nothing.mcc313.lwm2m.org.").expect("name"));
        let mut encoder = Encoder::default();
        let (mut compared, mut with_additional) = (0, 0);
        let mut outcomes = std::collections::BTreeSet::new();
        for name in &names {
            let node = zone.node(name);
            let mut types: Vec<RecordType> = node
                .map(|n| n.rrsets.iter().map(|s| s.rtype).collect())
                .unwrap_or_default();
            types.extend([
                RecordType::ANY,
                RecordType::MX,
                RecordType::A,
                RecordType::SRV,
            ]);
            for qname in [name.clone(), shouted(name)] {
                for &qtype in &types {
                    for transport in [Transport::Udp, Transport::Tcp] {
                        let answer = lookup(&zone, &qname, qtype, DNSClass::IN, transport);
                        let question = Query::query(qname.clone(), qtype);
                        let ours = encoder.write(&question, &answer);
                        let reference = with_hickory(&question, &answer);
                        assert!(ours.is_some(), "{qname} {qtype}: not written");
                        assert_eq!(ours, reference, "{qname} {qtype} {transport:?}");
                        compared += 1;
                        with_additional += usize::from(!answer.additional.is_empty());
                        outcomes.insert(format!("{:?}", answer.outcome));
                    }
                }
            }
        }
        // The comparison must have covered every kind of answer.
        assert!(compared > 500, "{compared} answers compared");
        assert!(
            with_additional > 20,
            "{with_additional} with additional records"
        );
        assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    }
}
