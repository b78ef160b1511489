//! Reading files vigil did not write itself (the config, inbox letters, state files a
//! stranger may have replaced): regular files only, opened without blocking (a FIFO in
//! their place is refused, not waited on), and bounded, so no file can hang vigil or
//! fill its memory; and the canonical form of a path, so one place reached two ways
//! is one place. Writes only [`replace_public`], for files vigil publishes outside its
//! state dir (the metrics file).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

/// `path` with every symlink resolved, so that one project reached through two paths
/// (`app` and `alias -> app`) is one project with one state dir and one lock. The part of
/// the path that does not exist yet (a state dir about to be made) is kept as written,
/// after the longest prefix that does exist has been resolved.
pub fn canonical(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut missing = Vec::new();
    let mut existing = abs.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return missing.iter().rev().fold(real, |p: PathBuf, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Replaces `path` with `bytes`, readable by everyone (`0644`): written to a hidden
/// temp file beside it (created new, never through a link) and renamed over it, so a
/// reader sees the old file or the new one, never half. Not fsynced: a file rewritten
/// every pass is worth less than the disk time. A directory at `path` is an error.
pub fn replace_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        // The umask may have taken read bits a collector running as another user needs.
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.write_all(bytes)?;
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "a directory stands there",
            ));
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether a symlink at the path itself may be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// The user's own files (`vigil.toml` may well be a symlink into a dotfiles repo).
    Follow,
    /// Files inside the state dir: a symlink there was not put there by vigil.
    Refuse,
}

/// The whole content of the regular file at `path`, at most `limit` bytes. A FIFO,
/// socket, device or directory is an `InvalidInput` error that names what it is; a file
/// over the limit is an `InvalidData` error; neither blocks.
pub fn read_regular(path: &Path, limit: u64, links: Links) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path, links)?;
    let meta = file.metadata()?;
    if meta.len() > limit {
        return Err(too_big(meta.len(), limit));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// The regular file at `path`, opened for reading without blocking; anything else (a
/// FIFO, a device, a directory; a symlink when `links` refuses them) is an error that
/// says what stands there.
pub fn open_regular(path: &Path, links: Links) -> std::io::Result<std::fs::File> {
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if links == Links::Refuse {
        flags |= OFlags::NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what = kind_of(&meta.file_type());
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what}, not a regular file"),
        ));
    }
    Ok(file)
}

fn too_big(size: u64, limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{size} bytes, more than the {limit} allowed"),
    )
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let err = read_regular(&fifo, 1024, Links::Follow).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("a FIFO"), "{err}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        assert_eq!(
            read_regular(&big, 1024, Links::Follow).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(read_regular(&big, 4096, Links::Follow).unwrap().len(), 2048);
    }

    #[test]
    fn a_symlink_is_followed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), "hi").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert_eq!(
            read_regular(&dir.path().join("link"), 10, Links::Follow).unwrap(),
            b"hi"
        );
        assert!(read_regular(&dir.path().join("link"), 10, Links::Refuse).is_err());
    }
}
