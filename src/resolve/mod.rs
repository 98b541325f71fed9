//! The device's side: find the bootstrap server the way a device with no settings does.
//!
//! Given the bsf name (built from the IMSI by [`crate::plmn`]), ask a recursive resolver for
//! URI and SRV records of each transport the device speaks, TXT `uri=` strings and the
//! name's A/AAAA records, and turn the answers into the URIs to try, in order. This is what
//! `bsf-dns resolve` runs, and the reference for device makers (the README's "Device lookup" section).
//!
//! Layout:
//! - [`query`]: the network side — which questions, through which resolver, and how each
//!   reply sorts into records, NXDOMAIN, NODATA or failure.
//! - [`uri`]: URI record rdata (type 256, RFC 7553) and the CoAP URI check and dedup key.
//! - [`order`]: RFC 2782 priority and weighted order, with an injectable random source.
//! - [`candidate`]: the rules from answers to the ordered, deduplicated candidate list.
//! - [`output`]: human and JSON rendering, and the exit codes.
//! - [`cli`]: the `resolve` subcommand ([`ResolveCommand`], [`cli::main`]) and [`run`].
//!
//! Outcomes are explicit: candidates found (exit 0; failed queries are listed as warnings),
//! nothing found because the operator is unknown or publishes nothing (exit 2), or nothing
//! found because the resolver failed, so nobody knows (exit 3).

pub mod candidate;
pub mod cli;
pub mod order;
pub mod output;
pub mod query;
pub mod uri;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::{Name, RData, RecordType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use candidate::{Candidate, Source, Transport};
pub use cli::{run, ResolveArgs, ResolveCommand};
pub use query::{FailureKind, QueryFailure};

use candidate::{AddressAnswer, Answers, SrvAnswer, TransportAnswers, TxtAnswer, UriAnswer};
use query::{Outcome, Question, ResolverSettings, URI_TYPE};

/// What to ask, whom, and how to break ties.
#[derive(Clone, Debug)]
pub struct ResolveOptions {
    /// The resolver to ask; `None` uses the system's (`/etc/resolv.conf`).
    pub server: Option<SocketAddr>,
    /// Transports the device speaks, most preferred first. Empty means all, in
    /// [`Transport::DEFAULT_ORDER`].
    pub transports: Vec<Transport>,
    /// Time to wait for one reply.
    pub timeout: Duration,
    /// Tries per query.
    pub attempts: usize,
    /// Seed for the RFC 2782 weighted draw; `None` draws from the OS.
    pub seed: Option<u64>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        Self {
            server: None,
            transports: Transport::DEFAULT_ORDER.to_vec(),
            timeout: Duration::from_secs(5),
            attempts: 2,
            seed: None,
        }
    }
}

impl ResolveOptions {
    /// The transports to ask for, most preferred first, without repeats.
    pub fn wanted(&self) -> Vec<Transport> {
        let mut wanted: Vec<Transport> = Vec::new();
        let given = if self.transports.is_empty() {
            &Transport::DEFAULT_ORDER[..]
        } else {
            &self.transports[..]
        };
        for transport in given {
            if !wanted.contains(transport) {
                wanted.push(*transport);
            }
        }
        wanted
    }

    /// The resolver in words, for messages.
    pub fn server_label(&self) -> String {
        match self.server {
            Some(addr) => addr.to_string(),
            None => "the system resolver (/etc/resolv.conf)".to_owned(),
        }
    }
}

/// A successful lookup: at least one candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The bsf name asked for (fully qualified).
    pub bsf_name: Name,
    /// Candidates in the order a device must try them.
    pub candidates: Vec<Candidate>,
    /// Queries that got no answer; the list may be incomplete because of them.
    pub failures: Vec<QueryFailure>,
    /// Records that were answered but could not be used, and why.
    pub notes: Vec<String>,
}

/// Why no candidate came out.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The bsf name does not exist: the operator is unknown to this DNS.
    #[error("{name} does not exist (NXDOMAIN): no bootstrap server is published for this operator{}", cache_hint(*negative_ttl))]
    UnknownOperator {
        /// The bsf name (boxed: `Name` is large and errors are rare).
        name: Box<Name>,
        /// How long the answer may be cached (RFC 2308), if the reply said.
        negative_ttl: Option<u32>,
    },
    /// The bsf name exists but has nothing usable for the wanted transports.
    #[error(
        "{name} exists but publishes no bootstrap server for {transports}{}",
        elsewhere_hint(elsewhere)
    )]
    NothingPublished {
        /// The bsf name (boxed: `Name` is large and errors are rare).
        name: Box<Name>,
        /// The wanted transports, comma-separated.
        transports: String,
        /// Transports the operator does publish (seen in TXT `uri=`), comma-separated.
        elsewhere: String,
        /// Records that were answered but could not be used.
        notes: Vec<String>,
    },
    /// No answer from the resolver, so it is unknown whether a bootstrap server exists.
    #[error(
        "the resolver failed, so it is unknown whether {name} has a bootstrap server: {}",
        summary(failures)
    )]
    ResolverFailed {
        /// The bsf name (boxed: `Name` is large and errors are rare).
        name: Box<Name>,
        /// Every query that failed.
        failures: Vec<QueryFailure>,
    },
    /// The resolver could not be set up (unreadable `/etc/resolv.conf`, bad name).
    #[error("cannot set up the resolver: {0}")]
    Setup(String),
}

impl ResolveError {
    /// 2 when nothing exists to find, 3 when the resolver failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::UnknownOperator { .. } | Self::NothingPublished { .. } => output::EXIT_NOT_FOUND,
            Self::ResolverFailed { .. } | Self::Setup(_) => output::EXIT_RESOLVER_FAILED,
        }
    }
}

fn elsewhere_hint(elsewhere: &str) -> String {
    if elsewhere.is_empty() {
        String::new()
    } else {
        format!(" (it does for {elsewhere})")
    }
}

fn cache_hint(negative_ttl: Option<u32>) -> String {
    negative_ttl
        .map(|ttl| format!(" (negative answer, cacheable for {ttl} s)"))
        .unwrap_or_default()
}

/// "REFUSED (11 queries)", or per kind in order of first appearance.
fn summary(failures: &[QueryFailure]) -> String {
    let mut kinds: Vec<(&FailureKind, usize)> = Vec::new();
    for failure in failures {
        match kinds.iter_mut().find(|(kind, _)| **kind == failure.kind) {
            Some((_, count)) => *count += 1,
            None => kinds.push((&failure.kind, 1)),
        }
    }
    let parts: Vec<String> = kinds
        .iter()
        .map(|(kind, count)| {
            let plural = if *count == 1 { "query" } else { "queries" };
            format!("{kind} ({count} {plural})")
        })
        .collect();
    parts.join(", ")
}

/// Looks up the bootstrap servers for `bsf_name` the way a device does.
///
/// `bsf_name` is the name derived from the IMSI (`bsf.mnc<MNC>.mcc<MCC>.<apex>`); it is
/// taken as fully qualified whether or not it ends in a dot, so no search domain is tried.
pub async fn resolve(bsf_name: &Name, opts: &ResolveOptions) -> Result<Resolution, ResolveError> {
    let plan = Plan::new(bsf_name, opts.wanted())?;
    let settings = ResolverSettings {
        server: opts.server,
        timeout: opts.timeout,
        attempts: opts.attempts,
    };
    let resolver =
        query::build_resolver(&settings).map_err(|err| ResolveError::Setup(err.to_string()))?;
    let outcomes = query::ask_all(&resolver, &plan.questions).await;
    let mut rng = match opts.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_entropy(),
    };
    plan.conclude(outcomes, &mut rng)
}

/// The questions for one bsf name, and how to read their outcomes.
struct Plan {
    bsf_name: Name,
    wanted: Vec<Transport>,
    /// `_coaps._udp.<bsf name>` etc., one per wanted transport, same order.
    owners: Vec<Name>,
    /// URI and SRV per owner, then TXT, A and AAAA at the bsf name.
    questions: Vec<Question>,
}

impl Plan {
    fn new(bsf_name: &Name, wanted: Vec<Transport>) -> Result<Self, ResolveError> {
        let mut bsf_name = bsf_name.clone();
        bsf_name.set_fqdn(true);
        let mut questions = Vec::with_capacity(wanted.len() * 2 + 3);
        let mut owners = Vec::with_capacity(wanted.len());
        for transport in &wanted {
            let owner = transport
                .owner(&bsf_name)
                .map_err(|err| ResolveError::Setup(format!("{bsf_name} is too long: {err}")))?;
            for record_type in [URI_TYPE, RecordType::SRV] {
                questions.push(Question {
                    name: owner.clone(),
                    record_type,
                });
            }
            owners.push(owner);
        }
        for record_type in [RecordType::TXT, RecordType::A, RecordType::AAAA] {
            questions.push(Question {
                name: bsf_name.clone(),
                record_type,
            });
        }
        Ok(Self {
            bsf_name,
            wanted,
            owners,
            questions,
        })
    }

    /// Decides the outcome: candidates if there are any; otherwise NXDOMAIN of the bsf name
    /// (definite, RFC 8020: nothing below it exists either), then resolver failures (unknown),
    /// then "exists but publishes nothing".
    fn conclude<R: Rng + ?Sized>(
        self,
        outcomes: Vec<Outcome>,
        rng: &mut R,
    ) -> Result<Resolution, ResolveError> {
        let gathered = gather(
            &self.bsf_name,
            &self.wanted,
            &self.owners,
            &self.questions,
            outcomes,
        );
        let assembled = candidate::assemble(&gathered.answers, &self.wanted, rng);
        let mut notes = gathered.notes;
        notes.extend(assembled.notes);
        let name = Box::new(self.bsf_name.clone());

        if !assembled.candidates.is_empty() {
            return Ok(Resolution {
                bsf_name: self.bsf_name,
                candidates: assembled.candidates,
                failures: gathered.failures,
                notes,
            });
        }
        if let Some(negative_ttl) = gathered.bsf_nxdomain {
            return Err(ResolveError::UnknownOperator { name, negative_ttl });
        }
        if !gathered.failures.is_empty() {
            return Err(ResolveError::ResolverFailed {
                name,
                failures: gathered.failures,
            });
        }
        let schemes = |list: &[Transport]| {
            let names: Vec<&str> = list.iter().map(|t| t.scheme()).collect();
            names.join(", ")
        };
        Err(ResolveError::NothingPublished {
            name,
            transports: schemes(&self.wanted),
            elsewhere: schemes(&assembled.unwanted),
            notes,
        })
    }
}

/// The outcomes sorted into answers, failures and remarks.
struct Gathered {
    answers: Answers,
    failures: Vec<QueryFailure>,
    notes: Vec<String>,
    /// `Some` when a question about the bsf name itself came back NXDOMAIN.
    bsf_nxdomain: Option<Option<u32>>,
}

fn gather(
    bsf_name: &Name,
    wanted: &[Transport],
    owners: &[Name],
    questions: &[Question],
    outcomes: Vec<Outcome>,
) -> Gathered {
    let mut gathered = Gathered {
        answers: Answers {
            bsf_name: bsf_name.clone(),
            transports: wanted
                .iter()
                .zip(owners)
                .map(|(transport, owner)| TransportAnswers {
                    transport: *transport,
                    owner: owner.clone(),
                    uri: Vec::new(),
                    srv: Vec::new(),
                })
                .collect(),
            txt: Vec::new(),
            addresses: Vec::new(),
        },
        failures: Vec::new(),
        notes: Vec::new(),
        bsf_nxdomain: None,
    };

    for (question, outcome) in questions.iter().zip(outcomes) {
        let records = match outcome {
            Outcome::Records(records) => records,
            Outcome::NxDomain { negative_ttl } => {
                if question.name == *bsf_name && gathered.bsf_nxdomain.is_none() {
                    gathered.bsf_nxdomain = Some(negative_ttl);
                }
                continue;
            }
            Outcome::NoData { .. } => continue,
            Outcome::Failed(kind) => {
                gathered.failures.push(QueryFailure {
                    name: question.name.clone(),
                    record_type: question.record_type,
                    kind,
                });
                continue;
            }
        };
        let set = gathered
            .answers
            .transports
            .iter()
            .position(|set| set.owner == question.name);
        for record in records {
            let ttl = record.ttl;
            match (&record.data, set) {
                (RData::SRV(srv), Some(index)) => {
                    gathered.answers.transports[index].srv.push(SrvAnswer {
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: srv.target.clone(),
                        ttl,
                    });
                }
                (RData::Unknown { .. }, Some(index)) => {
                    let rdata = query::unknown_rdata(&record).unwrap_or_default();
                    match uri::parse_uri_rdata(rdata) {
                        Ok(parsed) => gathered.answers.transports[index].uri.push(UriAnswer {
                            priority: parsed.priority,
                            weight: parsed.weight,
                            target: parsed.target,
                            ttl,
                        }),
                        Err(err) => gathered
                            .notes
                            .push(format!("URI at {}: skipped: {err}", record.name)),
                    }
                }
                (RData::TXT(txt), None) => {
                    gathered
                        .answers
                        .txt
                        .extend(txt.txt_data.iter().map(|text| TxtAnswer {
                            text: text.to_vec(),
                            ttl,
                        }));
                }
                (RData::A(a), None) => gathered.answers.addresses.push(AddressAnswer {
                    address: a.0.into(),
                    ttl,
                }),
                (RData::AAAA(aaaa), None) => gathered.answers.addresses.push(AddressAnswer {
                    address: aaaa.0.into(),
                    ttl,
                }),
                _ => {}
            }
        }
    }
    gathered
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, NULL, SRV, TXT};
    use hickory_proto::rr::Record;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    /// A plan for the bsf name of IMSI 313 460 ... and coaps only: questions are
    /// URI, SRV at `_coaps._udp`, then TXT, A, AAAA at the bsf name.
    fn plan() -> Plan {
        Plan::new(&name("bsf.mnc460.mcc313.lwm2m.org"), vec![Transport::Coaps]).unwrap()
    }

    fn record(owner: &str, data: RData) -> Record {
        Record::from_rdata(name(owner), 120, data)
    }

    fn uri_record(priority: u16, weight: u16, target: &str) -> Record {
        let mut rdata = Vec::new();
        rdata.extend_from_slice(&priority.to_be_bytes());
        rdata.extend_from_slice(&weight.to_be_bytes());
        rdata.extend_from_slice(target.as_bytes());
        record(
            "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
            RData::Unknown {
                code: URI_TYPE,
                rdata: NULL::with(rdata),
            },
        )
    }

    const NODATA: Outcome = Outcome::NoData { negative_ttl: None };
    const NXDOMAIN: Outcome = Outcome::NxDomain {
        negative_ttl: Some(300),
    };

    fn conclude(outcomes: Vec<Outcome>) -> Result<Resolution, ResolveError> {
        plan().conclude(outcomes, &mut StdRng::seed_from_u64(1))
    }

    #[test]
    fn plan_asks_uri_and_srv_per_transport_then_txt_a_aaaa() {
        let plan = Plan::new(
            &name("bsf.mnc15.mcc262.example"),
            vec![Transport::CoapTcp, Transport::Coaps],
        )
        .unwrap();
        let asked: Vec<String> = plan
            .questions
            .iter()
            .map(|q| format!("{} {}", q.name, query::type_name(q.record_type)))
            .collect();
        assert_eq!(
            asked,
            [
                "_coap._tcp.bsf.mnc15.mcc262.example. URI",
                "_coap._tcp.bsf.mnc15.mcc262.example. SRV",
                "_coaps._udp.bsf.mnc15.mcc262.example. URI",
                "_coaps._udp.bsf.mnc15.mcc262.example. SRV",
                "bsf.mnc15.mcc262.example. TXT",
                "bsf.mnc15.mcc262.example. A",
                "bsf.mnc15.mcc262.example. AAAA",
            ]
        );
        assert!(plan.questions.iter().all(|q| q.name.is_fqdn()));
    }

    #[test]
    fn records_of_every_kind_become_candidates() {
        let srv = SRV::new(20, 1, 5684, name("bs2.example."));
        let resolution = conclude(vec![
            Outcome::Records(vec![uri_record(10, 1, "coaps://bs1.example:5684")]),
            Outcome::Records(vec![record(
                "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
                RData::SRV(srv),
            )]),
            Outcome::Records(vec![record(
                "bsf.mnc460.mcc313.lwm2m.org.",
                RData::TXT(TXT::new(vec!["uri=coaps://bs3.example".into()])),
            )]),
            Outcome::Records(vec![record(
                "bsf.mnc460.mcc313.lwm2m.org.",
                RData::A(A::new(192, 0, 2, 1)),
            )]),
            NODATA,
        ])
        .unwrap();
        let got: Vec<&str> = resolution
            .candidates
            .iter()
            .map(|c| c.uri.as_str())
            .collect();
        assert_eq!(
            got,
            [
                "coaps://bs1.example:5684",
                "coaps://bs2.example:5684",
                "coaps://bs3.example",
                "coaps://bsf.mnc460.mcc313.lwm2m.org:5684",
            ]
        );
        assert!(resolution.failures.is_empty());
    }

    #[test]
    fn nxdomain_of_the_bsf_name_means_unknown_operator() {
        let err = conclude(vec![NXDOMAIN, NXDOMAIN, NXDOMAIN, NXDOMAIN, NXDOMAIN]).unwrap_err();
        assert!(matches!(
            err,
            ResolveError::UnknownOperator {
                negative_ttl: Some(300),
                ..
            }
        ));
        assert_eq!(err.exit_code(), 2);
        // A failed SRV query does not make a definite NXDOMAIN uncertain.
        let timeout = Outcome::Failed(FailureKind::Timeout);
        let err = conclude(vec![NXDOMAIN, timeout, NXDOMAIN, NXDOMAIN, NXDOMAIN]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
    }

    #[test]
    fn nxdomain_below_the_bsf_name_only_means_no_such_transport() {
        let err = conclude(vec![NXDOMAIN, NXDOMAIN, NODATA, NODATA, NODATA]).unwrap_err();
        assert!(
            matches!(err, ResolveError::NothingPublished { .. }),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn nothing_for_the_wanted_transports_says_what_there_is() {
        let txt = TXT::new(vec![
            "uri=coap://bs.example".into(),
            "uri=coap+tcp://bs.example".into(),
        ]);
        let err = conclude(vec![
            NODATA,
            NODATA,
            Outcome::Records(vec![record(
                "bsf.mnc460.mcc313.lwm2m.org.",
                RData::TXT(txt),
            )]),
            NODATA,
            NODATA,
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bsf.mnc460.mcc313.lwm2m.org. exists but publishes no bootstrap server for coaps \
             (it does for coap, coap+tcp)"
        );
    }

    #[test]
    fn failures_without_answers_mean_the_resolver_failed() {
        let servfail = || Outcome::Failed(FailureKind::ServFail);
        let err = conclude(vec![servfail(), servfail(), NODATA, servfail(), NODATA]).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        let text = err.to_string();
        assert!(text.contains("SERVFAIL (3 queries)"), "{text}");
    }

    #[test]
    fn partial_failures_still_give_candidates_and_are_reported() {
        let resolution = conclude(vec![
            Outcome::Failed(FailureKind::Timeout),
            NODATA,
            NODATA,
            Outcome::Records(vec![record(
                "bsf.mnc460.mcc313.lwm2m.org.",
                RData::A(A::new(192, 0, 2, 1)),
            )]),
            NODATA,
        ])
        .unwrap();
        assert_eq!(resolution.candidates.len(), 1);
        assert_eq!(resolution.failures.len(), 1);
        assert_eq!(resolution.failures[0].record_type, URI_TYPE);
    }

    #[test]
    fn malformed_uri_rdata_is_noted_not_fatal() {
        let mut bad = uri_record(1, 1, "x");
        bad.data = RData::Unknown {
            code: URI_TYPE,
            rdata: NULL::with(vec![0, 1, 0]),
        };
        let err = conclude(vec![
            Outcome::Records(vec![bad]),
            NODATA,
            NODATA,
            NODATA,
            NODATA,
        ])
        .unwrap_err();
        match err {
            ResolveError::NothingPublished { notes, .. } => {
                assert!(notes[0].contains("shorter than 4"), "{notes:?}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn options_deduplicate_transports_and_default_to_all() {
        let opts = ResolveOptions {
            transports: vec![Transport::Coap, Transport::Coaps, Transport::Coap],
            ..ResolveOptions::default()
        };
        assert_eq!(opts.wanted(), [Transport::Coap, Transport::Coaps]);
        let empty = ResolveOptions {
            transports: vec![],
            ..ResolveOptions::default()
        };
        assert_eq!(empty.wanted(), Transport::DEFAULT_ORDER);
    }
}
