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

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

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
}
