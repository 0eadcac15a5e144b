//! The data dir and the SQLite files in it are private whatever the umask: the directory is
//! 0700, and the database with its WAL, shared-memory and journal files 0600 (SQLite gives the
//! files it creates next to a database the database file's mode, so the database file is made
//! 0600 before SQLite first opens it).

use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Files SQLite keeps next to a database, by suffix.
const SQLITE_COMPANIONS: &[&str] = &["", "-wal", "-shm", "-journal"];

/// Creates `dir` (and its parents) if needed and makes it 0700.
pub fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// The file of a `sqlite:` URL (`sqlite://path?mode=rwc`, `sqlite:path`); `None` for other
/// databases and in-memory ones.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Creates the database file empty and 0600 when it does not exist yet, so SQLite opens (and
/// copies the mode of) a private file.
pub fn precreate_private(file: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the database and the companion files that exist 0600.
pub fn restrict_sqlite(file: &Path) -> std::io::Result<()> {
    for suffix in SQLITE_COMPANIONS {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        restrict_file(Path::new(&name))?;
    }
    Ok(())
}

/// Makes `file` 0600 if it exists.
pub fn restrict_file(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/redoubt/redoubt.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/redoubt/redoubt.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://data/redoubt.db"),
            Some(PathBuf::from("data/redoubt.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    #[cfg(unix)]
    #[test]
    fn directory_and_files_become_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("a/data");
        make_private_dir(&data).expect("create");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        make_private_dir(&data).expect("again");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        let db = data.join("redoubt.db");
        precreate_private(&db).expect("precreate");
        assert_eq!(mode(&db), 0o600);
        let wal = data.join("redoubt.db-wal");
        std::fs::write(&wal, b"").expect("write");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        restrict_sqlite(&db).expect("restrict");
        assert_eq!(mode(&wal), 0o600);
    }
}
