//! The network side: ask a recursive resolver the questions a device asks, and sort each
//! reply into records, "does not exist", "no data", or "the resolver failed".
//!
//! The queries go through hickory-resolver (the system's `/etc/resolv.conf`, or one server
//! given with `--server`) and run concurrently: per wanted transport URI (type 256) and SRV
//! at `_<service>._<proto>.<bsf name>`, then TXT, A and AAAA at the bsf name. hickory turns
//! negative replies into errors; [`classify`] takes them apart again, because a device must
//! treat NXDOMAIN (an answer) and SERVFAIL or a timeout (no answer) differently.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::{Resolver, TokioResolver};

/// The URI resource record type (RFC 7553); hickory-proto 0.26 has no name for it.
pub const URI_TYPE: RecordType = RecordType::Unknown(256);

/// Which resolver to ask and how patiently.
#[derive(Clone, Debug)]
pub struct ResolverSettings {
    /// A single server (UDP, TCP on truncation); `None` reads `/etc/resolv.conf`.
    pub server: Option<SocketAddr>,
    /// Time to wait for one reply.
    pub timeout: Duration,
    /// Tries per query and server.
    pub attempts: usize,
}

/// How a query failed to get an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No reply within the timeout, after every try.
    Timeout,
    /// The resolver answered SERVFAIL: it could not get an answer itself.
    ServFail,
    /// The resolver answered REFUSED: it will not answer this client or this name.
    Refused,
    /// Another error response code (FORMERR, NOTIMP, ...).
    Rcode(ResponseCode),
    /// The resolver could not be reached (connection refused, network unreachable, ...).
    Network(String),
    /// Anything else the resolver library reported.
    Other(String),
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::ServFail => f.write_str("SERVFAIL"),
            Self::Refused => f.write_str("REFUSED"),
            Self::Rcode(code) => write!(f, "{}", code.to_str()),
            Self::Network(msg) => write!(f, "network error: {msg}"),
            Self::Other(msg) => f.write_str(msg),
        }
    }
}

/// One query that got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryFailure {
    /// The name asked for.
    pub name: Name,
    /// The type asked for.
    pub record_type: RecordType,
    /// What went wrong.
    pub kind: FailureKind,
}

impl fmt::Display for QueryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.name,
            type_name(self.record_type),
            self.kind
        )
    }
}

/// The mnemonic of a record type, `URI` included.
pub fn type_name(record_type: RecordType) -> String {
    if record_type == URI_TYPE {
        "URI".to_owned()
    } else {
        record_type.to_string()
    }
}

/// The outcome of one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The answer's records of the asked type (CNAMEs followed).
    Records(Vec<Record>),
    /// NXDOMAIN: the name does not exist. `negative_ttl` is how long that may be cached.
    NxDomain {
        /// RFC 2308 negative TTL from the SOA, if one came with the reply.
        negative_ttl: Option<u32>,
    },
    /// NOERROR without records of this type.
    NoData {
        /// RFC 2308 negative TTL from the SOA, if one came with the reply.
        negative_ttl: Option<u32>,
    },
    /// No answer at all.
    Failed(FailureKind),
}

/// A question for the resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Fully qualified name.
    pub name: Name,
    /// Type asked for.
    pub record_type: RecordType,
}

/// Builds the resolver: one server from the settings, or the system's configuration.
pub fn build_resolver(settings: &ResolverSettings) -> Result<TokioResolver, NetError> {
    let mut builder = match settings.server {
        Some(addr) => {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut server.connections {
                connection.port = addr.port();
            }
            let config = ResolverConfig::from_name_servers(vec![server]);
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => Resolver::builder_tokio()?,
    };
    let options = builder.options_mut();
    options.timeout = settings.timeout;
    options.attempts = settings.attempts.max(1);
    // A device has no hosts file: what counts is what DNS says.
    options.use_hosts_file = ResolveHosts::Never;
    builder.build()
}

/// Asks all `questions` at once; the outcomes come back in the same order.
pub async fn ask_all(resolver: &TokioResolver, questions: &[Question]) -> Vec<Outcome> {
    join_all(questions.iter().map(|question| ask(resolver, question))).await
}

async fn ask(resolver: &TokioResolver, question: &Question) -> Outcome {
    match resolver
        .lookup(question.name.clone(), question.record_type)
        .await
    {
        Ok(lookup) => {
            let records: Vec<Record> = lookup
                .answers()
                .iter()
                .filter(|record| record.record_type() == question.record_type)
                .cloned()
                .collect();
            if records.is_empty() {
                // Only CNAMEs (or other types) in the answer: nothing of the asked type.
                Outcome::NoData { negative_ttl: None }
            } else {
                Outcome::Records(records)
            }
        }
        Err(err) => classify(&err),
    }
}

/// Sorts a resolver error into a negative answer or a failure.
pub fn classify(err: &NetError) -> Outcome {
    match err {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code,
            negative_ttl,
            ..
        })) => match *response_code {
            ResponseCode::NXDomain => Outcome::NxDomain {
                negative_ttl: *negative_ttl,
            },
            ResponseCode::NoError => Outcome::NoData {
                negative_ttl: *negative_ttl,
            },
            code => Outcome::Failed(rcode_failure(code)),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => Outcome::Failed(rcode_failure(*code)),
        NetError::Timeout => Outcome::Failed(FailureKind::Timeout),
        NetError::Io(io) => Outcome::Failed(FailureKind::Network(io.to_string())),
        NetError::NoConnections => {
            Outcome::Failed(FailureKind::Network("no connections available".into()))
        }
        other => Outcome::Failed(FailureKind::Other(other.to_string())),
    }
}

fn rcode_failure(code: ResponseCode) -> FailureKind {
    match code {
        ResponseCode::ServFail => FailureKind::ServFail,
        ResponseCode::Refused => FailureKind::Refused,
        other => FailureKind::Rcode(other),
    }
}

/// The raw rdata of a URI record, which hickory keeps as unknown data.
pub fn unknown_rdata(record: &Record) -> Option<&[u8]> {
    match &record.data {
        RData::Unknown { rdata, .. } => Some(rdata.anything.as_slice()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use std::io;
    use std::sync::Arc;

    fn no_records(code: ResponseCode, negative_ttl: Option<u32>) -> NetError {
        let query = Query::query(Name::from_ascii("bsf.example.").unwrap(), RecordType::A);
        let mut records = NoRecords::new(query, code);
        records.negative_ttl = negative_ttl;
        NetError::Dns(DnsError::NoRecordsFound(records))
    }

    #[test]
    fn negative_answers_are_answers() {
        assert_eq!(
            classify(&no_records(ResponseCode::NXDomain, Some(60))),
            Outcome::NxDomain {
                negative_ttl: Some(60)
            }
        );
        assert_eq!(
            classify(&no_records(ResponseCode::NoError, None)),
            Outcome::NoData { negative_ttl: None }
        );
    }

    #[test]
    fn failures_are_failures() {
        let cases = [
            (
                NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)),
                FailureKind::ServFail,
            ),
            (
                NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)),
                FailureKind::Refused,
            ),
            (
                NetError::Dns(DnsError::ResponseCode(ResponseCode::FormErr)),
                FailureKind::Rcode(ResponseCode::FormErr),
            ),
            (
                no_records(ResponseCode::ServFail, None),
                FailureKind::ServFail,
            ),
            (NetError::Timeout, FailureKind::Timeout),
        ];
        for (err, kind) in cases {
            assert_eq!(classify(&err), Outcome::Failed(kind), "{err}");
        }
        let refused = NetError::Io(Arc::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert!(matches!(
            classify(&refused),
            Outcome::Failed(FailureKind::Network(_))
        ));
    }

    #[test]
    fn uri_type_is_256() {
        assert_eq!(u16::from(URI_TYPE), 256);
        assert_eq!(type_name(URI_TYPE), "URI");
        assert_eq!(type_name(RecordType::SRV), "SRV");
    }
}
