//! The one error type of the crate.

/// Everything that can go wrong while hashing, signing or verifying a credential.
///
/// Messages never contain the credential itself. The `TokenExpired` and `TokenRefused`
/// variants are the client's fault (an HTTP 401); the others are server-side problems.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Argon2 could not hash a password (bad parameters or salt; not a wrong password).
    #[error("password hashing failed: {reason}")]
    PasswordHash {
        /// What argon2 reported.
        reason: String,
    },

    /// A signing or verifying key could not be read or written.
    #[error("{what}: invalid ed25519 key: {reason}")]
    InvalidKey {
        /// Which key was being handled, e.g. `"private key pem"`.
        what: &'static str,
        /// What the PKCS#8 or SPKI decoder reported.
        reason: String,
    },

    /// Signing an access token failed.
    #[error("access token signing failed")]
    Signing(#[source] jsonwebtoken::errors::Error),

    /// The access token was well formed and correctly signed but its `exp` has passed.
    #[error("access token expired")]
    TokenExpired,

    /// The access token was refused for any other reason.
    #[error("access token refused: {reason}")]
    TokenRefused {
        /// A short description fit for a log line, e.g. `"bad signature"`.
        reason: &'static str,
    },
}

impl AuthError {
    /// Whether the error comes from the credential the client presented (answer 401) rather
    /// than from the server's own keys or configuration (answer 500).
    pub fn is_client_error(&self) -> bool {
        matches!(self, Self::TokenExpired | Self::TokenRefused { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_lowercase_and_carry_context() {
        let err = AuthError::InvalidKey {
            what: "private key pem",
            reason: "bad base64".into(),
        };
        assert_eq!(
            err.to_string(),
            "private key pem: invalid ed25519 key: bad base64"
        );

        let err = AuthError::TokenRefused {
            reason: "bad signature",
        };
        assert_eq!(err.to_string(), "access token refused: bad signature");
    }

    #[test]
    fn only_token_problems_are_client_errors() {
        assert!(AuthError::TokenExpired.is_client_error());
        assert!(AuthError::TokenRefused { reason: "x" }.is_client_error());

        let server_side = AuthError::PasswordHash { reason: "x".into() };
        assert!(!server_side.is_client_error());
    }
}
