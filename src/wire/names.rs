//! A compact, read-only index from lower-case wire names to their prebuilt answers.
//!
//! Each zone part (one MCC, or the apex) is compiled into one byte arena: every node's key, a
//! small index of its answers and the answer bytes themselves, back to back ([`PartNames`]).
//! A snapshot puts the names of all its parts into one open-addressing table of packed
//! 8-byte slots (hash tag, part, arena offset: [`NameIndex`]). A look-up therefore reads one
//! slot and one contiguous run of bytes (and the small, always-warm array of arena handles):
//! no per-MCC map and no per-part table header in between. That matters most at moderate rates, when a worker wakes
//! for one or two packets and each of these dependent loads into megabytes of answers is a
//! cache miss that nothing overlaps (measured: small fixed structures read on every wake-up
//! cost next to nothing; random reads into large data do). The UDP path prefetches slot then node
//! for a whole batch before answering any, so that under load the misses overlap.
//!
//! Names are hashed with one process-wide keyed hasher, so a part's hashes stay valid in
//! every snapshot that reuses the part, and the index is rebuilt from them on reload without
//! rehashing.
//!
//! Node layout at its offset:
//! `key_len u8 | key | count u8 | has_any_tcp u8 | entries | blobs`, where each entry is
//! `qtype u16 | full_len u16 | trimmed_len u16` (little endian; `trimmed_len` 0 means "no
//! variant without additional records"), the ANY-over-TCP entry last with qtype 0, and the
//! blobs are each entry's full answer followed by its trimmed variant.

use std::sync::{Arc, OnceLock};

/// A prebuilt response and, when it has additional records, the same without them (used when
/// the full one does not fit the client's size limit: RFC 2181 §9 lets additional data go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prebuilt<'a> {
    pub full: &'a [u8],
    pub without_additional: Option<&'a [u8]>,
}

/// The owned form, while building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPrebuilt {
    pub full: Vec<u8>,
    pub without_additional: Option<Vec<u8>>,
}

const ENTRY: usize = 6;

/// The answers of one name.
#[derive(Debug, Clone, Copy)]
pub struct NodeAnswers<'a> {
    entries: &'a [u8],
    blobs: &'a [u8],
    count: usize,
    has_any_tcp: bool,
}

impl<'a> NodeAnswers<'a> {
    #[inline(always)]
    fn entry(&self, index: usize) -> Option<(u16, Prebuilt<'a>)> {
        let mut offset = 0;
        for i in 0..=index {
            let e = self.entries.get(i * ENTRY..i * ENTRY + ENTRY)?;
            let qtype = u16::from_le_bytes([e[0], e[1]]);
            let full = u16::from_le_bytes([e[2], e[3]]) as usize;
            let trimmed = u16::from_le_bytes([e[4], e[5]]) as usize;
            if i == index {
                let full_bytes = self.blobs.get(offset..offset + full)?;
                let trimmed_bytes = match trimmed {
                    0 => None,
                    n => Some(self.blobs.get(offset + full..offset + full + n)?),
                };
                return Some((
                    qtype,
                    Prebuilt {
                        full: full_bytes,
                        without_additional: trimmed_bytes,
                    },
                ));
            }
            offset += full + trimmed;
        }
        None
    }

    /// The answer for a record type the name has.
    #[inline(always)]
    pub fn answer(&self, qtype: u16) -> Option<Prebuilt<'a>> {
        (0..self.count)
            .find(|&i| {
                self.entries
                    .get(i * ENTRY..i * ENTRY + 2)
                    .is_some_and(|t| u16::from_le_bytes([t[0], t[1]]) == qtype)
            })
            .and_then(|i| self.entry(i).map(|(_, p)| p))
    }

    /// The first record set's answer (ANY over UDP: RFC 8482 lets one RRset answer).
    pub fn first(&self) -> Option<Prebuilt<'a>> {
        (self.count > 0)
            .then(|| self.entry(0).map(|(_, p)| p))
            .flatten()
    }

    /// ANY over TCP: every record set.
    pub fn any_tcp(&self) -> Option<Prebuilt<'a>> {
        if self.has_any_tcp {
            self.entry(self.count).map(|(_, p)| p)
        } else {
            self.first()
        }
    }

    /// Whether the name has no data at all (an empty non-terminal).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The keyed hash of names: folded 64×64→128-bit multiplies over 16-byte blocks (the
/// construction of foldhash and wyhash), with four random seeds per process. Query names are
/// chosen by whoever sends packets, so the seeds must be unknown to them; they are fixed for
/// the process's life so that a part's hashes stay valid in every snapshot that reuses it.
/// Small and `#[inline]`: the packet path hashes every question name, and the seeds sit in
/// the index beside the slots rather than behind a call into a general-purpose hasher.
#[derive(Clone, Copy, Debug)]
pub struct NameHasher {
    seeds: [u64; 4],
}

/// The PCG multiplier: odd, with well-mixed bits.
const MULTIPLIER: u64 = 0x5851_f42d_4c95_7f2d;

#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = (x as u128).wrapping_mul(y as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

#[inline(always)]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(chunk) = bytes.get(at..at + 8) {
        word.copy_from_slice(chunk);
    }
    u64::from_le_bytes(word)
}

impl NameHasher {
    /// The process's hasher (random seeds, drawn once).
    pub fn get() -> NameHasher {
        static HASHER: OnceLock<NameHasher> = OnceLock::new();
        *HASHER.get_or_init(|| {
            let random = ahash::RandomState::new();
            NameHasher {
                seeds: std::array::from_fn(|i| random.hash_one(i as u64) | 1),
            }
        })
    }

    #[inline]
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        let [s0, s1, s2, s3] = self.seeds;
        let mut acc = s0 ^ (bytes.len() as u64).wrapping_mul(MULTIPLIER);
        let mut at = 0;
        while bytes.len() - at > 16 {
            acc = folded_multiply(read_u64(bytes, at) ^ s1, read_u64(bytes, at + 8) ^ acc);
            at += 16;
        }
        // The last 1..=16 bytes, zero-padded.
        let mut tail = [0u8; 16];
        let rest = &bytes[at..];
        tail[..rest.len()].copy_from_slice(rest);
        acc = folded_multiply(read_u64(&tail, 0) ^ s2, read_u64(&tail, 8) ^ acc ^ s3);
        folded_multiply(acc, s1 ^ MULTIPLIER)
    }
}

/// The compiled names of one zone part: the arena and each name's (hash, offset).
#[derive(Default)]
pub struct PartNames {
    arena: Arc<[u8]>,
    names: Box<[(u64, u32)]>,
}

/// Collects a part's names and answers into an arena.
#[derive(Default)]
pub struct PartNamesBuilder {
    arena: Vec<u8>,
    names: Vec<(u64, u32)>,
}

impl PartNamesBuilder {
    /// Adds a name. Keys are wire names (at most 255 octets); answers at most 65,535 octets.
    pub fn insert(
        &mut self,
        key: &[u8],
        answers: &[(u16, OwnedPrebuilt)],
        any_tcp: Option<&OwnedPrebuilt>,
    ) {
        let key = &key[..key.len().min(255)];
        let offset = self.arena.len() as u32;
        self.arena.push(key.len() as u8);
        self.arena.extend_from_slice(key);
        self.arena.push(answers.len().min(255) as u8);
        self.arena.push(any_tcp.is_some() as u8);
        let all: Vec<(u16, &OwnedPrebuilt)> = answers
            .iter()
            .take(255)
            .map(|(t, p)| (*t, p))
            .chain(any_tcp.map(|p| (0, p)))
            .collect();
        for (qtype, p) in &all {
            self.arena.extend_from_slice(&qtype.to_le_bytes());
            self.arena
                .extend_from_slice(&(p.full.len() as u16).to_le_bytes());
            let trimmed = p.without_additional.as_ref().map_or(0, Vec::len);
            self.arena
                .extend_from_slice(&(trimmed as u16).to_le_bytes());
        }
        for (_, p) in &all {
            self.arena.extend_from_slice(&p.full);
            if let Some(t) = &p.without_additional {
                self.arena.extend_from_slice(t);
            }
        }
        self.names.push((NameHasher::get().hash(key), offset));
    }

    pub fn finish(self) -> PartNames {
        PartNames {
            arena: self.arena.into(),
            names: self.names.into_boxed_slice(),
        }
    }
}

impl PartNames {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One slot, packed: tag (the hash's top 16 bits, to skip most key comparisons) | part | arena
/// offset. Eight slots share a cache line.
const EMPTY: u64 = u64::MAX;
const NO_PART: u64 = 0xFFFF;

fn pack(hash: u64, part: usize, offset: u32) -> u64 {
    (hash & 0xFFFF_0000_0000_0000) | ((part as u64) << 32) | offset as u64
}

fn tag_of(hash: u64) -> u64 {
    hash >> 48
}

/// The names of every part of a snapshot in one table. Read-only once built.
pub struct NameIndex {
    /// A copy of the process's hasher, kept beside the slots it indexes.
    hasher: NameHasher,
    slots: Box<[u64]>,
    /// Each part's arena, by the part number in the slots.
    arenas: Box<[Arc<[u8]>]>,
    len: usize,
}

/// Asks the CPU to start loading a cache line; never faults, whatever the address.
#[inline(always)]
fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint without architectural effect; SSE is baseline on x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

impl NameIndex {
    /// Lays out the slots for `parts` (at most half full, so probes stay short). Part numbers
    /// are positions in `parts`; more than 65,535 parts cannot happen (one per MCC and the
    /// apex) and any beyond are left out.
    pub fn build(parts: &[&PartNames]) -> NameIndex {
        let parts = &parts[..parts.len().min(NO_PART as usize)];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let size = (len * 2).next_power_of_two().max(8);
        let mut slots = vec![EMPTY; size].into_boxed_slice();
        let mask = size - 1;
        for (number, part) in parts.iter().enumerate() {
            for &(hash, offset) in part.names.iter() {
                let mut index = (hash as usize) & mask;
                while slots[index] != EMPTY {
                    index = (index + 1) & mask;
                }
                slots[index] = pack(hash, number, offset);
            }
        }
        NameIndex {
            hasher: NameHasher::get(),
            slots,
            arenas: parts.iter().map(|p| p.arena.clone()).collect(),
            len,
        }
    }

    #[inline(always)]
    fn key_at(arena: &[u8], offset: usize) -> &[u8] {
        let len = arena.get(offset).copied().unwrap_or(0) as usize;
        arena.get(offset + 1..offset + 1 + len).unwrap_or_default()
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash as usize) & (self.slots.len().wrapping_sub(1))
    }

    /// The arena and offset of `key`, probing from its home slot.
    #[inline(always)]
    fn find(&self, hash: u64, key: &[u8]) -> Option<(&[u8], usize)> {
        let mask = self.slots.len().checked_sub(1)?;
        let tag = tag_of(hash);
        let mut index = self.home(hash);
        for _ in 0..self.slots.len() {
            let slot = self.slots[index];
            if slot == EMPTY {
                return None;
            }
            if tag_of(slot) == tag {
                let arena = self.arena_of(slot)?;
                let offset = slot as u32 as usize;
                if Self::key_at(arena, offset) == key {
                    return Some((arena, offset));
                }
            }
            index = (index + 1) & mask;
        }
        None
    }

    #[inline]
    fn arena_of(&self, slot: u64) -> Option<&[u8]> {
        self.arenas
            .get(((slot >> 32) & NO_PART) as usize)
            .map(|a| &a[..])
    }

    /// First step of a batched look-up: start loading the home slot of `hash`.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(hash)) {
            prefetch((slot as *const u64).cast());
        }
    }

    /// Second step: with the slot at hand, start loading the node's first bytes.
    #[inline]
    pub fn prefetch_node(&self, hash: u64) {
        let Some(&slot) = self.slots.get(self.home(hash)) else {
            return;
        };
        if slot == EMPTY || tag_of(slot) != tag_of(hash) {
            return;
        }
        if let Some(bytes) = self
            .arena_of(slot)
            .and_then(|a| a.get(slot as u32 as usize..))
        {
            prefetch(bytes.as_ptr());
            prefetch(bytes.as_ptr().wrapping_add(64));
            prefetch(bytes.as_ptr().wrapping_add(128));
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<NodeAnswers<'_>> {
        self.get_hashed(self.hash(key), key)
    }

    /// The hash of a lower-case wire name: the process's [`NameHasher`], as the parts' names
    /// were hashed with when compiled.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }

    /// `get` with the key's hash already computed (by [`NameIndex::hash`]).
    #[inline(always)]
    pub fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<NodeAnswers<'_>> {
        let (arena, offset) = self.find(hash, key)?;
        let header = offset + 1 + key.len();
        let count = *arena.get(header)? as usize;
        let has_any_tcp = *arena.get(header + 1)? != 0;
        let entry_count = count + has_any_tcp as usize;
        let entries_start = header + 2;
        let blobs_start = entries_start + entry_count * ENTRY;
        Some(NodeAnswers {
            entries: arena.get(entries_start..blobs_start)?,
            blobs: arena.get(blobs_start..)?,
            count,
            has_any_tcp,
        })
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prebuilt(fill: u8, len: usize, trimmed: Option<usize>) -> OwnedPrebuilt {
        OwnedPrebuilt {
            full: vec![fill; len],
            without_additional: trimmed.map(|n| vec![fill + 100; n]),
        }
    }

    #[test]
    fn stores_and_finds_every_answer_across_parts() {
        let mut first = PartNamesBuilder::default();
        let a = prebuilt(1, 40, None);
        let srv = prebuilt(2, 90, Some(50));
        let any = prebuilt(3, 200, None);
        first.insert(
            b"\x03bsf\x00",
            &[(1, a.clone()), (33, srv.clone())],
            Some(&any),
        );
        first.insert(b"\x03ent\x00", &[], None);
        let mut second = PartNamesBuilder::default();
        for i in 0..1000u32 {
            let key = format!("\x04n{i:03}\x00");
            second.insert(
                key.as_bytes(),
                &[(16, prebuilt(9, 10 + (i % 7) as usize, None))],
                None,
            );
        }
        let (first, second) = (first.finish(), second.finish());
        let index = NameIndex::build(&[&first, &second]);
        assert_eq!(index.len(), 1002);
        let node = index.get(b"\x03bsf\x00").unwrap();
        assert_eq!(node.answer(1).unwrap().full, &a.full[..]);
        let s = node.answer(33).unwrap();
        assert_eq!(
            (s.full, s.without_additional),
            (
                &srv.full[..],
                Some(&srv.without_additional.as_ref().unwrap()[..])
            )
        );
        assert!(node.answer(28).is_none());
        assert_eq!(node.first().unwrap().full, &a.full[..]);
        assert_eq!(node.any_tcp().unwrap().full, &any.full[..]);
        let ent = index.get(b"\x03ent\x00").unwrap();
        assert!(ent.is_empty() && ent.first().is_none() && ent.any_tcp().is_none());
        assert!(index.get(b"\x03nop\x00").is_none());
        for i in [0u32, 1, 500, 999] {
            let n = index.get(format!("\x04n{i:03}\x00").as_bytes()).unwrap();
            assert_eq!(n.answer(16).unwrap().full.len(), 10 + (i % 7) as usize);
        }
        // The same parts give the same answers in a second index (hashes are reused).
        let again = NameIndex::build(&[&second]);
        assert!(again.get(b"\x03bsf\x00").is_none());
        assert_eq!(
            again
                .get(b"\x04n042\x00")
                .unwrap()
                .answer(16)
                .unwrap()
                .full
                .len(),
            10
        );
    }

    #[test]
    fn empty_index_finds_nothing() {
        let index = NameIndex::build(&[]);
        assert!(index.is_empty() && index.get(b"\x00").is_none());
        index.prefetch_slot(index.hash(b"\x00"));
        index.prefetch_node(index.hash(b"\x00"));
    }

    #[test]
    fn name_hashes_spread_over_the_slots() {
        // 16,000 names shaped like the zone's, in a table of 32,768 slots (half full, as
        // built). With ideal random hashing linear probing averages 0.5 extra probes here,
        // and the longest run is ~20-30; a hash that clustered would show far more.
        let names: Vec<Vec<u8>> = (0..16_000u32)
            .map(|i| {
                let (mcc, mnc) = (i / 100, i % 100);
                format!("\x03bsf\x05mnc{mnc:02}\x06mcc{mcc:03}\x05lwm2m\x03org\x00").into_bytes()
            })
            .collect();
        let hasher = NameHasher::get();
        let mask = (1usize << 15) - 1;
        let mut taken = vec![false; mask + 1];
        let (mut longest, mut total) = (0, 0);
        for name in &names {
            let mut index = hasher.hash(name) as usize & mask;
            let mut probes = 0;
            while taken[index] {
                index = (index + 1) & mask;
                probes += 1;
            }
            taken[index] = true;
            longest = longest.max(probes);
            total += probes;
        }
        let mean = total as f64 / names.len() as f64;
        assert!(
            mean < 1.0 && longest < 80,
            "probes: mean {mean}, longest {longest}"
        );
        let mut hashes: Vec<u64> = names.iter().map(|n| hasher.hash(n)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), names.len(), "64-bit hashes collide");
        // Every length hashes, and the zero padding of the last block does not make names that
        // differ only in length (or in trailing zero bytes) collide.
        let mut by_length: Vec<u64> = (0..40).map(|len| hasher.hash(&vec![7u8; len])).collect();
        by_length.extend((1..40).map(|len| hasher.hash(&vec![0u8; len])));
        by_length.sort_unstable();
        by_length.dedup();
        assert_eq!(
            by_length.len(),
            79,
            "the empty name is in the first run only"
        );
        assert_ne!(hasher.hash(b"a"), hasher.hash(b"a\x00"));
    }
}
