//! High-entropy random secrets: refresh tokens, app passwords, token ids.
//!
//! A secret made here carries at least 120 bits of entropy, so the caller stores only its
//! SHA-256 digest ([`secret_digest`]): a fast hash is enough because no dictionary or brute
//! force attack can reach a random value of that size. Passwords chosen by people need the
//! slow hash of the `password` module instead.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

/// Letters and digits that cannot be mistaken for one another when read aloud or copied by
/// hand: no `0`/`o`, no `1`/`l`/`i`, lowercase only. 31 symbols, about 4.95 bits each.
const APP_PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// An app password is this many groups...
const APP_PASSWORD_GROUPS: usize = 5;

/// ...of this many symbols, which gives 25 symbols or about 124 bits.
const APP_PASSWORD_GROUP_LEN: usize = 5;

/// Returns a new secret of 32 random bytes, encoded as base64url without padding
/// (43 characters), for refresh tokens and similar bearer secrets.
pub fn new_secret() -> String {
    random_base64::<32>()
}

/// Returns a new app password that a person can type: five groups of five symbols from an
/// unambiguous lowercase alphabet, joined with `-`, such as `k7m2p-qrs3t-...`.
pub fn new_app_password() -> String {
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..APP_PASSWORD_GROUPS)
        .map(|_| {
            (0..APP_PASSWORD_GROUP_LEN)
                .map(|_| {
                    let index = rng.random_range(0..APP_PASSWORD_ALPHABET.len());
                    char::from(APP_PASSWORD_ALPHABET[index])
                })
                .collect()
        })
        .collect();

    groups.join("-")
}

/// Returns the lowercase hexadecimal SHA-256 digest of a secret, which is what the caller
/// stores and looks up. Cheap by design: only use it for secrets made by this module.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Returns a random identifier of 16 bytes in base64url, unique enough for a token id.
pub(crate) fn new_token_id() -> String {
    random_base64::<16>()
}

/// Returns `N` bytes from the thread-local cryptographic generator, base64url encoded.
fn random_base64<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rng().fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn secret_is_32_bytes_of_base64url() {
        let secret = new_secret();

        assert_eq!(secret.len(), 43);
        let decoded = URL_SAFE_NO_PAD.decode(&secret).expect("valid base64url");
        assert_eq!(decoded.len(), 32);
    }

    #[test]
    fn secrets_do_not_repeat() {
        let secrets: HashSet<String> = (0..100).map(|_| new_secret()).collect();
        assert_eq!(secrets.len(), 100);
    }

    #[test]
    fn app_password_has_five_groups_of_five_unambiguous_symbols() {
        let password = new_app_password();
        let groups: Vec<&str> = password.split('-').collect();

        assert_eq!(groups.len(), APP_PASSWORD_GROUPS);
        for group in groups {
            assert_eq!(group.len(), APP_PASSWORD_GROUP_LEN);
            assert!(group.bytes().all(|b| APP_PASSWORD_ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn app_password_alphabet_has_no_lookalikes() {
        for lookalike in [b'0', b'o', b'1', b'l', b'i', b'I', b'O'] {
            assert!(!APP_PASSWORD_ALPHABET.contains(&lookalike));
        }
    }

    #[test]
    fn app_passwords_do_not_repeat() {
        let passwords: HashSet<String> = (0..100).map(|_| new_app_password()).collect();
        assert_eq!(passwords.len(), 100);
    }

    #[test]
    fn digest_is_lowercase_hex_sha256() {
        assert_eq!(
            secret_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn token_ids_are_short_and_distinct() {
        let a = new_token_id();
        let b = new_token_id();

        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }
}
