//! Password hashing with argon2id, stored by the caller as a PHC string.
//!
//! The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) carries its own algorithm,
//! parameters and salt, so hashes made with older parameters keep verifying after the
//! defaults change.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, Params};
use rand::Rng as _;

use crate::{AuthError, Result};

/// Length in bytes of a freshly drawn salt (the length the PHC format recommends).
const SALT_LEN: usize = 16;

/// Largest memory cost, in KiB, that [`verify_password`] agrees to spend on one hash.
/// A stored hash asking for more is treated as malformed rather than allowed to exhaust
/// the server's memory.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Largest number of passes that [`verify_password`] agrees to run on one hash.
const MAX_PASSES: u32 = 16;

/// Hashes a password with argon2id and default parameters (19 MiB, 2 passes, 1 lane) and a
/// fresh random salt, and returns it as a PHC string for the caller to store.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = new_salt()?;

    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|err| AuthError::PasswordHash {
            reason: err.to_string(),
        })?;

    Ok(hash.to_string())
}

/// Checks a password against a stored PHC string.
///
/// Returns `false`, and never panics, when the password is wrong, when the string is not a
/// valid argon2 PHC hash, or when its parameters ask for an unreasonable amount of work.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };

    if !has_bounded_cost(&hash) {
        return false;
    }

    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// A valid-looking hash of a random password, to verify against when the account does not
/// exist, so that response timing does not reveal whether an account exists.
///
/// Computed once per process, with the same parameters as [`hash_password`]; no password
/// ever verifies against it.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();

    DUMMY.get_or_init(|| {
        let unguessable = crate::new_secret();
        // Hashing can only fail on invalid parameters or salt, and both are fixed here.
        hash_password(&unguessable).expect("argon2id with default parameters hashes any input")
    })
}

/// Draws a random salt and encodes it the way the PHC format expects.
fn new_salt() -> Result<SaltString> {
    let mut bytes = [0u8; SALT_LEN];
    rand::rng().fill(&mut bytes[..]);

    SaltString::encode_b64(&bytes).map_err(|err| AuthError::PasswordHash {
        reason: err.to_string(),
    })
}

/// Whether the parameters of a stored hash are readable and within the work we accept.
fn has_bounded_cost(hash: &PasswordHash<'_>) -> bool {
    match Params::try_from(hash) {
        Ok(params) => params.m_cost() <= MAX_MEMORY_KIB && params.t_cost() <= MAX_PASSES,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_round_trips() {
        let phc = hash_password("correct horse").expect("hashing works");

        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &phc));
    }

    #[test]
    fn wrong_password_is_refused() {
        let phc = hash_password("correct horse").expect("hashing works");
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn same_password_gets_a_different_salt_each_time() {
        let a = hash_password("same").expect("hashing works");
        let b = hash_password("same").expect("hashing works");
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_hashes_are_refused_without_panic() {
        for phc in [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
            "$argon2id$v=99$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        ] {
            assert!(!verify_password("anything", phc), "accepted {phc:?}");
        }
    }

    #[test]
    fn hash_asking_for_too_much_memory_is_refused() {
        let phc = hash_password("pw").expect("hashing works");
        let greedy = phc.replace("m=19456", "m=4194304");

        assert!(!verify_password("pw", &greedy));
    }

    #[test]
    fn dummy_hash_is_stable_and_well_formed() {
        let first = dummy_hash();

        assert!(first.starts_with("$argon2id$"));
        assert!(std::ptr::eq(first, dummy_hash()));
        assert!(PasswordHash::new(first).is_ok());
        assert!(!verify_password("", first));
    }
}
