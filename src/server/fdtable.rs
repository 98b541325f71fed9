//! A file descriptor table of its own for each UDP worker thread.
//!
//! In a process of several threads, each system call on a descriptor takes a reference on
//! the file and drops it on return (the kernel's `fdget`/`fput`: atomic operations on the
//! file's count), since another thread could close the descriptor meanwhile; a thread whose
//! table no other thread shares skips both. A UDP worker makes two calls per wake-up
//! (`recvmmsg`, `sendmmsg`), and at moderate rates a wake-up carries a packet or two, so this
//! shows: at 60k q/s `fput` alone was 0.34% of the server's samples (perf), and absent from
//! the single-threaded floor responder's; with a table of its own, the server's CPU per query
//! fell by about 1.2% (median of 17 alternated rounds against the same build without it).
//!
//! So each worker unshares its table (`unshare(CLONE_FILES)`, which copies it) and closes in
//! its copy every descriptor but its socket and the standard streams (its log lines go to
//! standard error): the copy must not hold the process's other files open, or a TCP
//! listener or connection the server closes would stay open while the worker runs. The
//! thread that spawned the worker then closes its own entry for the worker's socket, which
//! only the worker uses ([`close_spawner_copy`]), so the socket is closed when the worker
//! ends, as before. Where the kernel refuses (no `close_range`, before Linux 5.9; a seccomp
//! filter), the worker keeps the shared table and works as before.

use std::os::fd::RawFd;

/// On the worker's thread: gives it a table of its own holding only `socket` and the
/// standard streams. Returns whether it did (on `false` the table is still shared).
pub fn make_private(socket: RawFd) -> bool {
    let Ok(socket) = u32::try_from(socket) else {
        return false;
    };
    // First make sure descriptors can be closed by range: a table of its own that keeps a
    // copy of every file the process had open is worse than a shared one. (An empty range
    // past any open descriptor: succeeds, closing nothing, wherever the call exists.)
    if close_range(u32::MAX, u32::MAX).is_err() {
        return false;
    }
    // SAFETY: unshare(CLONE_FILES) only gives this thread a copy of the table; every
    // descriptor number stays valid in the copy.
    if unsafe { libc::unshare(libc::CLONE_FILES) } != 0 {
        return false;
    }
    const FIRST: u32 = 3;
    // The copy's other descriptors: those below the socket (past the standard streams),
    // then those above it. No Rust object on this thread owns any of them: the worker owns
    // only its socket, and every other handle belongs to threads that use the other table.
    let below = (socket > FIRST).then(|| close_range(FIRST, socket - 1));
    let above = close_range(socket.max(FIRST - 1) + 1, u32::MAX);
    if below.is_some_and(|r| r.is_err()) || above.is_err() {
        // The table is this thread's already; say so, so the spawner closes its entry.
        tracing::warn!("a UDP worker could not close the other descriptors in its table");
    }
    true
}

/// On the spawning thread, once the worker said its table is its own: closes this table's
/// entry for the worker's socket. The caller must own no handle to `socket` (it was moved
/// to the worker), so nothing on this side can use the number afterwards.
pub fn close_spawner_copy(socket: RawFd) {
    // SAFETY: the descriptor is open in this table and owned by no object on this side;
    // the worker's own table holds the socket open.
    unsafe {
        libc::close(socket);
    }
}

fn close_range(first: u32, last: u32) -> std::io::Result<()> {
    // SAFETY: close_range(2) with no flags closes descriptors of this thread's table, none
    // of which a live object relies on (see the callers).
    let result = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    #[test]
    fn the_worker_keeps_its_socket_and_the_spawner_keeps_the_rest() {
        // Three sockets opened in turn, so the worker's descriptor has one below and one
        // above it: both ranges its copy closes are seen.
        let below = UdpSocket::bind("127.0.0.1:0").unwrap();
        let worker_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let above = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (below_fd, worker_fd, above_fd) = (
            below.as_raw_fd(),
            worker_socket.as_raw_fd(),
            above.as_raw_fd(),
        );
        assert!(below_fd < worker_fd && worker_fd < above_fd);
        let address = worker_socket.local_addr().unwrap();
        let timeout = Some(std::time::Duration::from_secs(5));
        worker_socket.set_read_timeout(timeout).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let worker = std::thread::spawn(move || {
            let private = make_private(worker_fd);
            let seen = (
                is_open(worker_fd),
                is_open(below_fd),
                is_open(above_fd),
                is_open(2),
            );
            tx.send(private).unwrap();
            // The socket still works from the worker's table.
            let mut buf = [0u8; 16];
            let (n, from) = worker_socket.recv_from(&mut buf).unwrap();
            worker_socket.send_to(&buf[..n], from).unwrap();
            seen
        });
        let private = rx.recv().unwrap();
        if private {
            close_spawner_copy(worker_fd);
        }
        // Here, the spawner's table: the other sockets are untouched.
        assert!(is_open(below_fd) && is_open(above_fd));
        below.send_to(b"ping", address).unwrap();
        let mut buf = [0u8; 16];
        below.set_read_timeout(timeout).unwrap();
        assert_eq!(below.recv(&mut buf).unwrap(), 4);
        let (socket_open, below_open, above_open, stderr_open) = worker.join().unwrap();
        assert!(socket_open && stderr_open);
        if private {
            assert!(
                !below_open && !above_open,
                "the worker's copy closed the rest"
            );
        } else {
            // Where the kernel or a seccomp filter refuses, the table stays shared, whole.
            eprintln!("note: this kernel refused a private descriptor table");
            assert!(below_open && above_open);
        }
        // The worker has ended and dropped its socket: nothing holds the port any more.
        UdpSocket::bind(address).expect("the worker's port is free again");
    }
}
