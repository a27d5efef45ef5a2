//! The SQLite file holds password hashes and login events: readable by its owner only.
//!
//! SQLite creates a database's `-wal` and `-shm` files with the database file's permissions,
//! so creating the database file 0600 before SQLite opens it makes all three private. A file
//! left group- or world-readable by an earlier version, a copy or a restore is tightened to
//! 0600 at start-up, loudly: its readers were never meant to exist.

use std::io;
use std::path::{Path, PathBuf};

/// Owner read and write, nothing for anyone else.
#[cfg(unix)]
const PRIVATE: u32 = 0o600;

/// Creates the database file 0600 if it does not exist, and tightens an existing database
/// file and its `-wal` and `-shm` files to 0600 when others may read them. What cannot be
/// done is logged, not fatal: SQLite itself reports a file it cannot open, and a file owned
/// by another user cannot be changed by this one (its owner must).
pub(crate) fn make_private(database: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE)
            .open(database)
        {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            // A missing or unwritable folder: SQLite reports it with the path, as before.
            Err(_) => return,
        }
        for path in [
            database.to_owned(),
            with_suffix(database, "-wal"),
            with_suffix(database, "-shm"),
        ] {
            let mode = match std::fs::metadata(&path) {
                Ok(metadata) => metadata.permissions().mode(),
                Err(_) => continue,
            };
            if mode & 0o077 == 0 {
                continue;
            }
            let was = format!("{:o}", mode & 0o777);
            match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(PRIVATE)) {
                Ok(()) => tracing::warn!(
                    path = %path.display(),
                    was,
                    "the database file was open to other users; it is now 0600"
                ),
                Err(err) => tracing::error!(
                    path = %path.display(),
                    mode = was,
                    cause = %err,
                    "the database file is open to other users and cannot be made 0600; \
                     its owner should run chmod 600 on it"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = database;
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("file exists")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_new_database_file_is_created_private() {
        let dir = std::env::temp_dir().join(format!("tollgate-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = dir.join("new.db");
        let _ = std::fs::remove_file(&db);
        make_private(&db);
        assert_eq!(mode(&db), 0o600);
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    #[test]
    fn readable_files_are_tightened() {
        let dir = std::env::temp_dir().join(format!("tollgate-tighten-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = dir.join("old.db");
        for path in [
            db.clone(),
            with_suffix(&db, "-wal"),
            with_suffix(&db, "-shm"),
        ] {
            std::fs::write(&path, b"").expect("written");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        make_private(&db);
        for path in [
            db.clone(),
            with_suffix(&db, "-wal"),
            with_suffix(&db, "-shm"),
        ] {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
