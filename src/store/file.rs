//! The two ways the store writes: replace a whole file atomically, and append one
//! line durably. Both with owner-only permissions, and neither through a symlink: a
//! link in the state dir was not put there by vigil, so it is refused, never followed.
//! A state dir vigil did not make must be the user's own and closed to others.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::StoreError;

/// Flags every state file is opened with: never through a symlink at its own name.
const NO_LINKS: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// Makes `dir` (and any missing parent) owner-only, or checks that an existing one is
/// fit to hold vigil's mind: a real directory (not a link), owned by this user, and
/// writable by nobody else. An existing directory's mode is never changed: vigil
/// chmods only what it created.
pub fn create_dir(dir: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) => check_dir(dir, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(StoreError::io(dir)),
        Err(e) => Err(StoreError::io(dir)(e)),
    }
}

pub(super) fn check_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    let unfit = |why: String| StoreError::Unfit {
        path: dir.to_owned(),
        why,
    };
    if !meta.file_type().is_dir() {
        return Err(unfit("it is not a directory (a symlink or a file stands there)".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(unfit(format!(
            "it belongs to uid {}, not to you (uid {me}); choose a state dir of your own",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unfit(format!(
            "others may write in it (mode {mode:o}); run `chmod go-w {}` or choose another state dir",
            dir.display()
        )));
    }
    Ok(())
}

/// Opens a state file for appending (creating it 0600), never through a symlink; an
/// existing file that others may read is tightened to 0600 first.
fn open_append(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(NO_LINKS)
        .open(path)?;
    tighten(&file)?;
    Ok(file)
}

/// Narrows an existing state file to owner-only.
fn tighten(file: &File) -> std::io::Result<()> {
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Opens an existing state file for writing in place (a repair), never through a link.
pub fn open_existing(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).custom_flags(NO_LINKS).open(path)
}

/// Where `write_atomic` stages `path`: hidden, beside it, named for this process.
pub fn temp_path(path: &Path) -> std::path::PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Removes temp files that a dead writer left in `dir` (only the owner calls this).
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Replaces `path` with `bytes`: temp file in the same directory, write, fsync, rename,
/// fsync the directory. A crash leaves the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    replace(path, bytes, Durability::Synced)
}

/// Whether a replacement waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Written, synced, renamed, the directory synced: it survives a power cut.
    Synced,
    /// Written and renamed: a crash of vigil still leaves the old file or the new one,
    /// but a power cut may leave the old one, or an empty one. Only for what a reader
    /// can do without (the heartbeat) or what the journal rebuilds (a snapshot no newer
    /// in substance than the last one synced).
    Cached,
}

/// Replaces `path` with `bytes` through a temp file in the same directory, waiting for
/// the disk or not.
pub fn replace(path: &Path, bytes: &[u8], durability: Durability) -> Result<(), StoreError> {
    replace_with(path, durability, |file| file.write_all(bytes))
}

/// Replaces `path` with what `write` writes (buffered), as [`replace`] does: a large
/// file is written as it is made, never held whole in memory first.
pub fn replace_with(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let synced = durability == Durability::Synced;
    let result = (|| {
        // A new file, never one that stands there already (nor a link a stranger left).
        let _ = fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(NO_LINKS)
            .open(&tmp)?;
        let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, file);
        write(&mut buffered)?;
        let file = buffered.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        if synced {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if synced {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(StoreError::io(path))
}

/// Rewrites an existing small file in place (never through a link, never creating
/// it): on a full disk this reuses the blocks it has, where a new file would need new
/// ones. A reader may see it half-written; only the heartbeat uses it, as a fallback.
pub fn overwrite(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::FileExt;
    let result = (|| {
        // Non-blocking, so a FIFO left in its place fails instead of waiting for a reader.
        let flags = NO_LINKS | rustix::fs::OFlags::NONBLOCK.bits() as i32;
        let file = OpenOptions::new().write(true).custom_flags(flags).open(path)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        file.write_all_at(bytes, 0)?;
        file.set_len(bytes.len() as u64)?;
        file.sync_data()
    })();
    result.map_err(StoreError::io(path))
}

/// Appends raw bytes (a failpoint uses it to leave half a line behind).
pub fn append_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = open_append(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Appends one line with a single `write`, then `sync_data`, so it is on disk before
/// the caller goes on to act on it.
pub fn append_line(path: &Path, line: &str) -> Result<(), StoreError> {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let mut file = open_append(path).map_err(StoreError::io(path))?;
    file.write_all(buf.as_bytes()).map_err(StoreError::io(path))?;
    file.sync_data().map_err(StoreError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn a_symlinked_journal_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        fs::write(&target, "keep me").unwrap();
        let link = dir.path().join("journal.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(append_line(&link, "{}").is_err());
        assert!(open_existing(&link).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    fn a_state_dir_others_may_write_in_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o1777, 0o775] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let err = create_dir(dir.path()).unwrap_err().to_string();
            assert!(err.contains("others may write in it"), "{mode:o}: {err}");
            let now = fs::metadata(dir.path()).unwrap().permissions().mode() & 0o7777;
            assert_eq!(now, mode, "never re-moded");
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(dir.path()).unwrap();
    }

    #[test]
    fn a_looser_state_file_is_tightened_to_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        append_line(&path, "{}").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_state_dir_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        create_dir(&state).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
