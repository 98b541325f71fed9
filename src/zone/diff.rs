//! What changed between two versions of the zone: the records deleted and added, for
//! incremental zone transfers (IXFR, RFC 1995).
//!
//! The zone is compared part by part. Parts built from the same inputs hold the same records
//! (`Part::same_inputs`), and a reload shares unchanged parts between versions, so those are
//! skipped without being enumerated: a one-template change costs one country's records,
//! whatever the size of the zone. Changed parts are enumerated (rebuilt from their templates
//! when their records were released) and compared record by record in wire form, TTL included,
//! so that a TTL change is a deletion and an addition, as a secondary must see it. The SOA is
//! left out: an IXFR response carries the two SOAs around the lists.

use std::collections::HashSet;
use std::sync::Arc;

use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::{Node, Part, Zone};

/// The records to delete from the older version and to add to it to get the newer one, each
/// list in the zone's transfer order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ZoneDiff {
    pub deleted: Vec<Record>,
    pub added: Vec<Record>,
}

impl ZoneDiff {
    pub fn len(&self) -> usize {
        self.deleted.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The difference from `old` to `new` (apart from the SOA).
pub fn diff(old: &Zone, new: &Zone) -> ZoneDiff {
    diff_within(old, new, usize::MAX).unwrap_or_default()
}

/// The difference from `old` to `new` (apart from the SOA) if it has fewer than `limit`
/// records; `None` as soon as it is seen to have more (an incremental transfer that large is
/// no smaller than the zone: the comparison stops there instead of going through every
/// changed country).
pub fn diff_within(old: &Zone, new: &Zone, limit: usize) -> Option<ZoneDiff> {
    let mut result = ZoneDiff::default();
    let apex_records = |zone: &Zone| -> Vec<Record> {
        let mut nodes: Vec<&Node> = zone.apex_nodes.iter().map(|(_, n)| n).collect();
        // Any order will do for the apex's few names, as long as it is the same every time.
        nodes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        nodes
            .into_iter()
            .flat_map(|n| n.rrsets.iter())
            .filter(|set| set.rtype != RecordType::SOA)
            .flat_map(|set| set.records.iter().cloned())
            .collect()
    };
    compare(apex_records(old), apex_records(new), &mut result);
    for (before, after) in changed_parts(old, new) {
        if result.len() >= limit {
            return None;
        }
        compare(part_records(before), part_records(after), &mut result);
    }
    (result.len() < limit).then_some(result)
}

/// The parts, by country, that one version has and the other lacks or has built from other
/// inputs (parts built from the same inputs hold the same records).
fn changed_parts<'z>(
    old: &'z Zone,
    new: &'z Zone,
) -> impl Iterator<Item = (Option<&'z Arc<Part>>, Option<&'z Arc<Part>>)> {
    let mccs: std::collections::BTreeSet<_> = old.parts.keys().chain(new.parts.keys()).collect();
    mccs.into_iter()
        .map(|mcc| (old.parts.get(mcc), new.parts.get(mcc)))
        .filter(|(before, after)| match (before, after) {
            (Some(a), Some(b)) => !(Arc::ptr_eq(a, b) || a.same_inputs(b)),
            _ => true,
        })
}

fn part_records(part: Option<&Arc<Part>>) -> Vec<Record> {
    part.map_or_else(Vec::new, |part| part.records_in_order())
}

/// Adds to `result` what `before` has and `after` lacks, and the reverse, keeping each list's
/// order. Records are compared in wire form, each encoded once.
fn compare(before: Vec<Record>, after: Vec<Record>, result: &mut ZoneDiff) {
    let keyed = |records: Vec<Record>| -> Vec<(Vec<u8>, Record)> {
        records
            .into_iter()
            .map(|r| (r.to_bytes().unwrap_or_default(), r))
            .collect()
    };
    let (before, after) = (keyed(before), keyed(after));
    let before_keys: HashSet<&[u8]> = before.iter().map(|(k, _)| k.as_slice()).collect();
    let after_keys: HashSet<&[u8]> = after.iter().map(|(k, _)| k.as_slice()).collect();
    let only = |records: &[(Vec<u8>, Record)], other: &HashSet<&[u8]>| -> Vec<Record> {
        records
            .iter()
            .filter(|(k, _)| !other.contains(k.as_slice()))
            .map(|(_, r)| r.clone())
            .collect()
    };
    result.deleted.extend(only(&before, &after_keys));
    result.added.extend(only(&after, &before_keys));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(files: &[(&str, &str)], previous: Option<&Zone>) -> Zone {
        crate::zone::zone_of_texts(files, 7, previous)
    }

    const A: &str = "mcc = \"313\"\nmnc = [\"460\"]\naddresses = [\"192.0.2.1\"]\n[[bootstrap]]\nuri = \"coaps://a.example:5684\"\n";
    const B: &str = "mcc = \"262\"\nmnc = [\"01\"]\naddresses = [\"192.0.2.2\"]\n[[bootstrap]]\nuri = \"coaps://b.example:5684\"\n";

    /// The records of a zone but its SOA, in wire form, sorted: what applying a diff must give.
    fn wire_sorted(zone: &Zone) -> Vec<Vec<u8>> {
        let mut records: Vec<Vec<u8>> = without_soa(zone)
            .iter()
            .map(|r| r.to_bytes().unwrap())
            .collect();
        records.sort();
        records
    }

    /// Applies a diff to a record list the way a secondary does.
    fn apply(records: &[Record], diff: &ZoneDiff) -> Vec<Vec<u8>> {
        let deleted: HashSet<Vec<u8>> =
            diff.deleted.iter().map(|r| r.to_bytes().unwrap()).collect();
        let mut out: Vec<Vec<u8>> = records
            .iter()
            .map(|r| r.to_bytes().unwrap())
            .filter(|k| !deleted.contains(k))
            .collect();
        out.extend(diff.added.iter().map(|r| r.to_bytes().unwrap()));
        out.sort();
        out
    }

    fn without_soa(zone: &Zone) -> Vec<Record> {
        zone.records()
            .filter(|r| r.record_type() != RecordType::SOA)
            .collect()
    }

    #[test]
    fn a_changed_added_and_removed_network_and_nothing_else() {
        let old = zone(&[("a.toml", A), ("b.toml", B)], None);
        let same = zone(&[("a.toml", A), ("b.toml", B)], Some(&old));
        assert!(diff(&old, &same).is_empty());

        // One address changed: its A record goes, the new one comes, nothing else moves.
        let changed = A.replace("192.0.2.1", "192.0.2.9");
        let new = zone(&[("a.toml", &changed), ("b.toml", B)], Some(&old));
        let d = diff(&old, &new);
        assert_eq!((d.deleted.len(), d.added.len()), (1, 1), "{d:?}");
        assert_eq!(d.deleted[0].data.to_string(), "192.0.2.1");
        assert_eq!(d.added[0].data.to_string(), "192.0.2.9");
        assert_eq!(apply(&without_soa(&old), &d), wire_sorted(&new));

        // A TTL change is a deletion and an addition of every record it touches.
        let ttl = format!("ttl = 60\n{A}");
        let new = zone(&[("a.toml", &ttl), ("b.toml", B)], Some(&old));
        let d = diff(&old, &new);
        assert!(
            !d.added.is_empty() && d.added.len() == d.deleted.len(),
            "{d:?}"
        );
        assert!(d.added.iter().all(|r| r.ttl == 60));

        // A network removed (its country with it) and one added.
        let c = B.replace("262", "208");
        let new = zone(&[("a.toml", A), ("c.toml", &c)], Some(&old));
        let d = diff(&old, &new);
        assert!(
            d.deleted
                .iter()
                .all(|r| r.name.to_ascii().contains("mcc262")),
            "{d:?}"
        );
        assert!(
            d.added.iter().all(|r| r.name.to_ascii().contains("mcc208")),
            "{d:?}"
        );
        assert_eq!(apply(&without_soa(&old), &d), wire_sorted(&new));

        // Within a limit: the whole difference below it, nothing at or above it.
        let both = [
            ("a.toml", A.replace("192.0.2.1", "192.0.2.7")),
            ("c.toml", c.clone()),
        ];
        let new = zone(
            &[(both[0].0, &both[0].1), (both[1].0, &both[1].1)],
            Some(&old),
        );
        let whole = diff(&old, &new);
        assert!(whole.len() > 2, "{whole:?}");
        assert_eq!(
            diff_within(&old, &new, whole.len() + 1),
            Some(whole.clone())
        );
        assert_eq!(diff_within(&old, &new, whole.len()), None);
        assert_eq!(diff_within(&old, &new, 1), None);
    }
}
