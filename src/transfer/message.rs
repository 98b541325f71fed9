//! Building transfer and NOTIFY messages as bytes: header, question, records with names
//! compressed, OPT.
//!
//! hickory-proto's encoder keeps at most 64 compression candidates per message, which on a
//! 16 KiB AXFR message of `_coaps._udp.bsf.mncNNN.mccNNN.<apex>` names leaves most owners
//! uncompressed. This writer keeps every suffix it has written (exact bytes, so a client's
//! letter case is never mixed into another name) and can roll a record back, so a message is
//! filled up to its size target and never past its hard limit. Names in RDATA are compressed
//! only for the RFC 1035 types (NS, SOA); SRV and newer types are written whole (RFC 3597 §4).

use std::collections::HashMap;

use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::tsig::name_wire;

/// Header flag bits (RFC 1035 §4.1.1).
pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;

/// Compression pointers address the first 16 KiB only (14 bits).
const POINTER_LIMIT: usize = 0x3FFF;

/// One message under construction.
pub struct MessageWriter {
    buf: Vec<u8>,
    /// Suffix (wire form, exact bytes) → offset where it was written.
    suffixes: HashMap<Vec<u8>, u16>,
    /// Suffixes in the order they were added, to undo a record.
    added: Vec<(Vec<u8>, usize)>,
    counts: [u16; 4],
}

/// The message sections, as indices into the header counts.
#[derive(Debug, Clone, Copy)]
pub enum Section {
    Answer = 1,
    Additional = 3,
}

/// A position to roll back to.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    len: usize,
    added: usize,
    counts: [u16; 4],
}

/// A record that cannot be written (its RDATA would not encode).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot encode a {rtype} record at {owner}: {reason}")]
pub struct EncodeError {
    pub owner: String,
    pub rtype: String,
    pub reason: String,
}

impl MessageWriter {
    /// Starts a message with this ID and flags (rcode included).
    pub fn new(id: u16, flags: u16, capacity: usize) -> MessageWriter {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        MessageWriter {
            buf,
            suffixes: HashMap::new(),
            added: Vec::new(),
            counts: [0; 4],
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() <= 12
    }

    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    /// Writes a question given in wire form (QNAME QTYPE QCLASS, as the client sent it); its
    /// name becomes a compression target.
    pub fn question_raw(&mut self, raw: &[u8], name_len: usize) {
        let start = self.buf.len();
        self.buf.extend_from_slice(raw);
        let name = raw.get(..name_len).unwrap_or_default().to_vec();
        self.remember_suffixes(&name, start);
        self.counts[0] += 1;
    }

    /// Writes a question for `name` (any case), `qtype`, class IN.
    pub fn question(&mut self, name: &hickory_proto::rr::Name, qtype: u16) {
        let wire = name_wire(name);
        self.write_name(&wire, true);
        self.buf.extend_from_slice(&qtype.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.counts[0] += 1;
    }

    fn remember_suffixes(&mut self, wire: &[u8], start: usize) {
        let mut pos = 0;
        while let Some(&len) = wire.get(pos) {
            if len == 0 || len & 0xC0 != 0 || start + pos > POINTER_LIMIT {
                break;
            }
            let suffix = wire[pos..].to_vec();
            if !self.suffixes.contains_key(&suffix) {
                self.suffixes.insert(suffix.clone(), (start + pos) as u16);
                self.added.push((suffix, start + pos));
            }
            pos += 1 + len as usize;
        }
    }

    /// Writes an uncompressed wire name, compressed against what the message holds when
    /// `compress`, and remembers its suffixes for later names either way.
    fn write_name(&mut self, wire: &[u8], compress: bool) {
        if !compress {
            let start = self.buf.len();
            self.buf.extend_from_slice(wire);
            self.remember_suffixes(wire, start);
            return;
        }
        let mut pos = 0;
        while let Some(&len) = wire.get(pos) {
            if len == 0 {
                self.buf.push(0);
                return;
            }
            let suffix = &wire[pos..];
            if let Some(&offset) = self.suffixes.get(suffix) {
                self.buf.extend_from_slice(&(0xC000 | offset).to_be_bytes());
                return;
            }
            let at = self.buf.len();
            if at <= POINTER_LIMIT {
                self.suffixes.insert(suffix.to_vec(), at as u16);
                self.added.push((suffix.to_vec(), at));
            }
            let end = (pos + 1 + len as usize).min(wire.len());
            self.buf.extend_from_slice(&wire[pos..end]);
            pos = end;
        }
        // A wire name always ends in the root label; this is only reached on bad input.
        self.buf.push(0);
    }

    pub fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            added: self.added.len(),
            counts: self.counts,
        }
    }

    /// Undoes everything written since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        self.buf.truncate(mark.len);
        for (suffix, _) in self.added.drain(mark.added..) {
            self.suffixes.remove(&suffix);
        }
        self.counts = mark.counts;
    }

    /// Writes one record into `section`.
    pub fn record(&mut self, section: Section, record: &Record) -> Result<(), EncodeError> {
        let mark = self.mark();
        let result = self.record_inner(record);
        match result {
            Ok(()) => {
                self.counts[section as usize] += 1;
                Ok(())
            }
            Err(reason) => {
                self.rollback(mark);
                Err(EncodeError {
                    owner: record.name.to_string(),
                    rtype: record.record_type().to_string(),
                    reason,
                })
            }
        }
    }

    fn record_inner(&mut self, record: &Record) -> Result<(), String> {
        self.write_name(&name_wire(&record.name), true);
        self.buf
            .extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
        self.buf
            .extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
        self.buf.extend_from_slice(&record.ttl.to_be_bytes());
        let rdlength_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match &record.data {
            RData::SOA(soa) => {
                self.write_name(&name_wire(&soa.mname), true);
                self.write_name(&name_wire(&soa.rname), true);
                self.buf.extend_from_slice(&soa.serial.to_be_bytes());
                for v in [soa.refresh, soa.retry, soa.expire] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                self.buf.extend_from_slice(&soa.minimum.to_be_bytes());
            }
            RData::NS(ns) => self.write_name(&name_wire(&ns.0), true),
            other => {
                // No compression in these RDATA (SRV targets and newer types: RFC 2782,
                // RFC 3597 §4), so hickory's encoder can write them on their own.
                let mut rdata = Vec::with_capacity(64);
                let mut encoder = BinEncoder::new(&mut rdata);
                encoder.set_name_encoding(NameEncoding::Uncompressed);
                other.emit(&mut encoder).map_err(|e| e.to_string())?;
                self.buf.extend_from_slice(&rdata);
            }
        }
        let rdlength = self.buf.len() - rdlength_at - 2;
        let rdlength =
            u16::try_from(rdlength).map_err(|_| "RDATA over 65535 octets".to_string())?;
        self.buf[rdlength_at..rdlength_at + 2].copy_from_slice(&rdlength.to_be_bytes());
        Ok(())
    }

    /// Appends an OPT record (RFC 6891) advertising `payload`, version 0, no options.
    pub fn opt(&mut self, payload: u16, dnssec_ok: bool) {
        self.buf.push(0);
        self.buf.extend_from_slice(&41u16.to_be_bytes());
        self.buf.extend_from_slice(&payload.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        self.counts[3] += 1;
    }

    /// The finished message (without TSIG: the signer appends it and counts it).
    pub fn finish(mut self) -> Vec<u8> {
        for (i, count) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{NS, SRV};
    use hickory_proto::rr::Name;

    fn rec(owner: &str, data: RData) -> Record {
        Record::from_rdata(Name::from_ascii(owner).unwrap(), 300, data)
    }

    #[test]
    fn names_compress_and_messages_parse() {
        let mut w = MessageWriter::new(7, FLAG_QR | FLAG_AA, 512);
        let apex = Name::from_ascii("lwm2m.org.").unwrap();
        w.question(&apex, 252);
        let records = [
            rec(
                "lwm2m.org.",
                RData::NS(NS(Name::from_ascii("ns1.lwm2m.org.").unwrap())),
            ),
            rec(
                "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
                RData::SRV(SRV::new(
                    10,
                    1,
                    5684,
                    Name::from_ascii("bs.example.net.").unwrap(),
                )),
            ),
            rec(
                "_coap._udp.bsf.mnc460.mcc313.lwm2m.org.",
                RData::SRV(SRV::new(
                    10,
                    1,
                    5683,
                    Name::from_ascii("bs.example.net.").unwrap(),
                )),
            ),
        ];
        for r in &records {
            w.record(Section::Answer, r).unwrap();
        }
        let before = w.mark();
        w.record(Section::Answer, &records[0]).unwrap();
        w.rollback(before);
        let bytes = w.finish();
        let parsed = Message::from_vec(&bytes).unwrap();
        assert_eq!(parsed.answers.len(), 3);
        for (got, want) in parsed.answers.iter().zip(&records) {
            assert_eq!(got, want);
        }
        // The second SRV owner is `_coap._udp` + a pointer to `bsf.mnc460...`: 6+5+2 octets.
        let owner_len = 6 + 5 + 2;
        let uncompressed = name_wire(&records[2].name).len();
        assert!(owner_len < uncompressed);
        // The SRV target is not compressed: it appears twice whole.
        let target = b"\x02bs\x07example\x03net\x00";
        assert_eq!(
            bytes.windows(target.len()).filter(|w| w == target).count(),
            2
        );
    }
}
