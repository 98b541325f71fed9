//! Giving up root once the sockets are bound (`--user`, `[server] user`): port 53 needs root
//! or `CAP_NET_BIND_SERVICE` to bind, nothing after that does, so a server started as root
//! serves as an unprivileged user, as NSD (`username`) and Knot DNS (`user`) do. Under systemd
//! the unit's `DynamicUser=` does this instead.
//!
//! The switch happens before any worker starts; glibc applies it to every thread of the
//! process. Supplementary groups are dropped, then the group, then the user, and the switch is
//! checked to be for good (root cannot be taken back). The templates and settings must be
//! readable by that user, since reloads read them after the switch.

use std::ffi::CString;

/// A user to serve as: its name, uid and primary gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks a user up in the system's user database (`getpwnam_r`).
pub fn lookup(name: &str) -> Result<Account, String> {
    let c_name = CString::new(name).map_err(|_| "the name contains a NUL byte".to_string())?;
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: all-zero is a valid passwd (null pointers); getpwnam_r fills it, pointing into
    // `buffer`, which outlives every use below.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and the buffer length is its real size.
    let code = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    if code != 0 {
        return Err(format!(
            "cannot read the user database: {}",
            std::io::Error::from_raw_os_error(code)
        ));
    }
    if found.is_null() {
        return Err("no such user".into());
    }
    Ok(Account {
        name: name.to_string(),
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

/// Switches the process to `account` for good. Running as that user already is fine.
pub fn switch_to(account: &Account) -> Result<(), String> {
    // SAFETY: plain system calls without pointers but setgroups' null list of length 0.
    unsafe {
        if libc::geteuid() == account.uid && libc::getuid() == account.uid {
            return Ok(());
        }
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(format!(
                "cannot drop supplementary groups: {} (switching users needs root)",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setgid(account.gid) != 0 {
            return Err(format!(
                "cannot switch to group {}: {}",
                account.gid,
                std::io::Error::last_os_error()
            ));
        }
        if libc::setuid(account.uid) != 0 {
            return Err(format!(
                "cannot switch to uid {}: {}",
                account.uid,
                std::io::Error::last_os_error()
            ));
        }
        if account.uid != 0 && libc::setuid(0) == 0 {
            return Err("root could be taken back after the switch".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_looked_up_by_name() {
        let root = lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup("no-such-user-bsf-dns").unwrap_err(), "no such user");
        assert!(lookup("a\0b").is_err());
    }
}
