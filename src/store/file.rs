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
        let file = create_fresh(&tmp)?;
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

/// Replaces `path` as [`replace_with`] does, for a file rewritten every pass (the
/// snapshot, the heartbeat). A version that need not wait for the disk is swapped into
/// place (`RENAME_EXCHANGE`) from a hidden spare beside it, and the version it replaces
/// becomes the spare: no inode is made or freed per pass, and ext4 does not start
/// writing back each version as it does when a rename replaces a file, so a fleet
/// rewriting its snapshot every second leaves the page cache to flush it instead of
/// writing it out each time. A version that must survive a power cut is written to a
/// new file and renamed, as [`replace_with`] does: on a full disk it fails at once
/// rather than finding room in the spare's blocks, so an owner with something new to
/// keep is degraded then, every time. Readers see the old file or the new one whole;
/// one that holds the old file open across a rewrite reads the spare being rewritten,
/// and must check what it parsed (JSON that ends in the middle does not parse). A
/// filesystem that cannot swap gets a rename.
pub fn rewrite_with(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    if durability == Durability::Synced {
        return replace_with(path, durability, write);
    }
    let spare = spare_path(path);
    let result = (|| {
        let (file, was) = match open_spare(&spare)? {
            Some(reused) => reused,
            None => (create_fresh(&spare)?, 0),
        };
        let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, file);
        write(&mut buffered)?;
        let mut file = buffered.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        // What is left of the last version past the end of this one goes.
        let written = std::io::Seek::stream_position(&mut file)?;
        if written < was {
            file.set_len(written)?;
        }
        drop(file);
        let cwd = rustix::fs::CWD;
        if rustix::fs::renameat_with(cwd, &spare, cwd, path, rustix::fs::RenameFlags::EXCHANGE).is_err() {
            // None to swap with yet, or a filesystem that cannot swap.
            fs::rename(&spare, path)?;
        }
        Ok(())
    })();
    // The spare stays on an error: on a full disk, removing it would free blocks for
    // the journal to take and lose again, and the owner would flap in and out of
    // degraded.
    result.map_err(StoreError::io(path))
}

/// A new owner-only file at `path`, never one that stands there already (nor through
/// a link a stranger left): whatever is there is removed first.
fn create_fresh(path: &Path) -> std::io::Result<File> {
    let _ = fs::remove_file(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(NO_LINKS)
        .open(path)
}

/// Where [`rewrite_with`] keeps `path`'s spare: hidden, beside it, named for this
/// process, and a temp file to a new owner's tidying.
fn spare_path(path: &Path) -> std::path::PathBuf {
    let mut spare = temp_path(path).into_os_string();
    spare.push(".spare");
    spare.into()
}

/// The spare a swap left at `spare`, with its length, to be written over from the
/// start: only a regular file of this user's, closed to others, with no other name
/// (never a link, a FIFO or a file someone linked in); `None` when there is none fit to
/// reuse. It is not emptied first: ext4 starts writing back a file truncated to
/// nothing when it is closed, the cost this reuse is there to save.
fn open_spare(spare: &Path) -> std::io::Result<Option<(File, u64)>> {
    // Non-blocking, so a FIFO left in its place fails instead of waiting for a reader.
    let flags = NO_LINKS | rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let file = match OpenOptions::new().write(true).custom_flags(flags).open(spare) {
        Ok(file) => file,
        Err(_) => return Ok(None),
    };
    let meta = file.metadata()?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_file() || meta.nlink() != 1 || meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Ok(None);
    }
    Ok(Some((file, meta.len())))
}

/// Removes the spare [`rewrite_with`] keeps beside `path` (an owner that ends leaves
/// no hidden copy of its last snapshot behind).
pub fn drop_spare(path: &Path) {
    let _ = fs::remove_file(spare_path(path));
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
    let was = file.metadata().map_err(StoreError::io(path))?.len();
    if let Err(e) = file.write_all(buf.as_bytes()) {
        // A full disk takes part of the line: cut it off, or the next line (written
        // once there is room) would be glued to it and unreadable with it.
        let _ = file.set_len(was);
        return Err(StoreError::io(path)(e));
    }
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

    fn rewrite(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        rewrite_with(path, Durability::Cached, |out| out.write_all(bytes))
    }

    #[test]
    fn rewrites_swap_whole_files_and_keep_one_hidden_spare_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        rewrite(&path, b"a long first version").unwrap();
        rewrite(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second", "a shorter version leaves no tail");
        rewrite(&path, b"third, longer than the second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"third, longer than the second");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let spare = spare_path(&path);
        assert_eq!(
            fs::read(&spare).unwrap(),
            b"second",
            "the replaced version is the spare"
        );
        assert_eq!(fs::metadata(&spare).unwrap().permissions().mode() & 0o777, 0o600);
        // One that must survive a power cut is a new file; the spare waits.
        rewrite_with(&path, Durability::Synced, |out| out.write_all(b"synced")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"synced");
        assert_eq!(fs::read(&spare).unwrap(), b"second");
        drop_spare(&path);
        assert!(!spare.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_rewrite_never_writes_through_what_stands_at_its_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat");
        let spare = spare_path(&path);
        let precious = dir.path().join("precious");
        let reset = |what: &str| {
            let _ = fs::remove_file(&spare);
            fs::write(&precious, "keep me").unwrap();
            fs::set_permissions(&precious, fs::Permissions::from_mode(0o600)).unwrap();
            match what {
                "symlink" => std::os::unix::fs::symlink(&precious, &spare).unwrap(),
                "hard link" => fs::hard_link(&precious, &spare).unwrap(),
                "fifo" => rustix::fs::mkfifoat(rustix::fs::CWD, &spare, rustix::fs::Mode::RWXU).unwrap(),
                _ => unreachable!(),
            }
        };
        for what in ["symlink", "hard link", "fifo"] {
            reset(what);
            rewrite(&path, what.as_bytes()).unwrap();
            assert_eq!(fs::read(&path).unwrap(), what.as_bytes(), "{what}");
            assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me", "{what}");
            assert!(fs::symlink_metadata(&path).unwrap().is_file(), "{what}");
        }
        // A spare others may read is not reused either: it is replaced by a new one.
        drop_spare(&path);
        rewrite(&path, b"one").unwrap();
        rewrite(&path, b"two").unwrap();
        fs::set_permissions(&spare, fs::Permissions::from_mode(0o644)).unwrap();
        rewrite(&path, b"three").unwrap();
        rewrite(&path, b"four").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"four");
        assert_eq!(fs::metadata(&spare).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_link_or_fifo_standing_at_a_rewritten_file_is_replaced_and_what_it_names_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let precious = dir.path().join("precious");
        for what in ["symlink", "fifo"] {
            let _ = fs::remove_file(&path);
            fs::write(&precious, "keep me").unwrap();
            match what {
                "symlink" => std::os::unix::fs::symlink(&precious, &path).unwrap(),
                _ => rustix::fs::mkfifoat(rustix::fs::CWD, &path, rustix::fs::Mode::RWXU).unwrap(),
            }
            // The swap puts it at the spare's name, and the next rewrite removes it there.
            rewrite(&path, b"one").unwrap();
            rewrite(&path, b"two").unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"two", "{what}");
            assert!(fs::symlink_metadata(&path).unwrap().is_file(), "{what}");
            assert!(fs::symlink_metadata(spare_path(&path)).unwrap().is_file(), "{what}");
            assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me", "{what}");
        }
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
