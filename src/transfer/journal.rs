//! Earlier versions of the zone, kept so that a secondary a few changes behind gets only what
//! changed (IXFR, RFC 1995) instead of the whole zone again.
//!
//! A version is the `Zone` a reload replaced. It costs little to keep: it shares every part
//! that did not change with the versions after it, and its parts hold their templates, not
//! their records (those are rebuilt when a difference is asked for). What an old version keeps
//! alive on its own is the templates of the parts that changed after it; the journal bounds the
//! sum of those, counted in networks, to the size of the zone now served (at least
//! [`MIN_NETWORKS_KEPT`]), and keeps at most [`MAX_VERSIONS`] versions. Whatever falls out,
//! a secondary can still take: it gets the whole zone, as before.
//!
//! Versions live as long as the process: after a restart, the first transfer of each
//! secondary is a whole one.
//!
//! The journal also remembers the last difference it was asked for: every secondary told of
//! a change asks for the same one, and a change to every country takes seconds to compare
//! (with 100,000 operators). The first request computes it, the others wait for it and share
//! it; a newer version makes it stale, and it is dropped then (or, if it is being computed
//! right then, replaced by the next one computed).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::zone::diff::ZoneDiff;
use crate::zone::Zone;

/// The most versions kept.
pub const MAX_VERSIONS: usize = 64;
/// The networks of changed parts kept in any case, however small the zone.
pub const MIN_NETWORKS_KEPT: usize = 10_000;

/// One kept version and what it alone keeps alive.
struct Version {
    zone: Arc<Zone>,
    /// Networks in the parts of this version that the next version does not share.
    own_networks: usize,
}

/// The versions before the one served, oldest first.
pub struct Journal {
    versions: Mutex<VecDeque<Version>>,
    /// Networks of changed parts kept however small the zone ([`MIN_NETWORKS_KEPT`]).
    floor: usize,
    /// The last difference computed. An async lock: held while a difference is computed, so
    /// that requests for it wait instead of computing it again.
    last_difference: tokio::sync::Mutex<Option<Difference>>,
}

/// A difference between two versions, by their serials; `changes` is `None` where the
/// difference is no smaller than the newer zone (the zone itself is then sent).
#[derive(Clone)]
pub struct Difference {
    pub from: u32,
    pub to: u32,
    pub changes: Option<Arc<ZoneDiff>>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new()
    }
}

impl Journal {
    pub fn new() -> Journal {
        Journal::with_floor(MIN_NETWORKS_KEPT)
    }

    /// A journal that keeps at least `floor` networks' worth of changed parts.
    pub fn with_floor(floor: usize) -> Journal {
        Journal {
            versions: Mutex::new(VecDeque::new()),
            floor,
            last_difference: tokio::sync::Mutex::new(None),
        }
    }

    /// Keeps `replaced`, the version that `current` has just replaced.
    pub fn keep(&self, replaced: Arc<Zone>, current: &Zone) {
        let own_networks = replaced
            .parts
            .iter()
            .filter(|(mcc, part)| {
                current
                    .parts
                    .get(mcc)
                    .is_none_or(|now| !Arc::ptr_eq(part, now))
            })
            .map(|(_, part)| part.operators)
            .sum();
        let budget = current.operators.max(self.floor);
        // A difference to the version now replaced will not be asked for again.
        if let Ok(mut last) = self.last_difference.try_lock() {
            last.take_if(|d| d.to != current.serial);
        }
        let Ok(mut versions) = self.versions.lock() else {
            return;
        };
        versions.push_back(Version {
            zone: replaced,
            own_networks,
        });
        let mut total: usize = versions.iter().map(|v| v.own_networks).sum();
        while versions.len() > MAX_VERSIONS || (total > budget && !versions.is_empty()) {
            if let Some(oldest) = versions.pop_front() {
                total -= oldest.own_networks;
            }
        }
    }

    /// The kept version with this serial, if any.
    pub fn find(&self, serial: u32) -> Option<Arc<Zone>> {
        let versions = self.versions.lock().ok()?;
        versions
            .iter()
            .rev()
            .find(|v| v.zone.serial == serial)
            .map(|v| v.zone.clone())
    }

    /// The difference from `from` to `to`: the one remembered if it is that one, else what
    /// `compute` makes of it (remembered in its place unless it failed, `None`).
    pub async fn difference(
        &self,
        from: u32,
        to: u32,
        compute: impl std::future::Future<Output = Option<Option<Arc<ZoneDiff>>>>,
    ) -> Option<Difference> {
        let mut last = self.last_difference.lock().await;
        if let Some(known) = last.as_ref().filter(|d| d.from == from && d.to == to) {
            return Some(known.clone());
        }
        let changes = compute.await?;
        let difference = Difference { from, to, changes };
        *last = Some(difference.clone());
        Some(difference)
    }

    /// The serial of the oldest version kept.
    pub fn oldest_serial(&self) -> Option<u32> {
        let versions = self.versions.lock().ok()?;
        versions.front().map(|v| v.zone.serial)
    }

    /// How many versions are kept.
    pub fn len(&self) -> usize {
        self.versions.lock().map_or(0, |v| v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zone of `networks` networks in one country (one part), all at `address`.
    fn zone(networks: usize, address: u8, serial: u32, previous: Option<&Zone>) -> Zone {
        let texts: Vec<(String, String)> = (0..networks)
            .map(|i| {
                (
                    format!("t{i}.toml"),
                    format!(
                        "mcc = \"262\"\nmnc = [\"{i:03}\"]\naddresses = [\"192.0.2.{address}\"]\n\
                         [[bootstrap]]\nuri = \"coaps://bs.example.net:5684\"\n"
                    ),
                )
            })
            .collect();
        crate::zone::zone_of_texts(&texts, serial, previous)
    }

    /// A journal with the given floor after versions 1 to 5 of a 40-network zone whose one
    /// part changes every time.
    fn after_four_changes(floor: usize) -> Journal {
        let journal = Journal::with_floor(floor);
        let mut current = Arc::new(zone(40, 1, 1, None));
        for serial in 2..=5 {
            let next = Arc::new(zone(40, serial as u8, serial, Some(&current)));
            journal.keep(current, &next);
            current = next;
        }
        journal
    }

    #[test]
    fn versions_are_found_by_serial_and_the_oldest_go_first() {
        let journal = Journal::new();
        let mut current = Arc::new(zone(3, 1, 100, None));
        for serial in 101..101 + MAX_VERSIONS as u32 + 5 {
            let next = Arc::new(zone(3, (serial % 200) as u8 + 1, serial, Some(&current)));
            journal.keep(current, &next);
            current = next;
        }
        assert_eq!(journal.len(), MAX_VERSIONS);
        assert!(journal.find(100).is_none(), "the oldest fell out");
        let last_kept = 100 + MAX_VERSIONS as u32 + 4;
        assert_eq!(journal.find(last_kept).map(|z| z.serial), Some(last_kept));
        assert!(
            journal.find(last_kept + 1).is_none(),
            "the served version is not kept"
        );
    }

    #[test]
    fn old_templates_kept_are_bounded_by_the_zone() {
        // Versions whose one part changed entirely keep all 40 networks each; with a floor of
        // 10 the zone's 40 networks are the budget: the newest version alone fits.
        let journal = after_four_changes(10);
        assert_eq!(journal.len(), 1);
        assert!(journal.find(4).is_some());
        // With a floor of 100, two such versions fit.
        let journal = after_four_changes(100);
        assert_eq!(journal.len(), 2);
        assert!(journal.find(3).is_some() && journal.find(4).is_some());
    }

    #[tokio::test]
    async fn a_difference_is_computed_once_for_every_secondary_that_asks() {
        let journal = Journal::new();
        let computed = std::sync::atomic::AtomicUsize::new(0);
        let compute = |changes: Option<Arc<ZoneDiff>>| {
            let computed = &computed;
            async move {
                computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(changes)
            }
        };
        let count = || computed.load(std::sync::atomic::Ordering::Relaxed);
        let one = Arc::new(ZoneDiff::default());
        let first = journal
            .difference(1, 2, compute(Some(one.clone())))
            .await
            .unwrap();
        assert_eq!(count(), 1);
        // Another secondary, same versions: remembered, shared.
        let second = journal.difference(1, 2, compute(None)).await.unwrap();
        assert_eq!(count(), 1);
        assert!(Arc::ptr_eq(second.changes.as_ref().unwrap(), &one));
        assert!(Arc::ptr_eq(first.changes.as_ref().unwrap(), &one));
        // Another pair is computed (and remembered in its place), "send the zone" included.
        let other = journal.difference(0, 2, compute(None)).await.unwrap();
        assert_eq!((count(), other.changes.is_none()), (2, true));
        assert!(journal
            .difference(0, 2, compute(None))
            .await
            .unwrap()
            .changes
            .is_none());
        assert_eq!(count(), 2);
        // A computation that failed is not remembered.
        assert!(journal.difference(5, 6, async { None }).await.is_none());
        journal.difference(0, 2, compute(None)).await.unwrap();
        assert_eq!(count(), 2, "the failure did not replace what was known");

        // A newer version makes the remembered difference stale: dropped.
        let two = Arc::new(zone(3, 1, 2, None));
        let three = zone(3, 2, 3, Some(&two));
        journal.keep(two, &three);
        journal.difference(0, 2, compute(None)).await.unwrap();
        assert_eq!(count(), 3);
    }
}
