//! A compact, read-only table from lower-case wire names to their prebuilt answers.
//!
//! Every node of a zone part lives in one byte arena: its key, a small index of its answers and
//! the answer bytes themselves, back to back. The hash table is an open-addressing array of
//! (hash tag, 32-bit arena offset) slots. A look-up therefore touches one slot and one
//! contiguous run of bytes (no chain of pointers to separately allocated keys, vectors and
//! boxes): two cache misses at most, and the UDP path prefetches both for a whole batch of
//! packets before answering any, so the misses overlap instead of adding up. Memory is little
//! more than the answer bytes.
//!
//! Node layout at its offset:
//! `key_len u8 | key | count u8 | has_any_tcp u8 | entries | blobs`, where each entry is
//! `qtype u16 | full_len u16 | trimmed_len u16` (little endian; `trimmed_len` 0 means "no
//! variant without additional records"), the ANY-over-TCP entry last with qtype 0, and the
//! blobs are each entry's full answer followed by its trimmed variant.

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

/// One table slot: the upper half of the name's hash (to skip most key comparisons) and the
/// node's arena offset; `EMPTY` marks a free slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    tag: u32,
    offset: u32,
}

const EMPTY: u32 = u32::MAX;

/// The table. Filled with `insert`, then `finish`ed; read-only after that.
#[derive(Default)]
pub struct NameTable {
    slots: Box<[Slot]>,
    arena: Vec<u8>,
    hasher: ahash::RandomState,
    /// (hash, offset) of inserted names until `finish` lays out the slots.
    pending: Vec<(u64, u32)>,
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

impl NameTable {
    fn key_at(arena: &[u8], offset: u32) -> &[u8] {
        let offset = offset as usize;
        let len = arena.get(offset).copied().unwrap_or(0) as usize;
        arena.get(offset + 1..offset + 1 + len).unwrap_or_default()
    }

    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn home(&self, hash: u64) -> usize {
        (hash as usize) & (self.slots.len().wrapping_sub(1))
    }

    /// The arena offset of `key`, probing from its home slot.
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = (hash >> 32) as u32;
        let mut index = self.home(hash);
        for _ in 0..self.slots.len() {
            let slot = self.slots[index];
            if slot.offset == EMPTY {
                return None;
            }
            if slot.tag == tag && Self::key_at(&self.arena, slot.offset) == key {
                return Some(slot.offset as usize);
            }
            index = (index + 1) & mask;
        }
        None
    }

    /// First step of a batched look-up: start loading the home slot of `hash`.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(hash)) {
            prefetch((slot as *const Slot).cast());
        }
    }

    /// Second step: with the slot at hand, start loading the node's first bytes.
    #[inline]
    pub fn prefetch_node(&self, hash: u64) {
        let tag = (hash >> 32) as u32;
        if let Some(slot) = self.slots.get(self.home(hash)) {
            if slot.tag == tag && slot.offset != EMPTY {
                let start = slot.offset as usize;
                if let Some(bytes) = self.arena.get(start..) {
                    prefetch(bytes.as_ptr());
                    prefetch(bytes.as_ptr().wrapping_add(64));
                    prefetch(bytes.as_ptr().wrapping_add(128));
                }
            }
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<NodeAnswers<'_>> {
        self.get_hashed(self.hash(key), key)
    }

    /// `get` with the key's hash already computed (by `hash`).
    pub fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<NodeAnswers<'_>> {
        let offset = self.find(hash, key)?;
        let header = offset + 1 + key.len();
        let count = *self.arena.get(header)? as usize;
        let has_any_tcp = *self.arena.get(header + 1)? != 0;
        let entry_count = count + has_any_tcp as usize;
        let entries_start = header + 2;
        let blobs_start = entries_start + entry_count * ENTRY;
        Some(NodeAnswers {
            entries: self.arena.get(entries_start..blobs_start)?,
            blobs: self.arena.get(blobs_start..)?,
            count,
            has_any_tcp,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a name (not yet findable: `finish` lays out the table). Keys are wire names (at
    /// most 255 octets); answers at most 65,535 octets.
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
        let hash = self.hasher.hash_one(key);
        self.pending.push((hash, offset));
    }

    /// Lays out the slots (at most half full, so probes stay short) and trims spare capacity.
    pub fn finish(mut self) -> Self {
        let size = (self.pending.len() * 2).next_power_of_two().max(8);
        let mut slots = vec![
            Slot {
                tag: 0,
                offset: EMPTY
            };
            size
        ]
        .into_boxed_slice();
        let mask = size - 1;
        for &(hash, offset) in &self.pending {
            let mut index = (hash as usize) & mask;
            while slots[index].offset != EMPTY {
                index = (index + 1) & mask;
            }
            slots[index] = Slot {
                tag: (hash >> 32) as u32,
                offset,
            };
        }
        self.len = self.pending.len();
        self.pending = Vec::new();
        self.slots = slots;
        self.arena.shrink_to_fit();
        self
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
    fn stores_and_finds_every_answer() {
        let mut table = NameTable::default();
        let a = prebuilt(1, 40, None);
        let srv = prebuilt(2, 90, Some(50));
        let any = prebuilt(3, 200, None);
        table.insert(
            b"\x03bsf\x00",
            &[(1, a.clone()), (33, srv.clone())],
            Some(&any),
        );
        table.insert(b"\x03ent\x00", &[], None);
        for i in 0..1000u32 {
            let key = format!("\x04n{i:03}\x00");
            table.insert(
                key.as_bytes(),
                &[(16, prebuilt(9, 10 + (i % 7) as usize, None))],
                None,
            );
        }
        let table = table.finish();
        assert_eq!(table.len(), 1002);
        let node = table.get(b"\x03bsf\x00").unwrap();
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
        let ent = table.get(b"\x03ent\x00").unwrap();
        assert!(ent.is_empty() && ent.first().is_none() && ent.any_tcp().is_none());
        assert!(table.get(b"\x03nop\x00").is_none());
        let n = table.get(b"\x04n999\x00").unwrap();
        assert_eq!(n.answer(16).unwrap().full.len(), 10 + 999 % 7);
    }
}
