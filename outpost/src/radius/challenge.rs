//! MFA by challenge and response (RFC 2865 section 4.4) for gear that cannot send
//! `password;123456`: when the core says the password is right but a TOTP code is needed, the
//! outpost answers Access-Challenge with a random State and remembers the pending login for a
//! short while; the NAS asks the user for the code and sends it as User-Password with the same
//! State. A State works once, for the same provider and user, within [`CHALLENGE_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a challenge can be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(120);
/// Most challenges pending at once; more are refused (Access-Reject) until some expire.
const MAX_PENDING: usize = 10_000;
/// Length of a State value.
pub const STATE_LEN: usize = 16;

/// What the first request proved.
#[derive(Clone)]
pub struct Pending {
    pub provider_id: i64,
    pub username: String,
    pub password: String,
    created: Instant,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("provider_id", &self.provider_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Pending challenges by State.
#[derive(Default)]
pub struct Challenges {
    pending: Mutex<HashMap<[u8; STATE_LEN], Pending>>,
}

impl Challenges {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; STATE_LEN], Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a challenge; returns its State, or `None` when too many are pending or no random
    /// State can be made.
    pub fn open(&self, provider_id: i64, username: &str, password: &str) -> Option<[u8; 16]> {
        let mut state = [0u8; STATE_LEN];
        getrandom::fill(&mut state).ok()?;
        let now = Instant::now();
        let mut pending = self.lock();
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, p| now.duration_since(p.created) < CHALLENGE_TTL);
            if pending.len() >= MAX_PENDING {
                return None;
            }
        }
        pending.insert(
            state,
            Pending {
                provider_id,
                username: username.to_owned(),
                password: password.to_owned(),
                created: now,
            },
        );
        Some(state)
    }

    /// Takes the challenge for `state` if it is live and belongs to this provider and user.
    /// A State is consumed by any answer, right or wrong.
    pub fn take(&self, state: &[u8], provider_id: i64, username: &str) -> Option<Pending> {
        let key: [u8; STATE_LEN] = state.try_into().ok()?;
        let pending = self.lock().remove(&key)?;
        (pending.created.elapsed() < CHALLENGE_TTL
            && pending.provider_id == provider_id
            && pending.username.eq_ignore_ascii_case(username))
        .then_some(pending)
    }

    /// Challenges pending now (expired ones are dropped first).
    pub fn len(&self) -> usize {
        let mut pending = self.lock();
        pending.retain(|_, p| p.created.elapsed() < CHALLENGE_TTL);
        pending.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_works_once_for_its_user() {
        let challenges = Challenges::default();
        let state = challenges.open(1, "alice", "pw").expect("open");
        assert!(challenges.take(&state, 1, "bob").is_none(), "other user");
        assert!(challenges.take(&state, 1, "alice").is_none(), "consumed");
        let state = challenges.open(1, "alice", "pw").expect("open");
        assert!(
            challenges.take(&state, 2, "alice").is_none(),
            "other provider"
        );
        let state = challenges.open(1, "alice", "pw").expect("open");
        let pending = challenges.take(&state, 1, "ALICE").expect("taken");
        assert_eq!(pending.password, "pw");
        assert!(
            !format!("{pending:?}").contains("pw\""),
            "no password in Debug"
        );
        assert!(challenges.take(&[0; 3], 1, "alice").is_none());
        assert!(challenges.is_empty());
    }
}
