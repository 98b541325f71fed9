//! Settings + templates → the records of the zone (DESIGN.md §3).
//!
//! Per network and per MNC spelling: A/AAAA and one TXT `uri=…` per bootstrap entry at the bsf
//! name; SRV and URI at `_<service>._<proto>.bsf…` for each transport the template enables;
//! empty non-terminals for every name between an owner and the apex. At the apex: SOA, NS and
//! the glue of in-zone name servers.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, NS, NULL, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record};

use super::{
    mcc_of_wire, wire_key, wire_labels, DefaultTemplate, Nodes, Part, RRset, Zone, URI_TYPE,
};
use crate::config::ZoneSettings;
use crate::plmn::{Mcc, Plmn};
use crate::template::{Coverage, Host, Operator, Template, TemplateSet};

/// A combination of settings and templates that cannot form a zone (each file was valid alone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("name server {0} collides with an operator name; choose a name outside mcc*.{1}")]
    NsCollision(String, String),
    #[error("{0}: a generated name is invalid: {1}")]
    BadName(String, String),
}

/// Builds the zone. `serial` is the SOA serial to publish. Parts of `previous` whose inputs
/// are unchanged are reused as they are (shared, not copied).
pub fn build(
    settings: &ZoneSettings,
    templates: &TemplateSet,
    serial: u32,
    previous: Option<&Zone>,
) -> Result<Zone, BuildError> {
    let apex_key_len = wire_key(&settings.apex).len();
    for ns in &settings.ns {
        if mcc_of_wire(&wire_key(&ns.name), apex_key_len).is_some() {
            return Err(BuildError::NsCollision(
                ns.name.to_string(),
                settings.apex.to_string(),
            ));
        }
    }
    let mut apex_nodes = NodeMap::new(settings.apex.clone());
    add_apex(&mut apex_nodes, settings, serial);

    let mut groups: BTreeMap<Mcc, Vec<Arc<Template>>> = BTreeMap::new();
    for template in &templates.templates {
        if let Coverage::Networks(plmns) = &template.coverage {
            // Validation keeps one MCC per file, so the first network names the group.
            if let Some(first) = plmns.first() {
                groups
                    .entry(first.mcc)
                    .or_default()
                    .push(Arc::clone(template));
            }
        }
    }
    // Parts with unchanged inputs are reused; the others are built each on its own, over the
    // cores when there are several. Reuse cannot fail, so the first error in MCC order is the
    // one a sequential pass would report.
    let mut parts = BTreeMap::new();
    let mut pending = Vec::new();
    for (mcc, group) in groups {
        let reusable = previous
            .and_then(|z| z.parts.get(&mcc))
            .filter(|p| p.built_from(mcc, &group, &settings.apex, settings.default_ttl));
        match reusable {
            Some(part) => {
                parts.insert(mcc, part.clone());
            }
            None => pending.push((mcc, group)),
        }
    }
    let built = crate::parallel::map(&pending, 2, |(mcc, group)| {
        build_part(*mcc, group.clone(), settings)
    });
    for ((mcc, _), part) in pending.iter().zip(built) {
        parts.insert(*mcc, Arc::new(part?));
    }
    let default = templates
        .default
        .clone()
        .filter(|_| settings.default_template)
        .map(|template| DefaultTemplate {
            template,
            default_ttl: settings.default_ttl,
        });
    Ok(Zone::new(
        settings.clone(),
        serial,
        apex_nodes.finish(),
        parts,
        default,
    ))
}

/// Builds the names of one MCC from its templates.
fn build_part(
    mcc: Mcc,
    templates: Vec<Arc<Template>>,
    settings: &ZoneSettings,
) -> Result<Part, BuildError> {
    let built = part_records(mcc, &templates, &settings.apex, settings.default_ttl)?;
    let record_count = built
        .nodes
        .iter()
        .flat_map(|(_, n)| n.rrsets.iter())
        .map(|s| s.records.len())
        .sum();
    Ok(Part {
        mcc,
        templates,
        apex: settings.apex.clone(),
        default_ttl: settings.default_ttl,
        names: built.nodes.len(),
        record_count,
        records: Some(built.nodes),
        operators: built.operators,
        self_contained: built.self_contained,
    })
}

/// Rebuilds a part's records from its templates (they built once, so they build again).
pub(crate) fn part_nodes(part: &Part) -> Nodes {
    part_records(part.mcc, &part.templates, &part.apex, part.default_ttl)
        .map(|b| b.nodes)
        .unwrap_or_default()
}

struct BuiltPart {
    nodes: Nodes,
    operators: usize,
    self_contained: bool,
}

fn part_records(
    mcc: Mcc,
    templates: &[Arc<Template>],
    apex: &Name,
    default_ttl: u32,
) -> Result<BuiltPart, BuildError> {
    let mut nodes = NodeMap::new(apex.clone());
    let listed: HashSet<Plmn> = templates
        .iter()
        .flat_map(|t| match &t.coverage {
            Coverage::Networks(list) => list.clone(),
            Coverage::Default => Vec::new(),
        })
        .collect();
    let mut operators = 0;
    let mut self_contained = true;
    let apex_key_len = wire_key(apex).len();
    for template in templates {
        let Coverage::Networks(plmns) = &template.coverage else {
            continue;
        };
        for &plmn in plmns {
            let Some(operator) = template.instantiate(plmn, default_ttl) else {
                continue;
            };
            operators += 1;
            for spelling in plmn.spellings() {
                // A padded spelling that is a network of its own is answered for that
                // network only.
                if spelling != plmn && listed.contains(&spelling) {
                    continue;
                }
                add_operator(&mut nodes, &operator, spelling)
                    .map_err(|e| BuildError::BadName(template.file.display().to_string(), e))?;
            }
            for (uri, _) in &operator.bootstrap {
                if let Host::Name(target) = &uri.host {
                    if apex.zone_of(target)
                        && mcc_of_wire(&wire_key(target), apex_key_len) != Some(mcc)
                    {
                        self_contained = false;
                    }
                }
            }
        }
    }
    Ok(BuiltPart {
        nodes: nodes.finish(),
        operators,
        self_contained,
    })
}

/// Records the names of one network (spelled as given) for a synthesized answer from the
/// default template. The map holds only that network's subtree and its empty non-terminals.
pub(crate) fn operator_nodes(
    apex: &Name,
    operator: &Operator,
    spelling: Plmn,
) -> Result<Nodes, String> {
    let mut nodes = NodeMap::new(apex.clone());
    add_operator(&mut nodes, operator, spelling)?;
    Ok(nodes.finish())
}

/// Owner names to record sets, keeping each node's record sets in insertion order.
struct NodeMap {
    apex: Name,
    apex_key: Box<[u8]>,
    nodes: Nodes,
}

impl NodeMap {
    fn new(apex: Name) -> Self {
        NodeMap {
            apex_key: wire_key(&apex),
            apex,
            nodes: Nodes::default(),
        }
    }

    /// Creates the node for `owner` and, the first time, every ancestor up to the apex (as
    /// empty non-terminals where nothing else is there).
    fn node(&mut self, owner: &Name) -> &mut super::Node {
        let key = wire_key(owner);
        if self.nodes.get_wire(&key).is_none() {
            self.add_ancestors(owner, &key);
        }
        self.nodes.entry_keyed(key, || owner.to_lowercase()).0
    }

    /// Creates the missing ancestors of `owner` strictly below the apex (the apex itself is
    /// the apex part's), nearest first, up to the first that exists. They are looked up by
    /// the suffixes of the owner's key: a name is built only for a node created.
    fn add_ancestors(&mut self, owner: &Name, key: &[u8]) {
        let starts: Vec<usize> = wire_labels(key).map(|(start, _)| start).collect();
        let apex_at = key.len().checked_sub(self.apex_key.len());
        let Some(apex_at) =
            apex_at.filter(|at| starts.contains(at) && key[*at..] == *self.apex_key)
        else {
            return; // not under the apex
        };
        for (index, &at) in starts.iter().enumerate().skip(1) {
            if at >= apex_at || self.nodes.get_wire(&key[at..]).is_some() {
                break;
            }
            let labels = starts.len() - index;
            self.nodes
                .entry_keyed(key[at..].into(), || owner.trim_to(labels).to_lowercase());
        }
    }

    fn add(&mut self, record: Record) {
        let node = self.node(&record.name);
        let rtype = record.record_type();
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                if !set.records.contains(&record) {
                    set.records.push(record)
                }
            }
            None => node.rrsets.push(RRset {
                rtype,
                records: vec![record],
            }),
        }
    }

    fn finish(self) -> Nodes {
        self.nodes
    }
}

fn record(name: &Name, ttl: u32, data: RData) -> Record {
    let mut r = Record::from_rdata(name.clone(), ttl, data);
    r.dns_class = DNSClass::IN;
    r
}

fn address_record(name: &Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => record(name, ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => record(name, ttl, RData::AAAA(AAAA(v6))),
    }
}

fn add_apex(nodes: &mut NodeMap, settings: &ZoneSettings, serial: u32) {
    let apex = &settings.apex;
    let soa = &settings.soa;
    // SOA timers are i32 on the wire type; the settings check keeps them within 31 bits.
    let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    nodes.add(record(
        apex,
        soa.ttl,
        RData::SOA(SOA::new(
            soa.mname.clone(),
            soa.rname.clone(),
            serial,
            as_i32(soa.refresh),
            as_i32(soa.retry),
            as_i32(soa.expire),
            soa.minimum,
        )),
    ));
    for ns in &settings.ns {
        nodes.add(record(apex, soa.ttl, RData::NS(NS(ns.name.clone()))));
    }
    for ns in &settings.ns {
        if apex.zone_of(&ns.name) {
            // Glue: A records before AAAA, whatever order the settings list them in.
            let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) =
                ns.addresses.iter().partition(|ip| ip.is_ipv4());
            for ip in v4.into_iter().chain(v6) {
                nodes.add(address_record(&ns.name, soa.ttl, ip));
            }
        }
    }
}

fn add_operator(nodes: &mut NodeMap, operator: &Operator, spelling: Plmn) -> Result<(), String> {
    let bsf = spelling
        .bsf_name(&nodes.apex)
        .map_err(|e| e.to_string())?
        .to_lowercase();
    let ttl = operator.ttl;
    // The bsf name carries the template's addresses and the address literals of its URIs (an
    // SRV whose URI host is an address points at the bsf name, which must then resolve to it).
    let mut addresses: Vec<IpAddr> = operator.addresses.clone();
    for (uri, _) in &operator.bootstrap {
        if let Host::Ip(ip) = uri.host {
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
    }
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = addresses.iter().partition(|ip| ip.is_ipv4());
    for ip in v4.into_iter().chain(v6) {
        nodes.add(address_record(&bsf, ttl, ip));
    }
    for (uri, _) in &operator.bootstrap {
        let txt = TXT::new(vec![format!("uri={}", uri.text)]);
        nodes.add(record(&bsf, ttl, RData::TXT(txt)));
    }
    if operator.bootstrap.is_empty() && addresses.is_empty() {
        // Still a name of the zone: the network exists, it has no data.
        nodes.node(&bsf);
    }
    for (uri, entry) in &operator.bootstrap {
        let (service, proto) = uri.scheme.service_labels();
        let owner = Name::from_ascii(format!("{service}.{proto}"))
            .and_then(|n| n.append_domain(&bsf))
            .map_err(|e| e.to_string())?;
        let target = match &uri.host {
            Host::Name(name) => name.clone(),
            Host::Ip(_) => bsf.clone(),
        };
        nodes.add(record(
            &owner,
            ttl,
            RData::SRV(SRV::new(entry.priority, entry.weight, uri.port, target)),
        ));
        nodes.add(record(
            &owner,
            ttl,
            uri_rdata(entry.priority, entry.weight, &uri.text),
        ));
    }
    Ok(())
}

/// RFC 7553 §4.5: priority, weight, then the target URI as the rest of the RDATA.
pub fn uri_rdata(priority: u16, weight: u16, target: &str) -> RData {
    let mut bytes = Vec::with_capacity(4 + target.len());
    bytes.extend_from_slice(&priority.to_be_bytes());
    bytes.extend_from_slice(&weight.to_be_bytes());
    bytes.extend_from_slice(target.as_bytes());
    RData::Unknown {
        code: URI_TYPE,
        rdata: NULL::with(bytes),
    }
}

/// Reads a URI record's RDATA back: (priority, weight, target).
pub fn parse_uri_rdata(bytes: &[u8]) -> Option<(u16, u16, &str)> {
    if bytes.len() < 5 {
        return None;
    }
    let priority = u16::from_be_bytes([bytes[0], bytes[1]]);
    let weight = u16::from_be_bytes([bytes[2], bytes[3]]);
    let target = std::str::from_utf8(&bytes[4..]).ok()?;
    Some((priority, weight, target))
}
