//! Telling the service manager how the server is doing, by systemd's notification protocol
//! (`sd_notify(3)`): `READY=1` once every socket is bound and the zone is served,
//! `RELOADING=1` and `READY=1` around each reload, `STOPPING=1` at shutdown, and a `STATUS=`
//! line that `systemctl status` shows (operators and serial served, or why a reload was
//! rejected). With `Type=notify`, systemd starts the units ordered after bsf-dns only once it
//! answers and shows the unit reloading while a reload runs; with `Type=notify-reload`
//! (systemd 253 and later) it also sends the SIGHUP itself and `systemctl reload` returns only
//! once the reload is done.
//!
//! Only when `$NOTIFY_SOCKET` names a socket (systemd sets it for `Type=notify` services): an
//! absolute path, or `@name` for an abstract socket. Otherwise every call does nothing.
//! Messages are single datagrams; a failed send is logged at debug level and otherwise
//! ignored, as `sd_notify` does: the service manager's trouble must not stop the server.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;

/// Where notifications go, read from the environment once.
struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
}

fn notifier() -> Option<&'static Notifier> {
    static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();
    NOTIFIER
        .get_or_init(|| {
            let value = std::env::var_os("NOTIFY_SOCKET")?;
            let to = address(value.to_str()?)?;
            let socket = UnixDatagram::unbound().ok()?;
            Some(Notifier { socket, to })
        })
        .as_ref()
}

/// The socket address `$NOTIFY_SOCKET` names, if it is one systemd would use.
fn address(value: &str) -> Option<SocketAddr> {
    if let Some(name) = value.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes()).ok()
    } else if value.starts_with('/') {
        SocketAddr::from_pathname(value).ok()
    } else {
        None
    }
}

fn send(message: &str) {
    if let Some(notifier) = notifier() {
        if let Err(error) = notifier
            .socket
            .send_to_addr(message.as_bytes(), &notifier.to)
        {
            tracing::debug!(%error, "cannot notify the service manager");
        }
    }
}

/// A status line fit for `STATUS=`: one line (the protocol is newline-separated).
fn one_line(status: &str) -> String {
    status.lines().next().unwrap_or_default().to_string()
}

/// The status of a server serving this zone.
pub fn serving(operators: usize, serial: u32) -> String {
    let noun = if operators == 1 {
        "operator"
    } else {
        "operators"
    };
    format!("serving {operators} {noun}, serial {serial}")
}

/// The server answers queries now.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={}", one_line(status)));
}

/// A reload starts. `MONOTONIC_USEC` is what systemd 253 and later ask of a reloading
/// service (it tells this reload from an earlier one).
pub fn reloading() {
    send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
}

/// Shutdown has begun.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=stopping");
}

fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
    }
    (now.tv_sec as u64) * 1_000_000 + (now.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_absolute_paths_or_abstract_names() {
        let path = address("/run/systemd/notify").expect("a path");
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        use std::os::linux::net::SocketAddrExt;
        let abstract_name = address("@bsf-dns/notify").expect("an abstract name");
        assert_eq!(
            abstract_name.as_abstract_name(),
            Some(&b"bsf-dns/notify"[..])
        );
        assert!(address("relative/path").is_none());
        assert!(address("").is_none());
    }

    #[test]
    fn a_status_is_one_line_and_the_clock_moves_on() {
        assert_eq!(serving(1, 7), "serving 1 operator, serial 7");
        assert_eq!(serving(3223, 7), "serving 3223 operators, serial 7");
        assert_eq!(
            one_line("rejected: a.toml:3: bad\nmore"),
            "rejected: a.toml:3: bad"
        );
        let first = monotonic_usec();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(monotonic_usec() >= first + 2_000);
    }
}
