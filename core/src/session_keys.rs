//! The keys proxy outposts seal session cookies with. Each is derived from the core's secret key
//! for one outpost and one key generation (`store::sessions`), so an outpost can never forge
//! another outpost's cookies, every replica of one outpost shares its keys, and nothing secret is
//! stored in the database.

use crate::secret_key::SecretKey;
use hmac::{Hmac, Mac};
use redoubt_outpost_proto::session::SessionKey;
use sha2::Sha256;

/// Derives session-cookie keys.
#[derive(Clone)]
pub struct SessionKeyring {
    root: [u8; 32],
}

impl std::fmt::Debug for SessionKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeyring(********)")
    }
}

impl SessionKeyring {
    /// The keyring of `secret`.
    pub fn new(secret: &SecretKey) -> Self {
        Self {
            root: secret.derive("proxy-session-keys"),
        }
    }

    /// The key of `outpost_id` for `generation`.
    pub fn key(&self, outpost_id: i64, generation: i64) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.root) else {
            return [0; 32]; // HMAC takes keys of any length.
        };
        mac.update(format!("outpost/{outpost_id}/generation/{generation}").as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The keys of `outpost_id` for `generations` (newest first), as outposts receive them.
    pub fn for_outpost(&self, outpost_id: i64, generations: &[i64]) -> Vec<SessionKey> {
        generations
            .iter()
            .filter_map(|g| {
                Some(SessionKey {
                    id: u32::try_from(*g).ok()?,
                    key: data_encoding::BASE64URL_NOPAD.encode(&self.key(outpost_id, *g)),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(secret: &str) -> SessionKeyring {
        let dir = tempfile::tempdir().expect("tempdir");
        SessionKeyring::new(&SecretKey::load_or_generate(secret, dir.path()).expect("key"))
    }

    #[test]
    fn keys_differ_by_outpost_generation_and_secret() {
        let a = keyring("a-secret-key-of-at-least-32-characters!");
        let b = keyring("b-secret-key-of-at-least-32-characters!");
        assert_eq!(a.key(1, 1), a.key(1, 1));
        assert_ne!(a.key(1, 1), a.key(2, 1));
        assert_ne!(a.key(1, 1), a.key(1, 2));
        assert_ne!(a.key(1, 1), b.key(1, 1));
        let keys = a.for_outpost(1, &[2, 1]);
        assert_eq!(keys.iter().map(|k| k.id).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(
            data_encoding::BASE64URL_NOPAD
                .decode(keys[0].key.as_bytes())
                .expect("base64")
                .len(),
            32
        );
        assert!(!format!("{a:?}").contains(&keys[0].key));
    }
}
