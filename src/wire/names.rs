//! A compact, read-only index from lower-case wire names to their prebuilt answers.
//!
//! Each zone part (one MCC, or the apex) is compiled into one run of bytes: every node's key,
//! a small index of its answers and the answer bytes themselves, back to back
//! ([`PartNames`]). A snapshot places the runs of its parts in a few large chunks (in huge
//! pages: [`super::arena`]) and puts their names into one open-addressing table of packed
//! 8-byte slots (hash tag and the node's address: [`NameIndex`]). A look-up therefore reads
//! one slot and one contiguous run of bytes: no per-MCC map, no per-part table header and no
//! array of arena handles in between. That matters most at moderate rates, when a worker
//! wakes for one or two packets and each dependent load into megabytes of answers is a cache
//! miss that nothing overlaps: measured with time stamps around each step at 60k q/s, the
//! slot and the node cost a few hundred cycles each, more than the rest of the answer's work
//! together, while the same steps on a few hot names cost about a hundred. The UDP path
//! starts each packet's look-up (slot, then node) a few packets ahead of its answer, so that
//! under load the misses overlap.
//!
//! Names are hashed with one process-wide keyed hasher, so a part's hashes stay valid in
//! every snapshot that reuses the part, and the index is rebuilt from them on reload without
//! rehashing; a reused part's bytes mostly stay in the chunk where an earlier build put them.
//!
//! Node layout at its offset:
//! `node_len u32 | key_len u8 | key | count u8 | has_any_tcp u8 | entries | blobs`
//! (`node_len` counts the whole node, itself included), where each entry is
//! `qtype u16 | offset u32 | len u16 | trimmed_len u16` (little endian; `offset` counts
//! from the first blob, so an answer is found without summing the ones before it;
//! `trimmed_len` 0 means "no variant without additional records", else the length of the
//! answer's prefix without them), the ANY-over-TCP entry last with qtype 0, and the blobs are
//! the entries' answers in their order, each a response without its question ([`Prebuilt`]).
//! A slot also carries how many cache lines the node spans up to its ANY-over-TCP answer, so
//! that the prefetch asks for those lines and no more: with the questions left out, most
//! nodes fit in two or three lines.

use std::sync::{Arc, OnceLock};

use super::arena::{place, Chunk, PartBytes, CHUNK_LIMIT, KEEP_MIN};
use super::huge::HugeSlice;

/// A prebuilt response without its question section: the 12-byte header, then the records
/// (the responder writes the client's question between them, so no question is stored with
/// each answer of each name). `trimmed`, when the response has additional records: the length of
/// the prefix that leaves them out (used when the whole does not fit the client's size limit:
/// RFC 2181 §9 lets additional data go; ARCOUNT is then rewritten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prebuilt<'a> {
    pub bytes: &'a [u8],
    pub trimmed: Option<usize>,
}

/// The owned form, while building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPrebuilt {
    pub bytes: Vec<u8>,
    pub trimmed: Option<usize>,
}

/// Bytes of one entry: qtype, blob offset, length and trimmed length.
const ENTRY: usize = 10;

/// The answers of one name.
#[derive(Debug, Clone, Copy)]
pub struct NodeAnswers<'a> {
    entries: &'a [u8],
    blobs: &'a [u8],
    count: usize,
    has_any_tcp: bool,
}

impl<'a> NodeAnswers<'a> {
    /// The answer of entry `index`, read from its offset and lengths.
    #[inline(always)]
    fn entry(&self, index: usize) -> Option<Prebuilt<'a>> {
        let e = self.entries.get(index * ENTRY..index * ENTRY + ENTRY)?;
        let offset = u32::from_le_bytes([e[2], e[3], e[4], e[5]]) as usize;
        let len = u16::from_le_bytes([e[6], e[7]]) as usize;
        let trimmed = u16::from_le_bytes([e[8], e[9]]) as usize;
        Some(Prebuilt {
            bytes: self.blobs.get(offset..offset + len)?,
            trimmed: (trimmed != 0).then_some(trimmed),
        })
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
            .and_then(|i| self.entry(i))
    }

    /// The first record set's answer (ANY over UDP: RFC 8482 lets one RRset answer).
    pub fn first(&self) -> Option<Prebuilt<'a>> {
        (self.count > 0).then(|| self.entry(0)).flatten()
    }

    /// ANY over TCP: every record set.
    pub fn any_tcp(&self) -> Option<Prebuilt<'a>> {
        if self.has_any_tcp {
            self.entry(self.count)
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

/// The `N` bytes at `at`, or zeros where they would run past the end.
#[inline(always)]
fn bytes_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

#[inline(always)]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes_at(bytes, at))
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

    /// The hash of `bytes`: one block per 16 bytes, the last block the last 16 bytes (which
    /// may overlap the block before: a reader that lower-cases a name 16 bytes at a time
    /// hashes the blocks it lowers, [`super::query::scan_question_name`]), or for a
    /// shorter name the name zero-padded.
    #[inline]
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        let n = bytes.len();
        let mut acc = self.start(n);
        if n < 16 {
            let (low, high) = tail_words(bytes);
            return self.finish(acc, low, high);
        }
        let mut at = 0;
        while n - at > 16 {
            acc = self.block(acc, read_u64(bytes, at), read_u64(bytes, at + 8));
            at += 16;
        }
        self.finish(acc, read_u64(bytes, n - 16), read_u64(bytes, n - 8))
    }

    /// The hash's state before the first block of a name of `len` bytes.
    #[inline(always)]
    pub fn start(&self, len: usize) -> u64 {
        self.seeds[0] ^ (len as u64).wrapping_mul(MULTIPLIER)
    }

    /// Takes in a block before the last (two little-endian words).
    #[inline(always)]
    pub fn block(&self, acc: u64, low: u64, high: u64) -> u64 {
        folded_multiply(low ^ self.seeds[1], high ^ acc)
    }

    /// Takes in the last block and gives the hash.
    #[inline(always)]
    pub fn finish(&self, acc: u64, low: u64, high: u64) -> u64 {
        let [_, s1, s2, s3] = self.seeds;
        let acc = folded_multiply(low ^ s2, high ^ acc ^ s3);
        folded_multiply(acc, s1 ^ MULTIPLIER)
    }
}

/// `tail` (at most 16 bytes) zero-padded to 16 and read as two little-endian words, from
/// whole-word loads that may overlap (the construction of wyhash's short-input reads).
/// Copying the tail into a zeroed buffer and reading that back, as this did before, costs a
/// call to `memcpy` and then a stalled load: the 8-byte read spans the copy's narrower
/// stores, which the CPU cannot forward (~9% of the UDP loop's samples at saturation, perf).
#[inline(always)]
fn tail_words(tail: &[u8]) -> (u64, u64) {
    let n = tail.len();
    if n > 8 {
        // The high word's bytes are tail[8..n]: the last eight bytes, shifted down past the
        // ones the low word already holds.
        let high = read_u64(tail, n - 8) >> (8 * (16 - n.min(16)));
        (read_u64(tail, 0), high)
    } else if n >= 4 {
        let first = read_u32(tail, 0) as u64;
        let last = read_u32(tail, n - 4) as u64;
        (first | (last << (8 * (n - 4))), 0)
    } else if n > 0 {
        let word = tail[0] as u64
            | (tail[n / 2] as u64) << (8 * (n / 2))
            | (tail[n - 1] as u64) << (8 * (n - 1));
        (word, 0)
    } else {
        (0, 0)
    }
}

#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes_at(bytes, at))
}

/// The compiled names of one zone part: its nodes' bytes and where each name's node is.
#[derive(Default)]
pub struct PartNames {
    bytes: PartBytes,
    names: Arc<[NodeRef]>,
}

/// A name's node in its part: the name's hash, the node's offset, and how many of its bytes
/// queries other than ANY over TCP read (all but the ANY-over-TCP answer, which comes last:
/// it can be as large as all the others together, and is rarely asked for). Recorded when
/// the node is written, so that no index build has to read the node's layout again.
#[derive(Clone, Copy, Debug)]
struct NodeRef {
    hash: u64,
    offset: u32,
    hot_len: u32,
}

/// Collects a part's names and answers into one run of bytes.
#[derive(Default)]
pub struct PartNamesBuilder {
    bytes: Vec<u8>,
    names: Vec<NodeRef>,
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
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; NODE_LEN]);
        self.bytes.push(key.len() as u8);
        self.bytes.extend_from_slice(key);
        self.bytes.push(answers.len().min(255) as u8);
        self.bytes.push(any_tcp.is_some() as u8);
        // Each answer's type, bytes (an answer fits a TCP message: at most 65,535 octets)
        // and trimmed length; the ANY-over-TCP answer last, as type 0.
        let all: Vec<(u16, &[u8], usize)> = answers
            .iter()
            .take(255)
            .map(|(t, p)| (*t, p))
            .chain(any_tcp.map(|p| (0, p)))
            .map(|(qtype, p)| {
                let bytes = &p.bytes[..p.bytes.len().min(u16::MAX as usize)];
                let trimmed = p.trimmed.filter(|&t| t <= bytes.len()).unwrap_or(0);
                (qtype, bytes, trimmed)
            })
            .collect();
        let mut offset = 0u32;
        for &(qtype, bytes, trimmed) in &all {
            self.bytes.extend_from_slice(&qtype.to_le_bytes());
            self.bytes.extend_from_slice(&offset.to_le_bytes());
            self.bytes
                .extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            self.bytes
                .extend_from_slice(&(trimmed as u16).to_le_bytes());
            offset += bytes.len() as u32;
        }
        for &(_, bytes, _) in &all {
            self.bytes.extend_from_slice(bytes);
        }
        let node_len = self.bytes.len() - start;
        let any_tcp_len = match (any_tcp, all.last()) {
            (Some(_), Some(&(_, bytes, _))) => bytes.len(),
            _ => 0,
        };
        let hot_len = node_len - any_tcp_len;
        self.bytes[start..start + NODE_LEN].copy_from_slice(&(node_len as u32).to_le_bytes());
        self.names.push(NodeRef {
            hash: NameHasher::get().hash(key),
            offset: start as u32,
            hot_len: hot_len as u32,
        });
    }

    pub fn finish(self) -> PartNames {
        PartNames {
            bytes: PartBytes::Built(self.bytes.into_boxed_slice()),
            names: self.names.into(),
        }
    }
}

impl PartNames {
    /// The part's nodes, back to back.
    fn bytes(&self) -> &[u8] {
        self.bytes.bytes()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Bytes of a node's length prefix.
const NODE_LEN: usize = 4;

/// One slot, packed: tag (the hash's top 13 bits, to skip most key comparisons) | the number
/// of cache lines the node spans, less one (3 bits, up to [`NODE_PREFETCH_LINES`]) | the
/// node's address. Eight slots share a cache line. User-space addresses fit in the low 48
/// bits on the 64-bit Linux targets (x86_64 and aarch64 hand out higher ones only to a caller
/// who asks for them with a hint to `mmap`); the build checks every address all the same.
const EMPTY: u64 = u64::MAX;
const ADDRESS_MASK: u64 = (1 << 48) - 1;
const TAG_SHIFT: u32 = 51;
const LINES_SHIFT: u32 = 48;

fn tag_of(hash: u64) -> u64 {
    hash >> TAG_SHIFT
}

/// Whether two keys are the same bytes. Keys of 16 bytes or more (nearly every name a device
/// asks for) are compared 16 bytes at a time, the last block ending with the key, in line;
/// the slice comparison called the C library's `bcmp` for every look-up (some 30
/// instructions with the call, callgrind).
#[inline(always)]
fn same_key(stored: &[u8], asked: &[u8]) -> bool {
    if stored.len() != asked.len() {
        return false;
    }
    let (Some(stored_last), Some(asked_last)) =
        (stored.last_chunk::<16>(), asked.last_chunk::<16>())
    else {
        return stored == asked;
    };
    let (stored_blocks, _) = stored.as_chunks::<16>();
    let (asked_blocks, _) = asked.as_chunks::<16>();
    stored_last == asked_last
        && stored_blocks
            .iter()
            .zip(asked_blocks)
            .all(|(stored, asked)| u128::from_ne_bytes(*stored) == u128::from_ne_bytes(*asked))
}

/// The slot of a node at `address` spanning `len` bytes, for a name hashed to `hash`.
fn slot_for(hash: u64, address: u64, len: usize) -> u64 {
    let lines = ((address as usize & 63) + len).div_ceil(64);
    let lines = lines.clamp(1, NODE_PREFETCH_LINES) as u64;
    (tag_of(hash) << TAG_SHIFT) | ((lines - 1) << LINES_SHIFT) | address
}

/// The node starting at `offset` of `bytes`, if it lies whole within them.
fn node_at(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let prefix = bytes.get(offset..offset + NODE_LEN)?;
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    bytes.get(offset..offset.checked_add(len)?)
}

/// The names of every part of a snapshot in one table. Read-only once built.
pub struct NameIndex {
    /// A copy of the process's hasher, kept beside the slots it indexes.
    hasher: NameHasher,
    /// Tag and node address per name. Invariant: every address is the start of a node whose
    /// whole length (`node_len`) lies inside one of `chunks` (checked when built).
    slots: HugeSlice<u64>,
    /// The chunks holding the nodes the slots point into; held only to keep them alive: never
    /// written once shared, and their bytes do not move while a handle lives.
    _chunks: Box<[Arc<Chunk>]>,
    len: usize,
}

/// Most lines of a node the batch prefetch asks for; it asks for the lines the node's key,
/// entries and answers span (its slot says how many), leaving out the ANY-over-TCP answer.
/// In a 3,223-operator set the 27,660 nodes span 140 bytes on average that way, 1 to 5 lines
/// for 93% of them, 8 lines for all but two. (Before answers were stored without their
/// question, eight lines were asked for whatever the node's size: at saturation, four
/// lines then did better than eight, as extra lines held the misses the core can keep in
/// flight; at 60k q/s eight did better, as answers past the fourth line were misses.)
const NODE_PREFETCH_LINES: usize = 8;

/// Slots of a probe sequence the node prefetch looks at before giving up.
const PREFETCH_PROBES: usize = 4;

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
    /// Places the nodes of `parts` in chunks ([`place`]: a part compiled anew is copied into a
    /// new chunk, a part placed by an earlier build mostly stays where it is) and lays out the
    /// slots for them (at most half full, so probes stay short); returns the index and each
    /// part as placed, to be kept (and given to the next build) instead of the part given. A
    /// name whose node does not lie whole inside its part, or whose address does not fit in a
    /// slot, is left out (neither happens with parts built by [`PartNamesBuilder`]).
    pub fn build(parts: &[&PartNames]) -> (NameIndex, Vec<PartNames>) {
        let bytes: Vec<&PartBytes> = parts.iter().map(|p| &p.bytes).collect();
        let (placed_bytes, chunks) = place(&bytes, CHUNK_LIMIT, KEEP_MIN);
        let placed: Vec<PartNames> = parts
            .iter()
            .zip(placed_bytes)
            .map(|(part, bytes)| PartNames {
                bytes,
                names: part.names.clone(),
            })
            .collect();
        let capacity: usize = parts.iter().map(|p| p.len()).sum();
        let size = (capacity * 2).next_power_of_two().max(8);
        let mut slots = HugeSlice::filled(size, EMPTY);
        let mask = size - 1;
        let mut len = 0;
        for part in &placed {
            for &NodeRef {
                hash,
                offset,
                hot_len,
            } in part.names.iter()
            {
                let Some(node) = node_at(part.bytes(), offset as usize) else {
                    continue;
                };
                let address = node.as_ptr() as u64;
                if address & !ADDRESS_MASK != 0 {
                    continue;
                }
                let mut index = (hash as usize) & mask;
                while slots[index] != EMPTY {
                    index = (index + 1) & mask;
                }
                slots[index] = slot_for(hash, address, (hot_len as usize).min(node.len()));
                len += 1;
            }
        }
        let index = NameIndex {
            hasher: NameHasher::get(),
            slots,
            _chunks: chunks.into_boxed_slice(),
            len,
        };
        (index, placed)
    }

    /// The node a filled slot of this index points at.
    #[inline(always)]
    fn node_of(&self, slot: u64) -> &[u8] {
        let start = (slot & ADDRESS_MASK) as *const u8;
        // SAFETY: by the slots' invariant, `start` begins a node lying whole inside a chunk
        // this index holds (immutable, not moved while held), so its `NODE_LEN` prefix and
        // then its `node_len` bytes are readable for as long as `self` is borrowed.
        unsafe {
            let len = u32::from_le_bytes(std::ptr::read_unaligned(start.cast::<[u8; NODE_LEN]>()));
            std::slice::from_raw_parts(start, len as usize)
        }
    }

    /// A node's key: the lower-case wire name after the length prefix.
    #[inline(always)]
    fn key_of(node: &[u8]) -> &[u8] {
        let len = node.get(NODE_LEN).copied().unwrap_or(0) as usize;
        node.get(NODE_LEN + 1..NODE_LEN + 1 + len)
            .unwrap_or_default()
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash as usize) & (self.slots.len().wrapping_sub(1))
    }

    /// The node of `key`, probing from its home slot.
    #[inline(always)]
    fn find(&self, hash: u64, key: &[u8]) -> Option<&[u8]> {
        let mask = self.slots.len().checked_sub(1)?;
        let tag = tag_of(hash);
        let mut index = self.home(hash);
        for _ in 0..self.slots.len() {
            let slot = self.slots[index];
            if slot == EMPTY {
                return None;
            }
            if tag_of(slot) == tag {
                let node = self.node_of(slot);
                if same_key(Self::key_of(node), key) {
                    return Some(node);
                }
            }
            index = (index + 1) & mask;
        }
        None
    }

    /// First step of a batched look-up: start loading the home slot of `hash`.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(hash)) {
            prefetch((slot as *const u64).cast());
        }
    }

    /// Second step: with the slot at hand, start loading the node's first bytes. The node
    /// is looked for in the first few slots of the probe sequence, not only the home slot:
    /// at the table's load about a fifth of the names sit past their home slot (21% when
    /// 27,660 random hashes fill 65,536 slots, as the 3,223-operator set does; 1.37 probes
    /// per hit), and a node not prefetched is a miss that nothing overlaps.
    #[inline]
    pub fn prefetch_node(&self, hash: u64) {
        let mask = self.slots.len().wrapping_sub(1);
        let tag = tag_of(hash);
        let mut index = self.home(hash);
        for _ in 0..PREFETCH_PROBES {
            let Some(&slot) = self.slots.get(index) else {
                return;
            };
            if slot == EMPTY {
                return;
            }
            if tag_of(slot) == tag {
                let start = (slot & ADDRESS_MASK) as *const u8;
                let lines = ((slot >> LINES_SHIFT) & 7) as usize + 1;
                for line in 0..lines {
                    prefetch(start.wrapping_add(64 * line));
                }
                return;
            }
            index = (index + 1) & mask;
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

    /// The hasher the names were hashed with.
    #[inline(always)]
    pub fn hasher(&self) -> &NameHasher {
        &self.hasher
    }

    /// `get` with the key's hash already computed (by [`NameIndex::hash`]).
    #[inline(always)]
    pub fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<NodeAnswers<'_>> {
        let node = self.find(hash, key)?;
        let header = NODE_LEN + 1 + key.len();
        let count = *node.get(header)? as usize;
        let has_any_tcp = *node.get(header + 1)? != 0;
        let entry_count = count + has_any_tcp as usize;
        let entries_start = header + 2;
        let blobs_start = entries_start + entry_count * ENTRY;
        Some(NodeAnswers {
            entries: node.get(entries_start..blobs_start)?,
            blobs: node.get(blobs_start..)?,
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
            bytes: (0..len).map(|i| fill.wrapping_add(i as u8)).collect(),
            trimmed,
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
        let (index, placed) = NameIndex::build(&[&first, &second]);
        assert_eq!(index.len(), 1002);
        let node = index.get(b"\x03bsf\x00").unwrap();
        assert_eq!(
            node.answer(1).unwrap(),
            Prebuilt {
                bytes: &a.bytes,
                trimmed: None
            }
        );
        assert_eq!(
            node.answer(33).unwrap(),
            Prebuilt {
                bytes: &srv.bytes,
                trimmed: Some(50)
            }
        );
        assert!(node.answer(28).is_none());
        assert_eq!(node.first().unwrap().bytes, &a.bytes[..]);
        assert_eq!(node.any_tcp().unwrap().bytes, &any.bytes[..]);
        let ent = index.get(b"\x03ent\x00").unwrap();
        assert!(ent.is_empty() && ent.first().is_none() && ent.any_tcp().is_none());
        assert!(index.get(b"\x03nop\x00").is_none());
        for i in [0u32, 1, 500, 999] {
            let n = index.get(format!("\x04n{i:03}\x00").as_bytes()).unwrap();
            assert_eq!(n.answer(16).unwrap().bytes.len(), 10 + (i % 7) as usize);
        }
        // The same parts give the same answers in a second index (hashes are reused), built
        // from the parts as the first placed them, and still once the first index and the
        // parts as built are gone (the second holds the chunk it shares with the first).
        drop((index, first, second));
        let (again, _) = NameIndex::build(&[&placed[1]]);
        drop(placed);
        assert!(again.get(b"\x03bsf\x00").is_none());
        assert_eq!(
            again
                .get(b"\x04n042\x00")
                .unwrap()
                .answer(16)
                .unwrap()
                .bytes
                .len(),
            10
        );
    }

    #[test]
    fn slots_count_the_lines_up_to_the_any_over_tcp_answer() {
        let mut builder = PartNamesBuilder::default();
        let key = b"\x03bsf\x00";
        let a = prebuilt(1, 30, None);
        let txt = prebuilt(2, 150, None);
        let any = prebuilt(3, 1500, None);
        builder.insert(key, &[(1, a), (16, txt)], Some(&any));
        builder.insert(b"\x03big\x00", &[(16, prebuilt(4, 2000, None))], None);
        builder.insert(b"\x03one\x00", &[(1, prebuilt(5, 16, None))], None);
        let part = builder.finish();
        let (index, _placed) = NameIndex::build(&[&part]);
        let lines_of = |key: &[u8]| {
            let hash = index.hash(key);
            let slot = index
                .slots
                .iter()
                .copied()
                .find(|&s| s != EMPTY && tag_of(s) == tag_of(hash))
                .expect("slot");
            let start = (slot & ADDRESS_MASK) as usize;
            let node = index.find(hash, key).expect("node");
            assert_eq!(node.as_ptr() as usize, start, "the slot points at the node");
            (((slot >> LINES_SHIFT) & 7) + 1, start % 64)
        };
        // Header (4 + 1 + 5 + 2), three entries (30), then the A and TXT answers (180): 222
        // bytes from the node's start; the ANY answer after them is not counted.
        let (lines, offset) = lines_of(key);
        assert_eq!(lines as usize, (offset + 222).div_ceil(64));
        // Larger than the prefetch reaches: the most it asks for.
        assert_eq!(lines_of(b"\x03big\x00").0 as usize, NODE_PREFETCH_LINES);
        let (lines, offset) = lines_of(b"\x03one\x00");
        assert_eq!(lines as usize, (offset + 12 + 10 + 16).div_ceil(64));
    }

    #[test]
    fn nodes_that_do_not_lie_whole_in_their_arena_are_left_out() {
        let mut builder = PartNamesBuilder::default();
        builder.insert(b"\x03bsf\x00", &[(1, prebuilt(1, 40, None))], None);
        let whole = builder.finish();
        let key = b"\x03bsf\x00";
        assert!(NameIndex::build(&[&whole]).0.get(key).is_some());
        // The same node with its last byte cut off: its length prefix now points past the
        // part's end, so the slot would let a look-up read beyond it (into the next part's
        // bytes, or past the arena).
        let bytes = whole.bytes();
        let cut = PartNames {
            bytes: PartBytes::Built(bytes[..bytes.len() - 1].into()),
            names: whole.names.clone(),
        };
        let (index, _) = NameIndex::build(&[&cut]);
        assert_eq!(index.len(), 0);
        assert!(index.get(key).is_none());
    }

    #[test]
    fn empty_index_finds_nothing() {
        let (index, _) = NameIndex::build(&[]);
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

    #[test]
    fn tail_words_are_the_tail_zero_padded() {
        // Distinct bytes, so a byte read from the wrong place or shifted wrongly shows.
        let bytes: Vec<u8> = (1..=16u8).map(|b| b.wrapping_mul(37) | 0x80).collect();
        for len in 0..=16 {
            let tail = &bytes[..len];
            let mut padded = [0u8; 16];
            padded[..len].copy_from_slice(tail);
            let want = (
                u64::from_le_bytes(padded[..8].try_into().unwrap()),
                u64::from_le_bytes(padded[8..].try_into().unwrap()),
            );
            assert_eq!(super::tail_words(tail), want, "tail of {len} bytes");
        }
    }
}
