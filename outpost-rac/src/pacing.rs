//! The frame pacer (latest frame wins): the sender builds a frame only when fewer than two
//! frames wait for the browser's `Ack`, the fps cap allows it and something is dirty;
//! otherwise changes keep accumulating in the dirty cells and intermediate states are
//! skipped. The measured ack delay sets the JPEG quality. Time is passed in; nothing here
//! reads a clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// JPEG quality at low lag, and the lag up to which it applies.
const QUALITY_BEST: u8 = 90;
const LAG_GOOD: Duration = Duration::from_millis(20);
/// JPEG quality at high lag, and the lag from which it applies.
const QUALITY_WORST: u8 = 30;
const LAG_BAD: Duration = Duration::from_millis(80);

/// Pacing limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerConfig {
    /// Frames sent but not yet acknowledged, at most.
    pub max_unacked: usize,
    /// Frames per second, at most (at least 1).
    pub fps_cap: u32,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            max_unacked: 2,
            fps_cap: 30,
        }
    }
}

/// Frame counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacerCounters {
    /// Frames sent.
    pub sent: u64,
    /// Frames acknowledged by the browser.
    pub acked: u64,
    /// RDP updates that never reached the browser as a frame of their own: merged into a later
    /// frame because a frame was in flight or the fps cap held it back.
    pub skipped: u64,
    /// Acks for frames not in flight (unknown, already acknowledged), ignored.
    pub stray_acks: u64,
}

/// The pacer of one connection.
#[derive(Debug, Clone)]
pub struct Pacer {
    config: PacerConfig,
    /// Sent, unacknowledged frames, oldest first: (seq, when sent).
    in_flight: VecDeque<(u32, Instant)>,
    last_sent: Option<Instant>,
    next_seq: u32,
    /// RDP updates since the last frame was sent.
    pending_updates: u64,
    /// Smoothed ack delay and the smallest ever seen (the network's share of it).
    ack_delay: Option<Duration>,
    min_ack_delay: Option<Duration>,
    counters: PacerCounters,
}

impl Pacer {
    pub fn new(config: PacerConfig) -> Self {
        Self {
            config,
            in_flight: VecDeque::new(),
            last_sent: None,
            next_seq: 1,
            pending_updates: 0,
            ack_delay: None,
            min_ack_delay: None,
            counters: PacerCounters::default(),
        }
    }

    /// When the sender may build the next frame: `Some(Duration::ZERO)` now, `Some(d)` in `d`
    /// (the fps cap), `None` not until something changes (nothing is dirty, or
    /// `max_unacked` frames are in flight: wait for new damage or an ack).
    pub fn ready(&self, now: Instant, has_dirty: bool) -> Option<Duration> {
        if !has_dirty || self.in_flight.len() >= self.config.max_unacked.max(1) {
            return None;
        }
        let Some(last) = self.last_sent else {
            return Some(Duration::ZERO);
        };
        let interval = Duration::from_secs(1) / self.config.fps_cap.max(1);
        Some((last + interval).saturating_duration_since(now))
    }

    /// The sequence number for the next frame (from 1, wrapping).
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The desktop image changed (one RDP graphics update), counted for `skipped`.
    pub fn on_update(&mut self) {
        self.pending_updates += 1;
    }

    /// A frame was sent (its tiles and `FrameEnd`).
    pub fn on_sent(&mut self, seq: u32, now: Instant) {
        self.in_flight.push_back((seq, now));
        self.last_sent = Some(now);
        self.next_seq = seq.wrapping_add(1);
        self.counters.sent += 1;
        self.counters.skipped += self.pending_updates.saturating_sub(1);
        self.pending_updates = 0;
    }

    /// The browser drew frame `seq`. Frames sent before it count as drawn too (the browser
    /// draws in order). Returns whether `seq` was in flight; unknown or repeated acks are
    /// ignored.
    pub fn on_ack(&mut self, seq: u32, now: Instant) -> bool {
        let Some(at) = self.in_flight.iter().position(|&(s, _)| s == seq) else {
            self.counters.stray_acks += 1;
            return false;
        };
        let mut sent_at = now;
        for _ in 0..=at {
            if let Some((_, sent)) = self.in_flight.pop_front() {
                sent_at = sent;
                self.counters.acked += 1;
            }
        }
        let delay = now.saturating_duration_since(sent_at);
        self.ack_delay = Some(match self.ack_delay {
            None => delay,
            Some(smoothed) => (smoothed * 3 + delay) / 4,
        });
        self.min_ack_delay = Some(self.min_ack_delay.map_or(delay, |m| m.min(delay)));
        true
    }

    /// Forgets frames in flight (the browser re-attached and starts from a full frame).
    pub fn reset(&mut self) {
        self.in_flight.clear();
        self.last_sent = None;
    }

    /// Frames waiting for an ack.
    pub fn unacked(&self) -> usize {
        self.in_flight.len()
    }

    /// How long the oldest unacknowledged frame has waited (a browser that stopped answering
    /// has to be dropped by the caller).
    pub fn oldest_unacked_age(&self, now: Instant) -> Option<Duration> {
        self.in_flight
            .front()
            .map(|&(_, sent)| now.saturating_duration_since(sent))
    }

    /// The smoothed delay between sending a frame and its ack.
    pub fn ack_delay(&self) -> Option<Duration> {
        self.ack_delay
    }

    /// The browser's lag: the smoothed ack delay above the smallest one seen (which is mostly
    /// the network round trip), as Guacamole measures its client's processing lag.
    pub fn lag(&self) -> Duration {
        match (self.ack_delay, self.min_ack_delay) {
            (Some(delay), Some(min)) => delay.saturating_sub(min),
            _ => Duration::ZERO,
        }
    }

    /// JPEG quality from the lag: 90 up to 20 ms, falling linearly to 30 from 80 ms.
    pub fn jpeg_quality(&self) -> u8 {
        quality_for_lag(self.lag())
    }

    pub fn counters(&self) -> PacerCounters {
        self.counters
    }
}

/// Guacamole's rule: best quality at a lag of at most 20 ms, worst from 80 ms, linear between.
pub fn quality_for_lag(lag: Duration) -> u8 {
    if lag <= LAG_GOOD {
        return QUALITY_BEST;
    }
    if lag >= LAG_BAD {
        return QUALITY_WORST;
    }
    let span = (LAG_BAD - LAG_GOOD).as_micros();
    let into = (lag - LAG_GOOD).as_micros();
    let drop = u128::from(QUALITY_BEST - QUALITY_WORST) * into / span;
    QUALITY_BEST - u8::try_from(drop).unwrap_or(QUALITY_BEST - QUALITY_WORST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nothing_dirty_means_no_frame() {
        let pacer = Pacer::new(PacerConfig::default());
        let now = Instant::now();
        assert_eq!(pacer.ready(now, false), None);
        assert_eq!(pacer.ready(now, true), Some(Duration::ZERO));
    }

    #[test]
    fn the_fps_cap_spaces_frames() {
        let mut pacer = Pacer::new(PacerConfig {
            max_unacked: 2,
            fps_cap: 20,
        });
        let t0 = Instant::now();
        pacer.on_sent(pacer.next_seq(), t0);
        assert_eq!(pacer.ready(t0, true), Some(ms(50)));
        assert_eq!(pacer.ready(t0 + ms(30), true), Some(ms(20)));
        assert_eq!(pacer.ready(t0 + ms(50), true), Some(Duration::ZERO));
        assert_eq!(pacer.ready(t0 + ms(500), true), Some(Duration::ZERO));
    }

    #[test]
    fn at_most_two_frames_wait_for_acks() {
        let mut pacer = Pacer::new(PacerConfig::default());
        let t0 = Instant::now();
        pacer.on_sent(1, t0);
        pacer.on_sent(2, t0 + ms(40));
        assert_eq!(pacer.unacked(), 2);
        assert_eq!(pacer.ready(t0 + ms(200), true), None);
        assert_eq!(pacer.oldest_unacked_age(t0 + ms(200)), Some(ms(200)));
        assert!(pacer.on_ack(1, t0 + ms(210)));
        assert_eq!(pacer.ready(t0 + ms(210), true), Some(Duration::ZERO));
        assert_eq!(pacer.next_seq(), 3);
    }

    #[test]
    fn unknown_and_repeated_acks_are_ignored() {
        let mut pacer = Pacer::new(PacerConfig::default());
        let t0 = Instant::now();
        pacer.on_sent(7, t0);
        assert!(!pacer.on_ack(6, t0 + ms(5)));
        assert!(!pacer.on_ack(99, t0 + ms(5)));
        assert_eq!(pacer.unacked(), 1);
        assert!(pacer.on_ack(7, t0 + ms(10)));
        assert!(!pacer.on_ack(7, t0 + ms(11)));
        let counters = pacer.counters();
        assert_eq!(
            (counters.sent, counters.acked, counters.stray_acks),
            (1, 1, 3)
        );
        assert_eq!(pacer.ack_delay(), Some(ms(10)));
    }

    #[test]
    fn an_ack_covers_earlier_frames() {
        let mut pacer = Pacer::new(PacerConfig::default());
        let t0 = Instant::now();
        pacer.on_sent(u32::MAX, t0);
        pacer.on_sent(0, t0 + ms(10));
        assert_eq!(pacer.next_seq(), 1);
        assert!(pacer.on_ack(0, t0 + ms(30)));
        assert_eq!(pacer.unacked(), 0);
        assert_eq!(pacer.counters().acked, 2);
        assert_eq!(pacer.ack_delay(), Some(ms(20)));
        assert!(!pacer.on_ack(u32::MAX, t0 + ms(31)));
    }

    #[test]
    fn updates_merged_into_one_frame_are_skipped_frames() {
        let mut pacer = Pacer::new(PacerConfig::default());
        let t0 = Instant::now();
        for _ in 0..5 {
            pacer.on_update();
        }
        pacer.on_sent(1, t0);
        pacer.on_update();
        pacer.on_sent(2, t0 + ms(40));
        pacer.on_sent(3, t0 + ms(80));
        assert_eq!(pacer.counters().skipped, 4);
        assert_eq!(pacer.counters().sent, 3);
    }

    #[test]
    fn quality_follows_the_lag_above_the_network_delay() {
        let mut pacer = Pacer::new(PacerConfig::default());
        let t0 = Instant::now();
        assert_eq!(pacer.jpeg_quality(), 90);
        // A 50 ms network: steady acks after 50 ms are no lag.
        let mut t = t0;
        for seq in 1..=5 {
            pacer.on_sent(seq, t);
            pacer.on_ack(seq, t + ms(50));
            t += ms(100);
        }
        assert_eq!(pacer.lag(), Duration::ZERO);
        assert_eq!(pacer.jpeg_quality(), 90);
        // The browser slows down: acks after 250 ms.
        for seq in 6..=20 {
            pacer.on_sent(seq, t);
            pacer.on_ack(seq, t + ms(250));
            t += ms(300);
        }
        assert!(pacer.lag() > ms(190), "{:?}", pacer.lag());
        assert_eq!(pacer.jpeg_quality(), 30);
        pacer.reset();
        assert_eq!(pacer.unacked(), 0);
        assert_eq!(pacer.ready(t, true), Some(Duration::ZERO));
    }

    #[test]
    fn quality_curve() {
        assert_eq!(quality_for_lag(ms(0)), 90);
        assert_eq!(quality_for_lag(ms(20)), 90);
        assert_eq!(quality_for_lag(ms(50)), 60);
        assert_eq!(quality_for_lag(ms(79)), 31);
        assert_eq!(quality_for_lag(ms(80)), 30);
        assert_eq!(quality_for_lag(Duration::from_secs(9)), 30);
    }
}
