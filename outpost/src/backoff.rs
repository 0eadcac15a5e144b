//! Reconnect delays after a failed attempt: exponential from 0.5 s to 5 min with "equal jitter" (half fixed, half random),
//! so a fleet of outposts does not reconnect in lockstep after the core restarts. Randomness is
//! injected for tests.

use std::time::Duration;

/// First delay.
pub const INITIAL: Duration = Duration::from_millis(500);
/// Largest delay.
pub const MAX: Duration = Duration::from_secs(300);

/// Exponential backoff state.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    floor: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempt: 0,
            floor: INITIAL,
        }
    }
}

impl Backoff {
    /// The next delay; `random` is a value in `[0, 1)`.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let exp =
            INITIAL.saturating_mul(1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX));
        let ceiling = exp.max(self.floor).min(MAX);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(random.clamp(0.0, 1.0))
    }

    /// Start over after a healthy session.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Never wait less than `floor` until the next reset (the core refused us: do not hammer it).
    pub fn at_least(&mut self, floor: Duration) {
        self.floor = floor.min(MAX);
    }
}

/// A random value in `[0, 1)` from the OS.
pub fn os_random() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_half_a_second_to_five_minutes() {
        let mut b = Backoff::default();
        let lows: Vec<Duration> = (0..12).map(|_| b.next_delay(0.0)).collect();
        assert_eq!(lows[0], Duration::from_millis(250));
        assert_eq!(lows[1], Duration::from_millis(500));
        assert_eq!(lows[11], MAX / 2);
        let mut b = Backoff::default();
        let highs: Vec<Duration> = (0..12).map(|_| b.next_delay(0.999_999)).collect();
        assert!(highs[0] <= INITIAL);
        assert!(highs.iter().all(|d| *d <= MAX));
        assert!(highs[11] > Duration::from_secs(299));
    }

    #[test]
    fn floor_and_reset() {
        let mut b = Backoff::default();
        b.at_least(Duration::from_secs(30));
        assert!(b.next_delay(0.0) >= Duration::from_secs(15));
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
        let r = os_random();
        assert!((0.0..1.0).contains(&r));
    }
}
