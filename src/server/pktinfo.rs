//! Answering from the address a query was sent to, on UDP sockets bound to a wildcard address
//! (`0.0.0.0`, `::`).
//!
//! A wildcard socket receives for every local address, but the kernel picks a reply's source
//! address from the route back to the client, which on a host with several addresses (a
//! service address beside the interface's own, an anycast address on the loopback device,
//! several IPv6 addresses) need not be the address the client asked: a resolver then takes the
//! answer for someone else's and drops it. So, as NSD, Knot DNS and Unbound do, such a socket
//! asks for each datagram's destination (`IP_PKTINFO`, `IPV6_RECVPKTINFO`) and each answer
//! names it as its source (`IP_PKTINFO`, `IPV6_PKTINFO` control messages). The interface is
//! left to routing, except for IPv6 link-local destinations, which only mean something on
//! the interface they came in on. A datagram sent to a broadcast or multicast address is not
//! answered: one forged query would otherwise draw answers from every server on the segment.
//!
//! Sockets bound to one address need none of this (the source is that address) and pay
//! nothing for it: no control buffers are given to the kernel.

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use socket2::Socket;

/// Room for one `in6_pktinfo` control message (the larger of the two) with its header, in
/// the alignment the kernel writes control messages with.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct ControlBuffer(pub [u8; 64]);

impl ControlBuffer {
    pub const fn new() -> Self {
        ControlBuffer([0; 64])
    }
}

/// Asks the kernel for each datagram's destination on a wildcard socket.
pub fn enable(socket: &Socket, ipv6: bool) -> std::io::Result<()> {
    let (level, option) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    let on: libc::c_int = 1;
    // SAFETY: the option value is a c_int, passed with its size; the descriptor is open.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Where a datagram was sent, as the answer must come from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Answer from this address (on this interface, for IPv6 link-local; else 0).
    Local { address: IpAddr, ifindex: u32 },
    /// A broadcast or multicast destination: not to be answered.
    NotUnicast,
    /// The kernel said nothing: answer without a control message.
    Unknown,
}

/// Reads the destination from the control messages the kernel wrote into `hdr`'s buffer.
pub fn destination(hdr: &libc::msghdr) -> Destination {
    // `size_t` here, `socklen_t` in other C libraries.
    #[allow(clippy::unnecessary_cast)]
    let control_len = hdr.msg_controllen as usize;
    if hdr.msg_control.is_null() || control_len < size_of::<libc::cmsghdr>() {
        return Destination::Unknown;
    }
    // SAFETY: `hdr` was filled by recvmmsg: its control buffer holds `msg_controllen` bytes of
    // well-formed control messages, which the CMSG macros walk within that length.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let len = (*cmsg).cmsg_len as usize;
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if len >= libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize =>
                {
                    let info: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                    let local = Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr));
                    let header = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                    // Equal for unicast; a broadcast has the broadcast address in the header
                    // and the interface's address as the local one.
                    if local != header || header.is_multicast() || header.is_broadcast() {
                        return Destination::NotUnicast;
                    }
                    return Destination::Local {
                        address: IpAddr::V4(local),
                        ifindex: 0,
                    };
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if len >= libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize =>
                {
                    let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    let address = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    if address.is_multicast() {
                        return Destination::NotUnicast;
                    }
                    let link_local = address.segments()[0] & 0xffc0 == 0xfe80;
                    return Destination::Local {
                        address: IpAddr::V6(address),
                        ifindex: if link_local { info.ipi6_ifindex } else { 0 },
                    };
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    Destination::Unknown
}

/// Writes the control message that sends an answer from `address` into `buffer`; returns
/// its length (for `msg_controllen`).
pub fn write_source(buffer: &mut ControlBuffer, address: IpAddr, ifindex: u32) -> usize {
    buffer.0 = [0; 64];
    let mut hdr: libc::msghdr = zeroed_msghdr();
    hdr.msg_control = buffer.0.as_mut_ptr().cast();
    hdr.msg_controllen = buffer.0.len() as _;
    // SAFETY: the buffer is 64 bytes, 8-aligned: room for one header and an in6_pktinfo
    // (CMSG_SPACE(20) = 40), so the first header and its data lie inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&hdr);
        if cmsg.is_null() {
            return 0;
        }
        match address {
            IpAddr::V4(v4) => {
                (*cmsg).cmsg_level = libc::IPPROTO_IP;
                (*cmsg).cmsg_type = libc::IP_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(v4).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
                libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize
            }
            IpAddr::V6(v6) => {
                (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
                (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: v6.octets(),
                    },
                    ipi6_ifindex: ifindex,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
                libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize
            }
        }
    }
}

fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    unsafe { std::mem::MaybeUninit::zeroed().assume_init() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A received header whose control buffer holds what `write_source` wrote, as the kernel
    /// would deliver it for a datagram sent to `address`.
    fn received(buffer: &mut ControlBuffer, len: usize) -> libc::msghdr {
        let mut hdr = zeroed_msghdr();
        hdr.msg_control = buffer.0.as_mut_ptr().cast();
        hdr.msg_controllen = len as _;
        hdr
    }

    #[test]
    fn an_ipv6_destination_reads_back_with_the_interface_only_when_link_local() {
        for (text, ifindex, want_ifindex) in [("2001:db8::53", 7, 0), ("fe80::1", 7, 7)] {
            let address: IpAddr = text.parse().unwrap();
            let mut buffer = ControlBuffer::new();
            let len = write_source(&mut buffer, address, ifindex);
            assert_eq!(len, 40, "CMSG_SPACE(in6_pktinfo)");
            let hdr = received(&mut buffer, len);
            assert_eq!(
                destination(&hdr),
                Destination::Local {
                    address,
                    ifindex: want_ifindex
                }
            );
        }
        let mut buffer = ControlBuffer::new();
        let len = write_source(&mut buffer, "ff02::1".parse().unwrap(), 0);
        assert_eq!(
            destination(&received(&mut buffer, len)),
            Destination::NotUnicast
        );
    }

    #[test]
    fn an_ipv4_source_is_the_local_address_and_broadcasts_are_refused() {
        let mut buffer = ControlBuffer::new();
        let len = write_source(&mut buffer, "192.0.2.53".parse().unwrap(), 0);
        assert_eq!(len, 32, "CMSG_SPACE(in_pktinfo)");
        // What we write has ipi_addr 0: read back, it is not the header's address.
        assert_eq!(
            destination(&received(&mut buffer, len)),
            Destination::NotUnicast
        );
        // As the kernel delivers a unicast datagram: both addresses the same.
        let data = 16; // after the 16-byte cmsghdr
        buffer.0[data + 8..data + 12].copy_from_slice(&[192, 0, 2, 53]);
        assert_eq!(
            destination(&received(&mut buffer, len)),
            Destination::Local {
                address: "192.0.2.53".parse().unwrap(),
                ifindex: 0
            }
        );
        let empty = received(&mut ControlBuffer::new(), 0);
        assert_eq!(destination(&empty), Destination::Unknown);
    }
}
