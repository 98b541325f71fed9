//! What `resolve` prints: one line per candidate for people, one JSON document for machines,
//! and the exit codes that tell "nothing there" from "could not ask".
//!
//! Human output goes to stdout, candidates only, first to try on top, so `head -1` is what a
//! device would dial first; warnings and errors go to stderr. JSON output is a single object
//! on stdout in every case, errors included, with the same exit codes.

use hickory_proto::rr::Name;
use serde_json::{json, Value};

use super::query::type_name;
use super::{Candidate, Resolution, ResolveError, ResolveOptions, Source};

/// At least one candidate.
pub const EXIT_FOUND: u8 = 0;
/// Nothing to find: NXDOMAIN (operator unknown) or no usable records.
pub const EXIT_NOT_FOUND: u8 = 2;
/// The resolver failed (timeout, SERVFAIL, REFUSED, unreachable): nothing is known.
pub const EXIT_RESOLVER_FAILED: u8 = 3;

/// The record behind a candidate, in one line.
pub fn describe(source: &Source) -> String {
    match source {
        Source::Uri {
            owner,
            priority,
            weight,
            ttl,
        } => format!("URI {owner} priority {priority} weight {weight} ttl {ttl}"),
        Source::Srv {
            owner,
            priority,
            weight,
            port,
            target,
            ttl,
        } => format!(
            "SRV {owner} priority {priority} weight {weight} port {port} target {target} ttl {ttl}"
        ),
        Source::Txt { owner, ttl } => format!("TXT {owner} ttl {ttl}"),
        Source::Address {
            owner,
            addresses,
            ttl,
        } => {
            let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            format!("A/AAAA {owner} {} ttl {ttl}", addresses.join(" "))
        }
    }
}

/// One line per candidate, in order: the URI, then where it came from.
pub fn human(resolution: &Resolution) -> String {
    let width = resolution
        .candidates
        .iter()
        .map(|c| c.uri.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for candidate in &resolution.candidates {
        out.push_str(&format!(
            "{:<width$}  {}\n",
            candidate.uri,
            describe(&candidate.source)
        ));
    }
    out
}

/// The stderr lines that go with a success: failed queries and skipped records.
pub fn human_warnings(resolution: &Resolution) -> Vec<String> {
    let mut lines: Vec<String> = resolution
        .failures
        .iter()
        .map(|f| format!("warning: no answer, the list may be incomplete: {f}"))
        .collect();
    lines.extend(resolution.notes.iter().map(|n| format!("note: {n}")));
    lines
}

/// The stderr lines for a failure.
pub fn human_error(err: &ResolveError) -> Vec<String> {
    let mut lines = vec![format!("error: {err}")];
    match err {
        ResolveError::ResolverFailed { failures, .. } => {
            lines.extend(failures.iter().map(|f| format!("  {f}")));
        }
        ResolveError::NothingPublished { notes, .. } => {
            lines.extend(notes.iter().map(|n| format!("note: {n}")));
        }
        ResolveError::UnknownOperator { .. } | ResolveError::Setup(_) => {}
    }
    lines
}

fn candidate_json(candidate: &Candidate) -> Value {
    let mut value = json!({
        "uri": candidate.uri,
        "transport": candidate.transport.scheme(),
        "source": candidate.source.kind(),
        "ttl": candidate.source.ttl(),
    });
    let extra = match &candidate.source {
        Source::Uri {
            owner,
            priority,
            weight,
            ..
        } => json!({ "owner": owner.to_ascii(), "priority": priority, "weight": weight }),
        Source::Srv {
            owner,
            priority,
            weight,
            port,
            target,
            ..
        } => json!({
            "owner": owner.to_ascii(),
            "priority": priority,
            "weight": weight,
            "port": port,
            "target": target.to_ascii(),
        }),
        Source::Txt { owner, .. } => json!({ "owner": owner.to_ascii() }),
        Source::Address {
            owner, addresses, ..
        } => json!({
            "owner": owner.to_ascii(),
            "addresses": addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    };
    if let (Value::Object(map), Value::Object(more)) = (&mut value, extra) {
        map.extend(more);
    }
    value
}

fn envelope(bsf_name: &Name, opts: &ResolveOptions, status: &str, exit_code: u8) -> Value {
    json!({
        "bsf_name": bsf_name.to_ascii(),
        "resolver": opts.server.map(|s| s.to_string()),
        "transports": opts.wanted().iter().map(|t| t.scheme()).collect::<Vec<_>>(),
        "status": status,
        "exit_code": exit_code,
    })
}

fn set(value: &mut Value, key: &str, item: Value) {
    if let Value::Object(map) = value {
        map.insert(key.to_owned(), item);
    }
}

/// The JSON document for a success.
pub fn json_found(resolution: &Resolution, opts: &ResolveOptions) -> Value {
    let mut value = envelope(&resolution.bsf_name, opts, "found", EXIT_FOUND);
    set(
        &mut value,
        "candidates",
        resolution.candidates.iter().map(candidate_json).collect(),
    );
    set(&mut value, "failures", failures_json(&resolution.failures));
    set(&mut value, "notes", json!(resolution.notes));
    value
}

fn failures_json(failures: &[super::QueryFailure]) -> Value {
    failures
        .iter()
        .map(|f| {
            json!({
                "name": f.name.to_ascii(),
                "type": type_name(f.record_type),
                "error": f.kind.to_string(),
            })
        })
        .collect()
}

/// The JSON document for a failure.
pub fn json_error(err: &ResolveError, bsf_name: &Name, opts: &ResolveOptions) -> Value {
    let status = match err {
        ResolveError::UnknownOperator { .. } => "unknown-operator",
        ResolveError::NothingPublished { .. } => "nothing-published",
        ResolveError::ResolverFailed { .. } | ResolveError::Setup(_) => "resolver-failed",
    };
    let mut value = envelope(bsf_name, opts, status, err.exit_code());
    set(&mut value, "message", json!(err.to_string()));
    set(&mut value, "candidates", json!([]));
    let (failures, notes, negative_ttl) = match err {
        ResolveError::ResolverFailed { failures, .. } => (failures_json(failures), json!([]), None),
        ResolveError::NothingPublished { notes, .. } => (json!([]), json!(notes), None),
        ResolveError::UnknownOperator { negative_ttl, .. } => (json!([]), json!([]), *negative_ttl),
        ResolveError::Setup(_) => (json!([]), json!([]), None),
    };
    set(&mut value, "failures", failures);
    set(&mut value, "notes", notes);
    if let Some(ttl) = negative_ttl {
        set(&mut value, "negative_ttl", json!(ttl));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{FailureKind, QueryFailure, Transport};
    use hickory_proto::rr::RecordType;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn resolution() -> Resolution {
        let bsf = name("bsf.mnc460.mcc313.lwm2m.org.");
        Resolution {
            bsf_name: bsf.clone(),
            candidates: vec![
                Candidate {
                    uri: "coaps://bs.example:5684/bs".into(),
                    transport: Transport::Coaps,
                    source: Source::Uri {
                        owner: name("_coaps._udp.bsf.mnc460.mcc313.lwm2m.org."),
                        priority: 10,
                        weight: 1,
                        ttl: 300,
                    },
                },
                Candidate {
                    uri: "coaps://bsf.mnc460.mcc313.lwm2m.org:5684".into(),
                    transport: Transport::Coaps,
                    source: Source::Address {
                        owner: bsf,
                        addresses: vec!["192.0.2.10".parse().unwrap()],
                        ttl: 60,
                    },
                },
            ],
            failures: vec![QueryFailure {
                name: name("_coap._tcp.bsf.mnc460.mcc313.lwm2m.org."),
                record_type: RecordType::SRV,
                kind: FailureKind::Timeout,
            }],
            notes: vec![],
        }
    }

    #[test]
    fn human_output_is_one_aligned_line_per_candidate() {
        let text = human(&resolution());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "coaps://bs.example:5684/bs                URI _coaps._udp.bsf.mnc460.mcc313.lwm2m.org. priority 10 weight 1 ttl 300"
        );
        assert_eq!(
            lines[1],
            "coaps://bsf.mnc460.mcc313.lwm2m.org:5684  A/AAAA bsf.mnc460.mcc313.lwm2m.org. 192.0.2.10 ttl 60"
        );
        let warnings = human_warnings(&resolution());
        assert_eq!(
            warnings,
            ["warning: no answer, the list may be incomplete: _coap._tcp.bsf.mnc460.mcc313.lwm2m.org. SRV: timed out"]
        );
    }

    #[test]
    fn json_output_carries_order_sources_and_failures() {
        let opts = ResolveOptions::default();
        let value = json_found(&resolution(), &opts);
        assert_eq!(value["status"], "found");
        assert_eq!(value["exit_code"], 0);
        assert_eq!(value["resolver"], Value::Null);
        assert_eq!(value["candidates"][0]["uri"], "coaps://bs.example:5684/bs");
        assert_eq!(value["candidates"][0]["source"], "URI");
        assert_eq!(value["candidates"][0]["priority"], 10);
        assert_eq!(value["candidates"][1]["addresses"][0], "192.0.2.10");
        assert_eq!(value["failures"][0]["type"], "SRV");
        assert_eq!(value["failures"][0]["error"], "timed out");
        assert_eq!(value["transports"][1], "coaps+tcp");
    }

    #[test]
    fn json_errors_say_which_kind_of_nothing() {
        let opts = ResolveOptions::default();
        let bsf = name("bsf.mnc999.mcc999.lwm2m.org.");
        let unknown = ResolveError::UnknownOperator {
            name: Box::new(bsf.clone()),
            negative_ttl: Some(300),
        };
        let value = json_error(&unknown, &bsf, &opts);
        assert_eq!(value["status"], "unknown-operator");
        assert_eq!(value["exit_code"], 2);
        assert_eq!(value["negative_ttl"], 300);
        assert!(value["message"].as_str().unwrap().contains("NXDOMAIN"));

        let failed = ResolveError::ResolverFailed {
            name: Box::new(bsf.clone()),
            failures: vec![QueryFailure {
                name: bsf.clone(),
                record_type: RecordType::A,
                kind: FailureKind::ServFail,
            }],
        };
        let value = json_error(&failed, &bsf, &opts);
        assert_eq!(value["status"], "resolver-failed");
        assert_eq!(value["exit_code"], 3);
        assert_eq!(value["failures"][0]["error"], "SERVFAIL");
        assert_eq!(failed.exit_code(), EXIT_RESOLVER_FAILED);
        assert_eq!(unknown.exit_code(), EXIT_NOT_FOUND);
    }
}
