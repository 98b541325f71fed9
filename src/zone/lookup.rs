//! The authoritative answer logic, as a pure function of (zone, name, type, class, transport).
//!
//! Every query ends in one explicit [`Outcome`] (as Knot's modules do): a hit, NODATA or
//! NXDOMAIN with the SOA for negative caching (RFC 2308), or REFUSED for names and classes we
//! are not authoritative for. The precompiled wire answers are produced from this function, so
//! there is one definition of what the server answers.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::{build, Node, Nodes, Zone};
use crate::plmn::{mnc_length_of, parse_plmn_name, MccMncLength, Plmn};

/// The transport a query came over; it matters for ANY (RFC 8482 minimal answers over UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// How a query was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The name has data of the asked type.
    Hit,
    /// The name exists (possibly as an empty non-terminal) without data of that type.
    NoData,
    /// The name does not exist in the zone.
    NxDomain,
    /// Outside the zone, or a class we do not serve.
    Refused,
}

/// An authoritative response's content, before it is put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Answer {
    pub fn rcode(&self) -> ResponseCode {
        match self.outcome {
            Outcome::Hit | Outcome::NoData => ResponseCode::NoError,
            Outcome::NxDomain => ResponseCode::NXDomain,
            Outcome::Refused => ResponseCode::Refused,
        }
    }

    /// AA is set on everything but a refusal.
    pub fn authoritative(&self) -> bool {
        self.outcome != Outcome::Refused
    }

    fn empty(outcome: Outcome) -> Self {
        Answer {
            outcome,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }
}

/// Answers one question from the zone.
pub fn lookup(
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    transport: Transport,
) -> Answer {
    if !matches!(qclass, DNSClass::IN | DNSClass::ANY) || !zone.apex().zone_of(qname) {
        return Answer::empty(Outcome::Refused);
    }
    let owner = qname.to_lowercase();
    if let Some(node) = zone.node(&owner) {
        return answer_at(zone, |n| zone.node(n), node, qtype, transport);
    }
    if let Some(synthesized) = synthesize_default(zone, &owner) {
        if let Some(node) = synthesized.get(&owner) {
            // SRV targets in other networks of the zone: their names, rebuilt for the target's
            // network alone (a compiled part keeps no records).
            let elsewhere: Vec<Nodes> = srv_targets(node)
                .filter(|target| synthesized.get(target).is_none() && zone.node(target).is_none())
                .filter_map(|target| network_nodes(zone, target))
                .collect();
            let resolve = |n: &Name| {
                synthesized
                    .get(n)
                    .or_else(|| zone.node(n))
                    .or_else(|| elsewhere.iter().find_map(|nodes| nodes.get(n)))
            };
            return answer_at(zone, resolve, node, qtype, transport);
        }
    }
    negative(zone, Outcome::NxDomain)
}

fn negative(zone: &Zone, outcome: Outcome) -> Answer {
    let mut answer = Answer::empty(outcome);
    if let Some(soa) = zone.soa() {
        let mut soa = soa.clone();
        soa.ttl = zone.negative_ttl();
        answer.authority.push(soa);
    }
    answer
}

/// The answer at a known node; `nodes` resolves other names (for the additional section).
pub(crate) fn answer_at<'z>(
    zone: &Zone,
    nodes: impl Fn(&Name) -> Option<&'z Node>,
    node: &Node,
    qtype: RecordType,
    transport: Transport,
) -> Answer {
    let sets: Vec<_> = match qtype {
        // RFC 8482 §4.2: over UDP, one RRset is enough; TCP gets them all.
        RecordType::ANY if transport == Transport::Udp => node.rrsets.iter().take(1).collect(),
        RecordType::ANY => node.rrsets.iter().collect(),
        _ => node.rrset(qtype).into_iter().collect(),
    };
    if sets.is_empty() {
        return negative(zone, Outcome::NoData);
    }
    let mut answer = Answer::empty(Outcome::Hit);
    for set in &sets {
        answer.answers.extend(set.records.iter().cloned());
    }
    answer.additional = additional_for(nodes, &answer.answers);
    answer
}

/// A and AAAA of in-zone targets of SRV and NS answers (RFC 2782, RFC 1035 §3.3.11), each
/// target once, A before AAAA.
fn additional_for<'z>(
    nodes: impl Fn(&Name) -> Option<&'z Node>,
    answers: &[Record],
) -> Vec<Record> {
    let mut targets: Vec<&Name> = Vec::new();
    for record in answers {
        let target = match &record.data {
            RData::SRV(srv) => &srv.target,
            RData::NS(ns) => &ns.0,
            _ => continue,
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let mut additional = Vec::new();
    for target in targets {
        if let Some(node) = nodes(target) {
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.rrset(rtype) {
                    additional.extend(set.records.iter().cloned());
                }
            }
        }
    }
    additional
}

/// The SRV targets among a node's records.
fn srv_targets(node: &Node) -> impl Iterator<Item = &Name> {
    node.rrsets
        .iter()
        .flat_map(|set| set.records.iter())
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(&srv.target),
            _ => None,
        })
}

/// The names of the network a name belongs to, built on their own: from the template file that
/// lists the network (as spelled, or as the 2-digit MNC a padded spelling stands for), else
/// from the default template. `None` for names of no network.
fn network_nodes(zone: &Zone, name: &Name) -> Option<Nodes> {
    let spelled = parse_plmn_name(name, zone.apex())?.plmn()?;
    let listed = zone
        .parts
        .get(&spelled.mcc)
        .and_then(|part| Some((part, part.listed_network(spelled)?)));
    let Some((part, network)) = listed else {
        return synthesize_default(zone, name);
    };
    let operator = part
        .template_of(network)?
        .instantiate(network, part.default_ttl)?;
    build::operator_nodes(zone.apex(), &operator, spelled).ok()
}

/// For a name of a network without a file, the records the default template gives it (only
/// when the settings enable the default template). `None` when the name is not such a name.
pub(crate) fn synthesize_default(zone: &Zone, owner: &Name) -> Option<Nodes> {
    let default = zone.default.as_ref()?;
    let parsed = parse_plmn_name(owner, zone.apex())?;
    let Some(spelled) = parsed.plmn() else {
        // `mcc<MCC>.<apex>`: with a default template every country is an empty non-terminal.
        let mut only = Nodes::default();
        only.entry(owner);
        return Some(only);
    };
    // A network with a file is answered from its file alone, never mixed with the default.
    if zone.has_network_name(spelled) {
        return None;
    }
    // `mnc015` under an MCC whose networks all have 2-digit MNCs is the padded spelling of 15.
    let network = match spelled.mnc.unpadded() {
        Some(two) if mnc_length_of(spelled.mcc) == MccMncLength::AlwaysTwo => {
            Plmn::new(spelled.mcc, two)
        }
        _ => spelled,
    };
    let operator = default.template.instantiate(network, default.default_ttl)?;
    build::operator_nodes(zone.apex(), &operator, spelled).ok()
}

#[cfg(test)]
mod tests;
