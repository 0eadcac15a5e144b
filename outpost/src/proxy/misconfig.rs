//! Reverse-proxy misconfigurations (a forward-auth request that does not say which URL the user
//! opened, or names a host no provider serves) are told to the operator twice: a warning in the
//! outpost's log and a `proxy_misconfigured` event in the core's event log. Both at most once a
//! minute per kind of problem and host, so a busy misconfigured site does not flood either; the
//! user gets an error page every time, never a redirect loop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one problem is reported.
const REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// Most distinct problems remembered; beyond that the oldest reports are forgotten.
const MAX_TRACKED: usize = 1024;

/// Remembers when each problem was last reported.
#[derive(Debug, Default)]
pub struct MisconfigReports {
    last: Mutex<HashMap<String, Instant>>,
}

impl MisconfigReports {
    /// Whether the problem `key` should be reported now (and records that it was).
    pub fn due(&self, key: &str, now: Instant) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = last.get(key)
            && now.saturating_duration_since(*at) < REPORT_INTERVAL
        {
            return false;
        }
        if last.len() >= MAX_TRACKED {
            last.retain(|_, at| now.saturating_duration_since(*at) < REPORT_INTERVAL);
            if last.len() >= MAX_TRACKED {
                last.clear();
            }
        }
        last.insert(key.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_problem_a_minute() {
        let reports = MisconfigReports::default();
        let t0 = Instant::now();
        assert!(reports.due("nginx:no-url", t0));
        assert!(!reports.due("nginx:no-url", t0 + Duration::from_secs(59)));
        assert!(reports.due("caddy:no-url", t0 + Duration::from_secs(1)));
        assert!(reports.due("nginx:no-url", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn memory_stays_bounded() {
        let reports = MisconfigReports::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED * 3) {
            assert!(reports.due(&format!("host-{i}"), t0));
        }
        let held = reports.last.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(held <= MAX_TRACKED, "{held}");
    }
}
