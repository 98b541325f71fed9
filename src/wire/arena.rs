//! Where the compiled parts' bytes live between snapshots: chunks of memory in huge pages,
//! shared by the snapshots whose parts lie in them, and the rule for placing parts in them.
//!
//! One heap allocation per part scatters the nodes over thousands of 4 KiB pages, and at
//! moderate rates every look-up then pays a cold page walk for its node. Chunks of up to
//! [`CHUNK_LIMIT`] bytes, each in its own huge-page mapping when large ([`HugeSlice`]), put
//! the nodes of a few hundred parts under one TLB entry per 2 MiB (measured with time stamps
//! at 60k q/s, 3,223 operators: ~1,500 → ~1,250 user-space cycles per packet).
//!
//! A reload must not copy what it did not change: fresh memory is slow to touch in a virtual
//! machine (the host backs each page on first touch; copying every part of 100,000 operators
//! into one new arena took a reload from ~0.6 s to 1.0–1.4 s). So a part placed once stays
//! in its chunk, and each build puts only the parts compiled anew into new chunks, together
//! with the parts of any chunk that has become mostly garbage (less than half of its bytes
//! still used by the parts given) or is small (under [`KEEP_MIN`]: the few parts a reload
//! compiled): copying those frees the old chunk once the snapshots using it are gone, so
//! memory stays within about twice what the parts need, reloads that each change a few parts
//! do not leave a trail of small chunks on the heap, and the copy a build makes is bounded by
//! what changed plus a few chunks.

use std::collections::HashMap;
use std::sync::Arc;

use super::huge::HugeSlice;

/// Largest chunk a build fills (a part larger than this gets a chunk of its own): large
/// enough for few TLB entries, small enough that moving a chunk's parts is a short copy.
pub const CHUNK_LIMIT: usize = 16 << 20;

/// Smallest chunk whose parts stay where they are: one huge page. The parts of smaller ones
/// are gathered into the next build's new chunk.
pub const KEEP_MIN: usize = 2 << 20;

/// One chunk: parts' bytes back to back, never written once shared.
pub type Chunk = HugeSlice<u8>;

/// Where one part's bytes are.
pub enum PartBytes {
    /// As compiled, not yet placed in a chunk.
    Built(Box<[u8]>),
    /// In a chunk, which the part shares with the snapshots and parts placed there.
    Placed {
        chunk: Arc<Chunk>,
        start: usize,
        len: usize,
    },
}

impl Default for PartBytes {
    fn default() -> Self {
        PartBytes::Built(Box::default())
    }
}

impl PartBytes {
    pub fn bytes(&self) -> &[u8] {
        match self {
            PartBytes::Built(bytes) => bytes,
            PartBytes::Placed { chunk, start, len } => {
                chunk.get(*start..*start + *len).unwrap_or_default()
            }
        }
    }

    fn chunk(&self) -> Option<&Arc<Chunk>> {
        match self {
            PartBytes::Placed { chunk, .. } => Some(chunk),
            PartBytes::Built(_) => None,
        }
    }
}

/// The parts as placed (in the order given) and every chunk they lie in. Parts already in a
/// chunk of at least `keep_min` bytes that stays at least half used keep their place; the
/// others are copied, in order, into new chunks of at most `limit` bytes (a larger part alone
/// in one of its size).
pub fn place(
    parts: &[&PartBytes],
    limit: usize,
    keep_min: usize,
) -> (Vec<PartBytes>, Vec<Arc<Chunk>>) {
    let mut used: HashMap<*const Chunk, usize> = HashMap::new();
    for part in parts {
        if let Some(chunk) = part.chunk() {
            *used.entry(Arc::as_ptr(chunk)).or_default() += part.bytes().len();
        }
    }
    // A part that keeps its place, as it is kept: in a chunk large enough and half used.
    let kept = |part: &PartBytes| match part {
        PartBytes::Placed { chunk, start, len }
            if chunk.len() >= keep_min
                && used
                    .get(&Arc::as_ptr(chunk))
                    .is_some_and(|&u| 2 * u >= chunk.len()) =>
        {
            Some(PartBytes::Placed {
                chunk: chunk.clone(),
                start: *start,
                len: *len,
            })
        }
        _ => None,
    };

    // Each part kept, or its place in a new chunk (index, start); and each new chunk's size.
    let mut layout: Vec<Result<PartBytes, (usize, usize)>> = Vec::with_capacity(parts.len());
    let mut sizes: Vec<usize> = Vec::new();
    for part in parts {
        if let Some(kept) = kept(part) {
            layout.push(Ok(kept));
            continue;
        }
        let len = part.bytes().len();
        let last = sizes.len().wrapping_sub(1);
        match sizes.get_mut(last) {
            Some(size) if *size + len <= limit || *size == 0 => {
                layout.push(Err((last, *size)));
                *size += len;
            }
            _ => {
                layout.push(Err((sizes.len(), 0)));
                sizes.push(len);
            }
        }
    }
    let mut fresh: Vec<Chunk> = sizes.iter().map(|&size| HugeSlice::zeroed(size)).collect();
    for (part, at) in parts.iter().zip(&layout) {
        if let Err((index, start)) = *at {
            let bytes = part.bytes();
            fresh[index][start..start + bytes.len()].copy_from_slice(bytes);
        }
    }
    let fresh: Vec<Arc<Chunk>> = fresh.into_iter().map(Arc::new).collect();

    let placed: Vec<PartBytes> = parts
        .iter()
        .zip(layout)
        .map(|(part, at)| match at {
            Ok(kept) => kept,
            Err((index, start)) => PartBytes::Placed {
                chunk: fresh[index].clone(),
                start,
                len: part.bytes().len(),
            },
        })
        .collect();
    let mut chunks: Vec<Arc<Chunk>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in placed.iter().filter_map(PartBytes::chunk) {
        if seen.insert(Arc::as_ptr(chunk)) {
            chunks.push(chunk.clone());
        }
    }
    (placed, chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(fill: u8, len: usize) -> PartBytes {
        PartBytes::Built(vec![fill; len].into_boxed_slice())
    }

    fn chunk_of(part: &PartBytes) -> *const Chunk {
        part.chunk().map_or(std::ptr::null(), Arc::as_ptr)
    }

    #[test]
    fn built_parts_are_packed_into_chunks_up_to_the_limit() {
        let parts = [built(1, 40), built(2, 50), built(3, 30), built(4, 200)];
        let refs: Vec<&PartBytes> = parts.iter().collect();
        let (placed, chunks) = place(&refs, 100, 0);
        for (part, fill) in placed.iter().zip([1u8, 2, 3, 4]) {
            assert!(part.chunk().is_some());
            assert!(part.bytes().iter().all(|&b| b == fill));
        }
        assert_eq!(
            placed.iter().map(|p| p.bytes().len()).collect::<Vec<_>>(),
            [40, 50, 30, 200]
        );
        // 40 + 50 fit in 100; 30 starts a second chunk; 200 (over the limit) has its own.
        assert_eq!(chunk_of(&placed[0]), chunk_of(&placed[1]));
        assert_ne!(chunk_of(&placed[1]), chunk_of(&placed[2]));
        assert_ne!(chunk_of(&placed[2]), chunk_of(&placed[3]));
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 320);
    }

    #[test]
    fn placed_parts_stay_while_their_chunk_is_half_used_and_move_after() {
        let parts = [built(1, 60), built(2, 40)];
        let refs: Vec<&PartBytes> = parts.iter().collect();
        let (first, _) = place(&refs, 1000, 0);
        // The part of 40 is replaced by a fresh one: the chunk is still 60% used, so the part
        // of 60 keeps its place and only the fresh part is copied.
        let fresh = built(3, 40);
        let (second, chunks) = place(&[&first[0], &fresh], 1000, 0);
        assert_eq!(chunk_of(&second[0]), chunk_of(&first[0]));
        assert_eq!(second[0].bytes().as_ptr(), first[0].bytes().as_ptr());
        assert_ne!(chunk_of(&second[1]), chunk_of(&first[0]));
        assert_eq!(chunks.len(), 2);
        // Now the part of 60 is replaced and the one of 40 kept: 40 of 100 bytes used, so it
        // moves into the new chunk with the fresh part, and the first chunk can go.
        let (third, chunks) = place(&[&built(4, 60), &first[1]], 1000, 0);
        assert_ne!(chunk_of(&third[1]), chunk_of(&first[1]));
        assert_eq!(chunk_of(&third[0]), chunk_of(&third[1]));
        assert_eq!(chunks.len(), 1);
        drop((first, second, parts));
        assert!(third[1].bytes().iter().all(|&b| b == 2) && third[1].bytes().len() == 40);
        assert!(third[0].bytes().iter().all(|&b| b == 4));
    }

    #[test]
    fn parts_of_small_chunks_are_gathered_into_the_new_one() {
        // Two reloads, each compiling one part anew: the second gathers the first one's small
        // chunk (fully used, but under the minimum) with its own fresh part, while the parts
        // of the large chunk stay.
        let parts = [built(1, 300), built(2, 300)];
        let refs: Vec<&PartBytes> = parts.iter().collect();
        let (first, _) = place(&refs, 1000, 200);
        let (second, _) = place(&[&first[0], &first[1], &built(3, 50)], 1000, 200);
        assert_eq!(chunk_of(&second[0]), chunk_of(&first[0]));
        let (third, chunks) = place(
            &[&second[0], &second[1], &second[2], &built(4, 50)],
            1000,
            200,
        );
        assert_eq!(chunk_of(&third[0]), chunk_of(&first[0]));
        assert_eq!(chunk_of(&third[1]), chunk_of(&first[1]));
        assert_ne!(
            chunk_of(&third[2]),
            chunk_of(&second[2]),
            "the small chunk is gathered"
        );
        assert_eq!(chunk_of(&third[2]), chunk_of(&third[3]));
        assert_eq!(chunks.len(), 2);
        assert!(third[2].bytes().iter().all(|&b| b == 3) && third[2].bytes().len() == 50);
    }

    #[test]
    fn nothing_to_place_makes_no_chunk() {
        let (placed, chunks) = place(&[], CHUNK_LIMIT, KEEP_MIN);
        assert!(placed.is_empty() && chunks.is_empty());
    }
}
