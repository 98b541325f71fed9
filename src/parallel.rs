//! Loading work spread over the machine's cores: reading and parsing template files, building
//! and compiling the zone's parts. Each is a pure function of one file or one MCC. Scoped
//! threads take the next item from a shared counter (an MCC with a thousand operators costs a
//! hundred times one with ten, so fixed runs would leave one thread with most of the work),
//! and the results come back in input order: errors and their order are the same as in a
//! sequential pass.
//!
//! What a load leaves behind (the records a compile no longer needs, the allocator's free
//! pages) is freed here too, on a thread of its own once the new zone is served.
//!
//! Callers pass only the items that need work (a reload that rebuilds one part maps one item)
//! and the fewest items worth a thread: below that, the work stays on the calling thread, so
//! small loads start no threads and a reload does not take cores from the UDP workers for
//! nothing.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

/// At most this many threads, so that a many-core machine does not start dozens of threads
/// for a load of a few seconds.
const MAX_THREADS: usize = 16;

/// `items.iter().map(f).collect()`, over several threads when there are at least
/// `min_per_thread` items for each.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores
        .min(MAX_THREADS)
        .min(items.len() / min_per_thread.max(1))
        .max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let (next, f) = (&next, &f);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else {
                            return mine;
                        };
                        mine.push((index, f(item)));
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(mine) => all.extend(mine),
                // A panic in `f` is a bug; carry it to the caller as a sequential pass would.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// Drops `garbage` on a thread of its own and then hands the freed memory back to the
/// operating system (inline if no thread can be started): freeing a large zone's records
/// takes a while, and nothing needs to wait for it.
pub fn free_in_background<T: Send + 'static>(garbage: T) {
    let spawned = std::thread::Builder::new()
        .name("bsf-free".into())
        .spawn(move || {
            drop(garbage);
            release_freed_memory();
        });
    // Without a thread, the closure (and the garbage in it) was dropped here already.
    if spawned.is_err() {
        release_freed_memory();
    }
}

/// Hands memory freed after building a zone back to the operating system. Building allocates
/// many short-lived objects; without this, glibc keeps the freed pages and the resident size
/// stays at the building peak rather than what the served snapshot needs.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order_small_and_large() {
        for len in [0, 1, 63, 64, 200, 10_000] {
            let items: Vec<usize> = (0..len).collect();
            let out = map(&items, 64, |i| i * 3);
            assert_eq!(
                out,
                items.iter().map(|i| i * 3).collect::<Vec<_>>(),
                "{len}"
            );
        }
    }

    #[test]
    fn runs_on_several_threads_when_large() {
        // Items that take a while (1 ms each, 256 ms in all on one thread), so that every
        // thread started gets some before the counter runs out.
        let items: Vec<usize> = (0..256).collect();
        let ids = map(&items, 2, |_| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            std::thread::current().id()
        });
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(distinct.len() > 1, cores > 1, "{} threads", distinct.len());
        // One item (a reload that rebuilds one part): the calling thread does it.
        let caller = std::thread::current().id();
        assert_eq!(map(&[1], 2, |_| std::thread::current().id()), vec![caller]);
    }

    #[test]
    fn frees_on_another_thread() {
        struct Noted(std::sync::mpsc::Sender<std::thread::ThreadId>);
        impl Drop for Noted {
            fn drop(&mut self) {
                let _ = self.0.send(std::thread::current().id());
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        free_in_background(Noted(tx));
        let dropped_on = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("dropped");
        assert_ne!(dropped_on, std::thread::current().id());
    }
}
