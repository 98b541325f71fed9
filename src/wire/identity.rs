//! What the server says about itself on the wire: its identity and version in answer to
//! CHAOS-class TXT queries for `id.server.`/`hostname.bind.` and `version.server.`/
//! `version.bind.` (RFC 4892), and its name server identifier in the EDNS NSID option
//! (RFC 5001) of responses to queries that carry one.
//!
//! An operator running several servers (a primary and its secondaries, or instances behind one
//! address) asks these to learn which server answered. The answers follow NSD and Knot DNS:
//! TXT (or ANY) in class CH, TTL 0, AA not set (it is no zone's data), the question's letter
//! case echoed; other types and other CHAOS names are refused, as are answers switched off
//! with an empty setting. The NSID goes into every response that has an OPT record, errors
//! included, so that a failing server can be told apart too — where it fits: the responder
//! sizes the answer without it and adds it only within the client's UDP size.

use crate::config::ServerIdentity;

use super::query::OPTION_NSID;

pub const CLASS_CH: u16 = 3;
pub const TYPE_TXT: u16 = 16;

/// The text a CHAOS query asks about, by its lower-case wire name: `None` when the name is not
/// one of the four or its answer is switched off.
pub fn chaos_text<'a>(identity: &'a ServerIdentity, lower: &[u8]) -> Option<&'a [u8]> {
    let text = match lower {
        b"\x02id\x06server\x00" | b"\x08hostname\x04bind\x00" => &identity.identity,
        b"\x07version\x06server\x00" | b"\x07version\x04bind\x00" => &identity.version,
        _ => return None,
    };
    (!text.is_empty()).then_some(&**text)
}

/// Appends the TXT record answering with `text` (at most 255 bytes, checked by the settings):
/// the owner points at the question name, at offset 12.
pub fn write_chaos_record(out: &mut Vec<u8>, text: &[u8]) {
    let rdlength = (1 + text.len()) as u16;
    let [l0, l1] = rdlength.to_be_bytes();
    let [t0, t1] = TYPE_TXT.to_be_bytes();
    let [c0, c1] = CLASS_CH.to_be_bytes();
    // Owner (pointer to 12), TYPE, CLASS, TTL 0, RDLENGTH.
    out.extend_from_slice(&[0xC0, 12, t0, t1, c0, c1, 0, 0, 0, 0, l0, l1]);
    out.push(text.len() as u8);
    out.extend_from_slice(text);
}

/// Bytes the NSID option adds to an OPT record's RDATA for a query that asked for it: none
/// when the server has no NSID.
pub fn nsid_option_len(identity: &ServerIdentity) -> usize {
    if identity.nsid.is_empty() {
        0
    } else {
        4 + identity.nsid.len()
    }
}

/// Appends the NSID option (code, length, payload); the caller has counted it in RDLENGTH.
pub fn write_nsid_option(out: &mut Vec<u8>, identity: &ServerIdentity) {
    let [c0, c1] = OPTION_NSID.to_be_bytes();
    let [l0, l1] = (identity.nsid.len() as u16).to_be_bytes();
    out.extend_from_slice(&[c0, c1, l0, l1]);
    out.extend_from_slice(&identity.nsid);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: &str, version: &str) -> ServerIdentity {
        ServerIdentity {
            identity: id.as_bytes().into(),
            version: version.as_bytes().into(),
            nsid: b"n1".as_slice().into(),
        }
    }

    #[test]
    fn the_four_names_and_nothing_else() {
        let both = identity("host-a", "bsf-dns 1");
        assert_eq!(
            chaos_text(&both, b"\x02id\x06server\x00"),
            Some(&b"host-a"[..])
        );
        assert_eq!(
            chaos_text(&both, b"\x08hostname\x04bind\x00"),
            Some(&b"host-a"[..])
        );
        assert_eq!(
            chaos_text(&both, b"\x07version\x06server\x00"),
            Some(&b"bsf-dns 1"[..])
        );
        assert_eq!(
            chaos_text(&both, b"\x07version\x04bind\x00"),
            Some(&b"bsf-dns 1"[..])
        );
        for other in [
            &b"\x06server\x00"[..],
            b"\x01x\x02id\x06server\x00",
            b"\x07authors\x04bind\x00",
            b"\x00",
        ] {
            assert_eq!(chaos_text(&both, other), None, "{other:?}");
        }
        let hidden = identity("", "");
        assert_eq!(chaos_text(&hidden, b"\x02id\x06server\x00"), None);
        assert_eq!(chaos_text(&hidden, b"\x07version\x04bind\x00"), None);
    }

    #[test]
    fn record_and_option_bytes() {
        let mut out = Vec::new();
        write_chaos_record(&mut out, b"abc");
        assert_eq!(
            out,
            [0xC0, 12, 0, 16, 0, 3, 0, 0, 0, 0, 0, 4, 3, b'a', b'b', b'c']
        );
        let id = identity("a", "b");
        assert_eq!(nsid_option_len(&id), 6);
        let mut out = Vec::new();
        write_nsid_option(&mut out, &id);
        assert_eq!(out, [0, 3, 0, 2, b'n', b'1']);
        let none = ServerIdentity::default();
        assert_eq!(nsid_option_len(&none), 0);
    }
}
