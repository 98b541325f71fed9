//! The UDP path: one thread per core and listen address, each with its own socket (sharing
//! the address with `SO_REUSEPORT`), moving packets in batches with `recvmmsg`/`sendmmsg`.
//!
//! This is where the server spends its life, so it allocates nothing per packet: buffers are
//! allocated once per thread, the snapshot is looked at once per batch (a cached `Arc`,
//! checked against the `ArcSwap` with one atomic load, no lock), the common query is answered
//! over itself in its receive buffer (`wire::fastpath`), and the responder writes the rest
//! into reused vectors. Threads block in the kernel with no receive timeout: a timeout arms a
//! kernel timer on every blocking call, measured at ~0.25 µs per query at 60k q/s (more than
//! the whole look-up). To stop, the stop flag is set and each worker's socket is shut down for
//! reading, which wakes its receive ([`Worker::stop`]). No busy-polling (measured to burn CPU).
//! Each packet's outcome is counted in the worker's own counters (`super::stats`). Each
//! worker has a file descriptor table of its own, so its system calls skip taking a
//! reference on the socket (`super::fdtable`).

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

use crate::wire::fastpath::{self, Common, Kind};
use crate::wire::names::NameIndex;
use crate::wire::query::{scan_question_name, LowerName};
use crate::wire::{Responder, Snapshot, Verdict};
use crate::zone::Transport;

use super::access::QueryAcl;
use super::fdtable;
use super::pktinfo::{self, ControlBuffer, Destination};
use super::stats::{Counters, Outcome};

/// Packets per system call. 64 amortises the syscall well beyond the point of diminishing
/// returns while keeping a batch's latency small.
const BATCH: usize = 64;
/// Largest query we read; EDNS queries are small, but a TSIG-signed one may be larger.
pub(crate) const RECV_BUFFER: usize = 4096;
/// Distance between receive buffers: one cache line more than a buffer, so that the batch's
/// packets do not all start at the same offset within a page. At a page apart they would all
/// fall in one set of the L1 data cache (which a page's worth of lines indexes), eight ways
/// for 64 packets: each packet's first line would be evicted by the time it is read.
const RECV_STRIDE: usize = RECV_BUFFER + 64;

/// Creates a bound UDP socket; `shared` (several threads, each with its own socket on this
/// address) sets `SO_REUSEPORT` so they can. A lone socket goes without: on every datagram
/// the kernel hashes the source to pick a member of a reuseport group, even a group of one
/// (measured: ~1.5% of the server's CPU per query at saturation), and a second server started
/// on the same port fails with "in use" instead of quietly taking part of the traffic.
pub fn bind(addr: SocketAddr, shared: bool) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if shared {
        socket.set_reuse_port(true)?;
    }
    if addr.ip().is_unspecified() {
        // Answers must come from the address each query was sent to (`super::pktinfo`).
        pktinfo::enable(&socket, addr.is_ipv6())?;
    }
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
    counters: Arc<Counters>,
    log_queries: bool,
) -> io::Result<Worker> {
    let waker = socket.try_clone()?;
    let fd = socket.as_raw_fd();
    let (table_tx, table_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        let _ = table_tx.send(fdtable::make_private(fd));
        run(socket, snapshots, acl, &stop, &counters, log_queries)
    })?;
    // The socket has moved to the worker; once its table is its own, this table's entry is
    // closed, so the socket closes when the worker ends. (An error: the worker is gone.)
    if table_rx.recv() == Ok(true) {
        fdtable::close_spawner_copy(fd);
    }
    Ok(Worker {
        thread,
        socket: waker,
    })
}

/// What a worker keeps per packet of a batch besides the receive buffer, side by side: the
/// first packets' slots share cache lines, and a worker that wakes for a packet or two (as
/// it does at moderate rates) reads little else before answering.
struct PacketSlot {
    recv_iov: libc::iovec,
    send_iov: libc::iovec,
    /// The client's address: written by the receive, read by the send.
    addr: libc::sockaddr_storage,
    /// The question name as scanned ahead of the answer to prefetch it (a candidate until
    /// the look-up finds it or it is checked: `query::scan_question_name`), and its hash.
    name: LowerName,
    hash: u64,
    named: bool,
    /// The response to anything the fast path declines, built by the responder (the fast
    /// path answers over the query, in the receive buffer).
    out: Vec<u8>,
}

/// A worker's batch: the message headers (arrays, as `recvmmsg`/`sendmmsg` take them) and
/// the per-packet slots in one allocation, the receive buffers in another.
struct Batch {
    recv_hdrs: [libc::mmsghdr; BATCH],
    send_hdrs: [libc::mmsghdr; BATCH],
    slots: [PacketSlot; BATCH],
    recv_bufs: Vec<[u8; RECV_STRIDE]>,
    /// On a wildcard socket: each datagram's destination as the kernel reports it, and the
    /// answers' source addresses (`super::pktinfo`). Unused (not given to the kernel) on a
    /// socket bound to one address.
    wildcard: bool,
    recv_control: [ControlBuffer; BATCH],
    send_control: [ControlBuffer; BATCH],
}

impl Batch {
    fn new(wildcard: bool) -> Box<Batch> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zeroed_hdr: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        let slot = || PacketSlot {
            recv_iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            send_iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            // SAFETY: all-zero is a valid sockaddr_storage.
            addr: unsafe { MaybeUninit::zeroed().assume_init() },
            name: LowerName::new(),
            hash: 0,
            named: false,
            out: Vec::with_capacity(RECV_BUFFER),
        };
        let mut batch = Box::new(Batch {
            recv_hdrs: [zeroed_hdr; BATCH],
            send_hdrs: [zeroed_hdr; BATCH],
            slots: std::array::from_fn(|_| slot()),
            recv_bufs: vec![[0u8; RECV_STRIDE]; BATCH],
            wildcard,
            recv_control: [ControlBuffer::new(); BATCH],
            send_control: [ControlBuffer::new(); BATCH],
        });
        batch.wire();
        batch
    }

    /// Points every receive header at its buffers, once: the batch is boxed, so the
    /// addresses stay put for the thread's life.
    fn wire(&mut self) {
        for i in 0..BATCH {
            let slot = &mut self.slots[i];
            slot.recv_iov.iov_base = self.recv_bufs[i].as_mut_ptr().cast();
            slot.recv_iov.iov_len = RECV_BUFFER;
            let hdr = &mut self.recv_hdrs[i].msg_hdr;
            hdr.msg_name = (&mut slot.addr as *mut libc::sockaddr_storage).cast();
            hdr.msg_iov = &mut slot.recv_iov;
            hdr.msg_iovlen = 1;
            if self.wildcard {
                hdr.msg_control = self.recv_control[i].0.as_mut_ptr().cast();
            } else {
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
            }
        }
        self.rearm(BATCH);
    }

    /// Resets the sizes the kernel rewrote in the headers of the last `used` messages (of
    /// the address and, on a wildcard socket, the control data). `msg_len` and `msg_flags`
    /// are only written by the kernel, for each message it fills.
    fn rearm(&mut self, used: usize) {
        for hdr in &mut self.recv_hdrs[..used] {
            hdr.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if self.wildcard {
                hdr.msg_hdr.msg_controllen = std::mem::size_of::<ControlBuffer>() as _;
            }
        }
    }
}

/// The length of a packet as received; `None` when the kernel cut it short (larger than any
/// query we take: dropped, since what is left cannot be read correctly).
fn received_len(hdr: &libc::mmsghdr) -> Option<usize> {
    if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
        return None;
    }
    Some((hdr.msg_len as usize).min(RECV_BUFFER))
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
    counters: &Counters,
    log_queries: bool,
) {
    // Caches: between reloads, a batch's look at the current snapshot and access list is
    // one pointer comparison each (no debt-list traffic), which counts when a worker wakes
    // for a single packet.
    let mut snapshots = Cache::new(snapshots);
    let mut acl = Cache::new(acl);
    let fd = socket.as_raw_fd();
    let wildcard = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .is_some_and(|a| a.ip().is_unspecified());
    let mut batch = Batch::new(wildcard);
    let mut responder = Responder::new();
    let mut used = 0;
    loop {
        batch.rearm(used);
        used = 0;
        // SAFETY: the headers point at buffers owned by `batch`, alive for the call. The
        // system call directly: libc's wrapper adds pthread cancellation bookkeeping around
        // it, which this thread (never cancelled) pays on every wake-up for nothing.
        let received = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                fd,
                batch.recv_hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
        // The stop flag is looked at only when a receive comes back empty or failed, as it
        // does once the socket is shut down: one shared line less to read per wake-up.
        if received <= 0 || batch.recv_hdrs[0].msg_len == 0 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if received < 0 {
                receive_failed();
                continue;
            }
        }
        used = received as usize;
        let snapshot: &Snapshot = snapshots.load();
        let acl: &QueryAcl = acl.load();
        let index = snapshot.index();
        read_question_names(index, &mut batch, used);
        for slot in &batch.slots[..used.min(NODE_AHEAD)] {
            slot.prefetch_node(index);
        }
        let mut to_send = 0;
        for i in 0..used {
            // Keep the look-ups a fixed distance ahead of the answers (see `NODE_AHEAD`).
            if i + SLOT_AHEAD < used {
                batch.slots[i + SLOT_AHEAD].prefetch_slot(index);
            }
            if i + NODE_AHEAD < used {
                batch.slots[i + NODE_AHEAD].prefetch_node(index);
            }
            let Some(packet_len) = received_len(&batch.recv_hdrs[i]) else {
                counters.count_as_sole_writer(Outcome::Dropped);
                continue;
            };
            let destination = if batch.wildcard {
                pktinfo::destination(&batch.recv_hdrs[i].msg_hdr)
            } else {
                Destination::Unknown
            };
            if destination == Destination::NotUnicast {
                counters.count_as_sole_writer(Outcome::Dropped);
                continue;
            }
            let slot = &mut batch.slots[i];
            let allowed =
                acl.allows_all() || source_ip(&slot.addr).is_some_and(|ip| acl.allows(ip));
            // The common query is answered over itself in the receive buffer. Not when
            // queries are logged: the log reads the query after the answer is written.
            let common = if allowed && slot.named && !log_queries {
                fastpath::answer_common(
                    snapshot,
                    index,
                    &mut batch.recv_bufs[i],
                    packet_len,
                    &slot.name,
                    slot.hash,
                )
            } else {
                Common::Declined
            };
            // The query, for the responder: untouched unless the fast path answered it.
            let packet = &batch.recv_bufs[i][..packet_len];
            let verdict = if common != Common::Declined {
                Verdict::Send
            } else if !allowed {
                responder.refuse(snapshot, packet, &mut slot.out)
            } else if slot.named && slot.name.is_well_formed() {
                // Not a common query, but its name was read: the responder goes on from it.
                responder.respond_prepared(
                    snapshot,
                    packet,
                    Transport::Udp,
                    &mut slot.out,
                    &mut slot.name,
                    slot.hash,
                    || source_ip(&slot.addr),
                )
            } else {
                // The prefetch pass could not read a question name, or read one that is not
                // (a label holding a zero byte): the full parse decides how to answer or fail
                // (or answers a query that asks only for a cookie).
                let client = source_ip(&slot.addr);
                responder.respond_from(snapshot, packet, Transport::Udp, client, &mut slot.out)
            };
            if log_queries {
                log_query(packet, slot);
            }
            if verdict == Verdict::Drop {
                counters.count_as_sole_writer(Outcome::Dropped);
                continue;
            }
            // The fast path answers over the query and says what it wrote; anything else is
            // in `out`, and read back from its header.
            let outcome = match common {
                Common::Answered { len, kind } => {
                    slot.point_send_at(&mut batch.recv_bufs[i][..len]);
                    match kind {
                        Kind::Data => Outcome::Answer,
                        Kind::NoData => Outcome::NoData,
                        Kind::NxDomain => Outcome::NxDomain,
                    }
                }
                Common::Declined => {
                    slot.point_send_at_response();
                    Outcome::of_response(&slot.out)
                }
            };
            counters.count_as_sole_writer(outcome);
            let hdr = &mut batch.send_hdrs[to_send].msg_hdr;
            hdr.msg_name = (&mut slot.addr as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = batch.recv_hdrs[i].msg_hdr.msg_namelen;
            hdr.msg_iov = &mut slot.send_iov;
            hdr.msg_iovlen = 1;
            if let Destination::Local { address, ifindex } = destination {
                let control = &mut batch.send_control[to_send];
                hdr.msg_controllen = pktinfo::write_source(control, address, ifindex) as _;
                hdr.msg_control = control.0.as_mut_ptr().cast();
            } else if batch.wildcard {
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
            }
            to_send += 1;
        }
        send_all(fd, &mut batch.send_hdrs[..to_send]);
    }
}

#[cold]
#[inline(never)]
fn log_query(packet: &[u8], slot: &PacketSlot) {
    if let Some(ip) = source_ip(&slot.addr) {
        super::log_query(ip, "udp", packet, &slot.out);
    }
}

#[cold]
#[inline(never)]
fn receive_failed() {
    let error = io::Error::last_os_error();
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => {}
        _ => {
            tracing::warn!(%error, "UDP receive failed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// How many packets ahead of the one being answered its node's first lines are asked for,
/// and (twice as far) its index slot: a look-up is two dependent cache misses (slot, then
/// node), each costing more than the rest of an answer's work, and at this distance they
/// complete while earlier packets are answered. Asking for a whole batch's at once instead
/// left the node step at ~350 cycles per packet at saturation, against ~70
/// when every query asks for one of a few hot names (time stamps around each step) — more
/// misses in flight than the core keeps, we think. Kept this far ahead: server user time at
/// saturation 0.19–0.22 µs per query instead of 0.20–0.27 (three alternations).
const NODE_AHEAD: usize = 4;
const SLOT_AHEAD: usize = 2 * NODE_AHEAD;

impl PacketSlot {
    /// Points the send buffer at the response just written into `out`.
    #[inline(always)]
    fn point_send_at_response(&mut self) {
        // The length on its own: read together with the pointer beside it (one 16-byte load,
        // as the compiler otherwise merges them), it waits for the responder's store of the
        // length to reach the cache, since a load only half covered by a store in flight is
        // not forwarded (~10% of the UDP loop's samples at saturation, perf).
        let len = std::hint::black_box(self.out.len());
        self.send_iov.iov_base = self.out.as_mut_ptr().cast();
        self.send_iov.iov_len = len;
    }

    /// Points the send buffer at a response written elsewhere (over the query, in the
    /// receive buffer, which stays untouched until the batch is sent).
    #[inline(always)]
    fn point_send_at(&mut self, response: &mut [u8]) {
        self.send_iov.iov_base = response.as_mut_ptr().cast();
        self.send_iov.iov_len = response.len();
    }

    #[inline(always)]
    fn prefetch_slot(&self, index: &NameIndex) {
        if self.named {
            index.prefetch_slot(self.hash);
        }
    }

    #[inline(always)]
    fn prefetch_node(&self, index: &NameIndex) {
        if self.named {
            index.prefetch_node(self.hash);
        }
    }
}

/// Scans and hashes every packet's question name, ahead of the answers, so that look-ups can
/// be started ahead of them; the first packets' index slots are asked for as soon as their
/// names are hashed, so that the first miss overlaps reading the next names.
fn read_question_names(index: &NameIndex, batch: &mut Batch, used: usize) {
    for i in 0..used {
        let slot = &mut batch.slots[i];
        let hash = received_len(&batch.recv_hdrs[i]).and_then(|packet_len| {
            scan_question_name(
                &batch.recv_bufs[i],
                packet_len,
                &mut slot.name,
                index.hasher(),
            )
        });
        slot.named = hash.is_some();
        if let Some(hash) = hash {
            slot.hash = hash;
            if i < SLOT_AHEAD {
                slot.prefetch_slot(index);
            }
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
        // SAFETY: the headers point at buffers owned by the caller's batch. (The system call
        // directly, as for the receive.)
        let n = unsafe {
            libc::syscall(
                libc::SYS_sendmmsg,
                fd,
                rest.as_mut_ptr(),
                rest.len() as libc::c_uint,
                0,
            )
        };
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
