//! The UDP path: one thread per core and listen address, each with its own `SO_REUSEPORT`
//! socket, moving packets in batches with `recvmmsg`/`sendmmsg`.
//!
//! This is where the server spends its life, so it allocates nothing per packet: buffers are
//! allocated once per thread, the snapshot is looked at once per batch (a cached `Arc`,
//! checked against the `ArcSwap` with one atomic load, no lock), and the responder writes into
//! reused vectors. Threads block in the kernel; a receive
//! timeout lets them notice shutdown without busy-polling (measured to burn CPU).

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::wire::names::hash_name;
use crate::wire::query::{question_name, LowerName};
use crate::wire::{Responder, Snapshot, Verdict};
use crate::zone::Transport;

use super::access::QueryAcl;

/// Packets per system call. 64 amortises the syscall well beyond the point of diminishing
/// returns while keeping a batch's latency small.
const BATCH: usize = 64;
/// Largest query we read; EDNS queries are small, but a TSIG-signed one may be larger.
const RECV_BUFFER: usize = 4096;

/// Creates a bound UDP socket with `SO_REUSEPORT`, so several threads can each own one.
pub fn bind(addr: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    // Room for bursts: a larger receive queue trades memory for fewer drops under load.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket)
}

/// A running UDP worker, with a second handle on its socket to wake it for shutdown.
pub struct Worker {
    thread: JoinHandle<()>,
    socket: Socket,
}

impl Worker {
    /// Wakes the worker, which must find the stop flag set, and waits for it to finish.
    pub fn stop(self) {
        // On Linux, shutting down reading wakes a receiver blocked on the socket, and every
        // receive then returns at once, empty. (An unconnected UDP socket reports ENOTCONN
        // but is shut down all the same.)
        let _ = self.socket.shutdown(std::net::Shutdown::Read);
        let _ = self.thread.join();
    }
}

/// Starts a worker thread answering on `socket`.
pub fn spawn_worker(
    name: String,
    socket: Socket,
    snapshots: Arc<ArcSwap<Snapshot>>,
    acl: Arc<ArcSwap<QueryAcl>>,
    stop: Arc<AtomicBool>,
    log_queries: bool,
) -> io::Result<Worker> {
    let waker = socket.try_clone()?;
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || run(socket, snapshots, acl, &stop, log_queries))?;
    Ok(Worker {
        thread,
        socket: waker,
    })
}

struct Batch {
    /// Each packet's question name, read ahead to prefetch its answer.
    names: Vec<LowerName>,
    recv_bufs: Vec<[u8; RECV_BUFFER]>,
    send_bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    recv_iov: Vec<libc::iovec>,
    recv_hdrs: Vec<libc::mmsghdr>,
    send_iov: Vec<libc::iovec>,
    send_hdrs: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Box<Batch> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zeroed_storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        let zeroed_hdr: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Box::new(Batch {
            names: (0..BATCH).map(|_| LowerName::new()).collect(),
            recv_bufs: vec![[0u8; RECV_BUFFER]; BATCH],
            send_bufs: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            addrs: vec![zeroed_storage; BATCH],
            recv_iov: vec![iov; BATCH],
            recv_hdrs: vec![zeroed_hdr; BATCH],
            send_iov: vec![iov; BATCH],
            send_hdrs: vec![zeroed_hdr; BATCH],
        })
    }

    /// Points every header at its buffers, once: the batch is boxed, so the addresses stay
    /// put for the thread's life.
    fn wire(&mut self) {
        for i in 0..BATCH {
            self.recv_iov[i].iov_base = self.recv_bufs[i].as_mut_ptr().cast();
            self.recv_iov[i].iov_len = RECV_BUFFER;
            let hdr = &mut self.recv_hdrs[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_iov = &mut self.recv_iov[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
        }
        self.rearm(BATCH);
    }

    /// Resets what the kernel rewrote in the headers of the last `used` messages.
    fn rearm(&mut self, used: usize) {
        for hdr in &mut self.recv_hdrs[..used] {
            hdr.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
    }
}

fn source_ip(storage: &libc::sockaddr_storage) -> Option<std::net::IpAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(std::net::IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(std::net::IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

fn run(
    socket: Socket,
    snapshots: Arc<ArcSwap<Snapshot>>,
    acl: Arc<ArcSwap<QueryAcl>>,
    stop: &AtomicBool,
    log_queries: bool,
) {
    // Caches: between reloads, a batch's look at the current snapshot and access list is
    // one pointer comparison each (no debt-list traffic), which counts when a worker wakes
    // for a single packet.
    let mut snapshots = Cache::new(snapshots);
    let mut acl = Cache::new(acl);
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new();
    batch.wire();
    let mut responder = Responder::new();
    let mut used = 0;
    while !stop.load(Ordering::Relaxed) {
        batch.rearm(used);
        used = 0;
        // SAFETY: the headers point at buffers owned by `batch`, alive for the call.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                batch.recv_hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received == 0 {
            continue;
        }
        if received < 0 {
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => {}
                _ => {
                    tracing::warn!(%error, "UDP receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            continue;
        }
        used = received as usize;
        let snapshot: &Snapshot = snapshots.load();
        let acl: &QueryAcl = acl.load();
        let mut hashes = [0u64; BATCH];
        let mut lowered = [false; BATCH];
        prefetch_answers(snapshot, &mut batch, used, &mut hashes, &mut lowered);
        let mut to_send = 0;
        for i in 0..received as usize {
            let len = batch.recv_hdrs[i].msg_len as usize;
            let packet = &batch.recv_bufs[i][..len.min(RECV_BUFFER)];
            let out = &mut batch.send_bufs[to_send];
            let verdict = if acl.allows_all() && lowered[i] {
                let lower = &mut batch.names[i];
                responder.respond_prepared(snapshot, packet, Transport::Udp, out, lower, hashes[i])
            } else if acl.allows_all() {
                responder.respond(snapshot, packet, Transport::Udp, out)
            } else {
                match source_ip(&batch.addrs[i]) {
                    Some(ip) if acl.allows(ip) => {
                        responder.respond(snapshot, packet, Transport::Udp, out)
                    }
                    _ => responder.refuse(snapshot, packet, out),
                }
            };
            if log_queries {
                if let Some(ip) = source_ip(&batch.addrs[i]) {
                    super::log_query(ip, "udp", packet, out);
                }
            }
            if verdict == Verdict::Drop {
                continue;
            }
            batch.send_iov[to_send].iov_base = out.as_mut_ptr().cast();
            batch.send_iov[to_send].iov_len = out.len();
            let hdr = &mut batch.send_hdrs[to_send].msg_hdr;
            hdr.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = batch.recv_hdrs[i].msg_hdr.msg_namelen;
            hdr.msg_iov = &mut batch.send_iov[to_send];
            hdr.msg_iovlen = 1;
            to_send += 1;
        }
        send_all(fd, &mut batch.send_hdrs[..to_send]);
    }
}

/// Starts loading, for every packet of the batch, the index slot and then the bytes of its
/// answer, so that the cache misses of a whole batch overlap (each alone costs more than the
/// rest of the answer's work).
fn prefetch_answers(
    snapshot: &Snapshot,
    batch: &mut Batch,
    used: usize,
    hashes: &mut [u64; BATCH],
    lowered: &mut [bool; BATCH],
) {
    let index = snapshot.index();
    for i in 0..used {
        let len = (batch.recv_hdrs[i].msg_len as usize).min(RECV_BUFFER);
        let name = &mut batch.names[i];
        lowered[i] = question_name(&batch.recv_bufs[i][..len], name);
        if lowered[i] {
            hashes[i] = hash_name(name.as_slice());
            index.prefetch_slot(hashes[i]);
        }
    }
    for i in 0..used {
        if lowered[i] {
            index.prefetch_node(hashes[i]);
        }
    }
}

/// Sends every prepared message, resuming after partial sends; a message the kernel refuses
/// (e.g. an unreachable source address) is skipped rather than retried forever.
fn send_all(fd: libc::c_int, hdrs: &mut [libc::mmsghdr]) {
    let mut sent = 0;
    let mut attempts = 0;
    while sent < hdrs.len() && attempts < 4 * BATCH {
        attempts += 1;
        let rest = &mut hdrs[sent..];
        // SAFETY: the headers point at buffers owned by the caller's batch.
        let n = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
        if n > 0 {
            sent += n as usize;
            continue;
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_micros(50)),
            _ => {
                tracing::debug!(%error, "UDP send failed; skipping one response");
                sent += 1;
            }
        }
    }
}
