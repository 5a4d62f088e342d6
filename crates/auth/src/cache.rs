//! A short-lived memory of successful Basic-credential checks.
//!
//! WebDAV clients send the user name and password with every request, and argon2 is slow on
//! purpose; remembering a good pair for a minute or so keeps a folder listing from costing
//! one hash per file. The password itself is never kept: an entry is keyed by a salted
//! SHA-256 of the pair, so a memory dump does not hand over passwords, and a wrong password
//! simply misses.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

/// SHA-256 of the cache salt, the user name, a NUL byte and the password.
type PairDigest = [u8; 32];

/// Remembers, for a short time, which user id a user name and password pair resolved to.
pub struct CredentialCache {
    ttl: Duration,
    capacity: usize,
    /// Random per cache, so that digests cannot be compared with those of another process.
    salt: [u8; 32],
    entries: Mutex<HashMap<PairDigest, CachedLogin>>,
}

#[derive(Clone, Copy)]
struct CachedLogin {
    user_id: i64,
    verified_at: Instant,
}

impl CachedLogin {
    fn is_fresh(&self, now: Instant, ttl: Duration) -> bool {
        now.saturating_duration_since(self.verified_at) < ttl
    }
}

impl CredentialCache {
    /// A cache keeping each verified pair for `ttl`, holding at most `capacity` pairs
    /// (a capacity of 0 disables it).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let mut salt = [0u8; 32];
        rand::rng().fill(&mut salt[..]);

        CredentialCache {
            ttl,
            capacity,
            salt,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the cached user id if this exact pair was verified less than `ttl` ago.
    ///
    /// The key is a salted SHA-256 of `"username\0password"`; the password itself is never
    /// stored.
    pub fn get(&self, username: &str, password: &str) -> Option<i64> {
        self.get_at(username, password, Instant::now())
    }

    /// Remembers that this pair was just verified and belongs to `user_id`.
    pub fn insert(&self, username: &str, password: &str, user_id: i64) {
        self.insert_at(username, password, user_id, Instant::now());
    }

    /// Forget every entry of this user (password change, app password revoked).
    pub fn forget_user(&self, user_id: i64) {
        self.entries
            .lock()
            .retain(|_, login| login.user_id != user_id);
    }

    fn get_at(&self, username: &str, password: &str, now: Instant) -> Option<i64> {
        let digest = self.digest(username, password);
        let mut entries = self.entries.lock();

        let login = *entries.get(&digest)?;
        if login.is_fresh(now, self.ttl) {
            return Some(login.user_id);
        }

        entries.remove(&digest);
        None
    }

    fn insert_at(&self, username: &str, password: &str, user_id: i64, now: Instant) {
        if self.capacity == 0 {
            return;
        }

        let digest = self.digest(username, password);
        let mut entries = self.entries.lock();
        if !entries.contains_key(&digest) {
            self.make_room(&mut entries, now);
        }

        let login = CachedLogin {
            user_id,
            verified_at: now,
        };
        entries.insert(digest, login);
    }

    /// Keeps the map under capacity: drops stale entries, then if still full the oldest one.
    fn make_room(&self, entries: &mut HashMap<PairDigest, CachedLogin>, now: Instant) {
        if entries.len() < self.capacity {
            return;
        }

        entries.retain(|_, login| login.is_fresh(now, self.ttl));
        if entries.len() < self.capacity {
            return;
        }

        let oldest = entries
            .iter()
            .min_by_key(|(_, login)| login.verified_at)
            .map(|(digest, _)| *digest);
        if let Some(digest) = oldest {
            entries.remove(&digest);
        }
    }

    fn digest(&self, username: &str, password: &str) -> PairDigest {
        // The NUL separator keeps ("ab", "c") and ("a", "bc") apart; a user name cannot
        // contain NUL in a Basic header that reached us.
        Sha256::new()
            .chain_update(self.salt)
            .chain_update(username.as_bytes())
            .chain_update([0u8])
            .chain_update(password.as_bytes())
            .finalize()
            .into()
    }
}

impl fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("entries", &self.entries.lock().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn verified_pair_is_a_hit() {
        let cache = CredentialCache::new(MINUTE, 10);

        cache.insert("alice", "secret", 7);

        assert_eq!(cache.get("alice", "secret"), Some(7));
    }

    #[test]
    fn wrong_password_or_other_user_is_a_miss() {
        let cache = CredentialCache::new(MINUTE, 10);

        cache.insert("alice", "secret", 7);

        assert_eq!(cache.get("alice", "Secret"), None);
        assert_eq!(cache.get("alice", ""), None);
        assert_eq!(cache.get("bob", "secret"), None);
    }

    #[test]
    fn separator_keeps_shifted_pairs_apart() {
        let cache = CredentialCache::new(MINUTE, 10);

        cache.insert("ab", "c", 1);

        assert_eq!(cache.get("a", "bc"), None);
    }

    #[test]
    fn forget_user_drops_all_of_that_users_entries_only() {
        let cache = CredentialCache::new(MINUTE, 10);
        cache.insert("alice", "password", 7);
        cache.insert("alice", "app-password", 7);
        cache.insert("bob", "password", 8);

        cache.forget_user(7);

        assert_eq!(cache.get("alice", "password"), None);
        assert_eq!(cache.get("alice", "app-password"), None);
        assert_eq!(cache.get("bob", "password"), Some(8));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = CredentialCache::new(MINUTE, 10);
        let start = Instant::now();

        cache.insert_at("alice", "secret", 7, start);

        assert_eq!(cache.get_at("alice", "secret", start + MINUTE / 2), Some(7));
        assert_eq!(cache.get_at("alice", "secret", start + MINUTE), None);
        assert!(cache.entries.lock().is_empty());
    }

    #[test]
    fn capacity_is_never_exceeded_and_the_oldest_goes() {
        let cache = CredentialCache::new(MINUTE, 2);
        let start = Instant::now();

        cache.insert_at("a", "pw", 1, start);
        cache.insert_at("b", "pw", 2, start + Duration::from_secs(1));
        cache.insert_at("c", "pw", 3, start + Duration::from_secs(2));

        let now = start + Duration::from_secs(3);
        assert_eq!(cache.entries.lock().len(), 2);
        assert_eq!(cache.get_at("a", "pw", now), None);
        assert_eq!(cache.get_at("c", "pw", now), Some(3));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = CredentialCache::new(MINUTE, 0);

        cache.insert("alice", "secret", 7);

        assert_eq!(cache.get("alice", "secret"), None);
    }
}
