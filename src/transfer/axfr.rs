//! The messages of a zone transfer: AXFR (RFC 5936), incremental IXFR and AXFR-style IXFR
//! (RFC 1995 §4).
//!
//! A whole transfer is the SOA, every record of the zone in canonical order, and the SOA
//! again; an incremental one the SOAs around the records deleted and added; either is split
//! over as many messages as needed. Each message is filled to about [`TARGET_MESSAGE_SIZE`]
//! (16 KiB: large enough that framing and signing cost little, small enough that a reader
//! never buffers much) and never past [`HARD_LIMIT`], which leaves room for OPT and TSIG under
//! the 65,535 octets a TCP message may have. Only the first message carries the question
//! (RFC 5936 §2.2.1). Messages are produced one at a time, so memory stays at one message
//! whatever the zone's size.

use std::iter::Peekable;
use std::sync::Arc;

use hickory_proto::rr::Record;

use super::message::{EncodeError, MessageWriter, Section, FLAG_AA, FLAG_QR};
use crate::zone::diff::ZoneDiff;
use crate::zone::Zone;

/// Size a message is filled to before the next one starts.
pub const TARGET_MESSAGE_SIZE: usize = 16 * 1024;
/// Room kept free at the end of every message for OPT (11 octets) and TSIG (at most about
/// 350 octets with a 255-octet key name and a 64-octet MAC).
const RESERVE: usize = 1024;
/// No message grows past this before OPT and TSIG.
pub const HARD_LIMIT: usize = u16::MAX as usize - RESERVE;

/// How the response messages echo the request.
#[derive(Debug, Clone, Copy)]
pub struct Echo<'q> {
    pub id: u16,
    /// The request's RD bit (RFC 5936 §2.2.1 lets it be copied).
    pub rd: bool,
    /// The question exactly as the client sent it, and the length of its QNAME.
    pub question: &'q [u8],
    pub name_len: usize,
    /// EDNS payload size and DO bit to answer with, when the request had OPT.
    pub edns: Option<(u16, bool)>,
}

type Records<'z> = Peekable<Box<dyn Iterator<Item = Record> + Send + 'z>>;

/// The response to one transfer request, message by message.
pub struct Transfer<'z, 'q> {
    echo: Echo<'q>,
    records: Records<'z>,
    first: bool,
    /// Records put in messages so far.
    pub records_sent: usize,
}

impl<'z, 'q> Transfer<'z, 'q> {
    /// The whole zone: SOA, every record (the SOA among them, first), SOA.
    pub fn full(zone: &'z Zone, echo: Echo<'q>) -> Transfer<'z, 'q> {
        let closing = zone.soa().cloned();
        Transfer::of(zone.records().chain(closing), echo)
    }

    /// A transfer of these records, in this order.
    fn of(records: impl Iterator<Item = Record> + Send + 'z, echo: Echo<'q>) -> Transfer<'z, 'q> {
        let records: Box<dyn Iterator<Item = Record> + Send + 'z> = Box::new(records);
        Transfer {
            echo,
            records: records.peekable(),
            first: true,
            records_sent: 0,
        }
    }

    /// What changed since the client's version (RFC 1995 §4): the new SOA, then one
    /// difference sequence — the client's SOA, the records to delete, the new SOA, the records
    /// to add — and the new SOA again. Versions in between are condensed into the one
    /// sequence, which takes the client to the same zone.
    ///
    /// The difference is shared (other secondaries may be sent it at the same time): its
    /// records are copied one at a time as they are written.
    pub fn incremental(
        zone: &'z Zone,
        theirs: &Zone,
        diff: Arc<ZoneDiff>,
        echo: Echo<'q>,
    ) -> Transfer<'z, 'q> {
        let new_soa = zone.soa().cloned();
        let old_soa = theirs.soa().cloned();
        let deleted = {
            let diff = Arc::clone(&diff);
            (0..diff.deleted.len()).map(move |i| diff.deleted[i].clone())
        };
        let added = (0..diff.added.len()).map(move |i| diff.added[i].clone());
        let records = new_soa
            .clone()
            .into_iter()
            .chain(old_soa)
            .chain(deleted)
            .chain(new_soa.clone())
            .chain(added)
            .chain(new_soa);
        Transfer::of(records, echo)
    }

    /// Only the SOA: the answer to an IXFR from a client that is up to date (RFC 1995 §2).
    pub fn soa_only(zone: &'z Zone, echo: Echo<'q>) -> Transfer<'z, 'q> {
        Transfer::of(zone.soa().cloned().into_iter(), echo)
    }

    /// The next message (without TSIG), or `None` when the transfer is complete.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, EncodeError>> {
        if !self.first && self.records.peek().is_none() {
            return None;
        }
        let flags = FLAG_QR | FLAG_AA | if self.echo.rd { 0x0100 } else { 0 };
        let mut writer = MessageWriter::new(self.echo.id, flags, TARGET_MESSAGE_SIZE + 1024);
        if self.first {
            writer.question_raw(self.echo.question, self.echo.name_len);
            self.first = false;
        }
        while let Some(record) = self.records.peek() {
            let mark = writer.mark();
            if let Err(error) = writer.record(Section::Answer, record) {
                return Some(Err(error));
            }
            if writer.len() > HARD_LIMIT {
                writer.rollback(mark);
                if writer.count(Section::Answer) == 0 {
                    return Some(Err(EncodeError {
                        owner: record.name.to_string(),
                        rtype: record.record_type().to_string(),
                        reason: "the record alone does not fit in a 64 KiB message".into(),
                    }));
                }
                break;
            }
            self.records.next();
            self.records_sent += 1;
            if writer.len() >= TARGET_MESSAGE_SIZE {
                break;
            }
        }
        if let Some((payload, dnssec_ok)) = self.echo.edns {
            writer.opt(payload, dnssec_ok);
        }
        Some(Ok(writer.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, RData, RecordType};

    fn zone(operators: usize) -> Zone {
        let texts: Vec<(String, String)> = (0..operators)
            .map(|i| {
                (
                    format!("t{i}.toml"),
                    format!(
                        "mcc = \"{}\"\nmnc = [\"{:03}\"]\naddresses = [\"192.0.2.{}\"]\n\
                         [[bootstrap]]\nuri = \"coaps://bs{i}.example.net:5684\"\n\
                         [[bootstrap]]\nuri = \"coap+tcp://bs{i}.example.net\"\n",
                        200 + i / 1000,
                        i % 1000,
                        i % 250 + 1
                    ),
                )
            })
            .collect();
        crate::zone::zone_of_texts(&texts, 42, None)
    }

    fn echo(question: &[u8]) -> Echo<'_> {
        Echo {
            id: 9,
            rd: false,
            question,
            name_len: question.len() - 4,
            edns: None,
        }
    }

    #[test]
    fn whole_zone_soa_first_and_last_in_bounded_messages() {
        let zone = zone(1500);
        let question = b"\x05LWM2M\x03org\x00\x00\xfc\x00\x01";
        let mut transfer = Transfer::full(&zone, echo(question));
        let mut records = Vec::new();
        let mut sizes = Vec::new();
        while let Some(message) = transfer.next_message() {
            let bytes = message.unwrap();
            sizes.push(bytes.len());
            let parsed = Message::from_vec(&bytes).unwrap();
            assert_eq!(parsed.metadata.id, 9);
            assert!(parsed.metadata.authoritative);
            assert_eq!(parsed.queries.len(), usize::from(sizes.len() == 1));
            records.extend(parsed.answers);
        }
        assert!(sizes.len() > 5, "{sizes:?}");
        assert!(
            sizes.iter().all(|&s| s < TARGET_MESSAGE_SIZE + 1024),
            "{sizes:?}"
        );
        assert!(sizes[..sizes.len() - 1]
            .iter()
            .all(|&s| s >= TARGET_MESSAGE_SIZE));
        assert_eq!(records.len(), zone.record_count() + 1);
        assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
        assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
        let expected: Vec<Record> = zone.records().collect();
        for (got, want) in records.iter().zip(expected) {
            assert_eq!(*got, want);
        }
        assert_eq!(transfer.records_sent, records.len());
    }

    #[test]
    fn incremental_is_one_sequence_between_the_soas() {
        let old = zone(3);
        let mut new = zone(3);
        new.set_serial(43);
        let soa = new.soa().unwrap().clone();
        let mut gone = soa.clone();
        gone.name = Name::from_ascii("gone.lwm2m.org.").unwrap();
        let mut came = soa.clone();
        came.name = Name::from_ascii("came.lwm2m.org.").unwrap();
        let diff = ZoneDiff {
            deleted: vec![gone],
            added: vec![came],
        };
        let question = b"\x05lwm2m\x03org\x00\x00\xfb\x00\x01";
        let mut transfer = Transfer::incremental(&new, &old, Arc::new(diff), echo(question));
        let parsed = Message::from_vec(&transfer.next_message().unwrap().unwrap()).unwrap();
        assert!(transfer.next_message().is_none());
        let summary: Vec<(String, u32)> = parsed
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::SOA(soa) => (r.name.to_ascii(), soa.serial),
                _ => (r.name.to_ascii(), 0),
            })
            .collect();
        let apex = "lwm2m.org.".to_string();
        assert_eq!(
            summary,
            [
                (apex.clone(), 43),
                (apex.clone(), 42),
                ("gone.lwm2m.org.".into(), 43),
                (apex.clone(), 43),
                ("came.lwm2m.org.".into(), 43),
                (apex, 43)
            ]
        );
    }

    #[test]
    fn up_to_date_ixfr_is_one_soa() {
        let zone = zone(3);
        let question = b"\x05lwm2m\x03org\x00\x00\xfb\x00\x01";
        let mut transfer = Transfer::soa_only(&zone, echo(question));
        let parsed = Message::from_vec(&transfer.next_message().unwrap().unwrap()).unwrap();
        assert_eq!(parsed.answers.len(), 1);
        assert!(transfer.next_message().is_none());
    }
}
