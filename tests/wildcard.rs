//! Listening on wildcard addresses (`0.0.0.0:PORT`, `[::]:PORT`), as an operator's host with
//! several addresses does: every UDP answer must come from the address its query was sent to,
//! or a resolver (whose socket is connected to the server's address, or which checks the
//! source) drops it. All of 127.0.0.0/8 is local on Linux, so queries to 127.0.0.2 and
//! 127.0.0.53 stand for a host's second and third addresses.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// bsf-dns on the bundled zones, listening on both wildcard addresses; ready once it answers.
fn start_wildcard(port: u16, threads: &str) -> Result<(Guard, tempfile::TempDir), String> {
    let dir = tempfile::tempdir().expect("log dir");
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--zones"])
        .arg(bundled_zones())
        .args(["--listen", &format!("0.0.0.0:{port}")])
        .args(["--listen", &format!("[::]:{port}")])
        .args(["--threads", threads]);
    let mut guard = spawn(&format!("bsf-dns-wildcard-{port}"), command, dir.path());
    let deadline = Instant::now() + Duration::from_secs(20);
    let probe = query_bytes("lwm2m.org.", RecordType::SOA, None);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = guard.child.try_wait() {
            return Err(format!("exited early ({status}):\n{}", guard.log_text()));
        }
        if udp_exchange(SocketAddr::from(([127, 0, 0, 1], port)), &probe, 200).is_some() {
            return Ok((guard, dir));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("bsf-dns did not answer within 20 s:\n{}", guard.log_text());
}

/// Asks over a UDP socket connected to `server`: the kernel delivers only datagrams whose
/// source is exactly that address and port.
fn ask_connected(server: SocketAddr) -> Option<Message> {
    let bind: SocketAddr = if server.is_ipv6() {
        "[::1]:0".parse().ok()?
    } else {
        "127.0.0.1:0".parse().ok()?
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(server).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let query = query_bytes("bsf.mnc460.mcc313.lwm2m.org.", RecordType::A, Some(1232));
    socket.send(&query).ok()?;
    let mut buf = [0u8; 1500];
    let len = socket.recv(&mut buf).ok()?;
    let answer = Message::from_vec(&buf[..len]).ok()?;
    assert_eq!(&buf[..2], &query[..2], "the query's ID");
    Some(answer)
}

#[test]
fn answers_come_from_the_address_each_query_was_sent_to() {
    for threads in ["1", "2"] {
        let (guard, _dir) = on_free_port(|port| {
            start_wildcard(port, threads).map(|(guard, dir)| ((guard, port), dir))
        });
        let (mut guard, port) = guard;
        for server in [
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 2], port)),
            SocketAddr::from(([127, 0, 0, 53], port)),
            "[::1]:0"
                .parse::<SocketAddr>()
                .map(|mut a| {
                    a.set_port(port);
                    a
                })
                .unwrap(),
        ] {
            // Several queries: with two threads, different source ports reach both workers.
            for attempt in 0..4 {
                let answer = ask_connected(server).unwrap_or_else(|| {
                    panic!(
                        "no answer from {server} (threads {threads}, query {attempt}): it came from another address, or not at all\n{}",
                        guard.log_tail()
                    )
                });
                assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
                assert!(matches!(
                    answer.answers.first().map(|r| &r.data),
                    Some(RData::A(a)) if a.0.octets() == [192, 0, 2, 10]
                ));
            }
        }
        guard.assert_running();
    }
}
