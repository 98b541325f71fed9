//! The floor responder: the least work a UDP DNS server can do per query on the same I/O path
//! as a serious one.
//!
//! One thread, one blocking socket, `recvmmsg` (up to a batch, returning as soon as one
//! datagram is there) and `sendmmsg` back to the senders. Each answer is the query copied into
//! a response buffer with QR and AA set: no parsing, no look-up, fixed work per packet. Its CPU
//! per query is the floor under which no real server can go with this I/O path, so it is the
//! reference row of the comparison. Its answers carry the question but are not real answers:
//! check them with `bsf-bench run --lenient`.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Answers until the process is killed. Returns only on a socket error.
pub fn serve(listen: SocketAddr, batch: usize) -> io::Result<()> {
    let sock = UdpSocket::bind(listen)?;
    crate::net::enlarge_buffers(sock.as_raw_fd(), 8 << 20);
    serve_socket(&sock, batch, None)
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
}
