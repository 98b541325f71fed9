//! Reading the files of one directory through the directory's own descriptor.
//!
//! A zones directory may hold 100,000 templates, and reading them was about a third of a
//! start-up's time on one core (`read_ms` in the `serving on` log line). Read by path, a file
//! costs six system calls (a `stat` of the entry, then `open` with a walk of the whole path,
//! `statx` for the size, a read, a read that finds the end, `close`). Here it costs four:
//! `openat` of the bare name relative to the open directory, `statx` of the open file (which
//! is also the stamp the template cache keys on, taken from the very file whose text is read),
//! one read sized by it, `close`.

use std::ffi::{CString, OsStr};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An open directory, whose files are opened by name relative to it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// A file opened in a [`Dir`]: its metadata as the open file reports it.
#[derive(Debug)]
pub struct OpenFile {
    file: File,
    pub metadata: Metadata,
}

impl Dir {
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = open_at(libc::AT_FDCWD, path.as_os_str(), libc::O_DIRECTORY)?;
        Ok(Dir { fd })
    }

    /// Opens the entry `name` of this directory, following a symbolic link (templates may
    /// be links, as a Kubernetes ConfigMap mounts them). A FIFO is opened without waiting
    /// for a writer, so that the caller can see from the metadata that it is not a file.
    pub fn open_file(&self, name: &OsStr) -> io::Result<OpenFile> {
        let fd = open_at(self.fd.as_raw_fd(), name, libc::O_NONBLOCK | libc::O_NOCTTY)?;
        let file = File::from(fd);
        let metadata = file.metadata()?;
        Ok(OpenFile { file, metadata })
    }
}

impl OpenFile {
    /// The file's text, read in one call where the file still has the size its metadata
    /// gave: a regular file returns fewer bytes than asked only at its end, so a read of one
    /// byte more than that size that returns exactly the size has read the whole file. A file
    /// that grew meanwhile is read on to its end.
    pub fn read_text(mut self) -> io::Result<String> {
        let expected = usize::try_from(self.metadata.len()).unwrap_or(usize::MAX);
        let mut bytes = vec![0; expected.saturating_add(1).min(1 << 20)];
        let first = loop {
            match self.file.read(&mut bytes) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        bytes.truncate(first);
        if first != expected {
            self.file.read_to_end(&mut bytes)?;
        }
        String::from_utf8(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        })
    }
}

/// `openat(dir, name, O_RDONLY | O_CLOEXEC | flags)`.
fn open_at(dir: libc::c_int, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file name contains NUL"))?;
    loop {
        // SAFETY: `name` is a NUL-terminated string alive for the call; the result is checked
        // before it is owned.
        let fd =
            unsafe { libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | flags) };
        if fd >= 0 {
            // SAFETY: a descriptor just opened, owned by nothing else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_links_and_tells_other_entries_apart() {
        let dir = tempfile::tempdir().unwrap();
        let text = "mcc = \"001\"\n".repeat(300);
        std::fs::write(dir.path().join("a.toml"), &text).unwrap();
        std::fs::write(dir.path().join("empty.toml"), "").unwrap();
        std::os::unix::fs::symlink("a.toml", dir.path().join("link.toml")).unwrap();
        std::os::unix::fs::symlink("missing", dir.path().join("dangling.toml")).unwrap();
        std::fs::create_dir(dir.path().join("sub.toml")).unwrap();
        std::fs::write(dir.path().join("bad.toml"), [0xff, 0xfe]).unwrap();
        let fifo = CString::new(dir.path().join("fifo.toml").as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let open = Dir::open(dir.path()).unwrap();
        let read = |name: &str| open.open_file(OsStr::new(name));
        let a = read("a.toml").unwrap();
        assert!(a.metadata.is_file());
        assert_eq!(a.metadata.len(), text.len() as u64);
        assert_eq!(a.read_text().unwrap(), text);
        assert_eq!(read("link.toml").unwrap().read_text().unwrap(), text);
        assert_eq!(read("empty.toml").unwrap().read_text().unwrap(), "");
        assert_eq!(
            read("dangling.toml").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(read("sub.toml").unwrap().metadata.is_dir());
        // Opened without blocking, and seen not to be a file.
        assert!(!read("fifo.toml").unwrap().metadata.is_file());
        let bad = read("bad.toml").unwrap().read_text().unwrap_err();
        assert_eq!(bad.kind(), io::ErrorKind::InvalidData);
        assert!(Dir::open(&dir.path().join("a.toml")).is_err());
    }

    #[test]
    fn a_file_that_grew_after_its_stat_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "first\n").unwrap();
        let open = Dir::open(dir.path()).unwrap();
        let file = open.open_file(OsStr::new("t.toml")).unwrap();
        let grown = "first\n".to_string() + &"more\n".repeat(1000);
        std::fs::write(&path, &grown).unwrap();
        assert_eq!(file.read_text().unwrap(), grown);
    }
}
