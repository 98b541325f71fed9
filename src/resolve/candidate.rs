//! From answers to an ordered list of bootstrap server URIs: the rules a device follows.
//!
//! Tiers, in order: URI records, then SRV records, then TXT `uri=` strings, then — as a last
//! resort — the bsf name itself on the default port, when it has A or AAAA records. Within
//! the URI and SRV tiers the transports come in the device's order of preference (the
//! `--transport` order; by default coaps, coaps+tcp, coap, coap+tcp) and each RRset is put in
//! RFC 2782 order ([`super::order`]). TXT strings carry no priority, so they keep the order
//! the resolver gave (resolvers rotate RRsets; sorting would defeat that load spreading),
//! grouped by transport preference. A URI that reaches the same resource as an earlier one is
//! dropped ([`CoapUri::dedup_key`]), so every candidate names its strongest source.
//!
//! This module does no I/O: [`Answers`] in, [`Candidate`]s out, randomness injected.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::Name;
use rand::Rng;

use super::order::{rfc2782_order, Weighted};
use super::uri::CoapUri;

/// A CoAP transport a device may support, named by its URI scheme. Ordered as
/// [`Transport::DEFAULT_ORDER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// `coaps`: CoAP over DTLS (`_coaps._udp`, port 5684).
    Coaps,
    /// `coaps+tcp`: CoAP over TLS (`_coaps._tcp`, port 5684).
    CoapsTcp,
    /// `coap`: CoAP over UDP (`_coap._udp`, port 5683).
    Coap,
    /// `coap+tcp`: CoAP over TCP (`_coap._tcp`, port 5683).
    CoapTcp,
}

impl Transport {
    /// Default preference: secure first, datagram before stream.
    pub const DEFAULT_ORDER: [Transport; 4] = [
        Transport::Coaps,
        Transport::CoapsTcp,
        Transport::Coap,
        Transport::CoapTcp,
    ];

    /// The URI scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Coaps => "coaps",
            Self::CoapsTcp => "coaps+tcp",
            Self::Coap => "coap",
            Self::CoapTcp => "coap+tcp",
        }
    }

    /// The service label of the SRV/URI owner (`_coaps` or `_coap`).
    pub fn service_label(self) -> &'static str {
        match self {
            Self::Coaps | Self::CoapsTcp => "_coaps",
            Self::Coap | Self::CoapTcp => "_coap",
        }
    }

    /// The protocol label of the SRV/URI owner (`_udp` or `_tcp`).
    pub fn proto_label(self) -> &'static str {
        match self {
            Self::Coaps | Self::Coap => "_udp",
            Self::CoapsTcp | Self::CoapTcp => "_tcp",
        }
    }

    /// 5684 for the secure schemes, 5683 otherwise (RFC 7252, RFC 8323).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Coaps | Self::CoapsTcp => 5684,
            Self::Coap | Self::CoapTcp => 5683,
        }
    }

    /// The owner of this transport's SRV and URI records: `_coaps._udp.<bsf name>` etc.
    pub fn owner(self, bsf_name: &Name) -> Result<Name, hickory_proto::ProtoError> {
        Name::from_labels([self.service_label(), self.proto_label()])?.append_name(bsf_name)
    }

    /// The transport of a URI scheme, compared without case.
    pub fn from_scheme(scheme: &str) -> Option<Self> {
        Self::DEFAULT_ORDER
            .into_iter()
            .find(|t| t.scheme().eq_ignore_ascii_case(scheme))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_scheme(s).ok_or_else(|| {
            format!("unknown transport {s:?}: expected coaps, coaps+tcp, coap or coap+tcp")
        })
    }
}

/// A URI record as answered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UriAnswer {
    /// RFC 7553 priority.
    pub priority: u16,
    /// RFC 7553 weight.
    pub weight: u16,
    /// Target URI.
    pub target: String,
    /// Record TTL, seconds.
    pub ttl: u32,
}

/// An SRV record as answered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SrvAnswer {
    /// RFC 2782 priority.
    pub priority: u16,
    /// RFC 2782 weight.
    pub weight: u16,
    /// Port of the service.
    pub port: u16,
    /// Host name of the service; `.` means "decidedly not available".
    pub target: Name,
    /// Record TTL, seconds.
    pub ttl: u32,
}

/// One string of a TXT record at the bsf name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxtAnswer {
    /// The string's octets.
    pub text: Vec<u8>,
    /// Record TTL, seconds.
    pub ttl: u32,
}

/// An A or AAAA record at the bsf name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressAnswer {
    /// The address.
    pub address: IpAddr,
    /// Record TTL, seconds.
    pub ttl: u32,
}

/// The URI and SRV records of one transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportAnswers {
    /// Which transport.
    pub transport: Transport,
    /// `_coaps._udp.<bsf name>` etc.
    pub owner: Name,
    /// URI records, as answered.
    pub uri: Vec<UriAnswer>,
    /// SRV records, as answered.
    pub srv: Vec<SrvAnswer>,
}

/// Everything the resolver answered for one bsf name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answers {
    /// The bsf name asked for.
    pub bsf_name: Name,
    /// One entry per wanted transport, in the device's order of preference.
    pub transports: Vec<TransportAnswers>,
    /// Strings of the TXT records at the bsf name, in answer order.
    pub txt: Vec<TxtAnswer>,
    /// A and AAAA records at the bsf name.
    pub addresses: Vec<AddressAnswer>,
}

/// Where a candidate came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A URI record (RFC 7553).
    Uri {
        /// Owner name of the record.
        owner: Name,
        /// Its priority.
        priority: u16,
        /// Its weight.
        weight: u16,
        /// Its TTL.
        ttl: u32,
    },
    /// An SRV record (RFC 2782); the URI is `<scheme>://<target>:<port>`.
    Srv {
        /// Owner name of the record.
        owner: Name,
        /// Its priority.
        priority: u16,
        /// Its weight.
        weight: u16,
        /// Its port.
        port: u16,
        /// Its target.
        target: Name,
        /// Its TTL.
        ttl: u32,
    },
    /// A `uri=` string in a TXT record at the bsf name.
    Txt {
        /// Owner name of the record (the bsf name).
        owner: Name,
        /// Its TTL.
        ttl: u32,
    },
    /// The bsf name's own A/AAAA records, on the transport's default port.
    Address {
        /// The bsf name.
        owner: Name,
        /// The addresses answered.
        addresses: Vec<IpAddr>,
        /// The smallest TTL among them.
        ttl: u32,
    },
}

impl Source {
    /// Short name of the record type: `URI`, `SRV`, `TXT` or `A/AAAA`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Uri { .. } => "URI",
            Self::Srv { .. } => "SRV",
            Self::Txt { .. } => "TXT",
            Self::Address { .. } => "A/AAAA",
        }
    }

    /// How long the record behind this candidate may be cached, seconds.
    pub fn ttl(&self) -> u32 {
        match self {
            Self::Uri { ttl, .. }
            | Self::Srv { ttl, .. }
            | Self::Txt { ttl, .. }
            | Self::Address { ttl, .. } => *ttl,
        }
    }
}

/// One bootstrap server URI to try, with the record it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The URI to dial.
    pub uri: String,
    /// Its transport (from the scheme).
    pub transport: Transport,
    /// The record it came from.
    pub source: Source,
}

/// Ordered candidates plus remarks about records that were skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    /// In the order a device must try them.
    pub candidates: Vec<Candidate>,
    /// One line per record that could not be used, and why.
    pub notes: Vec<String>,
    /// Transports of usable records that the device does not speak, in the default order.
    pub unwanted: Vec<Transport>,
}

impl Weighted for UriAnswer {
    fn priority(&self) -> u16 {
        self.priority
    }
    fn weight(&self) -> u16 {
        self.weight
    }
}

impl Weighted for SrvAnswer {
    fn priority(&self) -> u16 {
        self.priority
    }
    fn weight(&self) -> u16 {
        self.weight
    }
}

/// Accumulates candidates, dropping URIs that reach a resource already listed.
struct Collector<'a> {
    wanted: &'a [Transport],
    seen: HashSet<String>,
    out: Assembled,
}

impl Collector<'_> {
    /// Adds `text` if it is a CoAP URI of a wanted transport that is not already listed.
    fn offer(&mut self, text: String, source: Source) {
        let parsed = match CoapUri::parse(&text) {
            Ok(parsed) => parsed,
            Err(err) => {
                self.note(&source, format!("{text:?} skipped: {err}"));
                return;
            }
        };
        if !self.wanted.contains(&parsed.transport) {
            // Expected, not worth a note: the operator serves more than this device speaks.
            if !self.out.unwanted.contains(&parsed.transport) {
                self.out.unwanted.push(parsed.transport);
            }
            return;
        }
        if self.seen.insert(parsed.dedup_key()) {
            self.out.candidates.push(Candidate {
                uri: text,
                transport: parsed.transport,
                source,
            });
        }
    }

    fn note(&mut self, source: &Source, what: String) {
        let owner = match source {
            Source::Uri { owner, .. }
            | Source::Srv { owner, .. }
            | Source::Txt { owner, .. }
            | Source::Address { owner, .. } => owner,
        };
        self.out
            .notes
            .push(format!("{} at {owner}: {what}", source.kind()));
    }
}

/// The host part of a URI for a DNS name: ASCII, without the trailing dot.
fn uri_host(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_owned()
}

/// The value of a TXT string whose key is `uri` (RFC 6763 §6.4: keys compare without case;
/// the key ends at the first `=`).
fn txt_uri(text: &[u8]) -> Option<&[u8]> {
    let eq = text.iter().position(|&b| b == b'=')?;
    let (key, value) = (&text[..eq], &text[eq + 1..]);
    key.eq_ignore_ascii_case(b"uri").then_some(value)
}

/// An RRset in a fixed order before the weighted draw. Resolvers rotate RRsets from one
/// answer to the next; sorting first makes the order depend on the random source alone, so
/// a seed reproduces it. (The draw is proportional whatever the arrangement, see
/// [`super::order`], so this changes no probability.)
fn canonical<T: Clone + Ord>(records: &[T]) -> Vec<T> {
    let mut records = records.to_vec();
    records.sort();
    records
}

/// Orders the answers into the candidates a device tries, first to last.
///
/// `wanted` is the device's transports in order of preference; `rng` drives the RFC 2782
/// weighted draw (pass a seeded one for a reproducible order).
pub fn assemble<R: Rng + ?Sized>(
    answers: &Answers,
    wanted: &[Transport],
    rng: &mut R,
) -> Assembled {
    let mut collector = Collector {
        wanted,
        seen: HashSet::new(),
        out: Assembled::default(),
    };
    let by_preference = || {
        wanted
            .iter()
            .filter_map(|t| answers.transports.iter().find(|a| a.transport == *t))
    };

    for set in by_preference() {
        for record in rfc2782_order(canonical(&set.uri), rng) {
            let source = Source::Uri {
                owner: set.owner.clone(),
                priority: record.priority,
                weight: record.weight,
                ttl: record.ttl,
            };
            if let Ok(parsed) = CoapUri::parse(&record.target) {
                if parsed.transport != set.transport {
                    let msg = format!(
                        "{:?} has scheme {} under the {} owner; used as {}",
                        record.target, parsed.transport, set.transport, parsed.transport
                    );
                    collector.note(&source, msg);
                }
            }
            collector.offer(record.target, source);
        }
    }

    for set in by_preference() {
        for record in rfc2782_order(canonical(&set.srv), rng) {
            let source = Source::Srv {
                owner: set.owner.clone(),
                priority: record.priority,
                weight: record.weight,
                port: record.port,
                target: record.target.clone(),
                ttl: record.ttl,
            };
            if record.target.is_root() {
                // RFC 2782: target "." means the service is decidedly not available here.
                collector.note(&source, "target \".\": service not offered".into());
                continue;
            }
            let uri = format!(
                "{}://{}:{}",
                set.transport.scheme(),
                uri_host(&record.target),
                record.port
            );
            collector.offer(uri, source);
        }
    }

    let txt_uris: Vec<(Option<Transport>, String, u32)> = answers
        .txt
        .iter()
        .filter_map(|txt| {
            let value = txt_uri(&txt.text)?;
            let text = String::from_utf8_lossy(value).into_owned();
            let transport = CoapUri::parse(&text).ok().map(|u| u.transport);
            Some((transport, text, txt.ttl))
        })
        .collect();
    let txt_source = |ttl| Source::Txt {
        owner: answers.bsf_name.clone(),
        ttl,
    };
    for want in wanted {
        for (_, text, ttl) in txt_uris.iter().filter(|(t, _, _)| t == &Some(*want)) {
            collector.offer(text.clone(), txt_source(*ttl));
        }
    }
    for (_, text, ttl) in txt_uris.iter().filter(|(t, _, _)| match t {
        Some(t) => !wanted.contains(t),
        None => true,
    }) {
        // Offered only to have the reason it is unusable noted.
        collector.offer(text.clone(), txt_source(*ttl));
    }

    if let (Some(first), Some(ttl)) = (
        wanted.first(),
        answers.addresses.iter().map(|a| a.ttl).min(),
    ) {
        let uri = format!(
            "{}://{}:{}",
            first.scheme(),
            uri_host(&answers.bsf_name),
            first.default_port()
        );
        let source = Source::Address {
            owner: answers.bsf_name.clone(),
            addresses: answers.addresses.iter().map(|a| a.address).collect(),
            ttl,
        };
        collector.offer(uri, source);
    }

    // TXT order varies between answers; keep messages stable.
    collector.out.unwanted.sort();
    collector.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn bsf() -> Name {
        name("bsf.mnc460.mcc313.lwm2m.org.")
    }

    fn uri(priority: u16, weight: u16, target: &str) -> UriAnswer {
        UriAnswer {
            priority,
            weight,
            target: target.into(),
            ttl: 300,
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvAnswer {
        SrvAnswer {
            priority,
            weight,
            port,
            target: name(target),
            ttl: 300,
        }
    }

    fn txt(text: &str) -> TxtAnswer {
        TxtAnswer {
            text: text.as_bytes().to_vec(),
            ttl: 60,
        }
    }

    fn set(transport: Transport, uris: Vec<UriAnswer>, srvs: Vec<SrvAnswer>) -> TransportAnswers {
        TransportAnswers {
            transport,
            owner: transport.owner(&bsf()).unwrap(),
            uri: uris,
            srv: srvs,
        }
    }

    fn empty() -> Answers {
        Answers {
            bsf_name: bsf(),
            transports: vec![],
            txt: vec![],
            addresses: vec![],
        }
    }

    fn run(answers: &Answers, wanted: &[Transport]) -> Assembled {
        assemble(answers, wanted, &mut StdRng::seed_from_u64(1))
    }

    fn uris(assembled: &Assembled) -> Vec<(&str, &str)> {
        assembled
            .candidates
            .iter()
            .map(|c| (c.uri.as_str(), c.source.kind()))
            .collect()
    }

    #[test]
    fn transports_sort_in_the_default_order() {
        let mut all = vec![
            Transport::CoapTcp,
            Transport::Coap,
            Transport::CoapsTcp,
            Transport::Coaps,
        ];
        all.sort();
        assert_eq!(all, Transport::DEFAULT_ORDER);
    }

    #[test]
    fn transport_owners_and_schemes() {
        let owners: Vec<String> = Transport::DEFAULT_ORDER
            .iter()
            .map(|t| t.owner(&bsf()).unwrap().to_ascii())
            .collect();
        assert_eq!(
            owners,
            [
                "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
                "_coaps._tcp.bsf.mnc460.mcc313.lwm2m.org.",
                "_coap._udp.bsf.mnc460.mcc313.lwm2m.org.",
                "_coap._tcp.bsf.mnc460.mcc313.lwm2m.org.",
            ]
        );
        assert_eq!("COAPS+TCP".parse::<Transport>(), Ok(Transport::CoapsTcp));
        assert!("http".parse::<Transport>().is_err());
    }

    #[test]
    fn tiers_come_in_order_uri_srv_txt_address() {
        let mut answers = empty();
        answers.transports = vec![set(
            Transport::Coaps,
            vec![uri(10, 1, "coaps://uri.example:5684/bs")],
            vec![srv(10, 1, 5684, "srv.example.")],
        )];
        answers.txt = vec![txt("uri=coaps://txt.example:5684"), txt("other=1")];
        answers.addresses = vec![
            AddressAnswer {
                address: "192.0.2.10".parse().unwrap(),
                ttl: 30,
            },
            AddressAnswer {
                address: "2001:db8::10".parse().unwrap(),
                ttl: 20,
            },
        ];
        let out = run(&answers, &Transport::DEFAULT_ORDER);
        assert_eq!(
            uris(&out),
            [
                ("coaps://uri.example:5684/bs", "URI"),
                ("coaps://srv.example:5684", "SRV"),
                ("coaps://txt.example:5684", "TXT"),
                ("coaps://bsf.mnc460.mcc313.lwm2m.org:5684", "A/AAAA"),
            ]
        );
        assert_eq!(out.candidates[3].source.ttl(), 20);
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    #[test]
    fn duplicates_keep_the_first_and_strongest_source() {
        let mut answers = empty();
        answers.transports = vec![set(
            Transport::Coaps,
            vec![uri(10, 1, "coaps://bs.example")],
            vec![
                srv(10, 1, 5684, "BS.example."),
                srv(20, 1, 5684, "bsf.mnc460.mcc313.lwm2m.org."),
            ],
        )];
        answers.txt = vec![txt("URI=coaps://bs.example:5684/")];
        answers.addresses = vec![AddressAnswer {
            address: "192.0.2.10".parse().unwrap(),
            ttl: 30,
        }];
        let out = run(&answers, &Transport::DEFAULT_ORDER);
        assert_eq!(
            uris(&out),
            [
                ("coaps://bs.example", "URI"),
                ("coaps://bsf.mnc460.mcc313.lwm2m.org:5684", "SRV"),
            ]
        );
    }

    #[test]
    fn transports_follow_the_device_preference_within_a_tier() {
        let mut answers = empty();
        answers.transports = vec![
            set(
                Transport::Coap,
                vec![uri(1, 1, "coap://plain.example")],
                vec![],
            ),
            set(
                Transport::Coaps,
                vec![uri(50, 1, "coaps://secure.example")],
                vec![],
            ),
            set(
                Transport::CoapTcp,
                vec![],
                vec![srv(1, 1, 5683, "tcp.example.")],
            ),
        ];
        let default = run(&answers, &Transport::DEFAULT_ORDER);
        assert_eq!(
            uris(&default),
            [
                ("coaps://secure.example", "URI"),
                ("coap://plain.example", "URI"),
                ("coap+tcp://tcp.example:5683", "SRV"),
            ]
        );
        let custom = run(&answers, &[Transport::CoapTcp, Transport::Coap]);
        assert_eq!(
            uris(&custom),
            [
                ("coap://plain.example", "URI"),
                ("coap+tcp://tcp.example:5683", "SRV")
            ]
        );
    }

    #[test]
    fn uri_records_follow_rfc2782_within_a_transport() {
        let mut answers = empty();
        answers.transports = vec![set(
            Transport::Coaps,
            vec![
                uri(20, 1, "coaps://backup.example"),
                uri(10, 0, "coaps://zero.example"),
                uri(10, 65535, "coaps://main.example"),
            ],
            vec![],
        )];
        let mut rng = StdRng::seed_from_u64(5);
        let mut zero_first = 0;
        for _ in 0..1000 {
            let out = assemble(&answers, &Transport::DEFAULT_ORDER, &mut rng);
            let got: Vec<&str> = out.candidates.iter().map(|c| c.uri.as_str()).collect();
            assert_eq!(got.len(), 3);
            assert_eq!(got[2], "coaps://backup.example");
            if got[0] == "coaps://zero.example" {
                zero_first += 1;
            }
        }
        assert!(zero_first < 5, "weight 0 first {zero_first} times in 1000");
    }

    #[test]
    fn a_seed_fixes_the_order_whatever_order_the_resolver_answered_in() {
        let records = vec![
            uri(10, 1, "coaps://a.example"),
            uri(10, 3, "coaps://b.example"),
            uri(10, 0, "coaps://c.example"),
            uri(10, 2, "coaps://d.example"),
        ];
        let order_for = |records: Vec<UriAnswer>, seed: u64| {
            let mut answers = empty();
            answers.transports = vec![set(Transport::Coaps, records, vec![])];
            let out = assemble(
                &answers,
                &[Transport::Coaps],
                &mut StdRng::seed_from_u64(seed),
            );
            out.candidates
                .into_iter()
                .map(|c| c.uri)
                .collect::<Vec<_>>()
        };
        let mut rotated = records.clone();
        for seed in 0..50 {
            rotated.rotate_left(1);
            assert_eq!(
                order_for(records.clone(), seed),
                order_for(rotated.clone(), seed)
            );
        }
    }

    #[test]
    fn unusable_records_are_skipped_with_a_note() {
        let mut answers = empty();
        answers.transports = vec![set(
            Transport::Coaps,
            vec![
                uri(1, 1, "https://web.example"),
                uri(2, 1, "coap://wrong-owner.example"),
                uri(3, 1, "coaps://ok.example"),
            ],
            vec![srv(1, 1, 5684, ".")],
        )];
        answers.txt = vec![
            txt("uri=ftp://x"),
            txt("uri"),
            txt("url=coaps://no.example"),
        ];
        let out = run(&answers, &[Transport::Coaps]);
        assert_eq!(uris(&out), [("coaps://ok.example", "URI")]);
        let notes = out.notes.join("\n");
        assert!(notes.contains("https://web.example"), "{notes}");
        assert!(
            notes.contains("scheme coap under the coaps owner"),
            "{notes}"
        );
        assert!(notes.contains("service not offered"), "{notes}");
        assert!(notes.contains("ftp://x"), "{notes}");
        assert_eq!(out.notes.len(), 4, "{notes}");
        assert_eq!(out.unwanted, [Transport::Coap]);

        // With coap wanted too, the misplaced URI is used (and its odd owner noted).
        let out = run(&answers, &[Transport::Coaps, Transport::Coap]);
        assert_eq!(
            uris(&out),
            [
                ("coap://wrong-owner.example", "URI"),
                ("coaps://ok.example", "URI")
            ]
        );
    }

    #[test]
    fn txt_keeps_answer_order_grouped_by_preference() {
        let mut answers = empty();
        answers.txt = vec![
            txt("uri=coap://b.example"),
            txt("uri=coaps://z.example"),
            txt("uri=coap://a.example"),
            txt("uri=coaps://y.example"),
        ];
        let out = run(&answers, &Transport::DEFAULT_ORDER);
        assert_eq!(
            uris(&out),
            [
                ("coaps://z.example", "TXT"),
                ("coaps://y.example", "TXT"),
                ("coap://b.example", "TXT"),
                ("coap://a.example", "TXT"),
            ]
        );
    }

    #[test]
    fn address_fallback_uses_the_most_preferred_transport() {
        let mut answers = empty();
        answers.addresses = vec![AddressAnswer {
            address: "2001:db8::1".parse().unwrap(),
            ttl: 9,
        }];
        let out = run(&answers, &Transport::DEFAULT_ORDER);
        assert_eq!(
            uris(&out),
            [("coaps://bsf.mnc460.mcc313.lwm2m.org:5684", "A/AAAA")]
        );
        let out = run(&answers, &[Transport::Coap]);
        assert_eq!(
            uris(&out),
            [("coap://bsf.mnc460.mcc313.lwm2m.org:5683", "A/AAAA")]
        );
        assert!(run(&empty(), &Transport::DEFAULT_ORDER)
            .candidates
            .is_empty());
    }
}
