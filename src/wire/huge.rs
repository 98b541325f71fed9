//! Memory for the name index (its slot table and the chunks holding its nodes): large arrays
//! in transparent huge pages.
//!
//! Every packet reads one slot and then one node, each at a random place in megabytes, and
//! at moderate rates the worker wakes with cold caches and a cold TLB, so each read is a page
//! walk (a two-level one under a hypervisor) and then a memory access. An array mapped in
//! 2 MiB pages needs one TLB entry per 2 MiB instead of 512. Measured with time stamps at
//! 60k q/s (3,223 operators, four alternations): slots in huge pages took the step from a
//! question name to its node's address 60–170 cycles lower per packet (of 850–1,000);
//! nodes in huge pages too (`super::arena`), the user-space work per packet went from
//! ~1,500 to ~1,250 cycles.
//!
//! Arrays of [`HUGE_MIN_BYTES`] or more get their own anonymous mapping, rounded up to whole
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

/// Element types whose every bit pattern, all-zero included (what a fresh mapping holds), is
/// a valid value. Sealed: only the integers the index stores.
pub trait Plain: Copy + sealed::Sealed {}
impl Plain for u8 {}
impl Plain for u64 {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u64 {}
}

/// A fixed-length array of plain values, filled with one value when made.
pub struct HugeSlice<T: Plain> {
    /// The elements, wherever they live: read on every packet, so a look at the array is two
    /// loads and no branch on where it was allocated.
    start: NonNull<T>,
    len: usize,
    /// Who frees the memory: the heap (a leaked `Box<[T]>`, taken back on drop) or a
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

// SAFETY: a `HugeSlice` owns its elements alone, like a `Box<[T]>`; shared access only reads.
unsafe impl<T: Plain + Send> Send for HugeSlice<T> {}
// SAFETY: as above; `&HugeSlice` hands out only shared slices.
unsafe impl<T: Plain + Sync> Sync for HugeSlice<T> {}

impl<T: Plain> HugeSlice<T> {
    /// `len` copies of `fill`, in huge pages when the array is large enough and the mapping
    /// can be made.
    pub fn filled(len: usize, fill: T) -> HugeSlice<T> {
        #[cfg(target_os = "linux")]
        if let Some(mut array) = Self::mapped(len) {
            array.fill(fill);
            return array;
        }
        Self::on_heap(vec![fill; len])
    }

    /// A mapping of its own for `len` elements (unfilled: zero bytes), if the array is large
    /// enough to be worth one and it can be made.
    #[cfg(target_os = "linux")]
    fn mapped(len: usize) -> Option<HugeSlice<T>> {
        let size = len.checked_mul(std::mem::size_of::<T>())?;
        if size < HUGE_MIN_BYTES {
            return None;
        }
        let (start, bytes) = map_huge(size)?;
        Some(HugeSlice {
            start: start.cast(),
            len,
            owner: Owner::Mapped { bytes },
        })
    }

    fn on_heap(elements: Vec<T>) -> HugeSlice<T> {
        let len = elements.len();
        let elements: NonNull<[T]> = NonNull::from(Box::leak(elements.into_boxed_slice()));
        HugeSlice {
            start: elements.cast(),
            len,
            owner: Owner::Heap,
        }
    }

    /// Whether the array has a mapping of its own (advised for huge pages).
    #[cfg(test)]
    fn is_mapped(&self) -> bool {
        !matches!(self.owner, Owner::Heap)
    }
}

impl HugeSlice<u8> {
    /// `len` zero bytes. A fresh mapping is zero already, so pages are first touched by
    /// whoever fills them.
    pub fn zeroed(len: usize) -> HugeSlice<u8> {
        #[cfg(target_os = "linux")]
        if let Some(array) = Self::mapped(len) {
            return array;
        }
        Self::on_heap(vec![0; len])
    }
}

impl<T: Plain> Deref for HugeSlice<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `start` begins `len` initialised elements owned by this array (a leaked box
        // or a mapping, zero-filled by the kernel, neither moved nor freed before `drop`);
        // all-zero bytes are a valid `T` (the `Plain` bound).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl<T: Plain> DerefMut for HugeSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl<T: Plain> Drop for HugeSlice<T> {
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

/// An anonymous private mapping for `size` bytes, aligned to and sized in whole huge pages
/// and advised for them: its start and size in bytes.
#[cfg(target_os = "linux")]
fn map_huge(size: usize) -> Option<(NonNull<u8>, usize)> {
    let bytes = size.checked_next_multiple_of(HUGE_PAGE)?;
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
    Some((NonNull::new(aligned as *mut u8)?, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_stay_on_the_heap_and_large_ones_are_mapped() {
        let small = HugeSlice::<u64>::filled(1000, 7);
        assert!(!small.is_mapped());
        assert!(small.iter().all(|&v| v == 7) && small.len() == 1000);

        let len = HUGE_MIN_BYTES / 8 + 3;
        let mut large = HugeSlice::<u64>::filled(len, u64::MAX);
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

    #[test]
    fn zeroed_bytes_are_zero_wherever_they_live() {
        let small = HugeSlice::zeroed(100);
        assert!(!small.is_mapped() && small.len() == 100 && small.iter().all(|&b| b == 0));
        let mut large = HugeSlice::zeroed(HUGE_MIN_BYTES + 1);
        #[cfg(target_os = "linux")]
        assert!(large.is_mapped());
        assert_eq!(large.len(), HUGE_MIN_BYTES + 1);
        assert!(large.iter().all(|&b| b == 0));
        large[HUGE_MIN_BYTES] = 9;
        assert_eq!(large[HUGE_MIN_BYTES], 9);
        assert_eq!(HugeSlice::zeroed(0).len(), 0);
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
        let table = HugeSlice::<u64>::filled(HUGE_PAGE / 8, 1);
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
