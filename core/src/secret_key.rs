//! The core's root secret: configured, or generated once and kept (mode 0600) in the data dir.
//! Purpose-specific keys are derived from it with HMAC-SHA256 over a label, so rotating one use
//! never means reusing a key for another. The database records a keyed fingerprint of the key
//! ([`SecretKey::fingerprint`], never the key itself): a core started with another key, or a
//! replica without the shared key, refuses to start instead of generating a second key.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

/// File name of the generated key inside the data dir.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// The root secret.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(********)")
    }
}

/// Why the secret key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error("the configured secret key is too short: use at least 32 characters")]
    TooShort,
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no randomness available: {0}")]
    Random(getrandom::Error),
    #[error(
        "this database was set up by a core with a secret key, but neither REDOUBT_SECRET_KEY nor \
         {path} holds one: copy secret.key from the data dir of the core that set the database up \
         (every replica on one database needs the same key) or set REDOUBT_SECRET_KEY to it"
    )]
    MissingForDatabase { path: String },
    #[error(
        "the secret key does not match the one this database was set up with: start this core \
         with that key (REDOUBT_SECRET_KEY, or secret.key copied from the data dir of the core \
         that set the database up); every replica on one database needs the same key"
    )]
    Mismatch,
}

impl SecretKey {
    /// The configured key, or the one kept in `data_dir` (generated there on first use).
    pub fn load_or_generate(configured: &str, data_dir: &Path) -> Result<Self, SecretKeyError> {
        Self::load(configured, data_dir, true)
    }

    /// The key for a database that has recorded a fingerprint or not: when `recorded` is `Some`
    /// the key must be configured or kept already (never generated) and match it.
    pub fn for_database(
        configured: &str,
        data_dir: &Path,
        recorded: Option<&str>,
    ) -> Result<Self, SecretKeyError> {
        let key = Self::load(configured, data_dir, recorded.is_none())?;
        if let Some(recorded) = recorded
            && !key.matches_fingerprint(recorded)
        {
            return Err(SecretKeyError::Mismatch);
        }
        Ok(key)
    }

    /// A keyed fingerprint of this key (HMAC-SHA256 under the key over a fixed label, hex):
    /// equal for equal keys, and telling nothing about the key.
    pub fn fingerprint(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.derive("secret key fingerprint"))
    }

    /// Whether `recorded` is this key's fingerprint (constant time).
    pub fn matches_fingerprint(&self, recorded: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.fingerprint()
            .as_bytes()
            .ct_eq(recorded.as_bytes())
            .into()
    }

    fn load(configured: &str, data_dir: &Path, may_generate: bool) -> Result<Self, SecretKeyError> {
        if !configured.is_empty() {
            if configured.len() < 32 {
                return Err(SecretKeyError::TooShort);
            }
            return Ok(Self(configured.as_bytes().to_vec()));
        }
        let path = data_dir.join(SECRET_KEY_FILE);
        let io = |source| SecretKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().len() >= 32 => {
                return Ok(Self(text.trim().as_bytes().to_vec()));
            }
            Ok(_) => return Err(SecretKeyError::TooShort),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if !may_generate {
            return Err(SecretKeyError::MissingForDatabase {
                path: path.display().to_string(),
            });
        }
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes).map_err(SecretKeyError::Random)?;
        let text = data_encoding::BASE64URL_NOPAD.encode(&bytes);
        write_private_file(&path, text.as_bytes()).map_err(io)?;
        Ok(Self(text.into_bytes()))
    }

    /// A 32-byte key for `purpose`.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return [0; 32]; // HMAC takes keys of any length.
        };
        mac.update(b"redoubt key derivation v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Writes `contents` to a new file readable only by its owner, atomically (temp file + rename).
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        // A temp file left behind by a crash keeps its old mode: make it private either way.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = SecretKey::load_or_generate("", dir.path()).expect("generate");
        let b = SecretKey::load_or_generate("", dir.path()).expect("load");
        assert_eq!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            SecretKey::load_or_generate("short", dir.path()),
            Err(SecretKeyError::TooShort)
        ));
    }

    #[test]
    fn a_database_with_a_fingerprint_needs_its_key() {
        let first = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::load_or_generate("", first.path()).expect("generate");
        let fingerprint = key.fingerprint();
        assert_eq!(fingerprint.len(), 64);
        assert!(!fingerprint.contains(&String::from_utf8_lossy(&key.0).to_string()));
        SecretKey::for_database("", first.path(), Some(&fingerprint)).expect("same key");
        // Another data dir: no key there, and none may be generated for this database.
        let err = SecretKey::for_database("", other.path(), Some(&fingerprint)).expect_err("none");
        assert!(
            matches!(err, SecretKeyError::MissingForDatabase { .. }),
            "{err}"
        );
        assert!(!other.path().join(SECRET_KEY_FILE).exists());
        let err = SecretKey::for_database(&"x".repeat(40), other.path(), Some(&fingerprint))
            .expect_err("another key");
        assert!(matches!(err, SecretKeyError::Mismatch));
        // A database without a fingerprint takes any key.
        SecretKey::for_database(&"x".repeat(40), other.path(), None).expect("first start");
    }
}
