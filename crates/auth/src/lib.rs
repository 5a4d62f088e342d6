//! Credentials for ruche: password hashing, random secrets, signed access tokens, a
//! failed-login limiter and a short-lived cache of verified Basic credentials.
//!
//! This crate decides whether a credential is good; it never decides where one is kept. It
//! keeps no storage of its own: no files, no SQLite, no network. The caller stores password
//! hashes, secret digests and the token signing key, and hands them back when needed. The
//! only state held here lives in memory ([`LoginLimiter`], [`CredentialCache`]) and is lost on
//! restart by design. Nothing in this crate logs or stores a password, a secret or a token in
//! clear.

#![warn(missing_docs)]

mod cache;
mod error;
mod limiter;
mod password;
mod secret;
mod token;

pub use cache::CredentialCache;
pub use error::AuthError;
pub use limiter::LoginLimiter;
pub use password::{dummy_hash, hash_password, verify_password};
pub use secret::{new_app_password, new_secret, secret_digest};
pub use token::{Claims, TokenKeys, TokenVerifier, AUDIENCE};

/// The result type of every fallible function of this crate.
pub type Result<T> = std::result::Result<T, AuthError>;
