//! Argon2id password hashing (OWASP parameters by default: m = 19 MiB, t = 2, p = 1).

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, Mutex, mpsc};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Why hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords with fixed parameters. The async methods hand the work to a
/// few long-lived threads (one per CPU): a burst of logins queues instead of spawning threads,
/// and the 19 MiB blocks Argon2 needs are reused by the same threads rather than spread over
/// many allocator arenas.
#[derive(Debug, Clone)]
pub struct PasswordHasherArgon2 {
    params: Params,
    workers: Arc<HashWorkers>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads; they end when the last hasher is dropped.
#[derive(Debug)]
struct HashWorkers {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl HashWorkers {
    fn start() -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("redoubt-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self {
            jobs: Mutex::new(tx),
        }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.send(job).is_ok(),
            Err(poisoned) => poisoned.into_inner().send(job).is_ok(),
        };
        if !sent {
            return None;
        }
        rx.await.ok()
    }
}

impl PasswordHasherArgon2 {
    /// A hasher with `params`, checked up front so hashing cannot fail on them later.
    pub fn new(params: HashParams) -> Result<Self, PasswordError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Self {
            params,
            workers: Arc::new(HashWorkers::start()),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC-format hash of `password` with a fresh random salt. CPU-heavy: call off the async
    /// executor.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Whether `password` matches `phc_hash`. A malformed hash never matches. The hash's own
    /// parameters are used, so changing the configured cost does not lock anyone out.
    pub fn verify(&self, password: &str, phc_hash: &str) -> bool {
        match PasswordHash::new(phc_hash) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Spends about the time of one verification, so an unknown user costs as much as a wrong
    /// password and the two cannot be told apart by timing.
    pub fn verify_dummy(&self, password: &str) {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let hash = DUMMY.get_or_init(|| self.hash("redoubt-dummy-password").unwrap_or_default());
        let _ = self.verify(password, hash);
    }
}

impl PasswordHasherArgon2 {
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self) -> T + Send + 'static,
        fallback: T,
    ) -> T {
        let hasher = self.clone();
        self.workers
            .run(move || work(&hasher))
            .await
            .unwrap_or(fallback)
    }

    /// [`Self::hash`] off the async executor.
    pub async fn hash_async(&self, password: String) -> Result<String, PasswordError> {
        self.run(
            move |h| h.hash(&password),
            Err(PasswordError::Hash("the hashing task failed".into())),
        )
        .await
    }

    /// [`Self::verify`] off the async executor.
    pub async fn verify_async(&self, password: String, phc_hash: String) -> bool {
        self.run(move |h| h.verify(&password, &phc_hash), false)
            .await
    }

    /// [`Self::verify_dummy`] off the async executor.
    pub async fn verify_dummy_async(&self, password: String) {
        self.run(move |h| h.verify_dummy(&password), ()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasherArgon2 {
        PasswordHasherArgon2::new(HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .expect("params")
    }

    #[test]
    fn hash_then_verify() {
        let hasher = cheap();
        let hash = hasher.hash("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse", &hash));
        assert!(!hasher.verify("correct horse ", &hash));
        assert!(!hasher.verify("correct horse", "not a hash"));
    }

    #[test]
    fn salts_differ() {
        let hasher = cheap();
        assert_ne!(
            hasher.hash("x").expect("hash"),
            hasher.hash("x").expect("hash")
        );
    }

    #[test]
    fn verifies_with_the_hash_own_parameters() {
        let old = cheap().hash("pw").expect("hash");
        let stronger = PasswordHasherArgon2::new(HashParams {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
        })
        .expect("params");
        assert!(stronger.verify("pw", &old));
    }
}
