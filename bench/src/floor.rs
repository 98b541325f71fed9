//! The floor responder: the least work a UDP DNS server can do per query on the same I/O path
//! as a serious one.
//!
//! One thread per socket, blocking, `recvmmsg` (up to a batch, returning as soon as one
//! datagram is there) and `sendmmsg` back to the senders. Several threads each have their own
//! socket on the address (`SO_REUSEPORT`), as bsf-dns's do, so that the two can be compared at
//! any thread count. Each answer is the query copied into a response buffer with QR and AA
//! set: no parsing, no look-up, fixed work per packet. Its CPU per query is the floor under
//! which no real server can go with this I/O path, so it is the reference row of the
//! comparison. Its answers carry the question but are not real answers: check them with
//! `bsf-bench run --lenient`.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Answers until the process is killed, on `threads` threads (named `floor-0`, `floor-1`, …,
/// so that per-thread CPU reads like bsf-dns's `udp-N`). Returns only on a socket error, as
/// soon as any thread meets one.
pub fn serve(listen: SocketAddr, batch: usize, threads: usize) -> io::Result<()> {
    let (done, first) = mpsc::channel();
    spawn_on(bind_group(listen, threads)?, batch, done)?;
    first
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("every floor thread ended")))
}

/// Starts a thread answering on each socket; each sends its loop's end (an error) on `done`.
pub fn spawn_on(
    socks: Vec<UdpSocket>,
    batch: usize,
    done: mpsc::Sender<io::Result<()>>,
) -> io::Result<Vec<JoinHandle<()>>> {
    socks
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let done = done.clone();
            std::thread::Builder::new()
                .name(format!("floor-{i}"))
                .spawn(move || {
                    // The receiver is gone only once nobody waits any more: nothing to tell.
                    let _ = done.send(serve_socket(&sock, batch, None));
                })
        })
        .collect()
}

/// `count` (at least one) UDP sockets on `listen`, with large buffers. Several share the
/// address with `SO_REUSEPORT` (only then, as bsf-dns does: a group of one would add the
/// kernel's hashing to every datagram); port 0 picks one port for all of them.
pub fn bind_group(listen: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let shared = count > 1;
    let first = bind(listen, shared)?;
    let addr = first.local_addr()?;
    let mut socks = vec![first];
    for _ in 1..count {
        socks.push(bind(addr, shared)?);
    }
    Ok(socks)
}

fn bind(listen: SocketAddr, shared: bool) -> io::Result<UdpSocket> {
    let sock = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if shared {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&SockAddr::from(listen))?;
    crate::net::enlarge_buffers(sock.as_raw_fd(), 8 << 20);
    Ok(sock.into())
}

/// The receive/answer loop on an already bound socket. `limit`: stop after that many
/// datagrams (for tests).
pub fn serve_socket(sock: &UdpSocket, batch: usize, limit: Option<u64>) -> io::Result<()> {
    const SIZE: usize = 4096;
    let batch = batch.clamp(1, 1024);
    let fd = sock.as_raw_fd();
    let mut rbuf = vec![0u8; batch * SIZE];
    let mut wbuf = vec![0u8; batch * SIZE];
    // SAFETY (all three): plain C structs for which all-zero bytes are a valid value.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; batch];
    let mut iov: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; batch];
    let mut hdr: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch];
    let mut handled: u64 = 0;
    loop {
        for i in 0..batch {
            iov[i] = libc::iovec {
                iov_base: rbuf[i * SIZE..].as_mut_ptr().cast(),
                iov_len: SIZE,
            };
            // SAFETY: all-zero is a valid msghdr.
            hdr[i] = unsafe { std::mem::zeroed() };
            hdr[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr[i].msg_hdr.msg_iov = &mut iov[i];
            hdr[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at its own address slot and its own SIZE-byte window of
        // rbuf, all alive for the call. MSG_WAITFORONE: block for the first datagram only.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                hdr.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = r as usize;
        // Build answers in place of the receive headers: same address, new buffer.
        let mut out = 0;
        for i in 0..n {
            let len = (hdr[i].msg_len as usize).min(SIZE);
            if len < 12 {
                continue; // not even a header: drop, as a server would
            }
            let src = &rbuf[i * SIZE..i * SIZE + len];
            let dst = &mut wbuf[out * SIZE..out * SIZE + len];
            dst.copy_from_slice(src);
            dst[2] |= 0x84; // QR, AA
            dst[3] &= 0x70; // RA=0, RCODE=0 (keep Z/AD/CD as sent)
            let namelen = hdr[i].msg_hdr.msg_namelen;
            if out != i {
                addrs[out] = addrs[i];
            }
            iov[out] = libc::iovec {
                iov_base: dst.as_mut_ptr().cast(),
                iov_len: len,
            };
            // SAFETY: all-zero is a valid msghdr.
            hdr[out] = unsafe { std::mem::zeroed() };
            hdr[out].msg_hdr.msg_name = (&mut addrs[out] as *mut libc::sockaddr_storage).cast();
            hdr[out].msg_hdr.msg_namelen = namelen;
            hdr[out].msg_hdr.msg_iov = &mut iov[out];
            hdr[out].msg_hdr.msg_iovlen = 1;
            out += 1;
        }
        let mut done = 0;
        while done < out {
            // SAFETY: hdr[done..out] point at live addresses and wbuf windows.
            let s = unsafe {
                libc::sendmmsg(
                    fd,
                    hdr[done..].as_mut_ptr(),
                    (out - done) as libc::c_uint,
                    0,
                )
            };
            if s < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // A send error concerns one datagram (e.g. the client's port is gone): skip it.
                done += 1;
                continue;
            }
            done += s as usize;
        }
        handled += n as u64;
        if limit.is_some_and(|l| handled >= l) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn echoes_with_qr_and_aa() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || serve_socket(&server, 8, Some(2)));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (mut q, _) =
            crate::wire::encode_query("BsF.Example", crate::wire::TYPE_A, None, &[]).unwrap();
        q[0] = 0x12;
        q[1] = 0x34;
        client.send_to(&q, addr).unwrap();
        client.send_to(&q[..5], addr).unwrap(); // dropped
        client.send_to(&q, addr).unwrap();
        let mut buf = [0u8; 512];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(n, q.len());
        assert_eq!(&buf[..2], &[0x12, 0x34]);
        assert_eq!(buf[2] & 0x84, 0x84);
        assert_eq!(&buf[12..n], &q[12..]);
        client.recv(&mut buf).unwrap();
        t.join().unwrap().unwrap();
    }

    #[test]
    fn an_address_it_cannot_bind_fails_at_once() {
        // TEST-NET-1 (RFC 5737) is on no interface here: the bind fails, nothing is sent.
        let err = serve("192.0.2.1:5399".parse().unwrap(), 8, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable, "{err}");
    }

    #[test]
    fn threads_share_one_port_and_all_answer() {
        let socks = bind_group("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = socks[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap().port(), port);
        }
        // The threads answer until the test process ends (they block in recvmmsg meanwhile).
        let (done, _ended) = mpsc::channel();
        let workers = spawn_on(socks, 8, done).unwrap();
        assert_eq!(workers.len(), 3);
        assert_eq!(workers[2].thread().name(), Some("floor-2"));
        // 64 source ports: the kernel's hash spreads them over the three sockets (all missing
        // one has a chance of ~3 × (2/3)^64, 5e-12), so every query answered means every
        // thread answers.
        let (q, _) =
            crate::wire::encode_query("bsf.example", crate::wire::TYPE_A, None, &[]).unwrap();
        let mut buf = [0u8; 512];
        for i in 0..64u16 {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut q = q.clone();
            q[..2].copy_from_slice(&i.to_be_bytes());
            client.send_to(&q, ("127.0.0.1", port)).unwrap();
            let n = client
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("query {i}: {e}"));
            assert_eq!(&buf[..2], &i.to_be_bytes());
            assert_eq!(&buf[12..n], &q[12..]);
        }
    }
}
