//! Memory for the name index's slot table: large tables in transparent huge pages.
//!
//! Every packet reads one slot at a random place in the table, and at moderate rates the
//! worker wakes with cold caches and a cold TLB, so that read is a page walk (a two-level one
//! under a hypervisor) and then a memory access. A table mapped in 2 MiB pages needs one
//! TLB entry per 2 MiB instead of 512. Measured with time stamps at 60k q/s (3,223 operators,
//! 512 KiB of slots, four alternations): the step from a question name to its node's address
//! took 60–170 cycles less per packet (of 850–1,000).
//!
//! Tables of [`HUGE_MIN_BYTES`] or more get their own anonymous mapping, rounded up to whole
//! 2 MiB pages and advised with `MADV_HUGEPAGE` (honoured when the system's transparent huge
//! pages are `always` or `madvise`, the usual defaults); smaller ones stay on the heap, where
//! rounding up would cost more memory than the walk does time. Anything that fails falls back
//! to the heap: huge pages are an optimisation, never a requirement.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Size of one transparent huge page on x86_64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;
/// Smallest table worth a mapping of its own: at 256 KiB the rounding to 2 MiB costs at most
/// 1.75 MiB, for every table the benchmark's realistic operator set and larger ones build.
const HUGE_MIN_BYTES: usize = 256 << 10;

/// A fixed-length array of `u64`, filled with one value when made.
pub struct U64Table {
    /// The elements, wherever they live: read on every packet, so a look at the table is two
    /// loads and no branch on where it was allocated.
    start: NonNull<u64>,
    len: usize,
    /// Who frees the memory: the heap (a leaked `Box<[u64]>`, taken back on drop) or a
    /// mapping of its own.
    owner: Owner,
}

enum Owner {
    Heap,
    /// A mapping of this many bytes at `start`, made by [`map_huge`].
    #[cfg(target_os = "linux")]
    Mapped {
        bytes: usize,
    },
}

// SAFETY: a `U64Table` owns its elements alone, like a `Box<[u64]>`; shared access only reads.
unsafe impl Send for U64Table {}
// SAFETY: as above; `&U64Table` hands out only shared slices.
unsafe impl Sync for U64Table {}

impl U64Table {
    /// `len` copies of `fill`, in huge pages when the table is large enough and the mapping
    /// can be made.
    pub fn filled(len: usize, fill: u64) -> U64Table {
        #[cfg(target_os = "linux")]
        if len.saturating_mul(8) >= HUGE_MIN_BYTES {
            if let Some((start, bytes)) = map_huge(len) {
                let mut table = U64Table {
                    start,
                    len,
                    owner: Owner::Mapped { bytes },
                };
                table.fill(fill);
                return table;
            }
        }
        let elements: NonNull<[u64]> = NonNull::from(Box::leak(vec![fill; len].into_boxed_slice()));
        U64Table {
            start: elements.cast(),
            len,
            owner: Owner::Heap,
        }
    }

    /// Whether the table has a mapping of its own (advised for huge pages).
    #[cfg(test)]
    fn is_mapped(&self) -> bool {
        !matches!(self.owner, Owner::Heap)
    }
}

impl Deref for U64Table {
    type Target = [u64];

    #[inline(always)]
    fn deref(&self) -> &[u64] {
        // SAFETY: `start` begins `len` initialised elements owned by this table (a leaked box
        // or a mapping, neither moved nor freed before `drop`).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl DerefMut for U64Table {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for U64Table {
    fn drop(&mut self) {
        match self.owner {
            Owner::Heap => {
                let elements = std::ptr::slice_from_raw_parts_mut(self.start.as_ptr(), self.len);
                // SAFETY: `elements` is the boxed slice leaked in `filled`, taken back once.
                drop(unsafe { Box::from_raw(elements) });
            }
            #[cfg(target_os = "linux")]
            Owner::Mapped { bytes } => {
                // SAFETY: the run mapped by `map_huge`, unmapped once.
                unsafe {
                    libc::munmap(self.start.as_ptr().cast(), bytes);
                }
            }
        }
    }
}

/// An anonymous private mapping for `len` elements, aligned to and sized in whole huge pages
/// and advised for them: its start and size in bytes.
#[cfg(target_os = "linux")]
fn map_huge(len: usize) -> Option<(NonNull<u64>, usize)> {
    let bytes = len.checked_mul(8)?.checked_next_multiple_of(HUGE_PAGE)?;
    // Map one huge page more, so an aligned run of `bytes` lies inside, then give back
    // the unaligned head and the tail.
    let reserve = bytes.checked_add(HUGE_PAGE)?;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; no
    // existing memory is touched.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            reserve,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return None;
    }
    let base = raw as usize;
    let aligned = base.next_multiple_of(HUGE_PAGE);
    let head = aligned - base;
    let tail = reserve - head - bytes;
    // SAFETY: both ranges lie inside the mapping just made and outside the kept run.
    // A failed trim only leaves unused address space mapped (never touched, never
    // resident), so its result is not needed.
    unsafe {
        if head > 0 {
            libc::munmap(raw, head);
        }
        if tail > 0 {
            libc::munmap((aligned + bytes) as *mut libc::c_void, tail);
        }
        // Advice only: without it (or where refused) the table works in base pages.
        libc::madvise(aligned as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
    }
    Some((NonNull::new(aligned as *mut u64)?, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_stay_on_the_heap_and_large_ones_are_mapped() {
        let small = U64Table::filled(1000, 7);
        assert!(!small.is_mapped());
        assert!(small.iter().all(|&v| v == 7) && small.len() == 1000);

        let len = HUGE_MIN_BYTES / 8 + 3;
        let mut large = U64Table::filled(len, u64::MAX);
        assert_eq!(large.len(), len);
        assert!(large.iter().all(|&v| v == u64::MAX));
        #[cfg(target_os = "linux")]
        {
            assert!(large.is_mapped());
            assert_eq!(
                large.as_ptr() as usize % HUGE_PAGE,
                0,
                "aligned to a huge page"
            );
        }
        large[len - 1] = 5;
        large[0] = 6;
        assert_eq!((large[0], large[len - 1], large[1]), (6, 5, u64::MAX));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn large_tables_are_backed_by_huge_pages_where_the_system_allows() {
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !(setting.contains("[always]") || setting.contains("[madvise]")) {
            eprintln!("transparent huge pages are off here; nothing to check");
            return;
        }
        let table = U64Table::filled(HUGE_PAGE / 8, 1);
        let start = table.as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        // The mapping's own entry: its header line starts with its address range.
        let header = format!("{start:x}-");
        let entry: String = smaps
            .lines()
            .skip_while(|line| !line.starts_with(&header))
            .take_while(|line| line.starts_with(&header) || !line.contains('-'))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(entry.contains("hg"), "not advised for huge pages:\n{entry}");
    }
}
