//! The journal directory, kept private: created 0700 (files 0600); a directory that is a
//! symlink, world-writable, or owned by another user is refused; a group- or other-readable
//! one that this user owns is narrowed to 0700. An exclusive lock (`.lock`, `flock`) keeps a
//! second agent from writing and pruning the same directory.
use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

use super::JournalError;

/// Mode of the journal directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of journal files.
pub const FILE_MODE: u32 = 0o600;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn unsafe_dir(dir: &Path, reason: String) -> JournalError {
    JournalError::UnsafeDir {
        path: dir.to_path_buf(),
        reason,
    }
}

/// Creates `dir` (0700) or checks the one there, as the module docs say.
pub fn prepare(dir: &Path) -> Result<(), JournalError> {
    let io = |op| {
        move |source| JournalError::Io {
            path: dir.to_path_buf(),
            op,
            source,
        }
    };
    match fs::symlink_metadata(dir) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(io("create the journal directory"))?;
            // The umask may have narrowed it further; never widened.
            return Ok(());
        }
        Err(e) => return Err(io("inspect the journal directory")(e)),
        Ok(meta) if meta.file_type().is_symlink() => {
            let to = fs::read_link(dir).map_or_else(|_| "?".into(), |t| t.display().to_string());
            return Err(unsafe_dir(
                dir,
                format!("it is a symlink (to {to}); give the real directory"),
            ));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(unsafe_dir(dir, "it is not a directory".into()));
        }
        Ok(meta) => {
            if meta.uid() != euid() {
                return Err(unsafe_dir(
                    dir,
                    format!(
                        "it is owned by uid {}, not by this user (uid {})",
                        meta.uid(),
                        euid()
                    ),
                ));
            }
            let mode = meta.mode() & 0o7777;
            if mode & 0o002 != 0 {
                return Err(unsafe_dir(
                    dir,
                    format!("it is world-writable (mode {mode:04o})"),
                ));
            }
            if mode & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
                    .map_err(io("narrow the journal directory's mode"))?;
                tracing::info!(
                    "journal directory {} was mode {mode:04o}: now {DIR_MODE:04o}",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// Creates a journal file, 0600, failing if it exists.
pub fn create_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// The exclusive lock on a journal directory, held while the file is open.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

/// Takes the directory's lock, or says which agent holds it.
pub fn lock(dir: &Path) -> Result<DirLock, JournalError> {
    let path = dir.join(".lock");
    let io = |op| {
        let path = path.clone();
        move |source| JournalError::Io { path, op, source }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(io("open the journal lock"))?;
    // SAFETY: flock on an fd this function owns.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(JournalError::Locked {
                path: dir.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        return Err(io("lock the journal directory")(err));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(DirLock(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalOptions, JournalWriter, SessionInfo};

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").mode() & 0o7777
    }

    fn open(dir: &Path) -> Result<JournalWriter, JournalError> {
        JournalWriter::open(dir, JournalOptions::default(), SessionInfo::default())
    }

    #[test]
    fn new_directories_and_files_are_private() {
        let top = tempfile::tempdir().expect("temp dir");
        let dir = top.path().join("a/b");
        let w = open(&dir).expect("journal");
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(w.path()), FILE_MODE);
        assert_eq!(mode(&dir.join(".lock")), FILE_MODE);
    }

    #[test]
    fn a_too_open_directory_of_ours_is_narrowed() {
        let top = tempfile::tempdir().expect("temp dir");
        fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        open(top.path()).expect("journal");
        assert_eq!(mode(top.path()), DIR_MODE);
    }

    #[test]
    fn unsafe_directories_are_refused() {
        let top = tempfile::tempdir().expect("temp dir");
        let real = top.path().join("real");
        fs::create_dir(&real).expect("mkdir");
        let link = top.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let e = open(&link).err().expect("a symlink is refused");
        assert!(e.to_string().contains("symlink"), "{e}");

        let open_dir = top.path().join("world");
        fs::create_dir(&open_dir).expect("mkdir");
        fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = open(&open_dir).err().expect("world-writable is refused");
        assert!(e.to_string().contains("world-writable"), "{e}");

        // Another user's directory (when this test may give one away: as root).
        let theirs = top.path().join("theirs");
        fs::create_dir(&theirs).expect("mkdir");
        if std::os::unix::fs::chown(&theirs, Some(65534), None).is_ok() {
            let e = open(&theirs).err().expect("another user's dir is refused");
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        }
    }

    #[test]
    fn a_second_writer_on_the_same_directory_fails_at_once() {
        let top = tempfile::tempdir().expect("temp dir");
        let first = open(top.path()).expect("journal");
        let e = open(top.path()).err().expect("second writer refused");
        assert!(
            matches!(&e, JournalError::Locked { holder, .. } if *holder == std::process::id().to_string()),
            "{e}"
        );
        assert!(e.to_string().contains("in use by another sigtrace"), "{e}");
        drop(first);
        open(top.path()).expect("free again once the first is gone");
    }
}
