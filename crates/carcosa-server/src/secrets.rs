//! Encryption of secrets at rest (webhook signing keys), under a master key.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per value; a stored value is
//! `nonce || ciphertext || tag`. The master key is 32 bytes, given as base64 in the configuration
//! (`master_key` / `CARCOSA_MASTER_KEY`) or read from a file (`master_key_file`). On the embedded
//! SQLite default with neither set, a key is generated on first start into `carcosa.key` next to
//! the database file, readable by its owner only. PostgreSQL deployments must set a key: every
//! replica needs the same one.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::Config;

const NONCE_LEN: usize = 24;

/// Encrypts and decrypts secrets under the master key. `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

/// Why the master key is unavailable or a value cannot be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The configured key is not base64 of 32 bytes.
    #[error("the master key must be base64 of 32 bytes (generate one with: openssl rand -base64 32)")]
    BadKey,
    /// The key file could not be read or created.
    #[error("cannot use the master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// PostgreSQL without a configured key.
    #[error(
        "set CARCOSA_MASTER_KEY (base64 of 32 random bytes, the same on every replica) or master_key_file: webhook secrets are encrypted with it"
    )]
    Missing,
    /// A stored value does not decrypt with this key.
    #[error("a stored secret cannot be decrypted with this master key (was the key changed?)")]
    Undecryptable,
}

impl SecretBox {
    /// A box over a 32-byte key.
    #[must_use]
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    /// The key the configuration names, generating the embedded default's key file if needed.
    pub fn from_config(config: &Config) -> Result<Self, SecretError> {
        if let Some(key) = &config.master_key {
            return decode_key(key.expose()).map(|k| Self::new(&k));
        }
        let path = match &config.master_key_file {
            Some(path) => path.clone(),
            None => default_key_file(config.database_url.expose()).ok_or(SecretError::Missing)?,
        };
        load_or_create(&path).map(|k| Self::new(&k))
    }

    /// Encrypts `plain`.
    #[must_use]
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0_u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain)
            .expect("encryption of a short value cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value made by [`SecretBox::seal`].
    pub fn open(&self, stored: &[u8]) -> Result<Vec<u8>, SecretError> {
        if stored.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, sealed) = stored.split_at(NONCE_LEN);
        self.cipher.decrypt(XNonce::from_slice(nonce), sealed).map_err(|_| SecretError::Undecryptable)
    }
}

fn decode_key(text: &str) -> Result<[u8; 32], SecretError> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| SecretError::BadKey)?;
    bytes.try_into().map_err(|_| SecretError::BadKey)
}

/// `carcosa.key` beside the SQLite database file; `None` for other databases.
fn default_key_file(database_url: &str) -> Option<PathBuf> {
    let path = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let dir = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(dir.join("carcosa.key"))
}

fn load_or_create(path: &Path) -> Result<[u8; 32], SecretError> {
    let io = |source| SecretError::KeyFile { path: path.to_owned(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0_u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            match write_private(path, format!("{}\n", STANDARD.encode(key)).as_bytes()) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "generated the master key for secrets at rest; back it up with the database");
                    Ok(key)
                }
                // Another process created it first: use theirs.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    decode_key(&std::fs::read_to_string(path).map_err(io)?)
                }
                Err(err) => Err(io(err)),
            }
        }
        Err(err) => Err(io(err)),
    }
}

/// Creates `path` (which must not exist) readable and writable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let a = SecretBox::new(&[7; 32]);
        let b = SecretBox::new(&[8; 32]);
        let sealed = a.seal(b"signing key");
        assert_ne!(&sealed[NONCE_LEN..], b"signing key");
        assert_eq!(a.open(&sealed).unwrap(), b"signing key");
        assert!(b.open(&sealed).is_err());
        assert!(a.open(&sealed[..10]).is_err());
        assert_ne!(a.seal(b"x"), a.seal(b"x"), "a fresh nonce every time");
    }

    #[test]
    fn the_embedded_default_generates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("carcosa.db");
        let config = Config {
            database_url: crate::config::DatabaseUrl(format!("sqlite://{}", db.display())),
            ..Config::default()
        };
        let first = SecretBox::from_config(&config).unwrap();
        let key_file = dir.path().join("carcosa.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let second = SecretBox::from_config(&config).unwrap();
        assert_eq!(second.open(&first.seal(b"same key")).unwrap(), b"same key");
    }

    #[test]
    fn postgres_needs_a_configured_key() {
        let config = Config {
            database_url: crate::config::DatabaseUrl("postgres://localhost/carcosa".into()),
            ..Config::default()
        };
        assert!(matches!(SecretBox::from_config(&config), Err(SecretError::Missing)));
        let with_key = Config {
            master_key: Some(crate::config::SecretString(STANDARD.encode([1_u8; 32]))),
            ..config.clone()
        };
        assert!(SecretBox::from_config(&with_key).is_ok());
        let bad = Config { master_key: Some(crate::config::SecretString("short".into())), ..config };
        assert!(matches!(SecretBox::from_config(&bad), Err(SecretError::BadKey)));
    }

    #[test]
    fn key_files_sit_beside_the_database() {
        assert_eq!(default_key_file("sqlite://carcosa.db"), Some(PathBuf::from("./carcosa.key")));
        assert_eq!(
            default_key_file("sqlite:///var/lib/carcosa/c.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/carcosa/carcosa.key"))
        );
        assert_eq!(default_key_file("postgres://x/y"), None);
    }
}
