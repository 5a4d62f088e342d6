//! Failed-login rate limiting, in memory.
//!
//! Each key (the caller uses one per user name and one per client address, such as
//! `"user:alice"` and `"addr:192.0.2.7"`) counts its failures in a window that opens at its
//! first failure. Reaching the limit locks the key out for one full window from the last
//! counted failure. Nothing survives a restart, which is acceptable: a restart costs an
//! attacker more time than it saves.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Number of keys tracked at most, so that a flood of distinct addresses or names cannot grow
/// memory without bound. About a hundred bytes each.
const MAX_KEYS: usize = 100_000;

/// Failures allowed per key and window by [`LoginLimiter::default_policy`].
const DEFAULT_MAX_FAILURES: u32 = 10;

/// Window of [`LoginLimiter::default_policy`]: 15 minutes.
const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts failed logins per key and locks a key out once it fails too often.
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, FailureCount>>,
}

/// The failures of one key in its current window.
#[derive(Clone, Copy)]
struct FailureCount {
    count: u32,
    /// When the window opened; moved to the moment of lockout when the limit is reached.
    since: Instant,
}

impl FailureCount {
    fn is_current(&self, now: Instant, window: Duration) -> bool {
        now.saturating_duration_since(self.since) < window
    }
}

impl LoginLimiter {
    /// A limiter allowing `max_failures` failures per key within `window`, after which the
    /// key is refused for one `window`. A `max_failures` of 0 counts as 1.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The policy the server uses unless configured otherwise: 10 failures per 15 minutes
    /// per key.
    pub fn default_policy() -> Self {
        Self::new(DEFAULT_MAX_FAILURES, DEFAULT_WINDOW)
    }

    /// Whether another attempt for this key may be checked now (false while the key is
    /// locked out).
    pub fn allow(&self, key: &str) -> bool {
        self.allow_at(key, Instant::now())
    }

    /// Counts one failed attempt for this key.
    pub fn record_failure(&self, key: &str) {
        self.record_failure_at(key, Instant::now());
    }

    /// Forgets the failures of this key after a successful login.
    pub fn record_success(&self, key: &str) {
        self.failures.lock().remove(key);
    }

    fn allow_at(&self, key: &str, now: Instant) -> bool {
        let failures = self.failures.lock();
        let locked_out = failures
            .get(key)
            .is_some_and(|f| f.is_current(now, self.window) && f.count >= self.max_failures);

        !locked_out
    }

    fn record_failure_at(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock();
        if !failures.contains_key(key) {
            self.make_room(&mut failures, now);
        }

        let fresh = FailureCount {
            count: 0,
            since: now,
        };
        let entry = failures.entry(key.to_owned()).or_insert(fresh);
        if !entry.is_current(now, self.window) {
            *entry = fresh;
        }

        entry.count = entry.count.saturating_add(1);
        if entry.count == self.max_failures {
            // The lockout lasts a full window from now, however spread out the failures were.
            entry.since = now;
            tracing::debug!(key, "login key locked out");
        }
    }

    /// Keeps the map under [`MAX_KEYS`]: drops expired keys, then if still full the key whose
    /// window opened first, which is the least useful to remember.
    fn make_room(&self, failures: &mut HashMap<String, FailureCount>, now: Instant) {
        if failures.len() < MAX_KEYS {
            return;
        }

        failures.retain(|_, f| f.is_current(now, self.window));
        if failures.len() < MAX_KEYS {
            return;
        }

        let oldest = failures
            .iter()
            .min_by_key(|(_, f)| f.since)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            failures.remove(&key);
        }
    }
}

impl fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("tracked_keys", &self.failures.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn fail_times(limiter: &LoginLimiter, key: &str, times: u32, now: Instant) {
        for _ in 0..times {
            limiter.record_failure_at(key, now);
        }
    }

    #[test]
    fn locks_out_after_max_failures() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let now = Instant::now();

        fail_times(&limiter, "user:alice", 2, now);
        assert!(limiter.allow_at("user:alice", now));

        limiter.record_failure_at("user:alice", now);
        assert!(!limiter.allow_at("user:alice", now));
    }

    #[test]
    fn keys_are_counted_apart() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let now = Instant::now();

        fail_times(&limiter, "user:alice", 2, now);

        assert!(!limiter.allow_at("user:alice", now));
        assert!(limiter.allow_at("user:bob", now));
        assert!(limiter.allow_at("addr:192.0.2.7", now));
    }

    #[test]
    fn success_forgets_failures() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let now = Instant::now();

        fail_times(&limiter, "user:alice", 2, now);
        limiter.record_success("user:alice");
        fail_times(&limiter, "user:alice", 2, now);

        assert!(limiter.allow_at("user:alice", now));
    }

    #[test]
    fn lockout_ends_when_the_window_passes() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let start = Instant::now();

        fail_times(&limiter, "addr:192.0.2.7", 2, start);

        assert!(!limiter.allow_at("addr:192.0.2.7", start + MINUTE / 2));
        assert!(limiter.allow_at("addr:192.0.2.7", start + MINUTE));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_add_up() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let start = Instant::now();

        limiter.record_failure_at("user:alice", start);
        limiter.record_failure_at("user:alice", start + MINUTE * 2);

        assert!(limiter.allow_at("user:alice", start + MINUTE * 2));
    }

    #[test]
    fn lockout_lasts_a_full_window_from_the_last_failure() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let start = Instant::now();
        let late = start + MINUTE * 9 / 10;

        limiter.record_failure_at("user:alice", start);
        limiter.record_failure_at("user:alice", late);

        assert!(!limiter.allow_at("user:alice", start + MINUTE));
        assert!(limiter.allow_at("user:alice", late + MINUTE));
    }

    #[test]
    fn tiny_window_expires_in_real_time() {
        let limiter = LoginLimiter::new(1, Duration::from_millis(250));

        limiter.record_failure("user:alice");
        assert!(!limiter.allow("user:alice"));

        std::thread::sleep(Duration::from_millis(300));
        assert!(limiter.allow("user:alice"));
    }

    #[test]
    fn memory_stays_bounded_and_expired_keys_go_first() {
        let limiter = LoginLimiter::new(5, MINUTE);
        let start = Instant::now();
        let later = start + MINUTE * 2;

        for n in 0..MAX_KEYS {
            limiter.record_failure_at(&format!("addr:{n}"), start);
        }
        limiter.record_failure_at("user:alice", later);

        let failures = limiter.failures.lock();
        assert_eq!(failures.len(), 1);
        assert!(failures.contains_key("user:alice"));
    }

    #[test]
    fn when_full_of_current_keys_the_oldest_is_dropped() {
        let limiter = LoginLimiter::new(5, MINUTE);
        let start = Instant::now();

        limiter.record_failure_at("addr:oldest", start);
        for n in 1..MAX_KEYS {
            limiter.record_failure_at(&format!("addr:{n}"), start + Duration::from_millis(1));
        }
        limiter.record_failure_at("user:alice", start + Duration::from_millis(2));

        let failures = limiter.failures.lock();
        assert_eq!(failures.len(), MAX_KEYS);
        assert!(!failures.contains_key("addr:oldest"));
        assert!(failures.contains_key("user:alice"));
    }
}
